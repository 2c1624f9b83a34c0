"""The fast plan: a schema analysed into nodes around one struct.Struct, or refused."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import struct
import sys
from collections.abc import Callable
from typing import Any

import construct as cs
from construct_typed import DataclassStruct, TEnum, TFlagsEnum

# ---------------------------------------------------------------------------
# The fast plan
#
# A schema is compiled once into Python source built around one precompiled
# struct.Struct: decode is one unpack plus a generated builder that makes the
# very objects construct returns; encode is generated attribute/key reads plus
# one pack. The generated code only ever *succeeds* when construct would
# succeed with the same bytes; on anything unusual (a wrong type, an out of
# range int, a Const mismatch, bytes that do not decode) it gives up and
# construct itself decides, so errors are construct's by construction.
# ---------------------------------------------------------------------------


#: A construct class of your own can take part in fast plans by defining a
#: method of this name, returning ``(format, decode, encode)``:
#:
#: - ``format``: one struct item with an optional byte order, e.g. ``"<I"``,
#:   ``">h"``, ``"<f"`` or ``"16s"``, of exactly the construct's size;
#: - ``decode``: None, or a function from the unpacked item to exactly what
#:   the construct's parse returns; it must raise where parse raises;
#: - ``encode``: None, or a function from a value to the item to pack; it
#:   must raise (anything) wherever the construct's build raises, and may
#:   raise more often (construct then decides).
#:
#: The class must also read nothing from the context. Prove the hook with a
#: property test against the class's own parse/build, as
#: tests/test_codec_equivalence.py does for construct's classes.
FAST_LEAF_HOOK = "typedmaps_fast_leaf"

#: A construct class that reads bytes at its position *without consuming
#: them* (a member of a union, a bitfield of a run sharing its bytes with its
#: neighbours) takes part in fast plans by defining a method of this name.
#: Such members sit in a Struct (or DataclassStruct) one after another, and
#: the construct right after the last of them closes the *group*: it defines
#: FAST_GROUP_END_HOOK and consumes the group's bytes. The codec then reads
#: the group's bytes once, as one struct item, and decodes every member from
#: it. The method returns None when this instance does consume its bytes
#: (then FAST_LEAF_HOOK applies, if defined), or one of:
#:
#: - ``("bits", nbytes, shift, width, signed, decode, encode)``: the member is
#:   bits ``shift .. shift+width-1`` of the little-endian unsigned integer
#:   over the ``nbytes`` bytes at its position (``shift + width <= 8 *
#:   nbytes``), sign-extended when ``signed``. ``decode`` is None or a
#:   function from that int to exactly what parse returns; ``encode`` is None
#:   (the value must be an ``int``) or a function from a value to the int,
#:   raising wherever build raises. The codec checks the int's range for
#:   ``width`` and ``signed``, as build must, and sets those bits.
#: - ``("subcon", subcon, mask)``: the member parses ``subcon`` (a fixed-size,
#:   context-free construct the codec can plan) at its position; building
#:   writes the subcon's bytes only under ``mask`` (a little-endian int over
#:   them), and a None value writes nothing.
#:
#: Building a group starts from zero bytes; members build in order, and a
#: member whose bits under its mask differ from bits earlier members already
#: set must make build raise. The closing construct's method returns the
#: group's size in bytes: parse consumes them and returns None, build leaves
#: the bits the members set and zero-fills the rest. typedmaps.btf's
#: BitField, UnionMember and OverlayEnd follow this protocol.
FAST_OVERLAY_HOOK = "typedmaps_fast_overlay"
FAST_GROUP_END_HOOK = "typedmaps_fast_group_end"

#: An Adapter subclass of your own whose ``_decode``/``_encode`` read no
#: context takes part in fast plans by defining a method of this name that
#: returns ``(decode, encode)``: each None (the value passes unchanged) or a
#: function of one value doing exactly what ``_decode``/``_encode`` do
#: (raising where they raise). The adapter's subcon is planned as usual.
FAST_ADAPTER_HOOK = "typedmaps_fast_adapter"

#: A DataclassStruct subclass whose parse differs from construct-typing's
#: only in how it sets the ``init=False`` fields after calling the class
#: defines a method of this name returning how it does: ``"setattr"``
#: (construct-typing's own) or ``"object.__setattr__"`` (which a frozen
#: dataclass allows). Its build must be construct-typing's.
FAST_RECORD_HOOK = "typedmaps_fast_record"


class _NoPlan(Exception):
    """A schema part has no fast plan; the codec falls back to construct."""


class _Slow(Exception):
    """Raised inside generated code: let construct decide this value."""


@dataclasses.dataclass(eq=False)
class _Leaf:
    """One struct item: ``code`` (``"Q"``, ``"8s"``, ``"?"``) in ``endian``."""

    code: str
    endian: str  # "<", ">" or "" when byte order does not matter
    size: int
    dec: list[str] = dataclasses.field(default_factory=list)  # "_f1({})", inner first
    enc: list[str] = dataclasses.field(default_factory=list)  # "{x} = _g1({x})", outer first
    kind: str = ""  # "int" / "float" for leaves whose byte order can be converted
    signed: bool = False
    opaque: bool = False  # construct converts these bytes (see _Planner.opaque)


@dataclasses.dataclass(eq=False)
class _Pad:
    """``size`` bytes of ``pattern``, skipped when parsing (decodes to None)."""

    size: int
    pattern: bytes


@dataclasses.dataclass(eq=False)
class _Struct:
    """A construct Struct: (name, node, builds-from-None) per field.

    A group of overlay members and the construct closing it is one entry,
    ``(None, _Group, True)``: the group names its members itself.
    """

    fields: list[tuple[str | None, _Node, bool]]


@dataclasses.dataclass(eq=False)
class _Record:
    """A construct-typing DataclassStruct.

    ``build`` says how an instance is made, exactly as ``cls(**init)`` then
    ``setattr`` of the other fields (what DataclassStruct.parse does) makes
    it: ``"stores"`` (``object.__new__`` then attribute stores), ``"dict"``
    (``object.__new__`` then stores into the instance ``__dict__``: frozen
    classes, whose ``__init__`` writes with ``object.__setattr__``),
    ``"setattr"`` (``object.__new__`` then ``object.__setattr__`` per field:
    frozen slots classes) or ``"call"`` (call the class). ``post_init``:
    call ``__post_init__()`` after the fields are set, as the generated
    ``__init__`` does.
    """

    cls: type
    fields: list[tuple[str | None, _Node, bool]]  # layout order; groups as in _Struct
    order: list[str]  # declaration order
    init: list[str]  # fields passed to __init__
    build: str
    post_init: bool = False
    noinit: str = "setattr"  # how parse sets the init=False fields: setattr or object.__setattr__


@dataclasses.dataclass(eq=False)
class _Bits:
    """A bitfield of a group: ``width`` bits at ``shift`` of the group's LE integer."""

    shift: int
    width: int
    signed: bool
    dec: str | None  # expression template on the extracted int
    enc: str | None  # name of a function value -> int, or None (the value must be an int)


