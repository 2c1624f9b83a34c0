"""Element methods generated per typed map: the codecs and the handle's call in one function.

``m[k]``, ``m.get(k)``, ``k in m`` and ``m[k] = v`` on a :class:`TypedMap`
(and a :class:`PerCpuTypedMap`) over an open map are, by default, a key
encode, the handle's raw call and a value decode: three Python calls and
their frames on top of the C call. :func:`adopt` gives the typed map a class
of its own whose element methods are generated for its two codecs and its
handle: the codecs' fast-plan statements (encoding the key, and the value on
writes; decoding the value) inline around the handle's call, which is
written out as the handle writes it (typedmaps/handle.py): registered in
flight for close() (see typedmaps/_life.py), the handle's own buffer when no
other call is in flight on it and a pooled one otherwise, the libbpf
function bound once.

Results and errors are the generic methods', which the tests check side by
side: a key or value the inline statements do not handle is handed to its
codec (which gives construct's bytes or CodecError) before the syscall; a
value they do not decode is decoded by the codec; a missing key, a closed
handle and a kernel error raise what the generic methods raise. The class makes
maps of the public class (``type(m)(other, ...)`` is ``TypedMap(other,
...)``), never maps whose methods reach ``m``'s handle. Only maps
over an open, bound handle adopt (a Map of an object not loaded yet keeps
the generic methods, whose sizes may still change before load).
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Final

from ..codec._emit import element_code
from ._base import _not_found

if TYPE_CHECKING:
    from ..codec._emit import _Parts
    from ._base import _KeyedMap

__all__ = ["adopt"]

#: The generated sources compiled once each: many maps share a shape.
_CODE: dict[str, Any] = {}
_CODE_MAX: Final = 256

_CALL = """    calls = _calls
    calls.append(None)
    try:
        fd = calls[0]
        if fd < 0:
            raise _unusable()
{call}
    finally:
        calls.pop()
        if calls[0] < 0:
            _finish()
"""

# A lookup, leaving the return code in ``ret`` and, on success, the value in
# ``raw``. ``_obuf``/``_oview``/``_ocopy`` are the handle's own buffer, its
# view and its copy-out, bound once: a bound handle never changes them.
_LOOKUP = """        if len(calls) == 2:
            ret = _look(fd, kb, _obuf)
            if not ret:
                raw = _ocopy()
        else:
            ret, raw = _pooled(fd, kb, 0)"""

# The same, decoding the value straight from the handle's own buffer while
# the call is still in flight (no bytes copy); the pooled path and a value the
# statements do not decode leave ``raw`` for the codec, as above.
_LOOKUP_DECODE = """        if len(calls) == 2:
            ret = _look(fd, kb, _obuf)
            if not ret:
                try:
                    {target} = _vunpack_from(_oview)
                    {lines}
                    return {expr}
                except Exception:
                    raw = _ocopy()
        else:
            ret, raw = _pooled(fd, kb, 0)"""

# A lookup that only needs the return code.
_PROBE = """        if len(calls) == 2:
            ret = _look(fd, kb, _obuf)
        else:
            ret, _ = _pooled(fd, kb, 0)"""

# The same three for a handle without a buffer of its own (a value too big
# to keep one per handle): always a pooled buffer.
_LOOKUP_POOLED = """        ret, raw = _pooled(fd, kb, 0)"""
_PROBE_POOLED = """        ret, _ = _pooled(fd, kb, 0)"""

_UPDATE = """        ret = _upd(fd, kb, vb, 0)"""


def _encode(parts: _Parts | None, var: str, out: str, fallback: str, prefix: str) -> str:
    """Statements putting the encoding of ``var`` into ``out``; the codec decides the rest."""
    if parts is None:
        return f"    {out} = {fallback}({var})\n"
    ind = "\n        "
    return (
        f"    try:\n"
        f"        {parts.enc_var} = {var}\n"
        f"        {ind.join(parts.enc_lines) or 'pass'}\n"
        f"        {out} = {prefix}pack({', '.join(parts.enc_args)})\n"
        f"    except Exception:\n"
        f"        {out} = {fallback}({var})\n"
    )


def _decode(parts: _Parts | None, strided: bool) -> str:
    """Statements returning the decoded value of ``raw``; the codec decides the rest."""
    if strided:
        return "    return _dvs(raw)\n"
    if parts is None:
        return "    return _dv(raw)\n"
    ind = "\n        "
    return (
        f"    try:\n"
        f"        {parts.target} = _vunpack(raw)\n"
        f"        {ind.join(parts.dec_lines) or 'pass'}\n"
        f"        return {parts.dec_expr}\n"
        f"    except Exception:\n"
        f"        pass\n"
        f"    return _dv(raw)\n"
    )


def _source(key: _Parts | None, value: _Parts | None, percpu: bool, own: bool) -> str:
    kenc = _encode(key, "key", "kb", "_ek", "_k")
    probe = _PROBE if own else _PROBE_POOLED
    if not own:
        get = _CALL.format(call=_LOOKUP_POOLED)
    elif value is None or percpu:
        get = _CALL.format(call=_LOOKUP)
    else:
        lines = "\n                    ".join(value.dec_lines) or "pass"
        call = _LOOKUP_DECODE.format(target=value.target, lines=lines, expr=value.dec_expr)
        get = _CALL.format(call=call)
    dec = _decode(value, percpu)
    venc = "    vb = _eo(value)\n" if percpu else _encode(value, "value", "vb", "_ev", "_v")
    return f"""
