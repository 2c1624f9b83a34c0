"""What every typed wrapper shares: helpers, views, the handle underneath, keyed-map behaviour."""

from __future__ import annotations

import contextlib
import errno as _errno
import struct
import sys
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
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeVar, overload

from .._args import U32_MAX, bad, check_int
from .._handle_batch import DEFAULT_BATCH
from .._life import NoCopy
from ..codec import Codec, make_codec
from ..errors import (
    IterationAbortedError,
    KeyNotFoundError,
    NotSupportedError,
    SizeMismatchError,
    TypedMapsError,
)
from ..flags import MapFlags, MapType
from ..handle import MapHandle

if TYPE_CHECKING:
    import construct
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

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
_NO_WRAPPER: Final = frozenset({MapType.UNSPEC, MapType.ARENA})
#: Event stream maps: records flow through them (typed/events.py).
_STREAMS: Final = {
    MapType.RINGBUF: "TypedRingBuffer",
    MapType.PERF_EVENT_ARRAY: "TypedPerfBuffer",
    MapType.USER_RINGBUF: "TypedUserRingBuffer",
}
_MISSING: Final[Any] = object()
#: Full reads decode and hand out records this many at a time (see _KeyedMap._slices).
_SLICE: Final = 128


# ---------------------------------------------------------------------------- helpers


def _wrapper_for(mt: MapType) -> str | None:
    """The name of the typed wrapper that fits a map type, or None."""
    if mt in _NO_WRAPPER:
        return None
    stream = _STREAMS.get(mt)
    if stream is not None:
        return stream
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
        raise bad(wrapper, "handle", handle, "a MapHandle or Map")
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


def _check_layout(
    handle: MapHandle, key: Codec[Any] | None, value: Codec[Any], wrapper: str
) -> None:
    """Once, at wrapping: the schemas against the map's BTF layout (see _layout.py)."""
    from ._layout import check_layout

    check_layout(handle, key, value, wrapper)


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_found(op: str, key: object) -> KeyNotFoundError:
    return KeyNotFoundError(_errno.ENOENT, op, f"key not found: {_short(key)}")


