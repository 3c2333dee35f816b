"""Predictor, ``poselit predict`` and ``poselit demo``: every input type, boxes, flip test,
bad input, the JSON schema."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import poselit.zoo
from poselit.cli import main
from poselit.cli.predict import DEMO_IMAGES, DEMO_MODEL
from poselit.data import read_annotations
from poselit.data.dataset import ImageReadError, PoseDataset
from poselit.data.records import PoseRecord
from poselit.data.transforms import AugmentParams
from poselit.evaluate import evaluate_poses
from poselit.geometry import PIXEL_STD, apply_affine, crop_affine, invert_affine
from poselit.predict import (
    SAMPLES,
    InputError,
    Predictor,
    joints_box,
    load_image,
    person_box,
    smallest_joints_box,
    whole_image_box,
)
from poselit.skeletons import LSP
from poselit.visualize import draw_heatmaps
from tiny_models import ConstantModel, MemorizingHeatmapModel

SIZE = (64, 64)


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)


def whole_image_record(record: PoseRecord, height: int, width: int) -> PoseRecord:
    """The record with the box the predictor uses without one: the padded crop is the image
    (computed here from the documented rule, independently of ``whole_image_box``)."""
    return dataclasses.replace(
        record, center=np.array([(width - 1) / 2, (height - 1) / 2]), scale=max(height, width) / (PIXEL_STD * 1.25)
    )


def memorised(records: list[PoseRecord], flips: tuple[bool, ...] = (False, True)) -> MemorizingHeatmapModel:
    """A model that has memorised the TRAINING crops (PoseDataset) of ``records``."""
    dataset = PoseDataset(records, SIZE)
    samples = [dataset.sample(i, AugmentParams(flip=f)) for i in range(len(records)) for f in flips]
    batch = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
    torch.manual_seed(0)
    return MemorizingHeatmapModel(skeleton=records[0].skeleton, input_size=SIZE).memorise(batch)


@pytest.fixture(scope="module")
def lsp_case(data_root):
    """The first LSP test image, and a model overfitted on two training crops of it (the
    annotated person box and the whole image), each also mirrored, so flip test stays on."""
    record = read_annotations("lsp:test", data_root)[0]
    height, width = cv2.imread(str(record.image)).shape[:2]
    model = memorised([record, whole_image_record(record, height, width)])
    return record, model


def image_inputs(path: Path) -> dict[str, tuple[object, dict]]:
    """The same image as every supported input type, with the keyword it needs."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)
    return {
        "str path": (str(path), {}),
        "Path": (path, {}),
        "RGB array": (rgb, {}),
        "BGR array": (rgb[..., ::-1].copy(), {"color_order": "bgr"}),
        "PIL image": (Image.open(path), {}),
        "uint8 tensor": (tensor, {}),
        "float tensor": (tensor.float() / 255, {}),
    }


def person_boxes(record: PoseRecord) -> dict[str, tuple[object, str]]:
    """The record's box in every supported form (all the same square)."""
    side = PIXEL_STD * record.scale
    x, y = record.center - side / 2
    return {
        "xywh": ([x, y, side, side], "xywh"),
        "xyxy": (np.array([x, y, x + side, y + side]), "xyxy"),
        "center/scale": ({"center": record.center.tolist(), "scale": record.scale}, "xywh"),
    }


def max_error(prediction, record) -> float:
    return float(np.linalg.norm(prediction.keypoints - record.keypoints, axis=1).max())


# --------------------------------------------------------------------------- real image


def test_every_input_type_with_and_without_a_box_finds_the_joints(lsp_case):
    """Predictions in original pixels within a quarter pixel of the annotation (the model
    memorised its training crops to about 0.05 px): the predictor's crop, flip test and
    mapping back agree with the training pipeline; half a pixel off anywhere fails."""
    record, model = lsp_case
    predictor = Predictor(model)
    assert predictor.flip_test is None and model.flip_test  # the model's default: on
    for kind, (image, kwargs) in image_inputs(record.image).items():
        [whole] = predictor(image, **kwargs)
        assert max_error(whole, record) < 0.25, kind
        for form, (box, box_format) in person_boxes(record).items():
            [boxed] = predictor(image, box=box, box_format=box_format, **kwargs)
            assert max_error(boxed, record) < 0.25, (kind, form)
            np.testing.assert_allclose(boxed.center, record.center, atol=1e-4)
            assert boxed.scale == pytest.approx(record.scale)


