"""Independent checks of the event streams on a held-out object (bpf/qa_events.bpf.c).

Written from the public documentation only (docs/events.md, docs/cli.md, the
README), as an outside user would: it emits, drops, times out, closes and
awaits events on real kernel rings. The object keeps its own sequence numbers
(per target and lane) and its own emitted/dropped counters, so every count
here is checked against what the program says it did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import ROOT, bpf_object

RING, SMALL, PERF, TP_RING, TP_PERF = range(5)
FIXED, VAR, SHORT_EVERY, VAR_LEN, DISCARD_EVERY = range(5)
TAIL = bytes((i * 7 + 1) & 0xFF for i in range(64))  # qa_var's tail pattern
# How late a wait may end on this shared 2-vCPU machine before it is "much late".
LATE = 0.4


@dataclasses.dataclass
class Rec(DataclassMixin):  # struct qa_rec
    seq: int = csfield(cs.Int64ul)
    target: int = csfield(cs.Int32ul)
    lane: int = csfield(cs.Int32ul)
    cpu: int = csfield(cs.Int32ul)
    check: int = csfield(cs.Int32ul)


@dataclasses.dataclass
class Var(DataclassMixin):  # struct qa_var: a 16-byte head, then `len` bytes
    seq: int = csfield(cs.Int64ul)
    len: int = csfield(cs.Int32ul)
    lane: int = csfield(cs.Int16ul)
    target: int = csfield(cs.Int16ul)
    tail: bytes = csfield(cs.GreedyBytes)


@dataclasses.dataclass
class Cmd(DataclassMixin):  # struct qa_cmd
    seq: int = csfield(cs.Int64ul)
    op: int = csfield(cs.Int32ul)
    arg: int = csfield(cs.Int32ul)


REC = DataclassStruct(Rec)
VAR_SCHEMA = DataclassStruct(Var)
CMD = DataclassStruct(Cmd)


def check_of(seq: int, lane: int) -> int:
    return (seq * 2654435761 + lane) & 0xFFFFFFFF


def emit(
    obj: tm.BpfObject,
    count: int,
    *,
    target: int = RING,
    mode: int = FIXED,
    param: int = 0,
    lane: int = 0,
    cpu: int | None = None,
) -> None:
    """Run qa_emit once: `count` records into `target` (see bpf/qa_events.bpf.c)."""
    args = struct.pack("<5Q", count, target, mode, param, lane)
    obj.programs["qa_emit"].test_run(ctx_in=args, cpu=cpu)


def stats(obj: tm.BpfObject) -> Any:
    """The program's own counters (struct qa_stats), typed from the object's BTF."""
    table = tm.typed(obj.maps["qa_stats"])
    assert isinstance(table, tm.TypedMap)
    return table[0]


@pytest.fixture
def qa(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("qa_events")) as obj:
        obj.load()
        yield obj


def drain(stream: tm.EventStream[Any], want: int, limit: float = 5.0) -> list[Any]:
    """Poll until `want` records came (or `limit` seconds passed)."""
    got: list[Any] = []
    end = time.monotonic() + limit
    while len(got) < want and time.monotonic() < end:
        got += stream.poll(timeout=0.2)
    return got


def anon_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("anon_inode:"):
            out.add(f"{fd}:{target}")
    return out


# ----------------------------------------------------------- order, exactly once


def test_ring_order_exactly_once_over_thousands(qa: tm.BpfObject) -> None:
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        got: list[Rec] = []
        for _ in range(4):  # batches interleaved with consume and poll
            emit(qa, 1500)
            got += ev.consume()
            emit(qa, 500)
            got += drain(ev, 500)
        assert [r.seq for r in got] == list(range(8000))
        assert all(r.check == check_of(r.seq, 0) and r.target == RING for r in got)
        assert ev.consume() == []
        st = stats(qa)
        assert st.emitted[RING] == 8000
        assert st.dropped[RING] == 0


def test_ring_threads_produce_while_iterating(qa: tm.BpfObject) -> None:
    """Two producers on two CPUs (one lane each) while the main thread iterates."""
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    per_lane = 3000  # 6,000 x 32 bytes fit the 256 KiB ring: nothing can drop

    def produce(lane: int, cpu: int) -> None:
        for _ in range(10):
            emit(qa, per_lane // 10, lane=lane, cpu=cpu)
            time.sleep(0.005)

    producers = [
        threading.Thread(target=produce, args=(lane, cpus[lane % len(cpus)])) for lane in (1, 2)
    ]
    for p in producers:
        p.start()
    seen: dict[int, list[int]] = {1: [], 2: []}
    try:
        for r in ev:
            seen[r.lane].append(r.seq)
            assert r.check == check_of(r.seq, r.lane)
            if sum(map(len, seen.values())) == 2 * per_lane:
                break
    finally:
        for p in producers:
            p.join()
        ev.close()
    assert seen == {1: list(range(per_lane)), 2: list(range(per_lane))}


def test_ring_wraps_around_many_times(qa: tm.BpfObject) -> None:
    """Batches that straddle the end of the ring, over several laps of it."""
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        got: list[Rec] = []
        for _ in range(12):  # 24,000 x 32 bytes: three laps of 256 KiB, 2,000 a batch
            emit(qa, 2000)
            got += ev.consume()
        assert [r.seq for r in got] == list(range(24_000))
        assert all(r.check == check_of(r.seq, 0) for r in got)
    with tm.TypedRingBuffer(qa.maps["qa_small"], value=VAR_SCHEMA) as var:
        seen: list[Var] = []
        for _ in range(40):  # variable sizes through 4 KiB: records at every offset
            emit(qa, 20, target=SMALL, mode=VAR, param=40)
            seen += var.consume()
        assert [v.seq for v in seen] == list(range(800))
        assert all(v.len == v.seq % 41 and v.tail == TAIL[: v.len] for v in seen)
        assert stats(qa).dropped[SMALL] == 0


def test_perf_ring_wraps_around(qa: tm.BpfObject) -> None:
    """Perf rings are mapped once: a record may be split by the end of the ring."""
    with tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=1) as pb:
        got: list[Rec] = []
        for _ in range(25):  # 50 x 40 bytes a round through one 4 KiB page
            emit(qa, 50, target=PERF, cpu=0)
            got += pb.consume()
        assert [r.seq for r in got] == list(range(1250))
        assert all(r.check == check_of(r.seq, 0) and r.cpu == 0 for r in got)
        assert pb.lost == 0
    with tm.TypedPerfBuffer(qa.maps["qa_perf"], value=VAR_SCHEMA, pages=1) as pv:
        seen: list[Var] = []
        for _ in range(25):
            emit(qa, 20, target=PERF, mode=VAR, param=40, cpu=0, lane=1)
            seen += pv.consume()
        assert [v.seq for v in seen] == list(range(500))
        assert all(v.tail[: v.len] == TAIL[: v.len] for v in seen)
        assert pv.lost == 0


def test_discarded_records_are_skipped(qa: tm.BpfObject) -> None:
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        emit(qa, 300, mode=DISCARD_EVERY, param=3)  # seq 2, 5, 8, ...: discarded
        got = [r.seq for r in ev.consume()]
    assert got == [s for s in range(300) if s % 3 != 2]
    with tm.RingBuffer(qa.maps["qa_small"]) as raw:
        for _ in range(10):  # through the wrap of a 4 KiB ring
            emit(qa, 100, target=SMALL, mode=DISCARD_EVERY, param=2)
            for b in raw.consume():
                assert struct.unpack_from("<Q", b)[0] % 2 == 0
        assert stats(qa).dropped[SMALL] == 0


def test_two_threads_consuming_one_stream(qa: tm.BpfObject) -> None:
    """Each record goes to exactly one of them, and each sees its share in order."""
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    shares: list[list[int]] = [[], []]
    total = 6000

    def consume(mine: list[int]) -> None:
        while True:
            try:
                mine += [r.seq for r in ev.poll(0.05)]
            except tm.MapClosedError:
                return

    threads = [threading.Thread(target=consume, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for _ in range(30):
        emit(qa, total // 30)
    end = time.monotonic() + 10
    while sum(map(len, shares)) < total and time.monotonic() < end:
        time.sleep(0.02)
    ev.close()
    for t in threads:
        t.join(timeout=2)
    assert sorted(shares[0] + shares[1]) == list(range(total))
    assert all(s == sorted(s) for s in shares)


def test_fileno_is_readable_when_records_wait(qa: tm.BpfObject) -> None:
    with (
        tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev,
        tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=1) as pb,
        selectors.DefaultSelector() as sel,
    ):
        sel.register(ev.fileno(), selectors.EVENT_READ, ev)
        sel.register(pb.fileno(), selectors.EVENT_READ, pb)
        assert sel.select(timeout=0) == []
        emit(qa, 2)
        assert [k.data for k, _ in sel.select(timeout=1)] == [ev]
        assert len(ev.consume()) == 2
        assert sel.select(timeout=0) == []
        emit(qa, 1, target=PERF, cpu=0)
        assert [k.data for k, _ in sel.select(timeout=1)] == [pb]
        assert len(pb.consume()) == 1
        assert sel.select(timeout=0) == []


def test_typed_picks_the_stream_from_the_map_type(qa: tm.BpfObject) -> None:
    ring = tm.typed(qa.maps["qa_ring"], value=REC)
    perf = tm.typed(qa.maps["qa_perf"], value=REC)
    user = tm.typed(qa.maps["qa_cmds"], value=CMD)
    with ring, perf, user:
        assert isinstance(ring, tm.TypedRingBuffer)
        assert isinstance(perf, tm.TypedPerfBuffer)
        assert isinstance(user, tm.TypedUserRingBuffer)


def test_a_stream_over_a_handle_of_its_own(qa: tm.BpfObject) -> None:
    """A MapHandle opened by id: closing the stream closes that handle, not the object's map."""
    h = tm.MapHandle.from_map_id(qa.maps["qa_ring"].id)
    with tm.RingBuffer(h) as raw:
        emit(qa, 2)
        assert [struct.unpack_from("<Q", b)[0] for b in raw.consume()] == [0, 1]
    with pytest.raises(tm.MapClosedError):
        h.fileno()
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        emit(qa, 1)
        assert [r.seq for r in ev.consume()] == [2]


