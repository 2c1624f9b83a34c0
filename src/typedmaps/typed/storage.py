"""Local storage: a typed value attached to each task, socket, cgroup or inode.

BPF programs attach state to kernel objects with TASK_STORAGE, SK_STORAGE,
CGRP_STORAGE and INODE_STORAGE maps (``bpf_task_storage_get`` and
friends): the value lives as long as the object does, and the map needs
no key management. From user space each map is keyed by a file
descriptor that names the object; the wrappers here take the object itself
and open (and close) the fd for each operation:

=========================  ==========================  ==============================
wrapper                    map type                    key
=========================  ==========================  ==============================
:class:`TypedTaskStorage`  TASK_STORAGE (Linux 5.11+)  a pid (through a pidfd), or a
                                                       :class:`PidFd`
:class:`TypedSkStorage`    SK_STORAGE (Linux 5.2+)     a socket (or its fd)
:class:`TypedCgroupStorage`  CGRP_STORAGE (6.2+)       a cgroup v2 directory path, or
                                                       an fd of one
:class:`TypedInodeStorage` INODE_STORAGE (5.10+)       a path, a file object or an fd
=========================  ==========================  ==============================

Each is a ``MutableMapping[key, V]`` where the kernel allows the
operation: ``st[k]``, ``st.get(k)``, ``k in st``, ``st[k] = v`` (and
:meth:`~_LocalStorage.insert` / :meth:`~_LocalStorage.replace` for
BPF_NOEXIST / BPF_EXIST), ``del st[k]``, ``st.pop(k)``. The kernel keeps no
index of the objects that have storage and refuses BPF_MAP_GET_NEXT_KEY on
these maps, so iteration, ``len()``, ``keys()``, ``items()``, ``values()``
and ``clear()`` raise :class:`NotSupportedError` saying so; a BPF iterator
program is the kernel's way to walk them.

Keys are checked before any syscall; a pid with no process, a path that
does not exist, a socket that is closed are named errors. Every fd opened
for a key is closed before the operation returns, also on errors. Values
are encoded first: a value that does not fit is a :class:`CodecError` and
nothing is written.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, overload

from ..codec import Codec
from ..errors import (
    CodecError,
    KeyNotFoundError,
    MapError,
    NotSupportedError,
    SizeMismatchError,
)
from ..flags import MapFlags, MapType
from ..handle import MapHandle
from ._base import _codec, _OnHandle

if TYPE_CHECKING:
    import construct

__all__ = [
    "PidFd",
    "TypedCgroupStorage",
    "TypedInodeStorage",
    "TypedSkStorage",
    "TypedTaskStorage",
]

V = TypeVar("V")
T = TypeVar("T")
KeyT = TypeVar("KeyT")

_FD: Final = struct.Struct("=i")


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PidFd:
    """A pidfd (``os.pidfd_open``) used as a task storage key as it is (not closed).

    Attributes:
        fd: the pidfd; it stays the caller's.
    """

    fd: int


def _arg_error(what: str, value: object, reason: str) -> CodecError:
    return CodecError(what, value, reason, action="use")


def _given_fd(value: object, what: str) -> int | None:
    """The fd of an int or an object with fileno(); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        fd = value
    else:
        fileno = getattr(value, "fileno", None)
        if fileno is None or not callable(fileno):
            return None
        try:
            fd = fileno()
        except (OSError, ValueError) as exc:  # a closed socket or file object
            raise _arg_error(what, value, f"it has no fd ({exc})") from None
    if isinstance(fd, bool) or not isinstance(fd, int) or not 0 <= fd <= 0x7FFFFFFF:
        raise _arg_error(what, value, f"{fd!r} is not an open file descriptor")
    return fd


class _Key:
    """An fd for one operation: borrowed (the caller's) or opened here and closed after."""

    __slots__ = ("fd", "owned")

    def __init__(self, fd: int, owned: bool) -> None:
        self.fd = fd
        self.owned = owned

    def __enter__(self) -> bytes:
        return _FD.pack(self.fd)

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.owned = False
            os.close(self.fd)


