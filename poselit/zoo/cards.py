"""The model card format: one YAML file per published checkpoint, and an export's ``config.json``.

A card says everything about its checkpoint: ``name``, ``description``, the module to
build (``class_path`` + ``init_args``: the constructor arguments other than the input
description), ``input`` (the model's :class:`~poselit.input_spec.InputSpec`: skeleton, crop
``size``, ``mean``, ``std``, crop ``padding`` and ``fill``; cards of format 1 also state
some of it in ``init_args``, which must agree: :func:`poselit.zoo.loading.card_init_args`),
``training`` (recipe, data, Lightning's counters), ``metrics`` (measured with
:mod:`poselit.evaluate`: dataset split, records, one column dict per protocol, and
``crop``: where the people were cropped from, :func:`metrics_crop`), ``weights`` (``sha256``, ``size``, ``dtype``, and where the
bytes are: ``file``, relative to the card, and/or ``hub``: ``repo_id``, pinned
``revision``, ``filename``), ``license``, ``citation``. An export folder's ``config.json``
is the subset needed to rebuild the module and check its weights
(:meth:`ModelCard.config_dict`).

This module reads, checks and writes that format and nothing else: it imports nothing of
the models (building a module from a card is :mod:`poselit.zoo.loading`'s job).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from poselit import __version__
from poselit.atomic import write_atomic
from poselit.files import load_json
from poselit.input_spec import stated_fields
from poselit.zoo import HF_SCHEME

FORMAT_VERSION = 2
"""Version of the card and ``config.json`` layout; newer files are refused with a clear error.
2: the input description is stated once, in ``input`` (format 1 also had it in
``init_args``, so a poselit reading format 1 only would miss it); files of format 1 load."""

CROPS = ("box", "whole image")
"""Where a ``metrics`` entry's people were cropped from: ``"box"`` (the dataset protocol's
person box, e.g. LSP's from the annotated joints: the default, and every entry without a
``crop``) or ``"whole image"`` (no box: the whole image padded to a square, as a user's
photo is predicted)."""


def metrics_crop(entry: Mapping[str, Any]) -> str:
    """The crop of a card's ``metrics`` entry (:data:`CROPS`; ``"box"`` where none is stated).

    >>> metrics_crop({"dataset": "lsp:test", "results": {}}), metrics_crop({"crop": "whole image"})
    ('box', 'whole image')
    """
    return str(entry.get("crop", "box"))


def with_metrics(metrics: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """A card's ``metrics`` with ``entry`` in place of the one of the same dataset and crop
    (a new measurement replaces the old), else added at the end.

    >>> old = [{"dataset": "lsp:test", "results": {"PCK@0.2": {"Total": 80.0}}}]
    >>> whole = {"dataset": "lsp:test", "crop": "whole image", "results": {"PCK@0.2": {"Total": 79.0}}}
    >>> [m["results"]["PCK@0.2"]["Total"] for m in with_metrics(with_metrics(old, whole), {**whole, "results": {"PCK@0.2": {"Total": 79.5}}})]
    [80.0, 79.5]
    """
    key = (entry["dataset"], metrics_crop(entry))
    same = [(m["dataset"], metrics_crop(m)) == key for m in metrics]
    replaced = [dict(entry) if is_same else dict(m) for m, is_same in zip(metrics, same)]
    return tuple(replaced if any(same) else [*replaced, dict(entry)])


WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
README_FILE = "README.md"
RECIPE_FILE = "recipe.yaml"

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
REPO_ID_PATTERN = re.compile(r"[\w.-]+/[\w.-]+")
DTYPES = ("float32", "float16")
"""The dtypes a weights file may store (floating-point tensors; others keep theirs)."""


class ZooError(ValueError):
    """A zoo name, card, config or export folder that cannot be used; the message says why."""


class IncompatibleVersionError(ZooError):
    """A card or config written in a newer layout than this poselit reads."""


class ChecksumError(ZooError):
    """A weights file whose sha256 is not the recorded one; it was not loaded."""


class WeightsNotFoundError(FileNotFoundError):
    """Weights that are neither on disk nor downloadable (e.g. offline and not cached)."""


@dataclass(frozen=True)
class HubLocation:
    """A file in a Hugging Face Hub model repository; ``revision`` pins a commit."""

    repo_id: str
    revision: str | None = None
    filename: str = WEIGHTS_FILE

    @property
    def ref(self) -> str:
        """``hf://repo_id[@revision]``, as :func:`load` accepts it."""
        return HF_SCHEME + self.repo_id + (f"@{self.revision}" if self.revision else "")

    def to_dict(self) -> dict[str, Any]:
        return without_none({"repo_id": self.repo_id, "revision": self.revision, "filename": self.filename})


