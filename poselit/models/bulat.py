"""Bulat & Tzimiropoulos, "Human Pose Estimation via Convolutional Part Heatmap Regression"
(ECCV 2016): a part-detection subnetwork followed by a regression subnetwork.

The detector turns the image into one part-detection heatmap per joint (per-pixel sigmoid
cross-entropy against binary disks around the *visible* joints); the regressor takes those
heatmaps stacked with the image and regresses confidence maps of *all* annotated joints
(L2 against Gaussians). Both work at the full input resolution. See :class:`BulatCascade`.

The subnetworks are in :mod:`poselit.models.bulat_subnetworks` (importable from here too);
this module assembles them into the method: trunk choice, training stages, losses.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poselit.codecs import DetectionRegressionCodec, Refine
from poselit.geometry import DEFAULT_PADDING
from poselit.lazy import lazy_names
from poselit.models import bulat_subnetworks
from poselit.models.backbones import Backbone
from poselit.models.base import BackbonePoseModule, Batch
from poselit.models.bulat_subnetworks import *  # noqa: F403 (re-exported: see __all__)

__all__ = [
    "BulatCascade",
    "CascadeStage",
    *bulat_subnetworks.__all__,
]

CascadeStage = Literal["detector", "regressor", "joint"]
"""The cascade's training stage (:attr:`BulatCascade.stage`); not Lightning's loop stage
(:data:`poselit.data.datamodule.LoopStage`)."""
Variant = Literal["residual", "vgg"]

DEFAULT_BACKBONES: dict[str, str] = {"residual": "resnet152", "vgg": "poselit_vgg16_fcn"}
"""The paper's detector trunk of each variant."""

PAPER_PERSON_HEIGHT = 200.0
"""Sec. 3: the disk radius is 10 px "for a body size of 200px of an upright standing person"."""
PAPER_DETECTION_RADIUS = 10.0


# --------------------------------------------------------------------------- the method


