"""The package imports, finds libbpf and reaches the kernel."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import MakeMap


def test_public_names_are_exported() -> None:
    for name in tm.__all__:
        assert hasattr(tm, name), name
    assert tm.MapHandle.__module__ == "typedmaps"


def test_num_possible_cpus_matches_sysfs() -> None:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    last = max(int(part.split("-")[-1]) for part in text.split(","))
    assert tm.num_possible_cpus() == last + 1


def test_create_and_roundtrip(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    h.update(b"\x01\0\0\0", b"abcdefgh")
    assert h.lookup(b"\x01\0\0\0") == b"abcdefgh"


def test_lazy_names_agree_with_all_and_type_checking_imports() -> None:
    """Each public name is in __all__, in _LAZY (with its module) and imported for mypy."""
    tree = ast.parse(Path(tm.__file__).read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                assert stmt.level == 1
                assert stmt.module is not None
                for alias in stmt.names:
                    imported[alias.name] = stmt.module
    lazy = dict(tm._LAZY)
    assert imported == lazy
    assert sorted(tm.__all__) == sorted(lazy)
    for name, mod in lazy.items():
        obj = getattr(tm, name)
        assert obj is getattr(importlib.import_module(f"typedmaps.{mod}"), name), name


def test_import_is_lazy() -> None:
    """`import typedmaps` loads neither cffi nor construct; names load on first use."""
    code = (
        "import sys, typedmaps as tm\n"
        "heavy = ('cffi', 'construct', 'typedmaps.handle', 'typedmaps.btf', 'typedmaps.codegen')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "tm.MapHandle\n"
        "print('typedmaps.handle' in sys.modules, repr(tm.KeyNotFoundError))\n"
        "import typedmaps.typed\n"
        "print(callable(tm.typed), tm.typed.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "[]",
        "True <class 'typedmaps.KeyNotFoundError'>",
        "True typedmaps",
    ]
    assert "MapHandle" in dir(tm)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        tm.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
