"""The model zoo: cards, export -> load round trips, the Hugging Face cache offline, publishing.

Every test runs with the Hub offline (``HF_HUB_OFFLINE``); Hub caches are laid out in
temporary folders exactly as ``huggingface_hub`` lays them out.
"""

import fnmatch
import hashlib
import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from huggingface_hub import ModelCard as HubModelCard
from huggingface_hub import constants as hf_constants
from huggingface_hub import scan_cache_dir
from safetensors.torch import load_file, save_file

import poselit
from poselit import zoo
from poselit.checkpoints import CheckpointError
from poselit.cli import main
from poselit.complexity import count_gflops, count_parameters
from poselit.evaluate import EvaluationReport
from poselit.metrics import MetricResult
from poselit.models import LuvizonSoftArgmax
from poselit.zoo.export import starting_weights

REPO_ID = "poselit-test/luvizon-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NAME = "luvizon-tiny-synth"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test reaches the network: huggingface_hub reads HF_HUB_OFFLINE at import, so the
    constant is patched as well as the variable."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch):
    """An empty card folder, in use through POSELIT_ZOO."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv(zoo.ZOO_ENV, str(folder))
    return folder


def tiny_luvizon() -> LuvizonSoftArgmax:
    """A one-block Luvizon at 64x64 with non-trivial batch-norm statistics."""
    torch.manual_seed(0)
    model = LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 64))
    for name, buffer in model.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            buffer.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A Lightning checkpoint of :func:`tiny_luvizon` as the trainer saves it."""
    folder = tmp_path_factory.mktemp("checkpoint")
    model = tiny_luvizon()
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=folder)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(folder / "model.ckpt")
    return folder / "model.ckpt"


@pytest.fixture(scope="module")
def crops():
    return torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def outputs(model, crops):
    with torch.no_grad():
        out = model.predict_poses(crops)
    return out["keypoints"], out["scores"]


def pck_report(dataset="lsp:test") -> EvaluationReport:
    columns = {"Head": 80.0, "Shoulder": 70.0, "Total": 61.234, "AUC": 30.5}
    return EvaluationReport(dataset, 1000, "ours", (MetricResult("PCK@0.2", columns, {}, {}),))


def hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = COMMIT) -> Path:
    """Lay out ``folder``'s files as huggingface_hub's cache does: blobs named by their
    etag (sha256 for LFS files, the git blob sha1 for others), one snapshot folder of
    relative symlinks per commit, and ``refs/main``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for file in folder.iterdir():
        data = file.read_bytes()
        if file.suffix == ".safetensors":
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / file.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return repo


def export(checkpoint, out, *extra) -> None:
    assert main(["zoo", "export", str(checkpoint), "--name", NAME, "--out", str(out), *extra]) == 0


# --- export -> load ----------------------------------------------------------------------------


def test_export_then_load_by_name_and_folder_gives_identical_outputs(checkpoint, crops, zoo_dir, tmp_path):
    out = tmp_path / "export"
    export(checkpoint, out, "--license", "bsd-3-clause")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    expected = outputs(tiny_luvizon(), crops)
    for ref in (NAME, str(out)):
        model = zoo.load(ref)
        assert not model.training and next(model.parameters()).device.type == "cpu"
        assert all(torch.equal(a, b) for a, b in zip(outputs(model, crops), expected)), ref

    card = zoo.info(NAME)
    assert card.class_path == "poselit.models.luvizon.LuvizonSoftArgmax" and card.init_args["num_blocks"] == 1
    assert card.input == {"skeleton": "lsp", "size": [64, 64], "mean": [127.5] * 3, "std": [127.5] * 3,
                          "padding": 1.25, "fill": 0}
    assert card.weights.sha256 == zoo.sha256_file(out / "model.safetensors")
    assert card.weights.size == (out / "model.safetensors").stat().st_size and card.weights.dtype == "float32"
    assert (zoo_dir / card.weights.file).resolve() == (out / "model.safetensors").resolve()  # relative to the card
    assert card.training == {"epoch": 0, "global_step": 0} and card.license == "bsd-3-clause"
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == 2 and config["class_path"] == card.class_path
    assert "input_size" not in card.init_args and "mean" not in card.init_args  # the input: stated once
    assert config["init_args"] == card.init_args and config["weights"]["file"] == "model.safetensors"
    assert zoo.list() == zoo.list_models() == poselit.zoo.list_models("luvizon-*") == [NAME]
    assert zoo.table_is_current() and NAME in (zoo_dir / "README.md").read_text()


def test_loading_as_a_method_refuses_a_card_of_another_class(checkpoint, zoo_dir, tmp_path, crops):
    """``Method.from_pretrained(name)`` is ``zoo.load(name, expect=Method)``: any name form,
    and a clear error for a checkpoint of another method."""
    from poselit.models import BelagiannisRecurrent, PoseLitModule

    export(checkpoint, tmp_path / "out")
    for name in (NAME, str(tmp_path / "out")):
        model = zoo.load(name, expect=LuvizonSoftArgmax)
        assert isinstance(model, LuvizonSoftArgmax) and not model.training
        assert isinstance(zoo.load(name, expect=PoseLitModule), LuvizonSoftArgmax)  # any method
        torch.testing.assert_close(outputs(model, crops), outputs(zoo.load(name), crops))
        with pytest.raises(zoo.ZooError, match=rf"'{NAME}' is a LuvizonSoftArgmax .*, not a BelagiannisRecurrent; "
                                               r"load it with LuvizonSoftArgmax.from_pretrained"):
            zoo.load(name, expect=BelagiannisRecurrent)
        # from_pretrained on each class is that same path
        torch.testing.assert_close(outputs(LuvizonSoftArgmax.from_pretrained(name), crops), outputs(model, crops))
        assert isinstance(PoseLitModule.from_pretrained(name), LuvizonSoftArgmax)
        with pytest.raises(zoo.ZooError, match="not a BelagiannisRecurrent"):
            BelagiannisRecurrent.from_pretrained(name)


def test_export_writes_whole_files_with_normal_permissions(checkpoint, zoo_dir, tmp_path, synthetic_lsp):
    """Weights, config, README, card and table go through ``write_atomic``: readable by
    others like any new file (safetensors' own writer made the weights 0600), no temporary
    files left."""
    umask = os.umask(0o022)
    os.umask(umask)
    zoo.export_checkpoint(checkpoint, NAME, tmp_path / "export", ship=True, evaluate=[f"lsp:test@{synthetic_lsp}"])
    files = sorted([*(tmp_path / "export").iterdir(), *zoo_dir.iterdir()])
    assert {f.name for f in files} >= {"model.safetensors", "config.json", "README.md", f"{NAME}.yaml", f"{NAME}.safetensors"}
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(0o666 & ~umask) for f in files}


def test_shipping_a_model_without_measured_results_is_refused_before_writing(checkpoint, zoo_dir, tmp_path, capsys):
    """A shipped card carries measured results: ``--ship`` without ``--evaluate`` or
    ``--metrics`` stops with an error naming what is missing, and writes nothing."""
    with pytest.raises(zoo.ZooError, match="--ship .* measures none: add --evaluate SPLIT .* or --metrics"):
        zoo.export_checkpoint(checkpoint, NAME, tmp_path / "export", ship=True)
    assert main(["zoo", "export", str(checkpoint), "--name", NAME, "--out", str(tmp_path / "export"), "--ship"]) == 2
    assert "--evaluate SPLIT (e.g. lsp:test)" in capsys.readouterr().err
    assert not (tmp_path / "export").exists() and list(zoo_dir.iterdir()) == []

def test_fp16_export_halves_the_file_and_loads_into_float32(checkpoint, crops, zoo_dir, tmp_path, synthetic_lsp):
    export(checkpoint, tmp_path / "fp32", "--no-card")
    export(checkpoint, tmp_path / "fp16", "--fp16", "--ship", "--evaluate", f"lsp:test@{synthetic_lsp}")
    tensors = load_file(tmp_path / "fp16" / "model.safetensors")
    assert all(t.dtype in (torch.float16, torch.int64) for t in tensors.values())
    fp32, fp16 = ((tmp_path / d / "model.safetensors").stat().st_size for d in ("fp32", "fp16"))
    assert fp16 < 0.55 * fp32
    card = zoo.info(NAME)
    assert card.weights.dtype == "float16" and card.weights.file == f"{NAME}.safetensors"  # shipped beside the card
    model = zoo.load(NAME)
    assert next(model.parameters()).dtype == torch.float32
    for a, b in zip(outputs(model, crops), outputs(tiny_luvizon(), crops)):
        torch.testing.assert_close(a, b, atol=0.05, rtol=0.01)


def test_export_without_a_class_in_the_checkpoint_needs_class_path_and_forces_offline_args(
    checkpoint, zoo_dir, tmp_path
):
    data = torch.load(checkpoint, weights_only=True)
    del data["poselit"]
    data["hyper_parameters"].update(pretrained=True, init_from="stage1.ckpt")
    bare = tmp_path / "bare.ckpt"
    torch.save(data, bare)
    with pytest.raises(zoo.ZooError, match="does not name its class.*--class-path"):
        zoo.export_checkpoint(bare, NAME, tmp_path / "out")
    card = zoo.export_checkpoint(bare, NAME, tmp_path / "out", class_path="LuvizonSoftArgmax")
    assert card.class_path == "poselit.models.luvizon.LuvizonSoftArgmax"
    assert card.init_args["pretrained"] is False and card.init_args["init_from"] is None
    assert zoo.load(NAME).hparams["pretrained"] is False


def shifted_checkpoint(checkpoint: Path, out: Path, shift: float) -> Path:
    """``checkpoint`` with every floating-point tensor of its model moved by ``shift``."""
    data = torch.load(checkpoint, weights_only=True)
    data["state_dict"] = {k: v + shift if v.is_floating_point() else v + 7 for k, v in data["state_dict"].items()}
    torch.save(data, out)
    return out


def test_export_with_average_writes_the_mean_of_the_checkpoints_weights_and_names_them(checkpoint, zoo_dir, tmp_path):
    later = shifted_checkpoint(checkpoint, tmp_path / "later.ckpt", 0.5)
    export(checkpoint, tmp_path / "out", "--average", str(later))
    exported = load_file(tmp_path / "out" / "model.safetensors")
    original = torch.load(checkpoint, weights_only=True)["state_dict"]
    for key, tensor in original.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(exported[key], tensor + 0.25)  # the mean of x and x + 0.5
        else:
            assert torch.equal(exported[key], tensor)  # batch norm's counters: the first checkpoint's
    assert zoo.info(NAME).training["averaged_with"] == ["later.ckpt"]


def test_average_refuses_another_network_naming_the_file_and_the_tensor(checkpoint, tmp_path, capsys):
    data = torch.load(checkpoint, weights_only=True)
    key = next(k for k, v in data["state_dict"].items() if v.ndim == 4)
    data["state_dict"][key] = torch.zeros(1, 1, 1, 1)
    torch.save(data, tmp_path / "other.ckpt")
    args = ["zoo", "export", str(checkpoint), "--name", NAME, "--out", str(tmp_path / "out"), "--no-card"]
    assert main([*args, "--average", str(tmp_path / "other.ckpt")]) != 0
    message = capsys.readouterr().err
    assert "other.ckpt" in message and key in message and "cannot average" in message
    assert not (tmp_path / "out").exists()  # nothing written


def test_reexport_keeps_the_measured_cpu_time_only_for_the_same_computation(checkpoint, zoo_dir, tmp_path):
    """New weights in the same network keep the card's ``cpu_ms`` (time does not depend on
    weight values); a changed argument (here the flip test) drops it, as it changes the time."""
    export(checkpoint, tmp_path / "a")
    first_sha256 = zoo.info(NAME).weights.sha256
    path = zoo_dir / f"{NAME}.yaml"
    timing = {"cpu_ms": 12.5, "cpu_ms_measured": "benchmarks/latency.py --cards"}
    zoo.write_card(replace(zoo.read_card(path), complexity={**zoo.read_card(path).complexity, **timing}), path)
    export(shifted_checkpoint(checkpoint, tmp_path / "later.ckpt", 0.5), tmp_path / "b")
    card = zoo.info(NAME)
    assert card.weights.sha256 != first_sha256  # new weights
    assert card.complexity["cpu_ms"] == 12.5 and card.complexity["cpu_ms_measured"] == timing["cpu_ms_measured"]
    export(checkpoint, tmp_path / "c", "--set", "flip_test=false")
    assert "cpu_ms" not in zoo.info(NAME).complexity and "cpu_ms_measured" not in zoo.info(NAME).complexity


def test_export_records_the_starting_weights_through_a_cycle_from_a_zoo_model(checkpoint, zoo_dir, tmp_path):
    """The backbone file's recorded source names the start (MoveNet's TF.js graph here); a
    run initialised from that zoo model keeps the start, though its export replaces the card."""
    weights = tmp_path / "backbone.safetensors"
    save_file({"x": torch.zeros(1)}, str(weights), metadata={"source": "movenet-lightning.json"})
    data = torch.load(checkpoint, weights_only=True)
    data["hyper_parameters"] = {**data["hyper_parameters"], "backbone_weights": str(weights)}
    torch.save(data, tmp_path / "from_movenet.ckpt")
    export(tmp_path / "from_movenet.ckpt", tmp_path / "a")
    assert zoo.info(NAME).training["start"] == "MoveNet Lightning"
    data["hyper_parameters"] = {**data["hyper_parameters"], "backbone_weights": None, "init_from": f"zoo:{NAME}"}
    torch.save(data, tmp_path / "cycle.ckpt")
    export(tmp_path / "cycle.ckpt", tmp_path / "b")
    assert zoo.info(NAME).training["start"] == "MoveNet Lightning"
    weights.unlink()  # on another machine: the file's name
    data["hyper_parameters"] = {**data["hyper_parameters"], "backbone_weights": str(weights), "init_from": None}
    assert starting_weights(data["hyper_parameters"]) == "backbone.safetensors"
    assert starting_weights({"init_from": "runs/a/last.ckpt"}) == "last.ckpt"
    assert starting_weights({"pretrained": True, "backbone": "resnet18"}) == "timm resnet18 (pretrained)"
    assert starting_weights({"pretrained": False}) is None  # a random start says nothing


def test_the_start_of_a_cycle_from_a_built_in_model_exported_to_another_folder(monkeypatch, tmp_path):
    """``zoo:NAME`` resolved in the built-in zoo in training: its start is found there,
    though the export writes to a folder without that card."""
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    (tmp_path / "other").mkdir()
    hparams = {"init_from": "zoo:bulat-mobilenetv2-movenet-lsp"}
    assert starting_weights(hparams, zoo_dir=tmp_path / "other") == "MoveNet Lightning"
    assert starting_weights({"init_from": "zoo:no-such-model"}, zoo_dir=tmp_path / "other") == "zoo:no-such-model"


def test_export_set_changes_a_setting_and_refuses_an_unknown_or_network_changing_one(checkpoint, zoo_dir, tmp_path):
    export(checkpoint, tmp_path / "out", "--set", "flip_test=false")
    assert zoo.info(NAME).init_args["flip_test"] is False
    assert zoo.load(NAME).flip_test is False
    with pytest.raises(zoo.ZooError, match="--set nonsense: LuvizonSoftArgmax has no such argument"):
        zoo.export_checkpoint(checkpoint, NAME, tmp_path / "bad", set_args={"nonsense": 1})
    with pytest.raises(zoo.ZooError, match="weights do not fit"):
        zoo.export_checkpoint(checkpoint, NAME, tmp_path / "bad", set_args={"width": 16})
    assert not (tmp_path / "bad").exists()


def test_checkpoints_are_never_unpickled(tmp_path):
    torch.save({"state_dict": {}, "callbacks": FakeHub()}, tmp_path / "pickled.ckpt")
    with pytest.raises(CheckpointError, match="FakeHub.*weights_only=True only"):
        zoo.export_checkpoint(tmp_path / "pickled.ckpt", NAME, tmp_path / "out", update_zoo=False)


def test_readme_carries_hub_metadata_and_the_measured_metrics(checkpoint, zoo_dir, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(pck_report().to_dict()))
    export(checkpoint, tmp_path / "out", "--metrics", str(results), "--training-data", "lsp:train", "lspet:train",
           "--license", "bsd-3-clause", "--citation", "@article{x,\n  title={X}\n}", "--repo-id", REPO_ID)
    readme = HubModelCard.load(tmp_path / "out" / "README.md")
    data = readme.data
    assert data.library_name == "poselit" and data.pipeline_tag == "keypoint-detection"
    assert {"pose-estimation", "keypoint-detection", "pytorch-lightning"} <= set(data.tags)
    assert data.datasets == ["lsp", "lspet"] and data.license == "bsd-3-clause"
    metrics = {(r.dataset_type, r.dataset_split, r.metric_name): r.metric_value for r in data.eval_results}
    assert metrics == {("lsp", "test", "PCK@0.2 Total"): 61.23, ("lsp", "test", "PCK@0.2 AUC"): 30.5}
    assert data.eval_results[0].task_type == "keypoint-detection"
    assert data.eval_results[0].dataset_name == "Leeds Sports Pose"
    assert f"hf://{REPO_ID}" in readme.text and "@article{x," in readme.text and "| 61.23 |" in readme.text
    card = zoo.info(NAME)
    assert card.metrics[0]["results"]["PCK@0.2"]["Total"] == 61.23 and card.metrics[0]["records"] == 1000
    assert card.training["data"] == ["lsp:train", "lspet:train"] and card.citation.startswith("@article")
    assert card.weights.hub == zoo.HubLocation(REPO_ID)  # not published yet: no revision
    assert yaml.safe_load((zoo_dir / f"{NAME}.yaml").read_text())["citation"] == "@article{x,\n  title={X}\n}"


def test_export_measures_metrics_with_the_test_loop(checkpoint, zoo_dir, tmp_path, synthetic_lsp):
    card = zoo.export_checkpoint(checkpoint, NAME, tmp_path / "out", evaluate=[f"lsp:test@{synthetic_lsp}"])
    (entry,) = card.metrics
    assert entry["dataset"] == f"lsp:test@{synthetic_lsp}" and entry["records"] == 4
    assert "flip_test=True" in entry["measured_with"]
    assert {"PCK@0.2", "PCP@0.5"} <= set(entry["results"]) and 0 <= entry["results"]["PCK@0.2"]["Total"] <= 100
    assert card.check == {"dataset": f"lsp:test@{synthetic_lsp}", "records": 4, "metric": "PCK@0.2",
                          "value": entry["results"]["PCK@0.2"]["Total"]}  # 4 people: the check is the whole split
    model = zoo.load(NAME)
    assert card.complexity == {"parameters": count_parameters(model), "gflops": round(count_gflops(model), 3)}
    assert zoo.info(NAME).check == card.check and zoo.info(NAME).complexity == card.complexity  # written, read back


@pytest.mark.parametrize("first", [1, 3])
def test_evaluate_model_first_scores_only_the_first_people_in_whole_batches(synthetic_lsp, first):
    model, seen = tiny_luvizon(), []
    test_step = model.test_step
    model.test_step = lambda batch, *args: seen.extend(batch["index"].tolist()) or test_step(batch, *args)
    (report,) = zoo.evaluate_model(model, [f"lsp:test@{synthetic_lsp}"], first=first, batch_size=2)
    assert seen == list(range(first)) and report.records == 4  # the split has 4 people; the first were scored


def test_reexport_is_byte_identical_and_keeps_what_the_card_knew(checkpoint, zoo_dir, tmp_path):
    export(checkpoint, tmp_path / "a", "--description", "A tiny model.", "--license", "mit")
    first = zoo.info(NAME)
    export(checkpoint, tmp_path / "b")
    card = zoo.info(NAME)
    assert card.weights.sha256 == first.weights.sha256
    assert card.description == "A tiny model." and card.license == "mit"
    assert (zoo_dir / card.weights.file).resolve() == (tmp_path / "b" / "model.safetensors").resolve()


def test_export_finds_the_runs_config_in_the_checkpoint_or_above_it_or_says_it_did_not(checkpoint, tmp_path, capsys):
    """WandbLogger runs keep config.yaml in the logger's save_dir, three folders above the
    checkpoint; ``poselit fit`` also stores the configuration in every checkpoint."""
    ckpt = tmp_path / "save_dir" / "project" / "run-id" / "checkpoints" / "model.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(checkpoint.read_bytes())
    out = tmp_path / "out"
    export(ckpt, out, "--no-card")
    err = capsys.readouterr().err
    assert "no recipe.yaml in the export" in err and "--recipe FILE" in err and str(tmp_path / "save_dir") in err
    assert not (out / "recipe.yaml").exists() and "recipe.yaml" not in (out / "README.md").read_text()

    (tmp_path / "save_dir" / "config.yaml").write_text("trainer: {max_epochs: 3}\n")
    export(ckpt, out, "--no-card")
    assert (out / "recipe.yaml").read_text() == "trainer: {max_epochs: 3}\n"
    assert "recipe.yaml: the run's configuration" in capsys.readouterr().out

    data = torch.load(ckpt, weights_only=True)
    data["poselit_config"] = {"yaml": "trainer: {max_epochs: 9}\n", "recipes": ["recipes/x.yaml"]}
    torch.save(data, ckpt)
    card = zoo.export_checkpoint(ckpt, NAME, out, update_zoo=False)
    assert (out / "recipe.yaml").read_text() == "trainer: {max_epochs: 9}\n"  # the checkpoint's own first
    assert card.training["recipe"] == "recipes/x.yaml"
    data["poselit_config"]["recipes"] = [str(Path.cwd() / "recipes" / "x.yaml")]  # run from another folder
    torch.save(data, ckpt)
    assert zoo.export_checkpoint(ckpt, NAME, out, update_zoo=False).training["recipe"] == "recipes/x.yaml"

    data.pop("poselit_config")
    torch.save(data, ckpt)
    (tmp_path / "save_dir" / "config.yaml").unlink()
    zoo.export_checkpoint(ckpt, NAME, out, update_zoo=False)
    assert not (out / "recipe.yaml").exists()  # the earlier export's recipe is not left behind


def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a Markdown text."""
    return [block.split("```", 1)[0] for block in markdown.split("```python\n")[1:]]


