"""typed(): the wrapper a map's type needs, with schemas from BTF when none are given."""

from __future__ import annotations

import errno as _errno
import importlib
from typing import TYPE_CHECKING, Any, TypeAlias, overload

from ..codec import Codec
from ..errors import NotSupportedError
from ..flags import MapType
from ..handle import MapHandle
from ._base import K, V, _wrapper_for

if TYPE_CHECKING:
    import construct

from .keyed import TypedMap
from .keyless import TypedBloomFilter, TypedQueue, TypedStack
from .percpu import PerCpuTypedMap

# ---------------------------------------------------------------------------- typed()

AnyTyped: TypeAlias = (
    "TypedMap[Any, Any] | PerCpuTypedMap[Any, Any] | TypedQueue[Any] "
    "| TypedStack[Any] | TypedBloomFilter[Any]"
)
"""Whatever :func:`typed` may return when the schemas come from BTF."""


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
    TypedQueue[V] | TypedStack[V] | TypedBloomFilter[V] | TypedMap[Any, V] | PerCpuTypedMap[Any, V]
): ...
@overload
def typed(
    handle: MapHandle,
    *,
    key: construct.Construct[K, K] | Codec[K],
) -> TypedMap[K, Any] | PerCpuTypedMap[K, Any]: ...
@overload
def typed(handle: MapHandle) -> AnyTyped: ...
def typed(handle: MapHandle, *, key: Any = None, value: Any = None) -> AnyTyped:
    """Wrap ``handle`` in the typed wrapper its map type needs.

    ==========================  ===========================
    map type                    returns
    ==========================  ===========================
    per-CPU (PERCPU_HASH, ...)  :class:`PerCpuTypedMap`
    QUEUE / STACK               :class:`TypedQueue` / :class:`TypedStack`
    BLOOM_FILTER                :class:`TypedBloomFilter`
    any other keyed map         :class:`TypedMap`
    ==========================  ===========================

    A schema not given comes from the map's BTF (``typedmaps.btf``), so
    ``typed(obj.maps["flows"])`` works for maps of a BPF object built with
    ``-g``. Keyless maps take only ``value=``.

    Static typing: the map type is known only at run time, so the return
    type is the union of the wrappers that fit the arguments given
    (``TypedMap[K, V] | PerCpuTypedMap[K, V]`` with both schemas; with no
    schemas every wrapper, element types Any). Narrow it with
    ``isinstance``, or call the wrapper class directly when you know the
    map type: that gives the exact type.

    Raises:
        NotSupportedError: the map type has no typed wrapper (RINGBUF, ...),
            ``key=`` was given for a keyless map, or a schema is missing and
            BTF schemas are not available.
        SizeMismatchError: a schema's size differs from the map's.
    """
    if not isinstance(handle, MapHandle):
        raise TypeError(f"typed() needs a MapHandle or Map, got {type(handle).__name__}")
    mt = handle.map_type
    wrapper = _wrapper_for(mt)
    if wrapper is None:
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"the {mt.name} map {handle.name!r} is not a key/value map: no typed wrapper fits",
        )
    keyless = mt.is_keyless
    if keyless and key is not None:
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"{mt.name} maps have no keys: pass only value= (or use {wrapper}(h, value=...))",
        )
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


def _btf_schemas(handle: MapHandle) -> tuple[Any, Any]:
    """The (key, value) schemas from the map's BTF, via typedmaps.btf (imported lazily)."""
    try:
        btf = importlib.import_module("typedmaps.btf")
    except ModuleNotFoundError as exc:
        if exc.name != "typedmaps.btf":
            raise
        raise NotSupportedError(
            _errno.EOPNOTSUPP,
            "typed",
            f"schemas are needed for the {handle.map_type.name} map {handle.name!r}: pass "
            "key= and value= (this typedmaps has no BTF schema support)",
        ) from None
    schemas: tuple[Any, Any] = btf.map_schemas(handle)
    return schemas
