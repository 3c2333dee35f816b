"""The zoo's listing of its cards: one row per card, in ``zoo/README.md`` (``poselit zoo
table``), in the project's README and in ``poselit zoo list``, and the comparison of zoo
models on one split. (Result tables of an evaluation are :mod:`poselit.tables`.) Formerly
``poselit.zoo.table``, which works for one release and warns."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from poselit.atomic import write_atomic
from poselit.zoo.cards import README_FILE, ModelCard, metrics_crop
from poselit.zoo.catalog import all_cards, zoo_folder

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
    Total per measured split (and crop, where it is not the protocol's box); weights say
    where the bytes are."""
    results = "; ".join(
        f"{entry['dataset']} {metric} {_number(columns.get('Total'))}"
        + ("" if metrics_crop(entry) == "box" else f" ({metrics_crop(entry)})")
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


COMPARED_METRIC = {"lsp:test": ("PCK@0.2", "PCP@0.5"), "mpii:valid": ("PCKh@0.5", None)}
"""Per dataset split: the metric whose per-part columns a comparison shows, and the one
whose Total it adds (None: none)."""


def comparison_table(cards: Sequence[ModelCard], dataset: str = "lsp:test") -> str:
    """Markdown table of the cards measured on ``dataset`` beside the papers' published
    rows (:data:`poselit.tables.PUBLISHED`, headline rows): the starting weights (the card's
    ``training.start``), parameters, GFLOPs, CPU ms per
    image (the card's ``complexity.cpu_ms``, written by ``benchmarks/latency.py --cards``),
    the per-part columns and Total/AUC of the dataset's metric and the Total of its second
    metric (PCP@0.5 on LSP), all with the protocol's person box, and the metric's Total
    from the whole image (the card's ``crop: whole image`` entry, written by
    ``benchmarks/whole_image.py --cards``). What the table shows is decided here, from the
    cards and the papers' rows, so the README's copy cannot drift from them.

    >>> print(comparison_table([]).splitlines()[0])
    | model | start | params | GFLOPs | CPU ms | Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | PCK@0.2 | AUC | PCP@0.5 | PCK@0.2, whole image |
    """
    from poselit.tables import PUBLISHED, TABLE_COLUMNS

    if dataset not in COMPARED_METRIC:
        raise ValueError(f"no comparison defined for {dataset!r}; choose one of {', '.join(COMPARED_METRIC)}")
    metric, second = COMPARED_METRIC[dataset]
    parts = [c for c in TABLE_COLUMNS[metric] if c not in ("Total", "AUC")]
    header = ["model", "start", "params", "GFLOPs", "CPU ms", *parts, metric, "AUC", *([second] if second else []),
              f"{metric}, whole image"]

    def cells(results: dict[str, dict[str, float]]) -> list[str]:
        main = results.get(metric, {})
        return [*(_number(main.get(c)) for c in [*parts, "Total", "AUC"]),
                *([_number(results.get(second, {}).get("Total"))] if second else [])]

    def measured(card: ModelCard, crop: str) -> dict[str, dict[str, float]] | None:
        return next((m["results"] for m in card.metrics if m["dataset"] == dataset and metrics_crop(m) == crop), None)

    rows = []
    for card in cards:
        boxed, whole = measured(card, "box"), measured(card, "whole image") or {}
        if boxed is not None:
            cost = card.complexity
            params = f"{cost['parameters'] / 1e6:.1f} M" if cost.get("parameters") else "-"
            gflops = f"{cost['gflops']:.2f}" if cost.get("gflops") else "-"
            ms = f"{cost['cpu_ms']:.0f}" if cost.get("cpu_ms") else "-"
            rows.append([f"`{card.name}`", card.training.get("start", "-"), params, gflops, ms, *cells(boxed),
                         _number(whole.get(metric, {}).get("Total"))])
    for paper in dict.fromkeys(r.key for r in PUBLISHED if r.dataset == dataset and r.metric == metric):
        published = {r.metric: dict(r.values) for r in PUBLISHED if r.key == paper and r.dataset == dataset and r.headline}
        label = next(r.label for r in PUBLISHED if r.key == paper and r.dataset == dataset and r.metric == metric and r.headline)
        rows.append([f"{label} (paper)", "-", "-", "-", "-", *cells(published), "-"])
    lines = [header, ["---"] * len(header), *rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned plain-text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


__all__ = [
    "COMPARED_METRIC",
    "TABLE_COLUMNS",
    "comparison_table",
    "markdown_table",
    "render_table",
    "summary_row",
    "table_is_current",
    "text_table",
    "write_table",
]
