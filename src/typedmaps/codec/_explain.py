"""Explaining failures in words: the first field construct trips over, and why."""

from __future__ import annotations

import re
import struct
from typing import Any, cast

import construct as cs
from construct_typed import DataclassStruct

from ..errors import CodecError
from ._plan import _fixed_size

_PATH_PREFIX = re.compile(r"^\((?:building|parsing|sizeof)\)\s*")


def _join_path(what: str, construct_path: str | None) -> str:
    """Turn construct's ``"(building) -> a -> b"`` into ``"value.a.b"``."""
    if not construct_path:
        return what
    rest = _PATH_PREFIX.sub("", construct_path)
    parts = [p.strip() for p in rest.split("->") if p.strip()]
    return ".".join([what, *parts])


def _reason(exc: BaseException) -> str:
    """The message of a construct error without its "Error in path" line."""
    text = str(exc)
    if isinstance(exc, cs.ConstructError) and exc.path is not None:
        first, _, rest = text.partition("\n")
        if first.startswith("Error in path"):
            text = rest
    if not text:
        text = type(exc).__name__
    elif not isinstance(exc, cs.ConstructError):
        text = f"{type(exc).__name__}: {text}"
    return text


def _field_value(value: object, parts: list[str]) -> object:
    """The value at ``parts`` inside ``value`` (best effort, else ``value``)."""
    for part in parts:
        if isinstance(value, dict):
            if part not in value:
                return value
            value = value[part]
        elif hasattr(value, "__dataclass_fields__") and hasattr(value, part):
            value = getattr(value, part)
        else:
            return value
    return value


def _codec_error(
    schema: cs.Construct[Any, Any], what: str, value: object, exc: BaseException, *, building: bool
) -> CodecError:
    """A CodecError for a construct failure, naming the first bad field.

    The walk in :func:`_explain_build` / :func:`_explain_parse` finds the
    field and a plain reason; if it finds nothing (an exotic schema), the
    path and message come from construct's exception.
    """
    try:
        found = (
            _explain_build(schema, value, what)
            if building
            else _explain_parse(schema, bytes(cast("bytes", value)), what)
        )
    except Exception:
        found = None
    action = "encode" if building else "decode"
    if found is not None:
        return CodecError(*found, action=action)
    raw = getattr(exc, "path", None)
    path = _join_path(what, raw if isinstance(raw, str) else None)
    parts = path.split(".")[1:]
    shown = _field_value(value, parts) if building else value
    return CodecError(path, shown, _reason(exc), action=action)


# Names of construct's ready-made singletons (Int64ul, Float32b, Flag, ...),
# so a codec can say "Int64ul" instead of "<FormatField>". Aliases (Short,
# Byte, Single, ...) come first so the explicit IntNNxx/FloatNNx names win.
_SINGLETON_NAMES: dict[int, str] = {
    id(obj): name
    for name, obj in sorted(
        vars(cs).items(), key=lambda item: (item[0].startswith(("Int", "Float")), item[0])
    )
    if isinstance(obj, cs.Construct) and not name.startswith("_") and name[0].isupper()
}


def schema_name(schema: cs.Construct[Any, Any]) -> str:
    """A short readable name for a schema, for messages.

    Args:
        schema: any construct.

    Returns:
        e.g. ``"Int64ul"``, ``"DataclassStruct(FlowKey)"``, ``"Bytes(6)"``,
        ``"Array(4, Int32ul)"``, ``"Struct(src, dst, port)"``.
    """
    known = _SINGLETON_NAMES.get(id(schema))
    if known is not None:
        return known
    if isinstance(schema, DataclassStruct):
        return f"DataclassStruct({schema.dc_type.__name__})"
    if isinstance(schema, cs.Renamed):
        return schema_name(schema.subcon)
    if isinstance(schema, cs.FormatField):
        return f"FormatField({schema.fmtstr!r})"
    if isinstance(schema, cs.Bytes) and isinstance(schema.length, int):
        return f"Bytes({schema.length})"
    if isinstance(schema, cs.Array) and isinstance(schema.count, int):
        return f"Array({schema.count}, {schema_name(schema.subcon)})"
    if isinstance(schema, cs.Struct):
        names = [sc.name for sc in schema.subcons if sc.name]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"Struct({shown})"
    if isinstance(schema, cs.StringEncoded):
        inner: object = getattr(schema, "subcon", None)
        if isinstance(inner, cs.FixedSized) and isinstance(inner.length, int):
            return f"PaddedString({inner.length}, {schema.encoding!r})"
    if isinstance(schema, cs.Enum | cs.FlagsEnum | cs.Const | cs.Aligned):
        return f"{type(schema).__name__}({schema_name(schema.subcon)})"
    if isinstance(schema, cs.BytesInteger) and isinstance(schema.length, int):
        return f"BytesInteger({schema.length})"
    return type(schema).__name__


