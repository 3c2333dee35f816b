"""Data layer: readers -> records -> PoseDataset -> PoseDataModule."""

from poselit.data.records import AnnotationError, AnnotationSet, PoseRecord
from poselit.data.sources import DatasetSpec, read_annotations

__all__ = [
    "AnnotationError",
    "AnnotationSet",
    "DatasetSpec",
    "PoseRecord",
    "read_annotations",
]
