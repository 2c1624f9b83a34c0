/*
 * cbench: the C baseline for typedmaps' benchmark (bench/run.py builds and runs it).
 *
 * Straight libbpf calls on the same kinds of maps the Python side measures:
 * a BPF_MAP_TYPE_HASH with a 16-byte key and a 32-byte value, and a
 * BPF_MAP_TYPE_PERCPU_HASH of the same shape. Keys are generated with the
 * same formula as bench/run.py (bench_key below), so both sides walk the
 * same keys in the same order.
 *
 * Usage: cbench ENTRIES OPS BATCH [cpu|wall]
 *   ENTRIES  elements in the hash map (full read and batch update size)
 *   OPS      per-op lookups/updates timed (the first OPS keys)
 *   BATCH    elements per bpf_map_lookup_batch call in the full read
 *   cpu      time with this thread's CPU clock (CLOCK_THREAD_CPUTIME_ID,
 *            user + kernel time; the default): time slices lost to other
 *            processes on a shared machine do not count
 *   wall     time with CLOCK_MONOTONIC
 *
 * Prints one JSON object: nanoseconds per element for each measurement.
 * Exits non-zero (with a message on stderr) when any libbpf call fails, so a
 * broken baseline is never reported as a number.
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

struct bench_key {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t pad[3];
};

struct bench_value {
	uint64_t packets;
	uint64_t bytes;
	uint64_t first_ns;
	uint64_t last_ns;
};

_Static_assert(sizeof(struct bench_key) == 16, "key is 16 bytes");
_Static_assert(sizeof(struct bench_value) == 32, "value is 32 bytes");

/* Must match bench/run.py's bench_key(). */
static void bench_key(uint32_t i, struct bench_key *k)
{
	memset(k, 0, sizeof(*k));
	k->src = i;
	k->dst = i * 2654435761u;
	k->sport = (uint16_t)(i & 0xffff);
	k->dport = (uint16_t)((i >> 16) & 0xffff);
	k->proto = 6;
}

/* Must match bench/run.py's bench_value(). */
static void bench_value(uint32_t i, struct bench_value *v)
{
	v->packets = i;
	v->bytes = (uint64_t)i * 1500u;
	v->first_ns = (uint64_t)i << 20;
	v->last_ns = ((uint64_t)i << 20) + 12345u;
}

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

