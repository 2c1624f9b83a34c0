"""Memory-mapped maps: BPF_F_MMAPABLE ARRAY memory and global data sections, as bytes.

An ARRAY map created with ``BPF_F_MMAPABLE`` (and every global-data section
map libbpf makes: ``.data``, ``.bss``, ``.rodata``, ``.kconfig``, custom
``.data.*`` / ``.rodata.*``) can be mapped into the process with ``mmap(2)``
on its fd. The mapping and the kernel map share the same pages: a store by
a BPF program is seen by the next read in Python and the other way round,
with no syscall at all.

Layout of the mapping: element ``i`` starts at byte ``i * stride``, where
``stride = round_up(value_size, 8)`` (the kernel's element size for
arrays); the ``stride - value_size`` bytes after each value are padding
that no map operation reads or writes. :meth:`MapHandle.memory` hands out
a flat ``memoryview`` of format ``"B"`` over all ``max_entries * stride``
bytes.

Read-only mappings. The kernel refuses a writable mapping of a frozen map
(EPERM: ``.rodata`` after load) and of a map whose programs may not write
it (``BPF_F_RDONLY_PROG``: EACCES). In those cases :func:`map_memory` maps
the memory read-only instead (as
cilium/ebpf's ``Map.Memory`` does), logs why on the ``typedmaps`` logger
and says so through the view's ``readonly`` attribute. Python raises
``TypeError`` on any store into a read-only view: a write never reaches the
page, so it can never fault. A map opened through a read-only (or
write-only) fd cannot be mapped at all: the kernel maps maps only as shared
mappings of a read-write fd, so that is a :class:`MapPermissionError`.

Lifetime. One mapping per handle, made on first use. Closing the handle
unmaps it at once unless views are still exported; then the unmapping is
deferred until the last view is released (``memoryview.release()`` or
garbage collection). A view therefore never dangles: it always points at
mapped pages of the (still alive) kernel map. Python's mmap keeps its own
duplicate of the map fd while the mapping exists.

The kernel refuses to freeze a map while a writable mapping exists
(EBUSY); :func:`before_freeze` drops an idle mapping first and explains
the error when views are still in use.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import logging
import mmap
import os
import threading
from typing import TYPE_CHECKING, Final

from ._args import bad
from .errors import (
    ENOTSUPP,
    MapClosedError,
    MapError,
    MapPermissionError,
    NotSupportedError,
)
from .flags import MapCreateFlags, MapType

if TYPE_CHECKING:
    from .handle import MapHandle

__all__ = ["MapMemory", "before_freeze", "handle_memory", "map_memory", "release"]

log = logging.getLogger("typedmaps")

_MMAPABLE: Final = int(MapCreateFlags.MMAPABLE)
#: Why the kernel refused a writable mapping of a read-write fd, by errno.
_WHY_READ_ONLY: Final = {
    _errno.EPERM: "the map is frozen",
    _errno.EACCES: "the map is BPF_F_RDONLY_PROG (programs may not write it)",
}
#: Serialises making a handle's mapping (two threads calling memory() at once).
_make_lock = threading.Lock()


def stride_of(value_size: int) -> int:
    """The distance between two elements of an mmapable ARRAY: round_up(value_size, 8)."""
    return (value_size + 7) & ~7


class MapMemory:
    """One ``mmap`` of an mmapable ARRAY map: the pages every view shares.

    Private to the package: :meth:`MapHandle.memory` hands out views of it,
    typed maps and globals read through their own registered views.

    Attributes:
        size: bytes mapped (``count * stride``).
        stride: bytes from one element to the next.
        count: the number of elements (max_entries).
        value_size: bytes of each element that belong to the value.
        readonly: the mapping refuses stores.
        why_readonly: why, when it is read-only ("" otherwise).
        refused: read-only because the kernel refused a writable mapping
            (not because read-only was asked for).
    """

    __slots__ = (
        "_internal",
        "_mm",
        "count",
        "readonly",
        "refused",
        "size",
        "stride",
        "value_size",
        "why_readonly",
    )

    def __init__(
        self,
        mm: mmap.mmap,
        count: int,
        value_size: int,
        readonly: bool,
        why: str,
        *,
        refused: bool = False,
    ) -> None:
        self._mm: mmap.mmap | None = mm
        self.count = count
        self.value_size = value_size
        self.stride = stride_of(value_size)
        self.size = count * self.stride
        self.readonly = readonly
        self.why_readonly = why
        self.refused = refused
        self._internal: list[memoryview] = []

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the pages may live on in exported views)."""
        return self._mm is None

    def view(self, *, readonly: bool = False) -> memoryview:
        """A new flat ``memoryview`` (format ``"B"``) of the whole mapping.

        Args:
            readonly: a read-only view even of a writable mapping.

        Raises:
            MapClosedError: the mapping was closed.
        """
        mm = self._mm
        if mm is None:
            raise MapClosedError("the memory mapping is closed")
        try:
            mv = memoryview(mm)
        except ValueError:  # closed by another thread just now
            raise MapClosedError("the memory mapping is closed") from None
        return mv.toreadonly() if readonly and not self.readonly else mv

    def internal_view(self, *, readonly: bool = False) -> memoryview:
        """A view for the library's own readers, released when the mapping closes.

        Readers hold it for their whole life; once :meth:`close` released
        it, any access raises ValueError, which they turn into
        :class:`MapClosedError`.
        """
        mv = self.view(readonly=readonly)
        self._internal.append(mv)
        return mv

    def register(self, view: memoryview) -> None:
        """Release ``view`` (a cast or slice of an internal view) when the mapping closes."""
        self._internal.append(view)

    def close(self) -> bool:
        """Release the library's views, then unmap unless the caller's views remain.

        Returns:
            True when the pages were unmapped now; False when views made by
            :meth:`view` are still exported, in which case the pages stay
            mapped until the last of them is released (never a dangling view).
        """
        mm = self._mm
        if mm is None:
            return True
        self._mm = None
        internal, self._internal = self._internal, []
        for mv in internal:
            mv.release()
        try:
            mm.close()
        except BufferError:
            return False  # exported views keep the mmap object (and the pages) alive
        return True

    def try_close(self) -> bool:
        """Close only if nothing but the library's own views use the mapping.

        Returns:
            True when closed (or already closed), False when caller views are exported.
        """
        mm = self._mm
        if mm is None:
            return True
        for mv in self._internal:
            mv.release()
        self._internal = []
        try:
            mm.close()
        except BufferError:
            return False
        self._mm = None
        return True

    def __repr__(self) -> str:
        state = "closed" if self._mm is None else ("read-only" if self.readonly else "writable")
        return f"<MapMemory {self.count} x {self.value_size} bytes (stride {self.stride}), {state}>"


