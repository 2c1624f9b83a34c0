"""What the object, map and program modules share: state, libbpf log capture, argument checks."""

from __future__ import annotations

import contextlib
import errno as _errno
import logging
import os
import threading
from collections.abc import Iterator
from enum import Enum
from typing import Any, Final

from . import _ffi
from ._args import U32_MAX, as_bytes, check_int
from ._ffi import NULL, ffi
from .errors import ObjectError, ObjectFileNotFoundError

_libbpf_log = logging.getLogger("typedmaps.libbpf")
#: libbpf's own errno values (LIBBPF_ERRNO__*) start here.
_LIBBPF_ERRNO_START: Final = 4000


class _State(Enum):
    OPEN = "opened, not loaded"
    LOADED = "loaded"
    FAILED = "failed to load"
    CLOSED = "closed"


# ---------------------------------------------------------------------- helpers


class _Collect(logging.Filter):
    """Collects this thread's libbpf WARNING lines; passes every record on."""

    def __init__(self, drop: bool = False) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.lines: list[str] = []
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        # record.thread is None when logging.logThreads is off: keep those too
        if record.thread in (self.thread, None):
            if record.levelno >= logging.WARNING:
                self.lines.append(record.getMessage())
            return not self.drop
        return True


@contextlib.contextmanager
def _capture_libbpf_log(*, drop: bool = False) -> Iterator[list[str]]:
    """While active, collect what libbpf warns about in this thread.

    A logging.Filter on the ``typedmaps.libbpf`` logger, not a handler, so
    the user's logging set-up (including Python's last-resort stderr
    handler) sees exactly what it would have seen anyway. ``drop=True``
    keeps this thread's lines from the logger: for calls whose failure is
    expected and handled (the caller puts the lines into its error).
    """
    collector = _Collect(drop)
    _libbpf_log.addFilter(collector)
    try:
        yield collector.lines
    finally:
        _libbpf_log.removeFilter(collector)


def _strerror(err: int) -> str:
    if err >= _LIBBPF_ERRNO_START:
        buf = ffi.new("char[]", 256)
        _ffi.get_lib().libbpf_strerror(err, buf, 256)
        return str(ffi.string(buf).decode("utf-8", "replace"))
    return os.strerror(err)


def _object_error(
    err: int, operation: str, lines: list[str], detail: str | None = None, *, path: bool = False
) -> ObjectError:
    """The ObjectError for ``err``; for a file that does not exist (``path``), also a
    FileNotFoundError."""
    err = abs(err) or _errno.EINVAL
    cls = ObjectFileNotFoundError if path and err == _errno.ENOENT else ObjectError
    return cls(err, operation, detail or _strerror(err), log="\n".join(lines))


def _cstr(ptr: Any) -> str | None:
    return None if ptr == NULL else str(ffi.string(ptr).decode("utf-8", "replace"))


def _u32(value: object, what: str, op: str = "") -> int:
    """An int in [0, 2**32) for a libbpf setting (ArgumentError otherwise)."""
    return check_int(value, what, op, U32_MAX)


def bpf_obj_id(fd: int, operation: str) -> int:
    """The kernel id of the BPF object (map, program, link, BTF) behind ``fd``.

    Every bpf_*_info struct starts with ``__u32 type; __u32 id;``, and the
    kernel fills in no more than the length it is given.

    Raises:
        MapError: not a BPF object fd (EINVAL, EBADF).
    """
    info = ffi.new("__u32[2]")
    size = ffi.new("__u32 *", 8)
    _ffi.check(_ffi.get_lib().bpf_obj_get_info_by_fd(fd, info, size), operation)
    return int(info[1])


def _bytes_arg(value: object, what: str, op: str = "") -> bytes:
    """The real bytes of a bytes-like argument (a lying subclass is copied out)."""
    return as_bytes(value, what, op)
