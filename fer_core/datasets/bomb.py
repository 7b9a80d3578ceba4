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


def bomb_tiff(width: int, height: int, *, byteorder: str = ">") -> bytes:
    """A grey 8-bit TIFF of width x height black pixels in one Deflate strip; ``byteorder``
    ``>`` (big-endian, "MM") or ``<`` (little-endian, "II")."""
    comp = zlib.compressobj(9)
    row = b"\x00" * width
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    # (tag, type: 3 SHORT / 4 LONG, value): width, length, bits, Deflate, black is zero,
    # strip offset, samples, rows per strip, strip bytes.
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1),
               (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(data))]
    ifd_size = 2 + 12 * len(entries) + 4
    entries[5] = (273, 4, 8 + ifd_size)  # the strip follows the one IFD
    o = byteorder
    ifd = struct.pack(o + "H", len(entries)) + b"".join(
        struct.pack(o + "HHI", tag, kind, 1) + (struct.pack(o + "HH", value, 0) if kind == 3
                                                else struct.pack(o + "I", value))
        for tag, kind, value in entries) + struct.pack(o + "I", 0)
    head = (b"MM\x00*" if o == ">" else b"II*\x00") + struct.pack(o + "I", 8)
    return head + ifd + data
