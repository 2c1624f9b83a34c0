#!/usr/bin/env python3
"""typedmaps benchmark: C on libbpf, a bare cffi loop, MapHandle, TypedMap and BCC, side by side.

One run measures every implementation on the same kind of map (a HASH with
a 16-byte key and a 32-byte value, and a PERCPU_HASH of the same shape) and
the same keys, in rounds: each round runs every group once, in a shuffled
order, and the report keeps the best (lowest) ns per element of each
measurement over the rounds, plus the median. Time is the measuring
thread's CPU time by default (user + kernel, CLOCK_THREAD_CPUTIME_ID, in C
and in Python alike), so time slices lost to other processes on this
shared machine do not count; --clock wall uses wall time instead. The ratios and the issue's
targets are computed from those best times. A JSON record goes to
bench/results/<timestamp>.json (and to --json PATH).

    .venv/bin/python bench/run.py                  # the full run (100k entries, 7 rounds)
    .venv/bin/python bench/run.py --quick          # a small, fast run
    make bench BENCH_ARGS="--rounds 11"

Groups:
    c       bench/cbench.c built with gcc against the system libbpf (-lbpf)
    floor   the cheapest Python can do: a bare cffi ABI-mode call loop with a
            preallocated buffer (with and without copying the value out)
    handle  typedmaps.MapHandle (bytes in, bytes out)
    typed   typedmaps.TypedMap / PerCpuTypedMap with construct-typing
            dataclass records (DataclassStruct)
    bcc     BCC's Python tables (Debian's python3-bpfcc) over the same maps
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import cffi
import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

# bench/ is sys.path[0] when this file runs as a script (make bench, the smoke test).
from workload import KEY_SIZE, VALUE_SIZE, key_bytes, key_fields, value_bytes, value_fields

import typedmaps as tm
from typedmaps.handle import DEFAULT_BATCH

BENCH_DIR: Final = Path(__file__).resolve().parent

ROOT: Final = BENCH_DIR.parent
BUILD_DIR: Final = ROOT / "build" / "bench"
RESULTS_DIR: Final = BENCH_DIR / "results"
CBENCH_SRC: Final = BENCH_DIR / "cbench.c"
SYSTEM_PYTHON: Final = "/usr/bin/python3"
SCHEMA_VERSION: Final = 1

GROUPS: Final = ("c", "floor", "handle", "typed", "bcc")
GROUP_TITLES: Final = {
    "c": "C libbpf",
    "floor": "cffi floor",
    "handle": "MapHandle",
    "typed": "TypedMap",
    "bcc": "BCC",
}
OPS: Final = ("lookup", "update", "lookup_batch", "update_batch", "percpu_lookup")
OP_TITLES: Final = {
    "lookup": "lookup (per op)",
    "update": "update (per op)",
    "lookup_batch": "full read (batch)",
    "update_batch": "update_batch",
    "percpu_lookup": "per-CPU lookup",
}

Samples = dict[str, dict[str, list[float]]]
Clock = Callable[[], int]
#: cpu: this thread's CPU time (user + kernel), so time slices lost to other
#: processes on a shared machine do not count; wall: perf_counter.
CLOCKS: Final[dict[str, Clock]] = {"cpu": time.thread_time_ns, "wall": time.perf_counter_ns}


# --------------------------------------------------------------------------- records


@dataclasses.dataclass
class BenchKey(DataclassMixin):
    """struct bench_key: a flow key, 16 bytes with 3 bytes of tail padding."""

    src: int = csfield(cs.Int32ul)
    dst: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class BenchValue(DataclassMixin):
    """struct bench_value: flow counters, 32 bytes."""

    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)
    first_ns: int = csfield(cs.Int64ul)
    last_ns: int = csfield(cs.Int64ul)


KEY_SCHEMA: Final = DataclassStruct(BenchKey)
VALUE_SCHEMA: Final = DataclassStruct(BenchValue)


# --------------------------------------------------------------------------- maps


def _create(map_type: tm.MapType, max_entries: int, name: str) -> tm.MapHandle:
    return tm.MapHandle.create(
        map_type, key_size=KEY_SIZE, value_size=VALUE_SIZE, max_entries=max_entries, name=name
    )


def _fill(h: tm.MapHandle, start: int, stop: int, copies: int = 1) -> None:
    """Insert keys [start, stop) with update_batch, 64k at a time (bounded memory)."""
    chunk = 65536
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        keys = b"".join(key_bytes(i) for i in range(lo, hi))
        vals = b"".join(value_bytes(i) * copies for i in range(lo, hi))
        h.update_batch(keys, vals, hi - lo)


class Maps:
    """The shared maps every Python-side group reads: filled once, closed at the end."""

    def __init__(self, entries: int, ops: int) -> None:
        self.entries = entries
        self.ops = ops
        self.ncpus = tm.num_possible_cpus()
        self.hash = _create(tm.MapType.HASH, entries, "tmb_hash")
        try:
            self.percpu = _create(tm.MapType.PERCPU_HASH, ops, "tmb_pcpu")
        except BaseException:
            self.hash.close()
            raise
        try:
            _fill(self.hash, 0, entries)
            # 32-byte values are 8-aligned: each per-CPU slot is exactly the value.
            _fill(self.percpu, 0, ops, copies=self.ncpus)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.hash.close()
        self.percpu.close()

    def __enter__(self) -> Maps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- C


def build_cbench() -> Path:
    """Compile bench/cbench.c into build/bench/cbench when missing or stale."""
    out = BUILD_DIR / "cbench"
    if out.exists() and out.stat().st_mtime >= CBENCH_SRC.stat().st_mtime:
        return out
    # gcc by default; clang (which `make setup` installs for the BPF objects) otherwise.
    cc = os.environ.get("CC") or next((c for c in ("gcc", "clang", "cc") if shutil.which(c)), "")
    if not cc or shutil.which(cc) is None:
        raise SystemExit(f"bench: no C compiler ({cc or 'gcc/clang/cc'}); install gcc")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(CBENCH_SRC), "-lbpf"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(
            f"bench: building cbench failed ({' '.join(cmd)}); is libbpf-dev installed "
            f"(make setup)?\n{proc.stderr}"
        )
    return out


class CBench:
    """Runs the C baseline once per round (a fresh process with its own maps)."""

    def __init__(self, binary: Path, entries: int, ops: int, batch: int, clock: str) -> None:
        self.cmd = [str(binary), str(entries), str(ops), str(batch), clock]

    def run_round(self) -> dict[str, float]:
        proc = subprocess.run(self.cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"cbench failed: {proc.stderr.strip()}")
        data = json.loads(proc.stdout)
        return {op: float(data[op]) for op in OPS}


# --------------------------------------------------------------------------- cffi floor


_FLOOR_CDEF: Final = "int bpf_map_lookup_elem(int fd, const char *key, char *value);"


def build_api_floor() -> tuple[Any, Any] | str:
    """An API-mode (compiled) cffi binding of bpf_map_lookup_elem, for comparison.

    typedmaps uses ABI mode (no compiler needed at install). This builds the
    same declaration out-of-line into build/bench/ so one run shows what a
    compiled binding would save per call. Returns (ffi, lib), or why not.
    """
    import importlib

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    name = "_tmbench_api"
    if str(BUILD_DIR) not in sys.path:
        sys.path.insert(0, str(BUILD_DIR))
    try:
        mod = importlib.import_module(name)
    except ImportError:
        ffi = cffi.FFI()
        ffi.cdef(_FLOOR_CDEF)
        ffi.set_source(name, "#include <bpf/bpf.h>", libraries=["bpf"])
        try:
            ffi.compile(tmpdir=str(BUILD_DIR), verbose=False)
            mod = importlib.import_module(name)
        except Exception as exc:  # a missing compiler or header: just not measured
            return f"could not build an API-mode cffi module: {type(exc).__name__}: {exc}"
    return mod.ffi, mod.lib


class FloorBench:
    """The floor: bare cffi loops over bpf_map_lookup_elem, nothing else.

    Its own FFI and dlopen, so it measures cffi and libbpf alone, with one
    preallocated buffer and a view of it made once (no thread safety, no
    checks). ``lookup`` copies each value out into bytes, as any lookup that
    returns bytes must; ``lookup_nocopy`` only calls; ``lookup_api`` is
    ``lookup`` through a compiled API-mode module (when one can be built).
    """

    def __init__(self, maps: Maps, clock: Clock) -> None:
        self.clock = clock
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(_FLOOR_CDEF)
        self.lib: Any = cast(Any, self.ffi.dlopen("libbpf.so.1"))
        self.fd = maps.hash.fileno()
        self.keys = [key_bytes(i) for i in range(maps.ops)]
        self.api = build_api_floor()
        want = value_bytes(maps.ops - 1)
        for ffi, lib in [(self.ffi, self.lib)] + (
            [self.api] if isinstance(self.api, tuple) else []
        ):
            buf = ffi.new("char[]", VALUE_SIZE)
            if lib.bpf_map_lookup_elem(self.fd, self.keys[-1], buf):
                raise RuntimeError("floor: lookup of a key the benchmark wrote failed")
            if ffi.buffer(buf, VALUE_SIZE)[:] != want:
                raise RuntimeError("floor: lookup returned a wrong value")

    def run_round(self) -> dict[str, float]:
        out: dict[str, float] = {}
        fd, keys = self.fd, self.keys
        look = self.lib.bpf_map_lookup_elem
        buf = self.ffi.new("char[]", VALUE_SIZE)
        view = self.ffi.buffer(buf, VALUE_SIZE)
        clock = self.clock

        t0 = clock()
        for k in keys:
            look(fd, k, buf)
        out["lookup_nocopy"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k in keys:
            look(fd, k, buf)
            view[:]
        out["lookup"] = (clock() - t0) / len(keys)

        if isinstance(self.api, tuple):
            api_ffi, api_lib = self.api
            look = api_lib.bpf_map_lookup_elem
            buf = api_ffi.new("char[]", VALUE_SIZE)
            view = api_ffi.buffer(buf, VALUE_SIZE)
            t0 = clock()
            for k in keys:
                look(fd, k, buf)
                view[:]
            out["lookup_api"] = (clock() - t0) / len(keys)
        return out


# --------------------------------------------------------------------------- MapHandle


class HandleBench:
    """typedmaps.MapHandle: bytes keys and values, the library's public byte API."""

    def __init__(self, maps: Maps, batch: int, clock: Clock) -> None:
        self.maps = maps
        self.batch = batch
        self.clock = clock
        self.keys = [key_bytes(i) for i in range(maps.ops)]
        self.values = [value_bytes(i) for i in range(maps.ops)]
        n = maps.entries
        self.all_keys = b"".join(key_bytes(i) for i in range(n))
        self.all_values = b"".join(value_bytes(i) for i in range(n))
        last = maps.ops - 1
        if maps.hash.lookup(self.keys[last]) != self.values[last]:
            raise RuntimeError("MapHandle.lookup returned a wrong value")
        if maps.percpu.lookup_percpu(self.keys[last]) != [self.values[last]] * maps.ncpus:
            raise RuntimeError("MapHandle.lookup_percpu returned a wrong value")

    def run_round(self) -> dict[str, float]:
        out: dict[str, float] = {}
        h, keys, values = self.maps.hash, self.keys, self.values
        clock = self.clock

        lookup = h.lookup
        t0 = clock()
        for k in keys:
            lookup(k)
        out["lookup"] = (clock() - t0) / len(keys)

        update = h.update
        t0 = clock()
        for k, v in zip(keys, values, strict=True):
            update(k, v)
        out["update"] = (clock() - t0) / len(keys)

        n = 0
        t0 = clock()
        for _k, _v in h.lookup_batch(self.batch):
            n += 1
        dt = clock() - t0
        _expect(n, self.maps.entries, "MapHandle.lookup_batch")
        out["lookup_batch"] = dt / n

        with _create(tm.MapType.HASH, self.maps.entries, "tmb_ub_handle") as fresh:
            t0 = clock()
            done = fresh.update_batch(self.all_keys, self.all_values, self.maps.entries)
            dt = clock() - t0
        _expect(done, self.maps.entries, "MapHandle.update_batch")
        out["update_batch"] = dt / done

        lookup_percpu = self.maps.percpu.lookup_percpu
        t0 = clock()
        for k in keys:
            lookup_percpu(k)
        out["percpu_lookup"] = (clock() - t0) / len(keys)
        return out


