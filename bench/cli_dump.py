#!/usr/bin/env python3
"""`typedmaps dump --json` next to `bpftool map dump -j`, wall time, in one run.

A HASH map with BTF (build/bpf/dumpbench.bpf.o: a 16-byte connection key, an
88-byte value with counters, a task name, an enum, a nested struct, a MAC
and an int array) is loaded with --entries entries (default 20,000),
filled from user space and pinned. Each round then runs, as separate
processes and in a shuffled order:

    bpftool     bpftool map dump -j pinned PIN
    typedmaps   <venv>/bin/typedmaps dump PIN --json   (the console script)
    import      python -c "import typedmaps"           (start-up alone)
    python      python -c pass                         (the interpreter alone)

with stdout to /dev/null. Each number is the best wall time over the
rounds (the median is kept too), plus the children's CPU time (user +
system) of that run. The target is typedmaps <= 3x bpftool, wall time.
Before the rounds, one typedmaps dump is checked against bpftool's
`formatted` view of the same map (equal as JSON), so a broken dump
cannot produce a number.

    .venv/bin/python bench/cli_dump.py                   # 20k entries, 7 rounds
    .venv/bin/python bench/cli_dump.py --entries 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import typedmaps as tm

BENCH_DIR: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH_DIR.parent
OBJECT: Final = ROOT / "build" / "bpf" / "dumpbench.bpf.o"
RESULTS_DIR: Final = BENCH_DIR / "results"
LIMIT: Final = 3.0
_KEY = struct.Struct("<IIHHB3x")
_VALUE = struct.Struct("<QQQQ16sIIHBB6sH4I4x")
_COMMS: Final = (b"curl", b"sshd", b"nginx: worker", b"python3", b"\x01\x02binary")


def fill(h: tm.MapHandle, n: int) -> None:
    """n entries: distinct keys; values with every field kind set, some char arrays not text."""
    keys = b"".join(
        _KEY.pack(0x0A000000 + i, 0x0A0000FE, 1024 + i % 60000, 443, 6) for i in range(n)
    )
    values = b"".join(
        _VALUE.pack(
            i,
            i * 1500,
            10**15 + i,
            10**15 + 2 * i,
            _COMMS[i % len(_COMMS)],
            i % 5,  # 4 is no enumerator: printed as a number
            1000 + i,
            1460,
            7,
            i & 0xFF,
            bytes([0, 0x16, 0x3E, i & 0xFF, 0x10, 0x20]),
            i % 4096,
            i,
            2 * i,
            3 * i,
            4 * i,
        )
        for i in range(n)
    )
    done = 0
    step = 4096
    while done < n:
        m = min(step, n - done)
        h.update_batch(
            keys[done * _KEY.size : (done + m) * _KEY.size],
            values[done * _VALUE.size : (done + m) * _VALUE.size],
            m,
        )
        done += m


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, children's CPU seconds) of one run of ``cmd``, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def check_output(typedmaps: str, bpftool: str, pin: Path, n: int) -> None:
    ours = json.loads(
        subprocess.run(
            [typedmaps, "dump", str(pin), "--json"], capture_output=True, check=True
        ).stdout
    )
    theirs = json.loads(
        subprocess.run(
            [bpftool, "map", "dump", "-j", "pinned", str(pin)], capture_output=True, check=True
        ).stdout
    )
    if len(ours) != n or [e["formatted"] for e in theirs] != ours:
        raise SystemExit("typedmaps dump --json differs from bpftool's formatted view: no numbers")


def run(args: argparse.Namespace) -> dict[str, Any]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    venv_bin = Path(sys.executable).parent
    typedmaps = str(venv_bin / "typedmaps")
    pin = Path("/sys/fs/bpf") / f"typedmaps_bench_dump_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    cmds = {
        "bpftool": [bpftool, "map", "dump", "-j", "pinned", str(pin)],
        "typedmaps": [typedmaps, "dump", str(pin), "--json"],
        "import": [sys.executable, "-c", "import typedmaps"],
        "python": [sys.executable, "-c", "pass"],
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    load_start = os.getloadavg()[0]
    with tm.BpfObject.open(OBJECT) as obj:
        obj.maps["conns"].max_entries = args.entries
        obj.load()
        m = obj.maps["conns"]
        fill(m, args.entries)
        m.pin(pin)
        try:
            check_output(typedmaps, bpftool, pin, args.entries)
            rng = random.Random(args.seed)
            for r in range(args.warmup + args.rounds):
                order = list(cmds)
                rng.shuffle(order)
                for name in order:
                    wall, cpu = timed(cmds[name])
                    if r >= args.warmup:
                        walls[name].append(wall)
                        cpus[name].append(cpu)
        finally:
            m.unpin(pin)
    results = {}
    for name in cmds:
        best = min(range(len(walls[name])), key=walls[name].__getitem__)
        results[name] = {
            "best_ms": walls[name][best] * 1e3,
            "median_ms": statistics.median(walls[name]) * 1e3,
            "cpu_ms_of_best": cpus[name][best] * 1e3,
            "best_cpu_ms": min(cpus[name]) * 1e3,
            "rounds_ms": [w * 1e3 for w in walls[name]],
        }
    ratio = results["typedmaps"]["best_ms"] / results["bpftool"]["best_ms"]
    cpu_ratio = results["typedmaps"]["best_cpu_ms"] / results["bpftool"]["best_cpu_ms"]
    return {
        "params": {
            "entries": args.entries,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "env": {
            "kernel": platform.release(),
            "python": platform.python_version(),
            "online_cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg()[0],
        },
        "results": results,
        "target": {
            "name": f"typedmaps dump --json <= {LIMIT:g}x bpftool map dump -j (wall)",
            "ratio": ratio,
            "limit": LIMIT,
            "met": ratio <= LIMIT,
        },
        "ratios": {
            "typedmaps / bpftool, CPU time": cpu_ratio,
            "import typedmaps / bpftool": results["import"]["best_ms"]
            / results["bpftool"]["best_ms"],
            "python -c pass / bpftool": results["python"]["best_ms"]
            / results["bpftool"]["best_ms"],
        },
    }


def report(rec: dict[str, Any]) -> str:
    p, res = rec["params"], rec["results"]
    lines = [
        f"typedmaps dump --json vs bpftool map dump -j: {p['entries']} entries, "
        f"best of {p['rounds']} rounds (load {rec['env']['loadavg_start']:.2f} -> "
        f"{rec['env']['loadavg_end']:.2f})",
        "",
        "| command | best wall ms | median wall ms | CPU ms (best run) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in res.items():
        lines.append(
            f"| {name} | {r['best_ms']:.1f} | {r['median_ms']:.1f} | {r['cpu_ms_of_best']:.1f} |"
        )
    t = rec["target"]
    verdict = "met" if t["met"] else "**missed**"
    lines += [
        "",
        "| target | ratio | limit | result |",
        "|---|---:|---|---|",
        f"| {t['name']} | {t['ratio']:.2f} | <= {t['limit']:g} | {verdict} |",
        "",
    ]
    lines += [f"- {k}: {v:.2f}" for k, v in rec["ratios"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--entries", type=int, default=20000, help="entries in the map (default 20000)")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and dropped (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-round order")
    p.add_argument("--json", type=Path, help="also write the JSON record here")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where records go")
    args = p.parse_args(argv)
    if args.entries < 1 or args.rounds < 1 or args.warmup < 0:
        p.error("--entries and --rounds must be positive, --warmup not negative")
    rec = run(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rec, indent=2)
    (args.results_dir / f"cli-dump-{stamp}.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    print(report(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
