// SPDX-License-Identifier: GPL-2.0
/* A held-out event emitter for tests/test_qa_events.py, written apart from
 * the library's own event programs: a RINGBUF, a small RINGBUF to overflow,
 * a PERF_EVENT_ARRAY and a USER_RINGBUF drained into counters.
 *
 * qa_emit (raw_tp, run through BPF_PROG_TEST_RUN; args = struct qa_args)
 * emits `count` records into one target, each with the next sequence number
 * of its (target, lane) and counts what it emitted and what the kernel
 * refused (ring full). qa_tp does the same from a real tracepoint, only for
 * the thread group in qa_config[0]. qa_drain drains qa_cmds.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define QA_TARGETS 5 /* 0 qa_ring, 1 qa_small, 2 qa_perf, 3 tp->qa_ring, 4 tp->qa_perf */
#define QA_LANES 8
#define QA_TAIL_MAX 64

/* One fixed-size record: 24 bytes. */
struct qa_rec {
	__u64 seq;
	__u32 target;
	__u32 lane;
	__u32 cpu;
	__u32 check; /* low 32 bits of seq * 2654435761 + lane */
};

/* A 16-byte head followed by `len` bytes: tail[i] == (i * 7 + 1) & 0xff. */
struct qa_var {
	__u64 seq;
	__u32 len;
	__u16 lane;
	__u16 target;
	__u8 tail[];
};

/* A command pushed from user space through qa_cmds. */
struct qa_cmd {
	__u64 seq;
	__u32 op;
	__u32 arg;
};

/* A type only used on the stack does not reach the BTF; these pointers put
 * the record types there, for typed(m, value="qa_rec") and gen --type. */
struct qa_rec *qa_rec_btf;
struct qa_var *qa_var_btf;
struct qa_cmd *qa_cmd_btf;

struct qa_stats {
	__u64 seq[QA_TARGETS][QA_LANES];
	__u64 emitted[QA_TARGETS];
	__u64 dropped[QA_TARGETS];
	__u64 drained;      /* commands of the right size */
	__u64 drain_sum;    /* sum of their args */
	__u64 drain_bad;    /* records of any other size */
	__u64 drain_order;  /* commands whose seq was not the next one */
	__u64 drain_next;   /* the seq expected next */
	__u64 drain_calls;  /* qa_drain runs */
};

/* Arguments of qa_emit, as the raw_tp context (u64 each). */
struct qa_args {
	__u64 count;
	__u64 target; /* 0, 1 or 2 */
	__u64 mode;   /* 0 fixed, 1 var (len = seq % (param + 1)), 2 fixed with every
			 param-th record 4 bytes short, 3 var with len = param,
			 4 fixed (rings only) with every param-th record reserved
			 and then discarded */
	__u64 param;
	__u64 lane;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} qa_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} qa_small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} qa_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} qa_cmds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qa_stats);
} qa_stats SEC(".maps");

/* [0]: the tgid qa_tp reports (0: none). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} qa_config SEC(".maps");

/* Scratch for variable records (too big for the stack with the tail). */
struct qa_var_buf {
	__u8 bytes[sizeof(struct qa_var) + QA_TAIL_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qa_var_buf);
} qa_scratch SEC(".maps");

struct emit_ctx {
	void *prog_ctx;
	struct qa_stats *st;
	__u32 target;
	__u32 lane;
	__u32 mode;
	__u32 param;
};

static __always_inline void *ring_of(__u32 target)
{
	return target == 1 ? (void *)&qa_small : (void *)&qa_ring;
}

static __always_inline int output(void *prog_ctx, __u32 target, void *data, __u64 size)
{
	if (target == 2 || target == 4)
		return bpf_perf_event_output(prog_ctx, &qa_perf, BPF_F_CURRENT_CPU, data, size);
	return bpf_ringbuf_output(ring_of(target), data, size, 0);
}

static __always_inline int emit_fixed(struct emit_ctx *c, __u64 seq, __u64 size)
{
	struct qa_rec rec;

	__builtin_memset(&rec, 0, sizeof(rec));
	rec.seq = seq;
	rec.target = c->target;
	rec.lane = c->lane;
	rec.cpu = bpf_get_smp_processor_id();
	rec.check = (__u32)(seq * 2654435761ULL + c->lane);
	if (size > sizeof(rec))
		size = sizeof(rec);
	return output(c->prog_ctx, c->target, &rec, size);
}

