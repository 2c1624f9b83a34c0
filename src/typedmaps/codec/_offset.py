"""Decoding one record straight out of a buffer at an offset: the memory-mapped readers.

A typed reader over memory-mapped map memory (an mmapable ARRAY's
elements, a global variable) reads a record with
``struct.Struct.unpack_from(view, offset)`` bound once, and builds the
value with the very statements the schema's fast plan uses, in the
reader's own generated function: no slice of the buffer, no bytes object,
no call into the codec. These are the pieces such a reader is made of.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import TYPE_CHECKING, Any

from ._emit import _base_ns, _emit_parts
from ._plan import _Planner

if TYPE_CHECKING:
    from ._codec import Codec


@dataclasses.dataclass(frozen=True)
class RowDecoder:
    """The generated statements that decode one record from its unpacked row.

    Attributes:
        struct: unpacks one record (``unpack_from(buffer, offset)``); its
            size is the codec's.
        target: the assignment target for the tuple ``struct`` returns.
        lines: statements that run after the assignment (may be empty).
        expr: the expression of the decoded record.
        namespace: the names the statements use; the generated function
            must run in a namespace that holds them.

    The statements may raise (anything) where construct would decode
    differently; the reader then decodes the same bytes with the codec,
    which gives construct's value or error.
    """

    struct: struct.Struct
    target: str
    lines: list[str]
    expr: str
    namespace: dict[str, Any]


def row_decoder(codec: Codec[Any], stem: str = "r_") -> RowDecoder | None:
    """The statements decoding one record of ``codec``, or None without a fast plan.

    Every local name the statements use starts with ``stem``.
    """
    if not codec.fast or not codec.size:
        return None
    planner = _Planner()
    parts = _emit_parts(codec.schema, codec.size, planner, stem)
    if parts is None:  # pragma: no cover - a codec with a fast plan has parts
        return None
    return RowDecoder(
        parts.packer, parts.target, parts.dec_lines, parts.dec_expr, _base_ns(planner)
    )
