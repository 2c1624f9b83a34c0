"""PerCpuTypedMap: a per-CPU BPF map as a MutableMapping[K, list[V]], one value per possible CPU."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, overload

from ..codec import Codec
from ..errors import CodecError, SizeMismatchError
from ..flags import MapType
from ..handle import MapHandle
from . import _fast
from ._base import _MISSING, K, T, V, _check_layout, _check_size, _codec, _KeyedMap, _not_found

if TYPE_CHECKING:
    import construct
    import numpy.typing as npt


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
        Callable[[bytes, int], bytes | None],
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
        _check_layout(handle, self._key_codec, vc, "PerCpuTypedMap")
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
        if self.__class__ is PerCpuTypedMap:  # (a subclass keeps the methods it has)
            _fast.adopt(self, percpu=True)  # element methods generated for this map

    @classmethod
    def from_numpy(
        cls,
        array: npt.NDArray[Any],
        *,
        key: construct.Construct[Any, Any] | Codec[Any] | None = None,
        value: construct.Construct[Any, Any] | Codec[Any] | None = None,
        map_type: MapType = MapType.PERCPU_HASH,
        max_entries: int | None = None,
        name: str = "",
        map_flags: int = 0,
    ) -> PerCpuTypedMap[Any, Any]:
        """A new PERCPU_HASH map holding ``array``'s records (its fields ``key`` and ``value``).

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

        made: PerCpuTypedMap[Any, Any] = from_numpy(
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
        if type(values) is not list:
            # Read at most one value past the CPU count, into a real list: a
            # sequence whose len() and iteration disagree cannot change the
            # size of what is written.
            values = list(islice(values, ncpus + 1))
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
        _, lookup, ek, dvs = self._rdp
        raw = lookup(ek(key), 0)
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
        _, lookup, ek, dvs = self._rdp
        raw = lookup(ek(key), 0)
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
