"""bench/columnar.py joins bench/run.py's run: its rows, targets and checks are in the record.

Tiny sizes, no timing assertions (speed is judged by `make bench`): the
numpy group measured to_numpy() and update_batch(array) on the run's maps,
the per-CPU read has its C baseline, the dump check compared typedmaps with
bpftool, and the memory check bounded to_numpy()'s peak by its result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT
from .test_bench_cli_dump import run_bench
from .test_cli_support import bpftool_exe

pytestmark = pytest.mark.bpf


def _positive(entry: dict[str, Any], rounds: int) -> None:
    assert len(entry["rounds"]) == rounds
    assert all(v > 0 for v in entry["rounds"])
    assert entry["best"] == min(entry["rounds"])


def test_columnar_rows_join_the_run(bpf: None, tmp_path: Path) -> None:
    if not shutil.which("gcc") and not shutil.which("clang"):
        pytest.skip("no C compiler for bench/cbench.c")
    bpftool_exe()
    out = tmp_path / "record.json"
    proc, left = run_bench(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--entries=300",
            "--ops=100",
            "--rounds=1",
            "--warmup=0",
            "--batch=64",
            "--bcc=off",
            "--shapes=plain,btf",
            "--mem-entries=3000",
            f"--results-dir={tmp_path / 'results'}",
            f"--json={out}",
        ],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    plain = rec["results"]["plain"]
    for op in ("to_numpy", "update_batch_array", "percpu_to_numpy"):
        _positive(plain["numpy"][op], 1)
    _positive(plain["c_percpu"]["percpu_lookup_batch"], 1)
    assert "numpy" not in rec["results"]["btf"]  # bitfields: no dtype, not measured
    targets = {t["name"]: t for t in rec["targets"]}
    for name, num, den in (
        ("to_numpy() <= 1.3x C batch lookup (plain)", "numpy.to_numpy", "c.lookup_batch"),
        ("update_batch(array) <= 1.2x C batch update (plain)", "numpy.update_batch_array",
         "c.update_batch"),
        ("per-CPU to_numpy() <= 1.3x C per-CPU batch lookup (plain)", "numpy.percpu_to_numpy",
         "c_percpu.percpu_lookup_batch"),
    ):  # fmt: skip
        t = targets[name]
        assert (t["numerator"], t["denominator"]) == (f"plain.{num}", f"plain.{den}")
        assert t["met"] == (t["ratio"] <= t["limit"])
    # Shapes this run did not measure: no ratio, no verdict.
    assert targets["to_numpy() <= 1.3x C batch lookup (nested)"]["met"] is None

    dump = rec["checks"]["typedmaps dump --json <= 3x bpftool map dump -j (wall)"]
    assert dump["params"]["entries"] == 300  # the run's --entries, below 20,000
    assert dump["results"]["typedmaps"]["best_ms"] > 0
    assert dump["met"] == (dump["target"]["ratio"] <= 3.0)
    assert targets["typedmaps dump --json <= 3x bpftool map dump -j (wall)"]["met"] is dump["met"]
    memory = rec["checks"]["memory bounded over to_numpy() (plain, allocated once)"]
    assert memory["entries"] == 3000
    assert memory["result_bytes"] == 3000 * 48
    assert memory["tracemalloc_peak_bytes"] >= memory["result_bytes"]
    assert memory["met"] is True  # one result array and one batch: bounded at any size
    assert "to_numpy() (per element)" in proc.stdout
    assert not left


def test_memory_worker_refuses_nonsense() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "columnar.py"), "--memory-worker", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT / "bench",
    )
    assert proc.returncode == 2
    assert "positive" in proc.stderr
