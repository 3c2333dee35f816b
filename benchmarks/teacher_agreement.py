"""How far MoveNet agrees with the training labels: is it a teacher for LSP-extended?

LSP-extended's 10,000 people were labelled on Amazon Mechanical Turk and are called noisier
than LSP's. Issue 23 proposes MoveNet Thunder (88.1 PCK@0.2 on LSP test from the whole
image) as a teacher that could relabel them. Before any training run, this measures what
such a teacher would change: for every person of each dataset, MoveNet in the person's box
(the square crop of side ``200 * scale * padding`` around the annotation's centre, as
poselit's models see it with the ground-truth box), its 12 COCO joints scored against the
labels with LSP's PCK@0.2 (``benchmarks/movenet_lsp.py``'s 12-joint scoring):

* ``PCK@0.2``: agreement on every annotated shared joint;
* ``confident``: the share of annotated joints MoveNet scores at ``--confident`` or more,
  and the agreement on those. Where labels are clean (LSP), MoveNet's confident joints
  agree almost always; where they agree much less, either the labels or MoveNet are wrong,
  and only looking at the people says which;
* ``label_offsets``: where the annotators put each joint, against MoveNet (median offset
  in the person's torso frame, :func:`label_offsets`): datasets labelled to different
  conventions differ here;
* the recipes' held-out people (``--holdout`` drawn from the datasets together with
  ``--holdout-seed``, as ``PoseDataModule`` draws them) as one more row, with how many come
  from each dataset: the PCK a strong model reaches against those labels.

``--model NAME`` of a poselit zoo model puts it in MoveNet's place (through ``Predictor``
in the same boxes, its input padding, flip test on): whether the model's keypoints follow
each dataset's labels, e.g. whether it learned a mix of two datasets' hip conventions.

Prints one JSON object, also written to ``--out``::

    POSELIT_DATA=../shared/data python benchmarks/teacher_agreement.py \\
        --out benchmarks/results/teacher_agreement.json
    POSELIT_DATA=../shared/data python benchmarks/teacher_agreement.py --model bulat-mobilenetv2-lsp \\
        --confident 0 --out benchmarks/results/teacher_agreement_bulat.json

The MoveNet files come from ``tools/movenet_tflite.py`` (``--movenet-dir``); ``--smoke``
measures 8 generated people (the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

import poselit.data
import poselit.zoo
from poselit.data.conventions import TORSO_JOINTS, outward, torso_frame
from poselit.data.datamodule import split_holdout
from poselit.data.records import AnnotationSet, PoseRecord
from poselit.data.synthetic import write_synthetic_lsp
from poselit.evaluate import evaluate_poses
from poselit.predict import Predictor, load_image
from movenet import DEFAULT_DIR, MODELS, MoveNet, model_path, to_lsp
from movenet_lsp import SHARED_JOINTS, pck_row, shared_only
from train_step import machine_info
from whole_image import write_result


#: A model in a person's box: a record -> its ``(14, 2)`` LSP keypoints (image pixels) and ``(14,)`` scores.
Yardstick = Callable[[PoseRecord], tuple[np.ndarray, np.ndarray]]


def movenet_yardstick(model: MoveNet, padding: float) -> Yardstick:
    """MoveNet in the record's box of side ``200 * scale * padding``; its COCO keypoints in
    LSP's slots (neck and head top: zero)."""
    return lambda record: to_lsp(*model.in_box(load_image(record.image), record.center, record.scale, padding))


def zoo_yardstick(name: str) -> Yardstick:
    """A poselit zoo model through ``Predictor`` in the record's box (its own input padding
    and defaults, flip test on), as its cards' ground-truth-box results."""
    predictor = Predictor.from_zoo(name, device="cpu", batch_size=1)

    def predict(record: PoseRecord) -> tuple[np.ndarray, np.ndarray]:
        box = {"center": record.center.tolist(), "scale": record.scale}
        (pose,) = predictor([load_image(record.image)], boxes=[box], progress=False)
        return np.asarray(pose.keypoints), np.asarray(pose.scores)

    return predict


def in_boxes(yardstick: Yardstick, annotations: AnnotationSet) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 14, 2)`` keypoints and ``(N, 14)`` scores of every record, by ``yardstick``."""
    keypoints, scores = [], []
    for record in tqdm(annotations.records, desc=annotations.source, unit="person", file=sys.stderr, mininterval=10):
        record_keypoints, record_scores = yardstick(record)
        keypoints.append(record_keypoints)
        scores.append(record_scores)
    return np.stack(keypoints), np.stack(scores)


def only_confident(annotations: AnnotationSet, scores: np.ndarray, threshold: float) -> AnnotationSet:
    """``annotations`` with every joint MoveNet scores under ``threshold`` marked not annotated."""
    records = [
        dataclasses.replace(record, visibility=np.where(score >= threshold, record.visibility, 0))
        for record, score in zip(annotations.records, scores)
    ]
    return dataclasses.replace(annotations, records=records)


def agreement(name: str, annotations: AnnotationSet, keypoints: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """One row, for the people ``name``: MoveNet's 12-joint PCK@0.2 against the labels, on
    all joints and on the confident ones, and the confident share of the annotated joints."""
    shared = shared_only(annotations)
    confident = only_confident(shared, scores, threshold)
    annotated = sum(int((r.visibility > 0).sum()) for r in shared.records)
    kept = sum(int((r.visibility > 0).sum()) for r in confident.records)
    row = {"dataset": name, "people": len(annotations.records),
           **pck_row(evaluate_poses(shared, keypoints, label="movenet", progress=False))}
    row["confident_share"] = round(100 * kept / max(annotated, 1), 2)
    row["confident_PCK@0.2"] = pck_row(evaluate_poses(confident, keypoints, label="movenet", progress=False))["PCK@0.2"] if kept else None
    row["label_offsets"] = label_offsets(annotations, keypoints, scores, threshold)
    return row


def label_offsets(annotations: AnnotationSet, keypoints: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, dict[str, Any]]:
    """Where a dataset's annotators put each shared joint, against MoveNet: per joint, the
    median offset of the label from MoveNet's keypoint in the person's torso frame, taken
    from MoveNet's own shoulders and hips (``up``: towards the shoulders; ``out``: away from
    the body's midline, to the left for left joints and to the right for right ones), in
    torso lengths (shoulder midpoint to hip midpoint); over annotated joints that MoveNet
    scores at ``threshold`` or more, in people whose four torso joints it does too. Two
    datasets whose medians differ were labelled to different conventions: a model trained
    on both may learn a mix of them (``--model NAME`` measures whether it did), and :func:`poselit.data.conventions.shift_joints` moves one
    to the other's by the difference."""
    skeleton = annotations.skeleton
    labels = np.stack([r.keypoints for r in annotations.records]).astype(np.float64)
    annotated = np.stack([r.visibility for r in annotations.records]) > 0
    up, left, length = torso_frame(keypoints, skeleton)
    framed = (scores[:, [skeleton.index(name) for name in TORSO_JOINTS]] >= threshold).all(1) & (length > 0)
    offsets = {}
    for name in SHARED_JOINTS:
        j = skeleton.index(name)
        chosen = framed & annotated[:, j] & (scores[:, j] >= threshold)
        delta = (labels[chosen, j] - keypoints[chosen, j]) / length[chosen, None]
        offsets[name] = {
            "people": int(chosen.sum()),
            "up": round(float(np.median((delta * up[chosen]).sum(1))), 3) if chosen.any() else None,
            "out": round(float(np.median(outward(name) * (delta * left[chosen]).sum(1))), 3) if chosen.any() else None,
        }
    return offsets


def datasets(specs: list[str], smoke: bool) -> dict[str, AnnotationSet]:
    """The annotation sets of ``specs`` by spec, or with ``smoke`` 8 generated LSP people."""
    if smoke:
        root = write_synthetic_lsp(Path(tempfile.mkdtemp()) / "synth", num_images=16, size=(96, 72), seed=0)
        return {"generated": poselit.data.read_annotations(f"lsp:train@{root}")}
    return {spec: poselit.data.read_annotations(spec) for spec in specs}


def measure(named: dict[str, AnnotationSet], yardstick: Yardstick, threshold: float, holdout: int, seed: int) -> list[dict[str, Any]]:
    """A row per set, and one for the held-out people drawn from them together (``holdout`` > 0)."""
    sets = list(named.values())
    predictions = [in_boxes(yardstick, annotations) for annotations in sets]
    rows = [agreement(name, a, k, s, threshold) for (name, a), (k, s) in zip(named.items(), predictions)]
    if holdout:
        keypoints, scores = (np.concatenate(p) for p in zip(*predictions))
        _, held_out = split_holdout(sets, holdout, seed)  # the records themselves, in the sets' order
        drawn = {id(record) for record in held_out.records}
        mask = np.array([id(record) in drawn for annotations in sets for record in annotations.records])
        name = f"held-out: {holdout} of {' + '.join(named)} (seed {seed})"
        row = agreement(name, held_out, keypoints[mask], scores[mask], threshold)
        row["from"] = {spec: int(sum(id(r) in drawn for r in a.records)) for spec, a in named.items()}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=["lsp:train", "lspet:train"], help="datasets to measure")
    parser.add_argument("--model", default="movenet-thunder",
                        help=f"{' or '.join(sorted(MODELS))}, or a poselit zoo model (its joint scores for --confident)")
    parser.add_argument("--movenet-dir", type=Path, default=DEFAULT_DIR, help="folder of the MoveNet .tflite files")
    parser.add_argument("--padding", type=float, default=1.25, help="box padding (the zoo models' input padding)")
    parser.add_argument("--confident", type=float, default=0.6, help="MoveNet score of a confident joint")
    parser.add_argument("--holdout", type=int, default=500, help="held-out people, as the recipes' data.holdout (0: none)")
    parser.add_argument("--holdout-seed", type=int, default=0, help="as the recipes' data.holdout_seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--smoke", action="store_true", help="8 generated people (for the tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        if args.model in MODELS:
            yardstick = movenet_yardstick(MoveNet(model_path(args.model, args.movenet_dir), args.threads), args.padding)
        else:
            yardstick = zoo_yardstick(args.model)
    except (FileNotFoundError, ImportError, ValueError, poselit.zoo.ZooError) as err:
        sys.exit(f"teacher_agreement.py: {err}")
    sets = datasets(args.datasets, args.smoke)
    holdout = min(args.holdout, 4) if args.smoke else args.holdout
    rows = measure(sets, yardstick, args.confident, holdout, args.holdout_seed)
    result = {
        "benchmark": "teacher_agreement",
        "model": args.model,
        "setting": "in the annotation's box (" + (f"padding {args.padding}" if args.model in MODELS else "the model's input padding")
        + "), 12 joints shared with COCO",
        "confident": args.confident,
        "holdout": {"people": holdout, "seed": args.holdout_seed},
        "rows": rows,
        **machine_info(),
        "smoke": args.smoke,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
