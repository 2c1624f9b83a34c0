"""Shared fixtures: real kernel maps, BPF objects, bpftool, and a session-wide fd-leak check.

Every test here runs against the real kernel. Without BPF privilege the
kernel tests skip, unless TYPEDMAPS_REQUIRE_BPF=1 (as in CI), which turns
each such skip into a failure.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import typedmaps as tm

ROOT = Path(__file__).resolve().parent.parent
BPF_BUILD = ROOT / "build" / "bpf"
BPFFS = Path("/sys/fs/bpf")
REQUIRE_BPF = os.environ.get("TYPEDMAPS_REQUIRE_BPF") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip when a kernel/privilege requirement is missing; fail instead in CI."""
    if condition:
        return
    if REQUIRE_BPF:
        pytest.fail(f"TYPEDMAPS_REQUIRE_BPF=1 but: {reason}", pytrace=False)
    pytest.skip(reason)


_probe: str | bool | None = False


def bpf_unavailable() -> str | None:
    """None when this process can create BPF maps, else the reason."""
    global _probe
    if _probe is False:
        try:
            h = tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=4, max_entries=1)
        except tm.MapPermissionError as exc:
            _probe = f"no BPF privilege (CAP_BPF/CAP_SYS_ADMIN): {exc}"
        except tm.MapError as exc:
            _probe = f"the kernel refused to create a map: {exc}"
        else:
            h.close()
            _probe = None
    return _probe if isinstance(_probe, str) else None


@pytest.fixture
def bpf() -> None:
    """Require BPF: skip (or fail under TYPEDMAPS_REQUIRE_BPF=1) without it."""
    reason = bpf_unavailable()
    need(reason is None, reason or "")


MakeMap = Callable[..., tm.MapHandle]


@pytest.fixture
def make_map(bpf: None) -> Iterator[MakeMap]:
    """Factory for kernel maps that are closed when the test ends.

    ``make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=16)``;
    LPM_TRIE gets NO_PREALLOC and BLOOM_FILTER 3 hashes unless told otherwise.
    """
    made: list[tm.MapHandle] = []

    def make(map_type: tm.MapType, **kw: Any) -> tm.MapHandle:
        if map_type is tm.MapType.LPM_TRIE:
            kw.setdefault("map_flags", tm.MapCreateFlags.NO_PREALLOC)
        if map_type is tm.MapType.BLOOM_FILTER:
            kw.setdefault("map_extra", 3)
        if map_type.is_keyless:
            kw.setdefault("key_size", 0)
        kw.setdefault("name", "tm_test")
        h = tm.MapHandle.create(map_type, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.fixture
def pin_dir(bpf: None) -> Iterator[Path]:
    """A fresh directory on bpffs, removed (with its pins) afterwards."""
    need(BPFFS.is_dir() and os.path.ismount(BPFFS), "bpffs is not mounted at /sys/fs/bpf")
    d = BPFFS / f"typedmaps_test_{uuid.uuid4().hex[:12]}"
    d.mkdir()
    try:
        yield d
    finally:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


@pytest.fixture
def veth(bpf: None) -> Iterator[Any]:
    """A fresh network namespace + veth pair (typedmaps.testing.VethPair), always removed."""
    from .attach_support import veth_pair  # (imports conftest)

    need(shutil.which("ip") is not None, "iproute2 (`ip`) is not installed")
    with veth_pair() as pair:
        yield pair


@pytest.fixture
def cgroup_dir(bpf: None) -> Iterator[Path]:
    """A fresh cgroup v2 directory (cgroup2 is mounted if absent), removed afterwards."""
    from .attach_support import cgroup2_root, remove_cgroup, unique

    d = cgroup2_root() / unique("cg")
    d.mkdir()
    try:
        yield d
    finally:
        remove_cgroup(d)


@pytest.fixture
def attach_pins(bpf: None) -> Iterator[Path]:
    """A fresh bpffs directory for pinned links and programs, emptied and removed afterwards."""
    from .attach_support import unique

    need(BPFFS.is_dir() and os.path.ismount(BPFFS), "bpffs is not mounted at /sys/fs/bpf")
    d = BPFFS / unique("pin")
    d.mkdir()
    try:
        yield d
    finally:
        for p in d.iterdir():  # pins, and directories a failed test left
            if p.is_dir():
                p.rmdir()
            else:
                p.unlink()
        d.rmdir()


def bpf_object(name: str) -> Path:
    """Path of build/bpf/<name>.bpf.o (built by `make bpf`)."""
    p = BPF_BUILD / f"{name}.bpf.o"
    need(p.is_file(), f"{p} is not built: run `make bpf`")
    return p


def bpftool(*args: str) -> Any:
    """Run `bpftool -j ARGS` and return the parsed JSON (None for no output)."""
    exe = shutil.which("bpftool") or "/usr/sbin/bpftool"
    need(os.path.exists(exe), "bpftool is not installed")
    out = subprocess.run(
        [exe, "-j", *args], check=True, capture_output=True, text=True
    ).stdout.strip()
    return json.loads(out) if out else None


# ------------------------------------------------------------------ fd leak check


def _open_fds() -> dict[int, str]:
    fds: dict[int, str] = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            fds[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError as exc:  # the fd of the listdir itself, closed by now
            if exc.errno != errno.ENOENT:
                raise
    return fds


_fds_at_start: dict[int, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _fds_at_start.update(_open_fds())
    if os.geteuid() == 0:
        from .attach_support import clean_leftovers  # (imports conftest)

        clean_leftovers()  # of a crashed earlier run: dead pids only, our prefix only


def _leak_report() -> str | None:
    gc.collect()
    leaked = {
        fd: target
        for fd, target in _open_fds().items()
        if fd not in _fds_at_start and target.startswith("anon_inode:")
    }
    if not leaked:
        return None
    lines = "\n".join(f"  fd {fd} -> {t}" for fd, t in sorted(leaked.items()))
    return f"FILE DESCRIPTOR LEAK: {len(leaked)} BPF fd(s) still open:\n{lines}"


_worker_leaks: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: hand the report to the controller, which fails the run.
        workeroutput["fd_leaks"] = _leak_report()
        return
    reports = [r for r in [_leak_report(), *_worker_leaks] if r]
    if reports:
        print("\n" + "\n".join(reports))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: collect each worker's fd-leak report (see pytest_sessionfinish)."""
    report = getattr(node, "workeroutput", {}).get("fd_leaks")
    if report:
        _worker_leaks.append(f"[{node.gateway.id}] {report}")
