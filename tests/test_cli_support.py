"""Helpers shared by the BTF, CLI and codegen tests: the type zoo, loaded and pinned by bpftool.

Nothing here is a test. The zoo (bpf/zoo.bpf.c) is loaded with
``bpftool prog loadall ... pinmaps``, so the maps under test are made by an
independent tool, and bpftool's own BTF JSON (``btf dump -j``) gives the
offsets the tests check raw bytes against.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .conftest import BPFFS, ROOT, bpf_object, bpf_unavailable, need

VENV_BIN = Path(sys.executable).parent
ZOO_MAPS = (
    "zoo_hash",
    "zoo_array",
    "zoo_pcpu_arr",
    "zoo_pcpu_hash",
    "zoo_queue",
    "zoo_stack",
    "zoo_lru",
    "zoo_floats",
)
SENTINEL = "(unsupported-kind)"


def bpftool_exe() -> str:
    exe = shutil.which("bpftool") or "/usr/sbin/bpftool"
    need(os.path.exists(exe), "bpftool is not installed")
    return exe


def run_bpftool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bpftool_exe(), *args], check=check, capture_output=True, text=True)


def hexargs(data: bytes) -> list[str]:
    return [f"{b:02x}" for b in data]


class Pairs(list[tuple[str, Any]]):
    """A JSON object kept as ordered pairs (bpftool repeats the name "" for anonymous members)."""


def loads_pairs(text: str) -> Any:
    return json.loads(text, object_pairs_hook=Pairs)


def bpftool_dump(pin: Path) -> Any:
    """bpftool's `map dump -j`, parsed; its unprintable floats become SENTINEL."""
    out = run_bpftool("-j", "map", "dump", "pinned", str(pin), check=False).stdout
    return loads_pairs(out.replace("(unsupported-kind", f'"{SENTINEL}"'))


