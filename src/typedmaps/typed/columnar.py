"""Columnar reads and writes: a keyed typed map as a numpy structured array.

:meth:`TypedMap.to_numpy` reads a whole map into one structured ndarray
whose dtype comes from the key and value schemas; ``update_batch`` takes
such an array back, :meth:`TypedMap.from_numpy` makes a new map from one,
and ``to_arrow`` / ``to_pandas`` go through it. numpy, pyarrow and pandas
are optional: each method says which extra to install
(:class:`~typedmaps.ExtraNotInstalledError`), and nothing here is imported
until one of them is called.

The array
    One record per element, with two fields: ``key`` and ``value``, each
    with the dtype of its schema, at offsets 0 and key_size (the record is
    key_size + value_size bytes, or key_size + ncpus * value_size for
    per-CPU maps, whose ``value`` field has shape ``(ncpus,)``: one value
    per possible CPU, index = CPU). ``arr["key"]["saddr"]``,
    ``arr["value"]["bytes"].sum()``.

How schemas become dtypes (offsets and padding exact; ``itemsize`` is
always the schema's size)
    - integers of 1, 2, 4, 8 bytes (FormatField, BytesInteger, BTF ints and
      enums): ``u1``..``u8`` / ``i1``..``i8`` in the schema's byte order;
      enums (Enum, TEnum, FlagsEnum, TFlagsEnum, BTF enums) as that integer;
    - floats (Float16/32/64, BTF float and double): ``f2``/``f4``/``f8``;
    - ``Flag`` and a 1-byte ``_Bool``: ``?`` (wider BTF bools: their unsigned
      integer);
    - char arrays, ``PaddedString``, ``Bytes``: ``S<n>`` (numpy drops
      trailing NUL bytes when it hands out one item; the array's memory
      keeps every byte, so a round trip through ``update_batch`` is exact);
    - ``Struct``, ``DataclassStruct`` and BTF structs: a nested structured
      dtype with each member at its offset, padding as gaps; BTF unions: a
      nested dtype whose members overlap at offset 0;
    - ``Array`` and C arrays: subarray dtypes (nested arrays: one
      multi-dimensional subarray);
    - ``Const``, ``Default``, ``Padded``, ``Aligned``, ``Renamed``: the
      inner dtype (Const values are checked on write).

What has no dtype: bitfields (numpy addresses bytes, not bits), 128-bit and
other odd-sized integers (``BytesInteger(16)``, ``Int24ul``),
``BitsInteger``, and any other adapter or construct whose bytes do not
mean one numpy type (``ExprAdapter``, a user's own Adapter, ...). Asking
for the dtype of a map with one raises :class:`~typedmaps.DtypeError`
naming the field and why; such a map is still fully usable through
``items()``.

Speed and memory
    ``to_numpy()`` allocates the result once, for max_entries records
    (untouched pages cost no memory), and fills it chunk by chunk from
    BPF_MAP_LOOKUP_BATCH buffers the kernel writes straight into (4096
    elements a syscall), one memcpy per element and field with no Python
    work per element; a map that holds far fewer elements than max_entries
    is copied once into an array of its size. ``update_batch(array)`` checks
    every record first, then packs 4096 keys and values at a time into two
    reused buffers (one memcpy per element and field, padding masked over
    the whole buffer) and writes each batch with one BPF_MAP_UPDATE_BATCH:
    the buffers stay in the cache, which costs less than one syscall over
    a copy of the whole array.
"""

from __future__ import annotations

import codecs
import errno
import importlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import construct as cs
from construct_typed import DataclassStruct, TEnum, TFlagsEnum

from ..btf._constructs import (
    BitField,
    BoolInt,
    CharArray,
    EnumInt,
    Float32,
    OverlayEnd,
    UnionMember,
)
from ..errors import (
    ArgumentError,
    BatchError,
    CodecError,
    DtypeError,
    ExtraNotInstalledError,
    IterationAbortedError,
    NotSupportedError,
)
from ..flags import MapType
from ..handle import MapHandle

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ..codec import Codec
    from ._base import _KeyedMap

__all__ = [
    "MapLayout",
    "dtype_of",
    "layout",
    "schema_of",
    "to_arrow",
    "to_numpy",
    "to_pandas",
    "update_batch",
]

#: Adapters whose bytes are exactly their subcon's (the value is a name or a flag set).
_INT_ADAPTERS: Final = (cs.Enum, cs.FlagsEnum, cs.Mapping, TEnum, TFlagsEnum)
#: FormatField items that have a numpy type: struct code -> numpy kind.
_FORMAT_KINDS: Final = {
    "b": "i",
    "B": "u",
    "h": "i",
    "H": "u",
    "i": "i",
    "I": "u",
    "l": "i",
    "L": "u",
    "q": "i",
    "Q": "u",
    "n": "i",
    "N": "u",
    "e": "f",
    "f": "f",
    "d": "f",
    "?": "b",
}
_ORDERS: Final = {"<": "<", ">": ">", "!": ">", "=": "=", "@": "="}


