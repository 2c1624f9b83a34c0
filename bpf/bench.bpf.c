// SPDX-License-Identifier: GPL-2.0
/*
 * bench: the BTF-derived record shape of the benchmark (bench/run.py).
 *
 * One HASH map whose value is what a connection tracker keeps: a ~100-byte
 * struct with a run of bitfields, two unions and the usual ints, enum, char
 * array and array. The benchmark loads this object only for the map and its
 * BTF (no program), sets max_entries before load, and reads the map through
 * typed(h), whose schemas come from this BTF.
 *
 * bench/shapes.py writes the same layout with struct.pack; the benchmark
 * checks the two agree before it measures anything.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

enum bench_state {
	BENCH_NEW = 0,
	BENCH_ESTABLISHED = 1,
	BENCH_CLOSING = 2,
	BENCH_CLOSED = 3,
};

union bench_addr {
	__u32 v4;
	__u8 v6[16];
};

struct bench_conn_key {
	__u32 ifindex;
	__u32 flow;
};

struct bench_conn {
	__u64 ts_ns;		/*  0 */
	__u32 pid;		/*  8 */
	__u32 proto : 8;	/* 12: one run of bitfields over 4 bytes */
	__u32 version : 4;
	__u32 tclass : 4;
	__u32 frag : 13;
	__u32 df : 1;
	__u32 mf : 1;
	__u32 evil : 1;
	union bench_addr src;	/* 16 */
	union bench_addr dst;	/* 32 */
	__u16 sport;		/* 48 */
	__u16 dport;		/* 50 */
	enum bench_state state;	/* 52 */
	char comm[16];		/* 56 */
	__u64 packets;		/* 72 */
	__u64 bytes;		/* 80 */
	__u32 hist[4];		/* 88 */
};				/* 104 bytes */

_Static_assert(sizeof(struct bench_conn) == 104, "bench_conn is 104 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);	/* the benchmark sets its own before load */
	__type(key, struct bench_conn_key);
	__type(value, struct bench_conn);
} bench_conns SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
