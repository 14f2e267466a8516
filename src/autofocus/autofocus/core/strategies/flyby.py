"""``flyby``: scan the range while the lens moves at constant speed, then refine at rest.

A stop-and-go scan pays, at every position, for a stop, the settle time, the wait for the
next frame and the frame's latency. A fly-by scan moves the lens once across the range at
constant speed while the camera streams, and places each frame where the lens was during
its exposure: the motor's stamped states (it publishes its position at a fixed rate, also
while moving) interpolated at the middle of the frame's exposure (:func:`stream_samples`).
OpenFlexure's "fast autofocus" does the same on a microscope stage.

Motion blur: a frame exposed while the lens moves is the mean of the images along its
path (the simulator renders it so). At constant speed that path is symmetric about the
middle of the exposure, so the position given to the frame is the mean lens position and
the streamed curve is the static curve smoothed by a box as wide as the travel during one
exposure: lower and wider at the top, but peaking at the same place. Because it is lower,
streamed values are never mixed with values measured at rest: the stream only places the
refine, which is measured at rest, and the peak reported is the refine's.

The protocol: besides :class:`Move`, this strategy asks for a :class:`Sweep` ("move to X
at speed v and give me every (position, sharpness) on the way"); whoever drives it
gathers the stream (frame stamps, sharpness, stamped motor positions), turns it into
samples with :func:`stream_samples`, and reports them with
:meth:`FlybySearch.observe_stream`.

Where the motor cannot report its position while moving (a DC motor timed from its speed:
``MotorState.position_measured`` false) the stream cannot be placed: the search is made
with ``positions_while_moving=False`` and scans stop-and-go at ``coarse_step`` instead
(the coarse scan of coarse_fine), then refines the same way; its message says so. The same fallback
applies when a stream comes back too sparse to place the refine (fewer than
:data:`MIN_STREAM_SAMPLES` frames, a gap wider than ``coarse_step``, or an end of the
range further than that from the stream's: the lens moved too fast for the frame rate,
or frames were dropped). A lit stream without texture above the noise (motion blur
lowers it) has its texture checked at rest where it was sharpest before NO_SIGNAL.
"""
from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass
from typing import Generator, Sequence

from autofocus.core.strategies.base import FLAT_CURVE, NO_SIGNAL, Move, Outcome, Sample
from autofocus.core.strategies.peak_fitting import (
    _bends, _flat_outcome, _merge_duplicates, _no_signal_outcome, _noise, _success,
    failed_at_last, find_peaks, gaussian_peak, has_signal, nearest, peak_beyond_edge,
    peak_contrast, peak_fit, repeat_noise, rival_tops, signal_advice, weak_peak)
from autofocus.core.strategies.search import Search, Steps

# A stream of fewer frames than this cannot place a peak.
MIN_STREAM_SAMPLES = 5
# The refine at rest: the streamed estimate and this many fine steps either side (as
# coarse_fine's fine scan: a parabola through three samples a fine step apart leans
# towards the middle one on a Gaussian top, a quarter of a depth of field on a weak peak).
REFINE_STEPS = 2
# The stream's floor and noise (FlybySearch._confirm): its frames at least this many
# coarse steps from the peak, and at least this many triples of them.
TAIL_DISTANCE = 1.5
MIN_TAIL_BENDS = 5
# A weak streamed peak is measured again at rest, at most this many more frames.
MAX_CONFIRM_FRAMES = 6
# A lit stream without texture (motion blur) is checked at rest with this many frames.
TEXTURE_CHECK_FRAMES = 3


@dataclass(frozen=True)
class Sweep:
    """Move to ``target`` (absolute) at ``speed`` motor units/s while frames stream, and
    report every frame on the way (:meth:`FlybySearch.observe_stream`).

    ``speed`` 0 means the driver's choice (the focus server's ``flyby_speed`` parameter,
    the benchmark rig's motor speed). The frames exposed between the command and the
    motor's arrival at ``target`` count; none of them is reported through ``observe``.

    ``use_frames`` False: the search does not use this sweep's frames (the way to the
    pass's start, the way back to the refine), so whoever drives it reports the frames
    that have arrived when the motor does and does not wait a frame's latency for the rest.
    """

    target: float
    speed: float = 0.0
    phase: str = 'flyby'
    relative: bool = False                   # a Sweep is always absolute
    use_frames: bool = True


