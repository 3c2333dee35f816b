"""Poses in a video: one person tracked from frame to frame, :func:`predict_video`.

The first frame is cropped whole (as :class:`~poselit.predict.Predictor` does without a
box), every later one around the previous frame's pose: the tight box around its
confident joints (score >= ``min_score``) plus the model's margin (``padding``), as
training crops are built around the annotated joints. The person is **lost** when fewer
than ``min_confident`` (a fraction of the skeleton's joints) are confident, when their box
does not fit the frame (centre outside it, or a side longer than the frame's longer side),
or when it is so small that its crop would magnify the frame more than
:data:`~poselit.predict.MAX_ZOOM` times (typically all joints collapsed onto one spot by a
model that sees no person); the next frame is then cropped whole again. Optional temporal
smoothing (:class:`~poselit.smoothing.OneEuroFilter`, frame ``i`` at ``i / fps`` seconds)
filters the confident joints of tracked frames; it restarts when the person is lost. The
crops follow the raw poses, so smoothing never makes a crop lag behind the person.

Outputs, in ``out_dir``, named after the video (``clip.mp4`` -> ``clip.*``):

* ``clip.mp4`` or ``clip.webm``: the frames with the skeleton ("lost" where the person is
  lost), same size and rate, in the first of :data:`CODECS` that the installed OpenCV
  writes and browsers play (H.264 in MP4, else VP8 in WebM: the ``opencv-python`` wheels
  have VP8), else ``mp4v`` in MP4, which browsers do not play; :attr:`VideoResult.codec`;
* ``clip.jsonl``: one JSON document per frame, :func:`~poselit.predict.image_document`'s
  (the image is the video's path, one person, their box the crop's) with the frame's
  ``frame`` index (from 0), ``time`` in seconds and whether the person is ``lost``;
  keypoints are the smoothed ones when smoothing is on.

Both files are written under temporary names beside their destination (``.clip.*.tmp.*``)
and renamed into place when the video ends, however it ends: a video that stops early, a
frame that fails or an interrupt leaves both complete and valid up to the last frame
processed (none processed: no file). A killed process leaves only the temporaries; the
next run on that video removes them (:func:`remove_abandoned`) and **starts it again**
from its first frame, not resuming: a killed video file has no index to append to, and
each frame's crop and smoothing depend on all frames before it.

**Bad input**: a video that is missing or cannot be opened or decoded raises
:class:`VideoReadError` naming it, before anything is written. One that ends before its
header's frame count is processed up to its end, with a :class:`VideoEndedEarly` warning
naming it and both counts (:attr:`VideoResult.ended_early`). A frame whose size differs
from the first's raises :class:`VideoReadError` naming the file and frame, the frames
before it written (one output video has one size; boxes do not carry over between sizes).
OpenCV's FFmpeg reader itself rescales such frames; other sources (image sequences) do not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import itertools
import json
import math
import os
import secrets
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from poselit.atomic import make_folder
from poselit.predict import (
    PosePrediction,
    Predictor,
    draw_predictions,
    image_document,
    joints_box,
    smallest_joints_box,
)
from poselit.progress import PROGRESS_MIN_ITEMS, show_progress
from poselit.smoothing import FilterState, OneEuroFilter
from poselit.visualize import draw_label

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be removed, which protects a live run's
    fcntl = None  # type: ignore[assignment]

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


@dataclass(frozen=True)
class TrackedFrame:
    """One frame's result: the RGB ``image``, its ``index`` (from 0) and ``time`` in s, the
    ``pose`` (smoothed when smoothing is on) and whether the person is ``lost`` in it."""

    image: np.ndarray
    index: int
    time: float
    pose: PosePrediction
    lost: bool


@dataclass(frozen=True)
class VideoResult:
    """What :func:`predict_video` did.

    Args:
        video: The annotated video written.
        frames_file: The JSON lines written, one per frame.
        frames: Frames processed (and written).
        lost: Frames in which the person was lost.
        expected_frames: The frame count in the video's header (``None``: unknown).
        fps: The frame rate used for times and for the annotated video.
        codec: The annotated video's codec.
    """

    video: Path
    frames_file: Path
    frames: int
    lost: int
    expected_frames: int | None
    fps: float
    codec: VideoCodec

    @property
    def ended_early(self) -> bool:
        """Whether fewer frames could be read than the header announces."""
        return self.expected_frames is not None and self.frames < self.expected_frames


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


# --- tracking -----------------------------------------------------------------------------


def tracking_box(
    keypoints: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    *,
    min_score: float,
    min_confident: float,
    min_side: float,
) -> dict[str, Any] | None:
    """The next frame's person box (``{"center", "scale"}``, tight around the joints scoring
    >= ``min_score``), or ``None`` when the person is lost (see the module docs) in a frame
    of ``size = (height, width)``; ``min_side`` is the smallest box side, px."""
    confident = np.asarray(scores) >= min_score
    if confident.sum() < min_confident * len(confident):
        return None
    return joints_box(keypoints, confident, size, min_side=min_side)


def track(
    predictor: Predictor,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    name: str = "video",
    smoothing: OneEuroFilter | None = None,
    min_score: float = 0.3,
    min_confident: float = 0.5,
) -> Iterator[TrackedFrame]:
    """One person followed through RGB ``frames`` (``fps`` frames per second), see the
    module docs; ``name`` is the video's name in the poses and in errors."""
    box, state = None, FilterState.empty(predictor.skeleton.num_joints)
    min_side = smallest_joints_box(predictor.model.input_size, predictor.padding)
    rules = {"min_score": min_score, "min_confident": min_confident, "min_side": min_side}
    for index, frame in enumerate(frames):
        pose = predictor.predict(frame, box=box, names=[name], progress=False)[0]
        box = tracking_box(pose.keypoints, pose.scores, frame.shape[:2], **rules)
        time = index / fps
        if box is None:  # lost: the next track starts afresh
            state = FilterState.empty(len(pose.scores))
        elif smoothing is not None:
            keypoints, state = smoothing.step(state, pose.keypoints, time, pose.scores >= min_score)
            pose = dataclasses.replace(pose, keypoints=keypoints.astype(np.float32))
        yield TrackedFrame(image=frame, index=index, time=time, pose=pose, lost=box is None)


