"""The CLI on awkward kernel BTF and on inputs that try to block or crash it.

- bpf/awkward.bpf.c is BTF the kernel accepts but that is awkward to read:
  its ``awkward`` map (a zero-size member, a zero-length array, a union
  holding an empty struct, enumerators named mro, _missing_, None, ...)
  dumps exactly like bpftool; its ``awkward_huge`` map (2**31 - 1 empty
  structs, in a struct and in a union) dumps, shows, types and generates at
  once, where bpftool would print two billion elements.
- gen/dump/show never block on a FIFO, a device or a directory, never
  write into a FIFO no one reads, and never print a traceback: one line on
  stderr and a documented exit status, also for a bug (status 70).
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import typedmaps as tm
from typedmaps import _cli

from .conftest import BPFFS, bpf_object, need
from .test_cli_support import Pairs, bpftool_dump, compare_formatted, loads_pairs, typedmaps_cli

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def awkward() -> Iterator[Path]:
    """The awkward object loaded by typedmaps, its maps pinned in a fresh bpffs directory."""
    need(BPFFS.is_dir() and os.path.ismount(BPFFS), "bpffs is not mounted at /sys/fs/bpf")
    d = BPFFS / f"typedmaps_awkward_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        with tm.BpfObject.open(bpf_object("awkward")) as obj:
            obj.load()
            for name in ("awkward", "awkward_huge"):
                obj.maps[name].pin(d / name)
            m = obj.maps["awkward"]
            m.update(struct.pack("<I", 0), struct.pack("<III", 7, 2, 0x05050505))
            m.update(struct.pack("<I", 1), struct.pack("<III", 1, 99, 0))  # 99: no enumerator
            obj.maps["awkward_huge"].update(struct.pack("<I", 0), struct.pack("<II", 3, 4))
        yield d
    finally:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


def test_awkward_map_dumps_like_bpftool(awkward: Path) -> None:
    pin = awkward / "awkward"
    theirs = bpftool_dump(pin)
    ours = loads_pairs(typedmaps_cli("dump", str(pin), "--json").stdout)
    assert len(ours) == len(theirs) == 2
    for bpf_entry, mine in zip(theirs, ours, strict=True):
        fmt = dict(bpf_entry)["formatted"]
        assert compare_formatted(
            fmt, Pairs([("key", dict(mine)["key"]), ("value", dict(mine)["value"])]), {}
        )
    first = dict(dict(ours[0])["value"])
    assert first["odd"] == "_missing_"
    assert first["nothing"] == Pairs()
    assert first["tail"] == []


def test_huge_zero_size_arrays_dump_at_once(awkward: Path) -> None:
    pin = awkward / "awkward_huge"
    r = typedmaps_cli("dump", str(pin), "--json")
    value = dict(json.loads(r.stdout)[0])["value"]
    assert value == {"head": 3, "many": [], "u": {"e": [], "word": 4}}
    show = typedmaps_cli("show", str(pin)).stdout
    assert "many: struct empty[2147483647]" in show
    with tm.MapHandle.from_pinned_path(pin) as h:
        m = tm.typed(h)
        assert isinstance(m, tm.TypedMap)
        v = m[0]
        assert (v.head, v.many, v.u.word) == (3, [], 4)
        m[0] = v
        assert h.lookup(struct.pack("<I", 0)) == struct.pack("<II", 3, 4)


def test_gen_on_the_awkward_object(tmp_path: Path) -> None:
    out = tmp_path / "awkward_types.py"
    typedmaps_cli("gen", str(bpf_object("awkward")), "-o", str(out))
    text = out.read_text()
    assert "class OddNames(OpenIntEnum):" in text
    for mapped in ("mro_ = 1", "E_missing_ = 2", "name_ = 3", "None_ = 5", "E_ = 7"):
        assert mapped in text
    probe = (
        "import awkward_types as a\n"
        "assert a.OddNames(99).name == 'UNKNOWN_99'\n"
        "v = a.open_awkward_huge\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert r.stdout == "ok\n", r.stderr


# ------------------------------------------------------------------ never block, never a traceback


def _one_line(r: Any) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    return str(r.stderr)


def test_gen_never_blocks_on_what_it_reads(tmp_path: Path) -> None:
    fifo = tmp_path / "obj.fifo"
    os.mkfifo(fifo)
    for src, why in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (Path("/dev/null"), "not a regular file"),
        (tmp_path, "is a directory"),
    ):
        r = typedmaps_cli("gen", str(src), check=False)  # the helper's timeout catches a hang
        assert r.returncode == _cli.EXIT_ERROR, (src, r.stderr)
        assert why in _one_line(r), r.stderr


def test_gen_never_blocks_on_where_it_writes(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    r = typedmaps_cli("gen", str(bpf_object("flows")), "-o", str(fifo), check=False)
    assert r.returncode == _cli.EXIT_ERROR
    assert "No such device or address" in _one_line(r)  # ENXIO: no reader, no wait
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    out = tmp_path / "flows_types.py"
    typedmaps_cli("gen", str(bpf_object("flows")), "-o", str(out))
    assert out.read_text().startswith('"""Typed accessors')


def test_map_commands_never_block(tmp_path: Path) -> None:
    """dump, show, events and export given a FIFO, a device or a directory as MAP,
    and events given one as its --btf object: one line and an error status, at once."""
    fifo = tmp_path / "map.fifo"
    os.mkfifo(fifo)
    ring = str(bpf_object("ringbuf"))
    targets = (str(fifo), "/dev/zero", str(tmp_path))
    commands: list[list[str]] = []
    for target in targets:
        commands += [
            ["dump", target, "--json"],
            ["show", target],
            ["events", target, "--btf", ring, "--type", "event", "--count", "1", "--timeout", "1"],
            ["export", "--prometheus", "127.0.0.1:0", target],
            ["events", "id:1", "--btf", target, "--type", "event", "--timeout", "1"],
        ]
    for argv in commands:
        r = typedmaps_cli(*argv, check=False)  # the helper's timeout catches a hang
        assert r.returncode in (
            _cli.EXIT_ERROR,
            _cli.EXIT_USAGE,
            _cli.EXIT_NOT_FOUND,
            _cli.EXIT_PERMISSION,
        ), (argv, r)
        _one_line(r)
        if "--btf" in argv and argv[argv.index("--btf") + 1] != ring:
            assert "not a regular file" in r.stderr or "is a directory" in r.stderr, r.stderr


def test_messages_are_one_printable_line(tmp_path: Path) -> None:
    evil = tmp_path / "x\x1b[31m\nsecond line\r.bpf.o"
    r = typedmaps_cli("gen", str(evil), check=False)
    assert r.returncode == _cli.EXIT_NOT_FOUND
    line = _one_line(r)
    assert "\x1b" not in line
    assert "\r" not in line
    assert "\\x1b" in line


def test_a_bug_is_one_line_and_status_70() -> None:
    err = io.StringIO()

    def broken() -> int:
        return {"a": 1}["b"]

    assert _cli.run("gen", broken, err) == _cli.EXIT_INTERNAL
    text = err.getvalue()
    assert text.count("\n") == 1
    assert "internal error" in text
    assert "KeyError" in text

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert _cli.run("dump", interrupted, io.StringIO()) == _cli.EXIT_INTERRUPTED

    def recursion() -> int:
        raise RecursionError("maximum recursion depth exceeded")

    assert _cli.run("dump", recursion, io.StringIO()) == _cli.EXIT_INTERNAL
