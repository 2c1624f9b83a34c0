// SPDX-License-Identifier: GPL-2.0
/*
 * BTF that the kernel accepts but that is awkward to read: zero-size members,
 * zero-length and zero-size-element arrays (2**31 - 1 empty structs, in a
 * struct and in a union), and enumerator names Python gives meaning to
 * (mro, _missing_, name, value, None, True, _, __init__, match, real).
 *
 * `awkward` can be compared with bpftool; `awkward_huge` cannot (bpftool
 * prints every one of its 2**31 - 1 empty elements), and must still be
 * read, typed and dumped at once.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct empty {};

enum odd_names {
	mro = 1,
	_missing_ = 2,
	name = 3,
	value = 4,
	None = 5,
	True = 6,
	_ = 7,
	__init__ = 8,
	match = 9,
	real = 10,
	_value_ = 11,
};

struct awkward_value {
	__u32 head;
	struct empty nothing;		/* a member of size 0 */
	enum odd_names odd;
	union {
		struct empty e;
		__u32 word;
	} u;
	__u8 tail[0];			/* a zero-length array */
};

struct huge_value {
	__u32 head;
	struct empty many[0x7fffffff];	/* 2**31 - 1 elements, 0 bytes */
	union {
		struct empty e[0x7fffffff];
		__u32 word;
	} u;				/* a union holding one */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct awkward_value);
} awkward SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct huge_value);
} awkward_huge SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
