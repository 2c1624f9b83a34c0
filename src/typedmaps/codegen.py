"""``typedmaps gen``: a typed Python module for the maps of a BPF object file.

The module it writes has, from the object's BTF:

- an :class:`~typedmaps.btf.OpenIntEnum` for each enum the maps use: a
  field of that enum type always holds that type (a value without an
  enumerator is a pseudo-member ``UNKNOWN_<n>``), so decode -> encode gives
  back the same bytes;
- a construct-typing dataclass (``DataclassMixin`` + ``csfield``) for each
  struct and union, named in CamelCase (``struct wide_key`` -> ``WideKey``;
  an anonymous type is named after where it sits: ``ZooValueAnonNamed``,
  ``ZooValueAnon0``, or its typedef). Records used in a map key (and every
  record inside one) are ``frozen=True`` with tuple arrays, so keys hash
  and go into dicts and sets; value records are mutable with list arrays.
  Padding, bitfield runs and union ends are ``csfield_noinit`` fields, so
  constructors take only the C members; union members default to None (set
  the one you mean). ``char[N]`` is ``bytes`` (see
  :class:`~typedmaps.btf.CharBytes`);
- for each map ``m``, ``open_m(handle)`` returning ``TypedMap[K, V]``,
  ``PerCpuTypedMap[K, V]``, ``TypedQueue[V]``, ``TypedStack[V]``,
  ``TypedBloomFilter[V]`` or, for local storage, ``TypedTaskStorage[V]``
  (``TypedSkStorage``, ``TypedCgroupStorage``, ``TypedInodeStorage``) by the
  map's type;
- for an object with global variables, ``<Obj>Globals`` and
  ``<Obj>OpenGlobals``, typed views of them (read-only variables are
  properties without setters) and ``globals_of(obj)`` /
  ``open_globals_of(obj)`` to bind them (see :mod:`typedmaps._gen_globals`);
- with ``types`` (``typedmaps gen --type NAME``, repeatable), the class of
  each named struct, union or enum of the object, used by a map or not: the
  records a ring buffer or perf buffer carries, which the kernel keeps no
  type for. A struct whose last member is a flexible array (``__u8
  data[];``) gets it as the rest of the record (``bytes``, or a list of the
  element), the variable tail a typed event stream decodes.

Every name in it is made by :mod:`typedmaps._pysafe` (keywords, builtins,
the module's own imports, dunders and odd bytes are mapped, collisions
resolved in BTF order; each class keeps its C name in ``__c_name__``, each
renamed field or enumerator in a comment), so no BTF can make the module
run code or fail to import. The output passes ``mypy --strict`` and
``ruff``; a pipeline written over it is type-checked end to end.

For other generators (``gen --type``, globals classes): :class:`Generator`
is the reusable part. ``g.typ()`` gives the annotation and construct
expression of any BTF type (emitting the classes it needs), ``g.record()``
a class for a struct, union or DATASEC, ``g.module`` is the module scope
to claim more names from, and ``g.render()`` assembles the module.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ._gen_globals import add_globals
from ._pysafe import (
    ENUM_RESERVED,
    Scope,
    c_quote,
    camel_identifier,
    comment_lines,
    doc_lines,
    literal,
)
from .btf import (
    MODIFIERS,
    BitsSlot,
    Btf,
    BtfError,
    BtfMember,
    BtfType,
    FieldSlot,
    Kind,
    MapDef,
    PadSlot,
    named_type,
)
from .btf._btf import check_int_bits
from .flags import MapType

__all__ = ["IMPORTABLE", "LINE", "Generator", "generate", "generate_module", "py_name"]

#: Generated lines stay within ruff format's default line length.
LINE: Final = 88

#: Every name a generated module may import, by module, in import order.
#: All of them are reserved in every scope of the module (a struct called
#: ``bit_field`` becomes ``BitFieldStruct``, a field called ``cs`` becomes
#: ``cs_``), whether or not the module happens to use them. A generator that
#: needs another helper adds it here.
IMPORTABLE: Final[dict[str, tuple[str, ...]]] = {
    "import dataclasses": ("dataclasses",),
    "from typing import": ("Any", "Protocol", "cast"),
    "import construct as cs": ("cs",),
    "from construct_typed import": (
        "DataclassMixin",
        "DataclassStruct",
        "csfield",
        "csfield_default",
        "csfield_noinit",
    ),
    "from typedmaps import": (
        "BpfObject",
        "MapHandle",
        "PerCpuTypedMap",
        "TypedBloomFilter",
        "TypedMap",
        "TypedCgroupStorage",
        "TypedInodeStorage",
        "TypedQueue",
        "TypedSkStorage",
        "TypedStack",
        "TypedTaskStorage",
    ),
    "from typedmaps.btf import": (
        "BitField",
        "BoolInt",
        "CharBytes",
        "EnumInt",
        "Float32",
        "FrozenDataclassStruct",
        "ListArray",
        "OpenIntEnum",
        "OverlayEnd",
        "TupleArray",
        "UnionMember",
        "UnionRecord",
    ),
    "from typedmaps.typed.globals import": ("bind_globals",),
}

#: Module-level names Python defines, and the module's own parts.
_MODULE_DUNDERS: Final = (
    "__all__",
    "__annotations__",
    "__builtins__",
    "__c_name__",
    "__cached__",
    "__dir__",
    "__doc__",
    "__file__",
    "__getattr__",
    "__loader__",
    "__name__",
    "__package__",
    "__path__",
    "__spec__",
    # the import roots, and the parameter of every open_*() function
    "construct",
    "construct_typed",
    "typedmaps",
    "handle",
)

#: Names a record field may not take besides the module's: ``self`` (construct's
#: ``Struct(**fields)`` has a ``self`` parameter), the keys construct keeps in its
#: parse/build context next to the field values (a field ``_io`` would replace the
#: stream), and the names a dataclass's generated ``__init__`` uses itself.
_FIELD_RESERVED: Final = (
    "self",
    "_",
    "_io",
    "_root",
    "_params",
    "_parsing",
    "_building",
    "_sizing",
    "_subcons",
    "_index",
    "MISSING",
    "_HAS_DEFAULT_FACTORY",
)

_INT_NAMES: Final = {
    (1, False): "cs.Int8ul",
    (2, False): "cs.Int16ul",
    (4, False): "cs.Int32ul",
    (8, False): "cs.Int64ul",
    (1, True): "cs.Int8sl",
    (2, True): "cs.Int16sl",
    (4, True): "cs.Int32sl",
    (8, True): "cs.Int64sl",
}

_WRAPPERS: Final = {
    MapType.QUEUE: "TypedQueue",
    MapType.STACK: "TypedStack",
    MapType.BLOOM_FILTER: "TypedBloomFilter",
    # Local storage is keyed by kernel objects (pids, sockets, ...): value= only.
    MapType.TASK_STORAGE: "TypedTaskStorage",
    MapType.SK_STORAGE: "TypedSkStorage",
    MapType.INODE_STORAGE: "TypedInodeStorage",
    MapType.CGRP_STORAGE: "TypedCgroupStorage",
}

#: Event stream maps: records of any type, given when the stream is opened.
_STREAMS: Final = {
    MapType.RINGBUF: "TypedRingBuffer",
    MapType.PERF_EVENT_ARRAY: "TypedPerfBuffer",
    MapType.USER_RINGBUF: "TypedUserRingBuffer",
}

#: Keyed map types whose values a TypedMap/PerCpuTypedMap can read.
_KEYED: Final = frozenset(
    {
        MapType.HASH,
        MapType.ARRAY,
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_HASH,
        MapType.LRU_PERCPU_HASH,
        MapType.LPM_TRIE,
    }
)

_RECORD_KINDS: Final = (Kind.STRUCT, Kind.UNION)
_ENUM_KINDS: Final = (Kind.ENUM, Kind.ENUM64)


def reserved_names() -> frozenset[str]:
    """Names no generated class, function or field may take (besides keywords, builtins)."""
    names = {n for group in IMPORTABLE.values() for n in group}
    return frozenset(names | set(_MODULE_DUNDERS))


def py_name(name: str) -> str:
    """A C member name as the attribute name a generated record gives it, alone.

    ``from`` -> ``from_``, ``bytes`` -> ``bytes_``, ``__pad`` -> ``f__pad``,
    ``a-b`` -> ``a_b``. Inside a record, collisions with other members add
    ``_2``, ``_3``, ... (see :class:`typedmaps._pysafe.Scope`).
    """
    return Scope(reserved_names(), lead="f").claim(name)


def _bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


@dataclass
class Typ:
    """How one C type appears in the module: its annotation and construct expression."""

    ann: str
    expr: str


@dataclass
class _Member:
    """One line of a record body before its Python name is chosen."""

    c_name: str  # "" for hidden helpers (padding, run ends)
    ann: str
    value: str
    stem: str = ""  # hidden helpers: "_pad", "_bits", "_end"


@dataclass
class Generator:
    """Builds a module from BTF: names, classes, and the text around them.

    Attributes:
        btf: the BTF the types come from.
        frozen: STRUCT/UNION type ids made frozen (hashable): those used in
            keys. Set it (:meth:`freeze_reachable`) before generating.
        module: the module scope; every class and function name is claimed here.
        names: the class name given to each type id.
        blocks: the module's top-level blocks (classes, functions), in order.
        uses: the imported names the blocks use.
    """

    btf: Btf
    frozen: set[int] = field(default_factory=set)
    module: Scope = field(default_factory=lambda: Scope(reserved_names(), lead="x"))
    names: dict[int, str] = field(default_factory=dict)
    #: STRUCT ids whose last member, a flexible array, is a variable tail (--type records).
    tails: set[int] = field(default_factory=set)
    #: Whether a field's annotation is one ruff's RUF009 treats as mutable (the
    #: module then says why its csfield() defaults are calls; else it must not).
    mutable_defaults: bool = False
    blocks: list[str] = field(default_factory=list)
    uses: set[str] = field(default_factory=set)
    exported: list[str] = field(default_factory=list)
    #: records without a member of their own (``struct empty {}``, only padding)
    memberless: set[int] = field(default_factory=set)

    # -- key records -------------------------------------------------------

    def freeze_reachable(self, type_ids: Iterable[int]) -> None:
        """Mark every struct and union reachable from ``type_ids`` as frozen.

        Walks modifiers, arrays and members (not pointers) without recursion.
        """
        todo = [t for t in type_ids if t]
        seen: set[int] = set()
        while todo:
            tid = todo.pop()
            if tid in seen:
                continue
            seen.add(tid)
            t = self.btf.get(tid)
            if t.kind in MODIFIERS:
                todo.append(t.ref)
            elif t.kind is Kind.ARRAY:
                todo.append(t.elem)
            elif t.kind in _RECORD_KINDS:
                self.frozen.add(tid)
                todo.extend(m.type_id for m in t.members)

    # -- types ---------------------------------------------------------------

    def typ(self, tid: int, hint: str, path: str, *, frozen: bool = False) -> Typ:
        """Annotation and construct expression for type ``tid``.

        Args:
            tid: the BTF type id.
            hint: the class name stem for an anonymous record or enum here.
            path: where the type sits, for errors (``flows.value.hdr``).
            frozen: arrays decode to tuples (inside a key record), else lists.

        Raises:
            BtfError: the type has no layout typedmaps supports.
        """
        depth = 0
        t = self.btf.get(tid)
        while t.kind in MODIFIERS:
            if t.kind is Kind.TYPEDEF:
                target = self.btf.resolve(tid)
                if not target.name and target.kind in (*_RECORD_KINDS, *_ENUM_KINDS):
                    hint = t.name or hint
            if not t.ref:
                raise BtfError(path, "void has no layout")
            depth += 1
            if depth > 64:
                raise BtfError(path, f"type id {tid}: modifier chain too long")
            tid = t.ref
            t = self.btf.get(tid)
        k = t.kind
        if k is Kind.INT:
            return self._int(t, path)
        if k is Kind.PTR:
            return self._cs("int", "cs.Int64ul")
        if k is Kind.FLOAT:
            if t.size == 4:
                self.uses.add("Float32")
                return Typ("float", "Float32()")
            if t.size == 8:
                return self._cs("float", "cs.Float64l")
            raise BtfError(path, f"{t.size}-byte float {t.name!r} is not supported")
        if k in _ENUM_KINDS:
            if not t.enumerators:
                # No names to give: an IntEnum without members cannot even hold
                # a pseudo-member, and the field is just the integer it stores.
                fixed = _INT_NAMES.get((t.size, self.btf.enum_signed(t)))
                if fixed is None:
                    raise BtfError(path, f"{t.size}-byte enum {t.name!r} is not supported")
                return self._cs("int", fixed)
            cls = self.enum(t, hint)
            self.uses.add("EnumInt")
            return Typ(cls, f"EnumInt({t.size}, {self.btf.enum_signed(t)}, {cls})")
        if k is Kind.ARRAY:
            return self._array(t, hint, path, frozen)
        if k in _RECORD_KINDS:
            cls = self.record(t, hint, path)
            if k is Kind.UNION or t.id in self.memberless:
                # construct would take a record whose fields all build from
                # nothing (a union's default to None; an empty struct has none)
                # as buildable from None, and csfield() refuses those.
                self.uses.add("UnionRecord")
                return Typ(cls, f"UnionRecord({cls})")
            wrap = "FrozenDataclassStruct" if t.id in self.frozen else "DataclassStruct"
            self.uses.add(wrap)
            return Typ(cls, f"{wrap}({cls})")
        if k is Kind.FWD:
            raise BtfError(
                path, f"{self.btf.describe(tid)} is only declared (forward), not defined"
            )
        raise BtfError(path, f"{self.btf.describe(tid)} ({k.name}) is not a data type")

    def _cs(self, ann: str, expr: str) -> Typ:
        self.uses.add("cs")
        return Typ(ann, expr)

    def _array(self, t: BtfType, hint: str, path: str, frozen: bool) -> Typ:
        if self.btf.is_char_array(t):
            self.uses.add("CharBytes")
            return Typ("bytes", f"CharBytes({t.nelems})")
        elem = self.typ(t.elem, hint, path + "[]", frozen=frozen)
        # An array without bytes (x[0], or elements of size 0) is always empty,
        # as typedmaps.btf decodes it.
        count = t.nelems if self.btf.size_of(t.elem, path + "[]") else 0
        if frozen:
            self.uses.add("TupleArray")
            return Typ(f"tuple[{elem.ann}, ...]", f"TupleArray({count}, {elem.expr})")
        self.uses.add("ListArray")
        return Typ(f"list[{elem.ann}]", f"ListArray({count}, {elem.expr})")

    def _int(self, t: BtfType, path: str) -> Typ:
        check_int_bits(t, path)
        signed = bool(t.int_encoding & 1)
        if t.is_bitfield_int:
            self.uses.add("BitField")
            return Typ(
                "int", f"BitField({t.size}, {t.int_offset}, {t.int_bits}, {signed}, consume=True)"
            )
        if t.int_encoding & 4:
            self.uses.add("BoolInt")
            return Typ("bool", f"BoolInt({t.size})")
        fixed = _INT_NAMES.get((t.size, signed))
        if fixed is not None:
            return self._cs("int", fixed)
        if t.size == 16:
            return self._cs("int", f"cs.BytesInteger(16, signed={signed}, swapped=True)")
        raise BtfError(path, f"{t.size}-byte integer {t.name!r} is not supported")

    # -- classes ---------------------------------------------------------------

    def class_name(self, t: BtfType, hint: str, suffix: str) -> str:
        """Claim the class name of type ``t`` (once per type id)."""
        known = self.names.get(t.id)
        if known is not None:
            return known
        if t.name:
            name = self.module.claim_class(t.name, self._camel(t.name) + suffix)
        else:
            name = self.module.claim_class(hint, self._camel(hint) + suffix)
        self.names[t.id] = name
        self.exported.append(name)
        return name

    @staticmethod
    def _camel(name: str) -> str:
        return camel_identifier(name)

    def enum(self, t: BtfType, hint: str) -> str:
        """The class for an ENUM/ENUM64 type, emitted on first use."""
        known = self.names.get(t.id)
        if known is not None:
            return known
        name = self.class_name(t, hint + "Enum" if not t.name else hint, "Enum")
        kind = "enum" if t.kind is Kind.ENUM else "64-bit enum"
        doc = f"{kind} {c_quote(t.name) if t.name else '(anonymous)'} ({_bytes(t.size)})."
        lines = [f"class {name}(OpenIntEnum):", *docstring(doc, "    "), ""]
        lines += _assign("    ", "__c_name__", literal(t.name))
        values = self.btf.enum_values(t)
        members = Scope(ENUM_RESERVED, lead="E").claim_many([n for n, _ in values])
        if values:
            lines.append("")
        for (cname, v), member in zip(values, members, strict=True):
            if member != cname:
                lines += comment_lines(f"C name: {c_quote(cname)}", "    ")
            lines += _assign("    ", member, str(v))
        self.uses.add("OpenIntEnum")
        self.blocks.append("\n".join(lines))
        return name

    def record(self, t: BtfType, hint: str, path: str) -> str:
        """The dataclass for a STRUCT or UNION type, emitted on first use (inner types first)."""
        known = self.names.get(t.id)
        if known is not None:
            return known
        suffix = "Union" if t.kind is Kind.UNION else "Struct"
        name = self.class_name(t, hint, suffix)
        frozen = t.id in self.frozen
        body = self._record_body(t, name, path, frozen)
        kind = "union" if t.kind is Kind.UNION else "struct"
        doc = f"{kind} {c_quote(t.name) if t.name else '(anonymous)'} ({_bytes(t.size)})."
        if t.kind is Kind.UNION:
            doc = doc[:-1] + "; set the member you mean, the others stay None."
        deco = "@dataclasses.dataclass(frozen=True)" if frozen else "@dataclasses.dataclass"
        lines = [deco, f"class {name}(DataclassMixin):", *docstring(doc, "    "), ""]
        lines += _assign("    ", "__c_name__", literal(t.name))
        if body:
            lines += ["", *body]
        self.uses.update({"dataclasses", "DataclassMixin"})
        self.blocks.append("\n".join(lines))
        return name

    def _record_body(self, t: BtfType, cls: str, path: str, frozen: bool) -> list[str]:
        members: list[_Member] = []
        union = t.kind is Kind.UNION

        def add(c_name: str, ann: str, expr: str) -> None:
            if union:
                self.uses.update({"UnionMember", "csfield_default"})
                members.append(
                    _Member(
                        c_name,
                        f"{ann} | None",
                        f"csfield_default(UnionMember({expr}), default=None)",
                    )
                )
            else:
                self.uses.add("csfield")
                members.append(_Member(c_name, ann, f"csfield({expr})"))

        def hidden(stem: str, expr: str) -> None:
            self.uses.add("csfield_noinit")
            members.append(_Member("", "None", f"csfield_noinit({expr})", stem))

        tail = self._tail_member(t) if t.id in self.tails else None
        for slot in self.btf.layout(t, path):
            if tail is not None and isinstance(slot, FieldSlot) and slot.name == tail.name:
                # The flexible array: the rest of the record (what follows it
                # in the layout is the struct's tail padding, which it overlays).
                elem = self.btf.resolve(self.btf.resolve(tail.type_id).elem)
                if elem.kind is Kind.INT and elem.size == 1:
                    add(slot.name, "bytes", "cs.GreedyBytes")
                else:
                    et = self.typ(elem.id, cls + self._camel(slot.name), f"{path}.{slot.name}[]")
                    add(slot.name, f"list[{et.ann}]", f"cs.GreedyRange({et.expr})")
                self.uses.add("cs")
                break
            if isinstance(slot, PadSlot):
                hidden("_pad", f"cs.Padding({slot.size})")
                self.uses.add("cs")
            elif isinstance(slot, FieldSlot):
                ft = self.typ(
                    slot.type_id,
                    cls + self._camel(slot.name),
                    f"{path}.{slot.name}",
                    frozen=frozen,
                )
                add(slot.name, ft.ann, ft.expr)
            elif isinstance(slot, BitsSlot):
                for f in slot.fields:
                    fpath = f"{path}.{f.name}"
                    kind, signed = self.btf.bitfield_kind(f.type_id, f.width, fpath)
                    args = f"{slot.nbytes}, {f.shift}, {f.width}, {signed}"
                    self.uses.add("BitField")
                    if kind == "enum":
                        ecls = self.enum(self.btf.resolve(f.type_id), cls + self._camel(f.name))
                        ann, expr = ecls, f"BitField({args}, enum={ecls}"
                    elif kind == "bool":
                        ann, expr = "bool", f"BitField({args}, boolean=True"
                    else:
                        ann, expr = "int", f"BitField({args}"
                    add(f.name, ann, expr + (", consume=True)" if union else ")"))
                if not union:
                    self.uses.add("OverlayEnd")
                    hidden("_bits", f"OverlayEnd({slot.nbytes})")
        if union:
            self.uses.add("OverlayEnd")
            hidden("_end", f"OverlayEnd({t.size})")
        # Field names: after the member types, so every class the body names
        # exists.
        scope = self.member_scope()
        chosen = scope.claim_many([m.c_name for m in members if not m.stem])
        if not chosen:
            self.memberless.add(t.id)
        names = iter(chosen)
        lines: list[str] = []
        for m in members:
            if not _immutable(m.ann):
                self.mutable_defaults = True
            if m.stem:
                lines += _field(scope.fresh(m.stem), m.ann, m.value)
                continue
            py = next(names)
            if py != m.c_name:
                lines += comment_lines(f"C name: {c_quote(m.c_name)}", "    ")
            lines += _field(py, m.ann, m.value)
        return lines

    def member_scope(self, extra: Iterable[str] = ()) -> Scope:
        """The scope of the names inside a class body (fields, Protocol members).

        A member never takes a module-level name (it would shadow it for the
        lines after it in the class body, annotations included), nor one of
        :data:`_FIELD_RESERVED` or ``extra``. Claim it after every class the
        body names has been claimed.
        """
        taken = reserved_names() | set(self.names.values()) | set(self.exported)
        return Scope(taken | set(_FIELD_RESERVED) | set(extra), lead="f")

    def _tail_member(self, t: BtfType) -> BtfMember | None:
        """The last member of a struct when it is a flexible (zero-length) array."""
        if t.kind is not Kind.STRUCT or not t.members:
            return None
        last = t.members[-1]
        arr = self.btf.resolve(last.type_id)
        return last if arr.kind is Kind.ARRAY and arr.nelems == 0 else None

    def named(self, name: str) -> None:
        """The class of the struct, union or enum named ``name`` (``gen --type``).

        Raises:
            BtfError: no such type, or one that is not a struct, union or enum.
        """
        t = named_type(self.btf, name)
        target = self.btf.resolve(t.id)
        if target.kind not in (*_RECORD_KINDS, *_ENUM_KINDS):
            raise BtfError(
                "type",
                f"{c_quote(name)} is {self.btf.describe(t.id)}: --type writes classes for "
                "structs, unions and enums",
            )
        if self._tail_member(target) is not None:
            self.tails.add(target.id)
        c_name = name.rsplit(maxsplit=1)[-1]
        typ = self.typ(t.id, camel_identifier(c_name), c_name)
        const = self.module.claim(c_name.upper())
        self.exported.append(const)
        use = "TypedRingBuffer(handle, value=...)" if target.kind in _RECORD_KINDS else "a field"
        lines = comment_lines(f"{c_quote(name)} as a schema, e.g. for {use}.")
        self.blocks.append("\n".join([*lines, *statement("", const, typ.expr)]))

    # -- the module ------------------------------------------------------------

    def map_function(self, d: MapDef) -> None:
        """``open_<map>(handle)`` for map ``d``, or a comment saying why there is none."""
        mt = d.map_type
        shown = c_quote(d.name)
        if not isinstance(mt, MapType):
            self.blocks.append(
                "\n".join(comment_lines(f"{shown}: map type {mt} is unknown to typedmaps."))
            )
            return
        hint = self._camel(d.name)
        wrapper = _WRAPPERS.get(mt)
        if wrapper is None and mt not in _KEYED:
            stream = _STREAMS.get(mt)
            text = (
                f"{shown}: {mt.name}: the kernel keeps no record type for it; open it with "
                f"{stream}(handle, value=...) and a record schema (typedmaps gen --type NAME)."
                if stream
                else f"{shown}: {mt.name} maps have no typed wrapper."
            )
            self.blocks.append("\n".join(comment_lines(text)))
            return
        key: Typ | None = None
        if wrapper is None:
            key = self._schema_for(
                d.key_type_id, d.key_size, hint + "Key", f"{d.name}.key", frozen=True
            )
            wrapper = "PerCpuTypedMap" if mt.is_percpu else "TypedMap"
        value = self._schema_for(d.value_type_id, d.value_size, hint + "Value", f"{d.name}.value")
        fname = self.module.claim("open_" + d.name)
        self.exported.append(fname)
        self.uses.update({wrapper, "MapHandle"})
        if key is None:
            ret = f"{wrapper}[{value.ann}]"
            args = ["handle", f"value={value.expr}"]
        else:
            ret = f"{wrapper}[{key.ann}, {value.ann}]"
            args = ["handle", f"key={key.expr}", f"value={value.expr}"]
        doc = (
            f"{shown}: {mt.name}, key {d.key_size} B, value {d.value_size} B, "
            f"max_entries {d.max_entries}."
        )
        self.blocks.append("\n".join(_function(fname, ret, wrapper, args, doc)))

    def _schema_for(
        self, tid: int, size: int, hint: str, path: str, *, frozen: bool = False
    ) -> Typ:
        if tid:
            return self.typ(tid, hint, path, frozen=frozen)
        return self._cs("bytes", f"cs.Bytes({size})")

    def render(self, source: str) -> str:
        """The module text: docstring, imports, ``__all__``, then the blocks."""
        first = doc_lines(f"Typed accessors for the maps of {c_quote(source)}.", LINE - 3)
        head = [
            '"""' + first[0],
            *first[1:],
            "",
            "Generated by `typedmaps gen` from the object's BTF; regenerate instead of editing.",
            '"""',
        ]
        if self.mutable_defaults:
            head += [
                "",
                "# construct-typing records call csfield() in dataclass defaults by design",
                "# (RUF100: ruff flags only the fields whose type it cannot tell immutable).",
                "# ruff: noqa: RUF009, RUF100",
            ]
        parts = ["\n".join(head)]
        imports = _imports(self.uses)
        if imports:
            parts.append(imports)
        exported = sorted(self.exported, key=_isort_key)
        if exported:
            all_names = "".join(f'    "{n}",\n' for n in exported)
            parts.append(f"__all__ = [\n{all_names}]")
        else:
            parts.append("__all__: list[str] = []")
        text = "\n\n".join(parts) + "\n"
        if self.blocks:
            text += "\n\n" + "\n\n\n".join(self.blocks) + "\n"
        return text


