"""BTF schemas on codec fast plans: the fast codec is construct, byte for byte and error for error.

typedmaps.btf's leaf constructs (CharArray, BoolInt, EnumInt, Float32, and
BitField when it stands alone) offer the codec's ``typedmaps_fast_leaf``
hook; unions and bitfield runs (UnionMember, BitField of a run, OverlayEnd)
its group hooks. For every map of every BPF object in build/bpf (the zoo above all)
and every zoo type, with random bytes, random valid values and random
values of any kind:

- ``make_codec(schema).decode(raw)`` equals ``schema.parse(raw)`` in types,
  keys, key order and float bits (a float32 NaN's kept payload too);
- ``make_codec(schema).encode(v)`` equals ``schema.build(v)``, and raises a
  CodecError exactly when ``schema.build`` raises;
- every schema has a fast plan, and the generated code itself handles
  every valid value and all bytes (it does not hand them back to construct),
  and never returns where construct would raise;
- batches (per-CPU strides included) equal record-by-record results.

The hooks are also checked one class at a time, with parameters the zoo
does not have (odd sizes, 16-byte items, user enums, standalone bitfields).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import math
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeAlias

import construct as cs
import pytest
from construct_typed import DataclassStruct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import typedmaps as tm
from typedmaps.btf import (
    BitField,
    BitsSlot,
    BoolInt,
    Btf,
    CharArray,
    EnumInt,
    FieldSlot,
    Float32,
    FrozenDataclassStruct,
    Kind,
    OverlayEnd,
    UnionMember,
)
from typedmaps.codec import Codec, make_codec
from typedmaps.codegen import py_name

from .btf_builder import BtfBuilder
from .conftest import bpf_object
from .test_btf import ZOO_TYPES
from .test_cli_support import typedmaps_cli

Schema: TypeAlias = "cs.Construct[Any, Any]"
Strategy: TypeAlias = "st.SearchStrategy[Any]"

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SETTINGS = settings(
    max_examples=int(os.environ.get("TYPEDMAPS_BTF_FAST_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

OBJECTS = ("zoo", "flows", "events", "tracecount", "bench")

#: Map schemas whose records hold a union or a bitfield run: those members
#: read bytes their neighbours share and take part through the codec's group
#: hooks (UnionMember, BitField of a run, OverlayEnd), one struct item a group.
GROUPED = {
    "zoo.zoo_array.value": "struct zoo_value: unions and bitfield runs",
    "zoo.zoo_pcpu_hash.value": "struct zoo_bits: bitfield runs",
    "zoo.zoo_lru.value": "union zoo_word",
    "bench.bench_conns.value": "struct bench_conn: a bitfield run, two unions",
}


# -- the schemas ---------------------------------------------------------------


@dataclass
class Case:
    """A schema from BTF, with the BTF and type id it came from."""

    label: str
    btf: Btf
    type_id: int
    schema: Schema


_btfs: dict[str, Btf] = {}


def btf_of(name: str) -> Btf:
    btf = _btfs.get(name)
    if btf is None:
        btf = _btfs[name] = Btf.from_file(bpf_object(name))
    return btf


def map_cases(obj: str) -> list[Case]:
    btf = btf_of(obj)
    out = []
    for d in btf.map_defs():
        for what, tid in (("key", d.key_type_id), ("value", d.value_type_id)):
            if tid:
                out.append(Case(f"{obj}.{d.name}.{what}", btf, tid, btf.schema(tid, what)))
    return out


def all_cases() -> list[Case]:
    """Each distinct schema once: a zoo type that is also a map's key or value is not repeated."""
    cases = [c for obj in OBJECTS for c in map_cases(obj)]
    zoo = btf_of("zoo")
    for name in ZOO_TYPES:
        tid = zoo.find(name).id
        cases.append(Case(f"zoo type {name}", zoo, tid, zoo.schema(tid)))
    seen: set[int] = set()
    distinct = []
    for case in cases + hand_built_cases():
        if id(case.schema) not in seen:
            seen.add(id(case.schema))
            distinct.append(case)
    return distinct


