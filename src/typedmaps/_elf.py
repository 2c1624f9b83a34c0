"""BPF object files (ELF) checked by our own code before libbpf parses them.

libbpf 1.1 trusts much of an ELF file: a symbol index, a section link or a
record size out of range can make it read past its buffers or follow a NULL
pointer. :func:`check_object` reads the whole structure first and refuses,
with an :class:`~typedmaps.ObjectError` naming what is wrong, anything
outside these rules:

- the ELF header: ``\\x7fELF``, 64-bit, little-endian (the host's: libbpf
  refuses the other order), version 1, relocatable (ET_REL), machine BPF
  (or none), the header and section-header sizes of ELF64, the section
  header table inside the file, at most :data:`MAX_SECTIONS` sections
  (no extended numbering), program headers (if any) inside the file;
- every section header: data inside the file (SHT_NOBITS excepted), a name
  inside the section-name string table, ``sh_link`` (and ``sh_info`` of
  relocation sections) naming an existing section, a power-of-two
  alignment, the entry size of symbol and relocation tables, program
  sections a whole number of instructions;
- the section-name table and every string table: SHT_STRTAB that starts
  and ends with NUL; one symbol table at most, linked to a string table;
- every symbol: a name inside its string table, a section index that
  exists (or UNDEF/ABS/COMMON), and, for functions and objects in a
  section, a value and size inside it (functions on instruction bounds);
- every relocation: the symbol table it is linked to, a symbol that
  exists, an offset inside the section it applies to;
- ``license`` ends with NUL inside its section, ``version`` is 4 bytes;
- ``.BTF`` is checked as raw BTF (:meth:`typedmaps.btf.Btf.parse`) and
  ``.BTF.ext`` against it: header, sections, record sizes, counts, and the
  section names, type ids and string offsets its records name.
"""

from __future__ import annotations

import errno as _errno
import os
import stat
import struct
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .errors import ObjectError, ObjectFileNotFoundError, TypedMapsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .btf import Btf

__all__ = ["ElfObject", "check_object", "read_regular_file"]

#: libbpf's own "BPF object format invalid" errno (LIBBPF_ERRNO__FORMAT).
FORMAT_ERRNO: Final = 4001
MAX_SECTIONS: Final = 0xFF00  # SHN_LORESERVE: no extended section numbering
#: Object files larger than this are refused before they are read.
MAX_OBJECT_SIZE: Final = 256 << 20

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_RELA = struct.Struct("<QQq")

SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_NOBITS, SHT_REL = 8, 9
SHF_EXECINSTR = 0x4
ET_REL, EM_BPF = 1, 247
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2
STT_OBJECT, STT_FUNC = 1, 2
BPF_INSN = 8


@dataclass
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    def data(self, blob: bytes) -> bytes:
        if self.type == SHT_NOBITS:
            return b""
        return blob[self.offset : self.offset + self.size]


@dataclass
class ElfObject:
    """A checked ELF object: its sections by index and by name."""

    data: bytes
    sections: list[Section]
    by_name: dict[str, Section] = field(default_factory=dict)
    #: its ``.BTF``, parsed and checked (None when it has none)
    btf: Btf | None = None

    def section(self, name: str) -> bytes | None:
        """The bytes of the first section called ``name``, or None."""
        sec = self.by_name.get(name)
        return None if sec is None else sec.data(self.data)


class _Bad(Exception):
    """One broken rule; becomes an ObjectError naming the object."""


def _strtab_ok(sec: Section, blob: bytes) -> bool:
    if sec.type != SHT_STRTAB or sec.size == 0:
        return False
    data = sec.data(blob)
    return data[:1] == b"\0" and data[-1:] == b"\0"


def _str_at(table: bytes, off: int, what: str) -> str:
    if off >= len(table):
        raise _Bad(f"{what}: string offset {off} is past its table ({len(table)} bytes)")
    end = table.find(b"\0", off)
    return table[off:end].decode("utf-8", "replace")


def check_object(data: bytes, what: str = "object") -> ElfObject:
    """Check a BPF object file's structure (see the module doc) and return its sections.

    Args:
        data: the whole file.
        what: how messages name the file ("open flows.bpf.o").

    Raises:
        ObjectError: errno 4001 (libbpf's "BPF object format invalid") and a
            message naming the first rule the file breaks.
        BtfError: its ``.BTF`` section is malformed.
    """
    try:
        return _check(data)
    except _Bad as exc:
        raise ObjectError(FORMAT_ERRNO, what, f"BPF object format invalid: {exc}") from None


