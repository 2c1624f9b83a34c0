"""How programs get attached: interfaces, tc hooks, perf events, tracefs, feature probes.

Private mechanics behind :class:`Program`'s ``attach_*`` methods and
:class:`Link`. Every function here checks its arguments before it makes a
syscall and turns failures into the typedmaps error tree, naming the
interface, path or symbol involved.
"""

from __future__ import annotations

import errno as _errno
import os
import platform
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from . import _ffi, _pins
from ._ffi import ffi
from ._objbase import _capture_libbpf_log, _strerror
from .errors import (
    ENOTSUPP,
    ArgumentError,
    MapPermissionError,
    NotSupportedError,
    ObjectError,
    PathNotFoundError,
    TypedMapsError,
)
from .flags import ProgramType
from .handle import unpin_path

_T = TypeVar("_T")

# ---------------------------------------------------------------------- arguments


def arg_error(what: str, value: object, reason: str) -> ArgumentError:
    """The error for a bad argument (a TypeError and ValueError), before any syscall."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ArgumentError(f"{what}: {reason} (got {shown})", argument=what, value=value)


def int_arg(value: object, what: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise arg_error(what, value, f"must be an integer in [{lo}, {hi}]")
    return value


def path_arg(value: object, what: str) -> bytes:
    """An fs-encoded path: a non-empty str/bytes/PathLike without NUL bytes."""
    if not isinstance(value, str | bytes | os.PathLike):
        raise arg_error(what, value, f"expected a path, got {type(value).__name__}")
    p = os.fsencode(value)
    if not p or b"\0" in p:
        raise arg_error(what, value, "must be a non-empty path without NUL bytes")
    return p


# ---------------------------------------------------------------------- errors


def os_error(err: int, operation: str, detail: str | None = None, log: str = "") -> TypedMapsError:
    """The named error of an attach-time errno: permission, support, or ObjectError."""
    err = abs(err) or _errno.EINVAL
    text = detail if detail is not None else _strerror(err)
    if err in (_errno.EPERM, _errno.EACCES):
        return MapPermissionError(err, operation, f"{text} (needs root: CAP_BPF/CAP_NET_ADMIN)")
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return NotSupportedError(err, operation, text)
    return ObjectError(err, operation, text, log=log)


# ---------------------------------------------------------------------- interfaces

_IFNAMSIZ: Final = 16
#: Bytes no interface name may contain (the kernel's dev_valid_name()).
_IFNAME_BAD: Final = frozenset(b"\0/: \t\n\v\f\r")


def ifindex_of(iface: object, op: str) -> tuple[int, str]:
    """(ifindex, name) of a network interface given by name or index, in this netns."""
    if isinstance(iface, bool) or not isinstance(iface, int | str):
        raise arg_error("iface", iface, "expected an interface name (str) or ifindex (int)")
    if isinstance(iface, int):
        if not 0 < iface < 2**31:
            raise arg_error("iface", iface, "an ifindex is a positive integer")
        try:
            return iface, socket.if_indextoname(iface)
        except OSError:
            raise ObjectError(
                _errno.ENODEV, op, f"no network interface with ifindex {iface} (in this netns)"
            ) from None
    # Encoded as socket.if_nametoindex() encodes it (undecodable bytes come back
    # as surrogate escapes); the rest is the kernel's dev_valid_name().
    raw = os.fsencode(iface)
    if (
        not raw
        or len(raw) >= _IFNAMSIZ
        or raw in (b".", b"..")
        or any(c in _IFNAME_BAD for c in raw)
    ):
        raise arg_error(
            "iface", iface, "not a valid interface name (1-15 bytes, no '/', ':', NUL or space)"
        )
    try:
        return socket.if_nametoindex(iface), iface
    except OSError:
        raise ObjectError(
            _errno.ENODEV, op, f"no network interface named {iface!r} (in this netns)"
        ) from None


#: attach_xdp(mode=...) -> XDP_FLAGS_*_MODE (linux/if_link.h)
XDP_MODES: Final[dict[str | None, int]] = {None: 0, "skb": 1 << 1, "drv": 1 << 2, "hw": 1 << 3}
_XDP_ATTACHED: Final = {1: "drv", 2: "skb", 3: "hw", 4: "multi"}


def xdp_attached(ifindex: int) -> str | None:
    """What XDP program an interface has now, e.g. "id 42, skb mode", or None."""
    opts = ffi.new("struct bpf_xdp_query_opts *")
    opts.sz = ffi.sizeof("struct bpf_xdp_query_opts")
    if _ffi.get_lib().bpf_xdp_query(ifindex, 0, opts) < 0:
        return None
    ids = {
        "drv": int(opts.drv_prog_id),
        "skb": int(opts.skb_prog_id),
        "hw": int(opts.hw_prog_id),
    }
    found = [f"id {pid}, {mode} mode" for mode, pid in ids.items() if pid]
    return "; ".join(found) or None


# ---------------------------------------------------------------------- tc hooks


_THIS_NETNS: Final = "/proc/thread-self/ns/net"
_CLONE_NEWNET: Final = 0x40000000


def open_netns() -> int:
    """An fd of the calling thread's network namespace (-1 without /proc)."""
    try:
        return os.open(_THIS_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def in_netns(ns_fd: int, fn: Callable[[], _T], op: str) -> _T:
    """``fn()`` run in network namespace ``ns_fd``: here if this thread is in it,
    else in a short-lived thread that joins it first (setns), so that the
    caller's own thread never changes namespace.

    For netlink calls (libbpf's tc API opens its socket in the calling
    thread's namespace, where ifindexes are looked up): a filter attached in
    one namespace must be removed there, whichever thread lets go of it.
    """
    if ns_fd < 0:
        return fn()
    try:
        here = os.stat(_THIS_NETNS)
        there = os.fstat(ns_fd)
    except OSError:
        return fn()
    if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
        return fn()
    results: list[_T] = []
    errors: list[BaseException] = []

    def body() -> None:
        ffi.errno = 0
        if _ffi.get_libc().setns(ns_fd, _CLONE_NEWNET) != 0:
            err = ffi.errno or _errno.EINVAL
            errors.append(
                os_error(err, op, f"setns into its network namespace: {os.strerror(err)}")
            )
            return
        try:
            results.append(fn())
        except BaseException as exc:  # raised again in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=body, name="typedmaps-netns", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return results[0]


class TcHooks:
    """Which clsact qdiscs this process created, and how many of its filters use each.

    bpf_tc_hook_create() makes the clsact qdisc (both directions) unless the
    interface has one. A qdisc we found is never removed; one we created
    goes when the last of our filters on it is detached. Keyed by (network
    namespace, ifindex): an ifindex means something else in every namespace.
    """

    _lock: ClassVar = threading.Lock()
    _users: ClassVar[dict[tuple[int, int, int], list[int]]] = {}  # key -> [created, users]

    @staticmethod
    def key(ifindex: int, ns_fd: int) -> tuple[int, int, int]:
        try:
            st = os.fstat(ns_fd)
            return st.st_dev, st.st_ino, ifindex
        except OSError:
            return 0, 0, ifindex

    @classmethod
    def acquire(cls, hook: Any, key: tuple[int, int, int], op: str, where: str) -> None:
        """Make sure the clsact qdisc exists and count one more filter of ours on it."""
        with cls._lock:
            # EEXIST (the interface has a clsact qdisc) is normal: keep libbpf's
            # "Exclusivity flag on" line out of the log.
            with _capture_libbpf_log(drop=True) as lines:
                ret = int(_ffi.get_lib().bpf_tc_hook_create(hook))
            if ret < 0 and ret != -_errno.EEXIST:
                raise os_error(
                    ret,
                    op,
                    f"cannot create the clsact qdisc on {where}: {_strerror(-ret)}",
                    "\n".join(lines),
                )
            entry = cls._users.get(key)
            if entry is None:
                entry = cls._users[key] = [int(ret == 0), 0]
            elif ret == 0:
                entry[0] = 1  # the qdisc had gone meanwhile; this new one is ours
            entry[1] += 1

    @classmethod
    def release(cls, hook: Any, key: tuple[int, int, int]) -> None:
        """One filter of ours is gone; remove the qdisc when it was ours and is unused."""
        with cls._lock:
            entry = cls._users.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del cls._users[key]
            if entry[0]:
                saved = hook.attach_point
                hook.attach_point = 1 | 2  # BPF_TC_INGRESS | BPF_TC_EGRESS: the qdisc
                _ffi.get_lib().bpf_tc_hook_destroy(hook)
                hook.attach_point = saved


# ---------------------------------------------------------------------- perf events

PERF_TYPE_SOFTWARE: Final = 1
PERF_TYPE_TRACEPOINT: Final = 2
PERF_COUNT_SW_CPU_CLOCK: Final = 0
PERF_ATTR_FREQ: Final = 1 << 10
PERF_FLAG_FD_CLOEXEC: Final = 1 << 3
#: perf_event_open(2) by machine (asm/unistd.h); libc has no wrapper.
_PERF_EVENT_OPEN: Final = {
    "x86_64": 298,
    "aarch64": 241,
    "arm64": 241,
    "riscv64": 241,
    "loongarch64": 241,
    "i386": 336,
    "i686": 336,
    "armv7l": 364,
    "armv6l": 364,
    "ppc64le": 319,
    "ppc64": 319,
    "s390x": 331,
}


def perf_event_open(
    ev_type: int,
    config: int,
    *,
    sample: int,
    freq: bool,
    pid: int,
    cpu: int,
    op: str,
    sample_type: int = 0,
) -> int:
    """A new perf event fd (close-on-exec), for a BPF program to attach to.

    ``sample_type``: what each sample records (PERF_SAMPLE_RAW for the
    BPF_OUTPUT events behind a perf buffer, in events.py).
    """
    nr = _PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise NotSupportedError(
            _errno.ENOSYS, op, f"perf_event_open is not known on {platform.machine()}"
        )
    attr = ffi.new("struct perf_event_attr *")
    attr.type = ev_type
    attr.size = ffi.sizeof("struct perf_event_attr")
    attr.config = config
    attr.sample_period_or_freq = sample
    attr.flags = PERF_ATTR_FREQ if freq else 0
    attr.sample_type = sample_type
    attr.wakeup_events = 1
    libc = _ffi.get_libc()
    ffi.errno = 0
    fd = int(
        libc.syscall(
            ffi.cast("long", nr),
            attr,
            ffi.cast("int", pid),
            ffi.cast("int", cpu),
            ffi.cast("int", -1),
            ffi.cast("unsigned long", PERF_FLAG_FD_CLOEXEC),
        )
    )
    if fd < 0:
        err = ffi.errno or _errno.EINVAL
        detail = f"perf_event_open: {os.strerror(err)}"
        if err == _errno.EINVAL and freq:
            detail += " (above /proc/sys/kernel/perf_event_max_sample_rate?)"
        if err == _errno.ENODEV or (err == _errno.EINVAL and cpu >= 0):
            detail += f" (is CPU {cpu} online?)"
        raise os_error(err, op, detail)
    return fd


# ---------------------------------------------------------------------- tracefs


def tracefs() -> Path | None:
    """The mounted tracefs (/sys/kernel/tracing, or debugfs' tracing/), or None."""
    for root in (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing")):
        if (root / "events").is_dir():
            return root
    return None


_TP_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def tracepoint_id(category: object, name: object, op: str) -> int:
    """The id of tracepoint category:name, read from tracefs."""
    for what, v in (("category", category), ("name", name)):
        if not isinstance(v, str) or not _TP_NAME.fullmatch(v) or len(v) > 255:
            raise arg_error(what, v, "a tracepoint name is letters, digits, '_' and '-'")
    root = tracefs()
    if root is None:
        raise ObjectError(
            _errno.ENOENT,
            op,
            "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing); "
            "tracepoint ids come from it",
        )
    path = root / "events" / str(category) / str(name) / "id"
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ObjectError(
            _errno.ENOENT, op, f"no tracepoint {category}:{name} (no {path})"
        ) from None
    except OSError as exc:
        raise os_error(exc.errno or _errno.EIO, op, f"cannot read {path}: {exc.strerror}") from None
    if not text.isdigit():
        raise ObjectError(_errno.EINVAL, op, f"{path} holds {text!r}, not a tracepoint id")
    return int(text)


# ---------------------------------------------------------------------- feature probes

_EVENT_SOURCES: Final = Path("/sys/bus/event_source/devices")


def probe_kind(kind: str) -> str | None:
    """None when the kernel can create ``kind`` ("kprobe"/"uprobe") probes, else why not.

    Linux 4.17+ registers a perf PMU for each (``/sys/bus/event_source/
    devices/<kind>``); older kernels have only ``<kind>_events`` in tracefs,
    which libbpf uses as a fallback. Neither means the kernel was built
    without them (CONFIG_KPROBE_EVENTS / CONFIG_UPROBE_EVENTS).
    """
    if (_EVENT_SOURCES / kind / "type").exists():
        return None
    root = tracefs()
    if root is not None and (root / f"{kind}_events").exists():
        return None
    where = f"no {kind}_events in {root}" if root else "tracefs is not mounted"
    return (
        f"this kernel has no {kind}s: no {kind} PMU at {_EVENT_SOURCES / kind} and {where} "
        f"(built without CONFIG_{kind.upper()}_EVENTS)"
    )


_probed: dict[int, bool | None] = {}
_probe_lock = threading.Lock()


def prog_type_supported(ptype: ProgramType) -> bool | None:
    """libbpf's feature probe (a minimal program load): True, False, or None (cannot tell)."""
    with _probe_lock:
        if ptype in _probed:
            return _probed[ptype]
        ret = int(_ffi.get_lib().libbpf_probe_bpf_prog_type(int(ptype), ffi.NULL))
        answer = None if ret < 0 else ret == 1
        _probed[ptype] = answer
        return answer


#: What users call the BTF-based program kinds, by program type.
PROGRAM_KINDS: Final = {
    ProgramType.TRACING: "fentry/fexit/fmod_ret/tp_btf/iter (TRACING)",
    ProgramType.LSM: "LSM (BPF LSM)",
    ProgramType.EXT: "freplace (EXT)",
    ProgramType.STRUCT_OPS: "struct_ops",
}


# ---------------------------------------------------------------------- kernel objects


def fd_kind(fd: int) -> str:
    """What an fd is: "bpf-link", "bpf-prog", "bpf-map", ... (from /proc/self/fd)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
    return target.removeprefix("anon_inode:")


#: An fd kind (fd_kind) -> the noun for it.
_NOUNS: Final = {"bpf-map": "map", "bpf-prog": "program", "bpf-link": "link"}


def bpf_obj_get(path: bytes, want: str, op: str, *, reopen: bool = False) -> int:
    """Open a bpffs pin and check it is a ``want`` ("bpf-link", "bpf-prog").

    Args:
        reopen: for ``from_pinned_path``: a path where nothing is or can be
            pinned raises PathNotFoundError (also a FileNotFoundError, errno
            ENOENT), as ``MapHandle.from_pinned_path`` does; a directory or a
            file outside bpffs is found before the syscall. Without it
            (unpin), those are ObjectError.

    Raises:
        ObjectError: the pin holds another kind of object (EINVAL), naming it.
    """
    if reopen:
        _pins.check_open(path, op, _NOUNS.get(want, want))
    ret = int(_ffi.get_lib().bpf_obj_get(path))
    shown = os.fsdecode(path)
    if ret < 0:
        err = -ret
        if err == _errno.ENOENT:
            if reopen:
                raise PathNotFoundError(
                    err, op, f"nothing is pinned at {shown} (No such file or directory)"
                )
            raise ObjectError(err, op, f"nothing is pinned at {shown}")
        if reopen and err in (_errno.EPERM, _errno.EACCES):
            # Not a path that cannot hold a pin (checked above): the pin's
            # mode or owner refuses this process, or it lacks a capability.
            raise MapPermissionError(err, op, f"{os.strerror(err)} (opening the pin)")
        if err == _errno.EINVAL or (err == _errno.EACCES and os.geteuid() == 0):
            # the kernel says EACCES for a file that is not a bpffs inode
            raise ObjectError(err, op, f"{shown} is not a BPF pin (not on a bpffs mount)")
        raise os_error(err, op, f"{shown}: {os.strerror(err)}")
    kind = fd_kind(ret)
    if kind != want:
        os.close(ret)
        what = {k: f"a {noun}" for k, noun in _NOUNS.items()}
        raise ObjectError(
            _errno.EINVAL,
            op,
            f"{shown} is {what.get(kind, kind)}, not {what.get(want, want)}",
        )
    return ret


#: How long detach() waits for the kernel to release a link without BPF_LINK_DETACH
#: (the pin's reference goes after an RCU grace period: milliseconds).
LINK_RELEASE_TIMEOUT = 2.0


def _kernel_id(fd: int) -> int:
    """The id of a BPF program or link fd (both info structs start with type, id)."""
    info = ffi.new("__u32[2]")
    size = ffi.new("__u32 *", 8)
    if _ffi.get_lib().bpf_obj_get_info_by_fd(fd, info, size) < 0:
        return 0
    return int(info[1])


def remove_pin(path: bytes, want: str, op: str, *, obj_id: int = 0) -> None:
    """Unlink a bpffs pin, but only a pin of a ``want`` ("bpf-link", "bpf-prog").

    With ``obj_id``, only a pin of that very program or link. Anything else
    (a file that is not on bpffs, a map's pin, another program's) is left
    alone and named in the error: unpin never removes what it was not
    asked to.

    Raises:
        ObjectError: nothing pinned there (ENOENT), or not such a pin (EINVAL).
    """
    fd = bpf_obj_get(path, want, op)
    try:
        found = _kernel_id(fd)
    finally:
        os.close(fd)
    if obj_id and found != obj_id:
        raise ObjectError(
            _errno.EINVAL,
            op,
            f"{os.fsdecode(path)} pins another one (id {found}), not this one (id {obj_id})",
        )
    unpin_path(os.fsdecode(path))


def link_gone(link_id: int) -> bool:
    """Wait (bounded) until the kernel has released link ``link_id``; False if it stays."""
    get = _ffi.get_lib().bpf_link_get_fd_by_id
    deadline = time.monotonic() + LINK_RELEASE_TIMEOUT
    delay = 0.0005
    while True:
        fd = int(get(link_id))
        if fd < 0:
            # ENOENT: released. EPERM: we cannot look; assume the kernel did its part.
            return True
        os.close(fd)
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
