"""`typedmaps dump --json` against bpftool's formatted view, on the type zoo loaded by bpftool.

The zoo is loaded and pinned by bpftool, filled by bpftool (`map update`,
`map push`), by its own BPF program (run through `bpftool prog run`) and by
typedmaps, then every map is dumped by both tools and compared:

- bitfields: bpftool prints hex strings of the raw bits, typedmaps numbers;
  compared as numbers (the bits of ours == bpftool's);
- floats: bpftool 7.1 cannot print them and stops the record there; every
  int, pointer and float of ours is also checked against the raw bytes at
  bpftool's own BTF offsets, which covers the fields bpftool left out;
- QUEUE/STACK: libbpf creates them without BTF and bpftool's dump lists
  nothing for them; typedmaps shows the head, compared with `bpftool map peek`.
"""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import typedmaps as tm
from typedmaps._dump import entry_tree
from typedmaps.btf import Btf, map_schemas
from typedmaps.btf.format import dumps, format_type, hex_bytes

from .test_cli_support import (
    ZOO_MAPS,
    Pairs,
    ZooBtf,
    bpftool_dump,
    compare_formatted,
    hexargs,
    loaded_zoo,
    loads_pairs,
    run_bpftool,
    typedmaps_cli,
)

pytestmark = pytest.mark.bpf


def _update(pin: Path, key: bytes, value: bytes) -> None:
    run_bpftool(
        "map",
        "update",
        "pinned",
        str(pin),
        "key",
        "hex",
        *hexargs(key),
        "value",
        "hex",
        *hexargs(value),
    )


def _random_value(rng: random.Random, zb: ZooBtf) -> bytearray:
    """Random zoo_value bytes; the _Bool bytes get values other than 0 and 1 too."""
    data = bytearray(rng.randbytes(264))
    flag, _ = zb.member("zoo_ints", "flag")
    flag2, _ = zb.member("zoo_ints", "flag2")
    data[flag] = 0
    data[flag2] = 2
    data[flag2 + 1 : flag2 + 4] = b"\x01\x02\x03"  # non-zero padding after a false-ish byte
    return data


def _fill(d: Path, zb: ZooBtf) -> dict[str, Any]:
    """Fill every zoo map; returns what the typed checks need."""
    maps = d / "maps"
    rng = random.Random(5)
    pkt = Path("/tmp/typedmaps_zoo_pkt")
    pkt.write_bytes(bytes(64))
    run_bpftool("prog", "run", "pinned", str(d / "zoo_fill"), "data_in", str(pkt))
    pkt.unlink()

    # ARRAY: random records, one with text, enum values and floats chosen by hand.
    for i in (1, 2):
        data = _random_value(rng, zb)
        if i == 2:
            for member, text in (("name", b"hello zoo\0"), ("empty", bytes(8))):
                off, size = zb.member("zoo_value", member)
                data[off : off + size] = text.ljust(size, b"\0")
            off, _ = zb.member("zoo_value", "blob")
            data[off : off + 6] = b"\x01\x02\xff\x00ab"
            off, _ = zb.member("zoo_value", "names")
            data[off : off + 8] = b"ab\0\0cde\0"
            for member, raw in (
                ("color", (-3).to_bytes(4, "little", signed=True)),
                ("small", b"\xc8"),
                ("tiny", b"\xff"),
                ("f", struct.pack("<f", 1.5)),
                ("d", struct.pack("<d", -2.25)),
            ):
                off, size = zb.member("zoo_value", member)
                data[off : off + size] = raw
        _update(maps / "zoo_array", i.to_bytes(4, "little"), bytes(data))

    # HASH with a struct key: keys with random padding bytes too.
    for _ in range(3):
        _update(maps / "zoo_hash", rng.randbytes(24), rng.randbytes(8))
    for k in range(3):
        _update(maps / "zoo_lru", rng.randbytes(8), rng.randbytes(4))
        del k
    floats = {b"abc\0\0\0\0\0": 0.5, b"pi\0\0\0\0\0\0": 3.140625, b"\x01\x02\x03\0\0\0\0\0": -7.0}
    for key, f in floats.items():
        _update(maps / "zoo_floats", key, struct.pack("<f", f))

    # Per-CPU maps: different bytes on every CPU, written through typedmaps.
    ncpu = tm.num_possible_cpus()
    with tm.MapHandle.from_pinned_path(maps / "zoo_pcpu_arr") as h:
        for k in range(2):
            vals = []
            for c in range(ncpu):
                v = bytearray(rng.randbytes(32))
                v[16:24] = struct.pack("<d", c + 0.25 * k)
                vals.append(bytes(v))
            h.update_percpu(k.to_bytes(4, "little"), vals)
    with tm.MapHandle.from_pinned_path(maps / "zoo_pcpu_hash") as h:
        for color in (0, 5, (-3) & 0xFFFFFFFF, 77):
            h.update_percpu(color.to_bytes(4, "little"), [rng.randbytes(16) for _ in range(ncpu)])

    # QUEUE/STACK: pushed by bpftool.
    run_bpftool(
        "map",
        "push",
        "pinned",
        str(maps / "zoo_stack"),
        "value",
        "hex",
        *hexargs(struct.pack("<d", 6.5)),
    )
    return {"floats": floats}


