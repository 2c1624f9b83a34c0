"""Constructs for the C layouts construct lacks: char arrays, bools, enums, bitfields, unions."""

from __future__ import annotations

import enum
import io
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, cast, overload

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct
from construct_typed.generic_wrapper import Construct

from ._types import _bits_mask, c_string

if TYPE_CHECKING:
    from ._records import OpenIntEnum


E = TypeVar("E", bound=enum.IntEnum)
#: An enum that keeps unknown values as pseudo-members: decodes to exactly it.
OE = TypeVar("OE", bound="OpenIntEnum")
D = TypeVar("D", bound=DataclassMixin)
T = TypeVar("T")


# ---------------------------------------------------------------------------- constructs

#: What a ``typedmaps_fast_leaf()`` hook returns (see typedmaps.codec.FAST_LEAF_HOOK):
#: one struct item, a function from the unpacked item to the parsed value, and a
#: function from a value to the item to pack. The codec calls the hook once per
#: schema and compiles the functions into the record's generated code.
FastLeaf = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None]

#: What a ``typedmaps_fast_overlay()`` hook returns (see typedmaps.codec.FAST_OVERLAY_HOOK):
#: a bitfield of a run, ``("bits", nbytes, shift, width, signed, decode, encode)``,
#: or a union member, ``("subcon", subcon, mask)``.
FastOverlay = (
    tuple[str, int, int, int, bool, Callable[[int], Any] | None, Callable[[Any], int] | None]
    | tuple[str, "cs.Construct[Any, Any]", int]
)

_LE_UINT_CODES: Final = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_BOOLS: Final = (False, True)


def _int_item(size: int, signed: bool) -> str | None:
    """The struct item of a little-endian integer of ``size`` bytes, if struct has one."""
    code = _LE_UINT_CODES.get(size)
    if code is None:
        return None
    return code.lower() if signed else code


def _enum_lookup(cls: type[enum.IntEnum]) -> Callable[[int], Any]:
    """``cls(v)``, or ``v`` itself when ``cls(v)`` raises ValueError; as parse does it.

    ``Enum.__new__`` first looks a value up in the class's value-to-member
    map (``_value2member_map_``), so a hit there is exactly what the call
    returns. On a miss it asks ``_missing_``, which for a plain enum
    (the standard metaclass, ``__new__`` and ``_missing_``, as every class
    :meth:`Btf.enum_class` makes) returns None, so the call raises: then
    the answer is ``v``, without paying about 2.5 us for the exception.
    Any other class is asked itself on a miss.
    """
    members: dict[object, Any] = getattr(cls, "_value2member_map_", None) or {
        m.value: m for m in cls
    }
    get = members.get
    missing = getattr(cls._missing_, "__func__", None)
    plain = (
        type(cls) is enum.EnumType
        and cls.__new__ is enum.Enum.__new__
        and missing is enum.Enum._missing_.__func__  # type: ignore[attr-defined]
    )
    if plain:

        def lookup_plain(v: int) -> Any:
            return get(v, v)

        return lookup_plain

    def lookup(v: int) -> Any:
        m = get(v)
        if m is not None:
            return m
        try:
            return cls(v)
        except ValueError:
            return v

    return lookup


def _char_array_decode(data: bytes) -> str | bytes:
    """CharArray's parse on its N bytes: printable ASCII then only NULs is text.

    Same rule as ``c_string(data, strict=True)``, in four C calls: after
    stripping the trailing NULs, what is left must be ASCII that
    ``str.isprintable`` accepts (for ASCII exactly 0x20-0x7e, so no NUL).
    """
    head = data.rstrip(b"\x00")
    if head.isascii():
        text = head.decode("ascii")
        if text.isprintable():
            return text
    return data


