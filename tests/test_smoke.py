"""The package imports, finds libbpf and reaches the kernel."""

from __future__ import annotations

from pathlib import Path

import typedmaps as tm

from .conftest import MakeMap


def test_public_names_are_exported() -> None:
    for name in tm.__all__:
        assert hasattr(tm, name), name
    assert tm.MapHandle.__module__ == "typedmaps"


def test_num_possible_cpus_matches_sysfs() -> None:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    last = max(int(part.split("-")[-1]) for part in text.split(","))
    assert tm.num_possible_cpus() == last + 1


def test_create_and_roundtrip(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    h.update(b"\x01\0\0\0", b"abcdefgh")
    assert h.lookup(b"\x01\0\0\0") == b"abcdefgh"
