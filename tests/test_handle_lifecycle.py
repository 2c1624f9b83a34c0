"""Opening, sharing, pinning, freezing and closing MapHandles, on every map kind."""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import MakeMap, bpftool
from .test_handle_kinds import KINDS, Kind, kinds


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------ from_map_id


@kinds(KINDS)
def test_from_map_id_opens_the_same_map(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    with tm.MapHandle.from_map_id(h.id) as other:
        assert other.id == h.id
        assert other.fileno() != h.fileno()
        assert other.info() == h.info()
        kind.put(other, 2)
        assert kind.get(h, 2) == kind.expected(2)


def test_from_map_id_of_a_gone_map(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    map_id = h.id
    h.close()
    with pytest.raises(tm.KeyNotFoundError, match=f"open map id {map_id}: no map has this id"):
        tm.MapHandle.from_map_id(map_id)


@pytest.mark.parametrize("bad", [0, -1, 2**32, "1", 1.0, True])
def test_from_map_id_checks_the_id(bpf: None, bad: object) -> None:
    with pytest.raises(tm.ArgumentError, match="map_id"):
        tm.MapHandle.from_map_id(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ from_fd


@kinds(KINDS)
def test_from_fd_duplicates(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    # Closing the new handle leaves the caller's fd open ...
    dup = tm.MapHandle.from_fd(h.fileno())
    assert dup.fileno() != h.fileno()
    assert dup.id == h.id
    dup.close()
    os.fstat(h.fileno())
    kind.put(h, 1)
    assert kind.get(h, 1) == kind.expected(1)
    # ... and closing the caller's fd leaves the handle open.
    raw = os.dup(h.fileno())
    with tm.MapHandle.from_fd(raw) as mine:
        os.close(raw)
        assert kind.get(mine, 1) == kind.expected(1)
        assert mine.map_type is kind.map_type


def test_constructor_takes_ownership(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    raw = os.dup(h.fileno())
    owned = tm.MapHandle(raw)
    assert owned.fileno() == raw
    owned.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(raw)


def test_unowned_handle_neither_closes_nor_warns(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    raw = os.dup(h.fileno())
    try:
        borrowed = tm.MapHandle(raw, _owns_fd=False)
        del borrowed
        gc.collect()  # no ResourceWarning: pytest would turn it into an error
        os.fstat(raw)
    finally:
        os.close(raw)


@pytest.mark.parametrize("bad", [-1, "3", 2.0])
def test_from_fd_checks_the_argument(bpf: None, bad: object) -> None:
    with pytest.raises(tm.ArgumentError, match="fd"):
        tm.MapHandle.from_fd(bad)  # type: ignore[arg-type]


def test_from_fd_of_a_closed_fd(bpf: None) -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(tm.MapError, match="from_fd") as info:
        tm.MapHandle.from_fd(r)
    assert info.value.errno == 9  # EBADF


# ------------------------------------------------------------------ pinning


@kinds(KINDS)
def test_pin_reopen_unpin(make_map: MakeMap, pin_dir: Path, kind: Kind) -> None:
    h = kind.create(make_map)
    kind.put(h, 4)
    path = pin_dir / "m"
    h.pin(path)
    assert bpftool("map", "show", "pinned", str(path))["id"] == h.id
    with tm.MapHandle.from_pinned_path(path) as again:
        assert again.id == h.id
        assert kind.get(again, 4) == kind.expected(4)
    h.unpin(path)
    assert not path.exists()
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        tm.MapHandle.from_pinned_path(path)
    with pytest.raises(FileNotFoundError, match=f"unpin {path}"):
        h.unpin(path)


@kinds(KINDS)
def test_readonly_reopen_refuses_writes(make_map: MakeMap, pin_dir: Path, kind: Kind) -> None:
    h = kind.create(make_map)
    kind.put(h, 1)
    h.pin(pin_dir / "ro")
    with tm.MapHandle.from_pinned_path(pin_dir / "ro", readonly=True) as ro:
        assert kind.get(ro, 1) == kind.expected(1)
        with pytest.raises(tm.MapPermissionError) as info:
            kind.put(ro, 2)
        assert isinstance(info.value, PermissionError)
    # Nothing was written (a bloom filter cannot say so without false positives).
    if kind.map_type in (tm.MapType.QUEUE, tm.MapType.STACK):
        assert h.pop() == kind.value(1)
        assert h.pop() is None
    elif kind.map_type is tm.MapType.ARRAY:
        assert h.lookup(kind.key(2)) == bytes(kind.value_size)
    elif kind.map_type is tm.MapType.PERCPU_ARRAY:
        assert h.lookup_percpu(kind.key(2)) == [bytes(kind.value_size)] * len(kind.values(2))
    elif not kind.keyless:
        assert kind.get(h, 2) is None


@kinds(KINDS)
def test_writeonly_reopen_refuses_reads(make_map: MakeMap, pin_dir: Path, kind: Kind) -> None:
    h = kind.create(make_map)
    h.pin(pin_dir / "wo")
    with tm.MapHandle.from_pinned_path(pin_dir / "wo", writeonly=True) as wo:
        kind.put(wo, 5)
        with pytest.raises(tm.MapPermissionError):
            kind.get(wo, 5)
    assert kind.get(h, 5) == kind.expected(5)


def test_readonly_and_writeonly_exclude_each_other(bpf: None, pin_dir: Path) -> None:
    with pytest.raises(tm.ArgumentError, match="pick at most one"):
        tm.MapHandle.from_pinned_path(pin_dir / "x", readonly=True, writeonly=True)


def test_readonly_hash_refuses_delete_and_batches(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=4)
    h.update(b"\1\0\0\0", b"vvvv")
    h.pin(pin_dir / "ro")
    with tm.MapHandle.from_pinned_path(pin_dir / "ro", readonly=True) as ro:
        with pytest.raises(tm.MapPermissionError, match="delete"):
            ro.delete(b"\1\0\0\0")
        with pytest.raises(tm.MapPermissionError, match="lookup_and_delete"):
            ro.lookup_and_delete(b"\1\0\0\0")
        with pytest.raises(tm.MapPermissionError) as info:
            ro.update_batch(b"\2\0\0\0", b"wwww", 1)
        assert isinstance(info.value, tm.BatchError)
        assert info.value.processed == 0
        with pytest.raises(tm.MapPermissionError):
            list(ro.lookup_and_delete_batch())
        assert list(ro.lookup_batch()) == [(b"\1\0\0\0", b"vvvv")]
        assert list(ro.keys()) == [b"\1\0\0\0"]
    assert h.lookup(b"\1\0\0\0") == b"vvvv"
    assert h.lookup(b"\2\0\0\0") is None


def test_pin_refuses_a_dotted_name_before_the_syscall(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    with pytest.raises(tm.ArgumentError, match="dot"):
        h.pin(pin_dir / "has.dot")
    assert list(pin_dir.iterdir()) == []


def test_pin_errors(make_map: MakeMap, pin_dir: Path, tmp_path: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    h.pin(pin_dir / "once")
    with pytest.raises(tm.KeyExistsError, match=f"pin {pin_dir}/once"):
        h.pin(pin_dir / "once")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        h.pin(pin_dir / "no_such_dir" / "m")
    with pytest.raises(tm.MapPermissionError, match="bpffs"):
        h.pin(tmp_path / "not_on_bpffs")


def test_from_pinned_path_of_things_that_are_not_maps(
    bpf: None, pin_dir: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"not a map")
    before = open_fds()
    link = tmp_path / "link"
    link.symlink_to(pin_dir)
    cases = [(plain, "is not on a bpffs mount"), (pin_dir, "is a directory"), (link, "directory")]
    for path, why in cases:
        for kw in ({}, {"readonly": True}, {"writeonly": True}):
            with pytest.raises(FileNotFoundError, match="not a BPF map") as info:
                tm.MapHandle.from_pinned_path(path, **kw)
            # The kernel would say EACCES: no permission problem, but no pin there,
            # found before the syscall.
            assert not isinstance(info.value, tm.MapPermissionError)
            assert isinstance(info.value, tm.MapError)
            assert info.value.errno == errno.ENOENT
            assert f"open pinned {path}" in str(info.value)
            assert why in str(info.value)
    assert open_fds() == before


# ------------------------------------------------------------------ freeze


@kinds(KINDS)
def test_freeze_makes_the_map_read_only(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    kind.put(h, 1)
    h.freeze()
    assert bpftool("map", "show", "id", str(h.id))["frozen"] == 1
    with pytest.raises(tm.MapPermissionError):
        kind.put(h, 2)
    assert kind.get(h, 1) == kind.expected(1)
    # A frozen map's fd has lost write access, so freezing again is EPERM.
    with pytest.raises(tm.MapPermissionError, match="freeze: "):
        h.freeze()


def test_frozen_hash_refuses_every_write(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=4)
    h.update(b"\1\0\0\0", b"vvvv")
    h.freeze()
    with pytest.raises(tm.MapPermissionError, match="update: "):
        h.update(b"\1\0\0\0", b"wwww")
    with pytest.raises(tm.MapPermissionError, match="delete: "):
        h.delete(b"\1\0\0\0")
    with pytest.raises(tm.MapPermissionError) as batch:
        h.update_batch(b"\2\0\0\0", b"wwww", 1)
    assert isinstance(batch.value, tm.BatchError)
    assert batch.value.processed == 0
    with pytest.raises(tm.MapPermissionError):
        h.delete_batch(b"\1\0\0\0", 1)
    assert h.lookup(b"\1\0\0\0") == b"vvvv"
    assert list(h.keys()) == [b"\1\0\0\0"]


# ------------------------------------------------------------------ close


def _calls(kind: Kind, pin: Path) -> dict[str, Callable[[tm.MapHandle], object]]:
    k, v = kind.key(0), kind.value(0)
    return {
        "info": lambda h: h.info(),
        "fileno": lambda h: h.fileno(),
        "as_fd": lambda h: h.as_fd(),
        "lookup": lambda h: h.lookup(k),
        "lookup_percpu": lambda h: h.lookup_percpu(k),
        "update": lambda h: h.update(k, v),
        "update_percpu": lambda h: h.update_percpu(k, kind.values(0)),
        "delete": lambda h: h.delete(k),
        "lookup_and_delete": lambda h: h.lookup_and_delete(k),
        "push": lambda h: h.push(v),
        "pop": lambda h: h.pop(),
        "peek": lambda h: h.peek(),
        "lookup_bloom_filter": lambda h: h.lookup_bloom_filter(v),
        "update_batch": lambda h: h.update_batch(b"", b"", 0),
        "delete_batch": lambda h: h.delete_batch(b"", 0),
        "lookup_batch": lambda h: h.lookup_batch(),
        "lookup_and_delete_batch": lambda h: h.lookup_and_delete_batch(),
        "keys": lambda h: h.keys(),
        "freeze": lambda h: h.freeze(),
        "pin": lambda h: h.pin(pin),
        "unpin": lambda h: h.unpin(pin),
        "enter": lambda h: h.__enter__(),
    }


@kinds(KINDS)
def test_every_method_raises_after_close(make_map: MakeMap, pin_dir: Path, kind: Kind) -> None:
    h = kind.create(make_map)
    kind.put(h, 0)
    h.close()
    assert h.closed
    for name, call in _calls(kind, pin_dir / "p").items():
        with pytest.raises(tm.MapClosedError, match="is closed"):
            call(h)
        assert name
    # The cached shape stays readable.
    assert (h.map_type, h.value_size) == (kind.map_type, kind.value_size)
    assert list(pin_dir.iterdir()) == []
    h.close()  # idempotent


def test_close_is_idempotent_and_releases_the_fd(bpf: None) -> None:
    before = open_fds()
    h = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=4, max_entries=1)
    assert open_fds() == before + 1
    h.close()
    h.close()
    assert open_fds() == before


def test_context_manager(bpf: None) -> None:
    before = open_fds()
    with tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2) as h:
        h.update(b"\0\0\0\0", b"abcd")
        assert h.lookup(b"\0\0\0\0") == b"abcd"
    assert h.closed
    assert open_fds() == before
    with pytest.raises(tm.MapClosedError):
        h.__enter__()


def test_context_manager_closes_on_error(bpf: None) -> None:
    before = open_fds()
    with (
        pytest.raises(tm.SizeMismatchError),
        tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2) as h,
    ):
        h.update(b"\0", b"abcd")
    assert h.closed
    assert open_fds() == before


def test_close_when_the_fd_was_closed_behind_its_back(bpf: None) -> None:
    h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2)
    os.close(h.fileno())
    with pytest.raises(tm.MapError, match="close: ") as info:
        h.close()
    assert info.value.errno == 9
    assert h.closed


def test_unclosed_handle_warns_and_closes(bpf: None) -> None:
    before = open_fds()

    def leak() -> None:
        tm.MapHandle.create(
            tm.MapType.HASH, key_size=4, value_size=4, max_entries=2, name="tm_leak"
        )
        gc.collect()

    with pytest.warns(ResourceWarning, match=r"unclosed MapHandle\(name='tm_leak'"):
        leak()
    assert open_fds() == before


@kinds(KINDS)
def test_fileno_and_as_fd_borrow_the_map_fd(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    fd = h.fileno()
    assert h.as_fd() == fd
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-map"
    # A borrowed fd is good for anything that takes a map fd, e.g. from_fd.
    with tm.MapHandle.from_fd(h.as_fd()) as other:
        assert other.id == h.id
    assert h.fileno() == fd
