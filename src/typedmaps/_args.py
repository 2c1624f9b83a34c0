"""Argument checks shared by every module: exact types, ranges, real bytes, safe paths.

Each check raises :class:`ArgumentError` (a TypeError and a ValueError)
before any syscall, naming the operation, the argument and what was
expected. Values that must fit a schema are the codecs' business
(CodecError); everything else handed to the library goes through here.
"""

from __future__ import annotations

import os
from typing import Final

from .errors import ArgumentError
from .flags import MapFlags

__all__ = ["as_bytes", "bad", "check_bool", "check_int", "elem_flags", "fspath"]

U32_MAX: Final = 0xFFFFFFFF
U64_MAX: Final = 0xFFFFFFFFFFFFFFFF
_ELEM_FLAGS: Final = int(MapFlags.NO_EXIST | MapFlags.EXIST | MapFlags.LOCK)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad(op: str, argument: str, value: object, expected: str) -> ArgumentError:
    """The error for ``argument`` of ``op``: what was expected, what was given."""
    where = f"{op}: " if op else ""
    return ArgumentError(
        f"{where}{argument} must be {expected}, not {_shown(value)} ({type(value).__name__})",
        argument=argument,
        value=value,
    )


def check_int(value: object, argument: str, op: str, high: int, low: int = 0) -> int:
    """An ``int`` (never a bool, float or str) in [low, high], as a plain int.

    Subclasses (IntFlag, IntEnum) are read by their real value, not by any
    ``__int__``/comparison they may override.
    """
    if type(value) is int:
        v: int = value
    elif isinstance(value, int) and not isinstance(value, bool):
        v = int.__int__(value)
    else:
        raise bad(op, argument, value, f"an integer in [{low}, {high}]")
    if not low <= v <= high:
        raise bad(op, argument, value, f"an integer in [{low}, {high}]")
    return v


def check_bool(value: object, argument: str, op: str) -> bool:
    """Exactly True or False (not 0, 1, "yes" or None)."""
    if value is not True and value is not False:
        raise bad(op, argument, value, "True or False")
    return value


def elem_flags(flags: object, operation: str, argument: str = "flags") -> int:
    """Element flags as an int: MapFlags (or a plain int), never a bool, None or float.

    A value of the wrong type is refused, never read as ANY.
    """
    if type(flags) is not int and (isinstance(flags, bool) or not isinstance(flags, int)):
        raise bad(operation, argument, flags, "MapFlags (ANY, NO_EXIST, EXIST, LOCK)")
    f = int.__int__(flags)
    if f < 0 or f & ~_ELEM_FLAGS:
        raise bad(operation, argument, flags, "a combination of ANY, NO_EXIST, EXIST and LOCK")
    if f & MapFlags.NO_EXIST and f & MapFlags.EXIST:
        raise bad(operation, argument, flags, "at most one of NO_EXIST and EXIST")
    return f


def as_bytes(obj: object, argument: str, op: str = "") -> bytes:
    """The real bytes of a bytes-like object.

    ``bytes`` itself passes through. A subclass of bytes (which may lie
    about its ``len()``), a bytearray or a memoryview is copied out of its
    buffer, so the length that reaches libbpf is always the number of bytes
    the object really holds.
    """
    if type(obj) is bytes:
        return obj
    if isinstance(obj, bytes | bytearray | memoryview):
        return memoryview(obj).tobytes()
    raise bad(op, argument, obj, "a bytes-like object (bytes, bytearray, memoryview)")


def fspath(path: object, argument: str, op: str) -> bytes:
    """A file system path as bytes: str, bytes or os.PathLike, non-empty, without NUL.

    A NUL byte would end the C string early: libbpf would act on another
    path than the one given.
    """
    if not isinstance(path, str | bytes | os.PathLike):
        raise bad(op, argument, path, "a path (str, bytes or os.PathLike)")
    try:
        p = os.fsencode(path)
    except TypeError:  # an os.PathLike whose __fspath__ returns something else
        raise bad(op, argument, path, "a path (str, bytes or os.PathLike)") from None
    except UnicodeEncodeError as exc:  # a lone surrogate no file name can hold
        raise bad(
            op, argument, path, f"a path the file system encoding can hold ({exc.reason})"
        ) from None
    if type(p) is not bytes:
        p = as_bytes(p, argument, op)
    if not p:
        raise bad(op, argument, path, "a non-empty path")
    if b"\0" in p:
        raise ArgumentError(
            f"{op}: {argument} {os.fsdecode(p)!r} contains a NUL byte",
            argument=argument,
            value=path,
        )
    return p
