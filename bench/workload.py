"""The plain shape's element formulas, in the standard library only.

bench/shapes.py builds the ``plain`` record shape of the benchmark matrix
(and bench/lifetime.py its keys and values) from these formulas: key ``i``
and value ``i`` of a realistic flow record in its C layout::

    struct flow_key   { u32 src, dst; u16 sport, dport; u8 proto; u8 pad[3]; };  // 16 bytes
    struct flow_value { u64 packets, bytes, first_ns, last_ns; };              // 32 bytes

bench/cbench.c and bench/bcc_side.py get the bytes themselves from the
benchmark (a file, the fds of the very maps), so one formula serves all.
"""

from __future__ import annotations

import struct
from typing import Final

KEY_SIZE: Final = 16
VALUE_SIZE: Final = 32
KEY_STRUCT: Final = struct.Struct("<IIHHB3x")
VALUE_STRUCT: Final = struct.Struct("<QQQQ")

KeyFields = tuple[int, int, int, int, int]
ValueFields = tuple[int, int, int, int]


def key_fields(i: int) -> KeyFields:
    """Fields of key ``i``: src, dst, sport, dport, proto."""
    return (i, (i * 2654435761) & 0xFFFFFFFF, i & 0xFFFF, (i >> 16) & 0xFFFF, 6)


def value_fields(i: int) -> ValueFields:
    """Fields of value ``i``: packets, bytes, first_ns, last_ns ."""
    return (i, i * 1500, i << 20, (i << 20) + 12345)


def key_bytes(i: int) -> bytes:
    """Key ``i`` in its C layout (16 bytes, padding zeroed)."""
    return KEY_STRUCT.pack(*key_fields(i))


def value_bytes(i: int) -> bytes:
    """Value ``i`` in its C layout (32 bytes)."""
    return VALUE_STRUCT.pack(*value_fields(i))
