#!/usr/bin/env python3
"""typedmaps event benchmark: draining ring buffers and perf buffers, side by side.

One run fills a BPF ring buffer (build/bpf/ringbuf.bpf.o's RINGBUF, or
perfbuf.bpf.o's PERF_EVENT_ARRAY) with N records of ``struct event`` (32
bytes) through one BPF_PROG_TEST_RUN of its ``emit`` program, then times
one consumer draining all N, for each of these groups, in rounds (each
round runs every group once, in a shuffled order); the report keeps the
best (lowest) ns per record over the rounds, and the median. Time is the
measuring thread's CPU time by default (--clock wall for wall time), in C
and in Python alike.

Groups
    typed        TypedRingBuffer.consume(), records as construct-typing dataclasses
    typed_iter   ``for e in TypedRingBuffer`` until N records
    typed_floor  the Python floor for typed records: a hand-written loop of
                 struct.unpack_from + the dataclass's constructor over one bytes
                 buffer laid out as the ring is (8-byte header, record, padding)
    bytes        RingBuffer.consume(), records as bytes
    bytes_floor  the Python floor for bytes: a bare slice loop over that buffer
    cb_bytes     libbpf's ring_buffer__consume() with a cffi callback per record
                 that copies it to bytes: the callback design, measured
    cb_typed     the same callback, decoding each record with the codec
    c            bench/cevents.c: libbpf's ring_buffer__consume() in C, a callback
                 that reads each record's sequence number
    bcc          BCC's RingBuf (python3-bpfcc, under /usr/bin/python3, on the same
                 ring's fd): open_ring_buffer() + ring_buffer_consume(), a callback
                 that reads the record's fields through BCC's ctypes view
    perf_typed / perf_bytes / perf_typed_floor / perf_bytes_floor
                 the same for a PerfBuffer (one CPU's ring; 48-byte samples)

Targets (from one run, best against best):
    TypedRingBuffer.consume <= 1.5x the typed floor
    RingBuffer.consume      <= 2x the bytes floor

    .venv/bin/python bench/events.py               # 100,000 records, 7 rounds
    .venv/bin/python bench/events.py --quick       # small and fast
    make bench                                     # bench/run.py, then this

A JSON record goes to bench/results/events-<timestamp>.json (and --json PATH);
--markdown PATH writes the tables for the docs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import cffi
import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm
from typedmaps.codec import make_codec

BENCH_DIR: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH_DIR.parent
BUILD_DIR: Final = ROOT / "build" / "bench"
RESULTS_DIR: Final = BENCH_DIR / "results"
CEVENTS_SRC: Final = BENCH_DIR / "cevents.c"
RINGBUF_OBJ: Final = ROOT / "build" / "bpf" / "ringbuf.bpf.o"
PERFBUF_OBJ: Final = ROOT / "build" / "bpf" / "perfbuf.bpf.o"
SYSTEM_PYTHON: Final = "/usr/bin/python3"
SCHEMA_VERSION: Final = 1
RECORD: Final = 32  # sizeof(struct event)
STRIDE: Final = 40  # in a ring buffer: an 8-byte header, then the record
PERF_STRIDE: Final = 48  # in a perf ring: 8-byte header, u32 size, record, 4 bytes of padding

GROUPS: Final = (
    "typed",
    "typed_iter",
    "typed_floor",
    "bytes",
    "bytes_floor",
    "cb_bytes",
    "cb_typed",
    "c",
    "bcc",
    "perf_typed",
    "perf_typed_floor",
    "perf_bytes",
    "perf_bytes_floor",
)
TITLES: Final = {
    "typed": "TypedRingBuffer.consume()",
    "typed_iter": "for e in TypedRingBuffer",
    "typed_floor": "floor: unpack_from + Event(...)",
    "bytes": "RingBuffer.consume()",
    "bytes_floor": "floor: bare slice loop",
    "cb_bytes": "libbpf callback -> bytes",
    "cb_typed": "libbpf callback -> decode",
    "c": "C: ring_buffer__consume",
    "bcc": "BCC RingBuf callback",
    "perf_typed": "TypedPerfBuffer.consume()",
    "perf_typed_floor": "floor (perf): unpack + Event",
    "perf_bytes": "PerfBuffer.consume()",
    "perf_bytes_floor": "floor (perf): slice loop",
}


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    num: str
    den: str
    limit: float


TARGETS: Final = (
    Target(
        "TypedRingBuffer.consume <= 1.5x unpack_from + constructor loop",
        "typed",
        "typed_floor",
        1.5,
    ),
    Target("RingBuffer.consume <= 2x bare slice loop", "bytes", "bytes_floor", 2.0),
)
INFO_RATIOS: Final = (
    ("for e in TypedRingBuffer / typed floor", "typed_iter", "typed_floor"),
    ("TypedPerfBuffer.consume / its floor", "perf_typed", "perf_typed_floor"),
    ("PerfBuffer.consume / its floor", "perf_bytes", "perf_bytes_floor"),
    ("libbpf callback -> bytes / RingBuffer.consume", "cb_bytes", "bytes"),
    ("libbpf callback -> decode / TypedRingBuffer.consume", "cb_typed", "typed"),
    ("TypedRingBuffer.consume / C", "typed", "c"),
    ("RingBuffer.consume / C", "bytes", "c"),
    ("BCC RingBuf / TypedRingBuffer.consume", "bcc", "typed"),
)
CLOCKS: Final[dict[str, Callable[[], int]]] = {
    "cpu": time.thread_time_ns,
    "wall": time.perf_counter_ns,
}


@dataclasses.dataclass
class Event(DataclassMixin):
    """struct event of bpf/event_records.h."""

    seq: int = csfield(cs.Int64ul)
    ts_ns: int = csfield(cs.Int64ul)
    tgid: int = csfield(cs.Int32ul)
    cpu: int = csfield(cs.Int32ul)
    kind: int = csfield(cs.Int32ul)
    value: int = csfield(cs.Int32ul)


EVENT: Final = DataclassStruct(Event)
EVENT_STRUCT: Final = struct.Struct("<QQIIII")


def ring_size(records: int, stride: int) -> int:
    """The smallest power-of-two ring (at least a page) that holds ``records``."""
    size = 4096
    while size < records * stride:
        size <<= 1
    return size


class Filler:
    """A loaded event program: fills its ring with N fresh records before a group runs."""

    def __init__(self, path: Path, records: int, perf: bool) -> None:
        self.records = records
        self.obj = tm.BpfObject.open(path)
        try:
            self.obj.programs["on_getppid"].autoload = False
            if not perf:
                self.obj.maps["events"].max_entries = ring_size(records, STRIDE)
            self.obj.load()
        except BaseException:
            self.obj.close()
            raise
        self.ctx = struct.pack("<3Q", records, 0, 0)

    def fill(self) -> None:
        run = self.obj.programs["emit"].test_run(ctx_in=self.ctx, cpu=0)
        if run.retval != self.records:
            raise RuntimeError(f"emit made {run.retval} of {self.records} records")

    def close(self) -> None:
        self.obj.close()


def _check(got: int, want: int, group: str) -> None:
    if got != want:  # never report the time of a broken run
        raise RuntimeError(f"{group}: drained {got} of {want} records")


# --------------------------------------------------------------------------- groups


class Groups:
    """Every Python-side group; each method fills (when it reads a ring) and times one drain."""

    def __init__(self, records: int, clock: Callable[[], int], pages: int) -> None:
        self.n = records
        self.clock = clock
        self.pages = pages
        self.ring = Filler(RINGBUF_OBJ, records, perf=False)
        try:
            self.perf = Filler(PERFBUF_OBJ, records, perf=True)
        except BaseException:
            self.ring.close()
            raise
        self.events = self.ring.obj.maps["events"]
        self.typed_rb = tm.TypedRingBuffer(self.events, value=EVENT)
        self.bytes_rb = tm.RingBuffer(self.ring.obj.maps["events"])
        self.cb = _LibbpfConsumer(self.events.fileno(), EVENT)
        # One buffer laid out as each ring is, from real records, for the floors.
        self.ring.fill()
        raw = self.bytes_rb.consume()
        _check(len(raw), records, "setup")
        self.ring_layout = b"".join(struct.pack("<II", RECORD, 0) + r for r in raw)
        self.perf_layout = b"".join(
            struct.pack("<IHHI", 9, 1, PERF_STRIDE, PERF_STRIDE - 12) + r + bytes(4) for r in raw
        )

    def close(self) -> None:
        self.cb.close()
        self.typed_rb.close()
        self.bytes_rb.close()
        self.ring.close()
        self.perf.close()

    def _time(self, fn: Callable[[], int], group: str) -> float:
        gc.collect()
        t0 = self.clock()
        got = fn()
        dt = self.clock() - t0
        _check(got, self.n, group)
        return dt / self.n

    def typed(self) -> float:
        self.ring.fill()
        return self._time(lambda: len(self.typed_rb.consume()), "typed")

    def typed_iter(self) -> float:
        self.ring.fill()
        n = self.n

        def drain() -> int:
            i = 0
            for _ in self.typed_rb:
                i += 1
                if i == n:
                    break
            return i

        return self._time(drain, "typed_iter")

    def typed_floor(self) -> float:
        buf, n = self.ring_layout, self.n
        unpack = EVENT_STRUCT.unpack_from
        make = Event

        def loop() -> int:
            out = []
            append = out.append
            for off in range(8, n * STRIDE, STRIDE):
                append(make(*unpack(buf, off)))
            return len(out)

        return self._time(loop, "typed_floor")

    def bytes(self) -> float:
        self.ring.fill()
        return self._time(lambda: len(self.bytes_rb.consume()), "bytes")

    def bytes_floor(self) -> float:
        buf, n = self.ring_layout, self.n
        return self._time(
            lambda: len([buf[o : o + RECORD] for o in range(8, n * STRIDE, STRIDE)]),
            "bytes_floor",
        )

    def cb_bytes(self) -> float:
        self.ring.fill()
        return self._time(lambda: len(self.cb.consume_bytes()), "cb_bytes")

    def cb_typed(self) -> float:
        self.ring.fill()
        return self._time(lambda: len(self.cb.consume_typed()), "cb_typed")

    def perf_typed(self) -> float:
        with tm.TypedPerfBuffer(self.perf.obj.maps["samples"], value=EVENT, pages=self.pages) as pb:
            self.perf.fill()
            return self._time(lambda: len(pb.consume()), "perf_typed")

    def perf_bytes(self) -> float:
        with tm.PerfBuffer(self.perf.obj.maps["samples"], pages=self.pages) as pb:
            self.perf.fill()
            return self._time(lambda: len(pb.consume()), "perf_bytes")

    def perf_typed_floor(self) -> float:
        buf, n = self.perf_layout, self.n
        unpack = EVENT_STRUCT.unpack_from
        make = Event

        def loop() -> int:
            out = []
            append = out.append
            for off in range(12, n * PERF_STRIDE, PERF_STRIDE):
                append(make(*unpack(buf, off)))
            return len(out)

        return self._time(loop, "perf_typed_floor")

    def perf_bytes_floor(self) -> float:
        buf, n = self.perf_layout, self.n
        size = PERF_STRIDE - 12
        return self._time(
            lambda: len([buf[o : o + size] for o in range(12, n * PERF_STRIDE, PERF_STRIDE)]),
            "perf_bytes_floor",
        )


class _LibbpfConsumer:
    """libbpf's ring_buffer API with a cffi callback per record: the design not taken."""

    CDEF: Final = """
        struct ring_buffer;
        typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
        struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb,
                                             void *ctx, const void *opts);
        int ring_buffer__consume(struct ring_buffer *rb);
        void ring_buffer__free(struct ring_buffer *rb);
    """

    def __init__(self, map_fd: int, schema: Any) -> None:
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(self.CDEF)
        self.lib: Any = self.ffi.dlopen("libbpf.so.1")
        self.out: list[Any] = []
        self.codec_decode = make_codec(schema).decode
        ffi = self.ffi
        buffer = ffi.buffer

        def as_bytes(_ctx: Any, data: Any, size: int) -> int:
            self.out.append(buffer(data, size)[:])
            return 0

        decode = self.codec_decode

        def as_typed(_ctx: Any, data: Any, size: int) -> int:
            self.out.append(decode(buffer(data, size)[:]))
            return 0

        self.cb_bytes = ffi.callback("ring_buffer_sample_fn", as_bytes)
        self.cb_typed = ffi.callback("ring_buffer_sample_fn", as_typed)
        self.rb_bytes = self.lib.ring_buffer__new(map_fd, self.cb_bytes, ffi.NULL, ffi.NULL)
        self.rb_typed = self.lib.ring_buffer__new(map_fd, self.cb_typed, ffi.NULL, ffi.NULL)
        if ffi.NULL in (self.rb_bytes, self.rb_typed):
            raise RuntimeError("ring_buffer__new failed")

    def consume_bytes(self) -> list[Any]:
        self.out = []
        if self.lib.ring_buffer__consume(self.rb_bytes) < 0:
            raise RuntimeError("ring_buffer__consume failed")
        return self.out

    def consume_typed(self) -> list[Any]:
        self.out = []
        if self.lib.ring_buffer__consume(self.rb_typed) < 0:
            raise RuntimeError("ring_buffer__consume failed")
        return self.out

    def close(self) -> None:
        self.lib.ring_buffer__free(self.rb_bytes)
        self.lib.ring_buffer__free(self.rb_typed)