def _import(module: str, extra: str, feature: str) -> Any:
    """Import an optional dependency, or raise ExtraNotInstalledError naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtraNotInstalledError(feature, module, extra) from exc


def numpy_module(feature: str) -> Any:
    """numpy, or ExtraNotInstalledError saying ``pip install 'typedmaps[numpy]'``."""
    return _import("numpy", "numpy", feature)


# ---------------------------------------------------------------------------- schema -> dtype


@dataclass
class _Regions:
    """What a dtype cannot say about a record's bytes, for writing it back.

    ``mask`` has 0xFF where a field holds the byte; ``fill`` the bytes the
    schema fixes elsewhere (zeros for padding, the constant of a Const);
    ``encodings`` the fields whose bytes must decode as text, by name, and
    ``texts`` the same as (offset, size, encoding) byte ranges (one per
    array element).
    """

    size: int
    mask: bytearray = field(init=False)
    fill: bytearray = field(init=False)
    encodings: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    texts: list[tuple[int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mask = bytearray(self.size)
        self.fill = bytearray(self.size)

    def cover(self, off: int, size: int) -> None:
        self.mask[off : off + size] = b"\xff" * size

    def fix(self, off: int, data: bytes) -> None:
        self.fill[off : off + len(data)] = data

    @property
    def exact(self) -> bool:
        """Every byte is a field's: the array's bytes go to the kernel as they are."""
        return all(b == 0xFF for b in self.mask)


class _Dtypes:
    """Turns one schema into a numpy dtype, recording its padding, constants and texts."""

    def __init__(self, np: Any, size: int) -> None:
        self.np = np
        self.regions = _Regions(size)

    def dtype(self, sc: Any, path: str, names: tuple[str, ...], off: int) -> Any:
        """The dtype of ``sc`` placed at byte ``off`` of the record (its size is sc.sizeof())."""
        np = self.np
        if isinstance(sc, cs.Renamed | cs.Default):
            return self.dtype(sc.subcon, path, names, off)
        if isinstance(sc, cs.Const):
            dt = self.dtype(sc.subcon, path, names, off)
            data = sc.subcon.build(sc.value)
            self.regions.fix(off, data)
            self.regions.mask[off : off + len(data)] = bytes(len(data))  # written as the constant
            return dt
        if isinstance(sc, DataclassStruct | cs.Struct):
            inner = sc.subcon if isinstance(sc, DataclassStruct) else sc
            return self.struct(inner, path, names, off)
        if isinstance(sc, _INT_ADAPTERS):
            return self.dtype(sc.subcon, path, names, off)
        if isinstance(sc, cs.Array):
            if not isinstance(sc.count, int) or sc.count < 0:
                raise DtypeError(path, "an Array whose count is computed has no fixed shape")
            esize = _sizeof(sc.subcon, path)
            one = _Dtypes(np, esize)
            elem = one.dtype(sc.subcon, path + "[]", names, 0)
            for i in range(sc.count):  # every element's padding, constants and texts
                at = off + i * esize
                self.regions.mask[at : at + esize] = one.regions.mask
                self.regions.fill[at : at + esize] = one.regions.fill
                self.regions.texts += [(at + o, n, e) for o, n, e in one.regions.texts]
            self.regions.encodings += one.regions.encodings
            # nested arrays: one multi-dimensional subarray
            return np.dtype((elem.base, (sc.count, *elem.shape)))
        if isinstance(sc, cs.StringEncoded):
            size = _sizeof(sc, path)
            self.regions.cover(off, size)
            self.regions.encodings.append((names, sc.encoding))
            self.regions.texts.append((off, size, sc.encoding))
            return np.dtype(f"S{size}")
        if isinstance(sc, cs.Bytes | CharArray):
            size = _sizeof(sc, path)
            self.regions.cover(off, size)
            return np.dtype(f"S{size}") if size else np.dtype((np.void, 0))
        dt = self.scalar(sc, path)
        self.regions.cover(off, dt.itemsize)
        return dt

    def scalar(self, sc: Any, path: str) -> Any:
        np = self.np
        if isinstance(sc, cs.FormatField):
            fmt = sc.fmtstr
            order, code = (fmt[0], fmt[1:]) if fmt[0] in _ORDERS else ("@", fmt)
            kind = _FORMAT_KINDS.get(code)
            if kind is None:
                raise DtypeError(path, f"the struct item {fmt!r} has no numpy dtype")
            size = struct.calcsize(fmt)
            if kind == "b":
                return np.dtype("?")
            return np.dtype(f"{_ORDERS[order] if size > 1 else '|'}{kind}{size}")
        if isinstance(sc, cs.BytesInteger):
            n, signed, swapped = sc.length, sc.signed, sc.swapped
            if (
                not isinstance(n, int)
                or not isinstance(swapped, bool)
                or not isinstance(signed, bool)
            ):
                raise DtypeError(path, "a BytesInteger with computed length or order has no dtype")
            if n not in (1, 2, 4, 8):
                raise DtypeError(
                    path, f"a {8 * n}-bit integer has no numpy dtype (1, 2, 4 or 8 bytes)"
                )
            return np.dtype(f"{'<' if swapped else '>'}{'i' if signed else 'u'}{n}")
        if isinstance(sc, EnumInt):
            if sc.size not in (1, 2, 4, 8):
                raise DtypeError(path, f"a {sc.size}-byte enum has no numpy dtype")
            return np.dtype(f"<{'i' if sc.signed else 'u'}{sc.size}")
        if isinstance(sc, BoolInt):
            if sc.size == 1:
                return np.dtype("?")
            if sc.size not in (2, 4, 8):
                raise DtypeError(path, f"a {sc.size}-byte bool has no numpy dtype")
            return np.dtype(f"<u{sc.size}")
        if isinstance(sc, Float32):
            return np.dtype("<f4")
        if isinstance(sc, cs.Flag.__class__):
            return np.dtype("?")
        if isinstance(sc, BitField):
            raise DtypeError(
                path,
                f"a {sc.width}-bit bitfield has no numpy dtype (numpy addresses bytes, not bits)",
            )
        if isinstance(sc, cs.BitsInteger):
            raise DtypeError(
                path, "a BitsInteger has no numpy dtype (numpy addresses bytes, not bits)"
            )
        raise DtypeError(path, f"{type(sc).__name__} has no numpy dtype equivalent")

    def struct(self, sc: cs.Struct, path: str, names: tuple[str, ...], off: int) -> Any:
        np = self.np
        fields: dict[str, tuple[Any, int]] = {}
        pos = 0
        for sub in sc.subcons:
            name = sub.name
            inner = sub
            while isinstance(inner, cs.Renamed | cs.Default):
                inner = inner.subcon
            if isinstance(inner, OverlayEnd):
                pos += inner.nbytes
                continue
            fpath = f"{path}.{name}"
            if isinstance(inner, BitField):
                raise DtypeError(fpath, _bits_reason(inner.width))
            if isinstance(inner, UnionMember):  # a union's member: at the union's start, no move
                if name is None:
                    raise DtypeError(path, "an unnamed union member has no field")
                dt = self.dtype(inner.subcon, fpath, (*names, name), off + pos)
                self._add(fields, name, dt, pos, path)
                continue
            size = _sizeof(inner, fpath)
            if name is None or _is_padding(inner):
                if isinstance(inner, cs.Const):
                    self.regions.fix(off + pos, inner.subcon.build(inner.value))
                elif not _is_padding(inner):
                    raise DtypeError(
                        path, f"an unnamed {type(inner).__name__} has no field to hold it"
                    )
                pos += size
                continue
            if isinstance(inner, cs.Padded | cs.Aligned) and not _is_padding(inner):
                dt = self.dtype(inner.subcon, fpath, (*names, name), off + pos)
            else:
                dt = self.dtype(inner, fpath, (*names, name), off + pos)
            self._add(fields, name, dt, pos, path)
            pos += size
        return np.dtype(
            {
                "names": list(fields),
                "formats": [f[0] for f in fields.values()],
                "offsets": [f[1] for f in fields.values()],
                "itemsize": _sizeof(sc, path),
            }
        )

    @staticmethod
    def _add(fields: dict[str, tuple[Any, int]], name: str, dt: Any, pos: int, path: str) -> None:
        if not isinstance(name, str) or not name:
            raise DtypeError(path, f"field name {name!r} cannot name a numpy field")
        if name in fields:
            raise DtypeError(path, f"two fields are named {name!r}")
        fields[name] = (dt, pos)


def _bits_reason(width: int) -> str:
    return f"a {width}-bit bitfield has no numpy dtype (numpy addresses bytes, not bits)"


def _is_padding(sc: Any) -> bool:
    return (isinstance(sc, cs.Padded) and isinstance(sc.subcon, type(cs.Pass))) or isinstance(
        sc, type(cs.Pass) | cs.Computed
    )


def _sizeof(sc: Any, path: str) -> int:
    try:
        return int(sc.sizeof())
    except (cs.SizeofError, TypeError, KeyError, AttributeError) as exc:
        raise DtypeError(path, f"{type(sc).__name__} has no fixed size") from exc


def dtype_of(schema: cs.Construct[Any, Any] | Codec[Any], what: str = "value") -> np.dtype[Any]:
    """The numpy dtype of one key or value schema (a construct or a Codec).

    Raises:
        DtypeError: a part with no dtype equivalent (the path names it).
        ExtraNotInstalledError: numpy is not installed.
    """
    dt: np.dtype[Any] = _layout_of(numpy_module("dtype_of()"), schema, what)[0]
    return dt


def _construct(schema: Any) -> Any:
    """The construct of a schema given as a construct or a Codec."""
    from ..codec import Codec

    return schema.schema if isinstance(schema, Codec) else schema


def _layout_of(np: Any, schema: Any, what: str) -> tuple[Any, _Regions]:
    sc = _construct(schema)
    size = _sizeof(sc, what)
    d = _Dtypes(np, size)
    dt = d.dtype(sc, what, (), 0)
    if dt.itemsize != size:  # a scalar under Padded/Aligned at the top
        raise DtypeError(
            what, f"a {dt.itemsize}-byte {dt} padded to {size} bytes has no dtype of its own"
        )
    return dt, d.regions


# ---------------------------------------------------------------------------- a map's layout


@dataclass(frozen=True)
class MapLayout:
    """The numpy view of a keyed typed map: its record dtype and how to fill the kernel's buffers.

    Attributes:
        record: ``[("key", key), ("value", value)]``, or ``("value", value, (ncpus,))``
            for per-CPU maps: one array element per map element.
        key, value: the dtypes of one key and one value.
        ncpus: values per key (num_possible_cpus() for per-CPU maps, else 1).
        slot: the kernel's stride of one value (round_up(value_size, 8) per CPU).
    """

    record: Any
    key: Any
    value: Any
    ncpus: int
    slot: int
    percpu: bool
    key_regions: _Regions
    value_regions: _Regions


def layout(m: _KeyedMap[Any, Any, Any], feature: str = "to_numpy()") -> MapLayout:
    """The :class:`MapLayout` of a TypedMap or PerCpuTypedMap (numpy needed).

    Raises:
        DtypeError: a key or value part without a dtype equivalent.
        ExtraNotInstalledError: numpy is not installed.
    """
    np = numpy_module(feature)
    h = m._h
    kdt, kreg = _layout_of(np, m._key_codec, "key")
    vdt, vreg = _layout_of(np, m._value_codec, "value")
    percpu = h.map_type.is_percpu
    ncpus = h._ncpus if percpu else 1
    value_field = ("value", vdt, (ncpus,)) if percpu else ("value", vdt)
    record = np.dtype([("key", kdt), value_field])
    return MapLayout(record, kdt, vdt, ncpus, h._slot, percpu, kreg, vreg)


def _raw_record(np: Any, lay: MapLayout) -> Any:
    """The record as two opaque fields, ``k`` and ``v``: what one memcpy a field copies."""
    ks, vs = lay.key.itemsize, lay.value.itemsize
    v = (np.dtype((np.void, vs)), (lay.ncpus,)) if lay.percpu else np.dtype((np.void, vs))
    return np.dtype(
        {
            "names": ["k", "v"],
            "formats": [np.dtype((np.void, ks)), v],
            "offsets": [0, ks],
            "itemsize": lay.record.itemsize,
        }
    )


def _slots(np: Any, size: int, stride: int) -> Any:
    """One kernel slot: ``size`` opaque bytes (field ``v``) in a stride of ``stride``."""
    return np.dtype(
        {"names": ["v"], "formats": [np.dtype((np.void, size))], "offsets": [0], "itemsize": stride}
    )


# ---------------------------------------------------------------------------- reading


def _chunks(np: Any, m: _KeyedMap[Any, Any, Any], lay: MapLayout) -> Iterator[tuple[int, Any, Any]]:
    """Every element as (count, keys, values): arrays over the kernel's buffers of one batch.

    keys: ``count`` opaque keys; values: ``count`` opaque values, shape
    ``(count, ncpus)`` per CPU. The arrays are reused by the next batch.
    """
    h = m._h
    ks = lay.key.itemsize
    kdt, sdt = np.dtype((np.void, ks)), _slots(np, lay.value.itemsize, lay.slot)
    ncpus = lay.ncpus
    batch = m._batch_size

    def views(n: int, keys: Any, values: Any) -> tuple[int, Any, Any]:
        v = values["v"][: n * ncpus]
        return n, keys[:n], v.reshape(n, ncpus) if lay.percpu else v

    if m._batch:
        bufs = [np.empty(batch, kdt), np.empty(batch * ncpus, sdt)]

        def grow(n: int) -> tuple[Any, Any]:
            bufs[:] = [np.empty(n, kdt), np.empty(n * ncpus, sdt)]
            return bufs[0], bufs[1]

        opts = h._batch_opts(0, 0, "to_numpy")
        batches = h._lookup_batch_into("lookup_batch", batch, opts, (bufs[0], bufs[1]), grow=grow)
        try:
            first = next(batches, None)
        except NotSupportedError:
            m._batch = False  # a kernel without batch ops for this type: walk below
        else:
            if first is not None:
                yield views(first, bufs[0], bufs[1])
                for n in batches:
                    yield views(n, bufs[0], bufs[1])
            return
    for n, kb, vb in h._walk_raw(batch):
        yield views(n, np.frombuffer(kb, kdt), np.frombuffer(vb, sdt))


def to_numpy(m: _KeyedMap[Any, Any, Any]) -> Any:
    """Every element of the map as one structured ndarray (see the module doc).

    Raises:
        DtypeError: the schemas have a part without a dtype equivalent.
        ExtraNotInstalledError: numpy is not installed.
        IterationAbortedError: the map held more than max_entries elements
            during the read (it changed under it).
        BatchError: a kernel error part-way.
    """
    lay = layout(m, "to_numpy()")
    np = numpy_module("to_numpy()")
    h = m._h
    m._check_open()
    capacity = h.max_entries
    out = np.empty(capacity, lay.record)  # pages are touched only as they are filled
    raw = out.view(_raw_record(np, lay))
    rk, rv = raw["k"], raw["v"]
    pos = 0
    for n, keys, values in _chunks(np, m, lay):
        if pos + n > capacity:
            raise IterationAbortedError(
                errno.EINTR,
                "to_numpy",
                f"more than max_entries={capacity} elements: the map changed during the read",
            )
        rk[pos : pos + n] = keys
        rv[pos : pos + n] = values
        pos += n
    if pos == capacity:
        return out
    if pos * 2 < capacity:
        # Do not keep a mostly empty array alive. Copied as opaque records:
        # numpy copies a dtype with padding field by field, leaving the
        # padding bytes of the copy uninitialised.
        whole = np.dtype((np.void, lay.record.itemsize))
        return out.view(whole)[:pos].copy().view(lay.record)
    return out[:pos]


# ---------------------------------------------------------------------------- writing


def _record_bytes(np: Any, array: Any) -> Any:
    """The records of ``array`` as an ``(n, itemsize)`` uint8 matrix (a view when contiguous).

    Copied as opaque records when strided: numpy copies a dtype with
    padding field by field, which is slow and leaves the gaps undefined.
    """
    whole = np.ascontiguousarray(array.view(np.dtype((np.void, array.dtype.itemsize))))
    return whole.view(np.uint8).reshape(len(array), array.dtype.itemsize)


class _Packer:
    """Packs ``rows`` keys or values at a time into one reused buffer, as the kernel takes them.

    Padding is zeroed, constants set and each value padded to ``slot``
    bytes. Records are copied as opaque items (one memcpy each); the buffer
    (a few hundred KiB) stays in the cache from one batch to the next, and
    the masks are applied over it as one contiguous run (numpy's loops over
    one small record at a time cost more than the copy).
    """

    def __init__(self, np: Any, regions: _Regions, ncpus: int, slot: int, rows: int) -> None:
        self.np = np
        self.ncpus = ncpus
        self.buf = np.zeros(rows * ncpus * slot, np.uint8)  # the slot padding stays zero
        self.items = self.buf.view(_slots(np, regions.size, slot))["v"]
        self.masks: Any = None
        self.fills: Any = None
        if not regions.exact:
            self.masks = self._tiled(regions.mask, slot, rows * ncpus)
            if any(regions.fill):
                self.fills = self._tiled(regions.fill, slot, rows * ncpus)

    def _tiled(self, data: bytearray, slot: int, count: int) -> Any:
        one = self.np.zeros(slot, self.np.uint8)
        one[: len(data)] = self.np.frombuffer(bytes(data), self.np.uint8)
        return self.np.tile(one, count)

    def pack(self, src: Any) -> Any:
        """``src`` (n opaque items, ``(n, ncpus)`` per CPU; n <= rows) packed.

        The result is valid until the next call.
        """
        np, n = self.np, len(src)
        items = self.items[: n * self.ncpus]
        if self.ncpus > 1:
            items = items.reshape(n, self.ncpus)
        items[...] = src
        flat = self.buf[: n * self.ncpus * self.items.strides[0]]
        if self.masks is not None:
            np.bitwise_and(flat, self.masks[: len(flat)], out=flat)
            if self.fills is not None:
                np.bitwise_or(flat, self.fills[: len(flat)], out=flat)
        return flat


#: Records written by one BPF_MAP_UPDATE_BATCH of update_batch(array): the
#: packed buffers stay in the cache, which costs less than the extra syscalls.
_WRITE_ROWS: Final = 4096


def update_batch(m: _KeyedMap[Any, Any, Any], array: Any, elem_flags: int) -> int:
    """Write every record of ``array`` with BPF_MAP_UPDATE_BATCH, 4096 records a call.

    ``array`` has the map's record dtype, or one with the same field names
    whose values fit it (other integer widths, byte orders or string
    lengths: converted, and refused when a value does not fit). Every
    record is checked before the first syscall.

    Raises:
        ArgumentError: not a one-dimensional ndarray.
        CodecError: a field is missing, or a value does not fit (the path
            names the field and the index); nothing was written.
        DtypeError, ExtraNotInstalledError: as :func:`to_numpy`.
        BatchError: the kernel stopped part-way; ``.processed`` records
            (the first ones, of the whole array) were written.
    """
    lay = layout(m, "update_batch(array)")
    np = numpy_module("update_batch(array)")
    m._check_open()
    if not isinstance(array, np.ndarray) or array.ndim != 1:
        shape = getattr(array, "shape", None)
        raise ArgumentError(
            f"update_batch: an array of records must have one dimension, not shape {shape}",
            argument="pairs",
            value=shape,
        )
    if array.dtype != lay.record:
        array = conform(np, array, lay.record, "array")
    n = len(array)
    raw = _record_bytes(np, array)
    ks, vs = lay.key.itemsize, lay.value.itemsize
    _check_texts(
        np, array, lay, (raw[:, :ks].reshape(n, 1, ks), raw[:, ks:].reshape(n, lay.ncpus, vs))
    )
    records = raw.view(_raw_record(np, lay)).reshape(n)
    keys, values = records["k"], records["v"]
    h = m._h
    if n == 0:
        return h._update_batch_from(b"", b"", 0, elem_flags)
    rows = min(n, _WRITE_ROWS)
    kp = _Packer(np, lay.key_regions, 1, ks, rows)
    vp = _Packer(np, lay.value_regions, lay.ncpus, lay.slot, rows)
    done = 0
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        try:
            done += h._update_batch_from(
                kp.pack(keys[lo:hi]), vp.pack(values[lo:hi]), hi - lo, elem_flags
            )
        except BatchError as exc:
            if not done:
                raise
            # The count of the whole array, not of this call's records.
            raise type(exc)(
                exc.errno or 0, exc.operation, done + exc.processed, exc._batch_detail
            ) from exc
    return done


#: Encodings (codecs.lookup names) in which every byte below 0x80 is its ASCII character.
_ASCII_SUPERSETS: Final = frozenset({"ascii", "utf-8"})
#: Encodings that decode every byte.
_ANY_BYTES: Final = frozenset({"latin-1", "iso8859-1"})


def _check_texts(np: Any, array: Any, lay: MapLayout, raw: tuple[Any, Any]) -> None:
    """Fields that decode as text (PaddedString) must hold bytes of their encoding.

    ``raw``: the ``(n, ncpus, size)`` byte views of the keys and values. A
    field of plain ASCII bytes is checked as bytes, without decoding it.
    """
    for what, regions, data in (
        ("key", lay.key_regions, raw[0]),
        ("value", lay.value_regions, raw[1]),
    ):
        if not regions.texts:
            continue
        if all(_ascii_clean(data, off, size, enc) for off, size, enc in regions.texts):
            continue
        for names, encoding in regions.encodings:
            col = array[what]
            for name in names:
                col = col[name]
            try:
                if _unit(encoding) == 1:
                    np.char.decode(col, encoding)
            except UnicodeDecodeError as exc:
                bad = _first(np, col, encoding)
                path = ".".join((what, *names))
                raise CodecError(
                    f"{path}[{bad}]",
                    col.reshape(-1)[bad] if bad is not None else None,
                    f"is not {encoding}: {exc.reason}",
                ) from None


def _ascii_clean(data: Any, off: int, size: int, encoding: str) -> bool:
    """Whether a text field's bytes need no decoding to be known valid in ``encoding``."""
    name = codecs.lookup(encoding).name
    if name in _ANY_BYTES:
        return True
    return name in _ASCII_SUPERSETS and not (data[:, :, off : off + size] >= 0x80).any()


