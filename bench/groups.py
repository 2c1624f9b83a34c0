"""The built-in groups of bench/run.py (C, cffi floor, MapHandle, TypedMap, BCC), the memory check.

Each runner measures every shape it applies to, once per round, and
returns ``{shape: {op: ns per element}}``. Every runner checks a known
element before it is timed and the full reads check they saw every
element, so a broken setup never produces a number.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Final, cast

import cffi
from harness import Check, Context, Info, Registry, RoundResult, ShapeData, Target, Unavailable
from harness import expect as _expect
from shapes import SHAPES

import typedmaps as tm

BENCH_DIR: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH_DIR.parent
BUILD_DIR: Final = ROOT / "build" / "bench"
CBENCH_SRC: Final = BENCH_DIR / "cbench.c"
SYSTEM_PYTHON: Final = "/usr/bin/python3"


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
    """bench/cbench.c on the shared maps: one process per map per round, fds inherited."""

    def __init__(self, ctx: Context) -> None:
        self.binary = build_cbench()
        self.clock = ctx.args.clock
        self.batch = ctx.batch
        self.tmp = tempfile.TemporaryDirectory(prefix="tmbench-")
        #: (shape, op prefix, fd, keys file, values file, ops)
        self.jobs: list[tuple[str, str, int, str, str, str]] = []
        for name, d in ctx.shapes.items():
            keys = self._write(f"{name}.keys", b"".join(d.key_bytes))
            vals = self._write(f"{name}.values", b"".join(d.value_bytes))
            ops = "lookup,update,lookup_batch,update_batch"
            self.jobs.append((name, "", d.hash.fileno(), keys, vals, ops))
            if d.percpu is not None:
                pvals = self._write(f"{name}.pvalues", b"".join(d.percpu_value_bytes))
                self.jobs.append((name, "percpu_", d.percpu.fileno(), keys, pvals, "lookup"))

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.tmp.name, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_round(self) -> RoundResult:
        out: RoundResult = {}
        for shape, prefix, fd, keys, vals, ops in self.jobs:
            cmd = [str(self.binary), str(fd), keys, vals, str(self.batch), ops, self.clock]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, pass_fds=(fd,))
            if proc.returncode:
                raise RuntimeError(f"cbench failed: {proc.stderr.strip()}")
            data = json.loads(proc.stdout)
            res = out.setdefault(shape, {})
            for op in ops.split(","):
                res[prefix + op] = float(data[op])
        return out

    def close(self) -> None:
        self.tmp.cleanup()


# --------------------------------------------------------------------------- cffi floor


_FLOOR_CDEF: Final = """
int bpf_map_lookup_elem(int fd, const char *key, char *value);
int bpf_map_update_elem(int fd, const char *key, const char *value, unsigned long long flags);
"""


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
    """The floor: bare cffi loops over libbpf's element calls, nothing else.

    Its own FFI and dlopen, so it measures cffi and libbpf alone, with one
    preallocated buffer and a view of it made once (no thread safety, no
    checks, no lifetime protection). ``lookup`` copies each value out into
    bytes, as any lookup that returns bytes must; ``lookup_nocopy`` only
    calls; ``percpu_lookup`` copies out and cuts one bytes per CPU, as a
    per-CPU lookup that returns a list must; ``lookup_api`` is ``lookup``
    through a compiled API-mode module (plain shape, when one can be built).
    """

    def __init__(self, ctx: Context) -> None:
        self.clock = ctx.clock
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(_FLOOR_CDEF)
        self.lib: Any = cast(Any, self.ffi.dlopen("libbpf.so.1"))
        self.shapes = ctx.shapes
        self.api = build_api_floor() if "plain" in ctx.shapes else None
        for d in ctx.shapes.values():
            buf = self.ffi.new("char[]", d.shape.value_size)
            if self.lib.bpf_map_lookup_elem(d.hash.fileno(), d.key_bytes[-1], buf):
                raise RuntimeError("floor: lookup of a key the benchmark wrote failed")
            if self.ffi.buffer(buf, d.shape.value_size)[:] != d.value_bytes[-1]:
                raise RuntimeError("floor: lookup returned a wrong value")

    def run_round(self) -> RoundResult:
        return {name: self._shape(d, name == "plain") for name, d in self.shapes.items()}

    def _shape(self, d: ShapeData, api: bool) -> dict[str, float]:
        out: dict[str, float] = {}
        fd, keys, values = d.hash.fileno(), d.key_bytes, d.value_bytes
        look = self.lib.bpf_map_lookup_elem
        put = self.lib.bpf_map_update_elem
        size = d.shape.value_size
        buf = self.ffi.new("char[]", size)
        view = self.ffi.buffer(buf, size)
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

        t0 = clock()
        for k, v in zip(keys, values, strict=True):
            put(fd, k, v, 0)
        out["update"] = (clock() - t0) / len(keys)

        if d.percpu is not None:
            pfd = d.percpu.fileno()
            total = len(d.percpu_value_bytes[0])
            slot = total // d.ncpus
            cuts = [slice(i, i + size) for i in range(0, total, slot)]
            pbuf = self.ffi.new("char[]", total)
            pview = self.ffi.buffer(pbuf, total)
            t0 = clock()
            for k in keys:
                look(pfd, k, pbuf)
                raw = pview[:]
                [raw[c] for c in cuts]
            out["percpu_lookup"] = (clock() - t0) / len(keys)

        if api and isinstance(self.api, tuple):
            api_ffi, api_lib = self.api
            alook = api_lib.bpf_map_lookup_elem
            abuf = api_ffi.new("char[]", size)
            aview = api_ffi.buffer(abuf, size)
            t0 = clock()
            for k in keys:
                alook(fd, k, abuf)
                aview[:]
            out["lookup_api"] = (clock() - t0) / len(keys)
        return out

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- MapHandle


class HandleBench:
    """typedmaps.MapHandle: bytes keys and values, the library's public byte API."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.all: dict[str, tuple[bytes, bytes]] = {}
        for name, d in ctx.shapes.items():
            if d.hash.lookup(d.key_bytes[-1]) != d.value_bytes[-1]:
                raise RuntimeError("MapHandle.lookup returned a wrong value")
            if d.percpu is not None:
                vs = d.shape.value_size
                want = [d.value_bytes[-1]] * d.ncpus
                if d.percpu.lookup_percpu(d.key_bytes[-1]) != want:
                    raise RuntimeError("MapHandle.lookup_percpu returned a wrong value")
                assert len(d.percpu_value_bytes[-1]) == d.ncpus * ((vs + 7) & ~7)
            self.all[name] = d.element_bytes(0, d.entries)

    def run_round(self) -> RoundResult:
        return {name: self._shape(name, d) for name, d in self.ctx.shapes.items()}

    def _shape(self, name: str, d: ShapeData) -> dict[str, float]:
        out: dict[str, float] = {}
        h, keys, values = d.hash, d.key_bytes, d.value_bytes
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
        for _k, _v in h.lookup_batch(self.ctx.batch):
            n += 1
        dt = clock() - t0
        _expect(n, d.entries, "MapHandle.lookup_batch")
        out["lookup_batch"] = dt / n

        all_keys, all_values = self.all[name]
        fresh = d.fresh(f"tmb_ub_{name[:8]}")
        try:
            t0 = clock()
            done = fresh.handle.update_batch(all_keys, all_values, d.entries)
            dt = clock() - t0
        finally:
            fresh.close()
        _expect(done, d.entries, "MapHandle.update_batch")
        out["update_batch"] = dt / done

        if d.percpu is not None:
            lookup_percpu = d.percpu.lookup_percpu
            t0 = clock()
            for k in keys:
                lookup_percpu(k)
            out["percpu_lookup"] = (clock() - t0) / len(keys)
            update_percpu = d.percpu.update_percpu
            per_cpu = [[v] * d.ncpus for v in values]
            t0 = clock()
            for k, vs in zip(keys, per_cpu, strict=True):
                update_percpu(k, vs)
            out["percpu_update"] = (clock() - t0) / len(keys)
        return out

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- TypedMap


