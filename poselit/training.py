"""``poselit fit | validate | test | predict``: LightningCLI over every method and the DataModule.

A recipe YAML names the method with ``model.class_path`` (any :class:`PoseLitModule`
subclass, e.g. ``poselit.models.belagiannis.BelagiannisRecurrent`` or just
``BelagiannisRecurrent``) and configures ``data`` (:class:`PoseDataModule`) and
``trainer``. Two facts are stated once, in ``data``, and linked into the model: the input
size and the skeleton (so the joint count always matches the dataset).

``poselit test`` prints the paper-style tables of each test dataset after testing.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from typing import Sequence

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from poselit.data.datamodule import PoseDataModule
from poselit.evaluate import EvaluationReport
from poselit.models.base import PoseLitModule

SUBCOMMANDS = ("fit", "validate", "test", "predict")

METHOD_MODULES = ("poselit.models.bulat", "poselit.models.belagiannis", "poselit.models.luvizon")
"""Imported so that recipes can name the methods by class name."""


def import_methods() -> None:
    """Import every method module (registers them as ``PoseLitModule`` subclasses)."""
    for module in METHOD_MODULES:
        importlib.import_module(module)


class PoseLightningCLI(LightningCLI):
    """LightningCLI with poselit's links and the paper tables after ``test``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_size", "model.init_args.input_size")
        parser.link_arguments("data.skeleton_spec", "model.init_args.skeleton", apply_on="instantiate")

    def after_test(self) -> None:
        """Print one table per metric and test dataset, in the papers' layout."""
        for report in test_reports(self.model, self.datamodule):
            for table in report.tables():
                print(table.to_text())
                print()


def test_reports(model: PoseLitModule, datamodule: PoseDataModule) -> list[EvaluationReport]:
    """The test results of ``model`` grouped per test dataset, as evaluation reports."""
    grouped = defaultdict(list)
    for key, result in model.results.items():
        prefix = key.split("/", 1)[0]
        if prefix.startswith("test"):
            grouped[int(prefix[4:] or 0)].append(result)
    reports = []
    for index, results in sorted(grouped.items()):
        spec = datamodule.test_specs[index]
        records = len(datamodule.datasets["test"][index])
        reports.append(EvaluationReport(str(spec), records, type(model).__name__, tuple(results)))
    return reports


def run_lightning(args: Sequence[str]) -> PoseLightningCLI:
    """Run a LightningCLI subcommand (``fit``, ``test``, ...) with its arguments."""
    import_methods()
    return PoseLightningCLI(
        PoseLitModule,
        PoseDataModule,
        subclass_mode_model=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=list(args),
        parser_kwargs={"description": "poselit training (LightningCLI)"},
    )
