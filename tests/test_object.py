"""BpfObject, Map, Program and Link on the real kernel, with the programs in bpf/.

The kernel writes (programs run through BPF_PROG_TEST_RUN or attached to a
tracepoint), typedmaps reads, and the results are checked against what the
packets imply and against bpftool's view of the same maps.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import ipaddress
import itertools
import os
import platform
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from construct_typed import DataclassStruct

import typedmaps as tm
from typedmaps._ffi import ffi, get_lib

from .conftest import bpf_object, bpftool, need
from .flow_records import (
    PROTO_ICMP,
    PROTO_NON_IP,
    PROTO_TCP,
    PROTO_UDP,
    XDP_DROP,
    XDP_PASS,
    Event,
    FlowKey,
    FlowStats,
    ProtoStats,
)

TCP, UDP, ICMP = 6, 17, 1
ETH_HLEN = 14
#: getppid(2) by architecture: never cached by libc, cheap, rarely called.
GETPPID_NR = {"x86_64": 110, "aarch64": 173}

# ---------------------------------------------------------------------- packets


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ipv4_frame(
    src: str, dst: str, proto: int, sport: int = 0, dport: int = 0, *, payload: int = 0
) -> bytes:
    """An Ethernet + IPv4 + TCP/UDP/ICMP frame with ``payload`` zero bytes."""
    if proto == TCP:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    elif proto == UDP:
        l4 = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    elif proto == ICMP:
        l4 = struct.pack("!BBHHH", 8, 0, 0, 1, 1)
    else:
        l4 = b""
    body = l4 + bytes(payload)
    saddr = ipaddress.IPv4Address(src).packed
    daddr = ipaddress.IPv4Address(dst).packed
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0x4000, 64, proto, 0, saddr, daddr
    )
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + hdr + body


def arp_frame() -> bytes:
    return b"\xff" * 6 + bytes.fromhex("020000000001") + b"\x08\x06" + bytes(28)


def key_of(src: str, dst: str, proto: int, sport: int = 0, dport: int = 0) -> FlowKey:
    return FlowKey(
        saddr=ipaddress.IPv4Address(src).packed,
        daddr=ipaddress.IPv4Address(dst).packed,
        sport=sport,
        dport=dport,
        proto=proto,
    )


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def flows_obj(bpf: None) -> Iterator[tm.BpfObject]:
    """build/bpf/flows.bpf.o opened (not loaded); closed after the test."""
    with tm.BpfObject.open(bpf_object("flows")) as obj:
        yield obj


def cpus() -> list[int]:
    """The CPUs this thread may run on (test_run(cpu=...) accepts these)."""
    return sorted(os.sched_getaffinity(0))


def bpf_fds() -> int:
    """How many BPF objects (maps, programs, links, BTF) this process holds fds of."""
    n = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        n += target.startswith("anon_inode:") and "bpf" in target
    return n


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def set_u32(m: tm.Map, var: str, value: int, fmt: str = "<I") -> None:
    m.set_variable(var, struct.pack(fmt, value))


# ---------------------------------------------------------------------- open / pre-load


def test_open_lists_maps_and_programs(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    assert obj.name == "flows"
    assert not obj.loaded
    assert set(obj.maps) == {
        "flows",
        "proto_stats",
        "verdicts",
        "sources",
        "flows.rodata",
        "flows.bss",
    }
    assert obj.maps[".rodata"] is obj.maps["flows.rodata"]
    assert ".bss" in obj.maps
    assert "nope" not in obj.maps
    flows = obj.maps["flows"]
    assert isinstance(flows, tm.Map)
    assert isinstance(flows, tm.MapHandle)
    assert (flows.map_type, flows.key_size, flows.value_size, flows.max_entries) == (
        tm.MapType.HASH,
        16,
        32,
        1024,
    )
    assert obj.maps["proto_stats"].map_type is tm.MapType.PERCPU_ARRAY
    assert obj.maps["sources"].map_type is tm.MapType.LRU_HASH
    assert flows.id == 0
    prog = obj.programs["count_flows"]
    assert (prog.name, prog.section, prog.type) == ("count_flows", "xdp", tm.ProgramType.XDP)
    assert prog.autoload is True
    with pytest.raises(KeyError, match="count_flows"):
        obj.programs["missing"]


def test_map_before_load_has_no_data_ops(flows_obj: tm.BpfObject) -> None:
    flows = flows_obj.maps["flows"]
    with pytest.raises(tm.ObjectError, match="load") as exc:
        flows.lookup(bytes(16))
    assert exc.value.errno == errno.EBADF
    with pytest.raises(tm.ObjectError):
        flows.fileno()
    with pytest.raises(tm.ObjectError):
        list(flows.keys())
    with pytest.raises(tm.ObjectError, match="not loaded"):
        _ = flows_obj.programs["count_flows"].fd


def test_preload_settings_reach_the_kernel(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    flows = obj.maps["flows"]
    flows.max_entries = 4096
    flows.map_flags = tm.MapCreateFlags.NO_PREALLOC
    obj.maps["sources"].max_entries = 17
    assert flows.max_entries == 4096
    obj.load()
    assert obj.loaded
    info = flows.info()
    assert info.max_entries == 4096
    assert info.map_flags & tm.MapCreateFlags.NO_PREALLOC
    assert info.name == "flows"
    assert info.key_size == 16
    assert info.value_size == 32
    assert obj.maps["sources"].info().max_entries == 17
    # the kernel's view agrees
    shown = bpftool("map", "show", "id", str(flows.id))
    assert shown["max_entries"] == 4096


def test_value_and_key_size_can_change_before_load(flows_obj: tm.BpfObject) -> None:
    """libbpf allows resizing; the kernel then takes the map without its BTF types."""
    sources = flows_obj.maps["sources"]
    sources.value_size = 16  # the program writes 8 bytes: still within the value
    assert sources.value_size == 16
    flows_obj.load()
    info = sources.info()
    assert info.value_size == 16
    flows_obj.programs["count_flows"].test_run(ipv4_frame("10.0.0.7", "10.0.0.1", UDP, 1, 2))
    value = sources.lookup(ipaddress.IPv4Address("10.0.0.7").packed)
    assert value is not None
    assert len(value) == 16
    # the program's update copies value_size bytes from an 8-byte stack slot:
    # the first 8 are the count, the rest is whatever sat next to it
    assert value[:8] == struct.pack("<Q", 1)


def test_preload_setting_checks(flows_obj: tm.BpfObject) -> None:
    flows = flows_obj.maps["flows"]
    with pytest.raises(tm.ArgumentError):
        flows.max_entries = -1
    with pytest.raises(tm.ArgumentError):
        flows.max_entries = 2**32
    with pytest.raises(tm.ArgumentError):
        flows.autocreate = 1  # type: ignore[assignment]
    with pytest.raises(tm.ArgumentError, match="dot"):
        flows.pin_path = "/sys/fs/bpf/has.dot"
    ro = flows_obj.maps[".rodata"]
    with pytest.raises(tm.SizeMismatchError) as exc:
        ro.initial_value = b"\x01"
    assert (exc.value.size, exc.value.expected) == (1, 6)
    with pytest.raises(tm.NotSupportedError):
        flows.initial_value = bytes(32)
    assert flows.initial_value is None
    with pytest.raises(tm.SizeMismatchError):
        ro.set_variable("sample_rate", b"\x01\x00")
    with pytest.raises(KeyError):
        ro.set_variable("no_such_var", b"")
    assert ro.initial_value == struct.pack("<IH", 1, 0)  # unchanged by the failures


def test_settings_after_load_raise(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    obj.load()
    flows = obj.maps["flows"]
    for attr, value in (
        ("max_entries", 8),
        ("value_size", 32),
        ("key_size", 16),
        ("map_flags", 0),
        ("autocreate", False),
        ("pin_path", "/sys/fs/bpf/x"),
    ):
        with pytest.raises(tm.ObjectError, match="before load") as exc:
            setattr(flows, attr, value)
        assert exc.value.errno == errno.EBUSY
    with pytest.raises(tm.ObjectError, match="before load"):
        obj.maps[".rodata"].initial_value = bytes(6)
    with pytest.raises(tm.ObjectError, match="before load"):
        obj.programs["count_flows"].autoload = False
    with pytest.raises(tm.ObjectError, match="loaded"):
        obj.load()
    assert flows.info().max_entries == 1024


def test_globals_layout_from_btf(flows_obj: tm.BpfObject) -> None:
    ro = flows_obj.maps[".rodata"].variables()
    assert ro == {
        "sample_rate": tm.GlobalVariable("sample_rate", 0, 4),
        "blocked_port": tm.GlobalVariable("blocked_port", 4, 2),
    }
    assert set(flows_obj.maps[".bss"].variables()) == {"total_packets"}
    assert flows_obj.maps["flows"].variables() == {}


# ---------------------------------------------------------------------- the kernel writes, we read


def run_all(prog: tm.Program, frames: list[bytes], cpu: int | None = None) -> list[int]:
    return [prog.test_run(f, cpu=cpu).retval for f in frames]


def test_percpu_counters_per_cpu(flows_obj: tm.BpfObject) -> None:
    """Each CPU's slot holds exactly what was run on that CPU."""
    obj = flows_obj
    obj.load()
    prog = obj.programs["count_flows"]
    ncpus = tm.num_possible_cpus()
    tcp = ipv4_frame("10.0.0.1", "10.0.0.2", TCP, 1000, 80, payload=10)
    udp = ipv4_frame("10.0.0.1", "10.0.0.3", UDP, 1000, 53, payload=3)
    before = os.sched_getaffinity(0)
    expected = [ProtoStats(0, 0) for _ in range(ncpus)]
    expected_udp = [ProtoStats(0, 0) for _ in range(ncpus)]
    for i, cpu in enumerate(cpus()):
        n = 3 * (i + 1)
        assert run_all(prog, [tcp] * n + [udp] * (i + 1), cpu=cpu) == [XDP_PASS] * (n + i + 1)
        assert os.sched_getaffinity(0) == before  # restored after every run
        expected[cpu] = ProtoStats(n, n * len(tcp))
        expected_udp[cpu] = ProtoStats(i + 1, (i + 1) * len(udp))

    stats = tm.PerCpuTypedMap(
        obj.maps["proto_stats"], key=cs.Int32ul, value=DataclassStruct(ProtoStats)
    )
    assert stats[PROTO_TCP] == expected
    assert stats[PROTO_UDP] == expected_udp
    assert stats[PROTO_ICMP] == [ProtoStats(0, 0)] * ncpus
    verdicts = tm.PerCpuTypedMap(obj.maps["verdicts"], key=cs.Int32ul, value=cs.Int64ul)
    assert verdicts[XDP_PASS] == [
        a.packets + b.packets for a, b in zip(expected, expected_udp, strict=True)
    ]
    assert verdicts[XDP_DROP] == [0] * ncpus
    # and the raw bytes: one slot per possible CPU
    raw = obj.maps["proto_stats"].lookup_percpu(u32(PROTO_TCP))
    assert raw is not None
    assert len(raw) == ncpus
    assert [struct.unpack("<QQ", r)[0] for r in raw] == [e.packets for e in expected]


