"""TypedRingBuffer, TypedPerfBuffer and TypedUserRingBuffer: event streams of typed records.

The streams of :mod:`typedmaps.events`, with each record decoded (or, for
the user ring buffer, encoded) by a construct schema::

    ev = TypedRingBuffer(obj.maps["events"], value=DataclassStruct(Event))
    # mypy infers TypedRingBuffer[Event]
    for e in ev.poll(timeout=1.0):
        print(e.pid, e.comm)

Schemas
    - any fixed-size schema (a construct-typing ``DataclassStruct``, a
      ``cs.Struct``, an integer, ...): each record must have exactly the
      schema's size (a perf buffer's sample: the size the kernel pads it
      to, see :class:`~typedmaps.events.PerfBuffer`). Whole batches decode
      in one pass of the codec's fast plan.
    - a fixed head followed by a variable tail, for programs that emit
      records of different sizes: a ``cs.Struct`` or ``DataclassStruct``
      whose last field is ``GreedyBytes`` (the rest of the record, as
      bytes) or ``GreedyRange`` of a fixed-size element (a list). The head
      decodes with the codec's fast plan, the tail is sliced off.
    - any other schema that is not fixed-size: parsed by construct, record
      by record (slower), and it must use up the whole record.

A record that does not fit the schema (the wrong size, shorter than the
head, bytes left over, a value construct refuses) is a
:class:`~typedmaps.errors.CodecError` whose ``.value`` is the record's raw
bytes. The records before it are handed out first; the error is raised by
the next call (``consume``, ``poll``, ``next()``), and the call after that
goes on with the record that follows it: the stream never stops on a bad
record.
"""

from __future__ import annotations

import errno as _errno
import io
import select
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic

import construct as cs

from .._rings import Batch, perf_sample_size
from ..codec import Codec, make_codec
from ..errors import CodecError, MapFullError
from ..events import (
    EventStream,
    _framed,
    _open_perf,
    _open_ringbuf,
    _PerfLost,
    _timeout,
    _UserRing,
)
from ..handle import MapHandle
from ._base import V

if TYPE_CHECKING:
    import construct

__all__ = ["TypedPerfBuffer", "TypedRingBuffer", "TypedUserRingBuffer"]

Pending = deque[Any]


# ---------------------------------------------------------------------------- decoders


def _one_by_one(
    buf: bytes, spans: list[tuple[int, int]], one: Callable[[bytes], Any], pending: Pending
) -> None:
    """Decode each record with ``one``; runs of good records and each error, in order.

    A record ``one`` refuses becomes a CodecError carrying its raw bytes.
    """
    ok: list[Any] = []
    for off, n in spans:
        raw = buf[off : off + n]
        try:
            ok.append(one(raw))
            continue
        except CodecError as exc:
            err = CodecError(exc.path, raw, exc.reason, action="decode")
        if ok:
            pending.append(ok)
            ok = []
        pending.append(err)
    if ok:
        pending.append(ok)


class _Fixed(Generic[V]):
    """Records of one fixed-size schema, decoded a batch at a time."""

    __slots__ = ("codec", "name", "size", "want")

    def __init__(self, codec: Codec[V], perf: bool) -> None:
        self.codec = codec
        self.name = codec.name
        self.size = codec.size
        #: The record size the ring reports for one such record.
        self.want = perf_sample_size(codec.size) if perf else codec.size

    def decode(self, batch: Batch, pending: Pending) -> None:
        if batch.spans is None and batch.size == self.want:
            try:
                view: Any = memoryview(batch.buf)[batch.off :]  # decode_strided reads buffers
                pending.append(self.codec.decode_strided(view, batch.count, batch.stride))
                return
            except CodecError:
                pass  # one record is bad: find it, record by record, below
        self._each(batch.buf, batch.sized(), pending)

    def _each(self, buf: bytes, spans: list[tuple[int, int]], pending: Pending) -> None:
        _one_by_one(buf, spans, self._one, pending)

    def _one(self, raw: bytes) -> V:
        n = len(raw)
        if n != self.want:
            raise CodecError(
                "value",
                raw,
                f"the record is {n} bytes; the schema {self.name} needs {self.want}",
                action="decode",
            )
        return self.codec.decode(raw if n == self.size else raw[: self.size])

    def encode_many(self, values: Sequence[V], stride: int) -> bytes:
        return self.codec.encode_strided(values, stride)


