"""The default person detector (:class:`poselit.detect.MoveNetDetector`): how many people it
finds, and how long it takes.

**Recall**: a person is found when a detection (score >= ``--min-score``) overlaps their
box with IoU >= 0.5, each detection matching at most one person (greedy, surest detection
first, as COCO's matching). The people:

* LSP test (``lsp``, 1000 images, one person each): the box around the 14 annotated joints,
  enlarged by :data:`LSP_MARGIN` (joints lie inside the body: the head top and the ankles
  are joints, the feet and hair are not);
* the COCO-format sample sets (``coco``: 4 val2017 photos; ``coco-mini``: 28 train2017
  photos): every person box that is not a crowd, with recall by COCO's size classes
  (``area`` < 32², < 96², larger). MoveNet MultiPose finds at most six people per image.

Precision (detections that match a person) is reported too, for the COCO sets only (LSP
annotates one person per photo, also where others are visible).

**Latency** (``--latency-images`` COCO and LSP photos, one ONNX Runtime thread, median over
the photos of the wall time and of the process's CPU time, decoded images in memory): ``detector_ms`` is what ``detect=`` adds before the
poses (resize, the network, boxes), and ``predict_ms`` the whole :class:`~poselit.predict.Predictor`
call with ``--model`` (its default runtime, one thread) without a detector (the whole image) and with
it (one pose per detected person).

    POSELIT_DATA=../shared/data nice -n 15 python benchmarks/detector.py \\
        --out benchmarks/results/detector_cpu.json

Prints one JSON object, also written to ``--out``. ``--smoke`` runs on four generated LSP
photos (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from poselit.atomic import write_atomic
from poselit.data.readers.lsp import read_lsp
from poselit.data.synthetic import write_synthetic_lsp
from poselit.detect import MoveNetDetector
from poselit.predict import Predictor, load_image
from train_step import machine_info

LSP_MARGIN = 0.1
"""The LSP person box: the joints' box grown by this fraction of its width and height on each side."""

COCO_SETS = {"coco": ("coco/test_coco.json", "coco"), "coco-mini": ("coco-mini/person_keypoints.json", "coco-mini/images")}
"""Sample sets: annotation file and image folder, under the data folder."""

SIZES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, float("inf"))}
"""COCO's size classes of a person, by annotated area (px²)."""


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes.

    >>> iou([0, 0, 10, 10], [5, 0, 10, 10])
    0.3333333333333333
    """
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return w * h / union if union > 0 else 0.0


def match(found: np.ndarray, truth: Sequence[Sequence[float]], threshold: float = 0.5) -> list[bool]:
    """Which of the ``truth`` boxes the detections ``found`` (surest first) find: each detection
    takes the unmatched box it overlaps most, if by IoU >= ``threshold``."""
    matched = [False] * len(truth)
    for box in found:
        overlaps = [-1.0 if matched[i] else iou(box, person) for i, person in enumerate(truth)]
        if overlaps and max(overlaps) >= threshold:
            matched[int(np.argmax(overlaps))] = True
    return matched


def lsp_people(root: Path, split: str = "test") -> list[tuple[Path, list[list[float]], list[float]]]:
    """``(image, [person box], [area])`` per LSP image: the joints' box grown by :data:`LSP_MARGIN`."""
    people = []
    for record in read_lsp(root / "lsp", split).records:
        low, high = record.keypoints.min(0), record.keypoints.max(0)
        grow = (high - low) * LSP_MARGIN
        box = [*(low - grow).tolist(), *(high - low + 2 * grow).tolist()]
        people.append((Path(record.image), [box], [box[2] * box[3]]))
    return people


def coco_people(root: Path, annotations: str, images: str) -> list[tuple[Path, list[list[float]], list[float]]]:
    """``(image, person boxes, their areas)`` per image of a COCO-format set: persons, no crowds."""
    coco = json.loads((root / annotations).read_text())
    person = {c["id"] for c in coco["categories"] if c.get("name") == "person"}
    people: dict[Any, tuple[list, list]] = {entry["id"]: ([], []) for entry in coco["images"]}
    for a in coco["annotations"]:
        if a.get("category_id") in person and not a.get("iscrowd"):
            people[a["image_id"]][0].append(a["bbox"])
            people[a["image_id"]][1].append(a.get("area", a["bbox"][2] * a["bbox"][3]))
    return [(root / images / entry["file_name"], *people[entry["id"]]) for entry in coco["images"]]


