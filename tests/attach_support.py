"""What the attach tests share: the counting object (bpf/attach.bpf.c), its records, and
the kernel-global things they make (network namespaces, cgroups, pins), each
named ``tma-<pid>-<random>`` so that concurrent runs never meet and a crashed
run's leftovers can be told apart from a live run's.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import ipaddress
import os
import secrets
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm
from typedmaps.testing import VethPair, cleanup

from .conftest import BPFFS, bpf_object

T = TypeVar("T")
PREFIX = "tma"
ROOT_DIR = Path(__file__).resolve().parent.parent
CGROUP2_DEFAULT = Path("/sys/fs/cgroup/unified")
TRACEFS = Path("/sys/kernel/tracing")

# slots of counts[] in bpf/attach.bpf.c
XDP, TC_INGRESS, TC_EGRESS, CGROUP_EGRESS, CGROUP_INGRESS, SOCKET = range(6)
TRACEPOINT, RAW_TRACEPOINT, UPROBE, URETPROBE, PERF_EVENT, KPROBE = range(6, 12)

ETH_IP_UDP = 14 + 20 + 8
#: getppid(2) by architecture: never cached by libc, cheap, rarely called.
GETPPID_NR = {"x86_64": 110, "aarch64": 173}


@dataclasses.dataclass
class Counter(DataclassMixin):
    """struct counter: packets (or calls, samples) and bytes."""

    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


def unique(kind: str = "") -> str:
    """A kernel-global name of this process: ``tma-<pid>-<random>``."""
    return f"{PREFIX}{kind}-{os.getpid()}-{secrets.token_hex(3)}"


def open_attach(
    network: ipaddress.IPv4Network | None = None,
    port: int = 0,
    *,
    tgid: int | None = None,
    tid: int | None = None,
    syscall: int = -1,
    autoload: set[str] | None = None,
) -> tm.BpfObject:
    """build/bpf/attach.bpf.o, configured and loaded (counts only what it is told about)."""
    obj = tm.BpfObject.open(bpf_object("attach"))
    try:
        ro = obj.maps[".rodata"]
        if network is not None:
            ro.set_variable("net", network.network_address.packed)
            ro.set_variable("mask", network.netmask.packed)
        ro.set_variable("port", struct.pack("<H", port))
        ro.set_variable("target_tgid", struct.pack("<I", os.getpid() if tgid is None else tgid))
        ro.set_variable(
            "target_tid", struct.pack("<I", threading.get_native_id() if tid is None else tid)
        )
        ro.set_variable("target_syscall", struct.pack("<q", syscall))
        if autoload is not None:
            for name in obj.programs:
                obj.programs[name].autoload = name in autoload
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


def counts(obj: tm.BpfObject) -> tm.TypedMap[int, Counter]:
    """counts[] typed: slot -> Counter."""
    return tm.TypedMap(obj.maps["counts"], key=cs.Int32ul, value=DataclassStruct(Counter))


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    """Poll ``predicate()`` until true (bounded); for counts that arrive asynchronously."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------------- mounts


def mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((parts[1], parts[2]))
    return out


def cgroup2_root() -> Path:
    """A cgroup v2 mount: the first one mounted, else mount one at /sys/fs/cgroup/unified."""
    for point, fstype in mounts():
        if fstype == "cgroup2":
            return Path(point)
    CGROUP2_DEFAULT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "cgroup2", "none", str(CGROUP2_DEFAULT)], check=True)
    return CGROUP2_DEFAULT


def ensure_tracefs() -> Path:
    if not (TRACEFS / "events").is_dir():
        subprocess.run(["mount", "-t", "tracefs", "tracefs", str(TRACEFS)], check=True)
    return TRACEFS


def remove_cgroup(path: Path) -> None:
    """rmdir a cgroup, waiting (bounded) for its last process to be reaped."""
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a new thread that has joined network namespace ``netns`` (setns).

    The calling thread stays where it is (Python 3.11 has no os.setns: libc's).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            results.append(fn())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return results[0]


# ---------------------------------------------------------------------- leftovers


def _dead(name: str, prefix: str) -> bool:
    """Is ``name`` one of ours (``<prefix>-<pid>-...``) whose process is gone?"""
    rest = name.removeprefix(prefix + "-")
    if rest == name:
        return False
    pid = rest.split("-", 1)[0]
    return pid.isdigit() and not os.path.exists(f"/proc/{pid}")


def clean_leftovers() -> list[str]:
    """Remove what a crashed earlier run of these tests left: netns, veths, cgroups, pins.

    Only names with our prefix whose creating process no longer exists.
    """
    removed: list[str] = []
    if shutil.which("ip") is not None:
        for prefix in (PREFIX, "tmv", "tmd"):  # these tests, the docs' pairs, the demo's
            with contextlib.suppress(OSError):
                removed += cleanup(prefix)
    for point, fstype in mounts():
        if fstype != "cgroup2":
            continue
        with contextlib.suppress(OSError):
            for d in Path(point).iterdir():
                if d.is_dir() and _dead(d.name, PREFIX + "cg"):
                    with contextlib.suppress(OSError):
                        remove_cgroup(d)
                        removed.append(str(d))
    with contextlib.suppress(OSError):
        for d in BPFFS.iterdir():
            if d.is_dir() and _dead(d.name, PREFIX + "pin"):
                for p in d.iterdir():
                    with contextlib.suppress(OSError):
                        p.unlink()
                with contextlib.suppress(OSError):
                    d.rmdir()
                    removed.append(str(d))
    return removed


@contextlib.contextmanager
def veth_pair() -> Iterator[VethPair]:
    pair = VethPair.create(prefix=PREFIX)
    try:
        yield pair
    finally:
        pair.close()