class CharArray(Construct[str | bytes, str | bytes]):
    """A C ``char[N]``: text when the bytes are a clean C string, else the raw bytes.

    Decodes to ``str`` when the bytes before the first NUL are printable
    ASCII (0x20-0x7e) and every byte after it is zero; otherwise to the N
    raw ``bytes``, so decoding then encoding always gives the same bytes.
    Encodes ``str`` (UTF-8) or ``bytes`` of at most N bytes, zero-filled.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length

    def _parse(self, stream: Any, context: Any, path: Any) -> str | bytes:
        data = cs.stream_read(stream, self.length, path)
        text = c_string(data, strict=True)
        return data if text is None else text

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        if isinstance(obj, str):
            raw = obj.encode("utf-8")
        elif isinstance(obj, bytes | bytearray | memoryview):
            raw = bytes(obj)
        else:
            raise cs.StringError(
                f"expected str or bytes for char[{self.length}], got {type(obj).__name__}",
                path=path,
            )
        if len(raw) > self.length:
            raise cs.StringError(f"{len(raw)} bytes do not fit in char[{self.length}]", path=path)
        cs.stream_write(stream, raw + bytes(self.length - len(raw)), self.length, path)
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.length

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf: the N bytes as one ``"Ns"`` item.

        Decoding applies the same text-or-bytes rule as parsing; encoding
        makes the same checks as building and returns the zero-filled N
        bytes, so it raises exactly where building raises.
        """
        n = self.length
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"char array length {n!r}")

        def encode(obj: Any) -> bytes:
            if isinstance(obj, str):
                raw = obj.encode("utf-8")
            elif isinstance(obj, bytes | bytearray | memoryview):
                raw = bytes(obj)
            else:
                raise TypeError(type(obj).__name__)
            if len(raw) > n:
                raise ValueError(f"{len(raw)} bytes do not fit in char[{n}]")
            return raw + bytes(n - len(raw))

        return f"{n}s", _char_array_decode, encode


