"""The benchmark: a quick run writes the table (every strategy and baseline), CSV and PNG."""
import csv
import dataclasses
import math

import numpy as np
import pytest

from autofocus.tools import benchmark

from autofocus.core import lens_sim, strategies


def test_quick_benchmark_writes_every_output(tmp_path, capsys):
    assert benchmark.main(['--quick', '--out', str(tmp_path), '--seed', '3']) == 0
    for name in ('benchmark.csv', 'benchmark_trials.csv', 'benchmark.md', 'focus_curves.png'):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / 'benchmark.csv')))
    names = {row['strategy'].split(' ')[0] for row in rows}
    assert names == set(strategies.STRATEGIES) | set(strategies.BASELINES)
    # Scene classes apart; the flat scene is never folded into a success rate.
    assert {row['class'] for row in rows} == {'texture', 'low_texture', 'two_planes',
                                              'real_stack'}
    for t in benchmark.TOLERANCES:
        assert f'ok_{t:g}dof_%' in rows[0]
    trials = list(csv.DictReader(open(tmp_path / 'benchmark_trials.csv')))
    assert len(trials) == len(names) * (8 + 2)
    for trial in trials:
        if trial['scene'] != 'flat':
            assert float(trial['error_dof']) == pytest.approx(
                float(trial['error']) / float(trial['dof']))
            assert 0.0 < float(trial['sharpness_fraction']) <= 1.0 + 1e-9
    printed = capsys.readouterr().out
    text = (tmp_path / 'benchmark.md').read_text()
    for name in names:
        assert name in printed and name in text
    assert 'false_focus' in text and 'the source reports -49 mm' in text
    assert (tmp_path / 'focus_curves.png').read_bytes()[:4] == b'\x89PNG'


def test_depth_of_field_of_a_known_curve():
    # A Gaussian of sigma s stays above 90 % of its peak over 2 s sqrt(2 ln(1/0.9)).
    xs = np.arange(-100.0, 100.01, 0.5)
    peak, dof = benchmark.dof_of_curve(xs, np.exp(-0.5 * ((xs - 3.2) / 20.0) ** 2))
    assert peak == pytest.approx(3.2, abs=0.05)
    assert dof == pytest.approx(2 * 20.0 * np.sqrt(2 * np.log(1 / 0.9)), rel=1e-3)
    with pytest.raises(ValueError, match='end'):
        benchmark.dof_of_curve(xs, np.exp(-0.5 * (xs / 500.0) ** 2))


def test_simulated_truth_is_the_noise_free_peak_and_its_depth_of_field():
    optics = benchmark._Optics(160, 120, 1, benchmark._measure())
    offset, dof, best = optics.curve('texture')
    assert abs(offset) < 1.0 and 5.0 < dof < 30.0
    focus = 420.0
    assert optics.sharpness('texture', focus + offset, focus) == pytest.approx(best, rel=0.01)
    # Within half a depth of field of the peak the noise-free sharpness stays >= 90 %;
    # a unit beyond, on either side, it is below.
    for side in (-1.0, 1.0):
        inside = optics.sharpness('texture', focus + offset + side * (dof / 2 - 1), focus)
        outside = optics.sharpness('texture', focus + offset + side * (dof / 2 + 1), focus)
        assert inside / best >= 0.9 > outside / best


def test_real_stack_truth_comes_from_its_own_curve():
    stack = lens_sim.FocusStack.from_directory(benchmark.STACK_DIR, benchmark.STACK_PATTERN)
    truth, dof, best, readings = benchmark.stack_truth(
        stack, benchmark._measure(roi=(0.0, 0.0, 1.0, 1.0), downsample=1))
    assert len(readings) == 131 and best == readings.max()
    # The replayed copies' curve peaks between its two best frames (-45 and -49), not at
    # the source's -49; its top is broad.
    assert -49.0 < truth < -45.0
    assert 5.0 < dof < 30.0


