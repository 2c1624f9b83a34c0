"""Element methods generated per typed map (typed/_fast.py) answer as the generic ones do.

A TypedMap or PerCpuTypedMap over an open map gets a class of its own whose
``m[k]``, ``get``, ``in`` and ``m[k] = v`` are generated for its codecs and
handle. Here every such method is run side by side with the generic one of
the base class (``TypedMap.__getitem__(m, k)``, ...) on the same real map,
for schemas with and without fast plans, on hash, array and per-CPU maps:
same values (types, attribute order), same bytes written, same errors
(missing keys, bad keys and values, indices past the end, closed handles).
Lookups from several threads at once each get their own value: a call that
is alone in flight uses the handle's own buffer, the others the pool.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any

import construct as cs
import pytest
from construct_typed import (
    DataclassMixin,
    DataclassStruct,
    EnumBase,
    TEnum,
    csfield,
    csfield_noinit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import typedmaps as tm
from typedmaps.typed import _fast

from .conftest import MakeMap, bpf_object
from .test_codec_equivalence import norm


class Kind(EnumBase):
    A = 1
    B = 2


@dataclasses.dataclass(frozen=True)
class Key(DataclassMixin):
    ifindex: int = csfield(cs.Int32ul)
    port: int = csfield(cs.Int16ub)
    _pad: None = csfield_noinit(cs.Padding(2))


@dataclasses.dataclass
class Inner(DataclassMixin):
    n: int = csfield(cs.Int32ul)
    kind: Kind = csfield(TEnum(cs.Int8ul, Kind))  # noqa: RUF009
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class Value(DataclassMixin):
    name: str = csfield(cs.PaddedString(8, "ascii"))
    inner: Inner = csfield(DataclassStruct(Inner))  # noqa: RUF009
    hist: list[int] = csfield(cs.Array(2, cs.Int16ul))  # noqa: RUF009


#: (key schema, value schema, key strategy, value strategy); key 8 bytes, value 20.
KEY = DataclassStruct(Key)  # frozen with padding: decoding fails, encoding works
VALUE = DataclassStruct(Value)
SLOW_KEY = cs.Struct("a" / cs.Int32ul, "b" / cs.Computed(7), "c" / cs.Int32ul)  # no fast plan
SLOW_VALUE = cs.Struct("x" / cs.Bytes(20), "y" / cs.Computed(lambda ctx: 1))

keys = st.builds(Key, st.integers(0, 2**32 - 1), st.integers(0, 65535))
bad_keys = st.sampled_from([Key(-1, 0), Key(0, 70000), None, 5, "k"]).map(lambda k: k)
values = st.builds(
    Value,
    st.text("abcxyz", max_size=8),
    st.builds(Inner, st.integers(0, 2**32 - 1), st.sampled_from([Kind.A, Kind.B, Kind(9)])),
    st.lists(st.integers(0, 65535), min_size=2, max_size=2).map(cs.ListContainer),
)
bad_values = st.sampled_from(
    [None, 3, Value("toolongname", Inner(1, Kind.A), cs.ListContainer([1, 2]))]
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def pair(m: Any, base: type) -> tuple[Any, Any]:
    """The generated methods of ``m`` and the generic ones of ``base``, bound to ``m``."""
    assert type(m) is not base
    assert type(m).__name__ == base.__name__
    assert type(m).__dict__.get("_tm_base") is base
    return m, base


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", norm(fn(*args))
    except Exception as exc:  # the same exception type and words
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("map_type", [tm.MapType.HASH, tm.MapType.LRU_HASH])
@SETTINGS
@given(data=st.data())
def test_generated_methods_equal_the_generic_ones(
    make_map: MakeMap, map_type: tm.MapType, data: st.DataObject
) -> None:
    """The same calls on two maps, generated methods on one, generic on the other."""
    key_schema: Any = data.draw(st.sampled_from([KEY, cs.Int64ul]))
    fast, slow = (
        tm.TypedMap(
            make_map(map_type, key_size=8, value_size=20, max_entries=16),
            key=key_schema,
            value=VALUE,
        )
        for _ in range(2)
    )
    pair(fast, tm.TypedMap)
    kstrat = keys | bad_keys if key_schema is KEY else st.integers(-1, 2**64)
    for _ in range(4):
        k = data.draw(kstrat)
        v = data.draw(values | bad_values)
        assert outcome(fast.__setitem__, k, v) == outcome(tm.TypedMap.__setitem__, slow, k, v)
        assert dict(fast.handle.lookup_batch()) == dict(slow.handle.lookup_batch())
        probe = data.draw(st.sampled_from([k, data.draw(kstrat)]))
        for name, args in (("__getitem__", ()), ("get", ("dflt",)), ("__contains__", ())):
            got = outcome(getattr(fast, name), probe, *args)
            assert got == outcome(getattr(tm.TypedMap, name), slow, probe, *args), name


def test_generated_methods_without_fast_plans(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=8, value_size=20, max_entries=4)
    m: Any = tm.TypedMap(h, key=SLOW_KEY, value=SLOW_VALUE)
    assert not m.key_codec.fast
    assert not m.value_codec.fast
    pair(m, tm.TypedMap)
    k, v = {"a": 1, "c": 2}, {"x": b"z" * 20}
    m[k] = v
    assert norm(m[k]) == norm(tm.TypedMap.__getitem__(m, k))
    assert m[k].x == b"z" * 20
    assert k in m
    assert m.get({"a": 9, "c": 9}) is None
    for bad in ({"a": -1, "c": 0}, {"a": 1}):
        assert outcome(m.__getitem__, bad) == outcome(tm.TypedMap.__getitem__, m, bad)
        assert outcome(m.__setitem__, bad, v)[0] == "CodecError"


def test_errors_of_the_generated_methods(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=20, max_entries=2)
    m = tm.TypedMap(h, key=cs.Int32ul, value=VALUE)
    pair(m, tm.TypedMap)
    v = Value("ab", Inner(3, Kind.B), cs.ListContainer([1, 2]))
    m[1] = v
    assert m[1] == v
    assert m.get(1) == v
    assert 1 in m
    for name, args in (("__getitem__", (5,)), ("get", (5, 0)), ("__contains__", (5,))):
        assert outcome(getattr(m, name), *args) == outcome(getattr(tm.TypedMap, name), m, *args)
    assert outcome(m.__setitem__, 5, v) == outcome(tm.TypedMap.__setitem__, m, 5, v)
    with pytest.raises(tm.KeyNotFoundError, match="index out of range"):
        m[5] = v
    with pytest.raises(tm.CodecError):
        m[-1]
    with pytest.raises(tm.CodecError):
        m[0] = 7  # type: ignore[assignment]
    h.close()
    for fn, args in ((m.__getitem__, (1,)), (m.get, (1,)), (m.__contains__, (1,))):
        with pytest.raises(tm.MapClosedError):
            fn(*args)
    with pytest.raises(tm.MapClosedError):
        m[1] = v


@pytest.mark.parametrize("map_type", [tm.MapType.PERCPU_HASH, tm.MapType.PERCPU_ARRAY])
def test_per_cpu_generated_methods(make_map: MakeMap, map_type: tm.MapType) -> None:
    n = tm.num_possible_cpus()
    h = make_map(map_type, key_size=4, value_size=20, max_entries=4)
    m = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=VALUE)
    pair(m, tm.PerCpuTypedMap)
    vals = [Value(f"c{i}", Inner(i, Kind.A), cs.ListContainer([i, i])) for i in range(n)]
    m[2] = vals
    assert m[2] == vals == tm.PerCpuTypedMap.__getitem__(m, 2)
    assert m.get(2) == vals
    assert 2 in m
    got = m[2]
    assert [list(vars(x)) for x in got] == [list(vars(x)) for x in vals]
    for bad in (vals[:1], vals[0], [*vals, vals[0]]):
        assert outcome(m.__setitem__, 2, bad) == outcome(tm.PerCpuTypedMap.__setitem__, m, 2, bad)
    if map_type is tm.MapType.PERCPU_HASH:
        assert 3 not in m
        assert m.get(3, "no") == "no"
        with pytest.raises(tm.KeyNotFoundError):
            m[3]


def test_subclasses_and_closed_or_unloaded_handles_keep_the_generic_methods(
    make_map: MakeMap, bpf: None
) -> None:
    class Mine(tm.TypedMap[int, int]):
        __slots__ = ()

    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    assert type(Mine(h, key=cs.Int32ul, value=cs.Int64ul)) is Mine
    closed = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    closed.close()
    assert type(tm.TypedMap(closed, key=cs.Int32ul, value=cs.Int64ul)) is tm.TypedMap
    with tm.BpfObject.open(bpf_object("flows")) as obj:
        # not loaded yet: its sizes may still change
        early = tm.TypedMap(obj.maps["flows"], key=cs.Bytes(16), value=cs.Bytes(32))
        assert type(early) is tm.TypedMap
        obj.load()
        late = tm.typed(obj.maps["flows"])
        assert type(late) is not tm.TypedMap
        assert isinstance(late, tm.TypedMap)
        assert repr(late) == tm.TypedMap.__repr__(late)
        assert len(list(late.items())) == len(list(early.items()))


def test_lookups_from_many_threads_each_get_their_own_value(make_map: MakeMap) -> None:
    """Calls alone in flight share one buffer per handle; concurrent ones must not."""
    n = 256
    h = make_map(tm.MapType.HASH, key_size=4, value_size=64, max_entries=n)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Bytes(64))
    for i in range(n):
        m[i] = bytes([i % 256]) * 64
    errors: list[str] = []
    start = threading.Barrier(4)

    def reader(seed: int) -> None:
        start.wait()
        for r in range(400):
            i = (seed * 97 + r * 31) % n
            want = bytes([i % 256]) * 64
            got: Any = m[i] if r % 2 else h.lookup(i.to_bytes(4, "little"))
            if got != want:
                errors.append(f"key {i}: {got[:4]!r}")
                return

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(h._calls) == 1  # nothing left in flight


def test_the_generated_source_is_shared_between_maps_of_one_shape(make_map: MakeMap) -> None:
    a, b = (
        tm.TypedMap(
            make_map(tm.MapType.HASH, key_size=8, value_size=20, max_entries=4),
            key=KEY,
            value=VALUE,
        )
        for _ in range(2)
    )
    assert type(a) is not type(b)  # a class of its own each, bound to its handle
    code = type(a).__dict__["__getitem__"].__code__
    assert code is type(b).__dict__["__getitem__"].__code__  # compiled once
    assert len(_fast._CODE) <= _fast._CODE_MAX


def test_the_class_of_a_map_makes_maps_of_their_own(make_map: MakeMap) -> None:
    """``type(m)(other, ...)`` never makes a map whose methods reach m's handle."""
    h1, h2 = (make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4) for _ in "ab")
    a = tm.TypedMap(h1, key=cs.Int32ul, value=cs.Int64ul)
    b = type(a)(h2, key=cs.Int32ul, value=cs.Int64ul)
    pair(b, tm.TypedMap)
    assert type(b) is not type(a)
    b[1] = 5
    assert b[1] == 5
    assert 1 not in a
    assert h2.lookup(b"\1\0\0\0") == (5).to_bytes(8, "little")
    pc1, pc2 = (
        make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=8, max_entries=2) for _ in "ab"
    )
    p = tm.PerCpuTypedMap(pc1, key=cs.Int32ul, value=cs.Int64ul)
    q = type(p)(pc2, key=cs.Int32ul, value=cs.Int64ul)
    q[0] = [7] * tm.num_possible_cpus()
    assert p[0] == [0] * tm.num_possible_cpus()
    assert q.handle is pc2