@dataclasses.dataclass(eq=False)
class _Overlay:
    """A union member of a group: ``node`` read from the group's first ``size`` bytes."""

    node: _Node
    size: int
    mask: int


@dataclasses.dataclass(eq=False)
class _Member:
    """One named member of a group, with the Default values around it (outer first)."""

    name: str | None
    part: _Bits | _Overlay
    buildnone: bool
    defaults: list[str]  # bound names of Default values, applied to a None value in order
    size: int  # the bytes it reads from the group's start


@dataclasses.dataclass(eq=False)
class _Group:
    """Members sharing ``size`` bytes (a union, a bitfield run), closed by ``end``.

    ``storage`` is the one struct item the bytes travel in: an unsigned
    little-endian int when every member is a bitfield and the size has a
    struct code, else ``"Ns"`` bytes.
    """

    size: int
    members: list[_Member]
    end_name: str | None
    storage: _Leaf


@dataclasses.dataclass(eq=False)
class _Array:
    count: int
    elem: _Node


@dataclasses.dataclass(eq=False)
class _Wrap:
    """An adapter around ``inner``: decode/encode steps and an optional check."""

    inner: _Node
    dec: str | None = None  # expression template on the inner value
    check: str | None = None  # statement template on "{x}" (the inner value)
    enc: list[str] = dataclasses.field(default_factory=list)  # statements on "{x}"
    get: str | None = None  # a mapping's bound get: a hit (not None) is the decoded value


@dataclasses.dataclass(eq=False)
class _Padded:
    """``inner`` followed by padding (construct's Padded and Aligned)."""

    inner: _Node
    pad: _Pad


_Node = _Leaf | _Pad | _Struct | _Record | _Array | _Wrap | _Padded | _Group

_NATIVE = "<" if sys.byteorder == "little" else ">"
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_FLAG_TYPE = type(cs.Flag)
_PASS_TYPE = type(cs.Pass)
_GREEDY_TYPE = type(cs.GreedyBytes)
_ADAPTERS: tuple[type, ...] = (cs.Enum, cs.FlagsEnum, cs.Mapping, TEnum, TFlagsEnum)


def _strip_units(data: bytes, pad: bytes) -> bytes:
    """construct's NullStripped for pads of 2 or 4 bytes (whole units only)."""
    unit = len(pad)
    end = len(data)
    tail = end % unit
    if tail and data[-tail:] == pad[:tail]:
        end -= tail
    while end - unit >= 0 and data[end - unit : end] == pad:
        end -= unit
    return data[:end]


