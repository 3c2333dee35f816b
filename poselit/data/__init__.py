"""Data layer: readers -> records -> PoseDataset -> PoseDataModule."""

from poselit.data.records import PIXEL_STD, AnnotationError, AnnotationSet, PoseRecord
from poselit.data.sources import DatasetSpec, read_annotations

__all__ = [
    "PIXEL_STD",
    "AnnotationError",
    "AnnotationSet",
    "DatasetSpec",
    "PoseRecord",
    "read_annotations",
]
