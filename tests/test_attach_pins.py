"""Pinned links and programs: they outlive the Link, the object and the process.

The centrepiece: a separate Python process loads the counting object,
attaches an XDP program to a veth and a raw tracepoint program, pins both
links and the counts map, and exits. With every Python object of it gone,
the programs keep counting this test's traffic and syscalls; reopened with
``Link.from_pinned_path`` and detached, they stop, and their pins are gone.
"""

from __future__ import annotations

import copy
import errno
import gc
import os
import pickle
import platform
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import construct as cs
import pytest
from construct_typed import DataclassStruct

import typedmaps as tm
from typedmaps import _attach
from typedmaps.errors import PathNotFoundError
from typedmaps.testing import VethPair

from .attach_support import (
    GETPPID_NR,
    RAW_TRACEPOINT,
    ROOT_DIR,
    TC_INGRESS,
    XDP,
    Counter,
    counts,
    open_attach,
    wait_for,
)
from .conftest import need

PORT = 4343


def pinned_counts(path: Path) -> tuple[tm.MapHandle, tm.TypedMap[int, Counter]]:
    h = tm.MapHandle.from_pinned_path(path)
    return h, tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Counter))


def getppid_nr() -> int:
    nr = GETPPID_NR.get(platform.machine())
    need(nr is not None, f"no getppid number for {platform.machine()}")
    assert nr is not None
    return nr


def bpf_fds() -> int:
    n = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            n += "bpf" in os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
    return n


# ---------------------------------------------------------------------- Link pins


def test_pin_unpin_and_reopen(attach_pins: Path) -> None:
    with open_attach(syscall=getppid_nr()) as obj:
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        where = attach_pins / "raw"
        link.pin(where)
        assert link.pin_path == str(where)
        assert where.exists()
        assert f"pinned={str(where)!r}" in repr(link)
        with pytest.raises(tm.ObjectError, match="already pinned") as e:
            link.pin(attach_pins / "again")
        assert e.value.errno == errno.EBUSY
        again = tm.Link.from_pinned_path(where)
        assert again.info() == link.info()
        assert again.program is None
        assert again.kind == "raw_tracepoint"
        again.close()  # lets go only: still pinned, still attached
        assert where.exists()
        assert link.attached
        link.unpin()
        assert not where.exists()
        assert link.pin_path is None
        with pytest.raises(tm.ObjectError, match="not pinned"):
            link.unpin()
        link.close()


def test_pin_errors(attach_pins: Path, tmp_path: Path) -> None:
    with open_attach() as obj:
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        with pytest.raises(ValueError, match="dot"):
            link.pin(attach_pins / "a.b")
        with pytest.raises(tm.ObjectError, match="no directory") as e:
            link.pin(attach_pins / "missing" / "x")
        assert e.value.errno == errno.ENOENT
        with pytest.raises(tm.MapPermissionError, match="bpffs"):
            link.pin(tmp_path / "x")  # not a bpffs
        (attach_pins / "taken").mkdir()
        with pytest.raises(tm.ObjectError, match=r"pinned at .* already") as e:
            link.pin(attach_pins / "taken")
        (attach_pins / "taken").rmdir()
        assert e.value.errno == errno.EEXIST
        with pytest.raises(ValueError, match="NUL"):
            link.pin("/sys/fs/bpf/a\0b")
        link.close()
        with pytest.raises(tm.MapClosedError):
            link.pin(attach_pins / "late")


def test_reopening_something_else_is_a_named_error(attach_pins: Path) -> None:
    for cls in (tm.Link, tm.Program):
        with pytest.raises(FileNotFoundError, match="nothing is pinned at") as e:
            cls.from_pinned_path(attach_pins / "nothing")
        assert isinstance(e.value, PathNotFoundError)
        assert e.value.errno == errno.ENOENT
        assert "No such file or directory" in str(e.value)
    with open_attach() as obj:
        obj.maps["counts"].pin(attach_pins / "map")
        obj.programs["xdp_count"].pin(attach_pins / "prog")
        with pytest.raises(tm.ObjectError, match="is a map, not a link"):
            tm.Link.from_pinned_path(attach_pins / "map")
        with pytest.raises(tm.ObjectError, match="is a program, not a link"):
            tm.Link.from_pinned_path(attach_pins / "prog")
        with pytest.raises(tm.ObjectError, match="is a map, not a program"):
            tm.Program.from_pinned_path(attach_pins / "map")
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "link")
        with pytest.raises(tm.ObjectError, match="is a link, not a program"):
            tm.Program.from_pinned_path(attach_pins / "link")
        link.detach()
        assert not (attach_pins / "link").exists()  # detach() removed its pin


