"""Raw decoding: the type section of a BTF blob into BtfType records."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from ._types import BtfEnumerator, BtfError, BtfMember, BtfType, Kind

# ---------------------------------------------------------------------------- raw decoding

_U32 = struct.Struct("<I")


def _decode_types(sec: bytes, strings: bytes, order: str) -> list[BtfType]:
    u32 = struct.Struct(order + "I")
    trip = struct.Struct(order + "III")
    pair = struct.Struct(order + "II")

    def name_at(off: int) -> str:
        if off >= len(strings):
            raise BtfError("btf", f"name offset {off} is past the string section")
        end = strings.find(b"\0", off)
        if end < 0:
            end = len(strings)
        return strings[off:end].decode("utf-8", "replace")

    types = [BtfType(0, Kind.UNKN, "void")]
    pos = 0
    n = len(sec)
    while pos < n:
        if pos + 12 > n:
            raise BtfError("btf", f"truncated type record at offset {pos}")
        name_off, info, size_or_type = trip.unpack_from(sec, pos)
        pos += 12
        tid = len(types)
        try:
            kind = Kind((info >> 24) & 0x1F)
        except ValueError:
            raise BtfError(
                "btf", f"type id {tid}: unknown BTF kind {(info >> 24) & 0x1F}"
            ) from None
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = name_at(name_off)
        common: dict[str, Any] = {"vlen": vlen, "kflag": kflag}

        if kind is Kind.INT:
            _need(pos, 4, n, tid)
            (enc,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(
                tid,
                kind,
                name,
                size=size_or_type,
                int_encoding=(enc >> 24) & 0x0F,
                int_offset=(enc >> 16) & 0xFF,
                int_bits=enc & 0xFF,
                **common,
            )
        elif kind is Kind.ARRAY:
            _need(pos, 12, n, tid)
            elem, index, nelems = trip.unpack_from(sec, pos)
            pos += 12
            t = BtfType(tid, kind, name, elem=elem, index=index, nelems=nelems, **common)
        elif kind in (Kind.STRUCT, Kind.UNION):
            _need(pos, 12 * vlen, n, tid)
            members = []
            for _ in range(vlen):
                mname, mtype, moff = trip.unpack_from(sec, pos)
                pos += 12
                bsize = (moff >> 24) if kflag else 0
                members.append(BtfMember(name_at(mname), mtype, moff, bsize))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(members), **common)
        elif kind is Kind.ENUM:
            _need(pos, 8 * vlen, n, tid)
            enums = []
            for _ in range(vlen):
                ename, val = pair.unpack_from(sec, pos)
                pos += 8
                enums.append(BtfEnumerator(name_at(ename), val))
            t = BtfType(tid, kind, name, size=size_or_type, enumerators=tuple(enums), **common)
        elif kind is Kind.ENUM64:
            _need(pos, 12 * vlen, n, tid)
            enums = []
            for _ in range(vlen):
                ename, lo, hi = trip.unpack_from(sec, pos)
                pos += 12
                enums.append(BtfEnumerator(name_at(ename), (hi << 32) | lo))
            t = BtfType(tid, kind, name, size=size_or_type, enumerators=tuple(enums), **common)
        elif kind is Kind.FUNC_PROTO:
            _need(pos, 8 * vlen, n, tid)
            params = []
            for _ in range(vlen):
                pname, ptype = pair.unpack_from(sec, pos)
                pos += 8
                params.append((name_at(pname), ptype))
            t = BtfType(tid, kind, name, ref=size_or_type, params=tuple(params), **common)
        elif kind is Kind.VAR:
            _need(pos, 4, n, tid)
            (linkage,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=linkage, **common)
        elif kind is Kind.DATASEC:
            _need(pos, 12 * vlen, n, tid)
            entries = []
            for _ in range(vlen):
                vtype, voff, _vsize = trip.unpack_from(sec, pos)
                pos += 12
                entries.append(BtfMember("", vtype, voff * 8, 0))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(entries), **common)
        elif kind is Kind.DECL_TAG:
            _need(pos, 4, n, tid)
            (component,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=component, **common)
        elif kind is Kind.FLOAT:
            t = BtfType(tid, kind, name, size=size_or_type, **common)
        else:  # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, TYPE_TAG, UNKN
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=vlen, **common)
        types.append(t)
    return types


def _need(pos: int, nbytes: int, total: int, tid: int) -> None:
    if pos + nbytes > total:
        raise BtfError("btf", f"type id {tid}: truncated trailing data")