# ---------------------------------------------------------------------------
# Explaining failures: once construct has refused a value (or bytes), find
# the first field it trips over, in construct's own order, and say why in
# words ("300 is out of range for Int8ub (0..255)") with a path that also
# names array indices ("value.hops[2].ttl"), which construct's paths do not.
# ---------------------------------------------------------------------------

_Problem = tuple[str, object, str]  # path, offending value, reason


def _type_name(value: object) -> str:
    return type(value).__name__


def _int_bounds(size: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    return 0, (1 << (8 * size)) - 1


def _explain_number(sc: cs.Construct[Any, Any], value: object, path: str) -> _Problem | None:
    """Why a FormatField or BytesInteger refuses ``value`` (None if it does not)."""
    name = schema_name(sc)
    if isinstance(sc, cs.FormatField):
        fmt: str = sc.fmtstr
        try:
            struct.pack(fmt, value)
        except Exception:
            pass
        else:
            return None
        code = fmt[1]
        if code in "efd":
            if isinstance(value, int | float) or hasattr(value, "__float__"):
                return path, value, f"{value!r} is out of range for {name}"
            return path, value, f"expected a number for {name}, got {_type_name(value)}"
        if not hasattr(type(value), "__index__"):
            return path, value, f"expected an int for {name}, got {_type_name(value)}"
        lo, hi = _int_bounds(struct.calcsize(fmt), code.islower())
        return path, value, f"{value!r} is out of range for {name} ({lo}..{hi})"
    length, signed = sc.length, sc.signed  # type: ignore[attr-defined]
    if not isinstance(value, int):
        return path, value, f"expected an int for {name}, got {_type_name(value)}"
    lo, hi = _int_bounds(length, bool(signed))
    if lo <= value <= hi:
        return None
    return path, value, f"{value!r} is out of range for {name} ({lo}..{hi})"


def _explain_build(sc: cs.Construct[Any, Any], value: object, path: str) -> _Problem | None:
    """The first field of ``value`` that ``sc.build`` fails on, and why."""
    kind = type(sc)
    if kind is cs.Renamed:
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind is DataclassStruct:
        cls: type = sc.dc_type  # type: ignore[attr-defined]
        if not isinstance(value, cls):
            return path, value, f"expected a {cls.__name__}, got {_type_name(value)}"
        for sub in sc.subcon.subcons:  # type: ignore[attr-defined]
            where = f"{path}.{sub.name}"
            if not hasattr(value, sub.name):
                return where, value, f"{cls.__name__} has no attribute {sub.name!r}"
            found = _explain_build(sub, getattr(value, sub.name), where)
            if found is not None:
                return found
        return None
    if kind is cs.Struct:
        names = [sub.name for sub in sc.subcons if sub.name]  # type: ignore[attr-defined]
        if value is None:
            value = {}
        if not isinstance(value, dict):
            keys = ", ".join(names)
            return path, value, f"expected a dict with keys {keys}, got {_type_name(value)}"
        for sub in sc.subcons:  # type: ignore[attr-defined]
            where = f"{path}.{sub.name}" if sub.name else path
            if sub.flagbuildnone:
                item = value.get(sub.name)
            elif sub.name not in value:
                return where, value, f"missing key {sub.name!r}"
            else:
                item = value[sub.name]
            found = _explain_build(sub, item, where)
            if found is not None:
                return found
        return None
    if kind is cs.Array:
        count = sc.count  # type: ignore[attr-defined]
        if not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
            return path, value, f"expected a sequence of {count} elements, got {_type_name(value)}"
        if len(value) != count:
            return path, value, f"expected {count} elements, got {len(value)}"
        for i, item in enumerate(value):
            found = _explain_build(sc.subcon, item, f"{path}[{i}]")  # type: ignore[attr-defined]
            if found is not None:
                return found
        return None
    if kind is cs.Const:
        const = sc.value  # type: ignore[attr-defined]
        if value not in (None, const):
            return path, value, f"expected the constant {const!r} (or None)"
        return _explain_build(sc.subcon, const, path)  # type: ignore[attr-defined]
    if kind is cs.Default and not callable(sc.value):  # type: ignore[attr-defined]
        value = sc.value if value is None else value  # type: ignore[attr-defined]
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind in (cs.Padded, cs.Aligned):
        return _explain_build(sc.subcon, value, path)  # type: ignore[attr-defined]
    if kind is cs.FormatField or (kind is cs.BytesInteger and isinstance(sc.length, int)):  # type: ignore[attr-defined]
        return _explain_number(sc, value, path)
    if kind is cs.Bytes and isinstance(sc.length, int):  # type: ignore[attr-defined]
        n = sc.length  # type: ignore[attr-defined]
        if isinstance(value, bytes | bytearray):
            if len(value) != n:
                return path, value, f"expected {n} bytes, got {len(value)}"
            return None
        if not isinstance(value, int):
            return path, value, f"expected {n} bytes, got {_type_name(value)}"
    if kind is cs.StringEncoded:
        fixed = sc.subcon  # type: ignore[attr-defined]
        encoding = sc.encoding  # type: ignore[attr-defined]
        if not isinstance(value, str):
            return path, value, f"expected a str, got {_type_name(value)}"
        try:
            data = value.encode(encoding) if value else b""
        except UnicodeEncodeError as exc:
            return path, value, f"cannot encode as {encoding}: {exc.reason}"
        if type(fixed) is cs.FixedSized and isinstance(fixed.length, int):
            if len(data) > fixed.length:
                return (
                    path,
                    value,
                    f"encodes to {len(data)} bytes in {encoding}, more than the {fixed.length} "
                    "the field holds",
                )
            return None
    if kind is cs.Enum and not isinstance(value, int):
        if value not in sc.encmapping:  # type: ignore[attr-defined]
            labels = ", ".join(sorted(str(k) for k in sc.encmapping))  # type: ignore[attr-defined]
            return path, value, f"unknown label {value!r} (known: {labels})"
        return _explain_build(sc.subcon, sc.encmapping[value], path)  # type: ignore[attr-defined]
    # Anything else: ask construct about this part alone.
    try:
        sc.build(value)
    except Exception as exc:
        return path, value, _reason(exc)
    return None


def _explain_parse(sc: cs.Construct[Any, Any], data: bytes, path: str) -> _Problem | None:
    """The first field of ``data`` that ``sc.parse`` fails on, and why."""
    kind = type(sc)
    if kind is cs.Renamed:
        return _explain_parse(sc.subcon, data, path)  # type: ignore[attr-defined]
    parts: list[tuple[str, cs.Construct[Any, Any]]] | None = None
    if kind is DataclassStruct:
        parts = [(f"{path}.{sub.name}", sub) for sub in sc.subcon.subcons]  # type: ignore[attr-defined]
    elif kind is cs.Struct:
        parts = [(f"{path}.{sub.name}" if sub.name else path, sub) for sub in sc.subcons]  # type: ignore[attr-defined]
    elif kind is cs.Array and isinstance(sc.count, int):  # type: ignore[attr-defined]
        parts = [(f"{path}[{i}]", sc.subcon) for i in range(sc.count)]  # type: ignore[attr-defined]
    elif kind in (cs.Padded, cs.Aligned):
        parts = [(path, sc.subcon)]  # type: ignore[attr-defined]
    if parts is not None:
        offset = 0
        for where, sub in parts:
            size = _fixed_size(sub)
            if size is None:
                break
            found = _explain_parse(sub, data[offset : offset + size], where)
            if found is not None:
                return found
            offset += size
        return None
    try:
        sc.parse(data)
    except Exception as exc:
        return path, bytes(data), _reason(exc)
    return None
