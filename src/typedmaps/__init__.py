"""typedmaps: BPF maps as typed Python mappings, over the system libbpf.

Two layers (see docs/design.md): a byte-level :class:`MapHandle` on a cffi
ABI-mode binding to libbpf, and typed wrappers (:class:`TypedMap` and
friends) that encode keys and values with construct schemas.

Importing the package is cheap: every public name is loaded from its
module the first time it is used (PEP 562), so ``import typedmaps`` does not
pull in cffi, construct or the BTF code until something needs them (the
``typedmaps`` command starts fast because of this).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import TYPE_CHECKING, Final

from ._version import __version__ as __version__

# Every public name, and the module (under typedmaps.) that defines it. To add
# a public name: add it here, to the TYPE_CHECKING imports below (what mypy and
# editors see) and to __all__; tests/test_smoke.py checks that the three agree.
_LAZY: Final[dict[str, str]] = {
    "ArgumentError": "errors",
    "BatchError": "errors",
    "CodecError": "errors",
    "DtypeError": "errors",
    "ExtraNotInstalledError": "errors",
    "IterationAbortedError": "errors",
    "KeyExistsError": "errors",
    "KeyNotFoundError": "errors",
    "LayoutMismatchError": "errors",
    "LibbpfNotFoundError": "errors",
    "MapClosedError": "errors",
    "MapError": "errors",
    "MapFullError": "errors",
    "MapPermissionError": "errors",
    "NotSupportedError": "errors",
    "ObjectError": "errors",
    "SizeMismatchError": "errors",
    "TypedMapsError": "errors",
    "AttachType": "flags",
    "LinkType": "flags",
    "MapCreateFlags": "flags",
    "MapFlags": "flags",
    "MapType": "flags",
    "ProgramType": "flags",
    "EventGroup": "events",
    "EventStream": "events",
    "PerfBuffer": "events",
    "RingBuffer": "events",
    "UserRingBuffer": "events",
    "MapHandle": "handle",
    "MapInfo": "handle",
    "num_possible_cpus": "handle",
    "BpfObject": "object",
    "GlobalVariable": "object",
    "Map": "object",
    "Link": "link",
    "LinkInfo": "link",
    "Program": "program",
    "TestRunResult": "program",
    "Globals": "typed",
    "CpuMap": "typed",
    "CpuMapEntry": "typed",
    "DevMap": "typed",
    "DevMapEntry": "typed",
    "MapOfMaps": "typed",
    "ProgramArray": "typed",
    "SockMap": "typed",
    "XskMap": "typed",
    "socket_cookie": "typed",
    "PidFd": "typed",
    "TypedCgroupStorage": "typed",
    "TypedInodeStorage": "typed",
    "TypedSkStorage": "typed",
    "TypedTaskStorage": "typed",
    "PerCpuTypedMap": "typed",
    "TypedBloomFilter": "typed",
    "TypedMap": "typed",
    "TypedQueue": "typed",
    "TypedStack": "typed",
    "TypedPerfBuffer": "typed",
    "TypedRingBuffer": "typed",
    "TypedUserRingBuffer": "typed",
    "typed": "typed",
}

if TYPE_CHECKING:
    from .errors import (
        ArgumentError,
        BatchError,
        CodecError,
        DtypeError,
        ExtraNotInstalledError,
        IterationAbortedError,
        KeyExistsError,
        KeyNotFoundError,
        LayoutMismatchError,
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
    from .events import EventGroup, EventStream, PerfBuffer, RingBuffer, UserRingBuffer
    from .flags import AttachType, LinkType, MapCreateFlags, MapFlags, MapType, ProgramType
    from .handle import MapHandle, MapInfo, num_possible_cpus
    from .link import Link, LinkInfo
    from .object import BpfObject, GlobalVariable, Map
    from .program import Program, TestRunResult
    from .typed import (
        CpuMap,
        CpuMapEntry,
        DevMap,
        DevMapEntry,
        Globals,
        MapOfMaps,
        PerCpuTypedMap,
        PidFd,
        ProgramArray,
        SockMap,
        TypedBloomFilter,
        TypedCgroupStorage,
        TypedInodeStorage,
        TypedMap,
        TypedPerfBuffer,
        TypedQueue,
        TypedRingBuffer,
        TypedSkStorage,
        TypedStack,
        TypedTaskStorage,
        TypedUserRingBuffer,
        XskMap,
        socket_cookie,
        typed,
    )

__all__ = [
    "ArgumentError",
    "AttachType",
    "BatchError",
    "BpfObject",
    "CodecError",
    "CpuMap",
    "CpuMapEntry",
    "DevMap",
    "DevMapEntry",
    "DtypeError",
    "EventGroup",
    "EventStream",
    "ExtraNotInstalledError",
    "GlobalVariable",
    "Globals",
    "IterationAbortedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "LayoutMismatchError",
    "LibbpfNotFoundError",
    "Link",
    "LinkInfo",
    "LinkType",
    "Map",
    "MapClosedError",
    "MapCreateFlags",
    "MapError",
    "MapFlags",
    "MapFullError",
    "MapHandle",
    "MapInfo",
    "MapOfMaps",
    "MapPermissionError",
    "MapType",
    "NotSupportedError",
    "ObjectError",
    "PerCpuTypedMap",
    "PerfBuffer",
    "PidFd",
    "Program",
    "ProgramArray",
    "ProgramType",
    "RingBuffer",
    "SizeMismatchError",
    "SockMap",
    "TestRunResult",
    "TypedBloomFilter",
    "TypedCgroupStorage",
    "TypedInodeStorage",
    "TypedMap",
    "TypedMapsError",
    "TypedPerfBuffer",
    "TypedQueue",
    "TypedRingBuffer",
    "TypedSkStorage",
    "TypedStack",
    "TypedTaskStorage",
    "TypedUserRingBuffer",
    "UserRingBuffer",
    "XskMap",
    "num_possible_cpus",
    "socket_cookie",
    "typed",
]


def _publish() -> None:
    """Give every loaded public object its public path (reprs show typedmaps.MapHandle).

    Runs each time a public name is first loaded, over every public name
    whose module is loaded by then (also modules other modules imported).
    """
    g = globals()
    for name, mod in _LAZY.items():
        module = sys.modules.get(f"{__name__}.{mod}")
        if module is None:
            continue
        obj = getattr(module, name, None)
        if obj is None:
            continue
        g[name] = obj
        if getattr(obj, "__module__", "").startswith(f"{__name__}."):
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = __name__


class _Package(types.ModuleType):
    """The package's module type: a submodule never hides the public name it shares.

    ``typedmaps.typed`` is both the module and the function :func:`typed`.
    The import system binds a submodule to its parent's attribute when it
    is first imported, whoever imports it; this keeps the public object.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if not TYPE_CHECKING:
    # Hidden from type checkers: with a module __getattr__ in sight, mypy would
    # accept any attribute of the package, typos included.

    def __getattr__(name: str) -> object:
        mod = _LAZY.get(name)
        if mod is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        importlib.import_module(f"{__name__}.{mod}")
        _publish()
        return globals()[name]

    def __dir__() -> list[str]:
        return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