def test_closed_handles_and_objects_answer_as_the_generic_methods(
    make_map: MakeMap, bpf: None
) -> None:
    h = make_map(tm.MapType.HASH, key_size=8, value_size=20, max_entries=4)
    m = tm.TypedMap(h, key=KEY, value=VALUE)
    v = Value("ab", Inner(3, Kind.B), cs.ListContainer([1, 2]))
    m[Key(1, 2)] = v
    h.close()
    obj = tm.BpfObject.open(bpf_object("flows"))
    obj.load()
    om = tm.typed(obj.maps["flows"])
    assert isinstance(om, tm.TypedMap)
    assert type(om) is not tm.TypedMap
    k0 = om.key_codec.decode(bytes(om.key_codec.size))
    v0 = om.value_codec.decode(bytes(om.value_codec.size))
    om[k0] = v0
    assert om[k0] == v0
    obj.close()
    for mm, k, val in ((m, Key(1, 2), v), (om, k0, v0)):
        for name, args in (
            ("__getitem__", (k,)),
            ("get", (k, 0)),
            ("__contains__", (k,)),
            ("__setitem__", (k, val)),
        ):
            got = outcome(getattr(mm, name), *args)
            assert got[0] == "MapClosedError", (name, got)
            assert got == outcome(getattr(tm.TypedMap, name), mm, *args), name


