"""Group plans: unions and bitfield runs decoded from one struct item equal construct.

typedmaps.btf's BitField (of a run), UnionMember and OverlayEnd read
bytes their neighbours share; they take part in fast plans through the
codec's group hooks (FAST_OVERLAY_HOOK, FAST_GROUP_END_HOOK). Random
groups are built here with parameters BTF never produces (overlapping
bitfields, masks that leave holes, members smaller than their union,
Default values, nested unions, a big-endian majority around the group, a
DataclassStruct holding the group) and checked like every other plan:

- ``decode(b)`` equals ``schema.parse(b)`` in types, keys and order;
- ``encode(v)`` equals ``schema.build(v)``, or raises CodecError exactly
  when build raises (members that disagree on shared bits, values out of
  range, missing or wrong members);
- the generated code decodes all bytes and encodes all valid values
  itself, and never returns where construct raises.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Callable
from typing import Any, TypeAlias

import construct as cs
import pytest
from construct_typed import (
    DataclassMixin,
    DataclassStruct,
    csfield,
    csfield_default,
    csfield_noinit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from typedmaps.btf import BitField, OverlayEnd, UnionMember
from typedmaps.codec import Codec, make_codec
from typedmaps.errors import CodecError

from .test_codec_equivalence import construct_build, construct_parse, norm

Schema: TypeAlias = "cs.Construct[Any, Any]"
Strategy: TypeAlias = "st.SearchStrategy[Any]"

SETTINGS = settings(
    max_examples=int(os.environ.get("TYPEDMAPS_GROUP_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1
    AUTO = 5
    NEG = -2


@dataclasses.dataclass
class Case:
    """A Struct holding one group between other fields, and strategies for its values."""

    schema: Schema
    valid: Strategy  # values that build (members agree)
    anything: Strategy  # values that may or may not build


WRONG: Strategy = st.sampled_from([None, "x", 1.5, b"\x01", [1], {"a": 1}])


# -- groups --------------------------------------------------------------------


@st.composite
def bitfield_run(draw: st.DrawFn) -> tuple[list[Schema], Strategy, Strategy, int]:
    """A run of bitfields over nbytes (overlapping sometimes), and the run's end."""
    nbytes = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 16]))
    count = draw(st.integers(1, 5))
    fields: list[Schema] = []
    valid: dict[str, Strategy] = {}
    anything: dict[str, Strategy] = {}
    for i in range(count):
        shift = draw(st.integers(0, 8 * nbytes - 1))
        width = draw(st.integers(1, min(40, 8 * nbytes - shift)))
        signed = draw(st.booleans())
        how = draw(st.sampled_from(["int", "int", "enum", "bool"]))
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        good: Strategy = st.integers(lo, hi) | st.sampled_from([lo, hi])
        if how == "enum":
            bf: Schema = BitField(nbytes, shift, width, signed, enum=Mode)
            names = [m.name for m in Mode if lo <= m <= hi]
            if names:
                good = good | st.sampled_from(names) | st.sampled_from([Mode[n] for n in names])
        elif how == "bool":
            bf = BitField(nbytes, shift, width, signed, boolean=True)
            good = good | st.sampled_from([b for b in (False, True) if lo <= b <= hi])
        else:
            bf = BitField(nbytes, shift, width, signed)
        bad = good | st.sampled_from([lo - 1, hi + 1, "NOPE"]) | WRONG
        name = f"b{i}"
        default = draw(st.sampled_from([None, None, 0]))
        if default is not None and lo <= default <= hi:
            bf = cs.Default(bf, default)
            good = good | st.none()
        fields.append(name / bf)
        valid[name] = good
        anything[name] = bad
    # overlapping fields agree only by chance: the valid values set each field alone
    return fields, _dicts(valid, overlap=_overlaps(fields)), _dicts(anything, optional=True), nbytes


def _overlaps(fields: list[Any]) -> bool:
    masks = []
    for f in fields:
        core = f.subcon
        while not isinstance(core, BitField):
            core = core.subcon
        masks.append(core.mask)
    return any(masks[i] & masks[j] for i in range(len(masks)) for j in range(i))


def _dicts(
    parts: dict[str, Strategy], *, overlap: bool = False, optional: bool = False
) -> Strategy:
    if optional:
        return st.fixed_dictionaries({}, optional=parts) | WRONG
    if not overlap:
        return st.fixed_dictionaries(parts)
    # fields sharing bits must agree on them: zeros always do
    return st.just(dict.fromkeys(parts, 0))


