"""typedmaps.prometheus and `typedmaps export`: maps filled by a BPF program, scraped over HTTP.

Every scrape is a real HTTP GET on 127.0.0.1 (an ephemeral port), parsed
with prometheus-client's own text parser, and compared with what the typed
map reads from the kernel at the same moment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import typedmaps as tm
from typedmaps.btf import Btf, Kind
from typedmaps.prometheus import MapCollector, ip_address, metric_name, parse_address

from .btf_builder import BtfBuilder
from .conftest import MakeMap, bpf_object
from .flow_records import PROTO_UDP, XDP_PASS, FlowKey, FlowStats, ProtoStats

pytestmark = pytest.mark.bpf

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def frame(src: bytes, dst: bytes, sport: int, dport: int, payload: int = 0) -> bytes:
    """Ethernet + IPv4 + UDP, as bpf/flows.bpf.c parses it."""
    udp = struct.pack("!HHHH", sport, dport, 8 + payload, 0) + bytes(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    return bytes(12) + b"\x08\x00" + ip + udp


SRC, DST = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])


@pytest.fixture
def flows_obj(bpf: None) -> Iterator[tm.BpfObject]:
    """flows.bpf.o loaded, with packets of three flows run through it on CPU 0 and 1."""
    path = bpf_object("flows")
    cpus = sorted(os.sched_getaffinity(0))
    with tm.BpfObject.open(path) as obj:
        obj.load()
        prog = obj.programs["count_flows"]
        for n, sport in enumerate((5001, 5002, 5003)):
            for i in range(n + 1):
                prog.test_run(frame(SRC, DST, sport, 53, payload=10 * i), cpu=cpus[i % len(cpus)])
        yield obj


def scrape(url: str) -> dict[str, Metric]:
    """GET the metrics page and parse it with prometheus-client's parser: families by name."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def by_labels(family: Metric, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The values of the samples called ``name``, by their sorted labels."""
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == name}


def flow_labels(key: Any) -> tuple[tuple[str, str], ...]:
    """The labels a flow key should get (addresses formatted, padding dropped)."""
    labels = {
        "saddr": "192.0.2.1",
        "daddr": "192.0.2.2",
        "sport": str(key.sport),
        "dport": str(key.dport),
        "proto": str(key.proto),
    }
    return tuple(sorted(labels.items()))


