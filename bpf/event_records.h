/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records bpf/ringbuf.bpf.c and bpf/perfbuf.bpf.c emit (little-endian).
 *
 * struct event (32 bytes): one fixed-size record
 *   seq    per-CPU sequence number: 0, 1, 2, ... on each CPU
 *   ts_ns  bpf_ktime_get_ns() when it was made
 *   tgid   the process that made it (the test runner for test runs)
 *   cpu    the CPU the program ran on
 *   kind   EV_TEST_RUN for test runs, EV_SYSCALL from the tracepoint
 *   value  the caller's argument (test runs), the syscall number (tracepoint)
 *
 * struct var_event (16 + len bytes): a fixed header, then len bytes of data,
 * each byte (seq + i) & 0xff. len is seq % (var_max + 1), at most VAR_MAX.
 * struct var_record is its declaration with a flexible array.
 */
#ifndef EVENT_RECORDS_H
#define EVENT_RECORDS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define VAR_MAX 64
#define EV_TEST_RUN 1
#define EV_SYSCALL 2
#define MAX_CPUS 64

/* What a test run is asked to do: the u64 arguments of the raw_tp context. */
enum emit_mode {
	MODE_FIXED = 0,		/* count struct event records */
	MODE_VAR = 1,		/* count struct var_event records of 16..16+var_max bytes */
	MODE_DISCARD = 2,	/* count reservations, every param-th discarded (ring buffer) */
	MODE_MIXED = 3,		/* struct event, but every param-th is a 20-byte var_event */
};

struct event {
	__u64 seq;
	__u64 ts_ns;
	__u32 tgid;
	__u32 cpu;
	__u32 kind;
	__u32 value;
};

struct var_event {
	__u64 seq;
	__u32 len;
	__u32 cpu;
	__u8 data[VAR_MAX];
};

/* The same record as a C programmer declares a variable-size one: a flexible
 * array for the tail (the BTF of this type reads as a 16-byte head and the
 * rest of the record). */
struct var_record {
	__u64 seq;
	__u32 len;
	__u32 cpu;
	__u8 data[];
};

/*
 * What both emitters (ringbuf.bpf.c, perfbuf.bpf.c) share, defined here once.
 * The header is included by one source file per object.
 */

/* The tracepoint programs count only getppid() of this process (.rodata). */
const volatile __u32 target_tgid = 0;
const volatile __s64 target_syscall = -1;

/* The next sequence number of each CPU (.bss). */
__u64 next_seq[MAX_CPUS];

/* BTF anchors: the ring carries no type, so user space finds the record
 * types by name in the object's BTF (typedmaps gen --type event). */
struct event *unused_event __attribute__((unused));
struct var_event *unused_var_event __attribute__((unused));
struct var_record *unused_var_record __attribute__((unused));

static __u64 take_seq(__u32 cpu)
{
	__u64 seq = next_seq[cpu & (MAX_CPUS - 1)];

	next_seq[cpu & (MAX_CPUS - 1)] = seq + 1;
	return seq;
}

/* Whether a sys_enter(struct pt_regs *regs, long id) is target_tgid's getppid(). */
static int is_target_getppid(struct bpf_raw_tracepoint_args *ctx, __u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	return target_tgid && *tgid == target_tgid && (__s64)ctx->args[1] == target_syscall;
}

#endif
