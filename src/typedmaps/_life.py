"""Lifetime under threads: in-flight accounting for every owner of an fd or a libbpf object.

``close()`` may race any call on the same handle, map, object, program or
link from another thread. The call then either completes on the object it
started on or raises :class:`MapClosedError`; it never passes an fd number
to the kernel after that number was closed (the kernel hands the lowest free
number to the next ``open``/``bpf()`` at once, so a late write would land in
whatever the process opened next), and libbpf never frees a ``bpf_object``
while a call still uses one of its maps or programs.

The mechanism: one list per owner, ``calls``.

* ``calls[0]`` is the state: the fd (or 1 for owners without an fd) while
  usable, ``CLOSED`` (-1) once closed, ``UNBOUND`` (-2) while not usable yet
  (a :class:`Map` before load). It is written only under the owner's lock
  (``close()``, ``bind()``); calls only read it.
* Every call that uses the resource appends one ``None`` before reading
  ``calls[0]`` and pops one when the syscall is over: ``len(calls) - 1`` is
  the number of calls in flight. ``pop()`` removes the last item, never
  ``calls[0]``: each popper still has its own ``None`` in the list.
* ``close()`` stores ``CLOSED`` and then looks at the length; a call that
  sees ``CLOSED`` after its ``pop()`` looks too. Whoever sees ``CLOSED`` with
  no call in flight takes the one item of ``pending`` (the release action:
  ``os.close(fd)``, ``bpf_object__close``, ...) with ``pending.pop()``; that
  pop succeeds exactly once, so the resource is released exactly once.

Only ``list.append``, ``list.pop``, ``len()`` and item reads and stores of
one list decide anything, each an atomic step (under the GIL, and in the
free-threaded build, where list operations lock the list). With every step
of every thread in one order, the interleavings are:

1. A call reads ``calls[0]`` before close() stores CLOSED: it uses the fd.
   Its ``None`` went in before that read and stays until its pop, so every
   length check made after the store and before that pop sees at least 2:
   nobody releases the fd while the call uses it. After its pop the call
   reads CLOSED and checks the length itself.
2. A call appends after the store: it reads CLOSED, never touches the fd,
   pops, and raises MapClosedError (it may be the one that releases, which
   is harmless: it holds nothing).
3. A call appends after the store but before close()'s length check: the
   check sees 2 and does nothing; that call's own check after its pop
   releases (or a later one does).
4. Two threads check at once (close() and the last call, or two last
   calls): both may see length 1; ``pending.pop()`` lets one of them
   release, the other gets IndexError and does nothing.
5. No leak: after the store, let P be the last pop of all. Its caller reads
   CLOSED and then the length; any append after P would need a later pop,
   so the length is 1 and it releases. With no pop after the store, no call
   was in flight at the store and none enters after it without a pop, so
   close()'s own check releases.
6. Two close() calls: both store CLOSED (the same value) and check; step 4
   keeps the release single.
7. ``bind()`` (UNBOUND -> fd, a Map at load) and ``close()`` hold the same
   lock, so a Map closed before load stays closed; ``_finish`` releases
   only in the CLOSED state, never while UNBOUND.

A call that is interrupted (KeyboardInterrupt, an error while encoding)
still pops in its ``finally``. A suspended generator (a batch iterator)
holds an entry only while inside a syscall, never between batches: it
registers again for the next one and then sees CLOSED.

Costs, on the hot path: one append, two item reads, one pop (about 30 ns
under CPython 3.11; bench/run.py measures it as "lifetime" against the bare
cffi call). Close and bind take a lock; calls never do.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, NoReturn

from .errors import ArgumentError

__all__ = ["CLOSED", "UNBOUND", "Lifetime", "NoCopy"]

CLOSED: Final = -1
UNBOUND: Final = -2


class Lifetime:
    """In-flight accounting for one resource (see the module docstring).

    Args:
        value: the initial state: an fd or 1 (usable), or UNBOUND.
        release: what to run, exactly once, when the resource is closed and
            no call is in flight (None: nothing to release).
    """

    __slots__ = ("_lock", "_pending", "calls")

    def __init__(self, value: int, release: Callable[[], object] | None) -> None:
        # [state, None * calls in flight]; Any: the hot paths compare items with ints.
        self.calls: list[Any] = [value]
        self._pending: list[Callable[[], object]] = [] if release is None else [release]
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        """The state now: the fd (>= 0), CLOSED or UNBOUND. For display and checks only."""
        v: int = self.calls[0]
        return v

    def enter(self) -> int:
        """Register a call; returns the state. A negative state is unregistered again.

        A caller that gets a value >= 0 must call :meth:`leave` once, in a
        ``finally``.
        """
        calls = self.calls
        calls.append(None)
        v: int = calls[0]
        if v < 0:
            self.leave()
        return v

    def leave(self) -> None:
        """Unregister a call; the last one out after close() releases the resource."""
        calls = self.calls
        calls.pop()
        if calls[0] < 0:
            self.finish()

    @contextlib.contextmanager
    def using(self, closed: Callable[[], BaseException]) -> Iterator[int]:
        """``with lt.using(error) as value:``: registered for the block.

        Raises:
            the exception ``closed()`` returns, when the state is negative.
        """
        v = self.enter()
        if v < 0:
            raise closed()
        try:
            yield v
        finally:
            self.leave()

    def bind(self, value: int) -> bool:
        """UNBOUND -> ``value`` (>= 0); False (and no change) in any other state."""
        with self._lock:
            if self.calls[0] != UNBOUND:
                return False
            self.calls[0] = value
            return True

    def close(self) -> None:
        """Mark closed (idempotent); release now if no call is in flight.

        Errors of the release action propagate when it runs here; when the
        last call in flight runs it instead, they are dropped (that call's
        own result stands).
        """
        with self._lock:
            self.calls[0] = CLOSED
        self.finish(raise_errors=True)

    def finish(self, raise_errors: bool = False) -> None:
        """Release the resource if it is closed and no call is in flight (once)."""
        calls = self.calls
        if calls[0] != CLOSED or len(calls) != 1:
            return
        try:
            release = self._pending.pop()
        except IndexError:
            return  # released already, or by the thread that won the pop
        if raise_errors:
            release()
            return
        with contextlib.suppress(Exception):
            release()

    @property
    def released(self) -> bool:
        """Whether the release action has run (or been taken by a thread running it)."""
        return not self._pending


class NoCopy:
    """Refuses copy.copy, copy.deepcopy and pickle: the object owns an fd or a libbpf object.

    A copy would share the fd and close it twice, or point at freed memory.
    """

    __slots__ = ()

    def _no_copy(self, what: str) -> NoReturn:
        name = type(self).__name__
        raise ArgumentError(
            f"{name} cannot be {what}: it owns a kernel file descriptor or a libbpf "
            f"object. Share the {name} itself between threads, or open another handle "
            "(MapHandle.from_fd(h.fileno()) duplicates a map's fd; pin it to share it "
            "between processes)"
        )

    def __copy__(self) -> NoReturn:
        self._no_copy("copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        self._no_copy("copied")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        self._no_copy("pickled")

    def __getstate__(self) -> NoReturn:
        self._no_copy("pickled")
