"""The memory path of TypedMap: a BPF_F_MMAPABLE ARRAY read and written without syscalls.

When a :class:`~typedmaps.TypedMap` is made over an open mmapable ARRAY,
:func:`adopt` maps the array (:func:`typedmaps.memory.handle_mapping`) and
gives the instance a class of its own whose element methods are generated
for this map: ``m[i]``, ``m.get(i)``, ``i in m`` and, when the mapping is
writable, ``m[i] = v`` find the element's offset (for an int key, one
index into a table of the offsets, or a range check on big arrays) and
decode with ``struct.Struct.unpack_from`` at that offset, bound once,
followed by the schema's fast-plan statements inline. Every other key
takes the general path: the key schema encodes it, as the syscall path
does.
Full reads (``items()``, ``values()``) slice the memory instead of
BPF_MAP_LOOKUP_BATCH, and ``clear()`` zeroes it.

The semantics are the syscall path's, checked by the tests side by side:
an index past max_entries is :class:`KeyNotFoundError` (lookups: "key not
found"; stores: "index out of range", errno E2BIG as the kernel says), a
key or value that does not encode is :class:`CodecError` before anything
is written, and use after close is :class:`MapClosedError`. When the
kernel maps the array read-only (a frozen map, ``BPF_F_RDONLY_PROG``, a
read-only fd), reads go through memory and writes keep the syscall path,
so the kernel's own answer (MapPermissionError, or success for a
``BPF_F_RDONLY_PROG`` map) is unchanged. Batch writes, ``insert`` and
``replace`` keep the syscall path too.

Closing the handle releases the views these methods use: the next access
raises ValueError inside, turned into the handle's own closed error.
``freeze()`` drops a writable mapping (the kernel refuses to freeze
otherwise); the next access then maps the array again, read-only.
"""

from __future__ import annotations

import errno as _errno
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import construct as cs
from construct_typed import DataclassStruct

from ..errors import ArgumentError, KeyNotFoundError, MapClosedError, MapError, NotSupportedError
from ..memory import MapMemory, handle_mapping, mmapable
from ._base import _array_indices, _not_found

if TYPE_CHECKING:
    from ..codec import Codec
    from ..handle import MapHandle
    from .keyed import TypedMap

__all__ = ["adopt", "read_into_copy", "wants"]

#: Key schemas whose encoding of a non-negative int below 2**31 is that int as
#: the kernel's native u32: for these, an int key is the index itself.
_INDEX_FORMATS: Final = (
    frozenset({"<I", "<i", "=I", "=i", "<L", "<l", "=L", "=l"})
    if sys.byteorder == "little"
    else frozenset({">I", ">i", "=I", "=i", ">L", ">l", "=L", "=l"})
)
#: Zeroing the memory in steps of this many bytes (clear()).
_ZERO_STEP: Final = 1 << 16


def wants(handle: MapHandle) -> bool:
    """Whether a TypedMap over ``handle`` should read through memory (no syscall)."""
    return not handle.closed and mmapable(handle)


def adopt(m: TypedMap[Any, Any]) -> None:
    """Switch ``m`` to the memory path; it keeps the syscall path if the array cannot be mapped."""
    h = m._h
    try:
        mem = handle_mapping(h, None)
    except (MapError, MapClosedError):
        return  # e.g. a value with a spin lock: the kernel maps nothing
    base = _syscall_class(m)
    m.__class__ = _memory_class(base, m, mem)


def _syscall_class(m: TypedMap[Any, Any]) -> type[TypedMap[Any, Any]]:
    cls = type(m)
    base: type[TypedMap[Any, Any]] = cls.__dict__.get("_tm_base", cls)
    return base


def _record_class(codec: Codec[Any]) -> type | None:
    """The dataclass of a DataclassStruct value schema, else None."""
    s: object = codec.schema
    while isinstance(s, cs.Renamed):
        s = s.subcon
    if isinstance(s, DataclassStruct):
        cls: type = s.dc_type
        return cls
    return None


def _not_a_record(m: Any, record: object) -> ArgumentError:
    cls = _record_class(m.value_codec)
    want = f"a {cls.__name__}" if cls is not None else "a dataclass record"
    why = "" if cls is not None else " (read_into needs a DataclassStruct value schema)"
    return ArgumentError(
        f"read_into: record must be {want}, not {type(record).__name__}{why}",
        argument="record",
        value=record,
    )


def read_into_copy(m: Any, key: Any, record: Any) -> Any:
    """TypedMap.read_into on any path: decode as ``m[key]`` does, then copy the fields in."""
    cls = _record_class(m.value_codec)
    if cls is None or type(record) is not cls:
        raise _not_a_record(m, record)
    value = m[key]
    vars(record).update(vars(value))
    return record