def hand_built_cases() -> list[Case]:
    """Kinds clang 14 does not emit: ENUM64, kflag=0 bitfield INTs standing alone, int128."""
    b = BtfBuilder()
    big = 0xFFFF_FFFF_0000_0001
    u64 = b.add(
        "wide_u", Kind.ENUM64, 2, 8, b.s("U_ONE"), 1, 0, b.s("U_BIG"), big & 0xFFFFFFFF, big >> 32
    )
    neg = (-5) & (2**64 - 1)
    s64 = b.add("wide_s", Kind.ENUM64, 1, 8, b.s("S_NEG"), neg & 0xFFFFFFFF, neg >> 32, kflag=True)
    e16 = b.add("short_e", Kind.ENUM, 1, 2, b.s("SHORT_X"), 0x1234)
    # an INT that is itself a bitfield (the kflag=0 form): 5 signed bits at 3 of a u32
    five = b.int_("int", 4, signed=True, bits=5, offset=3)
    idx = b.int_("__ARRAY_SIZE_TYPE__", 4)
    arr = b.add("", Kind.ARRAY, 0, 0, five, idx, 3)
    i128 = b.int_("__int128", 16, signed=True)
    boolean = b.int_("_Bool", 1, boolean=True)
    rec = b.struct_("rec", 32, [("n", i128, 0), ("fives", arr, 128), ("ok", boolean, 224)])
    btf = Btf.from_bytes(b.bytes())
    return [
        Case(f"hand-built {btf.describe(t)}", btf, t, btf.schema(t))
        for t in (u64, s64, e16, five, arr, rec)
    ]


CASES = all_cases()
BY_LABEL = {c.label: c for c in CASES}


# -- comparing results ---------------------------------------------------------


def norm(x: object) -> object:
    """Compares equal only if types, keys, order, values and float bits all match."""
    if isinstance(x, cs.Container):
        return ("C", [(k, norm(v)) for k, v in x.items() if k != "_io"])
    if isinstance(x, cs.ListContainer):
        return ("L", [norm(v) for v in x])
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return ("D", type(x), [(k, norm(v)) for k, v in vars(x).items()])
    if isinstance(x, list | tuple | dict):
        raise AssertionError(f"unexpected plain {type(x).__name__} in a parse result: {x!r}")
    if isinstance(x, float):
        return (type(x), struct.pack("<d", x), getattr(x, "raw", None))
    return (type(x), x)


def parse(schema: Schema, raw: bytes) -> tuple[bool, object]:
    try:
        return True, schema.parse(raw)
    except Exception:
        return False, None


def build(schema: Schema, value: object) -> bytes | None:
    try:
        return schema.build(value)
    except Exception:
        return None


class FellBack(Exception):
    """The generated code handed a value or bytes to construct."""