def test_a_call_in_flight_keeps_the_fd_and_the_handles_own_buffer(make_map: MakeMap) -> None:
    """While another call is in flight the generated methods use the pool, and see close()."""
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[1] = 5
    m[2] = 6
    assert m[2] == 6
    assert h._own is not None
    own = h._own[1][:]
    fd = h.fileno()
    with h._using():
        assert len(h._calls) == 2
        assert (m[1], m.get(1), 1 in m, m.get(3, "no")) == (5, 5, True, "no")
        m[3] = 9
        assert h._own[1][:] == own  # not touched while another call is in flight
        m.close()
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-map"
        calls: list[Callable[[], object]] = [
            lambda: m[1],
            lambda: m.get(1),
            lambda: 1 in m,
            lambda: m.update({1: 2}),
        ]
        for call in calls:
            with pytest.raises(tm.MapClosedError):
                call()
        with pytest.raises(tm.MapClosedError):
            m[1] = 2
        assert len(h._calls) == 2  # only the call of _using() is in flight
    assert not os.path.exists(f"/proc/self/fd/{fd}")
    assert h._calls == [-1]


def test_failed_encodes_and_kernel_errors_leave_nothing_in_flight(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=8, value_size=20, max_entries=1)
    m = tm.TypedMap(h, key=KEY, value=VALUE)
    v = Value("ab", Inner(3, Kind.B), cs.ListContainer([1, 2]))
    m[Key(1, 1)] = v
    calls: list[tuple[Any, ...]] = [
        (m.__getitem__, Key(-1, 0)),
        (m.__getitem__, Key(2, 2)),
        (m.__setitem__, Key(1, 1), None),
        (m.__setitem__, Key(2, 2), v),  # the map is full: E2BIG
        (m.__contains__, "k"),
    ]
    for fn, *args in calls:
        with pytest.raises(tm.TypedMapsError):
            fn(*args)
        assert h._calls == [h.fileno()]
    with pytest.raises(tm.MapFullError):
        m[Key(2, 2)] = v
    assert len(m) == 1