def test_a_pin_of_the_wrong_kind_says_what_is_pinned_there(attach_pins: Path) -> None:
    """A map's pin for a Program, a program's for a Link, a link's for a MapHandle, ..."""
    with open_attach() as obj:
        obj.maps["counts"].pin(attach_pins / "map")
        obj.programs["xdp_count"].pin(attach_pins / "prog")
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "link")
        try:
            before = len(os.listdir("/proc/self/fd"))
            for name, kind in (("prog", "program"), ("link", "link")):
                for kw in ({}, {"readonly": True}, {"writeonly": True}):
                    with pytest.raises(tm.MapError) as e:
                        tm.MapHandle.from_pinned_path(attach_pins / name, **kw)
                    assert str(e.value) == (
                        f"open pinned {attach_pins / name}: not a BPF map: "
                        f"a BPF {kind} is pinned there [errno 22]"
                    )
                    assert not isinstance(e.value, FileNotFoundError | PermissionError)
            opens = (
                (tm.Program, "map", "a map, not a program"),
                (tm.Program, "link", "a link, not a program"),
                (tm.Link, "map", "a map, not a link"),
                (tm.Link, "prog", "a program, not a link"),
            )
            for cls, name, what in opens:
                with pytest.raises(tm.ObjectError) as oe:
                    cls.from_pinned_path(attach_pins / name)
                assert oe.value.errno == errno.EINVAL
                assert f"{attach_pins / name} is {what}" in str(oe.value)
                assert not isinstance(oe.value, FileNotFoundError | PermissionError)
            assert len(os.listdir("/proc/self/fd")) == before
        finally:
            link.detach()


def test_reopening_a_path_that_cannot_hold_a_pin_is_not_found(
    attach_pins: Path, tmp_path: Path
) -> None:
    """A directory or a file outside bpffs: FileNotFoundError, never EACCES or ObjectError.

    The kernel answers EACCES for such paths, which read as "no permission"
    (and, as root, was taken for "not on bpffs" even for a bpffs directory).
    """
    plain = tmp_path / "plain"
    plain.write_text("not a pin\n")
    (attach_pins / "sub").mkdir()
    to_dir = tmp_path / "to-dir"
    to_dir.symlink_to(attach_pins / "sub")
    cases = [
        (plain, "the path is not on a bpffs mount (file system magic "),
        (Path("/proc/self/status"), "the path is not on a bpffs mount (file system magic "),
        (tmp_path, "the path is a directory"),
        (attach_pins, "the path is a directory"),
        (attach_pins / "sub", "the path is a directory"),
        (to_dir, "the path is a directory"),
    ]
    before = len(os.listdir("/proc/self/fd"))
    for cls, kind in ((tm.Program, "program"), (tm.Link, "link")):
        for path, why in cases:
            with pytest.raises(FileNotFoundError) as e:
                cls.from_pinned_path(path)
            assert isinstance(e.value, PathNotFoundError)
            assert not isinstance(e.value, PermissionError)
            assert e.value.errno == errno.ENOENT
            text = str(e.value)
            assert text.startswith(f"open pinned {kind} {path}: not a BPF {kind}: {why}"), text
            assert text.endswith("so nothing is pinned there [errno 2]"), text
    assert len(os.listdir("/proc/self/fd")) == before
    assert plain.read_text() == "not a pin\n"


_OPEN_AS_NOBODY = """
import sys
import typedmaps as tm
for cls, path in zip((tm.Program, tm.Link, tm.Program, tm.Link), sys.argv[1:]):
    try:
        cls.from_pinned_path(path).close()
    except Exception as exc:
        print(type(exc).__name__, isinstance(exc, PermissionError), exc.errno, exc)
    else:
        print("opened")
"""