class _Variable(Generic[V]):
    """Records of a schema without a fixed size, decoded one record at a time.

    ``split`` is set for a fixed head followed by a GreedyBytes or
    GreedyRange tail: (head codec, tail field name, element codec or None,
    adapter that turns the Container into the schema's type or None).
    """

    __slots__ = ("name", "perf", "schema", "split")

    def __init__(self, schema: cs.Construct[V, Any], perf: bool) -> None:
        self.schema = schema
        self.name = type(schema).__name__
        self.perf = perf
        self.split = _split(schema)

    def decode(self, batch: Batch, pending: Pending) -> None:
        _one_by_one(batch.buf, batch.sized(), self._one, pending)

    def _one(self, raw: bytes) -> V:
        split = self.split
        if split is None:
            return self._parse(raw)
        head, tail_name, element, adapter = split
        hsize = head.size
        if len(raw) < hsize:
            raise CodecError(
                "value",
                raw,
                f"the record is {len(raw)} bytes, shorter than the {hsize}-byte head",
                action="decode",
            )
        fields = head.decode(raw[:hsize])
        tail: Any = raw[hsize:]
        if element is not None:
            count, extra = divmod(len(tail), element.size)
            if extra and not (self.perf and extra < 8 and not any(tail[-extra:])):
                raise CodecError(
                    f"value.{tail_name}",
                    raw,
                    f"{len(tail)} tail bytes are not a whole number of "
                    f"{element.size}-byte elements",
                    action="decode",
                )
            tail = cs.ListContainer(element.decode_many(tail, count))
        fields[tail_name] = tail
        if adapter is None:
            return fields  # type: ignore[no-any-return]
        try:
            return adapter._decode(fields, None, "(parsing)")  # type: ignore[no-any-return]
        except Exception as exc:
            raise CodecError("value", raw, str(exc), action="decode") from exc

    def _parse(self, raw: bytes) -> V:
        stream = io.BytesIO(raw)
        try:
            value: V = self.schema.parse_stream(stream)
        except Exception as exc:
            raise CodecError("value", raw, str(exc), action="decode") from exc
        rest = raw[stream.tell() :]
        # A perf sample may end in up to 7 zero bytes of the kernel's padding.
        if rest and not (self.perf and len(rest) < 8 and not any(rest)):
            raise CodecError(
                "value",
                raw,
                f"{len(rest)} bytes left over after the schema {self.name}",
                action="decode",
            )
        return value

    def encode_one(self, value: V) -> bytes:
        try:
            return self.schema.build(value)
        except Exception as exc:
            raise CodecError("value", value, str(exc)) from exc


def _split(schema: cs.Construct[Any, Any]) -> tuple[Codec[Any], str, Codec[Any] | None, Any] | None:
    """(head codec, tail name, element codec, adapter) for a fixed head + greedy tail."""
    adapter = None
    struct = schema
    if isinstance(schema, cs.Adapter) and isinstance(schema.subcon, cs.Struct):
        adapter, struct = schema, schema.subcon  # e.g. DataclassStruct
    if not isinstance(struct, cs.Struct) or not struct.subcons:
        return None
    last = struct.subcons[-1]
    if not isinstance(last, cs.Renamed) or not last.name:
        return None
    tail = last.subcon
    element: Codec[Any] | None = None
    if isinstance(tail, cs.GreedyRange):
        try:
            element = make_codec(tail.subcon, "value")
        except CodecError:
            return None
    elif tail is not cs.GreedyBytes:
        return None
    try:
        head = make_codec(cs.Struct(*struct.subcons[:-1]), "value")
    except CodecError:
        return None
    return head, last.name, element, adapter


def _decoder(schema: object, perf: bool) -> _Fixed[Any] | _Variable[Any]:
    """The decoder for a record schema; CodecError (action "use") if it is not one."""
    if isinstance(schema, Codec):
        return _Fixed(schema, perf)
    if not isinstance(schema, cs.Construct):
        raise CodecError("value", schema, "not a construct schema", action="use")
    try:
        schema.sizeof()
    except Exception:
        return _Variable(schema, perf)
    return _Fixed(make_codec(schema, "value"), perf)


# ---------------------------------------------------------------------------- streams


class _Typed(EventStream[V]):
    __slots__ = ("_decoder",)

    _decoder: _Fixed[V] | _Variable[V]

    def _decode(self, batch: Batch) -> None:
        self._decoder.decode(batch, self._pending)

    @property
    def value_schema(self) -> construct.Construct[V, Any]:
        """The record schema."""
        d = self._decoder
        return d.codec.schema if isinstance(d, _Fixed) else d.schema

    def __repr__(self) -> str:
        state = ", closed" if self._life.closed else ""
        return f"{type(self).__name__}(value={self._decoder.name}, map={self._h.name!r}{state})"


