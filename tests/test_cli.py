"""The typedmaps command line: list, show, MAP forms, errors and exit codes, non-BTF dumps."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps._cli import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
)

from .attach_support import open_attach
from .conftest import MakeMap, need
from .test_cli_support import hexargs, loaded_zoo, run_bpftool, typedmaps_cli

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def two_zoos() -> Iterator[tuple[Path, Path]]:
    with loaded_zoo() as a, loaded_zoo() as b:
        yield a, b


def test_list_matches_bpftool(two_zoos: tuple[Path, Path]) -> None:
    ours = {m["id"]: m for m in json.loads(typedmaps_cli("list", "--json").stdout)}
    theirs = json.loads(run_bpftool("-j", "map", "list").stdout)
    zoo = [m for m in theirs if m.get("name", "").startswith("zoo_")]
    assert len(zoo) >= 16
    for m in zoo:
        o = ours[m["id"]]
        for field in (
            "type",
            "name",
            "flags",
            "bytes_key",
            "bytes_value",
            "max_entries",
            "bytes_memlock",
            "frozen",
        ):
            assert o[field] == m[field], (field, o, m)
        if m["type"] in ("queue", "stack"):
            # libbpf creates these without BTF; bpftool 7.1's JSON can carry a stale
            # btf_id for them (its plain output shows none), typedmaps shows none.
            assert "btf_id" not in o
        else:
            assert o["btf_id"] == m["btf_id"]
    text = typedmaps_cli("list").stdout
    assert f"{zoo[0]['id']}: {zoo[0]['type']}  name {zoo[0]['name']}" in text


def test_map_forms_and_ambiguous_names(two_zoos: tuple[Path, Path]) -> None:
    a, _ = two_zoos
    pin = a / "maps" / "zoo_hash"
    mid = json.loads(run_bpftool("-j", "map", "show", "pinned", str(pin)).stdout)["id"]
    by_pin = json.loads(typedmaps_cli("show", str(pin), "--json").stdout)
    by_id = json.loads(typedmaps_cli("show", f"id:{mid}", "--json").stdout)
    assert by_pin == by_id
    assert by_pin["key_type"] == "struct wide_key"
    assert by_pin["value_type"] == "struct zoo_inner"
    r = typedmaps_cli("dump", "name:zoo_hash", check=False)
    assert r.returncode == EXIT_USAGE
    assert "ambiguous" in r.stderr
    assert f"id:{mid}" in r.stderr
    assert "Traceback" not in r.stderr
    text = typedmaps_cli("show", str(pin)).stdout
    assert "@0        1B  proto: __u8" in text


def test_errors_have_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    cases = [
        (("dump", "name:no_such_map_x"), EXIT_NOT_FOUND, "no map has this name"),
        (("dump", "id:abc"), EXIT_USAGE, "positive map id"),
        (("show", "/sys/fs/bpf/typedmaps_no_such_pin"), EXIT_NOT_FOUND, "No such file"),
        (("gen", str(tmp_path / "missing.o")), EXIT_NOT_FOUND, "No such file"),
    ]
    for args, code, text in cases:
        r = typedmaps_cli(*args, check=False)
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = typedmaps_cli("frobnicate", check=False)
    assert r.returncode == 2


def test_a_path_that_cannot_hold_a_pin_is_not_found(tmp_path: Path, pin_dir: Path) -> None:
    """A file outside bpffs or a directory holds no map: exit 3 and one line, never 4.

    The kernel answers EACCES for such paths; the library checks the path first.
    """
    plain = tmp_path / "plain"
    plain.write_text("not a map\n")
    cases = [
        (plain, "the path is not on a bpffs mount (file system magic "),
        (tmp_path, "the path is a directory"),
        (pin_dir, "the path is a directory"),
    ]
    for path, why in cases:
        for cmd in ("show", "dump"):
            r = typedmaps_cli(cmd, str(path), check=False)
            assert r.returncode == EXIT_NOT_FOUND, (cmd, path, r.returncode, r.stderr)
            assert r.stdout == ""
            [line] = r.stderr.splitlines()
            assert line.startswith(f"typedmaps {cmd}: open pinned {path}: not a BPF map: "), line
            assert why in line, line
            assert line.endswith("so nothing is pinned there [errno 2]"), line


def test_a_pinned_program_or_link_is_not_a_map(attach_pins: Path) -> None:
    """show/dump (which open MAP read-only) name what is pinned there: exit 1, one line.

    A link's pin refuses a read-only fd with EINVAL; the message must still say
    it is a link, not "Invalid argument".
    """
    with open_attach() as obj:
        obj.programs["xdp_count"].pin(attach_pins / "prog")
        link = obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        link.pin(attach_pins / "link")
        try:
            for name, kind in (("prog", "program"), ("link", "link")):
                path = attach_pins / name
                for cmd in ("show", "dump"):
                    r = typedmaps_cli(cmd, str(path), check=False)
                    assert r.returncode == EXIT_ERROR, (cmd, path, r.returncode, r.stderr)
                    assert r.stdout == ""
                    assert r.stderr.splitlines() == [
                        f"typedmaps {cmd}: open pinned {path}: not a BPF map: "
                        f"a BPF {kind} is pinned there [errno 22]"
                    ]
        finally:
            link.detach()


def test_a_pin_the_caller_may_not_open_is_a_permission_error(
    make_map: MakeMap, pin_dir: Path
) -> None:
    """Without privileges, a pin whose mode refuses the caller stays exit 4."""
    need(os.geteuid() == 0, "needs root to hand the pin to another user")
    setpriv = shutil.which("setpriv")
    need(setpriv is not None, "setpriv (util-linux) is not installed")
    assert setpriv is not None
    pin = pin_dir / "not_yours"
    make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=2).pin(pin)
    os.chown(pin, 65534, 65534)
    os.chmod(pin, 0o600)
    # uid 0 with no capabilities at all: an ordinary user who does not own the pin.
    unprivileged = (setpriv, "--inh-caps=-all", "--bounding-set=-all")
    for cmd in ("show", "dump"):
        r = typedmaps_cli(cmd, str(pin), check=False, prefix=unprivileged)
        assert r.returncode == EXIT_PERMISSION, (cmd, r.returncode, r.stderr)
        [line] = r.stderr.splitlines()
        assert line.startswith(f"typedmaps {cmd}: open pinned {pin}: Permission denied"), line
    assert typedmaps_cli("show", str(pin)).returncode == 0  # root may


def test_non_btf_maps_dump_raw_hex_like_bpftool(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=3, max_entries=8, name="tm_raw")
    pc = make_map(tm.MapType.PERCPU_ARRAY, key_size=4, value_size=4, max_entries=2, name="tm_rawpc")
    bl = make_map(tm.MapType.BLOOM_FILTER, value_size=4, max_entries=8, name="tm_bloom")
    for i in range(3):
        h.update(i.to_bytes(4, "little"), bytes([i, 0xAB, 0xFF]))
    pc.update_percpu(
        (1).to_bytes(4, "little"), [bytes([c, 1, 2, 3]) for c in range(tm.num_possible_cpus())]
    )
    # More entries than one batch (4096) holds: the chunks join in bpftool's order.
    big = make_map(tm.MapType.HASH, key_size=4, value_size=2, max_entries=5000, name="tm_rawbig")
    keys = b"".join(i.to_bytes(4, "little") for i in range(5000))
    big.update_batch(keys, bytes(range(250)) * 40, 5000)
    bigpc = make_map(
        tm.MapType.PERCPU_ARRAY, key_size=4, value_size=3, max_entries=4100, name="tm_rawbigpc"
    )
    bigpc.update_percpu((4099).to_bytes(4, "little"), [b"abc"] * tm.num_possible_cpus())
    for m, name in ((h, "raw"), (pc, "rawpc"), (bl, "bloom"), (big, "big"), (bigpc, "bigpc")):
        m.pin(pin_dir / name)
    for name in ("raw", "rawpc", "big", "bigpc"):
        ours = json.loads(typedmaps_cli("dump", str(pin_dir / name), "--json").stdout)
        theirs = json.loads(run_bpftool("-j", "map", "dump", "pinned", str(pin_dir / name)).stdout)
        assert ours == theirs
        assert ours
    r = typedmaps_cli("dump", str(pin_dir / "bloom"), check=False)
    assert r.returncode == EXIT_UNSUPPORTED
    assert "bloom filter" in r.stderr
    assert hexargs(b"\x01") == ["01"]


def test_progress_and_table(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=3000, name="tm_big")
    keys = b"".join(i.to_bytes(4, "little") for i in range(2500))
    h.update_batch(keys, keys, 2500)
    h.pin(pin_dir / "big")
    r = typedmaps_cli("dump", str(pin_dir / "big"), "--progress")
    assert "dumped 2500 entries" in r.stderr
    assert r.stdout.rstrip().endswith("(2500 entries)")
    r = typedmaps_cli("dump", str(pin_dir / "big"), "--json")
    assert r.stderr == ""  # not a tty, no --progress: quiet
    assert len(json.loads(r.stdout)) == 2500