@pytest.fixture(scope="module")
def zoo() -> Iterator[tuple[Path, ZooBtf, dict[str, Any]]]:
    with loaded_zoo() as d:
        zb = ZooBtf()
        info = _fill(d, zb)
        yield d, zb, info


def test_every_map_matches_bpftool(zoo: tuple[Path, ZooBtf, dict[str, Any]]) -> None:
    d, zb, _ = zoo
    widths = zb.bitfield_widths()
    checked_raw = 0
    for name in ZOO_MAPS:
        pin = d / "maps" / name
        ours = loads_pairs(typedmaps_cli("dump", str(pin), "--json").stdout)
        theirs = bpftool_dump(pin)
        if name in ("zoo_queue", "zoo_stack"):
            assert theirs == []  # bpftool lists nothing for these map types
            peek = json.loads(run_bpftool("-j", "map", "peek", "pinned", str(pin)).stdout)
            assert ours == [Pairs([("value", peek["value"])])], name
            continue
        assert len(ours) == len(theirs) > 0, name
        info = json.loads(run_bpftool("-j", "map", "show", "pinned", str(pin)).stdout)
        assert info["btf_id"] > 0
        with tm.MapHandle.from_pinned_path(pin) as h:
            mi = h.info()
        for mine, entry in zip(ours, theirs, strict=True):
            e = dict(entry)
            formatted = e["formatted"]
            compare_formatted(formatted, mine, widths, name)
            # Every int/pointer/float of ours against the raw bytes bpftool printed.
            m = dict(mine)
            key_raw = bytes(int(x, 16) for x in e["key"])
            checked_raw += zb.check_raw(mi.btf_key_type_id, key_raw, m["key"], f"{name}.key")
            if "values" in e:
                for cpu_raw, cpu_mine in zip(e["values"], m["values"], strict=True):
                    raw = bytes(int(x, 16) for x in dict(cpu_raw)["value"])
                    checked_raw += zb.check_raw(
                        mi.btf_value_type_id, raw, dict(cpu_mine)["value"], f"{name}.values"
                    )
            else:
                raw = bytes(int(x, 16) for x in e["value"])
                checked_raw += zb.check_raw(mi.btf_value_type_id, raw, m["value"], f"{name}.value")
    assert checked_raw > 300


