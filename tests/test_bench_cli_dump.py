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


def test_cli_dump_bench_runs(bpf: None, tmp_path: Path) -> None:
    bpftool_exe()
    before = set(BPFFS.iterdir())
    out = tmp_path / "record.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "cli_dump.py"),
            "--entries=300",
            "--rounds=1",
            "--warmup=0",
            f"--results-dir={tmp_path / 'results'}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
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
    assert not [p for p in set(BPFFS.iterdir()) - before if "typedmaps_bench_dump" in p.name]
