"""Predictions files: reading them, checking them, and pairing their entries with records.

A predictions file (the schema is in :mod:`poselit.evaluate`) or the image documents that
``poselit predict`` writes become a :class:`PredictionFile` (:func:`read_predictions`);
:func:`align_predictions` then puts its entries in the order of a split's records and the
dataset's joint order, matching each entry by its record's ``source``, its ``index`` or its
``image`` (several people on one image: by nearest box ``center``, an optimal assignment).
Every error is a :class:`PredictionError` naming the entry and the record. The inverse,
:func:`predictions_document`, writes records' predictions in the same schema. The scoring
itself is :mod:`poselit.evaluate`, which re-exports every name of this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from poselit.data.records import AnnotationSet
from poselit.files import load_json
from poselit.lazy import lazy_names
from poselit.skeletons import LSP, LSP_TO_MPII, MPII, Skeleton, get_skeleton

__all__ = [
    "PredictionError",
    "PredictionFile",
    "SavedPrediction",
    "align_predictions",
    "image_matches",
    "joint_slots",
    "parse_predictions",
    "predictions_document",
    "predictions_from_images",
    "read_image_documents",
    "read_predictions",
    "source_key",
]


class PredictionError(ValueError):
    """A predictions file does not follow the schema or does not fit its dataset."""


@dataclass(frozen=True)
class SavedPrediction:
    """One entry of a predictions file (read back from a saved file, before it is matched to
    a record); the live result of a model is :class:`~poselit.predict_results.PosePrediction`.
    ``Prediction``, its former name, works for one release and warns."""

    where: str
    keypoints: np.ndarray
    source: str | None = None
    index: int | None = None
    scores: np.ndarray | None = None
    image: str | None = None
    center: np.ndarray | None = None


@dataclass(frozen=True)
class PredictionFile:
    """A parsed predictions file (the schema is in :mod:`poselit.evaluate`)."""

    predictions: tuple[SavedPrediction, ...]
    dataset: str | None = None
    skeleton: str | None = None
    label: str | None = None
    path: str = "<predictions>"


def read_predictions(path: str | Path) -> PredictionFile:
    """Read and parse a predictions file: the JSON of :mod:`poselit.evaluate`, or the output of
    ``poselit predict`` (its folder, its ``predictions.jsonl``, or one image's document)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".jsonl":
        return predictions_from_images(read_image_documents(path), str(path))
    data = load_json(path, "predictions file", PredictionError)
    if isinstance(data, Mapping) and "people" in data:
        return predictions_from_images([(str(path), data)], str(path))
    return parse_predictions(data, str(path))


def read_image_documents(path: Path) -> list[tuple[str, Any]]:
    """``(where, document)`` of every image document ``poselit predict`` wrote: the lines of
    a ``.jsonl`` file, or in a folder its ``predictions.jsonl`` if there is one, else its
    ``*.json`` files in name order."""
    if path.is_dir():
        jsonl = path / "predictions.jsonl"
        if not jsonl.is_file():
            files = sorted(path.glob("*.json"))
            if not files:
                raise PredictionError(f"{path}: no *.json or predictions.jsonl written by 'poselit predict'")
            return [(str(f), load_json(f, "predictions file", PredictionError)) for f in files]
        path = jsonl
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    documents = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                documents.append((f"{path}:{number}", json.loads(line)))
            except ValueError as err:
                raise PredictionError(f"{path}:{number}: not a JSON document ({err})") from None
    return documents


def predictions_from_images(documents: Sequence[tuple[str, Any]], where: str = "<predictions>") -> PredictionFile:
    """The predictions in ``poselit predict`` image documents: one per person, matched by
    the image's file name and the person's box centre. Every document must use the same
    skeleton; the ``model`` becomes the label."""
    entries, skeletons, models = [], set(), set()
    for doc_where, document in documents:
        if not isinstance(document, Mapping) or not isinstance(document.get("people"), list):
            raise PredictionError(f"{doc_where}: expected a 'poselit predict' image document with a 'people' list")
        try:
            image = Path(str(document["image"])).name
            skeletons.add(str(document["skeleton"]["name"]))
            for person in document["people"]:
                entry = {"image": image, "keypoints": person["keypoints"], "scores": person.get("scores")}
                entries.append({**entry, "center": person["box"]["center"]} if person.get("box") else entry)
        except (KeyError, TypeError) as err:
            raise PredictionError(f"{doc_where}: not a 'poselit predict' image document (no field {err})") from None
        models.add(document.get("model"))
    if len(skeletons) > 1:
        raise PredictionError(f"{where}: documents of several skeletons {sorted(skeletons)}; evaluate them one by one")
    label = models.pop() if len(models) == 1 else None
    data = {"skeleton": skeletons.pop() if skeletons else None, "label": label, "predictions": entries}
    return parse_predictions(data, where)


def parse_predictions(data: Any, where: str = "<predictions>") -> PredictionFile:
    """Check the schema of a loaded predictions document and parse its entries."""
    if isinstance(data, list):
        data = {"predictions": data}
    if not isinstance(data, Mapping) or not isinstance(data.get("predictions"), list):
        raise PredictionError(f"{where}: expected an object with a 'predictions' list (or a bare list)")
    meta = {}
    for key in ("dataset", "skeleton", "label"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise PredictionError(f"{where}: field {key!r} must be a string, got {value!r}")
        meta[key] = value
    entries = tuple(_parse_entry(e, f"{where}: predictions[{i}]") for i, e in enumerate(data["predictions"]))
    return PredictionFile(entries, path=where, **meta)


def _parse_entry(entry: Any, where: str) -> SavedPrediction:
    if not isinstance(entry, Mapping) or "keypoints" not in entry:
        raise PredictionError(f"{where}: expected an object with 'keypoints' and 'source', 'index' or 'image'")
    source, index, image = entry.get("source"), entry.get("index"), entry.get("image")
    if sum(key is not None for key in (source, index, image)) != 1:
        raise PredictionError(f"{where}: give exactly one of 'source', 'index' and 'image'")
    for name, value in (("source", source), ("image", image)):
        if value is not None and not isinstance(value, str):
            raise PredictionError(f"{where}: {name!r} must be a string, got {value!r}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise PredictionError(f"{where}: 'index' must be an integer, got {index!r}")
    center = None if entry.get("center") is None else _numbers(entry["center"], where, "center")
    if center is not None and (center.shape != (2,) or not np.isfinite(center).all()):
        raise PredictionError(f"{where}: 'center' must be two finite numbers [x, y], got {entry['center']!r}")
    keypoints = _numbers(entry["keypoints"], where, "keypoints")
    if keypoints.ndim != 2 or keypoints.shape[1] != 2:
        raise PredictionError(
            f"{where}: 'keypoints' must be a list of [x, y] pairs, got shape {keypoints.shape}"
        )
    scores = None if entry.get("scores") is None else _numbers(entry["scores"], where, "scores")
    if scores is not None and scores.shape != (len(keypoints),):
        raise PredictionError(f"{where}: {len(keypoints)} keypoints but scores of shape {scores.shape}")
    return SavedPrediction(where, keypoints, source, index, scores, image, center)


def _numbers(value: Any, where: str, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PredictionError(f"{where}: {name!r} must hold numbers ({err})") from None


def source_key(source: str) -> str:
    """The part of a record source that predictions are matched on: ``file name#item``."""
    file, sep, item = source.rpartition("#")
    return f"{Path(file).name}#{item}" if sep else Path(source).name


def joint_slots(source: Skeleton, target: Skeleton) -> tuple[int, ...]:
    """For each joint of ``target``, the index of the same joint in ``source``'s order."""
    if source == target:
        return tuple(range(target.num_joints))
    if source == MPII and target == LSP:
        return tuple(LSP_TO_MPII.index(j) for j in range(LSP.num_joints))
    missing = [name for name in target.joints if name not in source.joints]
    if missing:
        raise PredictionError(
            f"predictions in skeleton {source.name!r} lack joints of {target.name!r}: {missing}"
        )
    return tuple(source.joints.index(name) for name in target.joints)


def align_predictions(
    file: PredictionFile, annotations: AnnotationSet
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions in record order and the dataset's joint order: ``(N, K, 2)`` keypoints
    and ``(N, K)`` scores (None unless every prediction has scores).

    Errors name the prediction and its record: unknown source, index out of range, two
    predictions for one record, wrong number of joints, non-finite values, records left
    without a prediction.
    """
    same = file.skeleton in (None, annotations.skeleton.name)  # also custom COCO-format skeletons
    skeleton = annotations.skeleton if same else get_skeleton(file.skeleton)  # type: ignore[arg-type]
    slots = list(joint_slots(skeleton, annotations.skeleton))
    keys = [source_key(r.source) for r in annotations.records]
    by_key = {key: i for i, key in enumerate(keys)}
    if len(by_key) != len(keys) and any(p.source is not None for p in file.predictions):
        raise PredictionError(
            f"{annotations.source}: record sources are not unique; match predictions by 'index'"
        )
    keyed = [(p, _record_index(p, by_key, len(keys))) for p in file.predictions if p.image is None]
    by_image = [p for p in file.predictions if p.image is not None]
    matched: dict[int, SavedPrediction] = {}
    for p, i in keyed + image_matches(by_image, annotations):
        if i in matched:
            raise PredictionError(
                f"{p.where}: record {keys[i]} already has a prediction ({matched[i].where})"
            )
        record = f"{p.where} (record {keys[i]})"
        if len(p.keypoints) != skeleton.num_joints:
            raise PredictionError(
                f"{record}: {len(p.keypoints)} keypoints, expected {skeleton.num_joints} for skeleton "
                f"{skeleton.name!r} (set 'skeleton' in the file if they are in another joint order)"
            )
        for name, values in (("coordinates", p.keypoints), ("scores", p.scores)):
            if values is not None and not np.isfinite(values).all():
                bad = np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(1))
                joints = [skeleton.joints[j] for j in bad]
                raise PredictionError(f"{record}: non-finite {name} for joints {joints}")
        matched[i] = p
    missing = [keys[i] for i in range(len(keys)) if i not in matched]
    if missing:
        raise PredictionError(
            f"{file.path}: no prediction for {len(missing)} of {len(keys)} records of {annotations.source}, "
            f"e.g. {', '.join(missing[:5])}"
        )
    ordered = [matched[i] for i in range(len(keys))]
    keypoints = np.stack([p.keypoints for p in ordered])[:, slots]
    without = [p.where for p in ordered if p.scores is None]
    if without and len(without) < len(ordered):
        raise PredictionError(f"scores are given for some predictions but not for {without[0]}")
    scores = None if without else np.stack([p.scores for p in ordered])[:, slots]  # type: ignore[misc]
    return keypoints, scores


def image_matches(
    predictions: Sequence[SavedPrediction], annotations: AnnotationSet
) -> list[tuple[SavedPrediction, int]]:
    """Predictions that name their ``image``, each paired with a record of that image: the
    only one, or (several people) by nearest box ``center``, one prediction per record."""
    records: dict[str, list[int]] = {}
    for i, record in enumerate(annotations.records):
        records.setdefault(Path(record.image).name, []).append(i)
    groups: dict[str, list[SavedPrediction]] = {}
    for p in predictions:
        groups.setdefault(p.image, []).append(p)  # type: ignore[arg-type]
    pairs = []
    for image, group in groups.items():
        candidates = records.get(image)
        if candidates is None:
            raise PredictionError(f"{group[0].where}: no record of image {image!r} in {annotations.source} (wrong split?)")
        if len(group) != len(candidates):
            raise PredictionError(
                f"{group[0].where}: {len(group)} predictions for image {image!r}, which has {len(candidates)} "
                f"annotated people in {annotations.source}; predict one per person (poselit predict --boxes)"
            )
        if len(group) == 1:
            pairs.append((group[0], candidates[0]))
            continue
        missing = [p.where for p in group if p.center is None]
        if missing:
            raise PredictionError(f"{missing[0]}: image {image!r} has several people: give each prediction's 'center'")
        centers = np.stack([p.center for p in group])  # type: ignore[misc]
        truth = np.stack([annotations.records[i].center for i in candidates])
        rows, cols = linear_sum_assignment(np.linalg.norm(centers[:, None] - truth[None], axis=-1))
        pairs += [(group[r], candidates[c]) for r, c in zip(rows, cols)]
    return pairs


def _record_index(p: SavedPrediction, by_key: Mapping[str, int], n: int) -> int:
    if p.source is not None:
        key = source_key(p.source)
        if key not in by_key:
            raise PredictionError(f"{p.where}: no record {key!r} in the dataset (wrong split?)")
        return by_key[key]
    if not 0 <= p.index < n:  # type: ignore[operator]
        raise PredictionError(f"{p.where}: index {p.index} is outside the {n} records of the dataset")
    return p.index  # type: ignore[return-value]


def predictions_document(
    annotations: AnnotationSet,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    dataset: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """A predictions JSON document (the schema of :mod:`poselit.evaluate`) for records in order."""
    entries = []
    for i, record in enumerate(annotations.records):
        entry: dict[str, Any] = {
            "source": source_key(record.source),
            "keypoints": np.asarray(keypoints[i]).tolist(),
        }
        if scores is not None:
            entry["scores"] = np.asarray(scores[i]).tolist()
        entries.append(entry)
    meta = {"dataset": dataset, "skeleton": annotations.skeleton.name, "label": label}
    return {**{k: v for k, v in meta.items() if v is not None}, "predictions": entries}


# Renamed names, importable under their old names for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved={"Prediction": "poselit.prediction_files:SavedPrediction"})