def _unit(encoding: str) -> int:
    return len("a".encode(encoding))


def _first(np: Any, col: Any, encoding: str) -> int | None:
    for i, item in enumerate(col.reshape(-1)):
        try:
            bytes(item).decode(encoding)
        except UnicodeDecodeError:
            return i
    return None


def conform(np: Any, src: Any, dst: Any, path: str) -> Any:
    """``src`` as values of dtype ``dst``, matched by field name; CodecError where one does not fit.

    Leaves convert between integer widths and byte orders, floats, bools
    and byte strings when every value fits (no silent wrap or truncation).
    """
    if dst.shape:  # a subarray: the trailing dimensions must match
        k = len(dst.shape)
        if src.ndim < k or src.shape[src.ndim - k :] != dst.shape:
            raise CodecError(path, src.shape, f"needs trailing dimensions {dst.shape}")
        return conform(np, src, dst.base, path)
    if dst.names is not None:
        have = src.dtype.names
        if have is None or set(have) != set(dst.names):
            raise CodecError(
                path, src.dtype, f"needs the fields {list(dst.names)}, has {list(have or [])}"
            )
        out = np.zeros(src.shape, dst)
        for name in dst.names:
            out[name] = conform(np, src[name], dst.fields[name][0], f"{path}.{name}")
        return out
    return _leaf(np, src, dst, path)


