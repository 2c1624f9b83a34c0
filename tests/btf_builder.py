"""Raw BTF (and minimal ELF objects holding it) built by hand, for the tests.

Nothing here is a test. The builder writes ``struct btf_header``, the type
section and the string section exactly as linux/btf.h lays them out, so the
tests can make BTF that clang 14 cannot emit (ENUM64, kflag=0 bitfields),
BTF with hostile names, and BTF that breaks the format on purpose.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from typedmaps.btf import Kind

MAP_TYPES = {"hash": 1, "array": 2, "percpu_hash": 5, "queue": 22, "stack": 23}


class BtfBuilder:
    """Raw BTF bytes, one type at a time (ids from 1).

    Names are ``str`` (UTF-8 encoded) or ``bytes`` (taken as they are, so
    invalid UTF-8 can be written); a name may not contain NUL.
    """

    def __init__(self) -> None:
        self.types = bytearray()
        self.strings = bytearray(b"\0")
        self.count = 0
        self._int_idx = 0

    def s(self, name: str | bytes) -> int:
        if not name:
            return 0
        raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
        assert b"\0" not in raw
        off = len(self.strings)
        self.strings += raw + b"\0"
        return off

    def add(
        self,
        name: str | bytes,
        kind: Kind,
        vlen: int,
        size_or_type: int,
        *extra: int,
        kflag: bool = False,
    ) -> int:
        info = (int(kflag) << 31) | (int(kind) << 24) | vlen
        self.types += struct.pack("<III", self.s(name), info, size_or_type)
        self.types += struct.pack(f"<{len(extra)}I", *extra)
        self.count += 1
        return self.count

    def int_(
        self,
        name: str | bytes,
        size: int,
        *,
        signed: bool = False,
        bits: int | None = None,
        offset: int = 0,
        boolean: bool = False,
        char: bool = False,
    ) -> int:
        enc = (1 if signed else 0) | (2 if char else 0) | (4 if boolean else 0)
        word = (enc << 24) | (offset << 16) | (bits if bits is not None else size * 8)
        return self.add(name, Kind.INT, 0, size, word)

    def struct_(
        self,
        name: str | bytes,
        size: int,
        members: Sequence[tuple[str | bytes, int, int]],
        kflag: bool = False,
        union: bool = False,
    ) -> int:
        """A STRUCT (or UNION): members as (name, type id, bit offset)."""
        flat: list[int] = []
        for mname, mtype, moff in members:
            flat += [self.s(mname), mtype, moff]
        kind = Kind.UNION if union else Kind.STRUCT
        return self.add(name, kind, len(members), size, *flat, kflag=kflag)

    def enum(self, name: str | bytes, values: list[tuple[str | bytes, int]], size: int = 4) -> int:
        flat: list[int] = []
        for ename, v in values:
            flat += [self.s(ename), v & 0xFFFFFFFF]
        return self.add(
            name, Kind.ENUM, len(values), size, *flat, kflag=any(v < 0 for _, v in values)
        )

    def ptr(self, target: int) -> int:
        return self.add("", Kind.PTR, 0, target)

    def typedef(self, name: str | bytes, target: int) -> int:
        return self.add(name, Kind.TYPEDEF, 0, target)

    def array(self, elem: int, nelems: int) -> int:
        if not self._int_idx:
            self._int_idx = self.int_("__ARRAY_SIZE_TYPE__", 4)
        return self.add("", Kind.ARRAY, 0, 0, elem, self._int_idx, nelems)

    def var(self, name: str | bytes, target: int, linkage: int = 1) -> int:
        return self.add(name, Kind.VAR, 0, target, linkage)

    def datasec(self, name: str | bytes, entries: list[tuple[int, int, int]], size: int = 0) -> int:
        """A DATASEC: entries as (VAR id, offset, size)."""
        flat: list[int] = []
        for v, off, sz in entries:
            flat += [v, off, sz]
        return self.add(name, Kind.DATASEC, len(entries), size, *flat)

    def maps(self, defs: list[tuple[str | bytes, str | int, int, int, int]]) -> int:
        """A ``.maps`` DATASEC of libbpf BTF-defined maps.

        ``defs``: (map name, map type (name or number), key type id (0 for
        none: key_size 4 is declared), value type id, max_entries).
        """
        u32 = self.int_("unsigned int", 4)
        vars_: list[tuple[int, int, int]] = []
        for i, (name, mtype, key, value, max_entries) in enumerate(defs):
            number = MAP_TYPES[mtype] if isinstance(mtype, str) else mtype
            members: list[tuple[str | bytes, int, int]] = [
                ("type", self.ptr(self.array(u32, number)), 0),
                ("max_entries", self.ptr(self.array(u32, max_entries)), 64),
            ]
            if key:
                members.append(("key", self.ptr(key), 128))
            else:
                members.append(("key_size", self.ptr(self.array(u32, 4)), 128))
            members.append(("value", self.ptr(value), 192))
            st = self.struct_("", 32, members)
            vars_.append((self.var(name, st), 32 * i, 32))
        return self.datasec(".maps", vars_, 32 * len(defs))

    def bytes(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return hdr + bytes(self.types) + bytes(self.strings)
