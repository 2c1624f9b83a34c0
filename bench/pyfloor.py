"""The hand-written floor: the least Python that does TypedMap's work for each shape.

The issue's per-element targets are ratios against MapHandle.lookup or C's
batch lookup. Where one is missed, the question is whether any Python can
meet it on this machine. This group answers with code written by hand for
each shape, as a user who knows the layout would write it: the bare cffi
call with a preallocated buffer (its own FFI, as the floor group), one
``struct`` format per record, the records built field by field with
``object.__new__`` and attribute stores (the same objects TypedMap
returns, checked equal before anything is timed), full reads straight
from ``bpf_map_lookup_batch`` buffers with ``iter_unpack``. It has no
checks, no error handling beyond a failed call, no thread safety and no
lifetime protection, so it is a floor: typedmaps can only come near it.

Ops (the same names as TypedMap's): ``lookup`` (``get(k)``, one call per
key), ``lookup_fields`` (the same, every field read), ``lookup_batch``
(every element, as pairs of records) and ``lookup_batch_fields``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Final, cast

import cffi
import construct as cs
from harness import Context, Info, Registry, RoundResult, ShapeData, Unavailable
from harness import expect as _expect
from shapes import (
    ConnKey,
    Counters,
    FlowKey,
    FlowValue,
    ProcInfo,
    QueueKey,
    QueueStats,
    Sample,
    Verdict,
)

import typedmaps as tm

_CDEF: Final = """
int bpf_map_lookup_elem(int fd, const char *key, char *value);
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys,
                         void *values, unsigned int *count, void *opts);
