"""Video prediction: tracking on a generated moving figure, the files written, bad videos."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import cv2
import numpy as np
import pytest
import torch

from poselit.cli import main
from poselit.geometry import PIXEL_STD
from poselit.data.synthetic import random_pose, render_figure
from poselit.predict import PosePrediction, Predictor, person_box, whole_image_box
from poselit.skeletons import LSP
from poselit.smoothing import OneEuroFilter
from poselit.video import (
    CODECS,
    FOURCC,
    VideoReadError,
    VideoResult,
    can_write,
    predict_video,
    track,
    tracking_box,
    video_codec,
)
from tiny_models import TinyHeatmapModel

CODEC = video_codec()
"""The annotated videos' codec here (probed now, before any test patches ``cv2.VideoCapture``)."""
VIDEO = f"clip{CODEC.suffix}"
"""The annotated video written for ``clip.*``."""

HEIGHT, WIDTH, FRAMES, FPS = 72, 128, 24, 25.0
STEP = 3.0
"""The figure moves right by this many px per frame."""


def walking_figure(frames: int = FRAMES, hidden: tuple[int, ...] = ()) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """BGR frames of a stick figure walking right, and its true (14, 2) joints per frame
    (``None`` on the ``hidden`` frames, which show the background only)."""
    rng = np.random.default_rng(0)
    start = random_pose(rng, HEIGHT, WIDTH) - [(frames - 1) * STEP / 2, 0]
    poses = [None if t in hidden else start + [t * STEP, 0] for t in range(frames)]
    none = np.ones(LSP.num_joints, bool)
    images = [render_figure(start if p is None else p, none if p is None else ~none, rng, HEIGHT, WIDTH) for p in poses]
    return images, poses