def _is_array(obj: object) -> bool:
    """Whether ``obj`` is a numpy array (without importing numpy: no array without it)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


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


class _OnHandle(NoCopy):
    """What every typed wrapper shares: the handle underneath and its lifetime.

    A wrapper does not own a separate fd: closing it (or leaving its
    ``with`` block) closes the handle it was made over. Every call goes
    through the handle, whose in-flight accounting makes close() from
    another thread safe. Copying or pickling a wrapper is refused, as for
    the handle.
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
    _lookup: Callable[[bytes, int], bytes | None]
    # The hot paths unpack one tuple instead of loading four attributes:
    # (handle, its raw lookup, key encode, value decode).
    _rd: tuple[MapHandle, Callable[[bytes, int], bytes | None], Callable[[K], bytes], Any]
    _update: Callable[[bytes, bytes, int], None]
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

    def _check_open(self) -> None:
        """Raise the handle's error if it is closed (the syscalls check again, in flight)."""
        self._h._open_fd()

    # -- element operations shared by both wrappers ---------------------------

    def __delitem__(self, key: K) -> None:
        """Delete ``key``.

        Raises:
            KeyNotFoundError: the key is absent (also a KeyError).
            NotSupportedError: ARRAY maps: their elements always exist
                (assign a zero value instead, or use :meth:`clear`).
            CodecError: the key does not encode.
        """
        self._check_open()
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
        kb = self._ek(key)
        vb = self._encode_one(value)
        self._update(kb, vb, flags)

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
        _, lookup, ek, _ = self._rd
        return lookup(ek(key), 0) is not None  # type: ignore[arg-type]

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
        self._check_open()
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
        raw = self._lookup(kb, 0)
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
        self._check_open()
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
        self._check_open()
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
            self._update(struct.pack("=I", i), zero, 0)

    # -- iteration ---------------------------------------------------------------

    def __iter__(self) -> Iterator[K]:
        """Iterate over the keys (a fresh read of the map, in the kernel's order).

        ARRAY maps yield every index 0..max_entries-1 without a syscall.
        """
        self._check_open()
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
        self._check_open()
        return self._decode_chunks(self._raw_chunks())

    def _iter_values(self) -> Iterator[_VO]:
        self._check_open()
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
        return self._h._walk_raw(self._batch_size)

    def __len__(self) -> int:
        """The number of elements.

        ARRAY maps: max_entries (every index exists), no syscall. Other maps
        keep no count: this reads the whole map (in batches where the map
        type allows, else one GET_NEXT_KEY per key), so it costs as much as
        a full iteration. ``bool(m)`` is cheap: it reads one key.
        """
        h = self._h
        self._check_open()
        if self._fixed:
            return h.max_entries
        if self._batch:
            return sum(count for count, _, _ in self._raw_chunks())
        return sum(1 for _ in h.keys())  # noqa: SIM118

    def __bool__(self) -> bool:
        """Whether the map has at least one element (one GET_NEXT_KEY)."""
        h = self._h
        self._check_open()
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
            pairs: a mapping, an iterable of (key, value) pairs, or a numpy
                structured array of records (see :meth:`to_numpy`; written
                without encoding each value in Python, 4096 records a
                syscall, every record checked before the first).
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
        self._check_open()
        if _is_array(pairs):
            from . import columnar

            return columnar.update_batch(self, pairs, elem_flags)
        op = "update_batch"
        if isinstance(pairs, Mapping):
            items = list(pairs.items())
        elif isinstance(pairs, Iterable) and not isinstance(pairs, str | bytes):
            items = list(pairs)
        else:
            raise bad(op, "pairs", pairs, "a mapping or an iterable of (key, value) pairs")
        try:
            kb, vb = self._encode_pairs(items)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, TypedMapsError):
                raise
            # Found only on this error path, so that well-formed batches pay nothing.
            for i, pair in enumerate(items):
                if not isinstance(pair, tuple | list) or len(pair) != 2:
                    raise bad(op, f"pairs[{i}]", pair, "a (key, value) pair") from None
            raise bad(op, "pairs", items[:3], f"(key, value) pairs ({exc})") from exc
        return self._h.update_batch(kb, vb, len(items), elem_flags)

    # -- columns: numpy, pyarrow, pandas (typed/columnar.py) ----------------------

    @property
    def dtype(self) -> np.dtype[np.void]:
        """The numpy dtype of one element: fields ``key`` and ``value`` (see :meth:`to_numpy`).

        Raises:
            DtypeError: a schema part has no dtype equivalent (the path names it).
            ExtraNotInstalledError: numpy is not installed.
        """
        from . import columnar

        return columnar.layout(self, "dtype").record  # type: ignore[no-any-return]

    def to_numpy(self) -> npt.NDArray[np.void]:
        """Every element as one numpy structured array (fields ``key`` and ``value``).

        Read with BPF_MAP_LOOKUP_BATCH into buffers numpy owns, with no
        Python work per element; per-CPU maps give ``value`` an axis of one
        value per possible CPU. docs/columnar.md has the dtype rules.

        Raises:
            DtypeError: a schema part has no dtype equivalent (a bitfield, ...).
            ExtraNotInstalledError: numpy is not installed (``typedmaps[numpy]``).
            IterationAbortedError: the map held more than max_entries
                elements while it was read (it changed under the read).
        """
        from . import columnar

        return columnar.to_numpy(self)  # type: ignore[no-any-return]

    def to_arrow(self) -> pa.Table:
        """The map as a pyarrow Table with columns ``key`` and ``value``, through :meth:`to_numpy`.

        Raises:
            ExtraNotInstalledError: pyarrow is not installed (``typedmaps[arrow]``).
        """
        from . import columnar

        return columnar.to_arrow(self)

    def to_pandas(self) -> pd.DataFrame:
        """The map as a pandas DataFrame, one column per leaf field, through :meth:`to_numpy`.

        Raises:
            ExtraNotInstalledError: pandas is not installed (``typedmaps[pandas]``).
        """
        from . import columnar

        return columnar.to_pandas(self)

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
        self._check_open()
        if self._fixed:
            raise self._no_delete("delete_batch")
        if not isinstance(keys, Iterable) or isinstance(keys, str | bytes):
            raise bad("delete_batch", "keys", keys, "an iterable of keys")
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
        else:
            batch_size = check_int(batch_size, "batch_size", op, U32_MAX, low=1)
        opts = h._batch_opts(0, 0, op)
        return self._decode_chunks(h._lookup_batch_raw(op, batch_size, opts))

    def _decode_chunks(self, chunks: Iterator[tuple[int, bytes, bytes]]) -> Iterator[tuple[K, _VO]]:
        decode = self._decode_pairs
        return chain.from_iterable(decode(kb, vb, n) for n, kb, vb in self._slices(chunks))

    def _decode_pairs(self, kb: Any, vb: Any, count: int) -> list[tuple[K, _VO]]:
        """The (key, value) pairs of one slice: raw keys and values back to back."""
        return list(zip(self._dkm(kb, count), self._decode_values(vb, count), strict=True))
