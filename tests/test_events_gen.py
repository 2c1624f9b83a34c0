"""`typedmaps gen --type NAME`: classes for the records of event streams, from the object's BTF.

The records a ring buffer carries have no type in the kernel; the object
file has them. The generated module is imported and used on a real ring,
passes mypy --strict and ruff, and a pipeline over it is type-checked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import typedmaps as tm
from typedmaps.btf import Btf
from typedmaps.codegen import generate

from .conftest import bpf_object
from .event_streams import MODE_VAR, loaded, var_data
from .test_cli_support import VENV_BIN, typedmaps_cli

pytestmark = pytest.mark.usefixtures("bpf")


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gen_types")
    out = d / "ring_types.py"
    obj = str(bpf_object("ringbuf"))
    typedmaps_cli("gen", obj, "--type", "event", "--type", "struct var_record", "-o", str(out))
    return d


def _load(d: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ring_types", d / "ring_types.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ring_types", mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_the_records_decode_a_real_ring(gen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    types = _load(gen_dir, monkeypatch)
    text = (gen_dir / "ring_types.py").read_text()
    assert "class Event(DataclassMixin):" in text
    assert "data: bytes = csfield(cs.GreedyBytes)" in text  # the flexible array
    assert "TypedRingBuffer(handle, value=...)" in text  # the stream map's comment
    assert [f.name for f in dataclasses.fields(types.Event)] == [
        "seq",
        "ts_ns",
        "tgid",
        "cpu",
        "kind",
        "value",
    ]
    with loaded("ringbuf") as em:
        with tm.TypedRingBuffer(em.maps["events"], value=types.EVENT) as ev:
            em.emit(3, param=5)
            got = ev.consume()
            assert [(e.seq, e.value) for e in got] == [(0, 5), (1, 5), (2, 5)]
            assert all(isinstance(e, types.Event) for e in got)
        with tm.TypedRingBuffer(em.maps["events"], value=types.VAR_RECORD) as var:
            em.emit(4, MODE_VAR, 6)
            got = var.consume()
            assert [(r.seq, r.data) for r in got] == [(s, var_data(s, s % 7)) for s in range(3, 7)]


PIPELINE = """
from __future__ import annotations

from typing import assert_type

import typedmaps as tm
import ring_types as r


def newest(h: tm.MapHandle) -> int:
    ev = tm.TypedRingBuffer(h, value=r.EVENT)
    assert_type(ev, tm.TypedRingBuffer[r.Event])
    var = tm.TypedRingBuffer(h, value=r.VAR_RECORD)
    assert_type(var.consume(), list[r.VarRecord])
    return max(e.seq for e in ev.consume())


def wrong(h: tm.MapHandle) -> str:
    return tm.TypedRingBuffer(h, value=r.EVENT).consume()[0].seq
"""


def test_module_passes_mypy_and_ruff_and_types_a_pipeline(gen_dir: Path) -> None:
    (gen_dir / "pipeline.py").write_text(PIPELINE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "ring_types.py",
            "pipeline.py",
        ],
        capture_output=True,
        text=True,
        cwd=gen_dir,
        check=False,
        timeout=600,
        env=dict(os.environ, MYPYPATH=str(gen_dir)),
    )
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.count("error:") == 1, proc.stdout
    assert 'Incompatible return value type (got "int", expected "str")' in proc.stdout
    ruff = str(VENV_BIN / "ruff")
    for cmd in (
        [
            "check",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP,SIM,RUF,PL",
            "--line-length",
            "100",
            "ring_types.py",
        ],
        ["format", "--isolated", "--check", "ring_types.py"],
    ):
        r = subprocess.run([ruff, *cmd], capture_output=True, text=True, cwd=gen_dir, check=False)
        assert r.returncode == 0, r.stdout + r.stderr


def test_enums_and_unions_by_name_and_what_is_refused() -> None:
    btf = Btf.from_file(bpf_object("zoo"))
    text = generate(btf, "zoo", types=["enum zoo_color", "union zoo_word"])
    assert "class ZooColor(OpenIntEnum):" in text
    assert "ZOO_COLOR = EnumInt(" in text
    assert "ZOO_WORD = UnionRecord(ZooWord)" in text
    with pytest.raises(tm.CodecError, match="no type named 'nope'"):
        generate(btf, "zoo", types=["nope"])
    with pytest.raises(tm.CodecError, match="structs, unions and enums"):
        generate(btf, "zoo", types=["__u32"])
    r = typedmaps_cli("gen", str(bpf_object("zoo")), "--type", "nope", check=False)
    assert r.returncode != 0
    assert "no type named 'nope'" in r.stderr
    assert "Traceback" not in r.stderr
