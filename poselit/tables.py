"""Results tables in the papers' layout (text, Markdown, JSON), with reference rows.

A :class:`Table` has the columns of one metric's table in the papers (e.g. ``Head
Shoulder Elbow Wrist Hip Knee Ankle Total AUC`` for MPII PCKh, Belagiannis & Zisserman
Table II; ``Torso Upper leg ... Head Total`` for LSP PCP, Luvizon et al. Table 4) and one
row per method. :data:`PUBLISHED` holds the published rows of the three reproduced
papers, so ``poselit eval --reference bulat2016`` prints them beside ours, and
``poselit reproduce`` the row a recipe reproduces (cited by its ``id``).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from poselit.evaluation_protocols import PCK_PARTS, PCP_COLUMNS, MetricResult

Value = float | int | None


@dataclass(frozen=True)
class Row:
    """One table row: a label and its values by column (missing columns print ``-``)."""

    label: str
    values: Mapping[str, Value]


@dataclass(frozen=True)
class Table:
    """A titled table of rows, printable as aligned text or Markdown."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()

    def cells(self, digits: int = 1) -> list[list[str]]:
        """Header and rows as strings (floats with ``digits`` decimals, NaN/missing ``-``)."""
        return [["", *self.columns]] + [
            [row.label, *(_format(row.values.get(c), digits) for c in self.columns)] for row in self.rows
        ]

    def to_text(self, digits: int = 1) -> str:
        """Aligned plain text: title, header, rows, then the notes."""
        cells = self.cells(digits)
        widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
        lines = [self.title]
        for r in cells:
            lines.append(
                "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
            )
        return "\n".join(lines + [f"  * {note}" for note in self.notes])

    def to_markdown(self, digits: int = 1) -> str:
        """GitHub Markdown: bold title, pipe table, notes as a list."""
        header, *rows = self.cells(digits)
        lines = [
            f"**{self.title}**",
            "",
            _md_row(header),
            "|" + "|".join([" --- "] + [" ---: "] * len(self.columns)) + "|",
        ]
        lines += [_md_row(r) for r in rows]
        return "\n".join(lines + ([""] + [f"- {note}" for note in self.notes] if self.notes else []))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: title, columns, rows (NaN becomes ``None``), notes."""
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [
                {"label": r.label, "values": {c: _json_value(r.values.get(c)) for c in self.columns}}
                for r in self.rows
            ],
            "notes": list(self.notes),
        }


def _format(value: Value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _json_value(value: Value) -> Value:
    return None if isinstance(value, float) and math.isnan(value) else value


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def metric_table(
    result: MetricResult, label: str, title: str, references: Iterable[Row] = (), notes: bool = True
) -> Table:
    """The paper-layout table of one metric: our row, then the reference rows."""
    return Table(
        title=title,
        columns=tuple(result.columns),
        rows=(Row(label, result.columns), *references),
        notes=tuple(result.notes()) if notes else (),
    )


def per_item_table(result: MetricResult, title: str) -> Table:
    """One row per joint (or stick): its score and how many instances it was scored on."""
    return Table(
        title=title,
        columns=(result.metric, "scored"),
        rows=tuple(
            Row(name, {result.metric: value, "scored": result.counts.get(name)})
            for name, value in result.items.items()
        ),
    )


@dataclass(frozen=True)
class Reference:
    """Published numbers of one paper for one dataset split and metric.

    ``id`` names the row in :data:`PUBLISHED` (``<paper>/<row>``: what a recipe's
    ``.paper.yaml`` sidecar cites); ``headline`` rows are the ones ``poselit eval
    --reference PAPER`` prints, the paper's main result per dataset and metric.
    """

    key: str
    label: str
    dataset: str
    metric: str
    values: Mapping[str, float]
    source: str
    id: str = ""
    headline: bool = True

    def row(self) -> Row:
        return Row(self.label, self.values)


_PCK_COLUMNS = (*(part for part, _ in PCK_PARTS), "Total", "AUC")
_PCP_COLUMNS = (*PCP_COLUMNS, "Total")

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "PCKh@0.5": _PCK_COLUMNS,
    "PCK@0.2": _PCK_COLUMNS,
    "PCP@0.5": _PCP_COLUMNS,
}
"""The columns of the papers' table of each published metric."""


