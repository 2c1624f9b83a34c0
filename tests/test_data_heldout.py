"""A held-out check of program data: bpf/heldout.bpf.c, an object no other test uses.

Written from the public API alone (obj.globals, MapHandle.memory(), TypedMap
over an mmapable array, MapOfMaps, ProgramArray, TypedTaskStorage, the
generated globals module), it drives every part of the object: globals in
.rodata, .data, .bss, a custom .data.* section and .kconfig, set typed
before load and live after it; an mmapable array written by Python, by a
program under test_run and by a real tracepoint; an ARRAY_OF_MAPS whose
inner maps the program uses; a PROG_ARRAY filled from Python and proven by
a tail call; task storage filled by the tracepoint. The last test counts
bpf() syscalls: globals and array reads and writes make none.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import ROOT, MakeMap, bpf_object
from .generated_modules import imported
from .syscall_count import bpf_calls

PACKET = bytes(64)
XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3


@dataclasses.dataclass
class Cell(DataclassMixin):
    """struct ho_cell."""

    sum: int = csfield(cs.Int64ul)
    seq: int = csfield(cs.Int32ul)
    delta: int = csfield(cs.Int32sl)


@dataclasses.dataclass
class Task(DataclassMixin):
    """struct ho_task."""

    calls: int = csfield(cs.Int64ul)
    scale: int = csfield(cs.Int32ul)
    level: int = csfield(cs.Int32ul)


@pytest.fixture
def obj(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("heldout")) as o:
        yield o


def test_globals_before_and_after_load(obj: tm.BpfObject) -> None:
    g = obj.globals
    names = {
        ".rodata": ["ho_scale", "ho_tag"],
        ".data": ["ho_total", "ho_knobs", "ho_level"],
        ".bss": ["ho_runs", "ho_tgid", "ho_seen"],
        ".data.extra": ["ho_extra", "ho_window"],
        ".kconfig": ["LINUX_KERNEL_VERSION"],
    }
    assert sorted(g) == sorted(n for ns in names.values() for n in ns)
    # Typed initial values, before load: ints, a char array, a struct, an enum, an array.
    assert (g.ho_scale, g.ho_tag, g.ho_total, g.ho_extra) == (4, "held", 10, -100)
    assert (g.ho_knobs.port, g.ho_knobs.on, g.ho_knobs.weight) == (53, 1, -7)
    assert g.ho_level == 1
    assert g.ho_level.name == "HO_LOW"
    assert g.ho_window == [1, 2, 3, 4]
    assert g[".data.extra", "ho_extra"] == g["ho_extra"] == -100
    # Set typed before load: the program starts with these.
    g.ho_scale = 3
    g.ho_extra = 5
    knobs = g.ho_knobs
    knobs.weight = 9
    g.ho_knobs = knobs
    g.ho_window = [10, 20, 30, 40]
    g.ho_level = type(g.ho_level).HO_HIGH
    with pytest.raises(tm.CodecError):
        g.ho_total = -1  # a __u64
    assert g.ho_total == 10
    with pytest.raises(tm.MapPermissionError):
        g.LINUX_KERNEL_VERSION = 1  # libbpf fills .kconfig
    obj.load()
    assert (g.ho_scale, g.ho_extra, g.ho_level.name) == (3, 5, "HO_HIGH")
    assert g.LINUX_KERNEL_VERSION > 0
    # After load: .rodata and .kconfig refuse writes and stay as they are.
    for name, value in (("ho_scale", 1), ("ho_tag", "x"), ("LINUX_KERNEL_VERSION", 2)):
        before = g[name]
        with pytest.raises(tm.MapPermissionError):
            g[name] = value
        assert g[name] == before
    # Live both ways: the program reads Python's writes and Python its writes.
    cells = tm.TypedMap(obj.maps["ho_cells"], key=cs.Int32ul, value=DataclassStruct(Cell))
    cells[0] = Cell(sum=7, seq=1, delta=0)
    assert obj.programs["ho_entry"].test_run(data_in=PACKET).retval == XDP_PASS  # ho_jmp empty
    assert g.ho_runs == 1
    assert g.ho_total == 10 + 20  # ho_window[1]
    assert cells[1] == Cell(sum=7 * 3 + 5, seq=2, delta=9)
    g.ho_extra = -21
    g.ho_total = 1000
    obj.programs["ho_entry"].test_run(data_in=PACKET)
    assert cells[1].sum == 0
    assert g.ho_total == 1000 + 30


def test_the_generated_globals_module(obj: tm.BpfObject, tmp_path: Path) -> None:
    out = tmp_path / "heldout_types.py"
    proc = subprocess.run(
        [sys.executable, "-m", "typedmaps", "gen", str(bpf_object("heldout")), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with imported(out, "heldout_types") as mod:
        cfg = mod.open_globals_of(obj)
        cfg.ho_scale = 6
        obj.load()
        live = mod.globals_of(obj)
        assert live.ho_scale == 6
        assert isinstance(live.ho_knobs, mod.HoKnobs)
        assert live.ho_level is mod.HoLevel.HO_LOW
        live.ho_total = 77
        assert obj.globals.ho_total == 77
        with pytest.raises(tm.MapPermissionError):
            live.ho_scale = 1


def test_mmapable_array_seen_by_programs_and_a_tracepoint(obj: tm.BpfObject) -> None:
    obj.load()
    h = obj.maps["ho_cells"]
    mem = h.memory()
    try:
        assert (len(mem), mem.readonly) == (4 * 16, False)  # max_entries x value_size
        struct.pack_into("<QIi", mem, 0, 30, 4, 0)  # cells[0], straight into the map
        obj.programs["ho_entry"].test_run(data_in=PACKET)
        assert struct.unpack_from("<QIi", mem, 16) == (30 * 4 - 100, 5, -7)
        cells = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Cell))
        assert "via memory" in repr(cells)
        g = obj.globals
        g.ho_tgid = os.getpid()
        with obj.programs["ho_on_getppid"].attach():
            for n in range(1, 4):
                os.getppid()
                assert cells[2] == Cell(sum=53 * n, seq=n, delta=0)  # at once
            knobs = g.ho_knobs
            knobs.port = 1000
            g.ho_knobs = knobs
            os.getppid()
            assert cells[2].sum == 53 * 3 + 1000  # the program read Python's write
        assert g.ho_seen == 4
        with pytest.raises(tm.KeyNotFoundError):
            cells[4]
    finally:
        mem.release()


def test_maps_of_maps(obj: tm.BpfObject, make_map: MakeMap) -> None:
    obj.load()
    outer = tm.MapOfMaps(obj.maps["ho_outer"])
    assert list(outer) == [0]  # ho_inner0, statically
    with outer.typed(0) as first:  # an inner map libbpf made, typed from BTF
        assert isinstance(first, tm.TypedMap)
        first[1] = 42
    with outer[0] as again:
        assert again.lookup(struct.pack("<I", 1)) == struct.pack("<Q", 42)
    assert list(outer) == [0]  # closing the handle left the entry
    mine = make_map(tm.MapType.ARRAY, key_size=4, value_size=8, max_entries=2, name="ho_mine")
    wrong = make_map(tm.MapType.ARRAY, key_size=4, value_size=4, max_entries=2, name="ho_wrong")
    with pytest.raises(tm.TypedMapsError):
        outer[1] = wrong  # not the template's shape: refused before the syscall
    assert 1 not in outer
    outer[1] = mine
    assert sorted(outer) == [0, 1]
    cells = tm.TypedMap(obj.maps["ho_cells"], key=cs.Int32ul, value=DataclassStruct(Cell))
    cells[0] = Cell(sum=25, seq=0, delta=0)
    obj.programs["ho_entry"].test_run(data_in=PACKET)
    obj.programs["ho_entry"].test_run(data_in=PACKET)
    assert mine.lookup(bytes(4)) == struct.pack("<Q", 50)  # the program used our map
    with outer[1] as got:
        assert got.id == mine.id
    del outer[1]
    assert list(outer) == [0]
    obj.programs["ho_entry"].test_run(data_in=PACKET)
    assert mine.lookup(bytes(4)) == struct.pack("<Q", 50)  # no longer reachable


def test_program_array_tail_call(obj: tm.BpfObject) -> None:
    obj.load()
    jmp = tm.ProgramArray(obj.maps["ho_jmp"])
    entry, tail = obj.programs["ho_entry"], obj.programs["ho_tail"]
    assert entry.test_run(data_in=PACKET).retval == XDP_PASS
    jmp[0] = tail
    assert jmp[0] == tail.id
    assert entry.test_run(data_in=PACKET).retval == XDP_TX  # the tail call ran ho_tail
    del jmp[0]
    assert jmp.get(0) is None
    assert entry.test_run(data_in=PACKET).retval == XDP_PASS


def test_task_storage_filled_by_a_tracepoint(obj: tm.BpfObject) -> None:
    obj.load()
    st = tm.TypedTaskStorage(obj.maps["ho_per_task"], value=DataclassStruct(Task))
    me = os.getpid()
    assert me not in st
    obj.globals.ho_tgid = me
    with obj.programs["ho_on_getppid"].attach():
        for _ in range(3):
            os.getppid()
        assert st[me] == Task(calls=3, scale=4, level=1)
        st[me] = Task(calls=100, scale=0, level=0)  # Python's write, seen by the program
        os.getppid()
    assert st[me] == Task(calls=101, scale=4, level=1)
    del st[me]
    assert me not in st


@pytest.mark.bpf
def test_reads_and_writes_make_no_syscall(bpf: None) -> None:
    setup = f"""
        import construct as cs, typedmaps as tm
        obj = tm.BpfObject.open({str(bpf_object("heldout"))!r})
        obj.load()
        g = obj.globals
        cells = tm.TypedMap(obj.maps["ho_cells"], key=cs.Int32ul,
                            value=cs.Struct("sum" / cs.Int64ul, "seq" / cs.Int32ul,
                                            "delta" / cs.Int32sl))
        g.ho_total, cells[0]  # the first access maps the memory
    """
    measured = """
        for i in range(2000):
            g.ho_total = i
            assert g.ho_total == i and g.ho_extra == -100 and g.ho_scale == 4
            g.ho_window = [i, 0, 0, 1]
            assert g[".data.extra", "ho_window"][0] == i
            try:
                g.ho_scale = 1  # refused before anything reaches the kernel
            except tm.MapPermissionError:
                pass
            cells[i % 4] = {"sum": i, "seq": 1, "delta": -1}
            assert cells[i % 4].sum == i
    """
    count, lines = bpf_calls(setup, measured)
    assert count == 0, lines
    count, _ = bpf_calls(setup, "for i in range(30): obj.maps['ho_cells'].lookup(bytes(4))")
    assert count == 30  # the counter counts
