"""Media checks and thumbnails for generated videos.

`is_mp4` looks only at the first bytes (the ISO BMFF `ftyp` box), so a streamed download
can be refused before it is stored. `thumbnail_from_video` decodes the first frame with
PyAV and encodes it as a JPEG with Pillow; it is CPU work, so async callers run it in a
thread (`asyncio.to_thread`). Media that cannot be decoded is a provider's failure:
`ProviderError(retryable=False, code="invalid_media")`.
"""

from __future__ import annotations

import io

import av
from PIL import Image

from ..errors import ProviderError

__all__ = ["MP4_SNIFF_BYTES", "is_mp4", "thumbnail_from_video"]

# Enough of a file's head for `is_mp4`.
MP4_SNIFF_BYTES = 12
# Brands of the `ftyp` box that are MP4 (ISO/IEC 14496-12/14/15 and what encoders write).
# QuickTime's `qt  ` is a .mov: not what the bucket stores as video/mp4.
_MP4_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9", b"mp41", b"mp42",
    b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"msnv", b"mmp4", b"f4v ", b"3gp4", b"3gp5",
    b"3gp6", b"3g2a",
})


def is_mp4(data: bytes) -> bool:
    """True when `data` starts like an MP4 file (an `ftyp` box with an MP4 brand).

    Only the first `MP4_SNIFF_BYTES` bytes are read. A file can still be corrupt past
    its head; `thumbnail_from_video` decodes a frame and so checks more.
    """
    if len(data) < MP4_SNIFF_BYTES or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[0:4], "big")
    # size 1 means a 64-bit size follows; an ftyp box is never that large.
    return size >= 16 and data[8:12] in _MP4_BRANDS


def thumbnail_from_video(data: bytes, *, max_side: int = 720, quality: int = 85) -> bytes:
    """A JPEG of the first video frame of the MP4 `data`, at most `max_side` pixels wide
    and high (aspect ratio kept; never enlarged)."""
    if not is_mp4(data):
        raise ProviderError("the video is not an MP4 file", retryable=False,
                            code="invalid_media")
    try:
        # format="mp4": the bytes are demuxed as MP4 only, never probed as anything else.
        with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
            if not container.streams.video:
                raise ProviderError("the MP4 file has no video stream", retryable=False,
                                    code="invalid_media")
            frame = next(container.decode(video=0), None)
            if frame is None:
                raise ProviderError("the MP4 file has no decodable frame", retryable=False,
                                    code="invalid_media")
            image = frame.to_image()  # type: ignore[no-untyped-call]  # untyped in av's stubs
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise ProviderError(f"the video could not be decoded: {exc}", retryable=False,
                            code="invalid_media") from exc
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
