// SPDX-License-Identifier: GPL-2.0
/*
 * globals: global variables in every kind of data section, for the typed
 * globals tests (obj.globals).
 *
 *   .rodata          const volatile configuration, set before load
 *   .data            initialised variables, writable while loaded
 *   .bss             zero-initialised variables, writable while loaded
 *   .data.custom     a custom writable section
 *   .rodata.custom   a custom read-only section
 *   .kconfig         values libbpf fills in at load (read-only)
 *
 * Programs:
 *   step        SEC("syscall"): reads the configuration and the commands
 *               user space wrote, writes results back (run by test_run)
 *   on_getppid  tracepoint syscalls/sys_enter_getppid: counts the calls of
 *               the process whose tgid user space wrote into target_tgid
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum mode {
	MODE_OFF = 0,
	MODE_COUNT = 1,
	MODE_TRACE = 7,
};

struct limits {
	__u32 max_pkts;
	__u16 port;
	__u8 flags;
	_Bool strict;
	__u64 budget;
};

/* .rodata */
const volatile __u32 ro_rate = 1;
const volatile char ro_name[16] = "typedmaps";
const volatile enum mode ro_mode = MODE_COUNT;
const volatile __s16 ro_offsets[3] = { -1, 0, 1 };

/* .data */
__u64 counter = 7;
__s32 delta = -3;
_Bool enabled = 1;
struct limits limits = { .max_pkts = 100, .port = 80, .flags = 3, .strict = 0, .budget = 1000 };
__u32 history[4] = { 1, 2, 3, 4 };
char label[8] = "abc";
enum mode mode = MODE_TRACE;

/* .bss */
__u64 runs;
__u64 seen_counter;
__s64 seen_delta;
__u32 seen_rate;
__u32 seen_history_sum;
__u32 seen_custom;
__u32 seen_kernel;
__u32 target_tgid;
__u64 getppid_calls;

/* custom sections */
__u32 custom_data SEC(".data.custom") = 11;
const volatile __u32 custom_ro SEC(".rodata.custom") = 22;

/* static: not exposed (as in bpftool's skeletons) */
static __u32 hidden_static = 5;

/* .kconfig */
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;

SEC("syscall")
int step(void *ctx)
{
	runs++;
	seen_counter = counter;
	seen_delta = delta;
	seen_rate = ro_rate;
	seen_history_sum = history[0] + history[1] + history[2] + history[3];
	seen_custom = custom_data + custom_ro;
	hidden_static++;
	if (runs > 1000000000)
		bpf_printk("never printed: %llu", runs);	/* a static format string in .rodata */
	seen_kernel = LINUX_KERNEL_VERSION + (CONFIG_BPF_SYSCALL ? 1 : 0);
	if (enabled)
		counter += ro_rate;
	history[runs & 3] = (__u32)runs;
	limits.budget -= 1;
	label[0] = 'A' + (runs % 26);
	return (int)ro_mode;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (target_tgid && tgid == target_tgid)
		__sync_fetch_and_add(&getppid_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
