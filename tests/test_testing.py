"""typedmaps.testing: the namespace + veth test bed is what it says, and leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

from typedmaps.testing import VethPair, cleanup

from .attach_support import PREFIX


def ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    result: list[dict[str, object]] = json.loads(out or "[]")
    return result


def ipv4_on(netns: str | None = None) -> dict[str, list[str]]:
    """ifname -> its IPv4 addresses with prefix, here or in ``netns``."""
    args = ["-n", netns] if netns else []
    return {
        str(e["ifname"]): [
            f"{a['local']}/{a['prefixlen']}"
            for a in e.get("addr_info", [])  # type: ignore[attr-defined]
        ]
        for e in ip_json(*args, "-4", "addr", "show")
    }


def test_the_pair_has_one_private_slash_30_on_its_two_ends_only(veth: VethPair) -> None:
    net = veth.network
    assert net.prefixlen == 30
    assert net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
    assert veth.host_addr == net.network_address + 1
    assert veth.peer_addr == net.network_address + 2
    assert str(os.getpid()) in veth.netns
    assert str(os.getpid()) in veth.host
    assert len(veth.host.encode()) <= 15
    assert len(veth.peer.encode()) <= 15
    here = ipv4_on()
    assert here[veth.host] == [f"{veth.host_addr}/30"]
    others = [a for name, addrs in here.items() if name != veth.host for a in addrs]
    assert not any(ipaddress.IPv4Network(a, strict=False).overlaps(net) for a in others)
    inside = ipv4_on(veth.netns)
    assert inside == {"lo": ["127.0.0.1/8"], veth.peer: [f"{veth.peer_addr}/30"]}
    assert veth.host_ifindex == ip_json("link", "show", "dev", veth.host)[0]["ifindex"]
    with open(f"/proc/sys/net/ipv6/conf/{veth.host}/disable_ipv6") as f:
        assert f.read().strip() == "1"


def test_close_removes_the_namespace_and_both_ends(bpf: None) -> None:
    pair = VethPair.create(prefix=PREFIX)
    pair.close()
    pair.close()  # idempotent
    assert pair.netns not in {e["name"] for e in ip_json("netns", "list")}
    assert pair.host not in {e["ifname"] for e in ip_json("link", "show")}


def test_cleanup_removes_only_leftovers_of_dead_processes(veth: VethPair) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    assert not os.path.exists(f"/proc/{pid}")
    ns, dev, peer = f"{PREFIX}-{pid}-abc", f"{PREFIX}{pid}habc", f"{PREFIX}{pid}pabc"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name", peer], check=True)
    try:
        removed = cleanup(PREFIX)
        assert ns in removed
        assert dev in removed
        assert veth.netns not in removed
        assert veth.host not in removed
        assert veth.netns in {e["name"] for e in ip_json("netns", "list")}
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", dev], capture_output=True, check=False)


def test_prefixes_are_checked() -> None:
    for bad in ["", "TOOLONG", "a-b", "x1"]:
        with pytest.raises(ValueError, match="prefix"):
            VethPair.create(prefix=bad)
        with pytest.raises(ValueError, match="prefix"):
            cleanup(bad)
