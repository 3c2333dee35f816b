"""``poselit reproduce RECIPE --ckpt CKPT``: test a checkpoint with a recipe and print our
row beside the paper's (the recipe's ``<recipe>.paper.yaml`` sidecar, :mod:`poselit.reproduce`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from poselit import reproduce as sidecars
from poselit.reproduce import read_paper_row

if TYPE_CHECKING:
    from poselit.tables import Table


def add_reproduce_command(commands: Any) -> None:
    """Add ``poselit reproduce`` to an ``argparse`` sub-parser set."""
    parser = commands.add_parser(
        "reproduce",
        help="test a checkpoint with a recipe and print our row beside the paper's",
        description=sidecars.__doc__,  # the sidecar format; the module imports yaml, not torch
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="a recipe YAML with a <recipe>.paper.yaml sidecar")
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint trained with the recipe")
    parser.add_argument("--json", help="also write the tables to this JSON file")
    parser.set_defaults(func=run_reproduce, overrides=[])  # LightningCLI arguments after '--'
    parser.epilog = "LightningCLI arguments may follow '--', e.g. -- --data.num_workers=2 --trainer.devices=1"


def reproduce(recipe: str | Path, ckpt: str | Path, overrides: Sequence[str] = ()) -> list[Table]:
    """Test ``ckpt`` with ``recipe`` on the datasets of its published row (the recipe's
    test / validation sets when the row has no numbers); the tables (ours, then the
    paper's row) are printed and returned.

    ``overrides`` are LightningCLI arguments applied last (e.g. ``--data.data_root=...``).
    """
    from poselit.cli.lightning import run_lightning

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
    from poselit.atomic import write_atomic

    tables = reproduce(args.recipe, args.ckpt, args.overrides)
    if args.json:
        write_atomic(args.json, json.dumps([t.to_dict() for t in tables], indent=2))
        print(f"wrote {args.json}")
    return 0
