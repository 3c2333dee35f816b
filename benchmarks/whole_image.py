"""Photos without a person box: how close whole-image prediction comes to the annotated box,
in one pass and in two (``Predictor(..., refine=True)``).

For each zoo model, every LSP test person (1000 images, one person each, roughly
person-sized photographs) is predicted through :class:`~poselit.predict.Predictor` in
three settings, and scored with LSP's protocol (PCK@0.2 of the torso, AUC, PCP:
:func:`poselit.evaluate.evaluate_poses`, the scoring of ``poselit eval``):

* ``box``: the annotated person box (as the test loop crops: the model card's numbers);
* ``whole``: no box, one pass (the whole image is the crop);
* ``whole_refined``: no box, a second pass on the crop around the first pass's joints.

``--canvas F`` also places each image in the middle of a black canvas ``F`` times its
width and height (a smaller person in a larger photograph; ``1``: the images as they are);
the poses are mapped back to the image's pixels before scoring. ``seconds`` is the wall
time of each setting. Prints one JSON object, also written to ``--out``.

    POSELIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/whole_image.py \\
        bulat-mobilenetv2-lsp --canvas 1 2 --out benchmarks/results/whole_image_cpu.json

A model is a zoo name or an ONNX file (``poselit zoo export NAME --format onnx [--int8]``:
how much a quantized file loses).

``--cards [ZOO_DIR]`` writes each zoo model's whole-image result (one pass, canvas 1, every
column of the protocol) into its card as a ``metrics`` entry with ``crop: whole image``
(replacing an earlier one), beside the box result of ``poselit zoo export --evaluate``;
``poselit zoo compare`` shows it:

    POSELIT_DATA=../shared/data python benchmarks/whole_image.py bulat-mobilenetv2-lsp \
        --settings whole --cards --out benchmarks/results/whole_image_cards_cpu.json

``--smoke`` runs ``bulat-mobilenetv2-lsp`` on 4 generated images (the test suite uses it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

import poselit
from poselit.atomic import write_atomic
from poselit.data.records import AnnotationSet
from poselit.data.synthetic import write_synthetic_lsp
from poselit.evaluate import EvaluationReport, evaluate_poses
from poselit.onnx import OnnxPoseModel, onnx_file_of
from poselit.predict import Predictor, load_image
from poselit.zoo import write_card
from poselit.zoo.cards import with_metrics
from poselit.zoo.export import metrics_entry
from train_step import machine_info

SETTINGS = ("box", "whole", "whole_refined")


def on_canvas(image: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` in the middle of a black canvas ``factor`` times its size, and the offset
    ``(x, y)`` of the image's top-left pixel in it."""
    height, width = image.shape[:2]
    canvas_height, canvas_width = round(height * factor), round(width * factor)
    top, left = (canvas_height - height) // 2, (canvas_width - width) // 2
    canvas = np.zeros((canvas_height, canvas_width, 3), np.uint8)
    canvas[top : top + height, left : left + width] = image
    return canvas, np.array([left, top], np.float32)


def chunks(count: int, size: int) -> Iterator[range]:
    for start in range(0, count, size):
        yield range(start, min(start + size, count))


def crop_kind(pose: Any, annotated_center: np.ndarray, annotated_scale: float) -> str:
    """Which box ``pose`` was cropped from: ``"annotated"`` (the record's), ``"whole"`` (the
    whole-image box, centred on the image) or ``"other"`` (a second pass around a first pose).
    The rows count them, so a setting that silently cropped otherwise cannot pass for itself."""
    if np.allclose(pose.center, annotated_center, atol=1e-3) and abs(pose.scale - annotated_scale) < 1e-6:
        return "annotated"
    height, width = pose.image_size
    return "whole" if np.allclose(pose.center, [(width - 1) / 2, (height - 1) / 2], atol=1e-3) else "other"


def predict_split(
    predictor: Predictor, annotations: AnnotationSet, setting: str, factor: float
) -> tuple[np.ndarray, Counter[str]]:
    """``(N, K, 2)`` keypoints (the images' own pixels) of every record, in ``setting`` on
    canvases ``factor`` times the image, and how many were cropped from which box
    (:func:`crop_kind`); images decoded a batch at a time."""
    keypoints, crops = [], Counter()
    records = annotations.records
    for batch in chunks(len(records), 4 * predictor.batch_size):
        images, offsets = zip(*(on_canvas(load_image(records[i].image), factor) for i in batch))
        boxes = [
            {"center": (records[i].center + offset).tolist(), "scale": records[i].scale} if setting == "box" else None
            for i, offset in zip(batch, offsets)
        ]
        for i, pose, offset in zip(batch, predictor(list(images), boxes=boxes, progress=False), offsets):
            keypoints.append(pose.keypoints - offset)
            crops[crop_kind(pose, records[i].center + offset, records[i].scale)] += 1
    return np.stack(keypoints), crops


def totals(report: EvaluationReport) -> dict[str, float]:
    """``{"PCK@0.2": total, "PCK@0.2 AUC": auc, "PCP@0.5": total}``: each metric's summary columns."""
    return {
        metric if column == "Total" else f"{metric} {column}": round(float(value), 2)
        for metric, columns in ((r.metric, r.columns) for r in report.results)
        for column, value in columns.items()
        if column in ("Total", "AUC")
    }


