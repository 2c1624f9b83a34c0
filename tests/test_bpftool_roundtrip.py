"""Differential tests with bpftool as a second, independent reader and writer.

typedmaps writes and ``bpftool map dump -j`` reads the same bytes (hex byte
strings for maps without BTF; per-CPU maps list a value per possible CPU),
and bpftool writes (``map update`` / ``push``) what typedmaps then reads.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

import typedmaps as tm

from .conftest import MakeMap, bpftool
from .test_handle_kinds import BY_TYPE, NCPUS, Kind, kinds

T = tm.MapType


def unhex(items: list[str]) -> bytes:
    """bpftool's ["0x01", "0xab", ...] as bytes."""
    return bytes(int(x, 16) for x in items)


def hexargs(data: bytes) -> list[str]:
    """bytes as bpftool's command-line `hex` tokens."""
    return ["hex", *(f"{b:02x}" for b in data)]


def dump(h: tm.MapHandle) -> dict[bytes, Any]:
    """The map as bpftool sees it: key -> value, or key -> [value per CPU]."""
    out: dict[bytes, Any] = {}
    for entry in bpftool("map", "dump", "id", str(h.id)):
        key = unhex(entry["key"])
        if "values" in entry:
            per_cpu = sorted(entry["values"], key=lambda e: e["cpu"])
            assert [e["cpu"] for e in per_cpu] == list(range(NCPUS))
            out[key] = [unhex(e["value"]) for e in per_cpu]
        else:
            out[key] = unhex(entry["value"])
    return out


def contents(h: tm.MapHandle) -> dict[bytes, Any]:
    """The map as typedmaps sees it, by keys() + lookup (not batches)."""
    walk = list(h.keys())
    if h.map_type.is_percpu:
        return {k: h.lookup_percpu(k) for k in walk}
    return {k: h.lookup(k) for k in walk}


KEYED = [BY_TYPE[t] for t in (T.HASH, T.ARRAY, T.PERCPU_HASH, T.PERCPU_ARRAY, T.LRU_HASH)]
KEYED.append(BY_TYPE[T.LRU_PERCPU_HASH])


