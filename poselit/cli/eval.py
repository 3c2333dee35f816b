"""``poselit eval``: score a predictions file against a dataset split (:mod:`poselit.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poselit.data.sources import default_data_root

if TYPE_CHECKING:
    from poselit.evaluate import EvaluationReport


def add_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``poselit eval`` to an ``argparse`` sub-parser set."""
    parser = subparsers.add_parser(
        "eval",
        help="score a predictions file against a dataset split (PCKh/PCK, AUC, PCP, visibility AP, COCO OKS AP)",
        description=(
            "Score a predictions JSON against a dataset split and print the papers' tables. "
            "Schema: see poselit.evaluate (python -m pydoc poselit.evaluate)."
        ),
    )
    parser.add_argument(
        "predictions", help="predictions JSON file, or what 'poselit predict' wrote (its --out folder, or predictions.jsonl)"
    )
    parser.add_argument(
        "--dataset", help="NAME[:SPLIT][@PATH], e.g. mpii:valid (default: the file's 'dataset')"
    )
    parser.add_argument("--root", help="data root folder (default: $POSELIT_DATA)")
    parser.add_argument("--threshold", type=float, help="PCK threshold (default: 0.5 for PCKh, 0.2 for PCK)")
    parser.add_argument(
        "--sigmas", type=float, nargs="+", metavar="SIGMA",
        help="per-joint OKS sigmas of COCO-format data, one per joint in the dataset's order (default: the "
        "category's 'sigmas', COCO's for COCO's 17 joints, else poselit.skeletons.DEFAULT_OKS_SIGMA)",
    )
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="PAPER|FILE",
        help="reference rows: a paper's published results (its key, e.g. bulat2016; see poselit.tables.PAPERS) "
        "or a --json file; repeatable",
    )
    parser.add_argument("--label", help="row label (default: the file's 'label', else its name)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="table format")
    parser.add_argument("--per-joint", action="store_true", help="also print per-joint (per-stick) tables")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction,
        help="progress bar while scoring (default: for 100 people and more, on a terminal)",
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="draw the PCK curve (with those of --reference result files) to this image"
    )
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``poselit eval``: print the tables, write ``--json`` and ``--plot``; returns 0.

    Bad input raises :class:`PredictionError` / ``ValueError`` / ``FileNotFoundError``
    with a message naming the file and record, for the CLI to print.
    """
    from poselit.atomic import make_folder, write_atomic
    from poselit.evaluate import EvaluationReport, evaluate_predictions

    report = evaluate_predictions(
        args.predictions,
        args.dataset,
        args.root or default_data_root(),
        threshold=args.threshold,
        sigmas=args.sigmas,
        label=args.label,
        progress=args.progress,
    )
    references = [_reference(r) for r in args.reference]
    tables = report.tables(references, per_item=args.per_joint)
    print("\n\n".join(t.to_markdown() if args.format == "markdown" else t.to_text() for t in tables))
    if args.json:
        path = Path(args.json)
        make_folder(path.parent)
        write_atomic(path, json.dumps({**report.to_dict(), "tables": [t.to_dict() for t in tables]}, indent=2))
        print(f"\nwrote {path}")
    if args.plot:
        from poselit.visualize import plot_pck_curve, save_image

        others = [r for r in references if isinstance(r, EvaluationReport)]
        print(f"wrote {save_image(plot_pck_curve([report, *others], title=report.dataset), args.plot)}")
    return 0


def _reference(value: str) -> str | EvaluationReport:
    """A paper key, or the report in a JSON file written by ``--json``."""
    from poselit.evaluate import EvaluationReport
    from poselit.tables import PAPERS

    if value in PAPERS:
        return value
    if Path(value).is_file():
        return EvaluationReport.load(value)
    raise ValueError(f"--reference {value!r}: neither a paper ({', '.join(PAPERS)}) nor a results file")
