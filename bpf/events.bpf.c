// SPDX-License-Identifier: GPL-2.0
/*
 * events: a socket filter that records one event per packet in a QUEUE.
 *
 * User space pops `struct event` records (24 bytes, little-endian):
 *   ts_ns     bpf_ktime_get_ns() when the packet was seen
 *   seq       a sequence number from the .data global `next_seq`
 *             (starts at its initial value; not atomic across CPUs)
 *   cpu       the CPU the program ran on
 *   len       skb->len
 *   protocol  the L3 protocol (ETH_P_*), host byte order
 *   ip_proto  the IPv4 protocol number, 0 for other L3 protocols
 * When the queue is full the event is lost and `lost_events` (.bss) counts it.
 *
 * For a socket filter, packet offset 0 is the network header.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u64 ts_ns;
	__u32 seq;
	__u32 cpu;
	__u32 len;
	__u16 protocol;
	__u8 ip_proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 64);
	__type(value, struct event);
} events SEC(".maps");

__u32 next_seq = 1;	/* .data */
__u64 lost_events;	/* .bss */

SEC("socket")
int record_events(struct __sk_buff *skb)
{
	struct event ev;

	__builtin_memset(&ev, 0, sizeof(ev));
	ev.ts_ns = bpf_ktime_get_ns();
	ev.seq = next_seq;
	next_seq = ev.seq + 1;
	ev.cpu = bpf_get_smp_processor_id();
	ev.len = skb->len;
	ev.protocol = bpf_ntohs(skb->protocol);
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 proto = 0;

		if (bpf_skb_load_bytes(skb, __builtin_offsetof(struct iphdr, protocol),
				       &proto, 1) == 0)
			ev.ip_proto = proto;
	}
	if (bpf_map_push_elem(&events, &ev, 0) != 0)
		__sync_fetch_and_add(&lost_events, 1);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
