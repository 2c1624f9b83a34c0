"""Batch operations and keys(): update_batch, delete_batch, lookup_batch,
lookup_and_delete_batch (growth on ENOSPC, partial failures, per-CPU lists)
and the bounded GET_NEXT_KEY walk."""

from __future__ import annotations

import struct

import pytest

import typedmaps as tm

from .conftest import MakeMap
from .test_handle_kinds import BY_TYPE, HASHLIKE, KEYED, NCPUS, Kind, kinds

T = tm.MapType
F = tm.MapFlags


def flat(kind: Kind, idx: list[int]) -> tuple[bytes, bytes]:
    """Keys and values of elements ``idx`` as the flat buffers the batch calls take."""
    keys = b"".join(kind.key(i) for i in idx)
    if kind.percpu:
        pad = bytes(-kind.value_size % 8)
        values = b"".join(v + pad for i in idx for v in kind.values(i))
    else:
        values = b"".join(kind.value(i) for i in idx)
    return keys, values


def expected_items(kind: Kind, idx: list[int]) -> dict[bytes, object]:
    return {kind.key(i): kind.values(i) if kind.percpu else kind.value(i) for i in idx}


# ------------------------------------------------------------------ update/lookup batch


@kinds(KEYED)
def test_update_batch_then_lookup_batch(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    idx = list(range(kind.max_entries))
    keys, values = flat(kind, idx)
    assert h.update_batch(keys, values, len(idx)) == len(idx)
    got = list(h.lookup_batch())
    assert dict(got) == expected_items(kind, idx)
    assert len(got) == len(idx)  # no duplicates
    for _, v in got:
        assert isinstance(v, list) == kind.percpu
    assert sorted(h.keys()) == sorted(kind.key(i) for i in idx)


@kinds(KEYED)
@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_lookup_batch_with_small_batches(make_map: MakeMap, kind: Kind, batch_size: int) -> None:
    h = kind.create(make_map, max_entries=32)
    idx = list(range(0, 32, 3))
    keys, values = flat(kind, idx)
    h.update_batch(keys, values, len(idx))
    want = expected_items(kind, idx)
    got = dict(h.lookup_batch(batch_size=batch_size))
    if kind.map_type.has_fixed_keys:
        zero = [bytes(kind.value_size)] * NCPUS if kind.percpu else bytes(kind.value_size)
        want = {kind.key(i): want.get(kind.key(i), zero) for i in range(32)}
    assert got == want


def test_lookup_batch_grows_when_a_bucket_does_not_fit(make_map: MakeMap) -> None:
    # 64 keys in 64 hash buckets: some bucket holds two or more (the chance
    # that none does is 64!/64**64, about 1e-27), so batch_size=1 hits ENOSPC
    # and has to grow to carry on.
    kind = Kind(T.HASH, max_entries=64)
    h = kind.create(make_map)
    idx = list(range(64))
    h.update_batch(*flat(kind, idx), 64)
    assert dict(h.lookup_batch(batch_size=1)) == expected_items(kind, idx)
    # The raw chunks show the growth: a chunk bigger than the batch asked for.
    opts = h._batch_opts(0, 0, "lookup_batch")
    chunks = [count for count, _, _ in h._lookup_batch_raw("lookup_batch", 1, opts)]
    assert sum(chunks) == 64
    assert max(chunks) > 1
    drained = dict(h.lookup_and_delete_batch(batch_size=1))
    assert drained == expected_items(kind, idx)
    assert list(h.keys()) == []


@kinds(HASHLIKE)
def test_lookup_and_delete_batch_drains(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    idx = [0, 2, 5, 7]
    h.update_batch(*flat(kind, idx), len(idx))
    if kind.map_type is T.LPM_TRIE:
        with pytest.raises(tm.NotSupportedError, match="lookup_and_delete_batch") as info:
            list(h.lookup_and_delete_batch())
        assert not isinstance(info.value, tm.BatchError)  # refused at once: nothing done
        assert len(list(h.keys())) == len(idx)
        return
    got = dict(h.lookup_and_delete_batch(batch_size=2))
    assert got == expected_items(kind, idx)
    assert list(h.keys()) == []
    assert list(h.lookup_and_delete_batch()) == []


@kinds([k for k in KEYED if k.map_type.has_fixed_keys])
def test_arrays_refuse_deleting_batches_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.update_batch(*flat(kind, [1]), 1)
    h.freeze()
    with pytest.raises(tm.NotSupportedError, match="cannot be deleted"):
        h.lookup_and_delete_batch()
    with pytest.raises(tm.NotSupportedError, match="cannot be deleted"):
        h.delete_batch(kind.key(1), 1)
    assert dict(h.lookup_batch())[kind.key(1)] == kind.expected(1)


def test_lpm_trie_batches_on_this_kernel(make_map: MakeMap) -> None:
    # Linux 6.x gives LPM_TRIE the generic lookup/update/delete batch ops, but
    # no lookup_and_delete_batch (checked in test_lookup_and_delete_batch_drains).
    kind = BY_TYPE[T.LPM_TRIE]
    h = kind.create(make_map)
    assert h.update_batch(*flat(kind, [1, 2, 3]), 3) == 3
    assert dict(h.lookup_batch(batch_size=1)) == expected_items(kind, [1, 2, 3])
    assert h.delete_batch(kind.key(1) + kind.key(3), 2) == 2
    assert list(h.keys()) == [kind.key(2)]


# ------------------------------------------------------------------ delete_batch


@kinds([k for k in HASHLIKE])
def test_delete_batch(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.update_batch(*flat(kind, [1, 2, 3, 4]), 4)
    assert h.delete_batch(kind.key(1) + kind.key(3), 2) == 2
    assert sorted(h.keys()) == sorted([kind.key(2), kind.key(4)])
    assert h.delete_batch(b"", 0) == 0


@kinds([k for k in HASHLIKE])
def test_delete_batch_stops_at_a_missing_key(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.update_batch(*flat(kind, [1, 2, 3, 4]), 4)
    keys = kind.key(1) + kind.key(2) + kind.key(6) + kind.key(3)
    with pytest.raises(tm.BatchError) as info:
        h.delete_batch(keys, 4)
    err = info.value
    assert err.processed == 2
    assert isinstance(err, tm.KeyNotFoundError)
    assert isinstance(err, KeyError)
    assert err.cause is tm.KeyNotFoundError
    assert err.operation == "delete_batch"
    assert "after 2 element(s)" in str(err)
    assert sorted(h.keys()) == sorted([kind.key(3), kind.key(4)])


# ------------------------------------------------------------------ partial updates


@pytest.mark.parametrize("map_type", [T.HASH, T.PERCPU_HASH])
def test_update_batch_on_a_full_map_reports_how_far_it_got(
    make_map: MakeMap, map_type: tm.MapType
) -> None:
    kind = Kind(map_type, max_entries=4)
    h = kind.create(make_map)
    idx = [10, 11, 12, 13, 14, 15]
    with pytest.raises(tm.MapFullError) as info:
        h.update_batch(*flat(kind, idx), len(idx))
    err = info.value
    assert isinstance(err, tm.BatchError)
    assert err.processed == 4
    assert err.errno == 7
    assert dict(h.lookup_batch()) == expected_items(kind, idx[:4])


@kinds([k for k in KEYED if k.map_type.has_fixed_keys])
def test_update_batch_past_the_end_of_an_array(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    keys, values = flat(kind, [1, kind.max_entries + 1, 2])
    with pytest.raises(tm.KeyNotFoundError, match="index out of range") as info:
        h.update_batch(keys, values, 3)
    assert isinstance(info.value, tm.BatchError)
    assert info.value.processed == 1
    got = dict(h.lookup_batch())
    assert got[kind.key(1)] == kind.expected(1)
    assert got[kind.key(2)] != kind.expected(2)


def test_update_batch_refuses_no_exist_and_exist(make_map: MakeMap) -> None:
    kind = BY_TYPE[T.HASH]
    h = kind.create(make_map)
    h.update(kind.key(1), kind.value(1))
    for flags in (F.NO_EXIST, F.EXIST):
        with pytest.raises(tm.ArgumentError, match="ANY or LOCK"):
            h.update_batch(*flat(kind, [1, 2]), 2, elem_flags=flags)
    for call in (h.lookup_batch, h.lookup_and_delete_batch):
        with pytest.raises(tm.ArgumentError, match="elem_flags"):
            call(elem_flags=F.NO_EXIST)
    with pytest.raises(tm.ArgumentError, match="elem_flags"):
        h.delete_batch(kind.key(1), 1, elem_flags=F.EXIST)
    assert dict(h.lookup_batch()) == {kind.key(1): kind.value(1)}


def test_batch_lock_without_btf_is_refused_before_the_syscall(make_map: MakeMap) -> None:
    kind = BY_TYPE[T.HASH]
    h = kind.create(make_map)
    with pytest.raises(tm.NotSupportedError, match="LOCK"):
        h.update_batch(*flat(kind, [1]), 1, elem_flags=F.LOCK)
    with pytest.raises(tm.NotSupportedError, match="LOCK"):
        h.lookup_batch(elem_flags=F.LOCK)
    assert list(h.keys()) == []


# ------------------------------------------------------------------ argument checks


@kinds([BY_TYPE[T.HASH], BY_TYPE[T.PERCPU_HASH], BY_TYPE[T.ARRAY]])
def test_batch_buffers_are_checked_before_the_syscall(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    h.update_batch(*flat(kind, [0]), 1)
    h.freeze()  # a call that reached the kernel would be EPERM
    keys, values = flat(kind, [1, 2])
    unit = NCPUS * 16 if kind.percpu else kind.value_size
    with pytest.raises(tm.SizeMismatchError) as info:
        h.update_batch(keys[:-1], values, 2)
    assert (info.value.what, info.value.size, info.value.expected) == (
        "update_batch: keys buffer",
        len(keys) - 1,
        2 * kind.key_size,
    )
    with pytest.raises(tm.SizeMismatchError) as info:
        h.update_batch(keys, values + b"\0", 2)
    assert (info.value.size, info.value.expected) == (2 * unit + 1, 2 * unit)
    assert "2 element(s) of" in str(info.value)
    with pytest.raises(tm.SizeMismatchError):
        h.update_batch(keys, values, 3)
    for bad_count in (-1, 2**32, 1.5, "2"):
        with pytest.raises(tm.ArgumentError, match="count"):
            h.update_batch(keys, values, bad_count)  # type: ignore[arg-type]
    with pytest.raises(tm.ArgumentError, match="keys"):
        h.update_batch("ab", values, 2)  # type: ignore[arg-type]
    for bad_size in (0, -1, 2**32, 1.0, True):
        with pytest.raises(tm.ArgumentError, match="batch_size"):
            h.lookup_batch(batch_size=bad_size)  # type: ignore[arg-type]
    with pytest.raises(tm.ArgumentError, match="flags"):
        h.update_batch(keys, values, 2, flags=-1)
    assert h.update_batch(b"", b"", 0) == 0
    assert len(dict(h.lookup_batch())) == (kind.max_entries if kind.map_type is T.ARRAY else 1)


def test_per_cpu_batch_values_use_padded_slots(make_map: MakeMap) -> None:
    kind = BY_TYPE[T.PERCPU_HASH]
    h = kind.create(make_map)
    unpadded = b"".join(kind.values(1))
    with pytest.raises(tm.SizeMismatchError) as info:
        h.update_batch(kind.key(1), unpadded, 1)
    assert info.value.expected == NCPUS * 16
    assert info.value.size == NCPUS * 12
    assert list(h.keys()) == []


# ------------------------------------------------------------------ never silently


def test_lookup_batch_on_a_write_only_fd_raises(make_map: MakeMap, pin_dir: object) -> None:
    h = make_map(T.HASH, key_size=4, value_size=4, max_entries=4)
    h.update(b"\1\0\0\0", b"abcd")
    path = f"{pin_dir}/wo"
    h.pin(path)
    with tm.MapHandle.from_pinned_path(path, writeonly=True) as wo:
        it = wo.lookup_batch()
        with pytest.raises(tm.MapPermissionError, match="lookup_batch"):
            next(it)
        with pytest.raises(tm.MapPermissionError, match="keys"):
            list(wo.keys())


def test_closing_mid_iteration_raises(make_map: MakeMap) -> None:
    kind = Kind(T.HASH, max_entries=32)
    h = kind.create(make_map)
    h.update_batch(*flat(kind, list(range(20))), 20)
    it = h.lookup_batch(batch_size=2)
    next(it)
    next(it)
    next(it)  # into the second batch
    keys = h.keys()
    next(keys)
    h.close()
    with pytest.raises(tm.MapClosedError):
        list(it)
    with pytest.raises(tm.MapClosedError):
        list(keys)


# ------------------------------------------------------------------ keys()


@kinds(KEYED)
def test_keys(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    if kind.map_type.has_fixed_keys:
        assert list(h.keys()) == [kind.key(i) for i in range(kind.max_entries)]
        return
    assert list(h.keys()) == []
    for i in (3, 1, 2):
        kind.put(h, i)
    assert sorted(h.keys()) == sorted(kind.key(i) for i in (1, 2, 3))


def test_keys_is_bounded_on_a_map_that_changes_under_it(make_map: MakeMap) -> None:
    kind = Kind(T.HASH, max_entries=16)
    h = kind.create(make_map)
    for i in range(8):
        kind.put(h, i)
    fresh = iter(range(1000, 100000))
    seen = 0

    def churn() -> None:
        # Deleting the current key makes the kernel restart the walk at the
        # first key; with a new key added each step the walk would never end.
        nonlocal seen
        walk = h.keys()
        for key in walk:
            seen += 1
            h.delete(key)
            h.update(kind.key(next(fresh)), kind.value(0))

    with pytest.raises(tm.IterationAbortedError, match="max_entries=16") as info:
        churn()
    assert seen == 17  # max_entries + 1 steps, then it gives up
    assert info.value.operation == "keys"
    assert len(list(h.keys())) == 8


def test_keys_survives_deleting_other_keys(make_map: MakeMap) -> None:
    kind = Kind(T.HASH, max_entries=16)
    h = kind.create(make_map)
    for i in range(8):
        kind.put(h, i)
    walked: list[bytes] = []
    walk = h.keys()
    for key in walk:
        walked.append(key)
        if len(walked) >= 2:
            h.delete(walked[-2])  # already visited, and not the walk's position
    assert sorted(walked) == sorted(kind.key(i) for i in range(8))
    assert list(h.keys()) == [walked[-1]]


def test_batches_on_a_map_with_one_element(make_map: MakeMap) -> None:
    h = make_map(T.HASH, key_size=4, value_size=4, max_entries=1)
    h.update(struct.pack("=I", 9), b"nine")
    assert list(h.lookup_batch()) == [(struct.pack("=I", 9), b"nine")]
    assert list(h.lookup_and_delete_batch()) == [(struct.pack("=I", 9), b"nine")]
    assert list(h.lookup_batch()) == []
