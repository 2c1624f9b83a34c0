"""An attack on typedmaps, written from what its safety promises say, on real kernel objects.

The promises (hostile input never runs code, crashes, hangs or overruns a
buffer; close() may race any call; bad arguments are named errors that are
also TypeError/ValueError) are tried here the way an attacker would, without
reusing the library's own test helpers or fixtures:

- gen: raw BTF written by hand (its own little writer below) whose struct,
  member, enum, enumerator and map names carry Python payloads that create a
  file if they ever run; the generated module is imported in a fresh process.
- ELF/BTF readers: the .BTF section of every built object, edited field by
  field (kinds, vlen, type ids, sizes, nelems, string offsets, loops) and
  byte-flipped, through BpfObject.open, Btf.from_bytes and the schemas,
  each case in a worker process with an alarm; a map the kernel accepts
  with a [0x7fffffff] array of empty structs is dumped by the CLI.
- CLI: FIFOs, devices, directories, long and odd paths, bare names.
- close races: the fd number of a closed map handed at once to a file or to
  a map with larger values, while threads keep calling the old handle.
- arguments: int subclasses that lie, bytes-likes of every shape, paths
  that cannot be encoded, objects whose dunders raise.
- finding libbpf: with libbpf.so.1 made unloadable in a private mount
  namespace and a PATH full of traps, nothing from PATH runs.

Run as a test module; the process-isolated parts run this file as
``python -m tests.test_attack_issue9 MODE``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import typedmaps as tm

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bpf"
VENV_BIN = Path(sys.executable).parent
PAYLOAD_MARK = "PWNED"

pytestmark = pytest.mark.bpf


def _need_bpf() -> None:
    try:
        tm.MapHandle.create(tm.MapType.ARRAY, key_size=4, value_size=4, max_entries=1).close()
    except tm.MapError as exc:  # pragma: no cover - CI has BPF
        if os.environ.get("TYPEDMAPS_REQUIRE_BPF") == "1":
            pytest.fail(f"TYPEDMAPS_REQUIRE_BPF=1 but: {exc}", pytrace=False)
        pytest.skip(str(exc))


def _run(
    args: list[str],
    *,
    cwd: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def _cli(
    *args: str, cwd: Path | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return _run([str(VENV_BIN / "typedmaps"), *args], cwd=cwd, timeout=timeout)


def _worker(mode: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return _run(
        [sys.executable, "-m", "tests.test_attack_issue9", mode, *args], cwd=ROOT, timeout=timeout
    )


# =========================================================================== raw BTF, by hand

INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST = range(1, 11)
VAR, DATASEC = 14, 15


class RawBtf:
    """A raw BTF blob, one type record at a time (type ids from 1), as linux/btf.h lays it out."""

    def __init__(self) -> None:
        self.types = bytearray()
        self.strings = bytearray(b"\0")
        self.n = 0

    def name(self, s: str | bytes) -> int:
        if not s:
            return 0
        b = s if isinstance(s, bytes) else s.encode("utf-8", "surrogatepass")
        off = len(self.strings)
        self.strings += b + b"\0"
        return off

    def _add(
        self, name: str | bytes, kind: int, vlen: int, size_or_type: int, tail: bytes = b""
    ) -> int:
        self.types += struct.pack("<III", self.name(name), (kind << 24) | vlen, size_or_type) + tail
        self.n += 1
        return self.n

    def int_(self, name: str, size: int, signed: bool = False) -> int:
        return self._add(
            name, INT, 0, size, struct.pack("<I", ((1 if signed else 0) << 24) | size * 8)
        )

    def ptr(self, to: int) -> int:
        return self._add("", PTR, 0, to)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self._add("", ARRAY, 0, 0, struct.pack("<III", elem, index, nelems))

    def struct_(
        self,
        name: str | bytes,
        size: int,
        members: Sequence[tuple[str | bytes, int, int]],
        kind: int = STRUCT,
    ) -> int:
        tail = b"".join(struct.pack("<III", self.name(n), t, off * 8) for n, t, off in members)
        return self._add(name, kind, len(members), size, tail)

    def enum(self, name: str | bytes, values: Sequence[tuple[str | bytes, int]]) -> int:
        tail = b"".join(struct.pack("<Ii", self.name(n), v) for n, v in values)
        return self._add(name, ENUM, len(values), 4, tail)

    def typedef(self, name: str, to: int) -> int:
        return self._add(name, TYPEDEF, 0, to)

    def var(self, name: str | bytes, type_id: int) -> int:
        return self._add(name, VAR, 0, type_id, struct.pack("<I", 1))

    def datasec(self, name: str, entries: Sequence[tuple[int, int, int]]) -> int:
        tail = b"".join(struct.pack("<III", *e) for e in entries)
        return self._add(name, DATASEC, len(entries), 0, tail)

    def map_def(self, name: str | bytes, map_type: int, key: int, value: int, u32: int) -> int:
        """A BTF-defined map: ``int (*type)[T]; int (*max_entries)[4]; K *key; V *value;``."""
        idx = u32

        def sized(n: int) -> int:
            return self.ptr(self.array(u32, idx, n))

        members = [("type", sized(map_type), 0), ("max_entries", sized(4), 8)]
        members += [("key", self.ptr(key), 16), ("value", self.ptr(value), 24)]
        return self.var(name, self.struct_("", 32, members))

    def bytes(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return hdr + bytes(self.types) + bytes(self.strings)


def _payload(context: str) -> str:
    """A name that would create PAYLOAD_MARK in the working directory if it ever ran as code."""
    run = f"__import__('pathlib').Path('{PAYLOAD_MARK}').touch()"
    return {
        "string": f"x');{run};('",
        "dstring": f'x");{run};("',
        "docstring": f'x"""\n{run}\n"""',
        "single_doc": f"x'''\n{run}\n'''",
        "comment": f"x\n{run}\n#",
        "crlf": f"x\r{run}\r#",
        "expr": f"{run}",
        "backslash": f"x\\\n{run}",
        "fstring": "{" + run + "}",
        "ls": f"x\u2028{run}",
    }[context]


PAYLOAD_CONTEXTS = (
    "string",
    "dstring",
    "docstring",
    "single_doc",
    "comment",
    "crlf",
    "expr",
    "backslash",
    "fstring",
    "ls",
)

#: Names the issue lists: keywords, soft keywords, builtins, the generated
#: module's own helpers, dunder/sunder, Enum's reserved names, empty,
#: non-identifiers, and the C names it calls out.
AWKWARD = (
    "class",
    "from",
    "from_",
    "None",
    "True",
    "match",
    "case",
    "type",
    "_",
    "print",
    "__import__",
    "list",
    "str",
    "bytes",
    "int",
    "len",
    "cs",
    "csfield",
    "TypedMap",
    "dataclasses",
    "construct",
    "__init__",
    "__class__",
    "__dict__",
    "__slots__",
    "_missing_",
    "_tag_",
    "mro",
    "name",
    "value",
    "_value_",
    "_name_",
    "",
    "1abc",
    "a-b",
    "a b",
    "a_b",
    "é",
    "\u210c",
    "self",
    "ip",
    "flags",
    "UNKNOWN_1",
    "bit_field",
    "float32",
    "none",
    "typed_map",
    "Any",
    "Self",
    "l",
    "O",
    "I",
)


def hostile_btf() -> tuple[bytes, list[str]]:
    """BTF with payloads at every place a name goes, and a key and a value map per payload."""
    b = RawBtf()
    u8, u32, u64 = (
        b.int_("unsigned char", 1),
        b.int_("unsigned int", 4),
        b.int_("long long unsigned int", 8, False),
    )
    s32 = b.int_("int", 4, True)
    entries: list[tuple[int, int, int]] = []
    maps: list[str] = []
    for i, ctx in enumerate(PAYLOAD_CONTEXTS):
        p = _payload(ctx)
        enum = b.enum(p, [(p, 1), (p + "2", 2), ("mro", 3), ("_missing_", 4), ("", 5)])
        members = [(p, u32, 0), (p + "b", enum, 4)]
        key = b.struct_(p, 8, members)
        value = b.struct_(p + "v", 16, [(p, u64, 0), ("from", u32, 8), ("from_", s32, 12)])
        name = p if i % 2 else f"m{i}_{p}"
        entries.append((b.map_def(name, 1, key, value, u32), 0, 32))
        maps.append(name)
    # Every awkward name as a member of one struct (collisions after mapping
    # included), as an enumerator, and as struct names in a union.
    fields: list[tuple[str | bytes, int, int]] = [(n, u8, i) for i, n in enumerate(AWKWARD)]
    awk = b.struct_("bytes", len(AWKWARD), fields)
    awk_enum = b.enum("str", [(n, i) for i, n in enumerate(AWKWARD)])
    holders = [b.struct_(n or "anon", 4, [("x", awk_enum, 0)]) for n in AWKWARD[:20]]
    union = b.struct_("list", 4, [(f"u{i}", h, 0) for i, h in enumerate(holders)], kind=UNION)
    both = b.struct_("typed_map", len(AWKWARD) + 4, [("cs", union, 0), ("ip", awk, 4)])
    entries.append((b.map_def("hash", 1, both, both, u32), 0, 32))
    maps.append("hash")
    entries.append((b.map_def("bytes", 2, u32, awk, u32), 0, 32))
    maps.append("bytes")
    b.datasec(".maps", entries)
    return b.bytes(), maps


def test_gen_of_hostile_names_runs_nothing_and_imports(tmp_path: Path) -> None:
    raw, _maps = hostile_btf()
    src = tmp_path / "evil.btf"
    src.write_bytes(raw)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "evil_types.py"
    r = _cli("gen", str(src), "-o", str(out), cwd=work)
    assert r.returncode == 0, r.stderr
    assert not (work / PAYLOAD_MARK).exists()
    text = out.read_text()
    check = (
        "import evil_types as m, dataclasses, enum\n"
        "keys = [c for c in vars(m).values() if isinstance(c, type) and dataclasses.is_dataclass(c)"
        " and getattr(c, '__dataclass_params__').frozen]\n"
        "assert keys, 'no frozen (hashable) key records'\n"
        "assert all(c.__hash__ is not None for c in keys)\n"
        "enums = [c for c in vars(m).values() if isinstance(c, type)"
        " and issubclass(c, enum.IntEnum)"
        " and c.__module__ == m.__name__]\n"
        "assert enums\n"
        "for e in enums:\n"
        "    assert type(e(987654)) is e  # values outside the enum stay in the enum type\n"
        "    assert int(e(987654)) == 987654\n"
        "print(len(keys), len(enums))\n"
    )
    r = _run([sys.executable, "-c", check], cwd=work)
    assert r.returncode == 0, r.stderr + text[:3000]
    assert not (work / PAYLOAD_MARK).exists(), "a name ran as code at import"
    lint = _run(
        [str(VENV_BIN / "ruff"), "check", "--no-cache", "--isolated", "--select", "E9,F", str(out)]
    )
    assert lint.returncode == 0, lint.stdout
    typing = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(ROOT / "build" / "mypy-attack-cache"),
            str(out),
        ],
        cwd=ROOT,
        timeout=240,
    )
    assert typing.returncode == 0, typing.stdout[-3000:]
    assert not (work / PAYLOAD_MARK).exists()


# =========================================================================== ELF and BTF readers


def _sections(elf: bytes) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of each section of a little-endian ELF64 object."""
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    heads = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    str_off = heads[shstrndx][4]
    out = {}
    for h in heads:
        end = elf.index(b"\0", str_off + h[0])
        out[elf[str_off + h[0] : end].decode()] = (h[4], h[5])
    return out


