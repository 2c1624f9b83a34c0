"""BTF: the C layout of a map's key and value, turned into construct schemas.

Every BPF object built with ``clang -g`` carries BTF, and the kernel keeps it
with each map it loads (``MapInfo.btf_id``, ``btf_key_type_id``,
``btf_value_type_id``). This module reads that type information and builds
a construct schema for any key or value type, so a map can be read without
its C source::

    key_schema, value_schema = typedmaps.btf.map_schemas(handle)
    auto = typedmaps.typed(handle)          # does the same, and picks the wrapper

How BTF is read
    libbpf loads it (``btf__load_from_kernel_by_id`` for a map's BTF,
    ``btf__parse`` for an object or raw file, ``btf__new`` for bytes, which
    also validates them); typedmaps copies the raw blob out with
    ``btf__raw_data`` and frees the libbpf object at once. Everything else,
    ``struct btf_type`` and the records after it, is decoded here in Python:
    the ``btf_kind()``/``btf_members()`` helpers are static inline in
    libbpf's btf.h and cannot be called in cffi ABI mode. The loading goes
    through the binding's ``_ffi.btf_raw()``: this module never sees cdata.

How C types map to Python values (decode -> encode gives the same bytes)
    - integers of 1, 2, 4, 8 and 16 bytes: ``int`` (sign from the encoding).
    - ``_Bool``: ``bool``; a byte other than 0 or 1 (which C never stores)
      decodes to its ``int`` so that it is written back unchanged.
    - ``char`` arrays (element a 1-byte INT named ``char`` or with the CHAR
      encoding; const/volatile skipped, typedefs not, as bpftool does):
      ``str`` when the bytes before the first NUL are printable ASCII and
      every byte after it is zero, so that encoding the text and zero-filling
      reproduces the array; otherwise the raw ``bytes``. Encoding takes
      either: text (UTF-8) or bytes of at most the array's length,
      zero-filled.
    - other arrays: ``list`` (nested lists for multi-dimensional arrays).
    - structs: construct ``Container`` by member name. Padding between
      members and at the tail is explicit and encodes as zeros. Anonymous
      members (``struct { ... };`` inside a struct) are named ``anon0``,
      ``anon1``, ... in declaration order (with ``_`` appended on a clash).
    - unions: a ``Container`` with every member decoded from the same bytes.
      Encoding writes each member that is given (not None), each only over
      the bits it covers (its padding does not clobber other members), and
      zero-fills the rest; given members that disagree on a shared bit are
      a CodecError. So a decoded union encodes back to the same bytes, and
      ``{"word": 5}`` alone sets just that member.
    - enums and 64-bit enums: the enumerator as a member of an
      ``enum.IntEnum`` built from the BTF (one class per type), or a plain
      ``int`` when no enumerator matches. Signed when the BTF kflag says so;
      BTF without kflag signedness (clang < 15) stores values as the
      original spec's ``__s32``, so such an enum is signed when one of its
      values is negative. Encoding accepts an int (signed or unsigned form)
      or an enumerator name.
    - bitfields (x86 little-endian layout, kflag=1 member offsets or the
      older kflag=0 INT encoding form): ``int`` (sign-extended when the
      base type is signed), the enum member for enum bitfields, ``bool``
      for 1-bit bool bitfields. A run of bitfields that share bytes is read
      as one little-endian integer over the bytes it covers, which also
      handles runs that cross storage units; bits no field covers are
      padding.
    - typedef, const, volatile, restrict, type_tag: the type they name.
    - float and double: ``float`` (a float NaN keeps its exact bits).
    - pointers: ``int`` of pointer size (8 bytes).
    Anything else (function prototypes, flexible arrays, forward
    declarations) raises :class:`BtfError` naming the field path, such as
    ``value.hdr.data[]``.

Speed
    The leaf constructs (:class:`CharArray`, :class:`BoolInt`,
    :class:`EnumInt`, :class:`Float32`, and a :class:`BitField` that stands
    alone) define ``typedmaps_fast_leaf()``, the hook by which
    ``typedmaps.codec`` puts a construct of its own into a record's fast
    plan; a record made of them and of plain construct parts is encoded
    and decoded by generated code, with the same results and errors as
    parsing and building it. A union or a run of bitfields keeps its
    record on construct: their members (:class:`UnionMember`, a
    :class:`BitField` in a run, :class:`OverlayEnd`) read bytes their
    siblings share without moving, and the hook gives one struct item to
    one field only.
"""