# ----------------------------------------------------------------- variable size


def test_variable_tails_greedy_bytes_and_range(qa: tm.BpfObject) -> None:
    with tm.RingBuffer(qa.maps["qa_ring"]) as raw:
        emit(qa, 100, mode=VAR, param=40)  # tail lengths seq % 41
        sizes = [len(b) for b in raw.consume()]
        assert sizes == [16 + s % 41 for s in range(100)]
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=VAR_SCHEMA) as ev:
        emit(qa, 100, mode=VAR, param=40)
        got = ev.consume()
        assert [v.seq for v in got] == list(range(100, 200))
        assert all(v.len == v.seq % 41 and v.tail == TAIL[: v.len] for v in got)
    head_and_list = cs.Struct(
        "seq" / cs.Int64ul, "len" / cs.Int32ul, "lane" / cs.Int16ul, "target" / cs.Int16ul,
        "tail" / cs.GreedyRange(cs.Int8ul),
    )  # fmt: skip
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=head_and_list) as lists:
        emit(qa, 10, mode=VAR_LEN, param=5)
        got2 = lists.consume()
        assert [c.seq for c in got2] == list(range(200, 210))
        assert all(list(c.tail) == list(TAIL[:5]) for c in got2)


def test_variable_tails_on_a_perf_buffer(qa: tm.BpfObject) -> None:
    """The kernel pads perf samples to 8 bytes; a tail cannot tell padding from data."""
    with tm.TypedPerfBuffer(qa.maps["qa_perf"], value=VAR_SCHEMA, pages=4) as pb:
        emit(qa, 40, target=PERF, mode=VAR, param=20, cpu=0)
        got = drain(pb, 40)
        assert [v.seq for v in got] == list(range(40))
        for v in got:
            assert v.tail[: v.len] == TAIL[: v.len]
            assert set(v.tail[v.len :]) <= {0}
            assert len(v.tail) - v.len < 8


