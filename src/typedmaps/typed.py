"""Typed BPF maps: keys and values as Python records, over a byte-level MapHandle.

The wrappers here turn a :class:`~typedmaps.handle.MapHandle` (or a
:class:`~typedmaps.object.Map`, its subclass) into typed containers, using
one construct schema for the key and one for the value::

    flows = TypedMap(h, key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats))
    # mypy infers TypedMap[FlowKey, FlowStats]: no annotation needed

==========================  ============================  ===========================
map type                    wrapper                       element type
==========================  ============================  ===========================
HASH, ARRAY, LRU_HASH,      :class:`TypedMap`             ``MutableMapping[K, V]``
LPM_TRIE, ...
PERCPU_HASH, PERCPU_ARRAY,  :class:`PerCpuTypedMap`       ``MutableMapping[K, list[V]]``
LRU_PERCPU_HASH, ...
QUEUE                       :class:`TypedQueue`           push / pop / peek / drain
STACK                       :class:`TypedStack`           push / pop / peek / drain
BLOOM_FILTER                :class:`TypedBloomFilter`     add / ``in``
==========================  ============================  ===========================

:func:`typed` picks the wrapper from the map type.

Checks happen once, when a wrapper is made: the map type must fit the
wrapper (a per-CPU map names :class:`PerCpuTypedMap`, a QUEUE names
:class:`TypedQueue`, ...) and each schema's size must equal the map's key or
value size (:class:`~typedmaps.errors.SizeMismatchError` naming the schema,
its size and the map's). After that, every operation encodes its arguments
first: a value that does not fit its schema raises
:class:`~typedmaps.errors.CodecError` before any syscall, and the map is
unchanged.

Wrappers do not own the handle: closing the handle (or the wrapper, which
closes its handle) makes every wrapper over it raise
:class:`~typedmaps.errors.MapClosedError`.

Speed: ``m[k]``, ``m.get(k)``, ``m[k] = v`` and ``k in m`` do one closed
check, one encode, the syscall and one decode, with the codec methods bound
once in ``__init__``. Full reads (``items()``, ``values()``, iteration, ``len``)
use BPF_MAP_LOOKUP_BATCH where the kernel has it for the map type (HASH,
ARRAY, LRU and their per-CPU forms; LPM_TRIE since Linux 6.x), in chunks of
at most 4096 elements, and decode them in slices of 128 (keys and values
in one generated loop) handed out before the next slice is made: records
a caller drops as it goes never build up enough to wake the cyclic GC,
whose global state is never touched; memory stays bounded on maps of
millions of entries. Where the kernel answers ENOTSUPP (e.g. DEVMAP_HASH, or an older
kernel), the map is walked key by key with BPF_MAP_GET_NEXT_KEY instead, and
each value is looked up by the raw key bytes the kernel returned, never by a
re-encoded key (a key written by BPF code may have non-zero padding that a
decode/encode round trip would lose).

Static typing: the wrappers take schemas as ``Construct[K, K]`` (parses to
and builds from ``K``), not ``Construct[K, Any]``. With ``Any`` in the build
position mypy solves ``DataclassStruct``'s type variable from that ``Any``
when the schema is written inline (``key=DataclassStruct(FlowKey)``) and
infers ``TypedMap[Any, ...]``; with ``K`` in both positions it infers
``TypedMap[FlowKey, ...]``. The element type is the schema's *parsed* type:
a ``cs.Array`` value is a ``ListContainer``, an ``Enum`` value is
``EnumInteger | EnumIntegerString``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno as _errno
import importlib
import struct
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeAlias, TypeVar, overload

from .codec import Codec, make_codec, pair_plan
from .errors import (
    CodecError,
    IterationAbortedError,
    KeyNotFoundError,
    NotSupportedError,
    SizeMismatchError,
)
from .flags import MapFlags, MapType
from .handle import DEFAULT_BATCH, MapHandle

if TYPE_CHECKING:
    import construct

__all__ = [
    "AnyTyped",
    "PerCpuTypedMap",
    "TypedBloomFilter",
    "TypedMap",
    "TypedQueue",
    "TypedStack",
    "typed",
]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
_VO = TypeVar("_VO")  # what a keyed wrapper hands out per key: V, or list[V] per CPU
_VI = TypeVar("_VI")  # what it takes per key: V, or Sequence[V] per CPU

#: Map types with BPF_MAP_LOOKUP_AND_DELETE_ELEM / _BATCH for keyed elements (Linux 5.14+).
_DRAIN_TYPES: Final = frozenset(
    {MapType.HASH, MapType.PERCPU_HASH, MapType.LRU_HASH, MapType.LRU_PERCPU_HASH}
)
#: Map types that are not key/value stores from user space: no typed wrapper fits.
_NO_WRAPPER: Final = frozenset(
    {MapType.UNSPEC, MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA}
)
_MISSING: Final[Any] = object()
#: Full reads decode and hand out records this many at a time (see _KeyedMap._slices).
_SLICE: Final = 128


# ---------------------------------------------------------------------------- helpers


def _wrapper_for(mt: MapType) -> str | None:
    """The name of the typed wrapper that fits a map type, or None."""
    if mt in _NO_WRAPPER:
        return None
    if mt.is_percpu:
        return "PerCpuTypedMap"
    if mt is MapType.QUEUE:
        return "TypedQueue"
    if mt is MapType.STACK:
        return "TypedStack"
    if mt is MapType.BLOOM_FILTER:
        return "TypedBloomFilter"
    return "TypedMap"


def _check_kind(handle: MapHandle, wrapper: str) -> MapType:
    """Refuse a map whose type does not fit ``wrapper``, naming the one that does."""
    if not isinstance(handle, MapHandle):
        raise TypeError(f"{wrapper}() needs a MapHandle or Map, got {type(handle).__name__}")
    mt = handle.map_type
    fits = _wrapper_for(mt)
    if fits == wrapper:
        return mt
    hint = (
        f"use {fits}" if fits is not None else "it is not a key/value map and has no typed wrapper"
    )
    raise NotSupportedError(
        _errno.EINVAL, wrapper, f"{wrapper} cannot wrap the {mt.name} map {handle.name!r}: {hint}"
    )


def _codec(schema: construct.Construct[T, Any] | Codec[T], what: str) -> Codec[T]:
    return schema if isinstance(schema, Codec) else make_codec(schema, what)


def _check_size(codec: Codec[Any], expected: int, what: str, handle: MapHandle) -> None:
    if codec.size != expected:
        raise SizeMismatchError(
            f"{what} schema {codec.name}",
            codec.size,
            expected,
            f"the {what}_size of the {handle.map_type.name} map {handle.name!r}",
        )


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_found(op: str, key: object) -> KeyNotFoundError:
    return KeyNotFoundError(_errno.ENOENT, op, f"key not found: {_short(key)}")


def _array_indices(start: int, stop: int) -> bytes:
    """ARRAY keys start..stop-1 as the kernel's native u32s, back to back."""
    n = stop - start
    return struct.pack(f"={n}I", *range(start, stop))


