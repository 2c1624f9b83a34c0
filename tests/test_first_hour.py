"""The first hour of a new user: what the README says works, and errors that say what to do.

The README's compile command runs as written; ``typed()`` finds the record
types of maps the kernel keeps without BTF in their object's BTF; a schema
of the right size with a field out of place is refused at wrapping, naming
the field and both offsets; nothing prints to stderr on its own; missing
files are FileNotFoundError; a refused write says whether the map is frozen
or the fd read-only; a bare map name at the CLI gets the ``name:`` hint;
docs pages stand alone.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import construct as cs
import pytest

import typedmaps as tm
from typedmaps._cli import EXIT_NOT_FOUND
from typedmaps.btf import Btf
from typedmaps.codegen import generate_module

from .conftest import ROOT, MakeMap, bpf_object
from .test_cli_support import typedmaps_cli

pytestmark = pytest.mark.bpf


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.M | re.S)


# ------------------------------------------------------------------ README's compile command


def test_readme_compile_command_works_as_written(bpf: None, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    (source,) = (b for b in _blocks(readme, "c") if "SEC(" in b)
    (command,) = (
        line
        for block in _blocks(readme, "sh")
        for line in block.splitlines()
        if line.startswith("clang ")
    )
    assert "-I/usr/include/$(uname -m)-linux-gnu" in command
    (tmp_path / "count.bpf.c").write_text(source)
    r = subprocess.run(
        ["sh", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    # What the README says to do with it next.
    with tm.BpfObject.open(tmp_path / "count.bpf.o") as obj:
        obj.load()
        hits = tm.typed(obj.maps["hits"])
        assert isinstance(hits, tm.TypedMap)
        with obj.programs["count"].attach():
            for _ in range(5):
                os.getppid()
        assert hits[0] >= 5  # other processes may call getppid() too


def test_no_doc_compiles_bpf_without_the_multiarch_include() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for m in re.finditer(r"clang[^`]*-target bpf[^`]*", page.read_text()):
            assert "-I/usr/include/$(uname -m)-linux-gnu" in " ".join(m.group(0).split()), page


# ------------------------------------------------------------------ typed() and object BTF


def test_typed_reads_record_types_from_the_object_for_maps_without_kernel_btf(
    bpf: None,
) -> None:
    with tm.BpfObject.open(bpf_object("zoo")) as obj:
        obj.load()
        queue, stack = obj.maps["zoo_queue"], obj.maps["zoo_stack"]
        assert queue.info().btf_id == 0
        assert stack.info().btf_id == 0
        tq = tm.typed(queue)
        ts = tm.typed(stack)
        assert isinstance(tq, tm.TypedQueue)
        assert isinstance(ts, tm.TypedStack)
        raw = bytearray(32)  # struct zoo_event: pid @0, comm[16] @4, level @20, delta @24
        struct.pack_into("<I", raw, 0, 42)
        raw[4:7] = b"abc"
        struct.pack_into("<q", raw, 24, -7)
        queue.push(bytes(raw))
        back = tq.pop()
        assert back is not None
        assert (back.pid, back.comm, back.delta) == (42, "abc", -7)
        tq.push(back)  # and back to the very bytes
        assert queue.pop() == bytes(raw)
        ts.push(1.5)
        assert ts.pop() == 1.5
    with tm.BpfObject.open(bpf_object("events")) as obj:
        obj.load()
        events = tm.typed(obj.maps["events"])
        assert isinstance(events, tm.TypedQueue)
        assert events.peek() is None


# ------------------------------------------------------------------ schema vs BTF layout

#: struct flow_key with its three bytes of padding before proto instead of after.
MISPLACED_KEY = cs.Struct(
    "saddr" / cs.Bytes(4),
    "daddr" / cs.Bytes(4),
    "sport" / cs.Int16ul,
    "dport" / cs.Int16ul,
    cs.Padding(3),
    "proto" / cs.Int8ul,
)
GOOD_KEY = cs.Struct(
    "saddr" / cs.Bytes(4),
    "daddr" / cs.Bytes(4),
    "sport" / cs.Int16ul,
    "dport" / cs.Int16ul,
    "proto" / cs.Int8ul,
    "_pad" / cs.Padding(3),
)
STATS = cs.Struct(*(n / cs.Int64ul for n in ("packets", "bytes", "first_seen_ns", "last_seen_ns")))


def test_a_misplaced_field_is_refused_at_wrapping(bpf: None, make_map: MakeMap) -> None:
    with tm.BpfObject.open(bpf_object("flows")) as obj:
        obj.load()
        flows = obj.maps["flows"]
        with pytest.raises(tm.LayoutMismatchError) as info:
            tm.TypedMap(flows, key=MISPLACED_KEY, value=STATS)
        e = info.value
        assert (e.field, e.size, e.expected) == ("key.proto", 15, 12)
        assert isinstance(e, tm.SizeMismatchError)
        assert isinstance(e, ValueError)
        assert "offset 15 in the schema, at offset 12" in str(e)
        assert "struct flow_key" in str(e)
        assert "'flows'" in str(e)
        back = pickle.loads(pickle.dumps(e))
        assert (type(back), str(back), back.field) == (type(e), str(e), e.field)
        # A field of the wrong size at the right offset.
        wide = cs.Struct(*(n / cs.Int64ul for n in ("packets", "bytes")), "rest" / cs.Bytes(16))
        narrow = cs.Struct("packets" / cs.Int32ul, "bytes" / cs.Int32ul, "rest" / cs.Bytes(24))
        with pytest.raises(tm.LayoutMismatchError, match=r"value.packets is 4 bytes"):
            tm.TypedMap(flows, key=GOOD_KEY, value=narrow)
        # Right layouts, names the BTF does not have, and gen's trailing "_" pass.
        tm.TypedMap(flows, key=GOOD_KEY, value=wide)
        tm.TypedMap(flows, key=cs.Bytes(16), value=cs.Bytes(32))
        renamed = cs.Struct("packets_" / cs.Int64ul, "bytes_" / cs.Int64ul, cs.Bytes(16))
        tm.TypedMap(flows, key=GOOD_KEY, value=renamed)
        bad_renamed = cs.Struct("bytes_" / cs.Int64ul, cs.Bytes(24))
        with pytest.raises(tm.LayoutMismatchError, match=r"value\.bytes_"):
            tm.TypedMap(flows, key=GOOD_KEY, value=bad_renamed)
        # A plain handle on the same kernel map is checked against the kernel's BTF.
        with (
            tm.MapHandle.from_fd(flows.fileno()) as h,
            pytest.raises(tm.LayoutMismatchError, match=r"key\.proto"),
        ):
            tm.TypedMap(h, key=MISPLACED_KEY, value=STATS)
        # The same wrong schema on a map without BTF: nothing to compare with.
        plain = make_map(tm.MapType.HASH, key_size=16, value_size=32, max_entries=4)
        tm.TypedMap(plain, key=MISPLACED_KEY, value=STATS)
    # A map the kernel keeps without BTF: checked against the object's.
    with tm.BpfObject.open(bpf_object("events")) as obj:
        obj.load()
        event = cs.Struct(
            "ts_ns" / cs.Int64ul,
            "seq" / cs.Int32ul,
            "cpu" / cs.Int32ul,
            "len" / cs.Int32ul,
            cs.Padding(1),
            "protocol" / cs.Int16ul,
            "ip_proto" / cs.Int8ul,
        )
        with pytest.raises(tm.LayoutMismatchError, match=r"value.protocol .* offset 21 .* 20"):
            tm.TypedQueue(obj.maps["events"], value=event)


# ------------------------------------------------------------------ logging


def test_the_library_never_writes_to_stderr_by_itself(bpf: None) -> None:
    handlers = logging.getLogger("typedmaps").handlers
    assert handlers
    assert all(type(h) is logging.NullHandler for h in handlers)
    # libbpf warns while this object fails to load (fentry: not on this kernel).
    # Left alone, the library prints nothing; an application that configures
    # logging sees each of libbpf's lines once.
    load = (
        "import typedmaps as tm\n"
        f"try:\n    tm.BpfObject.open({str(bpf_object('btf_tracing'))!r}).load()\n"
        "except tm.TypedMapsError:\n    print('refused')\n"
    )
    for setup, shown in (("", False), ("import logging; logging.basicConfig()\n", True)):
        r = subprocess.run(
            [sys.executable, "-c", setup + load],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (r.returncode, r.stdout) == (0, "refused\n"), r.stderr
        lines = r.stderr.splitlines()
        if not shown:
            assert lines == []
        else:
            assert any("libbpf: failed to load object" in x for x in lines), lines
            assert len(lines) == len(set(lines)), lines  # no line twice


# ------------------------------------------------------------------ missing files


def test_a_missing_file_is_file_not_found_everywhere(bpf: None, tmp_path: Path) -> None:
    missing = tmp_path / "missing.bpf.o"
    for call in (
        lambda: tm.BpfObject.open(missing),
        lambda: Btf.from_file(missing),
        lambda: generate_module(missing),
        lambda: tm.MapHandle.from_pinned_path("/sys/fs/bpf/typedmaps_no_such_pin_x"),
    ):
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert isinstance(info.value, tm.TypedMapsError)
        assert not isinstance(info.value, KeyError)
    for args in (
        ("gen", str(missing)),
        ("show", str(missing)),
        ("dump", str(missing)),
        ("dump", "/sys/fs/bpf/typedmaps_no_such_pin_x"),
    ):
        r = typedmaps_cli(*args, check=False)
        assert r.returncode == EXIT_NOT_FOUND, (args, r.stderr)
        assert "no such file" in r.stderr.lower()
        assert "Traceback" not in r.stderr


def test_a_bare_map_name_at_the_cli_suggests_the_name_form(bpf: None) -> None:
    r = typedmaps_cli("dump", "pkts", check=False)
    assert r.returncode == EXIT_NOT_FOUND
    assert "use name:pkts" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ frozen or read-only


def test_a_refused_write_says_frozen_or_read_only(make_map: MakeMap, pin_dir: Path) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=4)
    h.update(bytes(4), bytes(4))
    h.pin(pin_dir / "m")
    ro = tm.MapHandle.from_pinned_path(pin_dir / "m", readonly=True)
    wo = tm.MapHandle.from_pinned_path(pin_dir / "m", writeonly=True)
    try:
        k, v = bytes(4), bytes(4)
        assert not h.info().frozen
        assert not ro.info().frozen
        for call in (
            lambda: ro.update(k, v),
            lambda: ro.delete(k),
            lambda: ro.update_batch(k, v, 1),
            lambda: ro.delete_batch(k, 1),
            lambda: ro.lookup_and_delete(k),
        ):
            with pytest.raises(tm.MapPermissionError, match="this fd is read-only"):
                call()
        reads: tuple[Callable[[], object], ...] = (
            lambda: wo.lookup(k),
            lambda: list(wo.lookup_batch()),
            lambda: list(wo.keys()),
        )
        for read in reads:
            with pytest.raises(tm.MapPermissionError, match="this fd is write-only"):
                read()
        h.freeze()
        assert h.info().frozen
        assert ro.info().frozen
        for call in (
            lambda: h.update(k, v),
            lambda: h.delete(k),
            lambda: h.update_batch(k, v, 1),
            lambda: ro.update(k, v),  # frozen first: a writable fd would not help
        ):
            with pytest.raises(tm.MapPermissionError, match="the map is frozen"):
                call()
        assert h.lookup(k) == v
    finally:
        ro.close()
        wo.close()
    q = make_map(tm.MapType.QUEUE, value_size=4, max_entries=2)
    q.freeze()
    with pytest.raises(tm.MapPermissionError, match="the map is frozen"):
        q.push(bytes(4))
    with tm.BpfObject.open(bpf_object("globals")) as obj:
        obj.load()
        rodata = next(m for n, m in obj.maps.items() if n.endswith(".rodata"))
        assert rodata.info().frozen
        with pytest.raises(tm.MapPermissionError, match="the map is frozen"):
            rodata.update(bytes(4), bytes(rodata.value_size))


# ------------------------------------------------------------------ docs stand alone

#: What a page of the site must not refer to: the world outside the repository
#: and how the work on it was organised.
OUTSIDE = re.compile(
    r"(?i)\bissue\s*#?\s*\d|\bsession\s*\d|/work/|\.\./|\bshared/|\bDESIGN\.md|\bSTYLE\.md"
    r"|\bnotes/|\bthe lead\b|\bhelper (?:engineer|session)|\bengineers?\b"
)


def test_docs_pages_stand_alone() -> None:
    found = [
        f"{page.name}:{n}: {line.strip()}"
        for page in sorted((ROOT / "docs").glob("**/*.md"))
        for n, line in enumerate(page.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []
