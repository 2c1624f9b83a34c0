"""The cffi ABI-mode binding to the system libbpf: the only module that touches cffi.

``libbpf.so.1`` is opened lazily, once, under a lock, the first time a
caller needs it (``get_lib()``). The declarations live in ``_cdefs.h``.

Everything here is private. cdata and ``Any`` do not leave the package: the
public modules turn results into Python values and errors into the
typedmaps error tree through :func:`check`.

libbpf's own log lines are forwarded to the ``typedmaps.libbpf`` logger
(WARN -> WARNING, INFO -> INFO, DEBUG -> DEBUG).
"""

from __future__ import annotations

import ctypes
import errno
import glob
import logging
import os
import re
import threading
from collections.abc import Iterator
from importlib import resources
from typing import Any, Final

from cffi import FFI

from .errors import (
    LibbpfNotFoundError,
    MapError,
    NotSupportedError,
    PathNotFoundError,
    error_from_errno,
)

__all__ = ["NULL", "check", "ffi", "func", "get_lib", "lib_has", "num_possible_cpus"]

LIBBPF_SONAME: Final = "libbpf.so.1"

# Typed as Any on purpose: cdata is untyped, and keeping it Any here stops
# types-cffi's partial types leaking into the modules that call libbpf.
ffi: Any = FFI()
ffi.cdef(resources.files(__package__).joinpath("_cdefs.h").read_text())
NULL: Final[Any] = ffi.NULL

_lock = threading.Lock()
_lib: Any = None
_libc: Any = None
_ncpus: int | None = None

log = logging.getLogger("typedmaps.libbpf")
# A library never prints by itself: without this, Python's last-resort handler
# would write libbpf's warnings to stderr, and the error that carries them in
# its .log would show them a second time. The application (or the typedmaps
# command line) decides what to show.
logging.getLogger("typedmaps").addHandler(logging.NullHandler())
_LEVELS: Final = (logging.WARNING, logging.INFO, logging.DEBUG)

_INSTALL_HINT: Final = (
    "typedmaps needs the system libbpf 1.x shared library (libbpf.so.1). "
    "Install it with `apt-get install libbpf1` (Debian/Ubuntu), "
    "`dnf install libbpf` (Fedora) or your distribution's libbpf package."
)


def _on_libbpf_print(level: int, fmt: Any, ap: Any) -> int:
    pylevel = _LEVELS[level] if 0 <= level < len(_LEVELS) else logging.DEBUG
    if not log.isEnabledFor(pylevel):
        return 0
    buf = ffi.new("char[]", 2048)
    n = _libc.vsnprintf(buf, 2048, fmt, ap)
    if n < 0:
        return 0
    text = ffi.string(buf).decode("utf-8", "replace").rstrip("\n")
    if text:
        log.log(pylevel, "%s", text)
    return 0


# Kept alive for as long as libbpf may call it (the whole process).
_print_cb: Any = ffi.callback("libbpf_print_fn_t", _on_libbpf_print)


def _library_dirs() -> list[str]:
    """Where the dynamic linker looks, read from files only (no program is run).

    ctypes.util.find_library would run ldconfig, gcc, cc or ld from PATH to
    answer the same question, which a library must never do on import.
    """
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    confs = ["/etc/ld.so.conf"]
    seen: set[str] = set()
    while confs and len(seen) < 256:
        conf = confs.pop()
        if conf in seen:
            continue
        seen.add(conf)
        try:
            with open(conf, encoding="utf-8", errors="replace") as f:
                lines = f.read(1 << 20).splitlines()
        except OSError:
            continue
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if line.startswith("include "):
                pattern = line[len("include ") :].strip()
                if not os.path.isabs(pattern):
                    pattern = os.path.join(os.path.dirname(conf), pattern)
                confs.extend(sorted(glob.glob(pattern)))
            elif line.startswith("/"):
                dirs.append(line)
    triplet = f"{os.uname().machine}-linux-gnu"
    for base in ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"):
        dirs += [os.path.join(base, triplet), base]
    return list(dict.fromkeys(dirs))


def _installed_libbpfs() -> list[str]:
    """Every libbpf.so* file in the linker's directories (for the install hint)."""
    found: list[str] = []
    for d in _library_dirs():
        found += sorted(glob.glob(os.path.join(glob.escape(d), "libbpf.so*")))
    return list(dict.fromkeys(found))


def _open() -> Any:
    global _lib, _libc
    with _lock:
        if _lib is not None:
            return _lib
        try:
            # dlopen(3) through ctypes first: when the library is missing, cffi's
            # own dlopen falls back to ctypes.util.find_library, which runs
            # ldconfig, gcc and ld from PATH. Once this succeeds, cffi's dlopen
            # finds the library loaded already.
            ctypes.CDLL(LIBBPF_SONAME)
            lib = ffi.dlopen(LIBBPF_SONAME)
        except OSError as exc:
            # Other sonames (libbpf.so.0, ...) are other ABI versions.
            others = sorted(
                {
                    name
                    for name in map(os.path.basename, _installed_libbpfs())
                    if re.fullmatch(r"libbpf\.so\.\d+", name) and name != LIBBPF_SONAME
                }
            )
            extra = ""
            if others:
                extra = f" (the system has {', '.join(others[:4])}, another ABI version)"
            raise LibbpfNotFoundError(
                f"cannot load {LIBBPF_SONAME}. {_INSTALL_HINT}{extra}. ({exc})"
            ) from exc
        try:
            lib.libbpf_num_possible_cpus  # noqa: B018 - probe one 1.x symbol
        except AttributeError as exc:
            raise LibbpfNotFoundError(f"{LIBBPF_SONAME} is too old: {_INSTALL_HINT}") from exc
        _libc = ffi.dlopen(None)
        lib.libbpf_set_print(_print_cb)
        _lib = lib
        return lib