class TypedBench:
    """typedmaps.TypedMap / PerCpuTypedMap over the same maps; typed(h) for the BTF shape."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.maps: dict[str, tm.TypedMap[Any, Any]] = {}
        self.percpu: dict[str, tm.PerCpuTypedMap[Any, Any]] = {}
        self.pairs: dict[str, list[tuple[Any, Any]]] = {}
        for name, d in ctx.shapes.items():
            s = d.shape
            if s.from_btf:
                m = tm.typed(d.hash)
                assert isinstance(m, tm.TypedMap)
            else:
                m = tm.TypedMap(d.hash, key=s.key_schema, value=s.value_schema)
            if m[d.keys[-1]] != d.values[-1]:
                raise RuntimeError(f"TypedMap[k] returned a wrong value ({name})")
            self.maps[name] = m
            if d.percpu is not None:
                pm = tm.PerCpuTypedMap(d.percpu, key=s.key_schema, value=s.value_schema)
                if pm[d.keys[-1]] != [d.values[-1]] * d.ncpus:
                    raise RuntimeError(f"PerCpuTypedMap[k] returned a wrong value ({name})")
                self.percpu[name] = pm
            self.pairs[name] = d.pairs()

    def run_round(self) -> RoundResult:
        return {name: self._shape(name, d) for name, d in self.ctx.shapes.items()}

    def _shape(self, name: str, d: ShapeData) -> dict[str, float]:
        out: dict[str, float] = {}
        m, keys, values = self.maps[name], d.keys, d.values
        touch, touch_value = d.shape.touch, d.shape.touch_value
        clock = self.clock

        t0 = clock()
        for k in keys:
            m[k]
        out["lookup"] = (clock() - t0) / len(keys)

        get = m.get
        t0 = clock()
        for k in keys:
            get(k)
        out["get"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k in keys:
            k in m  # noqa: B015 (the lookup is what is timed)
        out["contains"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k in keys:
            touch_value(m[k])
        out["lookup_fields"] = (clock() - t0) / len(keys)

        t0 = clock()
        for k, v in zip(keys, values, strict=True):
            m[k] = v
        out["update"] = (clock() - t0) / len(keys)

        n = 0
        t0 = clock()
        for _k, _v in m.items():
            n += 1
        dt = clock() - t0
        _expect(n, d.entries, "TypedMap.items()")
        out["lookup_batch"] = dt / n

        t0 = clock()
        for k, v in m.items():
            touch(k, v)
        out["lookup_batch_fields"] = (clock() - t0) / d.entries

        fresh = d.fresh(f"tmb_ut_{name[:8]}")
        try:
            ft = tm.TypedMap(fresh.handle, key=m.key_codec, value=m.value_codec)
            t0 = clock()
            done = ft.update_batch(self.pairs[name])
            dt = clock() - t0
        finally:
            fresh.close()
        _expect(done, d.entries, "TypedMap.update_batch")
        out["update_batch"] = dt / d.entries

        pm = self.percpu.get(name)
        if pm is not None:
            t0 = clock()
            for k in keys:
                pm[k]
            out["percpu_lookup"] = (clock() - t0) / len(keys)
            per_cpu = [[v] * d.ncpus for v in values]
            t0 = clock()
            for k, vs in zip(keys, per_cpu, strict=True):
                pm[k] = vs
            out["percpu_update"] = (clock() - t0) / len(keys)
        return out

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- BCC


def _bcc_specs(ctx: Context, hexed: bool) -> list[dict[str, Any]]:
    specs = []
    for name, d in ctx.shapes.items():
        conv: Any = (lambda bs: [b.hex() for b in bs]) if hexed else list
        spec: dict[str, Any] = {
            "shape": name,
            "fd": d.hash.fileno(),
            "entries": d.entries,
            "keys": conv(d.key_bytes),
            "values": conv(d.value_bytes),
        }
        if d.percpu is not None:
            spec["pfd"] = d.percpu.fileno()
            spec["pentries"] = d.ops
        specs.append(spec)
    return specs


class BccInProcess:
    """BCC's tables imported into this interpreter (see bench/bcc_side.py)."""

    def __init__(self, ctx: Context) -> None:
        import bcc_side

        self.clock = bcc_side.CLOCKS[ctx.args.clock]
        table_mod, self.version = bcc_side.load_bcc()
        self.benches = [bcc_side.BccBench(table_mod, s) for s in _bcc_specs(ctx, False)]
        self.mode = "in-process"

    def run_round(self) -> RoundResult:
        return {b.shape: b.run_round(self.clock) for b in self.benches}

    def close(self) -> None:
        pass


