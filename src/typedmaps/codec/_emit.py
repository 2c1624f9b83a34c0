"""Python source generated from a plan: decode, encode, their row forms, and pair plans."""

from __future__ import annotations

import dataclasses
import keyword
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import construct as cs

from ._containers import container_class
from ._plan import (
    _Array,
    _Bits,
    _count_endians,
    _Group,
    _Leaf,
    _Node,
    _NoPlan,
    _Overlay,
    _Pad,
    _Padded,
    _Planner,
    _Record,
    _Slow,
    _Struct,
    _Wrap,
)

if TYPE_CHECKING:
    from ._codec import Codec


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
        elif isinstance(node, _Struct | _Record):
            for _, sub, _ in node.fields:
                self.layout(sub)
        elif isinstance(node, _Group):
            self.fmt.append(self.leaf(node.storage).code)
            self.items += 1
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
            fields = [(n, e) for n, e in self.dec_fields(node.fields) if n is not None]
            names = [n for n, _ in fields]
            # A Container whose fields read at C speed (see _containers.py).
            c = self.planner.bind(container_class(tuple(names)), "_C")
            if len(set(names)) == len(names) and all(
                isinstance(n, str) and n.isidentifier() and not keyword.iskeyword(n) for n in names
            ):
                # Keywords: dict() fills the Container from the call's own
                # dict, one dict less than _C({...}) (measured ~20% faster).
                return f"{c}({', '.join(f'{n}={e}' for n, e in fields)})"
            return f"{c}({{{', '.join(f'{n!r}: {e}' for n, e in fields)}}})"
        if isinstance(node, _Record):
            return self.dec_record(node)
        if isinstance(node, _Array):
            return self.dec_array(node)
        if isinstance(node, _Wrap):
            expr = self.dec(node.inner)
            if node.check is not None or node.get is not None:
                var = self.name("k")
                self.lines.append(f"{var} = {expr}")
                if node.check is not None:
                    self.lines.append(node.check.format(x=var))
                expr = var
            if node.get is not None and node.dec is not None:
                out = self.name("m")
                self.lines.append(f"{out} = {node.get}({expr})")
                self.lines.append(f"if {out} is None: {out} = {node.dec.format(expr)}")
                return out
            if node.dec is not None:
                expr = node.dec.format(expr)
            return expr
        if isinstance(node, _Group):  # pragma: no cover - groups live in fields
            raise _NoPlan("a group outside a struct")
        expr = self.dec(node.inner)
        self.dec(node.pad)
        return expr

    def dec_fields(
        self, fields: list[tuple[str | None, _Node, bool]]
    ) -> list[tuple[str | None, str]]:
        """(name, expression) of every field in layout order; a group gives one per member."""
        out: list[tuple[str | None, str]] = []
        for name, sub, _ in fields:
            if isinstance(sub, _Group):
                out += self.dec_group(sub)
            else:
                out.append((name, self.dec(sub)))
        return out

    def dec_group(self, node: _Group) -> list[tuple[str | None, str]]:
        """The group's one item, then each member's value from it (and None for the end)."""
        leaf = self.leaf(node.storage)
        expr = self.item(self.items)
        self.items += 1
        for tmpl in leaf.dec:
            expr = tmpl.format(expr)
        g = self.name("g")
        self.lines.append(f"{g} = {expr}")
        raw = g
        if node.storage.code.endswith("s") and any(isinstance(m.part, _Bits) for m in node.members):
            raw = self.name("gi")
            self.lines.append(f"{raw} = {self.planner.bind(int.from_bytes, '_fb')}({g}, 'little')")
        out: list[tuple[str | None, str]] = []
        for m in node.members:
            part = m.part
            if isinstance(part, _Bits):
                mask = (1 << part.width) - 1
                value = f"{raw} >> {part.shift} & {mask}" if part.shift else f"{raw} & {mask}"
                if part.signed:
                    half = 1 << (part.width - 1)
                    value = f"(({value}) ^ {half}) - {half}"
                value = f"({value})"
                if part.dec is not None:
                    value = part.dec.format(value)
                out.append((m.name, value))
            else:
                out.append((m.name, self.dec_overlay(part, g)))
        out.append((node.end_name, "None"))
        return out

    def sub_emitter(self, node: _Node) -> tuple[_Emitter, struct.Struct]:
        """An emitter of its own for a union member, and the struct of the member's bytes."""
        counts: dict[str, int] = {}
        _count_endians(node, counts)
        prefix = "<" if counts.get("<", 0) >= counts.get(">", 0) else ">"
        sub = _Emitter(self.planner, prefix, self.name("m") + "_")
        sub.layout(node)
        packer = struct.Struct(prefix + "".join(sub.fmt))
        sub.use_t = sub.use_t or sub.items > 255
        return sub, packer

    def dec_overlay(self, part: _Overlay, g: str) -> str:
        """A union member's value: its own struct unpacked from the group's bytes."""
        sub, packer = self.sub_emitter(part.node)
        if packer.size != part.size:  # pragma: no cover - a planner bug; stay correct
            raise _NoPlan("union member layout")
        nitems = sub.items
        sub.items, sub.lines = 0, []
        expr = sub.dec(part.node)
        if nitems:
            if sub.use_t:
                target = f"{sub.stem}t"
            else:
                target = ", ".join(f"{sub.stem}v{i}" for i in range(nitems)) + ","
            unpack = self.planner.bind(packer.unpack_from, "_uf")
            self.lines.append(f"{target} = {unpack}({g})")
        self.lines += sub.lines
        return expr

    def dec_record(self, node: _Record) -> str:
        exprs = dict(self.dec_fields(node.fields))
        cls = self.planner.bind(node.cls, "_R")
        obj = self.name("o")
        noinit = [name for name in node.order if name not in node.init]
        if node.build == "call":
            init = ", ".join(f"{name}={exprs[name]}" for name in node.init)
            self.lines.append(f"{obj} = {cls}({init})")
        else:
            # What the generated __init__ does: store the init fields in order.
            self.lines.append(f"{obj} = _new({cls})")
            if node.build == "stores":
                for name in node.init:
                    self.lines.append(f"{obj}.{name} = {exprs[name]}")
            elif node.build == "dict":
                d = self.name("d")
                self.lines.append(f"{d} = {obj}.__dict__")
                for name in node.init:
                    self.lines.append(f"{d}[{name!r}] = {exprs[name]}")
            else:
                for name in node.init:
                    self.lines.append(f"_osa({obj}, {name!r}, {exprs[name]})")
            if node.post_init:
                self.lines.append(f"{obj}.__post_init__()")
        # DataclassStruct then sets the init=False fields (with setattr, or
        # object.__setattr__ per its hook); until then they keep their class
        # default, so they come last in the instance dict.
        for name in noinit:
            if node.noinit == "setattr" or node.build == "stores":
                self.lines.append(f"{obj}.{name} = {exprs[name]}")
            elif node.build == "dict":
                self.lines.append(f"{d}[{name!r}] = {exprs[name]}")
            else:
                self.lines.append(f"_osa({obj}, {name!r}, {exprs[name]})")
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

    def enc_group(self, node: _Group, values: list[str]) -> None:
        _enc_group(self, node, values)

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
                if isinstance(sub, _Group):
                    ys = []
                    for m in sub.members:
                        y = self.name("a")
                        get = f"{x}.get({m.name!r})" if m.buildnone else f"{x}[{m.name!r}]"
                        self.lines.append(f"{y} = {get}")
                        ys.append(y)
                    self.enc_group(sub, ys)
                    continue
                y = self.name("a")
                get = f"{x}.get({name!r})" if buildnone else f"{x}[{name!r}]"
                self.lines.append(f"{y} = {get}")
                self.enc(sub, y)
        elif isinstance(node, _Record):
            cls = self.planner.bind(node.cls, "_R")
            self.lines.append(f"if type({x}) is not {cls}: raise _S")
            names: dict[str | None, str] = {}
            for name in node.order:  # DataclassStruct reads every field, in this order
                names[name] = y = self.name("a")
                self.lines.append(f"{y} = {x}.{name}")
            for name, sub, _ in node.fields:
                if isinstance(sub, _Group):
                    self.enc_group(sub, [names[m.name] for m in sub.members])
                else:
                    self.enc(sub, names[name])
        elif isinstance(node, _Group):  # pragma: no cover - groups live in fields
            raise _NoPlan("a group outside a struct")
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


