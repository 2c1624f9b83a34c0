"""TypedMap over a BPF_F_MMAPABLE ARRAY reads and writes through memory, as the syscall path does.

Every operation runs side by side on a TypedMap over an mmapable array
(memory path) and one over a plain array (syscall path) of the same shape:
results, errors (class, errno, message) and the bytes left in the map must
be the same. Then what only the memory path has: no bpf() syscall for
element reads and writes, a program's store seen at once, read-only
mappings keeping writes on the syscall path, and closing or freezing under
a live TypedMap.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import MakeMap, bpf_object
from .syscall_count import bpf_calls

MMAPABLE = tm.MapCreateFlags.MMAPABLE


@dataclasses.dataclass
class Slot(DataclassMixin):
    """struct slot of bpf/mmap_array.bpf.c."""

    a: int = csfield(cs.Int64ul)
    b: int = csfield(cs.Int32ul)
    seq: int = csfield(cs.Int32ul)


@dataclasses.dataclass
class Odd(DataclassMixin):
    """struct odd of bpf/mmap_array.bpf.c: 12 bytes, a 16-byte stride."""

    x: int = csfield(cs.Int32ul)
    y: int = csfield(cs.Int32sl)
    z: int = csfield(cs.Int32ul)


def _pair(make_map: MakeMap, value_size: int, entries: int = 6) -> tuple[Any, Any]:
    mm = make_map(
        tm.MapType.ARRAY,
        key_size=4,
        value_size=value_size,
        max_entries=entries,
        map_flags=MMAPABLE,
        name="tm_side",
    )
    sc = make_map(
        tm.MapType.ARRAY, key_size=4, value_size=value_size, max_entries=entries, name="tm_side"
    )
    return mm, sc


def _outcome(f: Callable[[], Any]) -> Any:
    try:
        return ("ok", f())
    except Exception as exc:
        return ("err", type(exc), getattr(exc, "errno", None), str(exc))


class _Index:
    """Not an int, but usable as one (``__index__``), as numpy's integers are."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


class _Shade(enum.IntEnum):
    DARK = 2


KEYS: list[Any] = [0, 1, 5, 6, 7, 2**32 - 1, 2**32, 2**70, -1, True, 1.0, "1", None]
KEYS += [b"\x01\0\0\0", _Index(3), _Index(-1), _Shade.DARK]


def _edge_keys(entries: int) -> list[int]:
    """Keys around max_entries and its negatives (the offset table's two halves)."""
    return [entries - 1, entries, 2 * entries - 1, 2 * entries, -entries, -2 * entries - 1]


@pytest.mark.parametrize(
    ("key_schema", "value_size", "value", "entries"),
    [
        (cs.Int32ul, 12, DataclassStruct(Odd), 6),
        (cs.Int32sl, 16, DataclassStruct(Slot), 6),
        (cs.Int32ub, 8, cs.Int64sl, 6),  # a key schema that is not the native index
        (cs.Bytes(4), 4, cs.Bytes(4), 6),
        (cs.Int32ul, 8, cs.Struct("lo" / cs.Int32ul, "hi" / cs.Int16sl, cs.Padding(2)), 6),
        (cs.Int32ul, 12, DataclassStruct(Odd), 8193),  # too big for the offset table
    ],
)
def test_same_semantics_as_the_syscall_path(
    make_map: MakeMap, key_schema: Any, value_size: int, value: Any, entries: int
) -> None:
    mh, sh = _pair(make_map, value_size, entries)
    m = tm.TypedMap(mh, key=key_schema, value=value)
    s = tm.TypedMap(sh, key=key_schema, value=value)
    assert "via memory" in repr(m)
    assert "via memory" not in repr(s)
    codec = m.value_codec
    good = codec.decode(bytes(range(1, value_size + 1)))
    bad_values: list[Any] = [None, "x", 2**70, -(2**70)]
    keys = KEYS + _edge_keys(entries)
    if isinstance(key_schema, cs.Bytes):
        keys = [b"\x01\0\0\0", b"\x07\0\0\0", b"\x01", 1, "x", None]
    for k in keys:
        for v in [good, *bad_values]:
            assert _outcome(partial(m.__setitem__, k, v)) == _outcome(
                partial(s.__setitem__, k, v)
            ), (k, v)
        assert _outcome(partial(m.__getitem__, k)) == _outcome(partial(s.__getitem__, k)), k
        assert _outcome(partial(m.get, k, "dflt")) == _outcome(partial(s.get, k, "dflt")), k
        assert _outcome(partial(m.__contains__, k)) == _outcome(partial(s.__contains__, k)), k
    assert list(mh.lookup_batch()) == list(sh.lookup_batch())
    assert list(m.items()) == list(s.items())
    assert list(m.values()) == list(s.values())
    assert len(m) == len(s)
    m.clear()
    s.clear()
    assert list(mh.lookup_batch()) == list(sh.lookup_batch())
    assert all(v == bytes(value_size) for _, v in mh.lookup_batch())


