"""UserRingBuffer and TypedUserRingBuffer: records pushed here, drained by bpf/userring.bpf.c."""

from __future__ import annotations

import os
import threading
import time

import pytest

import typedmaps as tm

from .conftest import MakeMap
from .event_streams import COMMAND, Command, command, event_fds, loaded

pytestmark = pytest.mark.usefixtures("bpf")


def test_push_and_push_many_are_seen_by_the_program_in_order() -> None:
    with loaded("userring") as em, tm.UserRingBuffer(em.maps["commands"]) as ub:
        ub.push(command(0, arg=5))
        assert ub.push_many(command(i, arg=i) for i in range(1, 3000)) == 2999
        em.drain()
        assert em.counter("last_drained") == 3000
        assert em.counter("drained") == 3000
        assert em.seen(3000) == list(range(3000))
        assert em.counter("arg_sum") == 5 + sum(range(1, 3000))
        assert em.counter("short_samples") == 0


def test_typed_push_many_and_an_encoding_error_writes_nothing() -> None:
    with (
        loaded("userring") as em,
        tm.TypedUserRingBuffer(em.maps["commands"], value=COMMAND) as ub,
    ):
        ub.push(Command(seq=0, op=1, arg=7))
        assert ub.push_many([Command(seq=i, op=1, arg=1) for i in range(1, 1000)]) == 999
        with pytest.raises(tm.CodecError):
            ub.push_many([Command(seq=1000, op=1, arg=1), Command(seq=-1, op=1, arg=1)])
        with pytest.raises(tm.CodecError):
            ub.push(Command(seq=1, op=2**32, arg=0))
        em.drain()
        assert em.counter("drained") == 1000
        assert em.seen(1000) == list(range(1000))
        assert em.counter("arg_sum") == 7 + 999


def test_a_full_ring_refuses_then_takes_more_after_a_drain() -> None:
    with (
        loaded("userring", size=4096) as em,
        tm.TypedUserRingBuffer(em.maps["commands"], value=COMMAND) as ub,
    ):
        assert ub.size == 4096
        first = ub.push_many([Command(i, 1, 1) for i in range(1000)])
        assert first == 4096 // 24  # 16 bytes + an 8-byte header each
        assert ub.free < 24
        with pytest.raises(tm.MapFullError, match="full"):
            ub.push(Command(first, 1, 1))
        assert ub.push_many([Command(first, 1, 1)]) == 0
        em.drain()
        assert em.counter("drained") == first
        assert ub.free == 4096
        assert ub.push_many([Command(i, 1, 1) for i in range(first, first + 10)]) == 10
        em.drain()
        assert em.seen(first + 10) == list(range(first + 10))


def test_reserve_submit_and_discard() -> None:
    with loaded("userring") as em, tm.UserRingBuffer(em.maps["commands"]) as ub:
        a = ub.reserve(16)
        b = ub.reserve(16)
        c = ub.reserve(16)
        b[:] = command(1)
        ub.submit(b)
        em.drain()
        assert em.counter("drained") == 0  # a, before b, is not submitted yet
        a[:] = command(0)
        ub.submit(a)
        c[:] = command(99)
        ub.discard(c)
        em.drain()
        assert em.seen(2) == [0, 1]
        assert em.counter("drained") == 2  # the discarded one was skipped
        with pytest.raises(ValueError, match="released"):
            a[0] = 1  # a submitted record can no longer be written
        with pytest.raises(tm.ArgumentError, match="not a reservation"):
            ub.submit(a)
        short = ub.reserve(8)
        short[:] = bytes(8)
        ub.submit(short)
        em.drain()
        assert em.counter("short_samples") == 1


def test_blocking_reserve_times_out_and_wakes_on_a_drain() -> None:
    with loaded("userring", size=4096) as em, tm.UserRingBuffer(em.maps["commands"]) as ub:
        while True:
            try:
                ub.push(command(0))
            except tm.MapFullError:
                break
        t0 = time.monotonic()
        with pytest.raises(tm.MapFullError):
            ub.reserve(16, timeout=0.2)
        took = time.monotonic() - t0
        assert 0.2 <= took < 1.2
        timer = threading.Timer(0.2, em.drain)
        t0 = time.monotonic()
        timer.start()
        try:
            view = ub.reserve(16, timeout=10)
        finally:
            timer.join()
        assert 0.15 < time.monotonic() - t0 < 5
        view[:] = command(1)
        ub.submit(view)
        t0 = time.monotonic()
        timer = threading.Timer(0.2, em.drain)
        timer.start()
        try:
            ub.push(command(2), timeout=None)  # ring has room again: no wait
        finally:
            timer.join()


def test_tracepoint_drains_what_was_pushed() -> None:
    with (
        loaded("userring", tracing=True) as em,
        tm.UserRingBuffer(em.maps["commands"]) as ub,
    ):
        assert ub.push_many([command(i) for i in range(100)]) == 100
        with em.tracepoint():
            os.getppid()
        assert em.counter("drained") == 100
        assert em.seen(100) == list(range(100))


def test_records_that_can_never_fit_are_refused(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.USER_RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with tm.UserRingBuffer(h) as ub:
        with pytest.raises(tm.ArgumentError, match="does not fit"):
            ub.push(bytes(4096))
        with pytest.raises(tm.ArgumentError, match="does not fit"):
            ub.reserve(5000)
        with pytest.raises(tm.CodecError, match="bytes"):
            ub.push("text")  # type: ignore[arg-type]
        with pytest.raises(tm.ArgumentError):
            ub.reserve(-1)
        assert ub.free == 4096
        assert ub.push_many([bytes(4000), bytes(100)]) == 1


def test_close_drops_open_reservations_and_leaks_nothing() -> None:
    with loaded("userring") as em:
        before = event_fds()
        ub = tm.UserRingBuffer(em.maps["commands"])
        view = ub.reserve(16)
        ub.close()
        with pytest.raises(ValueError, match="released"):
            view[0] = 1
        with pytest.raises(tm.MapClosedError):
            ub.push(command(0))
        assert event_fds() == before


def test_wrong_map_type_names_the_right_class(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with pytest.raises(tm.NotSupportedError, match="use RingBuffer"):
        tm.UserRingBuffer(h)


def test_a_record_lying_about_its_length_is_framed_by_its_real_bytes() -> None:
    class Liar(bytes):
        """Says it is exact bytes and holds 64 bytes; holds 3."""

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            return bytes

        def __len__(self) -> int:
            return 64

    with loaded("userring") as em, tm.UserRingBuffer(em.maps["commands"]) as ub:
        free = ub.free
        ub.push(Liar(b"abc"))
        ub.push_many([Liar(b"xyz")])
        # Two records of 3 bytes (8-byte header + 8 with padding), not of 64.
        assert free - ub.free == 2 * 16
        em.drain()
        assert em.counter("short_samples") == 2
