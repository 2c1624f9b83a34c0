"""BCC's Python tables on the benchmark's maps: the side-by-side comparison.

Debian's python3-bpfcc installs BCC for Debian's /usr/bin/python3. BCC's
table classes (bcc.table.HashTable, PerCpuHash) are plain ctypes code over a
map fd, so they work on any existing map. BCC normally builds them from a
compiled BPF module (``BPF(text=...)["name"]``), which needs kernel headers
this machine lacks; :func:`table` therefore sets the attributes that
``TableBase.__init__`` would have read from the module (fd, ctypes key and
leaf types, map type, max_entries) straight from the kernel's answers.
Every measured call then runs BCC's own, unmodified methods.

The ctypes declarations below are the benchmark's record shapes (see
bench/shapes.py) as a BCC user writes them; keys and leaves are made from
the very bytes the other groups use (``from_buffer_copy``).

Two ways to run, both used by bench/run.py:

- in-process (preferred): run.py appends BCC's dist-packages directory to
  sys.path and calls :meth:`BccBench.run_round`;
- as a worker under /usr/bin/python3, when BCC cannot be imported into the
  benchmark's interpreter: ``bcc_side.py --spec FILE`` with the map fds
  passed down (subprocess ``pass_fds``); prints one JSON object per round.

This module imports only the standard library and BCC, never typedmaps.
"""

from __future__ import annotations

import argparse
import ctypes as ct
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any, Final

BCC_DIST_PACKAGES: Final = "/usr/lib/python3/dist-packages"
# linux/bpf.h enum bpf_map_type
_BPF_MAP_TYPE_HASH: Final = 1
_BPF_MAP_TYPE_PERCPU_HASH: Final = 5
#: The clocks run.py may ask for: this thread's CPU time, or wall time.
CLOCKS: Final[dict[str, Callable[[], int]]] = {
    "cpu": time.thread_time_ns,
    "wall": time.perf_counter_ns,
}


# --------------------------------------------------------------------------- the shapes