# --------------------------------------------------------------------------- TypedMap


class TypedBench:
    """typedmaps.TypedMap / PerCpuTypedMap over the same maps, dataclass records."""

    def __init__(self, maps: Maps, clock: Clock) -> None:
        self.maps = maps
        self.clock = clock
        self.typed = tm.TypedMap(maps.hash, key=KEY_SCHEMA, value=VALUE_SCHEMA)
        self.percpu = tm.PerCpuTypedMap(maps.percpu, key=KEY_SCHEMA, value=VALUE_SCHEMA)
        self.keys = [BenchKey(*key_fields(i)) for i in range(maps.ops)]
        self.values = [BenchValue(*value_fields(i)) for i in range(maps.ops)]
        self.pairs = [
            (BenchKey(*key_fields(i)), BenchValue(*value_fields(i))) for i in range(maps.entries)
        ]
        last = maps.ops - 1
        if self.typed[self.keys[last]] != self.values[last]:
            raise RuntimeError("TypedMap[k] returned a wrong value")
        if self.percpu[self.keys[last]] != [self.values[last]] * maps.ncpus:
            raise RuntimeError("PerCpuTypedMap[k] returned a wrong value")

    def run_round(self) -> dict[str, float]:
        out: dict[str, float] = {}
        m, keys, values = self.typed, self.keys, self.values
        clock = self.clock

        t0 = clock()
        for k in keys:
            m[k]
        out["lookup"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in zip(keys, values, strict=True):
            m[k] = v
        out["update"] = (clock() - t0) / len(keys)

        n = 0
        t0 = clock()
        for _k, _v in m.items():
            n += 1
        dt = clock() - t0
        _expect(n, self.maps.entries, "TypedMap.items()")
        out["lookup_batch"] = dt / n

        with _create(tm.MapType.HASH, self.maps.entries, "tmb_ub_typed") as fresh:
            fresh_typed = tm.TypedMap(fresh, key=KEY_SCHEMA, value=VALUE_SCHEMA)
            t0 = clock()
            fresh_typed.update_batch(self.pairs)
            dt = clock() - t0
            _expect(len(fresh_typed), self.maps.entries, "TypedMap.update_batch")
        out["update_batch"] = dt / self.maps.entries

        pm = self.percpu
        t0 = clock()
        for k in keys:
            pm[k]
        out["percpu_lookup"] = (clock() - t0) / len(keys)
        return out


# --------------------------------------------------------------------------- BCC


class BccInProcess:
    """BCC's tables imported into this interpreter (see bench/bcc_side.py)."""

    def __init__(self, maps: Maps, clock_name: str) -> None:
        import bcc_side

        self.clock = bcc_side.CLOCKS[clock_name]
        table_mod, self.version = bcc_side.load_bcc()
        self.bench = bcc_side.BccBench(
            table_mod, maps.hash.fileno(), maps.entries, maps.percpu.fileno(), maps.ops
        )
        self.mode = "in-process"

    def run_round(self) -> dict[str, float]:
        return self.bench.run_round(self.clock)


class BccSubprocess:
    """BCC under Debian's /usr/bin/python3, on this process's map fds (pass_fds)."""

    def __init__(self, maps: Maps, clock_name: str) -> None:
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            raise ImportError(f"{SYSTEM_PYTHON} not found")
        self.fds = (maps.hash.fileno(), maps.percpu.fileno())
        self.cmd = [
            SYSTEM_PYTHON,
            str(BENCH_DIR / "bcc_side.py"),
            f"--fd={self.fds[0]}",
            f"--pfd={self.fds[1]}",
            f"--entries={maps.entries}",
            f"--ops={maps.ops}",
            f"--clock={clock_name}",
        ]
        self.mode = "subprocess"
        self.version = str(self._run().get("bcc_version", "?"))

    def _run(self) -> dict[str, Any]:
        proc = subprocess.run(
            self.cmd, capture_output=True, text=True, check=False, pass_fds=self.fds
        )
        if proc.returncode:
            raise ImportError(f"BCC worker failed: {proc.stderr.strip()[-500:]}")
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def run_round(self) -> dict[str, float]:
        data = self._run()
        return {k: float(v) for k, v in data.items() if isinstance(v, float | int)}


def make_bcc(
    maps: Maps, mode: str, clock_name: str
) -> tuple[BccInProcess | BccSubprocess | None, str]:
    """The BCC group for ``mode`` (auto, inprocess, subprocess, off), or None and why."""
    if mode == "off":
        return None, "disabled (--bcc off)"
    errors = []
    if mode in ("auto", "inprocess"):
        try:
            return BccInProcess(maps, clock_name), ""
        except ImportError as exc:
            errors.append(f"in-process: {exc}")
    if mode in ("auto", "subprocess"):
        try:
            return BccSubprocess(maps, clock_name), ""
        except ImportError as exc:
            errors.append(f"subprocess: {exc}")
    return None, "; ".join(errors)


# --------------------------------------------------------------------------- memory


def memory_worker(entries: int) -> dict[str, Any]:
    """Iterate ``entries`` elements through TypedMap.items() and watch memory.

    tracemalloc's peak is taken twice in one iteration: over the first tenth
    of the entries, then over the whole walk. Iteration is bounded when the
    second peak is not meaningfully larger than the first: memory does not
    grow with the number of entries. ru_maxrss (the process high-water
    mark) is reported as a cross-check that includes cffi's C buffers.
    """
    with _create(tm.MapType.HASH, entries, "tmb_mem") as h:
        _fill(h, 0, entries)
        it = iter(tm.TypedMap(h, key=KEY_SCHEMA, value=VALUE_SCHEMA).items())
        via = "TypedMap.items()"
        gc.collect()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        tenth = max(1, entries // 10)
        n = 0
        peak_tenth = 0
        t0 = time.perf_counter()
        for _ in it:
            n += 1
            if n == tenth:
                peak_tenth = tracemalloc.get_traced_memory()[1]
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _expect(n, entries, via)
    slack = 1 << 20
    return {
        "entries": entries,
        "via": via,
        "seconds": round(seconds, 3),
        "tracemalloc_peak_first_tenth_bytes": peak_tenth,
        "tracemalloc_peak_bytes": peak,
        "maxrss_delta_kib": rss1 - rss0,
        "bounded_rule": "peak over all entries <= 1.25 x peak over the first tenth + 1 MiB",
        "bounded": peak <= 1.25 * peak_tenth + slack,
    }


def run_memory(entries: int) -> dict[str, Any]:
    """Run :func:`memory_worker` in a fresh process, so ru_maxrss starts clean."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-worker",
        f"--mem-entries={entries}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"memory worker failed: {proc.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# --------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class Target:
    """One of issue 6's targets: ``num / den`` compared with ``limit``."""

    name: str
    num: tuple[str, str]
    den: tuple[str, str]
    limit: float
    strict: bool = False  # "<" (faster than) instead of "<="


TARGETS: Final = (
    Target("MapHandle.lookup <= 1.8x C lookup", ("handle", "lookup"), ("c", "lookup"), 1.8),
    Target("TypedMap[k] <= 1.5x MapHandle.lookup", ("typed", "lookup"), ("handle", "lookup"), 1.5),
    Target(
        "TypedMap.items() <= 3x C lookup_batch",
        ("typed", "lookup_batch"),
        ("c", "lookup_batch"),
        3.0,
    ),
    Target(
        "TypedMap.items() faster than BCC items_lookup_batch",
        ("typed", "lookup_batch"),
        ("bcc", "lookup_batch"),
        1.0,
        strict=True,
    ),
    Target(
        "TypedMap.update_batch <= 3x C update_batch",
        ("typed", "update_batch"),
        ("c", "update_batch"),
        3.0,
    ),
    Target(
        "TypedMap[k] faster than BCC table[k]",
        ("typed", "lookup"),
        ("bcc", "lookup"),
        1.0,
        strict=True,
    ),
)

# Ratios reported for information (no target).
INFO_RATIOS: Final = (
    ("cffi floor lookup / C lookup", ("floor", "lookup"), ("c", "lookup")),
    ("cffi API-mode floor / C lookup", ("floor", "lookup_api"), ("c", "lookup")),
    ("MapHandle.lookup / cffi floor", ("handle", "lookup"), ("floor", "lookup")),
    ("MapHandle.update / C update", ("handle", "update"), ("c", "update")),
    ("TypedMap[k]=v / MapHandle.update", ("typed", "update"), ("handle", "update")),
    ("MapHandle.lookup_batch / C lookup_batch", ("handle", "lookup_batch"), ("c", "lookup_batch")),
    ("MapHandle.update_batch / C update_batch", ("handle", "update_batch"), ("c", "update_batch")),
    ("MapHandle.lookup_percpu / C", ("handle", "percpu_lookup"), ("c", "percpu_lookup")),
    (
        "PerCpuTypedMap[k] / MapHandle.lookup_percpu",
        ("typed", "percpu_lookup"),
        ("handle", "percpu_lookup"),
    ),
    ("PerCpuTypedMap[k] / BCC PerCpuHash[k]", ("typed", "percpu_lookup"), ("bcc", "percpu_lookup")),
    ("TypedMap[k]=v / BCC table[k]=v", ("typed", "update"), ("bcc", "update")),
    (
        "TypedMap[k] / BCC table[k] + reading its fields",
        ("typed", "lookup"),
        ("bcc", "lookup_fields"),
    ),
    (
        "TypedMap.items() / BCC items_lookup_batch + fields",
        ("typed", "lookup_batch"),
        ("bcc", "lookup_batch_fields"),
    ),
)


def summarize(samples: Samples) -> dict[str, dict[str, dict[str, Any]]]:
    """best (min), median and every round's value, per group and operation."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for group, ops in samples.items():
        out[group] = {
            op: {
                "best": round(min(vals), 2),
                "median": round(statistics.median(vals), 2),
                "rounds": [round(v, 2) for v in vals],
            }
            for op, vals in ops.items()
            if vals
        }
    return out


def _best(results: dict[str, dict[str, dict[str, Any]]], key: tuple[str, str]) -> float | None:
    entry = results.get(key[0], {}).get(key[1])
    return None if entry is None else float(entry["best"])


def _ratio(
    results: dict[str, dict[str, dict[str, Any]]], num: tuple[str, str], den: tuple[str, str]
) -> float | None:
    a, b = _best(results, num), _best(results, den)
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def evaluate(
    results: dict[str, dict[str, dict[str, Any]]], memory: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """The targets (met True/False, or None when a side was not measured) and info ratios."""
    targets: list[dict[str, Any]] = []
    for t in TARGETS:
        r = _ratio(results, t.num, t.den)
        met = None if r is None else (r < t.limit if t.strict else r <= t.limit)
        targets.append(
            {
                "name": t.name,
                "ratio": r,
                "limit": t.limit,
                "comparison": "<" if t.strict else "<=",
                "numerator": ".".join(t.num),
                "denominator": ".".join(t.den),
                "met": met,
            }
        )
    mem_ok = None
    if memory is not None and memory.get("via") == "TypedMap.items()":
        mem_ok = bool(memory["bounded"])
    targets.append(
        {
            "name": "memory bounded while iterating TypedMap.items()",
            "ratio": None,
            "limit": None,
            "comparison": memory["bounded_rule"] if memory else None,
            "numerator": None,
            "denominator": None,
            "met": mem_ok,
        }
    )
    info = {name: _ratio(results, num, den) for name, num, den in INFO_RATIOS}
    return targets, info


def _fmt_ns(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def render(record: dict[str, Any]) -> str:
    """The human-readable report: ns per element, ratios, targets, memory."""
    p = record["params"]
    results = record["results"]
    lines = [
        f"typedmaps benchmark: {p['entries']:,} entries, {p['ops']:,} per-op keys, "
        f"best of {p['rounds']} rounds, {p['clock']} clock, batch {p['batch']}, "
        f"{p['ncpus']} possible CPUs",
        f"load average at start {record['loadavg_start']}, at end "
        f"{record['env']['loadavg_end'][0]} ({record['env']['online_cpus']} online CPUs)",
        "",
    ]
    head = f"{'ns per element':<20}" + "".join(f"{GROUP_TITLES[g]:>12}" for g in GROUPS)
    lines += [head, "-" * len(head)]
    for op in OPS:
        row = f"{OP_TITLES[op]:<20}"
        for g in GROUPS:
            row += f"{_fmt_ns(_best(results, (g, op))):>12}"
        lines.append(row)
    lines += ["", f"{'target':<55}{'ratio':>8}  {'limit':<7} result", "-" * 80]
    for t in record["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        limit = "" if t["limit"] is None else f"{t['comparison']} {t['limit']:g}"
        lines.append(f"{t['name']:<55}{ratio:>8}  {limit:<7} {verdict}")
    lines += ["", f"{'other ratios':<55}{'ratio':>8}", "-" * 63]
    for name, r in record["ratios"].items():
        lines.append(f"{name:<55}{'-' if r is None else f'{r:.2f}':>8}")
    mem = record.get("memory")
    if mem:
        lines += [
            "",
            f"memory: {mem['entries']:,} entries through {mem['via']} in {mem['seconds']} s: "
            f"tracemalloc peak {mem['tracemalloc_peak_bytes'] / 2**20:.2f} MiB "
            f"(first tenth {mem['tracemalloc_peak_first_tenth_bytes'] / 2**20:.2f} MiB), "
            f"maxrss +{mem['maxrss_delta_kib'] / 1024:.1f} MiB: "
            + ("bounded" if mem["bounded"] else "NOT bounded"),
        ]
    for group, why in record["unavailable"].items():
        lines.append(f"{GROUP_TITLES.get(group, group)} not measured: {why}")
    return "\n".join(lines)


def render_markdown(record: dict[str, Any]) -> str:
    """The same report as Markdown tables (for docs/performance.md and the README)."""
    results = record["results"]
    out = ["| ns per element | " + " | ".join(GROUP_TITLES[g] for g in GROUPS) + " |"]
    out.append("|---|" + "---:|" * len(GROUPS))
    for op in OPS:
        cells = [_fmt_ns(_best(results, (g, op))) for g in GROUPS]
        out.append(f"| {OP_TITLES[op]} | " + " | ".join(cells) + " |")
    out += ["", "| target | ratio | limit | result |", "|---|---:|---|---|"]
    for t in record["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        limit = "" if t["limit"] is None else f"{t['comparison']} {t['limit']:g}"
        out.append(f"| {t['name']} | {ratio} | {limit} | {verdict} |")
    out += ["", "| ratio | value |", "|---|---:|"]
    for name, r in record["ratios"].items():
        out.append(f"| {name} | {'-' if r is None else f'{r:.2f}'} |")
    mem = record.get("memory")
    if mem:
        out += [
            "",
            f"Memory: {mem['entries']:,} entries through {mem['via']}: tracemalloc peak "
            f"{mem['tracemalloc_peak_bytes'] / 2**20:.2f} MiB over the whole walk, "
            f"{mem['tracemalloc_peak_first_tenth_bytes'] / 2**20:.2f} MiB over the first "
            f"tenth; ru_maxrss grew {mem['maxrss_delta_kib'] / 1024:.1f} MiB: "
            + ("bounded." if mem["bounded"] else "NOT bounded."),
        ]
    return "\n".join(out)


def environment(bcc_version: str | None, bcc_mode: str | None) -> dict[str, Any]:
    """Where the numbers came from."""
    ffi: Any = cffi.FFI()
    ffi.cdef("const char *libbpf_version_string(void);")
    lib: Any = ffi.dlopen("libbpf.so.1")
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": model,
        "online_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "libbpf": ffi.string(lib.libbpf_version_string()).decode(),
        "cffi": cffi.__version__,
        "bcc": bcc_version,
        "bcc_mode": bcc_mode,
        "git": commit,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }


def _expect(got: int, want: int, what: str) -> None:
    if got != want:
        raise RuntimeError(f"{what} handled {got} elements, expected {want}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="C vs MapHandle vs TypedMap vs BCC, ns per element, in one run."
    )
    p.add_argument("--entries", type=int, help="elements in the hash map (default 100000)")
    p.add_argument("--ops", type=int, help="keys for per-op lookup/update (default: entries)")
    p.add_argument("--rounds", type=int, help="measured rounds; best is kept (default 7)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (default 1)")
    p.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"elements per lookup_batch call, C and MapHandle (default {DEFAULT_BATCH})",
    )
    p.add_argument(
        "--mem-entries",
        type=int,
        help="entries for the memory check through TypedMap.items() (default 1000000; 0 skips)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 3 rounds: a fast check")
    p.add_argument(
        "--bcc",
        choices=("auto", "inprocess", "subprocess", "off"),
        default="auto",
        help="how to run BCC: imported here, or under /usr/bin/python3 (default auto)",
    )
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: this thread's CPU time, robust on a shared machine (default); wall",
    )
    p.add_argument("--json", type=Path, help="also write the JSON record here")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where records go")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-round group order")
    p.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the report of an existing record (and --markdown), measure nothing",
    )
    p.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    if args.entries is None:
        args.entries = 5000 if quick else 100_000
    if args.ops is None:
        args.ops = args.entries
    if args.rounds is None:
        args.rounds = 3 if quick else 7
    if args.mem_entries is None:
        args.mem_entries = 50_000 if quick else 1_000_000
    for name in ("entries", "ops", "rounds", "batch"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.ops > args.entries:
        p.error("--ops cannot exceed --entries (per-op keys must be in the map)")
    if args.warmup < 0 or args.mem_entries < 0:
        p.error("--warmup and --mem-entries must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.mem_entries)))
        return 0
    if args.render is not None:
        saved: dict[str, Any] = json.loads(args.render.read_text())
        print(render(saved))
        if args.markdown is not None:
            args.markdown.write_text(render_markdown(saved) + "\n")
        return 0

    def say(msg: str) -> None:
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    load = os.getloadavg()[0]
    if load > 0.5:
        say(f"warning: load average {load:.2f}: other work shares the CPUs, expect noise")
    cbin = build_cbench()
    clock = CLOCKS[args.clock]
    unavailable: dict[str, str] = {}
    say(f"filling maps ({args.entries:,} + {args.ops:,} per-CPU entries)")
    with Maps(args.entries, args.ops) as maps:
        floor = FloorBench(maps, clock)
        if isinstance(floor.api, str):
            unavailable["floor.lookup_api"] = floor.api
        runners: dict[str, Callable[[], dict[str, float]]] = {
            "c": CBench(cbin, args.entries, args.ops, args.batch, args.clock).run_round,
            "floor": floor.run_round,
            "handle": HandleBench(maps, args.batch, clock).run_round,
            "typed": TypedBench(maps, clock).run_round,
        }
        bcc, why_bcc = make_bcc(maps, args.bcc, args.clock)
        if bcc is not None:
            runners["bcc"] = bcc.run_round
        else:
            unavailable["bcc"] = why_bcc

        samples: Samples = {g: {} for g in runners}
        rng = random.Random(args.seed)
        for r in range(args.warmup + args.rounds):
            order = list(runners)
            rng.shuffle(order)
            warm = r < args.warmup
            say(
                ("warm-up" if warm else f"round {r - args.warmup + 1}/{args.rounds}")
                + f": {' '.join(order)}"
            )
            for g in order:
                gc.collect()
                res = runners[g]()
                if not warm:
                    for op, ns in res.items():
                        samples[g].setdefault(op, []).append(ns)
        ncpus = maps.ncpus

    memory = None
    if args.mem_entries:
        say(f"memory: iterating {args.mem_entries:,} entries in a fresh process")
        memory = run_memory(args.mem_entries)

    results = summarize(samples)
    targets, ratios = evaluate(results, memory)
    stamp = datetime.now(UTC)
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "timestamp": stamp.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "unit": f"ns per element ({args.clock} clock); best (lowest) of the rounds, median too",
        "params": {
            "entries": args.entries,
            "ops": args.ops,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "batch": args.batch,
            "mem_entries": args.mem_entries,
            "ncpus": ncpus,
            "key_size": KEY_SIZE,
            "value_size": VALUE_SIZE,
            "seed": args.seed,
            "clock": args.clock,
        },
        "loadavg_start": round(load, 2),
        "env": environment(
            getattr(bcc, "version", None) if bcc else None, bcc.mode if bcc else None
        ),
        "results": results,
        "ratios": ratios,
        "targets": targets,
        "memory": memory,
        "unavailable": unavailable,
    }
    print(render(record))
    text = json.dumps(record, indent=2) + "\n"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{stamp.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(text)
    paths = [out]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
        paths.append(args.json)
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(record) + "\n")
        paths.append(args.markdown)
    say("wrote " + ", ".join(str(x) for x in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