def _values(columns: Sequence[str], *numbers: float) -> dict[str, float]:
    return dict(zip(columns, numbers))


def _belagiannis_table1(row: str, label: str, *numbers: float) -> Reference:
    """A row of Belagiannis & Zisserman's Table I (MPII validation, PCKh@0.5, no AUC)."""
    return Reference(
        "belagiannis2017",
        f"Belagiannis & Zisserman 2017, Table I: {label}",
        "mpii:valid",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, *numbers),
        f"Belagiannis & Zisserman, FG 2017, Table I ({label}, trained on MPII)",
        f"belagiannis2017/table1-{row}",
        headline=False,
    )


PUBLISHED: tuple[Reference, ...] = (
    Reference(
        "bulat2016",
        "Bulat & Tzimiropoulos 2016 [MPII test]",
        "mpii:test",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, 97.9, 95.1, 89.9, 85.3, 89.4, 85.7, 81.7, 89.7, 59.6),
        "Bulat & Tzimiropoulos, ECCV 2016, Table 6 (residual); AUC from Belagiannis & Zisserman Table II",
        "bulat2016/table6-residual",
    ),
    Reference(
        "bulat2016",
        "Bulat & Tzimiropoulos 2016",
        "lsp:test",
        "PCK@0.2",
        _values(_PCK_COLUMNS, 97.2, 92.1, 88.1, 85.2, 92.2, 91.4, 88.7, 90.7),
        "Bulat & Tzimiropoulos, ECCV 2016, Table 7 (residual, MPII + LSP training)",
        "bulat2016/table7-residual",
    ),
    Reference(
        "bulat2016",
        "Bulat & Tzimiropoulos 2016",
        "lsp:test",
        "PCP@0.5",
        _values(_PCP_COLUMNS, 97.7, 92.4, 89.3, 86.7, 79.7, 95.2, 88.9),
        "as listed in Luvizon et al. 2017, Table 4 (person-centric annotations)",
        "bulat2016/lsp-pcp",
    ),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017 [MPII valid]",
        "mpii:valid",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, 96.1, 93.1, 84.9, 78.3, 84.6, 78.5, 72.6, 84.6),
        "Belagiannis & Zisserman, FG 2017, Table I (2 iterations + body parts, trained on MPII)",
        "belagiannis2017/table1-body-parts",
    ),
    _belagiannis_table1("keypoint-include-occl", "Keypoint (include occl.)", 95.2, 92.2, 82.9, 77.0, 82.5, 75.7, 69.6, 82.8),
    _belagiannis_table1("keypoint-ignore-occl", "Keypoint (ignore occl.)", 95.3, 91.4, 81.9, 75.2, 80.5, 73.1, 67.4, 81.4),
    _belagiannis_table1("keypoint-exclude-occl", "Keypoint (exclude occl.)", 95.4, 89.6, 79.1, 74.3, 78.9, 73.0, 66.7, 80.3),
    _belagiannis_table1("1-iteration", "+ 1 Iteration", 96.1, 93.0, 84.0, 77.5, 83.5, 76.2, 69.7, 83.6),
    _belagiannis_table1("2-iterations", "+ 2 Iterations", 96.1, 93.0, 84.1, 77.4, 83.4, 76.1, 70.0, 83.6),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017 [MPII test]",
        "mpii:test",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, 97.7, 95.0, 88.2, 83.0, 87.9, 82.6, 78.4, 88.1, 58.8),
        "Belagiannis & Zisserman, FG 2017, Table II (MSCOCO pre-training, MPII fine-tuning)",
        "belagiannis2017/table2-coco-pretrained",
    ),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017, Table II: Ours",
        "mpii:test",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, 97.5, 94.3, 86.9, 80.8, 86.7, 80.7, 76.0, 86.7, 56.8),
        "Belagiannis & Zisserman, FG 2017, Table II (Ours: 2 iterations + body parts, trained on MPII)",
        "belagiannis2017/table2-ours",
        headline=False,
    ),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017",
        "lsp:test",
        "PCK@0.2",
        _values(_PCK_COLUMNS, 95.2, 89.0, 81.5, 77.0, 83.7, 87.0, 82.8, 85.2),
        "Belagiannis & Zisserman, FG 2017, Table IV (MPII & LSP, 2 iterations)",
        "belagiannis2017/table4-mpii-lsp",
    ),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017, Table IV: Ours (MPII fine-tuned)",
        "lsp:test",
        "PCK@0.2",
        _values(_PCK_COLUMNS, 94.3, 87.1, 78.6, 72.0, 78.1, 83.2, 77.1, 81.5),
        "Belagiannis & Zisserman, FG 2017, Table IV (MPII training, LSP fine-tuning)",
        "belagiannis2017/table4-mpii-finetuned",
        headline=False,
    ),
    Reference(
        "belagiannis2017",
        "Belagiannis & Zisserman 2017",
        "lsp:test",
        "PCP@0.5",
        _values(_PCP_COLUMNS, 96.0, 86.7, 82.2, 79.4, 69.4, 89.4, 82.1),
        "as listed in Luvizon et al. 2017, Table 4 (person-centric annotations)",
        "belagiannis2017/lsp-pcp",
    ),
    Reference(
        "luvizon2017",
        "Luvizon et al. 2017 [MPII test]",
        "mpii:test",
        "PCKh@0.5",
        _values(_PCK_COLUMNS, 98.1, 96.6, 92.0, 87.5, 90.6, 88.0, 82.7, 91.2),
        "Luvizon, Tabia & Picard 2017, Table 5",
        "luvizon2017/table5",
    ),
    Reference(
        "luvizon2017",
        "Luvizon et al. 2017",
        "lsp:test",
        "PCK@0.2",
        _values(_PCK_COLUMNS, 97.5, 93.3, 87.6, 84.6, 92.8, 92.0, 90.0, 91.1),
        "Luvizon, Tabia & Picard 2017, Table 3 (person-centric annotations)",
        "luvizon2017/table3",
    ),
    Reference(
        "luvizon2017",
        "Luvizon et al. 2017",
        "lsp:test",
        "PCP@0.5",
        _values(_PCP_COLUMNS, 98.2, 93.6, 91.0, 86.6, 78.2, 96.8, 89.4),
        "Luvizon, Tabia & Picard 2017, Table 4 (person-centric annotations)",
        "luvizon2017/table4",
    ),
)
"""Published results of the reproduced papers: the one place their numbers are written
(recipes' ``.paper.yaml`` sidecars cite them by ``id``). LSP rows are on the
person-centric annotations (LSP's own ``joints.mat``); MPII rows say which split they are on."""

