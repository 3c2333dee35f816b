"""The contract every registered method keeps, checked for each entry of the registry.

Parametrized over :data:`poselit.models.METHODS` (as timm's tests run over
``list_models()``), each method built with its registry entry's ``tiny`` arguments: the
output contract, the loss and its gradients, the flip test, video prediction, and the
export -> load round trip, and the arguments: each method declares its own and inherits the
shared ones (``**kwargs``), which LightningCLI and the zoo's card check both see. A fourth
method needs one model file and one registry entry; this module shows it with a method
registered here only (``tests/tiny_models.py``: a class with one argument of its own, the
rest inherited), which passes every contract test without any other file changing.
"""

from __future__ import annotations

import inspect

import pytest
import pytorch_lightning as pl
import torch

from poselit import zoo
from poselit.models import METHODS, Method, constructor_arguments, register_method
from poselit.codecs import HeatmapCodec
from poselit.geometry import flip_back_keypoints
from poselit.models.base import PoseLitModule
from poselit.skeletons import SKELETONS
from poselit.tables import PAPERS
from tiny_models import as_if_trained

TEST_METHOD = register_method(
    Method("tiny", "tiny_models.TinyHeatmapModel", tiny={"channels": 8, "input_size": (32, 32)})
)
"""A method of the tests: its class in tests/tiny_models.py, its entry here, nothing else."""


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)


@pytest.fixture(scope="module", params=list(METHODS.values()), ids=list(METHODS))
def method(request) -> Method:
    return request.param


@pytest.fixture(scope="module")
def model(method) -> PoseLitModule:
    """The method's tiny instance in eval mode, as if trained a little (no argmax ties)."""
    torch.manual_seed(0)
    model = method.load()(**method.tiny)
    return as_if_trained(model, images(model, 4, seed=1))


def images(model: PoseLitModule, batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, *model.input_size), dtype=torch.uint8, generator=generator)


def batch(model: PoseLitModule, size: int = 2) -> dict[str, torch.Tensor]:
    """A training batch of random crops with random poses, some joints not annotated."""
    generator = torch.Generator().manual_seed(2)
    height, width = model.input_size
    keypoints = torch.rand(size, model.num_joints, 2, generator=generator) * torch.tensor([width - 1, height - 1])
    visibility = torch.randint(0, 3, (size, model.num_joints), generator=generator)
    return {"image": images(model, size, seed=3), "keypoints": keypoints, "visibility": visibility}


def test_the_registry_names_poselit_modules_and_papers(method):
    cls = method.load()
    assert issubclass(cls, PoseLitModule) and cls.__name__ == method.class_name
    assert method.paper is None or method.paper in PAPERS


def test_every_shared_argument_is_inherited_and_reaches_lightning_cli(method):
    """The method takes the shared arguments through ``**kwargs`` (LightningCLI links
    ``input_size`` and ``skeleton``), and LightningCLI's parser resolves the forwarding:
    ``--help`` and ``--print_config`` show every argument of the hierarchy, each with the
    documentation of the class that declares it."""
    from jsonargparse import ArgumentParser

    cls = method.load()
    arguments = constructor_arguments(cls)
    shared = set(inspect.signature(PoseLitModule.__init__).parameters) - {"self"}
    assert arguments is not None and shared <= arguments, shared - set(arguments or ())
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "model")
    docs = {action.dest.removeprefix("model."): action.help for action in parser._actions}
    undocumented = sorted(name for name in arguments if not docs.get(name))
    assert not undocumented, f"arguments the parser lacks or shows without a description: {undocumented}"


def test_constructor_arguments_follow_kwargs_up_the_hierarchy():
    """Own arguments, then the parent's through ``**kwargs``, to the first constructor without
    them; a chain that ends in ``**kwargs`` (``object``'s included) takes anything: ``None``."""

    class Base:
        def __init__(self, a: int = 1, b: int = 2) -> None: ...

    class Middle(Base):
        def __init__(self, *, c: int = 3, **kwargs) -> None:
            super().__init__(**kwargs)

    class Leaf(Middle):
        def __init__(self, *, d: int = 4, b: int = 5, **kwargs) -> None:
            super().__init__(b=b, **kwargs)

    class Open:
        def __init__(self, **kwargs) -> None: ...

    assert constructor_arguments(Leaf) == {"a", "b", "c", "d"} and constructor_arguments(Base) == {"a", "b"}
    assert constructor_arguments(Open) is None


def test_a_card_argument_no_class_of_the_hierarchy_takes_is_refused(method):
    """The zoo checks a card's ``init_args`` against the whole hierarchy: inherited arguments
    are accepted, anything else refused, even from a class whose constructor takes ``**kwargs``."""
    from poselit.zoo.loading import build_module

    model = build_module(method.class_path, {**method.tiny, "flip_test": False}, "card")
    assert type(model) is method.load() and model.flip_test is False
    assert dict(model.hparams).items() >= {**method.tiny, "flip_test": False}.items()  # own and inherited, recorded
    with pytest.raises(zoo.ZooError, match="takes no argument 'not_an_argument'"):
        build_module(method.class_path, {**method.tiny, "not_an_argument": 1}, "card")


def test_output_contract(model):
    """``keypoints`` (B, K, 2) in input pixels and ``scores`` (B, K), with and without the
    flip test, and every output the codec names; heatmap methods decode their final
    ``heatmaps`` to those keypoints."""
    with torch.no_grad():
        plain = model.predict_poses(images(model, 2), flip_test=False)
        flipped = model.predict_poses(images(model, 2), flip_test=True)
    k = model.num_joints
    for out in (plain, flipped):
        assert out["keypoints"].shape == (2, k, 2) and out["scores"].shape == (2, k)
        assert torch.isfinite(out["keypoints"]).all() and torch.isfinite(out["scores"]).all()
        height, width = model.input_size
        assert (out["keypoints"] >= -0.5).all() and (out["keypoints"][..., 0] <= width - 0.5).all()
        assert (out["keypoints"][..., 1] <= height - 0.5).all()
        assert set(model.codec.outputs) <= set(out)
    if isinstance(model.codec, HeatmapCodec):
        assert plain["heatmaps"].shape[:2] == (2, k)
        keypoints, scores = model.decode_heatmaps(plain["heatmaps"])
        torch.testing.assert_close((keypoints, scores), (plain["keypoints"], plain["scores"]))


def test_heatmap_methods_read_their_own_targets_back(model):
    """A heatmap method's codec places the maps of ``forward`` on the input (its stride) and
    decodes the targets it encodes for the loss back to their joints: one geometry for
    training and prediction."""
    if not isinstance(model.codec, HeatmapCodec):
        pytest.skip("a coordinate method: no heatmap codec")
    data = batch(model)
    with torch.no_grad():
        maps = model(model.normalize(data["image"]))["heatmaps"]
    assert tuple(maps.shape[-2:]) == tuple(side // model.codec.stride for side in model.input_size)
    targets = model.codec.encode(data["keypoints"], torch.full_like(data["visibility"], 2), maps.shape[-2:])
    keypoints, scores = model.codec.decode(targets)
    assert (keypoints - data["keypoints"]).abs().max() <= 0.5 * model.codec.stride  # argmax + refinement
    assert ((scores > 0.5) & (scores <= 1 + 1e-6)).all()  # the peak is decoded as 1


def test_loss_is_finite_and_reaches_the_network(model):
    model.train()
    try:
        data = batch(model)
        losses = model.loss(model(model.normalize(data["image"])), data)
        assert losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])
        model.zero_grad()
        losses["loss"].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


PINNED_LOSSES: dict[str, tuple[str, dict, dict[str, float]]] = {
    # case: (method, arguments beside its tiny ones, loss terms on the batch of pinned_batch)
    "bulat": (
        "bulat", {},
        {"detection": 0.7492949, "regression": 0.172874, "loss": 0.9221689},
    ),
    "bulat-detector": (
        "bulat", {"stage": "detector", "detection_radius": 3.0},
        {"detection": 0.749163, "loss": 0.749163},
    ),
    "belagiannis": (
        "belagiannis", {},
        {"loss": 8638.106, "keypoints": 4732.813, "limbs": 3905.293, "stage0": 4307.15, "stage1": 4330.956},
    ),
    "belagiannis-ignore": (
        "belagiannis", {"occlusion": "ignore", "heatmap_std": 1.7, "limb_std_along": 0.2},
        {"loss": 5577.462, "keypoints": 3584.027, "limbs": 1993.435, "stage0": 2778.261, "stage1": 2799.201},
    ),
    "belagiannis-exclude": (
        "belagiannis", {"occlusion": "exclude"},
        {"loss": 3636.252, "keypoints": 2092.083, "limbs": 1544.168, "stage0": 1823.251, "stage1": 1813.0},
    ),
    "luvizon": (
        "luvizon", {"heatmap_regularization": 0.1, "regularization_sigma": 1.5},
        {"loss": 2.581586, "coords": 1.49364, "presence": 1.03317, "divergence": 0.5477607},
    ),
}
"""Loss terms of fixed models on a fixed batch, computed before the codecs took over every
method's targets (issue 25): refactoring targets must leave every training loss as it was."""


