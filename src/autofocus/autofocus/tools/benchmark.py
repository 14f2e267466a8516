"""Benchmark every focus strategy (and the two seed baselines) in a time-stepped closed loop.

Usage: ``python -m autofocus.tools.benchmark [--trials N] [--seed S] [--out DIR] [--quick]``
(``scripts/benchmark.sh`` or the ``focus_benchmark`` entry point run the same).

Each trial is one focus search against a simulated rig on a simulated clock:

- the motor moves at ``motor_speed`` units/s; gear play (:class:`lens_sim.Gear`) puts the
  lens up to ``backlash / 2`` away from the motor's reported position;
- the camera exposes a frame every ``frame_period`` s for ``exposure`` s; a frame arrives
  ``latency`` s after its exposure ends; a frame exposed while the lens moves is motion
  blurred (the lens positions at the start and end of its exposure);
- the strategies of :mod:`strategies` run the focus server's protocol: after a move, the
  first frame exposed ``settle_time`` after the motor came to rest counts (one frame per
  position); a streaming baseline takes every frame as it arrives instead.

Trials form a grid of scenes (texture, low_texture, two_planes, flat) x noise levels x start
positions x gear backlash (0 or ``BACKLASH`` units, with ``SearchConfig.backlash`` set to 1.5x
the play when it is on): ``GRID`` = 96 cells, visited in turn, the lens's focus drawn at random
per trial; every strategy sees the same trials. The default, ``DEFAULT_TRIALS`` = 13 passes
over the grid, puts 208 trials in each scene x noise bucket, so the realistic-noise unimodal
success rate rests on 208 trials. A second lens replays the real focus stack
``focus-sweep-fpd-xp005`` (best focus Z = -49 mm). Success: the lens ends within
``TOLERANCE`` of the true (global) peak and the search said success; on the flat scene,
success is reporting failure (no false focus).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import pathlib
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

from autofocus.core import lens_sim, measures, strategies

TOLERANCE = 10.0                      # motor units: success radius around the true peak
STACK_TOLERANCE = 3.0                 # mm, real stack
BACKLASH = 10.0                       # gear play of the backlash trials (motor units)
SCENES = ('texture', 'low_texture', 'two_planes', 'flat')
UNIMODAL = ('texture', 'low_texture')
NOISE = {                              # name: LensConfig realism fields
    'low': dict(noise_sigma=1.0, photon_gain=0.0, flicker=0.0),
    # Shot noise sigma 2 grey levels at mid-grey (a webcam: ~8 ke- full well / 255).
    'realistic': dict(noise_sigma=1.5, photon_gain=32.0, flicker=0.01),
    'high': dict(noise_sigma=3.0, photon_gain=8.0, flicker=0.03),
}
STARTS = (0.0, 300.0, 700.0, 1000.0)
GRID = len(SCENES) * len(NOISE) * len(STARTS) * 2          # x backlash off / on
DEFAULT_TRIALS = 13 * GRID                                 # 1248: 208 per scene x noise
# 160x120 frames stand for a 2x-binned 320x240 camera: half the default 640x480 blur in px.
BLUR_PER_UNIT = 0.025
DOWNSAMPLE = 2                        # as the sharpness node's configured default
STACK_DIR = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'data' / 'focus-sweep-fpd-xp005'
STACK_FOCUS = -49.0
DEFAULT_OUT = 'benchmark_results'
# The DSLR row (relative-only drive, estimated position): config/lens.yaml's units per
# drive call and settle time, and a 5 % per-step spread of the real movement.
DSLR_UNITS_PER_STEP = 10.0
DSLR_STEP_TIME = 0.2
DSLR_STEP_ERROR = 0.05


@dataclass
class Rig:
    """Timing of the simulated closed loop (seconds, motor units per second)."""

    motor_speed: float = 500.0
    settle_time: float = 0.05
    frame_period: float = 1.0 / 30.0
    exposure: float = 0.01
    latency: float = 0.06


@dataclass
class TrialResult:
    strategy: str
    lens: str
    scene: str
    noise: str
    start: float
    backlash: float
    truth: float
    success: bool
    reported_success: bool
    warning: str
    frames: int
    moves: int
    time: float
    error: float
    visited: list


def all_strategies() -> list[str]:
    return list(strategies.STRATEGIES) + list(strategies.BASELINES)


def make(name: str, config: strategies.SearchConfig, start: float) -> strategies.Search:
    if name in strategies.BASELINES:
        return strategies.make_baseline(name, config, start)
    return strategies.make_search(name, config, start)


def run_closed_loop(search: strategies.Search, render, measure, gear: lens_sim.Gear,
                    rig: Rig, range_min: float, range_max: float, max_frames: int = 2000):
    """Drive ``search`` on the simulated clock. ``render(lens_a, lens_b)`` gives a grey frame
    exposed while the lens went from a to b; ``measure(frame)`` its sharpness.

    Returns (outcome, frames, moves, time, visited positions).
    """
    streaming = getattr(search, 'streaming', False)
    now = 0.0
    motor = gear.motor
    moves = 0
    visited = []
    move_start, move_end, lens_from, lens_to = 0.0, 0.0, gear.lens, gear.lens

    def lens_at(t):
        if t >= move_end or move_end <= move_start:
            return lens_to
        if t <= move_start:
            return lens_from
        return lens_from + (lens_to - lens_from) * (t - move_start) / (move_end - move_start)

    step = search.start()
    frames = 0
    while True:
        target = motor + step.target if step.relative else step.target
        target = min(max(target, range_min), range_max)
        if abs(target - motor) > 1e-9:
            moves += 1
            lens_from = lens_at(now)
            move_start = now
            move_end = now + abs(target - motor) / rig.motor_speed
            lens_to = gear.drive(target)
            motor = target
        if streaming:               # the next frame to arrive, whatever it shows
            earliest = now - rig.exposure - rig.latency
        else:                       # exposed after rest + settle
            earliest = max(now, move_end) + rig.settle_time
        k = max(0, math.ceil(earliest / rig.frame_period - 1e-9))
        exposed = k * rig.frame_period
        if streaming and exposed + rig.exposure + rig.latency <= now:
            k += 1
            exposed = k * rig.frame_period
        now = exposed + rig.exposure + rig.latency
        value = measure(render(lens_at(exposed), lens_at(exposed + rig.exposure)))
        frames += 1
        visited.append((motor, value))
        step = search.observe(motor, value)
        if isinstance(step, strategies.Outcome) or frames >= max_frames:
            break
    if not isinstance(step, strategies.Outcome):
        step = strategies.Outcome(False, motor, 0.0, error='frame_budget')
    return step, frames, moves, now, visited


class _SimLens:
    """Renderers for the grid, one simulator per (scene, noise), renders cached across trials."""

    def __init__(self, width, height, seed):
        self.width, self.height, self.seed = width, height, seed
        self._sims = {}

    def get(self, scene, noise, focus):
        key = (scene, noise)
        if key not in self._sims:
            config = lens_sim.LensConfig(width=self.width, height=self.height, scene=scene,
                                         seed=self.seed, psf_gaussian=0.2,
                                         blur_per_unit=BLUR_PER_UNIT, **NOISE[noise])
            self._sims[key] = lens_sim.LensSimulator(config)
        sim = self._sims[key]
        # The cache is keyed by blur radius, so moving the focus keeps it valid.
        sim.config = dataclasses.replace(sim.config, focus_position=focus)
        return sim


def _measure(roi=measures.DEFAULT_ROI, downsample=DOWNSAMPLE, name=measures.DEFAULT_MEASURE):
    def measure(gray):
        return measures.compute(gray, [name], roi, downsample)[name]
    return measure


def grid_cell(index):
    """(scene, noise, start, backlash) of simulated trial ``index``: the grid's cells in turn,
    scenes fastest, then noise levels, starts and backlash off / on (``GRID`` cells)."""
    scene = SCENES[index % len(SCENES)]
    noise = list(NOISE)[(index // len(SCENES)) % len(NOISE)]
    start = STARTS[(index // (len(SCENES) * len(NOISE))) % len(STARTS)]
    play = BACKLASH * ((index // (len(SCENES) * len(NOISE) * len(STARTS))) % 2)
    return scene, noise, start, play


def sim_trials(names, count, seed, width=160, height=120):
    """Run ``count`` grid trials per strategy on the simulated lens; list of TrialResult."""
    lenses = _SimLens(width, height, seed)
    measure = _measure()
    rig = Rig()
    results = []
    for index in range(count):
        scene, noise, start, play = grid_cell(index)
        rng = np.random.default_rng([seed, index])
        focus = float(rng.uniform(150.0, 600.0 if scene == 'two_planes' else 850.0))
        sim = lenses.get(scene, noise, focus)
        config = strategies.SearchConfig(backlash=1.5 * play)
        for name in names:
            gear = lens_sim.Gear(play, motor=start)
            frame_rng = np.random.default_rng([seed, index, 7])

            def render(a, b, sim=sim, frame_rng=frame_rng):
                return sim.render_gray(a, None if abs(b - a) < 1e-9 else b, rng=frame_rng)

            outcome, frames, moves, elapsed, visited = run_closed_loop(
                make(name, config, start), render, measure, gear, rig,
                config.range_min, config.range_max)
            error = abs(gear.lens - focus)
            if scene == 'flat':
                success = not outcome.success
            else:
                success = outcome.success and error <= TOLERANCE
            results.append(TrialResult(name, 'sim', scene, noise, start, play, focus, success,
                                       outcome.success, outcome.warning, frames, moves,
                                       elapsed, error, visited))
    return results


class StepDrive:
    """A DSLR's focus drive (libgphoto2 manualfocusdrive) in place of a Gear: moves are whole
    drive calls of ``units_per_step``, each really moving the lens that much times a random
    scale (steps are not exactly repeatable), and nothing reports where the lens is: the
    search sees only the estimate (the commanded position), as the lens actuator reports it
    with position_measured false."""

    def __init__(self, motor: float, rng, units_per_step: float = DSLR_UNITS_PER_STEP,
                 step_error: float = DSLR_STEP_ERROR):
        self.motor = self.lens = float(motor)
        self._rng, self.units_per_step, self.step_error = rng, units_per_step, step_error

    def drive(self, motor: float) -> float:
        steps = round((motor - self.motor) / self.units_per_step)
        for _ in range(abs(steps)):
            scale = 1.0 + self.step_error * float(self._rng.standard_normal())
            self.lens += math.copysign(self.units_per_step * scale, steps)
        self.motor = float(motor)
        return self.lens


def dslr_trials(count, seed, width=160, height=120, name='hill_climb'):
    """The DSLR row: ``name`` (the DSLR's default strategy) on a relative-only StepDrive with
    an estimated position, ``DSLR_STEP_TIME`` s per drive call (the settle time between
    calls), over the same grid of scenes and starts (no gear play: the drive has none to
    model)."""
    lenses = _SimLens(width, height, seed)
    measure = _measure()
    rig = Rig(motor_speed=DSLR_UNITS_PER_STEP / DSLR_STEP_TIME, settle_time=0.0)
    config = strategies.SearchConfig()
    results = []
    for index in range(count):
        scene, noise, start, _ = grid_cell(index)
        rng = np.random.default_rng([seed, index])
        focus = float(rng.uniform(150.0, 600.0 if scene == 'two_planes' else 850.0))
        sim = lenses.get(scene, noise, focus)
        drive = StepDrive(start, np.random.default_rng([seed, index, 13]))
        frame_rng = np.random.default_rng([seed, index, 7])

        def render(a, b, sim=sim, frame_rng=frame_rng):
            return sim.render_gray(a, None if abs(b - a) < 1e-9 else b, rng=frame_rng)

        outcome, frames, moves, elapsed, visited = run_closed_loop(
            make(name, config, start), render, measure, drive, rig,
            config.range_min, config.range_max)
        error = abs(drive.lens - focus)
        success = not outcome.success if scene == 'flat' else \
            outcome.success and error <= TOLERANCE
        results.append(TrialResult(name, 'dslr_relative', scene, noise, start, 0.0, focus,
                                   success, outcome.success, outcome.warning, frames, moves,
                                   elapsed, error, visited))
    return results


def stack_config():
    """Search steps for the real stack (Z -110..20 mm): the defaults scaled by 0.13."""
    return strategies.SearchConfig(range_min=-110.0, range_max=20.0, sweep_step=3.25,
                                   coarse_step=13.0, fine_step=1.3, climb_step=6.5,
                                   climb_min_step=0.65)


def stack_trials(names, count, seed, directory=STACK_DIR):
    """Trials on the real focus stack (starts spread over the range); [] without the data."""
    if not pathlib.Path(directory).is_dir():
        return []
    stack = lens_sim.FocusStack.from_directory(directory, noise_sigma=1.0, flicker=0.01,
                                               seed=seed)
    measure = _measure(roi=(0.0, 0.0, 1.0, 1.0), downsample=1)
    rig = Rig(motor_speed=20.0)
    config = stack_config()
    results = []
    for index in range(count):
        start = float(np.random.default_rng([seed, 1000 + index]).uniform(-110.0, 20.0))
        for name in names:
            gear = lens_sim.Gear(0.0, motor=start)
            frame_rng = np.random.default_rng([seed, index, 11])

            def render(a, b, frame_rng=frame_rng):
                return stack.render_gray(a, None if abs(b - a) < 1e-9 else b, rng=frame_rng)

            outcome, frames, moves, elapsed, visited = run_closed_loop(
                make(name, config, start), render, measure, gear, rig,
                config.range_min, config.range_max)
            error = abs(gear.lens - STACK_FOCUS)
            results.append(TrialResult(
                name, 'real_stack', 'xp005', 'jpeg', start, 0.0, STACK_FOCUS,
                outcome.success and error <= STACK_TOLERANCE, outcome.success, outcome.warning,
                frames, moves, elapsed, error, visited))
    return results


def _pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float('nan')


def summarise(results):
    """One row per (strategy, lens): the table."""
    rows = []
    keys = []
    for r in results:
        if (r.strategy, r.lens) not in keys:
            keys.append((r.strategy, r.lens))
    for name, lens in keys:
        group = [r for r in results if r.strategy == name and r.lens == lens]
        uni = [r for r in group if r.scene in UNIMODAL or r.lens == 'real_stack']
        uni_real = [r for r in group if r.scene in UNIMODAL and r.noise == 'realistic']
        flat = [r for r in group if r.scene == 'flat']
        two = [r for r in group if r.scene == 'two_planes']
        rows.append({
            'strategy': name + ('' if name in strategies.STRATEGIES else ' (baseline)'),
            'lens': lens,
            'trials': len(group),
            'success_%': 100.0 * np.mean([r.success for r in group]),
            'unimodal_%': 100.0 * np.mean([r.success for r in uni]) if uni else float('nan'),
            'unimodal_realistic_%': (100.0 * np.mean([r.success for r in uni_real])
                                     if uni_real else float('nan')),
            'two_planes_%': 100.0 * np.mean([r.success for r in two]) if two else float('nan'),
            'false_focus_flat': sum(r.reported_success for r in flat) if flat else 0,
            'frames_med': _pct([r.frames for r in group], 50),
            'frames_p95': _pct([r.frames for r in group], 95),
            'moves_med': _pct([r.moves for r in group], 50),
            'time_med_s': _pct([r.time for r in group], 50),
            'time_p95_s': _pct([r.time for r in group], 95),
            'error_med': _pct([r.error for r in uni], 50) if uni else float('nan'),
            'error_p95': _pct([r.error for r in uni], 95) if uni else float('nan'),
        })
    return rows


def _fmt(value):
    if isinstance(value, float):
        if math.isnan(value):
            return 'n/a'
        return f'{value:.1f}' if abs(value) < 1000 else f'{value:.0f}'
    return str(value)


def markdown(rows):
    header = list(rows[0])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_fmt(row[h]) for h in header) + ' |' for row in rows]
    return '\n'.join(lines)


def check_targets(rows):
    """The issue's targets for the default strategy; list of (text, holds)."""
    sim = {row['strategy'].split(' ')[0]: row for row in rows if row['lens'] == 'sim'}
    default = sim.get(strategies.DEFAULT_STRATEGY)
    if default is None:
        return []
    full_sweep = (1000.0 / strategies.SearchConfig().fine_step) + 1
    checks = [(f'{strategies.DEFAULT_STRATEGY}: unimodal success at realistic noise '
               f'{default["unimodal_realistic_%"]:.1f}% >= 99%',
               default['unimodal_realistic_%'] >= 99.0),
              (f'{strategies.DEFAULT_STRATEGY}: median frames {default["frames_med"]:.0f} <= '
               f'{full_sweep / 4:.1f} (a quarter of a {full_sweep:.0f}-frame sweep at the fine '
               f'step)', default['frames_med'] <= full_sweep / 4)]
    for base in strategies.BASELINES:
        if base in sim:
            b = sim[base]
            checks.append((f'beats {base}: success {default["success_%"]:.1f}% > '
                           f'{b["success_%"]:.1f}% and median frames {default["frames_med"]:.0f}'
                           f' < {b["frames_med"]:.0f}',
                           default['success_%'] > b['success_%']
                           and default['frames_med'] < b['frames_med']))
    return checks


def plot_examples(path, names, seed, width=160, height=120):
    """Focus curve of one texture scene (realistic noise) with each strategy's visited points."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    focus, start = 430.0, 1000.0
    sim = _SimLens(width, height, seed).get('texture', 'realistic', focus)
    measure = _measure()
    grid = np.arange(0.0, 1001.0, 5.0)
    rng = np.random.default_rng(seed)
    curve = [measure(sim.render_gray(p, rng=rng)) for p in grid]
    figure, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), sharex=True,
                                dpi=90)
    try:
        for ax, name in zip(np.atleast_1d(axes), names):
            gear = lens_sim.Gear(BACKLASH, motor=start)
            frame_rng = np.random.default_rng(seed + 1)
            outcome, frames, _, elapsed, visited = run_closed_loop(
                make(name, strategies.SearchConfig(backlash=1.5 * BACKLASH), start),
                lambda a, b: sim.render_gray(a, None if abs(b - a) < 1e-9 else b,
                                             rng=frame_rng),
                measure, gear, Rig(), 0.0, 1000.0)
            ax.plot(grid, curve, color='0.7', lw=1)
            xs, ys = zip(*visited)
            ax.scatter(xs, ys, c=range(len(xs)), cmap='viridis', s=12, zorder=3)
            ax.axvline(focus, color='k', ls=':', lw=1)
            ax.axvline(gear.lens, color='crimson', ls='--', lw=1)
            ax.set_title(f'{name}: {frames} frames, {elapsed:.1f} s, lens error '
                         f'{abs(gear.lens - focus):.1f}', fontsize=9)
            ax.set_ylabel('lap. var.')
        np.atleast_1d(axes)[-1].set_xlabel('motor position (focus at 430 dotted, final dashed; '
                                           f'gear backlash {BACKLASH:g})')
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=DEFAULT_TRIALS,
                        help=f'simulated trials per strategy (default {DEFAULT_TRIALS}: '
                             f'{DEFAULT_TRIALS // GRID} passes over the {GRID}-cell grid)')
    parser.add_argument('--stack-trials', type=int, default=40,
                        help='real-stack trials per strategy (default 40)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--out', default=DEFAULT_OUT, help='output directory')
    parser.add_argument('--quick', action='store_true', help='a tiny run (smoke test)')
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.stack_trials = 8, 2
    names = all_strategies()
    started = time.monotonic()
    results = sim_trials(names, args.trials, args.seed)
    results += stack_trials(names, args.stack_trials, args.seed)
    results += dslr_trials(args.trials, args.seed)
    rows = summarise(results)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'benchmark.csv', 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(rows)
    checks = check_targets(rows)
    elapsed = time.monotonic() - started
    info = (f'{time.strftime("%Y-%m-%d")}, {platform.node()} ({platform.machine()}, '
            f'Python {platform.python_version()}), seed {args.seed}, {args.trials} sim + '
            f'{args.stack_trials} real-stack trials per strategy, {elapsed:.0f} s')
    text = (table + '\n\n' + info + '\n\nTargets:\n'
            + '\n'.join(f'- [{"x" if ok else " "}] {what}' for what, ok in checks) + '\n')
    (out / 'benchmark.md').write_text(text)
    plot_examples(out / 'focus_curves.png', names, args.seed)
    print(text)
    print(f'wrote {out / "benchmark.csv"}, {out / "benchmark.md"}, {out / "focus_curves.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
