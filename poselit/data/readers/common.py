"""Helpers shared by the readers: opening annotation files and reading their fields with
errors that name the file, the record and the field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import scipy.io

from poselit.data.records import AnnotationError, AnnotationSet, PoseRecord
from poselit.skeletons import Skeleton


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, or an error saying which file is missing and why."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def load_mat(path: str | Path, what: str, **kwargs) -> dict:
    """Load a MATLAB ``.mat`` file, turning format errors into :class:`AnnotationError`."""
    path = require_file(path, what)
    try:
        return scipy.io.loadmat(path, **kwargs)
    except Exception as err:  # scipy raises several types for truncated/invalid files
        raise AnnotationError(f"{path}: not a readable MATLAB .mat file ({err})") from err


def load_json(path: str | Path, what: str, error: type[Exception] = AnnotationError) -> Any:
    """Load a JSON file: a missing file is a ``FileNotFoundError`` saying which ``what`` is
    missing, a syntax or encoding error an ``error`` naming the file."""
    path = require_file(path, what)
    try:
        with path.open("rb") as file:
            return json.load(file)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise error(f"{path}: not a readable JSON file ({err})") from err


def require_field(
    data: Any, key: str, where: str | Path, kind: type | None = None, hint: str = ""
) -> Any:
    """``data[key]`` (optionally checked to be a ``kind``), or an error naming ``where``.

    ``where`` is the file, or the file and record (``file#3``), named in the error.
    """
    if not isinstance(data, Mapping):
        raise AnnotationError(
            f"{where}: expected an object with field {key!r}, got {type(data).__name__}{hint}"
        )
    if key not in data:
        fields = sorted(str(k) for k in data if not str(k).startswith("__"))
        raise AnnotationError(f"{where}: no field {key!r} (fields: {fields}){hint}")
    value = data[key]
    if kind is not None and not isinstance(value, kind):
        raise AnnotationError(
            f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}{hint}"
        )
    return value


def require_array(
    data: Any, key: str, where: str | Path, shape: tuple[int | None, ...], hint: str = ""
) -> np.ndarray:
    """``data[key]`` as a float array of ``shape`` (``None`` = any length) or a clear error."""
    value = require_field(data, key, where, hint=hint)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:  # ragged lists, strings, objects
        raise AnnotationError(
            f"{where}: field {key!r} is not an array of numbers ({err}){hint}"
        ) from err
    ok = array.ndim == len(shape) and all(e is None or e == a for e, a in zip(shape, array.shape))
    if not ok:
        want = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
        raise AnnotationError(
            f"{where}: field {key!r} has shape {array.shape}, expected {want}{hint}"
        )
    return array


def collect(
    items: Iterable[PoseRecord | str], skeleton: Skeleton, source: str | Path
) -> AnnotationSet:
    """Gather a reader's per-item results: a record, or the reason the item was skipped.

    Readers yield one result per item of the file, so every skipped item is counted.
    """
    records: list[PoseRecord] = []
    skipped: Counter = Counter()
    for item in items:
        if isinstance(item, str):
            skipped[item] += 1
        else:
            records.append(item)
    return AnnotationSet(records, skeleton, str(source), skipped)