def map_memory(
    fd: int, count: int, value_size: int, *, writable: bool | None, what: str
) -> MapMemory:
    """Map an mmapable ARRAY's fd.

    Args:
        fd: the map fd (borrowed; mmap keeps a duplicate of its own).
        count, value_size: the map's max_entries and value_size.
        writable: True: a writable mapping or MapPermissionError; False:
            read-only; None: writable when the kernel allows it, else
            read-only (logged, and ``readonly`` says so).
        what: names the map in messages.

    Raises:
        MapPermissionError: a writable mapping was required and refused, or
            the fd is not read-write (the kernel maps nothing through it).
        NotSupportedError: the kernel cannot map this map (ENOTSUPP: e.g. a
            value with a spin lock or timer).
        MapError: other mmap failures (errno kept).
    """
    size = count * stride_of(value_size)
    op = f"memory of {what}"
    try:
        access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError as exc:
        raise MapError(exc.errno or _errno.EBADF, op) from None
    if access != os.O_RDWR:
        # The kernel maps a map only as a shared mapping, which a file opened
        # read-only cannot have (EINVAL), nor a write-only one (EACCES).
        kind = "read-only" if access == os.O_RDONLY else "write-only"
        raise MapPermissionError(
            _errno.EACCES,
            op,
            f"the fd is {kind}, and the kernel maps a map only through a read-write fd "
            "(open it read-write; memory(writable=False) gives a read-only view)",
        )
    if writable is not False:
        try:
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            err = exc.errno or _errno.EIO
            why = _WHY_READ_ONLY.get(err)
            if why is None:
                raise _mmap_error(err, op) from None
            if writable:
                raise MapPermissionError(
                    err, op, f"the kernel refused a writable mapping: {why}"
                ) from None
            log.info("%s: writable mapping refused (%s); mapped read-only", op, why)
        else:
            return MapMemory(mm, count, value_size, False, "")
        reason, refused = why, True
    else:
        reason, refused = "a read-only mapping was asked for", False
    try:
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    except OSError as exc:
        err = exc.errno or _errno.EIO
        raise _mmap_error(err, op) from None
    return MapMemory(mm, count, value_size, True, reason, refused=refused)


