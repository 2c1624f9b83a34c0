"""Programs: Program (load state, test_run, attach_* calls, pins) and TestRunResult.

Every ``attach_*`` call checks, before any syscall, that the program's type
fits the call, that it is loaded, and its arguments; the kernel's refusals
come back as named errors that say which interface, path or symbol was
wrong. The resulting :class:`Link` (link.py) is how the attachment ends.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
import socket
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from . import _ffi
from ._args import bad, check_bool, check_int
from ._attach import (
    PERF_COUNT_SW_CPU_CLOCK,
    PERF_TYPE_SOFTWARE,
    PERF_TYPE_TRACEPOINT,
    PROGRAM_KINDS,
    XDP_MODES,
    TcHooks,
    arg_error,
    bpf_obj_get,
    ifindex_of,
    int_arg,
    open_netns,
    os_error,
    path_arg,
    perf_event_open,
    probe_kind,
    prog_type_supported,
    remove_pin,
    tracepoint_id,
    xdp_attached,
)
from ._ffi import NULL, ffi
from ._life import Lifetime, NoCopy
from ._objbase import _bytes_arg, _capture_libbpf_log, _cstr, _object_error, _State, _u32
from .errors import (
    ENOTSUPP,
    ArgumentError,
    MapClosedError,
    NotSupportedError,
    ObjectError,
    error_from_errno,
)
from .flags import AttachType, ProgramType
from .link import SO_ATTACH_BPF, Link, _KernelLink, _SocketFilter, _TcFilter

if TYPE_CHECKING:
    from .object import BpfObject

__all__ = ["Program", "TestRunResult", "unsupported_program"]

_BPF_F_TEST_RUN_ON_CPU: Final = 1 << 0
#: Extra room for data_out beyond len(data_in): XDP programs may grow a packet.
_OUT_HEADROOM: Final = 256
#: Program types whose test run takes a packet starting with an Ethernet header.
_PACKET_TYPES: Final = frozenset(
    {
        ProgramType.XDP,
        ProgramType.SCHED_CLS,
        ProgramType.SCHED_ACT,
        ProgramType.SOCKET_FILTER,
        ProgramType.CGROUP_SKB,
        ProgramType.LWT_IN,
        ProgramType.LWT_OUT,
        ProgramType.LWT_XMIT,
        ProgramType.LWT_SEG6LOCAL,
        ProgramType.FLOW_DISSECTOR,
    }
)
_ETH_HLEN: Final = 14
#: CPU numbers are below this (the kernel's NR_CPUS limit).
_MAX_CPU: Final = 8192
#: Program types whose test run takes ctx_in but has no ctx_out and no repeat.
_NO_CTX_OUT: Final = frozenset({ProgramType.RAW_TRACEPOINT, ProgramType.TRACING})
#: The one family whose test run honours BPF_F_TEST_RUN_ON_CPU (Linux 5.10+).
_RUN_ON_CPU_FLAG: Final = frozenset({ProgramType.RAW_TRACEPOINT})
#: Parsed once: test_run is often called in loops.
_TEST_RUN_OPTS: Final = ffi.typeof("struct bpf_test_run_opts *")
_TEST_RUN_OPTS_SZ: Final = ffi.sizeof("struct bpf_test_run_opts")
_CHARS: Final = ffi.typeof("char[]")


def _online_cpus() -> set[int]:
    """CPUs that are online now (for runs that do not pin the thread)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return set(range(_ffi.num_possible_cpus()))
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


# ---------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class TestRunResult:
    """What one BPF_PROG_TEST_RUN returned.

    Attributes:
        retval: the program's return value (for XDP an XDP action, for a
            socket filter the number of bytes to keep).
        data_out: the packet after the run (possibly modified by the program).
        duration_ns: the kernel's average time per repetition, in nanoseconds.
        ctx_out: the context after the run, when ``ctx_in`` was given and
            the program type returns one; else ``b""``.
    """

    __test__ = False  # not a pytest test class, despite the name

    retval: int
    data_out: bytes
    duration_ns: int
    ctx_out: bytes = b""


# ---------------------------------------------------------------------- Program

#: Program types each attach call takes (checked before any syscall).
_CGROUP_ATTACH: Final[dict[ProgramType, frozenset[AttachType]]] = {
    ProgramType.CGROUP_SKB: frozenset(
        {AttachType.CGROUP_INET_INGRESS, AttachType.CGROUP_INET_EGRESS}
    ),
    ProgramType.CGROUP_SOCK: frozenset(
        {
            AttachType.CGROUP_INET_SOCK_CREATE,
            AttachType.CGROUP_INET_SOCK_RELEASE,
            AttachType.CGROUP_INET4_POST_BIND,
            AttachType.CGROUP_INET6_POST_BIND,
        }
    ),
    ProgramType.CGROUP_SOCK_ADDR: frozenset(
        {
            AttachType.CGROUP_INET4_BIND,
            AttachType.CGROUP_INET6_BIND,
            AttachType.CGROUP_INET4_CONNECT,
            AttachType.CGROUP_INET6_CONNECT,
            AttachType.CGROUP_UDP4_SENDMSG,
            AttachType.CGROUP_UDP6_SENDMSG,
            AttachType.CGROUP_UDP4_RECVMSG,
            AttachType.CGROUP_UDP6_RECVMSG,
            AttachType.CGROUP_INET4_GETPEERNAME,
            AttachType.CGROUP_INET6_GETPEERNAME,
            AttachType.CGROUP_INET4_GETSOCKNAME,
            AttachType.CGROUP_INET6_GETSOCKNAME,
        }
    ),
    ProgramType.SOCK_OPS: frozenset({AttachType.CGROUP_SOCK_OPS}),
    ProgramType.CGROUP_DEVICE: frozenset({AttachType.CGROUP_DEVICE}),
    ProgramType.CGROUP_SYSCTL: frozenset({AttachType.CGROUP_SYSCTL}),
    ProgramType.CGROUP_SOCKOPT: frozenset(
        {AttachType.CGROUP_GETSOCKOPT, AttachType.CGROUP_SETSOCKOPT}
    ),
}
_TC_DIRECTIONS: Final = {"ingress": 1, "egress": 2}  # BPF_TC_INGRESS, BPF_TC_EGRESS
_RAW_TP_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,255}")
_KPROBE_SECTIONS: Final = ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
#: attach(): the Link kind by section prefix, named as the attach_* calls name theirs.
_AUTO_KINDS: Final = {
    "tp": "tracepoint",
    "raw_tp": "raw_tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "tp_btf": "tracing",
    "fentry": "tracing",
    "fexit": "tracing",
    "fmod_ret": "tracing",
}
#: attach() of a section libbpf cannot auto-attach: the call that can.
_EXPLICIT_CALL: Final = {
    ProgramType.XDP: "attach_xdp(iface)",
    ProgramType.SCHED_CLS: "attach_tc(iface, direction)",
    ProgramType.SOCKET_FILTER: "attach_socket(sock)",
    ProgramType.PERF_EVENT: "attach_perf_event(cpu=..., frequency=...)",
    ProgramType.KPROBE: "attach_uprobe(binary, symbol) or attach_kprobe(symbol)",
    ProgramType.TRACEPOINT: "attach_tracepoint(category, name)",
    ProgramType.RAW_TRACEPOINT: "attach_raw_tracepoint(name)",
    **{
        t: "attach_cgroup(path)"
        for t in (
            ProgramType.CGROUP_SKB,
            ProgramType.CGROUP_SOCK,
            ProgramType.CGROUP_SOCK_ADDR,
            ProgramType.SOCK_OPS,
            ProgramType.CGROUP_DEVICE,
            ProgramType.CGROUP_SYSCTL,
            ProgramType.CGROUP_SOCKOPT,
        )
    },
}
_LINK_OPTS: Final = ffi.typeof("struct bpf_link_create_opts *")
_LINK_OPTS_SZ: Final = ffi.sizeof("struct bpf_link_create_opts")


