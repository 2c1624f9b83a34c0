"""TypedQueue, TypedStack and TypedBloomFilter: the keyless BPF maps, typed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic

from .._args import check_bool, check_int
from ..codec import Codec
from ..flags import MapFlags
from ..handle import MapHandle
from ._base import V, _check_kind, _check_layout, _check_size, _codec, _OnHandle

if TYPE_CHECKING:
    import construct


# ---------------------------------------------------------------------------- keyless maps


class _KeylessMap(_OnHandle, Generic[V]):
    __slots__ = ("_dv", "_ev", "_h", "_value_codec")

    _wrapper: str = ""

    def __init__(self, handle: MapHandle, *, value: construct.Construct[V, V] | Codec[V]) -> None:
        _check_kind(handle, self._wrapper)
        vc = _codec(value, "value")
        _check_size(vc, handle.value_size, "value", handle)
        _check_layout(handle, None, vc, self._wrapper)
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
        if overwrite is not False:
            check_bool(overwrite, "overwrite", "push")
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
        if max_items is not None:
            max_items = check_int(max_items, "max_items", "drain", 2**63 - 1)
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
