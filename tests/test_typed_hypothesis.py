"""Property tests of the typed layer on real kernel maps.

Random construct-typing records (nested records, arrays, ints of every size,
sign and byte order, floats, bytes, flags and padding) are made on the fly,
a kernel map of their size is created, and:

- values written through TypedMap / PerCpuTypedMap read back equal, and equal
  to construct's own parse of the raw bytes MapHandle returns;
- random raw bytes written through MapHandle decode through TypedMap exactly
  as construct parses them;
- a bad value (out of range, wrong type, wrong length), in a key or a value,
  in any write operation, raises CodecError and leaves every byte of the map
  as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeAlias

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import typedmaps as tm

Strategy: TypeAlias = "st.SearchStrategy[Any]"
Path: TypeAlias = tuple[str, ...]

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------- schema trees

INTS: list[tuple[Any, int, int]] = [
    (cs.Int8ul, 0, 2**8 - 1),
    (cs.Int8sl, -(2**7), 2**7 - 1),
    (cs.Int16ul, 0, 2**16 - 1),
    (cs.Int16sb, -(2**15), 2**15 - 1),
    (cs.Int32ul, 0, 2**32 - 1),
    (cs.Int32sl, -(2**31), 2**31 - 1),
    (cs.Int32ub, 0, 2**32 - 1),
    (cs.Int64ul, 0, 2**64 - 1),
    (cs.Int64sl, -(2**63), 2**63 - 1),
    (cs.Int64ub, 0, 2**64 - 1),
]


@dataclasses.dataclass
class Node:
    """A schema with strategies for good values and for bad ones (None: has none)."""

    schema: Any
    good: Strategy
    bad: Strategy | None
    fields: list[tuple[str, Node]] = dataclasses.field(default_factory=list)  # records
    padding: bool = False


_names = itertools.count()


def int_node(kind: tuple[Any, int, int]) -> Node:
    sc, lo, hi = kind
    bad = st.one_of(
        st.integers(hi + 1, hi + 2**70),
        st.integers(lo - 2**70, lo - 1),
        st.text(max_size=3),
        st.none(),
        st.floats(),  # struct refuses any float for an int field, 2.0 included
    )
    return Node(sc, st.integers(lo, hi), bad)


def float_node(width: Literal[32, 64]) -> Node:
    sc = cs.Float32l if width == 32 else cs.Float64l
    bad: Strategy = st.one_of(st.text(max_size=3), st.none(), st.just(b"12"))
    if width == 32:
        bad = st.one_of(bad, st.just(1e300), st.just(-1e300))
    return Node(sc, st.floats(width=width, allow_nan=False), bad)


def bytes_node(n: int) -> Node:
    wrong_length = st.integers(0, n + 4).filter(lambda m: m != n)
    bad = st.one_of(wrong_length.flatmap(lambda m: st.binary(min_size=m, max_size=m)), st.none())
    return Node(cs.Bytes(n), st.binary(min_size=n, max_size=n), bad)


def array_node(n: int, kind: tuple[Any, int, int]) -> Node:
    sc, lo, hi = kind
    item = st.integers(lo, hi)
    wrong_length = st.integers(0, n + 3).filter(lambda m: m != n)
    bad = st.one_of(
        wrong_length.flatmap(lambda m: st.lists(item, min_size=m, max_size=m)),
        st.lists(st.just(hi + 1), min_size=n, max_size=n),
        st.none(),
    )
    return Node(cs.Array(n, sc), st.lists(item, min_size=n, max_size=n), bad)


FLAG = Node(cs.Flag, st.booleans(), None)  # construct builds a Flag from anything


def record_node(children: list[Node]) -> Node:
    """A construct-typing dataclass with one field per child, made on the fly."""
    spec: list[tuple[str, Any, Any]] = []
    fields: list[tuple[str, Node]] = []
    for i, child in enumerate(children):
        name = f"f{i}"
        if child.padding:
            spec.append((name, type(None), csfield_noinit(child.schema)))
        else:
            spec.append((name, Any, csfield(child.schema)))
        fields.append((name, child))
    cls = dataclasses.make_dataclass(f"Rec{next(_names)}", spec, bases=(DataclassMixin,))
    good = st.fixed_dictionaries(
        {name: child.good for name, child in fields if not child.padding}
    ).map(lambda kw: cls(**kw))
    bad: Strategy = st.one_of(st.none(), st.integers(), st.builds(dict))
    return Node(DataclassStruct(cls), good, bad, fields)


def leaf_nodes() -> Strategy:
    return st.one_of(
        st.sampled_from(INTS).map(int_node),
        st.sampled_from([32, 64]).map(lambda w: float_node(64 if w == 64 else 32)),
        st.integers(1, 9).map(bytes_node),
        st.tuples(st.integers(1, 4), st.sampled_from(INTS)).map(lambda t: array_node(*t)),
        st.just(FLAG),
        st.integers(1, 3).map(lambda n: Node(cs.Padding(n), st.none(), None, padding=True)),
    )


def records(depth: int = 2, max_fields: int = 5) -> Strategy:
    child = leaf_nodes() if depth == 0 else st.one_of(leaf_nodes(), records(depth - 1, 3))
    return (
        st.lists(child, min_size=1, max_size=max_fields)
        .filter(lambda cs_: not all(c.padding for c in cs_))
        .map(record_node)
    )


def bad_paths(node: Node, prefix: Path = ()) -> Iterator[Path]:
    """Every place in a record where a bad value can go (the record itself too)."""
    if node.bad is not None:
        yield prefix
    for name, child in node.fields:
        if not child.padding:
            yield from bad_paths(child, (*prefix, name))


def node_at(node: Node, path: Path) -> Node:
    for part in path:
        node = dict(node.fields)[part]
    return node


def with_value_at(record: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(record)
    parent = out
    for part in path[:-1]:
        parent = getattr(parent, part)
    object.__setattr__(parent, path[-1], value)
    return out


def distinct(schema: Any, keys: list[Any]) -> list[Any]:
    """Keys whose encodings differ (the map stores one element per encoding)."""
    seen: dict[bytes, Any] = {}
    for k in keys:
        seen[schema.build(k)] = k
    return list(seen.values())


def raw_dump(h: tm.MapHandle) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for k in h.keys():  # noqa: SIM118 (a MapHandle is not a dict)
        v = h.lookup(k)
        assert v is not None
        out[k] = v
    return out


def hash_map(key: Node, value: Node, max_entries: int = 64) -> tm.MapHandle:
    return tm.MapHandle.create(
        tm.MapType.HASH,
        key_size=key.schema.sizeof(),
        value_size=value.schema.sizeof(),
        max_entries=max_entries,
        name="tm_hypothesis",
    )


# ---------------------------------------------------------------------------- properties


@SETTINGS
@given(key=records(depth=1, max_fields=3), value=records(), data=st.data())
def test_records_read_back_equal_and_as_construct_parses(
    bpf: None, key: Node, value: Node, data: st.DataObject
) -> None:
    pairs = data.draw(st.lists(st.tuples(key.good, value.good), min_size=1, max_size=8))
    with hash_map(key, value) as h:
        m = tm.TypedMap(h, key=key.schema, value=value.schema)
        keys = distinct(key.schema, [k for k, _ in pairs])
        expected = {key.schema.build(k): v for k, v in pairs}
        for k, v in pairs:
            m[k] = v
        for k in keys:
            kb = key.schema.build(k)
            raw = h.lookup(kb)
            assert raw is not None
            assert raw == value.schema.build(expected[kb])
            assert value.schema.parse(raw) == expected[kb]
            assert m[k] == expected[kb]
            assert m.get(k) == expected[kb]
            assert k in m
        assert len(m) == len(keys)
        got = {key.schema.build(k): v for k, v in m.items()}
        assert got == expected
        # the same through one batch syscall, into an emptied map
        m.clear()
        assert m.update_batch([(key.schema.parse(kb), v) for kb, v in expected.items()]) == len(
            expected
        )
        assert raw_dump(h) == {kb: value.schema.build(v) for kb, v in expected.items()}


@SETTINGS
@given(key=records(depth=0, max_fields=3), value=records(), data=st.data())
def test_kernel_bytes_decode_as_construct_parses(
    bpf: None, key: Node, value: Node, data: st.DataObject
) -> None:
    ks, vs = key.schema.sizeof(), value.schema.sizeof()
    raw = data.draw(
        st.dictionaries(
            st.binary(min_size=ks, max_size=ks), st.binary(min_size=vs, max_size=vs), max_size=6
        )
    )
    with hash_map(key, value) as h:
        for kb, vb in raw.items():
            h.update(kb, vb)
        m = tm.TypedMap(h, key=key.schema, value=value.schema)
        # repr: NaNs from random bytes compare unequal to themselves
        want = sorted(
            repr((key.schema.parse(kb), value.schema.parse(vb))) for kb, vb in raw.items()
        )
        assert sorted(repr(kv) for kv in m.items()) == want
        m._batch = False  # and through the key walk
        assert sorted(repr(kv) for kv in m.items()) == want


@SETTINGS
@given(key=records(depth=1, max_fields=3), value=records(), data=st.data())
def test_bad_values_never_change_the_map(
    bpf: None, key: Node, value: Node, data: st.DataObject
) -> None:
    pairs = data.draw(st.lists(st.tuples(key.good, value.good), min_size=2, max_size=5))
    (k0, v0), (k1, v1) = pairs[0], pairs[1]
    in_key = data.draw(st.booleans(), label="bad key (else bad value)")
    node, good = (key, k1) if in_key else (value, v1)
    path = data.draw(st.sampled_from(list(bad_paths(node))), label="path")
    bad_leaf = node_at(node, path).bad
    assert bad_leaf is not None
    bad = with_value_at(good, path, data.draw(bad_leaf, label="bad value"))
    bk, bv = (bad, v1) if in_key else (k1, bad)
    with hash_map(key, value) as h:
        m = tm.TypedMap(h, key=key.schema, value=value.schema)
        for k, v in pairs:
            m[k] = v
        before = raw_dump(h)
        writes: list[Callable[[], object]] = [
            lambda: m.__setitem__(bk, bv),
            lambda: m.insert(bk, bv),
            lambda: m.replace(bk, bv),
            lambda: m.update_batch([(k0, v0), (bk, bv)]),
        ]
        if in_key:  # (setdefault on a present key never encodes the default)
            writes += [
                lambda: m.setdefault(bk, bv),
                lambda: m.pop(bk, None),
                lambda: m.__delitem__(bk),
                lambda: m.delete_batch([k0, bk]),
                lambda: m.get(bk),
            ]
        for write in writes:
            with pytest.raises(tm.CodecError) as info:
                write()
            assert info.value.path.startswith("key" if in_key else "value")
            assert raw_dump(h) == before


@SETTINGS
@given(value=records(depth=1, max_fields=4), data=st.data())
def test_per_cpu_values_read_back_per_slot(bpf: None, value: Node, data: st.DataObject) -> None:
    n = tm.num_possible_cpus()
    per_cpu = data.draw(st.lists(value.good, min_size=n, max_size=n))
    with tm.MapHandle.create(
        tm.MapType.PERCPU_HASH,
        key_size=4,
        value_size=value.schema.sizeof(),
        max_entries=4,
        name="tm_hypothesis",
    ) as h:
        pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=value.schema)
        pc[3] = per_cpu
        assert pc[3] == per_cpu
        slots = h.lookup_percpu(b"\x03\0\0\0")
        assert slots is not None
        assert [value.schema.parse(s) for s in slots] == per_cpu
        assert dict(pc.items()) == {3: per_cpu}
        before = h.lookup_percpu(b"\x03\0\0\0")
        path = data.draw(st.sampled_from(list(bad_paths(value))))
        bad_leaf = node_at(value, path).bad
        assert bad_leaf is not None
        bad = with_value_at(per_cpu[-1], path, data.draw(bad_leaf))
        with pytest.raises(tm.CodecError):
            pc[3] = [*per_cpu[:-1], bad]
        assert h.lookup_percpu(b"\x03\0\0\0") == before
