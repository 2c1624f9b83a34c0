"""Inputs checked exactly: real byte counts, paths, pins, sizes, iterables and argument types.

Every bad argument gets a named error from the tree that is also a
TypeError or a ValueError (ArgumentError for arguments that are not schema
values), before any syscall, with the map unchanged; never a bare
OverflowError, AttributeError or TypeError, and never a CodecError "cannot
encode" for something that is not a value.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import construct as cs
import pytest

import typedmaps as tm
from typedmaps import _ffi
from typedmaps.btf import Btf

from .conftest import MakeMap, bpf_object

NCPUS = tm.num_possible_cpus()


def snapshot(h: tm.MapHandle) -> dict[bytes, Any]:
    return {k: v for k, v in h.lookup_batch()}


def _named(exc: BaseException) -> bool:
    return isinstance(exc, tm.TypedMapsError) and isinstance(exc, TypeError | ValueError)


# ------------------------------------------------------------------ real bytes


class LongLiar(bytes):
    """Claims to hold whatever it is asked to, so that len() matches any size check."""

    claim = 0

    def __len__(self) -> int:
        return self.claim


class DisguisedLiar(LongLiar):
    """A LongLiar that also says it is bytes itself: ``x.__class__ is bytes`` is True."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return bytes


def liar(data: bytes, claim: int, kind: type[LongLiar] = LongLiar) -> LongLiar:
    obj = kind(data)
    obj.claim = claim
    return obj


class NoLen(bytes):
    """Fails the test if anything asks it for its length."""

    def __len__(self) -> int:
        raise AssertionError("len() of a bytes subclass was consulted")


@pytest.mark.parametrize("kind", [LongLiar, DisguisedLiar])
def test_sizes_come_from_the_real_bytes(make_map: MakeMap, kind: type[LongLiar]) -> None:
    # The hot paths tell exact bytes by type(), which a subclass cannot fake
    # (its __class__ can say bytes: DisguisedLiar).
    assert DisguisedLiar(b"").__class__ is bytes
    h = make_map(tm.MapType.HASH, key_size=8, value_size=16, max_entries=8)
    q = make_map(tm.MapType.QUEUE, value_size=16, max_entries=4)
    bloom = make_map(tm.MapType.BLOOM_FILTER, value_size=16, max_entries=4)
    pc = make_map(tm.MapType.PERCPU_HASH, key_size=8, value_size=16, max_entries=4)
    h.update(bytes(8), bytes(16))
    before = snapshot(h)
    short_key, short_value = liar(b"\1", 8, kind), liar(b"\2", 16, kind)
    calls: list[Callable[[], object]] = [
        lambda: h.lookup(short_key),
        lambda: h.update(short_key, bytes(16)),
        lambda: h.update(bytes(8), short_value),
        lambda: h.delete(short_key),
        lambda: h.lookup_and_delete(short_key),
        lambda: h.update_batch(liar(b"\1", 16, kind), liar(b"\2", 32, kind), 2),
        lambda: h.delete_batch(liar(b"\1", 16, kind), 2),
        lambda: q.push(short_value),
        lambda: bloom.push(short_value),
        lambda: bloom.lookup_bloom_filter(short_value),
        lambda: pc.update_percpu(bytes(8), [short_value] * NCPUS),
        lambda: pc.lookup_percpu(short_key),
    ]
    for call in calls:
        with pytest.raises(tm.SizeMismatchError) as info:
            call()
        assert info.value.size in (1, 2), info.value  # the real length, not the claimed one
    # The real length is read from the buffer, never from __len__.
    for call in (
        lambda: h.lookup(NoLen(bytes(8))),
        lambda: h.update(NoLen(bytes(8)), NoLen(bytes(16))),
    ):
        call()
    assert h.lookup(NoLen(bytes(8))) == bytes(16)
    assert snapshot(h) == before


def test_truncated_object_bytes_are_refused(bpf: None) -> None:
    data = bpf_object("flows").read_bytes()
    with pytest.raises(tm.ObjectError):
        tm.BpfObject.open(liar(data[:64], len(data)))
    with tm.BpfObject.open(NoLen(data)) as obj:
        obj.load()
        prog = obj.programs["count_flows"]
        with pytest.raises(tm.ArgumentError, match="at least 14 bytes"):
            prog.test_run(liar(b"\0" * 4, 64))
        assert prog.test_run(NoLen(bytes(64))).data_out == bytes(64)


# ------------------------------------------------------------------ paths


