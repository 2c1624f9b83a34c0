"""MapHandle: a byte-level BPF map, with libbpf-rs's MapHandle semantics.

A MapHandle owns one map file descriptor and caches the map's name, type
and sizes once, when it is made. Every method checks, in this order, that
the handle is open, that the method fits the map kind (``lookup`` on a
per-CPU map names ``lookup_percpu``), and that keys and values have exactly
the map's sizes; only then does it call libbpf. A bad argument therefore
never reaches the kernel and never changes the map.

Thread safety: methods may be called from several threads at once. Scratch
buffers come from a small per-handle pool (list.pop/append are atomic), and
libbpf releases the GIL during the syscall. close() while another thread is
inside a call on the same handle is the caller's race to avoid, as with any
file descriptor.
"""

from __future__ import annotations

import errno as _errno
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from . import _ffi
from ._ffi import NULL, ffi
from .errors import (
    BatchError,
    CodecError,
    IterationAbortedError,
    MapClosedError,
    MapError,
    NotSupportedError,
    SizeMismatchError,
    error_from_errno,
)
from .flags import MapCreateFlags, MapFlags, MapType

__all__ = ["MapHandle", "MapInfo", "num_possible_cpus"]

num_possible_cpus = _ffi.num_possible_cpus

_BPF_F_RDONLY: Final = 1 << 3
_BPF_F_WRONLY: Final = 1 << 4
_ELEM_FLAGS: Final = int(MapFlags.NO_EXIST | MapFlags.EXIST | MapFlags.LOCK)
#: Default batch size for lookup_batch and friends: bounded memory for huge maps.
DEFAULT_BATCH: Final = 4096
_BATCH_FAIL_FAST: Final = frozenset(
    {_errno.EINVAL, _errno.EOPNOTSUPP, 524, _errno.EPERM, _errno.EACCES}
)


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
    )


def _elem_flags(flags: int, operation: str) -> int:
    f = int(flags)
    if f < 0 or f & ~_ELEM_FLAGS:
        raise CodecError("flags", flags, f"{operation}: only ANY, NO_EXIST, EXIST and LOCK apply")
    if f & MapFlags.NO_EXIST and f & MapFlags.EXIST:
        raise CodecError("flags", flags, f"{operation}: NO_EXIST and EXIST exclude each other")
    return f


def _as_bytes(obj: object, what: str) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, bytearray | memoryview):
        return bytes(obj)
    raise CodecError(what, obj, f"expected a bytes-like object, got {type(obj).__name__}")


