"""Unit tests for the codec layer: layouts, objects returned, errors, refusals.

Pure codec: no kernel needed. tests/test_codec_equivalence.py proves the fast
plans equal to construct on random schemas; these pin down concrete bytes,
the exact objects, and the wording of errors.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import platform
import shutil
import struct
import subprocess
from collections.abc import Callable
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

from typedmaps.codec import Codec, make_codec
from typedmaps.errors import CodecError

from .conftest import need


@dataclasses.dataclass
class FlowKey(DataclassMixin):
    """struct flow_key { __u32 saddr, daddr; __be16 sport, dport; __u8 proto; __u8 pad[3]; }"""

    saddr: int = csfield(cs.Int32ul)
    daddr: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ub)
    dport: int = csfield(cs.Int16ub)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class Stats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int32ul)
    _pad: None = csfield_noinit(cs.Padding(4))


@dataclasses.dataclass
class Record(DataclassMixin):
    stats: Stats = csfield(DataclassStruct(Stats))  # noqa: RUF009 (a construct field spec)
    hops: list[int] = csfield(cs.Array(3, cs.Int8ub))  # noqa: RUF009
    name: str = csfield(cs.PaddedString(4, "utf8"))
    kind: Any = csfield(cs.Enum(cs.Int8ub, tcp=6, udp=17))  # noqa: RUF009
    mac: bytes = csfield(cs.Bytes(6))


GOOD = Record(Stats(1, 2), [1, 2, 3], "ab", "tcp", b"123456")


def encode_error(codec: Codec[Any], value: object) -> CodecError:
    with pytest.raises(CodecError) as info:
        codec.encode(value)
    return info.value


# -- layout and bytes ----------------------------------------------------------


def test_flow_key_bytes_match_the_c_layout() -> None:
    codec = make_codec(DataclassStruct(FlowKey), "key")
    assert codec.fast
    assert codec.size == 16
    assert codec.name == "DataclassStruct(FlowKey)"
    key = FlowKey(0x0100007F, 0x0200007F, 443, 8080, 6)
    expected = struct.pack("<II", 0x0100007F, 0x0200007F) + struct.pack(">HH", 443, 8080)
    expected += b"\x06\x00\x00\x00"
    assert codec.encode(key) == expected
    back = codec.decode(expected)
    assert back == key
    assert type(back) is FlowKey
    assert list(vars(back)) == list(vars(DataclassStruct(FlowKey).parse(expected)))


def test_scalar_codecs_and_names() -> None:
    c = make_codec(cs.Int64ul)
    assert (c.fast, c.size, c.name) == (True, 8, "Int64ul")
    assert c.encode(2**64 - 1) == b"\xff" * 8
    assert c.decode(b"\x01" + bytes(7)) == 1
    assert make_codec(cs.Float32b).decode(struct.pack(">f", 1.5)) == 1.5
    assert make_codec(cs.Array(4, cs.Int32ul)).name == "Array(4, Int32ul)"
    assert make_codec(cs.PaddedString(16, "utf8")).name == "PaddedString(16, 'utf8')"
    assert make_codec(cs.Bytes(6)).name == "Bytes(6)"
    assert make_codec(cs.Int24ub).decode(b"\x01\x02\x03") == 0x010203


def test_struct_decodes_to_a_container_with_construct_keys_in_order() -> None:
    schema = cs.Struct(
        "a" / cs.Int16sl,
        cs.Padding(2),
        "flags" / cs.FlagsEnum(cs.Int8ub, syn=1, ack=2),
        "inner" / cs.Struct("x" / cs.Float64l, "ys" / cs.Array(2, cs.Int8sb)),
        "pad" / cs.Padding(1),
    )
    codec = make_codec(schema)
    assert codec.fast
    raw = schema.build({"a": -2, "flags": "syn|ack", "inner": {"x": 0.25, "ys": [-1, 1]}})
    got = codec.decode(raw)
    want = schema.parse(raw)
    # A Container subclass whose fields read at C speed (codec/_containers.py).
    assert isinstance(got, cs.Container)
    assert isinstance(got.inner, cs.Container)
    assert type(got).__name__ == "Container"
    assert got == want
    assert want == got
    assert [k for k in got if k != "_io"] == [k for k in want if k != "_io"]
    assert type(got.inner.ys) is cs.ListContainer
    assert str(got) == str(want)  # FlagsEnum's private _flagsenum key survives
    assert got.pad is None


def test_struct_records_read_fields_like_a_container_and_become_one_when_items_go() -> None:
    schema = cs.Struct(
        "pid" / cs.Int32ul,
        "keys" / cs.Int8ul,  # a Container method: stays key access only
        "__class__" / cs.Int8ul,  # a dunder: key access only, never the class
        "inner" / cs.Struct("x" / cs.Int16ul),
    )
    codec = make_codec(schema)
    assert codec.fast
    raw = schema.build({"pid": 7, "keys": 1, "__class__": 2, "inner": {"x": 3}})
    got: Any = codec.decode(raw)
    assert got == schema.parse(raw)
    assert (got.pid, got["keys"], got["__class__"], got.inner.x) == (7, 1, 2, 3)
    assert callable(got.keys)
    assert isinstance(codec.decode(raw), cs.Container)
    assert str(got) == str(schema.parse(raw))
    assert repr(got) == repr(schema.parse(raw))
    # Attribute and item writes are the same item.
    got.pid = 9
    assert got["pid"] == 9
    got["pid"] = 10
    assert got.pid == 10
    want = {"pid": 10, "keys": 1, "__class__": 2, "inner": {"x": 3}}
    assert schema.build(got) == schema.build(want)
    # Copies and pickles are plain Containers, equal to the record.
    for other in (got.copy(), copy.deepcopy(got), pickle.loads(pickle.dumps(got))):
        assert type(other) is cs.Container
        assert other == got
    # Removing an item makes the record a plain Container: a removed field
    # is an AttributeError, as in construct, never a KeyError.
    removals: list[tuple[Callable[[Any], object], str]] = [
        (lambda r: delattr(r, "pid"), "pid"),
        (lambda r: r.__delitem__("pid"), "pid"),
        (lambda r: r.pop("pid"), "pid"),
        (lambda r: r.popitem(), "inner"),
        (lambda r: r.clear(), "pid"),
    ]
    for remove, gone in removals:
        rec = codec.decode(raw)
        remove(rec)
        assert type(rec) is cs.Container
        assert not hasattr(rec, gone)
        assert getattr(rec, gone, None) is None


def test_empty_padded_string_is_all_zeros_even_in_utf16() -> None:
    codec = make_codec(cs.PaddedString(6, "utf16"))
    assert codec.encode("") == bytes(6)  # construct skips encoding "", so no BOM
    assert codec.encode("a") == b"\xff\xfea\x00\x00\x00"
    assert codec.decode(b"\xff\xfea\x00\x00\x00") == "a"
    assert codec.decode(bytes(6)) == ""


def test_const_and_enum_fields() -> None:
    schema = cs.Struct("magic" / cs.Const(b"TM"), "color" / cs.Enum(cs.Int8ub, red=1))
    codec: Codec[Any] = make_codec(schema)
    assert codec.fast
    assert codec.encode({"color": "red"}) == b"TM\x01"
    assert codec.encode({"magic": b"TM", "color": 9}) == b"TM\x09"
    assert codec.decode(b"TM\x01").color == "red"
    assert type(codec.decode(b"TM\x07").color) is cs.EnumInteger


# -- the dataclass instances decode builds ---------------------------------------


@dataclasses.dataclass
class WithPostInit(DataclassMixin):
    a: int = csfield(cs.Int8ub)
    seen: bool = dataclasses.field(default=False, init=False, metadata={"subcon": cs.Flag})

    def __post_init__(self) -> None:
        self.seen = True


@dataclasses.dataclass(frozen=True)
class Frozen(DataclassMixin):
    a: int = csfield(cs.Int16ul)
    b: int = csfield(cs.Int16ul)


@dataclasses.dataclass(slots=True)
class Slotted(DataclassMixin):
    a: int = csfield(cs.Int16ul)
    b: bytes = csfield(cs.Bytes(2))


@pytest.mark.parametrize("cls", [WithPostInit, Frozen, Slotted, FlowKey])
def test_decoded_dataclass_is_what_datclassstruct_parse_returns(cls: type[Any]) -> None:
    schema = DataclassStruct(cls)
    codec = make_codec(schema)
    assert codec.fast
    raw = bytes(range(1, codec.size + 1))
    got, want = codec.decode(raw), schema.parse(raw)
    assert type(got) is type(want)
    assert got == want
    if hasattr(want, "__dict__"):
        assert vars(got) == vars(want)
        assert list(vars(got)) == list(vars(want))
    assert codec.encode(want) == schema.build(want)


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "value", "reason"),
    [
        ({"stats": Stats(1, -1)}, "value.stats.bytes", -1, "-1 is out of range for Int32ul"),
        ({"stats": Stats(2**64, 1)}, "value.stats.packets", 2**64, "out of range for Int64ul"),
        ({"stats": Stats("x", 1)}, "value.stats.packets", "x", "expected an int for Int64ul"),  # type: ignore[arg-type]
        ({"hops": [1, 300, 2]}, "value.hops[1]", 300, "300 is out of range for Int8ub (0..255)"),
        ({"hops": [1]}, "value.hops", [1], "expected 3 elements, got 1"),
        ({"name": "abcde"}, "value.name", "abcde", "encodes to 5 bytes in utf8"),
        ({"name": 5}, "value.name", 5, "expected a str, got int"),
        ({"kind": "icmp"}, "value.kind", "icmp", "unknown label 'icmp' (known: tcp, udp)"),
        ({"mac": b"12"}, "value.mac", b"12", "expected 6 bytes, got 2"),
        ({"mac": "123456"}, "value.mac", "123456", "expected 6 bytes, got str"),
        ({"stats": {"packets": 1}}, "value.stats", {"packets": 1}, "expected a Stats, got dict"),
    ],
)
def test_encode_errors_name_path_value_and_reason(
    change: dict[str, Any], path: str, value: object, reason: str
) -> None:
    codec = make_codec(DataclassStruct(Record))
    codec.encode(GOOD)
    err = encode_error(codec, dataclasses.replace(GOOD, **change))
    assert err.path == path
    assert err.value == value
    assert reason in err.reason
    assert str(err).startswith(f"{path}: ")


def test_key_errors_start_with_key_and_missing_dict_keys_are_named() -> None:
    codec = make_codec(cs.Struct("a" / cs.Int8ub, "b" / cs.Struct("c" / cs.Int8ub)), "key")
    err = encode_error(codec, {"a": 1, "b": {}})
    assert err.path == "key.b.c"
    assert "missing key 'c'" in err.reason
    err = encode_error(codec, 7)
    assert (err.path, err.value) == ("key", 7)
    assert "expected a dict with keys a, b" in err.reason


@pytest.mark.parametrize(
    "value",
    [None, object(), 1.5, "x", b"x", [1, 2], (i for i in range(3)), {"a": object()}],
)
def test_only_codec_errors_come_out_of_encode(value: object) -> None:
    for schema in (
        DataclassStruct(Record),
        cs.Struct("a" / cs.Int8ub),
        cs.Array(3, cs.Int8ub),
        cs.Int32ul,
        cs.Bytes(2),
    ):
        with pytest.raises(CodecError):
            make_codec(schema).encode(value)


def test_decode_errors_name_the_field() -> None:
    schema = cs.Struct(
        "magic" / cs.Const(b"TM"),
        "names" / cs.Array(2, cs.Struct("s" / cs.PaddedString(2, "utf8"))),
    )
    codec = make_codec(schema, "key")
    with pytest.raises(CodecError) as info:
        codec.decode(b"XX\x00\x00\x00\x00")
    assert (info.value.path, info.value.value) == ("key.magic", b"XX")
    assert "expected b'TM'" in info.value.reason
    with pytest.raises(CodecError) as info:
        codec.decode(b"TMab\xff\x00")
    assert (info.value.path, info.value.value) == ("key.names[1].s", b"\xff\x00")


# -- refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        cs.CString("utf8"),
        cs.GreedyBytes,
        cs.PrefixedArray(cs.Int8ub, cs.Int8ub),
        cs.Struct("n" / cs.Int8ub, "data" / cs.Bytes(cs.this.n)),
        cs.VarInt,
    ],
)
def test_schemas_without_a_fixed_size_are_refused(schema: cs.Construct[Any, Any]) -> None:
    with pytest.raises(CodecError) as info:
        make_codec(schema, "key")
    assert info.value.path == "key"
    assert "not fixed-size" in info.value.reason


@pytest.mark.parametrize("thing", [42, "Int32ul", FlowKey, None])
def test_non_constructs_are_refused(thing: Any) -> None:
    with pytest.raises(CodecError) as info:
        make_codec(thing)
    assert info.value.path == "value"
    assert "not a construct schema" in info.value.reason


# -- fallback ------------------------------------------------------------------


def test_schemas_without_a_plan_fall_back_to_construct() -> None:
    computed = cs.Struct("n" / cs.Int8ub, "twice" / cs.Computed(cs.this.n * 2))
    bits = cs.BitStruct("hi" / cs.Nibble, "lo" / cs.Nibble)
    for schema in (computed, bits):
        assert not make_codec(schema).fast
    codec: Codec[Any] = make_codec(computed)
    assert codec.decode(b"\x05").twice == 10
    assert codec.encode({"n": 5}) == b"\x05"
    assert encode_error(codec, {"n": 256}).path == "value.n"


def test_a_bitstruct_inside_a_record_keeps_the_rest_fast() -> None:
    schema = cs.Struct("h" / cs.Int16ul, "bits" / cs.BitStruct("hi" / cs.Nibble, "lo" / cs.Nibble))
    codec: Codec[Any] = make_codec(schema)
    assert codec.fast
    raw = b"\x01\x00\x2a"
    assert codec.decode(raw) == schema.parse(raw)
    assert codec.encode({"h": 1, "bits": {"hi": 2, "lo": 10}}) == raw
    assert encode_error(codec, {"h": 1, "bits": {"hi": 16, "lo": 0}}).path.startswith("value.bits")


def test_values_construct_accepts_beyond_the_fast_path_still_encode() -> None:
    raw: Codec[Any] = make_codec(cs.Bytes(2))
    assert raw.encode(258) == b"\x01\x02"  # construct builds ints too

    @dataclasses.dataclass
    class Sub(FlowKey):
        pass

    codec = make_codec(DataclassStruct(FlowKey))
    assert codec.encode(Sub(1, 2, 3, 4, 5)) == codec.encode(FlowKey(1, 2, 3, 4, 5))


# -- many records --------------------------------------------------------------


def test_strided_records_for_per_cpu_values() -> None:
    codec: Codec[Any] = make_codec(cs.Struct("x" / cs.Int32ul))
    data = codec.encode_strided([{"x": 1}, {"x": 2}], 8)
    assert data == b"\x01\x00\x00\x00" + bytes(4) + b"\x02\x00\x00\x00" + bytes(4)
    assert [r.x for r in codec.decode_strided(data, 2, 8)] == [1, 2]
    assert [r.x for r in codec.decode_strided(data[:-4], 2, 8)] == [1, 2]  # no trailing pad
    assert codec.encode_many([{"x": 3}, {"x": 4}]) == b"\x03\x00\x00\x00\x04\x00\x00\x00"
    assert codec.decode_many(b"\x03\x00\x00\x00\x04\x00\x00\x00", 2)[1].x == 4
    assert codec.encode_many(iter([{"x": 5}])) == b"\x05\x00\x00\x00"
    assert codec.encode_strided([], 8) == b""
    assert codec.decode_strided(b"", 0, 8) == []


def test_batch_errors_name_the_record() -> None:
    codec = make_codec(cs.Struct("x" / cs.Int32ul))
    err = encode_error_many(codec, [{"x": 1}, {"x": -1}])
    assert err.path == "value[1].x"
    enum_codec = make_codec(cs.Struct("c" / cs.Const(b"A")))
    with pytest.raises(CodecError) as info:
        enum_codec.decode_strided(b"A\x00B\x00", 2, 2)
    assert info.value.path == "value[1].c"


def encode_error_many(codec: Codec[Any], values: list[Any]) -> CodecError:
    with pytest.raises(CodecError) as info:
        codec.encode_many(values)
    return info.value


def test_bad_strides_and_short_buffers_are_value_errors() -> None:
    codec = make_codec(cs.Int32ul)
    with pytest.raises(ValueError, match="stride 2 is smaller"):
        codec.encode_strided([1], 2)
    with pytest.raises(ValueError, match="stride 2 is smaller"):
        codec.decode_strided(bytes(8), 1, 2)
    with pytest.raises(ValueError, match="cannot hold 3 records"):
        codec.decode_strided(bytes(8), 3, 4)


# -- the C padding example of docs/codecs.md -------------------------------------

EVENT_C = """
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
struct event {
    __u8   kind;
    __u32  pid;
    __u64  ts_ns;
    __be16 sport;
    __u64  bytes;
    char   comm[16];
    __u8   flags;
};
#define OFF(f) printf("%s %zu\\n", #f, offsetof(struct event, f))
int main(void) {
    OFF(kind); OFF(pid); OFF(ts_ns); OFF(sport); OFF(bytes); OFF(comm); OFF(flags);
    printf("sizeof %zu\\n", sizeof(struct event));
    return 0;
}
"""


@dataclasses.dataclass
class Event(DataclassMixin):
    kind: int = csfield(cs.Int8ul)
    _pad0: None = csfield_noinit(cs.Padding(3))
    pid: int = csfield(cs.Int32ul)
    ts_ns: int = csfield(cs.Int64ul)
    sport: int = csfield(cs.Int16ub)
    _pad1: None = csfield_noinit(cs.Padding(6))
    bytes: int = csfield(cs.Int64ul)
    comm: str = csfield(cs.PaddedString(16, "ascii"))
    flags: int = csfield(cs.Int8ul)
    _pad2: None = csfield_noinit(cs.Padding(7))


def schema_offsets(schema: DataclassStruct[Any]) -> dict[str, int]:
    """Field offsets of a DataclassStruct, padding fields left out."""
    offsets: dict[str, int] = {}
    offset = 0
    for sub in schema.subcon.subcons:
        name = str(sub.name)
        if not name.startswith("_"):
            offsets[name] = offset
        offset += sub.sizeof()
    offsets["sizeof"] = offset
    return offsets


def test_the_documented_c_struct_matches_its_schema(tmp_path: Any) -> None:
    compiler = shutil.which("clang") or shutil.which("cc")
    need(compiler is not None, "no C compiler to take offsetof() from")
    assert compiler is not None
    src = tmp_path / "event.c"
    src.write_text(EVENT_C)
    exe = tmp_path / "event"
    include = f"-I/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run([compiler, include, "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    c_offsets = {name: int(n) for name, n in (line.split() for line in out.splitlines())}
    schema = DataclassStruct(Event)
    assert schema_offsets(schema) == c_offsets
    codec = make_codec(schema)
    assert codec.fast
    assert codec.size == c_offsets["sizeof"] == 56
    ev = Event(kind=2, pid=42, ts_ns=7, sport=443, bytes=1500, comm="curl", flags=1)
    raw = codec.encode(ev)
    assert raw[c_offsets["sport"] : c_offsets["sport"] + 2] == b"\x01\xbb"
    assert raw[c_offsets["comm"] : c_offsets["comm"] + 5] == b"curl\x00"
    assert codec.decode(raw) == ev
