"""A small generated dataset in the real LSP layout (``joints.mat`` + ``images/``).

Stick figures in random poses on textured backgrounds, each joint a dot of its own
colour and each bone a coloured bar, so a network can learn them in minutes on a CPU.
The files are exactly LSP's (``joints`` of shape (3, 14, N), 1-based coordinates, flag 1
= occluded, JPEG images ``im0001.jpg``...), so everything downstream is exercised as on
the real data: a newcomer without LSP, the tests and the smoke recipes all use it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io

from poselit.atomic import make_folder
from poselit.data.dataset import MAX_IMAGE_PIXELS_ENV, max_image_pixels
from poselit.skeletons import LSP

# A standing pose in a 1 x 1.6 box (x right, y down), LSP joint order.
_REST_POSE = np.array(
    [
        [-0.15, 0.75], [-0.15, 0.40], [-0.12, 0.05], [0.12, 0.05], [0.15, 0.40], [0.15, 0.75],
        [-0.50, -0.05], [-0.38, -0.30], [-0.22, -0.50], [0.22, -0.50], [0.38, -0.30], [0.50, -0.05],
        [0.00, -0.55], [0.00, -0.85],
    ]
)
_JOINT_COLORS = cv2.applyColorMap(
    np.linspace(0, 255, LSP.num_joints, dtype=np.uint8)[:, None], cv2.COLORMAP_HSV
)[:, 0].tolist()


def random_pose(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(14, 2) joints of a jittered, scaled, rotated and placed stick figure, in pixels."""
    pose = _REST_POSE + rng.normal(0, 0.08, _REST_POSE.shape)
    if rng.random() < 0.5:  # sometimes mirror the figure (keeping joint names)
        pose[:, 0] *= -1
    angle = np.radians(rng.uniform(-30, 30))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    size = rng.uniform(0.35, 0.5) * height
    center = np.array([width, height]) / 2 + rng.uniform(-0.1, 0.1, 2) * [width, height]
    return pose @ rot.T * size + center


def render_figure(pose: np.ndarray, occluded: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """BGR image of the figure; occluded joints get no dot (only their bones)."""
    noise = rng.integers(0, 60, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR) + 60
    for a, b in LSP.limbs:
        color = [(ca + cb) // 2 for ca, cb in zip(_JOINT_COLORS[a], _JOINT_COLORS[b])]
        cv2.line(image, tuple(np.round(pose[a]).astype(int)), tuple(np.round(pose[b]).astype(int)), color, 4, cv2.LINE_AA)
    for j, point in enumerate(pose):
        if not occluded[j]:
            cv2.circle(image, tuple(np.round(point).astype(int)), 5, _JOINT_COLORS[j], -1, cv2.LINE_AA)
    return image


def write_synthetic_lsp(
    root: str | Path, num_images: int = 40, size: tuple[int, int] = (160, 120), seed: int = 0
) -> Path:
    """Write ``num_images`` figures of ``size = (height, width)`` as an LSP folder at ``root``.

    The LSP reader's standard split takes the first half as ``train`` and the second half
    as ``test``, so ``num_images`` must be even. An image larger than the pixel limit of
    :func:`~poselit.data.dataset.read_image`, which could not be read back, is refused
    before anything is allocated or written. Returns ``root``.
    """
    if num_images <= 0 or num_images % 2:
        raise ValueError(f"num_images must be a positive even number, got {num_images}")
    height, width = size
    if height <= 0 or width <= 0:
        raise ValueError(f"image height and width must be > 0, got height {height}, width {width}")
    limit = max_image_pixels()
    if height * width > limit:
        raise ValueError(
            f"image height {height} x width {width} = {height * width} pixels is above the limit of "
            f"{limit} that images are read with ({MAX_IMAGE_PIXELS_ENV} raises it)"
        )
    root = Path(root)
    make_folder(root / "images")
    rng = np.random.default_rng(seed)
    joints = np.zeros((3, LSP.num_joints, num_images))
    for i in range(num_images):
        pose = random_pose(rng, height, width)
        occluded = rng.random(LSP.num_joints) < 0.07
        image = render_figure(pose, occluded, rng, height, width)
        cv2.imwrite(str(root / "images" / f"im{i + 1:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        joints[:2, :, i] = pose.T + 1.0  # MATLAB's 1-based pixels, as in the real file
        joints[2, :, i] = occluded
    scipy.io.savemat(root / "joints.mat", {"joints": joints})
    return root
