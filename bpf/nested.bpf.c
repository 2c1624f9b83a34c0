// SPDX-License-Identifier: GPL-2.0
/*
 * nested: maps of maps and program arrays, for the MapOfMaps and
 * ProgramArray tests.
 *
 *   outer_arr    ARRAY_OF_MAPS of `struct inner_arr` templates; slot 0 is
 *                initialised statically with inner_a
 *   outer_hash   HASH_OF_MAPS (__u32 keys) of the same template; key 7 is
 *                initialised statically with inner_b
 *   jmp          PROG_ARRAY; slot 1 is initialised statically with stage_b
 *
 * Programs, run by test_run; user space writes the arguments into .bss
 * first:
 *   through_outer  SEC("syscall"): looks up outer_arr[arg_slot] and outer_hash[arg_key] and
 *                  adds arg_value to element arg_index of each inner map
 *                  found; returns a bit mask of which were found
 *   dispatch       SEC("xdp"): tail-calls jmp[arg_slot]; returns 100 when the slot is
 *                  empty (the tail call falls through)
 *   stage_a/b/c    SEC("xdp") tail-call targets: return 1, 2, 3 (XDP
 *                  actions DROP, PASS, TX)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_arr {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_arr inner_a SEC(".maps");
struct inner_arr inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner_arr);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner_arr);
} outer_hash SEC(".maps") = {
	.values = { [7] = &inner_b },
};

int stage_b(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (struct xdp_md *));
} jmp SEC(".maps") = {
	.values = { [1] = (void *)&stage_b },
};

__u32 arg_slot;
__u32 arg_key;
__u32 arg_index;
__u64 arg_value;

SEC("syscall")
int through_outer(void *ctx)
{
	int found = 0;
	__u32 slot = arg_slot, key = arg_key, index = arg_index;
	void *inner = bpf_map_lookup_elem(&outer_arr, &slot);

	if (inner) {
		__u64 *v = bpf_map_lookup_elem(inner, &index);

		if (v) {
			*v += arg_value;
			found |= 1;
		}
	}
	inner = bpf_map_lookup_elem(&outer_hash, &key);
	if (inner) {
		__u64 *v = bpf_map_lookup_elem(inner, &index);

		if (v) {
			*v += arg_value;
			found |= 2;
		}
	}
	return found;
}

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, arg_slot);
	return 100;
}

SEC("xdp")
int stage_a(struct xdp_md *ctx)
{
	return 1;
}

SEC("xdp")
int stage_b(struct xdp_md *ctx)
{
	return 2;
}

SEC("xdp")
int stage_c(struct xdp_md *ctx)
{
	return 3;
}

char LICENSE[] SEC("license") = "GPL";