# --------------------------------------------------------------------- overflow


def test_small_ring_overflow_received_plus_dropped(qa: tm.BpfObject) -> None:
    with tm.TypedRingBuffer(qa.maps["qa_small"], value=REC) as ev:
        received = 0
        for cycle in range(3):
            emit(qa, 1000, target=SMALL)
            got = ev.consume()
            # a 4 KiB ring holds 4096 / (8 + 24) records: the first ones
            assert 0 < len(got) <= 4096 // 32
            assert [r.seq for r in got] == list(range(got[0].seq, got[0].seq + len(got)))
            received += len(got)
            st = stats(qa)
            assert st.emitted[SMALL] == 1000 * (cycle + 1)
            assert received + st.dropped[SMALL] == st.emitted[SMALL]
        dropped = stats(qa).dropped[SMALL]
        emit(qa, 50, target=SMALL)  # the stream still works after
        after = ev.consume()
        assert [r.seq for r in after] == list(range(3000, 3050))
        assert stats(qa).dropped[SMALL] == dropped


def test_perf_lost_counts_per_cpu(qa: tm.BpfObject) -> None:
    cpus = sorted(os.sched_getaffinity(0))[:2]
    with tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=1) as pb:
        per_cpu: dict[int, int] = {}
        for lane, cpu in enumerate(cpus):
            emit(qa, 300, target=PERF, lane=lane, cpu=cpu)  # 300 into one 4 KiB ring each
            per_cpu[cpu] = 300
        first = pb.consume()
        assert all(r.cpu in cpus for r in first)
        assert 0 < len(first) < 300 * len(cpus)
        for lane, cpu in enumerate(cpus):  # one more each: the loss is reported in front of it
            emit(qa, 1, target=PERF, lane=lane, cpu=cpu)
            per_cpu[cpu] += 1
        second = pb.consume()
        assert sorted((r.lane, r.seq) for r in second) == [(lane, 300) for lane in range(len(cpus))]
        got = first + second
        for lane, cpu in enumerate(cpus):
            mine = [r.seq for r in got if r.cpu == cpu]
            assert mine == sorted(mine)
            assert all(r.lane == lane for r in got if r.cpu == cpu)
            assert len(mine) + pb.lost_by_cpu[cpu] == per_cpu[cpu]
        st = stats(qa)
        assert pb.lost == sum(pb.lost_by_cpu) == st.dropped[PERF]
        assert len(got) + pb.lost == st.emitted[PERF] == sum(per_cpu.values())


# ---------------------------------------------------------------------- timeouts


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = fn(*args)
    return out, time.monotonic() - t0


def test_poll_timeouts_measured(qa: tm.BpfObject) -> None:
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    pb = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=2)
    with ev, pb, tm.EventGroup([ev, pb]) as group:
        for stream in (ev, pb, group):
            out, dt = timed(stream.poll, 0)  # 0: no wait
            assert out == []
            assert dt < 0.05
            out, dt = timed(stream.poll, 0.25)  # not early, not much late
            assert out == []
            assert 0.25 <= dt < 0.25 + LATE

        # None: forever, until a record comes
        threading.Timer(0.2, emit, args=(qa, 1)).start()
        out, dt = timed(ev.poll, None)
        assert [r.seq for r in out] == [0]
        assert 0.15 <= dt < 0.2 + LATE + 1

        # a long timeout ends as soon as a record comes
        threading.Timer(0.2, emit, kwargs={"obj": qa, "count": 2, "target": PERF}).start()
        out, dt = timed(pb.poll, 10.0)
        assert [r.seq for r in out] == [0, 1]
        assert dt < 0.2 + LATE + 1

        threading.Timer(0.2, emit, args=(qa, 1)).start()
        out, dt = timed(group.poll, None)
        assert [(src, r.seq) for src, r in out] == [(ev, 1)]
        assert dt < 0.2 + LATE + 1


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan")])
def test_poll_rejects_bad_timeouts(qa: tm.BpfObject, bad: float) -> None:
    with tm.RingBuffer(qa.maps["qa_ring"]) as ev, pytest.raises(ValueError, match="timeout"):
        ev.poll(bad)