def test_a_pin_the_caller_may_not_open_is_a_permission_error(attach_pins: Path) -> None:
    """Without privileges: a pin whose mode refuses the caller is MapPermissionError.

    A directory stays "nothing is pinned there" for that caller too: the path
    is checked before the kernel is asked.
    """
    need(os.geteuid() == 0, "needs root to hand the pins to another user")
    setpriv = shutil.which("setpriv")
    need(setpriv is not None, "setpriv (util-linux) is not installed")
    assert setpriv is not None
    (attach_pins / "sub").mkdir()
    with open_attach() as obj:
        obj.programs["xdp_count"].pin(attach_pins / "prog")
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "link")
        try:
            for name in ("prog", "link"):
                os.chown(attach_pins / name, 65534, 65534)
                os.chmod(attach_pins / name, 0o600)
            paths = [str(attach_pins / n) for n in ("prog", "link", "sub", "sub")]
            # uid 0 with no capabilities at all: an ordinary user who does not own the pins.
            unprivileged = (setpriv, "--inh-caps=-all", "--bounding-set=-all")
            r = subprocess.run(
                [*unprivileged, sys.executable, "-c", _OPEN_AS_NOBODY, *paths],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert r.returncode == 0, r.stderr
            prog, lnk, sub_prog, sub_link = r.stdout.splitlines()
            assert prog.startswith(f"MapPermissionError True 13 open pinned program {paths[0]}: ")
            assert lnk.startswith(f"MapPermissionError True 13 open pinned link {paths[1]}: ")
            assert "Permission denied" in prog
            assert "Permission denied" in lnk
            assert sub_prog.startswith("PathNotFoundError False 2 ")
            assert "not a BPF program: the path is a directory" in sub_prog
            assert sub_link.startswith("PathNotFoundError False 2 ")
            assert "not a BPF link: the path is a directory" in sub_link
            with tm.Program.from_pinned_path(attach_pins / "prog"):  # root may
                pass
        finally:
            link.detach()


def test_a_pinned_link_survives_its_object_and_detach_through_the_pin_ends_it(
    veth: VethPair, attach_pins: Path
) -> None:
    obj = open_attach(veth.network, PORT)
    obj.maps["counts"].pin(attach_pins / "counts")
    link = obj.programs["xdp_count"].attach_xdp(veth.host, mode="skb")
    link.pin(attach_pins / "xdp")
    obj.close()  # closes the link handle: the pin keeps it attached
    assert not link.attached
    h, c = pinned_counts(attach_pins / "counts")
    with h, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind((str(veth.host_addr), PORT))
        rx.settimeout(5)
        veth.send_udp(12, PORT)
        for _ in range(12):
            rx.recv(64)
        assert c[XDP].packets == 12
        again = tm.Link.from_pinned_path(attach_pins / "xdp")
        assert again.kind == "xdp"
        assert again.target == f"{veth.host} (ifindex {veth.host_ifindex})"
        again.detach()  # BPF_LINK_DETACH, and the pin is removed
        assert not (attach_pins / "xdp").exists()
        veth.send_udp(5, PORT)
        for _ in range(5):
            rx.recv(64)
        assert c[XDP].packets == 12


def test_detach_of_a_link_another_fd_holds_says_so(
    attach_pins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_attach, "LINK_RELEASE_TIMEOUT", 0.05)
    with open_attach(syscall=getppid_nr()) as obj:
        c = counts(obj)
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "raw")
        other = tm.Link.from_pinned_path(attach_pins / "raw")
        # raw tracepoint links have no BPF_LINK_DETACH: `other` keeps it alive
        with pytest.raises(tm.ObjectError, match="still held by another fd") as e:
            link.detach()
        assert e.value.errno == errno.EBUSY
        assert not link.attached
        assert not (attach_pins / "raw").exists()
        os.getppid()
        assert c[RAW_TRACEPOINT].packets == 1  # still attached, through `other`
        other.close()
        os.getppid()
        assert c[RAW_TRACEPOINT].packets == 1


# ---------------------------------------------------------------------- across processes