class BulatCascade(BackbonePoseModule):
    """Part-detection -> regression cascade of Bulat & Tzimiropoulos (ECCV 2016), Sec. 3.

    The part-detection subnetwork maps the image to ``K`` detection heatmaps at the input
    resolution, trained with per-pixel sigmoid cross-entropy against binary disks drawn
    around the **visible** joints. The regression subnetwork takes the detection heatmaps
    (sigmoid) stacked with the image and regresses ``K`` confidence maps at the input
    resolution, trained with L2 against Gaussians (std 5 px) of **all annotated** joints,
    visible or occluded. Keypoints are the maxima of the final maps (quarter-pixel step).

    Two instances, as in the paper:

    * ``variant="residual"`` (Table 3 + 4): ResNet-152 detector with a stride-1 last stage,
      a 1x1 scoring layer and a 16x16/16 deconvolution (:class:`ResidualDetector`); a single
      hourglass with deconvolution upsampling as regressor (:class:`HourglassRegressor`).
      Any timm model that accepts ``output_stride=16`` can replace the trunk (``backbone``).
    * ``variant="vgg"`` (Tables 1 + 2): VGG-16 FCN-8s detector (:class:`FCN8sDetector`) and
      the 7-layer large-kernel regressor (:class:`VGGRegressor`). Any trunk with taps at
      strides 8/16/32 can replace VGG-16.

    Training follows the paper's schedule through ``stage``: ``"detector"`` trains the
    detector alone (the regressor is neither run nor trained; heatmaps and keypoints come
    from the detection maps); ``"regressor"`` freezes the detector (no gradients, and kept in
    eval mode so its batch-norm statistics stay fixed) and trains the regressor; ``"joint"``
    trains both end to end with ``detection_weight * L_det + regression_weight * L_reg``.
    Weights carry over between stages with ``init_from=<previous stage's checkpoint>`` or
    ``load_state_dict`` (every stage has the same tensors), or switch a live model with
    ``model.stage = "regressor"``. (In stage ``"regressor"`` Lightning's "Found N module(s)
    in eval mode at the start of training" warning is expected: that is the frozen
    detector.)

    Outputs of ``forward`` (normalised images ``(B, 3, H, W)``): ``stages`` = (detection
    logits, regression maps or ``None`` in stage ``"detector"``), both ``(B, K, H, W)``;
    ``heatmaps``: the final maps (regression maps; detection sigmoid in stage
    ``"detector"``); ``keypoints`` ``(B, K, 2)`` in input pixels and ``scores`` ``(B, K)``
    (map maxima). Every map is at the input's resolution: :attr:`codec` (a
    :class:`~poselit.codecs.DetectionRegressionCodec`) has stride 1, so its lengths are input
    pixels: disks of radius ``detection_radius``, Gaussians of std ``regression_std``; it
    decodes the maps by clamping negatives to 0 (after the flip test's averaging of the maps,
    as the authors' evaluation code does) before the argmax with the quarter-pixel step.

    Parameters (any input size; the paper configurations, default backbones):

    ==================================  ==================  ==================
    part                                K = 16 (MPII)       K = 14 (LSP)
    ==================================  ==================  ==================
    residual: ResNet-152 trunk          58,143,808          58,143,808
    residual: B6 scoring + B7 deconv    98,336              78,876
    residual: hourglass regressor       17,370,528          17,362,780
    **residual total**                  **75,612,672**      **75,585,464**
    vgg: VGG-16 conv1_1..conv5_3        14,714,688          14,714,688
    vgg: FCN-8s head (fc6/fc7 1x1-512)  554,032             549,546
    vgg: 7-layer regressor + C8         9,916,128           9,907,868
    **vgg total**                       **25,184,848**      **25,172,102**
    ==================================  ==================  ==================

    Deliberate deviations (and readings of the paper):

    * **Detector upsampling.** The paper's text puts a 4x4/4 deconvolution after a stride-16
      trunk and says it "upsamples the output layers to match the resolution of the input";
      4x from stride 16 cannot. The authors' released ResNet-152 detector (read in
      ``marian-margeta/gait-recognition``, ``part_detector.py``, which loads its Torch
      weights) uses one 16x16/16 deconvolution; so does this class (kernel = stride = the
      trunk's stride), giving full-resolution maps as the paper and the reference demand.
    * **Stride-1 last stage without dilation** (``dilation=False``, default): the paper
      changes "the stride of its convolutional layers from 2px to 1px" and the released
      model has plain 3x3 convolutions there. timm's ``output_stride=16`` adds dilation 2
      (DeepLab's way of keeping the ImageNet receptive field); ``dilation=True`` keeps it.
      Same parameters either way.
    * **Initialisation.** "All added layers were initialized with 0" (detector) and "all
      layers from the regression subnetwork were zero-initialized, except for the
      deconvolution layers" would leave the hidden gradients at exactly zero, so only the
      scoring layers start at zero; deconvolutions start as upsampling (bilinear for 4x4/2,
      nearest for kernel = stride, where FCN's bilinear formula would shrink the signal);
      other hourglass convolutions use PyTorch's default. The VGG regressor keeps the
      paper's N(0, 0.01).
    * **Hourglass layout** from the authors' released MPII model (a Torch-to-PyTorch
      conversion published with CubiCasa5k, ``floortrans/models/model_1427.py``): depth 4,
      256 channels in, 512 out of every level, 2x2/2 deconvolutions (Table 4 lists "256"
      for them; the released weights have 512). Its input has ``3 + K`` channels (image +
      detection maps), as the paper describes (CubiCasa's copy was re-purposed: 3 inputs,
      51 outputs).
    * **VGG tables.** Our copy of Tables 1-2 is partly illegible. fc6/fc7 are 1x1
      convolutions with 512 channels (Table 1's "(512, 1x1, 1x1)"; FCN's 4096-wide 7x7
      fc6 cannot be "a convolutional layer of kernel size 1"), without dropout. The
      regressor's widths/kernels are C1 7x7/64 (the text: kernels "vary from 7 to 15"),
      C2 13x13/64, C3 13x13/128, C4 15x15/256, C5-C6 1x1/512, C7 1x1/K, C8 a deconvolution;
      it runs at stride 4 (a full-resolution 15x15x128x256 layer would cost ~0.5 TMAC per
      256x256 image).
    * **Losses are means**, not the paper's sums: per pixel over the maps that count, so
      learning rates do not depend on the input size or the joint count. Detection: visible
      joints are disks, occluded joints all-background (the paper trains on visible parts
      only, which is what makes occluded parts' detections weak, its Fig. 2), unannotated
      joints (visibility 0) are left out. Regression: joints with visibility 0 are left out
      ("stopping the backpropagation for the missing points", the paper's LSP choice).
    * **Disk radius** scales with the crop: ``detection_radius=None`` is 10 px per 200 px of
      person, the person being ``input_height / padding`` px tall in the crop
      (:func:`default_detection_radius`): ``input_height / 25`` px with the default padding,
      10.24 px at 256. (The residual paper model saw people ~200 px tall in 256x256 inputs:
      300 px in 380x380 crops rescaled.)

    **The paper's settings of the shared arguments** (the recipes give them): ``optimizer``
    RMSprop, residual detector learning rate 1e-3 -> 2.5e-5, regressor 1e-4 -> 2.5e-5,
    batch 8; ImageNet ``mean`` / ``std`` (the defaults) for the ImageNet trunks;
    ``input_size`` a multiple of 64 (residual) or 32 (vgg) with the paper's regressor
    (``4 * 2**regressor_depth`` and ``detector_stride``); ``init_from`` the previous stage's
    checkpoint, e.g. the detector stage's for stage ``"regressor"``.

    Args:
        variant: ``"residual"`` (ResNet + hourglass) or ``"vgg"`` (VGG-FCN + 7-layer).
        backbone: timm model name of the detector trunk. Default: ``"resnet152"``
            (residual), ``"poselit_vgg16_fcn"`` (vgg).
        stage: Training stage: ``"detector"``, ``"regressor"`` (detector frozen) or
            ``"joint"``.
        detection_radius: Disk radius of the detection targets in input pixels; ``None``:
            the paper's 10 px per 200 px of person, given ``padding`` (see above).
        regression_std: Standard deviation of the regression Gaussians in input pixels.
        refine: Sub-pixel refinement of the regression maps' argmax
            (:func:`~poselit.codecs.argmax_decode`): the authors' quarter-pixel step, or
            ``"dark"`` (held-out PCK@0.2 70.33 -> 70.72 for ``bulat-mobilenetv2-lsp``,
            ``benchmarks/results/decoding_cpu.json``).
        detection_weight: Weight of the detection loss in stage ``"joint"``.
        regression_weight: Weight of the regression loss in stage ``"joint"``.
        dilation: Residual variant: keep timm's dilation in the stage(s) turned to stride 1
            (``True``) or make them plain stride-1 stages as the authors did (``False``).
        detector_stride: Residual variant: stride of the trunk feature that is scored
            and deconvolved back to the input (the paper's 16). With ``neck_channels``
            (residual variant only), the trunk's deeper features are fused into that map
            instead of turning the deeper stages to stride 1 (``output_stride``): a
            pretrained mobile trunk keeps its strides.
        regressor_width: Residual variant: width of the hourglass regressor (the paper's
            256; see :class:`HourglassRegressor`).
        regressor_depth: Residual variant: levels of the hourglass regressor (the paper's 4).
        **kwargs: The backbone's weights and neck (:class:`~poselit.models.base.BackbonePoseModule`)
            and the shared arguments (:class:`~poselit.models.base.PoseLitModule`: skeleton,
            input description, flip test, optimiser, scheduler, ``init_from``).
    """

    def __init__(
        self,
        *,
        variant: Variant = "residual",
        backbone: str | None = None,
        stage: CascadeStage = "joint",
        detection_radius: float | None = None,
        regression_std: float = 5.0,
        refine: Refine | None = "quarter_offset",
        detection_weight: float = 1.0,
        regression_weight: float = 1.0,
        dilation: bool = False,
        detector_stride: int = 16,
        regressor_width: int = 256,
        regressor_depth: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if variant not in DEFAULT_BACKBONES:
            raise ValueError(f"variant must be 'residual' or 'vgg', got {variant!r}")
        residual_only = (  # (argument, value, default): the residual variant's own settings
            ("dilation", dilation, False),
            ("detector_stride", detector_stride, 16),
            ("neck_channels", self.neck_channels, None),
            ("regressor_width", regressor_width, 256),
            ("regressor_depth", regressor_depth, 4),
        )
        changed = [name for name, value, default in residual_only if value != default]
        if changed and variant != "residual":
            raise ValueError(f"{', '.join(changed)}: settings of the residual variant only, not of {variant!r}")
        for name, value in (("regression_std", regression_std), ("detection_radius", detection_radius)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (("detection_weight", detection_weight), ("regression_weight", regression_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.variant = variant
        self.backbone_name = backbone or DEFAULT_BACKBONES[variant]
        self.codec = DetectionRegressionCodec(
            stride=1,  # every map at the input's resolution: lengths in input pixels
            std=float(regression_std),
            refine=refine,
            clamp_negative=True,
            detection_radius=float(
                detection_radius
                if detection_radius is not None
                else default_detection_radius(self.input_size[0], self.padding)
            ),
        )
        self.detection_weight = float(detection_weight)
        self.regression_weight = float(regression_weight)

        num_joints = self.num_joints
        if variant == "residual":
            if self.neck_channels is None:
                trunk = _strided_backbone(self.build_backbone, self.backbone_name, detector_stride, dilation)
            else:
                trunk = self.build_backbone(self.backbone_name, out_strides=detector_stride)
            self.detector: nn.Module = ResidualDetector(trunk, num_joints)
            self.regressor: nn.Module = HourglassRegressor(3 + num_joints, num_joints, regressor_depth, regressor_width)
            self.multiple = _lcm(self.detector.stride, self.regressor.multiple)
        else:
            trunk = self.build_backbone(self.backbone_name, out_strides=(8, 16, 32))
            self.detector = FCN8sDetector(trunk, num_joints)
            self.regressor = VGGRegressor(3 + num_joints, num_joints)
            self.multiple = _lcm(32, self.regressor.multiple)
        self._check_size(self.input_size, "input_size")
        self._stage: CascadeStage = "joint"
        self.stage = stage

    # --- the training schedule ----------------------------------------------------------

    @property
    def stage(self) -> CascadeStage:
        """The training stage; setting it (re)applies the freezing of that stage."""
        return self._stage

    @stage.setter
    def stage(self, value: CascadeStage) -> None:
        if value not in ("detector", "regressor", "joint"):
            raise ValueError(f"stage must be 'detector', 'regressor' or 'joint', got {value!r}")
        self._stage = value
        self.detector.requires_grad_(value != "regressor")
        self.regressor.requires_grad_(value != "detector")
        self.train(self.training)

    def train(self, mode: bool = True) -> "BulatCascade":
        """As :meth:`nn.Module.train`, but a frozen detector (stage ``"regressor"``) stays in
        eval mode, so its batch-norm statistics do not move."""
        super().train(mode)
        if self._stage == "regressor":
            self.detector.eval()
        return self

    # --- the network --------------------------------------------------------------------

    def feature_extractor(self) -> nn.Module:
        return self.detector.backbone

    def forward(self, images: Tensor) -> dict[str, Any]:
        """Normalised images ``(B, 3, H, W)`` -> the output contract (see the class docs)."""
        self._check_size(tuple(images.shape[-2:]), "image size")
        if self._stage == "regressor":
            with torch.no_grad():
                logits = self.detector(images)
        else:
            logits = self.detector(images)
        if self._stage == "detector":
            maps = None
            heatmaps = torch.sigmoid(logits)
        else:
            stacked = torch.cat([images, torch.sigmoid(logits).to(images.dtype)], dim=1)
            maps = self.regressor(stacked)
            heatmaps = maps
        keypoints, scores = self.decode_heatmaps(heatmaps)
        return {"stages": (logits, maps), "heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    # --- losses -------------------------------------------------------------------------

    def loss(self, outputs: dict[str, Any], batch: Batch) -> dict[str, Tensor]:
        """``detection`` (per-pixel sigmoid cross-entropy against disks of visible joints)
        and/or ``regression`` (L2 against Gaussians of annotated joints), as the stage
        trains them; their weighted sum under ``loss``."""
        logits, maps = outputs["stages"]
        keypoints, visibility = batch["keypoints"], batch["visibility"]
        terms: dict[str, Tensor] = {}
        total = logits.new_zeros((), dtype=torch.float32)
        if self._stage in ("detector", "joint"):
            terms["detection"] = self.detection_loss(logits, keypoints, visibility)
            weight = 1.0 if self._stage == "detector" else self.detection_weight
            total = total + weight * terms["detection"]
        if self._stage in ("regressor", "joint"):
            if maps is None:
                raise ValueError("the regression loss needs regression maps (outputs['stages'][1])")
            terms["regression"] = self.regression_loss(maps, keypoints, visibility)
            weight = 1.0 if self._stage == "regressor" else self.regression_weight
            total = total + weight * terms["regression"]
        terms["loss"] = total
        return terms

    def detection_loss(self, logits: Tensor, keypoints: Tensor, visibility: Tensor) -> Tensor:
        """Mean per-pixel sigmoid cross-entropy against the :attr:`codec`'s disks around
        visible joints (occluded: background; unannotated: left out)."""
        target = self.codec.encode_detection(keypoints, visibility, tuple(logits.shape[-2:]))
        bce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
        return _masked_mean(bce, visibility > 0)

    def regression_loss(self, maps: Tensor, keypoints: Tensor, visibility: Tensor) -> Tensor:
        """Mean squared error against the :attr:`codec`'s Gaussians (std ``regression_std``)
        around every annotated joint (visible or occluded); unannotated joints are left out."""
        target = self.codec.encode(keypoints, visibility, tuple(maps.shape[-2:]), min_visibility=1)
        return _masked_mean((maps.float() - target) ** 2, visibility > 0)

    # --- helpers ------------------------------------------------------------------------

    def _check_size(self, size: tuple[int, ...], what: str) -> None:
        if any(int(s) % self.multiple for s in size):
            raise ValueError(
                f"{what} {tuple(int(s) for s in size)} must be a multiple of {self.multiple} "
                f"pixels for the {self.variant} variant of BulatCascade "
                f"(backbone {self.backbone_name!r})"
            )


def default_detection_radius(input_height: int, padding: float = DEFAULT_PADDING) -> float:
    """The paper's 10 px for a 200 px tall person, for a person ``input_height / padding``
    pixels tall (the crop of :class:`~poselit.data.PoseDataset`): ``input_height / 25``
    with :data:`~poselit.geometry.DEFAULT_PADDING`.

    >>> default_detection_radius(256), default_detection_radius(256, padding=1.0)
    (10.24, 12.8)
    """
    return PAPER_DETECTION_RADIUS * input_height / (PAPER_PERSON_HEIGHT * padding)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``(B, K, H, W)`` values over the ``(B, K)`` maps where ``mask`` is true (0 if
    none)."""
    mask = mask.to(values.device)
    kept = torch.where(mask[..., None, None], values, 0.0)
    count = mask.sum() * values.shape[-2] * values.shape[-1]
    return kept.sum() / count.clamp_min(1)


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _undilate_(module: nn.Module) -> int:
    """Turn dilated convolutions back into plain ones with the same output size; returns
    how many were changed. Used to make timm's ``output_stride=16`` (stride 1 and dilation 2
    in the last stage) a plain stride-1 last stage, as in the authors' released detector."""
    changed = 0
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and conv.dilation != (1, 1):
            if isinstance(conv.padding, str):  # "same" / "valid" adapt to the dilation by themselves
                conv.dilation = (1, 1)
            else:
                conv.padding = tuple(
                    max(0, p - (d - 1) * (k - 1) // 2)
                    for p, d, k in zip(conv.padding, conv.dilation, conv.kernel_size)
                )
                conv.dilation = (1, 1)
            changed += 1
    return changed


def _strided_backbone(build: Callable[..., Backbone], name: str, stride: int, dilation: bool) -> Backbone:
    """A timm trunk whose deepest feature has ``stride`` (``output_stride``; the paper's 16),
    made by ``build(name, **options)``
    (:meth:`~poselit.models.base.BackbonePoseModule.build_backbone`), with the dilation timm
    puts in the stride-1 stages removed unless ``dilation``."""
    try:
        trunk = build(name, output_stride=stride)
    except TypeError as err:  # models without output_stride keep their own stride
        if "output_stride" not in str(err):
            raise
        trunk = build(name)
    if not dilation:
        _undilate_(trunk)
    return trunk


# Renamed, importable under its old name for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved={"Stage": "poselit.models.bulat:CascadeStage"})
