"""Drawing: skeleton overlays and image grids.

Colours encode the body side, the same everywhere in the project, so a swapped
left/right pair is visible at a glance: left joints blue, right joints orange, centre
joints green. Occluded joints are drawn as hollow circles; not-annotated joints are not
drawn.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from poselit.skeletons import Side, Skeleton

SIDE_COLORS: dict[Side, tuple[int, int, int]] = {
    "left": (40, 120, 255),
    "right": (255, 140, 0),
    "center": (60, 200, 60),
}
"""RGB colour of each body side."""


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    visibility: np.ndarray,
    skeleton: Skeleton,
    *,
    radius: int = 3,
    thickness: int = 2,
) -> np.ndarray:
    """A copy of an RGB ``(H, W, 3)`` uint8 image with the skeleton drawn on it.

    Bones are drawn between annotated joints in the colour of their side (centre when the
    two ends disagree), then joints on top: filled when visible, hollow when occluded.
    """
    canvas = np.ascontiguousarray(image).copy()
    sides = skeleton.sides()
    points = np.round(np.asarray(keypoints, dtype=np.float64)).astype(int)
    for a, b in skeleton.limbs:
        if visibility[a] > 0 and visibility[b] > 0:
            side = sides[a] if sides[a] == sides[b] else "center"
            cv2.line(canvas, tuple(points[a]), tuple(points[b]), SIDE_COLORS[side], thickness, cv2.LINE_AA)
    for j, (point, vis) in enumerate(zip(points, visibility)):
        if vis > 0:
            fill = -1 if vis == 2 else max(1, thickness // 2)
            cv2.circle(canvas, tuple(point), radius, SIDE_COLORS[sides[j]], fill, cv2.LINE_AA)
    return canvas


def image_grid(images: Sequence[np.ndarray], columns: int = 4, gap: int = 2) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images into one image, row by row, on white."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    height, width = images[0].shape[:2]
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    grid = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, np.uint8
    )
    for i, image in enumerate(images):
        if image.shape[:2] != (height, width):
            raise ValueError(f"image {i} is {image.shape[:2]}, expected {(height, width)}")
        r, c = divmod(i, columns)
        grid[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = image
    return grid
