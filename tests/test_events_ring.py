"""RingBuffer and TypedRingBuffer on real BPF_MAP_TYPE_RINGBUF maps, fed by bpf/ringbuf.bpf.c.

The program counts what it emitted, dropped (the ring was full) and
discarded; every test compares what the stream handed out with those
counters and with the sequence numbers in the records.
"""

from __future__ import annotations

import copy
import os
import pickle
import selectors
import struct
import threading
import time

import pytest

import typedmaps as tm

from .conftest import MakeMap, bpf_object
from .event_streams import (
    EV_SYSCALL,
    EVENT,
    MODE_DISCARD,
    MODE_VAR,
    VAR_MAX,
    Event,
    event_fds,
    loaded,
    seqs,
    var_data,
)

pytestmark = pytest.mark.usefixtures("bpf")


def test_order_and_exactly_once_over_many_records() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        got: list[Event] = []
        for _ in range(5):  # 25,000 records through a ring that holds ~6,500
            assert em.emit(5000) == 5000
            got.extend(ev.consume())
        assert ev.consume() == []
        assert seqs(got) == list(range(25000))
        # (tgid is whatever runs on CPU 0: a test run on another CPU is an IPI there)
        assert {(e.cpu, e.kind) for e in got} == {(0, 1)}
        assert em.counter("emitted") == 25000
        assert em.counter("dropped") == 0


def test_bytes_records_are_exactly_what_was_submitted() -> None:
    with loaded("ringbuf") as em, tm.RingBuffer(em.maps["events"]) as rb:
        em.emit(3, param=77)
        raw = rb.consume()
        assert [len(r) for r in raw] == [32, 32, 32]
        assert [struct.unpack_from("<Q", r)[0] for r in raw] == [0, 1, 2]
        assert {struct.unpack_from("<I", r, 28)[0] for r in raw} == {77}


def test_variable_sizes_in_order_with_their_data() -> None:
    with loaded("ringbuf") as em, tm.RingBuffer(em.maps["events"]) as rb:
        em.emit(3000, MODE_VAR, VAR_MAX)
        raw = rb.consume()
        assert len(raw) == 3000
        for seq, r in enumerate(raw):
            n = seq % (VAR_MAX + 1)
            assert len(r) == 16 + n
            assert struct.unpack_from("<QI", r) == (seq, n)
            assert r[16:] == var_data(seq, n)


def test_discarded_records_are_skipped() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        em.emit(3000, MODE_DISCARD, 3)  # every third reservation is discarded
        got = seqs(ev.consume())
        assert got == [s for s in range(3000) if s % 3 != 2]
        assert em.counter("discarded") == 1000
        assert em.counter("emitted") == 2000


def test_overflow_counts_add_up_and_the_stream_goes_on() -> None:
    with (
        loaded("ringbuf", size=4096) as em,
        tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev,
    ):
        em.emit(1000)  # 40 bytes a record: 102 fit
        got = ev.consume()
        dropped = em.counter("dropped")
        assert 0 < len(got) < 1000
        assert len(got) + dropped == 1000 == em.counter("emitted") + dropped
        assert seqs(got) == list(range(len(got)))  # the first ones made it, in order
        em.emit(50)
        assert seqs(ev.consume()) == list(range(1000, 1050))


def test_a_full_ring_wraps_around_many_times() -> None:
    with (
        loaded("ringbuf", size=4096) as em,
        tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev,
    ):
        got: list[int] = []
        for _ in range(60):  # 60 x 70 records of 40 bytes through 4 KiB
            em.emit(70)
            got.extend(seqs(ev.consume()))
        assert got == list(range(4200))
        assert em.counter("dropped") == 0


def test_poll_timeout_is_not_early_and_not_much_late() -> None:
    with loaded("ringbuf") as em, tm.RingBuffer(em.maps["events"]) as rb:
        for timeout in (0.05, 0.3):
            t0 = time.monotonic()
            assert rb.poll(timeout) == []
            took = time.monotonic() - t0
            assert timeout <= took < timeout + 1.0  # loaded machine: a generous bound
        t0 = time.monotonic()
        assert rb.poll(0) == []
        assert time.monotonic() - t0 < 0.5
        em.emit(2)
        t0 = time.monotonic()
        assert len(rb.poll(10)) == 2  # records already there: no wait
        assert time.monotonic() - t0 < 1.0


