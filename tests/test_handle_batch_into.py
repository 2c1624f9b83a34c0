"""MapHandle._lookup_batch_into: batch reads into buffers the caller owns (the columnar path)."""

from __future__ import annotations

from typing import Any

import pytest

import typedmaps as tm

from .conftest import MakeMap

pytestmark = pytest.mark.bpf


def _read_all(h: tm.MapHandle, batch: int) -> tuple[dict[bytes, bytes], int]:
    """Every element through caller buffers that start too small; (elements, grows)."""
    ks, vs = h.key_size, h._vbuf_size
    bufs: list[Any] = [bytearray(ks * batch), bytearray(vs * batch)]
    grows = 0

    def grow(n: int) -> tuple[Any, Any]:
        nonlocal grows
        grows += 1
        bufs[:] = [bytearray(ks * n), bytearray(vs * n)]
        return bufs[0], bufs[1]

    got: dict[bytes, bytes] = {}
    opts = h._batch_opts(0, 0, "lookup_batch")
    for n in h._lookup_batch_into("lookup_batch", batch, opts, (bufs[0], bufs[1]), grow=grow):
        kb, vb = bytes(bufs[0]), bytes(bufs[1])
        for i in range(n):
            got[kb[i * ks : (i + 1) * ks]] = vb[i * vs : (i + 1) * vs]
    return got, grows


def test_reads_every_element_and_grows_for_full_buckets(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=6, max_entries=512)
    want = {i.to_bytes(4, "little"): bytes([i % 256]) * 6 for i in range(500)}
    h.update_batch(b"".join(want), b"".join(want.values()), len(want))
    # One element per batch: any bucket holding two makes the kernel answer ENOSPC.
    got, grows = _read_all(h, 1)
    assert got == want
    assert grows >= 1
    got, _ = _read_all(h, 4096 // 8)
    assert got == want


def test_per_cpu_values_keep_their_slots(make_map: MakeMap) -> None:
    ncpus = tm.num_possible_cpus()
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=3, max_entries=8)
    for k in range(5):
        h.update_percpu(k.to_bytes(4, "little"), [bytes([k, c, 7]) for c in range(ncpus)])
    got, _ = _read_all(h, 8)
    assert len(got) == 5
    for k in range(5):
        v = got[k.to_bytes(4, "little")]
        assert len(v) == 8 * ncpus  # round_up(3, 8) per possible CPU
        assert [v[c * 8 : c * 8 + 3] for c in range(ncpus)] == [
            bytes([k, c, 7]) for c in range(ncpus)
        ]


def test_buffers_are_checked_before_the_syscall(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=8)
    h.update(b"\1\0\0\0", bytes(8))
    opts = h._batch_opts(0, 0, "lookup_batch")

    def no_grow(n: int) -> tuple[Any, Any]:
        raise AssertionError("not expected")

    def read(keys: Any, values: Any) -> list[int]:
        return list(h._lookup_batch_into("lookup_batch", 4, opts, (keys, values), grow=no_grow))

    with pytest.raises(tm.SizeMismatchError, match="keys buffer is 15 bytes, expected 16"):
        read(bytearray(15), bytearray(32))
    with pytest.raises(tm.SizeMismatchError, match="values buffer"):
        read(bytearray(16), bytearray(31))
    with pytest.raises(tm.ArgumentError, match="writable"):
        read(bytes(16), bytearray(32))
    with pytest.raises(tm.ArgumentError, match="writable"):
        read(memoryview(bytearray(64))[::2], bytearray(32))  # not contiguous
    assert read(bytearray(16), bytearray(32)) == [1]
    h.close()
    with pytest.raises(tm.MapClosedError):
        read(bytearray(16), bytearray(32))
