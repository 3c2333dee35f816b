"""Drawing: skeleton and heatmap overlays, prediction-vs-truth pairs, PCK curves, grids.

Bone colours encode the body side, the same everywhere in the project, so a swapped
left/right pair is visible at a glance: left blue, right orange, centre green. Occluded
joints are drawn as hollow circles; not-annotated joints are not drawn. A predicted
skeleton (drawn with its scores) shows how sure the model is twice over: each joint is
coloured by its score (red 0, yellow 0.5, green 1: :func:`score_color`) and everything
fades with the score down to a minimum opacity, so that an uncertain joint looks
uncertain but a weak skeleton never disappears. A thin dark outline keeps bones and
joints visible on bright backgrounds (snow, sky, white walls).

Everything here takes and returns RGB ``(H, W, 3)`` uint8 NumPy images;
:func:`save_image` writes one to a file. Overlays are drawn with OpenCV; plots
(:func:`plot_pck_curve`) with matplotlib, an optional dependency
(``pip install -e ".[plot]"``; without it they raise an error saying so).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np

from poselit.atomic import make_folder, write_atomic
from poselit.evaluation_protocols import MetricResult
from poselit.extras import require
from poselit.skeletons import Side, Skeleton

if TYPE_CHECKING:
    from poselit.evaluate import EvaluationReport

SIDE_COLORS: dict[Side, tuple[int, int, int]] = {
    "left": (40, 120, 255),
    "right": (255, 140, 0),
    "center": (60, 200, 60),
}
"""RGB colour of each body side."""

SCORE_COLORS: tuple[tuple[int, int, int], ...] = ((230, 40, 40), (250, 210, 0), (40, 210, 70))
"""RGB colours of the joint scores 0, 0.5 and 1 (red, yellow, green); :func:`score_color`
interpolates between them."""

OUTLINE_COLOR: tuple[int, int, int] = (20, 20, 20)
"""RGB colour of the 1 px outline around bones and joints."""

MIN_ALPHA = 0.5
"""Default opacity of a joint scored 0 (:func:`score_alpha`): faint but always visible."""

CURVE_COLORS: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
"""RGB colours of successive curves in :func:`plot_pck_curve` (matplotlib's ``tab10``, kept
here so that plots and tests agree on them whatever matplotlib's style)."""

FONT = cv2.FONT_HERSHEY_SIMPLEX


def marker_sizes(shape: Sequence[int]) -> tuple[int, int]:
    """Default joint radius and bone thickness for an image of ``shape`` (H, W, ...).

    3 and 2 px up to 300 px images (crops), growing with the longer side beyond that so
    skeletons stay visible on full-resolution photographs.
    """
    grow = max(1.0, max(shape[:2]) / 300)
    return round(3 * grow), round(2 * grow)


def score_color(score: float) -> tuple[int, int, int]:
    """RGB colour of a joint score: :data:`SCORE_COLORS` interpolated linearly, red at 0,
    yellow at 0.5, green at 1 (scores outside [0, 1] take the end colours).

    >>> score_color(0.0), score_color(0.75), score_color(2.0)
    ((230, 40, 40), (145, 210, 35), (40, 210, 70))
    """
    stops = np.linspace(0.0, 1.0, len(SCORE_COLORS))
    return tuple(round(float(np.interp(score, stops, channel))) for channel in zip(*SCORE_COLORS))


def score_alpha(scores: np.ndarray, min_alpha: float = MIN_ALPHA) -> np.ndarray:
    """Opacity of joints with these scores: ``min_alpha`` at score 0 rising linearly to 1 at
    score 1 (scores clipped to [0, 1]), so that low scores still tell apart and stay visible.

    >>> score_alpha(np.array([0.0, 0.5, 1.0, 3.0]), min_alpha=0.5).tolist()
    [0.5, 0.75, 1.0, 1.0]
    """
    return min_alpha + (1.0 - min_alpha) * np.clip(np.asarray(scores, np.float64), 0.0, 1.0)


def _blend_draw(
    canvas: np.ndarray,
    alpha: float,
    points: np.ndarray,
    margin: int,
    draw: Callable[[np.ndarray, np.ndarray], object],
) -> None:
    """Call ``draw(layer, points)`` on a copy of the part of ``canvas`` within ``margin`` px
    of ``points`` (shifted into that part) and blend it back at opacity ``alpha``.

    Working on the element's bounding box only keeps translucent drawing cheap on large
    images; elements entirely outside the canvas are skipped.
    """
    height, width = canvas.shape[:2]
    x0, y0 = np.maximum(points.min(axis=0) - margin, 0)
    x1, y1 = np.minimum(points.max(axis=0) + margin + 1, (width, height))
    if x0 >= x1 or y0 >= y1:
        return
    region = canvas[y0:y1, x0:x1]
    layer = region.copy()
    draw(layer, points - (x0, y0))
    region[:] = layer if alpha >= 1 else cv2.addWeighted(layer, alpha, region, 1 - alpha, 0)


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    visibility: np.ndarray,
    skeleton: Skeleton,
    *,
    scores: np.ndarray | None = None,
    min_alpha: float = MIN_ALPHA,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of an RGB ``(H, W, 3)`` uint8 image with the skeleton drawn on it.

    Bones are drawn between annotated joints in the colour of their side (centre when the
    two ends disagree), then joints on top: filled when visible, hollow when occluded;
    each with a 1 px dark outline (:data:`OUTLINE_COLOR`).

    Args:
        image: RGB image.
        keypoints: ``(K, 2)`` joints in the image's pixels.
        visibility: ``(K,)`` flags: 0 not drawn, 1 hollow (occluded), 2 filled.
        skeleton: Joint layout (sides, bones).
        scores: Optional ``(K,)`` joint scores (a prediction's): each joint is coloured by
            its score (:func:`score_color`) instead of its side and drawn with opacity
            :func:`score_alpha`, each bone with the opacity of its weaker end. Without
            scores (an annotation) everything is opaque and joints take their side's colour.
        min_alpha: Opacity at score 0, so that a weak skeleton stays visible.
        radius: Joint radius in pixels; default from :func:`marker_sizes`.
        thickness: Bone thickness in pixels; default from :func:`marker_sizes`.
    """
    canvas = np.ascontiguousarray(image).copy()
    default_radius, default_thickness = marker_sizes(canvas.shape)
    radius = default_radius if radius is None else radius
    thickness = default_thickness if thickness is None else thickness
    sides = skeleton.sides()
    points = np.round(np.asarray(keypoints, dtype=np.float64)).astype(int)
    alpha = np.ones(len(points)) if scores is None else score_alpha(scores, min_alpha)
    joint_colors = [SIDE_COLORS[side] for side in sides] if scores is None else [score_color(s) for s in scores]
    margin = radius + thickness + 3

    def bone(layer: np.ndarray, ends: np.ndarray, color: tuple[int, int, int]) -> None:
        for paint, width in ((OUTLINE_COLOR, thickness + 2), (color, thickness)):
            cv2.line(layer, tuple(ends[0]), tuple(ends[1]), paint, width, cv2.LINE_AA)

    def joint(layer: np.ndarray, at: np.ndarray, color: tuple[int, int, int], ring: int) -> None:
        center = tuple(at[0])
        if ring < 0:  # filled: an outlined disk
            cv2.circle(layer, center, radius + 1, OUTLINE_COLOR, -1, cv2.LINE_AA)
            cv2.circle(layer, center, radius, color, -1, cv2.LINE_AA)
        else:  # hollow: an outlined ring
            cv2.circle(layer, center, radius, OUTLINE_COLOR, ring + 2, cv2.LINE_AA)
            cv2.circle(layer, center, radius, color, ring, cv2.LINE_AA)

    for a, b in skeleton.limbs:
        if visibility[a] > 0 and visibility[b] > 0:
            color = SIDE_COLORS[sides[a] if sides[a] == sides[b] else "center"]
            _blend_draw(
                canvas, min(alpha[a], alpha[b]), points[[a, b]], margin, lambda layer, p, c=color: bone(layer, p, c)
            )
    for j, vis in enumerate(visibility):
        if vis > 0:
            ring = -1 if vis == 2 else max(1, thickness // 2)
            _blend_draw(
                canvas, alpha[j], points[[j]], margin, lambda layer, p, c=joint_colors[j], r=ring: joint(layer, p, c, r)
            )
    return canvas


def draw_label(image: np.ndarray, text: str, origin: tuple[int, int] = (4, 14), scale: float = 0.4) -> np.ndarray:
    """Write ``text`` in place (white with a black outline, readable on any background);
    ``origin`` is the left end of the text's baseline. Returns ``image``."""
    cv2.putText(image, text, origin, FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def draw_heatmaps(
    image: np.ndarray,
    heatmaps: np.ndarray,
    skeleton: Skeleton,
    *,
    columns: int = 4,
    alpha: float = 0.5,
) -> np.ndarray:
    """A grid with one tile per joint: its heatmap in colour over ``image``, titled by name.

    Args:
        image: The RGB crop the heatmaps were computed on (the model input).
        heatmaps: ``(K, h, w)`` maps (NumPy or a CPU tensor) at any stride: a map pixel
            ``j`` is centred on image pixel ``s * j + (s - 1) / 2`` (the convention of
            :mod:`poselit.codecs`), which is how ``cv2.resize`` aligns them.
        skeleton: Joint names for the titles.
        columns: Grid columns.
        alpha: Opacity of the colour map.

    All maps share one colour scale (zero to the largest value of any joint), so a joint
    the model is unsure about looks faint.
    """
    if heatmaps is None:
        raise ValueError(
            "no heatmaps (None): only heatmap methods (Bulat, Belagiannis) return them, with "
            "Predictor(...)(image, return_heatmaps=True); LuvizonSoftArgmax regresses coordinates"
        )
    maps = np.asarray(heatmaps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) != skeleton.num_joints:
        raise ValueError(
            f"expected heatmaps of shape ({skeleton.num_joints}, h, w) for skeleton "
            f"{skeleton.name!r}, got {maps.shape}"
        )
    height, width = image.shape[:2]
    peak = float(maps.max())
    scaled = np.clip(maps / peak, 0, 1) if peak > 0 else np.zeros_like(maps)
    tiles = []
    for name, heatmap in zip(skeleton.joints, scaled):
        heatmap = cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)
        colored = cv2.applyColorMap(np.round(heatmap * 255).astype(np.uint8), cv2.COLORMAP_JET)
        tile = cv2.addWeighted(np.ascontiguousarray(image), 1 - alpha, colored[..., ::-1], alpha, 0)
        tiles.append(draw_label(tile, name))
    return image_grid(tiles, columns)


def side_by_side(
    image: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray,
    skeleton: Skeleton,
    *,
    visibility: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> np.ndarray:
    """``ground truth | prediction``: ``image`` twice, the annotation drawn on the left and
    the prediction (every joint, coloured and faded by ``scores`` if given) on the right.

    ``visibility`` is the annotation's (default: every joint visible).
    """
    k = skeleton.num_joints
    visibility = np.full(k, 2) if visibility is None else np.asarray(visibility)
    return image_grid(
        [
            draw_skeleton(image, truth, visibility, skeleton),
            draw_skeleton(image, prediction, np.full(k, 2), skeleton, scores=scores),
        ],
        columns=2,
    )


def pck_curves(
    results: MetricResult | EvaluationReport | Sequence[MetricResult | EvaluationReport],
) -> list[tuple[str, MetricResult]]:
    """``(label, result)`` of every PCK curve in evaluation results: a
    :class:`~poselit.evaluation_protocols.MetricResult` with a curve is labelled by its metric, an
    :class:`~poselit.evaluate.EvaluationReport` by its label (its PCK/PCKh result)."""
    items = [results] if isinstance(results, MetricResult) or hasattr(results, "results") else list(results)
    curves = []
    for item in items:
        found = [(item.metric, item)] if isinstance(item, MetricResult) else [(item.label, r) for r in item.results]
        curves += [(label, r) for label, r in found if r.curve is not None]
    if not curves:
        raise ValueError("no PCK curve in these results (only PCK / PCKh results have one)")
    return curves


def plot_pck_curve(
    results: MetricResult | EvaluationReport | Sequence[MetricResult | EvaluationReport],
    *,
    size: tuple[int, int] = (360, 480),
    title: str | None = None,
) -> np.ndarray:
    """PCK (Total) against the normalised distance threshold, as an RGB image (matplotlib).

    One line per result (reports of several models on one split compare at a glance),
    each with its AUC in the legend. Results come from ``poselit eval --json``
    (:meth:`EvaluationReport.load <poselit.evaluate.EvaluationReport.load>`),
    :func:`~poselit.evaluate.evaluate_predictions` or ``model.results.values()`` after a test.

    Args:
        results: Evaluation results, see :func:`pck_curves`.
        size: Image ``(height, width)`` in pixels.
        title: Default: the metric name of the first curve.

    Raises:
        MissingDependencyError: matplotlib is not installed (``pip install -e ".[plot]"``).
    """
    curves = pck_curves(results)
    figure_module = require("matplotlib.figure", "plot", "plot_pck_curve")
    agg = require("matplotlib.backends.backend_agg", "plot", "plot_pck_curve")
    height, width = size
    dpi = 100
    figure = figure_module.Figure(figsize=(width / dpi, height / dpi), dpi=dpi)  # no pyplot: no global state
    canvas = agg.FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, (label, result) in enumerate(curves):
        auc = result.columns.get("AUC", float("nan"))
        color = np.asarray(CURVE_COLORS[i % len(CURVE_COLORS)]) / 255
        axes.plot(result.curve["threshold"], result.curve["Total"], color=color, linewidth=2, label=f"{label} (AUC {auc:.1f})")
    axes.set_xlim(0, max(max(r.curve["threshold"]) for _, r in curves))
    axes.set_ylim(0, 100)
    axes.set_xlabel("normalised distance threshold")
    axes.set_ylabel("%")
    axes.set_title(title or curves[0][1].metric)
    axes.grid(True, color="0.88")
    axes.legend(loc="upper left", fontsize="small")  # where PCK curves are still low
    figure.tight_layout()
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])


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


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image to ``path`` (format from the extension, e.g. ``.png``, ``.jpg``),
    creating its folder. The image is encoded in memory and written whole or not at all
    (:func:`poselit.atomic.write_atomic`); a failure is an ``OSError`` naming the file."""
    path = Path(path)
    try:
        encoded, data = cv2.imencode(path.suffix, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error as err:  # e.g. an extension OpenCV has no encoder for
        raise OSError(f"{path}: could not encode the image ({err})") from err
    if not encoded:
        raise OSError(f"{path}: could not encode the image (unknown image extension {path.suffix!r}?)")
    make_folder(path.parent)
    return write_atomic(path, data.tobytes())