def _enc_group(em: _Emitter, node: _Group, values: list[str]) -> None:
    """Merge every member's bits into one integer, as the members' builds would."""
    p = em.planner
    acc = em.name("g")
    # Members whose masks never meet need no agreement check (bitfield runs).
    masks = [_member_mask(m) for m in node.members]
    overlapping = any(masks[i] & masks[j] for i in range(len(masks)) for j in range(i))
    if not overlapping and all(isinstance(m.part, _Bits) for m in node.members):
        terms = [_enc_bits(em, m, y) for m, y in zip(node.members, values, strict=True)]
        em.lines.append(f"{acc} = {' | '.join(terms) or '0'}")
        _group_item(em, node, acc)
        return
    em.lines.append(f"{acc} = 0")
    claimed = em.name("c") if overlapping else None
    if claimed is not None:
        em.lines.append(f"{claimed} = 0")
    full = (1 << (8 * node.size)) - 1
    for m, mask, y in zip(node.members, masks, values, strict=True):
        part = m.part
        if isinstance(part, _Overlay):
            for d in m.defaults:
                em.lines.append(f"if {y} is None: {y} = {d}")
        bits = em.name("b")
        if isinstance(part, _Bits):
            em.lines.append(f"{bits} = {_enc_bits(em, m, y)}")
        else:
            sub, packer = em.sub_emitter(part.node)
            sub.lines, sub.args = [], []
            sub.enc(part.node, y)
            pack = p.bind(packer.pack, "_pk")
            fb = p.bind(int.from_bytes, "_fb")
            em.lines.append(f"if {y} is not None:")
            body = [*sub.lines, f"{bits} = {fb}({pack}({', '.join(sub.args)}), 'little')"]
            em.lines += ["    " + line for line in body]
        ind = "    " if isinstance(part, _Overlay) else ""
        if claimed is None:
            em.lines.append(f"{ind}{acc} |= {bits} & {mask}")
        else:
            em.lines.append(f"{ind}if ({acc} ^ {bits}) & {mask} & {claimed}: raise _S")
            em.lines.append(f"{ind}{acc} = {acc} & {full & ~mask} | {bits} & {mask}")
            em.lines.append(f"{ind}{claimed} |= {mask}")
    _group_item(em, node, acc)


