"""docs/typed.md is true: its examples run on the real kernel and pass mypy --strict."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from .conftest import bpf_object

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "typed.md"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_the_examples_run(bpf: None, monkeypatch: pytest.MonkeyPatch) -> None:
    bpf_object("flows")  # the page loads build/bpf/flows.bpf.o
    monkeypatch.chdir(ROOT)
    blocks = _blocks()
    assert len(blocks) >= 5
    module = types.ModuleType("docs_typed")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for n, block in enumerate(blocks, start=1):
        # dont_inherit: run the blocks as a user would, without this file's
        # `from __future__ import annotations`
        code = compile(block, f"{DOC.name} python block {n}", "exec", dont_inherit=True)
        exec(code, module.__dict__)


def test_the_examples_type_check(tmp_path: Path) -> None:
    source = tmp_path / "typed_doc_examples.py"
    source.write_text("\n\n".join(_blocks()))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            str(source),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
