"""The benchmark's registry: groups, targets and checks, and the maps they share.

bench/run.py measures *groups* (C, the cffi floor, MapHandle, TypedMap,
BCC, and any a plugin adds) over the record *shapes* of bench/shapes.py,
in rounds, and judges *targets*: ratios of two measurements of the same
run. Everything it knows comes from a :class:`Registry`; the built-in
groups register themselves (bench/groups.py), and so does every module
named in ``run.PLUGINS``.

A plugin is a module in bench/ with a ``register(reg)`` function::

    # bench/columnar.py
    from harness import Context, Registry, Target

    class NumpyRunner:
        def __init__(self, ctx: Context) -> None:
            self.data = ctx.shapes["plain"]          # the shared maps and records
            self.clock = ctx.clock
            self.m = tm.TypedMap(self.data.hash, key=..., value=...)

        def run_round(self) -> dict[str, dict[str, float]]:
            t0 = self.clock()
            arr = self.m.to_numpy()
            ns = (self.clock() - t0) / len(arr)
            return {"plain": {"to_numpy": ns}}      # shape -> op -> ns per element

        def close(self) -> None:
            pass

    def register(reg: Registry) -> None:
        reg.add_op("to_numpy", "to_numpy() (per element)")
        reg.add_group("numpy", "numpy", NumpyRunner)
        reg.add_target(Target("to_numpy() <= 1.3x C batch lookup",
                              ("plain", "numpy", "to_numpy"),
                              ("plain", "c", "lookup_batch"), 1.3))

and one line in run.py: ``PLUGINS = ("columnar",)``. Each round runs
every group's ``run_round`` once (in a shuffled order); the report keeps the
best round of every measurement and prints it in the shape's table.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from shapes import SHAPES, Owned, Shape

import typedmaps as tm
from typedmaps.codec import Codec, make_codec

Clock = Callable[[], int]
#: A measurement: (shape, group, op).
Key = tuple[str, str, str]
#: What one round of a group measured: shape -> op -> ns per element.
RoundResult = dict[str, dict[str, float]]


class Unavailable(Exception):
    """A group cannot be measured here; the message says why (it goes in the record)."""


class Runner(Protocol):
    def run_round(self) -> RoundResult: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Group:
    """An implementation measured side by side: ``make(ctx)`` builds its runner."""

    name: str
    title: str
    make: Callable[[Context], Runner]


@dataclasses.dataclass(frozen=True)
class Target:
    """A target of the issue: ``num / den`` at most ``limit`` (both from the same run)."""

    name: str
    num: Key
    den: Key
    limit: float


@dataclasses.dataclass(frozen=True)
class Info:
    """A ratio reported for context, with no target."""

    name: str
    num: Key
    den: Key


@dataclasses.dataclass(frozen=True)
class Check:
    """A one-off check with a verdict, run after the rounds (e.g. the memory bound).

    ``run(args)`` returns a dict with at least ``met`` (bool) and ``text``
    (one line for the report); everything else goes into the record.
    """

    name: str
    run: Callable[[argparse.Namespace], dict[str, Any]]


class Registry:
    """Everything one run measures and judges, in the order it is reported."""

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self.ops: dict[str, str] = {}
        self.targets: list[Target] = []
        self.infos: list[Info] = []
        self.checks: list[Check] = []

    def add_group(self, name: str, title: str, make: Callable[[Context], Runner]) -> None:
        if any(g.name == name for g in self.groups):
            raise ValueError(f"group {name!r} registered twice")
        self.groups.append(Group(name, title, make))

    def add_op(self, name: str, title: str) -> None:
        """Name a measurement (a row of the shape tables) and its title."""
        self.ops.setdefault(name, title)

    def add_target(self, target: Target) -> None:
        self.targets.append(target)

    def add_info(self, info: Info) -> None:
        self.infos.append(info)

    def add_check(self, check: Check) -> None:
        self.checks.append(check)

    def title(self, group: str) -> str:
        return next((g.title for g in self.groups if g.name == group), group)


# --------------------------------------------------------------------------- shared maps


def _chunks(n: int, size: int = 65536) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


class ShapeData:
    """One shape's maps and records, made once and shared by every group.

    Attributes:
        shape: the :class:`Shape`.
        hash: a HASH of ``entries`` elements (keys 0..entries-1).
        percpu: a PERCPU_HASH of the first ``ops`` keys (same value on every
            CPU), for shapes that have one; else None.
        key_codec, value_codec: the codecs of the shape's schemas (from BTF
            for the BTF shape).
        keys, values: the first ``ops`` elements as Python records.
        key_bytes, value_bytes: the same as bytes.
        percpu_value_bytes: one per-CPU buffer per key (every slot the value).
    """

    def __init__(self, shape: Shape, entries: int, ops: int) -> None:
        self.shape = shape
        self.entries = entries
        self.ops = ops
        self.ncpus = tm.num_possible_cpus()
        self._owned: list[Owned] = []
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        shape, entries, ops = self.shape, self.entries, self.ops
        owned = shape.create(tm.MapType.HASH, entries, f"tmb_{shape.name[:10]}")
        self._owned.append(owned)
        self.hash = owned.handle
        if shape.from_btf:
            t = tm.typed(self.hash)
            assert isinstance(t, tm.TypedMap)
            self.key_codec: Codec[Any] = t.key_codec
            self.value_codec: Codec[Any] = t.value_codec
        else:
            self.key_codec = make_codec(shape.key_schema, "key")
            self.value_codec = make_codec(shape.value_schema, "value")
        if (self.key_codec.size, self.value_codec.size) != (shape.key_size, shape.value_size):
            raise RuntimeError(f"shape {shape.name}: schema sizes differ from the shape's")
        for lo, hi in _chunks(entries):
            kb, vb = self.element_bytes(lo, hi)
            self.hash.update_batch(kb, vb, hi - lo)
        kb, vb = self.element_bytes(0, ops)
        ks, vs = shape.key_size, shape.value_size
        self.key_bytes = [kb[i * ks : (i + 1) * ks] for i in range(ops)]
        self.value_bytes = [vb[i * vs : (i + 1) * vs] for i in range(ops)]
        self.keys = self.key_codec.decode_many(kb, ops)
        self.values = self.value_codec.decode_many(vb, ops)
        if shape.make_key is not None and shape.make_value is not None:
            # The records the codecs decode are the records the shape makes.
            last = ops - 1
            if (self.keys[last], self.values[last]) != (
                shape.make_key(last),
                shape.make_value(last),
            ):
                raise RuntimeError(f"shape {shape.name}: records do not round-trip")
        self.percpu: tm.MapHandle | None = None
        self.percpu_value_bytes: list[bytes] = []
        if shape.percpu:
            pc = shape.create(tm.MapType.PERCPU_HASH, ops, f"tmb_pc_{shape.name[:7]}")
            self._owned.append(pc)
            self.percpu = pc.handle
            pad = bytes(-vs % 8)
            self.percpu_value_bytes = [(v + pad) * self.ncpus for v in self.value_bytes]
            self.percpu.update_batch(kb, b"".join(self.percpu_value_bytes), ops)

    def element_bytes(self, lo: int, hi: int) -> tuple[bytes, bytes]:
        """Keys and values lo..hi-1, each back to back, in the C layout."""
        s = self.shape
        if s.raw_key is not None and s.raw_value is not None:
            return (
                b"".join(s.raw_key(i) for i in range(lo, hi)),
                b"".join(s.raw_value(i) for i in range(lo, hi)),
            )
        assert s.make_key is not None
        assert s.make_value is not None
        return (
            self.key_codec.encode_many([s.make_key(i) for i in range(lo, hi)]),
            self.value_codec.encode_many([s.make_value(i) for i in range(lo, hi)]),
        )

    def pairs(self) -> list[tuple[Any, Any]]:
        """Every element as (key, value) records, for update_batch (made on demand)."""
        kb, vb = self.element_bytes(0, self.entries)
        n = self.entries
        keys, values = self.key_codec.decode_many(kb, n), self.value_codec.decode_many(vb, n)
        return list(zip(keys, values, strict=True))

    def fresh(self, name: str) -> Owned:
        """A new, empty HASH of this shape and size (the caller closes it)."""
        return self.shape.create(tm.MapType.HASH, self.entries, name)

    def close(self) -> None:
        for o in reversed(self._owned):
            o.close()
        self._owned.clear()


class Context:
    """What every group's runner is built from: parameters, the clock, the shared maps."""

    def __init__(self, args: argparse.Namespace, clock: Clock, shapes: dict[str, ShapeData]):
        self.args = args
        self.clock = clock
        self.shapes = shapes
        self.ncpus = tm.num_possible_cpus()

    @property
    def batch(self) -> int:
        return int(self.args.batch)


def make_shapes(names: list[str], entries: int, ops: int) -> dict[str, ShapeData]:
    out: dict[str, ShapeData] = {}
    try:
        for name in names:
            out[name] = ShapeData(SHAPES[name], entries, ops)
    except BaseException:
        for d in out.values():
            d.close()
        raise
    return out


def expect(got: int, want: int, what: str) -> None:
    if got != want:
        raise RuntimeError(f"{what} handled {got} elements, expected {want}")


ALL_SHAPES: Final = tuple(SHAPES)
