"""Minimal PoseLitModule subclasses for tests of the shared loop (importable by spawned
DDP workers, hence a module of its own)."""

import torch
from torch import nn

from poselit.codecs import argmax_decode, gaussian_heatmaps, to_input_coords
from poselit.models.base import PoseLitModule


class TinyHeatmapModel(PoseLitModule):
    """A minimal heatmap method at stride 2, enough to exercise the shared loop."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(16, self.num_joints, 3, padding=1),
        )

    def forward(self, images):
        heatmaps = self.net(images)
        keypoints, scores = self.decode_heatmaps(heatmaps)
        return {"stages": [heatmaps], "heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    def decode_heatmaps(self, heatmaps):
        keypoints, scores = argmax_decode(heatmaps)
        return to_input_coords(keypoints, 2), scores

    def loss(self, outputs, batch):
        maps = outputs["stages"][0]
        target = gaussian_heatmaps(batch["keypoints"], batch["visibility"], maps.shape[-2:], std=1.0, stride=2)
        return {"loss": ((maps - target) ** 2).mean()}


class ConstantModel(PoseLitModule):
    """Predicts fixed keypoints whatever the image: tests coordinate flip averaging."""

    def __init__(self, keypoints, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("fixed", keypoints)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        b = len(images)
        return {"keypoints": self.fixed.expand(b, -1, -1), "scores": torch.ones(b, self.num_joints)}
