// SPDX-License-Identifier: GPL-2.0
/*
 * storage: per-object local storage (task, socket, cgroup, inode), for the
 * TypedTaskStorage / TypedSkStorage / TypedCgroupStorage /
 * TypedInodeStorage tests.
 *
 *   per_task    TASK_STORAGE: struct task_stat per task
 *   per_sock    SK_STORAGE: struct sock_stat per socket
 *   per_cgroup  CGRP_STORAGE: struct task_stat per cgroup
 *   per_inode   INODE_STORAGE: __u64 per inode
 *
 * Programs:
 *   on_getppid   tracepoint syscalls/sys_enter_getppid: for the process
 *                whose tgid is in target_tgid, counts the call in its task
 *                storage and in its cgroup's storage (creating them)
 *   on_sock      cgroup/sock_create: for every socket created in the
 *                cgroup it is attached to (the tests make a cgroup of
 *                their own), creates the socket's storage and records
 *                who made it
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Linux 6.2+; newer than Debian 12's linux/bpf.h and bpf_helper_defs.h. */
#ifndef BPF_MAP_TYPE_CGRP_STORAGE
#define BPF_MAP_TYPE_CGRP_STORAGE 32
#endif

struct cgroup;

static void *(*bpf_cgrp_storage_get_)(void *map, struct cgroup *cgroup, void *value,
				      __u64 flags) = (void *)210;

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct task_struct {
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

struct task_stat {
	__u64 calls;
	__u32 tgid;
	__u32 flags;
};

struct sock_stat {
	__u32 tgid;
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u64 created;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_stat);
} per_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_stat);
} per_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_stat);
} per_cgroup SEC(".maps");

__u32 target_tgid;
__u64 sockets_seen;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct task_stat *st;

	if (!target_tgid || tgid != target_tgid)
		return 0;
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&per_task, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st) {
		__sync_fetch_and_add(&st->calls, 1);
		st->tgid = tgid;
	}
	st = bpf_cgrp_storage_get_(&per_cgroup, task->cgroups->dfl_cgrp, 0,
				   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st) {
		__sync_fetch_and_add(&st->calls, 1);
		st->tgid = tgid;
	}
	return 0;
}

SEC("cgroup/sock_create")
int on_sock(struct bpf_sock *sk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct sock_stat *st;

	st = bpf_sk_storage_get(&per_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		st->tgid = tgid;
		st->family = sk->family;
		st->type = sk->type;
		st->protocol = sk->protocol;
		st->created = ++sockets_seen;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