def _expects(*types: ProgramType) -> frozenset[ProgramType]:
    return frozenset(types)


_XDP_TYPES: Final = _expects(ProgramType.XDP)
_TC_TYPES: Final = _expects(ProgramType.SCHED_CLS)
_SOCKET_TYPES: Final = _expects(ProgramType.SOCKET_FILTER)
_TP_TYPES: Final = _expects(ProgramType.TRACEPOINT)
_RAW_TP_TYPES: Final = _expects(ProgramType.RAW_TRACEPOINT, ProgramType.RAW_TRACEPOINT_WRITABLE)
_PROBE_TYPES: Final = _expects(ProgramType.KPROBE)
_PERF_TYPES: Final = _expects(ProgramType.PERF_EVENT)
#: What to write in SEC() for each attach call, for the error message.
_SECTION_HINT: Final = {
    "attach_xdp": 'SEC("xdp")',
    "attach_tc": 'SEC("tc")',
    "attach_cgroup": 'SEC("cgroup_skb/egress"), SEC("cgroup/sock_create"), ...',
    "attach_socket": 'SEC("socket")',
    "attach_tracepoint": 'SEC("tracepoint/<category>/<name>")',
    "attach_raw_tracepoint": 'SEC("raw_tp/<name>")',
    "attach_uprobe": 'SEC("uprobe") or SEC("uretprobe")',
    "attach_kprobe": 'SEC("kprobe") or SEC("kretprobe")',
    "attach_perf_event": 'SEC("perf_event")',
}