def _btf_edits(btf: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Structured edits of a raw BTF blob: each sets one field of a record to a hostile value."""
    hdr_len, type_off, type_len, _str_off, str_len = struct.unpack_from("<IIIII", btf, 4)
    t0 = hdr_len + type_off
    records: list[tuple[int, int, int]] = []  # (offset, kind, vlen)
    pos = t0
    while pos < t0 + type_len and len(records) < 4000:
        _name, info, _size = struct.unpack_from("<III", btf, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        records.append((pos, kind, vlen))
        extra = {
            INT: 4,
            ARRAY: 12,
            STRUCT: 12 * vlen,
            UNION: 12 * vlen,
            ENUM: 8 * vlen,
            13: 8 * vlen,
            VAR: 4,
            DATASEC: 12 * vlen,
            17: 4,
            19: 12 * vlen,
        }.get(kind, 0)
        pos += 12 + extra
    ntypes = len(records)

    def put(off: int, fmt: str, value: int) -> bytes:
        out = bytearray(btf)
        struct.pack_into(fmt, out, off, value)
        return bytes(out)

    yield "str_len past the end", put(20, "<I", str_len + 4096)
    yield "type_len huge", put(12, "<I", 0xFFFFFFF0)
    yield "hdr_len huge", put(4 + 0, "<I", 0xFFFFFF)
    yield "strings not NUL-terminated", btf[:-1] + b"A"
    yield "truncated in a record", btf[: t0 + type_len // 2]
    by_kind: dict[int, list[tuple[int, int, int]]] = {}
    for r in records:
        by_kind.setdefault(r[1], []).append(r)
    for kind, rs in sorted(by_kind.items()):
        off, _, vlen = rng.choice(rs)
        yield f"kind {kind}: name_off past the strings", put(off, "<I", str_len + 100)
        yield f"kind {kind}: unknown kind 31", put(off + 4, "<I", (31 << 24) | vlen)
        yield f"kind {kind}: vlen 0xffff", put(off + 4, "<I", (kind << 24) | 0xFFFF)
        yield f"kind {kind}: type/size 0x7fffffff", put(off + 8, "<I", 0x7FFFFFFF)
        yield (
            f"kind {kind}: refers to itself",
            put(off + 8, "<I", records.index((off, kind, vlen)) + 1),
        )
        if kind in (STRUCT, UNION) and vlen:
            yield f"kind {kind}: member of type {ntypes + 5}", put(off + 16, "<I", ntypes + 5)
            yield (
                f"kind {kind}: member contains the struct",
                put(off + 16, "<I", records.index((off, kind, vlen)) + 1),
            )
            yield f"kind {kind}: member at bit 2**32-8", put(off + 20, "<I", 0xFFFFFFF8)
        if kind == ARRAY:
            yield "array of 0xffffffff elements", put(off + 20, "<I", 0xFFFFFFFF)
            yield "array of 0x7fffffff elements", put(off + 20, "<I", 0x7FFFFFFF)
            yield "array element out of range", put(off + 12, "<I", ntypes + 9)
        if kind == INT:
            yield "int of 0 bits", put(off + 12, "<I", 0)
            yield "int of 200 bits", put(off + 12, "<I", 200)
    # Two modifiers/typedefs pointing at each other.
    mods = [r for r in records if r[1] in (TYPEDEF, VOLATILE, CONST)]
    if len(mods) >= 2:
        (a, _, _), (b, _, _) = mods[0], mods[1]
        cyc = bytearray(put(a + 8, "<I", records.index(mods[1]) + 1))
        struct.pack_into("<I", cyc, b + 8, records.index(mods[0]) + 1)
        yield "typedef loop", bytes(cyc)
    for i in range(6):
        out = bytearray(btf)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(t0, len(out))] ^= 1 << rng.randrange(8)
        yield f"flips {i}", bytes(out)


def _reader_cases(seed: int) -> list[tuple[str, str, bytes]]:
    """(object, what, bytes of a whole .bpf.o with its .BTF edited) for every object built."""
    rng = random.Random(seed)
    cases = []
    for obj in sorted(BUILD.glob("*.bpf.o")):
        elf = obj.read_bytes()
        off, size = _sections(elf)[".BTF"]
        btf = elf[off : off + size]
        edits = list(_btf_edits(btf, rng))
        for what, new in rng.sample(edits, min(len(edits), 9)):
            if len(new) == size:  # same length: splice into the object
                cases.append((obj.name, what, elf[:off] + new + elf[off + size :]))
            else:
                cases.append((obj.name, what + " (raw)", new))
    return cases


def reader_worker(seed: int) -> None:
    """Each case: open and load an object (or read raw BTF), build every schema; print results."""
    from typedmaps.btf import Btf, iter_types

    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # a hang kills the worker: the parent sees it
    for i, (obj, what, data) in enumerate(_reader_cases(seed)):
        print(json.dumps({"start": i, "obj": obj, "what": what}), flush=True)
        signal.alarm(10)
        outcome = "ok"
        try:
            if data[:4] == b"\x7fELF":
                with tm.BpfObject.open(data) as o:
                    with contextlib.suppress(tm.ObjectError):
                        o.load()
                    for m in o.maps.values():
                        with contextlib.suppress(tm.TypedMapsError):
                            tm.typed(m)
            else:
                btf = Btf.from_bytes(data)
                for t in iter_types(btf):
                    with contextlib.suppress(tm.TypedMapsError):
                        btf.schema(t.id, "x").sizeof()
                        btf.describe(t.id)
        except tm.TypedMapsError as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # the finding: anything not from the tree
            outcome = f"FOREIGN {type(exc).__name__}: {str(exc)[:200]}"
        signal.alarm(0)
        print(json.dumps({"done": i, "outcome": outcome}), flush=True)


def test_edited_btf_in_every_object_gets_named_errors() -> None:
    _need_bpf()
    cases = _reader_cases(9)
    r = _worker("readers", "9", timeout=300)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    started = [x for x in lines if "start" in x]
    done = {x["done"]: x["outcome"] for x in lines if "done" in x}
    assert r.returncode == 0, (
        f"worker died ({r.returncode}) in case {started[-1] if started else None}: "
        f"{r.stderr[-2000:]}"
    )
    assert len(done) == len(cases)
    foreign = [
        f"{started[i]['obj']}: {started[i]['what']}: {o}"
        for i, o in done.items()
        if o.startswith("FOREIGN")
    ]
    assert foreign == []
    print(f"readers: {len(cases)} cases, outcomes {sorted(set(done.values()))}")


# ----------------------------------------------------------------- kernel-accepted awkward BTF

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(_SYS_BPF, cmd, buf, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def _kernel_map_with_btf(
    raw: bytes, key_id: int, value_id: int, key_size: int, value_size: int
) -> int:
    """BPF_BTF_LOAD + BPF_MAP_CREATE(HASH) by hand; returns the map fd (the BTF fd is closed)."""
    blob = ctypes.create_string_buffer(raw, len(raw))
    log = ctypes.create_string_buffer(4096)
    attr = struct.pack("<QQIII", ctypes.addressof(blob), ctypes.addressof(log), len(raw), 4096, 1)
    try:
        btf_fd = _bpf(18, attr.ljust(64, b"\0"))  # BPF_BTF_LOAD
    except OSError as exc:
        raise AssertionError(f"kernel refused the BTF: {exc}: {log.value.decode()}") from None
    try:
        name = b"tm_attack"
        attr = struct.pack(
            "<IIIIIII16sIIIII",
            1,
            key_size,
            value_size,
            4,
            0,
            0,
            0,
            name,
            0,
            btf_fd,
            key_id,
            value_id,
            0,
        )
        return _bpf(0, attr.ljust(72, b"\0"))  # BPF_MAP_CREATE
    finally:
        os.close(btf_fd)


def test_a_kernel_map_with_huge_arrays_of_empty_structs_dumps_quickly(tmp_path: Path) -> None:
    _need_bpf()
    b = RawBtf()
    u32 = b.int_("unsigned int", 4)
    empty = b.struct_("empty", 0, [])
    many = b.array(empty, u32, 0x7FFFFFFF)
    holder = b.struct_("holder", 0, [("e", many, 0)], kind=UNION)
    weird = b.enum("odd", [("mro", 1), ("class", 2), ("_missing_", 3), ("None", 4)])
    value = b.struct_("val", 8, [("n", u32, 0), ("h", holder, 4), ("u", many, 4), ("k", weird, 4)])
    fd = _kernel_map_with_btf(b.bytes(), u32, value, 4, 8)
    with contextlib.closing(tm.MapHandle.from_fd(fd)) as h:
        os.close(fd)
        h.update(struct.pack("<I", 7), struct.pack("<II", 5, 2))
        pin = Path("/sys/fs/bpf") / f"tm_attack_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        h.pin(pin)
        try:
            t0 = time.monotonic()
            for sub in (("dump", str(pin), "--json"), ("dump", str(pin)), ("show", str(pin))):
                r = _cli(*sub, timeout=30)
                assert r.returncode == 0, (sub, r.stderr)
                assert "Traceback" not in r.stderr
            assert time.monotonic() - t0 < 30
            dumped = json.loads(_cli("dump", str(pin), "--json").stdout)
            assert dumped == [{"key": 7, "value": {"n": 5, "h": {"e": []}, "u": [], "k": "class"}}]
            typed = tm.typed(h)
            assert isinstance(typed, tm.TypedMap)
            (only,) = typed.values()
            assert only.n == 5
        finally:
            h.unpin(pin)


# =========================================================================== the CLI


def _cli_targets(tmp: Path) -> list[tuple[str, str]]:
    fifo = tmp / "fifo.bpf.o"
    os.mkfifo(fifo)
    loop = tmp / "loop"
    os.symlink(loop, loop)
    odd = tmp / "a\x1b[31mred\nline.bpf.o"
    odd.write_bytes(b"\x7fELF" + bytes(100))
    files = [str(fifo), "/dev/zero", "/dev/null", str(tmp), str(loop), str(odd), "/" + "a" * 5000]
    maps = [*files, "pkts", "name:", "id:-1", "id:99999999999999999999", "name:\udcff"]
    return [("gen", f) for f in files] + [(sub, m) for sub in ("show", "dump") for m in maps]


def cli_worker(tmp: str) -> None:
    """Each case through the CLI's own entry point, an alarm against blocking; prints results."""
    import io

    from typedmaps._cli import main

    class Blocked(Exception):
        pass

    def alarm(signum: int, frame: object) -> None:
        raise Blocked

    signal.signal(signal.SIGALRM, alarm)
    for sub, target in _cli_targets(Path(tmp)):
        err = io.StringIO()
        signal.alarm(5)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc: object = main([sub, target])
        except SystemExit as exc:
            rc = exc.code
        except Blocked:
            rc = "blocked"
        except BaseException as exc:  # the finding: a traceback
            rc = f"traceback {type(exc).__name__}: {exc}"
        finally:
            signal.alarm(0)
        print(
            json.dumps({"sub": sub, "target": target[:60], "rc": rc, "err": err.getvalue()[-300:]})
        )


def test_the_cli_never_blocks_or_tracebacks_on_odd_files(tmp_path: Path) -> None:
    r = _worker("cli", str(tmp_path), timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(line) for line in r.stdout.splitlines()]
    (tmp_path / "again").mkdir()
    assert len(results) == len(_cli_targets(tmp_path / "again"))
    bad = []
    for x in results:
        what = f"{x['sub']} {x['target'][:40]!r}"
        if not isinstance(x["rc"], int) or x["rc"] == 0 or x["rc"] >= 64:
            bad.append(f"{what}: {x['rc']}: {x['err']}")
        elif "\x1b" in x["err"]:
            bad.append(f"{what}: an escape sequence from a file name reached the terminal")
    assert bad == [], "\n".join(bad)


# =========================================================================== close races


def race_worker(seconds: float) -> None:
    """The fd number of a closed map is handed at once to a file or to a map with bigger values."""

    def sig(n: int) -> bytes:
        return (0xA5A5_0000_0000_0000 | n).to_bytes(8, "little")

    lock = threading.Lock()
    current: list[tuple[int, tm.MapHandle]] = []
    witnesses: list[tuple[int, tm.MapHandle]] = []  # a second fd on every map made, for the check
    foreign: list[str] = []
    stop = threading.Event()
    counts = {"calls": 0, "closed": 0, "cycles": 0, "files": 0}

    def make(gen: int) -> tm.MapHandle:
        size = 8 if gen % 2 else 64
        h = tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=size, max_entries=4)
        witnesses.append((gen, tm.MapHandle.from_fd(h.fileno())))
        return h

    def closer() -> None:
        gen = 0
        tmp = f"/tmp/tm_attack_{os.getpid()}"
        while not stop.is_set() and gen < 400:
            gen += 1
            with lock:
                old = current[:]
                current[:] = [(gen, make(gen))]
            for _, h in old:
                h.close()
                # Whatever comes next takes the fd number just freed.
                if gen % 3 == 0:
                    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
                    time.sleep(0.0005)
                    os.close(fd)
                    counts["files"] += 1
            counts["cycles"] += 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def caller(which: int) -> None:
        rng = random.Random(which)
        while not stop.is_set():
            with lock:
                if not current:
                    continue
                gen, h = current[0]
            typed = None
            try:
                for _ in range(20):
                    op = rng.randrange(6)
                    counts["calls"] += 1
                    if op == 0:
                        h.update(b"\1\0\0\0", sig(gen)[: h.value_size].ljust(h.value_size, b"\0"))
                    elif op == 1:
                        v = h.lookup(b"\1\0\0\0")
                        if v is not None and v[:8] != sig(gen)[: min(8, len(v))] and any(v):
                            foreign.append(f"read {v[:8].hex()} through gen {gen}")
                    elif op == 2:
                        list(h.lookup_batch(batch_size=2))
                    elif op == 3:
                        list(h.keys())
                    elif op == 4:
                        h.update_batch(
                            b"\2\0\0\0", sig(gen)[: h.value_size].ljust(h.value_size, b"\0"), 1
                        )
                    else:
                        typed = typed or tm.TypedMap(h, key=_u32(), value=_raw(h.value_size))
                        for _k, _v in typed.items():
                            pass
            except tm.MapClosedError:
                counts["closed"] += 1
            except tm.TypedMapsError as exc:
                foreign.append(f"gen {gen}: {type(exc).__name__}: {exc}")
            except OSError as exc:
                foreign.append(f"gen {gen}: bare {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=closer)] + [
        threading.Thread(target=caller, args=(i,)) for i in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    for _, h in current:
        h.close()
    for gen, w in witnesses:
        for k, v in w.lookup_batch():
            assert isinstance(v, bytes)
            if v[:8] != sig(gen)[:8] or any(v[8:]):
                foreign.append(f"map of gen {gen} holds {v[:8].hex()} (key {k.hex()})")
        w.close()
    print(json.dumps({"foreign": foreign[:20], "n_foreign": len(foreign), **counts}))


def _u32() -> Any:
    import construct as cs

    return cs.Int32ul


def _raw(n: int) -> Any:
    import construct as cs

    return cs.Bytes(n)


def object_race_worker(seconds: float) -> None:
    """BpfObject.close() while other threads use its maps and run its program."""
    problems: list[str] = []
    counts = {"objects": 0, "closed": 0, "runs": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and counts["objects"] < 60:
        obj = tm.BpfObject.open(BUILD / "tracecount.bpf.o")
        obj.load()
        counts["objects"] += 1
        m = obj.maps["calls_by_pid"]
        prog = obj.programs["count_syscalls"]
        go = threading.Barrier(3)

        def use(kind: int, m: tm.Map = m, prog: Any = prog, go: threading.Barrier = go) -> None:
            go.wait()
            try:
                for i in range(200):
                    if kind:
                        m.update(struct.pack("<I", i), bytes(m.value_size))
                        m.lookup(struct.pack("<I", i))
                    else:
                        prog.test_run(ctx_in=bytes(16))
                        counts["runs"] += 1
            except tm.MapClosedError:
                counts["closed"] += 1
            except tm.TypedMapsError as exc:
                problems.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=use, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        go.wait()
        time.sleep(random.random() / 500)
        obj.close()
        for t in threads:
            t.join(30)
    print(json.dumps({"problems": problems[:20], **counts}))


def test_close_races_never_reach_another_object() -> None:
    _need_bpf()
    r = _worker("race", "2.5", timeout=120)
    assert r.returncode == 0, f"the process died ({r.returncode}): {r.stderr[-3000:]}"
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["n_foreign"] == 0, out
    assert out["cycles"] > 50, out
    assert out["calls"] > 1000, out
    r = _worker("object-race", "2", timeout=120)
    assert r.returncode == 0, f"the process died ({r.returncode}): {r.stderr[-3000:]}"
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["problems"] == [], out
    assert out["objects"] >= 5, out


# =========================================================================== argument checking


class LyingInt(int):
    """An int that says something else when asked through the number protocols."""

    def __index__(self) -> int:
        return 2**40

    def __int__(self) -> int:
        return -1

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False


class Raising:
    """Every dunder the library might try raises something unexpected."""

    def __index__(self) -> int:
        raise ZeroDivisionError("index")

    def __len__(self) -> int:
        raise ZeroDivisionError("len")

    def __iter__(self) -> Iterator[int]:
        raise ZeroDivisionError("iter")

    def __fspath__(self) -> str:
        raise ZeroDivisionError("fspath")

    def __bytes__(self) -> bytes:
        raise ZeroDivisionError("bytes")


class IntPath:
    def __fspath__(self) -> int:
        return 3


def _ok(exc: BaseException) -> bool:
    return isinstance(exc, tm.TypedMapsError) and isinstance(exc, TypeError | ValueError)


def test_hostile_arguments_get_named_errors_and_leave_the_map_alone(tmp_path: Path) -> None:
    _need_bpf()
    import array

    import construct as cs

    h = tm.MapHandle.create(
        tm.MapType.HASH, key_size=4, value_size=8, max_entries=4, name="tm_attack"
    )
    pc = tm.MapHandle.create(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=2)
    q = tm.MapHandle.create(tm.MapType.QUEUE, key_size=0, value_size=8, max_entries=2)
    t = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    ncpu = tm.num_possible_cpus()
    made: list[tm.MapHandle] = []
    try:
        h.update(bytes(4), b"original")
        # Bytes-likes whose *real* size is wrong (whatever len() says), and non-bytes.
        bad_keys: list[object] = [
            memoryview(bytes(8)).cast("Q"),  # len() 1, 8 real bytes
            memoryview(b"abcdefghij")[::2],  # non-contiguous, 5 real bytes
            array.array("B", [1, 2, 3]),
            bytearray(3),
            Raising(),
            LyingInt(4),
            "abcd",
            3.0,
            None,
        ]
        bad_values: list[object] = [
            array.array("I", [1]),  # len() 1, 4 real bytes
            memoryview(bytes(16))[::2],  # 8 items of 1 byte: fits; see below
            memoryview(bytes(32)).cast("I")[::2],  # 4 items of 4 bytes: 16 real bytes
            bytearray(3),
            Raising(),
            LyingInt(8),
            "abcdefgh",
            None,
        ]
        bad_ints: list[object] = [Raising(), 2**64, -(2**63), 1e3, "4", b"4", complex(4), 4.0, None]
        bad_paths: list[object] = [
            "/sys/fs/bpf/\ud800x",  # a lone surrogate: not encodable as a file name
            b"/sys/fs/bpf/a\0b",
            Raising(),
            IntPath(),
            "",
            5,
        ]
        create = tm.MapHandle.create
        calls: list[tuple[str, Callable[[Any], object], list[object]]] = [
            ("lookup(key)", h.lookup, bad_keys),
            ("update(key)", lambda b: h.update(b, bytes(8)), bad_keys),
            (
                "update(value)",
                lambda b: h.update(bytes(4), b),
                [v for i, v in enumerate(bad_values) if i != 1],
            ),
            ("update(flags)", lambda f: h.update(bytes(4), b"changed!", f), bad_ints),
            ("delete(key)", h.delete, bad_keys),
            ("lookup_and_delete(key)", h.lookup_and_delete, bad_keys),
            ("update_batch(count)", lambda n: h.update_batch(bytes(4), bytes(8), n), bad_ints),
            ("update_batch(keys)", lambda b: h.update_batch(b, bytes(8), 1), bad_keys),
            (
                "lookup_batch(batch_size)",
                lambda n: list(h.lookup_batch(batch_size=n)),
                bad_ints[:-1],
            ),
            ("keys via delete_batch(count)", lambda n: h.delete_batch(bytes(4), n), bad_ints),
            (
                "update_percpu(values)",
                lambda v: pc.update_percpu(bytes(4), v),
                [Raising(), [b"x"] * ncpu, [bytes(8)] * (ncpu + 1), 5, [None] * ncpu],
            ),
            ("push(value)", q.push, [v for i, v in enumerate(bad_values) if i != 1]),
            (
                "create(max_entries)",
                lambda n: create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=n),
                bad_ints,
            ),
            (
                "create(key_size)",
                lambda n: create(tm.MapType.HASH, key_size=n, value_size=4, max_entries=1),
                bad_ints,
            ),
            (
                "create(name)",
                lambda s: create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1, name=s),
                ["\ud800", b"x", "a\0b", Raising(), "x" * 100],
            ),
            (
                "create(map_type)",
                lambda m: create(m, key_size=4, value_size=4, max_entries=1),
                [-1, "HASH", None, 1.0],
            ),
            ("from_pinned_path", tm.MapHandle.from_pinned_path, bad_paths),
            ("pin", h.pin, bad_paths),
            ("unpin", h.unpin, bad_paths),
            ("from_fd", tm.MapHandle.from_fd, [*bad_ints, -5]),
            ("from_map_id", tm.MapHandle.from_map_id, [*bad_ints, 0]),
            ("BpfObject.open", tm.BpfObject.open, bad_paths),
            (
                "TypedMap(handle)",
                lambda x: tm.TypedMap(x, key=cs.Int32ul, value=cs.Int64ul),
                [None, 5, Raising(), "h"],
            ),
            (
                "TypedMap(key=)",
                lambda s: tm.TypedMap(h, key=s, value=cs.Int64ul),
                [None, 5, cs.Int16ul, Raising()],
            ),
            ("TypedMap.update_batch", t.update_batch, [5, [(1,)], [(1, 2, 3)], [5], None]),
            ("TypedMap.delete_batch", t.delete_batch, [5, None]),
            ("TypedMap.lookup_batch", lambda n: list(t.lookup_batch(batch_size=n)), bad_ints[:-1]),
            ("TypedMap.pop(default)", t.pop, [None, "k", b"\0\0\0\0", 2**40]),
        ]
        wrong: list[str] = []
        n = 0
        for what, call, values in calls:
            for value in values:
                n += 1
                try:
                    result = call(value)
                except ZeroDivisionError:
                    if not isinstance(value, Raising):
                        wrong.append(f"{what} {value!r:.60}: ZeroDivisionError")
                    # else: the argument's own dunder raised; that is the caller's error
                except Exception as exc:
                    if not (_ok(exc) or isinstance(exc, tm.MapError | tm.ObjectError)):
                        wrong.append(f"{what} {value!r:.60}: {type(exc).__name__}: {exc}")
                    elif (
                        isinstance(exc, tm.CodecError)
                        and "cannot encode" in str(exc)
                        and not what.startswith("TypedMap.")
                    ):
                        wrong.append(f"{what} {value!r:.60}: CodecError for a non-value: {exc}")
                else:
                    if isinstance(result, tm.MapHandle):
                        made.append(result)
                    wrong.append(f"{what} {value!r:.60}: accepted")
        # Int subclasses are read by their real value, not by what they say.
        lied = create(tm.MapType.HASH, key_size=LyingInt(4), value_size=4, max_entries=LyingInt(3))
        made.append(lied)
        assert (lied.key_size, lied.max_entries, lied.info().max_entries) == (4, 3, 3)
        # Bytes-likes of the right real size are read by their bytes (array.array
        # only through a memoryview: the API takes bytes, bytearray, memoryview).
        with pytest.raises(tm.ArgumentError, match="bytes-like"):
            h.lookup(array.array("I", [0]))  # type: ignore[arg-type]
        assert h.lookup(memoryview(array.array("I", [0]))) == b"original"
        assert h.lookup(memoryview(b"\0_\0_\0_\0_")[::2]) == b"original"
        h.update(memoryview(b"k_e_y_s_")[::2], memoryview(bytes(16))[::2])
        assert h.lookup(b"keys") == bytes(8)
        h.delete(b"keys")
        assert dict(h.lookup_batch()) == {bytes(4): b"original"}
        assert q.peek() is None
        assert pc.lookup_percpu(bytes(4)) is None
        assert wrong == [], "\n".join(wrong)
        print(f"arguments: {n} cases")
    finally:
        for x in (h, pc, q, *made):
            x.close()