def test_flow_table_is_what_the_packets_imply(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    obj.load()
    prog = obj.programs["count_flows"]
    frames: list[tuple[FlowKey | None, bytes]] = []
    for i in range(40):
        src = f"192.168.{i % 3}.{1 + i % 5}"
        dst = "10.1.1.1"
        if i % 4 == 0:
            frames.append((key_of(src, dst, ICMP), ipv4_frame(src, dst, ICMP, payload=i)))
        else:
            proto = TCP if i % 2 else UDP
            sport, dport = 40000 + i % 7, 443 if proto == TCP else 53
            frames.append(
                (
                    key_of(src, dst, proto, sport, dport),
                    ipv4_frame(src, dst, proto, sport, dport, payload=i),
                )
            )
    frames.append((None, arp_frame()))
    want_packets: Counter[FlowKey] = Counter()
    want_bytes: Counter[FlowKey] = Counter()
    want_sources: Counter[bytes] = Counter()
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    for n, (key, frame) in enumerate(frames):
        prog.test_run(frame, cpu=cpus()[n % len(cpus())])
        if key is not None:
            want_packets[key] += 1
            want_bytes[key] += len(frame)
            want_sources[key.saddr] += 1
    t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    flows = tm.TypedMap(
        obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    table = dict(flows.items())
    assert set(table) == set(want_packets)
    for key, st in table.items():
        assert (st.packets, st.bytes) == (want_packets[key], want_bytes[key]), key
        assert t0 <= st.first_seen_ns <= st.last_seen_ns <= t1
        assert flows[key] == st
    sources = tm.TypedMap(obj.maps["sources"], key=cs.Bytes(4), value=cs.Int64ul)
    assert dict(sources.items()) == dict(want_sources)
    bss = obj.maps[".bss"].lookup(u32(0))
    assert bss == struct.pack("<Q", len(frames))
    stats = tm.PerCpuTypedMap(
        obj.maps["proto_stats"], key=cs.Int32ul, value=DataclassStruct(ProtoStats)
    )
    assert sum(s.packets for s in stats[PROTO_NON_IP]) == 1
    assert sum(s.packets for s in stats[PROTO_ICMP]) == 10


def _bpftool_entries(map_id: int) -> dict[bytes, bytes | list[bytes]]:
    out: dict[bytes, bytes | list[bytes]] = {}
    for e in bpftool("map", "dump", "id", str(map_id)):
        key = bytes(int(b, 16) for b in e["key"])
        if "values" in e:
            out[key] = [bytes(int(b, 16) for b in v["value"]) for v in e["values"]]
        else:
            out[key] = bytes(int(b, 16) for b in e["value"])
    return out


def test_bytes_equal_bpftools_view(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    obj.load()
    prog = obj.programs["count_flows"]
    for i in range(30):
        proto = (TCP, UDP, ICMP)[i % 3]
        frame = ipv4_frame(f"172.16.0.{i % 6}", "172.16.1.1", proto, 5000 + i % 4, 80, payload=i)
        prog.test_run(frame, cpu=cpus()[i % len(cpus())])
    for name in ("flows", "proto_stats", "verdicts", "sources", ".bss", ".rodata"):
        m = obj.maps[name]
        ours: dict[bytes, bytes | list[bytes]] = dict(m.lookup_batch())
        assert ours, name
        assert ours == _bpftool_entries(m.id), name


def test_rodata_changes_program_behaviour(flows_obj: tm.BpfObject) -> None:
    obj = flows_obj
    ro = obj.maps[".rodata"]
    set_u32(ro, "sample_rate", 4)
    ro.set_variable("blocked_port", struct.pack("<H", 53))
    assert ro.initial_value == struct.pack("<IH", 4, 53)
    obj.load()
    prog = obj.programs["count_flows"]
    dns = ipv4_frame("10.0.0.9", "10.0.0.1", UDP, 3333, 53)
    web = ipv4_frame("10.0.0.9", "10.0.0.1", TCP, 3333, 443)
    cpu = cpus()[0]
    assert run_all(prog, [dns] * 8, cpu=cpu) == [XDP_DROP] * 8
    assert run_all(prog, [web] * 9, cpu=cpu) == [XDP_PASS] * 9
    flows = tm.TypedMap(
        obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    # 1 packet in 4 per CPU and protocol class is accounted
    assert flows[key_of("10.0.0.9", "10.0.0.1", UDP, 3333, 53)].packets == 2
    assert flows[key_of("10.0.0.9", "10.0.0.1", TCP, 3333, 443)].packets == 2
    verdicts = tm.PerCpuTypedMap(obj.maps["verdicts"], key=cs.Int32ul, value=cs.Int64ul)
    assert verdicts[XDP_DROP][cpu] == 8
    # .rodata is frozen for user space after load
    assert obj.maps[".rodata"].lookup(u32(0)) == struct.pack("<IH", 4, 53)
    with pytest.raises(tm.MapPermissionError):
        obj.maps[".rodata"].update(u32(0), bytes(6))


def test_autocreate_false(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        calls = obj.maps["calls_by_pid"]
        calls.autocreate = False
        obj.programs["count_syscalls"].autoload = False
        assert calls.autocreate is False
        obj.load()
        with pytest.raises(tm.ObjectError, match="autocreate=False") as exc:
            calls.lookup(u32(1))
        assert exc.value.errno == errno.ENOENT
        with pytest.raises(tm.ObjectError, match="autoload=False"):
            _ = obj.programs["count_syscalls"].fd
        assert obj.maps[".bss"].lookup(u32(0)) == bytes(8)  # the others exist


def test_autocreate_false_for_a_used_map_fails_load_clearly(bpf: None) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        obj.maps["calls_by_pid"].autocreate = False
        with pytest.raises(tm.ObjectError) as exc:
            obj.load()
        assert exc.value.operation == "load tracecount"
        assert "calls_by_pid" in exc.value.log
        with pytest.raises(tm.ObjectError, match="failed to load"):
            obj.maps[".bss"].lookup(u32(0))
        with pytest.raises(tm.ObjectError, match="failed"):
            obj.load()


# ---------------------------------------------------------------------- reuse and pinning


def test_reuse_a_pinned_map(flows_obj: tm.BpfObject, pin_dir: Path) -> None:
    """The program writes into a map we created and pinned."""
    pin = pin_dir / "shared_flows"
    with tm.MapHandle.create(
        tm.MapType.HASH, key_size=16, value_size=32, max_entries=64, name="ours"
    ) as ours:
        ours.pin(pin)
        flows_obj.maps["flows"].reuse(pin)
        assert flows_obj.maps["flows"].max_entries == 64  # adopted from the reused map
        flows_obj.load()
        assert flows_obj.maps["flows"].id == ours.id
        frame = ipv4_frame("10.9.9.9", "10.0.0.1", UDP, 1, 2)
        flows_obj.programs["count_flows"].test_run(frame)
        view = tm.TypedMap(ours, key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats))
        st = view[key_of("10.9.9.9", "10.0.0.1", UDP, 1, 2)]
        assert (st.packets, st.bytes) == (1, len(frame))
    # our handle is closed, the object still holds the map
    assert len(list(flows_obj.maps["flows"].keys())) == 1


def test_reuse_a_handle_and_incompatible_maps(bpf: None, make_map: Any) -> None:
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        wrong = make_map(tm.MapType.HASH, key_size=8, value_size=8, max_entries=4)
        with pytest.raises(tm.ObjectError, match="incompatible"):
            obj.maps["calls_by_pid"].reuse(wrong)
        h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=8)
        obj.maps["calls_by_pid"].reuse(h)
        with pytest.raises(tm.ObjectError, match="settings are fixed"):
            obj.maps["calls_by_pid"].max_entries = 100
        with pytest.raises(FileNotFoundError):
            obj.maps[".bss"].reuse("/sys/fs/bpf/no_such_pin_here")
        obj.load()
        assert obj.maps["calls_by_pid"].id == h.id
        h.update(u32(7), struct.pack("<Q", 99))
        assert obj.maps["calls_by_pid"].lookup(u32(7)) == struct.pack("<Q", 99)
    # closing the object did not close the caller's handle
    assert h.lookup(u32(7)) == struct.pack("<Q", 99)


def test_pin_path_before_load_shares_the_map(bpf: None, pin_dir: Path) -> None:
    pin = str(pin_dir / "calls")
    with tm.BpfObject.open(bpf_object("tracecount")) as a:
        a.maps["calls_by_pid"].pin_path = pin
        assert a.maps["calls_by_pid"].pin_path == pin
        a.load()
        assert a.maps["calls_by_pid"].is_pinned
        assert os.path.exists(pin)
        a.maps["calls_by_pid"].update(u32(1), struct.pack("<Q", 5))
        first_id = a.maps["calls_by_pid"].id
    with tm.BpfObject.open(bpf_object("tracecount")) as b:
        b.maps["calls_by_pid"].pin_path = pin
        b.load()
        m = b.maps["calls_by_pid"]
        assert m.id == first_id
        assert m.lookup(u32(1)) == struct.pack("<Q", 5)
        m.unpin()
        assert not m.is_pinned
        assert not os.path.exists(pin)


def test_pin_and_unpin_after_load(flows_obj: tm.BpfObject, pin_dir: Path) -> None:
    flows_obj.load()
    m = flows_obj.maps["sources"]
    with pytest.raises(tm.ObjectError, match="no path"):
        m.pin()
    path = pin_dir / "sources"
    m.pin(path)
    assert m.is_pinned
    assert m.pin_path == str(path)
    m.pin()  # again at its pin path: nothing to do
    with tm.MapHandle.from_pinned_path(path) as h:
        assert h.id == m.id
    with pytest.raises(tm.ObjectError):
        m.pin(pin_dir / "elsewhere")  # libbpf: a different path than the pin path
    m.unpin()
    assert not path.exists()
    assert not m.is_pinned
    with pytest.raises(FileNotFoundError):
        m.unpin()


# ---------------------------------------------------------------------- bytes, names


def test_open_from_bytes(bpf: None) -> None:
    data = bpf_object("flows").read_bytes()
    with tm.BpfObject.open(data, name="fromram") as obj:
        del data
        gc.collect()
        assert obj.name == "fromram"
        assert "fromram.rodata" in obj.maps
        assert ".rodata" in obj.maps
        set_u32(obj.maps[".rodata"], "sample_rate", 1)
        obj.load()
        r = obj.programs["count_flows"].test_run(ipv4_frame("1.1.1.1", "2.2.2.2", TCP, 1, 2))
        assert r.retval == XDP_PASS
        assert obj.maps[".bss"].lookup(u32(0)) == struct.pack("<Q", 1)
    with tm.BpfObject.open(bytearray(bpf_object("events").read_bytes())) as obj:
        assert obj.name == "bpf_object"
        obj.load()


# ---------------------------------------------------------------------- errors


def test_missing_and_garbage_files(bpf: None, tmp_path: Path) -> None:
    missing = tmp_path / "nope.bpf.o"
    with pytest.raises(tm.ObjectError, match=r"nope\.bpf\.o") as exc:
        tm.BpfObject.open(missing)
    assert exc.value.errno == errno.ENOENT
    assert isinstance(exc.value, OSError)
    assert isinstance(exc.value, tm.TypedMapsError)

    garbage = tmp_path / "garbage.o"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(tm.ObjectError, match="format invalid: no ELF header") as exc:
        tm.BpfObject.open(garbage)  # refused before libbpf sees it
    assert exc.value.errno == 4001
    with pytest.raises(tm.ObjectError, match="format invalid"):
        tm.BpfObject.open(b"\x7fELF\x02\x01\x01" + bytes(100))
    with pytest.raises(tm.ObjectError, match="empty"):
        tm.BpfObject.open(b"")
    with pytest.raises(tm.ObjectError):
        tm.BpfObject.open(Path("/etc/hostname"))
    with pytest.raises(tm.ArgumentError):
        tm.BpfObject.open(42)  # type: ignore[arg-type]


def test_verifier_rejection_carries_the_log(bpf: None, tmp_path: Path) -> None:
    """A program the verifier refuses: ObjectError with the verifier's words."""
    import shutil
    import subprocess

    clang = shutil.which("clang")
    need(clang is not None, "clang is not installed")
    assert clang is not None
    src = tmp_path / "bad.bpf.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("xdp") int unchecked(struct xdp_md *ctx)\n'
        "{\n  unsigned char *p = (void *)(long)ctx->data;\n  return p[20];\n}\n"
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    out = tmp_path / "bad.bpf.o"
    arch = platform.machine()
    subprocess.run(
        [clang, "-g", "-O2", "-target", "bpf", f"-I/usr/include/{arch}-linux-gnu",
         "-c", str(src), "-o", str(out)],
        check=True,
    )  # fmt: skip
    with tm.BpfObject.open(out) as obj:
        with pytest.raises(tm.ObjectError) as exc:
            obj.load()
        assert exc.value.errno == errno.EACCES
        assert "invalid access to packet" in exc.value.log
        assert "invalid access to packet" in str(exc.value)
        assert exc.value.operation == "load bad"


# ---------------------------------------------------------------------- lifecycle


def test_closed_object_maps_and_programs_raise(bpf: None) -> None:
    obj = tm.BpfObject.open(bpf_object("flows"))
    obj.load()
    flows = obj.maps["flows"]
    stats = obj.maps["proto_stats"]
    prog = obj.programs["count_flows"]
    typed = tm.TypedMap(flows, key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats))
    obj.close()
    obj.close()  # idempotent
    assert obj.closed
    assert not obj.loaded
    for call in (
        lambda: flows.lookup(bytes(16)),
        flows.info,
        flows.fileno,
        flows.as_libbpf_object,
        lambda: flows.pin_path,
        lambda: stats.lookup_percpu(u32(0)),
        lambda: list(flows.lookup_batch()),
        lambda: prog.fd,
        lambda: prog.test_run(arp_frame()),
        prog.attach,
        lambda: obj.maps,
        lambda: obj.programs,
        obj.load,
        lambda: typed.get(key_of("1.1.1.1", "2.2.2.2", TCP)),
    ):
        with pytest.raises(tm.MapClosedError):
            call()
    assert "closed" in repr(flows)
    with pytest.raises(tm.MapClosedError):
        flows.max_entries = 5


def test_unclosed_object_warns() -> None:
    need(os.path.exists(bpf_object("events")), "events.bpf.o")
    obj = tm.BpfObject.open(bpf_object("events"))
    del obj  # a reference cycle (maps point back at it): only the collector frees it
    with pytest.warns(ResourceWarning, match="unclosed"):
        gc.collect()


def test_closing_releases_every_fd(bpf: None) -> None:
    gc.collect()
    before = bpf_fds()
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        obj.load()
        # 4 maps (calls_by_pid, .rodata, .data, .bss), 1 program, the BTF, a link
        link = obj.programs["count_syscalls"].attach()
        assert link.attached
        assert bpf_fds() >= before + 6
    assert not link.attached
    gc.collect()
    assert bpf_fds() == before
    for _ in range(3):  # and again: nothing accumulates
        with tm.BpfObject.open(bpf_object("flows")) as obj:
            obj.load()
            obj.programs["count_flows"].test_run(arp_frame())
    gc.collect()
    assert bpf_fds() == before


def test_map_close_retires_only_the_view(flows_obj: tm.BpfObject) -> None:
    flows_obj.load()
    m = flows_obj.maps["sources"]
    fd = m.fileno()
    with m:
        m.update(u32(1), struct.pack("<Q", 1))
    with pytest.raises(tm.MapClosedError):
        m.lookup(u32(1))
    fresh = flows_obj.maps["sources"]
    assert fresh is not m
    assert fresh.fileno() == fd
    assert fresh.lookup(u32(1)) == struct.pack("<Q", 1)


def test_map_is_not_a_standalone_constructor(bpf: None) -> None:
    gc.collect()
    before = bpf_fds()
    with pytest.raises(TypeError, match=r"MapHandle\.create"):
        tm.Map.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    with pytest.raises(TypeError, match="from_fd"):
        tm.Map.from_fd(0)
    assert bpf_fds() == before


def test_as_libbpf_object_is_the_struct_bpf_map(flows_obj: tm.BpfObject) -> None:
    m = flows_obj.maps["flows"]
    ptr = m.as_libbpf_object()
    assert ffi.typeof(ptr) is ffi.typeof("struct bpf_map *")
    lib = get_lib()
    assert ffi.string(lib.bpf_map__name(ptr)) == b"flows"
    flows_obj.load()
    assert lib.bpf_map__fd(m.as_libbpf_object()) == m.fileno()


# ---------------------------------------------------------------------- test_run


def test_test_run_result_and_argument_checks(flows_obj: tm.BpfObject) -> None:
    flows_obj.load()
    prog = flows_obj.programs["count_flows"]
    frame = ipv4_frame("10.0.0.1", "10.0.0.2", UDP, 1, 2, payload=100)
    r = prog.test_run(frame, repeat=100)
    assert r.retval == XDP_PASS
    assert r.data_out == frame
    assert 0 < r.duration_ns < 1_000_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.retval = 0  # type: ignore[misc]
    assert prog.test_run(frame, data_size_out=0).data_out == b""
    before = os.sched_getaffinity(0)
    bad_cpu = max(tm.num_possible_cpus(), max(before) + 1)
    bad_calls: list[Callable[[], object]] = [
        lambda: prog.test_run(frame, cpu=bad_cpu),
        lambda: prog.test_run(frame, cpu=-1),
        lambda: prog.test_run(frame, repeat=0),
        lambda: prog.test_run(frame, data_size_out=-1),
        lambda: prog.test_run("text"),  # type: ignore[arg-type]
    ]
    for bad in bad_calls:
        with pytest.raises(tm.ArgumentError):
            bad()
    with pytest.raises(tm.ArgumentError, match="14 bytes"):
        prog.test_run(b"\x00" * 10)
    assert os.sched_getaffinity(0) == before
    # nothing ran for the refused calls: 100 + 1 packets
    assert flows_obj.maps[".bss"].lookup(u32(0)) == struct.pack("<Q", 101)
    with pytest.raises(tm.ObjectError, match="data_out needs") as exc:
        prog.test_run(frame, data_size_out=16)
    assert exc.value.errno == errno.ENOSPC
    # a kernel error during a pinned run still restores the thread's affinity
    for cpu in cpus():
        with pytest.raises(tm.ObjectError, match="data_out needs"):
            prog.test_run(frame, cpu=cpu, data_size_out=16)
        assert os.sched_getaffinity(0) == before


def test_events_queue_and_cpu_pinning(bpf: None) -> None:
    """The socket filter records the CPU it ran on: test_run(cpu=N) is honoured."""
    with tm.BpfObject.open(bpf_object("events")) as obj:
        data = obj.maps[".data"]
        data.set_variable("next_seq", u32(100))
        obj.load()
        prog = obj.programs["record_events"]
        assert prog.type is tm.ProgramType.SOCKET_FILTER
        frames = [
            ipv4_frame("10.0.0.1", "10.0.0.2", TCP, 1, 2, payload=5),
            ipv4_frame("10.0.0.1", "10.0.0.2", UDP, 1, 2, payload=50),
            arp_frame(),
        ]
        runs = [(cpu, f) for cpu in cpus() for f in frames]
        for cpu, frame in runs:
            r = prog.test_run(frame, cpu=cpu)
            assert r.retval == len(frame) - ETH_HLEN  # offset 0 is the network header
        q = tm.TypedQueue(obj.maps["events"], value=DataclassStruct(Event))
        events = list(q.drain())
        assert [e.seq for e in events] == list(range(100, 100 + len(runs)))
        assert [e.cpu for e in events] == [cpu for cpu, _ in runs]
        assert [e.len for e in events] == [len(f) - ETH_HLEN for _, f in runs]
        assert [(e.protocol, e.ip_proto) for e in events[:3]] == [
            (0x0800, TCP),
            (0x0800, UDP),
            (0x0806, 0),
        ]
        assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))
        # overflow: 64 slots, the rest is counted as lost by the program
        for _ in range(70):
            prog.test_run(frames[0])
        assert len(list(q.drain())) == 64
        assert obj.maps[".bss"].lookup(u32(0)) == struct.pack("<Q", 6)
        assert obj.maps[".data"].lookup(u32(0)) == u32(100 + len(runs) + 70)


