"""Honest outcomes on real frames and in simulation: NO_SIGNAL on dark or textureless frames
(the absolute signal floor), PEAK_OUT_OF_RANGE on the real sweep's two ends, focus on the
whole sweep, and the flat decision against the noise a search measures.

Real frames: ``data/focus-sweep-fpd-xp005-roi``, the fpd sweep's centre-half ROI at full
resolution, Z = -110..+20 mm (black below -106, best focus near -47), measured as the
sharpness node measures by default (no downsample) with the proposed default measure and
the Laplacian.
"""
import pathlib

import cv2
import numpy as np
import pytest

from autofocus.core import lens_sim, measures, strategies
from autofocus.core.strategies import Outcome, SearchConfig, make_search

ROI_STACK = pathlib.Path(__file__).parent / 'data' / 'focus-sweep-fpd-xp005-roi'
MEASURES = ('normalized_vollath_f4', 'laplacian_variance')


def _load_stack():
    frames = {}
    for path in sorted(ROI_STACK.glob('z*.png')):
        frames[int(path.stem[1:])] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert len(frames) == 131, 'the ROI copy of the fpd sweep is incomplete'
    return frames


FRAMES = _load_stack()


def stack_config(low, high):
    """The search defaults scaled to millimetres (0.13 mm per unit, as the benchmark)."""
    return SearchConfig(range_min=low, range_max=high, sweep_step=1.0, coarse_step=5.0,
                        fine_step=1.0, climb_step=3.0, climb_min_step=0.5)


_READINGS = {}


def reading(z, measure):
    """(measure, signal figures) of the recorded frame at Z = z (cached)."""
    if (z, measure) not in _READINGS:
        region = FRAMES[z]
        _READINGS[z, measure] = (
            measures.compute(region, [measure], (0.0, 0.0, 1.0, 1.0), 1)[measure],
            measures.frame_signal(region))
    return _READINGS[z, measure]


def run_on_stack(name, measure, config, start, with_signal=True):
    """A search on the real frames; returns (outcome, search). Between two recorded Z
    (1 mm apart) the lens reads the measure interpolated linearly, as a continuous lens
    would, and the nearer frame's signal figures (the nearest frame alone would show a
    fine scan flat steps that are not the lens's)."""
    def read(position):
        z = min(max(position, -110.0), 20.0)
        low = min(int(np.floor(z)), 19)
        weight = z - low
        value = ((1.0 - weight) * reading(low, measure)[0]
                 + weight * reading(low + 1, measure)[0])
        return value, reading(int(round(z)), measure)[1] if with_signal else None

    # A fly-by sees a frame every half millimetre on the way (a recorded frame each
    # millimetre, as a 2x-speed pass at the stack's frame rate would see them).
    search = make_search(name, config, start)
    return drive(search, read, start, spacing=0.5), search


def drive(search, read, start, spacing):
    """Run a search on read(position) -> (value, signal) to its Outcome; a fly-by's Sweep
    gets a frame every ``spacing`` units on the way."""
    position = start
    move = search.start()
    for _ in range(500):
        if isinstance(move, strategies.Sweep):
            path = np.linspace(position, move.target,
                               max(2, int(abs(move.target - position) / spacing) + 1))
            read_path = [read(p) for p in path]
            position = move.target
            move = search.observe_stream([(float(p), v) for p, (v, _) in zip(path, read_path)],
                                         [signal for _, signal in read_path])
        else:
            position = position + move.target if move.relative else move.target
            value, signal = read(position)
            move = search.observe(position, value, signal=signal)
        if isinstance(move, Outcome):
            return move
    raise AssertionError('the search did not end')


def full_resolution_peak(measure):
    positions = sorted(FRAMES)
    values = [measures.compute(FRAMES[z], [measure], (0.0, 0.0, 1.0, 1.0), 1)[measure]
              for z in positions]
    return strategies.refine_peak(list(zip(map(float, positions), values)))


