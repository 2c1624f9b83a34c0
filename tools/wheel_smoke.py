"""Smoke test of a built wheel, run by `make wheel-check` inside a fresh venv.

The venv has the wheel installed (not editable) and nothing of the source
tree: this script runs with ``python -I`` so that neither the working
directory nor the script's own directory is on ``sys.path``. It checks that
the installed package is the one that gets imported, that its data files are
there, that a map round-trips typed values, that the ``prometheus`` extra
exports it, and that the console script answers ``--version`` and ``list``.

    build/wheel-venv/bin/python -I tools/wheel_smoke.py build/dist
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

DATA_FILES = ("_cdefs.h", "py.typed")


def check(ok: object, what: object) -> None:
    """Fail the smoke test with a message (asserts would vanish under -O)."""
    if not ok:
        raise SystemExit(f"wheel smoke FAILED: {what}")


def check_archives(dist: Path, version: str) -> None:
    (wheel,) = dist.glob(f"typedmaps-{version}-*.whl")
    (sdist,) = dist.glob(f"typedmaps-{version}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in DATA_FILES:
        check(f"typedmaps/{f}" in names, f"{wheel.name} lacks typedmaps/{f}")
    with tarfile.open(sdist) as t:
        members = set(t.getnames())
    for f in DATA_FILES:
        check(f"typedmaps-{version}/src/typedmaps/{f}" in members, f"{sdist.name} lacks {f}")
    print(f"archives: {wheel.name} and {sdist.name} carry {', '.join(DATA_FILES)}")


@dataclasses.dataclass(unsafe_hash=True)
class Key(DataclassMixin):
    port: int = csfield(cs.Int16ul)
    proto: int = csfield(cs.Int8ul)
    pad: bytes = csfield(cs.Bytes(1))


@dataclasses.dataclass
class Stats(DataclassMixin):
    packets: int = csfield(cs.Int64ul)
    bytes: int = csfield(cs.Int64ul)


def main() -> None:
    version = importlib.metadata.version("typedmaps")
    check(version == tm.__version__, f"metadata {version} != __version__ {tm.__version__}")
    here = Path(tm.__file__).resolve()
    check(here.is_relative_to(Path(sys.prefix).resolve()), f"imported from {here}, not the venv")
    for f in DATA_FILES:
        check(resources.files("typedmaps").joinpath(f).is_file(), f"installed package lacks {f}")
    print(f"typedmaps {version} imported from {here.parent}")
    if len(sys.argv) > 1:
        check_archives(Path(sys.argv[1]), version)

    name = f"smoke{os.getpid() % 1_000_000}"
    with tm.MapHandle.create(
        tm.MapType.HASH, key_size=4, value_size=16, max_entries=8, name=name
    ) as h:
        m = tm.TypedMap(h, key=DataclassStruct(Key), value=DataclassStruct(Stats))
        k = Key(port=443, proto=6, pad=b"\0")
        m[k] = Stats(packets=3, bytes=180)
        check(m[k] == Stats(3, 180), m[k])
        raw = (3).to_bytes(8, "little") + (180).to_bytes(8, "little")
        check(h.lookup(bytes([0xBB, 0x01, 6, 0])) == raw, "the bytes in the kernel")
        check(dict(m.items()) == {k: Stats(3, 180)}, "items()")
        print(f"typed round trip on map {name!r}: packets={m[k].packets} bytes={m[k].bytes}")

        # The prometheus extra: a collector over the same map, rendered.
        from prometheus_client import CollectorRegistry, generate_latest

        from typedmaps.prometheus import MapCollector

        registry = CollectorRegistry()
        registry.register(MapCollector(m, prefix="smoke", counters={"packets"}))
        text = generate_latest(registry).decode()
        sample = f'smoke_{name}_packets_total{{pad="00",port="443",proto="6"}} 3.0'
        check(sample in text, f"no {sample!r} in:\n{text}")
        print(f"prometheus extra: {sample}")

        exe = Path(sys.prefix) / "bin" / "typedmaps"
        out = subprocess.run(
            [str(exe), "--version"], check=True, capture_output=True, text=True
        ).stdout
        check(out.startswith(f"typedmaps {version} (libbpf v"), out)
        print(f"$ typedmaps --version\n{out.strip()}")
        listing = subprocess.run(
            [str(exe), "list", "--json"], check=True, capture_output=True, text=True
        ).stdout
        rows = [r for r in json.loads(listing) if r["name"] == name]
        check(len(rows) == 1 and rows[0]["id"] == h.id, rows)
        check(rows[0]["bytes_key"] == 4 and rows[0]["bytes_value"] == 16, rows)
        print(f"$ typedmaps list --json: map {name!r} listed with id {h.id}")
    print("wheel smoke: OK")


if __name__ == "__main__":
    main()