def __getitem__(self, key):
{kenc}{get}    if ret:
        if ret == _ENOENT:
            raise _not_found("lookup", key)
        raise _elem_error(ret, "lookup", 0)
{dec}
def get(self, key, default=None, /):
{kenc}{get}    if ret:
        if ret == _ENOENT:
            return default
        raise _elem_error(ret, "lookup", 0)
{dec}
def __contains__(self, key):
{kenc}{_CALL.format(call=probe)}    if ret:
        if ret == _ENOENT:
            return False
        raise _elem_error(ret, "lookup", 0)
    return True

def __setitem__(self, key, value):
{kenc}{venc}{_CALL.format(call=_UPDATE)}    if ret:
        raise _elem_error(ret, "update", 0)
"""


def adopt(m: _KeyedMap[Any, Any, Any], *, percpu: bool) -> None:
    """Give ``m`` a class of its own with element methods generated for it (see the module)."""
    h = m._h
    if h._calls[0] < 0:
        return  # closed, or a Map not loaded yet: the generic methods
    vc = m._value_codec
    code = element_code(m._key_codec, None if percpu else vc)
    own = h._own
    src = _source(code.key, code.value, percpu, own is not None)
    compiled = _CODE.get(src)
    if compiled is None:
        if len(_CODE) >= _CODE_MAX:
            _CODE.clear()
        compiled = _CODE[src] = compile(src, f"<typedmaps element methods {h.name!r}>", "exec")
    ns = dict(code.namespace)
    ns.update(
        _calls=h._calls,
        _obuf=None if own is None else own[0],
        _oview=None if own is None else own[1],
        _ocopy=None if own is None else own[2],
        _pooled=h._lookup_pooled,
        _look=h._c_lookup,
        _upd=h._c_update,
        _unusable=h._unusable,
        _finish=h._lt.finish,
        _elem_error=h._elem_error,
        _not_found=_not_found,
        _ENOENT=-_errno.ENOENT,
        _ek=m._key_codec.encode,
        _ev=vc.encode,
        _dv=vc.decode,
        _eo=m._encode_one,
        _dvs=m._rdp[3] if percpu else None,  # type: ignore[attr-defined]
    )
    exec(compiled, ns)
    base = type(m)

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        # ``type(m)(other_handle, ...)`` must not make a map whose methods
        # reach m's handle: it makes a map of the public class, which then
        # gets methods of its own.
        return base(*args, **kwargs)

    body: dict[str, Any] = {
        "__new__": __new__,
        "__slots__": (),
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        "_tm_base": base,
    }
    for name in ("__getitem__", "get", "__contains__", "__setitem__"):
        fn = ns[name]
        fn.__doc__ = getattr(base, name).__doc__
        body[name] = fn
    m.__class__ = type(base.__name__, (base,), body)
