"""close() racing calls from other threads, and copies of fd owners.

The stress runs (threads closing and recreating maps while others call
lookup, update, batches and iteration on MapHandle, TypedMap and the maps
of BpfObjects) run in a subprocess (tests/race_worker.py), so that a crash
is a test failure with its output. The deterministic tests below hold a
call "in flight" with the library's own accounting (``_using`` /
``_guard``, what every syscall path registers through) and check, on the
real fds, what close() does meanwhile.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import construct as cs
import pytest

import typedmaps as tm
from typedmaps._life import Lifetime

from .conftest import ROOT, MakeMap, bpf_object, need


def fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ the mechanism


def test_lifetime_releases_once_after_the_last_call() -> None:
    released: list[int] = []
    lt = Lifetime(7, lambda: released.append(1))
    assert lt.enter() == 7
    assert lt.enter() == 7
    lt.close()
    assert released == [], "released while two calls were in flight"
    assert lt.enter() < 0, "a call entering after close() must see it closed"
    lt.leave()
    assert released == []
    lt.leave()
    assert released == [1]
    lt.close()
    lt.finish()
    assert released == [1], "released twice"


def test_lifetime_unbound_never_releases_until_closed() -> None:
    released: list[int] = []
    lt = Lifetime(-2, lambda: released.append(1))
    assert lt.enter() == -2
    assert released == []
    assert lt.bind(5)
    assert lt.enter() == 5
    lt.close()
    assert not lt.bind(6), "bind after close must not reopen"
    lt.leave()
    assert released == [1]


def test_lifetime_many_threads_release_exactly_once() -> None:
    released: list[int] = []
    lt = Lifetime(3, lambda: released.append(1))
    start = threading.Barrier(5)

    def caller() -> None:
        start.wait()
        for _ in range(2000):
            if lt.enter() >= 0:
                lt.leave()

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    start.wait()
    lt.close()
    for t in threads:
        t.join()
    assert released == [1]
    assert lt.calls == [-1]


# ------------------------------------------------------------------ MapHandle


def test_close_waits_for_the_call_in_flight(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    h.update(b"\1\0\0\0", bytes(8))
    fd = h.fileno()
    with h._using() as inflight:
        assert inflight == fd
        h.close()
        # The call in flight still owns a working fd on its map ...
        assert fd_target(fd) == "anon_inode:bpf-map"
        assert tm._ffi.get_lib().bpf_map_lookup_elem(fd, b"\1\0\0\0", bytes(8)) == 0
        # ... and every new call sees the close.
        assert h.closed
        with pytest.raises(tm.MapClosedError):
            h.lookup(b"\1\0\0\0")
        with pytest.raises(tm.MapClosedError):
            h.update(b"\1\0\0\0", bytes(8))
    # The last call out closed it.
    assert fd_target(fd) is None


def test_the_fd_number_of_a_closed_handle_is_never_used(make_map: MakeMap) -> None:
    old = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    typed_old = tm.TypedMap(old, key=cs.Int32ul, value=cs.Int64ul)
    fd = old.fileno()
    old.close()
    # The kernel gives the freed number to the next map at once.
    new = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    assert new.fileno() == fd
    calls: list[Callable[[], object]] = [
        lambda: old.lookup(b"\0\0\0\0"),
        lambda: old.update(b"\0\0\0\0", b"\xff" * 8),
        lambda: old.update_batch(b"\0\0\0\0", b"\xff" * 8, 1),
        lambda: old.delete(b"\0\0\0\0"),
        lambda: list(old.lookup_batch()),
        lambda: list(old.keys()),
        old.info,
        old.freeze,
        old.fileno,
        lambda: typed_old[0],
        lambda: typed_old.__setitem__(0, 1),
        lambda: list(typed_old.items()),
        lambda: typed_old.update_batch({0: 1}),
    ]
    for call in calls:
        with pytest.raises(tm.MapClosedError):
            call()
    assert list(new.lookup_batch()) == []


def test_a_suspended_batch_iterator_holds_nothing(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=64)
    h.update_batch(b"".join(i.to_bytes(4, "little") for i in range(64)), bytes(8 * 64), 64)
    fd = h.fileno()
    typed = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    items = iter(typed.lookup_batch(batch_size=8))
    next(items)
    batches = iter(h.lookup_batch(batch_size=8))
    next(batches)
    keys = iter(h.keys())
    next(keys)
    h.close()
    # Suspended between syscalls, none of them keeps the fd open ...
    assert fd_target(fd) is None
    # ... and each sees the close at its next syscall (the current batch is
    # already in memory, so the batch iterators may hand out its rest first).
    for it in (batches, keys, items):
        with pytest.raises(tm.MapClosedError):
            list(it)


def test_typed_wrappers_go_through_the_accounting(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    m[1] = 5
    fd = h.fileno()
    with h._using():
        m.close()
        assert fd_target(fd) == "anon_inode:bpf-map"
        calls: list[Callable[[], object]] = [
            lambda: m[1],
            lambda: m.get(1),
            lambda: 1 in m,
            lambda: m.update({1: 2}),
        ]
        for call in calls:
            with pytest.raises(tm.MapClosedError):
                call()
    assert fd_target(fd) is None


def test_close_from_another_thread_during_calls(make_map: MakeMap) -> None:
    """Threads inside calls when close() comes: each call finishes or raises MapClosedError."""
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=8)
    errors: list[BaseException] = []
    go = threading.Event()

    def caller() -> None:
        go.wait()
        try:
            for i in range(100_000):
                h.update((i % 8).to_bytes(4, "little"), bytes(8))
                h.lookup((i % 8).to_bytes(4, "little"))
        except tm.MapClosedError:
            return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    go.set()
    h.close()
    for t in threads:
        t.join()
    assert errors == []
    assert h._lt.released


# ------------------------------------------------------------------ objects


def test_object_close_waits_for_calls_on_its_maps_and_programs(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("tracecount"))
    obj.load()
    m = obj.maps["calls_by_pid"]
    fd = m.fileno()
    prog_fd = obj.programs["count_syscalls"].fd
    with m._using():
        obj.close()
        # libbpf has not freed the object: the map and program fds are open.
        assert fd_target(fd) == "anon_inode:bpf-map"
        assert fd_target(prog_fd) == "anon_inode:bpf-prog"
        with pytest.raises(tm.MapClosedError):
            m.lookup(bytes(4))
        with pytest.raises(tm.MapClosedError):
            obj.maps  # noqa: B018
    assert fd_target(fd) is None
    assert fd_target(prog_fd) is None


def test_object_close_waits_for_a_program_call(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("tracecount"))
    obj.load()
    prog = obj.programs["count_syscalls"]
    fd = prog.fd
    with obj._guard():
        obj.close()
        assert fd_target(fd) == "anon_inode:bpf-prog"
        with pytest.raises(tm.MapClosedError):
            prog.test_run(ctx_in=bytes(16))
    assert fd_target(fd) is None


def test_object_close_races_test_runs_and_map_calls(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("tracecount"))
    obj.load()
    prog = obj.programs["count_syscalls"]
    m = obj.maps["calls_by_pid"]
    errors: list[BaseException] = []
    go = threading.Event()

    def runner(call: Callable[[], object]) -> None:
        go.wait()
        try:
            for _ in range(100_000):
                call()
        except tm.MapClosedError:
            return
        except BaseException as exc:
            errors.append(exc)

    calls: list[Callable[[], object]] = [
        lambda: prog.test_run(ctx_in=bytes(16)),
        lambda: m.lookup(bytes(4)),
        lambda: m.update(bytes(4), bytes(8)),
    ]
    threads = [threading.Thread(target=runner, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    go.set()
    obj.close()
    for t in threads:
        t.join()
    assert errors == []
    assert obj._lt.released


def test_map_view_closed_before_load_stays_closed(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        view = obj.maps["calls_by_pid"]
        view.close()
        obj.load()
        with pytest.raises(tm.MapClosedError):
            view.lookup(bytes(4))
        assert obj.maps["calls_by_pid"].lookup(bytes(4)) is None


def test_link_detach_waits_for_the_call_in_flight(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        obj.maps[".rodata"].set_variable("target_tgid", os.getpid().to_bytes(4, "little"))
        obj.load()
        link = obj.programs["count_syscalls"].attach()
        fd = link.fd
        with link._lt.using(link._closed_error):
            link.detach()
            assert not link.attached
            assert fd_target(fd) == "anon_inode:bpf_link"
            with pytest.raises(tm.MapClosedError):
                link.fd  # noqa: B018
        assert fd_target(fd) is None
        assert obj._links == []


# ------------------------------------------------------------------ copy and pickle


def _owners(make_map: MakeMap) -> dict[str, Any]:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    pc = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=4)
    q = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4)
    return {
        "MapHandle": h,
        "TypedMap": tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul),
        "PerCpuTypedMap": tm.PerCpuTypedMap(pc, key=cs.Int32ul, value=cs.Int64ul),
        "TypedQueue": tm.TypedQueue(q, value=cs.Int64ul),
    }


def test_fd_owners_refuse_copy_and_pickle(make_map: MakeMap) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        obj.load()
        link = obj.programs["count_syscalls"].attach()
        owners = _owners(make_map) | {
            "BpfObject": obj,
            "Map": obj.maps["calls_by_pid"],
            "Program": obj.programs["count_syscalls"],
            "Link": link,
        }
        for name, owner in owners.items():
            for what, call in (
                ("copied", copy.copy),
                ("copied", copy.deepcopy),
                ("pickled", pickle.dumps),
            ):
                with pytest.raises(tm.ArgumentError, match=f"{name} cannot be {what}") as info:
                    call(owner)
                assert isinstance(info.value, TypeError)
        link.detach()


# ------------------------------------------------------------------ the stress runs


def _stress(scenario: str, seconds: float, cycles: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.race_worker", scenario, str(seconds), str(cycles)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the stress process died (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _check(report: dict[str, Any], min_cycles: int) -> None:
    assert report["problems"] == []
    assert report["foreign_reads"] == 0
    assert report["foreign_writes"] == 0
    assert report["bpf_fds_left"] == 0
    assert report["cycles"] >= min_cycles, report
    assert report["maps_scanned"] == report["cycles"] + 1
    # The run raced: calls did meet closed handles, of every kind.
    assert report["closed_errors"] > 0
    assert all(n > 0 for n in report["by_op"].values()), report["by_op"]


def test_stress_close_and_recreate_maps_under_calls(bpf: None) -> None:
    # 2,000 cycles take 2-3 s here; the time cap only bounds a very loaded machine.
    report = _stress("handle", 20.0, 2000)
    _check(report, min_cycles=1000)


def test_stress_close_objects_under_map_and_program_calls(bpf: None) -> None:
    need(bpf_object("tracecount").exists(), "tracecount.bpf.o is not built")
    report = _stress("object", 10.0, 400)
    _check(report, min_cycles=100)


def test_lifetime_bench_runs(bpf: None) -> None:
    """bench/lifetime.py measures every variant on a real map (no timing asserted)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lifetime.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rec = json.loads(proc.stdout)
    assert set(rec["best_ns"]) == {
        "floor.lookup",
        "unprotected.lookup",
        "protected.lookup",
        "unprotected.update",
        "protected.update",
    }
    assert all(v > 0 for v in rec["best_ns"].values())
    assert set(rec["protection_ns"]) == {"lookup", "update"}
