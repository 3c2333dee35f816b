"""What :class:`~poselit.predict.Predictor` returns and how ``poselit predict`` writes it.

One :class:`PosePrediction` per person (joints and scores in the original image's pixels,
the box and the affine of its crop); the JSON document of an image
(:func:`image_document`, written one field and one person a line by
:func:`document_text`, so the files stay readable and diffable); and the image with every
skeleton drawn on it (:func:`draw_predictions`); ``predictions.jsonl``, one document a
line, appended whole as each image is done (:class:`JsonLines`) and read back up to the
last whole line (:func:`whole_lines`), so that a killed run can be resumed. The document's
schema is in :mod:`poselit.predict`, which re-exports every name of this module; video
tracking (:mod:`poselit.video`) writes the same documents, one line per frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np

from poselit.skeletons import Skeleton
from poselit.visualize import draw_skeleton

__all__ = [
    "JsonLines",
    "PosePrediction",
    "document_text",
    "draw_predictions",
    "image_document",
    "skeleton_dict",
    "whole_lines",
]


@dataclass(frozen=True, eq=False)
class PosePrediction:
    """The pose of one person.

    Args:
        keypoints: ``(K, 2)`` float32 joints in original-image pixels (top-left pixel
            centre = (0, 0)).
        scores: ``(K,)`` float32 per-joint scores of the model (higher = surer; the range
            depends on the method).
        skeleton: Joint names, flip pairs and bones.
        center: ``(2,)`` centre of the person box used, original-image pixels.
        scale: Person box side / 200 px (MPII convention; the crop adds the margin).
        image: The image's path, or its name.
        image_index: Position of the image in the predictor's input.
        image_size: ``(height, width)`` of the image.
        affine: ``(2, 3)`` model input pixels -> original-image pixels.
        crop: The ``(h, w, 3)`` RGB model input, with ``return_heatmaps`` only.
        heatmaps: The ``(K, h', w')`` heatmaps of the unflipped crop, with
            ``return_heatmaps`` and a heatmap method only (for
            :func:`~poselit.visualize.draw_heatmaps`).
        detection_score: The person detector's score of the box, when a detector found
            the person (:mod:`poselit.detect`); ``None`` for a given box or the whole image.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    skeleton: Skeleton
    center: np.ndarray
    scale: float
    image: str
    image_index: int
    image_size: tuple[int, int]
    affine: np.ndarray
    crop: np.ndarray | None = None
    heatmaps: np.ndarray | None = None
    detection_score: float | None = None

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.skeleton.joints

    def person_dict(self) -> dict[str, Any]:
        """The person's entry of a JSON document (``people`` in :mod:`poselit.predict`); coordinates
        rounded to 0.01 px, scores to 4 decimals; ``detection_score`` only when a detector
        found the person."""
        return {
            "box": {"center": _rounded(self.center, 2), "scale": round(self.scale, 6)},
            "keypoints": _rounded(self.keypoints, 2),
            "scores": _rounded(self.scores, 4),
            **({} if self.detection_score is None else {"detection_score": round(float(self.detection_score), 4)}),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the document (:mod:`poselit.predict`) with this one person."""
        return image_document(self.image, self.image_size, self.skeleton, [self])


def _rounded(values: np.ndarray, decimals: int) -> list:
    return np.round(values.astype(np.float64), decimals).tolist()


def skeleton_dict(skeleton: Skeleton) -> dict[str, Any]:
    """``{"name", "joints", "limbs"}`` of a skeleton, for JSON."""
    return {"name": skeleton.name, "joints": list(skeleton.joints), "limbs": [list(limb) for limb in skeleton.limbs]}


def image_document(
    image: str,
    image_size: tuple[int, int],
    skeleton: Skeleton,
    people: Sequence[PosePrediction],
    model: str | None = None,
) -> dict[str, Any]:
    """The JSON document (:mod:`poselit.predict`) of one image of ``image_size = (height, width)``."""
    return {
        "image": image,
        "width": int(image_size[1]),
        "height": int(image_size[0]),
        **({"model": model} if model is not None else {}),
        "skeleton": skeleton_dict(skeleton),
        "people": [p.person_dict() for p in people],
    }


def document_text(document: Mapping[str, Any]) -> str:
    """A document as JSON text with one line per field and per person: readable and
    diffable, without one line per number."""
    fields = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in document.items() if key != "people"]
    people = ",\n".join(f"    {json.dumps(person)}" for person in document["people"])
    return "{\n" + ",\n".join([*fields, f'  "people": [\n{people}\n  ]']) + "\n}\n"


def draw_predictions(
    image: np.ndarray, people: Sequence[PosePrediction], max_side: int | None = None
) -> np.ndarray:
    """``image`` (RGB) with every person's skeleton, joint opacity by score; first
    downscaled (area averaging) so that its longer side is at most ``max_side``."""
    factor = 1.0 if max_side is None else min(1.0, max_side / max(image.shape[:2]))
    if factor < 1:
        height, width = (max(1, round(side * factor)) for side in image.shape[:2])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    for person in people:
        visible = np.full(person.skeleton.num_joints, 2)
        keypoints = (person.keypoints + 0.5) * factor - 0.5  # pixel centres stay pixel centres
        image = draw_skeleton(image, keypoints, visible, person.skeleton, scores=person.scores)
    return image


class JsonLines:
    """A JSON-lines file that grows by whole lines: each document is one line, written by
    one ``write`` call to the end of the file, so that a process killed at any moment
    leaves every line before it whole (at worst a torn last line, after a full disk or a
    crash of the machine, which ``append=True`` cuts off: :func:`whole_lines`).

    Args:
        path: The file.
        append: Keep the whole lines already in it and write after them (a resumed run);
            ``False``: start it empty.
    """

    def __init__(self, path: str | os.PathLike, *, append: bool = False) -> None:
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        try:
            self.descriptor = os.open(self.path, flags, 0o666)
            if append:
                os.truncate(self.descriptor, whole_size(self.path))
        except OSError as err:
            raise OSError(f"{self.path}: could not open the file for writing ({err.strerror or err})") from err

    def write(self, document: Any) -> None:
        """Append ``document`` as one line."""
        data = (json.dumps(document) + "\n").encode("utf-8")
        while data:  # a regular file takes it in one call; the loop is for the rare short write
            data = data[os.write(self.descriptor, data) :]

    def close(self) -> None:
        os.close(self.descriptor)

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def whole_size(path: Path, block: int = 1 << 16) -> int:
    """The bytes of a file up to and with its last newline (0 when it has none), read
    backwards from its end by ``block`` bytes."""
    with path.open("rb") as file:
        end = file.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - block)
            file.seek(start)
            newline = file.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def whole_lines(path: str | os.PathLike) -> Iterator[Any]:
    """The documents of a JSON-lines file's whole lines (nothing when it is missing; a last
    line without its newline, torn by a crash, is left out); a ``ValueError`` naming
    ``file:line`` for a line that is not JSON."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            if not line.endswith(b"\n"):
                return
            try:
                yield json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not a JSON document ({err}); remove or repair the line") from None