def test_http_scrape_equals_the_map(flows_obj: tm.BpfObject) -> None:
    flows = tm.TypedMap(
        flows_obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    per_proto = tm.PerCpuTypedMap(
        flows_obj.maps["proto_stats"], key=cs.Int32ul, value=DataclassStruct(ProtoStats)
    )
    registry = CollectorRegistry()
    registry.register(
        MapCollector(
            flows,
            prefix="xdp",
            counters={"packets", "bytes"},
            labels={"saddr": ip_address, "daddr": ip_address},
        )
    )
    registry.register(MapCollector(per_proto, prefix="xdp", name="proto", per_cpu="cpu"))
    registry.register(MapCollector(flows_obj.maps["verdicts"], prefix="xdp"))  # BTF schemas
    threads = threading.active_count()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        got = scrape(url)
        # Families, types, names.
        assert got["xdp_flows_packets"].type == "counter"
        assert got["xdp_flows_first_seen_ns"].type == "gauge"
        # Flows: labels from the key, values equal to what the map holds now.
        packets = by_labels(got["xdp_flows_packets"], "xdp_flows_packets_total")
        nbytes = by_labels(got["xdp_flows_bytes"], "xdp_flows_bytes_total")
        want_packets, want_bytes = {}, {}
        for key, stats in flows.items():
            want_packets[flow_labels(key)] = float(stats.packets)
            want_bytes[flow_labels(key)] = float(stats.bytes)
        assert packets == want_packets
        assert nbytes == want_bytes
        assert sorted(want_packets.values()) == [1.0, 2.0, 3.0]  # the program counted them
        # Per CPU, labelled: one sample per possible CPU.
        per_cpu = by_labels(got["xdp_proto_packets"], "xdp_proto_packets")
        ncpus = tm.num_possible_cpus()
        for cpu in range(ncpus):
            labels = (("cpu", str(cpu)), ("key", str(PROTO_UDP)))
            assert per_cpu[labels] == per_proto[PROTO_UDP][cpu].packets
        assert sum(v for k, v in per_cpu.items() if ("key", str(PROTO_UDP)) in k) == 6.0
        # Per CPU, summed (the default), with BTF schemas and help from BTF.
        verdicts = by_labels(got["xdp_verdicts"], "xdp_verdicts")
        assert verdicts[(("key", str(XDP_PASS)),)] == 6.0
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "# HELP xdp_verdicts value (__u64) of BPF map 'verdicts' (PERCPU_ARRAY)" in text
        assert "# HELP xdp_flows_packets_total packets (__u64) of BPF map 'flows' (HASH)" in text

        # Read on scrape: a new packet shows in the next scrape, nothing cached.
        flows_obj.programs["count_flows"].test_run(frame(SRC, DST, 5001, 53))
        again = by_labels(scrape(url)["xdp_flows_packets"], "xdp_flows_packets_total")
        assert sum(again.values()) == sum(want_packets.values()) + 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    # The collectors started no thread of their own (the HTTP server's is gone).
    assert threading.active_count() == threads


@dataclasses.dataclass
class Inner(DataclassMixin):
    hits: int = csfield(cs.Int32ul)
    ratio: float = csfield(cs.Float32l)


@dataclasses.dataclass
class Deep(DataclassMixin):
    hist: list[int] = csfield(cs.Array(3, cs.Int16ul))  # noqa: RUF009
    inner: Inner = csfield(DataclassStruct(Inner))  # noqa: RUF009 (a construct field spec)
    ok: bool = csfield(cs.Flag)
    tag: bytes = csfield(cs.Bytes(3))  # not a number: left out


def test_nested_records_arrays_and_scalar_keys(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=18, max_entries=8, name="deep")
    m = tm.TypedMap(h, key=cs.Int32ul, value=DataclassStruct(Deep))
    m[7] = Deep(hist=[1, 2, 3], inner=Inner(hits=9, ratio=0.5), ok=True, tag=b"abc")
    c = MapCollector(m, prefix="t", name="")
    assert c.fields == ("hist", "inner.hits", "inner.ratio", "ok")
    assert c.labels == ("key",)
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(_reg(c)).decode())}
    hist = fams.pop("t_hist").samples
    assert {(s.labels["index"], s.value) for s in hist} == {("0", 1), ("1", 2), ("2", 3)}
    samples = {s.name: s for f in fams.values() for s in f.samples}
    assert samples["t_inner_hits"].value == 9
    assert samples["t_inner_ratio"].value == 0.5
    assert samples["t_ok"].value == 1
    assert samples["t_ok"].labels == {"key": "7"}


def _reg(*collectors: MapCollector) -> CollectorRegistry:
    r = CollectorRegistry()
    for c in collectors:
        r.register(c)
    return r


HOSTILE = 'we"ird\\ \n} {x="1"} # HELP'