def test_real_stack_rows_use_the_default_setting_and_the_default_strategy_is_cheap():
    # The real stack as the sharpness node sees it by default (its default ROI at its
    # default downsample, the default measure); the truth is the same ROI at full
    # resolution. The default strategy ends within the tolerance from every start, with
    # fewer frames than a sweep; no focus is claimed anywhere else.
    results = benchmark.stack_trials(['coarse_fine', 'sweep'], 8, seed=3)
    ours = [r for r in results if r.strategy == 'coarse_fine']
    sweeps = [r for r in results if r.strategy == 'sweep']
    assert len(ours) == len(sweeps) == 8
    assert all(r.reported_success and r.error <= benchmark.STACK_TOLERANCE_MM for r in ours), [
        (r.start, r.error, r.error_code) for r in ours]
    assert np.median([r.frames for r in ours]) < np.median([r.frames for r in sweeps])
    checks = dict(benchmark.stack_targets(results + [
        dataclasses.replace(ours[0], reported_success=True, error_dof=2.0)]))
    # A claimed focus 2 DoF off is counted as a false focus, and fails the target.
    assert any('1 false focus' in text and not ok for text, ok in checks.items())


def test_hill_climb_gets_its_own_false_focus_verdict():
    results = benchmark.stack_trials(['coarse_fine', 'hill_climb'], 4, seed=3)
    climbs = [r for r in results if r.strategy == 'hill_climb']
    checks = dict(benchmark.stack_targets(results))
    line, = [text for text in checks if text.startswith('hill_climb:')]
    assert '0 false focus' in line and checks[line], line
    # A claim 2 DoF off counts against hill_climb, not the default strategy.
    checks = dict(benchmark.stack_targets(results + [
        dataclasses.replace(climbs[0], reported_success=True, error_dof=2.0)]))
    line, = [text for text in checks if text.startswith('hill_climb:')]
    assert '1 false focus' in line and not checks[line], line
    default, = [text for text in checks if text.startswith('coarse_fine: ')
                and 'false focus' in text]
    assert checks[default], default


def test_benchmark_is_deterministic():
    first = benchmark.sim_trials(['golden', 'webcam_score'], 4, seed=5)
    second = benchmark.sim_trials(['golden', 'webcam_score'], 4, seed=5)
    assert [(r.frames, r.error, r.time) for r in first] == [
        (r.frames, r.error, r.time) for r in second]
    # Split over worker processes: the same trials, in the same order.
    split = benchmark.sim_trials(['golden', 'webcam_score'], 4, seed=5, jobs=2)
    assert [(r.scene, r.frames, r.error, r.time) for r in split] == [
        (r.scene, r.frames, r.error, r.time) for r in first]


class _Recorder(strategies.Search):
    """Asks for one move and a wait, then ends; records nothing else."""

    name = 'recorder'

    def _steps(self):
        yield strategies.Move(100.0, phase='sweep')
        yield strategies.Move(0.0, relative=True, phase='wait')
        return strategies.Outcome(True, 100.0, 1.0)


def test_closed_loop_clock_counts_move_settle_and_latency():
    rig = benchmark.Rig(motor_speed=100.0, settle_time=0.05, frame_period=0.1, exposure=0.01,
                        latency=0.02)
    exposures = []

    def render(a, b):
        exposures.append((a, b))
        return None

    search = _Recorder(strategies.SearchConfig(), 0.0)
    outcome, frames, moves, elapsed, _ = benchmark.run_closed_loop(
        search, render, lambda frame: 1.0, lens_sim.Gear(0.0), rig, 0.0, 1000.0)
    # Move 1 s, settle 0.05 -> the frame exposed at 1.1 arrives at 1.13; the wait frame is
    # exposed after 1.13 + 0.05 -> 1.2, arrives 1.23.
    assert outcome.success and frames == 2 and moves == 1
    assert abs(elapsed - 1.23) < 1e-9
    assert exposures == [(100.0, 100.0), (100.0, 100.0)]
    # A streaming search takes the next frame to arrive, mid-move: motion blurred.
    search = _Recorder(strategies.SearchConfig(), 0.0)
    search.streaming = True
    exposures.clear()
    benchmark.run_closed_loop(search, render, lambda frame: 1.0, lens_sim.Gear(0.0), rig,
                              0.0, 1000.0)
    assert exposures[0][0] < exposures[0][1] < 100.0


