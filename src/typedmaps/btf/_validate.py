"""How BTF types refer to each other, checked as the kernel's BTF verifier resolves them.

:func:`check_types` runs after every record was decoded (:mod:`._parse`) and
applies what ``btf_resolve()`` in kernel/bpf/btf.c checks, without recursion:

- every type id a record names exists;
- no loop, and no chain deeper than :data:`MAX_DEPTH` (the kernel's
  MAX_RESOLVE_DEPTH), of pointers and modifiers, nor of modifiers, arrays,
  struct and union members and variables (a struct may refer to itself
  through a pointer only);
- arrays, members and variables have a type with a size; an array's index
  type is an integer and its size ``nelems * elem size`` fits in 32 bits;
  every member (a bitfield by its bits) lies inside its struct or union;
- a FUNC names a FUNC_PROTO; a DECL_TAG tags a struct, union, variable,
  function or typedef, and its component index names a member or parameter.

So everything that walks the types afterwards (sizes, layouts, schemas,
formatting, code generation) meets finite, bounded chains only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ._types import MODIFIERS, POINTER_SIZE, BtfError, BtfType, Kind

if TYPE_CHECKING:
    from ._btf import Btf

#: How deep types may nest: twice what vmlinux needs (33). Everything that
#: recurses over BTF stays inside Python's recursion limit at this depth.
MAX_DEPTH: Final = 64
_U32_MAX: Final = 0xFFFFFFFF
_SIZED: Final = frozenset({Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.STRUCT, Kind.UNION, Kind.FLOAT})
_TAGGABLE: Final = frozenset({Kind.STRUCT, Kind.UNION, Kind.VAR, Kind.FUNC, Kind.TYPEDEF})


def _refs(t: BtfType) -> list[tuple[int, str]]:
    """Every type id the record names, with what it is for (for messages)."""
    k = t.kind
    if k is Kind.ARRAY:
        return [(t.elem, "element type"), (t.index, "index type")]
    if k in (Kind.STRUCT, Kind.UNION):
        return [(m.type_id, f"member {i} type") for i, m in enumerate(t.members)]
    if k is Kind.DATASEC:
        return [(m.type_id, f"variable {i}") for i, m in enumerate(t.members)]
    if k is Kind.FUNC_PROTO:
        return [(t.ref, "return type")] + [
            (p, f"parameter {i} type") for i, (_, p) in enumerate(t.params)
        ]
    if k in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.FWD):
        return []
    return [(t.ref, "type")]


def _chain(types: list[BtfType], t: BtfType) -> list[int]:
    """Pointer chains: a pointer or modifier needs its target resolved first only
    when that is a pointer or modifier too (``struct list { struct list *next; }``
    is fine: a struct ends the chain)."""
    if t.kind is Kind.PTR or t.kind in MODIFIERS:
        target = types[t.ref]
        if t.ref and (target.kind is Kind.PTR or target.kind in MODIFIERS):
            return [t.ref]
    return []


def _layout(types: list[BtfType], t: BtfType) -> list[int]:
    """Layout chains: what a type's size and layout are made of (a pointer ends one)."""
    k = t.kind
    if k in MODIFIERS or k is Kind.VAR:
        return [t.ref] if t.ref else []
    if k is Kind.ARRAY:
        return [t.elem]
    if k in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
        return [m.type_id for m in t.members if m.type_id]
    return []


def _fail(t: BtfType, why: str) -> BtfError:
    named = f" {t.name!r}" if t.name else ""
    return BtfError("btf", f"type id {t.id} ({t.kind.name}{named}): {why}")


def check_types(types: list[BtfType]) -> None:
    """Check the references between decoded types (see the module doc).

    Raises:
        BtfError: the first broken rule, naming the type id and what is wrong.
    """
    n = len(types)
    for t in types[1:]:
        for ref, what in _refs(t):
            if not 0 <= ref < n:
                raise _fail(t, f"its {what} is type id {ref}, which does not exist ({n} types)")
    _resolve_order(types, _chain)
    order = _resolve_order(types, _layout)
    sizes: list[int | None] = [None] * n
    for tid in order:
        sizes[tid] = _size(types, types[tid], sizes)
    for t in types[1:]:
        if t.kind in (Kind.STRUCT, Kind.UNION):
            _check_members(types, t, sizes)
        elif t.kind is Kind.FUNC and types[t.ref].kind is not Kind.FUNC_PROTO:
            raise _fail(t, f"type id {t.ref} is not a function prototype")
        elif t.kind is Kind.DECL_TAG:
            _check_tag(types, t)


