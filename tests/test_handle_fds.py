"""No file descriptor leaks on error paths: every failed open closes what it opened.

Counts /proc/self/fd before and after (the session-wide check in conftest
only sees BPF fds that are still open at the very end).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import MakeMap


@pytest.fixture
def no_new_fds() -> Iterator[None]:
    before = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) == before, "a file descriptor leaked"


def test_from_fd_on_a_pipe(bpf: None, no_new_fds: None) -> None:
    r, w = os.pipe()
    try:
        for _ in range(50):
            with pytest.raises(tm.MapError, match="from_fd: not a BPF map") as info:
                tm.MapHandle.from_fd(r)
            assert "pipe:" in str(info.value)
            assert not isinstance(info.value, tm.MapPermissionError)
        os.fstat(r)  # the caller's fd is untouched
    finally:
        os.close(r)
        os.close(w)


def test_from_fd_on_a_regular_file(bpf: None, no_new_fds: None, tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        with pytest.raises(tm.MapError, match="not a BPF map"):
            tm.MapHandle.from_fd(f.fileno())
        f.write(b"still open")


def test_from_pinned_path_failures(bpf: None, pin_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    before = len(os.listdir("/proc/self/fd"))
    cases: list[tuple[Path, type[Exception], str]] = [
        (plain, tm.MapError, "not a BPF map"),
        (pin_dir, tm.MapError, "not a BPF map"),
        (pin_dir / "absent", FileNotFoundError, "No such file or directory"),
        (tmp_path / "absent", FileNotFoundError, "No such file or directory"),
    ]
    for path, cls, text in cases:
        for kw in ({}, {"readonly": True}, {"writeonly": True}):
            with pytest.raises(cls, match=text):
                tm.MapHandle.from_pinned_path(path, **kw)
    assert len(os.listdir("/proc/self/fd")) == before


def test_constructor_closes_an_owned_fd_that_is_not_a_map(bpf: None, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    with pytest.raises(tm.MapError, match="MapHandle: not a BPF map"):
        tm.MapHandle(fd)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_constructor_leaves_a_borrowed_fd_open(bpf: None, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    try:
        with pytest.raises(tm.MapError, match="not a BPF map"):
            tm.MapHandle(fd, _owns_fd=False)
        os.fstat(fd)
    finally:
        os.close(fd)


def _failing_calls(pin_dir: Path) -> dict[str, Callable[[], object]]:
    T = tm.MapType
    return {
        "create EINVAL": lambda: tm.MapHandle.create(
            T.HASH, key_size=4, value_size=4, max_entries=0
        ),
        "create LPM without NO_PREALLOC": lambda: tm.MapHandle.create(
            T.LPM_TRIE, key_size=8, value_size=4, max_entries=4
        ),
        "create E2BIG": lambda: tm.MapHandle.create(
            T.HASH, key_size=4, value_size=1 << 23, max_entries=4
        ),
        "from_map_id": lambda: tm.MapHandle.from_map_id(0xFFFFFFF0),
        "from_pinned_path": lambda: tm.MapHandle.from_pinned_path(pin_dir),
    }


def test_failed_opens_leave_no_fd(bpf: None, pin_dir: Path, no_new_fds: None) -> None:
    for name, call in _failing_calls(pin_dir).items():
        for _ in range(20):
            with pytest.raises(tm.MapError):
                call()
        assert name


def test_create_e2big_is_not_map_full(bpf: None) -> None:
    with pytest.raises(tm.MapError, match="create HASH: Argument list too long") as info:
        tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=1 << 23, max_entries=4)
    assert not isinstance(info.value, tm.MapFullError)


@pytest.mark.parametrize(
    ("kw", "what"),
    [
        ({"key_size": -1}, "key_size"),
        ({"value_size": 2**32}, "value_size"),
        ({"max_entries": "4"}, "max_entries"),
        ({"map_flags": -1}, "map_flags"),
        ({"map_extra": -1}, "map_extra"),
        ({"name": "x" * 16}, "name"),
        ({"name": "caf\u00e9"}, "name"),
        ({"name": "a-b"}, "name"),
        ({"map_type": -1}, "map_type"),
    ],
)
def test_create_checks_its_arguments_first(
    bpf: None, no_new_fds: None, kw: dict[str, object], what: str
) -> None:
    args: dict[str, object] = {
        "map_type": tm.MapType.HASH,
        "key_size": 4,
        "value_size": 4,
        "max_entries": 4,
    }
    args.update(kw)
    with pytest.raises(tm.ArgumentError, match=what):
        tm.MapHandle.create(**args)  # type: ignore[arg-type]


def test_operation_errors_allocate_no_fds(make_map: MakeMap, no_new_fds: None) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    h.update(b"\0\0\0\0", b"abcd")
    for _ in range(100):
        with pytest.raises(tm.KeyNotFoundError):
            h.delete(b"\1\0\0\0")
        with pytest.raises(tm.MapFullError):
            h.update(b"\1\0\0\0", b"abcd")
        with pytest.raises(tm.SizeMismatchError):
            h.lookup(b"")
    h.close()
