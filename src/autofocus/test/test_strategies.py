"""Search strategies against synthetic focus curves: accuracy, flat curves, protocol, config."""
import math

import numpy as np
import pytest

from autofocus.core import strategies
from autofocus.core.strategies import peak_fitting
from autofocus.core.strategies import flyby
from autofocus.core.strategies import search as search_module
from autofocus.core.strategies import (
    FLAT_CURVE, Move, Outcome, SearchConfig, make_search, refine_peak, scan_positions)


def gaussian(peak, width, floor):
    return lambda x: floor + math.exp(-0.5 * ((x - peak) / width) ** 2)


def lorentzian(peak, width, floor):
    return lambda x: floor + 1.0 / (1.0 + ((x - peak) / width) ** 2)


class Lens:
    """A fake motor + camera: moves as told (optionally to a coarser motor grid) and
    reports the curve's value there with multiplicative noise."""

    def __init__(self, curve, noise=0.0, seed=0, start=0.0, motor_grid=None):
        self.curve = curve
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.position = start
        self.motor_grid = motor_grid
        self.moves: list[Move] = []

    def move(self, move):
        self.moves.append(move)
        target = self.position + move.target if move.relative else move.target
        if self.motor_grid:
            target = round(target / self.motor_grid) * self.motor_grid
        self.position = target
        return self.position, self.curve(target) * (1.0 + self.noise * self.rng.standard_normal())


    def sweep(self, step, spacing=17.0):
        """A fly-by: the lens moves to step.target; a frame every ``spacing`` units."""
        self.moves.append(step)
        count = max(2, int(abs(step.target - self.position) / spacing) + 1)
        stream = []
        for position in np.linspace(self.position, step.target, count):
            value = self.curve(position) * (1.0 + self.noise * self.rng.standard_normal())
            stream.append((float(position), value))
        self.position = step.target
        return stream


def run(search, lens, limit=1000):
    result = search.start()
    for _ in range(limit):
        if isinstance(result, strategies.Sweep):
            result = search.observe_stream(lens.sweep(result))
            if isinstance(result, Outcome):
                return result
            continue
        result = search.observe(*lens.move(result))
        if isinstance(result, Outcome):
            return result
    raise AssertionError(f'{search.name} did not finish in {limit} moves')