def test_lists_batches_and_several_boxes_per_image(lsp_case):
    record, model = lsp_case
    box = person_boxes(record)["xywh"][0]
    images = [str(record.image)] * 5
    boxes = [None, box, [box, None], [], box]  # [] = nobody to predict in that image
    one_by_one = Predictor(model, batch_size=16).predict(images, boxes=boxes)
    batched = Predictor(model, batch_size=2).predict(images, boxes=boxes)
    assert [p.image_index for p in batched] == [0, 1, 2, 2, 4]
    for a, b in zip(one_by_one, batched):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)
        assert max_error(b, record) < 0.25
    names = [p.image for p in Predictor(model).predict(images[:2], names=["a", "b"])]
    assert names == ["a", "b"]


def test_prediction_fields_and_json(lsp_case):
    record, model = lsp_case
    [pose] = Predictor(model, flip_test=False)(str(record.image), return_heatmaps=True)
    assert pose.keypoints.shape == (14, 2) and pose.scores.shape == (14,)
    assert pose.joint_names == LSP.joints and pose.skeleton == LSP
    assert pose.image == str(record.image) and pose.image_size == (169, 95)
    assert pose.crop.shape == (*SIZE, 3) and pose.heatmaps.shape == (14, 16, 16)
    assert draw_heatmaps(pose.crop, pose.heatmaps, pose.skeleton, columns=7).shape == (2 * 64 + 2, 7 * 64 + 12, 3)
    # affine maps crop pixels to the image: the crop centre is the whole image's centre
    np.testing.assert_allclose(pose.affine @ [31.5, 31.5, 1], [47, 84], atol=1e-4)
    document = json.loads(json.dumps(pose.to_dict()))
    check_document(document, num_people=1)
    np.testing.assert_allclose(document["people"][0]["keypoints"], pose.keypoints, atol=0.005)  # 0.01 px


def test_autocast_stays_close(lsp_case):
    record, model = lsp_case
    [pose] = Predictor(model, autocast=True)(str(record.image))  # bfloat16 on the CPU
    assert max_error(pose, record) < 1.0


@pytest.mark.gpu
def test_cuda_with_float16_autocast(lsp_case):
    record, model = lsp_case
    [pose] = Predictor(copy.deepcopy(model), device="cuda", autocast=True)(str(record.image))  # float16
    assert max_error(pose, record) < 1.0


# --------------------------------------------------------------------------- flip test


def test_flip_test_agrees_with_unflipped_prediction_on_a_symmetric_image(tmp_path):
    """A mirror-symmetric image with a mirror-symmetric pose: the flip test sees the same
    crop, so it agrees with the plain prediction only if the crop is centred exactly
    (pixel-centre convention of crop, flip and mapping back)."""
    height, width = 90, 61
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (height, width // 2 + 1, 3), dtype=np.uint8)
    image = np.concatenate([half, half[:, -2::-1]], axis=1)  # column 30 is the mirror axis
    assert (image == image[:, ::-1]).all()
    path = tmp_path / "symmetric.png"
    cv2.imwrite(str(path), image)
    keypoints = np.zeros((14, 2))
    right = rng.uniform([5, 5], [25, 85], (6, 2))  # ankles, knees, hips, wrists, elbows, shoulders
    for i, (r, l) in enumerate([(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)]):
        keypoints[r], keypoints[l] = right[i], [(width - 1) - right[i][0], right[i][1]]
    keypoints[12:] = [[30, 20], [30, 8]]
    record = PoseRecord(path, keypoints, np.full(14, 2), [0, 0], 1.0, 1.0, LSP, "symmetric#1")
    model = memorised([whole_image_record(record, height, width)], flips=(False,))  # never saw a flip
    [plain] = Predictor(model, flip_test=False)(path)
    [flipped] = Predictor(model, flip_test=True)(path)
    assert max_error(plain, record) < 0.25
    np.testing.assert_allclose(flipped.keypoints, plain.keypoints, atol=0.1)


# --------------------------------------------------------------------------- images and boxes


def test_progress_bar_on_request_or_for_long_inputs_on_a_terminal(capsys, monkeypatch):
    import sys

    from poselit.progress import show_progress

    torch.manual_seed(0)
    predictor = Predictor(MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE), batch_size=2)
    images = [np.zeros((20, 16, 3), np.uint8)] * 3
    predictor(images, progress=True)
    err = capsys.readouterr().err
    assert "predicting" in err and "3/3" in err
    predictor(images, progress=False)
    predictor(images)  # default: short input, and stderr is not a terminal here
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert show_progress(None, 100) and not show_progress(None, 99) and not show_progress(False, 10**6)


