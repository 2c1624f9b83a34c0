"""One version everywhere: package metadata, ``__version__`` and ``typedmaps --version``.

The built wheel itself is checked outside pytest, by `make wheel-check`
(a fresh venv, the wheel installed, tools/wheel_smoke.py run there).
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import typedmaps as tm
from typedmaps import _ffi

ROOT = Path(__file__).resolve().parent.parent


def test_one_version_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[ab]\d+|rc\d+)?(?:\.dev\d+)?", tm.__version__)
    # The installed metadata is built from the same file (reinstall if this fails:
    # `make setup` after changing the version).
    assert importlib.metadata.version("typedmaps") == tm.__version__


def test_version_command_names_package_and_libbpf() -> None:
    script = Path(sys.executable).parent / "typedmaps"  # the console script of the install
    for argv in ([sys.executable, "-m", "typedmaps", "--version"], [str(script), "--version"]):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (
            f"typedmaps {tm.__version__} (libbpf {_ffi.libbpf_version()}, "
            f"Python {'.'.join(map(str, sys.version_info[:3]))})\n"
        )
        assert proc.stderr == ""


def test_changelog_has_an_entry_for_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    assert f"## [{tm.__version__}]" in text