class BccSubprocess:
    """BCC under Debian's /usr/bin/python3, on this process's map fds (pass_fds).

    One worker for the whole run, driven a round at a time over its stdin.
    """

    def __init__(self, ctx: Context) -> None:
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            raise ImportError(f"{SYSTEM_PYTHON} not found")
        specs = _bcc_specs(ctx, True)
        fds = tuple(fd for s in specs for fd in (s["fd"], s.get("pfd")) if fd is not None)
        self.tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the worker)
            "w", prefix="tmbench-bcc-", suffix=".json"
        )
        json.dump(specs, self.tmp)
        self.tmp.flush()
        cmd = [
            SYSTEM_PYTHON,
            str(BENCH_DIR / "bcc_side.py"),
            f"--spec={self.tmp.name}",
            f"--clock={ctx.args.clock}",
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=fds,
        )
        self.mode = "subprocess"
        try:
            self.version = str(self._read().get("bcc_version", "?"))
        except BaseException:
            self.close()
            raise

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise ImportError(f"BCC worker failed: {err.strip()[-500:]}")
        data: dict[str, Any] = json.loads(line)
        return data

    def run_round(self) -> RoundResult:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return {s: {k: float(v) for k, v in ops.items()} for s, ops in self._read().items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self.tmp.close()


def make_bcc(ctx: Context) -> BccInProcess | BccSubprocess:
    """The BCC group for --bcc (auto, inprocess, subprocess, off); Unavailable says why not."""
    mode = ctx.args.bcc
    if mode == "off":
        raise Unavailable("disabled (--bcc off)")
    errors = []
    if mode in ("auto", "inprocess"):
        try:
            return BccInProcess(ctx)
        except ImportError as exc:
            errors.append(f"in-process: {exc}")
    if mode in ("auto", "subprocess"):
        try:
            return BccSubprocess(ctx)
        except ImportError as exc:
            errors.append(f"subprocess: {exc}")
    raise Unavailable("; ".join(errors))


# --------------------------------------------------------------------------- memory


def memory_worker(entries: int) -> dict[str, Any]:
    """Iterate ``entries`` elements through TypedMap.items() and watch memory.

    tracemalloc's peak is taken twice in one iteration: over the first tenth
    of the entries, then over the whole walk. Iteration is bounded when the
    second peak is not meaningfully larger than the first: memory does not
    grow with the number of entries. ru_maxrss (the process high-water
    mark) is reported as a cross-check that includes cffi's C buffers.
    """
    shape = SHAPES["plain"]
    owned = shape.create(tm.MapType.HASH, entries, "tmb_mem")
    try:
        m = tm.TypedMap(owned.handle, key=shape.key_schema, value=shape.value_schema)
        assert shape.make_key is not None
        assert shape.make_value is not None
        for lo in range(0, entries, 65536):
            hi = min(lo + 65536, entries)
            m.update_batch([(shape.make_key(i), shape.make_value(i)) for i in range(lo, hi)])
        it = iter(m.items())
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
    finally:
        owned.close()
    _expect(n, entries, via)
    slack = 1 << 20
    bounded = peak <= 1.25 * peak_tenth + slack
    return {
        "entries": entries,
        "via": via,
        "seconds": round(seconds, 3),
        "tracemalloc_peak_first_tenth_bytes": peak_tenth,
        "tracemalloc_peak_bytes": peak,
        "maxrss_delta_kib": rss1 - rss0,
        "bounded_rule": "peak over all entries <= 1.25 x peak over the first tenth + 1 MiB",
        "met": bounded,
        "text": (
            f"{entries:,} entries through {via} in {seconds:.1f} s: tracemalloc peak "
            f"{peak / 2**20:.2f} MiB (first tenth {peak_tenth / 2**20:.2f} MiB), "
            f"maxrss +{(rss1 - rss0) / 1024:.1f} MiB: " + ("bounded" if bounded else "NOT bounded")
        ),
    }


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`memory_worker` in a fresh process, so ru_maxrss starts clean."""
    if not args.mem_entries:
        return {"met": None, "text": "skipped (--mem-entries 0)", "entries": 0}
    cmd = [
        sys.executable,
        str(BENCH_DIR / "run.py"),
        "--memory-worker",
        f"--mem-entries={args.mem_entries}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"memory worker failed: {proc.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# --------------------------------------------------------------------------- registration

OPS: Final = {
    "lookup": "m[k] / lookup (per op)",
    "get": "get(k)",
    "contains": "k in m",
    "lookup_fields": "m[k] + every field read",
    "update": "m[k] = v / update",
    "lookup_batch": "full read (items(), per element)",
    "lookup_batch_fields": "full read + every field read",
    "update_batch": "update_batch (per element)",
    "percpu_lookup": "per-CPU lookup",
    "percpu_update": "per-CPU update",
    "lookup_nocopy": "lookup, value not copied out",
    "lookup_api": "lookup, API-mode cffi",
}


def register(reg: Registry) -> None:
    """The built-in groups, the issue's targets, the context ratios and the memory check."""
    for op, title in OPS.items():
        reg.add_op(op, title)
    reg.add_group("c", "C libbpf", CBench)
    reg.add_group("floor", "cffi floor", FloorBench)
    reg.add_group("handle", "MapHandle", HandleBench)
    reg.add_group("typed", "TypedMap", TypedBench)
    reg.add_group("bcc", "BCC", make_bcc)

    def target(name: str, shape: str, num: str, den: str, limit: float) -> None:
        g1, op1 = num.split(".")
        g2, op2 = den.split(".")
        reg.add_target(Target(name, (shape, g1, op1), (shape, g2, op2), limit))

    def info(name: str, shape: str, num: str, den: str) -> None:
        g1, op1 = num.split(".")
        g2, op2 = den.split(".")
        reg.add_info(Info(name, (shape, g1, op1), (shape, g2, op2)))

    target("MapHandle.lookup <= 1.15x the bare cffi call", "plain", "handle.lookup",
           "floor.lookup", 1.15)  # fmt: skip
    for shape, limit in (("plain", 1.4), ("frozen_str", 1.4), ("nested", 1.6)):
        target(f"TypedMap[k] <= {limit}x MapHandle.lookup ({shape})", shape, "typed.lookup",
               "handle.lookup", limit)  # fmt: skip
    for shape, limit in (("plain", 3.5), ("nested", 4.5), ("frozen_str", 7.0)):
        target(f"TypedMap.items() <= {limit}x C batch lookup ({shape})", shape,
               "typed.lookup_batch", "c.lookup_batch", limit)  # fmt: skip
    for shape in ("plain", "frozen_str", "nested"):
        target(f"items() + fields <= 1.0x BCC items_lookup_batch + fields ({shape})", shape,
               "typed.lookup_batch_fields", "bcc.lookup_batch_fields", 1.0)  # fmt: skip
        target(f"TypedMap[k] + fields <= 1.0x BCC table[k] + fields ({shape})", shape,
               "typed.lookup_fields", "bcc.lookup_fields", 1.0)  # fmt: skip
    target("update_batch(pairs) <= 2.5x C batch update (plain)", "plain", "typed.update_batch",
           "c.update_batch", 2.5)  # fmt: skip
    target("PerCpuTypedMap[k] <= 1.35x MapHandle.lookup_percpu (plain)", "plain",
           "typed.percpu_lookup", "handle.percpu_lookup", 1.35)  # fmt: skip
    target("typed(h)[k] from BTF <= 3.5x MapHandle.lookup (btf)", "btf", "typed.lookup",
           "handle.lookup", 3.5)  # fmt: skip

    info("cffi floor / C lookup", "plain", "floor.lookup", "c.lookup")
    info("cffi API-mode floor / C lookup", "plain", "floor.lookup_api", "c.lookup")
    info("MapHandle.lookup / C lookup", "plain", "handle.lookup", "c.lookup")
    for shape in ("frozen_str", "nested", "btf"):
        info(f"MapHandle.lookup / cffi floor ({shape})", shape, "handle.lookup", "floor.lookup")
    info("MapHandle.update / cffi floor update", "plain", "handle.update", "floor.update")
    info("MapHandle.lookup_percpu / cffi floor", "plain", "handle.percpu_lookup",
         "floor.percpu_lookup")  # fmt: skip
    info("PerCpuTypedMap[k]=v / MapHandle.update_percpu", "plain", "typed.percpu_update",
         "handle.percpu_update")  # fmt: skip
    info("PerCpuTypedMap[k] / BCC PerCpuHash[k]", "plain", "typed.percpu_lookup",
         "bcc.percpu_lookup")  # fmt: skip
    info("MapHandle.lookup_batch / C batch lookup", "plain", "handle.lookup_batch",
         "c.lookup_batch")  # fmt: skip
    info("MapHandle.update_batch / C batch update", "plain", "handle.update_batch",
         "c.update_batch")  # fmt: skip
    for shape in SHAPES:
        info(f"TypedMap[k] / BCC table[k] ({shape})", shape, "typed.lookup", "bcc.lookup")
        info(f"TypedMap.get(k) / MapHandle.lookup ({shape})", shape, "typed.get", "handle.lookup")
        info(f"k in TypedMap / MapHandle.lookup ({shape})", shape, "typed.contains",
             "handle.lookup")  # fmt: skip
        info(f"TypedMap[k]=v / MapHandle.update ({shape})", shape, "typed.update", "handle.update")
    for shape in ("frozen_str", "nested", "btf"):
        info(f"update_batch(pairs) / C batch update ({shape})", shape, "typed.update_batch",
             "c.update_batch")  # fmt: skip
    info("TypedMap.items() / C batch lookup (btf)", "btf", "typed.lookup_batch", "c.lookup_batch")
    info("items() + fields / BCC + fields (btf)", "btf", "typed.lookup_batch_fields",
         "bcc.lookup_batch_fields")  # fmt: skip
    info("TypedMap[k] + fields / BCC + fields (btf)", "btf", "typed.lookup_fields",
         "bcc.lookup_fields")  # fmt: skip

    reg.add_check(Check("memory bounded over TypedMap.items() (plain, chunked)", run_memory))