PAPERS: tuple[str, ...] = tuple(dict.fromkeys(r.key for r in PUBLISHED))


def published(row_id: str) -> Reference:
    """The published row with this ``id``; an unknown one is a ``KeyError`` with close ids."""
    rows = {r.id: r for r in PUBLISHED}
    if row_id not in rows:
        close = difflib.get_close_matches(row_id, rows, n=3, cutoff=0.5)
        raise KeyError(f"no published row {row_id!r} in poselit.tables.PUBLISHED" + (f"; close: {', '.join(close)}" if close else ""))
    return rows[row_id]


def published_rows(keys: Iterable[str], dataset: str, metric: str) -> list[Row]:
    """The headline rows of the papers named by ``keys`` for a dataset name (``mpii``,
    ``lsp``) and metric."""
    keys = list(keys)
    unknown = sorted(set(keys) - set(PAPERS))
    if unknown:
        raise KeyError(f"no published results for {', '.join(unknown)} (known: {', '.join(PAPERS)})")
    return [
        r.row()
        for r in PUBLISHED
        if r.headline and r.key in keys and r.dataset.split(":")[0] == dataset and r.metric == metric
    ]


__all__ = [
    "PAPERS",
    "PUBLISHED",
    "TABLE_COLUMNS",
    "Reference",
    "Row",
    "Table",
    "metric_table",
    "per_item_table",
    "published",
    "published_rows",
]
