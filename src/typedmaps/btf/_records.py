"""What ``typedmaps gen`` modules are made of, besides the BTF leaf constructs.

- :class:`OpenIntEnum`: an ``IntEnum`` that keeps values it has no member
  for as pseudo-members, so an enum field always holds its enum type and
  decoding then encoding gives back the same bytes.
- :class:`CharBytes`: a C ``char[N]`` as ``bytes`` only (one static type).
- :func:`ListArray` and :class:`TupleArray`: C arrays as ``list`` (value
  records, mutable) or ``tuple`` (key records, hashable), typed so that
  multi-dimensional arrays are ``list[list[int]]`` / ``tuple[tuple[int, ...], ...]``.
- :class:`FrozenDataclassStruct`: construct-typing's ``DataclassStruct`` for
  frozen dataclasses (key records), which the original cannot decode.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct
from construct_typed.generic_wrapper import Adapter, Construct

if TYPE_CHECKING:
    from ._constructs import FastLeaf

T = TypeVar("T")
B = TypeVar("B")
D = TypeVar("D", bound=DataclassMixin)


class OpenIntEnum(enum.IntEnum):
    """An ``IntEnum`` whose unknown values are pseudo-members, never errors.

    ``Color(7)`` for a value no enumerator has gives a ``Color`` named
    ``UNKNOWN_7`` whose value is 7: it compares, hashes, pickles and encodes
    as the int 7, and ``isinstance(x, Color)`` holds. So a field typed
    ``Color`` really holds a ``Color`` for every value C can store, and a
    decoded record encodes back to the same bytes. Pseudo-members are made
    on each lookup and not cached (a map full of distinct unknown values
    cannot grow the class). Non-integers still raise ``ValueError``.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value}"
        pseudo._value_ = value
        return pseudo


class CharBytes(Construct[bytes, bytes]):
    """A C ``char[N]`` as ``bytes``: the array without its trailing NULs.

    Decoding strips only the NULs at the end, so every byte pattern decodes
    to a value that encodes back to the same N bytes (``b"ab\\0xy"`` keeps
    its inner NUL). Encoding takes ``bytes``, ``bytearray`` or
    ``memoryview`` of at most N bytes and zero-fills; ``str`` is refused
    (encode text yourself: the C side has no encoding).
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length

    def _raw(self, obj: Any, path: Any) -> bytes:
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise cs.StringError(
                f"expected bytes for char[{self.length}], got {type(obj).__name__}", path=path
            )
        raw = bytes(obj)
        if len(raw) > self.length:
            raise cs.StringError(f"{len(raw)} bytes do not fit in char[{self.length}]", path=path)
        return raw + bytes(self.length - len(raw))

    def _parse(self, stream: Any, context: Any, path: Any) -> bytes:
        return bytes(cs.stream_read(stream, self.length, path)).rstrip(b"\0")

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        cs.stream_write(stream, self._raw(obj, path), self.length, path)
        return obj

    def _sizeof(self, context: Any, path: Any) -> int:
        return self.length

    def typedmaps_fast_leaf(self) -> FastLeaf:
        """The codec's fast leaf: the N bytes as one ``"Ns"`` item, checked as building is."""
        n = self.length
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"char array length {n!r}")

        def decode(data: bytes) -> bytes:
            return data.rstrip(b"\0")

        def encode(obj: Any) -> bytes:
            if not isinstance(obj, bytes | bytearray | memoryview):
                raise TypeError(type(obj).__name__)
            raw = bytes(obj)
            if len(raw) > n:
                raise ValueError(f"{len(raw)} bytes do not fit in char[{n}]")
            return raw + bytes(n - len(raw))

        return f"{n}s", decode, encode


def ListArray(count: int, subcon: cs.Construct[T, B]) -> cs.Construct[list[T], Sequence[B]]:
    """``construct.Array(count, subcon)``, typed as decoding to ``list`` (not ``ListContainer``).

    The object is a plain ``cs.Array`` (the codec's fast plans know it);
    only its static type differs, so that a two-dimensional array is
    ``list[list[int]]`` for mypy and builds from any sequences.
    """
    return cast("cs.Construct[list[T], Sequence[B]]", cs.Array(count, subcon))


class TupleArray(Adapter[Any, Any, tuple[T, ...], Sequence[B]], Generic[T, B]):
    """A C array that decodes to a ``tuple`` (hashable, for key records).

    Builds from any sequence of ``count`` elements, as ``construct.Array``.
    """

    def __init__(self, count: int, subcon: cs.Construct[T, B]) -> None:
        super().__init__(cs.Array(count, subcon))
        self.count = count

    def _decode(self, obj: Any, context: Any, path: Any) -> tuple[T, ...]:
        return tuple(obj)

    def _encode(self, obj: Any, context: Any, path: Any) -> Any:
        return obj

    def typedmaps_fast_adapter(self) -> tuple[Any, None]:
        """The codec's adapter functions (typedmaps.codec.FAST_ADAPTER_HOOK): tuple, identity."""
        return tuple, None


class FrozenDataclassStruct(DataclassStruct[D]):
    """``DataclassStruct`` that also decodes frozen dataclasses.

    construct-typing's ``DataclassStruct`` sets the ``init=False`` fields
    (padding, ``csfield_noinit``) with ``setattr`` after building the
    object, which a ``frozen=True`` dataclass refuses. This one stores them
    the way the dataclass's own ``__init__`` does. Everything else is the
    same; mutable dataclasses work too.
    """

    def _decode(self, obj: Any, context: Any, path: Any) -> D:
        fields = dataclasses.fields(self.dc_type)
        dc = self.dc_type(**{f.name: obj[f.name] for f in fields if f.init})
        for f in fields:
            if not f.init:
                object.__setattr__(dc, f.name, obj[f.name])
        return dc

    def typedmaps_fast_record(self) -> str:
        """How parse sets init=False fields, for the codec (typedmaps.codec.FAST_RECORD_HOOK)."""
        return "object.__setattr__"
