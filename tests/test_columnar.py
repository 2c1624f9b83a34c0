"""Columnar reads and writes: to_numpy, update_batch(array), from_numpy, to_arrow, to_pandas.

Every test runs on real kernel maps. The dtype of a schema is proven on
random bytes: each field of ``np.frombuffer(data, dtype)`` equals what the
codec decodes from the same bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any

import construct as cs
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from construct_typed import (
    DataclassMixin,
    DataclassStruct,
    EnumBase,
    TEnum,
    csfield,
    csfield_noinit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import typedmaps as tm
from typedmaps.btf import Btf
from typedmaps.codec import make_codec
from typedmaps.typed.columnar import dtype_of, schema_of

from .conftest import MakeMap, bpf_object
from .syscall_count import bpf_calls

pytestmark = pytest.mark.bpf


class Proto(EnumBase):
    TCP = 6
    UDP = 17


@dataclasses.dataclass
class Key(DataclassMixin):
    proto: int = csfield(cs.Int8ul)
    port: int = csfield(cs.Int16ub)  # big-endian, after one byte of padding
    addr: int = csfield(cs.Int32ul)


# A padding byte after proto: port at offset 2.
KEY = cs.Struct("proto" / cs.Int8ul, cs.Padding(1), "port" / cs.Int16ub, "addr" / cs.Int32ul)


@dataclasses.dataclass
class Inner(DataclassMixin):
    x: int = csfield(cs.Int16sl)
    y: float = csfield(cs.Float32l)


@dataclasses.dataclass
class Value(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    name: str = csfield(cs.PaddedString(8, "utf8"))
    proto: Proto = csfield(TEnum(cs.Int8ul, Proto))  # noqa: RUF009
    ok: bool = csfield(cs.Flag)
    pad: None = csfield_noinit(cs.Padding(2))
    grid: list[list[int]] = csfield(cs.Array(2, cs.Array(3, cs.Int16ul)))  # noqa: RUF009
    inner: Inner = csfield(DataclassStruct(Inner))  # noqa: RUF009
    raw: bytes = csfield(cs.Bytes(3))
    tail: int = csfield(cs.BytesInteger(4, signed=True, swapped=False))


VALUE = DataclassStruct(Value)


def _value(i: int) -> Value:
    return Value(
        packets=i,
        name=f"n{i}"[:8],
        proto=Proto.UDP if i % 2 else Proto.TCP,
        ok=bool(i % 3),
        grid=[[i, i + 1, i + 2], [3, 4, 5]],
        inner=Inner(x=-i, y=0.5 * i),
        raw=bytes([i % 256, 0, 1]),
        tail=-i,
    )


def _key(i: int) -> Any:
    return {"proto": 6, "port": 1000 + i, "addr": 0x0A000000 + i}


def _flows(make_map: MakeMap, n: int = 300, max_entries: int = 512) -> tm.TypedMap[Any, Value]:
    kc, vc = make_codec(KEY, "key"), make_codec(VALUE, "value")
    h = make_map(
        tm.MapType.HASH,
        key_size=kc.size,
        value_size=vc.size,
        max_entries=max_entries,
        name="tm_col",
    )
    m = tm.TypedMap(h, key=KEY, value=VALUE)
    if n:
        m.update_batch([(_key(i), _value(i)) for i in range(n)])
    return m


def _fields(dt: np.dtype[Any]) -> Any:
    fields = dt.fields
    assert fields is not None
    return fields


def _plain(v: Any) -> Any:
    """A numpy item or a decoded record field as a comparable Python value."""
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    return v


# ------------------------------------------------------------------ schema -> dtype


def test_dtype_layout_is_the_schema_layout() -> None:
    kdt = dtype_of(KEY, "key")
    assert kdt.itemsize == 8
    assert _fields(kdt)["port"][1] == 2
    assert _fields(kdt)["port"][0] == np.dtype(">u2")
    vdt = dtype_of(VALUE)
    assert vdt.itemsize == make_codec(VALUE, "value").size
    assert vdt["name"] == np.dtype("S8")
    assert vdt["proto"] == np.dtype("u1")
    assert vdt["ok"] == np.dtype("?")
    assert vdt["grid"].shape == (2, 3)
    assert vdt["inner"].names == ("x", "y")
    assert vdt["raw"] == np.dtype("S3")
    assert vdt["tail"] == np.dtype(">i4")
    assert "pad" not in _fields(vdt)
    assert _fields(vdt)["grid"][1] == _fields(vdt)["ok"][1] + 1 + 2  # the padding is a gap


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=200, max_size=200))
def test_numpy_view_reads_what_the_codec_decodes(data: bytes) -> None:
    for schema, fields in ((KEY, ("proto", "port", "addr")), (VALUE, None)):
        codec = make_codec(schema, "value")
        raw = data[: codec.size]
        try:
            decoded = codec.decode(raw)
        except tm.CodecError:
            continue  # bytes the schema refuses (text that is not UTF-8, ...)
        row = np.frombuffer(raw, dtype_of(schema))[0]
        names = fields or [f.name for f in dataclasses.fields(Value) if f.name != "pad"]
        for name in names:
            got = row[name]
            want = decoded[name] if isinstance(decoded, dict) else getattr(decoded, name)
            if name == "inner":
                assert _plain(got["x"]) == want.x
                f = _plain(got["y"])
                assert f == want.y or (math.isnan(f) and math.isnan(want.y))
            elif name == "name":
                assert (
                    got.decode() == want
                )  # numpy's bytes_ drop the trailing NULs, as PaddedString
            elif name == "raw":
                assert got == want.rstrip(b"\0")
            else:
                assert _plain(got) == _plain(want), name


def test_btf_schemas_become_dtypes() -> None:
    """Structs, unions (overlapping fields), char arrays, enums and floats from BTF."""
    btf = Btf.from_file(bpf_object("zoo"))
    word = dtype_of(btf.schema(btf.find("zoo_word").id))
    assert word.itemsize == 4
    assert {f[1] for f in _fields(word).values()} == {0}  # every member at the union's start
    assert word["bytes"].shape == (4,)
    ev = dtype_of(btf.schema(btf.find("zoo_event").id))
    assert ev["comm"] == np.dtype("S16")
    assert ev["level"] == np.dtype("u1")
    stats = dtype_of(btf.schema(btf.find("zoo_stats").id))
    assert stats["avg"] == np.dtype("<f8")
    assert stats["ratio"] == np.dtype("<f4")
    with pytest.raises(tm.DtypeError, match=r"^value\.a: a 3-bit bitfield has no numpy dtype"):
        dtype_of(btf.schema(btf.find("zoo_bits").id))


def test_schemas_without_a_dtype_are_named() -> None:
    cases: list[tuple[Any, str]] = [
        (cs.Struct("a" / cs.Int8ul, "big" / cs.BytesInteger(16)), r"value\.big: a 128-bit integer"),
        (cs.Struct("t" / cs.Int24ul), r"value\.t: a 24-bit integer"),
        (cs.ExprAdapter(cs.Int8ul, lambda o, c: o, lambda o, c: o), "ExprAdapter has no numpy"),
        (cs.Struct("a" / cs.Int8ul, "a" / cs.Int8ul), "two fields are named 'a'"),
        (cs.BitStruct("x" / cs.BitsInteger(8)), "no numpy dtype"),
    ]
    for schema, match in cases:
        with pytest.raises(tm.DtypeError, match=match):
            dtype_of(schema)
    assert issubclass(tm.DtypeError, tm.CodecError)


# ------------------------------------------------------------------ to_numpy


def test_to_numpy_is_the_map(make_map: MakeMap) -> None:
    m = _flows(make_map)
    arr = m.to_numpy()
    assert arr.dtype == m.dtype
    assert arr.dtype.names == ("key", "value")
    assert len(arr) == 300
    items = {(k.proto, k.port, k.addr): v for k, v in m.items()}
    for row in arr:
        k = row["key"]
        v = items[(int(k["proto"]), int(k["port"]), int(k["addr"]))]
        assert int(row["value"]["packets"]) == v.packets
        assert row["value"]["name"].decode() == v.name
        assert int(row["value"]["inner"]["x"]) == v.inner.x
        assert row["value"]["grid"].tolist() == v.grid
    # Columns work as columns.
    assert int(arr["value"]["packets"].sum()) == sum(range(300))


def test_empty_and_array_maps(make_map: MakeMap) -> None:
    assert len(_flows(make_map, n=0).to_numpy()) == 0
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=70, name="tm_colarr")
    a = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64sl)
    for i in range(70):
        a[i] = -i
    arr = a.to_numpy()
    assert arr["key"].tolist() == list(range(70))
    assert arr["value"].tolist() == [-i for i in range(70)]
    assert arr.dtype == np.dtype([("key", "<u4"), ("value", "<i8")])


def test_per_cpu_maps_have_a_cpu_axis(make_map: MakeMap) -> None:
    ncpus = tm.num_possible_cpus()
    # value_size 12: each CPU's slot is 16 bytes in the kernel's buffer.
    schema = cs.Struct("a" / cs.Int32ul, "b" / cs.Int64ul)
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=12, max_entries=64, name="tm_colpc")
    pc: tm.PerCpuTypedMap[Any, Any] = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=schema)
    for k in range(40):
        pc[k] = [{"a": k, "b": 1000 * k + c} for c in range(ncpus)]
    arr = pc.to_numpy()
    assert arr["value"].shape == (40, ncpus)
    for row in arr:
        k = int(row["key"])
        assert row["value"]["a"].tolist() == [k] * ncpus
        assert row["value"]["b"].tolist() == [1000 * k + c for c in range(ncpus)]
    # and back: one BPF_MAP_UPDATE_BATCH, slots padded to 8 bytes
    arr["value"]["b"] += 1
    assert pc.update_batch(arr) == 40
    assert [v.b for v in pc[7]] == [7001 + c for c in range(ncpus)]
    df = pc.to_pandas()
    assert list(df.columns) == ["key", "cpu", "value.a", "value.b"]
    assert len(df) == 40 * ncpus
    assert df.groupby("key")["value.b"].sum()[3] == sum(3001 + c for c in range(ncpus))


def test_map_without_batch_lookup_is_walked(make_map: MakeMap) -> None:
    """DEVMAP_HASH has no BPF_MAP_LOOKUP_BATCH: keys are walked with GET_NEXT_KEY."""
    h = make_map(tm.MapType.DEVMAP_HASH, key_size=4, value_size=4, max_entries=8, name="tm_coldev")
    h.update((5).to_bytes(4, "little"), (1).to_bytes(4, "little"))  # ifindex 1: lo
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int32ul)
    arr = m.to_numpy()
    assert arr.tolist() == [(5, 1)]


def test_memory_is_the_result_and_one_batch(make_map: MakeMap) -> None:
    n = 60_000
    h = make_map(tm.MapType.HASH, key_size=8, value_size=16, max_entries=n, name="tm_colmem")
    keys = np.arange(n, dtype="<u8")
    vals = np.zeros(n, dtype=[("a", "<u8"), ("b", "<u8")])
    vals["a"] = keys
    h.update_batch(keys.tobytes(), vals.tobytes(), n)
    m = tm.TypedMap(h, key=cs.Int64ul, value=cs.Struct("a" / cs.Int64ul, "b" / cs.Int64ul))
    m.to_numpy()  # warm: first-use imports and caches
    tracemalloc.start()
    try:
        arr = m.to_numpy()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(arr) == n
    assert arr.nbytes == n * 24
    # The result, the batch buffers (4096 keys and values) and small change.
    assert peak <= arr.nbytes + 4096 * 24 + 256 * 1024, (peak, arr.nbytes)


# ------------------------------------------------------------------ writing


def test_update_batch_round_trip_zeroes_padding(make_map: MakeMap) -> None:
    m = _flows(make_map, n=50)
    arr = m.to_numpy()
    # Garbage in every byte no field covers (the key's padding byte, the value's Padding).
    raw = arr.view(np.uint8).reshape(len(arr), -1)
    raw[:, 1] = 0xEE
    arr["value"]["packets"] *= 10
    m.clear()
    assert m.update_batch(arr) == 50
    for kb in m.handle.keys():  # noqa: SIM118 - a MapHandle is not iterable
        assert kb[1] == 0  # the padding byte was zeroed: the typed layer's keys find it
    assert m[_key(7)].packets == 70
    assert m[_key(7)].inner == Inner(x=-7, y=3.5)


def test_update_batch_converts_fields_that_fit_and_refuses_the_rest(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=10, max_entries=16, name="tm_colcv")
    schema = cs.Struct("n" / cs.Int16ul, "s" / cs.PaddedString(8, "utf8"))
    m = tm.TypedMap(h, key=cs.Int32ul, value=schema)
    wide = np.zeros(3, dtype=[("key", "<i8"), ("value", [("s", "U5"), ("n", "<i8")])])
    wide["key"] = [1, 2, 3]
    wide["value"]["n"] = [10, 20, 65535]
    wide["value"]["s"] = ["a", "bé", "ccc"]
    assert m.update_batch(wide) == 3
    assert m[2] == {"n": 20, "s": "bé"}
    before = dict(m.items())
    bad = wide.copy()
    bad["value"]["n"][1] = 65536
    with pytest.raises(tm.CodecError, match=r"array\.value\.n\[1\].*does not fit in uint16"):
        m.update_batch(bad)
    bad = wide.copy()
    bad["key"][2] = -1
    with pytest.raises(tm.CodecError, match=r"array\.key\[2\]"):
        m.update_batch(bad)
    missing = np.zeros(1, dtype=[("key", "<u4"), ("value", [("n", "<u2")])])
    with pytest.raises(tm.CodecError, match="needs the fields"):
        m.update_batch(missing)
    long = np.zeros(1, dtype=[("key", "<u4"), ("value", [("n", "<u2"), ("s", "S9")])])
    long["value"]["s"] = b"123456789"
    with pytest.raises(tm.CodecError, match="longer than 8 bytes"):
        m.update_batch(long)
    latin = np.zeros(1, dtype=m.dtype)
    latin["value"]["s"] = b"\xe9t\xe9"
    with pytest.raises(tm.CodecError, match=r"value\.s\[0\].*is not utf8"):
        m.update_batch(latin)
    with pytest.raises(tm.ArgumentError, match="one dimension"):
        m.update_batch(np.zeros((2, 2), dtype=m.dtype))
    assert dict(m.items()) == before  # nothing written by a refused array


def test_const_fields_are_written_as_their_constant(make_map: MakeMap) -> None:
    schema = cs.Struct("magic" / cs.Const(b"TM"), "n" / cs.Int16ul, cs.Const(b"!"), cs.Padding(1))
    h = make_map(tm.MapType.HASH, key_size=4, value_size=6, max_entries=4, name="tm_colc")
    m = tm.TypedMap(h, key=cs.Int32ul, value=schema)
    arr = np.zeros(2, dtype=m.dtype)
    arr["key"] = [1, 2]
    arr["value"]["n"] = [5, 6]
    m.update_batch(arr)
    assert h.lookup((2).to_bytes(4, "little")) == b"TM\x06\x00!\x00"
    assert m[1].n == 5


# ------------------------------------------------------------------ from_numpy


def test_from_numpy_makes_a_map(bpf: None) -> None:
    key = np.dtype([("id", "<u4"), ("port", ">u2")], align=True)  # 2 bytes of tail padding
    value = np.dtype([("count", "<u8"), ("tag", "S4")], align=True)  # 4 bytes of tail padding
    rec = np.dtype([("key", key), ("value", value)])
    arr = np.zeros(5, dtype=rec)
    arr["key"]["id"] = np.arange(5)
    arr["key"]["port"] = 443
    arr["value"]["count"] = np.arange(5) * 7
    arr["value"]["tag"] = b"ab"
    with tm.TypedMap.from_numpy(arr, name="tm_fromnp") as m:
        assert m.handle.map_type is tm.MapType.HASH
        assert m.handle.max_entries == 5
        assert (m.handle.key_size, m.handle.value_size) == (8, 16)  # dtype padding kept
        back = m.to_numpy()
        # Sorted as opaque records: numpy's take copies a padded dtype field by field.
        order = np.argsort(back["key"]["id"])
        whole = np.dtype((np.void, rec.itemsize))
        assert back.view(whole)[order].tobytes() == arr.tobytes()  # every byte, padding too
        got = m[{"id": 3, "port": 443}]
        assert (got.count, got.tag) == (21, b"ab\0\0")
    assert m.closed
    with tm.PerCpuTypedMap.from_numpy(
        np.zeros(3, dtype=[("key", "<u4"), ("value", "<u8", (tm.num_possible_cpus(),))]),
        max_entries=10,
    ) as pc:
        assert pc.handle.map_type is tm.MapType.PERCPU_HASH
        assert pc[0] == [0] * tm.num_possible_cpus()
    with pytest.raises(tm.ArgumentError, match="'key' and 'value'"):
        tm.TypedMap.from_numpy(np.zeros(1, dtype=[("k", "u4"), ("value", "u4")]))
    with pytest.raises(tm.DtypeError, match="overlaps"):
        schema_of(np.dtype({"names": ["a", "b"], "formats": ["u4", "u2"], "offsets": [0, 0]}))


# ------------------------------------------------------------------ arrow, pandas


def test_to_arrow_and_to_pandas(make_map: MakeMap) -> None:
    m = _flows(make_map, n=20)
    t = m.to_arrow()
    assert isinstance(t, pa.Table)
    assert t.num_rows == 20
    assert t.column_names == ["key", "value"]
    assert pa.types.is_struct(t.schema.field("value").type)
    row = t.slice(0, 1).to_pylist()[0]
    v = m[row["key"]]
    assert row["value"]["packets"] == v.packets
    assert row["value"]["grid"] == v.grid
    df = m.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert "value.grid[1][2]" in df.columns
    assert "value.inner.y" in df.columns
    assert df["key.port"].dtype == np.dtype("uint16")  # native order for pandas
    assert sorted(df["value.packets"]) == list(range(20))


# ------------------------------------------------------------------ BTF schemas, byte orders


_CONN_KEY = struct.Struct("<IIHHB3x")
_CONN_STATS = struct.Struct("<QQQQ16sIIHBB6sH4I4x")


def test_btf_maps_to_numpy_and_back(bpf: None) -> None:
    """typed(h) of loaded maps: dtypes from the kernel's BTF, read and written back exactly."""
    with tm.BpfObject.open(bpf_object("dumpbench")) as obj:
        obj.maps["conns"].max_entries = 64
        obj.load()
        h = obj.maps["conns"]
        conns = tm.typed(h)
        assert isinstance(conns, tm.TypedMap)
        comms = (b"curl", b"\x01\xffbin", b"sixteen-bytes-ok")
        for i in range(40):
            h.update(
                _CONN_KEY.pack(i, 2 * i, 1000 + i, 443, 6),
                _CONN_STATS.pack(i, 1500 * i, 10, 20, comms[i % 3], i % 4, 100 + i, 1460,
                                 7, 1, bytes([i] * 6), i, i, 2 * i, 3 * i, 4 * i),
            )  # fmt: skip
        arr = conns.to_numpy()
        assert arr.dtype.itemsize == 16 + 88
        value = arr.dtype["value"]
        assert _fields(value)["tcp"][1] == 56  # the nested struct at its C offset
        assert value["rtt_us"].shape == (4,)
        assert value["comm"] == np.dtype("S16")
        assert _fields(value)["rtt_us"][1] == 68  # 4 bytes of tail padding after it
        items = {int(k.saddr): v for k, v in conns.items()}
        assert sorted(arr["key"]["saddr"].tolist()) == list(range(40))
        for row in arr:
            i = int(row["key"]["saddr"])
            v = items[i]
            assert int(row["key"]["daddr"]) == 2 * i
            assert int(row["value"]["packets"]) == v.packets == i
            assert int(row["value"]["state"]) == int(v.state)
            assert int(row["value"]["tcp"]["mss"]) == v.tcp.mss == 1460
            assert row["value"]["mac"].tolist() == list(v.mac) == [i] * 6
            assert row["value"]["rtt_us"].tolist() == list(v.rtt_us)
            assert row["value"]["comm"] == comms[i % 3]  # the raw bytes, text or not
        arr["value"]["packets"] += 1000
        arr["value"]["tcp"]["wscale"] = 9
        assert conns.update_batch(arr) == 40
        want = _CONN_STATS.pack(1007, 1500 * 7, 10, 20, comms[1], 3, 107, 1460, 9, 1,
                                bytes([7] * 6), 7, 7, 14, 21, 28)  # fmt: skip
        assert h.lookup(_CONN_KEY.pack(7, 14, 1007, 443, 6)) == want  # padding zero, every byte

    with tm.BpfObject.open(bpf_object("zoo")) as obj:
        obj.load()
        words = tm.typed(obj.maps["zoo_lru"])  # a union: members overlap at offset 0
        assert isinstance(words, tm.TypedMap)
        obj.maps["zoo_lru"].update(struct.pack("<Q", 5), struct.pack("<HH", 0x1234, 0xABCD))
        row = words.to_numpy()[0]
        assert int(row["value"]["word"]) == 0xABCD1234
        assert row["value"]["bytes"].tolist() == [0x34, 0x12, 0xCD, 0xAB]
        assert int(row["value"]["halves"]["hi"]) == 0xABCD
        stats = tm.typed(obj.maps["zoo_pcpu_arr"])  # per-CPU, floats, 3 bytes of tail padding
        assert isinstance(stats, tm.PerCpuTypedMap)
        ncpus = tm.num_possible_cpus()
        pc = stats.to_numpy()
        assert pc["value"].shape == (obj.maps["zoo_pcpu_arr"].max_entries, ncpus)
        pc["value"]["avg"][1] = [0.5 + c for c in range(ncpus)]
        pc["value"]["kind"][1] = 7
        stats.update_batch(pc[1:2])
        got = stats[1]
        assert [s.avg for s in got] == [0.5 + c for c in range(ncpus)]
        assert {s.kind for s in got} == {7}
        bits = tm.typed(obj.maps["zoo_array"])
        assert isinstance(bits, tm.TypedMap)
        with pytest.raises(tm.DtypeError, match=r"^value\.bits\.a: a 3-bit bitfield"):
            bits.to_numpy()


