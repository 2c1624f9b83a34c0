"""typedmaps: BPF maps as typed Python mappings, over the system libbpf.

Two layers (see docs/design.md): a byte-level :class:`MapHandle` on a cffi
ABI-mode binding to libbpf, and typed wrappers (:class:`TypedMap` and
friends) that encode keys and values with construct schemas.
"""

from __future__ import annotations

import contextlib

from ._version import __version__ as __version__
from .errors import (
    BatchError,
    CodecError,
    IterationAbortedError,
    KeyExistsError,
    KeyNotFoundError,
    LibbpfNotFoundError,
    MapClosedError,
    MapError,
    MapFullError,
    MapPermissionError,
    NotSupportedError,
    ObjectError,
    SizeMismatchError,
    TypedMapsError,
)
from .flags import MapCreateFlags, MapFlags, MapType, ProgramType
from .handle import MapHandle, MapInfo, num_possible_cpus
from .object import BpfObject, GlobalVariable, Map
from .program import Link, Program, TestRunResult
from .typed import PerCpuTypedMap, TypedBloomFilter, TypedMap, TypedQueue, TypedStack, typed

__all__ = [
    "BatchError",
    "BpfObject",
    "CodecError",
    "GlobalVariable",
    "IterationAbortedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "LibbpfNotFoundError",
    "Link",
    "Map",
    "MapClosedError",
    "MapCreateFlags",
    "MapError",
    "MapFlags",
    "MapFullError",
    "MapHandle",
    "MapInfo",
    "MapPermissionError",
    "MapType",
    "NotSupportedError",
    "ObjectError",
    "PerCpuTypedMap",
    "Program",
    "ProgramType",
    "SizeMismatchError",
    "TestRunResult",
    "TypedBloomFilter",
    "TypedMap",
    "TypedMapsError",
    "TypedQueue",
    "TypedStack",
    "num_possible_cpus",
    "typed",
]

# Reprs and tracebacks show the public path (typedmaps.MapHandle), not the
# private module a name happens to live in.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("typedmaps."):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
