"""Single-element operations on keyed maps: lookup, update flags, delete,
lookup_and_delete, the per-CPU variants, and every check that runs before the
syscall.

"Before the syscall" is shown on frozen (or write-only) maps: had the call
reached the kernel it would have failed with MapPermissionError, so getting
the argument error instead proves the check came first; and the map content
is compared before and after.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import MakeMap
from .test_handle_kinds import BY_TYPE, HASHLIKE, KEYED, NCPUS, Kind, kinds

T = tm.MapType
F = tm.MapFlags


def snapshot(h: tm.MapHandle) -> dict[bytes, object]:
    """The whole map, by walking its keys (no batch ops)."""
    keys = list(h.keys())
    if h.map_type.is_percpu:
        return {k: h.lookup_percpu(k) for k in keys}
    return {k: h.lookup(k) for k in keys}


def put(kind: Kind, h: tm.MapHandle, i: int, v: int, flags: int = F.ANY) -> None:
    """Store value number ``v`` under key ``i`` with ``flags``."""
    if kind.percpu:
        h.update_percpu(kind.key(i), kind.values(v), flags)
    else:
        h.update(kind.key(i), kind.value(v), flags)


def zero(kind: Kind) -> object:
    z = bytes(kind.value_size)
    return [z] * NCPUS if kind.percpu else z


# ------------------------------------------------------------------ lookup


@kinds(KEYED)
def test_lookup_of_a_missing_key_is_none(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    # Arrays: an index past the end is "not found" too.
    missing = kind.key(kind.max_entries + 5)
    if kind.percpu:
        assert h.lookup_percpu(missing) is None
    else:
        assert h.lookup(missing) is None


@kinds([k for k in KEYED if k.map_type.has_fixed_keys])
def test_array_elements_always_exist(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    assert kind.get(h, 0) == zero(kind)
    assert sorted(h.keys()) == sorted(kind.key(i) for i in range(kind.max_entries))


# ------------------------------------------------------------------ update flags


@kinds(HASHLIKE)
def test_update_flags_on_hash_like_maps(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 1, 10, F.NO_EXIST)
    assert kind.get(h, 1) == kind.expected(10)
    with pytest.raises(tm.KeyExistsError, match=r"update(_percpu)?: key already exists"):
        put(kind, h, 1, 11, F.NO_EXIST)
    assert kind.get(h, 1) == kind.expected(10)
    with pytest.raises(tm.KeyNotFoundError, match=r"update(_percpu)?: key not found"):
        put(kind, h, 2, 20, F.EXIST)
    assert kind.get(h, 2) is None
    put(kind, h, 1, 12, F.EXIST)
    assert kind.get(h, 1) == kind.expected(12)
    put(kind, h, 1, 13, F.ANY)
    assert kind.get(h, 1) == kind.expected(13)
    put(kind, h, 2, 21)
    assert kind.get(h, 2) == kind.expected(21)


@kinds([k for k in KEYED if k.map_type.has_fixed_keys])
def test_update_flags_on_arrays(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with pytest.raises(tm.KeyExistsError):
        put(kind, h, 1, 10, F.NO_EXIST)  # every index exists
    put(kind, h, 1, 11, F.EXIST)
    assert kind.get(h, 1) == kind.expected(11)
    before = snapshot(h)
    with pytest.raises(tm.KeyNotFoundError, match="index out of range") as info:
        put(kind, h, kind.max_entries, 12)
    # Not a MapFullError: an array is never full, the index is past its end.
    assert not isinstance(info.value, tm.MapFullError)
    assert isinstance(info.value, KeyError)
    assert f"max_entries={kind.max_entries}" in str(info.value)
    assert snapshot(h) == before


@pytest.mark.parametrize("map_type", [T.HASH, T.PERCPU_HASH])
def test_full_hash_raises_map_full(make_map: MakeMap, map_type: tm.MapType) -> None:
    kind = Kind(map_type, max_entries=4)
    h = kind.create(make_map)
    for i in range(4):
        put(kind, h, i, i)
    with pytest.raises(tm.MapFullError, match="map is full") as info:
        put(kind, h, 4, 4)
    assert info.value.errno == 7  # E2BIG
    assert kind.get(h, 4) is None
    put(kind, h, 3, 33)  # replacing still works when full
    assert kind.get(h, 3) == kind.expected(33)
    assert len(snapshot(h)) == 4


@pytest.mark.parametrize("map_type", [T.LRU_HASH, T.LRU_PERCPU_HASH])
def test_lru_evicts_instead_of_filling(make_map: MakeMap, map_type: tm.MapType) -> None:
    kind = Kind(map_type, max_entries=16)
    h = kind.create(make_map)
    for i in range(100):
        put(kind, h, i, i)  # never MapFullError
    assert kind.get(h, 99) == kind.expected(99)
    assert 0 < len(snapshot(h)) <= 16
    assert kind.get(h, 0) is None  # the oldest were evicted


def test_full_lpm_trie_raises_map_full(make_map: MakeMap) -> None:
    kind = Kind(T.LPM_TRIE, key_size=8, max_entries=2)
    h = kind.create(make_map)
    put(kind, h, 0, 0)
    put(kind, h, 1, 1)
    with pytest.raises(tm.MapFullError, match="update: map is full"):
        put(kind, h, 2, 2)


def test_lpm_trie_finds_the_longest_prefix(make_map: MakeMap) -> None:
    h = make_map(T.LPM_TRIE, key_size=8, value_size=4, max_entries=8)

    def key(prefix: int, ip: str) -> bytes:
        return struct.pack("<I", prefix) + bytes(int(x) for x in ip.split("."))

    h.update(key(8, "10.0.0.0"), b"/8..")
    h.update(key(16, "10.1.0.0"), b"/16.")
    assert h.lookup(key(32, "10.1.2.3")) == b"/16."
    assert h.lookup(key(32, "10.2.2.3")) == b"/8.."
    assert h.lookup(key(32, "11.0.0.1")) is None
    h.delete(key(16, "10.1.0.0"))
    assert h.lookup(key(32, "10.1.2.3")) == b"/8.."
    with pytest.raises(tm.KeyNotFoundError):
        h.delete(key(16, "10.1.0.0"))


# ------------------------------------------------------------------ delete


@kinds(HASHLIKE)
def test_delete(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 1, 1)
    put(kind, h, 2, 2)
    h.delete(kind.key(1))
    assert kind.get(h, 1) is None
    assert kind.get(h, 2) == kind.expected(2)
    with pytest.raises(tm.KeyNotFoundError, match="delete: key not found") as info:
        h.delete(kind.key(1))
    assert isinstance(info.value, KeyError)
    assert info.value.errno == 2


@kinds([k for k in KEYED if k.map_type.has_fixed_keys])
def test_arrays_cannot_delete(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 1, 1)
    h.freeze()
    for call in (h.delete, h.lookup_and_delete):
        with pytest.raises(tm.NotSupportedError, match="cannot be deleted"):
            call(kind.key(1))
    assert kind.get(h, 1) == kind.expected(1)


# ------------------------------------------------------------------ lookup_and_delete


@kinds(HASHLIKE)
def test_lookup_and_delete(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 1, 1)
    put(kind, h, 2, 2)
    if kind.map_type is T.LPM_TRIE:
        with pytest.raises(tm.NotSupportedError, match="lookup_and_delete"):
            h.lookup_and_delete(kind.key(1))
        assert kind.get(h, 1) == kind.expected(1)
        return
    got = h.lookup_and_delete(kind.key(1))
    assert got == kind.expected(1)
    if kind.percpu:
        assert isinstance(got, list)
        assert len(got) == NCPUS
    assert kind.get(h, 1) is None
    assert h.lookup_and_delete(kind.key(1)) is None
    assert kind.get(h, 2) == kind.expected(2)


# ------------------------------------------------------------------ per-CPU


@kinds([k for k in KEYED if k.percpu])
def test_percpu_values_are_one_per_possible_cpu(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    assert h._slot == 16  # round_up(12, 8)
    h.update_percpu(kind.key(1), kind.values(1))
    got = h.lookup_percpu(kind.key(1))
    assert got is not None
    assert len(got) == NCPUS == tm.num_possible_cpus()
    assert all(len(v) == kind.value_size for v in got)  # padding cut off
    assert got == kind.values(1)
    # Any iterable works, e.g. a generator.
    h.update_percpu(kind.key(2), (kind.value(2, c) for c in range(NCPUS)))
    assert h.lookup_percpu(kind.key(2)) == kind.values(2)


@kinds([k for k in KEYED if k.percpu])
def test_percpu_value_count_and_sizes_are_checked(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 1, 1)
    h.freeze()
    before = snapshot(h)
    for wrong in (NCPUS - 1, NCPUS + 1, 0):
        with pytest.raises(tm.SizeMismatchError, match="per-CPU value list") as info:
            h.update_percpu(kind.key(1), [kind.value(0)] * wrong)
        assert (info.value.size, info.value.expected) == (wrong, NCPUS)
        assert "update_percpu" in info.value.what
    values = kind.values(1)
    values[-1] = values[-1] + b"x"
    with pytest.raises(tm.SizeMismatchError) as info:
        h.update_percpu(kind.key(1), values)
    assert info.value.what == f"update_percpu: values[{NCPUS - 1}]"
    assert (info.value.size, info.value.expected) == (kind.value_size + 1, kind.value_size)
    for not_a_list in (kind.value(1) * NCPUS, "abc", 5):
        with pytest.raises(tm.ArgumentError, match="values"):
            h.update_percpu(kind.key(1), not_a_list)  # type: ignore[arg-type]
    with pytest.raises(tm.ArgumentError, match=r"values\[0\]"):
        h.update_percpu(kind.key(1), ["x" * kind.value_size] * NCPUS)  # type: ignore[list-item]
    assert snapshot(h) == before


@kinds([k for k in KEYED if k.percpu])
def test_percpu_maps_refuse_lookup_and_update(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with pytest.raises(tm.NotSupportedError, match=r"lookup_percpu\(\) must be used"):
        h.lookup(kind.key(1))
    with pytest.raises(tm.NotSupportedError, match=r"update_percpu\(\) must be used"):
        h.update(kind.key(1), kind.value(1))
    assert kind.get(h, 1) in (None, zero(kind))


@kinds([k for k in KEYED if not k.percpu])
def test_plain_maps_refuse_the_percpu_methods(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with pytest.raises(
        tm.NotSupportedError, match=r"lookup_percpu\(\) is for per-CPU maps.*lookup\(\)"
    ):
        h.lookup_percpu(kind.key(1))
    with pytest.raises(tm.NotSupportedError, match=r"update\(\)"):
        h.update_percpu(kind.key(1), kind.values(1))
    assert kind.get(h, 1) in (None, bytes(kind.value_size))


# ------------------------------------------------------------------ sizes and types


def _size_calls(kind: Kind, key: bytes) -> dict[str, Callable[[tm.MapHandle], object]]:
    if kind.percpu:
        return {
            "lookup_percpu": lambda h: h.lookup_percpu(key),
            "update_percpu": lambda h: h.update_percpu(key, kind.values(0)),
            "delete": lambda h: h.delete(key),
            "lookup_and_delete": lambda h: h.lookup_and_delete(key),
        }
    return {
        "lookup": lambda h: h.lookup(key),
        "update": lambda h: h.update(key, kind.value(0)),
        "delete": lambda h: h.delete(key),
        "lookup_and_delete": lambda h: h.lookup_and_delete(key),
    }


@kinds(HASHLIKE)
def test_key_size_is_checked_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 0, 0)
    h.freeze()  # a call that reached the kernel would now be EPERM (or succeed)
    before = snapshot(h)
    for wrong in (kind.key(0)[:-1], kind.key(0) + b"\0", b""):
        for op, call in _size_calls(kind, wrong).items():
            with pytest.raises(tm.SizeMismatchError) as info:
                call(h)
            assert info.value.what == f"{op}: key"
            assert (info.value.size, info.value.expected) == (len(wrong), kind.key_size)
            assert f"is {len(wrong)} bytes, expected {kind.key_size}" in str(info.value)
    assert snapshot(h) == before


@kinds([k for k in KEYED if not k.percpu])
def test_value_size_is_checked_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 0, 0)
    h.freeze()
    before = snapshot(h)
    for wrong in (kind.value(1)[:-1], kind.value(1) + b"\0", b""):
        with pytest.raises(tm.SizeMismatchError) as info:
            h.update(kind.key(1), wrong)
        assert info.value.what == "update: value"
        assert (info.value.size, info.value.expected) == (len(wrong), kind.value_size)
    assert snapshot(h) == before


@kinds([k for k in KEYED if not k.percpu])
def test_bytes_like_keys_and_values(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.update(bytearray(kind.key(1)), memoryview(kind.value(1)))
    assert h.lookup(memoryview(kind.key(1))) == kind.value(1)
    assert h.lookup(bytearray(kind.key(1))) == kind.value(1)
    before = snapshot(h)
    for bad in ("abcd", 1, None, [1, 2, 3, 4]):
        with pytest.raises(tm.ArgumentError, match="key must be a bytes-like object"):
            h.lookup(bad)  # type: ignore[arg-type]
        with pytest.raises(tm.ArgumentError, match="value must be a bytes-like object"):
            h.update(kind.key(1), bad)  # type: ignore[arg-type]
    assert snapshot(h) == before


# ------------------------------------------------------------------ flags


@kinds([BY_TYPE[T.HASH], BY_TYPE[T.PERCPU_HASH], BY_TYPE[T.ARRAY]])
def test_bad_flags_are_refused_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 0, 0)
    h.freeze()
    before = snapshot(h)
    k = kind.key(0)
    lookup = h.lookup_percpu if kind.percpu else h.lookup
    for bad in (F.NO_EXIST, F.EXIST, 8, -1, F.NO_EXIST | F.EXIST):
        with pytest.raises(tm.ArgumentError, match="flags"):
            lookup(k, bad)
    bad_flags: tuple[object, ...] = (8, 1 << 40, -1, F.NO_EXIST | F.EXIST, "1", 1.0, None, "")
    for bad_flag in bad_flags:
        with pytest.raises(tm.ArgumentError, match="flags"):
            put(kind, h, 0, 1, bad_flag)  # type: ignore[arg-type]
    assert snapshot(h) == before


@kinds([BY_TYPE[T.HASH], BY_TYPE[T.PERCPU_HASH], BY_TYPE[T.ARRAY]])
def test_lock_without_btf_is_refused_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    put(kind, h, 0, 0)
    h.freeze()
    before = snapshot(h)
    lookup = h.lookup_percpu if kind.percpu else h.lookup
    with pytest.raises(tm.NotSupportedError, match="LOCK needs a map value with a bpf_spin_lock"):
        lookup(kind.key(0), F.LOCK)
    with pytest.raises(tm.NotSupportedError, match="no BTF value type"):
        put(kind, h, 0, 1, F.LOCK)
    with pytest.raises(tm.NotSupportedError, match="LOCK"):
        put(kind, h, 0, 1, F.LOCK | F.EXIST)
    assert snapshot(h) == before


def test_write_only_fd_lookup_size_check_comes_first(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(T.HASH, key_size=4, value_size=4, max_entries=2)
    h.update(b"\0\0\0\0", b"vvvv")
    h.pin(pin_dir / "wo")
    with tm.MapHandle.from_pinned_path(pin_dir / "wo", writeonly=True) as wo:
        with pytest.raises(tm.SizeMismatchError):
            wo.lookup(b"\0\0\0")
        with pytest.raises(tm.MapPermissionError, match="lookup: "):
            wo.lookup(b"\0\0\0\0")
