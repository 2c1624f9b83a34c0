"""Link: an attached program, its pins, and how it ends.

A :class:`Link` is what every ``Program.attach_*`` call returns. Three kinds
of attachment hide behind it:

* a kernel **BPF link** (XDP, cgroup, tracepoint, raw tracepoint, uprobe,
  kprobe, perf event): an fd of its own, which can be pinned in bpffs and
  reopened by another process with :meth:`Link.from_pinned_path`;
* a **tc filter** made through netlink (``attach_tc``): no fd, not pinnable;
* a **socket filter** (``attach_socket``): set on the socket with
  SO_ATTACH_BPF, undone with SO_DETACH_BPF; not pinnable.

Two ways to let go, on purpose different:

* :meth:`Link.close` (and the end of a ``with`` block, the owning
  BpfObject's close(), garbage collection) releases this handle. A link
  nothing else holds ends with it; a **pinned** link stays attached, which
  is what the pin is for. tc and socket filters have no kernel handle that
  could keep them, so close() removes them. A BpfObject keeps the Links of
  its programs (it closes them), so a dropped one stays attached until the
  object closes; Links without an object end when they are garbage.
* :meth:`Link.detach` ends the attachment for good, pinned or not: it uses
  the kernel's BPF_LINK_DETACH where the link type has it (XDP, cgroup,
  netns, tcx; Linux 5.9+), removes the pin this Link made or was opened
  from, releases its fds, and for link types without BPF_LINK_DETACH
  (tracepoints, raw tracepoints, perf events, uprobes) waits until the
  kernel has let the link go. If another process still holds an fd or a
  pin of it, :class:`ObjectError` says so.

Thread safety: close() and detach() may race any call on the link from
another thread (the in-flight accounting of ``_life.py``): a call either
completes on the link's fd or raises MapClosedError, and the fds are closed
(or the filter removed) when the last call in flight has left. pin(),
unpin() and detach() are serialised by the link's lock.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from . import _ffi
from ._attach import (
    TcHooks,
    arg_error,
    bpf_obj_get,
    in_netns,
    link_gone,
    os_error,
    path_arg,
    remove_pin,
)
from ._ffi import NULL, ffi
from ._life import Lifetime, NoCopy
from .errors import ENOTSUPP, MapClosedError, NotSupportedError, ObjectError
from .flags import AttachType, LinkType

if TYPE_CHECKING:
    from .program import Program

__all__ = ["Link", "LinkInfo"]

SO_ATTACH_BPF: Final = 50
SO_DETACH_BPF: Final = 27  # the same number as SO_DETACH_FILTER


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What the kernel says about a BPF link (BPF_OBJ_GET_INFO_BY_FD).

    Attributes:
        id: the link's id (``bpftool link show id N``).
        type: the kernel link type (XDP, CGROUP, PERF_EVENT, ...).
        prog_id: the id of the program it runs.
    """

    id: int
    type: LinkType
    prog_id: int


# ---------------------------------------------------------------------- attachments


class _Attachment:
    """What a Link holds; subclasses say how it is released."""

    __slots__ = ()

    def release(self, link: Link | None) -> None:
        """Let go of it (once): close our fds, or remove a filter that has no fd."""
        raise NotImplementedError


class _KernelLink(_Attachment):
    """A kernel BPF link: our own fds, or a libbpf ``struct bpf_link``."""

    __slots__ = ("_extra", "_fd", "_ptr")

    def __init__(self, fd: int = -1, extra: tuple[int, ...] = (), ptr: Any = NULL) -> None:
        self._fd = fd
        self._extra = extra  # fds that live as long as the link fd (a perf event)
        self._ptr = ptr

    def fd(self) -> int:
        if self._ptr != NULL:
            return int(_ffi.get_lib().bpf_link__fd(self._ptr))
        return self._fd

    def release(self, link: Link | None = None) -> None:
        ptr, self._ptr = self._ptr, NULL
        if ptr != NULL:
            _ffi.get_lib().bpf_link__destroy(ptr)
            return
        fd, self._fd = self._fd, -1
        extra, self._extra = self._extra, ()
        for f in (fd, *extra):
            if f >= 0:
                os.close(f)

    def raw_info(self) -> Any:
        buf = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        ret = _ffi.get_lib().bpf_obj_get_info_by_fd(self.fd(), buf, size)
        if ret < 0:
            raise os_error(ret, "link info")
        return buf

    def info(self) -> LinkInfo:
        buf = self.raw_info()
        return LinkInfo(int(buf.id), LinkType(buf.type), int(buf.prog_id))


