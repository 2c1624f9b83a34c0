"""typedmaps demo: an XDP flow-accounting program on a real interface, real packets, typed maps.

What happens:

1. build/bpf/flows.bpf.o (bpf/flows.bpf.c) is opened with libbpf and set up
   before load: a bigger flow table, and a .rodata setting that makes the
   program drop everything to port 23 (telnet).
2. A network namespace and a veth pair into it are made
   (typedmaps.testing.VethPair: one private /30, only on those two ends).
   The program is attached to the end in this namespace with attach_xdp().
3. From inside the namespace, real sockets send traffic to this end: DNS-
   and NTP-like UDP datagrams, a bulk UDP stream, a TCP connection that
   uploads 256 KiB, and UDP to port 23, which the program drops. Servers
   here receive what passes.
4. The kernel's results are read back typed: the flow HASH as
   TypedMap[FlowKey, FlowStats], the per-CPU counters as PerCpuTypedMap (one
   value per possible CPU), the LRU of sources, and .bss; the UDP counts
   are checked against what was sent.
5. The program is detached and the namespace and veth pair are removed,
   also on Ctrl-C or a failure.

Run it with `make demo` (it builds the BPF object first) or
`.venv/bin/python examples/demo.py` as root.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield, csfield_noinit

import typedmaps as tm
from typedmaps.testing import VethPair

ROOT = Path(__file__).resolve().parent.parent
OBJECT = ROOT / "build" / "bpf" / "flows.bpf.o"
BLOCKED_PORT = 23
TCP, UDP, ICMP = 6, 17, 1
PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
CLASS_NAMES = ["other IPv4", "tcp", "udp", "icmp", "non-IP"]
VERDICT_NAMES = ["ABORTED", "DROP", "PASS", "TX", "REDIRECT"]

# (source port, destination port, datagrams, payload bytes): what the namespace sends
UDP_FLOWS = [
    (40053, 53, 60, 40),  # DNS-like queries
    (40123, 123, 12, 48),  # NTP-like
    (40900, 9000, 400, 1200),  # a bulk stream
    (40023, BLOCKED_PORT, 25, 30),  # telnet's port: dropped by the program
]
TCP_PORT = 8080
TCP_BYTES = 256 * 1024

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


# ---------------------------------------------------------------------- traffic

#: Runs inside the namespace: the UDP flows, then one TCP upload.
_CLIENT = r"""
import socket, sys
src, dst, tcp_port, tcp_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for spec in sys.argv[5:]:
    sport, dport, count, size = map(int, spec.split(":"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, sport))
        for _ in range(count):
            s.sendto(b"x" * size, (dst, dport))
with socket.create_connection((dst, tcp_port), timeout=20, source_address=(src, 0)) as c:
    c.sendall(b"y" * tcp_bytes)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