def _natural(a: str, b: str) -> int:
    """Natural order of two identifiers, as ruff's ``__all__`` check (RUF022) compares them.

    A run of digits compares as a number (right-aligned: the longer run is
    larger, else the first differing digit decides); a run that starts with
    0 on either side compares digit by digit, left-aligned; other characters
    compare by code point.
    """
    i = j = 0
    while True:
        if i >= len(a) or j >= len(b):
            return (i < len(a)) - (j < len(b))
        ca, cb = a[i], b[j]
        if ca.isdigit() and cb.isdigit():
            left = ca == "0" or cb == "0"
            bias = 0
            while True:
                da = i < len(a) and a[i].isdigit()
                db = j < len(b) and b[j].isdigit()
                if not da or not db:
                    if da != db:
                        return -1 if db else 1
                    break
                if a[i] != b[j]:
                    if left:
                        return -1 if a[i] < b[j] else 1
                    bias = bias or (-1 if a[i] < b[j] else 1)
                i += 1
                j += 1
            if bias:
                return bias
            continue
        if ca != cb:
            return -1 if ca < cb else 1
        i += 1
        j += 1


def _member_rank(name: str) -> int:
    if len(name) > 1 and name.isupper():
        return 0  # SCREAMING_CASE constants
    return 1 if name[:1].isupper() else 2  # classes, then everything else


