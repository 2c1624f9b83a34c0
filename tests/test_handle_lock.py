"""MapFlags.LOCK on a map whose value holds a bpf_spin_lock, and maps with BTF.

A map only gets a spin lock through BTF, which MapHandle.create does not
take; so a tiny BPF object is compiled here with clang and loaded with
``bpftool prog loadall ... pinmaps``, and its maps are opened from bpffs.
The pinned program doubles as a BPF object that is not a map.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import typedmaps as tm

from .conftest import BPFFS, bpf_unavailable, bpftool, need

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct locked_val {
    struct bpf_spin_lock lock;
    __u32 a;
    __u64 b;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, struct locked_val);
} locked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct locked_val);
} locked_arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} plain SEC(".maps");

SEC("xdp")
int bump(struct xdp_md *ctx)
{
    __u32 k = 0;
    struct locked_val *v = bpf_map_lookup_elem(&locked, &k);
    if (v) {
        bpf_spin_lock(&v->lock);
        v->b++;
        bpf_spin_unlock(&v->lock);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bpffs dir with maps/{locked,locked_arr,plain} and progs/bump."""
    reason = bpf_unavailable()
    need(reason is None, reason or "")
    need(os.path.ismount(BPFFS), "bpffs is not mounted at /sys/fs/bpf")
    clang = shutil.which("clang")
    need(clang is not None, "clang is not installed (make setup installs it)")
    assert clang is not None
    src = tmp_path_factory.mktemp("bpf") / "lock.bpf.c"
    src.write_text(SOURCE)
    obj = src.with_suffix(".o")
    include = f"-I/usr/include/{platform.machine()}-linux-gnu"
    cflags = ["-g", "-O2", "-target", "bpf", "-Wall", "-Werror", include]
    subprocess.run([clang, *cflags, "-c", str(src), "-o", str(obj)], check=True)
    root = BPFFS / f"typedmaps_lock_{uuid.uuid4().hex[:12]}"
    root.mkdir()
    try:
        bpftool("prog", "loadall", str(obj), str(root / "progs"), "pinmaps", str(root / "maps"))
        yield root
    finally:
        for sub in ("progs", "maps"):
            d = root / sub
            if d.is_dir():
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
        root.rmdir()


def val(a: int, b: int) -> bytes:
    """struct locked_val with a zero lock word."""
    return struct.pack("<IIQ", 0, a, b)


K0, K1 = struct.pack("=I", 0), struct.pack("=I", 1)


def test_maps_with_btf_report_it(pinned: Path) -> None:
    with tm.MapHandle.from_pinned_path(pinned / "maps" / "locked") as h:
        info = h.info()
        assert info.btf_id > 0
        assert info.btf_key_type_id > 0
        assert info.btf_value_type_id > 0
        assert (h.key_size, h.value_size, h.name) == (4, 16, "locked")


@pytest.mark.parametrize("name", ["locked", "locked_arr"])
def test_lock_flag_on_a_spin_lock_map(pinned: Path, name: str) -> None:
    with tm.MapHandle.from_pinned_path(pinned / "maps" / name) as h:
        h.update(K0, val(5, 7), tm.MapFlags.LOCK)
        assert h.lookup(K0, tm.MapFlags.LOCK) == val(5, 7)
        h.update(K0, val(6, 8), tm.MapFlags.LOCK | tm.MapFlags.EXIST)
        assert h.lookup(K0) == val(6, 8)
        # The kernel never copies the lock word itself out or in.
        h.update(K1, struct.pack("<IIQ", 0xFFFFFFFF, 1, 2), tm.MapFlags.LOCK)
        assert h.lookup(K1, tm.MapFlags.LOCK) == val(1, 2)
        h.update_batch(K0 + K1, val(10, 11) + val(12, 13), 2, elem_flags=tm.MapFlags.LOCK)
        got = dict(h.lookup_batch(elem_flags=tm.MapFlags.LOCK))
        assert got[K0] == val(10, 11)
        assert got[K1] == val(12, 13)


def test_lock_flag_keeps_the_exist_semantics(pinned: Path) -> None:
    with tm.MapHandle.from_pinned_path(pinned / "maps" / "locked") as h:
        h.update(K0, val(1, 1), tm.MapFlags.LOCK)
        with pytest.raises(tm.KeyExistsError):
            h.update(K0, val(2, 2), tm.MapFlags.LOCK | tm.MapFlags.NO_EXIST)
        missing = struct.pack("=I", 7)
        with pytest.raises(tm.KeyNotFoundError):
            h.update(missing, val(2, 2), tm.MapFlags.LOCK | tm.MapFlags.EXIST)
        assert h.lookup(missing, tm.MapFlags.LOCK) is None
        assert h.lookup(K0) == val(1, 1)


def test_lock_flag_on_a_btf_map_without_a_spin_lock(pinned: Path) -> None:
    with tm.MapHandle.from_pinned_path(pinned / "maps" / "plain") as h:
        h.update(K0, struct.pack("=Q", 3))
        # Here BTF exists, so only the kernel can tell: its EINVAL is named.
        with pytest.raises(tm.NotSupportedError, match=r"update: MapFlags\.LOCK needs") as info:
            h.update(K0, struct.pack("=Q", 4), tm.MapFlags.LOCK)
        assert info.value.errno == 22
        assert "has none" in str(info.value)
        with pytest.raises(tm.NotSupportedError, match=r"lookup: MapFlags\.LOCK needs"):
            h.lookup(K0, tm.MapFlags.LOCK)
        assert h.lookup(K0) == struct.pack("=Q", 3)


def test_a_pinned_program_is_not_a_map(pinned: Path) -> None:
    prog = pinned / "progs" / "bump"
    assert prog.exists()
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(tm.MapError, match="not a BPF map: a BPF program is pinned there"):
        tm.MapHandle.from_pinned_path(prog)
    for flag in ("readonly", "writeonly"):
        with pytest.raises(tm.MapError, match="not a BPF map"):
            tm.MapHandle.from_pinned_path(prog, **{flag: True})
    assert len(os.listdir("/proc/self/fd")) == before
