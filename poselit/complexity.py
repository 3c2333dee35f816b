"""Size and arithmetic cost of a pose model, as model cards and the zoo table report them.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one forward pass
of one image at the model's input size, without the flip test (which doubles it): a
multiply-add counts as 2 FLOPs, so MobileNetV2 at 224x224 (300 M multiply-adds) is 0.60
GFLOPs. Element-wise work (activations, normalisation, resizing) is not counted, as usual.

>>> import poselit
>>> model = poselit.zoo.load("luvizon-tiny-lsp-demo")
>>> count_parameters(model), round(count_gflops(model), 2)
(1315008, 1.19)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as normalisation statistics excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_gflops(model: nn.Module, input_size: tuple[int, int] | None = None) -> float:
    """Billions of FLOPs of one forward pass on one image of ``input_size`` (height, width);
    ``None``: the model's ``input_size``. The model is run in eval mode, then restored."""
    height, width = input_size or model.input_size
    parameter = next(model.parameters())
    image = torch.zeros(1, 3, height, width, dtype=parameter.dtype, device=parameter.device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(image)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9
