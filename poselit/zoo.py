"""The model zoo: model cards -> ready models, and Lightning checkpoints -> Hub-ready folders.

One loader for three ways of naming a model::

    import poselit.zoo
    model = poselit.zoo.load("belagiannis-recurrent2-lsp")    # a card of the zoo
    model = poselit.zoo.load("hf://ORG/NAME@<commit>")        # an export folder on the Hugging Face Hub
    model = poselit.zoo.load("runs/export/my-model")          # an export folder on disk
    out = model.predict_poses(crops)                          # eval mode, on ``device``

**Cards.** One YAML file per published checkpoint, ``zoo/<name>.yaml`` in the source tree,
shipped inside the package (as ``poselit/zoo_cards``); ``POSELIT_ZOO=DIR`` (or ``zoo_dir=``)
uses the cards of another folder instead. A card says everything about its checkpoint:
``name``, ``description``, the module to build (``class_path`` + ``init_args``: the
constructor arguments), ``input`` (skeleton, crop size, normalisation, crop padding),
``training`` (recipe, data, Lightning's counters), ``metrics`` (measured with
:mod:`poselit.evaluate`: dataset split, records, one column dict per protocol), ``weights``
(``sha256``, ``size``, ``dtype``, and where the bytes are: ``file``, relative to the card,
and/or ``hub``: ``repo_id``, pinned ``revision``, ``filename``), ``license``, ``citation``.
``zoo/README.md`` is the table of the cards (``poselit zoo table`` writes it).

**Export folders** (``poselit zoo export``): ``model.safetensors`` (fp32, or fp16),
``config.json`` (the card's ``class_path``, ``init_args``, ``input`` and ``weights``: enough
to rebuild the module without the recipe), ``README.md`` (a Hub model card with a
``model-index`` of the measured metrics) and ``recipe.yaml`` (the training configuration).
``poselit zoo publish`` uploads one and pins the commit in the zoo card.

**Safety.** Weights are only read as safetensors, after their sha256 matched the card or
config; a mismatching file is never loaded. Lightning checkpoints are read with
``weights_only=True``. Building a module never downloads backbone weights
(``pretrained=False``): the safetensors file holds every tensor. A config only names
classes of poselit or of modules the caller has already imported.

**Hub.** Downloads go through ``huggingface_hub``: its cache (``HF_HOME``,
``HF_HUB_CACHE``, or ``cache_dir=``), offline mode (``HF_HUB_OFFLINE=1``: cached files only),
its token (``HF_TOKEN`` or ``hf auth login``) and its progress bars.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import hashlib
import importlib
import inspect
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
import torch
import yaml
from huggingface_hub import EvalResult, HfApi, ModelCardData, hf_hub_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import load_file, save

import poselit.models
from poselit import __version__
from poselit.atomic import write_atomic
from poselit.data.datamodule import PoseDataModule
from poselit.data.readers.common import load_json
from poselit.data.sources import DatasetSpec
from poselit.evaluate import EvaluationReport
from poselit.geometry import check_padding
from poselit.models.base import PoseLitModule, load_checkpoint
from poselit.models.base import class_path as class_path_of
from poselit.tables import Row, Table
from poselit.training import CONFIG_KEY, test_reports

FORMAT_VERSION = 1
"""Version of the card and ``config.json`` layout; newer files are refused with a clear error."""

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
README_FILE = "README.md"
RECIPE_FILE = "recipe.yaml"
HF_SCHEME = "hf://"
ZOO_ENV = "POSELIT_ZOO"

OFFLINE_ARGS: dict[str, Any] = {"pretrained": False, "backbone_weights": None, "init_from": None}
"""Constructor arguments that fetch weights from elsewhere; a zoo model's tensors all come
from its safetensors file, so these are forced to "nothing to fetch" wherever a class has them."""

DATASET_NAMES = {
    "lsp": "Leeds Sports Pose",
    "lspet": "LSP extended",
    "mpii": "MPII Human Pose",
    "coco": "COCO keypoints",
}
HUB_TAGS = ("pose-estimation", "keypoint-detection", "human-pose-estimation", "pytorch-lightning")
HEADLINE_COLUMNS = ("Total", "AUC", "AP")
"""Columns of each metric that go into the Hub's ``model-index`` (the tables hold the rest)."""

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
REPO_ID_PATTERN = re.compile(r"[\w.-]+/[\w.-]+")
DTYPES = {"float32": torch.float32, "float16": torch.float16}


class ZooError(ValueError):
    """A zoo name, card, config or export folder that cannot be used; the message says why."""


class IncompatibleVersionError(ZooError):
    """A card or config written in a newer layout than this poselit reads."""


class ChecksumError(ZooError):
    """A weights file whose sha256 is not the recorded one; it was not loaded."""


class WeightsNotFoundError(FileNotFoundError):
    """Weights that are neither on disk nor downloadable (e.g. offline and not cached)."""


