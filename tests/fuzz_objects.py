"""Mutations of real BPF objects and BTF, for the robustness tests (nothing here is a test).

:func:`cases` makes a seeded list of mutated inputs from every object in
build/bpf/: byte flips, truncations, and field-aware changes of the ELF
header, section headers, symbols, relocations, the BTF header, BTF type
records and ``.BTF.ext``; and raw ``.BTF`` sections mutated alone.
:data:`DRIVER` is the program a test runs in a subprocess: for each case it
forks a child that feeds the input to the typedmaps entry points, so a
crash, a hang or an unexpected exception is attributed to its case, while
one interpreter start serves a whole batch.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path

_SHDR = struct.Struct("<IIQQQQIIQQ")


@dataclass(frozen=True)
class Case:
    """One mutated input: what it came from, how it was changed, and its bytes."""

    source: str
    mutation: str
    data: bytes
    kind: str  # "object" (an ELF file) or "btf" (raw BTF)


def _sections(d: bytes) -> dict[str, tuple[int, int, int]]:
    """Section name -> (file offset, size, header offset) of a well-formed object."""
    (shoff,) = struct.unpack_from("<Q", d, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", d, 0x3C)
    shs = [_SHDR.unpack_from(d, shoff + i * 64) for i in range(shnum)]
    names = shs[shstrndx][4]
    out = {}
    for i, s in enumerate(shs):
        start = names + s[0]
        out[d[start : d.index(b"\0", start)].decode()] = (s[4], s[5], shoff + i * 64)
    return out


def _put(b: bytearray, off: int, size: int, value: int) -> None:
    if off >= 0 and off + size <= len(b):
        b[off : off + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


def _value(rng: random.Random, size: int, near: int = 0) -> int:
    top = (1 << (8 * size)) - 1
    return rng.choice([0, 1, 2, 4, 8, top, top >> 1, near, near + 1, rng.randrange(top + 1)])


def mutate_object(d: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of an ELF object; returns (description, bytes)."""
    b = bytearray(d)
    secs = _sections(d)
    kind = rng.choice(
        [
            "flip",
            "flip",
            "trunc",
            "ehdr",
            "shdr",
            "shdr",
            "sym",
            "rel",
            "btfhdr",
            "btftype",
            "btftype",
            "btfext",
        ]
    )
    if kind == "flip":
        where = []
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            where.append(i)
        return f"flip bytes {where}", bytes(b)
    if kind == "trunc":
        n = rng.randrange(len(b))
        return f"truncate to {n}", bytes(b[:n])
    if kind == "ehdr":
        off, size = rng.choice(
            [
                (4, 1),
                (5, 1),
                (6, 1),
                (16, 2),
                (18, 2),
                (20, 4),
                (32, 8),
                (40, 8),
                (52, 2),
                (54, 2),
                (56, 2),
                (58, 2),
                (60, 2),
                (62, 2),
            ]
        )
        v = _value(rng, size, len(d))
        _put(b, off, size, v)
        return f"ELF header @{off:#x} = {v:#x}", bytes(b)
    if kind == "shdr":
        name = rng.choice(sorted(secs))
        hoff = secs[name][2]
        off, size = rng.choice(
            [(0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8), (56, 8)]
        )
        v = _value(rng, size, len(d))
        _put(b, hoff + off, size, v)
        return f"section {name} header +{off} = {v:#x}", bytes(b)
    if kind == "sym" and ".symtab" in secs:
        base, size, _ = secs[".symtab"]
        i = rng.randrange(max(1, size // 24))
        off, width = rng.choice([(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)])
        v = _value(rng, width, 0xFFF1)
        _put(b, base + 24 * i + off, width, v)
        return f"symbol {i} +{off} = {v:#x}", bytes(b)
    rels = sorted(n for n in secs if n.startswith(".rel"))
    if kind == "rel" and rels:
        name = rng.choice(rels)
        base, size, _ = secs[name]
        i = rng.randrange(max(1, size // 16))
        off, width = rng.choice([(0, 8), (8, 4), (12, 4)])
        v = _value(rng, width, 64)
        _put(b, base + 16 * i + off, width, v)
        return f"{name} entry {i} +{off} = {v:#x}", bytes(b)
    if kind in ("btfhdr", "btftype") and ".BTF" in secs:
        base, size, _ = secs[".BTF"]
        if kind == "btfhdr":
            off, width = rng.choice([(2, 1), (3, 1), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4)])
            v = _value(rng, width, size)
        else:
            hdr_len, toff, tlen = struct.unpack_from("<III", d, base + 4)
            off, width = hdr_len + toff + 4 * rng.randrange(max(1, tlen // 4)), 4
            v = rng.choice(
                [_value(rng, 4, size), (rng.randrange(32) << 24) | rng.randrange(1 << 16)]
            )
        _put(b, base + off, width, v)
        return f".BTF +{off} = {v:#x}", bytes(b)
    if kind == "btfext" and ".BTF.ext" in secs:
        base, size, _ = secs[".BTF.ext"]
        off = 4 * rng.randrange(max(1, size // 4))
        v = _value(rng, 4, 64)
        _put(b, base + off, 4, v)
        return f".BTF.ext +{off} = {v:#x}", bytes(b)
    i = rng.randrange(len(b))
    b[i] ^= 0xFF
    return f"invert byte {i}", bytes(b)


def mutate_btf(blob: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of a raw BTF blob; returns (description, bytes)."""
    b = bytearray(blob)
    hdr_len, toff, tlen = struct.unpack_from("<III", blob, 4)
    choice = rng.randrange(5)
    if choice == 0:
        n = rng.randrange(len(b))
        return f"truncate to {n}", bytes(b[:n])
    if choice == 1:
        off = rng.choice([2, 3, 4, 8, 12, 16, 20])
        width = 1 if off < 4 else 4
        v = _value(rng, width, len(blob))
        _put(b, off, width, v)
        return f"header @{off} = {v:#x}", bytes(b)
    if choice == 2:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        return f"flip byte {i}", bytes(b)
    off = hdr_len + toff + 4 * rng.randrange(max(1, tlen // 4))
    v = rng.choice([_value(rng, 4, 64), (rng.randrange(32) << 24) | rng.randrange(4)])
    _put(b, off, 4, v)
    return f"type word @{off} = {v:#x}", bytes(b)


def cases(objects: list[Path], count: int, seed: int) -> list[Case]:
    """``count`` mutations, spread over ``objects`` and over objects and raw BTF."""
    rng = random.Random(seed)
    blobs = {p.name: p.read_bytes() for p in objects}
    out = []
    for i in range(count):
        name = sorted(blobs)[i % len(blobs)]
        data = blobs[name]
        if i % 4 == 3:
            base, size, _ = _sections(data)[".BTF"]
            what, mutated = mutate_btf(data[base : base + size], rng)
            out.append(Case(name + ":.BTF", what, mutated, "btf"))
        else:
            what, mutated = mutate_object(data, rng)
            out.append(Case(name, what, mutated, "object"))
    return out


#: Runs in a fresh interpreter: argv[1] is a directory of case files NNNN.bin
#: (and NNNN.kind); prints one JSON line per case: its number and outcome.
DRIVER = r"""
import json, os, signal, sys, time, traceback
import typedmaps as tm
from typedmaps.btf import Btf
from typedmaps.btf.format import dumps, format_type, json_writer
from typedmaps.codec import make_codec
from typedmaps.codegen import generate

TIMEOUT = float(sys.argv[2])
OK, NAMED, WRONG = 0, 10, 20

def exercise(btf):
    generate(btf)
    for t in btf.types[1:80]:
        try:
            size = btf.size_of(t.id)
        except tm.TypedMapsError:
            continue
        if size > 4096:
            continue
        data = bytes((i * 37) & 0xFF for i in range(size))
        shown = dumps(format_type(btf, t.id, data))
        try:  # the compiled writer typedmaps dump uses: the same text
            text = json_writer(btf, t.id, size=size)(data, 0)
        except tm.TypedMapsError:
            pass
        else:
            assert text == shown, (t.id, text[:200], shown[:200])
        try:
            codec = make_codec(btf.schema(t.id))
            codec.encode(codec.decode(data))
        except tm.TypedMapsError:
            continue

def one(path, kind):
    data = open(path, "rb").read()
    if kind == "btf":
        btf = Btf.parse(data)
        Btf.from_bytes(data)
        exercise(btf)
        return
    with tm.BpfObject.open(data) as obj:
        list(obj.maps)
    btf = Btf.from_file(path)
    exercise(btf)

d = sys.argv[1]
for name in sorted(f for f in os.listdir(d) if f.endswith(".bin")):
    kind = open(os.path.join(d, name[:-4] + ".kind")).read()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code, msg = OK, ""
        try:
            one(os.path.join(d, name), kind)
        except tm.TypedMapsError as exc:
            code, msg = NAMED, f"{type(exc).__name__}: {str(exc)[:200]}"
        except BaseException as exc:
            code, msg = WRONG, traceback.format_exc()[-2000:]
        os.write(w, msg.encode("utf-8", "replace"))
        os._exit(code)
    os.close(w)
    deadline = time.monotonic() + TIMEOUT
    status = None
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    msg = os.read(r, 4096).decode("utf-8", "replace")
    os.close(r)
    if status is None:
        outcome = "hang"
    elif os.WIFSIGNALED(status):
        outcome = f"signal {os.WTERMSIG(status)}"
    else:
        outcome = {OK: "ok", NAMED: "named", WRONG: "wrong"}.get(os.WEXITSTATUS(status), "exit")
    print(json.dumps({"case": name[:-4], "outcome": outcome, "detail": msg}), flush=True)
"""
