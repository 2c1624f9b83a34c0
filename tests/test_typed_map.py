"""TypedMap on real kernel maps: the MutableMapping API, batches, ARRAY rules, errors."""

from __future__ import annotations

import dataclasses
import errno
import gc
import struct
import tracemalloc
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

import typedmaps as tm

from .conftest import MakeMap


@dataclasses.dataclass
class FlowKey(DataclassMixin):
    """16 bytes, like a C struct with 3 bytes of tail padding."""

    src: int = csfield(cs.Int32ul)
    dst: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class FlowStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


KEY = DataclassStruct(FlowKey)
STATS = DataclassStruct(FlowStats)


def flow(i: int) -> FlowKey:
    return FlowKey(src=i, dst=i + 1, sport=i % 65536, dport=80, proto=6)


def raw_dump(h: tm.MapHandle) -> dict[bytes, bytes]:
    """Every element as raw bytes, straight from the byte-level handle."""
    out: dict[bytes, bytes] = {}
    for k in h.keys():  # noqa: SIM118 (a MapHandle is not a dict)
        v = h.lookup(k)
        assert v is not None
        out[k] = v
    return out


@pytest.fixture
def flows(make_map: MakeMap) -> tm.TypedMap[FlowKey, FlowStats]:
    h = make_map(tm.MapType.HASH, key_size=16, value_size=16, max_entries=64)
    return tm.TypedMap(h, key=KEY, value=STATS)


# ---------------------------------------------------------------------------- mapping API


