"""The typedmaps exception tree.

Every error the library raises on purpose is a :class:`TypedMapsError`::

    TypedMapsError
    ├── MapError (OSError: .errno, .operation)
    │   ├── KeyNotFoundError      also a KeyError        ENOENT
    │   ├── KeyExistsError                                EEXIST
    │   ├── MapFullError                                  E2BIG / ENOSPC when full
    │   ├── MapPermissionError    also a PermissionError  EPERM / EACCES
    │   ├── NotSupportedError                             EOPNOTSUPP / ENOTSUPP / EINVAL
    │   ├── BatchError            .processed: elements the kernel applied
    │   └── IterationAbortedError iteration could not finish
    ├── SizeMismatchError (ValueError)   .size, .expected, .what
    │   └── LayoutMismatchError          a field placed unlike the map's BTF (.field)
    ├── CodecError (ValueError)          .path, .value, .reason
    │   └── DtypeError                   a schema part with no numpy dtype (columnar methods)
    ├── ArgumentError (TypeError, ValueError)  a bad argument that is not a schema value
    ├── MapClosedError                   use after close()
    ├── ObjectError (OSError: .errno, .operation, .log)  a BPF object file or program
    ├── LibbpfNotFoundError (ImportError)
    └── ExtraNotInstalledError (ImportError)  an optional dependency; .extra names what to install

A path where nothing exists raises :class:`PathNotFoundError` (a MapError)
or :class:`ObjectFileNotFoundError` (an ObjectError), both also a
``FileNotFoundError``. Kernel errors keep their errno, so ``except OSError
as e: e.errno`` still works, and the operation that failed is part of the message
("lookup: key not found"), as in cilium/ebpf.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

__all__ = [
    "ArgumentError",
    "BatchError",
    "CodecError",
    "DtypeError",
    "ExtraNotInstalledError",
    "IterationAbortedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "LayoutMismatchError",
    "LibbpfNotFoundError",
    "MapClosedError",
    "MapError",
    "MapFullError",
    "MapPermissionError",
    "NotSupportedError",
    "ObjectError",
    "ObjectFileNotFoundError",
    "PathNotFoundError",
    "SizeMismatchError",
    "TypedMapsError",
    "batch_error_from_errno",
    "error_from_errno",
]

#: The kernel's ENOTSUPP (524) is not in Python's errno module: it never
#: reaches user space through libc, but bpf(2) returns it for some map ops.
ENOTSUPP = 524


class TypedMapsError(Exception):
    """Base class of every exception typedmaps raises on purpose."""


class MapError(TypedMapsError, OSError):
    """A map operation failed in the kernel or in libbpf.

    Attributes:
        errno: the positive errno value the kernel returned.
        operation: the name of the failed operation, e.g. ``"update"``.
    """

    operation: str

    def __init__(self, err: int, operation: str, detail: str | None = None) -> None:
        reason = detail if detail is not None else _strerror(err)
        OSError.__init__(self, err, f"{operation}: {reason}")
        self.operation = operation
        self._detail = detail

    def __str__(self) -> str:
        return f"{self.strerror} [errno {self.errno}]"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.operation, self._detail))


class KeyNotFoundError(MapError, KeyError):
    """The key is not in the map (ENOENT). Also a :class:`KeyError`."""

    def __str__(self) -> str:  # KeyError's __str__ would repr() the args
        return MapError.__str__(self)


class KeyExistsError(MapError):
    """The key is already in the map and NO_EXIST was asked for (EEXIST)."""


class MapFullError(MapError):
    """The map has no room for another element (E2BIG, or ENOSPC when full)."""


class MapPermissionError(MapError, PermissionError):
    """The map refuses the operation: frozen, read-only fd, or no privilege."""


class NotSupportedError(MapError):
    """The map type, kernel or libbpf does not support this operation."""


class BatchError(MapError):
    """A batch operation stopped part-way.

    Attributes:
        processed: how many elements the kernel applied before it stopped.
        cause: the named error for the errno that stopped it.
    """

    processed: int

    def __init__(self, err: int, operation: str, processed: int, detail: str | None = None) -> None:
        base = detail if detail is not None else _strerror(err)
        super().__init__(err, operation, f"{base} after {processed} element(s)")
        self.processed = processed
        self._batch_detail = detail

    @property
    def cause(self) -> type[MapError]:
        """The exception class the errno alone would have raised."""
        return _class_for(self.errno or 0)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.operation, self.processed, self._batch_detail))


class IterationAbortedError(MapError):
    """Iteration could not finish: the map changed faster than it was walked."""


class SizeMismatchError(TypedMapsError, ValueError):
    """A key, value or schema does not have the size the map needs.

    Attributes:
        what: what was being sized, e.g. ``"key"`` or ``"value schema Int32ul"``.
        size: the size that was given.
        expected: the size that was needed.
    """

    def __init__(self, what: str, size: int, expected: int, hint: str = "") -> None:
        msg = f"{what} is {size} bytes, expected {expected}"
        super().__init__(msg + (f" ({hint})" if hint else ""))
        self.what = what
        self.size = size
        self.expected = expected


class LayoutMismatchError(SizeMismatchError):
    """A schema of the right size puts a field where the map's BTF does not.

    Checked once, when a typed wrapper is made over a map that has BTF: a
    record whose padding sits in the wrong place has the right size and
    would read every field after it from the wrong bytes.

    Attributes:
        field: the field's path, e.g. ``"value.bytes"``.
        size: the field's offset in the schema (bytes from the record's start).
        expected: the field's offset in the BTF.
        what: the schema and the map, as in the message.
    """

    def __init__(self, what: str, field: str, offset: int, btf_offset: int, detail: str) -> None:
        ValueError.__init__(self, f"{what}: {field} {detail}")
        self.what = what
        self.field = field
        self.size = offset
        self.expected = btf_offset
        self._detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.field, self.size, self.expected, self._detail))


class CodecError(TypedMapsError, ValueError):
    """A key or value cannot be encoded to (or decoded from) bytes.

    Raised before any syscall: the map is unchanged.

    Attributes:
        path: where in the record, e.g. ``"value.stats.bytes"``.
        value: the offending Python value (or the bytes being decoded).
        reason: why it failed.
        action: what could not be done with it: ``"encode"`` (the default),
            ``"decode"``, or ``"use"`` for an argument or schema.
    """

    def __init__(self, path: str, value: object, reason: str, *, action: str = "encode") -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{path}: cannot {action} {shown}: {reason}")
        self.path = path
        self.value = value
        self.reason = reason
        self.action = action

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_codec_error, (self.path, self.value, self.reason, self.action))


class ArgumentError(TypedMapsError, TypeError, ValueError):
    """A bad argument that is not a schema value: wrong type, out of range, NUL in a path, ...

    Both a :class:`TypeError` and a :class:`ValueError`, so either ``except``
    catches it whatever the exact fault. Raised before any syscall.
    :class:`CodecError` stays for keys and values that do not fit a schema.

    Attributes:
        argument: the argument's name (``""`` when the fault is not one argument's).
        value: the value given (None when not kept).
    """

    def __init__(self, message: str, *, argument: str = "", value: object = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_argument_error, (str(self), self.argument, self.value))


class DtypeError(CodecError):
    """A schema, or a part of one, has no numpy dtype (a bitfield, a 128-bit integer, ...).

    Raised by the columnar methods (``to_numpy``, ``update_batch`` of an
    array, ``from_numpy``, ``dtype``) before any syscall. ``path`` names the
    field (``"value.flags"``) and ``reason`` says why.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, None, reason, action="use")
        self.args = (f"{path}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


class ExtraNotInstalledError(TypedMapsError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it.

    Attributes:
        feature: what needed it, e.g. ``"to_numpy()"``.
        module: the module that could not be imported (also ``.name``).
        extra: the pip extra: ``pip install 'typedmaps[<extra>]'``.
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs {module}, which is not installed: pip install 'typedmaps[{extra}]'",
            name=module,
        )
        self.feature = feature
        self.module = module
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.feature, self.module, self.extra))