class _LocalStorage(_OnHandle, MutableMapping[KeyT, V], Generic[KeyT, V]):
    """What the four storage wrappers share; a subclass says how a key becomes an fd."""

    __slots__ = ("_dv", "_ev", "_h", "_value_codec")

    _kind: MapType = MapType.UNSPEC
    _wrapper: str = ""
    _what: str = "key"

    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V] | None = None
    ) -> None:
        if not isinstance(handle, MapHandle):
            raise TypeError(
                f"{self._wrapper}() needs a MapHandle or Map, got {type(handle).__name__}"
            )
        mt = handle.map_type
        if mt is not self._kind:
            raise NotSupportedError(
                _errno.EINVAL,
                self._wrapper,
                f"{self._wrapper} wraps {self._kind.name} maps; {handle.name!r} is {mt.name}",
            )
        if value is None:
            from ..btf import map_schemas

            _, schema = map_schemas(handle)
            vc: Codec[V] = _codec(schema, "value")
        else:
            vc = _codec(value, "value")
        if vc.size != handle.value_size:
            raise SizeMismatchError(
                f"value schema {vc.name}",
                vc.size,
                handle.value_size,
                f"the value_size of the {mt.name} map {handle.name!r}",
            )
        self._h = handle
        self._value_codec = vc
        self._ev = vc.encode
        self._dv = vc.decode

    @property
    def value_codec(self) -> Codec[V]:
        """The codec of the values."""
        return self._value_codec

    # -- keys ------------------------------------------------------------------

    def _key(self, key: KeyT, op: str) -> _Key:
        """The fd that names ``key``'s object, for one operation (raises before any syscall)."""
        raise NotImplementedError

    def _absent(self, key: object, op: str) -> KeyNotFoundError:
        return KeyNotFoundError(
            _errno.ENOENT, op, f"{self._what} {key!r} has no {self._kind.name} value"
        )

    # -- elements ------------------------------------------------------------------

    def __getitem__(self, key: KeyT) -> V:
        """The value stored for ``key``'s object.

        Raises:
            KeyNotFoundError: no value for it (or, for a pid, no such process).
            CodecError: ``key`` cannot name an object of this kind.
            MapClosedError: the map is closed.
        """
        h = self._h
        h._open_fd()
        with self._key(key, "lookup") as kb:
            raw = h.lookup(kb)
        if raw is None:
            raise self._absent(key, "lookup")
        return self._dv(raw)

    @overload
    def get(self, key: KeyT, /) -> V | None: ...
    @overload
    def get(self, key: KeyT, default: V | T, /) -> V | T: ...
    def get(self, key: KeyT, default: Any = None, /) -> Any:
        """The value for ``key``'s object, or ``default`` (also when a pid has no process)."""
        try:
            return self[key]
        except KeyNotFoundError:
            return default

    def __contains__(self, key: object) -> bool:
        """Whether ``key``'s object has a value (False for a pid with no process)."""
        try:
            self[key]  # type: ignore[index]
        except KeyNotFoundError:
            return False
        return True

    def _put(self, key: KeyT, value: V, flags: int, op: str) -> None:
        h = self._h
        h._open_fd()
        vb = self._ev(value)  # encoded before anything else happens
        with self._key(key, op) as kb:
            try:
                h.update(kb, vb, flags)
            except KeyNotFoundError as exc:
                if exc.errno == _errno.ENOENT:
                    raise self._absent(key, op) from None
                raise

    def __setitem__(self, key: KeyT, value: V) -> None:
        """Store ``value`` for ``key``'s object (BPF_ANY: create or overwrite).

        Raises:
            CodecError: the value does not encode (nothing is written), or
                ``key`` cannot name an object of this kind.
            KeyNotFoundError: a pid with no process.
            MapFullError: the kernel could not allocate the storage.
        """
        self._put(key, value, MapFlags.ANY, "update")

    def insert(self, key: KeyT, value: V) -> None:
        """Store ``value`` only if ``key``'s object has none yet (BPF_NOEXIST).

        Raises:
            KeyExistsError: it already has a value.
        """
        self._put(key, value, MapFlags.NO_EXIST, "insert")

    def replace(self, key: KeyT, value: V) -> None:
        """Overwrite the value of ``key``'s object only if it has one (BPF_EXIST).

        Raises:
            KeyNotFoundError: it has none.
        """
        self._put(key, value, MapFlags.EXIST, "replace")

    def __delitem__(self, key: KeyT) -> None:
        """Remove the value of ``key``'s object.

        Raises:
            KeyNotFoundError: it has none.
        """
        h = self._h
        h._open_fd()
        with self._key(key, "delete") as kb:
            try:
                h.delete(kb)
            except KeyNotFoundError:
                raise self._absent(key, "delete") from None

    # -- what the kernel does not do ---------------------------------------------

    def _no_walk(self, op: str) -> NotSupportedError:
        return NotSupportedError(
            _errno.EOPNOTSUPP,
            op,
            f"the kernel keeps no list of the objects with {self._kind.name} values and "
            "refuses to walk the map from user space (BPF_MAP_GET_NEXT_KEY: ENOTSUPP); "
            "look values up by object, or walk them with a BPF iterator program",
        )

    def __iter__(self) -> Iterator[KeyT]:
        raise self._no_walk("iterate")

    def __len__(self) -> int:
        raise self._no_walk("len")

    def clear(self) -> None:
        """Not possible: the map cannot be walked (NotSupportedError)."""
        raise self._no_walk("clear")

    def popitem(self) -> tuple[KeyT, V]:
        """Not possible: the map cannot be walked (NotSupportedError)."""
        raise self._no_walk("popitem")

    def __repr__(self) -> str:
        h = self._h
        return (
            f"{type(self).__name__}(value={self._value_codec.name}, map={h.name!r}"
            f"{', closed' if h.closed else ''})"
        )


