"""Poses in a video, :func:`predict_video`: one person tracked from frame to frame, or with a
person detector every person of each frame.

**Tracking** (a :class:`~poselit.predict.Predictor` without a detector; :func:`track`): the
first frame is cropped whole (as :class:`~poselit.predict.Predictor` does without a box),
every later one around the previous frame's pose: the tight box around its
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

**Detection** (``Predictor(detector=...)``, ``poselit predict --detect``; :func:`detect`): each
frame on its own, one pose per person the detector finds, the surest first, at most the
predictor's ``max_people``, each with its ``detection_score``; a frame where it finds nobody is
``lost``. People are not followed from frame to frame, so there is no smoothing (asking for it
is a ``ValueError``, :func:`check_smoothing`).

Outputs, in ``out_dir``, named after the video (``clip.mp4`` -> ``clip.*``):

* ``clip.mp4`` or ``clip.webm``: the frames with the skeletons ("lost" where nobody is
  found), same size and rate, in the first of :data:`CODECS` that the installed OpenCV
  writes and browsers play (H.264 in MP4, else VP8 in WebM: the ``opencv-python`` wheels
  have VP8), else ``mp4v`` in MP4, which browsers do not play; :attr:`VideoResult.codec`;
* ``clip.jsonl``: one JSON document per frame, :func:`~poselit.predict.image_document`'s
  (the image is the video's path; tracking: one person, their box the crop's; detection: the
  people found, each with its ``detection_score``) with the frame's ``frame`` index (from 0),
  ``time`` in seconds and whether it is ``lost``; keypoints are the smoothed ones when
  smoothing is on.

Both files are written under temporary names beside their destination
(``.clip.PID-TOKEN.tmp.*``, :func:`poselit.atomic.temporary_path`) and renamed into place
when the video ends, however it ends: a video that stops early, a frame that fails or an
interrupt leaves both complete and valid up to the last frame processed (none processed: no
file). A killed process leaves only the temporaries; the next run into that folder removes
those whose process is gone (:func:`~poselit.atomic.remove_abandoned_temporaries`) and
**starts the video again** from its first frame, not resuming: a killed video file has no
index to append to, and each frame's crop and smoothing depend on all frames before it.

**Bad input**: a video that is missing or cannot be opened or decoded raises
:class:`VideoReadError` naming it, before anything is written. One that ends before its
header's frame count is processed up to its end, with a :class:`VideoEndedEarly` warning
naming it and both counts (:attr:`VideoResult.ended_early`). A frame whose size differs
from the first's raises :class:`VideoReadError` naming the file and frame, the frames
before it written (one output video has one size; boxes do not carry over between sizes).
OpenCV's FFmpeg reader itself rescales such frames; other sources (image sequences) do not.

The codecs, reading and writing live in :mod:`poselit.video.io`; every name of it used here is
importable from here too.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from poselit.atomic import make_folder, remove_abandoned_temporaries
from poselit.predict import (
    PosePrediction,
    Predictor,
    draw_predictions,
    image_document,
    joints_box,
    smallest_joints_box,
)
from poselit.progress import PROGRESS_MIN_ITEMS, show_progress
from poselit.skeletons import Skeleton
from poselit.smoothing import FilterState, OneEuroFilter
from poselit.video.io import (
    CODECS,
    DEFAULT_FPS,
    FOURCC,
    VideoCodec,
    VideoEndedEarly,
    VideoInfo,
    VideoOutputs,
    VideoReadError,
    can_write,
    open_video,
    output_paths,
    video_codec,
)
from poselit.visualize import draw_label


@dataclass(frozen=True)
class TrackedFrame:
    """One frame's result: the RGB ``image`` of the ``video`` (its name), its ``index`` (from
    0) and ``time`` in s, the ``people``'s poses (tracking: the one person, smoothed when
    smoothing is on; detection: those found) and whether it is ``lost`` (nobody)."""

    image: np.ndarray
    video: str
    index: int
    time: float
    people: tuple[PosePrediction, ...]
    lost: bool


@dataclass(frozen=True)
class VideoResult:
    """What :func:`predict_video` did.

    Args:
        video: The annotated video written.
        frames_file: The JSON lines written, one per frame.
        frames: Frames processed (and written).
        lost: Frames in which nobody was found (tracking: the person was lost).
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
        yield TrackedFrame(frame, name, index, time, (pose,), lost=box is None)


