"""An independent BPF object, not in the repo: written and compiled here, then driven end to end.

Open, configure before load, load, run on each CPU through test_run, read
typed with the right per-CPU lists, compare bytes with bpftool, and check
libbpf's pin-by-name with pin_root_path.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import construct as cs
import pytest
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import bpftool, need

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* 12 bytes: per-CPU slots are rounded up to 16 */
struct tally {
	__u32 frames;
	__u32 octets;
	__u32 last_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);
	__type(value, struct tally);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tally_by_len SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

const volatile __u16 bucket = 64;	/* frames are tallied by len / bucket */
const volatile __u32 verdict = XDP_PASS;

SEC("xdp")
int tally(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u16 key = bucket ? len / bucket : 0;
	struct tally *t = bpf_map_lookup_elem(&tally_by_len, &key);

	if (t) {
		t->frames += 1;
		t->octets += len;
		t->last_len = len;
	} else {
		struct tally init;

		__builtin_memset(&init, 0, sizeof(init));
		init.frames = 1;
		init.octets = len;
		init.last_len = len;
		bpf_map_update_elem(&tally_by_len, &key, &init, BPF_NOEXIST);
	}
	__u32 idx = bpf_get_smp_processor_id() & 3;
	__u64 *n = bpf_map_lookup_elem(&seen, &idx);

	if (n)
		__sync_fetch_and_add(n, 1);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
"""


@dataclasses.dataclass
class Tally(DataclassMixin):
    frames: int = csfield(cs.Int32ul)
    octets: int = csfield(cs.Int32ul)
    last_len: int = csfield(cs.Int32ul)


@pytest.fixture(scope="module")
def independent_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clang = shutil.which("clang")
    need(clang is not None, "clang is not installed")
    assert clang is not None
    d = tmp_path_factory.mktemp("independent")
    src = d / "tally.bpf.c"
    src.write_text(SOURCE)
    out = d / "tally.bpf.o"
    arch = platform.machine()
    subprocess.run(
        [clang, "-g", "-O2", "-target", "bpf", "-Wall", "-Werror",
         f"-I/usr/include/{arch}-linux-gnu", "-c", str(src), "-o", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture
def loaded(independent_object: Path, pin_dir: Path) -> Iterator[tm.BpfObject]:
    with tm.BpfObject.open(independent_object, pin_root_path=pin_dir) as obj:
        obj.maps["tally_by_len"].max_entries = 32
        obj.maps[".rodata"].set_variable("bucket", struct.pack("<H", 100))
        obj.load()
        yield obj


def frame(length: int) -> bytes:
    return bytes.fromhex("ffffffffffff020000000001") + b"\x88\xb5" + bytes(length - 14)


def test_end_to_end_on_each_cpu(loaded: tm.BpfObject, pin_dir: Path) -> None:
    obj = loaded
    tally = obj.maps["tally_by_len"]
    assert tally.info().max_entries == 32  # configured before load
    cpus = sorted(os.sched_getaffinity(0))
    ncpus = tm.num_possible_cpus()
    prog = obj.programs["tally"]
    want: dict[int, list[Tally]] = {}
    for i, cpu in enumerate(cpus):
        for n in range(i + 1):
            length = 60 + 100 * n + i  # buckets of 100 bytes (the .rodata setting)
            r = prog.test_run(frame(length), cpu=cpu)
            assert r.retval == 2
            slots = want.setdefault(length // 100, [Tally(0, 0, 0) for _ in range(ncpus)])
            old = slots[cpu]
            slots[cpu] = Tally(old.frames + 1, old.octets + length, length)

    typed = tm.PerCpuTypedMap(tally, key=cs.Int16ul, value=DataclassStruct(Tally))
    got = dict(typed.items())
    assert got == want
    for key, per_cpu in got.items():
        assert len(per_cpu) == ncpus
        assert typed[key] == per_cpu
    auto = tm.typed(tally)
    assert isinstance(auto, tm.PerCpuTypedMap)

    # bytes through Map equal bpftool's view (bpftool shows value_size bytes per CPU)
    dumped = {
        bytes(int(b, 16) for b in e["key"]): [
            bytes(int(b, 16) for b in v["value"]) for v in e["values"]
        ]
        for e in bpftool("map", "dump", "id", str(tally.id))
    }
    assert dict(tally.lookup_batch()) == dumped
    keys = list(tally.keys())  # BPF_MAP_GET_NEXT_KEY walk
    assert {k: tally.lookup_percpu(k) for k in keys} == dumped
    seen = obj.maps["seen"]
    arr = {
        bytes(int(b, 16) for b in e["key"]): bytes(int(b, 16) for b in e["value"])
        for e in bpftool("map", "dump", "id", str(seen.id))
    }
    assert dict(seen.lookup_batch()) == arr
    total = sum(struct.unpack("<Q", v)[0] for v in arr.values())
    assert total == sum(t.frames for slots in want.values() for t in slots)

    # LIBBPF_PIN_BY_NAME: pinned under pin_root_path as the map's name
    assert tally.is_pinned
    assert tally.pin_path == str(pin_dir / "tally_by_len")
    with tm.MapHandle.from_pinned_path(pin_dir / "tally_by_len") as h:
        assert h.id == tally.id


def test_pinned_map_survives_and_is_reused(independent_object: Path, pin_dir: Path) -> None:
    with tm.BpfObject.open(independent_object, pin_root_path=pin_dir) as a:
        a.load()
        a.programs["tally"].test_run(frame(150))
        first = a.maps["tally_by_len"].id
    # the object is gone; the pin keeps the map, and the next load reuses it
    with tm.BpfObject.open(independent_object.read_bytes(), pin_root_path=pin_dir) as b:
        b.load()
        m = b.maps["tally_by_len"]
        assert m.id == first
        typed = tm.PerCpuTypedMap(m, key=cs.Int16ul, value=DataclassStruct(Tally))
        assert sum(t.frames for t in typed[150 // 64]) == 1  # the default bucket, 64
        m.unpin()