from __future__ import annotations

import enum
import io
import math
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, cast, overload

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct
from construct_typed.generic_wrapper import Construct

from . import _ffi
from .errors import CodecError, SizeMismatchError
from .flags import MapType

if TYPE_CHECKING:
    from .handle import MapHandle

__all__ = [
    "BitField",
    "BoolInt",
    "Btf",
    "BtfEnumerator",
    "BtfError",
    "BtfMember",
    "BtfType",
    "CharArray",
    "EnumInt",
    "Float32",
    "Kind",
    "MapDef",
    "OverlayEnd",
    "UnionMember",
    "UnionRecord",
    "map_schemas",
]

E = TypeVar("E", bound=enum.IntEnum)
D = TypeVar("D", bound=DataclassMixin)
T = TypeVar("T")

#: Pointer size of the BPF target and of 64-bit kernels.
POINTER_SIZE: Final = 8
_MAGIC: Final = 0xEB9F
_HDR = struct.Struct("<HBBIIIII")
_HDR_BE = struct.Struct(">HBBIIIII")

INT_SIGNED: Final = 1
INT_CHAR: Final = 2
INT_BOOL: Final = 4


class Kind(enum.IntEnum):
    """BTF_KIND_* from linux/btf.h."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


#: Kinds that only qualify or rename another type.
MODIFIERS: Final = frozenset(
    {Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
)


class BtfError(CodecError):
    """BTF is missing or malformed, or describes a type typedmaps cannot encode.

    A :class:`~typedmaps.CodecError` (so a ``ValueError``): ``path`` names
    the field, e.g. ``"value.hdr.data[]"``, and ``reason`` says why.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, None, reason)
        self.args = (f"{path}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class BtfMember:
    """One member of a STRUCT or UNION (or a VAR of a DATASEC, as a member).

    Attributes:
        name: the member name, "" for an anonymous member.
        type_id: the member's type.
        bit_offset: offset from the start of the record, in bits.
        bitfield_size: width in bits for a bitfield (kflag=1 form), else 0.
    """

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class BtfEnumerator:
    """One enumerator; ``raw`` is the stored value (u32 for ENUM, u64 for ENUM64)."""

    name: str
    raw: int


@dataclass(frozen=True, slots=True)
class BtfType:
    """One decoded ``struct btf_type`` and the records that follow it.

    Attributes:
        id: the type id (0 is void).
        kind: the BTF kind.
        name: the type name, "" when anonymous.
        size: byte size (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC).
        ref: the referenced type (PTR, TYPEDEF, modifiers, FUNC, VAR,
            DECL_TAG; the return type of a FUNC_PROTO).
        vlen: the number of trailing records.
        kflag: the kind flag bit.
        int_encoding, int_offset, int_bits: an INT's encoding word.
        elem, index, nelems: an ARRAY's element type, index type and length.
        members: STRUCT/UNION members; DATASEC entries as members (the
            VAR id as type, the offset in bits).
        enumerators: ENUM/ENUM64 values.
        params: FUNC_PROTO parameters as (name, type id).
        linkage: VAR/FUNC linkage; DECL_TAG component index.
    """

    id: int
    kind: Kind
    name: str
    size: int = 0
    ref: int = 0
    vlen: int = 0
    kflag: bool = False
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    elem: int = 0
    index: int = 0
    nelems: int = 0
    members: tuple[BtfMember, ...] = ()
    enumerators: tuple[BtfEnumerator, ...] = ()
    params: tuple[tuple[str, int], ...] = ()
    linkage: int = 0

    @property
    def is_bitfield_int(self) -> bool:
        """An INT whose value does not fill its bytes (the kflag=0 bitfield form)."""
        return self.kind is Kind.INT and (self.int_offset != 0 or self.int_bits != self.size * 8)


@dataclass(frozen=True, slots=True)
class MapDef:
    """A map declared in an object file's ``.maps`` section (BTF-defined map).

    Attributes:
        name: the map's C variable name.
        map_type: the ``type`` field (a MapType when known, else the number).
        key_type_id, value_type_id: BTF type ids, 0 when only a size is given.
        key_size, value_size: byte sizes (from the types or ``*_size``).
        max_entries, map_flags: as declared (0 when not).
    """

    name: str
    map_type: MapType | int
    key_type_id: int
    value_type_id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int


@dataclass(frozen=True, slots=True)
class PadSlot:
    """``size`` bytes of padding at byte ``offset``: no member covers them."""

    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class FieldSlot:
    """A member (or a DATASEC variable) of ``size`` bytes at byte ``offset``."""

    name: str
    type_id: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BitSpec:
    """One bitfield of a run: ``width`` bits at ``shift`` bits from the run's first byte."""

    name: str
    type_id: int
    shift: int
    width: int


@dataclass(frozen=True, slots=True)
class BitsSlot:
    """A run of bitfields over ``nbytes`` bytes from byte ``offset``, read as one LE int."""

    offset: int
    nbytes: int
    fields: tuple[BitSpec, ...]


Slot = PadSlot | FieldSlot | BitsSlot


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
    def from_file(cls, path: str | os.PathLike[str]) -> Btf:
        """Load BTF from an ELF object (its ``.BTF`` section) or a raw BTF file.

        Raises:
            MapError: the file cannot be read or has no BTF (errno from libbpf).
        """
        p = os.fsencode(path)
        op = f"load BTF from {os.fsdecode(p)}"
        raw = _ffi.btf_raw("file", p, op)
        return cls.parse(raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        """Load raw BTF bytes through libbpf's ``btf__new``, which validates them.

        Raises:
            MapError: libbpf rejects the bytes (EINVAL and friends).
        """
        blob = bytes(data)
        raw = _ffi.btf_raw("bytes", blob, "load BTF bytes")
        return cls.parse(raw)

    @classmethod
    def parse(cls, data: bytes) -> Btf:
        """Decode raw BTF (header, type section, string section) in Python.

        Raises:
            BtfError: bad magic, truncated sections, or unknown kinds.
        """
        if len(data) < _HDR.size:
            raise BtfError("btf", f"{len(data)} bytes are too short for a BTF header")
        hdr = _HDR.unpack_from(data)
        order = "<"
        if hdr[0] != _MAGIC:
            hdr = _HDR_BE.unpack_from(data)
            order = ">"
            if hdr[0] != _MAGIC:
                raise BtfError("btf", f"bad magic {data[:2].hex()}: not BTF")
        _, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = hdr
        t0 = hdr_len + type_off
        s0 = hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise BtfError("btf", "type or string section runs past the end of the data")
        strings = data[s0 : s0 + str_len]
        types = _decode_types(data[t0 : t0 + type_len], strings, order)
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

    def describe(self, type_id: int) -> str:
        """A C-like name for messages: ``struct wide_key``, ``__u32``, ``char[16]``."""
        if type_id == 0:
            return "void"
        t = self.get(type_id)
        k = t.kind
        if k is Kind.ARRAY:
            dims = ""
            while t.kind is Kind.ARRAY:
                dims += f"[{t.nelems}]"
                t = self.get(t.elem)
            return self.describe(t.id) + dims
        if k is Kind.PTR:
            return f"{self.describe(t.ref)} *"
        if k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            return f"{k.name.lower()} {self.describe(t.ref)}"
        if k is Kind.TYPE_TAG:
            return self.describe(t.ref)
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
        schema = self._schema(type_id, path)
        if size is not None:
            got = self.size_of(type_id, path)
            if got != size:
                raise SizeMismatchError(
                    f"{path} type {self.describe(type_id)} from BTF",
                    got,
                    size,
                    "the map and its BTF disagree",
                )
        return schema

    def _schema(self, type_id: int, path: str) -> cs.Construct[Any, Any]:
        cached = self._schemas.get(type_id)
        if cached is not None:
            return cached
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
            if t.nelems == 0:
                raise BtfError(
                    path + "[]", "a flexible (zero-length) array has no fixed size: not supported"
                )
            if self.is_char_array(t):
                s = CharArray(t.nelems)
            else:
                s = cs.Array(t.nelems, self._schema(t.elem, path + "[]"))
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
        signed = bool(t.int_encoding & INT_SIGNED)
        if t.is_bitfield_int:
            return BitField(t.size, t.int_offset, t.int_bits, signed, consume=True)
        if t.int_encoding & INT_BOOL:
            return BoolInt(t.size)
        fixed = (_SIGNED_INTS if signed else _UNSIGNED_INTS).get(t.size)
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
            members = [(n, v) for n, v in values]
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
        kind, signed = self.bitfield_kind(f.type_id, f.width, path)
        if kind == "enum":
            cls = self.enum_class(self.resolve(f.type_id).id, path)
            return BitField(nbytes, f.shift, f.width, signed, enum=cls, consume=consume)
        if kind == "bool":
            return BitField(nbytes, f.shift, f.width, False, boolean=True, consume=consume)
        return BitField(nbytes, f.shift, f.width, signed, consume=consume)

    def _union_schema(self, t: BtfType, path: str) -> cs.Struct:
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
            em = self.mask(t.elem)
            m = 0
            for i in range(t.nelems):
                m |= em << (8 * esz * i)
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


_UNSIGNED_INTS: Final[dict[int, cs.Construct[int, int]]] = {
    1: cs.Int8ul,
    2: cs.Int16ul,
    4: cs.Int32ul,
    8: cs.Int64ul,
}
_SIGNED_INTS: Final[dict[int, cs.Construct[int, int]]] = {
    1: cs.Int8sl,
    2: cs.Int16sl,
    4: cs.Int32sl,
    8: cs.Int64sl,
}


def _void(path: str) -> cs.Construct[Any, Any]:
    raise BtfError(path, "void has no layout")


def _bits_mask(offset: int, width: int) -> int:
    return ((1 << width) - 1) << offset


def camel_case(name: str) -> str:
    """``wide_key`` -> ``WideKey``; ``__u32`` -> ``U32``; keeps digits and inner capitals."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    if not out:
        return "Anon"
    if out[0].isdigit():
        out = "T" + out
    return out


# ---------------------------------------------------------------------------- raw decoding

_U32 = struct.Struct("<I")


def _decode_types(sec: bytes, strings: bytes, order: str) -> list[BtfType]:
    u32 = struct.Struct(order + "I")
    trip = struct.Struct(order + "III")
    pair = struct.Struct(order + "II")

    def name_at(off: int) -> str:
        if off >= len(strings):
            raise BtfError("btf", f"name offset {off} is past the string section")
        end = strings.find(b"\0", off)
        if end < 0:
            end = len(strings)
        return strings[off:end].decode("utf-8", "replace")

    types = [BtfType(0, Kind.UNKN, "void")]
    pos = 0
    n = len(sec)
    while pos < n:
        if pos + 12 > n:
            raise BtfError("btf", f"truncated type record at offset {pos}")
        name_off, info, size_or_type = trip.unpack_from(sec, pos)
        pos += 12
        tid = len(types)
        try:
            kind = Kind((info >> 24) & 0x1F)
        except ValueError:
            raise BtfError(
                "btf", f"type id {tid}: unknown BTF kind {(info >> 24) & 0x1F}"
            ) from None
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = name_at(name_off)
        common: dict[str, Any] = {"vlen": vlen, "kflag": kflag}

        if kind is Kind.INT:
            _need(pos, 4, n, tid)
            (enc,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(
                tid,
                kind,
                name,
                size=size_or_type,
                int_encoding=(enc >> 24) & 0x0F,
                int_offset=(enc >> 16) & 0xFF,
                int_bits=enc & 0xFF,
                **common,
            )
        elif kind is Kind.ARRAY:
            _need(pos, 12, n, tid)
            elem, index, nelems = trip.unpack_from(sec, pos)
            pos += 12
            t = BtfType(tid, kind, name, elem=elem, index=index, nelems=nelems, **common)
        elif kind in (Kind.STRUCT, Kind.UNION):
            _need(pos, 12 * vlen, n, tid)
            members = []
            for _ in range(vlen):
                mname, mtype, moff = trip.unpack_from(sec, pos)
                pos += 12
                bsize = (moff >> 24) if kflag else 0
                members.append(BtfMember(name_at(mname), mtype, moff, bsize))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(members), **common)
        elif kind is Kind.ENUM:
            _need(pos, 8 * vlen, n, tid)
            enums = []
            for _ in range(vlen):
                ename, val = pair.unpack_from(sec, pos)
                pos += 8
                enums.append(BtfEnumerator(name_at(ename), val))
            t = BtfType(tid, kind, name, size=size_or_type, enumerators=tuple(enums), **common)
        elif kind is Kind.ENUM64:
            _need(pos, 12 * vlen, n, tid)
            enums = []
            for _ in range(vlen):
                ename, lo, hi = trip.unpack_from(sec, pos)
                pos += 12
                enums.append(BtfEnumerator(name_at(ename), (hi << 32) | lo))
            t = BtfType(tid, kind, name, size=size_or_type, enumerators=tuple(enums), **common)
        elif kind is Kind.FUNC_PROTO:
            _need(pos, 8 * vlen, n, tid)
            params = []
            for _ in range(vlen):
                pname, ptype = pair.unpack_from(sec, pos)
                pos += 8
                params.append((name_at(pname), ptype))
            t = BtfType(tid, kind, name, ref=size_or_type, params=tuple(params), **common)
        elif kind is Kind.VAR:
            _need(pos, 4, n, tid)
            (linkage,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=linkage, **common)
        elif kind is Kind.DATASEC:
            _need(pos, 12 * vlen, n, tid)
            entries = []
            for _ in range(vlen):
                vtype, voff, _vsize = trip.unpack_from(sec, pos)
                pos += 12
                entries.append(BtfMember("", vtype, voff * 8, 0))
            t = BtfType(tid, kind, name, size=size_or_type, members=tuple(entries), **common)
        elif kind is Kind.DECL_TAG:
            _need(pos, 4, n, tid)
            (component,) = u32.unpack_from(sec, pos)
            pos += 4
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=component, **common)
        elif kind is Kind.FLOAT:
            t = BtfType(tid, kind, name, size=size_or_type, **common)
        else:  # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, TYPE_TAG, UNKN
            t = BtfType(tid, kind, name, ref=size_or_type, linkage=vlen, **common)
        types.append(t)
    return types


def _need(pos: int, nbytes: int, total: int, tid: int) -> None:
    if pos + nbytes > total:
        raise BtfError("btf", f"type id {tid}: truncated trailing data")


# ---------------------------------------------------------------------------- constructs

#: What a ``typedmaps_fast_leaf()`` hook returns (see typedmaps.codec.FAST_LEAF_HOOK):
#: one struct item, a function from the unpacked item to the parsed value, and a
#: function from a value to the item to pack. The codec calls the hook once per
#: schema and compiles the functions into the record's generated code.
FastLeaf = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None]

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


def c_string(data: bytes, *, strict: bool) -> str | None:
    """The text of a C char array, or None when it is not printable text.

    ``strict=False`` is bpftool's rule (printable up to a NUL, anything
    after it ignored; no NUL at all is not a string); ``strict=True`` also
    needs zeros after the NUL, and accepts a full array without one.
    """
    cut = data.find(0)
    head = data if cut < 0 else data[:cut]
    if cut < 0 and not strict:
        return None
    if strict and cut >= 0 and any(data[cut:]):
        return None
    if all(0x20 <= b < 0x7F for b in head):
        return head.decode("ascii")
    return None


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


class EnumInt(Construct[E | int, E | int | str], Generic[E]):
    """A C enum stored in ``size`` bytes: decodes to the ``enum`` member, or an int.

    Encodes an enumerator, an int in the signed or unsigned range of the
    size, or an enumerator's name.
    """

    def __init__(self, size: int, signed: bool, enum: type[E]) -> None:
        super().__init__()
        self.size = size
        self.signed = signed
        self.enum = enum

    def _parse(self, stream: Any, context: Any, path: Any) -> E | int:
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
    claims: dict[tuple[int, int], int] = context.get("_tm_claims")
    if claims is None:
        claims = {}
        context["_tm_claims"] = claims
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


def UnionRecord(dc_type: type[D]) -> DataclassStruct[D]:
    """``DataclassStruct`` for a union record (what ``typedmaps gen`` writes for a union).

    Every member of a union record may be None, so construct would treat
    the record as buildable from nothing and construct-typing's ``csfield``
    would refuse it. A union value is still always given: this marks it so.
    """
    s: DataclassStruct[D] = DataclassStruct(dc_type)
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


# ---------------------------------------------------------------------------- maps


def map_btf(handle: MapHandle) -> Btf:
    """The BTF the kernel keeps for a map.

    Raises:
        BtfError: the map has no BTF.
        MapError: loading it failed.
    """
    info = handle.info()
    if not info.btf_id:
        raise BtfError(
            "map",
            f"map {info.name!r} (id {info.id}) has no BTF: pass key= and value= schemas",
        )
    return Btf.from_kernel(info.btf_id)


def map_schemas(
    handle: MapHandle, btf: Btf | None = None
) -> tuple[cs.Construct[Any, Any] | None, cs.Construct[Any, Any]]:
    """Key and value schemas for a map, from the BTF the kernel keeps for it.

    Args:
        handle: an open map (any :class:`~typedmaps.MapHandle`).
        btf: the map's BTF when the caller already loaded it.

    Returns:
        ``(key, value)``: key is None for keyless maps (QUEUE, STACK,
        BLOOM_FILTER). For per-CPU maps the value schema is one CPU's value.
        A map whose BTF names no key type (key type id 0) gets raw
        ``Bytes(key_size)`` keys.

    Raises:
        BtfError: no BTF, a struct_ops map, or an unsupported type (the
            message names the field path, e.g. ``value.hdr.data[]``).
        SizeMismatchError: the BTF type's size differs from the map's.
        MapError: the BTF could not be loaded.
    """
    info = handle.info()
    if info.btf_vmlinux_value_type_id:
        raise BtfError(
            "value", f"map {info.name!r} uses kernel (vmlinux) BTF for its value: not supported"
        )
    if btf is None:
        btf = map_btf(handle)
    if not info.btf_value_type_id:
        raise BtfError("value", f"map {info.name!r} (id {info.id}) has BTF but no value type")
    value = btf.schema(info.btf_value_type_id, "value", size=info.value_size)
    key: cs.Construct[Any, Any] | None
    if info.map_type.is_keyless or info.key_size == 0:
        key = None
    elif info.btf_key_type_id:
        key = btf.schema(info.btf_key_type_id, "key", size=info.key_size)
    else:
        key = cs.Bytes(info.key_size)
    return key, value


def iter_types(btf: Btf, kinds: frozenset[Kind] | None = None) -> Iterator[BtfType]:
    """Every type of ``btf`` (of ``kinds`` when given), in id order."""
    for t in btf.types[1:]:
        if kinds is None or t.kind in kinds:
            yield t