def test_no_card_export_readme_example_runs_as_written(checkpoint, tmp_path, monkeypatch):
    """Without a zoo card the example must load the folder, not a zoo name that does not exist."""
    from poselit.predict import SAMPLES

    monkeypatch.chdir(tmp_path)
    export(checkpoint, Path("export/my-model"), "--no-card")
    (code,) = python_blocks((tmp_path / "export/my-model/README.md").read_text())
    assert 'from_zoo("export/my-model")' in code
    (tmp_path / "photo.jpg").write_bytes(next(SAMPLES.glob("*.jpg")).read_bytes())
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["pose"].keypoints.shape == (14, 2)


# --- the Hugging Face cache ------------------------------------------------------------------------


@pytest.fixture
def published(checkpoint, zoo_dir, tmp_path):
    """An export folder in a Hub cache at COMMIT, and a card naming only its Hub location."""
    out = tmp_path / "export"
    card = zoo.export_checkpoint(checkpoint, NAME, out, update_zoo=False)
    cache = tmp_path / "hf-cache"
    repo = hub_cache(cache, REPO_ID, out)
    weights = zoo.WeightsInfo(card.weights.sha256, card.weights.size, hub=zoo.HubLocation(REPO_ID, COMMIT))
    zoo.write_card(replace(card, weights=weights), zoo_dir / f"{NAME}.yaml")
    return SimpleNamespace(cache=cache, repo=repo, out=out)


