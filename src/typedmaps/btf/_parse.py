"""Raw decoding: a BTF blob's header, type section and string section, checked as they are read.

Every record is checked against the rules the kernel's BTF verifier applies
to it in isolation (``btf_check_meta()`` and the per-kind ``check_meta`` of
kernel/bpf/btf.c): a known kind, no unused bits set in ``info``, a name
offset inside the string section, the trailing records inside the type
section (so ``vlen`` agrees with the section's size), and the kind's own
rules (an INT's encoding word, an ARRAY without name or size, an
ENUM's size, a VAR's linkage, ...). How the records refer to each other
(ids, loops, sizes) is checked afterwards, in :mod:`._validate`.

Where typedmaps is more lenient than the kernel, on purpose: names need not
be C identifiers (object files may carry any bytes; ``typedmaps gen`` maps
them), and a DATASEC may have size 0 with its variables at offset 0 (clang
writes them so in object files; libbpf fills them in when it loads one).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ._types import BtfEnumerator, BtfError, BtfMember, BtfType, Kind

#: The kernel's limits (include/linux/btf.h, include/uapi/linux/btf.h).
BTF_MAX_TYPE: Final = 0xFFFFF
BTF_MAX_NAME_OFFSET: Final = 0xFFFFFF
#: Longest name accepted, in bytes: the kernel's KSYM_NAME_LEN less its NUL.
MAX_NAME: Final = 511
#: Raw BTF larger than this is refused before it is read (vmlinux's is ~6 MiB).
MAX_BTF_SIZE: Final = 64 << 20

_INFO_MASK: Final = 0x9F00FFFF
_INT_MASK: Final = 0x0FFFFFFF
_MAGIC: Final = 0xEB9F
_HDR_SIZE: Final = 24
_REF_KINDS: Final = frozenset(
    {Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
)
_NAMED_REF_KINDS: Final = frozenset({Kind.TYPEDEF, Kind.TYPE_TAG})


def split_blob(data: bytes) -> tuple[str, bytes, bytes]:
    """Check a BTF header and its sections; return (byte order, type section, strings).

    The rules are the kernel's ``btf_parse_hdr()``, ``btf_check_sec_info()``
    and ``btf_parse_str_sec()``: magic, version 1, no flags, any header bytes
    past the known ones zero, the type and string sections exactly filling
    the rest without gap or overlap, the type section 4-byte aligned, and a
    string section that starts and ends with NUL. Both byte orders are read
    (libbpf reads BTF of the other endianness too).

    Raises:
        BtfError: the first rule the bytes break.
    """
    n = len(data)
    if n > MAX_BTF_SIZE:
        raise BtfError("btf", f"{n} bytes of BTF: more than the {MAX_BTF_SIZE} accepted")
    if n < 8:
        raise BtfError("btf", f"{n} bytes are too short for a BTF header")
    order = "<"
    magic = int.from_bytes(data[:2], "little")
    if magic != _MAGIC:
        if int.from_bytes(data[:2], "big") != _MAGIC:
            raise BtfError("btf", f"bad magic {data[:2].hex()}: not BTF")
        order = ">"
    version, flags = data[2], data[3]
    (hdr_len,) = struct.unpack_from(order + "I", data, 4)
    if version != 1:
        raise BtfError("btf", f"BTF version {version} is not supported (only 1)")
    if flags:
        raise BtfError("btf", f"BTF header flags {flags:#x} are not supported")
    if hdr_len < _HDR_SIZE or hdr_len > n:
        raise BtfError("btf", f"header length {hdr_len} in {n} bytes: no complete BTF header")
    if any(data[_HDR_SIZE:hdr_len]):
        raise BtfError("btf", "the header has non-zero bytes past the fields BTF defines")
    type_off, type_len, str_off, str_len = struct.unpack_from(order + "IIII", data, 8)
    body = n - hdr_len
    secs = sorted([(type_off, type_len, "type"), (str_off, str_len, "string")])
    total = 0
    for off, length, what in secs:
        if off > body:
            raise BtfError("btf", f"the {what} section starts at {off}, past the end ({body})")
        if off > total:
            raise BtfError("btf", f"a gap of {off - total} bytes before the {what} section")
        if off < total:
            raise BtfError("btf", f"the {what} section overlaps the one before it")
        if length > body - total:
            raise BtfError("btf", f"the {what} section ({length} bytes) runs past the end")
        total += length
    if total != body:
        raise BtfError("btf", f"{body - total} bytes after the sections belong to none")
    if type_off % 4:
        raise BtfError("btf", f"type section offset {type_off} is not 4-byte aligned")
    if not str_len or str_len > BTF_MAX_NAME_OFFSET:
        raise BtfError(
            "btf", f"string section of {str_len} bytes (must be 1..{BTF_MAX_NAME_OFFSET})"
        )
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    if strings[0] != 0 or strings[-1] != 0:
        raise BtfError("btf", "the string section must start and end with a NUL byte")
    return order, data[hdr_len + type_off : hdr_len + type_off + type_len], strings


class _Names:
    """Names by offset into the string section, each decoded once."""

    def __init__(self, strings: bytes) -> None:
        self.strings = strings
        self.cache: dict[int, str] = {0: ""}

    def at(self, off: int, tid: int, what: str) -> str:
        name = self.cache.get(off)
        if name is not None:
            return name
        s = self.strings
        if off >= len(s):
            raise BtfError(
                "btf", f"type id {tid}: {what} offset {off} is past the string section ({len(s)})"
            )
        end = s.find(b"\0", off, off + MAX_NAME + 1)
        if end < 0:
            raise BtfError(
                "btf", f"type id {tid}: {what} at offset {off} is longer than {MAX_NAME} bytes"
            )
        name = s[off:end].decode("utf-8", "replace")
        self.cache[off] = name
        return name


def _fail(tid: int, kind: Kind, why: str) -> BtfError:
    return BtfError("btf", f"type id {tid} ({kind.name}): {why}")


def _need(pos: int, nbytes: int, total: int, *where: Any) -> None:
    tid, kind, vlen = where
    if pos + nbytes > total:
        raise _fail(tid, kind, f"vlen {vlen} needs {nbytes} bytes, the section has {total - pos}")


def _no_vlen(tid: int, kind: Kind, vlen: int) -> None:
    if vlen:
        raise _fail(tid, kind, f"vlen must be 0, not {vlen}")


def _no_kflag(tid: int, kind: Kind, kflag: bool) -> None:
    if kflag:
        raise _fail(tid, kind, "kind_flag must be 0")


def _decode_types(sec: bytes, strings: bytes, order: str) -> list[BtfType]:
    """Every type record of a type section, checked one by one (see the module doc).

    Raises:
        BtfError: the first record that breaks a rule, by type id.
    """
    u32 = struct.Struct(order + "I")
    trip = struct.Struct(order + "III")
    pair = struct.Struct(order + "II")
    names = _Names(strings)

    types = [BtfType(0, Kind.UNKN, "void")]
    pos = 0
    n = len(sec)
    while pos < n:
        tid = len(types)
        if tid > BTF_MAX_TYPE:
            raise BtfError("btf", f"more than {BTF_MAX_TYPE} types")
        if pos + 12 > n:
            raise BtfError("btf", f"type id {tid}: truncated type record at offset {pos}")
        name_off, info, size_or_type = trip.unpack_from(sec, pos)
        pos += 12
        raw_kind = (info >> 24) & 0x1F
        try:
            kind = Kind(raw_kind)
        except ValueError:
            raise BtfError("btf", f"type id {tid}: unknown BTF kind {raw_kind}") from None
        if kind is Kind.UNKN:
            raise BtfError("btf", f"type id {tid}: kind 0 (UNKN) is only type id 0, void")
        if info & ~_INFO_MASK:
            raise _fail(tid, kind, f"unused bits set in info {info:#010x}")
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = names.at(name_off, tid, "name")
        common: dict[str, Any] = {"vlen": vlen, "kflag": kflag}

        if kind is Kind.INT:
            _no_vlen(tid, kind, vlen)
            _no_kflag(tid, kind, kflag)
            _need(pos, 4, n, tid, kind, vlen)
            (enc,) = u32.unpack_from(sec, pos)
            pos += 4
            t = _int_type(tid, name, size_or_type, enc, common)
        elif kind in _REF_KINDS:
            _no_vlen(tid, kind, vlen)
            if kind is not Kind.TYPE_TAG:
                _no_kflag(tid, kind, kflag)
            if kind in _NAMED_REF_KINDS and not name:
                raise _fail(tid, kind, "needs a name")
            if kind not in _NAMED_REF_KINDS and name_off:
                raise _fail(tid, kind, "must not have a name")
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=vlen, **common)
        elif kind is Kind.ARRAY:
            _no_vlen(tid, kind, vlen)
            _no_kflag(tid, kind, kflag)
            if name_off:
                raise _fail(tid, kind, "must not have a name")
            if size_or_type:
                raise _fail(tid, kind, f"size must be 0, not {size_or_type}")
            _need(pos, 12, n, tid, kind, vlen)
            elem, index, nelems = trip.unpack_from(sec, pos)
            pos += 12
            t = BtfType(tid, kind, name, elem=elem, index=index, nelems=nelems, **common)
        elif kind in (Kind.STRUCT, Kind.UNION):
            _need(pos, 12 * vlen, n, tid, kind, vlen)
            members = []
            last = 0
            for i in range(vlen):
                mname, mtype, moff = trip.unpack_from(sec, pos)
                pos += 12
                bsize = (moff >> 24) if kflag else 0
                boff = moff & 0xFFFFFF if kflag else moff
                if kind is Kind.UNION and boff:
                    raise _fail(tid, kind, f"member {i} at bit offset {boff}: a union's are 0")
                if boff < last:
                    raise _fail(tid, kind, f"member {i} at bit offset {boff} is before {last}")
                if (boff + 7) // 8 > size_or_type:
                    raise _fail(
                        tid, kind, f"member {i} at bit {boff} is past the size {size_or_type}"
                    )
                last = boff
                members.append(BtfMember(names.at(mname, tid, "member name"), mtype, moff, bsize))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(members), **common)
        elif kind in (Kind.ENUM, Kind.ENUM64):
            if size_or_type not in (1, 2, 4, 8):
                raise _fail(tid, kind, f"size {size_or_type} (must be 1, 2, 4 or 8)")
            width = 8 if kind is Kind.ENUM else 12
            _need(pos, width * vlen, n, tid, kind, vlen)
            enums = []
            for _ in range(vlen):
                if kind is Kind.ENUM:
                    ename, val = pair.unpack_from(sec, pos)
                else:
                    ename, lo, hi = trip.unpack_from(sec, pos)
                    val = (hi << 32) | lo
                pos += width
                enums.append(BtfEnumerator(names.at(ename, tid, "enumerator name"), val))
            t = BtfType(tid, kind, name, size=size_or_type, enumerators=tuple(enums), **common)
        elif kind is Kind.FWD:
            _no_vlen(tid, kind, vlen)
            if size_or_type:
                raise _fail(tid, kind, "type must be 0")
            if not name:
                raise _fail(tid, kind, "needs a name")
            t = BtfType(tid, kind, name, ref=0, **common)
        elif kind is Kind.FUNC:
            _no_kflag(tid, kind, kflag)
            if vlen > 2:
                raise _fail(tid, kind, f"linkage {vlen} is not static, global or extern")
            if not name:
                raise _fail(tid, kind, "needs a name")
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=vlen, **common)
        elif kind is Kind.FUNC_PROTO:
            _no_kflag(tid, kind, kflag)
            if name_off:
                raise _fail(tid, kind, "must not have a name")
            _need(pos, 8 * vlen, n, tid, kind, vlen)
            params = []
            for i in range(vlen):
                pname, ptype = pair.unpack_from(sec, pos)
                pos += 8
                if not ptype and (pname or i != vlen - 1):
                    raise _fail(tid, kind, f"parameter {i} is void but not the last, unnamed one")
                params.append((names.at(pname, tid, "parameter name"), ptype))
            t = BtfType(tid, kind, name, ref=size_or_type, params=tuple(params), **common)
        elif kind is Kind.VAR:
            _no_vlen(tid, kind, vlen)
            _no_kflag(tid, kind, kflag)
            if not name:
                raise _fail(tid, kind, "needs a name")
            _need(pos, 4, n, tid, kind, vlen)
            (linkage,) = u32.unpack_from(sec, pos)
            pos += 4
            if linkage > 2:
                raise _fail(tid, kind, f"linkage {linkage} is not static, global or extern")
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=linkage, **common)
        elif kind is Kind.DATASEC:
            _no_kflag(tid, kind, kflag)
            if not name:
                raise _fail(tid, kind, "needs a name")
            _need(pos, 12 * vlen, n, tid, kind, vlen)
            entries = []
            end = 0
            for i in range(vlen):
                vtype, voff, vsize = trip.unpack_from(sec, pos)
                pos += 12
                if size_or_type:  # laid out (kernel BTF, or an object libbpf opened)
                    if voff < end or voff + vsize > size_or_type:
                        raise _fail(
                            tid,
                            kind,
                            f"variable {i} at {voff}+{vsize} overlaps or leaves the "
                            f"{size_or_type}-byte section",
                        )
                    end = voff + vsize
                entries.append(BtfMember("", vtype, voff * 8, 0))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(entries), **common)
        elif kind is Kind.DECL_TAG:
            _no_vlen(tid, kind, vlen)
            if not name:
                raise _fail(tid, kind, "needs a name")
            _need(pos, 4, n, tid, kind, vlen)
            (component,) = u32.unpack_from(sec, pos)
            pos += 4
            if component >= 0x80000000 and component != 0xFFFFFFFF:
                raise _fail(tid, kind, f"component index {component - (1 << 32)} below -1")
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=component, **common)
        else:  # FLOAT
            _no_vlen(tid, kind, vlen)
            _no_kflag(tid, kind, kflag)
            if size_or_type not in (2, 4, 8, 12, 16):
                raise _fail(tid, kind, f"size {size_or_type} (must be 2, 4, 8, 12 or 16)")
            t = BtfType(tid, kind, name, size=size_or_type, **common)
        types.append(t)
    return types


def _int_type(tid: int, name: str, size: int, enc: int, common: dict[str, Any]) -> BtfType:
    kind = Kind.INT
    # Any size is valid BTF (the kernel checks only the bits): a schema refuses
    # the sizes it has no integer for, the formatter reads any.
    if enc & ~_INT_MASK:
        raise _fail(tid, kind, f"unused bits set in the encoding word {enc:#010x}")
    encoding = (enc >> 24) & 0x0F
    offset = (enc >> 16) & 0xFF
    bits = enc & 0xFF
    if bits + offset > 128:
        raise _fail(tid, kind, f"{bits} bits at offset {offset} exceed 128")
    if (bits + offset + 7) // 8 > size:
        raise _fail(tid, kind, f"{bits} bits at offset {offset} exceed its {size} bytes")
    if encoding not in (0, 1, 2, 4):
        raise _fail(tid, kind, f"encoding {encoding:#x} is not one of signed, char, bool")
    return BtfType(
        tid,
        kind,
        name,
        size=size,
        int_encoding=encoding,
        int_offset=offset,
        int_bits=bits,
        **common,
    )