def _member_schemas(size: int) -> Strategy:
    """(schema, valid values, any values) of a union member of at most ``size`` bytes."""
    opts: list[tuple[Schema, Strategy, Strategy]] = []
    for n, sc in ((1, cs.Int8ul), (2, cs.Int16ul), (4, cs.Int32ub), (8, cs.Int64sl)):
        if n <= size:
            lo, hi = (-(2**63), 2**63 - 1) if sc is cs.Int64sl else (0, 2 ** (8 * n) - 1)
            opts.append((sc, st.integers(lo, hi), st.integers(lo - 1, hi + 1) | WRONG))
    opts.append(
        (
            cs.Array(size, cs.Int8ul),
            st.lists(st.integers(0, 255), min_size=size, max_size=size),
            st.lists(st.integers(0, 300), max_size=size + 1),
        )
    )
    if size >= 2:
        half = size // 2
        sub = cs.Struct("lo" / cs.Bytes(half), "hi" / cs.Int8ul)
        good = st.fixed_dictionaries(
            {"lo": st.binary(min_size=half, max_size=half), "hi": st.integers(0, 255)}
        )
        opts.append((sub, good, good | WRONG))
        opts.append(
            (
                cs.PaddedString(size, "ascii"),
                st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=size),
                st.text(max_size=size + 2) | WRONG,
            )
        )
    bits = BitField(size, 1, 8 * size - 2, True, consume=True)  # a union's bitfield member
    lim = 1 << (8 * size - 3)
    opts.append((bits, st.integers(-lim, lim - 1), st.integers(-lim - 1, lim) | WRONG))
    return st.sampled_from(opts)


