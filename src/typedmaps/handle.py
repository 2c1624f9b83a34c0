"""MapHandle: a byte-level BPF map, with libbpf-rs's MapHandle semantics.

A MapHandle owns one map file descriptor and caches the map's name, type
and sizes once, when it is made. Every method checks, in this order, that
the handle is open, that the method fits the map kind (``lookup`` on a
per-CPU map names ``lookup_percpu``), and that keys and values have exactly
the map's sizes; only then does it call libbpf. A bad argument therefore
never reaches the kernel and never changes the map.

Thread safety: methods may be called from several threads at once. Scratch
buffers come from a small per-handle pool (list.pop/append are atomic), and
libbpf releases the GIL during the syscall. close() may race any call from
another thread: the call completes on this map or raises MapClosedError,
and the fd is closed only once no call is inside a syscall with it (the
in-flight accounting of ``_life.py``), so a racing call can never reach a
map that reuses the fd number.

The batch operations (``update_batch``, ``delete_batch``, ``lookup_batch``,
``lookup_and_delete_batch``) and the GET_NEXT_KEY walk (``keys``) are
methods of MapHandle too, inherited from ``HandleBatches`` in
``_handle_batch.py``; this module holds everything else: construction,
lifetime, the checks, single elements, keyless maps, memory, freeze and pins.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Self, TypeAlias

from . import _ffi, _pins
from . import memory as _memory
from ._args import as_bytes, bad, check_bool, check_int, elem_flags, fspath
from ._ffi import NULL, ffi
from ._handle_batch import HandleBatches
from ._life import Lifetime, NoCopy
from .errors import (
    ArgumentError,
    KeyNotFoundError,
    MapClosedError,
    MapError,
    MapPermissionError,
    NotSupportedError,
    PathNotFoundError,
    SizeMismatchError,
    TypedMapsError,
    error_from_errno,
)
from .flags import MapCreateFlags, MapFlags, MapType

__all__ = ["MapHandle", "MapInfo", "num_possible_cpus"]

num_possible_cpus = _ffi.num_possible_cpus

#: What the byte-level methods accept for a key or value; anything but
#: ``bytes`` is copied to ``bytes`` once, before the syscall.
BytesLike: TypeAlias = bytes | bytearray | memoryview

_BPF_F_RDONLY: Final = 1 << 3
_BPF_F_WRONLY: Final = 1 << 4
_LOCK: Final = int(MapFlags.LOCK)
#: The default ``flags``: compared by identity on the hot paths, so anything
#: else (0, another int, a wrong type) takes the checked path.
_ANY: Final = MapFlags.ANY
_U32_MAX: Final = 0xFFFFFFFF
#: Value buffers up to this size are kept per handle for calls made while no
#: other call is in flight (see MapHandle.lookup); bigger ones come from the pool.
_OWN_MAX: Final = 1 << 16
_U64_MAX: Final = 0xFFFFFFFFFFFFFFFF
#: What /proc/self/fd/N links to for each kind of BPF object fd.
_BPF_MAP_FD: Final = "anon_inode:bpf-map"
_FD_KINDS: Final = {
    "anon_inode:bpf-prog": "a BPF program",
    "anon_inode:bpf_link": "a BPF link",
    "anon_inode:bpf-link": "a BPF link",
    "anon_inode:btf": "a BTF object",
}


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the kernel reports about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    name: str
    map_type: MapType
    key_size: int
    value_size: int
    max_entries: int
    map_flags: MapCreateFlags
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int = 0
    map_extra: int = 0
    ifindex: int = 0
    #: Whether the map is frozen (``freeze()``; libbpf freezes ``.rodata`` at
    #: load): user space can no longer write it, through any fd. Read from
    #: /proc/self/fdinfo (Linux 5.2+); False where that says nothing.
    frozen: bool = False


def _fd_frozen(fd: int) -> bool:
    """Whether the map behind ``fd`` is frozen, from its fdinfo ("frozen:\t1")."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb", buffering=0) as f:
            text = f.read(4096)
    except OSError:
        return False
    return b"\nfrozen:\t1" in text


#: Operations that need a writable fd and an unfrozen map, and those that
#: need a readable fd (pop and lookup_and_delete need both).
_WRITES: Final = frozenset(
    {"update", "update_percpu", "delete", "push", "pop", "lookup_and_delete"}
    | {"update_batch", "delete_batch", "lookup_and_delete_batch"}
)
_NOT_READS: Final = frozenset({"update", "update_percpu", "delete", "push"})
_NOT_READS_BATCH: Final = frozenset({"update_batch", "delete_batch"})


def _query_info(fd: int) -> MapInfo:
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    _ffi.check(_ffi.get_lib().bpf_obj_get_info_by_fd(fd, info, size), "info")
    return MapInfo(
        id=info.id,
        name=ffi.string(info.name).decode("utf-8", "replace"),
        map_type=MapType(info.type),
        key_size=info.key_size,
        value_size=info.value_size,
        max_entries=info.max_entries,
        map_flags=MapCreateFlags(info.map_flags),
        btf_id=info.btf_id,
        btf_key_type_id=info.btf_key_type_id,
        btf_value_type_id=info.btf_value_type_id,
        btf_vmlinux_value_type_id=info.btf_vmlinux_value_type_id,
        map_extra=info.map_extra,
        ifindex=info.ifindex,
        frozen=_fd_frozen(fd),
    )