def _padded_string_encoder(encoding: str, length: int) -> Callable[[object], bytes]:
    """The bytes PaddedString builds before padding; raises where construct does."""

    def encode(value: object) -> bytes:
        if not isinstance(value, str):
            raise _Slow
        if value == "":
            return b""
        data = value.encode(encoding)
        if len(data) > length:
            raise _Slow
        return data

    return encode


def _c_string_decoder(term: bytes, encoding: str) -> Callable[[bytes], str]:
    """The text before the first terminator unit; _Slow when there is none (construct fails)."""
    unit = len(term)

    def decode(data: bytes) -> str:
        if unit == 1:
            end = data.find(term)
        else:
            end = next(
                (i for i in range(0, len(data) - unit + 1, unit) if data[i : i + unit] == term), -1
            )
        if end < 0:
            raise _Slow
        return data[:end].decode(encoding)

    return decode


def _c_string_encoder(
    term: bytes, encoding: str, length: int, pattern: bytes
) -> Callable[[object], bytes]:
    """The ``length`` bytes a fixed-size CString builds; _Slow where construct raises."""
    room = length - len(term)

    def encode(value: object) -> bytes:
        if not isinstance(value, str):
            raise _Slow
        data = value.encode(encoding) if value else b""
        if len(data) > room:
            raise _Slow
        return data + term + pattern * (room - len(data))

    return encode


def _adapter_funcs(
    adapter: cs.Construct[Any, Any],
) -> tuple[Callable[[object], object], Callable[[object], object]]:
    """The context-free _decode/_encode of a whitelisted adapter."""
    dec = adapter._decode  # type: ignore[attr-defined]
    enc = adapter._encode  # type: ignore[attr-defined]

    def decode(obj: object) -> object:
        return dec(obj, None, "(parsing)")

    def encode(obj: object) -> object:
        return enc(obj, None, "(building)")

    return decode, encode


def _context_free(sc: cs.Construct[Any, Any]) -> bool:
    """True if ``sc`` parses and builds the same alone as inside a Struct.

    Only classes known not to read the context qualify, with no callable
    (``this``/lambda) parameters and no ``parsed`` hooks anywhere.
    """
    if sc.parsed is not None:
        return False
    known = (
        cs.Struct,
        cs.Renamed,
        cs.FormatField,
        cs.BytesInteger,
        cs.BitsInteger,
        cs.Bytes,
        cs.Padded,
        cs.Aligned,
        cs.Array,
        cs.Const,
        cs.Default,
        cs.Transformed,
        cs.Restreamed,
        cs.FixedSized,
        cs.NullStripped,
        cs.StringEncoded,
        DataclassStruct,
        _FLAG_TYPE,
        _PASS_TYPE,
        _GREEDY_TYPE,
        *_ADAPTERS,
    )
    if type(sc) not in known:
        return False
    for attr in ("length", "count", "modulus", "swapped", "signed", "value", "discard"):
        if callable(getattr(sc, attr, None)):
            return False
    subs: list[cs.Construct[Any, Any]] = []
    if isinstance(sc, cs.Struct):
        subs = list(sc.subcons)
    elif isinstance(sc, cs.Subconstruct):
        subs = [sc.subcon]
    return all(_context_free(s) for s in subs)