def _leaf(np: Any, src: Any, dst: Any, path: str) -> Any:
    s, d = src.dtype.kind, dst.kind

    def refuse(mask: Any, why: str) -> CodecError:
        idx = int(np.flatnonzero(mask.reshape(-1))[0])
        return CodecError(f"{path}[{idx}]", src.reshape(-1)[idx].item(), why)

    if d in "iu":
        if s not in "biu":
            raise CodecError(path, src.dtype, f"{src.dtype} values cannot fill a {dst} field")
        info = np.iinfo(dst)
        if src.size and s != "b":
            bad = (src < info.min) | (src > info.max)
            if bad.any():
                raise refuse(bad, f"does not fit in {dst} ({info.min}..{info.max})")
        return src.astype(dst)
    if d == "f":
        if s not in "biuf":
            raise CodecError(path, src.dtype, f"{src.dtype} values cannot fill a {dst} field")
        out = src.astype(dst)
        if s == "f" and src.size:
            bad = np.isfinite(src) & ~np.isfinite(out)
            if bad.any():
                raise refuse(bad, f"overflows {dst}")
        return out
    if d == "b":
        if s == "b":
            return src.astype(dst)
        if s in "iu":
            bad = (src != 0) & (src != 1)
            if src.size and bad.any():
                raise refuse(bad, "a bool field takes 0 or 1")
            return src.astype(dst)
        raise CodecError(path, src.dtype, f"{src.dtype} values cannot fill a bool field")
    if d == "S":
        if s == "U":
            src = np.char.encode(src, "utf-8")
        elif s == "O":
            try:
                src = np.array(
                    [bytes(x) if not isinstance(x, str) else x.encode() for x in src.reshape(-1)],
                    dtype=bytes,
                ).reshape(src.shape)
            except TypeError as exc:
                raise CodecError(path, None, f"values are not bytes or text: {exc}") from None
        elif s != "S":
            raise CodecError(path, src.dtype, f"{src.dtype} values cannot fill a {dst} field")
        if src.dtype.itemsize > dst.itemsize and src.size:
            bad = np.char.str_len(src) > dst.itemsize
            if bad.any():
                raise refuse(bad, f"is longer than {dst.itemsize} bytes")
        return src.astype(dst)
    raise CodecError(path, dst, f"no conversion into a {dst} field")