# --- cards -----------------------------------------------------------------------------------


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
        return _without_none({"repo_id": self.repo_id, "revision": self.revision, "filename": self.filename})


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
        return _without_none(
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
    license: str | None = None
    citation: str | None = None
    poselit_version: str = __version__
    source: Path | None = None

    @property
    def method(self) -> str:
        """The class name of the module, e.g. ``LuvizonSoftArgmax``."""
        return self.class_path.rpartition(".")[2]

    def build(self) -> PoseLitModule:
        """A freshly initialised module of this card (no weights loaded, nothing downloaded)."""
        return build_module(self.class_path, self.init_args, str(self.source or self.name))

    def weights_path(self) -> Path | None:
        """The local weights file named by ``weights.file`` (it may not exist), or ``None``."""
        if self.weights.file is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return base / self.weights.file

    def to_dict(self) -> dict[str, Any]:
        """The card as written to ``zoo/<name>.yaml``."""
        return _without_none(
            {
                "format_version": FORMAT_VERSION,
                "name": self.name,
                "description": self.description or None,
                "class_path": self.class_path,
                "init_args": dict(self.init_args),
                "input": dict(self.input) or None,
                "training": dict(self.training) or None,
                "metrics": [dict(m) for m in self.metrics] or None,
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
        input_ = dict(_field(data, "input", Mapping, where, required=False) or {})
        if input_.get("padding") is not None:
            check_padding(input_["padding"], f"{where}: field 'input.padding'", ZooError)
        return cls(
            name=name,
            class_path=_field(data, "class_path", str, where),
            init_args=dict(_field(data, "init_args", Mapping, where)),
            weights=_weights_from_dict(_field(data, "weights", Mapping, where), where),
            description=_field(data, "description", str, where, required=False) or "",
            input=input_,
            training=dict(_field(data, "training", Mapping, where, required=False) or {}),
            metrics=tuple(dict(m) for m in metrics),
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


def _without_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
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


def _dump_card(card: ModelCard) -> str:
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
    return write_atomic(path, CARD_HEADER + _dump_card(card))


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


# --- the zoo folder ----------------------------------------------------------------------------


def builtin_zoo_dir() -> Path:
    """The cards that come with poselit: ``poselit/zoo_cards`` in an installed wheel, the
    project's ``zoo/`` folder in a source checkout or an editable install."""
    package = Path(__file__).resolve().parent
    installed = package / "zoo_cards"
    return installed if installed.is_dir() else package.parent / "zoo"


def zoo_folder(directory: str | Path | None = None) -> Path:
    """The card folder in use: ``directory``, else ``$POSELIT_ZOO``, else the built-in one."""
    return Path(directory or os.environ.get(ZOO_ENV) or builtin_zoo_dir())


def card_paths(directory: str | Path | None = None) -> dict[str, Path]:
    """``{name: card file}`` of every ``*.yaml`` card of the zoo folder, sorted by name."""
    folder = zoo_folder(directory)
    if not folder.is_dir():
        raise ZooError(f"zoo folder {_folder_label(directory)} does not exist")
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def list_models(pattern: str | None = None, *, zoo_dir: str | Path | None = None) -> list[str]:
    """Names of the zoo's models, optionally filtered by a shell pattern (``"luvizon-*"``).

    Also available as ``poselit.zoo.list()``.
    """
    names = card_paths(zoo_dir)
    return [name for name in names if pattern is None or fnmatch.fnmatch(name, pattern)]


def info(name: str, *, zoo_dir: str | Path | None = None) -> ModelCard:
    """The card of a zoo model; an unknown name is an error listing close names."""
    paths = card_paths(zoo_dir)
    if name in paths:
        return read_card(paths[name])
    close = difflib.get_close_matches(name, paths, n=5, cutoff=0.5)
    hints = [f"close names: {', '.join(close)}" if close else f"known: {', '.join(paths) or 'none'}"]
    if REPO_ID_PATTERN.fullmatch(name):
        hints.append(f"for a Hub repository write hf://{name}")
    if os.sep in name or name.startswith("."):
        hints.append(f"no export folder {name} either")
    raise ZooError(
        f"unknown zoo model {name!r} in {_folder_label(zoo_dir)}; {'; '.join(hints)} (see 'poselit zoo list')"
    )


def _folder_label(directory: str | Path | None = None) -> str:
    """The card folder in use, for messages, saying when it comes from ``$POSELIT_ZOO``."""
    return f"{zoo_folder(directory)}" + (f" (${ZOO_ENV})" if directory is None and os.environ.get(ZOO_ENV) else "")


def all_cards(directory: str | Path | None = None) -> list[ModelCard]:
    """Every card of the zoo folder, read and checked."""
    return [read_card(path) for path in card_paths(directory).values()]


# --- building modules ----------------------------------------------------------------------------


def resolve_class(class_path: str, where: str = "") -> type[PoseLitModule]:
    """The :class:`PoseLitModule` subclass named by ``class_path``.

    A bare class name means a poselit method (``LuvizonSoftArgmax``). Only poselit's own
    modules are imported by name; a class of another module must have been imported by the
    caller (a config downloaded from the Hub does not get to import arbitrary modules).
    """
    prefix = f"{where}: " if where else ""
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name:
        if class_name not in poselit.models.__all__:
            raise ZooError(f"{prefix}unknown method class {class_name!r} (known: {', '.join(poselit.models.__all__)})")
        module_name = getattr(poselit.models, class_name).__module__
    if module_name == "poselit" or module_name.startswith("poselit."):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ZooError(f"{prefix}class_path {class_path!r}: cannot import {module_name} ({err})") from None
    elif module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        raise ZooError(
            f"{prefix}class_path {class_path!r} is outside poselit and {module_name} is not imported; "
            f"import {module_name} first (poselit imports only its own modules by name)"
        )
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, PoseLitModule)):
        raise ZooError(f"{prefix}class_path {class_path!r} does not name a PoseLitModule subclass")
    return cls


def build_module(class_path: str, init_args: Mapping[str, Any], where: str = "") -> PoseLitModule:
    """Instantiate ``class_path`` with ``init_args``, weight-fetching arguments switched off
    (:data:`OFFLINE_ARGS`). Arguments the class does not take are an error, not ignored."""
    cls = resolve_class(class_path, where)
    names = argument_names(cls)
    unknown = [] if names is None else [k for k in init_args if k not in names]
    if unknown:
        raise ZooError(
            f"{where}: {cls.__name__} takes no argument {', '.join(map(repr, unknown))} "
            f"(written by another poselit version? this is {__version__})"
        )
    return cls(**offline_args(cls, init_args))


def argument_names(cls: type) -> set[str] | None:
    """The constructor arguments of ``cls``; ``None`` when it takes any (``**kwargs``)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def offline_args(cls: type, init_args: Mapping[str, Any]) -> dict[str, Any]:
    """``init_args`` with :data:`OFFLINE_ARGS` forced where ``cls`` takes them."""
    names = argument_names(cls)
    forced = {k: v for k, v in OFFLINE_ARGS.items() if k in (init_args if names is None else names)}
    return {**init_args, **forced}


def load_weights(model: PoseLitModule, tensors: Mapping[str, torch.Tensor], where: str) -> PoseLitModule:
    """Load ``tensors`` strictly (every name and shape must match; dtypes are cast)."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ZooError(f"{where}: the weights do not fit {type(model).__name__}: {err}") from None
    return model


# --- fetching and verifying weights ----------------------------------------------------------------


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, recovery: str) -> Path:
    """``path`` if its sha256 is ``expected``; otherwise a :class:`ChecksumError` that says the
    file was not loaded and how to recover."""
    actual = sha256_file(path)
    if actual != expected:
        real = path.resolve()
        shown = f"{path} (-> {real})" if real != path.absolute() else str(path)
        raise ChecksumError(
            f"{shown}: sha256 is {actual}, expected {expected}: the file is corrupt or not the "
            f"published one, so it was not loaded. {recovery}"
        )
    return path


def parse_hub_ref(ref: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REVISION]`` -> ``(repo_id, revision or None)``."""
    repo_id, _, revision = ref.removeprefix(HF_SCHEME).partition("@")
    if not ref.startswith(HF_SCHEME) or not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"{ref!r}: expected hf://ORG/NAME[@REVISION]")
    return repo_id, revision or None


def hub_file(
    repo_id: str, filename: str, revision: str | None, *, cache_dir: str | Path | None, force: bool, name: str
) -> Path:
    """Download (or find in the cache) one file of a Hub model repository.

    Offline and not cached raises :class:`WeightsNotFoundError` naming the file, the cache
    and how to get the file there; ``name`` is what ``poselit zoo download`` would take.
    """
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force,
            library_name="poselit",
            library_version=__version__,
        )
    except LocalEntryNotFoundError as err:
        cache = cache_dir or hf_constants.HF_HUB_CACHE
        offline = hf_constants.is_offline_mode()
        reason = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub cannot be reached"
        raise WeightsNotFoundError(
            f"{filename} of hf://{repo_id}@{revision or 'main'} is not in the Hugging Face cache ({cache}) and "
            f"{reason}. Run 'poselit zoo download {name}' on a connected machine and copy its cache here "
            f"(HF_HOME / HF_HUB_CACHE choose the folder), or load a local export folder instead: "
            f"poselit.zoo.load('path/to/folder')"
        ) from err
    return Path(path)


def download(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    zoo_dir: str | Path | None = None,
) -> tuple[ModelCard, Path]:
    """Resolve a zoo name, ``hf://`` reference or export folder to its card (or config) and a
    local weights file whose sha256 has been checked.

    Args:
        name: Zoo name, ``hf://ORG/NAME[@REVISION]`` or the path of an export folder.
        revision: Hub revision instead of the card's pinned one (its ``config.json`` then
            describes the model) or the reference's.
        cache_dir: Hugging Face cache folder (default: ``HF_HUB_CACHE``, ``$HF_HOME/hub``).
        force: Download again even if cached (to replace a corrupt file).
        zoo_dir: Card folder instead of ``$POSELIT_ZOO`` / the built-in zoo.
    """
    if name.startswith(HF_SCHEME):
        repo_id, pinned = parse_hub_ref(name)
        return _download_export(repo_id, revision or pinned, cache_dir, force)
    folder = Path(name).expanduser()
    if folder.is_dir():
        card = read_config(folder / CONFIG_FILE)
        recovery = "Export the folder again with 'poselit zoo export'."
        return card, verify_sha256(_existing(card.weights_path(), card), card.weights.sha256, recovery)
    card = info(name, zoo_dir=zoo_dir)
    hub = card.weights.hub
    if revision is not None and (hub is None or revision != hub.revision):
        if hub is None:
            raise ZooError(f"{card.source}: {card.name} has no Hub location, so revision {revision!r} does not apply")
        return _download_export(hub.repo_id, revision, cache_dir, force)
    local = card.weights_path()
    if local is not None and local.is_file() and not (force and hub and hub.revision):
        elsewhere = f", or delete it to use the Hub copy ({hub.ref})" if hub and hub.revision else ""
        recovery = f"Restore it (export the checkpoint again with 'poselit zoo export'){elsewhere}."
        return card, verify_sha256(local, card.weights.sha256, recovery)
    if hub is None or hub.revision is None:
        raise WeightsNotFoundError(
            f"{card.source}: weights file {local} does not exist and {card.name} is not published on the Hub "
            f"(no weights.hub.revision); export it again with 'poselit zoo export', or publish it"
        )
    path = hub_file(hub.repo_id, hub.filename, hub.revision, cache_dir=cache_dir, force=force, name=card.name)
    recovery = f"Download it again: 'poselit zoo download {card.name} --force' (or delete {path.resolve()})."
    return card, verify_sha256(path, card.weights.sha256, recovery)


def _download_export(
    repo_id: str, revision: str | None, cache_dir: str | Path | None, force: bool
) -> tuple[ModelCard, Path]:
    """The ``config.json`` and verified weights of an export folder on the Hub."""
    ref = HubLocation(repo_id, revision).ref
    card = read_config(hub_file(repo_id, CONFIG_FILE, revision, cache_dir=cache_dir, force=force, name=ref))
    file = card.weights.file or WEIGHTS_FILE  # read_config checked it is set
    path = hub_file(repo_id, file, revision, cache_dir=cache_dir, force=force, name=ref)
    recovery = f"Download it again: 'poselit zoo download {ref} --force' (or delete {path.resolve()})."
    return card, verify_sha256(path, card.weights.sha256, recovery)


def _existing(path: Path | None, card: ModelCard) -> Path:
    if path is None or not path.is_file():
        raise WeightsNotFoundError(f"{card.source}: weights file {path} does not exist")
    return path


def load_with_card(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    expect: type[PoseLitModule] | None = None,
) -> tuple[PoseLitModule, ModelCard]:
    """:func:`load`, also returning the card (or ``config.json``) the model was built from,
    for what it says about the input (e.g. ``card.input["padding"]``)."""
    card, path = download(name, revision=revision, cache_dir=cache_dir, zoo_dir=zoo_dir)
    if expect is not None:
        check_card_class(card, expect)
    model = load_weights(card.build(), load_file(path), str(path))
    return model.to(device or "cpu").eval(), card


def load(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    expect: type[PoseLitModule] | None = None,
) -> PoseLitModule:
    """A ready model: built from its card (or ``config.json``), weights checked and loaded
    strictly, in eval mode on ``device`` (default: CPU).

    This is the one loading path: ``Method.from_pretrained(name)`` is
    ``load(name, expect=Method)``.

    Args:
        name: Zoo name (``poselit.zoo.list()``), ``hf://ORG/NAME[@REVISION]``, or the path
            of a folder written by ``poselit zoo export``.
        revision: Hub revision (branch, tag or commit) instead of the pinned one.
        device: Where the model goes.
        cache_dir: Hugging Face cache folder (default: ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).
        zoo_dir: Card folder instead of ``$POSELIT_ZOO`` / the built-in zoo.
        expect: Refuse (:class:`ZooError`, before building anything) a card whose class is
            not this class or a subclass of it.
    """
    return load_with_card(
        name, revision=revision, device=device, cache_dir=cache_dir, zoo_dir=zoo_dir, expect=expect
    )[0]


def check_card_class(card: ModelCard, expected: type[PoseLitModule]) -> None:
    """A :class:`ZooError` unless the card builds ``expected`` (or a subclass of it)."""
    actual = resolve_class(card.class_path, str(card.source or card.name))
    if not issubclass(actual, expected):
        raise ZooError(
            f"{card.source or card.name}: {card.name!r} is a {actual.__name__} ({card.class_path}), not a "
            f"{expected.__name__}; load it with {actual.__name__}.from_pretrained(...) or poselit.zoo.load(...)"
        )


# --- export ----------------------------------------------------------------------------------


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint, read with ``weights_only=True`` (nothing is unpickled)."""
    try:
        checkpoint = load_checkpoint(path)
    except ValueError as err:  # pickled objects: a zoo error, as the rest of export's
        raise ZooError(str(err)) from None
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise ZooError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return dict(checkpoint)


