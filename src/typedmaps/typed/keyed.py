"""TypedMap: a keyed BPF map (HASH, ARRAY, LRU_HASH, LPM_TRIE, ...) as a MutableMapping[K, V]."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from ..codec import Codec, pair_plan
from ..flags import MapType
from ..handle import MapHandle
from . import _fast, _memory
from ._base import K, T, V, _check_layout, _check_size, _codec, _KeyedMap, _not_found

if TYPE_CHECKING:
    import construct
    import numpy.typing as npt


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
        Callable[[bytes, int], bytes | None],
        Callable[[K], bytes],
        Callable[[bytes], V],
    ]
    # (handle, its raw update, key encode, value encode)
    _wr: tuple[
        MapHandle,
        Callable[[bytes, bytes, int], None],
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
        _check_layout(handle, self._key_codec, vc, "TypedMap")
        self._value_codec = vc
        self._ev = vc.encode
        self._dv = vc.decode
        self._rd = (handle, handle._lookup_raw, self._ek, vc.decode)
        self._wr = (handle, handle._update_raw, self._ek, vc.encode)
        pp = pair_plan(self._key_codec, vc)
        self._pairs = None if pp is None else pp.decode_pairs
        self._epairs = None if pp is None else pp.encode_pairs
        if self.__class__ is TypedMap:  # (a subclass keeps the methods it has)
            if _memory.wants(handle):
                _memory.adopt(self)  # an mmapable ARRAY: element access through its memory
            if self.__class__ is TypedMap:
                _fast.adopt(self, percpu=False)  # element methods generated for this map

    @classmethod
    def from_numpy(
        cls,
        array: npt.NDArray[Any],
        *,
        key: construct.Construct[Any, Any] | Codec[Any] | None = None,
        value: construct.Construct[Any, Any] | Codec[Any] | None = None,
        map_type: MapType = MapType.HASH,
        max_entries: int | None = None,
        name: str = "",
        map_flags: int = 0,
    ) -> TypedMap[Any, Any]:
        """A new HASH map holding ``array``'s records (its fields ``key`` and ``value``).

        The map is made with :meth:`MapHandle.create` (``max_entries``: the
        array's length unless given), with schemas derived from the dtype
        unless given, and filled with one BPF_MAP_UPDATE_BATCH. The wrapper
        owns the new map: close it, or use ``with``. docs/columnar.md.

        Raises:
            ArgumentError: not a structured array with ``key`` and ``value``
                fields, or ``max_entries`` below its length.
            DtypeError: a dtype without a schema (overlapping fields, objects, text).
            ExtraNotInstalledError: numpy is not installed.
        """
        from .columnar import from_numpy

        made: TypedMap[Any, Any] = from_numpy(
            cls,
            array,
            key=key,
            value=value,
            map_type=map_type,
            max_entries=max_entries,
            name=name,
            map_flags=map_flags,
        )
        return made

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
        _, lookup, ek, dv = self._rd
        raw = lookup(ek(key), 0)
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
        _, lookup, ek, dv = self._rd
        raw = lookup(ek(key), 0)
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
        _, update, ek, ev = self._wr
        update(ek(key), ev(value), 0)

    def read_into(self, key: K, record: V) -> V:
        """Read the value under ``key`` into ``record``, an instance of the value's dataclass.

        For hot loops that read many elements and keep none: on an mmapable
        ARRAY (the memory path) the fields are stored into ``record``
        straight from the map's memory and no new record is made. Elsewhere
        the value is decoded as for ``m[key]`` and its fields copied in.
        ``record`` is changed only when the read succeeds.

        Returns:
            ``record``.

        Raises:
            KeyNotFoundError: the key is absent.
            ArgumentError: ``record`` is not an instance of the value schema's
                dataclass (a ``DataclassStruct`` value schema is needed).
        """
        _memory.read_into_copy(self, key, record)
        return record

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
