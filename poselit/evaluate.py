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

Predictions files are read, checked and paired with records by
:mod:`poselit.prediction_files`, whose names are all importable from here too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torchmetrics import MetricCollection
from tqdm import tqdm

from poselit import prediction_files
from poselit.data.readers.coco import oks_people
from poselit.data.records import AnnotationSet
from poselit.data.sources import DatasetSpec, read_annotations
from poselit.evaluation_protocols import MetricResult
from poselit.lazy import lazy_names
from poselit.metrics import pose_metrics
from poselit.oks import CocoPeople
from poselit.prediction_files import *  # noqa: F403 (re-exported: see __all__)
from poselit.progress import show_progress
from poselit.tables import Reference, Row, Table, metric_table, per_item_table, published_rows

if TYPE_CHECKING:
    from poselit.data.datamodule import PoseDataModule
    from poselit.models.base import PoseLitModule

__all__ = [
    "EvaluationReport",
    "METRIC_ORDER",
    "coco_people",
    "evaluate_poses",
    "evaluate_predictions",
    "test_reports",
    *prediction_files.__all__,
]


METRIC_ORDER = ("PCK", "PCP", "Visibility AP", "OKS AP")
"""The order of a report's results, by the start of their metric's name: the dataset's PCK
(or PCKh) first, whose ``Total`` the zoo's table and a card's ``check`` show, then the others
(a :class:`~torchmetrics.MetricCollection` holds them in its keys' alphabetical order)."""


def metric_rank(result: MetricResult) -> int:
    """The position of ``result`` in :data:`METRIC_ORDER` (after them: an unknown metric)."""
    return next((n for n, start in enumerate(METRIC_ORDER) if result.metric.startswith(start)), len(METRIC_ORDER))


@dataclass(frozen=True)
class EvaluationReport:
    """The scores of one set of predictions on one dataset split; ``results`` are kept in
    :data:`METRIC_ORDER`."""

    dataset: str
    records: int
    label: str
    results: tuple[MetricResult, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(sorted(self.results, key=metric_rank)))

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
    sees them (:func:`~poselit.data.readers.coco.oks_people`, which the datasets of the test
    loop use too), or None unless every record and region has an ``area``."""
    return oks_people(annotations.records, annotations.ignored)


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


# Renamed, importable here under its old name for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved={"Prediction": "poselit.prediction_files:SavedPrediction"})
