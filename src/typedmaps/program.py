"""Programs of a BPF object: Program (load state, test_run, attach) and Link."""

from __future__ import annotations

import contextlib
import errno as _errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from . import _ffi
from ._ffi import NULL, ffi
from ._life import Lifetime, NoCopy
from ._objbase import _bytes_arg, _capture_libbpf_log, _cstr, _object_error, _State, _u32
from .errors import (
    ENOTSUPP,
    CodecError,
    MapClosedError,
    NotSupportedError,
    ObjectError,
    error_from_errno,
)
from .flags import ProgramType

if TYPE_CHECKING:
    from .object import BpfObject

__all__ = ["Link", "Program", "TestRunResult"]

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


class Program(NoCopy):
    """A BPF program of a :class:`BpfObject`: ``obj.programs[name]``.

    Attributes name, section and type are known from open() on; ``autoload``
    can be switched off before load. After load: :attr:`fd`,
    :meth:`test_run` and :meth:`attach`.
    """

    __slots__ = (
        "__weakref__",
        "_ctx_out",
        "_name",
        "_needs_packet",
        "_obj",
        "_on_cpu_flag",
        "_ptr",
        "_run_op",
        "_section",
        "_type",
    )

    def __init__(self, _obj: BpfObject, _ptr: Any) -> None:
        """Private: programs come from ``BpfObject.programs``."""
        lib = _ffi.get_lib()
        self._obj = _obj
        self._ptr = _ptr
        self._name = _cstr(lib.bpf_program__name(_ptr)) or ""
        self._section = _cstr(lib.bpf_program__section_name(_ptr)) or ""
        self._type = ProgramType(lib.bpf_program__type(_ptr))
        # decided once per program, not per test run
        self._run_op = f"test_run {self._name}"
        self._needs_packet = self._type in _PACKET_TYPES
        self._ctx_out = self._type not in _NO_CTX_OUT
        self._on_cpu_flag = self._type in _RUN_ON_CPU_FLAG

    @property
    def name(self) -> str:
        """The program's name (its C function name)."""
        return self._name

    @property
    def section(self) -> str:
        """The ELF section, e.g. ``"xdp"`` or ``"raw_tp/sys_enter"``."""
        return self._section

    @property
    def type(self) -> ProgramType:
        """The program type libbpf derived from the section."""
        return self._type

    def _where(self) -> str:
        return f"program {self._name!r} of {self._obj._name!r}"

    def _closed(self) -> MapClosedError:
        return MapClosedError(f"{self._where()} is closed (its BpfObject is closed)")

    def _guard(self) -> contextlib.AbstractContextManager[int]:
        """``with self._guard():`` the object (and this program) stay allocated."""
        return self._obj._lt.using(self._closed)

    @property
    def autoload(self) -> bool:
        """Whether load() loads this program; settable before load."""
        with self._guard():
            return bool(_ffi.get_lib().bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        with self._guard():
            if not isinstance(value, bool):
                raise CodecError("autoload", value, "must be a bool")
            state = self._obj._state
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
        """The program fd (owned by the object; do not close it).

        Raises:
            ObjectError: not loaded (before load(), or autoload=False).
            MapClosedError: the object is closed.
        """
        with self._guard():
            fd = int(_ffi.get_lib().bpf_program__fd(self._ptr))
        if fd < 0:
            state = self._obj._state
            why = (
                "not loaded (autoload=False)"
                if state is _State.LOADED
                else f"not loaded: the object is {state.value}"
            )
            raise ObjectError(_errno.EBADF, self._where(), why)
        return fd

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
            CodecError: bad arguments (checked before the syscall).
            NotSupportedError: the program type cannot be test-run.
            ObjectError: the kernel refused the run (EINVAL: a malformed
                packet or context; ENOSPC: data_size_out too small, the
                program did run).
        """
        # In flight on the object for the whole run: close() from another
        # thread frees nothing (the program fd included) until it returns.
        lt = self._obj._lt
        if lt.enter() < 0:
            raise self._closed()
        try:
            return self._test_run(data_in, repeat, ctx_in, cpu, data_size_out)
        finally:
            lt.leave()

    def _test_run(
        self,
        data_in: bytes,
        repeat: int,
        ctx_in: bytes | None,
        cpu: int | None,
        data_size_out: int | None,
    ) -> TestRunResult:
        fd = self._obj._lib.bpf_program__fd(self._ptr)
        if fd < 0:
            fd = self.fd  # raises the right error
        op = self._run_op
        ptype = self._type
        data = data_in if data_in.__class__ is bytes else _bytes_arg(data_in, "data_in")
        if repeat.__class__ is not int or not 1 <= repeat < 2**31:
            raise CodecError("repeat", repeat, f"{op}: must be an integer in [1, 2**31)")
        if self._needs_packet and len(data) < _ETH_HLEN:
            raise CodecError(
                "data_in",
                data,
                f"{op}: {ptype.name} test runs need a packet of at least "
                f"{_ETH_HLEN} bytes (an Ethernet header), got {len(data)}",
            )
        if data_size_out is None:
            out_size = len(data) + _OUT_HEADROOM if data else 0
        else:
            out_size = _u32(data_size_out, "data_size_out")
        if cpu is not None and (cpu.__class__ is not int or cpu < 0):
            raise CodecError("cpu", cpu, f"{op}: must be a non-negative integer")

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
            ctx = _bytes_arg(ctx_in, "ctx_in")
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

        run = self._obj._lib.bpf_prog_test_run_opts
        if cpu is None:
            ret = run(fd, opts)
        elif self._on_cpu_flag:
            online = _online_cpus()
            if cpu not in online:
                raise CodecError("cpu", cpu, f"{op}: CPU {cpu} is not online {sorted(online)}")
            opts.flags = _BPF_F_TEST_RUN_ON_CPU
            opts.cpu = cpu
            ret = run(fd, opts)
        else:
            ret = _run_pinned(run, fd, opts, cpu, op)

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

    # ------------------------------------------------------------------ attach

    def attach(self) -> Link:
        """Attach the program where its section says (tracepoints, kprobes, fentry, ...).

        Uses libbpf's auto-attach (bpf_program__attach). The link stays
        attached until :meth:`Link.detach`, the end of a ``with`` block, or
        the object's close().

        Raises:
            NotSupportedError: the section has no automatic attach point (e.g.
                plain ``SEC("xdp")``, which needs an interface).
            ObjectError: the kernel or libbpf refused; ``.log`` has libbpf's lines.
        """
        with self._guard():
            self.fd  # noqa: B018 - raises unless loaded
            op = f"attach {self._name}"
            with _capture_libbpf_log() as lines:
                ptr = _ffi.get_lib().bpf_program__attach(self._ptr)
                err = ffi.errno
            if ptr == NULL:
                err = err or _errno.EINVAL
                if err in (_errno.EOPNOTSUPP, ENOTSUPP):
                    raise NotSupportedError(
                        err, op, f"libbpf cannot auto-attach SEC({self._section!r}) programs"
                    )
                raise _object_error(err, op, lines)
            return Link(self, ptr)

    def __repr__(self) -> str:
        return (
            f"Program(name={self._name!r}, type={self._type.name}, section={self._section!r}, "
            f"{self._obj._state.value})"
        )


def _run_pinned(run: Any, fd: int, opts: Any, cpu: int, op: str) -> int:
    """Run with the calling thread pinned to ``cpu``; restore its affinity after."""
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise CodecError(
            "cpu", cpu, f"{op}: CPU {cpu} is not in this thread's affinity {sorted(before)}"
        )
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


# ---------------------------------------------------------------------- Link


class Link(NoCopy):
    """An attached program (a ``struct bpf_link``); detach() or use ``with``.

    The object that made it detaches it on close() at the latest. detach()
    may race any call on the link from another thread: the link is
    destroyed when the last call in flight has left (see ``_life.py``).
    """

    __slots__ = ("__weakref__", "_lt", "_program", "_ptr")

    def __init__(self, _program: Program, _ptr: Any) -> None:
        """Private: links come from :meth:`Program.attach` (with the object guarded).

        The link holds one reference on its object until it is destroyed,
        so the object is freed after its links.
        """
        obj = _program._obj
        self._program = _program
        self._ptr = _ptr
        if obj._lt.enter() < 0:  # the object closed since attach() began
            _ffi.get_lib().bpf_link__destroy(_ptr)
            raise _program._closed()
        self._lt = Lifetime(1, self._destroy)
        obj._links.append(self)

    def _destroy(self) -> None:
        """The release action: runs once, after detach(), when no call uses the link."""
        ptr, self._ptr = self._ptr, NULL
        obj = self._program._obj
        with contextlib.suppress(ValueError):
            obj._links.remove(self)
        try:
            _ffi.get_lib().bpf_link__destroy(ptr)
        finally:
            obj._lt.leave()

    def _detached(self) -> MapClosedError:
        return MapClosedError(f"link of {self._program._where()} is detached")

    @property
    def program(self) -> Program:
        return self._program

    @property
    def attached(self) -> bool:
        return self._lt.value >= 0

    @property
    def fd(self) -> int:
        """The link fd (owned by the link; borrowed: valid until detach()).

        Raises:
            MapClosedError: detached.
        """
        with self._lt.using(self._detached):
            return int(_ffi.get_lib().bpf_link__fd(self._ptr))

    def detach(self) -> None:
        """Detach the program and free the link (idempotent)."""
        lt = getattr(self, "_lt", None)
        if lt is not None:
            lt.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def __del__(self) -> None:
        # Only reachable once the object is unreachable too; its own __del__
        # warns about the missing close().
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"Link(program={self._program.name!r}, {state})"
