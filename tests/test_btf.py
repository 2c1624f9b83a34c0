"""typedmaps.btf: schemas from BTF, round trips, and BTF built by hand for kinds clang 14 lacks."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import typedmaps as tm
from typedmaps.btf import Btf, BtfError, Kind
from typedmaps.codec import make_codec

from .btf_builder import BtfBuilder
from .conftest import bpf_object
from .test_cli_support import ZooBtf

# Every struct, union and enum the zoo declares, plus the array key of zoo_floats.
ZOO_TYPES = (
    "wide_key",
    "zoo_ints",
    "zoo_inner",
    "zoo_word",
    "zoo_bits",
    "zoo_packed_bits",
    "zoo_value",
    "zoo_stats",
    "zoo_event",
    "zoo_color",
    "zoo_small",
    "zoo_tiny",
    "zoo_wide",
)

_zoo: tuple[Btf, ZooBtf] | None = None


def zoo() -> tuple[Btf, ZooBtf]:
    global _zoo
    if _zoo is None:
        _zoo = (Btf.from_file(bpf_object("zoo")), ZooBtf())
    return _zoo


@pytest.mark.parametrize("name", ZOO_TYPES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_decode_encode_round_trip(name: str, data: st.DataObject) -> None:
    """decode -> encode reproduces every member bit; only padding (per bpftool's BTF) is zeroed."""
    btf, zb = zoo()
    t = btf.find(name)
    schema = btf.schema(t.id)
    size = zb.size(zb.named(name)["id"])
    assert schema.sizeof() == size
    raw = data.draw(st.binary(min_size=size, max_size=size))
    mask = zb.data_mask(zb.named(name)["id"])
    encoded = schema.build(schema.parse(raw))
    assert int.from_bytes(encoded, "little") == int.from_bytes(raw, "little") & mask
    assert schema.build(schema.parse(encoded)) == encoded
    assert btf.mask(t.id) == mask


def test_zoo_schema_values() -> None:
    btf, _ = zoo()
    s = btf.schema(btf.find("zoo_event").id)
    raw = struct.pack("<I16sB3xq", 42, b"zoo-bpf", 200, -5)
    ev = s.parse(raw)
    assert (ev.pid, ev.comm, ev.level, ev.delta) == (42, "zoo-bpf", 200, -5)
    assert ev.level.name == "ZOO_SMALL_B"
    assert s.build({"pid": 42, "comm": "zoo-bpf", "level": "ZOO_SMALL_B", "delta": -5}) == raw
    # a char array with bytes after the NUL stays raw bytes, so it round-trips
    dirty = raw[:4] + b"ab\0garbage\0\0\0\0\0\0" + raw[20:]
    assert s.parse(dirty).comm == b"ab\0garbage\0\0\0\0\0\0"
    assert s.build(s.parse(dirty)) == dirty


def test_union_encoding_rules() -> None:
    btf, _ = zoo()
    u = btf.schema(btf.find("zoo_word").id)
    assert u.build({"word": 0x01020304}) == b"\x04\x03\x02\x01"
    assert u.build({"halves": {"lo": 1, "hi": 2}}) == b"\x01\x00\x02\x00"
    assert u.build({}) == bytes(4)
    decoded = u.parse(b"\x04\x03\x02\x01")
    assert decoded.bytes == [4, 3, 2, 1]
    assert u.build(decoded) == b"\x04\x03\x02\x01"
    with pytest.raises(tm.CodecError):
        make_codec(u).encode({"word": 5, "bytes": [1, 1, 1, 1]})


def test_bitfield_range_checks() -> None:
    btf, _ = zoo()
    c = make_codec(btf.schema(btf.find("zoo_bits").id))
    good = {
        "head": 1,
        "a": 7,
        "b": -16,
        "c": 4095,
        "big": 0,
        "col": -3,
        "bb": True,
        "neg": -256,
        "tail": 2,
    }
    assert c.decode(c.encode(good)).col.name == "ZOO_BLUE"
    with pytest.raises(tm.CodecError, match=r"value\.a"):
        c.encode({**good, "a": 8})
    with pytest.raises(tm.CodecError, match=r"value\.b"):
        c.encode({**good, "b": 16})


# ------------------------------------------------------------------ hand-built BTF


def test_enum64_signed_and_unsigned() -> None:
    b = BtfBuilder()
    big = 0xFFFF_FFFF_0000_0001
    u = b.add(
        "wide_u", Kind.ENUM64, 2, 8, b.s("U_ONE"), 1, 0, b.s("U_BIG"), big & 0xFFFFFFFF, big >> 32
    )
    neg = (-5) & (2**64 - 1)
    s = b.add("wide_s", Kind.ENUM64, 1, 8, b.s("S_NEG"), neg & 0xFFFFFFFF, neg >> 32, kflag=True)
    btf = Btf.from_bytes(b.bytes())  # libbpf's btf__new validates the blob
    assert btf.get(u).kind is Kind.ENUM64
    su = btf.schema(u)
    v = su.parse(big.to_bytes(8, "little"))
    assert v.name == "U_BIG"
    assert v == big
    assert su.parse((7).to_bytes(8, "little")) == 7
    assert su.build("U_BIG") == big.to_bytes(8, "little")
    ss = btf.schema(s)
    v2 = ss.parse((-5).to_bytes(8, "little", signed=True))
    assert v2.name == "S_NEG"
    assert v2 == -5
    assert ss.build(v2) == (-5).to_bytes(8, "little", signed=True)


def test_kflag0_bitfields_int_encoding_form() -> None:
    """Older BTF: bitfields as INT types carrying bits/offset, member offsets in plain bits."""
    b = BtfBuilder()
    u32 = b.int_("unsigned int", 4)
    three = b.int_("unsigned int", 4, bits=3)
    five = b.int_("int", 4, signed=True, bits=5)
    st_ = b.struct_("old", 8, [("lo", three, 0), ("mid", five, 3), ("x", u32, 32)])
    btf = Btf.from_bytes(b.bytes())
    s = btf.schema(st_)
    raw = bytes([0b1111_1101, 0, 0, 0]) + (9).to_bytes(4, "little")
    v = s.parse(raw)
    assert (v.lo, v.mid, v.x) == (5, -1, 9)
    assert s.build(v) == raw
    assert s.build({"lo": 2, "mid": -16, "x": 1}) == bytes([0b1000_0010, 0, 0, 0, 1, 0, 0, 0])


def test_unsupported_kinds_name_the_field_path() -> None:
    b = BtfBuilder()
    u8 = b.int_("unsigned char", 1)
    u32 = b.int_("unsigned int", 4)
    idx = b.int_("__ARRAY_SIZE_TYPE__", 4)
    flex = b.add("", Kind.ARRAY, 0, 0, u8, idx, 0)
    hdr = b.struct_("hdr", 4, [("len", u32, 0), ("data", flex, 32)])
    outer = b.struct_("outer", 4, [("hdr", hdr, 0)])
    proto = b.add("", Kind.FUNC_PROTO, 0, u32)
    fwd = b.add("later", Kind.FWD, 0, 0)
    btf = Btf.from_bytes(b.bytes())
    # a flexible (zero-length) array has no bytes: it is always []
    s = btf.schema(outer, "value")
    assert s.parse(b"\x05\0\0\0").hdr.data == []
    assert s.build({"hdr": {"len": 5, "data": []}}) == b"\x05\0\0\0"
    with pytest.raises(BtfError, match=r"^key: function prototype \(FUNC_PROTO\)"):
        btf.schema(proto, "key")
    with pytest.raises(BtfError, match="forward"):
        btf.schema(fwd)
    with pytest.raises(BtfError, match="void"):
        btf.schema(0)


def test_more_kinds() -> None:
    """int128, bool bitfield in a union, restrict/type_tag, a 2-byte bool."""
    b = BtfBuilder()
    i128 = b.int_("__int128", 16, signed=True)
    boolean = b.int_("_Bool", 1, boolean=True)
    u16 = b.int_("unsigned short", 2)
    tag = b.add("user", Kind.TYPE_TAG, 0, u16)
    restrict = b.add("", Kind.RESTRICT, 0, tag)
    # (a union's members all start at bit 0, bitfields too: the kernel refuses others)
    un = b.struct_(
        "u", 2, [("flag", boolean, (1 << 24) | 0), ("word", restrict, 0)], kflag=True, union=True
    )
    rec = b.struct_("r", 32, [("n", i128, 0), ("u", un, 128)])
    btf = Btf.from_bytes(b.bytes())
    s = btf.schema(rec)
    raw = (-(2**100)).to_bytes(16, "little", signed=True) + b"\x09\x01" + bytes(14)
    v = s.parse(raw)
    assert v.n == -(2**100)
    assert v.u.flag is True
    assert v.u.word == 0x0109
    assert s.build(v) == raw


def test_bad_blobs() -> None:
    with pytest.raises(BtfError, match="magic"):
        Btf.parse(b"\x00" * 32)
    with pytest.raises(BtfError, match="version 0"):
        Btf.from_bytes(b"\x9f\xeb" + bytes(30))  # refused before libbpf sees it


def _schema_sizes(btf: Btf) -> dict[str, Any]:
    return {d.name: (d.key_size, d.value_size) for d in btf.map_defs()}


def test_map_defs_of_the_zoo() -> None:
    btf, zb = zoo()
    defs = {d.name: d for d in btf.map_defs()}
    assert defs["zoo_hash"].map_type is tm.MapType.HASH
    assert defs["zoo_queue"].key_type_id == 0
    assert _schema_sizes(btf)["zoo_array"] == (4, zb.size(zb.named("zoo_value")["id"]))
    assert defs["zoo_pcpu_hash"].max_entries == 16