def _map_info_for(fd: int, op: str, *, pinned: bool = False) -> MapInfo:
    """The info of a new fd, after making sure that it is a BPF map.

    BPF_OBJ_GET_INFO_BY_FD also answers for programs, links and BTF objects
    (with their own info struct, which would read as a nonsense map), so the
    kind of fd is checked first, through /proc/self/fd. Does not close ``fd``.

    Args:
        pinned: ``fd`` was opened from a pin, so the error says what is
            pinned there rather than what the fd is.

    Raises:
        MapError: "not a BPF map".
    """
    try:
        target: str | None = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = None  # no /proc: rely on what OBJ_GET_INFO says
    if target is not None and target != _BPF_MAP_FD:
        what = _FD_KINDS.get(target, repr(target))
        if pinned:
            raise MapError(_errno.EINVAL, op, f"not a BPF map: {what} is pinned there")
        raise MapError(_errno.EINVAL, op, f"not a BPF map (the fd is {what})")
    try:
        info = _query_info(fd)
    except MapError as exc:
        # EINVAL from OBJ_GET_INFO on a non-BPF fd: say what it means.
        raise MapError(exc.errno or _errno.EINVAL, op, "not a BPF map") from None
    if info.map_type is MapType.UNSPEC:
        raise MapError(_errno.EINVAL, op, "not a BPF map")
    return info


def _check_pinned_kind(path: bytes, op: str) -> None:
    """Raise the "not a BPF map" MapError if ``path`` pins a program or link.

    Returns when the pin cannot be opened or holds a map.
    """
    fd = _ffi.get_lib().bpf_obj_get(path)
    if fd >= 0:
        try:
            _map_info_for(fd, op, pinned=True)
        finally:
            os.close(fd)


_check_int = check_int


def _create_error(ret: int, op: str) -> MapError:
    """The error for a failed BPF_MAP_CREATE: E2BIG there means "too big", not "full"."""
    err = -ret
    if err in (_errno.EPERM, _errno.EACCES):
        return MapPermissionError(
            err, op, f"{os.strerror(err)} (creating maps needs CAP_BPF or CAP_SYS_ADMIN)"
        )
    if err == _errno.EINVAL:
        return MapError(
            err, op, "the kernel refused this combination of type, sizes and flags (EINVAL)"
        )
    return MapError(err, op, os.strerror(err))


_as_bytes = as_bytes
_elem_flags = elem_flags


