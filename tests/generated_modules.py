"""Importing a module that `typedmaps gen` wrote, under a name of the test's choosing."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def load(path: Path, name: str) -> types.ModuleType:
    """Import ``path`` as module ``name`` (kept in sys.modules, as dataclasses need)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


@contextmanager
def imported(path: Path, name: str) -> Iterator[types.ModuleType]:
    """``load`` for the length of a with block, then forgotten again."""
    mod = load(path, name)
    try:
        yield mod
    finally:
        sys.modules.pop(name, None)
