"""TypedQueue, TypedStack and TypedBloomFilter on real kernel maps."""

from __future__ import annotations

import dataclasses

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import MakeMap


@dataclasses.dataclass
class Event(DataclassMixin):
    pid: int = csfield(cs.Int32ul)
    kind: int = csfield(cs.Int16ul)
    comm: bytes = csfield(cs.Bytes(10))


EVENT = DataclassStruct(Event)


def ev(i: int) -> Event:
    return Event(pid=i, kind=i % 3, comm=f"proc{i}".encode().ljust(10, b"\0"))


@pytest.fixture
def queue(make_map: MakeMap) -> tm.TypedQueue[Event]:
    return tm.TypedQueue(make_map(tm.MapType.QUEUE, value_size=16, max_entries=4), value=EVENT)


def test_queue_is_fifo(queue: tm.TypedQueue[Event]) -> None:
    assert queue.pop() is None
    assert queue.peek() is None
    assert not queue
    for i in range(3):
        queue.push(ev(i))
    assert queue
    assert queue.peek() == ev(0)
    assert queue.pop() == ev(0)
    assert list(queue.drain()) == [ev(1), ev(2)]
    assert queue.pop() is None
    assert list(queue.drain()) == []


def test_stack_is_lifo(make_map: MakeMap) -> None:
    s = tm.TypedStack(make_map(tm.MapType.STACK, value_size=8, max_entries=8), value=cs.Int64sl)
    for i in (-1, 2, -3):
        s.push(i)
    assert s.peek() == -3
    assert list(s.drain()) == [-3, 2, -1]
    assert s.pop() is None


def test_drain_max_items(queue: tm.TypedQueue[Event]) -> None:
    for i in range(4):
        queue.push(ev(i))
    assert list(queue.drain(max_items=3)) == [ev(0), ev(1), ev(2)]
    assert queue.pop() == ev(3)


def test_drain_is_lazy_and_removes_as_it_goes(queue: tm.TypedQueue[Event]) -> None:
    for i in range(3):
        queue.push(ev(i))
    it = queue.drain()
    assert next(it) == ev(0)
    assert queue.peek() == ev(1)


def test_full_queue(queue: tm.TypedQueue[Event]) -> None:
    for i in range(4):
        queue.push(ev(i))
    with pytest.raises(tm.MapFullError):
        queue.push(ev(4))
    queue.push(ev(4), overwrite=True)  # drops the oldest
    assert [e.pid for e in queue.drain()] == [1, 2, 3, 4]


def test_bad_value_is_not_pushed(queue: tm.TypedQueue[Event]) -> None:
    queue.push(ev(1))
    with pytest.raises(tm.CodecError) as info:
        queue.push(Event(pid=1, kind=70000, comm=bytes(10)))
    assert info.value.path == "value.kind"
    with pytest.raises(tm.CodecError):
        queue.push(Event(pid=1, kind=1, comm=b"short"))
    assert list(queue.drain()) == [ev(1)]


def test_no_len_and_no_iteration(queue: tm.TypedQueue[Event]) -> None:
    with pytest.raises(TypeError):
        len(queue)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        iter(queue)  # type: ignore[call-overload]


def test_queue_and_stack_refuse_each_other(make_map: MakeMap) -> None:
    q = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4)
    s = make_map(tm.MapType.STACK, value_size=8, max_entries=4)
    with pytest.raises(tm.NotSupportedError, match="use TypedQueue"):
        tm.TypedStack(q, value=cs.Int64ul)
    with pytest.raises(tm.NotSupportedError, match="use TypedStack"):
        tm.TypedQueue(s, value=cs.Int64ul)
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with pytest.raises(tm.NotSupportedError, match="use TypedMap"):
        tm.TypedQueue(h, value=cs.Int64ul)
    with pytest.raises(tm.SizeMismatchError, match="Int32ul is 4 bytes, expected 8"):
        tm.TypedQueue(q, value=cs.Int32ul)


def test_closed_queue(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4)
    q = tm.TypedQueue(h, value=cs.Int64ul)
    q.close()
    assert q.closed
    assert "closed" in repr(q)
    for op in (q.pop, q.peek, q.drain, lambda: q.push(1)):
        with pytest.raises(tm.MapClosedError):
            op()


def test_bloom_filter(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.BLOOM_FILTER, value_size=16, max_entries=1000)
    bf = tm.TypedBloomFilter(h, value=EVENT)
    for i in range(0, 100, 2):
        bf.add(ev(i))
    assert all(ev(i) in bf for i in range(0, 100, 2))  # never a false negative
    false_positives = sum(ev(i) in bf for i in range(1, 100, 2))
    assert false_positives < 5  # 50 of 1000 slots, 3 hashes: about 0.01 %
    with pytest.raises(tm.CodecError):
        bf.add(Event(pid=-1, kind=0, comm=bytes(10)))
    with pytest.raises(tm.CodecError):
        _ = Event(pid=-1, kind=0, comm=bytes(10)) in bf
    assert "TypedBloomFilter(value=DataclassStruct(Event)" in repr(bf)
    with pytest.raises(tm.NotSupportedError, match="use TypedBloomFilter"):
        tm.TypedQueue(h, value=EVENT)


def test_keyless_wrappers_are_context_managers(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.STACK, value_size=4, max_entries=4)
    with tm.TypedStack(h, value=cs.Int32ul) as st:
        st.push(7)
        assert st.handle is h
        assert not st.closed
    assert st.closed
    assert h.closed
    with pytest.raises(tm.MapClosedError):
        st.push(8)