def test_image_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    assert (load_image(gray) == np.repeat(gray[..., None], 3, 2)).all()  # grayscale -> 3 channels
    assert (load_image(gray[..., None]) == load_image(gray)).all()
    rgba = np.concatenate([rgb, np.zeros((20, 30, 1), np.uint8)], axis=2)
    assert (load_image(rgba) == rgb).all()  # alpha dropped
    assert (load_image(torch.from_numpy(rgba).permute(2, 0, 1)) == rgb).all()
    assert (load_image(rgba[..., [2, 1, 0, 3]], color_order="bgr") == rgb).all()
    assert (load_image(Image.fromarray(rgba, "RGBA")) == rgb).all()
    assert (load_image(Image.fromarray(gray, "L")) == load_image(gray)).all()
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    assert (load_image(tmp_path / "gray.png") == load_image(gray)).all()


def test_exif_orientation_is_applied(tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90 deg clockwise to view)."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :5] = 255  # a white band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    for image in (path, Image.open(path)):
        upright = load_image(image)
        assert upright.shape == (40, 20, 3)
        assert upright[:5].mean() > 200 and upright[-5:].mean() < 50  # the band is now on top


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), "image[0]: the image is empty"),
        (np.zeros((3, 10, 12), np.uint8), "image[0]: arrays are (H, W)"),
        (np.zeros((10, 10, 3), np.int64), "dtype int64"),
        (np.full((10, 10, 3), 255.0), "values in [0, 1]"),
        (torch.zeros(2, 10, 10), "tensors are (C, H, W)"),
        ([[1, 2]], "expected a file path, NumPy array"),
    ],
)
def test_bad_images_raise_errors_naming_them(image, message):
    model = MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE)
    with pytest.raises(InputError, match=re.escape(message)):
        Predictor(model).predict([image])


def test_unreadable_and_missing_files_are_named(tmp_path):
    model = MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    for path in (broken, tmp_path / "empty.png", tmp_path / "missing.jpg"):
        with pytest.raises(ImageReadError, match=path.name):
            Predictor(model)(path)


@pytest.mark.parametrize(
    ("box", "box_format", "message"),
    [
        ([10, 10, 0, 20], "xywh", "zero or negative size"),
        ([10, 10, 5, 20], "xyxy", "zero or negative size"),
        ([100, 10, 20, 20], "xywh", "entirely outside the 40x30 image"),
        ([-30, -30, -1, -1], "xyxy", "entirely outside"),
        ({"center": [-200, 5], "scale": 0.5}, "xywh", "entirely outside"),
        ({"center": [5, 5], "scale": 0}, "xywh", "scale > 0"),
        ({"center": [5, 5]}, "xywh", "exactly the keys"),
        ([1, 2, float("nan"), 4], "xywh", "four finite numbers"),
        ([1, 2, 3], "xywh", "four finite numbers"),
        ([-1e9, -1e9, 1e9, 1e9], "xyxy", r"person box of side 2e\+09 px is more than 3x the 40x30 image's longer side"),
        ([0, 0, 1e9, 1e9], "xywh", r"box centre at \(5e\+08, 5e\+08\) lies more than 40 px outside"),
        ({"center": [5, 5], "scale": 1e27}, "xywh", "more than 3x the 40x30 image"),
        ([10, 10, 0.001, 0.0005], "xywh", "smaller than 1 px"),
    ],
)
def test_bad_boxes_raise_errors_naming_image_and_box(box, box_format, message):
    with pytest.raises(InputError, match=message) as info:
        person_box(box, (30, 40), box_format=box_format, name="photo.jpg")
    assert str(info.value).startswith("photo.jpg: box ")


def test_boxes_partly_outside_and_the_whole_image():
    center, scale = person_box([-10, -10, 20, 40], (30, 40))  # partly outside: fine
    np.testing.assert_allclose(center, [0, 10])
    assert scale == pytest.approx(40 / PIXEL_STD)
    center, scale = whole_image_box((30, 40))
    np.testing.assert_allclose(center, [19.5, 14.5])
    assert PIXEL_STD * scale * 1.25 == pytest.approx(40)


def image_in_input(image_size: tuple[int, int], to_input: np.ndarray) -> np.ndarray:
    """The image's corners (pixel edges) in model-input pixels, through ``to_input``."""
    height, width = image_size
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]])
    return apply_affine(corners, to_input)


@pytest.mark.parametrize("image_size", [(480, 640), (640, 480), (100, 100), (30, 400)])
@pytest.mark.parametrize("input_size", [(64, 48), (48, 64), (64, 64)])
def test_the_whole_image_box_holds_the_whole_image_whatever_the_aspects(image_size, input_size):
    """Every corner of the image lands inside the model input, and the image spans the
    input's height or its width: as large as it fits, nothing cut off."""
    center, scale = whole_image_box(image_size, 1.25, input_size)
    corners = image_in_input(image_size, crop_affine(center, scale, input_size, padding=1.25))
    low, high = np.array([-0.5, -0.5]), np.array([input_size[1] - 0.5, input_size[0] - 0.5])
    assert (corners >= low - 1e-9).all() and (corners <= high + 1e-9).all(), corners
    spans = [np.isclose(corners[:, axis].min(), low[axis]) and np.isclose(corners[:, axis].max(), high[axis])
             for axis in (0, 1)]
    assert any(spans), corners


