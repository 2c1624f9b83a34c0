"""bench/data.py runs end to end on real maps and writes a well-formed record.

Tiny sizes and no timing assertions: speed is judged by `make bench`. This
checks that the C side and every Python measurement ran on the same maps
and that each target got a ratio and a verdict.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, bpf_object

RUN = ROOT / "bench" / "data.py"
MEASURES = (
    "c.array",
    "c.small",
    "c.section",
    "memory.read32",
    "memory.read16",
    "memory.read_into32",
    "memory.write32",
    "memory.bytes32",
    "floor.record32",
    "floor.read32",
    "syscall.read32",
    "globals.read",
    "globals.read_obj",
    "globals.write",
)


@pytest.mark.bpf
def test_bench_data_runs_end_to_end(bpf: None, tmp_path: Path) -> None:
    if not any(shutil.which(c) for c in ("gcc", "clang", "cc")):
        pytest.skip("no C compiler for bench/cdata.c")
    bpf_object("globals")
    out = tmp_path / "record.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--ops=2000",
            "--rounds=2",
            f"--results-dir={tmp_path / 'results'}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert rec["params"] == {"ops": 2000, "rounds": 2, "entries": 1024, "clock": "cpu"}
    for name in MEASURES:
        for table in ("best_ns", "median_ns"):
            v = rec[table][name]
            assert isinstance(v, float | int)
            assert math.isfinite(v)
            assert v > 0
        assert rec["best_ns"][name] <= rec["median_ns"][name]
    assert len(rec["targets"]) == 5
    for t in rec["targets"]:
        assert t["met"] == (t["ratio"] <= t["limit"])
        assert t["name"] in proc.stdout
    assert rec["floor"]["ratio"] > 0
    assert rec["floor"]["name"] in proc.stdout
    assert rec["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert rec["python"]["libpython"] in ("shared", "linked in")
    saved = list((tmp_path / "results").glob("data-*.json"))
    assert len(saved) == 1
    assert json.loads(saved[0].read_text()) == rec
