"""PerfBuffer and TypedPerfBuffer on real BPF_MAP_TYPE_PERF_EVENT_ARRAY maps (bpf/perfbuf.bpf.c)."""

from __future__ import annotations

import os
import struct

import pytest

import typedmaps as tm
from typedmaps._rings import perf_sample_size

from .conftest import MakeMap
from .event_streams import (
    EV_SYSCALL,
    EVENT,
    MODE_MIXED,
    MODE_VAR,
    VAR_EVENT,
    VAR_MAX,
    Event,
    event_fds,
    loaded,
    raw_of,
    seq_of,
    var_data,
)

pytestmark = pytest.mark.usefixtures("bpf")


def by_cpu(records: list[Event], cpu: int) -> list[int]:
    return [e.seq for e in records if e.cpu == cpu]


def test_each_cpu_in_order_exactly_once() -> None:
    with (
        loaded("perfbuf") as em,
        tm.TypedPerfBuffer(em.maps["samples"], value=EVENT, pages=64) as pb,
    ):
        got: list[Event] = []
        for _ in range(5):  # 10,000 records, 48 bytes each, 256 KiB per CPU
            em.emit(1000, cpu=0)
            em.emit(1000, cpu=1)
            got.extend(pb.consume())
        assert by_cpu(got, 0) == list(range(5000))
        assert by_cpu(got, 1) == list(range(5000))
        assert len(got) == 10000 == em.counter("emitted")
        assert pb.lost == 0
        assert pb.lost_by_cpu == [0] * tm.num_possible_cpus()


def test_samples_arrive_padded_to_eight_bytes() -> None:
    with loaded("perfbuf") as em, tm.PerfBuffer(em.maps["samples"], pages=8) as pb:
        em.emit(200, MODE_VAR, VAR_MAX)
        raw = pb.consume()
        assert len(raw) == 200
        for seq, r in enumerate(raw):
            n = seq % (VAR_MAX + 1)
            assert len(r) == perf_sample_size(16 + n)
            assert struct.unpack_from("<QI", r) == (seq, n)
            assert r[16 : 16 + n] == var_data(seq, n)
            assert not any(r[16 + n :])  # the kernel's padding is zeros


def test_lost_samples_are_counted_per_cpu() -> None:
    with (
        loaded("perfbuf") as em,
        tm.TypedPerfBuffer(em.maps["samples"], value=EVENT, pages=1) as pb,
    ):
        em.emit(500, cpu=1)  # 48-byte samples into a 4 KiB ring: most are lost
        first = pb.consume()
        dropped = em.counter("dropped")
        assert 0 < len(first) < 500
        assert len(first) + dropped == 500
        assert pb.lost == 0  # reported in front of the next sample that fits
        em.emit(1, cpu=1)
        after = pb.consume()
        assert by_cpu(after, 1) == [500]
        assert pb.lost == dropped
        assert pb.lost_by_cpu[1] == dropped
        assert pb.lost_by_cpu[0] == 0
        em.emit(20, cpu=1)  # and the stream goes on
        assert by_cpu(pb.consume(), 1) == list(range(501, 521))


def test_typed_size_mismatch_is_an_error_carrying_the_raw_bytes() -> None:
    with loaded("perfbuf") as em, tm.TypedPerfBuffer(em.maps["samples"], value=EVENT) as pb:
        em.emit(12, MODE_MIXED, 4)  # every 4th record is a 20-byte var_event
        got: list[int] = []
        errors: list[tm.CodecError] = []
        for _ in range(10):
            try:
                got.extend(e.seq for e in pb.consume())
            except tm.CodecError as exc:
                errors.append(exc)
        assert got == [s for s in range(12) if s % 4 != 3]
        assert [seq_of(e) for e in errors] == [3, 7, 11]
        assert all(len(raw_of(e)) == 20 for e in errors)
        assert "20 bytes" in str(errors[0])


def test_variable_records_with_a_tail() -> None:
    with loaded("perfbuf") as em, tm.TypedPerfBuffer(em.maps["samples"], value=VAR_EVENT) as pb:
        em.emit(100, MODE_VAR, 40)
        got = pb.consume()
        assert [v.seq for v in got] == list(range(100))
        for v in got:  # the tail keeps the kernel's padding: trim by the record's own length
            assert v.len == v.seq % 41
            assert v.data[: v.len] == var_data(v.seq, v.len)


def test_tracepoint_samples_of_this_process() -> None:
    with (
        loaded("perfbuf", tracing=True) as em,
        tm.TypedPerfBuffer(em.maps["samples"], value=EVENT) as pb,
    ):
        with em.tracepoint() as nr:
            for _ in range(200):
                os.getppid()
        got = pb.consume()
        assert 200 <= len(got) <= 210
        assert {(e.kind, e.tgid, e.value) for e in got} == {(EV_SYSCALL, os.getpid(), nr)}


def test_pages_must_be_a_power_of_two(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=2)
    for bad in (0, 3, -1, True, 1.0, "8"):
        with pytest.raises(tm.ArgumentError, match="power of two"):
            tm.PerfBuffer(h, pages=bad)  # type: ignore[arg-type]
    assert not h.closed


def test_close_releases_the_events_and_the_map_slots() -> None:
    with loaded("perfbuf") as em:
        before = event_fds()
        pb = tm.PerfBuffer(em.maps["samples"], pages=2)
        opened = {event_fds()[fd] for fd in set(event_fds()) - set(before)}
        assert "anon_inode:[perf_event]" in opened
        em.emit(3)
        assert len(pb.consume()) == 3
        pb.close()
        assert event_fds() == before
        em.emit(1)  # no event in the slot any more: the program's output fails
        assert em.counter("dropped") == 1
        with pytest.raises(tm.MapClosedError):
            _ = pb.lost


def test_max_records_across_cpus() -> None:
    with loaded("perfbuf") as em, tm.TypedPerfBuffer(em.maps["samples"], value=EVENT) as pb:
        em.emit(3, cpu=0)
        em.emit(3, cpu=1)
        first = pb.consume(max_records=4)
        assert [(e.cpu, e.seq) for e in first] == [(0, 0), (0, 1), (0, 2), (1, 0)]
        assert [(e.cpu, e.seq) for e in pb.consume(max_records=1)] == [(1, 1)]
        em.emit(1, cpu=0)
        assert [(e.cpu, e.seq) for e in pb.consume()] == [(0, 3), (1, 2)]
