"""Lightning checkpoint -> Hub-ready export folder + zoo card (``poselit zoo export``).

An export folder holds ``model.safetensors`` (fp32, or fp16), ``config.json`` (the card's
``class_path``, ``init_args``, ``input`` and ``weights``: enough to rebuild the module
without the recipe; the model's input description is stated once, in ``input``), ``README.md`` (a Hub model card with a ``model-index`` of the
measured metrics) and ``recipe.yaml`` (the training configuration). The checkpoint is
read weights-only (:mod:`poselit.checkpoints`); metrics are measured on the weights as
exported, with the project's test loop.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
import torch
from safetensors.torch import save

from poselit.atomic import make_folder, write_atomic
from poselit.checkpoints import CONFIG_KEY, average_state_dicts, read_checkpoint, read_state_dict, saved_class_path
from poselit.complexity import count_gflops, count_parameters
from poselit.data.datamodule import PoseDataModule
from poselit.data.sources import DatasetSpec
from poselit.evaluate import EvaluationReport, test_reports
from poselit.files import safetensors_metadata
from poselit.input_spec import INIT_ARGS
from poselit.models import class_path as class_path_of
from poselit.models.base import PoseLitModule
from poselit.zoo.cards import (
    CONFIG_FILE,
    CROPS,
    NAME_PATTERN,
    README_FILE,
    RECIPE_FILE,
    REPO_ID_PATTERN,
    WEIGHTS_FILE,
    HubLocation,
    ModelCard,
    WeightsInfo,
    ZooError,
    read_card,
    without_none,
    write_card,
)
from poselit.zoo.catalog import card_paths, zoo_folder
from poselit.zoo.hub import sha256_file
from poselit.zoo.loading import build_module, load_weights, offline_args, resolve_class, with_input_args
from poselit.zoo.publishing import hub_readme
from poselit.zoo.listing import write_table


def checkpoint_model_args(
    checkpoint: Mapping[str, Any], class_path: str | None, where: str
) -> tuple[str, dict[str, Any]]:
    """``(class_path, init_args)`` from a checkpoint's ``hyper_parameters``.

    The class is ``class_path`` if given, else the one the checkpoint records
    (:func:`~poselit.checkpoints.saved_class_path`).
    Weight-fetching arguments are written as "nothing to fetch". A checkpoint saved before
    the model owned its crop ``padding`` and ``fill`` gets those of the data module it was
    trained with (``datamodule_hyper_parameters``), where the class takes them.
    """
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    hparams.pop("_class_path", None)
    hparams.pop("_instantiator", None)
    class_path = class_path or saved_class_path(checkpoint)
    if not class_path:
        raise ZooError(
            f"{where}: the checkpoint does not name its class (saved by an older poselit?); give it, "
            "e.g. --class-path poselit.models.luvizon.LuvizonSoftArgmax"
        )
    cls = resolve_class(class_path, where)
    if not hparams:
        raise ZooError(f"{where}: the checkpoint holds no hyper-parameters; {cls.__name__} cannot be rebuilt from it")
    hparams = with_input_args(cls, hparams, checkpoint.get("datamodule_hyper_parameters") or {})
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
    ``poselit fit`` stores in every checkpoint (:data:`~poselit.checkpoints.CONFIG_KEY`), else
    the nearest ``config.yaml`` LightningCLI saved in :func:`recipe_folders` (checkpoints of
    older versions, or of other scripts); ``None`` when there is neither."""
    stored = data.get(CONFIG_KEY)
    if isinstance(stored, Mapping) and isinstance(stored.get("yaml"), str):
        recipes = [_display_path(Path(r)) for r in stored.get("recipes") or []]
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


#: Display names of the starting weights that the docs import with ``poselit backbone
#: import``, by the ``source`` file name it records in the weights file's metadata.
KNOWN_STARTS = {"movenet-lightning.json": "MoveNet Lightning", "mobilenet_v2-b0353104.pth": "ImageNet-1k"}


def starting_weights(hparams: Mapping[str, Any], zoo_dir: str | Path | None = None) -> str | None:
    """What a run's weights started from, for the card's ``training.start``: the start of the
    zoo model it was initialised from (a cycle from a shipped model keeps its lineage's
    start; its card is looked up in the zoo that resolved ``zoo:NAME`` in training, then in
    ``zoo_dir``), or the checkpoint file's name; else its backbone's weights, by the source that
    ``poselit backbone import`` recorded in the file (:data:`KNOWN_STARTS` names the usual
    ones), or the file's name where it is not readable here; timm's own weights with
    ``pretrained``; ``None`` for a random start."""
    init_from = str(hparams.get("init_from") or "")
    if init_from.startswith("zoo:"):
        name = init_from.removeprefix("zoo:")
        # The zoo that resolved init_from in training (POSELIT_ZOO, else the built-in one), then the export's.
        folders = dict.fromkeys(zoo_folder(folder) for folder in (None, zoo_dir))  # each once
        cards = (card_paths(folder).get(name) for folder in folders if folder.is_dir())
        starts = (read_card(path).training.get("start") for path in cards if path)
        return next((start for start in starts if start), init_from)
    if init_from:
        return Path(init_from).name
    weights = hparams.get("backbone_weights")
    if weights:
        path = Path(str(weights))
        source = safetensors_metadata(path).get("source", path.name) if path.suffix == ".safetensors" and path.is_file() else path.name
        return KNOWN_STARTS.get(source, source)
    return f"timm {hparams.get('backbone')} (pretrained)" if hparams.get("pretrained") else None


