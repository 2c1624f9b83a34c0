"""The compiled JSON writers of `typedmaps dump` equal the bpftool-style tree formatter.

`json_writer` and `entries_writer` (typedmaps.btf.format) write the text that
`dumps(format_type(...))` writes, compact and indented, for every key and
value type of the zoo and of BPF objects in build/bpf, and for BTF generated
here: structs, unions, bitfield runs, enums of every size and sign, arrays
short and long, char arrays, floats, pointers, typedefs. Types the schema
builder refuses are refused by the writers too, with a BtfError.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import typedmaps as tm
from typedmaps.btf import Btf, BtfError, Kind
from typedmaps.btf.format import (
    JObj,
    dumps,
    entries_writer,
    format_type,
    hex_bytes,
    hex_writer,
    json_writer,
)
from typedmaps.handle import MapInfo

from .btf_builder import BtfBuilder
from .conftest import bpf_object

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(btf: Btf, tid: int, data: bytes, *, pretty: bool, level: int) -> str:
    """What the tree formatter writes for ``data`` nested ``level`` deep."""
    return dumps(format_type(btf, tid, data), pretty=pretty).replace("\n", "\n" + "    " * level)


@st.composite
def raw_values(draw: st.DrawFn, size: int) -> bytes:
    """Bytes of one value: random; mostly zeros and text (char arrays print as strings);
    or one small number repeated at a width, so that aligned fields read values like -1,
    -3, 5 and 200 (enumerators of the zoo and of the generated enums)."""
    how = draw(st.sampled_from(["random", "text", "words"]))
    if how == "random":
        return draw(st.binary(min_size=size, max_size=size))
    if how == "words":
        width = draw(st.sampled_from([1, 2, 4, 8]))
        v = draw(st.sampled_from([0, 1, 5, 7, 200, -1, -3, -(2**31)]))
        word = (v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        return (word * (size // width + 1))[:size]
    text = b'hello, zoo "quoted" \\ back'
    data = bytearray(size)
    for i in range(size):
        if draw(st.integers(0, 3)):
            data[i] = text[i % len(text)]
    return bytes(data)


# ------------------------------------------------------------------ types of real objects


def _object_types() -> list[tuple[str, str, int, int]]:
    cases = []
    for obj in ("zoo", "flows", "events", "dumpbench"):
        btf = Btf.from_file(bpf_object(obj))
        for d in btf.map_defs():
            for what, tid, size in (
                ("key", d.key_type_id, d.key_size),
                ("value", d.value_type_id, d.value_size),
            ):
                if tid:
                    cases.append((obj, f"{d.name}.{what}", tid, size))
    return cases


OBJECT_TYPES = _object_types()
_btfs: dict[str, Btf] = {}


def _btf(obj: str) -> Btf:
    if obj not in _btfs:
        _btfs[obj] = Btf.from_file(bpf_object(obj))
    return _btfs[obj]


@pytest.mark.parametrize(
    ("obj", "label", "tid", "size"), OBJECT_TYPES, ids=[c[1] for c in OBJECT_TYPES]
)
@SETTINGS
@given(data=st.data())
def test_object_types_write_what_the_tree_formatter_writes(
    obj: str, label: str, tid: int, size: int, data: st.DataObject
) -> None:
    btf = _btf(obj)
    raw = data.draw(raw_values(size))
    pad = data.draw(st.integers(0, 9))
    for pretty, level in ((False, 0), (True, 0), (True, 3)):
        w = json_writer(btf, tid, size=size, pretty=pretty, level=level)
        assert w(bytes(pad) + raw, pad) == reference(btf, tid, raw, pretty=pretty, level=level)
    text = json_writer(btf, tid)(raw, 0)
    json.loads(text)  # valid JSON (NaN and infinities are strings)


def test_zoo_features_are_exercised() -> None:
    """The zoo types above cover text, fallback lists, enum names and floats."""
    btf = _btf("zoo")
    value = btf.find("zoo_value", Kind.STRUCT)
    raw = bytearray(value.size)
    text = json_writer(btf, value.id)(bytes(raw), 0)
    assert '"name":""' in text
    assert '"color":"ZOO_RED"' in text
    assert '"f":0.0' in text


# ------------------------------------------------------------------ entries, per CPU


def _info(mt: tm.MapType, key: tuple[int, int], value: tuple[int, int]) -> MapInfo:
    return MapInfo(
        id=1,
        name="m",
        map_type=mt,
        key_size=key[1],
        value_size=value[1],
        max_entries=64,
        map_flags=tm.MapCreateFlags(0),
        btf_id=1 if key[0] or value[0] else 0,
        btf_key_type_id=key[0],
        btf_value_type_id=value[0],
    )


def entry_reference(
    btf: Btf | None, info: MapInfo, chunk: tuple[bytes, bytes, int], ncpus: int, pretty: bool
) -> list[str]:
    """The old writer: one JObj per entry through dumps(), indented as a list element."""
    kb, vb, n = chunk

    def fmt(tid: int, size: int) -> Any:
        if btf is None or not tid:
            return hex_bytes
        return lambda d: format_type(btf, tid, d[:size])

    fk = fmt(info.btf_key_type_id, info.key_size)
    fv = fmt(info.btf_value_type_id, info.value_size)
    ks, vs = info.key_size, info.value_size
    slot = (vs + 7) & ~7
    out = []
    for i in range(n):
        e = JObj([("key", fk(kb[i * ks : (i + 1) * ks]))])
        if info.map_type.is_percpu:
            base = i * slot * ncpus
            cpus = [
                JObj([("cpu", c), ("value", fv(vb[base + c * slot : base + c * slot + vs]))])
                for c in range(ncpus)
            ]
            e.append(("values", cpus))
        else:
            e.append(("value", fv(vb[i * vs : (i + 1) * vs])))
        out.append(dumps(e, pretty=pretty).replace("\n", "\n    "))
    return out


ENTRY_CASES = [
    ("zoo", "zoo_hash"),
    ("zoo", "zoo_array"),
    ("zoo", "zoo_pcpu_hash"),
    ("zoo", "zoo_pcpu_arr"),
    ("zoo", "zoo_lru"),
    ("zoo", "zoo_floats"),
    ("dumpbench", "conns"),
]


@pytest.mark.parametrize(("obj", "name"), ENTRY_CASES, ids=[c[1] for c in ENTRY_CASES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_entries_writer_equals_the_tree_formatter(obj: str, name: str, data: st.DataObject) -> None:
    btf = _btf(obj)
    d = next(m for m in btf.map_defs() if m.name == name)
    mt = tm.MapType(d.map_type)
    info = _info(mt, (d.key_type_id, d.key_size), (d.value_type_id, d.value_size))
    # 17 CPUs and more take the per-CPU loop instead of the inline form.
    ncpus = data.draw(st.sampled_from([1, 2, 3, 17])) if mt.is_percpu else 1
    n = data.draw(st.integers(1, 4))
    slot = (d.value_size + 7) & ~7 if mt.is_percpu else d.value_size
    kb = b"".join(data.draw(st.binary(min_size=d.key_size, max_size=d.key_size)) for _ in range(n))
    vb = data.draw(st.binary(min_size=n * slot * ncpus, max_size=n * slot * ncpus))
    for pretty in (False, True):
        w = entries_writer(btf, info, ncpus=ncpus, pretty=pretty)
        assert w(kb, vb, n) == entry_reference(btf, info, (kb, vb, n), ncpus, pretty)
    # Without BTF: hex bytes, short (written out) and long (a loop).
    for size in (3, 100):
        raw_info = _info(
            tm.MapType.PERCPU_HASH if mt.is_percpu else tm.MapType.HASH, (0, 4), (0, size)
        )
        rslot = (size + 7) & ~7 if mt.is_percpu else size
        rv = bytes(range(256)) * ((n * rslot * ncpus) // 256 + 1)
        rv = rv[: n * rslot * ncpus]
        rk = bytes(range(4 * n))
        for pretty in (False, True):
            w = entries_writer(None, raw_info, ncpus=ncpus, pretty=pretty)
            assert w(rk, rv, n) == entry_reference(None, raw_info, (rk, rv, n), ncpus, pretty)


def test_hex_writer() -> None:
    for size in (0, 1, 5):
        data = bytes(range(size))
        for pretty in (False, True):
            assert hex_writer(size, pretty=pretty)(b"x" + data, 1) == dumps(
                hex_bytes(data), pretty=pretty
            )


# ------------------------------------------------------------------ generated BTF


@dataclass
class Gen:
    """A type made for the test: its id, size and alignment."""

    tid: int
    size: int
    align: int


def _name(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["a", "b", "x1", "Ünï", 'q"u\\o', "", "len", "t_t"]))


def scalar(draw: st.DrawFn, b: BtfBuilder) -> Gen:
    kind = draw(st.sampled_from(["int", "int", "bool", "char", "enum", "enum64", "float", "ptr"]))
    if kind == "int":
        size = draw(st.sampled_from([1, 2, 4, 8, 16]))
        return Gen(b.int_("int_t", size, signed=draw(st.booleans())), size, min(size, 8))
    if kind == "bool":
        size = draw(st.sampled_from([1, 1, 2, 4]))
        return Gen(b.int_("_Bool", size, boolean=True), size, size)
    if kind == "char":
        name = draw(st.sampled_from(["char", "unsigned char", "signed char"]))
        return Gen(b.int_(name, 1, signed=name != "unsigned char"), 1, 1)
    if kind == "float":
        size = draw(st.sampled_from([4, 8]))
        return Gen(b.add("double" if size == 8 else "float", Kind.FLOAT, 0, size), size, size)
    if kind == "ptr":
        target = b.int_("int", 4, signed=True)
        return Gen(b.add("", Kind.PTR, 0, target), 8, 8)
    values = draw(st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=5))
    if kind == "enum":
        size = draw(st.sampled_from([1, 2, 4, 8]))
        raw = [v & 0xFFFFFFFF for v in values] + [0, 1, 0xFFFFFFFF]
        flat: list[int] = []
        for i, v in enumerate(raw):
            flat += [b.s(f"E{i}"), v]
        tid = b.add("e", Kind.ENUM, len(raw), size, *flat, kflag=draw(st.booleans()))
        return Gen(tid, size, size)
    flat = []
    for i, v in enumerate([*values, 0, 1]):
        flat += [b.s(f"W{i}"), v & 0xFFFFFFFF, v >> 32]
    tid = b.add("w", Kind.ENUM64, len(flat) // 3, 8, *flat, kflag=draw(st.booleans()))
    return Gen(tid, 8, 8)


def btf_type(draw: st.DrawFn, b: BtfBuilder, depth: int) -> Gen:
    kinds = ["scalar", "scalar"] + (
        ["array", "chars", "struct", "union", "typedef"] if depth < 3 else []
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return scalar(draw, b)
    if kind == "typedef":
        inner = btf_type(draw, b, depth + 1)
        k = draw(st.sampled_from([Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE]))
        return Gen(
            b.add("td" if k is Kind.TYPEDEF else "", k, 0, inner.tid), inner.size, inner.align
        )
    index = b.int_("__ARRAY_SIZE_TYPE__", 4)
    if kind == "chars":
        char = b.int_(draw(st.sampled_from(["char", "unsigned char"])), 1, signed=True)
        n = draw(st.integers(1, 24))
        return Gen(b.add("", Kind.ARRAY, 0, 0, char, index, n), n, 1)
    if kind == "array":
        elem = btf_type(draw, b, depth + 1)
        n = draw(st.sampled_from([1, 2, 3, 17, 20]))
        if elem.size * n > 512:
            n = 2
        return Gen(b.add("", Kind.ARRAY, 0, 0, elem.tid, index, n), elem.size * n, elem.align)
    union = kind == "union"
    kflag = draw(st.booleans())
    members: list[tuple[str, int, int]] = []
    pos = 0  # bits
    align = 1
    size = 0
    for _ in range(draw(st.integers(0 if not union else 1, 5))):
        if kflag and draw(st.integers(0, 3)) == 0:
            # A bitfield of an int or enum base type: kflag=1 form.
            base = scalar(draw, b)
            width = draw(st.integers(1, min(8 * base.size, 64)))
            start = 0 if union else pos + draw(st.integers(0, 3))
            if not union and (start + width + 7) // 8 > ((start // 8) + 8):
                start = pos
            members.append((_name(draw), base.tid, (width << 24) | start))
            end = start + width
            align = max(align, 1)
        else:
            m = btf_type(draw, b, depth + 1)
            start = 0 if union else ((pos + 8 * m.align - 1) // (8 * m.align)) * 8 * m.align
            start += 0 if union else 8 * m.align * draw(st.integers(0, 1))
            members.append((_name(draw), m.tid, start))
            end = start + 8 * m.size
            align = max(align, m.align)
        size = max(size, (end + 7) // 8)
        if not union:
            pos = end
    size = ((size + align - 1) // align) * align + draw(st.sampled_from([0, 0, align]))
    tid = b.struct_(_name(draw), size, members, kflag=kflag, union=union)
    return Gen(tid, size, align)


@st.composite
def generated(draw: st.DrawFn) -> tuple[Btf, Gen, bytes]:
    b = BtfBuilder()
    top = btf_type(draw, b, 0)
    btf = Btf.from_bytes(b.bytes())  # libbpf's btf__new checks the blob is sane
    return btf, top, draw(raw_values(top.size))


def _valid_schema(btf: Btf, tid: int) -> bool:
    try:
        btf.schema(tid)
    except BtfError:
        return False
    return True


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=generated())
def test_generated_btf_writes_what_the_tree_formatter_writes(case: tuple[Btf, Gen, bytes]) -> None:
    btf, top, raw = case
    try:
        writers = [
            (p, lv, json_writer(btf, top.tid, pretty=p, level=lv))
            for p, lv in ((False, 0), (True, 2))
        ]
    except BtfError:
        # Refused exactly where the schema builder refuses (overlaps, bad sizes, ...).
        assert not _valid_schema(btf, top.tid)
        return
    assert _valid_schema(btf, top.tid)
    for pretty, level, w in writers:
        assert w(raw, 0) == reference(btf, top.tid, raw, pretty=pretty, level=level)


def test_floats_nan_and_infinities() -> None:
    b = BtfBuilder()
    f = b.add("float", Kind.FLOAT, 0, 4)
    d = b.add("double", Kind.FLOAT, 0, 8)
    rec = b.struct_("r", 16, [("f", f, 0), ("d", d, 64)])
    btf = Btf.from_bytes(b.bytes())
    w = json_writer(btf, rec)
    for fv, dv in ((math.nan, math.inf), (-math.inf, -0.0), (1e-45, 1e300)):
        raw = struct.pack("<f4xd", fv, dv)
        assert w(raw, 0) == reference(btf, rec, raw, pretty=False, level=0)
    assert w(struct.pack("<f4xd", math.nan, -math.inf), 0) == '{"f":"nan","d":"-inf"}'


# ------------------------------------------------------------------ refusals


def test_refused_types_name_the_field_path() -> None:
    b = BtfBuilder()
    u8 = b.int_("unsigned char", 1)
    u32 = b.int_("unsigned int", 4)
    idx = b.int_("__ARRAY_SIZE_TYPE__", 4)
    flex = b.add("", Kind.ARRAY, 0, 0, u8, idx, 0)
    hdr = b.struct_("hdr", 4, [("len", u32, 0), ("data", flex, 32)])
    outer = b.struct_("outer", 4, [("hdr", hdr, 0)])
    proto = b.add("", Kind.FUNC_PROTO, 0, u32)
    fwd = b.add("later", Kind.FWD, 0, 0)
    three = b.int_("u24", 3)
    overlap = b.struct_("ov", 8, [("a", u32, 0), ("b", u32, 16)])
    btf = Btf.from_bytes(b.bytes())
    cases = [
        (proto, "key", r"^key: function prototype \(FUNC_PROTO\)"),
        (fwd, "value", "forward"),
        (three, "value", "3-byte integer"),
        (overlap, "value", "overlaps"),
    ]
    for tid, path, match in cases:
        with pytest.raises(BtfError, match=match):
            btf.schema(tid, path)
        with pytest.raises(BtfError, match=match):
            json_writer(btf, tid, path=path)
    with pytest.raises(BtfError, match="void"):
        json_writer(btf, 0)
    # A zero-length array holds no bytes: [] (as bpftool prints it), never refused.
    assert json_writer(btf, outer)(b"\x07\0\0\0", 0) == '{"hdr":{"len":7,"data":[]}}'
    assert btf.schema(outer, "value").parse(b"\x07\0\0\0").hdr.data == []
    with pytest.raises(tm.SizeMismatchError, match="expected 8"):
        json_writer(btf, u32, size=8)


def test_cycles_and_huge_arrays_are_refused_not_recursed() -> None:
    """Hostile BTF: a struct that contains itself, an array of 2**32 - 1 empty structs.

    The first is refused by Btf.parse (the kernel's verifier refuses it too);
    the second holds no bytes and is written as [] at once, never looped over.
    """
    b = BtfBuilder()
    u32 = b.int_("unsigned int", 4)
    loop_id = b.count + 1
    b.struct_("loop", 4, [("self", loop_id, 0)])
    with pytest.raises(BtfError, match="a loop through types"):
        Btf.parse(b.bytes())
    b = BtfBuilder()
    u32 = b.int_("unsigned int", 4)
    empty = b.struct_("empty", 0, [])
    idx = b.int_("__ARRAY_SIZE_TYPE__", 4)
    many = b.add("", Kind.ARRAY, 0, 0, empty, idx, 0xFFFFFFFF)
    holder = b.struct_("holder", 4, [("x", u32, 0), ("many", many, 32)])
    btf = Btf.parse(b.bytes())
    assert json_writer(btf, holder)(b"\x05\0\0\0", 0) == '{"x":5,"many":[]}'
    words = b.array(u32, 0x1FFFFFFF)  # 2 GiB of words: more than a value is ever shown
    btf = Btf.parse(b.bytes())
    with pytest.raises(BtfError, match="elements"):
        json_writer(btf, words)


def test_btf_reader_imports_construct_only_where_it_builds_schemas() -> None:
    """btf/_btf.py and btf/_maps.py import construct inside the functions that use it.

    Reading BTF must not load construct (the dump's start-up), so `cs` is imported
    for type checkers only at the top of these modules; mypy cannot see a function
    that uses `cs` at run time without importing it, so this test does.
    """
    import ast
    from pathlib import Path

    import typedmaps.btf

    root = Path(typedmaps.btf.__file__).parent
    for name in ("_btf.py", "_maps.py", "_types.py", "_parse.py", "format.py"):
        tree = ast.parse((root / name).read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            imports = any(
                isinstance(n, ast.Import) and any((a.asname or a.name) == "cs" for a in n.names)
                for n in ast.walk(fn)
            )
            body = ast.Module(body=fn.body, type_ignores=[])
            uses = [
                n.lineno
                for n in ast.walk(body)
                if isinstance(n, ast.Name) and n.id == "cs" and not _in_annotation(body, n)
            ]
            assert imports or not uses, (
                f"btf/{name}:{uses[0] if uses else 0}: {fn.name}() uses construct (cs) "
                "without `import construct as cs` inside it"
            )


def _in_annotation(tree: Any, target: Any) -> bool:
    import ast

    for n in ast.walk(tree):
        if isinstance(n, ast.AnnAssign) and any(x is target for x in ast.walk(n.annotation)):
            return True
    return False
