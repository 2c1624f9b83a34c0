// SPDX-License-Identifier: GPL-2.0
/*
 * flows: per-flow accounting in XDP.
 *
 * Every IPv4 packet is counted under its 5-tuple in the `flows` hash
 * (packets, bytes, first and last time seen), under its protocol class in
 * the per-CPU array `proto_stats`, under its XDP verdict in the per-CPU
 * array `verdicts`, and under its source address in the LRU hash `sources`.
 * Non-IPv4 frames are counted in proto_stats[PROTO_NON_IP] only.
 *
 * Configuration (.rodata, set before load):
 *   sample_rate   account 1 packet in N in `flows` (per CPU, by the CPU's
 *                 packet count for that protocol class); 1 = every packet
 *   blocked_port  drop TCP/UDP packets to this destination port (0 = none)
 *
 * Layouts that user space decodes (all little-endian on x86/arm64 hosts):
 *   struct flow_key   16 bytes: saddr, daddr (network byte order as on the
 *                     wire), sport, dport (host byte order), proto, 3 pad
 *   struct flow_stats 32 bytes: four __u64
 *   struct proto_stats 16 bytes: packets, bytes
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
};

struct proto_stats {
	__u64 packets;
	__u64 bytes;
};

enum proto_class {
	PROTO_OTHER = 0,	/* IPv4, neither TCP, UDP nor ICMP */
	PROTO_TCP = 1,
	PROTO_UDP = 2,
	PROTO_ICMP = 3,
	PROTO_NON_IP = 4,	/* not IPv4, or a truncated IPv4 header */
	PROTO_CLASSES = 5,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_CLASSES);
	__type(key, __u32);
	__type(value, struct proto_stats);
} proto_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);	/* XDP_ABORTED .. XDP_REDIRECT */
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);	/* IPv4 source address, network byte order */
	__type(value, __u64);	/* packets */
} sources SEC(".maps");

const volatile __u32 sample_rate = 1;
const volatile __u16 blocked_port = 0;

/* .bss: every frame the program saw, on any CPU. */
__u64 total_packets;

static __always_inline void count_verdict(__u32 verdict)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &verdict);

	if (n)
		*n += 1;	/* per-CPU slot: no atomics needed */
}

static __always_inline struct proto_stats *count_proto(__u32 class, __u64 len)
{
	struct proto_stats *ps = bpf_map_lookup_elem(&proto_stats, &class);

	if (ps) {
		ps->packets += 1;
		ps->bytes += len;
	}
	return ps;
}

static __always_inline void count_flow(const struct flow_key *key, __u64 len)
{
	__u64 now = bpf_ktime_get_ns();
	struct flow_stats *fs = bpf_map_lookup_elem(&flows, key);

	if (fs) {
		__sync_fetch_and_add(&fs->packets, 1);
		__sync_fetch_and_add(&fs->bytes, len);
		fs->last_seen_ns = now;
		return;
	}

	struct flow_stats init;

	__builtin_memset(&init, 0, sizeof(init));
	init.packets = 1;
	init.bytes = len;
	init.first_seen_ns = now;
	init.last_seen_ns = now;
	/* Another CPU may have inserted the flow meanwhile: add to its entry. */
	if (bpf_map_update_elem(&flows, key, &init, BPF_NOEXIST) != 0) {
		fs = bpf_map_lookup_elem(&flows, key);
		if (fs) {
			__sync_fetch_and_add(&fs->packets, 1);
			__sync_fetch_and_add(&fs->bytes, len);
			fs->last_seen_ns = now;
		}
	}
}

static __always_inline void count_source(__u32 saddr)
{
	__u64 *n = bpf_map_lookup_elem(&sources, &saddr);

	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;

		bpf_map_update_elem(&sources, &saddr, &one, BPF_ANY);
	}
}

SEC("xdp")
int count_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct flow_key key;
	struct proto_stats *ps;
	__u32 class;
	__u32 verdict = XDP_PASS;

	__sync_fetch_and_add(&total_packets, 1);

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto non_ip;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		goto non_ip;

	/* Zero the whole key, padding included: user space hashes raw bytes. */
	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.proto = ip->protocol;

	void *l4 = (void *)ip + ip->ihl * 4;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		class = PROTO_TCP;
		if ((void *)(tcp + 1) <= data_end) {
			key.sport = bpf_ntohs(tcp->source);
			key.dport = bpf_ntohs(tcp->dest);
		}
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;

		class = PROTO_UDP;
		if ((void *)(udp + 1) <= data_end) {
			key.sport = bpf_ntohs(udp->source);
			key.dport = bpf_ntohs(udp->dest);
		}
		break;
	}
	case IPPROTO_ICMP:
		class = PROTO_ICMP;
		break;
	default:
		class = PROTO_OTHER;
		break;
	}

	if (blocked_port && key.dport == blocked_port &&
	    (class == PROTO_TCP || class == PROTO_UDP))
		verdict = XDP_DROP;

	ps = count_proto(class, len);
	count_source(key.saddr);
	if (sample_rate > 1 && ps && ps->packets % sample_rate != 0)
		goto out;
	count_flow(&key, len);
	goto out;

non_ip:
	count_proto(PROTO_NON_IP, len);
out:
	count_verdict(verdict);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
