"""The benchmark harness (bench/run.py) runs end to end and writes a well-formed record.

Tiny sizes, no timing assertions: these tests check that every group (C,
the cffi floor, MapHandle, TypedMap and, where installed, BCC) really ran
on real maps of every record shape, that a plugin's group and target join
the same run, and that the JSON record has the shape docs/performance.md
describes. Speed itself is judged by `make bench`, not by the test suite.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

RUN = ROOT / "bench" / "run.py"
SHAPES = ("plain", "frozen_str", "nested", "btf")
#: What every group measures on every shape (per-CPU ones on the plain shape only).
OPS = {
    "c": ("lookup", "update", "lookup_batch", "update_batch"),
    "floor": ("lookup", "lookup_nocopy", "update"),
    "handle": ("lookup", "update", "lookup_batch", "update_batch"),
    "typed": (
        "lookup",
        "get",
        "contains",
        "lookup_fields",
        "update",
        "lookup_batch",
        "lookup_batch_fields",
        "update_batch",
    ),
    "bcc": ("lookup", "update", "lookup_batch", "lookup_fields", "lookup_batch_fields"),
    "hand": ("lookup", "lookup_fields", "lookup_batch", "lookup_batch_fields"),
}
PERCPU_OPS = {
    "c": ("percpu_lookup",),
    "floor": ("percpu_lookup",),
    "handle": ("percpu_lookup", "percpu_update"),
    "typed": ("percpu_lookup", "percpu_update"),
    "bcc": ("percpu_lookup",),
}
#: A plugin, as perf work adds one: its own group and a target against C.
PLUGIN = """
from harness import Target

class Runner:
    def __init__(self, ctx):
        self.d = ctx.shapes["plain"]
        self.clock = ctx.clock

    def run_round(self):
        t0 = self.clock()
        n = sum(1 for _ in self.d.hash.lookup_batch())
        return {"plain": {"count_only": (self.clock() - t0 + 1) / n}}

    def close(self):
        pass

def register(reg):
    reg.add_op("count_only", "count the elements")
    reg.add_group("plug", "Plugin", Runner)
    reg.add_target(Target("counting <= 100x C batch lookup", ("plain", "plug", "count_only"),
                          ("plain", "c", "lookup_batch"), 100.0))