def test_raw_tracepoint_test_run_on_each_cpu(bpf: None) -> None:
    """Raw tracepoints run on the asked CPU through BPF_F_TEST_RUN_ON_CPU."""
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        ro = obj.maps[".rodata"]
        ro.set_variable("target_syscall", struct.pack("<q", 12345))
        obj.load()
        prog = obj.programs["count_syscalls"]
        assert prog.type is tm.ProgramType.RAW_TRACEPOINT
        args = struct.pack("<QQ", 0, 12345)
        online = sorted(int(c) for c in cpus())
        for cpu in online:
            assert prog.test_run(ctx_in=args, cpu=cpu).retval == 0
        prog.test_run(ctx_in=struct.pack("<QQ", 0, 1))  # another syscall: not counted
        assert obj.maps[".bss"].lookup(u32(0)) == struct.pack("<Q", len(online))
        with pytest.raises(tm.ObjectError):
            prog.test_run(b"x" * 20, ctx_in=args)  # raw_tp runs take no packet


def test_attach_needs_an_attach_point(flows_obj: tm.BpfObject) -> None:
    flows_obj.load()
    with pytest.raises(tm.NotSupportedError, match="auto-attach"):
        flows_obj.programs["count_flows"].attach()


# ---------------------------------------------------------------------- tracing


