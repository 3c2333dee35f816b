"""Sample predictions of zoo models on LSP test people, as one image for the README.

One row per person (evenly spaced through LSP test, so the choice is not a selection of
good cases), one column per model after the annotation: each tile is the person's crop
(the record's box with the models' margin, as the test loop crops) with the pose drawn
on it, and the person's PCK@0.2 under each model (the share of annotated joints within
0.2 torso diameters). Predictions use the annotated box and the flip test, as the zoo
cards' numbers do (:class:`~poselit.predict.Predictor`). Prints the per-tile PCK as JSON.

    POSELIT_DATA=../shared/data python benchmarks/sample_predictions.py \\
        bulat-mobilenetv2-lsp belagiannis-mobilenetv2-lsp luvizon-mobilenetv2-lsp \\
        --people 6 --out benchmarks/results/lsp_test_samples.jpg

``--smoke`` runs the demo model on 2 generated images (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from poselit.data import read_annotations
from poselit.data.records import AnnotationSet, PoseRecord
from poselit.geometry import DEFAULT_PADDING, apply_affine, crop_affine, warp_image
from poselit.predict import Predictor, load_image
from poselit.visualize import draw_label, draw_skeleton, image_grid, save_image


def evenly_spaced(annotations: AnnotationSet, count: int) -> list[PoseRecord]:
    """``count`` records spread evenly over the set (the first, then every ``len/count``-th)."""
    if not 0 < count <= len(annotations):
        raise ValueError(f"--people must be between 1 and {len(annotations)}, got {count}")
    step = len(annotations) / count
    return [annotations.records[int(i * step)] for i in range(count)]


def person_pck(record: PoseRecord, keypoints: np.ndarray, threshold: float = 0.2) -> float:
    """PCK of one person: percentage of annotated joints within ``threshold * norm`` px."""
    annotated = record.visibility > 0
    distances = np.linalg.norm(keypoints - record.keypoints, axis=-1)
    return float(100 * np.mean(distances[annotated] <= threshold * record.norm)) if annotated.any() else float("nan")


def tile(image: np.ndarray, record: PoseRecord, keypoints: np.ndarray, skeleton, label: str, size: int) -> np.ndarray:
    """The person's crop, ``size`` px square, with ``keypoints`` (image pixels) drawn and
    ``label`` written in the corner."""
    affine = crop_affine(record.center, record.scale, (size, size), padding=DEFAULT_PADDING)
    crop = warp_image(image, affine, (size, size))
    drawn = draw_skeleton(crop, apply_affine(keypoints, affine), record.visibility, skeleton)
    return draw_label(drawn, label)


def sample_grid(models: list[str], records: list[PoseRecord], skeleton, size: int) -> tuple[np.ndarray, list[dict]]:
    """The grid image (annotation, then one column per model) and the per-person PCK rows."""
    predictors = [Predictor.from_zoo(name, device="cpu") for name in models]
    tiles, rows = [], []
    for record in records:
        image = load_image(record.image)
        box = {"center": record.center.tolist(), "scale": record.scale}
        row = {"image": Path(record.image).name}
        tiles.append(tile(image, record, record.keypoints, skeleton, "annotation", size))
        for name, predictor in zip(models, predictors):
            keypoints = predictor(image, box=box)[0].keypoints
            row[name] = round(person_pck(record, keypoints), 1)
            tiles.append(tile(image, record, keypoints, skeleton, f"{name.split('-')[0]} {row[name]:.0f}%", size))
        rows.append(row)
    return image_grid(tiles, columns=1 + len(models)), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["bulat-mobilenetv2-lsp"], help="zoo model names")
    parser.add_argument("--people", type=int, default=6, help="people shown, evenly spaced through LSP test")
    parser.add_argument("--size", type=int, default=200, help="tile side, px")
    parser.add_argument("--out", type=Path, default=Path("lsp_test_samples.jpg"), help="image written (PNG or JPEG, by suffix)")
    parser.add_argument("--smoke", action="store_true", help="the demo model on 2 generated images (for the tests)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            from poselit.data.synthetic import write_synthetic_lsp

            root = write_synthetic_lsp(Path(scratch) / "lsp", num_images=4).parent
            annotations, models = read_annotations("lsp:test", root), ["luvizon-tiny-lsp-demo"]
            args.people = 2
        else:
            annotations, models = read_annotations("lsp:test"), args.models
        grid, rows = sample_grid(models, evenly_spaced(annotations, args.people), annotations.skeleton, args.size)
    print(json.dumps({"out": str(save_image(grid, args.out)), "models": models, "people": rows}))


if __name__ == "__main__":
    main()