def test_default_trials_fill_every_grid_cell_equally():
    cells = [benchmark.grid_cell(index) for index in range(benchmark.DEFAULT_TRIALS)]
    counts = {cell: cells.count(cell) for cell in set(cells)}
    assert len(counts) == benchmark.GRID                     # every cell...
    assert len(set(counts.values())) == 1                    # ...equally often
    per_class = sum(scene == 'texture' for scene, _, _, _ in cells)
    assert per_class >= 100


def test_flyby_in_the_closed_loop_places_each_frame_where_the_lens_was():
    # A linear "measure" of the lens position itself: the streamed samples must read back
    # the positions they were given (interpolated motor states at mid-exposure).
    rig = benchmark.Rig(motor_speed=500.0, flyby_speed=1000.0)
    gear = lens_sim.Gear(0.0, motor=300.0)
    search = strategies.make_search('flyby', strategies.SearchConfig(), 300.0)
    outcome, frames, moves, elapsed, visited = benchmark.run_closed_loop(
        search, lambda a, b: np.array([[(a + b) / 2.0]]),
        lambda frame: 1000.0 - abs(float(frame[0, 0]) - 612.0), gear, rig, 0.0, 1000.0)
    stream = [(p, v) for p, v in search.samples if 0.0 < p < 1000.0][:25]
    assert len(stream) >= 20
    for position, value in stream:
        assert 1000.0 - abs(position - 612.0) == pytest.approx(value, abs=1e-6)
    assert outcome.success and abs(outcome.position - 612.0) <= 10.0
    # One pass at 1000 units/s over 1000 units, to its start at the same speed, the
    # refine at rest.
    assert 1.0 + 300.0 / rig.flyby_speed < elapsed < 5.0


def test_flyby_in_the_closed_loop_gets_each_streamed_frames_signal_figures():
    # As the focus server passes them on: a textureless scene ends NO_SIGNAL (it used to
    # reach the flat rule, which flicker fooled now and then), after the scan at rest
    # that a lit stream without texture gets (motion blur lowers a streamed frame's).
    rig = benchmark.Rig()
    seen = []

    class Recording(strategies.FlybySearch):
        def observe_stream(self, samples, signals=None):
            seen.append(signals)
            return super().observe_stream(samples, signals)

    measure = benchmark._measure()
    sim = lens_sim.LensSimulator(benchmark._lens_config(160, 120, 3, 'flat',
                                                         **benchmark.NOISE['high']))
    rng = np.random.default_rng(5)

    def render(a, b):
        return sim.render_gray(a, None if abs(b - a) < 1e-9 else b, rng=rng)

    outcome, *_ = benchmark.run_closed_loop(
        Recording(strategies.SearchConfig(), 300.0), render, measure,
        lens_sim.Gear(0.0, motor=300.0), rig, 0.0, 1000.0)
    assert seen and all(signals and all(s is not None for s in signals) for signals in seen)
    assert not outcome.success and outcome.error == strategies.NO_SIGNAL, outcome.message


def test_a_sweep_whose_frames_are_not_used_does_not_wait_for_their_latency():
    # As the focus server runs it: a Sweep the search uses ends when its last frame has
    # arrived (exposure + latency after the motor); one it does not use (the way to the
    # pass's start or back) ends with the motor, reporting the frames arrived by then.
    rig = benchmark.Rig(motor_speed=500.0, flyby_speed=1000.0)

    def sweep(use_frames):
        gear = lens_sim.Gear(0.0, motor=0.0)
        return benchmark._fly_by(
            strategies.Sweep(500.0, use_frames=use_frames), 0.0, 0.0, lambda t: 0.0, gear,
            rig, 0.0, 1000.0, lambda a, b: np.array([[(a + b) / 2.0]]),
            lambda frame: float(frame[0, 0]))

    used, unused = sweep(True), sweep(False)
    move_end = 500.0 / rig.flyby_speed
    assert used[0] >= move_end + rig.exposure + rig.latency - 1e-9
    assert unused[0] == pytest.approx(move_end)
    used_samples, unused_samples = used[-1][0], unused[-1][0]
    assert len(unused_samples) < len(used_samples)
    assert unused_samples == used_samples[:len(unused_samples)]
    assert max(p for p, _ in unused_samples) <= 500.0 - 1000.0 * (rig.latency + rig.exposure) \
        + 1000.0 * rig.frame_period


