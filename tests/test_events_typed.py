"""Typed event streams: schemas (fixed, head + tail, construct-parsed), bad records, typed()."""

from __future__ import annotations

import struct
from typing import TypeVar

import construct as cs
import pytest
from construct_typed import DataclassStruct

import typedmaps as tm
from typedmaps.codec import make_codec

from .conftest import MakeMap
from .event_streams import (
    COMMAND,
    EVENT,
    MODE_MIXED,
    MODE_VAR,
    VAR_EVENT,
    VAR_MAX,
    Event,
    VarEvent,
    loaded,
    raw_of,
    seq_of,
    seqs,
    var_data,
)

T = TypeVar("T")

pytestmark = pytest.mark.usefixtures("bpf")


def drain(stream: tm.EventStream[T]) -> tuple[list[T], list[tm.CodecError]]:
    """Everything in the stream, and the errors met on the way, in order."""
    got: list[T] = []
    errors: list[tm.CodecError] = []
    while True:
        try:
            batch = stream.consume()
        except tm.CodecError as exc:
            errors.append(exc)
            continue
        if not batch:
            return got, errors
        got.extend(batch)


def test_a_record_of_the_wrong_size_is_an_error_and_the_stream_goes_on() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        em.emit(20, MODE_MIXED, 5)  # every 5th record is a 20-byte var_event
        got, errors = drain(ev)
        assert seqs(got) == [s for s in range(20) if s % 5 != 4]
        assert [len(raw_of(e)) for e in errors] == [20] * 4
        assert [seq_of(e) for e in errors] == [4, 9, 14, 19]
        assert "the record is 20 bytes; the schema DataclassStruct(Event) needs 32" in str(
            errors[0]
        )
        assert errors[0].path == "value"


def test_iteration_raises_at_the_bad_record_and_goes_on_after_it() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=EVENT) as ev:
        em.emit(8, MODE_MIXED, 4)
        seen: list[int] = []
        bad: list[int] = []
        while len(seen) + len(bad) < 8:
            try:
                for e in ev:
                    seen.append(e.seq)
                    if len(seen) + len(bad) == 8:
                        break
            except tm.CodecError as exc:
                bad.append(seq_of(exc))
        assert seen == [0, 1, 2, 4, 5, 6]
        assert bad == [3, 7]


def test_head_and_greedy_tail_match_construct() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=VAR_EVENT) as ev:
        em.emit(500, MODE_VAR, VAR_MAX)
        raw_em_seq = list(range(500))
        got = ev.consume()
        assert [v.seq for v in got] == raw_em_seq
        for v in got:
            assert isinstance(v, VarEvent)
            assert v.len == v.seq % (VAR_MAX + 1) == len(v.data)
            assert v.data == var_data(v.seq, v.len)
            raw = struct.pack("<QII", v.seq, v.len, v.cpu) + v.data
            assert VAR_EVENT.parse(raw) == v  # the fast head + tail split is construct's answer


def test_a_greedy_range_tail_and_a_plain_struct() -> None:
    schema = cs.Struct(
        "seq" / cs.Int64ul,
        "len" / cs.Int32ul,
        "cpu" / cs.Int32ul,
        "data" / cs.GreedyRange(cs.Int8ul),
    )
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=schema) as ev:
        em.emit(40, MODE_VAR, 9)
        got = ev.consume()
        assert [c.seq for c in got] == list(range(40))
        for c in got:
            assert list(c.data) == list(var_data(c.seq, c.len))
            raw = struct.pack("<QII", c.seq, c.len, c.cpu) + bytes(c.data)
            assert schema.parse(raw) == c


def test_a_tail_of_wider_elements_must_divide_evenly() -> None:
    schema = cs.Struct("head" / cs.Bytes(16), "words" / cs.GreedyRange(cs.Int32ul))
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=schema) as ev:
        em.emit(9, MODE_VAR, 8)  # data lengths 0..8: only 0, 4 and 8 are whole words
        got, errors = drain(ev)
        assert [len(c.words) for c in got] == [0, 1, 2]
        assert len(errors) == 6
        assert all("whole number" in str(e) for e in errors)