def test_poll_wakes_when_a_record_arrives() -> None:
    with loaded("ringbuf") as em, tm.RingBuffer(em.maps["events"]) as rb:
        timer = threading.Timer(0.2, em.emit, args=(3,))
        t0 = time.monotonic()
        timer.start()
        try:
            got = rb.poll(10)
        finally:
            timer.join()
        took = time.monotonic() - t0
        assert len(got) >= 1
        assert 0.15 < took < 5
        got += rb.poll(1)
        assert len(got) == 3


@pytest.mark.parametrize("how", ["iterate", "poll"])
def test_close_from_another_thread_ends_a_blocked_reader(how: str) -> None:
    with loaded("ringbuf") as em:
        ev = tm.TypedRingBuffer(em.maps["events"], value=EVENT)
        em.emit(3)
        seen: list[int] = []
        outcome: list[str] = []

        def reader() -> None:
            if how == "iterate":
                for e in ev:
                    seen.append(e.seq)
                outcome.append("ended")
            else:
                seen.extend(seqs(ev.poll()))
                try:
                    ev.poll(None)
                except tm.MapClosedError:
                    outcome.append("closed")

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.3)
        assert t.is_alive()  # blocked, waiting for more
        t0 = time.monotonic()
        ev.close()
        t.join(1.0)
        assert not t.is_alive()
        assert time.monotonic() - t0 < 1.0
        assert seen == [0, 1, 2]
        assert outcome == ["ended" if how == "iterate" else "closed"]
        ev.close()  # idempotent


def test_a_closed_stream_refuses_everything() -> None:
    with loaded("ringbuf") as em:
        with tm.RingBuffer(em.maps["events"]) as rb:
            assert not rb.closed
            assert rb.handle is em.maps["events"]
        assert rb.closed
        for call in (rb.consume, rb.poll, rb.fileno, lambda: iter(rb), rb.__enter__):
            with pytest.raises(tm.MapClosedError):
                call()
        assert "closed" in repr(rb)
        # the Map view was closed with it; the object hands out a fresh one
        with tm.RingBuffer(em.maps["events"]) as again:
            em.emit(1)
            assert len(again.consume()) == 1


def test_fileno_works_with_selectors() -> None:
    with (
        loaded("ringbuf") as em,
        tm.RingBuffer(em.maps["events"]) as rb,
        selectors.DefaultSelector() as sel,
    ):
        sel.register(rb.fileno(), selectors.EVENT_READ)
        assert sel.select(0.05) == []
        em.emit(4)
        assert len(sel.select(5)) == 1
        assert len(rb.consume()) == 4
        assert sel.select(0.05) == []


def test_tracepoint_events_of_this_process() -> None:
    pid = os.getpid()
    with (
        loaded("ringbuf", tracing=True) as em,
        tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev,
    ):
        with em.tracepoint() as nr:
            for _ in range(300):
                os.getppid()
        got = ev.consume()
        assert 300 <= len(got) <= 310  # other threads of ours might call getppid too
        assert {(e.kind, e.tgid, e.value) for e in got} == {(EV_SYSCALL, pid, nr)}
        for cpu in {e.cpu for e in got}:  # each CPU's sequence, in order, no gap
            mine = [e.seq for e in got if e.cpu == cpu]
            assert mine == list(range(len(mine)))
        assert em.counter("emitted") == len(got)


