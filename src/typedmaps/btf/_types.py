"""The BTF model: kinds, the error, and the decoded types, members and layout slots."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import CodecError
from ..flags import MapType

if TYPE_CHECKING:
    pass


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


# ---------------------------------------------------------------------------- helpers


def _bits_mask(offset: int, width: int) -> int:
    return ((1 << width) - 1) << offset


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
