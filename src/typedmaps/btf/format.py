"""bpftool-style formatting: a BTF-typed value as the JSON that ``bpftool map dump -j`` shows.

``format_type(btf, type_id, data)`` turns the bytes of one key or value into
a tree of :class:`JObj` (JSON objects as ordered pairs: bpftool repeats the
name ``""`` for anonymous members), lists, str, int, float, bool; ``dumps``
writes that tree as JSON text and ``render`` as the one-line text form of
``typedmaps dump``'s table. The rules follow bpftool 7.1's ``formatted``
view; where typedmaps differs on purpose (bitfields, 128-bit integers and
floats as numbers) is listed in the docs of the ``typedmaps`` command.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import SizeMismatchError
from ._btf import Btf

if TYPE_CHECKING:
    from ..handle import MapInfo

from ._types import INT_BOOL, INT_CHAR, MODIFIERS, BtfError, BtfType, FieldSlot, Kind, c_string

__all__ = [
    "JObj",
    "dumps",
    "entries_writer",
    "format_type",
    "hex_bytes",
    "hex_writer",
    "json_brackets",
    "json_writer",
    "render",
    "to_plain",
]


# ---------------------------------------------------------------------------- JSON values


class JObj(list[tuple[str, Any]]):
    """A JSON object as ordered (name, value) pairs; names may repeat, as in bpftool.

    bpftool prints every anonymous member under the name ``""``, so one
    object can hold that name twice; a dict could not.
    """


def dumps(value: Any, *, pretty: bool = False) -> str:
    """JSON text for a value built of JObj, list, str, int, float, bool and None.

    Floats print as JSON numbers; NaN and infinities (not JSON) as the
    strings ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    out: list[str] = []
    _dump(value, out, 0 if pretty else None)
    return "".join(out)


def _dump(v: Any, out: list[str], level: int | None) -> None:
    if isinstance(v, JObj | list):
        is_obj = isinstance(v, JObj)
        opening, closing = ("{", "}") if is_obj else ("[", "]")
        if not v:
            out.append(opening + closing)
            return
        out.append(opening)
        inner = None if level is None else level + 1
        for i, item in enumerate(v):
            if i:
                out.append(",")
            if inner is not None:
                out.append("\n" + "    " * inner)
            if is_obj:
                name, member = item
                out.append(json.dumps(name))
                out.append(": " if inner is not None else ":")
                _dump(member, out, inner)
            else:
                _dump(item, out, inner)
        if level is not None:
            out.append("\n" + "    " * level)
        out.append(closing)
    elif isinstance(v, float):
        if math.isnan(v):
            out.append('"nan"')
        elif math.isinf(v):
            out.append('"inf"' if v > 0 else '"-inf"')
        else:
            out.append(repr(v))
    else:
        out.append(json.dumps(v))


def to_plain(value: Any) -> Any:
    """A JObj tree as plain dicts and lists (later duplicate names win, as json.loads)."""
    if isinstance(value, JObj):
        return {k: to_plain(v) for k, v in value}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------- formatting


def format_type(btf: Btf, type_id: int, data: bytes) -> Any:
    """The JSON value bpftool's ``formatted`` view shows for ``data`` of a BTF type.

    Follows bpftool 7.1 (``btf_dumper.c``) except where it is plainly awkward
    or broken, as docs/cli.md lists: bitfields and 128-bit integers print as
    numbers (bpftool: hex strings), floats as numbers (bpftool cannot print
    them),.

    Raises:
        BtfError: a kind that has no data representation (a function type).
    """
    return _fmt(btf, type_id, data, "value")


