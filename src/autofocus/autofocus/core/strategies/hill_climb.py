"""``hill_climb``: relative moves only, for motors without a position reference."""
from __future__ import annotations

import math
import statistics

from typing import Generator
from autofocus.core.strategies.base import FLAT_CURVE, Move, Outcome, Sample
from autofocus.core.strategies.peak_fitting import (
    _merge_duplicates, _out_of_range, _parabola, _success, peak_beyond_edge, peak_contrast,
    refine_peak)
from autofocus.core.strategies.search import Search, Steps, _compare, _ordered_scan

# The climb's top is a peak only when the curve falls off on both sides of it by
# CONFIRM_SIGMAS standard errors (of the top's fresh frames against each side's) as sure
# as with a known noise: the noise of one frame is estimated from the search's repeated
# frames, so the bar is Student's t at the same one-sided level (0.135 %) for their
# degrees of freedom (T_CRITICAL[dof - 1]; a strong peak is sure after a few repeats, a
# tail's noise needs many). Measured again up to CONFIRM_ROUNDS times while undecided.
# Where one side does not fall, the climb goes on that way, at most CONFIRM_CLIMBS times.
CONFIRM_SIGMAS = 3.0
CONFIRM_DOF = 2
T_CRITICAL = (235.8, 19.21, 9.22, 6.62, 5.51, 4.9, 4.53, 4.28, 4.09, 3.96, 3.85, 3.76, 3.69,
              3.64, 3.59, 3.54, 3.51, 3.48, 3.45, 3.42, 3.4, 3.38, 3.36, 3.34, 3.33, 3.32,
              3.3, 3.29, 3.28, 3.27)
CONFIRM_ROUNDS = 3
CONFIRM_CLIMBS = 2
# A focus peak falls, 2 climb steps out, by at least this part of its height (see
# HillClimbSearch._check_top).
SHOULDER_FALL = 0.2


def _critical(dof: int) -> float:
    """The bar for a fall measured with a noise estimated at ``dof`` degrees of freedom."""
    if dof < 1:
        return math.inf
    if dof <= len(T_CRITICAL):
        return T_CRITICAL[dof - 1]
    return CONFIRM_SIGMAS + 8.0 / dof


class _Climb:
    """Where a hill climb is and what it has seen (positions as reported by observe())."""

    def __init__(self, position: float, value: float):
        self.position = position
        self.seen: list[Sample] = [(position, value)]
        self.moves = 1                # the initial "measure here" move

    @property
    def best(self) -> Sample:
        return max(self.seen, key=lambda sample: sample[1])