def checkpoint_model_args(
    checkpoint: Mapping[str, Any], class_path: str | None, where: str
) -> tuple[str, dict[str, Any]]:
    """``(class_path, init_args)`` from a checkpoint's ``hyper_parameters``.

    The class is ``class_path`` if given, else the one :class:`PoseLitModule` records in
    its checkpoints (``checkpoint["poselit"]``), else LightningCLI's ``_class_path``.
    Weight-fetching arguments are written as "nothing to fetch".
    """
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    cli_class = hparams.pop("_class_path", None)
    hparams.pop("_instantiator", None)
    class_path = class_path or (checkpoint.get("poselit") or {}).get("class_path") or cli_class
    if not class_path:
        raise ZooError(
            f"{where}: the checkpoint does not name its class (saved by an older poselit?); give it, "
            "e.g. --class-path poselit.models.luvizon.LuvizonSoftArgmax"
        )
    cls = resolve_class(class_path, where)
    if not hparams:
        raise ZooError(f"{where}: the checkpoint holds no hyper-parameters; {cls.__name__} cannot be rebuilt from it")
    try:
        init_args = json.loads(json.dumps(offline_args(cls, hparams)))  # tuples -> lists; fails on non-data values
    except (TypeError, ValueError) as err:
        raise ZooError(f"{where}: constructor arguments must be plain data to be exported ({err})") from None
    return class_path_of(cls), init_args


