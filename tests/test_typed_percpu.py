"""PerCpuTypedMap on real per-CPU maps: one value per possible CPU, reductions."""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import MakeMap

NCPUS = tm.num_possible_cpus()


@dataclasses.dataclass
class Inner(DataclassMixin):
    hits: int = csfield(cs.Int32ul)
    ratio: float = csfield(cs.Float32l)


@dataclasses.dataclass
class Stats(DataclassMixin):
    """12 + 8 + 4 + 4 = 28 bytes: per-CPU slots round it up to 32."""

    packets: int = csfield(cs.Int64ul)
    inner: Inner = csfield(DataclassStruct(Inner))  # noqa: RUF009 (a construct field spec)
    hist: list[int] = csfield(cs.Array(4, cs.Int8ul))  # noqa: RUF009
    tag: bytes = csfield(cs.Bytes(3))
    up: bool = csfield(cs.Flag)
    pad: int = csfield(cs.Int32sl)


STATS = DataclassStruct(Stats)


def stats(cpu: int, tag: bytes = b"abc") -> Stats:
    return Stats(
        packets=10 * (cpu + 1),
        inner=Inner(hits=cpu, ratio=0.5),
        hist=[cpu, 1, 2, 3],
        tag=tag,
        up=cpu % 2 == 0,
        pad=-cpu,
    )


@pytest.fixture
def counters(make_map: MakeMap) -> tm.PerCpuTypedMap[int, int]:
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=64)
    return tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)


def test_one_value_per_possible_cpu(counters: tm.PerCpuTypedMap[int, int]) -> None:
    assert counters.num_cpus == NCPUS
    values = [i * 3 for i in range(NCPUS)]
    counters[1] = values
    assert counters[1] == values
    assert counters.get(1) == values
    assert counters.get(2) is None
    assert counters.handle.lookup_percpu(b"\x01\0\0\0") == [v.to_bytes(8, "little") for v in values]
    counters[2] = tuple(range(NCPUS))  # any sequence
    assert counters[2] == list(range(NCPUS))
    assert sorted(counters) == [1, 2]
    assert dict(counters.items()) == {1: values, 2: list(range(NCPUS))}
    assert counters.pop(2) == list(range(NCPUS))
    assert 2 not in counters


def test_wrong_number_of_values_changes_nothing(counters: tm.PerCpuTypedMap[int, int]) -> None:
    counters[1] = [1] * NCPUS
    for bad in ([1] * (NCPUS + 1), [1] * (NCPUS - 1), []):
        with pytest.raises(tm.SizeMismatchError) as info:
            counters[1] = bad
        assert (info.value.size, info.value.expected) == (len(bad), NCPUS)
        assert "possible CPU" in str(info.value)
        with pytest.raises(tm.SizeMismatchError):
            counters.update_batch([(2, [0] * NCPUS), (3, bad)])
    assert dict(counters.items()) == {1: [1] * NCPUS}


@pytest.mark.parametrize("bad", [5, b"12345678", "ab", None])
def test_a_scalar_is_not_a_per_cpu_list(counters: tm.PerCpuTypedMap[int, int], bad: object) -> None:
    with pytest.raises(tm.CodecError, match="one per possible CPU"):
        counters[1] = bad  # type: ignore[assignment]
    assert len(counters) == 0


def test_bad_value_on_one_cpu(counters: tm.PerCpuTypedMap[int, int]) -> None:
    values = [1] * NCPUS
    values[-1] = -1
    with pytest.raises(tm.CodecError) as info:
        counters[1] = values
    assert info.value.path == f"value[{NCPUS - 1}]"
    assert 1 not in counters


