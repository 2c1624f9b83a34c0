"""MapHandle.memory(): BPF_F_MMAPABLE arrays mapped into the process, on the real kernel.

What the view holds (max_entries x stride bytes, stride round_up(value_size,
8)), that stores cross in both directions with no syscall, read-only
fallbacks (frozen, RDONLY_PROG, read-only fd) that never let a store reach
the page, refusals for maps that cannot be mapped, and the lifetime rules
(close with views exported defers the unmapping; freeze drops an idle
writable mapping).
"""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import ROOT, MakeMap, bpf_object
from .syscall_count import bpf_calls

MMAPABLE = tm.MapCreateFlags.MMAPABLE


def _u32(i: int) -> bytes:
    return struct.pack("<I", i)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_view_layout_and_both_directions(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=12, max_entries=5, map_flags=MMAPABLE)
    mem = h.memory()
    try:
        assert (mem.format, mem.itemsize, mem.ndim, mem.readonly) == ("B", 1, 1, False)
        assert len(mem) == 5 * 16  # stride round_up(12, 8) = 16
        mem[16:28] = b"abcdefghijkl"  # element 1
        assert h.lookup(_u32(1)) == b"abcdefghijkl"
        h.update(_u32(4), b"z" * 12)
        assert bytes(mem[64:76]) == b"z" * 12
        assert bytes(mem[76:80]) == bytes(4)  # padding: no map operation writes it
        assert dict(h.lookup_batch()) == {
            _u32(i): bytes(mem[i * 16 : i * 16 + 12]) for i in range(5)
        }
        # One mapping per handle: every view shares it.
        other = h.memory()
        other[0:4] = b"\x01\x02\x03\x04"
        assert bytes(mem[0:4]) == b"\x01\x02\x03\x04"
        other.release()
    finally:
        mem.release()


def test_refused_before_any_syscall(make_map: MakeMap) -> None:
    cases = [
        make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=2),
        make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=2),
        make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=8, max_entries=2),
    ]
    for h in cases:
        with pytest.raises(tm.NotSupportedError, match="not mmapable") as info:
            h.memory()
        assert info.value.errno == 22
    with pytest.raises(TypeError, match="writable"):
        cases[0].memory(writable=1)  # type: ignore[arg-type]
    h = cases[0]
    h.close()
    with pytest.raises(tm.MapClosedError):
        h.memory()


def test_frozen_map_maps_read_only(make_map: MakeMap, caplog: pytest.LogCaptureFixture) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    h.update(_u32(2), struct.pack("<Q", 99))
    h.freeze()
    caplog.set_level(logging.INFO, logger="typedmaps")
    mem = h.memory()
    assert mem.readonly
    assert any(
        "mapped read-only" in r.getMessage() and "frozen" in r.getMessage() for r in caplog.records
    )
    assert struct.unpack_from("<Q", mem, 16) == (99,)
    with pytest.raises(TypeError, match="read-only"):
        mem[16] = 1
    with pytest.raises(TypeError):
        struct.pack_into("<Q", mem, 16, 5)
    assert h.lookup(_u32(2)) == struct.pack("<Q", 99)  # the store never reached the page
    with pytest.raises(tm.MapPermissionError, match="frozen") as info:
        h.memory(writable=True)
    assert info.value.errno == 1
    mem.release()


def test_read_only_and_write_only_fds_cannot_be_mapped(make_map: MakeMap, pin_dir: Path) -> None:
    """The kernel maps a map only as a shared mapping of a read-write fd."""
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=2, map_flags=MMAPABLE)
    h.pin(pin_dir / "arr")
    for kw, kind in (({"readonly": True}, "read-only"), ({"writeonly": True}, "write-only")):
        with tm.MapHandle.from_pinned_path(pin_dir / "arr", **kw) as other:
            for writable in (None, False, True):
                with pytest.raises(tm.MapPermissionError, match=f"the fd is {kind}"):
                    other.memory(writable=writable)
    view = h.memory(writable=False)  # the read-write fd gives a read-only view
    assert view.readonly
    view.release()


def test_rdonly_prog_map_maps_read_only(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("mmap_array")) as obj:
        obj.load()
        sealed = obj.maps["sealed"]
        mem = sealed.memory()
        assert mem.readonly  # the kernel refuses a writable mapping (EACCES)
        sealed.update(_u32(0), struct.pack("<Q", 5))  # the syscall may still write it
        assert struct.unpack_from("<Q", mem, 0) == (5,)
        mem.release()


def test_read_only_view_of_a_writable_mapping(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=2, map_flags=MMAPABLE)
    ro = h.memory(writable=False)
    assert ro.readonly
    with pytest.raises(TypeError):
        ro[0] = 1
    rw = h.memory()  # read-only was a choice: a writable mapping is still possible
    assert not rw.readonly
    rw[0] = 3
    assert ro[0] == 3  # the same pages
    ro.release()
    rw.release()