# ---------------------------------------------------------------------------- dtype -> schema


def schema_of(dtype: Any, path: str = "value") -> cs.Construct[Any, Any]:
    """A construct schema with exactly the layout of a numpy dtype (for :func:`from_numpy`).

    Integers, floats and bools become FormatFields of their byte order and
    ``Flag``; ``S<n>`` and opaque ``V<n>`` become ``Bytes(n)``; structured
    dtypes ``Struct`` with ``Padding`` in the gaps; subarrays ``Array``.

    Raises:
        DtypeError: fields that overlap (a union: give the schema yourself),
            or a kind with no fixed-size construct (objects, text, dates, complex).
    """
    np = numpy_module("from_numpy()")
    dt = np.dtype(dtype)
    if dt.shape:
        inner = schema_of(dt.base, path + "[]")
        for n in reversed(dt.shape):
            inner = cs.Array(n, inner)
        return inner
    if dt.names is not None:
        subcons: list[Any] = []
        pos = 0
        for name, (fdt, off, *_) in sorted(dt.fields.items(), key=lambda kv: kv[1][1]):
            if off < pos:
                raise DtypeError(
                    f"{path}.{name}", "overlaps the field before it: give a union schema yourself"
                )
            if off > pos:
                subcons.append(cs.Padding(off - pos))
            subcons.append(name / schema_of(fdt, f"{path}.{name}"))
            pos = off + fdt.itemsize
        if dt.itemsize > pos:
            subcons.append(cs.Padding(dt.itemsize - pos))
        return cs.Struct(*subcons)
    k, size = dt.kind, dt.itemsize
    order = "b" if dt.byteorder == ">" else "l"
    if k == "b":
        return cs.Flag
    if k in "iu" and size in (1, 2, 4, 8):
        return getattr(cs, f"Int{8 * size}{'s' if k == 'i' else 'u'}{order}")  # type: ignore[no-any-return]
    if k == "f" and size in (2, 4, 8):
        return getattr(cs, f"Float{8 * size}{order}")  # type: ignore[no-any-return]
    if k in "SV":
        return cs.Bytes(size)
    raise DtypeError(path, f"a {dt} field has no fixed-size schema")


