"""The weights of a TensorFlow.js graph model (``model.json`` + ``.bin`` shards) as arrays.

A TF.js graph model is a JSON file whose ``weightsManifest`` lists groups of weights, each
group stored in one or more binary shards (``paths``, relative to the JSON file) that are
concatenated in order; every weight takes ``prod(shape)`` values of its stored dtype, one
after the other, with no padding. A weight may be stored quantized (``quantization``:
``float16``, or ``uint8`` / ``uint16`` with ``scale`` and ``min``): it is decoded here back to
its ``dtype`` (the TF.js converter's ``--quantize_float16`` / ``--quantize_uint8``).

Only the format is known here: which network the weights belong to is the importer's
business (:mod:`poselit.backbone_weights`). Nothing in the files is executed.

Example, on a one-weight model written on the spot:

>>> import json, tempfile, numpy as np
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "m.bin").write_bytes(np.arange(6, dtype=np.float16).tobytes())
>>> manifest = [{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [2, 3], "dtype": "float32",
...              "quantization": {"dtype": "float16"}}]}]
>>> _ = (folder / "m.json").write_text(json.dumps({"format": "graph-model", "weightsManifest": manifest}))
>>> read_tfjs_weights(folder / "m.json")["w"]
array([[0., 1., 2.],
       [3., 4., 5.]], dtype=float32)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from poselit.files import load_json

__all__ = ["TfjsFormatError", "read_tfjs_weights", "is_tfjs_model"]

#: Stored dtypes of unquantized weights.
_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1")}
#: Stored dtypes of quantized weights.
_QUANTIZED = {"float16": np.dtype("<f2"), "uint8": np.dtype("u1"), "uint16": np.dtype("<u2")}


class TfjsFormatError(ValueError):
    """A TF.js model file that does not follow the format (names the file and the weight)."""


def is_tfjs_model(path: str | Path) -> bool:
    """Whether ``path`` looks like a TF.js model: a ``.json`` file (its content is checked by
    :func:`read_tfjs_weights`)."""
    return Path(path).suffix.lower() == ".json"


def read_tfjs_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Every weight of the TF.js model ``path`` (its ``model.json``), decoded, by name.

    Raises:
        FileNotFoundError: The JSON file or one of its shards does not exist.
        TfjsFormatError: Not a TF.js model (no ``weightsManifest``), a weight entry without a
            valid name, shape or dtype, or shards shorter or longer than the weights they
            should hold (a truncated download): the message names the file and the first
            weight that does not fit.
    """
    path = Path(path)
    model = load_json(path, "TF.js model", TfjsFormatError)
    groups = model.get("weightsManifest") if isinstance(model, dict) else None
    if not isinstance(groups, list):
        raise TfjsFormatError(f"{path}: not a TF.js model (no 'weightsManifest' list)")
    weights: dict[str, np.ndarray] = {}
    for number, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) or not isinstance(group.get("weights"), list):
            raise TfjsFormatError(f"{path}: weightsManifest[{number}] needs 'paths' and 'weights' lists")
        shards = [path.parent / str(name) for name in group["paths"]]
        buffer = b"".join(_read_shard(shard) for shard in shards)
        weights.update(_decode_group(buffer, group["weights"], shards, path))
    return weights


def _read_shard(shard: Path) -> bytes:
    if not shard.is_file():
        raise FileNotFoundError(f"TF.js weights shard not found: {shard}")
    return shard.read_bytes()


def _decode_group(buffer: bytes, entries: list[Any], shards: list[Path], model: Path) -> dict[str, np.ndarray]:
    """The weights ``entries`` of one manifest group, read one after another from ``buffer``."""
    where = ", ".join(str(s) for s in shards) or str(model)
    decoded: dict[str, np.ndarray] = {}
    offset = 0
    for entry in entries:
        name, shape, stored, quantization = _describe(entry, model)
        size = math.prod(shape) * stored.itemsize
        if offset + size > len(buffer):
            raise TfjsFormatError(
                f"{where}: weight {name!r} {tuple(shape)} needs bytes {offset}-{offset + size}, but the "
                f"shards hold {len(buffer)}: truncated, or shapes that do not match the manifest {model}"
            )
        values = np.frombuffer(buffer, dtype=stored, count=math.prod(shape), offset=offset).reshape(shape)
        decoded[name] = _dequantize(values, entry["dtype"], quantization)
        offset += size
    if offset != len(buffer):
        raise TfjsFormatError(
            f"{where}: {len(buffer) - offset} bytes left after the last weight of the manifest {model}: "
            "shapes that do not match the shards"
        )
    return decoded


def _describe(entry: Any, model: Path) -> tuple[str, list[int], np.dtype, dict[str, Any] | None]:
    """Name, shape, stored dtype and quantization of one manifest entry, validated."""
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str):
        raise TfjsFormatError(f"{model}: a weightsManifest entry without a name: {entry!r:.80}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise TfjsFormatError(f"{model}: weight {name!r} has no valid shape (got {shape!r})")
    if entry.get("dtype") not in _DTYPES:
        raise TfjsFormatError(f"{model}: weight {name!r} has dtype {entry.get('dtype')!r}; expected one of {sorted(_DTYPES)}")
    quantization = entry.get("quantization")
    if quantization is None:
        return name, shape, _DTYPES[entry["dtype"]], None
    if not isinstance(quantization, dict) or quantization.get("dtype") not in _QUANTIZED:
        raise TfjsFormatError(f"{model}: weight {name!r} has quantization {quantization!r}; expected dtype in {sorted(_QUANTIZED)}")
    if quantization["dtype"] != "float16" and not all(isinstance(quantization.get(k), (int, float)) for k in ("scale", "min")):
        raise TfjsFormatError(f"{model}: weight {name!r} is {quantization['dtype']}-quantized without numeric 'scale' and 'min'")
    return name, shape, _QUANTIZED[quantization["dtype"]], quantization


def _dequantize(values: np.ndarray, dtype: str, quantization: dict[str, Any] | None) -> np.ndarray:
    """``values`` as the weight's own ``dtype`` (affine decoding for integer quantization)."""
    target = np.dtype(np.float32) if dtype == "float32" else np.dtype(np.int32) if dtype == "int32" else np.dtype(bool)
    if quantization is None or quantization["dtype"] == "float16":
        return values.astype(target)
    decoded = values.astype(np.float64) * quantization["scale"] + quantization["min"]
    return (np.rint(decoded) if target != np.float32 else decoded).astype(target)