class BoolInt(Construct[bool, bool | int]):
    """A C ``_Bool``: 0 and 1 decode to False/True, any other byte to its int."""

    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.size = size

    def _parse(self, stream: Any, context: Any, path: Any) -> Any:
        v = int.from_bytes(cs.stream_read(stream, self.size, path), "little")
        return bool(v) if v in (0, 1) else v

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        if not isinstance(obj, int):
            raise cs.IntegerError(f"expected a bool, got {type(obj).__name__}", path=path)
        v = int(obj)
        if not 0 <= v < 1 << (8 * self.size):
            raise cs.IntegerError(f"{v} does not fit in a {self.size}-byte bool", path=path)
        cs.stream_write(stream, v.to_bytes(self.size, "little"), self.size, path)
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.size

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf: an unsigned little-endian struct item.

        Sizes struct has no integer for (16 bytes) travel as ``"Ns"`` and
        go through ``int.from_bytes``/``to_bytes``.
        """
        size = self.size
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"bool size {size!r}")
        limit = 1 << (8 * size)

        def check(obj: Any) -> int:
            if not isinstance(obj, int):
                raise TypeError(type(obj).__name__)
            v = int(obj)
            if not 0 <= v < limit:
                raise ValueError(f"{v} does not fit in a {size}-byte bool")
            return v

        def decode(v: int) -> bool | int:
            return _BOOLS[v] if v < 2 else v

        item = _int_item(size, False)
        if item is not None:
            return item, decode, check

        def decode_bytes(data: bytes) -> bool | int:
            return decode(int.from_bytes(data, "little"))

        def encode_bytes(obj: Any) -> bytes:
            return check(obj).to_bytes(size, "little")

        return f"{size}s", decode_bytes, encode_bytes


class EnumInt(Construct[T, T | int | str], Generic[T]):
    """A C enum stored in ``size`` bytes: decodes to the ``enum`` member, or an int.

    With an :class:`~typedmaps.btf.OpenIntEnum` every value is a member
    (unknown ones are pseudo-members), so the construct decodes to exactly
    that enum type, for mypy too; with a plain ``IntEnum`` a value without
    a member decodes to its ``int``. Encodes an enumerator, an int in the
    signed or unsigned range of the size, or an enumerator's name.
    """

    @overload
    def __init__(self: EnumInt[OE], size: int, signed: bool, enum: type[OE]) -> None: ...
    @overload
    def __init__(self: EnumInt[E | int], size: int, signed: bool, enum: type[E]) -> None: ...
    def __init__(self, size: int, signed: bool, enum: type[enum.IntEnum]) -> None:
        super().__init__()
        self.size = size
        self.signed = signed
        self.enum = enum

    def _parse(self, stream: Any, context: Any, path: Any) -> Any:
        v = int.from_bytes(cs.stream_read(stream, self.size, path), "little", signed=self.signed)
        try:
            return self.enum(v)
        except ValueError:
            return v

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        bits = 8 * self.size
        if isinstance(obj, str):
            try:
                v = int(self.enum[obj])
            except KeyError:
                raise cs.MappingError(
                    f"{obj!r} is not an enumerator of {self.enum.__name__}", path=path
                ) from None
        elif isinstance(obj, int) and not isinstance(obj, bool):
            v = int(obj)
        else:
            raise cs.MappingError(
                f"expected {self.enum.__name__} or int, got {type(obj).__name__}", path=path
            )
        if not -(1 << (bits - 1)) <= v < 1 << bits:
            raise cs.IntegerError(f"{v} does not fit in a {self.size}-byte enum", path=path)
        cs.stream_write(
            stream, (v & ((1 << bits) - 1)).to_bytes(self.size, "little"), self.size, path
        )
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.size

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf: a little-endian struct item of the enum's sign.

        Decoding looks the value up as parsing does; encoding accepts what
        building accepts (a name, or an int in the signed or unsigned range)
        and returns the item in the item's own sign. Sizes struct has no
        integer for travel as ``"Ns"``.
        """
        size, signed, cls = self.size, bool(self.signed), self.enum
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"enum size {size!r}")
        bits = 8 * size
        lo, hi = -(1 << (bits - 1)), 1 << bits
        half, mask = 1 << (bits - 1), (1 << bits) - 1
        lookup = _enum_lookup(cls)

        def check(obj: Any) -> int:
            if isinstance(obj, str):
                v = int(cls[obj])
            elif isinstance(obj, int) and not isinstance(obj, bool):
                v = int(obj)
            else:
                raise TypeError(type(obj).__name__)
            if not lo <= v < hi:
                raise ValueError(f"{v} does not fit in a {size}-byte enum")
            return v

        item = _int_item(size, signed)
        if item is None:

            def decode_bytes(data: bytes) -> Any:
                return lookup(int.from_bytes(data, "little", signed=signed))

            def encode_bytes(obj: Any) -> bytes:
                return (check(obj) & mask).to_bytes(size, "little")

            return f"{size}s", decode_bytes, encode_bytes
        if signed:

            def encode_signed(obj: Any) -> int:
                v = check(obj)
                return v - (1 << bits) if v >= half else v

            return item, lookup, encode_signed

        def encode_unsigned(obj: Any) -> int:
            return check(obj) & mask

        return item, lookup, encode_unsigned


class _NaN32(float):
    """A float32 NaN that remembers its exact bits (CPython quiets signalling NaNs)."""

    raw: bytes