def _describe_target(att: _KernelLink, info: LinkInfo) -> str:
    """Where a reopened link is attached, as far as its link info tells."""
    extra = att.raw_info().extra
    if info.type is LinkType.XDP:
        ifindex = int(extra[0]) & 0xFFFFFFFF
        try:
            return f"{socket.if_indextoname(ifindex)} (ifindex {ifindex})"
        except OSError:
            return f"ifindex {ifindex}"
    if info.type is LinkType.CGROUP:
        return f"cgroup id {int(extra[0])} ({AttachType(int(extra[1]) & 0xFFFFFFFF).name})"
    return f"link id {info.id}"


class _TcFilter(_Attachment):
    """A cls_bpf filter in direct-action mode on a clsact hook (netlink, no fd).

    It lives in the network namespace the attaching thread was in; ``ns`` is
    an fd of that namespace, so that the filter is removed there whichever
    thread (in whichever namespace) lets go of it. The fd keeps the namespace
    alive until then.
    """

    __slots__ = ("_hook", "_key", "_ns", "_opts")

    def __init__(self, hook: Any, key: tuple[int, int, int], opts: Any, ns: int) -> None:
        self._hook = hook
        self._key = key
        self._opts = opts  # handle, priority, prog_id as the kernel assigned them
        self._ns = ns

    def release(self, link: Link | None = None) -> None:
        hook, self._hook = self._hook, None
        if hook is None:
            return
        ns, self._ns = self._ns, -1
        try:
            in_netns(ns, lambda: self._remove(hook), "detach tc filter")
        finally:
            if ns >= 0:
                os.close(ns)

    def _remove(self, hook: Any) -> None:
        """Remove the filter (in its namespace), and the qdisc if it was ours and is unused."""
        lib = _ffi.get_lib()
        try:
            q = ffi.new("struct bpf_tc_opts *")
            q.sz = ffi.sizeof("struct bpf_tc_opts")
            q.handle = self._opts.handle
            q.priority = self._opts.priority
            # Remove the filter only while it still runs our program: someone may
            # have replaced or removed it meanwhile.
            if lib.bpf_tc_query(hook, q) == 0 and q.prog_id == self._opts.prog_id:
                d = ffi.new("struct bpf_tc_opts *")
                d.sz = ffi.sizeof("struct bpf_tc_opts")
                d.handle = self._opts.handle
                d.priority = self._opts.priority
                ret = int(lib.bpf_tc_detach(hook, d))
                if ret < 0 and -ret not in (_errno.ENOENT, _errno.ENODEV, _errno.EINVAL):
                    raise os_error(ret, "detach tc filter")
        finally:
            TcHooks.release(hook, self._key)


class _SocketFilter(_Attachment):
    """SO_ATTACH_BPF on a socket; the socket, not us, holds the program."""

    __slots__ = ("_sock",)
    #: socket -> the Link whose program it runs now (a later attach replaces it)
    current: Final[weakref.WeakKeyDictionary[socket.socket, Link]] = weakref.WeakKeyDictionary()
    lock: Final = threading.Lock()

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock

    def release(self, link: Link | None = None) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with _SocketFilter.lock:
            if _SocketFilter.current.get(sock) is not link:
                return  # replaced by a later attach_socket: that one owns the filter now
            _SocketFilter.current.pop(sock, None)
            if sock.fileno() < 0:
                return  # the socket is closed: nothing runs there any more
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
            except OSError as exc:
                if exc.errno != _errno.ENOENT:  # no filter: someone detached it
                    raise os_error(exc.errno or _errno.EIO, "detach socket filter") from None


# ---------------------------------------------------------------------- Link