def test_hostile_names_and_values_cannot_break_the_exposition(make_map: MakeMap) -> None:
    # Field names straight from a schema, as BTF or generated code might have them.
    value = cs.Struct(
        HOSTILE / cs.Int32ul,
        "1st" / cs.Int32ul,
        "__reserved" / cs.Int32ul,
        "a.b" / cs.Int32ul,
        "a_b" / cs.Int32ul,
        "ünï" / cs.Int32ul,
    )
    key = cs.Struct(HOSTILE / cs.PaddedString(24, "utf8"), "cpu" / cs.Int32ul)
    h = make_map(tm.MapType.HASH, key_size=28, value_size=24, max_entries=4, name="hostile")
    m = tm.TypedMap(h, key=key, value=value)
    values = {HOSTILE: 1, "1st": 2, "__reserved": 3, "a.b": 4, "a_b": 5, "ünï": 6}
    text_value = 'x"}\n\\{y'
    m[cs.Container({HOSTILE: text_value, "cpu": 1})] = cs.Container(values)
    c = MapCollector(m, prefix="p", name="m\n#", per_cpu="sum", const_labels={"host": 'h"\n'})
    text = generate_latest(_reg(c)).decode()
    fams = list(text_string_to_metric_families(text))
    names = [f.name for f in fams]
    assert all(_NAME.match(n) and not n.startswith("__") for n in names), names
    assert len(set(names)) == len(values)  # "a.b" and "a_b" did not merge
    for f in fams:
        (s,) = f.samples
        assert all(_NAME.match(k) and not k.startswith("__") for k in s.labels)
        assert s.labels["host"] == 'h"\n'
        assert text_value in s.labels.values()  # the label value came through intact
        assert s.labels["cpu"] == "1"  # a key field named cpu keeps its name
    got = sorted(s.value for f in fams for s in f.samples)
    assert got == [1, 2, 3, 4, 5, 6]
    # A formatter's text that is not valid UTF-8 (a lone surrogate) is escaped,
    # never a scrape that fails to encode.
    label = metric_name(HOSTILE)
    assert label in c.labels
    odd = MapCollector(m, prefix="q", labels={label: lambda v: "a\udcffb"})
    (fam, *_) = text_string_to_metric_families(generate_latest(_reg(odd)).decode())
    assert fam.samples[0].labels[label] == "a\\udcffb"


def test_hostile_btf_member_names(make_map: MakeMap) -> None:
    # Raw BTF with member names no C compiler writes; the kernel would refuse
    # them, an object file or raw BTF blob need not.
    b = BtfBuilder()
    u32 = b.int_("__u32", 4)
    names = ['x"\n{}', "0day", "__x", "x y", "ok"]
    tid = b.struct_("vals", 20, [(n, u32, i * 32) for i, n in enumerate(names)])
    btf = Btf.parse(b.bytes())
    assert btf.get(tid).kind is Kind.STRUCT
    schema = btf.schema(tid)
    h = make_map(tm.MapType.ARRAY, key_size=4, value_size=20, max_entries=2, name="btfhostile")
    m = tm.TypedMap(h, key=cs.Int32ul, value=schema)
    m[1] = cs.Container({n: i + 10 for i, n in enumerate(names)})
    text = generate_latest(_reg(MapCollector(m, prefix="b"))).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(_NAME.match(n) for n in fams)
    assert len(fams) == len(names)
    for f in fams.values():
        values = {s.labels["key"]: s.value for s in f.samples}
        assert values["0"] == 0
        assert values["1"] in {10.0, 11.0, 12.0, 13.0, 14.0}


def test_names_and_arguments() -> None:
    assert metric_name("xdp", "flows", "bytes.in") == "xdp_flows_bytes_in"
    assert metric_name("", "9lives") == "_9lives"
    assert metric_name("__x") == "_x"
    assert metric_name("", "") == "value"
    assert ip_address(bytes([10, 0, 0, 1])) == "10.0.0.1"
    assert ip_address(int.from_bytes(bytes([10, 0, 0, 1]), sys.byteorder)) == "10.0.0.1"
    assert ip_address([0] * 15 + [1]) == "::1"
    with pytest.raises(ValueError, match="ip_address"):
        ip_address(b"\x01")
    assert parse_address("127.0.0.1:9435") == ("127.0.0.1", 9435)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address(":80") == ("", 80)
    for bad in ("127.0.0.1", "host:99999", "::1:80", "[::1]", ""):
        with pytest.raises(ValueError, match="address"):
            parse_address(bad)


def test_bad_arguments_are_named_errors(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4, name="args")
    m = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    with pytest.raises(ValueError, match="per_cpu"):
        MapCollector(m, per_cpu="each")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="counters"):
        MapCollector(m, counters={"nope"})
    with pytest.raises(ValueError, match="labels"):
        MapCollector(m, labels={"nope": str})
    with pytest.raises(tm.ArgumentError, match="source"):
        MapCollector({"a": 1})  # type: ignore[arg-type]
    q = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4, name="q")
    with pytest.raises(tm.NotSupportedError, match="QUEUE"):
        MapCollector(tm.TypedQueue(q, value=cs.Int64ul))  # type: ignore[arg-type]
    # A handle without BTF: typed() needs schemas, and says so.
    with pytest.raises(tm.TypedMapsError):
        MapCollector(h)
    # The registry's duplicate check works, through describe().
    r = _reg(MapCollector(m, prefix="x"))
    with pytest.raises(ValueError, match="Duplicated"):
        r.register(MapCollector(m, prefix="x"))
    assert [f.name for f in MapCollector(m, prefix="x").describe()] == ["x_args"]