def test_a_model_whose_input_is_not_square_sees_the_whole_photo():
    """The bug of issue 25: a 64x48 (height x width) model fitted a 640 px wide photo's
    longer side to its 64 px height, so its 48 px width saw only the middle 480 px (80 px
    lost on each side). Now the photo's width fills the input's width and every corner of
    the photo maps inside the input."""
    model = ConstantModel(torch.full((1, 14, 2), 20.0), input_size=(64, 48), flip_test=False)
    [pose] = Predictor(model)(np.zeros((480, 640, 3), np.uint8))
    corners = image_in_input((480, 640), invert_affine(pose.affine.astype(np.float64)))
    np.testing.assert_allclose([corners[:, 0].min(), corners[:, 0].max()], [-0.5, 47.5], atol=1e-3)
    assert (corners[:, 1] > -0.5).all() and (corners[:, 1] < 63.5).all()  # room above and below
    assert PIXEL_STD * pose.scale * model.padding == pytest.approx(640 * 64 / 48, rel=1e-6)


def test_refine_predicts_again_on_the_crop_around_the_first_pose_of_people_without_a_box():
    """A model that answers the same input pixels whatever it sees: the second pose is
    those pixels mapped back from the crop around the first pose's joints (all of them),
    padded; people with a box, and poses whose box cannot be cropped, keep one pass."""
    fixed = np.stack([np.linspace(16, 48, 14), np.linspace(8, 56, 14)], axis=-1)  # input pixels
    model = ConstantModel(torch.tensor(fixed, dtype=torch.float32)[None], input_size=SIZE, flip_test=False)
    image = np.zeros((300, 500, 3), np.uint8)
    one_pass, two_passes = Predictor(model), Predictor(model, refine=True, batch_size=3)
    [first] = one_pass(image)
    box = joints_box(first.keypoints, np.ones(14, bool), (300, 500), min_side=smallest_joints_box(SIZE, 1.25))
    refined, boxed, again = two_passes([image, image, image], boxes=[None, [10, 10, 100, 200], None])
    np.testing.assert_allclose(refined.center, box["center"], atol=1e-4)
    assert refined.scale == pytest.approx(box["scale"]) and refined.scale < first.scale
    to_original = invert_affine(crop_affine(box["center"], box["scale"], SIZE, padding=1.25))
    np.testing.assert_allclose(refined.keypoints, apply_affine(fixed, to_original), atol=1e-3)
    np.testing.assert_allclose(again.keypoints, refined.keypoints)  # order kept around the boxed person
    [unrefined] = one_pass(image, box=[10, 10, 100, 200])
    np.testing.assert_allclose(boxed.keypoints, unrefined.keypoints)
    assert boxed.scale == unrefined.scale
    collapsed = ConstantModel(torch.full((1, 14, 2), 32.0), input_size=SIZE, flip_test=False)
    [kept] = Predictor(collapsed, refine=True)(image)  # a 1 px box: magnified too much, not cropped
    assert kept.scale == Predictor(collapsed)(image)[0].scale == pytest.approx(whole_image_box((300, 500))[1])


