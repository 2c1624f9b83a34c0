"""Tracing programs attached for real: tracepoints, raw tracepoints, uprobes, perf events.

The programs count only calls made by this test's own thread (filtered by
tgid and tid in BPF: other processes run on this machine), so the counts
are exact. Features this kernel lacks (kprobes, fentry/fexit, LSM) are
refused with NotSupportedError found by probing; where a kernel has them,
the same tests attach and count instead.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import platform
import threading
import time
import warnings
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps._attach import probe_kind, prog_type_supported
from typedmaps._ffi import ffi, get_lib

from .attach_support import (
    GETPPID_NR,
    KPROBE,
    PERF_EVENT,
    RAW_TRACEPOINT,
    TRACEPOINT,
    UPROBE,
    URETPROBE,
    counts,
    ensure_tracefs,
    open_attach,
    wait_for,
)
from .conftest import bpf_object, need


@pytest.fixture
def tracefs(bpf: None) -> Path:
    return ensure_tracefs()


def on_each_cpu(calls: int) -> int:
    """Call getppid() ``calls`` times on each CPU this thread may run on; returns the total."""
    before = os.sched_getaffinity(0)
    try:
        for cpu in sorted(before):
            os.sched_setaffinity(0, {cpu})
            for _ in range(calls):
                os.getppid()
    finally:
        os.sched_setaffinity(0, before)
    return calls * len(before)


# ---------------------------------------------------------------------- tracepoints


def test_tracepoint_counts_this_threads_calls_exactly(tracefs: Path) -> None:
    with open_attach() as obj:
        c = counts(obj)
        prog = obj.programs["tp_getppid"]
        with prog.attach_tracepoint("syscalls", "sys_enter_getppid") as link:
            assert link.kind == "tracepoint"
            assert link.target == "syscalls:sys_enter_getppid"
            assert link.info().type is tm.LinkType.PERF_EVENT
            made = on_each_cpu(150)  # the perf event is opened on CPU 0, runs on all
            assert c[TRACEPOINT].packets == made
        on_each_cpu(20)
        assert c[TRACEPOINT].packets == made  # closed: no longer counting


def test_tracepoint_errors(tracefs: Path) -> None:
    with open_attach() as obj:
        prog = obj.programs["tp_getppid"]
        with pytest.raises(tm.ObjectError, match="no tracepoint syscalls:sys_enter_nothing") as e:
            prog.attach_tracepoint("syscalls", "sys_enter_nothing")
        assert e.value.errno == errno.ENOENT
        for cat, name in [("..", "x"), ("syscalls", "../../x"), ("a/b", "c"), ("", "x")]:
            with pytest.raises(ValueError, match="tracepoint name"):
                prog.attach_tracepoint(cat, name)
        with pytest.raises(tm.ObjectError, match="attach_tracepoint needs TRACEPOINT"):
            obj.programs["raw_sys_enter"].attach_tracepoint("syscalls", "sys_enter_getppid")


def test_raw_tracepoint_counts_one_syscall_exactly() -> None:
    nr = GETPPID_NR.get(platform.machine())
    need(nr is not None, f"no getppid number for {platform.machine()}")
    assert nr is not None
    with open_attach(syscall=nr) as obj:
        c = counts(obj)
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        assert link.info().type is tm.LinkType.RAW_TRACEPOINT
        made = on_each_cpu(200)
        os.getpid()  # another syscall: not counted
        assert c[RAW_TRACEPOINT].packets == made
        link.detach()
        link.detach()  # idempotent
        on_each_cpu(10)
        assert c[RAW_TRACEPOINT].packets == made
        with pytest.raises(tm.MapClosedError):
            _ = link.fd
        prog = obj.programs["raw_sys_enter"]
        with pytest.raises(tm.ObjectError, match="no tracepoint named 'no_such_tp'"):
            prog.attach_raw_tracepoint("no_such_tp")
        with pytest.raises(ValueError, match="tracepoint name"):
            prog.attach_raw_tracepoint("sys/enter")


def test_another_threads_calls_are_not_counted(tracefs: Path) -> None:
    with (
        open_attach() as obj,
        obj.programs["tp_getppid"].attach_tracepoint("syscalls", "sys_enter_getppid"),
    ):
        t = threading.Thread(target=lambda: [os.getppid() for _ in range(100)])
        t.start()
        t.join()
        os.getppid()
        assert counts(obj)[TRACEPOINT].packets == 1


# ---------------------------------------------------------------------- uprobes

LIBC = "libc.so.6"


def _uprobe_offset(link: tm.Link) -> int:
    """The file offset libbpf resolved for a uprobe (from the kernel's link info)."""
    buf = ffi.new("struct bpf_link_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
    name = ffi.new("char[4096]")
    buf.extra[1] = int(ffi.cast("uintptr_t", name))
    buf.extra[2] = 4096  # name_len; the kernel writes the offset into the upper half
    assert get_lib().bpf_obj_get_info_by_fd(link.fd, buf, size) == 0
    assert ffi.string(name).endswith(b"libc.so.6")
    return int(buf.extra[2]) >> 32


def test_uprobe_and_uretprobe_count_this_process_calls() -> None:
    with open_attach() as obj:
        c = counts(obj)
        entry = obj.programs["uprobe_count"].attach_uprobe(LIBC, "getppid", pid=os.getpid())
        ret = obj.programs["uretprobe_count"].attach_uprobe(LIBC, "getppid", retprobe=True)
        assert entry.kind == "uprobe"
        assert ret.kind == "uretprobe"
        assert entry.target == f"{LIBC}:getppid (pid {os.getpid()})"
        for _ in range(300):
            os.getppid()
        libc = ctypes.CDLL(LIBC)
        for _ in range(50):
            libc.getppid()  # straight through ctypes: the same function
        assert c[UPROBE].packets == 350
        assert c[URETPROBE].packets == 350
        offset = _uprobe_offset(entry)
        entry.detach()
        ret.close()
        os.getppid()
        assert c[UPROBE].packets == 350
        assert c[URETPROBE].packets == 350
        # the same function by file offset
        with obj.programs["uprobe_count"].attach_uprobe(LIBC, offset, pid=os.getpid()) as ln:
            assert ln.target.endswith(f"+{offset:#x} (pid {os.getpid()})")
            for _ in range(10):
                os.getppid()
            assert c[UPROBE].packets == 360


def test_uprobe_errors_name_the_binary_and_symbol() -> None:
    with open_attach() as obj:
        prog = obj.programs["uprobe_count"]
        with pytest.raises(tm.ObjectError, match="no_such_function") as e:
            prog.attach_uprobe(LIBC, "no_such_function")
        assert e.value.errno == errno.ENOENT
        with pytest.raises(tm.ObjectError, match=r"no such file /nonexistent/lib\.so"):
            prog.attach_uprobe("/nonexistent/lib.so", "f")
        for bad in [-1, "", "a\0b", 1.5, True]:
            with pytest.raises((TypeError, ValueError)):
                prog.attach_uprobe(LIBC, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="pid"):
            prog.attach_uprobe(LIBC, "getppid", pid=-2)
        with pytest.raises(tm.ObjectError, match="attach_uprobe needs KPROBE"):
            obj.programs["tp_getppid"].attach_uprobe(LIBC, "getppid")


def test_uprobe_symbols_with_undecodable_bytes_are_looked_up_not_crashed_on() -> None:
    # ELF names are bytes; a str with surrogate escapes (os.fsdecode of b"\xff")
    # is looked up as those bytes: not found, a named error, no UnicodeEncodeError.
    with open_attach() as obj:
        with pytest.raises(tm.ObjectError) as e:
            obj.programs["uprobe_count"].attach_uprobe(LIBC, "get\udcffppid")
        assert e.value.errno == errno.ENOENT


# ---------------------------------------------------------------------- perf events


def test_perf_event_samples_on_the_chosen_cpu_until_detached() -> None:
    cpu = max(os.sched_getaffinity(0))
    with open_attach() as obj:
        c = counts(obj)
        samples = obj.maps["perf_samples"]
        prog = obj.programs["perf_sample"]
        link = prog.attach_perf_event(cpu=cpu, period=1_000_000)  # every ms of CPU clock
        assert link.target == f"cpu-clock on CPU {cpu}, every 1000000 ns"
        assert wait_for(lambda: c[PERF_EVENT].packets >= 20)
        link.detach()
        total = c[PERF_EVENT].packets
        per_cpu = [int.from_bytes(v, "little") for v in samples.lookup_percpu(bytes(4)) or []]
        assert per_cpu[cpu] == total  # every sample ran on that CPU
        assert sum(per_cpu) == total
        time.sleep(0.02)
        assert c[PERF_EVENT].packets == total  # detached: no more samples
        with prog.attach_perf_event(cpu=cpu, frequency=1000) as hz:
            assert hz.target.endswith("1000 Hz")
            assert wait_for(lambda: c[PERF_EVENT].packets > total)


def test_perf_event_argument_checks() -> None:
    with open_attach() as obj:
        prog = obj.programs["perf_sample"]
        for kw in [
            {"cpu": 0},
            {"cpu": 0, "frequency": 10, "period": 10},
            {"cpu": -1, "frequency": 10},
            {"cpu": tm.num_possible_cpus(), "frequency": 10},
            {"cpu": 0, "frequency": 0},
            {"cpu": 0, "period": -5},
        ]:
            with pytest.raises(ValueError, match=r"frequency|period|cpu"):
                prog.attach_perf_event(**kw)
        with pytest.raises(tm.ObjectError, match="perf_event_max_sample_rate"):
            prog.attach_perf_event(cpu=0, frequency=2**31 - 1)  # beyond the kernel's limit


# ---------------------------------------------------------------------- what this kernel lacks


def test_kprobes_are_refused_cleanly_where_the_kernel_has_none() -> None:
    with open_attach(autoload={"kprobe_count"}) as obj:
        prog = obj.programs["kprobe_count"]
        assert prog.type is tm.ProgramType.KPROBE  # the program itself loads fine
        why = probe_kind("kprobe")
        if why is None:  # a kernel with kprobes: they must work
            with prog.attach_kprobe("do_nanosleep"):
                time.sleep(0.001)
                assert counts(obj)[KPROBE].packets >= 1
            with prog.attach():
                pass
            return
        assert "no kprobe" in why
        with pytest.raises(tm.NotSupportedError, match="this kernel has no kprobes") as e:
            prog.attach_kprobe("do_nanosleep")
        assert e.value.errno == errno.EOPNOTSUPP
        with pytest.raises(tm.NotSupportedError, match="this kernel has no kprobes"):
            prog.attach_kprobe("do_nanosleep", retprobe=True)
        with pytest.raises(tm.NotSupportedError, match="this kernel has no kprobes"):
            prog.attach()  # SEC("kprobe/do_nanosleep") through libbpf's auto-attach
        assert obj._links == []


@pytest.mark.parametrize(
    ("program", "ptype"),
    [
        ("on_nanosleep_entry", tm.ProgramType.TRACING),
        ("on_nanosleep_exit", tm.ProgramType.TRACING),
        ("on_file_open", tm.ProgramType.LSM),
    ],
)
def test_fentry_fexit_and_lsm_are_refused_cleanly(program: str, ptype: tm.ProgramType) -> None:
    with tm.BpfObject.open(bpf_object("btf_tracing")) as obj:
        for name in obj.programs:
            obj.programs[name].autoload = name == program
        prog = obj.programs[program]
        assert prog.type is ptype
        if prog_type_supported(ptype):  # a kernel that has them: load and attach
            obj.load()
            with prog.attach() as link:
                assert link.attached
            return
        with pytest.raises(tm.NotSupportedError, match="this kernel cannot load those") as e:
            obj.load()
        assert program in str(e.value)
        assert e.value.errno == errno.EOPNOTSUPP


def test_the_rest_of_an_object_loads_without_the_unsupported_programs() -> None:
    with tm.BpfObject.open(bpf_object("btf_tracing")) as obj:
        for name in obj.programs:
            obj.programs[name].autoload = False
        obj.load()  # maps only
        assert obj.maps[".bss"].lookup(bytes(4)) == bytes(24)


def test_links_of_a_closed_object_are_released(tracefs: Path) -> None:
    obj = open_attach()
    link = obj.programs["tp_getppid"].attach_tracepoint("syscalls", "sys_enter_getppid")
    assert obj._links == [link]
    obj.close()
    assert not link.attached
    link.detach()  # still idempotent
    assert "closed" in repr(link)


def test_a_dropped_link_of_an_object_program_stays_attached_until_the_object_closes() -> None:
    obj = open_attach(syscall=GETPPID_NR[platform.machine()])
    c = counts(obj)
    obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")  # the Link is dropped
    gc.collect()
    os.getppid()
    assert c[RAW_TRACEPOINT].packets == 1  # the object keeps it
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        obj.close()  # closes it: no warning, that is the object's job


def test_link_repr() -> None:
    with open_attach() as obj:
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        assert repr(link) == (
            "Link('raw_tracepoint', program='raw_sys_enter', target='sys_enter', attached)"
        )
        link.close()
        assert repr(link).endswith("closed)")


def test_attach_by_section_and_what_it_cannot_do(tracefs: Path) -> None:
    with open_attach() as obj:
        c = counts(obj)
        with obj.programs["tp_getppid"].attach() as link:  # SEC("tracepoint/syscalls/...")
            assert link.kind == "tracepoint"
            for _ in range(7):
                os.getppid()
        assert c[TRACEPOINT].packets == 7
        with pytest.raises(tm.NotSupportedError, match=r"use attach_perf_event\(cpu="):
            obj.programs["perf_sample"].attach()
        with pytest.raises(tm.NotSupportedError, match=r"use attach_xdp\(iface\)"):
            obj.programs["xdp_count"].attach()
