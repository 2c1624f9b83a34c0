"""Codecs: fixed-size construct schemas to bytes and back.

A :class:`Codec` wraps one construct schema, the declared source of truth
for a key or value layout, and turns Python values into the exact bytes
the schema builds (and back). Every failure is a
:class:`~typedmaps.errors.CodecError` naming the field path
(``"value.stats.bytes"``), the offending value and the reason, so nothing
reaches a syscall unless it encodes.

Build one with :func:`make_codec`; the typed map layer does this once per
map, when the map is wrapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

import construct as cs
from construct_typed import DataclassStruct

from .errors import CodecError

__all__ = ["Codec", "make_codec"]

T = TypeVar("T")

_PATH_PREFIX = re.compile(r"^\((?:building|parsing|sizeof)\)\s*")


def _join_path(what: str, construct_path: str | None) -> str:
    """Turn construct's ``"(building) -> a -> b"`` into ``"value.a.b"``."""
    if not construct_path:
        return what
    rest = _PATH_PREFIX.sub("", construct_path)
    parts = [p.strip() for p in rest.split("->") if p.strip()]
    return ".".join([what, *parts])


def _reason(exc: BaseException) -> str:
    """The message of a construct error without its "Error in path" line."""
    text = str(exc)
    if isinstance(exc, cs.ConstructError) and exc.path is not None:
        first, _, rest = text.partition("\n")
        if first.startswith("Error in path"):
            text = rest
    if not text:
        text = type(exc).__name__
    elif not isinstance(exc, cs.ConstructError):
        text = f"{type(exc).__name__}: {text}"
    return text


def _field_value(value: object, parts: list[str]) -> object:
    """The value at ``parts`` inside ``value`` (best effort, else ``value``)."""
    for part in parts:
        if isinstance(value, dict):
            if part not in value:
                return value
            value = value[part]
        elif hasattr(value, "__dataclass_fields__") and hasattr(value, part):
            value = getattr(value, part)
        else:
            return value
    return value


def _codec_error(what: str, value: object, exc: BaseException, *, building: bool) -> CodecError:
    """A CodecError for a construct failure; the value is the offending field's."""
    raw = getattr(exc, "path", None)
    path = _join_path(what, raw if isinstance(raw, str) else None)
    parts = path.split(".")[1:]
    shown = _field_value(value, parts) if building else value
    return CodecError(path, shown, _reason(exc))


# Names of construct's ready-made singletons (Int64ul, Float32b, Flag, ...),
# so a codec can say "Int64ul" instead of "<FormatField>".
_SINGLETON_NAMES: dict[int, str] = {
    id(obj): name
    for name, obj in sorted(vars(cs).items())
    if isinstance(obj, cs.Construct) and not name.startswith("_") and name[0].isupper()
}


def schema_name(schema: cs.Construct[Any, Any]) -> str:
    """A short readable name for a schema, for messages.

    Args:
        schema: any construct.

    Returns:
        e.g. ``"Int64ul"``, ``"DataclassStruct(FlowKey)"``, ``"Bytes(6)"``,
        ``"Array(4, Int32ul)"``, ``"Struct(src, dst, port)"``.
    """
    known = _SINGLETON_NAMES.get(id(schema))
    if known is not None:
        return known
    if isinstance(schema, DataclassStruct):
        return f"DataclassStruct({schema.dc_type.__name__})"
    if isinstance(schema, cs.Renamed):
        return schema_name(schema.subcon)
    if isinstance(schema, cs.FormatField):
        return f"FormatField({schema.fmtstr!r})"
    if isinstance(schema, cs.Bytes) and isinstance(schema.length, int):
        return f"Bytes({schema.length})"
    if isinstance(schema, cs.Array) and isinstance(schema.count, int):
        return f"Array({schema.count}, {schema_name(schema.subcon)})"
    if isinstance(schema, cs.Struct):
        names = [sc.name for sc in schema.subcons if sc.name]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"Struct({shown})"
    if isinstance(schema, cs.StringEncoded):
        inner: object = getattr(schema, "subcon", None)
        if isinstance(inner, cs.FixedSized) and isinstance(inner.length, int):
            return f"PaddedString({inner.length}, {schema.encoding!r})"
    if isinstance(schema, cs.Enum | cs.FlagsEnum | cs.Const | cs.Aligned):
        return f"{type(schema).__name__}({schema_name(schema.subcon)})"
    if isinstance(schema, cs.BytesInteger) and isinstance(schema.length, int):
        return f"BytesInteger({schema.length})"
    return type(schema).__name__


