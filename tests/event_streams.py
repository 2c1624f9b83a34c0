"""The records of bpf/event_records.h and bpf/userring.bpf.c, and a driver for the event programs.

``Emitter`` loads bpf/ringbuf.bpf.o, bpf/perfbuf.bpf.o or bpf/userring.bpf.o
and runs their programs through BPF_PROG_TEST_RUN (or attaches them to the
sys_enter tracepoint, filtered to this process), and reads back the
programs' own counters, which the tests compare with what they received.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import struct
from collections.abc import Iterator
from typing import Any

import construct as cs
from construct_typed import DataclassMixin, DataclassStruct, csfield

import typedmaps as tm

from .conftest import bpf_object, need

MODE_FIXED, MODE_VAR, MODE_DISCARD, MODE_MIXED = range(4)
EV_TEST_RUN, EV_SYSCALL = 1, 2
VAR_MAX = 64
GETPPID_NR = {"x86_64": 110, "aarch64": 173}


@dataclasses.dataclass
class Event(DataclassMixin):
    """struct event (32 bytes)."""

    seq: int = csfield(cs.Int64ul)
    ts_ns: int = csfield(cs.Int64ul)
    tgid: int = csfield(cs.Int32ul)
    cpu: int = csfield(cs.Int32ul)
    kind: int = csfield(cs.Int32ul)
    value: int = csfield(cs.Int32ul)


@dataclasses.dataclass
class VarEvent(DataclassMixin):
    """struct var_event as emitted: a 16-byte head, then `len` bytes of data."""

    seq: int = csfield(cs.Int64ul)
    len: int = csfield(cs.Int32ul)
    cpu: int = csfield(cs.Int32ul)
    data: bytes = csfield(cs.GreedyBytes)


@dataclasses.dataclass
class Command(DataclassMixin):
    """struct command of bpf/userring.bpf.c (16 bytes)."""

    seq: int = csfield(cs.Int64ul)
    op: int = csfield(cs.Int32ul)
    arg: int = csfield(cs.Int32ul)


EVENT = DataclassStruct(Event)
VAR_EVENT = DataclassStruct(VarEvent)
COMMAND = DataclassStruct(Command)


def var_data(seq: int, n: int) -> bytes:
    """The data bytes of a var_event: (seq + i) & 0xff."""
    return bytes((seq + i) & 0xFF for i in range(n))


def command(seq: int, arg: int = 1, op: int = 1) -> bytes:
    return struct.pack("<QII", seq, op, arg)


class Emitter:
    """A loaded event program object: run it, attach it, read its counters."""

    def __init__(self, obj: tm.BpfObject) -> None:
        self.obj = obj
        self.maps = obj.maps

    def emit(self, count: int, mode: int = MODE_FIXED, param: int = 0, cpu: int = 0) -> int:
        """One test run of `emit`: `count` records on `cpu`; returns the program's retval."""
        ctx = struct.pack("<3Q", count, mode, param)
        return self.obj.programs["emit"].test_run(ctx_in=ctx, cpu=cpu).retval

    def drain(self) -> None:
        """One test run of userring's `drain`."""
        self.obj.programs["drain"].test_run()

    def counter(self, name: str) -> int:
        """A .bss counter (u64/s64) of the program."""
        bss = self.maps[".bss"]
        var = bss.variables()[name]
        raw = bss.lookup(bytes(4))
        assert raw is not None
        return int.from_bytes(raw[var.offset : var.offset + 8], "little", signed=True)

    def seen(self, count: int) -> list[int]:
        """userring: the seq of the first `count` commands drained, in order."""
        seen = self.maps["seen"]
        keys = struct.pack(f"<{count}I", *range(count))
        out = []
        for i in range(count):
            raw = seen.lookup(keys[4 * i : 4 * i + 4])
            assert raw is not None
            out.append(int.from_bytes(raw, "little"))
        return out

    @contextlib.contextmanager
    def tracepoint(self) -> Iterator[int]:
        """Attach `on_getppid` (filtered to this process); yields getppid's number."""
        with self.obj.programs["on_getppid"].attach():
            yield GETPPID_NR[platform.machine()]


@contextlib.contextmanager
def loaded(name: str, *, size: int | None = None, tracing: bool = False) -> Iterator[Emitter]:
    """bpf/<name>.bpf.o loaded; `size`: the event map's max_entries; `tracing`: filter
    the tracepoint program to this process."""
    with tm.BpfObject.open(bpf_object(name)) as obj:
        if size is not None:
            ring = {"ringbuf": "events", "userring": "commands"}[name]
            obj.maps[ring].max_entries = size
        if tracing:
            nr = GETPPID_NR.get(platform.machine())
            need(nr is not None, f"no getppid number for {platform.machine()}")
            assert nr is not None
            ro = obj.maps[".rodata"]
            ro.set_variable("target_tgid", struct.pack("<I", os.getpid()))
            ro.set_variable("target_syscall", struct.pack("<q", nr))
        else:
            obj.programs["on_getppid"].autoload = False
        obj.load()
        yield Emitter(obj)


def event_fds() -> dict[int, str]:
    """This process's fds that are BPF objects, perf events, epoll sets or eventfds."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{entry}")
            if target.startswith("anon_inode:"):
                out[int(entry)] = target
    return out


def seqs(records: list[Any]) -> list[int]:
    return [r.seq for r in records]


def raw_of(exc: tm.CodecError) -> bytes:
    """The raw record a decode error carries."""
    assert isinstance(exc.value, bytes)
    return exc.value


def seq_of(exc: tm.CodecError) -> int:
    """The sequence number at the start of the raw record a decode error carries."""
    return int.from_bytes(raw_of(exc)[:8], "little")