def _resolve_order(
    types: list[BtfType], edges: Callable[[list[BtfType], BtfType], list[int]]
) -> list[int]:
    """Type ids children first along ``edges``; raises on a loop or a chain deeper than MAX_DEPTH.

    Pointer chains and layout chains are walked apart, as the kernel does
    (its resolve modes): a pointer ends a layout chain and a struct ends a
    pointer chain, so ``struct nla_policy`` pointing to itself through a
    member union is no loop.
    """
    n = len(types)
    state = bytearray(n)  # 0 new, 1 on the stack, 2 done
    depth = [0] * n
    order: list[int] = []
    for root in range(1, n):
        if state[root]:
            continue
        stack: list[tuple[int, list[int], int]] = [(root, edges(types, types[root]), 0)]
        state[root] = 1
        while stack:
            tid, kids, i = stack[-1]
            if i < len(kids):
                stack[-1] = (tid, kids, i + 1)
                kid = kids[i]
                if state[kid] == 1:
                    loop = [s[0] for s in stack]
                    loop = [*loop[loop.index(kid) :], kid]
                    shown = " -> ".join(str(x) for x in loop)
                    raise _fail(types[kid], f"a loop through types {shown}")
                if state[kid] == 0:
                    state[kid] = 1
                    stack.append((kid, edges(types, types[kid]), 0))
                continue
            stack.pop()
            state[tid] = 2
            depth[tid] = 1 + max((depth[k] for k in kids), default=0)
            if depth[tid] > MAX_DEPTH:
                raise _fail(types[tid], f"types nest more than {MAX_DEPTH} deep")
            order.append(tid)
    return order


def _size(types: list[BtfType], t: BtfType, sizes: list[int | None]) -> int | None:
    """The byte size of ``t`` given its children's, or None for a type without one."""
    k = t.kind
    if k in _SIZED or k is Kind.DATASEC:
        return t.size
    if k is Kind.PTR:
        return POINTER_SIZE
    if k in MODIFIERS:
        return sizes[t.ref] if t.ref else None
    if k is Kind.ARRAY:
        esz = sizes[t.elem]
        if esz is None:
            raise _fail(t, f"its element type {t.elem} has no size")
        index = types[t.index]
        hops = 0
        while index.kind in MODIFIERS and hops <= MAX_DEPTH:
            index = types[index.ref]
            hops += 1
        if index.kind is not Kind.INT:
            raise _fail(t, f"its index type {t.index} is not an integer")
        total = esz * t.nelems
        if total > _U32_MAX:
            raise _fail(t, f"{t.nelems} elements of {esz} bytes overflow 32 bits")
        return total
    if k is Kind.VAR:
        size = sizes[t.ref]
        if size is None:
            raise _fail(t, f"its type {t.ref} has no size")
        return size
    return None


def _check_members(types: list[BtfType], t: BtfType, sizes: list[int | None]) -> None:
    limit = t.size * 8
    for i, m in enumerate(t.members):
        size = sizes[m.type_id] if m.type_id else None
        if size is None:
            raise _fail(t, f"member {i} has type {m.type_id}, which has no size")
        if t.kflag:
            off, width = m.bit_offset & 0xFFFFFF, m.bit_offset >> 24
        else:
            off, width = m.bit_offset, 0
            base = types[m.type_id]
            hops = 0
            while base.kind in MODIFIERS and hops <= MAX_DEPTH:
                base = types[base.ref]
                hops += 1
            if base.kind is Kind.INT and (base.int_offset or base.int_bits != base.size * 8):
                off, width = off + base.int_offset, base.int_bits
        if width:
            if width > 8 * size:
                raise _fail(t, f"member {i}: a {width}-bit field of a {size}-byte type")
            end = off + width
        else:
            end = off + 8 * size
        if end > limit:
            raise _fail(t, f"member {i} ends at bit {end}, past the {t.size}-byte size")


def _check_tag(types: list[BtfType], t: BtfType) -> None:
    target = types[t.ref]
    if target.kind not in _TAGGABLE:
        raise _fail(t, f"it tags type {t.ref}, a {target.kind.name}, which cannot be tagged")
    idx = t.linkage
    if idx == _U32_MAX:
        return
    if target.kind in (Kind.STRUCT, Kind.UNION):
        count = len(target.members)
    elif target.kind is Kind.FUNC:
        count = len(types[target.ref].params)
    else:
        raise _fail(t, f"component index {idx} on a {target.kind.name}")
    if idx >= count:
        raise _fail(t, f"component index {idx} of type {t.ref}, which has {count}")


