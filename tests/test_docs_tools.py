"""The docs build's own tools: the docstring converter (tools/griffe_rst.py) and the nav reader."""

from __future__ import annotations

import sys
from pathlib import Path

import griffe
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import docs_check  # noqa: E402
import griffe_rst  # noqa: E402


@pytest.fixture(scope="module")
def pkg() -> griffe.Module:
    loaded = griffe.load("typedmaps", search_paths=[str(ROOT / "src")])
    assert isinstance(loaded, griffe.Module)
    return loaded


def test_roles_become_links_or_code(pkg: griffe.Module) -> None:
    handle = pkg["MapHandle"]
    text = griffe_rst.convert(
        pkg, handle, "See :meth:`from_fd`, :class:`~typedmaps.errors.CodecError` and :func:`nope`."
    )
    assert '<autoref identifier="typedmaps.MapHandle.from_fd" optional>' in text
    assert "<code>from_fd</code>" in text
    assert (
        '<autoref identifier="typedmaps.errors.CodecError" optional><code>CodecError</code>' in text
    )
    assert "<code>nope</code>" in text  # unresolved: plain code, no link
    assert 'identifier="nope"' not in text
    # A private target is never linked (the site does not render it).
    assert "autoref" not in griffe_rst.convert(pkg, handle, ":meth:`_open_fd`")


def test_literal_blocks_and_tables() -> None:
    doc = "Example::\n\n    x = 1\n    print(x)\n\nThe tree::\n\n    a\n    └── b\n\nafter"
    out = griffe_rst._literal_blocks(doc)
    assert "Example:\n    ```python\n    x = 1\n    print(x)\n    ```" in out
    assert "The tree:\n\n```text\na\n└── b\n```" in out
    assert out.rstrip().endswith("after")
    table = "=====  =====\nmap    kind\n=====  =====\nHASH   keyed\nQUEUE  keyless\n=====  =====\n"
    md = griffe_rst._tables(table)
    assert "| map | kind |" in md
    assert "| HASH | keyed |" in md
    assert "| QUEUE | keyless |" in md


def test_nav_titles_come_from_mkdocs_yml() -> None:
    titles = docs_check.nav_titles()
    assert titles[:2] == ["Home", "Getting started"]
    assert {"Guide", "Typed maps", "Errors", "API reference"} <= set(titles)
