"""The arguments of every ``poselit`` command, built without importing anything heavy.

``poselit --help``, every subcommand's ``--help`` and argument errors answer at once:
this module imports only the standard library and poselit's light modules (no torch,
Lightning or OpenCV). Each command's handler is named as ``"module:function"``
(:func:`handler`) and imported when the command runs. LightningCLI's own subcommands
(``fit``, ``validate``, ``test``, ``predict -c``) build their parser from the method
classes, so their ``--help`` imports them.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable, Sequence

from poselit.data.records import DEFAULT_PADDING

DEMO_MODEL = "luvizon-tiny-lsp-demo"
"""The zoo model ``poselit demo`` runs by default."""


def handler(target: str) -> Callable[[argparse.Namespace], int]:
    """The handler ``"module:function"``, imported on its first call (not when parsers are built)."""
    module_name, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module_name), name)(args)

    run.__qualname__ = run.__name__ = target
    return run


def add_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``poselit eval`` to an ``argparse`` sub-parser set; the handler is
    :func:`poselit.evaluate.run_eval`."""
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
    parser.set_defaults(func=handler("poselit.evaluate:run_eval"))
    return parser


def add_zoo_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``poselit zoo list|info|download|export|publish|table`` to an argparse sub-parser set."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--zoo-dir", help="card folder (default: $POSELIT_ZOO, else the built-in zoo)")
    parser = subparsers.add_parser("zoo", help="model zoo: list, inspect, download, export and publish checkpoints")
    commands = parser.add_subparsers(dest="zoo_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser("list", parents=[common], help="list the zoo's models")
    listing.add_argument("pattern", nargs="?", help="shell pattern, e.g. 'luvizon-*'")
    listing.set_defaults(func=handler("poselit.zoo:run_list"))

    show = commands.add_parser("info", parents=[common], help="print a model card")
    show.add_argument("name")
    show.set_defaults(func=handler("poselit.zoo:run_info"))

    fetch = commands.add_parser(
        "download", parents=[common], help="fetch and verify a model's weights (Hugging Face cache)"
    )
    fetch.add_argument("name", help="zoo name or hf://ORG/NAME[@REVISION]")
    fetch.add_argument("--revision", help="Hub branch, tag or commit instead of the pinned one")
    fetch.add_argument("--cache-dir", help="Hugging Face cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub)")
    fetch.add_argument("--force", action="store_true", help="download again (replaces a corrupt cached file)")
    fetch.set_defaults(func=handler("poselit.zoo:run_download"))

    export = commands.add_parser(
        "export", parents=[common], help="Lightning checkpoint -> Hub-ready folder + zoo card",
        description="Write model.safetensors, config.json, README.md (Hub model card) and recipe.yaml, "
        "and write or update the zoo card NAME.yaml.",
    )
    export.add_argument("checkpoint", help="Lightning .ckpt (read with weights_only=True)")
    export.add_argument("--name", required=True, help="zoo name, <method>-<backbone>-<dataset>[-<variant>]")
    export.add_argument("--out", required=True, help="export folder")
    export.add_argument("--class-path", help="module class, when the checkpoint was not saved by 'poselit fit'")
    export.add_argument("--fp16", action="store_true", help="store float tensors as fp16")
    export.add_argument("--recipe", help="training configuration to include (default: the run's, stored in the checkpoint by 'poselit fit', "
                        "else its config.yaml)")
    export.add_argument("--evaluate", action="append", default=[], metavar="DATASET",
                        help="measure on a split, e.g. lsp:test (repeatable)")
    export.add_argument("--root", help="data root for --evaluate (default: $POSELIT_DATA)")
    export.add_argument("--batch-size", type=int, default=16, help="batch size of --evaluate")
    export.add_argument("--metrics", action="append", default=[], metavar="JSON",
                        help="results measured already ('poselit eval --json'); repeatable")
    export.add_argument(
        "--training-data", nargs="+", metavar="DATASET", help="training datasets (default: the checkpoint's)"
    )
    export.add_argument("--description", default="", help="one paragraph for the card")
    export.add_argument("--license", help="licence of the weights, e.g. bsd-3-clause")
    export.add_argument("--citation", help="BibTeX to cite, or a file holding it")
    export.add_argument("--repo-id", help="Hub repository it will be published to (ORG/NAME)")
    export.add_argument(
        "--ship", action="store_true", help="copy the weights next to the card (shipped in the package)"
    )
    export.add_argument("--no-card", action="store_true", help="write the folder only, not the zoo card")
    export.set_defaults(func=handler("poselit.zoo:run_export"))

    upload = commands.add_parser(
        "publish", parents=[common], help="upload an export folder to the Hub, pin the commit in the card"
    )
    upload.add_argument("folder", help="folder written by 'poselit zoo export'")
    upload.add_argument("--repo-id", help="ORG/NAME (default: the card's weights.hub.repo_id)")
    upload.add_argument("--private", action="store_true", help="create the repository as private")
    upload.add_argument("--message", help="commit message")
    upload.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    upload.set_defaults(func=handler("poselit.zoo:run_publish"))

    table = commands.add_parser("table", parents=[common], help="regenerate the zoo's README.md table from the cards")
    table.add_argument("--check", action="store_true", help="only check; exit 1 when the table is stale")
    table.set_defaults(func=handler("poselit.zoo:run_table"))
    return parser


LIGHTNING_FLAGS = ("--config", "--print_config", "--seed_everything", "--ckpt_path", "--return_predictions")
LIGHTNING_PREFIXES = ("--trainer", "--data", "--model.", "--optimizer", "--lr_scheduler")


def is_lightning_predict(args: Sequence[str]) -> bool:
    """Whether ``poselit predict`` arguments are LightningCLI's (predict on a dataset from a
    recipe) rather than the image predictor's.

    LightningCLI's: ``-c`` / ``--config``, ``--print_config``, and its other flags such as
    ``--trainer.*``, ``--data.*``, ``--model.*``. ``--model NAME`` is the image predictor's.
    """
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in LIGHTNING_FLAGS or flag.startswith(LIGHTNING_PREFIXES) or flag.startswith("-c"):  # -c, -cFILE
            return True
    return False


def add_predict_commands(subparsers: Any) -> None:
    """Add ``poselit predict`` (images) and ``poselit demo`` to an ``argparse`` sub-parser set."""
    predict = subparsers.add_parser(
        "predict",
        help="poses in your images (with -c RECIPE.yaml: LightningCLI predict on a dataset)",
        description=(
            "Predict poses in images with a zoo model or an exported model, and write one JSON per "
            "image and the annotated images. Schema and --boxes format: python -m pydoc poselit.predict. "
            "With -c RECIPE.yaml (or --config / --print_config / --trainer... / --data... arguments) "
            "'poselit predict' is LightningCLI's predict on a dataset instead: "
            "see 'poselit predict -c RECIPE.yaml --help'."
        ),
    )
    predict.add_argument("images", nargs="+", metavar="IMAGES_OR_FOLDER", help="image files and/or folders")
    predict.add_argument("--model", required=True, help="zoo model name, export folder or hf://owner/repo")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--boxes", metavar="FILE", help="JSON: image name -> person box(es); default: whole image")
    predict.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="of 4-number boxes")
    predict.add_argument("--jsonl", action="store_true", help="write predictions.jsonl instead of one JSON per image")
    predict.add_argument(
        "--padding", type=float,
        help=f"margin around a box (default: the model card's input.padding, as in training; else {DEFAULT_PADDING})",
    )
    predict.add_argument("--fill", type=int, default=0, help="value of crop pixels outside the image, as in training")
    _add_run_options(predict)
    predict.set_defaults(func=handler("poselit.predict:run_predict"))

    demo = subparsers.add_parser(
        "demo",
        help="run a zoo model on the bundled sample images and write the annotated results",
        description="Predict poses in the bundled sample images (poselit/assets/samples; origins in SOURCES.md there).",
    )
    demo.add_argument("--model", default=DEMO_MODEL, help=f"zoo model name or export folder (default: {DEMO_MODEL})")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    _add_run_options(demo)
    demo.set_defaults(func=handler("poselit.predict:run_demo"), padding=None, fill=0, box_format="xywh", jsonl=False)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=16, help="people per forward pass")
    parser.add_argument("--no-flip", action="store_true", help="no flip test")
    parser.add_argument("--autocast", action="store_true", help="mixed precision (bfloat16 on CPU, float16 on GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_reproduce_command(commands: Any) -> None:
    """Add ``poselit reproduce`` (handler :func:`poselit.reproduce.run_reproduce`)."""
    from poselit import reproduce  # its docstring is the help; it imports yaml, not torch

    parser = commands.add_parser(
        "reproduce",
        help="test a checkpoint with a recipe and print our row beside the paper's",
        description=reproduce.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="a recipe YAML with a <recipe>.paper.yaml sidecar")
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint trained with the recipe")
    parser.add_argument("--json", help="also write the tables to this JSON file")
    parser.set_defaults(func=handler("poselit.reproduce:run_reproduce"), overrides=[])  # LightningCLI arguments after '--'
    parser.epilog = "LightningCLI arguments may follow '--', e.g. -- --data.num_workers=2 --trainer.devices=1"


__all__ = [
    "DEMO_MODEL",
    "add_eval_command",
    "add_predict_commands",
    "add_reproduce_command",
    "add_zoo_command",
    "handler",
    "is_lightning_predict",
]
