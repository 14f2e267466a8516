"""The seed projects' searches, reproduced for the benchmark only (not offered to users).

``webcam_score`` follows seed 000's ``client.py`` line by line; ``dslr_sweep`` follows seed
001's description (its code is not in the seed's text). Where the benchmark's rig forces a
choice the seeds did not make (a motor speed, a scale for an absolute threshold, an end to a
loop that never ends), the choice is a class attribute named below and listed in
``docs/benchmark.md``.
"""
from __future__ import annotations

import collections
import math
import numpy as np

from autofocus.core.strategies.base import Move, Outcome, Sample, scan_positions
from autofocus.core.strategies.search import Search, Steps


class WebcamScoreBaseline(Search):
    """Seed 000's score agent (``client.py``), as its code does it.

    Per frame the seed appends the Laplacian variance of the centre half to a queue of the
    last 7 (``deque(maxlen=7)``) and counts frames. At frame ``frames_to_count // 4`` (10)
    of each cycle it resets the score to ``{'forward': 50, 'back': 50}``; at frame
    ``frames_to_count`` (40) it decides: the queue's median against the previous decision's
    median (``prev_l``, 0 at first) scores +1 for the previous action if higher, else -1;
    the action with the higher score wins (a tie goes 'back'); if the median is above 500 or
    below 1 the message is 'stop' instead. The Pi runs the DC motor continuously in the last
    direction until 'stop'. Frames stream: every frame that arrives counts, motion blur and
    latency included (the benchmark's ``streaming`` harness).

    What the benchmark has to choose, because the seed does not say:

    - ``stop_high`` / ``stop_low``: the seed's 500 and 1 are in its own measure's units; its
      live plot is scaled 0..1800 (``ax.set_ylim(ymax=1800)``), the author's in-focus
      reading. :meth:`calibrate` sets them to the same fractions (500/1800, 1/1800) of the
      in-focus reading of the scene being focused, which the benchmark measures on static
      frames at focus (a user tuning the seed's constants would read that number).
    - ``travel_per_frame``: the Lego DC motor's speed is not given. The benchmark drives it
      one ``coarse_step`` per decision (``coarse_step / 40`` per frame: 75 units/s at 30 fps
      with the defaults), so one decision spans what one step of our coarse scan spans.
    - the end: the seed's loop never ends (the user closes it). Here the search ends at its
      first 'stop' and reports success there (where the motor stopped), or reports a timeout
      after ``max_frames`` frames (30 s at 30 fps, half the focus server's goal timeout).
    """

    name = 'webcam_score'
    streaming = True
    frames_to_count = 40                 # seed: frames between two decisions
    queue_length = 7                     # seed: deque(maxlen=7)
    score_start = 50                     # seed: score={'forward': 50, 'back': 50}
    seed_high, seed_low, seed_range = 500.0, 1.0, 1800.0   # seed: thresholds, plot's ymax
    max_frames = 900

    def __init__(self, config, start_position=0.0):
        super().__init__(config, start_position)
        self.travel_per_frame = config.coarse_step / self.frames_to_count
        self.stop_high = self.seed_high
        self.stop_low = self.seed_low
        self.decisions: list[tuple[int, float, str]] = []   # (frame, median, message)

    def calibrate(self, in_focus_reading: float) -> None:
        """Scale the seed's stop thresholds to a scene whose in-focus reading is given."""
        if not (math.isfinite(in_focus_reading) and in_focus_reading > 0):
            raise ValueError(f'in_focus_reading must be a positive number, got '
                             f'{in_focus_reading!r}')
        self.stop_high = in_focus_reading * self.seed_high / self.seed_range
        self.stop_low = in_focus_reading * self.seed_low / self.seed_range

    def _steps(self) -> Steps:
        queue: collections.deque[float] = collections.deque(maxlen=self.queue_length)
        score = {'forward': self.score_start, 'back': self.score_start}
        prev_action, prev_l, cnt = 'forward', 0.0, 0
        motion = 0.0                      # the motor rests until the first decision
        frames = 0
        while frames < self.max_frames:
            phase = 'wait' if motion == 0.0 else 'drive'
            _, value = yield Move(motion * self.travel_per_frame, relative=True, phase=phase)
            frames += 1
            queue.append(value)
            if cnt == self.frames_to_count // 4:
                score = {'forward': self.score_start, 'back': self.score_start}
            if cnt == self.frames_to_count:
                median = float(np.median(queue))
                score[prev_action] += 1 if median > prev_l else -1
                msg = 'forward' if score['forward'] > score['back'] else 'back'
                prev_action = msg
                if median > self.stop_high or median < self.stop_low:
                    msg = 'stop'
                self.decisions.append((frames, median, msg))
                if msg == 'stop':
                    return Outcome(True, self._here, value,
                                   message=f'score agent: stopped at median {median:.4g} '
                                           f'(thresholds {self.stop_low:.3g}, '
                                           f'{self.stop_high:.3g})')
                motion = 1.0 if msg == 'forward' else -1.0
                cnt = 0
                prev_l = median
            cnt += 1
        return Outcome(False, self._here, 0.0, error='timeout',
                       message=f'score agent: no stop after {self.max_frames} frames')


class DslrSweepBaseline(Search):
    """Seed 001's search: "move from one end of the focus range to the other and estimate
    the focus for each frame. After finding the peak value in that range, we move around
    that point in smaller steps until the maximum peak is found."

    Sweeps ``range_min..range_max`` at ``sweep_step`` (upwards, from wherever the lens is),
    then, while the step is above ``fine_step``, halves it (never below ``fine_step``) and
    scans the best sample so far +- the previous step at the new step (25 -> 12.5 -> 10 with
    the defaults), and moves straight to the sharpest sample seen. The seed's code is not
    in its text: the halving is our reading of "smaller steps". Like the seed it has no
    curve fit, no backlash handling and no flat-curve check (it always reports success).
    """

    name = 'dslr_sweep'

    def _steps(self) -> Steps:
        c = self.config
        seen: list[Sample] = []
        for target in scan_positions(c.range_min, c.range_max, c.sweep_step):
            seen.append((yield Move(target, phase='sweep')))
        step = c.sweep_step
        while step > c.fine_step:
            smaller = max(step / 2.0, c.fine_step)
            peak = max(seen, key=lambda sample: sample[1])[0]
            low, high = max(c.range_min, peak - step), min(c.range_max, peak + step)
            for target in scan_positions(low, high, smaller):
                seen.append((yield Move(target, phase='fine')))
            step = smaller
        best = max(seen, key=lambda sample: sample[1])
        position, value = yield Move(best[0], phase='final')
        return Outcome(True, position, value,
                       message=f'DSLR sweep: best sample {best[1]:.4g} at {best[0]:g}')


BASELINES = {cls.name: cls for cls in (WebcamScoreBaseline, DslrSweepBaseline)}