# ---------------------------------------------------------------------------- views


class _KeysView(KeysView[K]):
    """A live view of a typed map's keys: each iteration reads the map again."""

    __slots__ = ()


class _ItemsView(ItemsView[K, _VO]):
    """A live view of (key, value) pairs, read in batches on each iteration."""

    __slots__ = ("_typed",)

    def __init__(self, mapping: _KeyedMap[K, _VO, Any]) -> None:
        super().__init__(mapping)
        self._typed = mapping

    def __iter__(self) -> Iterator[tuple[K, _VO]]:
        return self._typed._iter_items()


class _ValuesView(ValuesView[_VO]):
    """A live view of the values, read in batches on each iteration."""

    __slots__ = ("_typed",)

    def __init__(self, mapping: _KeyedMap[Any, _VO, Any]) -> None:
        super().__init__(mapping)
        self._typed = mapping

    def __iter__(self) -> Iterator[_VO]:
        return self._typed._iter_values()


# ---------------------------------------------------------------------------- keyed maps


class _OnHandle:
    """What every typed wrapper shares: the handle underneath and its lifetime.

    A wrapper does not own a separate fd: closing it (or leaving its
    ``with`` block) closes the handle it was made over.
    """

    __slots__ = ()
    _h: MapHandle

    @property
    def handle(self) -> MapHandle:
        """The byte-level handle underneath (shared, not copied)."""
        return self._h

    @property
    def closed(self) -> bool:
        """Whether the handle underneath is closed."""
        return self._h.closed

    def close(self) -> None:
        """Close the handle underneath (idempotent)."""
        self._h.close()

    def __enter__(self) -> Self:
        self._h._open_fd()
        return self

    def __exit__(self, *exc: object) -> None:
        self._h.close()