def test_import_typedmaps_does_not_import_prometheus() -> None:
    code = (
        "import sys, typedmaps, typedmaps._cli; "
        "assert 'prometheus_client' not in sys.modules, 'prometheus_client'; "
        "assert 'typedmaps.prometheus' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


# ------------------------------------------------------------------ the CLI exporter


def _start_export(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `typedmaps export` and read the URL from its first stderr line (30 s at most)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "typedmaps", "export", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    line = b""
    while b"\n" not in line and time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(fd, 4096)  # unbuffered: select sees exactly what is left
        if not chunk:
            break
        line += chunk
    sel.close()
    m = re.search(r"serving (\d+) map\(s\) at (http://\S+)", line.decode())
    if m is None:
        proc.kill()
        rest = proc.communicate(timeout=10)[1]
        pytest.fail(f"typedmaps export did not start: {(line + rest).decode()}")
    return proc, m.group(2)


def _stop(proc: subprocess.Popen[bytes], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest = proc.communicate()[1].decode()
        pytest.fail(f"typedmaps export did not stop on signal {sig}: {rest[-2000:]}")
    return proc.returncode, err.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_export_command_serves_pinned_maps(
    flows_obj: tm.BpfObject, pin_dir: Path, sig: int
) -> None:
    flows_pin, verdicts_pin = pin_dir / "flows", pin_dir / "verdicts"
    flows_obj.maps["flows"].pin(str(flows_pin))
    flows_obj.maps["verdicts"].pin(str(verdicts_pin))
    proc, url = _start_export(
        "--prometheus",
        "127.0.0.1:0",
        "--prefix",
        "cli",
        "--counters",
        "packets",
        "--ip",
        "saddr,daddr",
        "--drop",
        "pad",
        str(flows_pin),
        str(verdicts_pin),
    )
    try:
        assert url.startswith("http://127.0.0.1:")
        got = scrape(url)
        flows = tm.typed(flows_obj.maps["flows"])
        assert isinstance(flows, tm.TypedMap)
        packets = by_labels(got["cli_flows_packets"], "cli_flows_packets_total")
        want = {flow_labels(k): float(v.packets) for k, v in flows.items()}
        assert packets == want
        assert len(want) == 3
        assert got["cli_flows_bytes"].type == "gauge"
        verdicts = by_labels(got["cli_verdicts"], "cli_verdicts")
        assert verdicts[(("key", str(XDP_PASS)),)] == 6.0
    finally:
        code, err = _stop(proc, sig)
    assert code == 0, err
    assert "Traceback" not in err


def test_export_command_errors(flows_obj: tm.BpfObject, pin_dir: Path, make_map: MakeMap) -> None:
    pin = pin_dir / "flows"
    flows_obj.maps["flows"].pin(str(pin))
    raw = pin_dir / "raw"
    make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=2, name="nobtf").pin(str(raw))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = f"127.0.0.1:{busy.getsockname()[1]}"
    cases: list[tuple[list[str], int, str]] = [
        (["--prometheus", "nowhere", str(pin)], 2, "HOST:PORT"),
        (["--prometheus", "127.0.0.1:0", str(pin_dir / "missing")], 3, "No such file"),
        (["--prometheus", "127.0.0.1:0", "--counters", "nope", str(pin)], 2, "no map has"),
        (["--prometheus", "127.0.0.1:0", str(raw)], 5, "BTF"),
        (["--prometheus", taken, str(pin)], 1, "in use"),
    ]
    try:
        _run_export_cases(cases)
    finally:
        busy.close()


def _run_export_cases(cases: list[tuple[list[str], int, str]]) -> None:
    for args, code, text in cases:
        r = subprocess.run(
            [sys.executable, "-m", "typedmaps", "export", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr  # one line, no traceback
        assert r.stderr.startswith("typedmaps export: "), r.stderr
