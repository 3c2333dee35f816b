"""Scoring predictions against a dataset split, without a model: ``poselit eval``.

Predictions file (JSON)::

    {
      "dataset": "lsp:test",           # optional: the split they are for (NAME[:SPLIT][@PATH])
      "skeleton": "lsp",               # optional: joint order of "keypoints" (default: the dataset's)
      "label": "my-model",             # optional: row label in the tables
      "predictions": [
        {"source": "joints.mat#1001", "keypoints": [[x, y], ...], "scores": [s, ...]},
        {"index": 1, "keypoints": [[x, y], ...]}
      ]
    }

A bare list is read as ``predictions``. Each prediction names its record by one of
``source`` (the record's :attr:`~poselit.data.records.PoseRecord.source`; only the file
name and item, ``joints.mat#1001``, are compared, so predictions made under another data
root still match), ``index`` (0-based position in the split), or ``image`` (the image's
file name, ``"im1001.jpg"``; with several people on one image each prediction also gives
the ``center`` [x, y] of its person box, and predictions are paired with that image's
records by nearest box centre). Every record needs exactly one prediction.

**The output of** ``poselit predict`` is read as it is: a folder of per-image JSON
documents, its ``predictions.jsonl``, or one document (see :mod:`poselit.predict`). Each
person becomes a prediction matched by ``image`` and its box ``center``, so predicting with
a ``--boxes`` file of the split's person boxes (one per annotated person) and then
``poselit eval OUT --dataset SPLIT`` scores the model (:func:`read_image_documents`). ``keypoints`` are in original-image pixels (the centre of the
top-left pixel is (0, 0)), one ``[x, y]`` per joint, finite numbers even for joints that
are not annotated. ``scores`` (one per joint, any range, higher = more visible) are
optional; when every prediction has them, the visibility AP is reported too.

On COCO-format data (records read by :func:`~poselit.data.readers.coco.read_coco`, which
keep each person's image, box and ``area`` and the file's crowds and people without
keypoints as ignore regions), COCO's OKS-based keypoint AP/AR is reported too
(:class:`~poselit.metrics.KeypointAP`), equal to pycocotools' ``COCOeval`` on the same
predictions; a prediction's score is the mean of its joint ``scores`` (1 without them).

``"skeleton": "mpii"`` on an LSP split reads the 16 MPII slots of models trained on MPII
(Bulat et al.'s LSP model, for one) through :data:`~poselit.skeletons.LSP_TO_MPII`; any
other pair of skeletons is matched by joint name.

:func:`evaluate_poses` is the shared path: it takes the records and arrays of
predictions, runs :func:`~poselit.metrics.pose_metrics` and returns an
:class:`EvaluationReport`, whose tables and JSON ``poselit eval`` prints and writes.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchmetrics import MetricCollection
from tqdm import tqdm

from poselit.data.records import AnnotationSet, PoseRecord
from poselit.data.sources import DatasetSpec, read_annotations
from poselit.files import load_json
from poselit.metrics import CocoPeople, MetricResult, pose_metrics
from poselit.progress import show_progress
from poselit.skeletons import LSP, LSP_TO_MPII, MPII, Skeleton, get_skeleton
from poselit.tables import Reference, Row, Table, metric_table, per_item_table, published_rows

if TYPE_CHECKING:
    from poselit.data.datamodule import PoseDataModule
    from poselit.models.base import PoseLitModule


class PredictionError(ValueError):
    """A predictions file does not follow the schema or does not fit its dataset."""


@dataclass(frozen=True)
class Prediction:
    """One entry of a predictions file, before it is matched to a record."""

    where: str
    keypoints: np.ndarray
    source: str | None = None
    index: int | None = None
    scores: np.ndarray | None = None
    image: str | None = None
    center: np.ndarray | None = None


@dataclass(frozen=True)
class PredictionFile:
    """A parsed predictions file (see the module docs for the schema)."""

    predictions: tuple[Prediction, ...]
    dataset: str | None = None
    skeleton: str | None = None
    label: str | None = None
    path: str = "<predictions>"


def read_predictions(path: str | Path) -> PredictionFile:
    """Read and parse a predictions file: the JSON of the module docs, or the output of
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


def _parse_entry(entry: Any, where: str) -> Prediction:
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
    return Prediction(where, keypoints, source, index, scores, image, center)


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
    matched: dict[int, Prediction] = {}
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


def image_matches(predictions: Sequence[Prediction], annotations: AnnotationSet) -> list[tuple[Prediction, int]]:
    """Predictions that name their ``image``, each paired with a record of that image: the
    only one, or (several people) by nearest box ``center``, one prediction per record."""
    records: dict[str, list[int]] = {}
    for i, record in enumerate(annotations.records):
        records.setdefault(Path(record.image).name, []).append(i)
    groups: dict[str, list[Prediction]] = {}
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