def test_set_get_and_the_bytes_in_the_kernel(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    k, v = flow(1), FlowStats(packets=2, bytes=128)
    flows[k] = v
    assert flows[k] == v
    assert flows.get(k) == v
    assert k in flows
    # the kernel holds exactly what the schemas build
    assert flows.handle.lookup(KEY.build(k)) == STATS.build(v)
    assert flows.handle.lookup(KEY.build(k)) == struct.pack("<QQ", 2, 128)


def test_missing_key(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    k = flow(7)
    with pytest.raises(tm.KeyNotFoundError) as info:
        flows[k]
    assert isinstance(info.value, KeyError)
    assert info.value.errno == errno.ENOENT
    assert "lookup" in str(info.value)
    assert "FlowKey(src=7" in str(info.value)
    assert flows.get(k) is None
    assert flows.get(k, FlowStats(0, 0)) == FlowStats(0, 0)
    assert k not in flows
    with pytest.raises(KeyError):
        del flows[k]


def test_iteration_len_keys_values_items(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    expected = {i: FlowStats(packets=i, bytes=i * 100) for i in range(20)}
    for i, v in expected.items():
        flows[flow(i)] = v
    assert len(flows) == 20
    assert bool(flows)
    assert sorted(k.src for k in flows) == list(range(20))
    assert sorted(k.src for k in flows.keys()) == list(range(20))  # noqa: SIM118
    assert sorted(v.packets for v in flows.values()) == list(range(20))
    got = {k.src: v for k, v in flows.items()}
    assert got == expected
    # views are live: they see later changes
    items = flows.items()
    flows[flow(99)] = FlowStats(1, 1)
    assert len(items) == 21
    assert (flow(99), FlowStats(1, 1)) in items
    assert (flow(99), FlowStats(1, 2)) not in items
    assert FlowStats(1, 1) in flows.values()
    assert flow(99) in flows.keys()  # noqa: SIM118


def test_empty_map(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    assert len(flows) == 0
    assert not flows
    assert list(flows) == []
    assert list(flows.items()) == []
    with pytest.raises(tm.KeyNotFoundError, match="empty"):
        flows.popitem()


def test_pop_popitem_clear(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    for i in range(10):
        flows[flow(i)] = FlowStats(i, i)
    assert flows.pop(flow(3)) == FlowStats(3, 3)
    assert flow(3) not in flows
    assert flows.pop(flow(3), None) is None
    with pytest.raises(tm.KeyNotFoundError, match="pop"):
        flows.pop(flow(3))
    k, v = flows.popitem()
    assert v == FlowStats(k.src, k.src)
    assert k not in flows
    assert len(flows) == 8
    flows.clear()
    assert len(flows) == 0
    assert raw_dump(flows.handle) == {}


def test_update_and_setdefault(flows: tm.TypedMap[FlowKey, FlowStats], make_map: MakeMap) -> None:
    # dataclass keys are unhashable (not frozen): pairs, not a dict
    flows.update([(flow(1), FlowStats(1, 1)), (flow(2), FlowStats(2, 2))])
    assert len(flows) == 2
    assert flows.setdefault(flow(1), FlowStats(9, 9)) == FlowStats(1, 1)
    assert flows.setdefault(flow(3), FlowStats(3, 3)) == FlowStats(3, 3)
    assert flows[flow(3)] == FlowStats(3, 3)
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=8)
    counts = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    counts.update({1: 10, 2: 20})
    assert dict(counts.items()) == {1: 10, 2: 20}


def test_insert_and_replace(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    k = flow(1)
    with pytest.raises(tm.KeyNotFoundError, match="replace"):
        flows.replace(k, FlowStats(1, 1))
    assert k not in flows
    flows.insert(k, FlowStats(1, 1))
    with pytest.raises(tm.KeyExistsError):
        flows.insert(k, FlowStats(2, 2))
    assert flows[k] == FlowStats(1, 1)
    flows.replace(k, FlowStats(3, 3))
    assert flows[k] == FlowStats(3, 3)


def test_full_hash_map(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=2)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[1] = 1
    m[2] = 2
    with pytest.raises(tm.MapFullError):
        m[3] = 3
    m[2] = 20  # overwriting needs no room
    assert dict(m.items()) == {1: 1, 2: 20}


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        (FlowKey(src=-1, dst=0, sport=0, dport=0, proto=0), FlowStats(1, 1), "key.src"),
        (FlowKey(src=0, dst=0, sport=70000, dport=0, proto=0), FlowStats(1, 1), "key.sport"),
        (flow(1), FlowStats(packets=2**64, bytes=0), "value.packets"),
        (flow(1), FlowStats(packets="many", bytes=0), "value.packets"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_raise_codec_error_and_change_nothing(
    flows: tm.TypedMap[FlowKey, FlowStats], key: FlowKey, value: FlowStats, path: str
) -> None:
    flows[flow(1)] = FlowStats(5, 5)
    before = raw_dump(flows.handle)
    for write in (
        flows.__setitem__,
        flows.insert,
        flows.replace,
        lambda k, v: flows.update_batch([(flow(2), FlowStats(1, 1)), (k, v)]),
    ):
        with pytest.raises(tm.CodecError) as info:
            write(key, value)
        assert info.value.path.replace("[1]", "").startswith(path)
        assert raw_dump(flows.handle) == before


def test_wrong_key_type_in_lookup(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    with pytest.raises(tm.CodecError):
        flows["10.0.0.1"]  # type: ignore[index]
    with pytest.raises(tm.CodecError):
        _ = "10.0.0.1" in flows  # type: ignore[comparison-overlap]


def test_schema_sizes_are_checked_once(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=16, value_size=8, max_entries=4)
    with pytest.raises(tm.SizeMismatchError) as info:
        tm.TypedMap(h, key=KEY, value=STATS)
    e = info.value
    assert (e.size, e.expected) == (16, 8)
    assert "DataclassStruct(FlowStats)" in str(e)
    assert "value_size" in str(e)
    assert "tm_test" in str(e)
    with pytest.raises(tm.SizeMismatchError, match=r"Int32ul is 4 bytes, expected 16"):
        tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)


def test_schema_without_fixed_size(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with pytest.raises(tm.CodecError, match=r"GreedyBytes.*fixed"):
        tm.TypedMap(h, key=cs.Int32ul, value=cs.GreedyBytes)


@pytest.mark.parametrize(
    ("map_type", "shape", "right"),
    [
        (tm.MapType.PERCPU_HASH, {"key_size": 4, "value_size": 8}, "PerCpuTypedMap"),
        (tm.MapType.PERCPU_ARRAY, {"key_size": 4, "value_size": 8}, "PerCpuTypedMap"),
        (tm.MapType.QUEUE, {"value_size": 8}, "TypedQueue"),
        (tm.MapType.STACK, {"value_size": 8}, "TypedStack"),
        (tm.MapType.BLOOM_FILTER, {"value_size": 8}, "TypedBloomFilter"),
    ],
)
def test_typed_map_refuses_other_kinds(
    make_map: MakeMap, map_type: tm.MapType, shape: dict[str, int], right: str
) -> None:
    h = make_map(map_type, max_entries=8, **shape)
    with pytest.raises(tm.NotSupportedError, match=f"use {right}") as info:
        tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    assert map_type.name in str(info.value)


def test_ringbuf_is_not_a_typed_map(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with pytest.raises(tm.NotSupportedError, match="use TypedRingBuffer"):
        tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    with pytest.raises(tm.NotSupportedError, match="carry records, not keys"):
        tm.typed(h, key=cs.Int32ul, value=cs.Int64ul)


def test_not_a_handle() -> None:
    with pytest.raises(TypeError, match="MapHandle"):
        tm.TypedMap(3, key=cs.Int32ul, value=cs.Int64ul)  # type: ignore[arg-type]


def test_closed_handle(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[1] = 1
    h.close()
    assert m.closed
    for op in (
        lambda: m[1],
        lambda: m.get(1),
        lambda: m.__setitem__(1, 2),
        lambda: 1 in m,
        lambda: len(m),
        lambda: list(m),
        lambda: list(m.items()),
        lambda: m.pop(1),
        lambda: m.update_batch([(1, 1)]),
    ):
        with pytest.raises(tm.MapClosedError):
            op()


def test_context_manager_closes_the_handle(bpf: None) -> None:
    h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul) as m:
        m[1] = 2
        assert "TypedMap(key=Int32ul, value=Int64ul" in repr(m)
    assert h.closed
    assert "closed" in repr(m)


# ---------------------------------------------------------------------------- batches


def test_update_batch_and_read_back(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=16, value_size=16, max_entries=5000)
    m = tm.TypedMap(h, key=KEY, value=STATS)
    pairs = [(flow(i), FlowStats(i, 2 * i)) for i in range(5000)]
    assert m.update_batch(pairs) == 5000
    assert len(m) == 5000
    got = {k.src: v for k, v in m.items()}
    assert got == {i: FlowStats(i, 2 * i) for i in range(5000)}
    # small batches give the same elements
    assert sorted(k.src for k, _ in m.lookup_batch(batch_size=7)) == list(range(5000))
    assert m.delete_batch([flow(i) for i in range(0, 5000, 2)]) == 2500
    assert sorted(k.src for k in m) == list(range(1, 5000, 2))
    assert m.update_batch({}) == 0


def test_update_batch_stops_part_way(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=6)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[5] = 50
    with pytest.raises(tm.BatchError) as info:
        m.update_batch([(i, i) for i in range(10)])
    assert isinstance(info.value, tm.MapFullError)
    assert info.value.processed == 6  # 0..4 added, 5 overwritten, then full
    assert dict(m.items()) == {i: i for i in range(6)}


def test_update_batch_refuses_no_exist(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=6)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    with pytest.raises(tm.ArgumentError, match="NO_EXIST"):
        m.update_batch([(1, 1)], tm.MapFlags.NO_EXIST)
    assert len(m) == 0


def test_delete_batch_stops_at_a_missing_key(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=64)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m.update_batch([(i, i) for i in range(4)])
    with pytest.raises(tm.BatchError) as info:
        m.delete_batch([0, 1, 42, 2])
    assert isinstance(info.value, tm.KeyNotFoundError)
    assert info.value.processed == 2
    assert sorted(m) == [2, 3]


def test_lookup_and_delete_batch_drains(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=1000)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m.update_batch([(i, i * i) for i in range(1000)])
    drained = dict(m.lookup_and_delete_batch(batch_size=64))
    assert drained == {i: i * i for i in range(1000)}
    assert len(m) == 0


def test_batch_size_is_checked(flows: tm.TypedMap[FlowKey, FlowStats]) -> None:
    with pytest.raises(tm.ArgumentError, match="batch_size"):
        flows.lookup_batch(batch_size=0)


def test_lpm_trie(make_map: MakeMap) -> None:
    lpm_key = cs.Struct("prefixlen" / cs.Int32ul, "addr" / cs.Bytes(4))
    h = make_map(tm.MapType.LPM_TRIE, key_size=8, value_size=8, max_entries=16)
    # A Struct parses to a Container (a dict) and builds from any dict: annotate
    # the key type as dict to index with dict literals.
    m: tm.TypedMap[dict[str, Any], int] = tm.TypedMap(h, key=lpm_key, value=cs.Int64ul)
    m[{"prefixlen": 8, "addr": bytes([10, 0, 0, 0])}] = 8
    m[{"prefixlen": 16, "addr": bytes([10, 1, 0, 0])}] = 16
    m[{"prefixlen": 32, "addr": bytes([10, 1, 2, 3])}] = 32
    # longest-prefix match, as the kernel does it
    assert m[{"prefixlen": 32, "addr": bytes([10, 1, 9, 9])}] == 16
    for batch in (True, False):  # LOOKUP_BATCH (Linux 6.x), then the key walk
        m._batch = batch
        assert len(m) == 3
        assert sorted(m.values()) == [8, 16, 32]
        assert sorted((k["prefixlen"], v) for k, v in m.items()) == [(8, 8), (16, 16), (32, 32)]
    # no LOOKUP_AND_DELETE for tries: pop is a lookup and a delete
    assert m.pop({"prefixlen": 16, "addr": bytes([10, 1, 0, 0])}) == 16
    assert m.pop({"prefixlen": 16, "addr": bytes([10, 1, 0, 0])}, None) is None
    assert len(m) == 2
    m.clear()
    assert len(m) == 0


def test_map_type_without_batch_ops_is_walked(make_map: MakeMap) -> None:
    """DEVMAP_HASH has no BPF_MAP_LOOKUP_BATCH: items() walks keys instead."""
    h = make_map(tm.MapType.DEVMAP_HASH, key_size=4, value_size=4, max_entries=16)
    with pytest.raises(tm.NotSupportedError):
        list(h.lookup_batch())
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int32ul)
    m[5] = 1  # ifindex 1: loopback
    m[7] = 1
    assert sorted(m.items()) == [(5, 1), (7, 1)]
    assert not m._batch  # switched off by the kernel's ENOTSUPP
    assert len(m) == 2
    assert sorted(m) == [5, 7]
    with pytest.raises(tm.NotSupportedError):
        list(m.lookup_batch())  # an explicit batch request does not fall back
    with pytest.raises(tm.NotSupportedError):
        m.update_batch([(9, 1)])
    assert m.pop(5) == 1
    m.clear()
    assert len(m) == 0


def test_values_are_read_by_raw_kernel_keys(make_map: MakeMap) -> None:
    """A key with non-zero padding (as clang may leave it) is still listed with its value."""
    h = make_map(tm.MapType.HASH, key_size=16, value_size=16, max_entries=8)
    m = tm.TypedMap(h, key=KEY, value=STATS)
    dirty = KEY.build(flow(1))[:13] + b"\xaa\xbb\xcc"
    h.update(dirty, STATS.build(FlowStats(7, 7)))
    for batch in (True, False):  # BPF_MAP_LOOKUP_BATCH, then the GET_NEXT_KEY walk
        m._batch = batch
        assert list(m.items()) == [(flow(1), FlowStats(7, 7))]
        assert list(m.values()) == [FlowStats(7, 7)]
        assert len(m) == 1
    # the documented caveat: re-encoding the decoded key zeroes the padding
    assert flow(1) not in m


def test_items_memory_is_bounded(make_map: MakeMap) -> None:
    n = 200_000
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=n)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    chunks = list(m._raw_chunks())
    assert max(count for count, _, _ in chunks) <= 4096
    assert sum(count for count, _, _ in chunks) == n
    del chunks
    tracemalloc.start()
    try:
        total = 0
        for k, v in m.items():
            total += k + v
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == n * (n - 1) // 2
    # all pairs at once would take tens of MB; one batch is well under 4 MB
    assert peak < 4 * 1024 * 1024, peak


# ---------------------------------------------------------------------------- ARRAY maps


@pytest.fixture
def array(make_map: MakeMap) -> tm.TypedMap[int, FlowStats]:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=16, max_entries=8)
    return tm.TypedMap(h, key=cs.Int32ul, value=STATS)


def test_array_keys_are_indices(array: tm.TypedMap[int, FlowStats]) -> None:
    assert len(array) == 8
    assert list(array) == list(range(8))
    assert array[3] == FlowStats(0, 0)
    array[3] = FlowStats(3, 30)
    assert dict(array.items())[3] == FlowStats(3, 30)
    assert list(array.values()).count(FlowStats(0, 0)) == 7
    assert 7 in array
    assert 8 not in array
    assert array.get(8) is None


def test_array_index_out_of_range(array: tm.TypedMap[int, FlowStats]) -> None:
    with pytest.raises(tm.KeyNotFoundError):
        array[8]
    with pytest.raises(tm.KeyNotFoundError, match="max_entries=8"):
        array[8] = FlowStats(1, 1)


def test_array_refuses_deletion(array: tm.TypedMap[int, FlowStats]) -> None:
    array[1] = FlowStats(1, 1)
    for op in (
        lambda: array.__delitem__(1),
        lambda: array.pop(1),
        lambda: array.pop(1, None),
        array.popitem,
        lambda: array.delete_batch([1]),
        array.lookup_and_delete_batch,
    ):
        with pytest.raises(tm.NotSupportedError, match="cannot be deleted"):
            op()
    assert array[1] == FlowStats(1, 1)


def test_array_clear_zero_fills(array: tm.TypedMap[int, FlowStats]) -> None:
    array.update_batch([(i, FlowStats(i + 1, i + 1)) for i in range(8)])
    assert all(v.packets for v in array.values())
    array.clear()
    assert list(array.values()) == [FlowStats(0, 0)] * 8
    assert set(raw_dump(array.handle).values()) == {bytes(16)}
    assert array.insert is not None
    with pytest.raises(tm.KeyExistsError):
        array.insert(0, FlowStats(1, 1))  # every index exists


def test_big_array_clear_goes_in_batches(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=10_000)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[9999] = 5
    m[0] = 5
    m.clear()
    assert m[9999] == 0
    assert m[0] == 0
    assert sum(m.values()) == 0


def test_full_reads_leave_the_gc_as_they_found_it(make_map: MakeMap) -> None:
    """Chunks decode with the GC paused; the caller's loop body never sees it off."""
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=10_000)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m.update_batch([(i, i) for i in range(10_000)])
    assert gc.isenabled()
    assert all(gc.isenabled() for _ in m.items())
    assert all(gc.isenabled() for _ in m)
    assert gc.isenabled()
    gc.disable()
    try:
        assert sum(v for _, v in m.items()) == sum(range(10_000))
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    broken = tm.TypedMap(h, key=cs.Int32ul, value=cs.Const(0, cs.Int64ul))
    with pytest.raises(tm.CodecError):
        list(broken.items())  # most values are not the constant 0
    assert gc.isenabled()
