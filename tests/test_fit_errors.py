"""``poselit fit`` on bad input ends in one line on stderr (exit code 2) naming the file,
record or argument, never in a traceback: hostile, truncated and foreign ``init_from`` and
``--ckpt_path`` files (checked by content, before training, without unpickling anything),
a missing image met in training (also in a DataLoader worker), and a recipe's
``WandbLogger`` without wandb installed."""

import pickle
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from poselit.checkpoints import CLASS_KEY
from poselit.cli import main
from poselit.cli.lightning import run_lightning
from poselit.data.synthetic import write_synthetic_lsp
from poselit.models.belagiannis import BelagiannisRecurrent
from poselit.models.luvizon import LuvizonSoftArgmax

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes/smoke/belagiannis.yaml"
BELAGIANNIS = "poselit.models.belagiannis.BelagiannisRecurrent"


class Hostile:
    """Unpickling it calls ``open(marker, "w")``: the marker file appears if a reader
    ever runs a checkpoint's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A generated LSP folder: 4 training and 4 test people."""
    return write_synthetic_lsp(tmp_path_factory.mktemp("fit_errors") / "synth", num_images=8, size=(96, 72), seed=1)


@pytest.fixture(autouse=True)
def csv_logging(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def fit_args(data: Path, out: Path, *extra: str) -> list[str]:
    """``poselit fit`` of the smoke recipe on ``data``: one step of one batch (all 4
    training people), no validation, no logger (checkpoints in ``out/checkpoints``)."""
    return [
        "fit", "-c", str(RECIPE), f"--data.train=[lsp:train@{data}]", f"--data.val=[lsp:test@{data}]",
        "--data.input_size=[64,64]", "--data.batch_size=4", f"--trainer.default_root_dir={out}",
        "--trainer.logger=false", "--trainer.max_steps=1", "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", *extra,
    ]


def one_error_line(capsys) -> str:
    """The one line ``poselit`` wrote to stderr, checked to be an error without traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("poselit: error: "), err
    return lines[0]


def save_checkpoint(path: Path, model: torch.nn.Module, class_path: str, **kwargs) -> Path:
    """A checkpoint as ``poselit fit`` saves one: the class that saved it, tensors, hyper-parameters."""
    checkpoint = {CLASS_KEY: {"class_path": class_path}, "state_dict": model.state_dict(), "epoch": 0,
                  "hyper_parameters": {"_class_path": class_path, **model.hparams}}
    torch.save(checkpoint, path, **kwargs)
    return path


@pytest.fixture(scope="module")
def belagiannis_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = BelagiannisRecurrent(num_iterations=1, body_parts=True, input_size=(64, 64))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "belagiannis.ckpt", model, BELAGIANNIS)


def hostile_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Files whose unpickling would create ``marker``: torch.save's zip archive, its pre-1.6
    (legacy) format, and a bare pickle, under names that suggest other formats."""
    payload = {"state_dict": {}, "hyper_parameters": {"x": Hostile(marker)}}
    files = {"zip": folder / "zip.pt", "legacy": folder / "legacy.ckpt", "pickle": folder / "pickle.safetensors"}
    torch.save(payload, files["zip"])
    torch.save(payload, files["legacy"], _use_new_zipfile_serialization=False)
    files["pickle"].write_bytes(pickle.dumps(payload))
    return files


def test_hostile_init_from_is_refused_without_running_its_code(synth, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    for name, path in hostile_files(tmp_path, marker).items():
        assert main(fit_args(synth, tmp_path / "out", f"--model.init_args.init_from={path}")) == 2, name
        line = one_error_line(capsys)
        assert line.startswith(f"poselit: error: model.init_args.init_from: {path}: "), line
        expected = "weights_only=True only" if name == "zip" else "not a readable safetensors file nor a checkpoint"
        assert expected in line, line
    assert not marker.exists() and not (tmp_path / "out").exists()  # stopped before the trainer wrote anything


def test_truncated_foreign_and_renamed_init_from_stop_before_training(synth, belagiannis_checkpoint, tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    data = belagiannis_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    luvizon = LuvizonSoftArgmax(num_blocks=2, width=32, input_size=(64, 64))
    foreign = save_checkpoint(tmp_path / "luvizon.ckpt", luvizon, "poselit.models.luvizon.LuvizonSoftArgmax")
    renamed = tmp_path / "luvizon.pt"  # the method is read from the content, whatever the suffix
    renamed.write_bytes(foreign.read_bytes())
    cases = {
        truncated: f"{truncated}: not a readable safetensors file nor a checkpoint",
        foreign: f"{foreign} is a LuvizonSoftArgmax checkpoint but the recipe builds BelagiannisRecurrent",
        renamed: f"{renamed} is a LuvizonSoftArgmax checkpoint but the recipe builds BelagiannisRecurrent",
        tmp_path / "nowhere.ckpt": f"checkpoint not found: {tmp_path / 'nowhere.ckpt'}",
    }
    for path, message in cases.items():
        assert main(fit_args(synth, tmp_path / "out", f"--model.init_args.init_from={path}")) == 2
        assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()  # stopped before the trainer wrote anything


def test_init_from_a_checkpoint_renamed_pt_or_safetensors_still_trains(synth, belagiannis_checkpoint, tmp_path):
    from safetensors.torch import save_file

    renamed = tmp_path / "belagiannis.pt"
    renamed.write_bytes(belagiannis_checkpoint.read_bytes())
    state = torch.load(belagiannis_checkpoint, weights_only=True)["state_dict"]
    safetensors = tmp_path / "belagiannis.weights"  # safetensors told by its header, not its name
    save_file(state, safetensors)
    for path in (renamed, safetensors):
        assert main(fit_args(synth, tmp_path / path.suffix, f"--model.init_args.init_from={path}")) == 0


def test_ckpt_path_last_and_best_are_checked_before_lightning_loads_them(synth, tmp_path, capsys):
    """``last`` resolves as Lightning resolves it (the newest ``last*.ckpt`` of the
    checkpoint folder, here ``default_root_dir/checkpoints``) and is read by poselit's
    weights-only reader, not by Lightning's ``torch.load`` (whose error is a traceback
    advising ``weights_only=False``)."""
    marker = tmp_path / "code-ran"
    folder = tmp_path / "out" / "checkpoints"
    folder.mkdir(parents=True)
    last = folder / "last.ckpt"
    last.write_bytes(hostile_files(tmp_path, marker)["zip"].read_bytes())
    assert main(fit_args(synth, tmp_path / "out", "--ckpt_path=last")) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"poselit: error: {last}: holds objects other than tensors"), line
    assert "weights_only=True only" in line and "weights_only=False" not in line
    last.write_bytes(b"PK\x03\x04 the first bytes of a checkpoint")
    assert main(fit_args(synth, tmp_path / "out", "--ckpt_path=last")) == 2
    assert one_error_line(capsys).startswith(f"poselit: error: {last}: not a checkpoint")
    assert main(fit_args(synth, tmp_path / "out", "--ckpt_path=best")) == 2
    assert "--ckpt_path best: a new run has no best checkpoint yet, name its file" in one_error_line(capsys)
    assert not marker.exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_a_missing_image_ends_fit_in_one_line_naming_image_and_record(synth, tmp_path, capsys, workers):
    """Also from a DataLoader worker, which raises the error again wrapped in its traceback."""
    data = shutil.copytree(synth, tmp_path / "synth")
    (data / "images" / "im0003.jpg").unlink()  # a training image: the one batch holds all four
    assert main(fit_args(data, tmp_path / "out", f"--data.num_workers={workers}")) == 2
    line = one_error_line(capsys)
    assert f"image not found: {data / 'images' / 'im0003.jpg'} (record {data / 'joints.mat'}#3)" in line, line
    assert line.endswith("restore the image, or skip unreadable images with --data.on_bad_image=skip"), line


def test_a_missing_image_in_a_worker_leaves_no_traceback_on_the_console(synth, tmp_path):
    """The real stderr of ``python -m poselit.cli fit``: Lightning's own lines may come
    first, but the last is the one error line, and no traceback is printed."""
    data = shutil.copytree(synth, tmp_path / "synth")
    (data / "images" / "im0002.jpg").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "poselit.cli", *fit_args(data, tmp_path / "out", "--data.num_workers=1")],
        capture_output=True, text=True, timeout=600,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert lines[-1].startswith("poselit: error: image not found: ") and "im0002.jpg" in lines[-1], done.stderr


def test_wandb_logger_without_wandb_names_the_recipe_and_the_extra(synth, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it fails
    args = fit_args(synth, tmp_path / "out")
    args.remove("--trainer.logger=false")  # the recipe's WandbLogger
    assert main(args) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"poselit: error: {RECIPE}: trainer.logger WandbLogger needs wandb"), line
    assert 'pip install -e ".[train]"' in line and "WANDB_MODE=disabled" in line
    monkeypatch.setenv("WANDB_MODE", "disabled")  # switched off, it needs no wandb: a CSV log
    cli = run_lightning(args[1:], run=False)
    assert type(cli.trainer.logger).__name__ == "CSVLogger"


def test_wandb_is_an_optional_dependency_no_module_imports():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = lambda requirements: {r.split(">")[0].split("[")[0].strip() for r in requirements}  # noqa: E731
    extras = project["optional-dependencies"]
    assert "wandb" not in names(project["dependencies"]) and "wandb" in names(extras["train"])
    assert any(r.startswith("poselit[") and "train" in r for r in extras["dev"])
    code = (
        "import sys; sys.modules['wandb'] = None\n"  # any 'import wandb' fails
        "import poselit, poselit.cli, poselit.cli.lightning, poselit.callbacks, poselit.predict, poselit.zoo\n"
        "from poselit.models import import_methods; import_methods()\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr
