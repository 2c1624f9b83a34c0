"""Every struct in _cdefs.h has the size and field offsets of the C headers it copies.

cffi's ABI mode lays structs out from our declarations alone; a field out of
place would make libbpf read the wrong bytes (an opts struct's ``sz``, a
flag in the wrong word). A small C program built against the system's
libbpf and kernel headers prints the real layout; the test compares.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from typedmaps._ffi import ffi

from .conftest import ROOT, need

CDEFS = ROOT / "src" / "typedmaps" / "_cdefs.h"
#: Our names for fields that C spells differently (bitfield words, raw unions).
RENAMED = {
    ("btf_type", "size_or_type"): "size",
    ("perf_event_attr", "sample_period_or_freq"): "sample_period",
    ("bpf_link_info", "extra"): "raw_tracepoint",
}
#: Fields C declares as bitfields (offsetof() does not apply): covered by sizeof.
BITFIELDS = {("perf_event_attr", "flags"), ("bpf_prog_info", "gpl_compatible")}


def _layouts() -> dict[str, tuple[int, dict[str, int]]]:
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for name in re.findall(r"^struct (\w+) \{", CDEFS.read_text(), re.M):
        t = ffi.typeof(f"struct {name}")
        fields = {
            RENAMED.get((name, f), f): ffi.offsetof(f"struct {name}", f)
            for f, _ in t.fields
            if not f.startswith("_") and (name, f) not in BITFIELDS
        }
        out[name] = (ffi.sizeof(t), fields)
    return out


def test_cdefs_structs_match_the_c_headers(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("clang")
    need(cc is not None, "no C compiler to read the headers' layouts")
    assert cc is not None
    layouts = _layouts()
    assert {"bpf_tc_opts", "bpf_link_create_opts", "perf_event_attr"} <= set(layouts)
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <bpf/bpf.h>",
        "#include <bpf/btf.h>",
        "#include <bpf/libbpf.h>",
        "#include <linux/perf_event.h>",
        "int main(void) {",
    ]
    for name, (_, fields) in layouts.items():
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        for f in fields:
            lines.append(f'printf("{name}.{f} %zu\\n", offsetof(struct {name}, {f}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-w", "-o", str(exe), str(src)], check=True, capture_output=True)
    real = dict(
        line.split()
        for line in subprocess.run(
            [str(exe)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    ours: dict[str, str] = {}
    for name, (size, fields) in layouts.items():
        ours[name] = str(size)
        ours.update({f"{name}.{f}": str(off) for f, off in fields.items()})
    assert ours == real
