"""Records shared by the typing cases (checked by mypy only, never run)."""

from __future__ import annotations

import dataclasses

import construct as cs
from construct_typed import DataclassMixin, csfield, csfield_noinit


@dataclasses.dataclass
class FlowKey(DataclassMixin):
    src: int = csfield(cs.Int32ul)
    dst: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class FlowStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class Event(DataclassMixin):
    pid: int = csfield(cs.Int32ul)
    comm: bytes = csfield(cs.Bytes(16))
