"""The state-machine wrapper every strategy is written against: a generator of Moves
turned into start() / observe()."""
from __future__ import annotations

import math
import statistics
from typing import Generator, Sequence
from autofocus.core.strategies.base import Move, Outcome, Sample, SearchConfig, scan_positions
from autofocus.core.strategies.peak_fitting import (
    _flat_outcome, _merge_duplicates, _no_signal_outcome, _out_of_range, peak_contrast,
    CLEAR_CONTRAST, MIN_NOISE_DOF, MIN_SCATTER_SAMPLES, repeat_noise)

# A coarse scan whose contrast is below this (or whose peak is not significant) may have a
# weak peak between two samples: take two more frames before judging it.
WEAK_COARSE_CONTRAST = 0.3


# -- the state machine wrapper ---------------------------------------------------------------

Steps = Generator[Move, Sample, Outcome]


class Search:
    """One focus search: :meth:`start`, then :meth:`observe` after each move until an Outcome.

    ``samples`` holds every (position, sharpness) reported, in order, the final one included.
    Subclasses implement :meth:`_steps` as a generator.
    """

    name = ''

    def __init__(self, config: SearchConfig, start_position: float = 0.0):
        self.config = config
        self.start_position = float(start_position)
        self.samples: list[Sample] = []
        self.outcome: Outcome | None = None
        self.phase = ''                           # phase of the last Move issued
        self._phases: list[str] = []              # phase of the Move behind each sample
        self._signals: list = []                  # (level, snr) or None per sample
        self._signals_from = 0                    # the first sample that judges NO_SIGNAL
        self._repeat_noise: list[float] = []      # noise of a sample from repeated frames
        self._steps_gen: Steps | None = None

    def start(self) -> Move:
        """The first move. Call once."""
        if self._steps_gen is not None:
            raise RuntimeError(f'{self.name} search already started')
        self._steps_gen = self._steps()
        move = next(self._steps_gen)
        self.phase = move.phase
        return move

    def observe(self, position: float, sharpness: float, noise: float | None = None,
                signal: tuple[float, float] | None = None) -> Move | Outcome:
        """Report where the motor is and the sharpness measured there; get the next step.

        Optional: ``noise``, the standard error of ``sharpness`` when it is a mean of
        repeated frames (the noise the flat decision weighs the peak against, with the
        curve's own scatter); ``signal``, the frame's ``(level, snr)`` from
        :func:`autofocus.core.measures.frame_signal` (the absolute signal floor).
        """
        if self._steps_gen is None:
            raise RuntimeError(f'{self.name} search: call start() before observe()')
        if self.outcome is not None:
            raise RuntimeError(f'{self.name} search already finished: {self.outcome.message}')
        position, sharpness = float(position), float(sharpness)
        if not (math.isfinite(position) and math.isfinite(sharpness)):
            raise ValueError(f'position and sharpness must be finite, got {position!r}, '
                             f'{sharpness!r}')
        self.samples.append((position, sharpness))
        self._phases.append(self.phase)
        self._signals.append(None if signal is None else (float(signal[0]), float(signal[1])))
        if noise is not None and math.isfinite(noise) and noise > 0.0:
            self._repeat_noise.append(float(noise))
        try:
            move = self._steps_gen.send((position, sharpness))
        except StopIteration as stop:
            self.outcome = stop.value
            return self.outcome
        self.phase = move.phase
        return move

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def best(self) -> Sample | None:
        """The sharpest (position, sharpness) sample so far, or None before any."""
        if not self.samples:
            return None
        return max(self.samples, key=lambda sample: sample[1])

    def _steps(self) -> Steps:
        raise NotImplementedError

    def _measured_noise(self) -> tuple[float, int]:
        """(sigma, degrees of freedom) of one sample from repeated frames: the noise the
        server reported with each averaged sample (one degree each; the median) and the
        positions this search measured more than once (pooled); the larger sigma."""
        reported = statistics.median(self._repeat_noise) if self._repeat_noise else 0.0
        # The same position, for the noise: within a tenth of the finest step (a motor on a
        # grid reports a revisited target a little off).
        tolerance = 0.1 * min(self.config.fine_step, self.config.climb_min_step)
        usable = [s for s, phase in zip(self.samples, self._phases) if phase != 'backlash']
        pooled, dof = repeat_noise(usable, tolerance)
        return max(reported, pooled), len(self._repeat_noise) + dof

    def _judge(self, samples: Sequence[Sample], what: str, hint: str = '',
               contrast_only: bool = False) -> Outcome | None:
        """NO_SIGNAL (every frame seen so far, or the sharpest one, without signal), else
        FLAT_CURVE (no significant peak in ``samples`` without the dark ones: a frame
        below ``min_signal_level`` reads the dark, not focus, and the step from black to
        lit frames would pass for a peak; textureless but lit frames stay, they are the
        curve's blurred tails), else None: go on. ``contrast_only``: FLAT_CURVE only for a
        contrast below ``min_peak_contrast`` (the caller weighs the peak against the noise
        itself, later)."""
        dark = self._dark(what)
        if dark is not None:
            return dark
        lit = self._lit(samples)
        if contrast_only and peak_contrast(v for _, v in lit) >= self.config.min_peak_contrast:
            return None
        noise, dof = self._measured_noise()
        return _flat_outcome(lit, self.config, what, hint, noise, dof)

    def _lit(self, samples: Sequence[Sample]) -> list[Sample]:
        """``samples`` without those measured on frames below ``min_signal_level`` (all of
        them if none is lit)."""
        unlit = {sample for sample, signal in zip(self.samples, self._signals)
                 if signal is not None and signal[0] < self.config.min_signal_level}
        return [sample for sample in samples if sample not in unlit] or list(samples)

    def _dark(self, what: str) -> Outcome | None:
        """NO_SIGNAL if the sharpest frame seen so far has no signal (checked again before
        the final move: a fine scan may have found a dark frame that reads sharper). Only
        samples from ``_signals_from`` on count (a fly-by's motion-blurred stream, once its
        texture was checked at rest, does not)."""
        start = self._signals_from
        return _no_signal_outcome(self.samples[start:], self._signals[start:], self.config, what)

    def _needs_noise(self, samples: Sequence[Sample]) -> bool:
        """Whether ``samples`` are a low peak (contrast ``min_peak_contrast`` to
        ``CLEAR_CONTRAST``) that only the noise can judge, and the noise is not known yet
        (too few repeated frames and too few positions for their scatter)."""
        contrast = peak_contrast(v for _, v in samples)
        count = len(_merge_duplicates(samples, 1e-9))
        return (self.config.min_peak_contrast <= contrast < CLEAR_CONTRAST
                and self._measured_noise()[1] < MIN_NOISE_DOF
                and count < MIN_SCATTER_SAMPLES)

    def _looks_weak(self, samples: Sequence[Sample]) -> bool:
        """Whether a scan's peak is low (worth a closer look)."""
        values = [v for _, v in samples]
        return peak_contrast(values) < max(WEAK_COARSE_CONTRAST, self.config.min_peak_contrast)

    # Helpers for strategies with absolute moves (backlash handling).

    @property
    def _here(self) -> float:
        """The last reported position (the start position before any report)."""
        return self.samples[-1][0] if self.samples else self.start_position

    def _visit(self, target: float, phase: str) -> Generator[Move, Sample, Sample]:
        """Move to ``target`` and return its sample; with backlash, approach it from below."""
        backlash = self.config.backlash
        if backlash > 0 and target < self._here - 1e-9:
            yield Move(max(self.config.range_min, target - backlash), phase='backlash')
        return (yield Move(target, phase=phase))

    def _final(self, estimate: float) -> Generator[Move, Sample, Sample]:
        """The final approach: from below (overshooting by ``backlash``) when backlash > 0."""
        backlash = self.config.backlash
        if backlash > 0 and self._here > estimate - backlash:
            yield Move(max(self.config.range_min, estimate - backlash), phase='backlash')
        return (yield Move(estimate, phase='final'))

    def _leave_at_best(self, edge: float, samples: Sequence[Sample],
                       what: str) -> Generator[Move, Sample, Outcome]:
        """PEAK_OUT_OF_RANGE: the final move to the sharpest sample (next to ``edge``)."""
        c = self.config
        best = max(samples, key=lambda sample: sample[1])[0]
        position, value = yield from self._final(best)
        return _out_of_range(position, value, edge, c.range_min, c.range_max, samples, what)

    def _scan(self, low: float, high: float, step: float, phase: str,
              skip: Sequence[Sample] = ()) -> Generator[Move, Sample, list[Sample]]:
        """Scan low..high at ``step`` (from the nearer end; upwards when backlash > 0).

        Positions within step / 2 of a sample in ``skip`` are not measured again.
        """
        if self.config.backlash > 0:
            positions = scan_positions(low, high, step)
        else:
            positions = _ordered_scan(low, high, step, self._here)
        taken = []
        for target in positions:
            if any(abs(target - p) < step / 2 for p, _ in skip):
                continue
            taken.append((yield from self._visit(target, phase)))
        return taken

    def _coarse_scan(self) -> Generator[Move, Sample, tuple[list[Sample], Outcome | None]]:
        """The coarse scan of coarse_fine and golden: (samples, FLAT_CURVE Outcome or None).

        Scans the range at ``coarse_step``. A contrast below :data:`WEAK_COARSE_CONTRAST`
        or a peak below ``min_peak_significance`` may be a weak (low-texture) peak that fell
        between two coarse samples, where the samples on its flanks show only part of it:
        then measure halfway between the best sample and each of its neighbours (phase
        'coarse'; at most two frames). A contrast still below ``CLEAR_CONTRAST`` but above
        ``min_peak_contrast``, with no noise measured from repeated frames: measure every
        coarse position once more, so the peak can be judged against that noise. Then judge
        all the samples (:meth:`_judge`: NO_SIGNAL, then FLAT_CURVE).
        """
        c = self.config
        coarse = yield from self._scan(c.range_min, c.range_max, c.coarse_step, 'coarse')
        if self._looks_weak(coarse):
            ordered = _merge_duplicates(coarse, c.coarse_step * 1e-3)
            index = max(range(len(ordered)), key=lambda i: ordered[i][1])
            best = ordered[index][0]
            halfway = [(best + ordered[j][0]) / 2.0 for j in (index - 1, index + 1)
                       if 0 <= j < len(ordered)]
            for target in sorted(halfway, key=lambda p: abs(p - self._here)):
                coarse.append((yield from self._visit(target, 'coarse')))
        positions = sorted(p for p, _ in _merge_duplicates(coarse, c.coarse_step * 1e-3))
        if self._needs_noise(coarse):
            # A low peak, and no noise to judge it by: measure every position again (from
            # the nearer end); the differences are the noise.
            if abs(positions[-1] - self._here) < abs(positions[0] - self._here):
                positions.reverse()
            for target in positions:
                coarse.append((yield from self._visit(target, 'coarse')))
        flat = self._judge(coarse, 'coarse scan', f', or its peak is narrower than the '
                           f'coarse step ({c.coarse_step:g})')
        return coarse, flat


def _compare(value: float, ref: float, noise_band: float) -> int:
    """+1 if value rose above ref by more than the noise band, -1 if it fell, else 0."""
    margin = noise_band * abs(ref)
    if value > ref + margin:
        return 1
    if value < ref - margin:
        return -1
    return 0


def _ordered_scan(low: float, high: float, step: float, near: float) -> list[float]:
    """Scan positions low..high (inclusive) starting from the end nearer ``near``."""
    if abs(near - high) < abs(near - low):
        return scan_positions(high, low, step)
    return scan_positions(low, high, step)
