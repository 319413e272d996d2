"""A village's photo as it is kept: one JPEG or PNG image, nothing else, without the metadata a phone writes into it.

A phone's photo carries where it was taken (GPS), when, and the phone's make and serial number: the village head's
data, not the report's. It can carry more than the picture, too: a second picture with its own Exif (multi-picture
JPEG), a maker's trailer or a whole video after the image's end (motion photos). So what is kept is built up from
what is allowed, never by taking out what is known to be bad:

- JPEG: the segments before and between the scans except application segments and comments (APP0/JFIF, the ICC
  colour profile in APP2 and Adobe's APP14 stay, since they change how the picture looks), each scan's coded data,
  and the first end-of-image marker: anything after it goes. Of the Exif, one value is carried over, into an Exif
  segment of our own that holds nothing else: the orientation, without which a photo taken upright shows on its side.
- PNG: only the chunks that make the picture (an allowlist), up to IEND: text, Exif, provenance and private chunks go.

The picture's own bytes are kept as they are; nothing is decoded and no image library is needed. A picture that
says it is larger than :data:`MAX_SIDE` pixels on a side is refused: it could exhaust the memory of the officer's
browser that shows it. What is not a well-formed JPEG or PNG is refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

JPEG = "image/jpeg"
PNG = "image/png"
#: The longest side a photo may have, in pixels (a phone's is 4,000 to 8,000), and the most pixels in all (a 200 MP
#: phone camera's is 16,320 x 12,240; its usual photo 50 MP at most): what the officer's browser must hold decoded.
MAX_SIDE = 16_384
MAX_PIXELS = 50_000_000
#: The deepest PNG channel kept: 16-bit channels double what a browser must hold, and no phone writes them.
MAX_PNG_BITS = 8

_MARK = 0xFF
_JPEG_START = b"\xff\xd8"
_END_OF_IMAGE = 0xD9
_START_OF_SCAN = 0xDA
#: Markers that stand alone, without a length: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_FIRST_APPLICATION, _LAST_APPLICATION = 0xE0, 0xEF
_COMMENT = 0xFE
_EXIF_MARKER = 0xE1
_EXIF = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112
_SHORT = 3
#: The orientations that turn or mirror the picture (1 is upright as stored: nothing to carry over).
_TURNED = range(2, 9)
#: The most IFD0 entries read looking for the orientation (a camera writes a dozen or two).
_MAX_ENTRIES = 512
#: The application segments kept, by marker and how their data begins.
_KEPT_APPLICATION = ((0xE0, b"JFIF\x00"), (0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe"))
#: Start-of-frame markers (they give the picture's size): C0-CF but DHT (C4), JPG (C8) and DAC (CC).
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The chunks that make a PNG's picture (critical ones, transparency, colour and pixel size), and nothing else.
_PNG_KEPT = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"bKGD", b"pHYs"}
)


class PhotoError(ValueError):
    """Why a photo is refused, in words its sender can act on (never its bytes)."""


@dataclass(frozen=True, slots=True)
class Photo:
    content: bytes
    content_type: str


def checked(content: bytes, *, max_bytes: int) -> Photo:
    """``content`` as it is kept, or :class:`PhotoError`: too large, not a JPEG or PNG, or damaged."""
    if len(content) > max_bytes:
        raise PhotoError(f"the photo is larger than {max_bytes // (1024 * 1024)} MB; send a smaller one")
    if content.startswith(_JPEG_START):
        return Photo(_jpeg_picture(content), JPEG)
    if content.startswith(_PNG_SIGNATURE):
        return Photo(_png_picture(content), PNG)
    raise PhotoError("the photo is not a JPEG or PNG image")


def _damaged() -> PhotoError:
    return PhotoError("the photo is damaged (not a whole JPEG or PNG image)")


def _too_large() -> PhotoError:
    return PhotoError("the photo has too many pixels to be shown safely; send a smaller one")


def _check_pixels(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise _too_large()


def _jpeg_picture(content: bytes) -> bytes:
    kept = [_JPEG_START]
    at = len(_JPEG_START)
    framed = oriented = False
    while True:
        marker, at = _next_marker(content, at)
        if marker == _END_OF_IMAGE:
            if not framed:
                raise _damaged()
            kept.append(bytes((_MARK, marker)))
            return b"".join(kept)  # whatever follows the picture's end (a trailer, a second picture, a video) goes
        if marker in _STANDALONE:
            kept.append(bytes((_MARK, marker)))
            continue
        end = _segment_end(content, at)
        segment = content[at - 2 : end]
        if marker in _FRAMES:
            _check_size(content, at)
            framed = True
        if marker == _START_OF_SCAN:
            scan_end = _scan_end(content, end)
            kept.append(segment + content[end:scan_end])
            at = scan_end
            continue
        data = content[at + 2 : end]
        if marker == _EXIF_MARKER and data.startswith(_EXIF) and not (framed or oriented):
            # The first Exif, before the picture: its orientation alone, in a segment of our own.
            oriented = True
            if (orientation := _orientation(data[len(_EXIF) :])) is not None:
                kept.append(_orientation_segment(orientation))
        elif _kept_segment(marker, data):
            kept.append(segment)
        at = end


def _orientation(tiff: bytes) -> int | None:
    """The orientation an Exif's TIFF structure gives in its first directory (IFD0), if it turns or mirrors the
    picture; None for anything else (no such entry, another type, a value out of range, a damaged structure)."""
    order: Literal["little", "big"] | None = {b"II": "little", b"MM": "big"}.get(tiff[:2])  # type: ignore[assignment]
    if order is None or len(tiff) < 8 or int.from_bytes(tiff[2:4], order) != 42:  # noqa: PLR2004 - TIFF's header
        return None
    directory = int.from_bytes(tiff[4:8], order)
    if directory + 2 > len(tiff):
        return None
    for number in range(min(int.from_bytes(tiff[directory : directory + 2], order), _MAX_ENTRIES)):
        entry = directory + 2 + 12 * number  # tag (2), type (2), count (4), value (4)
        if entry + 12 > len(tiff):
            return None
        if int.from_bytes(tiff[entry : entry + 2], order) != _ORIENTATION_TAG:
            continue
        kind, count = (
            int.from_bytes(tiff[entry + 2 : entry + 4], order),
            int.from_bytes(tiff[entry + 4 : entry + 8], order),
        )
        value = int.from_bytes(tiff[entry + 8 : entry + 10], order)
        return value if kind == _SHORT and count == 1 and value in _TURNED else None
    return None


def _orientation_segment(orientation: int) -> bytes:
    """An Exif segment that says the orientation and nothing else: a big-endian TIFF header, one directory of one
    entry (orientation, a SHORT), no next directory."""
    tiff = b"MM\x00\x2a" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")
    tiff += struct.pack(">HHIHH", _ORIENTATION_TAG, _SHORT, 1, orientation, 0) + bytes(4)
    data = _EXIF + tiff
    return bytes((_MARK, _EXIF_MARKER)) + (len(data) + 2).to_bytes(2, "big") + data


def _kept_segment(marker: int, data: bytes) -> bool:
    if marker == _COMMENT:
        return False
    if _FIRST_APPLICATION <= marker <= _LAST_APPLICATION:
        return any(marker == kept and data.startswith(start) for kept, start in _KEPT_APPLICATION)
    return True


def _next_marker(content: bytes, at: int) -> tuple[int, int]:
    """The marker at ``at`` (FF, any FF fill bytes, the marker) and where what follows it starts."""
    if at >= len(content) or content[at] != _MARK:
        raise _damaged()
    while at < len(content) and content[at] == _MARK:
        at += 1
    if at >= len(content):
        raise _damaged()
    return content[at], at + 1


def _segment_end(content: bytes, at: int) -> int:
    """Where the segment whose length starts at ``at`` ends: the length counts its own two bytes."""
    if at + 2 > len(content):
        raise _damaged()
    length = int.from_bytes(content[at : at + 2], "big")
    if length < 2 or at + length > len(content):  # noqa: PLR2004 - the length's own two bytes
        raise _damaged()
    return at + length


def _scan_end(content: bytes, at: int) -> int:
    """Where a scan's coded data, starting at ``at``, ends: at the first marker that is neither a stuffed FF (FF 00)
    nor a restart marker (FF D0-D7), which belong to the data."""
    while True:
        found = content.find(b"\xff", at)
        if found < 0 or found + 1 >= len(content):
            raise _damaged()
        following = content[found + 1]
        if following == 0 or 0xD0 <= following <= 0xD7 or following == _MARK:  # noqa: PLR2004 - RST0-RST7
            at = found + 1 if following == _MARK else found + 2
            continue
        return found


def _check_size(content: bytes, at: int) -> None:
    # A frame: length (2), precision (1), height (2), width (2).
    if at + 7 > len(content):
        raise _damaged()
    height, width = int.from_bytes(content[at + 3 : at + 5], "big"), int.from_bytes(content[at + 5 : at + 7], "big")
    _check_pixels(width, height)


def _png_picture(content: bytes) -> bytes:
    kept = [_PNG_SIGNATURE]
    at = len(_PNG_SIGNATURE)
    first = True
    while True:
        if at + 8 > len(content):
            raise _damaged()
        length, kind = int.from_bytes(content[at : at + 4], "big"), content[at + 4 : at + 8]
        end = at + 12 + length  # length, type, data, CRC
        if end > len(content) or (first and kind != b"IHDR"):
            raise _damaged()
        if first:
            if length < 13:  # noqa: PLR2004 - IHDR: width, height, depth, colour, compression, filter, interlace
                raise _damaged()
            width, height = (
                int.from_bytes(content[at + 8 : at + 12], "big"),
                int.from_bytes(content[at + 12 : at + 16], "big"),
            )
            _check_pixels(width, height)
            if content[at + 16] > MAX_PNG_BITS:
                raise _too_large()
        first = False
        if kind in _PNG_KEPT:
            kept.append(content[at:end])
        at = end
        if kind == b"IEND":
            return b"".join(kept)  # anything after the picture's end goes