RECIPE_SEARCH_DEPTH = 3
"""Folders above a checkpoint's own that :func:`find_recipe` looks in for ``config.yaml``:
CSV and TensorBoard loggers put it one above (``version_N/``), ``WandbLogger`` three above
(its ``save_dir``, over ``<project>/<run id>/checkpoints/``)."""


@dataclass(frozen=True)
class RunConfig:
    """A run's training configuration, as an export folder's ``recipe.yaml``.

    ``text`` is the YAML; ``recipe`` what the card's ``training.recipe`` records (the recipe
    file(s) the run was started with, when known); ``source`` where it was found.
    """

    text: str
    recipe: str | None
    source: str

    @classmethod
    def from_file(cls, path: Path) -> RunConfig:
        if not path.is_file():
            raise FileNotFoundError(f"recipe not found: {path}")
        return cls(path.read_text(), _display_path(path), str(path))


def recipe_folders(checkpoint: Path) -> list[Path]:
    """Where :func:`find_recipe` looks for ``config.yaml``: the checkpoint's folder and
    :data:`RECIPE_SEARCH_DEPTH` above it."""
    return list(checkpoint.absolute().parents)[: RECIPE_SEARCH_DEPTH + 1]


def find_recipe(checkpoint: Path, data: Mapping[str, Any]) -> RunConfig | None:
    """The configuration of the run that saved ``checkpoint`` (read as ``data``): the one
    ``poselit fit`` stores in every checkpoint (:data:`~poselit.training.CONFIG_KEY`), else
    the nearest ``config.yaml`` LightningCLI saved in :func:`recipe_folders` (checkpoints of
    older versions, or of other scripts); ``None`` when there is neither."""
    stored = data.get(CONFIG_KEY)
    if isinstance(stored, Mapping) and isinstance(stored.get("yaml"), str):
        recipes = [str(r) for r in stored.get("recipes") or []]
        return RunConfig(stored["yaml"], ", ".join(recipes) or None, f"stored in {checkpoint}")
    for folder in recipe_folders(checkpoint):
        if (folder / "config.yaml").is_file():
            return RunConfig.from_file(folder / "config.yaml")
    return None