def test_offline_load_from_the_hub_cache(published, crops, monkeypatch):
    (repo,) = scan_cache_dir(published.cache).repos  # the layout is the library's
    assert repo.repo_id == REPO_ID and {r.commit_hash for r in repo.revisions} == {COMMIT}
    expected = outputs(tiny_luvizon(), crops)
    for ref in (NAME, f"hf://{REPO_ID}", f"hf://{REPO_ID}@{COMMIT}"):
        model = zoo.load(ref, cache_dir=published.cache)
        assert all(torch.equal(a, b) for a, b in zip(outputs(model, crops), expected)), ref
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(published.cache))  # as HF_HOME / HF_HUB_CACHE set it
    assert zoo.load(NAME).num_joints == 14


def test_offline_and_not_cached_says_which_file_and_how_to_get_it(published, tmp_path, capsys):
    with pytest.raises(zoo.WeightsNotFoundError) as err:
        zoo.load(NAME, cache_dir=tmp_path / "empty")
    message = str(err.value)
    assert f"model.safetensors of hf://{REPO_ID}@{COMMIT}" in message and "HF_HUB_OFFLINE" in message
    assert f"poselit zoo download {NAME}" in message and "local export folder" in message
    assert main(["zoo", "download", f"hf://{REPO_ID}", "--cache-dir", str(tmp_path / "empty")]) == 2
    assert f"config.json of hf://{REPO_ID}@main" in capsys.readouterr().err


