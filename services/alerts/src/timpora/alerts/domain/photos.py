"""A village's photo as it is kept: a JPEG or PNG image, nothing else, without the metadata a phone writes into it.

A phone's photo carries where it was taken (GPS), when, and the phone's make and serial number: the village head's
data, not the report's. Both formats keep such metadata in segments (JPEG) or chunks (PNG) that are not needed to
show the picture, so those are dropped and the image data is kept byte for byte; no image library is needed, and
nothing is decoded. What is not a well-formed JPEG or PNG is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

JPEG = "image/jpeg"
PNG = "image/png"

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_MARK = 0xFF
_START_OF_SCAN = 0xDA
_FIRST_APPLICATION, _LAST_APPLICATION = 0xE0, 0xEF
#: Kept: APP0 (JFIF), APP2 (the ICC colour profile) and APP14 (Adobe: how some JPEGs' colours decode). Every other
#: application segment (APP1: Exif with GPS and XMP; APP13: IPTC; the makers' own) and comments (COM) go.
_KEPT_APPLICATION = frozenset({0xE0, 0xE2, 0xEE})
_COMMENT = 0xFE
#: Markers that stand alone, without a length.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Text (often the software, the author, a location), Exif and the time it was made.
_PNG_DROPPED = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"})


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
        return Photo(_jpeg_without_metadata(content), JPEG)
    if content.startswith(_PNG_SIGNATURE):
        return Photo(_png_without_metadata(content), PNG)
    raise PhotoError("the photo is not a JPEG or PNG image")


def _damaged() -> PhotoError:
    return PhotoError("the photo is damaged (not a whole JPEG or PNG image)")


def _jpeg_without_metadata(content: bytes) -> bytes:
    kept = [_JPEG_START]
    at = len(_JPEG_START)
    while True:
        marker, at = _next_marker(content, at)
        if marker in _STANDALONE:
            kept.append(bytes((_MARK, marker)))
            continue
        end = _segment_end(content, at)
        if marker == _START_OF_SCAN:
            # From here on it is the image itself (and whatever follows it), kept as it is; it must end.
            if _JPEG_END not in content[end:]:
                raise _damaged()
            kept.append(content[at - 2 :])
            return b"".join(kept)
        if not (_FIRST_APPLICATION <= marker <= _LAST_APPLICATION or marker == _COMMENT) or marker in _KEPT_APPLICATION:
            kept.append(content[at - 2 : end])
        at = end


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


def _png_without_metadata(content: bytes) -> bytes:
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
        first = False
        if kind not in _PNG_DROPPED:
            kept.append(content[at:end])
        at = end
        if kind == b"IEND":
            return b"".join(kept)