class HillClimbSearch(Search):
    """Climb the sharpness curve with relative moves; reverse and halve the step past the top.

    Every Move is relative (``target`` is an offset); positions come only from what
    :meth:`observe` reports, so a motor without a home switch works. Each new sample ``s`` is
    compared with ``ref``, the sharpness at the previous position, with ``nb = noise_band``:
    a rise is ``s > ref * (1 + nb)``, a fall ``s < ref * (1 - nb)``, anything else is noise.

    - First move: offset 0.0, i.e. measure where the lens is. Then step ``+climb_step``.
    - Rise or noise: keep direction and step (a flat stretch far out of focus is crossed,
      not mistaken for the top).
    - Fall on the very first step: the peak is on the other side of the start, so reverse
      and jump two steps (the start is already measured). If that side is lower than the
      start too, the top is within one step of the start: reverse again and halve.
    - Any later fall: reverse; halve the step if a rise has been seen (the top has been
      crossed), otherwise keep it (we were walking away from the peak in the tail).
    - Two rises in a row that also beat the best sharpness seen double the step again (up to
      ``climb_step``): a halving caused by noise far from the top must not leave the climb
      crawling there.
    - Reaching ``range_min``/``range_max`` counts as a fall (a wall).
    - Stop when the step is below ``climb_min_step``, or when the climb has made as many
      moves as it takes to cross the range at ``climb_step`` (plus two) without beating
      its best sample by more than the noise band: a flat curve (no rise ever halves the
      step) used to bounce between the walls until ``climb_max_moves``.
    - Check the top (:meth:`_check_top`): the climb only sees the part of the curve it
      visits, and it stops on anything that falls both ways within a step: noise far out
      in a flat tail (in high noise those bumps reach 30-40 % contrast) or a second
      plane's bump on the main peak's flank. So measure the best position again and
      probe ``best -/+ 2 * climb_step``; a peak falls off on both sides by
      ``CONFIRM_SIGMAS`` standard errors of the top's fresh frames against the probe's
      (the noise from the search's repeated frames; the bar Student's t for its degrees
      of freedom), measured again up to ``CONFIRM_ROUNDS`` times while undecided, and by
      at least ``SHOULDER_FALL`` (a fifth) of its height over the lowest lit sample. A
      probe sharper than everything seen, or a side that does not fall while the other
      does (a shoulder, a bump), sends the climb on that way from that probe (at most
      ``CONFIRM_CLIMBS`` times); a side that falls into black frames (below
      ``min_signal_level``) is the light going, not focus.
    - No top shown (neither side falls, or the best frame has no signal): look over the
      range once at ``2 * climb_step`` from the nearer end (half a crossing) and climb from
      its sharpest lit sample, unless that stands less than ``CONFIRM_SIGMAS`` noise
      sigmas over the look's median or its contrast is below ``min_peak_contrast``; then
      check that top. A start near focus never needs the look; a start in a flat tail
      far from focus, where no climb can tell which way to go, costs 11 frames more.
    - Still no top shown: FLAT_CURVE, the message naming the best position, the noise and
      why (:meth:`_unconfirmed`).
    - A shown top is judged by the contrast floor (``min_peak_contrast``) and the signal
      floor only (:meth:`Search._judge` with ``contrast_only``): the check above weighed
      it against the noise already.
    - No peak: FLAT_CURVE (or NO_SIGNAL), no final move.
    - The sharpest sample at a range end with the curve still rising toward it
      (:func:`peak_beyond_edge`): go back to that sample; PEAK_OUT_OF_RANGE.
    - Otherwise go to the peak (:meth:`_estimate`): :func:`refine_peak` over all samples
      (least-squares parabola around the best sample; the samples are dense near the top,
      so this is steadier than the best sample alone, and it stays within the samples
      around the best; the best ranked by its mean less its standard error once the noise
      is known), as a relative move from the last reported position; Outcome.

    At most ``climb_max_moves`` moves in all, final move included. Set ``noise_band`` above
    the measure's frame-to-frame jitter: a noise "fall" in the tail turns the climb round.
    """

    name = 'hill_climb'

    def _steps(self) -> Steps:
        c = self.config
        position, value = yield Move(0.0, relative=True, phase='climb')
        climb = _Climb(position, value)
        yield from self._climb(climb, direction=1.0, first=True)
        shown = yield from self._confirm(climb)
        if not shown or self._dark('hill-climb') is not None:
            # Nothing to climb from where it started (a flat or dark tail far from focus,
            # or noise): look over the range once, and climb from the sharpest there.
            if (yield from self._look(climb)):
                shown = yield from self._confirm(climb)

        # A shown top has been weighed against the noise already (more closely than the
        # flat rule's whole-curve height against 8 sigmas, which refused real low-texture
        # peaks 6-7 sigmas high in high noise): only the contrast floor and the signal
        # floor are left to check.
        flat = self._judge(climb.seen, 'hill-climb', contrast_only=shown)
        if flat:
            return flat
        if not shown:
            return self._unconfirmed(climb)
        dark = self._dark('hill-climb')
        if dark is not None:
            return dark
        edge = peak_beyond_edge(climb.seen, c.range_min, c.range_max, c.climb_step)
        if edge is not None:
            estimate = climb.best[0]          # leave the lens at the sharpest sample
        else:
            estimate = self._clamp(self._estimate(climb))
        if c.backlash > 0 and climb.position > estimate - c.backlash:
            # Final approach from below, overshooting by the backlash (see module docstring).
            position, _ = yield Move(self._clamp(estimate - c.backlash) - climb.position,
                                     relative=True, phase='backlash')
            climb.position = position
        position, value = yield Move(estimate - climb.position, relative=True, phase='final')
        if edge is not None:
            return _out_of_range(position, value, edge, c.range_min, c.range_max, climb.seen,
                                 'hill-climb')
        return _success(position, value, estimate, climb.seen, 'hill climb')

    def _confirm(self, climb: _Climb) -> Generator[Move, Sample, bool]:
        """Whether the curve falls off on both sides of the climb's best sample, beyond the
        noise; where it does not fall on one side (a shoulder, a bump of a second plane, or
        noise far out in a tail), climb again that way (at most ``CONFIRM_CLIMBS`` times).
        False: no peak shown (the lens is where the last check left it)."""
        explored: list[tuple[float, float]] = []   # (top, direction) climbed from already
        for _ in range(CONFIRM_CLIMBS + 1):
            top = climb.best[0]
            verdict = yield from self._check_top(climb, explored)
            if verdict is True or verdict is None:
                return bool(verdict)
            explored.append((top, verdict))
            # From that side's probe (the lens may be at the other one), outwards.
            probe = self._clamp(top + 2.0 * verdict * self.config.climb_step)
            if abs(climb.position - probe) > 0.1 * self.config.climb_min_step:
                if not self._can_move(climb, probe):
                    return False
                yield from self._go(climb, probe)
            yield from self._climb(climb, direction=verdict, first=False, rose=True)
        return False

    def _check_top(self, climb: _Climb, explored: list[tuple[float, float]]
                   ) -> Generator[Move, Sample, bool | float | None]:
        """Measure the best sample again and the curve ``2 * climb_step`` either side.

        The best sample is the highest of many noisy ones, so only its fresh frames count
        as its value. Each side falls when the top's fresh mean exceeds the mean there by
        ``CONFIRM_SIGMAS`` standard errors of the difference (Student's t for the noise's
        degrees of freedom, :data:`T_CRITICAL`), the noise of one frame being what this
        search measured at positions it saw more than once; while a side is in between,
        the three are measured again, up to ``CONFIRM_ROUNDS`` rounds.

        Both sides falling is not enough: a second plane's bump on the flank of the main
        peak is a real local top, a few percent over the valley beside it (the simulator's
        two-planes scene; a climb from the far end stopped there, 7 depths of field from
        focus). A focus peak falls, 2 climb steps out, by a large part of its height over
        the lowest sample seen (70-77 % on the simulator's scenes, 29 % at worst on the
        real fpd stack, whose peak is broad): a side falling less than
        ``SHOULDER_FALL`` of it is climbed on, once per top (``explored``).

        Returns True (both sides fall: a peak), a direction (-1.0 / 1.0) to climb again
        from (a probe sharper than the best seen, or a side that shows no fall while the
        other does: the climb stopped on a shoulder), or None (neither side falls: noise
        in a tail, no peak here; a side falls into frames below ``min_signal_level``,
        the lit edge of a dark range; or no move budget left to tell).
        """
        c = self.config
        top, record = climb.best
        tolerance = 0.1 * c.climb_min_step
        sides = {}
        for direction in (-1.0, 1.0):
            probe = self._clamp(top + 2.0 * direction * c.climb_step)
            if abs(probe - top) >= c.climb_min_step / 2:      # else a wall: nothing beyond
                sides[direction] = probe
        if not sides:
            return True                                      # the range is one step wide
        fresh = len(climb.seen)
        scores: dict[float, float] = {}
        for _ in range(CONFIRM_ROUNDS):
            # Nearer probe, top, farther probe: the fewest moves back and forth.
            probes = sorted(sides.items(), key=lambda item: abs(item[1] - climb.position))
            plan = [probes[0], (0.0, top)] + probes[1:]
            for direction, target in plan:
                if climb.moves >= c.climb_max_moves - 1:
                    return None
                value = yield from self._go(climb, target)
                if direction and _compare(value, record, c.noise_band) > 0:
                    return direction     # sharper than anything seen: the climb stalled
            dark = {sample for sample, signal in zip(self.samples, self._signals)
                    if signal is not None and signal[0] < c.min_signal_level}
            if any(all((p, v) in dark for p, v in climb.seen if abs(p - probe) <= tolerance)
                   for probe in sides.values()):
                return None      # a fall into black frames is the light going, not focus
            noise, dof = self._measured_noise()
            top_values = [v for p, v in climb.seen[fresh:] if abs(p - top) <= tolerance]
            for direction, probe in sides.items():
                values = [v for p, v in climb.seen if abs(p - probe) <= tolerance]
                drop = statistics.fmean(top_values) - statistics.fmean(values)
                error = noise * math.sqrt(1.0 / len(top_values) + 1.0 / len(values))
                scores[direction] = drop / error if error > 0 else math.copysign(
                    math.inf, drop) if drop else 0.0
            bar = _critical(dof)
            if dof >= CONFIRM_DOF and all(z >= bar for z in scores.values()):
                return self._shoulder(climb, top, top_values, sides, explored)
            if dof >= 2 * CONFIRM_DOF and all(z < 1.0 for z in scores.values()):
                return None                  # flat both ways: more frames will not help
        if max(scores.values()) >= bar:
            return min(scores, key=scores.__getitem__)   # falls one way only: go the other
        return None

    def _estimate(self, climb: _Climb) -> float:
        """The peak: :func:`refine_peak`'s parabola over the top half, centred on the
        position whose mean is highest less its standard error (the noise measured by the
        repeats over the square root of its frame count), not on the highest mean: a single
        frame a noise sigma or two high, a few steps from the checked top, otherwise pulls
        the fit to itself (a low-texture, high-noise climb ended 1.3 depths of field off
        that way). Without measured noise, :func:`refine_peak` itself."""
        tolerance = 0.1 * self.config.climb_min_step
        noise, dof = self._measured_noise()
        groups: list[list] = []                  # [position, [values]] sorted by position
        for position, value in sorted(climb.seen):
            if groups and position - groups[-1][0] <= tolerance:
                groups[-1][1].append(value)
            else:
                groups.append([position, [value]])
        if noise <= 0.0 or dof < CONFIRM_DOF or len(groups) < 3:
            return refine_peak(climb.seen, tolerance=self.config.climb_min_step * 1e-3)
        points = [(x, statistics.fmean(vs)) for x, vs in groups]
        best = max(range(len(groups)), key=lambda i: points[i][1] - noise / math.sqrt(
            len(groups[i][1])))
        if best in (0, len(points) - 1):
            return points[best][0]
        values = [v for _, v in points]
        threshold = min(values) + 0.5 * (max(values) - min(values))
        low, high = best - 1, best + 1
        while low > 0 and values[low - 1] >= threshold:
            low -= 1
        while high < len(points) - 1 and values[high + 1] >= threshold:
            high += 1
        run = points[low:high + 1]
        x_best = points[best][0]
        a, b, _, _ = _parabola([(x - x_best, y) for x, y in run])
        if a >= 0.0:
            return x_best
        return min(max(x_best - b / (2.0 * a), run[0][0]), run[-1][0])

    def _look(self, climb: _Climb) -> Generator[Move, Sample, bool]:
        """The range at ``2 * climb_step`` from the nearer end, then a climb from its
        sharpest lit sample; False (no climb) when the look's contrast is below
        ``min_peak_contrast`` or its sharpest sample stands less than ``CONFIRM_SIGMAS``
        noise sigmas over its median (flat), or the move budget ran out."""
        c = self.config
        look = []
        for target in _ordered_scan(c.range_min, c.range_max, 2.0 * c.climb_step,
                                    climb.position):
            if climb.moves >= c.climb_max_moves - 2:
                return False
            look.append((yield from self._go(climb, target)))
        lit = self._lit([(p, v) for p, v in climb.seen[-len(look):]])
        values = [v for _, v in lit]
        if peak_contrast(values) < c.min_peak_contrast:
            return False
        noise, dof = self._measured_noise()
        if dof >= CONFIRM_DOF and max(values) - statistics.median(values) < CONFIRM_SIGMAS * noise:
            return False             # its sharpest is within the noise the search measured
        best = max(lit, key=lambda sample: sample[1])[0]
        if self._can_move(climb, best):
            yield from self._go(climb, best)
        yield from self._climb(climb, direction=1.0, first=True)
        return True

    def _shoulder(self, climb: _Climb, top: float, top_values: list[float],
                  sides: dict[float, float], explored: list[tuple[float, float]]
                  ) -> bool | float:
        """True, or the side to climb on: one falling less than ``SHOULDER_FALL`` of the
        top's height over the lowest position seen, not yet climbed from this top."""
        tolerance = 0.1 * self.config.climb_min_step
        means = {p: v for p, v in _merge_duplicates(self._lit(climb.seen), tolerance)}
        top_value = statistics.fmean(top_values)
        height = top_value - min(means.values())
        for direction, probe in sides.items():
            fall = top_value - statistics.fmean(
                [v for p, v in climb.seen if abs(p - probe) <= tolerance])
            done = any(abs(t - top) <= self.config.climb_min_step and d == direction
                       for t, d in explored)
            if fall < SHOULDER_FALL * height and not done:
                return direction
        return True

    def _unconfirmed(self, climb: _Climb) -> Outcome:
        """FLAT_CURVE: the climb found no place where the curve falls off both ways."""
        c = self.config
        positions = [p for p, _ in climb.seen]
        position, value = climb.seen[-1]
        noise, dof = self._measured_noise()
        return Outcome(
            success=False, position=position, sharpness=value, error=FLAT_CURVE,
            message=(f'no focus peak: over {len(climb.seen)} hill-climb positions '
                     f'{min(positions):g}..{max(positions):g} the sharpest sample, at '
                     f'{climb.best[0]:g}, does not stand {CONFIRM_SIGMAS:g} noise sigmas '
                     f'(one frame: {noise:.3g}, from {dof} repeated frames) over the curve '
                     f'{2 * c.climb_step:g} away on both sides when measured again: the climb '
                     f'stopped on noise or on a flat tail far from focus. Start nearer focus, '
                     f'or use an absolute strategy (coarse_fine) that scans the range'))

    def _clamp(self, target: float) -> float:
        return min(max(target, self.config.range_min), self.config.range_max)

    def _can_move(self, climb: _Climb, target: float) -> bool:
        """Budget left (one move is kept for the final move) and a move worth making."""
        return (climb.moves < self.config.climb_max_moves - 1
                and abs(target - climb.position) >= self.config.climb_min_step / 2)

    def _go(self, climb: _Climb, target: float) -> Generator[Move, Sample, float]:
        """Relative move to the absolute ``target``; returns the sharpness measured there."""
        position, value = yield Move(target - climb.position, relative=True, phase='climb')
        climb.position = position
        climb.moves += 1
        climb.seen.append((position, value))
        return value

    def _climb(self, climb: _Climb, direction: float, first: bool,
               rose: bool = False) -> Generator[Move, Sample, None]:
        """The climb proper, from the current position (see the class docstring)."""
        c = self.config
        step = c.climb_step
        ref = climb.seen[-1][1]       # sharpness at the current position
        rises_in_row = 0
        stall_limit = int(math.ceil((c.range_max - c.range_min) / c.climb_step)) + 2
        stalled = 0                   # moves since the best sample was beaten
        while (step >= c.climb_min_step and climb.moves < c.climb_max_moves - 1
               and stalled < stall_limit):
            target = self._clamp(climb.position + direction * step)
            if not self._can_move(climb, target):
                # Against a wall (a range end): turn round, as after a fall.
                if rose:
                    step /= 2.0
                direction = -direction
                first = False
                if not self._can_move(climb, self._clamp(climb.position + direction * step)):
                    return            # walls both ways: the range is narrower than a step
                continue
            record = climb.best[1]
            value = yield from self._go(climb, target)
            stalled = 0 if _compare(value, record, c.noise_band) > 0 else stalled + 1
            change = _compare(value, ref, c.noise_band)
            rises_in_row = rises_in_row + 1 if change > 0 else 0
            if change > 0:
                rose = True
                if (rises_in_row >= 2 and step < c.climb_step
                        and _compare(value, record, c.noise_band) > 0):
                    # Climbing steadily above anything seen: an earlier halving was caused by
                    # noise, not by the top, so win the speed back. (Re-climbing known ground
                    # after an overshoot never beats the record, so this cannot oscillate.)
                    step = min(2.0 * step, c.climb_step)
                    rises_in_row = 0
            elif change < 0 and first:
                # The first step went downhill: try the other side of the start.
                start_value = ref
                direction = -direction
                jump = self._clamp(climb.position + 2.0 * direction * step)
                if self._can_move(climb, jump):
                    value = yield from self._go(climb, jump)
                    side = _compare(value, start_value, c.noise_band)
                    if side < 0:
                        # Lower on both sides: the top is within a step of the start.
                        direction = -direction
                        step /= 2.0
                    rose = rose or side != 0
            elif change < 0:
                if rose:
                    step /= 2.0
                direction = -direction
            first = False
            ref = value