_ATTACHER = """
import os, sys
import typedmaps as tm
sys.path.insert(0, sys.argv[1])
from tests.attach_support import open_attach
import ipaddress
pins, host, net, port, tgid, tid, nr = sys.argv[2:9]
obj = open_attach(ipaddress.IPv4Network(net), int(port), tgid=int(tgid), tid=int(tid),
                  syscall=int(nr))
obj.maps["counts"].pin(pins + "/counts")
obj.programs["xdp_count"].attach_xdp(host, mode="skb").pin(pins + "/xdp")
obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter").pin(pins + "/raw")
print("attached", os.getpid())
# exit without closing anything: the process ends, its fds with it
os._exit(0)
"""


def test_pinned_links_keep_counting_after_the_process_that_made_them_exits(
    veth: VethPair, attach_pins: Path
) -> None:
    nr = getppid_nr()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _ATTACHER,
            str(ROOT_DIR),
            str(attach_pins),
            veth.host,
            str(veth.network),
            str(PORT),
            str(os.getpid()),
            str(threading.get_native_id()),
            str(nr),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("attached ")
    child = int(proc.stdout.split()[1])
    assert not os.path.exists(f"/proc/{child}")  # gone, and every Python object with it
    h, c = pinned_counts(attach_pins / "counts")
    with h, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind((str(veth.host_addr), PORT))
        rx.settimeout(5)
        for _ in range(77):
            os.getppid()
        veth.send_udp(9, PORT)
        for _ in range(9):
            rx.recv(64)
        assert c[RAW_TRACEPOINT].packets == 77
        assert c[XDP].packets == 9
        for name in ("raw", "xdp"):
            tm.Link.from_pinned_path(attach_pins / name).detach()
            assert not (attach_pins / name).exists()
        for _ in range(10):
            os.getppid()
        veth.send_udp(3, PORT)
        for _ in range(3):
            rx.recv(64)
        assert c[RAW_TRACEPOINT].packets == 77
        assert c[XDP].packets == 9


# ---------------------------------------------------------------------- Program pins


def test_a_pinned_program_reopened_runs_and_attaches_by_fd(
    veth: VethPair, attach_pins: Path, cgroup_dir: Path
) -> None:
    with open_attach(veth.network, PORT, syscall=getppid_nr()) as obj:
        obj.maps["counts"].pin(attach_pins / "counts")
        for name in ("xdp_count", "tc_ingress", "raw_sys_enter", "cgroup_egress", "uprobe_count"):
            obj.programs[name].pin(attach_pins / name)
        with pytest.raises(tm.ObjectError, match=r"pinned at .* already"):
            obj.programs["xdp_count"].pin(attach_pins / "xdp_count")
    # the object is closed: only the pins hold the programs now
    h, c = pinned_counts(attach_pins / "counts")
    with h:
        check_reopened(veth, attach_pins, cgroup_dir, c)


def check_reopened(
    veth: VethPair, attach_pins: Path, cgroup_dir: Path, c: tm.TypedMap[int, Counter]
) -> None:
    with tm.Program.from_pinned_path(attach_pins / "xdp_count") as xdp:
        assert xdp.type is tm.ProgramType.XDP
        assert xdp.name == "xdp_count"
        assert xdp.section == ""
        assert xdp.id > 0
        assert "reopened" in repr(xdp)
        assert xdp.test_run(bytes(64)).retval == 2  # XDP_PASS
        with xdp.attach_xdp(veth.host, mode="skb") as link:
            assert link.program is xdp
            veth.send_udp(4, PORT)  # no receiver: counted on the way in all the same
            assert wait_for(lambda: c[XDP].packets >= 4)
            assert c[XDP].packets == 4
        with pytest.raises(tm.NotSupportedError, match="reopened"):
            xdp.attach()
        with pytest.raises(tm.ObjectError, match="no BpfObject settings"):
            xdp.autoload = False
    with (
        tm.Program.from_pinned_path(attach_pins / "tc_ingress") as tc,
        tc.attach_tc(veth.host, "ingress") as link,
    ):
        veth.send_udp(3, PORT)
        assert link.kind == "tc"
        assert wait_for(lambda: c[TC_INGRESS].packets >= 3)
        assert c[TC_INGRESS].packets == 3
    with tm.Program.from_pinned_path(attach_pins / "raw_sys_enter") as raw:
        with raw.attach_raw_tracepoint("sys_enter"):
            for _ in range(5):
                os.getppid()
        assert c[RAW_TRACEPOINT].packets == 5
    with tm.Program.from_pinned_path(attach_pins / "cgroup_egress") as cg:
        with pytest.raises(ValueError, match="needs one of CGROUP_INET_EGRESS"):
            cg.attach_cgroup(cgroup_dir)
        with cg.attach_cgroup(cgroup_dir, attach_type=tm.AttachType.CGROUP_INET_EGRESS) as ln:
            assert "CGROUP_INET_EGRESS" in ln.target
    with tm.Program.from_pinned_path(attach_pins / "uprobe_count") as up:
        with pytest.raises(tm.NotSupportedError, match="needs the program's BpfObject"):
            up.attach_uprobe("libc.so.6", "getppid")
        up.unpin(attach_pins / "uprobe_count")
        assert not (attach_pins / "uprobe_count").exists()
    closed = tm.Program.from_pinned_path(attach_pins / "xdp_count")
    closed.close()
    closed.close()  # idempotent
    with pytest.raises(tm.MapClosedError):
        _ = closed.fd
    with pytest.raises(tm.MapClosedError):
        closed.test_run(bytes(64))