def test_the_signal_floor_separates_the_dark_end_from_the_lit_frames():
    # Black (<= -107), one dim frame (-106), then light. The floor is absolute: level and
    # texture against the noise, not a ratio between frames.
    def lit(z):
        level, snr = measures.frame_signal(FRAMES[z])
        return level >= SearchConfig().min_signal_level and snr >= SearchConfig().min_signal_snr
    assert not any(lit(z) for z in range(-110, -105))
    assert all(lit(z) for z in range(-105, 21))
    # Pure noise, however bright, has no texture; a lit textured frame has plenty.
    rng = np.random.default_rng(0)
    noise = np.clip(128 + 3.0 * rng.standard_normal((200, 200)), 0, 255).astype(np.uint8)
    assert measures.signal_snr(noise) < SearchConfig().min_signal_snr
    assert measures.signal_snr(FRAMES[-47]) > 10 * SearchConfig().min_signal_snr


@pytest.mark.parametrize('measure', MEASURES)
@pytest.mark.parametrize('name', strategies.STRATEGIES)
@pytest.mark.parametrize('low, high', [(-110.0, -106.0), (-110.0, -100.0)])
def test_the_dark_end_of_the_real_sweep_is_no_signal(name, measure, low, high):
    # -110..-106: one dim frame among black ones; -110..-100: the black frames read
    # sharper than the lit, defocused ones by the energy-normalised measure.
    outcome, search = run_on_stack(name, measure, stack_config(low, high), low)
    assert not outcome.success
    if measure == 'laplacian_variance' and high > -106:
        # The Laplacian reads the black frames as blurred: the lit, defocused frames
        # left are a flat curve (judged without the black ones) or, when the sharpest
        # frame is the dim one, no signal.
        assert outcome.error in (strategies.NO_SIGNAL, strategies.FLAT_CURVE), outcome.message
        return
    assert outcome.error == strategies.NO_SIGNAL, outcome.message
    assert 'no signal' in outcome.message and 'mean level' in outcome.message
    assert outcome.position == search.samples[-1][0]


def test_without_the_floor_the_dark_end_would_focus():
    # What the floor prevents (so the test above can fail): the same searches, told
    # nothing about the signal, claim focus in the dark with the proposed default measure.
    claimed = 0
    for name in strategies.STRATEGIES:
        outcome, _ = run_on_stack(name, 'normalized_vollath_f4', stack_config(-110.0, -100.0),
                                  -110.0, with_signal=False)
        claimed += outcome.success
    assert claimed >= 2, claimed


KNOWN_EDGE_MISSES = {('coarse_fine', 'normalized_vollath_f4', -62.0),
                     ('golden', 'normalized_vollath_f4', -62.0)}


@pytest.mark.parametrize('measure', MEASURES)
@pytest.mark.parametrize('name', ['sweep', 'coarse_fine', 'golden'])
@pytest.mark.parametrize('low, high, edge, direction', [
    (-110.0, -62.0, -62.0, 'above'), (-35.0, -15.0, -35.0, 'below')])
def test_the_two_ends_of_the_real_sweep_are_out_of_range(name, measure, low, high, edge,
                                                         direction, request):
    # Best focus near -47: each end of the sweep, searched alone, rises toward its edge.
    if (name, measure, edge) in KNOWN_EDGE_MISSES:
        # Measured: the default measure's curve still rises toward -62 (15 mm from focus)
        # at 80 % of its steepest slope, but coarse_fine's and golden's samples there span
        # only 3 mm, too little for the edge test (peak_fitting.peak_beyond_edge) to place
        # the vertex beyond the edge; they claim -62. Open (strict: a fix makes it pass).
        request.applymarker(pytest.mark.xfail(strict=True, reason='known edge miss'))
    outcome, _ = run_on_stack(name, measure, stack_config(low, high), (low + high) / 2)
    assert not outcome.success
    assert outcome.error == strategies.PEAK_OUT_OF_RANGE, outcome.message
    assert f'the peak lies {direction} {edge:g}' in outcome.message
    assert abs(outcome.position - edge) <= 3.0


