"""Reconstructions of the seed projects' searches, for the benchmark only (not offered to
users)."""
from __future__ import annotations

from typing import Generator
from autofocus.core.strategies.base import Move, Outcome, Sample, scan_positions
from autofocus.core.strategies.search import Search, Steps


# -- baselines (benchmark only) --------------------------------------------------------------

class WebcamScoreBaseline(Search):
    """The seed webcam project's score agent, reconstructed from its description (baseline).

    Streams: it does not wait for the motor to settle; every frame that arrives counts (the
    benchmark harness feeds it frames as they come, motion blur and latency included).
    Moves ``2 * fine_step`` at a time; after each move it takes the median of the Laplacian
    variances of the next ``frames_per_step`` (5) frames and compares it with the median
    before the move: better scores +1 for the current direction, worse -1 and turns round.
    It keeps going in the direction with the higher score and stops after 6 turns or
    ``max_frames`` (400) frames, then goes to the position with the best median seen. It
    has no notion of a flat curve and always reports success.
    """

    name = 'webcam_score'
    streaming = True
    frames_per_step = 5
    max_frames = 400
    max_turns = 6

    def _frames(self, first: Move) -> Generator[Move, Sample, float]:
        values = [(yield first)[1]]
        while len(values) < self.frames_per_step:
            values.append((yield Move(0.0, relative=True, phase='wait'))[1])
        return float(sorted(values)[len(values) // 2])

    def _steps(self) -> Steps:
        c = self.config
        step = 2.0 * c.fine_step
        here = self.start_position
        median = yield from self._frames(Move(0.0, relative=True, phase='wait'))
        best = (here, median)
        score = {1.0: 0, -1.0: 0}
        direction, turns = 1.0, 0
        while turns < self.max_turns and len(self.samples) < self.max_frames:
            target = min(max(here + direction * step, c.range_min), c.range_max)
            if target == here:
                direction, turns = -direction, turns + 1
                continue
            new = yield from self._frames(Move(target - here, relative=True, phase='climb'))
            here = target
            if new > median:
                score[direction] += 1
            else:
                score[direction] -= 1
                direction, turns = -direction, turns + 1
            if score[-direction] > score[direction]:
                direction = -direction
            median = new
            if new > best[1]:
                best = (here, new)
        position, value = yield Move(best[0] - here, relative=True, phase='final')
        return Outcome(True, position, value,
                       message=f'score agent: best median {best[1]:.4g} at {best[0]:g}')


class DslrSweepBaseline(Search):
    """The tethered-DSLR seed's search (baseline): full sweep, finer steps, best sample.

    Sweeps ``range_min..range_max`` at ``sweep_step`` (upwards, from wherever the lens is),
    then scans ``best +- sweep_step`` at ``fine_step / 2`` upwards, and moves straight to
    the sharpest sample: no curve fit, no backlash handling, no flat-curve check (it always
    reports success).
    """

    name = 'dslr_sweep'

    def _steps(self) -> Steps:
        c = self.config
        seen = []
        for target in scan_positions(c.range_min, c.range_max, c.sweep_step):
            seen.append((yield Move(target, phase='sweep')))
        peak = max(seen, key=lambda sample: sample[1])[0]
        low = max(c.range_min, peak - c.sweep_step)
        high = min(c.range_max, peak + c.sweep_step)
        for target in scan_positions(low, high, c.fine_step / 2.0):
            seen.append((yield Move(target, phase='fine')))
        best = max(seen, key=lambda sample: sample[1])
        position, value = yield Move(best[0], phase='final')
        return Outcome(True, position, value,
                       message=f'DSLR sweep: best sample {best[1]:.4g} at {best[0]:g}')


BASELINES = {cls.name: cls for cls in (WebcamScoreBaseline, DslrSweepBaseline)}
