"""Augmentation: random geometry parameters and the albumentations photometric pipeline.

Geometry is not done with albumentations: the scale, rotation, shift and flip drawn here
are folded into the one crop affine of :func:`poselit.geometry.crop_affine`, so every
sample is resampled exactly once from the original image (sharper and faster than a
chain of warps). albumentations does what it does well on the crop: photometric changes.

Defaults follow the three papers: scale 0.7-1.3, rotation +-40 deg, horizontal flip with
probability 0.5 (Bulat Sec. 4, Belagiannis Sec. IV, Luvizon Sec. 4; Luvizon uses
0.85-1.25 on LSP). None of the papers uses colour augmentation, so it is off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random training augmentation.

    Args:
        scale: Range of the box-size factor (> 1 zooms out: the person looks smaller).
        rotation: Maximum absolute rotation in degrees (uniform in ``[-r, r]``).
        flip_prob: Probability of a horizontal flip (left/right joints are swapped).
        shift: Maximum centre shift as a fraction of the box side (uniform per axis);
            e.g. Belagiannis' random 248 crops of a 256 box are ``shift=4/256``.
        color_jitter: Strength of brightness/contrast/saturation jitter (0 = off).
    """

    scale: tuple[float, float] = (0.7, 1.3)
    rotation: float = 40.0
    flip_prob: float = 0.5
    shift: float = 0.0
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale range must satisfy 0 < low <= high, got {self.scale}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        if self.rotation < 0 or self.shift < 0 or self.color_jitter < 0:
            raise ValueError("rotation, shift and color_jitter must be >= 0")


@dataclass(frozen=True)
class AugmentParams:
    """One sample's drawn geometry: box-size factor, rotation (deg), flip, centre shift."""

    scale: float = 1.0
    rotation: float = 0.0
    flip: bool = False
    shift: tuple[float, float] = (0.0, 0.0)


def sample_augment(rng: np.random.Generator, config: AugmentConfig) -> AugmentParams:
    """Draw one sample's geometry from ``config``."""
    return AugmentParams(
        scale=float(rng.uniform(*config.scale)),
        rotation=float(rng.uniform(-config.rotation, config.rotation)),
        flip=bool(rng.random() < config.flip_prob),
        shift=tuple(float(v) for v in rng.uniform(-config.shift, config.shift, size=2)),
    )


def build_photometric(config: AugmentConfig) -> A.Compose | None:
    """The albumentations pipeline applied to each crop, or ``None`` when there is none."""
    if config.color_jitter == 0:
        return None
    j = config.color_jitter
    return A.Compose([A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=0.0, p=1.0)])