def test_both_byte_orders_on_a_real_map(make_map: MakeMap) -> None:
    key = cs.Struct("be" / cs.Int32ub, "le" / cs.Int32ul)
    value = cs.Struct(
        "a" / cs.Int64sb,
        "b" / cs.Int16sl,
        "c" / cs.Float64b,
        "d" / cs.Float32l,
        "e" / cs.BytesInteger(2, swapped=True),
        "f" / cs.BytesInteger(2),
    )
    h = make_map(tm.MapType.HASH, key_size=8, value_size=26, max_entries=32, name="tm_colbo")
    m: tm.TypedMap[Any, Any] = tm.TypedMap(h, key=key, value=value)
    m.update_batch(
        [({"be": i, "le": i}, {"a": -i, "b": -2 * i, "c": i / 4, "d": i / 8, "e": i, "f": 300 + i})
         for i in range(20)]
    )  # fmt: skip
    arr = m.to_numpy()
    k, v = arr.dtype["key"], arr.dtype["value"]
    assert (k["be"], k["le"]) == (np.dtype(">u4"), np.dtype("<u4"))
    assert [v[n] for n in "abcdef"] == [
        np.dtype(t) for t in (">i8", "<i2", ">f8", "<f4", "<u2", ">u2")
    ]
    for row in arr:
        i = int(row["key"]["le"])
        assert int(row["key"]["be"]) == i
        got = [row["value"][n].item() for n in "abcdef"]
        assert got == [-i, -2 * i, i / 4, i / 8, i, 300 + i]
    # Written back from native-order columns: converted to each field's own order.
    native = np.zeros(
        20,
        dtype=[
            ("key", [("be", "=u4"), ("le", "=u4")]),
            (
                "value",
                [
                    (n, t)
                    for n, t in zip(
                        "abcdef", ("=i8", "=i2", "=f8", "=f4", "=u2", "=u2"), strict=True
                    )
                ],
            ),
        ],
    )
    native["key"]["be"] = native["key"]["le"] = np.arange(20)
    native["value"]["a"] = -np.arange(20) * 10
    native["value"]["f"] = 65535
    m.clear()
    assert m.update_batch(native) == 20
    raw = h.lookup(struct.pack(">I", 3) + struct.pack("<I", 3))
    assert raw == struct.pack(">q", -30) + bytes(2 + 8 + 4 + 2) + struct.pack(">H", 65535)


