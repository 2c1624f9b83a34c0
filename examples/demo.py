"""typedmaps demo: load a flow-accounting XDP program, feed it packets, read typed maps.

What happens:

1. build/bpf/flows.bpf.o (bpf/flows.bpf.c) is opened with libbpf and set up
   before load: a bigger flow table, and a .rodata setting that makes the
   program drop telnet (TCP port 23).
2. A few hundred synthetic Ethernet/IPv4 TCP, UDP and ICMP frames (and some
   ARP) go through the program with BPF_PROG_TEST_RUN, on every CPU this
   process may use: test_run(cpu=N) pins the thread to CPU N for the run.
3. The kernel's results are read back typed: the flow HASH as
   TypedMap[FlowKey, FlowStats], the per-CPU counters as PerCpuTypedMap
   (one value per possible CPU), the LRU of sources, and .bss.

Run it with `make demo` (it builds the BPF object first) or
`.venv/bin/python examples/demo.py` as root.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import random
import re
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

import typedmaps as tm

ROOT = Path(__file__).resolve().parent.parent
OBJECT = ROOT / "build" / "bpf" / "flows.bpf.o"
PACKETS_PER_CPU = 300
BLOCKED_PORT = 23

TCP, UDP, ICMP = 6, 17, 1
PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
CLASS_NAMES = ["other IPv4", "tcp", "udp", "icmp", "non-IP"]
VERDICT_NAMES = ["ABORTED", "DROP", "PASS", "TX", "REDIRECT"]


# ---------------------------------------------------------------------- records (bpf/flows.bpf.c)


@dataclasses.dataclass(unsafe_hash=True)
class FlowKey(DataclassMixin):
    """struct flow_key: addresses as on the wire, ports in host order, 3 bytes of padding."""

    saddr: bytes = csfield(cs.Bytes(4))
    daddr: bytes = csfield(cs.Bytes(4))
    sport: int = csfield(cs.Int16ul)
    dport: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    _pad: None = csfield_noinit(cs.Padding(3))


@dataclasses.dataclass
class FlowStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)
    first_seen_ns: int = csfield(cs.Int64ul)
    last_seen_ns: int = csfield(cs.Int64ul)


@dataclasses.dataclass
class ProtoStats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


# ---------------------------------------------------------------------- synthetic packets


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ipv4_frame(src: str, dst: str, proto: int, sport: int, dport: int, *, payload: int) -> bytes:
    """Ethernet + IPv4 (with a valid checksum) + TCP/UDP/ICMP header + zero payload."""
    if proto == TCP:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 64240, 0, 0)
    elif proto == UDP:
        l4 = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    else:
        l4 = struct.pack("!BBHHH", 8, 0, 0, 1, 1)
    body = l4 + bytes(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        0,
        0x4000,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return bytes.fromhex("02000000000a 020000000001".replace(" ", "")) + b"\x08\x00" + ip + body


ARP = b"\xff" * 6 + bytes.fromhex("020000000001") + b"\x08\x06" + bytes(28)

# (client, server, protocol, server port): a small office's traffic
FLOWS = [
    ("10.0.0.11", "93.184.216.34", TCP, 443),
    ("10.0.0.11", "142.250.74.46", TCP, 443),
    ("10.0.0.12", "93.184.216.34", TCP, 80),
    ("10.0.0.12", "10.0.0.1", UDP, 53),
    ("10.0.0.13", "10.0.0.1", UDP, 53),
    ("10.0.0.13", "162.159.200.1", UDP, 123),
    ("10.0.0.14", "10.0.0.2", TCP, 22),
    ("10.0.0.15", "10.0.0.3", TCP, BLOCKED_PORT),
    ("10.0.0.14", "10.0.0.1", ICMP, 0),
]


def traffic(rng: random.Random, n: int) -> list[bytes]:
    """n frames: mostly the flows above (weighted), some ARP."""
    frames = []
    weights = [30, 12, 10, 8, 6, 3, 8, 2, 3]
    for _ in range(n):
        if rng.random() < 0.04:
            frames.append(ARP)
            continue
        client, server, proto, port = rng.choices(FLOWS, weights)[0]
        sport = 0 if proto == ICMP else 40000 + 17 * FLOWS.index((client, server, proto, port))
        size = rng.choice((0, 40, 200, 512, 1200)) if proto == TCP else rng.randint(20, 120)
        frames.append(ipv4_frame(client, server, proto, sport, port, payload=size))
    return frames


# ---------------------------------------------------------------------- output


def _numeric(cell: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?( / \d+)?", cell) is not None


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table: numbers right-aligned, text left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = [all(_numeric(r[i]) for r in rows) for i in range(len(headers))]
    fmt = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right, strict=True))
    line = "  ".join("-" * w for w in widths)
    out = [fmt.format(*headers), line, *(fmt.format(*r) for r in rows)]
    return "\n".join(x.rstrip() for x in out)


def endpoint(addr: bytes, port: int, proto: int) -> str:
    ip = str(ipaddress.IPv4Address(addr))
    return ip if proto == ICMP else f"{ip}:{port}"


# ---------------------------------------------------------------------- main


def main() -> int:
    if not OBJECT.exists():
        subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "bpf"], check=True)
    started = time.perf_counter()
    cpus = sorted(os.sched_getaffinity(0))
    ncpus = tm.num_possible_cpus()
    rng = random.Random(4)

    with tm.BpfObject.open(OBJECT) as obj:
        obj.maps["flows"].max_entries = 4096
        obj.maps[".rodata"].set_variable("blocked_port", struct.pack("<H", BLOCKED_PORT))
        obj.load()
        prog = obj.programs["count_flows"]
        print(
            f"loaded {OBJECT.relative_to(ROOT)}: program {prog.name!r} ({prog.type.name}), "
            f"maps {', '.join(obj.maps)}"
        )

        sent: Counter[int] = Counter()
        verdicts_seen: Counter[int] = Counter()
        run_ns = 0
        for cpu in cpus:
            for frame in traffic(rng, PACKETS_PER_CPU):
                r = prog.test_run(frame, cpu=cpu)
                verdicts_seen[r.retval] += 1
                run_ns += r.duration_ns
                sent[cpu] += 1
        total = sum(sent.values())
        print(
            f"sent {total} frames through BPF_PROG_TEST_RUN on CPU(s) {cpus} "
            f"({ncpus} possible); average in-kernel run {run_ns / total:.0f} ns\n"
        )

        # -- the flow HASH, typed
        flows = tm.TypedMap(
            obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
        )
        rows = []
        for key, st in sorted(flows.items(), key=lambda kv: -kv[1].bytes):
            rows.append(
                [
                    PROTO_NAMES.get(key.proto, str(key.proto)),
                    endpoint(key.saddr, key.sport, key.proto),
                    endpoint(key.daddr, key.dport, key.proto),
                    str(st.packets),
                    str(st.bytes),
                    f"{(st.last_seen_ns - st.first_seen_ns) / 1e6:.2f}",
                    "dropped" if key.dport == BLOCKED_PORT and key.proto == TCP else "",
                ]
            )
        print(f"flows ({len(rows)} entries, HASH of struct flow_key -> struct flow_stats)")
        print(table(["proto", "source", "destination", "packets", "bytes", "active ms", ""], rows))

        # -- per-CPU counters, typed: one value per possible CPU
        stats = tm.PerCpuTypedMap(
            obj.maps["proto_stats"], key=cs.Int32ul, value=DataclassStruct(ProtoStats)
        )
        verdicts = tm.PerCpuTypedMap(obj.maps["verdicts"], key=cs.Int32ul, value=cs.Int64ul)
        rows = []
        for cls, per_cpu in stats.items():
            if not any(s.packets for s in per_cpu):
                continue
            cells = [f"{per_cpu[c].packets} / {per_cpu[c].bytes}" for c in cpus]
            tot = ProtoStats(sum(s.packets for s in per_cpu), sum(s.bytes for s in per_cpu))
            rows.append([CLASS_NAMES[cls], *cells, f"{tot.packets} / {tot.bytes}"])
        for action, counts in verdicts.items():
            if any(counts):
                cells = [str(counts[c]) for c in cpus]
                rows.append([f"verdict {VERDICT_NAMES[action]}", *cells, str(sum(counts))])
        print("\nper-CPU counters (PERCPU_ARRAY proto_stats: packets / bytes; verdicts: packets)")
        print(table(["counter", *(f"cpu{c}" for c in cpus), "total"], rows))
        idle = [c for c in range(ncpus) if c not in cpus]
        if idle:
            quiet = all(s[c].packets == 0 for _, s in stats.items() for c in idle) and all(
                v[c] == 0 for _, v in verdicts.items() for c in idle
            )
            print(f"({len(idle)} other possible CPU(s): {'all zero' if quiet else 'NOT zero'})")

        # -- the LRU of sources and the .bss counter
        sources = tm.TypedMap(obj.maps["sources"], key=cs.Bytes(4), value=cs.Int64ul)
        top = sorted(sources.items(), key=lambda kv: -kv[1])
        print("\nsources (LRU_HASH)")
        print(
            table(
                ["source", "packets"],
                [[str(ipaddress.IPv4Address(a)), str(n)] for a, n in top],
            )
        )
        bss = obj.maps[".bss"].lookup(struct.pack("<I", 0)) or bytes(8)
        (seen,) = struct.unpack("<Q", bss)
        print(f"\n.bss total_packets = {seen}")

        # sanity: what the kernel counted is what we sent
        ok = (
            seen == total
            and sum(verdicts_seen.values()) == total
            and all(sum(v[c] for _, v in verdicts.items()) == sent[c] for c in cpus)
        )
    elapsed = time.perf_counter() - started
    print(f"\n{'consistent' if ok else 'MISMATCH'}: done in {elapsed:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
