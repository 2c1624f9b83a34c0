"""bench/events.py runs end to end on real rings and writes a well-formed record.

Tiny sizes and no timing assertions: every group (the typed and bytes
streams, their floors, libbpf's callbacks, C and, where installed, BCC)
must have drained all its records. Speed is judged by `make bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, bpf_object

pytestmark = pytest.mark.usefixtures("bpf")

GROUPS = {
    "typed",
    "typed_iter",
    "typed_floor",
    "bytes",
    "bytes_floor",
    "cb_bytes",
    "cb_typed",
    "c",
    "perf_typed",
    "perf_typed_floor",
    "perf_bytes",
    "perf_bytes_floor",
}


def test_every_group_runs_and_the_record_is_complete(tmp_path: Path) -> None:
    bpf_object("ringbuf")
    bpf_object("perfbuf")
    out = tmp_path / "events.json"
    md = tmp_path / "events.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "events.py"),
            "--records=500",
            "--rounds=2",
            "--warmup=0",
            f"--json={out}",
            f"--markdown={md}",
            f"--results-dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    results = record["results"]
    assert set(results) - {"bcc"} == GROUPS
    if "bcc" not in results:
        assert "bcc" in record["unavailable"]
    for name, r in results.items():
        assert len(r["rounds"]) == 2, name
        assert all(v > 0 for v in r["rounds"]), name
    assert [t["name"].split()[0] for t in record["targets"]] == [
        "TypedRingBuffer.consume",
        "RingBuffer.consume",
    ]
    assert all(isinstance(t["met"], bool) for t in record["targets"])
    assert "| TypedRingBuffer.consume() |" in md.read_text()
    assert "target" in proc.stdout
