"""obj.globals: a BPF object's global variables, typed from its BTF, read through memory.

Every global variable of every data section of a :class:`~typedmaps.BpfObject`
(``.data``, ``.bss``, ``.rodata``, custom ``.data.*`` / ``.rodata.*``
sections, and ``.kconfig``) is an attribute of ``obj.globals`` and an item
by its C name::

    obj.globals.sample_rate = 4        # before load: the initial value
    obj.load()
    obj.globals.counter                # after load: the live value, no syscall
    obj.globals["counter"] = 0         # by name (any name, also non-identifiers)
    obj.globals[".bss", "counter"]     # by section and name

Types come from the DATASEC of each section in the object's BTF, through
the same schemas as map values (:mod:`typedmaps.btf`): integers are
``int``, ``_Bool`` is ``bool``, enums are members of an ``IntEnum`` made
from the BTF, ``char`` arrays are ``str`` (or ``bytes`` when not text),
other arrays are lists, structs and unions are construct ``Container``
records (with ``typedmaps gen``'s bound view: the generated dataclasses). A
variable whose type has no schema (a function pointer, a flexible array)
is raw ``bytes`` of its size. ``static`` variables (a function's statics,
``bpf_printk``'s format strings) are not exposed, as bpftool's skeletons do
not expose them: they are no part of the object's interface, and several
may share a name. ``Map.variables()`` still lists them, as bytes.

Values are copies: reading a record or an array gives a snapshot, and
assigning a whole variable writes it (``cfg = g.cfg; cfg.limit = 5;
g.cfg = cfg``), as cilium/ebpf's ``Variable.Get`` / ``Set`` do. Integers
of 1, 2, 4 or 8 bytes at an aligned offset are read and written with one
load or store of their size (what a BPF program sees with a plain access);
larger values are copied byte-wise and may tear against a program that
writes them at the same time, as in C.

Phases:

* before load: reads decode libbpf's initial image of the section, writes
  encode into it (the program starts with those values); ``.kconfig``
  refuses writes (libbpf fills it in at load).
* after load: reads and writes go through an ``mmap`` of each section map
  made by this module (libbpf 1.1's ``bpf_map__initial_value`` is still the
  pre-load image after a plain load). No syscall per access. ``.rodata``,
  ``.rodata.*`` and ``.kconfig`` are frozen by libbpf: they are mapped
  read-only (PROT_READ) and a write raises :class:`MapPermissionError`
  before anything is touched, so no store ever reaches a read-only page.
* after close: every access raises :class:`MapClosedError`.

Every write is encoded first: a value that does not fit raises
:class:`CodecError` and the variable is unchanged. Unknown attribute names
raise AttributeError (a typo never creates a new attribute). There is no
``__getattr__`` on purpose: it would slow every attribute read down by a
third.
"""

from __future__ import annotations

import errno as _errno
import keyword
import logging
import struct
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import construct as cs

from ..btf import Btf, BtfError, FieldSlot, Kind
from ..codec import Codec, make_codec
from ..errors import (
    MapClosedError,
    MapPermissionError,
    ObjectError,
    SizeMismatchError,
)
from ..flags import MapCreateFlags
from ..memory import MapMemory, map_memory

if TYPE_CHECKING:
    from ..object import BpfObject, Map

__all__ = ["Globals", "GlobalsState", "bind_globals"]

log = logging.getLogger("typedmaps")

_RDONLY_PROG: Final = int(MapCreateFlags.RDONLY_PROG)
#: BTF_VAR_STATIC: a ``static`` variable (a bpf_printk format string, a
#: function's static): not part of the object's interface, as in bpftool's
#: skeletons, and free to share its name with others.
_STATIC: Final = 0
#: memoryview cast format of a little-endian (native) int, by (size, signed).
_CASTS: Final = {
    (1, False): "B",
    (1, True): "b",
    (2, False): "H",
    (2, True): "h",
    (4, False): "I",
    (4, True): "i",
    (8, False): "Q",
    (8, True): "q",
}
_NATIVE_LE: Final = sys.byteorder == "little"
_INT_CODES: Final = frozenset("bBhHiIlLqQ")
#: Names the Globals class itself needs; variables with these names are only
#: reachable by item (``g["name"]``).
_RESERVED_PREFIX: Final = "_tm_"


