"""Local storage on the real kernel: task, socket, cgroup and inode storage.

bpf/storage.bpf.c fills task and cgroup storage from the getppid()
tracepoint (for the test's own tgid only: other processes run tests on
this kernel at the same time) and socket storage from a cgroup/sock_create
program attached to a cgroup of the test's own, where a child process makes
the socket and hands it back over SCM_RIGHTS. bpf/inode_storage.bpf.c has
an INODE_STORAGE map with no program: this kernel lets user space use it
without BPF LSM programs. Every operation the kernel allows works; the ones
it does not (walking the map) are named errors; no fd leaks.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm
from typedmaps.typed.storage import (
    PidFd,
    TypedCgroupStorage,
    TypedInodeStorage,
    TypedSkStorage,
    TypedTaskStorage,
)

from .conftest import bpf_object, need

CGROUP2 = Path("/sys/fs/cgroup/unified")


@dataclasses.dataclass
class TaskStat(DataclassMixin):
    """struct task_stat of bpf/storage.bpf.c."""

    calls: int = csfield(cs.Int64ul)
    tgid: int = csfield(cs.Int32ul)
    flags: int = csfield(cs.Int32ul)


@dataclasses.dataclass
class SockStat(DataclassMixin):
    """struct sock_stat of bpf/storage.bpf.c."""

    tgid: int = csfield(cs.Int32ul)
    family: int = csfield(cs.Int32ul)
    type: int = csfield(cs.Int32ul)
    protocol: int = csfield(cs.Int32ul)
    created: int = csfield(cs.Int64ul)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _own_cgroup() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return CGROUP2 / line[3:].lstrip("/")
    raise AssertionError("no cgroup v2 line in /proc/self/cgroup")


@pytest.fixture
def storage(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("storage")) as obj:
        obj.load()
        yield obj


@pytest.fixture
def cgroup(bpf: None) -> Iterator[Path]:
    """A fresh cgroup v2 directory of this test's own, removed afterwards."""
    need(CGROUP2.is_dir(), f"no cgroup v2 hierarchy at {CGROUP2}")
    d = CGROUP2 / f"tm_data_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        d.rmdir()


# ---------------------------------------------------------------------------- tasks


def test_task_storage_filled_by_a_real_tracepoint(storage: tm.BpfObject) -> None:
    st = TypedTaskStorage(storage.maps["per_task"], value=DataclassStruct(TaskStat))
    me = os.getpid()
    assert me not in st
    storage.globals.target_tgid = me
    with storage.programs["on_getppid"].attach():
        for _ in range(5):
            os.getppid()
    assert st[me] == TaskStat(calls=5, tgid=me, flags=0)
    pidfd = os.pidfd_open(me)
    try:
        assert st[PidFd(pidfd)].calls == 5  # a pidfd the caller holds works the same
        st[PidFd(pidfd)] = TaskStat(calls=100, tgid=me, flags=1)
        assert st[me].calls == 100
        os.fstat(pidfd)  # the caller's pidfd is still open
    finally:
        os.close(pidfd)
    with storage.programs["on_getppid"].attach():
        os.getppid()
    assert st[me] == TaskStat(calls=101, tgid=me, flags=1)  # the program sees Python's write


def test_task_storage_from_user_space(storage: tm.BpfObject) -> None:
    st = TypedTaskStorage(storage.maps["per_task"])  # the value schema from BTF
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert child.pid not in st
        assert st.get(child.pid, "none") == "none"
        st[child.pid] = {"calls": 1, "tgid": child.pid, "flags": 0}
        assert st[child.pid].calls == 1
        with pytest.raises(tm.KeyExistsError):
            st.insert(child.pid, {"calls": 2, "tgid": 0, "flags": 0})
        st.replace(child.pid, {"calls": 3, "tgid": 0, "flags": 0})
        assert st.pop(child.pid).calls == 3
        assert child.pid not in st
        with pytest.raises(tm.KeyNotFoundError):
            st.replace(child.pid, {"calls": 4, "tgid": 0, "flags": 0})
        with pytest.raises(tm.KeyNotFoundError):
            del st[child.pid]
        st[child.pid] = {"calls": 5, "tgid": 0, "flags": 0}
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)
    # The process is gone, and its storage with it.
    with pytest.raises(tm.KeyNotFoundError, match="no process"):
        st[child.pid]
    with pytest.raises(tm.KeyNotFoundError):
        st[child.pid] = {"calls": 1, "tgid": 0, "flags": 0}
    assert child.pid not in st


