// SPDX-License-Identifier: GPL-2.0
/*
 * attach: one counting program per attach kind, for the attach tests.
 *
 * Every program adds to `counts[slot]` (packets or calls, and bytes) only
 * for the traffic or the process it was told about, so what other
 * processes on the machine do never shows up in a count:
 *
 *   packet programs (XDP, tc, cgroup_skb, socket filter) count IPv4 UDP
 *     datagrams whose both addresses lie in the network net/mask and whose
 *     source or destination port is `port`: ARP, IPv6 neighbour discovery
 *     and everything else on the interface is ignored;
 *   tracing programs (tracepoint, raw tracepoint, uprobe, kprobe) count
 *     calls of the thread group `target_tgid` only (and of its thread
 *     `target_tid`, unless that is 0);
 *   the perf event program counts every sample, and per CPU in
 *     `perf_samples` (PERCPU_ARRAY), so a test can see which CPU it ran on.
 *
 * Configuration (.rodata, set before load): net, mask (network byte order),
 * port (host order), target_tgid, target_tid, target_syscall (raw_tp: the
 * syscall number).
 * A datagram whose first payload byte is 'D' is dropped by the socket
 * filter (return 0), so a test can see that the filter decides delivery.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum slot {
	SLOT_XDP = 0,
	SLOT_TC_INGRESS = 1,
	SLOT_TC_EGRESS = 2,
	SLOT_CGROUP_EGRESS = 3,
	SLOT_CGROUP_INGRESS = 4,
	SLOT_SOCKET = 5,
	SLOT_TRACEPOINT = 6,
	SLOT_RAW_TRACEPOINT = 7,
	SLOT_UPROBE = 8,
	SLOT_URETPROBE = 9,
	SLOT_PERF_EVENT = 10,
	SLOT_KPROBE = 11,
	SLOTS = 16,
};

struct counter {
	__u64 packets;	/* packets, calls or samples */
	__u64 bytes;	/* packet programs: bytes as the program saw them */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, struct counter);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} perf_samples SEC(".maps");

const volatile __u32 net = 0;		/* network byte order */
const volatile __u32 mask = 0;		/* network byte order; 0 matches nothing */
const volatile __u16 port = 0;
const volatile __u32 target_tgid = 0;
const volatile __u32 target_tid = 0;	/* 0: any thread of target_tgid */
const volatile __s64 target_syscall = -1;

static __always_inline void add(__u32 slot, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(&counts, &slot);

	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, bytes);
	}
}

static __always_inline int ours(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport)
{
	if (!mask || (saddr & mask) != net || (daddr & mask) != net)
		return 0;
	return bpf_ntohs(sport) == port || bpf_ntohs(dport) == port;
}

/* An Ethernet frame in [data, data_end): is it one of our datagrams? */
static __always_inline int ours_eth(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	return ours(ip->saddr, ip->daddr, udp->source, udp->dest);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (ours_eth(data, data_end))
		add(SLOT_XDP, data_end - data);
	return XDP_PASS;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (ours_eth(data, data_end))
		add(SLOT_TC_INGRESS, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (ours_eth(data, data_end))
		add(SLOT_TC_EGRESS, skb->len);
	return TC_ACT_OK;
}

/* cgroup_skb: the packet starts at its IP header. */
static __always_inline int ours_ip(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.ihl != 5 ||
	    ip.protocol != IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(ip), &udp, sizeof(udp)))
		return 0;
	return ours(ip.saddr, ip.daddr, udp.source, udp.dest);
}

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb)
{
	if (ours_ip(skb))
		add(SLOT_CGROUP_EGRESS, skb->len);
	return 1;	/* allow */
}

SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	if (ours_ip(skb))
		add(SLOT_CGROUP_INGRESS, skb->len);
	return 1;
}

/*
 * Socket filter on a UDP socket: the packet starts at the UDP header.
 * Every datagram is counted; one whose payload starts with 'D' is dropped.
 */
SEC("socket")
int socket_count(struct __sk_buff *skb)
{
	__u8 first = 0;

	add(SLOT_SOCKET, skb->len);
	if (bpf_skb_load_bytes(skb, sizeof(struct udphdr), &first, 1) == 0 && first == 'D')
		return 0;
	return skb->len;
}

static __always_inline int this_process(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	return (id >> 32) == target_tgid && (!target_tid || (__u32)id == target_tid);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx)
{
	if (this_process())
		add(SLOT_TRACEPOINT, 0);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id) */
	if (this_process() && (__s64)ctx->args[1] == target_syscall)
		add(SLOT_RAW_TRACEPOINT, 0);
	return 0;
}

SEC("uprobe")
int uprobe_count(void *ctx)
{
	if (this_process())
		add(SLOT_UPROBE, 0);
	return 0;
}

SEC("uretprobe")
int uretprobe_count(void *ctx)
{
	if (this_process())
		add(SLOT_URETPROBE, 0);
	return 0;
}

SEC("kprobe/do_nanosleep")
int kprobe_count(void *ctx)
{
	if (this_process())
		add(SLOT_KPROBE, 0);
	return 0;
}

SEC("perf_event")
int perf_sample(void *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&perf_samples, &zero);

	if (n)
		*n += 1;	/* per-CPU slot */
	add(SLOT_PERF_EVENT, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