def test_corrupt_cached_file_is_rejected_and_not_loaded(published, monkeypatch):
    (blob,) = [p for p in (published.repo / "blobs").iterdir() if p.stat().st_size > 10_000]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    monkeypatch.setattr("poselit.zoo.loading.load_safetensors", lambda path, *a: pytest.fail(f"loaded {path}"))
    for ref in (NAME, f"hf://{REPO_ID}"):
        with pytest.raises(zoo.ChecksumError) as err:
            zoo.load(ref, cache_dir=published.cache)
        message = str(err.value)
        assert str(blob) in message and "was not loaded" in message and "--force" in message


def test_corrupt_export_folder_is_rejected(checkpoint, zoo_dir, tmp_path):
    out = tmp_path / "export"
    zoo.export_checkpoint(checkpoint, NAME, out)
    with open(out / "model.safetensors", "ab") as file:
        file.write(b"\0")
    for ref in (NAME, str(out)):
        with pytest.raises(zoo.ChecksumError, match="not loaded.*export"):
            zoo.load(ref)


def reweigh(card: Path, weights: Path) -> None:
    """Make ``card`` vouch for ``weights`` as they now are (sha256 and size), as a card
    written from an already damaged file would."""
    data = yaml.safe_load(card.read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    data["weights"].update(sha256=digest, size=weights.stat().st_size)
    card.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("damage", ["header", "truncated"])
def test_damaged_weights_whose_sha256_matches_end_in_one_line_naming_the_file(card, tmp_path, damage, capsys):
    weights = tmp_path / "export" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "header":
        data[20:60] = b"\xff" * 40
    else:
        del data[len(data) // 2 :]
    weights.write_bytes(bytes(data))
    reweigh(card, weights)
    with pytest.raises(zoo.ZooError, match="not a readable safetensors file") as err:
        zoo.load(NAME)
    assert "export/model.safetensors: " in str(err.value)
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), np.zeros((64, 48, 3), np.uint8))
    assert main(["predict", str(image), "--model", NAME, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("poselit: error: ") and "export/model.safetensors: " in error and "\n" not in error


def test_a_card_asking_for_an_absurd_width_fails_before_allocating_the_model(card):
    """width 200000 would need ~10^11 parameters: the shapes are compared on the meta device."""
    data = yaml.safe_load(card.read_text())
    data["init_args"]["width"] = 200_000
    card.write_text(yaml.safe_dump(data))
    with pytest.raises(zoo.ZooError, match=r"do not fit .*weights \[32, .*model \[200000") as err:
        zoo.load(NAME)
    assert str(card) in str(err.value)


def test_download_verifies_and_prints_the_path(published, capsys):
    assert main(["zoo", "download", NAME, "--cache-dir", str(published.cache)]) == 0
    assert f"snapshots/{COMMIT}/model.safetensors" in capsys.readouterr().out
    card, path = zoo.download(NAME, cache_dir=published.cache)
    assert path.name == "model.safetensors" and card.name == NAME


# --- publish -----------------------------------------------------------------------------------


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records the calls, answers like the Hub."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        return SimpleNamespace(oid=COMMIT, commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{COMMIT}")


def test_publish_uploads_the_folder_and_pins_the_commit(checkpoint, zoo_dir, tmp_path):
    out = tmp_path / "export"
    zoo.export_checkpoint(checkpoint, NAME, out, repo_id=REPO_ID)
    hub = FakeHub()
    result = zoo.publish(out, api=hub)
    assert hub.calls[0] == ("create_repo", REPO_ID, {"repo_type": "model", "private": False, "exist_ok": True})
    upload = hub.calls[1][1]
    assert upload["repo_id"] == REPO_ID and Path(upload["folder_path"]) == out and upload["repo_type"] == "model"
    assert sorted(upload["allow_patterns"]) == ["README.md", "config.json", "model.safetensors"]
    assert result.revision == COMMIT and result.card == zoo_dir / f"{NAME}.yaml"
    assert zoo.info(NAME).weights.hub == zoo.HubLocation(REPO_ID, COMMIT, "model.safetensors")
    assert f"hf://{REPO_ID}@0123456" in (zoo_dir / "README.md").read_text() and zoo.table_is_current()


def test_publish_dry_run_lists_files_and_calls_nothing(checkpoint, zoo_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "export"
    zoo.export_checkpoint(checkpoint, NAME, out)
    monkeypatch.setattr("poselit.zoo.publishing.HfApi", lambda **kwargs: pytest.fail("the Hub was called"))
    assert main(["zoo", "publish", str(out), "--repo-id", REPO_ID, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"would upload to https://huggingface.co/{REPO_ID}" in printed
    assert all(name in printed for name in ("README.md", "config.json", "model.safetensors"))
    assert zoo.info(NAME).weights.hub is None
    assert main(["zoo", "publish", str(out)]) == 2  # no repository known
    assert "--repo-id" in capsys.readouterr().err


# --- cards, names, versions ------------------------------------------------------------------------


@pytest.fixture
def card(checkpoint, zoo_dir, tmp_path):
    zoo.export_checkpoint(checkpoint, NAME, tmp_path / "export")
    return zoo_dir / f"{NAME}.yaml"


def test_unknown_name_lists_close_names(card):
    with pytest.raises(zoo.ZooError, match=f"unknown zoo model 'luvizon-tiny-synt'.*close names: {NAME}"):
        zoo.load("luvizon-tiny-synt")
    with pytest.raises(zoo.ZooError, match=f"hf://{REPO_ID}"):
        zoo.info(REPO_ID)


def test_cards_and_configs_of_a_newer_version_are_refused(card, tmp_path):
    data = yaml.safe_load(card.read_text())
    card.write_text(yaml.safe_dump({**data, "format_version": 3, "poselit_version": "9.0"}))
    newer = r"format_version 3 .*newer poselit \(9.0\).*pip install -U poselit"
    with pytest.raises(zoo.IncompatibleVersionError, match=newer):
        zoo.load(NAME)
    config = tmp_path / "export" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "format_version": 3}))
    with pytest.raises(zoo.IncompatibleVersionError, match="config.json"):
        zoo.load(str(tmp_path / "export"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"weights": {"sha256": "abc", "size": 1, "file": "x"}}, "field 'weights.sha256' must be 64 lowercase hex"),
        ({"weights": {"sha256": "a" * 64, "size": 1}}, "needs a 'file'"),
        ({"init_args": [1]}, "field 'init_args' must be a mapping"),
        ({"name": "other"}, "must be named after it"),
        ({"class_path": "json.JSONDecoder"}, "does not name a PoseLitModule subclass"),
        ({"class_path": "not_imported_pkg.Model"}, "not_imported_pkg is not imported"),
        ({"init_args": {"num_blocks": 1, "wings": 2}}, "takes no argument 'wings'"),
        ({"input": {"padding": "wide"}}, r"field 'input.padding' must be a number > 0 .*got 'wide'"),
        ({"input": {"padding": 0}}, r"field 'input.padding' must be a number > 0 .*got 0"),
        ({"input": {"fill": 300}}, r"field 'input.fill' must be an integer in \[0, 255\] .*got 300"),
        ({"complexity": {"parameters": "2.9 M"}}, r"field 'complexity.parameters' must be an integer >= 0, got '2.9 M'"),
        ({"complexity": {"gflops": True}}, r"field 'complexity.gflops' must be a number >= 0, got True"),
        ({"complexity": {"cpu_ms": -1.0}}, r"field 'complexity.cpu_ms' must be a number >= 0, got -1.0"),
        ({"complexity": {"cpu_ms_measured": 3}}, r"field 'complexity.cpu_ms_measured' must be a string, got 3"),
    ],
)
def test_card_errors_name_the_file_and_field(card, change, message):
    card.write_text(yaml.safe_dump({**yaml.safe_load(card.read_text()), **change}))
    with pytest.raises(zoo.ZooError, match=message) as err:
        zoo.load(NAME)
    assert str(card) in str(err.value)