def test_typed_picks_the_storage_wrappers(storage: tm.BpfObject) -> None:
    for name, cls in (
        ("per_task", TypedTaskStorage),
        ("per_sock", TypedSkStorage),
        ("per_cgroup", TypedCgroupStorage),
    ):
        wrapper = tm.typed(storage.maps[name])
        assert type(wrapper) is cls
    st = tm.typed(storage.maps["per_task"], value=DataclassStruct(TaskStat))
    assert isinstance(st, TypedTaskStorage)
    st[os.getpid()] = TaskStat(calls=1, tgid=0, flags=0)
    assert st[os.getpid()] == TaskStat(calls=1, tgid=0, flags=0)
    named = tm.typed(storage.maps["per_task"], value="struct task_stat")  # a BTF type name
    assert isinstance(named, TypedTaskStorage)
    assert named[os.getpid()].calls == 1
    del st[os.getpid()]
    with pytest.raises(tm.NotSupportedError, match="keyed by kernel objects"):
        tm.typed(storage.maps["per_task"], key=cs.Int32ul)


def test_task_storage_refusals(storage: tm.BpfObject) -> None:
    st = TypedTaskStorage(storage.maps["per_task"], value=DataclassStruct(TaskStat))
    for bad in (-1, 0, True, "1", 1.0, None, 2**40, PidFd(-3)):
        with pytest.raises(tm.CodecError):
            st[bad]  # type: ignore[index]
    with pytest.raises(tm.CodecError, match="calls"):
        st[os.getpid()] = TaskStat(calls=-1, tgid=0, flags=0)
    assert os.getpid() not in st  # nothing was written
    for op in (lambda: list(st), lambda: len(st), st.clear, lambda: list(st.items())):
        with pytest.raises(tm.NotSupportedError, match="refuses to walk"):
            op()
    with pytest.raises(tm.NotSupportedError, match="TASK_STORAGE"):
        TypedTaskStorage(storage.maps["per_sock"])
    with pytest.raises(tm.SizeMismatchError):
        TypedTaskStorage(storage.maps["per_task"], value=cs.Int64ul)


def test_no_fd_leaks(storage: tm.BpfObject, tmp_path: Path) -> None:
    st = TypedTaskStorage(storage.maps["per_task"], value=DataclassStruct(TaskStat))
    cg = TypedCgroupStorage(storage.maps["per_cgroup"], value=DataclassStruct(TaskStat))
    me = os.getpid()
    before = _fds()
    for i in range(200):
        st[me] = TaskStat(calls=i, tgid=me, flags=0)
        assert st[me].calls == i
        assert st.get(2**30 - 1) is None  # no such process
        with pytest.raises(tm.CodecError):
            st[me] = TaskStat(calls=-1, tgid=0, flags=0)
        assert cg.get(_own_cgroup()) is None or True
        with pytest.raises(FileNotFoundError):
            cg[tmp_path / "absent"]
        with pytest.raises(tm.CodecError):
            cg[tmp_path]  # a directory, not a cgroup
    del st[me]
    assert _fds() == before


# ---------------------------------------------------------------------------- cgroups