class _Planner:
    """Turns a construct schema into a tree of plan nodes (or _NoPlan)."""

    def __init__(self) -> None:
        self.ns: dict[str, object] = {}

    def bind(self, obj: object, prefix: str = "_k") -> str:
        name = f"{prefix}{len(self.ns)}"
        self.ns[name] = obj
        return name

    def plan(self, sc: cs.Construct[Any, Any]) -> _Node:
        if sc.parsed is not None:
            raise _NoPlan("parsed hook")
        kind = type(sc)
        if kind is cs.Renamed:
            return self.plan(sc.subcon)  # type: ignore[attr-defined]
        if kind is cs.FormatField:
            return self.format_field(sc.fmtstr)  # type: ignore[attr-defined]
        if kind is _FLAG_TYPE:
            return _Leaf("?", "", 1)
        if kind is cs.BytesInteger:
            return self.bytes_integer(sc)
        if kind is cs.Bytes:
            n = sc.length  # type: ignore[attr-defined]
            if not isinstance(n, int) or n < 0:
                raise _NoPlan("Bytes length")
            return _Leaf(f"{n}s", "", n, enc=[f"if len({{x}}) != {n}: raise _S"])
        if kind is cs.StringEncoded:
            return self.padded_string(sc)
        if kind is cs.Padded or kind is cs.FixedSized:
            text = self.c_string(sc)
            if text is not None:
                return text
        if kind is cs.Padded:
            return self.padded(sc)
        if kind is cs.Aligned:
            return self.aligned(sc)
        if kind is _PASS_TYPE:
            return _Pad(0, b"\x00")
        if kind is cs.Struct:
            return self.struct(sc)
        if kind is DataclassStruct:
            return self.record(sc, "setattr")
        if isinstance(sc, DataclassStruct) and callable(getattr(kind, FAST_RECORD_HOOK, None)):
            how = getattr(sc, FAST_RECORD_HOOK)()
            if how not in ("setattr", "object.__setattr__"):
                raise _NoPlan(f"{FAST_RECORD_HOOK} returned {how!r}")
            return self.record(sc, how)
        if kind is cs.Array:
            return self.array(sc)
        if kind is cs.Const:
            return self.const(sc)
        if kind is cs.Default:
            value = sc.value  # type: ignore[attr-defined]
            if callable(value):
                raise _NoPlan("Default with a context lambda")
            d = self.bind(value)
            return _Wrap(self.plan(sc.subcon), enc=[f"if {{x}} is None: {{x}} = {d}"])  # type: ignore[attr-defined]
        if kind in _ADAPTERS:
            return self.adapter(sc)
        hook = getattr(kind, FAST_LEAF_HOOK, None)
        if callable(hook):
            return self.custom_leaf(sc)
        if isinstance(sc, cs.Adapter) and callable(getattr(kind, FAST_ADAPTER_HOOK, None)):
            return self.custom_adapter(sc)
        if _context_free(sc):
            return self.opaque(sc)
        raise _NoPlan(kind.__name__)

    def adapter(self, sc: cs.Construct[Any, Any]) -> _Wrap:
        """Enum, FlagsEnum, Mapping, TEnum, TFlagsEnum: the adapter's own _decode/_encode.

        Where the adapter's decode is a lookup in a dict it keeps (Enum and
        Mapping: ``decmapping``; TEnum and TFlagsEnum: the enum class's
        ``_value2member_map_``, which Enum.__new__ looks in first), a hit in
        that dict is the answer and only a miss calls _decode. Encoding an
        exact member of a TEnum/TFlagsEnum class is ``int(member)``, as
        _encode does; an exact int given to Enum is itself.
        """
        dec, enc = _adapter_funcs(sc)
        f, g = self.bind(dec, "_f"), self.bind(enc, "_g")
        inner = self.plan(sc.subcon)  # type: ignore[attr-defined]
        kind = type(sc)
        node = _Wrap(inner, dec=f"{f}({{}})", enc=[f"{{x}} = {g}({{x}})"])
        if kind is cs.Enum or kind is cs.Mapping:
            mapping = sc.decmapping  # type: ignore[attr-defined]
            if type(mapping) is dict:
                node.get = self.bind(mapping.get, "_mg")
            if kind is cs.Enum:
                node.enc = [f"if type({{x}}) is not int: {{x}} = {g}({{x}})"]
        elif kind is TEnum or kind is TFlagsEnum:
            cls = sc.enum_type  # type: ignore[attr-defined]
            members = getattr(cls, "_value2member_map_", None)
            if (
                type(members) is dict
                and isinstance(cls, enum.EnumType)
                and type(cls).__call__ is enum.EnumType.__call__
                and cls.__new__ is enum.Enum.__new__  # type: ignore[comparison-overlap]
            ):
                node.get = self.bind(members.get, "_mg")
            c, i = self.bind(cls, "_E"), self.bind(int, "_int")
            node.enc = [f"{{x}} = {i}({{x}}) if type({{x}}) is {c} else {g}({{x}})"]
        return node

    def c_string(self, sc: cs.Construct[Any, Any]) -> _Leaf | None:
        """``FixedSized(n, CString(enc))`` or ``Padded(n, CString(enc))``: one ``"Ns"`` item.

        Parsing both reads the string up to the first terminator (one NUL
        code unit of the encoding, at a unit boundary) inside the n bytes and
        ignores the rest; without a terminator there both fail. Building
        writes the encoded text, the terminator and padding (zeros for
        FixedSized, the pattern for Padded), and fails when that takes more
        than n bytes. None when ``sc`` is not of this form.
        """
        length, inner = sc.length, sc.subcon  # type: ignore[attr-defined]
        if type(inner) is not cs.StringEncoded or inner.parsed is not None:
            return None
        term_sc: Any = inner.subcon  # type: ignore[attr-defined]
        if type(term_sc) is not cs.NullTerminated or term_sc.parsed is not None:
            return None
        if type(term_sc.subcon) is not _GREEDY_TYPE or term_sc.subcon.parsed is not None:
            return None
        term, encoding = term_sc.term, inner.encoding
        if not (term_sc.consume and term_sc.require and not term_sc.include):
            return None
        if not isinstance(term, bytes) or not term or not isinstance(encoding, str):
            return None
        if not isinstance(length, int) or length < len(term):
            return None
        if type(sc) is cs.Padded:
            pattern = sc.pattern
            if not isinstance(pattern, bytes) or len(pattern) != 1:
                return None
        else:
            pattern = b"\x00"
        dec = self.bind(_c_string_decoder(term, encoding), "_f")
        enc = self.bind(_c_string_encoder(term, encoding, length, pattern), "_g")
        return _Leaf(f"{length}s", "", length, dec=[f"{dec}({{}})"], enc=[f"{{x}} = {enc}({{x}})"])

    def custom_adapter(self, sc: cs.Construct[Any, Any]) -> _Wrap:
        """An adapter of its own that offers its functions (see FAST_ADAPTER_HOOK)."""
        try:
            dec, enc = getattr(sc, FAST_ADAPTER_HOOK)()
        except Exception as exc:
            raise _NoPlan(f"{FAST_ADAPTER_HOOK} failed: {exc!r}") from None
        node = _Wrap(self.plan(sc.subcon))  # type: ignore[attr-defined]
        if dec is not None:
            node.dec = f"{self.bind(dec, '_f')}({{}})"
        if enc is not None:
            node.enc = [f"{{x}} = {self.bind(enc, '_g')}({{x}})"]
        return node

    def custom_leaf(self, sc: cs.Construct[Any, Any]) -> _Leaf:
        """A construct class of its own that offers a fast leaf (see FAST_LEAF_HOOK)."""
        try:
            fmt, dec, enc = getattr(sc, FAST_LEAF_HOOK)()
            one = struct.Struct(fmt)
            size = _fixed_size(sc)
            items = len(one.unpack(bytes(one.size)))
        except Exception as exc:
            raise _NoPlan(f"{FAST_LEAF_HOOK} failed: {exc!r}") from None
        if size != one.size or items != 1:
            raise _NoPlan(f"{FAST_LEAF_HOOK} format {fmt!r} is not one item of {size} bytes")
        endian, code = ("", fmt) if fmt[:1] not in ("<", ">", "=", "!") else (fmt[0], fmt[1:])
        endian = {"=": _NATIVE, "!": ">"}.get(endian, endian)
        base = code.lstrip("0123456789")
        if size == 1 or base in ("s", "?", "x", "p"):
            endian = ""
        leaf = _Leaf(code, endian, size)
        if len(base) != 1:
            raise _NoPlan(f"{FAST_LEAF_HOOK} format {fmt!r} is not one item")
        if base in "bBhHiIlLqQ":
            leaf.kind, leaf.signed = "int", base.islower()
        elif base in "efd":
            leaf.kind = "float"
        elif base != "s":
            raise _NoPlan(f"{FAST_LEAF_HOOK} format {fmt!r}: use an int, float or 'Ns' code")
        if dec is not None:
            leaf.dec.append(f"{self.bind(dec, '_f')}({{}})")
        if enc is not None:
            leaf.enc.append(f"{{x}} = {self.bind(enc, '_g')}({{x}})")
        if base == "s":  # struct would pad or cut a wrong length silently
            leaf.enc.append(f"if len({{x}}) != {size}: raise _S")
        return leaf

    def format_field(self, fmtstr: str) -> _Leaf:
        endian, code = fmtstr[0], fmtstr[1]
        size = struct.calcsize(fmtstr)
        if endian == "=":
            endian = _NATIVE
        if size == 1:
            endian = ""
        kind = "float" if code in "efd" else ("" if code == "?" else "int")
        return _Leaf(code, endian, size, kind=kind, signed=code.islower())

    def bytes_integer(self, sc: cs.Construct[Any, Any]) -> _Leaf:
        n, signed, swapped = sc.length, sc.signed, sc.swapped  # type: ignore[attr-defined]
        if not isinstance(n, int) or n <= 0 or not isinstance(swapped, bool):
            raise _NoPlan("BytesInteger parameters")
        isint = "if not isinstance({x}, int): raise _S"
        order = "little" if swapped else "big"
        code = _INT_CODES.get(n)
        if code is not None:
            code = code.lower() if signed else code
            endian = "" if n == 1 else ("<" if swapped else ">")
            return _Leaf(code, endian, n, enc=[isint], kind="int", signed=bool(signed))
        fb = self.bind(int.from_bytes, "_fb")
        tb = self.bind(int.to_bytes, "_tb")
        s = bool(signed)
        return _Leaf(
            f"{n}s",
            "",
            n,
            dec=[f"{fb}({{}}, {order!r}, signed={s})"],
            enc=[isint, f"{{x}} = {tb}({{x}}, {n}, {order!r}, signed={s})"],
        )

    def padded_string(self, sc: cs.Construct[Any, Any]) -> _Leaf:
        fixed = sc.subcon  # type: ignore[attr-defined]
        encoding = sc.encoding  # type: ignore[attr-defined]
        if type(fixed) is not cs.FixedSized or not isinstance(fixed.length, int):
            raise _NoPlan("StringEncoded other than PaddedString")
        stripped = fixed.subcon
        if type(stripped) is not cs.NullStripped or type(stripped.subcon) is not _GREEDY_TYPE:
            raise _NoPlan("StringEncoded other than PaddedString")
        pad = stripped.pad
        if stripped.parsed is not None or fixed.parsed is not None:
            raise _NoPlan("parsed hook")
        if not isinstance(pad, bytes) or not pad or not isinstance(encoding, str):
            raise _NoPlan("PaddedString pad")
        n = fixed.length
        e = self.bind(encoding, "_e")
        p = self.bind(pad, "_p")
        if len(pad) == 1:
            dec = f"{{}}.rstrip({p}).decode({e})"
        else:
            dec = f"{self.bind(_strip_units, '_su')}({{}}, {p}).decode({e})"
        g = self.bind(_padded_string_encoder(encoding, n), "_g")
        return _Leaf(f"{n}s", "", n, dec=[dec], enc=[f"{{x}} = {g}({{x}})"])

    def pad_of(self, size: int, pattern: object) -> _Pad:
        if not isinstance(pattern, bytes) or len(pattern) != 1 or size < 0:
            raise _NoPlan("padding pattern")
        return _Pad(size, pattern)

    def padded(self, sc: cs.Construct[Any, Any]) -> _Node:
        length, inner = sc.length, sc.subcon  # type: ignore[attr-defined]
        if not isinstance(length, int):
            raise _NoPlan("Padded length")
        inner_size = _fixed_size(inner)
        if inner_size is None or inner_size > length:
            raise _NoPlan("Padded subcon")
        pad = self.pad_of(length - inner_size, sc.pattern)  # type: ignore[attr-defined]
        if type(inner) is _PASS_TYPE and inner.parsed is None:
            return pad
        return _Padded(self.plan(inner), pad)

    def aligned(self, sc: cs.Construct[Any, Any]) -> _Node:
        modulus, inner = sc.modulus, sc.subcon  # type: ignore[attr-defined]
        inner_size = _fixed_size(inner)
        if not isinstance(modulus, int) or modulus < 2 or inner_size is None:
            raise _NoPlan("Aligned parameters")
        pad = self.pad_of(-inner_size % modulus, sc.pattern)  # type: ignore[attr-defined]
        return _Padded(self.plan(inner), pad)

    def struct(self, sc: cs.Construct[Any, Any]) -> _Struct:
        return _Struct(self.fields(sc.subcons))  # type: ignore[attr-defined]

    def fields(self, subcons: list[cs.Construct[Any, Any]]) -> list[tuple[str | None, _Node, bool]]:
        """The plans of a Struct's subcons; overlay members and their end become one _Group."""
        out: list[tuple[str | None, _Node, bool]] = []
        members: list[_Member] = []
        for sub in subcons:
            if sub.parsed is not None:
                raise _NoPlan("parsed hook")
            member = self.overlay(sub)
            if member is not None:
                members.append(member)
                continue
            end = _group_end(sub)
            if end is not None:
                if not members:  # an end alone: bytes nothing reads, zeros when built
                    out.append((sub.name, _Pad(end, b"\x00"), True))
                    continue
                out.append((None, self.group(members, end, sub.name), True))
                members = []
                continue
            if members:
                raise _NoPlan("overlay members not closed by a group end")
            out.append((sub.name, self.plan(sub), bool(sub.flagbuildnone)))
        if members:
            raise _NoPlan("overlay members not closed by a group end")
        return out

    def overlay(self, sc: cs.Construct[Any, Any]) -> _Member | None:
        """``sc`` as a member of a group (see FAST_OVERLAY_HOOK), or None if it is not one."""
        name, buildnone = sc.name, bool(sc.flagbuildnone)
        wrappers: list[cs.Construct[Any, Any]] = []
        core = sc
        while type(core) in (cs.Renamed, cs.Default):
            wrappers.append(core)
            core = core.subcon  # type: ignore[attr-defined]
        hook = getattr(type(core), FAST_OVERLAY_HOOK, None)
        if not callable(hook):
            return None
        defaults: list[str] = []
        for w in [*wrappers, core]:
            if w.parsed is not None:
                raise _NoPlan("parsed hook")
            if type(w) is cs.Default:
                value = w.value
                if callable(value):
                    raise _NoPlan("Default with a context lambda")
                if value is not None:
                    defaults.append(self.bind(value))
        try:
            spec = getattr(core, FAST_OVERLAY_HOOK)()
        except Exception as exc:
            raise _NoPlan(f"{FAST_OVERLAY_HOOK} failed: {exc!r}") from None
        if spec is None:
            return None
        part: _Bits | _Overlay
        if isinstance(spec, tuple) and len(spec) == 7 and spec[0] == "bits":
            _, nbytes, shift, width, signed, dec, enc = spec
            if not all(isinstance(x, int) for x in (nbytes, shift, width)):
                raise _NoPlan(f"{FAST_OVERLAY_HOOK}: bits parameters")
            if shift < 0 or width < 1 or shift + width > 8 * nbytes:
                raise _NoPlan(f"{FAST_OVERLAY_HOOK}: {width} bits at {shift} in {nbytes} bytes")
            part = _Bits(
                shift,
                width,
                bool(signed),
                None if dec is None else f"{self.bind(dec, '_f')}({{}})",
                None if enc is None else self.bind(enc, "_g"),
            )
            size = nbytes
        elif isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "subcon":
            _, sub, mask = spec
            size = _fixed_size(sub) if isinstance(sub, cs.Construct) else None
            if size is None or not isinstance(mask, int) or not 0 <= mask < 1 << (8 * size):
                raise _NoPlan(f"{FAST_OVERLAY_HOOK}: subcon and mask")
            part = _Overlay(self.plan(sub), size, mask)
        else:
            raise _NoPlan(f"{FAST_OVERLAY_HOOK} returned {spec!r}")
        return _Member(name, part, buildnone, defaults, size)

    def group(self, members: list[_Member], size: int, end_name: str | None) -> _Group:
        if size == 0:
            raise _NoPlan("a group of zero bytes")
        if any(m.size > size for m in members):
            raise _NoPlan("an overlay member reads past its group's end")
        if all(isinstance(m.part, _Bits) for m in members) and size in _INT_CODES:
            storage = _Leaf(_INT_CODES[size], "<" if size > 1 else "", size, kind="int")
        else:
            storage = _Leaf(f"{size}s", "", size)
        return _Group(size, members, end_name, storage)

    def record(self, sc: cs.Construct[Any, Any], noinit: str) -> _Record:
        cls: type = sc.dc_type  # type: ignore[attr-defined]
        inner = sc.subcon  # type: ignore[attr-defined]
        if type(inner) is not cs.Struct or inner.parsed is not None:
            raise _NoPlan("DataclassStruct subcon")
        declared = dataclasses.fields(cls)
        if any(not isinstance(sub.name, str) for sub in inner.subcons):
            raise _NoPlan("unnamed DataclassStruct field")
        fields = self.fields(inner.subcons)
        order = [f.name for f in declared]
        if sorted(order) != sorted(str(n) for n in _field_names(fields)):
            raise _NoPlan("DataclassStruct fields")
        init = [f.name for f in declared if f.init]
        build, post_init = _record_build(cls, noinit)
        return _Record(cls, fields, order, init, build, post_init, noinit)

    def array(self, sc: cs.Construct[Any, Any]) -> _Array:
        count = sc.count  # type: ignore[attr-defined]
        if not isinstance(count, int) or count < 0 or sc.discard:  # type: ignore[attr-defined]
            raise _NoPlan("Array parameters")
        return _Array(count, self.plan(sc.subcon))  # type: ignore[attr-defined]

    def const(self, sc: cs.Construct[Any, Any]) -> _Wrap:
        value = sc.value  # type: ignore[attr-defined]
        if callable(value):
            raise _NoPlan("Const with a lambda")
        ok = self.bind((None, value), "_c")
        v = self.bind(value, "_v")
        return _Wrap(
            self.plan(sc.subcon),  # type: ignore[attr-defined]
            check=f"if not {{x}} == {v}: raise _S",
            enc=[f"if {{x}} not in {ok}: raise _S", f"{{x}} = {v}"],
        )

    def opaque(self, sc: cs.Construct[Any, Any]) -> _Leaf:
        """A context-free part with no plan of its own (e.g. a BitStruct):
        its bytes travel in the one struct, construct converts them."""
        size = _fixed_size(sc)
        if size is None:
            raise _NoPlan("opaque part without a size")
        f = self.bind(sc.parse, "_f")
        g = self.bind(sc.build, "_g")
        return _Leaf(
            f"{size}s",
            "",
            size,
            dec=[f"{f}({{}})"],
            enc=[f"{{x}} = {g}({{x}})", f"if len({{x}}) != {size}: raise _S"],
            opaque=True,
        )


