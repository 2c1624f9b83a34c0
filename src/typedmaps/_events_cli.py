"""``typedmaps events``: a ring buffer or perf buffer as a stream of decoded records.

    typedmaps events MAP --btf OBJ.bpf.o --type NAME [--json] [--count N] [--timeout S]

Like ``bpftool map event_pipe``, but typed: each record is decoded with the
BTF type NAME of the object file (the kernel keeps no record type for these
maps) and printed on a line of its own, in bpftool's ``formatted`` JSON
(``--json``: JSON Lines) or as the one-line text ``dump`` prints. A record
whose size does not fit the type is reported on stderr and the stream goes
on (N counts the records printed). A struct ending in a flexible array
(``__u8 data[];``) takes any record at least as long as the members before
it, the rest shown as that array. Stops after N records (the rest stay
in the ring), after S seconds, or on Ctrl-C (exit 130).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any, TextIO

from .btf import Btf, BtfMember, flexible_member, named_schema, named_type
from .btf.format import JObj, dumps, format_type, render
from .errors import NotSupportedError
from .events import EventStream, PerfBuffer, RingBuffer
from .flags import MapType
from .handle import MapHandle

__all__ = ["add_parser", "cmd_events"]


def add_parser(sub: Any, command: Callable[..., Any], mapdoc: str, map_forms: str) -> None:
    """Add the ``events`` subcommand to the CLI's subparsers (``command`` makes it)."""
    ep = command(
        sub,
        "events",
        summary="stream a ring buffer or perf buffer, one decoded record a line "
        "(text, or JSON Lines with --json)",
        description="Stream the records of a BPF ring buffer (RINGBUF) or perf buffer "
        "(PERF_EVENT_ARRAY) as they come, one line each, decoded with the C type NAME "
        "from the object file's BTF (the kernel keeps no record type for these maps): "
        "bpftool's formatted JSON with --json, else one line of text as dump prints. "
        "A record whose size does not fit the type is reported on stderr and skipped. "
        "Stops after --count records, after --timeout seconds, or on Ctrl-C (exit 130). "
        "MAP opens read-write: the stream moves the ring's consumer position. " + map_forms,
        examples=[
            "typedmaps events name:events --btf build/bpf/ringbuf.bpf.o --type event --json",
            "typedmaps events /sys/fs/bpf/samples --btf prog.bpf.o --type 'struct sample' "
            "--count 100",
            "typedmaps events id:42 --btf prog.bpf.o --type event --json --timeout 10 | jq .seq",
        ],
    )
    ep.add_argument("map", metavar="MAP", help=mapdoc + " (a RINGBUF or PERF_EVENT_ARRAY)")
    ep.add_argument("--btf", metavar="OBJ", required=True, help="object file with the record type")
    ep.add_argument("--type", metavar="NAME", required=True, help="the record's C type, e.g. event")
    ep.add_argument("--json", action="store_true", help="one JSON object per line")
    ep.add_argument("--count", type=_positive_int, metavar="N", help="stop after N records")
    ep.add_argument("--timeout", type=_seconds, metavar="S", help="stop after S seconds")
    ep.add_argument(
        "--pages", type=_positive_int, default=64, help="perf buffer pages per CPU (power of two)"
    )


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= s < float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return s


def cmd_events(
    args: argparse.Namespace, out: TextIO, err: TextIO, open_map: Callable[..., MapHandle]
) -> int:
    """Run ``typedmaps events``; returns the exit status."""
    btf = Btf.from_file(args.btf)
    t = named_type(btf, args.type)
    named_schema(btf, args.type)  # the checks the typed layer makes: encodable, sized
    tail = flexible_member(btf, btf.resolve(t.id))
    # A struct ending in a flexible array (`__u8 data[];`) takes any record
    # at least as long as its head, and shows the rest as that array.
    size = btf.size_of(t.id, "type") if tail is None else tail.bit_offset // 8
    handle = open_map(args.map, readonly=False)
    mt = handle.map_type
    stream: EventStream[bytes]
    if mt is MapType.RINGBUF:
        stream = RingBuffer(handle)
        want = size
    elif mt is MapType.PERF_EVENT_ARRAY:
        stream = PerfBuffer(handle, pages=args.pages)
        # the kernel pads each sample to 8 bytes; in a variable record the
        # padding cannot be told from the tail, which then keeps it
        want = size if tail is not None else ((size + 4 + 7) & ~7) - 4
    else:
        handle.close()
        raise NotSupportedError(
            95, "events", f"{handle.name!r} is a {mt.name} map, not a RINGBUF or PERF_EVENT_ARRAY"
        )
    show: Callable[[Any], str] = dumps if args.json else render
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    shown = received = 0
    with stream:
        while args.count is None or shown < args.count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            left = None if args.count is None else args.count - shown
            for raw in stream.poll(wait, max_records=left):
                received += 1
                value = _decode(btf, t.id, tail, raw, want)
                if value is None:
                    err.write(
                        f"typedmaps events: record {received}: {len(raw)} bytes, "
                        f"{btf.describe(t.id)} takes {want}{'' if tail is None else ' or more'}"
                        ": skipped\n"
                    )
                    continue
                out.write(show(value) + "\n")
                shown += 1
                if shown == args.count:
                    break
            out.flush()
    return 0


def _decode(btf: Btf, tid: int, tail: BtfMember | None, raw: bytes, want: int) -> Any:
    """The formatted record, or None when ``raw`` does not fit the type."""
    if tail is None:
        return format_type(btf, tid, raw[:want]) if len(raw) == want else None
    elem = btf.resolve(tail.type_id).elem
    esz = btf.size_of(elem, "type")
    rest = len(raw) - want
    if rest < 0 or not esz or rest % esz:
        return None
    head = format_type(btf, tid, raw[:want])
    items = [format_type(btf, elem, raw[i : i + esz]) for i in range(want, len(raw), esz)]
    return JObj([*list(head)[:-1], (tail.name, items)])
