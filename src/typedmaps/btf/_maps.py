"""A map's BTF and its key and value schemas; walking the types of a Btf."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import construct as cs

if TYPE_CHECKING:
    from ..handle import MapHandle

from ._btf import Btf
from ._types import BtfError, BtfType, Kind

# ---------------------------------------------------------------------------- maps


def map_btf(handle: MapHandle) -> Btf:
    """The BTF the kernel keeps for a map.

    Raises:
        BtfError: the map has no BTF.
        MapError: loading it failed.
    """
    info = handle.info()
    if not info.btf_id:
        raise BtfError(
            "map",
            f"map {info.name!r} (id {info.id}) has no BTF: pass key= and value= schemas",
        )
    return Btf.from_kernel(info.btf_id)


def map_schemas(
    handle: MapHandle, btf: Btf | None = None
) -> tuple[cs.Construct[Any, Any] | None, cs.Construct[Any, Any]]:
    """Key and value schemas for a map, from the BTF the kernel keeps for it.

    Args:
        handle: an open map (any :class:`~typedmaps.MapHandle`).
        btf: the map's BTF when the caller already loaded it.

    Returns:
        ``(key, value)``: key is None for keyless maps (QUEUE, STACK,
        BLOOM_FILTER). For per-CPU maps the value schema is one CPU's value.
        A map whose BTF names no key type (key type id 0) gets raw
        ``Bytes(key_size)`` keys.

    Raises:
        BtfError: no BTF, a struct_ops map, or an unsupported type (the
            message names the field path, e.g. ``value.hdr.data[]``).
        SizeMismatchError: the BTF type's size differs from the map's.
        MapError: the BTF could not be loaded.
    """
    info = handle.info()
    if info.btf_vmlinux_value_type_id:
        raise BtfError(
            "value", f"map {info.name!r} uses kernel (vmlinux) BTF for its value: not supported"
        )
    if btf is None:
        btf = map_btf(handle)
    if not info.btf_value_type_id:
        raise BtfError("value", f"map {info.name!r} (id {info.id}) has BTF but no value type")
    value = btf.schema(info.btf_value_type_id, "value", size=info.value_size)
    key: cs.Construct[Any, Any] | None
    if info.map_type.is_keyless or info.key_size == 0:
        key = None
    elif info.btf_key_type_id:
        key = btf.schema(info.btf_key_type_id, "key", size=info.key_size)
    else:
        key = cs.Bytes(info.key_size)
    return key, value


def iter_types(btf: Btf, kinds: frozenset[Kind] | None = None) -> Iterator[BtfType]:
    """Every type of ``btf`` (of ``kinds`` when given), in id order."""
    for t in btf.types[1:]:
        if kinds is None or t.kind in kinds:
            yield t