def detect(predictor: Predictor, frames: Iterable[np.ndarray], *, fps: float, name: str = "video") -> Iterator[TrackedFrame]:
    """The people that ``predictor``'s detector finds in each of the RGB ``frames`` (``fps``
    frames per second), each frame on its own (see the module docs)."""
    for index, frame in enumerate(frames):
        people = tuple(predictor.predict(frame, names=[name], progress=False))
        yield TrackedFrame(frame, name, index, index / fps, people, lost=not people)


def check_smoothing(predictor: Predictor, smoothing: OneEuroFilter | None) -> None:
    """A ``ValueError`` when ``smoothing`` is asked of a predictor with a person detector,
    whose people are not followed from frame to frame."""
    if smoothing is not None and getattr(predictor, "detector", None) is not None:
        raise ValueError("smoothing follows the one tracked person of a video; with a person detector "
                         "(--detect) each frame's people are found anew: drop --smooth or --detect")


def frame_document(frame: TrackedFrame, skeleton: Skeleton, model: str | None = None) -> dict[str, Any]:
    """The JSON line of one frame of poses of ``skeleton`` (see the module docs)."""
    document = image_document(frame.video, frame.image.shape[:2], skeleton, frame.people, model)
    return {"frame": frame.index, "time": round(frame.time, 6), "lost": frame.lost, **document}


def annotated_frame(frame: TrackedFrame) -> np.ndarray:
    """The RGB frame with its skeletons, and "lost" written on it where nobody is found."""
    drawn = draw_predictions(frame.image, frame.people)
    return draw_label(drawn, "lost") if frame.lost else drawn


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
    """Track one person through a video file, or with the ``predictor``'s person detector find
    every person of each frame, and write the annotated video and the JSON lines into
    ``out_dir`` (see the module docs).

    Args:
        predictor: The pose model and its settings (flip test, device, padding...; a
            ``detector``: every person of each frame, at most its ``max_people``).
        path: The video file (anything OpenCV's FFmpeg reads).
        out_dir: Folder for the annotated video and ``<stem>.jsonl`` (created if needed;
            :func:`output_paths`); abandoned temporaries of them are removed.
        smoothing: Temporal smoothing of the keypoints (tracking only); ``None``: raw keypoints.
        min_score: Tracking: a joint scoring at least this is confident (scores depend on
            the method; the zoo's are in [0, 1]).
        min_confident: Tracking: fraction of the joints that must be confident for the
            person to count as tracked.
        model: The model's name for the documents' ``model`` field.
        progress: A progress bar over the frames: ``True`` / ``False``; ``None``: for
            long videos (or of unknown length), when stderr is a terminal.
        codec: The annotated video's codec, or its name (:func:`video_codec`; ``"auto"``:
            the best the installed OpenCV writes).

    Returns:
        A :class:`VideoResult`; a :class:`VideoEndedEarly` warning tells when the video ended early.
    """
    path, out = Path(path), Path(out_dir)
    check_smoothing(predictor, smoothing)
    codec = video_codec(codec) if isinstance(codec, str) else codec
    video_path, lines_path = output_paths(path, out, codec)
    if path.resolve() in (video_path.resolve(), lines_path.resolve()):
        raise ValueError(f"writing into {out} would overwrite the input video {path}; choose another folder")
    lost = 0
    with open_video(path) as (info, frames):
        make_folder(out)
        remove_abandoned_temporaries(out)
        shown = show_progress(progress, info.frames or PROGRESS_MIN_ITEMS)
        with VideoOutputs(video_path, lines_path, info.fps, info.size, codec) as outputs, tqdm(
            total=info.frames, desc=path.name, unit="frame", disable=not shown
        ) as bar:
            if getattr(predictor, "detector", None) is not None:
                results = detect(predictor, frames, fps=info.fps, name=str(path))
            else:
                results = track(predictor, frames, fps=info.fps, name=str(path), smoothing=smoothing,
                                min_score=min_score, min_confident=min_confident)
            for frame in results:
                outputs.write(annotated_frame(frame), frame_document(frame, predictor.skeleton, model))
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
    "VideoEndedEarly",
    "VideoInfo",
    "VideoOutputs",
    "VideoReadError",
    "VideoResult",
    "can_write",
    "check_smoothing",
    "detect",
    "frame_document",
    "output_paths",
    "predict_video",
    "track",
    "tracking_box",
    "video_codec",
]