def missing_recipe_message(checkpoint: Path) -> str:
    """What ``poselit zoo export`` says when :func:`find_recipe` found nothing."""
    folders = ", ".join(str(f) for f in recipe_folders(checkpoint))
    return (
        f"no recipe.yaml in the export: {checkpoint} stores no training configuration (saved by "
        f"another script or an older poselit) and there is no config.yaml in {folders}; "
        f"give the recipe with --recipe FILE"
    )


def training_info(checkpoint: Mapping[str, Any], recipe: str | None, data: Sequence[str] | None) -> dict[str, Any]:
    """The card's ``training``: recipe, training datasets (``NAME:SPLIT[@PATH]`` as the data
    module named them: a path says the data were not the standard files, e.g. generated
    ones) and Lightning's epoch and step counters at save time."""
    if data is None:
        data = (checkpoint.get("datamodule_hyper_parameters") or {}).get("train") or []
    return _without_none(
        {
            "recipe": recipe,
            "data": [str(DatasetSpec.parse(s)) for s in data] or None,
            "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"),
        }
    )


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (recipes of the project)."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def input_info(model: PoseLitModule, padding: float | None) -> dict[str, Any]:
    """The card's ``input``: skeleton, crop size, normalisation (0-255 units), crop padding."""
    return _without_none(
        {
            "skeleton": model.skeleton.name,
            "size": list(model.input_size),
            "mean": [round(float(v), 6) for v in model.mean.flatten()],
            "std": [round(float(v), 6) for v in model.std.flatten()],
            "padding": padding,
        }
    )


def metrics_entry(report: EvaluationReport, measured_with: str) -> dict[str, Any]:
    """One card ``metrics`` entry from an evaluation report: split (``NAME:SPLIT[@PATH]``),
    records, and the columns of each protocol (percent, 2 decimals; ``null``: unscorable)."""
    return {
        "dataset": str(DatasetSpec.parse(report.dataset)),
        "records": report.records,
        "measured_with": measured_with,
        "results": {
            r.metric: {k: None if math.isnan(v) else round(float(v), 2) for k, v in r.columns.items()}
            for r in report.results
        },
    }


def evaluate_model(
    model: PoseLitModule,
    datasets: Sequence[str],
    data_root: str | Path | None = None,
    *,
    padding: float | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    accelerator: str = "auto",
) -> list[EvaluationReport]:
    """Score ``model`` on dataset splits with the project's test loop (``Trainer.test``:
    the flip test and metrics of :class:`PoseLitModule`), one report per split."""
    data = PoseDataModule(
        train=[],
        val=list(datasets),
        data_root=str(data_root) if data_root else None,
        input_size=model.input_size,
        batch_size=batch_size,
        num_workers=num_workers,
        **({} if padding is None else {"padding": padding}),
    )
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False
    )
    trainer.test(model, datamodule=data, verbose=False)
    return test_reports(model, data)


