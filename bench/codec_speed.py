"""Codec speed: fast plans against construct and construct-compiled, side by side.

    .venv/bin/python bench/codec_speed.py

Prints ns per call (best of 7 rounds) for a 32-byte, 4-field dataclass value
and a 16-byte mixed-byte-order key. Kept out of the test suite on purpose:
speed is measured here, not asserted in timed tests; tests/test_codec.py
checks (deterministically) that these schemas get fast plans.
"""

from __future__ import annotations

import dataclasses
import timeit
from collections.abc import Callable

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

from typedmaps.codec import make_codec


@dataclasses.dataclass
class FlowValue(DataclassMixin):
    """A 32-byte, 4-field record: the issue's benchmark value."""

    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)
    first_ns: int = csfield(cs.Int64ul)
    last_ns: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class FlowKey(DataclassMixin):
    """A 16-byte key with network-order ports (mixed byte order) and padding."""

    saddr: int = csfield(cs.Int32ul)
    daddr: int = csfield(cs.Int32ul)
    sport: int = csfield(cs.Int16ub)
    dport: int = csfield(cs.Int16ub)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


def best_ns(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e9


def main() -> None:
    value_schema = DataclassStruct(FlowValue)
    value_codec = make_codec(value_schema)
    value = FlowValue(1, 1500, 10**9, 2 * 10**9)
    raw = value_codec.encode(value)
    compiled = value_schema.compile()
    assert value_codec.fast

    key_schema = DataclassStruct(FlowKey)
    key_codec = make_codec(key_schema, "key")
    key = FlowKey(0x0100007F, 0x0200007F, 443, 8080, 6)
    raw_key = key_codec.encode(key)

    rows = {
        "value decode fast": best_ns(lambda: value_codec.decode(raw), 50_000),
        "value decode construct": best_ns(lambda: value_schema.parse(raw), 2_000),
        "value decode construct compiled": best_ns(lambda: compiled.parse(raw), 2_000),
        "value encode fast": best_ns(lambda: value_codec.encode(value), 50_000),
        "value encode construct": best_ns(lambda: value_schema.build(value), 2_000),
        "value encode construct compiled": best_ns(lambda: compiled.build(value), 2_000),
        "key decode fast (mixed byte order)": best_ns(lambda: key_codec.decode(raw_key), 50_000),
        "key decode construct": best_ns(lambda: key_schema.parse(raw_key), 2_000),
        "key encode fast (mixed byte order)": best_ns(lambda: key_codec.encode(key), 50_000),
        "key encode construct": best_ns(lambda: key_schema.build(key), 2_000),
    }
    values = [FlowValue(i, i, i, i) for i in range(1000)]
    blob = value_codec.encode_many(values)
    rows["value decode_many fast, per record"] = (
        best_ns(lambda: value_codec.decode_many(blob, 1000), 50) / 1000
    )
    rows["value encode_many fast, per record"] = (
        best_ns(lambda: value_codec.encode_many(values), 50) / 1000
    )
    print()
    for name, ns in rows.items():
        print(f"  {name:38s} {ns:9.0f} ns")

    for kind in ("value decode", "value encode", "key decode", "key encode"):
        fast = next(ns for name, ns in rows.items() if name.startswith(f"{kind} fast"))
        print(f"  {kind}: construct / fast = {rows[f'{kind} construct'] / fast:.1f}x")


if __name__ == "__main__":
    main()
