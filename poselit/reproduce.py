"""``poselit reproduce RECIPE --ckpt CKPT``: our measured row beside the paper's.

A recipe that reproduces a published table row has a sidecar file next to it,
``<recipe>.paper.yaml``, naming the paper, table and row and holding the published numbers
per dataset split and metric::

    paper: belagiannis2017                 # key of poselit.tables.PAPERS
    citation: Belagiannis & Zisserman 2017
    table: Table I
    row: Keypoint (include occl.)
    results:
      - dataset: mpii:valid                # what the row was measured on
        metric: PCKh@0.5                   # PCKh@0.5, PCK@0.2 or PCP@0.5
        values: {Head: 95.2, Shoulder: 92.2, ..., Total: 82.8}
      - dataset: mpii:test                 # labels withheld (benchmark server) ...
        evaluate_on: mpii:valid            # ... so ours is measured here
        label: Belagiannis & Zisserman 2017, Table II: Ours   # another table's row
        metric: PCKh@0.5
        values: {...}
    notes: [where and why the recipe deviates]

``results`` may be empty when a paper's numbers are not available; ``reproduce`` then
prints our row alone.

``reproduce`` tests the checkpoint with the recipe on those datasets (LightningCLI
``test``) and prints each metric's table with the published row under ours, then the
sidecar's notes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import yaml

from poselit.atomic import write_atomic

if TYPE_CHECKING:  # poselit.tables imports torch; 'poselit reproduce --help' must not
    from poselit.tables import Reference, Table

SIDECAR_SUFFIX = ".paper.yaml"


@dataclass(frozen=True)
class PaperRow:
    """The published row a recipe reproduces (its sidecar file)."""

    recipe: Path
    paper: str
    citation: str
    table: str
    row: str
    references: tuple[Reference, ...]
    evaluate_on: tuple[str, ...]
    notes: tuple[str, ...] = ()


def sidecar_path(recipe: str | Path) -> Path:
    """``recipes/x/y.yaml`` -> ``recipes/x/y.paper.yaml``."""
    recipe = Path(recipe)
    return recipe.with_name(recipe.name.removesuffix(".yaml") + SIDECAR_SUFFIX)


def is_sidecar(path: str | Path) -> bool:
    return str(path).endswith(SIDECAR_SUFFIX)


def read_paper_row(recipe: str | Path) -> PaperRow:
    """Read and check the sidecar of ``recipe``; errors name the file and the field."""
    path = sidecar_path(recipe)
    if not path.is_file():
        raise FileNotFoundError(f"{recipe} has no published row to compare with: {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}

    def field(mapping: dict[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            raise ValueError(f"{path}: {where} has no '{key}' field")
        return mapping[key]

    from poselit.tables import PAPERS, TABLE_COLUMNS, Reference

    paper = str(field(data, "paper", "the file"))
    if paper not in PAPERS:
        raise ValueError(f"{path}: paper {paper!r} is not one of {', '.join(PAPERS)}")
    label = f"{field(data, 'citation', 'the file')}, {field(data, 'table', 'the file')}: {field(data, 'row', 'the file')}"
    references, evaluate_on = [], []
    for i, result in enumerate(field(data, "results", "the file") or ()):
        where = f"results[{i}]"
        metric = str(field(result, "metric", where))
        if metric not in TABLE_COLUMNS:
            raise ValueError(f"{path}: {where}.metric {metric!r} is not one of {', '.join(TABLE_COLUMNS)}")
        values = {str(k): float(v) for k, v in field(result, "values", where).items()}
        unknown = sorted(set(values) - set(TABLE_COLUMNS[metric]))
        if unknown:
            raise ValueError(f"{path}: {where}.values has unknown columns {unknown} for {metric}")
        dataset = str(field(result, "dataset", where))
        evaluate_on.append(str(result.get("evaluate_on", dataset)))
        shown = str(result.get("label", label))  # a row of another table of the paper
        shown = shown if evaluate_on[-1] == dataset else f"{shown} [{dataset}]"
        references.append(Reference(paper, shown, dataset, metric, values, source=str(path)))
    return PaperRow(
        recipe=Path(recipe),
        paper=paper,
        citation=str(data["citation"]),
        table=str(data["table"]),
        row=str(data["row"]),
        references=tuple(references),
        evaluate_on=tuple(dict.fromkeys(evaluate_on)),
        notes=tuple(data.get("notes") or ()),
    )


def reproduce(recipe: str | Path, ckpt: str | Path, overrides: Sequence[str] = ()) -> list[Table]:
    """Test ``ckpt`` with ``recipe`` on the datasets of its published row (the recipe's
    test / validation sets when the row has no numbers); the tables (ours, then the
    paper's row) are printed and returned.

    ``overrides`` are LightningCLI arguments applied last (e.g. ``--data.data_root=...``).
    """
    from poselit.training import run_lightning

    row = read_paper_row(recipe)
    datasets = [f"--data.test={json.dumps(list(row.evaluate_on))}"] if row.evaluate_on else []
    args = ["test", "-c", str(recipe), f"--ckpt_path={ckpt}", *datasets, "--trainer.logger=false", *overrides]
    tables = run_lightning(args, references=row.references).tables
    if row.notes:  # a comparison is only as good as what differs from the paper's set-up
        print(f"\nHow this recipe differs from {row.citation}, {row.table}:")
        print("\n".join(f"- {note}" for note in row.notes))
    return tables


def run_reproduce(args: argparse.Namespace) -> int:
    """Handler of ``poselit reproduce``."""
    tables = reproduce(args.recipe, args.ckpt, args.overrides)
    if args.json:
        write_atomic(args.json, json.dumps([t.to_dict() for t in tables], indent=2))
        print(f"wrote {args.json}")
    return 0
