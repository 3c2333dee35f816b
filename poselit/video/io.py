"""Video files for :mod:`poselit.video`: the codecs of the annotated videos, reading a video's
frames, and writing the annotated video and its JSON lines so that both are whole whenever
the run stops.

Codecs: :data:`CODECS`, tried in order by :func:`video_codec` (``"auto"``: the first that the
installed OpenCV writes and browsers play). Reading: :func:`open_video` (its header's
:class:`VideoInfo` and RGB frames; :class:`VideoReadError` naming a video that is missing,
unreadable or changes frame size). Writing: :class:`VideoOutputs`, under temporary names beside
the destination (:func:`poselit.atomic.temporary_path`), renamed into place at the end;
:func:`poselit.atomic.remove_abandoned_temporaries` removes those that killed runs left.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from poselit.atomic import temporary_path

FOURCC = "mp4v"
"""MPEG-4 Part 2, which every OpenCV build with FFmpeg writes: the annotated videos' last
resort (:data:`CODECS`), and a safe codec for writing test clips."""


@dataclass(frozen=True)
class VideoCodec:
    """A codec of annotated videos: ``name`` (``--video-codec``), OpenCV ``fourcc``, file
    ``suffix``, ``description``, and whether web browsers play it."""

    name: str
    fourcc: str
    suffix: str
    description: str
    browsers: bool


CODECS = (
    VideoCodec("h264", "avc1", ".mp4", "H.264 in MP4", browsers=True),
    VideoCodec("vp8", "VP80", ".webm", "VP8 in WebM", browsers=True),
    VideoCodec("mp4v", FOURCC, ".mp4", "MPEG-4 Part 2 in MP4 (mp4v)", browsers=False),
)
"""The codecs of the annotated videos, in the order ``"auto"`` tries them (:func:`video_codec`).
No VP9: OpenCV's VP9 encoder runs at its slowest setting, about 5 times VP8's time."""

DEFAULT_FPS = 30.0
"""Frame rate assumed for a video whose header gives none (with a warning)."""


class VideoReadError(OSError):
    """A video file is missing, cannot be opened or decoded, or changes frame size."""


class VideoEndedEarly(UserWarning):
    """A video ended before its header's frame count (frames up to there written)."""


@dataclass(frozen=True)
class VideoInfo:
    """A video's frame count (``None``: not in its header), rate, first frame's ``(h, w)``."""

    frames: int | None
    fps: float
    size: tuple[int, int]


# --- codecs -------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 on the null device: FFmpeg prints there, past ``sys.stderr``, that
    an encoder is missing, or that WebM has no codec tags (harmless, at every VP8 video)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def can_write(codec: VideoCodec) -> bool:
    """Whether the installed OpenCV writes ``codec``: two frames written and read back in a
    temporary folder, once per process."""
    with tempfile.TemporaryDirectory() as folder, quiet_stderr():
        path = str(Path(folder) / f"probe{codec.suffix}")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec.fourcc), 10.0, (64, 48))
        for value in (0, 255) if writer.isOpened() else ():
            writer.write(np.full((48, 64, 3), value, np.uint8))
        writer.release()
        capture = cv2.VideoCapture(path)
        readable = capture.read()[0]
        capture.release()
        return readable


def video_codec(name: str = "auto") -> VideoCodec:
    """The codec of :data:`CODECS` called ``name``; ``"auto"``: the first one browsers play
    that the installed OpenCV writes, else ``mp4v``. A ``ValueError`` naming the codec when
    it is unknown or OpenCV cannot write it."""
    if name == "auto":
        return next(codec for codec in CODECS if not codec.browsers or can_write(codec))
    codec = next((codec for codec in CODECS if codec.name == name), None)
    if codec is None or not can_write(codec):
        problem = f"this OpenCV ({cv2.__version__}) cannot write {codec.description}" if codec else "unknown"
        names = ", ".join(c.name for c in CODECS)
        raise ValueError(f"video codec {name!r}: {problem}; expected auto or one of {names}")
    return codec


def output_paths(video: str | os.PathLike, out_dir: str | os.PathLike, codec: VideoCodec) -> tuple[Path, Path]:
    """The annotated video and the JSON lines that :func:`predict_video` writes for ``video``.

    >>> output_paths("in/clip.MOV", "out", CODECS[1])
    (PosixPath('out/clip.webm'), PosixPath('out/clip.jsonl'))
    """
    stem, out = Path(video).stem, Path(out_dir)
    return out / f"{stem}{codec.suffix}", out / f"{stem}.jsonl"


