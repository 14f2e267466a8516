"""Benchmark continuous focus against re-running the one-shot search every N seconds.

Usage: ``python -m autofocus.tools.continuous_benchmark [--static-minutes M] [--seed S]
[--out FILE] [--quick]`` (entry point ``continuous_benchmark``).

One run, one simulated clock per scenario. The camera exposes a frame every
``frame_period``; a frame arrives ``latency`` after its exposure ends; the motor moves at
``motor_speed``. A search runs the focus server's protocol (after each move, the first frame
exposed ``settle_time`` after rest counts), with the strategies the continuous node asks
for: a local ``sweep`` over +-``local_range`` and a full ``coarse_fine``. Between searches
the continuous policy (:mod:`autofocus.core.continuous`, the node's own state machine)
sees every frame's sharpness; the naive policy does a full search every N seconds and looks
at nothing in between.

Scenarios (the lens simulator's focus position follows a schedule):

- ``steps``: the subject jumps at known times (by +120, -250, +40, +420 units);
- ``drift``: it creeps at 2 units/s for 100 s (thermal drift, a sagging stage);
- ``static-*``: nothing moves for ``--static-minutes`` each, with realistic read/shot noise
  and exposure flicker (1%, and 5% with high noise): every search after the first is a
  false re-trigger.

Figures, per policy and scenario: time and search frames from a step change to the lens
being at rest within the tolerance of the new focus (median and worst over the changes),
the fraction of all frames exposed with the lens in focus, the searches run, and false
re-triggers per hour on the static scenes (target 0). Everything is shown at two
tolerances (10 and 20 motor units) so the verdict does not rest on one choice.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from autofocus.core import continuous, lens_sim, measures, strategies

TOLERANCES = (10.0, 20.0)
NAIVE_PERIODS = (5.0, 15.0, 30.0)
# 160x120 frames stand for a 2x-binned 320x240 camera, as in the one-shot benchmark.
WIDTH, HEIGHT, BLUR_PER_UNIT = 160, 120, 0.025
# The sharpness node's default. The continuous policy's trigger is a relative drop, and how
# far a measure drops for a given defocus depends on the downsample: normalized_vollath_f4
# at downsample 2 drops too little to follow slow drift (--downsample 2 shows it).
DOWNSAMPLE = measures.DEFAULT_DOWNSAMPLE
NOISE = {
    'realistic': dict(noise_sigma=1.5, photon_gain=32.0, flicker=0.01),
    'flicker': dict(noise_sigma=3.0, photon_gain=8.0, flicker=0.05),
}


@dataclass(frozen=True)
class Rig:
    motor_speed: float = 500.0      # motor units / s
    settle_time: float = 0.05       # s after rest before a frame counts
    frame_period: float = 1.0 / 30.0
    exposure: float = 0.01
    latency: float = 0.06           # exposure end -> sharpness known


@dataclass(frozen=True)
class Scenario:
    name: str
    scene: str
    noise: str
    duration: float
    schedule: tuple                 # ((t, focus), ...) steps; focus holds until the next
    drift: tuple = ()               # (t0, t1, units/s): linear creep between t0 and t1

    def focus(self, t: float) -> float:
        value = self.schedule[0][1]
        for start, position in self.schedule:
            if t >= start:
                value = position
        if self.drift:
            t0, t1, rate = self.drift
            value += rate * (min(max(t, t0), t1) - t0)
        return value

    @property
    def changes(self) -> list:
        return [t for t, _ in self.schedule[1:]]


def scenarios(static_minutes: float) -> list:
    static = 60.0 * static_minutes
    return [
        Scenario('steps', 'texture', 'realistic', 150.0,
                 ((0.0, 420.0), (20.0, 540.0), (50.0, 290.0), (80.0, 330.0), (110.0, 750.0))),
        Scenario('drift', 'texture', 'realistic', 130.0, ((0.0, 350.0),), (10.0, 110.0, 2.0)),
        Scenario('static-texture', 'texture', 'realistic', static, ((0.0, 500.0),)),
        Scenario('static-low-texture', 'low_texture', 'realistic', static, ((0.0, 500.0),)),
        Scenario('static-flicker', 'texture', 'flicker', static, ((0.0, 500.0),)),
    ]


class ContinuousPolicy:
    name = 'continuous'
    watches = True

    def __init__(self, config: continuous.ContinuousConfig):
        self.machine = continuous.ContinuousFocus(config)

    def start(self, t, position):
        return self.machine.start(position)

    def frame(self, t_exposed, t_known, sharpness):
        return self.machine.observe(t_exposed, sharpness)

    def done(self, t, success, position, message):
        return self.machine.search_done(t, success, position, message)


class NaivePolicy:
    """The one-shot search again every ``period`` seconds, whatever the picture shows."""

    watches = False

    def __init__(self, period: float, config: continuous.ContinuousConfig):
        self.period, self.config = period, config
        self.name = f'naive every {period:g} s'
        self._last_end = 0.0

    def _full(self):
        return continuous.SearchRequest(continuous.FULL, self.config.range_min,
                                        self.config.range_max, 'periodic')

    def start(self, t, position):
        return self._full()

    def frame(self, t_exposed, t_known, sharpness):
        return self._full() if t_known - self._last_end >= self.period else None

    def done(self, t, success, position, message):
        self._last_end = t
        return None


@dataclass
class Run:
    policy: str
    scenario: str
    searches: int
    search_frames: int
    in_focus: dict                  # tolerance -> fraction of frames
    regain_time: dict               # tolerance -> [s per change, nan = never]
    regain_frames: dict             # tolerance -> [search frames per change]
    duration: float


def simulate(policy, scenario: Scenario, config: continuous.ContinuousConfig, rig: Rig,
             seed: int, search_config: strategies.SearchConfig,
             downsample: int = DOWNSAMPLE) -> Run:
    sim = lens_sim.LensSimulator(lens_sim.LensConfig(
        width=WIDTH, height=HEIGHT, scene=scenario.scene, seed=seed, psf_gaussian=0.2,
        blur_per_unit=BLUR_PER_UNIT, focus_position=scenario.focus(0.0),
        **NOISE[scenario.noise]))
    rng = np.random.default_rng([seed, 11])
    name = measures.DEFAULT_MEASURE

    motor = 0.0
    move = (0.0, 0.0, motor, motor)          # start, end, from, to
    searching = None                         # [Search, request, usable_from]
    searches = search_frames = 0
    in_focus = {tol: 0 for tol in TOLERANCES}
    regain_time = {tol: [] for tol in TOLERANCES}
    regain_frames = {tol: [] for tol in TOLERANCES}
    pending = {tol: [] for tol in TOLERANCES}   # change times not yet regained
    frames_at_change = {}

    def lens_at(t):
        start, end, a, b = move
        if t >= end or end <= start:
            return b
        if t <= start:
            return a
        return a + (b - a) * (t - start) / (end - start)

    def command(t, target):
        nonlocal motor, move
        target = min(max(target, config.range_min), config.range_max)
        move = (t, t + abs(target - motor) / rig.motor_speed, lens_at(t), target)
        motor = target
        return max(t, move[1]) + rig.settle_time

    def begin(t, request):
        nonlocal searches
        searches += 1
        kind_config = dataclasses.replace(search_config, range_min=request.range_min,
                                          range_max=request.range_max)
        strategy = 'sweep' if request.kind == continuous.LOCAL else 'coarse_fine'
        search = strategies.make_search(strategy, kind_config, start_position=motor)
        step = search.start()
        target = motor + step.target if step.relative else step.target
        return [search, request, command(t, target)]

    def measure(t_exposed):
        sim.config = dataclasses.replace(sim.config, focus_position=scenario.focus(t_exposed))
        a, b = lens_at(t_exposed), lens_at(t_exposed + rig.exposure)
        gray = sim.render_gray(a, None if abs(b - a) < 1e-9 else b, rng=rng)
        return measures.compute(gray, [name], measures.DEFAULT_ROI, downsample)[name]

    searching = begin(0.0, policy.start(0.0, motor))
    frames = int(scenario.duration / rig.frame_period)
    changes = list(scenario.changes)
    for k in range(frames):
        t = k * rig.frame_period
        known = t + rig.exposure + rig.latency
        while changes and changes[0] <= t:
            change = changes.pop(0)
            frames_at_change[change] = search_frames
            for tol in TOLERANCES:
                pending[tol].append(change)
        error = abs(lens_at(t) - scenario.focus(t))
        at_rest = searching is None and lens_at(t) == motor
        for tol in TOLERANCES:
            if error <= tol:
                in_focus[tol] += 1
                if at_rest:
                    for change in pending[tol]:
                        regain_time[tol].append(t - change)
                        regain_frames[tol].append(search_frames - frames_at_change[change])
                    pending[tol].clear()
        if searching is not None:
            search, request, usable_from = searching
            if t < usable_from:
                continue
            value = measure(t)
            search_frames += 1
            step = search.observe(motor, value)
            if isinstance(step, strategies.Outcome):
                searching = None
                follow = policy.done(known, step.success, step.position, step.message)
                if follow is not None:
                    searching = begin(known, follow)
            else:
                target = motor + step.target if step.relative else step.target
                searching[2] = command(known, target)
            continue
        value = measure(t) if policy.watches else 0.0
        request = policy.frame(t, known, value)
        if request is not None:
            searching = begin(known, request)
    for tol in TOLERANCES:   # never regained before the run ended
        regain_time[tol] += [math.nan] * len(pending[tol])
        regain_frames[tol] += [math.nan] * len(pending[tol])
    return Run(policy.name, scenario.name, searches, search_frames,
               {tol: n / frames for tol, n in in_focus.items()}, regain_time, regain_frames,
               scenario.duration)


def run_all(static_minutes: float, seed: int, config=None, rig=None, periods=NAIVE_PERIODS,
            downsample: int = DOWNSAMPLE):
    config = config or continuous.ContinuousConfig()
    rig = rig or Rig()
    search_config = strategies.SearchConfig()
    runs = []
    for scenario in scenarios(static_minutes):
        policies = [ContinuousPolicy(config)] + [NaivePolicy(p, config) for p in periods]
        for policy in policies:
            runs.append(simulate(policy, scenario, config, rig, seed, search_config,
                                 downsample))
    return runs


def _fmt_times(values):
    if not values:
        return '-'
    finite = [v for v in values if not math.isnan(v)]
    missed = len(values) - len(finite)
    if not finite:
        return f'never ({missed})'
    text = f'{statistics.median(finite):.1f} / {max(finite):.1f}'
    return text + (f' ({missed} never)' if missed else '')


def _fmt_frames(values):
    finite = [v for v in values if not math.isnan(v)]
    if not values:
        return '-'
    return f'{statistics.median(finite):.0f} / {max(finite):.0f}' if finite else 'never'


def markdown(runs) -> str:
    lines = ['| scenario | policy | searches | false re-triggers / h | '
             + ' | '.join(f'in focus (±{tol:g}) | regain s, median / worst (±{tol:g}) | '
                          f'regain search frames (±{tol:g})' for tol in TOLERANCES) + ' |',
             '| --- | --- | ---: | ---: | ' + ' | '.join('---: | ---: | ---:'
                                                        for _ in TOLERANCES) + ' |']
    for run in runs:
        static = run.scenario.startswith('static')
        false = f'{(run.searches - 1) * 3600.0 / run.duration:.0f}' if static else '-'
        cells = []
        for tol in TOLERANCES:
            cells += [f'{100 * run.in_focus[tol]:.1f}%', _fmt_times(run.regain_time[tol]),
                      _fmt_frames(run.regain_frames[tol])]
        lines.append(f'| {run.scenario} | {run.policy} | {run.searches} | {false} | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='continuous_benchmark', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--static-minutes', type=float, default=20.0,
                        help='simulated minutes of each static scene (default 20: an hour '
                             'over the three)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='also write the table to this Markdown file')
    parser.add_argument('--quick', action='store_true', help='2 static minutes (a smoke run)')
    defaults = continuous.ContinuousConfig()
    parser.add_argument('--drop-threshold', type=float, default=defaults.drop_threshold,
                        help='continuous policy: relative drop that triggers (as the node)')
    parser.add_argument('--hold-time', type=float, default=defaults.hold_time,
                        help='continuous policy: seconds the drop must last')
    parser.add_argument('--window', type=int, default=defaults.window,
                        help='continuous policy: frames in the median')
    parser.add_argument('--downsample', type=int, default=DOWNSAMPLE,
                        help='sharpness downsample factor (default: the sharpness node\'s, '
                             f'{DOWNSAMPLE})')
    options = parser.parse_args(argv)
    if options.static_minutes <= 0:
        parser.error('--static-minutes must be > 0')
    if options.downsample < 1:
        parser.error('--downsample must be >= 1')
    try:
        config = dataclasses.replace(defaults, drop_threshold=options.drop_threshold,
                                     hold_time=options.hold_time, window=options.window)
        continuous.validate(config)
    except ValueError as error:
        parser.error(str(error))
    minutes = 2.0 if options.quick else options.static_minutes
    started = time.monotonic()
    runs = run_all(minutes, options.seed, config, downsample=options.downsample)
    table = markdown(runs)
    print(table)
    print(f'\n({minutes:g} simulated minutes per static scene, seed {options.seed}, '
          f'drop_threshold {config.drop_threshold:g}, hold_time {config.hold_time:g} s, '
          f'window {config.window}, downsample {options.downsample}; '
          f'{time.monotonic() - started:.0f} s)')
    if options.out:
        with open(options.out, 'w') as out:
            out.write(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
