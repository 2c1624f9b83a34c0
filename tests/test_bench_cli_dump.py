"""bench/cli_dump.py runs end to end on a small map and writes a well-formed record.

No timing assertions: the benchmark's own check (typedmaps dump --json equal
to bpftool's formatted view) must pass before it times anything, and it
must leave no pin behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BPFFS, ROOT
from .test_cli_support import bpftool_exe

pytestmark = pytest.mark.bpf


def run_bench(
    cmd: list[str], timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """Run a benchmark script; its result and the dump pins it left behind.

    The dump benchmark pins its map as typedmaps_bench_dump_<pid>_<random>:
    only pins of this very process count (other tests run benchmarks too).
    """
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    ) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    mine = f"typedmaps_bench_dump_{p.pid}_"
    left = [q for q in BPFFS.iterdir() if q.name.startswith(mine)]
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), left


def test_cli_dump_bench_runs(bpf: None, tmp_path: Path) -> None:
    bpftool_exe()
    out = tmp_path / "record.json"
    proc, left = run_bench(
        [
            sys.executable,
            str(ROOT / "bench" / "cli_dump.py"),
            "--entries=300",
            "--rounds=1",
            "--warmup=0",
            f"--results-dir={tmp_path / 'results'}",
            f"--json={out}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert rec["params"]["entries"] == 300
    for name in ("bpftool", "typedmaps", "import", "python"):
        r = rec["results"][name]
        assert r["best_ms"] > 0
        assert len(r["rounds_ms"]) == 1
    t = rec["target"]
    assert t["met"] == (t["ratio"] <= t["limit"] == 3.0)
    assert "| typedmaps |" in proc.stdout
    assert not left
