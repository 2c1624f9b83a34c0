"""BCC's Python tables on the benchmark's maps: the side-by-side comparison.

Debian's python3-bpfcc installs BCC for Debian's /usr/bin/python3. BCC's
table classes (bcc.table.HashTable, PerCpuHash) are plain ctypes code over a
map fd, so they work on any existing map. BCC normally builds them from a
compiled BPF module (``BPF(text=...)["name"]``), which needs kernel headers
this machine lacks; :func:`tables` therefore sets the attributes that
``TableBase.__init__`` would have read from the module (fd, ctypes key and
leaf types, map type, max_entries) straight from the kernel's answers.
Every measured call then runs BCC's own, unmodified methods.

Two ways to run, both used by bench/run.py:

- in-process (preferred): run.py appends BCC's dist-packages directory to
  sys.path and calls :func:`run_round` with its own map fds;
- as a worker under /usr/bin/python3, when BCC cannot be imported into the
  benchmark's interpreter: ``bcc_side.py --fd F --pfd P --entries N --ops M``
  with the fds passed down (subprocess ``pass_fds``) and ``--clock cpu|wall``;
  prints one JSON object.

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

from workload import key_fields, value_fields

BCC_DIST_PACKAGES: Final = "/usr/lib/python3/dist-packages"
# linux/bpf.h enum bpf_map_type
_BPF_MAP_TYPE_HASH: Final = 1
_BPF_MAP_TYPE_PERCPU_HASH: Final = 5
#: The clocks run.py may ask for: this thread's CPU time, or wall time.
CLOCKS: Final[dict[str, Callable[[], int]]] = {
    "cpu": time.thread_time_ns,
    "wall": time.perf_counter_ns,
}


class Key(ct.Structure):
    """struct bench_key as BCC users declare it."""

    _fields_ = (
        ("src", ct.c_uint32),
        ("dst", ct.c_uint32),
        ("sport", ct.c_uint16),
        ("dport", ct.c_uint16),
        ("proto", ct.c_uint8),
        ("pad", ct.c_uint8 * 3),
    )


class Leaf(ct.Structure):
    """struct bench_value as BCC users declare it."""

    _fields_ = (
        ("packets", ct.c_uint64),
        ("bytes", ct.c_uint64),
        ("first_ns", ct.c_uint64),
        ("last_ns", ct.c_uint64),
    )


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


def _init_table(table: Any, fd: int, ttype: int, max_entries: int) -> None:
    # What TableBase.__init__ reads from a compiled BPF module, given directly.
    table.bpf = None
    table.map_id = -1
    table.map_fd = fd
    table.Key = Key
    table.Leaf = Leaf
    table.ttype = ttype
    table.flags = 0
    table._cbs = {}
    table._name = None
    table.max_entries = max_entries


def tables(bcc_table: Any, fd: int, entries: int, pfd: int, ops: int) -> tuple[Any, Any]:
    """BCC's HashTable over ``fd`` and PerCpuHash over ``pfd``."""
    hash_table = bcc_table.HashTable.__new__(bcc_table.HashTable)
    _init_table(hash_table, fd, _BPF_MAP_TYPE_HASH, entries)
    percpu = bcc_table.PerCpuHash.__new__(bcc_table.PerCpuHash)
    _init_table(percpu, pfd, _BPF_MAP_TYPE_PERCPU_HASH, ops)
    # What PerCpuHash.__init__ adds: one Leaf per possible CPU (32 bytes is 8-aligned).
    ncpus = len(importlib.import_module("bcc.utils").get_possible_cpus())
    percpu.reducer = None
    percpu.sLeaf = Leaf
    percpu.total_cpu = ncpus
    percpu.alignment = ct.sizeof(Leaf) % 8
    percpu.Leaf = Leaf * ncpus
    return hash_table, percpu


class BccBench:
    """One set of BCC tables and prebuilt ctypes keys/leaves, measured per round."""

    def __init__(self, bcc_table: Any, fd: int, entries: int, pfd: int, ops: int) -> None:
        self.entries = entries
        self.ops = ops
        self.table, self.percpu = tables(bcc_table, fd, entries, pfd, ops)
        self.keys = [Key(*key_fields(i)) for i in range(ops)]
        self.leaves = [Leaf(*value_fields(i)) for i in range(ops)]
        self._validate()

    def _validate(self) -> None:
        """The tables must read what the benchmark wrote (never time a broken setup)."""
        i = self.ops - 1
        got = self.table[self.keys[i]]
        if (got.packets, got.bytes, got.first_ns, got.last_ns) != value_fields(i):
            raise RuntimeError(f"BCC HashTable read a wrong value for key {i}")
        cpus = self.percpu[self.keys[i]]
        if any(c.packets != i for c in cpus):
            raise RuntimeError(f"BCC PerCpuHash read a wrong value for key {i}")

    def run_round(self, clock: Callable[[], int] = time.thread_time_ns) -> dict[str, float]:
        """ns per element for each BCC operation, one pass each, timed by ``clock``."""
        out: dict[str, float] = {}
        table, keys, leaves = self.table, self.keys, self.leaves

        t0 = clock()
        for k in keys:
            table[k]
        out["lookup"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in zip(keys, leaves, strict=True):
            table[k] = v
        out["update"] = (clock() - t0) / len(keys)

        n = 0
        t0 = clock()
        for _k, _v in table.items_lookup_batch():
            n += 1
        dt = clock() - t0
        if n != self.entries:
            raise RuntimeError(f"BCC items_lookup_batch saw {n} of {self.entries} entries")
        out["lookup_batch"] = dt / n

        # BCC hands out ctypes views; TypedMap hands out decoded Python
        # values. For context (not a target): BCC plus reading every field.
        t0 = clock()
        for k in keys:
            v = table[k]
            _ = (v.packets, v.bytes, v.first_ns, v.last_ns)
        out["lookup_fields"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in table.items_lookup_batch():
            _ = (k.src, k.dst, k.sport, k.dport, k.proto)
            _ = (v.packets, v.bytes, v.first_ns, v.last_ns)
        out["lookup_batch_fields"] = (clock() - t0) / self.entries

        percpu = self.percpu
        t0 = clock()
        for k in keys:
            percpu[k]
        out["percpu_lookup"] = (clock() - t0) / len(keys)
        return out


def main(argv: list[str] | None = None) -> int:
    """Worker mode: measure BCC on inherited fds, print one JSON object per round."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--pfd", type=int, required=True)
    p.add_argument("--entries", type=int, required=True)
    p.add_argument("--ops", type=int, required=True)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = p.parse_args(argv)
    bcc_table, version = load_bcc()
    bench = BccBench(bcc_table, args.fd, args.entries, args.pfd, args.ops)
    result = {
        "bcc_version": version,
        "python": sys.version.split()[0],
        **bench.run_round(CLOCKS[args.clock]),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
