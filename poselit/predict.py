"""Poses of people in your own images: :class:`Predictor` (the library side of ``poselit predict``).

A :class:`Predictor` wraps a trained :class:`~poselit.models.base.PoseLitModule`. It
takes images as they come, crops each person exactly as the dataset crops training
samples (one affine warp, :func:`~poselit.geometry.crop_affine`), runs the model in
batches on its device (flip test as the model's default, optional autocast) and maps
the joints back to the original image's pixels (the centre of the top-left pixel is
(0, 0)):

>>> import numpy as np, poselit
>>> predictor = Predictor(poselit.zoo.load("luvizon-tiny-lsp-demo"))
>>> photo = np.zeros((480, 640, 3), np.uint8)        # or a path, a PIL image, a tensor
>>> pose = predictor(photo, box=[120, 40, 200, 420])[0]  # [x, y, w, h]; no box: the whole image
>>> pose.keypoints.shape, pose.scores.shape, pose.joint_names[-1]  # original-image pixels
((14, 2), (14,), 'head_top')

**Images** (one, or a list): a file path; a NumPy array ``(H, W)``, ``(H, W, 1)``,
``(H, W, 3)`` or ``(H, W, 4)`` in RGB(A) order, or BGR(A) with ``color_order="bgr"``
(OpenCV's); a ``PIL.Image``; a torch tensor ``(C, H, W)`` or ``(H, W)`` (``C`` = 1, 3 or 4).
Arrays and tensors are ``uint8``, or floating point with values in [0, 1]. Conversions:
grayscale is repeated into three channels; an alpha channel is dropped (not composited);
files and PIL images are turned upright by their EXIF orientation. An empty, unreadable or
otherwise unusable image raises an error naming it.

**Person boxes** (optional, per image: one box or a list of boxes, one prediction per box):
four numbers ``[x, y, w, h]`` (``box_format="xywh"``, COCO's) or ``[x1, y1, x2, y2]``
(``"xyxy"``) in the image's pixels, or ``{"center": [x, y], "scale": s}`` (MPII's
convention: a square of side ``200 * s`` px). A box is the tight box around the person:
the crop adds the model's margin (``padding``, as in training). Without a box (``None``) the
whole image is the crop (as large as it fits in the model input, no margin added). In a
list of images, an empty list of boxes means nobody to predict in that image; for a single
image it is an :class:`InputError` (it would give no pose at all: ``None`` is the whole
image). A box with zero size, a non-finite number, entirely outside the image, smaller than
:data:`MIN_BOX_SIDE` or absurdly large (over 3x the image's longer side, see
:data:`poselit.geometry.IMAGE_MARGIN`) raises an :class:`InputError` naming the image and
the box; a box partly outside the image is fine (the outside is filled with ``fill``).
Files above the pixel limit (:func:`poselit.data.dataset.max_image_pixels`, 100
megapixels; ``POSELIT_MAX_IMAGE_PIXELS``) are refused from their header, before decoding;
truncated files are errors, not partly grey images.

**Second pass** (``refine=True``; people without a box only): in the whole-image crop a
small person in a large photograph spans few model-input pixels. The second pass crops
again around the first pass's pose, as training crops are built around the annotated
joints: the tight box around all the predicted joints (:func:`joints_box`; not only the
confident ones: a box that misses a joint cuts its limb off, one widened by a wrong joint
still holds the person) plus the margin ``padding``, and predicts again. The first pose
stays when its box cannot be cropped (centre outside the image, side longer than the
image's longer side, or so short that the crop would magnify more than :data:`MAX_ZOOM`
times). It costs one more forward pass per such person.

**People in any photo** (``detector=``): a person detector (:mod:`poselit.detect`; the
default, :func:`poselit.detect.default_detector`, runs offline) finds the people of each image
given without a box, and each detected person gets a pose, the surest first, at most
``max_people``, with the detector's score (:attr:`PosePrediction.detection_score`, the
documents' ``detection_score``); an image where it finds nobody gets no pose. A box given for an image is
used as it is. Without a detector, a whole-image pose that looks like a small person or
several people (:func:`poselit.detect.whole_image_hint`) is warned about, once per predictor.

**Results**: one :class:`PosePrediction` per person, in input order.

**Files** (``poselit predict``): one JSON document per image, ``<out>/<image stem>.json``
(or one per line of ``<out>/predictions.jsonl`` with ``--jsonl``), and the annotated
image ``<out>/<image stem>.png`` (downscaled to
:data:`poselit.cli.predict.ANNOTATED_MAX_SIDE` px on its longer side). A document::

    {
      "image": "photos/a.jpg",          # the input path
      "width": 640, "height": 480,      # of the image, in pixels
      "model": "luvizon-tiny-lsp-demo",
      "skeleton": {"name": "lsp",
                   "joints": ["right_ankle", ...],      # K joint names
                   "limbs": [[0, 1], ...]},             # bones, 0-based joint indices
      "people": [
        {"box": {"center": [x, y], "scale": s},         # the person box used (MPII convention)
         "keypoints": [[x, y], ...],                    # K joints, original-image pixels
         "scores": [s, ...],                            # K per-joint scores, higher = surer
         "detection_score": 0.87}                       # only when a person detector found them
      ]
    }

``--boxes FILE`` is a JSON object mapping an image (its file name, or its path as given
on the command line) to one box or a list of boxes in the forms above, e.g.
``{"a.jpg": [120, 40, 200, 420], "b.jpg": [[10, 10, 50, 90], {"center": [300, 200], "scale": 1.2}]}``;
images it does not name use the whole image.

The input forms are checked and converted by :mod:`poselit.predict_inputs`, the results and
their documents are :mod:`poselit.predict_results`; every name of both is importable from
here.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from poselit import predict_inputs, predict_results
from poselit.geometry import crop_affine, invert_affine, to_image_coords, warp_image
from poselit.input_spec import InputSpec, PoseModel, resolve_input_spec
from poselit.predict_inputs import *  # noqa: F403 (re-exported: see __all__)
from poselit.predict_results import *  # noqa: F403 (re-exported: see __all__)
from poselit.detect import PersonDetector, detect_people, warn_whole_image
from poselit.extras import require
from poselit.progress import show_progress
from poselit.skeletons import Skeleton

if TYPE_CHECKING:
    from poselit.models.base import PoseLitModule
    from poselit.onnx import OnnxPoseModel

__all__ = [
    "RUNTIMES",
    "Predictor",
    "choose_runtime",
    "requested_runtime",
    *predict_inputs.__all__,
    *predict_results.__all__,
]

SAMPLES = Path(__file__).resolve().parent / "assets" / "samples"
"""The bundled sample images of ``poselit demo`` (origin and licence in ``SOURCES.md`` there)."""


@dataclass(frozen=True)
class _Person:
    """One crop waiting for the model."""

    image: str
    image_index: int
    image_size: tuple[int, int]
    center: np.ndarray
    scale: float
    to_input: np.ndarray
    crop: np.ndarray
    rgb: np.ndarray | None = None  # the image, kept for a second pass
    detection_score: float | None = None  # the detector's, when it found the person


def _nothing(_: int) -> None:
    """A progress callback that draws nothing (no bar)."""


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


Runtime = Literal["auto", "torch", "onnx"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx")
"""``Predictor``'s ``runtime`` choices (``poselit predict --runtime``)."""