@dataclass(frozen=True, slots=True)
class _Section:
    """One data section map of the object."""

    name: str  # the section name: ".data", ".rodata.custom", ".kconfig"
    map_name: str  # libbpf's map name ("<obj>.data", ".data.custom")
    size: int
    frozen: bool  # read-only after load (.rodata, .rodata.*, .kconfig)
    kconfig: bool


@dataclass(frozen=True, slots=True)
class _Var:
    """One global variable: where it lives and how its bytes become a value."""

    name: str
    section: _Section
    offset: int
    size: int
    codec: Codec[Any]
    cast: str | None  # memoryview format for a one-access aligned integer

    @property
    def readonly_after_load(self) -> bool:
        return self.section.frozen

    def where(self) -> str:
        return f"{self.name!r} (in {self.section.name})"


def _int_cast(codec: Codec[Any], offset: int) -> str | None:
    """The memoryview format that reads this variable in one access, if it is a plain int."""
    s = codec.schema
    while isinstance(s, cs.Renamed):
        s = s.subcon
    if not isinstance(s, cs.FormatField):
        return None
    fmt = s.fmtstr
    order, code = (fmt[0], fmt[1:]) if fmt[:1] in "<>=!@" else ("", fmt)
    if code not in _INT_CODES:
        return None
    size = struct.calcsize("<" + code)
    little = order == "<" or (order in ("=", "@") and _NATIVE_LE) or size == 1
    if not little or not _NATIVE_LE or offset % size:
        return None
    return _CASTS[(size, code.islower())]


class GlobalsState:
    """What every Globals view of one object shares: the variables and the mappings.

    Private: made by ``BpfObject.globals`` on first use; the object calls
    :meth:`loaded` after a successful load and :meth:`closed` on close.
    """

    def __init__(self, obj: BpfObject) -> None:
        self.obj = obj
        self.phase = "open"  # "open" (before load) | "loaded" | "closed"
        self.sections: list[_Section] = []
        self.vars: list[_Var] = []
        self.mems: dict[str, MapMemory] = {}
        self.views: weakref.WeakSet[Globals] = weakref.WeakSet()
        self.main_view: Globals | None = None  # obj.globals
        self._discover()

    # -- the variables -----------------------------------------------------

    def _discover(self) -> None:
        obj = self.obj
        raw = obj._btf_raw()
        if raw is None:
            return
        btf = Btf.parse(raw)
        for map_name, m in obj._maps.items():
            tid = m._info.btf_value_type_id
            if not tid or m.initial_value is None:
                continue
            try:
                sec = btf.get(tid)
            except BtfError:
                continue
            if sec.kind is not Kind.DATASEC:
                continue
            kconfig = sec.name == ".kconfig"
            frozen = kconfig or bool(int(m.map_flags) & _RDONLY_PROG)
            section = _Section(sec.name, map_name, m.value_size, frozen, kconfig)
            self.sections.append(section)
            static = {
                btf.get(m.type_id).name
                for m in sec.members
                if btf.get(m.type_id).kind is Kind.VAR and btf.get(m.type_id).linkage == _STATIC
            }
            for slot in btf.layout(sec, sec.name):
                if isinstance(slot, FieldSlot) and slot.name not in static:
                    var = self._variable(btf, section, slot)
                    if var is not None:
                        self.vars.append(var)

    def _variable(self, btf: Btf, section: _Section, slot: FieldSlot) -> _Var | None:
        path = slot.name
        if slot.offset + slot.size > section.size:
            # The section map was resized before load (Map.value_size): this
            # variable is no longer inside it.
            log.info(
                "global %r (bytes %d..%d) is past the %d-byte %s map: not exposed",
                slot.name,
                slot.offset,
                slot.offset + slot.size,
                section.size,
                section.name,
            )
            return None
        try:
            schema = btf.schema(slot.type_id, path, size=slot.size)
        except (BtfError, SizeMismatchError) as exc:
            log.debug("global %r of %s: %s; exposed as bytes", slot.name, section.name, exc)
            schema = cs.Bytes(slot.size)
        codec = make_codec(schema, path)
        return _Var(
            slot.name, section, slot.offset, slot.size, codec, _int_cast(codec, slot.offset)
        )

    # -- phases ------------------------------------------------------------

    def map_of(self, section: _Section) -> Map:
        return self.obj.maps[section.map_name]  # a fresh Map if the user closed the view

    def memory(self, section: _Section) -> MapMemory:
        mem = self.mems.get(section.name)
        if mem is None:
            m = self.map_of(section)
            with m._using() as fd:  # the mapping takes its own duplicate of the fd
                mem = map_memory(
                    fd,
                    1,
                    section.size,
                    writable=False if section.frozen else None,
                    what=f"section {section.name} of {self.obj.name!r}",
                )
            self.mems[section.name] = mem
        return mem

    def loaded(self) -> None:
        """After a successful load: map every section and switch each view to memory."""
        self.phase = "loaded"
        for view in list(self.views):
            view._tm_rebind()

    def closed(self) -> None:
        """On object close: every view raises MapClosedError; unmap (deferred while in use)."""
        self.phase = "closed"
        for view in list(self.views):
            view._tm_rebind()
        mems, self.mems = self.mems, {}
        for mem in mems.values():
            mem.close()

    def closed_error(self) -> MapClosedError:
        return MapClosedError(f"the globals of BpfObject {self.obj.name!r} are closed")