def export_checkpoint(
    checkpoint: str | Path,
    name: str,
    out: str | Path,
    *,
    class_path: str | None = None,
    half: bool = False,
    recipe: str | Path | None = None,
    evaluate: Sequence[str] = (),
    data_root: str | Path | None = None,
    reports: Sequence[EvaluationReport] = (),
    training_data: Sequence[str] | None = None,
    description: str = "",
    license: str | None = None,
    citation: str | None = None,
    repo_id: str | None = None,
    zoo_dir: str | Path | None = None,
    update_zoo: bool = True,
    ship: bool = False,
) -> ModelCard:
    """Turn a Lightning checkpoint into a Hub-ready folder and write or update its zoo card.

    The module is rebuilt from the checkpoint's hyper-parameters and its tensors loaded
    strictly, so an export that succeeds loads. Metrics come from ``evaluate`` (dataset
    splits scored here, on the weights as exported, fp16 included) and ``reports``
    (results written by ``poselit eval --json``). An existing card of the same name keeps
    its description, license and citation unless new ones are given, and its metrics and
    Hub location while the weights are unchanged.

    Args:
        checkpoint: Lightning ``.ckpt`` (read with ``weights_only=True``).
        name: Zoo name, ``<method>-<backbone>-<dataset>[-<variant>]``.
        out: Export folder to write.
        class_path: Module class when the checkpoint does not name it.
        half: Store float tensors as fp16 (half the size; loaded into an fp32 module).
        recipe: Training configuration to include as ``recipe.yaml`` (default: the run's,
            see :func:`find_recipe`; without one the folder has no ``recipe.yaml``).
        evaluate: Dataset splits to measure, e.g. ``["lsp:test"]``.
        data_root: Folder holding the datasets (default: ``$POSELIT_DATA``).
        reports: Already measured results.
        training_data: Training datasets (default: the checkpoint's data module's).
        description: One paragraph for the card and the Hub page.
        license: Licence identifier of the weights (e.g. ``bsd-3-clause``).
        citation: BibTeX (or text) to cite.
        repo_id: Hub repository it will be published to (the default of ``publish``).
        zoo_dir: Card folder to update (default: ``$POSELIT_ZOO`` / the built-in zoo).
        update_zoo: Write the zoo card (and its table). Without it, the README's example
            loads the export folder by its path (``out`` as given), not by a zoo name.
        ship: Copy the weights next to the card, so they ship inside the package (small
            models only).

    Returns:
        The card as written to the zoo (``source`` set), or the export's card.
    """
    checkpoint = Path(checkpoint)
    out = Path(out)
    if not NAME_PATTERN.fullmatch(name):
        raise ZooError(f"--name must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    if repo_id and not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"--repo-id must be ORG/NAME, got {repo_id!r}")
    data = read_checkpoint(checkpoint)
    class_path, init_args = checkpoint_model_args(data, class_path, str(checkpoint))
    model = build_module(class_path, init_args, str(checkpoint))
    load_weights(model, data["state_dict"], str(checkpoint))
    run_config = RunConfig.from_file(Path(recipe)) if recipe else find_recipe(checkpoint, data)
    dtype = "float16" if half else "float32"
    tensors = {
        key: (value.to(DTYPES[dtype]) if value.is_floating_point() else value).detach().contiguous()
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(tensors)  # the module exactly as it will be loaded
    padding = (data.get("datamodule_hyper_parameters") or {}).get("padding")
    metrics = [metrics_entry(r, "poselit eval") for r in reports]
    if evaluate:
        measured_with = f"poselit zoo export --evaluate (flip_test={model.flip_test})"
        measured = evaluate_model(model, evaluate, data_root, padding=padding)
        metrics += [metrics_entry(r, measured_with) for r in measured]

    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_FILE
    # one metadata key only: safetensors writes several in random order, and the same
    # checkpoint must give the same bytes (and sha256) on every export
    write_atomic(weights_path, save(tensors, metadata={"format": "pt"}))
    card = ModelCard(
        name=name,
        class_path=class_path,
        init_args=init_args,
        weights=WeightsInfo(
            sha256=sha256_file(weights_path),
            size=weights_path.stat().st_size,
            dtype=dtype,
            file=WEIGHTS_FILE,
            hub=HubLocation(repo_id) if repo_id else None,
        ),
        description=description,
        input=input_info(model, padding),
        training=training_info(data, run_config.recipe if run_config else None, training_data),
        metrics=tuple(metrics),
        license=license,
        citation=citation,
        source=out / CONFIG_FILE,
    )
    if update_zoo:
        card = add_to_zoo(card, weights_path, zoo_dir=zoo_dir, ship=ship)
    write_atomic(out / CONFIG_FILE, json.dumps(card.config_dict(), indent=2) + "\n")
    if run_config:
        write_atomic(out / RECIPE_FILE, run_config.text)
    else:
        (out / RECIPE_FILE).unlink(missing_ok=True)  # an earlier export's, not this checkpoint's
    example = card.name if update_zoo else str(out)
    write_atomic(out / README_FILE, hub_readme(card, has_recipe=run_config is not None, example=example))
    return card


def add_to_zoo(
    card: ModelCard, weights_file: Path, *, zoo_dir: str | Path | None = None, ship: bool = False
) -> ModelCard:
    """Write ``card`` into the zoo folder, naming ``weights_file`` (copied beside the card
    with ``ship``), merged with an existing card of that name; regenerate the table."""
    folder = zoo_folder(zoo_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{card.name}.yaml"
    if ship:
        shipped = folder / f"{card.name}.safetensors"
        write_atomic(shipped, weights_file.read_bytes())
        file = shipped.name
    else:
        file = os.path.relpath(weights_file.absolute(), folder.absolute())
    card = replace(card, weights=replace(card.weights, file=file), source=path)
    if path.is_file():
        card = merged_card(read_card(path), card)
    write_card(card, path)
    write_table(folder)
    return card


def merged_card(previous: ModelCard, new: ModelCard) -> ModelCard:
    """``new`` keeping what ``previous`` knew and ``new`` does not: description, license,
    citation, and (for the same weights) metrics and the pinned Hub location."""
    same = previous.weights.sha256 == new.weights.sha256
    hub = new.weights.hub
    old_hub = previous.weights.hub
    if same and old_hub and (hub is None or hub.repo_id == old_hub.repo_id):
        hub = old_hub
    return replace(
        new,
        description=new.description or previous.description,
        license=new.license or previous.license,
        citation=new.citation or previous.citation,
        metrics=new.metrics or (previous.metrics if same else ()),
        weights=replace(new.weights, hub=hub),
    )


# --- Hub model card ------------------------------------------------------------------------------


def eval_results(card: ModelCard) -> list[EvalResult]:
    """The card's metrics as Hub ``model-index`` entries (headline columns of each protocol)."""
    results = []
    for entry in card.metrics:
        spec = DatasetSpec.parse(str(entry.get("dataset", "")))
        for metric, columns in entry["results"].items():
            for column in HEADLINE_COLUMNS:
                value = columns.get(column)
                if value is None:
                    continue
                kind = column if column == "AUC" else metric.split("@")[0]  # pck, pckh, pcp, visibility-ap, auc
                results.append(
                    EvalResult(
                        task_type="keypoint-detection",
                        task_name="Keypoint Detection",
                        dataset_type=spec.name,
                        dataset_name=dataset_title(spec),
                        dataset_split=spec.split,
                        metric_type=kind.lower().replace(" ", "-"),
                        metric_name=metric if column in metric else f"{metric} {column}",
                        metric_value=value,
                    )
                )
    return results


def dataset_title(spec: DatasetSpec) -> str:
    """The dataset's full name, or the spec itself when it names its own files (which may
    not be the standard ones: a Hub page must not claim LSP for generated data)."""
    return str(spec) if spec.path else DATASET_NAMES.get(spec.name, spec.name)


def metrics_tables(card: ModelCard) -> list[Table]:
    """One paper-layout table per dataset split and protocol."""
    return [
        Table(
            f"{entry['dataset']}, {entry.get('records', '?')} people: {metric}",
            tuple(columns),
            (Row(card.name, columns),),
        )
        for entry in card.metrics
        for metric, columns in entry["results"].items()
    ]


def hub_readme(card: ModelCard, has_recipe: bool = False, example: str | None = None) -> str:
    """The export folder's ``README.md``: Hub metadata (library, tags, datasets, licence,
    ``model-index``) and a model card in Markdown.

    ``example`` is the name its Python example loads (default: the zoo name); the Hub
    reference is added as a comment when the card has one. The example runs as written
    where that name loads and a ``photo.jpg`` exists.
    """
    datasets = sorted({DatasetSpec.parse(d).name for d in card.training.get("data", [])})
    results = eval_results(card)
    metadata = ModelCardData(
        library_name="poselit",
        pipeline_tag="keypoint-detection",
        tags=[*HUB_TAGS, card.method, *([card.input["skeleton"]] if card.input.get("skeleton") else [])],
        datasets=datasets or None,
        license=card.license,
        model_name=card.name if results else None,
        eval_results=results or None,
    )
    size = "x".join(str(s) for s in card.input.get("size", []))
    hub = card.weights.hub
    lines = [
        "---",
        metadata.to_yaml(),
        "---",
        "",
        f"# {card.name}",
        "",
        *([card.description.strip(), ""] if card.description else []),
        f"A poselit `{card.method}` for single-person 2D pose "
        f"estimation: skeleton `{card.input.get('skeleton')}`, {size} person crops (uint8 RGB, "
        f"normalised on the device with mean {card.input.get('mean')} and std {card.input.get('std')}).",
        "",
        "## Use",
        "",
        "```python",
        "import poselit",
        f'predictor = poselit.Predictor.from_zoo("{example or card.name}")' + (f'  # or "{hub.ref}"' if hub else ""),
        'pose = predictor("photo.jpg")[0]  # the whole image; box=[x, y, w, h] for a person in it',
        "pose.keypoints, pose.scores, pose.joint_names  # (K, 2) in the photo's pixels, (K,), names",
        "```",
        "",
        "## Training",
        "",
        f"- data: {', '.join(card.training.get('data', [])) or 'not recorded'}",
        f"- epoch {card.training.get('epoch', '?')}, step {card.training.get('global_step', '?')} "
        "(Lightning's counters at save time)",
        *([f"- recipe: [`{RECIPE_FILE}`]({RECIPE_FILE}) (the full LightningCLI configuration)"] if has_recipe else []),
        "",
        "## Results",
        "",
        *(
            line
            for table in metrics_tables(card)
            for line in (table.to_markdown(digits=2), "")
        ),
        *([] if card.metrics else ["Not measured yet.", ""]),
        "## Files",
        "",
        f"- `{WEIGHTS_FILE}`: {card.weights.dtype}, {card.weights.size:,} bytes, sha256 `{card.weights.sha256}`",
        f"- `{CONFIG_FILE}`: class and constructor arguments (`poselit.zoo.load` rebuilds the module from it)",
        *([f"- `{RECIPE_FILE}`: training configuration"] if has_recipe else []),
    ]
    if card.citation:
        lines += ["", "## Citation", "", "```bibtex", card.citation.strip(), "```"]
    return "\n".join(lines) + "\n"


# --- publishing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    """What ``publish`` uploaded (or would upload, with ``revision`` ``None``)."""

    repo_id: str
    files: tuple[str, ...]
    revision: str | None = None
    url: str | None = None
    card: Path | None = None


def folder_files(folder: Path) -> tuple[str, ...]:
    """The files of an export folder that are uploaded (hidden ones left out), relative, sorted."""
    return tuple(
        str(p.relative_to(folder)) for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def publish(
    folder: str | Path,
    repo_id: str | None = None,
    *,
    private: bool = False,
    commit_message: str | None = None,
    dry_run: bool = False,
    api: HfApi | None = None,
    zoo_dir: str | Path | None = None,
) -> PublishResult:
    """Upload an export folder to a Hub model repository and pin the commit in the zoo card.

    The weights are checked against ``config.json`` first (nothing corrupt is published).
    The token comes from ``huggingface_hub`` (``HF_TOKEN`` or ``hf auth login``).

    Args:
        folder: Folder written by :func:`export_checkpoint`.
        repo_id: ``ORG/NAME`` (default: the zoo card's ``weights.hub.repo_id``).
        private: Create the repository as private.
        commit_message: Hub commit message.
        dry_run: Only say what would be uploaded where.
        api: The Hub client (tests pass a fake).
        zoo_dir: Card folder (default: ``$POSELIT_ZOO`` / the built-in zoo).
    """
    folder = Path(folder)
    config = read_config(folder / CONFIG_FILE)
    verify_sha256(_existing(config.weights_path(), config), config.weights.sha256, "Export the folder again.")
    path = zoo_folder(zoo_dir) / f"{config.name}.yaml"
    card = read_card(path) if path.is_file() else None
    if card and card.weights.sha256 != config.weights.sha256:
        raise ZooError(
            f"{path} describes other weights (sha256 {card.weights.sha256}) than {folder} "
            f"({config.weights.sha256}); export again with --name {config.name} to update the card"
        )
    repo_id = repo_id or (card.weights.hub.repo_id if card and card.weights.hub else None)
    if not repo_id or not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"give the Hub repository as --repo-id ORG/NAME (got {repo_id!r})")
    files = folder_files(folder)
    if dry_run:
        return PublishResult(repo_id, files)
    api = api or HfApi(library_name="poselit", library_version=__version__)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type="model",
        commit_message=commit_message or f"Upload {config.name} (poselit {__version__})",
        allow_patterns=[*files],
    )
    written = None
    if card is not None:
        hub = HubLocation(repo_id, commit.oid, config.weights.file or WEIGHTS_FILE)
        written = write_card(replace(card, weights=replace(card.weights, hub=hub)), path)
        write_table(path.parent)
    return PublishResult(repo_id, files, commit.oid, commit.commit_url, written)


# --- the zoo table -------------------------------------------------------------------------------

TABLE_COLUMNS = ("name", "method", "skeleton", "input", "results", "weights", "size", "licence")

TABLE_INTRO = """\
# Model zoo

<!-- Generated from the cards in this folder by `poselit zoo table`: edit the cards, not this file. -->

One YAML card per published checkpoint: what it is, how it was trained, how well it does
(measured with `poselit.evaluate`), where its weights are and their sha256.
`poselit zoo info NAME` prints a card; `poselit.zoo.load("NAME")` returns the model.
"""


def summary_row(card: ModelCard, markdown: bool = False) -> tuple[str, ...]:
    """One table row of a card (:data:`TABLE_COLUMNS`): results are the first protocol's
    Total per measured split; weights say where the bytes are."""
    results = "; ".join(
        f"{entry['dataset']} {metric} {_number(columns.get('Total'))}"
        for entry in card.metrics
        for metric, columns in [*entry["results"].items()][:1]
    )
    hub = card.weights.hub
    where = []
    if hub and hub.revision:
        short = f"hf://{hub.repo_id}@{hub.revision[:7]}"
        where.append(f"[{short}](https://huggingface.co/{hub.repo_id}/tree/{hub.revision})" if markdown else short)
    if card.weights.file:
        where.append("file")
    return (
        card.name,
        card.method,
        str(card.input.get("skeleton", "-")),
        "x".join(str(s) for s in card.input.get("size", [])) or "-",
        results or "-",
        ", ".join(where),
        f"{card.weights.size / 1e6:.1f} MB",
        card.license or "-",
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table(cards: Sequence[ModelCard]) -> str:
    """The cards as a Markdown table, one row each (in ``zoo/README.md`` and the project's
    README)."""
    rows = [TABLE_COLUMNS, ("---",) * len(TABLE_COLUMNS), *(summary_row(c, markdown=True) for c in cards)]
    return "".join("| " + " | ".join(row) + " |\n" for row in rows)


def render_table(cards: Sequence[ModelCard]) -> str:
    """``zoo/README.md``: the introduction and the table of the cards."""
    if not cards:
        return TABLE_INTRO + "\nNo checkpoints are published yet.\n"
    return TABLE_INTRO + "\n" + markdown_table(cards)


def write_table(directory: str | Path | None = None) -> Path:
    """Regenerate the zoo folder's ``README.md`` from its cards."""
    path = zoo_folder(directory) / README_FILE
    return write_atomic(path, render_table(all_cards(directory)))


def table_is_current(directory: str | Path | None = None) -> bool:
    """Whether the zoo folder's ``README.md`` is the table of its cards."""
    path = zoo_folder(directory) / README_FILE
    return path.is_file() and path.read_text() == render_table(all_cards(directory))


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned plain-text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# --- command line ------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    cards = [info(name, zoo_dir=args.zoo_dir) for name in list_models(args.pattern, zoo_dir=args.zoo_dir)]
    if not cards:
        print(f"no models in {_folder_label(args.zoo_dir)}" + (f" matching {args.pattern!r}" if args.pattern else ""))
        return 0
    print(text_table([TABLE_COLUMNS, *(summary_row(c) for c in cards)]))
    return 0


def run_info(args: argparse.Namespace) -> int:
    card = info(args.name, zoo_dir=args.zoo_dir)
    print(f"# {card.source}")
    print(_dump_card(card), end="")
    return 0


def run_download(args: argparse.Namespace) -> int:
    card, path = download(
        args.name, revision=args.revision, cache_dir=args.cache_dir, force=args.force, zoo_dir=args.zoo_dir
    )
    print(f"{card.name}: {path} (sha256 {card.weights.sha256} verified)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    citation = args.citation
    if citation and Path(citation).is_file():
        citation = Path(citation).read_text()
    card = export_checkpoint(
        args.checkpoint,
        args.name,
        args.out,
        class_path=args.class_path,
        half=args.fp16,
        recipe=args.recipe,
        evaluate=args.evaluate,
        data_root=args.root or os.environ.get("POSELIT_DATA"),
        reports=[EvaluationReport.load(path) for path in args.metrics],
        training_data=args.training_data,
        description=args.description,
        license=args.license,
        citation=citation,
        repo_id=args.repo_id,
        zoo_dir=args.zoo_dir,
        update_zoo=not args.no_card,
        ship=args.ship,
    )
    print(f"wrote {args.out}: {', '.join(folder_files(Path(args.out)))}")
    if (Path(args.out) / RECIPE_FILE).is_file():
        print(f"{RECIPE_FILE}: the run's configuration ({card.training.get('recipe') or 'from the checkpoint'})")
    else:
        print(f"poselit: {missing_recipe_message(Path(args.checkpoint))}", file=sys.stderr)
    for table in metrics_tables(card):
        print(table.to_text(digits=2))
    if not args.no_card:
        print(f"wrote zoo card {card.source} and {card.source.parent / README_FILE}")  # type: ignore[union-attr]
    return 0


def run_publish(args: argparse.Namespace) -> int:
    result = publish(args.folder, args.repo_id, private=args.private, commit_message=args.message,
                     dry_run=args.dry_run, zoo_dir=args.zoo_dir)
    folder = Path(args.folder)
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} to https://huggingface.co/{result.repo_id}:")
    for name in result.files:
        print(f"  {name}  ({(folder / name).stat().st_size:,} bytes)")
    if result.revision:
        print(f"commit {result.revision}: {result.url}")
        print(f"pinned in {result.card}" if result.card else "no zoo card to pin the commit in")
    return 0


def run_table(args: argparse.Namespace) -> int:
    if args.check:
        current = table_is_current(args.zoo_dir)
        state = "up to date" if current else "stale: run 'poselit zoo table'"
        print(f"{zoo_folder(args.zoo_dir) / README_FILE} is {state}")
        return 0 if current else 1
    print(f"wrote {write_table(args.zoo_dir)}")
    return 0


def __getattr__(name: str) -> Any:
    """``poselit.zoo.list()`` without shadowing the builtin ``list`` inside this module."""
    if name == "list":
        return list_models
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChecksumError",
    "HubLocation",
    "IncompatibleVersionError",
    "ModelCard",
    "PublishResult",
    "RunConfig",
    "WeightsInfo",
    "WeightsNotFoundError",
    "ZooError",
    "builtin_zoo_dir",
    "check_card_class",
    "download",
    "export_checkpoint",
    "find_recipe",
    "info",
    "list",
    "list_models",
    "load",
    "load_with_card",
    "publish",
    "read_card",
    "read_config",
    "table_is_current",
    "write_card",
    "write_table",
]
