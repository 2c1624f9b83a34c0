"""Count the bpf(2) syscalls a piece of Python makes: strace, with getppid() as markers.

``bpf_calls(setup, measured)`` runs ``setup`` and then ``measured`` in a
fresh interpreter under ``strace -f -e trace=bpf,getppid``; the script calls
``os.getppid()`` right before and right after ``measured``, and the result
is the number of bpf() calls strace saw between the two markers, with the
trace lines themselves for the assertion message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from .conftest import ROOT, need

_MARK = "getppid("


def bpf_calls(setup: str, measured: str, *, timeout: float = 120) -> tuple[int, list[str]]:
    """(bpf() calls made by ``measured``, those trace lines).

    Raises:
        AssertionError: the script failed or the markers are missing.
    """
    strace = shutil.which("strace")
    need(strace is not None, "strace is not installed (make setup installs it)")
    assert strace is not None
    script = (
        "import os\n"
        + textwrap.dedent(setup)
        + "\nos.getppid()\n"
        + textwrap.dedent(measured)
        + "\nos.getppid()\n"
        + "print('script done')\n"
    )
    with tempfile.TemporaryDirectory(prefix="tm_strace_") as tmp:
        out = Path(tmp) / "trace"
        cmd = [strace, "-f", "-qq", "-e", "trace=bpf,getppid", "-o", str(out)]
        proc = subprocess.run(
            [*cmd, sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "script done" in proc.stdout, proc.stderr[-3000:]
        lines = out.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if _MARK in line]
    assert len(marks) >= 2, f"markers missing from the trace: {lines[-20:]}"
    between = [line for line in lines[marks[0] + 1 : marks[1]] if "bpf(" in line]
    return len(between), between
