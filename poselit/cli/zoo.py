"""``poselit zoo list | info | download | export | publish | table | compare`` (:mod:`poselit.zoo`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from poselit.data.sources import default_data_root


def add_zoo_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``poselit zoo list|info|download|export|publish|table|compare`` to an argparse sub-parser set."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--zoo-dir", help="card folder (default: $POSELIT_ZOO, else the built-in zoo)")
    parser = subparsers.add_parser(
        "zoo", help="model zoo: list, info, download, export (safetensors, ONNX), publish, table, compare"
    )
    commands = parser.add_subparsers(dest="zoo_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser("list", parents=[common], help="list the zoo's models")
    listing.add_argument("pattern", nargs="?", help="shell pattern, e.g. 'luvizon-*'")
    listing.set_defaults(func=run_list)

    show = commands.add_parser("info", parents=[common], help="print a model card")
    show.add_argument("name")
    show.set_defaults(func=run_info)

    fetch = commands.add_parser(
        "download", parents=[common], help="fetch and verify a model's weights (Hugging Face cache)"
    )
    fetch.add_argument("name", help="zoo name or hf://ORG/NAME[@REVISION]")
    fetch.add_argument("--revision", help="Hub branch, tag or commit instead of the pinned one")
    fetch.add_argument("--cache-dir", help="Hugging Face cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub)")
    fetch.add_argument("--force", action="store_true", help="download again (replaces a corrupt cached file)")
    fetch.set_defaults(func=run_download)

    export = commands.add_parser(
        "export", parents=[common],
        help="Lightning checkpoint -> Hub-ready folder + zoo card; zoo model -> ONNX file",
        description="From a Lightning checkpoint: write model.safetensors, config.json, README.md (Hub model card) "
        "and recipe.yaml into --out (--format onnx: model.onnx too), and write or update the zoo card --name. "
        "From a zoo model (zoo name, hf://ORG/NAME[@REVISION] or export folder) with --format onnx: write its "
        "ONNX file (--out: a .onnx file or a folder, default runs/export/NAME/model.onnx), which "
        "'poselit predict --model FILE_OR_FOLDER' runs with ONNX Runtime.",
    )
    export.add_argument(
        "source", metavar="CKPT_OR_MODEL",
        help="Lightning .ckpt (read with weights_only=True), or with --format onnx a zoo name, "
        "hf://ORG/NAME[@REVISION] or export folder",
    )
    checkpoint_only = [
        export.add_argument("--name", help="zoo name, <method>-<backbone>-<dataset>[-<variant>] (checkpoints: required)")
    ]
    export.add_argument(
        "--out", help="export folder (checkpoints: required); for a zoo model a .onnx file or a folder "
        "(default runs/export/NAME)"
    )
    export.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                        help="onnx: write model.onnx, the whole prediction graph for ONNX Runtime "
                             "(poselit.onnx)")
    export.add_argument("--int8", action="store_true",
                        help="with --format onnx: convolutions quantized to int8, calibrated on training crops "
                             "(poselit.onnx.quantize)")
    export.add_argument("--calibrate", nargs="+", metavar="DATASET",
                        help="training splits whose people calibrate --int8, never test splits "
                             "(default: the card's training data)")
    export.add_argument("--crops", type=int, default=256, help="calibration crops of --int8 (default: 256)")
    export.add_argument("--root", help="data root of --evaluate and --calibrate (default: $POSELIT_DATA)")
    from_checkpoint = export.add_argument_group("checkpoints only")

    def only(*names: str, **options: Any) -> None:
        """An option of checkpoint exports, remembered: a zoo model's export refuses it."""
        checkpoint_only.append(from_checkpoint.add_argument(*names, **options))

    only("--class-path", help="module class, when the checkpoint was not saved by 'poselit fit'")
    only("--fp16", action="store_true", help="store float tensors as fp16")
    only(
        "--recipe", help="training configuration to include (default: the run's, stored in the checkpoint by "
        "'poselit fit', else its config.yaml)"
    )
    only(
        "--average", nargs="+", default=[], metavar="CKPT",
        help="other checkpoints of the same run: export the mean of their weights and CKPT's (weight averaging, "
        "as SWA); CKPT gives the rest. Choose the set on held-out people, not on test data",
    )
    only(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="change a constructor argument that leaves the weights as they are, e.g. refine=dark (a decoding "
        "chosen on held-out people after training); VALUE is read as YAML; repeatable",
    )
    only("--evaluate", action="append", default=[], metavar="DATASET", help="measure on a split, e.g. lsp:test; repeatable")
    only("--batch-size", type=int, default=16, help="batch size of --evaluate")
    only("--metrics", action="append", default=[], metavar="JSON",
         help="results measured already ('poselit eval --json'); repeatable")
    only("--training-data", nargs="+", metavar="DATASET", help="training datasets (default: the checkpoint's)")
    only("--description", default="", help="one paragraph for the card")
    only("--license", help="licence of the weights, e.g. bsd-3-clause")
    only("--citation", help="BibTeX to cite, or a file holding it")
    only("--repo-id", help="Hub repository it will be published to (ORG/NAME)")
    only(
        "--ship", action="store_true",
        help="copy the weights next to the card (shipped in the package); needs --evaluate or --metrics",
    )
    only("--no-card", action="store_true", help="write the folder only, not the zoo card")
    export.set_defaults(
        func=run_export, checkpoint_only=[(a.option_strings[0], a.dest, a.default) for a in checkpoint_only]
    )

    upload = commands.add_parser(
        "publish", parents=[common], help="upload an export folder to the Hub, pin the commit in the card"
    )
    upload.add_argument("folder", help="folder written by 'poselit zoo export'")
    upload.add_argument("--repo-id", help="ORG/NAME (default: the card's weights.hub.repo_id)")
    upload.add_argument("--private", action="store_true", help="create the repository as private")
    upload.add_argument("--message", help="commit message")
    upload.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    upload.set_defaults(func=run_publish)

    table = commands.add_parser("table", parents=[common], help="regenerate the zoo's README.md table from the cards")
    table.add_argument("--check", action="store_true", help="only check; exit 1 when the table is stale")
    table.set_defaults(func=run_table)

    compare = commands.add_parser(
        "compare", parents=[common], help="Markdown table: models' results on a split beside the papers'",
        description="Print the zoo models measured on a split (parameters, GFLOPs, CPU ms, per-part results) "
        "beside the papers' published rows: the README's results table.",
    )
    compare.add_argument("names", nargs="*", help="zoo names or shell patterns (default: every model)")
    compare.add_argument("--dataset", default="lsp:test", help="split to compare on (default: lsp:test)")
    compare.set_defaults(func=run_compare)
    return parser