def typedmaps_cli(
    *args: str, check: bool = True, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (falls back to python -m typedmaps).

    ``prefix`` runs it under another command (e.g. setpriv, to drop privileges).
    """
    script = VENV_BIN / "typedmaps"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "typedmaps"]
    return subprocess.run(
        [*prefix, *cmd, *args], check=check, capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@contextmanager
def loaded_zoo() -> Iterator[Path]:
    """Load build/bpf/zoo.bpf.o with bpftool; yield the pin dir (maps under maps/)."""
    reason = bpf_unavailable()
    need(reason is None, reason or "")
    obj = bpf_object("zoo")
    need(BPFFS.is_dir() and os.path.ismount(BPFFS), "bpffs is not mounted at /sys/fs/bpf")
    d = BPFFS / f"typedmaps_zoo_{uuid.uuid4().hex[:10]}"
    run_bpftool("prog", "loadall", str(obj), str(d), "pinmaps", str(d / "maps"))
    try:
        yield d
    finally:
        for sub in (d / "maps", d):
            if sub.is_dir():
                for p in sub.iterdir():
                    if p.is_file() or not p.is_dir():
                        p.unlink()
        (d / "maps").rmdir()
        d.rmdir()


class ZooBtf:
    """bpftool's view of the zoo's BTF (`btf dump file -j`): offsets for raw-byte checks."""

    def __init__(self) -> None:
        out = run_bpftool("-j", "btf", "dump", "file", str(bpf_object("zoo"))).stdout
        self.types: dict[int, dict[str, Any]] = {t["id"]: t for t in json.loads(out)["types"]}

    def named(self, name: str) -> dict[str, Any]:
        for t in self.types.values():
            if t.get("name") == name and t["kind"] in ("STRUCT", "UNION", "ENUM"):
                return t
        raise KeyError(name)

    def resolve(self, tid: int) -> dict[str, Any]:
        t = self.types[tid]
        while t["kind"] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
            t = self.types[t["type_id"]]
        return t

    def size(self, tid: int) -> int:
        t = self.resolve(tid)
        if t["kind"] == "PTR":
            return 8
        if t["kind"] == "ARRAY":
            return int(t["nr_elems"]) * self.size(t["type_id"])
        return int(t["size"])

    def member(self, struct_name: str, member: str) -> tuple[int, int]:
        """(byte offset, byte size) of a non-bitfield member."""
        t = self.named(struct_name)
        for m in t["members"]:
            if m["name"] == member:
                return m["bits_offset"] // 8, self.size(m["type_id"])
        raise KeyError(member)

    def data_mask(self, tid: int) -> int:
        """The bits a type's members cover (padding bits 0), computed from bpftool's JSON."""
        t = self.resolve(tid)
        k = t["kind"]
        if k in ("INT", "PTR", "FLOAT", "ENUM", "ENUM64"):
            return (1 << (8 * self.size(tid))) - 1
        if k == "ARRAY":
            esz = self.size(t["type_id"])
            em = self.data_mask(t["type_id"])
            return sum(em << (8 * esz * i) for i in range(t["nr_elems"]))
        mask = 0
        for m in t["members"]:
            width = m.get("bitfield_size", 0)
            if width:
                mask |= ((1 << width) - 1) << m["bits_offset"]
            else:
                mask |= self.data_mask(m["type_id"]) << m["bits_offset"]
        return mask

    def bitfield_widths(self) -> dict[str, int]:
        widths: dict[str, int] = {}
        for t in self.types.values():
            for m in t.get("members", ()):
                if m.get("bitfield_size"):
                    widths[m["name"]] = m["bitfield_size"]
        return widths

    def check_raw(self, tid: int, raw: bytes, mine: Any, path: str) -> int:
        """Check every int, pointer and float in ``mine`` against the raw bytes; count them."""
        t = self.resolve(tid)
        k = t["kind"]
        n = 0
        if k == "FLOAT":
            (v,) = struct.unpack("<f" if t["size"] == 4 else "<d", raw)
            if math.isnan(v):
                assert mine == "nan", path
            elif v in (float("inf"), float("-inf")):
                assert mine == ("inf" if v > 0 else "-inf"), path
            else:
                assert mine == v, (path, mine, v)
            return 1
        if k == "PTR":
            assert mine == int.from_bytes(raw, "little"), path
            return 1
        if k == "INT" and t["encoding"] != "BOOL" and t["nr_bits"] == 8 * t["size"]:
            assert mine == int.from_bytes(raw, "little", signed=t["encoding"] == "SIGNED"), path
            return 1
        if k == "INT" and t["encoding"] == "BOOL":
            assert mine is (raw[0] != 0), path
            return 1
        if k == "ARRAY" and isinstance(mine, list):
            esz = self.size(t["type_id"])
            for i, item in enumerate(mine):
                n += self.check_raw(
                    t["type_id"], raw[i * esz : (i + 1) * esz], item, f"{path}[{i}]"
                )
            return n
        if k in ("STRUCT", "UNION"):
            assert isinstance(mine, Pairs), path
            for (name, value), m in zip(mine, t["members"], strict=True):
                assert name == ("" if m["name"] == "(anon)" else m["name"]), path
                if m.get("bitfield_size"):
                    continue
                off = m["bits_offset"] // 8
                size = self.size(m["type_id"])
                n += self.check_raw(m["type_id"], raw[off : off + size], value, f"{path}.{name}")
            return n
        return 0


def compare_formatted(bpf: Any, mine: Any, widths: dict[str, int], path: str = "") -> bool:
    """Assert bpftool's formatted view equals ours; False when bpftool stopped at a float.

    bpftool prints bitfields as hex strings of the raw bits and cannot print
    floats (it writes "(unsupported-kind" and ends the record): after that
    point its view is a prefix of ours.
    """
    if bpf == SENTINEL:
        return False
    if isinstance(bpf, Pairs):
        assert isinstance(mine, Pairs), (path, mine)
        for i, (name, value) in enumerate(bpf):
            assert mine[i][0] == name, (path, mine[i][0], name)
            if not compare_formatted(value, mine[i][1], widths, f"{path}.{name}"):
                return False
        assert len(mine) == len(bpf), path
        return True
    if isinstance(bpf, list):
        assert isinstance(mine, list), (path, mine)
        for i, value in enumerate(bpf):
            if not compare_formatted(value, mine[i], widths, f"{path}[{i}]"):
                return False
        assert len(mine) == len(bpf), path
        return True
    if isinstance(bpf, str) and bpf.startswith("0x") and isinstance(mine, int):
        width = widths[path.rsplit(".", 1)[-1]]
        assert int(bpf, 16) == mine & ((1 << width) - 1), (path, bpf, mine)
        return True
    assert bpf == mine, (path, bpf, mine)
    return True
