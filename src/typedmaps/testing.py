"""A real network to attach programs to: a network namespace joined to this one by a veth pair.

For tests and demos of XDP, tc, cgroup and socket programs with real
packets instead of BPF_PROG_TEST_RUN::

    from typedmaps.testing import VethPair

    with VethPair.create() as pair:          # needs root and iproute2 (`ip`)
        link = prog.attach_xdp(pair.host)     # the end in this namespace
        pair.send_udp(100, port=4242)         # sent from inside the namespace
        ...

:meth:`VethPair.create` makes a network namespace and a veth pair whose
``host`` end stays in the caller's namespace and whose ``peer`` end lives in
the new one, with the two addresses of one private /30 (chosen at random in
10.0.0.0/8, checked against every address and route here, so that
concurrent test runs do not collide) and IPv6 off on both ends (no
neighbour discovery noise). Nothing else routes to that /30: packets sent
to it stay on the two interfaces. :meth:`VethPair.close` (or the end of the
``with`` block) deletes both; :func:`cleanup` removes what a crashed run
left behind, matching only names with the given prefix whose creating
process is gone.

Names: the namespace is ``<prefix>-<pid>-<random>``, the interfaces
``<prefix><pid>h<random>`` and ``<prefix><pid>p<random>`` (15 bytes at most).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

__all__ = ["UdpSender", "VethPair", "cleanup"]

_PREFIX = re.compile(r"[a-z]{1,4}")
#: A datagram sender for inside the namespace: only the standard library,
#: started with -I -S so that it costs a few milliseconds.
_SENDER = r"""
import socket, sys, time
src, sport, dst, port, count, payload, replies, timeout = sys.argv[1:9]
count, replies, timeout = int(count), int(replies), float(timeout)
payload = bytes.fromhex(payload)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, int(sport)))
for _ in range(count):
    s.sendto(payload, (dst, int(port)))
got = 0
deadline = time.monotonic() + timeout
while got < replies and time.monotonic() < deadline:
    s.settimeout(max(0.001, deadline - time.monotonic()))
    try:
        s.recv(65536)
    except socket.timeout:
        break
    got += 1
