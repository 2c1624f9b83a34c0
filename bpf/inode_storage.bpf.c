// SPDX-License-Identifier: GPL-2.0
/*
 * inode_storage: one INODE_STORAGE map and nothing else, to learn what this
 * kernel allows for inode storage from user space (without BPF LSM
 * programs). No program uses the map.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} per_inode SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