def _group_end(sc: cs.Construct[Any, Any]) -> int | None:
    """The size of the group ``sc`` closes (see FAST_GROUP_END_HOOK), or None."""
    core = sc
    while type(core) is cs.Renamed and core.parsed is None:
        core = core.subcon
    hook = getattr(type(core), FAST_GROUP_END_HOOK, None)
    if not callable(hook) or core.parsed is not None:
        return None
    try:
        size = getattr(core, FAST_GROUP_END_HOOK)()
    except Exception as exc:
        raise _NoPlan(f"{FAST_GROUP_END_HOOK} failed: {exc!r}") from None
    if not isinstance(size, int) or size < 0 or _fixed_size(sc) != size:
        raise _NoPlan(f"{FAST_GROUP_END_HOOK} returned {size!r}")
    return size


def _field_names(fields: list[tuple[str | None, _Node, bool]]) -> list[str | None]:
    """Every name a list of fields decodes to: groups give their members' and end's."""
    out: list[str | None] = []
    for name, node, _ in fields:
        if isinstance(node, _Group):
            out += [m.name for m in node.members]
            out.append(node.end_name)
        else:
            out.append(name)
    return out


def _fixed_size(sc: cs.Construct[Any, Any]) -> int | None:
    try:
        return int(sc.sizeof())
    except Exception:
        return None


