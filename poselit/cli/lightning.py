"""``poselit fit | validate | test | predict-recipe``: LightningCLI over every method and the DataModule.

A recipe YAML names the method with ``model.class_path`` (any :class:`PoseLitModule`
subclass, e.g. ``poselit.models.belagiannis.BelagiannisRecurrent`` or just
``BelagiannisRecurrent``: every method of the registry, :mod:`poselit.models`, is
imported) and configures ``data`` (:class:`PoseDataModule`) and ``trainer``. The crops'
description is stated once, in ``data``, and linked into the model, which owns it from
then on (checkpoints and cards record it, ``Predictor`` crops with it): the input size,
the crop ``padding`` and ``fill``, and the skeleton (so the joint count always matches
the dataset).

``poselit test`` prints the paper-style tables of each test dataset after testing.
``poselit predict-recipe`` is LightningCLI's ``predict`` (the recipe's test datasets);
``poselit predict`` is the image predictor (:mod:`poselit.cli.predict`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import netrc
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from jsonargparse import DefaultHelpFormatter, Namespace
import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.trainer.states import TrainerFn

from poselit.checkpoints import CONFIG_KEY, check_checkpoint, check_weights
from poselit.data.datamodule import PoseDataModule
from poselit.data.dataset import ImageReadError
from poselit.evaluate import test_reports
from poselit.models import import_methods
from poselit.models.base import PoseLitModule
from poselit.models.pretrained import weights_file
from poselit.tables import Reference, Table


class RecipeError(ValueError):
    """A recipe or its command line cannot run as given: raised before anything runs, or
    when a run meets an image it cannot read (:func:`image_errors_in_one_line`)."""


QUIET_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # pytorch_lightning's own pytree helper on recent torch: for Lightning to fix
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # Lightning on a small data set: logging then happens once per epoch, as it should
    (UserWarning, r"The number of training batches \(\d+\) is smaller than the logging interval"),
)
"""Third-party warnings that ``poselit fit | validate | test | predict-recipe`` drop
(category, regular expression matching the message's start): they tell a poselit user
nothing to act on."""

QUIET_LOG_MESSAGES: tuple[str, ...] = ("💡 Tip: For seamless cloud logging",)
"""Starts of Lightning's log messages that the same commands drop (an advertisement for
another logging service, printed on every run)."""

LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")
"""The loggers Lightning's ``rank_zero_info`` writes through."""


def drop_quiet_messages(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop) for a record starting with one of :data:`QUIET_LOG_MESSAGES`."""
    return not str(record.msg).startswith(QUIET_LOG_MESSAGES)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Inside the block, the warnings of :data:`QUIET_WARNINGS` and the log messages of
    :data:`QUIET_LOG_MESSAGES` are dropped; the warning filters and the loggers are as
    before after it, so that only poselit's commands are quieter, never a Python program
    that uses Lightning beside poselit. Every other warning and message is shown."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    with warnings.catch_warnings():
        for category, pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", pattern, category)
        for logger in loggers:
            logger.addFilter(drop_quiet_messages)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(drop_quiet_messages)


def wandb_disabled() -> bool:
    """True when Weights & Biases is switched off: ``WANDB_MODE=disabled``."""
    return os.environ.get("WANDB_MODE", "").lower() == "disabled"


def check_wandb_installed(logger: Any, recipes: Sequence[Any]) -> None:
    """Stop when a ``trainer.logger`` config names ``WandbLogger`` but wandb, an optional
    dependency (the ``train`` extra), is not installed, naming the ``recipes`` (the ``-c``
    files) and the fixes."""
    if not wandb_loggers(logger) or importlib.util.find_spec("wandb") is not None:
        return
    where = f"{', '.join(str(recipe) for recipe in recipes)}: " if recipes else ""
    raise RecipeError(
        f"{where}trainer.logger WandbLogger needs wandb, which is not installed: "
        'pip install -e ".[train]" (or remove the logger, or set WANDB_MODE=disabled to log to CSV)'
    )


WANDB_HOST = "https://api.wandb.ai"
"""The W&B server whose key ``wandb login`` stores, unless ``WANDB_BASE_URL`` names another."""


def wandb_api_key_configured() -> bool:
    """True when W&B has an API key without asking for one: ``WANDB_API_KEY`` (or
    ``WANDB_IDENTITY_TOKEN_FILE``), or an entry for the W&B host in the netrc file that
    ``wandb login`` writes (``$NETRC``, else ``~/.netrc``, else ``~/_netrc``)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or WANDB_HOST).netloc
    candidates = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for candidate in candidates:
        try:
            entry = netrc.netrc(Path(candidate).expanduser()).authenticators(host)
        except (OSError, netrc.NetrcParseError):  # no file, or one wandb could not read either
            continue
        if entry and entry[2]:
            return True
    return False


def wandb_loggers(logger: Any) -> list[Namespace]:
    """The ``WandbLogger`` entries of a ``trainer.logger`` config (one logger or a list)."""
    items = logger if isinstance(logger, list) else [logger]
    return [
        item for item in items
        if isinstance(item, Namespace) and str(item.get("class_path", "")).endswith("WandbLogger")
    ]


def without_wandb(logger: Any) -> Any:
    """A logger config with every ``WandbLogger`` replaced by a ``CSVLogger`` in its save_dir;
    in a list that holds a ``CSVLogger`` already, dropped (two CSV loggers of one folder
    would write the same files)."""
    if isinstance(logger, list):
        has_csv = any(str(getattr(item, "class_path", "")).endswith("CSVLogger") for item in logger)
        return [without_wandb(item) for item in logger if not (has_csv and wandb_loggers(item))]
    if wandb_loggers(logger):
        save_dir = (logger.get("init_args") or Namespace()).get("save_dir") or "runs"
        return Namespace(
            class_path="pytorch_lightning.loggers.CSVLogger",
            init_args=Namespace(save_dir=save_dir, name="csv"),
        )
    return logger


def logs_under_root(logger: Any, root: str | os.PathLike | None) -> None:
    """Give every logger config of ``trainer.logger`` (one or a list) whose ``save_dir`` is
    left at its default (none, or ``WandbLogger``'s ``"."``) the trainer's
    ``default_root_dir`` ``root``: its logs and, for the first logger, the checkpoints
    (Lightning saves them under the first logger's folder) then go where
    ``--trainer.default_root_dir`` says."""
    if root is None:
        return
    for item in logger if isinstance(logger, list) else [logger]:
        if isinstance(item, Namespace) and isinstance(item.get("init_args"), Namespace):
            if item.init_args.get("save_dir") in (None, "."):
                item.init_args.save_dir = str(root)


def prepare_wandb_loggers(loggers: Sequence[Any]) -> None:
    """Before W&B runs start: make each ``WandbLogger``'s folder (on a missing one wandb
    warns "git root ... does not exist") and drop the ``anonymous=None`` that Lightning
    passes to ``wandb.init`` (wandb warns that the setting has no effect). Both read
    Lightning's ``WandbLogger._wandb_init``, the arguments it will give ``wandb.init``;
    other loggers are left alone."""
    for logger in loggers:
        init = getattr(logger, "_wandb_init", None)
        if not isinstance(init, dict):
            continue
        if init.get("dir"):
            Path(init["dir"]).mkdir(parents=True, exist_ok=True)
        if "anonymous" in init and init["anonymous"] is None:
            del init["anonymous"]


class PlainHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help with reStructuredText's double backticks taken out: the help of
    ``poselit fit --help`` comes from docstrings (Lightning's and poselit's), and a terminal
    shows ``x`` literally (as :func:`poselit.cli.plain_help` does for the other commands)."""

    def _expand_help(self, action: Any) -> str:
        return super()._expand_help(action).replace("``", "")

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def start_section(self, heading: str | None) -> None:
        super().start_section(heading.replace("``", "") if heading else heading)


class ConfigInCheckpoints(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` in the log folder, and the same configuration in every
    checkpoint (:data:`CONFIG_KEY`): where ``config.yaml`` lands depends on the logger
    (``WandbLogger`` puts it in its ``save_dir``, several folders above the checkpoints), so
    ``poselit zoo export`` reads it from the checkpoint itself
    (:data:`~poselit.checkpoints.CONFIG_KEY`)."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = {
            "yaml": self.parser.dump(self.config, skip_none=False),  # as config.yaml is written
            "recipes": [str(path) for path in self.config.get("config") or []],
        }


class PoseLightningCLI(LightningCLI):
    """LightningCLI with poselit's links, the W&B fallback and the paper tables after ``test``.

    Recipes log to Weights & Biases. Without an API key (see
    :func:`wandb_api_key_configured`) and without ``WANDB_MODE``, they log offline (one line
    on stderr says so; ``wandb sync`` uploads the run later); ``WANDB_MODE=offline`` does the
    same silently; with ``WANDB_MODE=disabled`` they log to CSV. Without wandb installed (the
    ``train`` extra) a recipe with a ``WandbLogger`` stops, saying so, unless it is disabled.
    """

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        logs_under_root(config.trainer.logger, config.trainer.default_root_dir)
        if wandb_disabled():
            config.trainer.logger = without_wandb(config.trainer.logger)
            return
        check_wandb_installed(config.trainer.logger, config.get("config") or [])
        loggers = wandb_loggers(config.trainer.logger)
        if not loggers or wandb_api_key_configured():
            return
        mode = os.environ.get("WANDB_MODE", "").lower()
        if mode == "online":
            raise RecipeError(
                "WANDB_MODE=online but no W&B API key is configured: set WANDB_API_KEY or run "
                "'wandb login' (or use WANDB_MODE=offline, or WANDB_MODE=disabled for a CSV log)"
            )
        for logger in loggers:
            logger.init_args = logger.get("init_args") or Namespace()
            logger.init_args.offline = True
        if not mode:
            save_dir = loggers[0].init_args.get("save_dir") or "."
            print(
                f"poselit: no W&B API key (WANDB_API_KEY or 'wandb login'): logging offline to "
                f"{Path(save_dir) / 'wandb'} ('wandb sync' uploads it; WANDB_MODE=disabled logs to CSV)",
                file=sys.stderr,
            )

    def instantiate_classes(self) -> None:
        """Instantiate the model, data and trainer; a dataset the data module cannot find or
        read while linking its skeleton into the model (COCO-format data: from the file)
        stops with a :class:`RecipeError`, in one line."""
        try:
            super().instantiate_classes()
        except (FileNotFoundError, ValueError) as err:
            raise RecipeError(str(err)) from err

    def after_fit(self) -> None:
        """Say where the checkpoints are: the first ``ModelCheckpoint``'s folder and best file."""
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.dirpath and self.trainer.is_global_zero:
            best = f" (best: {callback.best_model_path})" if callback.best_model_path else ""
            print(f"poselit: checkpoints in {callback.dirpath}{best}")

    def _check_inputs(self) -> None:
        """Stop before anything runs on a missing dataset, or on an ``init_from`` or
        ``--ckpt_path`` file that is damaged, holds more than tensors and plain data, or
        comes from another method or joint count, with a message saying what to fix."""
        try:
            self.datamodule.check(self.subcommand)
            ckpt_path = self._resolved_ckpt_path()
            if ckpt_path:
                check_checkpoint(ckpt_path, type(self.model), self.model.skeleton)
        except (FileNotFoundError, ValueError) as err:
            raise RecipeError(str(err)) from err
        if self.subcommand == "fit" and self.model.init_from:  # the model's setup reads it, in training
            try:
                path = weights_file(self.model.init_from)  # zoo:NAME, hf://...: fetched from the zoo here
                check_weights(path, type(self.model))
            except (OSError, ValueError) as err:  # OSError: a zoo model the Hub could not send
                raise RecipeError(f"model.init_args.init_from: {err}") from err
            self.model.init_from = str(path)  # the fetched file; the config and checkpoints keep the source

    def _resolved_ckpt_path(self) -> str | None:
        """The file the trainer will load for ``--ckpt_path``: ``last`` and ``best`` resolved
        as Lightning resolves them (``last``: the newest ``last*.ckpt`` of the checkpoint
        folders; ``best``: the best checkpoint this process saved, so none in a new one)."""
        path = self.config[self.subcommand].get("ckpt_path")
        if path not in ("last", "best"):
            return self._ckpt_path(self.config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning warns when it resolves it again, in fit
            try:
                return self.trainer._checkpoint_connector._parse_ckpt_path(
                    TrainerFn(self.subcommand), path, model_provided=True, model_connected=False
                )
            except ValueError as err:  # "best": a new process has saved no checkpoint yet
                raise ValueError(
                    f"--ckpt_path {path}: a new run has no best checkpoint yet, name its file (Lightning: {err})"
                ) from err

    @staticmethod
    def _ckpt_path(config: Namespace) -> str | None:
        """The subcommand's ``--ckpt_path`` when it names a file (not "last", "best", ...)."""
        subcommand = config.get("subcommand")
        path = subcommand and config[subcommand].get("ckpt_path")
        return path if path and path not in ("last", "best", "hpc", "registry") else None

    def parse_arguments(self, parser: LightningArgumentParser, args: Sequence[str]) -> None:
        """Parse ``args`` (see :func:`run_lightning`: not the process's command line), then
        check ``--ckpt_path`` against the recipe's method *before* Lightning reads the
        checkpoint's hyper-parameters into the config (which would otherwise switch the
        model to the checkpoint's class)."""
        self.config = parser.parse_args(list(args))
        ckpt_path = self._ckpt_path(self.config)
        if ckpt_path:
            try:
                check_checkpoint(ckpt_path, self.config[self.config.subcommand].model.class_path)
            except (FileNotFoundError, ValueError) as err:
                raise RecipeError(str(err)) from err

    def _before_run(self) -> None:
        self._check_inputs()
        prepare_wandb_loggers(self.trainer.loggers)

    before_fit = before_validate = before_test = before_predict = _before_run

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for crop in ("input_size", "padding", "fill"):  # the model's input description
            parser.link_arguments(f"data.{crop}", f"model.init_args.{crop}")
        parser.link_arguments("data.skeleton_spec", "model.init_args.skeleton", apply_on="instantiate")

    def __init__(self, *args: Any, references: Sequence[Reference] = (), **kwargs: Any) -> None:
        self.references = tuple(references)  # published rows printed beside ours after test
        self.tables: list[Table] = []
        super().__init__(*args, **kwargs)

    def after_test(self) -> None:
        """Print one table per metric and test dataset, in the papers' layout (kept in
        :attr:`tables`)."""
        self.tables = [
            table for report in test_reports(self.model, self.datamodule) for table in report.tables(self.references)
        ]
        for table in self.tables:
            print(table.to_text())
            print()


def run_lightning(
    args: Sequence[str],
    run: bool = True,
    references: Sequence[Reference] = (),
    command: Sequence[str] | None = None,
) -> PoseLightningCLI:
    """Run a LightningCLI subcommand (``fit``, ``validate``, ``test``, ``predict``) with its
    arguments.

    With ``run=False`` the arguments hold no subcommand and the CLI only parses the
    configuration and instantiates the model, data and trainer (used to check recipes).
    ``references`` are published rows that ``test`` prints beside the measured ones.
    Lightning's warnings and messages that tell a poselit user nothing are dropped while
    it runs (:func:`quiet_lightning`).

    ``command`` is the ``poselit`` command line that runs this (default: ``args``, right
    for ``fit``, ``validate`` and ``test``; LightningCLI's ``predict`` is ``poselit
    predict-recipe``): it is the process's command line while the CLI runs
    (:func:`command_line`), because Lightning's DDP launcher starts the other processes
    with ``sys.argv``, which must then re-run this very command.
    """
    import_methods()
    with command_line(args if command is None else command), image_errors_in_one_line(), quiet_lightning():
        return PoseLightningCLI(
            PoseLitModule,
            PoseDataModule,
            subclass_mode_model=True,
            auto_configure_optimizers=False,
            save_config_callback=ConfigInCheckpoints,
            save_config_kwargs={"overwrite": True},
            args=list(args),
            run=run,
            references=references,
            parser_kwargs={
                "prog": "poselit",  # also under 'python -m poselit.cli'
                "description": "poselit training (LightningCLI)",
                "formatter_class": PlainHelpFormatter,
                **{subcommand: {"formatter_class": PlainHelpFormatter} for subcommand in ("fit", "validate", "test")},
                "predict": {"description": "LightningCLI's predict, run as 'poselit predict-recipe' "
                            "('poselit predict' predicts poses in images)", "formatter_class": PlainHelpFormatter},
            },
        )


@contextlib.contextmanager
def image_errors_in_one_line() -> Iterator[None]:
    """A missing or unreadable image met while a subcommand runs becomes a
    :class:`RecipeError`: its message in one line (naming the image and its record) and how
    to go on, also when a DataLoader worker met it."""
    try:
        yield
    except ImageReadError as err:
        raise RecipeError(
            f"{own_message(err)}: restore the image, or skip unreadable images with --data.on_bad_image=skip"
        ) from err


def own_message(err: BaseException) -> str:
    """An error's own message: a DataLoader worker's error is raised again in the main
    process with the worker's whole traceback as its message ("Caught ImageReadError in
    DataLoader worker process 0. Original Traceback ..."), whose last line is
    ``module.ImageReadError: message``."""
    text = str(err).strip()
    if text.startswith(f"Caught {type(err).__name__} ") and "\nOriginal Traceback" in text:
        return text.splitlines()[-1].split(": ", 1)[-1]
    return text


@contextlib.contextmanager
def command_line(args: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` set to ``[program, *args]`` inside the block, restored after it."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "poselit", *args]
    try:
        yield
    finally:
        sys.argv = saved