def test_update_batch_writes_in_batches_and_counts_from_the_array_start(make_map: MakeMap) -> None:
    n = 9000  # more than two of the 4096-record batches
    value = cs.Struct("a" / cs.Int32ul, cs.Padding(4), "b" / cs.Int64ul)
    h = make_map(tm.MapType.HASH, key_size=8, value_size=16, max_entries=n, name="tm_colch")
    m = tm.TypedMap(h, key=cs.Int64ul, value=value)
    arr = np.zeros(n, m.dtype)
    arr["key"] = np.arange(n)
    arr["value"]["a"] = np.arange(n)
    arr["value"]["b"] = np.arange(n) * 3
    arr.view(np.uint8).reshape(n, -1)[:, 12:16] = 0xEE  # garbage in the value's padding
    assert m.update_batch(arr[::-1]) == n  # a strided view: copied as opaque records
    assert h.lookup((8000).to_bytes(8, "little")) == struct.pack("<I4xQ", 8000, 24000)
    back = m.to_numpy()
    assert sorted(back["value"]["b"].tolist()) == [3 * i for i in range(n)]
    small = make_map(
        tm.MapType.HASH, key_size=8, value_size=16, max_entries=5000, name="tm_colfull"
    )
    ms = tm.TypedMap(small, key=cs.Int64ul, value=value)
    with pytest.raises(tm.MapFullError) as info:
        ms.update_batch(arr)
    assert isinstance(info.value, tm.BatchError)
    assert info.value.processed == 5000  # of the whole array, not of the batch that failed
    assert "after 5000 element(s)" in str(info.value)
    assert len(list(small.keys())) == 5000