"""


def _have_compiler() -> bool:
    return (
        any(shutil.which(c) for c in ("gcc", "clang", "cc"))
        and Path("/usr/include/bpf/bpf.h").exists()
    )


def _bcc_for(python: str) -> bool:
    """Whether BCC imports under ``python`` the way bench/bcc_side.py imports it."""
    if not os.access(python, os.X_OK):
        return False
    code = "import sys; sys.path.append('/usr/lib/python3/dist-packages'); import bcc.table"
    return subprocess.run([python, "-c", code], capture_output=True, check=False).returncode == 0


def _run(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "record.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--entries=300",
            "--ops=100",
            "--rounds=2",
            "--warmup=0",
            "--batch=64",
            f"--results-dir={tmp_path / 'results'}",
            f"--json={out}",
            f"--markdown={tmp_path / 'tables.md'}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record: dict[str, Any] = json.loads(out.read_text())
    # The timestamped copy in --results-dir is the same record.
    saved = list((tmp_path / "results").glob("*.json"))
    assert len(saved) == 1
    assert json.loads(saved[0].read_text()) == record
    return proc, record


def _check(record: dict[str, Any], shape: str, group: str, ops: tuple[str, ...]) -> None:
    results = record["results"][shape][group]
    for op in ops:
        entry = results[op]
        assert len(entry["rounds"]) == record["params"]["rounds"], (shape, group, op)
        for v in (*entry["rounds"], entry["best"], entry["median"]):
            assert isinstance(v, float | int), (shape, group, op, v)
            assert math.isfinite(v), (shape, group, op, v)
            assert v > 0, (shape, group, op, v)
        assert entry["best"] == min(entry["rounds"])
        assert entry["best"] <= entry["median"]


@pytest.mark.bpf
def test_bench_runs_end_to_end(bpf: None, tmp_path: Path) -> None:
    if not _have_compiler():
        pytest.skip("no C compiler or libbpf headers (libbpf-dev) for bench/cbench.c")
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "tm_smoke_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    proc, record = _run(tmp_path, "--mem-entries=3000", "--plugin=tm_smoke_plugin", env=env)

    assert record["schema"] == 2
    params = record["params"]
    assert (params["entries"], params["ops"], params["rounds"], params["batch"]) == (
        300,
        100,
        2,
        64,
    )
    assert tuple(params["shapes"]) == SHAPES
    assert params["ncpus"] >= 1
    assert record["env"]["libbpf"].startswith("v1.")

    have_bcc = _bcc_for(sys.executable) or _bcc_for("/usr/bin/python3")
    for shape in SHAPES:
        for group, ops in OPS.items():
            if group != "bcc" or have_bcc:
                _check(record, shape, group, ops)
    for group, ops in PERCPU_OPS.items():
        if group != "bcc" or have_bcc:
            _check(record, "plain", group, ops)
    _check(record, "plain", "plug", ("count_only",))
    _check(record, "plain", "hand", ("lookup_fn", "lookup_fn_life"))  # bench/pyfloor.py
    if not have_bcc:
        assert "bcc" in record["unavailable"]

    targets = record["targets"]
    names = [t["name"] for t in targets]
    assert len(names) == len(set(names))
    assert "counting <= 100x C batch lookup" in names
    assert "memory bounded over TypedMap.items() (plain, chunked)" in names
    for t in targets:
        assert t["met"] in (True, False, None)
        if t["ratio"] is not None:
            assert t["ratio"] > 0
            assert t["met"] == (t["ratio"] <= t["limit"])
        elif t["limit"] is not None:  # a ratio target: not measured only without BCC
            assert not have_bcc
            assert "bcc" in t["denominator"]
    check = record["checks"]["memory bounded over TypedMap.items() (plain, chunked)"]
    assert check["entries"] == 3000
    assert check["tracemalloc_peak_bytes"] >= check["tracemalloc_peak_first_tenth_bytes"] > 0
    by_name = {t["name"]: t for t in targets}
    assert by_name["memory bounded over TypedMap.items() (plain, chunked)"]["met"] is check["met"]
    assert record["ratios"]
    assert all(r["ratio"] > 0 for r in record["ratios"])

    # The printed report and the Markdown tables name every implementation, shape and target.
    markdown = (tmp_path / "tables.md").read_text()
    words = ("C libbpf", "cffi floor", "MapHandle", "TypedMap", "hand-written", "Plugin")
    for word in (*words, *SHAPES, *names):
        assert word in proc.stdout
        assert word in markdown
    assert "PASS" in proc.stdout or "MISS" in proc.stdout

    # --render re-prints a saved record without measuring anything.
    again = subprocess.run(
        [sys.executable, str(RUN), f"--render={tmp_path / 'record.json'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == proc.stdout.strip()


@pytest.mark.bpf
def test_bench_bcc_worker_under_system_python(bpf: None, tmp_path: Path) -> None:
    """The fallback: BCC measured by Debian's /usr/bin/python3 on inherited map fds."""
    if not _have_compiler():
        pytest.skip("no C compiler or libbpf headers (libbpf-dev) for bench/cbench.c")
    if not _bcc_for("/usr/bin/python3"):
        pytest.skip("BCC (python3-bpfcc) is not installed for /usr/bin/python3")
    _, record = _run(tmp_path, "--mem-entries=0", "--bcc=subprocess", "--shapes=plain,btf")
    assert record["env"]["bcc_mode"] == "subprocess"
    assert record["checks"]["memory bounded over TypedMap.items() (plain, chunked)"]["met"] is None
    _check(record, "plain", "bcc", (*OPS["bcc"], "percpu_lookup"))
    _check(record, "btf", "bcc", OPS["bcc"])


def test_bench_refuses_bad_arguments() -> None:
    for args, message in (
        (["--entries=5", "--ops=10"], "--ops cannot exceed --entries"),
        (["--shapes=plain,huge"], "--shapes: unknown huge"),
    ):
        proc = subprocess.run(
            [sys.executable, str(RUN), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2
        assert message in proc.stderr
