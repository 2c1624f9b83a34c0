"""Maps whose values are kernel objects, on the real kernel: maps of maps, program arrays,
DEVMAP/DEVMAP_HASH, CPUMAP, SOCKMAP/SOCKHASH and XSKMAP.

bpf/nested.bpf.c has an ARRAY_OF_MAPS and a HASH_OF_MAPS of an ARRAY
template (each with a statically initialised slot) and a PROG_ARRAY with a
statically initialised slot; its programs look up through the outer maps
and tail-call through the program array, so each stored slot is proven by
a program using it. bpf/fdmaps.bpf.c has one map of each fd-valued kind.
No packet is sent anywhere: XDP programs only run through test_run.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import construct as cs
import pytest

import typedmaps as tm
from typedmaps.typed.of_maps import (
    AF_XDP,
    CpuMap,
    CpuMapEntry,
    DevMap,
    DevMapEntry,
    MapOfMaps,
    ProgramArray,
    SockMap,
    XskMap,
    program_id,
    socket_cookie,
)

from .conftest import MakeMap, bpf_object

ETH_PACKET = bytes(64)
XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 1, 2, 3, 4


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def nested(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("nested")) as obj:
        obj.load()
        yield obj


@pytest.fixture
def fdmaps(bpf: None) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(bpf_object("fdmaps")) as obj:
        obj.load()
        yield obj


def _args(obj: tm.BpfObject, slot: int = 0, key: int = 0, index: int = 0, value: int = 0) -> None:
    g = obj.globals
    g.arg_slot, g.arg_key, g.arg_index, g.arg_value = slot, key, index, value


def _inner(make_map: MakeMap, **kw: int) -> tm.MapHandle:
    shape = {"key_size": 4, "value_size": 8, "max_entries": 4} | kw
    return make_map(tm.MapType.ARRAY, name="tm_inner", **shape)


# ---------------------------------------------------------------------------- maps of maps


def test_static_slots_and_the_template(nested: tm.BpfObject) -> None:
    outer = MapOfMaps(nested.maps["outer_arr"])
    t = outer.inner_template
    assert t is not None
    assert (t.map_type, t.key_size, t.value_size, t.max_entries) == (tm.MapType.ARRAY, 4, 8, 4)
    assert outer.id(0) == nested.maps["inner_a"].id
    assert list(outer) == [0]
    assert list(outer.ids()) == [(0, nested.maps["inner_a"].id)]
    with outer[0] as a:  # a new fd of inner_a
        assert a.id == nested.maps["inner_a"].id
        a.update(struct.pack("<I", 3), struct.pack("<Q", 40))
    assert outer.id(0) == nested.maps["inner_a"].id  # closing it left the entry
    assert nested.maps["inner_a"].lookup(struct.pack("<I", 3)) == struct.pack("<Q", 40)
    hashed = MapOfMaps(nested.maps["outer_hash"])
    assert dict(hashed.ids()) == {7: nested.maps["inner_b"].id}


def test_a_stored_map_is_used_by_the_program(nested: tm.BpfObject, make_map: MakeMap) -> None:
    outer = MapOfMaps(nested.maps["outer_arr"])
    hashed = MapOfMaps(nested.maps["outer_hash"])
    mine, other = _inner(make_map), _inner(make_map)
    outer[5] = mine
    hashed[3] = other
    assert 5 in outer
    assert 3 in hashed
    assert 4 not in outer
    _args(nested, slot=5, key=3, index=2, value=11)
    assert nested.programs["through_outer"].test_run().retval == 3  # found through both
    assert mine.lookup(struct.pack("<I", 2)) == struct.pack("<Q", 11)
    assert other.lookup(struct.pack("<I", 2)) == struct.pack("<Q", 11)
    del outer[5]
    del hashed[3]
    assert nested.programs["through_outer"].test_run().retval == 0
    with pytest.raises(tm.KeyNotFoundError):
        outer[5]
    with pytest.raises(tm.KeyNotFoundError):
        del hashed[3]
    assert outer.get(5) is None
    assert sorted(hashed) == [7]
    assert len(hashed) == 1


def test_shapes_are_checked_before_the_syscall(nested: tm.BpfObject, make_map: MakeMap) -> None:
    outer = MapOfMaps(nested.maps["outer_arr"])
    bad = {
        "value_size 4": _inner(make_map, value_size=4),
        "max_entries 16": _inner(make_map, max_entries=16),
        "map_type HASH": make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4),
    }
    for why, inner in bad.items():
        field, _, value = why.partition(" ")
        with pytest.raises(tm.CodecError, match=f"{field} {value}"):
            outer[2] = inner
        assert outer.get(2) is None
    for junk in (3, "x", None, nested.programs["dispatch"]):
        with pytest.raises(tm.CodecError, match="expected a MapHandle"):
            outer[2] = junk  # type: ignore[assignment]
    with pytest.raises(tm.KeyNotFoundError, match="out of range"):
        outer[8] = _inner(make_map)
    with pytest.raises(tm.CodecError):
        outer[-1] = _inner(make_map)


def test_typed_inner_maps(nested: tm.BpfObject, make_map: MakeMap) -> None:
    outer = MapOfMaps(nested.maps["outer_arr"], inner_key=cs.Int32ul, inner_value=cs.Int64ul)
    mine = _inner(make_map)
    outer[1] = mine
    with outer.typed(1) as counts:
        assert isinstance(counts, tm.TypedMap)
        counts[2] = 9
    assert mine.lookup(struct.pack("<I", 2)) == struct.pack("<Q", 9)
    auto = MapOfMaps(nested.maps["outer_arr"])
    with auto.typed(0) as from_btf:  # inner_a was made by libbpf, with BTF
        assert isinstance(from_btf, tm.TypedMap)
        from_btf[1] = 5
        assert from_btf[1] == 5
    before = _fds()
    with pytest.raises(tm.TypedMapsError):
        auto.typed(1)  # made here without BTF: no schemas to use, and the fd is closed
    assert _fds() == before


def test_no_fd_leaks_over_many_lookups(nested: tm.BpfObject, make_map: MakeMap) -> None:
    outer = MapOfMaps(nested.maps["outer_arr"])
    outer[3] = _inner(make_map)
    typed_outer = MapOfMaps(nested.maps["outer_arr"], inner_key=cs.Int32ul, inner_value=cs.Int64ul)
    hashed = MapOfMaps(nested.maps["outer_hash"])
    spare = _inner(make_map)
    before = _fds()
    for i in range(200):
        with outer[0]:
            pass
        h = outer.get(3)
        assert h is not None
        h.close()
        assert outer.get(4) is None
        with pytest.raises(tm.KeyNotFoundError):
            outer[6]
        with pytest.raises(tm.CodecError):
            outer[i % 8] = _Junk()  # type: ignore[assignment]
        with typed_outer.typed(3) as inner:  # a wrapper over a fresh fd, closed with it
            assert isinstance(inner, tm.TypedMap)
            inner[0] = i
        assert sorted(outer) == [0, 3]
        list(outer.ids())
    for i in range(8):  # each store or delete waits for an RCU grace period: ~10 ms
        outer[5] = spare  # store, look up, delete: the slot holds no fd of ours
        assert outer.id(5) == spare.id
        del outer[5]
        hashed[1000 + i] = spare
        with hashed[1000 + i] as got:
            assert got.id == spare.id
        del hashed[1000 + i]
    assert _fds() == before
    assert spare.lookup(bytes(4)) == bytes(8)  # ours, still open
    with outer[3] as h3:
        assert h3.lookup(bytes(4)) == struct.pack("<Q", 199)


class _Junk:
    pass


def test_a_standalone_outer_map_remembers_its_template(make_map: MakeMap) -> None:
    template = _inner(make_map)
    outer_h = make_map(
        tm.MapType.HASH_OF_MAPS, key_size=8, value_size=4, max_entries=4, inner_map=template
    )
    outer = MapOfMaps(outer_h, key=cs.Int64ul)
    assert outer.inner_template == template.info()
    outer[2**40] = _inner(make_map)
    assert list(outer) == [2**40]
    with pytest.raises(tm.CodecError, match="max_entries"):
        outer[1] = _inner(make_map, max_entries=5)
    # Without a remembered template, the shape of a stored map is the rule.
    again = MapOfMaps(tm.MapHandle.from_fd(outer_h.fileno()), key=cs.Int64ul)
    with again:
        assert again.inner_template is not None
        assert again.inner_template.max_entries == 4


def test_typed_picks_the_object_wrappers(nested: tm.BpfObject, fdmaps: tm.BpfObject) -> None:
    for obj, name, cls in (
        (nested, "outer_arr", MapOfMaps),
        (nested, "outer_hash", MapOfMaps),
        (nested, "jmp", ProgramArray),
        (fdmaps, "devs", DevMap),
        (fdmaps, "devs_hash", DevMap),
        (fdmaps, "cpus", CpuMap),
        (fdmaps, "socks", SockMap),
        (fdmaps, "socks_hash", SockMap),
        (fdmaps, "xsks", XskMap),
    ):
        assert type(tm.typed(obj.maps[name])) is cls, name
    hashed = tm.typed(nested.maps["outer_hash"], key=cs.Int32ul)
    assert isinstance(hashed, MapOfMaps)
    assert list(hashed) == [7]
    with pytest.raises(tm.NotSupportedError, match="kernel objects"):
        tm.typed(nested.maps["outer_arr"], value=cs.Int32ul)
    with pytest.raises(tm.NotSupportedError, match="key= does not apply"):
        tm.typed(nested.maps["jmp"], key=cs.Int32ul)


def test_wrong_map_kinds_are_refused(make_map: MakeMap, nested: tm.BpfObject) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=4)
    for cls in (MapOfMaps, ProgramArray, CpuMap, XskMap):
        with pytest.raises(tm.NotSupportedError, match=cls.__name__):
            cls(h)
    with pytest.raises(tm.NotSupportedError, match="PROG_ARRAY"):
        ProgramArray(nested.maps["outer_arr"])
    with pytest.raises(tm.SizeMismatchError):
        MapOfMaps(nested.maps["outer_arr"], key=cs.Int64ul)


# ---------------------------------------------------------------------------- program arrays


def test_program_array_tail_calls(nested: tm.BpfObject) -> None:
    jmp = ProgramArray(nested.maps["jmp"])
    progs = nested.programs
    dispatch = progs["dispatch"]

    def run(slot: int) -> int:
        _args(nested, slot=slot)
        return dispatch.test_run(ETH_PACKET).retval

    assert jmp[1] == progs["stage_b"].id  # the static slot
    assert run(1) == XDP_PASS
    assert run(0) == 100  # empty: the tail call falls through
    jmp[0] = progs["stage_a"]
    jmp[2] = progs["stage_c"].fd  # a program fd works too
    assert program_id(progs["stage_c"].fd) == progs["stage_c"].id
    assert (run(0), run(2)) == (XDP_DROP, XDP_TX)
    assert dict(jmp.ids()) == {
        0: progs["stage_a"].id,
        1: progs["stage_b"].id,
        2: progs["stage_c"].id,
    }
    assert list(jmp) == [0, 1, 2]
    del jmp[2]
    assert run(2) == 100
    assert jmp.get(2) is None
    with pytest.raises(tm.KeyNotFoundError, match="empty"):
        jmp[2]
    with pytest.raises(tm.KeyNotFoundError):
        del jmp[2]
    with pytest.raises(tm.KeyNotFoundError, match="out of range"):
        jmp[4] = progs["stage_a"]


def test_program_array_refusals(nested: tm.BpfObject) -> None:
    jmp = ProgramArray(nested.maps["jmp"])
    for junk in ("stage_a", None, 1.0, True):
        with pytest.raises(tm.CodecError):
            jmp[0] = junk  # type: ignore[assignment]
    with pytest.raises(tm.CodecError, match="not a BPF prog"):
        jmp[0] = nested.maps["outer_arr"].fileno()  # a map fd is not a program
    with pytest.raises(tm.MapError, match="type of the programs"):
        jmp[0] = nested.programs["through_outer"]  # a syscall program in an XDP array
    assert jmp.get(0) is None


# ---------------------------------------------------------------------------- devices and CPUs


def test_devmap(fdmaps: tm.BpfObject) -> None:
    lo = socket.if_nametoindex("lo")
    devs = DevMap(fdmaps.maps["devs"])
    redirect = fdmaps.programs["redirect"]
    assert redirect.test_run(ETH_PACKET).retval == 0  # devs[0] empty: XDP_ABORTED
    devs[0] = "lo"
    assert devs[0] == DevMapEntry(lo, 0)
    assert redirect.test_run(ETH_PACKET).retval == XDP_REDIRECT
    devs.set(1, lo, program=fdmaps.programs["on_dev"])
    assert devs[1] == DevMapEntry(lo, fdmaps.programs["on_dev"].id)
    assert list(devs) == [0, 1]
    with pytest.raises(tm.CodecError, match="no interface named"):
        devs[2] = "no-such-if0"
    with pytest.raises(tm.MapError, match="refused ifindex"):
        devs[2] = 0x7FFFFFF0  # no interface has it
    with pytest.raises(tm.MapError, match="refused"):
        devs.set(2, lo, program=fdmaps.programs["on_cpu"])  # not a devmap program
    with pytest.raises(tm.KeyNotFoundError, match="out of range"):
        devs[4] = "lo"
    del devs[0]
    assert devs.get(0) is None
    assert redirect.test_run(ETH_PACKET).retval == 0
    hashed = DevMap(fdmaps.maps["devs_hash"])
    hashed[123456] = lo
    assert dict((k, hashed[k]) for k in hashed) == {123456: DevMapEntry(lo, 0)}


def test_cpumap(fdmaps: tm.BpfObject) -> None:
    cpus = CpuMap(fdmaps.maps["cpus"])
    cpus[0] = 192
    assert cpus[0] == CpuMapEntry(192, 0)
    cpus.set(0, 256, program=fdmaps.programs["on_cpu"])
    assert cpus[0] == CpuMapEntry(256, fdmaps.programs["on_cpu"].id)
    assert list(cpus) == [0]
    cpus[0] = 0  # the kernel's way of removing an entry
    assert cpus.get(0) is None
    with pytest.raises(tm.MapError, match=r"not a .*cpumap") as info:
        cpus.set(1, 64, program=fdmaps.programs["on_dev"])  # not a cpumap program
    assert info.value.errno == 12  # the kernel's ENOMEM for any failed set-up
    with pytest.raises(tm.KeyNotFoundError, match="out of range"):
        cpus[2] = 64
    with pytest.raises(tm.CodecError):
        cpus[1] = -1


# ---------------------------------------------------------------------------- sockets


def test_sockmap_takes_sockets_and_gives_cookies(fdmaps: tm.BpfObject) -> None:
    socks = SockMap(fdmaps.maps["socks"])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    a, b = socket.socketpair()
    try:
        with pytest.raises(tm.NotSupportedError, match="bound UDP"):
            socks[0] = udp  # not bound yet: the kernel refuses it
        udp.bind(("127.0.0.1", 0))
        socks[0] = udp
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        socks[1] = tcp.fileno()  # an fd works too
        socks[2] = a
        assert socks[0] == socket_cookie(udp)
        assert socks[1] == socket_cookie(tcp)
        assert socks[2] == socket_cookie(a)
        assert len({socks[0], socks[1], socks[2]}) == 3
        assert list(socks) == [0, 1, 2]
        del socks[1]
        assert socks.get(1) is None
        with pytest.raises(tm.CodecError):
            socks[3] = "sock"  # type: ignore[assignment]
        hashed = SockMap(fdmaps.maps["socks_hash"])
        hashed[99] = udp
        assert hashed[99] == socket_cookie(udp)
    finally:
        for s in (udp, tcp, a, b):
            s.close()
    # A socket whose last fd closes leaves the map.
    assert socks.get(0) is None


def test_xskmap(fdmaps: tm.BpfObject) -> None:
    xsks = XskMap(fdmaps.maps["xsks"])
    xs = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        xsks[0] = xs  # the kernel takes an AF_XDP socket even before it is bound
        with pytest.raises(tm.NotSupportedError, match="AF_XDP"):
            xsks[1] = udp
        for op in (lambda: xsks[0], lambda: 0 in xsks, lambda: list(xsks)):
            with pytest.raises(tm.NotSupportedError, match="does not let user space read"):
                op()
        del xsks[0]
        del xsks[0]  # the kernel does not tell an empty slot: not an error
    finally:
        xs.close()
        udp.close()