def test_flyby_rows_compare_with_coarse_fine_at_the_same_move_speed():
    rows = benchmark.flyby_rows(4, 2)
    assert len(rows) == 2 * len(benchmark.FLYBY_SPEEDS)
    for stop, fly in zip(rows[::2], rows[1::2]):
        assert (stop['strategy'], fly['strategy']) == ('coarse_fine', 'flyby')
        assert stop['move_speed'] == fly['move_speed'] and stop['time_vs_coarse_fine'] == 1.0
        assert fly['time_vs_coarse_fine'] == pytest.approx(fly['time_med_s']
                                                           / stop['time_med_s'])


def test_the_full_range_bound_takes_the_shorter_order_and_one_frame_at_rest():
    rig = benchmark.Rig()
    rest = rig.settle_time + rig.exposure + rig.latency

    class Trial:
        start, truth = 300.0, 800.0

    # Down to 0, across to 1000, back to 800: 1500 units; up first: 700 + 1000 + 800.
    assert benchmark.full_range_bound(Trial, 1000.0, rig) == pytest.approx(1.5 + rest)
    Trial.truth = 100.0     # now up first is shorter: 700 + 1000 + 100
    assert benchmark.full_range_bound(Trial, 500.0, rig) == pytest.approx(3.6 + rest)
    # A refine of 3 frames at rest: two more fine steps of travel, and two more frames
    # that move on once exposed (settle + exposure, no latency).
    fine = strategies.SearchConfig().fine_step
    assert benchmark.full_range_bound(Trial, 500.0, rig, refine_frames=3) == pytest.approx(
        3.6 + rest + 2 * fine / 500.0 + 2 * (rig.settle_time + rig.exposure))
    rows = benchmark.flyby_rows(4, 2)
    for fly in rows[1::2]:
        assert 0.0 < fly['bound_vs_coarse_fine'] < fly['bound_refine_vs_coarse_fine'] \
            < fly['time_vs_coarse_fine']
    assert all(math.isnan(stop['bound_vs_coarse_fine']) for stop in rows[::2])


def test_flyby_speed_targets_judge_only_equal_speeds_on_time_and_success():
    def row(strategy, move, sweep, time, ok):
        row = {'strategy': strategy, 'move_speed': move, 'flyby_speed': sweep,
               'time_med_s': time}
        row.update({f'ok_{t:g}dof_%': ok for t in benchmark.TOLERANCES})
        return row

    rows = [row('coarse_fine', 500.0, float('nan'), 4.0, 99.0),
            row('flyby', 500.0, 1000.0, 1.0, 99.0),        # faster sweeps: not judged here
            row('coarse_fine', 1000.0, float('nan'), 4.0, 99.0),
            row('flyby', 1000.0, 1000.0, 2.4, 99.0),       # 0.6x: misses "half"
            row('coarse_fine', 2000.0, float('nan'), 4.0, 99.0),
            row('flyby', 2000.0, 2000.0, 1.6, 98.0)]       # 0.4x but less success
    checks = benchmark.flyby_speed_targets(rows)
    assert [text.split(':')[0] for text, _ in checks] == ['equal speed 1000/1000',
                                                         'equal speed 2000/2000']
    assert [holds for _, holds in checks] == [False, False]
    assert '0.60x' in checks[0][0] and 'at least equal at: none' in checks[1][0]
    rows[-1] = row('flyby', 2000.0, 2000.0, 1.6, 99.0)
    assert benchmark.flyby_speed_targets(rows)[1][1]