# ---------------------------------------------------------------------------- accessors

Getter = Callable[[Any], Any]
Setter = Callable[[Any, Any], None]


def _loaded_accessors(state: GlobalsState, var: _Var, codec: Codec[Any]) -> tuple[Getter, Setter]:
    mem = state.memory(var.section)
    view = mem.internal_view()
    off, size = var.offset, var.size
    decode, encode = codec.decode, codec.encode
    closed = state.closed_error
    cast = var.cast if codec is var.codec else None
    items: memoryview[int] | None = None
    if cast is not None:
        whole = view[: size * (len(view) // size)]
        items = whole.cast(cast)  # type: ignore[call-overload]  # one of _CASTS
        mem.register(items)
        index = off // size

        def get_int(_self: Any, items: memoryview[int] = items) -> Any:
            try:
                return items[index]
            except ValueError:
                raise closed() from None

        getter: Getter = get_int
    else:

        def get_any(_self: Any) -> Any:
            try:
                raw = view[off : off + size].tobytes()
            except ValueError:
                raise closed() from None
            return decode(raw)

        getter = get_any

    if var.section.frozen:
        why = (
            "libbpf fills .kconfig in at load; it is read-only"
            if var.section.kconfig
            else f"{var.section.name} is frozen after load (set it before load())"
        )

        def set_frozen(_self: Any, value: Any) -> None:
            encode(value)  # a bad value is a CodecError, as for any write
            raise MapPermissionError(_errno.EPERM, f"set {var.name}", f"{var.where()}: {why}")

        return getter, set_frozen

    def set_live(_self: Any, value: Any) -> None:
        data = encode(value)
        try:
            if items is not None and type(value) is int:
                items[off // size] = value  # one store of the variable's size
            else:
                view[off : off + size] = data
        except ValueError:
            raise closed() from None

    return getter, set_live


def _preload_accessors(state: GlobalsState, var: _Var, codec: Codec[Any]) -> tuple[Getter, Setter]:
    off, size = var.offset, var.size
    decode, encode = codec.decode, codec.encode
    m = state.map_of(var.section)

    def image() -> bytes:
        if state.phase == "closed":
            raise state.closed_error()
        data = m.initial_value
        if data is None or len(data) < off + size:
            raise ObjectError(_errno.EINVAL, f"read {var.name}", "the section has no image")
        return data

    def get_image(_self: Any) -> Any:
        return decode(image()[off : off + size])

    def set_image(_self: Any, value: Any) -> None:
        data = encode(value)
        if var.section.kconfig:
            raise MapPermissionError(
                _errno.EPERM, f"set {var.name}", f"{var.where()}: libbpf fills .kconfig in at load"
            )
        buf = bytearray(image())
        buf[off : off + size] = data
        m.initial_value = bytes(buf)  # ObjectError once the object is past loading

    return get_image, set_image


def _closed_accessors(state: GlobalsState) -> tuple[Getter, Setter]:
    def get_closed(_self: Any) -> Any:
        raise state.closed_error()

    def set_closed(_self: Any, value: Any) -> None:
        raise state.closed_error()

    return get_closed, set_closed


# ---------------------------------------------------------------------------- the view


def _attribute_name(name: str) -> bool:
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith(_RESERVED_PREFIX)
        and not (name.startswith("__") and name.endswith("__"))
    )


class Globals:
    """The global variables of a :class:`~typedmaps.BpfObject`: ``obj.globals``.

    Attributes are the variables (C names that are Python identifiers);
    ``g[name]`` and ``g[section, name]`` reach any of them. ``iter(g)`` gives
    the names, ``len(g)`` their number, ``name in g`` tests one. See the
    module documentation for types, phases and errors.

    Raises (on access):
        MapPermissionError: a write to ``.rodata`` / ``.rodata.*`` after
            load, or to ``.kconfig`` ever.
        CodecError: a value that does not fit the variable's type.
        MapClosedError: the object is closed.
        KeyError / AttributeError: no such variable.
    """

    __slots__ = ("__weakref__", "_tm_attrs", "_tm_by_key", "_tm_get", "_tm_set", "_tm_state")

    _tm_state: GlobalsState
    _tm_attrs: dict[str, _Var]
    _tm_by_key: dict[object, tuple[_Var, Codec[Any]]]
    _tm_get: dict[object, Getter]
    _tm_set: dict[object, Setter]

    def __init__(
        self,
        _state: GlobalsState,
        _names: Mapping[str, str] | None = None,
        _schemas: Mapping[str, cs.Construct[Any, Any]] | None = None,
    ) -> None:
        """Private: use ``obj.globals`` (or a function ``typedmaps gen`` wrote)."""
        self._tm_state = _state
        schemas = dict(_schemas or {})
        by_key: dict[object, tuple[_Var, Codec[Any]]] = {}
        for var in _state.vars:
            codec = var.codec
            override = schemas.pop(var.name, None)
            if override is not None:
                codec = make_codec(override, var.name)
                if codec.size != var.size:
                    raise SizeMismatchError(
                        f"schema {codec.name} of global {var.name!r}", codec.size, var.size
                    )
            by_key[(var.section.name, var.name)] = (var, codec)
            by_key.setdefault(var.name, (var, codec))
        if schemas:
            raise KeyError(f"no such global variable: {', '.join(sorted(schemas))}")
        self._tm_by_key = by_key
        if _names is None:
            attrs = {v.name: v for v in _state.vars if _attribute_name(v.name)}
            for name in list(attrs):
                if by_key[name][0] is not attrs[name]:  # a later section's duplicate
                    attrs[name] = by_key[name][0]
        else:
            attrs = {}
            for attr, cname in _names.items():
                if cname not in by_key:
                    raise KeyError(f"no such global variable: {cname!r}")
                attrs[attr] = by_key[cname][0]
        self._tm_attrs = attrs
        _state.views.add(self)
        self._tm_rebind()

    if TYPE_CHECKING:
        # For mypy only: variables are attributes of a class made per object.
        # At run time there is no __getattr__ (it would slow every read down).
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def _tm_rebind(self) -> None:
        """Give this view the accessors of the object's current phase (its own class)."""
        state = self._tm_state
        getters: dict[object, Getter] = {}
        setters: dict[object, Setter] = {}
        made: dict[int, tuple[Getter, Setter]] = {}
        for key, (var, codec) in self._tm_by_key.items():
            pair = made.get(id(var))
            if pair is None:
                if state.phase == "loaded":
                    pair = _loaded_accessors(state, var, codec)
                elif state.phase == "open":
                    pair = _preload_accessors(state, var, codec)
                else:
                    pair = _closed_accessors(state)
                made[id(var)] = pair
            getters[key], setters[key] = pair
        body: dict[str, Any] = {"__slots__": ()}
        for attr, var in self._tm_attrs.items():
            key = (var.section.name, var.name)
            body[attr] = property(getters[key], setters[key], doc=f"{var.where()}")
        self._tm_get = getters
        self._tm_set = setters
        cls = type("Globals", (Globals,), body)
        cls.__module__ = Globals.__module__
        object.__setattr__(self, "__class__", cls)

    # -- by name ------------------------------------------------------------

    def __getitem__(self, key: str | tuple[str, str]) -> Any:
        try:
            get = self._tm_get[key]
        except (KeyError, TypeError):
            raise KeyError(
                f"{key!r}: no such global variable in {self._tm_state.obj.name!r}"
            ) from None
        return get(self)

    def __setitem__(self, key: str | tuple[str, str], value: Any) -> None:
        try:
            put = self._tm_set[key]
        except (KeyError, TypeError):
            raise KeyError(
                f"{key!r}: no such global variable in {self._tm_state.obj.name!r}"
            ) from None
        put(self, value)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._tm_get
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key in self._tm_by_key:
            if isinstance(key, str) and key not in seen:
                seen.add(key)
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __dir__(self) -> list[str]:
        return sorted(self._tm_attrs)

    def __repr__(self) -> str:
        state = self._tm_state
        sections = ", ".join(s.name for s in state.sections) or "no data sections"
        return (
            f"<Globals of {state.obj.name!r}: {len(state.vars)} variables in {sections}; "
            f"{ {'open': 'before load', 'loaded': 'live', 'closed': 'closed'}[state.phase] }>"
        )

    def __reduce__(self) -> Any:
        raise TypeError("Globals views an object's memory; it cannot be pickled or copied")


def bind_globals(
    obj: BpfObject,
    spec: Mapping[str, tuple[str, cs.Construct[Any, Any]]],
    *,
    loaded: bool,
) -> Globals:
    """A view of ``obj``'s globals with the given attribute names and schemas (``typedmaps gen``).

    The functions ``typedmaps gen`` writes (``globals_of(obj)``,
    ``open_globals_of(obj)``) call this with the module's own names and
    records, so that values come back as the generated types.

    Args:
        obj: the object.
        spec: attribute name -> (C variable name, schema), for every variable
            the view exposes.
        loaded: True: ``obj`` must be loaded (a view of the live variables);
            False: ``obj`` must not be loaded yet (its initial values).

    Raises:
        ObjectError: the object is not in that phase, or it does not match
            the spec (a variable it lacks: errno ENOENT; a schema of another
            size than the variable: EINVAL).
        MapClosedError: the object is closed.
    """
    op = "globals_of" if loaded else "open_globals_of"
    base = obj.globals  # MapClosedError when closed
    state = base._tm_state
    if loaded and state.phase != "loaded":
        raise ObjectError(
            _errno.EBADF, f"{op}({obj.name})", "the object is not loaded: call load() first"
        )
    if not loaded and state.phase != "open":
        raise ObjectError(
            _errno.EBUSY,
            f"{op}({obj.name})",
            "the object is loaded already: its live variables are globals_of()'s",
        )
    names: dict[str, str] = {}
    schemas: dict[str, cs.Construct[Any, Any]] = {}
    for attr, (c_name, schema) in spec.items():
        names[attr] = c_name
        schemas[c_name] = schema
    try:
        return Globals(state, names, schemas)
    except KeyError as exc:
        raise ObjectError(
            _errno.ENOENT,
            f"{op}({obj.name})",
            f"the object does not match the generated module: {exc.args[0]}",
        ) from None
    except SizeMismatchError as exc:
        raise ObjectError(
            _errno.EINVAL,
            f"{op}({obj.name})",
            f"the object does not match the generated module: {exc}",
        ) from None
