"""The demo (examples/demo.py) interrupted mid-run: it says so and leaves nothing behind.

`make demo` runs the whole demo in CI; this test sends it SIGINT (Ctrl-C)
as soon as its network namespace exists, while the veth pair is being
made, which is where an interrupt is hardest to clean up after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import bpf_object, need

ROOT = Path(__file__).resolve().parent.parent


def ip_json(*args: str) -> list[dict[str, str]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out or "[]"))


def names_of(pid: int) -> list[str]:
    """The demo's namespaces and interfaces (``tmd-<pid>-...``, ``tmd<pid>h...``)."""
    ns = [e["name"] for e in ip_json("netns", "list") if e["name"].startswith(f"tmd-{pid}-")]
    links = [e["ifname"] for e in ip_json("link", "show") if e["ifname"].startswith(f"tmd{pid}")]
    return ns + links


def test_the_demo_interrupted_while_making_its_network_cleans_up_quietly(bpf: None) -> None:
    need(shutil.which("ip") is not None, "iproute2 (`ip`) is not installed")
    bpf_object("flows")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
    )
    try:
        deadline = time.monotonic() + 30
        while not names_of(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "the demo ended before it made its namespace"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert "Traceback" not in out, out
    assert names_of(proc.pid) == []