# =========================================================================== finding libbpf


def test_finding_libbpf_runs_nothing_from_path(tmp_path: Path) -> None:
    if not shutil.which("unshare"):  # pragma: no cover - util-linux is in Debian's base
        pytest.fail("unshare is missing")
    traps = tmp_path / "bin"
    traps.mkdir()
    ran = tmp_path / "ran"
    for name in (
        "gcc",
        "cc",
        "ld",
        "ld.bfd",
        "ldconfig",
        "objdump",
        "clang",
        "x86_64-linux-gnu-gcc",
        "uname",
        "sh",
    ):
        trap = traps / name
        trap.write_text(f"#!/bin/sh\necho {name} >> {ran}\nexit 1\n")
        trap.chmod(0o755)
    real = (
        os.path.realpath("/usr/lib/x86_64-linux-gnu/libbpf.so.1")
        if os.uname().machine == "x86_64"
        else None
    )
    candidates = sorted(
        {
            os.path.realpath(p)
            for p in ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "/lib/x86_64-linux-gnu/libbpf.so.1")
            if os.path.exists(p)
        }
    )
    assert real
    assert candidates
    code = (
        "import typedmaps as tm\n"
        "try:\n"
        "    tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)\n"
        "except ImportError as e:\n"
        "    assert isinstance(e, tm.LibbpfNotFoundError), type(e)\n"
        "    assert 'libbpf1' in str(e), str(e)\n"
        "    print('not found, as it should be')\n"
    )
    binds = " && ".join(f"mount --bind /dev/null {c}" for c in candidates)
    script = f'{binds} && PATH={traps} exec {sys.executable} -c "$CODE"'
    env = {**os.environ, "CODE": code}
    r = _run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "not found, as it should be" in r.stdout
    assert not ran.exists(), f"ran from PATH: {ran.read_text()}"
    # And with libbpf present, under the same traps: it loads, and nothing ran.
    r = _run(
        [sys.executable, "-c", "import typedmaps as tm; print(tm.num_possible_cpus())"],
        env={**os.environ, "PATH": str(traps)},
    )
    assert r.returncode == 0, r.stderr
    assert not ran.exists(), f"ran from PATH: {ran.read_text()}"


# =========================================================================== process entry


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "readers":
        reader_worker(int(sys.argv[2]))
    elif mode == "race":
        race_worker(float(sys.argv[2]))
    elif mode == "cli":
        cli_worker(sys.argv[2])
    elif mode == "object-race":
        object_race_worker(float(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
