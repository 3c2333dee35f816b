"""The Hub side of an export: its ``README.md`` (a Hub model card with the measured
metrics as ``model-index``), and publishing the folder with the commit pinned in the card.

``poselit zoo publish`` uploads a folder written by ``poselit zoo export`` (and
``model.push_to_hub`` one it exports, :mod:`poselit.zoo.push`), both through :func:`upload_export`;
the token comes from ``huggingface_hub`` (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCardData

from poselit import __version__
from poselit.data.sources import SOURCES, DatasetSpec
from poselit.tables import Row, Table
from poselit.zoo.cards import (
    CONFIG_FILE,
    RECIPE_FILE,
    REPO_ID_PATTERN,
    WEIGHTS_FILE,
    HubLocation,
    ModelCard,
    ZooError,
    metrics_crop,
    read_card,
    read_config,
    write_card,
)
from poselit.zoo.catalog import zoo_folder
from poselit.zoo.hub import existing_weights, verify_sha256
from poselit.zoo.listing import write_table

HUB_TAGS = ("pose-estimation", "keypoint-detection", "human-pose-estimation", "pytorch-lightning")
HEADLINE_COLUMNS = ("Total", "AUC", "AP")
"""Columns of each metric that go into the Hub's ``model-index`` (the tables hold the rest)."""


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
                        metric_name=(metric if column in metric else f"{metric} {column}") + _crop_suffix(entry),
                        metric_value=value,
                    )
                )
    return results


def _crop_suffix(entry: Mapping[str, Any]) -> str:
    """``", whole image"`` for a metrics entry measured without the protocol's box, else ``""``."""
    return "" if metrics_crop(entry) == "box" else f", {metrics_crop(entry)}"


def dataset_title(spec: DatasetSpec) -> str:
    """The dataset's full name, or the spec itself when it names its own files (which may
    not be the standard ones: a Hub page must not claim LSP for generated data)."""
    if spec.path:
        return str(spec)
    return SOURCES[spec.name].title if spec.name in SOURCES else spec.name


def metrics_tables(card: ModelCard) -> list[Table]:
    """One paper-layout table per dataset split and protocol."""
    return [
        Table(
            f"{entry['dataset']}, {entry.get('records', '?')} people{_crop_suffix(entry)}: {metric}",
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


def upload_export(
    folder: Path,
    repo_id: str,
    files: Sequence[str],
    *,
    name: str,
    private: bool = False,
    commit_message: str | None = None,
    api: HfApi | None = None,
) -> CommitInfo:
    """Upload ``files`` of an export ``folder`` (:func:`folder_files`) to the Hub model
    repository ``repo_id`` in one commit, creating the repository if needed; the path of
    :func:`publish` and of ``model.push_to_hub`` (:mod:`poselit.zoo.push`).

    ``name`` (the model's) goes into the default commit message; ``api`` is the Hub client
    (default: ``HfApi``, whose token is ``HF_TOKEN`` or ``hf auth login``'s; tests pass a
    fake). Returns the commit (``oid``, ``commit_url``).
    """
    api = api or HfApi(library_name="poselit", library_version=__version__)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type="model",
        commit_message=commit_message or f"Upload {name} (poselit {__version__})",
        allow_patterns=[*files],
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
    verify_sha256(existing_weights(config.weights_path(), config), config.weights.sha256, "Export the folder again.")
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
    commit = upload_export(
        folder, repo_id, files, name=config.name, private=private, commit_message=commit_message, api=api
    )
    written = None
    if card is not None:
        hub = HubLocation(repo_id, commit.oid, config.weights.file or WEIGHTS_FILE)
        written = write_card(replace(card, weights=replace(card.weights, hub=hub)), path)
        write_table(path.parent)
    return PublishResult(repo_id, files, commit.oid, commit.commit_url, written)


__all__ = [
    "HUB_TAGS", "PublishResult", "eval_results", "folder_files", "hub_readme", "metrics_tables", "publish",
    "upload_export",
]