KNOWN_SWEEP_MISSES = {('golden', 'normalized_vollath_f4'), ('hill_climb', 'normalized_vollath_f4'),
                      ('hill_climb', 'laplacian_variance'),
                      ('flyby', 'normalized_vollath_f4'), ('flyby', 'laplacian_variance')}


@pytest.mark.parametrize('measure', MEASURES)
@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_the_whole_real_sweep_focuses_on_its_full_resolution_peak(name, measure, request):
    if (name, measure) in KNOWN_SWEEP_MISSES:
        # Measured: golden ends 1.8 mm off (its single-frame comparisons follow the
        # sweep's 4 mm ripple); hill_climb 1.3-3.7 mm off from -80, -47 and -15 (its
        # refine_peak fits the ripply top it climbed); flyby 1.9-2.0 mm off (its 3-frame
        # refine at rest, 1.3 mm apart, fits the ripple of this broad top: coarse_fine
        # samples it at half its width). Open (strict: a fix makes it pass).
        request.applymarker(pytest.mark.xfail(strict=True, reason='known miss'))
    truth = full_resolution_peak(measure)
    for start in (-110.0, -80.0, -47.0, -15.0):
        outcome, _ = run_on_stack(name, measure, stack_config(-110.0, -15.0), start)
        if name == 'hill_climb' and start in (-110.0, -15.0):
            # From the black end or the far end a relative climb may see no slope; it
            # must not claim a false focus.
            assert not outcome.success or abs(outcome.position - truth) <= 1.5, outcome
            continue
        assert outcome.success, (start, outcome.message)
        assert abs(outcome.position - truth) <= 1.5, (start, outcome.position, truth)


def _sim_frames(scene, gain=1.0, noise=1.5, seed=0):
    sim = lens_sim.LensSimulator(lens_sim.LensConfig(width=160, height=120, scene=scene,
                                                     seed=seed, blur_per_unit=0.025,
                                                     noise_sigma=0.0))
    rng = np.random.default_rng(seed)

    def frame(position):
        clean = sim.render_gray(position).astype(np.float32) * gain
        return np.clip(clean + noise * rng.standard_normal(clean.shape), 0, 255).astype(np.uint8)
    return frame


def run_on_sim(name, frame, measure='normalized_vollath_f4', with_signal=True):
    config = SearchConfig()
    search = make_search(name, config, 0.0)
    def read(position):
        gray = frame(position)
        value = measures.compute(gray, [measure], measures.DEFAULT_ROI, 1)[measure]
        return value, measures.frame_signal(gray) if with_signal else None

    return drive(search, read, 0.0, spacing=10.0)      # a fly-by: a frame every 10 units


@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_simulated_dark_and_featureless_scenes_are_no_signal(name):
    # A textured scene 25x too dark (level ~5) and a featureless wall: no signal, whatever
    # the curve does. The same textured scene lit: focus at 500.
    dark = run_on_sim(name, _sim_frames('texture', gain=0.04))
    assert dark.error == strategies.NO_SIGNAL, dark.message
    wall = run_on_sim(name, _sim_frames('flat', noise=3.0))
    assert wall.error == strategies.NO_SIGNAL, wall.message
    if name != 'hill_climb':        # from 0 a climb sees the tail only (tested elsewhere)
        lit = run_on_sim(name, _sim_frames('texture'))
        assert lit.success and abs(lit.position - 500.0) <= 15.0, lit.message


@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_a_featureless_scene_without_signal_figures_is_still_flat(name):
    # The flat decision on its own (no floor): the proposed default's flat-scene curve has
    # a relative contrast near 0.25; judged against the noise the search measures it is
    # flat, never a focus.
    for seed in range(3):
        outcome = run_on_sim(name, _sim_frames('flat', noise=3.0, seed=seed),
                             with_signal=False)
        assert not outcome.success, outcome.message
        assert outcome.error == strategies.FLAT_CURVE