def test_refine_lands_closer_on_lsp_people_in_a_larger_photo(data_root):
    """The first 8 LSP test people, each in the middle of a black canvas twice its image's
    width and height: the shipped model, seeing a person half as large as in training,
    misplaces many joints in one pass; the second pass, on the crop around that pose,
    finds most of them (PCK@0.2 40% -> 84% with the epoch-14 export, 25% -> 63% with the
    epoch-5 one)."""
    annotations = read_annotations("lsp:test", data_root)
    annotations = dataclasses.replace(annotations, records=annotations.records[:8])
    images = [load_image(record.image) for record in annotations.records]
    margins = [(i.shape[0] // 2, i.shape[1] // 2) for i in images]
    canvases = [np.pad(i, ((top, top), (left, left), (0, 0))) for i, (top, left) in zip(images, margins)]
    pck = {}
    for refine in (False, True):
        poses = Predictor.from_zoo(DEMO_MODEL, device="cpu", refine=refine)(canvases)
        keypoints = np.stack([pose.keypoints - [left, top] for pose, (top, left) in zip(poses, margins)])
        pck[refine] = evaluate_poses(annotations, keypoints).results[0].columns["Total"]
    assert pck[False] < 60 and pck[True] > pck[False] + 25, pck


def test_joints_box_is_none_where_it_cannot_be_cropped():
    keypoints = np.array([[10.0, 20.0], [30.0, 60.0], [500.0, 500.0]])
    both = np.array([True, True, False])
    assert joints_box(keypoints, both, (100, 100), min_side=10) == {"center": [20.0, 40.0], "scale": pytest.approx(0.2)}
    assert joints_box(keypoints, np.zeros(3, bool), (100, 100), min_side=10) is None  # no joint
    assert joints_box(keypoints + [200, 0], both, (100, 100), min_side=10) is None  # centre outside
    assert joints_box(keypoints * [10, 1], both, (100, 100), min_side=10) is None  # wider than the image
    assert joints_box(keypoints, both, (100, 100), min_side=50) is None  # too small
    assert smallest_joints_box((256, 256), 1.25) == pytest.approx(256 / (4 * 1.25))  # MAX_ZOOM = 4


def test_box_arguments_are_checked():
    predictor = Predictor(MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE))
    image = np.zeros((30, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="2 images but 1 box entries"):
        predictor.predict([image, image], boxes=[None])
    with pytest.raises(ValueError, match="boxes=\\[...\\]"):
        predictor.predict([image], box=[0, 0, 5, 5])
    with pytest.raises(InputError, match="image\\[1\\]: box"):
        predictor.predict([image, image], boxes=[None, [0, 0, 0, 5]])


# --------------------------------------------------------------------------- command line


def check_document(document: dict, num_people: int | None = None, model: str | None = None) -> None:
    """The JSON schema of the ``poselit.predict`` module docs, checked field by field."""
    required = {"image": str, "width": int, "height": int, "skeleton": dict, "people": list}
    optional = {"model": str}
    assert set(required) <= set(document) <= set(required) | set(optional), sorted(document)
    for key, kind in {**required, **optional}.items():
        assert key not in document or isinstance(document[key], kind), key
    assert document["width"] > 0 and document["height"] > 0
    assert document.get("model") == model
    skeleton = document["skeleton"]
    assert set(skeleton) == {"name", "joints", "limbs"} and isinstance(skeleton["name"], str)
    k = len(skeleton["joints"])
    assert k > 0 and all(isinstance(j, str) for j in skeleton["joints"])
    assert all(len(limb) == 2 and all(isinstance(j, int) and 0 <= j < k for j in limb) for limb in skeleton["limbs"])
    assert num_people is None or len(document["people"]) == num_people
    for person in document["people"]:
        assert set(person) == {"box", "keypoints", "scores"}
        assert set(person["box"]) == {"center", "scale"} and person["box"]["scale"] > 0
        assert len(person["box"]["center"]) == 2
        assert len(person["keypoints"]) == k and all(len(xy) == 2 for xy in person["keypoints"])
        assert len(person["scores"]) == k
        numbers = person["box"]["center"] + [v for xy in person["keypoints"] for v in xy] + person["scores"]
        assert all(isinstance(v, float) and np.isfinite(v) for v in numbers)


@pytest.fixture
def fake_zoo(monkeypatch):
    """``poselit.zoo.load`` / ``load_with_card`` replaced by a stand-in returning a small
    untrained model (and a card with the default crop margin)."""
    calls = []

    def load_with_card(name, *, revision=None, device=None, cache_dir=None, zoo_dir=None):
        calls.append((name, device))
        torch.manual_seed(0)
        return MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE).to(device).eval(), SimpleNamespace(input={})

    monkeypatch.setattr("poselit.zoo.load_with_card", load_with_card)
    monkeypatch.setattr("poselit.zoo.load", lambda name, **kwargs: load_with_card(name, **kwargs)[0])
    return calls


def test_from_zoo_crops_with_the_cards_padding(tmp_path):
    """The crop margin a zoo model was trained with comes from its card, unless given."""
    card = poselit.zoo.info(DEMO_MODEL)
    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    shutil.copy(card.weights_path(), zoo_dir / card.weights_path().name)
    edited = dataclasses.replace(card, input={**card.input, "padding": 1.5}, init_args={**card.init_args, "padding": 1.5})
    poselit.zoo.write_card(edited, zoo_dir / f"{DEMO_MODEL}.yaml")
    predictor = Predictor.from_zoo(DEMO_MODEL, zoo_dir=zoo_dir, batch_size=4)
    assert predictor.padding == 1.5 and predictor.batch_size == 4 and predictor.skeleton.name == "lsp"
    assert Predictor.from_zoo(DEMO_MODEL, zoo_dir=zoo_dir, padding=1.1).padding == 1.1
    # A card whose input and model arguments disagree is refused, naming both.
    poselit.zoo.write_card(dataclasses.replace(edited, input=card.input), zoo_dir / f"{DEMO_MODEL}.yaml")
    with pytest.raises(poselit.zoo.ZooError, match=r"input.padding is 1.25 but init_args.padding is 1.5"):
        Predictor.from_zoo(DEMO_MODEL, zoo_dir=zoo_dir)
    assert Predictor.from_zoo(DEMO_MODEL).padding == card.input["padding"] == 1.25


def test_cli_predict_on_a_folder_writes_json_and_images(tmp_path, fake_zoo):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.jpg", (60, 40, 3)), ("b.png", (50, 70)), ("c.png", (30, 30, 4))):
        cv2.imwrite(str(images / name), rng.integers(0, 256, shape, dtype=np.uint8))
    (images / "notes.txt").write_text("not an image")
    (tmp_path / "boxes.json").write_text(json.dumps({"a.jpg": [[0, 0, 20, 30], [10, 10, 20, 40]], "b.png": [5, 5, 30, 30]}))
    out = tmp_path / "out"
    code = main(["predict", str(images), "--model", "tiny", "--out", str(out), "--boxes", str(tmp_path / "boxes.json"),
                 "--device", "cpu", "--quiet"])
    assert code == 0 and fake_zoo == [("tiny", "cpu")]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.png", "b.json", "b.png", "c.json", "c.png"]
    for stem, people, size in (("a", 2, (40, 60)), ("b", 1, (70, 50)), ("c", 1, (30, 30))):
        document = json.loads((out / f"{stem}.json").read_text())
        check_document(document, people, model="tiny")
        assert (document["width"], document["height"]) == size
        assert document["image"] == str(next(images.glob(f"{stem}.*")))
        assert cv2.imread(str(out / f"{stem}.png")).shape == (size[1], size[0], 3)
    same = Predictor(poselit.zoo.load("tiny"))(images / "a.jpg", box=[[0, 0, 20, 30], [10, 10, 20, 40]])
    people = json.loads((out / "a.json").read_text())["people"]
    for person, pose in zip(people, same):
        np.testing.assert_allclose(person["keypoints"], pose.keypoints, atol=0.005)
        np.testing.assert_allclose(person["scores"], pose.scores, atol=5e-5)


def test_cli_predict_jsonl_and_errors(tmp_path, fake_zoo, capsys):
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), np.zeros((20, 20, 3), np.uint8))
    assert main(["predict", str(image), "--model", "tiny", "--out", str(tmp_path / "out"), "--jsonl", "--quiet"]) == 0
    [line] = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    check_document(json.loads(line), 1, model="tiny")
    (tmp_path / "boxes.json").write_text(json.dumps({"one.png": [0, 0, 0, 10]}))
    assert main(["predict", str(image), "--model", "tiny", "--out", str(tmp_path / "o2"), "--boxes",
                 str(tmp_path / "boxes.json"), "--quiet"]) == 2
    assert f"{image}: box [0, 0, 0, 10]: the box has zero or negative size" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing"), "--model", "tiny", "--out", str(tmp_path / "o3")]) == 2
    assert "no such image or folder" in capsys.readouterr().err


