"""The ``poselit`` command: data show / data synth, errors, the console script."""

import argparse
import json
import shutil
import subprocess
import sys

import cv2
import pytest

from poselit.cli import build_parser, main


def test_data_synth_then_show_writes_grid_and_summary(tmp_path, capsys):
    root = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(root), "--num", "6", "--height", "80", "--width", "64"]) == 0
    out = tmp_path / "show"
    code = main(["data", "show", "--dataset", f"lsp:train@{root}", "--out", str(out), "--num", "3",
                 "--columns", "2", "--size", "64", "--quiet"])
    assert code == 0
    grid = cv2.imread(str(out / "samples.png"))
    assert grid.shape == (64 * 2 + 2, 64 * 2 + 2, 3)  # 3 tiles in 2 columns, 2 px gaps
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 3 and summary["skeleton"] == "lsp"
    assert summary["annotated_joints"] == 42 and summary["missing_images"]["count"] == 0
    assert summary["drawn_samples"] == 3 and summary["skipped"] == {}
    assert "3 records" in capsys.readouterr().out


def test_data_show_reports_missing_images(tmp_path):
    root = tmp_path / "synth"
    main(["data", "synth", "--out", str(root), "--num", "4"])
    (root / "images" / "im0001.jpg").unlink()
    out = tmp_path / "show"
    assert main(["data", "show", "--dataset", f"lsp:train@{root}", "--out", str(out), "--num", "2", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_images"]["count"] == 1
    assert summary["missing_images"]["first"][0].endswith("im0001.jpg")


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["data", "show", "--dataset", "lsq:train", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'lsq'" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path), "--num", "3"]) == 2
    assert "positive even number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nonsense"])


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "show", "--size", "0"],  # was "Singular matrix"
        ["data", "show", "--num", "0"],
        ["data", "show", "--num", "-1"],
        ["data", "show", "--columns", "0"],
        ["data", "show", "--size", "ten"],
        ["data", "synth", "--out", "x", "--height", "0"],
        ["data", "synth", "--out", "x", "--width", "-5"],
    ],
)
def test_data_counts_and_sizes_must_be_positive(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"error: argument {argv[-2]}: expected an integer > 0, got {argv[-1]!r}" in err


def test_data_synth_refuses_images_above_the_pixel_limit_before_writing(tmp_path, capsys, monkeypatch):
    """100000 x 100000 px would allocate 30 GB per image; the limit is read_image's, so
    nothing is written that could not be read back."""
    out = tmp_path / "huge"
    monkeypatch.delenv("POSELIT_MAX_IMAGE_PIXELS", raising=False)
    assert main(["data", "synth", "--out", str(out), "--height", "100000", "--width", "100000"]) == 2
    err = capsys.readouterr().err
    assert err == ("poselit: error: image height 100000 x width 100000 = 10000000000 pixels is above the limit of "
                   "100000000 that images are read with (POSELIT_MAX_IMAGE_PIXELS raises it)\n")
    monkeypatch.setenv("POSELIT_MAX_IMAGE_PIXELS", "1000")
    assert main(["data", "synth", "--out", str(out), "--height", "40", "--width", "30"]) == 2
    assert "= 1200 pixels is above the limit of 1000" in capsys.readouterr().err
    assert not out.exists()


def test_data_show_refuses_a_grid_above_the_pixel_limit_before_reading(tmp_path, capsys, monkeypatch):
    """--size 100000 would allocate 30 GB per crop; the grid obeys the image pixel limit."""
    monkeypatch.delenv("POSELIT_MAX_IMAGE_PIXELS", raising=False)
    out = tmp_path / "show"
    assert main(["data", "show", "--dataset", "lsp:train@nowhere", "--out", str(out), "--size", "100000"]) == 2
    assert capsys.readouterr().err == (
        "poselit: error: --num 16 crops of --size 100000 = 160000000000 pixels in the grid is above the limit of "
        "100000000 that images are read with (POSELIT_MAX_IMAGE_PIXELS raises it)\n"
    )
    assert not out.exists()


def test_real_lsp_show(data_root, tmp_path):
    assert main(["data", "show", "--root", str(data_root), "--out", str(tmp_path), "--num", "4", "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["records"] == 1000 and summary["annotated_joints"] == 14000


def test_console_script_is_installed():
    exe = shutil.which("poselit")
    assert exe, "the poselit console script is not on PATH (pip install -e .)"
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("poselit ")


HEAVY = ("torch", "pytorch_lightning", "lightning", "cv2", "wandb", "timm", "albumentations", "matplotlib")

WALK_EVERY_HELP = """
import argparse, contextlib, io, sys
from poselit.cli import build_parser, main

def helps(parser, path):
    # every sub-command path below parser, each ending in --help
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.add_help:  # fit / validate / test: LightningCLI builds their help
                    yield from helps(sub, [*path, name])
    yield [*path, "--help"]

paths = list(helps(build_parser(), []))
for argv in [*paths, ["eval"], ["zoo", "export", "x.ckpt"], ["nonsense"]]:  # helps, then argument errors
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit_:
            assert exit_.code == (0 if argv[-1] == "--help" else 2), (argv, exit_.code)
    assert "``" not in out.getvalue(), (argv, "reStructuredText double backticks in the help")
print(len(paths), sorted(m for m in HEAVY if m in sys.modules))
"""


def test_help_and_argument_errors_import_nothing_heavy():
    """``poselit --help``, every subcommand's ``--help`` and argument errors answer without
    importing torch, Lightning or OpenCV (they took 8-9 s when the parser imported them),
    and no help shows reStructuredText's double backticks."""
    code = f"HEAVY = {HEAVY!r}\n" + WALK_EVERY_HELP
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count, heavy = result.stdout.split(" ", 1)
    assert int(count) >= 15 and heavy.strip() == "[]", result.stdout  # every command walked, nothing heavy


@pytest.mark.parametrize("command", ["fit", "predict-recipe"])
def test_lightning_help_is_plain_text(command, capsys):
    """LightningCLI's help is built from docstrings (Lightning's Trainer, poselit's methods
    and data module): printed without reStructuredText's double backticks."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--trainer.max_epochs" in out and "``" not in out


def test_the_zoo_help_lines_list_every_zoo_command():
    def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    parser = build_parser()
    top = subcommands(parser)
    zoo_commands = list(subcommands(top.choices["zoo"]).choices)
    listed = next(choice.help for choice in top._choices_actions if choice.dest == "zoo")  # 'poselit --help'
    described = next(line for line in parser.description.splitlines() if line.startswith("poselit zoo "))
    assert len(zoo_commands) >= 7 and "compare" in zoo_commands
    assert all(name in text for text in (listed, described) for name in zoo_commands), (listed, described, zoo_commands)


def test_backbone_import_writes_timm_weights_that_a_recipe_can_load(tmp_path, capsys):
    import timm
    import torch

    from poselit.models.backbones import create_backbone

    source = timm.create_model("resnet18")
    other_names = {f"features.{i}": v for i, (k, v) in enumerate(source.state_dict().items())}
    torch.save(other_names, tmp_path / "resnet18-other-library.pth")
    out = tmp_path / "weights" / "resnet18.safetensors"
    assert main(["backbone", "import", str(tmp_path / "resnet18-other-library.pth"), "--model", "resnet18",
                 "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    backbone = create_backbone("resnet18", weights=out, out_strides=32)
    assert torch.equal(backbone.body.layer4[1].conv2.weight, source.layer4[1].conv2.weight)

    assert main(["backbone", "import", str(tmp_path / "resnet18-other-library.pth"), "--model", "resnet34",
                 "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poselit: error: ") and "not the same network" in err and "resnet18-other-library.pth" in err