def pinned_batch(model: PoseLitModule) -> dict[str, torch.Tensor]:
    """Three crops with random poses, some joints outside the crop, some not annotated."""
    generator = torch.Generator().manual_seed(6)
    height, width = model.input_size
    span = torch.tensor([width + 16.0, height + 16.0])
    keypoints = torch.rand(3, model.num_joints, 2, generator=generator) * span - 8
    visibility = torch.randint(0, 3, (3, model.num_joints), generator=generator)
    return {"image": images(model, 3, seed=7), "keypoints": keypoints, "visibility": visibility}


@pytest.mark.parametrize("case", list(PINNED_LOSSES))
def test_losses_on_a_fixed_batch_are_pinned(case):
    """Targets (disks, Gaussians, limb maps, normalised coordinates, regulariser maps) and
    loss weights as they were: the same model and batch give the recorded loss terms."""
    name, extra, expected = PINNED_LOSSES[case]
    method = METHODS[name]
    torch.manual_seed(0)
    model = method.load()(**{**method.tiny, **extra})
    model = as_if_trained(model, images(model, 4, seed=1))
    data = pinned_batch(model)
    with torch.no_grad():
        losses = model.loss(model(model.normalize(data["image"])), data)
    torch.testing.assert_close({k: float(v) for k, v in losses.items()}, expected, rtol=1e-4, atol=0)


