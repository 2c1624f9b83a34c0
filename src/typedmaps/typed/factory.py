"""typed(): the wrapper a map's type needs, with schemas from BTF when none are given."""

from __future__ import annotations

import errno as _errno
import importlib
from typing import TYPE_CHECKING, Any, Final, TypeAlias, overload

from .._args import bad
from ..codec import Codec
from ..errors import NotSupportedError
from ..flags import MapType
from ..handle import MapHandle
from ._base import _STREAMS, K, V, _wrapper_for

if TYPE_CHECKING:
    import construct

from .events import TypedPerfBuffer, TypedRingBuffer, TypedUserRingBuffer
from .keyed import TypedMap
from .keyless import TypedBloomFilter, TypedQueue, TypedStack
from .of_maps import CpuMap, DevMap, MapOfMaps, ProgramArray, SockMap, XskMap
from .percpu import PerCpuTypedMap
from .storage import TypedCgroupStorage, TypedInodeStorage, TypedSkStorage, TypedTaskStorage

# ---------------------------------------------------------------------------- typed()

AnyTyped: TypeAlias = (
    "TypedMap[Any, Any] | PerCpuTypedMap[Any, Any] | TypedQueue[Any] "
    "| TypedStack[Any] | TypedBloomFilter[Any] | TypedRingBuffer[Any] | TypedPerfBuffer[Any] "
    "| TypedUserRingBuffer[Any] | MapOfMaps[Any] | ProgramArray | DevMap[Any] | CpuMap "
    "| SockMap[Any] | XskMap | TypedTaskStorage[Any] | TypedSkStorage[Any] "
    "| TypedCgroupStorage[Any] | TypedInodeStorage[Any]"
)
"""Whatever :func:`typed` may return when the schemas come from BTF."""

#: Map types whose values are kernel objects: their wrappers take no value
#: schema (and a key schema only where keys are not indices).
_OBJECT_VALUED: Final[dict[MapType, type[Any]]] = {
    MapType.ARRAY_OF_MAPS: MapOfMaps,
    MapType.HASH_OF_MAPS: MapOfMaps,
    MapType.PROG_ARRAY: ProgramArray,
    MapType.DEVMAP: DevMap,
    MapType.DEVMAP_HASH: DevMap,
    MapType.CPUMAP: CpuMap,
    MapType.SOCKMAP: SockMap,
    MapType.SOCKHASH: SockMap,
    MapType.XSKMAP: XskMap,
}
#: Their map types whose keys are not indices (key= applies).
_FREE_KEYS: Final = frozenset(
    {MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.DEVMAP_HASH, MapType.SOCKHASH}
)
#: Local storage: keyed by kernel objects (value= only).
_STORAGE: Final[dict[MapType, type[Any]]] = {
    MapType.TASK_STORAGE: TypedTaskStorage,
    MapType.SK_STORAGE: TypedSkStorage,
    MapType.CGRP_STORAGE: TypedCgroupStorage,
    MapType.INODE_STORAGE: TypedInodeStorage,
}


