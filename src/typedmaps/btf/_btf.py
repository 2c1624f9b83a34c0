"""Btf: a parsed BTF blob, its types by id, their layouts and construct schemas."""

from __future__ import annotations

import enum
import os
import re
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from .. import _ffi
from .._args import fspath
from .._pysafe import ENUM_RESERVED, Scope
from ..errors import PathNotFoundError, SizeMismatchError
from ..flags import MapType

# construct is imported by the schema builders only, when first used: reading
# BTF, sizes and layouts (typedmaps dump) never loads it.
if TYPE_CHECKING:
    import construct as cs

    from ._constructs import BitField

from ._parse import _decode_types, split_blob
from ._types import (
    INT_BOOL,
    INT_CHAR,
    INT_SIGNED,
    MODIFIERS,
    POINTER_SIZE,
    BitSpec,
    BitsSlot,
    BtfError,
    BtfMember,
    BtfType,
    FieldSlot,
    Kind,
    MapDef,
    PadSlot,
    Slot,
    _bits_mask,
)
from ._validate import MAX_DEPTH, check_types

T = TypeVar("T")

#: Largest type a schema is built for (a kernel map value is at most a few MiB).
MAX_SCHEMA_SIZE: Final = 1 << 28


class Btf:
    """Parsed BTF: every type by id, with helpers to resolve and size them.

    Make one with :meth:`from_kernel` (a map's BTF id), :meth:`from_file`
    (an ELF object or a raw BTF file), :meth:`from_bytes` (raw BTF, checked
    by libbpf) or :meth:`parse` (raw BTF, decoded in Python only).
    """

    def __init__(self, types: list[BtfType], strings: bytes) -> None:
        self.types = types
        self._strings = strings
        self._schemas: dict[int, cs.Construct[Any, Any]] = {}
        self._masks: dict[int, int] = {}
        self._enums: dict[int, type[enum.IntEnum]] = {}

    # -- loading -------------------------------------------------------------

    @classmethod
    def from_kernel(cls, btf_id: int) -> Btf:
        """Load the BTF object with kernel id ``btf_id`` (needs CAP_SYS_ADMIN).

        The kernel's BTF passed its verifier; it is checked again here (the
        rules are the same, and what it allows is all handled).

        Raises:
            KeyNotFoundError: no BTF object has this id.
            MapError: other kernel or libbpf errors.
            BtfError: the BTF is malformed.
        """
        if not isinstance(btf_id, int) or not 0 < btf_id <= 0xFFFFFFFF:
            raise BtfError("btf_id", f"{btf_id!r} is not a positive 32-bit BTF id")
        raw = _ffi.btf_raw("kernel", btf_id, f"load BTF id {btf_id}")
        return cls.parse(raw)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | bytes) -> Btf:
        """Load BTF from an ELF object (its ``.BTF`` section) or a raw BTF file.

        The file is read by typedmaps itself, never blocking (a FIFO or a
        device is refused, see :func:`typedmaps._elf.read_regular_file`), and
        checked entirely (ELF structure, ``.BTF``, ``.BTF.ext``) before
        anything is built from it; libbpf does not see it.

        Raises:
            PathNotFoundError: the file does not exist (a MapError and a
                FileNotFoundError).
            ObjectError: the file cannot be read, is not a regular file, or
                is a malformed ELF object (errno 4001).
            BtfError: the BTF is malformed, or the object has none.
            ArgumentError: ``path`` is not a path or contains a NUL byte.
        """
        from .._elf import MAX_OBJECT_SIZE, check_object, read_regular_file

        p = fspath(path, "path", "Btf.from_file")
        shown = os.fsdecode(p)
        op = f"load BTF from {shown}"
        data = read_regular_file(p, op, MAX_OBJECT_SIZE, not_found=PathNotFoundError)
        if data[:4] != b"\x7fELF":
            return cls.parse(data)
        obj = check_object(data, op)
        if obj.btf is None:
            raise BtfError("btf", f"{shown} has no .BTF section (build it with clang -g)")
        return obj.btf

    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        """Load raw BTF bytes: checked here first, then by libbpf's ``btf__new``.

        Raises:
            BtfError: the bytes are not valid BTF (the message says why).
            MapError: libbpf rejects the bytes (EINVAL and friends).
        """
        blob = bytes(data)
        cls.parse(blob)
        raw = _ffi.btf_raw("bytes", blob, "load BTF bytes")
        return cls.parse(raw)

    @classmethod
    def parse(cls, data: bytes) -> Btf:
        """Decode raw BTF (header, type section, string section) in Python, checking it.

        The rules are the kernel BTF verifier's (see :mod:`typedmaps.btf`):
        the header and sections, every record, then every reference between
        types, with no recursion and no loop over more than the bytes hold.

        Raises:
            BtfError: the first rule the bytes break, naming the type id.
        """
        order, sec, strings = split_blob(bytes(data))
        types = _decode_types(sec, strings, order)
        check_types(types)
        return cls(types, strings)

    # -- lookups -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.types)

    def __repr__(self) -> str:
        return f"<Btf {len(self.types) - 1} types>"

    def get(self, type_id: int) -> BtfType:
        """The type with id ``type_id``.

        Raises:
            BtfError: no such id.
        """
        if not 0 <= type_id < len(self.types):
            raise BtfError("btf", f"type id {type_id} out of range (1..{len(self.types) - 1})")
        return self.types[type_id]

    def find(self, name: str, kind: Kind | None = None) -> BtfType:
        """The first type named ``name`` (of ``kind`` when given).

        Raises:
            KeyError: no such type.
        """
        for t in self.types:
            if t.name == name and (kind is None or t.kind is kind):
                return t
        raise KeyError(name)

    def resolve(self, type_id: int) -> BtfType:
        """Follow typedefs and const/volatile/restrict/type_tag to the underlying type."""
        t = self.get(type_id)
        seen = 0
        while t.kind in MODIFIERS:
            t = self.get(t.ref)
            seen += 1
            if seen > 64:
                raise BtfError("btf", f"type id {type_id}: modifier loop")
        return t

    def size_of(self, type_id: int, path: str = "type") -> int:
        """The byte size of a data type.

        Raises:
            BtfError: the type has no size (void, function, forward).
        """
        t = self.resolve(type_id)
        k = t.kind
        if k in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
            return t.size
        if k is Kind.DATASEC:
            return t.size
        if k is Kind.PTR:
            return POINTER_SIZE
        if k is Kind.ARRAY:
            return t.nelems * self.size_of(t.elem, path + "[]")
        if k is Kind.VAR:
            return self.size_of(t.ref, path)
        raise BtfError(path, f"{self.describe(type_id)} has no size")

    def describe(self, type_id: int, _depth: int = 0) -> str:
        """A C-like name for messages: ``struct wide_key``, ``__u32``, ``char[16]``.

        Pointers and arrays that refer to each other (which the kernel
        allows) end in ``...`` after :data:`MAX_DEPTH` steps.
        """
        if type_id == 0:
            return "void"
        if _depth > MAX_DEPTH:
            return "..."
        t = self.get(type_id)
        k = t.kind
        if k is Kind.ARRAY:
            dims = ""
            hops = 0
            while t.kind is Kind.ARRAY and hops <= MAX_DEPTH:
                dims += f"[{t.nelems}]"
                t = self.get(t.elem)
                hops += 1
            return self.describe(t.id, _depth + 1) + dims
        if k is Kind.PTR:
            return f"{self.describe(t.ref, _depth + 1)} *"
        if k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            return f"{k.name.lower()} {self.describe(t.ref, _depth + 1)}"
        if k is Kind.TYPE_TAG:
            return self.describe(t.ref, _depth + 1)
        if k in (Kind.STRUCT, Kind.UNION):
            return f"{k.name.lower()} {t.name or '(anon)'}"
        if k in (Kind.ENUM, Kind.ENUM64):
            return f"enum {t.name or '(anon)'}"
        if k is Kind.FUNC_PROTO:
            return "function prototype"
        return t.name or f"({k.name.lower()})"

    def is_char_array(self, t: BtfType) -> bool:
        """bpftool's rule: an ARRAY of a 1-byte INT named ``char`` or with CHAR encoding.

        const/volatile/restrict on the element are skipped; typedefs are not.
        """
        if t.kind is not Kind.ARRAY or t.nelems == 0:
            return False
        e = self.get(t.elem)
        while e.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            e = self.get(e.ref)
        return (
            e.kind is Kind.INT
            and e.size == 1
            and (bool(e.int_encoding & INT_CHAR) or e.name == "char")
        )

    def enum_signed(self, t: BtfType) -> bool:
        """Whether an ENUM/ENUM64 stores signed values (see the module doc)."""
        if t.kflag:
            return True
        if t.kind is Kind.ENUM:
            return any(e.raw & 0x80000000 for e in t.enumerators)
        return False

    def enum_values(self, t: BtfType) -> list[tuple[str, int]]:
        """The enumerators with their values as C sees them (sign per :meth:`enum_signed`)."""
        signed = self.enum_signed(t)
        bits = 32 if t.kind is Kind.ENUM else 64
        out = []
        for e in t.enumerators:
            v = e.raw
            if signed and v >> (bits - 1):
                v -= 1 << bits
            out.append((e.name, v))
        return out

    def member_name(self, members: tuple[BtfMember, ...], index: int) -> str:
        """The Python name of member ``index``: its C name, or ``anonN`` when anonymous."""
        m = members[index]
        if m.name:
            return m.name
        taken = {x.name for x in members}
        n = sum(1 for x in members[:index] if not x.name)
        name = f"anon{n}"
        while name in taken:
            name += "_"
        return name

    def bitfield(self, m: BtfMember, kflag: bool) -> tuple[int, int] | None:
        """(bit offset, width) when member ``m`` is a bitfield, else None."""
        if kflag:
            off = m.bit_offset & 0xFFFFFF
            width = m.bit_offset >> 24
            if width:
                return off, width
            return None
        t = self.resolve(m.type_id)
        if t.is_bitfield_int:
            return m.bit_offset + t.int_offset, t.int_bits
        return None

    def member_offset(self, m: BtfMember, kflag: bool) -> int:
        """The member's bit offset (without the kflag bitfield size)."""
        return m.bit_offset & 0xFFFFFF if kflag else m.bit_offset

    # -- maps declared in an object -------------------------------------------

    def map_defs(self) -> list[MapDef]:
        """Maps declared in the ``.maps`` section (libbpf's BTF-defined maps).

        Returns:
            one :class:`MapDef` per map variable, in section order.
        """
        out: list[MapDef] = []
        for sec in self.types:
            if sec.kind is not Kind.DATASEC or sec.name != ".maps":
                continue
            for entry in sec.members:
                var = self.get(entry.type_id)
                out.append(self._map_def(var))
        return out

    def _map_def(self, var: BtfType) -> MapDef:
        t = self.resolve(var.ref)
        ints: dict[str, int] = {}
        types: dict[str, int] = {}
        for m in t.members:
            p = self.get(m.type_id)
            if p.kind is not Kind.PTR:
                continue
            target = self.get(p.ref)
            if m.name in ("key", "value"):
                types[m.name] = p.ref
            elif target.kind is Kind.ARRAY:
                ints[m.name] = target.nelems
        mt_num = ints.get("type", 0)
        try:
            mt: MapType | int = MapType(mt_num)
        except ValueError:
            mt = mt_num
        key_id = types.get("key", 0)
        value_id = types.get("value", 0)
        return MapDef(
            name=var.name,
            map_type=mt,
            key_type_id=key_id,
            value_type_id=value_id,
            key_size=self.size_of(key_id, "key") if key_id else ints.get("key_size", 0),
            value_size=(self.size_of(value_id, "value") if value_id else ints.get("value_size", 0)),
            max_entries=ints.get("max_entries", 0),
            map_flags=ints.get("map_flags", 0),
        )

    # -- schemas -------------------------------------------------------------

    def schema(
        self, type_id: int, path: str = "value", *, size: int | None = None
    ) -> cs.Construct[Any, Any]:
        """The construct schema for a key or value type.

        Args:
            type_id: the BTF type id.
            path: where the type sits, for error messages (``"key"``, ``"value"``).
            size: when given, the size the map expects; a different BTF size
                raises SizeMismatchError.

        Returns:
            a fixed-size construct whose ``sizeof()`` is the type's size.

        Raises:
            BtfError: the type (or a member) is unsupported; the path names it.
            SizeMismatchError: the type's size differs from ``size``.
        """
        if type_id == 0:
            raise BtfError(path, "the type is void (BTF type id 0)")
        # Sizes first: nothing is built for a type the map's bytes cannot hold.
        try:
            got = self.size_of(type_id, path)
        except BtfError:
            self._schema(type_id, path)  # says what the type is and why it has no schema
            raise
        if size is not None and got != size:
            raise SizeMismatchError(
                f"{path} type {self.describe(type_id)} from BTF",
                got,
                size,
                "the map and its BTF disagree",
            )
        if got > MAX_SCHEMA_SIZE:
            raise BtfError(
                path,
                f"{self.describe(type_id)} is {got} bytes, over the {MAX_SCHEMA_SIZE} supported",
            )
        return self._schema(type_id, path)

    def _schema(self, type_id: int, path: str) -> cs.Construct[Any, Any]:
        cached = self._schemas.get(type_id)
        if cached is not None:
            return cached
        import construct as cs

        from ._constructs import CharArray, EnumInt, Float32

        t = self.get(type_id)
        k = t.kind
        s: cs.Construct[Any, Any]
        if k in MODIFIERS:
            s = self._schema(t.ref, path) if t.ref else _void(path)
        elif k is Kind.INT:
            s = self._int_schema(t, path)
        elif k is Kind.PTR:
            s = cs.Int64ul
        elif k is Kind.FLOAT:
            if t.size == 4:
                s = Float32()
            elif t.size == 8:
                s = cs.Float64l
            else:
                raise BtfError(path, f"{t.size}-byte float {t.name!r} is not supported")
        elif k in (Kind.ENUM, Kind.ENUM64):
            s = EnumInt(t.size, self.enum_signed(t), self.enum_class(type_id, path))
        elif k is Kind.ARRAY:
            if self.is_char_array(t):
                s = CharArray(t.nelems)
            else:
                # An array with no bytes (x[0], or elements of size 0) holds
                # nothing: it decodes to [] however many elements it declares,
                # so decoding never loops over more elements than bytes.
                count = t.nelems if self.size_of(t.elem, path + "[]") else 0
                s = cs.Array(count, self._schema(t.elem, path + "[]"))
        elif k is Kind.STRUCT:
            s = self._struct_schema(t, path)
        elif k is Kind.UNION:
            s = self._union_schema(t, path)
        elif k is Kind.DATASEC:
            s = self._struct_schema(t, path)
        elif k is Kind.VAR:
            s = self._schema(t.ref, path)
        elif k is Kind.FWD:
            raise BtfError(
                path, f"{self.describe(type_id)} is only declared (forward), not defined"
            )
        else:
            raise BtfError(path, f"{self.describe(type_id)} ({k.name}) is not a data type")
        self._schemas[type_id] = s
        return s

    def _int_schema(self, t: BtfType, path: str) -> cs.Construct[Any, Any]:
        import construct as cs

        from ._constructs import BitField, BoolInt

        check_int_bits(t, path)
        signed = bool(t.int_encoding & INT_SIGNED)
        if t.is_bitfield_int:
            return BitField(t.size, t.int_offset, t.int_bits, signed, consume=True)
        if t.int_encoding & INT_BOOL:
            return BoolInt(t.size)
        fixed = _fixed_ints(signed).get(t.size)
        if fixed is not None:
            return fixed
        if t.size == 16:
            return cs.BytesInteger(16, signed=signed, swapped=True)
        raise BtfError(path, f"{t.size}-byte integer {t.name!r} is not supported")

    def enum_class(self, type_id: int, path: str = "value") -> type[enum.IntEnum]:
        """The IntEnum class for an ENUM/ENUM64 type (one class per type id)."""
        cls = self._enums.get(type_id)
        if cls is None:
            t = self.resolve(type_id)
            name = camel_case(t.name) if t.name else camel_case(path.replace(".", "_")) + "Enum"
            values = self.enum_values(t)
            # Every enumerator name is accepted: names IntEnum reserves or
            # refuses (mro, _missing_, name, value, "", duplicates, ...) get
            # the same Python names typedmaps gen gives them.
            py = Scope(ENUM_RESERVED, lead="E").claim_many([n for n, _ in values])
            members = [(p, v) for p, (_, v) in zip(py, values, strict=True)]
            # A C enum with no enumerators is legal; IntEnum needs a body.
            made = enum.IntEnum(name, members, module=__name__)  # type: ignore[misc]
            cls = cast("type[enum.IntEnum]", made)
            self._enums[type_id] = cls
        return cls

    def layout(self, t: BtfType, path: str = "value") -> list[Slot]:
        """The byte layout of a STRUCT, UNION or DATASEC, in order.

        Structs give :class:`PadSlot` for padding (between members and at the
        tail), :class:`FieldSlot` for members and :class:`BitsSlot` for each
        run of bitfields that share bytes. Unions give one :class:`FieldSlot`
        (offset 0) or :class:`BitsSlot` per member. The schema builder and
        ``typedmaps gen`` both follow this plan.

        Raises:
            BtfError: overlapping or misaligned members, members past the size.
        """
        if t.kind is Kind.UNION:
            return self._union_layout(t, path)
        datasec = t.kind is Kind.DATASEC
        slots: list[Slot] = []
        pos = 0  # bytes laid out so far
        members = t.members
        kflag = t.kflag
        i = 0
        while i < len(members):
            m = members[i]
            bf = None if datasec else self.bitfield(m, kflag)
            if bf is not None:
                # A run: consecutive bitfields sharing bytes, read as one LE integer.
                lo = bf[0] // 8
                hi = (bf[0] + bf[1] + 7) // 8
                run: list[BitSpec] = []
                while i < len(members):
                    b = self.bitfield(members[i], kflag)
                    if b is None or (run and b[0] // 8 >= hi):
                        break
                    name = self.member_name(members, i)
                    if not b[1]:
                        raise BtfError(f"{path}.{name}", "a bitfield of 0 bits holds no value")
                    run.append(BitSpec(name, members[i].type_id, b[0] - lo * 8, b[1]))
                    hi = max(hi, (b[0] + b[1] + 7) // 8)
                    i += 1
                if lo < pos:
                    raise BtfError(
                        f"{path}.{run[0].name}",
                        f"bitfield overlaps the previous member (byte {lo} < {pos})",
                    )
                if lo > pos:
                    slots.append(PadSlot(pos, lo - pos))
                slots.append(BitsSlot(lo, hi - lo, tuple(run)))
                pos = hi
                continue
            name = self.member_name(members, i)
            mpath = f"{path}.{name}"
            if datasec:
                var = self.get(m.type_id)
                name = var.name
                mpath = f"{path}.{name}"
                off_bits = m.bit_offset
                tid = var.ref if var.kind is Kind.VAR else m.type_id
            else:
                off_bits = self.member_offset(m, kflag)
                tid = m.type_id
            if off_bits % 8:
                raise BtfError(mpath, f"member at bit offset {off_bits} is not byte aligned")
            off = off_bits // 8
            if off < pos:
                raise BtfError(
                    mpath, f"member at byte {off} overlaps the previous one (ends at {pos})"
                )
            if off > pos:
                slots.append(PadSlot(pos, off - pos))
            size = self.size_of(tid, mpath)
            slots.append(FieldSlot(name, tid, off, size))
            pos = off + size
            i += 1
        if pos > t.size and not datasec:
            raise BtfError(path, f"members end at byte {pos}, past the size {t.size}")
        if pos < t.size:
            slots.append(PadSlot(pos, t.size - pos))
        return slots

    def _union_layout(self, t: BtfType, path: str) -> list[Slot]:
        slots: list[Slot] = []
        for i, m in enumerate(t.members):
            name = self.member_name(t.members, i)
            mpath = f"{path}.{name}"
            bf = self.bitfield(m, t.kflag)
            if bf is not None:
                off, width = bf
                if not width:
                    raise BtfError(mpath, "a bitfield of 0 bits holds no value")
                nbytes = (off + width + 7) // 8
                if nbytes > t.size:
                    raise BtfError(mpath, f"bitfield runs past the union's {t.size} bytes")
                slots.append(BitsSlot(0, nbytes, (BitSpec(name, m.type_id, off, width),)))
                continue
            off_bits = self.member_offset(m, t.kflag)
            if off_bits:
                raise BtfError(mpath, f"union member at bit offset {off_bits} is not supported")
            size = self.size_of(m.type_id, mpath)
            if size > t.size:
                raise BtfError(mpath, f"member of {size} bytes exceeds the union's {t.size}")
            slots.append(FieldSlot(name, m.type_id, 0, size))
        return slots

    def _struct_schema(self, t: BtfType, path: str) -> cs.Struct:
        import construct as cs

        from ._constructs import OverlayEnd

        subcons: list[cs.Construct[Any, Any]] = []
        for slot in self.layout(t, path):
            if isinstance(slot, PadSlot):
                subcons.append(cs.Padding(slot.size))
            elif isinstance(slot, FieldSlot):
                subcons.append(slot.name / self._schema(slot.type_id, f"{path}.{slot.name}"))
            else:
                for f in slot.fields:
                    bitf = self._bitfield(f, slot.nbytes, f"{path}.{f.name}")
                    subcons.append(f.name / bitf)
                subcons.append(OverlayEnd(slot.nbytes))
        return cs.Struct(*subcons)

    def bitfield_kind(self, type_id: int, width: int, path: str) -> tuple[str, bool]:
        """How a bitfield of base type ``type_id`` decodes: ("int"|"enum"|"bool", signed).

        Raises:
            BtfError: the base type cannot hold a bitfield.
        """
        base = self.resolve(type_id)
        if base.kind in (Kind.ENUM, Kind.ENUM64):
            return "enum", self.enum_signed(base)
        if base.kind is Kind.INT:
            if base.int_encoding & INT_BOOL and width == 1:
                return "bool", False
            return "int", bool(base.int_encoding & INT_SIGNED)
        raise BtfError(path, f"bitfield of {self.describe(type_id)} is not supported")

    def _bitfield(
        self, f: BitSpec, nbytes: int, path: str, *, consume: bool = False
    ) -> BitField[Any]:
        from ._constructs import BitField

        kind, signed = self.bitfield_kind(f.type_id, f.width, path)
        if kind == "enum":
            cls = self.enum_class(self.resolve(f.type_id).id, path)
            return BitField(nbytes, f.shift, f.width, signed, enum=cls, consume=consume)
        if kind == "bool":
            return BitField(nbytes, f.shift, f.width, False, boolean=True, consume=consume)
        return BitField(nbytes, f.shift, f.width, signed, consume=consume)

    def _union_schema(self, t: BtfType, path: str) -> cs.Struct:
        import construct as cs

        from ._constructs import OverlayEnd, UnionMember

        subcons: list[cs.Construct[Any, Any]] = []
        for slot in self.layout(t, path):
            member: UnionMember[Any]
            if isinstance(slot, BitsSlot):
                f = slot.fields[0]
                bitf = self._bitfield(f, slot.nbytes, f"{path}.{f.name}", consume=True)
                member = UnionMember(bitf, _bits_mask(f.shift, f.width))
                name = f.name
            elif isinstance(slot, FieldSlot):
                name = slot.name
                sub = self._schema(slot.type_id, f"{path}.{name}")
                member = UnionMember(sub, self.mask(slot.type_id))
            else:  # pragma: no cover - unions have no padding slots
                continue
            subcons.append(name / cs.Default(member, None))
        subcons.append(OverlayEnd(t.size))
        return cs.Struct(*subcons)

    def mask(self, type_id: int) -> int:
        """The bits of a type that carry data, as a little-endian int over its bytes.

        Padding bits are 0. Decoding then encoding reproduces exactly these bits.
        """
        cached = self._masks.get(type_id)
        if cached is not None:
            return cached
        t = self.resolve(type_id)
        k = t.kind
        if k is Kind.INT:
            m = (
                _bits_mask(t.int_offset, t.int_bits)
                if t.is_bitfield_int
                else (1 << (8 * t.size)) - 1
            )
        elif k in (Kind.PTR, Kind.FLOAT, Kind.ENUM, Kind.ENUM64):
            m = (1 << (8 * self.size_of(t.id))) - 1
        elif k is Kind.ARRAY:
            esz = self.size_of(t.elem)
            m = 0
            if esz and t.nelems:
                # the element's mask repeated nelems times, esz bytes apart: a
                # geometric series, so no loop over the elements
                stride = 8 * esz
                m = self.mask(t.elem) * (((1 << (stride * t.nelems)) - 1) // ((1 << stride) - 1))
        elif k in (Kind.STRUCT, Kind.UNION):
            m = 0
            for mem in t.members:
                bf = self.bitfield(mem, t.kflag)
                if bf is not None:
                    m |= _bits_mask(*bf)
                else:
                    m |= self.mask(mem.type_id) << self.member_offset(mem, t.kflag)
        elif k is Kind.DATASEC:
            m = 0
            for mem in t.members:
                var = self.get(mem.type_id)
                m |= self.mask(var.ref) << mem.bit_offset
        else:
            m = 0
        self._masks[type_id] = m
        return m


def _fixed_ints(signed: bool) -> dict[int, cs.Construct[int, int]]:
    """construct's little-endian integers by size."""
    import construct as cs

    if signed:
        return {1: cs.Int8sl, 2: cs.Int16sl, 4: cs.Int32sl, 8: cs.Int64sl}
    return {1: cs.Int8ul, 2: cs.Int16ul, 4: cs.Int32ul, 8: cs.Int64ul}


def check_int_bits(t: BtfType, path: str) -> None:
    """Refuse an INT of 0 bits (the kernel accepts one): it has no value to read or write."""
    if t.int_bits == 0:
        raise BtfError(path, f"integer type {t.name!r} (id {t.id}) has 0 bits: it holds no value")


def _void(path: str) -> cs.Construct[Any, Any]:
    raise BtfError(path, "void has no layout")


def camel_case(name: str) -> str:
    """``wide_key`` -> ``WideKey``; ``__u32`` -> ``U32``; keeps digits and inner capitals."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    if not out:
        return "Anon"
    if out[0].isdigit():
        out = "T" + out
    return out