@st.composite
def union(draw: st.DrawFn, depth: int = 0) -> tuple[list[Schema], Strategy, Strategy, int]:
    """A union of 1-4 members, some smaller than it, masks given or found, one maybe nested."""
    size = draw(st.sampled_from([1, 2, 4, 6, 8, 16]))
    count = draw(st.integers(1, 4))
    fields: list[Schema] = []
    valid: dict[str, Strategy] = {}
    anything: dict[str, Strategy] = {}
    for i in range(count):
        msize = draw(st.sampled_from(sorted({size, max(1, size // 2)})))
        if depth == 0 and draw(st.integers(0, 5)) == 0:
            inner, good, bad, isize = draw(union(depth=1))
            sub: Schema = cs.Struct(*inner, OverlayEnd(isize))
            msize = isize
            if msize > size or any(_has_text(f) for f in inner):
                continue
        else:
            sub, good, bad = draw(_member_schemas(msize))
        full = (1 << (8 * sub.sizeof())) - 1
        # without a mask UnionMember finds one by parsing all-ones bytes: not for
        # text (not ASCII) or a nested union (its members may disagree)
        found = [] if isinstance(sub, cs.StringEncoded | cs.Struct) else [None]
        mask = draw(st.sampled_from([*found, full, full & draw(st.integers(0, full))]))
        member: Schema = UnionMember(sub) if mask is None else UnionMember(sub, mask)
        if draw(st.booleans()):
            member = cs.Default(member, None)
        name = f"u{i}"
        fields.append(name / member)
        valid[name] = good
        anything[name] = bad
    if not fields:
        sub, good, bad = draw(_member_schemas(size))
        fields.append("u0" / cs.Default(UnionMember(sub, (1 << (8 * sub.sizeof())) - 1), None))
        valid["u0"], anything["u0"] = good, bad
    # one member alone always builds; any mix may disagree (then build raises)
    names = sorted(valid)
    one = st.sampled_from(names).flatmap(lambda n: valid[n].map(lambda v: {n: v}))
    needed = [str(f.name) for f in fields if not f.flagbuildnone]
    one = one.map(lambda d: {**{n: None for n in needed}, **d})
    return fields, one, _dicts(anything, optional=True), size


def _has_text(sc: Schema) -> bool:
    if isinstance(sc, cs.StringEncoded):
        return True
    subs = [*getattr(sc, "subcons", []), getattr(sc, "subcon", None)]
    return any(_has_text(x) for x in subs if x is not None)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A group between other fields, in a Struct or a DataclassStruct, either byte order."""
    fields, valid, anything, nbytes = draw(bitfield_run() | union())
    end_named = draw(st.booleans())
    end: Schema = ("_end" / OverlayEnd(nbytes)) if end_named else OverlayEnd(nbytes)
    endian = draw(st.sampled_from(["<", ">"]))
    head = cs.FormatField(endian, "H")
    tail = cs.FormatField(endian, "L")
    if draw(st.booleans()):
        schema = cs.Struct("head" / head, *fields, end, "tail" / tail, "tail2" / tail)

        def wrap(d: Any, h: int, t: int) -> Any:
            if not isinstance(d, dict):
                return d
            return {"head": h, **d, "tail": t, "tail2": t}

        def with_frame(s: Strategy) -> Strategy:
            return st.tuples(s, st.integers(0, 65535), st.integers(0, 2**32 - 1)).map(
                lambda x: wrap(*x)
            )

        return Case(schema, with_frame(valid), with_frame(anything))
    return _record_case(fields, end, (head, tail), valid, anything)


_serial = 0


def _record_case(
    fields: list[Schema],
    end: Schema,
    frame: tuple[Schema, Schema],
    valid: Strategy,
    anything: Strategy,
) -> Case:
    """The same group in a DataclassStruct, as `typedmaps gen` writes unions and runs."""
    global _serial
    head, tail = frame
    _serial += 1
    specs: list[tuple[str, type, Any]] = [("head", int, csfield(head))]
    for f in fields:
        sub: Any = f.subcon  # type: ignore[attr-defined]
        if sub.flagbuildnone:
            inner = sub.subcon if isinstance(sub, cs.Default) else sub
            default = sub.value if isinstance(sub, cs.Default) else None
            specs.append((str(f.name), object, csfield_default(inner, default=default)))
        else:
            specs.append(
                (str(f.name), object, dataclasses.field(kw_only=True, metadata={"subcon": sub}))
            )
    specs.append(
        ("_end", object, csfield_noinit(end.subcon if isinstance(end, cs.Renamed) else end))
    )
    specs.append(("tail", int, dataclasses.field(kw_only=True, metadata={"subcon": tail})))
    cls = dataclasses.make_dataclass(f"Grp{_serial}", specs, bases=(DataclassMixin,))
    schema: Schema = DataclassStruct(cls)
    init = [f.name for f in dataclasses.fields(cls) if f.init]

    def make(d: Any, h: int, t: int) -> Any:
        if not isinstance(d, dict):
            return d
        kw = {n: d.get(n) for n in init if n not in ("head", "tail")}
        return cls(head=h, tail=t, **kw)

    def instances(s: Strategy) -> Strategy:
        return st.tuples(s, st.integers(0, 65535), st.integers(0, 2**32 - 1)).map(
            lambda x: make(*x)
        )

    return Case(schema, instances(valid), instances(anything))


# -- the properties --------------------------------------------------------------


class FellBack(Exception):
    """The generated code handed the value or bytes to construct."""


def generated(codec: Codec[Any]) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    plan = codec._plan
    assert plan is not None

    def fell_back(_: object) -> Any:
        raise FellBack

    plan.encode.__globals__["_slow_encode"] = fell_back
    plan.decode.__globals__["_slow_decode"] = fell_back
    return plan.encode, plan.decode


@SETTINGS
@given(case=cases(), data=st.data())
def test_groups_decode_as_construct_parses(case: Case, data: st.DataObject) -> None:
    codec = make_codec(case.schema)
    assert codec.fast, case.schema
    _, decode = generated(make_codec(case.schema))
    for _ in range(3):
        raw = data.draw(st.binary(min_size=codec.size, max_size=codec.size))
        ok, expected = construct_parse(case.schema, raw)
        if not ok:  # e.g. a PaddedString member whose bytes are not ASCII
            with pytest.raises(CodecError):
                codec.decode(raw)
            continue
        assert norm(codec.decode(raw)) == norm(expected)
        assert norm(decode(raw)) == norm(expected)  # the generated code itself
        # what decodes encodes back as construct builds it (or fails as it fails:
        # fields sharing bits, a bool of many bits, may not agree on the way back)
        again = construct_build(case.schema, expected)
        if again is None:
            with pytest.raises(CodecError):
                codec.encode(expected)
        else:
            assert codec.encode(expected) == again


@SETTINGS
@given(case=cases(), data=st.data())
def test_groups_encode_as_construct_builds(case: Case, data: st.DataObject) -> None:
    codec = make_codec(case.schema)
    encode, _ = generated(make_codec(case.schema))
    for _ in range(3):
        value = data.draw(case.valid)
        expected = construct_build(case.schema, value)
        assert expected is not None, value
        assert codec.encode(value) == expected
        assert encode(value) == expected  # the generated code itself
    for _ in range(4):
        value = data.draw(case.anything)
        expected = construct_build(case.schema, value)
        if expected is None:
            with pytest.raises(CodecError):
                codec.encode(value)
        else:
            assert codec.encode(value) == expected
        try:
            got = encode(value)
        except FellBack:
            continue
        assert got == expected


def test_union_members_that_disagree_raise_and_agreeing_ones_build() -> None:
    word = cs.Struct(
        "word" / cs.Default(UnionMember(cs.Int32ul), None),
        "low" / cs.Default(UnionMember(cs.Int8ul), None),
        OverlayEnd(4),
    )
    codec: Codec[Any] = make_codec(word)
    assert codec.fast
    assert codec.encode({"word": 0x11223344, "low": 0x44}) == bytes.fromhex("44332211")
    assert codec.encode({"low": 7}) == bytes.fromhex("07000000")
    with pytest.raises(CodecError, match="disagree"):
        codec.encode({"word": 0x11223344, "low": 0x45})
    got = codec.decode(bytes.fromhex("44332211"))
    assert got == cs.Container(word=0x11223344, low=0x44)


def test_a_member_reading_past_its_group_or_an_open_group_has_no_plan() -> None:
    past = cs.Struct("a" / BitField(4, 0, 3, False), OverlayEnd(2), "x" / cs.Int16ul)
    open_run = cs.Struct("a" / BitField(2, 0, 3, False), "x" / cs.Int16ul)
    for schema in (past, open_run):
        assert not make_codec(schema).fast
