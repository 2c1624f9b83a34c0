// SPDX-License-Identifier: GPL-2.0
/*
 * userring: drains a BPF_MAP_TYPE_USER_RINGBUF of commands that user space
 * pushes, and records what it saw.
 *
 * struct command (16 bytes, little-endian): seq, op, arg.
 *
 * drain (SEC raw_tp, run with BPF_PROG_TEST_RUN): one
 *   bpf_user_ringbuf_drain() of `commands`; its return value goes to
 *   last_drained (or a negative errno).
 * on_getppid (SEC raw_tp/sys_enter): the same on each getppid() of the
 *   process `target_tgid`.
 *
 * Results: `seen` (ARRAY, index = the order of arrival, value = seq) for the
 * first SEEN_MAX commands; .bss counters drained (commands read), short
 * (samples smaller than a command), arg_sum (sum of arg) and last_drained.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SEEN_MAX 65536

struct command {
	__u64 seq;
	__u32 op;
	__u32 arg;
};

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 256 * 1024);
} commands SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEEN_MAX);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

const volatile __u32 target_tgid = 0;
const volatile __s64 target_syscall = -1;

__u64 drained;
__u64 short_samples;
__u64 arg_sum;
__s64 last_drained;

/* BTF anchor for user space: `typedmaps gen --type command`. */
struct command *unused_command __attribute__((unused));

static long on_command(struct bpf_dynptr *dynptr, void *ctx)
{
	struct command cmd;
	__u32 idx;

	if (bpf_dynptr_read(&cmd, sizeof(cmd), dynptr, 0, 0)) {
		__sync_fetch_and_add(&short_samples, 1);
		return 0;
	}
	idx = drained;
	if (idx < SEEN_MAX)
		bpf_map_update_elem(&seen, &idx, &cmd.seq, BPF_ANY);
	drained = drained + 1;
	arg_sum += cmd.arg;
	return 0;
}

static void drain_all(void)
{
	last_drained = bpf_user_ringbuf_drain(&commands, on_command, NULL, 0);
}

SEC("raw_tp")
int drain(void *ctx)
{
	drain_all();
	return 0;
}

SEC("raw_tp/sys_enter")
int on_getppid(struct bpf_raw_tracepoint_args *ctx)
{
	__s64 id = (__s64)ctx->args[1];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!target_tgid || tgid != target_tgid || id != target_syscall)
		return 0;
	drain_all();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