def test_program_and_python_see_each_other(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("mmap_array")) as obj:
        obj.load()
        slots = obj.maps["slots"]
        mem = slots.memory()
        obj.maps["sealed"].update(_u32(0), struct.pack("<Q", 1000))
        struct.pack_into("<QII", mem, 0, 21, 5, 41)  # slot 0, no syscall
        assert obj.programs["answer"].test_run().retval == 21  # the program read it
        assert struct.unpack_from("<QII", mem, 16) == (1042, 5, 42)  # its answer, in slot 1
        struct.pack_into("<QII", mem, 0, 1, 2, 3)
        obj.programs["answer"].test_run()
        assert struct.unpack_from("<QII", mem, 16) == (1002, 2, 4)
        mem.release()


def test_close_with_views_exported_defers_the_unmapping(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    before = _fds()
    mem = h.memory()
    assert _fds() == before + 1  # the mapping's own duplicate of the map fd
    mem[0] = 42
    h.close()
    # The handle is closed; the view still points at mapped pages of the live map.
    assert _fds() == before  # the handle's fd is gone, the mapping's remains
    assert mem[0] == 42
    mem[8] = 1
    assert mem[8] == 1
    mem.release()
    assert _fds() == before - 1  # the last view released: unmapped, its fd closed
    with pytest.raises(tm.MapClosedError):
        h.memory()


def test_close_without_views_unmaps_at_once(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    before = _fds()
    for _ in range(50):
        h.memory().release()
    assert _fds() == before + 1
    h.close()
    assert _fds() == before - 1


def test_freeze_and_a_writable_mapping(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=4, map_flags=MMAPABLE)
    mem = h.memory()
    with pytest.raises(tm.MapError, match="release the views") as info:
        h.freeze()
    assert info.value.errno == 16  # EBUSY, as the kernel would say
    mem[0] = 9
    mem.release()
    h.freeze()  # the idle writable mapping is dropped first
    again = h.memory()
    assert again.readonly
    assert again[0] == 9
    again.release()
    with pytest.raises(tm.MapPermissionError):
        h.update(_u32(0), bytes(8))


def test_memory_of_an_object_map_follows_the_object(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("mmap_array"))
    slots = obj.maps["slots"]
    with pytest.raises(tm.ObjectError, match="load"):
        slots.memory()
    obj.load()
    mem = slots.memory()
    mem[0] = 1
    obj.close()
    assert mem[0] == 1  # deferred: the view outlives the object, never dangles
    mem.release()
    with pytest.raises(tm.MapClosedError):
        slots.memory()


def test_threads_reading_while_another_closes(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=512, map_flags=MMAPABLE)
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def reader() -> None:
        start.wait()
        try:
            for _ in range(2000):
                try:
                    mem = h.memory()
                except tm.MapClosedError:
                    return
                assert len(mem) == 512 * 8
                _ = mem[-1]
                mem.release()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    start.wait()
    h.close()
    for t in threads:
        t.join(timeout=60)
    assert not errors


def test_a_read_only_store_never_reaches_memory_in_a_subprocess(bpf: None) -> None:
    """A store through a read-only mapping is a TypeError, never a SIGSEGV."""
    code = textwrap.dedent(
        """
        import struct, typedmaps as tm
        h = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=1,
                                map_flags=tm.MapCreateFlags.MMAPABLE)
        h.freeze()
        mem = h.memory()
        for attempt in (lambda: mem.__setitem__(0, 1),
                        lambda: struct.pack_into("<Q", mem, 0, 1),
                        lambda: mem.cast("Q").__setitem__(0, 1)):
            try:
                attempt()
            except TypeError:
                pass
            else:
                raise SystemExit("a store went through")
        assert h.lookup(bytes(4)) == bytes(8)
        mem.release()
        h.close()
        print("safe")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "safe"


@pytest.mark.bpf
def test_memory_reads_make_no_syscall(bpf: None) -> None:
    setup = """
        import struct, typedmaps as tm
        h = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=16, max_entries=64,
                                map_flags=tm.MapCreateFlags.MMAPABLE)
        mem = h.memory()
    """
    measured = """
        total = 0
        for i in range(5000):
            struct.pack_into("<QQ", mem, (i % 64) * 16, i, i)
            total += struct.unpack_from("<Q", mem, (i % 64) * 16)[0]
        assert total == sum(range(5000))
    """
    count, lines = bpf_calls(setup, measured)
    assert count == 0, lines
    # The counter counts: the same loop through lookup() makes one bpf() call each.
    count, _ = bpf_calls(setup, "for i in range(100): h.lookup(struct.pack('<I', i % 64))")
    assert count == 100
