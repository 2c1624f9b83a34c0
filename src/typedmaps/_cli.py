"""The ``typedmaps`` command: list, show and dump kernel maps, generate typed modules.

    typedmaps list [--json]
    typedmaps show MAP [--json]
    typedmaps dump MAP [--json] [--pretty] [--progress]
    typedmaps gen OBJ.bpf.o [-o module.py]
    typedmaps export --prometheus ADDR MAP [MAP ...]
    typedmaps events MAP --btf OBJ.bpf.o --type NAME [--json] [--count N] [--timeout S]

Every subcommand has a description and examples in its ``--help``
(:func:`command` makes one; tests/test_cli_help.py checks every registered
subcommand has both). Errors, usage errors included, are one line on stderr.

MAP is a bpffs pin path, ``id:N`` or ``name:NAME``. See docs/cli.md for the
output formats, where they differ from bpftool's, and the exit codes.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TextIO

from ._elf import FORMAT_ERRNO
from .btf import Btf, BtfError, Kind
from .btf.format import JObj, dumps
from .errors import (
    ArgumentError,
    CodecError,
    KeyNotFoundError,
    MapPermissionError,
    NotSupportedError,
    ObjectError,
    PathNotFoundError,
    TypedMapsError,
)
from .flags import MapType
from .handle import MapHandle, MapInfo

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_PERMISSION: Final = 4
EXIT_UNSUPPORTED: Final = 5
EXIT_INTERRUPTED: Final = 130
#: A bug in typedmaps (EX_SOFTWARE): an error that is none of the above.
EXIT_INTERNAL: Final = 70

#: Above this many possible entries, ``dump`` reports progress on a tty stderr.
PROGRESS_THRESHOLD: Final = 10_000


class UsageError(TypedMapsError):
    """A bad command line: an unknown MAP form, an ambiguous name, ..."""


# ---------------------------------------------------------------------------- maps


def _map_ids() -> Iterator[int]:
    """Every map id in the kernel, ascending (BPF_MAP_GET_NEXT_ID)."""
    from ._ffi import map_ids

    return map_ids()


@dataclass(frozen=True)
class MapRow:
    """One map of ``typedmaps list``: its info plus fdinfo's memlock and frozen."""

    info: MapInfo
    memlock: int | None
    frozen: bool | None


