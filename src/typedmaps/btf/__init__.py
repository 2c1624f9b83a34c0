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

import importlib
from typing import TYPE_CHECKING

from ._btf import Btf, camel_case
from ._maps import (
    flexible_member,
    iter_types,
    map_btf,
    map_schemas,
    map_types,
    named_schema,
    named_type,
    object_btf,
)
from ._types import (
    MODIFIERS,
    POINTER_SIZE,
    BitSpec,
    BitsSlot,
    BtfEnumerator,
    BtfError,
    BtfMember,
    BtfType,
    FieldSlot,
    Kind,
    MapDef,
    PadSlot,
    Slot,
    c_string,
)

# The constructs and records import construct: loaded on first use (PEP 562),
# so that reading BTF and formatting it (typedmaps dump) does not pay for
# construct. A new name of _constructs or _records goes here and in the
# TYPE_CHECKING imports below.
_LAZY = {
    "BitField": "_constructs",
    "BoolInt": "_constructs",
    "CharArray": "_constructs",
    "EnumInt": "_constructs",
    "FastLeaf": "_constructs",
    "Float32": "_constructs",
    "OverlayEnd": "_constructs",
    "UnionMember": "_constructs",
    "UnionRecord": "_constructs",
    "CharBytes": "_records",
    "FrozenDataclassStruct": "_records",
    "ListArray": "_records",
    "OpenIntEnum": "_records",
    "TupleArray": "_records",
}

if TYPE_CHECKING:
    from ._constructs import (
        BitField,
        BoolInt,
        CharArray,
        EnumInt,
        FastLeaf,
        Float32,
        OverlayEnd,
        UnionMember,
        UnionRecord,
    )
    from ._records import CharBytes, FrozenDataclassStruct, ListArray, OpenIntEnum, TupleArray
else:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


__all__ = [
    "MODIFIERS",
    "POINTER_SIZE",
    "BitField",
    "BitSpec",
    "BitsSlot",
    "BoolInt",
    "Btf",
    "BtfEnumerator",
    "BtfError",
    "BtfMember",
    "BtfType",
    "CharArray",
    "CharBytes",
    "EnumInt",
    "FastLeaf",
    "FieldSlot",
    "Float32",
    "FrozenDataclassStruct",
    "Kind",
    "ListArray",
    "MapDef",
    "OpenIntEnum",
    "OverlayEnd",
    "PadSlot",
    "Slot",
    "TupleArray",
    "UnionMember",
    "UnionRecord",
    "c_string",
    "camel_case",
    "flexible_member",
    "iter_types",
    "map_btf",
    "map_schemas",
    "map_types",
    "named_schema",
    "named_type",
    "object_btf",
]
