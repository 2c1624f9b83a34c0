"""A seeded mutation fuzzer over every object in build/bpf: no crash, no hang, named errors only.

Each case (see tests/fuzz_objects.py) is a real object with one mutation
(byte flips, truncation, ELF header, section header, symbol, relocation,
.BTF header or type record, .BTF.ext), or its raw .BTF mutated alone. A
driver process per batch forks one child per case, which opens the input
with BpfObject.open, Btf.from_file / Btf.parse / Btf.from_bytes, then
generates a module, formats and encodes every small type (the compiled
JSON writer `typedmaps dump` uses must write exactly what format_type
formats, or refuse the type by name). A case passes
when the child ends by itself within the time limit, having succeeded or
raised an error of the typedmaps tree. Any signal, hang or other
exception fails the test and names the case (source and mutation).

TYPEDMAPS_FUZZ_CASES and TYPEDMAPS_FUZZ_SEED change the count (default
400) and the seed, e.g. for a long run: ``TYPEDMAPS_FUZZ_CASES=20000``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BPF_BUILD, bpf_object
from .fuzz_objects import DRIVER, Case, cases

COUNT = int(os.environ.get("TYPEDMAPS_FUZZ_CASES", "400"))
SEED = int(os.environ.get("TYPEDMAPS_FUZZ_SEED", "90210"))
BATCHES = 4
#: Seconds one case may take before it counts as a hang (the machine is shared).
CASE_TIMEOUT = 20.0


def _all_cases() -> list[Case]:
    bpf_object("flows")  # built by `make bpf`
    return cases(sorted(BPF_BUILD.glob("*.bpf.o")), COUNT, SEED)


@pytest.mark.parametrize("batch", range(BATCHES))
def test_mutated_objects_never_crash_or_hang(tmp_path: Path, batch: int) -> None:
    mine = _all_cases()[batch::BATCHES]
    for i, case in enumerate(mine):
        (tmp_path / f"{i:05d}.bin").write_bytes(case.data)
        (tmp_path / f"{i:05d}.kind").write_text(case.kind)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path), str(CASE_TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=CASE_TIMEOUT * len(mine) + 120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(mine), proc.stderr[-3000:]
    bad = []
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        if r["outcome"] not in ("ok", "named"):
            case = mine[int(r["case"])]
            bad.append(f"{case.source}: {case.mutation}: {r['outcome']}\n{r['detail']}")
    assert not bad, f"{len(bad)} of {len(mine)} cases failed:\n" + "\n\n".join(bad[:10])
    # the mutations do what they are for: many are refused, some still work
    assert outcomes.get("named", 0) >= len(mine) // 4, outcomes
    assert outcomes.get("ok", 0) >= 1, outcomes