def _fdinfo(fd: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                name, _, val = line.partition(":")
                out[name.strip()] = val.strip()
    except OSError:
        pass
    return out


def _row(h: MapHandle) -> MapRow:
    fdi = _fdinfo(h.fileno())
    memlock = fdi.get("memlock")
    frozen = fdi.get("frozen")
    return MapRow(
        h.info(),
        int(memlock) if memlock and memlock.isdigit() else None,
        bool(int(frozen)) if frozen and frozen.isdigit() else None,
    )


def iter_maps() -> Iterator[MapRow]:
    """Every map in the kernel with its info; maps that vanish meanwhile are skipped."""
    for map_id in _map_ids():
        try:
            h = MapHandle.from_map_id(map_id)
        except KeyNotFoundError:
            continue
        with h:
            yield _row(h)


def open_map(spec: str, *, readonly: bool = True) -> MapHandle:
    """Open the map named by a MAP argument: a pin path, ``id:N`` or ``name:NAME``.

    Pins open read-only unless ``readonly=False`` (``events`` moves a ring's
    consumer position, which a read-only fd cannot).

    Raises:
        UsageError: a malformed id, or a name that several maps have (the
            message lists their ids).
        KeyNotFoundError: no such map, id or pin.
    """
    if spec.startswith("id:"):
        text = spec[3:]
        if not text.isdigit() or not 0 < int(text) <= 0xFFFFFFFF:
            raise UsageError(f"MAP {spec!r}: id:N needs a positive map id")
        return MapHandle.from_map_id(int(text))
    if spec.startswith("name:"):
        name = spec[5:]
        if not name:
            raise UsageError("MAP 'name:': a name is needed")
        ids = [r.info.id for r in iter_maps() if r.info.name in (name, name[:15])]
        if not ids:
            raise KeyNotFoundError(2, f"find map {name!r}", "no map has this name")
        if len(ids) > 1:
            shown = ", ".join(f"id:{i}" for i in ids)
            raise UsageError(
                f"MAP {spec!r} is ambiguous: {len(ids)} maps are named {name!r} ({shown}); "
                "pick one with id:N"
            )
        return MapHandle.from_map_id(ids[0])
    explicit = spec.startswith("pinned:")
    if explicit:
        spec = spec[7:]
    if not spec:
        raise UsageError("MAP is empty: give a pin path, id:N or name:NAME")
    if not explicit and "/" not in spec and not os.path.lexists(spec):
        # A bare word is a relative path that does not exist: most likely the
        # user meant a map's name (or id).
        hint = f"id:{spec}" if spec.isdigit() else f"name:{spec}"
        raise PathNotFoundError(
            2,
            f"open pinned {spec}",
            f"no such file or directory; for the map named {spec!r} use {hint}"
            if not spec.isdigit()
            else f"no such file or directory; for the map with id {spec} use {hint}",
        )
    return MapHandle.from_pinned_path(spec, readonly=readonly)


def _map_type_name(mt: MapType) -> str:
    return mt.name.lower()


def _list_json(r: MapRow) -> JObj:
    i = r.info
    obj = JObj(
        [
            ("id", i.id),
            ("type", _map_type_name(i.map_type)),
            ("name", i.name),
            ("flags", int(i.map_flags)),
            ("bytes_key", i.key_size),
            ("bytes_value", i.value_size),
            ("max_entries", i.max_entries),
        ]
    )
    if r.memlock is not None:
        obj.append(("bytes_memlock", r.memlock))
    if r.frozen is not None:
        obj.append(("frozen", int(r.frozen)))
    if i.btf_id:
        obj.append(("btf_id", i.btf_id))
    return obj


def _list_text(r: MapRow) -> str:
    i = r.info
    name = i.name or "(none)"
    parts = [
        f"{i.id}: {_map_type_name(i.map_type)}  name {name}  flags 0x{int(i.map_flags):x}",
        f"\tkey {i.key_size}B  value {i.value_size}B  max_entries {i.max_entries}",
    ]
    if r.memlock is not None:
        parts[1] += f"  memlock {r.memlock}B"
    extra = []
    if i.btf_id:
        extra.append(f"btf_id {i.btf_id}")
    if r.frozen:
        extra.append("frozen")
    if extra:
        parts.append("\t" + "  ".join(extra))
    return "\n".join(parts)


# ---------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    rows = list(iter_maps())
    if args.json:
        out.write(dumps([_list_json(r) for r in rows], pretty=args.pretty) + "\n")
    else:
        for r in rows:
            out.write(_list_text(r) + "\n")
    return EXIT_OK


def _load_btf(info: MapInfo) -> Btf | None:
    if not info.btf_id or not info.btf_value_type_id:
        return None
    return Btf.from_kernel(info.btf_id)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    with open_map(args.map) as h:
        row = _row(h)
        btf = _load_btf(row.info)
        if args.json:
            obj = _list_json(row)
            if btf is not None:
                if row.info.btf_key_type_id:
                    obj.append(("key_type", btf.describe(row.info.btf_key_type_id)))
                obj.append(("value_type", btf.describe(row.info.btf_value_type_id)))
            out.write(dumps(obj, pretty=args.pretty) + "\n")
            return EXIT_OK
        out.write(_list_text(row) + "\n")
        if btf is not None:
            for what, tid in (
                ("key", row.info.btf_key_type_id),
                ("value", row.info.btf_value_type_id),
            ):
                if tid:
                    out.write(f"{what}: {btf.describe(tid)} ({btf.size_of(tid)} bytes)\n")
                    for line in layout(btf, tid):
                        out.write("    " + line + "\n")
    return EXIT_OK


def layout(btf: Btf, type_id: int) -> list[str]:
    """Member lines (offset, size or bits, name, C type) of a struct or union, else []."""
    t = btf.resolve(type_id)
    if t.kind not in (Kind.STRUCT, Kind.UNION):
        return []
    lines = []
    for i, m in enumerate(t.members):
        name = btf.member_name(t.members, i)
        bf = btf.bitfield(m, t.kflag)
        if bf is not None:
            where = f"bit {bf[0]:>5}  :{bf[1]:<4}"
        else:
            off = btf.member_offset(m, t.kflag) // 8
            where = f"@{off:<5} {btf.size_of(m.type_id):>4}B "
        lines.append(f"{where} {name}: {btf.describe(m.type_id)}")
    return lines


def cmd_dump(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._dump import Progress, dump_json, dump_table

    with open_map(args.map) as h:
        info = h.info()
        if info.map_type is MapType.BLOOM_FILTER:
            raise NotSupportedError(
                95, "dump", "a bloom filter cannot be listed: it only answers membership"
            )
        btf = _load_btf(info)
        want = args.progress or (info.max_entries > PROGRESS_THRESHOLD and err.isatty())
        progress = Progress(bool(want), info.max_entries, err)
        if args.json:
            dump_json(h, btf, out, progress, pretty=args.pretty)
        else:
            dump_table(h, btf, out, progress)
        progress.done()
    return EXIT_OK


def _names(text: str | None) -> set[str]:
    return {n.strip() for n in (text or "").split(",") if n.strip()}


def cmd_export(args: argparse.Namespace, err: TextIO) -> int:
    """Serve the maps as Prometheus metrics until SIGINT/SIGTERM (typedmaps.prometheus)."""
    try:
        from prometheus_client import CollectorRegistry

        from . import prometheus as prom
    except ImportError as exc:
        raise NotSupportedError(
            95, "export", f"{exc}; install it with: pip install 'typedmaps[prometheus]'"
        ) from None
    prom.parse_address(args.prometheus)  # a usage error before any map is opened
    counters = _names(args.counters)
    ip, drop = _names(args.ip), _names(args.drop)
    registry = CollectorRegistry()
    handles: list[MapHandle] = []
    try:
        probes = []
        for spec in args.maps:
            h = open_map(spec)
            handles.append(h)
            probes.append(prom.MapCollector(h, args.prefix))
        # Each option names fields and labels of any of the maps; each map takes its own.
        for what, wanted, have in (
            ("--counters", counters - {"all"}, {f for c in probes for f in c.fields}),
            ("--ip", ip, {lb for c in probes for lb in c.labels}),
            ("--drop", drop, {lb for c in probes for lb in c.labels}),
        ):
            if wanted - have:
                raise UsageError(
                    f"{what} names {sorted(wanted - have)}, which no map has "
                    f"(they have: {', '.join(sorted(have)) or 'none'})"
                )
        for h, probe in zip(handles, probes, strict=True):
            formats: dict[str, Any] = {lb: prom.ip_address for lb in ip if lb in probe.labels}
            formats.update({lb: None for lb in drop if lb in probe.labels})
            registry.register(
                prom.MapCollector(
                    h,
                    args.prefix,
                    counters=True if "all" in counters else counters & set(probe.fields),
                    per_cpu=args.per_cpu,
                    labels=formats,
                )
            )

        def ready(url: str) -> None:
            err.write(f"typedmaps export: serving {len(handles)} map(s) at {url}\n")
            err.flush()

        def failed(message: str) -> None:
            err.write(f"typedmaps export: {message}\n")
            err.flush()

        prom.serve(args.prometheus, registry, ready=ready, on_error=failed)
    finally:
        for h in handles:
            h.close()
    return EXIT_OK


def cmd_gen(args: argparse.Namespace, out: TextIO) -> int:
    from .codegen import generate_module

    # all of it, before any output
    text = generate_module(args.object, module_doc=None, types=args.types or ())
    if args.output and args.output != "-":
        write_output(args.output, text)
    else:
        out.write(text)
    return EXIT_OK


def write_output(path: str, text: str) -> None:
    """Write ``text`` to ``path`` without ever blocking in open().

    O_NONBLOCK makes opening a FIFO that no one reads fail (ENXIO) instead of
    waiting for a reader; the flag is then cleared, so that a real reader
    (``-o /dev/stdout`` into a pipe) is written to normally.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags, 0o666)
    try:
        os.set_blocking(fd, True)
        data = text.encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- main


def version_text() -> str:
    """What ``typedmaps --version`` prints: this package's and the loaded libbpf's versions."""
    from . import _ffi
    from ._version import __version__

    try:
        libbpf = f"libbpf {_ffi.libbpf_version()}"
    except TypedMapsError:  # LibbpfNotFoundError: say so instead of failing
        libbpf = "libbpf not found"
    python = ".".join(map(str, sys.version_info[:3]))
    return f"typedmaps {__version__} ({libbpf}, Python {python})"


class _VersionAction(argparse.Action):
    """``--version``: computed when asked for, so other commands never load libbpf for it."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help=kw.get("help"))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (the exit code stays 2).

    argparse prints the usage, then the error; a script or a log then sees
    two or more lines for one error. Here it is ``typedmaps dump: the
    following arguments are required: MAP (see typedmaps dump --help)``.
    """

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: {text} (see {self.prog} --help)\n")


def command(
    sub: Any, name: str, *, summary: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """Add a subcommand with its one-line summary, a description and examples.

    Args:
        sub: the parser's ``add_subparsers()`` action.
        name: the subcommand.
        summary: the line ``typedmaps --help`` shows for it.
        description: what it does, a paragraph (shown first by ``--help``).
        examples: command lines, each with a ``#`` comment if useful; each
            must start with ``typedmaps NAME``.
    """
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 79),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


_MAP_FORMS = (
    "MAP is a bpffs pin path (opened read-only), id:N (a map id, as `typedmaps list` "
    "shows) or name:NAME (the map's name; an error lists the ids when several maps "
    "share it)."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = Parser(
        prog="typedmaps",
        description=textwrap.fill(
            "Inspect BPF maps with their BTF types, generate typed Python modules, "
            "and export maps as Prometheus metrics.",
            79,
        ),
        epilog="examples:\n"
        "  typedmaps list\n"
        "  typedmaps dump name:flows --json\n"
        "  typedmaps COMMAND --help     # what a command does, its options and examples\n\n"
        "exit codes: 0 ok, 1 kernel or libbpf error, 2 usage, 3 not found,\n"
        "  4 permission denied, 5 not supported or malformed input,\n"
        "  70 internal error (a bug in typedmaps), 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version", action=_VersionAction, help="print the typedmaps and libbpf versions"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mapdoc = "a bpffs pin path, id:N or name:NAME"

    lp = command(
        sub,
        "list",
        summary="every map in the kernel (like bpftool map list)",
        description="List every BPF map in the kernel with its id, type, name, flags, key and "
        "value sizes, max_entries, memlock and BTF id, in ascending id order. Needs "
        "CAP_SYS_ADMIN (the kernel's BPF_MAP_GET_NEXT_ID).",
        examples=[
            "typedmaps list",
            "typedmaps list --json --pretty     # bpftool's field names",
        ],
    )
    lp.add_argument("--json", action="store_true", help="JSON output")
    lp.add_argument("--pretty", action="store_true", help="indented JSON")

    sp = command(
        sub,
        "show",
        summary="one map's info and key/value layout",
        description="Show one map's info and, from its BTF, the C types of its key and value "
        "with every member's offset, size and bitfield position. " + _MAP_FORMS,
        examples=[
            "typedmaps show /sys/fs/bpf/flows",
            "typedmaps show id:42 --json",
        ],
    )
    sp.add_argument("map", metavar="MAP", help=mapdoc)
    sp.add_argument("--json", action="store_true", help="JSON output")
    sp.add_argument("--pretty", action="store_true", help="indented JSON")

    dp = command(
        sub,
        "dump",
        summary="every entry, decoded with the map's BTF",
        description="Print every entry of a map, decoded with the map's BTF: a table, or with "
        "--json the JSON of bpftool's 'formatted' view (maps without BTF: raw hex bytes, "
        "as bpftool). QUEUE and STACK show their head element. " + _MAP_FORMS,
        examples=[
            "typedmaps dump name:flows",
            "typedmaps dump /sys/fs/bpf/flows --json --pretty",
            "typedmaps dump id:42 --json | jq '.[].value'",
        ],
    )
    dp.add_argument("map", metavar="MAP", help=mapdoc)
    dp.add_argument("--json", action="store_true", help="bpftool-style formatted JSON")
    dp.add_argument("--pretty", action="store_true", help="indented JSON")
    dp.add_argument(
        "--progress",
        action="store_true",
        help=f"report progress on stderr (default: on a tty, above {PROGRESS_THRESHOLD} entries)",
    )

    gp = command(
        sub,
        "gen",
        summary="write a typed Python module for an object's maps",
        description="Write a Python module for a BPF object file built with clang -g: an "
        "IntEnum per enum, a construct-typing dataclass per struct and union, and an "
        "open_<map>(handle) function per map that returns the right typed wrapper. The "
        "module passes mypy --strict. --type NAME (repeatable) adds the class of any "
        "named struct, union or enum: the records of ring buffers and perf buffers, "
        "which the kernel keeps no type for.",
        examples=[
            "typedmaps gen build/bpf/flows.bpf.o -o flows_types.py",
            "typedmaps gen prog.bpf.o           # to stdout",
            "typedmaps gen build/bpf/ringbuf.bpf.o --type event --type var_record",
        ],
    )
    gp.add_argument("object", metavar="OBJ", help="a BPF object file built with -g")
    gp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    gp.add_argument(
        "--type",
        metavar="NAME",
        action="append",
        dest="types",
        help="also write the class of this struct, union or enum (repeatable)",
    )

    ep = command(
        sub,
        "export",
        summary="serve maps as Prometheus metrics, read at each scrape",
        description="Serve maps over HTTP as Prometheus metrics: key fields become labels, "
        "numeric value fields gauges or counters, and each map is read with batch lookups "
        "at every scrape. Runs until SIGINT or SIGTERM, then exits 0. The maps need BTF. "
        "Needs the prometheus extra (pip install 'typedmaps[prometheus]'). " + _MAP_FORMS,
        examples=[
            "typedmaps export --prometheus 127.0.0.1:9435 /sys/fs/bpf/flows",
            "typedmaps export --prometheus :9435 name:proto_stats --per-cpu cpu",
            "typedmaps export --prometheus [::1]:0 id:42 --counters all --ip saddr,daddr",
        ],
    )
    ep.add_argument(
        "--prometheus",
        metavar="ADDR",
        required=True,
        help="listen on HOST:PORT, [IPV6]:PORT or :PORT (port 0: any free port)",
    )
    ep.add_argument("maps", metavar="MAP", nargs="+", help=mapdoc)
    ep.add_argument("--prefix", default="bpf", help="first part of every metric name (bpf)")
    ep.add_argument(
        "--per-cpu",
        choices=("sum", "cpu"),
        default="sum",
        help="per-CPU maps: sum the CPUs (default) or one sample per CPU with a cpu label",
    )
    ep.add_argument(
        "--counters",
        metavar="FIELDS",
        help="value fields to expose as counters, comma-separated, or 'all' (default: gauges)",
    )
    ep.add_argument(
        "--ip", metavar="LABELS", help="key fields to show as IP addresses, comma-separated"
    )
    ep.add_argument("--drop", metavar="LABELS", help="key fields to leave out, comma-separated")
    from ._events_cli import add_parser as add_events

    add_events(sub, command, mapdoc, _MAP_FORMS.replace(" (opened read-only)", ""))
    return p


def exit_code(exc: BaseException) -> int:
    """The exit status for an error (docs/cli.md lists them)."""
    if isinstance(exc, UsageError | ArgumentError):
        return EXIT_USAGE
    if isinstance(exc, NotSupportedError | BtfError):
        return EXIT_UNSUPPORTED
    if isinstance(exc, CodecError):
        return EXIT_USAGE
    if isinstance(exc, ObjectError) and exc.errno == FORMAT_ERRNO:
        return EXIT_UNSUPPORTED  # a malformed object file
    if isinstance(exc, KeyNotFoundError | FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, MapPermissionError | PermissionError):
        return EXIT_PERMISSION
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOENT:
            return EXIT_NOT_FOUND
        if exc.errno in (errno.EPERM, errno.EACCES):
            return EXIT_PERMISSION
    if isinstance(exc, TypedMapsError | OSError):
        return EXIT_ERROR
    return EXIT_INTERNAL


def one_line(text: str) -> str:
    """``text`` as one printable line: every control character escaped, newlines too.

    An error message can quote a path, a map or a type name, all chosen by
    someone else: escaping keeps them from writing terminal escape sequences
    or extra lines into the user's terminal.
    """
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _message(exc: BaseException) -> str:
    """What the one line says: an ObjectError without the libbpf log it carries."""
    if isinstance(exc, ObjectError):
        return f"{exc.strerror} [errno {exc.errno}]"
    return str(exc)


def run(command: str, action: Callable[[], int], err: TextIO) -> int:
    """Run one command: every failure becomes one line on ``err`` and an exit status.

    Every subcommand goes through here, so none of them prints a traceback:
    errors of the typedmaps tree and OS errors get their status from
    :func:`exit_code`; a closed stdout (``| head``) is success; Ctrl-C is 130;
    anything else is a bug in typedmaps, reported as such (status 70).
    """
    try:
        return action()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        err.write("\n")
        return EXIT_INTERRUPTED
    except (TypedMapsError, OSError) as exc:
        err.write(f"typedmaps {command}: {one_line(_message(exc))}\n")
        return exit_code(exc)
    except Exception as exc:  # the last line of defence: never a traceback
        shown = one_line(f"{type(exc).__name__}: {exc}")
        err.write(f"typedmaps {command}: internal error (a bug in typedmaps): {shown}\n")
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors go to stderr, no traceback)."""
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    commands: dict[str, Callable[[], int]] = {
        "list": lambda: cmd_list(args, out),
        "show": lambda: cmd_show(args, out),
        "dump": lambda: cmd_dump(args, out, err),
        "export": lambda: cmd_export(args, err),
        "events": lambda: _cmd_events(args, out, err),
        "gen": lambda: cmd_gen(args, out),
    }
    return run(args.command, commands[args.command], err)


def _cmd_events(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._events_cli import cmd_events

    return cmd_events(args, out, err, open_map)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; after EPIPE that flush would print a traceback.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
