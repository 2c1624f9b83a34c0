"""Untrusted ELF objects: every broken rule is a named error before libbpf parses the file.

Each case changes one thing in a real object (build/bpf/flows.bpf.o): the
ELF header, the section table, a symbol, a relocation, .BTF or .BTF.ext.
BpfObject.open (bytes and path) must raise ObjectError with libbpf's
"format" errno 4001 and say what is wrong; Btf.from_file the same (or
BtfError for the BTF); ``typedmaps gen`` exits 5 with one line. The inputs
that crash libbpf 1.1 itself (found by mutating these objects) are kept as
fixtures in tests/data/libbpf_crashers/ and must be refused the same way.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps import _ffi
from typedmaps._cli import EXIT_UNSUPPORTED
from typedmaps.btf import Btf, BtfError

from .conftest import bpf_object
from .fuzz_objects import _sections
from .test_cli_support import typedmaps_cli

CRASHERS = Path(__file__).parent / "data" / "libbpf_crashers"
Edit = Callable[[bytearray, dict[str, tuple[int, int, int]]], None]


def _u(b: bytearray, off: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, b, off, value)


def _header(*fields: tuple[int, str, int]) -> Edit:
    """Changes to ELF header fields: (offset, struct format, value)."""

    def edit(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
        for off, fmt, value in fields:
            _u(b, off, fmt, value)

    return edit


def _shdr(field: int, fmt: str, value: int, name: str) -> Edit:
    return lambda b, s: _u(b, s[name][2] + field, fmt, value)


def _sym(index: int, field: int, fmt: str, value: int) -> Edit:
    return lambda b, s: _u(b, s[".symtab"][0] + 24 * index + field, fmt, value)


def _first_rel(s: dict[str, tuple[int, int, int]]) -> str:
    return sorted(n for n in s if n.startswith(".rel") and not n.startswith(".rel.debug"))[0]


def _rel(field: int, fmt: str, value: int) -> Edit:
    return lambda b, s: _u(b, s[_first_rel(s)][0] + field, fmt, value)


def _ext(field: int, fmt: str, value: int) -> Edit:
    """A change to .BTF.ext: ``field`` < 0 counts from the end of its header."""

    def edit(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
        base = s[".BTF.ext"][0]
        (hdr_len,) = struct.unpack_from("<I", b, base + 4)
        _u(b, base + (field if field >= 0 else hdr_len - field - 1), fmt, value)

    return edit


def _func_info(field: int, value: int) -> Edit:
    """A change inside .BTF.ext's func_info: 0 record size, 4 name, 8 count, 12/16 record."""

    def edit(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
        base = s[".BTF.ext"][0]
        hdr_len, off = struct.unpack_from("<II", b, base + 4)
        _u(b, base + hdr_len + off + field, "<I", value)

    return edit


def _fill(name: str, byte: int) -> Edit:
    def edit(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
        off, size, _ = s[name]
        b[off : off + size] = bytes([byte]) * size

    return edit


def _rename(name: str, like: str) -> Edit:
    def edit(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
        (sh_name,) = struct.unpack_from("<I", b, s[like][2])
        _u(b, s[name][2], "<I", sh_name)

    return edit


def _exec_section(s: dict[str, tuple[int, int, int]]) -> str:
    return next(n for n in s if n.startswith(("xdp", "tc", "socket", "classifier")))


def _prog_size(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
    _u(b, s[_exec_section(s)][2] + 32, "<Q", s[_exec_section(s)][1] - 4)


def _func_sym(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
    base, size, _ = s[".symtab"]
    for i in range(size // 24):
        info = b[base + 24 * i + 4]
        if info & 0xF == 2:  # STT_FUNC
            _u(b, base + 24 * i + 16, "<Q", 1 << 40)
            return
    raise AssertionError("no function symbol")


def _btf_ptr(b: bytearray, s: dict[str, tuple[int, int, int]]) -> None:
    """Point the first PTR of .BTF at type 9999."""
    base = s[".BTF"][0]
    hdr_len, toff, _tlen = struct.unpack_from("<III", b, base + 4)
    pos = base + hdr_len + toff
    (info,) = struct.unpack_from("<I", b, pos + 4)
    assert (info >> 24) & 0x1F == 2, "flows' first BTF type is a PTR"
    _u(b, pos + 8, "<I", 9999)


#: (what is wrong, the change, a phrase of the message)
CASES: list[tuple[str, Edit, str]] = [
    ("ELF32", lambda b, s: _u(b, 4, "<B", 1), "ELF class 1"),
    ("big-endian", lambda b, s: _u(b, 5, "<B", 2), "big-endian"),
    ("EI_VERSION 0", lambda b, s: _u(b, 6, "<B", 0), "ELF version 0"),
    ("an executable", lambda b, s: _u(b, 0x10, "<H", 2), "ET_REL"),
    ("x86-64 machine", lambda b, s: _u(b, 0x12, "<H", 62), "machine 62"),
    ("header size 52", lambda b, s: _u(b, 0x34, "<H", 52), "ELF header size"),
    ("section table past the end", lambda b, s: _u(b, 0x28, "<Q", 1 << 40), "past the end"),
    ("no section table", _header((0x3C, "<H", 0), (0x28, "<Q", 0)), "no section"),
    ("extended numbering", lambda b, s: _u(b, 0x3C, "<H", 0), "extended"),
    ("section header size 40", lambda b, s: _u(b, 0x3A, "<H", 40), "section header size"),
    ("name table index 999", lambda b, s: _u(b, 0x3E, "<H", 999), "section name table index"),
    (
        "program headers past the end",
        _header((0x38, "<H", 9), (0x36, "<H", 56), (0x20, "<Q", 1 << 40)),
        "program header",
    ),
    ("data past the end", _shdr(32, "<Q", 1 << 40, ".BTF"), "run past the end"),
    ("offset past the end", _shdr(24, "<Q", 1 << 40, ".BTF"), "run past the end"),
    ("sh_link 999", _shdr(40, "<I", 999, ".symtab"), "sh_link 999"),
    ("alignment 3", _shdr(48, "<Q", 3, ".BTF"), "power of two"),
    ("name table not SHT_STRTAB", _shdr(4, "<I", 1, ".strtab"), "section name table"),
    ("section name past the table", _shdr(0, "<I", 1 << 30, ".BTF"), "string offset"),
    ("symbol entry size 16", _shdr(56, "<Q", 16, ".symtab"), "entry size 16"),
    ("symbol name past strtab", _sym(1, 0, "<I", 1 << 30), "symbol 1"),
    ("symbol section 4000", _sym(1, 6, "<H", 4000), "section index 4000"),
    ("function past its section", _func_sym, "outside section"),
    ("program not whole instructions", _prog_size, "not whole instructions"),
    ("relocation symbol 99999", _rel(12, "<I", 99999), "names symbol 99999"),
    ("relocation past its section", _rel(0, "<Q", 1 << 40), "at offset"),
    ("license without NUL", _fill("license", 0x41), "license"),
    (".BTF.ext without .BTF", _rename(".BTF", ".text"), ".BTF.ext without .BTF"),
    ("BTF magic", lambda b, s: _u(b, s[".BTF"][0], "<H", 0x1234), ".BTF: btf: bad magic"),
    ("BTF type id 9999", _btf_ptr, "does not exist"),
    (".BTF.ext magic", _ext(0, "<H", 0), ".BTF.ext: bad magic"),
    (".BTF.ext header 8", _ext(4, "<I", 8), "header length 8"),
    (".BTF.ext func_info unaligned", _ext(8, "<I", 2), "not 4-byte aligned"),
    (".BTF.ext func_info too long", _ext(12, "<I", 1 << 20), "runs past the end"),
    (".BTF.ext record size 3", _func_info(0, 3), "record size 3"),
    (".BTF.ext no records", _func_info(8, 0), "records of"),
    (".BTF.ext 2**30 records", _func_info(8, 1 << 30), "do not fit"),
    (".BTF.ext section name 2**30", _func_info(4, 1 << 30), "section name offset"),
    (".BTF.ext type id 2**30", _func_info(16, 1 << 30), "type id"),
]


def _mutated(edit: Edit) -> bytes:
    data = bpf_object("flows").read_bytes()
    b = bytearray(data)
    edit(b, _sections(data))
    return bytes(b)


@pytest.mark.parametrize(("what", "edit", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_is_checked_before_libbpf(
    tmp_path: Path, what: str, edit: Edit, phrase: str
) -> None:
    data = _mutated(edit)
    with pytest.raises(tm.ObjectError, match=phrase) as exc:
        tm.BpfObject.open(data)
    assert exc.value.errno == 4001
    assert "format invalid" in str(exc.value)
    path = tmp_path / "bad.bpf.o"
    path.write_bytes(data)
    with pytest.raises(tm.ObjectError, match=phrase):
        tm.BpfObject.open(path)
    with pytest.raises((tm.ObjectError, BtfError), match=phrase.removeprefix(".BTF: ")):
        Btf.from_file(path)


def test_gen_refuses_a_bad_object_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.bpf.o"
    for what, edit, phrase in CASES[::6]:
        path.write_bytes(_mutated(edit))
        r = typedmaps_cli("gen", str(path), check=False)
        assert r.returncode == EXIT_UNSUPPORTED, (what, r.stderr)
        assert r.stderr.count("\n") == 1, (what, r.stderr)
        assert phrase.split()[-1] in r.stderr, (what, r.stderr)
        assert "Traceback" not in r.stderr


def test_every_built_object_passes() -> None:
    """The checks accept what clang writes: every object in build/bpf opens and has BTF."""
    from typedmaps._elf import check_object

    for obj in sorted(bpf_object("flows").parent.glob("*.bpf.o")):
        elf = check_object(obj.read_bytes())
        assert elf.btf is not None, obj
        assert len(elf.btf) > 1, obj


# ------------------------------------------------------------------ libbpf 1.1's crashers


def _libbpf_version() -> str:
    return str(_ffi.ffi.string(_ffi.get_lib().libbpf_version_string()).decode())


def _raw_libbpf_open(data: bytes) -> int:
    """Open ``data`` with bare libbpf in a forked child; the signal that killed it, or 0."""
    lib, ffi = _ffi.get_lib(), _ffi.ffi
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            faulthandler.disable()  # the crash is expected: no dump on the shared stderr
            buf = ffi.new("char[]", data)
            opts = ffi.new("struct bpf_object_open_opts *")
            opts.sz = ffi.sizeof("struct bpf_object_open_opts")
            ptr = lib.bpf_object__open_mem(buf, len(data), opts)
            if ptr != ffi.NULL:
                lib.bpf_object__close(ptr)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def crashers() -> list[Path]:
    return sorted(CRASHERS.glob("*.o"))


def test_the_crashers_crash_bare_libbpf_1_1() -> None:
    """The fixtures are real: each one kills a process that hands it to libbpf 1.1 unchecked."""
    assert len(crashers()) >= 5
    # Debian 12's libbpf1; a newer libbpf checks BTF itself and would not crash
    assert _libbpf_version().startswith("v1.1"), _libbpf_version()
    for path in crashers():
        assert _raw_libbpf_open(path.read_bytes()) == signal.SIGSEGV, path.name


@pytest.mark.parametrize("path", crashers(), ids=lambda p: p.name)
def test_the_crashers_are_refused_by_name(bpf: None, path: Path) -> None:
    with pytest.raises(tm.ObjectError, match="format invalid") as exc:
        tm.BpfObject.open(path)
    assert exc.value.errno == 4001
    with pytest.raises((tm.ObjectError, BtfError)):
        Btf.from_file(path)
    r = typedmaps_cli("gen", str(path), check=False)
    assert r.returncode == EXIT_UNSUPPORTED, r.stderr
    assert "Traceback" not in r.stderr