def _mmap_error(err: int, op: str) -> MapError:
    if err in (ENOTSUPP, _errno.EOPNOTSUPP):
        return NotSupportedError(
            err,
            op,
            "the kernel cannot map this map (a value with a spin lock, timer or "
            "kernel pointer is never mmapable)",
        )
    if err == _errno.ENODEV:
        return NotSupportedError(err, op, "this map type cannot be memory-mapped")
    return MapError(err, op)


def mmapable(h: MapHandle) -> bool:
    """Whether the map is an ARRAY created with BPF_F_MMAPABLE (no syscall)."""
    return h.map_type is MapType.ARRAY and bool(int(h.map_flags) & _MMAPABLE)


def handle_memory(h: MapHandle, writable: bool | None = None) -> memoryview:
    """The body of :meth:`MapHandle.memory`: the handle's mapping, made once, and a view.

    Raises:
        NotSupportedError: not an mmapable ARRAY (before any syscall).
        MapPermissionError, MapError: see :func:`map_memory`.
    """
    mem = handle_mapping(h, writable)
    if writable is False:
        return mem.view(readonly=True)
    return mem.view()


def handle_mapping(h: MapHandle, writable: bool | None = None) -> MapMemory:
    """The handle's mapping (made on first use), able to do what ``writable`` asks.

    Raises:
        MapClosedError: the handle is closed.
        NotSupportedError: not an mmapable ARRAY (before any syscall).
    """
    h._open_fd()
    if writable is not None and not isinstance(writable, bool):
        raise bad("memory", "writable", writable, "True, False or None")
    if not mmapable(h):
        mt = h.map_type
        hint = (
            "create it with map_flags=MapCreateFlags.MMAPABLE"
            if mt is MapType.ARRAY
            else "only ARRAY maps can be memory-mapped"
        )
        raise NotSupportedError(
            _errno.EINVAL, "memory", f"the {mt.name} map {h.name!r} is not mmapable: {hint}"
        )
    with _make_lock:
        mem = h._mem
        if mem is not None and not mem.closed:
            if writable is False or not mem.readonly:
                return mem
            if mem.refused:  # the kernel said no to a writable mapping already
                if writable:
                    raise MapPermissionError(
                        _errno.EPERM,
                        f"memory of map {h.name!r}",
                        f"the kernel refused a writable mapping: {mem.why_readonly}",
                    )
                return mem
            # read-only because read-only was asked for: try a writable one now
        # The fd is in flight while the mapping takes its own duplicate of it
        # (a close from another thread could otherwise free the number first).
        with h._using() as fd:
            new = map_memory(
                fd, h.max_entries, h.value_size, writable=writable, what=f"map {h.name!r}"
            )
        if mem is not None:
            mem.close()  # read-only by request: its views live on (deferred unmap)
        h._mem = new
        return new


def release(h: MapHandle) -> None:
    """On close: drop the handle's mapping (deferred while views are exported)."""
    mem = h._mem
    if mem is not None:
        h._mem = None
        mem.close()


def before_freeze(h: MapHandle) -> None:
    """Drop an idle writable mapping, which would make the kernel refuse to freeze.

    Raises:
        MapError: EBUSY, when views of a writable mapping are still exported.
    """
    mem = h._mem
    if mem is None or mem.closed or mem.readonly:
        return
    if mem.try_close():
        h._mem = None
        return
    raise MapError(
        _errno.EBUSY,
        "freeze",
        "a writable memory() view of this map is still in use, and the kernel "
        "refuses to freeze a map while it is mapped writable: release the views "
        "(memoryview.release()) first",
    )
