"""Prometheus metrics from typed BPF maps, read when they are scraped.

A :class:`MapCollector` turns a keyed map into metric families: each numeric
field of the value (recursing into nested records) becomes a gauge or a
counter, and each field of the key becomes a label::

    from prometheus_client import CollectorRegistry, start_http_server
    from typedmaps.prometheus import MapCollector

    registry = CollectorRegistry()
    registry.register(MapCollector(flows, prefix="xdp", counters={"packets"},
                                   labels={"saddr": ip_address, "pad": None}))
    start_http_server(9435, addr="127.0.0.1", registry=registry)

With the flows map of a flow-accounting program (key ``saddr, daddr,
sport, dport, proto``; value ``packets, bytes``), a scrape returns::

    # HELP xdp_flows_packets_total packets (__u64) of BPF map 'flows' (HASH)
    # TYPE xdp_flows_packets_total counter
    xdp_flows_packets_total{saddr="192.0.2.1",sport="5000",...} 2.0
    # HELP xdp_flows_bytes bytes (__u64) of BPF map 'flows' (HASH)
    # TYPE xdp_flows_bytes gauge
    xdp_flows_bytes{saddr="192.0.2.1",sport="5000",...} 84.0

Each scrape reads the whole map once, with batch lookups (the typed map's
``items()``); nothing runs between scrapes and the collector starts no
thread. The cost of a scrape is that of a full read, plus one sample per
entry and numeric field: keep an eye on the number of series a big map
makes.

Names follow Prometheus' rules whatever the schema or BTF holds: metric
names are ``[a-zA-Z_][a-zA-Z0-9_]*`` (``prefix_map_field``; any other
character becomes ``_``, colliding names get ``_2``, ``_3``, ...), label
names likewise and never start with ``__``. Label values are text: ints
in decimal, bytes in hex, enums by member name, strings as they are (the
exposition format escapes them), anything that is not valid UTF-8 with
backslash escapes. Help text comes from the map's BTF (the C type of each
field) when the map has BTF, else from the schema.

Needs the ``prometheus`` extra (prometheus-client); ``import typedmaps``
never imports this module.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Literal

import construct as cs
from construct_typed import DataclassStruct

try:
    from prometheus_client import CollectorRegistry, make_wsgi_app
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
        "typedmaps.prometheus needs prometheus-client: pip install 'typedmaps[prometheus]'",
        name=exc.name,
    ) from exc

from .btf import Btf, BtfError, Kind
from .codec._explain import schema_name
from .errors import ArgumentError, MapError, NotSupportedError, TypedMapsError
from .flags import MapType
from .handle import MapHandle
from .typed import PerCpuTypedMap, TypedBloomFilter, TypedMap, TypedQueue, TypedStack, typed

__all__ = ["MapCollector", "ip_address", "metric_name", "parse_address", "serve"]

#: How the values of a per-CPU map are exposed.
PerCpu = Literal["sum", "cpu"]

_INVALID: Final = re.compile(r"[^a-zA-Z0-9_]")
#: Event streams: nothing in them stays to be read on a scrape.
_STREAM_TYPES: Final = frozenset({MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.USER_RINGBUF})
_Path = tuple[str, ...]


def metric_name(*parts: str) -> str:
    """A valid Prometheus metric or label name from ``parts`` joined by ``_``.

    Characters outside ``[a-zA-Z0-9_]`` become ``_``, a leading digit gets a
    ``_`` in front, leading ``__`` (reserved by Prometheus) is cut to ``_``,
    and empty parts are left out. Nothing left gives ``"value"``.

    >>> metric_name("xdp", "flows", "bytes.in")
    'xdp_flows_bytes_in'
    """
    name = "_".join(_INVALID.sub("_", p) for p in parts if p)
    if not name:
        return "value"
    if name[0].isdigit():
        name = "_" + name
    while name.startswith("__"):
        name = name[1:]
    return name


def ip_address(value: Any) -> str:
    """A label formatter: an IPv4 or IPv6 address field as text (``"192.0.2.1"``).

    For ``labels={"saddr": ip_address}``. The field holds the address in
    network byte order, as packets do: 4 or 16 ``bytes`` (``Bytes(4)``,
    ``__u8[16]``), or an int read from those bytes in the host's order,
    which is what a BTF schema gives for a ``__be32`` or ``__u32`` field
    (and ``Int32ul`` on little-endian hosts). A big-endian schema
    (``Int32ub``) already holds the address's value: format it with
    ``ipaddress.IPv4Address`` instead.

    Raises:
        ArgumentError: not 4 or 16 bytes, or not an int of 32 or 128 bits.
    """
    import ipaddress
    import sys

    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        value = bytes(value)  # a BTF __u8[16] decodes to a list of ints
    if isinstance(value, bytes | bytearray) and len(value) in (4, 16):
        return str(ipaddress.ip_address(bytes(value)))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 128:
        size = 4 if value < 1 << 32 else 16
        return str(ipaddress.ip_address(value.to_bytes(size, sys.byteorder)))
    raise _bad(
        f"ip_address: expected 4 or 16 bytes or an int, got {value!r:.60}",
        argument="value",
        value=value,
    )


def _bad(message: str, *, argument: str, value: object = None) -> ArgumentError:
    """The error for a bad argument (a TypeError and a ValueError), naming the argument."""
    return ArgumentError(message, argument=argument, value=value)


def _text(value: str) -> str:
    """A label value that is valid UTF-8 (lone surrogates become escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _render(value: Any) -> str:
    """A key field's value as label text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _text(str(value.name))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return "[" + ",".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ",".join(
            f"{k}={_render(v)}" for k, v in value.items() if not str(k).startswith("_")
        )
        return "{" + inner + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _render({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return _text(str(value))


def _fields(value: Any) -> Iterator[tuple[str, Any]] | None:
    """The named fields of a record (dataclass or construct Container), else None.

    construct's own ``_io`` entry and fields that are None (padding declared
    with ``csfield_noinit``, union members not given) are left out; every
    other name is kept, whatever it looks like.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items: Iterable[tuple[str, Any]] = (
            (f.name, getattr(value, f.name)) for f in dataclasses.fields(value)
        )
    elif isinstance(value, dict):
        items = ((str(k), v) for k, v in value.items())
    else:
        return None
    return ((k, v) for k, v in items if k != "_io" and v is not None)