NUL_PATHS: tuple[object, ...] = ("/sys/fs/bpf/a\0b", b"/sys/fs/bpf/a\0b", Path("/tmp/x\0y"))
#: BpfObject.open takes bytes as the object's contents, not as a path.
NUL_TEXT_PATHS: tuple[object, ...] = ("/tmp/a\0b.bpf.o", Path("/tmp/x\0y"))


def test_paths_with_a_nul_byte_are_refused_everywhere(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        m = obj.maps["calls_by_pid"]
        for p in NUL_TEXT_PATHS:
            with pytest.raises(tm.ArgumentError, match="NUL"):
                tm.BpfObject.open(p)  # type: ignore[arg-type]
        calls: list[Callable[[Any], object]] = [
            tm.MapHandle.from_pinned_path,
            h.pin,
            h.unpin,
            lambda p: tm.BpfObject.open(bpf_object("tracecount"), pin_root_path=p),
            lambda p: setattr(m, "pin_path", p),
            m.reuse,
            m.unpin,
            Btf.from_file,
        ]
        n = 0
        for call in calls:
            for p in NUL_PATHS:
                with pytest.raises(tm.ArgumentError, match="NUL") as info:
                    call(p)
                assert isinstance(info.value, ValueError)
                n += 1
        obj.load()
        for p in NUL_PATHS:
            with pytest.raises(tm.ArgumentError, match="NUL"):
                m.pin(p)  # type: ignore[arg-type]
            n += 1
    assert n == 27


def test_missing_files_are_file_not_found(bpf: None, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    calls: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: tm.MapHandle.from_pinned_path("/sys/fs/bpf/typedmaps_no_such_pin"), tm.MapError),
        (lambda: tm.MapHandle.from_pinned_path(missing), tm.MapError),
        (lambda: tm.BpfObject.open(missing), tm.ObjectError),
        (lambda: Btf.from_file(missing), tm.MapError),
    ]
    for call, family in calls:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert isinstance(info.value, family)
        assert not isinstance(info.value, KeyError)
        assert info.value.errno == 2


# ------------------------------------------------------------------ unpin


def test_unpin_removes_only_a_bpf_pin_of_this_map(
    make_map: MakeMap, pin_dir: Path, tmp_path: Path
) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    other = make_map(tm.MapType.HASH, key_size=4, value_size=4, max_entries=1)
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    subdir = pin_dir / "sub"
    subdir.mkdir()
    link = pin_dir / "link"
    os.symlink(str(plain), link)
    other.pin(pin_dir / "other")
    cases: list[tuple[Path, str]] = [
        (plain, "not on a bpffs mount"),
        (subdir, "is a directory"),
        (link, "is a symbolic link"),
        (pin_dir / "other", f"is the pin of map id {other.id}, not of this map"),
    ]
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        obj.load()
        prog_pin = pin_dir / "prog"
        assert _ffi.get_lib().bpf_obj_pin(obj.programs["count_syscalls"].fd, bytes(prog_pin)) == 0
        cases.append((prog_pin, "is a pinned BPF program, not a map"))
        for path, why in cases:
            with pytest.raises(tm.ArgumentError, match=why):
                h.unpin(path)
            with pytest.raises(tm.ArgumentError, match=why):
                obj.maps["calls_by_pid"].unpin(path)
            assert os.path.lexists(path), f"{path} was removed"
        prog_pin.unlink()
    assert plain.read_text() == "keep me"
    with pytest.raises(FileNotFoundError):
        h.unpin(pin_dir / "absent")
    h.pin(pin_dir / "mine")
    h.unpin(pin_dir / "mine")
    assert not (pin_dir / "mine").exists()
    link.unlink()
    subdir.rmdir()


# ------------------------------------------------------------------ sizes and iterables


def test_batch_size_is_capped_by_max_entries(make_map: MakeMap) -> None:
    # 2**32 - 1 elements of 8 + 8 bytes would be a 64 GiB allocation: the cap
    # keeps each buffer at max_entries elements.
    h = make_map(tm.MapType.HASH, key_size=8, value_size=8, max_entries=4)
    for i in range(4):
        h.update(i.to_bytes(8, "little"), bytes(8))
    huge = 2**32 - 1
    assert len(list(h.lookup_batch(batch_size=huge))) == 4
    typed = tm.TypedMap(h, key=cs.Int64ul, value=cs.Int64ul)
    assert len(list(typed.lookup_batch(batch_size=huge))) == 4
    assert len(list(h.lookup_and_delete_batch(batch_size=huge))) == 4
    assert snapshot(h) == {}


