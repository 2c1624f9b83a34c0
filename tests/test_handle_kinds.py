"""Every map kind the byte-level MapHandle covers: how to make one, write and observe it.

The ``Kind`` table is shared by the other ``test_handle_*`` modules; the tests
here check what every kind has in common: creation, the cached attributes,
``info()``, ``repr`` and bpftool's view of the same map.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

import typedmaps as tm

from .conftest import MakeMap, bpftool

T = tm.MapType
NCPUS = tm.num_possible_cpus()
#: 12 is not a multiple of 8: per-CPU slots are padded to 16 bytes.
VALUE_SIZE = 12


@dataclass(frozen=True)
class Kind:
    """One map type with a small shape, and how to key, write and observe it."""

    map_type: tm.MapType
    key_size: int = 4
    value_size: int = VALUE_SIZE
    max_entries: int = 8

    @property
    def keyless(self) -> bool:
        return self.map_type.is_keyless

    @property
    def percpu(self) -> bool:
        return self.map_type.is_percpu

    @property
    def name(self) -> str:
        return self.map_type.name

    def key(self, i: int) -> bytes:
        """Key number ``i`` (an index on arrays, a /32 prefix on LPM_TRIE)."""
        if self.map_type is T.LPM_TRIE:
            return struct.pack("<I", 32) + struct.pack(">I", 0x0A000000 + i)
        return struct.pack("=I", i)

    def value(self, i: int, cpu: int = 0) -> bytes:
        """A value that differs per element and per CPU."""
        return struct.pack("<IQ", i, cpu * 1000 + i)

    def values(self, i: int) -> list[bytes]:
        return [self.value(i, c) for c in range(NCPUS)]

    def create(self, make_map: MakeMap, **kw: object) -> tm.MapHandle:
        args: dict[str, object] = {
            "key_size": 0 if self.keyless else self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
        }
        args.update(kw)
        return make_map(self.map_type, **args)

    def put(self, h: tm.MapHandle, i: int) -> None:
        """Store element ``i`` with the method this kind takes."""
        if self.keyless:
            h.push(self.value(i))
        elif self.percpu:
            h.update_percpu(self.key(i), self.values(i))
        else:
            h.update(self.key(i), self.value(i))

    def get(self, h: tm.MapHandle, i: int) -> object:
        """Observe element ``i``: the value, the per-CPU list, peek() or bloom membership."""
        if self.map_type is T.BLOOM_FILTER:
            return h.lookup_bloom_filter(self.value(i))
        if self.keyless:
            return h.peek()
        if self.percpu:
            return h.lookup_percpu(self.key(i))
        return h.lookup(self.key(i))

    def expected(self, i: int) -> object:
        """What :meth:`get` returns after ``put(h, i)`` on an empty map."""
        if self.map_type is T.BLOOM_FILTER:
            return True
        if self.percpu:
            return self.values(i)
        return self.value(i)


KINDS = [
    Kind(T.HASH),
    Kind(T.ARRAY),
    Kind(T.PERCPU_HASH),
    Kind(T.PERCPU_ARRAY),
    Kind(T.LRU_HASH),
    Kind(T.LRU_PERCPU_HASH),
    Kind(T.LPM_TRIE, key_size=8),
    Kind(T.QUEUE),
    Kind(T.STACK),
    Kind(T.BLOOM_FILTER),
]
KEYED = [k for k in KINDS if not k.keyless]
HASHLIKE = [k for k in KEYED if not k.map_type.has_fixed_keys]
BY_TYPE = {k.map_type: k for k in KINDS}


def kinds(selection: list[Kind]) -> pytest.MarkDecorator:
    """Parametrize a test over ``kind`` with readable ids."""
    return pytest.mark.parametrize("kind", selection, ids=[k.name for k in selection])


@kinds(KINDS)
def test_create_caches_the_shape(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, name="tm_shape")
    assert h.map_type is kind.map_type
    assert h.name == "tm_shape"
    assert h.key_size == (0 if kind.keyless else kind.key_size)
    assert h.value_size == kind.value_size
    assert h.max_entries == kind.max_entries
    assert h.id > 0
    assert not h.closed
    expected_flags = tm.MapCreateFlags.NO_PREALLOC if kind.map_type is T.LPM_TRIE else 0
    assert h.map_flags == expected_flags


@kinds(KINDS)
def test_info_matches_the_cache_and_bpftool(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    info = h.info()
    assert isinstance(info, tm.MapInfo)
    assert (info.id, info.name, info.map_type) == (h.id, h.name, h.map_type)
    assert (info.key_size, info.value_size) == (h.key_size, h.value_size)
    assert (info.max_entries, info.map_flags) == (h.max_entries, h.map_flags)
    assert (info.btf_id, info.btf_key_type_id, info.btf_value_type_id) == (0, 0, 0)
    if kind.map_type is T.BLOOM_FILTER:
        assert info.map_extra == 3  # the conftest's number of hash functions
    shown = bpftool("map", "show", "id", str(h.id))
    assert shown["id"] == h.id
    assert shown["name"] == h.name
    assert shown["bytes_key"] == h.key_size
    assert shown["bytes_value"] == h.value_size
    assert shown["max_entries"] == h.max_entries
    assert shown["type"].replace("_", "").upper() == h.map_type.name.replace("_", "")
    with pytest.raises(AttributeError):
        info.id = 1  # type: ignore[misc]  # frozen


@kinds(KINDS)
def test_put_then_get_round_trips(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map)
    kind.put(h, 3)
    assert kind.get(h, 3) == kind.expected(3)


@kinds(KINDS)
def test_repr_shows_shape_and_state(make_map: MakeMap, kind: Kind) -> None:
    h = kind.create(make_map, name="tm_repr")
    text = repr(h)
    assert text.startswith("MapHandle(name='tm_repr', ")
    assert f"type={kind.name}" in text
    assert f"value_size={kind.value_size}" in text
    assert f"max_entries={kind.max_entries}" in text
    assert f"fd={h.fileno()}" in text
    h.close()
    assert repr(h).endswith("closed)")


def test_public_class_reprs() -> None:
    assert repr(tm.MapHandle) == "<class 'typedmaps.MapHandle'>"
    assert tm.MapType.HASH.is_percpu is False
    assert tm.MapType.LRU_PERCPU_HASH.is_percpu is True
    assert tm.MapType.BLOOM_FILTER.is_keyless is True
    assert tm.MapType(999).name == "UNKNOWN_999"
