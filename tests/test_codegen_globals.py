"""`typedmaps gen`'s globals classes: a typed skeleton view of bpf/globals.bpf.c's variables.

The generated module binds to a real object before and after load and reads
and writes the live variables, with the generated records and enums; mypy
accepts correct use and rejects a write to a read-only variable (.rodata
after load, .kconfig always) and a value of the wrong type.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps.codegen import generate_module

from .conftest import ROOT, bpf_object
from .generated_modules import imported, load

_ERROR = re.compile(r"^[^:]+:(?P<line>\d+): error: .*\[(?P<code>[a-z0-9-]+)\]$")


def _module(tmp_path: Path) -> tuple[Path, types.ModuleType]:
    path = tmp_path / "globals_types.py"
    path.write_text(generate_module(bpf_object("globals")))
    return path, load(path, "globals_types")


@pytest.fixture
def gen(tmp_path: Path) -> Iterator[types.ModuleType]:
    _, mod = _module(tmp_path)
    yield mod
    sys.modules.pop("globals_types", None)


def test_the_module_has_the_globals_classes(gen: types.ModuleType) -> None:
    for name in ("GlobalsGlobals", "GlobalsOpenGlobals", "globals_of", "open_globals_of"):
        assert name in gen.__all__
    src = Path(gen.__file__ or "").read_text()
    assert "    counter: int" in src
    assert "    def ro_rate(self) -> int: ..." in src  # read-only after load


def test_bind_before_and_after_load(bpf: None, gen: types.ModuleType) -> None:
    with tm.BpfObject.open(bpf_object("globals")) as obj:
        with pytest.raises(tm.ObjectError, match="load"):
            gen.globals_of(obj)
        cfg = gen.open_globals_of(obj)
        cfg.ro_rate = 6  # configuration, before load
        cfg.label = b"cfg"
        assert cfg.ro_name == b"typedmaps"  # char arrays are bytes in generated modules
        obj.load()
        with pytest.raises(tm.ObjectError, match="loaded"):
            gen.open_globals_of(obj)
        g = gen.globals_of(obj)
        assert g.ro_rate == 6
        assert isinstance(g.limits, gen.Limits)  # the generated dataclass
        assert g.limits == gen.Limits(max_pkts=100, port=80, flags=3, strict=False, budget=1000)
        assert g.mode is gen.Mode.MODE_TRACE
        g.counter = 40
        obj.programs["step"].test_run()
        assert g.seen_counter == 40
        assert g.counter == 46
        lim = g.limits
        lim.port = 8080
        g.limits = lim
        assert obj.globals.limits.port == 8080  # the same memory as obj.globals
        with pytest.raises(tm.MapPermissionError):
            g.ro_rate = 1
        with pytest.raises(tm.CodecError):
            g.counter = -5


def test_a_mismatched_object_is_refused(bpf: None, gen: types.ModuleType) -> None:
    with (
        tm.BpfObject.open(bpf_object("tracecount")) as other,
        pytest.raises(tm.ObjectError, match="does not match"),
    ):
        gen.open_globals_of(other)


def test_mypy_accepts_correct_use_and_rejects_mistakes(tmp_path: Path) -> None:
    path, _ = _module(tmp_path)
    sys.modules.pop("globals_types", None)
    user = tmp_path / "use_globals.py"
    user.write_text(
        textwrap.dedent(
            """
            import typedmaps as tm

            from globals_types import Limits, globals_of, open_globals_of

            obj = tm.BpfObject.open("build/bpf/globals.bpf.o")
            cfg = open_globals_of(obj)
            cfg.ro_rate = 4
            cfg.LINUX_KERNEL_VERSION = 1  # E: misc
            obj.load()
            g = globals_of(obj)
            n: int = g.counter
            g.counter = n + 1
            lim: Limits = g.limits
            g.limits = lim
            g.ro_rate = 3  # E: misc
            g.counter = "seven"  # E: assignment
            g.limits = 5  # E: assignment
            g.no_such_variable = 1  # E: attr-defined
            obj.close()
            """
        )
    )
    expected = {
        (n, m.group(1))
        for n, text in enumerate(user.read_text().splitlines(), start=1)
        if (m := re.search(r"# E: ([a-z-]+)$", text))
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--no-pretty",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user),
            str(path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    found = set()
    for line in proc.stdout.splitlines():
        m = _ERROR.match(line)
        if m and "use_globals.py" in line:
            found.add((int(m.group("line")), m.group("code")))
        elif "error:" in line:
            pytest.fail(f"unexpected mypy output: {line}")
    assert found == expected, proc.stdout
    assert ROOT.is_dir()


def test_storage_maps_get_the_storage_wrappers(bpf: None, tmp_path: Path) -> None:
    path = tmp_path / "storage_types.py"
    path.write_text(generate_module(bpf_object("storage")))
    src = path.read_text()
    assert "def open_per_task(handle: MapHandle) -> TypedTaskStorage[TaskStat]:" in src
    assert "-> TypedSkStorage[SockStat]:" in src
    assert "-> TypedCgroupStorage[TaskStat]:" in src
    with imported(path, "storage_types") as mod, tm.BpfObject.open(bpf_object("storage")) as obj:
        obj.load()
        st = mod.open_per_task(obj.maps["per_task"])
        assert isinstance(st, tm.TypedTaskStorage)
        me = os.getpid()
        st[me] = mod.TaskStat(calls=3, tgid=me, flags=0)
        assert st[me] == mod.TaskStat(calls=3, tgid=me, flags=0)
        del st[me]


def test_ruff_is_clean_on_the_module(tmp_path: Path) -> None:
    path, _ = _module(tmp_path)
    sys.modules.pop("globals_types", None)
    rules = "E,F,W,I,B,UP,SIM,RUF,PL"  # as tests/test_codegen.py checks the map modules
    for cmd in (
        ["check", "--isolated", "--select", rules, "--line-length", "100", path.name],
        ["format", "--isolated", "--check", path.name],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
