"""The continuous-focus trigger (core/continuous.py): when it refocuses, and when it must not."""
import numpy as np
import pytest

from autofocus.core import continuous
from autofocus.core.continuous import ContinuousConfig, ContinuousFocus

FPS = 30.0


def focused(config=None, position=500.0):
    """A machine that has run its first full search successfully at `position`, at t=0."""
    machine = ContinuousFocus(config or ContinuousConfig())
    request = machine.start()
    assert request.kind == continuous.FULL and machine.state == continuous.SCANNING
    assert machine.phase == continuous.SEARCHING
    assert machine.search_done(0.0, True, position) is None
    assert machine.state == continuous.FOCUSED
    return machine


def feed(machine, values, t0):
    """Feed one value per frame from t0; return (time, request) of the first request."""
    for i, value in enumerate(values):
        t = t0 + i / FPS
        request = machine.observe(t, float(value))
        if request is not None:
            return t, request
    return None, None


def noisy(rng, count, level=100.0, noise=0.03, flicker=0.05):
    """Sharpness with read noise and exposure flicker (gain^2 on a Laplacian variance)."""
    gain = 1.0 + flicker * rng.standard_normal(count)
    return level * gain ** 2 * (1.0 + noise * rng.standard_normal(count))


def test_static_scene_with_flicker_and_noise_never_triggers():
    rng = np.random.default_rng(3)
    machine = focused()
    # 20 simulated minutes at 30 fps, 5% flicker, with rare single-frame outliers.
    values = noisy(rng, int(20 * 60 * FPS))
    values[::997] *= 0.2
    t, request = feed(machine, values, 0.0)
    assert request is None, (t, request)
    assert machine.phase == continuous.LOCKED
    assert machine.searches == {continuous.FULL: 1}


def test_sustained_drop_triggers_a_local_search_after_the_hold_time_only():
    rng = np.random.default_rng(4)
    config = ContinuousConfig(hold_time=1.0, window=15)
    machine = focused(config)
    assert feed(machine, noisy(rng, 300), 0.0) == (None, None)
    # Sharpness halves at t=10 s (the subject moved).
    t, request = feed(machine, noisy(rng, 300, level=50.0), 10.0)
    assert request is not None and request.kind == continuous.LOCAL
    # The median needs ~window/2 frames to move, then the hold runs.
    assert 10.0 + config.hold_time <= t <= 10.0 + config.hold_time + config.window / FPS + 0.1
    assert (request.range_min, request.range_max) == (400.0, 600.0)
    assert machine.state == continuous.SCANNING


def test_a_dip_shorter_than_the_hold_time_does_not_trigger():
    rng = np.random.default_rng(5)
    machine = focused(ContinuousConfig(hold_time=1.0))
    values = np.concatenate([noisy(rng, 300), noisy(rng, 20, level=30.0), noisy(rng, 300)])
    assert feed(machine, values, 0.0) == (None, None)


def test_frames_during_the_settle_time_after_a_search_are_ignored():
    machine = focused(ContinuousConfig(settle_time=0.5, window=3))
    for t in (0.1, 0.2, 0.3):   # blurred frames of the final move
        machine.observe(t, 1.0)
    for t in (0.6, 0.7, 0.8):
        machine.observe(t, 100.0)
    assert machine.reference == 100.0


def test_local_search_at_the_window_edge_or_failing_falls_back_to_a_full_search():
    machine = focused(ContinuousConfig(hold_time=0.0, window=1))
    machine.observe(1.0, 100.0)
    request = machine.observe(2.0, 10.0)
    assert request.kind == continuous.LOCAL
    # The local peak is on the window's upper edge: the focus is probably beyond it.
    full = machine.search_done(3.0, True, request.range_max - 1.0)
    assert full.kind == continuous.FULL and (full.range_min, full.range_max) == (0.0, 1000.0)
    assert 'edge' in machine.message
    assert machine.search_done(4.0, True, 850.0) is None
    assert machine.state == continuous.FOCUSED and machine.position == 850.0
    # A failing local search (flat curve) also falls back.
    machine.observe(5.0, 100.0)
    request = machine.observe(6.0, 10.0)
    assert request.kind == continuous.LOCAL
    full = machine.search_done(7.0, False, 850.0, 'flat curve')
    assert full.kind == continuous.FULL and 'flat curve' in full.reason
    assert machine.searches == {continuous.FULL: 3, continuous.LOCAL: 2}


def test_local_window_clipped_at_a_range_limit_accepts_a_peak_there():
    machine = focused(ContinuousConfig(hold_time=0.0, window=1), position=30.0)
    machine.observe(1.0, 100.0)
    request = machine.observe(2.0, 10.0)
    assert (request.range_min, request.range_max) == (0.0, 130.0)
    assert machine.search_done(3.0, True, 2.0) is None
    assert machine.state == continuous.FOCUSED


def test_failed_full_search_waits_for_the_scene_to_change_before_searching_again():
    rng = np.random.default_rng(6)
    machine = ContinuousFocus(ContinuousConfig(hold_time=1.0))
    machine.start()
    assert machine.search_done(0.0, False, 500.0, 'flat curve') is None
    assert machine.state == continuous.FAILED and machine.phase == continuous.WATCHING
    # A featureless static scene: no search over and over.
    assert feed(machine, noisy(rng, 3000, level=5.0), 0.0) == (None, None)
    # Something with texture comes into view: the sharpness rises for good.
    t, request = feed(machine, noisy(rng, 300, level=50.0), 100.0)
    assert request.kind == continuous.FULL


def test_stop_goes_idle_and_a_late_search_result_is_ignored():
    machine = ContinuousFocus(ContinuousConfig())
    machine.start()
    machine.stop()
    assert machine.state == continuous.IDLE and machine.phase == continuous.IDLE
    assert machine.search_done(1.0, True, 10.0) is None
    assert machine.state == continuous.IDLE
    assert machine.observe(2.0, 1.0) is None


@pytest.mark.parametrize('field, value, words', [
    ('drop_threshold', 1.5, 'drop_threshold'),
    ('window', 0, 'window'),
    ('hold_time', -1.0, 'hold_time'),
    ('range_max', -5.0, 'range_min'),
    ('edge_margin', 500.0, 'edge_margin'),
    ('local_range', float('nan'), 'finite'),
])
def test_bad_configuration_is_refused_with_the_field_named(field, value, words):
    with pytest.raises(ValueError, match=words):
        ContinuousFocus(ContinuousConfig(**{field: value}))
