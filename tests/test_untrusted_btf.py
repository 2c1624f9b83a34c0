"""Raw BTF that breaks the kernel verifier's rules is refused by name; awkward BTF it accepts works.

Every rule of typedmaps.btf's checks (header, sections, records, references)
has a hand-built BTF that breaks it, and each must give a BtfError saying
what is wrong, from Btf.parse and from Btf.from_bytes (which checks before
libbpf sees the bytes). BTF the kernel accepts but that is awkward (loops
through pointers, 2**31 - 1 empty structs, odd enumerator names, 0-bit
integers, deep nesting) is read, typed, formatted and generated at once.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

import typedmaps as tm
from typedmaps.btf import Btf, BtfError, Kind
from typedmaps.btf.format import dumps, format_type, json_writer
from typedmaps.codec import make_codec
from typedmaps.codegen import generate

from .btf_builder import BtfBuilder

Make = Callable[[], bytes]


def _with(build: Callable[[BtfBuilder], object]) -> bytes:
    b = BtfBuilder()
    build(b)
    return b.bytes()


def _hdr(data: bytes, off: int, value: int, fmt: str = "<I") -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def _u32(b: BtfBuilder) -> int:
    return b.int_("unsigned int", 4)


def _base() -> bytes:
    return _with(_u32)


def _blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


_INT_U32 = struct.pack("<IIII", 0, 1 << 24, 4, 32)


def _raw_type(name_off: int, info: int, size: int, *extra: int) -> bytes:
    """A BTF blob with one hand-made record after an INT (id 1), strings "\\0x\\0"."""
    record = struct.pack("<III", name_off, info, size) + struct.pack(f"<{len(extra)}I", *extra)
    return _blob(_INT_U32 + record, b"\0x\0")


def _info(kind: Kind, vlen: int = 0, kflag: bool = False) -> int:
    return (int(kflag) << 31) | (int(kind) << 24) | vlen


def _deep(b: BtfBuilder, depth: int) -> int:
    t = _u32(b)
    for i in range(depth):
        t = b.struct_(f"s{i}", 4, [("m", t, 0)])
    return t


#: (what is wrong, bytes, a phrase of the expected message)
MALFORMED: list[tuple[str, Make, str]] = [
    ("too short", lambda: b"\x9f\xeb\x01\x00", "too short"),
    ("bad magic", lambda: b"\x00" * 32, "magic"),
    ("version 2", lambda: _hdr(_base(), 2, 2, "<B"), "version 2"),
    ("flags", lambda: _hdr(_base(), 3, 1, "<B"), "flags"),
    ("header length 16", lambda: _hdr(_base(), 4, 16), "header length"),
    ("header length past the end", lambda: _hdr(_base(), 4, 10_000), "header length"),
    ("type section past the end", lambda: _hdr(_base(), 12, 10_000), "runs past the end"),
    ("string section past the end", lambda: _hdr(_base(), 20, 10_000), "runs past the end"),
    ("gap before the strings", lambda: _hdr(_hdr(_base(), 16, 20), 20, 2), "gap"),
    ("sections overlap", lambda: _hdr(_base(), 16, 4), "overlaps"),
    ("unaligned type section", lambda: _hdr(_hdr(_base(), 8, 2), 16, 0), "section"),
    ("bytes after the sections", lambda: _base() + b"\0\0\0\0", "belong to none"),
    ("empty string section", lambda: _blob(_INT_U32, b""), "string section"),
    ("strings not NUL-ended", lambda: _base()[:-1] + b"x", "NUL"),
    ("unknown kind", lambda: _raw_type(0, 25 << 24, 0), "unknown BTF kind 25"),
    ("kind 0", lambda: _raw_type(0, 0, 0), "UNKN"),
    ("unused info bits", lambda: _raw_type(0, _info(Kind.PTR) | (1 << 20), 1), "unused bits"),
    ("name past the strings", lambda: _raw_type(99, _info(Kind.TYPEDEF), 1), "past the string"),
    ("truncated record", lambda: _raw_type(0, _info(Kind.INT), 4), "needs 4 bytes"),
    ("vlen past the section", lambda: _raw_type(0, _info(Kind.STRUCT, 3), 4, 0, 1, 0), "vlen 3"),
    ("INT with vlen", lambda: _raw_type(0, _info(Kind.INT, 1), 4, 32), "vlen must be 0"),
    ("INT with kind_flag", lambda: _raw_type(0, _info(Kind.INT, kflag=True), 4, 32), "kind_flag"),
    ("INT of 129 bits", lambda: _raw_type(0, _info(Kind.INT), 32, 129), "exceed 128"),
    ("INT bits past its size", lambda: _raw_type(0, _info(Kind.INT), 1, 16), "exceed its 1 bytes"),
    ("INT encoding 3", lambda: _raw_type(0, _info(Kind.INT), 4, (3 << 24) | 32), "encoding"),
    ("INT unused word bits", lambda: _raw_type(0, _info(Kind.INT), 4, (1 << 28) | 32), "unused"),
    ("PTR with a name", lambda: _raw_type(1, _info(Kind.PTR), 1), "must not have a name"),
    ("TYPEDEF without a name", lambda: _raw_type(0, _info(Kind.TYPEDEF), 1), "needs a name"),
    ("ARRAY with a size", lambda: _raw_type(0, _info(Kind.ARRAY), 4, 1, 1, 1), "size must be 0"),
    ("ENUM of 3 bytes", lambda: _raw_type(0, _info(Kind.ENUM), 3), "size 3"),
    ("FWD with a type", lambda: _raw_type(1, _info(Kind.FWD), 1), "type must be 0"),
    ("FUNC linkage 3", lambda: _raw_type(1, _info(Kind.FUNC, 3), 1), "linkage 3"),
    ("FUNC_PROTO with a name", lambda: _raw_type(1, _info(Kind.FUNC_PROTO), 1), "name"),
    (
        "void parameter first",
        lambda: _raw_type(0, _info(Kind.FUNC_PROTO, 2), 1, 0, 0, 0, 1),
        "void",
    ),
    ("VAR without a name", lambda: _raw_type(0, _info(Kind.VAR), 1, 1), "needs a name"),
    ("VAR linkage 7", lambda: _raw_type(1, _info(Kind.VAR), 1, 7), "linkage 7"),
    (
        "DATASEC overlaps",
        lambda: _raw_type(1, _info(Kind.DATASEC, 2), 8, 1, 0, 8, 1, 4, 4),
        "overlaps",
    ),
    ("DECL_TAG index -2", lambda: _raw_type(1, _info(Kind.DECL_TAG), 1, 0xFFFFFFFE), "below -1"),
    ("FLOAT of 3 bytes", lambda: _raw_type(1, _info(Kind.FLOAT), 3), "size 3"),
    ("union member at bit 8", lambda: _raw_type(0, _info(Kind.UNION, 1), 4, 0, 1, 8), "union"),
    (
        "members out of order",
        lambda: _raw_type(0, _info(Kind.STRUCT, 2), 8, 0, 1, 32, 0, 1, 0),
        "before",
    ),
    (
        "member past the size",
        lambda: _raw_type(0, _info(Kind.STRUCT, 1), 4, 0, 1, 64),
        "past the size",
    ),
    ("type id out of range", lambda: _raw_type(0, _info(Kind.PTR), 77), "does not exist"),
    (
        "name longer than 511",
        lambda: _with(lambda b: b.typedef("x" * 600, _u32(b))),
        "longer than 511",
    ),
    (
        "typedef loop",
        lambda: _with(lambda b: [b.typedef("a", 2), b.typedef("b", 1)]),
        "a loop through types",
    ),
    (
        "pointer loop through const",
        lambda: _with(lambda b: [b.ptr(2), b.add("", Kind.CONST, 0, 1)]),
        "a loop through types",
    ),
    (
        "struct containing itself",
        lambda: _with(lambda b: b.struct_("s", 4, [("self", 1, 0)])),
        "a loop through types",
    ),
    ("types 70 deep", lambda: _with(lambda b: _deep(b, 70)), "more than 64 deep"),
    (
        "array index not an integer",
        lambda: _with(lambda b: b.add("", Kind.ARRAY, 0, 0, _u32(b), b.ptr(1), 2)),
        "index type",
    ),
    (
        "array of void",
        lambda: _with(lambda b: [_u32(b), b.add("", Kind.ARRAY, 0, 0, 0, 1, 2)]),
        "no size",
    ),
    (
        "array of 2**31 u32",
        lambda: _with(lambda b: b.array(_u32(b), 1 << 31)),
        "overflow 32 bits",
    ),
    (
        "member ends past the struct",
        lambda: _with(lambda b: b.struct_("s", 4, [("m", b.array(_u32(b), 2), 0)])),
        "past the 4-byte size",
    ),
    (
        "struct member of void",
        lambda: _with(lambda b: b.struct_("s", 4, [("m", 0, 0)])),
        "no size",
    ),
    (
        "FUNC of a non-prototype",
        lambda: _with(lambda b: b.add("f", Kind.FUNC, 1, _u32(b))),
        "not a function prototype",
    ),
    (
        "DECL_TAG on an INT",
        lambda: _with(lambda b: b.add("t", Kind.DECL_TAG, 0, _u32(b), 0xFFFFFFFF)),
        "cannot be tagged",
    ),
    (
        "DECL_TAG component 5 of 1",
        lambda: _with(
            lambda b: b.add("t", Kind.DECL_TAG, 0, b.struct_("s", 4, [("m", _u32(b), 0)]), 5)
        ),
        "component index 5",
    ),
]


@pytest.mark.parametrize(("what", "make", "phrase"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_btf_is_refused_by_name(what: str, make: Make, phrase: str) -> None:
    data = make()
    with pytest.raises(BtfError, match=phrase):
        Btf.parse(data)
    with pytest.raises(BtfError, match=phrase):
        Btf.from_bytes(data)  # refused before libbpf's btf__new sees it


def test_well_formed_blobs_still_pass() -> None:
    """Each malformed case is one change away from valid BTF: the base blobs parse."""
    Btf.parse(_base())
    Btf.parse(_raw_type(0, _info(Kind.PTR), 1))
    Btf.from_bytes(_with(lambda b: _deep(b, 60)))


# ------------------------------------------------------------------ awkward but valid


def _quick(fn: Callable[[], object], limit: float = 5.0) -> object:
    t = time.monotonic()
    out = fn()
    assert time.monotonic() - t < limit, "took too long"
    return out


def test_zero_size_arrays_of_2_31_elements_do_not_hang() -> None:
    b = BtfBuilder()
    u32 = _u32(b)
    empty = b.struct_("empty", 0, [])
    many = b.array(empty, 0x7FFFFFFF)
    un = b.struct_("holder", 4, [("e", many, 0), ("word", u32, 0)], union=True)
    value = b.struct_("huge", 8, [("head", u32, 0), ("many", many, 32), ("u", un, 32)])
    b.maps([("huge", "array", u32, value, 1)])
    btf = Btf.from_bytes(b.bytes())
    raw = (7).to_bytes(4, "little") + (9).to_bytes(4, "little")
    s = btf.schema(value)
    v: Any = _quick(lambda: s.parse(raw))
    assert v.many == []
    assert v.u.e == []
    assert v.u.word == 9
    assert _quick(lambda: s.build(v)) == raw
    c = make_codec(s)
    assert _quick(lambda: c.encode(c.decode(raw))) == raw
    assert _quick(lambda: btf.mask(value)) == (1 << 64) - 1
    shown = _quick(lambda: format_type(btf, value, raw))
    assert dict(shown)["many"] == []  # type: ignore[call-overload]
    _quick(lambda: generate(btf))


def test_formatting_reads_no_more_elements_than_bytes() -> None:
    """A 2**31-element array given 8 bytes (a short value, a DATASEC of size 0) formats at once."""
    b = BtfBuilder()
    big = b.array(b.int_("char", 1, signed=True), 0x7FFFFFFF)
    words = b.array(_u32(b), 0x3FFFFFFF)
    btf = Btf.parse(b.bytes())
    assert _quick(lambda: format_type(btf, words, bytes(8))) == [0, 0]
    assert _quick(lambda: format_type(btf, big, b"\x01" * 8)) == [1] * 8
    assert _quick(lambda: format_type(btf, big, b"")) == []


def test_the_compiled_writer_refuses_a_section_without_its_bytes() -> None:
    """An object file's DATASEC (size 0, variables past it) has no bytes to write from:
    a BtfError, never a read past the buffer; with its real size it is written."""
    for size in (0, 8):
        b = BtfBuilder()
        u32 = _u32(b)
        sec = b.datasec(".bss", [(b.var("a", u32), 0, 4), (b.var("b", u32), 4, 4)], size)
        btf = Btf.parse(b.bytes())
        if size:
            text = json_writer(btf, sec, size=8)(struct.pack("<II", 1, 2), 0)
            assert text == dumps(format_type(btf, sec, struct.pack("<II", 1, 2)))
            assert text == '{".bss":[{"a":1},{"b":2}]}'
        else:
            with pytest.raises(BtfError, match="past the section's 0"):
                json_writer(btf, sec, size=0)


def test_loops_through_pointers_are_fine() -> None:
    """struct nla_policy style self-reference, and a pointer to an array of itself."""
    b = BtfBuilder()
    u32 = _u32(b)
    # 2: PTR -> 3: CONST -> 4: STRUCT { union 5 { PTR 2; u32 } }
    b.ptr(3)
    b.add("", Kind.CONST, 0, 4)
    b.struct_("policy", 8, [("u", 5, 0)])
    b.struct_("", 8, [("nested", 2, 0), ("len", u32, 0)], union=True)
    # 6: PTR -> 8: ARRAY of 6 (7 is its index type; the kernel accepts the
    # loop, and describe() must end)
    b.ptr(8)
    b.array(6, 2)
    btf = Btf.from_bytes(b.bytes())
    assert "policy" in btf.describe(2)
    assert btf.describe(6).count("*") <= 80
    assert btf.schema(4).sizeof() == 8


def test_odd_enumerator_names_and_zero_bit_ints() -> None:
    b = BtfBuilder()
    names = ["mro", "_missing_", "name", "value", "None", "_", "", "A", "A", "__init__", "_value_"]
    e = b.enum("odd", [(n, i) for i, n in enumerate(names)])
    zero = b.int_("nothing", 4, bits=0)
    rec = b.struct_("r", 8, [("e", e, 0), ("z", zero, 32)])
    btf = Btf.parse(b.bytes())
    cls = btf.enum_class(e)
    assert [m.value for m in cls] == list(range(len(names)))
    assert cls(1).name == "E_missing_"
    assert cls(0).name == "mro_"
    s = btf.schema(e)
    assert s.build(s.parse(b"\x03\0\0\0")) == b"\x03\0\0\0"
    with pytest.raises(BtfError, match="0 bits"):
        btf.schema(zero)
    with pytest.raises(BtfError, match="0 bits"):
        btf.schema(rec)
    assert dict(format_type(btf, rec, bytes(8)))["z"] == 0


def test_errors_are_typedmaps_errors() -> None:
    """BtfError is a TypedMapsError and a ValueError, so callers can catch either."""
    with pytest.raises(tm.TypedMapsError):
        Btf.parse(b"garbage")
    with pytest.raises(ValueError, match=r"too short|magic"):
        Btf.parse(b"garbage")
