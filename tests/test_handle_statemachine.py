"""Hypothesis state machines: random operation sequences on real maps against a model.

HASH (small max_entries, so MapFullError happens), ARRAY and PERCPU_HASH run
against a dict; QUEUE and STACK against a list. Every step predicts the
outcome, success or the exact named error (and for batches, ``.processed``),
and the map must match the model after every step.
"""

from __future__ import annotations

import os
import struct
from typing import Any, ClassVar

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

import typedmaps as tm

T = tm.MapType
F = tm.MapFlags
NCPUS = tm.num_possible_cpus()
FAST = settings(max_examples=50, stateful_step_count=30, deadline=None)

VALUE_SIZE = 6
KEYS = st.integers(min_value=0, max_value=7)  # some beyond max_entries
FLAGS = st.sampled_from([F.ANY, F.NO_EXIST, F.EXIST])


def key(i: int) -> bytes:
    return struct.pack("=I", i)


class KeyedMachine(RuleBasedStateMachine):
    """A keyed map against ``dict[int, value]``; subclasses pick the map type."""

    map_type: ClassVar[tm.MapType]
    max_entries: ClassVar[int] = 4

    def __init__(self) -> None:
        super().__init__()
        self.h = tm.MapHandle.create(
            self.map_type,
            key_size=4,
            value_size=VALUE_SIZE,
            max_entries=self.max_entries,
            name="tm_machine",
        )
        self.percpu = self.map_type.is_percpu
        self.array = self.map_type.has_fixed_keys
        self.model: dict[int, Any] = {}
        if self.array:
            self.model = {i: bytes(VALUE_SIZE) for i in range(self.max_entries)}

    def teardown(self) -> None:
        self.h.close()

    # -------------------------------------------------------------- helpers

    def values(self) -> st.SearchStrategy[Any]:
        one = st.binary(min_size=VALUE_SIZE, max_size=VALUE_SIZE)
        return st.lists(one, min_size=NCPUS, max_size=NCPUS) if self.percpu else one

    def write(self, k: int, v: Any, flags: int) -> None:
        if self.percpu:
            self.h.update_percpu(key(k), v, flags)
        else:
            self.h.update(key(k), v, flags)

    def read(self, k: int) -> Any:
        return self.h.lookup_percpu(key(k)) if self.percpu else self.h.lookup(key(k))

    def fits(self, k: int) -> type[tm.MapError] | None:
        """The error an insert-or-replace of ``k`` raises, or None."""
        if self.array:
            return None if k < self.max_entries else tm.KeyNotFoundError
        if k in self.model or len(self.model) < self.max_entries:
            return None
        return tm.MapFullError

    def flat(self, vs: list[Any]) -> bytes:
        if self.percpu:
            pad = bytes(-VALUE_SIZE % 8)
            return b"".join(x + pad for v in vs for x in v)
        return b"".join(vs)

    # -------------------------------------------------------------- rules

    @rule(k=KEYS, flags=FLAGS, data=st.data())
    def update(self, k: int, flags: int, data: st.DataObject) -> None:
        v = data.draw(self.values())
        present = k in self.model
        expected: type[tm.MapError] | None
        if self.array and k >= self.max_entries:
            expected = tm.KeyNotFoundError  # index out of range, whatever the flag
        elif flags == F.NO_EXIST and present:
            expected = tm.KeyExistsError
        elif flags == F.EXIST and not present:
            expected = tm.KeyNotFoundError
        else:
            expected = self.fits(k)
        if expected is None:
            self.write(k, v, flags)
            self.model[k] = v
        else:
            with pytest.raises(expected) as info:
                self.write(k, v, flags)
            assert type(info.value) is expected

    @rule(k=KEYS)
    def lookup(self, k: int) -> None:
        assert self.read(k) == self.model.get(k)

    @rule(k=KEYS)
    def delete(self, k: int) -> None:
        if self.array:
            with pytest.raises(tm.NotSupportedError):
                self.h.delete(key(k))
        elif k in self.model:
            self.h.delete(key(k))
            del self.model[k]
        else:
            with pytest.raises(tm.KeyNotFoundError):
                self.h.delete(key(k))

    @rule(k=KEYS)
    def lookup_and_delete(self, k: int) -> None:
        if self.array:
            with pytest.raises(tm.NotSupportedError):
                self.h.lookup_and_delete(key(k))
        else:
            assert self.h.lookup_and_delete(key(k)) == self.model.pop(k, None)

    @rule(ks=st.lists(KEYS, max_size=6), data=st.data())
    def update_batch(self, ks: list[int], data: st.DataObject) -> None:
        vs = [data.draw(self.values()) for _ in ks]
        # The kernel applies the elements in order and stops at the first failure.
        failed: type[tm.MapError] | None = None
        done = 0
        for k, v in zip(ks, vs, strict=True):
            failed = self.fits(k)
            if failed is not None:
                break
            self.model[k] = v
            done += 1
        buffers = (b"".join(key(k) for k in ks), self.flat(vs), len(ks))
        if failed is None:
            assert self.h.update_batch(*buffers) == len(ks)
        else:
            with pytest.raises(tm.BatchError) as info:
                self.h.update_batch(*buffers)
            assert isinstance(info.value, failed)
            assert info.value.processed == done

    @rule(ks=st.lists(KEYS, max_size=6))
    def delete_batch(self, ks: list[int]) -> None:
        buffer = b"".join(key(k) for k in ks)
        if self.array:
            with pytest.raises(tm.NotSupportedError):
                self.h.delete_batch(buffer, len(ks))
            return
        done = 0
        for k in ks:
            if k not in self.model:
                break
            del self.model[k]
            done += 1
        if done == len(ks):
            assert self.h.delete_batch(buffer, len(ks)) == len(ks)
        else:
            with pytest.raises(tm.KeyNotFoundError) as info:
                self.h.delete_batch(buffer, len(ks))
            assert isinstance(info.value, tm.BatchError)
            assert info.value.processed == done

    # -------------------------------------------------------------- the whole map

    @invariant()
    def matches_the_model(self) -> None:
        got = {struct.unpack("=I", k)[0]: v for k, v in self.h.lookup_batch(batch_size=3)}
        assert got == self.model


