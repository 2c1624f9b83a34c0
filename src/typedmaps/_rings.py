"""The memory of BPF ring buffers and perf buffers, read and written directly (mmap).

Private to :mod:`typedmaps.events`. Each reader maps a kernel ring into this
process with Python's :mod:`mmap` and copies records out in batches: one
read of the producer position, one pass over the record headers (a single
strided comparison when every record has the same size), one copy of the
bytes, one store of the consumer position. No Python call is made per
record between the ring and the decoder.

Memory ordering (see docs/events.md): the kernel publishes a record by
writing its bytes, then (with a full barrier) its header or the producer
position. The readers load the producer position, then the headers, then
the bytes, then store the consumer position, each as a separate Python
operation: a single aligned 4- or 8-byte load or store through a
``memoryview`` cast (CPython copies such an item with a fixed-size
``memcpy``, one machine load), or an ``mmap`` slice (one ``memcpy`` after
the headers were read). x86-64 keeps loads in order with other loads and
stores in order after earlier loads (TSO), so the bytes copied are at least
as new as the header that said they were complete, and the kernel sees the
new consumer position only after the copy. Other architectures need
acquire loads and release stores that Python cannot issue; there the
readers refuse to start (:data:`DIRECT`), and the stream uses libbpf's
consumer instead where it can.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import mmap
import os
import platform
import sys
from typing import Any, Final

from . import _ffi
from ._attach import PERF_TYPE_SOFTWARE, perf_event_open
from .errors import MapError, error_from_errno

#: Architectures whose memory model (total store order) makes plain loads
#: acquire loads and plain stores release stores, as the direct readers need.
DIRECT: Final = platform.machine() in {"x86_64", "AMD64", "i386", "i686"}

PAGE: Final = mmap.PAGESIZE

# The kernel's ring buffer record header (include/uapi/linux/bpf.h).
BUSY: Final = 1 << 31
DISCARD: Final = 1 << 30
LEN_MASK: Final = ~(BUSY | DISCARD) & 0xFFFFFFFF
HDR: Final = 8

# perf_event_open(2) (include/uapi/linux/perf_event.h).
_PERF_COUNT_SW_BPF_OUTPUT: Final = 10
_PERF_SAMPLE_RAW: Final = 1 << 10
_PERF_EVENT_IOC_ENABLE: Final = 0x2400
_PERF_RECORD_LOST: Final = 2
_PERF_RECORD_SAMPLE: Final = 9
#: struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size (u64 indices).
_HEAD: Final = 1024 // 8
_TAIL: Final = 1032 // 8
_DATA_OFFSET: Final = 1040 // 8
_DATA_SIZE: Final = 1048 // 8
#: A sample is a perf_event_header (8 bytes) and the u32 size of the raw data.
PERF_SAMPLE_HDR: Final = 12


def perf_sample_size(size: int) -> int:
    """The size a perf buffer reports for a ``size``-byte sample: padded so that
    the 4-byte size field and the data end on 8 bytes (40 -> 44)."""
    return ((size + 4 + 7) & ~7) - 4


class Batch:
    """Records copied out of a ring: ``count`` records in ``buf``.

    A run of equal-sized records has ``spans`` None: record i is
    ``buf[off + i * stride : off + i * stride + size]``. Otherwise ``spans``
    lists each record's (offset, length) in ``buf``.
    """

    __slots__ = ("buf", "count", "off", "size", "spans", "stride")

    def __init__(
        self,
        buf: bytes,
        count: int,
        off: int = 0,
        *,
        stride: int = 0,
        size: int = 0,
        spans: list[tuple[int, int]] | None = None,
    ) -> None:
        self.buf = buf
        self.count = count
        self.off = off
        self.stride = stride
        self.size = size
        self.spans = spans

    def records(self) -> list[bytes]:
        """Every record as bytes, in order."""
        buf = self.buf
        if self.spans is None:
            size = self.size
            off = self.off
            return [
                buf[o : o + size] for o in range(off, off + self.count * self.stride, self.stride)
            ]
        return [buf[o : o + n] for o, n in self.spans]

    def sized(self) -> list[tuple[int, int]]:
        """(offset, length) of every record."""
        if self.spans is not None:
            return self.spans
        size = self.size
        return [
            (o, size) for o in range(self.off, self.off + self.count * self.stride, self.stride)
        ]


def _mmap_error(exc: OSError, what: str) -> MapError:
    err = exc.errno or _errno.EINVAL
    return error_from_errno(err, f"mmap {what}", detail=f"{os.strerror(err)} (mapping {what})")


def _map_ring(fd: int, size: int, what: str, *, consumer: bool) -> tuple[mmap.mmap, mmap.mmap]:
    """Map a BPF ring: (its consumer page, its producer page + data area mapped twice).

    ``consumer``: this side moves the consumer position (RINGBUF), so the
    consumer page is writable and the rest read-only; else (USER_RINGBUF)
    the other way round, as the kernel allows each.
    """
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    try:
        cons_mm = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, rw if consumer else mmap.PROT_READ)
    except OSError as exc:
        raise _mmap_error(exc, f"the {what}'s consumer page") from None
    try:
        prot = mmap.PROT_READ if consumer else rw
        data_mm = mmap.mmap(fd, PAGE + 2 * size, mmap.MAP_SHARED, prot, offset=PAGE)
    except OSError as exc:
        cons_mm.close()
        raise _mmap_error(exc, f"the {what}'s data") from None
    return cons_mm, data_mm


def _equal_run(words: Any, first: int, count: int, width: int) -> int:
    """How many of ``count`` strided header words, read once, equal ``first``.

    ``words`` is a strided memoryview; it is copied once (in order, one
    aligned load per item). The first word always matches.
    """
    got = words.tobytes()
    words.release()
    expected = first.to_bytes(width, sys.byteorder) * count
    if got == expected:
        return count
    lo, hi = 1, count  # the first lo match; the first hi do not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if got[: mid * width] == expected[: mid * width]:
            lo = mid
        else:
            hi = mid
    return lo


class RingbufReader:
    """The consumer side of a BPF_MAP_TYPE_RINGBUF, mapped into this process.

    Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position
    (writable by user space), page 1 the producer position, then the data
    area, mapped twice back to back so that a record never wraps.
    """

    __slots__ = (
        "_cons",
        "_cons_mm",
        "_data",
        "_data_mm",
        "_mask",
        "_prod",
        "_size",
        "_u32",
    )

    def __init__(self, fd: int, size: int) -> None:
        self._cons_mm, self._data_mm = _map_ring(fd, size, "ring buffer", consumer=True)
        self._cons = memoryview(self._cons_mm).cast("Q")
        whole = memoryview(self._data_mm)
        self._prod = whole[:PAGE].cast("Q")
        self._u32 = whole[PAGE:].cast("I")
        whole.release()
        self._data = PAGE  # where the data area starts in data_mm
        self._size = size
        self._mask = size - 1

    def pending(self) -> int:
        """Bytes the producers have published and no consumer has consumed."""
        return int(self._prod[0]) - int(self._cons[0])

    def take(self, limit: int | None, count: int | None = None) -> list[Batch]:
        """Copy out the committed records (about ``limit`` bytes, ``count`` records at
        most), in order.

        Stops at the first record still being written (busy); skips
        discarded records; then publishes the new consumer position.
        """
        # The consumer position is read from the shared page, not remembered:
        # another consumer of the ring (libbpf's, in this or another process)
        # may have moved it since; reading one ring from two consumers at the
        # same time is the caller's race, as with libbpf.
        pos = int(self._cons[0])
        prod = int(self._prod[0])  # the producer position, read once
        if prod == pos:
            return []
        if not 0 < prod - pos <= self._size:
            raise self._corrupt(prod - pos)
        u32 = self._u32
        mask = self._mask
        end = prod if limit is None else min(prod, pos + max(limit, 1))
        out: list[Batch] = []
        hdr = int(u32[(pos & mask) >> 2])
        if hdr & BUSY:
            return out
        if not hdr & DISCARD:
            stride = (hdr + HDR + 7) & ~7
            if stride > prod - pos:
                raise self._corrupt(hdr)
            n = max(1, (end - pos) // stride)
            if count is not None:
                n = min(n, count)
            k = 1
            if n > 1:
                start = (pos & mask) >> 2
                step = stride >> 2
                k = _equal_run(u32[start : start + n * step : step], hdr, n, 4)
            a = self._data + (pos & mask)
            out.append(Batch(self._data_mm[a : a + k * stride], k, HDR, stride=stride, size=hdr))
            pos += k * stride
            if count is not None:
                count -= k
        if pos < end and count != 0:
            pos = self._walk(pos, end, prod, out, count)
        self._cons[0] = pos  # after every copy: the kernel may now reuse the space
        return out

    def _walk(self, pos: int, end: int, prod: int, out: list[Batch], count: int | None) -> int:
        """Records of any size, one header at a time, from ``pos`` up to ``end``."""
        u32 = self._u32
        mask = self._mask
        base = pos
        spans: list[tuple[int, int]] = []
        while pos < end:
            hdr = int(u32[(pos & mask) >> 2])
            if hdr & BUSY:
                break
            n = hdr & LEN_MASK
            stride = (n + HDR + 7) & ~7
            if stride > prod - pos:
                raise self._corrupt(hdr)
            if not hdr & DISCARD:
                spans.append((pos - base + HDR, n))
            pos += stride
            if count is not None and len(spans) == count:
                break
        if spans:
            a = self._data + (base & mask)
            out.append(Batch(self._data_mm[a : a + (pos - base)], len(spans), spans=spans))
        return pos

    def _corrupt(self, what: int) -> MapError:
        return MapError(
            _errno.EIO,
            "consume",
            f"the ring buffer's positions do not add up ({what:#x}): another consumer "
            "is reading this ring at the same time?",
        )

    def close(self) -> None:
        """Unmap the ring; only when no other thread can be reading it."""
        for view in (self._cons, self._prod, self._u32):
            view.release()
        _close_mmap(self._cons_mm)
        _close_mmap(self._data_mm)


def _close_mmap(mm: mmap.mmap) -> None:
    # A view of the ring may still be alive somewhere (a caller's memoryview):
    # then the mapping goes when the last view does, never under a reader.
    with contextlib.suppress(BufferError):
        mm.close()


class PerfRing:
    """One CPU's perf event ring (PERF_COUNT_SW_BPF_OUTPUT), mapped into this process."""

    __slots__ = ("_data", "_dsize", "_meta", "_mm", "cpu", "fd", "lost")

    def __init__(self, cpu: int, pages: int) -> None:
        fd = perf_event_open(
            PERF_TYPE_SOFTWARE,
            _PERF_COUNT_SW_BPF_OUTPUT,
            sample=1,
            freq=False,
            pid=-1,
            cpu=cpu,
            op=f"perf buffer: perf_event_open cpu {cpu}",
            sample_type=_PERF_SAMPLE_RAW,
        )
        try:
            mm = mmap.mmap(
                fd, PAGE * (pages + 1), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as exc:
            os.close(fd)
            raise _mmap_error(exc, f"the perf ring of CPU {cpu}") from None
        try:
            fcntl.ioctl(fd, _PERF_EVENT_IOC_ENABLE, 0)
        except OSError as exc:
            mm.close()
            os.close(fd)
            err = exc.errno or _errno.EINVAL
            raise error_from_errno(err, f"enable perf event cpu {cpu}") from None
        self.cpu = cpu
        self.fd = fd
        self.lost = 0
        self._mm = mm
        self._meta = memoryview(mm)[:PAGE].cast("Q")
        self._data = int(self._meta[_DATA_OFFSET]) or PAGE
        self._dsize = int(self._meta[_DATA_SIZE]) or PAGE * pages

    def pending(self) -> int:
        return int(self._meta[_HEAD]) - int(self._meta[_TAIL])

    def take(self, out: list[Batch], count: int | None = None) -> int:
        """Copy out the records up to the head (``count`` samples at most); count
        lost samples; publish the tail. Returns how many samples were taken."""
        head = int(self._meta[_HEAD])  # read once; the kernel wrote every record before it
        tail = int(self._meta[_TAIL])  # ours, but read back as the ring buffer reader does
        n = head - tail
        if n <= 0:
            return 0
        dsize = self._dsize
        if n > dsize:
            raise MapError(_errno.EIO, "consume", f"perf ring of CPU {self.cpu} overran its tail")
        a = tail & (dsize - 1)
        base = self._data
        mm = self._mm
        if a + n <= dsize:
            buf = mm[base + a : base + a + n]
        else:
            buf = mm[base + a : base + dsize] + mm[base : base + a + n - dsize]
        used, taken = self._parse(buf, out, count)
        self._meta[_TAIL] = tail + used  # after the copy
        return taken

    def _parse(self, buf: bytes, out: list[Batch], count: int | None) -> tuple[int, int]:
        """Split a copy of the ring into batches of samples (``count`` at most); add
        up lost samples. Returns the bytes used and the samples taken."""
        total = len(buf)
        if total % 8:
            raise MapError(_errno.EIO, "consume", f"perf ring of CPU {self.cpu} is misaligned")
        q = memoryview(buf).cast("Q")
        try:
            first = int(q[0])
            size = first >> 48
            pos = taken = 0
            if (
                first & 0xFFFFFFFF == _PERF_RECORD_SAMPLE
                and size > PERF_SAMPLE_HDR
                and not size % 8
            ):
                n = total // size
                if count is not None:
                    n = min(n, count)
                k = _equal_run(q[0 : n * (size >> 3) : size >> 3], first, n, 8) if n > 1 else 1
                out.append(Batch(buf, k, PERF_SAMPLE_HDR, stride=size, size=size - PERF_SAMPLE_HDR))
                pos = k * size
                taken = k
            spans: list[tuple[int, int]] = []
            while pos < total and (count is None or taken + len(spans) < count):
                h = int(q[pos >> 3])
                kind = h & 0xFFFFFFFF
                size = h >> 48
                if size < 8 or size % 8 or pos + size > total:
                    raise MapError(
                        _errno.EIO,
                        "consume",
                        f"perf ring of CPU {self.cpu}: bad record size {size}",
                    )
                if kind == _PERF_RECORD_SAMPLE:
                    raw = int.from_bytes(buf[pos + 8 : pos + 12], sys.byteorder)
                    spans.append((pos + PERF_SAMPLE_HDR, min(raw, size - PERF_SAMPLE_HDR)))
                elif kind == _PERF_RECORD_LOST and size >= 24:
                    self.lost += int(q[(pos >> 3) + 2])
                pos += size
            if spans:
                out.append(Batch(buf, len(spans), spans=spans))
            return pos, taken + len(spans)
        finally:
            q.release()

    def close(self) -> None:
        self._meta.release()
        _close_mmap(self._mm)
        os.close(self.fd)


class UserRingWriter:
    """The producer side of a BPF_MAP_TYPE_USER_RINGBUF, mapped into this process.

    Page 0 holds the kernel's consumer position (read-only here), page 1 the
    producer position (written here), then the data area, mapped twice.
    A record is written in full, with its header, before the producer
    position moves past it, so the kernel never sees it half written; a
    reservation's header carries the busy bit until it is submitted.
    """

    __slots__ = (
        "_cons",
        "_cons_mm",
        "_data",
        "_data_mm",
        "_mask",
        "_prod",
        "_size",
        "_u32",
    )

    def __init__(self, fd: int, size: int) -> None:
        self._cons_mm, self._data_mm = _map_ring(fd, size, "user ring buffer", consumer=False)
        self._cons = memoryview(self._cons_mm).cast("Q")
        whole = memoryview(self._data_mm)
        self._prod = whole[:PAGE].cast("Q")
        self._data = whole[PAGE:]
        self._u32 = self._data.cast("I")
        whole.release()
        self._size = size
        self._mask = size - 1

    @property
    def size(self) -> int:
        return self._size

    def room(self) -> int:
        """Free bytes: the ring's size less what the kernel has not drained.

        The consumer position is read first: the kernel only moves it up to
        the producer position, so read in this order the difference is never
        negative (read the other way, a push and a drain between the two
        reads made it so). Callers hold the stream's lock, so that no push
        of this process moves the producer position between them either.
        """
        cons = int(self._cons[0])
        used = int(self._prod[0]) - cons
        if not 0 <= used <= self._size:
            raise MapError(
                _errno.EIO,
                "push",
                f"the user ring buffer's positions do not add up ({used} bytes in use of "
                f"{self._size}): another producer is writing this ring at the same time?",
            )
        return self._size - used

    def reserve(self, size: int) -> tuple[int, memoryview] | None:
        """Space for one ``size``-byte record (busy until submitted), or None if full."""
        total = (size + HDR + 7) & ~7
        if total > self.room():
            return None
        pos = int(self._prod[0])
        at = pos & self._mask
        self._u32[at >> 2] = size | BUSY
        self._prod[0] = pos + total
        return pos, self._data[at + HDR : at + HDR + size]

    def commit(self, pos: int, size: int, discard: bool) -> None:
        """Submit (or discard) the record reserved at ``pos``: clear its busy bit."""
        self._u32[(pos & self._mask) >> 2] = size | (DISCARD if discard else 0)

    def write(self, blob: bytes, total: int) -> None:
        """Write ``total`` bytes of complete records (headers included), then publish them."""
        pos = int(self._prod[0])
        at = pos & self._mask
        self._data[at : at + total] = blob
        self._prod[0] = pos + total  # after the bytes: the kernel may read them now

    def write_strided(self, blob: bytes, count: int, size: int, stride: int) -> None:
        """Write ``count`` records of ``size`` bytes that ``blob`` holds every
        ``stride`` bytes, give each its header, then publish them.

        Record i goes to ``i * stride + 8``; the bytes of ``blob`` past the
        last record (its padding) are not written, so nothing beyond the
        ``count * stride`` bytes this call publishes is touched.
        """
        pos = int(self._prod[0])
        at = pos & self._mask
        total = count * stride
        data = self._data
        data[at + HDR : at + total] = memoryview(blob)[: total - HDR]
        step = stride >> 2
        start = at >> 2
        headers = self._u32[start : start + count * step : step]
        try:
            headers[:] = memoryview(size.to_bytes(4, sys.byteorder) * count).cast("I")
        finally:
            headers.release()
        self._prod[0] = pos + total

    def close(self) -> None:
        for view in (self._cons, self._prod, self._u32, self._data):
            view.release()
        _close_mmap(self._cons_mm)
        _close_mmap(self._data_mm)


class PerfReader:
    """Every CPU's perf ring of one PERF_EVENT_ARRAY, in CPU order.

    Opens one PERF_COUNT_SW_BPF_OUTPUT event per online CPU (offline CPUs
    cannot have one; a CPU that comes online later has none) and stores its
    fd in the map at the CPU's index, as libbpf's perf_buffer does; close()
    deletes those entries again, so the kernel lets the events go.
    """

    __slots__ = ("_fd", "ncpus", "rings")

    def __init__(self, fd: int, cpus: list[int], ncpus: int, pages: int) -> None:
        self._fd = fd
        self.ncpus = ncpus
        self.rings: list[PerfRing] = []
        lib = _ffi.get_lib()
        try:
            for cpu in cpus:
                ring = PerfRing(cpu, pages)
                self.rings.append(ring)
                key = cpu.to_bytes(4, sys.byteorder)
                ret = lib.bpf_map_update_elem(fd, key, ring.fd.to_bytes(4, sys.byteorder), 0)
                if ret < 0:
                    raise error_from_errno(ret, f"perf buffer: store the event of CPU {cpu}")
        except BaseException:
            self.close()
            raise

    @property
    def fds(self) -> list[int]:
        return [r.fd for r in self.rings]

    def lost_by_cpu(self) -> list[int]:
        out = [0] * self.ncpus
        for r in self.rings:
            out[r.cpu] = r.lost
        return out

    def pending(self) -> int:
        return sum(r.pending() for r in self.rings)

    def take(self, limit: int | None, count: int | None = None) -> list[Batch]:
        out: list[Batch] = []
        for ring in self.rings:
            taken = ring.take(out, count)
            if count is not None:
                count -= taken
                if not count:
                    break
        return out

    def close(self) -> None:
        lib = _ffi.get_lib()
        rings, self.rings = self.rings, []
        for ring in rings:
            lib.bpf_map_delete_elem(self._fd, ring.cpu.to_bytes(4, sys.byteorder))
            ring.close()