class Float32(Construct[float, float | int]):
    """A little-endian IEEE 754 single; NaNs keep their exact payload bits."""

    _fmt = struct.Struct("<f")

    def _parse(self, stream: Any, context: Any, path: Any) -> float:
        data = cs.stream_read(stream, 4, path)
        (v,) = self._fmt.unpack(data)
        if math.isnan(v) and self._fmt.pack(v) != data:
            nan = _NaN32(v)
            nan.raw = data
            return nan
        return float(v)

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        if isinstance(obj, _NaN32):
            data = obj.raw
        else:
            try:
                data = self._fmt.pack(obj)
            except (struct.error, OverflowError, TypeError) as exc:
                raise cs.FormatFieldError(
                    f"cannot pack {obj!r} as float: {exc}", path=path
                ) from None
        cs.stream_write(stream, data, 4, path)
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return 4

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf: the 4 raw bytes (``"4s"``), not ``"<f"``.

        A ``"<f"`` item would hand decoding a float already converted to a
        double, which quiets a signalling NaN: its bits are gone. With the
        raw bytes, decoding unpacks them itself and keeps a NaN's exact bits
        as parsing does; encoding packs as building does.
        """
        unpack, pack, isnan = self._fmt.unpack, self._fmt.pack, math.isnan

        def decode(data: bytes) -> float:
            (v,) = unpack(data)
            if isnan(v) and pack(v) != data:
                nan = _NaN32(v)
                nan.raw = data
                return nan
            return cast("float", v)

        def encode(obj: Any) -> bytes:
            if isinstance(obj, _NaN32):
                return obj.raw
            return pack(obj)

        return "4s", decode, encode


#: Where an overlay build keeps the bits already written, in construct's context.
#: A struct's member values share that namespace (construct merges them in), and
#: BTF names cannot contain NUL, so no member can collide with this key.
_CLAIMS: Final = "\0typedmaps-claims"


def _overlay_write(
    stream: Any, nbytes: int, *, bits: int, mask: int, context: Any, path: Any
) -> None:
    """Merge ``bits`` under ``mask`` into the next ``nbytes`` of a stream being built.

    The position is left where it was. Bits that an earlier overlay at the
    same position already set must agree (a union given conflicting members).
    """
    pos = stream.tell()
    existing = stream.read(nbytes)
    old = int.from_bytes(existing + bytes(nbytes - len(existing)), "little")
    claims: dict[tuple[int, int], int] = context.get(_CLAIMS)
    if claims is None:
        claims = {}
        context[_CLAIMS] = claims
    where = (id(stream), pos)
    claimed = claims.get(where, 0)
    if (old ^ bits) & mask & claimed:
        raise cs.ValidationError(
            "union members disagree on shared bytes: give one member, or members that agree",
            path=path,
        )
    new = (old & ~mask) | (bits & mask)
    stream.seek(pos)
    stream.write(new.to_bytes(nbytes, "little"))
    stream.seek(pos)
    claims[where] = claimed | mask


class BitField(Construct[T, T | str], Generic[T]):
    """A bitfield inside a run of ``nbytes`` little-endian bytes.

    Parsing reads the run (as one little-endian integer) without consuming
    it and extracts ``width`` bits at ``shift``; building merges the bits
    into the run without moving. An :class:`OverlayEnd` after the run's
    fields consumes (and zero-fills) its bytes. With ``consume=True`` the
    field stands alone and consumes its bytes itself.

    Decodes to an int (sign-extended when ``signed``), to the ``enum``
    member when one matches, or to a bool for a 1-bit ``boolean`` field.
    """

    @overload
    def __init__(
        self: BitField[int],
        nbytes: int,
        shift: int,
        width: int,
        signed: bool,
        *,
        consume: bool = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: BitField[OE],
        nbytes: int,
        shift: int,
        width: int,
        signed: bool,
        *,
        enum: type[OE],
        consume: bool = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: BitField[E | int],
        nbytes: int,
        shift: int,
        width: int,
        signed: bool,
        *,
        enum: type[E],
        consume: bool = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: BitField[bool],
        nbytes: int,
        shift: int,
        width: int,
        signed: bool,
        *,
        boolean: Literal[True],
        consume: bool = ...,
    ) -> None: ...
    def __init__(
        self,
        nbytes: int,
        shift: int,
        width: int,
        signed: bool,
        *,
        enum: type[enum.IntEnum] | None = None,
        boolean: bool = False,
        consume: bool = False,
    ) -> None:
        super().__init__()
        self.nbytes = nbytes
        self.shift = shift
        self.width = width
        self.signed = signed
        self.enum = enum
        self.boolean = boolean
        self.consume = consume
        self.mask = _bits_mask(shift, width)

    def _parse(self, stream: Any, context: Any, path: Any) -> Any:
        pos = stream.tell()
        data = cs.stream_read(stream, self.nbytes, path)
        if not self.consume:
            stream.seek(pos)
        v = (int.from_bytes(data, "little") >> self.shift) & ((1 << self.width) - 1)
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        if self.boolean:
            return bool(v)
        if self.enum is not None:
            try:
                return self.enum(v)
            except ValueError:
                return v
        return v

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        if isinstance(obj, str) and self.enum is not None:
            try:
                v = int(self.enum[obj])
            except KeyError:
                raise cs.MappingError(
                    f"{obj!r} is not an enumerator of {self.enum.__name__}", path=path
                ) from None
        elif isinstance(obj, int):
            v = int(obj)
        else:
            raise cs.IntegerError(
                f"expected an int for a {self.width}-bit field, got {type(obj).__name__}",
                path=path,
            )
        lo, hi = (
            (-(1 << (self.width - 1)), 1 << (self.width - 1))
            if self.signed
            else (0, 1 << self.width)
        )
        if not lo <= v < hi:
            raise cs.IntegerError(
                f"{v} does not fit in a {'signed' if self.signed else 'unsigned'} "
                f"{self.width}-bit field",
                path=path,
            )
        bits = (v & ((1 << self.width) - 1)) << self.shift
        if self.consume:
            cs.stream_write(stream, bits.to_bytes(self.nbytes, "little"), self.nbytes, path)
        else:
            _overlay_write(
                stream, self.nbytes, bits=bits, mask=self.mask, context=context, path=path
            )
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.nbytes if self.consume else 0

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf, for a field that stands alone (``consume=True``).

        Its ``nbytes`` are one unsigned little-endian item (``"Ns"`` for
        sizes struct has no integer for); decoding extracts the bits as
        parsing does, encoding checks as building does and returns the
        shifted bits.

        Raises:
            TypeError: the field is part of a run (``consume=False``): it
                reads bytes that its siblings share and does not move, which
                one struct item of its own cannot say. The record stays on
                construct.
        """
        if not self.consume:
            raise TypeError("a bitfield inside a run shares its bytes: no leaf of its own")
        nbytes, shift, width = self.nbytes, self.shift, self.width
        signed, boolean, cls = bool(self.signed), bool(self.boolean), self.enum
        if not isinstance(nbytes, int) or nbytes < 0 or shift < 0 or width < 1:
            raise ValueError(f"bitfield of {width} bits at {shift} in {nbytes} bytes")
        wmask = (1 << width) - 1
        top = width - 1
        wrap = 1 << width
        lo, hi = (-(1 << top), 1 << top) if signed else (0, wrap)
        lookup = _enum_lookup(cls) if cls is not None else None

        def decode(raw: int) -> Any:
            v = (raw >> shift) & wmask
            if signed and v >> top:
                v -= wrap
            if boolean:
                return _BOOLS[v] if 0 <= v < 2 else bool(v)
            if lookup is not None:
                return lookup(v)
            return v

        def check(obj: Any) -> int:
            if isinstance(obj, str) and cls is not None:
                v = int(cls[obj])
            elif isinstance(obj, int):
                v = int(obj)
            else:
                raise TypeError(type(obj).__name__)
            if not lo <= v < hi:
                raise ValueError(f"{v} does not fit in a {width}-bit field")
            return (v & wmask) << shift

        item = _int_item(nbytes, False)
        if item is not None:
            return item, decode, check

        def decode_bytes(data: bytes) -> Any:
            return decode(int.from_bytes(data, "little"))

        def encode_bytes(obj: Any) -> bytes:
            return check(obj).to_bytes(nbytes, "little")

        return f"{nbytes}s", decode_bytes, encode_bytes

    def typedmaps_fast_overlay(self) -> FastOverlay | None:
        """The codec's group member, for a field of a run (``consume=False``).

        The field is ``width`` bits at ``shift`` of the run's little-endian
        bytes; decoding sign-extends as parsing does and then makes the bool
        or looks the enum member up; encoding converts what building accepts
        (an int, an enumerator's name) to the int, whose range the codec
        checks as building does. A field that consumes its bytes is no group
        member (None): its ``typedmaps_fast_leaf`` applies.
        """
        if self.consume:
            return None
        nbytes, shift, width = self.nbytes, self.shift, self.width
        cls = self.enum
        decode: Callable[[int], Any] | None = None
        if self.boolean:
            decode = bool
        elif cls is not None:
            decode = _enum_lookup(cls)

        def encode(obj: Any) -> int:
            if isinstance(obj, str) and cls is not None:
                return int(cls[obj])
            if isinstance(obj, int):
                return int(obj)
            raise TypeError(type(obj).__name__)

        return ("bits", nbytes, shift, width, bool(self.signed), decode, encode)


