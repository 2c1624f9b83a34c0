#!/usr/bin/env python3
"""Columns in the benchmark matrix: to_numpy(), update_batch(array), the dump, memory over 1M.

A plugin of bench/run.py (``PLUGINS``): its rows join the same run as C,
the cffi floor, MapHandle, TypedMap and BCC, on the same maps.

Groups
    numpy       TypedMap.to_numpy() of the shared HASH (every element, per
                element) and TypedMap.update_batch(array) of that array into
                a fresh map (one BPF_MAP_UPDATE_BATCH, per element), for
                every shape with a numpy dtype (plain, frozen_str, nested;
                the btf shape has bitfields, which numpy cannot address);
                PerCpuTypedMap.to_numpy() (an ``(n, ncpus)`` value axis) of
                the plain shape's PERCPU_HASH.
    c_percpu    bench/cbench.c's full batch read of that PERCPU_HASH (the
                built-in C group reads the per-CPU map one key at a time
                only), so per-CPU to_numpy() has its C baseline in the run.

Targets (ratios of best times of one run): to_numpy() <= 1.3x C batch
lookup and update_batch(array) <= 1.2x C batch update, per shape; per-CPU
to_numpy() <= 1.3x C's per-CPU batch lookup. update_batch(pairs) <= 2.5x is
the built-in TypedMap group's.

Checks (after the rounds)
    dump        bench/cli_dump.py: ``typedmaps dump --json`` against
                ``bpftool map dump -j`` of a 20,000-entry BTF map (or the
                run's --entries when smaller), wall time, as processes, <= 3x.
    memory      to_numpy() of --mem-entries elements (1,000,000 by default)
                in a fresh process: tracemalloc's peak during the call is the
                result array, the batch buffers and at most 1 MiB more (the
                array is allocated once, filled batch by batch); the growth
                of the peak RSS (VmHWM) is reported as a cross-check.

    .venv/bin/python bench/run.py                           # with every other group
    .venv/bin/python bench/columnar.py --memory-worker 1000000   # the memory check alone
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Final

import cli_dump
import numpy as np
from groups import build_cbench
from harness import Check, Context, Info, Registry, RoundResult, Target, Unavailable, expect
from shapes import SHAPES

import typedmaps as tm

BENCH_DIR: Final = Path(__file__).resolve().parent
#: Elements of the dump check's map (the issue's 20k), unless the run is smaller.
DUMP_ENTRIES: Final = 20_000
TO_NUMPY_LIMIT: Final = 1.3
UPDATE_LIMIT: Final = 1.2
#: tracemalloc slack over the result and the batch buffers in the memory check.
MEMORY_SLACK: Final = 1 << 20


class NumpyBench:
    """to_numpy() and update_batch(array) on the shared maps of every shape with a dtype."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.maps: dict[str, tm.TypedMap[Any, Any]] = {}
        self.arrays: dict[str, Any] = {}
        self.percpu: tm.PerCpuTypedMap[Any, Any] | None = None
        for name, d in ctx.shapes.items():
            s = d.shape
            if s.from_btf:
                continue  # bitfields: no dtype (to_numpy raises DtypeError)
            m = tm.TypedMap(d.hash, key=s.key_schema, value=s.value_schema)
            arr = m.to_numpy()
            expect(len(arr), d.entries, f"TypedMap.to_numpy() ({name})")
            # The array holds what the codec decodes: the last per-op element, field by field.
            at = arr["key"] == np.frombuffer(d.key_bytes[-1], m.dtype["key"])
            want = np.frombuffer(d.value_bytes[-1], m.dtype["value"])
            if at.sum() != 1 or not (arr["value"][at] == want).all():
                raise RuntimeError(f"to_numpy() returned a wrong value ({name})")
            self.maps[name] = m
            self.arrays[name] = arr
            if d.percpu is not None and self.percpu is None:
                pm = tm.PerCpuTypedMap(d.percpu, key=s.key_schema, value=s.value_schema)
                parr = pm.to_numpy()
                expect(len(parr), d.ops, f"PerCpuTypedMap.to_numpy() ({name})")
                if parr["value"].shape != (d.ops, d.ncpus):
                    raise RuntimeError(f"per-CPU to_numpy() has shape {parr['value'].shape}")
                self.percpu, self.percpu_shape = pm, name
        if not self.maps:
            raise Unavailable("no shape of this run has a numpy dtype (btf has bitfields)")

    def run_round(self) -> RoundResult:
        out: RoundResult = {}
        clock = self.clock
        for name, m in self.maps.items():
            d = self.ctx.shapes[name]
            res = out.setdefault(name, {})
            t0 = clock()
            arr = m.to_numpy()
            dt = clock() - t0
            expect(len(arr), d.entries, "TypedMap.to_numpy()")
            res["to_numpy"] = dt / len(arr)
            del arr

            fresh = d.fresh(f"tmb_np_{name[:8]}")
            try:
                ft = tm.TypedMap(fresh.handle, key=m.key_codec, value=m.value_codec)
                src = self.arrays[name]
                t0 = clock()
                done = ft.update_batch(src)
                dt = clock() - t0
            finally:
                fresh.close()
            expect(done, d.entries, "TypedMap.update_batch(array)")
            res["update_batch_array"] = dt / done
        if self.percpu is not None:
            d = self.ctx.shapes[self.percpu_shape]
            t0 = clock()
            parr = self.percpu.to_numpy()
            dt = clock() - t0
            expect(len(parr), d.ops, "PerCpuTypedMap.to_numpy()")
            out.setdefault(self.percpu_shape, {})["percpu_to_numpy"] = dt / len(parr)
        return out

    def close(self) -> None:
        self.maps.clear()
        self.arrays.clear()