sys.exit(0 if got >= replies else 3)
"""


def _ip() -> str:
    exe = shutil.which("ip") or "/usr/sbin/ip"
    if not os.path.exists(exe):
        raise FileNotFoundError(
            "typedmaps.testing needs iproute2's `ip` (apt-get install iproute2)"
        )
    return exe


def _run(args: Sequence[str], *, input: str | None = None) -> str:
    proc = subprocess.run(
        [_ip(), *args], input=input, capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _taken(ignore_dev: str | None = None) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this namespace has an address or a route in (but on ``ignore_dev``)."""
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_run(["-j", "-4", "addr", "show"]) or "[]"):
        if entry.get("ifname") == ignore_dev:
            continue
        for a in entry.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for r in json.loads(_run(["-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = r.get("dst", "")
        if r.get("dev") == ignore_dev or not dst or dst == "default":
            continue
        try:
            nets.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    return nets


def _pick_network() -> ipaddress.IPv4Network:
    taken = _taken()
    for _ in range(64):
        base = 0x0A000000 | (secrets.randbits(22) << 2)  # 10.x.y.z/30
        net = ipaddress.IPv4Network((base, 30))
        if net.network_address.packed[1] == 0:
            continue  # leave 10.0.0.0/16 alone: the most used corner of 10/8
        if not any(net.overlaps(t) for t in taken):
            return net
    raise OSError("no free /30 found in 10.0.0.0/8")


class UdpSender:
    """A datagram sender running inside the namespace (from :meth:`VethPair.start_udp`)."""

    def __init__(self, proc: subprocess.Popen[str], replies: int, timeout: float) -> None:
        self._proc = proc
        self._replies = replies
        self._timeout = timeout

    def wait(self) -> None:
        """Wait until it is done.

        Raises:
            OSError: it failed, or fewer replies than asked for came back.
        """
        try:
            _, err = self._proc.communicate(timeout=self._timeout + 30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise OSError("the UDP sender did not finish in time") from None
        if self._proc.returncode == 3:
            raise OSError(f"fewer than {self._replies} replies within {self._timeout} s")
        if self._proc.returncode != 0:
            raise OSError(f"the UDP sender failed ({self._proc.returncode}): {err.strip()}")


@dataclass
class VethPair:
    """A network namespace and a veth pair into it, with the two addresses of a /30.

    Attributes:
        netns: the namespace's name (``ip netns exec <netns> ...``).
        host: the interface in the caller's namespace (attach programs here).
        peer: the interface inside ``netns``.
        network: the /30 the two addresses come from.
        host_addr: the address of ``host`` (the first of the /30).
        peer_addr: the address of ``peer`` (the second).
        host_ifindex: the ifindex of ``host``.
    """

    netns: str
    host: str
    peer: str
    network: ipaddress.IPv4Network
    host_addr: ipaddress.IPv4Address
    peer_addr: ipaddress.IPv4Address
    host_ifindex: int
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def create(cls, prefix: str = "tmv") -> VethPair:
        """Make the namespace and the veth pair (root and iproute2 needed).

        Args:
            prefix: 1-4 lower-case letters that start every name made (and
                that :func:`cleanup` matches).

        Raises:
            OSError: ``ip`` failed (the message has its stderr); whatever
                was made is removed again.
        """
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix must be 1-4 lower-case letters, not {prefix!r}")
        pid = os.getpid()
        rand = secrets.token_hex(2)[:3]
        netns = f"{prefix}-{pid}-{rand}"
        host, peer = f"{prefix}{pid}h{rand}", f"{prefix}{pid}p{rand}"
        for _ in range(3):
            net = _pick_network()
            h_addr, p_addr = net.network_address + 1, net.network_address + 2
            try:
                _run(["netns", "add", netns])
                # IPv6 off in the namespace before the peer moves in, and on the
                # host end before it comes up: no neighbour discovery noise.
                _run(
                    [
                        "netns",
                        "exec",
                        netns,
                        "sh",
                        "-c",
                        "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; "
                        "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
                    ]
                )
                _run(["link", "add", host, "type", "veth", "peer", "name", peer, "netns", netns])
                v6 = f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6"
                if os.path.exists(v6):
                    with open(v6, "w") as f:
                        f.write("1")
                _run(
                    ["-n", netns, "-batch", "-"],
                    input=f"addr add {p_addr}/30 dev {peer}\nlink set {peer} up\nlink set lo up\n",
                )
                _run(
                    ["-batch", "-"],
                    input=f"addr add {h_addr}/30 dev {host}\nlink set {host} up\n",
                )
                pair = cls(netns, host, peer, net, h_addr, p_addr, _ifindex(host))
            except BaseException:
                _delete(netns, host)
                raise
            # Another run may have picked the same /30 at the same moment.
            if not any(net.overlaps(t) for t in _taken(ignore_dev=host)):
                return pair
            pair.close()
        raise OSError("could not claim a free /30 (three collisions)")

    # ------------------------------------------------------------------ traffic

    def command(
        self, argv: Sequence[str], *, cgroup: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """The command line that runs ``argv`` inside the namespace (optionally in ``cgroup``).

        With ``cgroup``, the process joins that cgroup v2 directory first,
        so everything it sends is the cgroup's traffic.
        """
        inner = [_ip(), "netns", "exec", self.netns, *argv]
        if cgroup is None:
            return inner
        procs = os.path.join(os.fsdecode(cgroup), "cgroup.procs")
        return ["sh", "-c", 'echo 0 > "$0" && exec "$@"', procs, *inner]

    def send_udp(
        self,
        count: int,
        port: int,
        *,
        payload: bytes = b"typedmaps",
        source_port: int = 0,
        cgroup: str | os.PathLike[str] | None = None,
    ) -> None:
        """Send ``count`` UDP datagrams from ``peer_addr`` to ``host_addr:port``, from inside.

        Returns when all are sent (the sender process has exited).

        Args:
            payload: every datagram's payload.
            source_port: the sender's port (0: any).
            cgroup: run the sender in this cgroup v2 directory.

        Raises:
            OSError: the sender failed.
        """
        self.start_udp(count, port, payload=payload, source_port=source_port, cgroup=cgroup).wait()

    def start_udp(
        self,
        count: int,
        port: int,
        *,
        payload: bytes = b"typedmaps",
        source_port: int = 0,
        cgroup: str | os.PathLike[str] | None = None,
        replies: int = 0,
        timeout: float = 10.0,
    ) -> UdpSender:
        """Like :meth:`send_udp`, but return at once; the sender then waits for ``replies``.

        ``wait()`` on the result returns when the sender has sent everything
        and received ``replies`` datagrams back (within ``timeout`` seconds).
        """
        if not 0 <= count <= 100_000 or not 0 <= replies <= 100_000:
            raise ValueError("count and replies must be in [0, 100000]")
        argv = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _SENDER,
            str(self.peer_addr),
            str(source_port),
            str(self.host_addr),
            str(port),
            str(count),
            payload.hex(),
            str(replies),
            str(timeout),
        ]
        proc = subprocess.Popen(
            self.command(argv, cgroup=cgroup),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return UdpSender(proc, replies, timeout)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Delete the veth pair and the namespace (idempotent)."""
        if self._closed:
            return
        self._closed = True
        _delete(self.netns, self.host)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            self.close()


def _ifindex(name: str) -> int:
    return int(json.loads(_run(["-j", "link", "show", "dev", name]))[0]["ifindex"])


def _delete(netns: str, host: str | None) -> None:
    """Remove the host end (which takes its peer along) and the namespace; ignore what is gone."""
    ip = _ip()
    if host is not None:
        subprocess.run([ip, "link", "del", host], capture_output=True, check=False, timeout=30)
    subprocess.run([ip, "netns", "del", netns], capture_output=True, check=False, timeout=30)


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def cleanup(prefix: str = "tmv") -> list[str]:
    """Remove namespaces and veths named with ``prefix`` whose creating process is gone.

    Returns what was removed. Pairs of running processes (a concurrent test
    run) are left alone.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix must be 1-4 lower-case letters, not {prefix!r}")
    removed: list[str] = []
    ns_re = re.compile(rf"{prefix}-(\d+)-[0-9a-f]+")
    if_re = re.compile(rf"{prefix}(\d+)[hp][0-9a-f]+")
    for entry in json.loads(_run(["-j", "link", "show"]) or "[]"):
        name = entry.get("ifname", "")
        m = if_re.fullmatch(name)
        if m and not _alive(int(m.group(1))):
            subprocess.run([_ip(), "link", "del", name], capture_output=True, check=False)
            removed.append(name)
    for entry in json.loads(_run(["-j", "netns", "list"]) or "[]"):
        name = entry.get("name", "")
        m = ns_re.fullmatch(name)
        if m and not _alive(int(m.group(1))):
            _delete(name, None)
            removed.append(name)
    return removed


def _main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "cleanup":
        for prefix in argv[1:] or ["tmv"]:
            for name in cleanup(prefix):
                print(f"removed {name}")
        return 0
    print("usage: python -m typedmaps.testing cleanup [PREFIX ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