def recall(detector: MoveNetDetector, people: Iterable[tuple[Path, list, list]], *, by_size: bool) -> dict[str, Any]:
    """Recall (and detections, precision) of ``detector`` on ``people`` (see the module docs)."""
    found_people, total, detections, true_detections, images, over_six = 0, 0, 0, 0, 0, 0
    sizes = {name: [0, 0] for name in SIZES}
    for image, boxes, areas in people:
        found, _ = detector(load_image(image))
        matched = match(found, boxes)
        images += 1
        found_people += sum(matched)
        total += len(boxes)
        detections += len(found)
        true_detections += sum(matched)
        over_six += len(boxes) > 6
        for hit, area in zip(matched, areas):
            name = next(n for n, (low, high) in SIZES.items() if low <= area < high)
            sizes[name][0] += hit
            sizes[name][1] += 1
    result = {"images": images, "people": total, "found": found_people, "recall": found_people / max(total, 1),
              "detections": detections}
    if by_size:
        result["precision"] = true_detections / max(detections, 1)
        result["images_over_6_people"] = over_six
        result["recall_by_size"] = {n: {"people": t, "recall": f / t if t else None} for n, (f, t) in sizes.items()}
    return result


def median_ms(calls: Iterable[Any]) -> dict[str, float]:
    """Median wall time and CPU time (of this process: one thread) of the ``calls``
    (zero-argument callables), in milliseconds, after one warm-up. On a loaded machine the
    wall time includes waiting for a core; the CPU time is what the work itself takes."""
    calls = list(calls)
    calls[0]()
    wall, cpu = [], []
    for call in calls:
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return {"wall": round(statistics.median(wall), 1), "cpu": round(statistics.median(cpu), 1)}


def latency(detector: MoveNetDetector, model: str, images: list[np.ndarray]) -> dict[str, Any]:
    """Median milliseconds per image of the detector, and of a predictor without and with it."""
    plain = Predictor.from_zoo(model, device="cpu")
    detecting = Predictor.from_zoo(model, device="cpu", detector=detector)
    people = [len(detecting(image)) for image in images]
    return {
        "images": len(images),
        "model": model,
        "runtime": plain.runtime,
        "detector_ms": median_ms([lambda image=image: detector(image) for image in images]),
        "predict_ms": {
            "whole_image": median_ms([lambda image=image: plain(image) for image in images]),
            "detect": median_ms([lambda image=image: detecting(image) for image in images]),
        },
        "people_per_image_detected": round(float(np.mean(people)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("POSELIT_DATA"), help="data folder ($POSELIT_DATA)")
    parser.add_argument("--size", type=int, default=256, help="the detector's input size (longer side)")
    parser.add_argument("--min-score", type=float, default=0.2, help="the detector's score threshold")
    parser.add_argument("--model", default="bulat-mobilenetv2-lsp", help="pose model of the latency rows")
    parser.add_argument("--latency-images", type=int, default=24, help="photos timed (half COCO, half LSP)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--smoke", action="store_true", help="four generated LSP photos, the demo model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    detector = MoveNetDetector(size=args.size, min_score=args.min_score, threads=1)
    result: dict[str, Any] = {"detector": detector.path.name, "size": args.size, "min_score": args.min_score,
                              "iou_threshold": 0.5, "lsp_margin": LSP_MARGIN, "threads": 1, "smoke": args.smoke}
    if args.smoke:
        root = write_synthetic_lsp(Path(tempfile.mkdtemp()) / "data" / "lsp", num_images=4, size=(96, 72), seed=0).parent
        result["sets"] = {"lsp": recall(detector, lsp_people(root, "all"), by_size=False)}
        photos = [load_image(image) for image, _, _ in lsp_people(root, "all")[:2]]
        result["latency"] = latency(detector, "luvizon-tiny-lsp-demo", photos)
    else:
        if args.data is None:
            parser.error("no data folder: give --data or set POSELIT_DATA")
        coco = {name: coco_people(args.data, *where) for name, where in COCO_SETS.items()}
        result["sets"] = {"lsp": recall(detector, lsp_people(args.data), by_size=False),
                          **{name: recall(detector, people, by_size=True) for name, people in coco.items()}}
        half = args.latency_images // 2
        chosen = [p for p in (coco["coco"] + coco["coco-mini"])][:half] + lsp_people(args.data)[:: 1000 // max(half, 1)][:half]
        result["latency"] = latency(detector, args.model, [load_image(image) for image, _, _ in chosen])
    result["machine"] = machine_info()
    text = json.dumps(result, indent=2)
    if args.out:
        write_atomic(args.out, text + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