def test_read_into_fills_the_callers_record(make_map: MakeMap) -> None:
    mh, sh = _pair(make_map, 12)
    m = tm.TypedMap(mh, key=cs.Int32ul, value=DataclassStruct(Odd))
    s = tm.TypedMap(sh, key=cs.Int32ul, value=DataclassStruct(Odd))
    assert "read_into" in type(m).__dict__  # generated for the memory path
    for t in (m, s):
        t[3] = Odd(1, -2, 3)
        rec = Odd(0, 0, 0)
        assert t.read_into(3, rec) is rec
        assert rec == Odd(1, -2, 3)
        before = Odd(9, 9, 9)
        with pytest.raises(tm.KeyNotFoundError):
            t.read_into(6, before)
        assert before == Odd(9, 9, 9)  # unchanged when the read fails
        with pytest.raises(tm.ArgumentError, match="must be a Odd"):
            t.read_into(3, Slot(0, 0, 0))  # type: ignore[arg-type]
    ints = tm.TypedMap(mh, key=cs.Int32ul, value=cs.Bytes(12))
    with pytest.raises(tm.ArgumentError, match="DataclassStruct"):
        ints.read_into(0, b"")
    m.close()
    with pytest.raises(tm.MapClosedError):
        m.read_into(3, Odd(0, 0, 0))


def test_reads_and_writes_cross_the_memory(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=12, max_entries=5, map_flags=MMAPABLE)
    m = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Odd))
    mem = h.memory()
    m[3] = Odd(1, -2, 3)
    assert struct.unpack_from("<IiI", mem, 3 * 16) == (1, -2, 3)
    assert h.lookup(struct.pack("<I", 3)) == struct.pack("<IiI", 1, -2, 3)
    struct.pack_into("<IiI", mem, 4 * 16, 7, -8, 9)
    assert m[4] == Odd(7, -8, 9)
    with pytest.raises(tm.CodecError, match=r"value\.y"):
        m[4] = Odd(0, 2**40, 0)
    assert m[4] == Odd(7, -8, 9)  # unchanged: encoded before anything is written
    mem.release()


def test_the_class_of_a_memory_map_makes_maps_of_their_own_handle(make_map: MakeMap) -> None:
    a = make_map(tm.MapType.ARRAY, key_size=4, value_size=12, max_entries=5, map_flags=MMAPABLE)
    b = make_map(tm.MapType.ARRAY, key_size=4, value_size=12, max_entries=5, map_flags=MMAPABLE)
    ma = tm.TypedMap(a, key=cs.Int32ul, value=DataclassStruct(Odd))
    mb = type(ma)(b, key=cs.Int32ul, value=DataclassStruct(Odd))
    mb[1] = Odd(4, 5, 6)
    assert b.lookup(struct.pack("<I", 1)) == struct.pack("<IiI", 4, 5, 6)
    assert a.lookup(struct.pack("<I", 1)) == bytes(12)  # a's memory is untouched
    assert ma[1] == Odd(0, 0, 0)
    assert mb[1] == Odd(4, 5, 6)


def test_a_programs_store_is_read_at_once(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("mmap_array")) as obj:
        obj.load()
        slots = tm.TypedMap(obj.maps["slots"], key=cs.Int32ul, value=DataclassStruct(Slot))
        auto = tm.typed(obj.maps["slots"])  # schemas from the map's BTF, same path
        assert isinstance(auto, tm.TypedMap)
        assert "via memory" in repr(slots)
        assert "via memory" in repr(auto)
        obj.maps["sealed"].update(struct.pack("<I", 0), struct.pack("<Q", 10))
        for n in range(1, 4):
            slots[0] = Slot(n, n * 3, n * 5)
            assert obj.programs["answer"].test_run().retval == n
            assert slots[1] == Slot(2 * n + 10, n * 3, n * 5 + 1)
            assert auto[1]["seq"] == n * 5 + 1