def _record_build(cls: type, noinit: str = "setattr") -> tuple[str, bool]:
    """How to make the instance ``cls(**init)`` makes, and whether __post_init__ follows.

    DataclassStruct.parse calls ``cls(**init)`` and then ``setattr``s the
    fields with ``init=False``. When ``__init__`` is the one dataclasses
    generated (and nothing else runs: the class's own ``__new__`` is
    object's, its metaclass calls plainly, no InitVar, no ``init=False``
    field with a default factory), that ``__init__`` does nothing but store
    the init fields in order, then call ``self.__post_init__()`` if it was
    generated to. The same object is then made by:

    - ``"stores"``: ``object.__new__`` and ``o.name = value`` (what a plain
      class's ``__init__`` does), when ``__setattr__`` is object's;
    - ``"dict"``: ``object.__new__`` and stores into ``o.__dict__`` (a frozen
      class's ``__init__`` uses ``object.__setattr__``, which for a field
      that is no data descriptor is a store into the instance dict, in the
      same order);
    - ``"setattr"``: ``object.__new__`` and ``object.__setattr__`` per field
      (a frozen class with slots: exactly its ``__init__``'s calls);
    - ``"call"``: anything else, and frozen classes with ``init=False``
      fields set with ``setattr`` (DataclassStruct's raises on those:
      construct decides); ``noinit`` ``"object.__setattr__"`` sets them as
      a frozen ``__init__`` sets its fields.
    """
    params = getattr(cls, "__dataclass_params__", None)
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if params is None or not params.init or code is None:
        return "call", False
    if code.co_filename != "<string>" or code.co_name != "__init__":
        return "call", False
    new: object = cls.__new__
    meta_call: object = type(cls).__call__
    if new is not object.__new__ or meta_call is not type.__call__:
        return "call", False
    declared = dataclasses.fields(cls)
    # InitVar/ClassVar pseudo-fields: __init__ would need more than the fields.
    all_fields: dict[str, object] = getattr(cls, "__dataclass_fields__", {})
    if list(all_fields) != [f.name for f in declared]:
        return "call", False
    if any(not f.init and f.default_factory is not dataclasses.MISSING for f in declared):
        return "call", False  # __init__ calls the factory and stores it in field order
    post_init = "__post_init__" in code.co_names
    if not params.frozen:
        setattr_: object = cls.__setattr__
        return ("stores" if setattr_ is object.__setattr__ else "call"), post_init
    if noinit == "setattr" and any(not f.init for f in declared):
        return "call", False
    names = [f.name for f in declared]
    getattribute: object = cls.__getattribute__
    dict_attr = inspect.getattr_static(cls, "__dict__", None)
    plain_dict = (
        getattribute is object.__getattribute__
        and type(dict_attr).__name__ == "getset_descriptor"
        and not any(hasattr(type(inspect.getattr_static(cls, n, None)), "__set__") for n in names)
    )
    return ("dict" if plain_dict else "setattr"), post_init


def _count_endians(node: _Node, counts: dict[str, int], times: int = 1) -> None:
    if isinstance(node, _Leaf):
        if node.endian:
            counts[node.endian] = counts.get(node.endian, 0) + times
    elif isinstance(node, _Struct | _Record):
        for _, sub, _ in node.fields:
            _count_endians(sub, counts, times)
    elif isinstance(node, _Array):
        _count_endians(node.elem, counts, times * node.count)
    elif isinstance(node, _Wrap | _Padded):
        _count_endians(node.inner, counts, times)
    elif isinstance(node, _Group) and node.storage.endian:
        counts[node.storage.endian] = counts.get(node.storage.endian, 0) + times
