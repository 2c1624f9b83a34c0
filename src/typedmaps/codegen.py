"""``typedmaps gen``: a typed Python module for the maps of a BPF object file.

The module it writes has, from the object's BTF:

- an ``enum.IntEnum`` for each enum the maps use;
- a construct-typing dataclass (``DataclassMixin`` + ``csfield``) for each
  struct and union, named in CamelCase (``struct wide_key`` -> ``WideKey``;
  an anonymous type is named after where it sits: ``ZooValueAnonNamed``,
  ``ZooValueAnon0``, or its typedef). Padding, bitfield runs and union ends
  are ``csfield_noinit`` fields, so constructors take only the C members;
  union members default to None (set the one you mean);
- for each map ``m``, ``open_m(handle)`` returning ``TypedMap[K, V]``,
  ``PerCpuTypedMap[K, V]``, ``TypedQueue[V]``, ``TypedStack[V]`` or
  ``TypedBloomFilter[V]`` by the map's type.

The output passes ``mypy --strict`` and ``ruff``; a pipeline written over it
is type-checked end to end. Decoded values follow :mod:`typedmaps.btf`
(same constructs, same layout plan).
"""

from __future__ import annotations

import keyword
import os
from dataclasses import dataclass, field

from .btf import (
    MODIFIERS,
    BitsSlot,
    Btf,
    BtfError,
    BtfType,
    FieldSlot,
    Kind,
    MapDef,
    PadSlot,
    camel_case,
)
from .flags import MapType

__all__ = ["generate", "generate_module", "py_name"]

_INT_NAMES = {
    (1, False): "cs.Int8ul",
    (2, False): "cs.Int16ul",
    (4, False): "cs.Int32ul",
    (8, False): "cs.Int64ul",
    (1, True): "cs.Int8sl",
    (2, True): "cs.Int16sl",
    (4, True): "cs.Int32sl",
    (8, True): "cs.Int64sl",
}

_WRAPPERS = {
    MapType.QUEUE: "TypedQueue",
    MapType.STACK: "TypedStack",
    MapType.BLOOM_FILTER: "TypedBloomFilter",
}

#: Keyed map types whose values a TypedMap/PerCpuTypedMap can read.
_KEYED = frozenset(
    {
        MapType.HASH,
        MapType.ARRAY,
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_HASH,
        MapType.LRU_PERCPU_HASH,
        MapType.LPM_TRIE,
        MapType.SK_STORAGE,
        MapType.INODE_STORAGE,
        MapType.TASK_STORAGE,
        MapType.CGRP_STORAGE,
    }
)


def py_name(name: str) -> str:
    """A C identifier as a Python attribute name that works in a dataclass.

    Keywords get a ``_`` suffix (``from`` -> ``from_``); names with two
    leading underscores (mangled in class bodies) get an ``f`` prefix.
    """
    if keyword.iskeyword(name) or name == "_":
        return name + "_"
    if name.startswith("__") and not name.endswith("__"):
        return "f" + name
    return name


def _enum_member(name: str) -> str:
    if keyword.iskeyword(name) or (name.startswith("_") and name.endswith("_")):
        return name + "x" if name.endswith("_") else name + "_"
    if name.startswith("__"):
        return "E" + name
    return name


def _bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


@dataclass
class _Typ:
    """How one C type appears in the module: annotation, construct expression."""

    ann: str
    expr: str
    #: the annotation inside a multi-dimensional array (covariant Sequence form)
    seq_ann: str = ""


