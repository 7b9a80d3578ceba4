"""A made decompression bomb: a valid PNG of many black pixels in few bytes (20000x20000
is 400 megapixels in about 390 KB), for checking that readers refuse it by its header."""

from __future__ import annotations

import struct
import zlib


def bomb_png(width: int, height: int) -> bytes:
    """A grey 8-bit PNG of width x height black pixels, compressed as far as zlib goes."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # the filter byte, then the pixels
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))