class TypedRingBuffer(_Typed[V]):
    """A BPF_MAP_TYPE_RINGBUF of ``V`` records (Linux 5.8+).

    Example::

        ev = TypedRingBuffer(obj.maps["events"], value=DataclassStruct(Event))
        ev.consume()               # -> list[Event], never blocks
        ev.poll(timeout=0.5)       # -> list[Event], waits for the first
        for e in ev: ...           # ends when ev.close() is called (any thread)
        async for e in ev: ...

    Raises:
        NotSupportedError: the map is not a RINGBUF.
        CodecError: ``value`` is not a construct schema.
    """

    __slots__ = ()

    def __init__(self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]) -> None:
        opener = _open_ringbuf(handle, "TypedRingBuffer")
        self._decoder = _decoder(value, perf=False)
        self._setup(handle, "TypedRingBuffer", opener, select.EPOLLIN)


class TypedPerfBuffer(_PerfLost, _Typed[V]):
    """A BPF_MAP_TYPE_PERF_EVENT_ARRAY of ``V`` records, one perf ring per CPU.

    As :class:`~typedmaps.events.PerfBuffer` (``pages`` per CPU, a power of
    two; :attr:`lost`, :attr:`lost_by_cpu`), with each sample decoded. A
    fixed-size schema of N bytes matches samples of the size the kernel
    pads N bytes to (``N + 4`` rounded up to 8, less 4); the padding is
    dropped.

    Raises:
        NotSupportedError: the map is not a PERF_EVENT_ARRAY.
        CodecError: ``pages`` is not a power of two, or ``value`` is no schema.
    """

    __slots__ = ()

    def __init__(
        self,
        handle: MapHandle,
        *,
        value: construct.Construct[V, V] | Codec[V],
        pages: int = 64,
    ) -> None:
        opener = _open_perf(handle, "TypedPerfBuffer", pages)
        self._decoder = _decoder(value, perf=True)
        self._setup(handle, "TypedPerfBuffer", opener, select.EPOLLIN)


class TypedUserRingBuffer(_UserRing, Generic[V]):
    """A BPF_MAP_TYPE_USER_RINGBUF written with ``V`` records (Linux 6.1+).

    Example::

        ub = TypedUserRingBuffer(obj.maps["commands"], value=DataclassStruct(Command))
        ub.push(Command(seq=1, op=2, arg=3))
        ub.push_many(commands)     # -> how many fitted

    Raises:
        NotSupportedError: the map is not a USER_RINGBUF.
        CodecError: ``value`` is not a construct schema.
    """

    __slots__ = ("_coder",)

    _coder: _Fixed[V] | _Variable[V]

    def __init__(self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]) -> None:
        coder = _decoder(value, perf=False)
        self._setup(handle, "TypedUserRingBuffer")
        self._coder = coder

    @property
    def value_schema(self) -> construct.Construct[V, Any]:
        """The record schema."""
        c = self._coder
        return c.codec.schema if isinstance(c, _Fixed) else c.schema

    def push(self, value: V, *, timeout: float | None = 0) -> None:
        """Encode and write one record.

        Args:
            timeout: seconds to wait for room (None: forever; 0: no wait).

        Raises:
            CodecError: the value does not encode (nothing was written).
            MapFullError: no room in time.
        """
        if not self._push([value], _timeout(timeout, "push"), "push"):
            raise MapFullError(
                _errno.ENOSPC,
                "push",
                f"the user ring buffer {self._h.name!r} is full (the program has not drained it)",
            )

    def push_many(self, values: Iterable[V], *, timeout: float | None = 0) -> int:
        """Encode records and write them in order, as many as there is room for.

        Every record is encoded first: a CodecError writes nothing.

        Returns:
            how many were written (the first ones).
        """
        return self._push(list(values), _timeout(timeout, "push_many"), "push_many")

    def _push(self, values: list[V], timeout: float | None, op: str) -> int:
        coder = self._coder
        if isinstance(coder, _Fixed):
            size = coder.size
            stride = (size + 8 + 7) & ~7
            blob = coder.encode_many(values, stride)
            self._check_size(size, op)

            def strided(start: int, stop: int) -> tuple[bytes, bool]:
                return blob[start * stride : stop * stride], True

            return self._push_records([size] * len(values), strided, timeout, op)
        raws = [coder.encode_one(v) for v in values]

        def framed(start: int, stop: int) -> tuple[bytes, bool]:
            return _framed(raws[start:stop])[0], False

        return self._push_records([len(r) for r in raws], framed, timeout, op)