@dataclass
class _Gen:
    btf: Btf
    names: dict[int, str] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    blocks: list[str] = field(default_factory=list)
    uses: set[str] = field(default_factory=set)

    # -- names ------------------------------------------------------------

    def _unique(self, base: str, suffix: str) -> str:
        name = base
        if name in self.taken:
            name = base + suffix
        n = 2
        while name in self.taken:
            name = f"{base}{suffix}{n}"
            n += 1
        self.taken.add(name)
        return name

    # -- types ------------------------------------------------------------

    def typ(self, tid: int, hint: str, path: str) -> _Typ:
        t = self.btf.get(tid)
        if t.kind in MODIFIERS:
            if t.kind is Kind.TYPEDEF:
                target = self.btf.resolve(tid)
                if not target.name and target.kind in (
                    Kind.STRUCT,
                    Kind.UNION,
                    Kind.ENUM,
                    Kind.ENUM64,
                ):
                    hint = camel_case(t.name)
            if not t.ref:
                raise BtfError(path, "void has no layout")
            return self.typ(t.ref, hint, path)
        k = t.kind
        if k is Kind.INT:
            return self._int(t, path)
        if k is Kind.PTR:
            return _Typ("int", "cs.Int64ul")
        if k is Kind.FLOAT:
            if t.size == 4:
                self.uses.add("Float32")
                return _Typ("float", "Float32()")
            if t.size == 8:
                return _Typ("float", "cs.Float64l")
            raise BtfError(path, f"{t.size}-byte float {t.name!r} is not supported")
        if k in (Kind.ENUM, Kind.ENUM64):
            cls = self.enum(t, hint)
            self.uses.add("EnumInt")
            signed = self.btf.enum_signed(t)
            return _Typ(f"{cls} | int", f"EnumInt({t.size}, {signed}, {cls})")
        if k is Kind.ARRAY:
            if t.nelems == 0:
                raise BtfError(
                    path + "[]", "a flexible (zero-length) array has no fixed size: not supported"
                )
            if self.btf.is_char_array(t):
                self.uses.add("CharArray")
                return _Typ("str | bytes", f"CharArray({t.nelems})")
            elem = self.typ(t.elem, hint, path + "[]")
            inner_seq = elem.seq_ann or elem.ann
            nested = self.btf.resolve(t.elem).kind is Kind.ARRAY and not self.btf.is_char_array(
                self.btf.resolve(t.elem)
            )
            if nested:
                self.uses.add("Sequence")
                ann = f"Sequence[{inner_seq}]"
                return _Typ(ann, f"cs.Array({t.nelems}, {elem.expr})", ann)
            self.uses.add("Sequence")
            return _Typ(
                f"list[{elem.ann}]", f"cs.Array({t.nelems}, {elem.expr})", f"Sequence[{elem.ann}]"
            )
        if k is Kind.UNION:
            cls = self.record(t, hint, path)
            self.uses.add("UnionRecord")
            return _Typ(cls, f"UnionRecord({cls})")
        if k is Kind.STRUCT:
            cls = self.record(t, hint, path)
            self.uses.add("DataclassStruct")
            return _Typ(cls, f"DataclassStruct({cls})")
        if k is Kind.FWD:
            raise BtfError(
                path, f"{self.btf.describe(tid)} is only declared (forward), not defined"
            )
        raise BtfError(path, f"{self.btf.describe(tid)} ({k.name}) is not a data type")

    def _int(self, t: BtfType, path: str) -> _Typ:
        signed = bool(t.int_encoding & 1)
        if t.is_bitfield_int:
            self.uses.add("BitField")
            return _Typ(
                "int", f"BitField({t.size}, {t.int_offset}, {t.int_bits}, {signed}, consume=True)"
            )
        if t.int_encoding & 4:
            self.uses.add("BoolInt")
            return _Typ("bool", f"BoolInt({t.size})")
        fixed = _INT_NAMES.get((t.size, signed))
        if fixed is not None:
            return _Typ("int", fixed)
        if t.size == 16:
            return _Typ("int", f"cs.BytesInteger(16, signed={signed}, swapped=True)")
        raise BtfError(path, f"{t.size}-byte integer {t.name!r} is not supported")

    def enum(self, t: BtfType, hint: str) -> str:
        known = self.names.get(t.id)
        if known is not None:
            return known
        name = self._unique(camel_case(t.name) if t.name else hint + "Enum", "Enum")
        self.names[t.id] = name
        lines = [f"class {name}(enum.IntEnum):"]
        kind = "enum" if t.kind is Kind.ENUM else "64-bit enum"
        lines.append(f'    """{kind} {t.name or "(anonymous)"} ({_bytes(t.size)})."""')
        values = self.btf.enum_values(t)
        if values:
            lines.append("")
        used: set[str] = set()
        for cname, v in values:
            member = _enum_member(cname)
            while member in used:
                member += "_"
            used.add(member)
            lines.append(f"    {member} = {v}")
        self.uses.add("enum")
        self.blocks.append("\n".join(lines))
        return name

    def record(self, t: BtfType, hint: str, path: str) -> str:
        known = self.names.get(t.id)
        if known is not None:
            return known
        suffix = "Union" if t.kind is Kind.UNION else "Struct"
        name = self._unique(camel_case(t.name) if t.name else hint, suffix)
        self.names[t.id] = name
        body = self._record_body(t, name, path)
        kind = "union" if t.kind is Kind.UNION else "struct"
        doc = f"{kind} {t.name or '(anonymous)'} ({_bytes(t.size)})."
        if t.kind is Kind.UNION:
            doc = doc[:-1] + "; set the member you mean, the others stay None."
        lines = ["@dataclasses.dataclass", f"class {name}(DataclassMixin):", f'    """{doc}"""', ""]
        lines += ["    " + line for entry in body for line in entry.split("\n")]
        self.uses.update({"dataclasses", "DataclassMixin"})
        self.blocks.append("\n".join(lines))
        return name

    def _record_body(self, t: BtfType, cls: str, path: str) -> list[str]:
        lines: list[str] = []
        members = {self.btf.member_name(t.members, i) for i in range(len(t.members))}
        used = {py_name(m) for m in members}
        counters: dict[str, int] = {}

        def hidden(stem: str) -> str:
            while True:
                n = counters.get(stem, 0)
                counters[stem] = n + 1
                name = f"_{stem}{n}"
                if name not in used:
                    used.add(name)
                    return name

        union = t.kind is Kind.UNION
        for slot in self.btf.layout(t, path):
            if isinstance(slot, PadSlot):
                self.uses.add("csfield_noinit")
                lines.append(f"{hidden('pad')}: None = csfield_noinit(cs.Padding({slot.size}))")
            elif isinstance(slot, FieldSlot):
                ft = self.typ(slot.type_id, cls + camel_case(slot.name), f"{path}.{slot.name}")
                fname = py_name(slot.name)
                if union:
                    self.uses.update({"UnionMember", "csfield_default"})
                    lines.append(
                        _field(
                            fname,
                            f"{ft.ann} | None",
                            f"csfield_default(UnionMember({ft.expr}), default=None)",
                        )
                    )
                else:
                    self.uses.add("csfield")
                    lines.append(_field(fname, ft.ann, f"csfield({ft.expr})"))
            elif isinstance(slot, BitsSlot):
                for f in slot.fields:
                    fpath = f"{path}.{f.name}"
                    kind, signed = self.btf.bitfield_kind(f.type_id, f.width, fpath)
                    args = f"{slot.nbytes}, {f.shift}, {f.width}, {signed}"
                    self.uses.add("BitField")
                    if kind == "enum":
                        ecls = self.enum(self.btf.resolve(f.type_id), cls + camel_case(f.name))
                        ann, expr = f"{ecls} | int", f"BitField({args}, enum={ecls}"
                    elif kind == "bool":
                        ann, expr = "bool", f"BitField({args}, boolean=True"
                    else:
                        ann, expr = "int", f"BitField({args}"
                    if union:
                        self.uses.update({"UnionMember", "csfield_default"})
                        lines.append(
                            _field(
                                py_name(f.name),
                                f"{ann} | None",
                                f"csfield_default(UnionMember({expr}, consume=True)), "
                                "default=None)",
                            )
                        )
                    else:
                        self.uses.add("csfield")
                        lines.append(_field(py_name(f.name), ann, f"csfield({expr}))"))
                if not union:
                    self.uses.update({"OverlayEnd", "csfield_noinit"})
                    lines.append(
                        f"{hidden('bits')}: None = csfield_noinit(OverlayEnd({slot.nbytes}))"
                    )
        if union:
            self.uses.update({"OverlayEnd", "csfield_noinit"})
            lines.append(f"{hidden('end')}: None = csfield_noinit(OverlayEnd({t.size}))")
        return lines