def training_info(
    checkpoint: Mapping[str, Any],
    recipe: str | None,
    data: Sequence[str] | None,
    averaged_with: Sequence[str] = (),
    zoo_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The card's ``training``: recipe, training datasets (``NAME:SPLIT[@PATH]`` as the data
    module named them: a path says the data were not the standard files, e.g. generated
    ones), the starting weights (:func:`starting_weights`), Lightning's epoch and step
    counters at save time and, for weights averaged over several checkpoints, the other
    files' names (``averaged_with``)."""
    if data is None:
        data = (checkpoint.get("datamodule_hyper_parameters") or {}).get("train") or []
    return without_none(
        {
            "recipe": recipe,
            "data": [str(DatasetSpec.parse(s)) for s in data] or None,
            "start": starting_weights(checkpoint.get("hyper_parameters") or {}, zoo_dir),
            "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"),
            "averaged_with": list(averaged_with) or None,
        }
    )


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (recipes of the project)."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def metrics_entry(report: EvaluationReport, measured_with: str, crop: str = "box") -> dict[str, Any]:
    """One card ``metrics`` entry from an evaluation report: split (``NAME:SPLIT[@PATH]``),
    records, the ``crop`` where it is not the protocol's box (:data:`~poselit.zoo.cards.CROPS`),
    and the columns of each protocol (percent, 2 decimals; ``null``: unscorable)."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {list(CROPS)}, got {crop!r}")
    return {
        "dataset": str(DatasetSpec.parse(report.dataset)),
        "records": report.records,
        **({} if crop == "box" else {"crop": crop}),
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
    batch_size: int = 16,
    num_workers: int = 0,
    accelerator: str = "auto",
    first: int | None = None,
) -> list[EvaluationReport]:
    """Score ``model`` on dataset splits with the project's test loop (``Trainer.test``:
    the flip test and metrics of :class:`PoseLitModule`, crops as the model's input
    description says), one report per split; with ``first``, on the first ``first``
    people of each split only (a quick check)."""
    if first is not None:  # whole batches of the first people: a batch size dividing ``first``
        batch_size = max(size for size in range(1, min(batch_size, first) + 1) if first % size == 0)
    data = PoseDataModule(
        train=[],
        val=list(datasets),
        data_root=str(data_root) if data_root else None,
        input_size=model.input_size,
        padding=model.padding,
        fill=model.fill,
        batch_size=batch_size,
        num_workers=num_workers,
    )
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        limit_test_batches=1.0 if first is None else first // batch_size,
    )
    trainer.test(model, datamodule=data, verbose=False)
    return test_reports(model, data)


def quick_check(
    model: PoseLitModule, dataset: str, data_root: str | Path | None, *, first: int, **options: Any
) -> dict[str, Any]:
    """The card's ``check``: the first metric's ``Total`` on the first ``first`` people of
    ``dataset`` (``options``: those of :func:`evaluate_model`)."""
    (report,) = evaluate_model(model, [dataset], data_root, first=first, **options)
    result = report.results[0]
    return {"dataset": dataset, "records": min(first, report.records), "metric": result.metric,
            "value": round(float(result.columns["Total"]), 2)}


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
    batch_size: int = 16,
    check_records: int = 100,
    average: Sequence[str | Path] = (),
    set_args: Mapping[str, Any] | None = None,
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
            models only). Needs measured results (``evaluate`` or ``reports``): a shipped
            card without them is refused before anything is written.
        batch_size: Batch size of the ``evaluate`` runs.
        check_records: People of the first ``evaluate`` split measured again on their own
            for the card's ``check`` (see :data:`~poselit.zoo.cards.CHECK_FIELDS`).
        average: Other checkpoints (or weights files) of the same network: the export's
            weights are the mean of ``checkpoint``'s and theirs
            (:func:`~poselit.checkpoints.average_state_dicts`); ``checkpoint`` gives
            everything else (hyper-parameters, recipe, counters). The card's ``training``
            names them (``averaged_with``).
        set_args: Constructor arguments to change, e.g. ``{"refine": "dark"}``: settings
            chosen on held-out people after training (decoding, flip test). The weights
            must still load strictly, so an argument that changes the network fails.

    Returns:
        The card as written to the zoo (``source`` set), or the export's card.
    """
    checkpoint = Path(checkpoint)
    out = Path(out)
    if not NAME_PATTERN.fullmatch(name):
        raise ZooError(f"--name must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    if repo_id and not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"--repo-id must be ORG/NAME, got {repo_id!r}")
    if ship and not (evaluate or reports):
        raise ZooError(
            f"{checkpoint}: --ship puts the model in the zoo, whose cards carry measured results, and this "
            "export measures none: add --evaluate SPLIT (e.g. lsp:test) or --metrics RESULTS.json"
        )
    data = read_checkpoint(checkpoint)
    if "state_dict" not in data:
        raise ZooError(f"{checkpoint}: not a Lightning checkpoint (no 'state_dict')")
    if average:
        states = [data["state_dict"], *(read_state_dict(path) for path in average)]
        data = {**data, "state_dict": average_state_dicts(states, [str(checkpoint), *map(str, average)])}
    class_path, init_args = checkpoint_model_args(data, class_path, str(checkpoint))
    set_args = dict(set_args or {})
    unknown = sorted(set_args.keys() - init_args.keys())
    if unknown:
        raise ZooError(
            f"--set {unknown[0]}: {class_path.rsplit('.', 1)[-1]} has no such argument; it has {', '.join(sorted(init_args))}"
        )
    init_args = {**init_args, **set_args}
    model = build_module(class_path, init_args, str(checkpoint))
    load_weights(model, data["state_dict"], str(checkpoint))
    run_config = RunConfig.from_file(Path(recipe)) if recipe else find_recipe(checkpoint, data)
    dtype = "float16" if half else "float32"
    tensors = {
        key: (value.to(getattr(torch, dtype)) if value.is_floating_point() else value).detach().contiguous()
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(tensors)  # the module exactly as it will be loaded
    metrics = [metrics_entry(r, "poselit eval") for r in reports]
    check: dict[str, Any] = {}
    if evaluate:
        measured_with = f"poselit zoo export --evaluate (flip_test={model.flip_test})"
        measured = evaluate_model(model, evaluate, data_root, batch_size=batch_size)
        metrics += [metrics_entry(r, measured_with) for r in measured]
        check = quick_check(model, evaluate[0], data_root, first=check_records, batch_size=batch_size)

    make_folder(out)
    weights_path = out / WEIGHTS_FILE
    # one metadata key only: safetensors writes several in random order, and the same
    # checkpoint must give the same bytes (and sha256) on every export
    write_atomic(weights_path, save(tensors, metadata={"format": "pt"}))
    card = ModelCard(
        name=name,
        class_path=class_path,
        init_args={key: value for key, value in init_args.items() if key not in INIT_ARGS.values()},
        weights=WeightsInfo(
            sha256=sha256_file(weights_path),
            size=weights_path.stat().st_size,
            dtype=dtype,
            file=WEIGHTS_FILE,
            hub=HubLocation(repo_id) if repo_id else None,
        ),
        description=description,
        input=model.input_spec.to_dict(),
        training=training_info(
            data, run_config.recipe if run_config else None, training_data, [Path(path).name for path in average], zoo_dir
        ),
        metrics=tuple(metrics),
        complexity={"parameters": count_parameters(model), "gflops": round(count_gflops(model), 3)},
        check=check,
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
    make_folder(folder)
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


#: The ``complexity`` fields measured by timing (``benchmarks/latency.py --cards``), not by export.
TIMING_FIELDS = ("cpu_ms", "cpu_ms_measured")


def same_computation(previous: ModelCard, new: ModelCard) -> bool:
    """Whether two cards run the same computation with different weight values: the same
    module and arguments (decoding included), input, weight dtype, parameter count and
    GFLOPs. A dense network's time does not depend on its weight values, so a latency
    measured for one holds for the other."""

    def computation(card: ModelCard) -> tuple:
        cost = card.complexity
        return (card.class_path, dict(card.init_args), dict(card.input), card.weights.dtype,
                cost.get("parameters"), cost.get("gflops"))

    return computation(previous) == computation(new)


def merged_card(previous: ModelCard, new: ModelCard) -> ModelCard:
    """``new`` keeping what ``previous`` knew and ``new`` does not: description, license,
    citation, (for the same weights) metrics and the pinned Hub location, and (for the
    same computation, :func:`same_computation`) the measured CPU time."""
    same = previous.weights.sha256 == new.weights.sha256
    hub = new.weights.hub
    old_hub = previous.weights.hub
    if same and old_hub and (hub is None or hub.repo_id == old_hub.repo_id):
        hub = old_hub
    timing = {key: previous.complexity[key] for key in TIMING_FIELDS if key in previous.complexity}
    return replace(
        new,
        description=new.description or previous.description,
        license=new.license or previous.license,
        citation=new.citation or previous.citation,
        metrics=new.metrics or (previous.metrics if same else ()),
        weights=replace(new.weights, hub=hub),
        complexity={**new.complexity, **(timing if same_computation(previous, new) else {})},
    )


__all__ = [
    "RunConfig",
    "add_to_zoo",
    "checkpoint_model_args",
    "evaluate_model",
    "export_checkpoint",
    "find_recipe",
    "merged_card",
    "quick_check",
    "missing_recipe_message",
    "same_computation",
]
