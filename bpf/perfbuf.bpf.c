// SPDX-License-Identifier: GPL-2.0
/*
 * perfbuf: records into a BPF_MAP_TYPE_PERF_EVENT_ARRAY, one perf ring per
 * CPU (the shapes are in event_records.h).
 *
 * emit (SEC raw_tp, run with BPF_PROG_TEST_RUN): ctx_in is three u64s,
 *   count, mode (MODE_FIXED, MODE_VAR or MODE_MIXED) and param, as in
 *   ringbuf.bpf.c; every record goes to the ring of the CPU it runs on.
 * on_getppid (SEC raw_tp/sys_enter): one struct event for each getppid()
 *   of the process `target_tgid`.
 *
 * Counters (.bss): emitted (bpf_perf_event_output succeeded), dropped (it
 * failed: that CPU's ring was full; the kernel counts the same samples as
 * lost and reports them in the ring), next_seq per CPU.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "event_records.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

__u64 emitted;
__u64 dropped;

struct loop_ctx {
	void *ctx;
	__u64 mode;
	__u64 param;
	__u32 cpu;
	__u32 tgid;
};

static void count(long err)
{
	if (err)
		__sync_fetch_and_add(&dropped, 1);
	else
		__sync_fetch_and_add(&emitted, 1);
}

static void emit_fixed(void *ctx, __u64 seq, struct loop_ctx *lc, __u32 kind, __u32 value)
{
	struct event e = {
		.seq = seq,
		.ts_ns = bpf_ktime_get_ns(),
		.tgid = lc->tgid,
		.cpu = lc->cpu,
		.kind = kind,
		.value = value,
	};

	count(bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, &e, sizeof(e)));
}

static void emit_var(void *ctx, __u64 seq, struct loop_ctx *lc, __u32 len)
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
	asm volatile("" : "+r"(size));
	if (size > sizeof(v))
		return;
	count(bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, &v, size));
}

static int emit_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	__u64 seq = take_seq(lc->cpu);
	__u64 param = lc->param;

	switch (lc->mode) {
	case MODE_VAR:
		emit_var(lc->ctx, seq, lc, seq % ((param > VAR_MAX ? VAR_MAX : param) + 1));
		break;
	case MODE_MIXED:
		if (param && seq % param == param - 1)
			emit_var(lc->ctx, seq, lc, 4);
		else
			emit_fixed(lc->ctx, seq, lc, EV_TEST_RUN, i);
		break;
	default:
		emit_fixed(lc->ctx, seq, lc, EV_TEST_RUN, (__u32)param);
	}
	return 0;
}

SEC("raw_tp")
int emit(struct bpf_raw_tracepoint_args *ctx)
{
	struct loop_ctx lc = {
		.ctx = ctx,
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
	emit_fixed(ctx, take_seq(lc.cpu), &lc, EV_SYSCALL, (__u32)target_syscall);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
