/*
 * cevents: the C baseline for typedmaps' event benchmark (bench/events.py builds and runs it).
 *
 * libbpf's own ring buffer consumer on the records the Python side drains:
 * build/bpf/ringbuf.bpf.o's `emit` program fills its RINGBUF `events` with
 * N struct event records (32 bytes each, 40 in the ring) in one
 * BPF_PROG_TEST_RUN, then ring_buffer__consume() hands each record to a
 * callback that reads its sequence number, as a C consumer would.
 *
 * Usage: cevents OBJECT N ROUNDS [cpu|wall]
 *   OBJECT  path of ringbuf.bpf.o
 *   N       records per round (the ring is sized to hold them)
 *   ROUNDS  rounds; each fills the ring and times one consume
 *   cpu     time with this thread's CPU clock (the default); wall: CLOCK_MONOTONIC
 *
 * Prints one JSON object: {"ns_per_record": [one number per round], "records": N}.
 * Exits non-zero (with a message on stderr) when anything fails or a round
 * sees other than N records in order, so a broken baseline is never a number.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct event {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t tgid;
	uint32_t cpu;
	uint32_t kind;
	uint32_t value;
};

struct seen {
	uint64_t count;
	uint64_t next_seq;
	int out_of_order;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct seen *s = ctx;
	const struct event *e = data;

	/* seq counts per CPU: a round's first record sets where it starts */
	if (size != sizeof(*e) || (s->count && e->seq != s->next_seq))
		s->out_of_order = 1;
	s->next_seq = e->seq + 1;
	s->count++;
	return 0;
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "cevents: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_map *map;
	struct ring_buffer *rb;
	struct seen s = {0};
	clockid_t clock = CLOCK_THREAD_CPUTIME_ID;
	uint64_t n, rounds, ring = 4096;
	int err, prog_fd;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: cevents OBJECT N ROUNDS [cpu|wall]\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	rounds = strtoull(argv[3], NULL, 10);
	if (argc == 5 && strcmp(argv[4], "wall") == 0)
		clock = CLOCK_MONOTONIC;
	while (ring < n * 40)
		ring <<= 1;

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return fail("open", errno);
	map = bpf_object__find_map_by_name(obj, "events");
	if (!map)
		return fail("find map events", ENOENT);
	bpf_map__set_max_entries(map, (uint32_t)ring);
	bpf_program__set_autoload(bpf_object__find_program_by_name(obj, "on_getppid"), false);
	err = bpf_object__load(obj);
	if (err)
		return fail("load", err);
	prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "emit"));
	rb = ring_buffer__new(bpf_map__fd(map), on_record, &s, NULL);
	if (!rb)
		return fail("ring_buffer__new", errno);

	printf("{\"records\": %llu, \"ns_per_record\": [", (unsigned long long)n);
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t args[3] = {n, 0, 0};
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof(args));
		uint64_t t0, t1;

		err = bpf_prog_test_run_opts(prog_fd, &opts);
		if (err || opts.retval != n)
			return fail("test run emit", err ? err : EIO);
		s.count = 0;
		t0 = now_ns(clock);
		err = ring_buffer__consume(rb);
		t1 = now_ns(clock);
		if (err < 0)
			return fail("ring_buffer__consume", err);
		if (s.count != n || s.out_of_order) {
			fprintf(stderr, "cevents: round %llu saw %llu of %llu records%s\n",
				(unsigned long long)r, (unsigned long long)s.count,
				(unsigned long long)n, s.out_of_order ? ", out of order" : "");
			return 1;
		}
		printf("%s%.3f", r ? ", " : "", (double)(t1 - t0) / (double)n);
	}
	printf("]}\n");
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