class Link(NoCopy):
    """An attached program; see the module docs for close() versus detach().

    Get one from a ``Program.attach_*`` call or :meth:`from_pinned_path`;
    never construct it directly. A context manager: the ``with`` block
    closes it. close() and detach() may race any call on the link from
    another thread: what the Link holds is released when the last call in
    flight has left (see ``_life.py``).
    """

    __slots__ = (
        "__weakref__",
        "_att",
        "_kind",
        "_lock",
        "_lt",
        "_obj",
        "_pin",
        "_program",
        "_target",
    )

    def __init__(
        self, _program: Program | None, _att: _Attachment, _kind: str, _target: str
    ) -> None:
        """Private: links come from ``Program.attach_*`` and :meth:`from_pinned_path`.

        A link made from a program of a BpfObject holds one reference on the
        object until it is released, so the object is freed after its links;
        if the object closed while the attach ran, the attachment is
        released again and MapClosedError raised.
        """
        obj = _program._obj if _program is not None else None
        if obj is not None and obj._lt.enter() < 0:
            _att.release(None)
            assert _program is not None
            raise _program._closed()
        self._obj = obj
        self._program = _program
        self._att = _att
        self._kind = _kind
        self._target = _target
        self._pin: bytes | None = None
        self._lock = threading.Lock()  # pin state, and detach()'s steps
        self._lt = Lifetime(1, self._release)
        if obj is not None:
            obj._links.append(self)

    def _release(self) -> None:
        """The release action: runs once, after close()/detach(), when no call uses the link."""
        try:
            self._att.release(self)
        finally:
            obj = self._obj
            if obj is not None:
                with contextlib.suppress(ValueError):
                    obj._links.remove(self)
                obj._lt.leave()

    def _closed_error(self) -> MapClosedError:
        return MapClosedError(f"{self._describe()} is closed")

    # ------------------------------------------------------------------ reopening

    @classmethod
    def from_pinned_path(cls, path: str | os.PathLike[str]) -> Link:
        """Open a link pinned in bpffs (by this or another process).

        The result holds its own fd. :meth:`detach` ends the link and removes
        the pin; :meth:`close` only lets go of it (it stays pinned and
        attached). ``program`` is None: the Link does not know the object.

        Raises:
            PathNotFoundError: nothing is pinned at ``path`` (also a
                FileNotFoundError, errno ENOENT): no such file, or what is
                there cannot be a pin ("not a BPF link: the path is a
                directory" or "is not on a bpffs mount"; checked before the
                syscall).
            ObjectError: the pin is a map or a program, not a link (EINVAL):
                "P is a program, not a link".
            MapPermissionError: the pin's mode or owner refuses this process,
                or it lacks the capability.
        """
        p = path_arg(path, "path")
        op = f"open pinned link {os.fsdecode(p)}"
        fd = bpf_obj_get(p, "bpf-link", op, reopen=True)
        att = _KernelLink(fd)
        try:
            info = att.info()
            target = _describe_target(att, info)
        except BaseException:
            att.release()
            raise
        link = cls(None, att, info.type.name.lower(), target)
        link._pin = p
        return link

    # ------------------------------------------------------------------ attributes

    @property
    def program(self) -> Program | None:
        """The program this link runs (None for a link reopened from a pin)."""
        return self._program

    @property
    def kind(self) -> str:
        """How it was attached: "xdp", "tc", "cgroup", "socket", "tracepoint", ..."""
        return self._kind

    @property
    def target(self) -> str:
        """Where it is attached, e.g. ``"veth0 (ifindex 7), skb mode"``."""
        return self._target

    @property
    def attached(self) -> bool:
        """Whether this Link still holds its attachment (False after close/detach)."""
        return self._lt.value >= 0

    @property
    def pin_path(self) -> str | None:
        """Where this Link pinned it (or was opened from), or None."""
        pin = self._pin
        return None if pin is None else os.fsdecode(pin)

    def _kernel(self, op: str) -> _KernelLink:
        att = self._att
        if not isinstance(att, _KernelLink):
            raise NotSupportedError(
                _errno.EOPNOTSUPP,
                op,
                f"a {self._kind} attachment is not a BPF link: it has no fd and cannot be pinned",
            )
        return att

    @property
    def fd(self) -> int:
        """The link fd (owned by the Link; borrowed: valid until close()/detach()).

        Raises:
            MapClosedError: closed or detached.
            NotSupportedError: tc and socket filters have no link fd.
        """
        with self._lt.using(self._closed_error):
            return self._kernel("fd").fd()

    def info(self) -> LinkInfo:
        """The kernel's view: link id, link type, program id."""
        with self._lt.using(self._closed_error):
            return self._kernel("link info").info()

    @property
    def id(self) -> int:
        """The kernel's link id."""
        return self.info().id

    # ------------------------------------------------------------------ pins

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the link in bpffs: it then outlives this Link, the object and the process.

        The last path component may not contain a dot (bpffs refuses it).

        Raises:
            NotSupportedError: tc and socket filters cannot be pinned.
            ObjectError: already pinned by this Link (unpin first); the
                directory is missing (ENOENT); something is pinned there
                already (EEXIST).
            MapPermissionError: the directory is not on bpffs, or no privilege.
        """
        p = path_arg(path, "path")
        shown = os.fsdecode(p)
        op = f"pin {self._kind} link at {shown}"
        if b"." in os.path.basename(p):
            raise arg_error("path", shown, "bpffs refuses names that contain a dot")
        with self._lock, self._lt.using(self._closed_error):
            att = self._kernel(op)
            if self._pin is not None:
                raise ObjectError(
                    _errno.EBUSY, op, f"already pinned at {self.pin_path}; unpin() first"
                )
            ret = int(_ffi.get_lib().bpf_obj_pin(att.fd(), p))
            if ret < 0:
                err = -ret
                detail = {
                    _errno.ENOENT: f"no directory {os.fsdecode(os.path.dirname(p))}",
                    _errno.EEXIST: f"something is pinned at {shown} already",
                    _errno.EPERM: "not on a bpffs mount (e.g. /sys/fs/bpf), or no privilege",
                }.get(err)
                raise os_error(err, op, detail)
            self._pin = p

    def unpin(self) -> None:
        """Remove the pin this Link made (or was opened from).

        The link stays attached while this Link (or anything else) holds it.

        Raises:
            ObjectError: not pinned (EINVAL), or the pin is gone (ENOENT).
        """
        with self._lock:
            pin = self._pin
            if pin is None:
                raise ObjectError(_errno.EINVAL, f"unpin {self._describe()}", "it is not pinned")
            self._pin = None
            remove_pin(pin, "bpf-link", f"unpin {os.fsdecode(pin)}")

    # ------------------------------------------------------------------ ending

    def detach(self) -> None:
        """End the attachment for good (idempotent); see the module docs.

        Removes the pin this Link made or was opened from.

        Raises:
            ObjectError: the kernel still holds the link through another fd
                or pin (only for link types without BPF_LINK_DETACH); this
                Link is closed all the same.
        """
        op = f"detach {self._describe()}"
        link_id = None
        with self._lock:
            v = self._lt.enter()
            if v < 0:
                return  # closed already
            try:
                pin, self._pin = self._pin, None
                att = self._att
                if isinstance(att, _KernelLink):
                    if pin is not None:
                        # The pin holds a reference: it goes with the link (if it
                        # is still this link's pin: someone may have replaced it).
                        with contextlib.suppress(ObjectError):
                            remove_pin(pin, "bpf-link", op, obj_id=att.info().id)
                    ret = int(_ffi.get_lib().bpf_link_detach(att.fd()))
                    if ret < 0:
                        if -ret not in (_errno.EOPNOTSUPP, ENOTSUPP, _errno.EINVAL):
                            raise os_error(ret, op)
                        # No BPF_LINK_DETACH for this type: it ends with its last reference.
                        link_id = att.info().id
            finally:
                self._lt.leave()
                self._lt.close()  # the release runs now, or when the last call leaves
        # Wait for the kernel only when the fds were closed here; with a call still
        # in flight in another thread, the link ends when that call has left.
        if link_id is not None and self._lt.released and not link_gone(link_id):
            raise ObjectError(
                _errno.EBUSY,
                op,
                f"link id {link_id} has no BPF_LINK_DETACH and is still held by another fd "
                "or pin (another process?); it stays attached until that is closed",
            )

    def close(self) -> None:
        """Release this handle (idempotent): a pinned link stays attached.

        An unpinned link ends with it; tc and socket filters are removed.
        """
        lt = getattr(self, "_lt", None)
        if lt is not None:
            lt.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lt = getattr(self, "_lt", None)
        if lt is not None and lt.value >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()

    def _describe(self) -> str:
        prog = self._program
        who = f" of program {prog.name!r}" if prog is not None else ""
        return f"{self._kind} link{who} on {self._target}"

    def __repr__(self) -> str:
        prog = self._program
        parts = [repr(self._kind)]
        if prog is not None:
            parts.append(f"program={prog.name!r}")
        parts.append(f"target={self._target!r}")
        if self._pin is not None:
            parts.append(f"pinned={self.pin_path!r}")
        parts.append("attached" if self.attached else "closed")
        return f"Link({', '.join(parts)})"
