"""typedmaps demo (byte level, until the object loader lands)."""

from __future__ import annotations

import struct

import typedmaps as tm


def main() -> None:
    with tm.MapHandle.create(
        tm.MapType.HASH, key_size=4, value_size=8, max_entries=64, name="demo"
    ) as h:
        for port in (22, 80, 443):
            h.update(struct.pack("<I", port), struct.pack("<Q", port * 1000))
        for k, v in h.lookup_batch():
            print(f"port {struct.unpack('<I', k)[0]:>5}: {struct.unpack('<Q', v)[0]} bytes")


if __name__ == "__main__":
    main()
