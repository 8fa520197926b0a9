"""Real media for the fake providers: a small H.264 MP4 encoded with PyAV and a JPEG
made with Pillow, so whatever consumes a fake's result (the worker, its thumbnails, a
test that decodes the stored video) handles real files, not opaque bytes.

Both are made once per stack (`<state>/fakes/media/`) and then served from disk.
"""

from __future__ import annotations

import io
import tempfile
from functools import cache
from pathlib import Path

import av
from PIL import Image, ImageDraw

from ._files import create_once

# Small and quick to encode, and valid for H.264 (even sides, yuv420p).
WIDTH, HEIGHT, FPS, FRAMES = 160, 96, 12, 18
# The first frame's background: tests recognise it in a thumbnail.
BACKGROUND = (200, 40, 40)


def _frame(index: int) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    # A white square crossing the picture, so the frames really differ.
    x = 8 + index * (WIDTH - 40) // max(FRAMES - 1, 1)
    draw.rectangle((x, HEIGHT // 2 - 12, x + 24, HEIGHT // 2 + 12), fill=(255, 255, 255))
    return image


@cache
def make_sample_mp4() -> bytes:
    """A 1.5 s, 160x96, 12 fps H.264 MP4 (moov first, so it plays while downloading)."""
    # A real file: +faststart moves the moov box by reopening the output, which an
    # in-memory buffer cannot do.
    with tempfile.TemporaryDirectory(prefix="rendio-fake-media-") as folder:
        path = Path(folder) / "video.mp4"
        with av.open(str(path), mode="w", format="mp4",
                     options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for index in range(FRAMES):
                frame = av.VideoFrame.from_image(_frame(index))  # type: ignore[no-untyped-call]
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))  # flush the encoder
        return path.read_bytes()


@cache
def make_sample_jpeg() -> bytes:
    """A JPEG of the video's first frame, as a provider's own thumbnail."""
    out = io.BytesIO()
    _frame(0).save(out, format="JPEG", quality=85)
    return out.getvalue()


def media_dir(state_dir: Path) -> Path:
    return state_dir / "fakes" / "media"


def sample_file(state_dir: Path, name: str) -> bytes:
    """`video.mp4` or `thumbnail.jpg` of the stack, made once under its state dir."""
    makers = {"video.mp4": make_sample_mp4, "thumbnail.jpg": make_sample_jpeg}
    return create_once(media_dir(state_dir) / name, makers[name])
