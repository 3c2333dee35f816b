"""The ``poselit`` command.

``poselit data show``   grid of augmented training samples + JSON dataset summary
``poselit data synth``  write a small generated dataset in the LSP layout
``poselit backbone import``  ImageNet weights of another library -> timm safetensors
``poselit eval``        score a predictions file against a dataset split (paper tables)
``poselit zoo``         model zoo: list, info, download, export (also to ONNX), publish, table, compare
``poselit reproduce``   test a checkpoint with a recipe, our row beside the paper's
``poselit predict``     poses in your images, videos and folders (zoo or ONNX model): JSON + annotated images
``poselit demo``        a zoo model on the bundled sample images
``poselit fit | validate | test -c RECIPE.yaml``  LightningCLI (train, validate, test)
``poselit predict-recipe -c RECIPE.yaml``         LightningCLI's predict (the recipe's data)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Iterator, Sequence

from poselit import __version__
from poselit.cli.backbone import add_backbone_command
from poselit.cli.data import add_data_command
from poselit.cli.eval import add_eval_command
from poselit.cli.predict import add_predict_commands
from poselit.cli.reproduce import add_reproduce_command
from poselit.cli.zoo import add_zoo_command
from poselit.extras import MissingDependencyError

# Nothing heavy at the top of any module of this package: parsing arguments, --help and
# argument errors must not wait for torch or Lightning (tests/test_cli.py checks it).
# Handlers import what they use; LightningCLI's commands import poselit.cli.lightning.

LIGHTNING_COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("fit", "train a method"),
    "validate": ("validate", "validate a checkpoint"),
    "test": ("test", "test a checkpoint and print the paper tables"),
    "predict-recipe": ("predict", "predict on the recipe's test datasets ('poselit predict' is for images)"),
}
"""The commands LightningCLI parses: ``poselit`` name -> (LightningCLI subcommand, help).
LightningCLI's ``predict`` is ``poselit predict-recipe``: ``poselit predict`` predicts on images."""

USER_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError, MissingDependencyError)
"""Errors that mean bad input or a missing optional dependency: reported in one line,
without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command but LightningCLI's, which are listed for ``--help`` only."""
    parser = argparse.ArgumentParser(prog="poselit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"poselit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (subcommand, summary) in LIGHTNING_COMMANDS.items():
        commands.add_parser(
            name, help=f"{summary}: LightningCLI {subcommand} -c RECIPE.yaml (see 'poselit {name} --help')", add_help=False
        )
    add_data_command(commands)
    add_backbone_command(commands)
    add_eval_command(commands)
    add_zoo_command(commands)
    add_predict_commands(commands)
    add_reproduce_command(commands)
    return plain_help(parser)


def plain_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with reStructuredText's double backticks taken out of its description and
    help texts and those of its subcommands, all the way down: some are docstrings, and
    a terminal shows ``x`` literally. Returns ``parser``."""
    parser.description = _plain(parser.description)
    for action in parser._actions:
        action.help = _plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = _plain(choice.help)
            for subparser in action.choices.values():
                plain_help(subparser)
    return parser


def _plain(text: str | None) -> str | None:
    return text.replace("``", "") if isinstance(text, str) else text


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; what follows ``--`` goes to ``args.overrides`` for the commands that
    take LightningCLI arguments (those whose defaults set ``overrides``)."""
    ours, dashes, theirs = argv, [], []
    if "--" in argv:
        cut = argv.index("--")
        ours, dashes, theirs = argv[:cut], ["--"], argv[cut + 1 :]
    args = parser.parse_args(ours)
    if dashes and not isinstance(getattr(args, "overrides", None), list):
        parser.error(f"unrecognized arguments: {' '.join(dashes + theirs)}")
    if dashes:
        args.overrides = theirs
    return args


PACKAGE = Path(__file__).resolve().parents[1]
"""The ``poselit`` package folder: a warning issued from a file under it is poselit's own."""


def is_poselits(category: type[Warning], filename: str) -> bool:
    """Whether a warning is poselit's own: a warning class of poselit's, or issued (as
    ``stacklevel`` attributes it) from a file of the package."""
    return category.__module__.split(".")[0] == "poselit" or Path(filename).resolve().is_relative_to(PACKAGE)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Inside the block, poselit's own warnings (:func:`is_poselits`) are printed as one
    line, ``poselit: warning: MESSAGE``, without the source line Python adds; other
    warnings keep the format in force (Lightning's, Python's). The formatter in force
    before is restored after the block: a Python program that imports poselit keeps its own.

    >>> with one_line_warnings():
    ...     print(warnings.formatwarning("no box", UserWarning, str(PACKAGE / "predict.py"), 9), end="")
    poselit: warning: no box
    """
    previous = warnings.formatwarning

    def format_warning(
        message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
    ) -> str:
        if is_poselits(category, filename):
            return f"poselit: warning: {message}\n"
        return previous(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``poselit`` console command; returns the exit code. poselit's own
    warnings are one line each (:func:`one_line_warnings`)."""
    with one_line_warnings():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from poselit.cli.lightning import RecipeError, run_lightning

        try:
            run_lightning([LIGHTNING_COMMANDS[argv[0]][0], *argv[1:]], command=argv)
        except RecipeError as err:  # a bad recipe, input file or image; other errors keep their traceback
            print(f"poselit: error: {err}", file=sys.stderr)
            return 2
        return 0
    args = parse_args(build_parser(), argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"poselit: error: {err}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