def _isort_key(name: str) -> tuple[int, object]:
    return _member_rank(name), functools.cmp_to_key(_natural)(name)


def docstring(text: str, indent: str) -> list[str]:
    """A docstring for ``text`` (any characters: they are escaped), wrapped to :data:`LINE`."""
    lines = doc_lines(text, LINE - len(indent) - 6)
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *[f"{indent}{ln}" for ln in lines[1:]], f'{indent}"""']


def _assign(indent: str, name: str, value: str) -> list[str]:
    """``name = value`` for an atom ``value`` (a literal), laid out as ruff format does.

    A line too long is parenthesised when that makes the value fit; a value
    that fits nowhere stays on the line, told to the line-length check.
    (ruff format leaves ``# noqa`` comments out of its measure.)
    """
    line = f"{indent}{name} = {value}"
    if len(line) <= LINE:
        return [line]
    inner = f"{indent}    {value}"
    if len(inner) <= LINE:
        return [f"{indent}{name} = (", inner, f"{indent})"]
    return [line + "  # noqa: E501"]


#: Annotations ruff's RUF009 takes as immutable (a call as their default is fine).
_IMMUTABLE: Final = frozenset({"int", "bytes", "float", "bool", "str", "None"})


def _immutable(ann: str) -> bool:
    return all(p in _IMMUTABLE or p.startswith("tuple[") for p in ann.split(" | "))


