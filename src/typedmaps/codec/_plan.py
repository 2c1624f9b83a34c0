"""The fast plan: a schema analysed into nodes around one struct.Struct, or refused."""

from __future__ import annotations

import dataclasses
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
    """A construct Struct: (name, node, builds-from-None) per field."""

    fields: list[tuple[str | None, _Node, bool]]


@dataclasses.dataclass(eq=False)
class _Record:
    """A construct-typing DataclassStruct."""

    cls: type
    fields: list[tuple[str, _Node]]  # layout order
    order: list[str]  # declaration order
    init: list[str]  # fields passed to __init__
    plain: bool  # __new__ + attribute stores give the same object as calling cls


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


@dataclasses.dataclass(eq=False)
class _Padded:
    """``inner`` followed by padding (construct's Padded and Aligned)."""

    inner: _Node
    pad: _Pad


_Node = _Leaf | _Pad | _Struct | _Record | _Array | _Wrap | _Padded

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
        if kind is cs.Padded:
            return self.padded(sc)
        if kind is cs.Aligned:
            return self.aligned(sc)
        if kind is _PASS_TYPE:
            return _Pad(0, b"\x00")
        if kind is cs.Struct:
            return self.struct(sc)
        if kind is DataclassStruct:
            return self.record(sc)
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
            dec, enc = _adapter_funcs(sc)
            f, g = self.bind(dec, "_f"), self.bind(enc, "_g")
            return _Wrap(self.plan(sc.subcon), dec=f"{f}({{}})", enc=[f"{{x}} = {g}({{x}})"])  # type: ignore[attr-defined]
        hook = getattr(kind, FAST_LEAF_HOOK, None)
        if callable(hook):
            return self.custom_leaf(sc)
        if _context_free(sc):
            return self.opaque(sc)
        raise _NoPlan(kind.__name__)

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
        fields = [(sub.name, self.plan(sub), bool(sub.flagbuildnone)) for sub in sc.subcons]  # type: ignore[attr-defined]
        return _Struct(fields)

    def record(self, sc: cs.Construct[Any, Any]) -> _Record:
        cls: type = sc.dc_type  # type: ignore[attr-defined]
        inner = sc.subcon  # type: ignore[attr-defined]
        if type(inner) is not cs.Struct or inner.parsed is not None:
            raise _NoPlan("DataclassStruct subcon")
        declared = dataclasses.fields(cls)
        fields: list[tuple[str, _Node]] = []
        for sub in inner.subcons:
            if not isinstance(sub.name, str):
                raise _NoPlan("unnamed DataclassStruct field")
            fields.append((sub.name, self.plan(sub)))
        order = [f.name for f in declared]
        if sorted(order) != sorted(name for name, _ in fields):
            raise _NoPlan("DataclassStruct fields")
        init = [f.name for f in declared if f.init]
        return _Record(cls, fields, order, init, _plain_dataclass(cls))

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


def _fixed_size(sc: cs.Construct[Any, Any]) -> int | None:
    try:
        return int(sc.sizeof())
    except Exception:
        return None


def _plain_dataclass(cls: type) -> bool:
    """True if ``object.__new__(cls)`` plus attribute stores in field order
    builds the same object as ``cls(**init)`` followed by setattr of the other
    fields (what DataclassStruct does): the __init__ is the one dataclasses
    generated, nothing runs after it, attributes are stored plainly."""
    params = getattr(cls, "__dataclass_params__", None)
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if params is None or not params.init or params.frozen or code is None:
        return False
    if code.co_filename != "<string>" or code.co_name != "__init__":
        return False
    new: object = cls.__new__
    setattr_: object = cls.__setattr__
    if new is not object.__new__ or setattr_ is not object.__setattr__:
        return False
    if hasattr(cls, "__post_init__"):
        return False
    declared = dataclasses.fields(cls)
    if any(f.default_factory is not dataclasses.MISSING for f in declared):
        return False
    # InitVar/ClassVar pseudo-fields: __init__ would need more than the fields.
    all_fields: dict[str, object] = getattr(cls, "__dataclass_fields__", {})
    return list(all_fields) == [f.name for f in declared]


def _count_endians(node: _Node, counts: dict[str, int], times: int = 1) -> None:
    if isinstance(node, _Leaf):
        if node.endian:
            counts[node.endian] = counts.get(node.endian, 0) + times
    elif isinstance(node, _Struct):
        for _, sub, _ in node.fields:
            _count_endians(sub, counts, times)
    elif isinstance(node, _Record):
        for _, sub in node.fields:
            _count_endians(sub, counts, times)
    elif isinstance(node, _Array):
        _count_endians(node.elem, counts, times * node.count)
    elif isinstance(node, _Wrap | _Padded):
        _count_endians(node.inner, counts, times)