# --- reading ------------------------------------------------------------------------------


def header_counts(capture: cv2.VideoCapture, path: Path) -> tuple[int | None, float]:
    """Frame count (``None``: unknown) and rate of an opened video; an unknown rate is
    :data:`DEFAULT_FPS`, with a warning naming the file."""
    count, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    if not (math.isfinite(fps) and fps > 0):
        warnings.warn(f"{path}: the video gives no frame rate; assuming {DEFAULT_FPS:g} frames/s", stacklevel=2)
        fps = DEFAULT_FPS
    return (int(count) if math.isfinite(count) and count > 0 else None), float(fps)


def read_frames(capture: cv2.VideoCapture, path: Path) -> Iterator[np.ndarray]:
    """The frames of an opened video as ``(H, W, 3)`` RGB arrays, until one cannot be read;
    a frame of another size than the first raises :class:`VideoReadError`."""
    first_size = None
    for index in itertools.count():
        ok, frame = capture.read()
        if not ok:
            return
        first_size = first_size or frame.shape[:2]
        if frame.shape[:2] != first_size:
            raise VideoReadError(
                f"{path}: frame {index} is {frame.shape[1]}x{frame.shape[0]} px, the frames before it "
                f"{first_size[1]}x{first_size[0]}; a video must keep one frame size"
            )
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def open_video(path: Path) -> Iterator[tuple[VideoInfo, Iterator[np.ndarray]]]:
    """The header's :class:`VideoInfo` and the frames (:func:`read_frames`) of a video file,
    released at the end; :class:`VideoReadError` naming it if it is missing or unreadable."""
    if not path.is_file():
        raise VideoReadError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoReadError(f"{path}: cannot open the video (not a video, damaged, or a codec OpenCV lacks)")
        count, fps = header_counts(capture, path)
        frames = read_frames(capture, path)
        first = next(frames, None)
        if first is None:
            raise VideoReadError(f"{path}: the video has no frame that can be decoded")
        yield VideoInfo(count, fps, first.shape[:2]), itertools.chain([first], frames)
    finally:
        capture.release()


# --- writing ------------------------------------------------------------------------------


class VideoOutputs:
    """A video's annotated video and JSON lines, written under temporary names beside them
    (:func:`poselit.atomic.temporary_path`); :meth:`close` moves them into place if a frame
    was written (a video of no frame is no valid file), else removes them."""

    def __init__(self, video: Path, lines: Path, fps: float, size: tuple[int, int], codec: VideoCodec) -> None:
        self.paths = (video, lines)
        self.temporaries = tuple(temporary_path(path, keep_suffix=True) for path in self.paths)
        self.frames = 0
        self.lines = self.temporaries[1].open("w", encoding="utf-8")
        with quiet_stderr():
            fourcc = cv2.VideoWriter_fourcc(*codec.fourcc)
            self.video = cv2.VideoWriter(str(self.temporaries[0]), fourcc, fps, (size[1], size[0]))
        if not self.video.isOpened():
            self.close()
            raise OSError(
                f"{video}: OpenCV cannot write {codec.description} of {size[1]}x{size[0]} px there "
                f"(another codec: {', '.join(c.name for c in CODECS if c != codec)})"
            )

    def write(self, image: np.ndarray, document: dict[str, Any]) -> None:
        """Append one annotated RGB frame and its JSON line (flushed)."""
        self.video.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.lines.write(json.dumps(document) + "\n")
        self.lines.flush()
        self.frames += 1

    def close(self) -> None:
        """Finalise both files and move them into place, or remove them if no frame was written."""
        self.video.release()
        self.lines.close()
        for temporary, path in zip(self.temporaries, self.paths):
            if self.frames:
                os.replace(temporary, path)
            else:
                temporary.unlink(missing_ok=True)

    def __enter__(self) -> VideoOutputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = [
    "CODECS",
    "DEFAULT_FPS",
    "FOURCC",
    "VideoCodec",
    "VideoEndedEarly",
    "VideoInfo",
    "VideoOutputs",
    "VideoReadError",
    "can_write",
    "header_counts",
    "open_video",
    "output_paths",
    "read_frames",
    "video_codec",
]