def _field(name: str, ann: str, value: str) -> list[str]:
    """``name: ann = value`` in a class body (see :func:`statement`)."""
    return statement("    ", f"{name}: {ann}", value)


def statement(indent: str, target: str, value: str) -> list[str]:
    """``target = value`` for a call ``value``, laid out as ruff format lays it out.

    A statement that no layout brings within the line length (very deep
    arrays, very long names) is written on one line that ruff format and
    the line-length check are told to leave alone.
    """
    line = f"{indent}{target} = {value}"
    if len(line) <= LINE:
        return [line]
    if "(" not in value or not value.endswith(")"):
        return _assign(indent, target, value)
    func, _, args = value.partition("(")
    first = f"{indent}{target} = {func}("
    inner = f"{indent}    {args[:-1]}"
    if len(first) <= LINE and len(inner) <= LINE:
        return [first, inner, f"{indent})"]
    return [line + "  # noqa: E501  # fmt: skip"]


def _function(fname: str, ret: str, wrapper: str, args: list[str], doc: str) -> list[str]:
    sig = f"def {fname}(handle: MapHandle) -> {ret}:"
    if len(sig) > LINE:
        sig2 = [f"def {fname}(", "    handle: MapHandle,", f") -> {ret}:"]
        if max(len(s) for s in sig2) > LINE:
            sig2 = [f"def {fname}(handle: MapHandle) -> {ret}:  # noqa: E501  # fmt: skip"]
    else:
        sig2 = [sig]
    body = f"    return {wrapper}({', '.join(args)})"
    if len(body) <= LINE:
        lines = [body]
    else:
        inner = [f"        {a}," for a in args]
        if max(len(s) for s in inner) <= LINE:
            lines = [f"    return {wrapper}(", *inner, "    )"]
        else:
            lines = [body + "  # noqa: E501  # fmt: skip"]
    return [*sig2, *docstring(doc, "    "), *lines]


