"""Minimal PoseLitModule subclasses for tests of the shared loop (importable by spawned
DDP workers, hence a module of its own), and :func:`as_if_trained` for tests of real methods."""

import torch
from torch import nn

from poselit.codecs import HeatmapCodec
from poselit.models.base import PoseLitModule


def random_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with random batch-norm statistics and affine parameters, so that
    no weight-import mistake hides behind identity batch norms."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


def as_if_trained(model: PoseLitModule, images: torch.Tensor) -> PoseLitModule:
    """``model`` in eval mode as if trained a little: every weight moved off its initial
    value (torch's global random state) and the batch norms set to the statistics of the
    uint8 ``images``. At initialisation maps can be flat (Bulat et al. start their score
    layers at zero), and flat maps decode to argmax ties, which neither a flip test nor
    another runtime reproduces."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = None  # running statistics = those of the batches seen
        model.train()(model.normalize(images))
    return model.eval()


class TinyHeatmapModel(PoseLitModule):
    """A minimal heatmap method at stride 2, enough to exercise the shared loop. Like every
    method, it declares its own argument and inherits the shared ones.

    Args:
        channels: Width of its hidden convolutions.
        **kwargs: The arguments of :class:`~poselit.models.base.PoseLitModule`.
    """

    def __init__(self, *, channels: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.codec = HeatmapCodec(stride=2, std=1.0)
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(channels, self.num_joints, 3, padding=1),
        )

    def forward(self, images):
        heatmaps = self.net(images)
        keypoints, scores = self.decode_heatmaps(heatmaps)
        return {"stages": [heatmaps], "heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    def loss(self, outputs, batch):
        maps = outputs["stages"][0]
        target = self.codec.encode(batch["keypoints"], batch["visibility"], maps.shape[-2:])
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


class MemorizingHeatmapModel(PoseLitModule):
    """Heatmaps from one linear layer on an 8x8-pooled image: memorises a few crops (to a
    hundredth of a pixel with Taylor decoding) in about a second, so tests of the geometry
    around a model (crops, flip test, mapping back) can demand sub-pixel accuracy."""

    def __init__(self, map_size: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.map_size = map_size
        self.codec = HeatmapCodec(stride=self.input_size[0] // map_size, std=1.0, refine="taylor")
        self.pool = nn.AdaptiveAvgPool2d(8)
        self.head = nn.Linear(3 * 8 * 8, self.num_joints * map_size * map_size)

    def forward(self, images):
        maps = self.head(self.pool(images).flatten(1)).unflatten(1, (self.num_joints, self.map_size, self.map_size))
        keypoints, scores = self.decode_heatmaps(maps)
        return {"stages": [maps], "heatmaps": maps, "keypoints": keypoints, "scores": scores}

    def loss(self, outputs, batch):
        maps = outputs["stages"][0]
        target = self.codec.encode(batch["keypoints"], batch["visibility"], maps.shape[-2:])
        return {"loss": ((maps - target) ** 2).mean()}

    def memorise(self, batch, steps: int = 400, lr: float = 3e-3):
        """Fit the batch's crops (Adam, full batch); returns the model in eval mode."""
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        inputs = self.normalize(batch["image"])
        for _ in range(steps):
            loss = self.loss(self(inputs), batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return self.eval()
