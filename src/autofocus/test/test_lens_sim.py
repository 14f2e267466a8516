"""Lens simulator: rendering, the focus curve it produces, and closed-loop focusing."""

import numpy as np
import pytest

from autofocus.core import lens_sim, measures, strategies
from autofocus.core.lens_sim import SCENES, LensConfig, LensSimulator, disk_kernel
from autofocus.core.strategies import FLAT_CURVE, Outcome, SearchConfig, make_search


LAPLACIAN = 'laplacian_variance'


def sharpness(frame, name=measures.DEFAULT_MEASURE):
    """What the sharpness node computes by default: grey, centre ROI, no downsample."""
    gray = frame[:, :, 1] if frame.ndim == 3 else frame    # grey scene: all channels equal
    return measures.compute(gray, [name])[name]


def assert_single_peak_at(positions, curve, focus):
    """The curve's maximum is at focus, and it rises strictly up to it and falls after it."""
    peak = int(np.argmax(curve))
    assert positions[peak] == focus, (positions[peak], focus)
    assert all(a < b for a, b in zip(curve[:peak], curve[1:peak + 1])), curve
    assert all(a > b for a, b in zip(curve[peak:], curve[peak + 1:])), curve


def focus_loop(sim, strategy, config, start, measure=measures.DEFAULT_MEASURE):
    """Drive a search against the simulator the way the focus server does: move, render a
    frame at the reached position, measure, observe. Returns (outcome, moves)."""
    search = make_search(strategy, config, start)
    position = start
    result = search.start()
    moves = 0
    while not isinstance(result, Outcome):
        position = position + result.target if result.relative else result.target
        moves += 1
        result = search.observe(position, sharpness(sim.render(position), measure))
        assert moves < 300
    return result, moves


@pytest.fixture(scope='module')
def default_sim():
    return LensSimulator(LensConfig())


def test_render_shape_dtype_and_grey(default_sim):
    frame = default_sim.render(500.0)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[:, :, 0], frame[:, :, 1])
    assert np.array_equal(frame[:, :, 1], frame[:, :, 2])
    assert frame.std() > 20                                  # a textured scene, not grey mush
    small = LensSimulator(LensConfig(width=33, height=17, scene='checker')).render(0.0)
    assert small.shape == (17, 33, 3)
    gray = default_sim.render_gray(100.0)
    assert gray.shape == (480, 640) and gray.dtype == np.uint8


@pytest.mark.parametrize('scene', SCENES)
def test_every_scene_renders(scene):
    frame = LensSimulator(LensConfig(width=64, height=48, scene=scene)).render(123.0)
    assert frame.shape == (48, 64, 3)


def test_blur_radius():
    sim = LensSimulator(LensConfig(width=8, height=8, focus_position=300.0, blur_per_unit=0.1,
                                   max_blur_radius=12.0))
    assert sim.blur_radius(300.0) == 0.0
    assert sim.blur_radius(350.0) == pytest.approx(5.0)
    assert sim.blur_radius(250.0) == pytest.approx(5.0)
    assert sim.blur_radius(1000.0) == 12.0