def requested_runtime(runtime: str | None) -> str:
    """``runtime`` checked, ``None`` read as ``$POSELIT_RUNTIME``, else ``"auto"``.

    >>> requested_runtime("torch")
    'torch'
    """
    requested = runtime or os.environ.get("POSELIT_RUNTIME") or "auto"
    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {requested!r} (POSELIT_RUNTIME?)")
    return requested


def choose_runtime(model: Any, requested: str | None, *, autocast: bool = False) -> str:
    """What runs ``model`` for a :class:`Predictor`: ``"onnxruntime"``, ``"torch"`` or, for a
    :class:`~poselit.tflite.TflitePoseModel`, ``"litert"`` (see its ``runtime``). ``requested`` ``None`` is ``$POSELIT_RUNTIME``, else ``"auto"``.

    >>> import torch
    >>> choose_runtime(torch.nn.Linear(1, 1).eval(), "torch")
    'torch'
    >>> choose_runtime(torch.nn.Linear(1, 1).eval(), "auto", autocast=True)
    'torch'
    """
    requested = requested_runtime(requested)
    if not isinstance(model, torch.nn.Module):  # an exported model runs in its own runtime
        runtime = getattr(model, "runtime", "onnxruntime")  # TflitePoseModel's: "litert"
        if requested == "torch":
            described = "a TFLite model: it runs in LiteRT" if runtime == "litert" else "an ONNX model: it runs in ONNX Runtime"
            raise ValueError(f"{type(model).__name__} is {described}, not torch")
        return runtime
    if requested == "torch":
        return "torch"
    on_cpu = next(model.parameters()).device.type == "cpu"
    if requested == "onnx":
        if not on_cpu or autocast:
            raise ValueError("runtime='onnx' runs float32 on the CPU: no GPU device, no autocast")
        require("onnxruntime", "onnx", "runtime='onnx'")
        require("onnx", "onnx", "runtime='onnx'")
        return "onnxruntime"
    return "onnxruntime" if on_cpu and not autocast and _installed("onnx", "onnxruntime") else "torch"


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in modules)


