#!/usr/bin/env python3
"""What the lifetime protection costs per call: MapHandle with and without it, and the cffi floor.

Every MapHandle call registers itself as in flight before it reads the fd
and unregisters after the syscall (an append, two item reads and a pop on
one list; see src/typedmaps/_life.py), so that close() from another thread
can never close the fd under it. This measures, side by side in one run, on
the same HASH map (16-byte keys, 32-byte values) and keys:

    floor        a bare cffi call loop: bpf_map_lookup_elem into one
                 preallocated buffer, then a copy of the value out (the
                 cheapest any ABI-mode binding can do; bench/run.py's floor)
    unprotected  MapHandle.lookup / update exactly as they are, minus the
                 four list operations (a subclass, same checks otherwise)
    protected    MapHandle.lookup / update as shipped

Rounds run every variant once in a shuffled order; the report keeps the best
ns per call of each (thread CPU time), and the protection's cost is the
difference of the best times.

    .venv/bin/python bench/lifetime.py               # 100k lookups, 9 rounds
    .venv/bin/python bench/lifetime.py --quick       # a small, fast run
"""

from __future__ import annotations

import argparse
import errno
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import cffi
from workload import KEY_SIZE, VALUE_SIZE, key_bytes, value_bytes

import typedmaps as tm
from typedmaps.handle import _ANY

_CDEF: Final = "int bpf_map_lookup_elem(int fd, const char *key, char *value);"


class Unprotected(tm.MapHandle):
    """MapHandle.lookup / update without the in-flight accounting (for measuring only).

    The bodies are the shipped fast paths with the list operations taken
    out and the fd read from the lifetime list as a plain value (lookup then
    uses the handle's own buffer unconditionally: right for the one thread
    measuring here, not in general), so the difference is what the
    protection costs.
    """

    __slots__ = ()

    def lookup(self, key: Any, flags: int = tm.MapFlags.ANY) -> bytes | None:
        # The shipped fast path without the registration. Without it, nothing
        # tells whether another call uses the handle's own buffer; it is used
        # unconditionally, which is right only for one thread, as here.
        if type(key) is bytes and len(key) == self._fast_ks and flags is _ANY:
            fd = self._calls[0]
            if fd < 0:
                raise self._unusable()
            own: Any = self._own
            ret = self._c_lookup(fd, key, own[0])
            if not ret:
                out: bytes = own[2]()
                return out
            if ret == -errno.ENOENT:
                return None
            raise self._elem_error(ret, "lookup", 0)
        return self._lookup_checked(key, flags)

    def update(self, key: Any, value: Any, flags: int = tm.MapFlags.ANY) -> None:
        fd = self._calls[0]
        if fd < 0:
            raise self._unusable()
        if self._kind_error is not None:
            raise self._wrong_kind("update")
        if type(key) is not bytes or len(key) != self._key_size:
            key = self._key(key, "update")
        if type(value) is not bytes or len(value) != self._value_size:
            value = self._value(value, "update")
        flags = 0 if flags is _ANY else self._update_flags(flags, "update")
        ret = self._c_update(fd, key, value, flags)
        if ret:
            raise self._elem_error(ret, "update", flags)


def measure(ops: int, rounds: int, seed: int) -> dict[str, Any]:
    clock = time.thread_time_ns
    with tm.MapHandle.create(
        tm.MapType.HASH, key_size=KEY_SIZE, value_size=VALUE_SIZE, max_entries=ops, name="tmb_life"
    ) as h:
        keys = [key_bytes(i) for i in range(ops)]
        values = [value_bytes(i) for i in range(ops)]
        h.update_batch(b"".join(keys), b"".join(values), ops)
        bare = Unprotected.from_fd(h.fileno())
        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        lib: Any = ffi.dlopen("libbpf.so.1")
        fd = h.fileno()
        buf = ffi.new("char[]", VALUE_SIZE)
        view = ffi.buffer(buf, VALUE_SIZE)
        look = lib.bpf_map_lookup_elem
        if h.lookup(keys[-1]) != values[-1] or bare.lookup(keys[-1]) != values[-1]:
            raise SystemExit("lifetime bench: a lookup returned a wrong value")

        def floor() -> float:
            t0 = clock()
            for k in keys:
                look(fd, k, buf)
                view[:]
            return (clock() - t0) / ops

        def loop(f: Callable[[bytes], object]) -> Callable[[], float]:
            def run() -> float:
                t0 = clock()
                for k in keys:
                    f(k)
                return (clock() - t0) / ops

            return run

        def uloop(f: Callable[[bytes, bytes], object]) -> Callable[[], float]:
            def run() -> float:
                t0 = clock()
                for k, v in zip(keys, values, strict=True):
                    f(k, v)
                return (clock() - t0) / ops

            return run

        variants: dict[str, Callable[[], float]] = {
            "floor.lookup": floor,
            "unprotected.lookup": loop(bare.lookup),
            "protected.lookup": loop(h.lookup),
            "unprotected.update": uloop(bare.update),
            "protected.update": uloop(h.update),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        rnd = random.Random(seed)
        try:
            for _ in range(rounds):
                order = list(variants)
                rnd.shuffle(order)
                for name in order:
                    samples[name].append(variants[name]())
        finally:
            bare.close()
    best = {name: round(min(v), 1) for name, v in samples.items()}
    median = {name: round(statistics.median(v), 1) for name, v in samples.items()}
    return {
        "ops": ops,
        "rounds": rounds,
        "clock": "thread CPU time",
        "best_ns": best,
        "median_ns": median,
        "protection_ns": {
            "lookup": round(best["protected.lookup"] - best["unprotected.lookup"], 1),
            "update": round(best["protected.update"] - best["unprotected.update"], 1),
        },
        "ratios": {
            "MapHandle.lookup / cffi floor": round(
                best["protected.lookup"] / best["floor.lookup"], 3
            ),
            "unprotected lookup / cffi floor": round(
                best["unprotected.lookup"] / best["floor.lookup"], 3
            ),
        },
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1,000 ops, 3 rounds")
    ap.add_argument("--json", action="store_true", help="print the record as JSON only")
    args = ap.parse_args(argv)
    if args.quick:
        args.ops, args.rounds = 1000, 3
    rec = measure(args.ops, args.rounds, args.seed)
    if args.json:
        print(json.dumps(rec))
        return 0
    b, m = rec["best_ns"], rec["median_ns"]
    print(f"lifetime protection: {rec['ops']} calls x {rec['rounds']} rounds, ns per call")
    print(f"{'':22} {'best':>8} {'median':>8}")
    for name in b:
        print(f"{name:22} {b[name]:8.1f} {m[name]:8.1f}")
    p = rec["protection_ns"]
    print(
        f"protection cost (best - best): lookup {p['lookup']:+.1f} ns, update {p['update']:+.1f} ns"
    )
    for name, r in rec["ratios"].items():
        print(f"{name}: {r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