def get_lib() -> Any:
    """The dlopen()ed libbpf; opens it on first use (thread-safe)."""
    lib = _lib
    return lib if lib is not None else _open()


def get_libc() -> Any:
    """The C library (for syscalls libbpf has no wrapper for, e.g. perf_event_open)."""
    get_lib()
    return _libc


#: statfs(2) f_type of a bpffs mount.
BPF_FS_MAGIC: Final = 0xCAFE4A11


def fs_magic(path: bytes) -> int:
    """The file system magic (statfs f_type) of ``path``.

    Raises:
        OSError: statfs failed (ENOENT for a missing path, ...).
    """
    get_lib()  # loads libc too
    buf = ffi.new("char[]", 512)
    if _libc.statfs(path, buf) != 0:
        err = ffi.errno or errno.EIO
        raise OSError(err, os.strerror(err), os.fsdecode(path))
    return int(ffi.cast("long *", buf)[0]) & 0xFFFFFFFF


def lib_has(name: str) -> bool:
    """Whether the loaded libbpf exports ``name``."""
    try:
        getattr(get_lib(), name)
    except AttributeError:
        return False
    return True


def func(name: str, operation: str) -> Any:
    """The libbpf function ``name``, or NotSupportedError naming ``operation``."""
    try:
        return getattr(get_lib(), name)
    except AttributeError:
        raise NotSupportedError(
            95, operation, f"the loaded libbpf has no {name}(); a newer libbpf is needed"
        ) from None


def check(ret: int, operation: str, *, einval_unsupported: bool = False, path: bool = False) -> int:
    """The one error checkpoint: a negative libbpf return becomes a named error.

    ``path=True`` for operations on bpffs paths, where ENOENT means "no such
    file" (:class:`PathNotFoundError`, also a FileNotFoundError), not "key
    not found".
    """
    if ret < 0:
        if path and ret == -errno.ENOENT:
            raise PathNotFoundError(errno.ENOENT, operation, os.strerror(errno.ENOENT))
        raise error_from_errno(
            ret,
            operation,
            einval_unsupported=einval_unsupported,
            detail=os.strerror(-ret) if path else None,
        )
    return ret


def check_ptr(ptr: Any, operation: str) -> Any:
    """For libbpf calls that return NULL and set errno."""
    if ptr == NULL:
        raise last_errno_error(operation)
    return ptr


#: libbpf's own error codes (LIBBPF_ERRNO__FORMAT, ...) start here; they
#: have no text in libc, but libbpf_strerror() knows them.
_LIBBPF_ERRNO_START: Final = 4000


def last_errno_error(operation: str) -> MapError:
    """The named error for the errno a libbpf call left behind (EINVAL if none)."""
    err = ffi.errno or 22
    detail = None
    if err >= _LIBBPF_ERRNO_START:
        buf = ffi.new("char[]", 256)
        if get_lib().libbpf_strerror(err, buf, 256) == 0:
            detail = ffi.string(buf).decode("utf-8", "replace")
    return error_from_errno(err, operation, detail=detail)


def map_ids() -> Iterator[int]:
    """Every map id in the kernel, ascending (BPF_MAP_GET_NEXT_ID; needs CAP_SYS_ADMIN)."""
    get_next = get_lib().bpf_map_get_next_id
    nxt = ffi.new("__u32 *")
    cur = 0
    while True:
        ret = get_next(cur, nxt)
        if ret == -errno.ENOENT:  # no map with a larger id
            return
        check(ret, "list maps")
        cur = int(nxt[0])
        yield cur


def btf_raw(source: str, arg: int | bytes, operation: str) -> bytes:
    """The raw BTF bytes libbpf loads from ``source``, validated by libbpf.

    Args:
        source: ``"kernel"`` (``arg`` is a BTF object id), ``"file"`` (``arg``
            is an fs-encoded path: ELF object or raw BTF) or ``"bytes"``
            (``arg`` is a raw BTF blob to validate).

    The ``struct btf`` is freed before returning, also on error.
    """
    lib = get_lib()
    ffi.errno = 0
    if source == "kernel":
        ptr = lib.btf__load_from_kernel_by_id(arg)
    elif source == "file":
        ptr = lib.btf__parse(arg, NULL)
    elif source == "bytes":
        assert isinstance(arg, bytes)
        ptr = lib.btf__new(arg, len(arg))
    else:
        raise ValueError(f"unknown BTF source {source!r}")
    if ptr == NULL:
        err = ffi.errno or errno.EINVAL
        if source == "file" and err == errno.ENOENT:
            raise PathNotFoundError(err, operation, os.strerror(err))
        raise error_from_errno(err, operation, detail=os.strerror(err))
    try:
        size = ffi.new("__u32 *")
        data = lib.btf__raw_data(ptr, size)
        if data == NULL:
            err = ffi.errno or errno.ENOMEM
            raise error_from_errno(err, operation, detail=os.strerror(err))
        return bytes(ffi.buffer(data, size[0]))
    finally:
        lib.btf__free(ptr)


def libbpf_version() -> str:
    """The loaded libbpf's version, e.g. ``"v1.1"`` (``libbpf_version_string()``)."""
    return str(ffi.string(get_lib().libbpf_version_string()).decode("ascii", "replace"))


def num_possible_cpus() -> int:
    """How many CPUs the kernel could ever bring up (per-CPU maps have a slot for each)."""
    global _ncpus
    n = _ncpus
    if n is None:
        n = check(get_lib().libbpf_num_possible_cpus(), "num_possible_cpus")
        _ncpus = n
    return n