#: Generated lines stay within ruff's default line length.
LINE: int = 88


def _field(name: str, ann: str, value: str) -> str:
    """``name: ann = value`` for a class body, split the way ruff format splits it."""
    line = f"{name}: {ann} = {value}"
    if len(line) + 4 <= LINE:
        return line
    func, _, args = value.partition("(")
    return f"{name}: {ann} = {func}(\n    {args[:-1]}\n)"


def _map_function(g: _Gen, d: MapDef) -> str | None:
    mt = d.map_type
    fname = f"open_{d.name}"
    if not isinstance(mt, MapType):
        return f"# {d.name}: map type {mt} is unknown to typedmaps; no accessor."
    hint = camel_case(d.name)
    value = _schema_for(g, d.value_type_id, d.value_size, hint + "Value", f"{d.name}.value")
    wrapper = _WRAPPERS.get(mt)
    if wrapper is not None:
        g.uses.add(wrapper)
        ret = f"{wrapper}[{value.ann}]"
        args = ["handle", f"value={value.expr}"]
    elif mt in _KEYED:
        key = _schema_for(g, d.key_type_id, d.key_size, hint + "Key", f"{d.name}.key")
        wrapper = "PerCpuTypedMap" if mt.is_percpu else "TypedMap"
        g.uses.add(wrapper)
        ret = f"{wrapper}[{key.ann}, {value.ann}]"
        args = ["handle", f"key={key.expr}", f"value={value.expr}"]
    else:
        return f"# {d.name}: {mt.name} maps have no typed wrapper; no accessor."
    doc = (
        f"{d.name}: {mt.name}, key {d.key_size} B, value {d.value_size} B, "
        f"max_entries {d.max_entries}."
    )
    sig = f"def {fname}(handle: MapHandle) -> {ret}:"
    if len(sig) > LINE:
        sig = f"def {fname}(\n    handle: MapHandle,\n) -> {ret}:"
    body = f"    return {wrapper}({', '.join(args)})"
    if len(body) > LINE:
        inner = "".join(f"        {a},\n" for a in args)
        body = f"    return {wrapper}(\n{inner}    )"
    return f'{sig}\n    """{doc}"""\n{body}'


