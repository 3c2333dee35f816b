"""Helpers shared by the readers: opening annotation files with errors that name them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from poselit.data.records import AnnotationError


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


def require_array(
    data: dict, key: str, path: Path, shape: tuple[int | None, ...], hint: str = ""
) -> np.ndarray:
    """``data[key]`` as a float array of ``shape`` (``None`` = any length) or a clear error."""
    if key not in data:
        fields = sorted(k for k in data if not k.startswith("__"))
        raise AnnotationError(f"{path}: no field {key!r} (fields: {fields}){hint}")
    array = np.asarray(data[key])
    ok = array.ndim == len(shape) and all(e is None or e == a for e, a in zip(shape, array.shape))
    if not ok:
        want = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
        raise AnnotationError(
            f"{path}: field {key!r} has shape {array.shape}, expected {want}{hint}"
        )
    return array.astype(np.float64)
