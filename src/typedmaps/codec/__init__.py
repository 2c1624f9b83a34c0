"""Codecs: fixed-size construct schemas to bytes and back.

A :class:`Codec` wraps one construct schema, the declared source of truth
for a key or value layout, and turns Python values into the exact bytes
the schema builds (and back). Every failure is a
:class:`~typedmaps.errors.CodecError` naming the field path
(``"value.stats.bytes"``), the offending value and the reason, so nothing
reaches a syscall unless it encodes.

Build one with :func:`make_codec`; the typed map layer does this once per
map, when the map is wrapped.
"""

from ._codec import Codec, make_codec
from ._emit import PairPlan, pair_plan
from ._offset import RowDecoder, row_decoder
from ._plan import (
    FAST_ADAPTER_HOOK,
    FAST_GROUP_END_HOOK,
    FAST_LEAF_HOOK,
    FAST_OVERLAY_HOOK,
    FAST_RECORD_HOOK,
)

__all__ = [
    "FAST_ADAPTER_HOOK",
    "FAST_GROUP_END_HOOK",
    "FAST_LEAF_HOOK",
    "FAST_OVERLAY_HOOK",
    "FAST_RECORD_HOOK",
    "Codec",
    "PairPlan",
    "RowDecoder",
    "make_codec",
    "pair_plan",
    "row_decoder",
]