class UnionMember(Construct[T | None, T | None], Generic[T]):
    """One member of a union: parsed from the union's bytes without consuming them.

    Building writes the member's bytes only where ``mask`` has bits (its own
    padding does not clobber other members) and does not move; None writes
    nothing. An :class:`OverlayEnd` closes the union. Without ``mask`` the
    member's data bits are found once from the subcon itself: the bits that
    survive decoding and re-encoding all-ones bytes.
    """

    def __init__(self, subcon: cs.Construct[T, Any], mask: int | None = None) -> None:
        super().__init__()
        self.subcon = subcon
        self.nbytes = subcon.sizeof()
        self._mask = mask

    @property
    def mask(self) -> int:
        """The member's data bits, as a little-endian int over its bytes."""
        m = self._mask
        if m is None:
            ones = b"\xff" * self.nbytes
            m = int.from_bytes(self.subcon.build(self.subcon.parse(ones)), "little")
            self._mask = m
        return m

    def _parse(self, stream: Any, context: Any, path: Any) -> Any:
        pos = stream.tell()
        try:
            return self.subcon._parsereport(stream, context, path)
        finally:
            stream.seek(pos)

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        if obj is None:
            return None
        buf = io.BytesIO()
        self.subcon._build(obj, buf, context, path)
        bits = int.from_bytes(buf.getvalue()[: self.nbytes], "little")
        _overlay_write(stream, self.nbytes, bits=bits, mask=self.mask, context=context, path=path)
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return 0

    def typedmaps_fast_overlay(self) -> FastOverlay:
        """The codec's group member: the subcon read from the union's bytes, built under mask."""
        return ("subcon", self.subcon, self.mask)


