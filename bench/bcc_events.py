"""BCC's ring buffer consumer on bench/events.py's ring: the side-by-side comparison.

Run by bench/events.py under /usr/bin/python3 (Debian's python3-bpfcc):
``bcc_events.py --fd F [--clock cpu|wall]`` with the RINGBUF map's fd passed
down. BCC normally reaches a ring through a compiled module
(``BPF(text=...)["events"]``), which needs kernel headers this machine lacks;
here a small host object carries the two BPF methods the ring buffer uses
(``_open_ring_buffer`` and ``ring_buffer_consume``, BCC's own functions,
unmodified) and a ``RingBuf`` table gets the attributes its constructor would
have read from the module. The callback is what BCC's tutorials write:
``b["events"].event(data)`` (a ctypes view of the record) and its fields.

Protocol: prints one JSON line {"bcc_version": ...} when ready; then for each
"consume" line on stdin, drains the ring once and prints
{"records": n, "ns": total}. Imports only the standard library and BCC.
"""

from __future__ import annotations

import argparse
import ctypes as ct
import importlib
import json
import sys
import time
from typing import Any

BCC_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
CLOCKS = {"cpu": time.thread_time_ns, "wall": time.perf_counter_ns}


class Event(ct.Structure):
    """struct event as BCC users declare it."""

    _fields_ = (
        ("seq", ct.c_uint64),
        ("ts_ns", ct.c_uint64),
        ("tgid", ct.c_uint32),
        ("cpu", ct.c_uint32),
        ("kind", ct.c_uint32),
        ("value", ct.c_uint32),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = p.parse_args(argv)
    if BCC_DIST_PACKAGES not in sys.path:
        sys.path.append(BCC_DIST_PACKAGES)
    bcc = importlib.import_module("bcc")
    table = importlib.import_module("bcc.table")

    class Host:
        """Stands in for bcc.BPF: only what its ring buffer methods touch."""

        _ringbuf_manager = None
        _open_ring_buffer = bcc.BPF._open_ring_buffer
        ring_buffer_consume = bcc.BPF.ring_buffer_consume

    host = Host()
    ring: Any = table.RingBuf.__new__(table.RingBuf)
    ring.bpf = host
    ring.map_fd = args.fd
    ring.map_id = -1
    ring._cbs = {}
    ring._ringbuf = None
    ring._event_class = Event  # what RingBuf.event() would derive from the module
    got: list[tuple[int, ...]] = []

    def on_event(_ctx: Any, data: Any, _size: int) -> None:
        e = ring.event(data)
        got.append((e.seq, e.ts_ns, e.tgid, e.cpu, e.kind, e.value))

    ring.open_ring_buffer(on_event)
    clock = CLOCKS[args.clock]
    print(json.dumps({"bcc_version": importlib.import_module("bcc.version").__version__}))
    sys.stdout.flush()
    for line in sys.stdin:
        if line.strip() != "consume":
            continue
        got.clear()
        t0 = clock()
        host.ring_buffer_consume()
        dt = clock() - t0
        print(json.dumps({"records": len(got), "ns": dt}))
        sys.stdout.flush()
    importlib.import_module("bcc.libbcc").lib.bpf_free_ringbuf(host._ringbuf_manager)
    return 0


if __name__ == "__main__":
    sys.exit(main())