static unsigned long parse_arg(const char *s, const char *name)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0 || v > 100000000ul) {
		fprintf(stderr, "cbench: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s ENTRIES OPS BATCH [cpu|wall]\n", argv[0]);
		return 2;
	}
	if (argc == 5) {
		if (strcmp(argv[4], "wall") == 0) {
			bench_clock = CLOCK_MONOTONIC;
		} else if (strcmp(argv[4], "cpu") != 0) {
			fprintf(stderr, "cbench: bad clock: %s (cpu or wall)\n", argv[4]);
			return 2;
		}
	}
	uint32_t entries = (uint32_t)parse_arg(argv[1], "ENTRIES");
	uint32_t ops = (uint32_t)parse_arg(argv[2], "OPS");
	uint32_t batch = (uint32_t)parse_arg(argv[3], "BATCH");
	if (ops > entries)
		ops = entries;

	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		die("libbpf_num_possible_cpus", ncpus);

	struct bench_key *keys = calloc(entries, sizeof(*keys));
	struct bench_value *vals = calloc(entries, sizeof(*vals));
	struct bench_key *out_keys = calloc(batch, sizeof(*out_keys));
	struct bench_value *out_vals = calloc(batch, sizeof(*out_vals));
	struct bench_value *pcpu = calloc((size_t)ncpus, sizeof(*pcpu));
	if (!keys || !vals || !out_keys || !out_vals || !pcpu)
		die("calloc", -ENOMEM);
	for (uint32_t i = 0; i < entries; i++) {
		bench_key(i, &keys[i]);
		bench_value(i, &vals[i]);
	}

	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "cb_hash", sizeof(struct bench_key),
				sizeof(struct bench_value), entries, NULL);
	if (fd < 0)
		die("bpf_map_create(HASH)", fd);
	int pfd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "cb_pcpu", sizeof(struct bench_key),
				 sizeof(struct bench_value), ops, NULL);
	if (pfd < 0)
		die("bpf_map_create(PERCPU_HASH)", pfd);

	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint64_t t0, t1;
	int ret;

	/* Batch update: every entry in one call (the map is empty: inserts). */
	uint32_t count = entries;
	t0 = now_ns();
	ret = bpf_map_update_batch(fd, keys, vals, &count, &opts);
	t1 = now_ns();
	if (ret || count != entries)
		die("bpf_map_update_batch", ret);
	double update_batch = (double)(t1 - t0) / entries;

	/* Per-op lookup of the first OPS keys. */
	struct bench_value v;
	uint64_t sink = 0;
	t0 = now_ns();
	for (uint32_t i = 0; i < ops; i++) {
		ret = bpf_map_lookup_elem(fd, &keys[i], &v);
		if (ret)
			die("bpf_map_lookup_elem", ret);
		sink += v.packets;
	}
	t1 = now_ns();
	double lookup = (double)(t1 - t0) / ops;

	/* Per-op update (replace) of the first OPS keys. */
	t0 = now_ns();
	for (uint32_t i = 0; i < ops; i++) {
		ret = bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY);
		if (ret)
			die("bpf_map_update_elem", ret);
	}
	t1 = now_ns();
	double update = (double)(t1 - t0) / ops;

	/* Full read with bpf_map_lookup_batch, BATCH elements per call. */
	uint64_t in_tok = 0, out_tok = 0, seen = 0;
	int first = 1;
	t0 = now_ns();
	for (;;) {
		count = batch;
		ret = bpf_map_lookup_batch(fd, first ? NULL : &in_tok, &out_tok, out_keys, out_vals,
					   &count, &opts);
		if (ret && ret != -ENOENT)
			die("bpf_map_lookup_batch", ret);
		for (uint32_t i = 0; i < count; i++)
			sink += out_vals[i].packets;
		seen += count;
		if (ret == -ENOENT)
			break;
		first = 0;
		in_tok = out_tok;
	}
	t1 = now_ns();
	if (seen != entries) {
		fprintf(stderr, "cbench: lookup_batch saw %llu of %u entries\n",
			(unsigned long long)seen, entries);
		return 1;
	}
	double lookup_batch = (double)(t1 - t0) / entries;

	/* Per-CPU lookup: fill OPS keys (same value on every CPU), then look up. */
	for (uint32_t i = 0; i < ops; i++) {
		for (int c = 0; c < ncpus; c++)
			bench_value(i, &pcpu[c]);
		ret = bpf_map_update_elem(pfd, &keys[i], pcpu, BPF_ANY);
		if (ret)
			die("bpf_map_update_elem(PERCPU_HASH)", ret);
	}
	t0 = now_ns();
	for (uint32_t i = 0; i < ops; i++) {
		ret = bpf_map_lookup_elem(pfd, &keys[i], pcpu);
		if (ret)
			die("bpf_map_lookup_elem(PERCPU_HASH)", ret);
		sink += pcpu[ncpus - 1].packets;
	}
	t1 = now_ns();
	double percpu_lookup = (double)(t1 - t0) / ops;

	printf("{\"entries\": %u, \"ops\": %u, \"batch\": %u, \"ncpus\": %d, "
	       "\"clock\": \"%s\", \"lookup\": %.2f, \"update\": %.2f, "
	       "\"lookup_batch\": %.2f, \"update_batch\": %.2f, \"percpu_lookup\": %.2f, "
	       "\"checksum\": %llu}\n",
	       entries, ops, batch, ncpus, bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu",
	       lookup, update, lookup_batch, update_batch, percpu_lookup,
	       (unsigned long long)sink);

	close(pfd);
	close(fd);
	free(keys);
	free(vals);
	free(out_keys);
	free(out_vals);
	free(pcpu);
	return 0;
}