def test_percpu_values_are_read_at_most_one_past_the_cpu_count(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=4)
    taken = 0

    def endless() -> Iterator[bytes]:
        nonlocal taken
        while True:
            taken += 1
            yield bytes(8)

    with pytest.raises(tm.SizeMismatchError, match="or more"):
        h.update_percpu(bytes(4), endless())
    assert taken == NCPUS + 1
    with pytest.raises(tm.SizeMismatchError):
        h.update_percpu(bytes(4), itertools.repeat(bytes(8)))

    class Lying(Sequence[int]):
        """len() says one per CPU; iteration never ends."""

        def __len__(self) -> int:
            return NCPUS

        def __getitem__(self, i: Any) -> Any:
            return 0

        def __iter__(self) -> Iterator[int]:
            return itertools.repeat(0)

    pc = tm.PerCpuTypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    with pytest.raises(tm.SizeMismatchError):
        pc[1] = Lying()
    assert snapshot(h) == {}


# ------------------------------------------------------------------ the argument matrix

INTS: tuple[object, ...] = (None, "1", 1.5, -1, 2**64, True, object())
#: For arguments where None means "the default".
OPT_INTS: tuple[object, ...] = INTS[1:]
BYTES: tuple[object, ...] = (None, "abc", 5, 1.5, object(), [1, 2])
PATHS: tuple[object, ...] = (None, 5, 1.5, object(), "", "a\0b")
BOOLS: tuple[object, ...] = (None, 1, "yes", 0.0)
FLAGS: tuple[object, ...] = (None, "", 0.0, 1.5, "1", -1, 2**70, True)


def _matrix(
    h: tm.MapHandle, q: tm.MapHandle, obj: tm.BpfObject
) -> list[tuple[str, Any, tuple[object, ...]]]:
    k, v = bytes(4), bytes(8)
    m = obj.maps["calls_by_pid"]
    prog = obj.programs["count_syscalls"]
    typed = tm.TypedMap(h, key=cs.Int32ul, value=cs.Int64ul)
    queue = tm.TypedQueue(q, value=cs.Int64ul)
    create = tm.MapHandle.create
    base = {"map_type": tm.MapType.HASH, "key_size": 4, "value_size": 4, "max_entries": 4}

    def create_with(name: str) -> Callable[[object], object]:
        return lambda bad: create(**{**base, name: bad})  # type: ignore[arg-type]

    return [
        *[(f"create({n}=)", create_with(n), INTS) for n in base],
        ("create(map_flags=)", create_with("map_flags"), INTS),
        ("create(map_extra=)", create_with("map_extra"), INTS),
        ("create(name=)", create_with("name"), (5, 1.5, object(), "x" * 16, "a b", "é")),
        ("create(inner_map=)", create_with("inner_map"), (5, "map", object())),
        ("from_pinned_path(path)", tm.MapHandle.from_pinned_path, PATHS),
        (
            "from_pinned_path(readonly=)",
            lambda b: tm.MapHandle.from_pinned_path("/sys/fs/bpf/x", readonly=b),
            BOOLS,
        ),
        ("from_map_id", tm.MapHandle.from_map_id, (*INTS, 0)),
        ("from_fd", tm.MapHandle.from_fd, INTS),
        ("lookup(key)", h.lookup, BYTES),
        ("lookup(flags=)", lambda f: h.lookup(k, f), FLAGS),
        ("update(key)", lambda b: h.update(b, v), BYTES),
        ("update(value)", lambda b: h.update(k, b), BYTES),
        ("update(flags=)", lambda f: h.update(k, v, f), FLAGS),
        ("delete(key)", h.delete, BYTES),
        ("lookup_and_delete(key)", h.lookup_and_delete, BYTES),
        ("update_batch(keys)", lambda b: h.update_batch(b, v, 1), BYTES),
        ("update_batch(count)", lambda n: h.update_batch(k, v, n), INTS),
        ("update_batch(elem_flags=)", lambda f: h.update_batch(k, v, 1, elem_flags=f), FLAGS),
        ("update_batch(flags=)", lambda f: h.update_batch(k, v, 1, flags=f), INTS),
        ("delete_batch(count)", lambda n: h.delete_batch(k, n), INTS),
        ("lookup_batch(batch_size=)", lambda n: h.lookup_batch(batch_size=n), (*OPT_INTS, 0)),
        ("lookup_batch(elem_flags=)", lambda f: h.lookup_batch(elem_flags=f), FLAGS),
        ("keys/pin(path)", h.pin, PATHS),
        ("unpin(path)", h.unpin, PATHS),
        ("push(value)", q.push, BYTES),
        ("push(flags=)", lambda f: q.push(v, f), FLAGS),
        ("memory(writable=)", lambda b: h.memory(writable=b), BOOLS[1:]),
        (
            "TypedMap(handle)",
            lambda x: tm.TypedMap(x, key=cs.Int32ul, value=cs.Int64ul),
            (None, 5, "h"),
        ),
        ("typed(handle)", tm.typed, (None, 5, "h")),
        ("TypedMap.lookup_batch(batch_size=)", typed.lookup_batch, (*OPT_INTS, 0)),
        ("TypedQueue.push(overwrite=)", lambda b: queue.push(1, overwrite=b), BOOLS),
        ("TypedQueue.drain(max_items=)", queue.drain, OPT_INTS),
        ("BpfObject.open(source)", tm.BpfObject.open, (None, 5, 1.5, object(), "", "a\0b")),
        (
            "BpfObject.open(name=)",
            lambda n: tm.BpfObject.open(bpf_object("tracecount"), name=n),
            (5, "", "a\0b", object()),
        ),
        *[
            (f"Map.{attr} =", lambda x, attr=attr: setattr(m, attr, x), INTS)
            for attr in ("max_entries", "key_size", "value_size", "map_flags")
        ],
        ("Map.autocreate =", lambda b: setattr(m, "autocreate", b), BOOLS),
        (
            "Map.pin_path =",
            lambda p: setattr(m, "pin_path", p),
            (5, 1.5, object(), "", "a\0b", "/sys/fs/bpf/a.b"),
        ),
        ("Map.initial_value =", lambda b: setattr(obj.maps[".rodata"], "initial_value", b), BYTES),
        ("Map.reuse(source)", m.reuse, (5, 1.5, object(), "a\0b")),
        ("Program.autoload =", lambda b: setattr(prog, "autoload", b), BOOLS),
    ]