# ---------------------------------------------------------------------------- .BTF.ext

#: (name, smallest record size) of the .BTF.ext info sections, in header order.
_EXT_SECTIONS: Final = (("func_info", 8), ("line_info", 16), ("core_relo", 16))
_CORE_RELO_KINDS: Final = 13  # BPF_CORE_FIELD_BYTE_OFFSET .. BPF_CORE_TYPE_MATCHES


def check_btf_ext(data: bytes, btf: Btf, section_names: set[str] | None = None) -> None:
    """Check a ``.BTF.ext`` section against its object's ``.BTF``.

    The header (magic, version 1, no flags, a length inside the data that
    covers the func_info and line_info fields), each info section (4-byte
    aligned, inside the data, a record size at least the smallest libbpf
    knows and a multiple of 4, at least one record, and sub-sections whose
    counts exactly fill it), and in each record the type ids and string
    offsets it names. ``section_names``, when given, are the ELF section
    names each sub-section's name must be one of.

    Raises:
        ValueError: what is wrong (the caller names the file).
    """
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes are too short for a header")
    magic, version, flags, hdr_len = struct.unpack_from("<HBBI", data)
    if magic != 0xEB9F:
        raise ValueError(f"bad magic {data[:2].hex()}")
    if version != 1 or flags:
        raise ValueError(f"version {version}, flags {flags:#x} (must be 1 and 0)")
    if hdr_len < 24 or hdr_len > len(data):
        raise ValueError(f"header length {hdr_len} in {len(data)} bytes")
    fields = struct.unpack_from(f"<{(min(hdr_len, 32) - 8) // 4}I", data, 8)
    body = data[hdr_len:]
    ntypes = len(btf.types)
    nstrings = len(btf._strings)
    for i, (what, min_rec) in enumerate(_EXT_SECTIONS):
        if 2 * i + 1 >= len(fields):
            break
        off, length = fields[2 * i], fields[2 * i + 1]
        if not length:
            continue
        if off % 4:
            raise ValueError(f"{what} at offset {off} is not 4-byte aligned")
        if off > len(body) or length > len(body) - off:
            raise ValueError(f"{what} ({length} bytes at {off}) runs past the end ({len(body)})")
        sec = body[off : off + length]
        if length < 4:
            raise ValueError(f"{what} has no record size")
        (rec,) = struct.unpack_from("<I", sec)
        if rec < min_rec or rec % 4:
            raise ValueError(f"{what} record size {rec} (at least {min_rec}, a multiple of 4)")
        pos = 4
        if pos == length:
            raise ValueError(f"{what} has no records")
        while pos < length:
            if length - pos < 8:
                raise ValueError(f"{what}: a truncated sub-section header at {pos}")
            name_off, count = struct.unpack_from("<II", sec, pos)
            pos += 8
            if name_off >= nstrings:
                raise ValueError(f"{what}: section name offset {name_off} outside .BTF strings")
            if section_names is not None:
                end = btf._strings.find(b"\0", name_off)
                name = btf._strings[name_off:end].decode("utf-8", "replace")
                if name not in section_names:
                    raise ValueError(f"{what}: names section {name!r}, which the object lacks")
            if not count or count * rec > length - pos:
                raise ValueError(f"{what}: {count} records of {rec} bytes do not fit at {pos}")
            for j in range(count):
                _check_ext_record(what, sec, pos + j * rec, ntypes, nstrings)
            pos += count * rec


def _check_ext_record(what: str, sec: bytes, pos: int, ntypes: int, nstrings: int) -> None:
    if what == "func_info":
        _insn, type_id = struct.unpack_from("<II", sec, pos)
        if type_id >= ntypes:
            raise ValueError(f"func_info at {pos}: type id {type_id} of {ntypes}")
    elif what == "line_info":
        _insn, file_off, line_off, _col = struct.unpack_from("<IIII", sec, pos)
        if file_off >= nstrings or line_off >= nstrings:
            raise ValueError(f"line_info at {pos}: a string offset outside .BTF strings")
    else:
        _insn, type_id, access, kind = struct.unpack_from("<IIII", sec, pos)
        if type_id >= ntypes or access >= nstrings or kind >= _CORE_RELO_KINDS:
            raise ValueError(f"core_relo at {pos}: type {type_id}, access {access}, kind {kind}")