def test_cgroup_storage_filled_by_a_real_tracepoint(storage: tm.BpfObject) -> None:
    cg = TypedCgroupStorage(storage.maps["per_cgroup"], value=DataclassStruct(TaskStat))
    mine = _own_cgroup()
    assert mine not in cg
    storage.globals.target_tgid = os.getpid()
    with storage.programs["on_getppid"].attach():
        for _ in range(4):
            os.getppid()
    got = cg[mine]
    assert got.calls == 4
    assert got.tgid == os.getpid()
    fd = os.open(mine, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert cg[fd] == got  # an fd of the directory works too
    finally:
        os.close(fd)
    del cg[mine]
    assert cg.get(mine) is None


def test_cgroup_storage_from_user_space(storage: tm.BpfObject, cgroup: Path) -> None:
    cg = TypedCgroupStorage(storage.maps["per_cgroup"], value=DataclassStruct(TaskStat))
    cg[cgroup] = TaskStat(calls=7, tgid=1, flags=2)
    assert cg[str(cgroup)] == TaskStat(calls=7, tgid=1, flags=2)
    with pytest.raises(tm.KeyExistsError):
        cg.insert(cgroup, TaskStat(calls=0, tgid=0, flags=0))
    del cg[cgroup]
    assert cgroup not in cg
    with pytest.raises(FileNotFoundError) as info:
        cg[cgroup / "absent"]
    assert isinstance(info.value, tm.MapError)
    with pytest.raises(tm.CodecError, match="not a directory"):
        cg[cgroup / "cgroup.procs"]
    with pytest.raises(tm.CodecError):
        cg["with\0nul"]
    for op in (lambda: list(cg), lambda: len(cg)):
        with pytest.raises(tm.NotSupportedError):
            op()


# ---------------------------------------------------------------------------- sockets


_CHILD = textwrap.dedent(
    """
    import os, socket, sys
    cgroup, fd = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    made = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # in the cgroup: the program runs
    back = socket.socket(fileno=fd)
    socket.send_fds(back, [str(os.getpid()).encode()], [made.fileno()])
    """
)


def _socket_from_child(cgroup: Path) -> tuple[socket.socket, int]:
    """A UDP socket made by a child process inside ``cgroup``, and the child's pid."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(cgroup), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        msg, fds, _, _ = socket.recv_fds(ours, 64, 1)
    finally:
        ours.close()
        theirs.close()
    assert len(fds) == 1
    return socket.socket(fileno=fds[0]), int(msg.decode())


def test_socket_storage_filled_by_a_cgroup_program(storage: tm.BpfObject, cgroup: Path) -> None:
    sk = TypedSkStorage(storage.maps["per_sock"], value=DataclassStruct(SockStat))
    with storage.programs["on_sock"].attach_cgroup(cgroup):
        made, child = _socket_from_child(cgroup)
    with made:
        got = sk[made]
        assert (got.tgid, got.family, got.type, got.protocol) == (
            child,
            socket.AF_INET,
            socket.SOCK_DGRAM,
            socket.IPPROTO_UDP,
        )
        assert got.created == storage.globals.sockets_seen == 1
        assert sk[made.fileno()] == got
        got.created = 99
        sk[made] = got
        assert sk[made].created == 99
        del sk[made]
        assert made not in sk
    with pytest.raises(tm.CodecError):
        sk[made]  # closed: no fd any more


def test_socket_storage_from_user_space(storage: tm.BpfObject, tmp_path: Path) -> None:
    sk = TypedSkStorage(storage.maps["per_sock"], value=DataclassStruct(SockStat))
    a, b = socket.socketpair()
    with a, b, open(tmp_path / "f", "w") as f:
        assert a not in sk
        sk[a] = SockStat(1, 2, 3, 4, 5)
        assert sk[a] == SockStat(1, 2, 3, 4, 5)
        assert b not in sk  # each socket its own value
        with pytest.raises(tm.CodecError, match="not an open socket"):
            sk[f]  # a file, not a socket
        with pytest.raises(tm.CodecError):
            sk[f] = SockStat(1, 2, 3, 4, 5)
        with pytest.raises(tm.CodecError):
            sk["a"]  # type: ignore[index]
        with pytest.raises(tm.NotSupportedError):
            len(sk)


# ---------------------------------------------------------------------------- inodes


def test_inode_storage_from_user_space(bpf: None, tmp_path: Path) -> None:
    """This kernel allows inode storage from user space without BPF LSM programs."""
    with tm.BpfObject.open(bpf_object("inode_storage")) as obj:
        obj.load()
        st = TypedInodeStorage(obj.maps["per_inode"], value=cs.Int64ul)
        path = tmp_path / "file"
        path.write_text("x")
        assert path not in st
        st[path] = 5
        assert st[str(path)] == 5
        with open(path) as f:
            assert st[f] == 5  # a file object: the same inode
            st[f.fileno()] = 6
        assert st[path] == 6
        link = tmp_path / "hard"
        os.link(path, link)
        assert st[link] == 6  # a hard link names the same inode
        st[tmp_path] = 1  # a directory is an inode too
        assert st[tmp_path] == 1
        del st[path]
        assert link not in st
        with pytest.raises(FileNotFoundError):
            st[tmp_path / "absent"]
        with pytest.raises(tm.NotSupportedError):
            list(st)
