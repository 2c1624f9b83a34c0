"""obj.globals on bpf/globals.bpf.c: every data section, typed from BTF, before and after load.

The program `step` (run by test_run) reads the configuration and what
Python wrote, and writes results back; `on_getppid` counts the getppid()
calls of the process whose tgid Python writes into `target_tgid` after load,
on the real tracepoint. Reads and writes after load go through memory: the
tests count bpf() syscalls to prove it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

import typedmaps as tm

from .conftest import ROOT, bpf_object
from .syscall_count import bpf_calls


@pytest.fixture
def obj(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("globals")) as o:
        yield o


SECTIONS = {
    ".rodata": ["ro_rate", "ro_name", "ro_mode", "ro_offsets"],
    ".data": ["counter", "delta", "enabled", "limits", "history", "label", "mode"],
    ".data.custom": ["custom_data"],
    ".rodata.custom": ["custom_ro"],
    ".bss": [
        "runs",
        "seen_counter",
        "seen_delta",
        "seen_rate",
        "seen_history_sum",
        "seen_custom",
        "seen_kernel",
        "target_tgid",
        "getppid_calls",
    ],
    ".kconfig": ["LINUX_KERNEL_VERSION", "CONFIG_BPF_SYSCALL"],
}


def _kernel_version() -> int:
    major, minor, patch = (int(x) for x in os.uname().release.split("-")[0].split(".")[:3])
    return (major << 16) + (minor << 8) + min(patch, 255)


def test_every_section_and_variable(obj: tm.BpfObject) -> None:
    g = obj.globals
    assert obj.globals is g  # one view per object
    assert sorted(g) == sorted(v for names in SECTIONS.values() for v in names)
    assert len(g) == 24
    for section, names in SECTIONS.items():
        for name in names:
            assert name in g
            assert (section, name) in g
            assert g[section, name] == g[name]
    assert "nothing" not in g
    assert set(dir(g)) >= set(g)
    assert "before load" in repr(g)


def test_static_variables_are_not_exposed(obj: tm.BpfObject) -> None:
    names = set(obj.globals)
    assert "hidden_static" not in names
    assert not any("fmt" in n for n in names)  # bpf_printk's static format string
    # The byte-level listing still has them.
    assert "hidden_static" in obj.maps[".data"].variables()
    assert "step.____fmt" in obj.maps[".rodata"].variables()


def test_initial_values_are_typed(obj: tm.BpfObject) -> None:
    g = obj.globals
    assert (g.ro_rate, g.ro_name, g.ro_offsets) == (1, "typedmaps", [-1, 0, 1])
    mode_cls = type(g.ro_mode)
    assert g.ro_mode is mode_cls.MODE_COUNT  # an IntEnum from the BTF
    assert g.mode is mode_cls.MODE_TRACE
    assert (g.counter, g.delta, g.enabled, g.label) == (7, -3, True, "abc")
    assert type(g.enabled) is bool
    assert g.history == [1, 2, 3, 4]
    lim = g.limits
    assert (lim.max_pkts, lim.port, lim.flags, lim.strict, lim.budget) == (100, 80, 3, False, 1000)
    assert (g.custom_data, g.custom_ro, g.runs) == (11, 22, 0)
    # libbpf fills .kconfig in at load: before that its image is zeros.
    assert (g.LINUX_KERNEL_VERSION, g.CONFIG_BPF_SYSCALL) == (0, False)


def test_set_before_load_and_the_program_starts_with_it(obj: tm.BpfObject) -> None:
    g = obj.globals
    g.ro_rate = 5  # const volatile: configuration
    g.counter = 100
    g.delta = -9
    g.history = [10, 20, 30, 40]
    g.custom_ro = 2
    g.runs = 40  # .bss too
    g.label = "cfg"
    limits = g.limits
    limits.port = 443
    g.limits = limits
    g["enabled"] = False
    obj.load()
    assert obj.programs["step"].test_run().retval == 1  # ro_mode
    assert (g.seen_rate, g.seen_counter, g.seen_delta) == (5, 100, -9)
    assert g.seen_history_sum == 100
    assert g.seen_custom == 11 + 2
    assert g.runs == 41
    assert g.counter == 100  # enabled was False: not incremented
    assert g.limits.port == 443
    assert g.limits.budget == 999
    assert g.label == "Pfg"  # the program wrote label[0] = 'A' + 41 % 26


def test_live_after_load_both_directions(obj: tm.BpfObject) -> None:
    obj.load()
    g = obj.globals
    assert "live" in repr(g)
    assert _kernel_version() == g.LINUX_KERNEL_VERSION
    assert g.CONFIG_BPF_SYSCALL is True
    step = obj.programs["step"]
    for n in range(1, 4):
        g.counter = 1000 * n  # Python's write ...
        g.delta = -n
        step.test_run()
        assert g.seen_counter == 1000 * n  # ... seen by the program at once
        assert g.seen_delta == -n
        assert g.counter == 1000 * n + 1  # and the program's write seen by Python
        assert g.runs == n
        assert g.history[n & 3] == n
        assert g.seen_kernel == _kernel_version() + 1
    g[".data", "counter"] = 5
    assert g.counter == 5


def test_read_only_sections_refuse_writes(obj: tm.BpfObject) -> None:
    g = obj.globals
    with pytest.raises(tm.MapPermissionError, match="kconfig"):
        g.LINUX_KERNEL_VERSION = 1  # libbpf fills .kconfig: read-only in every phase
    obj.load()
    for name, value in (
        ("ro_rate", 9),
        ("ro_name", "x"),
        ("ro_offsets", [0, 0, 0]),
        ("custom_ro", 1),
        ("LINUX_KERNEL_VERSION", 1),
    ):
        before = g[name]
        with pytest.raises(tm.MapPermissionError) as info:
            g[name] = value
        assert info.value.errno == 1
        assert isinstance(info.value, PermissionError)
        assert g[name] == before
    with pytest.raises(tm.MapPermissionError, match=r"\.rodata is frozen after load"):
        g.ro_rate = 2
    # A bad value is a CodecError first, as for any write.
    with pytest.raises(tm.CodecError):
        g.ro_rate = -1


def test_bad_values_leave_the_variable_unchanged(obj: tm.BpfObject) -> None:
    g = obj.globals
    for phase in ("before load", "after load"):
        if phase == "after load":
            obj.load()
        for name, bad in (
            ("counter", -1),
            ("counter", 2**64),
            ("counter", "7"),
            ("delta", 2**31),
            ("history", [1, 2, 3]),
            ("history", [1, 2, 3, -4]),
            ("label", "far too long"),
            ("mode", "MODE_NONE"),
            ("limits", {"max_pkts": 1}),
            ("enabled", "yes"),
        ):
            before = g[name]
            with pytest.raises(tm.CodecError):
                g[name] = bad
            assert g[name] == before, (phase, name)


def test_names_that_do_not_exist(obj: tm.BpfObject) -> None:
    g = obj.globals
    with pytest.raises(AttributeError, match="conter"):
        g.conter = 1  # a typo never creates an attribute
    with pytest.raises(AttributeError):
        _ = g.conter
    with pytest.raises(KeyError, match="conter"):
        g["conter"]
    with pytest.raises(KeyError):
        g[".bss", "counter"]  # counter lives in .data
    with pytest.raises(KeyError):
        g["conter"] = 1
    with pytest.raises(KeyError):
        g[["not", "hashable"]]  # type: ignore[index]


def test_closed_object(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("globals"))
    g = obj.globals
    obj.load()
    assert g.counter == 7
    obj.close()
    for op in (lambda: g.counter, lambda: g["runs"], lambda: setattr(g, "counter", 1)):
        with pytest.raises(tm.MapClosedError):
            op()
    assert "closed" in repr(g)
    with pytest.raises(tm.MapClosedError):
        obj.globals  # noqa: B018


def test_closed_before_load(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("globals"))
    g = obj.globals
    obj.close()
    with pytest.raises(tm.MapClosedError):
        g.counter  # noqa: B018
    with pytest.raises(tm.MapClosedError):
        g.counter = 1


def test_after_a_failed_load_writes_are_refused(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("globals")) as obj:
        obj.maps[".bss"].value_size = 3  # the program needs more: the verifier refuses
        g = obj.globals
        with pytest.raises(tm.ObjectError):
            obj.load()
        assert g.counter == 7  # the image can still be read
        with pytest.raises(tm.ObjectError, match="failed to load"):
            g.counter = 1
        assert "runs" not in g  # no longer inside the resized .bss


def test_globals_of_other_objects(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("zoo")) as zoo:
        assert list(zoo.globals) == []
    with tm.BpfObject.open(bpf_object("tracecount")) as tc:
        tc.globals.target_syscall = 110
        tc.load()
        assert tc.globals.target_syscall == 110
        assert tc.globals.enabled == 1


def test_a_real_tracepoint_counts_what_python_asked_for(obj: tm.BpfObject) -> None:
    obj.load()
    g = obj.globals
    with obj.programs["on_getppid"].attach():
        for _ in range(5):
            os.getppid()
        assert g.getppid_calls == 0  # no target yet
        g.target_tgid = os.getpid()  # seen by the program at its next run
        for _ in range(7):
            os.getppid()
        assert g.getppid_calls == 7
        g.target_tgid = 0
        os.getppid()
        assert g.getppid_calls == 7


def test_threads_read_while_the_object_closes(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("globals"))
    obj.load()
    g = obj.globals
    bad: list[object] = []
    go = threading.Barrier(3)

    def reader() -> None:
        go.wait()
        for _ in range(20000):
            try:
                v = g.counter
                lim = g.limits
            except tm.MapClosedError:
                return
            if v != 7 or lim.port != 80:
                bad.append((v, lim))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    go.wait()
    obj.close()
    for t in threads:
        t.join(timeout=60)
    assert not bad


def test_rodata_writes_fail_safely_in_a_subprocess(bpf: None) -> None:
    """A write to .rodata is MapPermissionError; the page is mapped PROT_READ, never written."""
    code = textwrap.dedent(
        f"""
        import typedmaps as tm
        obj = tm.BpfObject.open({str(bpf_object("globals"))!r})
        obj.load()
        g = obj.globals
        for name in ("ro_rate", "ro_name", "custom_ro", "LINUX_KERNEL_VERSION"):
            try:
                g[name] = g[name]
            except tm.MapPermissionError:
                pass
            else:
                raise SystemExit("a .rodata write went through")
        # Underneath, the section is mapped read-only: even a raw store is refused.
        mem = obj.maps[".rodata"].memory()
        assert mem.readonly
        try:
            mem[0] = 9
        except TypeError:
            pass
        else:
            raise SystemExit("a store into a read-only mapping went through")
        mem.release()
        assert g.ro_rate == 1
        obj.close()
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
def test_reads_and_writes_make_no_syscall(bpf: None) -> None:
    setup = f"""
        import typedmaps as tm
        obj = tm.BpfObject.open({str(bpf_object("globals"))!r})
        obj.load()
        g = obj.globals
        g.counter  # the first access maps the sections
    """
    measured = """
        for i in range(3000):
            g.counter = i
            assert g.counter == i
            g.delta = -i
            assert g["delta"] == -i
            assert g.limits.port == 80
            assert g.ro_rate == 1 and g.ro_name == "typedmaps"
            assert g.LINUX_KERNEL_VERSION > 0
            g.label = "x"
    """
    count, lines = bpf_calls(setup, measured)
    assert count == 0, lines
    # The counter counts: reading the section map by syscall is one bpf() call a read.
    count, _ = bpf_calls(setup, "for _ in range(50): obj.maps['.data'].lookup(bytes(4))")
    assert count == 50