@dataclass(frozen=True)
class WeightsInfo:
    """The weights file: its digest, size and dtype, and where its bytes are.

    ``file`` is relative to the document that names it (the card, or ``config.json``).
    """

    sha256: str
    size: int
    dtype: str = "float32"
    file: str | None = None
    hub: HubLocation | None = None

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            {
                "file": self.file,
                "hub": self.hub.to_dict() if self.hub else None,
                "sha256": self.sha256,
                "size": self.size,
                "dtype": self.dtype,
            }
        )


@dataclass(frozen=True)
class ModelCard:
    """Everything about one checkpoint (a zoo card, or the ``config.json`` of an export folder).

    ``source`` is the file it was read from (``None`` for a card not written yet): relative
    weight paths resolve against its folder.
    """

    name: str
    class_path: str
    init_args: Mapping[str, Any]
    weights: WeightsInfo
    description: str = ""
    input: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[Mapping[str, Any], ...] = ()
    complexity: Mapping[str, Any] = field(default_factory=dict)
    check: Mapping[str, Any] = field(default_factory=dict)
    license: str | None = None
    citation: str | None = None
    poselit_version: str = __version__
    source: Path | None = None

    @property
    def method(self) -> str:
        """The class name of the module, e.g. ``LuvizonSoftArgmax``."""
        return self.class_path.rpartition(".")[2]

    def weights_path(self) -> Path | None:
        """The local weights file named by ``weights.file`` (it may not exist), or ``None``."""
        if self.weights.file is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return base / self.weights.file

    def to_dict(self) -> dict[str, Any]:
        """The card as written to ``zoo/<name>.yaml``."""
        return without_none(
            {
                "format_version": FORMAT_VERSION,
                "name": self.name,
                "description": self.description or None,
                "class_path": self.class_path,
                "init_args": dict(self.init_args),
                "input": dict(self.input) or None,
                "training": dict(self.training) or None,
                "metrics": [dict(m) for m in self.metrics] or None,
                "complexity": dict(self.complexity) or None,
                "check": dict(self.check) or None,
                "weights": self.weights.to_dict(),
                "license": self.license,
                "citation": self.citation,
                "poselit_version": self.poselit_version,
            }
        )

    def config_dict(self) -> dict[str, Any]:
        """The subset written to an export folder's ``config.json``: enough to rebuild the
        module and check its weights, nothing about where the folder itself is published."""
        weights = replace(self.weights, file=WEIGHTS_FILE, hub=None)
        return {
            "format_version": FORMAT_VERSION,
            "poselit_version": self.poselit_version,
            "name": self.name,
            "class_path": self.class_path,
            "init_args": dict(self.init_args),
            "input": dict(self.input),
            "weights": weights.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, source: Path | None = None) -> ModelCard:
        """Parse and check a card or config; errors name the file and the field."""
        where = str(source or "<card>")
        if not isinstance(data, Mapping):
            raise ZooError(f"{where}: expected a mapping of card fields, got {type(data).__name__}")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ZooError(
                f"{where}: field 'format_version' must be an integer (is this a poselit model card?), got {version!r}"
            )
        if version > FORMAT_VERSION:
            raise IncompatibleVersionError(
                f"{where}: format_version {version} was written by a newer poselit "
                f"({data.get('poselit_version', 'unknown version')}); this poselit {__version__} reads "
                f"format_version {FORMAT_VERSION}. Upgrade it: pip install -U poselit"
            )
        name = _field(data, "name", str, where)
        if not NAME_PATTERN.fullmatch(name):
            raise ZooError(f"{where}: field 'name' must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
        metrics = _field(data, "metrics", list, where, required=False) or []
        for i, entry in enumerate(metrics):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("results"), Mapping):
                raise ZooError(f"{where}: field 'metrics[{i}]' must be a mapping with 'dataset' and 'results'")
            if metrics_crop(entry) not in CROPS:
                raise ZooError(f"{where}: field 'metrics[{i}].crop' must be one of {list(CROPS)}, got {entry['crop']!r}")
        input_ = dict(_field(data, "input", Mapping, where, required=False) or {})
        stated_fields(input_, where, ZooError, prefix="input.")  # every field checked; kept as written
        return cls(
            name=name,
            class_path=_field(data, "class_path", str, where),
            init_args=dict(_field(data, "init_args", Mapping, where)),
            weights=_weights_from_dict(_field(data, "weights", Mapping, where), where),
            description=_field(data, "description", str, where, required=False) or "",
            input=input_,
            training=dict(_field(data, "training", Mapping, where, required=False) or {}),
            metrics=tuple(dict(m) for m in metrics),
            complexity=_complexity_from_dict(_field(data, "complexity", Mapping, where, required=False) or {}, where),
            check=_check_from_dict(_field(data, "check", Mapping, where, required=False) or {}, where),
            license=_field(data, "license", str, where, required=False),
            citation=_field(data, "citation", str, where, required=False),
            poselit_version=str(data.get("poselit_version", "unknown")),
            source=source,
        )