def stream_samples(states: Sequence[tuple[float, float]],
                   frames: Sequence[tuple],
                   exposure_offset: float = 0.0, extras: list | None = None) -> list[Sample]:
    """(position, sharpness) of each streamed frame, from stamped motor states.

    ``states``: (stamp, motor position) as the motor published them; ``frames``: (stamp,
    sharpness) of each frame, stamps on the same clock and in the same unit (seconds or
    nanoseconds). ``exposure_offset``: from a frame's stamp to the middle of its exposure
    (half the exposure time for a camera that stamps the start of the exposure, as the
    lens simulator does; minus half for one that stamps its end). The position is the
    states' linear interpolation at that moment: at constant speed, the mean position
    during the exposure. A frame whose exposure middle lies outside the states' time span
    is dropped (nothing says where the lens was then). Returned in frame time order.
    A frame may carry a third item (its signal figures): with a list ``extras``, each
    kept frame's third item (None without one) is appended to it, in the samples' order.
    """
    ordered = sorted((float(t), float(p)) for t, p in states)
    if len(ordered) < 2:
        return []
    times = [t for t, _ in ordered]
    samples = []
    for frame in sorted(frames, key=lambda frame: frame[0]):
        stamp, value = frame[0], frame[1]
        t = float(stamp) + exposure_offset
        if not (times[0] <= t <= times[-1]) or not math.isfinite(value):
            continue
        i = min(max(bisect.bisect_right(times, t), 1), len(times) - 1)
        (t0, p0), (t1, p1) = ordered[i - 1], ordered[i]
        position = p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)
        samples.append((position, float(value)))
        if extras is not None:
            extras.append(frame[2] if len(frame) > 2 else None)
    return samples


def stream_gap(samples: Sequence[Sample]) -> float:
    """The widest gap between neighbouring positions of a stream (inf with fewer than 2)."""
    positions = sorted(p for p, _ in samples)
    if len(positions) < 2:
        return math.inf
    return max(b - a for a, b in zip(positions, positions[1:]))