class MapHandle(NoCopy, HandleBatches):
    """A byte-level handle to one BPF map; the base of :class:`Map` and the typed maps.

    Make one with :meth:`create`, :meth:`from_pinned_path`, :meth:`from_map_id`
    or :meth:`from_fd`. Use it as a context manager, or call :meth:`close`.

    Example::

        with MapHandle.create(MapType.HASH, key_size=4, value_size=8, max_entries=16) as h:
            h.update(b"\\x01\\0\\0\\0", bytes(8))
            assert h.lookup(b"\\x01\\0\\0\\0") == bytes(8)
    """

    __slots__ = (
        "__weakref__",
        "_c_lookup",
        "_c_update",
        "_calls",
        "_elem_ks",
        "_fast_ks",
        "_info",
        "_inner",
        "_key_size",
        "_kind_error",
        "_lib",
        "_lt",
        "_mem",
        "_ncpus",
        "_own",
        "_owns_fd",
        "_percpu",
        "_pool",
        "_slot",
        "_value_size",
        "_vbuf_size",
        "_vpool",
    )

    # The lifetime of the fd (see _life.py): ``_calls`` is ``_lt.calls``,
    # [fd or a negative state, None * calls in flight], kept in a slot of
    # its own so that the hot paths reach it with one attribute load.
    _lt: Lifetime
    _calls: list[Any]

    def __init__(self, fd: int, *, _owns_fd: bool = True, _info: MapInfo | None = None) -> None:
        """Wrap a map fd this handle now owns. Prefer the ``from_*`` constructors.

        Raises:
            MapError: the fd is not a BPF map.
        """
        self._mem: _memory.MapMemory | None = None
        self._inner: MapInfo | None = None  # ARRAY/HASH_OF_MAPS: the inner template
        self._owns_fd = _owns_fd
        try:
            self._lib = _ffi.get_lib()
            info = _info if _info is not None else _map_info_for(fd, "MapHandle")
        except BaseException:
            if _owns_fd:
                os.close(fd)
            raise
        self._init_fields(info)
        self._lt = Lifetime(fd, self._close_fd(fd) if _owns_fd else None)
        self._calls = self._lt.calls

    @staticmethod
    def _close_fd(fd: int) -> Any:
        def release() -> None:
            try:
                os.close(fd)
            except OSError as exc:
                raise MapError(exc.errno or _errno.EBADF, "close", exc.strerror) from None

        return release

    def _init_fields(self, info: MapInfo) -> None:
        """Everything cached from the map's info: sizes, kind, the hot-path caches."""
        lib = self._lib
        self._info = info
        self._key_size = info.key_size
        self._value_size = info.value_size
        mt = info.map_type
        self._percpu = mt.is_percpu
        if self._percpu:
            self._ncpus = _ffi.num_possible_cpus()
            self._slot = (info.value_size + 7) & ~7
            self._vbuf_size = self._slot * self._ncpus
        else:
            self._ncpus = 1
            self._slot = info.value_size
            self._vbuf_size = info.value_size
        # The one thing lookup()/update() must refuse up front, precomputed.
        self._kind_error: str | None = None
        if self._percpu:
            self._kind_error = "{op}_percpu() must be used for per-CPU maps"
        elif mt.is_keyless:
            self._kind_error = (
                "lookup_bloom_filter()/push() must be used for bloom filters"
                if mt is MapType.BLOOM_FILTER
                else "push()/pop()/peek() must be used for QUEUE and STACK maps"
            )
        self._pool: list[Any] = []
        # Hot-path caches (see lookup()): the two libbpf functions, bound once
        # (a cffi lib attribute costs a dict lookup per call), and value
        # buffers kept with a ready ffi.buffer view of the whole buffer, so a
        # lookup copies out with view[:] instead of building an ffi.buffer
        # each time (the biggest cost after the call itself). A pool, not one
        # buffer: libbpf releases the GIL, so two threads may be inside
        # lookup() on the same handle at once; list.pop/append are atomic.
        self._c_lookup = lib.bpf_map_lookup_elem
        self._c_update = lib.bpf_map_update_elem
        self._vpool: list[tuple[Any, Any]] = []
        # A call that is the only one in flight on this handle uses this
        # buffer (and its view) instead of the pool: with every call
        # registered in _calls, ``len(_calls) == 2`` means no other call can
        # be using it, and none can start using it until this one leaves.
        # With the buffer: its ffi.buffer view (for struct.unpack_from) and
        # the bound tobytes of a memoryview of it, the cheapest copy out
        # (about 10 ns less than view[:]).
        self._own: tuple[Any, Any, Callable[[], bytes]] | None = None
        if self._vbuf_size <= _OWN_MAX:
            buf, view = self._new_vbuf()
            self._own = (buf, view, memoryview(view).tobytes)
        # The key size lookup() and update() accept, or -1 for a map whose
        # kind refuses them: one comparison checks both (_elem_key explains).
        self._elem_ks = -1 if self._kind_error is not None else info.key_size
        # The key size of lookup()'s fast path: -1 also when there is no
        # buffer of the handle's own, so that one comparison rules out both.
        self._fast_ks = -1 if self._own is None else self._elem_ks

    # ------------------------------------------------------------------ constructors

    @classmethod
    def create(
        cls,
        map_type: MapType | int,
        *,
        key_size: int,
        value_size: int,
        max_entries: int,
        name: str | None = None,
        map_flags: int = 0,
        map_extra: int = 0,
        inner_map: MapHandle | None = None,
    ) -> Self:
        """Create a new map in the kernel.

        Args:
            map_type: the kernel map type.
            key_size: the key's size in bytes (0 for QUEUE, STACK and BLOOM_FILTER).
            value_size: the value's size in bytes.
            max_entries: how many elements the map holds.
            name: up to 15 characters of [A-Za-z0-9_.]; the kernel keeps no more.
            map_flags: :class:`MapCreateFlags` (e.g. NO_PREALLOC, required
                for LPM_TRIE).
            map_extra: BLOOM_FILTER: the number of hash functions (low 4 bits).
            inner_map: template map for ARRAY_OF_MAPS / HASH_OF_MAPS.

        Raises:
            CodecError: a size, flag or type number is out of range, or the
                name is not up to 15 characters of [A-Za-z0-9_.]; checked
                before the syscall.
            MapPermissionError: no CAP_BPF / CAP_SYS_ADMIN.
            MapError: the kernel refused the shape (EINVAL, e.g. LPM_TRIE
                without NO_PREALLOC, or max_entries 0), or it is too big
                (E2BIG; a plain MapError, since nothing is full).
        """
        try:
            mt = MapType(_check_int(map_type, "map_type", "create", _U32_MAX))
        except ValueError:
            raise bad("create", "map_type", map_type, "a kernel map type (MapType)") from None
        for what, v in (
            ("key_size", key_size),
            ("value_size", value_size),
            ("max_entries", max_entries),
        ):
            _check_int(v, what, "create", _U32_MAX)
        _check_int(map_flags, "map_flags", "create", _U32_MAX)
        _check_int(map_extra, "map_extra", "create", _U64_MAX)
        bname = b""
        if name is not None and name != "":
            if (
                not isinstance(name, str)
                or len(name) > 15
                or not all(c.isascii() and (c.isalnum() or c in "_.") for c in name)
            ):
                raise bad("create", "name", name, "at most 15 ASCII letters, digits, '_' or '.'")
            bname = name.encode()
        if inner_map is not None and not isinstance(inner_map, MapHandle):
            raise bad("create", "inner_map", inner_map, "a MapHandle (the template map)")
        opts = ffi.new("struct bpf_map_create_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_create_opts")
        opts.map_flags = int(map_flags)
        opts.map_extra = map_extra
        lib = _ffi.get_lib()
        # The template's fd is in flight for the syscall (another thread may close it).
        inner = inner_map._using() if inner_map is not None else contextlib.nullcontext(0)
        with inner as inner_fd:
            opts.inner_map_fd = inner_fd
            fd = lib.bpf_map_create(int(mt), bname or NULL, key_size, value_size, max_entries, opts)
        if fd < 0:
            raise _create_error(fd, f"create {mt.name}")
        h = cls(fd)
        if inner_map is not None:
            h._inner = inner_map._info  # MapOfMaps checks shapes against it
        return h

    @classmethod
    def from_pinned_path(
        cls, path: str | os.PathLike[str], *, readonly: bool = False, writeonly: bool = False
    ) -> Self:
        """Open a map pinned in bpffs.

        Args:
            readonly: ask the kernel for a read-only fd (updates then raise
                MapPermissionError).
            writeonly: a write-only fd (lookups raise MapPermissionError).

        Raises:
            PathNotFoundError: nothing is pinned at ``path`` (also a
                FileNotFoundError, errno ENOENT): no such file ("No such
                file or directory"), or what is there cannot be a pin ("not
                a BPF map": a directory, or a file that is not on bpffs;
                checked before the syscall, whatever the caller's privileges).
            ArgumentError: ``path`` is not a path or contains a NUL byte;
                ``readonly``/``writeonly`` are not bools, or both are True.
            MapError: "not a BPF map: a BPF program is pinned there" (or a
                link), errno EINVAL.
            MapPermissionError: the pin's file mode or the caller's
                capabilities do not allow the requested access.
        """
        p = fspath(path, "path", "from_pinned_path")
        op = f"open pinned {os.fsdecode(p)}"
        check_bool(readonly, "readonly", op)
        check_bool(writeonly, "writeonly", op)
        if readonly and writeonly:
            raise ArgumentError(
                f"{op}: readonly and writeonly exclude each other: pick at most one",
                argument="writeonly",
                value=writeonly,
            )
        _pins.check_open(p, op, "map")
        flags = (_BPF_F_RDONLY if readonly else 0) | (_BPF_F_WRONLY if writeonly else 0)
        if flags:
            get_opts = _ffi.func("bpf_obj_get_opts", op)
            opts = ffi.new("struct bpf_obj_get_opts *")
            opts.sz = ffi.sizeof("struct bpf_obj_get_opts")
            opts.file_flags = flags
            fd = get_opts(p, opts)
        else:
            fd = _ffi.get_lib().bpf_obj_get(p)
        if fd == -_errno.EINVAL and flags:
            # A pinned link refuses read-only and write-only fds with EINVAL:
            # reopen it plainly to say what is pinned there.
            _check_pinned_kind(p, op)
        if fd == -_errno.EACCES and os.path.exists(p) and os.access(p, os.R_OK):
            # The kernel says EACCES for any path that is not a pinned BPF
            # object (a plain file, a bpffs directory); when the file itself
            # is readable, permission is not what went wrong.
            raise MapError(_errno.EACCES, op, "not a BPF map (nothing is pinned there)")
        _ffi.check(fd, op, path=True)
        return cls._from_new_fd(fd, op, pinned=True)

    @classmethod
    def from_map_id(cls, map_id: int) -> Self:
        """Open the map with kernel id ``map_id`` (needs CAP_SYS_ADMIN).

        Raises:
            KeyNotFoundError: no map has this id.
        """
        map_id = _check_int(map_id, "map_id", "from_map_id", _U32_MAX, low=1)
        op = f"open map id {map_id}"
        fd = _ffi.get_lib().bpf_map_get_fd_by_id(map_id)
        if fd == -_errno.ENOENT:
            raise KeyNotFoundError(_errno.ENOENT, op, "no map has this id")
        _ffi.check(fd, op)
        return cls._from_new_fd(fd, op)

    @classmethod
    def from_fd(cls, fd: int) -> Self:
        """Wrap a duplicate of ``fd``; the caller keeps (and closes) its own fd.

        The two fds are independent: closing either leaves the other usable.

        Raises:
            MapError: ``fd`` is not open (EBADF) or not a BPF map.
        """
        fd = _check_int(fd, "fd", "from_fd", 2**31 - 1)
        try:
            dup = os.dup(fd)
        except OSError as exc:
            raise MapError(exc.errno or _errno.EBADF, "from_fd") from None
        return cls._from_new_fd(dup, "from_fd")

    @classmethod
    def _from_new_fd(cls, fd: int, op: str, *, pinned: bool = False) -> Self:
        try:
            info = _map_info_for(fd, op, pinned=pinned)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, _info=info)

    # ------------------------------------------------------------------ attributes

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def map_type(self) -> MapType:
        return self._info.map_type

    @property
    def key_size(self) -> int:
        return self._key_size

    @property
    def value_size(self) -> int:
        return self._value_size

    @property
    def max_entries(self) -> int:
        return self._info.max_entries

    @property
    def map_flags(self) -> MapCreateFlags:
        return self._info.map_flags

    @property
    def id(self) -> int:
        return self._info.id

    @property
    def closed(self) -> bool:
        return bool(self._calls[0] < 0)

    def info(self) -> MapInfo:
        """Ask the kernel again for the map's info (BPF_OBJ_GET_INFO_BY_FD)."""
        with self._using() as fd:
            return _query_info(fd)

    def fileno(self) -> int:
        """The map fd, for select()-style APIs; valid until close().

        The number is borrowed: after close() (from any thread) it may
        belong to something else, so do not keep it past the handle's life.
        """
        return self._open_fd()

    def as_fd(self) -> int:
        """The map fd, borrowed: valid while this handle is open; do not close it."""
        return self._open_fd()

    def _open_fd(self) -> int:
        """The fd, or the error for a handle that cannot be used (closed, or not loaded).

        Only for checks and for handing the number out: a syscall must use
        the fd inside :meth:`_using` (or the inline equivalent), which
        keeps close() from closing it meanwhile.
        """
        fd: int = self._calls[0]
        if fd < 0:
            raise self._unusable()
        return fd

    def _unusable(self) -> TypedMapsError:
        """The error for a call on a handle whose fd is not usable."""
        return MapClosedError(f"{type(self).__name__} {self._info.name!r} is closed")

    @contextlib.contextmanager
    def _using(self) -> Iterator[int]:
        """``with self._using() as fd:`` the fd, registered as in flight for the block."""
        calls = self._calls
        calls.append(None)
        try:
            fd: int = calls[0]
            if fd < 0:
                raise self._unusable()
            yield fd
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the fd (idempotent). The kernel map lives on while pinned or used.

        Safe to call while other threads are inside calls on this handle:
        they finish on this map (or raise MapClosedError), and the fd is
        closed when the last of them leaves its syscall.

        Raises:
            MapError: the fd was already closed behind the handle's back (EBADF).
        """
        lt = getattr(self, "_lt", None)
        if lt is None:  # __init__ failed before the fd was taken over
            return
        self._pool.clear()
        self._vpool.clear()
        if self._mem is not None:
            _memory.release(self)
        lt.close()

    def __enter__(self) -> Self:
        self._open_fd()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lt = getattr(self, "_lt", None)
        if lt is not None and not lt.released:
            if self._owns_fd and lt.value >= 0:
                warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        i = self._info
        fd = self._calls[0]
        state = "closed" if fd < 0 else f"fd={fd}"
        return (
            f"{type(self).__name__}(name={i.name!r}, type={i.map_type.name}, "
            f"key_size={i.key_size}, value_size={i.value_size}, "
            f"max_entries={i.max_entries}, {state})"
        )

    # ------------------------------------------------------------------ checks

    def _key(self, key: object, op: str) -> bytes:
        """Slow path of the key check: convert bytes-likes, or explain the mismatch."""
        b = _as_bytes(key, "key")
        if len(b) != self._key_size:
            raise SizeMismatchError(f"{op}: key", len(b), self._key_size)
        return b

    def _value(self, value: object, op: str) -> bytes:
        b = _as_bytes(value, "value")
        if len(b) != self._value_size:
            raise SizeMismatchError(f"{op}: value", len(b), self._value_size)
        return b

    def _elem_key(self, key: object, op: str) -> bytes:
        """Slow path of lookup()'s and update()'s key check: the map's kind first, then the key."""
        if self._kind_error is not None:
            raise self._wrong_kind(op)
        return self._key(key, op)

    def _wrong_kind(self, op: str) -> NotSupportedError:
        msg = (self._kind_error or "").format(op=op)
        return NotSupportedError(_errno.EINVAL, op, f"{msg} ({self._info.map_type.name})")

    def _need_percpu(self, op: str) -> None:
        if not self._percpu:
            raise NotSupportedError(
                _errno.EINVAL,
                op,
                f"{op}() is for per-CPU maps; {self._info.map_type.name} needs "
                f"{op.removesuffix('_percpu')}()",
            )

    def _need_kind(self, op: str, *kinds: MapType) -> None:
        if self._info.map_type not in kinds:
            names = "/".join(k.name for k in kinds)
            raise NotSupportedError(
                _errno.EINVAL, op, f"{op}() is for {names} maps, not {self._info.map_type.name}"
            )

    def _no_delete(self, op: str) -> NotSupportedError:
        mt = self._info.map_type
        return NotSupportedError(
            _errno.EINVAL,
            op,
            f"{mt.name} elements always exist and cannot be deleted "
            "(write zeroes with update instead)",
        )

    def _need_lock(self, op: str) -> None:
        """LOCK needs a bpf_spin_lock in the value; without BTF there cannot be one."""
        if not self._info.btf_value_type_id:
            raise NotSupportedError(
                _errno.EINVAL,
                op,
                "MapFlags.LOCK needs a map value with a bpf_spin_lock, and this "
                f"{self._info.map_type.name} map has no BTF value type",
            )

    def _lookup_flags(self, flags: int, op: str) -> int:
        f = _elem_flags(flags, op)
        if f & ~_LOCK:
            raise bad(op, "flags", flags, "ANY or LOCK (the only flags a lookup takes)")
        if f:
            self._need_lock(op)
        return f

    def _update_flags(self, flags: int, op: str) -> int:
        f = _elem_flags(flags, op)
        if f & _LOCK:
            self._need_lock(op)
        return f

    def _refusal(self, ret: int, op: str) -> str | None:
        """Error path only: why EPERM/EACCES refused ``op``, or None for the errno's own words.

        The kernel says EPERM both for a fd opened read-only (or write-only)
        and for a frozen map; which one it is decides what the caller can
        do about it, so the message says.
        """
        err = -ret
        if err not in (_errno.EPERM, _errno.EACCES):
            return None
        try:
            with self._using() as fd:
                import fcntl  # the error path only

                mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
                frozen = _fd_frozen(fd)
        except (OSError, TypedMapsError):
            return None  # closed meanwhile: the errno's own words
        flags = int(self._info.map_flags)
        why = None
        if op in _WRITES:
            if flags & _BPF_F_RDONLY:
                why = "the map was created with BPF_F_RDONLY: user space may only read it"
            elif frozen:
                why = (
                    "the map is frozen (freeze(), or a .rodata map): "
                    "no fd can write to it from user space"
                )
            elif mode == os.O_RDONLY:
                why = "this fd is read-only (opened with readonly=True); open a writable one"
        if why is None and op not in _NOT_READS and op not in _NOT_READS_BATCH:
            if flags & _BPF_F_WRONLY:
                why = "the map was created with BPF_F_WRONLY: user space may only write it"
            elif mode == os.O_WRONLY:
                why = "this fd is write-only (opened with writeonly=True); open a readable one"
        return None if why is None else f"{os.strerror(err)}: {why}"

    def _elem_error(self, ret: int, op: str, flags: int) -> MapError:
        """The named error for a failed single-element call (error path only)."""
        err = -ret
        mt = self._info.map_type
        if err == _errno.EINVAL and flags & _LOCK:
            return NotSupportedError(
                err,
                op,
                f"MapFlags.LOCK needs a map value with a bpf_spin_lock; the value of "
                f"{mt.name} map {self._info.name!r} has none (EINVAL)",
            )
        if err == _errno.E2BIG and mt.has_fixed_keys:
            # An array is never "full": E2BIG means the index is past the end.
            return KeyNotFoundError(
                err,
                op,
                f"index out of range: {mt.name} map {self._info.name!r} has "
                f"max_entries={self._info.max_entries} (E2BIG)",
            )
        return error_from_errno(ret, op, detail=self._refusal(ret, op))

    def _buf(self) -> Any:
        try:
            return self._pool.pop()
        except IndexError:
            return ffi.new("char[]", self._vbuf_size or 1)

    def _split_percpu(self, raw: bytes) -> list[bytes]:
        s, n = self._slot, self._value_size
        return [raw[i : i + n] for i in range(0, s * self._ncpus, s)]

    def _join_percpu(self, values: Iterable[BytesLike], op: str) -> bytes:
        if isinstance(values, bytes | bytearray | memoryview | str):
            raise bad(op, "values", values, "an iterable of per-CPU values (one bytes per CPU)")
        try:
            it = iter(values)
        except TypeError:
            raise bad(op, "values", values, "an iterable of per-CPU values") from None
        # Never more than one past the CPU count: an endless iterable must not hang.
        got = list(islice(it, self._ncpus + 1))
        if len(got) != self._ncpus:
            raise SizeMismatchError(
                f"{op}: per-CPU value list",
                len(got),
                self._ncpus,
                "one value per possible CPU (num_possible_cpus())"
                + (", or more" if len(got) > self._ncpus else ""),
            )
        values = got
        pad = bytes(self._slot - self._value_size)
        parts = []
        for i, v in enumerate(values):
            b = _as_bytes(v, f"values[{i}]")
            if len(b) != self._value_size:
                raise SizeMismatchError(f"{op}: values[{i}]", len(b), self._value_size)
            parts.append(b)
            parts.append(pad)
        return b"".join(parts)

    # ------------------------------------------------------------------ single elements

    def lookup(self, key: BytesLike, flags: int = MapFlags.ANY) -> bytes | None:
        """The value stored under ``key``, or None if the key is absent.

        Raises:
            NotSupportedError: a per-CPU map (use :meth:`lookup_percpu`) or a
                keyless map (use peek / lookup_bloom_filter).
            SizeMismatchError: ``key`` is not key_size bytes.
            MapPermissionError: the fd is write-only.
        """
        # The fast path, for what nearly every call is: a bytes key of the
        # right size (which also rules out a map kind that refuses lookup())
        # and the default flags. Those checks need no fd, so they come first,
        # and a call that fails one takes the checked path, which runs them
        # in the documented order (closed handle first). The fd is read
        # after registering as in flight, and used only until the pop in
        # `finally` (see _life.py): close() cannot close it meanwhile.
        if type(key) is bytes and len(key) == self._fast_ks and flags is _ANY:
            calls = self._calls
            calls.append(None)
            try:
                fd = calls[0]
                if len(calls) == 2 and fd >= 0:
                    own = self._own
                    ret = self._c_lookup(fd, key, own[0])  # type: ignore[index]
                    if not ret:
                        return own[2]()  # type: ignore[index]
                elif fd < 0:
                    raise self._unusable()
                else:
                    ret, got = self._lookup_pooled(fd, key, 0)
                    if not ret:
                        return got
            finally:
                calls.pop()
                if calls[0] < 0:
                    self._lt.finish()
            if ret == -_errno.ENOENT:
                return None
            raise self._elem_error(ret, "lookup", 0)
        return self._lookup_checked(key, flags)

    def _lookup_checked(self, key: object, flags: object) -> bytes | None:
        """lookup() for what its fast path does not take: every check, in order."""
        with self._using():
            key = self._elem_key(key, "lookup")
            f = 0 if flags is _ANY else self._lookup_flags(flags, "lookup")  # type: ignore[arg-type]
        return self._lookup_raw(key, f)

    def _new_vbuf(self) -> tuple[Any, Any]:
        """A value buffer of _vbuf_size bytes and an ffi.buffer view of all of it."""
        buf = ffi.new("char[]", self._vbuf_size or 1)
        return buf, ffi.buffer(buf, self._vbuf_size)

    def _lookup_pooled(self, fd: int, key: bytes, flags: int) -> tuple[int, bytes | None]:
        """The lookup call with a buffer of the pool (for a caller already in flight).

        Returns libbpf's return code and, when it is 0, the value bytes
        (the whole buffer: one value, or one slot per CPU).
        """
        pool = self._vpool
        try:
            pair = pool.pop()
        except IndexError:
            pair = self._new_vbuf()
        try:
            if flags:
                ret: int = self._lib.bpf_map_lookup_elem_flags(fd, key, pair[0], flags)
            else:
                ret = self._c_lookup(fd, key, pair[0])
            return ret, (pair[1][:] if ret == 0 else None)
        finally:
            pool.append(pair)

    def _lookup_raw(self, key: bytes, flags: int) -> bytes | None:
        """lookup() after the checks; also the typed layer's entry point.

        ``key`` is exactly key_size real bytes and ``flags`` a checked int
        (0 or LOCK); raises the handle's closed error when it is closed.
        """
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            pair = self._own
            if not flags and pair is not None and len(calls) == 2:
                ret = self._c_lookup(fd, key, pair[0])
                if ret == 0:
                    return pair[2]()
            else:
                ret, got = self._lookup_pooled(fd, key, flags)
                if ret == 0:
                    return got
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret == -_errno.ENOENT:
            return None
        raise self._elem_error(ret, "lookup", flags)

    def lookup_percpu(self, key: BytesLike, flags: int = MapFlags.ANY) -> list[bytes] | None:
        """One value per possible CPU for ``key``, or None if the key is absent.

        Returns:
            :func:`num_possible_cpus` values of value_size bytes, CPU 0 first
            (the kernel's per-CPU slot padding is cut off).

        Raises:
            NotSupportedError: the map is not per-CPU (use :meth:`lookup`).
            SizeMismatchError: ``key`` is not key_size bytes.
            MapPermissionError: the fd is write-only.
        """
        # Written like lookup(): inline checks, a pooled buffer with a ready
        # view, the bound libbpf function (flags take the general call).
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            if not self._percpu:
                self._need_percpu("lookup_percpu")
            if type(key) is not bytes or len(key) != self._key_size:
                key = self._key(key, "lookup_percpu")
            flags = 0 if flags is _ANY else self._lookup_flags(flags, "lookup_percpu")
            pair = self._own
            if not flags and pair is not None and len(calls) == 2:
                ret = self._c_lookup(fd, key, pair[0])
                raw = pair[2]() if ret == 0 else None
            else:
                ret, raw = self._lookup_pooled(fd, key, flags)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if raw is not None:
            s, n = self._slot, self._value_size
            return [raw[i : i + n] for i in range(0, self._vbuf_size, s)]
        if ret == -_errno.ENOENT:
            return None
        raise self._elem_error(ret, "lookup_percpu", flags)

    def update(self, key: BytesLike, value: BytesLike, flags: int = MapFlags.ANY) -> None:
        """Store ``value`` under ``key``.

        Args:
            flags: ANY (insert or replace), NO_EXIST (insert only), EXIST
                (replace only), optionally with LOCK.

        Raises:
            KeyExistsError: NO_EXIST and the key is present.
            KeyNotFoundError: EXIST and the key is absent; or an array index
                out of range.
            MapFullError: no room left (E2BIG).
            MapPermissionError: the map is frozen or the fd read-only.
            NotSupportedError: per-CPU map (use :meth:`update_percpu`) or keyless map.
            SizeMismatchError: key or value of the wrong size.
        """
        # The body of _update_raw(), inlined: one Python call less per update.
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            if type(key) is not bytes or len(key) != self._elem_ks:
                key = self._elem_key(key, "update")
            if type(value) is not bytes or len(value) != self._value_size:
                value = self._value(value, "update")
            flags = 0 if flags is _ANY else self._update_flags(flags, "update")
            ret = self._c_update(fd, key, value, flags)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret:
            raise self._elem_error(ret, "update", flags)

    def _update_raw(self, key: bytes, value: bytes, flags: int) -> None:
        """update() after the checks; the typed layer's entry point.

        ``key`` and ``value`` are real bytes of the map's sizes; ``flags``
        an int, checked here unless 0.
        """
        if flags:
            flags = self._update_flags(flags, "update")
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            ret = self._c_update(fd, key, value, flags)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret:
            raise self._elem_error(ret, "update", flags)

    def update_percpu(
        self, key: BytesLike, values: Iterable[BytesLike], flags: int = MapFlags.ANY
    ) -> None:
        """Store one value per possible CPU under ``key``.

        Each value goes into a slot of round_up(value_size, 8) bytes; the
        padding is written as zeroes.

        Args:
            values: exactly :func:`num_possible_cpus` values (any iterable;
                CPU 0 first) of value_size bytes each.
            flags: ANY, NO_EXIST or EXIST, as for :meth:`update`.

        Raises:
            SizeMismatchError: wrong number of values, or a value of the wrong
                size (``.what`` names the list or ``values[i]``).
            NotSupportedError: the map is not per-CPU (use :meth:`update`).
            KeyExistsError, KeyNotFoundError, MapFullError, MapPermissionError: as
                for :meth:`update`.
        """
        op = "update_percpu"
        self._open_fd()
        self._need_percpu(op)
        key = self._key(key, op)
        raw = self._join_percpu(values, op)
        flags = 0 if flags is _ANY else self._update_flags(flags, op)
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            ret = self._lib.bpf_map_update_elem(fd, key, raw, flags)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret:
            raise self._elem_error(ret, op, flags)

    def delete(self, key: BytesLike) -> None:
        """Remove ``key``.

        Raises:
            KeyNotFoundError: the key is absent (also a KeyError).
            NotSupportedError: ARRAY-like and keyless maps cannot delete;
                checked before the syscall.
            MapPermissionError: the map is frozen or the fd read-only.
        """
        self._open_fd()
        mt = self._info.map_type
        if mt.is_keyless:
            raise self._wrong_kind("delete")
        if mt.has_fixed_keys:
            raise self._no_delete("delete")
        key = self._key(key, "delete")
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            ret = self._lib.bpf_map_delete_elem(fd, key)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret:
            raise error_from_errno(
                ret, "delete", einval_unsupported=True, detail=self._refusal(ret, "delete")
            )

    def lookup_and_delete(self, key: BytesLike) -> bytes | list[bytes] | None:
        """Remove ``key`` and return its value (a per-CPU list on per-CPU maps).

        Returns None when the key is absent. On QUEUE and STACK use :meth:`pop`.
        Needs Linux 5.14 for hash maps.

        Raises:
            NotSupportedError: the map type cannot do it: ARRAY-like maps
                (checked before the syscall), LPM_TRIE and others (ENOTSUPP
                from the kernel); keyless maps (use pop).
            MapPermissionError: the map is frozen or the fd read-only.
        """
        self._open_fd()
        mt = self._info.map_type
        if mt.is_keyless:
            raise self._wrong_kind("lookup_and_delete")
        if mt.has_fixed_keys:
            raise self._no_delete("lookup_and_delete")
        key = self._key(key, "lookup_and_delete")
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            buf = self._buf()
            ret = self._lib.bpf_map_lookup_and_delete_elem(fd, key, buf)
            raw = ffi.buffer(buf, self._vbuf_size)[:] if ret == 0 else b""
            self._pool.append(buf)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret == 0:
            return self._split_percpu(raw) if self._percpu else raw
        if ret == -_errno.ENOENT:
            return None
        raise error_from_errno(
            ret,
            "lookup_and_delete",
            einval_unsupported=True,
            detail=self._refusal(ret, "lookup_and_delete"),
        )

    # ------------------------------------------------------------------ keyless maps

    def push(self, value: BytesLike, flags: int = MapFlags.ANY) -> None:
        """QUEUE/STACK: add ``value``; BLOOM_FILTER: add ``value`` to the set.

        Args:
            flags: for QUEUE/STACK, ``MapFlags.EXIST`` overwrites the oldest
                element when full (BPF_EXIST); otherwise a full map raises.
                BLOOM_FILTER takes ANY only.

        Raises:
            MapFullError: the queue or stack is full (E2BIG).
            CodecError: a flag the map kind does not take (before the syscall).
            MapPermissionError: the map is frozen or the fd read-only.
        """
        op = "push"
        self._open_fd()
        mt = self._info.map_type
        self._need_kind(op, MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER)
        value = self._value(value, op)
        if flags is _ANY:
            flags = 0
        else:
            f = _elem_flags(flags, op)
            if f and (mt is MapType.BLOOM_FILTER or f & ~int(MapFlags.EXIST)):
                allowed = "ANY" if mt is MapType.BLOOM_FILTER else "ANY or EXIST"
                raise bad(op, "flags", flags, f"{allowed} for {mt.name} maps")
            flags = f
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            ret = self._lib.bpf_map_update_elem(fd, NULL, value, flags)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret:
            raise error_from_errno(ret, op, detail=self._refusal(ret, op))

    def pop(self) -> bytes | None:
        """QUEUE/STACK: remove and return the next value, or None when empty."""
        self._open_fd()
        self._need_kind("pop", MapType.QUEUE, MapType.STACK)
        return self._keyless_call(self._lib.bpf_map_lookup_and_delete_elem, "pop")

    def peek(self) -> bytes | None:
        """QUEUE/STACK: the next value without removing it, or None when empty."""
        self._open_fd()
        self._need_kind("peek", MapType.QUEUE, MapType.STACK)
        return self._keyless_call(self._lib.bpf_map_lookup_elem, "peek")

    def _keyless_call(self, call: Any, op: str) -> bytes | None:
        """pop/peek: ``call(fd, NULL, buf)`` with the fd in flight; the value or None."""
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            buf = self._buf()
            ret = call(fd, NULL, buf)
            out: bytes = ffi.buffer(buf, self._value_size)[:] if ret == 0 else b""
            self._pool.append(buf)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret == 0:
            return out
        if ret == -_errno.ENOENT:
            return None
        raise error_from_errno(ret, op, detail=self._refusal(ret, op))

    def lookup_bloom_filter(self, value: BytesLike) -> bool:
        """BLOOM_FILTER: whether ``value`` may be in the set (no false negatives)."""
        self._open_fd()
        self._need_kind("lookup_bloom_filter", MapType.BLOOM_FILTER)
        value = self._value(value, "lookup_bloom_filter")
        calls = self._calls
        calls.append(None)
        try:
            fd = calls[0]
            if fd < 0:
                raise self._unusable()
            ret = self._lib.bpf_map_lookup_elem(fd, NULL, value)
        finally:
            calls.pop()
            if calls[0] < 0:
                self._lt.finish()
        if ret == 0:
            return True
        if ret == -_errno.ENOENT:
            return False
        raise error_from_errno(ret, "lookup_bloom_filter")

    # ------------------------------------------------------------------ memory

    def memory(self, *, writable: bool | None = None) -> memoryview:
        """The map's memory, mapped into this process: a BPF_F_MMAPABLE ARRAY (Linux 5.5+).

        Reads and writes of the view are plain memory accesses, no syscall,
        and share the pages BPF programs use: each side sees the other's
        stores at once. The view is flat (format ``"B"``) and holds
        ``max_entries * stride`` bytes, where ``stride`` is
        round_up(value_size, 8): element ``i`` is
        ``view[i * stride : i * stride + value_size]``, and the bytes after
        it up to the next element are padding.

        The mapping is made once per handle and shared by every view. A
        view never dangles: after :meth:`close`, exported views keep the
        pages mapped until they are released. The kernel refuses to
        :meth:`freeze` a map while a writable view exists.

        Args:
            writable: None (default): writable when the kernel allows it,
                else read-only, as for a frozen map (``.rodata``) or a
                ``BPF_F_RDONLY_PROG`` map; the view's
                ``readonly`` attribute says which, and the reason is
                logged at INFO on the ``typedmaps`` logger. True: writable
                or :class:`MapPermissionError`. False: a read-only view.

        Raises:
            NotSupportedError: the map is not an ARRAY created with
                ``MapCreateFlags.MMAPABLE`` (before any syscall), or the kernel
                cannot map it (a value with a spin lock or timer).
            MapPermissionError: a writable view was required and refused,
                or the fd is read-only or write-only (the kernel maps a map
                only through a read-write fd).

        Example::

            with MapHandle.create(MapType.ARRAY, key_size=4, value_size=8,
                                  max_entries=4, map_flags=MapCreateFlags.MMAPABLE) as h:
                mem = h.memory()
                mem[8:16] = (5).to_bytes(8, "little")   # element 1, no syscall
                assert h.lookup((1).to_bytes(4, "little")) == mem[8:16]
                mem.release()
        """
        return _memory.handle_memory(self, writable)

    # ------------------------------------------------------------------ freeze, pin

    def freeze(self) -> None:
        """Make the map read-only for user space from now on (Linux 5.2+).

        An idle writable :meth:`memory` mapping is dropped first (the kernel
        refuses to freeze a map mapped writable).

        Raises:
            MapPermissionError: later updates and deletes from user space.
            MapError: EBUSY, while a writable memory() view is still in use.
        """
        self._open_fd()
        _memory.before_freeze(self)
        with self._using() as fd:
            ret = self._lib.bpf_map_freeze(fd)
        _ffi.check(ret, "freeze", einval_unsupported=True)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the map at ``path`` in bpffs, so it outlives this process.

        The last path component may not contain a dot (bpffs refuses it).

        Raises:
            ArgumentError: the path is not a path, contains a NUL byte, or its
                name contains a dot (checked before the syscall).
            KeyExistsError: something is pinned there already (EEXIST).
            PathNotFoundError: the directory does not exist (ENOENT; also a
                FileNotFoundError).
            MapPermissionError: the directory is not on bpffs (EPERM), or no
                privilege.
        """
        self._open_fd()
        p = fspath(path, "path", "pin")
        op = f"pin {os.fsdecode(p)}"
        if b"." in os.path.basename(p):
            raise ArgumentError(
                f"{op}: bpffs refuses names that contain a dot", argument="path", value=path
            )
        with self._using() as fd:
            ret = self._lib.bpf_obj_pin(fd, p)
        if ret:
            err = -ret
            if err == _errno.ENOENT:
                raise PathNotFoundError(err, op, "the directory does not exist")
            detail = os.strerror(err)
            if err == _errno.EPERM:
                detail += " (is the directory on a bpffs mount, e.g. /sys/fs/bpf?)"
            raise error_from_errno(err, op, detail=detail)

    def unpin(self, path: str | os.PathLike[str]) -> None:
        """Remove the pin of this map at ``path`` (the map lives on while other fds hold it).

        Only a pin of this very map on a bpffs mount is removed: the path is
        checked first (not a symlink or directory, on bpffs, a pinned map
        with this map's id), so a wrong path never deletes another file.

        Raises:
            PathNotFoundError: nothing is pinned there (also a FileNotFoundError).
            ArgumentError: the path is not a BPF pin (a file outside bpffs, a
                directory, a symlink), a pinned program or link, or another
                map's pin; or it contains a NUL byte.
        """
        self._open_fd()
        p = fspath(path, "path", "unpin")
        mine = self.id

        def same_map(fd: int) -> str | None:
            other = _query_info(fd).id
            return (
                None
                if other == mine
                else f"is the pin of map id {other}, not of this map (id {mine})"
            )

        _pins.unpin(p, f"unpin {os.fsdecode(p)}", "map", same_map)


def unpin_path(path: str | os.PathLike[str], want: str | None = None) -> None:
    """Remove a bpffs pin (of kind ``want``: "map", "program", "link"), with typedmaps errors.

    The path is checked first (not a symlink or directory, on bpffs, a BPF
    object of the kind asked for): nothing else is ever removed.

    Raises:
        PathNotFoundError: nothing is pinned there (also a FileNotFoundError).
        ArgumentError: the path is not such a pin, or contains a NUL byte.
    """
    p = fspath(path, "path", "unpin")
    _pins.unpin(p, f"unpin {os.fsdecode(p)}", want)
