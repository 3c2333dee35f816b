"""The published row a recipe reproduces: its ``<recipe>.paper.yaml`` sidecar (``poselit reproduce``).

A recipe that reproduces a published table row has a sidecar file next to it,
``<recipe>.paper.yaml``, naming the paper, table and row, and citing the published
numbers by their id in :data:`poselit.tables.PUBLISHED` (the one place they are written)::

    paper: belagiannis2017                 # key of poselit.tables.PAPERS
    citation: Belagiannis & Zisserman 2017
    table: Table I
    row: + Body Part
    results:
      - published: belagiannis2017/table1-body-parts     # mpii:valid, PCKh@0.5
      - published: belagiannis2017/table2-ours           # mpii:test: labels withheld ...
        evaluate_on: mpii:valid                          # ... so ours is measured here
        label: 'Belagiannis & Zisserman 2017, Table II: Ours'   # another table's row
    notes: [where and why the recipe deviates]

``results`` may be empty when a paper's numbers are not available; ``poselit reproduce``
then prints our row alone.

``poselit reproduce RECIPE --ckpt CKPT`` tests the checkpoint with the recipe on those
datasets (LightningCLI ``test``) and prints each metric's table with the published row
under ours, then the sidecar's notes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # poselit.tables imports torch; 'poselit reproduce --help' must not
    from poselit.tables import Reference

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
    """Whether ``path`` is a sidecar (not a recipe): recipe globs skip these."""
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

    from poselit.tables import PAPERS, published

    paper = str(field(data, "paper", "the file"))
    if paper not in PAPERS:
        raise ValueError(f"{path}: paper {paper!r} is not one of {', '.join(PAPERS)}")
    label = f"{field(data, 'citation', 'the file')}, {field(data, 'table', 'the file')}: {field(data, 'row', 'the file')}"
    references, evaluate_on = [], []
    for i, result in enumerate(field(data, "results", "the file") or ()):
        where = f"results[{i}]"
        try:
            reference = published(str(field(result, "published", where)))
        except KeyError as err:
            raise ValueError(f"{path}: {where}.published: {err.args[0]}") from None
        if reference.key != paper:
            raise ValueError(f"{path}: {where}.published names a row of {reference.key}, not of {paper}")
        evaluate_on.append(str(result.get("evaluate_on", reference.dataset)))
        shown = str(result.get("label", label))  # a row of another table of the paper
        shown = shown if evaluate_on[-1] == reference.dataset else f"{shown} [{reference.dataset}]"
        references.append(replace(reference, label=shown))
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
