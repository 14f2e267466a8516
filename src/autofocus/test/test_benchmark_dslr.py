"""The benchmark's DSLR row: hill_climb on a relative-only drive with an estimated position."""
import numpy as np

from autofocus.tools import benchmark


def test_step_drive_moves_in_whole_noisy_steps_and_reports_only_the_estimate():
    drive = benchmark.StepDrive(500.0, np.random.default_rng(0), units_per_step=10.0,
                                step_error=0.05)
    lens = drive.drive(534.0)  # 3.4 steps: 3 drive calls
    assert drive.motor == 534.0  # what the search is told (the estimate)
    assert 525.0 < lens < 535.0 and lens != 530.0  # where the lens is: 3 steps of ~10
    exact = benchmark.StepDrive(0.0, np.random.default_rng(0), 10.0, step_error=0.0)
    assert exact.drive(-26.0) == -30.0


def test_dslr_row_runs_hill_climb_on_the_grid_and_charges_each_drive_call():
    results = benchmark.dslr_trials(8, seed=3)
    assert {(r.strategy, r.lens) for r in results} == {('hill_climb', 'dslr_relative')}
    assert {r.scene for r in results} == set(benchmark.SCENES)
    rows = benchmark.summarise(results)
    assert {row['class'] for row in rows} == set(benchmark.SCENES) - {'flat'}
    assert sum(row['trials'] for row in rows) == sum(r.scene != 'flat' for r in results)
    flat, = benchmark.flat_rows(results)
    assert flat['false_focus'] == 0
    # The drive's pace (one call of 10 units per 0.2 s) is charged for every unit moved.
    speed = benchmark.DSLR_UNITS_PER_STEP / benchmark.DSLR_STEP_TIME
    for r in results:
        path = [r.start] + [position for position, _ in r.visited]
        distance = sum(abs(b - a) for a, b in zip(path, path[1:]))
        assert distance > 0 and r.time >= distance / speed