# ---------------------------------------------------------------------------- tasks


class TypedTaskStorage(_LocalStorage[int | PidFd, V]):
    """TASK_STORAGE: a value per task, keyed by pid (Linux 5.11+).

    ``st[pid]`` opens a pidfd for the process (``os.pidfd_open``), uses it
    for the one operation and closes it; ``st[PidFd(fd)]`` uses a pidfd the
    caller holds, as it is. A pidfd names a thread-group leader, so ``pid``
    is a process id, and the value is the main thread's (the task a BPF
    program sees for that thread; other threads have their own values).

    Example::

        st = TypedTaskStorage(obj.maps["per_task"], value=DataclassStruct(TaskStat))
        st[os.getpid()] = TaskStat(calls=0)
        st[os.getpid()].calls                  # what the program counted since

    Raises:
        NotSupportedError: not a TASK_STORAGE map.
        SizeMismatchError: the value schema's size is not the map's.
    """

    __slots__ = ()

    _kind = MapType.TASK_STORAGE
    _wrapper = "TypedTaskStorage"
    _what = "task"

    @overload
    def __init__(self: TypedTaskStorage[Any], handle: MapHandle) -> None: ...
    @overload
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]
    ) -> None: ...
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V] | None = None
    ) -> None:
        """Wrap ``handle``; the value schema defaults to the map's BTF value type."""
        super().__init__(handle, value=value)

    def _key(self, key: int | PidFd, op: str) -> _Key:
        if isinstance(key, PidFd):
            fd = key.fd
            if isinstance(fd, bool) or not isinstance(fd, int) or not 0 <= fd <= 0x7FFFFFFF:
                raise _arg_error("key", key, "a PidFd holds an open pidfd")
            return _Key(fd, False)
        if isinstance(key, bool) or not isinstance(key, int) or not 0 < key <= 0x3FFFFFFF:
            raise _arg_error("key", key, "a task is named by a pid (a positive int) or a PidFd")
        try:
            fd = os.pidfd_open(key)
        except ProcessLookupError:
            raise KeyNotFoundError(_errno.ESRCH, op, f"no process has pid {key}") from None
        except OSError as exc:
            if exc.errno == _errno.EINVAL:  # a thread id, not a thread-group leader
                raise KeyNotFoundError(
                    _errno.ESRCH, op, f"pid {key} is not a process (a thread of one?)"
                ) from None
            raise MapError(exc.errno or _errno.EIO, op, f"pidfd_open({key}): {exc}") from None
        return _Key(fd, True)


# ---------------------------------------------------------------------------- sockets


class TypedSkStorage(_LocalStorage[_HasFileno | int, V]):
    """SK_STORAGE: a value per socket, keyed by the socket (or its fd) (Linux 5.2+).

    The socket's own fd is used as it is (it stays the caller's). The value
    goes away with the socket.

    Raises:
        NotSupportedError: not an SK_STORAGE map.
    """

    __slots__ = ()

    _kind = MapType.SK_STORAGE
    _wrapper = "TypedSkStorage"
    _what = "socket"

    @overload
    def __init__(self: TypedSkStorage[Any], handle: MapHandle) -> None: ...
    @overload
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]
    ) -> None: ...
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V] | None = None
    ) -> None:
        """Wrap ``handle``; the value schema defaults to the map's BTF value type."""
        super().__init__(handle, value=value)

    def _key(self, key: _HasFileno | int, op: str) -> _Key:
        fd = _given_fd(key, "key")
        if fd is None:
            raise _arg_error("key", key, "a socket is named by a socket object or its fd")
        return _Key(fd, False)

    def _put(self, key: _HasFileno | int, value: V, flags: int, op: str) -> None:
        try:
            super()._put(key, value, flags, op)
        except MapError as exc:
            raise _not_a_socket(exc, key) from None

    def __getitem__(self, key: _HasFileno | int) -> V:
        try:
            return super().__getitem__(key)
        except KeyNotFoundError:
            raise
        except MapError as exc:
            raise _not_a_socket(exc, key) from None