class MapClosedError(TypedMapsError):
    """The handle, map or object was used after close()."""


class ObjectError(TypedMapsError, OSError):
    """A BPF object could not be opened, configured, loaded or attached.

    A missing file (ENOENT), a file that is not a BPF object (libbpf's errno
    4001), a verifier rejection (the verifier log is in ``.log`` and its end
    in the message), a setting made after load (EBUSY), or a map or program
    used before load.

    Attributes:
        errno: the errno (kernel or libbpf's own LIBBPF_ERRNO__* >= 4000).
        operation: what failed, e.g. ``"load flows"``.
        log: libbpf's warning lines captured during the operation ("" if none).
    """

    operation: str
    log: str
    #: How many trailing log lines the message shows (all of them are in .log).
    LOG_TAIL = 40

    def __init__(self, err: int, operation: str, detail: str | None = None, log: str = "") -> None:
        reason = detail if detail is not None else _strerror(err)
        OSError.__init__(self, err, f"{operation}: {reason}")
        self.operation = operation
        self.log = log
        self._detail = detail

    def __str__(self) -> str:
        text = f"{self.strerror} [errno {self.errno}]"
        if self.log:
            lines = self.log.splitlines()
            shown = lines[-self.LOG_TAIL :]
            more = f" (last {len(shown)} of {len(lines)} lines)" if len(lines) > len(shown) else ""
            text += f"\nlibbpf log{more}:\n" + "\n".join(shown)
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.operation, self._detail, self.log))