def _key_labels(key: Any, path: _Path = ()) -> Iterator[tuple[_Path, Any]]:
    """(field path, value) for every label of a key: a record's leaves, or the key itself."""
    fields = _fields(key)
    if fields is None:
        yield (path or ("key",)), key
        return
    for name, v in fields:
        yield from _key_labels(v, (*path, name))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):  # IntEnum members included
        return float(value)
    if isinstance(value, float):
        return value
    return None


def _leaves(
    value: Any, path: _Path = (), index: tuple[int, ...] = ()
) -> Iterator[tuple[_Path, tuple[int, ...], float]]:
    """(field path, array indices, number) for every numeric leaf of a value.

    Strings, bytes and None are not numbers and are left out.
    """
    fields = _fields(value)
    if fields is not None:
        for name, v in fields:
            yield from _leaves(v, (*path, name), index)
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _leaves(v, path, (*index, i))
        return
    n = _number(value)
    if n is not None:
        yield path, index, n


@dataclasses.dataclass
class _Family:
    name: str
    help: str
    counter: bool
    labels: list[str]
    metric: Metric | None = None

    def new(self) -> Metric:
        if self.counter:
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


class MapCollector(Collector):
    """A Prometheus collector over one keyed BPF map, read at every scrape.

    Key fields become labels and numeric value fields become samples, one
    metric family per value field, named ``{prefix}_{name}_{field}``
    (nested fields joined with ``_``; a value that is a plain number is
    ``{prefix}_{name}`` itself). Arrays in values add an ``index`` label
    (``index_2``, ... for inner dimensions).

    Args:
        source: a :class:`~typedmaps.TypedMap` or :class:`~typedmaps.PerCpuTypedMap`,
            or a :class:`~typedmaps.MapHandle` (wrapped with
            :func:`~typedmaps.typed`, schemas from the map's BTF). The
            collector reads it and never closes it.
        prefix: the first part of every metric name (a namespace, e.g. ``"xdp"``).
        name: the second part; by default the map's name. ``""`` leaves it out.
        counters: value fields (dotted paths, e.g. ``"packets"`` or
            ``"stats.bytes"``) exposed as counters (``_total``); ``True``
            for every field; the others are gauges.
        per_cpu: for per-CPU maps: ``"sum"`` adds the CPUs' values up,
            ``"cpu"`` gives one sample per possible CPU with a ``cpu`` label.
        labels: per key field (by label name), a function that turns its
            value into the label's text, e.g. ``{"saddr": ip_address}``, or
            None to leave that field out (``{"pad": None}``).
        const_labels: labels added to every sample (e.g. ``{"host": "a"}``).

    Raises:
        ArgumentError: a bad argument: not a keyed typed map or handle, an
            unknown ``per_cpu``, a ``counters`` field the value does not
            have, a label name that is not valid.
        NotSupportedError: a map type with no keys to export (QUEUE, STACK,
            BLOOM_FILTER) or an event stream (RINGBUF, PERF_EVENT_ARRAY,
            USER_RINGBUF).
        BtfError: a handle whose map has no BTF (pass a typed map instead).

    Example::

        registry.register(MapCollector(flows, prefix="xdp", counters={"packets", "bytes"},
                                       labels={"saddr": ip_address, "daddr": ip_address}))
    """

    def __init__(
        self,
        source: TypedMap[Any, Any] | PerCpuTypedMap[Any, Any] | MapHandle,
        prefix: str = "bpf",
        *,
        name: str | None = None,
        counters: Iterable[str] | bool = False,
        per_cpu: PerCpu = "sum",
        labels: Mapping[str, Callable[[Any], str] | None] | None = None,
        const_labels: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(source, MapHandle):
            if source.map_type in _STREAM_TYPES:
                raise NotSupportedError(
                    95,
                    "MapCollector",
                    f"{source.name!r} is a {source.map_type.name} map: a stream of records, not a "
                    "table, so a scrape has nothing to read (count the events in a map the "
                    "program updates, and export that)",
                )
            wrapped: Any = typed(source)
        else:
            wrapped = source
        if not isinstance(wrapped, TypedMap | PerCpuTypedMap):
            if isinstance(wrapped, TypedQueue | TypedStack | TypedBloomFilter):
                raise NotSupportedError(
                    95,
                    "MapCollector",
                    f"a {wrapped.handle.map_type.name} map has no keys to export as labels",
                )
            raise _bad(
                "MapCollector: source must be a TypedMap, PerCpuTypedMap or MapHandle, "
                f"not {type(source).__name__}",
                argument="source",
                value=source,
            )
        if not isinstance(prefix, str) or (name is not None and not isinstance(name, str)):
            raise _bad("MapCollector: prefix and name must be str", argument="prefix")
        if per_cpu not in ("sum", "cpu"):
            raise _bad(
                f"MapCollector: per_cpu must be 'sum' or 'cpu', not {per_cpu!r}",
                argument="per_cpu",
                value=per_cpu,
            )
        self._map: TypedMap[Any, Any] | PerCpuTypedMap[Any, Any] = wrapped
        handle = wrapped.handle
        self._percpu = isinstance(wrapped, PerCpuTypedMap)
        self._by_cpu = self._percpu and per_cpu == "cpu"
        info = handle.info()
        self._map_desc = f"BPF map {info.name!r} ({info.map_type.name})"
        self._base = (prefix, info.name if name is None else name)
        self._formats = dict(labels or {})
        self._const = {metric_name(k): _text(str(v)) for k, v in (const_labels or {}).items()}
        for k in const_labels or {}:
            if metric_name(k) != k:
                raise _bad(
                    f"MapCollector: const label name {k!r} is not a valid label name",
                    argument="const_labels",
                    value=k,
                )
        self._btf = self._load_btf(info.btf_id)
        self._btf_value = info.btf_value_type_id
        self._lock = threading.Lock()
        self._families: dict[tuple[_Path, int], _Family] = {}
        self._names: set[str] = set()
        self._counter_all = counters is True
        self._counters: set[str] = set() if isinstance(counters, bool) else set(counters)
        # The key's labels and the value's fields, from an all-zero record:
        # fixed by the schemas, so known before the first scrape.
        self._key_names = self._label_names(self._zero(wrapped.key_codec))
        zero_value = self._zero(wrapped.value_codec)
        if zero_value is not None and self._key_names is not None:
            for path, index, _ in _leaves(zero_value):
                self._family(path, len(index))
            known = {".".join(p) for p, _ in self._families}
            unknown = sorted(self._counters - known)
            if unknown:
                raise _bad(
                    f"MapCollector: counters names fields the value does not have: {unknown} "
                    f"(fields: {sorted(known)})",
                    argument="counters",
                    value=unknown,
                )
        if self._key_names is not None:
            known_labels = {metric_name(*p) for p in self._key_names}
            for label in self._formats:
                if label not in known_labels:
                    raise _bad(
                        f"MapCollector: labels names {label!r}, which is not a key label "
                        f"(labels: {sorted(known_labels)})",
                        argument="labels",
                        value=label,
                    )

    # ---------------------------------------------------------------- plan

    @staticmethod
    def _zero(codec: Any) -> Any:
        try:
            return codec.decode(bytes(codec.size))
        except (ValueError, cs.ConstructError):  # a Const or strict enum: learn at scrape time
            return None

    @staticmethod
    def _load_btf(btf_id: int) -> Btf | None:
        if not btf_id:
            return None
        try:
            return Btf.from_kernel(btf_id)
        except (BtfError, MapError):
            return None  # help text falls back to the schema

    def _label_names(self, key: Any) -> dict[_Path, str | None] | None:
        """Label name per key field path (None: left out), unique and never ours."""
        if key is None:
            return None
        taken = {"cpu", *self._const} if self._by_cpu else set(self._const)
        names: dict[_Path, str | None] = {}
        for path, _ in _key_labels(key):
            label = metric_name(*path)
            if label in self._formats and self._formats[label] is None:
                names[path] = None
                continue
            base, n = label, 2
            while label in taken or label.startswith("index"):
                label = f"{base}_{n}"
                n += 1
            taken.add(label)
            names[path] = label
        return names

    def _family(self, path: _Path, depth: int) -> _Family:
        fam = self._families.get((path, depth))
        if fam is not None:
            return fam
        with self._lock:
            fam = self._families.get((path, depth))
            if fam is not None:
                return fam
            dotted = ".".join(path)
            counter = self._counter_all or dotted in self._counters
            base = metric_name(*self._base, *path)
            if counter:
                base = base.removesuffix("_total")
            name, n = base, 2
            while name in self._names or (counter and f"{name}_total" in self._names):
                name = f"{base}_{n}"
                n += 1
            self._names.add(name)
            labels = [n for n in (self._key_names or {}).values() if n is not None]
            labels += ["index" if i == 0 else f"index_{i + 1}" for i in range(depth)]
            if self._by_cpu:
                labels.append("cpu")
            labels += list(self._const)
            fam = _Family(name, self._help(path), counter, labels)
            self._families[(path, depth)] = fam
            return fam

    def _help(self, path: _Path) -> str:
        what = ".".join(path) or "value"
        ctype = self._btf_type(path)
        if ctype is None:
            ctype = self._schema_type(path)
        return f"{what} ({ctype}) of {self._map_desc}"

    def _btf_type(self, path: _Path) -> str | None:
        btf, tid = self._btf, self._btf_value
        if btf is None or not tid:
            return None
        try:
            for part in path:
                t = btf.resolve(tid)
                while t.kind is Kind.ARRAY:
                    t = btf.resolve(t.elem)
                if t.kind not in (Kind.STRUCT, Kind.UNION):
                    return None
                names = [btf.member_name(t.members, i) for i in range(len(t.members))]
                if part not in names:
                    return None
                tid = t.members[names.index(part)].type_id
            return btf.describe(tid)
        except (BtfError, IndexError):
            return None

    def _schema_type(self, path: _Path) -> str:
        sc: Any = self._map.value_codec.schema
        for part in path:
            sc = _unwrap(sc)
            subs = getattr(sc, "subcons", None)
            if subs is None:
                return "?"
            found = [s for s in subs if s.name == part]
            if not found:
                return "?"
            sc = found[0]
        return schema_name(_unwrap(sc, arrays=False))

    # ---------------------------------------------------------------- collecting

    def describe(self) -> list[Metric]:
        """The metric families a scrape will return (for the registry's name checks)."""
        return [f.new() for f in list(self._families.values())]

    def collect(self) -> Iterator[Metric]:
        """Read the map once (batch lookups) and yield one family per value field."""
        out: dict[str, Metric] = {}
        const = list(self._const.values())
        for key, value in self._map.items():
            labels = self._labels(key)
            if self._by_cpu:
                for cpu, v in enumerate(value):
                    self._add(out, v, [*labels], [str(cpu), *const])
            elif self._percpu:
                self._add_sum(out, value, labels, const)
            else:
                self._add(out, value, labels, const)
        for fam in list(self._families.values()):  # every family, empty ones too
            yield out.get(fam.name) or fam.new()

    def _labels(self, key: Any) -> list[str]:
        names = self._key_names
        if names is None:
            with self._lock:
                if self._key_names is None:
                    self._key_names = self._label_names(key)
            names = self._key_names or {}
        values = []
        for path, v in _key_labels(key):
            label = names.get(path, metric_name(*path))
            if label is None:
                continue
            fmt = self._formats.get(metric_name(*path))
            values.append(_text(str(fmt(v))) if fmt is not None else _render(v))
        return values

    def _add(self, out: dict[str, Metric], value: Any, labels: list[str], tail: list[str]) -> None:
        for path, index, n in _leaves(value):
            fam = self._family(path, len(index))
            metric = out.get(fam.name)
            if metric is None:
                metric = out[fam.name] = fam.new()
            metric.add_metric([*labels, *map(str, index), *tail], n)  # type: ignore[attr-defined]

    def _add_sum(
        self, out: dict[str, Metric], values: list[Any], labels: list[str], tail: list[str]
    ) -> None:
        sums: dict[tuple[_Path, tuple[int, ...]], float] = {}
        for v in values:
            for path, index, n in _leaves(v):
                sums[(path, index)] = sums.get((path, index), 0.0) + n
        for (path, index), n in sums.items():
            fam = self._family(path, len(index))
            metric = out.get(fam.name)
            if metric is None:
                metric = out[fam.name] = fam.new()
            metric.add_metric([*labels, *map(str, index), *tail], n)  # type: ignore[attr-defined]

    @property
    def fields(self) -> tuple[str, ...]:
        """The value fields exported, as dotted paths (``"packets"``, ``"stats.bytes"``)."""
        return tuple(dict.fromkeys(".".join(p) for p, _ in self._families))

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names of the key's fields (those not left out)."""
        return tuple(n for n in (self._key_names or {}).values() if n is not None)

    def __repr__(self) -> str:
        desc = getattr(self, "_map_desc", "(not set up)")
        return f"<MapCollector {desc} as {metric_name(*getattr(self, '_base', ()))}_*>"


# ---------------------------------------------------------------------------- serving


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (every IPv4 interface) as (host, port).

    Port 0 asks the kernel for a free port.

    Raises:
        ArgumentError: not one of those forms, or a port outside 0..65535.
    """
    if not isinstance(text, str):
        raise _bad("address must be a str such as 127.0.0.1:9435", argument="address", value=text)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _bad(
            f"address {text!r}: expected HOST:PORT, [IPV6]:PORT or :PORT, e.g. 127.0.0.1:9435",
            argument="address",
            value=text,
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host or "[" in host or "]" in host:
        raise _bad(
            f"address {text!r}: write an IPv6 host in brackets, e.g. [::1]:9435",
            argument="address",
            value=text,
        )
    if "\0" in host:
        raise _bad(f"address {text!r}: NUL in the host", argument="address", value=text)
    return host, int(port)


def serve(
    address: str,
    registry: CollectorRegistry,
    *,
    ready: Callable[[str], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> None:
    """Serve ``registry`` over HTTP at ``address`` until SIGINT or SIGTERM.

    One request at a time, in the calling thread (no background thread): each
    ``GET`` (any path, as prometheus-client's own servers) runs the
    collectors and answers in the text exposition format. A collector that
    fails answers 500 and reports one line through ``on_error``; the server
    goes on. Must be called from the main thread, which receives the signals;
    the previous SIGTERM handler is restored on return.

    Args:
        address: as :func:`parse_address`.
        registry: the collectors to serve.
        ready: called once with the URL (``http://127.0.0.1:41234/metrics``),
            after the socket is bound and before the first request.
        on_error: called with a one-line description of each failed scrape.

    Raises:
        ArgumentError: a malformed address.
        OSError: the address cannot be bound (in use, not local, no permission).
    """
    import signal
    import socket
    import sys
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    host, port = parse_address(address)
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            body: list[bytes] = metrics(environ, start_response)
        except (TypedMapsError, OSError) as exc:
            if on_error is not None:
                on_error(f"scrape failed: {exc}")
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"scrape failed: {exc}\n".encode("utf-8", "backslashreplace")]
        return body

    class Handler(WSGIRequestHandler):
        timeout = 10  # a client that stalls cannot hold the only thread for long

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(WSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        timeout = 0.5  # handle_request() returns this often to look at the stop flag

        def handle_error(self, request: Any, client_address: Any) -> None:
            if on_error is not None:  # one line, never socketserver's traceback
                on_error(f"request from {client_address[0]} failed: {sys.exc_info()[1]!r}")

    # The signals only set a flag: raising from the handler could land inside
    # a request, where wsgiref's handler would catch it and serve on. The loop
    # sees the flag within Server.timeout, between requests.
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    server = Server((host or "0.0.0.0", port), Handler)
    try:
        server.set_app(app)
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            bound_host, bound_port = (str(a) for a in server.server_address[:2])
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            if ready is not None:
                ready(f"http://{shown}:{bound_port}/metrics")
            while not stopping:
                server.handle_request()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    finally:
        server.server_close()


def _unwrap(sc: Any, *, arrays: bool = True) -> Any:
    """The construct a field's schema stands for: through renames, dataclass structs, arrays."""
    for _ in range(64):  # bounded: a schema is a finite tree
        leaf = isinstance(sc, cs.Enum | cs.FlagsEnum | cs.StringEncoded)
        wrapper = isinstance(sc, cs.Renamed | cs.Transformed | cs.Adapter | DataclassStruct)
        if (wrapper and not leaf) or (arrays and isinstance(sc, cs.Array)):
            sc = sc.subcon
        else:
            break
    return sc
