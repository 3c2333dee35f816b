"""Parameter and FLOP counts for model cards."""

import pytest
import torch
from torch import nn

from poselit.complexity import count_gflops, count_parameters


class OneConv(nn.Module):
    """A 3x3 convolution (3 -> 8 channels, same padding) and batch norm on 16x24 images."""

    input_size = (16, 24)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(images))


def test_a_convolution_costs_two_flops_per_multiply_add_at_the_models_input_size():
    model = OneConv()
    multiply_adds = 16 * 24 * 8 * (3 * 3 * 3)
    assert count_gflops(model) == pytest.approx(2 * multiply_adds / 1e9)
    assert count_gflops(model, (32, 48)) == pytest.approx(4 * 2 * multiply_adds / 1e9)
    assert count_parameters(model) == 8 * 27 + 8 + 2 * 8  # conv weights + bias, norm weight + bias


@pytest.mark.parametrize("training", [True, False])
def test_counting_leaves_the_mode_and_the_statistics_as_they_were(training):
    model = OneConv().train(training)
    before = model.norm.running_mean.clone()
    count_gflops(model)
    assert model.training is training
    assert torch.equal(model.norm.running_mean, before)  # run in eval mode: statistics untouched