# --------------------------------------------------------------------------- C and BCC


def build_cevents() -> Path:
    """Compile bench/cevents.c into build/bench/cevents when missing or stale."""
    out = BUILD_DIR / "cevents"
    if out.exists() and out.stat().st_mtime >= CEVENTS_SRC.stat().st_mtime:
        return out
    cc = os.environ.get("CC") or next((c for c in ("gcc", "clang", "cc") if shutil.which(c)), "")
    if not cc or shutil.which(cc) is None:
        raise SystemExit("bench: no C compiler (gcc/clang/cc); install gcc")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(CEVENTS_SRC), "-lbpf"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"bench: building cevents failed ({' '.join(cmd)}):\n{proc.stderr}")
    return out


def run_c(binary: Path, records: int, clock: str) -> float:
    """One round of the C consumer (a fresh process, its own object and ring)."""
    proc = subprocess.run(
        [str(binary), str(RINGBUF_OBJ), str(records), "1", clock],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"cevents failed: {proc.stderr.strip()}")
    ns: float = json.loads(proc.stdout)["ns_per_record"][0]
    return ns


class BccWorker:
    """BCC's RingBuf under Debian's python3, on an fd of our ring; one drain per request."""

    def __init__(self, groups: Groups, clock: str) -> None:
        self.groups = groups
        fd = groups.events.fileno()
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(BENCH_DIR / "bcc_events.py"), "--fd", str(fd), "--clock", clock],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=[fd],
        )
        hello = self._reply()
        self.version = str(hello["bcc_version"])

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"BCC worker ended: {err.strip()[-400:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self) -> float:
        self.groups.ring.fill()
        assert self.proc.stdin is not None
        self.proc.stdin.write("consume\n")
        self.proc.stdin.flush()
        reply = self._reply()
        _check(int(reply["records"]), self.groups.n, "bcc")
        return float(reply["ns"]) / self.groups.n

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def bcc_available() -> str | None:
    """None when BCC's Python package imports under /usr/bin/python3, else why not."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    code = "import sys; sys.path.append('/usr/lib/python3/dist-packages'); import bcc"
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode:
        return "BCC (python3-bpfcc) does not import: " + proc.stderr.strip().splitlines()[-1]
    return None


# --------------------------------------------------------------------------- report


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    return {
        g: {
            "best": round(min(v), 2),
            "median": round(statistics.median(v), 2),
            "rounds": [round(x, 2) for x in v],
        }
        for g, v in samples.items()
        if v
    }


def _ratio(results: dict[str, dict[str, Any]], num: str, den: str) -> float | None:
    a, b = results.get(num), results.get(den)
    if a is None or b is None or b["best"] <= 0:
        return None
    return round(float(a["best"]) / float(b["best"]), 3)


def evaluate(results: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    targets = []
    for t in TARGETS:
        r = _ratio(results, t.num, t.den)
        targets.append(
            {
                "name": t.name,
                "ratio": r,
                "limit": t.limit,
                "numerator": t.num,
                "denominator": t.den,
                "met": None if r is None else r <= t.limit,
            }
        )
    info = {name: _ratio(results, num, den) for name, num, den in INFO_RATIOS}
    return targets, info


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def render(record: dict[str, Any]) -> str:
    p = record["params"]
    res = record["results"]
    lines = [
        f"typedmaps event benchmark: {p['records']:,} records of {RECORD} bytes, best of "
        f"{p['rounds']} rounds, {p['clock']} clock; load average {record['loadavg_start']} "
        f"at start, {record['env']['loadavg_end']} at end",
        "",
        f"{'ns per record':<34}{'best':>10}{'median':>10}",
        "-" * 54,
    ]
    for g in GROUPS:
        r = res.get(g)
        lines.append(f"{TITLES[g]:<34}{_fmt(r and r['best']):>10}{_fmt(r and r['median']):>10}")
    lines += ["", f"{'target':<62}{'ratio':>7}  result", "-" * 80]
    for t in record["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        lines.append(f"{t['name']:<62}{ratio:>7}  {verdict}")
    lines += ["", f"{'other ratios':<62}{'ratio':>7}", "-" * 69]
    for name, r in record["ratios"].items():
        lines.append(f"{name:<62}{'-' if r is None else f'{r:.2f}':>7}")
    for g, why in record["unavailable"].items():
        lines.append(f"{TITLES.get(g, g)} not measured: {why}")
    return "\n".join(lines)


def render_markdown(record: dict[str, Any]) -> str:
    res = record["results"]
    out = ["| ns per record | best | median |", "|---|---:|---:|"]
    for g in GROUPS:
        r = res.get(g)
        out.append(f"| {TITLES[g]} | {_fmt(r and r['best'])} | {_fmt(r and r['median'])} |")
    out += ["", "| target | ratio | result |", "|---|---:|---|"]
    for t in record["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        out.append(f"| {t['name']} | {ratio} | {verdict} |")
    out += ["", "| ratio | value |", "|---|---:|"]
    for name, r in record["ratios"].items():
        out.append(f"| {name} | {'-' if r is None else f'{r:.2f}'} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=100_000, help="records per drain")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="10,000 records, 3 rounds")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-bcc", action="store_true", help="skip the BCC group")
    p.add_argument("--groups", default=",".join(GROUPS), help="comma-separated groups to run")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    p.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    if args.quick:
        args.records, args.rounds, args.warmup = 10_000, 3, 1
    unknown = set(args.groups.split(",")) - set(GROUPS)
    if unknown:
        p.error(f"unknown groups: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(msg: str) -> None:
        print(f"bench events: {msg}", file=sys.stderr, flush=True)

    for obj in (RINGBUF_OBJ, PERFBUF_OBJ):
        if not obj.exists():
            raise SystemExit(f"bench events: {obj} is missing: run `make bpf`")
    load = os.getloadavg()[0]
    if load > 0.5:
        say(f"warning: load average {load:.2f}: other work shares the CPUs, expect noise")
    wanted = [g for g in GROUPS if g in args.groups.split(",")]
    clock = CLOCKS[args.clock]
    pages = 1
    while pages * 4096 < args.records * PERF_STRIDE:
        pages <<= 1
    unavailable: dict[str, str] = {}
    groups = Groups(args.records, clock, pages)
    bcc: BccWorker | None = None
    try:
        runners: dict[str, Callable[[], float]] = {
            g: getattr(groups, g) for g in wanted if g not in ("c", "bcc")
        }
        if "c" in wanted:
            cbin = build_cevents()
            runners["c"] = lambda: run_c(cbin, args.records, args.clock)
        if "bcc" in wanted:
            why = "--no-bcc" if args.no_bcc else bcc_available()
            if why is None:
                bcc = BccWorker(groups, args.clock)
                runners["bcc"] = bcc.run
            else:
                unavailable["bcc"] = why
        samples: dict[str, list[float]] = {g: [] for g in runners}
        rng = random.Random(args.seed)
        for r in range(args.warmup + args.rounds):
            order = list(runners)
            rng.shuffle(order)
            warm = r < args.warmup
            say("warm-up" if warm else f"round {r - args.warmup + 1}/{args.rounds}")
            for g in order:
                ns = runners[g]()
                if not warm:
                    samples[g].append(ns)
    finally:
        if bcc is not None:
            bcc.close()
        groups.close()

    results = summarize(samples)
    targets, ratios = evaluate(results)
    stamp = datetime.now(UTC)
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "timestamp": stamp.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "unit": f"ns per record ({args.clock} clock); best (lowest) of the rounds, median too",
        "params": {
            "records": args.records,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "clock": args.clock,
            "seed": args.seed,
            "perf_pages": pages,
            "record_size": RECORD,
        },
        "loadavg_start": round(load, 2),
        "env": {
            "kernel": platform.release(),
            "machine": platform.machine(),
            "python": sys.version.split()[0],
            "bcc_version": bcc.version if bcc else None,
            "loadavg_end": round(os.getloadavg()[0], 2),
        },
        "results": results,
        "targets": targets,
        "ratios": ratios,
        "unavailable": unavailable,
    }
    print(render(record))
    text = json.dumps(record, indent=2) + "\n"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"events-{stamp.strftime('%Y%m%dT%H%M%SZ')}.json"
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