def frame_document(frame: TrackedFrame, model: str | None = None) -> dict[str, Any]:
    """The JSON line of one frame (see the module docs)."""
    pose = frame.pose
    document = image_document(pose.image, pose.image_size, pose.skeleton, [pose], model)
    return {"frame": frame.index, "time": round(frame.time, 6), "lost": frame.lost, **document}


def annotated_frame(frame: TrackedFrame) -> np.ndarray:
    """The RGB frame with its skeleton, and "lost" written on it where the person is lost."""
    drawn = draw_predictions(frame.image, [frame.pose])
    return draw_label(drawn, "lost") if frame.lost else drawn


# --- writing ------------------------------------------------------------------------------


def lock(file: Any) -> bool:
    """Take an open file's exclusive lock without waiting: ``False`` when another process
    holds it (until it ends, however: ``SIGKILL`` too); always ``True`` without ``fcntl``."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_abandoned(lines: Path) -> list[Path]:
    """Remove the temporaries that killed runs left of a video's outputs (``lines``: its JSON
    lines), those of each unlocked lines temporary (:class:`VideoOutputs` locks its own)."""
    stem, removed = glob.escape(lines.stem), []
    for candidate in lines.parent.glob(f".{stem}.{'[0-9a-f]' * 8}.tmp.jsonl"):
        with contextlib.suppress(OSError), candidate.open("rb") as file:  # Windows: an open file stays
            if lock(file):
                token = candidate.name[len(lines.stem) + 2 :].split(".")[0]
                for temporary in lines.parent.glob(f".{stem}.{token}.tmp.*"):
                    temporary.unlink()
                    removed.append(temporary)
    return removed


class VideoOutputs:
    """A video's annotated video and JSON lines, written under temporary names beside them
    (the lines locked, :func:`remove_abandoned`); :meth:`close` moves them into place if a
    frame was written (a video of no frame is no valid file), else removes them."""

    def __init__(self, video: Path, lines: Path, fps: float, size: tuple[int, int], codec: VideoCodec) -> None:
        self.paths = (video, lines)
        token = secrets.token_hex(4)  # the suffix stays last: OpenCV picks the container by it
        self.temporaries = tuple(p.with_name(f".{p.stem}.{token}.tmp{p.suffix}") for p in self.paths)
        self.frames = 0
        self.lines = self.temporaries[1].open("w", encoding="utf-8")
        lock(self.lines)
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


def predict_video(
    predictor: Predictor,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    smoothing: OneEuroFilter | None = None,
    min_score: float = 0.3,
    min_confident: float = 0.5,
    model: str | None = None,
    progress: bool | None = None,
    codec: VideoCodec | str = "auto",
) -> VideoResult:
    """Track one person through a video file and write the annotated video and the JSON
    lines into ``out_dir`` (see the module docs).

    Args:
        predictor: The pose model and its settings (flip test, device, padding...).
        path: The video file (anything OpenCV's FFmpeg reads).
        out_dir: Folder for the annotated video and ``<stem>.jsonl`` (created if needed;
            :func:`output_paths`); abandoned temporaries of them are removed.
        smoothing: Temporal smoothing of the keypoints; ``None``: raw keypoints.
        min_score: A joint scoring at least this is confident (scores depend on the
            method; the zoo's are in [0, 1]).
        min_confident: Fraction of the joints that must be confident for the person to
            count as tracked.
        model: The model's name for the documents' ``model`` field.
        progress: A progress bar over the frames: ``True`` / ``False``; ``None``: for
            long videos (or of unknown length), when stderr is a terminal.
        codec: The annotated video's codec, or its name (:func:`video_codec`; ``"auto"``:
            the best the installed OpenCV writes).

    Returns:
        A :class:`VideoResult`; a :class:`VideoEndedEarly` warning tells when the video ended early.
    """
    path, out = Path(path), Path(out_dir)
    codec = video_codec(codec) if isinstance(codec, str) else codec
    video_path, lines_path = output_paths(path, out, codec)
    if path.resolve() in (video_path.resolve(), lines_path.resolve()):
        raise ValueError(f"writing into {out} would overwrite the input video {path}; choose another folder")
    lost = 0
    with open_video(path) as (info, frames):
        make_folder(out)
        remove_abandoned(lines_path)
        shown = show_progress(progress, info.frames or PROGRESS_MIN_ITEMS)
        with VideoOutputs(video_path, lines_path, info.fps, info.size, codec) as outputs, tqdm(
            total=info.frames, desc=path.name, unit="frame", disable=not shown
        ) as bar:
            tracked = track(
                predictor, frames, fps=info.fps, name=str(path),
                smoothing=smoothing, min_score=min_score, min_confident=min_confident,
            )
            for frame in tracked:
                outputs.write(annotated_frame(frame), frame_document(frame, model))
                lost += frame.lost
                bar.update()
    result = VideoResult(video_path, lines_path, outputs.frames, lost, info.frames, info.fps, codec)
    if result.ended_early:
        warnings.warn(
            f"{path}: the video ended after {result.frames} of the {info.frames} frames its header "
            f"announces; wrote those {result.frames} to {video_path} and {lines_path}", VideoEndedEarly, stacklevel=2
        )
    return result


__all__ = [
    "CODECS",
    "DEFAULT_FPS",
    "FOURCC",
    "TrackedFrame",
    "VideoCodec",
    "VideoInfo",
    "VideoEndedEarly",
    "VideoOutputs",
    "VideoReadError",
    "VideoResult",
    "can_write",
    "frame_document",
    "output_paths",
    "predict_video",
    "remove_abandoned",
    "track",
    "tracking_box",
    "video_codec",
]