def _schema_for(g: _Gen, tid: int, size: int, hint: str, path: str) -> _Typ:
    if tid:
        return g.typ(tid, hint, path)
    return _Typ("bytes", f"cs.Bytes({size})")


def generate(btf: Btf, source: str = "a BPF object") -> str:
    """The text of a module for every map declared in ``btf``'s ``.maps`` section.

    Raises:
        BtfError: a map's key or value type is unsupported (the message names
            the map and field, e.g. ``flows.value.hdr.data[]``).
    """
    g = _Gen(btf)
    g.taken.update({"cs", "enum", "dataclasses", "Sequence", "MapHandle"})
    funcs: list[str] = []
    exported: list[str] = []
    for d in btf.map_defs():
        f = _map_function(g, d)
        if f is not None:
            funcs.append(f)
            if f.startswith("def "):
                exported.append(f"open_{d.name}")
    exported += [n for n in g.names.values()]
    imports = _imports(g.uses)
    doc = (
        f'"""Typed accessors for the maps of {source}.\n\n'
        "Generated by `typedmaps gen` from the object's BTF; regenerate instead of editing.\n"
        '"""\n\n'
        "# construct-typing records call csfield() in dataclass defaults by design.\n"
        "# ruff: noqa: RUF009"
    )
    all_names = "".join(f'    "{n}",\n' for n in sorted(exported))
    parts = [doc, imports, f"__all__ = [\n{all_names}]", *g.blocks, *funcs]
    return parts[0] + "\n\n" + parts[1] + "\n\n" + "\n\n\n".join(parts[2:]) + "\n"


def _imports(uses: set[str]) -> str:
    std = []
    if "dataclasses" in uses:
        std.append("import dataclasses")
    if "enum" in uses:
        std.append("import enum")
    if "Sequence" in uses:
        std.append("from collections.abc import Sequence")
    third = ["import construct as cs"]
    ct: list[str] = sorted(
        n
        for n in (
            "DataclassMixin",
            "DataclassStruct",
            "csfield",
            "csfield_default",
            "csfield_noinit",
        )
        if n in uses
    )
    if ct:
        third.append(_from_import("construct_typed", ct))
    tm: list[str] = sorted(
        n
        for n in (
            "PerCpuTypedMap",
            "TypedBloomFilter",
            "TypedMap",
            "TypedQueue",
            "TypedStack",
        )
        if n in uses
    )
    tm.insert(0, "MapHandle")
    ours: list[str] = sorted(
        n
        for n in (
            "BitField",
            "BoolInt",
            "CharArray",
            "EnumInt",
            "Float32",
            "OverlayEnd",
            "UnionMember",
            "UnionRecord",
        )
        if n in uses
    )
    # typedmaps is a dependency of the user's project: third-party, one block.
    third.append(_from_import("typedmaps", tm))
    if ours:
        third.append(_from_import("typedmaps.btf", ours))
    return "\n\n".join(block for block in ("\n".join(std), "\n".join(third)) if block)


def _from_import(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE:
        return line
    inner = "".join(f"    {n},\n" for n in names)
    return f"from {module} import (\n{inner})"


def generate_module(path: str | os.PathLike[str], module_doc: str | None = None) -> str:
    """Read an object file's BTF and return the module text (``typedmaps gen``).

    Raises:
        MapError: the file cannot be read or has no BTF.
        BtfError: a type is unsupported.
    """
    btf = Btf.from_file(path)
    return generate(btf, module_doc or os.path.basename(os.fspath(path)))
