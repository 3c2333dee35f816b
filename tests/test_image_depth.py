"""Images deeper than 8 bits decode by their real range, in training and prediction alike.

Real files written by Pillow (float32 TIFF, 16-bit grayscale PNG and TIFF) and OpenCV
(16-bit RGB PNG) go through both paths: :func:`read_image` (the dataset's decoder) and
:func:`load_image` (the predictor's, for paths, Pillow images and arrays). Pillow's own
``convert("RGB")`` clips such images to 0-255: [0, 1] floats to black, 16-bit to white.
"""

import re

import cv2
import numpy as np
import pytest
from PIL import Image

from poselit.data.dataset import ImageReadError, PoseDataset, read_image
from poselit.data.records import PoseRecord
from poselit.predict_inputs import InputError, load_image
from poselit.skeletons import get_skeleton

HEIGHT, WIDTH = 24, 32


def ramp16() -> np.ndarray:
    """``(H, W)`` uint16 spanning the whole 16-bit range, 0 to 65535."""
    return np.linspace(0, 65535, HEIGHT * WIDTH).round().astype(np.uint16).reshape(HEIGHT, WIDTH)


def ramp_float() -> np.ndarray:
    """``(H, W)`` float32 spanning [0, 1]."""
    return np.linspace(0, 1, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)


def decoded_every_way(path) -> list[np.ndarray]:
    """The file through the dataset's reader and the predictor's three ways in."""
    with Image.open(path) as image:
        image.load()
        pil = load_image(image)
        array = load_image(np.asarray(image)) if image.mode != "RGB" else pil
    return [read_image(path), load_image(path), load_image(str(path)), pil, array]


def assert_scaled(decoded: list[np.ndarray], expected: np.ndarray) -> None:
    for rgb in decoded:
        assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
        assert rgb.min() == 0 and rgb.max() == 255  # the whole range, not all black or white
        np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grayscale_keeps_its_high_byte(tmp_path, suffix):
    pixels = ramp16()
    path = tmp_path / f"gray16{suffix}"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"  # the file really is 16-bit
    expected = np.repeat((pixels >> 8).astype(np.uint8)[..., None], 3, axis=2)
    # the high byte is the 0-65535 range scaled to 0-255, within one count
    assert np.abs(expected[..., 0].astype(int) - np.round(pixels / 65535 * 255)).max() <= 1
    assert_scaled(decoded_every_way(path), expected)


def test_16_bit_rgb_png_keeps_its_high_byte(tmp_path):
    gray = ramp16()
    rgb = np.stack([gray, gray[::-1], np.full_like(gray, 40000)], axis=2)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    expected = (rgb >> 8).astype(np.uint8)
    assert_scaled(decoded_every_way(path), expected)
    # a 16-bit array given to the predictor decodes as the file does, in either channel order
    np.testing.assert_array_equal(load_image(rgb), expected)
    np.testing.assert_array_equal(load_image(rgb[..., ::-1], color_order="bgr"), expected)


def test_float_tiff_in_0_1_is_scaled_by_255(tmp_path):
    pixels = ramp_float()
    path = tmp_path / "float.tif"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as image:
        assert image.mode == "F"
    expected = np.repeat(np.rint(pixels * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert_scaled(decoded_every_way(path), expected)


def test_the_dataset_crops_a_float_image_by_its_range(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((HEIGHT, WIDTH), 0.5, np.float32)).save(path)  # mid grey: 128, not black
    skeleton = get_skeleton("lsp")
    record = PoseRecord(
        image=path,
        keypoints=np.full((skeleton.num_joints, 2), 12.0),
        visibility=np.full(skeleton.num_joints, 2),
        center=np.array([WIDTH / 2, HEIGHT / 2]),
        scale=0.1,
        norm=10.0,
        skeleton=skeleton,
        source="float.tif#0",
    )
    image = PoseDataset([record], (16, 16), padding=1.0)[0]["image"]
    assert (image == 128).all()


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (ramp_float() * 255, "dtype float32 span [0, 255], expected values in [0, 1]"),
        (ramp_float() - 0.5, "dtype float32 span [-0.5, 0.5], expected values in [0, 1]"),
        (np.where(ramp_float() > 0.5, np.nan, ramp_float()).astype(np.float32), "NaN or infinity"),
        (np.where(ramp_float() > 0.5, np.inf, ramp_float()).astype(np.float32), "NaN or infinity"),
        (np.zeros((HEIGHT, WIDTH), np.int32), "dtype int32 have no known range"),
    ],
)
def test_images_without_a_usable_range_are_refused_by_name(tmp_path, pixels, message):
    path = tmp_path / "odd.tif"
    Image.fromarray(pixels).save(path)
    with pytest.raises(ImageReadError, match=rf"odd\.tif \(record lsp#7\): .*{re.escape(message)}"):
        read_image(path, "lsp#7")
    with pytest.raises(ImageReadError, match=rf"odd\.tif: .*{re.escape(message)}"):
        load_image(path)
    with Image.open(path) as image:
        with pytest.raises(InputError, match=rf"^photo: .*{re.escape(message)}"):
            load_image(image, name="photo")
    with pytest.raises(InputError, match=rf"^photo: .*{re.escape(message)}"):
        load_image(pixels, name="photo")