def from_numpy(
    cls: type[Any],
    array: Any,
    *,
    key: Any,
    value: Any,
    map_type: MapType,
    max_entries: int | None,
    name: str,
    map_flags: int,
) -> Any:
    """A new map of ``map_type`` with ``array``'s records, wrapped in ``cls``."""
    np = numpy_module(f"{cls.__name__}.from_numpy()")
    if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.names is None:
        raise ArgumentError(
            "from_numpy: needs a one-dimensional structured array with 'key' and 'value' fields",
            argument="array",
            value=getattr(array, "dtype", type(array)),
        )
    names = set(array.dtype.names)
    if names != {"key", "value"}:
        raise ArgumentError(
            f"from_numpy: the array's fields must be 'key' and 'value', not {sorted(names)}",
            argument="array",
            value=array.dtype,
        )
    kdt = array.dtype.fields["key"][0]
    vdt = array.dtype.fields["value"][0]
    percpu = MapType(map_type).is_percpu
    if percpu:
        if len(vdt.shape) < 1:
            raise ArgumentError(
                "from_numpy: a per-CPU map needs a 'value' field with one value per possible CPU",
                argument="array",
                value=array.dtype,
            )
        vdt = vdt.base if len(vdt.shape) == 1 else np.dtype((vdt.base, vdt.shape[1:]))
    kschema = key if key is not None else schema_of(kdt, "key")
    vschema = value if value is not None else schema_of(vdt, "value")
    n = len(array)
    entries = max(1, n) if max_entries is None else max_entries
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < n:
        raise ArgumentError(
            f"from_numpy: max_entries={max_entries!r} cannot hold the array's {n} records",
            argument="max_entries",
            value=max_entries,
        )
    h = MapHandle.create(
        map_type,
        key_size=_sizeof(_construct(kschema), "key"),
        value_size=_sizeof(_construct(vschema), "value"),
        max_entries=entries,
        name=name,
        map_flags=map_flags,
    )
    try:
        m = cls(h, key=kschema, value=vschema)
        if n:
            m.update_batch(array)
    except BaseException:
        h.close()
        raise
    return m


