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

import dataclasses
import re
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

import construct as cs
from construct_typed import DataclassStruct, TEnum, TFlagsEnum

from .errors import CodecError

__all__ = ["FAST_LEAF_HOOK", "Codec", "PairPlan", "make_codec", "pair_plan"]

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


def _codec_error(
    schema: cs.Construct[Any, Any], what: str, value: object, exc: BaseException, *, building: bool
) -> CodecError:
    """A CodecError for a construct failure, naming the first bad field.

    The walk in :func:`_explain_build` / :func:`_explain_parse` finds the
    field and a plain reason; if it finds nothing (an exotic schema), the
    path and message come from construct's exception.
    """
    try:
        found = (
            _explain_build(schema, value, what)
            if building
            else _explain_parse(schema, bytes(cast("bytes", value)), what)
        )
    except Exception:
        found = None
    action = "encode" if building else "decode"
    if found is not None:
        return CodecError(*found, action=action)
    raw = getattr(exc, "path", None)
    path = _join_path(what, raw if isinstance(raw, str) else None)
    parts = path.split(".")[1:]
    shown = _field_value(value, parts) if building else value
    return CodecError(path, shown, _reason(exc), action=action)


# Names of construct's ready-made singletons (Int64ul, Float32b, Flag, ...),
# so a codec can say "Int64ul" instead of "<FormatField>". Aliases (Short,
# Byte, Single, ...) come first so the explicit IntNNxx/FloatNNx names win.
_SINGLETON_NAMES: dict[int, str] = {
    id(obj): name
    for name, obj in sorted(
        vars(cs).items(), key=lambda item: (item[0].startswith(("Int", "Float")), item[0])
    )
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


# ---------------------------------------------------------------------------
# Explaining failures: once construct has refused a value (or bytes), find
# the first field it trips over, in construct's own order, and say why in
# words ("300 is out of range for Int8ub (0..255)") with a path that also
# names array indices ("value.hops[2].ttl"), which construct's paths do not.
# ---------------------------------------------------------------------------

_Problem = tuple[str, object, str]  # path, offending value, reason


def _type_name(value: object) -> str:
    return type(value).__name__


def _int_bounds(size: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    return 0, (1 << (8 * size)) - 1


def _explain_number(sc: cs.Construct[Any, Any], value: object, path: str) -> _Problem | None:
    """Why a FormatField or BytesInteger refuses ``value`` (None if it does not)."""
    name = schema_name(sc)
    if isinstance(sc, cs.FormatField):
        fmt: str = sc.fmtstr
        try:
            struct.pack(fmt, value)
        except Exception:
            pass
        else:
            return None
        code = fmt[1]
        if code in "efd":
            if isinstance(value, int | float) or hasattr(value, "__float__"):
                return path, value, f"{value!r} is out of range for {name}"
            return path, value, f"expected a number for {name}, got {_type_name(value)}"
        if not hasattr(type(value), "__index__"):
            return path, value, f"expected an int for {name}, got {_type_name(value)}"
        lo, hi = _int_bounds(struct.calcsize(fmt), code.islower())
        return path, value, f"{value!r} is out of range for {name} ({lo}..{hi})"
    length, signed = sc.length, sc.signed  # type: ignore[attr-defined]
    if not isinstance(value, int):
        return path, value, f"expected an int for {name}, got {_type_name(value)}"
    lo, hi = _int_bounds(length, bool(signed))
    if lo <= value <= hi:
        return None
    return path, value, f"{value!r} is out of range for {name} ({lo}..{hi})"


def _explain_build(sc: cs.Construct[Any, Any], value: object, path: str) -> _Problem | None:
    """The first field of ``value`` that ``sc.build`` fails on, and why."""
    kind = type(sc)
    if kind is cs.Renamed:
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind is DataclassStruct:
        cls: type = sc.dc_type  # type: ignore[attr-defined]
        if not isinstance(value, cls):
            return path, value, f"expected a {cls.__name__}, got {_type_name(value)}"
        for sub in sc.subcon.subcons:  # type: ignore[attr-defined]
            where = f"{path}.{sub.name}"
            if not hasattr(value, sub.name):
                return where, value, f"{cls.__name__} has no attribute {sub.name!r}"
            found = _explain_build(sub, getattr(value, sub.name), where)
            if found is not None:
                return found
        return None
    if kind is cs.Struct:
        names = [sub.name for sub in sc.subcons if sub.name]  # type: ignore[attr-defined]
        if value is None:
            value = {}
        if not isinstance(value, dict):
            keys = ", ".join(names)
            return path, value, f"expected a dict with keys {keys}, got {_type_name(value)}"
        for sub in sc.subcons:  # type: ignore[attr-defined]
            where = f"{path}.{sub.name}" if sub.name else path
            if sub.flagbuildnone:
                item = value.get(sub.name)
            elif sub.name not in value:
                return where, value, f"missing key {sub.name!r}"
            else:
                item = value[sub.name]
            found = _explain_build(sub, item, where)
            if found is not None:
                return found
        return None
    if kind is cs.Array:
        count = sc.count  # type: ignore[attr-defined]
        if not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
            return path, value, f"expected a sequence of {count} elements, got {_type_name(value)}"
        if len(value) != count:
            return path, value, f"expected {count} elements, got {len(value)}"
        for i, item in enumerate(value):
            found = _explain_build(sc.subcon, item, f"{path}[{i}]")  # type: ignore[attr-defined]
            if found is not None:
                return found
        return None
    if kind is cs.Const:
        const = sc.value  # type: ignore[attr-defined]
        if value not in (None, const):
            return path, value, f"expected the constant {const!r} (or None)"
        return _explain_build(sc.subcon, const, path)  # type: ignore[attr-defined]
    if kind is cs.Default and not callable(sc.value):  # type: ignore[attr-defined]
        value = sc.value if value is None else value  # type: ignore[attr-defined]
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind in (cs.Padded, cs.Aligned):
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind is cs.FormatField or (kind is cs.BytesInteger and isinstance(sc.length, int)):  # type: ignore[attr-defined]
        return _explain_number(sc, value, path)
    if kind is cs.Bytes and isinstance(sc.length, int):  # type: ignore[attr-defined]
        n = sc.length  # type: ignore[attr-defined]
        if isinstance(value, bytes | bytearray):
            if len(value) != n:
                return path, value, f"expected {n} bytes, got {len(value)}"
            return None
        if not isinstance(value, int):
            return path, value, f"expected {n} bytes, got {_type_name(value)}"
    if kind is cs.StringEncoded:
        fixed = sc.subcon  # type: ignore[attr-defined]
        encoding = sc.encoding  # type: ignore[attr-defined]
        if not isinstance(value, str):
            return path, value, f"expected a str, got {_type_name(value)}"
        try:
            data = value.encode(encoding) if value else b""
        except UnicodeEncodeError as exc:
            return path, value, f"cannot encode as {encoding}: {exc.reason}"
        if type(fixed) is cs.FixedSized and isinstance(fixed.length, int):
            if len(data) > fixed.length:
                return (
                    path,
                    value,
                    f"encodes to {len(data)} bytes in {encoding}, more than the {fixed.length} "
                    "the field holds",
                )
            return None
    if kind is cs.Enum and not isinstance(value, int):
        if value not in sc.encmapping:  # type: ignore[attr-defined]
            labels = ", ".join(sorted(str(k) for k in sc.encmapping))  # type: ignore[attr-defined]
            return path, value, f"unknown label {value!r} (known: {labels})"
        return _explain_build(sc.subcon, sc.encmapping[value], path)  # type: ignore[attr-defined]
    # Anything else: ask construct about this part alone.
    try:
        sc.build(value)
    except Exception as exc:
        return path, value, _reason(exc)
    return None


def _explain_parse(sc: cs.Construct[Any, Any], data: bytes, path: str) -> _Problem | None:
    """The first field of ``data`` that ``sc.parse`` fails on, and why."""
    kind = type(sc)
    if kind is cs.Renamed:
        return _explain_parse(sc.subcon, data, path)  # type: ignore[attr-defined]
    parts: list[tuple[str, cs.Construct[Any, Any]]] | None = None
    if kind is DataclassStruct:
        parts = [(f"{path}.{sub.name}", sub) for sub in sc.subcon.subcons]  # type: ignore[attr-defined]
    elif kind is cs.Struct:
        parts = [(f"{path}.{sub.name}" if sub.name else path, sub) for sub in sc.subcons]  # type: ignore[attr-defined]
    elif kind is cs.Array and isinstance(sc.count, int):  # type: ignore[attr-defined]
        parts = [(f"{path}[{i}]", sc.subcon) for i in range(sc.count)]  # type: ignore[attr-defined]
    elif kind in (cs.Padded, cs.Aligned):
        parts = [(path, sc.subcon)]  # type: ignore[attr-defined]
    if parts is not None:
        offset = 0
        for where, sub in parts:
            size = _fixed_size(sub)
            if size is None:
                break
            found = _explain_parse(sub, data[offset : offset + size], where)
            if found is not None:
                return found
            offset += size
        return None
    try:
        sc.parse(data)
    except Exception as exc:
        return path, bytes(data), _reason(exc)
    return None


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


class _Emitter:
    """Writes the generated decode/encode source for one plan tree."""

    def __init__(self, planner: _Planner, prefix: str, stem: str = "") -> None:
        self.planner = planner
        self.prefix = prefix
        # Prepended to every local the code uses, so the code of two schemas
        # can share one function body (see _compile_pair).
        self.stem = stem
        self.fmt: list[str] = []
        self.items = 0
        self.tmp = 0
        self.lines: list[str] = []
        self.args: list[str] = []
        self.use_t = False
        self.converted: dict[int, _Leaf] = {}

    def name(self, stem: str) -> str:
        self.tmp += 1
        return f"{self.stem}{stem}{self.tmp}"

    def leaf(self, node: _Leaf) -> _Leaf:
        """The leaf as it goes into this struct: other-endian numbers become
        raw bytes converted on the way (struct has one byte order per format)."""
        if not node.endian or node.endian == self.prefix:
            return node
        done = self.converted.get(id(node))
        if done is not None:
            return done
        p = self.planner
        if node.kind not in ("int", "float"):  # pragma: no cover - nothing else has one
            raise _NoPlan("byte order")
        # One-item structs in the field's own byte order: the same acceptance
        # and range checks as packing the field in place, as a bound C call.
        one = struct.Struct(node.endian + node.code)
        u = p.bind(one.unpack, "_u")
        k = p.bind(one.pack, "_pk")
        conv = _Leaf(
            f"{node.size}s",
            "",
            node.size,
            dec=[f"{u}({{}})[0]", *node.dec],
            enc=[*node.enc, f"{{x}} = {k}({{x}})"],
        )
        self.converted[id(node)] = conv
        return conv

    def item(self, i: int) -> str:
        return f"{self.stem}t[{i}]" if self.use_t else f"{self.stem}v{i}"

    # -- format ------------------------------------------------------------

    def layout(self, node: _Node) -> None:
        """Append the struct format of ``node`` and count its items."""
        if isinstance(node, _Leaf):
            self.fmt.append(self.leaf(node).code)
            self.items += 1
        elif isinstance(node, _Pad):
            if node.size:
                self.fmt.append(f"{node.size}x" if node.pattern == b"\x00" else f"{node.size}s")
                self.items += node.pattern != b"\x00"
        elif isinstance(node, _Struct):
            for _, sub, _ in node.fields:
                self.layout(sub)
        elif isinstance(node, _Record):
            for _, sub in node.fields:
                self.layout(sub)
        elif isinstance(node, _Array):
            self.use_t = True
            for _ in range(node.count):
                self.layout(node.elem)
        elif isinstance(node, _Wrap):
            self.layout(node.inner)
        else:
            self.layout(node.inner)
            self.layout(node.pad)

    # -- decode ------------------------------------------------------------

    def dec(self, node: _Node) -> str:
        """Expression for the decoded value of ``node`` (statements go to lines)."""
        if isinstance(node, _Leaf):
            leaf = self.leaf(node)
            expr = self.item(self.items)
            self.items += 1
            for tmpl in leaf.dec:
                expr = tmpl.format(expr)
            return expr
        if isinstance(node, _Pad):
            if node.size and node.pattern != b"\x00":
                self.items += 1
            return "None"
        if isinstance(node, _Struct):
            parts = []
            for name, sub, _ in node.fields:
                expr = self.dec(sub)
                if name is not None:
                    parts.append(f"{name!r}: {expr}")
            return f"_C({{{', '.join(parts)}}})"
        if isinstance(node, _Record):
            return self.dec_record(node)
        if isinstance(node, _Array):
            return self.dec_array(node)
        if isinstance(node, _Wrap):
            expr = self.dec(node.inner)
            if node.check is not None:
                var = self.name("k")
                self.lines.append(f"{var} = {expr}")
                self.lines.append(node.check.format(x=var))
                expr = var
            if node.dec is not None:
                expr = node.dec.format(expr)
            return expr
        expr = self.dec(node.inner)
        self.dec(node.pad)
        return expr

    def dec_record(self, node: _Record) -> str:
        exprs = {name: self.dec(sub) for name, sub in node.fields}
        cls = self.planner.bind(node.cls, "_R")
        obj = self.name("o")
        if node.plain:
            # The generated __init__ stores the init fields in order; fields
            # with init=False keep their class default until DataclassStruct
            # sets them afterwards, so they come last in the instance dict.
            self.lines.append(f"{obj} = _new({cls})")
            for name in node.init:
                self.lines.append(f"{obj}.{name} = {exprs[name]}")
            for name in node.order:
                if name not in node.init:
                    self.lines.append(f"{obj}.{name} = {exprs[name]}")
        else:
            init = ", ".join(f"{name}={exprs[name]}" for name in node.init)
            self.lines.append(f"{obj} = {cls}({init})")
            for name in node.order:
                if name not in node.init:
                    self.lines.append(f"{obj}.{name} = {exprs[name]}")
        return obj

    def dec_array(self, node: _Array) -> str:
        elem = node.elem
        if isinstance(elem, _Leaf):
            leaf = self.leaf(elem)
            start = self.items
            self.items += node.count
            items = f"{self.stem}t[{start}:{self.items}]"
            if not leaf.dec:
                return f"_LC({items})"
            expr = "_x"
            for tmpl in leaf.dec:
                expr = tmpl.format(expr)
            return f"_LC([{expr} for _x in {items}])"
        exprs = [self.dec(elem) for _ in range(node.count)]
        return f"_LC([{', '.join(exprs)}])"

    # -- encode ------------------------------------------------------------

    def enc(self, node: _Node, x: str) -> None:
        """Statements that check ``x`` (a local) and append its pack args."""
        if isinstance(node, _Leaf):
            leaf = self.leaf(node)
            for step in leaf.enc:
                self.lines.append(step.format(x=x))
            self.args.append(x)
        elif isinstance(node, _Pad):
            if node.size and node.pattern != b"\x00":
                self.args.append(self.planner.bind(node.pattern * node.size, "_pad"))
        elif isinstance(node, _Struct):
            self.lines.append(f"if not isinstance({x}, _dict): raise _S")
            for name, sub, buildnone in node.fields:
                if isinstance(sub, _Pad):
                    self.enc(sub, "None")  # construct builds padding from nothing
                    continue
                y = self.name("a")
                get = f"{x}.get({name!r})" if buildnone else f"{x}[{name!r}]"
                self.lines.append(f"{y} = {get}")
                self.enc(sub, y)
        elif isinstance(node, _Record):
            cls = self.planner.bind(node.cls, "_R")
            self.lines.append(f"if type({x}) is not {cls}: raise _S")
            names = {}
            for name in node.order:  # DataclassStruct reads every field, in this order
                names[name] = y = self.name("a")
                self.lines.append(f"{y} = {x}.{name}")
            for name, sub in node.fields:
                self.enc(sub, names[name])
        elif isinstance(node, _Array):
            self.lines.append(f"if len({x}) != {node.count}: raise _S")
            elem = node.elem
            if isinstance(elem, _Leaf) and not self.leaf(elem).enc:
                self.args.append(f"*{x}")
            elif node.count:
                ys = [self.name("a") for _ in range(node.count)]
                self.lines.append(f"{', '.join(ys)}, = {x}")
                for y in ys:
                    self.enc(elem, y)
        elif isinstance(node, _Wrap):
            for step in node.enc:
                self.lines.append(step.format(x=x))
            self.enc(node.inner, x)
        else:
            self.enc(node.inner, x)
            self.enc(node.pad, x)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The compiled functions of one schema."""

    struct: struct.Struct
    decode: Callable[[bytes], Any]
    decode_rows: Callable[[Iterable[tuple[Any, ...]]], list[Any]]
    encode: Callable[[Any], bytes]
    encode_rows: Callable[[Sequence[Any], int], bytearray]
    source: str


#: Plans are unrolled: an array of records becomes code per element. Past
#: this many generated nodes (or lines), construct is used instead.
_MAX_LINES = 20000


def _weight(node: _Node) -> int:
    """How many nodes the unrolled plan of ``node`` has."""
    if isinstance(node, _Struct):
        return 1 + sum(_weight(sub) for _, sub, _ in node.fields)
    if isinstance(node, _Record):
        return 1 + sum(_weight(sub) for _, sub in node.fields)
    if isinstance(node, _Array):
        elem = node.elem
        if isinstance(elem, _Leaf) and not elem.dec and not elem.enc:
            return 2  # one slice to decode, one *args to encode
        return 1 + node.count * _weight(elem)
    if isinstance(node, _Wrap | _Padded):
        return 1 + _weight(node.inner)
    return 1


@dataclasses.dataclass(frozen=True)
class _Parts:
    """The generated statements of one schema, before they become functions.

    ``target`` is the assignment target of one unpacked row, ``dec_lines``
    then ``dec_expr`` decode it; ``enc_var`` is the variable holding the
    value to encode, ``enc_lines`` check it and ``enc_args`` are the pack
    arguments. Every local name starts with the emitter's stem.
    """

    packer: struct.Struct
    target: str
    dec_lines: list[str]
    dec_expr: str
    enc_var: str
    enc_lines: list[str]
    enc_args: list[str]


def _emit_parts(
    schema: cs.Construct[Any, Any], size: int, planner: _Planner, stem: str
) -> _Parts | None:
    """Plan ``schema`` and emit its statements, or None if it has no fast plan."""
    try:
        root = planner.plan(schema)
    except _NoPlan:
        return None
    if isinstance(root, _Leaf) and root.opaque:
        return None  # nothing to gain: construct would do all the work anyway
    if _weight(root) > _MAX_LINES // 2:
        return None
    counts: dict[str, int] = {}
    _count_endians(root, counts)
    prefix = "<" if counts.get("<", 0) >= counts.get(">", 0) else ">"

    em = _Emitter(planner, prefix, stem)
    em.layout(root)
    fmt = prefix + "".join(em.fmt)
    packer = struct.Struct(fmt)
    if packer.size != size:  # pragma: no cover - a planner bug; stay correct
        return None
    nitems = em.items
    em.use_t = em.use_t or nitems > 255

    em.items, em.lines = 0, []
    dec_expr = em.dec(root)
    dec_lines = em.lines
    em.lines, em.args = [], []
    enc_var = f"{stem}a0"
    em.enc(root, enc_var)
    enc_lines, enc_args = em.lines, em.args
    if len(dec_lines) + len(enc_lines) > _MAX_LINES:
        return None

    if em.use_t:
        target = f"{stem}t"
    elif nitems:
        target = ", ".join(f"{stem}v{i}" for i in range(nitems)) + ","
    else:
        target = "_"
    return _Parts(packer, target, dec_lines, dec_expr, enc_var, enc_lines, enc_args)


def _base_ns(planner: _Planner) -> dict[str, Any]:
    """The namespace generated code runs in: the planner's bindings and the helpers."""
    ns: dict[str, Any] = dict(planner.ns)
    ns.update(
        _bytearray=bytearray,
        _S=_Slow,
        _C=cs.Container,
        _LC=cs.ListContainer,
        _dict=dict,
        _new=object.__new__,
    )
    return ns


def _compile_plan(
    schema: cs.Construct[Any, Any],
    size: int,
    slow_decode: Callable[[bytes], Any],
    slow_encode: Callable[[Any], bytes],
) -> _Plan | None:
    """Compile ``schema`` into a :class:`_Plan`, or None if it has none."""
    planner = _Planner()
    parts = _emit_parts(schema, size, planner, "")
    if parts is None:
        return None
    target, dec_lines, dec_expr = parts.target, parts.dec_lines, parts.dec_expr
    enc_lines, enc_args = parts.enc_lines, parts.enc_args
    packer = parts.packer
    ind = "\n        "
    src = f"""
def decode(data):
    try:
        {target} = _unpack(data)
        {ind.join(dec_lines) or "pass"}
        return {dec_expr}
    except Exception:
        pass
    return _slow_decode(data)

def decode_rows(rows):
    out = []
    app = out.append
    for {target} in rows:
        {ind.join(dec_lines) or "pass"}
        app({dec_expr})
    return out

def encode(v):
    try:
        a0 = v
        {ind.join(enc_lines) or "pass"}
        return _pack({", ".join(enc_args)})
    except Exception:
        pass
    return _slow_encode(v)

def encode_rows(values, stride):
    buf = _bytearray(len(values) * stride)
    off = 0
    for v in values:
        a0 = v
        {ind.join(enc_lines) or "pass"}
        _pack_into(buf, off, {", ".join(enc_args)})
        off += stride
    return buf
"""
    ns = _base_ns(planner)
    ns.update(
        _unpack=packer.unpack,
        _pack=packer.pack,
        _pack_into=packer.pack_into,
        _slow_decode=slow_decode,
        _slow_encode=slow_encode,
    )
    exec(compile(src, f"<typedmaps codec {packer.format}>", "exec"), ns)
    return _Plan(packer, ns["decode"], ns["decode_rows"], ns["encode"], ns["encode_rows"], src)


@dataclasses.dataclass(frozen=True)
class PairPlan:
    """Generated code for a key schema and a value schema together (see :func:`pair_plan`).

    Attributes:
        decode_pairs: ``(key_rows, value_rows) -> [(key, value), ...]``: the
            two buffers hold the same number of records back to back; one
            loop unpacks a key row and a value row and builds both records.
            It raises (anything) where either schema's fast code would hand
            over to construct: the caller then decodes with the codecs.
        encode_pairs: ``[(key, value), ...] -> (key_bytes, value_bytes)``,
            both buffers filled in one loop; raises (anything) where either
            fast encode would hand over to construct.
        source: the generated source, for inspection.
    """

    decode_pairs: Callable[[Any, Any], list[tuple[Any, Any]]]
    encode_pairs: Callable[[Sequence[Any]], tuple[bytearray, bytearray]]
    source: str


def pair_plan(key: Codec[Any], value: Codec[Any]) -> PairPlan | None:
    """Compile the key and value schemas of a map into one loop each way.

    Full reads and batch writes of a typed map handle keys and values in
    pairs. Running each codec over its own buffer makes two lists and a
    zip; one generated loop over both buffers builds the pairs directly,
    with no intermediate lists. The loop
    body is the same generated code as each codec's fast plan, so it makes
    the same objects and bytes; it only ever *succeeds* where both fast
    plans do.

    Returns:
        the plan, or None when either codec has no fast plan or is of zero bytes.
    """
    if not (key.fast and value.fast) or not (key.size and value.size):
        return None  # (struct cannot iterate over records of zero bytes)
    planner = _Planner()
    kp = _emit_parts(key.schema, key.size, planner, "k_")
    vp = _emit_parts(value.schema, value.size, planner, "v_")
    if kp is None or vp is None:  # pragma: no cover - both codecs have plans
        return None
    ind = "\n        "
    ks, vs = kp.packer.size, vp.packer.size
    src = f"""
def decode_pairs(kbuf, vbuf):
    out = []
    app = out.append
    for ({kp.target}), ({vp.target}) in _zip(_kiter(kbuf), _viter(vbuf)):
        {ind.join(kp.dec_lines) or "pass"}
        {ind.join(vp.dec_lines) or "pass"}
        app(({kp.dec_expr}, {vp.dec_expr}))
    return out

def encode_pairs(items):
    n = len(items)
    kbuf = _bytearray(n * {ks})
    vbuf = _bytearray(n * {vs})
    ko = 0
    vo = 0
    for {kp.enc_var}, {vp.enc_var} in items:
        {ind.join(kp.enc_lines) or "pass"}
        {ind.join(vp.enc_lines) or "pass"}
        _kpack_into(kbuf, ko, {", ".join(kp.enc_args)})
        _vpack_into(vbuf, vo, {", ".join(vp.enc_args)})
        ko += {ks}
        vo += {vs}
    return kbuf, vbuf
"""
    ns = _base_ns(planner)
    ns.update(
        _zip=zip,
        _kiter=kp.packer.iter_unpack,
        _viter=vp.packer.iter_unpack,
        _kpack_into=kp.packer.pack_into,
        _vpack_into=vp.packer.pack_into,
    )
    name = f"<typedmaps pair {kp.packer.format} {vp.packer.format}>"
    exec(compile(src, name, "exec"), ns)
    return PairPlan(ns["decode_pairs"], ns["encode_pairs"], src)


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