"""

_SLICE: Final = 128
_new = object.__new__
_LC = cs.ListContainer
_C = cs.Container

Getter = Callable[[Any], Any]
PairDecoder = Callable[[Any, Any], list[tuple[Any, Any]]]


# --------------------------------------------------------------------------- per shape


def _plain(look: Any, fd: int, buf: Any, view: Any) -> tuple[Getter, PairDecoder]:
    ks = struct.Struct("<IIHHB3x")
    vs = struct.Struct("<4Q")
    kpack, vunpack = ks.pack, vs.unpack_from
    kiter, viter = ks.iter_unpack, vs.iter_unpack

    def get(k: FlowKey) -> FlowValue:
        if look(fd, kpack(k.src, k.dst, k.sport, k.dport, k.proto), buf):
            raise KeyError(k)
        a, b, c, d = vunpack(view)
        o = _new(FlowValue)
        o.packets = a
        o.bytes = b
        o.first_ns = c
        o.last_ns = d
        return o

    def pairs(kb: Any, vb: Any) -> list[tuple[Any, Any]]:
        out = []
        app = out.append
        for (s, d, sp, dp, p), (a, b, c, e) in zip(kiter(kb), viter(vb), strict=True):
            k = _new(FlowKey)
            k.src = s
            k.dst = d
            k.sport = sp
            k.dport = dp
            k.proto = p
            k._pad = None
            v = _new(FlowValue)
            v.packets = a
            v.bytes = b
            v.first_ns = c
            v.last_ns = e
            app((k, v))
        return out

    return get, pairs


def _frozen_str(look: Any, fd: int, buf: Any, view: Any) -> tuple[Getter, PairDecoder]:
    # Mixed byte orders: network order for the whole key, ifindex swapped by hand.
    ks = struct.Struct(">IIIHH")
    vs = struct.Struct("<II16sQQ")
    kpack, vunpack = ks.pack, vs.unpack_from
    kiter, viter = ks.iter_unpack, vs.iter_unpack

    def swap(x: int) -> int:
        return int.from_bytes(x.to_bytes(4, "big"), "little")

    def get(k: ConnKey) -> ProcInfo:
        kb = kpack(swap(k.ifindex), k.saddr, k.daddr, k.sport, k.dport)
        if look(fd, kb, buf):
            raise KeyError(k)
        pid, uid, comm, start, nbytes = vunpack(view)
        o = _new(ProcInfo)
        o.pid = pid
        o.uid = uid
        o.comm = comm.rstrip(b"\0").decode("ascii")
        o.start_ns = start
        o.bytes = nbytes
        return o

    def pairs(kb: Any, vb: Any) -> list[tuple[Any, Any]]:
        out = []
        app = out.append
        for (i, sa, da, sp, dp), (pid, uid, comm, start, nbytes) in zip(
            kiter(kb), viter(vb), strict=True
        ):
            k = _new(ConnKey)
            d = k.__dict__  # frozen: no attribute stores
            d["ifindex"] = swap(i)
            d["saddr"] = sa
            d["daddr"] = da
            d["sport"] = sp
            d["dport"] = dp
            v = _new(ProcInfo)
            v.pid = pid
            v.uid = uid
            v.comm = comm.rstrip(b"\0").decode("ascii")
            v.start_ns = start
            v.bytes = nbytes
            app((k, v))
        return out

    return get, pairs


def _nested(look: Any, fd: int, buf: Any, view: Any) -> tuple[Getter, PairDecoder]:
    ks = struct.Struct("<IH2x")
    vs = struct.Struct("<II4Q8IQIB3xQIB3x")
    kpack, vunpack = ks.pack, vs.unpack_from
    kiter, viter = ks.iter_unpack, vs.iter_unpack
    verdict = {int(v): v for v in Verdict}.__getitem__

    def value(t: tuple[Any, ...]) -> QueueStats:
        rx = _new(Counters)
        rx.packets = t[2]
        rx.bytes = t[3]
        tx = _new(Counters)
        tx.packets = t[4]
        tx.bytes = t[5]
        s0 = _new(Sample)
        s0.ts_ns = t[14]
        s0.length = t[15]
        s0.verdict = verdict(t[16])
        s0._pad = None
        s1 = _new(Sample)
        s1.ts_ns = t[17]
        s1.length = t[18]
        s1.verdict = verdict(t[19])
        s1._pad = None
        o = _new(QueueStats)
        o.last_verdict = verdict(t[0])
        o.cpu = t[1]
        o.rx = rx
        o.tx = tx
        o.hist = _LC(t[6:14])
        o.recent = _LC((s0, s1))
        return o

    def get(k: QueueKey) -> QueueStats:
        if look(fd, kpack(k.ifindex, k.queue), buf):
            raise KeyError(k)
        t = vunpack(view)
        rx = _new(Counters)
        rx.packets = t[2]
        rx.bytes = t[3]
        tx = _new(Counters)
        tx.packets = t[4]
        tx.bytes = t[5]
        s0 = _new(Sample)
        s0.ts_ns = t[14]
        s0.length = t[15]
        s0.verdict = verdict(t[16])
        s0._pad = None
        s1 = _new(Sample)
        s1.ts_ns = t[17]
        s1.length = t[18]
        s1.verdict = verdict(t[19])
        s1._pad = None
        o = _new(QueueStats)
        o.last_verdict = verdict(t[0])
        o.cpu = t[1]
        o.rx = rx
        o.tx = tx
        o.hist = _LC(t[6:14])
        o.recent = _LC((s0, s1))
        return o

    def pairs(kb: Any, vb: Any) -> list[tuple[Any, Any]]:
        # value() is one call per element more than inline code (~3% of it).
        out = []
        app = out.append
        for (i, q), t in zip(kiter(kb), viter(vb), strict=True):
            k = _new(QueueKey)
            k.ifindex = i
            k.queue = q
            k._pad = None
            app((k, value(t)))
        return out

    return get, pairs


def _btf(
    look: Any, fd: int, buf: Any, view: Any, state: Callable[[int], Any]
) -> tuple[Getter, PairDecoder]:
    ks = struct.Struct("<II")
    vs = struct.Struct("<QII16s16sHHI16sQQ4I")
    kpack, vunpack = ks.pack, vs.unpack_from
    kiter, viter = ks.iter_unpack, vs.iter_unpack
    v4 = struct.Struct("<I12x").unpack
    v6 = struct.Struct("16B").unpack

    def text(b: bytes) -> str | bytes:
        head = b.rstrip(b"\0")
        if head.isascii():
            s = head.decode("ascii")
            if s.isprintable():
                return s
        return b

    def value(t: tuple[Any, ...]) -> Any:
        bits = t[2]
        src, dst = t[3], t[4]
        return _C(
            ts_ns=t[0],
            pid=t[1],
            proto=bits & 255,
            version=bits >> 8 & 15,
            tclass=bits >> 12 & 15,
            frag=bits >> 16 & 8191,
            df=bits >> 29 & 1,
            mf=bits >> 30 & 1,
            evil=bits >> 31 & 1,
            src=_C(v4=v4(src)[0], v6=_LC(v6(src))),
            dst=_C(v4=v4(dst)[0], v6=_LC(v6(dst))),
            sport=t[5],
            dport=t[6],
            state=state(t[7]),
            comm=text(t[8]),
            packets=t[9],
            bytes=t[10],
            hist=_LC(t[11:15]),
        )

    def get(k: Any) -> Any:
        if look(fd, kpack(k.ifindex, k.flow), buf):
            raise KeyError(k)
        t = vunpack(view)
        bits = t[2]
        src, dst = t[3], t[4]
        return _C(
            ts_ns=t[0],
            pid=t[1],
            proto=bits & 255,
            version=bits >> 8 & 15,
            tclass=bits >> 12 & 15,
            frag=bits >> 16 & 8191,
            df=bits >> 29 & 1,
            mf=bits >> 30 & 1,
            evil=bits >> 31 & 1,
            src=_C(v4=v4(src)[0], v6=_LC(v6(src))),
            dst=_C(v4=v4(dst)[0], v6=_LC(v6(dst))),
            sport=t[5],
            dport=t[6],
            state=state(t[7]),
            comm=text(t[8]),
            packets=t[9],
            bytes=t[10],
            hist=_LC(t[11:15]),
        )

    def pairs(kb: Any, vb: Any) -> list[tuple[Any, Any]]:
        out = []
        app = out.append
        for (i, f), t in zip(kiter(kb), viter(vb), strict=True):
            app((_C(ifindex=i, flow=f), value(t)))
        return out

    return get, pairs


# --------------------------------------------------------------------------- the group


class HandBench:
    """Hand-written Python per shape over the shared maps (see the module)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(_CDEF)
        self.lib: Any = cast(Any, self.ffi.dlopen("libbpf.so.1"))
        self.code: dict[str, tuple[Getter, PairDecoder]] = {}
        self.turn = 0  # rounds run: which of the two lookup functions goes first
        self.bufs: list[Any] = []
        look = self.lib.bpf_map_lookup_elem
        for name, d in ctx.shapes.items():
            buf = self.ffi.new("char[]", d.shape.value_size)
            view = self.ffi.buffer(buf, d.shape.value_size)
            self.bufs.append(buf)
            fd = d.hash.fileno()
            if name == "plain":
                code = _plain(look, fd, buf, view)
            elif name == "frozen_str":
                code = _frozen_str(look, fd, buf, view)
            elif name == "nested":
                code = _nested(look, fd, buf, view)
            elif name == "btf":
                ref = tm.typed(d.hash)
                assert isinstance(ref, tm.TypedMap)
                sample = ref[d.keys[-1]].state
                enum = {int(s): s for s in type(sample)}
                code = _btf(look, fd, buf, view, lambda x, e=enum: e.get(x, x))
            else:  # a shape added later has no hand-written code yet
                continue
            get = code[0]
            # The same records as TypedMap's, or the floor means nothing.
            ref_map = tm.typed(d.hash) if d.shape.from_btf else None
            want = d.values[-1] if ref_map is None else ref_map[d.keys[-1]]
            if get(d.keys[-1]) != want:
                raise RuntimeError(f"hand-written floor: wrong value ({name})")
            self.code[name] = code
        if not self.code:
            raise Unavailable("no shape with hand-written code in this run")

    def _batches(self, fd: int, ks: int, vs: int, pairs: PairDecoder) -> Iterator[Any]:
        """Every element: batches into buffers made once, decoded 128 records at a time.

        Slices of 128 records, as TypedMap decodes: a whole batch of records
        alive at once makes the cyclic GC promote and rescan them (the full
        read with every field read took 8x as long that way).
        """
        return chain.from_iterable(self._slices(fd, ks, vs, pairs))

    def _slices(self, fd: int, ks: int, vs: int, pairs: PairDecoder) -> Iterator[Any]:
        ffi, lib = self.ffi, self.lib
        batch = self.ctx.batch
        keys = ffi.new("char[]", ks * batch)
        vals = ffi.new("char[]", vs * batch)
        kview, vview = ffi.buffer(keys), ffi.buffer(vals)
        tok_in, tok_out = ffi.new("char[]", max(ks, 8)), ffi.new("char[]", max(ks, 8))
        n = ffi.new("unsigned int *")
        first = True
        while True:
            n[0] = batch
            ret = lib.bpf_map_lookup_batch(
                fd, ffi.NULL if first else tok_in, tok_out, keys, vals, n, ffi.NULL
            )
            got = n[0]
            kv, vv = memoryview(kview), memoryview(vview)
            for i in range(0, got, _SLICE):
                j = min(got, i + _SLICE)
                yield pairs(kv[i * ks : j * ks], vv[i * vs : j * vs])
            if ret:
                return
            tok_in, tok_out = tok_out, tok_in
            first = False

    def run_round(self) -> RoundResult:
        out: RoundResult = {}
        for name, (get, pairs) in self.code.items():
            out[name] = self._shape(self.ctx.shapes[name], get, pairs)
        if "plain" in out:
            out["plain"].update(self._functions(self.ctx.shapes["plain"]))
        return out

    def _functions(self, d: ShapeData) -> dict[str, float]:
        """MapHandle.lookup's floor: the least a lookup *function* returning bytes does.

        ``lookup_fn``: one call, the value copied out, None when absent.
        ``lookup_fn_life``: the same with the in-flight registration of
        typedmaps/_life.py around the call (append, state check, pop, state
        check), the least a lookup that close() cannot race does.
        """
        look, fd, clock = self.lib.bpf_map_lookup_elem, d.hash.fileno(), self.clock
        size = d.shape.value_size
        buf = self.ffi.new("char[]", size)
        view = self.ffi.buffer(buf, size)
        calls: list[Any] = [fd]

        def lookup(key: bytes) -> bytes | None:
            if look(fd, key, buf):
                return None
            out: bytes = view[:]
            return out

        def lookup_life(key: bytes) -> bytes | None:
            calls.append(None)
            try:
                f = calls[0]
                if f < 0:
                    raise RuntimeError("closed")
                if look(f, key, buf):
                    return None
                out: bytes = view[:]
                return out
            finally:
                calls.pop()
                if calls[0] < 0:
                    raise RuntimeError("closed")

        res: dict[str, float] = {}
        # Every other round the other one first, so that neither is always
        # the first loop over these keys (in three runs with lookup_fn
        # always first it came out slower than lookup_fn_life, which does
        # more: 1.19x, 1.29x and 1.23x the cffi floor against 1.08x, 1.10x
        # and 1.07x).
        pair = [("lookup_fn", lookup), ("lookup_fn_life", lookup_life)]
        self.turn += 1
        if self.turn % 2:
            pair.reverse()
        for op, fn in pair:
            if fn(d.key_bytes[-1]) != d.value_bytes[-1]:
                raise RuntimeError("hand-written lookup returned a wrong value")
            t0 = clock()
            for k in d.key_bytes:
                fn(k)
            res[op] = (clock() - t0) / len(d.key_bytes)
        return res

    def _shape(self, d: ShapeData, get: Getter, pairs: PairDecoder) -> dict[str, float]:
        out: dict[str, float] = {}
        keys, clock = d.keys, self.clock
        touch, touch_value = d.shape.touch, d.shape.touch_value

        t0 = clock()
        for k in keys:
            get(k)
        out["lookup"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k in keys:
            touch_value(get(k))
        out["lookup_fields"] = (clock() - t0) / len(keys)

        fd, ks, vs = d.hash.fileno(), d.shape.key_size, d.shape.value_size
        n = 0
        t0 = clock()
        for _k, _v in self._batches(fd, ks, vs, pairs):
            n += 1
        dt = clock() - t0
        _expect(n, d.entries, "hand-written full read")
        out["lookup_batch"] = dt / n

        t0 = clock()
        for k, v in self._batches(fd, ks, vs, pairs):
            touch(k, v)
        out["lookup_batch_fields"] = (clock() - t0) / d.entries
        return out

    def close(self) -> None:
        pass


def register(reg: Registry) -> None:
    """The group and, next to each per-element target, the same ratio for this floor."""
    reg.add_op("lookup_fn", "lookup as a function")
    reg.add_op("lookup_fn_life", "lookup function + lifetime")
    reg.add_group("hand", "hand-written", HandBench)

    def info(name: str, shape: str, num: str, den: str) -> None:
        g1, op1 = num.split(".")
        g2, op2 = den.split(".")
        reg.add_info(Info(name, (shape, g1, op1), (shape, g2, op2)))

    info("floor: lookup function / cffi floor", "plain", "hand.lookup_fn", "floor.lookup")
    info("floor: lookup function + lifetime / cffi floor", "plain", "hand.lookup_fn_life",
         "floor.lookup")  # fmt: skip
    for shape in ("plain", "frozen_str", "nested"):
        info(f"floor: hand-written get(k) / MapHandle.lookup ({shape})", shape, "hand.lookup",
             "handle.lookup")  # fmt: skip
        info(f"floor: hand-written full read / C batch lookup ({shape})", shape,
             "hand.lookup_batch", "c.lookup_batch")  # fmt: skip
        info(f"floor: hand-written full read + fields / BCC + fields ({shape})", shape,
             "hand.lookup_batch_fields", "bcc.lookup_batch_fields")  # fmt: skip
        info(f"floor: hand-written get(k) + fields / BCC + fields ({shape})", shape,
             "hand.lookup_fields", "bcc.lookup_fields")  # fmt: skip
    info("floor: hand-written get(k) / MapHandle.lookup (btf)", "btf", "hand.lookup",
         "handle.lookup")  # fmt: skip