def test_empty_zoo_and_missing_folder(zoo_dir, monkeypatch, capsys):
    assert zoo.list() == [] and zoo.all_cards() == []
    assert main(["zoo", "list"]) == 0 and "no models in" in capsys.readouterr().out
    monkeypatch.setenv(zoo.ZOO_ENV, str(zoo_dir / "missing"))
    with pytest.raises(zoo.ZooError, match="missing .*POSELIT_ZOO.* does not exist"):
        zoo.list()


def test_cli_list_info_and_table_check(card, zoo_dir, capsys):
    assert main(["zoo", "list"]) == 0
    listing = capsys.readouterr().out
    assert NAME in listing and "LuvizonSoftArgmax" in listing and "64x64" in listing
    assert main(["zoo", "info", NAME]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["class_path"].endswith("LuvizonSoftArgmax")
    assert main(["zoo", "table", "--check"]) == 0
    (zoo_dir / "README.md").write_text("stale")
    assert main(["zoo", "table", "--check"]) == 1
    assert main(["zoo", "table"]) == 0 and zoo.table_is_current()


def test_the_builtin_zoo_table_is_current(monkeypatch):
    """zoo/README.md is the table of the cards beside it: run 'poselit zoo table' after editing a card."""
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    assert zoo.zoo_folder() == zoo.builtin_zoo_dir()
    cards = zoo.all_cards()  # every built-in card reads and checks
    assert zoo.table_is_current(), "zoo/README.md is stale: run 'poselit zoo table'"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert zoo.markdown_table(cards) in readme, "README.md's zoo table is stale: copy it from zoo/README.md"
    from poselit.zoo.listing import comparison_table

    compared = [card for card in cards if fnmatch.fnmatch(card.name, "*-mobilenetv2-*lsp")]
    assert comparison_table(compared) in readme, (
        "README.md's results table is stale: paste the output of poselit zoo compare '*-mobilenetv2-*lsp'"
    )
    for card in cards:
        assert card.weights.file is None or card.weights_path().is_file() or card.weights.hub, card.name



def test_comparison_table_puts_the_zoo_models_beside_the_papers(monkeypatch, capsys):
    """``poselit zoo compare``: the README's results table, from the cards and poselit.tables."""
    from poselit.tables import published
    from poselit.zoo.listing import comparison_table

    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    cards = [zoo.info(name) for name in zoo.list("*-mobilenetv2-lsp")]
    lines = comparison_table(cards).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {row[0].strip("`"): row for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    for card in cards:
        results = next(m["results"] for m in card.metrics if m["dataset"] == "lsp:test")
        assert rows[card.name][header.index("PCK@0.2")] == f"{results['PCK@0.2']['Total']:.1f}"
        assert rows[card.name][header.index("Wrist")] == f"{results['PCK@0.2']['Wrist']:.1f}"
        assert rows[card.name][header.index("PCP@0.5")] == f"{results['PCP@0.5']['Total']:.1f}"
        assert rows[card.name][header.index("start")] == card.training["start"]  # every shipped card says it
    assert rows["bulat-mobilenetv2-lsp"][header.index("start")] == "ImageNet-1k"
    paper = rows["Bulat & Tzimiropoulos 2016 (paper)"]
    assert paper[header.index("PCK@0.2")] == f"{published('bulat2016/table7-residual').values['Total']:.1f}"
    assert paper[header.index("PCP@0.5")] == f"{published('bulat2016/lsp-pcp').values['Total']:.1f}"
    assert len(rows) == len(cards) + 3  # one headline row per paper
    timed = replace(cards[0], complexity={**cards[0].complexity, "cpu_ms": 23.46})
    assert "| 23 |" in comparison_table([timed])  # the card's measured latency, when it has one
    boxed = next(m for m in cards[0].metrics if "crop" not in m)
    whole = {**boxed, "crop": "whole image", "results": {"PCK@0.2": {**boxed["results"]["PCK@0.2"], "Total": 12.34}}}
    row = comparison_table([replace(cards[0], metrics=(whole, boxed))]).splitlines()[2].strip("|").split("|")
    assert header[-1] == "PCK@0.2, whole image" and row[-1].strip() == "12.3"  # from its own entry, wherever it is
    assert row[header.index("PCK@0.2")].strip() == f"{boxed['results']['PCK@0.2']['Total']:.1f}"  # the box's
    assert main(["zoo", "compare", "*-mobilenetv2-lsp"]) == 0 and capsys.readouterr().out == comparison_table(cards)
    assert main(["zoo", "compare", "no-such-*"]) == 2 and "no zoo model matches no-such-*" in capsys.readouterr().err
    assert main(["zoo", "compare", "--dataset", "coco:val"]) == 2 and "no comparison defined" in capsys.readouterr().err


def test_a_metrics_entry_states_a_known_crop_and_the_hub_names_it(zoo_dir, capsys):
    """``crop`` is the protocol's ``box`` (the default) or ``whole image``; anything else is
    refused in one line naming the file and the field; the Hub's ``model-index`` and the
    metric tables name the whole-image entry's crop."""
    from poselit.zoo.publishing import eval_results, metrics_tables

    shipped = Path(__file__).parents[1] / "zoo" / "bulat-mobilenetv2-lsp.yaml"
    data = yaml.safe_load(shipped.read_text())
    data["metrics"] = [data["metrics"][0], {**data["metrics"][0], "crop": "whole image"}]
    card = zoo.ModelCard.from_dict(data, Path("card.yaml"))
    assert [zoo.metrics_crop(m) for m in card.metrics] == ["box", "whole image"]
    names = [r.metric_name for r in eval_results(card)]
    assert "PCK@0.2 Total" in names and "PCK@0.2 Total, whole image" in names
    assert any(", whole image: PCK@0.2" in table.title for table in metrics_tables(card))
    data["metrics"][1]["crop"] = "whole"
    with pytest.raises(zoo.ZooError, match=r"card.yaml: field 'metrics\[1\].crop' must be one of \['box', 'whole image'\], got 'whole'"):
        zoo.ModelCard.from_dict(data, Path("card.yaml"))


def test_compare_names_the_card_whose_complexity_is_not_a_number(zoo_dir, capsys):
    """A card's ``complexity.parameters`` written as text is refused when the card is read,
    in one line naming the file and the field (it was a TypeError deep in the table)."""
    shipped = Path(__file__).parents[1] / "zoo" / "bulat-mobilenetv2-lsp.yaml"
    data = yaml.safe_load(shipped.read_text())
    data["complexity"]["parameters"] = "2.9 M"
    card = zoo_dir / shipped.name
    card.write_text(yaml.safe_dump(data))
    assert main(["zoo", "compare"]) == 2
    err = capsys.readouterr().err
    assert str(card) in err and "field 'complexity.parameters' must be an integer >= 0, got '2.9 M'" in err

# --- the whole path --------------------------------------------------------------------------------


@pytest.mark.slow
def test_smoke_recipe_checkpoint_exports_and_predicts_offline_by_name(zoo_dir, tmp_path, monkeypatch):
    """The zoo walk-through of docs/zoo.md: train with the smoke recipe, export, load by name, predict."""
    from poselit.data import read_annotations
    from poselit.data.dataset import PoseDataset
    from poselit.data.synthetic import write_synthetic_lsp
    from poselit.geometry import apply_affine
    from poselit.cli.lightning import run_lightning

    monkeypatch.setenv("WANDB_MODE", "disabled")
    data = write_synthetic_lsp(tmp_path / "synth", num_images=8, size=(96, 72), seed=1)
    run = tmp_path / "run"
    run_lightning([
        "fit", "-c", str(Path(__file__).resolve().parents[1] / "recipes/smoke/belagiannis.yaml"),
        f"--data.train=[lsp:train@{data}]", f"--data.val=[lsp:test@{data}]", "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={run}", f"--trainer.logger.init_args.save_dir={run}",
        "--trainer.enable_progress_bar=false",
    ])
    (last,) = run.rglob("last.ckpt")
    export(last, tmp_path / "export", "--ship", "--evaluate", f"lsp:test@{data}")
    assert (tmp_path / "export" / "recipe.yaml").is_file()  # LightningCLI's config.yaml of the run
    card = zoo.info(NAME)
    assert card.class_path.endswith("BelagiannisRecurrent") and card.training["data"] == [f"lsp:train@{data}"]
    assert card.input["padding"] == 1.25 and card.metrics[0]["dataset"] == f"lsp:test@{data}"
    readme = HubModelCard.load(tmp_path / "export" / "README.md").data
    assert readme.eval_results[0].dataset_name == f"lsp:test@{data}"  # not "Leeds Sports Pose": generated data
    assert (zoo_dir / f"{NAME}.safetensors").is_file()

    model = zoo.load(NAME)
    test = read_annotations(f"lsp:test@{data}")
    sample = PoseDataset(test, model.input_size, train=False)[0]
    with torch.no_grad():
        out = model.predict_poses(sample["image"][None])
    keypoints = apply_affine(out["keypoints"][0].float(), sample["affine"].float())  # original-image pixels
    assert keypoints.shape == (14, 2) and torch.isfinite(keypoints).all()


SHIPPED = [card for card in zoo.all_cards(zoo.builtin_zoo_dir()) if not card.name.endswith("-demo")]
"""The real models of the built-in zoo (the demo model only serves tests and ``poselit demo``)."""


@pytest.mark.parametrize("card", SHIPPED, ids=lambda card: card.name)
def test_shipped_cards_hold_full_test_set_results_complexity_and_a_check(card):
    assert any(entry["dataset"] == "lsp:test" and entry["records"] == 1000 for entry in card.metrics)
    assert card.complexity["parameters"] > 0 and card.complexity["gflops"] > 0
    assert card.check["dataset"] == "lsp:test" and card.check["records"] == 100


@pytest.mark.parametrize("card", SHIPPED, ids=lambda card: card.name)
def test_shipped_models_reproduce_their_cards_check_on_the_first_test_people(card, data_root):
    model = zoo.load(card.name)
    assert card.complexity["parameters"] == count_parameters(model)
    (report,) = zoo.evaluate_model(model, [card.check["dataset"]], data_root, first=card.check["records"])
    result = next(r for r in report.results if r.metric == card.check["metric"])
    assert result.columns["Total"] == pytest.approx(card.check["value"], abs=0.5)


@pytest.mark.parametrize("card", zoo.all_cards(zoo.builtin_zoo_dir()), ids=lambda card: card.name)
def test_shipped_cards_load_unchanged_with_one_input_spec(card):
    """The shipped cards load with a spec that every field of their ``input`` describes; those
    of format 1 (the input in ``init_args`` too) with exactly the float32 normalisation and
    size of their ``init_args`` (``input`` rounded means to 6 decimals), those of format 2
    (the input once, in ``input``) with the input's."""
    model = zoo.load(card.name)
    stated = card.init_args if "mean" in card.init_args else {**card.input, "input_size": card.input["size"]}
    for key in ("mean", "std"):
        assert torch.equal(getattr(model, key).flatten(), torch.tensor(stated[key], dtype=torch.float32))
    assert model.input_spec.size == tuple(stated["input_size"]) and model.input_spec.differences(card.input) == []
