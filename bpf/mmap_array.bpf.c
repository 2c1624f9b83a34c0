// SPDX-License-Identifier: GPL-2.0
/*
 * mmap_array: a BPF_F_MMAPABLE array shared with user space, for the
 * memory() and TypedMap-through-memory tests.
 *
 *   slots    ARRAY (mmapable) of struct slot; user space writes slot 0
 *            through the mapping, the program answers in slot 1
 *   odd      ARRAY (mmapable) of a 12-byte value: a 16-byte stride
 *   sealed   ARRAY (mmapable, BPF_F_RDONLY_PROG): programs may only read it
 *
 * Program: answer (SEC("syscall"), run by test_run): copies slot 0 into
 * slot 1 with a doubled, incremented seq, and returns slot 0's `a`
 * (truncated to 32 bits).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct slot {
	__u64 a;
	__u32 b;
	__u32 seq;
};

struct odd {
	__u32 x;
	__u32 y;
	__u32 z;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, struct odd);
} odd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sealed SEC(".maps");

SEC("syscall")
int answer(void *ctx)
{
	__u32 zero = 0, one = 1;
	struct slot *in = bpf_map_lookup_elem(&slots, &zero);
	struct slot *out = bpf_map_lookup_elem(&slots, &one);
	__u64 *s = bpf_map_lookup_elem(&sealed, &zero);

	if (!in || !out || !s)
		return -1;
	out->a = in->a * 2 + *s;
	out->b = in->b;
	out->seq = in->seq + 1;
	return (int)in->a;
}

char LICENSE[] SEC("license") = "GPL";
