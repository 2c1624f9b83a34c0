"""Packet programs attached where real traffic flows: XDP, tc, cgroup_skb, socket filters.

Each test makes its own network namespace and veth pair (the ``veth``
fixture, always removed) with the two addresses of one private /30, sends
UDP datagrams with real sockets from inside the namespace to the host end,
and checks that the program counted exactly those datagrams (the program
filters by the /30 and the port, so neighbour discovery, ARP and anything
else on the wire do not count). Detaching stops each count.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps.testing import VethPair

from .attach_support import (
    CGROUP_EGRESS,
    ETH_IP_UDP,
    SOCKET,
    TC_EGRESS,
    TC_INGRESS,
    XDP,
    counts,
    in_netns,
    open_attach,
    wait_for,
)

PORT = 4242
PAYLOAD = b"typedmaps-attach"  # 16 bytes
N = 40


def frame_bytes(n: int, payload: bytes = PAYLOAD) -> int:
    return n * (ETH_IP_UDP + len(payload))


def receiver(pair: VethPair, port: int = PORT) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((str(pair.host_addr), port))
    s.settimeout(5)
    return s


def drain(s: socket.socket, n: int) -> list[tuple[bytes, tuple[str, int]]]:
    """Receive exactly n datagrams (bounded by the socket timeout)."""
    return [s.recvfrom(2048) for _ in range(n)]


def qdiscs(dev: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-j", "link", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    tc = subprocess.run(
        ["tc", "-j", "qdisc", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out)
    return [q["kind"] for q in json.loads(tc or "[]")]


def xdp_state(dev: str) -> object:
    """What `ip link` says about the XDP program on ``dev`` (None: there is none)."""
    out = subprocess.run(
        ["ip", "-d", "-j", "link", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0].get("xdp")


# ---------------------------------------------------------------------- XDP


@pytest.mark.parametrize("mode", [None, "skb"])
def test_xdp_counts_every_datagram_exactly(veth: VethPair, mode: str | None) -> None:
    with open_attach(veth.network, PORT) as obj, receiver(veth) as rx:
        prog = obj.programs["xdp_count"]
        c = counts(obj)
        with prog.attach_xdp(veth.host, mode=mode) as link:
            assert link.kind == "xdp"
            assert link.attached
            assert link.info().type is tm.LinkType.XDP
            assert link.info().prog_id == prog.id
            veth.send_udp(N, PORT, payload=PAYLOAD)
            assert len(drain(rx, N)) == N  # the packets passed (XDP_PASS)
            assert c[XDP] == type(c[XDP])(N, frame_bytes(N))
        assert not link.attached
        veth.send_udp(5, PORT, payload=PAYLOAD)
        drain(rx, 5)
        assert c[XDP].packets == N  # detached: no longer counted


def test_xdp_by_ifindex_and_other_ports_do_not_count(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj, receiver(veth, PORT + 1) as rx:
        link = obj.programs["xdp_count"].attach_xdp(veth.host_ifindex, mode="skb")
        assert f"ifindex {veth.host_ifindex}" in link.target
        veth.send_udp(7, PORT + 1)  # another port: the program filters it out
        drain(rx, 7)
        assert counts(obj)[XDP].packets == 0
        link.close()


def test_a_second_xdp_program_is_refused_naming_the_interface(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj, open_attach(veth.network, PORT) as other:
        with obj.programs["xdp_count"].attach_xdp(veth.host, mode="skb"):
            prog_id = obj.programs["xdp_count"].id
            with pytest.raises(tm.ObjectError) as err:
                other.programs["xdp_count"].attach_xdp(veth.host, mode="skb")
            assert err.value.errno in (errno.EBUSY, errno.EEXIST)
            assert veth.host in str(err.value)
            assert f"id {prog_id}" in str(err.value)  # says which program is there
        # detached: now the other one can attach
        with other.programs["xdp_count"].attach_xdp(veth.host, mode="skb") as link:
            assert link.attached


def test_attach_errors_are_named_before_any_syscall(veth: VethPair) -> None:
    with tm.BpfObject.open("build/bpf/attach.bpf.o") as obj:
        xdp = obj.programs["xdp_count"]
        with pytest.raises(tm.ObjectError, match="not loaded"):
            xdp.attach_xdp(veth.host)  # attach before load
        obj.load()
        with pytest.raises(tm.ObjectError, match=r"no network interface named 'tmanope0'") as e:
            xdp.attach_xdp("tmanope0")
        assert e.value.errno == errno.ENODEV
        with pytest.raises(tm.ObjectError, match="no network interface with ifindex"):
            xdp.attach_xdp(2**31 - 2)
        for bad in ["", "x" * 16, "a/b", 0, -1, True, 1.5, None]:
            with pytest.raises((TypeError, ValueError)):
                xdp.attach_xdp(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'skb'"):
            xdp.attach_xdp(veth.host, mode="native")
        # a program type that does not fit the call
        with pytest.raises(tm.ObjectError, match=r"has type XDP; attach_tc needs SCHED_CLS"):
            xdp.attach_tc(veth.host)
        with pytest.raises(tm.ObjectError, match=r"has type SCHED_CLS; attach_xdp needs XDP"):
            obj.programs["tc_ingress"].attach_xdp(veth.host)
        with socket.socket() as s, pytest.raises(tm.ObjectError, match="needs SOCKET_FILTER"):
            xdp.attach_socket(s)
        with pytest.raises(tm.ObjectError, match="attach_cgroup needs CGROUP"):
            xdp.attach_cgroup("/sys/fs/cgroup")
        with pytest.raises(tm.ObjectError, match="attach_perf_event needs PERF_EVENT"):
            xdp.attach_perf_event(cpu=0, frequency=1)
        assert obj._links == []


def test_hostile_interface_names_are_named_errors(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj:
        xdp, tc = obj.programs["xdp_count"], obj.programs["tc_ingress"]
        # what the kernel's dev_valid_name() refuses, and what is not a name at all
        for bad in [".", "..", "a:b", "a\tb", "a\0b", "x" * 10_000, "é" * 8, b"lo", 2**64]:
            for call in (xdp.attach_xdp, tc.attach_tc):
                with pytest.raises(tm.ArgumentError, match="iface"):
                    call(bad)  # type: ignore[arg-type]
        # a name with undecodable bytes (surrogate escapes) is looked up as those bytes
        for call in (xdp.attach_xdp, tc.attach_tc):
            with pytest.raises(tm.ObjectError, match="no network interface named") as e:
                call("tma\udcff")
            assert e.value.errno == errno.ENODEV
    assert xdp_state(veth.host) is None
    assert "clsact" not in qdiscs(veth.host)


def test_drv_and_hw_modes_where_the_driver_has_them_or_a_clear_error(veth: VethPair) -> None:
    # veth has native XDP: drv mode works and counts like the others
    with open_attach(veth.network, PORT) as obj, receiver(veth) as rx:
        with obj.programs["xdp_count"].attach_xdp(veth.host, mode="drv") as link:
            assert link.target.endswith("drv mode")
            veth.send_udp(3, PORT, payload=PAYLOAD)
            drain(rx, 3)
            assert counts(obj)[XDP].packets == 3
        # veth has no XDP offload: a NotSupportedError naming the interface
        with pytest.raises(tm.NotSupportedError, match=rf"{veth.host}'s driver has no hw mode"):
            obj.programs["xdp_count"].attach_xdp(veth.host, mode="hw")


# ---------------------------------------------------------------------- tc


def test_tc_ingress_and_egress_count_exactly_and_clean_up_the_qdisc(veth: VethPair) -> None:
    assert "clsact" not in qdiscs(veth.host)
    with open_attach(veth.network, PORT) as obj, receiver(veth) as rx:
        c = counts(obj)
        ingress = obj.programs["tc_ingress"].attach_tc(veth.host, "ingress")
        egress = obj.programs["tc_egress"].attach_tc(veth.host, direction="egress")
        assert "clsact" in qdiscs(veth.host)  # created for us
        assert "ingress, priority" in ingress.target
        with pytest.raises(tm.NotSupportedError, match="not a BPF link"):
            ingress.pin("/sys/fs/bpf/never")
        with pytest.raises(tm.NotSupportedError):
            _ = ingress.fd
        # datagrams in, and one reply back out for each
        sender = veth.start_udp(N, PORT, payload=PAYLOAD, replies=N)
        for data, peer in drain(rx, N):
            rx.sendto(data, peer)
        sender.wait()
        assert c[TC_INGRESS] == type(c[TC_INGRESS])(N, frame_bytes(N))
        # the sender exits after N replies, so all of them have left the host end
        assert c[TC_EGRESS] == type(c[TC_EGRESS])(N, frame_bytes(N))
        ingress.detach()
        assert "clsact" in qdiscs(veth.host)  # egress still uses it
        egress.close()  # close() removes a tc filter too
        assert "clsact" not in qdiscs(veth.host)  # what we created is gone
        veth.send_udp(5, PORT)
        drain(rx, 5)
        assert c[TC_INGRESS].packets == N


def test_tc_leaves_an_existing_qdisc_and_foreign_filters_alone(veth: VethPair) -> None:
    subprocess.run(["tc", "qdisc", "add", "dev", veth.host, "clsact"], check=True)
    with open_attach(veth.network, PORT) as obj:
        prog = obj.programs["tc_ingress"]
        a = prog.attach_tc(veth.host, "ingress", priority=7, handle=3)
        assert "priority 7, handle 0x3" in a.target
        with pytest.raises(tm.ObjectError, match="already has a tc filter at priority 7") as e:
            prog.attach_tc(veth.host, "ingress", priority=7, handle=3)
        assert e.value.errno == errno.EEXIST
        a.detach()
        a.detach()  # idempotent
    assert "clsact" in qdiscs(veth.host)  # it was there before: still there


def ns_tc(veth: VethPair, what: str, *args: str) -> list[dict[str, object]]:
    """``tc -j <what> show dev <peer> ...`` inside the pair's namespace."""
    out = subprocess.run(
        ["ip", "netns", "exec", veth.netns, "tc", "-j", what, "show", "dev", veth.peer, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return list(json.loads(out or "[]"))


def test_a_tc_filter_is_removed_in_the_namespace_it_was_attached_in(veth: VethPair) -> None:
    # A thread inside the namespace attaches to the peer end; this thread (in
    # the caller's namespace, where the peer's ifindex is another interface or
    # none) lets go of it: the filter and the qdisc must go where they are.
    with open_attach(veth.network, PORT) as obj:
        prog = obj.programs["tc_ingress"]
        link = in_netns(veth.netns, lambda: prog.attach_tc(veth.peer, "ingress"))
        assert [f for f in ns_tc(veth, "filter", "ingress") if "options" in f]
        assert "clsact" in [q["kind"] for q in ns_tc(veth, "qdisc")]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.bind((str(veth.host_addr), 0))
            for _ in range(7):
                tx.sendto(PAYLOAD, (str(veth.peer_addr), PORT))
        assert wait_for(lambda: counts(obj)[TC_INGRESS].packets == 7)
        link.close()
        assert [f for f in ns_tc(veth, "filter", "ingress") if "options" in f] == []
        assert "clsact" not in [q["kind"] for q in ns_tc(veth, "qdisc")]
        # and again, released by the object's close() from this thread
        in_netns(veth.netns, lambda: prog.attach_tc(veth.peer, "egress"))
    assert [f for f in ns_tc(veth, "filter", "egress") if "options" in f] == []
    assert "clsact" not in [q["kind"] for q in ns_tc(veth, "qdisc")]


def test_tc_argument_checks(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj:
        prog = obj.programs["tc_ingress"]
        for kw in [{"direction": "in"}, {"priority": 70000}, {"priority": -1}, {"handle": 2**32}]:
            with pytest.raises((TypeError, ValueError)):
                prog.attach_tc(veth.host, **kw)  # type: ignore[arg-type]
        with pytest.raises(tm.ObjectError, match="no network interface named"):
            prog.attach_tc("tmanope0")
    assert "clsact" not in qdiscs(veth.host)


# ---------------------------------------------------------------------- sockets


def test_socket_filter_counts_and_decides_what_the_socket_gets(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj, receiver(veth) as rx:
        c = counts(obj)
        link = obj.programs["socket_count"].attach_socket(rx)
        assert link.kind == "socket"
        assert "SOCK_DGRAM" in link.target
        veth.send_udp(N, PORT, payload=b"keep")
        veth.send_udp(10, PORT, payload=b"Drop")  # the filter returns 0 for these
        veth.send_udp(N, PORT, payload=b"keep")
        got = [data for data, _ in drain(rx, 2 * N)]
        assert got == [b"keep"] * (2 * N)  # none of the dropped ones
        rx.settimeout(0.05)
        with pytest.raises(TimeoutError):
            rx.recv(64)
        assert c[SOCKET] == type(c[SOCKET])(2 * N + 10, (2 * N + 10) * (8 + 4))
        link.detach()
        rx.settimeout(5)
        veth.send_udp(3, PORT, payload=b"Drop")  # no filter: delivered now
        assert [d for d, _ in drain(rx, 3)] == [b"Drop"] * 3
        assert c[SOCKET].packets == 2 * N + 10


def test_socket_filter_lifetimes(veth: VethPair) -> None:
    with open_attach(veth.network, PORT) as obj:
        prog = obj.programs["socket_count"]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first = prog.attach_socket(s)
        second = prog.attach_socket(s)  # replaces the first filter
        first.detach()  # removes nothing: the second one owns the socket's filter now
        s.bind((str(veth.host_addr), PORT))
        veth.send_udp(2, PORT)
        s.settimeout(5)
        s.recv(64), s.recv(64)
        assert counts(obj)[SOCKET].packets == 2
        s.close()
        second.detach()  # the socket is gone: nothing to undo, no error
        with pytest.raises(ValueError, match="closed"):
            prog.attach_socket(s)
        with pytest.raises((TypeError, ValueError), match=r"socket\.socket"):
            prog.attach_socket(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- cgroups


def test_cgroup_skb_counts_what_the_cgroup_sends(veth: VethPair, cgroup_dir: Path) -> None:
    with open_attach(veth.network, PORT) as obj, receiver(veth) as rx:
        c = counts(obj)
        link = obj.programs["cgroup_egress"].attach_cgroup(cgroup_dir)
        assert link.kind == "cgroup"
        assert "CGROUP_INET_EGRESS" in link.target
        assert link.info().type is tm.LinkType.CGROUP
        veth.send_udp(N, PORT, payload=PAYLOAD, cgroup=cgroup_dir)  # a child in the cgroup
        drain(rx, N)
        assert c[CGROUP_EGRESS] == type(c[CGROUP_EGRESS])(N, N * (20 + 8 + len(PAYLOAD)))
        veth.send_udp(6, PORT, payload=PAYLOAD)  # a child outside the cgroup: not counted
        drain(rx, 6)
        assert c[CGROUP_EGRESS].packets == N
        link.detach()
        veth.send_udp(4, PORT, payload=PAYLOAD, cgroup=cgroup_dir)
        drain(rx, 4)
        assert c[CGROUP_EGRESS].packets == N


def test_cgroup_attach_errors(cgroup_dir: Path) -> None:
    with open_attach() as obj:
        prog = obj.programs["cgroup_egress"]
        missing = cgroup_dir / "missing"
        with pytest.raises(tm.ObjectError, match=f"no cgroup directory {missing}") as e:
            prog.attach_cgroup(missing)
        assert e.value.errno == errno.ENOENT
        with pytest.raises(tm.ObjectError, match="not a cgroup v2 directory"):
            prog.attach_cgroup("/proc")
        with pytest.raises(ValueError, match="CGROUP_INET_EGRESS, CGROUP_INET_INGRESS"):
            prog.attach_cgroup(cgroup_dir, attach_type=tm.AttachType.CGROUP_INET4_BIND)
        with pytest.raises(ValueError, match="NUL"):
            prog.attach_cgroup("/sys/fs/cgroup\0x")
        for at in [-1, 2**64, True, "CGROUP_INET_EGRESS"]:
            with pytest.raises(tm.ArgumentError, match="attach_type"):
                prog.attach_cgroup(cgroup_dir, attach_type=at)  # type: ignore[arg-type]
        # the ingress attach type of the same program is accepted
        with prog.attach_cgroup(cgroup_dir, attach_type=tm.AttachType.CGROUP_INET_INGRESS) as ln:
            assert "CGROUP_INET_INGRESS" in ln.target