def _record_index(p: Prediction, by_key: Mapping[str, int], n: int) -> int:
    if p.source is not None:
        key = source_key(p.source)
        if key not in by_key:
            raise PredictionError(f"{p.where}: no record {key!r} in the dataset (wrong split?)")
        return by_key[key]
    if not 0 <= p.index < n:  # type: ignore[operator]
        raise PredictionError(f"{p.where}: index {p.index} is outside the {n} records of the dataset")
    return p.index  # type: ignore[return-value]


@dataclass(frozen=True)
class EvaluationReport:
    """The scores of one set of predictions on one dataset split."""

    dataset: str
    records: int
    label: str
    results: tuple[MetricResult, ...]

    @classmethod
    def from_metrics(
        cls, metrics: MetricCollection, dataset: str, records: int, label: str
    ) -> EvaluationReport:
        """Collect the results of updated :func:`~poselit.metrics.pose_metrics`."""
        return cls(dataset, records, label, tuple(m.result() for m in metrics.values()))  # type: ignore[attr-defined]

    def tables(
        self, references: Sequence[str | Reference | EvaluationReport] = (), per_item: bool = False
    ) -> list[Table]:
        """One paper-layout table per metric, with reference rows: published results
        (paper keys, see :data:`~poselit.tables.PAPERS`, or :class:`~poselit.tables.Reference`
        rows such as a recipe's) and other reports on the same dataset (their rows for the
        same metric)."""
        name = DatasetSpec.parse(self.dataset).name
        papers = [r for r in references if isinstance(r, str)]
        rows_given = [r for r in references if isinstance(r, Reference) and DatasetSpec.parse(r.dataset).name == name]
        reports = [
            r
            for r in references
            if isinstance(r, EvaluationReport) and DatasetSpec.parse(r.dataset).name == name
        ]
        tables = []
        for result in self.results:
            rows = published_rows(papers, name, result.metric) + [
                r.row() for r in rows_given if r.metric == result.metric
            ] + [
                Row(other.label, r.columns)
                for other in reports
                for r in other.results
                if r.metric == result.metric
            ]
            title = f"{self.dataset}, {self.records} people: {result.metric}"
            tables.append(metric_table(result, self.label, title, rows))
            if per_item and result.items:
                tables.append(
                    per_item_table(
                        result, f"{title}, per {'stick' if result.metric.startswith('PCP') else 'joint'}"
                    )
                )
        return tables

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "records": self.records,
            "label": self.label,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        return cls(
            str(data["dataset"]),
            int(data["records"]),
            str(data["label"]),
            tuple(MetricResult.from_dict(r) for r in data["results"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> EvaluationReport:
        """Read a report written by ``poselit eval --json``."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f"{path}: not a results file written by 'poselit eval --json' ({err!r})"
            ) from err


def evaluate_poses(
    annotations: AnnotationSet,
    keypoints: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor | None = None,
    *,
    threshold: float | None = None,
    sigmas: Sequence[float] | None = None,
    dataset: str = "",
    label: str = "ours",
    batch_size: int = 1024,
    progress: bool | None = None,
) -> EvaluationReport:
    """Score ``(N, K, 2)`` predicted keypoints (original pixels, record order) against the
    records, with the dataset protocol's metrics (:func:`~poselit.metrics.pose_metrics`),
    COCO's OKS AP/AR included for COCO-format records (``sigmas``: see
    :class:`~poselit.metrics.KeypointAP`).

    ``progress``: a bar over the records on stderr (``None``: for 100 records and more,
    when stderr is a terminal)."""
    records = annotations.records
    keypoints = torch.as_tensor(keypoints, dtype=torch.float64)
    k = annotations.skeleton.num_joints
    if keypoints.shape != (len(records), k, 2):
        raise ValueError(
            f"expected predictions of shape ({len(records)}, {k}, 2), got {tuple(keypoints.shape)}"
        )
    target = torch.as_tensor(np.stack([r.keypoints for r in records]) if records else np.zeros((0, k, 2)))
    visibility = torch.as_tensor(np.stack([r.visibility for r in records]) if records else np.zeros((0, k)))
    norm = torch.tensor([r.norm for r in records], dtype=torch.float64)
    inputs = {"preds": keypoints, "target": target, "visibility": visibility, "norm": norm}
    if scores is not None:
        inputs["scores"] = torch.as_tensor(scores, dtype=torch.float64)
    coco = coco_people(annotations)
    if coco is not None:
        inputs["area"], inputs["image"] = torch.as_tensor(coco[0].area), torch.as_tensor(coco[0].image)
    elif sigmas is not None:
        raise ValueError(f"{annotations.source}: OKS sigmas apply to COCO-format data with 'area' only")
    metrics = pose_metrics(
        annotations.skeleton, threshold, scores=scores is not None, coco=None if coco is None else coco[1], sigmas=sigmas
    )
    show = show_progress(progress, len(records))
    with tqdm(total=len(records), desc="scoring", unit="person", disable=not show) as bar:
        for start in range(0, len(records), batch_size):
            metrics.update(**{name: value[start : start + batch_size] for name, value in inputs.items()})
            bar.update(min(batch_size, len(records) - start))
    return EvaluationReport.from_metrics(metrics, dataset or annotations.source, len(records), label)


def coco_people(annotations: AnnotationSet) -> tuple[CocoPeople, CocoPeople] | None:
    """``(records, ignore regions)`` of COCO-format annotations as COCO's keypoint evaluation
    sees them, image keys ranked as the COCO image ids sort; None unless every record
    and region has its :attr:`~poselit.data.records.PoseRecord.coco` fields with an ``area``."""
    people = annotations.records + annotations.ignored
    if not annotations.records or any(p.coco is None or p.coco.area is None for p in people):
        return None
    ids = sorted({p.coco.image_id for p in people}, key=lambda i: (isinstance(i, str), i))  # type: ignore[union-attr]
    rank = {image_id: n for n, image_id in enumerate(ids)}
    return _people(annotations.records, rank), _people(annotations.ignored, rank)


def _people(records: Sequence[PoseRecord], rank: Mapping[Any, int]) -> CocoPeople:
    k = records[0].skeleton.num_joints if records else 0
    coco = [r.coco for r in records]
    return CocoPeople(
        image=np.array([rank[c.image_id] for c in coco], np.int64),  # type: ignore[union-attr]
        keypoints=np.stack([r.keypoints for r in records]).astype(np.float64) if records else np.zeros((0, k, 2)),
        visibility=np.stack([r.visibility for r in records]) if records else np.zeros((0, k)),
        area=np.array([c.area for c in coco], np.float64),  # type: ignore[union-attr]
        box=np.array([c.box or (math.nan,) * 4 for c in coco], np.float64).reshape(-1, 4),  # type: ignore[union-attr]
        crowd=np.array([c.crowd for c in coco], bool),  # type: ignore[union-attr]
    )


def test_reports(model: PoseLitModule, datamodule: PoseDataModule) -> list[EvaluationReport]:
    """The results of ``model``'s last test run (``Trainer.test``) grouped per test dataset
    of ``datamodule``, as evaluation reports."""
    grouped = defaultdict(list)
    for key, result in model.results.items():
        prefix = key.split("/", 1)[0]
        if prefix.startswith("test"):
            grouped[int(prefix[4:] or 0)].append(result)
    reports = []
    for index, results in sorted(grouped.items()):
        spec = datamodule.test_specs[index]
        records = len(datamodule.datasets["test"][index])
        reports.append(EvaluationReport(str(spec), records, type(model).__name__, tuple(results)))
    return reports


def evaluate_predictions(
    predictions: str | Path | PredictionFile,
    spec: str | DatasetSpec | None = None,
    data_root: str | Path | None = None,
    *,
    threshold: float | None = None,
    sigmas: Sequence[float] | None = None,
    label: str | None = None,
    progress: bool | None = None,
) -> EvaluationReport:
    """Score a predictions file against a dataset split.

    Args:
        predictions: Path of a predictions JSON (see the module docs) or a parsed file.
        spec: Dataset split, ``NAME[:SPLIT][@PATH]``; default: the file's ``dataset``.
        data_root: Folder holding the datasets (relative paths resolve against it).
        threshold: PCK threshold; default: the protocol's (0.5 PCKh, 0.2 PCK).
        sigmas: Per-joint OKS sigmas for COCO-format data (default: the skeleton's).
        label: Row label; default: the file's ``label``, else its file name.
        progress: Progress bar, see :func:`evaluate_poses`.
    """
    file = predictions if isinstance(predictions, PredictionFile) else read_predictions(predictions)
    spec = spec or file.dataset
    if spec is None:
        raise PredictionError(
            f"{file.path}: no 'dataset' in the file; name the split (e.g. --dataset lsp:test)"
        )
    annotations = read_annotations(spec, data_root)
    keypoints, scores = align_predictions(file, annotations)
    label = label or file.label or Path(file.path).stem
    return evaluate_poses(
        annotations, keypoints, scores, threshold=threshold, sigmas=sigmas, dataset=str(DatasetSpec.parse(spec)),
        label=label, progress=progress,
    )


def predictions_document(
    annotations: AnnotationSet,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    dataset: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """A predictions JSON document (the schema of the module docs) for records in order."""
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


__all__ = [
    "EvaluationReport",
    "Prediction",
    "PredictionError",
    "PredictionFile",
    "align_predictions",
    "coco_people",
    "evaluate_poses",
    "evaluate_predictions",
    "joint_slots",
    "image_matches",
    "parse_predictions",
    "predictions_document",
    "predictions_from_images",
    "read_image_documents",
    "read_predictions",
    "source_key",
    "test_reports",
]
