"""``tools/sports2d_samples.py``: the bundled full-body photos are the frames and regions it
says, at the sizes it writes (checked on a synthetic video of the same size)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from poselit.predict import SAMPLES

TOOL = Path(__file__).resolve().parents[1] / "tools" / "sports2d_samples.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("sports2d_samples", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numbered_video(path: Path, frames: int, size: tuple[int, int]) -> None:
    """A video whose frame i is grey level i: which frame was cut shows in the pixels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), index, np.uint8))
    writer.release()


def test_the_tool_cuts_the_frames_and_regions_it_names(tool, tmp_path, monkeypatch, capsys):
    video = tmp_path / "demo.avi"
    numbered_video(video, max(frame for frame, _, _ in tool.SAMPLES.values()) + 1, (1768, 994))
    monkeypatch.setattr(sys, "argv", ["sports2d_samples.py", str(video), "--out", str(tmp_path)])
    tool.main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == list(tool.SAMPLES)
    for line in lines:
        frame, (x, y, w, h), longest = tool.SAMPLES[line["file"]]
        image = cv2.imread(str(tmp_path / line["file"]))
        assert max(image.shape[:2]) == longest and image.shape[1] / image.shape[0] == pytest.approx(w / h, rel=0.01)
        assert abs(float(image.mean()) - frame) <= 2  # that frame, not another (JPEG rounding)
        bundled = cv2.imread(str(SAMPLES / line["file"]))
        assert bundled.shape == image.shape  # the bundled photo is what the tool writes


def test_an_unreadable_frame_is_one_clear_error(tool, tmp_path):
    video = tmp_path / "short.avi"
    numbered_video(video, 3, (64, 48))
    with pytest.raises(SystemExit, match=r"short.avi: frame 10 could not be read"):
        tool.frame(video, 10)
