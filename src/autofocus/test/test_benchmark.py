"""The benchmark: a quick run writes the table (every strategy and baseline), CSV and PNG."""
import csv

from autofocus.tools import benchmark

from autofocus.core import lens_sim, strategies


def test_quick_benchmark_writes_every_output(tmp_path, capsys):
    assert benchmark.main(['--quick', '--out', str(tmp_path), '--seed', '3']) == 0
    for name in ('benchmark.csv', 'benchmark.md', 'focus_curves.png'):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / 'benchmark.csv')))
    names = {row['strategy'].split(' ')[0] for row in rows}
    assert names == set(strategies.STRATEGIES) | set(strategies.BASELINES)
    assert {row['lens'] for row in rows} == {'sim', 'real_stack', 'dslr_relative'}
    printed = capsys.readouterr().out
    for name in names:
        assert name in printed and name in (tmp_path / 'benchmark.md').read_text()
    assert (tmp_path / 'focus_curves.png').read_bytes()[:4] == b'\x89PNG'


def test_benchmark_is_deterministic():
    first = benchmark.sim_trials(['golden', 'webcam_score'], 4, seed=5)
    second = benchmark.sim_trials(['golden', 'webcam_score'], 4, seed=5)
    assert [(r.frames, r.error, r.time) for r in first] == [
        (r.frames, r.error, r.time) for r in second]


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


def test_default_trials_fill_every_grid_cell_and_the_realistic_unimodal_bucket():
    cells = [benchmark.grid_cell(index) for index in range(benchmark.DEFAULT_TRIALS)]
    counts = {cell: cells.count(cell) for cell in set(cells)}
    assert len(counts) == benchmark.GRID                     # every cell...
    assert len(set(counts.values())) == 1                    # ...equally often
    realistic_unimodal = sum(scene in benchmark.UNIMODAL and noise == 'realistic'
                             for scene, noise, _, _ in cells)
    assert realistic_unimodal >= 200
