"""bpftool-style formatting: a BTF-typed value as the JSON that ``bpftool map dump -j`` shows.

``format_type(btf, type_id, data)`` turns the bytes of one key or value into
a tree of :class:`JObj` (JSON objects as ordered pairs: bpftool repeats the
name ``""`` for anonymous members), lists, str, int, float, bool; ``dumps``
writes that tree as JSON text and ``render`` as the one-line text form of
``typedmaps dump``'s table. The rules follow bpftool 7.1's ``formatted``
view; where typedmaps differs on purpose (bitfields, 128-bit integers and
floats as numbers) is listed in the docs of the ``typedmaps`` command.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from ._btf import Btf
from ._constructs import c_string
from ._types import MODIFIERS, BtfError, BtfType, Kind

__all__ = ["JObj", "dumps", "format_type", "hex_bytes", "render", "to_plain"]


# ---------------------------------------------------------------------------- JSON values


class JObj(list[tuple[str, Any]]):
    """A JSON object as ordered (name, value) pairs; names may repeat, as in bpftool.

    bpftool prints every anonymous member under the name ``""``, so one
    object can hold that name twice; a dict could not.
    """


def dumps(value: Any, *, pretty: bool = False) -> str:
    """JSON text for a value built of JObj, list, str, int, float, bool and None.

    Floats print as JSON numbers; NaN and infinities (not JSON) as the
    strings ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    out: list[str] = []
    _dump(value, out, 0 if pretty else None)
    return "".join(out)


def _dump(v: Any, out: list[str], level: int | None) -> None:
    if isinstance(v, JObj | list):
        is_obj = isinstance(v, JObj)
        opening, closing = ("{", "}") if is_obj else ("[", "]")
        if not v:
            out.append(opening + closing)
            return
        out.append(opening)
        inner = None if level is None else level + 1
        for i, item in enumerate(v):
            if i:
                out.append(",")
            if inner is not None:
                out.append("\n" + "    " * inner)
            if is_obj:
                name, member = item
                out.append(json.dumps(name))
                out.append(": " if inner is not None else ":")
                _dump(member, out, inner)
            else:
                _dump(item, out, inner)
        if level is not None:
            out.append("\n" + "    " * level)
        out.append(closing)
    elif isinstance(v, float):
        if math.isnan(v):
            out.append('"nan"')
        elif math.isinf(v):
            out.append('"inf"' if v > 0 else '"-inf"')
        else:
            out.append(repr(v))
    else:
        out.append(json.dumps(v))


def to_plain(value: Any) -> Any:
    """A JObj tree as plain dicts and lists (later duplicate names win, as json.loads)."""
    if isinstance(value, JObj):
        return {k: to_plain(v) for k, v in value}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------- formatting


def format_type(btf: Btf, type_id: int, data: bytes) -> Any:
    """The JSON value bpftool's ``formatted`` view shows for ``data`` of a BTF type.

    Follows bpftool 7.1 (``btf_dumper.c``) except where it is plainly awkward
    or broken, as docs/cli.md lists: bitfields and 128-bit integers print as
    numbers (bpftool: hex strings), floats as numbers (bpftool cannot print
    them),.

    Raises:
        BtfError: a kind that has no data representation (a function type).
    """
    return _fmt(btf, type_id, data, "value")


def _fmt(btf: Btf, tid: int, data: bytes, path: str) -> Any:
    t = btf.get(tid)
    k = t.kind
    if k in MODIFIERS:
        return _fmt(btf, t.ref, data, path)
    if k is Kind.INT:
        return _fmt_int(t, data)
    if k is Kind.PTR:
        return int.from_bytes(data[:8], "little")
    if k is Kind.FLOAT:
        if t.size == 4:
            return float(struct.unpack_from("<f", data)[0])
        if t.size == 8:
            return float(struct.unpack_from("<d", data)[0])
        raise BtfError(path, f"{t.size}-byte float is not supported")
    if k is Kind.ENUM:
        # bpftool: the value read sign-extended at the enum's size, compared
        # with each enumerator's value as a __s32.
        v = int.from_bytes(data[: t.size], "little", signed=True)
        for e in t.enumerators:
            ev = e.raw - (1 << 32) if e.raw & 0x80000000 else e.raw
            if ev == v:
                return e.name
        return v
    if k is Kind.ENUM64:
        u = int.from_bytes(data[:8], "little")
        for e in t.enumerators:
            if e.raw == u:
                return e.name
        return u
    if k is Kind.ARRAY:
        if btf.is_char_array(t):
            text = c_string(data[: t.nelems], strict=False)
            if text is not None:
                return text
        esz = btf.size_of(t.elem, path)
        return [
            _fmt(btf, t.elem, data[i * esz : (i + 1) * esz], f"{path}[{i}]")
            for i in range(t.nelems)
        ]
    if k in (Kind.STRUCT, Kind.UNION):
        obj = JObj()
        for m in t.members:
            bf = btf.bitfield(m, t.kflag)
            if bf is not None:
                obj.append((m.name, _bits(btf, m.type_id, data, *bf)))
            else:
                off = btf.member_offset(m, t.kflag) // 8
                size = btf.size_of(m.type_id, path)
                obj.append((m.name, _fmt(btf, m.type_id, data[off : off + size], path)))
        return obj
    if k is Kind.DATASEC:
        entries = []
        for m in t.members:
            var = btf.get(m.type_id)
            off = m.bit_offset // 8
            size = btf.size_of(var.ref, path)
            entries.append(JObj([(var.name, _fmt(btf, var.ref, data[off : off + size], path))]))
        return JObj([(t.name, entries)])
    if k is Kind.VAR:
        return JObj([(t.name, _fmt(btf, t.ref, data, path))])
    raise BtfError(path, f"{btf.describe(tid)} ({k.name}) has no data to show")


def _fmt_int(t: BtfType, data: bytes) -> Any:
    signed = bool(t.int_encoding & 1)
    if t.is_bitfield_int:
        raw = int.from_bytes(data[: t.size], "little") >> t.int_offset
        v = raw & ((1 << t.int_bits) - 1)
        if signed and v >> (t.int_bits - 1):
            v -= 1 << t.int_bits
        return v
    if t.int_encoding & 4:  # BOOL
        return any(data[: t.size])
    if t.int_encoding & 2 and t.size == 1:  # CHAR
        return chr(data[0])
    return int.from_bytes(data[: t.size], "little", signed=signed)


def _bits(btf: Btf, type_id: int, data: bytes, offset: int, width: int) -> int:
    lo = offset // 8
    hi = (offset + width + 7) // 8
    v = (int.from_bytes(data[lo:hi], "little") >> (offset - lo * 8)) & ((1 << width) - 1)
    base = btf.resolve(type_id)
    if base.kind is Kind.INT:
        signed = bool(base.int_encoding & 1)
    elif base.kind in (Kind.ENUM, Kind.ENUM64):
        signed = btf.enum_signed(base)
    else:
        signed = False
    if signed and v >> (width - 1):
        v -= 1 << width
    return v


def hex_bytes(data: bytes) -> list[str]:
    """Raw bytes as bpftool prints a map without BTF: ``["0x01", "0x0a", ...]``."""
    return [f"0x{b:02x}" for b in data]


def render(value: Any) -> str:
    """A compact one-line text form of a formatted value, for the table view."""
    if isinstance(value, JObj):
        return "{" + ", ".join(f"{k or '(anon)'}={render(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
