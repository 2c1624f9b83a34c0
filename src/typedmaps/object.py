"""BPF object files through libbpf: BpfObject, its Maps, Programs and Links.

Life cycle, as in libbpf and libbpf-rs::

    open ──► configure (pre-load) ──► load() ──► use maps, run/attach programs ──► close()

* :meth:`BpfObject.open` parses an ELF file (a path or bytes). Nothing is in
  the kernel yet. ``obj.maps[name]`` is a :class:`Map` whose shape
  (max_entries, value_size, key_size, map_flags), pin_path, autocreate and
  initial value (``.data``/``.rodata``/``.bss``) can be set, or which can be
  told to :meth:`Map.reuse` an existing kernel map. ``obj.programs[name]`` is
  a :class:`Program` whose ``autoload`` can be switched off.
* :meth:`BpfObject.load` creates the maps and loads the programs. The same
  :class:`Map` objects then work as :class:`MapHandle` (the whole byte-level
  API), and programs can :meth:`Program.test_run` or :meth:`Program.attach`.
* :meth:`BpfObject.close` destroys the links the object made, then closes
  every map and program fd. Maps and programs of a closed object raise
  :class:`MapClosedError`; nothing dangles.

Decisions the issue left open (documented here once):

* One :class:`Map` object per map for the object's whole life, in both
  phases, so ``obj.maps["x"]`` has one static type. Before load its data
  methods raise :class:`ObjectError` ("call load() first"); after load its
  pre-load setters raise :class:`ObjectError` (errno EBUSY, as libbpf says).
* A Map borrows libbpf's fd (it does not dup it): the object owns every fd
  and closing the object closes them all. ``Map.close()`` only retires that
  Python view; ``obj.maps[name]`` then hands out a fresh one.
* Map names are libbpf's names (global-data maps are called
  ``<object>.rodata`` and so on); the section names ``.rodata``, ``.data``,
  ``.bss`` are accepted as aliases.
* libbpf's log lines go to the ``typedmaps.libbpf`` logger as always; while
  open(), load() and attach() run, the WARNING lines of the calling thread are
  also collected and attached to the :class:`ObjectError` they explain
  (``.log``; the verifier log is part of it).
* The bytes given to ``open()`` are copied once and kept until close().

Thread safety: configure and load from one thread. After load, maps behave
like MapHandles and programs may be test-run from several threads at once
(each run pins only its own thread). close() may race any call on the
object, its maps, programs and links: libbpf's object is freed only when
the last call in flight has left (see ``_life.py``).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from . import _ffi, _pins
from . import memory as _memory
from ._args import as_bytes, bad, check_bool, fspath
from ._elf import FORMAT_ERRNO, MAX_OBJECT_SIZE, check_object, read_regular_file
from ._ffi import NULL, ffi
from ._life import UNBOUND, Lifetime, NoCopy
from ._objbase import _bytes_arg, _capture_libbpf_log, _cstr, _object_error, _State, _u32
from .errors import (
    ArgumentError,
    MapClosedError,
    NotSupportedError,
    ObjectError,
    SizeMismatchError,
    TypedMapsError,
)
from .flags import MapCreateFlags, MapType
from .handle import MapHandle, MapInfo, _map_info_for
from .link import Link
from .program import Program, unsupported_program

if TYPE_CHECKING:
    from .typed.globals import Globals, GlobalsState

__all__ = ["BpfObject", "GlobalVariable", "Map"]

_BTF_KIND_DATASEC: Final = 15
#: libbpf keeps an object's name in a char[BPF_OBJ_NAME_LEN].
_OBJ_NAME_LEN: Final = 16


def _check_untrusted(data: bytes, op: str) -> None:
    """The object's ELF structure, .BTF and .BTF.ext, checked before libbpf parses them.

    Raises:
        ObjectError: errno 4001 and what is wrong (malformed BTF included).
    """
    from .btf import BtfError

    try:
        check_object(data, op)
    except BtfError as exc:
        raise ObjectError(FORMAT_ERRNO, op, f"BPF object format invalid: .BTF: {exc}") from None


def _pin_arg(path: object, argument: str, op: str) -> bytes:
    """A pin path: a path without NUL whose last component has no dot (bpffs refuses one)."""
    p = fspath(path, argument, op)
    if b"." in os.path.basename(p):
        raise ArgumentError(
            f"{op}: bpffs refuses names that contain a dot: {os.fsdecode(p)!r}",
            argument=argument,
            value=path,
        )
    return p


_NOT_A_CONSTRUCTOR: Final = (
    "Map.{name}(): a Map belongs to a BpfObject (obj.maps[name]); "
    "use MapHandle.{name}() for a standalone map"
)


@dataclass(frozen=True, slots=True)
class GlobalVariable:
    """Where a global variable lives inside a ``.data``/``.rodata``/``.bss`` map's value.

    Attributes:
        name: the C variable name.
        offset: byte offset inside the section (the map's value).
        size: size in bytes.
    """

    name: str
    offset: int
    size: int


# ---------------------------------------------------------------------- Map


class Map(MapHandle):
    """A map of a :class:`BpfObject`: pre-load settings, then a full :class:`MapHandle`.

    Get one from ``obj.maps[name]``; never construct it directly.

    Before :meth:`BpfObject.load`: the shape and the settings can be changed
    (:attr:`max_entries`, :attr:`value_size`, :attr:`key_size`,
    :attr:`map_flags`, :attr:`pin_path`, :attr:`autocreate`,
    :attr:`initial_value`, :meth:`reuse`); data methods raise
    :class:`ObjectError`.

    After load: every MapHandle method works on libbpf's map fd, which the
    object owns and closes; settings raise :class:`ObjectError` (EBUSY).

    After the object closes: everything raises :class:`MapClosedError`.

    Example::

        with BpfObject.open("build/bpf/flows.bpf.o") as obj:
            obj.maps["flows"].max_entries = 4096
            obj.load()
            for key, value in obj.maps["flows"].lookup_batch():
                ...
    """

    __slots__ = ("_obj", "_objname", "_ptr", "_released")

    _obj: BpfObject

    def __init__(self, _obj: BpfObject, _ptr: Any, _name: str) -> None:
        """Private: maps come from ``BpfObject.maps``.

        A view holds one reference on its object from here until it is
        closed and its last call has left (see _life.py): the object frees
        libbpf's maps only after that.

        Raises:
            MapClosedError: the object is closed (or closing).
        """
        self._obj = _obj
        self._ptr = _ptr
        self._objname = _name
        self._released = False
        self._mem = None
        self._owns_fd = False
        self._lib = _ffi.get_lib()
        if _obj._lt.enter() < 0:
            raise MapClosedError(f"BpfObject {_obj._name!r} is closed")
        # MapHandle's fields, in the "no fd" state (UNBOUND) until the object
        # loads; closing the view gives the object reference back.
        self._lt = Lifetime(UNBOUND, _obj._lt.leave)
        self._calls = self._lt.calls
        self._inner = None
        try:
            with _obj._guard():
                self._inner = self._inner_template()
                self._init_fields(self._libbpf_info())
                if _obj._state is _State.LOADED:
                    self._bind()
        except BaseException:
            self._lt.close()
            raise

    # MapHandle's constructors make handles of fds they own; a Map's fd is its
    # object's. Refuse them up front (before any syscall) instead of failing
    # half-way with an fd nobody closes.

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Self:
        """Not available: use :meth:`MapHandle.create`; Maps come from ``BpfObject.maps``."""
        raise ArgumentError(_NOT_A_CONSTRUCTOR.format(name="create"))

    @classmethod
    def from_pinned_path(cls, *args: Any, **kwargs: Any) -> Self:
        """Not available: use :meth:`MapHandle.from_pinned_path`."""
        raise ArgumentError(_NOT_A_CONSTRUCTOR.format(name="from_pinned_path"))

    @classmethod
    def from_map_id(cls, *args: Any, **kwargs: Any) -> Self:
        """Not available: use :meth:`MapHandle.from_map_id`."""
        raise ArgumentError(_NOT_A_CONSTRUCTOR.format(name="from_map_id"))

    @classmethod
    def from_fd(cls, *args: Any, **kwargs: Any) -> Self:
        """Not available: use :meth:`MapHandle.from_fd`."""
        raise ArgumentError(_NOT_A_CONSTRUCTOR.format(name="from_fd"))

    def _libbpf_info(self) -> MapInfo:
        lib, p = self._lib, self._ptr
        return MapInfo(
            id=0,
            name=self._objname,
            map_type=MapType(lib.bpf_map__type(p)),
            key_size=lib.bpf_map__key_size(p),
            value_size=lib.bpf_map__value_size(p),
            max_entries=lib.bpf_map__max_entries(p),
            map_flags=MapCreateFlags(lib.bpf_map__map_flags(p)),
            btf_id=0,
            btf_key_type_id=lib.bpf_map__btf_key_type_id(p),
            btf_value_type_id=lib.bpf_map__btf_value_type_id(p),
        )

    def _inner_template(self) -> MapInfo | None:
        """The inner-map template of a map of maps, from libbpf (only before load)."""
        lib, p = self._lib, self._ptr
        inner = lib.bpf_map__inner_map(p)
        if inner == NULL:
            return None
        return MapInfo(
            id=0,
            name=_cstr(lib.bpf_map__name(inner)) or "",
            map_type=MapType(lib.bpf_map__type(inner)),
            key_size=lib.bpf_map__key_size(inner),
            value_size=lib.bpf_map__value_size(inner),
            max_entries=lib.bpf_map__max_entries(inner),
            map_flags=MapCreateFlags(lib.bpf_map__map_flags(inner)),
            btf_id=0,
            btf_key_type_id=0,
            btf_value_type_id=0,
        )

    def _bind(self) -> None:
        """After a successful load: become a MapHandle on libbpf's fd (not owned).

        Called with the object guarded. The fields are set before the fd is
        published in the lifetime list (``bind``), so a racing call either
        sees UNBOUND or a complete handle; a view closed meanwhile stays closed.
        """
        fd = self._lib.bpf_map__fd(self._ptr)
        if fd >= 0 and not self._released:
            self._init_fields(_map_info_for(fd, self._where()))
            self._lt.bind(fd)

    # ------------------------------------------------------------------ state

    def _where(self) -> str:
        return f"map {self._objname!r} of {self._obj._name!r}"

    def _unusable(self) -> TypedMapsError:
        """The error for a Map without a usable fd, by phase."""
        state = self._obj._state
        if self._released or state is _State.CLOSED:
            why = "its BpfObject is closed" if state is _State.CLOSED else "close() was called"
            return MapClosedError(f"{self._where()} is closed ({why})")
        if state is _State.OPEN:
            return ObjectError(
                _errno.EBADF, self._where(), "not created yet: call BpfObject.load() first"
            )
        if state is _State.FAILED:
            return ObjectError(_errno.EBADF, self._where(), "the object failed to load")
        return ObjectError(_errno.ENOENT, self._where(), "was not created (autocreate=False)")

    @contextlib.contextmanager
    def _live_ptr(self) -> Iterator[Any]:
        """``with self._live_ptr() as ptr:`` libbpf's bpf_map, kept alive for the block.

        The object is guarded (its close() waits for the block to end before
        freeing anything), and a retired view or closed object raises.
        """
        with self._obj._guard():
            if self._released:
                raise self._unusable()
            yield self._ptr

    def _get(self, call: Any) -> Any:
        """``call(bpf_map *)`` on the live pointer (a libbpf getter)."""
        with self._live_ptr() as ptr:
            return call(ptr)

    @contextlib.contextmanager
    def _preload(self, what: str) -> Iterator[Any]:
        """The bpf_map pointer, if settings may still change; else the right error."""
        with self._live_ptr() as ptr:
            if self._obj._state is not _State.OPEN:
                raise ObjectError(
                    _errno.EBUSY,
                    f"set {what} of {self._where()}",
                    f"the object is {self._obj._state.value}; settings apply before load()",
                )
            if self._lib.bpf_map__fd(ptr) >= 0:
                # Before load only reuse() gives a map an fd. libbpf 1.1 would accept
                # most settings and then ignore them: refuse instead.
                raise ObjectError(
                    _errno.EBUSY,
                    f"set {what} of {self._where()}",
                    "the map reuses an existing kernel map, whose settings are fixed",
                )
            yield ptr

    def _set(self, what: str, call: Any, value: Any) -> None:
        with self._preload(what) as ptr:
            ret = call(ptr, value)
            if ret < 0:
                raise _object_error(ret, f"set {what} of {self._where()}", [])
            self._init_fields(self._libbpf_info())

    @property
    def _loaded(self) -> bool:
        return bool(self._calls[0] >= 0)

    # ------------------------------------------------------------------ attributes

    @property
    def name(self) -> str:
        """The map's name in the object (libbpf's name; the kernel keeps 15 characters)."""
        return self._objname

    @property
    def map_type(self) -> MapType:
        if self._loaded:
            return self._info.map_type
        return MapType(self._get(self._lib.bpf_map__type))

    @property
    def key_size(self) -> int:
        """Key size in bytes; settable before load (libbpf allows it for any map)."""
        if self._loaded:
            return self._key_size
        return int(self._get(self._lib.bpf_map__key_size))

    @key_size.setter
    def key_size(self, size: int) -> None:
        self._set("key_size", self._lib.bpf_map__set_key_size, _u32(size, "key_size"))

    @property
    def value_size(self) -> int:
        """Value size in bytes; settable before load.

        When a size no longer matches the map's BTF type, libbpf creates the
        map without BTF (it logs "Retrying without BTF"). The program is not
        recompiled: a BPF update copies value_size bytes from wherever it
        points, so resize only maps whose programs expect it.
        """
        if self._loaded:
            return self._value_size
        return int(self._get(self._lib.bpf_map__value_size))

    @value_size.setter
    def value_size(self, size: int) -> None:
        self._set("value_size", self._lib.bpf_map__set_value_size, _u32(size, "value_size"))

    @property
    def max_entries(self) -> int:
        """Capacity; settable before load (e.g. ``obj.maps["flows"].max_entries = 4096``)."""
        if self._loaded:
            return self._info.max_entries
        return int(self._get(self._lib.bpf_map__max_entries))

    @max_entries.setter
    def max_entries(self, n: int) -> None:
        self._set("max_entries", self._lib.bpf_map__set_max_entries, _u32(n, "max_entries"))

    @property
    def map_flags(self) -> MapCreateFlags:
        """Creation flags (:class:`MapCreateFlags`); settable before load."""
        if self._loaded:
            return self._info.map_flags
        return MapCreateFlags(self._get(self._lib.bpf_map__map_flags))

    @map_flags.setter
    def map_flags(self, flags: int) -> None:
        self._set("map_flags", self._lib.bpf_map__set_map_flags, _u32(flags, "map_flags"))

    @property
    def id(self) -> int:
        """The kernel's map id; 0 while the map is not created."""
        return self._info.id if self._loaded else 0

    @property
    def autocreate(self) -> bool:
        """Whether load() creates this map (settable before load; libbpf 1.0+).

        A program that uses a map with autocreate=False fails to load unless
        its own ``autoload`` is off too.
        """
        return bool(self._get(self._lib.bpf_map__autocreate))

    @autocreate.setter
    def autocreate(self, value: bool) -> None:
        check_bool(value, "autocreate", f"set autocreate of {self._where()}")
        self._set("autocreate", self._lib.bpf_map__set_autocreate, value)

    @property
    def pin_path(self) -> str | None:
        """Where the map is (or will be) pinned, or None.

        Set before load, load() reuses the map pinned there if one is (its
        type, sizes, max_entries and flags must match) or creates the map and
        pins it there.
        """
        return _cstr(self._get(self._lib.bpf_map__pin_path))

    @pin_path.setter
    def pin_path(self, path: str | os.PathLike[str] | None) -> None:
        if path is None:
            self._set("pin_path", self._lib.bpf_map__set_pin_path, NULL)
            return
        p = _pin_arg(path, "pin_path", f"set pin_path of {self._where()}")
        self._set("pin_path", self._lib.bpf_map__set_pin_path, p)

    @property
    def is_pinned(self) -> bool:
        """Whether libbpf pinned this map (at :attr:`pin_path`)."""
        return bool(self._get(self._lib.bpf_map__is_pinned))

    @property
    def initial_value(self) -> bytes | None:
        """The contents of a global-data map (``.data``, ``.rodata``, ``.bss``), or None.

        Before load: the image load() will write into the map; settable with
        bytes of exactly :attr:`value_size`. After load: libbpf's view of the
        map's memory (for ``.data``/``.bss`` the live values); read-only here,
        update the map (key 0) to change live values.

        Raises:
            SizeMismatchError: on set, bytes of the wrong size.
            NotSupportedError: on set, a map that has no initial value.
        """
        size = ffi.new("size_t *")
        with self._live_ptr() as ptr:
            data = self._lib.bpf_map__initial_value(ptr, size)
            if data == NULL:
                return None
            return bytes(ffi.buffer(data, size[0]))

    @initial_value.setter
    def initial_value(self, value: bytes) -> None:
        what = "initial_value"
        with self._preload(what) as ptr:
            data = _bytes_arg(value, what)
            current = self.initial_value
            if current is None:
                raise NotSupportedError(
                    _errno.EINVAL,
                    f"set {what} of {self._where()}",
                    f"only global-data maps (.data, .rodata, .bss) have one, "
                    f"not {self.map_type.name}",
                )
            if len(data) != len(current):
                raise SizeMismatchError(f"{what} of {self._where()}", len(data), len(current))
            ret = self._lib.bpf_map__set_initial_value(ptr, data, len(data))
            if ret < 0:
                raise _object_error(ret, f"set {what} of {self._where()}", [])

    def variables(self) -> dict[str, GlobalVariable]:
        """The global variables of a ``.data``/``.rodata``/``.bss`` map, by name.

        Read from the object's BTF (the DATASEC of the section), so the
        offsets are the ones the program uses. Empty for other maps.

        Example::

            ro = obj.maps[".rodata"]
            v = ro.variables()["sample_rate"]
            image = bytearray(ro.initial_value or b"")
            image[v.offset : v.offset + v.size] = (4).to_bytes(v.size, "little")
            ro.initial_value = bytes(image)
        """
        with self._live_ptr() as ptr:
            lib = self._lib
            btf = lib.bpf_object__btf(self._obj._ptr)
            type_id = lib.bpf_map__btf_value_type_id(ptr)
            if btf == NULL or not type_id:
                return {}
            t = lib.btf__type_by_id(btf, type_id)
            if t == NULL or (t.info >> 24) & 0x1F != _BTF_KIND_DATASEC:
                return {}
            words = ffi.cast("__u32 *", t)
            out: dict[str, GlobalVariable] = {}
            for i in range(t.info & 0xFFFF):
                var_id, offset, size = (int(words[3 + 3 * i + j]) for j in range(3))
                var = lib.btf__type_by_id(btf, var_id)
                name = _cstr(lib.btf__name_by_offset(btf, var.name_off)) if var != NULL else None
                if name:
                    out[name] = GlobalVariable(name, offset, size)
            return out

    def _object_btf(self) -> bytes | None:
        """The raw BTF of the object this map belongs to, or None if it has none.

        Ring buffers, perf event arrays and other maps the kernel keeps
        without a value type still have their record types in the object.
        """
        ptr = self._obj._ptr
        if self._obj._state is _State.CLOSED or ptr == NULL:
            raise self._unusable()
        btf = self._lib.bpf_object__btf(ptr)
        if btf == NULL:
            return None
        size = ffi.new("__u32 *")
        data = self._lib.btf__raw_data(btf, size)
        if data == NULL:
            return None
        return bytes(ffi.buffer(data, size[0]))

    def set_variable(self, name: str, value: bytes) -> None:
        """Before load: set one global variable inside :attr:`initial_value`.

        Args:
            name: the C variable's name (see :meth:`variables`).
            value: exactly the variable's size in bytes, in the host's byte order.

        Raises:
            KeyError: no such variable in this section.
            SizeMismatchError: ``value`` has the wrong size.
        """
        with self._preload("initial_value"):
            pass
        var = self.variables().get(name)
        if var is None:
            raise KeyError(f"{name!r}: no such variable in {self._where()}")
        data = _bytes_arg(value, name)
        if len(data) != var.size:
            raise SizeMismatchError(f"variable {name!r}", len(data), var.size)
        image = bytearray(self.initial_value or b"")
        image[var.offset : var.offset + var.size] = data
        self.initial_value = bytes(image)

    def reuse(self, source: str | os.PathLike[str] | MapHandle) -> None:
        """Before load: make this map an existing kernel map instead of a new one.

        The program then reads and writes ``source``'s map. Type, key_size and
        value_size must match; max_entries and flags come from ``source``.
        libbpf keeps its own duplicate of the fd, so ``source`` stays the
        caller's to close.

        Args:
            source: a bpffs pin path, or an open MapHandle.

        Raises:
            ObjectError: the maps are incompatible, or the object is loaded.
            KeyNotFoundError: nothing is pinned at the path.
        """
        op = f"reuse for {self._where()}"
        with self._preload("reuse") as ptr:
            if isinstance(source, MapHandle):
                self._reuse_fd(ptr, source, op)
                return
            with MapHandle.from_pinned_path(source) as h:
                self._reuse_fd(ptr, h, op)

    def _reuse_fd(self, ptr: Any, h: MapHandle, op: str) -> None:
        want = (self.map_type, self.key_size, self.value_size)
        have = (h.map_type, h.key_size, h.value_size)
        if want != have:
            raise ObjectError(
                _errno.EINVAL,
                op,
                f"incompatible map: the object wants (type, key_size, value_size) = "
                f"({want[0].name}, {want[1]}, {want[2]}), {h.name!r} has "
                f"({have[0].name}, {have[1]}, {have[2]})",
            )
        # libbpf dups the fd; ours is in flight meanwhile (another thread may close h).
        with h._using() as fd, _capture_libbpf_log() as lines:
            ret = self._lib.bpf_map__reuse_fd(ptr, fd)
        if ret < 0:
            raise _object_error(ret, op, lines)
        self._init_fields(self._libbpf_info())

    def as_libbpf_object(self) -> Any:
        """The ``struct bpf_map *`` cdata, for calling libbpf directly.

        The one documented exception to "no cdata in the public API". Valid
        until the object closes; do not keep it longer.
        """
        with self._live_ptr() as ptr:
            return ptr

    # ------------------------------------------------------------------ pinning

    def pin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Pin the map in bpffs at ``path``, or at :attr:`pin_path` when None.

        Pinning again at the same pin path does nothing.

        Raises:
            KeyExistsError: something else is pinned there.
            ObjectError: no path and no pin_path, or a path that differs from
                the pin_path already set.
        """
        self._open_fd()
        p = NULL if path is None else _pin_arg(path, "path", f"pin {self._where()}")
        shown = os.fsdecode(p) if path is not None else self.pin_path
        if path is None and shown is None:
            raise ObjectError(
                _errno.EINVAL, f"pin {self._where()}", "no path given and no pin_path set"
            )
        # libbpf pins with the map's fd: the view is in flight for the call.
        with self._live_ptr() as ptr, self._using(), _capture_libbpf_log() as lines:
            ret = self._lib.bpf_map__pin(ptr, p)
        if ret == -_errno.EINVAL:
            raise _object_error(ret, f"pin {self._where()} at {shown}", lines)
        _ffi.check(ret, f"pin {shown}", path=True)

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin at ``path`` (default: :attr:`pin_path`).

        Only this map's pin on a bpffs mount is removed: the path is checked
        first, as for :meth:`MapHandle.unpin`.

        Raises:
            PathNotFoundError: nothing is pinned there (also a FileNotFoundError).
            ArgumentError: the path is not this map's BPF pin (a file outside
                bpffs, a directory, another object's pin).
        """
        p = NULL if path is None else fspath(path, "path", f"unpin {self._where()}")
        shown = os.fsdecode(p) if path is not None else self.pin_path
        if shown is None:
            raise ObjectError(
                _errno.EINVAL, f"unpin {self._where()}", "no path given and no pin_path set"
            )
        mine = self.id

        def same_map(fd: int) -> str | None:
            other = _map_info_for(fd, "unpin").id
            if not mine or other == mine:
                return None
            return f"is the pin of map id {other}, not of this map (id {mine})"

        _pins.check_pin(os.fsencode(shown), f"unpin {shown}", "map", same_map)
        with self._live_ptr() as ptr, _capture_libbpf_log() as lines:
            ret = self._lib.bpf_map__unpin(ptr, p)
        if ret == -_errno.EINVAL:
            raise _object_error(ret, f"unpin {self._where()} at {shown}", lines)
        _ffi.check(ret, f"unpin {shown}", path=True)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Retire this view of the map (idempotent).

        The fd belongs to the BpfObject and stays open until the object
        closes; ``obj.maps[name]`` returns a fresh Map afterwards. Calls in
        flight on this view from other threads finish normally.
        """
        self._released = True
        self._pool.clear()
        self._vpool.clear()
        _memory.release(self)
        self._lt.close()

    def _object_closed(self) -> None:
        self._pool.clear()
        self._vpool.clear()
        _memory.release(self)
        self._lt.close()

    def __enter__(self) -> Self:
        self._open_fd()
        return self

    def __repr__(self) -> str:
        state = self._obj._state
        fd = self._calls[0]
        if self._released or state is _State.CLOSED:
            where = "closed"
        elif fd >= 0:
            where = f"fd={fd}"
        else:
            where = state.value if state is not _State.LOADED else "not created"
        i = self._info
        return (
            f"Map(name={self._objname!r}, type={i.map_type.name}, key_size={i.key_size}, "
            f"value_size={i.value_size}, max_entries={i.max_entries}, {where})"
        )


# ---------------------------------------------------------------------- BpfObject


class _Maps(Mapping[str, Map]):
    """``obj.maps``: name -> :class:`Map`; section names alias global-data maps."""

    __slots__ = ("_obj",)

    def __init__(self, obj: BpfObject) -> None:
        self._obj = obj

    def __getitem__(self, name: str) -> Map:
        obj = self._obj
        obj._check_open_object()
        key = obj._map_alias.get(name, name)
        m = obj._maps.get(key)
        if m is None:
            raise KeyError(f"{name!r}: no such map in {obj._name!r} (maps: {', '.join(obj._maps)})")
        if m._released:
            # Under the object's lock, so that close() retires every view it
            # hands out (a view outside obj._maps would hold its reference forever).
            with obj._views_lock:
                m = obj._maps[key]
                if m._released:
                    fresh = Map(obj, m._ptr, key)
                    fresh._inner = m._inner  # libbpf freed its template at load
                    obj._maps[key] = m = fresh
        return m

    def __iter__(self) -> Iterator[str]:
        self._obj._check_open_object()
        return iter(list(self._obj._maps))

    def __len__(self) -> int:
        self._obj._check_open_object()
        return len(self._obj._maps)

    def __repr__(self) -> str:
        return f"<maps of {self._obj._name!r}: {list(self._obj._maps)}>"


class _Programs(Mapping[str, Program]):
    """``obj.programs``: name -> :class:`Program`."""

    __slots__ = ("_obj",)

    def __init__(self, obj: BpfObject) -> None:
        self._obj = obj

    def __getitem__(self, name: str) -> Program:
        obj = self._obj
        obj._check_open_object()
        p = obj._programs.get(name)
        if p is None:
            raise KeyError(
                f"{name!r}: no such program in {obj._name!r} (programs: {', '.join(obj._programs)})"
            )
        return p

    def __iter__(self) -> Iterator[str]:
        self._obj._check_open_object()
        return iter(list(self._obj._programs))

    def __len__(self) -> int:
        self._obj._check_open_object()
        return len(self._obj._programs)

    def __repr__(self) -> str:
        return f"<programs of {self._obj._name!r}: {list(self._obj._programs)}>"


class BpfObject(NoCopy):
    """A BPF ELF object opened with libbpf: its maps and programs.

    Example::

        with tm.BpfObject.open("build/bpf/flows.bpf.o") as obj:
            obj.maps["flows"].max_entries = 4096
            obj.load()
            r = obj.programs["count_flows"].test_run(data_in=packet, cpu=1)
    """

    __slots__ = (
        "__weakref__",
        "_buf",
        "_globals",
        "_lib",
        "_links",
        "_lt",
        "_map_alias",
        "_maps",
        "_maps_view",
        "_name",
        "_programs",
        "_programs_view",
        "_ptr",
        "_state",
        "_views_lock",
    )

    def __init__(self, _ptr: Any, _buf: Any) -> None:
        """Private: use :meth:`open`. Takes over ``_ptr``: frees it on any failure."""
        lib = _ffi.get_lib()
        self._lib = lib
        self._ptr = _ptr
        self._buf = _buf
        # The object's lifetime (see _life.py): every call that uses libbpf's
        # object, maps or programs registers here, and each Map view and
        # Link holds one entry for as long as it is open. bpf_object__close
        # runs when the object is closed and the last of them has left.
        self._lt = Lifetime(1, self._free)
        # Held by load(), close() and the re-creation of map views.
        self._views_lock = threading.Lock()
        self._state = _State.OPEN
        self._name = _cstr(lib.bpf_object__name(_ptr)) or ""
        self._links: list[Link] = []
        self._maps: dict[str, Map] = {}
        self._map_alias: dict[str, str] = {}
        self._programs: dict[str, Program] = {}
        try:
            self._collect()
        except BaseException:
            self.close()
            raise

    def _collect(self) -> None:
        lib, _ptr = self._lib, self._ptr
        size = ffi.new("size_t *")  # libbpf 1.1 writes it unconditionally
        m = lib.bpf_object__next_map(_ptr, NULL)
        while m != NULL:
            name = _cstr(lib.bpf_map__name(m)) or ""
            self._maps[name] = Map(self, m, name)
            if lib.bpf_map__initial_value(m, size) != NULL and "." in name:
                # "<obj>.rodata" is also reachable as ".rodata" (libbpf's real name)
                self._map_alias.setdefault(name[name.index(".") :], name)
            m = lib.bpf_object__next_map(_ptr, m)
        p = lib.bpf_object__next_program(_ptr, NULL)
        while p != NULL:
            prog = Program(self, p)
            self._programs[prog.name] = prog
            p = lib.bpf_object__next_program(_ptr, p)
        self._maps_view = _Maps(self)
        self._programs_view = _Programs(self)
        self._globals: GlobalsState | None = None

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        name: str | None = None,
        pin_root_path: str | os.PathLike[str] | None = None,
    ) -> Self:
        """Open a BPF object file (pre-load phase): a path, or the file's bytes.

        Args:
            source: path of an ELF ``.bpf.o``, or its contents.
            name: the object's name (default: the file name up to the first
                dot; ``"bpf_object"`` for bytes). It prefixes the global-data
                map names (``<name>.rodata``).
            pin_root_path: directory for maps declared with
                ``__uint(pinning, LIBBPF_PIN_BY_NAME)`` (default /sys/fs/bpf).

        Raises:
            ObjectError: the file is unreadable (EACCES ...), not a regular
                file (a FIFO or device: EINVAL, never a wait) or not a valid
                BPF object (errno 4001, "BPF object format invalid: " and the
                rule it breaks, checked before libbpf sees the bytes);
                ``.log`` holds libbpf's explanation where libbpf refused it.
            ObjectFileNotFoundError: the path does not exist (an ObjectError
                and a FileNotFoundError).
            ArgumentError: a bad argument (not a path or bytes, a NUL byte in
                a path, an empty name).
        """
        lib = _ffi.get_lib()
        opts = ffi.new("struct bpf_object_open_opts *")
        opts.sz = ffi.sizeof("struct bpf_object_open_opts")
        keep: list[Any] = []
        is_mem = isinstance(source, bytes | bytearray | memoryview)
        if name is None and is_mem:
            name = "bpf_object"
        if name is not None:
            if not isinstance(name, str) or not name or "\0" in name:
                raise bad("open", "name", name, "a non-empty string without NUL")
            cname = ffi.new("char[]", name.encode())
            keep.append(cname)
            opts.object_name = cname
        if pin_root_path is not None:
            croot = ffi.new("char[]", fspath(pin_root_path, "pin_root_path", "open"))
            keep.append(croot)
            opts.pin_root_path = croot
        if isinstance(source, bytes | bytearray | memoryview):
            data = as_bytes(source, "source", "open")
            op = f"open {len(data)} bytes"
            if not data:
                raise ObjectError(_errno.EINVAL, op, "empty buffer: not a BPF object")
        elif isinstance(source, str | os.PathLike):
            path = fspath(source, "source", "open")
            op = f"open {os.fsdecode(path)}"
            # Read once, without blocking (no FIFO or device), and hand libbpf
            # exactly the bytes that were checked: the file cannot change
            # between the check and the parse.
            data = read_regular_file(path, op, MAX_OBJECT_SIZE)
            if name is None:
                # libbpf's own default: the file name, cut to 15 bytes, then at a dot
                base = os.path.basename(path)[: _OBJ_NAME_LEN - 1].split(b".", 1)[0]
                cname = ffi.new("char[]", base)
                keep.append(cname)
                opts.object_name = cname
        else:
            raise bad("open", "source", source, "a path or the bytes of a BPF object file")
        _check_untrusted(data, op)
        # A copy libbpf may point into; kept alive until close().
        buf: Any = ffi.new("char[]", data)
        with _capture_libbpf_log() as lines:
            ptr = lib.bpf_object__open_mem(buf, len(data), opts)
            err = ffi.errno
        if ptr == NULL:
            raise _object_error(err, op, lines)
        return cls(ptr, buf)

    # ------------------------------------------------------------------ attributes

    @property
    def name(self) -> str:
        """The object's name (prefix of its global-data map names)."""
        return self._name

    @property
    def loaded(self) -> bool:
        """Whether load() succeeded (False again after close())."""
        return self._state is _State.LOADED

    @property
    def closed(self) -> bool:
        return self._lt.value < 0

    @property
    def maps(self) -> Mapping[str, Map]:
        """The object's maps by name; ``.rodata``, ``.data``, ``.bss`` also work.

        Raises (on access):
            MapClosedError: the object is closed.
        """
        self._check_open_object()
        return self._maps_view

    @property
    def programs(self) -> Mapping[str, Program]:
        """The object's programs by name (the C function names)."""
        self._check_open_object()
        return self._programs_view

    @property
    def globals(self) -> Globals:
        """The object's global variables, typed from its BTF: ``obj.globals.counter``.

        Every variable of ``.data``, ``.bss``, ``.rodata``, custom
        ``.data.*``/``.rodata.*`` sections and ``.kconfig``, by attribute
        and by name (``obj.globals["counter"]``). Before load, reads and
        writes go to the initial values the program will start with; after
        load, to the live variables through a memory mapping of each
        section (no syscall). ``.rodata`` and ``.kconfig`` are read-only
        once loaded (:class:`MapPermissionError`). See
        :mod:`typedmaps.typed.globals`.

        Raises (on access):
            MapClosedError: the object is closed.
        """
        state = self._globals
        if state is not None and state.main_view is not None and state.phase != "closed":
            return state.main_view
        self._check_open_object()
        if state is None:
            from .typed.globals import GlobalsState

            state = GlobalsState(self)
            if self._state is _State.LOADED:
                state.phase = "loaded"
            self._globals = state
        from .typed.globals import Globals

        view = Globals(state)
        state.main_view = view
        return view

    def _btf_raw(self) -> bytes | None:
        """The raw bytes of libbpf's BTF of this object (fixed up at open), or None."""
        lib = self._lib
        with self._guard():  # libbpf frees the BTF with the object
            btf = lib.bpf_object__btf(self._ptr)
            if btf == NULL:
                return None
            size = ffi.new("__u32 *")
            data = lib.btf__raw_data(btf, size)
            if data == NULL:
                return None
            return bytes(ffi.buffer(data, size[0]))

    def _check_open_object(self) -> None:
        if self._lt.value < 0:
            raise self._closed_error()

    def _closed_error(self) -> MapClosedError:
        return MapClosedError(f"BpfObject {self._name!r} is closed")

    def _guard(self) -> contextlib.AbstractContextManager[int]:
        """``with obj._guard():`` libbpf's object stays allocated for the block.

        Raises:
            MapClosedError: the object is closed.
        """
        return self._lt.using(self._closed_error)

    def _free(self) -> None:
        """The release action: runs once, after close(), when nothing uses the object."""
        ptr, self._ptr = self._ptr, NULL
        self._lib.bpf_object__close(ptr)
        self._buf = None

    # ------------------------------------------------------------------ load, close

    def load(self) -> None:
        """Create the maps and load the programs into the kernel.

        Raises:
            ObjectError: the kernel refused a map or a program. For a verifier
                rejection ``.log`` holds libbpf's lines including the verifier
                log, whose end is also in the message. A failed object cannot
                be loaded again: close it and open a new one.
            MapClosedError: the object is closed.
        """
        op = f"load {self._name}"
        with self._guard(), self._views_lock:
            if self._state is not _State.OPEN:
                raise ObjectError(_errno.EBUSY, op, f"the object is {self._state.value}")
            with _capture_libbpf_log() as lines:
                ret = self._lib.bpf_object__load(self._ptr)
            if ret < 0:
                self._state = _State.FAILED
                raise unsupported_program(self._programs.values()) or _object_error(ret, op, lines)
            self._state = _State.LOADED
            for m in self._maps.values():
                m._bind()
        if self._globals is not None:
            self._globals.loaded()

    def close(self) -> None:
        """Close the links made from its programs, then every map and program fd (idempotent).

        A pinned link stays attached (see :meth:`Link.close`).

        May race any call on the object, its maps, programs and links from
        other threads: those calls finish (or raise MapClosedError), and
        libbpf frees the object (bpf_object__close) when the last of them
        has left.
        """
        lt = getattr(self, "_lt", None)
        if lt is None:
            return
        with self._views_lock:
            self._state = _State.CLOSED
            lt.close()
            views = list(self._maps.values())
        for link in list(self._links):
            link.close()
        if self._globals is not None:
            self._globals.closed()
        for m in views:
            m._object_closed()

    def __enter__(self) -> Self:
        self._check_open_object()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lt = getattr(self, "_lt", None)
        if lt is not None and lt.value >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        return (
            f"BpfObject(name={self._name!r}, {self._state.value}, maps={list(self._maps)}, "
            f"programs={list(self._programs)})"
        )
