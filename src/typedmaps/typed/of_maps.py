"""Maps whose values are kernel objects: maps of maps, program arrays, devices, CPUs, sockets.

From user space these maps take a file descriptor (or an interface index,
a queue size) on update and give back something else on lookup: an inner
map's id, a program's id, a socket's cookie. The wrappers here speak in
Python objects on both sides and say what the kernel accepts.

- :class:`MapOfMaps` (ARRAY_OF_MAPS, HASH_OF_MAPS): ``m[k] = inner`` takes a
  MapHandle or Map of the inner template's shape; ``m[k]`` gives a new
  MapHandle of the inner map (the caller closes it).
- :class:`ProgramArray` (PROG_ARRAY): takes a Program or a program fd; gives
  the program's id.
- :class:`DevMap` (DEVMAP, DEVMAP_HASH): takes an interface name or index
  (``set()``: and an XDP program); gives a :class:`DevMapEntry`.
- :class:`CpuMap` (CPUMAP): takes a queue size (``set()``: and an XDP
  program); gives a :class:`CpuMapEntry`.
- :class:`SockMap` (SOCKMAP, SOCKHASH): takes a socket (or its fd); gives the
  socket's cookie.
- :class:`XskMap` (XSKMAP): takes an AF_XDP socket (or its fd); the kernel
  refuses lookups.

Checks happen before the syscall: the key encodes, an index is below
max_entries, an inner map has the outer map's template shape, a program or
socket argument is what the map takes. The kernel's own refusals become
named errors whose message says what it wanted.

Every fd these wrappers open (an inner map's, looked up by id) belongs to
the object returned; nothing is left open on an error path. The fds given
to them (sockets, programs, inner maps) stay the caller's.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket as _socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, overload

import construct as cs

from .._objbase import bpf_obj_id
from ..codec import Codec
from ..errors import (
    CodecError,
    KeyNotFoundError,
    MapError,
    NotSupportedError,
    TypedMapsError,
)
from ..flags import MapCreateFlags, MapType
from ..handle import MapHandle, MapInfo
from ._base import _codec, _OnHandle, _short

if TYPE_CHECKING:
    from ..program import Program
    from .factory import AnyTyped

__all__ = [
    "CpuMap",
    "CpuMapEntry",
    "DevMap",
    "DevMapEntry",
    "MapOfMaps",
    "ProgramArray",
    "SockMap",
    "XskMap",
    "socket_cookie",
]

K = TypeVar("K")

_U32: Final = struct.Struct("=I")
_U64: Final = struct.Struct("=Q")
_FD_KIND: Final = {
    "prog": "anon_inode:bpf-prog",
    "map": "anon_inode:bpf-map",
}
_INNER_MAP: Final = int(MapCreateFlags.INNER_MAP)
#: SO_COOKIE (linux/socket.h): the socket's cookie, as SOCKMAP lookups give it.
SO_COOKIE: Final = 57
#: AF_XDP (linux/socket.h); Python's socket module may not name it.
AF_XDP: Final = 44


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def socket_cookie(sock: _HasFileno | int) -> int:
    """The kernel's cookie of a socket (``SO_COOKIE``): what SOCKMAP lookups give back.

    Raises:
        TypeError: not a socket object or fd.
        OSError: the fd is not a socket.
    """
    fd = _fd_of(sock, "sock")
    s = _socket.socket(fileno=os.dup(fd))
    try:
        raw = s.getsockopt(_socket.SOL_SOCKET, SO_COOKIE, 8)
    finally:
        s.close()
    return int(_U64.unpack(raw)[0])


def _fd_of(obj: object, what: str) -> int:
    """An fd from an int or an object with fileno() (sockets, files)."""
    if isinstance(obj, bool):
        raise CodecError(what, obj, "expected a file descriptor or an object with fileno()")
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise CodecError(
                what,
                obj,
                f"expected a file descriptor or an object with fileno(), not {type(obj).__name__}",
            )
        fd = fileno()
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise CodecError(what, obj, "fileno() did not return an int")
    if not 0 <= fd <= 0x7FFFFFFF:
        raise CodecError(what, obj, f"{fd} is not an open file descriptor (closed socket?)")
    return fd


def _fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _check_fd_kind(fd: int, kind: str, what: str, op: str) -> None:
    target = _fd_target(fd)
    want = _FD_KIND[kind]
    if target is None:
        raise CodecError(what, fd, f"{op}: fd {fd} is not open")
    if target != want:
        raise CodecError(what, fd, f"{op}: fd {fd} is {target}, not a BPF {kind}")


class _FdValued(_OnHandle, Generic[K]):
    """What the fd-valued wrappers share: the map kind check, keys, deletion, iteration."""

    __slots__ = ("_dk", "_ek", "_fixed", "_h", "_key_codec")

    _kinds: tuple[MapType, ...] = ()
    _wrapper: str = ""

    def _setup(self, handle: MapHandle, key: cs.Construct[K, K] | Codec[K] | None) -> None:
        if not isinstance(handle, MapHandle):
            raise TypeError(
                f"{self._wrapper}() needs a MapHandle or Map, got {type(handle).__name__}"
            )
        mt = handle.map_type
        if mt not in self._kinds:
            names = "/".join(k.name for k in self._kinds)
            raise NotSupportedError(
                _errno.EINVAL,
                self._wrapper,
                f"{self._wrapper} wraps {names} maps; {handle.name!r} is {mt.name}",
            )
        self._h = handle
        kc: Codec[K] = _codec(key if key is not None else self._default_key(handle), "key")
        if kc.size != handle.key_size:
            from ..errors import SizeMismatchError

            raise SizeMismatchError(
                f"key schema {kc.name}",
                kc.size,
                handle.key_size,
                f"the key_size of the {mt.name} map {handle.name!r}",
            )
        self._key_codec = kc
        self._ek = kc.encode
        self._dk = kc.decode
        # Index-keyed types: every index up to max_entries is a key the kernel
        # walks, occupied or not.
        self._fixed = mt in _INDEXED

    def _default_key(self, handle: MapHandle) -> cs.Construct[Any, Any]:
        """Indices for index-keyed types; else the key's BTF type, a u32, or raw bytes."""
        if handle.map_type in _INDEXED:
            return cs.Int32ul
        tid = handle._info.btf_key_type_id
        if tid:
            from ..btf import map_btf

            try:
                return map_btf(handle).schema(tid, "key", size=handle.key_size)
            except TypedMapsError:
                pass  # no usable BTF: fall back below
        return cs.Int32ul if handle.key_size == 4 else cs.Bytes(handle.key_size)

    @property
    def key_codec(self) -> Codec[K]:
        """The codec of the keys."""
        return self._key_codec

    def _key(self, key: K, op: str) -> bytes:
        kb = self._ek(key)
        if self._fixed:
            index = _U32.unpack(kb)[0]
            if index >= self._h.max_entries:
                raise KeyNotFoundError(
                    _errno.E2BIG,
                    op,
                    f"index {index} out of range: {self._h.map_type.name} map "
                    f"{self._h.name!r} has max_entries={self._h.max_entries}",
                )
        return kb

    def _raw(self, key: K, op: str) -> bytes | None:
        self._h._open_fd()
        return self._h.lookup(self._key(key, op))

    def __delitem__(self, key: K) -> None:
        """Empty the slot ``key`` (its object is released by the map).

        Raises:
            KeyNotFoundError: nothing is stored under ``key`` (or an index past
                max_entries).
        """
        h = self._h
        h._open_fd()
        h.delete(self._key(key, "delete"))

    def _present(self) -> Iterator[tuple[bytes, bytes]]:
        """(raw key, raw value) of every occupied slot, as the kernel walks them now."""
        h = self._h
        for kb in h.keys():  # noqa: SIM118 (a MapHandle is not a dict)
            vb = h.lookup(kb)
            if vb is not None:
                yield kb, vb

    def __iter__(self) -> Iterator[K]:
        """The keys of the occupied slots (one lookup per key the kernel walks)."""
        dk = self._dk
        return (dk(kb) for kb, _ in self._present())

    def __len__(self) -> int:
        """How many slots are occupied (walks the map)."""
        return sum(1 for _ in self._present())

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds an object (one lookup)."""
        try:
            return self._raw(key, "lookup") is not None  # type: ignore[arg-type]
        except KeyNotFoundError:
            return False

    def __repr__(self) -> str:
        h = self._h
        return (
            f"{type(self).__name__}(map={h.name!r}, type={h.map_type.name}, "
            f"max_entries={h.max_entries}{', closed' if h.closed else ''})"
        )


_INDEXED: Final = frozenset(
    {
        MapType.ARRAY_OF_MAPS,
        MapType.PROG_ARRAY,
        MapType.DEVMAP,
        MapType.CPUMAP,
        MapType.SOCKMAP,
        MapType.XSKMAP,
    }
)


# ---------------------------------------------------------------------------- maps of maps


def _template_shape(info: MapInfo) -> str:
    return (
        f"{info.map_type.name}(key_size={info.key_size}, value_size={info.value_size}, "
        f"max_entries={info.max_entries}, map_flags={int(info.map_flags):#x})"
    )


def _matches(template: MapInfo, inner: MapInfo) -> str | None:
    """Why ``inner`` cannot go into a map whose template is ``template`` (the kernel's rule)."""
    if template.map_type is not inner.map_type:
        return f"map_type {inner.map_type.name} != the template's {template.map_type.name}"
    for what in ("key_size", "value_size"):
        if getattr(template, what) != getattr(inner, what):
            return f"{what} {getattr(inner, what)} != the template's {getattr(template, what)}"
    # The kernel compares the flags, except BPF_F_INNER_MAP itself on the template side.
    if int(template.map_flags) != int(inner.map_flags):
        return f"map_flags {int(inner.map_flags):#x} != the template's {int(template.map_flags):#x}"
    if (
        template.map_type in (MapType.ARRAY, MapType.PERCPU_ARRAY)
        and not int(template.map_flags) & _INNER_MAP
        and template.max_entries != inner.max_entries
    ):
        return (
            f"max_entries {inner.max_entries} != the template's {template.max_entries} "
            "(an ARRAY inner map must match unless the template has BPF_F_INNER_MAP)"
        )
    return None


class MapOfMaps(_FdValued[K]):
    """An ARRAY_OF_MAPS or HASH_OF_MAPS map: ``outer[k] = inner``, ``outer[k]`` -> MapHandle.

    Example::

        outer = MapOfMaps(obj.maps["outer"])
        with MapHandle.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=4) as inner:
            outer[1] = inner                 # the outer map keeps a reference
        with outer[1] as again:             # a new fd of the inner map, yours to close
            again.lookup(b"\\0\\0\\0\\0")
        with outer.typed(1) as counts:       # a typed wrapper of it (closing closes its fd)
            counts[0]

    Args:
        handle: the outer map (not owned: closing the wrapper closes it).
        key: the outer key schema (default: ``Int32ul`` for an ARRAY_OF_MAPS;
            for a HASH_OF_MAPS the key's BTF type, else ``Int32ul`` for 4-byte
            keys and raw ``Bytes`` for others).
        inner: the template inner maps must match (type, key_size,
            value_size, map_flags and, for arrays, max_entries): default the
            template the outer map was made with (``MapHandle.create(...,
            inner_map=)``, or the ``__array(values, ...)`` declaration of a
            BPF object's map), else the shape of an inner map already stored.
        inner_key, inner_value: schemas for :meth:`typed` (default: the
            inner map's BTF).

    Raises:
        NotSupportedError: not a map of maps.
        SizeMismatchError: the key schema's size is not the map's key_size.
    """

    __slots__ = ("_inner", "_inner_key", "_inner_value")

    _kinds = (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)
    _wrapper = "MapOfMaps"

    @overload
    def __init__(
        self: MapOfMaps[int],
        handle: MapHandle,
        *,
        inner: MapHandle | MapInfo | None = None,
        inner_key: cs.Construct[Any, Any] | None = None,
        inner_value: cs.Construct[Any, Any] | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        handle: MapHandle,
        *,
        key: cs.Construct[K, K] | Codec[K],
        inner: MapHandle | MapInfo | None = None,
        inner_key: cs.Construct[Any, Any] | None = None,
        inner_value: cs.Construct[Any, Any] | None = None,
    ) -> None: ...
    def __init__(
        self,
        handle: MapHandle,
        *,
        key: Any = None,
        inner: MapHandle | MapInfo | None = None,
        inner_key: cs.Construct[Any, Any] | None = None,
        inner_value: cs.Construct[Any, Any] | None = None,
    ) -> None:
        self._setup(handle, key)
        if isinstance(inner, MapHandle):
            inner = inner._info
        elif inner is not None and not isinstance(inner, MapInfo):
            raise TypeError(f"inner= takes a MapHandle or a MapInfo, not {type(inner).__name__}")
        self._inner: MapInfo | None = inner if inner is not None else handle._inner
        self._inner_key = inner_key
        self._inner_value = inner_value

    @property
    def inner_template(self) -> MapInfo | None:
        """The shape inner maps must have, when known (see the ``inner`` argument)."""
        if self._inner is None:
            for _, vb in self._present():
                try:
                    with MapHandle.from_map_id(_U32.unpack(vb)[0]) as first:
                        self._inner = first._info
                except KeyNotFoundError:
                    continue
                break
        return self._inner

    def __setitem__(self, key: K, inner: MapHandle) -> None:
        """Store ``inner`` under ``key`` (BPF_ANY); the outer map keeps the inner map alive.

        Raises:
            CodecError: ``inner`` is not a MapHandle, or its shape does not
                match the template (checked before the syscall; the message
                says which field differs).
            KeyNotFoundError: an ARRAY_OF_MAPS index past max_entries.
            MapFullError: a full HASH_OF_MAPS.
            MapError: the kernel refused the inner map (EINVAL).
        """
        h = self._h
        h._open_fd()
        kb = self._key(key, "update")
        if not isinstance(inner, MapHandle):
            raise CodecError(
                "value",
                inner,
                f"update: a map of maps stores maps: expected a MapHandle or Map, not "
                f"{type(inner).__name__}",
            )
        inner._open_fd()
        template = self.inner_template
        if template is not None:
            why = _matches(template, inner._info)
            if why is not None:
                raise CodecError(
                    "value",
                    inner,
                    f"update: {inner.name!r} does not fit the inner template "
                    f"{_template_shape(template)}: {why}",
                )
        try:
            with inner._using() as fd:  # the inner fd stays valid through the syscall
                h.update(kb, _U32.pack(fd))
        except MapError as exc:
            if exc.errno == _errno.EINVAL:
                raise MapError(
                    _errno.EINVAL,
                    "update",
                    f"the kernel refused {inner.name!r} as an inner map of {h.name!r} "
                    "(its type, sizes, flags or max_entries differ from the template's, or "
                    "it is itself a map of maps)",
                ) from None
            raise

    def id(self, key: K) -> int | None:
        """The kernel id of the inner map under ``key``, or None (opens nothing)."""
        raw = self._raw(key, "lookup")
        return None if raw is None else int(_U32.unpack(raw)[0])

    def __getitem__(self, key: K) -> MapHandle:
        """A new MapHandle of the inner map under ``key``: its own fd, the caller's to close.

        Closing it leaves the entry in place.

        Raises:
            KeyNotFoundError: nothing is stored under ``key`` (or the inner map
                went away between the lookup and the open).
        """
        got = self.get(key)
        if got is None:
            raise KeyNotFoundError(_errno.ENOENT, "lookup", f"key not found: {_short(key)}")
        return got

    def get(self, key: K, default: None = None, /) -> MapHandle | None:
        """Like ``outer[key]``, but None when nothing is stored there."""
        map_id = self.id(key)
        if map_id is None:
            return default
        try:
            return MapHandle.from_map_id(map_id)
        except KeyNotFoundError:
            return default  # removed (and freed) since the lookup

    def ids(self) -> Iterator[tuple[K, int]]:
        """(key, inner map id) of every occupied slot; opens no fd."""
        dk = self._dk
        for kb, vb in self._present():
            yield dk(kb), int(_U32.unpack(vb)[0])

    def typed(self, key: K) -> AnyTyped:
        """A typed wrapper of the inner map under ``key`` (it owns a new fd: close it).

        Uses the ``inner_key`` / ``inner_value`` schemas given to the
        constructor, else the inner map's BTF (:func:`typedmaps.typed`).

        Raises:
            KeyNotFoundError: nothing is stored under ``key``.
            NotSupportedError, SizeMismatchError: as :func:`typedmaps.typed`.
        """
        from .factory import typed

        h = self[key]
        try:
            kw: dict[str, Any] = {}
            if self._inner_key is not None:
                kw["key"] = self._inner_key
            if self._inner_value is not None:
                kw["value"] = self._inner_value
            wrapper: AnyTyped = typed(h, **kw)
        except BaseException:
            h.close()
            raise
        return wrapper


# ---------------------------------------------------------------------------- program arrays


def _program_fd(
    program: object, op: str, *, optional: bool = False
) -> contextlib.AbstractContextManager[int]:
    """``with _program_fd(p, op) as fd:``: the fd of a Program, kept valid for the block
    (its object cannot close it meanwhile); a checked program fd of the caller's; or -1
    for None (no program)."""
    from ..program import Program

    if program is None and optional:
        return contextlib.nullcontext(-1)
    if isinstance(program, Program):
        return program._using(op)
    if isinstance(program, bool) or not isinstance(program, int):
        raise CodecError(
            "value",
            program,
            f"{op}: expected a Program or a program fd, not {type(program).__name__}",
        )
    _check_fd_kind(program, "prog", "value", op)
    return contextlib.nullcontext(program)


class ProgramArray(_FdValued[int]):
    """A PROG_ARRAY: the slots a program tail-calls into (``bpf_tail_call``).

    Example::

        jmp = ProgramArray(obj.maps["jmp"])
        jmp[0] = obj.programs["stage2"]     # a Program, or a program fd
        jmp[0]                              # -> the program's kernel id
        del jmp[0]                          # the tail call falls through again

    The kernel accepts only programs of the type (and JIT mode) of the
    programs that use the array: another type is a MapError (EINVAL).

    Raises:
        NotSupportedError: not a PROG_ARRAY.
    """

    __slots__ = ()

    _kinds = (MapType.PROG_ARRAY,)
    _wrapper = "ProgramArray"

    def __init__(self, handle: MapHandle) -> None:
        self._setup(handle, None)

    def __setitem__(self, index: int, program: Program | int) -> None:
        """Put ``program`` in slot ``index``.

        Raises:
            CodecError: not a Program or a program fd (before the syscall).
            KeyNotFoundError: ``index`` is past max_entries.
            ObjectError: the Program is not loaded.
            MapError: the kernel refused the program (EINVAL: another program
                type than the array's users).
        """
        h = self._h
        h._open_fd()
        kb = self._key(index, "update")
        try:
            with _program_fd(program, "update") as fd:  # valid through the syscall
                h.update(kb, _U32.pack(fd))
        except MapError as exc:
            if exc.errno == _errno.EINVAL:
                raise MapError(
                    _errno.EINVAL,
                    "update",
                    f"the kernel refused the program for {h.name!r}: a PROG_ARRAY takes "
                    "only programs of the type of the programs that use it",
                ) from None
            raise

    def __getitem__(self, index: int) -> int:
        """The kernel id of the program in slot ``index``.

        Raises:
            KeyNotFoundError: the slot is empty (or past max_entries).
        """
        got = self.get(index)
        if got is None:
            raise KeyNotFoundError(_errno.ENOENT, "lookup", f"slot {index} is empty")
        return got

    def get(self, index: int, default: None = None, /) -> int | None:
        """The program id in slot ``index``, or None when empty."""
        raw = self._raw(index, "lookup")
        return default if raw is None else int(_U32.unpack(raw)[0])

    def ids(self) -> Iterator[tuple[int, int]]:
        """(index, program id) of every occupied slot."""
        for kb, vb in self._present():
            yield int(_U32.unpack(kb)[0]), int(_U32.unpack(vb)[0])


def program_id(program: Program | int) -> int:
    """The kernel id of a loaded Program or a program fd (what ProgramArray lookups give)."""
    with _program_fd(program, "program_id") as fd:
        return bpf_obj_id(fd, "program_id")


# ---------------------------------------------------------------------------- devices, CPUs


@dataclass(frozen=True, slots=True)
class DevMapEntry:
    """A DEVMAP / DEVMAP_HASH slot as the kernel reports it.

    Attributes:
        ifindex: the interface packets are redirected to.
        program_id: the kernel id of the XDP program run on them first
            (``SEC("xdp/devmap")``), 0 for none.
    """

    ifindex: int
    program_id: int = 0


@dataclass(frozen=True, slots=True)
class CpuMapEntry:
    """A CPUMAP slot as the kernel reports it.

    Attributes:
        qsize: the queue size of the CPU's kthread.
        program_id: the kernel id of the XDP program run on that CPU
            (``SEC("xdp/cpumap")``), 0 for none.
    """

    qsize: int
    program_id: int = 0


class _IfaceProgMap(_FdValued[K]):
    """DEVMAP and CPUMAP: a u32 and optionally a program (fd in, id out)."""

    __slots__ = ()

    def _store(self, key: K, first: int, program: Program | int | None, op: str, what: str) -> None:
        """Write ``first`` (an ifindex, a queue size) and the program under ``key``."""
        h = self._h
        kb = self._key(key, op)
        if h.value_size == 4:
            if program is not None:
                raise CodecError(
                    "program",
                    program,
                    f"{op}: the {h.map_type.name} map {h.name!r} has 4-byte values, which "
                    "carry no program (declare the value as the kernel's 8-byte struct)",
                )
        elif h.value_size != 8:
            raise NotSupportedError(
                _errno.EINVAL, op, f"{h.map_type.name} values are 4 or 8 bytes, not {h.value_size}"
            )
        with _program_fd(program, op, optional=True) as fd:  # valid through the syscall
            raw = _U32.pack(first) if h.value_size == 4 else struct.pack("=Ii", first, fd)
            self._put(kb, raw, op, what)

    def _decode(self, raw: bytes) -> tuple[int, int]:
        if len(raw) == 4:
            return int(_U32.unpack(raw)[0]), 0
        first, prog = struct.unpack("=II", raw[:8])
        return int(first), int(prog)

    def _put(self, kb: bytes, raw: bytes, op: str, what: str) -> None:
        h = self._h
        try:
            h.update(kb, raw)
        except MapError as exc:
            if exc.errno == _errno.EINVAL:
                raise MapError(_errno.EINVAL, op, f"the kernel refused {what}") from None
            if exc.errno == _errno.ENOMEM and h.map_type is MapType.CPUMAP:
                # cpumap says ENOMEM for any failure to set the entry up,
                # a program of the wrong kind included.
                raise MapError(
                    _errno.ENOMEM,
                    op,
                    f"the kernel refused {what} (ENOMEM: a CPUMAP says so both when out "
                    'of memory and when the program is not a SEC("xdp/cpumap") program)',
                ) from None
            raise


def _ifindex(dev: object, op: str) -> int:
    if isinstance(dev, str):
        try:
            return _socket.if_nametoindex(dev)
        except OSError:
            raise CodecError("value", dev, f"{op}: no interface named {dev!r}") from None
    if isinstance(dev, bool) or not isinstance(dev, int) or not 0 < dev <= 0xFFFFFFFF:
        raise CodecError("value", dev, f"{op}: expected an interface name or index")
    return dev


class DevMap(_IfaceProgMap[K]):
    """A DEVMAP or DEVMAP_HASH: where ``bpf_redirect_map`` sends packets.

    ``devs[k] = "veth0"`` (or an ifindex) stores the interface;
    ``devs.set(k, "veth0", program=prog)`` also attaches an XDP program
    (``SEC("xdp/devmap")``) the kernel runs on each redirected packet (8-byte
    values, ``struct bpf_devmap_val``). ``devs[k]`` gives a
    :class:`DevMapEntry` with the program's id.

    The kernel refuses (MapError, EINVAL) an ifindex no interface has and a
    program that is not a devmap XDP program. DEVMAP keys are indices below
    max_entries; DEVMAP_HASH keys are any u32.
    """

    __slots__ = ()

    _kinds = (MapType.DEVMAP, MapType.DEVMAP_HASH)
    _wrapper = "DevMap"

    @overload
    def __init__(self: DevMap[int], handle: MapHandle) -> None: ...
    @overload
    def __init__(self, handle: MapHandle, *, key: cs.Construct[K, K] | Codec[K]) -> None: ...
    def __init__(self, handle: MapHandle, *, key: Any = None) -> None:
        self._setup(handle, key)

    def set(self, key: K, dev: str | int, *, program: Program | int | None = None) -> None:
        """Redirect ``key`` to interface ``dev`` (a name or an ifindex), through ``program``.

        Raises:
            CodecError: no such interface name, a bad program argument, or a
                program for a map with 4-byte values (before the syscall).
            KeyNotFoundError: a DEVMAP index past max_entries.
            MapError: the kernel refused the interface or the program (EINVAL).
        """
        self._h._open_fd()
        ifindex = _ifindex(dev, "update")
        self._store(key, ifindex, program, "update", f"ifindex {ifindex} (or the program)")

    def __setitem__(self, key: K, dev: str | int) -> None:
        self.set(key, dev)

    def __getitem__(self, key: K) -> DevMapEntry:
        got = self.get(key)
        if got is None:
            raise KeyNotFoundError(_errno.ENOENT, "lookup", f"key not found: {_short(key)}")
        return got

    def get(self, key: K, default: None = None, /) -> DevMapEntry | None:
        """The entry under ``key``, or None."""
        raw = self._raw(key, "lookup")
        if raw is None:
            return default
        ifindex, prog = self._decode(raw)
        return DevMapEntry(ifindex, prog)


class CpuMap(_IfaceProgMap[int]):
    """A CPUMAP: where ``bpf_redirect_map`` hands packets to another CPU's kthread.

    ``cpus[cpu] = qsize`` starts the CPU's queue; ``cpus.set(cpu, qsize,
    program=prog)`` also runs an XDP program (``SEC("xdp/cpumap")``) there.
    ``cpus[cpu]`` gives a :class:`CpuMapEntry`. A queue size of 0 is the
    kernel's way to remove an entry (``del cpus[cpu]`` does the same); keys
    are CPU numbers below max_entries, and the kernel refuses a CPU that is
    not possible (EINVAL).
    """

    __slots__ = ()

    _kinds = (MapType.CPUMAP,)
    _wrapper = "CpuMap"

    def __init__(self, handle: MapHandle) -> None:
        self._setup(handle, None)

    def set(self, cpu: int, qsize: int, *, program: Program | int | None = None) -> None:
        """Start (or change) CPU ``cpu``'s queue of ``qsize`` packets, optionally with a program.

        Raises:
            CodecError: a bad queue size or program argument.
            KeyNotFoundError: ``cpu`` is past max_entries.
            MapError: the kernel refused (EINVAL: an impossible CPU, a queue
                size it does not take, or a program that is not a cpumap XDP
                program).
        """
        self._h._open_fd()
        if isinstance(qsize, bool) or not isinstance(qsize, int) or not 0 <= qsize <= 0xFFFFFFFF:
            raise CodecError("value", qsize, "update: the queue size is a u32")
        self._store(
            cpu, qsize, program, "update", f"queue size {qsize} (or the program) on CPU {cpu}"
        )

    def __setitem__(self, cpu: int, qsize: int) -> None:
        self.set(cpu, qsize)

    def __getitem__(self, cpu: int) -> CpuMapEntry:
        got = self.get(cpu)
        if got is None:
            raise KeyNotFoundError(_errno.ENOENT, "lookup", f"no queue on CPU {cpu}")
        return got

    def get(self, cpu: int, default: None = None, /) -> CpuMapEntry | None:
        """The entry of CPU ``cpu``, or None."""
        raw = self._raw(cpu, "lookup")
        if raw is None:
            return default
        qsize, prog = self._decode(raw)
        return CpuMapEntry(qsize, prog)


# ---------------------------------------------------------------------------- sockets


class SockMap(_FdValued[K]):
    """A SOCKMAP or SOCKHASH: sockets that sk_msg / sk_skb programs redirect between.

    ``socks[k] = sock`` stores a socket (a socket object or its fd; the map
    holds its own reference, so the caller may close the socket object);
    ``socks[k]`` gives the socket's cookie (compare with
    :func:`socket_cookie`), which needs 8-byte values.

    What this kernel accepts (Linux 5.7+): TCP sockets that are listening or
    established, UDP sockets that are bound, AF_UNIX stream and datagram
    sockets; an unbound UDP socket or a TCP socket that is neither listening
    nor connected is refused with NotSupportedError (EOPNOTSUPP).
    """

    __slots__ = ()

    _kinds = (MapType.SOCKMAP, MapType.SOCKHASH)
    _wrapper = "SockMap"

    @overload
    def __init__(self: SockMap[int], handle: MapHandle) -> None: ...
    @overload
    def __init__(self, handle: MapHandle, *, key: cs.Construct[K, K] | Codec[K]) -> None: ...
    def __init__(self, handle: MapHandle, *, key: Any = None) -> None:
        self._setup(handle, key)

    def __setitem__(self, key: K, sock: _HasFileno | int) -> None:
        """Store the socket ``sock`` under ``key``.

        Raises:
            CodecError: not a socket object or fd.
            NotSupportedError: the kernel does not take this socket in this
                state (EOPNOTSUPP), see the class documentation.
            KeyNotFoundError: a SOCKMAP index past max_entries.
        """
        h = self._h
        h._open_fd()
        kb = self._key(key, "update")
        fd = _fd_of(sock, "value")
        raw = _U32.pack(fd) if h.value_size == 4 else _U64.pack(fd)
        try:
            h.update(kb, raw)
        except NotSupportedError:
            raise NotSupportedError(
                _errno.EOPNOTSUPP,
                "update",
                f"the kernel does not take this socket in {h.name!r}: it wants a listening "
                "or established TCP socket, a bound UDP socket or an AF_UNIX socket",
            ) from None
        except MapError as exc:
            if exc.errno in (_errno.EBADF, _errno.ENOTSOCK, _errno.EINVAL):
                raise CodecError(
                    "value", sock, f"update: not a socket the map takes ({exc})"
                ) from None
            raise

    def __getitem__(self, key: K) -> int:
        """The cookie of the socket under ``key``.

        Raises:
            KeyNotFoundError: no socket under ``key``.
            NotSupportedError: the map has 4-byte values (the kernel gives
                cookies only into 8-byte values).
        """
        got = self.get(key)
        if got is None:
            raise KeyNotFoundError(_errno.ENOENT, "lookup", f"key not found: {_short(key)}")
        return got

    def get(self, key: K, default: None = None, /) -> int | None:
        """The socket cookie under ``key``, or None."""
        h = self._h
        if h.value_size != 8:
            raise NotSupportedError(
                _errno.ENOSPC,
                "lookup",
                f"{h.name!r} has {h.value_size}-byte values: the kernel answers lookups "
                "with the 8-byte socket cookie only",
            )
        raw = self._raw(key, "lookup")
        return default if raw is None else int(_U64.unpack(raw)[0])


class XskMap(_FdValued[int]):
    """An XSKMAP: the AF_XDP sockets ``bpf_redirect_map`` hands frames to.

    ``xsks[i] = xsk`` stores an AF_XDP socket (an object with ``fileno()``
    or its fd); ``del xsks[i]`` empties the slot (the kernel does not say
    whether it held a socket: deleting an empty slot is not an error). The
    kernel refuses lookups from user space (EOPNOTSUPP), so reading a slot,
    ``in`` and iteration raise :class:`NotSupportedError`; any other kind of
    socket is refused (NotSupportedError). This kernel (6.18) takes an
    AF_XDP socket before it is bound to a queue.
    """

    __slots__ = ()

    _kinds = (MapType.XSKMAP,)
    _wrapper = "XskMap"

    def __init__(self, handle: MapHandle) -> None:
        self._setup(handle, None)

    def __setitem__(self, index: int, sock: _HasFileno | int) -> None:
        """Store the AF_XDP socket ``sock`` in slot ``index``.

        Raises:
            CodecError: not a socket object or fd.
            NotSupportedError: not an AF_XDP socket (EOPNOTSUPP).
            KeyNotFoundError: ``index`` past max_entries.
        """
        h = self._h
        h._open_fd()
        kb = self._key(index, "update")
        fd = _fd_of(sock, "value")
        try:
            h.update(kb, _U32.pack(fd))
        except NotSupportedError:
            raise NotSupportedError(
                _errno.EOPNOTSUPP, "update", f"{h.name!r} takes AF_XDP sockets only"
            ) from None

    def _refused(self, op: str) -> NotSupportedError:
        return NotSupportedError(
            _errno.EOPNOTSUPP,
            op,
            "the kernel does not let user space read XSKMAP entries (EOPNOTSUPP)",
        )

    def __getitem__(self, index: int) -> int:
        raise self._refused("lookup")

    def __contains__(self, index: object) -> bool:
        raise self._refused("lookup")

    def __iter__(self) -> Iterator[int]:
        raise self._refused("iterate")

    def __len__(self) -> int:
        raise self._refused("len")