class FlybySearch(Search):
    """Fly-by scan of the whole range, a short refine at rest around its peak, go there.

    1. :class:`Sweep` to the end of the range nearer the motor (the lower end with
       backlash, so the pass and the refine approach from below); none when the lens is
       there. Its frames are reported but not used (with backlash they lie the other way),
       and no frame is taken at rest there (a settle and a frame's latency for nothing).
    2. :class:`Sweep` to the other end; the stream is the coarse curve. Too sparse a
       stream (see the module docstring) -> a stop-and-go coarse scan instead.
    3. No signal -> NO_SIGNAL; a contrast below ``min_peak_contrast`` -> FLAT_CURVE; a
       sharpest sample at an end with the curve still rising toward it ->
       PEAK_OUT_OF_RANGE (the lens left at the sharpest sample).
    4. Estimate: :func:`gaussian_peak` over the stream.
    5. :class:`Sweep` back towards it (to the refine's first position, below it with
       backlash) when that is more than ``coarse_step`` away; frames not used.
    6. Refine at rest: ``estimate`` and :data:`REFINE_STEPS` ``fine_step`` either side;
       while the sharpest of these is the lowest or highest, one more ``fine_step`` past
       it; a weak peak (lower than ``WEAK_PEAK`` times the stream's tails' noise) has its
       three fitted samples nearest the vertex measured again (the noise at the top);
       two tops within the noise (:func:`rival_tops`) are measured again with what lies
       between; while the fitted vertex's standard error exceeds ``fine_step / 4`` (a
       noisy top), one more either side (at most ``2 * coarse_step / fine_step`` more in
       all). The peak is :func:`peak_fit` over the refine's samples only (streamed values
       are lower: motion blur).
    7. Confirm it at rest (:meth:`_confirm`): FLAT_CURVE unless the frames at the fitted
       peak stand ``min_peak_significance`` standard errors over the stream's floor.
    8. Final move; Outcome (BIMODAL warning when the stream showed two peaks).
    """

    name = 'flyby'

    def __init__(self, config, start_position: float = 0.0,
                 positions_while_moving: bool = True):
        super().__init__(config, start_position)
        self.positions_while_moving = bool(positions_while_moving)
        self.stream: list[Sample] = []            # the last stream reported
        self.fell_back = ''                       # why a stop-and-go scan replaced the stream

    def observe_stream(self, samples: Sequence[Sample],
                       signals: Sequence | None = None) -> Move | Sweep | Outcome:
        """Report the frames streamed during a :class:`Sweep`: (position, sharpness) each
        (see :func:`stream_samples`), and optionally each frame's (level, snr) signal
        figures (the absolute signal floor, as :meth:`observe` takes them); get the next
        step."""
        if self._steps_gen is None or not isinstance(self._pending, Sweep):
            raise RuntimeError('flyby search: observe_stream() answers a Sweep step only')
        if self.outcome is not None:
            raise RuntimeError(f'flyby search already finished: {self.outcome.message}')
        stream = []
        for position, sharpness in samples:
            position, sharpness = float(position), float(sharpness)
            if not (math.isfinite(position) and math.isfinite(sharpness)):
                raise ValueError(f'position and sharpness must be finite, got {position!r}, '
                                 f'{sharpness!r}')
            stream.append((position, sharpness))
        self._pending = None
        # Streamed samples are reported samples too (in order); their values are lower
        # than at rest (motion blur), which only the fit below needs to know.
        self.samples.extend(stream)
        self._phases.extend(['flyby'] * len(stream))
        signals = list(signals) if signals is not None else [None] * len(stream)
        if len(signals) != len(stream):
            raise ValueError(f'{len(signals)} signal figures for {len(stream)} samples')
        self._signals.extend(None if signal is None else (float(signal[0]), float(signal[1]))
                             for signal in signals)
        self._swept_to = (len(self.samples), self._sweep_target)
        try:
            step = self._steps_gen.send(stream)
        except StopIteration as stop:
            self.outcome = stop.value
            return self.outcome
        return self._issue(step)

    # Search.start/observe set self.phase from the step; remember Sweeps so that a Sweep
    # is answered with observe_stream and a Move with observe.
    _pending = None
    _sweep_target = 0.0
    _swept_to: tuple[int, float] | None = None    # (samples before it, where a sweep ended)

    @property
    def _here(self) -> float:
        # After a sweep and before the next sample the lens is at the sweep's end.
        if self._swept_to is not None and len(self.samples) == self._swept_to[0]:
            return self._swept_to[1]
        return super()._here

    def start(self):
        return self._issue(super().start())

    def observe(self, position: float, sharpness: float, noise: float | None = None,
                signal: tuple[float, float] | None = None):
        if isinstance(self._pending, Sweep):
            raise RuntimeError('flyby search: a Sweep is answered with observe_stream()')
        return self._issue(super().observe(position, sharpness, noise=noise, signal=signal))

    def _issue(self, step):
        self._pending = step
        if isinstance(step, Sweep):
            self._sweep_target = step.target
        if not isinstance(step, Outcome):
            self.phase = step.phase
        return step

    def _steps(self) -> Steps:
        c = self.config
        what = 'fly-by scan'
        coarse = None
        if self.positions_while_moving:
            up = c.backlash > 0 or abs(self._here - c.range_min) <= abs(self._here - c.range_max)
            first, last = (c.range_min, c.range_max) if up else (c.range_max, c.range_min)
            if abs(self._here - first) > 1e-9:
                # To the pass's start at the pass's speed: a frame at rest there would add
                # a settle and a frame's latency for nothing. Its frames are reported but
                # the curve is the pass's alone (with backlash they lie the other way).
                yield Sweep(first, use_frames=False)
            stream = yield Sweep(last)
            self.stream = list(stream)
            gap = stream_gap(stream)
            ends = (min(p for p, _ in stream), max(p for p, _ in stream)) if stream else None
            if len(stream) < MIN_STREAM_SAMPLES or gap > c.coarse_step or \
                    ends[0] > c.range_min + c.coarse_step or \
                    ends[1] < c.range_max - c.coarse_step:
                self.fell_back = (f'the fly-by stream had {len(stream)} frames, widest gap '
                                  f'{gap:g}' + (f', from {ends[0]:g} to {ends[1]:g}' if ends
                                                else '') +
                                  f' (a gap over coarse_step {c.coarse_step:g}, an end '
                                  f'further than that from the range\'s, or fewer than '
                                  f'{MIN_STREAM_SAMPLES} frames: too fast for the frame '
                                  'rate, or frames dropped)')
            else:
                coarse = stream
                if self._texture_blurred_away(len(stream)):
                    dark = yield from self._texture_at_rest(stream)
                    if dark is not None:
                        return dark
                    what += ' (its texture checked at rest: motion blur hid it)'
        else:
            self.fell_back = ('the motor does not measure its position while moving '
                              '(position_measured false)')
        if coarse is None:
            what = 'stop-and-go coarse scan (' + self.fell_back + ')'
            coarse, flat = yield from self._coarse_scan()
            if flat:
                return flat
        else:
            # NO_SIGNAL, then FLAT_CURVE by contrast only: whether the peak stands out of
            # the noise is decided after the refine (:meth:`_confirm`).
            flat = self._judge(coarse, what, contrast_only=True)
            if flat:
                return flat
        reach = 0.5 * c.coarse_step
        edge = peak_beyond_edge(coarse, c.range_min, c.range_max, reach)
        if edge is not None:
            return (yield from self._leave_at_best(edge, coarse, what))
        spacing = max(stream_gap(coarse), 1e-9)
        estimate = gaussian_peak(coarse, tolerance=spacing * 1e-3)
        # The noise of one frame, from the curve's tails, where it is straight and where
        # motion blur changes little (as coarse_fine takes it from its coarse scan).
        tails = [p for p in coarse if abs(p[0] - estimate) >= 1.5 * c.coarse_step]
        bends = _bends(sorted(tails))
        noise = _noise(bends)
        # A weak peak (as coarse_fine's WEAK_PEAK; the tails' RMS, as their median may see
        # only a floor's ties): the refine measures its fitted top again for the noise there.
        weak = weak_peak([v for _, v in coarse], noise, bends)
        refined = yield from self._refine(estimate, noise, weak)
        dark = self._dark(what + ' + refine at rest')
        if dark is not None:
            return dark
        estimate = peak_fit(refined, c.fine_step * 1e-3).position
        if not self.fell_back:
            flat = yield from self._confirm(coarse, refined, estimate, what)
            if flat:
                return flat
        position, value = yield from self._final(estimate)
        outcome = _success(position, value, estimate, refined, what + ' + refine at rest',
                           find_peaks(coarse, c.bimodal_ratio))
        return outcome

    def _texture_blurred_away(self, count: int) -> bool:
        """Whether the last ``count`` samples (the pass) are lit but show no texture.

        A frame exposed while the lens moves is the mean of the images along its path, so
        its texture against the noise (the signal figures' snr) is lower than at rest: at
        2000 units/s a low-texture, noisy scene streamed no frame with texture above
        ``min_signal_snr`` where frames at rest had it (issue 12's speed table: 5 false
        NO_SIGNAL in 144 trials, 1 at 1000 units/s). Such a pass is checked at rest
        (:meth:`_texture_at_rest`). A dark pass is not: motion does not darken a frame.
        """
        c = self.config
        samples, signals = self.samples[-count:], self._signals[-count:]
        if _no_signal_outcome(samples, signals, c, 'fly-by scan') is None:
            return False
        best = max(range(count), key=lambda i: samples[i][1])
        return signals[best][0] >= c.min_signal_level     # not None: NO_SIGNAL needs figures

    def _texture_at_rest(self, stream: Sequence[Sample]) -> Generator[Move, Sample,
                                                                       Outcome | None]:
        """NO_SIGNAL unless most of :data:`TEXTURE_CHECK_FRAMES` frames at rest where the
        stream was sharpest show texture; then the stream is the coarse curve after all,
        and only frames at rest judge NO_SIGNAL from here on.

        Not a scan at rest of the whole range: on a textureless scene a flicker spike in
        one of its frames can show texture by chance and pass its flat rule (that claimed
        focus once in 120 flat scenes), while the majority of a few frames at one place
        does not; a real weak peak, blurred in the stream, shows texture at rest there.
        """
        c = self.config
        best = max(stream, key=lambda sample: sample[1])[0]
        for _ in range(TEXTURE_CHECK_FRAMES):
            yield from self._visit(best, 'fine')
        checked = self._signals[-TEXTURE_CHECK_FRAMES:]
        textured = [has_signal(signal, c) for signal in checked]
        self._signals_from = len(self.samples)      # the stream's figures judge no more
        if 2 * sum(textured) > len(textured):
            return None
        streamed = max(s[1] for s in self._signals[-len(stream) - len(checked):-len(checked)]
                       if s is not None)
        return failed_at_last(
            self.samples, NO_SIGNAL,
            f'no signal: no frame of the fly-by stream had texture above the noise '
            f'(at most {streamed:.1f}x; motion blur lowers it), and at rest at its '
            f'sharpest point ({best:g}) {sum(textured)} of {len(textured)} frames had '
            f'it (texture ' + ', '.join(f'{s[1]:.1f}' for s in checked if s) +
            f'x the noise); {signal_advice(c)}')

    def _confirm(self, stream: Sequence[Sample], refined: list[Sample], estimate: float,
                 what: str) -> Generator[Move, Sample, Outcome | None]:
        """FLAT_CURVE unless the frames at rest at the streamed peak stand out of the noise.

        The stream's single frames cannot judge their own peak: its sharpest frame is the
        largest of 30-odd noisy readings, and their scatter, taken by medians, collapses
        where a textureless frame's readings sit at the measure's floor with rare upward
        spikes (flicker, noise): that "peak" then looked infinitely significant. So the
        peak is measured again, at rest: the mean of the refine's frames within
        ``fine_step`` of the fitted peak must stand ``min_peak_significance`` standard
        errors over the stream's floor (the mean of its frames at least
        :data:`TAIL_DISTANCE` ``coarse_step`` from the peak); one frame's noise is the
        larger of the RMS of those frames' scatter about the straight line through their
        neighbours (:func:`_bends`; an RMS, so readings stuck at a floor cannot make it
        0) and the spread of the refine's repeated positions (the refine measures a weak
        or ambiguous top again, and chose the peak from those frames: the threshold, 8,
        leaves room for that choice). A weak peak short of that takes more frames at the
        fitted peak (at most :data:`MAX_CONFIRM_FRAMES`; none once even the frames left
        could not reach it at the height seen), as coarse_fine measures a weak scan again.
        Too few frames away from the peak: the stream's own judgement (contrast and
        scatter, as the other strategies' scans).
        """
        c = self.config
        stream = self._lit(stream)              # dark frames read the dark, not the floor
        spacing = max(stream_gap(stream), 1e-9)
        tails = sorted(s for s in stream if abs(s[0] - estimate) >= TAIL_DISTANCE * c.coarse_step)
        bends = _bends(tails, max_span=3.0 * spacing)
        if len(bends) < MIN_TAIL_BENDS:
            noise, dof = self._measured_noise()
            return _flat_outcome(stream, c, what, '', noise, dof)
        top = [v for p, v in refined if abs(p - estimate) <= 1.01 * c.fine_step]
        if not top:
            top = [min(refined, key=lambda sample: abs(sample[0] - estimate))[1]]
        floor = statistics.fmean(v for _, v in tails)
        scatter = math.sqrt(statistics.fmean(b * b for b in bends))

        def significance(count):
            # One frame's noise: the larger of the tails' scatter and the spread of the
            # positions measured more than once at rest (a few dozen single frames at a
            # floor can show little of the noise by chance).
            sigma = max(scatter, repeat_noise(refined, 1e-3 * c.fine_step)[0])
            error = sigma * math.sqrt(1.0 / count + 1.0 / len(tails))
            height = statistics.fmean(top) - floor
            return height / error if error > 0.0 else (math.inf if height > 0.0 else 0.0)

        extra = 0
        while (z := significance(len(top))) < c.min_peak_significance:
            # Give up once even the frames left, at the height seen so far, could not
            # reach the threshold (a flat scene's "peak" stops at once).
            if significance(len(top) + MAX_CONFIRM_FRAMES - extra) < c.min_peak_significance:
                break
            sample = yield from self._visit(estimate, 'fine')
            refined.append(sample)
            top.append(sample[1])
            extra += 1
        if z >= c.min_peak_significance:
            return None
        return failed_at_last(
            self.samples, FLAT_CURVE,
            f'no focus peak: the {what} varied by '
            f'{peak_contrast(v for _, v in stream):.1%}, but the {len(top)} frames '
            f'at rest around its sharpest point ({estimate:g}) stand only {z:.1f} '
            f'standard errors over the floor of the stream ({floor:.4g}, from '
            f'{len(tails)} frames away from it); a '
            f'peak needs {c.min_peak_significance:g}. The streamed peak was noise '
            f'(flicker?) or too weak for one pass: coarse_fine measures it again '
            f'at rest')

    def _refine(self, estimate: float, noise: float = 0.0, weak: bool = False):
        """Samples at rest around ``estimate`` until the sharpest has a neighbour each side
        and the fit is sure; a ``weak`` peak's fitted top measured again (the noise there,
        which a frame's signal raises over the floor's), and two tops within the noise
        measured again (:func:`rival_tops`), as coarse_fine's fine scan."""
        c = self.config
        clip = [min(max(estimate + k * c.fine_step, c.range_min), c.range_max)
                for k in range(-REFINE_STEPS, REFINE_STEPS + 1)]
        targets = sorted(set(clip))
        if c.backlash <= 0 and abs(targets[-1] - self._here) < abs(targets[0] - self._here):
            targets.reverse()
        # Back from the pass's end at the pass's speed, as far as the first target (below
        # it with backlash, to approach it from below): the frames on the way are reported,
        # not used (the refine is measured at rest). Not after a stop-and-go scan.
        back = targets[0] - (c.backlash if c.backlash > 0 and targets[0] < self._here else 0.0)
        back = min(max(back, c.range_min), c.range_max)
        if not self.fell_back and abs(back - self._here) > c.coarse_step:
            yield Sweep(back, use_frames=False)
        refined = []
        for target in targets:
            refined.append((yield from self._visit(target, 'fine')))
        budget = 2 * int(math.ceil(c.coarse_step / c.fine_step))
        tolerance = c.fine_step * 1e-3
        top_noise, top_measured = 0.0, not weak
        while budget > 0:
            points = _merge_duplicates(refined, tolerance)
            best = max(range(len(points)), key=lambda i: points[i][1])
            low = max(c.range_min, points[0][0] - c.fine_step)
            high = min(c.range_max, points[-1][0] + c.fine_step)
            fit = peak_fit(points, tolerance, max(noise, top_noise))
            if best == 0 and points[0][0] > c.range_min:
                targets = [low]
            elif best == len(points) - 1 and points[-1][0] < c.range_max:
                targets = [high]
            elif not top_measured and math.isfinite(fit.error):
                targets = nearest((x for x, _ in fit.fitted), fit.position, 3)
                top_measured = True
            elif again := rival_tops(refined, fit, max(noise, top_noise), c.coarse_step,
                                     tolerance):
                targets = nearest(again, fit.position, budget)
            elif fit.error > c.fine_step / 4.0:
                # A noisy top: a wider fit pins the vertex down (as coarse_fine does).
                targets = [t for t in (low, high) if all(abs(t - p) > 1e-9 for p, _ in points)]
            else:
                break
            if not targets:
                break
            budget -= len(targets)
            if c.backlash <= 0 and abs(targets[-1] - self._here) < abs(targets[0] - self._here):
                targets.reverse()
            for target in targets:
                refined.append((yield from self._visit(target, 'fine')))
            if weak and top_measured:
                top_noise = max(top_noise, repeat_noise(refined, tolerance)[0])
        return refined
