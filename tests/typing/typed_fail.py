"""Mistakes mypy must reject: each marked line carries ``# E: <error code>``.

tests/test_typing.py asserts that mypy --strict reports exactly these
errors (line and code) in this file and nothing else.
"""

from __future__ import annotations

import construct as cs
from construct_typed import DataclassStruct

import typedmaps as tm

from .records import Event, FlowKey, FlowStats


def wrong_key(h: tm.MapHandle, k: FlowKey) -> None:
    m = tm.TypedMap(h, key=DataclassStruct(FlowKey), value=cs.Int64ul)
    m["10.0.0.1"]  # E: index
    m[FlowStats(packets=1, bytes=2)] = 1  # E: index
    m.get(5)  # E: call-overload
    m.insert(Event(pid=1, comm=b""), 1)  # E: arg-type
    m.delete_batch([1])  # E: list-item


def wrong_value(h: tm.MapHandle, k: FlowKey) -> None:
    m = tm.TypedMap(h, key=DataclassStruct(FlowKey), value=cs.Int64ul)
    m[k] = "many"  # E: assignment
    m.replace(k, 1.5)  # E: arg-type
    _text: str = m[k]  # E: assignment
    m.update_batch([(k, b"x")])  # E: list-item
    stats = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(FlowStats))
    stats[0] = Event(pid=1, comm=b"")  # E: assignment


def scalar_for_per_cpu(h: tm.MapHandle) -> None:
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    pc[0] = 5  # E: assignment
    pc.insert(1, 7)  # E: arg-type
    _total: list[int] = pc.sum(0)  # E: assignment
    _one: int = pc[0]  # E: assignment


def wrong_record_to_queue(h: tm.MapHandle, k: FlowKey) -> None:
    q = tm.TypedQueue(h, value=DataclassStruct(Event))
    q.push(k)  # E: arg-type
    _ev: Event = q.pop()  # E: assignment
    bf = tm.TypedBloomFilter(h, value=cs.Int64ul)
    bf.add("key")  # E: arg-type


def keyless_has_no_mapping_api(h: tm.MapHandle) -> None:
    q = tm.TypedQueue(h, value=cs.Int32ul)
    len(q)  # E: arg-type
    q[0]  # E: index


def wrong_records_in_streams(m: tm.MapHandle, u: tm.MapHandle, k: FlowKey) -> None:
    ev = tm.TypedRingBuffer(m, value=DataclassStruct(Event))
    _stats: list[FlowStats] = ev.consume()  # E: assignment
    _one: Event = ev.poll(1)  # E: assignment
    ub = tm.TypedUserRingBuffer(u, value=DataclassStruct(Event))
    ub.push(k)  # E: arg-type
    ub.push_many([k])  # E: list-item
    tm.UserRingBuffer(u).push(Event(pid=1, comm=b""))  # E: arg-type
