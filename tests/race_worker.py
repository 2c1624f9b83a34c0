"""close() racing calls from other threads: the stress run, in its own process.

Run as ``python -m tests.race_worker SCENARIO SECONDS CYCLES``; prints one
JSON object (counts and the problems found) and exits 0. The tests in
test_lifetime_race.py start it in a subprocess, so that a crash (a segfault
in libbpf, a use-after-free) is a clean test failure with the output kept.

Every map made here gets a distinct signature, and every write through a
handle writes that handle's signature. A closer thread keeps replacing the
current map (create the next one, publish it, close the old one), so the
kernel hands the old fd number to the next map at once. Worker threads keep
calling whatever map they last saw. A call on a closed handle may raise
MapClosedError; it must never reach another map: after the run every map
is scanned (through a duplicate fd taken when it was made) for a signature
that is not its own, and every value a worker read must be its map's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import construct as cs

import typedmaps as tm

KEYS = 16
ROOT = Path(__file__).resolve().parent.parent
TRACECOUNT = ROOT / "build" / "bpf" / "tracecount.bpf.o"


def key(i: int) -> bytes:
    return i.to_bytes(4, "little")


def sig_value(sig: int) -> bytes:
    return sig.to_bytes(8, "little")


ALL_KEYS = b"".join(key(i) for i in range(KEYS))


@dataclass
class Generation:
    """One map (or one object's map) and the signature written into it."""

    sig: int
    handle: tm.MapHandle
    typed: tm.TypedMap[int, int]
    obj: tm.BpfObject | None = None

    def close(self) -> None:
        if self.obj is not None:
            self.obj.close()
        else:
            self.handle.close()


@dataclass
class Report:
    scenario: str
    cycles: int = 0
    ops: int = 0
    closed_errors: int = 0
    foreign_reads: int = 0
    foreign_writes: int = 0
    maps_scanned: int = 0
    problems: list[str] = field(default_factory=list)
    by_op: dict[str, int] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


class Race:
    def __init__(self, scenario: str, seconds: float, cycles: int) -> None:
        self.scenario = scenario
        self.deadline = time.monotonic() + seconds
        self.max_cycles = cycles
        self.report = Report(scenario)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.audits: list[tuple[int, tm.MapHandle]] = []
        self.current: list[Generation] = []

    # -- generations -------------------------------------------------------

    def make(self, sig: int) -> Generation:
        obj: tm.BpfObject | None = None
        if self.scenario == "object":
            obj = tm.BpfObject.open(TRACECOUNT)
            obj.load()
            h: tm.MapHandle = obj.maps["calls_by_pid"]
        else:
            h = tm.MapHandle.create(
                tm.MapType.HASH, key_size=4, value_size=8, max_entries=2 * KEYS, name="tm_race"
            )
        h.update_batch(ALL_KEYS, sig_value(sig) * KEYS, KEYS)
        # An independent fd on the same map, for the scan at the end.
        self.audits.append((sig, tm.MapHandle.from_fd(h.fileno())))
        return Generation(sig, h, tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul), obj)

    def closer(self) -> None:
        cycle = 0
        try:
            while not self.stop.is_set():
                if cycle >= self.max_cycles or time.monotonic() > self.deadline:
                    break
                cycle += 1
                g = self.make(cycle + 1)
                old = self.current[0]
                self.current[0] = g
                old.close()  # other threads may be inside calls on `old` right now
        except BaseException as exc:
            self.report.problem(f"closer: {exc!r}")
        finally:
            self.report.cycles = cycle
            self.stop.set()

    # -- workers -------------------------------------------------------------

    def worker(self, seed: int) -> None:
        rnd = random.Random(seed)
        ops: list[tuple[str, Callable[[Generation, random.Random], None]]] = [
            ("lookup", self.op_lookup),
            ("update", self.op_update),
            ("update_batch", self.op_update_batch),
            ("lookup_batch", self.op_lookup_batch),
            ("keys", self.op_keys),
            ("delete", self.op_delete),
            ("typed_get", self.op_typed_get),
            ("typed_set", self.op_typed_set),
            ("typed_items", self.op_typed_items),
            ("typed_update_batch", self.op_typed_update_batch),
            ("info", self.op_info),
        ]
        if self.scenario == "object":
            ops.append(("test_run", self.op_test_run))
        n = 0
        closed = 0
        counts: dict[str, int] = {}
        while not self.stop.is_set():
            g = self.current[0]
            name, op = ops[rnd.randrange(len(ops))]
            try:
                op(g, rnd)
            except tm.MapClosedError:
                closed += 1
            except Exception as exc:
                self.report.problem(f"{name} on generation {g.sig}: {exc!r}")
            n += 1
            counts[name] = counts.get(name, 0) + 1
        with self.lock:
            self.report.ops += n
            self.report.closed_errors += closed
            for k, v in counts.items():
                self.report.by_op[k] = self.report.by_op.get(k, 0) + v

    def check_value(self, g: Generation, value: bytes | int | None, where: str) -> None:
        if value is None:
            return
        got = value if isinstance(value, int) else int.from_bytes(value, "little")
        if got != g.sig:
            with self.lock:
                self.report.foreign_reads += 1
            self.report.problem(f"{where}: generation {g.sig} read {got}")

    def op_lookup(self, g: Generation, rnd: random.Random) -> None:
        self.check_value(g, g.handle.lookup(key(rnd.randrange(KEYS))), "lookup")

    def op_update(self, g: Generation, rnd: random.Random) -> None:
        g.handle.update(key(rnd.randrange(KEYS)), sig_value(g.sig))

    def op_update_batch(self, g: Generation, rnd: random.Random) -> None:
        g.handle.update_batch(ALL_KEYS, sig_value(g.sig) * KEYS, KEYS)

    def op_lookup_batch(self, g: Generation, rnd: random.Random) -> None:
        # Small batches and a pause between them: the iterator is suspended
        # while the closer runs, and must see the close at its next batch.
        for k, v in g.handle.lookup_batch(batch_size=4):
            if int.from_bytes(k, "little") < KEYS:
                assert isinstance(v, bytes)
                self.check_value(g, v, "lookup_batch")
            time.sleep(0)

    def op_keys(self, g: Generation, rnd: random.Random) -> None:
        for _ in g.handle.keys():  # noqa: SIM118 (a MapHandle is not a dict)
            time.sleep(0)

    def op_delete(self, g: Generation, rnd: random.Random) -> None:
        k = key(rnd.randrange(KEYS))
        with contextlib.suppress(tm.KeyNotFoundError):
            g.handle.delete(k)
        g.handle.update(k, sig_value(g.sig))

    def op_typed_get(self, g: Generation, rnd: random.Random) -> None:
        self.check_value(g, g.typed.get(rnd.randrange(KEYS)), "TypedMap.get")

    def op_typed_set(self, g: Generation, rnd: random.Random) -> None:
        g.typed[rnd.randrange(KEYS)] = g.sig

    def op_typed_items(self, g: Generation, rnd: random.Random) -> None:
        for k, v in g.typed.items():
            if k < KEYS:
                self.check_value(g, v, "TypedMap.items")
            time.sleep(0)

    def op_typed_update_batch(self, g: Generation, rnd: random.Random) -> None:
        g.typed.update_batch([(i, g.sig) for i in range(KEYS)])

    def op_info(self, g: Generation, rnd: random.Random) -> None:
        info = g.handle.info()
        if info.value_size != 8:
            self.report.problem(f"info: generation {g.sig} got {info}")

    def op_test_run(self, g: Generation, rnd: random.Random) -> None:
        assert g.obj is not None
        g.obj.programs["count_syscalls"].test_run(ctx_in=bytes(16))

    # -- the run -------------------------------------------------------------

    def run(self, workers: int) -> Report:
        # Hand the GIL over often, so that threads switch between any two
        # bytecodes of a call (the window an unprotected fd read would lose).
        sys.setswitchinterval(1e-5)
        self.current.append(self.make(1))
        threads = [threading.Thread(target=self.closer)]
        threads += [threading.Thread(target=self.worker, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.current[0].close()
        self.scan()
        return self.report

    def scan(self) -> None:
        for sig, audit in self.audits:
            try:
                for k, v in audit.lookup_batch():
                    if int.from_bytes(k, "little") >= KEYS:
                        continue  # tracecount's own per-tgid counters
                    assert isinstance(v, bytes)
                    got = int.from_bytes(v, "little")
                    if got != sig:
                        self.report.foreign_writes += 1
                        self.report.problem(f"map of generation {sig} holds {got} at {k.hex()}")
                self.report.maps_scanned += 1
            finally:
                audit.close()


def main(argv: list[str]) -> int:
    scenario, seconds, cycles = argv[0], float(argv[1]), int(argv[2])
    workers = int(argv[3]) if len(argv) > 3 else 3
    report = Race(scenario, seconds, cycles).run(workers)
    leaked = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd of the listing itself, closed by now
        if target.startswith("anon_inode:bpf"):
            leaked.append(target)
    out: dict[str, Any] = dict(report.__dict__)
    out["bpf_fds_left"] = len(leaked)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