def test_program_pin_and_unpin(attach_pins: Path) -> None:
    with open_attach() as obj:
        prog = obj.programs["xdp_count"]
        prog.pin(attach_pins / "p")
        with tm.Program.from_pinned_path(attach_pins / "p") as again:
            assert again.id == prog.id
        prog.unpin()
        assert not (attach_pins / "p").exists()
        with pytest.raises(tm.ObjectError, match="not pinned by pin"):
            prog.unpin()
        with pytest.raises(tm.ObjectError, match="nothing is pinned at"):
            prog.unpin(attach_pins / "p")
        with pytest.raises(ValueError, match="dot"):
            prog.pin(attach_pins / "p.q")
    with (
        tm.BpfObject.open("build/bpf/attach.bpf.o") as fresh,
        pytest.raises(tm.ObjectError, match="not loaded"),
    ):
        fresh.programs["xdp_count"].pin(attach_pins / "early")


def test_unpin_removes_only_pins_of_this_program(attach_pins: Path, tmp_path: Path) -> None:
    bystander = tmp_path / "not-a-pin"
    bystander.write_text("keep me")
    with open_attach() as obj:
        prog, other = obj.programs["xdp_count"], obj.programs["tc_ingress"]
        obj.maps["counts"].pin(attach_pins / "map")
        other.pin(attach_pins / "other")
        with pytest.raises(tm.ObjectError, match="not a BPF pin"):
            prog.unpin(bystander)
        with pytest.raises(tm.ObjectError, match="is a map, not a program"):
            prog.unpin(attach_pins / "map")
        with pytest.raises(tm.ObjectError, match=r"pins another one \(id \d+\), not this one"):
            prog.unpin(attach_pins / "other")
        assert bystander.read_text() == "keep me"
        assert (attach_pins / "map").exists()
        assert (attach_pins / "other").exists()
        other.unpin()
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "link")
        with pytest.raises(tm.ObjectError, match="is a link, not a program"):
            prog.unpin(attach_pins / "link")
        link.detach()


# ---------------------------------------------------------------------- lifetime


def test_unclosed_reopened_links_and_programs_warn(attach_pins: Path) -> None:
    with open_attach() as obj:
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "raw")
        obj.programs["xdp_count"].pin(attach_pins / "prog")
        before = bpf_fds()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tm.Link.from_pinned_path(attach_pins / "raw")
            tm.Program.from_pinned_path(attach_pins / "prog")
            gc.collect()
        assert bpf_fds() == before  # closed by the finalizers
        kinds = sorted(str(w.message).split("(")[0] for w in caught)
        assert kinds == ["unclosed Link", "unclosed Program"]
        assert all(w.category is ResourceWarning for w in caught)
        link.detach()


def test_links_and_programs_refuse_copies(attach_pins: Path) -> None:
    with open_attach() as obj:
        prog = obj.programs["raw_sys_enter"]
        with prog.attach_raw_tracepoint("sys_enter") as link:
            for thing in (link, prog):
                with pytest.raises(TypeError):
                    copy.copy(thing)
                with pytest.raises(TypeError):
                    pickle.dumps(thing)