class _KeyedMap(_OnHandle, MutableMapping[K, _VO], Generic[K, _VO, _VI]):
    """What TypedMap and PerCpuTypedMap share: iteration, deletion, batches.

    ``K`` is the key type, ``_VO`` what one key reads as (``V``, or
    ``list[V]`` per CPU) and ``_VI`` what one key is written from (``V``, or
    ``Sequence[V]``). Subclasses set ``_value_codec`` and ``_dv`` (raw value
    bytes -> ``_VO``) and implement ``_encode_one``, ``_encode_values`` and
    ``_decode_values``; their ``__getitem__``/``get``/``__setitem__`` are
    written out in full, for speed.
    """

    __slots__ = (
        "_batch",
        "_batch_size",
        "_dk",
        "_dkm",
        "_drain",
        "_dv",
        "_ek",
        "_ekm",
        "_fixed",
        "_h",
        "_key_codec",
        "_lookup",
        "_rd",
        "_update",
        "_value_codec",
    )

    _h: MapHandle
    _key_codec: Codec[K]
    _value_codec: Codec[Any]
    _ek: Callable[[K], bytes]
    _dk: Callable[[bytes], K]
    _ekm: Callable[[Iterable[K]], bytes]
    _dkm: Callable[[bytes, int], list[K]]
    _dv: Callable[[bytes], _VO]
    _lookup: Callable[[int, bytes, int], bytes | None]
    # The hot paths unpack one tuple instead of loading four attributes:
    # (handle, its raw lookup, key encode, value decode).
    _rd: tuple[MapHandle, Callable[[int, bytes, int], bytes | None], Callable[[K], bytes], Any]
    _update: Callable[[int, bytes, bytes, int], None]
    _fixed: bool
    _batch: bool
    _drain: bool
    _batch_size: int

    def _setup(self, handle: MapHandle, key_codec: Codec[K], wrapper: str) -> MapType:
        mt = _check_kind(handle, wrapper)
        _check_size(key_codec, handle.key_size, "key", handle)
        self._h = handle
        self._key_codec = key_codec
        self._ek = key_codec.encode
        self._dk = key_codec.decode
        self._ekm = key_codec.encode_many
        self._dkm = key_codec.decode_many
        self._lookup = handle._lookup_raw
        self._update = handle._update_raw
        self._rd = (handle, handle._lookup_raw, key_codec.encode, None)
        self._fixed = mt.has_fixed_keys
        # Try BPF_MAP_LOOKUP_BATCH on every keyed type (LPM_TRIE has it since
        # Linux 6.x, DEVMAP_HASH has none); the first ENOTSUPP switches this off.
        self._batch = True
        self._drain = mt in _DRAIN_TYPES
        self._batch_size = max(1, min(handle.max_entries, DEFAULT_BATCH))
        return mt

    # -- subclass hooks ------------------------------------------------------

    def _decode_values(self, data: bytes, count: int) -> list[_VO]:
        raise NotImplementedError

    def _encode_values(self, values: Sequence[_VI]) -> bytes:
        raise NotImplementedError

    # -- handle, lifecycle -----------------------------------------------------

    @property
    def key_codec(self) -> Codec[K]:
        """The codec that turns keys into the map's key bytes."""
        return self._key_codec

    def __repr__(self) -> str:
        h = self._h
        return (
            f"{type(self).__name__}(key={self._key_codec.name}, value={self._value_codec.name}, "
            f"map={h.name!r}, type={h.map_type.name}{', closed' if h.closed else ''})"
        )

    def _fd(self) -> int:
        return self._h._open_fd()

    # -- element operations shared by both wrappers ---------------------------

    def __delitem__(self, key: K) -> None:
        """Delete ``key``.

        Raises:
            KeyNotFoundError: the key is absent (also a KeyError).
            NotSupportedError: ARRAY maps: their elements always exist
                (assign a zero value instead, or use :meth:`clear`).
            CodecError: the key does not encode.
        """
        self._fd()
        if self._fixed:
            raise self._no_delete("delete")
        self._h.delete(self._ek(key))

    def _no_delete(self, op: str) -> NotSupportedError:
        mt = self._h.map_type.name
        return NotSupportedError(
            _errno.EINVAL,
            op,
            f"{mt} elements cannot be deleted: every index always exists "
            "(assign a zero value, or clear() to zero every element)",
        )

    def _put(self, key: K, value: _VI, flags: int) -> None:
        fd = self._fd()
        kb = self._ek(key)
        vb = self._encode_one(value)
        self._update(fd, kb, vb, flags)

    def _encode_one(self, value: _VI) -> bytes:
        raise NotImplementedError

    def insert(self, key: K, value: _VI) -> None:
        """Add ``key`` only if it is absent (BPF_NOEXIST).

        Raises:
            KeyExistsError: the key is already present (always on ARRAY maps).
            MapFullError: the map has no room.
            CodecError: key or value does not encode (nothing was written).
        """
        self._put(key, value, MapFlags.NO_EXIST)

    def replace(self, key: K, value: _VI) -> None:
        """Overwrite ``key`` only if it is present (BPF_EXIST).

        Raises:
            KeyNotFoundError: the key is absent.
            CodecError: key or value does not encode (nothing was written).
        """
        try:
            self._put(key, value, MapFlags.EXIST)
        except KeyNotFoundError as exc:
            if exc.errno == _errno.ENOENT:
                raise _not_found("replace", key) from None
            raise

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the map (one lookup, no decode).

        Raises:
            CodecError: ``key`` does not encode with the key schema (a value
                of the wrong type is a bug to report, not a miss).
        """
        h, lookup, ek, _ = self._rd
        fd = h._fd
        if fd < 0:
            self._fd()
        return lookup(fd, ek(key), 0) is not None  # type: ignore[arg-type]

    @overload
    def pop(self, key: K, /) -> _VO: ...
    @overload
    def pop(self, key: K, default: _VO, /) -> _VO: ...
    @overload
    def pop(self, key: K, default: T, /) -> _VO | T: ...
    def pop(self, key: K, default: Any = _MISSING, /) -> Any:
        """Remove ``key`` and return its value, or ``default`` when absent.

        On hash maps this is one BPF_MAP_LOOKUP_AND_DELETE_ELEM (atomic); on
        other deletable maps (LPM_TRIE, ...) a lookup then a delete, so a
        concurrent writer may slip in between.

        Raises:
            KeyNotFoundError: absent and no default.
            NotSupportedError: ARRAY maps (elements cannot be deleted).
        """
        self._fd()
        if self._fixed:
            raise self._no_delete("pop")
        raw = self._pop_raw(self._ek(key))
        if raw is None:
            if default is _MISSING:
                raise _not_found("pop", key)
            return default
        return self._dv(raw)

    def _pop_raw(self, kb: bytes) -> bytes | None:
        """Remove the element with raw key ``kb``; its raw value, or None if absent."""
        h = self._h
        if self._drain:
            got = h.lookup_and_delete(kb)
            if got is None or isinstance(got, bytes):
                return got
            # per-CPU: the handle split the slots; put the 8-byte alignment back
            pad = bytes(h._slot - h.value_size)
            return b"".join(part + pad for part in got)
        raw = self._lookup(self._fd(), kb, 0)
        if raw is None:
            return None
        try:
            h.delete(kb)
        except KeyNotFoundError:
            return None  # deleted by someone else between the two calls
        return raw

    def popitem(self) -> tuple[K, _VO]:
        """Remove and return some (key, value) pair.

        Which pair is the kernel's order (the first key BPF_MAP_GET_NEXT_KEY
        returns), not insertion order.

        Raises:
            KeyNotFoundError: the map is empty (also a KeyError).
            NotSupportedError: ARRAY maps.
            IterationAbortedError: other users kept deleting the first key
                before this call could (more than max_entries tries).
        """
        self._fd()
        if self._fixed:
            raise self._no_delete("popitem")
        h = self._h
        for _ in range(h.max_entries + 1):
            first = next(iter(h.keys()), None)
            if first is None:
                raise KeyNotFoundError(_errno.ENOENT, "popitem", "the map is empty")
            raw = self._pop_raw(first)
            if raw is not None:
                return self._dk(first), self._dv(raw)
        raise IterationAbortedError(
            _errno.EINTR, "popitem", "the first key kept disappearing (the map is changing)"
        )

    def clear(self) -> None:
        """Remove every element; on ARRAY maps, set every element to zero bytes.

        An ARRAY's indices always exist, so clear() gives them the value a
        fresh array has (all bytes zero) instead of deleting them. Hash maps
        are drained with BPF_MAP_LOOKUP_AND_DELETE_BATCH; other map types
        are walked and deleted key by key. Not atomic: elements a BPF program
        adds meanwhile may survive.

        Raises:
            IterationAbortedError: other writers kept refilling the map.
        """
        h = self._h
        self._fd()
        if self._fixed:
            self._zero_fill()
            return
        if self._drain:
            opts = h._batch_opts(0, 0, "clear")
            try:
                for _ in h._lookup_batch_raw("lookup_and_delete_batch", self._batch_size, opts):
                    pass
            except NotSupportedError:
                pass  # an old kernel: delete key by key below
            else:
                return
        budget = h.max_entries * 2 + 2
        while True:
            chunk = list(islice(h.keys(), self._batch_size))
            if not chunk:
                return
            for kb in chunk:
                budget -= 1
                with contextlib.suppress(KeyNotFoundError):
                    h.delete(kb)
            if budget < 0:
                raise IterationAbortedError(
                    _errno.EINTR, "clear", "the map kept refilling while it was cleared"
                )

    def _zero_fill(self) -> None:
        h = self._h
        n = h.max_entries
        step = self._batch_size
        vsize = h._vbuf_size
        if self._batch:
            try:
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    h.update_batch(
                        _array_indices(start, stop), bytes(vsize * (stop - start)), stop - start
                    )
            except NotSupportedError:
                pass
            else:
                return
        zero = bytes(vsize)
        for i in range(n):
            self._update(self._fd(), struct.pack("=I", i), zero, 0)

    # -- iteration ---------------------------------------------------------------

    def __iter__(self) -> Iterator[K]:
        """Iterate over the keys (a fresh read of the map, in the kernel's order).

        ARRAY maps yield every index 0..max_entries-1 without a syscall.
        """
        self._fd()
        if self._fixed:
            return self._array_keys()
        return self._keys_gen()

    def _array_keys(self) -> Iterator[K]:
        n = self._h.max_entries
        step = _SLICE
        dkm = self._dkm
        return chain.from_iterable(
            dkm(_array_indices(start, min(n, start + step)), min(n, start + step) - start)
            for start in range(0, n, step)
        )

    def _keys_gen(self) -> Iterator[K]:
        dkm = self._dkm
        return chain.from_iterable(
            dkm(kb, count) for count, kb, _ in self._slices(self._raw_chunks(), values=False)
        )

    def _iter_items(self) -> Iterator[tuple[K, _VO]]:
        self._fd()
        return self._decode_chunks(self._raw_chunks())

    def _iter_values(self) -> Iterator[_VO]:
        self._fd()
        dvs = self._decode_values
        return chain.from_iterable(
            dvs(vb, count) for count, _, vb in self._slices(self._raw_chunks(), keys=False)
        )

    def _slices(
        self,
        chunks: Iterator[tuple[int, bytes, bytes]],
        keys: bool = True,
        values: bool = True,
    ) -> Iterator[tuple[int, Any, Any]]:
        """Cut each chunk into slices of at most _SLICE records (memoryviews, no copies).

        Full reads decode one slice at a time and hand its records out
        before decoding the next. Decoding a whole 4096-element chunk at
        once made ~12,000 objects live together: every young-generation
        collection of the cyclic GC found them alive, promoted them, and
        the promotions triggered full collections of the whole heap, which
        doubled the cost of a full read in a program holding many objects.
        A slice makes fewer objects than the GC's first threshold (700), so
        records a caller drops as it goes never trigger a collection, and
        the GC's global state is never touched.
        """
        ks, vs = self._h._key_size, self._h._vbuf_size
        step = _SLICE
        for count, kb, vb in chunks:
            if count <= step:
                yield count, kb, vb
                continue
            kv = memoryview(kb) if keys else kb
            vv = memoryview(vb) if values else vb
            for start in range(0, count, step):
                n = min(step, count - start)
                yield (
                    n,
                    kv[start * ks : (start + n) * ks] if keys else kb,
                    vv[start * vs : (start + n) * vs] if values else vb,
                )

    def _raw_chunks(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every element as chunks (count, raw keys, raw values), at most one batch each."""
        h = self._h
        if self._batch:
            opts = h._batch_opts(0, 0, "lookup_batch")
            chunks = h._lookup_batch_raw("lookup_batch", self._batch_size, opts)
            try:
                first = next(chunks, None)
            except NotSupportedError:
                self._batch = False  # a kernel without batch ops for this type
            else:
                if first is not None:
                    yield first
                    yield from chunks
                return
        yield from self._walk_chunks()

    def _walk_chunks(self) -> Iterator[tuple[int, bytes, bytes]]:
        """The fallback: GET_NEXT_KEY, then a lookup by the raw key the kernel gave."""
        h = self._h
        lookup = self._lookup
        step = self._batch_size
        keys: list[bytes] = []
        values: list[bytes] = []
        for kb in h.keys():  # noqa: SIM118 (a MapHandle is not a dict)
            vb = lookup(h._open_fd(), kb, 0)
            if vb is None:
                continue  # deleted between GET_NEXT_KEY and the lookup
            keys.append(kb)
            values.append(vb)
            if len(keys) >= step:
                yield len(keys), b"".join(keys), b"".join(values)
                keys, values = [], []
        if keys:
            yield len(keys), b"".join(keys), b"".join(values)

    def __len__(self) -> int:
        """The number of elements.

        ARRAY maps: max_entries (every index exists), no syscall. Other maps
        keep no count: this reads the whole map (in batches where the map
        type allows, else one GET_NEXT_KEY per key), so it costs as much as
        a full iteration. ``bool(m)`` is cheap: it reads one key.
        """
        h = self._h
        self._fd()
        if self._fixed:
            return h.max_entries
        if self._batch:
            return sum(count for count, _, _ in self._raw_chunks())
        return sum(1 for _ in h.keys())  # noqa: SIM118

    def __bool__(self) -> bool:
        """Whether the map has at least one element (one GET_NEXT_KEY)."""
        h = self._h
        self._fd()
        if self._fixed:
            return h.max_entries > 0
        return next(iter(h.keys()), None) is not None

    def keys(self) -> KeysView[K]:
        """A live, set-like view of the keys; each iteration reads the map again."""
        return _KeysView(self)

    def items(self) -> ItemsView[K, _VO]:
        """A live view of (key, value) pairs, read in batches of at most 4096 per syscall.

        Each iteration is a fresh read; memory is bounded by one batch. On
        map types without batch lookup (DEVMAP_HASH, older kernels) the keys
        are walked and each value is looked up by the raw key bytes the
        kernel returned.
        Not a snapshot: a map that changes meanwhile may show an element
        twice or not at all, as with BPF_MAP_GET_NEXT_KEY.
        """
        return _ItemsView(self)

    def values(self) -> ValuesView[_VO]:
        """A live view of the values, read like :meth:`items`."""
        return _ValuesView(self)

    # -- batches -------------------------------------------------------------------

    def update_batch(
        self,
        pairs: Mapping[K, _VI] | Iterable[tuple[K, _VI]],
        elem_flags: int = MapFlags.ANY,
    ) -> int:
        """Write many elements with one BPF_MAP_UPDATE_BATCH syscall (Linux 5.6+).

        Every key and value is encoded before the syscall: a CodecError
        leaves the map unchanged.

        Args:
            pairs: a mapping, or an iterable of (key, value) pairs.
            elem_flags: ANY, or LOCK for values with a bpf_spin_lock. The
                kernel refuses NO_EXIST/EXIST in batch operations; use
                :meth:`insert` / :meth:`replace` for those.

        Returns:
            How many elements were written.

        Raises:
            CodecError: a key or value does not encode (path names its index).
            BatchError: the kernel stopped part-way; ``.processed`` elements
                were written. Also the named error of its errno
                (MapFullError when a hash map fills up, ...).
            NotSupportedError: the map type has no batch update (DEVMAP_HASH, ...).
        """
        self._fd()
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        kb, vb = self._encode_pairs(items)
        return self._h.update_batch(kb, vb, len(items), elem_flags)

    def _encode_pairs(self, items: list[tuple[K, _VI]]) -> tuple[Any, Any]:
        """Keys and values of ``items``, each back to back; CodecError names the index."""
        kb = self._ekm([k for k, _ in items])
        vb = self._encode_values([v for _, v in items])
        return kb, vb

    def delete_batch(self, keys: Iterable[K]) -> int:
        """Delete many keys with one BPF_MAP_DELETE_BATCH syscall (Linux 5.6+).

        Returns:
            How many keys were deleted.

        Raises:
            CodecError: a key does not encode (nothing was deleted).
            BatchError: stopped part-way, e.g. at a missing key (then also a
                KeyNotFoundError); ``.processed`` keys were deleted.
            NotSupportedError: ARRAY maps, and types without batch delete.
        """
        self._fd()
        if self._fixed:
            raise self._no_delete("delete_batch")
        ks = list(keys)
        return self._h.delete_batch(self._ekm(ks), len(ks))

    def lookup_batch(self, batch_size: int | None = None) -> Iterator[tuple[K, _VO]]:
        """Iterate over (key, value) pairs with BPF_MAP_LOOKUP_BATCH only (no fallback).

        Args:
            batch_size: elements per syscall (default min(max_entries, 4096)).

        Raises:
            NotSupportedError: the map type has no batch lookup (at the first
                ``next()``); :meth:`items` falls back instead.
            BatchError: a kernel error part-way; never ends silently.
        """
        return self._batch_pairs("lookup_batch", batch_size)

    def lookup_and_delete_batch(self, batch_size: int | None = None) -> Iterator[tuple[K, _VO]]:
        """Drain the map with BPF_MAP_LOOKUP_AND_DELETE_BATCH (hash maps, Linux 5.6+).

        Every pair yielded has already been deleted, a whole batch at a time:
        stopping the iteration early loses the rest of the current batch.

        Raises:
            NotSupportedError: ARRAY maps and other types that cannot delete.
        """
        if self._fixed:
            raise self._no_delete("lookup_and_delete_batch")
        return self._batch_pairs("lookup_and_delete_batch", batch_size)

    def _batch_pairs(self, op: str, batch_size: int | None) -> Iterator[tuple[K, _VO]]:
        h = self._h
        h._open_fd()
        if batch_size is None:
            batch_size = self._batch_size
        elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise CodecError("batch_size", batch_size, f"{op}: must be a positive integer")
        opts = h._batch_opts(0, 0, op)
        return self._decode_chunks(h._lookup_batch_raw(op, batch_size, opts))

    def _decode_chunks(self, chunks: Iterator[tuple[int, bytes, bytes]]) -> Iterator[tuple[K, _VO]]:
        decode = self._decode_pairs
        return chain.from_iterable(decode(kb, vb, n) for n, kb, vb in self._slices(chunks))

    def _decode_pairs(self, kb: Any, vb: Any, count: int) -> list[tuple[K, _VO]]:
        """The (key, value) pairs of one slice: raw keys and values back to back."""
        return list(zip(self._dkm(kb, count), self._decode_values(vb, count), strict=True))


class TypedMap(_KeyedMap[K, V, V]):
    """A BPF map as a ``MutableMapping[K, V]``: keys and values encoded by construct schemas.

    Works on HASH, ARRAY, LRU_HASH, LPM_TRIE and the other keyed map types
    whose values are not per CPU (use :class:`PerCpuTypedMap` for those).

    Example::

        flows = TypedMap(h, key=DataclassStruct(FlowKey), value=Int64ul)
        flows[FlowKey(src=1, dst=2)] = 10        # BPF_ANY
        flows.insert(k, 1)                         # KeyExistsError if present
        for k, n in flows.items(): ...             # batched reads

    Semantics worth knowing:

    - ``m[k]`` on an absent key raises :class:`KeyNotFoundError` (a
      KeyError); ``get``, ``in`` and ``pop(k, default)`` do not.
    - ARRAY maps: keys are indices (ints with an ``Int32ul`` key schema),
      ``len()`` is max_entries, ``del``/``pop``/``popitem`` raise
      :class:`NotSupportedError`, ``clear()`` zero-fills, and an index out
      of range raises :class:`KeyNotFoundError`.
    - ``keys()``, ``items()``, ``values()`` are live views: every iteration
      reads the map again, in batches; ``len()`` of a hash map reads the
      whole map (see :meth:`__len__`).
    - ``update()`` writes pair by pair (MutableMapping semantics); use
      :meth:`update_batch` for one syscall with all-or-nothing encoding.
    - Keys with padding: a key written by BPF code with garbage in its
      padding decodes fine, but re-encoding it zeroes the padding, so
      ``m[k]`` with that decoded key misses. Iteration is not affected (it
      uses the kernel's raw key bytes). Zero keys in BPF code
      (``__builtin_memset``) to avoid this.

    Args:
        handle: the map (a :class:`MapHandle` or :class:`Map`); not owned.
        key: the key schema (any fixed-size construct, e.g.
            ``DataclassStruct(FlowKey)``, ``Int32ul``) or a :class:`Codec`.
        value: the value schema or codec.

    Raises:
        NotSupportedError: the map type needs another wrapper (the message
            names it).
        SizeMismatchError: a schema's size differs from the map's key or
            value size.
        CodecError: a schema has no fixed size.
    """

    __slots__ = ("_epairs", "_ev", "_pairs", "_wr")

    _value_codec: Codec[V]
    _ev: Callable[[V], bytes]
    # Generated loops over keys and values together (None without fast plans).
    _pairs: Callable[[Any, Any], list[tuple[K, V]]] | None
    _epairs: Callable[[Sequence[tuple[K, V]]], tuple[bytearray, bytearray]] | None
    _rd: tuple[
        MapHandle,
        Callable[[int, bytes, int], bytes | None],
        Callable[[K], bytes],
        Callable[[bytes], V],
    ]
    # (handle, its raw update, key encode, value encode)
    _wr: tuple[
        MapHandle,
        Callable[[int, bytes, bytes, int], None],
        Callable[[K], bytes],
        Callable[[V], bytes],
    ]

    def __init__(
        self,
        handle: MapHandle,
        *,
        key: construct.Construct[K, K] | Codec[K],
        value: construct.Construct[V, V] | Codec[V],
    ) -> None:
        self._setup(handle, _codec(key, "key"), "TypedMap")
        vc = _codec(value, "value")
        _check_size(vc, handle.value_size, "value", handle)
        self._value_codec = vc
        self._ev = vc.encode
        self._dv = vc.decode
        self._rd = (handle, handle._lookup_raw, self._ek, vc.decode)
        self._wr = (handle, handle._update_raw, self._ek, vc.encode)
        pp = pair_plan(self._key_codec, vc)
        self._pairs = None if pp is None else pp.decode_pairs
        self._epairs = None if pp is None else pp.encode_pairs

    @property
    def value_codec(self) -> Codec[V]:
        """The codec that turns values into the map's value bytes."""
        return self._value_codec

    def __getitem__(self, key: K) -> V:
        """The value under ``key``: one encode, one BPF_MAP_LOOKUP_ELEM, one decode.

        Raises:
            KeyNotFoundError: the key is absent (also a KeyError).
            CodecError: the key does not encode, or the value does not decode.
            MapClosedError: the handle is closed.
        """
        h, lookup, ek, dv = self._rd
        fd = h._fd
        if fd < 0:
            self._fd()
        raw = lookup(fd, ek(key), 0)
        if raw is None:
            raise _not_found("lookup", key)
        return dv(raw)

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V, /) -> V: ...
    @overload
    def get(self, key: K, default: T, /) -> V | T: ...
    def get(self, key: K, default: Any = None, /) -> Any:
        """The value under ``key``, or ``default`` when it is absent."""
        h, lookup, ek, dv = self._rd
        fd = h._fd
        if fd < 0:
            self._fd()
        raw = lookup(fd, ek(key), 0)
        if raw is None:
            return default
        return dv(raw)

    def __setitem__(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` (BPF_ANY: insert or overwrite).

        Raises:
            CodecError: key or value does not encode; nothing was written.
            MapFullError: a hash map has no room.
            KeyNotFoundError: an ARRAY index out of range.
        """
        h, update, ek, ev = self._wr
        fd = h._fd
        if fd < 0:
            self._fd()
        update(fd, ek(key), ev(value), 0)

    def _encode_one(self, value: V) -> bytes:
        return self._ev(value)

    def _encode_values(self, values: Sequence[V]) -> bytes:
        return self._value_codec.encode_many(values)

    def _decode_values(self, data: bytes, count: int) -> list[V]:
        return self._value_codec.decode_many(data, count)

    def _encode_pairs(self, items: list[tuple[K, V]]) -> tuple[Any, Any]:
        fast = self._epairs
        if fast is not None:
            try:
                return fast(items)
            except Exception:  # a value the fast code hands over: the codecs decide
                pass
        return super()._encode_pairs(items)

    def _decode_pairs(self, kb: Any, vb: Any, count: int) -> list[tuple[K, V]]:
        fast = self._pairs
        if fast is not None:
            try:
                return fast(kb, vb)
            except Exception:  # a record the fast code hands over: the codecs decide
                pass
        dk, dv = self._key_codec.decode_many, self._value_codec.decode_many
        return list(zip(dk(kb, count), dv(vb, count), strict=True))


class PerCpuTypedMap(_KeyedMap[K, list[V], Sequence[V]]):
    """A per-CPU BPF map as a ``MutableMapping[K, list[V]]``: one value per possible CPU.

    Reading a key gives a list of :func:`num_possible_cpus` values (index =
    CPU number; CPUs that are possible but offline read as zero values).
    Writing takes any sequence of exactly that many values. For the usual
    reductions use :meth:`sum` (one key), :meth:`totals` (every key) and
    :meth:`sum_all` (everything).

    Example::

        pc = PerCpuTypedMap(h, key=Int32ul, value=Int64ul)
        pc[0] = [0] * num_possible_cpus()
        pc.sum(0)        # -> int, summed across CPUs

    Everything else (ARRAY rules, views, batches, errors) is as in
    :class:`TypedMap`.

    Raises:
        NotSupportedError: the map is not per-CPU (the message names the
            wrapper to use).
        SizeMismatchError: a schema's size differs from the map's.
    """

    __slots__ = ("_dvs", "_evs", "_ncpus", "_rdp", "_slot")

    _value_codec: Codec[V]
    _ncpus: int
    _slot: int
    _dvs: Callable[[bytes, int, int], list[V]]
    _evs: Callable[[Sequence[V], int], bytes]
    # (handle, its raw lookup, key encode, decoder of one key's per-CPU buffer)
    _rdp: tuple[
        MapHandle,
        Callable[[int, bytes, int], bytes | None],
        Callable[[K], bytes],
        Callable[[bytes], list[V]],
    ]

    def __init__(
        self,
        handle: MapHandle,
        *,
        key: construct.Construct[K, K] | Codec[K],
        value: construct.Construct[V, V] | Codec[V],
    ) -> None:
        self._setup(handle, _codec(key, "key"), "PerCpuTypedMap")
        vc = _codec(value, "value")
        _check_size(vc, handle.value_size, "value", handle)
        self._value_codec = vc
        self._ncpus = handle._ncpus
        self._slot = handle._slot
        self._dvs = vc.decode_strided
        self._evs = vc.encode_strided
        self._dv = self._decode_one
        self._rdp = (
            handle,
            handle._lookup_raw,
            self._ek,
            vc.strided_decoder(handle._ncpus, handle._slot),
        )

    @property
    def value_codec(self) -> Codec[V]:
        """The codec for one CPU's value."""
        return self._value_codec

    @property
    def num_cpus(self) -> int:
        """How many values each key has: the number of possible CPUs."""
        return self._ncpus

    def _decode_one(self, raw: bytes) -> list[V]:
        return self._dvs(raw, self._ncpus, self._slot)

    def _encode_one(self, values: Sequence[V]) -> bytes:
        ncpus = self._ncpus
        if not isinstance(values, Sequence) or isinstance(values, str | bytes | bytearray):
            raise CodecError(
                "value",
                values,
                f"a per-CPU map needs a sequence of {ncpus} values (one per possible CPU), "
                f"got {type(values).__name__}",
            )
        if len(values) != ncpus:
            raise SizeMismatchError(
                "value: per-CPU value list",
                len(values),
                ncpus,
                "one value per possible CPU (num_possible_cpus())",
            )
        return self._evs(values, self._slot)

    def __getitem__(self, key: K) -> list[V]:
        """One value per possible CPU for ``key``.

        Raises:
            KeyNotFoundError: the key is absent.
            CodecError: the key does not encode or a value does not decode.
        """
        h, lookup, ek, dvs = self._rdp
        fd = h._fd
        if fd < 0:
            self._fd()
        raw = lookup(fd, ek(key), 0)
        if raw is None:
            raise _not_found("lookup", key)
        return dvs(raw)

    @overload
    def get(self, key: K, /) -> list[V] | None: ...
    @overload
    def get(self, key: K, default: list[V], /) -> list[V]: ...
    @overload
    def get(self, key: K, default: T, /) -> list[V] | T: ...
    def get(self, key: K, default: Any = None, /) -> Any:
        """The per-CPU values under ``key``, or ``default`` when it is absent."""
        h, lookup, ek, dvs = self._rdp
        fd = h._fd
        if fd < 0:
            self._fd()
        raw = lookup(fd, ek(key), 0)
        if raw is None:
            return default
        return dvs(raw)

    def __setitem__(self, key: K, value: Sequence[V]) -> None:
        """Store one value per possible CPU under ``key`` (BPF_ANY).

        Args:
            value: any sequence of exactly :attr:`num_cpus` values.

        Raises:
            SizeMismatchError: not exactly one value per possible CPU;
                nothing was written.
            CodecError: a key or value does not encode; nothing was written.
        """
        self._put(key, value, 0)

    def _encode_values(self, values: Sequence[Sequence[V]]) -> bytes:
        return b"".join([self._encode_one(v) for v in values])

    def _decode_values(self, data: bytes, count: int) -> list[list[V]]:
        n = self._ncpus
        flat = self._dvs(data, count * n, self._slot)
        return [flat[i : i + n] for i in range(0, count * n, n)]

    # -- reductions ----------------------------------------------------------------

    def sum(self, key: K) -> V:
        """The values of ``key`` summed across CPUs.

        Numbers (``int`` and ``float``, not ``bool``) are added. Records
        (construct-typing dataclasses, construct Containers) are added field
        by field, recursing into nested records and element-wise into
        arrays; fields that are not numbers (bytes, strings, bools, enums,
        padding) keep the value of CPU 0. The result has the type of one
        CPU's value.

        Raises:
            KeyNotFoundError: the key is absent.
        """
        return _reduce_sum(self[key])

    def totals(self) -> Iterator[tuple[K, V]]:
        """Every key with its values summed across CPUs (as :meth:`sum`), in batches."""
        for k, values in self._iter_items():
            yield k, _reduce_sum(values)

    def sum_all(self) -> V:
        """Everything summed: across CPUs and across keys (as :meth:`sum`).

        An empty map sums to the zero value (the value schema's parse of
        zero bytes).
        """
        acc: Any = _MISSING
        for _, values in self._iter_items():
            s = _reduce_sum(values)
            acc = s if acc is _MISSING else _add(acc, s)
        if acc is _MISSING:
            return self._value_codec.decode(bytes(self._value_codec.size))
        result: V = acc
        return result


def _add(a: Any, b: Any) -> Any:
    """a + b for numbers, field-wise for records, element-wise for arrays; else a."""
    ta = type(a)
    if ta is int or ta is float:
        return a + b
    if isinstance(a, list):
        return ta(_add(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):  # construct Container; "_io" and other private keys kept
        out = copy.copy(a)
        for name, x in a.items():
            if not (isinstance(name, str) and name.startswith("_")):
                out[name] = _add(x, b[name])
        return out
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        rec = copy.copy(a)
        for f in dataclasses.fields(a):
            object.__setattr__(rec, f.name, _add(getattr(a, f.name), getattr(b, f.name)))
        return rec
    return a


def _reduce_sum(values: list[V]) -> V:
    first = values[0]
    if type(first) is int or type(first) is float:
        total: V = sum(values)  # type: ignore[arg-type, assignment]
        return total
    acc: Any = first
    for v in values[1:]:
        acc = _add(acc, v)
    result: V = acc
    return result


# ---------------------------------------------------------------------------- keyless maps


class _KeylessMap(_OnHandle, Generic[V]):
    __slots__ = ("_dv", "_ev", "_h", "_value_codec")

    _wrapper: str = ""

    def __init__(self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]) -> None:
        _check_kind(handle, self._wrapper)
        vc = _codec(value, "value")
        _check_size(vc, handle.value_size, "value", handle)
        self._h = handle
        self._value_codec = vc
        self._ev = vc.encode
        self._dv = vc.decode

    @property
    def value_codec(self) -> Codec[V]:
        """The codec for the elements."""
        return self._value_codec

    def __repr__(self) -> str:
        h = self._h
        return (
            f"{type(self).__name__}(value={self._value_codec.name}, map={h.name!r}"
            f"{', closed' if h.closed else ''})"
        )


class _PushPop(_KeylessMap[V]):
    """QUEUE and STACK: push, pop, peek, drain."""

    __slots__ = ()

    def push(self, value: V, *, overwrite: bool = False) -> None:
        """Add ``value``.

        Args:
            overwrite: when full, drop the oldest element to make room
                (BPF_EXIST) instead of raising.

        Raises:
            CodecError: the value does not encode; nothing was pushed.
            MapFullError: full and not ``overwrite``.
        """
        self._h.push(self._ev(value), MapFlags.EXIST if overwrite else MapFlags.ANY)

    def pop(self) -> V | None:
        """Remove and return the next element, or None when empty."""
        raw = self._h.pop()
        return None if raw is None else self._dv(raw)

    def peek(self) -> V | None:
        """The next element without removing it, or None when empty."""
        raw = self._h.peek()
        return None if raw is None else self._dv(raw)

    def drain(self, max_items: int | None = None) -> Iterator[V]:
        """Pop elements until the map is empty (or ``max_items`` were popped).

        Each element is removed as it is yielded. With producers still
        pushing, the drain goes on as long as elements keep coming: pass
        ``max_items`` to bound it. There is deliberately no ``__iter__``
        (a plain ``for x in q`` must not empty the map) and no ``len()``:
        the kernel keeps no count for these maps.
        """
        self._h._open_fd()
        return self._drain_gen(max_items)

    def _drain_gen(self, max_items: int | None) -> Iterator[V]:
        pop = self._h.pop
        dv = self._dv
        n = 0
        while max_items is None or n < max_items:
            raw = pop()
            if raw is None:
                return
            n += 1
            yield dv(raw)

    def __bool__(self) -> bool:
        """Whether an element is waiting (one peek)."""
        return self._h.peek() is not None


class TypedQueue(_PushPop[V]):
    """A BPF QUEUE map of ``V`` (first in, first out).

    Example::

        q = TypedQueue(h, value=DataclassStruct(Event))
        q.push(Event(pid=1, kind=2))
        q.pop()            # -> Event | None
        for ev in q.drain(): ...

    Raises:
        NotSupportedError: the map is not a QUEUE (the message names the
            wrapper to use).
        SizeMismatchError: the schema size differs from the map's value size.
    """

    __slots__ = ()
    _wrapper = "TypedQueue"


class TypedStack(_PushPop[V]):
    """A BPF STACK map of ``V`` (last in, first out); same methods as :class:`TypedQueue`."""

    __slots__ = ()
    _wrapper = "TypedStack"


class TypedBloomFilter(_KeylessMap[V]):
    """A BPF BLOOM_FILTER map of ``V``: ``add(v)`` and ``v in bf``.

    ``in`` may answer True for a value never added (a false positive, at
    the rate the filter's size and hash count give) but never False for one
    that was added. Elements cannot be removed or listed.

    Raises:
        NotSupportedError: the map is not a BLOOM_FILTER.
        SizeMismatchError: the schema size differs from the map's value size.
    """

    __slots__ = ()
    _wrapper = "TypedBloomFilter"

    def add(self, value: V) -> None:
        """Add ``value`` to the set.

        Raises:
            CodecError: the value does not encode; nothing was added.
        """
        self._h.push(self._ev(value))

    def __contains__(self, value: V) -> bool:
        """Whether ``value`` may be in the set (no false negatives)."""
        return self._h.lookup_bloom_filter(self._ev(value))


# ---------------------------------------------------------------------------- typed()

AnyTyped: TypeAlias = (
    "TypedMap[Any, Any] | PerCpuTypedMap[Any, Any] | TypedQueue[Any] "
    "| TypedStack[Any] | TypedBloomFilter[Any]"
)
"""Whatever :func:`typed` may return when the schemas come from BTF."""


@overload
def typed(
    handle: MapHandle,
    *,
    key: construct.Construct[K, K] | Codec[K],
    value: construct.Construct[V, V] | Codec[V],
) -> TypedMap[K, V] | PerCpuTypedMap[K, V]: ...
@overload
def typed(
    handle: MapHandle,
    *,
    value: construct.Construct[V, V] | Codec[V],
) -> (
    TypedQueue[V] | TypedStack[V] | TypedBloomFilter[V] | TypedMap[Any, V] | PerCpuTypedMap[Any, V]
): ...
@overload
def typed(
    handle: MapHandle,
    *,
    key: construct.Construct[K, K] | Codec[K],
) -> TypedMap[K, Any] | PerCpuTypedMap[K, Any]: ...
@overload
def typed(handle: MapHandle) -> AnyTyped: ...
def typed(handle: MapHandle, *, key: Any = None, value: Any = None) -> AnyTyped:
    """Wrap ``handle`` in the typed wrapper its map type needs.

    ==========================  ===========================
    map type                    returns
    ==========================  ===========================
    per-CPU (PERCPU_HASH, ...)  :class:`PerCpuTypedMap`
    QUEUE / STACK               :class:`TypedQueue` / :class:`TypedStack`
    BLOOM_FILTER                :class:`TypedBloomFilter`
    any other keyed map         :class:`TypedMap`
    ==========================  ===========================

    A schema not given comes from the map's BTF (``typedmaps.btf``), so
    ``typed(obj.maps["flows"])`` works for maps of a BPF object built with
    ``-g``. Keyless maps take only ``value=``.

    Static typing: the map type is known only at run time, so the return
    type is the union of the wrappers that fit the arguments given
    (``TypedMap[K, V] | PerCpuTypedMap[K, V]`` with both schemas; with no
    schemas every wrapper, element types Any). Narrow it with
    ``isinstance``, or call the wrapper class directly when you know the
    map type: that gives the exact type.

    Raises:
        NotSupportedError: the map type has no typed wrapper (RINGBUF, ...),
            ``key=`` was given for a keyless map, or a schema is missing and
            BTF schemas are not available.
        SizeMismatchError: a schema's size differs from the map's.
    """
    if not isinstance(handle, MapHandle):
        raise TypeError(f"typed() needs a MapHandle or Map, got {type(handle).__name__}")
    mt = handle.map_type
    wrapper = _wrapper_for(mt)
    if wrapper is None:
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"the {mt.name} map {handle.name!r} is not a key/value map: no typed wrapper fits",
        )
    keyless = mt.is_keyless
    if keyless and key is not None:
        raise NotSupportedError(
            _errno.EINVAL,
            "typed",
            f"{mt.name} maps have no keys: pass only value= (or use {wrapper}(h, value=...))",
        )
    if value is None or (key is None and not keyless):
        btf_key, btf_value = _btf_schemas(handle)
        value = btf_value if value is None else value
        if key is None and not keyless:
            if btf_key is None:
                raise NotSupportedError(
                    _errno.EINVAL, "typed", f"no key schema for the {mt.name} map {handle.name!r}"
                )
            key = btf_key
    if mt is MapType.QUEUE:
        return TypedQueue(handle, value=value)
    if mt is MapType.STACK:
        return TypedStack(handle, value=value)
    if mt is MapType.BLOOM_FILTER:
        return TypedBloomFilter(handle, value=value)
    if mt.is_percpu:
        return PerCpuTypedMap(handle, key=key, value=value)
    return TypedMap(handle, key=key, value=value)


def _btf_schemas(handle: MapHandle) -> tuple[Any, Any]:
    """The (key, value) schemas from the map's BTF, via typedmaps.btf (imported lazily)."""
    try:
        btf = importlib.import_module(f"{__package__}.btf")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.btf":
            raise
        raise NotSupportedError(
            _errno.EOPNOTSUPP,
            "typed",
            f"schemas are needed for the {handle.map_type.name} map {handle.name!r}: pass "
            "key= and value= (this typedmaps has no BTF schema support)",
        ) from None
    schemas: tuple[Any, Any] = btf.map_schemas(handle)
    return schemas
