"""What is kept of a village's photo: a JPEG or PNG, without the phone's metadata, the picture itself untouched."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import images
from timpora.alerts.domain import photos

LIMIT = 1024 * 1024


def test_a_jpegs_exif_xmp_iptc_and_comment_go_and_its_picture_stays_byte_for_byte() -> None:
    kept = photos.checked(images.jpeg(), max_bytes=LIMIT)

    assert kept.content_type == photos.JPEG
    assert images.GPS not in kept.content
    assert images.SERIAL not in kept.content
    assert kept.content == images.jpeg(metadata=False)


def test_a_pngs_text_exif_and_time_chunks_go_and_its_picture_stays() -> None:
    kept = photos.checked(images.png(), max_bytes=LIMIT)

    assert kept.content_type == photos.PNG
    assert images.GPS not in kept.content
    assert images.SERIAL not in kept.content
    assert b"tIME" not in kept.content
    assert kept.content == images.png(metadata=False)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"GIF89a" + bytes(20), "not a JPEG or PNG"),
        (b"<svg onload=alert(1)>", "not a JPEG or PNG"),
        (b"", "not a JPEG or PNG"),
        (images.jpeg()[:40], "damaged"),
        (images.jpeg()[:-2], "damaged"),  # the scan never ends
        (images.png()[:-12], "damaged"),  # no IEND
        (b"\x89PNG\r\n\x1a\n" + images.png()[8 + 25 :], "damaged"),  # IHDR missing
    ],
)
def test_what_is_not_a_whole_jpeg_or_png_is_refused_with_a_reason(content: bytes, why: str) -> None:
    with pytest.raises(photos.PhotoError, match=why):
        photos.checked(content, max_bytes=LIMIT)


def test_a_photo_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(photos.PhotoError, match="larger than 1 MB"):
        photos.checked(images.png() + bytes(LIMIT), max_bytes=LIMIT)


_METADATA = st.sampled_from([0xE1, 0xE2, 0xE3, 0xE9, 0xED, 0xEE, 0xEF, 0xFE])


@given(
    dropped=st.lists(st.tuples(_METADATA, st.binary(max_size=300)), max_size=6),
    kept_first=st.booleans(),
    # Coded data as a camera writes it: an FF in it is stuffed (FF 00).
    scan=st.binary(max_size=200).map(lambda data: data.replace(b"\xff", b"\xff\x00")),
)
def test_whatever_metadata_segments_a_jpeg_carries_none_is_kept_and_the_rest_is(
    *, dropped: list[tuple[int, bytes]], kept_first: bool, scan: bytes
) -> None:
    metadata = b"".join(images.segment(marker, b"\xaa" + data) for marker, data in dropped)
    head = images.JFIF + images.ICC if kept_first else b""
    tail = images.SCAN[:-2] + scan + b"\xff\xd9"
    content = b"\xff\xd8" + head + metadata + images.TABLES + tail

    kept = photos.checked(content, max_bytes=LIMIT)

    assert kept.content == b"\xff\xd8" + head + images.TABLES + tail


@given(st.binary(max_size=400), st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n"]))
def test_any_bytes_are_kept_cleaned_or_refused_never_anything_else(content: bytes, start: bytes) -> None:
    try:
        kept = photos.checked(start + content, max_bytes=LIMIT)
    except photos.PhotoError:
        return
    assert kept.content.startswith(start)
    assert len(kept.content) <= len(start + content)


def test_whatever_follows_a_jpegs_end_goes_a_trailer_a_second_picture_or_a_video() -> None:
    # A maker's trailer, a multi-picture JPEG's second image with its own Exif, a motion photo's video.
    second = b"\xff\xd8" + images.segment(0xE1, b"Exif\x00\x00" + images.GPS) + images.TABLES + images.SCAN
    video = b"\x00\x00\x00\x18ftypmp42" + images.GPS
    multi = images.segment(0xE2, b"MPF\x00" + images.SERIAL)  # the multi-picture index: APP2, but not a profile

    for after in (b"SEFH" + images.SERIAL, second, video):
        content = images.jpeg()[:-2] + multi + images.jpeg()[-2:] + after
        kept = photos.checked(content, max_bytes=LIMIT)
        assert kept.content == images.jpeg(metadata=False)
        assert images.GPS not in kept.content
        assert images.SERIAL not in kept.content


def test_metadata_between_a_progressive_jpegs_scans_goes_and_every_scan_stays() -> None:
    scan_two = images.segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + b"\x77\xff\xd0\x88"  # with a restart marker
    content = images.jpeg()[:-2] + images.segment(0xE1, b"Exif\x00\x00" + images.GPS) + scan_two + b"\xff\xd9"

    kept = photos.checked(content, max_bytes=LIMIT)

    assert kept.content == images.jpeg(metadata=False)[:-2] + scan_two + b"\xff\xd9"


def test_only_the_chunks_that_make_a_png_picture_are_kept() -> None:
    picture = images.png(metadata=False)
    iend = picture.rindex(b"IEND") - 4
    extra = b"".join(images.png_chunk(kind, images.GPS) for kind in (b"caBX", b"exIf", b"prVt", b"zTXt", b"iTXt"))
    content = picture[:iend] + extra + picture[iend:] + images.png_chunk(b"tEXt", images.SERIAL)

    kept = photos.checked(content, max_bytes=LIMIT)

    assert kept.content == picture


@pytest.mark.parametrize(
    ("width", "height", "depth"),
    [(100_000, 1, 8), (12_000, 12_000, 8), (4_000, 3_000, 16)],
    ids=["a side too long", "too many pixels", "16-bit channels"],
)
def test_a_png_too_large_for_a_browser_to_show_is_refused(width: int, height: int, depth: int) -> None:
    # A small file can say it is a huge picture: a browser would have to hold it all, decoded.
    header = images.png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 6, 0, 0, 0))
    content = b"\x89PNG\r\n\x1a\n" + header + images.png_chunk(b"IDAT", b"") + images.png_chunk(b"IEND", b"")
    with pytest.raises(photos.PhotoError, match="too many pixels"):
        photos.checked(content, max_bytes=LIMIT)


@pytest.mark.parametrize(("height", "width"), [(16, 20_000), (8_000, 8_000)])
def test_a_jpeg_too_large_for_a_browser_to_show_is_refused(height: int, width: int) -> None:
    frame = images.segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00")
    with pytest.raises(photos.PhotoError, match="too many pixels"):
        photos.checked(b"\xff\xd8" + images.JFIF + frame + images.SCAN, max_bytes=LIMIT)


def test_a_phones_usual_photo_is_not_too_large() -> None:
    frame = images.segment(0xC0, b"\x08" + struct.pack(">HH", 6_000, 8_000) + b"\x01\x01\x11\x00")  # 48 MP
    assert photos.checked(b"\xff\xd8" + images.JFIF + frame + images.SCAN, max_bytes=LIMIT).content_type == photos.JPEG


def _orientation_kept(content: bytes) -> int | None:
    """The orientation of the one Exif segment left, if any (and that nothing else is in it)."""
    at = content.find(b"\xff\xe1")
    if at < 0:
        return None
    assert content.count(b"Exif\x00\x00") == 1
    length = int.from_bytes(content[at + 2 : at + 4], "big")
    assert length == 2 + 6 + 8 + 2 + 12 + 4  # the header, one directory of one entry, no next directory
    tiff = content[at + 10 : at + 2 + length]
    tag, kind, count, value = struct.unpack(">HHIH", tiff[10:20])
    assert (tag, kind, count) == (0x0112, 3, 1)
    return int(value)


@given(orientation=st.integers(min_value=0, max_value=12), order=st.sampled_from(["II", "MM"]))
def test_a_phones_orientation_is_carried_over_and_nothing_else_of_its_exif(orientation: int, order: str) -> None:
    kept = photos.checked(images.with_exif(images.jpeg(metadata=False), orientation, order=order), max_bytes=LIMIT)

    assert images.GPS not in kept.content
    assert images.SERIAL not in kept.content
    # Turned or mirrored (2-8): said again, alone; upright (1) or nonsense: no Exif at all, the picture as it was.
    assert _orientation_kept(kept.content) == (orientation if 2 <= orientation <= 8 else None)
    if _orientation_kept(kept.content) is None:
        assert kept.content == images.jpeg(metadata=False)


def test_only_the_first_exif_before_the_picture_gives_the_orientation() -> None:
    picture = images.jpeg(metadata=False)
    # A second Exif (another picture's, or one slipped in later) says nothing of this picture's orientation.
    twice = picture[:2] + images.exif(6) + images.exif(3) + picture[2:]
    assert _orientation_kept(photos.checked(twice, max_bytes=LIMIT).content) == 6