class Program(NoCopy):
    """A loaded BPF program: ``obj.programs[name]``, or :meth:`from_pinned_path`.

    A program of a :class:`BpfObject` knows its name, section and type from
    open() on; ``autoload`` can be switched off before load; after load it
    has an :attr:`fd`, can :meth:`test_run`, ``attach_*`` and :meth:`pin`.
    Its fd belongs to the object, which closes it.

    A program reopened from a bpffs pin (:meth:`from_pinned_path`) owns its
    fd (close it, or use ``with``) and knows only what the kernel keeps:
    name (15 characters), type and id. It can test_run, pin, and attach by
    fd (attach_xdp, attach_tc, attach_cgroup, attach_socket,
    attach_tracepoint, attach_raw_tracepoint, attach_perf_event); uprobes,
    kprobes and attach() need libbpf's view of the object (ELF symbols, the
    section), so they raise NotSupportedError there.
    """

    __slots__ = (
        "__weakref__",
        "_ctx_out",
        "_lt",
        "_name",
        "_needs_packet",
        "_obj",
        "_on_cpu_flag",
        "_pin",
        "_ptr",
        "_run_op",
        "_section",
        "_type",
    )

    _obj: BpfObject | None

    def __init__(self, _obj: BpfObject, _ptr: Any) -> None:
        """Private: programs come from ``BpfObject.programs``."""
        lib = _ffi.get_lib()
        self._obj = _obj
        self._ptr = _ptr
        self._lt: Lifetime | None = None  # a reopened program's own fd; the object's otherwise
        self._pin: bytes | None = None
        self._name = _cstr(lib.bpf_program__name(_ptr)) or ""
        self._section = _cstr(lib.bpf_program__section_name(_ptr)) or ""
        self._setup(ProgramType(lib.bpf_program__type(_ptr)))

    def _setup(self, ptype: ProgramType) -> None:
        self._type = ptype
        # decided once per program, not per test run
        self._run_op = f"test_run {self._name}"
        self._needs_packet = ptype in _PACKET_TYPES
        self._ctx_out = ptype not in _NO_CTX_OUT
        self._on_cpu_flag = ptype in _RUN_ON_CPU_FLAG

    @classmethod
    def from_pinned_path(cls, path: str | os.PathLike[str]) -> Program:
        """Open a program pinned in bpffs; the result owns its fd (close it, or ``with``).

        Raises:
            PathNotFoundError: nothing is pinned at ``path`` (also a
                FileNotFoundError, errno ENOENT): no such file, or what is
                there cannot be a pin ("not a BPF program: the path is a
                directory" or "is not on a bpffs mount"; checked before the
                syscall).
            ObjectError: the pin is a map or a link, not a program (EINVAL):
                "P is a map, not a program".
            MapPermissionError: the pin's mode or owner refuses this process,
                or it lacks the capability.
        """
        p = path_arg(path, "path")
        op = f"open pinned program {os.fsdecode(p)}"
        fd = bpf_obj_get(p, "bpf-prog", op, reopen=True)
        try:
            info = ffi.new("struct bpf_prog_info *")
            size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
            ret = _ffi.get_lib().bpf_obj_get_info_by_fd(fd, info, size)
            if ret < 0:
                raise os_error(ret, op)
            self = cls.__new__(cls)
            self._obj = None
            self._ptr = NULL
            self._lt = Lifetime(fd, lambda: os.close(fd))
            self._pin = None
            self._name = ffi.string(info.name).decode("utf-8", "replace")
            self._section = ""
            self._setup(ProgramType(info.type))
        except BaseException:
            os.close(fd)
            raise
        return self

    @property
    def name(self) -> str:
        """The program's name (its C function name; 15 characters when reopened)."""
        return self._name

    @property
    def section(self) -> str:
        """The ELF section, e.g. ``"xdp"`` or ``"raw_tp/sys_enter"`` ("" when reopened)."""
        return self._section

    @property
    def type(self) -> ProgramType:
        """The program type libbpf derived from the section (or the kernel reports)."""
        return self._type

    def _where(self) -> str:
        if self._obj is None:
            return f"program {self._name!r}"
        return f"program {self._name!r} of {self._obj._name!r}"

    def _closed(self) -> MapClosedError:
        if self._obj is None:
            return MapClosedError(f"{self._where()} is closed")
        return MapClosedError(f"{self._where()} is closed (its BpfObject is closed)")

    def _guard(self) -> contextlib.AbstractContextManager[int]:
        """``with self._guard():`` the object (and this program) stay allocated.

        For a reopened program: its own fd stays open for the block.
        """
        if self._obj is None:
            assert self._lt is not None
            return self._lt.using(self._closed)
        return self._obj._lt.using(self._closed)

    def _object(self) -> BpfObject:
        obj = self._obj
        if obj is None:
            raise ObjectError(
                _errno.EINVAL, self._where(), "reopened from a pin: it has no BpfObject settings"
            )
        return obj

    @property
    def autoload(self) -> bool:
        """Whether load() loads this program; settable before load."""
        self._object()
        with self._guard():
            return bool(_ffi.get_lib().bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        obj = self._object()
        with self._guard():
            check_bool(value, "autoload", f"set autoload of {self._where()}")
            state = obj._state
            if state is not _State.OPEN:
                raise ObjectError(
                    _errno.EBUSY,
                    f"set autoload of {self._where()}",
                    f"the object is {state.value}; settings apply before load()",
                )
            ret = _ffi.get_lib().bpf_program__set_autoload(self._ptr, value)
            if ret < 0:
                raise _object_error(ret, f"set autoload of {self._where()}", [])

    @property
    def fd(self) -> int:
        """The program fd (owned by the object, or by this Program; do not close it).

        Borrowed: valid until the object (or this reopened Program) is closed.

        Raises:
            ObjectError: not loaded (before load(), or autoload=False).
            MapClosedError: the object (or this reopened Program) is closed.
        """
        with self._guard() as v:
            return self._fd_in_guard(v)

    def _fd_in_guard(self, v: int) -> int:
        """The fd, with the object (or own fd) guarded; ``v`` is the guard's value."""
        obj = self._obj
        if obj is None:
            return v
        fd = int(_ffi.get_lib().bpf_program__fd(self._ptr))
        if fd < 0:
            state = obj._state
            why = (
                "not loaded (autoload=False)"
                if state is _State.LOADED
                else f"not loaded: the object is {state.value}"
            )
            raise ObjectError(_errno.EBADF, self._where(), why)
        return fd

    @contextlib.contextmanager
    def _using(self, op: str) -> Iterator[int]:
        """The program fd, kept valid (the object or the own fd in flight) for the block."""
        with self._guard() as v:
            yield self._fd_in_guard(v)

    @property
    def id(self) -> int:
        """The kernel's program id (``bpftool prog show id N``)."""
        with self._using("id") as fd:
            info = ffi.new("struct bpf_prog_info *")
            size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
            ret = _ffi.get_lib().bpf_obj_get_info_by_fd(fd, info, size)
        if ret < 0:
            raise os_error(ret, f"id of {self._where()}")
        return int(info.id)

    # ------------------------------------------------------------------ test runs

    def test_run(
        self,
        data_in: bytes = b"",
        repeat: int = 1,
        ctx_in: bytes | None = None,
        cpu: int | None = None,
        data_size_out: int | None = None,
    ) -> TestRunResult:
        """Run the program once (or ``repeat`` times) in the kernel: BPF_PROG_TEST_RUN.

        Args:
            data_in: the packet, starting with its Ethernet header, for packet
                programs (XDP, tc, socket filters: at least 14 bytes).
            repeat: how many times to run; the result is the last run's, the
                duration the average.
            ctx_in: the program's context (e.g. ``struct xdp_md`` or, for
                raw tracepoints, the u64 arguments).
            cpu: run on this CPU. Raw tracepoints use the kernel's
                BPF_F_TEST_RUN_ON_CPU; every other type ignores that flag, so
                the calling thread is pinned to the CPU for the run
                (sched_setaffinity) and its affinity restored afterwards,
                also on error. Must be in the thread's affinity mask.
            data_size_out: room for the output packet (default
                ``len(data_in) + 256``); 0 for none.

        Returns:
            A :class:`TestRunResult` (retval, data_out, duration_ns, ctx_out).

        Raises:
            ArgumentError: bad arguments (checked before the syscall).
            NotSupportedError: the program type cannot be test-run.
            ObjectError: the kernel refused the run (EINVAL: a malformed
                packet or context; ENOSPC: data_size_out too small, the
                program did run).
        """
        # In flight on the object (or this reopened program's fd) for the whole
        # run: close() from another thread frees nothing until it returns.
        obj = self._obj
        lt = obj._lt if obj is not None else self._lt
        assert lt is not None
        v = lt.enter()
        if v < 0:
            raise self._closed()
        try:
            if obj is None:
                fd = v
            else:
                fd = int(obj._lib.bpf_program__fd(self._ptr))
                if fd < 0:
                    self._fd_in_guard(v)  # raises the right error
            return self._test_run(
                fd, data_in, repeat=repeat, ctx_in=ctx_in, cpu=cpu, data_size_out=data_size_out
            )
        finally:
            lt.leave()

    def _test_run(
        self,
        fd: int,
        data_in: bytes,
        *,
        repeat: int,
        ctx_in: bytes | None,
        cpu: int | None,
        data_size_out: int | None,
    ) -> TestRunResult:
        op = self._run_op
        ptype = self._type
        data = data_in if type(data_in) is bytes else _bytes_arg(data_in, "data_in", op)
        if type(repeat) is not int or not 1 <= repeat < 2**31:
            repeat = check_int(repeat, "repeat", op, 2**31 - 1, low=1)
        if self._needs_packet and len(data) < _ETH_HLEN:
            raise ArgumentError(
                f"{op}: {ptype.name} test runs need a packet of at least "
                f"{_ETH_HLEN} bytes (an Ethernet header), got {len(data)}",
                argument="data_in",
                value=data,
            )
        if data_size_out is None:
            out_size = len(data) + _OUT_HEADROOM if data else 0
        else:
            out_size = _u32(data_size_out, "data_size_out", op)
        if cpu is not None and (type(cpu) is not int or not 0 <= cpu < _MAX_CPU):
            cpu = check_int(cpu, "cpu", op, _MAX_CPU - 1)

        opts = ffi.new(_TEST_RUN_OPTS)
        opts.sz = _TEST_RUN_OPTS_SZ
        keep: list[Any] = []
        if data:
            din = ffi.from_buffer(data)
            keep.append(din)
            opts.data_in = din
            opts.data_size_in = len(data)
        dout = NULL
        if out_size:
            dout = ffi.new(_CHARS, out_size)
            opts.data_out = dout
            opts.data_size_out = out_size
        cout = NULL
        ctx_len = 0
        if ctx_in is not None:
            ctx = _bytes_arg(ctx_in, "ctx_in", op)
            ctx_len = len(ctx)
            cin = ffi.from_buffer(ctx)
            keep.append(cin)
            opts.ctx_in = cin
            opts.ctx_size_in = ctx_len
            if self._ctx_out and ctx_len:
                cout = ffi.new(_CHARS, ctx_len)
                opts.ctx_out = cout
                opts.ctx_size_out = ctx_len
        # The kernel treats repeat 0 as 1; raw_tp and tracing runs refuse any other value.
        opts.repeat = repeat if repeat > 1 else 0

        if cpu is not None and self._on_cpu_flag:
            online = _online_cpus()
            if cpu not in online:
                raise bad(op, "cpu", cpu, f"an online CPU {sorted(online)}")
            opts.flags = _BPF_F_TEST_RUN_ON_CPU
            opts.cpu = cpu
        ret = self._run(fd, opts, cpu, op)

        if ret < 0:
            err = -ret
            if err in (_errno.EOPNOTSUPP, ENOTSUPP):
                raise NotSupportedError(
                    err, op, f"{ptype.name} programs cannot be test-run (BPF_PROG_TEST_RUN)"
                )
            if err == _errno.ENOSPC and out_size:
                raise ObjectError(
                    err,
                    op,
                    f"data_out needs {int(opts.data_size_out)} bytes, data_size_out was "
                    f"{out_size} (the program did run)",
                )
            raise _object_error(err, op, [])
        data_out = b""
        if out_size:
            data_out = bytes(ffi.buffer(dout, min(int(opts.data_size_out), out_size)))
        ctx_out = b""
        if cout != NULL:
            ctx_out = bytes(ffi.buffer(cout, min(int(opts.ctx_size_out), ctx_len)))
        return TestRunResult(int(opts.retval), data_out, int(opts.duration), ctx_out)

    def _run(self, fd: int, opts: Any, cpu: int | None, op: str) -> int:
        run = _ffi.get_lib().bpf_prog_test_run_opts
        if cpu is None or self._on_cpu_flag:
            return int(run(fd, opts))
        return _run_pinned(run, fd, opts, cpu, op)

    # ------------------------------------------------------------------ pins

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the loaded program in bpffs, so that it outlives its object and process.

        Reopen it with :meth:`from_pinned_path`. The last path component may
        not contain a dot (bpffs refuses it).

        Raises:
            ObjectError: not loaded; the directory is missing (ENOENT);
                something is pinned there already (EEXIST).
            MapPermissionError: not on bpffs, or no privilege.
        """
        p = path_arg(path, "path")
        shown = os.fsdecode(p)
        op = f"pin {self._where()} at {shown}"
        if b"." in os.path.basename(p):
            raise arg_error("path", shown, "bpffs refuses names that contain a dot")
        with self._using(op) as fd:
            ret = int(_ffi.get_lib().bpf_obj_pin(fd, p))
        if ret < 0:
            err = -ret
            detail = {
                _errno.ENOENT: f"no directory {os.fsdecode(os.path.dirname(p))}",
                _errno.EEXIST: f"something is pinned at {shown} already",
                _errno.EPERM: "not on a bpffs mount (e.g. /sys/fs/bpf), or no privilege",
            }.get(err)
            raise os_error(err, op, detail)
        self._pin = p

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove a pin of this program: ``path``, or the last one :meth:`pin` made.

        Only a bpffs pin of this very program is removed; the program stays
        loaded while anything else holds it.

        Raises:
            ObjectError: no path given and not pinned by this Program (EINVAL);
                nothing pinned there (ENOENT); the path is not a pin of this
                program (EINVAL: another program's, a map's, not on bpffs).
        """
        p = self._pin if path is None else path_arg(path, "path")
        if p is None:
            raise ObjectError(
                _errno.EINVAL, f"unpin {self._where()}", "no path given and not pinned by pin()"
            )
        remove_pin(p, "bpf-prog", f"unpin {self._where()} at {os.fsdecode(p)}", obj_id=self.id)
        if p == self._pin:
            self._pin = None

    # ------------------------------------------------------------------ attach

    def _expect(self, call: str, types: frozenset[ProgramType]) -> str:
        """Check the program type fits ``call``; returns the operation name."""
        op = f"{call} {self._name}"
        if self._type not in types:
            want = " or ".join(sorted(t.name for t in types))
            raise ObjectError(
                _errno.EINVAL,
                op,
                f"{self._where()} has type {self._type.name}; {call} needs {want} "
                f"({_SECTION_HINT[call]})",
            )
        return op

    def _link(self, att: Any, kind: str, target: str) -> Link:
        """The Link for a new attachment (which it releases if the object closed meanwhile)."""
        return Link(self, att, kind, target)

    def _link_create(self, fd: int, target_fd: int, attach_type: int, flags: int = 0) -> int:
        opts = ffi.new(_LINK_OPTS)
        opts.sz = _LINK_OPTS_SZ
        opts.flags = flags
        return int(_ffi.get_lib().bpf_link_create(fd, target_fd, attach_type, opts))

    def attach(self) -> Link:
        """Attach the program where its section says (tracepoints, kprobes, fentry, ...).

        Uses libbpf's auto-attach (bpf_program__attach). The link stays
        attached until :meth:`Link.close` (a ``with`` block) or the object's
        close(), or for good with :meth:`Link.detach`.

        Raises:
            NotSupportedError: the section has no automatic attach point (e.g.
                plain ``SEC("xdp")``, which needs an interface), or the kernel
                lacks the feature (e.g. ``SEC("kprobe/...")`` without kprobes).
            ObjectError: the kernel or libbpf refused; ``.log`` has libbpf's lines.
        """
        op = f"attach {self._name}"
        if self._obj is None:
            raise NotSupportedError(
                _errno.EOPNOTSUPP,
                op,
                "attach() follows the ELF section, which a reopened program does not have; "
                "use an attach_* call",
            )
        prefix = self._section.split("/", 1)[0].split(".", 1)[0]
        if prefix in _KPROBE_SECTIONS:
            why = probe_kind("kprobe")
            if why is not None:
                raise NotSupportedError(_errno.EOPNOTSUPP, op, why)
        if prefix in ("uprobe", "uretprobe", "usdt"):
            why = probe_kind("uprobe")
            if why is not None:
                raise NotSupportedError(_errno.EOPNOTSUPP, op, why)
        with self._using(op), _capture_libbpf_log() as lines:
            ptr = _ffi.get_lib().bpf_program__attach(self._ptr)
            err = ffi.errno
        if ptr == NULL:
            err = err or _errno.EINVAL
            if err in (_errno.EOPNOTSUPP, ENOTSUPP):
                call = _EXPLICIT_CALL.get(self._type)
                hint = f": use {call}" if call else ""
                raise NotSupportedError(
                    err, op, f"libbpf cannot auto-attach SEC({self._section!r}) programs{hint}"
                )
            raise _object_error(err, op, lines)
        kind = _AUTO_KINDS.get(prefix, prefix or "auto")
        return self._link(_KernelLink(ptr=ptr), kind, f"SEC({self._section!r})")

    def attach_xdp(self, iface: str | int, mode: str | None = None) -> Link:
        """Attach an XDP program to a network interface, as a BPF link (Linux 5.9+).

        Args:
            iface: the interface name or ifindex (in the calling thread's
                network namespace).
            mode: None (the driver's native mode if it has one, else
                generic), ``"skb"`` (generic XDP, any interface), ``"drv"``
                (native; fails where the driver lacks it) or ``"hw"``
                (offloaded to the NIC).

        Raises:
            ObjectError: the program is not XDP or not loaded; no such
                interface (ENODEV); the interface has an XDP program already
                (EBUSY/EEXIST, the message says which).
            NotSupportedError: the interface's driver lacks ``mode``.
            MapPermissionError: not root (CAP_NET_ADMIN and CAP_BPF).
        """
        op = self._expect("attach_xdp", _XDP_TYPES)
        if not (mode is None or (isinstance(mode, str) and mode in XDP_MODES)):
            raise arg_error("mode", mode, "expected None, 'skb', 'drv' or 'hw'")
        ifindex, name = ifindex_of(iface, op)
        op = f"attach_xdp {self._name} to {name}"
        with self._using(op) as fd:
            ret = self._link_create(fd, ifindex, AttachType.XDP, XDP_MODES[mode])
        if ret < 0:
            err = -ret
            if err in (_errno.EBUSY, _errno.EEXIST):
                have = xdp_attached(ifindex) or "another one"
                raise ObjectError(
                    err, op, f"{name} already has an XDP program ({have}); detach it first"
                )
            if err in (_errno.EOPNOTSUPP, ENOTSUPP, _errno.EINVAL) and mode in ("drv", "hw"):
                raise NotSupportedError(
                    err, op, f"{name}'s driver has no {mode} mode XDP ({os.strerror(err)})"
                )
            raise os_error(err, op)
        target = f"{name} (ifindex {ifindex})" + (f", {mode} mode" if mode else "")
        return self._link(_KernelLink(ret), "xdp", target)

    def attach_tc(
        self,
        iface: str | int,
        direction: str = "ingress",
        *,
        priority: int = 0,
        handle: int = 0,
    ) -> Link:
        """Attach a tc classifier (SEC("tc")) to an interface's ingress or egress.

        Through netlink, as ``tc filter add ... bpf da`` does (Linux 4.1+;
        libbpf's bpf_tc_* API): a cls_bpf filter in direct-action mode on the
        clsact qdisc. The qdisc is created when the interface has none, and
        then removed again when the last filter this process attached there
        is detached; a qdisc that was there before is left alone. The result
        is not a BPF link: it has no fd and cannot be pinned; close() and
        detach() remove the filter (only while it still runs this program).

        Args:
            iface: interface name or ifindex.
            direction: ``"ingress"`` or ``"egress"``.
            priority: the filter priority, 1-65535 (0: the kernel picks).
            handle: the filter handle (0: the kernel picks).

        Raises:
            ObjectError: not SCHED_CLS, not loaded; no such interface (ENODEV);
                a filter with that priority and handle exists (EEXIST).
            MapPermissionError: not root (CAP_NET_ADMIN).
        """
        op = self._expect("attach_tc", _TC_TYPES)
        if not isinstance(direction, str) or direction not in _TC_DIRECTIONS:
            raise arg_error("direction", direction, "expected 'ingress' or 'egress'")
        int_arg(priority, "priority", 0, 0xFFFF)
        int_arg(handle, "handle", 0, 0xFFFFFFFF)
        ifindex, name = ifindex_of(iface, op)
        where = f"{name} {direction}"
        op = f"attach_tc {self._name} to {where}"
        hook = ffi.new("struct bpf_tc_hook *")
        hook.sz = ffi.sizeof("struct bpf_tc_hook")
        hook.ifindex = ifindex
        hook.attach_point = _TC_DIRECTIONS[direction]
        opts = ffi.new("struct bpf_tc_opts *")
        opts.sz = ffi.sizeof("struct bpf_tc_opts")
        opts.handle = handle
        opts.priority = priority
        # The filter lives in this thread's network namespace: it is removed
        # there, whichever thread lets go of the Link (see _TcFilter).
        ns = open_netns()
        try:
            key = TcHooks.key(ifindex, ns)
            with self._using(op) as fd:
                TcHooks.acquire(hook, key, op, name)
                try:
                    opts.prog_fd = fd
                    with _capture_libbpf_log(drop=True) as lines:
                        ret = int(_ffi.get_lib().bpf_tc_attach(hook, opts))
                    if ret < 0:
                        err = -ret
                        if err == _errno.EEXIST:
                            raise ObjectError(
                                err,
                                op,
                                f"{where} already has a tc filter at priority {priority} "
                                f"handle {handle:#x}",
                                log="\n".join(lines),
                            )
                        raise os_error(err, op, log="\n".join(lines))
                except BaseException:
                    TcHooks.release(hook, key)
                    raise
        except BaseException:
            if ns >= 0:
                os.close(ns)
            raise
        opts.prog_fd = 0
        target = (
            f"{name} (ifindex {ifindex}) {direction}, priority {int(opts.priority)}, "
            f"handle {int(opts.handle):#x}"
        )
        return self._link(_TcFilter(hook, key, opts, ns), "tc", target)

    def attach_cgroup(
        self, path: str | os.PathLike[str], *, attach_type: AttachType | None = None
    ) -> Link:
        """Attach a cgroup program to a cgroup v2 directory, as a BPF link (Linux 5.7+).

        Takes cgroup_skb, cgroup_sock, cgroup_sock_addr, sock_ops,
        cgroup_device, cgroup_sysctl and cgroup_sockopt programs; it runs for
        the processes of the cgroup and its descendants.

        Args:
            path: the cgroup's directory, e.g. ``/sys/fs/cgroup/unified/app``.
            attach_type: where in the cgroup (e.g.
                ``AttachType.CGROUP_INET_EGRESS``). Default: what the section
                says (``SEC("cgroup_skb/egress")``); required for a reopened
                program whose type has several.

        Raises:
            ObjectError: the type does not fit; no such directory (ENOENT);
                not a cgroup v2 directory (EBADF).
            MapPermissionError: not root.
        """
        op = self._expect("attach_cgroup", frozenset(_CGROUP_ATTACH))
        allowed = _CGROUP_ATTACH[self._type]
        if attach_type is None:
            if self._obj is not None:
                with self._guard():
                    at = AttachType(_ffi.get_lib().bpf_program__expected_attach_type(self._ptr))
            elif len(allowed) == 1:
                (at,) = allowed
            else:
                raise arg_error(
                    "attach_type",
                    None,
                    f"a reopened {self._type.name} program needs one of "
                    f"{', '.join(sorted(a.name for a in allowed))}",
                )
        else:
            if (
                not isinstance(attach_type, int)
                or isinstance(attach_type, bool)
                or not 0 <= attach_type < 2**32
            ):
                raise arg_error("attach_type", attach_type, "expected a typedmaps.AttachType")
            at = AttachType(attach_type)
        if at not in allowed:
            raise arg_error(
                "attach_type",
                at,
                f"a {self._type.name} program attaches as one of "
                f"{', '.join(sorted(a.name for a in allowed))}",
            )
        p = path_arg(path, "path")
        shown = os.fsdecode(p)
        op = f"attach_cgroup {self._name} to {shown}"
        with self._using(op) as fd:
            try:
                cgfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise ObjectError(_errno.ENOENT, op, f"no cgroup directory {shown}") from None
            except OSError as exc:
                raise os_error(exc.errno or _errno.EIO, op, f"{shown}: {exc.strerror}") from None
            try:
                ret = self._link_create(fd, cgfd, at)
            finally:
                os.close(cgfd)
        if ret < 0:
            err = -ret
            if err == _errno.EBADF:
                raise ObjectError(err, op, f"{shown} is not a cgroup v2 directory")
            raise os_error(err, op)
        return self._link(_KernelLink(ret), "cgroup", f"{shown} ({at.name})")

    def attach_socket(self, sock: socket.socket) -> Link:
        """Attach a socket filter (SEC("socket")) to a socket: SO_ATTACH_BPF (Linux 3.19+).

        The program sees every packet the socket receives; its return value
        is how many bytes to keep (0 drops the packet). The socket holds the
        program: the Link's close()/detach() undo it (SO_DETACH_BPF), and
        closing the socket ends it too. Attaching another program to the
        same socket replaces this one (the earlier Link then removes
        nothing). Not pinnable.

        Raises:
            ObjectError: not a SOCKET_FILTER program, or not loaded.
            ArgumentError: ``sock`` is not an open socket.socket.
        """
        op = self._expect("attach_socket", _SOCKET_TYPES)
        if not isinstance(sock, socket.socket):
            raise arg_error("sock", sock, "expected a socket.socket")
        try:
            sockfd = sock.fileno()
        except OSError:
            sockfd = -1
        if sockfd < 0:
            raise arg_error("sock", sock, "the socket is closed")
        target = f"socket fd {sockfd} ({sock.family.name}, {sock.type.name})"
        op = f"attach_socket {self._name} to {target}"
        with self._using(op) as fd, _SocketFilter.lock:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)
            except OSError as exc:
                raise os_error(exc.errno or _errno.EIO, op) from None
            link = self._link(_SocketFilter(sock), "socket", target)
            _SocketFilter.current[sock] = link
        return link

    def _perf_link(self, pfd: int, op: str, fd: int) -> _KernelLink:
        """A BPF_PERF_EVENT link (Linux 5.15+) on perf event ``pfd``, which it then owns."""
        try:
            ret = self._link_create(fd, pfd, AttachType.PERF_EVENT)
        except BaseException:
            os.close(pfd)
            raise
        if ret < 0:
            os.close(pfd)
            raise os_error(ret, op)
        return _KernelLink(ret, (pfd,))

    def attach_tracepoint(self, category: str, name: str) -> Link:
        """Attach a tracepoint program (SEC("tracepoint/...")) to ``category:name``.

        The tracepoint's id comes from tracefs, which must be mounted (at
        /sys/kernel/tracing or /sys/kernel/debug/tracing). A perf event on
        it carries a BPF link (Linux 5.15+); the program runs for every
        process on every CPU: filter in the program.

        Raises:
            ObjectError: not TRACEPOINT, not loaded; tracefs not mounted or
                no such tracepoint (ENOENT).
        """
        op = self._expect("attach_tracepoint", _TP_TYPES)
        tp_id = tracepoint_id(category, name, f"{op} to {category}:{name}")
        op = f"attach_tracepoint {self._name} to {category}:{name}"
        with self._using(op) as fd:
            pfd = perf_event_open(
                PERF_TYPE_TRACEPOINT, tp_id, sample=1, freq=False, pid=-1, cpu=0, op=op
            )
            att = self._perf_link(pfd, op, fd)
        return self._link(att, "tracepoint", f"{category}:{name}")

    def attach_raw_tracepoint(self, name: str) -> Link:
        """Attach a raw tracepoint program (SEC("raw_tp/...")) to ``name`` (Linux 4.17+).

        Needs no tracefs. The program gets the tracepoint's raw arguments.

        Raises:
            ObjectError: not RAW_TRACEPOINT, not loaded; no such tracepoint (ENOENT).
        """
        op = self._expect("attach_raw_tracepoint", _RAW_TP_TYPES)
        if not isinstance(name, str) or not _RAW_TP_NAME.fullmatch(name):
            raise arg_error("name", name, "a tracepoint name is letters, digits and '_'")
        op = f"attach_raw_tracepoint {self._name} to {name}"
        with self._using(op) as fd:
            ret = int(_ffi.get_lib().bpf_raw_tracepoint_open(name.encode(), fd))
        if ret < 0:
            if -ret == _errno.ENOENT:
                raise ObjectError(-ret, op, f"no tracepoint named {name!r}")
            raise os_error(ret, op)
        return self._link(_KernelLink(ret), "raw_tracepoint", name)

    def attach_perf_event(
        self, *, cpu: int, frequency: int | None = None, period: int | None = None
    ) -> Link:
        """Attach a perf_event program to sampling on one CPU's software CPU clock.

        A perf event (PERF_COUNT_SW_CPU_CLOCK, every process on ``cpu``) runs
        the program at each sample, through a BPF link (Linux 5.15+). The
        Link owns the perf event.

        Args:
            cpu: the CPU to sample.
            frequency: samples per second (limited by
                /proc/sys/kernel/perf_event_max_sample_rate), or
            period: nanoseconds of CPU clock between samples.

        Raises:
            ArgumentError: not exactly one of frequency and period; a bad CPU.
            ObjectError: not PERF_EVENT, not loaded, or the kernel refused.
        """
        op = self._expect("attach_perf_event", _PERF_TYPES)
        int_arg(cpu, "cpu", 0, _ffi.num_possible_cpus() - 1)
        if (frequency is None) == (period is None):
            raise arg_error("frequency", frequency, "give exactly one of frequency= and period=")
        if frequency is not None:
            sample = int_arg(frequency, "frequency", 1, 2**31 - 1)
        else:
            sample = int_arg(period, "period", 1, 2**63 - 1)
        how = f"{frequency} Hz" if frequency is not None else f"every {period} ns"
        target = f"cpu-clock on CPU {cpu}, {how}"
        op = f"attach_perf_event {self._name} to {target}"
        with self._using(op) as fd:
            pfd = perf_event_open(
                PERF_TYPE_SOFTWARE,
                PERF_COUNT_SW_CPU_CLOCK,
                sample=sample,
                freq=frequency is not None,
                pid=-1,
                cpu=cpu,
                op=op,
            )
            att = self._perf_link(pfd, op, fd)
        return self._link(att, "perf_event", target)

    def _probe_ready(self, op: str, kind: str, retprobe: object) -> None:
        """The checks before a u/kprobe: retprobe a bool, an object program, loaded, and
        a kernel that has ``kind`` probes."""
        if not isinstance(retprobe, bool):
            raise arg_error("retprobe", retprobe, "must be a bool")
        if self._obj is None:
            raise NotSupportedError(
                _errno.EOPNOTSUPP,
                op,
                "needs the program's BpfObject (libbpf resolves the probe there); "
                "a reopened program cannot do this",
            )
        self.fd  # noqa: B018 - raises unless loaded
        why = probe_kind(kind)
        if why is not None:
            raise NotSupportedError(_errno.EOPNOTSUPP, op, why)

    def attach_uprobe(
        self,
        binary: str | os.PathLike[str],
        symbol_or_offset: str | int,
        *,
        pid: int = -1,
        retprobe: bool = False,
    ) -> Link:
        """Attach a uprobe program to a function of a user-space binary or library.

        libbpf finds the function in the ELF file (Linux 4.17+ for the
        uprobe PMU; older kernels through tracefs' uprobe_events).

        Args:
            binary: path of the executable or shared library (a bare library
                name such as ``"libc.so.6"`` is looked up as the dynamic
                loader would).
            symbol_or_offset: the function's name, or a byte offset in the file.
            pid: only this process (-1: every process that maps the file).
            retprobe: run at the function's return instead of its entry.

        Raises:
            NotSupportedError: the kernel has no uprobes; a reopened program.
            ObjectError: not a uprobe (KPROBE type) program, not loaded; no
                such file or symbol (ENOENT).
        """
        op = self._expect("attach_uprobe", _PROBE_TYPES)
        b = path_arg(binary, "binary")
        shown = os.fsdecode(b)
        if isinstance(symbol_or_offset, bool) or not isinstance(symbol_or_offset, str | int):
            raise arg_error("symbol_or_offset", symbol_or_offset, "expected a name or an offset")
        if isinstance(symbol_or_offset, str):
            if not symbol_or_offset or "\0" in symbol_or_offset:
                raise arg_error("symbol_or_offset", symbol_or_offset, "empty or has NUL bytes")
            func: str | None = symbol_or_offset
            offset = 0
            what = f"{shown}:{func}"
        else:
            func = None
            offset = int_arg(symbol_or_offset, "symbol_or_offset", 0, 2**63 - 1)
            what = f"{shown}+{offset:#x}"
        int_arg(pid, "pid", -1, 2**31 - 1)
        op = f"attach_uprobe {self._name} to {what}"
        self._probe_ready(op, "uprobe", retprobe)
        if b"/" in b and not os.path.exists(b):
            raise ObjectError(_errno.ENOENT, op, f"no such file {shown}")
        opts = ffi.new("struct bpf_uprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_opts")
        opts.retprobe = retprobe
        # ELF symbol names are bytes: undecodable ones arrive as surrogate escapes.
        cfunc = ffi.new("char[]", func.encode("utf-8", "surrogateescape")) if func else NULL
        opts.func_name = cfunc
        with self._using(op), _capture_libbpf_log() as lines:
            ffi.errno = 0
            lptr = _ffi.get_lib().bpf_program__attach_uprobe_opts(self._ptr, pid, b, offset, opts)
            err = ffi.errno
        if lptr == NULL:
            err = err or _errno.EINVAL
            if err == _errno.ENOENT:
                raise _object_error(
                    err,
                    op,
                    lines,
                    f"no such file, or no function {func!r} in it"
                    if func is not None
                    else "no such file",
                )
            raise _object_error(err, op, lines)
        kind = "uretprobe" if retprobe else "uprobe"
        target = what + ("" if pid == -1 else f" (pid {pid})")
        return self._link(_KernelLink(ptr=lptr), kind, target)

    def attach_kprobe(self, symbol: str, *, retprobe: bool = False) -> Link:
        """Attach a kprobe program to a kernel function's entry (or return).

        The kernel must have kprobes (CONFIG_KPROBE_EVENTS): when it has
        neither the kprobe PMU nor tracefs' kprobe_events, this raises
        :class:`NotSupportedError` saying so, before anything is tried.

        Raises:
            NotSupportedError: the kernel has no kprobes; a reopened program.
            ObjectError: not a KPROBE program, not loaded; no such kernel
                function (ENOENT).
        """
        op = self._expect("attach_kprobe", _PROBE_TYPES)
        if not isinstance(symbol, str) or not symbol or "\0" in symbol or len(symbol) > 511:
            raise arg_error("symbol", symbol, "expected a kernel function name")
        op = f"attach_kprobe {self._name} to {symbol}"
        self._probe_ready(op, "kprobe", retprobe)
        opts = ffi.new("struct bpf_kprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_kprobe_opts")
        opts.retprobe = retprobe
        with self._using(op), _capture_libbpf_log() as lines:
            ffi.errno = 0
            lptr = _ffi.get_lib().bpf_program__attach_kprobe_opts(
                self._ptr, symbol.encode("utf-8", "surrogateescape"), opts
            )
            err = ffi.errno
        if lptr == NULL:
            err = err or _errno.EINVAL
            if err == _errno.ENOENT:
                raise _object_error(err, op, lines, f"no kernel function {symbol!r}")
            raise _object_error(err, op, lines)
        return self._link(_KernelLink(ptr=lptr), "kretprobe" if retprobe else "kprobe", symbol)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close a reopened program's fd (idempotent); links made from it stay.

        A program of a BpfObject closes with its object: this does nothing.
        """
        if self._lt is not None:
            self._lt.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lt = getattr(self, "_lt", None)
        if lt is not None and lt.value >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        if self._obj is None:
            fd = self._lt.value if self._lt is not None else -1
            state = "closed" if fd < 0 else f"fd={fd}"
            return f"Program(name={self._name!r}, type={self._type.name}, reopened, {state})"
        return (
            f"Program(name={self._name!r}, type={self._type.name}, section={self._section!r}, "
            f"{self._obj._state.value})"
        )


def unsupported_program(programs: Iterable[Program]) -> NotSupportedError | None:
    """After a failed load: the error for a program type this kernel cannot load, if any.

    Found by libbpf's feature probe (a minimal program of the type). Only
    types the probe answers "no" for count; a failure it cannot explain
    stays the load's own ObjectError.
    """
    for prog in programs:
        if prog._obj is None or not prog.autoload:
            continue
        if prog_type_supported(prog._type) is False:
            kind = PROGRAM_KINDS.get(prog._type, prog._type.name)
            return NotSupportedError(
                _errno.EOPNOTSUPP,
                f"load {prog._obj._name}",
                f"{prog._where()} (SEC({prog._section!r})) is a {kind} program, and this "
                "kernel cannot load those (libbpf's feature probe says no): set its "
                "autoload = False to load the rest of the object",
            )
    return None


def _run_pinned(run: Any, fd: int, opts: Any, cpu: int, op: str) -> int:
    """Run with the calling thread pinned to ``cpu``; restore its affinity after."""
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise bad(op, "cpu", cpu, f"a CPU in this thread's affinity {sorted(before)}")
    if before == {cpu}:
        return int(run(fd, opts))
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:  # e.g. the CPU went offline since the check
        raise error_from_errno(exc.errno or _errno.EINVAL, f"{op}: pin to CPU {cpu}") from None
    try:
        return int(run(fd, opts))
    finally:
        os.sched_setaffinity(0, before)
