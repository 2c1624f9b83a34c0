// SPDX-License-Identifier: GPL-2.0
/*
 * tracecount: count system calls per process, on the raw sys_enter
 * tracepoint (attached through bpf_raw_tracepoint_open: needs no tracefs).
 *
 * Configuration (.rodata, set before load):
 *   target_tgid     count only this process (0 = every process)
 *   target_syscall  count only this syscall number (-1 = every syscall)
 * Run-time switch (.data, writable from user space while attached):
 *   enabled         0 stops counting; starts at 1
 * Results:
 *   calls_by_pid    HASH tgid (__u32) -> calls (__u64)
 *   total_calls     .bss __u64, every counted call
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls_by_pid SEC(".maps");

const volatile __u32 target_tgid = 0;
const volatile __s64 target_syscall = -1;

__u32 enabled = 1;	/* .data */
__u64 total_calls;	/* .bss */

SEC("raw_tp/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id) */
	__s64 id = (__s64)ctx->args[1];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!enabled)
		return 0;
	if (target_syscall >= 0 && id != target_syscall)
		return 0;
	if (target_tgid && tgid != target_tgid)
		return 0;

	__sync_fetch_and_add(&total_calls, 1);
	__u64 *n = bpf_map_lookup_elem(&calls_by_pid, &tgid);

	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;

		/* Lost race with another CPU: retry as an add. */
		if (bpf_map_update_elem(&calls_by_pid, &tgid, &one, BPF_NOEXIST) != 0) {
			n = bpf_map_lookup_elem(&calls_by_pid, &tgid);
			if (n)
				__sync_fetch_and_add(n, 1);
		}
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
