"""Reading the files a user names, with errors that name them.

Shared by the dataset readers, the evaluation, the predictor's box files and the zoo's
``config.json``: none of them should depend on another for this, so it lives here, below
them all (writing is :mod:`poselit.atomic`'s job).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, or a ``FileNotFoundError`` saying which ``what`` is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def load_json(path: str | Path, what: str, error: type[Exception] = ValueError) -> Any:
    """Load a JSON file: a missing file is a ``FileNotFoundError`` saying which ``what`` is
    missing, a syntax or encoding error an ``error`` naming the file."""
    path = require_file(path, what)
    try:
        with path.open("rb") as file:
            return json.load(file)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise error(f"{path}: not a readable JSON file ({err})") from err
