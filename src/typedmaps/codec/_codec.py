"""Codec: one fixed-size schema's encode and decode; fast plan where one exists, else construct."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import construct as cs

from ..errors import CodecError
from ._emit import _compile_plan
from ._explain import _codec_error, _reason, schema_name

T = TypeVar("T")


class Codec(Generic[T]):
    """Encodes values of type ``T`` to the bytes of one fixed-size schema.

    The schema is compiled once into a fast plan where it can be (see
    docs/codecs.md); the plan is proven equal to construct's own parse and
    build by property tests, and it defers to construct for any value it
    does not handle itself, so results and errors are construct's.

    Attributes:
        schema: the construct schema, the source of truth for the layout.
        size: the fixed size in bytes of one record.
        name: a readable name of the schema, e.g. ``"DataclassStruct(FlowKey)"``.
        what: ``"key"`` or ``"value"``: the first element of error paths.
        fast: True when a compiled fast plan is used instead of construct.
    """

    schema: cs.Construct[T, Any]
    size: int
    name: str
    what: str
    fast: bool

    def __init__(self, schema: cs.Construct[T, Any], size: int, what: str) -> None:
        self.schema = schema
        self.size = size
        self.name = schema_name(schema)
        self.what = what
        self._rows: dict[int, struct.Struct] = {}
        self._plan = _compile_plan(schema, size, self._construct_decode, self._construct_encode)
        self.fast = self._plan is not None
        if self._plan is not None:
            # Instance attributes shadow the methods below: a call goes
            # straight into the generated function, without a Python frame
            # in between (measured: 50-70 ns a call, a quarter of encoding
            # a 32-byte record). They carry the methods' documentation.
            self._plan.encode.__doc__ = Codec.encode.__doc__
            self._plan.decode.__doc__ = Codec.decode.__doc__
            self.__dict__["encode"] = self._plan.encode
            self.__dict__["decode"] = self._plan.decode

    def __repr__(self) -> str:
        kind = "fast" if self.fast else "construct"
        return f"<Codec {self.what} {self.name} size={self.size} {kind}>"

    # -- single records ----------------------------------------------------

    def encode(self, value: T) -> bytes:
        """Encode one record.

        Args:
            value: the Python value (a dataclass, int, Container, ...).

        Returns:
            exactly :attr:`size` bytes, as ``schema.build(value)`` makes them.

        Raises:
            CodecError: the value does not fit the schema (out of range,
                wrong type, wrong length, unknown enum label, ...), exactly
                when ``schema.build`` raises.
        """
        return self._construct_encode(value)

    def decode(self, data: bytes) -> T:
        """Decode one record.

        Args:
            data: :attr:`size` bytes (the length is the caller's contract).

        Returns:
            what ``schema.parse(data)`` returns (a Container leaves out
            construct's private ``_io`` entry, which equality ignores).

        Raises:
            CodecError: the bytes do not parse (a Const mismatch, text that
                does not decode, ...), exactly when ``schema.parse`` raises.
        """
        return self._construct_decode(data)

    def _construct_encode(self, value: T) -> bytes:
        try:
            data = self.schema.build(value)
        except Exception as exc:  # construct may raise KeyError/TypeError too
            raise _codec_error(self.schema, self.what, value, exc, building=True) from exc
        if len(data) != self.size:
            raise CodecError(
                self.what, value, f"built {len(data)} bytes, schema size is {self.size}"
            )
        return data

    def _construct_decode(self, data: bytes) -> T:
        try:
            return self.schema.parse(data)
        except Exception as exc:
            raise _codec_error(self.schema, self.what, data, exc, building=False) from exc

    # -- many records ------------------------------------------------------

    def encode_many(self, values: Iterable[T]) -> bytes:
        """Encode records back to back (stride :attr:`size`).

        Raises:
            CodecError: as :meth:`encode`; the path names the record index,
                e.g. ``"value[3].bytes"``.
        """
        seq = values if isinstance(values, list | tuple) else list(values)
        return self.encode_strided(seq, self.size)

    def decode_many(self, data: bytes, count: int) -> list[T]:
        """Decode ``count`` records laid back to back (stride :attr:`size`).

        Raises:
            CodecError: a record does not decode; the path names its index.
            ValueError: ``data`` is shorter than ``count`` records.
        """
        return self.decode_strided(data, count, self.size)

    def encode_strided(self, values: Sequence[T], stride: int) -> bytes:
        """Encode records, each zero-padded to ``stride`` bytes.

        Per-CPU map values use ``stride = round_up(size, 8)``.

        Raises:
            CodecError: a value does not encode; ``path`` is ``"value[3].x"``.
            ValueError: ``stride`` is smaller than :attr:`size`.
        """
        if stride < self.size:
            raise ValueError(f"stride {stride} is smaller than the record size {self.size}")
        plan = self._plan
        if plan is not None:
            try:
                return bytes(plan.encode_rows(values, stride))
            except Exception:  # construct decides, record by record, below
                pass
        encode = self.encode
        try:
            parts = [encode(v) for v in values]
        except CodecError:
            for i, v in enumerate(values):
                try:
                    encode(v)
                except CodecError as exc:
                    raise _indexed(exc, self.what, i) from exc
            raise  # pragma: no cover - the loop above finds the failing record
        if stride == self.size:
            return b"".join(parts)
        sep = bytes(stride - self.size)
        return sep.join(parts) + sep if parts else b""

    def strided_decoder(self, count: int, stride: int) -> Callable[[bytes], list[T]]:
        """A decoder for exactly ``count`` records every ``stride`` bytes, prepared once.

        The same results and errors as ``decode_strided(data, count, stride)``,
        with the argument checks and the row struct done here instead of per
        call: per-CPU lookups decode one such buffer per key.

        Raises:
            ValueError: ``stride`` is smaller than :attr:`size`, or ``count`` < 0.
        """
        if stride < self.size or count < 0:
            raise ValueError(f"cannot decode {count} records of {self.size} bytes every {stride}")
        slow = self.decode_strided
        plan = self._plan
        if plan is None or not count or not stride:
            return lambda data: slow(data, count, stride)
        rows = struct.Struct(plan.struct.format + f"{stride - self.size}x").iter_unpack
        rows_decode = plan.decode_rows
        need = count * stride

        def decode(data: bytes) -> list[T]:
            if len(data) == need:
                try:
                    return rows_decode(rows(data))
                except Exception:  # construct decides, record by record
                    pass
            return slow(data, count, stride)

        return decode

    def decode_strided(self, data: bytes, count: int, stride: int) -> list[T]:
        """Decode ``count`` records placed every ``stride`` bytes.

        Raises:
            CodecError: a record does not decode; ``path`` names its index.
            ValueError: ``data`` is too short or ``stride`` < :attr:`size`.
        """
        size = self.size
        if stride < size:
            raise ValueError(f"stride {stride} is smaller than the record size {size}")
        if count < 0 or (count and len(data) < (count - 1) * stride + size):
            raise ValueError(f"{len(data)} bytes cannot hold {count} records of stride {stride}")
        plan = self._plan
        if plan is not None and count:
            rows = self._rows.get(stride)
            if rows is None:
                rows = struct.Struct(plan.struct.format + f"{stride - size}x")
                self._rows[stride] = rows
            need = count * stride
            if len(data) == need:
                buf: bytes | memoryview = data
            elif len(data) > need:
                buf = memoryview(data)[:need]
            else:  # the last record may come without its trailing padding
                buf = bytes(data) + bytes(need - len(data))
            try:
                return plan.decode_rows(rows.iter_unpack(buf))
            except Exception:  # construct decides, record by record, below
                pass
        view = memoryview(data)
        decode = self.decode
        out: list[T] = []
        for i in range(count):
            off = i * stride
            try:
                out.append(decode(bytes(view[off : off + size])))
            except CodecError as exc:
                raise _indexed(exc, self.what, i) from exc
        return out


def _indexed(exc: CodecError, what: str, index: int) -> CodecError:
    """Re-path a record error: ``value.x`` -> ``value[3].x``."""
    rest = exc.path[len(what) :] if exc.path.startswith(what) else "." + exc.path
    return CodecError(f"{what}[{index}]{rest}", exc.value, exc.reason, action=exc.action)


def make_codec(schema: cs.Construct[T, Any], what: str = "value") -> Codec[T]:
    """Build the codec for a fixed-size schema.

    Args:
        schema: a construct schema whose ``sizeof()`` is known without data:
            FormatFields, BytesInteger, Bytes(n), PaddedString, Padding, Const,
            Enum, FlagsEnum, Array, Struct, Aligned, BitStruct, and
            construct-typing ``DataclassStruct`` records.
        what: ``"key"`` or ``"value"``; the first element of error paths.

    Returns:
        a :class:`Codec` (fast when the schema has a fast plan).

    Raises:
        CodecError: ``schema`` is not a construct, or not of a fixed size
            (path is ``what``).

    Example::

        >>> codec = make_codec(DataclassStruct(FlowKey), "key")
        >>> codec.size, codec.fast
        (16, True)
        >>> codec.decode(codec.encode(key)) == key
        True
        >>> codec.encode(FlowKey(saddr=-1, ...))
        CodecError: key.saddr: cannot encode -1: -1 is out of range for Int32ul (0..4294967295)
    """
    if not isinstance(schema, cs.Construct):
        raise CodecError(what, schema, "not a construct schema", action="use")
    try:
        size = schema.sizeof()
    except Exception as exc:
        raise CodecError(
            what,
            schema,
            f"schema {schema_name(schema)} is not fixed-size (sizeof() raised {_reason(exc)}); "
            "map keys and values need a size known without data",
            action="use",
        ) from exc
    return Codec(schema, size, what)