def _index_key(codec_schema: object) -> bool:
    s = codec_schema
    while isinstance(s, cs.Renamed):
        s = s.subcon
    return isinstance(s, cs.FormatField) and s.fmtstr in _INDEX_FORMATS


_GET = """
def __getitem__(self, key):
    {find}
    if off < 0:
        off = _offset(self, key)
        if off < 0:
            raise _not_found("lookup", key)
{read_getitem}

def get(self, key, default=None, /):
    {find}
    if off < 0:
        off = _offset(self, key)
        if off < 0:
            return default
{read_get}

def __contains__(self, key):
    {find}
    if off < 0:
        off = _offset(self, key)
        if off < 0:
            return False
    try:
        _mv.nbytes
    except _ValueError:
        return _lost(self, "__contains__", key)
    return True
"""

#: How ``off`` is found for an int key, before the general path (``_offset``):
#: a table of the offsets (indexing it is what struct.pack does with the key:
#: exact ints, bools and ``__index__`` alike; -1 past max_entries and for
#: negative keys, which index the second half), a range check for arrays too
#: big for a table, or nothing for keys that are not the native index.
_FIND_TABLE = """try:
        off = _OFF[key]
    except Exception:
        off = -1"""
_FIND_RANGE = """if type(key) is _int and 0 <= key < _N:
        off = key * _ST
    else:
        off = -1"""
_FIND_NONE = "off = -1"
#: Arrays up to this many elements get the table (about 44 bytes an element).
_TABLE_MAX: Final = 8192

_READ_FAST = """    try:
        {target} = _unpack_from(_mv, off)
    except _ValueError:
        return _lost(self, {again})
    try:
        {lines}
        return {expr}
    except Exception:
        pass
    return _decode_at(self, off, {again})
"""

_READ_SLOW = """    return _decode_at(self, off, {again})
"""

_SET = """
def __setitem__(self, key, value):
    {find}
    if off < 0:
        off = _offset(self, key)
        data = _ev(value)
        if off < 0:
            raise _out_of_range(key)
    else:
        data = _ev(value)
    try:
        _mv[off:off + _VS] = data
    except _ValueError:
        return _lost(self, "__setitem__", key, value)
"""


_READ_INTO = """
def read_into(self, key, record, /):
    {find}
    if off < 0:
        off = _offset(self, key)
        if off < 0:
            raise _not_found("lookup", key)
    if type(record) is not _RC:
        raise _not_a_record(self, record)
    try:
        {target} = _unpack_from(_mv, off)
    except _ValueError:
        return _lost(self, "read_into", key, record)
    {lines}
    return record
"""


def _read_into_source(rows: Any, cls: type | None, find: str) -> tuple[str, type] | None:
    """A generated read_into that stores the fields into the caller's record, if possible.

    Only for a record whose fields are the unpacked items themselves (ints,
    floats, bytes): those stores cannot fail, so the record changes only
    when the read succeeds. Other records take read_into_copy.
    """
    if rows is None or cls is None or not rows.lines:
        return None
    obj = rows.expr
    first, rest = rows.lines[0], rows.lines[1:]
    made = first.partition(" = _new(")
    if made[0] != obj or not made[1] or rows.namespace.get(made[2].rstrip(")")) is not cls:
        return None
    stores = []
    for line in rest:
        target, eq, item = line.partition(" = ")
        if not eq or not target.startswith(obj + ".") or not item.isidentifier():
            return None  # a conversion that could raise half-way: not here
        stores.append(f"record{target[len(obj) :]} = {item}")
    return _READ_INTO.format(find=find, target=rows.target, lines="\n    ".join(stores)), cls