@overload
def typed(
    handle: MapHandle,
    *,
    key: construct.Construct[K, K] | Codec[K],
    value: construct.Construct[V, V] | Codec[V],
) -> TypedMap[K, V] | PerCpuTypedMap[K, V]: ...
@overload
def typed(
    handle: MapHandle,
    *,
    value: construct.Construct[V, V] | Codec[V],
) -> (
    TypedQueue[V]
    | TypedStack[V]
    | TypedBloomFilter[V]
    | TypedMap[Any, V]
    | PerCpuTypedMap[Any, V]
    | TypedRingBuffer[V]
    | TypedPerfBuffer[V]
    | TypedUserRingBuffer[V]
    | TypedTaskStorage[V]
    | TypedSkStorage[V]
    | TypedCgroupStorage[V]
    | TypedInodeStorage[V]
): ...
@overload
def typed(
    handle: MapHandle,
    *,
    key: construct.Construct[K, K] | Codec[K],
) -> TypedMap[K, Any] | PerCpuTypedMap[K, Any] | MapOfMaps[K] | DevMap[K] | SockMap[K]: ...
@overload
def typed(handle: MapHandle, *, key: str | None = None, value: str | None = None) -> AnyTyped: ...
def typed(handle: MapHandle, *, key: Any = None, value: Any = None) -> AnyTyped:
    """Wrap ``handle`` in the typed wrapper its map type needs.

    ==========================  ===========================
    map type                    returns
    ==========================  ===========================
    per-CPU (PERCPU_HASH, ...)  :class:`PerCpuTypedMap`
    QUEUE / STACK               :class:`TypedQueue` / :class:`TypedStack`
    BLOOM_FILTER                :class:`TypedBloomFilter`
    RINGBUF                     :class:`TypedRingBuffer`
    PERF_EVENT_ARRAY            :class:`TypedPerfBuffer`
    USER_RINGBUF                :class:`TypedUserRingBuffer`
    TASK/SK/CGRP/INODE_STORAGE  :class:`TypedTaskStorage` ... (``value=`` only)
    ARRAY/HASH_OF_MAPS          :class:`MapOfMaps` (``key=`` only)
    PROG_ARRAY                  :class:`ProgramArray` (no schemas)
    DEVMAP, DEVMAP_HASH         :class:`DevMap` (DEVMAP_HASH: ``key=`` only)
    CPUMAP, XSKMAP              :class:`CpuMap`, :class:`XskMap` (no schemas)
    SOCKMAP, SOCKHASH           :class:`SockMap` (SOCKHASH: ``key=`` only)
    any other keyed map         :class:`TypedMap`
    ==========================  ===========================

    A schema not given comes from the map's BTF (``typedmaps.btf``), so
    ``typed(obj.maps["flows"])`` works for maps of a BPF object built with
    ``-g``. Keyless maps and event streams take only ``value=``. A schema
    may also be the name of a type in the BTF (``value="event"``,
    ``value="struct event"``): event streams need that or a schema, since
    the kernel keeps no record type for them; the name is looked up in the
    BpfObject's BTF for an object's map, else in the BTF the kernel keeps
    with the map.

    Static typing: the map type is known only at run time, so the return
    type is the union of the wrappers that fit the arguments given
    (``TypedMap[K, V] | PerCpuTypedMap[K, V]`` with both schemas; with no
    schemas, or names, every wrapper, element types Any). Narrow it with
    ``isinstance``, or call the wrapper class directly when you know the
    map type: that gives the exact type.

    Raises:
        NotSupportedError: the map type has no typed wrapper (ARENA, ...),
            ``key=`` was given for a keyless map or an event stream, or a
            schema is missing and BTF schemas are not available.
        BtfError: a type name is not in the BTF (or the map has none).
        SizeMismatchError: a schema's size differs from the map's.
    """
    if not isinstance(handle, MapHandle):
        raise bad("typed", "handle", handle, "a MapHandle or Map")
    mt = handle.map_type
    if mt in _STORAGE or mt in _OBJECT_VALUED:
        return _object_wrapper(handle, key, value)
    wrapper = _wrapper_for(mt)
    if wrapper is None:
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"the {mt.name} map {handle.name!r} is not a key/value map: no typed wrapper fits",
        )
    stream = mt in _STREAMS
    keyless = mt.is_keyless or stream
    if keyless and key is not None:
        what = "carry records, not keys" if stream else "have no keys"
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"{mt.name} maps {what}: pass only value= (or use {wrapper}(h, value=...))",
        )
    if isinstance(key, str) or isinstance(value, str):
        key, value = _named_schemas(handle, key, value)
    if stream:
        if value is None:
            raise NotSupportedError(
                _errno.EINVAL,
                "typed",
                f"the kernel keeps no record type for the {mt.name} map {handle.name!r}: pass "
                'value= a schema, or the name of a type in the object\'s BTF (value="event")',
            )
        if mt is MapType.RINGBUF:
            return TypedRingBuffer(handle, value=value)
        if mt is MapType.PERF_EVENT_ARRAY:
            return TypedPerfBuffer(handle, value=value)
        return TypedUserRingBuffer(handle, value=value)
    if value is None or (key is None and not keyless):
        btf_key, btf_value = _btf_schemas(handle)
        value = btf_value if value is None else value
        if key is None and not keyless:
            if btf_key is None:
                raise NotSupportedError(
                    _errno.EINVAL, "typed", f"no key schema for the {mt.name} map {handle.name!r}"
                )
            key = btf_key
    if mt is MapType.QUEUE:
        return TypedQueue(handle, value=value)
    if mt is MapType.STACK:
        return TypedStack(handle, value=value)
    if mt is MapType.BLOOM_FILTER:
        return TypedBloomFilter(handle, value=value)
    if mt.is_percpu:
        return PerCpuTypedMap(handle, key=key, value=value)
    return TypedMap(handle, key=key, value=value)


def _object_wrapper(handle: MapHandle, key: Any, value: Any) -> AnyTyped:
    """The wrapper of a map keyed or valued by kernel objects (storage, fd-valued maps)."""
    mt = handle.map_type
    storage = _STORAGE.get(mt)
    if storage is not None:
        if key is not None:
            raise NotSupportedError(
                _errno.EINVAL,
                "typed",
                f"{mt.name} maps are keyed by kernel objects: pass only value= "
                f"(or use {storage.__name__}(h, value=...))",
            )
        if isinstance(value, str):
            _, value = _named_schemas(handle, None, value)
        made: AnyTyped = storage(handle) if value is None else storage(handle, value=value)
        return made
    wrapper = _OBJECT_VALUED[mt]
    if value is not None or (key is not None and mt not in _FREE_KEYS):
        what = "value=" if value is not None else "key="
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"{mt.name} values are kernel objects (use {wrapper.__name__}): {what} does not apply",
        )
    if isinstance(key, str):
        key, _ = _named_schemas(handle, key, None)
    made = wrapper(handle) if key is None else wrapper(handle, key=key)
    return made


def _btf_module() -> Any:
    try:
        return importlib.import_module("typedmaps.btf")
    except ModuleNotFoundError as exc:
        if exc.name != "typedmaps.btf":
            raise
        return None


def _named_schemas(handle: MapHandle, key: Any, value: Any) -> tuple[Any, Any]:
    """Schemas for the arguments that are type names, from the BTF that has the map's types."""
    btf = _btf_module()
    if btf is None:
        raise NotSupportedError(
            _errno.EOPNOTSUPP, "typed", "type names need BTF support (typedmaps.btf)"
        )
    types = btf.object_btf(handle)
    if isinstance(key, str):
        key = btf.named_schema(types, key, "key")
    if isinstance(value, str):
        value = btf.named_schema(types, value, "value")
    return key, value


def _btf_schemas(handle: MapHandle) -> tuple[Any, Any]:
    """The (key, value) schemas from the map's BTF, via typedmaps.btf (imported lazily)."""
    btf = _btf_module()
    if btf is None:
        raise NotSupportedError(
            _errno.EOPNOTSUPP,
            "typed",
            f"schemas are needed for the {handle.map_type.name} map {handle.name!r}: pass "
            "key= and value= (this typedmaps has no BTF schema support)",
        )
    schemas: tuple[Any, Any] = btf.map_schemas(handle)
    return schemas
