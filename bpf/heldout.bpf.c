// SPDX-License-Identifier: GPL-2.0
/*
 * heldout: one small object with every kind of program data, used only by
 * tests/test_data_heldout.py (a check written from the public API alone).
 *
 * Globals:
 *   .rodata       ho_scale (__u32), ho_tag (char[8])
 *   .data         ho_total (__u64), ho_knobs (struct), ho_level (enum)
 *   .bss          ho_runs, ho_tgid, ho_seen
 *   .data.extra   ho_extra (__s64), ho_window (__u32[4])
 *   .kconfig      LINUX_KERNEL_VERSION
 * Maps:
 *   ho_cells      BPF_F_MMAPABLE ARRAY of struct ho_cell (4 slots)
 *   ho_outer      ARRAY_OF_MAPS (3 slots) of an ARRAY template; slot 0 holds
 *                 ho_inner0 statically
 *   ho_jmp        PROG_ARRAY (2 slots), empty until user space fills it
 *   ho_per_task   TASK_STORAGE of struct ho_task
 * Programs:
 *   ho_entry      SEC("xdp"), run by test_run: cells[1] := f(cells[0], globals);
 *                 adds cells[0].sum into element 0 of the inner map at outer[1];
 *                 then tail-calls ho_jmp[0] (returns XDP_PASS when it is empty,
 *                 XDP_DROP if .kconfig was not filled in)
 *   ho_tail       SEC("xdp"): the tail-call target; returns XDP_TX
 *   ho_on_getppid tracepoint syscalls/sys_enter_getppid: for the process whose
 *                 tgid user space wrote into ho_tgid, counts the call in its
 *                 task storage and in cells[2]
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct;

enum ho_level { HO_LOW = 1, HO_HIGH = 5 };

struct ho_knobs {
	__u16 port;
	__u8 on;
	__u8 spare;
	__s32 weight;
};

struct ho_cell {
	__u64 sum;
	__u32 seq;
	__s32 delta;
};

struct ho_task {
	__u64 calls;
	__u32 scale;
	__u32 level;
};

const volatile __u32 ho_scale = 4;
const volatile char ho_tag[8] = "held";
__u64 ho_total = 10;
struct ho_knobs ho_knobs = { .port = 53, .on = 1, .weight = -7 };
enum ho_level ho_level = HO_LOW;
__u32 ho_runs;
__u32 ho_tgid;
__u64 ho_seen;
__s64 ho_extra SEC(".data.extra") = -100;
__u32 ho_window[4] SEC(".data.extra") = { 1, 2, 3, 4 };
extern __u32 LINUX_KERNEL_VERSION __kconfig;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct ho_cell);
} ho_cells SEC(".maps");

struct ho_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
};

struct ho_inner ho_inner0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct ho_inner);
} ho_outer SEC(".maps") = {
	.values = { [0] = &ho_inner0 },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} ho_jmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ho_task);
} ho_per_task SEC(".maps");

SEC("xdp")
int ho_entry(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1;
	struct ho_cell *in, *out;
	__u64 *slot;
	void *inner;

	in = bpf_map_lookup_elem(&ho_cells, &k0);
	out = bpf_map_lookup_elem(&ho_cells, &k1);
	if (!in || !out)
		return XDP_ABORTED;
	if (!LINUX_KERNEL_VERSION)
		return XDP_DROP; /* libbpf fills it in at load */
	ho_runs++;
	out->sum = in->sum * ho_scale + ho_extra;
	out->seq = in->seq + 1;
	out->delta = ho_knobs.on ? ho_knobs.weight : 0;
	ho_total += ho_window[ho_runs & 3];
	inner = bpf_map_lookup_elem(&ho_outer, &k1);
	if (inner) {
		slot = bpf_map_lookup_elem(inner, &k0);
		if (slot)
			__sync_fetch_and_add(slot, in->sum);
	}
	bpf_tail_call(ctx, &ho_jmp, 0);
	return XDP_PASS;
}

SEC("xdp")
int ho_tail(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("tp/syscalls/sys_enter_getppid")
int ho_on_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ho_task *t;
	struct ho_cell *c;
	__u32 k2 = 2;

	if (!ho_tgid || tgid != ho_tgid)
		return 0;
	t = bpf_task_storage_get(&ho_per_task, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t) {
		__sync_fetch_and_add(&t->calls, 1);
		t->scale = ho_scale;
		t->level = ho_level;
	}
	c = bpf_map_lookup_elem(&ho_cells, &k2);
	if (c) {
		__sync_fetch_and_add(&c->sum, ho_knobs.port);
		__sync_fetch_and_add(&c->seq, 1);
	}
	__sync_fetch_and_add(&ho_seen, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
