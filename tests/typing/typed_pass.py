"""What mypy must infer for the typed layer, with no annotations on the wrappers.

Checked by tests/test_typing.py with ``mypy --strict``: every line here must
type-check. Never run (the handles are parameters).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from typing import Any, assert_type

import construct as cs
from construct_typed import DataclassStruct

import typedmaps as tm
from typedmaps.codec import Codec

from .records import Event, FlowKey, FlowStats


def typed_map(h: tm.MapHandle, k: FlowKey) -> None:
    m = tm.TypedMap(h, key=DataclassStruct(FlowKey), value=cs.Int64ul)
    assert_type(m, tm.TypedMap[FlowKey, int])
    assert_type(m[k], int)
    assert_type(m.get(k), int | None)
    assert_type(m.get(k, 0), int)
    assert_type(m.get(k, "none"), int | str)
    assert_type(m.pop(k), int)
    assert_type(m.pop(k, None), int | None)
    assert_type(m.popitem(), tuple[FlowKey, int])
    assert_type(m.setdefault(k, 1), int)
    assert_type(k in m, bool)
    assert_type(len(m), int)
    m[k] = 1
    m.insert(k, 2)
    m.replace(k, 3)
    del m[k]
    m.update({k: 4})
    m.update([(k, 5)])
    assert_type(m.update_batch([(k, 6)]), int)
    assert_type(m.update_batch({k: 7}, tm.MapFlags.NO_EXIST), int)
    assert_type(m.delete_batch([k]), int)
    assert_type(m.items(), ItemsView[FlowKey, int])
    assert_type(m.keys(), KeysView[FlowKey])
    assert_type(m.values(), ValuesView[int])
    for key, value in m.items():
        assert_type(key, FlowKey)
        assert_type(value, int)
    for key in m:
        assert_type(key, FlowKey)
    assert_type(m.lookup_batch(), Iterator[tuple[FlowKey, int]])
    assert_type(m.lookup_and_delete_batch(256), Iterator[tuple[FlowKey, int]])
    assert_type(m.key_codec, Codec[FlowKey])
    assert_type(m.value_codec, Codec[int])
    assert_type(m.handle, tm.MapHandle)


def record_values(h: tm.MapHandle) -> None:
    stats = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(FlowStats))
    assert_type(stats, tm.TypedMap[int, FlowStats])
    stats[0] = FlowStats(packets=1, bytes=64)
    assert_type(stats[0].packets, int)


def other_schemas(h: tm.MapHandle) -> None:
    assert_type(
        tm.TypedMap(h, key=cs.Struct("a" / cs.Int32ul), value=cs.Bytes(4)),
        tm.TypedMap[cs.Container[Any], bytes],
    )
    assert_type(tm.TypedMap(h, key=cs.Int32ul, value=cs.Float64l), tm.TypedMap[int, float])
    assert_type(
        tm.TypedMap(h, key=cs.Int32ul, value=cs.PaddedString(8, "utf8")), tm.TypedMap[int, str]
    )
    assert_type(tm.TypedMap(h, key=cs.Int32ul, value=cs.Flag), tm.TypedMap[int, bool])


def struct_keys_as_dicts(h: tm.MapHandle) -> None:
    """A Struct parses to a Container and builds from any dict: K may be either."""
    m: tm.TypedMap[dict[str, Any], int] = tm.TypedMap(
        h, key=cs.Struct("a" / cs.Int32ul), value=cs.Int64ul
    )
    m[{"a": 1}] = 2
    assert_type(m[{"a": 1}], int)


def mutable_mapping(m: MutableMapping[FlowKey, int]) -> None:
    """A TypedMap is usable wherever a MutableMapping is expected."""


def pass_as_mapping(h: tm.MapHandle) -> None:
    mutable_mapping(tm.TypedMap(h, key=DataclassStruct(FlowKey), value=cs.Int64ul))


def per_cpu(h: tm.MapHandle) -> None:
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    assert_type(pc, tm.PerCpuTypedMap[int, int])
    assert_type(pc[0], list[int])
    assert_type(pc.get(0), list[int] | None)
    assert_type(pc.pop(0), list[int])
    pc[0] = [1, 2]
    pc[1] = (3, 4)  # any Sequence of per-CPU values
    pc.insert(2, [5, 6])
    assert_type(pc.update_batch([(3, [7, 8])]), int)
    assert_type(pc.sum(0), int)
    assert_type(pc.totals(), Iterator[tuple[int, int]])
    assert_type(pc.sum_all(), int)
    assert_type(pc.items(), ItemsView[int, list[int]])
    assert_type(pc.num_cpus, int)
    records = tm.PerCpuTypedMap(h, key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats))
    assert_type(records, tm.PerCpuTypedMap[FlowKey, FlowStats])
    assert_type(records.sum(FlowKey(1, 2, 3, 4, 5)), FlowStats)


def keyless(h: tm.MapHandle, ev: Event) -> None:
    q = tm.TypedQueue(h, value=DataclassStruct(Event))
    assert_type(q, tm.TypedQueue[Event])
    q.push(ev)
    q.push(ev, overwrite=True)
    assert_type(q.pop(), Event | None)
    assert_type(q.peek(), Event | None)
    assert_type(q.drain(), Iterator[Event])
    assert_type(bool(q), bool)
    s = tm.TypedStack(h, value=cs.Int32ul)
    assert_type(s, tm.TypedStack[int])
    assert_type(s.pop(), int | None)
    bf = tm.TypedBloomFilter(h, value=cs.Int64ul)
    assert_type(bf, tm.TypedBloomFilter[int])
    bf.add(1)
    assert_type(1 in bf, bool)


def chosen_by_type(h: tm.MapHandle) -> None:
    both = tm.typed(h, key=cs.Int32ul, value=DataclassStruct(FlowStats))
    assert_type(both, tm.TypedMap[int, FlowStats] | tm.PerCpuTypedMap[int, FlowStats])
    if isinstance(both, tm.TypedMap):
        assert_type(both[0], FlowStats)
    else:
        assert_type(both[0], list[FlowStats])
    only_value = tm.typed(h, value=DataclassStruct(Event))
    if isinstance(only_value, tm.TypedQueue):
        assert_type(only_value.pop(), Event | None)
    from_btf = tm.typed(h)
    if isinstance(from_btf, tm.TypedMap):
        assert_type(from_btf[0], Any)


async def event_streams(
    m: tm.MapHandle, h: tm.MapHandle, u: tm.MapHandle, raw: tm.RingBuffer
) -> None:
    ev = tm.TypedRingBuffer(m, value=DataclassStruct(Event))
    assert_type(ev, tm.TypedRingBuffer[Event])
    assert_type(ev.consume(), list[Event])
    assert_type(ev.poll(0.5), list[Event])
    assert_type(ev.poll(None), list[Event])
    assert_type(await ev.apoll(1), list[Event])
    for e in ev:
        assert_type(e, Event)
    async for a in ev:
        assert_type(a, Event)
    assert_type(ev.fileno(), int)
    pb = tm.TypedPerfBuffer(h, value=cs.Int64ul, pages=8)
    assert_type(pb, tm.TypedPerfBuffer[int])
    assert_type(pb.lost, int)
    assert_type(pb.lost_by_cpu, list[int])
    assert_type(raw.consume(), list[bytes])
    assert_type(tm.PerfBuffer(h).poll(1), list[bytes])
    group = tm.EventGroup([ev, tm.TypedRingBuffer(m, value=DataclassStruct(Event))])
    assert_type(group.poll(1), list[tuple[tm.EventStream[Event], Event]])
    for src, rec in group:
        assert_type(src, tm.EventStream[Event])
        assert_type(rec, Event)
    mixed = tm.EventGroup([ev, raw])
    for _, r in mixed.consume():
        assert_type(r, object)  # the join of the streams' record types
    ub = tm.TypedUserRingBuffer(u, value=DataclassStruct(Event))
    assert_type(ub, tm.TypedUserRingBuffer[Event])
    ub.push(Event(pid=1, comm=b"x"))
    assert_type(ub.push_many([Event(pid=1, comm=b"x")]), int)
    bu = tm.UserRingBuffer(u)
    view = bu.reserve(8, timeout=1.0)
    assert_type(view, memoryview)
    bu.submit(view)
    by_name = tm.typed(m, value="event")
    if isinstance(by_name, tm.TypedRingBuffer):
        assert_type(by_name.consume(), list[Any])
    chosen = tm.typed(m, value=DataclassStruct(Event))
    if isinstance(chosen, tm.TypedRingBuffer):
        assert_type(chosen.consume(), list[Event])
