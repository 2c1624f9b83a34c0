"""Event streams: BPF ring buffers, perf buffers and user ring buffers, as bytes.

A BPF program hands records to user space through a BPF_MAP_TYPE_RINGBUF
(Linux 5.8+, one ring shared by every CPU, records in the order they were
reserved) or a BPF_MAP_TYPE_PERF_EVENT_ARRAY (one perf ring per CPU, older
kernels); user space hands records to a program through a
BPF_MAP_TYPE_USER_RINGBUF (Linux 6.1+), which the program drains with
``bpf_user_ringbuf_drain()``::

    with tm.RingBuffer(obj.maps["events"]) as rb:
        for record in rb:          # bytes, in the kernel's order; ends on rb.close()
            ...

Every reading stream (:class:`RingBuffer`, :class:`PerfBuffer` and their
typed forms in :mod:`typedmaps.typed`) has the same methods:

``consume()``
    every record available now; never blocks.
``poll(timeout=None)``
    waits up to ``timeout`` seconds (None: forever, 0: not at all) for the
    first record, then returns every record that is ready; ``[]`` when the
    time runs out. Never returns early: the wait is rounded up to whole
    milliseconds.
``for r in stream`` / ``async for r in stream`` / ``await stream.apoll(timeout)``
    blocking iteration, and its asyncio form, which waits on
    :meth:`~EventStream.fileno` through the running event loop (no thread,
    the loop never blocks). Both end cleanly when :meth:`~EventStream.close`
    is called from any thread.
``fileno()``
    an fd that is readable when records (or a close) are waiting: for
    ``selectors``, ``select`` and event loops.

Records come out in the kernel's order, each exactly once, never half
written; records a program discarded are skipped. Several threads may read
one stream: each record goes to exactly one of them. One stream per ring:
two consumers of the same ring (two streams, or another process) would take
records from under each other, as with libbpf.

How the rings are read: directly. Each stream maps the ring's memory
(``mmap``) and copies records out in batches, with no Python call per
record between the ring and the decoder: see :mod:`typedmaps._rings` and
docs/events.md for the memory ordering this relies on (x86-64), the
measurements that chose it over libbpf's callbacks, and what other
architectures get instead.

Lifetime: :meth:`~EventStream.close` may race any other call from another
thread. A call that is running when close() comes finishes on the stream's
resources (the mapped ring, the epoll and wake-up fds), which are released
when the last such call leaves; calls that start later raise
:class:`~typedmaps.errors.MapClosedError`; a blocked ``poll`` or iterator
is woken at once. Closing a stream also closes the handle it was made over,
as every typed wrapper does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as _errno
import math
import os
import select
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, Final, Generic, Self, TypeVar

from . import _ffi, _rings
from ._args import as_bytes
from ._life import CLOSED, Lifetime, NoCopy
from ._rings import HDR, Batch
from .errors import (
    ArgumentError,
    CodecError,
    MapClosedError,
    MapError,
    MapFullError,
    NotSupportedError,
)
from .flags import MapType
from .handle import BytesLike, MapHandle

__all__ = [
    "EventGroup",
    "EventStream",
    "PerfBuffer",
    "RingBuffer",
    "UserRingBuffer",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R_co = TypeVar("R_co", covariant=True)

#: Iteration takes about this many bytes of records from a ring at a time.
_ITER_BYTES: Final = 256 * 1024
#: A wake-up that found nothing (a record still being written) waits this
#: long before the next wait, so a busy record never spins a CPU.
_IDLE_S: Final = 0.001
_U32_MAX: Final = 0xFFFFFFFF
#: bpf_dynptr's size limit, which bpf_user_ringbuf_drain() applies to samples.
_DYNPTR_MAX: Final = (1 << 24) - 1


# ---------------------------------------------------------------------------- helpers


def _timeout(timeout: object, op: str) -> float | None:
    """A validated timeout in seconds: None (forever) or a finite float >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ArgumentError(
            f"{op}: timeout must be seconds (a number >= 0) or None, not {type(timeout).__name__}",
            argument="timeout",
            value=timeout,
        )
    t = float(timeout)
    if math.isnan(t) or t < 0:
        raise ArgumentError(
            f"{op}: timeout must be >= 0 seconds or None, got {timeout!r}",
            argument="timeout",
            value=timeout,
        )
    return None if math.isinf(t) else t