def test_cli_demo_finds_the_people_of_the_bundled_full_body_photos(tmp_path, fake_zoo):
    """``poselit demo``: the default detector finds one person in each single-person photo
    and both people in ``park.jpg`` (the man on the building left of the woman)."""
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--device", "cpu"]) == 0
    stems = [Path(name).stem for name in DEMO_IMAGES]
    assert stems == ["jumping", "walking", "park"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.{e}" for s in stems for e in ("json", "png"))
    people = {stem: json.loads((tmp_path / f"{stem}.json").read_text())["people"] for stem in stems}
    assert [len(people[stem]) for stem in stems] == [1, 1, 2]
    assert all(person["detection_score"] >= 0.2 for found in people.values() for person in found)
    man, woman = sorted(people["park"], key=lambda person: person["box"]["center"][0])
    assert man["box"]["center"][1] < woman["box"]["center"][1]  # he stands on the building, higher up
    assert fake_zoo == [(DEMO_MODEL, "cpu")]


def test_bundled_samples_are_small_and_have_a_stated_licence():
    sources = (SAMPLES / "SOURCES.md").read_text()
    for image in SAMPLES.glob("*.jpg"):
        assert image.stat().st_size < 100_000
        assert f"`{image.name}`" in sources
    assert "Copyright (c) 2022, perfanalytics" in (SAMPLES / "LICENSE-sports2d.txt").read_text()  # BSD-3: the notice travels


def test_predict_is_for_images_and_predict_recipe_is_lightnings(monkeypatch, capsys):
    """One meaning per command name: ``poselit predict`` never reads a recipe, and
    ``poselit predict-recipe`` is LightningCLI's ``predict``, run as the process's command
    line ``poselit predict-recipe ...`` (what DDP re-runs in its other processes)."""
    with pytest.raises(SystemExit):
        main(["predict", "-c", "recipe.yaml"])  # an argument error of the image predictor, not a guess
    assert "--model" in capsys.readouterr().err
    calls = []
    monkeypatch.setattr("poselit.cli.lightning.run_lightning", lambda args, command: calls.append((args, command)))
    assert main(["predict-recipe", "-c", "recipe.yaml", "--trainer.devices=2"]) == 0
    assert calls == [(["predict", "-c", "recipe.yaml", "--trainer.devices=2"],
                      ["predict-recipe", "-c", "recipe.yaml", "--trainer.devices=2"])]
    from poselit.cli.lightning import command_line

    with command_line(["predict-recipe", "-c", "recipe.yaml"]):
        assert sys.argv[1:] == ["predict-recipe", "-c", "recipe.yaml"]
    for argv in (["--help"], ["predict", "--help"]):  # both help texts say which is which
        with pytest.raises(SystemExit):
            main(argv)
        assert "LightningCLI" in capsys.readouterr().out.replace("\n", " ")


def test_readme_quickstart_runs_on_a_photo(tmp_path, monkeypatch):
    """The README's quickstart, as written: on a bundled sample photo, and on the user's own
    photo once its path replaces the sample's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", quickstart, re.S).group(1)
    assert len(code.strip().splitlines()) < 10  # "in under ten lines"
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md#quickstart", "exec"), {})
    assert Image.open(tmp_path / "pose.png").size == Image.open(SAMPLES / "walking.jpg").size
    Image.open(SAMPLES / "astronaut.jpg").save(tmp_path / "photo.jpg")
    own = re.sub(r'SAMPLES / "walking.jpg"', '"photo.jpg"', code)
    assert own != code
    exec(compile(own, "README.md#quickstart", "exec"), {})
    assert Image.open(tmp_path / "pose.png").size == (512, 512)


def test_bad_padding_and_box_entries_are_refused_in_python():
    model = MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE)
    for padding in (0, -1.0, float("nan"), "1.25", True):
        with pytest.raises(ValueError, match=r"padding must be a number > 0 \(the crop side is 200 \* scale \* padding\)"):
            Predictor(model, padding=padding)
    with pytest.raises(ValueError, match="padding must be a number > 0"):
        PoseDataset(read_annotations_stub(), padding=0)
    image = np.zeros((30, 40, 3), np.uint8)
    for entry, shown in ((True, "true"), (5, "5"), ("box", '"box"')):
        with pytest.raises(InputError, match=re.escape(f"image[0]: expected a box ([x, y, w, h] or") + f".*got {shown}"):
            Predictor(model).predict([image], boxes=[entry])


def read_annotations_stub() -> list[PoseRecord]:
    """One LSP record, for constructor checks that need no image."""
    return [PoseRecord(Path("x.jpg"), np.zeros((14, 2)), np.full(14, 2), np.zeros(2), 1.0, 0.0, LSP, "stub#1")]


def test_cli_bad_padding_box_entries_truncated_and_huge_images_end_in_one_line(tmp_path, fake_zoo, capsys):
    """Each ends with exit 2 and one line ``poselit: error: ...`` naming what is wrong; the
    40000x40000 PNG header (more pixels than OpenCV allows) is refused before decoding."""
    from bad_files import png_claiming, truncated_jpeg

    image = tmp_path / "one.png"
    cv2.imwrite(str(image), np.zeros((20, 20, 3), np.uint8))
    for entry in (True, 5):
        (tmp_path / f"boxes-{entry}.json").write_text(json.dumps({"one.png": entry}))
    cases = [
        (["--padding", "0"], "padding must be a number > 0 (the crop side is 200 * scale * padding), got 0.0"),
        (["--padding", "-2"], "padding must be a number > 0"),
        (["--boxes", str(tmp_path / "boxes-True.json")], f"{image}: expected a box ([x, y, w, h] or"),
        (["--boxes", str(tmp_path / "boxes-5.json")], "or null, got 5"),
    ]
    for extra, message in cases:
        assert main(["predict", str(image), "--model", "tiny", "--out", str(tmp_path / "out"), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("poselit: error: ") and err.count("\n") == 1 and message in err, err
    for bad, message in (
        (truncated_jpeg(tmp_path / "cut.jpg"), f"image cannot be decoded: {tmp_path / 'cut.jpg'}: image file is truncated"),
        (png_claiming(tmp_path / "huge.png", 40000, 40000), f"image too large: {tmp_path / 'huge.png'}: "),
    ):
        assert main(["predict", str(bad), "--model", "tiny", "--out", str(tmp_path / "out"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"poselit: error: {message}") and err.count("\n") == 1, err
        with pytest.raises(ImageReadError, match=re.escape(str(bad))):
            load_image(bad)


def test_cli_annotated_images_are_downscaled(tmp_path, fake_zoo):
    """A 2600x1300 photograph: the JSON keeps its pixels, the picture is 2048 px wide."""
    image = tmp_path / "wide.jpg"
    cv2.imwrite(str(image), np.full((1300, 2600, 3), 90, np.uint8))
    assert main(["predict", str(image), "--model", "tiny", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    document = json.loads((tmp_path / "out" / "wide.json").read_text())
    assert (document["width"], document["height"]) == (2600, 1300)
    assert cv2.imread(str(tmp_path / "out" / "wide.png")).shape == (1024, 2048, 3)


def test_an_empty_box_list_is_an_error_for_one_image_and_nobody_in_a_batch():
    """``box=[]`` for one image is neither "no box" (``None``: the whole image) nor silently no
    pose; in a list of images, ``[]`` is an image with nobody to predict."""
    predictor = Predictor(MemorizingHeatmapModel(skeleton="lsp", input_size=SIZE))
    image = np.zeros((30, 40, 3), np.uint8)
    for empty in ([], (), np.zeros((0, 4)), torch.zeros(0)):
        with pytest.raises(InputError, match=r"image\[0\]: the list of boxes is empty, which gives no pose"):
            predictor(image, box=empty)
    assert [p.image_index for p in predictor([image, image, image], boxes=[None, [], None])] == [0, 2]
    assert len(predictor(image, box=None)) == 1


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (not its subfolders) and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_cli_outputs_never_overwrite_a_file_the_run_reads(tmp_path, fake_zoo, capsys):
    """An output landing on an input image, video, the --boxes file or a file of the --model
    folder is refused before anything is written, naming both files; other outputs may
    share the input folder."""
    photos, export = tmp_path / "photos", tmp_path / "export"
    photos.mkdir()
    export.mkdir()
    for name, value in (("a.jpg", 80), ("b.jpg", 120), ("config.jpg", 140)):
        cv2.imwrite(str(photos / name), np.full((40, 30, 3), value, np.uint8))
    (photos / "b.json").write_text(json.dumps({"b.jpg": [0, 0, 20, 30]}))  # a boxes file beside b.jpg
    cv2.imwrite(str(tmp_path / "c.png"), np.full((40, 30, 3), 160, np.uint8))
    (tmp_path / "clip.mp4").write_bytes(b"a video")
    (export / "config.json").write_text("{}")
    b_jpg, b_json, c_png, clip, config = (
        photos / "b.jpg", photos / "b.json", tmp_path / "c.png", tmp_path / "clip.mp4", export / "config.json"
    )
    cases = [  # arguments, the output, the input it would overwrite
        ([b_jpg, "--boxes", b_json, "--out", photos, "--model", "tiny"], b_json, b_json),
        ([b_jpg, c_png, "--out", tmp_path, "--model", "tiny"], c_png, c_png),
        ([clip, "--out", tmp_path, "--model", "tiny", "--video-codec", "mp4v"], clip, clip),  # mp4v writes .mp4
        ([photos / "config.jpg", "--out", export, "--model", export], config, config),
    ]
    before = {folder: snapshot(folder) for folder in (tmp_path, photos, export)}
    for argv, output, source in cases:
        assert main(["predict", *map(str, argv), "--quiet", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"poselit: error: the output {output} (of ") and err.count("\n") == 1, err
        assert f"would overwrite {source}, which this run reads; choose another --out folder" in err, err
        assert {folder: snapshot(folder) for folder in before} == before  # nothing written
    assert fake_zoo == []  # refused before the model was loaded
    # JPEG inputs and their outputs share the folder without harm
    assert main(["predict", str(photos / "a.jpg"), "--model", "tiny", "--out", str(photos), "--quiet"]) == 0
    assert sorted(snapshot(photos)) == ["a.jpg", "a.json", "a.png", "b.jpg", "b.json", "config.jpg"]
    assert snapshot(photos)["b.json"] == before[photos]["b.json"]


def test_cli_help_texts_show_no_rst_markup_and_zoo_lists_every_subcommand():
    from poselit.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for sub in action.choices.values():
                    yield from parsers(sub)

    for parser in parsers(build_parser()):
        texts = [parser.description, *(a.help for a in parser._actions)]
        texts += [c.help for a in parser._actions for c in getattr(a, "_choices_actions", [])]
        assert not [t for t in texts if isinstance(t, str) and "``" in t], parser.prog
    zoo = next(c.help for a in build_parser()._actions for c in getattr(a, "_choices_actions", []) if c.dest == "zoo")
    assert all(word in zoo for word in ("list", "info", "download", "export", "publish", "table", "compare")), zoo