class MapHandle:
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
        "_fd",
        "_info",
        "_key_size",
        "_kind_error",
        "_lib",
        "_ncpus",
        "_owns_fd",
        "_percpu",
        "_pool",
        "_slot",
        "_value_size",
        "_vbuf_size",
    )

    _fd: int

    def __init__(self, fd: int, *, _owns_fd: bool = True, _info: MapInfo | None = None) -> None:
        """Wrap a map fd this handle now owns. Prefer the ``from_*`` constructors.

        Raises:
            MapError: the fd is not a BPF map.
        """
        self._fd = -1
        self._owns_fd = _owns_fd
        lib = _ffi.get_lib()
        try:
            info = _info if _info is not None else _query_info(fd)
        except MapError:
            if _owns_fd:
                os.close(fd)
            raise
        self._lib = lib
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
        self._fd = fd

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
            key_size, value_size, max_entries: the map's shape (key_size 0 for
                QUEUE, STACK and BLOOM_FILTER).
            name: up to 15 characters of [A-Za-z0-9_.]; the kernel keeps no more.
            map_flags: :class:`MapCreateFlags` (e.g. NO_PREALLOC, required
                for LPM_TRIE).
            map_extra: BLOOM_FILTER: the number of hash functions (low 4 bits).
            inner_map: template map for ARRAY_OF_MAPS / HASH_OF_MAPS.

        Raises:
            CodecError: a size is negative or the name is too long.
            MapError: the kernel refused (EINVAL for an unsupported shape,
                MapPermissionError without CAP_BPF).
        """
        mt = MapType(map_type)
        for what, v in (
            ("key_size", key_size),
            ("value_size", value_size),
            ("max_entries", max_entries),
        ):
            if not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
                raise CodecError(what, v, "must be an integer in [0, 2**32)")
        bname = b""
        if name:
            bname = name.encode()
            if len(bname) > 15 or not all(c.isalnum() or c in "_." for c in name):
                raise CodecError("name", name, "at most 15 ASCII letters, digits, '_' or '.'")
        opts = ffi.new("struct bpf_map_create_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_create_opts")
        opts.map_flags = int(map_flags)
        opts.map_extra = map_extra
        if inner_map is not None:
            opts.inner_map_fd = inner_map.fileno()
        lib = _ffi.get_lib()
        fd = lib.bpf_map_create(int(mt), bname or NULL, key_size, value_size, max_entries, opts)
        _ffi.check(fd, f"create {mt.name}")
        return cls(fd)

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
            KeyNotFoundError: nothing is pinned at ``path`` (ENOENT).
            MapError: the path is not a map, or other kernel errors.
        """
        if readonly and writeonly:
            raise CodecError("readonly/writeonly", (readonly, writeonly), "pick at most one")
        p = os.fsencode(path)
        op = f"open pinned {os.fsdecode(p)}"
        flags = (_BPF_F_RDONLY if readonly else 0) | (_BPF_F_WRONLY if writeonly else 0)
        if flags:
            get_opts = _ffi.func("bpf_obj_get_opts", op)
            opts = ffi.new("struct bpf_obj_get_opts *")
            opts.sz = ffi.sizeof("struct bpf_obj_get_opts")
            opts.file_flags = flags
            fd = get_opts(p, opts)
        else:
            fd = _ffi.get_lib().bpf_obj_get(p)
        _ffi.check(fd, op, path=True)
        return cls._from_new_fd(fd, op)

    @classmethod
    def from_map_id(cls, map_id: int) -> Self:
        """Open the map with kernel id ``map_id`` (needs CAP_SYS_ADMIN).

        Raises:
            KeyNotFoundError: no map has this id.
        """
        if not isinstance(map_id, int) or not 0 < map_id <= 0xFFFFFFFF:
            raise CodecError("map_id", map_id, "must be a positive 32-bit integer")
        op = f"open map id {map_id}"
        fd = _ffi.check(_ffi.get_lib().bpf_map_get_fd_by_id(map_id), op)
        return cls._from_new_fd(fd, op)

    @classmethod
    def from_fd(cls, fd: int) -> Self:
        """Wrap a duplicate of ``fd``; the caller keeps (and closes) its own fd."""
        if not isinstance(fd, int) or fd < 0:
            raise CodecError("fd", fd, "must be a non-negative integer")
        try:
            dup = os.dup(fd)
        except OSError as exc:
            raise MapError(exc.errno or _errno.EBADF, "from_fd") from None
        return cls._from_new_fd(dup, "from_fd")

    @classmethod
    def _from_new_fd(cls, fd: int, op: str) -> Self:
        try:
            info = _query_info(fd)
        except MapError as exc:
            os.close(fd)
            # EINVAL from OBJ_GET_INFO on a non-map fd: say what it means.
            raise MapError(exc.errno or _errno.EINVAL, op, "not a BPF map") from None
        if info.map_type is MapType.UNSPEC:
            os.close(fd)
            raise MapError(_errno.EINVAL, op, "not a BPF map")
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
        return self._fd < 0

    def info(self) -> MapInfo:
        """Ask the kernel again for the map's info (BPF_OBJ_GET_INFO_BY_FD)."""
        return _query_info(self._open_fd())

    def fileno(self) -> int:
        """The map fd, for select()-style APIs; valid until close()."""
        return self._open_fd()

    def as_fd(self) -> int:
        """The map fd, borrowed: valid while this handle is open; do not close it."""
        return self._open_fd()

    def _open_fd(self) -> int:
        fd = self._fd
        if fd < 0:
            raise MapClosedError(f"{type(self).__name__} {self._info.name!r} is closed")
        return fd

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the fd (idempotent). The kernel map lives on while pinned or used."""
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            self._pool.clear()
            if self._owns_fd:
                os.close(fd)

    def _detach(self) -> None:
        """Mark closed without closing: the fd belongs to someone else (libbpf)."""
        self._owns_fd = False
        self.close()

    def __enter__(self) -> Self:
        self._open_fd()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            if self._owns_fd:
                warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        i = self._info
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
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

    def _buf(self) -> Any:
        try:
            return self._pool.pop()
        except IndexError:
            return ffi.new("char[]", self._vbuf_size or 1)

    def _split_percpu(self, raw: bytes) -> list[bytes]:
        s, n = self._slot, self._value_size
        return [raw[i : i + n] for i in range(0, s * self._ncpus, s)]

    def _join_percpu(self, values: Sequence[bytes], op: str) -> bytes:
        if isinstance(values, bytes | bytearray | memoryview | str):
            raise CodecError("values", values, f"{op}: expected a sequence of per-CPU values")
        if len(values) != self._ncpus:
            raise SizeMismatchError(
                f"{op}: per-CPU value list",
                len(values),
                self._ncpus,
                "one value per possible CPU (num_possible_cpus())",
            )
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

    def lookup(self, key: bytes, flags: int = MapFlags.ANY) -> bytes | None:
        """The value stored under ``key``, or None if the key is absent.

        Raises:
            NotSupportedError: a per-CPU map (use :meth:`lookup_percpu`) or a
                keyless map (use peek / lookup_bloom_filter).
            SizeMismatchError: ``key`` is not key_size bytes.
            MapPermissionError: the fd is write-only.
        """
        fd = self._fd
        if fd < 0:
            self._open_fd()
        if self._kind_error is not None:
            raise self._wrong_kind("lookup")
        if key.__class__ is not bytes or len(key) != self._key_size:
            key = self._key(key, "lookup")
        return self._lookup_raw(fd, key, flags)

    def _lookup_raw(self, fd: int, key: bytes, flags: int) -> bytes | None:
        """lookup() after the checks; also the typed layer's entry point."""
        pool = self._pool
        try:
            buf = pool.pop()
        except IndexError:
            buf = ffi.new("char[]", self._vbuf_size or 1)
        if flags:
            ret = self._lib.bpf_map_lookup_elem_flags(fd, key, buf, _elem_flags(flags, "lookup"))
        else:
            ret = self._lib.bpf_map_lookup_elem(fd, key, buf)
        if ret == 0:
            out: bytes = ffi.buffer(buf, self._vbuf_size)[:]
            pool.append(buf)
            return out
        pool.append(buf)
        if ret == -_errno.ENOENT:
            return None
        raise error_from_errno(ret, "lookup")

    def lookup_percpu(self, key: bytes, flags: int = MapFlags.ANY) -> list[bytes] | None:
        """One value per possible CPU for ``key``, or None if the key is absent.

        Raises:
            NotSupportedError: the map is not per-CPU (use :meth:`lookup`).
            SizeMismatchError: ``key`` is not key_size bytes.
        """
        fd = self._open_fd()
        self._need_percpu("lookup_percpu")
        key = self._key(key, "lookup_percpu")
        raw = self._lookup_raw(fd, key, flags)
        return None if raw is None else self._split_percpu(raw)

    def update(self, key: bytes, value: bytes, flags: int = MapFlags.ANY) -> None:
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
        fd = self._fd
        if fd < 0:
            self._open_fd()
        if self._kind_error is not None:
            raise self._wrong_kind("update")
        if key.__class__ is not bytes or len(key) != self._key_size:
            key = self._key(key, "update")
        if value.__class__ is not bytes or len(value) != self._value_size:
            value = self._value(value, "update")
        self._update_raw(fd, key, value, flags)

    def _update_raw(self, fd: int, key: bytes, value: bytes, flags: int) -> None:
        if flags:
            flags = _elem_flags(flags, "update")
        ret = self._lib.bpf_map_update_elem(fd, key, value, flags)
        if ret:
            raise error_from_errno(ret, "update")

    def update_percpu(self, key: bytes, values: Sequence[bytes], flags: int = MapFlags.ANY) -> None:
        """Store one value per possible CPU under ``key``.

        Args:
            values: exactly :func:`num_possible_cpus` values of value_size bytes.

        Raises:
            SizeMismatchError: wrong number of values, or a value of the wrong size.
            NotSupportedError: the map is not per-CPU.
        """
        fd = self._open_fd()
        self._need_percpu("update_percpu")
        key = self._key(key, "update_percpu")
        raw = self._join_percpu(values, "update_percpu")
        self._update_raw(fd, key, raw, flags)

    def delete(self, key: bytes) -> None:
        """Remove ``key``.

        Raises:
            KeyNotFoundError: the key is absent (also a KeyError).
            NotSupportedError: ARRAY-like and keyless maps cannot delete (EINVAL).
        """
        fd = self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind("delete")
        key = self._key(key, "delete")
        ret = self._lib.bpf_map_delete_elem(fd, key)
        if ret:
            raise error_from_errno(ret, "delete", einval_unsupported=True)

    def lookup_and_delete(self, key: bytes) -> bytes | list[bytes] | None:
        """Remove ``key`` and return its value (a per-CPU list on per-CPU maps).

        Returns None when the key is absent. On QUEUE and STACK use :meth:`pop`.
        Needs Linux 5.14 for hash maps.

        Raises:
            NotSupportedError: the map type cannot do it (ARRAY, LPM_TRIE, ...).
        """
        fd = self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind("lookup_and_delete")
        key = self._key(key, "lookup_and_delete")
        buf = self._buf()
        ret = self._lib.bpf_map_lookup_and_delete_elem(fd, key, buf)
        if ret == 0:
            raw = ffi.buffer(buf, self._vbuf_size)[:]
            self._pool.append(buf)
            return self._split_percpu(raw) if self._percpu else raw
        self._pool.append(buf)
        if ret == -_errno.ENOENT:
            return None
        raise error_from_errno(ret, "lookup_and_delete", einval_unsupported=True)

    # ------------------------------------------------------------------ keyless maps

    def push(self, value: bytes, flags: int = MapFlags.ANY) -> None:
        """QUEUE/STACK: add ``value``; BLOOM_FILTER: add ``value`` to the set.

        Args:
            flags: for QUEUE/STACK, ``MapFlags.EXIST`` overwrites the oldest
                element when full (BPF_EXIST); otherwise a full map raises.

        Raises:
            MapFullError: the queue or stack is full (E2BIG).
        """
        fd = self._open_fd()
        self._need_kind("push", MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER)
        value = self._value(value, "push")
        self._update_raw(fd, NULL, value, flags)

    def pop(self) -> bytes | None:
        """QUEUE/STACK: remove and return the next value, or None when empty."""
        fd = self._open_fd()
        self._need_kind("pop", MapType.QUEUE, MapType.STACK)
        buf = self._buf()
        ret = self._lib.bpf_map_lookup_and_delete_elem(fd, NULL, buf)
        return self._keyless_result(ret, buf, "pop")

    def peek(self) -> bytes | None:
        """QUEUE/STACK: the next value without removing it, or None when empty."""
        fd = self._open_fd()
        self._need_kind("peek", MapType.QUEUE, MapType.STACK)
        buf = self._buf()
        ret = self._lib.bpf_map_lookup_elem(fd, NULL, buf)
        return self._keyless_result(ret, buf, "peek")

    def _keyless_result(self, ret: int, buf: Any, op: str) -> bytes | None:
        try:
            if ret == 0:
                out: bytes = ffi.buffer(buf, self._value_size)[:]
                return out
            if ret == -_errno.ENOENT:
                return None
            raise error_from_errno(ret, op)
        finally:
            self._pool.append(buf)

    def lookup_bloom_filter(self, value: bytes) -> bool:
        """BLOOM_FILTER: whether ``value`` may be in the set (no false negatives)."""
        fd = self._open_fd()
        self._need_kind("lookup_bloom_filter", MapType.BLOOM_FILTER)
        value = self._value(value, "lookup_bloom_filter")
        ret = self._lib.bpf_map_lookup_elem(fd, NULL, value)
        if ret == 0:
            return True
        if ret == -_errno.ENOENT:
            return False
        raise error_from_errno(ret, "lookup_bloom_filter")

    # ------------------------------------------------------------------ batches

    def _batch_opts(self, elem_flags: int, flags: int, op: str) -> Any:
        opts = ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
        opts.elem_flags = _elem_flags(elem_flags, op)
        if int(flags) < 0:
            raise CodecError("flags", flags, f"{op}: must be non-negative")
        opts.flags = int(flags)
        return opts

    def _check_batch_arg(self, data: object, count: int, unit: int, what: str, op: str) -> bytes:
        b = _as_bytes(data, what)
        if len(b) != count * unit:
            raise SizeMismatchError(
                f"{op}: {what} buffer",
                len(b),
                count * unit,
                f"{count} element(s) of {unit} bytes",
            )
        return b

    def _batch_count(self, count: int, op: str) -> int:
        if not isinstance(count, int) or count < 0 or count > 0xFFFFFFFF:
            raise CodecError("count", count, f"{op}: must be an integer in [0, 2**32)")
        return count

    def update_batch(
        self,
        keys: bytes,
        values: bytes,
        count: int,
        elem_flags: int = MapFlags.ANY,
        flags: int = 0,
    ) -> int:
        """Update ``count`` elements in one syscall (Linux 5.6+).

        Args:
            keys: ``count * key_size`` bytes, keys back to back.
            values: ``count * value_size`` bytes; on per-CPU maps
                ``count * num_possible_cpus() * round_up(value_size, 8)``.
            elem_flags: ANY / NO_EXIST / EXIST (and LOCK), for every element.

        Returns:
            How many elements were applied (== count).

        Raises:
            BatchError: the kernel stopped part-way; ``.processed`` says how far.
                The instance is also the named error of its errno (e.g. a
                KeyExistsError), so either can be caught.
            SizeMismatchError: the buffers do not hold ``count`` elements.
        """
        op = "update_batch"
        fd = self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind(op)
        count = self._batch_count(count, op)
        kb = self._check_batch_arg(keys, count, self._key_size, "keys", op)
        vb = self._check_batch_arg(values, count, self._vbuf_size, "values", op)
        opts = self._batch_opts(elem_flags, flags, op)
        if count == 0:
            return 0
        n = ffi.new("__u32 *", count)
        ret = self._lib.bpf_map_update_batch(fd, kb, vb, n, opts)
        if ret:
            raise _batch_error(ret, op, int(n[0]) if ret != -_errno.EFAULT else 0)
        return int(n[0])

    def delete_batch(
        self, keys: bytes, count: int, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> int:
        """Delete ``count`` keys in one syscall (Linux 5.6+).

        Returns:
            How many were deleted (== count).

        Raises:
            BatchError: stopped part-way (a missing key is ENOENT: also a
                KeyNotFoundError); ``.processed`` keys were deleted.
            NotSupportedError: ARRAY maps cannot delete.
        """
        op = "delete_batch"
        fd = self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind(op)
        count = self._batch_count(count, op)
        kb = self._check_batch_arg(keys, count, self._key_size, "keys", op)
        opts = self._batch_opts(elem_flags, flags, op)
        if count == 0:
            return 0
        n = ffi.new("__u32 *", count)
        ret = self._lib.bpf_map_delete_batch(fd, kb, n, opts)
        if ret:
            raise _batch_error(ret, op, int(n[0]) if ret != -_errno.EFAULT else 0)
        return int(n[0])

    def lookup_batch(
        self, batch_size: int | None = None, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """Iterate over all elements with BPF_MAP_LOOKUP_BATCH (Linux 5.6+).

        Reads ``batch_size`` elements per syscall (default
        min(max_entries, 4096)), so memory stays bounded on huge maps. When a
        hash bucket holds more than a batch (ENOSPC), the batch grows and the
        call is retried. Per-CPU values come as lists.

        Raises:
            NotSupportedError: the map type has no batch ops (LPM_TRIE, QUEUE, ...).
            BatchError: a kernel error mid-way; never ends silently.
        """
        return self._batch_iter("lookup_batch", batch_size, elem_flags, flags)

    def lookup_and_delete_batch(
        self, batch_size: int | None = None, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """Drain the map with BPF_MAP_LOOKUP_AND_DELETE_BATCH: each element
        yielded has already been deleted. Hash maps only (not ARRAY)."""
        return self._batch_iter("lookup_and_delete_batch", batch_size, elem_flags, flags)

    def _batch_iter(
        self, op: str, batch_size: int | None, elem_flags: int, flags: int
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        # Checks run here, eagerly, not at the first next().
        self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind(op)
        if batch_size is None:
            batch_size = max(1, min(self._info.max_entries, DEFAULT_BATCH))
        elif not isinstance(batch_size, int) or batch_size <= 0:
            raise CodecError("batch_size", batch_size, f"{op}: must be a positive integer")
        opts = self._batch_opts(elem_flags, flags, op)
        return self._batch_gen(op, batch_size, opts)

    def _batch_gen(
        self, op: str, batch_size: int, opts: Any
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        ks, vs = self._key_size, self._vbuf_size
        percpu = self._percpu
        for got, kraw, vraw in self._lookup_batch_raw(op, batch_size, opts):
            for i in range(got):
                k = kraw[i * ks : (i + 1) * ks]
                v = vraw[i * vs : (i + 1) * vs]
                yield k, (self._split_percpu(v) if percpu else v)

    def _lookup_batch_raw(
        self, op: str, batch_size: int, opts: Any
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """Batches as (count, keys bytes, values bytes) for the typed layer."""
        call = getattr(self._lib, "bpf_map_" + op)
        ks, vs = self._key_size, self._vbuf_size
        token_size = max(ks, 8)
        in_tok = ffi.new("char[]", token_size)
        out_tok = ffi.new("char[]", token_size)
        size = batch_size
        keys = ffi.new("char[]", ks * size)
        vals = ffi.new("char[]", vs * size or 1)
        n = ffi.new("__u32 *")
        first = True
        while True:
            fd = self._open_fd()
            n[0] = size
            ret = call(fd, NULL if first else in_tok, out_tok, keys, vals, n, opts)
            got = int(n[0])
            if ret and ret != -_errno.ENOENT:
                if ret == -_errno.ENOSPC and got == 0:
                    if size >= max(self._info.max_entries, 1) * 2:
                        raise _batch_error(ret, op, 0)
                    size *= 2
                    keys = ffi.new("char[]", ks * size)
                    vals = ffi.new("char[]", vs * size or 1)
                    continue
                if first and got == 0 and -ret in _BATCH_FAIL_FAST:
                    raise error_from_errno(ret, op, einval_unsupported=True)
                raise _batch_error(ret, op, got)
            if got:
                yield got, ffi.buffer(keys, ks * got)[:], ffi.buffer(vals, vs * got)[:]
            if ret:
                return
            first = False
            ffi.memmove(in_tok, out_tok, token_size)

    # ------------------------------------------------------------------ iteration

    def keys(self) -> Iterator[bytes]:
        """Iterate over the keys with BPF_MAP_GET_NEXT_KEY.

        Bounded: a hash map that changes under the walk can restart it from
        the first key; after max_entries + 1 steps without reaching the end
        this raises IterationAbortedError instead of looping forever.

        Raises:
            NotSupportedError: keyless maps.
            IterationAbortedError: the walk could not finish.
        """
        self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind("keys")
        return self._keys_gen()

    def _keys_gen(self) -> Iterator[bytes]:
        ks = self._key_size
        cur = ffi.new("char[]", ks or 1)
        nxt = ffi.new("char[]", ks or 1)
        prev: Any = NULL
        limit = self._info.max_entries + 1
        get_next = self._lib.bpf_map_get_next_key
        for _ in range(limit):
            ret = get_next(self._open_fd(), prev, nxt)
            if ret == -_errno.ENOENT:
                return
            if ret:
                raise error_from_errno(ret, "keys", einval_unsupported=True)
            key: bytes = ffi.buffer(nxt, ks)[:]
            yield key
            ffi.memmove(cur, nxt, ks)
            prev = cur
        raise IterationAbortedError(
            _errno.EINTR,
            "keys",
            f"iteration aborted: more than max_entries={limit - 1} steps "
            "(the map changed during the walk)",
        )

    # ------------------------------------------------------------------ freeze, pin

    def freeze(self) -> None:
        """Make the map read-only for user space from now on (Linux 5.2+).

        Raises:
            MapPermissionError: later updates and deletes from user space.
        """
        fd = self._open_fd()
        _ffi.check(self._lib.bpf_map_freeze(fd), "freeze", einval_unsupported=True)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the map at ``path`` in bpffs, so it outlives this process.

        The last path component may not contain a dot (bpffs refuses it).

        Raises:
            KeyExistsError: something is pinned there already (EEXIST).
            MapError: the directory is not on bpffs (EPERM/EINVAL).
        """
        fd = self._open_fd()
        p = os.fsencode(path)
        op = f"pin {os.fsdecode(p)}"
        if b"." in os.path.basename(p):
            raise CodecError("path", os.fsdecode(p), "bpffs refuses names that contain a dot")
        _ffi.check(self._lib.bpf_obj_pin(fd, p), op, path=True)

    def unpin(self, path: str | os.PathLike[str]) -> None:
        """Remove the pin at ``path`` (the map lives on while other fds hold it).

        Raises:
            KeyNotFoundError: nothing is pinned there.
        """
        self._open_fd()
        unpin_path(path)


def unpin_path(path: str | os.PathLike[str]) -> None:
    """Remove a bpffs pin, with typedmaps errors."""
    p = os.fsdecode(path)
    try:
        os.unlink(p)
    except OSError as exc:
        err = exc.errno or _errno.EIO
        raise error_from_errno(err, f"unpin {p}", detail=os.strerror(err)) from None


_BATCH_CLASSES: dict[type[MapError], type[BatchError]] = {}


def _batch_error(ret: int, op: str, processed: int) -> BatchError:
    """A BatchError that is also the named error of its errno."""
    cause = error_from_errno(ret, op).__class__
    cls = _BATCH_CLASSES.get(cause)
    if cls is None:
        if cause is MapError:
            cls = BatchError
        else:
            cls = type(f"Batch{cause.__name__}", (BatchError, cause), {})
            cls.__module__ = BatchError.__module__
        _BATCH_CLASSES[cause] = cls
    return cls(abs(ret), op, processed)