def _count(max_records: object, op: str) -> int | None:
    """A validated record limit: None (no limit) or an int >= 1."""
    if max_records is None:
        return None
    if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
        raise ArgumentError(
            f"{op}: max_records must be a number of records >= 1, or None; got {max_records!r}",
            argument="max_records",
            value=max_records,
        )
    return max_records


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (None: no deadline), at least 0."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _need_kind(handle: object, wrapper: str, *kinds: MapType) -> MapHandle:
    if not isinstance(handle, MapHandle):
        raise ArgumentError(
            f"{wrapper}() needs a MapHandle or Map, got {type(handle).__name__}",
            argument="handle",
            value=handle,
        )
    mt = handle.map_type
    if mt not in kinds:
        fits = {
            MapType.RINGBUF: "RingBuffer / TypedRingBuffer",
            MapType.PERF_EVENT_ARRAY: "PerfBuffer / TypedPerfBuffer",
            MapType.USER_RINGBUF: "UserRingBuffer / TypedUserRingBuffer",
        }.get(mt)
        hint = f"use {fits}" if fits else "it is not an event stream map"
        want = " or ".join(k.name for k in kinds)
        raise NotSupportedError(
            _errno.EINVAL,
            wrapper,
            f"{wrapper} needs a {want} map, not the {mt.name} map {handle.name!r}: {hint}",
        )
    return handle


class _Life:
    """Close racing other calls, as every fd owner does (:class:`~typedmaps._life.Lifetime`),
    plus the wake-up: close() writes the eventfd in the stream's epoll set.

    ``enter()``/``leave()`` bracket every call that touches the stream's
    resources; ``close()`` marks the stream closed, wakes every waiter, and
    the resources go when no call is in flight (the last one out releases).
    """

    __slots__ = ("_efd", "_lock", "_lt", "_what")

    def __init__(self, what: str, efd: int, release: Callable[[], None]) -> None:
        self._lt = Lifetime(1, release)
        self._lock = threading.Lock()
        self._what = what
        self._efd = efd

    @property
    def closed(self) -> bool:
        return bool(self._lt.calls[0] == CLOSED)

    def error(self) -> MapClosedError:
        return MapClosedError(f"{self._what} is closed")

    def enter(self) -> None:
        if self._lt.enter() < 0:
            raise self.error()

    def leave(self) -> None:
        self._lt.leave()

    def close(self) -> bool:
        """Mark closed and wake waiters; False if it already was."""
        with self._lock:
            if self.closed:
                return False
            os.eventfd_write(self._efd, 1)  # stays readable: every waiter wakes
            self._lt.close()
        return True


class _Waitable(NoCopy):
    """An epoll set plus an eventfd that close() writes: the blocking part of a stream."""

    __slots__ = ("__weakref__", "_epoll", "_life", "_waiters")

    _epoll: select.epoll
    _life: _Life
    _waiters: dict[asyncio.AbstractEventLoop, set[asyncio.Future[None]]]

    def _setup_wait(
        self, what: str, fds: Iterable[tuple[int, int]], release: Callable[[], None]
    ) -> None:
        """Make the epoll set over ``fds`` ((fd, events) pairs) and the close eventfd."""
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            ep = select.epoll()
        except OSError:
            os.close(efd)
            raise
        try:
            ep.register(efd, select.EPOLLIN)
            for fd, events in fds:
                ep.register(fd, events)
        except OSError as exc:
            ep.close()
            os.close(efd)
            raise MapError(exc.errno or _errno.EINVAL, f"{what}: epoll") from None

        def release_all() -> None:
            try:
                release()
            finally:
                ep.close()
                os.close(efd)

        self._epoll = ep
        self._waiters = {}
        self._life = _Life(what, efd, release_all)

    def _wait(self, timeout: float | None) -> bool:
        """Block until something is ready (True) or ``timeout`` passes (False). In flight only."""
        return bool(self._epoll.poll(-1 if timeout is None else timeout, 1))

    async def _wait_async(self, timeout: float | None) -> bool:
        """The asyncio form of :meth:`_wait`: the running loop watches the epoll fd."""
        loop = asyncio.get_running_loop()
        waiters = self._waiters.get(loop)
        if waiters is None:
            waiters = self._waiters[loop] = set()
            loop.add_reader(self._epoll.fileno(), self._wake_async, loop)
        fut: asyncio.Future[None] = loop.create_future()
        waiters.add(fut)
        try:
            if timeout is None:
                await fut
                return True
            try:
                async with asyncio.timeout(timeout):
                    await fut
            except TimeoutError:
                return False
            return True
        finally:
            waiters.discard(fut)
            if not waiters:
                del self._waiters[loop]
                loop.remove_reader(self._epoll.fileno())

    def _wake_async(self, loop: asyncio.AbstractEventLoop) -> None:
        for fut in self._waiters.get(loop, ()):
            if not fut.done():
                fut.set_result(None)

    # -- public lifecycle --------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._life.closed

    def fileno(self) -> int:
        """An fd that polls readable when records are waiting or the stream was closed.

        For ``selectors`` / ``select.select`` / ``loop.add_reader``: it is
        the stream's epoll fd. Valid until close().

        Raises:
            MapClosedError: the stream is closed.
        """
        life = self._life
        life.enter()
        try:
            return self._epoll.fileno()
        finally:
            life.leave()

    def close(self) -> None:
        """Close the stream (idempotent); safe from any thread, at any time.

        Wakes every blocked ``poll``, iterator and ``apoll`` at once; they
        end (iteration) or raise :class:`MapClosedError`.
        """
        self._life.close()

    def __enter__(self) -> Self:
        if self._life.closed:
            raise self._life.error()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        life = getattr(self, "_life", None)
        if life is not None and not life.closed:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()


