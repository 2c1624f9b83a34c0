#!/usr/bin/env python3
"""typedmaps benchmark: C on libbpf, the bare cffi call, MapHandle, TypedMap and BCC, side by side.

One run measures every implementation (a *group*) on the same maps, over a
matrix of record *shapes* (bench/shapes.py: plain ints, a frozen key with a
string value, nested records with arrays and enums, and a BTF-derived value
with unions and bitfields), in rounds: each round runs every group once, in
a shuffled order, and the report keeps the best (lowest) ns per element of
each measurement over the rounds, plus the median. Time is the measuring
thread's CPU time by default (user + kernel, CLOCK_THREAD_CPUTIME_ID, in C
and in Python alike), so time slices lost to other processes on a shared
machine do not count; --clock wall uses wall time instead. The issue's
targets are ratios of two best times of the same run, each marked PASS or
MISS, and "(noise)" when the ratio is closer to its limit than the rounds'
own spread: rerun those. A JSON record goes to bench/results/<timestamp>.json
(and to --json PATH).

    .venv/bin/python bench/run.py                  # the full run (100k entries, 7 rounds)
    .venv/bin/python bench/run.py --quick          # a small, fast run
    .venv/bin/python bench/run.py --shapes plain,btf
    make bench BENCH_ARGS="--rounds 11"

Groups (bench/groups.py), and more from the modules in PLUGINS (see bench/harness.py):
    c       bench/cbench.c built with gcc against the system libbpf (-lbpf),
            run on the very maps the Python groups use (fds passed down)
    floor   the cheapest Python can do: a bare cffi ABI-mode call loop with a
            preallocated buffer (with and without copying the value out)
    handle  typedmaps.MapHandle (bytes in, bytes out)
    typed   typedmaps.TypedMap / PerCpuTypedMap (typed(h) for the BTF shape)
    bcc     BCC's Python tables (Debian's python3-bpfcc) over the same maps
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import cffi
import groups
from harness import ALL_SHAPES, Clock, Context, Registry, Runner, Unavailable, make_shapes
from shapes import SHAPES

from typedmaps._handle_batch import DEFAULT_BATCH

BENCH_DIR: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH_DIR.parent
RESULTS_DIR: Final = BENCH_DIR / "results"
SCHEMA_VERSION: Final = 2
#: Modules in bench/ whose ``register(reg)`` adds groups, targets and checks to the run.
#: pyfloor: the hand-written floor; columnar: to_numpy() / update_batch(array),
#: the dump against bpftool, to_numpy() memory.
PLUGINS: Final[tuple[str, ...]] = ("pyfloor", "columnar")
#: cpu: this thread's CPU time (user + kernel), so time slices lost to other
#: processes on a shared machine do not count; wall: perf_counter.
CLOCKS: Final[dict[str, Clock]] = {"cpu": time.thread_time_ns, "wall": time.perf_counter_ns}

Results = dict[str, dict[str, dict[str, dict[str, Any]]]]  # shape -> group -> op -> stats


def registry(extra: list[str] | None = None) -> Registry:
    """The built-in groups, then every plugin of PLUGINS and ``extra`` (--plugin), in order."""
    reg = Registry()
    groups.register(reg)
    for name in (*PLUGINS, *(extra or [])):
        importlib.import_module(name).register(reg)
    return reg


# --------------------------------------------------------------------------- judging


def summarize(samples: dict[tuple[str, str, str], list[float]]) -> Results:
    """best (min), median and every round's value, per shape, group and operation."""
    out: Results = {}
    for (shape, group, op), vals in sorted(samples.items()):
        out.setdefault(shape, {}).setdefault(group, {})[op] = {
            "best": round(min(vals), 2),
            "median": round(statistics.median(vals), 2),
            "rounds": [round(v, 2) for v in vals],
        }
    return out


def _entry(results: Results, key: tuple[str, str, str] | list[str]) -> dict[str, Any] | None:
    shape, group, op = key
    got: dict[str, Any] | None = results.get(shape, {}).get(group, {}).get(op)
    return got


def _ratio(results: Results, num: Any, den: Any) -> tuple[float | None, float]:
    """The ratio of the best times, and the noise: the larger median/best - 1 of the two."""
    a, b = _entry(results, num), _entry(results, den)
    if a is None or b is None or b["best"] <= 0:
        return None, 0.0
    noise = max(a["median"] / a["best"], b["median"] / b["best"]) - 1
    return round(a["best"] / b["best"], 3), round(noise, 3)


