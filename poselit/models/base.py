"""PoseLitModule: the one training / evaluation / prediction loop shared by every method.

A method subclasses :class:`PoseLitModule` and supplies two things:

* ``forward(images)`` on normalised float images ``(B, 3, H, W)``, returning a dict with
  the **output contract**: ``keypoints`` ``(B, K, 2)`` in input pixels, ``scores``
  ``(B, K)``, the per-stage raw outputs its loss needs (e.g. ``stages``), and optionally
  the outputs its :attr:`~PoseLitModule.codec` decodes and merges in the flip test (e.g. the
  final ``heatmaps`` ``(B, K, h, w)`` of a :class:`~poselit.codecs.HeatmapCodec`);
* ``loss(outputs, batch)``: a dict of named loss terms with the total under ``"loss"``,
  targets encoded on the device from the batch's ``keypoints`` / ``visibility``.

Everything else lives here, once: image normalisation on the device (the data pipeline
delivers uint8), the flip test, mapping predictions back to original-image pixels with
the sample's ``affine`` (:func:`~poselit.geometry.to_image_coords`, as
:class:`~poselit.predict.Predictor` does), the metrics of each evaluation dataset's
protocol, logging, and the optimiser / scheduler given to the constructor (LightningCLI's
callables). The model also owns its input description, one
:class:`~poselit.input_spec.InputSpec` (:attr:`PoseLitModule.input_spec`: skeleton, crop
size, padding, fill, normalisation), which the data module is linked to, the card and the
ONNX metadata record, and :class:`~poselit.predict.Predictor` crops with.

**Arguments are inherited, not repeated.** A method's constructor declares its own
arguments (keyword-only) and those whose default it changes, and forwards the rest as
``**kwargs``: to :class:`PoseLitModule` (skeleton, input description, optimisation,
``init_from``), or through :class:`BackbonePoseModule` (the backbone's weights and neck)
for a method built on a backbone. LightningCLI resolves the forwarding, so
``--help`` and ``--print_config`` show every argument of the hierarchy, documented where
it is declared; cards are checked against the same hierarchy
(:func:`poselit.models.constructor_arguments`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from poselit import geometry
from poselit.checkpoints import CLASS_KEY, check_weights, read_state_dict
from poselit.codecs import Codec, CoordinateCodec, HeatmapCodec
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING, affine_scale
from poselit.input_spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, InputSpecFields, resolve_input_spec
from poselit.lazy import lazy_names
from poselit.metrics import MetricResult, pose_metrics
from poselit.models import class_path
from poselit.models.backbones import Backbone, create_backbone
from poselit.models.pretrained import load_pretrained, push_to_hub, weights_file

Batch = Mapping[str, Tensor]
LRScaling = Literal["none", "linear", "sqrt"]


def halves(outputs: Any, batch: int) -> tuple[Any, Any]:
    """The first and second half of each tensor in ``outputs`` whose first dimension is the
    ``batch`` (in tensors, dicts, lists and tuples of them; anything else, e.g. a map size,
    goes to both halves): the originals' and the mirrored images' outputs of one
    flip-test call.

    >>> first, second = halves({"maps": torch.arange(4).reshape(4, 1), "stages": (torch.zeros(4), 7)}, batch=4)
    >>> first["maps"].flatten().tolist(), second["maps"].flatten().tolist(), second["stages"]
    ([0, 1], [2, 3], (tensor([0., 0.]), 7))
    """
    if isinstance(outputs, Tensor) and outputs.dim() and outputs.shape[0] == batch:
        first, second = outputs.chunk(2)
        return first, second
    if isinstance(outputs, Mapping):
        pairs = {key: halves(value, batch) for key, value in outputs.items()}
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
    if isinstance(outputs, (list, tuple)):
        pairs = [halves(value, batch) for value in outputs]
        build = getattr(type(outputs), "_make", type(outputs))  # a named tuple's fields by position
        return build(p[0] for p in pairs), build(p[1] for p in pairs)
    return outputs, outputs


class PoseLitModule(InputSpecFields, pl.LightningModule):
    """Base LightningModule of all pose methods.

    Args:
        skeleton: Joint layout: a built-in name (``"lsp"``, ``"mpii"``, ``"coco"``) or a
            COCO-format category dict (custom keypoints).
        input_size: Input crop ``(height, width)``.
        padding: Margin around a person box when cropping: the crop side is
            ``200 * scale * padding`` px (the data module's, linked by ``poselit fit``).
        fill: Value of crop pixels outside the image, 0-255 (linked from the data module).
        mean: Per-channel mean subtracted on the device, in 0-255 units; ``None``: what
            the backbone's ``pretrained_cfg`` says its weights expect (a method on a
            backbone, :class:`BackbonePoseModule`), else ImageNet's
            (:func:`~poselit.input_spec.resolve_input_spec`).
        std: Per-channel divisor, in 0-255 units; ``None``: as ``mean``.
        flip_test: Average the prediction with that of the mirrored image at evaluation.
        optimizer: Optimiser factory (LightningCLI ``OptimizerCallable``).
        lr_scheduler: Optional scheduler factory; a ``ReduceLROnPlateau`` monitors the
            validation PCK.
        lr_scaling: How the optimiser's learning rate follows the number of training
            processes ``N`` (DDP): ``"none"``, ``"linear"`` (x N: the effective batch grows
            N-fold, Goyal et al. 2017) or ``"sqrt"`` (x sqrt(N)). A recipe's learning rate
            is the paper's, for the paper's batch on one device.
        init_from: A checkpoint (Lightning ``.ckpt``, ``.safetensors``, ``zoo:NAME``) whose weights
            initialise the model before training: the next stage of a staged schedule, or
            fine-tuning. Tensors whose shapes differ (e.g. joint-specific layers for another
            joint count) keep their fresh initialisation and are listed in a warning. A
            resume with ``--ckpt_path`` still restores the full training state over it.
            Loaded once, at the first ``setup`` of any stage: ``poselit validate`` or
            ``test`` with ``init_from`` measure those weights, and a ``test`` after ``fit``
            measures the trained ones.
    """

    def __init__(
        self,
        skeleton: str | dict = "lsp",
        input_size: tuple[int, int] = (256, 256),
        padding: float = DEFAULT_PADDING,
        fill: int = DEFAULT_FILL,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        flip_test: bool = True,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scaling: LRScaling = "none",
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        # Constructor arguments of the method (all classes of the hierarchy), stored in
        # checkpoints for load_from_checkpoint and model export; the optimisation settings
        # describe a training run, not the model, so they stay out.
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "lr_scaling"])
        if lr_scaling not in ("none", "linear", "sqrt"):
            raise ValueError(f"lr_scaling must be 'none', 'linear' or 'sqrt', got {lr_scaling!r}")
        self.lr_scaling = lr_scaling
        self.init_from = init_from
        self._initialised_from: str | None = None
        self._input_args = {"skeleton": skeleton, "size": input_size, "mean": mean, "std": std,
                            "padding": padding, "fill": fill}
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        self.resolve_input_spec()
        self.flip_test = flip_test
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.register_buffer("flip_index", torch.tensor(self.skeleton.flip_index), persistent=False)
        self.eval_metrics = nn.ModuleDict()
        self.results: dict[str, MetricResult] = {}

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def input_spec(self) -> InputSpec:
        """What the model expects of its input (an :class:`~poselit.input_spec.InputSpec`:
        skeleton, crop size, mean, std, padding, fill), from its constructor's arguments by
        the one rule of :func:`~poselit.input_spec.resolve_input_spec`.
        :class:`~poselit.predict.Predictor` crops with it; the card's ``input`` and the ONNX
        metadata are it, serialised.

        >>> spec = PoseLitModule(input_size=(64, 48), fill=128).input_spec
        >>> spec.size, spec.fill, spec.mean
        ((64, 48), 128, (123.675, 116.28, 103.53))
        """
        return self._input_spec

    def resolve_input_spec(self, pretrained_cfg: Mapping[str, Any] | None = None) -> InputSpec:
        """Set :attr:`input_spec` from the constructor's arguments and, for a ``mean`` or
        ``std`` not given, the backbone's ``pretrained_cfg`` (called again by
        :meth:`BackbonePoseModule.build_backbone` once the backbone is built). The
        normalisation buffers and the recorded hyper-parameters (what checkpoints rebuild the
        model with) follow it."""
        spec = resolve_input_spec(self._input_args, pretrained_cfg=pretrained_cfg)
        self._input_spec = spec
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        # the size as the data module records it: with a logger, Lightning refuses initial
        # hyper-parameters that the two modules share with different values ([1, 1] != (1, 1))
        for key, value in (("input_size", spec.size), ("mean", spec.mean), ("std", spec.std)):
            if key in self.hparams:
                self.hparams[key] = self._hparams_initial[key] = value
        return spec

    def input_description(self) -> dict[str, Any]:
        """Deprecated (for one release): ``input_spec.to_dict()``, the card's ``input``."""
        warnings.warn(
            "PoseLitModule.input_description() is deprecated: use model.input_spec (an InputSpec), "
            "or model.input_spec.to_dict() for the card's 'input' block",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.input_spec.to_dict()

    @classmethod
    def from_pretrained(cls, name: str, **kwargs: Any) -> "PoseLitModule":
        """A trained model of this method, the Hugging Face way: a zoo name, an
        ``hf://ORG/NAME[@REVISION]`` repository or an export folder, loaded by
        :func:`poselit.zoo.load` (sha256-checked, strict, eval mode) through the models'
        hook (:mod:`poselit.models.pretrained`). A model of another method is refused with a
        :class:`poselit.zoo.ZooError`; on :class:`PoseLitModule` itself any method is accepted.

        ``kwargs`` are :func:`poselit.zoo.load`'s (``revision``, ``device``, ``cache_dir``,
        ``zoo_dir``).

        >>> from poselit.models import LuvizonSoftArgmax
        >>> model = LuvizonSoftArgmax.from_pretrained("luvizon-tiny-lsp-demo")
        >>> model.num_joints, model.training
        (14, False)
        """
        return load_pretrained(name, expect=cls, **kwargs)

    def push_to_hub(self, repo_id: str, **options: Any) -> Any:
        """Upload this model to the Hugging Face Hub repository ``repo_id`` (``ORG/NAME``,
        created if needed), the Hugging Face way: exported as ``poselit zoo export`` exports
        (weights, ``config.json``, a Hub ``README.md``) and uploaded as ``poselit zoo publish``
        uploads, through the models' hook (:mod:`poselit.models.pretrained`). ``options`` are
        :func:`poselit.zoo.push.push_to_hub`'s (``name``, ``half``, ``private``,
        ``commit_message``, ``api``). Load it back with ``Method.from_pretrained("hf://ORG/NAME")``."""
        return push_to_hub(self, repo_id, **options)

    # --- what a method implements -------------------------------------------------------

    def loss(self, outputs: dict[str, Any], batch: Batch) -> dict[str, Tensor]:
        """Named loss terms with the total under ``"loss"`` (implemented by each method)."""
        raise NotImplementedError

    def feature_extractor(self) -> nn.Module:
        """The pretrained-able trunk (frozen by :class:`~poselit.callbacks.FreezeBackbone`);
        ``self.backbone`` unless a method keeps it elsewhere."""
        return self.backbone

    codec: Codec = CoordinateCodec()
    """The method's :class:`~poselit.codecs.Codec` (set by its constructor): its targets,
    the decoding of its outputs and how the flip test merges them; by default a
    :class:`~poselit.codecs.CoordinateCodec` (the network outputs keypoints itself)."""

    def decode_heatmaps(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Keypoints (input pixels) and scores from final heatmaps, through :attr:`codec`
        (a :class:`~poselit.codecs.HeatmapCodec`)."""
        if not isinstance(self.codec, HeatmapCodec):
            raise NotImplementedError(f"{type(self).__name__} has no heatmap codec (not a heatmap method)")
        return self.codec.decode(heatmaps)

    # --- shared inference ---------------------------------------------------------------

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 (or 0-255 float) images -> the float input the network expects."""
        return (images.to(self.mean.dtype) - self.mean) / self.std

    def predict_poses(self, images: Tensor, flip_test: bool | None = None) -> dict[str, Any]:
        """Run the network on 0-255 images ``(B, 3, H, W)``, with the flip test if enabled.

        Returns the unflipped raw outputs with ``keypoints`` / ``scores`` replaced by the
        flip-tested ones, merged as the :attr:`codec` says
        (:meth:`~poselit.codecs.Codec.merge_flipped`: heatmap codecs average heatmaps before
        decoding, as the Bulat et al. evaluation code does; coordinate codecs average
        coordinates). The mirrored images run in the same batch as the originals, one call
        instead of two (every layer is per-sample in evaluation: the same numbers, and a
        runtime's fixed cost per call and per layer paid once).
        """
        flip_test = self.flip_test if flip_test is None else flip_test
        inputs = self.normalize(images)
        if not flip_test:
            return dict(self(inputs))
        both = torch.cat([inputs, inputs.flip(-1)])
        outputs, mirrored = halves(self(both), batch=len(both))
        merged = self.codec.merge_flipped(outputs, mirrored, self.flip_index, images.shape[-1])
        outputs["keypoints"], outputs["scores"] = merged
        return outputs

    # --- training -----------------------------------------------------------------------

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        outputs = self(self.normalize(batch["image"]))
        losses = self.loss(outputs, batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch["image"]))
        self.log("train_loss", losses["loss"], prog_bar=True, logger=False, batch_size=len(batch["image"]))
        return losses["loss"]

    # --- evaluation ---------------------------------------------------------------------

    def _metrics(self, stage: str, dataloader_idx: int):
        """The metrics of one evaluation dataset's protocol, made at its first batch: with
        COCO's OKS AP (and no PCP) for COCO-format data, whose dataset holds the people and
        ignore regions (:attr:`~poselit.data.dataset.PoseDataset.oks`) and whose samples
        carry ``area`` and ``image_id``."""
        key = f"{stage}_{dataloader_idx}"
        if key not in self.eval_metrics:
            people = getattr(self._eval_dataset(stage, dataloader_idx), "oks", None)
            coco = None if people is None else people[1]
            self.eval_metrics[key] = pose_metrics(self.skeleton, scores=True, coco=coco).to(self.device)
        return self.eval_metrics[key]

    def _eval_dataset(self, stage: str, dataloader_idx: int) -> Any:
        """The dataset of the trainer's ``stage`` loader ``dataloader_idx`` (None without one)."""
        if self._trainer is None:
            return None
        loaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        return getattr(loaders[dataloader_idx], "dataset", None) if dataloader_idx < len(loaders) else None

    def _evaluate(self, batch: Batch, stage: str, dataloader_idx: int) -> dict[str, Tensor]:
        """Loss and metric updates of one evaluation batch; returns the (flip-tested)
        ``keypoints`` and ``scores`` in input pixels for callbacks."""
        outputs = self.predict_poses(batch["image"])
        batch_size = len(batch["image"])
        losses = self.loss(outputs, batch)
        self.log(f"{self._prefix(stage, dataloader_idx)}/loss", losses["loss"], batch_size=batch_size, add_dataloader_idx=False)
        affine = batch["affine"]
        self._metrics(stage, dataloader_idx).update(
            preds=geometry.to_image_coords(outputs["keypoints"], affine),
            target=geometry.to_image_coords(batch["keypoints"], affine),
            visibility=batch["visibility"],
            norm=batch["norm"] * affine_scale(affine.float()),
            scores=outputs["scores"].float(),
            **({"area": batch["area"], "image": batch["image_id"]} if "area" in batch else {}),
        )
        return {"keypoints": outputs["keypoints"].detach(), "scores": outputs["scores"].detach()}

    @staticmethod
    def _prefix(stage: str, dataloader_idx: int) -> str:
        return stage if dataloader_idx == 0 else f"{stage}{dataloader_idx}"

    def _log_metrics(self, stage: str) -> None:
        """Log the metrics of the ``stage`` epoch that ends and keep their results in
        :attr:`results` (in place of the last epoch's), then drop them: the next evaluation
        makes those of its own datasets (:meth:`_metrics`), whose protocol may differ."""
        for key in [key for key in self.results if key.split("/", 1)[0].rstrip("0123456789") == stage]:
            del self.results[key]
        for key, metrics in list(self.eval_metrics.items()):
            if not key.startswith(f"{stage}_"):
                continue
            idx = int(key.rsplit("_", 1)[1])
            prefix = self._prefix(stage, idx)
            for name, metric in metrics.items():
                result = metric.result()
                self.results[f"{prefix}/{name}"] = result
                values = {f"{prefix}/{k}": v for k, v in metric.compute().items()}
                self.log_dict({k: float(v) for k, v in values.items()}, sync_dist=False, add_dataloader_idx=False)
                if name == "pck":
                    self.log(f"{prefix}/pck", result.columns["Total"], prog_bar=True, add_dataloader_idx=False)
            del self.eval_metrics[key]

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        return self._evaluate(batch, "test", dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """Keypoints and scores in original-image pixels, with the record index."""
        outputs = self.predict_poses(batch["image"])
        return {
            "keypoints": geometry.to_image_coords(outputs["keypoints"], batch["affine"]),
            "scores": outputs["scores"].float(),
            "index": batch["index"],
        }

    # --- checkpoints --------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save torch's random state (dropout etc.), so a resumed run continues exactly.

        The data order and augmentation need none: they are a function of the seed and
        the epoch (:mod:`poselit.data.sampling`), and the loader's position is saved by
        Lightning.
        """
        checkpoint[CLASS_KEY] = {"class_path": class_path(type(self))}
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])

    # --- initialisation -----------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if self.init_from and self._initialised_from != self.init_from:
            self._initialised_from = self.init_from
            path = weights_file(self.init_from)  # a zoo model fetched
            check_weights(path, type(self))  # by its content: a checkpoint renamed .pt too
            self.load_compatible_weights(path)

    def load_compatible_weights(self, path: str | Path) -> dict[str, list[str]]:
        """Copy every tensor of a checkpoint whose name and shape match this model.

        ``path``: a Lightning checkpoint, a state dict, a safetensors file, or a zoo model
        (``zoo:NAME``, ``hf://ORG/NAME[@REVISION]``: :func:`~poselit.models.pretrained.weights_file`).
        Returns the names ``loaded``, ``reshaped`` (kept fresh: shape differs) and
        ``missing`` (not in the file). Nothing is unpickled: ``.ckpt`` files are read
        with ``weights_only=True``.
        """
        state = read_state_dict(weights_file(path))
        own = self.state_dict()
        report: dict[str, list[str]] = {"loaded": [], "reshaped": [], "missing": []}
        compatible = {}
        for name, tensor in own.items():
            if name not in state:
                report["missing"].append(name)
            elif state[name].shape != tensor.shape:
                report["reshaped"].append(name)
            else:
                compatible[name] = state[name]
                report["loaded"].append(name)
        if not compatible:
            raise ValueError(f"{path}: no tensor matches this {type(self).__name__} (wrong method?)")
        self.load_state_dict(compatible, strict=False)
        if report["reshaped"] or report["missing"]:
            warnings.warn(
                f"{path}: loaded {len(report['loaded'])} tensors; kept fresh: "
                f"{report['reshaped'] + report['missing']}",
                stacklevel=2,
            )
        return report

    # --- optimisation -------------------------------------------------------------------

    def lr_scale(self) -> float:
        """The factor :attr:`lr_scaling` applies for the trainer's number of processes."""
        processes = self.trainer.world_size if self._trainer is not None else 1
        return {"none": 1.0, "linear": float(processes), "sqrt": math.sqrt(processes)}[self.lr_scaling]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        scale = self.lr_scale()
        for group in optimizer.param_groups:  # before the scheduler records its base rates
            group["lr"] *= scale
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/pck"
        return {"optimizer": optimizer, "lr_scheduler": config}


class BackbonePoseModule(PoseLitModule):
    """A :class:`PoseLitModule` whose network reads the features of a backbone (any timm
    model, the papers' trunks included): the weights and neck arguments of that backbone,
    declared once for every such method. Each method names its own ``backbone`` (its paper's
    trunk by default) and builds it with :meth:`build_backbone`.

    Args:
        pretrained: Load the backbone's pretrained timm weights (downloads them: needs a
            network). A ``mean`` / ``std`` not given is the one the backbone's
            ``pretrained_cfg`` names (ImageNet's for most timm models), whatever the weights.
        backbone_weights: Local weights file (or Hugging Face-style folder) for the
            backbone, loaded offline (implies ``pretrained``); see
            :func:`poselit.models.backbones.create_backbone`.
        neck_channels: Fuse the backbone's deeper features into the feature map the method
            reads with a top-down neck of this many channels
            (:class:`poselit.models.backbones.TopDownNeck`), so that a pretrained trunk's
            deep features reach it at a fine stride; ``None``: the plain feature. The
            method's docs say which map that is.
        **kwargs: The arguments of :class:`PoseLitModule`.
    """

    def __init__(
        self,
        *,
        pretrained: bool = False,
        backbone_weights: str | None = None,
        neck_channels: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.neck_channels = neck_channels
        self._backbone_weights = {"pretrained": pretrained, "weights": backbone_weights}

    def build_backbone(self, name: str, **options: Any) -> Backbone:
        """Backbone ``name`` with the weights and neck these arguments ask for:
        :func:`~poselit.models.backbones.create_backbone` with ``options`` (strides, ...).
        The model's ``mean`` and ``std``, unless given, become those of its
        ``pretrained_cfg`` (:meth:`PoseLitModule.resolve_input_spec`)."""
        backbone = create_backbone(name, **self._backbone_weights, neck_channels=self.neck_channels, **options)
        self.resolve_input_spec(backbone.pretrained_cfg)  # the mean and std its weights expect, unless given
        return backbone


# Moved names, importable from here for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved={
    "to_image_coords": "poselit.geometry:to_image_coords",
    "flip_back_keypoints": "poselit.geometry:flip_back_keypoints",
    "flip_back_heatmaps": "poselit.geometry:flip_back_heatmaps",
})