def _fmt(btf: Btf, tid: int, data: bytes, path: str) -> Any:
    t = btf.get(tid)
    k = t.kind
    if k in MODIFIERS:
        return _fmt(btf, t.ref, data, path)
    if k is Kind.INT:
        return _fmt_int(t, data)
    if k is Kind.PTR:
        return int.from_bytes(data[:8], "little")
    if k is Kind.FLOAT:
        if t.size == 4:
            return float(struct.unpack_from("<f", data)[0])
        if t.size == 8:
            return float(struct.unpack_from("<d", data)[0])
        raise BtfError(path, f"{t.size}-byte float is not supported")
    if k is Kind.ENUM:
        # bpftool: the value read sign-extended at the enum's size, compared
        # with each enumerator's value as a __s32.
        v = int.from_bytes(data[: t.size], "little", signed=True)
        for e in t.enumerators:
            ev = e.raw - (1 << 32) if e.raw & 0x80000000 else e.raw
            if ev == v:
                return e.name
        return v
    if k is Kind.ENUM64:
        u = int.from_bytes(data[:8], "little")
        for e in t.enumerators:
            if e.raw == u:
                return e.name
        return u
    if k is Kind.ARRAY:
        if btf.is_char_array(t):
            text = c_string(data[: t.nelems], strict=False)
            if text is not None:
                return text
        esz = btf.size_of(t.elem, path)
        if not esz:
            # Elements without bytes: never loop over more elements than the
            # data has bytes (bpftool would print all 2**31 of x[0x7fffffff]).
            return []
        # Only the elements the bytes hold (a short value, a DATASEC's size 0).
        count = min(t.nelems, len(data) // esz)
        return [
            _fmt(btf, t.elem, data[i * esz : (i + 1) * esz], f"{path}[{i}]") for i in range(count)
        ]
    if k in (Kind.STRUCT, Kind.UNION):
        obj = JObj()
        for m in t.members:
            bf = btf.bitfield(m, t.kflag)
            if bf is not None:
                obj.append((m.name, _bits(btf, m.type_id, data, *bf)))
            else:
                off = btf.member_offset(m, t.kflag) // 8
                size = btf.size_of(m.type_id, path)
                obj.append((m.name, _fmt(btf, m.type_id, data[off : off + size], path)))
        return obj
    if k is Kind.DATASEC:
        entries = []
        for m in t.members:
            var = btf.get(m.type_id)
            off = m.bit_offset // 8
            size = btf.size_of(var.ref, path)
            entries.append(JObj([(var.name, _fmt(btf, var.ref, data[off : off + size], path))]))
        return JObj([(t.name, entries)])
    if k is Kind.VAR:
        return JObj([(t.name, _fmt(btf, t.ref, data, path))])
    raise BtfError(path, f"{btf.describe(tid)} ({k.name}) has no data to show")


def _fmt_int(t: BtfType, data: bytes) -> Any:
    signed = bool(t.int_encoding & 1)
    if t.is_bitfield_int:
        if not t.int_bits:
            return 0  # an INT of 0 bits (the kernel accepts one) holds nothing
        raw = int.from_bytes(data[: t.size], "little") >> t.int_offset
        v = raw & ((1 << t.int_bits) - 1)
        if signed and v >> (t.int_bits - 1):
            v -= 1 << t.int_bits
        return v
    if t.int_encoding & 4:  # BOOL
        return any(data[: t.size])
    if t.int_encoding & 2 and t.size == 1:  # CHAR
        return chr(data[0])
    return int.from_bytes(data[: t.size], "little", signed=signed)


def _bits(btf: Btf, type_id: int, data: bytes, offset: int, width: int) -> int:
    if not width:
        return 0
    lo = offset // 8
    hi = (offset + width + 7) // 8
    v = (int.from_bytes(data[lo:hi], "little") >> (offset - lo * 8)) & ((1 << width) - 1)
    base = btf.resolve(type_id)
    if base.kind is Kind.INT:
        signed = bool(base.int_encoding & 1)
    elif base.kind in (Kind.ENUM, Kind.ENUM64):
        signed = btf.enum_signed(base)
    else:
        signed = False
    if signed and v >> (width - 1):
        v -= 1 << width
    return v


def hex_bytes(data: bytes) -> list[str]:
    """Raw bytes as bpftool prints a map without BTF: ``["0x01", "0x0a", ...]``."""
    return [f"0x{b:02x}" for b in data]


def render(value: Any) -> str:
    """A compact one-line text form of a formatted value, for the table view."""
    if isinstance(value, JObj):
        return "{" + ", ".join(f"{k or '(anon)'}={render(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------------------- compiled JSON
#
# `typedmaps dump --json` of a large map formats every key and value the same
# way, so the formatting of one BTF type is compiled once into Python source:
# one precompiled struct.Struct per run of bytes that no two members share (a
# union's members and bitfields sharing bytes read again), and one f-string
# that writes the JSON text directly, with the names already escaped. The text
# is exactly what dumps(format_type(...)) writes (the tests prove it on every
# type of the zoo and on generated BTF). Names from BTF never become code: they
# reach the source only inside repr() string literals, and every number in the
# source is an int the generator computed.

#: A value whose text would take more elements than this is refused (BtfError).
_MAX_ELEMENTS: Final = 1 << 24
#: Types nested deeper than this are refused (hostile BTF can make cycles).
_MAX_DEPTH: Final = 64
#: Arrays of up to this many elements are written out in the f-string; longer ones loop.
_INLINE: Final = 16
#: A char array remembers this many distinct texts (task names repeat a lot).
_CACHE: Final = 4096
_INT_CODES: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}
_TF: Final = ("false", "true")
_IND: Final = "    "
_SCALARS: Final = frozenset({Kind.INT, Kind.PTR, Kind.FLOAT, Kind.ENUM, Kind.ENUM64})


def json_brackets(pair: str, level: int, pretty: bool) -> tuple[str, str, str]:
    """(opening, separator, closing) of a non-empty object or list at ``level``, as dumps()."""
    if not pretty:
        return pair[0], ",", pair[1]
    inner = "\n" + _IND * (level + 1)
    return pair[0] + inner, "," + inner, "\n" + _IND * level + pair[1]


def _float_text(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    if math.isnan(v):
        return '"nan"'
    return '"inf"' if v > 0 else '"-inf"'


def _le(data: bytes) -> int:
    return int.from_bytes(data, "little")


@dataclass(eq=False)
class _Group:
    """A run of struct items read by one unpack_from at ``start``."""

    start: int
    end: int
    fmt: list[str]
    count: int = 0


class _Fn:
    """The reads of one buffer in a generated function: buffer ``buf`` from offset ``base``."""

    def __init__(self, buf: str = "b", base: str = "o") -> None:
        self.buf = buf
        self.base = base
        self.groups: list[_Group] = []
        self.leaves: dict[tuple[int, str], str] = {}
        self.uses_base = False  # an expression passes buf and base on (a loop)

    def var(self, i: int) -> str:
        return f"t{self.buf}{i}"

    def reads(self, gen: _Gen, indent: str) -> list[str]:
        """Statements unpacking each group: ``t<buf><i> = unpack_from(buf, base + start)``."""
        lines = []
        for i, g in enumerate(self.groups):
            unpack = gen.const("s", struct.Struct("<" + "".join(g.fmt)).unpack_from)
            lines.append(f"{indent}{self.var(i)} = {unpack}({self.buf}, {self.base} + {g.start})")
        return lines

    def whole(self, size: int) -> struct.Struct | None:
        """One Struct for the whole record of ``size`` bytes, if one group reads it all."""
        if self.uses_base or len(self.groups) != 1 or self.groups[0].start != 0:
            return None
        g = self.groups[0]
        if g.end > size:
            return None
        return struct.Struct("<" + "".join(g.fmt) + (f"{size - g.end}x" if size > g.end else ""))

    def leaf(self, off: int, code: str, size: int) -> str:
        """The expression of the struct item ``code`` (``size`` bytes) at ``off``."""
        known = self.leaves.get((off, code))
        if known is not None:
            return known
        g = self.groups[-1] if self.groups else None
        if g is None or off < g.end:
            g = _Group(off, off, [])
            self.groups.append(g)
        if off > g.end:
            g.fmt.append(f"{off - g.end}x")
        g.fmt.append(code)
        g.end = off + size
        expr = f"{self.var(len(self.groups) - 1)}[{g.count}]"
        g.count += 1
        self.leaves[(off, code)] = expr
        return expr


@dataclass(frozen=True)
class _X:
    """A part of the text computed at run time: ``code`` is a Python expression."""

    code: str


#: The text of a value: literals (str) and expressions (_X), in order.
_Part = str | _X


@dataclass(frozen=True)
class _At:
    """Where a value sits: its byte offset in the function, nesting level, path, depth."""

    fn: _Fn
    off: int
    level: int
    path: str
    depth: int

    def down(self, off: int, path: str, levels: int = 1) -> _At:
        if self.depth >= _MAX_DEPTH:
            raise BtfError(path, f"types nested more than {_MAX_DEPTH} deep")
        return _At(self.fn, self.off + off, self.level + levels, path, self.depth + 1)


@dataclass(frozen=True)
class _Scalar:
    """How one scalar type reads and prints."""

    code: str  # its struct item
    size: int
    template: str  # the expression of its text (or int), "{x}" standing for the item
    text: Callable[[Any], str]  # the same as a function, for arrays written by a loop


class _Gen:
    """Generates the JSON writers of one BTF type (compact, or indented)."""

    def __init__(self, btf: Btf, pretty: bool) -> None:
        self.btf = btf
        self.pretty = pretty
        self.ns: dict[str, Any] = {"_fl": _float_text, "_TF": _TF, "_le": _le}
        self.src: list[str] = []
        self.count = 0
        self.elements = 0
        self.tables: dict[int, _Scalar] = {}

    def const(self, prefix: str, obj: Any) -> str:
        self.count += 1
        name = f"_{prefix}{self.count}"
        self.ns[name] = obj
        return name

    def add_elements(self, n: int, path: str) -> None:
        self.elements += n
        if self.elements > _MAX_ELEMENTS:
            raise BtfError(path, f"more than {_MAX_ELEMENTS} elements to show in one value")

    # -- punctuation, as dumps() writes it -----------------------------------

    def brackets(self, pair: str, level: int) -> tuple[str, str, str]:
        return json_brackets(pair, level, self.pretty)

    def join(self, pair: str, items: list[list[_Part]], level: int) -> list[_Part]:
        if not items:
            return [pair]
        opening, sep, closing = self.brackets(pair, level)
        parts: list[_Part] = [opening]
        for i, item in enumerate(items):
            if i:
                parts.append(sep)
            parts += item
        parts.append(closing)
        return parts

    def obj(self, members: list[tuple[str, list[_Part]]], level: int) -> list[_Part]:
        colon = ": " if self.pretty else ":"
        return self.join(
            "{}", [[json.dumps(name) + colon, *inner] for name, inner in members], level
        )

    # -- functions -----------------------------------------------------------

    def function(self, tid: int, level: int, path: str, depth: int) -> str:
        """Generate ``def name(b, o) -> str`` writing type ``tid``; returns the name."""
        fn = _Fn()
        parts = self.value(tid, _At(fn, 0, level, path, depth))
        name = self.const("f", None)
        lines = [f"def {name}(b, o):", *fn.reads(self, "    ")]
        lines.append(f"    return {_fstring(parts)}")
        self.src.append("\n".join(lines))
        return name

    def value(self, tid: int, at: _At) -> list[_Part]:
        """The text of type ``tid`` at ``at``."""
        btf = self.btf
        t = btf.get(tid)
        k = t.kind
        if k in MODIFIERS:
            if not t.ref:
                raise BtfError(at.path, "void has no layout")
            return self.value(t.ref, at.down(0, at.path, 0))
        if k in _SCALARS:
            sc = self.scalar(tid, at.path)
            self.add_elements(1, at.path)
            return [_X(sc.template.replace("{x}", at.fn.leaf(at.off, sc.code, sc.size)))]
        if k is Kind.ARRAY:
            return self.array(t, at)
        if k in (Kind.STRUCT, Kind.UNION):
            return self.record(t, at)
        if k is Kind.DATASEC:
            return self.datasec(t, at)
        if k is Kind.VAR:
            return self.obj([(t.name, self.value(t.ref, at.down(0, at.path)))], at.level)
        if k is Kind.FWD:
            raise BtfError(at.path, f"{btf.describe(tid)} is only declared (forward), not defined")
        raise BtfError(at.path, f"{btf.describe(tid)} ({k.name}) is not a data type")

    # -- scalars -------------------------------------------------------------

    def scalar(self, tid: int, path: str) -> _Scalar:
        """An INT, PTR, FLOAT, ENUM or ENUM64 (modifiers followed), as format_type prints it."""
        btf = self.btf
        t = btf.resolve(tid)
        k = t.kind
        size = btf.size_of(tid, path)
        if k is Kind.INT:
            plain = not t.is_bitfield_int and not t.int_encoding & INT_BOOL
            if plain and size not in (1, 2, 4, 8, 16):
                raise BtfError(path, f"{t.size}-byte integer {t.name!r} is not supported")
        elif k is Kind.FLOAT and size not in (4, 8):
            raise BtfError(path, f"{t.size}-byte float {t.name!r} is not supported")
        if size == 1 and k is Kind.INT and plain and not t.int_encoding & INT_CHAR:
            return _Scalar("b" if t.int_encoding & 1 else "B", 1, "{x}", str)
        if size == 1 and k is not Kind.FLOAT:
            # Every byte's text, as format_type itself writes it (chars, bools, enums).
            known = self.tables.get(t.id)
            if known is None:
                table = tuple(dumps(format_type(btf, tid, bytes([i]))) for i in range(256))
                known = _Scalar("B", 1, f"{self.const('T', table)}[{{x}}]", table.__getitem__)
                self.tables[t.id] = known
            return known
        if k is Kind.PTR:
            return _Scalar("Q", 8, "{x}", str)
        if k is Kind.FLOAT:
            return _Scalar("f" if size == 4 else "d", size, "_fl({x})", _float_text)
        if k is Kind.ENUM:
            # bpftool 7.1: the value read sign-extended at the enum's size, against
            # each enumerator's value as a __s32; the first match wins.
            names: dict[int, str] = {}
            for e in t.enumerators:
                v = e.raw - (1 << 32) if e.raw & 0x80000000 else e.raw
                names.setdefault(v, json.dumps(e.name))
            return self.named(names, size, size, signed=True)
        if k is Kind.ENUM64:
            names = {}
            for e in t.enumerators:
                names.setdefault(e.raw, json.dumps(e.name))
            return self.named(names, size, min(size, 8), signed=False)
        signed = bool(t.int_encoding & 1)
        if t.is_bitfield_int:
            return self.bits(size, t.int_offset, t.int_bits, signed)
        code = _INT_CODES.get(size)
        if t.int_encoding & INT_BOOL:
            if code is not None:
                return _Scalar(code, size, "_TF[{x} != 0]", lambda v: _TF[v != 0])
            return _Scalar(f"{size}s", size, "_TF[any({x})]", lambda v: _TF[any(v)])
        if code is not None:
            return _Scalar(code.lower() if signed else code, size, "{x}", str)

        def wide(v: bytes) -> str:
            return str(int.from_bytes(v, "little", signed=signed))

        return _Scalar(f"{size}s", size, f"{self.const('w', wide)}({{x}})", wide)

    def named(self, names: dict[int, str], size: int, used: int, *, signed: bool) -> _Scalar:
        """An enum: its name where ``names`` has the value read from the first ``used`` bytes."""
        get = names.get
        code = _INT_CODES.get(size) if used == size else None
        if code is not None:

            def text(v: int) -> str:
                return get(v) or str(v)

            d = self.const("E", names)
            return _Scalar(code.lower() if signed else code, size, f"{d}.get({{x}}, {{x}})", text)

        def from_bytes(v: bytes) -> str:
            n = int.from_bytes(v[:used], "little", signed=signed)
            return get(n) or str(n)

        return _Scalar(f"{size}s", size, f"{self.const('e', from_bytes)}({{x}})", from_bytes)

    def bits(self, nbytes: int, shift: int, width: int, signed: bool) -> _Scalar:
        """``width`` bits at ``shift`` of ``nbytes`` little-endian bytes."""
        mask = (1 << width) - 1
        half = 1 << (width - 1) if width else 0
        code = _INT_CODES.get(nbytes)
        expr = f"(({'{x}' if code else '_le({x})'} >> {shift}) & {mask})"
        if signed and width:
            expr = f"(({expr} ^ {half}) - {half})"

        def text(v: Any) -> str:
            n = ((v if isinstance(v, int) else _le(v)) >> shift) & mask
            if signed and width and n >> (width - 1):
                n -= 1 << width
            return str(n)

        return _Scalar(code or f"{nbytes}s", nbytes, expr, text)

    # -- arrays --------------------------------------------------------------

    def array(self, t: BtfType, at: _At) -> list[_Part]:
        btf = self.btf
        epath = at.path + "[]"
        n = t.nelems
        esz = btf.size_of(t.elem, epath)
        if not n or not esz:
            # No bytes (x[0], or 2**31 - 1 empty structs): [], as format_type
            # writes it, never a loop over elements that hold nothing.
            return ["[]"]
        self.add_elements(n, at.path)
        if btf.is_char_array(t):
            self.scalar(t.elem, epath)  # the element's checks
            chars = self.const("c", self.char_array(t.elem, at.level))
            return [_X(f"{chars}({at.fn.leaf(at.off, f'{n}s', n)})")]
        if n <= _INLINE:
            return self.join(
                "[]", [self.value(t.elem, at.down(i * esz, epath)) for i in range(n)], at.level
            )
        if btf.resolve(t.elem).kind in _SCALARS:
            sc = self.scalar(t.elem, epath)
            self.add_elements(n, epath)
            helper = self.const("a", self.scalar_array(n, sc, at.level))
            return [_X(f"{helper}({at.fn.leaf(at.off, f'{n * esz}s', n * esz)})")]
        before = self.elements
        inner = self.function(t.elem, at.level + 1, epath, at.depth + 1)
        self.add_elements((n - 1) * (self.elements - before), epath)
        loop = self.const("j", self.loop(inner, n, esz, at.level))
        at.fn.uses_base = True
        return [_X(f"{loop}({at.fn.buf}, {at.fn.base} + {at.off})")]

    def char_array(self, elem: int, level: int) -> Callable[[bytes], str]:
        """A char[n]: a JSON string where bpftool prints one, else the list of elements."""
        cache: dict[bytes, str] = {}
        get = cache.get
        opening, sep, closing = self.brackets("[]", level)
        btf = self.btf
        table: list[str] = []

        def elem_text(byte: int) -> str:
            if not table:  # each byte's text as format_type writes it, made when first needed
                table.extend(dumps(format_type(btf, elem, bytes([i]))) for i in range(256))
            return table[byte]

        def text(data: bytes) -> str:
            known = get(data)
            if known is not None:
                return known
            s = c_string(data, strict=False)
            if s is not None:
                out = json.dumps(s)
            else:
                out = opening + sep.join(map(elem_text, data)) + closing
            if len(cache) < _CACHE:
                cache[data] = out
            return out

        return text

    def scalar_array(self, n: int, sc: _Scalar, level: int) -> Callable[[bytes], str]:
        items = f"{n}{sc.code}" if len(sc.code) == 1 else sc.code * n  # "16s" * n
        unpack = struct.Struct("<" + items).unpack
        text = sc.text
        opening, sep, closing = self.brackets("[]", level)

        def write(data: bytes) -> str:
            return opening + sep.join(map(text, unpack(data))) + closing

        return write

    def loop(self, inner: str, n: int, esz: int, level: int) -> Callable[[Any, int], str]:
        ns = self.ns
        opening, sep, closing = self.brackets("[]", level)

        def write(b: Any, o: int) -> str:
            f = ns[inner]
            return opening + sep.join([f(b, o + i * esz) for i in range(n)]) + closing

        return write

    # -- records -------------------------------------------------------------

    def record(self, t: BtfType, at: _At) -> list[_Part]:
        btf = self.btf
        btf.layout(t, at.path)  # the checks the schema makes: overlaps, alignment, size
        members: list[tuple[str, list[_Part]]] = []
        for i, m in enumerate(t.members):
            mpath = f"{at.path}.{btf.member_name(t.members, i)}"
            bf = btf.bitfield(m, t.kflag)
            if bf is None:
                moff = btf.member_offset(m, t.kflag) // 8
                members.append((m.name, self.value(m.type_id, at.down(moff, mpath))))
                continue
            kind, signed = btf.bitfield_kind(m.type_id, bf[1], mpath)
            if kind == "bool":  # format_type prints a bool bitfield as its number
                signed = bool(btf.resolve(m.type_id).int_encoding & 1)
            self.add_elements(1, mpath)
            lo, hi = bf[0] // 8, (bf[0] + bf[1] + 7) // 8
            sc = self.bits(hi - lo, bf[0] - lo * 8, bf[1], signed)
            leaf = at.fn.leaf(at.off + lo, sc.code, sc.size)
            members.append((m.name, [_X(sc.template.replace("{x}", leaf))]))
        return self.obj(members, at.level)

    def datasec(self, t: BtfType, at: _At) -> list[_Part]:
        btf = self.btf
        slots = btf.layout(t, at.path)
        end = max((s.offset + s.size for s in slots if isinstance(s, FieldSlot)), default=0)
        if end > t.size:
            # an object file's section before libbpf lays it out (size 0):
            # there are no bytes to read the variables from
            raise BtfError(at.path, f"variables end at byte {end}, past the section's {t.size}")
        entries: list[list[_Part]] = []
        for m in t.members:
            var = btf.get(m.type_id)
            vpath = f"{at.path}.{var.name}"
            if var.kind is not Kind.VAR:
                raise BtfError(vpath, f"{btf.describe(var.id)} in a DATASEC is not a variable")
            inner = self.value(var.ref, at.down(m.bit_offset // 8, vpath, 3))
            entries.append(self.obj([(var.name, inner)], at.level + 2))
        return self.obj([(t.name, self.join("[]", entries, at.level + 1))], at.level)


def _fstring(parts: list[_Part]) -> str:
    """Python source of one f-string made of literal and computed parts."""
    merged: list[_Part] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    pieces = [repr(p) if isinstance(p, str) else "f'{" + p.code + "}'" for p in merged]
    return "(" + " ".join(pieces or ["''"]) + ")"


def json_writer(
    btf: Btf,
    type_id: int,
    *,
    size: int | None = None,
    pretty: bool = False,
    level: int = 0,
    path: str = "value",
) -> Callable[[Any, int], str]:
    """A compiled function ``(buffer, offset) -> str``: the JSON text of one value.

    The text equals ``dumps(format_type(btf, type_id, data))`` for the bytes
    of the type at ``offset``; with ``pretty``, ``dumps(..., pretty=True)``
    of a value nested ``level`` deep (every line after the first indented
    ``level`` steps more). The buffer is anything ``struct.unpack_from``
    reads: bytes, a memoryview, a cffi buffer.

    Raises:
        BtfError: a type that cannot be shown, refused with the checks
            ``Btf.schema`` makes (void, forward declarations, functions,
            integers or floats of sizes without a layout, overlapping or
            misaligned members, a DATASEC whose variables lie past its size),
            more than 2**24 elements in one value, or types nested more than
            64 deep. Arrays without bytes (``x[0]``, elements of size 0) are
            ``[]``.
        SizeMismatchError: ``size`` is given and differs from the type's.
    """
    if type_id == 0:
        raise BtfError(path, "the type is void (BTF type id 0)")
    gen = _Gen(btf, pretty)
    top = gen.function(type_id, level, path, 0)
    if size is not None:
        _check_size(btf, type_id, size, path)
    code = compile("\n\n".join(gen.src), f"<typedmaps json {btf.describe(type_id)}>", "exec")
    exec(code, gen.ns)
    writer: Callable[[Any, int], str] = gen.ns[top]
    return writer


def hex_writer(size: int, *, pretty: bool = False, level: int = 0) -> Callable[[Any, int], str]:
    """``(buffer, offset) -> str``: ``dumps(hex_bytes(...))`` of ``size`` bytes, compiled.

    For maps without BTF, as :func:`json_writer` is for maps with it.
    """
    table = tuple(json.dumps(f"0x{i:02x}") for i in range(256))
    if not size:
        return lambda b, o: "[]"
    opening, sep, closing = json_brackets("[]", level, pretty)
    item = table.__getitem__

    def write(b: Any, o: int) -> str:
        return opening + sep.join(map(item, bytes(b[o : o + size]))) + closing

    return write


#: Per-CPU values are written out in the generated loop up to this many CPUs.
_INLINE_CPUS: Final = 16
#: Raw (non-BTF) keys and values up to this many bytes are written out in the loop.
_INLINE_HEX: Final = 64


class _Entries(_Gen):
    """Generates the writer of whole chunks of map entries."""

    def top(
        self, fn: _Fn, tid: int, size: int, path: str, level: int, *, off: int = 0
    ) -> list[_Part]:
        """The text of one key or value ``off`` bytes into ``fn``: typed, or hex bytes."""
        if self.btf is None or not tid:
            return self.hex(fn, off, size, level)
        parts = self.value(tid, _At(fn, off, level, path, 0))
        _check_size(self.btf, tid, size, path)
        return parts

    def hex(self, fn: _Fn, off: int, size: int, level: int) -> list[_Part]:
        if "_HX" not in self.ns:
            self.ns["_HX"] = tuple(json.dumps(f"0x{i:02x}") for i in range(256))
        if size <= _INLINE_HEX:
            items: list[list[_Part]] = [
                [_X(f"_HX[{fn.leaf(off + i, 'B', 1)}]")] for i in range(size)
            ]
            return self.join("[]", items, level)
        helper = self.const("h", hex_writer(size, pretty=self.pretty, level=level))
        return [_X(f"{helper}({fn.leaf(off, f'{size}s', size)}, 0)")]

    def top_function(self, tid: int, size: int, path: str, level: int) -> str:
        """``def name(b, o) -> str`` writing one key or value; returns the name."""
        fn = _Fn()
        parts = self.top(fn, tid, size, path, level)
        name = self.const("f", None)
        self.src.append(
            "\n".join(
                [f"def {name}(b, o):", *fn.reads(self, "    "), f"    return {_fstring(parts)}"]
            )
        )
        return name

    def percpu_loop(self, value: str, ncpus: int, slot: int) -> Callable[[Any, int], str]:
        """The ``values`` list of one per-CPU entry, one ``value(b, o)`` call per CPU."""
        ns = self.ns
        colon = ": " if self.pretty else ":"
        copen, csep, cclose = self.brackets("{}", 3)
        lopen, lsep, lclose = self.brackets("[]", 2)
        heads = [copen + '"cpu"' + colon + str(c) + csep + '"value"' + colon for c in range(ncpus)]

        def values(b: Any, o: int) -> str:
            f = ns[value]
            texts = [heads[c] + f(b, o + c * slot) + cclose for c in range(ncpus)]
            return lopen + lsep.join(texts) + lclose

        return values


def _check_size(btf: Btf, type_id: int, size: int, path: str) -> None:
    got = btf.size_of(type_id, path)
    if got != size:
        raise SizeMismatchError(
            f"{path} type {btf.describe(type_id)} from BTF",
            got,
            size,
            "the map and its BTF disagree",
        )


def entries_writer(
    btf: Btf | None, info: MapInfo, *, ncpus: int, pretty: bool = False
) -> Callable[[Any, Any, int], list[str]]:
    """A compiled ``(keys, values, count) -> list[str]``: the JSON text of each map entry.

    ``keys`` and ``values`` hold ``count`` keys and values back to back, as
    BPF_MAP_LOOKUP_BATCH returns them (per-CPU values: ``ncpus`` slots of
    round_up(value_size, 8) bytes each), as bytes of exactly that length.
    Each text is the entry object ``typedmaps dump --json`` writes:
    ``{"key": K, "value": V}``, or ``{"key": K, "values": [{"cpu": 0,
    "value": V}, ...]}`` per CPU, with keys and values as
    :func:`json_writer` writes them (raw bytes as :func:`hex_bytes` where
    the map has no BTF type for them); with ``pretty``, indented as an
    element of the top-level list.

    Raises:
        BtfError, SizeMismatchError: as :func:`json_writer`, before any output.
    """
    gen = _Entries(btf, pretty)  # type: ignore[arg-type]  # without BTF: hex only
    ks, vs, vtid = info.key_size, info.value_size, info.btf_value_type_id
    percpu = info.map_type.is_percpu
    slot = (vs + 7) & ~7 if percpu else vs
    stride = slot * ncpus if percpu else vs
    fk, fv = _Fn("kb", "ko"), _Fn("vb", "vo")
    key = gen.top(fk, info.btf_key_type_id, ks, "key", 2)
    if not percpu:
        entry = gen.obj([("key", key), ("value", gen.top(fv, vtid, vs, "value", 2))], 1)
    elif ncpus <= _INLINE_CPUS:
        cpus = [
            gen.obj(
                [("cpu", [str(c)]), ("value", gen.top(fv, vtid, vs, "value", 4, off=c * slot))], 3
            )
            for c in range(ncpus)
        ]
        entry = gen.obj([("key", key), ("values", gen.join("[]", cpus, 2))], 1)
    else:
        loop = gen.const("v", gen.percpu_loop(gen.top_function(vtid, vs, "value", 4), ncpus, slot))
        fv.uses_base = True
        entry = gen.obj([("key", key), ("values", [_X(f"{loop}(vb, vo)")])], 1)
    text = _fstring(entry)
    sk, sv = fk.whole(ks), fv.whole(stride)
    if sk is not None and sv is not None and ks and stride:
        ik, iv = gen.const("i", sk.iter_unpack), gen.const("i", sv.iter_unpack)
        rows = f"zip({ik}(kb[: n * {ks}]), {iv}(vb[: n * {stride}]))"
        body = [f"    for {fk.var(0)}, {fv.var(0)} in {rows}:", f"        ap({text})"]
    else:
        body = [
            "    for i in range(n):",
            f"        ko = i * {ks}",
            f"        vo = i * {stride}",
            *fk.reads(gen, "        "),
            *fv.reads(gen, "        "),
            f"        ap({text})",
        ]
    gen.src.append(
        "\n".join(["def _entries(kb, vb, n):", "    out = []", "    ap = out.append", *body])
        + "\n    return out"
    )
    exec(
        compile("\n\n".join(gen.src), f"<typedmaps json entries of {info.name!r}>", "exec"), gen.ns
    )
    writer: Callable[[Any, Any, int], list[str]] = gen.ns["_entries"]
    return writer