class PathNotFoundError(MapError, FileNotFoundError):
    """Nothing exists at a path (ENOENT on a pin or file): a MapError and a FileNotFoundError.

    Never a KeyNotFoundError: a missing file is not a missing key.
    """


class ObjectFileNotFoundError(ObjectError, FileNotFoundError):
    """The BPF object file does not exist: an ObjectError and a FileNotFoundError."""


class LibbpfNotFoundError(TypedMapsError, ImportError):
    """libbpf.so.1 could not be loaded; the message says what to install."""


_REASONS: dict[int, str] = {
    _errno.ENOENT: "key not found",
    _errno.EEXIST: "key already exists",
    _errno.E2BIG: "map is full",
    _errno.ENOSPC: "map is full",
    ENOTSUPP: "operation not supported",
}


def _rebuild_codec_error(path: str, value: object, reason: str, action: str) -> CodecError:
    return CodecError(path, value, reason, action=action)


def _rebuild_argument_error(message: str, argument: str, value: object) -> ArgumentError:
    return ArgumentError(message, argument=argument, value=value)


def _strerror(err: int) -> str:
    return _REASONS.get(err) or os.strerror(err)


_BY_ERRNO: dict[int, type[MapError]] = {
    _errno.ENOENT: KeyNotFoundError,
    _errno.EEXIST: KeyExistsError,
    _errno.E2BIG: MapFullError,
    _errno.ENOSPC: MapFullError,
    _errno.EPERM: MapPermissionError,
    _errno.EACCES: MapPermissionError,
    _errno.EOPNOTSUPP: NotSupportedError,
    ENOTSUPP: NotSupportedError,
}


def _class_for(err: int) -> type[MapError]:
    return _BY_ERRNO.get(err, MapError)


def error_from_errno(
    err: int, operation: str, *, einval_unsupported: bool = False, detail: str | None = None
) -> MapError:
    """Build the named exception for a (positive or negative) errno.

    Args:
        err: errno, either sign (libbpf returns ``-errno``).
        operation: name of the operation for the message.
        einval_unsupported: map EINVAL to :class:`NotSupportedError`; for
            operations the map type lacks, where the kernel says EINVAL.
        detail: the message instead of the default reason for the errno.
    """
    err = abs(err)
    if einval_unsupported and err == _errno.EINVAL:
        return NotSupportedError(err, operation, "not supported by this map type (EINVAL)")
    return _class_for(err)(err, operation, detail)


# A failed batch is a BatchError *and* the named error of its errno, so that
# ``except KeyNotFoundError`` and ``except BatchError`` both catch a
# delete_batch that met a missing key. The combinations are plain module
# classes (not made on the fly) so that they pickle and show a stable name.


class BatchKeyNotFoundError(BatchError, KeyNotFoundError):
    """A batch stopped at a missing key (ENOENT); ``.processed`` were applied."""


class BatchKeyExistsError(BatchError, KeyExistsError):
    """A batch stopped at a key that exists (EEXIST); ``.processed`` were applied."""


class BatchMapFullError(BatchError, MapFullError):
    """A batch stopped because the map is full (E2BIG); ``.processed`` were applied."""


class BatchMapPermissionError(BatchError, MapPermissionError):
    """A batch was refused (EPERM/EACCES: frozen map, read-only fd)."""


class BatchNotSupportedError(BatchError, NotSupportedError):
    """The map type has no such batch operation (ENOTSUPP/EOPNOTSUPP)."""


_BATCH_BY_CLASS: dict[type[MapError], type[BatchError]] = {
    MapError: BatchError,
    KeyNotFoundError: BatchKeyNotFoundError,
    KeyExistsError: BatchKeyExistsError,
    MapFullError: BatchMapFullError,
    MapPermissionError: BatchMapPermissionError,
    NotSupportedError: BatchNotSupportedError,
}


def batch_error_from_errno(
    err: int,
    operation: str,
    processed: int,
    *,
    detail: str | None = None,
    cls: type[MapError] | None = None,
) -> BatchError:
    """Build the BatchError for a (positive or negative) errno.

    The result is also an instance of the class :func:`error_from_errno`
    would pick (e.g. a :class:`KeyNotFoundError` for ENOENT), or of ``cls``.

    Args:
        err: errno, either sign.
        operation: name of the batch operation for the message.
        processed: how many elements the kernel applied before it stopped.
        detail: the message instead of the default reason for the errno.
        cls: the named class to combine with, instead of the errno's own
            (one of the classes of the tree; e.g. KeyNotFoundError for an
            ARRAY index out of range, which the kernel reports as E2BIG).
    """
    err = abs(err)
    named = cls if cls is not None else _class_for(err)
    return _BATCH_BY_CLASS.get(named, BatchError)(err, operation, processed, detail)