class FlowKey(ct.Structure):
    _fields_ = (
        ("src", ct.c_uint32),
        ("dst", ct.c_uint32),
        ("sport", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("proto", ct.c_uint8),
        ("pad", ct.c_uint8 * 3),
    )


class FlowValue(ct.Structure):
    _fields_ = (
        ("packets", ct.c_uint64),
        ("bytes", ct.c_uint64),
        ("first_ns", ct.c_uint64),
        ("last_ns", ct.c_uint64),
    )


def _flow(k: Any, v: Any) -> None:
    _ = (k.src, k.dst, k.sport, k.dport, k.proto)
    _flow_value(v)


def _flow_value(v: Any) -> None:
    _ = (v.packets, v.bytes, v.first_ns, v.last_ns)


class ConnKey(ct.Structure):
    _fields_ = (
        ("ifindex", ct.c_uint32),
        ("saddr", ct.c_uint32),  # network byte order, as BCC users keep them
        ("daddr", ct.c_uint32),
        ("sport", ct.c_uint16),
        ("dport", ct.c_uint16),
    )


class ProcInfo(ct.Structure):
    _fields_ = (
        ("pid", ct.c_uint32),
        ("uid", ct.c_uint32),
        ("comm", ct.c_char * 16),
        ("start_ns", ct.c_uint64),
        ("bytes", ct.c_uint64),
    )


def _conn(k: Any, v: Any) -> None:
    _ = (k.ifindex, k.saddr, k.daddr, k.sport, k.dport)
    _proc(v)


def _proc(v: Any) -> None:
    _ = (v.pid, v.uid, v.comm, v.start_ns, v.bytes)


class QueueKey(ct.Structure):
    _fields_ = (("ifindex", ct.c_uint32), ("queue", ct.c_uint16), ("pad", ct.c_uint16))


class Counters(ct.Structure):
    _fields_ = (("packets", ct.c_uint64), ("bytes", ct.c_uint64))


class Sample(ct.Structure):
    _fields_ = (
        ("ts_ns", ct.c_uint64),
        ("length", ct.c_uint32),
        ("verdict", ct.c_uint8),
        ("pad", ct.c_uint8 * 3),
    )


class QueueStats(ct.Structure):
    _fields_ = (
        ("last_verdict", ct.c_uint32),
        ("cpu", ct.c_uint32),
        ("rx", Counters),
        ("tx", Counters),
        ("hist", ct.c_uint32 * 8),
        ("recent", Sample * 2),
    )


def _queue(k: Any, v: Any) -> None:
    _ = (k.ifindex, k.queue)
    _stats(v)


def _stats(v: Any) -> None:
    _ = (v.last_verdict, v.cpu, v.rx.packets, v.rx.bytes, v.tx.packets, v.tx.bytes, v.hist[:])
    for s in v.recent:
        _ = (s.ts_ns, s.length, s.verdict)


class ConnBtfKey(ct.Structure):
    _fields_ = (("ifindex", ct.c_uint32), ("flow", ct.c_uint32))


class Addr(ct.Union):
    _fields_ = (("v4", ct.c_uint32), ("v6", ct.c_uint8 * 16))


class Conn(ct.Structure):
    """struct bench_conn of bpf/bench.bpf.c, bitfields and unions included."""

    _fields_ = (
        ("ts_ns", ct.c_uint64),
        ("pid", ct.c_uint32),
        ("proto", ct.c_uint32, 8),
        ("version", ct.c_uint32, 4),
        ("tclass", ct.c_uint32, 4),
        ("frag", ct.c_uint32, 13),
        ("df", ct.c_uint32, 1),
        ("mf", ct.c_uint32, 1),
        ("evil", ct.c_uint32, 1),
        ("src", Addr),
        ("dst", Addr),
        ("sport", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("state", ct.c_uint32),
        ("comm", ct.c_char * 16),
        ("packets", ct.c_uint64),
        ("bytes", ct.c_uint64),
        ("hist", ct.c_uint32 * 4),
    )


def _conn_btf(k: Any, v: Any) -> None:
    _ = (k.ifindex, k.flow)
    _conn_btf_value(v)


def _conn_btf_value(v: Any) -> None:
    _ = (v.ts_ns, v.pid, v.proto, v.version, v.tclass, v.frag, v.df, v.mf, v.evil)
    _ = (v.src.v4, v.src.v6[:], v.dst.v4, v.dst.v6[:], v.sport, v.dport, v.state, v.comm)
    _ = (v.packets, v.bytes, v.hist[:])


#: shape name -> (ctypes key, ctypes leaf, read every field of a pair, of a leaf)
SHAPES: Final[dict[str, tuple[Any, Any, Callable[[Any, Any], None], Callable[[Any], None]]]] = {
    "plain": (FlowKey, FlowValue, _flow, _flow_value),
    "frozen_str": (ConnKey, ProcInfo, _conn, _proc),
    "nested": (QueueKey, QueueStats, _queue, _stats),
    "btf": (ConnBtfKey, Conn, _conn_btf, _conn_btf_value),
}


# --------------------------------------------------------------------------- tables


def load_bcc(*, allow_path_append: bool = True) -> tuple[Any, str]:
    """Import bcc.table; returns (module, bcc version).

    Raises:
        ImportError: BCC is not importable into this interpreter.
    """
    try:
        table = importlib.import_module("bcc.table")
    except ImportError:
        if not allow_path_append or BCC_DIST_PACKAGES in sys.path:
            raise
        sys.path.append(BCC_DIST_PACKAGES)
        table = importlib.import_module("bcc.table")
    version = importlib.import_module("bcc.version").__version__
    return table, str(version)


def table(bcc_table: Any, fd: int, key: Any, leaf: Any, max_entries: int, *, percpu: bool) -> Any:
    """BCC's HashTable (or PerCpuHash) over ``fd``, as BCC would have made it."""
    cls = bcc_table.PerCpuHash if percpu else bcc_table.HashTable
    t = cls.__new__(cls)
    # What TableBase.__init__ reads from a compiled BPF module, given directly.
    t.bpf = None
    t.map_id = -1
    t.map_fd = fd
    t.Key = key
    t.Leaf = leaf
    t.ttype = _BPF_MAP_TYPE_PERCPU_HASH if percpu else _BPF_MAP_TYPE_HASH
    t.flags = 0
    t._cbs = {}
    t._name = None
    t.max_entries = max_entries
    if percpu:
        # What PerCpuHash.__init__ adds: one leaf per possible CPU.
        ncpus = len(importlib.import_module("bcc.utils").get_possible_cpus())
        t.reducer = None
        t.sLeaf = leaf
        t.total_cpu = ncpus
        t.alignment = ct.sizeof(leaf) % 8
        t.Leaf = leaf * ncpus
    return t


class BccBench:
    """BCC over one map of one shape (and its per-CPU twin), measured per round.

    Args:
        spec: ``shape``, ``fd``, ``entries``, ``keys`` and ``values`` (the
            per-op keys and the values to write under them, as bytes), and
            optionally ``pfd``/``pentries``: a PERCPU_HASH of the same shape
            and keys, the same value on every CPU.
    """

    def __init__(self, bcc_table: Any, spec: dict[str, Any]) -> None:
        self.shape = spec["shape"]
        key, leaf, self.touch, self.touch_leaf = SHAPES[self.shape]
        self.entries = spec["entries"]
        self.table = table(bcc_table, spec["fd"], key, leaf, self.entries, percpu=False)
        self.keys = [key.from_buffer_copy(k) for k in spec["keys"]]
        self.leaves = [leaf.from_buffer_copy(v) for v in spec["values"]]
        got = self.table[self.keys[-1]]
        if bytes(got) != bytes(self.leaves[-1]):
            raise RuntimeError(f"BCC HashTable read a wrong value ({self.shape})")
        self.percpu = None
        if spec.get("pfd") is not None:
            self.percpu = table(bcc_table, spec["pfd"], key, leaf, spec["pentries"], percpu=True)
            cpus = self.percpu[self.keys[-1]]
            if bytes(cpus[0]) != bytes(self.leaves[-1]):
                raise RuntimeError(f"BCC PerCpuHash read a wrong value ({self.shape})")

    def run_round(self, clock: Callable[[], int] = time.thread_time_ns) -> dict[str, float]:
        """ns per element for each BCC operation, one pass each, timed by ``clock``."""
        out: dict[str, float] = {}
        tab, keys, leaves = self.table, self.keys, self.leaves
        touch, touch_leaf = self.touch, self.touch_leaf

        t0 = clock()
        for k in keys:
            tab[k]
        out["lookup"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in zip(keys, leaves, strict=True):
            tab[k] = v
        out["update"] = (clock() - t0) / len(keys)

        n = 0
        t0 = clock()
        for _k, _v in tab.items_lookup_batch():
            n += 1
        dt = clock() - t0
        if n != self.entries:
            raise RuntimeError(f"BCC items_lookup_batch saw {n} of {self.entries} entries")
        out["lookup_batch"] = dt / n

        # BCC hands out ctypes views; TypedMap hands out decoded Python
        # values. Side by side with TypedMap's same loops: every field read.
        t0 = clock()
        for k in keys:
            touch_leaf(tab[k])
        out["lookup_fields"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in tab.items_lookup_batch():
            touch(k, v)
        out["lookup_batch_fields"] = (clock() - t0) / self.entries

        if self.percpu is not None:
            percpu = self.percpu
            t0 = clock()
            for k in keys:
                percpu[k]
            out["percpu_lookup"] = (clock() - t0) / len(keys)
        return out


def main(argv: list[str] | None = None) -> int:
    """Worker mode: measure BCC on inherited fds, one round per ``run`` line on stdin.

    Prints one JSON line first (versions), then one per round:
    ``{shape: {op: ns}}``. Ends at end of input.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--spec", required=True, help="JSON: a list of BccBench specs (hex bytes)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = p.parse_args(argv)
    bcc_table, version = load_bcc()
    with open(args.spec) as f:
        specs = json.load(f)
    benches = []
    for spec in specs:
        for name in ("keys", "values"):
            spec[name] = [bytes.fromhex(x) for x in spec[name]]
        benches.append(BccBench(bcc_table, spec))
    print(json.dumps({"bcc_version": version, "python": sys.version.split()[0]}), flush=True)
    clock = CLOCKS[args.clock]
    for line in sys.stdin:
        if line.strip() != "run":
            raise SystemExit(f"bcc_side: unknown command {line.strip()!r}")
        print(json.dumps({b.shape: b.run_round(clock) for b in benches}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
