"""Independent checks of `typedmaps export` on a held-out object (bpf/qa_events.bpf.c).

Written from docs/prometheus.md and docs/cli.md: a real scrape over HTTP on
127.0.0.1 of a map that a BPF program filled, parsed with prometheus-client's
own parser, every value equal to the map's, arrays in the value as samples
with `index` labels; and the maps that cannot be exported refused in one line.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

import typedmaps as tm

from .conftest import bpf_object


@pytest.fixture
def qa(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("qa_events")) as obj:
        obj.load()
        yield obj


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def export(*args: str) -> list[str]:
    return [sys.executable, "-m", "typedmaps", "export", *args]


def test_export_scrape_equals_the_map(qa: tm.BpfObject) -> None:
    emit = qa.programs["qa_emit"]
    emit.test_run(ctx_in=struct.pack("<5Q", 7, 0, 0, 0, 3))  # 7 into the ring, lane 3
    emit.test_run(ctx_in=struct.pack("<5Q", 2000, 1, 0, 0, 0))  # 2,000 into the 4 KiB ring
    table = tm.typed(qa.maps["qa_stats"])
    assert isinstance(table, tm.TypedMap)
    st = table[0]
    assert st.dropped[1] > 0  # the small ring overflowed
    port = free_port()
    m = qa.maps["qa_stats"]
    proc = subprocess.Popen(
        export("--prometheus", f"127.0.0.1:{port}", f"id:{m.id}", "--prefix", "qa",
               "--counters", "emitted,dropped"),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        body = ""
        end = time.monotonic() + 20
        while not body and time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.1)
        families = {f.name: f for f in text_string_to_metric_families(body)}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    seq = families["qa_qa_stats_seq"]
    assert seq.type == "gauge"
    got = {(s.labels["index"], s.labels["index_2"]): s.value for s in seq.samples}
    assert got == {
        (str(t), str(lane)): float(st.seq[t][lane]) for t in range(5) for lane in range(8)
    }
    for name in ("emitted", "dropped"):
        fam = families[f"qa_qa_stats_{name}"]
        assert fam.type == "counter"
        values = {s.labels["index"]: s.value for s in fam.samples if s.name.endswith("_total")}
        assert values == {str(i): float(v) for i, v in enumerate(getattr(st, name))}
    assert families["qa_qa_stats_drained"].samples[0].value == float(st.drained)
    assert all(
        s.labels["key"] == "0"
        for f in families.values()
        for s in f.samples
        if f.name.startswith("qa_")
    )


@pytest.mark.parametrize("name", ["qa_ring", "qa_perf", "qa_cmds"])
def test_export_refuses_event_streams_in_one_line(qa: tm.BpfObject, name: str) -> None:
    out = subprocess.run(
        export("--prometheus", f"127.0.0.1:{free_port()}", f"id:{qa.maps[name].id}"),
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 5, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "stream of records" in out.stderr
