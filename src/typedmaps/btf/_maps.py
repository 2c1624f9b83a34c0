"""A map's BTF and its key and value schemas; walking the types of a Btf."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import construct as cs

    from ..handle import MapHandle

from ._btf import Btf
from ._types import MODIFIERS, BtfError, BtfMember, BtfType, Kind

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


def map_types(handle: MapHandle) -> tuple[Btf, int, int] | None:
    """The BTF that describes a map's key and value, with their type ids.

    The kernel's BTF for the map when it keeps one with a value type. The
    kernel keeps QUEUE, STACK, BLOOM_FILTER and the event maps without BTF
    (libbpf creates them without it), so for a map of a
    :class:`~typedmaps.BpfObject` the declaration in the object's own BTF
    (its ``.maps`` section, ``__type(key, ...)`` and ``__type(value, ...)``)
    answers instead. None when neither has the types.

    Returns:
        ``(btf, key_type_id, value_type_id)``; a type id is 0 when only a
        size was declared.

    Raises:
        MapError: the BTF could not be loaded.
    """
    info = handle.info()
    if info.btf_id and info.btf_value_type_id:
        return Btf.from_kernel(info.btf_id), info.btf_key_type_id, info.btf_value_type_id
    raw_of = getattr(handle, "_object_btf", None)
    raw = raw_of() if raw_of is not None else None
    if raw is None:
        return None
    btf = Btf.from_bytes(raw)
    for d in btf.map_defs():
        if d.name == handle.name and d.value_type_id:
            return btf, d.key_type_id, d.value_type_id
    return None


def map_schemas(
    handle: MapHandle, btf: Btf | None = None
) -> tuple[cs.Construct[Any, Any] | None, cs.Construct[Any, Any]]:
    """Key and value schemas for a map, from its BTF (see :func:`map_types`).

    Args:
        handle: an open map (any :class:`~typedmaps.MapHandle`).
        btf: the map's BTF when the caller already loaded it (the kernel's).

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
    key_id, value_id = info.btf_key_type_id, info.btf_value_type_id
    if btf is None:
        found = map_types(handle)
        if found is None:
            btf = map_btf(handle)  # no BTF anywhere: its error says so
        else:
            btf, key_id, value_id = found
    if not value_id:
        raise BtfError("value", f"map {info.name!r} (id {info.id}) has BTF but no value type")
    value = btf.schema(value_id, "value", size=info.value_size)
    key: cs.Construct[Any, Any] | None
    if info.map_type.is_keyless or info.key_size == 0:
        key = None
    elif key_id:
        key = btf.schema(key_id, "key", size=info.key_size)
    else:
        import construct as cs

        key = cs.Bytes(info.key_size)
    return key, value


def iter_types(btf: Btf, kinds: frozenset[Kind] | None = None) -> Iterator[BtfType]:
    """Every type of ``btf`` (of ``kinds`` when given), in id order."""
    for t in btf.types[1:]:
        if kinds is None or t.kind in kinds:
            yield t


# ---------------------------------------------------------------------------- types by name

#: Kinds a record type can be, in the order a bare name is looked up.
_DATA_KINDS: Final = (Kind.STRUCT, Kind.UNION, Kind.TYPEDEF, Kind.ENUM, Kind.ENUM64, Kind.INT)
_PREFIXES: Final = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": Kind.ENUM}


