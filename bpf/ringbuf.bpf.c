// SPDX-License-Identifier: GPL-2.0
/*
 * ringbuf: records into a BPF_MAP_TYPE_RINGBUF (the shapes are in event_records.h).
 *
 * emit (SEC raw_tp, run with BPF_PROG_TEST_RUN): ctx_in is three u64s,
 *   count, mode (enum emit_mode) and param; emits `count` records in one run
 *   with bpf_loop. param: MODE_VAR the largest data length (<= VAR_MAX),
 *   MODE_DISCARD / MODE_MIXED every param-th record is discarded / short,
 *   MODE_FIXED the `value` field.
 * on_getppid (SEC raw_tp/sys_enter): one struct event for each getppid()
 *   of the process `target_tgid` (.rodata; `target_syscall` is getppid's
 *   number on this architecture).
 *
 * Counters (.bss), which user space compares with what it received:
 *   emitted    records submitted
 *   dropped    reservations that failed (the ring was full)
 *   discarded  records reserved and then discarded
 *   next_seq   the next sequence number of each CPU
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "event_records.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

__u64 emitted;
__u64 dropped;
__u64 discarded;

struct loop_ctx {
	__u64 mode;
	__u64 param;
	__u32 cpu;
	__u32 tgid;
};

static void emit_fixed(__u64 seq, struct loop_ctx *lc, __u32 kind, __u32 value, int discard)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return;
	}
	e->seq = seq;
	e->ts_ns = bpf_ktime_get_ns();
	e->tgid = lc->tgid;
	e->cpu = lc->cpu;
	e->kind = kind;
	e->value = value;
	if (discard) {
		bpf_ringbuf_discard(e, 0);
		__sync_fetch_and_add(&discarded, 1);
		return;
	}
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&emitted, 1);
}

static void emit_var(__u64 seq, struct loop_ctx *lc, __u32 len)
{
	struct var_event v;
	__u64 size = 16 + (__u64)len;
	int i;

	__builtin_memset(&v, 0, sizeof(v));
	v.seq = seq;
	v.len = len;
	v.cpu = lc->cpu;
	for (i = 0; i < VAR_MAX; i++)
		v.data[i] = (seq + i) & 0xff;
	/* keep the bounds check on the register the helper gets */
	asm volatile("" : "+r"(size));
	if (size > sizeof(v))
		return;
	if (bpf_ringbuf_output(&events, &v, size, 0)) {
		__sync_fetch_and_add(&dropped, 1);
		return;
	}
	__sync_fetch_and_add(&emitted, 1);
}

static int emit_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	__u64 seq = take_seq(lc->cpu);
	__u64 param = lc->param;

	switch (lc->mode) {
	case MODE_VAR:
		emit_var(seq, lc, seq % ((param > VAR_MAX ? VAR_MAX : param) + 1));
		break;
	case MODE_DISCARD:
		emit_fixed(seq, lc, EV_TEST_RUN, i, param && seq % param == param - 1);
		break;
	case MODE_MIXED:
		if (param && seq % param == param - 1)
			emit_var(seq, lc, 4);
		else
			emit_fixed(seq, lc, EV_TEST_RUN, i, 0);
		break;
	default:
		emit_fixed(seq, lc, EV_TEST_RUN, (__u32)param, 0);
	}
	return 0;
}

SEC("raw_tp")
int emit(struct bpf_raw_tracepoint_args *ctx)
{
	struct loop_ctx lc = {
		.mode = ctx->args[1],
		.param = ctx->args[2],
		.cpu = bpf_get_smp_processor_id(),
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};

	return bpf_loop((__u32)ctx->args[0], emit_one, &lc, 0);
}

SEC("raw_tp/sys_enter")
int on_getppid(struct bpf_raw_tracepoint_args *ctx)
{
	struct loop_ctx lc = {.cpu = bpf_get_smp_processor_id()};

	if (!is_target_getppid(ctx, &lc.tgid))
		return 0;
	emit_fixed(take_seq(lc.cpu), &lc, EV_SYSCALL, (__u32)target_syscall, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
