"""`typedmaps gen`: the generated module type-checks, lints, imports and works on real maps."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import typedmaps as tm
from typedmaps.codegen import py_name

from .conftest import ROOT, bpf_object
from .test_cli_support import SENTINEL, loaded_zoo, run_bpftool, typedmaps_cli

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gen")
    obj = bpf_object("zoo")
    out = d / "zoo_types.py"
    typedmaps_cli("gen", str(obj), "-o", str(out))
    return d


@pytest.fixture(scope="module")
def zoo_types(gen_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_types", gen_dir / "zoo_types.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["zoo_types"] = mod
    spec.loader.exec_module(mod)
    return mod


def _mypy(d: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYPYPATH=str(d))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        check=False,
        capture_output=True,
        text=True,
        cwd=d,
        env=env,
        timeout=600,
    )


def test_gen_to_stdout_equals_file(gen_dir: Path) -> None:
    out = typedmaps_cli("gen", str(bpf_object("zoo"))).stdout
    assert out == (gen_dir / "zoo_types.py").read_text()
    assert "class WideKey(DataclassMixin):" in out
    assert "def open_zoo_pcpu_hash(handle: MapHandle) -> PerCpuTypedMap[ZooColor, ZooBits]" in out


def test_generated_module_passes_mypy_strict_and_ruff(gen_dir: Path) -> None:
    r = _mypy(gen_dir, "zoo_types.py")
    assert r.returncode == 0, r.stdout + r.stderr
    ruff = [str(VENV_BIN / "ruff")]
    rules = "E,F,W,I,B,UP,SIM,RUF,PL"
    for cmd in (
        ["check", "--isolated", "--select", rules, "--line-length", "100", "zoo_types.py"],
        ["format", "--isolated", "--check", "zoo_types.py"],
    ):
        r = subprocess.run([*ruff, *cmd], check=False, capture_output=True, text=True, cwd=gen_dir)
        assert r.returncode == 0, r.stdout + r.stderr


PIPELINE_OK = """
from __future__ import annotations

import typedmaps as tm
import zoo_types as z


def total(h: tm.MapHandle) -> int:
    m = z.open_zoo_hash(h)
    k = z.WideKey(proto=6, port=80, addr=1, cookie=2, zone=-1)
    m[k] = z.ZooInner(x=1, y=2)
    v = m[k]
    return v.x + v.y


def colors(h: tm.MapHandle) -> list[float]:
    pc = z.open_zoo_pcpu_arr(h)
    return [s.avg for s in pc[0]]


def first_event(h: tm.MapHandle) -> bytes | None:
    q = z.open_zoo_queue(h)
    ev = q.peek()
    return None if ev is None else ev.comm
"""

PIPELINE_BAD = """
from __future__ import annotations

import typedmaps as tm
import zoo_types as z


def wrong(h: tm.MapHandle) -> None:
    m = z.open_zoo_hash(h)
    k = z.WideKey(proto="tcp", port=80, addr=1, cookie=2, zone=0)
    m[k] = 5
    name: int = z.open_zoo_array(h)[0].name
    z.ZooInner(x=1)