class CPercpuBatch:
    """bench/cbench.c's full batch read of the per-CPU maps (per element, every CPU's value)."""

    def __init__(self, ctx: Context) -> None:
        self.binary = build_cbench()
        self.clock = ctx.args.clock
        self.batch = ctx.batch
        self.jobs = [(n, d) for n, d in ctx.shapes.items() if d.percpu is not None]
        if not self.jobs:
            raise Unavailable("no shape of this run has a per-CPU map")

    def run_round(self) -> RoundResult:
        out: RoundResult = {}
        for name, d in self.jobs:
            assert d.percpu is not None
            fd = d.percpu.fileno()
            # cbench reads its key and value files even when it only batch-reads: give it none.
            cmd = [str(self.binary), str(fd), "/dev/null", "/dev/null", str(self.batch),
                   "lookup_batch", self.clock]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, pass_fds=(fd,))
            if proc.returncode:
                raise RuntimeError(f"cbench failed: {proc.stderr.strip()}")
            data = json.loads(proc.stdout)
            expect(int(data["count"]), d.ops, "cbench per-CPU lookup_batch")
            out[name] = {"percpu_lookup_batch": float(data["lookup_batch"])}
        return out

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- checks


def run_dump(args: argparse.Namespace) -> dict[str, Any]:
    """bench/cli_dump.py's measurement, with a verdict for the report."""
    entries = min(DUMP_ENTRIES, args.entries)
    dargs = argparse.Namespace(entries=entries, rounds=args.rounds, warmup=1, seed=args.seed)
    rec = cli_dump.run(dargs)
    res, t = rec["results"], rec["target"]
    return {
        **rec,
        "met": t["met"],
        "text": (
            f"{entries:,} entries, best of {args.rounds}: typedmaps "
            f"{res['typedmaps']['best_ms']:.0f} ms, bpftool {res['bpftool']['best_ms']:.0f} ms, "
            f"ratio {t['ratio']:.2f} (limit {t['limit']:g}; `import typedmaps` "
            f"{res['import']['best_ms']:.0f} ms, `python -c pass` "
            f"{res['python']['best_ms']:.0f} ms)"
        ),
    }