class HashMachine(KeyedMachine):
    map_type = T.HASH


class ArrayMachine(KeyedMachine):
    map_type = T.ARRAY


class PerCpuHashMachine(KeyedMachine):
    map_type = T.PERCPU_HASH


@pytest.mark.parametrize(
    "machine",
    [HashMachine, ArrayMachine, PerCpuHashMachine],
    ids=["HASH", "ARRAY", "PERCPU_HASH"],
)
def test_keyed_map_against_a_dict(bpf: None, machine: type[KeyedMachine]) -> None:
    run_state_machine_as_test(machine, settings=FAST)


class KeylessMachine(RuleBasedStateMachine):
    """QUEUE (FIFO) or STACK (LIFO) against a list, oldest first."""

    map_type: ClassVar[tm.MapType]
    max_entries: ClassVar[int] = 3

    def __init__(self) -> None:
        super().__init__()
        self.h = tm.MapHandle.create(
            self.map_type, key_size=0, value_size=VALUE_SIZE, max_entries=self.max_entries
        )
        self.model: list[bytes] = []
        self.fifo = self.map_type is T.QUEUE

    def teardown(self) -> None:
        self.h.close()

    def next_index(self) -> int:
        return 0 if self.fifo else -1

    @rule(
        v=st.binary(min_size=VALUE_SIZE, max_size=VALUE_SIZE),
        overwrite=st.booleans(),
    )
    def push(self, v: bytes, overwrite: bool) -> None:
        flags = F.EXIST if overwrite else F.ANY
        if len(self.model) < self.max_entries:
            self.h.push(v, flags)
            self.model.append(v)
        elif overwrite:
            self.h.push(v, flags)
            del self.model[0]  # the oldest goes, for QUEUE and STACK alike
            self.model.append(v)
        else:
            with pytest.raises(tm.MapFullError):
                self.h.push(v, flags)

    @rule()
    def pop(self) -> None:
        expected = self.model.pop(self.next_index()) if self.model else None
        assert self.h.pop() == expected

    @rule()
    def peek(self) -> None:
        expected = self.model[self.next_index()] if self.model else None
        assert self.h.peek() == expected


class QueueMachine(KeylessMachine):
    map_type = T.QUEUE


class StackMachine(KeylessMachine):
    map_type = T.STACK


@pytest.mark.parametrize("machine", [QueueMachine, StackMachine], ids=["QUEUE", "STACK"])
def test_queue_and_stack_against_a_list(bpf: None, machine: type[KeylessMachine]) -> None:
    run_state_machine_as_test(machine, settings=FAST)


def test_machines_leave_no_map_open(bpf: None) -> None:
    before = len(os.listdir("/proc/self/fd"))
    run_state_machine_as_test(
        HashMachine, settings=settings(max_examples=5, stateful_step_count=5, deadline=None)
    )
    assert len(os.listdir("/proc/self/fd")) == before
