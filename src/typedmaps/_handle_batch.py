"""MapHandle's batch operations and its key walk (BPF_MAP_*_BATCH, GET_NEXT_KEY).

:class:`~typedmaps.MapHandle` inherits these methods from :class:`HandleBatches`,
which holds no state of its own: every method works on the handle's fd,
sizes and checks (handle.py), with the same lifetime rules as the
single-element calls there. The fd is in flight for one syscall at a time,
so a suspended iterator holds nothing and sees close() at its next batch.

Batches go around the cost of one Python-level call per element: one
syscall reads or writes up to ``batch_size`` elements into buffers made once
(``_lookup_batch_into`` also reads into buffers the caller owns, for the
columnar layer). Map types without BPF_MAP_LOOKUP_BATCH are read with the
bounded GET_NEXT_KEY walk of :meth:`HandleBatches.keys` instead
(``_walk_raw``).
"""

from __future__ import annotations

import contextlib
import errno as _errno
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from ._args import U32_MAX as _U32_MAX
from ._args import U64_MAX as _U64_MAX
from ._args import as_bytes as _as_bytes
from ._args import bad
from ._args import check_int as _check_int
from ._args import elem_flags as _elem_flags
from ._ffi import NULL, ffi
from .errors import (
    ArgumentError,
    IterationAbortedError,
    KeyNotFoundError,
    SizeMismatchError,
    batch_error_from_errno,
    error_from_errno,
)
from .flags import MapFlags

if TYPE_CHECKING:
    from ._life import Lifetime
    from .errors import NotSupportedError, TypedMapsError
    from .handle import BytesLike, MapInfo

__all__ = ["DEFAULT_BATCH", "HandleBatches"]

#: Default batch size for lookup_batch and friends: bounded memory for huge maps.
DEFAULT_BATCH: Final = 4096
#: Errors of a first batch call that mean "refused" (the plain named error), not "stopped".
_BATCH_FAIL_FAST: Final = frozenset(
    {_errno.EINVAL, _errno.EOPNOTSUPP, 524, _errno.EPERM, _errno.EACCES}
)
_LOCK: Final = int(MapFlags.LOCK)


