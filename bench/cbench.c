/*
 * cbench: the C baseline of typedmaps' benchmark (bench/run.py builds and runs it).
 *
 * Straight libbpf calls on the very maps the Python side measures: run.py
 * passes the map fd down (the child inherits it) together with a file of
 * the keys to look up one by one and a file of the values to write back
 * under them, so C walks the same elements in the same order as every
 * Python group, for any record shape.
 *
 * Usage: cbench FD KEYS_FILE VALUES_FILE BATCH OPS [cpu|wall]
 *   FD           an open BPF map fd (any keyed type, per-CPU included)
 *   KEYS_FILE    keys back to back (key_size bytes each), looked up in order
 *   VALUES_FILE  one value buffer per key (value_size bytes; per-CPU maps:
 *                round_up(value_size, 8) bytes per possible CPU); written
 *                back with BPF_ANY, so the map keeps its contents
 *   BATCH        elements per bpf_map_lookup_batch call in the full read
 *   OPS          comma-separated, from: lookup,update,lookup_batch,update_batch
 *   cpu          time with this thread's CPU clock (CLOCK_THREAD_CPUTIME_ID,
 *                user + kernel time; the default): time slices lost to other
 *                processes on a shared machine do not count
 *   wall         time with CLOCK_MONOTONIC
 *
 * lookup_batch reads every element; update_batch writes what that read
 * found, with one bpf_map_update_batch call, into a fresh map of the same
 * type and sizes (created and closed here, outside the timing).
 *
 * Prints one JSON object: nanoseconds per element of each operation, and
 * the element count of the full read. Exits non-zero (with a message on
 * stderr) when any libbpf call fails, so a broken baseline is never
 * reported as a number.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(bench_clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "cbench: %s failed: %s\n", what, strerror(ret < 0 ? -ret : errno));
	exit(1);
}

static unsigned long parse_arg(const char *s, const char *name, unsigned long max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > max) {
		fprintf(stderr, "cbench: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

/* The whole file into a new buffer; its size in *len. */
static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die(path, -errno);
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die(path, -EIO);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int is_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

static int wants(const char *ops, const char *op)
{
	size_t n = strlen(op);

	for (const char *p = ops; (p = strstr(p, op)) != NULL; p += n)
		if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: %s FD KEYS_FILE VALUES_FILE BATCH OPS [cpu|wall]\n", argv[0]);
		return 2;
	}
	if (argc == 7) {
		if (strcmp(argv[6], "wall") == 0) {
			bench_clock = CLOCK_MONOTONIC;
		} else if (strcmp(argv[6], "cpu") != 0) {
			fprintf(stderr, "cbench: bad clock: %s (cpu or wall)\n", argv[6]);
			return 2;
		}
	}
	int fd = (int)parse_arg(argv[1], "FD", 1u << 20);
	__u32 batch = (__u32)parse_arg(argv[4], "BATCH", 1u << 24);
	const char *ops = argv[5];
	if (batch == 0) {
		fprintf(stderr, "cbench: BATCH must be positive\n");
		return 2;
	}

	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	memset(&info, 0, sizeof(info));
	int ret = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	if (ret)
		die("bpf_obj_get_info_by_fd", ret);
	size_t ksize = info.key_size;
	size_t vsize = info.value_size;
	if (is_percpu(info.type)) {
		int ncpus = libbpf_num_possible_cpus();
		if (ncpus <= 0)
			die("libbpf_num_possible_cpus", ncpus);
		vsize = ((vsize + 7) & ~(size_t)7) * (size_t)ncpus;
	}
	if (ksize == 0 || vsize == 0) {
		fprintf(stderr, "cbench: a keyed map with values is needed\n");
		return 2;
	}

	size_t klen, vlen;
	unsigned char *keys = read_file(argv[2], &klen);
	unsigned char *vals = read_file(argv[3], &vlen);
	size_t n = klen / ksize;
	if (klen % ksize || vlen != n * vsize) {
		fprintf(stderr, "cbench: %zu key bytes and %zu value bytes do not make records of %zu+%zu\n",
			klen, vlen, ksize, vsize);
		return 2;
	}
	unsigned char *v = malloc(vsize);
	size_t cap = info.max_entries ? info.max_entries : 1;
	unsigned char *all_keys = malloc(cap * ksize);
	unsigned char *all_vals = malloc(cap * vsize);
	if (!v || !all_keys || !all_vals)
		die("malloc", -ENOMEM);

	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint64_t t0, t1, sink = 0;
	double lookup = -1, update = -1, lookup_batch = -1, update_batch = -1;

	if (wants(ops, "lookup") && n) {
		t0 = now_ns();
		for (size_t i = 0; i < n; i++) {
			ret = bpf_map_lookup_elem(fd, keys + i * ksize, v);
			if (ret)
				die("bpf_map_lookup_elem", ret);
			sink += v[0];
		}
		t1 = now_ns();
		lookup = (double)(t1 - t0) / (double)n;
	}

	if (wants(ops, "update") && n) {
		t0 = now_ns();
		for (size_t i = 0; i < n; i++) {
			ret = bpf_map_update_elem(fd, keys + i * ksize, vals + i * vsize, BPF_ANY);
			if (ret)
				die("bpf_map_update_elem", ret);
		}
		t1 = now_ns();
		update = (double)(t1 - t0) / (double)n;
	}

	/* Full read, BATCH elements per call, into one array of max_entries. */
	size_t seen = 0;
	if (wants(ops, "lookup_batch") || wants(ops, "update_batch")) {
		__u64 in_tok = 0, out_tok = 0;
		int first = 1;
		t0 = now_ns();
		for (;;) {
			__u32 count = batch;
			if (cap - seen < count)
				count = (__u32)(cap - seen);
			if (count == 0)
				break;
			ret = bpf_map_lookup_batch(fd, first ? NULL : &in_tok, &out_tok,
						   all_keys + seen * ksize, all_vals + seen * vsize,
						   &count, &opts);
			if (ret && ret != -ENOENT)
				die("bpf_map_lookup_batch", ret);
			for (__u32 i = 0; i < count; i++)
				sink += all_vals[(seen + i) * vsize];
			seen += count;
			if (ret == -ENOENT)
				break;
			first = 0;
			in_tok = out_tok;
		}
		t1 = now_ns();
		if (seen)
			lookup_batch = (double)(t1 - t0) / (double)seen;
	}

	if (wants(ops, "update_batch") && seen) {
		LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = info.map_flags);
		int fresh = bpf_map_create(info.type, "cb_fresh", info.key_size, info.value_size,
					   info.max_entries, &copts);
		if (fresh < 0)
			die("bpf_map_create", fresh);
		__u32 count = (__u32)seen;
		t0 = now_ns();
		ret = bpf_map_update_batch(fresh, all_keys, all_vals, &count, &opts);
		t1 = now_ns();
		close(fresh);
		if (ret || count != seen)
			die("bpf_map_update_batch", ret);
		update_batch = (double)(t1 - t0) / (double)seen;
	}

	printf("{\"count\": %zu, \"checksum\": %llu", seen, (unsigned long long)sink);
	const char *names[] = {"lookup", "update", "lookup_batch", "update_batch"};
	double got[] = {lookup, update, lookup_batch, update_batch};
	for (int i = 0; i < 4; i++)
		if (got[i] >= 0)
			printf(", \"%s\": %.2f", names[i], got[i]);
	printf("}\n");

	free(keys);
	free(vals);
	free(v);
	free(all_keys);
	free(all_vals);
	return 0;
}