_KINDS = {str: "a string", int: "an integer", list: "a list", Mapping: "a mapping"}


def _field(
    data: Mapping[str, Any], key: str, kind: type, where: str, *, required: bool = True, prefix: str = ""
) -> Any:
    """``data[key]`` checked against ``kind``; ``None`` when optional and absent."""
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        missing = "missing" if value is None else f"got {value!r}"
        raise ZooError(f"{where}: field '{prefix}{key}' must be {_KINDS[kind]}, {missing}")
    return value


def _weights_from_dict(data: Mapping[str, Any], where: str) -> WeightsInfo:
    sha256 = _field(data, "sha256", str, where, prefix="weights.")
    if not SHA256_PATTERN.fullmatch(sha256):
        raise ZooError(f"{where}: field 'weights.sha256' must be 64 lowercase hex digits, got {sha256!r}")
    dtype = _field(data, "dtype", str, where, required=False, prefix="weights.") or "float32"
    if dtype not in DTYPES:
        raise ZooError(f"{where}: field 'weights.dtype' must be one of {', '.join(DTYPES)}, got {dtype!r}")
    hub_data = _field(data, "hub", Mapping, where, required=False, prefix="weights.")
    hub = None
    if hub_data is not None:
        repo_id = _field(hub_data, "repo_id", str, where, prefix="weights.hub.")
        if not REPO_ID_PATTERN.fullmatch(repo_id):
            raise ZooError(f"{where}: field 'weights.hub.repo_id' must be ORG/NAME, got {repo_id!r}")
        hub = HubLocation(
            repo_id,
            _field(hub_data, "revision", str, where, required=False, prefix="weights.hub."),
            _field(hub_data, "filename", str, where, required=False, prefix="weights.hub.") or WEIGHTS_FILE,
        )
    file = _field(data, "file", str, where, required=False, prefix="weights.")
    if file is None and hub is None:
        raise ZooError(f"{where}: field 'weights' needs a 'file' (relative to the card) or a 'hub' location")
    size = _field(data, "size", int, where, prefix="weights.")
    return WeightsInfo(sha256=sha256, size=size, dtype=dtype, file=file, hub=hub)


