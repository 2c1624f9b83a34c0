"""A schema given for a map that has BTF, checked against the BTF layout once, at wrapping.

A record of the right size can still be wrong: padding in the wrong place
(``Int8ul, Int32ul, Padding(3)`` for C's ``__u8 a; __u32 b;``, which puts
three bytes of padding *before* ``b``) reads every later field from the
wrong bytes, and the size check cannot see it. So when a typed wrapper is
made over a map whose key or value type is known from BTF (the kernel's,
or the map's declaration in its BpfObject), the fields of the schema are
compared with the members of the C struct, by name:

- a field whose name is a member's (or a member's with ``_`` appended, as
  ``typedmaps gen`` renames ``from`` to ``from_``) must start at the
  member's offset and have its size;
- nested structs are compared the same way, field by field;
- names the BTF does not have (``_pad``, fields of your own naming),
  bitfields, unions and schema parts whose size depends on the data are
  not compared: the check only refuses what it can prove wrong.

A map without BTF, or whose BTF cannot be read, is not checked (the size
check still applies). The cost is paid once per wrapper: one
BPF_OBJ_GET_INFO_BY_FD and reading the BTF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import construct as cs

from ..errors import LayoutMismatchError, TypedMapsError

if TYPE_CHECKING:
    from ..btf import Btf
    from ..codec import Codec
    from ..handle import MapHandle

#: How deep nested structs are compared (a schema is finite; BTF is bounded
#: by its own validation, this keeps the walk bounded regardless).
_MAX_DEPTH = 16


def check_layout(
    handle: MapHandle, key: Codec[Any] | None, value: Codec[Any], wrapper: str
) -> None:
    """Compare ``key``/``value`` schemas with the map's BTF types; raise on a misplaced field.

    Raises:
        LayoutMismatchError: a field's offset or size differs from the BTF member's.
    """
    from .factory import _btf_module

    btf_module = _btf_module()
    if btf_module is None:
        return  # a typedmaps without BTF support: nothing to compare with
    try:
        found = btf_module.map_types(handle)
    except TypedMapsError:
        return  # no readable BTF: nothing to compare with (sizes were checked)
    if found is None:
        return
    btf, key_id, value_id = found
    for codec, type_id, what in ((key, key_id, "key"), (value, value_id, "value")):
        if codec is None or not type_id:
            continue
        where = (
            f"{what} schema {codec.name} of {wrapper} over the "
            f"{handle.map_type.name} map {handle.name!r}"
        )
        _compare(btf, type_id, codec.schema, what, where, depth=0)


def _unwrap(sc: Any) -> Any:
    """The construct under names and adapters (DataclassStruct is an Adapter over a Struct)."""
    for _ in range(_MAX_DEPTH):
        if isinstance(sc, cs.Renamed | cs.Adapter):
            sc = sc.subcon
        else:
            break
    return sc


def _fields(struct: cs.Struct) -> list[tuple[str, int, int, Any]] | None:
    """``(name, offset, size, construct)`` of each named field, or None if offsets are unknown."""
    out: list[tuple[str, int, int, Any]] = []
    pos = 0
    for sc in struct.subcons:
        inner = _unwrap(sc)
        if any(hasattr(inner, h) for h in _OVERLAYS) or isinstance(inner, _NOT_SEQUENTIAL):
            return None  # union members, bitfield runs, seeks: not one field after another
        try:
            size = int(sc.sizeof())
        except (cs.ConstructError, TypeError, ValueError, KeyError, AttributeError):
            return None
        if sc.name:
            out.append((str(sc.name), pos, size, inner))
        pos += size
    return out


#: Constructs that read bytes without consuming them in order (typedmaps.btf's
#: union members and bitfields announce themselves by these fast-plan hooks).
_OVERLAYS = ("typedmaps_fast_overlay", "typedmaps_fast_group_end")
_NOT_SEQUENTIAL = (cs.Union, cs.Pointer, cs.Peek, cs.Seek, cs.Lazy)


def _compare(btf: Btf, type_id: int, schema: Any, path: str, where: str, *, depth: int) -> None:
    from ..btf import FieldSlot, Kind

    t = btf.resolve(type_id)
    inner = _unwrap(schema)
    if t.kind is not Kind.STRUCT or not isinstance(inner, cs.Struct) or depth > _MAX_DEPTH:
        return
    fields = _fields(inner)
    if fields is None:
        return
    members = {s.name: s for s in btf.layout(t, path) if isinstance(s, FieldSlot) and s.name}
    for name, offset, size, sub in fields:
        slot = members.get(name)
        if slot is None and name.endswith("_"):
            slot = members.get(name[:-1])
        if slot is None:
            continue
        field = f"{path}.{name}"
        c_name = f"{'struct ' + t.name if t.name else 'the anonymous struct'}"
        if offset != slot.offset:
            raise LayoutMismatchError(
                where,
                field,
                offset,
                slot.offset,
                f"is at offset {offset} in the schema, at offset {slot.offset} in the "
                f"map's BTF ({c_name}): padding in the wrong place?",
            )
        if size != slot.size:
            raise LayoutMismatchError(
                where,
                field,
                offset,
                slot.offset,
                f"is {size} bytes in the schema, {slot.size} bytes in the map's BTF "
                f"({c_name}, both at offset {offset})",
            )
        _compare(btf, slot.type_id, sub, field, where, depth=depth + 1)