# ---------------------------------------------------------------------------- pyarrow, pandas


def _native(np: Any, a: Any) -> Any:
    """``a`` in native byte order (pyarrow and pandas take only that)."""
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != (
        "<" if np.little_endian else ">"
    ):
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _arrow(pa: Any, np: Any, a: Any) -> Any:
    """One pyarrow array for a column of records (structs, fixed-size lists for subarrays)."""
    if a.ndim > 1:
        flat = a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])
        return pa.FixedSizeListArray.from_arrays(_arrow(pa, np, flat), a.shape[1])
    if a.dtype.names is not None:
        return pa.StructArray.from_arrays(
            [_arrow(pa, np, a[name]) for name in a.dtype.names], names=list(a.dtype.names)
        )
    if a.dtype.kind == "V":
        return pa.array([bytes(x) for x in a], type=pa.binary(a.dtype.itemsize))
    return pa.array(_native(np, np.ascontiguousarray(a)))


def to_arrow(m: _KeyedMap[Any, Any, Any]) -> pa.Table:
    """The map as a pyarrow Table with columns ``key`` and ``value`` (structs for records).

    Per-CPU values are a fixed-size list of ncpus values per key.
    """
    np = _import("numpy", "arrow", "to_arrow()")  # the arrow extra brings numpy too
    pa = _import("pyarrow", "arrow", "to_arrow()")
    arr = to_numpy(m)
    return pa.table({"key": _arrow(pa, np, arr["key"]), "value": _arrow(pa, np, arr["value"])})