# ---------------------------------------------------------------------------- reading streams


class _Reading(_Waitable, Generic[R_co]):
    """consume / poll / iteration / asyncio over ``_take()``: streams and groups alike."""

    __slots__ = ()

    def _take(self, limit: int | None, count: int | None) -> list[Any]:
        """Records ready now (about ``limit`` bytes from a ring, ``count`` records at
        most); in flight only."""
        raise NotImplementedError

    def consume(self, *, max_records: int | None = None) -> list[R_co]:
        """Every record available now, in order; never blocks.

        Args:
            max_records: take at most this many (the rest stay in the ring).

        Raises:
            MapClosedError: the stream is closed.
            CodecError: (typed streams) the next record does not fit the
                schema; ``.value`` is its raw bytes. The records before it
                were returned by the previous call, the ones after it come
                with the next.
        """
        count = _count(max_records, "consume")
        life = self._life
        life.enter()
        try:
            return self._take(None, count)
        finally:
            life.leave()

    def poll(self, timeout: float | None = None, *, max_records: int | None = None) -> list[R_co]:
        """Wait up to ``timeout`` seconds for the first record; return every record ready.

        Args:
            timeout: seconds; None waits forever, 0 does not wait.
            max_records: return at most this many (the rest stay in the ring).

        Returns:
            the records, in order; ``[]`` if none came in time.

        Raises:
            MapClosedError: the stream is closed, also while waiting.
            CodecError: as :meth:`consume`.
        """
        return self._poll(_timeout(timeout, "poll"), None, _count(max_records, "poll"))

    def _poll(self, timeout: float | None, limit: int | None, count: int | None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        life = self._life
        life.enter()
        try:
            idle = False
            while True:
                got = self._take(limit, count)
                if got or life.closed:
                    if not got:
                        raise life.error()
                    return got
                wait = _remaining(deadline)
                if wait == 0:
                    return got
                if idle:  # woken, and still nothing: a record is being written
                    time.sleep(_IDLE_S if wait is None else min(_IDLE_S, wait))
                    wait = _remaining(deadline)
                idle = self._wait(wait)
        finally:
            life.leave()

    def __iter__(self) -> Iterator[R_co]:
        """Records as they come, blocking; ends when :meth:`close` is called (any thread).

        A :class:`CodecError` (typed streams) ends this loop; iterating
        again goes on with the record after it.
        """
        if self._life.closed:
            raise self._life.error()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        life = self._life
        while True:
            try:
                records = self._poll(None, _ITER_BYTES, None)
            except MapClosedError:
                return
            yield from records
            if life.closed:
                return

    async def apoll(
        self, timeout: float | None = None, *, max_records: int | None = None
    ) -> list[R_co]:
        """:meth:`poll` for asyncio: the running loop waits on :meth:`fileno`.

        No thread is used and the loop never blocks; several tasks may
        wait on one stream.

        Raises:
            MapClosedError: the stream is closed, also while waiting.
            CodecError: as :meth:`consume`.
        """
        deadline = _timeout(timeout, "apoll")
        count = _count(max_records, "apoll")
        if deadline is not None:
            deadline += time.monotonic()
        life = self._life
        life.enter()
        try:
            idle = False
            while True:
                got = self._take(None, count)
                if got or life.closed:
                    if not got:
                        raise life.error()
                    return got
                wait = _remaining(deadline)
                if wait == 0:
                    return got
                if idle:
                    await asyncio.sleep(_IDLE_S if wait is None else min(_IDLE_S, wait))
                    wait = _remaining(deadline)
                idle = await self._wait_async(wait)
        finally:
            life.leave()

    def __aiter__(self) -> AsyncIterator[R_co]:
        """``async for``: records as they come; ends when :meth:`close` is called."""
        if self._life.closed:
            raise self._life.error()
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[Any]:
        life = self._life
        while True:
            try:
                records = await self.apoll(None)
            except MapClosedError:
                return
            for r in records:
                yield r
            if life.closed:
                return


class EventStream(_Reading[T_co]):
    """What every reading stream has: consume, poll, iteration, asyncio, close.

    Made by :class:`RingBuffer`, :class:`PerfBuffer` and the typed streams
    of :mod:`typedmaps.typed` (``T_co`` is ``bytes`` or the record type).
    """

    __slots__ = ("_groups", "_h", "_lock", "_pending", "_reader", "_what")

    _reader: Any

    def _setup(
        self, handle: MapHandle, what: str, open_reader: Callable[[int], Any], events: int
    ) -> None:
        """Take a dup of the map fd, open the reader on it, make the epoll set."""
        self._h = handle
        self._what = f"{what} {handle.name!r}"
        self._lock = threading.Lock()
        self._pending: deque[list[Any] | CodecError] = deque()
        self._groups: weakref.WeakSet[EventGroup[Any]] = weakref.WeakSet()
        with handle._using() as hfd:  # the handle's fd cannot be closed under the dup
            fd = os.dup(hfd)
        try:
            reader = open_reader(fd)
        except BaseException:
            os.close(fd)
            raise
        fds = getattr(reader, "fds", None) or [fd]

        def release() -> None:
            try:
                reader.close()
            finally:
                os.close(fd)

        try:
            self._setup_wait(self._what, [(f, events) for f in fds], release)
        except BaseException:
            release()
            raise
        self._reader = reader

    # -- subclass hook ---------------------------------------------------------

    def _decode(self, batch: Batch) -> None:
        """Append the batch's records (a list), and any CodecError in its place, to _pending."""
        self._pending.append(batch.records())

    # -- reading ---------------------------------------------------------------

    @property
    def handle(self) -> MapHandle:
        """The map handle the stream was made over."""
        return self._h

    def _take(self, limit: int | None, count: int | None) -> list[Any]:
        """Records ready now, up to the first decode error (raised when it is first)."""
        with self._lock:
            pending = self._pending
            if not pending:
                for batch in self._reader.take(limit, count):
                    self._decode(batch)
            out: list[Any] = []
            while pending:
                item = pending[0]
                if type(item) is list:
                    room = None if count is None else count - len(out)
                    if room is not None and len(item) > room:
                        out.extend(item[:room])
                        pending[0] = item[room:]
                        break
                    pending.popleft()
                    if out:
                        out.extend(item)
                    else:
                        out = item
                    if count is not None and len(out) >= count:
                        break
                    continue
                if out:
                    break  # hand out what came before; the error is next
                pending.popleft()
                raise item  # type: ignore[misc]
            return out

    def close(self) -> None:
        """Close the stream and the handle under it (idempotent; safe from any thread).

        A blocked ``poll``, iterator or ``apoll`` wakes at once; iteration
        ends, ``poll``/``apoll`` raise :class:`MapClosedError`. The ring's
        memory is unmapped when the last call still reading it returns.
        """
        if self._life.close():
            self._h.close()
            for group in list(self._groups):
                group._kick()  # its epoll set loses this stream's fd: say so

    def __repr__(self) -> str:
        state = ", closed" if self._life.closed else ""
        return f"{type(self).__name__}(map={self._h.name!r}{state})"


def _open_ringbuf(handle: MapHandle, what: str) -> Callable[[int], Any]:
    """The reader factory for a RINGBUF, checked before any syscall."""
    _need_kind(handle, what, MapType.RINGBUF)
    size = handle.max_entries
    if not _rings.DIRECT:
        raise NotSupportedError(
            _errno.EOPNOTSUPP,
            what,
            "reading ring buffers directly needs x86-64 memory ordering (see docs/events.md)",
        )
    return lambda fd: _rings.RingbufReader(fd, size)


def _open_perf(handle: MapHandle, what: str, pages: object) -> Callable[[int], Any]:
    """The reader factory for a PERF_EVENT_ARRAY, checked before any syscall."""
    _need_kind(handle, what, MapType.PERF_EVENT_ARRAY)
    if (
        isinstance(pages, bool)
        or not isinstance(pages, int)
        or pages < 1
        or pages & (pages - 1)
        or pages > 1 << 20
    ):
        raise ArgumentError(
            f"{what}: pages per CPU must be a power of two (1, 2, 4, ...), got {pages!r}",
            argument="pages",
            value=pages,
        )
    if not _rings.DIRECT:
        raise NotSupportedError(
            _errno.EOPNOTSUPP,
            what,
            "reading perf buffers directly needs x86-64 memory ordering (see docs/events.md)",
        )
    ncpus = _ffi.num_possible_cpus()
    online = _online_cpus(ncpus)
    cpus = [c for c in range(min(ncpus, handle.max_entries)) if c in online]
    if not cpus:
        raise NotSupportedError(
            _errno.EINVAL, what, f"the map {handle.name!r} has no slot for an online CPU"
        )
    return lambda fd: _rings.PerfReader(fd, cpus, ncpus, pages)


def _online_cpus(ncpus: int) -> set[int]:
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return set(range(ncpus))
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


class RingBuffer(EventStream[bytes]):
    """A BPF_MAP_TYPE_RINGBUF read as records of bytes (Linux 5.8+).

    Each record is exactly the bytes the program submitted. For typed
    records use :class:`~typedmaps.TypedRingBuffer`.

    Example::

        with tm.RingBuffer(obj.maps["events"]) as rb:
            for raw in rb.poll(timeout=1.0):
                ...

    Raises:
        NotSupportedError: the map is not a RINGBUF.
        MapPermissionError: the fd cannot map the ring (a read-only fd
            cannot move the consumer position).
    """

    __slots__ = ()

    def __init__(self, handle: MapHandle) -> None:
        self._setup(handle, "RingBuffer", _open_ringbuf(handle, "RingBuffer"), select.EPOLLIN)


class _PerfLost:
    """``lost`` and ``lost_by_cpu`` of a perf buffer (bytes or typed): a mixin."""

    __slots__ = ()

    _life: _Life
    _reader: Any

    @property
    def lost(self) -> int:
        """Samples the kernel dropped (their CPU's ring was full), over every CPU."""
        return sum(self.lost_by_cpu)

    @property
    def lost_by_cpu(self) -> list[int]:
        """Dropped samples per CPU (index = CPU number, one entry per possible CPU)."""
        life = self._life
        life.enter()
        try:
            counts: list[int] = self._reader.lost_by_cpu()
            return counts
        finally:
            life.leave()


class PerfBuffer(_PerfLost, EventStream[bytes]):
    """A BPF_MAP_TYPE_PERF_EVENT_ARRAY read as records of bytes, one ring per CPU.

    Opens a perf event with a ring of ``pages`` pages on every online CPU
    and stores it in the map, as libbpf's perf_buffer does (the program
    calls ``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)``).
    Records of one CPU come out in order; ``consume``/``poll`` hand out
    each CPU's records in turn (CPU 0 first), so records of different CPUs
    are not in time order.

    The kernel pads each sample so that it ends on 8 bytes after a 4-byte
    size: a 40-byte record arrives as 44 bytes, whose last 4 are zeros, and
    its exact length is lost. When a CPU's ring is full the kernel drops
    samples and reports how many in front of the next sample that fits:
    :attr:`lost` and :attr:`lost_by_cpu` add them up.

    Raises:
        NotSupportedError: the map is not a PERF_EVENT_ARRAY.
        CodecError: ``pages`` is not a power of two.
        MapPermissionError: perf events need CAP_PERFMON (or CAP_SYS_ADMIN).
    """

    __slots__ = ()

    def __init__(self, handle: MapHandle, *, pages: int = 64) -> None:
        self._setup(handle, "PerfBuffer", _open_perf(handle, "PerfBuffer", pages), select.EPOLLIN)


# ---------------------------------------------------------------------------- groups


class EventGroup(_Reading[tuple[EventStream[T_co], T_co]]):
    """Several streams polled in one wait; each record comes with the stream it came from.

    Example::

        group = tm.EventGroup([events, samples])
        for stream, record in group.poll(timeout=1.0):
            ...

    The group does not own its streams: :meth:`close` closes the group
    only. A stream closed on its own drops out of the group; when every
    stream is gone, ``poll`` raises :class:`MapClosedError` and iteration
    ends.
    """

    __slots__ = ("_error", "_kick_fd", "_lock", "_streams")

    def __init__(self, streams: Iterable[EventStream[T_co]]) -> None:
        members = list(streams)
        for s in members:
            if not isinstance(s, EventStream):
                raise ArgumentError(
                    f"EventGroup() takes event streams, got {type(s).__name__}",
                    argument="streams",
                    value=s,
                )
        if len({id(s) for s in members}) != len(members):
            raise ArgumentError(
                "EventGroup(): a stream is listed twice", argument="streams", value=members
            )
        self._streams: list[EventStream[T_co]] = members
        self._error: CodecError | None = None
        self._lock = threading.Lock()
        fds = [(s.fileno(), select.EPOLLIN) for s in members]
        # A stream that closes takes its epoll fd out of this set, readiness
        # and all: it kicks this eventfd instead, so that waiters notice.
        kick = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            self._setup_wait("EventGroup", [*fds, (kick, select.EPOLLIN)], lambda: os.close(kick))
        except BaseException:
            os.close(kick)
            raise
        self._kick_fd = kick
        for s in members:
            s._groups.add(self)

    def _kick(self) -> None:
        """Wake the group's waiters (a stream of it was closed)."""
        life = self._life
        try:
            life.enter()
        except MapClosedError:
            return
        try:
            os.eventfd_write(self._kick_fd, 1)
        finally:
            life.leave()

    @property
    def streams(self) -> Sequence[EventStream[T_co]]:
        """The streams still in the group."""
        return tuple(self._streams)

    def _take(self, limit: int | None, count: int | None) -> list[tuple[EventStream[T_co], T_co]]:
        with self._lock:
            return self._take_locked(limit, count)

    def _take_locked(
        self, limit: int | None, count: int | None
    ) -> list[tuple[EventStream[T_co], T_co]]:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._kick_fd)  # reset: the streams are checked below
        err = self._error
        if err is not None:
            self._error = None
            raise err
        out: list[tuple[EventStream[T_co], T_co]] = []
        for s in list(self._streams):
            try:
                s._life.enter()
            except MapClosedError:
                self._streams.remove(s)
                continue
            try:
                records = s._take(limit, None if count is None else count - len(out))
            except CodecError as exc:
                if not out:
                    raise
                self._error = exc
                break
            finally:
                s._life.leave()
            if records:
                out.extend(zip(repeat(s), records, strict=False))
                if count is not None and len(out) >= count:
                    break
        if not out and not self._streams:
            raise MapClosedError("EventGroup: every stream in it is closed")
        return out

    def __repr__(self) -> str:
        state = ", closed" if self._life.closed else ""
        return f"EventGroup({len(self._streams)} streams{state})"


