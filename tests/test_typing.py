"""mypy over tests/typing: the positive cases type-check, the mistakes are rejected.

Every line in tests/typing marked ``# E: <code>`` must get exactly that mypy
error code, and no other line may get any error. The cases are never run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "typing"

_MARK = re.compile(r"#\s*E:\s*([a-z][a-z0-9-]*)\s*$")
_ERROR = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<msg>.*?)\s+\[(?P<code>[a-z0-9-]+)\]$"
)

Finding = tuple[str, int, str]


def _expected() -> set[Finding]:
    found: set[Finding] = set()
    for path in sorted(CASES.glob("*.py")):
        for n, text in enumerate(path.read_text().splitlines(), start=1):
            m = _MARK.search(text)
            if m:
                found.add((path.name, n, m.group(1)))
    return found


def _run_mypy(cache_dir: Path) -> tuple[set[Finding], list[str], int]:
    files = [str(p.relative_to(ROOT)) for p in sorted(CASES.glob("*.py"))]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache_dir),
            "--no-error-summary",
            "--no-pretty",
            "--no-color-output",
            "--show-error-codes",
            "--hide-error-context",
            *files,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    got: set[Finding] = set()
    other: list[str] = []
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        m = _ERROR.match(line)
        if m:
            got.add((Path(m.group("file")).name, int(m.group("line")), m.group("code")))
        elif ": note: " not in line and line.strip():
            other.append(line)
    return got, other, proc.returncode


def test_the_cases_exist() -> None:
    expected = _expected()
    assert {name for name, _, _ in expected} == {"typed_fail.py"}
    codes = {code for _, _, code in expected}
    assert {"index", "assignment", "arg-type"} <= codes
    assert (CASES / "typed_pass.py").read_text().count("assert_type(") >= 40


def test_mypy_reports_exactly_the_marked_errors(tmp_path: Path) -> None:
    got, other, rc = _run_mypy(tmp_path / "mypy-cache")
    assert not other, "unexpected mypy output:\n" + "\n".join(other)
    expected = _expected()
    missing = sorted(expected - got)
    unexpected = sorted(got - expected)
    assert not missing, f"mypy accepted lines it must reject: {missing}"
    assert not unexpected, f"mypy reported errors nobody expected: {unexpected}"
    assert rc == 1  # errors were found (the negative cases), and only those