def _not_a_socket(exc: MapError, key: object) -> MapError:
    if exc.errno in (_errno.ENOTSOCK, _errno.EBADF):
        return _arg_error("key", key, f"not an open socket ({exc})")  # type: ignore[return-value]
    return exc


# ---------------------------------------------------------------------------- cgroups and inodes


def _open_path(path: str | bytes | os.PathLike[Any], op: str, want_dir: bool) -> int:
    p = os.fsencode(path)
    if b"\0" in p:
        raise _arg_error("key", path, "a path cannot contain NUL")
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if want_dir else 0)
    try:
        return os.open(p, flags)
    except FileNotFoundError:
        raise _PathNotFound(
            _errno.ENOENT, op, f"no such file or directory: {os.fsdecode(p)!r}"
        ) from None
    except NotADirectoryError:
        raise _arg_error("key", path, "not a directory (a cgroup is a directory)") from None
    except OSError as exc:
        raise MapError(exc.errno or _errno.EIO, op, f"open {os.fsdecode(p)!r}: {exc}") from None


def _path_key(key: Any, op: str, want_dir: bool, hint: str) -> _Key:
    """The key of a storage map keyed by a file: a path opened for ``op`` (and
    closed after it), or an fd or file object used as it is."""
    if isinstance(key, str | bytes | os.PathLike):
        return _Key(_open_path(key, op, want_dir), True)
    fd = _given_fd(key, "key")
    if fd is None:
        raise _arg_error("key", key, hint)
    return _Key(fd, False)


class _PathNotFound(MapError, FileNotFoundError):
    """A key path that does not exist (also a FileNotFoundError)."""


class TypedCgroupStorage(_LocalStorage["str | os.PathLike[str] | _HasFileno | int", V]):
    """CGRP_STORAGE: a value per cgroup v2, keyed by its directory (Linux 6.2+).

    ``st["/sys/fs/cgroup/unified/app"]`` opens the directory for the one
    operation and closes it; an fd (or an object with ``fileno()``) of a
    cgroup directory is used as it is. (The older CGROUP_STORAGE map type is
    another thing: storage per attached program, not per cgroup.)

    Raises:
        NotSupportedError: not a CGRP_STORAGE map.
    """

    __slots__ = ()

    _kind = MapType.CGRP_STORAGE
    _wrapper = "TypedCgroupStorage"
    _what = "cgroup"

    @overload
    def __init__(self: TypedCgroupStorage[Any], handle: MapHandle) -> None: ...
    @overload
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]
    ) -> None: ...
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V] | None = None
    ) -> None:
        """Wrap ``handle``; the value schema defaults to the map's BTF value type."""
        super().__init__(handle, value=value)

    def _key(self, key: Any, op: str) -> _Key:
        return _path_key(key, op, True, "a cgroup is named by its directory path or an fd of it")

    def _check(self, exc: MapError, key: object) -> MapError:
        if exc.errno == _errno.EBADF:
            return _arg_error(  # type: ignore[return-value]
                "key", key, "not a cgroup v2 directory (the kernel said EBADF)"
            )
        return exc

    def __getitem__(self, key: Any) -> V:
        try:
            return super().__getitem__(key)
        except KeyNotFoundError:
            raise
        except MapError as exc:
            raise self._check(exc, key) from None

    def _put(self, key: Any, value: V, flags: int, op: str) -> None:
        try:
            super()._put(key, value, flags, op)
        except KeyNotFoundError:
            raise
        except MapError as exc:
            raise self._check(exc, key) from None


class TypedInodeStorage(_LocalStorage["str | os.PathLike[str] | _HasFileno | int", V]):
    """INODE_STORAGE: a value per inode, keyed by a path, a file object or an fd (Linux 5.10+).

    A path is opened read-only for the one operation and closed; a file
    object or an fd is used as it is. The kernel creates inode storage maps
    only when it is built with BPF LSM support; the programs that fill them
    are LSM programs.

    Raises:
        NotSupportedError: not an INODE_STORAGE map.
    """

    __slots__ = ()

    _kind = MapType.INODE_STORAGE
    _wrapper = "TypedInodeStorage"
    _what = "inode"

    @overload
    def __init__(self: TypedInodeStorage[Any], handle: MapHandle) -> None: ...
    @overload
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]
    ) -> None: ...
    def __init__(
        self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V] | None = None
    ) -> None:
        """Wrap ``handle``; the value schema defaults to the map's BTF value type."""
        super().__init__(handle, value=value)

    def _key(self, key: Any, op: str) -> _Key:
        return _path_key(key, op, False, "an inode is named by a path, a file object or an fd")