def test_read_only_mapping_keeps_writes_on_the_syscall_path(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("mmap_array")) as obj:
        obj.load()
        sealed = tm.TypedMap(obj.maps["sealed"], key=cs.Int32ul, value=cs.Int64ul)
        assert "via memory" in repr(sealed)  # read through a read-only mapping
        sealed[1] = 77  # BPF_F_RDONLY_PROG: user space may write, through the syscall
        assert sealed[1] == 77
        assert obj.maps["sealed"].lookup(struct.pack("<I", 1)) == struct.pack("<Q", 77)


def test_frozen_array_reads_through_memory_and_refuses_writes(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[2] = 5
    h.freeze()  # drops the writable mapping under the TypedMap ...
    assert m[2] == 5  # ... which maps the array again, read-only
    assert "via memory" in repr(m)
    with pytest.raises(tm.MapPermissionError):
        m[2] = 6  # the kernel's answer, through the syscall path
    assert m[2] == 5


def test_closed_handle(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[0] = 1
    m.close()
    for op in (
        lambda: m[0],
        lambda: m.get(0),
        lambda: 0 in m,
        lambda: m.__setitem__(0, 1),
        lambda: m["bad key"],  # type: ignore[index]
        lambda: list(m.items()),
        m.clear,
    ):
        with pytest.raises(tm.MapClosedError):
            op()


def test_object_map_closed_with_the_object(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("mmap_array"))
    obj.load()
    m = tm.TypedMap(obj.maps["slots"], key=cs.Int32ul, value=DataclassStruct(Slot))
    m[0] = Slot(1, 2, 3)
    obj.close()
    with pytest.raises(tm.MapClosedError):
        m[0]


def test_made_before_load_keeps_the_syscall_path(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("mmap_array")) as obj:
        m = tm.TypedMap(obj.maps["slots"], key=cs.Int32ul, value=DataclassStruct(Slot))
        obj.load()
        assert "via memory" not in repr(m)
        m[0] = Slot(4, 5, 6)
        assert m[0] == Slot(4, 5, 6)


def test_threads_read_while_another_closes(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=16, max_entries=64, map_flags=MMAPABLE)
    m = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Slot))
    for i in range(64):
        m[i] = Slot(i, i, i)
    bad: list[object] = []
    go = threading.Barrier(3)

    def reader() -> None:
        go.wait()
        for n in range(20000):
            try:
                got = m[n % 64]
            except tm.MapClosedError:
                return
            if got != Slot(n % 64, n % 64, n % 64):
                bad.append(got)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    go.wait()
    h.close()
    for t in threads:
        t.join(timeout=60)
    assert not bad


@pytest.mark.bpf
def test_element_access_makes_no_syscall(bpf: None) -> None:
    setup = """
        import construct as cs, typedmaps as tm
        h = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=16, max_entries=64,
                                map_flags=tm.MapCreateFlags.MMAPABLE)
        m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Struct("a" / cs.Int64ul, "b" / cs.Int64sl))
        assert "via memory" in repr(m)
        import dataclasses
        from construct_typed import DataclassMixin, DataclassStruct, csfield

        @dataclasses.dataclass
        class Rec(DataclassMixin):
            a: int = csfield(cs.Int64ul)
            b: int = csfield(cs.Int64sl)

        r = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Rec))
        plain = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=16, max_entries=64)
        s = tm.TypedMap(plain, key=cs.Int32ul, value=DataclassStruct(Rec))
    """
    measured = """
        rec = Rec(0, 0)
        for i in range(3000):
            r.read_into(i % 64, rec)
            m[i % 64] = {"a": i, "b": -i}
            assert m[i % 64].b == -i
            assert m.get(i % 64) is not None and (i % 64) in m
        assert len(list(m.items())) == 64
    """
    count, lines = bpf_calls(setup, measured)
    assert count == 0, lines
    # The counter counts: the same reads on the syscall path make one bpf() call each.
    count, _ = bpf_calls(setup, "for i in range(40): s[i % 64]")
    assert count == 40
