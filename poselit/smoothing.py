"""Temporal smoothing of keypoint tracks: the One Euro filter (Casiez, Roussel and Vogel,
CHI 2012), vectorised over joints.

A first-order low-pass filter whose cut-off frequency rises with the speed of the point:
slow points are smoothed hard (less jitter), fast ones lightly (less lag). Per joint, with
``dt`` the time since the joint's last update:

* the speed is the low-passed (cut-off ``d_cutoff`` Hz) finite difference of the joint
  against its last filtered position, as a 2D velocity in pixels per second;
* the cut-off is ``min_cutoff + beta * |speed|`` Hz (one for x and y: the joint's speed
  along its path, so the filter does not depend on the direction of motion);
* the output is ``a * raw + (1 - a) * previous output`` with ``a = 1 / (1 + 1 / (2 pi cutoff dt))``.

``min_cutoff`` sets the smoothing at rest (lower: less jitter, more lag), ``beta`` how fast
the smoothing drops with speed (higher: less lag on fast moves). Both are in pixels and
seconds, so they depend on the person's size in pixels; the defaults of
:class:`OneEuroFilter` suit people of a few hundred pixels filmed at 25-60 frames/s.

**Missing joints** (``valid`` false, e.g. a score below a threshold) pass through
unfiltered and leave their joint's state untouched: their positions are guesses that
should neither drag the track nor be dressed up as smooth. When such a joint is valid
again, its ``dt`` spans the gap, so the filter follows its new position at once (a long
gap gives ``a`` close to 1) instead of gliding from a stale one. A joint never seen valid
starts at its first valid position.

A joint at rest whose measured x flickers by 2 px from frame to frame, one second at 30 frames/s:

>>> import numpy as np
>>> x = 10 + np.array([0.0, 2.0] * 15)
>>> track = np.stack([x, np.full(30, 20.0)], axis=-1)[:, None]   # (T, K, 2), one joint
>>> smoothed = smooth_track(OneEuroFilter(), track, times=np.arange(30) / 30)
>>> float(np.ptp(track[-10:, 0, 0])), float(np.ptp(smoothed[-10:, 0, 0]).round(2))  # flicker, px
(2.0, 0.23)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def smoothing_factor(dt: np.ndarray, cutoff: np.ndarray | float) -> np.ndarray:
    """Weight of the new sample in an exponential low-pass of ``cutoff`` Hz after ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2 * math.pi * np.asarray(cutoff) * dt))


@dataclass(frozen=True)
class FilterState:
    """What the filter remembers per joint.

    Args:
        points: ``(K, 2)`` last filtered positions.
        speeds: ``(K, 2)`` last filtered velocities, pixels per second.
        times: ``(K,)`` time of each joint's last valid sample; NaN: never seen valid.
    """

    points: np.ndarray
    speeds: np.ndarray
    times: np.ndarray

    @classmethod
    def empty(cls, num_joints: int) -> FilterState:
        """The state before the first sample: no joint seen."""
        return cls(np.zeros((num_joints, 2)), np.zeros((num_joints, 2)), np.full(num_joints, np.nan))


@dataclass(frozen=True)
class OneEuroFilter:
    """The filter's settings (see the module docs); :meth:`step` is pure.

    Args:
        min_cutoff: Cut-off frequency at rest, Hz (> 0).
        beta: Cut-off increase per pixel/second of speed, Hz / (px/s) (>= 0).
        d_cutoff: Cut-off of the speed estimate, Hz (> 0).
    """

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name, low in (("min_cutoff", 0.0), ("d_cutoff", 0.0)):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > low):
                raise ValueError(f"{name} must be a finite number > 0 (Hz), got {getattr(self, name)!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")

    def step(
        self, state: FilterState, points: np.ndarray, time: float, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, FilterState]:
        """Filter one sample: ``(K, 2)`` raw ``points`` at ``time`` seconds.

        ``valid`` ``(K,)`` marks the joints to filter (default: all); the others are
        returned raw and keep their state. Returns the ``(K, 2)`` filtered points and the
        new state. Times must increase for every joint (``ValueError`` otherwise).
        """
        points = np.asarray(points, np.float64)
        valid = np.ones(len(points), bool) if valid is None else np.asarray(valid, bool)
        seen = valid & ~np.isnan(state.times)
        dt = np.where(seen, time - np.nan_to_num(state.times), 1.0)[:, None]
        if (dt <= 0).any():
            raise ValueError(f"sample times must increase: got {time} after {np.nanmax(state.times[seen])}")
        a_speed = smoothing_factor(dt, self.d_cutoff)
        speeds = a_speed * (points - state.points) / dt + (1 - a_speed) * state.speeds
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(speeds, axis=1, keepdims=True)
        a = smoothing_factor(dt, cutoff)
        filtered = np.where(seen[:, None], a * points + (1 - a) * state.points, points)
        new = FilterState(
            points=np.where(valid[:, None], filtered, state.points),
            speeds=np.where(seen[:, None], speeds, np.where(valid[:, None], 0.0, state.speeds)),
            times=np.where(valid, time, state.times),
        )
        return filtered, new


def smooth_track(
    smoother: OneEuroFilter, track: np.ndarray, times: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """A whole ``(T, K, 2)`` track sampled at ``times`` ``(T,)`` seconds, filtered;
    ``valid`` ``(T, K)`` marks the joints to filter (default: all)."""
    track = np.asarray(track, np.float64)
    state = FilterState.empty(track.shape[1])
    out = np.empty_like(track)
    for t, (points, time) in enumerate(zip(track, times)):
        out[t], state = smoother.step(state, points, float(time), None if valid is None else valid[t])
    return out


__all__ = ["FilterState", "OneEuroFilter", "smooth_track", "smoothing_factor"]