def test_disk_kernel():
    assert np.array_equal(disk_kernel(0.0), np.ones((1, 1), np.float32))
    for radius in (0.3, 1.0, 2.5, 7.0):
        kernel = disk_kernel(radius)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1, ::-1])
        assert kernel.shape[0] % 2 == 1 and kernel.shape[0] <= 2 * radius + 5
    # The centre weight falls continuously as the disk grows (no flat top at r < 0.5 px).
    centres = [disk_kernel(r)[disk_kernel(r).shape[0] // 2, disk_kernel(r).shape[1] // 2]
               for r in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a > b for a, b in zip(centres, centres[1:]))
    # A large disk is flat inside: the same weight at the centre and half way out.
    big = disk_kernel(10.0)
    middle = big.shape[0] // 2
    assert big[middle, middle] == pytest.approx(big[middle, middle + 5], rel=1e-3)
    with pytest.raises(ValueError):
        disk_kernel(-1.0)


def test_sharpness_peaks_at_focus_and_falls_on_both_sides():
    # Without noise the curve is strictly monotone on each side over +-300 units.
    sim = LensSimulator(LensConfig(noise_sigma=0.0, focus_position=430.0))
    positions = np.arange(130.0, 731.0, 20.0)
    curve = [sharpness(sim.render(p)) for p in positions]
    assert_single_peak_at(positions, curve, 430.0)


def test_image_changes_smoothly_between_cached_radii():
    # Radii are cached every 0.25 px (5 motor units here); in between, frames are blended,
    # so the curve has no steps a fit could snap to.
    sim = LensSimulator(LensConfig(noise_sigma=0.0, width=160, height=120))
    positions = [600.0, 601.0, 602.0, 603.0, 604.0, 605.0]
    frames = [sim.render_gray(p) for p in positions]
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    curve = [measures.tenengrad(frame) for frame in frames]
    assert all(a > b for a, b in zip(curve, curve[1:])), curve


def test_noisy_curve_peaks_at_focus_above_the_noise_floor(default_sim):
    # The Laplacian's noise floor (what this checks), not the default measure's.
    near = np.arange(400.0, 601.0, 10.0)
    curve = [sharpness(default_sim.render(p), LAPLACIAN) for p in near]
    assert_single_peak_at(near, curve, 500.0)
    far = [sharpness(default_sim.render(p), LAPLACIAN) for p in (0.0, 250.0, 750.0, 1000.0)]
    # Far out only noise is left: Laplacian gain 20 x sigma^2 = 80 for sigma = 2.
    assert max(far) < 0.2 * max(curve)
    assert all(70.0 < value < 110.0 for value in far)
    # A whole-range coarse scan has plenty of contrast for the flat-curve test.
    coarse = [sharpness(default_sim.render(p), LAPLACIAN) for p in range(0, 1001, 100)]
    assert strategies.peak_contrast(coarse) > 0.8


@pytest.mark.parametrize('name', sorted(measures.MEASURES))
def test_every_measure_peaks_at_focus(default_sim, name):
    positions = [380.0, 440.0, 470.0, 500.0, 530.0, 560.0, 620.0]
    curve = [sharpness(default_sim.render(p), name) for p in positions]
    assert int(np.argmax(curve)) == 3
    assert curve[0] < curve[1] < curve[2] < curve[3] > curve[4] > curve[5] > curve[6]


def test_flat_scene_is_a_flat_curve():
    sim = LensSimulator(LensConfig(scene='flat'))
    curve = [sharpness(sim.render(p)) for p in range(0, 1001, 100)]
    assert strategies.peak_contrast(curve) < 0.05
    outcome, moves = focus_loop(sim, 'coarse_fine', SearchConfig(), 0.0)
    assert not outcome.success and outcome.error == FLAT_CURVE
    # The coarse scan and its finer look (halfway to the best sample's neighbours), no more.
    assert 11 <= moves <= 13


@pytest.mark.parametrize('strategy', ['sweep', 'hill_climb'])
def test_flat_scene_is_flat_for_every_strategy(strategy):
    sim = LensSimulator(LensConfig(scene='flat', width=160, height=120))
    outcome, _ = focus_loop(sim, strategy, SearchConfig(), 400.0)
    assert outcome.error == FLAT_CURVE


@pytest.mark.parametrize('start, end', [(450.0, 550.0), (480.0, 520.0), (560.0, 640.0)])
def test_motion_blur_lowers_sharpness(default_sim, start, end):
    # The simulator's motion blur, seen by the most selective measure (the default's
    # peak is broader and sits on a constant floor: 0.85x here).
    static = sharpness(default_sim.render((start + end) / 2), LAPLACIAN)
    moving = sharpness(default_sim.render(start, end), LAPLACIAN)
    assert moving < static
    if start < 500.0 < end:                                  # swept through focus
        assert moving < 0.8 * static
    # No motion, no motion blur.
    assert default_sim.render(start, start).shape == (480, 640, 3)


def test_frames_are_reproducible_and_noise_varies():
    first = LensSimulator(LensConfig(width=96, height=64))
    second = LensSimulator(LensConfig(width=96, height=64))
    assert np.array_equal(first.render(500.0), second.render(500.0))
    a, b = first.render(500.0), first.render(500.0)
    assert not np.array_equal(a, b)                           # fresh noise every frame
    difference = a.astype(float) - b.astype(float)
    assert difference.std() == pytest.approx(2.0 * np.sqrt(2.0), rel=0.15)
    rng_frames = [LensSimulator(LensConfig(width=96, height=64)).render(
        500.0, rng=np.random.default_rng(9)) for _ in range(2)]
    assert np.array_equal(*rng_frames)
    quiet = LensSimulator(LensConfig(width=96, height=64, noise_sigma=0.0))
    assert np.array_equal(quiet.render(500.0), quiet.render(500.0))
    other_scene = LensSimulator(LensConfig(width=96, height=64, seed=1))
    assert not np.array_equal(other_scene.scene, first.scene)


def test_blurred_scenes_are_cached(monkeypatch):
    sim = LensSimulator(LensConfig(width=160, height=120))
    calls = []
    real_filter = lens_sim.cv2.filter2D

    def counting_filter(*args, **kwargs):
        calls.append(1)
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(lens_sim.cv2, 'filter2D', counting_filter)
    sim.render(600.0)                                         # radius 5 px: one quantum
    sim.render(601.3)                                         # between two quanta: blend
    first = len(calls)
    assert 1 <= first <= 3
    for _ in range(5):
        sim.render(600.0)
        sim.render(601.3)
    assert len(calls) == first
    # The cache is bounded.
    for position in np.arange(0.0, 1000.0, 1.0):
        sim.render(float(position))
    assert len(sim._cache) <= sim._cache_entries


@pytest.mark.parametrize('changes, field', [
    ({'width': 0}, 'width'), ({'height': -4}, 'height'), ({'width': 12.5}, 'width'),
    ({'scene': 'stars'}, 'scene'), ({'noise_sigma': -1.0}, 'noise_sigma'),
    ({'blur_per_unit': -0.1}, 'blur_per_unit'), ({'max_blur_radius': -1.0}, 'max_blur_radius'),
    ({'focus_position': float('nan')}, 'focus_position'),
])
def test_config_is_validated(changes, field):
    with pytest.raises(ValueError, match=field) as error:
        LensSimulator(LensConfig(**changes))
    if field == 'scene':
        for scene in SCENES:
            assert scene in str(error.value)


def test_render_rejects_non_finite_positions(default_sim):
    with pytest.raises(ValueError):
        default_sim.render(float('nan'))
    with pytest.raises(ValueError):
        default_sim.render(500.0, float('inf'))


# -- closed loop: the search strategies focusing the simulated lens --------------------------

@pytest.mark.parametrize('focus', [137.0, 333.3, 500.0, 642.5, 861.0])
def test_coarse_fine_focuses_the_simulated_lens(focus):
    sim = LensSimulator(LensConfig(focus_position=focus, seed=int(focus)))
    config = SearchConfig()
    for start in (0.0, 1000.0, 520.0):
        outcome, moves = focus_loop(sim, 'coarse_fine', config, start)
        assert outcome.success, outcome.message
        assert abs(outcome.position - focus) <= config.fine_step, (start, outcome)
        assert moves <= 35
        # The final frame really is (near) the sharpest the lens can give.
        best = sharpness(sim.render(focus))
        assert outcome.sharpness > 0.8 * best


@pytest.mark.parametrize('measure, lens_config', [
    ('tenengrad', LensConfig(focus_position=271.0, blur_per_unit=0.03)),
    ('brenner', LensConfig(focus_position=777.0, noise_sigma=5.0, scene='checker')),
    ('laplacian_variance', LensConfig(focus_position=420.0, blur_per_unit=0.08, seed=3)),
])
def test_coarse_fine_closed_loop_other_measures_and_lenses(measure, lens_config):
    sim = LensSimulator(lens_config)
    outcome, _ = focus_loop(sim, 'coarse_fine', SearchConfig(), 900.0, measure)
    assert outcome.success
    assert abs(outcome.position - lens_config.focus_position) <= 10.0


def test_sweep_focuses_the_simulated_lens():
    sim = LensSimulator(LensConfig(focus_position=612.0))
    outcome, moves = focus_loop(sim, 'sweep', SearchConfig(), 1000.0)
    assert outcome.success and abs(outcome.position - 612.0) <= 25.0 and moves == 42


@pytest.mark.parametrize('start', [380.0, 600.0, 700.0])
def test_hill_climb_focuses_the_simulated_lens(start):
    sim = LensSimulator(LensConfig(focus_position=512.0))
    outcome, _ = focus_loop(sim, 'hill_climb', SearchConfig(), start)
    assert outcome.success, outcome.message
    assert abs(outcome.position - 512.0) <= 3 * SearchConfig().climb_min_step


def test_lens_far_outside_the_range_is_a_flat_curve():
    # Focus at 5000 with a 0..1000 range: everything is blurred to the noise floor.
    sim = LensSimulator(LensConfig(focus_position=5000.0))
    outcome, _ = focus_loop(sim, 'coarse_fine', SearchConfig(), 0.0)
    assert outcome.error == FLAT_CURVE


# -- realism features, gear, real stack ---------------------------------------------------------

SMALL = dict(width=160, height=120)


def test_new_scenes_render_and_two_planes_has_two_peaks():
    low = LensSimulator(LensConfig(scene='low_texture', noise_sigma=0.0, **SMALL))
    rich = LensSimulator(LensConfig(scene='texture', noise_sigma=0.0, **SMALL))
    assert sharpness(low.render(500.0)) < 0.2 * sharpness(rich.render(500.0))
    sim = LensSimulator(LensConfig(scene='two_planes', noise_sigma=0.5, second_plane_offset=300.0,
                                   **SMALL))
    positions = list(range(300, 1001, 25))
    curve = [measures.compute(sim.render_gray(p), ['laplacian_variance'], (0, 0, 1, 1), 2)[
        'laplacian_variance'] for p in positions]
    peaks = strategies.find_peaks(list(zip(positions, curve)), 0.3)
    assert [p for p, _ in peaks] == [500, 800]                 # near plane is the global peak


def test_psf_gaussian_softens_defocus_only():
    hard = LensSimulator(LensConfig(noise_sigma=0.0, **SMALL))
    soft = LensSimulator(LensConfig(noise_sigma=0.0, psf_gaussian=0.3, **SMALL))
    assert np.array_equal(hard.render(500.0), soft.render(500.0))
    assert sharpness(soft.render(600.0)) < sharpness(hard.render(600.0))


def test_photon_noise_grows_with_brightness_and_flicker_changes_exposure():
    sim = LensSimulator(LensConfig(scene='flat', noise_sigma=0.0, photon_gain=2.0, **SMALL))
    frame = sim.render_gray(500.0).astype(float)
    assert frame.std() == pytest.approx(np.sqrt(128 / 2.0), rel=0.1)
    flicker = LensSimulator(LensConfig(scene='flat', noise_sigma=0.0, flicker=0.05, **SMALL))
    means = [flicker.render_gray(500.0).mean() for _ in range(30)]
    assert np.std(means) / 128 == pytest.approx(0.05, rel=0.4)
    steady = LensSimulator(LensConfig(scene='flat', noise_sigma=0.0, **SMALL))
    assert np.ptp([steady.render_gray(500.0).mean() for _ in range(5)]) == 0


def test_gear_backlash_is_a_dead_band_on_reversal():
    gear = lens_sim.Gear(10.0, motor=100.0)
    assert gear.lens == 95.0
    assert gear.drive(150.0) == 145.0                          # pushing up: 5 below
    assert gear.drive(145.0) == 145.0                          # reversal: inside the gap
    assert gear.drive(140.0) == 145.0
    assert gear.drive(130.0) == 135.0                          # pushing down: 5 above
    assert gear.drive(138.0) == 135.0
    assert lens_sim.Gear(0.0, motor=3.0).drive(7.0) == 7.0
    with pytest.raises(ValueError):
        lens_sim.Gear(-1.0)


@pytest.mark.parametrize('changes, field', [
    ({'photon_gain': -1.0}, 'photon_gain'), ({'flicker': -0.1}, 'flicker'),
    ({'psf_gaussian': float('nan')}, 'psf_gaussian')])
def test_new_config_fields_are_validated(changes, field):
    with pytest.raises(ValueError, match=field):
        LensSimulator(LensConfig(**changes))


STACK = __import__('pathlib').Path(__file__).parent / 'data' / 'focus-sweep-fpd-xp005'


@pytest.fixture(scope='module')
def stack():
    return lens_sim.FocusStack.from_directory(STACK)


def test_focus_stack_replays_the_nearest_frame(stack):
    assert stack.range == (-110.0, 20.0) and len(stack.positions) == 131
    assert np.array_equal(stack.render_gray(-49.2), stack.render_gray(-49.0))
    assert not np.array_equal(stack.render_gray(-49.0), stack.render_gray(-48.0))
    moving = stack.render_gray(-60.0, -40.0)
    assert moving.shape == (200, 200) and moving.dtype == np.uint8
    with pytest.raises(ValueError):
        stack.render_gray(float('nan'))


@pytest.mark.parametrize('strategy', ['coarse_fine', 'golden'])
def test_strategies_focus_the_real_stack(stack, strategy):
    from autofocus.tools.benchmark import stack_config
    config = stack_config()
    for start in (-110.0, 20.0, -30.0):
        search = make_search(strategy, config, start)
        result, position = search.start(), start
        while not isinstance(result, Outcome):
            position = result.target
            frame = stack.render_gray(position)
            result = search.observe(position, measures.compute(
                frame, ['laplacian_variance'], (0, 0, 1, 1))['laplacian_variance'])
        assert result.success and abs(result.position + 49.0) <= 3.0, (start, result)


def test_golden_focuses_the_simulated_lens():
    sim = LensSimulator(LensConfig(focus_position=612.0, **SMALL))
    for start in (0.0, 1000.0):
        outcome, moves = focus_loop(sim, 'golden', SearchConfig(), start)
        assert outcome.success and abs(outcome.position - 612.0) <= 10.0
        assert moves <= 23