class Codec(Generic[T]):
    """Encodes values of type ``T`` to the bytes of one fixed-size schema.

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
        self.fast = False

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
                wrong type, wrong length, unknown enum label, ...).
        """
        try:
            data = self.schema.build(value)
        except Exception as exc:  # construct may raise KeyError/TypeError too
            raise _codec_error(self.what, value, exc, building=True) from exc
        if len(data) != self.size:
            raise CodecError(
                self.what, value, f"built {len(data)} bytes, schema size is {self.size}"
            )
        return data

    def decode(self, data: bytes) -> T:
        """Decode one record.

        Args:
            data: :attr:`size` bytes (the length is the caller's contract).

        Returns:
            what ``schema.parse(data)`` returns.

        Raises:
            CodecError: the bytes do not parse (a Const or enum mismatch,
                undecodable text, ...).
        """
        try:
            return self.schema.parse(data)
        except Exception as exc:
            raise _codec_error(self.what, bytes(data), exc, building=False) from exc

    # -- many records ------------------------------------------------------

    def encode_many(self, values: Iterable[T]) -> bytes:
        """Encode records back to back (stride :attr:`size`).

        Raises:
            CodecError: as :meth:`encode`; the path names the record index.
        """
        return self.encode_strided(list(values), self.size)

    def decode_many(self, data: bytes, count: int) -> list[T]:
        """Decode ``count`` records laid back to back (stride :attr:`size`)."""
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
        pad = bytes(stride - self.size)
        out = bytearray()
        for i, v in enumerate(values):
            try:
                out += self.encode(v)
            except CodecError as exc:
                raise _indexed(exc, self.what, i) from exc
            out += pad
        return bytes(out)

    def decode_strided(self, data: bytes, count: int, stride: int) -> list[T]:
        """Decode ``count`` records placed every ``stride`` bytes.

        Raises:
            CodecError: a record does not decode; ``path`` names its index.
            ValueError: ``data`` is too short or ``stride`` < :attr:`size`.
        """
        size = self.size
        if stride < size:
            raise ValueError(f"stride {stride} is smaller than the record size {size}")
        if count and len(data) < (count - 1) * stride + size:
            raise ValueError(f"{len(data)} bytes cannot hold {count} records of stride {stride}")
        view = memoryview(data)
        out: list[T] = []
        for i in range(count):
            off = i * stride
            try:
                out.append(self.decode(bytes(view[off : off + size])))
            except CodecError as exc:
                raise _indexed(exc, self.what, i) from exc
        return out


def _indexed(exc: CodecError, what: str, index: int) -> CodecError:
    """Re-path a record error: ``value.x`` -> ``value[3].x``."""
    rest = exc.path[len(what) :] if exc.path.startswith(what) else "." + exc.path
    return CodecError(f"{what}[{index}]{rest}", exc.value, exc.reason)


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
    """
    if not isinstance(schema, cs.Construct):
        raise CodecError(what, schema, "not a construct schema")
    try:
        size = schema.sizeof()
    except Exception as exc:
        raise CodecError(
            what, schema, f"schema {schema_name(schema)} has no fixed size: {_reason(exc)}"
        ) from exc
    return Codec(schema, size, what)