def test_threads_consume_while_programs_produce() -> None:
    with (
        loaded("ringbuf", size=1 << 20) as em,
        tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev,
    ):
        got: list[list[Event]] = [[], []]
        done = threading.Event()

        def consume(mine: list[Event]) -> None:
            while not done.is_set():
                mine.extend(ev.poll(0.05))
            mine.extend(ev.consume())

        def produce(cpu: int) -> None:
            for _ in range(10):
                em.emit(1000, cpu=cpu)

        consumers = [threading.Thread(target=consume, args=(g,)) for g in got]
        producers = [threading.Thread(target=produce, args=(cpu,)) for cpu in (0, 1)]
        for t in consumers + producers:
            t.start()
        for t in producers:
            t.join()
        done.set()
        for t in consumers:
            t.join()
        everything = got[0] + got[1]
        keys = [(e.cpu, e.seq) for e in everything]
        assert len(keys) == len(set(keys))  # exactly once
        assert len(keys) + em.counter("dropped") == 20000
        for mine in got:  # each consumer saw each CPU's records in the kernel's order
            for cpu in (0, 1):
                s = [e.seq for e in mine if e.cpu == cpu]
                assert s == sorted(s)
        if not em.counter("dropped"):
            assert sorted(keys) == [(c, s) for c in (0, 1) for s in range(10000)]


def test_wrong_map_types_are_refused(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=4)
    with pytest.raises(tm.NotSupportedError, match="needs a RINGBUF map, not the HASH"):
        tm.RingBuffer(h)
    with pytest.raises(TypeError, match="MapHandle"):
        tm.RingBuffer(42)  # type: ignore[arg-type]
    q = make_map(tm.MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=2)
    with pytest.raises(tm.NotSupportedError, match="use PerfBuffer"):
        tm.TypedRingBuffer(q, value=EVENT)


def test_a_map_before_load_is_refused() -> None:
    with (
        tm.BpfObject.open(bpf_object("ringbuf")) as obj,
        pytest.raises(tm.ObjectError, match="load"),
    ):
        tm.RingBuffer(obj.maps["events"])


def test_no_fd_is_left_behind() -> None:
    with loaded("ringbuf") as em:
        before = event_fds()
        for _ in range(3):
            ev = tm.TypedRingBuffer(em.maps["events"], value=EVENT)
            em.emit(10)
            assert len(ev.consume()) == 10
            opened = set(event_fds()) - set(before)
            assert {event_fds()[fd] for fd in opened} >= {
                "anon_inode:[eventpoll]",
                "anon_inode:[eventfd]",
                "anon_inode:bpf-map",
            }
            ev.close()
            assert event_fds() == before
        # closed while another thread is blocked in it: released when that thread leaves
        ev = tm.TypedRingBuffer(em.maps["events"], value=EVENT)
        t = threading.Thread(target=lambda: list(ev))
        t.start()
        time.sleep(0.1)
        ev.close()
        t.join(1.0)
        assert not t.is_alive()
        assert event_fds() == before


def test_standalone_ring_map_reads_nothing_and_closes(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with tm.RingBuffer(h) as rb:
        assert rb.consume() == []
        assert rb.poll(0.01) == []
    assert h.closed


def test_max_records_leaves_the_rest_in_the_ring() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        em.emit(6)
        em.emit(4, MODE_VAR, 8)  # records of other sizes: the header walk, not one run
        assert seqs(ev.consume(max_records=2)) == [0, 1]
        assert seqs(ev.poll(1, max_records=3)) == [2, 3, 4]
        assert seqs(ev.consume(max_records=1)) == [5]
        with pytest.raises(tm.CodecError):
            ev.consume(max_records=2)  # seq 6 has 22 bytes
        with pytest.raises(tm.CodecError):
            ev.consume(max_records=1)  # seq 7
        for bad in (0, -1, True, 1.5):
            with pytest.raises(tm.ArgumentError, match="max_records"):
                ev.consume(max_records=bad)  # type: ignore[arg-type]
    with loaded("ringbuf") as em, tm.RingBuffer(em.maps["events"]) as rb:
        em.emit(5, MODE_VAR, 8)
        assert [len(r) for r in rb.consume(max_records=2)] == [16, 17]
        assert [len(r) for r in rb.consume()] == [18, 19, 20]


def test_streams_refuse_copy_and_pickle() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        for make in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(tm.ArgumentError, match="cannot be"):
                make(ev)
        with tm.EventGroup([ev]) as group, pytest.raises(tm.ArgumentError):
            copy.copy(group)
