/*
 * cdata: the C side of bench/data.py: bpf_map_lookup_elem of the very
 * elements the Python side reads through memory.
 *
 * Usage: cdata ARRAY_FD NARRAY SMALL_FD NSMALL SECTION_FD OPS [cpu|wall]
 *   ARRAY_FD    an ARRAY map (32-byte values) inherited from bench/data.py
 *   SMALL_FD    an ARRAY map (16-byte values)
 *   SECTION_FD  a global-data section map (.data of bpf/globals.bpf.c):
 *               what C reads an integer global with, outside a skeleton
 *   NARRAY, NSMALL  their max_entries; element i % N is looked up
 *   OPS         lookups timed per measurement
 *   cpu|wall    the thread's CPU time (default) or CLOCK_MONOTONIC
 *
 * Prints one JSON object: nanoseconds per lookup of each map. Exits
 * non-zero when a lookup fails, so a broken baseline is never a number.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(bench_clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long arg(const char *s, const char *name)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000L) {
		fprintf(stderr, "cdata: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

static double time_lookups(int fd, uint32_t n, long ops, size_t value_size)
{
	char value[4096];
	uint64_t t0, t1;
	uint32_t key;

	if (value_size > sizeof(value)) {
		fprintf(stderr, "cdata: value of %zu bytes is too big\n", value_size);
		exit(2);
	}
	t0 = now_ns();
	for (long i = 0; i < ops; i++) {
		key = (uint32_t)(i % n);
		if (bpf_map_lookup_elem(fd, &key, value)) {
			fprintf(stderr, "cdata: lookup failed: %s\n", strerror(errno));
			exit(1);
		}
	}
	t1 = now_ns();
	return (double)(t1 - t0) / (double)ops;
}

int main(int argc, char **argv)
{
	if (argc != 7 && argc != 8) {
		fprintf(stderr,
			"usage: %s ARRAY_FD NARRAY SMALL_FD NSMALL SECTION_FD OPS [cpu|wall]\n",
			argv[0]);
		return 2;
	}
	if (argc == 8 && strcmp(argv[7], "wall") == 0)
		bench_clock = CLOCK_MONOTONIC;
	else if (argc == 8 && strcmp(argv[7], "cpu") != 0) {
		fprintf(stderr, "cdata: bad clock: %s\n", argv[7]);
		return 2;
	}
	int array_fd = (int)arg(argv[1], "ARRAY_FD");
	uint32_t narray = (uint32_t)arg(argv[2], "NARRAY");
	int small_fd = (int)arg(argv[3], "SMALL_FD");
	uint32_t nsmall = (uint32_t)arg(argv[4], "NSMALL");
	int section_fd = (int)arg(argv[5], "SECTION_FD");
	long ops = arg(argv[6], "OPS");
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	if (!narray || !nsmall || !ops) {
		fprintf(stderr, "cdata: sizes must be positive\n");
		return 2;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(section_fd, &info, &len)) {
		fprintf(stderr, "cdata: section map info: %s\n", strerror(errno));
		return 1;
	}
	double array = time_lookups(array_fd, narray, ops, 32);
	double small = time_lookups(small_fd, nsmall, ops, 16);
	double section = time_lookups(section_fd, 1, ops, info.value_size);

	printf("{\"array_lookup\": %.2f, \"small_lookup\": %.2f, \"section_lookup\": %.2f}\n",
	       array, small, section);
	return 0;
}