def load_model(name: str) -> Any:
    """A zoo model, or an ONNX file (run by ONNX Runtime on one thread)."""
    onnx_file = onnx_file_of(name)
    return poselit.zoo.load(name, device="cpu") if onnx_file is None else OnnxPoseModel.from_file(onnx_file, threads=1)


def measure_model(
    name: str, split: str, annotations: AnnotationSet, factors: list[float], batch_size: int, settings: list[str]
) -> tuple[list[dict[str, Any]], EvaluationReport | None]:
    """One row per canvas factor and setting (the metrics' summaries and the seconds taken),
    and the full report of the whole image in one pass on canvas 1 (``None``: not measured),
    of ``annotations``, the people of ``split``."""
    rows, whole = [], None
    model = load_model(name)
    for factor in factors:
        for setting in settings:
            predictor = Predictor(model, batch_size=batch_size, refine=setting == "whole_refined")
            start = time.perf_counter()
            keypoints, crops = predict_split(predictor, annotations, setting, factor)
            seconds = time.perf_counter() - start
            report = evaluate_poses(annotations, keypoints, dataset=split, label=f"{name} {setting}", progress=False)
            rows.append({"model": name, "canvas": factor, "setting": setting, **totals(report),
                         "crops": dict(crops), "seconds": round(seconds, 1)})
            print(json.dumps(rows[-1]), flush=True)
            if setting == "whole" and factor == 1.0:
                whole = report
    return rows, whole


CARD_MEASUREMENT = "benchmarks/whole_image.py: no box, the whole image padded to a square, one pass, flip test on"
"""The ``measured_with`` of the card entries that ``--cards`` writes."""


def record_in_cards(reports: dict[str, EvaluationReport], zoo_dir: Path | None = None) -> list[str]:
    """Write each zoo model's whole-image ``report`` into its card (a ``crop: whole image``
    entry of ``metrics``, replacing the earlier one); returns the names of the cards written
    (an ONNX file given instead of a zoo name has no card)."""
    written = []
    zoo_names = set(poselit.zoo.list_models(zoo_dir=zoo_dir))
    for name, report in reports.items():
        if name in zoo_names:
            card = poselit.zoo.info(name, zoo_dir=zoo_dir)
            entry = metrics_entry(report, CARD_MEASUREMENT, crop="whole image")
            write_card(dataclasses.replace(card, metrics=with_metrics(card.metrics, entry)), card.source)
            written.append(name)
    return written


SMOKE_MODEL = "bulat-mobilenetv2-lsp"
"""The model a ``--smoke`` run measures (on generated people): a real one, whose first poses
span a box that the second pass can crop (the demo fixture's collapse to one spot)."""


def test_split(smoke: bool) -> str:
    """The split measured: LSP test (``POSELIT_DATA``), or with ``smoke`` a generated one
    (4 test people, written to a new temporary folder)."""
    if smoke:
        root = write_synthetic_lsp(Path(tempfile.mkdtemp()) / "synth", num_images=8, size=(96, 72), seed=0)
        return f"lsp:test@{root}"
    return "lsp:test"


def test_people(split: str, first: int | None = None) -> AnnotationSet:
    """The people of ``split``; only the first ``first`` when given."""
    annotations = poselit.data.read_annotations(split)
    return dataclasses.replace(annotations, records=annotations.records[:first]) if first else annotations


def write_result(result: dict[str, Any], out: Path | None) -> None:
    """Print ``result`` as one JSON line, and write it (indented) to ``out`` when given."""
    print(json.dumps(result))
    if out:
        write_atomic(out, json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["bulat-mobilenetv2-lsp"], help="zoo model names or ONNX files")
    parser.add_argument("--canvas", nargs="+", type=float, default=[1.0], help="canvas sizes, in image sizes")
    parser.add_argument("--first", type=int, help="only the first N test people")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS), help="settings to measure")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--cards", nargs="?", const="", metavar="ZOO_DIR",
                        help="write each zoo model's whole-image result into its card (in ZOO_DIR, else the zoo in use)")
    parser.add_argument("--smoke", action="store_true", help="a zoo model on 4 generated images (for the tests)")
    args = parser.parse_args()
    if args.cards is not None and ("whole" not in args.settings or 1.0 not in args.canvas):
        parser.error("--cards writes the 'whole' setting on canvas 1: add it to --settings and --canvas")
    torch.set_num_threads(1)
    split = test_split(args.smoke)
    annotations = test_people(split, args.first)
    if args.smoke:
        args.models = [SMOKE_MODEL]
    rows, wholes = [], {}
    for name in args.models:
        model_rows, wholes[name] = measure_model(name, split, annotations, args.canvas, args.batch_size, args.settings)
        rows += model_rows
    result = {
        "benchmark": "whole_image",
        "dataset": "generated" if args.smoke else "lsp:test",
        "people": len(annotations.records),
        "rows": rows,
        **machine_info(),
        "threads": 1,
        "smoke": args.smoke,
    }
    if args.cards is not None:
        result["cards_written"] = record_in_cards(wholes, Path(args.cards) if args.cards else None)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