class HandleBatches:
    """Batch operations and the key walk; a base of :class:`~typedmaps.MapHandle` only."""

    __slots__ = ()

    if TYPE_CHECKING:
        # What these methods use of MapHandle (handle.py), declared for the type checker.
        _lib: Any
        _info: MapInfo
        _key_size: int
        _vbuf_size: int
        _percpu: bool
        _calls: list[Any]
        _lt: Lifetime

        def _open_fd(self) -> int: ...
        def _using(self) -> contextlib.AbstractContextManager[int]: ...
        def _unusable(self) -> TypedMapsError: ...
        def _refusal(self, ret: int, op: str) -> str | None: ...
        def _wrong_kind(self, op: str) -> NotSupportedError: ...
        def _no_delete(self, op: str) -> NotSupportedError: ...
        def _need_lock(self, op: str) -> None: ...
        def _split_percpu(self, raw: bytes) -> list[bytes]: ...
        def _lookup_raw(self, key: bytes, flags: int) -> bytes | None: ...

    # ------------------------------------------------------------------ batches

    def _batch_opts(self, elem_flags: int, flags: int, op: str) -> Any:
        """Checked ``struct bpf_map_batch_opts``; raises before any syscall.

        The kernel takes no element flag but LOCK in any batch operation
        (NO_EXIST and EXIST are EINVAL there: they exist for single elements
        only), so those are refused here. ``flags`` is passed through: the
        kernel defines none yet.
        """
        f = _elem_flags(elem_flags, op, "elem_flags")
        if f & ~_LOCK:
            raise bad(
                op,
                "elem_flags",
                elem_flags,
                "ANY or LOCK (the kernel refuses NO_EXIST/EXIST in batch operations)",
            )
        if f:
            self._need_lock(op)
        _check_int(flags, "flags", op, _U64_MAX)
        opts = ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
        opts.elem_flags = f
        opts.flags = int(flags)
        return opts

    def _check_batch_arg(self, data: object, count: int, unit: int, what: str, op: str) -> bytes:
        b = _as_bytes(data, what)
        _check_batch_len(len(b), count, unit, what, op)
        return b

    def _batch_count(self, count: int, op: str) -> int:
        return _check_int(count, "count", op, _U32_MAX)

    def _write_batch(
        self, op: str, call: Any, buffers: tuple[Any, ...], count: int, opts: Any
    ) -> int:
        """Run update_batch/delete_batch; a failure says how many were applied."""
        n = ffi.new("__u32 *", count)
        with self._using() as fd:
            ret = call(fd, *buffers, n, opts)
        if ret:
            # The kernel writes the count back only once it has started
            # applying elements, and then stops short of ``count``; an early
            # refusal (EINVAL, EPERM, ENOTSUPP) leaves our input in place.
            done = int(n[0])
            processed = done if done < count and ret != -_errno.EFAULT else 0
            if ret == -_errno.E2BIG and self._info.map_type.has_fixed_keys:
                raise batch_error_from_errno(
                    ret,
                    op,
                    processed,
                    detail=f"index out of range (max_entries={self._info.max_entries})",
                    cls=KeyNotFoundError,
                )
            raise batch_error_from_errno(ret, op, processed, detail=self._refusal(ret, op))
        return int(n[0])

    def update_batch(
        self,
        keys: BytesLike,
        values: BytesLike,
        count: int,
        elem_flags: int = MapFlags.ANY,
        flags: int = 0,
    ) -> int:
        """Update ``count`` elements in one syscall (Linux 5.6+).

        Args:
            keys: ``count * key_size`` bytes, keys back to back.
            values: ``count * value_size`` bytes; on per-CPU maps
                ``count * num_possible_cpus() * round_up(value_size, 8)``.
            count: how many elements the buffers hold.
            elem_flags: ANY or LOCK. Unlike :meth:`update`, the kernel refuses
                NO_EXIST and EXIST in a batch; they raise CodecError here.
            flags: batch flags; the kernel defines none (pass 0).

        Returns:
            How many elements were applied (== count).

        Raises:
            BatchError: the kernel stopped part-way; ``.processed`` says how
                many elements it applied, in order. The instance is also the
                named error of its errno (a full hash map: MapFullError; an
                ARRAY index out of range: KeyNotFoundError, as in
                :meth:`update`), so either can be caught.
            SizeMismatchError: the buffers do not hold ``count`` elements.
            CodecError: bad count or flags.
            NotSupportedError: keyless maps; LOCK on a map without a spin lock.
        """
        op = "update_batch"
        self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind(op)
        count = self._batch_count(count, op)
        kb = self._check_batch_arg(keys, count, self._key_size, "keys", op)
        vb = self._check_batch_arg(values, count, self._vbuf_size, "values", op)
        opts = self._batch_opts(elem_flags, flags, op)
        if count == 0:
            return 0
        return self._write_batch(op, self._lib.bpf_map_update_batch, (kb, vb), count, opts)

    def _update_batch_from(self, keys: Any, values: Any, count: int, elem_flags: int) -> int:
        """:meth:`update_batch` from contiguous buffers the caller owns (ndarrays), not copied.

        For the columnar layer (typed/columnar.py), whose packed arrays would
        otherwise be copied once more into bytes. Each buffer must hold
        exactly ``count`` elements, as for update_batch.

        Raises:
            ArgumentError: a buffer is not contiguous.
            SizeMismatchError, BatchError, CodecError, NotSupportedError:
                as :meth:`update_batch`.
        """
        op = "update_batch"
        self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind(op)
        count = self._batch_count(count, op)
        ptrs = []
        for buf, unit, what in (
            (keys, self._key_size, "keys"),
            (values, self._vbuf_size, "values"),
        ):
            try:
                ptr = ffi.from_buffer(buf)
            except (TypeError, ValueError, BufferError):
                raise ArgumentError(
                    f"{op}: {what} must be a contiguous buffer, not {type(buf).__name__}",
                    argument=what,
                    value=buf,
                ) from None
            _check_batch_len(len(ptr), count, unit, what, op)
            ptrs.append(ptr)
        opts = self._batch_opts(elem_flags, 0, op)
        if count == 0:
            return 0
        return self._write_batch(
            op, self._lib.bpf_map_update_batch, (ptrs[0], ptrs[1]), count, opts
        )

    def delete_batch(
        self, keys: BytesLike, count: int, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> int:
        """Delete ``count`` keys in one syscall (Linux 5.6+).

        Args:
            keys: ``count * key_size`` bytes, keys back to back.
            elem_flags: ANY (or LOCK, which deletion ignores).

        Returns:
            How many were deleted (== count).

        Raises:
            BatchError: stopped part-way; ``.processed`` keys (the first ones)
                were deleted. A missing key stops it with ENOENT, so the
                error is also a KeyNotFoundError.
            NotSupportedError: ARRAY-like and keyless maps (before the syscall).
            MapPermissionError: frozen map or read-only fd (also a BatchError,
                with ``.processed == 0``).
        """
        op = "delete_batch"
        self._open_fd()
        mt = self._info.map_type
        if mt.is_keyless:
            raise self._wrong_kind(op)
        if mt.has_fixed_keys:
            raise self._no_delete(op)
        count = self._batch_count(count, op)
        kb = self._check_batch_arg(keys, count, self._key_size, "keys", op)
        opts = self._batch_opts(elem_flags, flags, op)
        if count == 0:
            return 0
        return self._write_batch(op, self._lib.bpf_map_delete_batch, (kb,), count, opts)

    def lookup_batch(
        self, batch_size: int | None = None, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """Iterate over all elements with BPF_MAP_LOOKUP_BATCH (Linux 5.6+).

        Reads ``batch_size`` elements per syscall (default
        min(max_entries, 4096)), so memory stays bounded on huge maps. When a
        hash bucket holds more than a batch (ENOSPC), the batch grows and the
        call is retried. Per-CPU values come as lists. Argument checks run
        when this is called, kernel errors at the first ``next()``.

        Args:
            batch_size: elements per syscall (a positive integer < 2**32).
            elem_flags: ANY or LOCK.
            flags: batch flags; the kernel defines none (pass 0).

        Raises:
            NotSupportedError: the map type has no batch ops (LPM_TRIE, ...),
                or a keyless map (before the syscall).
            BatchError: a kernel error mid-way, after the elements read so far
                were yielded; ``.processed`` counts them. Never ends silently.
        """
        return self._batch_iter("lookup_batch", batch_size, elem_flags, flags)

    def lookup_and_delete_batch(
        self, batch_size: int | None = None, elem_flags: int = MapFlags.ANY, flags: int = 0
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """Drain the map with BPF_MAP_LOOKUP_AND_DELETE_BATCH (Linux 5.6+).

        Each element yielded has already been deleted; elements the kernel
        returned before an error are yielded before the error is raised, so
        none is lost. Hash maps only.

        Raises:
            NotSupportedError: ARRAY-like and keyless maps (before the
                syscall), LPM_TRIE and other types without the batch op.
            BatchError: as for :meth:`lookup_batch`.
        """
        return self._batch_iter("lookup_and_delete_batch", batch_size, elem_flags, flags)

    def _batch_iter(
        self, op: str, batch_size: int | None, elem_flags: int, flags: int
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        # Checks run here, eagerly, not at the first next().
        self._open_fd()
        mt = self._info.map_type
        if mt.is_keyless:
            raise self._wrong_kind(op)
        if op == "lookup_and_delete_batch" and mt.has_fixed_keys:
            raise self._no_delete(op)
        if batch_size is None:
            batch_size = DEFAULT_BATCH
        else:
            batch_size = _check_int(batch_size, "batch_size", op, _U32_MAX, low=1)
        opts = self._batch_opts(elem_flags, flags, op)
        return self._batch_gen(op, batch_size, opts)

    def _batch_gen(
        self, op: str, batch_size: int, opts: Any
    ) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        ks, vs = self._key_size, self._vbuf_size
        percpu = self._percpu
        for got, kraw, vraw in self._lookup_batch_raw(op, batch_size, opts):
            for i in range(got):
                k = kraw[i * ks : (i + 1) * ks]
                v = vraw[i * vs : (i + 1) * vs]
                yield k, (self._split_percpu(v) if percpu else v)

    def _lookup_batch_raw(
        self, op: str, batch_size: int, opts: Any
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """Batches as (count, keys bytes, values bytes); the typed layer reads these.

        ``op`` is "lookup_batch" or "lookup_and_delete_batch". No argument
        checks (see :meth:`_batch_iter`). Elements the kernel returned
        together with an error are yielded before it is raised, so a draining
        caller loses none. A refusal on the very first call (EINVAL, ENOTSUPP,
        EPERM, ...) is the plain named error; any later error, or one after
        elements were returned, is a BatchError counting the yielded elements.
        """
        ks, vs = self._key_size, self._vbuf_size
        # Never allocate more than the map can hold (see _lookup_batch_into).
        batch_size = min(batch_size, max(self._info.max_entries, 1))
        bufs = [ffi.new("char[]", ks * batch_size or 1), ffi.new("char[]", vs * batch_size or 1)]

        def grow(size: int) -> tuple[Any, Any]:
            bufs[:] = [ffi.new("char[]", ks * size or 1), ffi.new("char[]", vs * size or 1)]
            return bufs[0], bufs[1]

        for got in self._lookup_batch_into(op, batch_size, opts, (bufs[0], bufs[1]), grow=grow):
            yield got, ffi.buffer(bufs[0], ks * got)[:], ffi.buffer(bufs[1], vs * got)[:]

    def _lookup_batch_into(
        self,
        op: str,
        batch_size: int,
        opts: Any,
        buffers: tuple[Any, Any],
        *,
        grow: Callable[[int], tuple[Any, Any]],
    ) -> Iterator[int]:
        """Batch reads straight into the caller's buffers; yields each batch's count.

        ``buffers`` is (keys, values). The kernel writes a batch's keys back
        to back from the start of ``keys`` and its values (per-CPU:
        ``num_possible_cpus()`` slots of ``round_up(value_size, 8)`` bytes
        each) from the start of ``values``; the caller reads them before
        asking for the next batch. Both are writable, contiguous buffers (a
        cffi ``char[]``, a bytearray, a memoryview of an ndarray, ...) with
        room for ``batch_size`` elements, checked before the first syscall.
        When one hash bucket holds more than the buffers fit (ENOSPC),
        ``grow(n)`` is called for buffers of ``n`` elements, which it
        returns; the read resumes from the same position. Errors as for :meth:`_lookup_batch_raw`.

        Raises:
            SizeMismatchError: a buffer is smaller than ``batch_size`` elements.
            ArgumentError: a buffer is not writable and contiguous.
        """
        call = getattr(self._lib, "bpf_map_" + op)
        token_size = max(self._key_size, 8)
        in_tok = ffi.new("char[]", token_size)
        out_tok = ffi.new("char[]", token_size)
        # Never more room than the map has elements: a batch_size beyond
        # max_entries would only ask for memory no batch can fill. One hash
        # bucket never holds more than the map either: the bound for growing.
        grow_limit = max(self._info.max_entries, 1)
        size = min(batch_size, grow_limit)
        kp, vp = self._batch_buffers(buffers, size, op)
        n = ffi.new("__u32 *")
        first = True
        done = 0
        while True:
            n[0] = size
            # In flight for the syscall only: a suspended iterator holds
            # nothing, and sees close() at its next batch.
            with self._using() as fd:
                ret = call(fd, NULL if first else in_tok, out_tok, kp, vp, n, opts)
            if ret == -_errno.ENOSPC and n[0] == 0:
                # A hash bucket holds more than `size` elements: grow, retry
                # from the same position.
                if size >= grow_limit:
                    raise batch_error_from_errno(
                        ret, op, done, detail=f"a hash bucket holds more than {size} elements"
                    )
                size = min(size * 2, grow_limit)
                kp, vp = self._batch_buffers(grow(size), size, op)
                continue
            # The kernel writes the count back on success, at the end (ENOENT)
            # and when a generic batch gives up on a changing map (EINTR);
            # after other errors `n` still holds our input.
            got = int(n[0]) if ret in (0, -_errno.ENOENT, -_errno.EINTR) else 0
            if got:
                yield got
                done += got
            if ret == 0:
                first = False
                ffi.memmove(in_tok, out_tok, token_size)
                continue
            if ret == -_errno.ENOENT:
                return
            why = self._refusal(ret, op)
            if first and done == 0 and -ret in _BATCH_FAIL_FAST:
                raise error_from_errno(ret, op, einval_unsupported=True, detail=why)
            raise batch_error_from_errno(ret, op, done, detail=why)

    def _batch_buffers(self, buffers: tuple[Any, Any], count: int, op: str) -> tuple[Any, Any]:
        """cffi pointers to (keys, values) buffers, checked to be writable and to hold ``count``."""
        out = []
        units = (self._key_size, self._vbuf_size)
        for buf, unit, what in zip(buffers, units, ("keys", "values"), strict=True):
            if isinstance(buf, ffi.CData):
                have = ffi.sizeof(buf)
                ptr = buf
            else:
                try:
                    ptr = ffi.from_buffer(buf, require_writable=True)
                except (TypeError, ValueError, BufferError):
                    raise ArgumentError(
                        f"{op}: {what} must be a writable, contiguous buffer, "
                        f"not {type(buf).__name__}",
                        argument=what,
                        value=buf,
                    ) from None
                have = len(ptr)
            if have < count * unit:
                raise SizeMismatchError(
                    f"{op}: {what} buffer",
                    have,
                    count * unit,
                    f"room for {count} element(s) of {unit} bytes",
                )
            out.append(ptr)
        return out[0], out[1]

    def _walk_raw(self, batch_size: int) -> Iterator[tuple[int, bytes, bytes]]:
        """Chunks like :meth:`_lookup_batch_raw`'s from GET_NEXT_KEY and one lookup per key.

        For map types without BPF_MAP_LOOKUP_BATCH. Each value is looked up
        by the raw key bytes the kernel returned; a key deleted between the
        two calls is skipped. Per-CPU values keep their slot padding.
        """
        keys: list[bytes] = []
        values: list[bytes] = []
        for kb in self.keys():
            vb = self._lookup_raw(kb, 0)
            if vb is None:
                continue  # deleted between GET_NEXT_KEY and the lookup
            keys.append(kb)
            values.append(vb)
            if len(keys) >= batch_size:
                yield len(keys), b"".join(keys), b"".join(values)
                keys, values = [], []
        if keys:
            yield len(keys), b"".join(keys), b"".join(values)

    # ------------------------------------------------------------------ iteration

    def keys(self) -> Iterator[bytes]:
        """Iterate over the keys with BPF_MAP_GET_NEXT_KEY.

        Bounded: a hash map that changes under the walk can restart it from
        the first key; after max_entries + 1 steps without reaching the end
        this raises IterationAbortedError instead of looping forever.

        Raises:
            NotSupportedError: keyless maps.
            IterationAbortedError: the walk could not finish.
        """
        self._open_fd()
        if self._info.map_type.is_keyless:
            raise self._wrong_kind("keys")
        return self._keys_gen()

    def _keys_gen(self) -> Iterator[bytes]:
        ks = self._key_size
        cur = ffi.new("char[]", ks or 1)
        nxt = ffi.new("char[]", ks or 1)
        prev: Any = NULL
        limit = self._info.max_entries + 1
        get_next = self._lib.bpf_map_get_next_key
        calls = self._calls
        for _ in range(limit):
            # In flight for the syscall only (a suspended walk holds nothing).
            calls.append(None)
            try:
                fd = calls[0]
                if fd < 0:
                    raise self._unusable()
                ret = get_next(fd, prev, nxt)
            finally:
                calls.pop()
                if calls[0] < 0:
                    self._lt.finish()
            if ret == -_errno.ENOENT:
                return
            if ret:
                raise error_from_errno(
                    ret, "keys", einval_unsupported=True, detail=self._refusal(ret, "keys")
                )
            key: bytes = ffi.buffer(nxt, ks)[:]
            yield key
            ffi.memmove(cur, nxt, ks)
            prev = cur
        raise IterationAbortedError(
            _errno.EINTR,
            "keys",
            f"iteration aborted: more than max_entries={limit - 1} steps "
            "(the map changed during the walk)",
        )


def _check_batch_len(have: int, count: int, unit: int, what: str, op: str) -> None:
    """A batch buffer of ``have`` bytes must hold exactly ``count`` elements of ``unit`` bytes."""
    if have != count * unit:
        raise SizeMismatchError(
            f"{op}: {what} buffer", have, count * unit, f"{count} element(s) of {unit} bytes"
        )
