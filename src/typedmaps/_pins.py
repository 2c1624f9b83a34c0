"""bpffs pins: unpin() removes a BPF pin on bpffs, and nothing else.

A pin is a file on a bpffs mount that holds a BPF object (map, program or
link). ``os.unlink`` would remove any file the caller may remove, so every
unpin first checks, on the path itself, that it is not a symbolic link or a
directory, that its file system is bpffs (statfs magic 0xcafe4a11), and that
the kernel opens a BPF object of the expected kind there. Anything else is
refused with an :class:`ArgumentError` that says what the path is instead.
Opening a pin (``MapHandle``, ``Program`` and ``Link.from_pinned_path``)
checks the same things first (:func:`check_open`), so that a path that
cannot hold one is "nothing is pinned there", not the EACCES or EPERM the
kernel gives for it.
"""

from __future__ import annotations

import errno as _errno
import os
import stat
from collections.abc import Callable

from . import _ffi
from .errors import ArgumentError, PathNotFoundError, error_from_errno

__all__ = ["check_open", "check_pin", "not_a_pin", "unpin"]

#: /proc/self/fd link target -> the kind of BPF object an fd holds.
_KINDS = {
    "anon_inode:bpf-map": "map",
    "anon_inode:bpf-prog": "program",
    "anon_inode:bpf_link": "link",
    "anon_inode:bpf-link": "link",  # a link reopened from its pin
}


def _refuse(op: str, path: bytes, what: str) -> ArgumentError:
    shown = os.fsdecode(path)
    return ArgumentError(
        f"{op}: {shown!r} {what}: unpin removes only BPF pins on a bpffs mount",
        argument="path",
        value=shown,
    )


def _why_not_a_pin(path: bytes, st: os.stat_result) -> str | None:
    """Why the file at ``path`` (whose stat is ``st``) cannot be a BPF pin, or None.

    Raises:
        OSError: statfs failed.
    """
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    magic = _ffi.fs_magic(path)
    if magic != _ffi.BPF_FS_MAGIC:
        return (
            f"is not on a bpffs mount (file system magic {magic:#x}, bpffs is "
            f"{_ffi.BPF_FS_MAGIC:#x})"
        )
    return None


def not_a_pin(path: bytes) -> str | None:
    """Before opening ``path`` as a pin: why what is there cannot be one, or None.

    Follows symbolic links, as the kernel's BPF_OBJ_GET does. None also when
    the path cannot be examined (it does not exist, a directory on the way
    may not be searched, ...): then the kernel's answer is the one to give.
    """
    try:
        return _why_not_a_pin(path, os.stat(path))
    except OSError:
        return None


def check_open(path: bytes, op: str, what: str) -> None:
    """Before opening ``path`` as a pin of a BPF ``what`` ("map", "program", "link").

    Raises:
        PathNotFoundError: what is there cannot be a pin (:func:`not_a_pin`):
            "not a BPF <what>: the path is a directory, so nothing is pinned
            there". Errno ENOENT, also a FileNotFoundError.
    """
    why = not_a_pin(path)
    if why is not None:
        # The kernel would say EACCES (or EPERM), which reads as a permission
        # problem; the answer is that nothing is pinned there.
        raise PathNotFoundError(
            _errno.ENOENT, op, f"not a BPF {what}: the path {why}, so nothing is pinned there"
        )


def check_pin(
    path: bytes, op: str, want: str | None = None, verify: Callable[[int], str | None] | None = None
) -> None:
    """Make sure ``path`` is a BPF pin (of kind ``want``: "map", "program", "link").

    Args:
        verify: called with an fd of the pinned object; returns why it is not
            the expected object (e.g. another map), or None.

    Raises:
        PathNotFoundError: nothing exists at ``path`` (also a FileNotFoundError).
        ArgumentError: a symlink, a directory, a file outside bpffs, another
            kind of BPF object, or what ``verify`` refuses.
        MapPermissionError: the kernel does not let the caller open the pin.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise PathNotFoundError(
            _errno.ENOENT, op, "nothing is pinned there (No such file or directory)"
        ) from None
    except OSError as exc:
        err = exc.errno or _errno.EIO
        raise error_from_errno(err, op, detail=os.strerror(err)) from None
    try:
        why = _why_not_a_pin(path, st)
    except OSError as exc:
        err = exc.errno or _errno.EIO
        raise error_from_errno(err, op, detail=os.strerror(err)) from None
    if why is not None:
        raise _refuse(op, path, why)
    fd = _ffi.get_lib().bpf_obj_get(path)
    if fd < 0:
        if -fd in (_errno.EPERM, _errno.EACCES):
            raise error_from_errno(fd, op, detail=f"{os.strerror(-fd)} (opening the pin)")
        raise _refuse(op, path, f"is not a pinned BPF object ({os.strerror(-fd)})")
    try:
        try:
            kind = _KINDS.get(os.readlink(f"/proc/self/fd/{fd}"), "object")
        except OSError:
            kind = None  # no /proc: trust the kernel's answer above
        if want is not None and kind is not None and kind != want:
            raise _refuse(op, path, f"is a pinned BPF {kind}, not a {want}")
        if verify is not None:
            why = verify(fd)
            if why is not None:
                raise _refuse(op, path, why)
    finally:
        os.close(fd)


def unpin(
    path: bytes, op: str, want: str | None = None, verify: Callable[[int], str | None] | None = None
) -> None:
    """:func:`check_pin`, then remove the pin.

    Raises:
        as check_pin; PathNotFoundError if the pin vanished meanwhile.
    """
    check_pin(path, op, want, verify)
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise PathNotFoundError(
            _errno.ENOENT, op, "nothing is pinned there (No such file or directory)"
        ) from None
    except OSError as exc:
        err = exc.errno or _errno.EIO
        raise error_from_errno(err, op, detail=os.strerror(err)) from None