def UnionRecord(dc_type: type[D]) -> DataclassStruct[D]:
    """``DataclassStruct`` for a record that is always given: a union, or a struct without members.

    Every member of a union record may be None (and a struct with no member
    of its own has nothing to build), so construct would treat the record
    as buildable from nothing and construct-typing's ``csfield`` would
    refuse it. Such a value is still always given: this marks it so.
    ``typedmaps gen`` writes it for unions and memberless structs; frozen
    (key) records get a :class:`FrozenDataclassStruct`.
    """
    from ._records import FrozenDataclassStruct

    params = getattr(dc_type, "__dataclass_params__", None)
    s: DataclassStruct[D]
    if params is not None and params.frozen:
        s = FrozenDataclassStruct(dc_type)  # a union inside a key record
    else:
        s = DataclassStruct(dc_type)
    s.flagbuildnone = False
    return s


class OverlayEnd(Construct[None, None]):
    """Closes a union or a bitfield run: consumes its ``nbytes``; zero-fills unset bytes."""

    def __init__(self, nbytes: int) -> None:
        super().__init__()
        self.nbytes = nbytes
        self.flagbuildnone = True

    def _parse(self, stream: Any, context: Any, path: Any) -> None:
        cs.stream_read(stream, self.nbytes, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        existing = stream.read(self.nbytes)
        if len(existing) < self.nbytes:
            stream.write(bytes(self.nbytes - len(existing)))
        return None

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.nbytes

    def typedmaps_fast_group_end(self) -> int:
        """The codec's group end: the union or bitfield run is ``nbytes`` long."""
        return int(self.nbytes)