def _peak_rss_kib() -> int:
    """This process's resident high-water mark (VmHWM).

    Not ru_maxrss: Linux carries that over from the parent across fork and
    exec, so a worker started by a big benchmark process would see the
    parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_worker(entries: int) -> dict[str, Any]:
    """to_numpy() of ``entries`` elements of the plain shape, tracemalloc on during the call."""
    shape = SHAPES["plain"]
    owned = shape.create(tm.MapType.HASH, entries, "tmb_npmem")
    try:
        m = tm.TypedMap(owned.handle, key=shape.key_schema, value=shape.value_schema)
        step = 65536
        for lo in range(0, entries, step):
            chunk = np.zeros(min(step, entries - lo), m.dtype)
            idx = np.arange(lo, lo + len(chunk))
            chunk["key"]["src"] = idx
            chunk["key"]["proto"] = 6
            chunk["value"]["packets"] = idx
            m.update_batch(chunk)
        del chunk, idx
        # First-use imports and caches, on another map: the peak RSS must not see a full read yet.
        small = shape.create(tm.MapType.HASH, 1, "tmb_npwarm")
        try:
            tm.TypedMap(small.handle, key=shape.key_schema, value=shape.value_schema).to_numpy()
        finally:
            small.close()
        gc.collect()
        rss0 = _peak_rss_kib()
        tracemalloc.start()
        t0 = time.perf_counter()
        arr = m.to_numpy()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss1 = _peak_rss_kib()
        expect(len(arr), entries, "to_numpy()")
        if int(arr["value"]["packets"].sum()) != entries * (entries - 1) // 2:
            raise RuntimeError("to_numpy() of the memory check read wrong values")
        batch = m._batch_size
        buffers = batch * (m.dtype["key"].itemsize + m.handle._slot)
    finally:
        owned.close()
    bound = arr.nbytes + buffers + MEMORY_SLACK
    met = peak <= bound
    return {
        "entries": entries,
        "via": "TypedMap.to_numpy()",
        "seconds": round(seconds, 3),
        "result_bytes": int(arr.nbytes),
        "batch_buffer_bytes": buffers,
        "tracemalloc_peak_bytes": peak,
        "peak_rss_delta_kib": rss1 - rss0,
        "bounded_rule": "peak <= result array + one batch's buffers + 1 MiB",
        "met": met,
        "text": (
            f"{entries:,} entries through to_numpy() in {seconds:.2f} s: tracemalloc peak "
            f"{peak / 2**20:.2f} MiB for a {arr.nbytes / 2**20:.2f} MiB result "
            f"(+{(peak - arr.nbytes) / 2**10:.0f} KiB; one batch's buffers are "
            f"{buffers / 2**10:.0f} KiB), peak RSS +{(rss1 - rss0) / 1024:.1f} MiB: "
            + ("bounded (allocated once)" if met else "NOT bounded")
        ),
    }


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`memory_worker` in a fresh process, so its peak RSS starts clean."""
    if not args.mem_entries:
        return {"met": None, "text": "skipped (--mem-entries 0)", "entries": 0}
    cmd = [sys.executable, str(BENCH_DIR / "columnar.py"), "--memory-worker", str(args.mem_entries)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"to_numpy memory worker failed: {proc.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# --------------------------------------------------------------------------- registration


def register(reg: Registry) -> None:
    reg.add_op("to_numpy", "to_numpy() (per element)")
    reg.add_op("update_batch_array", "update_batch(array) (per element)")
    reg.add_op("percpu_to_numpy", "per-CPU to_numpy() (per element)")
    reg.add_op("percpu_lookup_batch", "per-CPU full batch read (per element)")
    reg.add_group("numpy", "numpy", NumpyBench)
    reg.add_group("c_percpu", "C per-CPU batch", CPercpuBatch)

    def target(
        name: str, shape: str, num: tuple[str, str], den: tuple[str, str], limit: float
    ) -> None:
        reg.add_target(Target(f"{name} ({shape})", (shape, *num), (shape, *den), limit))

    for shape in ("plain", "frozen_str", "nested"):
        target(f"to_numpy() <= {TO_NUMPY_LIMIT:g}x C batch lookup", shape,
               ("numpy", "to_numpy"), ("c", "lookup_batch"), TO_NUMPY_LIMIT)  # fmt: skip
        target(f"update_batch(array) <= {UPDATE_LIMIT:g}x C batch update", shape,
               ("numpy", "update_batch_array"), ("c", "update_batch"), UPDATE_LIMIT)  # fmt: skip
        reg.add_info(
            Info(
                f"to_numpy() / TypedMap.items() ({shape})",
                (shape, "numpy", "to_numpy"),
                (shape, "typed", "lookup_batch"),
            )
        )
    target(f"per-CPU to_numpy() <= {TO_NUMPY_LIMIT:g}x C per-CPU batch lookup", "plain",
           ("numpy", "percpu_to_numpy"), ("c_percpu", "percpu_lookup_batch"),
           TO_NUMPY_LIMIT)  # fmt: skip
    reg.add_check(Check("typedmaps dump --json <= 3x bpftool map dump -j (wall)", run_dump))
    reg.add_check(Check("memory bounded over to_numpy() (plain, allocated once)", run_memory))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument(
        "--memory-worker",
        type=int,
        metavar="ENTRIES",
        required=True,
        help="run the to_numpy() memory check over ENTRIES elements; print JSON",
    )
    args = p.parse_args(argv)
    if args.memory_worker <= 0:
        p.error("--memory-worker needs a positive number of entries")
    print(json.dumps(memory_worker(args.memory_worker)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
