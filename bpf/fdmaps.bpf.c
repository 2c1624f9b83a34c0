// SPDX-License-Identifier: GPL-2.0
/*
 * fdmaps: the maps whose values are kernel objects (interfaces, CPUs,
 * sockets), for the typed fd-valued map tests. Values use the kernel's
 * user-space layouts:
 *
 *   devs, devs_hash   DEVMAP / DEVMAP_HASH: struct bpf_devmap_val
 *                     (ifindex, then a program fd on update / id on lookup)
 *   cpus              CPUMAP: struct bpf_cpumap_val (queue size, program)
 *   socks, socks_hash SOCKMAP / SOCKHASH: a socket fd on update, the socket
 *                     cookie on lookup (8-byte values)
 *   xsks              XSKMAP: an AF_XDP socket fd
 *
 * Programs: on_dev (SEC("xdp/devmap")) and on_cpu (SEC("xdp/cpumap")), the
 * programs a DEVMAP or CPUMAP entry may carry; redirect (SEC("xdp"))
 * redirects into devs[0].
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} devs_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} socks_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

SEC("xdp/devmap")
int on_dev(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp/cpumap")
int on_cpu(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&devs, 0, XDP_ABORTED);
}

char LICENSE[] SEC("license") = "GPL";
