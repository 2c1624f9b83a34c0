"""Containers whose fields read at C speed: what generated decoders build for a construct Struct.

construct's :class:`~construct.Container` is an OrderedDict whose attribute
access (``rec.pid``) goes through a Python ``__getattr__``, after the normal
lookup failed: about 260 ns a field under CPython 3.11, where a dataclass
field takes 15. A record from ``typed(h)`` has every field of the C struct,
so reading all of them cost several times its decode.

:func:`container_class` gives, per tuple of field names, a subclass of
Container with one ``property(itemgetter(name))`` per field: the read is a
type-attribute hit and a dict lookup, all in C (about 25 ns). Everything
else is Container's own: the items live in the dict (``rec["pid"]``,
``rec.pid = 1`` and ``rec["pid"] = 1`` all read and write the same item),
equality, ``str``/``repr`` (the class is named ``Container``), ``copy()``
(a plain Container). Decisions:

- A name Container already answers as an attribute (``keys``, ``items``,
  ``search``, ...), a dunder or a name that is not an identifier gets no
  property: it stays key access only, as construct documents.
- Removing an item (``del rec.x``, ``del rec["x"]``, ``pop``, ``popitem``,
  ``clear``) first turns the record into a plain Container, so that reading
  a removed field raises AttributeError as Container does, never KeyError.
- Pickling (and ``copy.deepcopy``) gives a plain Container: the subclasses
  are made at run time and have no importable name.
- ``isinstance(rec, construct.Container)`` holds; ``type(rec) is
  Container`` does not.
"""

from __future__ import annotations

import keyword
from operator import itemgetter
from typing import Any, Final

import construct as cs

__all__ = ["container_class"]

_Container: Any = cs.Container
_set_class = object.__setattr__
#: One class per tuple of names; many maps share a struct.
_CLASSES: dict[tuple[str, ...], type] = {}
_CLASSES_MAX: Final = 1024


def _plain(rec: Any) -> None:
    """Make ``rec`` a plain Container (same layout: only the class changes)."""
    _set_class(rec, "__class__", _Container)


class FieldContainer(_Container):  # type: ignore[misc]
    """The base of :func:`container_class`'s classes (see the module)."""

    __slots__ = ()

    def __delitem__(self, key: Any) -> None:
        _plain(self)
        _Container.__delitem__(self, key)

    def __delattr__(self, name: str) -> None:
        _plain(self)
        _Container.__delattr__(self, name)

    def pop(self, *args: Any) -> Any:
        _plain(self)
        return _Container.pop(self, *args)

    def popitem(self, *args: Any, **kwargs: Any) -> Any:
        _plain(self)
        return _Container.popitem(self, *args, **kwargs)

    def clear(self) -> None:
        _plain(self)
        _Container.clear(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Container, (list(self.items()),))


# Container's __setattr__ and its recursion lock look the lock's slot up in
# ``self.__slots__``: keep that answering Container's own slots.
FieldContainer.__slots__ = _Container.__slots__
FieldContainer.__name__ = FieldContainer.__qualname__ = "Container"

#: Names that must stay key access only: whatever a Container answers already.
_TAKEN: Final = frozenset(dir(FieldContainer))


def _fast_name(name: str) -> bool:
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not (name.startswith("__") and name.endswith("__"))
        and name not in _TAKEN
    )


def container_class(names: tuple[object, ...]) -> type:
    """The Container subclass with a C-level attribute for each of ``names`` that may have one."""
    fields = tuple(dict.fromkeys(n for n in names if type(n) is str and _fast_name(n)))
    cls = _CLASSES.get(fields)
    if cls is None:
        body: dict[str, Any] = {name: property(itemgetter(name)) for name in fields}
        body["__slots__"] = ()
        body["__module__"] = __name__
        body["__qualname__"] = "Container"
        cls = type("Container", (FieldContainer,), body)
        cls.__slots__ = _Container.__slots__  # type: ignore[attr-defined]
        if len(_CLASSES) >= _CLASSES_MAX:
            _CLASSES.clear()
        _CLASSES[fields] = cls
    return cls