@kinds(KEYED)
def test_typedmaps_writes_bpftool_reads(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    for i in (1, 3, 6):
        kind.put(h, i)
    seen = dump(h)
    assert seen == contents(h)
    for i in (1, 3, 6):
        assert seen[kind.key(i)] == kind.expected(i)
    if kind.map_type.has_fixed_keys:
        assert len(seen) == kind.max_entries
    else:
        assert set(seen) == {kind.key(i) for i in (1, 3, 6)}


@kinds(KEYED)
def test_batch_writes_match_bpftool(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    idx = [0, 2, 4, 5]
    keys = b"".join(kind.key(i) for i in idx)
    if kind.percpu:
        values = b"".join(v + bytes(4) for i in idx for v in kind.values(i))
    else:
        values = b"".join(kind.value(i) for i in idx)
    h.update_batch(keys, values, len(idx))
    seen = dump(h)
    for i in idx:
        assert seen[kind.key(i)] == kind.expected(i)
    assert dict(h.lookup_batch()) == seen


@kinds(KEYED)
def test_bpftool_writes_typedmaps_reads(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    key, value = kind.key(2), kind.value(77, cpu=5)
    bpftool("map", "update", "id", str(h.id), "key", *hexargs(key), "value", *hexargs(value))
    if kind.percpu:
        # bpftool writes the one value it is given into every CPU's slot.
        assert h.lookup_percpu(key) == [value] * NCPUS
    else:
        assert h.lookup(key) == value
    assert contents(h)[key] == dump(h)[key]
    if not kind.map_type.has_fixed_keys:
        bpftool("map", "delete", "id", str(h.id), "key", *hexargs(key))
        assert (h.lookup_percpu(key) if kind.percpu else h.lookup(key)) is None


def test_bpftool_lookup_agrees_on_a_pinned_map(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(T.HASH, key_size=8, value_size=16, max_entries=4)
    key, value = struct.pack("<Q", 0x0102030405060708), bytes(range(16))
    h.update(key, value)
    h.pin(pin_dir / "m")
    got = bpftool("map", "lookup", "pinned", str(pin_dir / "m"), "key", *hexargs(key))
    assert unhex(got["key"]) == key
    assert unhex(got["value"]) == value
    new = bytes(range(100, 116))
    path = str(pin_dir / "m")
    bpftool("map", "update", "pinned", path, "key", *hexargs(key), "value", *hexargs(new))
    with tm.MapHandle.from_pinned_path(pin_dir / "m", readonly=True) as again:
        assert again.lookup(key) == new
    assert h.lookup(key) == new


@kinds([BY_TYPE[T.QUEUE], BY_TYPE[T.STACK]])
def test_queue_and_stack_both_ways(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    mid = str(h.id)
    h.push(kind.value(1))
    h.push(kind.value(2))
    top = kind.value(1) if kind.map_type is T.QUEUE else kind.value(2)
    assert unhex(bpftool("map", "peek", "id", mid)["value"]) == top
    assert h.peek() == top
    bpftool("map", "push", "id", mid, "value", *hexargs(kind.value(3)))
    popped = [unhex(bpftool("map", "pop", "id", mid)["value"]), h.pop()]
    popped.append(unhex(bpftool("map", "pop", "id", mid)["value"]))
    if kind.map_type is T.QUEUE:
        assert popped == [kind.value(1), kind.value(2), kind.value(3)]
    else:
        assert popped == [kind.value(3), kind.value(2), kind.value(1)]
    assert h.pop() is None


def test_bloom_filter_written_by_bpftool(make_map: MakeMap) -> None:
    kind = BY_TYPE[T.BLOOM_FILTER]
    h = kind.create(make_map, max_entries=100)
    bpftool("map", "push", "id", str(h.id), "value", *hexargs(kind.value(9)))
    assert h.lookup_bloom_filter(kind.value(9))


# ------------------------------------------------------------------ random bytes

settings_small = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@settings_small
@given(
    items=st.dictionaries(
        st.binary(min_size=6, max_size=6), st.binary(min_size=10, max_size=10), max_size=12
    ),
)
def test_random_bytes_agree_with_bpftool(bpf: None, items: dict[bytes, bytes]) -> None:
    # key 6 and value 10 bytes: odd sizes, no alignment to hide behind.
    with tm.MapHandle.create(T.HASH, key_size=6, value_size=10, max_entries=16) as h:
        for k, v in items.items():
            h.update(k, v)
        assert dump(h) == items


@settings_small
@given(
    values=st.lists(st.binary(min_size=5, max_size=5), min_size=NCPUS, max_size=NCPUS),
    key=st.binary(min_size=4, max_size=4),
)
def test_random_percpu_bytes_agree_with_bpftool(bpf: None, values: list[bytes], key: bytes) -> None:
    # value_size 5: each CPU slot is 8 bytes, 3 of them padding bpftool must not show.
    with tm.MapHandle.create(T.PERCPU_HASH, key_size=4, value_size=5, max_entries=2) as h:
        h.update_percpu(key, values)
        assert dump(h) == {key: values}


@pytest.mark.parametrize("map_type", [T.HASH, T.PERCPU_HASH])
def test_bpftool_sees_deletes_and_drains(make_map: MakeMap, map_type: tm.MapType) -> None:
    kind = Kind(map_type)
    h = kind.create(make_map)
    for i in range(5):
        kind.put(h, i)
    h.delete(kind.key(0))
    assert set(dump(h)) == {kind.key(i) for i in range(1, 5)}
    drained = dict(h.lookup_and_delete_batch())
    assert len(drained) == 4
    assert dump(h) == {}
