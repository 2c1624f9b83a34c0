"""``typedmaps dump``: read a whole map in batches, write it as bpftool-style JSON or a table.

The JSON is what bpftool's ``formatted`` view holds (docs/cli.md says
where it differs on purpose). It is written by code compiled once per map
from its BTF (:func:`typedmaps.btf.format.json_writer`), over the raw
buffers of BPF_MAP_LOOKUP_BATCH: no construct, no Python object per field.
The table is made from the same reads through :func:`format_type`.

Entries come in the kernel's order: a batch lookup walks a hash map bucket
by bucket and an array by index, as BPF_MAP_GET_NEXT_KEY does (map types
without batch lookup are walked with GET_NEXT_KEY, each value looked up by
the kernel's own key bytes, so keys with garbage padding are still found).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any, Final, TextIO

from ._handle_batch import DEFAULT_BATCH
from .btf import Btf
from .btf.format import (
    JObj,
    entries_writer,
    format_type,
    hex_bytes,
    hex_writer,
    json_brackets,
    json_writer,
    render,
)
from .errors import NotSupportedError
from .flags import MapType
from .handle import MapHandle, MapInfo

__all__ = ["Progress", "dump_json", "dump_table", "entry_tree", "raw_entries"]

_IND: Final = "    "

#: (buffer, offset) -> JSON text of one key or value.
Writer = Callable[[Any, int], str]


class Progress:
    """``dumped N entries`` on stderr, every 1000 entries, when enabled."""

    def __init__(self, enabled: bool, total: int, err: TextIO) -> None:
        self.enabled = enabled
        self.total = total
        self.err = err
        self.count = 0

    def tick(self, n: int = 1) -> None:
        before = self.count
        self.count += n
        if self.enabled and self.count // 1000 > before // 1000:
            self.err.write(f"\rdumped {self.count} entries (max_entries {self.total})")
            self.err.flush()

    def done(self) -> None:
        if self.enabled and self.count >= 1000:
            self.err.write(f"\rdumped {self.count} entries{' ' * 24}\n")
            self.err.flush()


# ---------------------------------------------------------------------------- reading


def _chunks(h: MapHandle) -> Iterator[tuple[int, bytes, bytes]]:
    """Every element as (count, keys back to back, values back to back), a batch at a time.

    Per-CPU values are the kernel's slots (round_up(value_size, 8) bytes,
    one per possible CPU). QUEUE and STACK give their head (peek), the only
    element readable without removing it; BLOOM_FILTER gives nothing.
    """
    mt = h.map_type
    if mt in (MapType.QUEUE, MapType.STACK):
        head = h.peek()
        if head is not None:
            yield 1, b"", head
        return
    if mt is MapType.BLOOM_FILTER:
        return
    size = max(1, min(h.max_entries, DEFAULT_BATCH))
    batches = h._lookup_batch_raw("lookup_batch", size, h._batch_opts(0, 0, "dump"))
    try:
        first = next(batches, None)
    except NotSupportedError:  # no batch lookup for this map type
        yield from h._walk_raw(size)
        return
    if first is not None:
        yield first
        yield from batches


def raw_entries(h: MapHandle) -> Iterator[tuple[bytes | None, bytes | list[bytes]]]:
    """(key, value or per-CPU values) as bytes, in the order the dump writes them.

    The key is None for QUEUE and STACK (their head).
    """
    ks, vs, slot, ncpus = h.key_size, h._vbuf_size, h._slot, h._ncpus
    size = h.value_size
    keyless = h.map_type.is_keyless
    for n, kb, vb in _chunks(h):
        for i in range(n):
            key = None if keyless else kb[i * ks : (i + 1) * ks]
            base = i * vs
            if h._percpu:
                yield key, [vb[base + c * slot : base + c * slot + size] for c in range(ncpus)]
            else:
                yield key, vb[base : base + size]


# ---------------------------------------------------------------------------- JSON


def _writer(
    btf: Btf | None, type_id: int, size: int, path: str, *, pretty: bool, level: int
) -> Writer:
    if btf is None or not type_id:
        return hex_writer(size, pretty=pretty, level=level)
    return json_writer(btf, type_id, size=size, pretty=pretty, level=level, path=path)


def _chunk_writer(
    h: MapHandle, btf: Btf | None, info: MapInfo, pretty: bool
) -> Callable[[bytes, bytes, int], list[str]]:
    """(keys, values, count) -> the JSON text of each entry of one chunk (objects at level 1)."""
    if not h.map_type.is_keyless:
        return entries_writer(btf, info, ncpus=h._ncpus, pretty=pretty)
    # The head of a QUEUE or STACK: {"value": V}.
    fv = _writer(btf, info.btf_value_type_id, info.value_size, "value", pretty=pretty, level=2)
    opening, _, closing = json_brackets("{}", 1, pretty)
    head = opening + '"value"' + (": " if pretty else ":")

    def keyless(kb: bytes, vb: bytes, n: int) -> list[str]:
        return [head + fv(vb, 0) + closing]

    return keyless


def dump_json(
    h: MapHandle, btf: Btf | None, out: TextIO, progress: Progress, *, pretty: bool
) -> None:
    """Write every entry of ``h`` as one JSON list (bpftool's ``formatted`` view).

    Raises:
        BtfError: a key or value type that cannot be shown (before any output).
        SizeMismatchError: the map's sizes and its BTF disagree.
    """
    write = _chunk_writer(h, btf, h.info(), pretty)
    first = True
    out.write("[")
    for n, kb, vb in _chunks(h):
        texts = write(kb, vb, n)
        text = ("\n" + _IND + (",\n" + _IND).join(texts)) if pretty else ",".join(texts)
        out.write(text if first else "," + text)
        first = False
        progress.tick(n)
    out.write("\n]\n" if pretty and not first else "]\n")


# ---------------------------------------------------------------------------- table


def _tree_formatter(btf: Btf | None, type_id: int, size: int, path: str) -> Callable[[bytes], Any]:
    if btf is None or not type_id:
        return hex_bytes
    json_writer(btf, type_id, size=size, path=path)  # the checks the JSON dump makes
    return lambda data: format_type(btf, type_id, data[:size])


def entry_tree(
    key: bytes | None,
    value: bytes | list[bytes],
    fmt_key: Callable[[bytes], Any],
    fmt_value: Callable[[bytes], Any],
) -> JObj:
    """One entry as a JObj tree: what :func:`dump_json` writes for it, as data."""
    obj = JObj()
    if key is not None:
        obj.append(("key", fmt_key(key)))
    if isinstance(value, list):
        obj.append(
            ("values", [JObj([("cpu", i), ("value", fmt_value(v))]) for i, v in enumerate(value)])
        )
    else:
        obj.append(("value", fmt_value(value)))
    return obj


def dump_table(h: MapHandle, btf: Btf | None, out: TextIO, progress: Progress) -> None:
    """Write every entry as ``KEY => VALUE`` lines (one member a line when too wide)."""
    i = h.info()
    fk = _tree_formatter(btf, i.btf_key_type_id, i.key_size, "key")
    fv = _tree_formatter(btf, i.btf_value_type_id, i.value_size, "value")
    width = shutil.get_terminal_size((120, 24)).columns
    out.write(
        f"{i.id}: {i.map_type.name.lower()} {i.name!r}  key {i.key_size}B  "
        f"value {i.value_size}B  max_entries {i.max_entries}\n"
    )
    n = 0
    for key, value in raw_entries(h):
        n += 1
        progress.tick()
        fields = dict(entry_tree(key, value, fk, fv))
        key_txt = render(fields["key"]) if "key" in fields else None
        if "values" in fields:
            values = [(f"cpu{c[0][1]}", c[1][1]) for c in fields["values"]]
        else:
            values = [("", fields["value"])]
        for label, v in values:
            val_txt = render(v)
            head = f"{key_txt}" if key_txt is not None else "head"
            if label:
                head += f" [{label}]"
            line = f"{head} => {val_txt}"
            if len(line) <= width or not isinstance(v, JObj):
                out.write(line + "\n")
                continue
            out.write(f"{head} =>\n")
            for name, sub in v:
                out.write(f"    {name or '(anon)'}: {render(sub)}\n")
    out.write(f"({n} {'entry' if n == 1 else 'entries'})\n")