def run_list(args: argparse.Namespace) -> int:
    """``poselit zoo list``: one row per card."""
    from poselit.zoo.catalog import folder_label, info, list_models
    from poselit.zoo.listing import TABLE_COLUMNS, summary_row, text_table

    cards = [info(name, zoo_dir=args.zoo_dir) for name in list_models(args.pattern, zoo_dir=args.zoo_dir)]
    if not cards:
        print(f"no models in {folder_label(args.zoo_dir)}" + (f" matching {args.pattern!r}" if args.pattern else ""))
        return 0
    print(text_table([TABLE_COLUMNS, *(summary_row(c) for c in cards)]))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """``poselit zoo compare``: the models' results on a split beside the papers' rows."""
    from poselit.zoo.catalog import info, list_models
    from poselit.zoo.listing import comparison_table

    names = list(dict.fromkeys(n for p in args.names or [None] for n in list_models(p, zoo_dir=args.zoo_dir)))
    if args.names and not names:
        raise ValueError(f"no zoo model matches {' '.join(args.names)}")
    print(comparison_table([info(n, zoo_dir=args.zoo_dir) for n in names], args.dataset), end="")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``poselit zoo info``: the card as YAML."""
    from poselit.zoo.cards import dump_card
    from poselit.zoo.catalog import info

    card = info(args.name, zoo_dir=args.zoo_dir)
    print(f"# {card.source}")
    print(dump_card(card), end="")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """``poselit zoo download``: fetch and verify the weights, print where they are."""
    from poselit.zoo.hub import download

    card, path = download(
        args.name, revision=args.revision, cache_dir=args.cache_dir, force=args.force, zoo_dir=args.zoo_dir
    )
    print(f"{card.name}: {path} (sha256 {card.weights.sha256} verified)")
    return 0


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
"""What ``poselit zoo export`` takes for a checkpoint path even when no such file exists
(to say it is missing); any other source that is not a file is a zoo model."""


def run_export(args: argparse.Namespace) -> int:
    """``poselit zoo export``: a checkpoint's export folder (and card), or a zoo model's ONNX
    file; print what was written."""
    if (args.int8 or args.calibrate) and args.format != "onnx":
        raise ValueError("--int8 and --calibrate are for ONNX files: add --format onnx")
    if args.calibrate and not args.int8:
        raise ValueError("--calibrate is for --int8 (the crops an int8 file is calibrated on)")
    source = Path(args.source)
    if source.is_file() or source.suffix.lower() in CHECKPOINT_SUFFIXES:
        return _export_checkpoint(args)
    return _export_model_onnx(args)


def _export_model_onnx(args: argparse.Namespace) -> int:
    """``poselit zoo export NAME --format onnx``: a zoo model (name, ``hf://`` or export folder)
    as an ONNX file."""
    from poselit.zoo.cards import HF_SCHEME, ZooError
    from poselit.zoo.catalog import info

    source = args.source
    if not (source.startswith(HF_SCHEME) or Path(source).is_dir()):
        try:
            info(source, zoo_dir=args.zoo_dir)
        except ZooError as err:
            raise ZooError(f"no checkpoint file {source}, and {err}") from None
    if args.format != "onnx":
        raise ValueError(
            f"{source} is a zoo model, exported already (its weights: 'poselit zoo download {source}'); "
            "add --format onnx to write its ONNX file, or give a Lightning checkpoint"
        )
    given = [option for option, dest, default in args.checkpoint_only if getattr(args, dest) != default]
    if given:
        raise ValueError(f"{', '.join(given)}: for checkpoints only; {source} is a zoo model, whose card says it all")
    from poselit.onnx import export_zoo_onnx

    card, path = export_zoo_onnx(
        source, args.out, zoo_dir=args.zoo_dir, int8=args.int8, calibrate=args.calibrate, crops=args.crops,
        data_root=args.root or default_data_root(),
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {card.name} for ONNX Runtime")
    print(f"run it: poselit predict IMAGES --model {path}")
    return 0


def _export_checkpoint(args: argparse.Namespace) -> int:
    """``poselit zoo export CKPT --name NAME --out DIR``: the export folder and the zoo card."""
    missing = [option for option, value in (("--name NAME", args.name), ("--out DIR", args.out)) if not value]
    if missing:
        raise ValueError(f"exporting the checkpoint {args.source} needs {' and '.join(missing)}")
    from poselit.evaluate import EvaluationReport
    from poselit.zoo.cards import README_FILE, RECIPE_FILE
    from poselit.zoo.export import export_checkpoint, missing_recipe_message
    from poselit.zoo.publishing import folder_files, metrics_tables

    citation = args.citation
    if citation and Path(citation).is_file():
        citation = Path(citation).read_text()
    card = export_checkpoint(
        args.source,
        args.name,
        args.out,
        class_path=args.class_path,
        half=args.fp16,
        recipe=args.recipe,
        evaluate=args.evaluate,
        data_root=args.root or default_data_root(),
        reports=[EvaluationReport.load(path) for path in args.metrics],
        training_data=args.training_data,
        description=args.description,
        license=args.license,
        citation=citation,
        repo_id=args.repo_id,
        zoo_dir=args.zoo_dir,
        update_zoo=not args.no_card,
        ship=args.ship,
        batch_size=args.batch_size,
        average=args.average,
        set_args=dict(map(parse_assignment, args.set)),
    )
    if args.format == "onnx":
        from poselit.onnx import export_zoo_onnx

        export_zoo_onnx(
            args.out, args.out, int8=args.int8, calibrate=args.calibrate, crops=args.crops,
            data_root=args.root or default_data_root(),
        )
    print(f"wrote {args.out}: {', '.join(folder_files(Path(args.out)))}")
    if (Path(args.out) / RECIPE_FILE).is_file():
        print(f"{RECIPE_FILE}: the run's configuration ({card.training.get('recipe') or 'from the checkpoint'})")
    else:
        print(f"poselit: {missing_recipe_message(Path(args.source))}", file=sys.stderr)
    for table in metrics_tables(card):
        print(table.to_text(digits=2))
    if not args.no_card:
        print(f"wrote zoo card {card.source} and {card.source.parent / README_FILE}")  # type: ignore[union-attr]
    return 0


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``, the value read as YAML.

    >>> parse_assignment("refine=dark"), parse_assignment("flip_test=false")
    (('refine', 'dark'), ('flip_test', False))
    """
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {text}: expected KEY=VALUE, e.g. refine=dark")
    return key.strip(), yaml.safe_load(value)


def run_publish(args: argparse.Namespace) -> int:
    """``poselit zoo publish``: upload (or list, with ``--dry-run``) and say where."""
    from poselit.zoo.publishing import publish

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
    """``poselit zoo table``: regenerate (or ``--check``) the zoo's README.md table."""
    from poselit.zoo.cards import README_FILE
    from poselit.zoo.catalog import zoo_folder
    from poselit.zoo.listing import table_is_current, write_table

    if args.check:
        current = table_is_current(args.zoo_dir)
        state = "up to date" if current else "stale: run 'poselit zoo table'"
        print(f"{zoo_folder(args.zoo_dir) / README_FILE} is {state}")
        return 0 if current else 1
    print(f"wrote {write_table(args.zoo_dir)}")
    return 0
