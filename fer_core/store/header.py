"""What an image file's header says before a pixel is decoded: its format and size, and
its EXIF orientation.

A 390 KB PNG can hold 400 megapixels, which OpenCV would decode into 1.2 GB: the size is
read from the header first (``check_pixels``), so such a file is refused for its size
without being decoded. The parsers read only the few header bytes each format defines.
"""

from __future__ import annotations

import io
import struct

import numpy as np

__all__ = ["image_header", "check_pixels", "exif_orientation", "apply_orientation"]


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the header of PNG, JPEG, GIF, BMP, WebP or TIFF bytes
    (every format ingest accepts); None for other formats, or a header too short to say."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return "png", w, h
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
            return "gif", w, h
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return "bmp", abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff(data)
    except struct.error:
        return None
    return None


def _jpeg(data: bytes) -> tuple[str, int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC) carry the frame's size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return "jpeg", w, h
        i += 2 + length
    return None


def _webp(data: bytes) -> tuple[str, int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return "webp", w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return "webp", w & 0x3FFF, h & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[str, int, int] | None:
    """The first image's ImageWidth (256) and ImageLength (257) tags: TIFF or BigTIFF."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    # (offset of the first IFD, entry count format, entry size, value offset in an entry)
    if big:
        ifd, count_fmt, entry, value_at = struct.unpack(order + "Q", data[8:16])[0], "Q", 20, 12
    else:
        ifd, count_fmt, entry, value_at = struct.unpack(order + "I", data[4:8])[0], "H", 12, 8
    count_size = struct.calcsize(count_fmt)
    (count,) = struct.unpack(order + count_fmt, data[ifd:ifd + count_size])
    size: dict[int, int] = {}
    for i in range(count):
        at = ifd + count_size + i * entry
        tag, kind = struct.unpack(order + "HH", data[at:at + 4])
        if tag in (256, 257):
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                return None
            n = struct.calcsize(fmt)
            size[tag] = struct.unpack(order + fmt, data[at + value_at:at + value_at + n])[0]
        if len(size) == 2:
            return "tiff", size[256], size[257]
    return None


def check_pixels(data: bytes, max_pixels: int | None) -> str:
    """Why these bytes are refused for their size (empty when they are not): the header's
    width x height against ``max_pixels`` (None: no limit)."""
    if not max_pixels:
        return ""
    head = image_header(data)
    if head is None:
        return ""
    fmt, w, h = head
    if w * h > max_pixels:
        return (f"too large: {w}x{h} = {w * h / 1e6:.1f} megapixels "
                f"(limit {max_pixels / 1e6:.1f}), {fmt} header")
    return ""


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8; 1 = upright, also when there is none)."""
    head = data[:131072]  # EXIF sits near the start; most files have none
    if not (any(m in head for m in (b"Exif", b"eXIf", b"EXIF"))  # JPEG, PNG, WebP
            or head[:4] in (b"II*\x00", b"MM\x00*")):  # TIFF keeps it in its own header
        return 1
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - an unreadable EXIF block leaves the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels as a viewer shows them for that EXIF orientation (EXIF 2.3): 2 mirror,
    3 half turn, 4 flip, 5 transpose, 6 quarter turn clockwise, 7 transverse, 8 quarter
    turn counter-clockwise."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2), 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
    op = ops.get(orientation)
    return img if op is None else np.ascontiguousarray(op(img))