def test_poll_rejects_a_timeout_of_the_wrong_type(qa: tm.BpfObject) -> None:
    with tm.RingBuffer(qa.maps["qa_ring"]) as ev, pytest.raises(TypeError):
        ev.poll("1")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- close


def test_close_from_another_thread_ends_blocked_iteration(qa: tm.BpfObject) -> None:
    ring = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    perf = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=1)
    small = tm.RingBuffer(qa.maps["qa_small"])
    group_ring = tm.RingBuffer(qa.maps["qa_ring"])
    group = tm.EventGroup([group_ring])
    try:
        for stream in (ring, perf, small, group):
            done: list[object] = []
            t = threading.Thread(target=lambda s=stream, d=done: d.append(list(s)), daemon=True)
            t.start()
            time.sleep(0.2)
            assert t.is_alive()  # blocked: nothing to read
            t0 = time.monotonic()
            stream.close()
            t.join(timeout=1.0)
            assert not t.is_alive(), stream
            assert done == [[]], stream
            assert time.monotonic() - t0 < 1.0
    finally:
        for s in (ring, perf, small, group_ring, group):
            s.close()


def test_close_wakes_a_blocked_poll(qa: tm.BpfObject) -> None:
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    out: list[object] = []

    def wait() -> None:
        try:
            out.append(ev.poll(None))
        except tm.MapClosedError as exc:
            out.append(exc)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(0.2)
    ev.close()
    t.join(timeout=1.0)
    assert not t.is_alive()
    assert out == [[]] or isinstance(out[0], tm.MapClosedError)


def test_everything_after_close_raises(qa: tm.BpfObject) -> None:
    ring = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    perf = tm.PerfBuffer(qa.maps["qa_perf"], pages=1)
    user = tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=CMD)
    group = tm.EventGroup([ring])
    for s in (ring, perf, user, group):
        s.close()
        s.close()  # twice is fine
        assert s.closed
    for stream in (ring, perf, group):
        for call in (stream.consume, lambda s=stream: s.poll(0), stream.fileno):
            with pytest.raises(tm.MapClosedError):
                call()
        with pytest.raises(tm.MapClosedError):
            next(iter(stream))
        with pytest.raises(tm.MapClosedError):
            asyncio.run(stream.apoll(0))
    with pytest.raises(tm.MapClosedError):
        user.push(Cmd(seq=0, op=0, arg=0))
    with pytest.raises(tm.MapClosedError):
        user.push_many([Cmd(seq=0, op=0, arg=0)])
    with pytest.raises(tm.MapClosedError):
        user.fileno()


# ----------------------------------------------------------------------- asyncio


def test_asyncio_loop_keeps_ticking_while_streams_wait(qa: tm.BpfObject) -> None:
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    pb = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=2)

    async def main() -> tuple[int, list[int], list[int], list[tuple[bool, int]]]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        t0 = time.monotonic()
        assert await ev.apoll(timeout=0.3) == []
        assert time.monotonic() - t0 >= 0.3
        waited = ticks
        # an awaitable poll woken by a record a program emits from another thread
        threading.Timer(0.1, emit, args=(qa, 3)).start()
        first = [r.seq for r in await ev.apoll(timeout=None)]
        while len(first) < 3:
            first += [r.seq for r in await ev.apoll(timeout=1.0)]
        # two tasks waiting on one stream: each record goes to exactly one
        threading.Timer(0.1, emit, args=(qa, 200)).start()

        taken: list[int] = []

        async def take() -> list[int]:
            out: list[int] = []
            end = time.monotonic() + 5
            while len(taken) < 200 and time.monotonic() < end:
                got = [r.seq for r in await ev.apoll(timeout=0.3)]
                out += got
                taken.extend(got)
            return out

        a, b = await asyncio.gather(take(), take())
        both = sorted(a + b)
        # async for over a group, ended by close() from another thread
        with tm.EventGroup([ev, pb]) as group:
            emit(qa, 2, target=PERF, cpu=0)
            emit(qa, 1)
            threading.Timer(0.4, group.close).start()
            pairs = [(src is ev, r.seq) async for src, r in group]
        task.cancel()
        assert waited >= 10, waited
        return ticks, first, both, sorted(pairs)

    with ev, pb:
        _, first, both, pairs = asyncio.run(main())
    assert first == [0, 1, 2]
    assert both == list(range(3, 203))
    assert pairs == [(False, 0), (False, 1), (True, 203)]


def test_a_cancelled_apoll_leaves_the_stream_usable(qa: tm.BpfObject) -> None:
    async def main(ev: tm.TypedRingBuffer[Rec]) -> list[int]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ev.apoll(None), timeout=0.1)
        task = asyncio.create_task(ev.apoll(None))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        threading.Timer(0.1, emit, args=(qa, 2)).start()
        got = [r.seq for r in await ev.apoll(2.0)]
        while len(got) < 2:
            got += [r.seq for r in await ev.apoll(2.0)]
        return got

    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        assert asyncio.run(main(ev)) == [0, 1]
        # and a CodecError in `async for` ends that loop; the next one goes on
        emit(qa, 3, mode=SHORT_EVERY, param=2)  # seq 3 is short

        async def collect() -> tuple[list[int], list[BaseException], list[int]]:
            first: list[int] = []
            errors: list[BaseException] = []
            try:
                async for r in ev:
                    first.append(r.seq)
            except tm.CodecError as exc:
                errors.append(exc)
            threading.Timer(0.3, ev.close).start()
            return first, errors, [r.seq async for r in ev]

        first, errors, rest = asyncio.run(collect())
        assert first == [2]
        assert [type(e) for e in errors] == [tm.CodecError]
        assert rest == [4]


