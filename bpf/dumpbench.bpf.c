// SPDX-License-Identifier: GPL-2.0
/*
 * dumpbench: one large HASH map with BTF, for timing `typedmaps dump --json`
 * next to `bpftool map dump -j` (bench/cli_dump.py).
 *
 * The value mixes what connection-tracking maps hold: counters, a task
 * name (printable char array), an enum, a nested struct, a MAC address
 * (unsigned char array) and a small integer array. No floats: bpftool 7.1
 * cannot print them. The benchmark sets max_entries before loading and
 * fills the map from user space; no program is needed.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

enum conn_state {
	CONN_NEW = 0,
	CONN_ESTABLISHED = 1,
	CONN_CLOSING = 2,
	CONN_CLOSED = 3,
};

struct conn_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct conn_tcp {
	__u16 mss;
	__u8 wscale;
	__u8 flags;
};

struct conn_stats {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
	char comm[16];
	enum conn_state state;
	__u32 pid;
	struct conn_tcp tcp;
	unsigned char mac[6];
	__u16 vlan;
	__u32 rtt_us[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 20000);
	__type(key, struct conn_key);
	__type(value, struct conn_stats);
} conns SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
