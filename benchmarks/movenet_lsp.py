"""MoveNet Lightning and Thunder on LSP test, beside a poselit model: PCK@0.2 on the 12
joints COCO shares with LSP, whole image, scored by poselit.

Every LSP test person (1000 images, one person each) is predicted on the whole image, with
no box:

* by MoveNet (``benchmarks/movenet.py``: letterboxed into its square input as its examples
  do, TFLite run by LiteRT), its 17 COCO keypoints placed into LSP's slots by name. COCO
  and LSP share 12 joints (ankles, knees, hips, wrists, elbows, shoulders); LSP's neck and
  head top have no COCO counterpart;
* by each poselit zoo model named (default ``bulat-mobilenetv2-lsp``), through
  ``Predictor`` on the whole image with its defaults (flip test on), as
  ``benchmarks/whole_image.py``'s ``whole`` setting.

Each is scored with LSP's protocol (:func:`poselit.evaluate.evaluate_poses`, the scoring of
``poselit eval``: a joint is correct within 0.2 x the torso ``||left_shoulder - right_hip||``
of the person's annotation, person-centric left and right) on the 12 shared joints: the
annotation's neck and head top are marked not annotated, so the Total pools the 12 and the
normaliser is unchanged. Poselit's models also get their 14-joint score. Rows give the
PCK@0.2 Total, its AUC, the part columns and the seconds taken. Prints one JSON object,
also written to ``--out``::

    POSELIT_DATA=../shared/data python benchmarks/movenet_lsp.py \\
        --out benchmarks/results/movenet_lsp.json

The MoveNet files come from ``tools/movenet_tflite.py`` (``--movenet-dir``, default
``~/.cache/poselit/movenet``); without them the script stops with a one-line error saying
how to make them. ``--smoke`` scores 4 generated people with the demo model (the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from poselit.data.records import AnnotationSet
from poselit.evaluate import EvaluationReport, evaluate_poses
from poselit.predict import Predictor, load_image
from poselit.skeletons import LSP
from movenet import COCO_TO_LSP, DEFAULT_DIR, MODELS, MoveNet, model_path, to_lsp
from train_step import machine_info
from whole_image import SMOKE_MODEL, predict_split, test_people, test_split, write_result

#: The LSP joints with a COCO keypoint of the same name (12 of 14).
SHARED_JOINTS = tuple(name for name, slot in zip(LSP.joints, COCO_TO_LSP) if slot >= 0)


def shared_only(annotations: AnnotationSet) -> AnnotationSet:
    """``annotations`` with the joints COCO lacks (neck, head top) marked not annotated: the
    PCK then pools the 12 shared joints, each record's torso normaliser unchanged."""
    unshared = np.array([name not in SHARED_JOINTS for name in annotations.skeleton.joints])
    records = [dataclasses.replace(r, visibility=np.where(unshared, 0, r.visibility)) for r in annotations.records]
    return dataclasses.replace(annotations, records=records)


def pck_row(report: EvaluationReport) -> dict[str, float]:
    """The PCK@0.2 Total, its AUC and the part columns that were scored, in percent."""
    (pck,) = [r for r in report.results if r.metric.startswith("PCK@")]
    columns = {"Total": pck.metric, "AUC": f"{pck.metric} AUC"}
    return {columns.get(name, name): round(value, 2) for name, value in pck.columns.items() if math.isfinite(value)}


def movenet_keypoints(model: MoveNet, annotations: AnnotationSet) -> np.ndarray:
    """``(N, 14, 2)`` LSP keypoints (image pixels; neck and head top zero) of every record's
    whole image, by MoveNet."""
    return np.stack([to_lsp(*model(load_image(record.image)))[0] for record in annotations.records])


def timed(predict: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """``predict()``'s keypoints and the seconds it took."""
    start = time.perf_counter()
    keypoints = predict()
    return keypoints, time.perf_counter() - start


def score(name: str, keypoints: np.ndarray, seconds: float, annotations: AnnotationSet, joints: int) -> dict[str, Any]:
    """One result row: ``name``'s PCK on ``joints`` (12: the shared ones; 14: all of LSP's)."""
    scored = shared_only(annotations) if joints == 12 else annotations
    report = evaluate_poses(scored, keypoints, label=name, progress=False)
    row = {"model": name, "joints": joints, **pck_row(report), "seconds": round(seconds, 1),
           "ms_per_image": round(1000 * seconds / len(annotations.records), 1)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def load_movenets(folder: Path, threads: int) -> dict[str, MoveNet]:
    """Every MoveNet model of ``folder``, or a one-line exit naming the file that is
    missing or not MoveNet (and how to make it) before any work."""
    try:
        return {name: MoveNet(model_path(name, folder), threads) for name in MODELS}
    except (FileNotFoundError, ImportError, ValueError) as err:
        sys.exit(f"movenet_lsp.py: {err}")


def measure(annotations: AnnotationSet, movenets: dict[str, MoveNet], zoo_models: list[str]) -> list[dict[str, Any]]:
    """The rows of every MoveNet model and every poselit model on ``annotations``."""
    rows = []
    for name, model in movenets.items():
        keypoints, seconds = timed(lambda: movenet_keypoints(model, annotations))
        rows.append(score(name, keypoints, seconds, annotations, 12))
    for name in zoo_models:
        predictor = Predictor.from_zoo(name, device="cpu", batch_size=16)
        keypoints, seconds = timed(lambda: predict_split(predictor, annotations, "whole", 1.0)[0])
        rows += [score(name, keypoints, seconds, annotations, joints) for joints in (12, 14)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["bulat-mobilenetv2-lsp"], help="poselit zoo models beside MoveNet")
    parser.add_argument("--movenet-dir", type=Path, default=DEFAULT_DIR, help="folder of the MoveNet .tflite files")
    parser.add_argument("--threads", type=int, default=2, help="MoveNet's and torch's threads (speed only)")
    parser.add_argument("--first", type=int, help="only the first N test people")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--smoke", action="store_true", help="4 generated people, the demo model (for the tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    movenets = load_movenets(args.movenet_dir, args.threads)
    annotations = test_people(test_split(args.smoke), args.first)
    if args.smoke:
        args.models = [SMOKE_MODEL]
    rows = measure(annotations, movenets, args.models)
    result = {
        "benchmark": "movenet_lsp",
        "dataset": "generated" if args.smoke else "lsp:test",
        "people": len(annotations.records),
        "setting": "whole image, no box (MoveNet: letterboxed to its square input; poselit: Predictor, flip test on)",
        "shared_joints": list(SHARED_JOINTS),
        "rows": rows,
        **machine_info(),
        "threads": args.threads,
        "smoke": args.smoke,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