def test_async_for_ends_on_close_from_a_thread(qa: tm.BpfObject) -> None:
    ev = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)

    async def main() -> list[int]:
        threading.Timer(0.1, emit, args=(qa, 5)).start()
        threading.Timer(0.5, ev.close).start()
        return [r.seq async for r in ev]

    t0 = time.monotonic()
    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert time.monotonic() - t0 < 0.5 + 1.0


# ------------------------------------------------------------------- EventGroup


def test_event_group_says_where_each_record_came_from(qa: tm.BpfObject) -> None:
    ring = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    perf = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=2)
    small = tm.RingBuffer(qa.maps["qa_small"])  # bytes, mixed in with typed streams
    with ring, perf, small:
        group = tm.EventGroup([ring, perf, small])
        assert list(group.streams) == [ring, perf, small]
        emit(qa, 30)
        emit(qa, 20, target=PERF, cpu=0)
        emit(qa, 10, target=SMALL)
        got: list[tuple[Any, Any]] = []
        end = time.monotonic() + 5
        while len(got) < 60 and time.monotonic() < end:
            got += group.poll(timeout=0.5)
        assert len(got) == 60
        assert [r.seq for s, r in got if s is ring] == list(range(30))
        assert all(r.target == RING for s, r in got if s is ring)
        assert [r.seq for s, r in got if s is perf] == list(range(20))
        assert all(r.target == PERF for s, r in got if s is perf)
        raw = [r for s, r in got if s is small]
        assert [struct.unpack_from("<QI", b) for b in raw] == [(i, SMALL) for i in range(10)]
        # a stream closed on its own drops out; the others go on
        small.close()
        emit(qa, 1)
        after: list[tuple[Any, Any]] = group.poll(timeout=1.0)
        assert [(s, r.seq) for s, r in after] == [(ring, 30)]
        # closing the group leaves its streams open
        group.close()
        emit(qa, 1)
        assert [r.seq for r in ring.consume()] == [31]


# ------------------------------------------------------------- user ring buffer


def test_user_ring_push_and_push_many_seen_by_the_program(qa: tm.BpfObject) -> None:
    with tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=CMD) as ub:
        ub.push(Cmd(seq=0, op=1, arg=5))
        pushed = ub.push_many(Cmd(seq=i, op=1, arg=i) for i in range(1, 1000))
        assert 0 < pushed < 999  # a 4 KiB ring holds 4096 / (8 + 16)
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        assert st.drained == 1 + pushed
        assert st.drain_order == 0
        assert st.drain_bad == 0
        assert st.drain_sum == 5 + sum(range(1, 1 + pushed))
        # after the drain there is room again; the next seq goes on
        again = ub.push_many([Cmd(seq=1 + pushed + i, op=2, arg=1) for i in range(50)])
        assert again == 50
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        assert st.drained == 51 + pushed
        assert st.drain_order == 0


def test_user_ring_full_timeouts_and_wakeup(qa: tm.BpfObject) -> None:
    with tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=CMD) as ub:
        n = ub.push_many(Cmd(seq=i, op=0, arg=1) for i in range(10_000))
        with pytest.raises(tm.MapFullError):
            ub.push(Cmd(seq=n, op=0, arg=1))  # timeout=0: no wait
        t0 = time.monotonic()
        with pytest.raises(tm.MapFullError):
            ub.push(Cmd(seq=n, op=0, arg=1), timeout=0.3)
        assert 0.3 <= time.monotonic() - t0 < 0.3 + LATE
        # a drain from another thread makes room: the blocked push goes through
        drainer = threading.Timer(0.2, qa.programs["qa_drain"].test_run)
        drainer.start()
        t0 = time.monotonic()
        ub.push(Cmd(seq=n, op=0, arg=1), timeout=5.0)
        assert time.monotonic() - t0 < 0.2 + LATE + 1
        drainer.join()
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        assert st.drained == n + 1
        assert st.drain_order == 0
        assert st.drain_sum == n + 1


def test_user_ring_codec_error_writes_nothing(qa: tm.BpfObject) -> None:
    with tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=CMD) as ub:
        bad = [Cmd(seq=0, op=0, arg=1), Cmd(seq=1, op=-1, arg=1)]  # op is unsigned
        with pytest.raises(tm.CodecError):
            ub.push_many(bad)
        with pytest.raises(tm.CodecError):
            ub.push(Cmd(seq=0, op=2**32, arg=0))
        qa.programs["qa_drain"].test_run()
        assert stats(qa).drained == 0
        assert ub.push_many([Cmd(seq=0, op=0, arg=3)]) == 1
        qa.programs["qa_drain"].test_run()
        assert stats(qa).drained == 1


def test_user_ring_variable_records(qa: tm.BpfObject) -> None:
    """A head + GreedyBytes schema pushes records of their own sizes."""
    with tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=VAR_SCHEMA) as ub:
        recs = [Var(seq=i, len=i, lane=0, target=0, tail=TAIL[:i]) for i in range(10)]
        assert ub.push_many(recs) == 10
        free = ub.free
        assert ub.size - free == sum((16 + i + 8 + 7) & ~7 for i in range(10))
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        # only the 16-byte one (tail of 0) is the size of a command
        assert (st.drained, st.drain_bad) == (1, 9)


