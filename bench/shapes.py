"""The record shapes of the benchmark matrix: schemas, the element formulas, field readers.

Every group of bench/run.py (C, the cffi floor, MapHandle, TypedMap, BCC)
walks the same maps with the same keys, so each shape is defined once,
here, as Python records; the bytes every byte-level group uses are those
records encoded (or, for the BTF shape, packed by hand to the C layout and
checked against the BTF schema's decode).

Shapes:

``plain``
    16-byte flow key (four ints and a byte, 3 bytes of padding), 32-byte
    value of four u64 counters: plain dataclasses of ints.
``frozen_str``
    16-byte ``@dataclass(frozen=True)`` key (hashable) mixing byte orders
    (host-order ifindex, network-order addresses and ports), 40-byte value
    with a ``PaddedString(16)`` process name.
``nested``
    8-byte key; 104-byte value with a ``TEnum``, two nested records, an
    ``Array`` of ints and an ``Array`` of records (each with an enum and
    padding).
``btf``
    8-byte key and 104-byte value from bpf/bench.bpf.c, schemas taken from
    the map's BTF by ``typed(h)``: a run of bitfields, two unions, an enum,
    a char array, an array. Records are construct Containers.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import construct as cs
from construct_typed import (
    DataclassMixin,
    DataclassStruct,
    EnumBase,
    TEnum,
    csfield,
    csfield_noinit,
)
from workload import key_fields, value_fields

import typedmaps as tm

ROOT: Final = Path(__file__).resolve().parent.parent
BENCH_OBJECT: Final = ROOT / "build" / "bpf" / "bench.bpf.o"


# --------------------------------------------------------------------------- plain


@dataclasses.dataclass
class FlowKey(DataclassMixin):
    """struct flow_key: 16 bytes with 3 bytes of tail padding."""

    src: int = csfield(cs.Int32ul)
    dst: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class FlowValue(DataclassMixin):
    """struct flow_value: four u64 counters, 32 bytes."""

    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)
    first_ns: int = csfield(cs.Int64ul)
    last_ns: int = csfield(cs.Int64ul)


def _flow_key(i: int) -> FlowKey:
    return FlowKey(*key_fields(i))


def _flow_value(i: int) -> FlowValue:
    return FlowValue(*value_fields(i))


def _touch_flow(k: FlowKey, v: FlowValue) -> None:
    _ = (k.src, k.dst, k.sport, k.dport, k.proto)
    _ = (v.packets, v.bytes, v.first_ns, v.last_ns)


def _touch_flow_value(v: FlowValue) -> None:
    _ = (v.packets, v.bytes, v.first_ns, v.last_ns)


# --------------------------------------------------------------------------- frozen_str


@dataclasses.dataclass(frozen=True)
class ConnKey(DataclassMixin):
    """A hashable connection key: host-order ifindex, network-order addresses and ports."""

    ifindex: int = csfield(cs.Int32ul)
    saddr: int = csfield(cs.Int32ub)
    daddr: int = csfield(cs.Int32ub)
    sport: int = csfield(cs.Int16ub)
    dport: int = csfield(cs.Int16ub)


@dataclasses.dataclass
class ProcInfo(DataclassMixin):
    """Who owns a connection: 40 bytes with a 16-byte process name."""

    pid: int = csfield(cs.Int32ul)
    uid: int = csfield(cs.Int32ul)
    comm: str = csfield(cs.PaddedString(16, "ascii"))
    start_ns: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


_COMMS: Final = ("nginx", "sshd", "postgres", "python3", "systemd-resolve", "curl")


def _conn_key(i: int) -> ConnKey:
    return ConnKey(i & 0xFF, 0x0A000000 | i, 0xC0A80000 | (i * 7 & 0xFFFF), 1024 + i % 50000, 443)


def _proc_info(i: int) -> ProcInfo:
    return ProcInfo(1000 + i, i % 65536, _COMMS[i % len(_COMMS)], i << 24, i * 4096)


def _touch_conn(k: ConnKey, v: ProcInfo) -> None:
    _ = (k.ifindex, k.saddr, k.daddr, k.sport, k.dport)
    _ = (v.pid, v.uid, v.comm, v.start_ns, v.bytes)


def _touch_proc(v: ProcInfo) -> None:
    _ = (v.pid, v.uid, v.comm, v.start_ns, v.bytes)


# --------------------------------------------------------------------------- nested


class Verdict(EnumBase):
    """What the program did with a packet."""

    PASS = 0
    DROP = 1
    REDIRECT = 2


@dataclasses.dataclass
class QueueKey(DataclassMixin):
    """An interface queue: 8 bytes, 2 of them padding."""

    ifindex: int = csfield(cs.Int32ul)
    queue: int = csfield(cs.Int16ul)
    _pad: None = csfield_noinit(cs.Padding(2))


@dataclasses.dataclass
class Counters(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class Sample(DataclassMixin):
    """One recent packet: 16 bytes with an enum and 3 bytes of padding."""

    ts_ns: int = csfield(cs.Int64ul)
    length: int = csfield(cs.Int32ul)
    verdict: Verdict = csfield(TEnum(cs.Int8ul, Verdict))  # noqa: RUF009
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class QueueStats(DataclassMixin):
    """104 bytes: an enum, two nested records, an array of ints, an array of records."""

    last_verdict: Verdict = csfield(TEnum(cs.Int32ul, Verdict))  # noqa: RUF009
    cpu: int = csfield(cs.Int32ul)
    rx: Counters = csfield(DataclassStruct(Counters))  # noqa: RUF009
    tx: Counters = csfield(DataclassStruct(Counters))  # noqa: RUF009
    hist: list[int] = csfield(cs.Array(8, cs.Int32ul))  # noqa: RUF009
    recent: list[Sample] = csfield(cs.Array(2, DataclassStruct(Sample)))  # noqa: RUF009


_VERDICTS: Final = tuple(Verdict)


def _queue_key(i: int) -> QueueKey:
    return QueueKey(i // 64, i % 64)


def _queue_stats(i: int) -> QueueStats:
    return QueueStats(
        _VERDICTS[i % 3],
        i % 2,
        Counters(i, i * 1500),
        Counters(i // 2, i * 700),
        cs.ListContainer(((i >> s) & 0xFFFF) for s in range(8)),
        cs.ListContainer(
            [Sample(i << 10, 60 + i % 1400, _VERDICTS[(i + j) % 3]) for j in range(2)]
        ),
    )


def _touch_queue(k: QueueKey, v: QueueStats) -> None:
    _ = (k.ifindex, k.queue)
    _touch_stats(v)


def _touch_stats(v: QueueStats) -> None:
    _ = (v.last_verdict, v.cpu, v.rx.packets, v.rx.bytes, v.tx.packets, v.tx.bytes, v.hist)
    for s in v.recent:
        _ = (s.ts_ns, s.length, s.verdict)


# --------------------------------------------------------------------------- btf

#: struct bench_conn_key and struct bench_conn of bpf/bench.bpf.c, packed by hand.
_BTF_KEY: Final = struct.Struct("<II")
_BTF_VALUE: Final = struct.Struct("<QII16s16sHHI16sQQ4I")
_STATES: Final = 4


def _btf_key_bytes(i: int) -> bytes:
    return _BTF_KEY.pack(i % 8, i)


def _addr(i: int, v6: bool) -> bytes:
    if v6:
        return struct.pack(">IIII", 0x20010DB8, i >> 16, i & 0xFFFF, i * 3)
    return struct.pack("<I12x", 0x0A000000 | i)


def _btf_value_bytes(i: int) -> bytes:
    bits = (6 if i % 2 else 17) | (4 << 8) | ((i % 16) << 12) | ((i % 8192) << 16)
    bits |= ((i >> 1) & 1) << 29 | ((i >> 2) & 1) << 30
    comm = _COMMS[i % len(_COMMS)].encode().ljust(16, b"\0")
    return _BTF_VALUE.pack(
        i << 20,
        1000 + i,
        bits,
        _addr(i, i % 4 == 3),
        _addr(i + 1, i % 4 == 3),
        1024 + i % 50000,
        443,
        i % _STATES,
        comm,
        i,
        i * 1500,
        i & 0xFF,
        (i >> 8) & 0xFF,
        i % 7,
        1,
    )


def _touch_btf(k: Any, v: Any) -> None:
    _ = (k.ifindex, k.flow)
    _touch_btf_value(v)


def _touch_btf_value(v: Any) -> None:
    _ = (v.ts_ns, v.pid, v.proto, v.version, v.tclass, v.frag, v.df, v.mf, v.evil)
    _ = (v.src.v4, v.src.v6, v.dst.v4, v.dst.v6, v.sport, v.dport, v.state, v.comm)
    _ = (v.packets, v.bytes, v.hist)


# --------------------------------------------------------------------------- shapes


@dataclasses.dataclass(frozen=True)
class Shape:
    """One record shape: its schemas (or BTF), element formulas and field readers.

    Attributes:
        name: the short name used in the record (``plain``, ``nested``, ...).
        title: what the shape is, for the report.
        key_size, value_size: bytes of one key and one value.
        key_schema, value_schema: the construct schemas, or None when the
            schemas come from the map's BTF (``typed(h)``).
        make_key, make_value: element ``i`` as Python records (None when the
            records come from decoding ``raw_key``/``raw_value``).
        raw_key, raw_value: element ``i`` as bytes in the C layout (None
            when they come from encoding the records).
        touch: reads every field of a (key, value) pair.
        touch_value: reads every field of a value.
        percpu: whether the matrix also measures a PERCPU_HASH of this shape.
    """

    name: str
    title: str
    key_size: int
    value_size: int
    key_schema: Any
    value_schema: Any
    make_key: Callable[[int], Any] | None
    make_value: Callable[[int], Any] | None
    raw_key: Callable[[int], bytes] | None
    raw_value: Callable[[int], bytes] | None
    touch: Callable[[Any, Any], None]
    touch_value: Callable[[Any], None]
    percpu: bool = False

    @property
    def from_btf(self) -> bool:
        return self.key_schema is None

    def create(self, map_type: tm.MapType, max_entries: int, name: str) -> Owned:
        """A new, empty map of this shape: created directly, or from bench.bpf.o (BTF)."""
        if not self.from_btf:
            h = tm.MapHandle.create(
                map_type,
                key_size=self.key_size,
                value_size=self.value_size,
                max_entries=max_entries,
                name=name,
            )
            return Owned(h, None)
        if map_type is not tm.MapType.HASH:
            raise ValueError(f"the BTF shape has only a HASH map, not {map_type.name}")
        if not BENCH_OBJECT.exists():
            raise SystemExit(f"bench: {BENCH_OBJECT} is missing; run `make bpf`")
        obj = tm.BpfObject.open(BENCH_OBJECT)
        try:
            obj.maps["bench_conns"].max_entries = max_entries
            obj.load()
            return Owned(obj.maps["bench_conns"], obj)
        except BaseException:
            obj.close()
            raise


@dataclasses.dataclass
class Owned:
    """A map and what owns its fd (the BPF object of the BTF shape, else the handle)."""

    handle: tm.MapHandle
    owner: tm.BpfObject | None

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()
        else:
            self.handle.close()


SHAPES: Final[dict[str, Shape]] = {
    s.name: s
    for s in (
        Shape(
            "plain",
            "plain ints: 16-byte key, 32-byte value",
            16,
            32,
            DataclassStruct(FlowKey),
            DataclassStruct(FlowValue),
            _flow_key,
            _flow_value,
            None,
            None,
            _touch_flow,
            _touch_flow_value,
            percpu=True,
        ),
        Shape(
            "frozen_str",
            "frozen 16-byte key (mixed byte order), 40-byte value with a PaddedString",
            16,
            40,
            DataclassStruct(ConnKey),
            DataclassStruct(ProcInfo),
            _conn_key,
            _proc_info,
            None,
            None,
            _touch_conn,
            _touch_proc,
        ),
        Shape(
            "nested",
            "8-byte key, 104-byte value: enum, nested records, array of ints and of records",
            8,
            104,
            DataclassStruct(QueueKey),
            DataclassStruct(QueueStats),
            _queue_key,
            _queue_stats,
            None,
            None,
            _touch_queue,
            _touch_stats,
        ),
        Shape(
            "btf",
            "typed(h) from BTF: 8-byte key, 104-byte value with unions and bitfields",
            8,
            104,
            None,
            None,
            None,
            None,
            _btf_key_bytes,
            _btf_value_bytes,
            _touch_btf,
            _touch_btf_value,
        ),
    )
}
