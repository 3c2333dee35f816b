"""The One Euro filter: less jitter on noisy tracks, little lag on a step, missing joints,
bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from poselit.smoothing import FilterState, OneEuroFilter, smooth_track

FPS = 30.0


def noisy_walk(speed: float, frames: int = 300, noise: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, the true track and a measured one (Gaussian noise of ``noise`` px per
    coordinate) of one joint moving right at ``speed`` px/s."""
    times = np.arange(frames) / FPS
    truth = np.stack([100 + speed * times, np.full(frames, 50.0)], axis=-1)[:, None]
    return times, truth, truth + np.random.default_rng(seed).normal(0, noise, truth.shape)


def jitter(track: np.ndarray, truth: np.ndarray) -> float:
    """RMS frame-to-frame change of the error, after a one-second warm-up: the wobble a
    viewer sees, in px."""
    return float(np.sqrt((np.diff(track - truth, axis=0)[int(FPS):] ** 2).sum(-1).mean()))


@pytest.mark.parametrize(("speed", "reduction"), [(0.0, 4.0), (30.0, 2.4)])
def test_smoothing_reduces_jitter(speed, reduction):
    times, truth, measured = noisy_walk(speed)
    smoothed = smooth_track(OneEuroFilter(), measured, times)
    # measured at rest: 4.1 -> 0.9 px; at 30 px/s: 3.8 -> 1.5 px
    assert jitter(smoothed, truth) * reduction < jitter(measured, truth)
    assert np.abs(smoothed - truth)[int(FPS):].mean() < np.abs(measured - truth)[int(FPS):].mean()


def test_a_step_is_followed_within_three_frames():
    track = np.zeros((60, 1, 2))
    track[30:, 0, 0] = 50.0
    error = np.abs(smooth_track(OneEuroFilter(), track, np.arange(60) / FPS)[30:, 0, 0] - 50)
    assert error[0] < 15  # measured 12.7 px on the frame of the step
    assert error[2] < 1  # 0.8 px two frames (67 ms) later
    assert (error[3:] < 0.3).all()


def test_joints_are_filtered_independently():
    times, _, measured = noisy_walk(30.0, frames=40)
    both = np.concatenate([measured, measured[::-1] + 7], axis=1)
    smoother = OneEuroFilter(min_cutoff=0.7, beta=0.1)
    together = smooth_track(smoother, both, times)
    apart = [smooth_track(smoother, both[:, [k]], times) for k in range(2)]
    np.testing.assert_allclose(together, np.concatenate(apart, axis=1))


def test_missing_joints_pass_through_and_keep_their_state():
    smoother = OneEuroFilter()
    state = FilterState.empty(2)
    _, state = smoother.step(state, np.array([[0.0, 0.0], [10.0, 10.0]]), 0.0)
    out, after = smoother.step(state, np.array([[1.0, 1.0], [99.0, 99.0]]), 1 / FPS, valid=np.array([True, False]))
    np.testing.assert_array_equal(out[1], [99.0, 99.0])  # a guess is returned raw...
    np.testing.assert_array_equal(after.points[1], [10.0, 10.0])  # ...and does not move the track
    assert after.times[1] == 0.0 and after.times[0] == pytest.approx(1 / FPS)
    # back 30 px away after a 2 s gap: 96% of the way at once (measured), the gap's dt
    # letting the new position through rather than gliding from the stale one
    out, _ = smoother.step(after, np.array([[1.0, 1.0], [40.0, 40.0]]), 2.0)
    assert abs(out[1, 0] - 40) < 0.05 * 30


def test_a_joint_never_seen_starts_at_its_first_valid_position():
    smoother = OneEuroFilter()
    out, state = smoother.step(FilterState.empty(1), np.array([[5.0, 6.0]]), 0.0, valid=np.array([False]))
    assert np.isnan(state.times).all()
    out, state = smoother.step(state, np.array([[7.0, 8.0]]), 0.1)
    np.testing.assert_array_equal(out, [[7.0, 8.0]])


def test_times_must_increase_and_settings_make_sense():
    smoother = OneEuroFilter()
    _, state = smoother.step(FilterState.empty(1), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="must increase"):
        smoother.step(state, np.zeros((1, 2)), 1.0)
    for settings, name in [({"min_cutoff": 0}, "min_cutoff"), ({"d_cutoff": float("nan")}, "d_cutoff"), ({"beta": -1}, "beta")]:
        with pytest.raises(ValueError, match=name):
            OneEuroFilter(**settings)