def test_user_ring_reserve_discard_and_odd_sizes(qa: tm.BpfObject) -> None:
    with tm.UserRingBuffer(qa.maps["qa_cmds"]) as raw:
        view = raw.reserve(16)
        view[:] = struct.pack("<QII", 0, 0, 100)
        raw.discard(view)  # the program never sees it
        view = raw.reserve(20)  # the wrong size for a command
        view[:] = bytes(20)
        raw.submit(view)
        raw.push(struct.pack("<QII", 0, 0, 7))
        assert raw.push_many([struct.pack("<QII", 1, 0, 8), struct.pack("<QII", 2, 0, 9)]) == 2
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        assert (st.drained, st.drain_bad, st.drain_sum, st.drain_order) == (3, 1, 24, 0)
        with pytest.raises(ValueError, match="size"):
            raw.reserve(raw.size + 1)


def test_close_drops_a_reservation_without_wedging_the_ring(qa: tm.BpfObject) -> None:
    """A reservation left at close() is discarded in the ring: the kernel would stop at a
    busy record for good, and no later producer's record would ever be drained."""
    ub = tm.UserRingBuffer(qa.maps["qa_cmds"])
    ub.push(struct.pack("<QII", 0, 0, 1))
    ub.reserve(16)  # never submitted
    ub.close()
    with tm.UserRingBuffer(qa.maps["qa_cmds"]) as again:
        again.push(struct.pack("<QII", 1, 0, 2))
        qa.programs["qa_drain"].test_run()
        st = stats(qa)
        assert (st.drained, st.drain_sum, st.drain_order) == (2, 3, 0)
        assert again.free == again.size


def test_user_ring_free_races_pushes_and_drains(qa: tm.BpfObject) -> None:
    """`free` read while this process pushes and the program drains: always in range."""
    ub = tm.UserRingBuffer(qa.maps["qa_cmds"])
    stop = time.monotonic() + 1.0
    bad: list[BaseException] = []
    pushed = [0]

    def push() -> None:
        while time.monotonic() < stop:
            n = pushed[0]
            pushed[0] += ub.push_many([struct.pack("<QII", n + k, 0, 1) for k in range(20)])

    def drain_loop() -> None:
        while time.monotonic() < stop:
            qa.programs["qa_drain"].test_run()

    def free() -> None:
        while time.monotonic() < stop:
            try:
                if not 0 <= ub.free <= ub.size:
                    bad.append(AssertionError(ub.free))
            except tm.TypedMapsError as exc:
                bad.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: the window is two reads wide
    try:
        threads = [threading.Thread(target=f) for f in (push, drain_loop, free)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
        ub.close()
    assert bad == []
    qa.programs["qa_drain"].test_run()
    st = stats(qa)
    assert st.drained == pushed[0]
    assert st.drain_order == 0


# --------------------------------------------------------------- size mismatch


def test_size_mismatch_is_codec_error_with_raw_bytes_and_the_stream_goes_on(
    qa: tm.BpfObject,
) -> None:
    for target, stream in (
        (RING, tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)),
        (PERF, tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=2)),
    ):
        with stream:
            emit(qa, 20, target=target, mode=SHORT_EVERY, param=5, cpu=0)  # seq 4, 9, ...: 20 bytes
            good: list[int] = []
            bad: list[Any] = []  # CodecError.value: the raw record
            end = time.monotonic() + 5
            while len(good) + len(bad) < 20 and time.monotonic() < end:
                try:
                    good += [r.seq for r in stream.poll(0.2)]
                except tm.CodecError as err:
                    bad.append(err.value)
            assert all(isinstance(b, bytes) for b in bad)
            assert good == [s for s in range(20) if s % 5 != 4], target
            assert len(bad) == 4
            assert [struct.unpack_from("<Q", b)[0] for b in bad] == [4, 9, 14, 19]
            assert all(len(b) in (20, 20 + 4) for b in bad)  # perf may keep its padding
    # iteration: the error comes out of next(); a new iteration goes on after it
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC) as ev:
        emit(qa, 3, mode=SHORT_EVERY, param=2, lane=1)  # seq 1 is short
        it = iter(ev)
        assert next(it).seq == 0
        with pytest.raises(tm.CodecError):
            next(it)
        assert next(iter(ev)).seq == 2
    # a record shorter than a variable schema's head
    with tm.TypedRingBuffer(qa.maps["qa_ring"], value=VAR_SCHEMA) as var:
        emit(qa, 2, mode=SHORT_EVERY, param=2, lane=2)  # 24 bytes, then 20: both fit a 16-byte head
        assert [len(v.tail) for v in var.consume()] == [8, 4]
        short = tm.TypedRingBuffer(
            qa.maps["qa_ring"], value=cs.Struct("a" / cs.Bytes(32), "t" / cs.GreedyBytes)
        )
        with short:
            emit(qa, 1)
            with pytest.raises(tm.CodecError) as info:
                short.consume()
            assert isinstance(info.value.value, bytes)
            assert len(info.value.value) == 24


# ------------------------------------------------------------------------- BTF


