"""Small images built byte by byte, with the metadata a phone writes into its photos (where it was taken, the phone's
serial number), for the tests of what is kept of a photo. No image library is needed: PNG is zlib and CRC-32, and
the JPEG's segments are what its parser reads (its scan data is not decoded by anything here)."""

from __future__ import annotations

import struct
import zlib

#: What a phone writes that must never be kept: a GPS position and the phone's serial number.
GPS = b"GPSLatitude -7.0123 GPSLongitude 112.7456"
SERIAL = b"BodySerialNumber R58M12ABCDE"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 24, height: int = 16, *, metadata: bool = True, rows: bool = True) -> bytes:
    """A real PNG (a browser shows it): a blue and orange block, with text and Exif chunks a phone would write.
    Without ``rows``, the picture's data is left empty (a header that claims a size is all some tests need)."""
    pixels = b"".join(
        b"\x00" + b"".join(b"\x1f\x4e\x9a" if x < width // 2 else b"\xf0\xb4\x00" for x in range(width))
        for _ in range(height if rows else 0)
    )
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    if metadata:
        chunks += [
            png_chunk(b"tEXt", b"Location\x00" + GPS),
            png_chunk(b"eXIf", b"MM\x00*" + SERIAL),
            png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 12, 6, 9, 30, 0)),
        ]
    chunks += [png_chunk(b"IDAT", zlib.compress(pixels)), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def segment(marker: int, data: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(data) + 2) + data


#: The segments a JPEG needs before its scan, as a camera writes them (their contents are not decoded here).
JFIF = segment(0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00")
ICC = segment(0xE2, b"ICC_PROFILE\x00\x01\x01profile")
TABLES = segment(0xDB, b"\x00" + bytes(range(64))) + segment(0xC0, b"\x08\x00\x10\x00\x18\x01\x01\x11\x00")
SCAN = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34\xff\x00\x56" + b"\xff\xd9"


def jpeg(*, metadata: bool = True) -> bytes:
    """A JPEG's structure with Exif (GPS), XMP, IPTC and a comment naming the phone, unless not ``metadata``."""
    extra = (
        segment(0xE1, b"Exif\x00\x00" + GPS)
        + segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + SERIAL)
        + segment(0xED, b"Photoshop 3.0\x00" + GPS)
        + segment(0xFE, SERIAL)
        if metadata
        else b""
    )
    return b"\xff\xd8" + JFIF + extra + ICC + TABLES + SCAN


def exif(orientation: int, *, order: str = "MM") -> bytes:
    """An Exif segment as a phone writes it, in either byte order: a first directory naming the phone (its serial
    number, as the camera's make) and the orientation (tag 0x0112, a SHORT), with GPS data after it."""
    endian = ">" if order == "MM" else "<"
    entries = [(0x010F, 2, len(SERIAL), 38), (0x0112, 3, 1, orientation)]
    tiff = order.encode() + struct.pack(f"{endian}HI", 42, 8) + struct.pack(f"{endian}H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack(f"{endian}HH", value, 0) if kind == 3 else struct.pack(f"{endian}I", value)
        tiff += struct.pack(f"{endian}HHI", tag, kind, count) + packed
    tiff += bytes(4) + SERIAL + GPS
    return segment(0xE1, b"Exif\x00\x00" + tiff)


def with_exif(picture: bytes, orientation: int, *, order: str = "MM") -> bytes:
    """A JPEG (``picture``) with a phone's Exif inserted right after its start."""
    return picture[:2] + exif(orientation, order=order) + picture[2:]