def test_tracepoint_counts_syscalls_until_detached(bpf: None) -> None:
    nr = GETPPID_NR.get(platform.machine())
    need(nr is not None, f"no getppid number for {platform.machine()}")
    assert nr is not None
    pid = os.getpid()
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        ro = obj.maps[".rodata"]
        ro.set_variable("target_tgid", u32(pid))
        ro.set_variable("target_syscall", struct.pack("<q", nr))
        obj.load()
        calls = tm.TypedMap(obj.maps["calls_by_pid"], key=cs.Int32ul, value=cs.Int64ul)
        bss = obj.maps[".bss"]
        data = obj.maps[".data"]

        def total() -> int:
            raw = bss.lookup(u32(0))
            assert raw is not None
            return int.from_bytes(raw, "little")

        assert calls.get(pid) is None
        with obj.programs["count_syscalls"].attach() as link:
            assert link.attached
            assert link.fd >= 0
            for _ in range(500):
                os.getppid()
            counted = calls[pid]
            assert 500 <= counted <= 510  # other threads of ours may call it too
            assert total() == counted
            assert list(calls) == [pid]  # only this process is counted

            data.update(u32(0), u32(0))  # enabled = 0 in .data, while attached
            for _ in range(100):
                os.getppid()
            assert calls[pid] == counted
            data.update(u32(0), u32(1))
            for _ in range(50):
                os.getppid()
            counted = calls[pid]
            assert counted >= 550
        assert not link.attached
        link.detach()  # idempotent
        for _ in range(200):
            os.getppid()
        assert calls[pid] == counted
        with pytest.raises(tm.MapClosedError):
            _ = link.fd
