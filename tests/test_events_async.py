"""Event streams under asyncio, and EventGroup over several streams, on real rings."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import typedmaps as tm

from .event_streams import EVENT, Event, event_fds, loaded, seqs

pytestmark = pytest.mark.usefixtures("bpf")


async def _ticking(wait: asyncio.Future[object] | asyncio.Task[object]) -> tuple[object, int]:
    """Await ``wait`` while a task ticks every 10 ms; the result and the tick count."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        result = await wait
    finally:
        ticker.cancel()
    return result, ticks


def test_the_loop_keeps_running_while_a_stream_waits() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:

        async def main() -> None:
            t0 = time.monotonic()
            got, ticks = await _ticking(asyncio.ensure_future(ev.apoll(0.5)))
            took = time.monotonic() - t0
            assert got == []
            assert 0.5 <= took < 1.5
            assert ticks >= 20  # ~50 if the loop never blocked; a loaded machine ticks less

            timer = threading.Timer(0.2, em.emit, args=(5,))
            timer.start()
            try:
                got, ticks = await _ticking(asyncio.ensure_future(ev.apoll(10)))
            finally:
                timer.join()
            assert isinstance(got, list)
            assert 1 <= len(got) <= 5
            assert ticks >= 5

        asyncio.run(main())


def test_async_for_ends_when_closed_from_another_thread() -> None:
    with loaded("ringbuf") as em:
        ev = tm.TypedRingBuffer(em.maps["events"], value=EVENT)
        em.emit(3)

        async def main() -> list[int]:
            out: list[int] = []
            threading.Timer(0.3, ev.close).start()
            async for e in ev:
                out.append(e.seq)
            return out

        t0 = time.monotonic()
        assert asyncio.run(main()) == [0, 1, 2]
        assert time.monotonic() - t0 < 1.3
        assert ev.closed
        with pytest.raises(tm.MapClosedError):
            asyncio.run(ev.apoll(0))


def test_two_tasks_wait_on_one_stream() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:

        async def main() -> list[list[Event]]:
            a = asyncio.create_task(ev.apoll(1.0))
            b = asyncio.create_task(ev.apoll(1.0))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(em.emit, 4)
            return list(await asyncio.gather(a, b))

        got = asyncio.run(main())
        assert sorted(seqs(got[0] + got[1])) == [0, 1, 2, 3]  # each record once


def test_group_polls_several_rings_and_names_the_source() -> None:
    with (
        loaded("ringbuf") as one,
        loaded("ringbuf") as two,
        loaded("perfbuf") as three,
        tm.TypedRingBuffer(one.maps["events"], value=EVENT) as a,
        tm.TypedRingBuffer(two.maps["events"], value=EVENT) as b,
        tm.TypedPerfBuffer(three.maps["samples"], value=EVENT) as c,
        tm.EventGroup([a, b, c]) as group,
    ):
        assert group.poll(0.05) == []
        one.emit(3, param=1)
        two.emit(2, param=2)
        three.emit(4, param=3, cpu=1)
        got: list[tuple[tm.EventStream[Event], Event]] = []
        deadline = time.monotonic() + 5
        while len(got) < 9 and time.monotonic() < deadline:
            got.extend(group.poll(1))
        assert sorted((id(s), r.value) for s, r in got) == sorted(
            [(id(a), 1)] * 3 + [(id(b), 2)] * 2 + [(id(c), 3)] * 4
        )
        for s in (a, b, c):
            assert seqs([r for src, r in got if src is s]) == sorted(
                seqs([r for src, r in got if src is s])
            )
        # a stream closed on its own drops out; the others go on
        b.close()
        one.emit(1, param=1)
        assert [(src, r.seq) for src, r in group.poll(5)] == [(a, 3)]
        assert group.streams == (a, c)


def test_group_wakes_on_any_stream_and_ends_on_close() -> None:
    with (
        loaded("ringbuf") as one,
        loaded("ringbuf") as two,
        tm.RingBuffer(one.maps["events"]) as a,
        tm.RingBuffer(two.maps["events"]) as b,
    ):
        group = tm.EventGroup([a, b])
        t0 = time.monotonic()
        assert group.poll(0.2) == []
        assert 0.2 <= time.monotonic() - t0 < 1.2
        timer = threading.Timer(0.2, two.emit, args=(1,))
        timer.start()
        try:
            got = group.poll(10)
        finally:
            timer.join()
        assert [src for src, _ in got] == [b]
        seen: list[object] = []
        t = threading.Thread(target=lambda: seen.extend(group))
        t.start()
        time.sleep(0.2)
        group.close()
        t.join(1.0)
        assert not t.is_alive()
        assert seen == []
        assert not a.closed  # the group does not own its streams
        with pytest.raises(tm.MapClosedError):
            group.poll(0)


def test_group_under_asyncio_and_when_every_stream_is_gone() -> None:
    with loaded("ringbuf") as one, loaded("perfbuf") as two:
        a = tm.TypedRingBuffer(one.maps["events"], value=EVENT)
        b = tm.TypedPerfBuffer(two.maps["samples"], value=EVENT)
        before = event_fds()
        group = tm.EventGroup([a, b])

        async def main() -> list[int]:
            timer = threading.Timer(0.1, two.emit, args=(2,))
            timer.start()
            try:
                got, _ = await _ticking(asyncio.ensure_future(group.apoll(10)))
            finally:
                timer.join()
            assert isinstance(got, list)
            out = [r.seq for _, r in got]

            def close_both() -> None:
                a.close()
                b.close()

            threading.Timer(0.2, close_both).start()
            async for _, r in group:
                out.append(r.seq)
            return out

        assert sorted(asyncio.run(main())) == [0, 1]
        with pytest.raises(tm.MapClosedError, match="every stream"):
            group.poll(0)
        group.close()
        assert set(event_fds()) < set(before)


def test_group_arguments_are_checked() -> None:
    with loaded("ringbuf") as one, tm.RingBuffer(one.maps["events"]) as a:
        with pytest.raises(TypeError, match="event streams"):
            tm.EventGroup([a, object()])  # type: ignore[arg-type]
        with pytest.raises(tm.ArgumentError, match="twice"):
            tm.EventGroup([a, a])