def _memory_class(
    base: type[TypedMap[Any, Any]], m: TypedMap[Any, Any], mem: MapMemory
) -> type[TypedMap[Any, Any]]:
    """A subclass of ``base`` whose element methods read ``mem`` (one per TypedMap)."""
    h = m._h
    n, stride, vsize = mem.count, mem.stride, mem.value_size
    writable = not mem.readonly
    mv = mem.internal_view()
    kc, vc = m.key_codec, m.value_codec
    ek, dv = kc.encode, vc.decode
    from ..codec import row_decoder

    rows = row_decoder(vc, "r_")
    if not _index_key(kc.schema):
        find = _FIND_NONE
    elif n <= _TABLE_MAX:
        find = _FIND_TABLE
    else:
        find = _FIND_RANGE
    ns: dict[str, Any] = {}
    reads = {}
    for op, again in (("getitem", '"__getitem__", key'), ("get", '"get", key, default')):
        if rows is not None:
            ind = "\n        "
            reads[op] = _READ_FAST.format(
                target=rows.target,
                lines=ind.join(rows.lines) or "pass",
                expr=rows.expr,
                again=again,
            )
        else:
            reads[op] = _READ_SLOW.format(again=again)
    if rows is not None:
        ns.update(rows.namespace)
        ns["_unpack_from"] = rows.struct.unpack_from
    src = _GET.format(find=find, read_getitem=reads["getitem"], read_get=reads["get"])
    into = _read_into_source(rows, _record_class(vc), find)
    if into is not None:
        src += into[0]
        ns["_RC"] = into[1]
        ns["_not_a_record"] = _not_a_record
    if writable:
        src += _SET.format(find=find)

    def offset(self: Any, key: Any) -> int:
        """The byte offset of ``key``'s element, -1 past the end (CodecError first)."""
        h._open_fd()  # a closed handle says so before the key is judged
        index = int.from_bytes(ek(key), sys.byteorder)
        return index * stride if index < n else -1

    def decode_at(self: Any, off: int, *again: Any) -> Any:
        try:
            raw = mv[off : off + vsize].tobytes()
        except ValueError:
            return lost(self, *again)
        return dv(raw)

    def out_of_range(key: Any) -> KeyNotFoundError:
        return KeyNotFoundError(
            _errno.E2BIG,
            "update",
            f"index out of range: ARRAY map {h.name!r} has max_entries={n} (E2BIG)",
        )

    ns.update(
        _OFF=tuple(range(0, n * stride, stride)) + (-1,) * n if find is _FIND_TABLE else (),
        _int=int,
        _N=n,
        _ST=stride,
        _VS=vsize,
        _mv=mv,
        _ev=vc.encode,
        _offset=offset,
        _decode_at=decode_at,
        _not_found=_not_found,
        _out_of_range=out_of_range,
        _lost=lost,
        _ValueError=ValueError,
    )
    exec(compile(src, f"<typedmaps memory {h.name!r} {n}x{vsize}>", "exec"), ns)

    def raw_chunks(self: Any) -> Iterator[tuple[int, bytes, bytes]]:
        """Every element straight from memory, in chunks of at most one batch."""
        step = self._batch_size
        for start in range(0, n, step):
            stop = min(n, start + step)
            try:
                if stride == vsize:
                    vb = mv[start * stride : stop * stride].tobytes()
                else:
                    vb = b"".join(
                        mv[off : off + vsize]
                        for off in range(start * stride, stop * stride, stride)
                    )
            except ValueError:
                h._open_fd()  # closed: the handle's own error
                raise MapClosedError(f"the memory of map {h.name!r} was unmapped") from None
            yield stop - start, _array_indices(start, stop), vb

    def zero_fill(self: Any) -> None:
        """clear() on the memory path: zero every byte of the mapping."""
        zero = bytes(min(_ZERO_STEP, mem.size))
        for start in range(0, mem.size, _ZERO_STEP):
            stop = min(mem.size, start + _ZERO_STEP)
            try:
                mv[start:stop] = zero[: stop - start]
            except ValueError:
                lost(self, "clear")
                return

    def repr_(self: Any) -> str:
        text = base.__repr__(self)
        return text[:-1] + ", via memory)"

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # ``type(m)(other_handle, ...)`` must make a map of its own handle, not
        # one whose element methods reach m's memory: the public class builds
        # it (and gives it a memory class of its own when it has memory).
        return base(*args, **kwargs)

    body: dict[str, Any] = {
        "__new__": new,
        "__slots__": (),
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        "__getitem__": ns["__getitem__"],
        "get": ns["get"],
        "__contains__": ns["__contains__"],
        "_raw_chunks": raw_chunks,
        "__repr__": repr_,
        "_tm_base": base,
        "_tm_memory": mem,
    }
    if into is not None:
        body["read_into"] = ns["read_into"]
    if writable:
        body["__setitem__"] = ns["__setitem__"]
        body["_zero_fill"] = zero_fill
    return type(base.__name__, (base,), body)


def lost(self: Any, op: str, *args: Any) -> Any:
    """The view under a memory method was released: closed, or the mapping was dropped.

    A closed handle raises its own closed error. An open one lost its
    mapping to freeze(): the TypedMap maps the array again (read-only now,
    so writes go back to the syscall path) and the operation runs again.
    """
    h = self._h
    h._open_fd()
    self.__class__ = _syscall_class(self)
    if wants(h):
        adopt(self)
    if type(self).__dict__.get("_tm_memory") is not None and not _usable(self):
        raise NotSupportedError(  # pragma: no cover - a fresh mapping is usable
            _errno.EIO, op, "the map's memory could not be mapped again"
        )
    if op == "clear":
        self.clear()
        return None
    return getattr(self, op)(*args)


def _usable(m: Any) -> bool:
    mem: MapMemory | None = type(m).__dict__.get("_tm_memory")
    return mem is not None and not mem.closed