static __always_inline int emit_var(struct emit_ctx *c, __u64 seq, __u32 len)
{
	__u32 zero = 0;
	struct qa_var_buf *buf = bpf_map_lookup_elem(&qa_scratch, &zero);

	struct qa_var *head;

	if (!buf)
		return -1;
	head = (struct qa_var *)buf->bytes;
	for (int i = 0; i < QA_TAIL_MAX; i++)
		head->tail[i] = (__u8)(i * 7 + 1);
	len &= QA_TAIL_MAX - 1; /* 0..63: bounded for the verifier */
	head->seq = seq;
	head->len = len;
	head->lane = c->lane;
	head->target = c->target;
	return output(c->prog_ctx, c->target, buf, sizeof(struct qa_var) + len);
}

static long emit_one(__u32 i, void *data)
{
	struct emit_ctx *c = data;
	__u32 t = c->target, l = c->lane;
	__u64 seq;
	int err;

	if (t >= QA_TARGETS || l >= QA_LANES)
		return 1;
	seq = __sync_fetch_and_add(&c->st->seq[t][l], 1);
	__sync_fetch_and_add(&c->st->emitted[t], 1);
	switch (c->mode) {
	case 1:
		err = emit_var(c, seq, c->param ? seq % (c->param + 1) : 0);
		break;
	case 2:
		err = emit_fixed(c, seq,
				 c->param && seq % c->param == c->param - 1 ? sizeof(struct qa_rec) - 4
									     : sizeof(struct qa_rec));
		break;
	case 3:
		err = emit_var(c, seq, c->param);
		break;
	case 4:
		if (c->param && seq % c->param == c->param - 1 && (t == 0 || t == 1)) {
			struct qa_rec *r = bpf_ringbuf_reserve(ring_of(t), sizeof(*r), 0);

			if (!r) {
				err = -1;
				break;
			}
			r->seq = seq; /* written, then thrown away */
			bpf_ringbuf_discard(r, 0);
			err = 0;
			break;
		}
		err = emit_fixed(c, seq, sizeof(struct qa_rec));
		break;
	default:
		err = emit_fixed(c, seq, sizeof(struct qa_rec));
	}
	if (err)
		__sync_fetch_and_add(&c->st->dropped[t], 1);
	return 0;
}

SEC("raw_tp/qa_unused")
int qa_emit(__u64 *ctx)
{
	__u32 zero = 0;
	struct qa_stats *st = bpf_map_lookup_elem(&qa_stats, &zero);
	struct emit_ctx c = {};
	__u64 count = ctx[0];

	if (!st)
		return 1;
	c.prog_ctx = ctx;
	c.st = st;
	c.target = ctx[1] > 2 ? 0 : ctx[1];
	c.lane = ctx[4] & (QA_LANES - 1);
	c.mode = ctx[2];
	c.param = ctx[3];
	if (count > 100000)
		count = 100000;
	bpf_loop(count, emit_one, &c, 0);
	return 0;
}

/* One record into qa_ring and one into qa_perf per getppid() of the tgid
 * in qa_config[0]: other processes on the machine call it too. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int qa_tp(void *ctx)
{
	__u32 zero = 0;
	__u32 *want = bpf_map_lookup_elem(&qa_config, &zero);
	struct qa_stats *st = bpf_map_lookup_elem(&qa_stats, &zero);
	struct emit_ctx c = {};

	if (!want || !st || *want == 0 || (bpf_get_current_pid_tgid() >> 32) != *want)
		return 0;
	c.prog_ctx = ctx;
	c.st = st;
	c.target = 3;
	emit_one(0, &c);
	c.target = 4;
	emit_one(0, &c);
	return 0;
}

struct drain_ctx {
	struct qa_stats *st;
};

static long drain_one(struct bpf_dynptr *dynptr, void *data)
{
	struct drain_ctx *d = data;
	struct qa_cmd cmd;

	if (bpf_dynptr_read(&cmd, sizeof(cmd), dynptr, 0, 0) ||
	    bpf_dynptr_read(&cmd, 1, dynptr, sizeof(cmd), 0) == 0) {
		/* shorter than a command, or longer (a byte past it exists) */
		d->st->drain_bad++;
		return 0;
	}
	if (cmd.seq != d->st->drain_next)
		d->st->drain_order++;
	d->st->drain_next = cmd.seq + 1;
	d->st->drained++;
	d->st->drain_sum += cmd.arg;
	return 0;
}

SEC("syscall")
int qa_drain(void *ctx)
{
	__u32 zero = 0;
	struct drain_ctx d = {};

	d.st = bpf_map_lookup_elem(&qa_stats, &zero);
	if (!d.st)
		return 1;
	d.st->drain_calls++;
	return bpf_user_ringbuf_drain(&qa_cmds, drain_one, &d, 0);
}