def _imports(uses: set[str]) -> str:
    std: list[str] = []
    third: list[str] = []
    for stmt, names in IMPORTABLE.items():
        used = sorted(n for n in names if n in uses)
        if not used:
            continue
        if stmt.startswith("import "):
            (std if stmt == "import dataclasses" else third).append(stmt)
        elif stmt == "from typing import":
            std.append(_from_import("typing", used))
        else:
            third.append(_from_import(stmt.removeprefix("from ").removesuffix(" import"), used))
    # typedmaps is a dependency of the user's project: third-party, one block.
    return "\n\n".join(block for block in ("\n".join(std), "\n".join(third)) if block)


def _from_import(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE:
        return line
    inner = "".join(f"    {n},\n" for n in names)
    return f"from {module} import (\n{inner})"


def generate(
    btf: Btf, source: str = "a BPF object", types: Sequence[str] = (), *, name: str = ""
) -> str:
    """The text of a module for every map declared in ``btf``'s ``.maps`` section,
    and for the object's global variables (see :mod:`typedmaps._gen_globals`).

    Args:
        btf: the object's BTF.
        source: what the module docstring says it was made from (any text:
            it is escaped).
        types: names of more types to write classes for (``gen --type``):
            ``"event"``, ``"struct event"``, ``"enum kind"``.
        name: the object's name, for the globals classes (``flows`` ->
            ``FlowsGlobals``); default: ``source`` up to its first dot.

    Raises:
        BtfError: a map's key or value type is unsupported (the message names
            the map and field, e.g. ``flows.value.hdr.data[]``).
    """
    g = Generator(btf)
    defs = btf.map_defs()
    # Key records first decide which classes are frozen; then emit in map order.
    g.freeze_reachable(d.key_type_id for d in defs)
    for d in defs:
        g.map_function(d)
    add_globals(g, btf, name or source.split(".", 1)[0])
    for type_name in types:
        g.named(type_name)
    return g.render(source)


def generate_module(
    path: str | os.PathLike[str], module_doc: str | None = None, types: Sequence[str] = ()
) -> str:
    """Read an object file's BTF and return the module text (``typedmaps gen``).

    ``types``: as for :func:`generate` (``typedmaps gen --type NAME``).

    Raises:
        ObjectError: the file cannot be read or is not a valid object.
        BtfError: the BTF is malformed or a type is unsupported.
    """
    btf = Btf.from_file(path)
    base = os.path.basename(os.fsdecode(path))
    return generate(btf, module_doc or base, types, name=base.split(".", 1)[0])