def test_other_variable_schemas_are_parsed_by_construct() -> None:
    # no fixed head + greedy tail shape: construct parses each record, which must be used up
    exact = cs.Struct(
        "seq" / cs.Int64ul, "len" / cs.Int32ul, "cpu" / cs.Int32ul, "data" / cs.Bytes(cs.this.len)
    )
    half = cs.Struct(
        "seq" / cs.Int64ul,
        "len" / cs.Int32ul,
        "cpu" / cs.Int32ul,
        "data" / cs.Bytes(cs.this.len // 2),
    )
    with loaded("ringbuf") as em:
        with tm.TypedRingBuffer(em.maps["events"], value=exact) as ev:
            em.emit(6, MODE_VAR, 8)
            got, errors = drain(ev)
            assert errors == []
            assert [(c.seq, c.data) for c in got] == [(s, var_data(s, s % 9)) for s in range(6)]
        with tm.TypedRingBuffer(em.maps["events"], value=half) as ev:
            em.emit(4, MODE_VAR, 8)  # seq 6..9: data lengths 6, 7, 8, 0
            got, errors = drain(ev)
            assert [c.seq for c in got] == [9]
            assert [str(e).count("left over") for e in errors] == [1, 1, 1]


def test_a_codec_can_be_given_and_the_schema_is_kept() -> None:
    with loaded("ringbuf") as em:
        codec = make_codec(EVENT)
        with tm.TypedRingBuffer(em.maps["events"], value=codec) as ev:
            assert ev.value_schema is EVENT
            assert "DataclassStruct(Event)" in repr(ev)
            em.emit(3)
            assert seqs(ev.consume()) == [0, 1, 2]


def test_not_a_schema_is_refused_before_anything_opens(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with pytest.raises(tm.CodecError, match="not a construct schema"):
        tm.TypedRingBuffer(h, value=Event)  # type: ignore[arg-type]
    assert not h.closed


def test_typed_picks_the_stream_wrapper() -> None:
    with loaded("ringbuf") as rb, loaded("perfbuf") as pb, loaded("userring") as ur:
        ev = tm.typed(rb.maps["events"], value=EVENT)
        assert isinstance(ev, tm.TypedRingBuffer)
        samples = tm.typed(pb.maps["samples"], value=EVENT)
        assert isinstance(samples, tm.TypedPerfBuffer)
        commands = tm.typed(ur.maps["commands"], value=COMMAND)
        assert isinstance(commands, tm.TypedUserRingBuffer)
        for s in (ev, samples, commands):
            s.close()
        with pytest.raises(tm.NotSupportedError, match='value="event"'):
            tm.typed(rb.maps["events"])
        with pytest.raises(tm.NotSupportedError, match="not keys"):
            tm.typed(pb.maps["samples"], key=cs.Int32ul, value=EVENT)


def test_typed_takes_the_record_type_by_name_from_the_object() -> None:
    with loaded("ringbuf") as em:
        with tm.typed(em.maps["events"], value="event") as ev:
            assert isinstance(ev, tm.TypedRingBuffer)
            em.emit(2, param=9)
            got = ev.consume()
            assert [(r.seq, r.value, r.kind) for r in got] == [(0, 9, 1), (1, 9, 1)]
        with tm.typed(em.maps["events"], value="struct event") as again:
            assert isinstance(again, tm.TypedRingBuffer)
            em.emit(1)
            assert again.consume()[0].seq == 2
        with pytest.raises(tm.CodecError, match=r"no type named 'nope'.*event"):
            tm.typed(em.maps["events"], value="nope")


def test_typed_by_name_needs_btf(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    with pytest.raises(tm.CodecError, match="no BTF"):
        tm.typed(h, value="event")


def test_a_fixed_schema_of_the_wrong_size_shows_in_every_record() -> None:
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=COMMAND) as ev:
        em.emit(3)
        got, errors = drain(ev)
        assert got == []
        assert len(errors) == 3
        assert all(len(raw_of(e)) == 32 for e in errors)


def test_values_that_construct_refuses_are_errors_too() -> None:
    schema = DataclassStruct(Event)
    strict = cs.Struct("seq" / cs.Const(bytes(8)), "rest" / cs.Bytes(24))
    with loaded("ringbuf") as em, tm.TypedRingBuffer(em.maps["events"], value=strict) as ev:
        em.emit(3)  # seq 0 passes the Const, 1 and 2 do not
        got, errors = drain(ev)
        assert len(got) == 1
        assert [seq_of(e) for e in errors] == [1, 2]
    assert schema.sizeof() == 32


def test_a_flexible_array_in_btf_is_the_variable_tail() -> None:
    with loaded("ringbuf") as em, tm.typed(em.maps["events"], value="var_record") as ev:
        assert isinstance(ev, tm.TypedRingBuffer)
        em.emit(5, MODE_VAR, 8)
        got = ev.consume()
        assert [(r.seq, r.len, bytes(r.data)) for r in got] == [
            (s, s % 9, var_data(s, s % 9)) for s in range(5)
        ]