def test_typed_takes_the_record_type_by_name_from_the_object(qa: tm.BpfObject) -> None:
    ring = tm.typed(qa.maps["qa_ring"], value="qa_rec")
    assert isinstance(ring, tm.TypedRingBuffer)
    perf = tm.typed(qa.maps["qa_perf"], value="struct qa_rec")
    assert isinstance(perf, tm.TypedPerfBuffer)
    user = tm.typed(qa.maps["qa_cmds"], value="qa_cmd")
    assert isinstance(user, tm.TypedUserRingBuffer)
    with ring, perf, user:
        emit(qa, 2, lane=3)
        got = ring.consume()
        assert [(r.seq, r.lane, r.check) for r in got] == [
            (0, 3, check_of(0, 3)),
            (1, 3, check_of(1, 3)),
        ]
        emit(qa, 1, target=PERF, cpu=0)
        assert [r.seq for r in drain(perf, 1)] == [0]
        user.push(cs.Container(seq=0, op=1, arg=9))
        qa.programs["qa_drain"].test_run()
        assert (stats(qa).drained, stats(qa).drain_sum) == (1, 9)
    var = tm.typed(qa.maps["qa_ring"], value="qa_var")
    assert isinstance(var, tm.TypedRingBuffer)
    with var:
        emit(qa, 3, mode=VAR_LEN, param=6)
        got_var = var.consume()
        assert [bytes(v.tail) for v in got_var] == [TAIL[:6]] * 3
    for bad in ("no_such_type", "struct", ""):
        with pytest.raises(tm.TypedMapsError):
            tm.typed(qa.maps["qa_ring"], value=bad)