def _check(blob: bytes) -> ElfObject:
    n = len(blob)
    if n > MAX_OBJECT_SIZE:
        raise _Bad(f"{n} bytes: more than the {MAX_OBJECT_SIZE} accepted")
    if n < _EHDR.size or blob[:4] != b"\x7fELF":
        raise _Bad("no ELF header")
    ident = blob[:16]
    if ident[4] != 2:
        raise _Bad(f"ELF class {ident[4]} (BPF objects are ELF64, class 2)")
    host = 1 if sys.byteorder == "little" else 2
    if ident[5] != host:
        order = {1: "little", 2: "big"}.get(ident[5], f"unknown ({ident[5]})")
        raise _Bad(f"a {order}-endian object; libbpf here reads {sys.byteorder}-endian ones")
    if ident[6] != 1:
        raise _Bad(f"ELF version {ident[6]}")
    (
        _,
        e_type,
        e_machine,
        e_version,
        _entry,
        e_phoff,
        e_shoff,
        _flags,
        e_ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = _EHDR.unpack_from(blob)
    if e_type != ET_REL:
        raise _Bad(f"ELF type {e_type}: not a relocatable object (ET_REL)")
    if e_machine not in (0, EM_BPF):
        raise _Bad(f"machine {e_machine}: not BPF ({EM_BPF})")
    if e_version != 1:
        raise _Bad(f"e_version {e_version}")
    if e_ehsize != _EHDR.size:
        raise _Bad(f"ELF header size {e_ehsize} (ELF64's is {_EHDR.size})")
    if e_phnum and (e_phentsize != 56 or e_phoff > n or e_phnum * 56 > n - e_phoff):
        raise _Bad("the program header table lies outside the file")
    if e_shnum == 0:
        raise _Bad("no section header table" if not e_shoff else "extended section numbering")
    if e_shentsize != _SHDR.size:
        raise _Bad(f"section header size {e_shentsize} (ELF64's is {_SHDR.size})")
    if e_shnum >= MAX_SECTIONS:
        raise _Bad(f"{e_shnum} sections (at most {MAX_SECTIONS - 1})")
    if e_shoff > n or e_shnum * _SHDR.size > n - e_shoff:
        raise _Bad(f"the section header table ({e_shnum} at {e_shoff}) runs past the end ({n})")
    if e_shstrndx >= e_shnum:
        raise _Bad(f"section name table index {e_shstrndx} of {e_shnum} sections")
    raw = [_SHDR.unpack_from(blob, e_shoff + i * _SHDR.size) for i in range(e_shnum)]
    shdrs = [Section(i, "", r[1], r[2], r[4], r[5], r[6], r[7], r[9]) for i, r in enumerate(raw)]
    if shdrs[0].type != SHT_NULL:
        raise _Bad("section 0 is not SHT_NULL")
    for s, r in zip(shdrs, raw, strict=True):
        align = r[8]
        if s.type not in (SHT_NOBITS, SHT_NULL) and (s.offset > n or s.size > n - s.offset):
            raise _Bad(f"section {s.index}: {s.size} bytes at {s.offset} run past the end ({n})")
        if align & (align - 1):
            raise _Bad(f"section {s.index}: alignment {align} is not a power of two")
        if s.link >= e_shnum:
            raise _Bad(f"section {s.index}: sh_link {s.link} of {e_shnum} sections")
    shstr = shdrs[e_shstrndx]
    if not _strtab_ok(shstr, blob):
        raise _Bad("the section name table is not a NUL-delimited string table")
    names = shstr.data(blob)
    obj = ElfObject(blob, shdrs)
    for s, r in zip(shdrs, raw, strict=True):
        s.name = _str_at(names, r[0], f"section {s.index} name")
        obj.by_name.setdefault(s.name, s)
        if s.type == SHT_PROGBITS and s.flags & SHF_EXECINSTR and s.size % BPF_INSN:
            raise _Bad(f"program section {s.name!r}: {s.size} bytes, not whole instructions")
    symtabs = [s for s in shdrs if s.type == SHT_SYMTAB]
    if len(symtabs) > 1:
        raise _Bad("more than one symbol table")
    nsyms = _check_symbols(blob, shdrs, symtabs[0]) if symtabs else 0
    for s in shdrs:
        if s.type in (SHT_REL, SHT_RELA):
            _check_relocs(blob, shdrs, s, symtabs[0] if symtabs else None, nsyms)
    lic = obj.by_name.get("license")
    if lic is not None and lic.type != SHT_NOBITS and b"\0" not in lic.data(blob):
        raise _Bad("the license section has no NUL-terminated string")
    ver = obj.by_name.get("version")
    if ver is not None and ver.size != 4:
        raise _Bad(f"the version section has {ver.size} bytes, not 4")
    _check_btf(obj)
    return obj


def _check_symbols(blob: bytes, shdrs: list[Section], symtab: Section) -> int:
    if symtab.entsize != _SYM.size or symtab.size % _SYM.size:
        raise _Bad(f"symbol table: entry size {symtab.entsize}, {symtab.size} bytes")
    strtab = shdrs[symtab.link]
    if not _strtab_ok(strtab, blob):
        raise _Bad(f"symbol table: its string table (section {symtab.link}) is not one")
    strings = strtab.data(blob)
    data = symtab.data(blob)
    nsyms = len(data) // _SYM.size
    for i in range(nsyms):
        st_name, info, _other, shndx, value, size = _SYM.unpack_from(data, i * _SYM.size)
        where = f"symbol {i}"
        _str_at(strings, st_name, where)
        if shndx in (SHN_UNDEF, SHN_ABS, SHN_COMMON):
            continue
        if shndx >= len(shdrs):
            raise _Bad(f"{where}: section index {shndx} of {len(shdrs)}")
        sec = shdrs[shndx]
        kind = info & 0xF
        if kind in (STT_FUNC, STT_OBJECT) and (value > sec.size or size > sec.size - value):
            raise _Bad(f"{where}: {size} bytes at {value} outside section {sec.name!r}")
        if kind == STT_FUNC and (value % BPF_INSN or size % BPF_INSN):
            raise _Bad(f"{where}: a function not on instruction boundaries")
    return nsyms


def _check_relocs(
    blob: bytes, shdrs: list[Section], rel: Section, symtab: Section | None, nsyms: int
) -> None:
    fmt = _REL if rel.type == SHT_REL else _RELA
    where = f"relocation section {rel.name!r}"
    if rel.entsize != fmt.size or rel.size % fmt.size:
        raise _Bad(f"{where}: entry size {rel.entsize}, {rel.size} bytes")
    if symtab is None or rel.link != symtab.index:
        raise _Bad(f"{where}: not linked to the symbol table")
    if not 0 < rel.info < len(shdrs):
        raise _Bad(f"{where}: applies to section {rel.info} of {len(shdrs)}")
    target = shdrs[rel.info]
    data = rel.data(blob)
    for i in range(len(data) // fmt.size):
        off, info = fmt.unpack_from(data, i * fmt.size)[:2]
        if (info >> 32) >= nsyms:
            raise _Bad(f"{where}: entry {i} names symbol {info >> 32} of {nsyms}")
        if off >= target.size or (target.flags & SHF_EXECINSTR and off % BPF_INSN):
            raise _Bad(f"{where}: entry {i} at offset {off} of {target.size}-byte {target.name!r}")


def _check_btf(obj: ElfObject) -> None:
    btf_data = obj.section(".BTF")
    ext = obj.section(".BTF.ext")
    if btf_data is None:
        if ext is not None:
            raise _Bad(".BTF.ext without .BTF")
        return
    from .btf import Btf
    from .btf._validate import check_btf_ext

    btf = obj.btf = Btf.parse(btf_data)
    if ext is not None:
        try:
            check_btf_ext(ext, btf, {s.name for s in obj.sections})
        except ValueError as exc:
            raise _Bad(f".BTF.ext: {exc}") from None


def read_regular_file(
    path: bytes,
    operation: str,
    limit: int,
    *,
    not_found: Callable[[int, str, str], OSError] = ObjectFileNotFoundError,
) -> bytes:
    """The whole of a regular file, read without ever blocking on what it is.

    The file is opened with O_NONBLOCK (a FIFO without a writer, a tty or a
    device cannot block the open), then refused unless it is a regular file,
    and read up to ``limit`` bytes.

    Args:
        path: the file's path, already checked by :func:`typedmaps._args.fspath`.
        not_found: the error for a path where nothing exists (its caller's
            FileNotFoundError class).

    Raises:
        ObjectError: the file cannot be opened or read (its errno: EACCES,
            ELOOP, ...), is not a regular file (EINVAL; EISDIR for a
            directory) or is larger than ``limit`` (EFBIG).
        not_found: the path does not exist (ENOENT).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == _errno.ENOENT:
            raise not_found(exc.errno, operation, os.strerror(exc.errno)) from None
        raise ObjectError(exc.errno or _errno.EIO, operation, exc.strerror) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ObjectError(_errno.EISDIR, operation, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ObjectError(
                _errno.EINVAL, operation, "not a regular file (a FIFO, socket or device)"
            )
        if st.st_size > limit:
            raise ObjectError(_errno.EFBIG, operation, f"{st.st_size} bytes: over {limit}")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ObjectError(_errno.EFBIG, operation, f"more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, TypedMapsError):
            raise
        raise ObjectError(exc.errno or _errno.EIO, operation, exc.strerror) from None
    finally:
        os.close(fd)