def _after_load(obj: tm.BpfObject) -> list[tuple[str, Any, tuple[object, ...]]]:
    prog = obj.programs["count_syscalls"]
    ctx = bytes(16)
    return [
        ("test_run(data_in=)", lambda b: prog.test_run(b, ctx_in=ctx), BYTES),
        (
            "test_run(ctx_in=)",
            lambda b: prog.test_run(ctx_in=b),
            tuple(x for x in BYTES if x is not None),
        ),
        ("test_run(repeat=)", lambda n: prog.test_run(ctx_in=ctx, repeat=n), (*INTS, 0)),
        ("test_run(cpu=)", lambda n: prog.test_run(ctx_in=ctx, cpu=n), OPT_INTS),
        (
            "test_run(data_size_out=)",
            lambda n: prog.test_run(ctx_in=ctx, data_size_out=n),
            OPT_INTS,
        ),
    ]


def test_every_bad_argument_is_a_named_type_or_value_error(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    q = make_map(tm.MapType.QUEUE, value_size=8, max_entries=4)
    h.update(bytes(4), bytes(8))
    before = snapshot(h)
    cases = 0
    wrong: list[str] = []
    with tm.BpfObject.open(bpf_object("tracecount")) as obj:
        for loaded in (False, True):
            if loaded:
                obj.load()
            for name, call, bads in _after_load(obj) if loaded else _matrix(h, q, obj):
                for bad in bads:
                    cases += 1
                    try:
                        result = call(bad)
                        if isinstance(result, Iterator):
                            next(result, None)
                    except Exception as exc:
                        if not _named(exc) or isinstance(exc, OverflowError | AttributeError):
                            wrong.append(f"{name} {bad!r}: {type(exc).__name__}: {exc}")
                        elif isinstance(exc, tm.CodecError) and "cannot encode" in str(exc):
                            wrong.append(f"{name} {bad!r}: CodecError for a non-value: {exc}")
                    else:
                        wrong.append(f"{name} {bad!r}: accepted")
    assert wrong == [], "\n".join(wrong)
    assert snapshot(h) == before
    assert q.peek() is None
    print(f"argument matrix: {cases} cases")
    assert cases >= 300, cases


def test_flags_of_the_wrong_type_are_never_read_as_any(make_map: MakeMap) -> None:
    h = make_map(tm.MapType.HASH, key_size=4, value_size=8, max_entries=4)
    h.update(bytes(4), b"old.....")
    falsy_values: tuple[object, ...] = (None, "", 0.0, [], False)
    for falsy in falsy_values:
        with pytest.raises(tm.ArgumentError, match="flags"):
            h.update(bytes(4), b"new.....", falsy)  # type: ignore[arg-type]
    assert h.lookup(bytes(4)) == b"old....."
    h.update(bytes(4), b"new.....", 0)  # a plain 0 is ANY
    assert h.lookup(bytes(4)) == b"new....."
