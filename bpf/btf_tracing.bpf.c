// SPDX-License-Identifier: GPL-2.0
/*
 * btf_tracing: BTF-based tracing programs (fentry, fexit, LSM).
 *
 * Kernels built without BPF trampolines or the BPF LSM refuse to load
 * these; the tests use them to check that typedmaps says so with
 * NotSupportedError (found by libbpf's feature probe) instead of a bare
 * load failure, and that they work where the kernel has them.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 fentry_calls;
__u64 fexit_calls;
__u64 lsm_calls;

SEC("fentry/do_nanosleep")
int on_nanosleep_entry(void *ctx)
{
	__sync_fetch_and_add(&fentry_calls, 1);
	return 0;
}

SEC("fexit/do_nanosleep")
int on_nanosleep_exit(void *ctx)
{
	__sync_fetch_and_add(&fexit_calls, 1);
	return 0;
}

SEC("lsm/file_open")
int on_file_open(void *ctx)
{
	__sync_fetch_and_add(&lsm_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