# ---------------------------------------------------------------------------- user ring buffer


class _UserRing(_Waitable):
    """The producer side of a USER_RINGBUF: what the bytes and typed forms share."""

    __slots__ = ("_h", "_lock", "_reserved", "_what", "_writer")

    _writer: _rings.UserRingWriter

    def _setup(self, handle: MapHandle, what: str) -> None:
        _need_kind(handle, what, MapType.USER_RINGBUF)
        if not _rings.DIRECT:
            raise NotSupportedError(
                _errno.EOPNOTSUPP,
                what,
                "writing user ring buffers directly needs x86-64 memory ordering "
                "(see docs/events.md)",
            )
        self._h = handle
        self._what = f"{what} {handle.name!r}"
        self._lock = threading.Lock()
        self._reserved: dict[int, tuple[int, int, memoryview]] = {}
        size = handle.max_entries
        with handle._using() as hfd:
            fd = os.dup(hfd)
        try:
            writer = _rings.UserRingWriter(fd, size)
        except BaseException:
            os.close(fd)
            raise

        def release() -> None:
            try:
                # A reservation never submitted is discarded in the ring too:
                # the kernel stops at a busy record, for good, and would never
                # drain what any later producer of this map writes after it.
                for pos, size, view in self._reserved.values():
                    writer.commit(pos, size, True)
                    view.release()
                self._reserved.clear()
                writer.close()
            finally:
                os.close(fd)

        try:
            # Edge-triggered: one wake-up per drain by the kernel, never a spin
            # while the ring stays too full for the next record.
            self._setup_wait(self._what, [(fd, select.EPOLLOUT | select.EPOLLET)], release)
        except BaseException:
            release()
            raise
        self._writer = writer

    @property
    def handle(self) -> MapHandle:
        """The map handle the ring was made over."""
        return self._h

    @property
    def size(self) -> int:
        """The ring's data size in bytes (its max_entries)."""
        return self._writer.size

    @property
    def free(self) -> int:
        """Free bytes now (each record takes its size + 8, rounded up to 8)."""
        life = self._life
        life.enter()
        try:
            with self._lock:  # no push moves the producer position meanwhile
                return self._writer.room()
        finally:
            life.leave()

    def _check_size(self, size: int, op: str) -> int:
        total = (size + HDR + 7) & ~7
        if size > _DYNPTR_MAX or total > self._writer.size:
            raise ArgumentError(
                f"{op}: a {size}-byte record does not fit a {self._writer.size}-byte user ring "
                f"buffer (each record takes its size + 8 bytes, rounded up to 8)",
                argument="size",
                value=size,
            )
        return total

    def _until_room(
        self, total: int, deadline: float | None, timeout: float | None, op: str
    ) -> None:
        """Wait (in flight, lock not held) until ``total`` bytes are free or raise."""
        life = self._life
        while True:
            with self._lock:
                room = self._writer.room()
            if room >= total:
                return
            if life.closed:
                raise life.error()
            wait = _remaining(deadline)
            if timeout == 0 or wait == 0:
                raise MapFullError(
                    _errno.ENOSPC,
                    op,
                    f"the user ring buffer {self._h.name!r} is full (the program has not "
                    f"drained it; {room} bytes free, {total} needed)",
                )
            self._wait(wait)

    def _push_blob(self, blob: bytes, total: int, op: str, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        life = self._life
        life.enter()
        try:
            while True:
                self._until_room(total, deadline, timeout, op)
                with self._lock:
                    if self._writer.room() >= total:
                        self._writer.write(blob, total)
                        return
        finally:
            life.leave()

    def _push_records(
        self,
        sizes: list[int],
        make_blob: Callable[[int, int], tuple[bytes, bool]],
        timeout: float | None,
        op: str,
    ) -> int:
        """Push records start..stop as room allows; ``make_blob(start, stop)`` builds
        their bytes (and says whether they are laid out by stride, headers to add)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        n = len(sizes)
        totals = [self._check_size(s, op) for s in sizes]
        life = self._life
        life.enter()
        try:
            done = 0
            while done < n:
                with self._lock:
                    room = self._writer.room()
                    stop, used = done, 0
                    while stop < n and used + totals[stop] <= room:
                        used += totals[stop]
                        stop += 1
                    if stop > done:
                        blob, strided = make_blob(done, stop)
                        if strided:
                            self._writer.write_strided(blob, stop - done, sizes[done], totals[done])
                        else:
                            self._writer.write(blob, used)
                        done = stop
                        continue
                if timeout == 0 or life.closed or _remaining(deadline) == 0:
                    break
                self._until_room(totals[done], deadline, timeout, op)
            return done
        except MapFullError:
            return done
        finally:
            life.leave()

    def __repr__(self) -> str:
        state = ", closed" if self._life.closed else ""
        return f"{type(self).__name__}(map={self._h.name!r}{state})"

    def close(self) -> None:
        """Close the ring and the handle under it (idempotent; safe from any thread).

        Records reserved and not yet submitted are discarded, as
        :meth:`discard` does, so the kernel skips them and goes on with what
        a later producer writes (their views are released: writing to one
        afterwards raises ValueError).
        """
        if self._life.close():
            self._h.close()


def _framed(records: Sequence[bytes]) -> tuple[bytes, int]:
    """Records with their ring headers and padding, back to back, and their total size."""
    parts: list[bytes] = []
    total = 0
    order = sys.byteorder
    for r in records:
        n = len(r)
        pad = (-n) & 7
        parts.append(n.to_bytes(4, order) + bytes(4))
        parts.append(r)
        if pad:
            parts.append(bytes(pad))
        total += HDR + n + pad
    return b"".join(parts), total


class UserRingBuffer(_UserRing):
    """A BPF_MAP_TYPE_USER_RINGBUF written with records of bytes (Linux 6.1+).

    The program reads them with ``bpf_user_ringbuf_drain()``, in the order
    they were submitted. One producer per ring (several threads of this
    stream are fine: it locks).

    Example::

        with tm.UserRingBuffer(obj.maps["commands"]) as ub:
            ub.push(b"...")                      # MapFullError when full
            view = ub.reserve(16, timeout=1.0)   # wait up to 1 s for room
            view[:] = payload
            ub.submit(view)

    Raises:
        NotSupportedError: the map is not a USER_RINGBUF.
    """

    __slots__ = ()

    def __init__(self, handle: MapHandle) -> None:
        self._setup(handle, "UserRingBuffer")

    def push(self, data: BytesLike, *, timeout: float | None = 0) -> None:
        """Write one record.

        Args:
            data: the record's bytes.
            timeout: seconds to wait for room (None: forever; 0: no wait).

        Raises:
            MapFullError: no room in time (nothing was written).
            CodecError: the record can never fit this ring.
            MapClosedError: the ring is closed.
        """
        raw = _bytes_arg(data, "push")
        t = _timeout(timeout, "push")
        self._check_size(len(raw), "push")
        blob, total = _framed([raw])
        self._push_blob(blob, total, "push", t)

    def push_many(self, records: Iterable[BytesLike], *, timeout: float | None = 0) -> int:
        """Write records in order, as many as there is room for (in one publish per batch).

        Args:
            records: the records' bytes.
            timeout: seconds to wait for room for the rest (0: none).

        Returns:
            how many records were written (the first ones); fewer than given
            when the ring filled up and stayed full until the timeout.

        Raises:
            CodecError: a record can never fit this ring (nothing was written).
        """
        raws = [_bytes_arg(r, "push_many") for r in records]
        t = _timeout(timeout, "push_many")

        def blob(start: int, stop: int) -> tuple[bytes, bool]:
            return _framed(raws[start:stop])[0], False

        return self._push_records([len(r) for r in raws], blob, t, "push_many")

    def reserve(self, size: int, *, timeout: float | None = 0) -> memoryview:
        """Room for one ``size``-byte record: a writable view into the ring.

        The kernel does not read the record (nor any after it) until it is
        :meth:`submit`-ted or :meth:`discard`-ed: do either promptly.

        Args:
            size: the record's size in bytes.
            timeout: seconds to wait for room (None: forever; 0: no wait),
                as libbpf's user_ring_buffer__reserve_blocking.

        Raises:
            MapFullError: no room in time.
            CodecError: the size can never fit this ring.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ArgumentError(
                f"reserve: size must be a record size in bytes (an int >= 0), got {size!r}",
                argument="size",
                value=size,
            )
        t = _timeout(timeout, "reserve")
        total = self._check_size(size, "reserve")
        deadline = None if t is None else time.monotonic() + t
        life = self._life
        life.enter()
        try:
            while True:
                self._until_room(total, deadline, t, "reserve")
                with self._lock:
                    got = self._writer.reserve(size)
                    if got is not None:
                        pos, view = got
                        self._reserved[id(view)] = (pos, size, view)
                        return view
        finally:
            life.leave()

    def submit(self, view: memoryview) -> None:
        """Hand a reserved record to the kernel; ``view`` is released (no more writes)."""
        self._commit(view, discard=False, op="submit")

    def discard(self, view: memoryview) -> None:
        """Give a reserved record up: the kernel skips it; ``view`` is released."""
        self._commit(view, discard=True, op="discard")

    def _commit(self, view: memoryview, *, discard: bool, op: str) -> None:
        life = self._life
        life.enter()
        try:
            with self._lock:
                entry = self._reserved.pop(id(view), None)
                if entry is None or entry[2] is not view:
                    if entry is not None:
                        self._reserved[id(view)] = entry
                    raise ArgumentError(
                        f"{op}: not a reservation of this ring (or already submitted)",
                        argument="view",
                        value=view,
                    )
                pos, size, _ = entry
                view.release()
                self._writer.commit(pos, size, discard)
        finally:
            life.leave()


def _bytes_arg(obj: object, op: str) -> bytes:
    # as_bytes copies anything but exact bytes out of its buffer, so a bytes
    # subclass lying about its len() cannot make the framing read past it;
    # a record of the wrong type is a CodecError here, as documented.
    if isinstance(obj, bytes | bytearray | memoryview):
        return as_bytes(obj, "data", op)
    raise CodecError("value", obj, f"{op}: expected a bytes-like object, got {type(obj).__name__}")