def test_bpftool_formatted_features_are_exercised(
    zoo: tuple[Path, ZooBtf, dict[str, Any]],
) -> None:
    """The comparison above saw strings, enum names, bpftool's enum sign rule and bitfields."""
    d, _, _ = zoo
    rows = [
        dict(e)
        for e in loads_pairs(typedmaps_cli("dump", str(d / "maps" / "zoo_array"), "--json").stdout)
    ]
    v = {k: val for k, val in rows[2]["value"]}
    assert v["name"] == "hello zoo"
    assert v["empty"] == ""
    assert v["blob"] == [1, 2, -1, 0, 97, 98]  # non-printable: ints, char is signed
    assert v["names"] == ["ab", "cde"]
    assert v["color"] == "ZOO_BLUE"
    assert v["small"] == -56  # bpftool 7.1: 200 read sign-extended matches no enumerator
    assert v["tiny"] == "ZOO_TINY_NEG"
    assert v["f"] == 1.5
    assert v["d"] == -2.25
    keys = [k for k, _ in v.items()]
    assert "" in keys  # anonymous members print under "", as in bpftool
    assert sum(1 for k, _ in rows[2]["value"] if k == "") == 2


def test_typed_decodes_from_kernel_btf(zoo: tuple[Path, ZooBtf, dict[str, Any]]) -> None:
    """typed(h) with no schemas: BTF from the kernel; floats and doubles decode right."""
    d, zb, info = zoo
    with tm.MapHandle.from_pinned_path(d / "maps" / "zoo_floats") as h:
        m = tm.typed(h)
        assert isinstance(m, tm.TypedMap)
        got = dict(m.items())
        want = {
            k.rstrip(b"\0").decode() if k[0] >= 0x20 else k: f for k, f in info["floats"].items()
        }
        assert got == want
    with tm.MapHandle.from_pinned_path(d / "maps" / "zoo_pcpu_arr") as h:
        pc = tm.typed(h)
        assert isinstance(pc, tm.PerCpuTypedMap)
        per_cpu = pc[1]
        assert [s.avg for s in per_cpu] == [c + 0.25 for c in range(tm.num_possible_cpus())]
        raws = h.lookup_percpu((1).to_bytes(4, "little")) or []
        for s, cpu_raw in zip(per_cpu, raws, strict=True):
            f32 = struct.unpack_from("<f", cpu_raw, 24)[0]
            assert s.ratio == f32 or (math.isnan(s.ratio) and math.isnan(f32))
    with tm.MapHandle.from_pinned_path(d / "maps" / "zoo_array") as h:
        arr = tm.typed(h)
        assert isinstance(arr, tm.TypedMap)
        v = arr[2]
        assert (v.f, v.d, v.name, v.empty) == (1.5, -2.25, "hello zoo", "")
        assert v.blob == b"\x01\x02\xff\x00ab"  # not clean text: the raw bytes
        assert v.color.name == "ZOO_BLUE"
        assert v.color == -3
        assert v.small.name == "ZOO_SMALL_B"  # typed decoding is exact, unlike bpftool
        # decode -> encode gives the kernel's bytes back (padding aside).
        raw2 = h.lookup((2).to_bytes(4, "little"))
        assert raw2 is not None
        vt = tm.MapHandle.info(h).btf_value_type_id
        mask = zb.data_mask(vt)
        enc = arr.value_codec.encode(v)
        assert int.from_bytes(enc, "little") == int.from_bytes(raw2, "little") & mask
    with tm.MapHandle.from_pinned_path(d / "maps" / "zoo_hash") as h:
        key_schema, _value_schema = map_schemas(h)
        assert key_schema is not None
        assert key_schema.sizeof() == 24
        hm = tm.typed(h)
        assert isinstance(hm, tm.TypedMap)
        bpf_entry = [(k, v) for k, v in hm.items() if k.proto == 17]
        assert len(bpf_entry) == 1
        k, v = bpf_entry[0]
        assert (k.port, k.addr, k.cookie, k.zone, v.x, v.y) == (53, 0x0A000001, 99, -2, 1, 2)
        assert hm[k] == v  # the BPF side zeroed its padding, so the re-encoded key finds it
    # libbpf creates QUEUE/STACK maps without BTF: typed() needs value= for them.
    with (
        tm.MapHandle.from_pinned_path(d / "maps" / "zoo_queue") as h,
        pytest.raises(tm.CodecError, match="has no BTF"),
    ):
        tm.typed(h)


