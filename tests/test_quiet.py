"""Quiet by default: ``poselit fit`` and ``poselit predict`` print no third-party warning
that tells the user nothing to act on, poselit's own warnings are one line each, and none
of this changes a Python program that merely imports poselit."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from poselit.cli import PACKAGE, is_poselits, one_line_warnings
from poselit.cli.lightning import drop_quiet_messages, prepare_wandb_loggers, quiet_lightning
from poselit.data.synthetic import write_synthetic_lsp
from poselit.predict import SAMPLES

REPO = Path(__file__).resolve().parents[1]

NOISE = re.compile(r"warn|deprecat|tip:|\.py:\d+", re.IGNORECASE)
"""What a warning line looks like: Python's ``file.py:12: UserWarning: ...`` (and
Lightning's ``file.py:12: message``), wandb's ``wandb: WARNING``, Lightning's tips."""


def noise(stderr: str) -> list[str]:
    """The lines of ``stderr`` that look like warnings, except poselit's own one-liners."""
    return [line for line in stderr.splitlines() if NOISE.search(line) and not line.startswith("poselit:")]


def fresh_environment(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no W&B key or mode, no warning options, poselit's cache empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "PYTHONWARNINGS"}
    env.update(NETRC=str(tmp_path / "no-netrc"), WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
               POSELIT_CACHE=str(tmp_path / "cache"))
    return env


def run_poselit(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poselit.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def test_noise_finds_the_lines_the_issue_reported():
    reported = """Seed set to 0
💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger](...)
wandb: WARNING The anonymous setting has no effect and will be removed in a future version.
wandb: WARNING git root runs/smoke does not exist
/x/pytorch_lightning/utilities/_pytree.py:21: `isinstance(treespec, LeafSpec)` is deprecated, use ...
/x/poselit/cli/predict.py:236: UserWarning: boxes for images that were not given: b.jpg
  warnings.warn(f"boxes for images that were not given: {', '.join(sorted(unused))}", stacklevel=2)
poselit: warning: boxes for images that were not given: b.jpg
wandb: Tracking run with wandb version 0.31.0"""
    assert len(noise(reported)) == 6


@pytest.mark.slow
def test_fit_prints_no_third_party_warnings(tmp_path):
    """A tiny ``poselit fit`` as a newcomer runs it: W&B without a key (offline) into a folder
    that does not exist yet, Lightning's default ``log_every_n_steps`` on a data set of 5
    batches. Without the quieting this printed the litlogger tip, wandb's "anonymous" and
    "git root" warnings, Lightning's LeafSpec deprecation and its logging-interval warning."""
    data = write_synthetic_lsp(tmp_path / "synth", num_images=24, size=(96, 72), seed=1)
    done = run_poselit(
        "fit", "-c", str(REPO / "recipes/smoke/belagiannis.yaml"),
        f"--data.train=[lsp:train@{data}]", f"--data.val=[lsp:test@{data}]", "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path / 'root'}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'not' / 'yet'}",
        "--trainer.log_every_n_steps=50", "--trainer.enable_progress_bar=false",
        env=fresh_environment(tmp_path), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert noise(done.stderr) == [], done.stderr
    assert "logging offline" in done.stderr and list((tmp_path / "not" / "yet").rglob("offline-run-*"))


@pytest.mark.slow
def test_predict_prints_no_third_party_warnings_and_its_own_in_one_line(tmp_path):
    """``poselit predict`` on the default runtime (exported to ONNX on first use: the cache
    is empty), with a boxes file naming an image that was not given: one line of poselit's."""
    (tmp_path / "boxes.json").write_text('{"astronaut.jpg": [120, 40, 200, 420], "other.jpg": [0, 0, 10, 10]}')
    done = run_poselit(
        "predict", str(SAMPLES / "astronaut.jpg"), "--model", "luvizon-tiny-lsp-demo", "--device", "cpu",
        "--boxes", "boxes.json", "--out", "out", "--quiet", env=fresh_environment(tmp_path), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert noise(done.stderr) == [], done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("poselit: warning:")]
    assert ours == ["poselit: warning: boxes for images that were not given: other.jpg"], done.stderr
    assert "warnings.warn" not in done.stderr  # no source line
    assert (tmp_path / "out" / "astronaut.png").is_file()


def test_poselits_warnings_are_one_line_only_inside_the_command():
    here = str(PACKAGE / "cli" / "predict.py")
    outside = warnings.formatwarning("no box", UserWarning, here, 9)
    with one_line_warnings():
        assert warnings.formatwarning("no box", UserWarning, here, 9) == "poselit: warning: no box\n"
        theirs = warnings.formatwarning("old", DeprecationWarning, "/site-packages/other/x.py", 3)
        assert theirs.startswith("/site-packages/other/x.py:3: DeprecationWarning: old")
    assert warnings.formatwarning("no box", UserWarning, here, 9) == outside  # restored
    assert "UserWarning" in outside
    assert is_poselits(type("Custom", (UserWarning,), {"__module__": "poselit.video"}), "/elsewhere.py")
    assert not is_poselits(UserWarning, "/site-packages/torch/onnx/utils.py")


def test_lightnings_leafspec_deprecation_is_dropped_inside_the_command_only():
    """The real warning, from Lightning's own code: recorded outside, dropped inside."""
    from pytorch_lightning.utilities._pytree import _tree_flatten

    def caught(quiet: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            with quiet_lightning() if quiet else contextlib.nullcontext():
                _tree_flatten(1)
                warnings.warn("a warning of the user's own", UserWarning)
        return [str(r.message) for r in records]

    assert any("LeafSpec" in message for message in caught(quiet=False))
    assert caught(quiet=True) == ["a warning of the user's own"]


def test_the_litlogger_tip_is_dropped_and_other_messages_kept():
    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("pytorch_lightning.utilities.rank_zero", logging.INFO, __file__, 1, text, None, None)

    assert not drop_quiet_messages(record("💡 Tip: For seamless cloud logging and experiment tracking, try ..."))
    assert drop_quiet_messages(record("GPU available: False, used: False"))
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with quiet_lightning():
        assert drop_quiet_messages in logger.filters
    assert drop_quiet_messages not in logger.filters


def test_wandb_loggers_get_their_folder_and_no_anonymous_setting(tmp_path):
    pytest.importorskip("wandb")
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    wandb_logger = WandbLogger(save_dir=str(tmp_path / "not" / "yet"), offline=True)
    assert wandb_logger._wandb_init["anonymous"] is None  # what Lightning gives wandb.init
    prepare_wandb_loggers([wandb_logger, CSVLogger(tmp_path / "csv")])
    assert (tmp_path / "not" / "yet").is_dir() and "anonymous" not in wandb_logger._wandb_init
    assert not (tmp_path / "csv").exists()  # other loggers left alone