def test_per_cpu_update_batch_in_batches(make_map: MakeMap) -> None:
    ncpus = tm.num_possible_cpus()
    n = 5000
    schema = cs.Struct("a" / cs.Int32ul, "b" / cs.Int16ul)  # 6 bytes: an 8-byte slot per CPU
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=6, max_entries=n, name="tm_colpcb")
    pc: tm.PerCpuTypedMap[Any, Any] = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=schema)
    arr = np.zeros(n, pc.dtype)
    arr["key"] = np.arange(n)
    arr["value"]["a"] = np.arange(n)[:, None] + np.arange(ncpus) * 100000
    arr["value"]["b"] = 7
    assert pc.update_batch(arr) == n
    assert [(x.a, x.b) for x in pc[4321]] == [(4321 + c * 100000, 7) for c in range(ncpus)]
    assert h.lookup_percpu((4999).to_bytes(4, "little")) == [
        struct.pack("<IH", 4999 + c * 100000, 7) for c in range(ncpus)
    ]


def test_refused_input_makes_no_syscall(bpf: None) -> None:
    """Bad arrays and schemas without a dtype are refused before any bpf() call."""
    setup = """
        import numpy as np
        import construct as cs
        import typedmaps as tm
        h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=8)
        value = cs.Struct("n" / cs.Int16ul, "s" / cs.PaddedString(2, "ascii"))
        m = tm.TypedMap(h, key=cs.Int32ul, value=value)
        bits = tm.TypedMap(h, key=cs.Int32ul, value=cs.BitStruct("a" / cs.BitsInteger(32)))
        good = np.zeros(2, m.dtype)
        big = np.zeros(2, [("key", "<u8"), ("value", [("n", "<u4"), ("s", "S2")])])
        big["key"][1] = 2**40
        text = good.copy()
        text["value"]["s"][1] = b"\\xe9"
        cases = [
            (bits.to_numpy, ()),
            (bits.update_batch, (good,)),
            (m.update_batch, (np.zeros((2, 2), m.dtype),)),
            (m.update_batch, (big,)),
            (m.update_batch, (text,)),
            (m.update_batch, (np.zeros(2, [("key", "<u4")]),)),
            (tm.TypedMap.from_numpy, (np.zeros(2, [("k", "<u4"), ("value", "<u4")]),)),
        ]
    """
    measured = """
        for call, args in cases:
            try:
                call(*args)
            except (tm.DtypeError, tm.CodecError, tm.ArgumentError):
                pass
            else:
                raise SystemExit(f"{call} accepted {args}")
    """
    count, lines = bpf_calls(setup, measured)
    assert count == 0, lines