def evaluate(
    reg: Registry, results: Results, checks: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every target with its ratio and verdict, and every context ratio."""
    targets: list[dict[str, Any]] = []
    for t in reg.targets:
        r, noise = _ratio(results, t.num, t.den)
        targets.append(
            {
                "name": t.name,
                "ratio": r,
                "limit": t.limit,
                "numerator": ".".join(t.num),
                "denominator": ".".join(t.den),
                "met": None if r is None else r <= t.limit,
                # Closer to the limit than the rounds' own spread: rerun.
                "within_noise": r is not None and abs(r / t.limit - 1) <= noise,
            }
        )
    for name, c in checks.items():
        targets.append(
            {
                "name": name,
                "ratio": None,
                "limit": None,
                "numerator": None,
                "denominator": None,
                "met": c.get("met"),
                "within_noise": False,
            }
        )
    infos = []
    for i in reg.infos:
        r, _ = _ratio(results, i.num, i.den)
        if r is not None:
            infos.append({"name": i.name, "ratio": r})
    return targets, infos


# --------------------------------------------------------------------------- reports


def _fmt_ns(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _verdict(t: dict[str, Any], markdown: bool = False) -> str:
    met = t["met"]
    if met is None:
        return "not measured"
    word = "PASS" if met else ("**MISS**" if markdown else "MISS")
    return word + (" (noise)" if t["within_noise"] else "")


def _tables(record: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """One table per shape: (title, header, rows) of ns per element."""
    out = []
    titles = record["titles"]
    for shape in record["params"]["shapes"]:
        data = record["results"].get(shape, {})
        gnames = [g for g in titles["groups"] if g in data]
        header = ["ns per element", *(titles["groups"][g] for g in gnames)]
        rows = []
        for op, op_title in titles["ops"].items():
            cells = [_fmt_ns(data[g][op]["best"]) if op in data[g] else "-" for g in gnames]
            if any(c != "-" for c in cells):
                rows.append([op_title, *cells])
        out.append((f"{shape}: {titles['shapes'].get(shape, shape)}", header, rows))
    return out


def render(record: dict[str, Any]) -> str:
    """The human-readable report: ns per element per shape, targets, ratios, checks."""
    p = record["params"]
    lines = [
        f"typedmaps benchmark: {p['entries']:,} entries, {p['ops']:,} per-op keys, "
        f"best of {p['rounds']} rounds, {p['clock']} clock, batch {p['batch']}, "
        f"{p['ncpus']} possible CPUs, tree {record['env']['git']}",
        f"load average at start {record['loadavg_start']}, at end "
        f"{record['env']['loadavg_end'][0]} ({record['env']['online_cpus']} online CPUs)",
    ]
    for title, header, rows in _tables(record):
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        fmt = [f"{{:<{widths[0]}}}", *(f"{{:>{max(w, 10)}}}" for w in widths[1:])]
        lines += ["", title]
        head = "  ".join(f.format(h) for f, h in zip(fmt, header, strict=True))
        lines += [head, "-" * len(head)]
        for r in rows:
            lines.append("  ".join(f.format(c) for f, c in zip(fmt, r, strict=True)))
    width = max(len(t["name"]) for t in record["targets"]) + 2
    lines += ["", f"{'target':<{width}}{'ratio':>7}  {'limit':<7} result", "-" * (width + 30)]
    for t in record["targets"]:
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        limit = "" if t["limit"] is None else f"<= {t['limit']:g}"
        lines.append(f"{t['name']:<{width}}{ratio:>7}  {limit:<7} {_verdict(t)}")
    if record["ratios"]:
        width = max(len(i["name"]) for i in record["ratios"]) + 2
        lines += ["", f"{'other ratios':<{width}}{'ratio':>7}", "-" * (width + 7)]
        for i in record["ratios"]:
            lines.append(f"{i['name']:<{width}}{i['ratio']:>7.2f}")
    for name, c in record["checks"].items():
        lines += ["", f"{name}: {c['text']}"]
    for what, why in record["unavailable"].items():
        lines.append(f"{what} not measured: {why}")
    return "\n".join(lines)


def render_markdown(record: dict[str, Any]) -> str:
    """The same report as Markdown tables (for docs/performance.md and the README)."""
    out: list[str] = []
    for title, header, rows in _tables(record):
        out += [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        out.append("|---|" + "---:|" * (len(header) - 1))
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    out += ["| target | ratio | limit | result |", "|---|---:|---|---|"]
    for t in record["targets"]:
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        limit = "" if t["limit"] is None else f"<= {t['limit']:g}"
        out.append(f"| {t['name']} | {ratio} | {limit} | {_verdict(t, True)} |")
    if record["ratios"]:
        out += ["", "| ratio (no target) | value |", "|---|---:|"]
        out += [f"| {i['name']} | {i['ratio']:.2f} |" for i in record["ratios"]]
    for name, c in record["checks"].items():
        out += ["", f"{name}: {c['text']}."]
    return "\n".join(out)


def environment(bcc: Any) -> dict[str, Any]:
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
        "bcc": getattr(bcc, "version", None),
        "bcc_mode": getattr(bcc, "mode", None),
        "git": commit,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="C vs the cffi floor vs MapHandle vs TypedMap vs BCC, ns per element, "
        "over a matrix of record shapes, in one run."
    )
    p.add_argument("--entries", type=int, help="elements in each hash map (default 100000)")
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
        "--shapes",
        default=",".join(ALL_SHAPES),
        help=f"comma-separated record shapes to measure (default {','.join(ALL_SHAPES)})",
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
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: this thread's CPU time, robust on a shared machine (default); wall",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also register this module's groups and targets (besides PLUGINS); repeatable",
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
    args.shape_list = [s for s in args.shapes.split(",") if s]
    unknown = sorted(set(args.shape_list) - set(ALL_SHAPES))
    if unknown or not args.shape_list:
        p.error(f"--shapes: unknown {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(ALL_SHAPES)}")  # fmt: skip
    return args


def measure(args: argparse.Namespace, reg: Registry, say: Any) -> dict[str, Any]:
    """Run every group over every shape for the rounds; the record without its report."""
    clock = CLOCKS[args.clock]
    unavailable: dict[str, str] = {}
    say(f"filling maps: {', '.join(args.shape_list)} ({args.entries:,} entries each)")
    shapes = make_shapes(args.shape_list, args.entries, args.ops)
    runners: dict[str, Runner] = {}
    bcc = None
    try:
        ctx = Context(args, clock, shapes)
        for g in reg.groups:
            try:
                runners[g.name] = g.make(ctx)
            except Unavailable as exc:
                unavailable[g.name] = str(exc)
        bcc = runners.get("bcc")
        floor = runners.get("floor")
        if isinstance(floor, groups.FloorBench) and isinstance(floor.api, str):
            unavailable["floor.lookup_api"] = floor.api
        samples: dict[tuple[str, str, str], list[float]] = {}
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
                res = runners[g].run_round()
                if warm:
                    continue
                for shape, ops in res.items():
                    for op, ns in ops.items():
                        samples.setdefault((shape, g, op), []).append(ns)
        env = environment(bcc)
    finally:
        for runner in runners.values():
            runner.close()
        for d in shapes.values():
            d.close()
    checks: dict[str, dict[str, Any]] = {}
    for c in reg.checks:
        say(f"check: {c.name}")
        checks[c.name] = c.run(args)
    results = summarize(samples)
    targets, ratios = evaluate(reg, results, checks)
    return {
        "schema": SCHEMA_VERSION,
        "unit": f"ns per element ({args.clock} clock); best (lowest) of the rounds, median too",
        "params": {
            "entries": args.entries,
            "ops": args.ops,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "batch": args.batch,
            "mem_entries": args.mem_entries,
            "ncpus": ctx.ncpus,
            "shapes": args.shape_list,
            "seed": args.seed,
            "clock": args.clock,
        },
        "env": env,
        "titles": {
            "groups": {g.name: g.title for g in reg.groups},
            "ops": reg.ops,
            "shapes": {s: SHAPES[s].title for s in args.shape_list},
        },
        "results": results,
        "targets": targets,
        "ratios": ratios,
        "checks": checks,
        "unavailable": unavailable,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        print(json.dumps(groups.memory_worker(args.mem_entries)))
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
    reg = registry(args.plugin)
    stamp = datetime.now(UTC)
    record: dict[str, Any] = {
        "timestamp": stamp.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "loadavg_start": round(load, 2),
        **measure(args, reg, say),
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