def test_close_from_another_thread_during_generated_calls(make_map: MakeMap) -> None:
    """Each generated call finishes on the map or raises MapClosedError; the fd closes once."""
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=20, max_entries=8)
    pc = make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=20, max_entries=8)
    m = tm.TypedMap(h, key=cs.Int32ul, value=VALUE)
    pm = tm.PerCpuTypedMap(pc, key=cs.Int32ul, value=VALUE)
    v = Value("ab", Inner(3, Kind.B), cs.ListContainer([1, 2]))
    pv = [v] * tm.num_possible_cpus()
    errors: list[BaseException] = []
    go = threading.Event()

    def caller(mm: Any, val: Any) -> None:
        go.wait()
        try:
            for i in range(20_000):
                mm[i % 8] = val
                if mm[i % 8] != val or mm.get(i % 8) != val or i % 8 not in mm:
                    raise AssertionError(f"wrong value at {i % 8}")
        except tm.MapClosedError:
            return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(x, y)) for x, y in ((m, v), (pm, pv)) * 2]
    for t in threads:
        t.start()
    go.set()
    h.close()
    pc.close()
    for t in threads:
        t.join()
    assert errors == []
    assert h._lt.released
    assert pc._lt.released


def test_values_the_inline_statements_cannot_decode_go_to_the_codec(make_map: MakeMap) -> None:
    """Bytes the fast statements refuse (not ASCII in a PaddedString) get the codec's answer."""
    h = make_map(tm.MapType.HASH, key_size=8, value_size=20, max_entries=4)
    m = tm.TypedMap(h, key=cs.Int64ul, value=VALUE)
    good = VALUE.build(Value("ab", Inner(3, Kind.B), cs.ListContainer([1, 2])))
    h.update((1).to_bytes(8, "little"), b"\xff" + good[1:])
    h.update((2).to_bytes(8, "little"), good[:8] + bytes([7, 0, 0, 0, 9]) + good[13:])
    for k in (1, 2):
        for name, args in (("__getitem__", ()), ("get", (None,))):
            got = outcome(getattr(m, name), k, *args)
            assert got == outcome(getattr(tm.TypedMap, name), m, k, *args), (k, name)
    assert outcome(m.__getitem__, 1)[0] == "CodecError"
    assert m[2].inner.kind == Kind(9)  # an unknown enum value, as construct gives it
    assert h._calls == [h.fileno()]
