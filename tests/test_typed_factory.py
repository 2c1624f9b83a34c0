"""typed(): the wrapper is chosen by the map type, and mismatches are refused."""

from __future__ import annotations

import sys

import construct as cs
import pytest

import typedmaps as tm

from .conftest import MakeMap


@pytest.mark.parametrize(
    ("map_type", "wrapper"),
    [
        (tm.MapType.HASH, tm.TypedMap),
        (tm.MapType.ARRAY, tm.TypedMap),
        (tm.MapType.LRU_HASH, tm.TypedMap),
        (tm.MapType.PERCPU_HASH, tm.PerCpuTypedMap),
        (tm.MapType.PERCPU_ARRAY, tm.PerCpuTypedMap),
        (tm.MapType.LRU_PERCPU_HASH, tm.PerCpuTypedMap),
    ],
)
def test_keyed_maps(make_map: MakeMap, map_type: tm.MapType, wrapper: type) -> None:
    h = make_map(map_type, key_size=4, value_size=8, max_entries=4)
    m = tm.typed(h, key=cs.Int32ul, value=cs.Int64ul)
    # The wrapper class, or the class of its own it makes for this map
    # (element methods generated for the map: typed/_fast.py).
    assert isinstance(m, wrapper)
    assert type(m).__dict__.get("_tm_base", type(m)) is wrapper
    assert m.handle is h
    if isinstance(m, tm.PerCpuTypedMap):
        m[1] = [5] * tm.num_possible_cpus()
    else:
        m[1] = 5
    assert 1 in m


@pytest.mark.parametrize(
    ("map_type", "wrapper"),
    [
        (tm.MapType.QUEUE, tm.TypedQueue),
        (tm.MapType.STACK, tm.TypedStack),
        (tm.MapType.BLOOM_FILTER, tm.TypedBloomFilter),
    ],
)
def test_keyless_maps(make_map: MakeMap, map_type: tm.MapType, wrapper: type) -> None:
    h = make_map(map_type, value_size=8, max_entries=4)
    m = tm.typed(h, value=cs.Int64ul)
    assert type(m) is wrapper
    with pytest.raises(tm.NotSupportedError, match="have no keys: pass only value="):
        tm.typed(h, key=cs.Int32ul, value=cs.Int64ul)


def test_sizes_are_checked(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with pytest.raises(tm.SizeMismatchError):
        tm.typed(h, key=cs.Int64ul, value=cs.Int64ul)


def test_not_a_handle() -> None:
    with pytest.raises(TypeError, match="MapHandle"):
        tm.typed("flows")  # type: ignore[call-overload]


def test_missing_schemas_without_btf(make_map: MakeMap) -> None:
    """A map made without BTF has no schemas to offer: the error says what to pass."""
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    assert h.info().btf_id == 0
    with pytest.raises(tm.TypedMapsError, match="key= and value="):
        tm.typed(h)
    with pytest.raises(tm.TypedMapsError):
        tm.typed(h, key=cs.Int32ul)  # the value schema would have to come from BTF
    q = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4)
    with pytest.raises(tm.TypedMapsError):
        tm.typed(q)


def test_missing_schemas_without_the_btf_module(
    make_map: MakeMap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install without typedmaps.btf says that schemas are needed."""
    monkeypatch.setitem(sys.modules, "typedmaps.btf", None)  # makes the import fail
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with pytest.raises(tm.NotSupportedError, match=r"schemas are needed.*pass key= and value="):
        tm.typed(h)
    assert isinstance(tm.typed(h, key=cs.Int32ul, value=cs.Int64ul), tm.TypedMap)