def _columns(np: Any, a: Any, name: str, out: dict[str, Any]) -> None:
    """Flatten a column of records into ``out``: ``key.saddr``, ``value.rtt_us[2]``, ..."""
    if a.dtype.names is not None:
        for sub in a.dtype.names:
            _columns(np, a[sub], f"{name}.{sub}", out)
        return
    if a.ndim > 1:
        for i in range(a.shape[1]):
            _columns(np, a[:, i], f"{name}[{i}]", out)
        return
    out[name] = _native(np, a)


def to_pandas(m: _KeyedMap[Any, Any, Any]) -> pd.DataFrame:
    """The map as a pandas DataFrame: one column per leaf field, one row per element.

    Columns are named by their path (``key.saddr``, ``value.rtt_us[2]``; a
    plain key or value is ``key`` / ``value``). Per-CPU maps give one row per
    (element, CPU), with a ``cpu`` column after the key columns.
    """
    np = _import("numpy", "pandas", "to_pandas()")
    pd = _import("pandas", "pandas", "to_pandas()")
    arr = to_numpy(m)
    cols: dict[str, Any] = {}
    if m._h.map_type.is_percpu:
        ncpus = m._h._ncpus
        _columns(np, np.repeat(arr["key"], ncpus), "key", cols)
        cols["cpu"] = np.tile(np.arange(ncpus, dtype=np.uint32), len(arr))
        _columns(np, arr["value"].reshape(-1), "value", cols)
    else:
        _columns(np, arr["key"], "key", cols)
        _columns(np, arr["value"], "value", cols)
    return pd.DataFrame(cols)