def curve_cases(count, seed, widths, lo=30.0, hi=970.0):
    """(curve, peak, noise, width) cases: Gaussian and Lorentzian peaks across the range,
    floors of 5-30% of the peak height, 2-5% multiplicative noise."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        peak = float(rng.uniform(lo, hi))
        shape = gaussian if index % 2 == 0 else lorentzian
        width = float(rng.uniform(*widths[shape.__name__]))
        noise = float(rng.uniform(0.02, 0.05))
        cases.append((shape(peak, width, float(rng.uniform(0.05, 0.3))), peak, noise, width))
    return cases


WIDTHS = {'gaussian': (25.0, 45.0), 'lorentzian': (20.0, 60.0)}


def sweep_frames(config):
    """Frames the sweep strategy takes over the whole range (with its final move): what the
    faster strategies must stay below."""
    lens = Lens(gaussian(500.0, 40.0, 0.1), 0.0, start=config.range_min)
    run(make_search('sweep', config, config.range_min), lens)
    return len(lens.moves)


def noise_limited_halfwidth(curve, peak, noise, sigmas=2.0):
    """Half width of the top of ``curve`` that lies within ``sigmas`` noise standard
    deviations of its peak value (multiplicative noise ``noise``): inside it, samples of
    the curve cannot tell which position is higher."""
    top = curve(peak)
    cut = top * (1.0 - sigmas * noise)
    step = 0.05
    offset = 0.0
    while curve(peak - offset - step) >= cut or curve(peak + offset + step) >= cut:
        offset += step
    return offset


def test_names_and_default():
    assert strategies.STRATEGIES == ('sweep', 'coarse_fine', 'golden', 'hill_climb', 'flyby')
    assert strategies.DEFAULT_STRATEGY == 'coarse_fine'
    # Baselines are for the benchmark only: not offered to users.
    assert set(strategies.BASELINES) == {'webcam_score', 'dslr_sweep'}
    assert not set(strategies.BASELINES) & set(strategies.STRATEGIES)
    with pytest.raises(ValueError):
        make_search('dslr_sweep', SearchConfig())
    for name in strategies.STRATEGIES:
        assert make_search(name, SearchConfig()).name == name


def test_coarse_fine_ends_within_one_fine_step():
    config = SearchConfig()
    errors = []
    for index, (curve, peak, noise, _) in enumerate(curve_cases(120, seed=1, widths=WIDTHS)):
        start = (0.0, 1000.0, 480.0)[index % 3]
        lens = Lens(curve, noise, seed=index, start=start)
        outcome = run(make_search('coarse_fine', config, start), lens)
        assert outcome.success, outcome.message
        assert outcome.position == lens.position
        errors.append(abs(outcome.position - peak))
        phases = [move.phase for move in lens.moves]
        assert phases[-1] == 'final' and set(phases) == {'coarse', 'fine', 'final'}
        assert len(lens.moves) < sweep_frames(config)
    assert max(errors) <= config.fine_step, max(errors)


def test_coarse_fine_with_other_steps_and_range():
    config = SearchConfig(range_min=-200.0, range_max=2600.0, coarse_step=250.0, fine_step=20.0)
    widths = {'gaussian': (60.0, 100.0), 'lorentzian': (50.0, 120.0)}
    for index, (curve, peak, noise, _) in enumerate(
            curve_cases(40, seed=2, widths=widths, lo=-150.0, hi=2550.0)):
        outcome = run(make_search('coarse_fine', config, 1200.0),
                      Lens(curve, noise, seed=index, start=1200.0))
        assert outcome.success
        assert abs(outcome.position - peak) <= config.fine_step


def test_coarse_fine_uses_reported_positions():
    # The motor only reaches multiples of 7 units; the search must fit what was reached.
    config = SearchConfig()
    for index, (curve, peak, noise, _) in enumerate(curve_cases(30, seed=3, widths=WIDTHS)):
        lens = Lens(curve, noise, seed=index, motor_grid=7.0)
        outcome = run(make_search('coarse_fine', config), lens)
        assert outcome.success and outcome.position % 7.0 == 0.0
        assert abs(outcome.position - peak) <= config.fine_step + 3.5


@pytest.mark.parametrize('name', ['sweep', 'coarse_fine'])
def test_fit_uses_reported_not_commanded_positions(name):
    # A motor that always lands 3 units beyond the target: in the coordinates it reports,
    # the peak is at 437, and that is where the final move must aim (434 if the commanded
    # positions were fitted).
    class OvershootingLens(Lens):
        def move(self, move):
            self.moves.append(move)
            self.position = move.target + (3.0 if move.phase != 'final' else 0.0)
            return self.position, self.curve(self.position)

    lens = OvershootingLens(gaussian(437.0, 60.0, 0.1))
    run(make_search(name, SearchConfig()), lens)
    assert lens.moves[-1].phase == 'final'
    assert lens.moves[-1].target == pytest.approx(437.0, abs=1.0)


@pytest.mark.parametrize('peak', [0.0, 1000.0])
def test_coarse_fine_peak_at_a_range_end(peak):
    outcome = run(make_search('coarse_fine', SearchConfig(), 500.0),
                  Lens(lorentzian(peak, 80.0, 0.1), 0.02, start=500.0))
    assert outcome.success and abs(outcome.position - peak) <= 10.0


def test_sweep_ends_within_one_sweep_step():
    config = SearchConfig()
    for index, (curve, peak, noise, _) in enumerate(curve_cases(80, seed=4, widths=WIDTHS)):
        start = (0.0, 1000.0)[index % 2]
        lens = Lens(curve, noise, seed=index, start=start)
        outcome = run(make_search('sweep', config, start), lens)
        assert outcome.success
        assert abs(outcome.position - peak) <= config.sweep_step
        sweep = [move.target for move in lens.moves if move.phase == 'sweep']
        assert len(sweep) == 41 and sorted(sweep) == scan_positions(0.0, 1000.0, 25.0)
        # It starts at the end nearer the motor.
        assert sweep[0] == start


def test_sweep_always_samples_range_max():
    config = SearchConfig(range_min=3.0, range_max=100.0, sweep_step=25.0)
    lens = Lens(lorentzian(100.0, 30.0, 0.1))
    run(make_search('sweep', config), lens)
    assert [m.target for m in lens.moves if m.phase == 'sweep'] == [3.0, 28.0, 53.0, 78.0, 100.0]


def test_hill_climb_ends_within_a_few_min_steps_from_several_starts():
    config = SearchConfig()
    rng = np.random.default_rng(5)
    # Starts up to 2.5 widths (sigma or half width at half maximum) away, on the slopes: a
    # start in a tail with no measurable slope cannot be climbed and ends as a flat curve.
    cases = curve_cases(60, seed=6, widths={'gaussian': (40.0, 80.0), 'lorentzian': (20, 60)},
                        lo=200.0, hi=800.0)
    for index, (curve, peak, noise, width) in enumerate(cases):
        for offset in (-2.5, -1.0, 0.0, 1.2, 2.5):
            start = peak + offset * width + float(rng.uniform(-5, 5))
            lens = Lens(curve, noise, seed=index, start=start)
            outcome = run(make_search('hill_climb', config, start), lens)
            assert outcome.success, (peak, start, outcome.message)
            # Within the top of the curve that the noise hides (see noise_limited_halfwidth),
            # or a min step, whichever is wider: no search can place a peak better.
            tolerance = max(config.climb_min_step, noise_limited_halfwidth(curve, peak, noise))
            assert abs(outcome.position - peak) <= tolerance, (peak, start, tolerance)
            assert all(move.relative for move in lens.moves)
            assert lens.moves[0] == Move(0.0, relative=True, phase='climb')
            assert lens.moves[-1].phase == 'final'
            assert len(lens.moves) <= config.climb_max_moves


def test_hill_climb_final_move_goes_to_the_estimate_from_reported_positions():
    lens = Lens(lorentzian(437.0, 40.0, 0.1), start=300.0, motor_grid=1.0)
    search = make_search('hill_climb', SearchConfig(), 300.0)
    outcome = run(search, lens)
    assert outcome.success and abs(outcome.position - 437.0) <= 2.0
    before_final = search.samples[-2][0]
    assert lens.moves[-1].target == pytest.approx(outcome.position - before_final, abs=0.5)


def test_hill_climb_stays_in_range_and_respects_the_move_bound():
    # Wild noise, peak at the wall, tiny minimum step: must still end, inside the range.
    config = SearchConfig(range_min=0.0, range_max=300.0, climb_min_step=0.01,
                          climb_max_moves=60)
    for seed in range(20):
        lens = Lens(lorentzian(0.0, 50.0, 0.1), noise=0.5, seed=seed, start=150.0)
        search = make_search('hill_climb', config, 150.0)
        run(search, lens)
        assert len(lens.moves) <= config.climb_max_moves
        assert all(0.0 <= p <= 300.0 for p, _ in search.samples)


@pytest.mark.parametrize('name', strategies.STRATEGIES)
@pytest.mark.parametrize('noise', [0.0, 0.02, 0.05])
def test_flat_curve_never_claims_success(name, noise):
    for seed in range(40):
        level = 10.0 ** (seed % 5 - 2)           # the measure's scale must not matter
        start = float((seed * 137) % 1000)
        lens = Lens(lambda x: level, noise, seed=seed, start=start)
        search = make_search(name, SearchConfig(), start)
        outcome = run(search, lens)
        assert not outcome.success
        assert outcome.error == FLAT_CURVE
        assert 'no focus peak' in outcome.message
        assert all(move.phase != 'final' for move in lens.moves)
        assert outcome.position == lens.position == search.samples[-1][0]


@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_all_zero_and_negative_curves_are_flat(name):
    for level in (0.0, -1.0):
        outcome = run(make_search(name, SearchConfig()), Lens(lambda x: level))
        assert outcome.error == FLAT_CURVE


@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_a_low_contrast_peak_is_judged_against_measured_noise(name):
    # Peak only 1.2x the floor: contrast 0.17, under the old 0.3 margin that called it flat.
    curve = lorentzian(500.0, 60.0, 5.0)
    # Noiseless: the sweep's 41 samples show no scatter, coarse_fine and golden measure
    # their coarse positions again, hill_climb revisits some: no noise; a peak, found.
    outcome = run(make_search(name, SearchConfig(), 450.0), Lens(curve, start=450.0))
    assert outcome.success and abs(outcome.position - 500.0) <= 20.0, outcome.message
    # The server's noise from repeated frames (frames_per_position >= 2) is what decides.
    search = make_search(name, SearchConfig(), 450.0)
    lens = Lens(curve, start=450.0)
    result = search.start()
    while not isinstance(result, Outcome):
        if isinstance(result, strategies.Sweep):     # streamed frames are single frames
            result = search.observe_stream(lens.sweep(result))
        else:
            result = search.observe(*lens.move(result), noise=0.005)
    assert result.success and abs(result.position - 500.0) <= 20.0, result.message
    # The same peak in 5 % noise (one sigma 0.25 of a height of 1.0): a claim, when the
    # samples let one be made, is of this peak, never of the noise.
    for seed in range(10):
        lens = Lens(curve, 0.05, seed=seed, start=450.0)
        outcome = run(make_search(name, SearchConfig(), 450.0), lens)
        assert not outcome.success or abs(outcome.position - 500.0) <= 60.0, outcome.message
    # min_peak_contrast still sets a floor: the old rule is one setting away.
    outcome = run(make_search(name, SearchConfig(min_peak_contrast=0.3), 450.0),
                  Lens(curve, start=450.0))
    assert outcome.error == FLAT_CURVE


def test_search_protocol():
    search = make_search('coarse_fine', SearchConfig())
    assert search.best is None and search.samples == [] and not search.finished
    with pytest.raises(RuntimeError):
        search.observe(0.0, 1.0)
    first = search.start()
    assert first == Move(0.0, relative=False, phase='coarse')
    with pytest.raises(RuntimeError):
        search.start()
    with pytest.raises(ValueError):
        search.observe(float('nan'), 1.0)
    with pytest.raises(ValueError):
        search.observe(0.0, float('inf'))
    lens = Lens(gaussian(420.0, 40.0, 0.1))
    result = search.observe(*lens.move(first))
    while not isinstance(result, Outcome):
        assert search.phase == result.phase
        result = search.observe(*lens.move(result))
    assert search.finished and search.outcome is result
    assert search.samples[-1] == (result.position, result.sharpness)
    assert search.best == max(search.samples, key=lambda s: s[1])
    assert 'focused at' in result.message and result.error == ''
    with pytest.raises(RuntimeError, match='finished'):
        search.observe(420.0, 1.0)


def test_outcome_and_move_are_immutable():
    with pytest.raises(AttributeError):
        Move(1.0).target = 2.0
    with pytest.raises(AttributeError):
        Outcome(True, 1.0, 2.0).success = False


def test_make_search_rejects_unknown_names_listing_known_ones():
    with pytest.raises(ValueError) as error:
        make_search('golden_section', SearchConfig())
    for name in ('golden_section', *strategies.STRATEGIES):
        assert name in str(error.value)


@pytest.mark.parametrize('changes, field', [
    ({'range_min': 10.0, 'range_max': 10.0}, 'range_min'),
    ({'range_min': 10.0, 'range_max': 0.0}, 'range_min'),
    ({'sweep_step': 0.0}, 'sweep_step'),
    ({'coarse_step': -100.0}, 'coarse_step'),
    ({'fine_step': 0.0}, 'fine_step'),
    ({'climb_step': -1.0}, 'climb_step'),
    ({'climb_min_step': 0.0}, 'climb_min_step'),
    ({'climb_min_step': 60.0}, 'climb_min_step'),
    ({'fine_step': 1e-4}, 'fine_step'),
    ({'range_max': float('inf')}, 'range_max'),
    ({'noise_band': -0.1}, 'noise_band'),
    ({'min_peak_contrast': 1.5}, 'min_peak_contrast'),
    ({'min_peak_contrast': -0.1}, 'min_peak_contrast'),
    ({'climb_max_moves': 2}, 'climb_max_moves'),
])
@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_make_search_rejects_bad_config(name, changes, field):
    with pytest.raises(ValueError, match=field):
        make_search(name, SearchConfig(**changes))


def test_scan_positions():
    assert scan_positions(0.0, 100.0, 25.0) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert scan_positions(0.0, 90.0, 25.0) == [0.0, 25.0, 50.0, 75.0, 90.0]
    assert scan_positions(100.0, 0.0, 40.0) == [100.0, 60.0, 20.0, 0.0]
    assert scan_positions(0.0, 1.0, 0.1)[-1] == 1.0 and len(scan_positions(0.0, 1.0, 0.1)) == 11


def test_refine_peak():
    def parabola(x):
        return 100.0 - (x - 43.7) ** 2

    xs = [0.0, 20.0, 40.0, 60.0, 80.0]
    assert refine_peak([(x, parabola(x)) for x in xs]) == pytest.approx(43.7)
    # Uneven spacing and shuffled input.
    xs = [60.0, 0.0, 35.0, 47.0, 80.0]
    assert refine_peak([(x, parabola(x)) for x in xs]) == pytest.approx(43.7)
    # Best sample at an end: no extrapolation.
    assert refine_peak([(0.0, 3.0), (10.0, 2.0), (20.0, 1.0)]) == 0.0
    assert refine_peak([(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)]) == 20.0
    # A plateau (not concave) returns the best sample.
    assert refine_peak([(0.0, 1.0), (10.0, 1.0), (20.0, 1.0)]) in (0.0, 10.0, 20.0)
    # Duplicated positions are averaged, not fitted as separate points.
    samples = [(x, parabola(x)) for x in (20.0, 40.0, 40.0, 60.0)]
    assert refine_peak(samples) == pytest.approx(43.7)
    with pytest.raises(ValueError):
        refine_peak([])


def test_peak_contrast():
    assert strategies.peak_contrast([1.0, 2.0, 4.0]) == 0.75
    assert strategies.peak_contrast([5.0, 5.0]) == 0.0
    assert strategies.peak_contrast([0.0, 0.0]) == 0.0
    assert strategies.peak_contrast([]) == 0.0


# -- golden section, backlash, two peaks, baselines --------------------------------------------

def test_golden_is_accurate_in_far_fewer_frames_than_a_sweep():
    config = SearchConfig()
    errors, frames = [], []
    for index, (curve, peak, noise, _) in enumerate(curve_cases(150, seed=5, widths=WIDTHS)):
        start = (0.0, 1000.0, 480.0)[index % 3]
        lens = Lens(curve, noise, seed=index, start=start)
        outcome = run(make_search('golden', config, start), lens)
        assert outcome.success, outcome.message
        assert outcome.position == lens.position
        errors.append(abs(outcome.position - peak))
        frames.append(len(lens.moves))
        assert {m.phase for m in lens.moves} <= {'coarse', 'golden', 'final'}
    assert np.percentile(errors, 99) <= config.fine_step
    assert max(frames) < sweep_frames(config)
    assert np.median(frames) < 0.25 * 101      # a sweep at the fine step takes 101


def test_golden_peak_at_a_range_end_and_flat_curve():
    outcome = run(make_search('golden', SearchConfig(), 500.0),
                  Lens(gaussian(1000.0, 60.0, 0.1), 0.0, start=500.0))
    assert outcome.success and outcome.position >= 990.0
    flat = run(make_search('golden', SearchConfig(), 0.0), Lens(lambda x: 1.0, 0.02, seed=1))
    assert not flat.success and flat.error == FLAT_CURVE


class BacklashLens(Lens):
    """A lens behind gear play: it sits play/2 below the motor after an upward move and
    play/2 above it after a downward one; reports the motor position."""

    def __init__(self, curve, play, **kwargs):
        super().__init__(curve, **kwargs)
        from autofocus.core.lens_sim import Gear
        self.gear = Gear(play, motor=self.position)

    def move(self, move):
        self.moves.append(move)
        target = self.position + move.target if move.relative else move.target
        self.position = target
        return self.position, self.curve(self.gear.drive(target))


@pytest.mark.parametrize('name', ['sweep', 'coarse_fine', 'golden', 'hill_climb'])
def test_backlash_final_approach_comes_from_below(name):
    peak = 437.0
    for start in (0.0, 1000.0, 520.0):
        for backlash in (0.0, 15.0):
            lens = BacklashLens(gaussian(peak, 35.0, 0.1), 10.0, start=start)
            outcome = run(make_search(name, SearchConfig(backlash=backlash), start), lens)
            assert outcome.success
            error = abs(lens.gear.lens - peak)
            moves = lens.moves
            if backlash:
                # The last two moves: overshoot below, then up to the target.
                assert moves[-1].phase == 'final'
                positions, position = [], start
                for move in moves:
                    position = position + move.target if move.relative else move.target
                    positions.append(position)
                assert positions[-2] < positions[-1]
                if name != 'hill_climb':
                    assert error <= 5.0, (start, error)
    # Without compensation a downward final approach leaves the lens play/2 off; the
    # compensated search must do better on the same lens.
    plain = BacklashLens(gaussian(peak, 35.0, 0.1), 10.0, start=1000.0)
    run(make_search('golden', SearchConfig(), 1000.0), plain)
    comp = BacklashLens(gaussian(peak, 35.0, 0.1), 10.0, start=1000.0)
    run(make_search('golden', SearchConfig(backlash=15.0), 1000.0), comp)
    assert abs(comp.gear.lens - peak) < abs(plain.gear.lens - peak)


def two_peaks(near, far, far_height):
    return lambda x: 0.05 + math.exp(-0.5 * ((x - near) / 35.0) ** 2) + far_height * math.exp(
        -0.5 * ((x - far) / 35.0) ** 2)


@pytest.mark.parametrize('name', ['sweep', 'coarse_fine', 'golden'])
def test_two_peaks_are_reported_and_the_global_one_is_chosen(name):
    for start in (0.0, 1000.0):
        # The local peak is nearer the start in one of the two runs.
        outcome = run(make_search(name, SearchConfig(), start),
                      Lens(two_peaks(300.0, 700.0, 0.6), 0.02, seed=3, start=start))
        assert outcome.success and outcome.warning == strategies.BIMODAL
        assert abs(outcome.position - 300.0) <= 25.0
        assert '700' in outcome.message or '70' in outcome.message
    single = run(make_search(name, SearchConfig(), 0.0), Lens(gaussian(300.0, 35.0, 0.1), 0.03))
    assert single.warning == ''


def test_find_peaks():
    samples = [(float(x), two_peaks(300.0, 700.0, 0.6)(x)) for x in range(0, 1001, 100)]
    peaks = strategies.find_peaks(samples, 0.3)
    assert [p for p, _ in peaks] == [300.0, 700.0]
    assert strategies.find_peaks(samples, 0.7) == peaks[:1]
    # Noise on one broad peak is not a second peak.
    broad = [(float(x), 1.0 + 0.01 * (x % 200 == 0)) for x in range(400, 601, 20)]
    assert len(strategies.find_peaks(broad, 0.3)) == 1


class ScriptedLens:
    """Reports a scripted reading per frame, wherever the lens is; records the moves."""

    def __init__(self, readings, start=0.0):
        self.readings = iter(readings)
        self.position = start
        self.moves: list[Move] = []

    def move(self, move):
        self.moves.append(move)
        self.position = self.position + move.target if move.relative else move.target
        return self.position, next(self.readings)


def test_webcam_score_decides_like_seed_000_client():
    # Seed 000: a decision every 40 frames from the median of the last 7 readings, against
    # the previous decision's median; the score resets each cycle, so a better median keeps
    # the direction and a worse one turns round; the motor runs between decisions.
    search = strategies.make_baseline('webcam_score', SearchConfig(), 500.0)
    search.calibrate(1800.0)                       # thresholds 500 and 1, as in the seed
    assert (search.stop_high, search.stop_low) == pytest.approx((500.0, 1.0))
    # 41 frames then 40 per decision: medians 100, 200 (better), 150 (worse), 600 (stop).
    readings = [0.0] * 34 + [100.0] * 7 + [0.0] * 33 + [200.0] * 7 + [0.0] * 33 + [150.0] * 7
    readings += [0.0] * 33 + [600.0] * 7
    lens = ScriptedLens(readings, start=500.0)
    outcome = run(search, lens, limit=len(readings))
    assert [(frame, median, msg) for frame, median, msg in search.decisions] == [
        (41, 100.0, 'forward'), (81, 200.0, 'forward'), (121, 150.0, 'back'),
        (161, 600.0, 'stop')]
    assert outcome.success and len(lens.moves) == 161
    # Resting until the first decision, then one coarse step per decision, continuously.
    travel = SearchConfig().coarse_step / 40
    assert {m.target for m in lens.moves[:41]} == {0.0}
    assert all(m.target == travel for m in lens.moves[41:121])
    assert all(m.target == -travel for m in lens.moves[121:])
    assert outcome.position == pytest.approx(500.0 + 80 * travel - 40 * travel)


def test_webcam_score_stops_below_the_low_threshold_and_times_out_otherwise():
    search = strategies.make_baseline('webcam_score', SearchConfig(), 0.0)
    search.calibrate(1800.0)
    dark = run(search, ScriptedLens([0.5] * 41))
    assert dark.success and search.decisions[-1][2] == 'stop'       # the seed's "< 1" stop
    search = strategies.make_baseline('webcam_score', SearchConfig(), 0.0)
    search.calibrate(1800.0)
    never = run(search, ScriptedLens([300.0] * 2000), limit=2000)
    assert not never.success and never.error == 'timeout'
    assert len(search.samples) == search.max_frames
    with pytest.raises(ValueError, match='in_focus_reading'):
        search.calibrate(0.0)


def test_webcam_score_finds_a_peak_from_its_slope_and_claims_a_flat_scene():
    # Started below a peak whose in-focus reading is 1.1: the stop threshold is 0.31, which
    # this curve crosses on its slope, where the seed's rule stops.
    curve = gaussian(430.0, 35.0, 0.1)
    search = strategies.make_baseline('webcam_score', SearchConfig(), 300.0)
    search.calibrate(curve(430.0))
    outcome = run(search, Lens(curve, 0.02, seed=1, start=300.0), limit=2000)
    assert outcome.success and 300.0 < outcome.position < 430.0
    assert curve(outcome.position) > search.stop_high * 0.9
    # The seed knows no flat curves: calibrated on a featureless scene it stops and claims.
    flat = strategies.make_baseline('webcam_score', SearchConfig(), 0.0)
    flat.calibrate(1.0)
    assert run(flat, Lens(lambda x: 1.0, 0.02, seed=2), limit=2000).success
    with pytest.raises(ValueError, match='known'):
        strategies.make_baseline('golden', SearchConfig())


def test_dslr_sweep_refines_in_smaller_steps_down_to_the_fine_step():
    config = SearchConfig()
    for index, (curve, peak, _, _) in enumerate(curve_cases(20, seed=9, widths=WIDTHS)):
        lens = Lens(curve, 0.0, start=500.0)
        outcome = run(strategies.make_baseline('dslr_sweep', config, 500.0), lens)
        assert outcome.success
        sweep = [m.target for m in lens.moves if m.phase == 'sweep']
        assert sweep == scan_positions(0.0, 1000.0, config.sweep_step)
        fine = [m.target for m in lens.moves if m.phase == 'fine']
        gaps = sorted({round(b - a, 6) for a, b in zip(fine, fine[1:]) if b > a})
        # 25 -> 12.5 -> 10: both smaller steps are used, the last one is the fine step.
        assert 12.5 in gaps and config.fine_step in gaps and max(gaps) <= 12.5
        # The best sample on a noiseless curve: within half the finest step of the peak.
        assert abs(outcome.position - peak) <= config.fine_step / 2 + 1e-9
        assert lens.moves[-1].phase == 'final'
    flat = run(strategies.make_baseline('dslr_sweep', config, 0.0),
               Lens(lambda x: 1.0, 0.02, seed=2))
    assert flat.success                          # the seed knows no flat curves either


@pytest.mark.parametrize('changes, field', [
    ({'backlash': -1.0}, 'backlash'), ({'golden_tolerance': -1.0}, 'golden_tolerance'),
    ({'bimodal_ratio': 0.0}, 'bimodal_ratio'), ({'backlash': float('nan')}, 'backlash'),
    ({'fine_span': -1.0}, 'fine_span'), ({'fine_span': float('inf')}, 'fine_span'),
    ({'fine_span': 1e5}, 'fine_step')])
def test_new_config_fields_are_validated(changes, field):
    with pytest.raises(ValueError, match=field):
        make_search('golden', SearchConfig(**changes))


# -- coarse_fine: Gaussian coarse estimate, a finer look at weak peaks, adaptive fine scan --------

def test_gaussian_peak_is_exact_for_a_gaussian_where_a_parabola_is_not():
    curve = gaussian(437.0, 60.0, 0.1)
    coarse = [(float(x), curve(x)) for x in range(0, 1001, 100)]
    assert strategies.gaussian_peak(coarse) == pytest.approx(437.0, abs=0.01)
    assert abs(refine_peak(coarse) - 437.0) > 5.0          # biased towards the sample at 400
    # Best sample at an end: no extrapolation.
    assert strategies.gaussian_peak([(0.0, 3.0), (100.0, 2.0), (200.0, 1.0)]) == 0.0
    # A neighbour at the floor has no logarithm: the raw parabola, towards the higher side.
    estimate = strategies.gaussian_peak([(0.0, 0.0), (100.0, 0.0), (200.0, 1.0), (300.0, 0.5),
                                         (400.0, 0.0)])
    assert 200.0 < estimate < 300.0
    with pytest.raises(ValueError):
        strategies.gaussian_peak([])


def test_peak_fit_error_matches_the_scatter_of_the_vertex():
    def curve(x):
        return 1.0 - ((x - 437.0) / 100.0) ** 2

    def vertices(positions, sigma, count=400):
        rng = np.random.default_rng(4)
        found, errors = [], []
        for _ in range(count):
            samples = [(x, curve(x) + sigma * rng.standard_normal()) for x in positions]
            fit = strategies.peak_fit(samples, noise=sigma)
            found.append(fit.position)
            errors.append(fit.error)
        return np.std(found), np.median(errors)

    narrow = np.arange(407.0, 468.0, 10.0)
    scatter, error = vertices(narrow, 0.01)
    assert error == pytest.approx(scatter, rel=0.25)
    # Twice the noise, twice the error; more samples over a wider top, less.
    assert vertices(narrow, 0.02)[1] == pytest.approx(2 * error, rel=0.2)
    assert vertices(np.arange(357.0, 518.0, 10.0), 0.01)[1] < 0.5 * error
    # No fit, no error bound: best at an end, or a curve that is not concave.
    assert strategies.peak_fit([(0.0, 2.0), (10.0, 1.0), (20.0, 0.5)]).error == math.inf
    assert strategies.peak_fit([(0.0, 1.0), (10.0, 1.0), (20.0, 1.0)]).error == math.inf
    # max_gap: distant samples on one side of a dense top are left out of the fit.
    dense = [(x, curve(x)) for x in np.arange(417.0, 458.0, 10.0)]
    lopsided = dense + [(600.0, curve(540.0))]
    assert strategies.peak_fit(lopsided, max_gap=15.0).fitted == tuple(dense)
    assert strategies.peak_fit(lopsided, max_gap=15.0).position == pytest.approx(437.0)


def test_bends_measure_the_noise_where_the_curve_is_straight():
    rng = np.random.default_rng(2)
    xs = np.sort(rng.uniform(0.0, 1000.0, 300))
    line = [(x, 5.0 + 0.3 * x + 2.0 * rng.standard_normal()) for x in xs]
    assert peak_fitting._noise(peak_fitting._bends(line)) == pytest.approx(2.0, rel=0.2)
    # A few sharp bends (a peak) do not move the median.
    spiked = [(x, y + (500.0 if 10 <= i < 20 else 0.0)) for i, (x, y) in enumerate(line)]
    assert peak_fitting._noise(peak_fitting._bends(spiked)) == pytest.approx(2.0, rel=0.25)
    tip = [(0.0, 0.0), (10.0, 10.0), (20.0, 0.0)]
    assert peak_fitting._bends(tip) == [pytest.approx(10.0 / math.sqrt(1.5))]
    assert peak_fitting._bends(tip, skip=10.0) == []
    assert peak_fitting._bends(tip, max_span=15.0) == []
    assert peak_fitting._noise([]) == 0.0


@pytest.mark.parametrize('name', ['coarse_fine', 'golden'])
def test_weak_peak_between_coarse_samples_is_found_not_reported_flat(name):
    # Low texture: the peak stands 1.0 over a floor of 1.0, midway between two coarse
    # samples, which see only a quarter of it: the coarse scan alone is "flat".
    curve = gaussian(450.0, 30.0, 1.0)
    coarse = [curve(x) for x in range(0, 1001, 100)]
    assert strategies.peak_contrast(coarse) < search_module.WEAK_COARSE_CONTRAST
    for seed in range(20):
        lens = Lens(curve, 0.01, seed=seed, start=0.0)
        outcome = run(make_search(name, SearchConfig(), 0.0), lens)
        assert outcome.success, outcome.message
        assert abs(outcome.position - 450.0) <= SearchConfig().fine_step
        # The finer look: two more coarse-phase frames, halfway to the best sample's (400
        # or 500) neighbours: one of them on the peak.
        coarse_moves = [m.target for m in lens.moves if m.phase == 'coarse']
        assert len(coarse_moves) == 13 and 450.0 in coarse_moves
    # The same floor without the peak stays flat, after the same two frames and no more.
    lens = Lens(lambda x: 1.0, 0.01, seed=1, start=0.0)
    outcome = run(make_search(name, SearchConfig(), 0.0), lens)
    assert outcome.error == FLAT_CURVE
    assert len(lens.moves) == 13 and {m.phase for m in lens.moves} == {'coarse'}


def test_coarse_fine_on_a_noiseless_unimodal_curve_takes_at_most_25_frames():
    widths = {'gaussian': (25.0, 60.0), 'lorentzian': (20.0, 60.0)}
    plain = []
    for curve, peak, _, _ in curve_cases(40, seed=8, widths=widths):
        for start in (0.0, 1000.0, 480.0):
            for backlash in (0.0, 15.0):
                lens = Lens(curve, 0.0, start=start)
                outcome = run(make_search('coarse_fine', SearchConfig(backlash=backlash), start),
                              lens)
                assert outcome.success and abs(outcome.position - peak) <= 1.0
                assert len(lens.moves) < sweep_frames(SearchConfig(backlash=backlash))
                if not backlash:
                    plain.append(len(lens.moves))
    # The target: a quarter of a sweep at the fine step (101 frames), median.
    assert np.median(plain) <= 0.25 * 101


def test_coarse_fine_samples_a_weak_noisy_peak_until_it_is_sure():
    frames = {}
    for noise in (0.0, 0.03):
        frames[noise] = []
        for seed in range(40):
            peak = 437.0 + 3.3 * seed
            lens = Lens(gaussian(peak, 40.0, 1.5), noise, seed=seed, start=0.0)
            outcome = run(make_search('coarse_fine', SearchConfig(), 0.0), lens)
            assert outcome.success and abs(outcome.position - peak) <= SearchConfig().fine_step
            frames[noise].append(len(lens.moves))
    # A peak 1.0 over a floor of 1.5 with 3% noise: more fine frames than the clean one,
    # within the budget (11 coarse + 5 fine + 20 more + final).
    assert np.median(frames[0.03]) > np.median(frames[0.0]) + 2
    assert max(frames[0.0] + frames[0.03]) < sweep_frames(SearchConfig())


@pytest.mark.parametrize('name', strategies.STRATEGIES)
@pytest.mark.parametrize('low, high, edge, direction', [
    (600.0, 1000.0, 600.0, 'below'), (0.0, 300.0, 300.0, 'above')])
def test_a_range_that_misses_the_peak_fails_naming_the_edge(name, low, high, edge, direction):
    # The peak at 420, 120-180 units outside the range: the curve still rises toward the
    # edge. No focus is claimed; the lens is left at the sharpest sample, by the edge.
    detected = 0
    for seed in range(20):
        start = (low + high) / 2
        lens = Lens(lorentzian(420.0, 80.0, 0.1), 0.02, seed=seed, start=start)
        outcome = run(make_search(name, SearchConfig(range_min=low, range_max=high), start),
                      lens)
        assert outcome.position == lens.position
        if outcome.error == strategies.PEAK_OUT_OF_RANGE:
            detected += 1
            assert not outcome.success
            assert f'the peak lies {direction} {edge:g}: widen the range' in outcome.message
            assert lens.moves[-1].phase == 'final'
            assert abs(outcome.position - edge) <= 15.0      # the sharpest sample
    # Measured: 19-20 of 20 for every strategy and side, but hill_climb above 300 (17):
    # the noise of dense samples near the edge can hide the rise (then it claims the edge).
    assert detected >= 17, detected


@pytest.mark.parametrize('name', strategies.STRATEGIES)
def test_a_peak_at_the_edge_itself_is_still_found(name):
    # The curve levels off at the edge: the peak is in the range, not beyond it. Noise can
    # make the last samples look still rising (a refusal, not a false focus).
    found = 0
    for seed in range(20):
        lens = Lens(gaussian(1000.0, 60.0, 0.1), 0.02, seed=seed, start=500.0)
        outcome = run(make_search(name, SearchConfig(), 500.0), lens)
        if outcome.success:
            found += 1
            assert outcome.position >= 985.0
        else:
            assert outcome.error in (strategies.PEAK_OUT_OF_RANGE, FLAT_CURVE)
    # Measured: 17-20 of 20; hill_climb from 500 mostly sees only the flat tail of this
    # peak (FLAT_CURVE), 7 of 20.
    assert found >= (3 if name == 'hill_climb' else 16), found


def test_peak_beyond_edge():
    beyond = strategies.peak_beyond_edge
    rising = [(x, 1.0 + x / 100.0 + (x / 100.0) ** 2) for x in range(0, 101, 10)]
    assert beyond(rising, 0.0, 100.0, 5.0) == 100.0
    assert beyond([(-x, y) for x, y in rising], -100.0, 0.0, 5.0) == -100.0
    peaked = [(x, 10.0 - (x - 100.0) ** 2 / 500.0) for x in range(0, 101, 10)]
    assert beyond(peaked, 0.0, 100.0, 5.0) is None          # the peak at the edge itself
    inside = [(x, 10.0 - (x - 50.0) ** 2 / 500.0) for x in range(0, 101, 10)]
    assert beyond(inside, 0.0, 100.0, 5.0) is None
    # The sharpest sample at the end of the samples but not at the range's end: a climb
    # that stopped short of the wall, not a peak beyond the range.
    assert beyond(rising, 0.0, 500.0, 5.0) is None


# -- flyby ------------------------------------------------------------------------------------

def test_stream_samples_places_frames_at_their_exposure_middle():
    # The motor moves 0 -> 100 between t = 1.0 and 2.0 and publishes every 0.25 s.
    states = [(t, min(100.0, max(0.0, 100.0 * (t - 1.0)))) for t in np.arange(0.5, 2.6, 0.25)]
    frames = [(0.2, 1.0), (1.0, 2.0), (1.49, 3.0), (2.45, 4.0), (3.0, 5.0)]
    samples = strategies.stream_samples(states[::-1], frames, exposure_offset=0.01)
    # 0.2 and 3.0 fall outside the states' span: nobody knows where the lens was then.
    assert [v for _, v in samples] == [2.0, 3.0, 4.0]
    assert samples[0][0] == pytest.approx(1.0)            # 1.01 s: 1 unit into the move
    assert samples[1][0] == pytest.approx(50.0)           # 1.50 s: halfway
    assert samples[2][0] == pytest.approx(100.0)          # at rest at the end
    assert strategies.stream_samples(states[:1], frames) == []


def test_flyby_ends_within_one_fine_step_with_a_few_frames_at_rest():
    config = SearchConfig()
    errors = []
    for index, (curve, peak, noise, _) in enumerate(curve_cases(60, seed=11, widths=WIDTHS)):
        start = (0.0, 1000.0, 480.0)[index % 3]
        lens = Lens(curve, noise, seed=index, start=start)
        search = make_search('flyby', config, start)
        outcome = run(search, lens)
        assert outcome.success, outcome.message
        assert outcome.position == lens.position
        errors.append(abs(outcome.position - peak))
        phases = [move.phase for move in lens.moves]
        # To the nearer end (a sweep at the pass's speed, none when the lens is there), the
        # pass to the other end, back towards the peak at the same speed when it is more
        # than coarse_step away, a short refine at rest, the final move.
        sweeps = [move for move in lens.moves if isinstance(move, strategies.Sweep)]
        near, far = (0.0, 1000.0) if start <= 500.0 else (1000.0, 0.0)
        passes = [sweep.target for sweep in sweeps[:2]]
        assert passes[:2] == ([far] if start == near else [near, far]) + (
            [] if start != near else passes[1:2])
        assert len(sweeps) <= 3 and all(move.phase == 'flyby' for move in sweeps)
        at_rest = [move for move in lens.moves if not isinstance(move, strategies.Sweep)]
        assert {move.phase for move in at_rest} <= {'fine', 'final'}
        assert phases[-1] == 'final'
        assert 3 <= phases.count('fine') <= 32
        assert 'fly-by scan' in outcome.message and 'stop-and-go' not in outcome.message
    assert max(errors) <= config.fine_step, max(errors)


def test_flyby_without_positions_while_moving_scans_stop_and_go():
    # A DC motor (position_measured false) cannot place a stream: no Sweep, a coarse scan.
    config = SearchConfig()
    for index, (curve, peak, noise, _) in enumerate(curve_cases(20, seed=12, widths=WIDTHS)):
        lens = Lens(curve, noise, seed=index, start=300.0)
        outcome = run(make_search('flyby', config, 300.0, positions_while_moving=False), lens)
        assert outcome.success, outcome.message
        assert not any(isinstance(move, strategies.Sweep) for move in lens.moves)
        assert {move.phase for move in lens.moves} == {'coarse', 'fine', 'final'}
        assert 'stop-and-go coarse scan' in outcome.message
        assert 'position_measured false' in outcome.message
        assert abs(outcome.position - peak) <= config.fine_step


def test_flyby_with_a_sparse_stream_falls_back_to_stop_and_go():
    class DroppingLens(Lens):       # frames every 150 units: more than coarse_step apart
        def sweep(self, step, spacing=150.0):
            return super().sweep(step, spacing)

    lens = DroppingLens(gaussian(612.0, 40.0, 0.1), 0.02)
    search = make_search('flyby', SearchConfig())
    outcome = run(search, lens)
    assert outcome.success and abs(outcome.position - 612.0) <= 10.0
    assert 'widest gap 166.667' in outcome.message and 'coarse' in [m.phase for m in lens.moves]
    assert search.fell_back


def test_flyby_with_a_stream_missing_an_end_falls_back_to_stop_and_go():
    class LateLens(Lens):           # the first 300 units of the pass were not streamed
        def sweep(self, step, spacing=17.0):
            return [(p, v) for p, v in super().sweep(step, spacing) if p > 300.0]

    lens = LateLens(gaussian(150.0, 40.0, 0.1), 0.02)
    outcome = run(make_search('flyby', SearchConfig()), lens)
    assert outcome.success and abs(outcome.position - 150.0) <= 10.0
    assert 'an end further' in outcome.message and 'coarse' in [m.phase for m in lens.moves]


def run_with_signals(search, lens, streamed, at_rest):
    """run(), each streamed frame with the signal figures ``streamed`` and each frame at
    rest with ``at_rest`` ((level, snr), as the sharpness node sends them)."""
    result = search.start()
    for _ in range(1000):
        if isinstance(result, strategies.Sweep):
            stream = lens.sweep(result)
            result = search.observe_stream(stream, [streamed] * len(stream))
        else:
            result = search.observe(*lens.move(result), signal=at_rest)
        if isinstance(result, Outcome):
            return result
    raise AssertionError('the search did not end')


def test_flyby_checks_at_rest_when_motion_blur_hides_the_texture():
    # The benchmark's speed table, 2000 units/s: on a low-texture noisy scene no streamed
    # frame had texture above min_signal_snr (motion blur), frames at rest had it, and the
    # fly-by ended NO_SIGNAL (5 of 144 trials; 1 at 1000 units/s). A lit stream without
    # texture is checked at rest where it was sharpest; with texture there, the stream is
    # the coarse curve after all.
    lens = Lens(gaussian(420.0, 40.0, 0.1), 0.02, start=0.0)
    search = make_search('flyby', SearchConfig())
    outcome = run_with_signals(search, lens, streamed=(120.0, 2.5), at_rest=(120.0, 9.0))
    assert outcome.success and abs(outcome.position - 420.0) <= 10.0, outcome.message
    assert 'its texture checked at rest' in outcome.message
    at_rest = [move for move in lens.moves if not isinstance(move, strategies.Sweep)]
    checks = at_rest[:flyby.TEXTURE_CHECK_FRAMES]
    assert all(abs(move.target - 420.0) <= 20.0 for move in checks)
    assert 'coarse' not in [move.phase for move in lens.moves]
    # Texture nowhere, at rest either: NO_SIGNAL after those few frames, naming them.
    lens = Lens(gaussian(420.0, 40.0, 0.1), 0.02, start=0.0)
    outcome = run_with_signals(make_search('flyby', SearchConfig()), lens,
                               streamed=(120.0, 2.5), at_rest=(120.0, 2.5))
    assert outcome.error == strategies.NO_SIGNAL, outcome.message
    assert 'motion blur lowers it' in outcome.message and '0 of 3 frames' in outcome.message
    assert sum(not isinstance(move, strategies.Sweep) for move in lens.moves) == 3
    # A dark stream: motion does not darken a frame, so NO_SIGNAL at once, no frame at rest.
    lens = Lens(gaussian(420.0, 40.0, 0.1), 0.02, start=0.0)
    outcome = run_with_signals(make_search('flyby', SearchConfig()), lens,
                               streamed=(3.0, 9.0), at_rest=(3.0, 9.0))
    assert outcome.error == strategies.NO_SIGNAL, outcome.message
    assert all(isinstance(move, strategies.Sweep) for move in lens.moves)


def test_flyby_protocol_and_streamed_samples():
    search = make_search('flyby', SearchConfig(), 900.0)
    first = search.start()
    # To the nearer end at the pass's speed: a Sweep, answered with observe_stream.
    assert first == strategies.Sweep(1000.0, use_frames=False)
    with pytest.raises(RuntimeError, match='observe_stream'):
        search.observe(1000.0, 0.1)
    lens = Lens(gaussian(333.0, 40.0, 0.1), start=900.0)
    approach = lens.sweep(first)
    sweep = search.observe_stream(approach)
    assert isinstance(sweep, strategies.Sweep) and sweep.target == 0.0 and sweep.use_frames
    with pytest.raises(RuntimeError, match='observe_stream'):
        search.observe(500.0, 1.0)
    with pytest.raises(ValueError):
        search.observe_stream([(500.0, float('nan'))])
    stream = lens.sweep(sweep)
    step = search.observe_stream(stream)
    assert search.samples == approach + stream
    # The peak is far from the pass's end: back at the pass's speed, then the refine.
    assert isinstance(step, strategies.Sweep) and 300.0 <= step.target <= 340.0
    assert not step.use_frames          # its frames are reported, not waited for
    step = search.observe_stream(lens.sweep(step))
    assert search.phase == step.phase == 'fine'
    with pytest.raises(RuntimeError, match='Sweep'):
        search.observe_stream([(1.0, 1.0)])
    while not isinstance(step, Outcome):
        step = search.observe(*lens.move(step))
    assert step.success and abs(step.position - 333.0) <= 10.0


@pytest.mark.parametrize('peak', [0.0, 1000.0])
def test_flyby_peak_at_a_range_end_or_beyond(peak):
    outcome = run(make_search('flyby', SearchConfig(), 500.0),
                  Lens(lorentzian(peak, 80.0, 0.1), 0.02, start=500.0))
    assert outcome.success and abs(outcome.position - peak) <= 10.0
    beyond = peak + (150.0 if peak else -150.0)
    lens = Lens(lorentzian(beyond, 80.0, 0.1), 0.02, start=500.0)
    outcome = run(make_search('flyby', SearchConfig(), 500.0), lens)
    assert not outcome.success and outcome.error == strategies.PEAK_OUT_OF_RANGE
    assert lens.position == peak


def test_flyby_reports_two_peaks():
    for start in (0.0, 1000.0):
        outcome = run(make_search('flyby', SearchConfig(), start),
                      Lens(two_peaks(300.0, 700.0, 0.6), 0.02, seed=3, start=start))
        assert outcome.success and outcome.warning == strategies.BIMODAL
        assert abs(outcome.position - 300.0) <= 10.0


class FloorLens(Lens):
    """A weak or absent peak read as the default measure reads a textureless frame: a
    floor (its TEXTURE_FLOOR) plus noise that is clipped there (F4 cancels the noise
    to ~0, never below) and grows with the signal (shot noise, flicker): most frames
    off the peak read exactly the floor, a few spike above it."""

    def __init__(self, height, peak, width, sigma, seed, start=0.0):
        super().__init__(lambda x: height * math.exp(-0.5 * ((x - peak) / width) ** 2),
                         0.0, seed, start)
        self.sigma = sigma

    def read(self, position):
        signal = self.curve(position)
        noisy = signal + self.sigma * (1.0 + signal) * self.rng.standard_normal()
        return 1.0 + max(0.0, noisy)

    def move(self, move):
        position, _ = super().move(move)
        return position, self.read(position)

    def sweep(self, step, spacing=33.0):
        stream = super().sweep(step, spacing)
        return [(p, self.read(p)) for p, _ in stream]


def test_flyby_never_claims_focus_on_a_flat_stream_at_the_floor_with_spikes():
    # The stream's scatter, taken by medians, is 0 when most readings sit at the floor:
    # the old rule saw an infinitely significant "peak" in a spike (2 of 120 flat scenes
    # in the benchmark at seed 1, 10 at seed 2, before it passed the stream's signal
    # figures). The frames at rest at the streamed peak must now stand out of the
    # stream's floor and noise.
    fooled = flat = 0
    for seed in range(40):
        lens = FloorLens(0.0, 500.0, 30.0, 0.15, seed, start=(0.0, 1000.0, 400.0)[seed % 3])
        search = make_search('flyby', SearchConfig(), lens.position)
        outcome = run(search, lens)
        # (A spike at a range end reads as a curve rising beyond it: no focus either.)
        assert not outcome.success, (seed, outcome.message)
        assert outcome.error in (FLAT_CURVE, strategies.PEAK_OUT_OF_RANGE), outcome.message
        flat += outcome.error == FLAT_CURVE
        config = SearchConfig()
        if peak_fitting.peak_contrast(v for _, v in search.stream) >= config.min_peak_contrast \
                and peak_fitting.peak_significance(search.stream) >= config.min_peak_significance:
            fooled += 1
    assert fooled >= 5, fooled          # the stream alone would have claimed these
    assert flat >= 30, flat


def test_flyby_and_coarse_fine_place_a_weak_peak_honestly():
    # A weak peak whose frames' noise grows with their signal: no claimed focus may lie
    # more than a depth of field off (where the peak stays above 90 %: 37 units here);
    # most searches find it. coarse_fine's one false focus in the benchmark (1.09 DoF)
    # trusted the floor's noise for its top; it now measures the top again.
    dof = 2.0 * 40.0 * math.sqrt(2.0 * math.log(1.0 / 0.9))
    for name in ('coarse_fine', 'flyby'):
        found = 0
        for seed in range(30):
            peak = 200.0 + 19.0 * seed
            lens = FloorLens(2.0, peak, 40.0, 0.12, seed, start=(0.0, 1000.0, 700.0)[seed % 3])
            search = make_search(name, SearchConfig(), lens.position)
            outcome = run(search, lens)
            if outcome.success:
                found += 1
                assert abs(outcome.position - peak) <= dof, (name, seed, outcome.position)
            else:
                assert outcome.error == FLAT_CURVE, outcome.message
        assert found >= 24, (name, found)


def test_coarse_fine_measures_a_weak_top_again_rather_than_trust_the_floors_noise():
    # The benchmark's one false focus (seed 1, low texture, high noise): the first reading
    # at each position as recorded there (x 1e4), the coarse tails at the measure's floor
    # (2.0), two low frames beside the true top (746.7). Trusting the tails' noise, the
    # fit went to 789.8, 1.23 depth of field (34.9) off. Readings taken again are the
    # noise-free curve.
    first = {0: 2.93, 100: 2.04, 200: 2.26, 300: 2.0, 400: 2.21, 500: 2.52, 600: 2.0,
             700: 3.31, 800: 4.18, 900: 2.8, 1000: 2.04, 764: 3.3, 774: 2.98, 784: 4.74,
             794: 4.63}

    def curve(x):
        return 2.0 + 2.7 * math.exp(-0.5 * ((x - 746.7) / 42.0) ** 2)

    class Recorded(Lens):
        def move(self, move):
            position, _ = super().move(move)
            near = [p for p in first if abs(p - position) < 0.5]
            return position, (first.pop(near[0]) if near else curve(position))

    lens = Recorded(curve, start=1000.0)
    search = make_search('coarse_fine', SearchConfig(), 1000.0)
    outcome = run(search, lens)
    assert outcome.success and abs(outcome.position - 746.7) <= 34.9, outcome.message
    positions = [round(p, 6) for p, _ in search.samples]
    assert len(positions) > len(set(positions))          # some position measured again


def test_rival_tops_measures_two_tops_within_the_noise_again():
    # The benchmark's false focus: the best fine sample at 784 and another top at 749,
    # past two low samples, within the noise of it; the fit saw only the 784 side.
    samples = [(700.0, 3.31), (800.0, 4.18), (900.0, 2.8), (600.0, 2.0), (749.0, 4.45),
               (764.0, 3.3), (774.0, 2.98), (784.0, 4.74), (794.0, 4.63)]
    fit = peak_fitting.peak_fit(samples, 0.01, 0.38, max_gap=15.0)
    assert fit.position > 780.0
    again = peak_fitting.rival_tops(samples, fit, 0.38, 100.0, 0.01)
    assert again == [749.0, 764.0, 774.0, 784.0]
    # Far less noise: 749 is not a rival top, nothing to measure again.
    assert peak_fitting.rival_tops(samples, fit, 0.05, 100.0, 0.01) == []
    # Measured again, each position's mean has its own noise: equal means stay rivals,
    # a settled top does not.
    settled = samples + [(749.0, 3.6), (749.0, 3.5), (784.0, 4.7), (784.0, 4.75)]
    fit = peak_fitting.peak_fit(settled, 0.01, 0.38, max_gap=15.0)
    assert 749.0 not in peak_fitting.rival_tops(settled, fit, 0.38, 100.0, 0.01)


@pytest.mark.parametrize('noise', [0.0, 0.02, 0.05])
def test_hill_climb_stops_on_a_flat_curve_long_before_its_move_bound(noise):
    # It used to walk wall to wall until climb_max_moves (199 moves on a noiseless flat
    # curve): no rise ever halved its step. Now a climb stops once it has made as many
    # moves as a crossing of the range without a new best; then its top is checked (at
    # most 3 rounds of 3 frames), the range looked over once at 2 climb steps (half a
    # crossing) and, when that look shows a top out of the noise, climbed from it once
    # more. Measured: 23-47 moves.
    config = SearchConfig()
    crossing = (config.range_max - config.range_min) / config.climb_step
    for seed in range(10):
        start = float((seed * 137) % 1000)
        lens = Lens(lambda x: 1.0, noise, seed=seed, start=start)
        outcome = run(make_search('hill_climb', config, start), lens)
        assert outcome.error == FLAT_CURVE
        assert len(lens.moves) <= 3 * crossing, len(lens.moves)


def test_significance_and_repeat_noise():
    flat = [(float(x), 1.0 + 0.01 * (-1) ** x) for x in range(0, 41)]
    assert peak_fitting.peak_significance(flat) < 4.0
    peak = flat[:20] + [(20.0, 1.2)] + flat[21:]
    assert peak_fitting.peak_significance(peak) > 8.0
    # Measured noise overrides the curve's scatter.
    assert peak_fitting.peak_significance(peak, noise=0.1) == pytest.approx(
        (1.2 - 0.99) / 0.1)
    sigma, dof = peak_fitting.repeat_noise([(0.0, 1.0), (0.0, 1.2), (5.0, 2.0), (5.0, 2.2),
                                            (9.0, 3.0)], 0.1)
    assert dof == 2 and sigma == pytest.approx(math.sqrt((0.02 + 0.02) / 2))
    assert peak_fitting.repeat_noise([(0.0, 1.0), (1.0, 1.0)], 0.1) == (0.0, 0)


def second_plane(bump):
    """A focus peak at 300 (half width 40) over a floor of 0.15, and a second plane's
    bump ``bump`` high at 550 on its flank: the simulator's two-planes scene, where the far
    plane reads 4 % over the valley beside it and lower than the near plane's flank
    100 units further in (``bump`` 0.03); with 0.05 the bump's far side reads 4 % over the
    flank there too (a real but minor local top)."""
    return lambda x: (0.15 + 1.0 / (1.0 + ((x - 300.0) / 40.0) ** 2)
                      + bump * math.exp(-0.5 * ((x - 550.0) / 30.0) ** 2))


@pytest.mark.parametrize('bump, start', [(0.03, 1000.0), (0.03, 800.0), (0.05, 800.0)])
def test_hill_climb_does_not_claim_focus_on_a_second_planes_bump(bump, start):
    # Climbing in from the far end it reached the bump first, saw it fall both ways and
    # claimed focus there, 250 units (7 depths of field in the benchmark) from the peak:
    # 3-22 of these 40 searches did (measured before the fix). Now a top must fall by a
    # fifth of its height both ways, and the climb goes on past a side that does not.
    config = SearchConfig()
    found = 0
    for seed in range(40):
        lens = Lens(second_plane(bump), 0.02, seed=seed, start=start)
        outcome = run(make_search('hill_climb', config, start), lens)
        if outcome.success:
            assert abs(outcome.position - 300.0) <= 20.0, (seed, outcome.message)
            found += 1
    # Measured: 40 of 40 find the peak (the climb from the bump, or a look over the range
    # after a start in the flat tail).
    assert found >= 36, found


def test_hill_climb_on_a_harder_bump_rarely_claims_it():
    # The 0.05 bump seen from the far end: its fall toward the peak, 2 climb steps out,
    # is 12 % of its height, near the 20 % bar in 2 % frame noise. Measured: 2 of 40 still
    # claim it (16 before). Kept here so a change that makes it worse shows.
    claims = sum(
        (outcome := run(make_search('hill_climb', SearchConfig(), 1000.0),
                        Lens(second_plane(0.05), 0.02, seed=seed, start=1000.0))).success
        and abs(outcome.position - 300.0) > 20.0 for seed in range(40))
    assert claims <= 3, claims


@pytest.mark.parametrize('start', [0.0, 100.0])
def test_hill_climb_does_not_claim_noise_in_a_flat_tail(start):
    # A narrow peak at 800 over a floor at 0.3 of its height, 15 % frame noise, the climb
    # starting 700-800 units away where the curve is flat: the noise's bumps read 30-40 %
    # contrast, over the 0.3 that passed for a peak without known noise, and it claimed
    # focus there in 32-36 of these 40 searches (measured before the fix). Now a top is
    # measured again against probes 2 climb steps either side and must stand out of the
    # noise of its repeated frames; else the range is looked over and climbed from its best.
    curve = gaussian(800.0, 30.0, 0.3)
    found = 0
    for seed in range(40):
        lens = Lens(curve, 0.15, seed=seed, start=start)
        outcome = run(make_search('hill_climb', SearchConfig(), start), lens)
        if outcome.success:
            assert abs(outcome.position - 800.0) <= 20.0, (seed, outcome.message)
            found += 1
        else:
            assert outcome.error == FLAT_CURVE, outcome.message
            assert 'no focus peak' in outcome.message
    # Measured: 40 of 40 found (30-32 before a shown top skipped the whole-curve rule).
    assert found >= 36, found


def test_an_unconfirmed_top_is_flat_with_the_reason():
    # Start on a noise bump far out in a tail with no peak in the range at all (a curve
    # that only rises beyond range_max, far away): no claim, and the message says why.
    curve = gaussian(5000.0, 30.0, 1.0)
    for seed in range(10):
        lens = Lens(curve, 0.15, seed=seed, start=500.0)
        outcome = run(make_search('hill_climb', SearchConfig(), 500.0), lens)
        assert outcome.error == FLAT_CURVE, outcome.message
        # Either the top against its probes or the whole curve against the noise.
        assert 'no focus peak' in outcome.message and 'noise sigmas' in outcome.message
        assert all(move.phase != 'final' for move in lens.moves)