"""


def test_user_pipeline_is_type_checked(gen_dir: Path) -> None:
    (gen_dir / "pipeline_ok.py").write_text(PIPELINE_OK)
    (gen_dir / "pipeline_bad.py").write_text(PIPELINE_BAD)
    ok = _mypy(gen_dir, "pipeline_ok.py")
    assert ok.returncode == 0, ok.stdout
    bad = _mypy(gen_dir, "pipeline_bad.py")
    assert bad.returncode == 1
    out = bad.stdout
    assert 'Argument "proto" to "WideKey" has incompatible type "str"; expected "int"' in out
    assert (
        'Incompatible types in assignment (expression has type "int", target has type "ZooInner")'
        in out
    )
    assert (
        'Incompatible types in assignment (expression has type "bytes", '
        'variable has type "int")' in out
    )
    assert 'Missing positional argument "y" in call to "ZooInner"' in out
    assert out.count("error:") == 4, out


def test_constructors_take_only_c_members(zoo_types: ModuleType) -> None:
    z: Any = zoo_types
    k = z.WideKey(proto=6, port=80, addr=1, cookie=2, zone=-1)
    assert k._pad0 is None  # padding is a csfield_noinit field
    with pytest.raises(TypeError):
        z.WideKey(6, 0, 80, 1, 2, -1)  # no positional slot for the padding


@pytest.fixture(scope="module")
def zoo_pins() -> Iterator[Path]:
    with loaded_zoo() as d:
        yield d


def test_generated_accessors_on_real_maps(zoo_types: ModuleType, zoo_pins: Path) -> None:
    z: Any = zoo_types
    maps = zoo_pins / "maps"
    with tm.MapHandle.from_pinned_path(maps / "zoo_hash") as h:
        m = z.open_zoo_hash(h)
        assert isinstance(m, tm.TypedMap)
        k = z.WideKey(proto=6, port=443, addr=0x7F000001, cookie=7, zone=-3)
        m[k] = z.ZooInner(x=9, y=10)
        raw_k = struct.pack("<BxHIQb7x", 6, 443, 0x7F000001, 7, -3)
        assert h.lookup(raw_k) == struct.pack("<H2xI", 9, 10)
        assert m[k] == z.ZooInner(x=9, y=10)
    with tm.MapHandle.from_pinned_path(maps / "zoo_array") as h:
        arr = z.open_zoo_array(h)
        v = arr[0]
        v.name = b"from gen"
        v.color = z.ZooColor.ZOO_GREEN
        v.bits.b = -7
        v.bits.col = z.ZooColor.ZOO_BLUE
        v.bits.big = (1 << 30) - 1
        v.u = z.ZooWord(word=0x11223344)
        v.anon0 = z.ZooValueAnon0(as_s16=-2)
        v.f = 0.75
        v.d = 1e300
        arr[0] = v
        back = arr[0]
        assert back.name == b"from gen"
        assert back.color is z.ZooColor.ZOO_GREEN
        assert (back.bits.b, back.bits.col, back.bits.big) == (
            -7,
            z.ZooColor.ZOO_BLUE,
            (1 << 30) - 1,
        )
        assert back.u.bytes_ == [0x44, 0x33, 0x22, 0x11]
        assert back.u.halves == z.ZooWordHalves(lo=0x3344, hi=0x1122)
        assert back.anon0.as_u32 == 0xFFFE  # only the s16 member was written
        assert (back.f, back.d) == (0.75, 1e300)
        # and bpftool agrees on what was written
        fmt = run_json(
            "map", "lookup", "pinned", str(maps / "zoo_array"), "key", "0", "0", "0", "0"
        )
        assert fmt["formatted"]["value"]["name"] == "from gen"
        assert fmt["formatted"]["value"]["color"] == "ZOO_GREEN"
    with tm.MapHandle.from_pinned_path(maps / "zoo_queue") as h:
        q = z.open_zoo_queue(h)
        q.push(z.ZooEvent(pid=7, comm=b"gen", level=z.ZooSmall.ZOO_SMALL_MAX, delta=-1))
        peek = run_json("map", "peek", "pinned", str(maps / "zoo_queue"))
        raw = bytes(int(x, 16) for x in peek["value"])
        assert raw == struct.pack("<I16sB3xq", 7, b"gen", 255, -1)
        ev = q.pop()
        assert ev is not None
        assert (ev.pid, ev.comm, ev.level, ev.delta) == (7, b"gen", z.ZooSmall.ZOO_SMALL_MAX, -1)
    with tm.MapHandle.from_pinned_path(maps / "zoo_stack") as h:
        st = z.open_zoo_stack(h)
        st.push(2.5)
        assert st.pop() == 2.5
    with tm.MapHandle.from_pinned_path(maps / "zoo_pcpu_hash") as h:
        pc = z.open_zoo_pcpu_hash(h)
        n = tm.num_possible_cpus()
        bits = [
            z.ZooBits(
                head=c, a=1, b=-1, c=2, big=3, col=z.ZooColor.ZOO_BLUE, bb=True, neg=-200, tail=9
            )
            for c in range(n)
        ]
        pc[z.ZooColor.ZOO_GREEN] = bits
        assert pc[z.ZooColor.ZOO_GREEN] == bits


def run_json(*args: str) -> Any:
    """bpftool -j output as plain dicts (its unprintable floats as SENTINEL)."""
    text = run_bpftool("-j", *args).stdout.replace("(unsupported-kind", f'"{SENTINEL}"')
    return json.loads(text)


def test_py_name() -> None:
    assert py_name("from") == "from_"
    assert py_name("__pad") == "f__pad"
    assert py_name("plain") == "plain"
    assert ROOT.is_dir()