def write_video(path: Path, images: list[np.ndarray], fourcc: str = FOURCC) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (images[0].shape[1], images[0].shape[0]))
    for image in images:
        writer.write(image)
    writer.release()
    return path


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def dead_process_id() -> int:
    """The process id of a process that has ended (a killed run's, for its temporaries)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class CropStub:
    """A perfect model that sees only its crop, to test the tracking around it: the true
    joints inside the crop (score 0.9), the crop's centre for those outside (score 0.05).
    Records the crops (``center``, ``side`` in px) it was given."""

    skeleton = LSP
    padding = 1.25
    model = SimpleNamespace(input_size=(64, 64))

    def __init__(self, poses: list[np.ndarray | None]) -> None:
        self.poses = iter(poses)
        self.crops: list[tuple[np.ndarray, float]] = []

    def predict(self, image, box=None, *, names, progress) -> list[PosePrediction]:
        size = image.shape[:2]
        center, scale = whole_image_box(size, self.padding) if box is None else (np.asarray(box["center"]), box["scale"])
        side = PIXEL_STD * scale * self.padding
        self.crops.append((center, side))
        truth = next(self.poses)
        seen = np.zeros(LSP.num_joints, bool) if truth is None else (np.abs(truth - center) <= side / 2).all(axis=1)
        keypoints = np.where(seen[:, None], np.zeros((LSP.num_joints, 2)) if truth is None else truth, center)
        return [
            PosePrediction(
                keypoints=keypoints.astype(np.float32), scores=np.where(seen, 0.9, 0.05).astype(np.float32),
                skeleton=LSP, center=np.asarray(center, np.float32), scale=float(scale), image=names[0],
                image_index=0, image_size=size, affine=np.eye(2, 3, dtype=np.float32),
            )
        ]


def test_the_crop_follows_the_moving_figure_and_falls_back_to_the_whole_frame_when_lost():
    images, poses = walking_figure(hidden=(10, 11))
    stub = CropStub(poses)
    frames = list(track(stub, [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images], fps=FPS))
    assert [f.lost for f in frames] == [t in (10, 11) for t in range(FRAMES)]
    whole_center, whole_scale = whole_image_box((HEIGHT, WIDTH), stub.padding)
    for t, (center, side) in enumerate(stub.crops):
        if t in (0, 11, 12):  # the first frame, and those after a lost one: the whole frame
            np.testing.assert_allclose(center, whole_center)
            assert side == pytest.approx(PIXEL_STD * whole_scale * stub.padding)
        else:  # around the previous frame's joints, padded: one step behind the figure
            previous = poses[t - 1]
            np.testing.assert_allclose(center, (previous.min(0) + previous.max(0)) / 2, atol=1e-4)
            assert side == pytest.approx((previous.max(0) - previous.min(0)).max() * stub.padding, rel=1e-5)
    for frame, truth in zip(frames, poses):
        if truth is not None:  # every joint found, the figure crossing 69 px of the frame
            np.testing.assert_allclose(frame.people[0].keypoints, truth, atol=1e-4)
    assert frames[-1].time == pytest.approx((FRAMES - 1) / FPS)


def test_smoothing_filters_tracked_frames_and_restarts_after_a_loss():
    images, poses = walking_figure(hidden=(10,))
    rgb = [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images]
    frames = list(track(CropStub(poses), rgb, fps=FPS, smoothing=OneEuroFilter(min_cutoff=0.5, beta=0.0)))
    errors = [np.abs(f.people[0].keypoints - truth).max() if truth is not None else None for f, truth in zip(frames, poses)]
    assert errors[0] < 1e-4 and errors[11] < 1e-4  # first frame of a track: the raw joints
    assert 0.5 < errors[5] < STEP * 5  # a slow filter lags behind the moving figure
    assert errors[10] is None and frames[10].lost


def test_tracking_box_rules():
    keypoints = np.array([[10.0, 20.0], [30.0, 60.0], [500.0, 500.0]])
    scores = np.array([0.9, 0.8, 0.1])
    rules = {"min_score": 0.3, "min_confident": 0.5, "min_side": 10.0}
    box = tracking_box(keypoints, scores, (100, 100), **rules)
    assert box == {"center": [20.0, 40.0], "scale": pytest.approx(40 / PIXEL_STD)}
    assert tracking_box(keypoints, np.array([0.9, 0.1, 0.1]), (100, 100), **rules) is None  # 1 of 3 confident
    assert tracking_box(keypoints + [200, 0], scores, (100, 100), **rules) is None  # the centre left the frame
    assert tracking_box(keypoints * [10, 1], scores, (100, 100), **rules) is None  # wider than the frame
    collapsed = np.array([[50.0, 50.0], [55.0, 52.0], [0.0, 0.0]])  # a 5 px box
    assert tracking_box(collapsed, scores, (100, 100), **rules) is None


@pytest.fixture(scope="module")
def predictor() -> Iterator[Predictor]:
    """An untrained tiny model (its poses are noise: these tests check the files), run on
    one intra-op thread: with more, small tensors spin-wait on the shared cores (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield Predictor(TinyHeatmapModel(skeleton="lsp", input_size=(64, 64)))
    torch.set_num_threads(threads)


def test_predict_video_writes_an_annotated_video_and_one_json_line_per_frame(tmp_path, predictor):
    clip = write_video(tmp_path / "clip.mp4", walking_figure()[0])
    result = predict_video(predictor, clip, tmp_path / "out", smoothing=OneEuroFilter(), model="tiny")
    assert result.video == tmp_path / "out" / VIDEO and result.frames_file == tmp_path / "out" / "clip.jsonl"
    assert result.codec == CODEC
    assert (result.frames, result.expected_frames, result.fps, result.ended_early) == (FRAMES, FRAMES, FPS, False)
    assert count_frames(result.video) == FRAMES
    capture = cv2.VideoCapture(str(result.video))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (WIDTH, HEIGHT)
    capture.release()
    lines = read_lines(result.frames_file)
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert lines[3]["time"] == pytest.approx(3 / FPS)
    assert sum(line["lost"] for line in lines) == result.lost
    line = lines[0]
    assert (line["image"], line["width"], line["height"], line["model"]) == (str(clip), WIDTH, HEIGHT, "tiny")
    assert line["skeleton"]["joints"] == list(LSP.joints) and len(line["people"]) == 1
    person = line["people"][0]
    assert len(person["keypoints"]) == len(person["scores"]) == LSP.num_joints and set(person["box"]) == {"center", "scale"}
    assert "detection_score" not in person  # tracked, not detected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["clip.jsonl", VIDEO])  # no temporaries left


def test_a_video_that_ends_early_is_written_up_to_its_end(tmp_path, predictor):
    clip = write_video(tmp_path / "clip.avi", walking_figure()[0], "MJPG")
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # the header still announces every frame
    readable = count_frames(clip)
    assert 0 < readable < FRAMES
    with pytest.warns(UserWarning, match=rf"clip.avi: the video ended after {readable} of the {FRAMES} frames"):
        result = predict_video(predictor, clip, tmp_path / "out")
    assert result.ended_early and result.frames == readable
    assert count_frames(result.video) == readable and len(read_lines(result.frames_file)) == readable


class FailingAt:
    """A predictor that fails on its ``frame``-th call (from 0)."""

    def __init__(self, predictor: Predictor, frame: int) -> None:
        self.predictor, self.calls, self.frame = predictor, 0, frame

    def __getattr__(self, name: str) -> object:
        return getattr(self.predictor, name)

    def predict(self, *args, **kwargs) -> list[PosePrediction]:
        self.calls += 1
        if self.calls > self.frame:
            raise RuntimeError("out of memory")
        return self.predictor.predict(*args, **kwargs)


@pytest.mark.parametrize("failing", [0, 3])
def test_a_failing_frame_leaves_the_frames_before_it_complete(tmp_path, predictor, failing):
    clip = write_video(tmp_path / "clip.mp4", walking_figure(frames=6)[0])
    with pytest.raises(RuntimeError, match="out of memory"):
        predict_video(FailingAt(predictor, failing), clip, tmp_path / "out")
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    if failing == 0:  # nothing to keep: an empty video would be no valid file
        assert written == []
    else:
        assert written == sorted(["clip.jsonl", VIDEO])
        assert count_frames(tmp_path / "out" / VIDEO) == len(read_lines(tmp_path / "out" / "clip.jsonl")) == failing


def test_videos_that_cannot_be_opened_are_named_and_nothing_is_written(tmp_path, predictor):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    for path, message in [("junk.mp4", "cannot open"), ("empty.mp4", "cannot open"), ("missing.mp4", "no such video")]:
        with pytest.raises(VideoReadError, match=rf"{path}: {message}"):
            predict_video(predictor, tmp_path / path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def clip_halving_at(frame: int, frames: int, folder: Path, monkeypatch) -> Path:
    """``folder/clip.mp4``, which OpenCV opens as ``frames`` frames of the walking figure
    whose size halves from ``frame`` on: an image sequence behind a patched
    ``cv2.VideoCapture`` (OpenCV's FFmpeg reader would rescale the frames of a real video)."""
    images = walking_figure(frames=frames)[0]
    images[frame:] = [cv2.resize(i, (WIDTH // 2, HEIGHT // 2)) for i in images[frame:]]
    for t, image in enumerate(images):
        cv2.imwrite(str(folder / f"frame_{t:03d}.png"), image)
    opener = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda path: opener(str(folder / "frame_%03d.png"), cv2.CAP_IMAGES))
    (folder / "clip.mp4").touch()
    return folder / "clip.mp4"


def test_a_frame_size_change_stops_with_the_frames_before_it_written(tmp_path, predictor, monkeypatch):
    clip_halving_at(3, 5, tmp_path, monkeypatch)
    with pytest.warns(UserWarning, match="clip.mp4: the video gives no frame rate"):
        with pytest.raises(VideoReadError, match=r"clip.mp4: frame 3 is 64x36 px, the frames before it 128x72"):
            predict_video(predictor, tmp_path / "clip.mp4", tmp_path / "out")
    monkeypatch.undo()
    assert count_frames(tmp_path / "out" / VIDEO) == 3
    assert [line["frame"] for line in read_lines(tmp_path / "out" / "clip.jsonl")] == [0, 1, 2]


def test_outputs_never_overwrite_the_input(tmp_path, predictor):
    clip = write_video(tmp_path / VIDEO, walking_figure(frames=2)[0], CODEC.fourcc)
    with pytest.raises(ValueError, match="would overwrite the input video"):
        predict_video(predictor, clip, tmp_path)


DETECTED = ([[10, 10, 30, 50], [60, 5, 40, 60], [90, 20, 20, 40]], [0.5, 0.8, 0.3])
"""What :class:`ScriptedDetector` finds: boxes ``[x, y, w, h]`` and scores."""


class ScriptedDetector:
    """A person detector that finds :data:`DETECTED` in every image but its ``nobody``-th (from 1)."""

    def __init__(self, nobody: int) -> None:
        self.nobody, self.calls = nobody, 0

    def __call__(self, rgb: np.ndarray):
        self.calls += 1
        return ([], []) if self.calls == self.nobody else DETECTED


@pytest.fixture(scope="module")
def tiny_model() -> TinyHeatmapModel:
    torch.manual_seed(0)
    return TinyHeatmapModel(skeleton="lsp", input_size=(64, 64))


def test_with_a_detector_each_frame_gives_one_pose_per_detected_person(tmp_path, tiny_model):
    clip = write_video(tmp_path / "clip.mp4", walking_figure(frames=5)[0])
    detector = ScriptedDetector(nobody=3)
    detecting = Predictor(tiny_model, detector=detector, max_people=2, runtime="torch")
    result = predict_video(detecting, clip, tmp_path / "out", model="tiny")
    lines = read_lines(result.frames_file)
    assert detector.calls == result.frames == count_frames(result.video) == 5
    assert [len(line["people"]) for line in lines] == [2, 2, 0, 2, 2]  # the 2 surest of 3; nobody in frame 2
    assert [line["lost"] for line in lines] == [False, False, True, False, False] and result.lost == 1
    surest = [person_box(DETECTED[0][i], (HEIGHT, WIDTH))[0].tolist() for i in (1, 0)]
    for line in lines:
        assert [person["detection_score"] for person in line["people"]] == pytest.approx([0.8, 0.5][: len(line["people"])])
        for person, center in zip(line["people"], surest):
            assert person["box"]["center"] == pytest.approx(center, abs=0.01)
    assert (lines[2]["image"], lines[2]["width"], lines[2]["skeleton"]["joints"]) == (str(clip), WIDTH, list(LSP.joints))
    with pytest.raises(ValueError, match=r"^smoothing follows the one tracked person of a video; with a person detector"):
        predict_video(detecting, clip, tmp_path / "smoothed", smoothing=OneEuroFilter())
    assert not (tmp_path / "smoothed").exists()  # refused before anything is written


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli_predictor(predictor, monkeypatch) -> list[dict]:
    """``poselit predict`` runs the tiny ``predictor`` whatever ``--model`` names; returns
    the options the command asked ``Predictor.from_zoo`` for."""
    calls: list[dict] = []

    def from_zoo(cls, name, **options):
        calls.append({"name": name, **options})
        return predictor

    monkeypatch.setattr(Predictor, "from_zoo", classmethod(from_zoo))
    return calls


def predict_cli(*argv: str) -> int:
    return main(["predict", *argv, "--model", "tiny", "--device", "cpu"])


def test_cli_predict_on_a_video_and_an_image_writes_both_kinds_of_output(tmp_path, cli_predictor, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_video(inputs / "clip.MP4", walking_figure()[0])
    cv2.imwrite(str(inputs / "photo.png"), walking_figure(frames=1)[0][0])
    out = tmp_path / "out"
    assert predict_cli(str(inputs), "--out", str(out), "--smooth") == 0  # a folder: its images and videos
    assert sorted(p.name for p in out.iterdir()) == sorted(["clip.jsonl", VIDEO, "photo.json", "photo.png"])
    assert count_frames(out / VIDEO) == FRAMES
    lines = read_lines(out / "clip.jsonl")
    assert [line["frame"] for line in lines] == list(range(FRAMES)) and lines[0]["model"] == "tiny"
    captured = capsys.readouterr()
    assert f"{inputs / 'clip.MP4'}: {FRAMES} frames (person lost in " in captured.out
    assert f"wrote {out / VIDEO} ({CODEC.description}" in captured.out and f"and {out / 'clip.jsonl'}" in captured.out
    assert "clip.MP4" in captured.err and f"{FRAMES}/{FRAMES}" in captured.err  # the progress bar
    assert cli_predictor[0]["name"] == "tiny" and cli_predictor[0]["refine"] is False


def test_cli_detect_finds_the_people_of_images_and_video_frames(tmp_path, tiny_model, monkeypatch, capsys):
    detector = ScriptedDetector(nobody=3)  # the image, then frames 0, 1 (nobody), 2, 3
    monkeypatch.setattr("poselit.detect.default_detector", lambda **options: detector)
    monkeypatch.setattr(Predictor, "from_zoo", classmethod(lambda cls, name, **options: cls(tiny_model, **{**options, "runtime": "torch"})))
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    write_video(inputs / "clip.mp4", walking_figure(frames=4)[0])
    cv2.imwrite(str(inputs / "photo.png"), walking_figure(frames=1)[0][0])
    assert predict_cli(str(inputs), "--out", str(out), "--detect", "--max-people", "1", "--quiet") == 0
    [person] = json.loads((out / "photo.json").read_text())["people"]
    assert person["detection_score"] == pytest.approx(0.8)
    lines = read_lines(out / "clip.jsonl")
    assert [[p["detection_score"] for p in line["people"]] for line in lines] == [[0.8], [], [0.8], [0.8]]
    assert f"{inputs / 'clip.mp4'}: 4 frames (nobody found in 1): wrote" in capsys.readouterr().out
    assert predict_cli(str(inputs), "--out", str(tmp_path / "o2"), "--detect", "--smooth") == 2
    assert capsys.readouterr().err.startswith("poselit: error: smoothing follows the one tracked person of a video")
    assert not (tmp_path / "o2").exists()  # not even the image was written


def test_cli_video_options_set_smoothing_tracking_and_refine(tmp_path, cli_predictor, monkeypatch):
    from poselit.cli import build_parser
    from poselit.cli.predict import smoothing_filter

    def parse(*options: str):
        return build_parser().parse_args(["predict", "clip.mp4", "--model", "m", "--out", "o", *options])

    assert smoothing_filter(parse()) is None
    assert smoothing_filter(parse("--smooth")) == OneEuroFilter()
    assert smoothing_filter(parse("--min-cutoff", "0.5")) == OneEuroFilter(min_cutoff=0.5)  # implies --smooth
    assert smoothing_filter(parse("--smooth", "--beta", "0.2")) == OneEuroFilter(beta=0.2)
    calls = []

    def stand_in(predictor, path, out_dir, **options) -> VideoResult:
        calls.append(options)
        return VideoResult(Path(out_dir) / VIDEO, Path(out_dir) / "clip.jsonl", 2, 0, 2, FPS, CODEC)

    monkeypatch.setattr("poselit.video.predict_video", stand_in)
    clip = write_video(tmp_path / "clip.mp4", walking_figure(frames=2)[0])
    argv = ("--out", str(tmp_path / "out"), "--min-score", "0.6", "--min-confident", "0.25", "--beta", "0", "--quiet")
    assert predict_cli(str(clip), *argv, "--refine") == 0
    assert cli_predictor[-1]["refine"] is True  # whole frames get a second pass
    assert calls == [{"smoothing": OneEuroFilter(beta=0.0), "model": "tiny", "progress": False,
                      "min_score": 0.6, "min_confident": 0.25, "codec": CODEC}]
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["predict"].format_help().split())
    defaults = inspect.signature(predict_video).parameters
    for option in ("min_score", "min_confident"):  # the help states the library's defaults
        assert f"(default {defaults[option].default})" in help_text


def test_cli_unreadable_and_truncated_videos_end_in_one_line_with_exit_2(tmp_path, cli_predictor, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert predict_cli(str(tmp_path / "junk.mp4"), "--out", str(tmp_path / "o1"), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"poselit: error: {tmp_path / 'junk.mp4'}: cannot open the video") and err.count("\n") == 1
    assert not (tmp_path / "o1").exists()

    clip = write_video(tmp_path / "clip.avi", walking_figure()[0], "MJPG")
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    readable = count_frames(clip)
    assert predict_cli(str(clip), "--out", str(tmp_path / "o2"), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"poselit: error: {clip}: the video ended after {readable} of the {FRAMES} frames")
    assert err.count("\n") == 1  # the error only, not also the library's warning
    assert count_frames(tmp_path / "o2" / VIDEO) == len(read_lines(tmp_path / "o2" / "clip.jsonl")) == readable


def test_cli_a_frame_size_change_ends_in_one_line_with_the_frames_before_it_written(tmp_path, cli_predictor, capsys, monkeypatch):
    clip_halving_at(2, 4, tmp_path, monkeypatch)
    with pytest.warns(UserWarning, match="gives no frame rate"):
        assert predict_cli(str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"), "--quiet") == 2
    monkeypatch.undo()
    assert f"poselit: error: {tmp_path / 'clip.mp4'}: frame 2 is 64x36 px" in capsys.readouterr().err
    assert count_frames(tmp_path / "out" / VIDEO) == len(read_lines(tmp_path / "out" / "clip.jsonl")) == 2


def test_cli_refuses_two_videos_that_would_write_the_same_files(tmp_path, cli_predictor, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_video(tmp_path / folder / "clip.mp4", walking_figure(frames=1)[0])
    assert predict_cli(str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b" / "clip.mp4"), "--out", str(tmp_path / "out")) == 2
    assert "two inputs would write the same outputs clip.*" in capsys.readouterr().err


# --------------------------------------------------------------------------- codecs, resuming


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_each_codec_is_written_where_opencv_has_it_and_refused_by_name_where_not(tmp_path, predictor, codec):
    clip = write_video(tmp_path / "clip.mp4", walking_figure(frames=3)[0])
    if not can_write(codec):
        with pytest.raises(ValueError, match=rf"video codec '{codec.name}': this OpenCV .* cannot write {codec.description}"):
            predict_video(predictor, clip, tmp_path / "out", codec=codec.name)
        return
    result = predict_video(predictor, clip, tmp_path / "out", codec=codec.name)
    assert result.codec == codec and result.video == tmp_path / "out" / f"clip{codec.suffix}"
    assert count_frames(result.video) == 3
    header = result.video.read_bytes()[:12]
    assert header.startswith(b"\x1a\x45\xdf\xa3") if codec.suffix == ".webm" else header[4:8] == b"ftyp"  # WebM / MP4


def test_auto_picks_the_first_codec_browsers_play_and_falls_back_to_mp4v(monkeypatch):
    playable = [codec for codec in CODECS if codec.browsers and can_write(codec)]
    assert CODEC == (playable[0] if playable else CODECS[-1])
    wheels = {dist.metadata["Name"].lower() for dist in metadata.distributions()} & {"opencv-python", "opencv-python-headless"}
    assert not wheels or CODEC.browsers  # as the docs say: OpenCV's wheels (this project's dependency) have VP8
    monkeypatch.setattr("poselit.video.io.can_write", lambda codec: False)
    assert video_codec().name == "mp4v" and not video_codec().browsers
    with pytest.raises(ValueError, match="video codec 'vp9': unknown; expected auto or one of h264, vp8, mp4v"):
        video_codec("vp9")


def test_cli_video_codec_choices_are_the_library_codecs():
    from poselit.cli.predict import VIDEO_CODECS

    assert VIDEO_CODECS == ("auto", *(codec.name for codec in CODECS))


def test_cli_says_when_the_video_is_in_a_codec_browsers_do_not_play(tmp_path, cli_predictor, capsys, monkeypatch):
    clip = write_video(tmp_path / "clip.avi", walking_figure(frames=2)[0], "MJPG")
    monkeypatch.setattr("poselit.video.io.can_write", lambda codec: codec.name == "mp4v")
    assert predict_cli(str(clip), "--out", str(tmp_path / "out"), "--quiet") == 0
    note = "(MPEG-4 Part 2 in MP4 (mp4v), which browsers do not play: this OpenCV writes neither H.264 nor VP8)"
    assert f"wrote {tmp_path / 'out' / 'clip.mp4'} {note}" in capsys.readouterr().out
    assert count_frames(tmp_path / "out" / "clip.mp4") == 2


def test_a_killed_video_restarts_and_a_finished_one_is_skipped(tmp_path, cli_predictor, capsys):
    clip = write_video(tmp_path / "clip.mp4", walking_figure(frames=4)[0])
    out = tmp_path / "out"
    out.mkdir()
    killed = dead_process_id()
    (out / f".clip.{killed}-0123abcd.tmp.jsonl").write_text('{"frame": 0}\n{"fra')  # left by a killed run
    (out / f".clip.{killed}-0123abcd.tmp{CODEC.suffix}").write_bytes(b"\x00" * 100)
    live = out / f".clip.{os.getpid()}-89abcdef.tmp.jsonl"  # another run into the folder, still writing
    live.write_text('{"frame": 0}\n')
    assert predict_cli(str(clip), "--out", str(out), "--quiet", "--skip-existing") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["clip.jsonl", VIDEO, live.name])  # restarted, leftovers gone
    live.unlink()
    assert count_frames(out / VIDEO) == len(read_lines(out / "clip.jsonl")) == 4
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}
    capsys.readouterr()
    assert predict_cli(str(clip), "--out", str(out), "--quiet", "--skip-existing") == 0
    assert f"{clip}: skipped, its outputs are in {out} (--skip-existing)" in capsys.readouterr().out
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()} == stamps
    (out / "clip.jsonl").unlink()  # one of the two missing: done again
    assert predict_cli(str(clip), "--out", str(out), "--quiet", "--skip-existing") == 0
    assert count_frames(out / VIDEO) == len(read_lines(out / "clip.jsonl")) == 4