def test_bool_bytes_other_than_0_and_1(zoo: tuple[Path, ZooBtf, dict[str, Any]]) -> None:
    """A _Bool byte of 2 prints true in both tools, and typed() keeps the 2 so it round-trips."""
    d, zb, _ = zoo
    pin = d / "maps" / "zoo_array"
    theirs = dict(dict(dict(bpftool_dump(pin)[1])["formatted"])["value"])
    ours = dict(
        dict(dict(loads_pairs(typedmaps_cli("dump", str(pin), "--json").stdout)[1])["value"])
    )
    assert dict(theirs["ints"])["flag"] is False
    assert dict(ours["ints"])["flag"] is False
    assert dict(theirs["ints"])["flag2"] is True
    assert dict(ours["ints"])["flag2"] is True
    with tm.MapHandle.from_pinned_path(pin) as h:
        arr = tm.typed(h)
        assert isinstance(arr, tm.TypedMap)
        v = arr[1]
        assert v.ints.flag is False
        assert v.ints.flag2 == 2
        raw = h.lookup((1).to_bytes(4, "little"))
        assert raw is not None
        off, _ = zb.member("zoo_ints", "flag2")
        assert arr.value_codec.encode(v)[off] == 2 == raw[off]


def _old_dump(pin: Path, *, pretty: bool) -> str:
    """What `typedmaps dump --json` wrote before it was compiled: keys walked with
    GET_NEXT_KEY, each value looked up by the kernel's key bytes, every entry a JObj tree
    through format_type() and dumps()."""
    with tm.MapHandle.from_pinned_path(pin, readonly=True) as h:
        info = h.info()
        btf = Btf.from_kernel(info.btf_id) if info.btf_id and info.btf_value_type_id else None

        def fmt(tid: int, size: int) -> Any:
            if btf is None or not tid:
                return hex_bytes
            return lambda data: format_type(btf, tid, data[:size])

        fk, fv = (
            fmt(info.btf_key_type_id, info.key_size),
            fmt(info.btf_value_type_id, info.value_size),
        )
        entries: list[tuple[bytes | None, bytes | list[bytes]]] = []
        if info.map_type in (tm.MapType.QUEUE, tm.MapType.STACK):
            head = h.peek()
            if head is not None:
                entries.append((None, head))
        else:
            for key in h.keys():  # noqa: SIM118
                value = h.lookup_percpu(key) if info.map_type.is_percpu else h.lookup(key)
                assert value is not None
                entries.append((key, value))
    texts = [dumps(entry_tree(k, v, fk, fv), pretty=pretty) for k, v in entries]
    if pretty:
        body = ",".join("\n    " + t.replace("\n", "\n    ") for t in texts)
        return "[" + body + ("\n]\n" if texts else "]\n")
    return "[" + ",".join(texts) + "]\n"


def test_fast_dump_writes_what_the_tree_formatter_wrote(
    zoo: tuple[Path, ZooBtf, dict[str, Any]],
) -> None:
    """Byte for byte, compact and --pretty, in GET_NEXT_KEY order, on every zoo map."""
    d, _, _ = zoo
    for name in ZOO_MAPS:
        pin = d / "maps" / name
        for flags in ((), ("--pretty",)):
            ours = typedmaps_cli("dump", str(pin), "--json", *flags).stdout
            assert ours == _old_dump(pin, pretty=bool(flags)), (name, flags)


def test_dump_loads_neither_construct_nor_the_codecs(
    zoo: tuple[Path, ZooBtf, dict[str, Any]],
) -> None:
    """Start-up is part of the dump's time: the JSON path needs no construct, codegen or codec."""
    d, _, _ = zoo
    code = (
        "import contextlib, io, sys\n"
        "from typedmaps._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    rc = main(['dump', {str(d / 'maps' / 'zoo_array')!r}, '--json'])\n"
        "heavy = ('construct', 'construct_typed', 'typedmaps.codec', 'typedmaps.typed',\n"
        "         'typedmaps.codegen', 'typedmaps.btf._constructs')\n"
        "print(rc, len(out.getvalue()) > 100, sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split("\n")[0] == "0 True []", r.stdout + r.stderr