def test_sum_of_ints(counters: tm.PerCpuTypedMap[int, int]) -> None:
    counters[1] = [i + 1 for i in range(NCPUS)]
    counters[2] = [100] * NCPUS
    assert counters.sum(1) == NCPUS * (NCPUS + 1) // 2
    assert dict(counters.totals()) == {1: NCPUS * (NCPUS + 1) // 2, 2: 100 * NCPUS}
    assert counters.sum_all() == NCPUS * (NCPUS + 1) // 2 + 100 * NCPUS
    with pytest.raises(tm.KeyNotFoundError):
        counters.sum(3)


def test_sum_all_of_an_empty_map_is_zero(counters: tm.PerCpuTypedMap[int, int]) -> None:
    assert counters.sum_all() == 0
    assert list(counters.totals()) == []


def test_sum_of_records(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=STATS.sizeof(), max_entries=4)
    assert h._slot == 32
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=STATS)
    per_cpu = [stats(cpu, tag=b"abc" if cpu == 0 else b"xyz") for cpu in range(NCPUS)]
    pc[2] = per_cpu
    assert pc[2] == per_cpu
    total = pc.sum(2)
    assert isinstance(total, Stats)
    assert total.packets == sum(10 * (c + 1) for c in range(NCPUS))
    assert total.inner == Inner(hits=sum(range(NCPUS)), ratio=0.5 * NCPUS)
    assert total.hist == [sum(range(NCPUS)), NCPUS, 2 * NCPUS, 3 * NCPUS]
    assert total.pad == -sum(range(NCPUS))
    # not numbers: CPU 0's value
    assert total.tag == b"abc"
    assert total.up is True
    # the per-CPU values are left as they were
    assert pc[2] == per_cpu
    zero = Stats(0, Inner(0, 0.0), [0, 0, 0, 0], bytes(3), False, 0)
    assert dict(pc.totals()) == {0: zero, 1: zero, 2: total, 3: zero}
    assert pc.sum_all().packets == total.packets


def test_sum_of_containers(make_map: MakeMap) -> None:
    schema = cs.Struct("n" / cs.Int32ul, "name" / cs.PaddedString(4, "ascii"))
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=4)
    pc: tm.PerCpuTypedMap[int, dict[str, Any]] = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=schema)
    pc[0] = [{"n": cpu + 1, "name": f"c{cpu}"} for cpu in range(NCPUS)]
    total = pc.sum(0)
    assert isinstance(total, cs.Container)
    assert total.n == NCPUS * (NCPUS + 1) // 2
    assert total.name == "c0"


def test_per_cpu_array(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=4, max_entries=3)
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int32sl)
    assert len(pc) == 3
    assert list(pc) == [0, 1, 2]
    assert pc[1] == [0] * NCPUS
    pc[1] = [-1] * NCPUS
    assert h._slot == 8  # 4-byte values in 8-byte slots
    assert pc[1] == [-1] * NCPUS
    with pytest.raises(tm.NotSupportedError):
        del pc[1]
    pc.clear()
    assert pc[1] == [0] * NCPUS
    with pytest.raises(tm.KeyNotFoundError):
        pc[3] = [0] * NCPUS


def test_per_cpu_batches(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=3000)
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    pairs = [(i, [i + cpu for cpu in range(NCPUS)]) for i in range(3000)]
    assert pc.update_batch(pairs) == 3000
    assert dict(pc.items()) == dict(pairs)
    assert dict(pc.lookup_batch(batch_size=100)) == dict(pairs)
    for i in (0, 1234, 2999):
        assert h.lookup_percpu(i.to_bytes(4, "little")) == [
            (i + cpu).to_bytes(8, "little") for cpu in range(NCPUS)
        ]
    assert pc.delete_batch(range(1000)) == 1000
    assert len(pc) == 2000
    assert dict(pc.lookup_and_delete_batch()) == dict(pairs[1000:])
    assert len(pc) == 0


def test_per_cpu_pop_and_popitem(counters: tm.PerCpuTypedMap[int, int]) -> None:
    counters[1] = [7] * NCPUS
    assert counters.popitem() == (1, [7] * NCPUS)
    assert counters.pop(1, None) is None


def test_per_cpu_refuses_plain_maps(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    with pytest.raises(tm.NotSupportedError, match="use TypedMap"):
        tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)


def test_per_cpu_schema_size_is_the_value_size_not_the_slot(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=4, max_entries=4)
    with pytest.raises(tm.SizeMismatchError, match="Int64ul is 8 bytes, expected 4"):
        tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int32ul)
    assert "PerCpuTypedMap(key=Int32ul, value=Int32ul" in repr(pc)