CHECK_FIELDS = {"dataset": str, "records": int, "metric": str, "value": (int, float)}
"""A card's ``check``: ``metric`` (its ``Total``) measured at export on the first ``records``
people of ``dataset``, which a test re-measures so that a changed model or pipeline shows."""


def _check_from_dict(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    for key, kind in CHECK_FIELDS.items() if data else ():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ZooError(f"{where}: field 'check.{key}' must be {'a number' if key == 'value' else _KINDS[kind]}, "
                           f"got {value!r}")
    return dict(data)


COMPLEXITY_FIELDS = {"parameters": int, "gflops": float, "cpu_ms": float, "cpu_ms_measured": str}
"""A card's ``complexity``, each field optional: the parameter count and GFLOPs written at
export (:mod:`poselit.complexity`), CPU milliseconds per image and how they were measured
(``benchmarks/latency.py --cards``). The tables compute with the numbers, so they are
checked when the card is read."""


def _complexity_from_dict(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A card's ``complexity`` with each known field checked (:data:`COMPLEXITY_FIELDS`)."""
    for key, kind in COMPLEXITY_FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        if kind is str:
            valid, expected = isinstance(value, str), "a string"
        else:
            numeric = int if kind is int else (int, float)
            valid = isinstance(value, numeric) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
            expected = "an integer >= 0" if kind is int else "a number >= 0"
        if not valid:
            raise ZooError(f"{where}: field 'complexity.{key}' must be {expected}, got {value!r}")
    return dict(data)


def without_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` without its ``None`` values (absent fields stay out of cards)."""
    return {k: v for k, v in mapping.items() if v is not None}


class _CardDumper(yaml.SafeDumper):
    """YAML for cards: mappings in block style, lists of numbers or strings on one line,
    multi-line strings (citations) as literal blocks."""


_CardDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)
_CardDumper.add_representer(
    list,
    lambda dumper, value: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", value, flow_style=all(isinstance(v, (int, float, str)) for v in value)
    ),
)


def dump_card(card: ModelCard) -> str:
    """The card as YAML text (what :func:`write_card` writes after its header)."""
    return yaml.dump(card.to_dict(), Dumper=_CardDumper, sort_keys=False, width=100)


CARD_HEADER = (
    "# poselit model card (see poselit.zoo), written by 'poselit zoo export' and 'poselit zoo publish';\n"
    "# description, license and citation may be edited by hand.\n"
)


def read_card(path: str | Path) -> ModelCard:
    """Read a YAML card; its name must be its file name."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ZooError(f"{path}: not valid YAML ({err})") from None
    card = ModelCard.from_dict(data, path)
    if card.name != path.stem:
        raise ZooError(
            f"{path}: field 'name' is {card.name!r}, but the card file must be named after it ({card.name}.yaml)"
        )
    return card


def write_card(card: ModelCard, path: str | Path) -> Path:
    """Write a card as YAML (block style, flow style for short lists)."""
    path = Path(path)
    return write_atomic(path, CARD_HEADER + dump_card(card))


def read_config(path: str | Path) -> ModelCard:
    """Read an export folder's ``config.json`` (its weights file must lie inside the folder)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: not a poselit export folder (expected {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    card = ModelCard.from_dict(load_json(path, CONFIG_FILE, ZooError), path)
    file = card.weights.file
    if file is None or Path(file).is_absolute() or ".." in Path(file).parts:
        raise ZooError(f"{path}: field 'weights.file' must name a file inside the folder, got {file!r}")
    return card


__all__ = [
    "CONFIG_FILE",
    "CROPS",
    "FORMAT_VERSION",
    "README_FILE",
    "RECIPE_FILE",
    "WEIGHTS_FILE",
    "ChecksumError",
    "HubLocation",
    "IncompatibleVersionError",
    "ModelCard",
    "WeightsInfo",
    "WeightsNotFoundError",
    "ZooError",
    "dump_card",
    "metrics_crop",
    "read_card",
    "with_metrics",
    "read_config",
    "write_card",
]
