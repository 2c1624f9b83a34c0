"""The records and constants of bpf/flows.bpf.c and bpf/events.bpf.c, shared by the tests."""

from __future__ import annotations

import dataclasses

import construct as cs
from construct_typed import DataclassMixin, csfield, csfield_noinit


@dataclasses.dataclass(unsafe_hash=True)
class FlowKey(DataclassMixin):
    """struct flow_key of bpf/flows.bpf.c (addresses in network byte order)."""

    saddr: bytes = csfield(cs.Bytes(4))
    daddr: bytes = csfield(cs.Bytes(4))
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class FlowStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)
    first_seen_ns: int = csfield(cs.Int64ul)
    last_seen_ns: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class ProtoStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class Event(DataclassMixin):
    """struct event of bpf/events.bpf.c."""

    ts_ns: int = csfield(cs.Int64ul)
    seq: int = csfield(cs.Int32ul)
    cpu: int = csfield(cs.Int32ul)
    len: int = csfield(cs.Int32ul)
    protocol: int = csfield(cs.Int16ul)
    ip_proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(1))


PROTO_OTHER, PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_NON_IP = range(5)
XDP_DROP, XDP_PASS = 1, 2
