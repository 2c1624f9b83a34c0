"""`typedmaps events`: a ring buffer or perf buffer as decoded records, stopped by count,
time or a real SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import bpf_object
from .event_streams import MODE_MIXED, loaded
from .test_cli_support import VENV_BIN, typedmaps_cli

pytestmark = pytest.mark.usefixtures("bpf")


def _cmd(*args: str) -> list[str]:
    return [str(VENV_BIN / "typedmaps"), "events", *args]


def test_json_lines_count_and_timeout(pin_dir: Path) -> None:
    obj = str(bpf_object("ringbuf"))
    with loaded("ringbuf") as em:
        pin = pin_dir / "events"
        em.maps["events"].pin(pin)
        em.emit(3, param=7)
        em.emit(2, MODE_MIXED, 1)  # two 20-byte records: the wrong size, reported, skipped
        em.emit(2, param=8)
        r = typedmaps_cli(
            "events", str(pin), "--btf", obj, "--type", "event", "--json", "--count", "4"
        )
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        assert [(d["seq"], d["value"], d["kind"]) for d in lines] == [
            (0, 7, 1),
            (1, 7, 1),
            (2, 7, 1),
            (5, 8, 1),
        ]
        assert r.stderr.count("20 bytes, struct event takes 32: skipped") == 2
        t0 = time.monotonic()
        r = typedmaps_cli(
            "events", str(pin), "--btf", obj, "--type", "struct event", "--timeout", "0.3"
        )
        assert 0.3 <= time.monotonic() - t0 < 30
        assert r.stdout.startswith("{seq=6, ")  # the one left, as dump's text
        assert r.stdout.count("\n") == 1


def test_ctrl_c_stops_cleanly(pin_dir: Path) -> None:
    obj = str(bpf_object("perfbuf"))
    with loaded("perfbuf") as em:
        pin = pin_dir / "samples"
        em.maps["samples"].pin(pin)
        proc = subprocess.Popen(
            _cmd(str(pin), "--btf", obj, "--type", "event", "--json", "--pages", "4"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            got = None
            for _ in range(200):  # perf events exist only once the command runs: retry
                em.emit(1, param=3, cpu=0)
                time.sleep(0.05)
                if em.counter("emitted"):
                    got = proc.stdout.readline()
                    break
            assert got is not None
            assert json.loads(got)["value"] == 3
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130
        assert "Traceback" not in err
        assert all(json.loads(line)["value"] == 3 for line in out.splitlines())


def test_bad_arguments_are_named_errors(pin_dir: Path) -> None:
    obj = str(bpf_object("ringbuf"))
    with loaded("ringbuf") as em:
        pin = pin_dir / "events"
        em.maps["events"].pin(pin)
        r = typedmaps_cli("events", str(pin), "--btf", obj, "--type", "nope", check=False)
        assert r.returncode != 0
        assert "no type named 'nope'" in r.stderr
        assert "Traceback" not in r.stderr
        r = typedmaps_cli(
            "events", str(pin), "--btf", obj, "--type", "event", "--count", "0", check=False
        )
        assert r.returncode == 2
        bss = pin_dir / "bss"
        em.maps[".bss"].pin(bss)
        r = typedmaps_cli("events", str(bss), "--btf", obj, "--type", "event", check=False)
        assert r.returncode == 5
        assert "not a RINGBUF or PERF_EVENT_ARRAY" in r.stderr