# ------------------------------------------------------------------ optional extras


def test_missing_extras_are_named(bpf: None) -> None:
    """Without numpy (or pyarrow, pandas) typedmaps imports; the methods say what to install."""
    code = textwrap.dedent(
        """
        import sys

        class NotInstalled:  # as if the packages were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in sys.argv[2:]:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NotInstalled())
        import construct as cs
        import typedmaps as tm
        h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2)
        m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int32ul)
        # The core, without the extras: element and batch operations, BTF-typed maps.
        m[1] = 2
        assert m.update_batch([(3, 4)]) == 1 and dict(m.items()) == {1: 2, 3: 4}
        with tm.BpfObject.open(sys.argv[1]) as obj:
            obj.load()
            t = tm.typed(obj.maps["zoo_floats"])
            t["pi"] = 3.25
            assert list(t.values()) == [3.25]
        m.clear()
        for call in (m.to_numpy, m.to_arrow, m.to_pandas):
            try:
                call()
            except tm.ExtraNotInstalledError as exc:
                assert isinstance(exc, ImportError)
                print(call.__name__, exc.extra)
            else:
                print(call.__name__, "ok")
        h.close()
        """
    )

    zoo = str(bpf_object("zoo"))

    def run(*blocked: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code, zoo, *blocked], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.split()

    assert run("numpy") == ["to_numpy", "numpy", "to_arrow", "arrow", "to_pandas", "pandas"]
    assert run("pyarrow") == ["to_numpy", "ok", "to_arrow", "arrow", "to_pandas", "ok"]
    assert run("pandas") == ["to_numpy", "ok", "to_arrow", "ok", "to_pandas", "pandas"]
    # Installed but never imported by the core: `import typedmaps`, maps, BTF, the CLI's dump.
    core = textwrap.dedent(
        """
        import sys
        import construct as cs
        import typedmaps as tm
        from typedmaps import _dump, _cli
        h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2)
        m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int32ul)
        m[1] = 2
        m.update_batch([(3, 4)])
        assert dict(m.items()) == {1: 2, 3: 4}
        with tm.BpfObject.open(sys.argv[1]) as obj:
            obj.load()
            list(tm.typed(obj.maps["zoo_hash"]).items())
        h.close()
        print(sorted(n for n in sys.modules if n.split(".")[0] in ("numpy", "pyarrow", "pandas")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", core, zoo], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["[]"]
    err = tm.ExtraNotInstalledError("to_numpy()", "numpy", "numpy")
    assert "pip install 'typedmaps[numpy]'" in str(err)
