"""Codec speed: fast plans against construct, side by side, for the benchmark's record shapes.

    .venv/bin/python bench/codec_speed.py

Prints ns per call (best of 7 rounds, thread CPU time) to decode and encode
one key and one value of each shape of bench/shapes.py (plain ints, a
frozen key with a string value, nested records with arrays and enums, a
BTF-derived value with unions and bitfields), with the codec's fast plan
and with construct's own parse and build. Kept out of the test suite on
purpose: speed is measured here, not asserted in timed tests; the tests
check (deterministically) that these schemas get fast plans.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

from shapes import BENCH_OBJECT, SHAPES, Shape

from typedmaps.btf import Btf
from typedmaps.codec import make_codec


def best_ns(fn: Callable[[], object], number: int) -> float:
    timer = timeit.Timer(fn, timer=time.thread_time)
    return min(timer.repeat(repeat=7, number=number)) / number * 1e9


def schemas(shape: Shape) -> tuple[Any, Any, bytes, bytes]:
    """The key and value schemas of a shape and element 7's bytes."""
    if shape.from_btf:
        assert shape.raw_key is not None
        assert shape.raw_value is not None
        btf = Btf.from_file(BENCH_OBJECT)
        ks = btf.schema(btf.find("bench_conn_key").id, "key")
        vs = btf.schema(btf.find("bench_conn").id)
        return ks, vs, shape.raw_key(7), shape.raw_value(7)
    assert shape.make_key is not None
    assert shape.make_value is not None
    kc, vc = make_codec(shape.key_schema, "key"), make_codec(shape.value_schema)
    return (
        shape.key_schema,
        shape.value_schema,
        kc.encode(shape.make_key(7)),
        vc.encode(shape.make_value(7)),
    )


def main() -> None:
    head = f"{'ns per call':<34}{'fast plan':>10}{'construct':>11}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for shape in SHAPES.values():
        ks, vs, kb, vb = schemas(shape)
        for what, schema, raw in (("key", ks, kb), ("value", vs, vb)):
            codec = make_codec(schema, what)
            assert codec.fast, (shape.name, what)
            obj = codec.decode(raw)
            rows = (
                ("decode", codec.decode, schema.parse, raw),
                ("encode", codec.encode, schema.build, obj),
            )
            for op, fast, slow, arg in rows:
                f = best_ns(lambda fn=fast, a=arg: fn(a), 20000)
                c = best_ns(lambda fn=slow, a=arg: fn(a), 300)
                label = f"{shape.name} {what} {op} ({codec.size} B)"
                print(f"{label:<34}{f:>10,.0f}{c:>11,.0f}{c / f:>7.0f}x")


if __name__ == "__main__":
    main()
