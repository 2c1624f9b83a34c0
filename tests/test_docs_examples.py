"""The guide pages are true: every ``python`` block in docs/*.md runs, and type-checks.

Each page's blocks run in order, in one namespace of their own (as a reader
would paste them into one session), as root against the real kernel, from
the repository root (so ``build/bpf/flows.bpf.o`` is found as the pages
write it). Then all pages' blocks go through one ``mypy --strict`` run, one
module per page.

A block that cannot run alone is marked on the line before its fence with

    <!-- docs-test: no-run: the reason, in words -->

It is then neither run nor type-checked. Use it sparingly: a reason is
required, and at most one block in ten, over the whole site, may be marked.
Only ``python`` fences count as Python: ``py``/``python3``/``pycon``
fences are refused, so that no block escapes by its spelling.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import bpf_object

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md"))

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.S | re.M
)
_NO_RUN = re.compile(r"<!--\s*docs-test:\s*no-run:\s*(?P<reason>.*?)\s*-->\s*$")
_OBJECT = re.compile(r"build/bpf/(\w+)\.bpf\.o")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    code: str
    no_run: str | None  # the reason, for a block marked no-run


def blocks(page: Path) -> list[Block]:
    """The page's python blocks, dedented, with their no-run reasons."""
    text = page.read_text()
    out = []
    for m in _FENCE.finditer(text):
        lang = m.group("lang").lower()
        line = text.count("\n", 0, m.start()) + 1
        assert lang not in ("py", "python3", "pycon", "py3"), (
            f"{page.name}:{line}: write ```python, not ```{lang}: only python blocks are tested"
        )
        if lang != "python":
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _NO_RUN.search(before)
        indent = len(m.group("indent"))
        code = "".join(ln[indent:] + "\n" for ln in m.group("body").splitlines())
        out.append(Block(page, line, code, marker.group("reason") if marker else None))
    return out


def test_pages_are_found_and_markers_are_justified() -> None:
    assert {"typed.md", "codecs.md", "index.md", "getting-started.md"} <= {p.name for p in PAGES}
    total = marked = 0
    for page in PAGES:
        bs = blocks(page)
        skipped = [b for b in bs if b.no_run is not None]
        for b in skipped:
            assert len((b.no_run or "").split()) >= 3, (
                f"{page.name}:{b.line}: a no-run marker needs a reason in words"
            )
        assert page.read_text().count("docs-test:") == len(skipped), (
            f"{page.name}: a docs-test marker that is not right before a ```python fence"
        )
        total += len(bs)
        marked += len(skipped)
    assert marked * 10 <= total, f"{marked} of {total} python blocks are marked no-run"


@pytest.mark.parametrize(
    "page", [p for p in PAGES if any(b.no_run is None for b in blocks(p))], ids=lambda p: p.name
)
def test_page_examples_run(page: Path, bpf: None, monkeypatch: pytest.MonkeyPatch) -> None:
    code = "".join(b.code for b in blocks(page) if b.no_run is None)
    for name in sorted(set(_OBJECT.findall(code))):
        bpf_object(name)  # the page loads build/bpf/<name>.bpf.o (built by `make bpf`)
    monkeypatch.chdir(ROOT)
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")  # dataclasses look it up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ran = 0
    for b in blocks(page):
        if b.no_run is not None:
            continue
        # dont_inherit: run as a user would, without this file's `from __future__ ...`
        where = f"docs/{page.name}, python block at line {b.line}"
        exec(compile(b.code, where, "exec", dont_inherit=True), module.__dict__)
        ran += 1
    assert ran >= 1


def test_page_examples_type_check(tmp_path: Path) -> None:
    files = []
    for page in PAGES:
        runnable = [b for b in blocks(page) if b.no_run is None]
        if not runnable:
            continue
        source = tmp_path / f"docs_{page.stem.replace('-', '_')}.py"
        source.write_text("\n\n".join(b.code for b in runnable))
        files.append(str(source))
    assert len(files) >= 3
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "docs-examples"),
            "--no-error-summary",
            *files,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
