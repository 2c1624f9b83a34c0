// SPDX-License-Identifier: GPL-2.0
/*
 * A type zoo for typedmaps.btf, the `typedmaps dump` CLI and `typedmaps gen`.
 *
 * Every kind of C type that can sit in a map key or value appears at least
 * once: integers of every size and sign, bool, char arrays (printable,
 * non-printable, empty), unsigned char arrays, 2-D arrays, nested, named and
 * anonymous structs and unions, enums (negative, 1-byte packed, 64-bit),
 * bitfields (signed, enum-typed, runs spanning storage units, packed),
 * typedef/const/volatile, float/double and pointers. The maps cover HASH with
 * a struct key, ARRAY, PERCPU_ARRAY, PERCPU_HASH, QUEUE, STACK and LRU_HASH.
 *
 * The XDP program `zoo_fill` writes one entry into several maps from the BPF
 * side (keys zeroed with __builtin_memset, so padding is never stack garbage).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

typedef __u32 zoo_u32_t;
typedef unsigned char zoo_byte_t;

enum zoo_color {
	ZOO_RED = 0,
	ZOO_GREEN = 5,
	ZOO_BLUE = -3,
};

/* 1-byte enums: unsigned values up to 255, and a signed one. */
enum __attribute__((packed)) zoo_small {
	ZOO_SMALL_A = 1,
	ZOO_SMALL_B = 200,
	ZOO_SMALL_MAX = 255,
};

enum __attribute__((packed)) zoo_tiny {
	ZOO_TINY_NEG = -1,
	ZOO_TINY_POS = 7,
};

/* Needs 64 bits; clang >= 15 emits BTF_KIND_ENUM64 for it. */
enum zoo_wide {
	ZOO_WIDE_ONE = 1,
	ZOO_WIDE_BIG = 0x100000000ULL,
	ZOO_WIDE_TOP = 0xfffffffffffffff0ULL,
};

/* HASH key: inner padding after proto and tail padding after zone. */
struct wide_key {
	__u8 proto;
	__u16 port;
	__u32 addr;
	__u64 cookie;
	__s8 zone;
};

struct zoo_ints {
	__u8 u8;
	__s8 s8;
	__u16 u16;
	__s16 s16;
	__u32 u32;
	__s32 s32;
	__u64 u64;
	__s64 s64;
	char c;
	signed char sc;
	unsigned char uc;
	bool flag;
	_Bool flag2;
};

struct zoo_inner {
	__u16 x;
	__u32 y;
};

union zoo_word {
	__u32 word;
	__u8 bytes[4];
	struct {
		__u16 lo;
		__u16 hi;
	} halves;
};

struct zoo_bits {
	__u8 head;
	__u32 a : 3;
	__s32 b : 5;		/* signed */
	__u32 c : 12;
	__u64 big : 30;		/* bits 28..57: crosses c's 32-bit unit */
	enum zoo_color col : 4;	/* enum bitfield */
	bool bb : 1;
	__s16 neg : 9;		/* signed, starts a second run */
	__u8 tail;
};

struct __attribute__((packed)) zoo_packed_bits {
	__u8 p : 5;
	__u16 q : 7;		/* straddles bytes 0 and 1 */
	__u32 r : 19;
	__u8 s;
};

/* The ARRAY value: one of everything. */
struct zoo_value {
	struct zoo_ints ints;
	char name[16];		/* printable */
	char blob[6];		/* non-printable */
	char empty[8];		/* all zeros: "" */
	unsigned char raw[5];
	__u8 mac[6];
	zoo_byte_t tbytes[3];	/* typedef'd unsigned char: never a string */
	__u32 grid[2][3];
	char names[2][4];	/* 2-D char array: a list of strings */
	struct zoo_inner inner;
	struct zoo_inner pair[2];
	struct {
		__u8 a;
		__u64 b;
	} anon_named;		/* anonymous struct type, named member */
	union {
		__u32 as_u32;
		__s16 as_s16;
	};			/* anonymous union member */
	struct {
		__u16 m1;
		__u8 m2;
	};			/* anonymous struct member */
	union zoo_word u;
	enum zoo_color color;
	enum zoo_small small;
	enum zoo_tiny tiny;
	enum zoo_wide wide;
	struct zoo_bits bits;
	struct zoo_packed_bits pbits;
	zoo_u32_t typedefd;
	const __u32 cst;
	volatile __u16 vol;
	float f;
	double d;
	void *ptr;
	struct zoo_inner *iptr;
	__u64 (*fnptr)(void);
};

/* Per-CPU values: floats and counters. */
struct zoo_stats {
	__u64 packets;
	__u64 bytes;
	double avg;
	float ratio;
	__u8 kind;
};

struct zoo_event {
	__u32 pid;
	char comm[16];
	enum zoo_small level;
	__s64 delta;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct wide_key);
	__type(value, struct zoo_inner);
} zoo_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct zoo_value);
} zoo_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct zoo_stats);
} zoo_pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, enum zoo_color);
	__type(value, struct zoo_bits);
} zoo_pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, struct zoo_event);
} zoo_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, double);
} zoo_stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, union zoo_word);
} zoo_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, char[8]);
	__type(value, float);
} zoo_floats SEC(".maps");

SEC("xdp")
int zoo_fill(struct xdp_md *ctx)
{
	struct wide_key k;
	struct zoo_inner v;
	struct zoo_event ev;
	__u64 lk = 7;
	union zoo_word w;

	__builtin_memset(&k, 0, sizeof(k));
	k.proto = 17;
	k.port = 53;
	k.addr = 0x0a000001;
	k.cookie = 99;
	k.zone = -2;
	__builtin_memset(&v, 0, sizeof(v));
	v.x = 1;
	v.y = 2;
	bpf_map_update_elem(&zoo_hash, &k, &v, BPF_ANY);

	__builtin_memset(&ev, 0, sizeof(ev));
	ev.pid = 42;
	__builtin_memcpy(ev.comm, "zoo-bpf", 8);
	ev.level = ZOO_SMALL_B;
	ev.delta = -5;
	bpf_map_push_elem(&zoo_queue, &ev, BPF_ANY);

	w.word = 0x01020304;
	bpf_map_update_elem(&zoo_lru, &lk, &w, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