def _enc_bits(em: _Emitter, m: Any, y: str) -> str:
    """Check a bitfield member's value ``y`` as its build would; the expression of its bits."""
    part: _Bits = m.part
    for d in m.defaults:
        em.lines.append(f"if {y} is None: {y} = {d}")
    width, shift = part.width, part.shift
    lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if part.signed else (0, 1 << width)
    if part.enc is None:
        em.lines.append(f"if type({y}) is not int: raise _S")
    else:
        em.lines.append(f"if type({y}) is not int: {y} = {part.enc}({y})")
    em.lines.append(f"if not {lo} <= {y} < {hi}: raise _S")
    term = f"({y} & {(1 << width) - 1})" if part.signed else y
    return f"{term} << {shift}" if shift else term


def _group_item(em: _Emitter, node: _Group, acc: str) -> None:
    """The group's struct item from its integer ``acc``, appended to the pack arguments."""
    leaf = em.leaf(node.storage)
    if not node.storage.code.endswith("s"):
        out = acc
    else:
        out = em.name("a")
        em.lines.append(f"{out} = {acc}.to_bytes({node.size}, 'little')")
    for step in leaf.enc:  # another byte order than the struct's: converted
        em.lines.append(step.format(x=out))
    em.args.append(out)


def _member_mask(m: Any) -> int:
    part = m.part
    if isinstance(part, _Bits):
        return ((1 << part.width) - 1) << part.shift
    mask: int = part.mask
    return mask


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
        return 1 + sum(_weight(sub) for _, sub, _ in node.fields)
    if isinstance(node, _Array):
        elem = node.elem
        if isinstance(elem, _Leaf) and not elem.dec and not elem.enc:
            return 2  # one slice to decode, one *args to encode
        return 1 + node.count * _weight(elem)
    if isinstance(node, _Wrap | _Padded):
        return 1 + _weight(node.inner)
    if isinstance(node, _Group):
        return 1 + sum(
            _weight(m.part.node) if isinstance(m.part, _Overlay) else 2 for m in node.members
        )
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
        _osa=object.__setattr__,
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


@dataclasses.dataclass(frozen=True)
class ElementCode:
    """The generated statements of a key codec and a value codec, for code built around them.

    A typed map generates its element methods (``m[k]``, ``m[k] = v``, ...)
    with these statements inline, between its own: no call into a codec on
    the fast path. ``key`` and ``value`` are the codecs' parts (None for a
    codec without a fast plan: then call the codec); every local name in the
    key's statements starts with ``k_``, in the value's with ``v_``; the
    names they use are in ``namespace``, with the packers and unpackers as
    ``_kpack``, ``_kunpack``, ``_kunpack_from``, ``_vpack``, ``_vunpack``,
    ``_vunpack_from``. The statements may
    raise (anything) where construct would answer differently: the caller
    then asks the codec, which gives construct's value or error.
    """

    key: _Parts | None
    value: _Parts | None
    namespace: dict[str, Any]


def element_code(key: Codec[Any] | None, value: Codec[Any] | None) -> ElementCode:
    """The statements of both codecs' fast plans, in one namespace (see :class:`ElementCode`)."""
    planner = _Planner()
    parts: list[_Parts | None] = []
    for codec, stem in ((key, "k_"), (value, "v_")):
        if codec is None or not codec.fast or not codec.size:
            parts.append(None)
        else:
            parts.append(_emit_parts(codec.schema, codec.size, planner, stem))
    ns = _base_ns(planner)
    for p, prefix in zip(parts, ("_k", "_v"), strict=True):
        if p is not None:
            ns[f"{prefix}pack"] = p.packer.pack
            ns[f"{prefix}unpack"] = p.packer.unpack
            ns[f"{prefix}unpack_from"] = p.packer.unpack_from
            ns[f"{prefix}unpack_from"] = p.packer.unpack_from
    return ElementCode(parts[0], parts[1], ns)