def named_type(btf: Btf, name: str) -> BtfType:
    """A data type of ``btf`` by its C name: ``"event"``, ``"struct event"``, ``"__u32"``.

    A bare name is looked up as a struct, then a union, a typedef, an enum
    and an integer type; ``struct``/``union``/``enum`` in front pick the kind.

    Raises:
        BtfError: no such type (the message lists some names that exist).
    """
    if not isinstance(name, str) or not name.strip():
        raise BtfError("type", f"a type name is needed, got {name!r}")
    words = name.split()
    kinds: tuple[Kind, ...] = _DATA_KINDS
    if len(words) == 2 and words[0] in _PREFIXES:
        kinds = (_PREFIXES[words[0]], Kind.ENUM64) if words[0] == "enum" else (_PREFIXES[words[0]],)
        words = words[1:]
    if len(words) != 1:
        raise BtfError("type", f"{name!r} is not a C type name")
    want = words[0]
    by_kind: dict[Kind, BtfType] = {}
    for t in btf.types[1:]:
        if t.name == want and t.kind in kinds and t.kind not in by_kind:
            by_kind[t.kind] = t
    for k in kinds:
        if k in by_kind:
            return by_kind[k]
    known = sorted({t.name for t in btf.types[1:] if t.name and t.kind in _DATA_KINDS})
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    raise BtfError("type", f"no type named {name!r} in the BTF (it has: {shown or 'none'})")


def named_schema(btf: Btf, name: str, what: str = "value") -> cs.Construct[Any, Any]:
    """The record schema of the type named ``name`` (see :func:`named_type`).

    A struct whose last member is a flexible array (``__u8 data[];``) is a
    record of variable size: its schema is the members before the array,
    up to the array's offset, then the rest of the record: ``GreedyBytes``
    for an array of bytes, ``GreedyRange`` of the element otherwise (what
    :class:`~typedmaps.TypedRingBuffer` decodes as a fixed head and a tail).

    Raises:
        BtfError: no such type, or one that cannot be encoded.
    """
    t = named_type(btf, name)
    if t.kind in MODIFIERS and not t.ref:
        raise BtfError(what, f"{name!r} names void")
    flex = _flexible_tail(btf, btf.resolve(t.id), what)
    if flex is not None:
        return flex
    return btf.schema(t.id, what)


def flexible_member(btf: Btf, t: BtfType, path: str = "type") -> BtfMember | None:
    """The last member of a (resolved) struct when it is a flexible array, else None.

    Such a struct is a record of variable size: a head of the members
    before it (``last.bit_offset // 8`` bytes), then any number of elements
    (an array of elements without bytes is no tail: it is always empty).
    """
    if t.kind is not Kind.STRUCT or not t.members:
        return None
    last = t.members[-1]
    arr = btf.resolve(last.type_id)
    if arr.kind is not Kind.ARRAY or arr.nelems != 0 or last.bit_offset % 8:
        return None
    if not btf.size_of(arr.elem, path):
        return None  # elements without bytes: a greedy tail would never end; it is []
    return last


def _flexible_tail(btf: Btf, t: BtfType, path: str) -> cs.Construct[Any, Any] | None:
    """Head + greedy tail for a struct ending in a flexible array member, else None."""
    last = flexible_member(btf, t, path)
    if last is None:
        return None
    arr = btf.resolve(last.type_id)
    import construct as cs  # only here: reading BTF alone never loads construct

    offset = last.bit_offset // 8
    head = dataclasses.replace(t, members=t.members[:-1], size=offset, vlen=t.vlen - 1)
    fields = btf._struct_schema(head, path).subcons
    name = last.name or "tail"
    elem = btf.resolve(arr.elem)
    tail: cs.Construct[Any, Any]
    if elem.kind is Kind.INT and elem.size == 1:
        tail = cs.GreedyBytes
    else:
        tail = cs.GreedyRange(btf.schema(arr.elem, f"{path}.{name}[]"))
    return cs.Struct(*fields, name / tail)


def object_btf(handle: MapHandle) -> Btf:
    """The BTF with a map's types: its BpfObject's, or the kernel's for the map.

    A map of a :class:`~typedmaps.BpfObject` gets the object's BTF, which
    has every type of the program even when the kernel keeps the map
    without BTF (ring buffers, perf event arrays, queues); any other handle
    gets the BTF the kernel keeps with the map.

    Raises:
        BtfError: neither has BTF.
    """
    raw_of = getattr(handle, "_object_btf", None)
    if raw_of is not None:
        raw = raw_of()
        if raw is not None:
            return Btf.from_bytes(raw)
    return map_btf(handle)