def generated(codec: Codec[Any]) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The codec's generated encode/decode with the construct fallback replaced by FellBack.

    Only for a codec of its own: the fallback is swapped in its plan's namespace.
    """
    plan = codec._plan
    assert plan is not None

    def fell_back(_: object) -> Any:
        raise FellBack

    plan.encode.__globals__["_slow_encode"] = fell_back
    plan.decode.__globals__["_slow_decode"] = fell_back
    return plan.encode, plan.decode


def assert_encode_agrees(codec: Codec[Any], schema: Schema, value: object) -> None:
    expected = build(schema, value)
    if expected is None:
        with pytest.raises(tm.CodecError) as info:
            codec.encode(value)
        assert info.value.path.startswith(codec.what)
    else:
        assert codec.encode(value) == expected


# -- bytes and values ------------------------------------------------------------

#: Bytes that make the interesting cases common: NaN and signalling-NaN floats
#: (0x7f/0xff with 0x80-0xbf), printable text with NULs after it, 0/1 bools,
#: enum values, sign bits.
_SPICE = [0x00, 0x00, 0x01, 0x05, 0x7F, 0x80, 0x81, 0xA0, 0xC8, 0xFF, 0xFD, 0x20, 0x41, 0x7A]


#: 4-byte words at aligned offsets, where a float (or an int or enum) sits:
#: signalling and quiet NaNs of either sign, infinities, small ints.
_WORDS: Strategy = st.one_of(
    st.integers(1, (1 << 22) - 1).map(lambda m: struct.pack("<I", 0x7F800000 | m)),
    st.integers(1, (1 << 22) - 1).map(lambda m: struct.pack("<I", 0xFF800000 | m)),
    st.integers(0, (1 << 22) - 1).map(lambda m: struct.pack("<I", 0x7FC00000 | m)),
    st.sampled_from([b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff", b"ab\x00\x00", b"\x01\0\0\0"]),
    st.binary(min_size=4, max_size=4),
)


def raw_bytes(size: int) -> Strategy:
    spiced = st.lists(
        st.sampled_from(_SPICE) | st.integers(0, 255), min_size=size, max_size=size
    ).map(bytes)
    words = st.lists(_WORDS, min_size=(size + 3) // 4, max_size=(size + 3) // 4).map(
        lambda ws: b"".join(ws)[:size]
    )
    return st.binary(min_size=size, max_size=size) | spiced | words


WRONG: Strategy = st.sampled_from([None, 1.5, [1], {"a": 1}, object(), b"\x01", "x"])


def int_range(size: int, signed: bool) -> tuple[int, int]:
    bits = 8 * size
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def ints(lo: int, hi: int, valid: bool) -> Strategy:
    good = st.integers(lo, hi) | st.sampled_from([lo, hi])
    if valid:
        return good
    return good | st.sampled_from([lo - 1, hi + 1, True, False]) | WRONG


def float32s(valid: bool) -> Strategy:
    nan_bits = st.tuples(st.integers(0, 1), st.integers(1, (1 << 23) - 1)).map(
        lambda sm: struct.pack("<I", (sm[0] << 31) | 0x7F800000 | sm[1])
    )
    kept = (nan_bits | st.binary(min_size=4, max_size=4)).map(Float32().parse)
    good = st.floats(width=32) | kept | st.integers(-(2**24), 2**24)
    if valid:
        return good
    return good | st.floats() | st.sampled_from([1e39, -1e300, 2**200, "1.0"]) | WRONG


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def char_arrays(n: int, valid: bool) -> Strategy:
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=n).filter(
        lambda s: len(s.encode("utf-8")) <= n
    )
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=n)
    raw = st.binary(max_size=n)
    good: Strategy = printable | text | raw | raw.map(bytearray) | raw.map(_view)
    if valid:
        return good
    too_long = st.binary(min_size=n + 1, max_size=n + 4)
    return good | too_long | too_long.map(lambda b: b.hex()) | st.just("\ud800") | WRONG


def enums(cls: type[enum.IntEnum], lo: int, hi: int, valid: bool) -> Strategy:
    fitting = [m for m in cls if lo <= m <= hi]
    good = ints(lo, hi, True)
    if fitting:
        good = good | st.sampled_from(fitting) | st.sampled_from([m.name for m in fitting])
    if valid:
        return good
    return good | ints(lo, hi, False) | st.just("NOT_AN_ENUMERATOR") | st.sampled_from(list(cls))


class Values:
    """Hypothesis strategies for the Python values of a BTF type."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf

    def of(self, type_id: int, valid: bool) -> Strategy:
        btf = self.btf
        t = btf.resolve(type_id)
        k = t.kind
        if k is Kind.INT:
            signed = bool(t.int_encoding & 1)
            if t.is_bitfield_int:
                return self.bits(t.int_bits, signed, valid)
            if t.int_encoding & 4:
                bools = st.booleans() | ints(0, (1 << (8 * t.size)) - 1, True)
                return bools if valid else bools | ints(0, (1 << (8 * t.size)) - 1, False)
            return ints(*int_range(t.size, signed), valid)
        if k is Kind.PTR:
            return ints(0, 2**64 - 1, valid)
        if k is Kind.FLOAT:
            if t.size == 4:
                return float32s(valid)
            return st.floats() if valid else st.floats() | WRONG
        if k in (Kind.ENUM, Kind.ENUM64):
            cls = btf.enum_class(t.id)
            lo = -(1 << (8 * t.size - 1))
            return enums(cls, lo, (1 << (8 * t.size)) - 1, valid)
        if k is Kind.ARRAY:
            if btf.is_char_array(t):
                return char_arrays(t.nelems, valid)
            elem = self.of(t.elem, valid)
            good = st.lists(elem, min_size=t.nelems, max_size=t.nelems)
            if valid:
                return good
            return good | st.lists(elem, min_size=t.nelems + 1, max_size=t.nelems + 1) | WRONG
        if k is Kind.UNION:
            return self.union(t, valid)
        assert k is Kind.STRUCT, k
        return self.struct(t, valid)

    def bits(self, width: int, signed: bool, valid: bool) -> Strategy:
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        return ints(lo, hi, valid)

    def bitfield(self, type_id: int, width: int, valid: bool) -> Strategy:
        kind, signed = self.btf.bitfield_kind(type_id, width, "value")
        if kind == "bool":
            return st.booleans() | ints(0, 1, valid)
        if kind == "enum":
            cls = self.btf.enum_class(self.btf.resolve(type_id).id)
            lo, hi = (
                (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            )
            return enums(cls, lo, hi, valid)
        return self.bits(width, signed, valid)

    def members(self, t: Any, valid: bool) -> dict[str, Strategy]:
        out: dict[str, Strategy] = {}
        for slot in self.btf.layout(t):
            if isinstance(slot, FieldSlot):
                out[slot.name] = self.of(slot.type_id, valid)
            elif isinstance(slot, BitsSlot):
                for f in slot.fields:
                    out[f.name] = self.bitfield(f.type_id, f.width, valid)
        return out

    def struct(self, t: Any, valid: bool) -> Strategy:
        fields = self.members(t, valid)
        good = st.fixed_dictionaries(fields)
        if valid:
            return good
        missing = good.flatmap(
            lambda d: st.sampled_from(sorted(d) or [""]).map(
                lambda k: {n: v for n, v in d.items() if n != k}
            )
        )
        return good | missing | good.map(cs.Container) | WRONG

    def union(self, t: Any, valid: bool) -> Strategy:
        fields = self.members(t, valid)
        if valid:  # one member (or none) never disagrees with another
            one = st.sampled_from(sorted(fields)).flatmap(lambda n: fields[n].map(lambda v: {n: v}))
            return one | st.just({})
        return st.fixed_dictionaries({}, optional=fields) | WRONG


# -- the properties, on every schema --------------------------------------------


def test_every_zoo_map_and_type_is_covered() -> None:
    labels = {c.label for c in CASES}
    zoo = btf_of("zoo")
    zoo_maps = {f"zoo.{d.name}" for d in zoo.map_defs()}
    assert len(zoo_maps) == 8
    for m in zoo_maps:
        assert f"{m}.value" in labels
    schemas = {id(c.schema) for c in CASES}
    for name in ZOO_TYPES:
        assert id(zoo.schema(zoo.find(name).id)) in schemas, name


def test_every_schema_from_btf_is_fast() -> None:
    """Every map of every object, every zoo type, the hand-built kinds: all have fast plans."""
    for case in CASES:
        assert make_codec(case.schema).fast, case.label
    assert set(GROUPED) <= set(BY_LABEL)


def test_grouped_schemas_use_group_plans() -> None:
    """The records with unions and bitfield runs are fast through the group hooks."""

    def grouped(sc: Any) -> bool:
        if isinstance(sc, UnionMember | OverlayEnd) or (
            isinstance(sc, BitField) and not sc.consume
        ):
            return True
        subs = [*getattr(sc, "subcons", []), getattr(sc, "subcon", None)]
        return any(grouped(sub) for sub in subs if sub is not None)

    labels = {c.label for c in CASES if grouped(c.schema)}
    assert set(GROUPED) <= labels
    for label in labels:
        codec = make_codec(BY_LABEL[label].schema)
        assert codec._plan is not None, label
        # no part of the record is handed to construct's parse or build
        for value in codec._plan.decode.__globals__.values():
            owner = getattr(value, "__self__", None)
            assert not isinstance(owner, cs.Construct), (label, value)


_codecs: dict[str, Codec[Any]] = {}
_generated: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {}
_values: dict[tuple[str, bool], Strategy] = {}


def codec_of(label: str) -> Codec[Any]:
    """The codec of a case, made once (compiling a large record takes milliseconds)."""
    codec = _codecs.get(label)
    if codec is None:
        codec = _codecs[label] = make_codec(BY_LABEL[label].schema)
    return codec


def generated_of(label: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The generated code of a case's own codec, its construct fallback raising FellBack."""
    got = _generated.get(label)
    if got is None:
        got = _generated[label] = generated(make_codec(BY_LABEL[label].schema))
    return got


def values_of(label: str, valid: bool) -> Strategy:
    strategy = _values.get((label, valid))
    if strategy is None:
        case = BY_LABEL[label]
        strategy = _values[label, valid] = Values(case.btf).of(case.type_id, valid)
    return strategy


def draws(label: str) -> int:
    """Values drawn per example: fewer for the large records (their parts are cases too)."""
    return 1 if codec_of(label).size > 128 else 3


@pytest.mark.parametrize("label", sorted(BY_LABEL))
@SETTINGS
@given(data=st.data())
def test_random_bytes_decode_as_construct_parses(label: str, data: st.DataObject) -> None:
    case = BY_LABEL[label]
    codec = codec_of(label)
    for _ in range(draws(label)):
        raw = data.draw(raw_bytes(codec.size))
        ok, expected = parse(case.schema, raw)
        if not ok:
            with pytest.raises(tm.CodecError):
                codec.decode(raw)
            continue
        got = codec.decode(raw)
        assert norm(got) == norm(expected)
        # a decoded value is a valid one: it encodes as construct builds it
        assert codec.encode(got) == case.schema.build(expected)


@pytest.mark.parametrize("label", sorted(BY_LABEL))
@SETTINGS
@given(data=st.data())
def test_any_values_encode_or_fail_as_construct_does(label: str, data: st.DataObject) -> None:
    case = BY_LABEL[label]
    codec = codec_of(label)
    for _ in range(draws(label)):
        value = data.draw(values_of(label, False))
        assert_encode_agrees(codec, case.schema, value)


@pytest.mark.parametrize("label", sorted(BY_LABEL))
@SETTINGS
@given(data=st.data())
def test_generated_code_does_the_work_itself(label: str, data: st.DataObject) -> None:
    """Valid values and all bytes never reach construct; nothing else is accepted.

    Every schema has a fast plan, so this also proves that valid values
    encode as construct builds them (the codec's encode is this code).
    """
    case = BY_LABEL[label]
    encode, decode = generated_of(label)
    size = codec_of(label).size
    for _ in range(draws(label)):
        value = data.draw(values_of(label, True))
        expected = build(case.schema, value)
        assert expected is not None, f"valid value {value!r} does not build"
        assert encode(value) == expected
        raw = data.draw(raw_bytes(size))
        assert norm(decode(raw)) == norm(case.schema.parse(raw))
    for _ in range(draws(label)):
        value = data.draw(values_of(label, False))
        try:
            got = encode(value)
        except FellBack:
            continue
        assert got == build(case.schema, value)


@pytest.mark.parametrize("label", sorted(BY_LABEL))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_batches_and_percpu_strides_equal_single_records(label: str, data: st.DataObject) -> None:
    case = BY_LABEL[label]
    codec = codec_of(label)
    size = codec.size
    stride = data.draw(st.sampled_from([size, (size + 7) // 8 * 8]))
    raws = data.draw(st.lists(raw_bytes(size), max_size=4))
    blob = b"".join(r + bytes(stride - size) for r in raws)
    parsed = [case.schema.parse(r) for r in raws]
    got = codec.decode_strided(blob, len(raws), stride)
    assert [norm(x) for x in got] == [norm(x) for x in parsed]
    assert codec.encode_strided(got, stride) == b"".join(
        case.schema.build(p) + bytes(stride - size) for p in parsed
    )
    batch = data.draw(st.lists(values_of(label, False), max_size=4))
    built = [build(case.schema, v) for v in batch]
    if all(b is not None for b in built):
        assert codec.encode_many(batch) == b"".join(b for b in built if b is not None)
    else:
        bad = next(i for i, b in enumerate(built) if b is None)
        with pytest.raises(tm.CodecError) as info:
            codec.encode_many(batch)
        assert info.value.path.startswith(f"{codec.what}[{bad}]")


# -- the hooks, one class at a time ----------------------------------------------


class Level(enum.IntEnum):
    LOW = -2
    ZERO = 0
    HIGH = 200
    ALIAS = 200  # an alias, as C allows


class Lenient(enum.IntEnum):
    """A user enum whose _missing_ answers for some values parse would not find."""

    ONE = 1

    @classmethod
    def _missing_(cls, value: object) -> Lenient | None:
        return cls.ONE if value == 3 else None


@dataclass
class Leaf:
    schema: Schema
    valid: Strategy
    anything: Strategy


def leaf_specs(kind: str) -> Strategy:
    """Instances of one leaf class with random parameters, and their values."""

    def char(n: int) -> Leaf:
        return Leaf(CharArray(n), char_arrays(n, True), char_arrays(n, False))

    def boolean(size: int) -> Leaf:
        hi = (1 << (8 * size)) - 1
        good = st.booleans() | ints(0, hi, True)
        return Leaf(BoolInt(size), good, good | ints(0, hi, False))

    def enum_int(size: int, signed: bool, cls: type[enum.IntEnum]) -> Leaf:
        lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size)) - 1
        return Leaf(EnumInt(size, signed, cls), enums(cls, lo, hi, True), enums(cls, lo, hi, False))

    def bitfield(nbytes: int, shift: int, width: int, signed: bool, how: str) -> Leaf:
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if how == "enum":
            sc: Schema = BitField(nbytes, shift, width, signed, enum=Level, consume=True)
            good = enums(Level, lo, hi, True)
            bad = enums(Level, lo, hi, False)
        elif how == "bool":
            sc = BitField(nbytes, shift, width, signed, boolean=True, consume=True)
            fits = [b for b in (False, True) if lo <= b <= hi]  # a signed 1-bit field holds -1, 0
            good, bad = ints(lo, hi, True) | st.sampled_from(fits), ints(lo, hi, False)
        else:
            sc = BitField(nbytes, shift, width, signed, consume=True)
            good, bad = ints(lo, hi, True), ints(lo, hi, False)
        return Leaf(sc, good, bad)

    sizes = st.sampled_from([1, 2, 3, 4, 5, 8, 16])
    # the field fits its bytes, as BTF's layout guarantees
    bit_leaf = sizes.flatmap(
        lambda n: st.integers(0, 8 * n - 1).flatmap(
            lambda shift: st.tuples(
                st.just(n),
                st.just(shift),
                st.integers(1, 8 * n - shift),
                st.booleans(),
                st.sampled_from(["int", "enum", "bool"]),
            )
        )
    ).map(lambda a: bitfield(*a))
    by_kind: dict[str, Strategy] = {
        "CharArray": st.integers(0, 20).map(char),
        "BoolInt": sizes.map(boolean),
        "EnumInt": st.tuples(
            st.sampled_from([1, 2, 3, 4, 8, 16]),
            st.booleans(),
            st.sampled_from([Level, Lenient]),
        ).map(lambda a: enum_int(*a)),
        "Float32": st.just(Leaf(Float32(), float32s(True), float32s(False))),
        "BitField": bit_leaf,
    }
    return by_kind[kind]


def records(leaf: Leaf) -> Strategy:
    """The leaf alone, in a Struct between other fields, and in an Array."""
    alone = st.just(leaf)
    in_struct = st.just(
        Leaf(
            cs.Struct("a" / cs.Int8ul, "x" / leaf.schema, cs.Padding(1), "b" / cs.Int16ul),
            st.fixed_dictionaries({"a": st.integers(0, 255), "x": leaf.valid, "b": st.just(7)}),
            st.fixed_dictionaries({"a": st.integers(0, 255), "x": leaf.anything, "b": st.just(7)}),
        )
    )
    in_array = st.just(
        Leaf(
            cs.Array(2, leaf.schema),
            st.lists(leaf.valid, min_size=2, max_size=2),
            st.lists(leaf.anything, min_size=1, max_size=3),
        )
    )
    return alone | in_struct | in_array


@pytest.mark.parametrize("kind", ["CharArray", "BoolInt", "EnumInt", "Float32", "BitField"])
@settings(
    max_examples=int(os.environ.get("TYPEDMAPS_BTF_FAST_EXAMPLES", "150")) * 2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_each_hook_is_its_class(kind: str, data: st.DataObject) -> None:
    """Each class's hook against its own parse and build, alone and inside records."""
    spec = data.draw(leaf_specs(kind).flatmap(records))
    codec = make_codec(spec.schema)
    assert codec.fast, spec.schema
    encode, decode = generated(make_codec(spec.schema))
    for _ in range(3):
        raw = data.draw(raw_bytes(codec.size))
        ok, expected = parse(spec.schema, raw)
        if ok:
            assert norm(codec.decode(raw)) == norm(expected)
            assert norm(decode(raw)) == norm(expected)  # the generated code, not construct
        else:
            with pytest.raises(tm.CodecError):
                codec.decode(raw)
        value = data.draw(spec.valid)
        expected_bytes = build(spec.schema, value)
        assert expected_bytes is not None, value
        assert codec.encode(value) == expected_bytes
        assert encode(value) == expected_bytes  # the generated code, not construct
        value = data.draw(spec.anything)
        assert_encode_agrees(codec, spec.schema, value)
        try:
            got = encode(value)
        except FellBack:
            continue
        assert got == build(spec.schema, value)


def test_hook_details() -> None:
    """Cases worth naming: NaN bits, bytes after the NUL, aliases, _missing_, refusals."""
    f = make_codec(Float32())
    snan = struct.pack("<I", 0x7F800001)
    got = f.decode(snan)
    assert math.isnan(got)
    assert type(got).__name__ == "_NaN32"
    assert f.encode(got) == snan
    assert f.encode(f.decode(struct.pack("<I", 0xFFC00000))) == struct.pack("<I", 0xFFC00000)
    with pytest.raises(tm.CodecError):
        f.encode(1e39)

    c = make_codec(CharArray(8))
    assert c.decode(b"sh\0\0\0\0\0\0") == "sh"
    assert c.decode(b"sh\0ll\0\0\0") == b"sh\0ll\0\0\0"
    assert c.decode(b"12345678") == "12345678"
    assert c.decode(b"tab\t\0\0\0\0") == b"tab\t\0\0\0\0"
    assert c.decode(b"\x7f" + bytes(7)) == b"\x7f" + bytes(7)
    assert c.encode("é") == "é".encode() + bytes(6)
    with pytest.raises(tm.CodecError, match="9 bytes do not fit"):
        c.encode("x" * 9)

    e: Codec[Any] = make_codec(EnumInt(1, False, Level))
    assert e.decode(b"\xc8") is Level.HIGH
    assert e.encode("ALIAS") == b"\xc8"
    assert e.encode(-2) == b"\xfe"  # the signed form of an unsigned 1-byte enum
    lenient = make_codec(EnumInt(4, False, Lenient))
    assert lenient.decode(struct.pack("<I", 3)) is Lenient.ONE
    assert lenient.decode(struct.pack("<I", 4)) == 4

    b = make_codec(BoolInt(1))
    assert [b.decode(bytes([i])) for i in (0, 1, 2)] == [False, True, 2]
    assert b.encode(True) == b"\x01"

    # a bitfield of a run offers no leaf of its own, but is a member of its run's group
    run = cs.Struct("a" / BitField(1, 0, 3, False), "b" / BitField(1, 3, 5, True), OverlayEnd(1))
    codec: Codec[Any] = make_codec(run)
    assert codec.fast
    assert codec.decode(b"\xfd") == cs.Container(a=5, b=-1)
    assert codec.encode({"a": 5, "b": -1}) == b"\xfd"
    with pytest.raises(tm.CodecError):
        codec.encode({"a": 8, "b": 0})
    with pytest.raises(TypeError):
        BitField(1, 0, 3, False).typedmaps_fast_leaf()
    assert BitField(1, 0, 3, False, consume=True).typedmaps_fast_overlay() is None


# -- through the typed layer, on a loaded object ---------------------------------


def test_typed_maps_of_a_loaded_zoo_use_fast_codecs(bpf: None) -> None:
    """The kernel's own BTF for the maps gives the same fast schemas; entries round-trip."""
    with tm.BpfObject.open(bpf_object("zoo")) as obj:
        obj.load()
        floats = tm.typed(obj.maps["zoo_floats"])
        assert isinstance(floats, tm.TypedMap)
        assert floats.key_codec.fast
        assert floats.value_codec.fast
        nan = Float32().parse(struct.pack("<I", 0x7FA00001))
        floats["pi"] = 3.25
        floats[b"\x01\x02"] = nan
        raw = {k: v for k, v in obj.maps["zoo_floats"].lookup_batch()}
        assert raw[b"pi" + bytes(6)] == struct.pack("<f", 3.25)
        assert raw[b"\x01\x02" + bytes(6)] == struct.pack("<I", 0x7FA00001)
        assert floats["pi"] == 3.25
        back = floats[b"\x01\x02" + bytes(6)]
        assert norm(back) == norm(nan)

        pcpu = tm.typed(obj.maps["zoo_pcpu_hash"])
        assert isinstance(pcpu, tm.PerCpuTypedMap)
        assert pcpu.key_codec.fast
        assert pcpu.value_codec.fast  # struct zoo_bits: bitfield runs, as one group each
        stats = tm.typed(obj.maps["zoo_pcpu_arr"])
        assert isinstance(stats, tm.PerCpuTypedMap)
        assert stats.value_codec.fast
        values = stats[0]
        assert all(v.ratio == 0.0 and v.kind == 0 for v in values)


# -- the records `typedmaps gen` writes ------------------------------------------------


@pytest.fixture(scope="module")
def generated_zoo(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("gen_fast") / "zoo_types_fast.py"
    typedmaps_cli("gen", str(bpf_object("zoo")), "-o", str(out))
    spec = importlib.util.spec_from_file_location("zoo_types_fast", out)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["zoo_types_fast"] = mod
    spec.loader.exec_module(mod)
    return mod


#: Every record `typedmaps gen` writes for the zoo, unions and bitfield runs included
#: (key records, WideKey, are frozen and read through FrozenDataclassStruct).
GENERATED_FAST = (
    "WideKey",
    "ZooBits",
    "ZooEvent",
    "ZooInner",
    "ZooInts",
    "ZooStats",
    "ZooValue",
    "ZooWord",
    "ZooWordHalves",
)


def record_schema(cls: type[Any]) -> DataclassStruct[Any]:
    """The schema a generated module gives a record class (key records are frozen)."""
    if cls.__dataclass_params__.frozen:
        return FrozenDataclassStruct(cls)
    return DataclassStruct(cls)


def test_generated_records_get_fast_plans(generated_zoo: ModuleType) -> None:
    for name in GENERATED_FAST:
        codec = make_codec(record_schema(getattr(generated_zoo, name)))
        assert codec.fast, name


#: Generated record class -> its C struct, for values drawn from the BTF member types.
GENERATED_C_NAMES = {
    "WideKey": "wide_key",
    "ZooEvent": "zoo_event",
    "ZooInner": "zoo_inner",
    "ZooInts": "zoo_ints",
    "ZooStats": "zoo_stats",
    "ZooBits": "zoo_bits",
    "ZooWord": "zoo_word",
}


@pytest.mark.parametrize("name", sorted(GENERATED_C_NAMES))
@SETTINGS
@given(data=st.data())
def test_generated_records_equal_construct(
    generated_zoo: ModuleType, name: str, data: st.DataObject
) -> None:
    """Dataclass records with the hook classes inside: same objects, bytes and errors."""
    schema = record_schema(getattr(generated_zoo, name))
    codec = make_codec(schema)
    raw = data.draw(raw_bytes(codec.size))
    expected = schema.parse(raw)
    got = codec.decode(raw)
    assert norm(got) == norm(expected)
    assert codec.encode(got) == schema.build(expected)
    # one member replaced by a value of its C type, valid or not
    zoo = btf_of("zoo")
    members = Values(zoo).members(zoo.find(GENERATED_C_NAMES[name]), valid=False)
    for _ in range(4):
        member = data.draw(st.sampled_from(sorted(members)))
        value = data.draw(members[member])
        changed = dataclasses.replace(got, **{py_name(member): value})
        assert_encode_agrees(codec, schema, changed)