"""


class Servers:
    """UDP sinks and a TCP sink on this end of the pair, counting what reaches them."""

    def __init__(self, addr: str) -> None:
        self.udp: dict[int, socket.socket] = {}
        self.received: dict[int, int] = {}
        for _, dport, _, _ in UDP_FLOWS:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((addr, dport))
            s.settimeout(0.2)
            self.udp[dport] = s
            self.received[dport] = 0
        self.tcp = socket.create_server((addr, TCP_PORT))
        self.tcp_bytes = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.tcp.settimeout(30)
        try:
            conn, _ = self.tcp.accept()
        except OSError:
            return
        with conn:
            while chunk := conn.recv(65536):
                self.tcp_bytes += len(chunk)
            conn.sendall(b"k")

    def drain(self) -> None:
        for port, s in self.udp.items():
            while True:
                try:
                    s.recv(65536)
                except (TimeoutError, BlockingIOError):
                    break
                self.received[port] += 1

    def close(self) -> None:
        for s in self.udp.values():
            s.close()
        self.tcp.close()
        self._thread.join(timeout=5)


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


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # run the finally blocks: detach, remove the namespace


def run(obj: tm.BpfObject, pair: VethPair) -> bool:
    prog = obj.programs["count_flows"]
    servers = Servers(str(pair.host_addr))
    try:
        with prog.attach_xdp(pair.host) as link:
            print(f"attached: {link}")
            client = subprocess.run(
                pair.command(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        "-c",
                        _CLIENT,
                        str(pair.peer_addr),
                        str(pair.host_addr),
                        str(TCP_PORT),
                        str(TCP_BYTES),
                        *(f"{s}:{d}:{n}:{size}" for s, d, n, size in UDP_FLOWS),
                    ]
                ),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if client.returncode != 0:
                print(f"the client in {pair.netns} failed: {client.stderr.strip()}")
                return False
            time.sleep(0.05)  # the last segments' softirq on the other CPU
            servers.drain()
        print(f"detached: {link}\n")
    finally:
        servers.close()

    # -- the flow HASH, typed
    flows = tm.TypedMap(
        obj.maps["flows"], key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats)
    )
    rows = []
    table_rows = sorted(flows.items(), key=lambda kv: -kv[1].bytes)
    for key, st in table_rows:
        rows.append(
            [
                PROTO_NAMES.get(key.proto, str(key.proto)),
                endpoint(key.saddr, key.sport, key.proto),
                endpoint(key.daddr, key.dport, key.proto),
                str(st.packets),
                str(st.bytes),
                f"{(st.last_seen_ns - st.first_seen_ns) / 1e6:.2f}",
                "dropped" if key.dport == BLOCKED_PORT else "",
            ]
        )
    print(f"flows ({len(rows)} entries, HASH of struct flow_key -> struct flow_stats)")
    print(table(["proto", "source", "destination", "packets", "bytes", "active ms", ""], rows))

    # -- per-CPU counters, typed: one value per possible CPU
    cpus = list(range(tm.num_possible_cpus()))
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

    # -- the LRU of sources and the .bss counter
    sources = tm.TypedMap(obj.maps["sources"], key=cs.Bytes(4), value=cs.Int64ul)
    print("\nsources (LRU_HASH)")
    print(
        table(
            ["source", "packets"],
            [[str(ipaddress.IPv4Address(a)), str(n)] for a, n in sources.items()],
        )
    )
    bss = obj.maps[".bss"].lookup(struct.pack("<I", 0)) or bytes(8)
    (seen,) = struct.unpack("<Q", bss)
    print(f"\n.bss total_packets = {seen} (every frame, ARP included)")

    # -- what the kernel counted is what was sent, flow by flow
    ok = True
    by_key = {(k.saddr, k.sport, k.dport, k.proto): v for k, v in table_rows}
    for sport, dport, count, size in UDP_FLOWS:
        found = by_key.get((pair.peer_addr.packed, sport, dport, UDP))
        want_bytes = count * (14 + 20 + 8 + size)
        got = (found.packets, found.bytes) if found else (0, 0)
        delivered = servers.received[dport]
        want_delivered = 0 if dport == BLOCKED_PORT else count
        good = got == (count, want_bytes) and delivered == want_delivered
        ok &= good
        print(
            f"udp :{dport:<5} sent {count:4}, counted {got[0]:4} packets / {got[1]:7} bytes, "
            f"delivered {delivered:4}  {'ok' if good else 'MISMATCH'}"
        )
    tcp_ok = servers.tcp_bytes == TCP_BYTES
    ok &= tcp_ok
    print(f"tcp :{TCP_PORT} uploaded {servers.tcp_bytes} of {TCP_BYTES} bytes through XDP_PASS")
    dropped = sum(verdicts[1])
    ok &= dropped >= UDP_FLOWS[-1][2]
    return ok


def main() -> int:
    if not OBJECT.exists():
        subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "bpf"], check=True)
    if os.geteuid() != 0:
        print("the demo attaches an XDP program to a veth pair it makes: run it as root")
        return 2
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    with tm.BpfObject.open(OBJECT) as obj:
        obj.maps["flows"].max_entries = 4096
        obj.maps[".rodata"].set_variable("blocked_port", struct.pack("<H", BLOCKED_PORT))
        obj.load()
        prog = obj.programs["count_flows"]
        print(
            f"loaded {OBJECT.relative_to(ROOT)}: program {prog.name!r} ({prog.type.name}), "
            f"maps {', '.join(obj.maps)}"
        )
        with VethPair.create(prefix="tmd") as pair:
            print(
                f"made netns {pair.netns} and veth {pair.host} <-> {pair.peer} "
                f"({pair.host_addr} <-> {pair.peer_addr}, {pair.network})"
            )
            ok = run(obj, pair)
        print(f"removed netns {pair.netns} and veth {pair.host}")
    elapsed = time.perf_counter() - started
    print(f"\n{'consistent' if ok else 'MISMATCH'}: done in {elapsed:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM) at any point, also while the namespace is being
        # made: the with-blocks have detached the program and removed the pair.
        print("\ninterrupted: the program was detached, the namespace and veth removed")
        sys.exit(130)
