"""QUEUE, STACK and BLOOM_FILTER: push / pop / peek / lookup_bloom_filter, and the
methods they refuse (with a message naming the right one)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import typedmaps as tm

from .conftest import MakeMap
from .test_handle_kinds import BY_TYPE, KEYED, Kind, kinds

T = tm.MapType
F = tm.MapFlags
QUEUE, STACK, BLOOM = BY_TYPE[T.QUEUE], BY_TYPE[T.STACK], BY_TYPE[T.BLOOM_FILTER]


def drain(h: tm.MapHandle) -> list[bytes]:
    out = []
    while (v := h.pop()) is not None:
        out.append(v)
    return out


@kinds([QUEUE, STACK])
def test_empty_pop_and_peek_are_none(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    assert h.peek() is None
    assert h.pop() is None


@kinds([QUEUE, STACK])
def test_order_and_peek(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, max_entries=4)
    for i in range(3):
        h.push(kind.value(i))
    first = kind.value(0) if kind.map_type is T.QUEUE else kind.value(2)
    assert h.peek() == first
    assert h.peek() == first  # peek does not remove
    expected = [kind.value(i) for i in range(3)]
    if kind.map_type is T.STACK:
        expected.reverse()
    assert drain(h) == expected
    assert h.peek() is None


@kinds([QUEUE, STACK])
def test_full_push_raises_map_full(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, max_entries=2)
    h.push(kind.value(0))
    h.push(kind.value(1))
    with pytest.raises(tm.MapFullError, match="push: map is full"):
        h.push(kind.value(2))
    got = drain(h)
    assert sorted(got) == [kind.value(0), kind.value(1)]


@kinds([QUEUE, STACK])
def test_push_exist_overwrites_the_oldest_when_full(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, max_entries=3)
    for i in range(3):
        h.push(kind.value(i))
    h.push(kind.value(3), F.EXIST)
    h.push(kind.value(4), F.EXIST)
    got = drain(h)
    if kind.map_type is T.QUEUE:
        assert got == [kind.value(2), kind.value(3), kind.value(4)]
    else:
        assert got == [kind.value(4), kind.value(3), kind.value(2)]


@kinds([QUEUE, STACK])
def test_push_exist_on_a_queue_with_room_just_appends(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, max_entries=3)
    h.push(kind.value(0), F.EXIST)
    assert drain(h) == [kind.value(0)]


def test_bloom_filter_has_no_false_negatives(make_map: MakeMap) -> None:
    h = BLOOM.create(make_map, max_entries=1000)
    members = range(0, 40, 2)
    for i in members:
        h.push(BLOOM.value(i))
    assert all(h.lookup_bloom_filter(BLOOM.value(i)) for i in members)
    # 20 members in a filter sized for 1000 with 3 hashes: false positives are rare.
    false_positives = sum(h.lookup_bloom_filter(BLOOM.value(i)) for i in range(1, 400, 2))
    assert false_positives <= 5


def test_bloom_filter_checks_sizes_before_the_syscall(make_map: MakeMap) -> None:
    h = BLOOM.create(make_map)
    h.freeze()
    for wrong in (b"", BLOOM.value(0)[:-1], BLOOM.value(0) + b"\0"):
        with pytest.raises(tm.SizeMismatchError) as info:
            h.push(wrong)
        assert info.value.what == "push: value"
        with pytest.raises(tm.SizeMismatchError) as info:
            h.lookup_bloom_filter(wrong)
        assert info.value.what == "lookup_bloom_filter: value"
        assert (info.value.size, info.value.expected) == (len(wrong), BLOOM.value_size)
    with pytest.raises(tm.MapPermissionError, match="push: "):
        h.push(BLOOM.value(0))


@kinds([QUEUE, STACK, BLOOM])
def test_push_flags_are_checked_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.freeze()
    bad: list[int] = [F.NO_EXIST, F.LOCK, 8, -1]
    if kind.map_type is T.BLOOM_FILTER:
        bad.append(F.EXIST)
    for flags in bad:
        with pytest.raises(tm.ArgumentError, match="flags"):
            h.push(kind.value(0), flags)


@kinds([QUEUE, STACK])
def test_push_value_size_is_checked_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.push(kind.value(1))
    h.freeze()
    with pytest.raises(tm.SizeMismatchError) as info:
        h.push(kind.value(0)[:-1])
    assert (info.value.what, info.value.size) == ("push: value", kind.value_size - 1)
    assert h.peek() == kind.value(1)


def _keyed_calls(kind: Kind) -> dict[str, Callable[[tm.MapHandle], object]]:
    k, v = bytes(4), kind.value(0)
    return {
        "lookup": lambda h: h.lookup(k),
        "update": lambda h: h.update(k, v),
        "delete": lambda h: h.delete(k),
        "lookup_and_delete": lambda h: h.lookup_and_delete(k),
        "keys": lambda h: h.keys(),
        "update_batch": lambda h: h.update_batch(k, v, 1),
        "delete_batch": lambda h: h.delete_batch(k, 1),
        "lookup_batch": lambda h: h.lookup_batch(),
        "lookup_and_delete_batch": lambda h: h.lookup_and_delete_batch(),
    }


@kinds([QUEUE, STACK, BLOOM])
def test_keyless_maps_refuse_keyed_methods(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    right = "lookup_bloom_filter()/push()" if kind.map_type is T.BLOOM_FILTER else "push()"
    for op, call in _keyed_calls(kind).items():
        with pytest.raises(tm.NotSupportedError, match=f"^{op}: .*must be used") as info:
            call(h)
        assert right in str(info.value)
        assert kind.name in str(info.value)


@kinds([QUEUE, STACK])
def test_queues_refuse_the_bloom_and_percpu_methods(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with pytest.raises(tm.NotSupportedError, match=r"lookup_bloom_filter\(\) is for BLOOM_FILTER"):
        h.lookup_bloom_filter(kind.value(0))
    with pytest.raises(tm.NotSupportedError, match="lookup_percpu"):
        h.lookup_percpu(b"")


def test_bloom_filter_refuses_pop_and_peek(make_map: MakeMap) -> None:
    h = BLOOM.create(make_map)
    h.push(BLOOM.value(0))
    for call in (h.pop, h.peek):
        with pytest.raises(
            tm.NotSupportedError, match=r"is for QUEUE/STACK maps, not BLOOM_FILTER"
        ):
            call()
    assert h.lookup_bloom_filter(BLOOM.value(0))


@kinds(KEYED)
def test_keyed_maps_refuse_push_pop_peek(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with pytest.raises(tm.NotSupportedError, match=rf"push\(\) is for .* not {kind.name}"):
        h.push(kind.value(0))
    with pytest.raises(tm.NotSupportedError, match=r"pop\(\) is for QUEUE/STACK"):
        h.pop()
    with pytest.raises(tm.NotSupportedError, match=r"peek\(\) is for QUEUE/STACK"):
        h.peek()
    with pytest.raises(tm.NotSupportedError, match="lookup_bloom_filter"):
        h.lookup_bloom_filter(kind.value(0))


def test_keyless_maps_need_key_size_zero(make_map: MakeMap) -> None:
    with pytest.raises(tm.MapError, match="create QUEUE: the kernel refused") as info:
        make_map(T.QUEUE, key_size=4, value_size=4, max_entries=4)
    assert info.value.errno == 22
