"""Reading the files a user names, with errors that name them.

Shared by the dataset readers, the evaluation, the predictor's box files, the zoo's
``config.json`` and every safetensors weights file (zoo models, checkpoints, backbone weights): none of them should depend on another for this, so it lives here, below
them all (writing is :mod:`poselit.atomic`'s job).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


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


def load_safetensors(path: str | Path, what: str, error: type[Exception] = ValueError) -> dict[str, Tensor]:
    """All tensors of a safetensors file: a missing file is a ``FileNotFoundError`` saying
    which ``what`` is missing, a damaged one (bad header, truncated data; possible even when
    its sha256 matches a card written from the damaged file) an ``error`` naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = require_file(path, what)
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise error(f"{path}: not a readable safetensors file ({err})") from None


def weights_only_refusal(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one clause of torch's
    ``UnpicklingError`` (a page that advises ``weights_only=False``, which poselit never does):

    >>> weights_only_refusal(ValueError("Weights only load failed. Please file an issue.\\n\\n"
    ...     "WeightsUnpickler error: Unsupported global: GLOBAL a.B was not an allowed global by default."))
    'Unsupported global: GLOBAL a.B'
    >>> weights_only_refusal(ValueError("Weights only load failed. ...\\nUnsupported operand 35\\n\\nCheck the docs."))
    'Unsupported operand 35'
    """
    found = re.search(r"Unsupported [^\n]*?(?= was not|\. |$)", str(error), re.MULTILINE)
    return found.group(0) if found else str(error).split(".")[0]


def safetensors_metadata(path: str | Path, what: str = "weights file", error: type[Exception] = ValueError) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file's header (``{}`` when it has none),
    e.g. the ``source`` that ``poselit backbone import`` records. Errors as :func:`load_safetensors`."""
    from safetensors import SafetensorError, safe_open

    path = require_file(path, what)
    try:
        with safe_open(path, framework="pt") as file:
            return dict(file.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise error(f"{path}: not a readable safetensors file ({err})") from None


def safetensors_shapes(path: str | Path, what: str, error: type[Exception] = ValueError) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, read from its header alone
    (nothing is loaded): enough to check that weights fit a model before building it.
    Errors as :func:`load_safetensors`."""
    from safetensors import SafetensorError, safe_open

    path = require_file(path, what)
    try:
        with safe_open(path, framework="pt") as file:
            return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except (SafetensorError, OSError) as err:
        raise error(f"{path}: not a readable safetensors file ({err})") from None