class Predictor:
    """Single-person poses in any image, in the image's own pixels (see the module docs).

    Args:
        model: A trained pose model, or one exported to ONNX
            (:class:`~poselit.onnx.OnnxPoseModel`): anything with an input spec
            (:class:`~poselit.input_spec.PoseModel`), which the crops follow
            (:attr:`input_spec`); it is put in eval mode (and moved to ``device``).
        batch_size: People per forward pass.
        flip_test: Average with the mirrored image's prediction; ``None``: the model's
            setting (on for every method by default).
        autocast: Mixed precision: ``True`` (bfloat16 on CPU, float16 on GPUs) or a dtype;
            torch models only (an ONNX model runs as it was exported: ``ValueError``).
        device: Where to run; ``None``: where the model is.
        padding: Margin around a given person box; a number > 0, else ``ValueError``.
            ``None``: the model's (its ``input_spec``: as in training).
        fill: Value of crop pixels outside the image, an integer in [0, 255]; ``None``: the
            model's (as in training).
        refine: A second pass for people without a box, cropped around the first pass's
            joints (see the module docs).
        runtime: What runs a torch model: ``"onnx"`` (ONNX Runtime, on the CPU: the model is
            exported once to a cached file, :func:`poselit.onnx.cache.onnx_runner`, and runs
            about twice as fast as eager torch), ``"torch"`` (eager), or ``"auto"``: ONNX
            Runtime on the CPU without ``autocast``, torch otherwise; ``None``: ``$POSELIT_RUNTIME``,
            else ``"auto"``. What was chosen is :attr:`runtime` (``"onnxruntime"`` or
            ``"torch"``). An ONNX model always runs in ONNX Runtime, a TFLite one
            (:class:`~poselit.tflite.TflitePoseModel`) in LiteRT (``"litert"``).
        detector: A person detector for images given without a box
            (:func:`poselit.detect.default_detector`, or any callable of
            :data:`poselit.detect.PersonDetector`): one pose per detected person, the surest
            first (see the module docs). ``None``: the whole image is the crop.
        max_people: At most this many people per image, the surest (with a ``detector``).
    """

    def __init__(
        self,
        model: PoseModel,
        *,
        batch_size: int = 16,
        flip_test: bool | None = None,
        autocast: bool | torch.dtype = False,
        device: str | torch.device | None = None,
        padding: float | None = None,
        fill: int | None = None,
        refine: bool = False,
        runtime: Runtime | None = None,
        detector: PersonDetector | None = None,
        max_people: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(model, PoseModel):
            raise TypeError(
                f"model must be a pose model with an input spec (a PoseLitModule, an OnnxPoseModel: "
                f"poselit.input_spec.PoseModel), got {type(model).__name__}"
            )
        if autocast and not isinstance(model, torch.nn.Module):
            raise ValueError(f"autocast is for torch models; {type(model).__name__} runs as it was exported")
        model = (model if device is None else model.to(device)).eval()
        requested = requested_runtime(runtime)
        self.runtime = choose_runtime(model, requested, autocast=bool(autocast))
        if self.runtime == "onnxruntime" and isinstance(model, torch.nn.Module):
            model = self._onnx_runner(model, forced=requested == "onnx")
        self.model = model
        self.device = self.model.device
        self.batch_size = batch_size
        self.flip_test = flip_test
        if autocast is True:
            autocast = torch.bfloat16 if self.device.type == "cpu" else torch.float16
        self.autocast_dtype: torch.dtype | None = autocast or None
        self.input_spec: InputSpec = resolve_input_spec(
            {"padding": padding, "fill": fill}, model_spec=self.model.input_spec
        )  # the model's, with the crop arguments given here
        self.padding, self.fill = self.input_spec.padding, self.input_spec.fill
        self.refine = refine
        if max_people is not None and max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        if max_people is not None and detector is None:
            raise ValueError("max_people limits the people a detector finds: give detector= too")
        self.detector, self.max_people = detector, max_people
        self._warned = detector is not None  # whole-image warnings: once, and only without a detector

    def _onnx_runner(self, model: PoseLitModule, *, forced: bool) -> PoseLitModule | OnnxPoseModel:
        """``model`` exported to ONNX Runtime (:func:`poselit.onnx.cache.onnx_runner`); when it
        cannot be and ONNX Runtime was not ``forced``, ``model`` itself with a warning, and
        :attr:`runtime` ``"torch"``."""
        from poselit.onnx.cache import onnx_runner

        try:
            return onnx_runner(model)
        except Exception as err:  # noqa: BLE001 (any export failure: torch still runs the model)
            if forced:
                raise
            warnings.warn(f"{type(model).__name__} runs in torch, not ONNX Runtime: {err}", stacklevel=3)
            self.runtime = "torch"
            return model

    @classmethod
    def from_zoo(
        cls,
        name: str,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | Path | None = None,
        zoo_dir: str | Path | None = None,
        **options: Any,
    ) -> Predictor:
        """A predictor for a zoo model (:func:`poselit.zoo.load`: a name,
        ``hf://ORG/NAME[@REVISION]`` or an export folder) that crops as the model was trained:
        the model's ``padding`` and ``fill`` are those its card records.

        ``options`` are the other arguments of :class:`Predictor` (``batch_size``,
        ``flip_test``, ``autocast``, ``padding``, ``fill``).
        """
        from poselit.zoo import load

        model = load(name, revision=revision, device=device, cache_dir=cache_dir, zoo_dir=zoo_dir)
        return cls(model, **options)

    @property
    def skeleton(self) -> Skeleton:
        return self.input_spec.skeleton

    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        box: BoxInput | Sequence[BoxInput] | None = None,
        *,
        boxes: Sequence[BoxInput | Sequence[BoxInput] | None] | None = None,
        box_format: BoxFormat = "xywh",
        color_order: ColorOrder = "rgb",
        names: Sequence[str] | None = None,
        return_heatmaps: bool = False,
        progress: bool | None = None,
    ) -> list[PosePrediction]:
        """Poses of the people in one image or a list of images.

        Args:
            images: One image or a list (list or tuple) of images, see the module docs.
            box: For a single image: its person box, or a non-empty list of boxes (one
                prediction each); ``None``: the whole image.
            boxes: For a list of images: one entry per image (a box, a list of boxes, ``[]``
                for nobody in that image, or ``None`` for the whole image).
            box_format: ``"xywh"`` or ``"xyxy"`` for boxes given as four numbers.
            color_order: Channel order of arrays and tensors: ``"rgb"`` or ``"bgr"``.
            names: Names of the images in results and errors (default: the path, else
                ``image[i]``).
            return_heatmaps: Keep each person's crop (and heatmaps, for heatmap methods).
            progress: A progress bar over the images on stderr: ``True`` / ``False``;
                ``None``: for 100 images and more, when stderr is a terminal.

        Returns:
            One :class:`PosePrediction` per person, in input order (images, then boxes).
        """
        if isinstance(images, (list, tuple)):
            if box is not None:
                raise ValueError("for a list of images, give boxes=[...] (one entry per image), not box=")
            boxes = [None] * len(images) if boxes is None else list(boxes)
            if len(boxes) != len(images):
                raise ValueError(f"got {len(images)} images but {len(boxes)} box entries")
        else:
            if boxes is not None:
                raise ValueError("for a single image, give box= (one box or a list of boxes), not boxes=")
            if box is not None and not isinstance(box, Mapping) and hasattr(box, "__len__") and len(box) == 0:
                raise InputError(f"{names[0] if names else 'image[0]'}: the list of boxes is empty, which gives "
                                 "no pose; give at least one box, or None for the whole image")
            images, boxes = [images], [box]
        if names is not None and len(names) != len(images):
            raise ValueError(f"got {len(images)} images but {len(names)} names")
        shown = show_progress(progress, len(images))  # no bar object at all otherwise: ~0.1 ms a call
        with tqdm(total=len(images), desc="predicting", unit="image") if shown else nullcontext() as bar:
            people = self._people(images, boxes, names, box_format, color_order, bar.update if shown else _nothing)
            poses = [p for chunk in _chunks(people, self.batch_size) for p in self._passes(chunk, return_heatmaps)]
        if not self._warned:
            self._warned = warn_whole_image([p for p in poses if boxes[p.image_index] is None])
        return poses

    __call__ = predict

    def _people(
        self,
        images: Sequence[ImageInput],
        boxes: Sequence[Any],
        names: Sequence[str] | None,
        box_format: BoxFormat,
        color_order: ColorOrder,
        done: Callable[[int], Any],
    ) -> Iterator[_Person]:
        """Crops of every person, image by image (images are decoded one at a time);
        ``done(1)`` after each image."""
        for i, (image, image_boxes) in enumerate(zip(images, boxes)):
            name = names[i] if names else str(image) if isinstance(image, (str, os.PathLike)) else f"image[{i}]"
            rgb = load_image(image, color_order=color_order, name=name)
            detection_scores: list[float | None] = []
            if image_boxes is None and self.detector is not None:  # boxes [x, y, w, h], surest first
                image_boxes, scores = detect_people(self.detector, rgb, name, self.max_people)
                detection_scores = scores.tolist()
            image_format = "xywh" if detection_scores else box_format
            for n, box in enumerate(box_list(image_boxes, name)):
                if box is None:
                    center, scale = whole_image_box(rgb.shape[:2], self.padding, self.input_spec.size)
                else:
                    center, scale = person_box(box, rgb.shape[:2], box_format=image_format, name=name)
                person = self._crop(rgb, name, i, center, scale, keep_image=box is None and self.refine)
                yield replace(person, detection_score=detection_scores[n]) if detection_scores else person
            done(1)

    def _crop(
        self, rgb: np.ndarray, name: str, index: int, center: np.ndarray, scale: float, *, keep_image: bool
    ) -> _Person:
        """The model input of the box ``(center, scale)`` of the ``index``-th image, ``rgb``
        (kept with it for a second pass if ``keep_image``)."""
        size = self.input_spec.size
        to_input = crop_affine(center, scale, size, padding=self.padding)
        crop = warp_image(rgb, to_input, size, self.fill)
        return _Person(name, index, rgb.shape[:2], center, scale, to_input, crop, rgb if keep_image else None)

    def _passes(self, people: list[_Person], return_heatmaps: bool) -> list[PosePrediction]:
        """The poses of a batch of crops; those that kept their image (``refine``) predicted
        again on the crop around their first pose (see the module docs)."""
        poses = self._run(people, return_heatmaps)
        again = {i: self._second_crop(p, pose) for i, (p, pose) in enumerate(zip(people, poses)) if p.rgb is not None}
        again = {i: crop for i, crop in again.items() if crop is not None}
        if again:
            for i, pose in zip(again, self._run(list(again.values()), return_heatmaps)):
                poses[i] = pose
        return poses

    def _second_crop(self, person: _Person, pose: PosePrediction) -> _Person | None:
        """The crop around all the joints of ``person``'s first ``pose``; ``None`` when their
        box cannot be cropped (:func:`joints_box`)."""
        every = np.ones(len(pose.keypoints), bool)
        min_side = smallest_joints_box(self.input_spec.size, self.padding)
        box = joints_box(pose.keypoints, every, person.image_size, min_side=min_side)
        if box is None:
            return None
        center = np.asarray(box["center"], np.float32)
        return self._crop(person.rgb, person.image, person.image_index, center, box["scale"], keep_image=False)

    def _run(self, people: list[_Person], return_heatmaps: bool) -> list[PosePrediction]:
        """One forward pass over a batch of crops; joints mapped back to each image."""
        crops = torch.from_numpy(np.stack([p.crop for p in people])).permute(0, 3, 1, 2).to(self.device)
        autocast = torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )
        with torch.inference_mode(), autocast:
            outputs = self.model.predict_poses(crops, flip_test=self.flip_test)
        to_original = invert_affine(np.stack([p.to_input for p in people]))
        keypoints = to_image_coords(outputs["keypoints"].float().cpu().numpy(), to_original)  # float64
        scores = outputs["scores"].float().cpu().numpy()
        heatmaps = outputs.get("heatmaps") if return_heatmaps else None
        heatmaps = None if heatmaps is None else heatmaps.float().cpu().numpy()
        return [
            PosePrediction(
                keypoints=keypoints[i].astype(np.float32),
                scores=scores[i],
                skeleton=self.skeleton,
                center=np.asarray(p.center, np.float32),
                scale=float(p.scale),
                image=p.image,
                image_index=p.image_index,
                image_size=(int(p.image_size[0]), int(p.image_size[1])),
                affine=to_original[i].astype(np.float32),
                crop=p.crop if return_heatmaps else None,
                heatmaps=None if heatmaps is None else heatmaps[i],
                detection_score=p.detection_score,
            )
            for i, p in enumerate(people)
        ]