def test_flip_test_is_mirror_equivariant(model):
    """The flip-tested pose of a mirrored image is the mirrored flip-tested pose (joints
    swapped left/right), whatever the method."""
    image = images(model, 1, seed=4)
    with torch.no_grad():
        out = model.predict_poses(image, flip_test=True)
        mirrored = model.predict_poses(image.flip(-1), flip_test=True)
    width = model.input_size[1]
    expected = flip_back_keypoints(out["keypoints"], model.flip_index, width)
    torch.testing.assert_close(mirrored["keypoints"], expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(mirrored["scores"], out["scores"][:, model.flip_index], atol=1e-4, rtol=1e-4)


def test_flip_test_in_one_batch_equals_two_calls(model):
    """``predict_poses`` runs the mirrored images in the originals' batch: the result is the
    codec's merge of two separate calls, and the raw outputs are the unmirrored call's."""
    image = images(model, 3, seed=6)
    with torch.no_grad():
        out = model.predict_poses(image, flip_test=True)
        inputs = model.normalize(image)
        plain, mirrored = model(inputs), model(inputs.flip(-1))
    keypoints, scores = model.codec.merge_flipped(plain, mirrored, model.flip_index, model.input_size[1])
    torch.testing.assert_close(out["keypoints"], keypoints, atol=1e-4, rtol=0)
    torch.testing.assert_close(out["scores"], scores, atol=1e-5, rtol=1e-5)
    for name in set(plain) - {"keypoints", "scores"}:
        torch.testing.assert_close(out[name], plain[name], atol=1e-5, rtol=1e-5, msg=name)


def mirrored_name(name: str) -> str:
    """The joint a horizontal mirror turns ``name`` into, read from the name alone."""
    for side, other in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(side):
            return other + name[len(side):]
    return name


@pytest.mark.parametrize("skeleton", list(SKELETONS.values()), ids=list(SKELETONS))
def test_flip_index_swaps_the_named_left_and_right_joints(skeleton):
    """Each skeleton's flip index sends every joint to its mirror by name (``left_wrist`` <->
    ``right_wrist``, centre joints to themselves), whatever way it was derived."""
    flipped = [skeleton.joints[i] for i in skeleton.flip_index]
    assert flipped == [mirrored_name(name) for name in skeleton.joints]
    assert flipped[skeleton.index("left_wrist")] == "right_wrist" and flipped[skeleton.index("right_wrist")] == "left_wrist"


def test_flip_test_swaps_joints_by_their_names(model):
    """A network that is right about a person is right about their mirror image too: there
    it sees each joint where the named partner was, mirrored (the left wrist where the right
    wrist was). The flip test of such a network must return its unmirrored pose exactly,
    which it does only if it swaps channels by the named pairs (mirror equivariance alone,
    above, holds for any left/right swap, none included). A stand-in network that tells the
    mirrored input by its bright half plays that part, for each method's output kind."""
    height, width = model.input_size
    names = model.skeleton.joints
    swap = torch.tensor([names.index(mirrored_name(name)) for name in names])
    image = torch.zeros(1, 3, height, width, dtype=torch.uint8)
    image[..., : width // 2] = 255  # bright on the left; on the right once mirrored
    generator = torch.Generator().manual_seed(5)

    def mirror(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the network sees on the mirrored image: partners' joints, mirrored."""
        if isinstance(model.codec, HeatmapCodec):
            return {"heatmaps": outputs["heatmaps"][:, swap].flip(-1) * 1.25}  # surer of the mirror
        keypoints = outputs["keypoints"][:, swap].clone()
        keypoints[..., 0] = (width - 1) - keypoints[..., 0]
        return {"keypoints": keypoints, "scores": outputs["scores"][:, swap]}

    k = model.num_joints
    if not isinstance(model.codec, HeatmapCodec):
        seen = {"keypoints": torch.rand(1, k, 2, generator=generator) * torch.tensor([width - 1.0, height - 1.0]),
                "scores": torch.linspace(0.2, 0.9, k)[None]}
        expected = seen["keypoints"], seen["scores"]
    else:
        stride = model.codec.stride
        cells = torch.randperm((height // stride) * (width // stride), generator=generator)[:k]
        peaks = torch.zeros(1, k, (height // stride) * (width // stride))
        peaks[0, torch.arange(k), cells] = 1.0  # one distinct map pixel per joint
        peaks = peaks.view(1, k, height // stride, width // stride)
        seen = {"heatmaps": 0.8 * peaks}
        expected = model.codec.decode(0.9 * peaks)  # (0.8 + 1.0) / 2 where the joint is

    def network(inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image, as a network is: the mirrored pose where the right half is brighter."""
        per_image = [mirror(seen) if x[..., width // 2 :].mean() > x[..., : width // 2].mean() else seen
                     for x in inputs]
        return {key: torch.cat([outputs[key] for outputs in per_image]) for key in per_image[0]}

    model.forward = network
    try:
        with torch.no_grad():
            out = model.predict_poses(image, flip_test=True)
    finally:
        del model.forward
    torch.testing.assert_close((out["keypoints"], out["scores"]), expected, atol=1e-4, rtol=1e-4)


def test_export_round_trip(method, model, tmp_path):
    """Lightning checkpoint -> export folder -> ``zoo.load``: the same class, the same outputs."""
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    card = zoo.export_checkpoint(tmp_path / "model.ckpt", f"{method.name}-test", tmp_path / "export", update_zoo=False)
    assert card.class_path == method.class_path
    loaded = zoo.load(str(tmp_path / "export"), expect=method.load())
    with torch.no_grad():
        expected, actual = model.predict_poses(images(model, 2)), loaded.predict_poses(images(model, 2))
    assert torch.equal(actual["keypoints"], expected["keypoints"]) and torch.equal(actual["scores"], expected["scores"])


def test_a_method_registered_by_the_tests_is_one_of_them():
    assert METHODS["tiny"] is TEST_METHOD and TEST_METHOD.load().__module__ == "tiny_models"
    with pytest.raises(ValueError, match="'tiny' .* is registered already"):
        register_method(TEST_METHOD)


def test_video_prediction_tracks_through_a_clip(method, model, tmp_path):
    """``poselit predict VIDEO``'s engine runs every method: an annotated video with every
    frame and one JSON line per frame with the method's joints, smoothing on."""
    import json

    import cv2
    import numpy as np

    from poselit.predict import Predictor
    from poselit.smoothing import OneEuroFilter
    from poselit.video import FOURCC, predict_video

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*FOURCC), 10.0, (48, 64))
    rng = np.random.default_rng(0)
    for _ in range(4):
        writer.write(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    writer.release()
    result = predict_video(Predictor(model), clip, tmp_path / "out", smoothing=OneEuroFilter(), model=method.name,
                           progress=False)
    lines = [json.loads(line) for line in result.frames_file.read_text().splitlines()]
    assert (result.frames, result.ended_early) == (4, False) and [line["frame"] for line in lines] == [0, 1, 2, 3]
    for line in lines:
        (person,) = line["people"]
        assert line["model"] == method.name and len(person["keypoints"]) == model.num_joints
        assert np.isfinite(person["keypoints"]).all()
    capture = cv2.VideoCapture(str(result.video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    capture.release()

@pytest.mark.gpu
def test_every_method_trains_validates_and_predicts_on_cuda(method, model, synthetic_lsp, monkeypatch):
    """Two bf16-mixed training steps and a validation on the GPU through the real data
    module (every tensor a method makes, targets, grids, metrics, follows the model to the
    device); then the float32 predictions of a trained-looking model equal the CPU's."""
    import copy

    from poselit.data.datamodule import PoseDataModule

    torch.manual_seed(0)
    fresh = method.load()(**method.tiny)
    data = PoseDataModule(train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:test@{synthetic_lsp}"],
                          input_size=list(fresh.input_size), batch_size=2, num_workers=0)
    trainer = pl.Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=2, limit_val_batches=1,
                         num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(fresh, datamodule=data)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["val/pck"])

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as on the CPU
    crops = images(model, 2)
    with torch.no_grad():
        on_gpu = copy.deepcopy(model).cuda().predict_poses(crops.cuda())["keypoints"]
        on_cpu = model.predict_poses(crops)["keypoints"]
    assert on_gpu.is_cuda and torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-2)
