"""Typed wrappers over a loaded BPF object's maps: schemas written by hand, and from BTF."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator

import construct as cs
import pytest
from construct_typed import DataclassStruct

import typedmaps as tm

from .conftest import bpf_object
from .flow_records import PROTO_TCP, PROTO_UDP, XDP_PASS, FlowKey, FlowStats, ProtoStats


def frame(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    """Ethernet + IPv4 + a bare TCP (6) or UDP (17) header; checksums left zero."""
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x02, 1024, 0, 0)
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return bytes(12) + b"\x08\x00" + ip + l4


PACKETS = [
    ("192.0.2.1", "192.0.2.9", 6, 1000, 80),
    ("192.0.2.1", "192.0.2.9", 6, 1000, 80),
    ("192.0.2.2", "192.0.2.9", 17, 5353, 53),
    ("198.51.100.7", "192.0.2.9", 6, 2222, 22),
]


@pytest.fixture
def flows_obj(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("flows")) as obj:
        obj.load()
        prog = obj.programs["count_flows"]
        for p in PACKETS:
            assert prog.test_run(frame(*p)).retval == XDP_PASS
        yield obj


def test_hand_written_schemas_read_what_bpf_wrote(flows_obj: tm.BpfObject) -> None:
    flows = tm.TypedMap(
        flows_obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    got = {(str(ipaddress.IPv4Address(k.saddr)), k.sport, k.dport): v for k, v in flows.items()}
    assert {k: v.packets for k, v in got.items()} == {
        ("192.0.2.1", 1000, 80): 2,
        ("192.0.2.2", 5353, 53): 1,
        ("198.51.100.7", 2222, 22): 1,
    }
    assert all(v.first_seen_ns <= v.last_seen_ns for v in got.values())
    # keys decoded from the kernel's bytes find their elements again
    for k in flows:
        assert flows[k].packets >= 1

    per_proto = tm.PerCpuTypedMap(
        flows_obj.maps["proto_stats"], key=cs.Int32ul, value=DataclassStruct(ProtoStats)
    )
    assert len(per_proto) == 5
    assert per_proto.sum(PROTO_TCP).packets == 3
    assert per_proto.sum(PROTO_UDP).packets == 1
    assert per_proto.sum_all().packets == len(PACKETS)

    sources = tm.TypedMap(flows_obj.maps["sources"], key=cs.Bytes(4), value=cs.Int64ul)
    assert sources[ipaddress.IPv4Address("192.0.2.1").packed] == 2
    assert sum(sources.values()) == len(PACKETS)


def test_typed_with_btf_schemas_agrees_with_hand_written_ones(flows_obj: tm.BpfObject) -> None:
    by_btf = tm.typed(flows_obj.maps["flows"])
    assert isinstance(by_btf, tm.TypedMap)
    hand = tm.TypedMap(
        flows_obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    # the same elements, byte for byte, through either pair of schemas
    btf_side = sorted(
        (by_btf.key_codec.encode(k), by_btf.value_codec.encode(v)) for k, v in by_btf.items()
    )
    hand_side = sorted(
        (hand.key_codec.encode(k), hand.value_codec.encode(v)) for k, v in hand.items()
    )
    assert btf_side == hand_side
    assert len(btf_side) == 3
    # and a key decoded through BTF looks its element up again
    for k, v in by_btf.items():
        assert by_btf.get(k) == v

    verdicts = tm.typed(flows_obj.maps["verdicts"])
    assert isinstance(verdicts, tm.PerCpuTypedMap)
    assert verdicts.sum(XDP_PASS) == len(PACKETS)
    assert dict(verdicts.totals()) == {0: 0, 1: 0, 2: len(PACKETS), 3: 0, 4: 0}


def test_wrapper_mismatch_on_object_maps(flows_obj: tm.BpfObject) -> None:
    with pytest.raises(tm.NotSupportedError, match="use PerCpuTypedMap"):
        tm.TypedMap(flows_obj.maps["verdicts"], key=cs.Int32ul, value=cs.Int64ul)
    with pytest.raises(tm.SizeMismatchError, match=r"DataclassStruct\(ProtoStats\) is 16"):
        tm.TypedMap(
            flows_obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(ProtoStats)
        )


def test_wrappers_see_the_object_close(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("flows")) as obj:
        obj.load()
        flows = tm.TypedMap(
            obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
        )
        assert len(flows) == 0
    with pytest.raises(tm.TypedMapsError):
        len(flows)
