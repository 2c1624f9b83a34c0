"""close() racing every other call of a stream, from other threads, on real rings.

Each run: threads hammer one stream (consume, poll, fileno, iteration,
lost counts, push/reserve) while a program produces, then the main thread
closes it. Every call either works or raises MapClosedError; nothing else
is raised, nothing crashes, and every fd of the stream is gone afterwards.
Bounded by a cycle count and a time cap (the machine may be loaded).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import typedmaps as tm

from .event_streams import EVENT, command, event_fds, loaded

pytestmark = pytest.mark.usefixtures("bpf")

CYCLES = 6
CAP_S = 8.0


def _hammer(calls: list[Callable[[], Any]], close: Callable[[], None]) -> list[BaseException]:
    """Run each call in a loop on its own thread until close(); the unexpected errors."""
    bad: list[BaseException] = []
    stop = threading.Event()

    def loop(call: Callable[[], Any]) -> None:
        while not stop.is_set():
            try:
                call()
            except tm.MapClosedError:
                return
            except BaseException as exc:
                bad.append(exc)
                return

    threads = [threading.Thread(target=loop, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    time.sleep(0.05)
    close()
    stop.set()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    return bad


def test_ring_buffer_close_races_every_call() -> None:
    with loaded("ringbuf") as em:
        before = event_fds()
        deadline = time.monotonic() + CAP_S
        for _ in range(CYCLES):
            if time.monotonic() > deadline:
                break
            ev = tm.TypedRingBuffer(em.maps["events"], value=EVENT)
            em.emit(500)

            def drain_iter(ev: tm.TypedRingBuffer[Any] = ev) -> None:
                for _ in ev:
                    pass
                raise tm.MapClosedError("ended")

            bad = _hammer(
                [
                    ev.consume,
                    functools.partial(ev.poll, 0.001),
                    ev.fileno,
                    drain_iter,
                    lambda: em.emit(50),
                ],
                ev.close,
            )
            assert bad == []
            assert event_fds() == before


def test_perf_and_group_close_race() -> None:
    with loaded("perfbuf") as em, loaded("ringbuf") as rb:
        before = event_fds()
        for _ in range(CYCLES // 2):
            pb = tm.TypedPerfBuffer(em.maps["samples"], value=EVENT, pages=2)
            ring = tm.RingBuffer(rb.maps["events"])
            group = tm.EventGroup([pb, ring])

            def close_all(pb: Any = pb, ring: Any = ring, group: Any = group) -> None:
                pb.close()
                ring.close()
                group.close()

            def lost(pb: tm.TypedPerfBuffer[Any] = pb) -> None:
                assert pb.lost >= 0

            bad = _hammer(
                [
                    pb.consume,
                    lost,
                    functools.partial(group.poll, 0.001),
                    lambda: em.emit(20, cpu=1),
                    lambda: rb.emit(20),
                ],
                close_all,
            )
            assert bad == []
            assert event_fds() == before


def test_user_ring_close_races_pushes() -> None:
    with loaded("userring", size=4096) as em:
        before = event_fds()
        for _ in range(CYCLES // 2):
            ub = tm.UserRingBuffer(em.maps["commands"])

            def free(ub: tm.UserRingBuffer = ub) -> None:
                assert 0 <= ub.free <= 4096

            def reserve(ub: tm.UserRingBuffer = ub) -> None:
                try:
                    view = ub.reserve(16, timeout=0.01)
                except tm.MapFullError:
                    return
                try:
                    view[:] = command(1)
                except ValueError:  # released by close(): the record is dropped
                    raise tm.MapClosedError("closed under the reservation") from None
                ub.submit(view)

            bad = _hammer(
                [
                    functools.partial(ub.push_many, [command(i) for i in range(20)]),
                    reserve,
                    free,
                    em.drain,
                ],
                ub.close,
            )
            assert bad == [], bad
            assert event_fds() == before
