"""The cffi binding: lazy thread-safe dlopen, the libbpf log bridge, missing symbols,
the error checkpoint, and LibbpfNotFoundError (in fresh interpreters)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import typedmaps as tm
from typedmaps import _ffi

GARBAGE_ELF = b"\x7fELF" + b"not really an object" * 4


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (libbpf not yet opened there)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_libbpf_warnings_reach_the_python_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="typedmaps.libbpf")
    lib = _ffi.get_lib()
    obj = lib.bpf_object__open_mem(GARBAGE_ELF, len(GARBAGE_ELF), _ffi.NULL)
    assert obj == _ffi.NULL  # nothing to close
    err = _ffi.last_errno_error("open object")
    records = [r for r in caplog.records if r.name == "typedmaps.libbpf"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert any("is not a proper ELF object" in r.getMessage() for r in warnings), records
    # libbpf's DEBUG lines arrive as DEBUG, already formatted (no %s left).
    assert any(r.levelno == logging.DEBUG and "loading object" in r.getMessage() for r in records)
    assert all("%" not in r.getMessage() for r in records)
    assert all(not r.getMessage().endswith("\n") for r in records)
    # libbpf's own errno (LIBBPF_ERRNO__FORMAT, 4001) gets libbpf's text.
    assert err.errno == 4001
    assert "open object: " in str(err)
    assert "Unknown error" not in str(err)


def test_libbpf_log_lines_are_skipped_when_the_level_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="typedmaps.libbpf")
    lib = _ffi.get_lib()
    assert lib.bpf_object__open_mem(GARBAGE_ELF, len(GARBAGE_ELF), _ffi.NULL) == _ffi.NULL
    assert [r for r in caplog.records if r.name == "typedmaps.libbpf"] == []


def test_a_missing_symbol_is_not_supported() -> None:
    with pytest.raises(tm.NotSupportedError, match="frobnicate") as info:
        _ffi.func("no_such_function", "frobnicate")
    assert info.value.errno == 95  # EOPNOTSUPP
    assert info.value.operation == "frobnicate"
    assert "no_such_function()" in str(info.value)
    assert "newer libbpf" in str(info.value)
    assert not _ffi.lib_has("no_such_function")
    assert _ffi.lib_has("bpf_map_create")
    assert _ffi.func("bpf_map_create", "create") is not None


def test_check_is_the_one_error_checkpoint() -> None:
    assert _ffi.check(0, "op") == 0
    assert _ffi.check(7, "op") == 7
    with pytest.raises(tm.KeyNotFoundError, match="lookup: key not found"):
        _ffi.check(-2, "lookup")
    # A path that does not exist is a FileNotFoundError, never a KeyError.
    with pytest.raises(FileNotFoundError, match="pin /x: No such file or directory") as missing:
        _ffi.check(-2, "pin /x", path=True)
    assert isinstance(missing.value, tm.MapError)
    assert not isinstance(missing.value, KeyError)
    with pytest.raises(tm.NotSupportedError):
        _ffi.check(-22, "freeze", einval_unsupported=True)
    with pytest.raises(tm.MapError) as info:
        _ffi.check(-22, "create")
    assert type(info.value) is tm.MapError
    assert _ffi.check_ptr(_ffi.ffi.new("int *"), "op") is not None


def test_num_possible_cpus_is_cached_and_positive() -> None:
    n = _ffi.num_possible_cpus()
    assert n >= 1
    assert _ffi.num_possible_cpus() is n
    assert tm.num_possible_cpus() == n


def test_dlopen_happens_once_under_concurrency() -> None:
    result = run_python(
        """
        import threading
        from typedmaps import _ffi
        assert _ffi._lib is None, "opened at import"
        real = _ffi.ffi.dlopen
        calls = []
        def counting(name, *a):
            calls.append(name)
            return real(name, *a)
        _ffi.ffi.dlopen = counting
        barrier = threading.Barrier(16)
        libs = []
        def worker():
            barrier.wait()
            libs.append(_ffi.get_lib())
        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert len(libs) == 16 and all(x is libs[0] for x in libs)
        assert calls.count(_ffi.LIBBPF_SONAME) == 1, calls
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_libbpf_says_what_to_install() -> None:
    result = run_python(
        """
        import typedmaps as tm            # importing needs no libbpf
        from typedmaps import _ffi
        _ffi.LIBBPF_SONAME = "libbpf.so.999"
        for attempt in range(2):          # a second use fails the same way
            try:
                tm.MapHandle.create(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
            except tm.LibbpfNotFoundError as exc:
                assert isinstance(exc, ImportError)
                assert isinstance(exc, tm.TypedMapsError)
                print(exc)
            else:
                raise SystemExit("no error")
        try:
            tm.num_possible_cpus()
        except tm.LibbpfNotFoundError:
            print("cpus: not found")
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    message = lines[0]
    assert lines[1] == message
    assert "cannot load libbpf.so.999" in message
    assert "apt-get install libbpf1" in message
    assert "the system has libbpf.so.1, another ABI version" in message
    assert lines[2] == "cpus: not found"


def test_looking_for_libbpf_runs_no_program(tmp_path: Path) -> None:
    """When libbpf.so.1 is missing, the hint is found by reading directories, never by
    running ldconfig, gcc, cc or ld from PATH (ctypes.util.find_library would)."""
    trap = tmp_path / "bin"
    trap.mkdir()
    marker = tmp_path / "ran"
    for name in ("ldconfig", "gcc", "cc", "ld", "objdump", "x86_64-linux-gnu-gcc", "clang"):
        exe = trap / name
        exe.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 1\n")
        exe.chmod(0o755)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                spawned = []
                def hook(event, args):
                    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system"):
                        spawned.append((event, repr(args)[:200]))
                sys.addaudithook(hook)
                import typedmaps as tm
                from typedmaps import _ffi
                _ffi.LIBBPF_SONAME = "libbpf.so.999"
                try:
                    _ffi.get_lib()
                except tm.LibbpfNotFoundError as exc:
                    print(exc)
                print("spawned:", spawned)
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": str(trap)},
    )
    assert result.returncode == 0, result.stderr
    assert "cannot load libbpf.so.999" in result.stdout
    assert "the system has libbpf.so.1, another ABI version" in result.stdout
    assert "spawned: []" in result.stdout, result.stdout
    assert not marker.exists(), f"programs ran: {marker.read_text()}"