def test_gen_type_module_is_importable_and_mypy_clean(qa: tm.BpfObject, tmp_path: Path) -> None:
    obj_path = bpf_object("qa_events")
    mod_path = tmp_path / "qa_records.py"
    subprocess.run(
        [sys.executable, "-m", "typedmaps", "gen", str(obj_path), "-o", str(mod_path),
         "--type", "qa_rec", "--type", "struct qa_var", "--type", "qa_cmd"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location("qa_records", mod_path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["qa_records"] = mod
    try:
        spec.loader.exec_module(mod)
        schemas = {n: getattr(mod, n) for n in dir(mod) if n.isupper() and not n.startswith("_")}
        rec_schema = next(v for n, v in schemas.items() if "REC" in n)
        var_schema = next(v for n, v in schemas.items() if "VAR" in n)
        with tm.TypedRingBuffer(qa.maps["qa_ring"], value=rec_schema) as ev:
            emit(qa, 2)
            assert [(r.seq, r.check) for r in ev.consume()] == [
                (0, check_of(0, 0)),
                (1, check_of(1, 0)),
            ]
        with tm.TypedRingBuffer(qa.maps["qa_ring"], value=var_schema) as ev2:
            emit(qa, 2, mode=VAR_LEN, param=9)
            assert [bytes(v.tail) for v in ev2.consume()] == [TAIL[:9]] * 2
    finally:
        del sys.modules["qa_records"]
    names = sorted(schemas)
    user = tmp_path / "use_records.py"
    user.write_text(
        "import typedmaps as tm\n"
        f"from qa_records import {', '.join(names)}\n"
        "def first_seq(h: tm.MapHandle) -> int:\n"
        f"    with tm.TypedRingBuffer(h, value={next(n for n in names if 'REC' in n)}) as ev:\n"
        "        return ev.consume()[0].seq\n"
        "def tail(h: tm.MapHandle) -> bytes:\n"
        f"    with tm.TypedRingBuffer(h, value={next(n for n in names if 'VAR' in n)}) as ev:\n"
        "        return ev.consume()[0].tail\n"
    )
    wrong = tmp_path / "wrong_records.py"
    wrong.write_text(
        "import typedmaps as tm\n"
        f"from qa_records import {next(n for n in names if 'REC' in n)} as R\n"
        "def first_seq(h: tm.MapHandle) -> str:\n"
        "    with tm.TypedRingBuffer(h, value=R) as ev:\n"
        "        return ev.consume()[0].seq\n"
    )
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    cache = str(ROOT / "build" / ".mypy_qa_events")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache, "--no-error-summary"]
    ok = subprocess.run(
        [*cmd, str(mod_path), str(user)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        [*cmd, str(wrong)], check=False, env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert bad.returncode == 1, bad.stdout
    assert "Incompatible return value" in bad.stdout, bad.stdout


# ------------------------------------------------------------------------- CLI


def events_cli(m: tm.Map, *args: str) -> list[str]:
    return [sys.executable, "-m", "typedmaps", "events", f"id:{m.id}",
            "--btf", str(bpf_object("qa_events")), *args]  # fmt: skip


def run_events(m: tm.Map, *args: str) -> subprocess.CompletedProcess[str]:
    """`typedmaps events` on m, to the end: its exit status is for the test to check."""
    return subprocess.run(
        events_cli(m, *args), check=False, capture_output=True, text=True, timeout=30
    )


def test_cli_events_json_count_timeout(qa: tm.BpfObject) -> None:
    m = qa.maps["qa_ring"]
    emit(qa, 5)
    out = run_events(m, "--type", "qa_rec", "--json", "--count", "3")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [rec["seq"] for rec in lines] == [0, 1, 2]
    assert lines[0] == {"seq": 0, "target": 0, "lane": 0, "cpu": lines[0]["cpu"], "check": 0}
    # the records past the third stay in the ring for the next reader
    out = run_events(m, "--type", "struct qa_rec", "--json", "--count", "2")
    assert [json.loads(line)["seq"] for line in out.stdout.splitlines()] == [3, 4]
    # --timeout with nothing to read: exits 0 after about that long, prints nothing
    t0 = time.monotonic()
    out = run_events(m, "--type", "struct qa_rec", "--json", "--timeout", "0.5")
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert 0.5 <= took < 10
    # text lines; a size mismatch is reported on stderr and skipped
    emit(qa, 4, mode=SHORT_EVERY, param=2)  # seq 5 (short), 6, 7 (short), 8
    out = run_events(m, "--type", "qa_rec", "--count", "2", "--timeout", "5")
    assert out.returncode == 0, out.stderr
    assert [line.split(",")[0] for line in out.stdout.splitlines()] == ["{seq=6", "{seq=8"]
    assert len(out.stderr.splitlines()) == 2
    assert "Traceback" not in out.stderr
    # a type with a flexible array: every record at least as long as its head fits
    emit(qa, 3, mode=VAR, param=2, lane=1)  # tails of 0, 1, 2 bytes
    out = run_events(m, "--type", "qa_var", "--json", "--count", "3", "--timeout", "5")
    assert out.returncode == 0, out.stderr
    assert "skipped" not in out.stderr, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["seq"], r["len"], r["lane"]) for r in got] == [(0, 0, 1), (1, 1, 1), (2, 2, 1)]
    assert [r["tail"] for r in got] == [list(TAIL[:n]) for n in range(3)]


def test_cli_events_perf_and_ctrl_c(qa: tm.BpfObject) -> None:
    m = qa.maps["qa_perf"]
    proc = subprocess.Popen(
        events_cli(m, "--type", "qa_rec", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first: list[dict[str, int]] = []
        end = time.monotonic() + 20
        while not first and time.monotonic() < end:
            emit(qa, 1, target=PERF, cpu=0)  # until the CLI has opened its rings
            import select

            if select.select([proc.stdout], [], [], 0.3)[0]:
                first.append(json.loads(proc.stdout.readline()))
        assert first
        assert first[0]["target"] == PERF
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 130, err
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_events_bad_type_is_one_line(qa: tm.BpfObject) -> None:
    out = run_events(qa.maps["qa_ring"], "--type", "no_such_type")
    assert out.returncode in (2, 3, 5)
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_cli_events_errors_and_a_closed_stdout(qa: tm.BpfObject, pin_dir: Path) -> None:
    for args, code in (
        (["--type", "qa_rec", "--count", "0"], 2),
        (["--type", "qa_rec", "--timeout", "-1"], 2),
    ):
        out = run_events(qa.maps["qa_ring"], *args)
        assert out.returncode == code, (args, out.stderr)
        assert "Traceback" not in out.stderr
    out = run_events(qa.maps["qa_stats"], "--type", "qa_rec", "--timeout", "0")
    assert out.returncode == 5, out.stderr  # an ARRAY is no event stream
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    # a pin path; stdout closed after the first line (`| head -1`): exit 0, no traceback
    pin = pin_dir / "qa_ring"
    qa.maps["qa_ring"].pin(str(pin))
    emit(qa, 5000)
    obj_file = str(bpf_object("qa_events"))
    cmd = [sys.executable, "-m", "typedmaps", "events", str(pin),
           "--btf", obj_file, "--type", "qa_rec", "--timeout", "10"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("{seq=0,")
        proc.stdout.close()
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        qa.maps["qa_ring"].unpin(str(pin))


# ------------------------------------------------------------------ tracepoint


def test_tracepoint_records_of_this_process_only(qa: tm.BpfObject) -> None:
    ring = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
    perf = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=4)
    config = tm.typed(qa.maps["qa_config"])
    assert isinstance(config, tm.TypedMap)
    config[0] = os.getpid()
    with ring, perf, qa.programs["qa_tp"].attach():
        # another process calls getppid() too: not counted
        subprocess.run(
            [sys.executable, "-c", "import os\nfor _ in range(200): os.getppid()"], check=True
        )
        for _ in range(300):
            os.getppid()
        r = drain(ring, 300)
        p = drain(perf, 300)
    assert [x.seq for x in r] == list(range(300))
    assert {x.target for x in r} == {TP_RING}
    assert sorted(x.seq for x in p) == list(range(300))
    assert {x.target for x in p} == {TP_PERF}
    st = stats(qa)
    assert st.emitted[TP_RING] == st.emitted[TP_PERF] == 300
    assert st.dropped[TP_RING] == st.dropped[TP_PERF] == 0


# ---------------------------------------------------------------------- fd leaks


def test_no_fd_leak(qa: tm.BpfObject) -> None:
    gc.collect()
    before = anon_fds()
    for _ in range(3):
        ring = tm.TypedRingBuffer(qa.maps["qa_ring"], value=REC)
        perf = tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=2)
        user = tm.TypedUserRingBuffer(qa.maps["qa_cmds"], value=CMD)
        with ring, perf, user, tm.EventGroup([ring, perf]) as group:
            emit(qa, 3)
            group.poll(0.1)
            asyncio.run(ring.apoll(0.01))
            user.push(Cmd(seq=0, op=0, arg=0))
        # constructors that refuse leave nothing behind
        with pytest.raises(ValueError, match="pages"):
            tm.TypedPerfBuffer(qa.maps["qa_perf"], value=REC, pages=3)
        with pytest.raises(tm.TypedMapsError):
            tm.RingBuffer(qa.maps["qa_perf"])
        with pytest.raises(tm.TypedMapsError):
            tm.TypedPerfBuffer(qa.maps["qa_ring"], value=REC)
        with pytest.raises(tm.TypedMapsError):
            tm.TypedUserRingBuffer(qa.maps["qa_ring"], value=CMD)
    gc.collect()
    assert anon_fds() == before
