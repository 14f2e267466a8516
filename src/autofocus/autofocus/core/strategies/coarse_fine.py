"""``coarse_fine`` (default): coarse scan, Gaussian-placed short fine scan, densified only
while the fitted peak is uncertain."""
from __future__ import annotations

import math
from typing import Sequence
from autofocus.core.strategies.base import Sample
from autofocus.core.strategies.peak_fitting import (
    PeakFit, _bends, _merge_duplicates, _noise, _success, find_peaks, gaussian_peak,
    gaussian_width, nearest, peak_beyond_edge, peak_fit, repeat_noise, rival_tops, weak_peak)
from autofocus.core.strategies.search import Search, Steps


# A peak whose coarse Gaussian is wider (sigma) than this many fine steps is sampled at a
# fraction of its own width, not at the fine step: at the fine step its top is flat
# within the noise and a real lens's ripple, and densifying it spent 20 frames on the
# real fpd sweep (sigma ~17 mm, fine step 1.3 mm) for nothing.
BROAD_PEAK = 10.0


class CoarseFineSearch(Search):
    """Coarse scan, short fine scan around the fitted coarse peak, more samples while unsure.

    1. Coarse: ``range_min..range_max`` at ``coarse_step`` (from the end nearer the motor).
       If its contrast is below ``min_peak_contrast``, take a finer look before calling it
       flat: measure halfway to each neighbour of the best sample (at most two frames; see
       :meth:`Search._coarse_scan`). A low-texture peak that fell between two coarse samples
       shows there; a flat scene stays flat -> FLAT_CURVE, no further moves.
    2. Coarse estimate: :func:`gaussian_peak`, a Gaussian over the curve's floor through the
       best coarse sample and its two neighbours. A parabola through the same three points
       is biased towards the best sample by up to a quarter of ``coarse_step``; the
       Gaussian lands within a fine step or two of the peak.
    2b. A broad peak: when the Gaussian is wider (sigma) than ``BROAD_PEAK`` (10) fine
       steps and ``fine_span`` is 0, measure at the estimate and half a sigma either side
       (3 frames), fit the parabola over the top half of every sample (:func:`peak_fit`),
       and go there (steps 5 on). At the fine step such a top is flat within the noise and
       a real lens's ripple (the fpd sweep's ~4 mm): densifying it took 36 frames there,
       this 15, 0.27 mm from the ROI's full-resolution peak at worst over 40 starts.
    3. Fine: from ``estimate - span`` to ``estimate + span`` at ``fine_step`` (``span =
       fine_span``, or ``2 * fine_step`` when that is 0; clipped to the range), from the end
       nearer the motor. A position within ``fine_step / 2`` of a sample already taken is
       not measured again.
    4. Until the peak is known well enough, add samples (at most ``2 * coarse_step /
       fine_step`` more frames), one rule per round:

       - the best sample has no sample within ``1.5 * fine_step`` on one side (the coarse
         estimate was off): measure one ``fine_step`` past it on that side;
       - fit the peak (:func:`peak_fit`: least-squares parabola over the densely sampled
         top half); fewer than two of the fitted samples on one side of its vertex, and
         nothing measured one ``fine_step`` past them: measure there;
       - a weak peak (:func:`weak_peak`: lower than ``WEAK_PEAK`` noise sigmas): the three
         fitted samples nearest the vertex measured again, once; from then on the noise is at least
         their repeats' spread (a frame's noise grows with its signal, and tails that
         read the measure's floor show little of it);
       - a second top within the noise of the best, left out of the fit
         (:func:`rival_tops`): both and the samples between measured again;
       - the standard error of the vertex is at most ``fine_step / 4``: done. The noise of
         one sample is the larger of the fit's residuals and the noise seen where the
         curve is straight (:func:`_bends`: the coarse scan away from the peak, and the
         dense samples except the tip);
       - otherwise measure halfway between neighbouring samples of the top half (and the
         samples just outside it) more than ``1.5 * fine_step`` apart or, once the top
         is sampled at ``fine_step``, more than ``0.75 * fine_step`` apart.

       A clear peak stops after the first fit. A weak one (low texture, noise comparable
       to its height) widens and densifies the scan over its top half until the fit is
       sure: that is what keeps it within ``fine_step`` of the peak.
    5. Peak = the fit over all the samples; final move; Outcome with the sharpness
       measured there. If the sharpest sample is at an end of the range and the curve
       still rises toward it (:func:`peak_beyond_edge`), PEAK_OUT_OF_RANGE instead, the
       final move going to that sample.

    The default strategy, and the fastest reliable one: about 11 coarse + 5 fine frames +
    the final move for the default range (17; one or two more with backlash), a sixth of
    a sweep at the fine step; 30-40 frames on a weak peak. On the simulator and on noisy
    synthetic curves whose half width is comparable to the coarse step it ends within one
    ``fine_step`` of the peak. Use ``sweep`` for curves narrower than the coarse step.
    """

    name = 'coarse_fine'

    def _steps(self) -> Steps:
        c = self.config
        coarse, flat = yield from self._coarse_scan()
        if flat:
            return flat
        scanned = list(coarse)        # every sample: the fits use them all
        tolerance = c.fine_step * 1e-3
        gap = 1.5 * c.fine_step       # samples further apart than this are not dense
        peak = max(coarse, key=lambda sample: sample[1])[0]
        tails = _bends(sorted(s for s in coarse if abs(s[0] - peak) >= 1.5 * c.coarse_step))
        estimate = gaussian_peak(coarse, tolerance=c.coarse_step * 1e-3)
        width = gaussian_width(coarse, tolerance=c.coarse_step * 1e-3)
        if c.fine_span <= 0 and width is not None and width > BROAD_PEAK * c.fine_step:
            return (yield from self._broad(scanned, coarse, estimate, width))
        span = c.fine_span if c.fine_span > 0 else 2.0 * c.fine_step
        low = max(c.range_min, estimate - span)
        high = min(c.range_max, estimate + span)
        scanned += yield from self._scan(low, high, c.fine_step, 'fine', skip=scanned)

        budget = 2 * int(math.ceil(c.coarse_step / c.fine_step))
        top_noise, top_measured = 0.0, False
        while budget > 0:
            points = _merge_duplicates(scanned, tolerance)
            best = max(range(len(points)), key=lambda i: points[i][1])
            # Noise: the coarse scan's tails, and the dense samples except the tip (their
            # median ignores the few bends that are the curve's), and once measured, the
            # noise at the top (below). Whether the peak is weak: against the tails' RMS
            # too, as where most of them read the measure's floor their median sees
            # little but the floor's ties.
            bends = tails + _bends(points, max_span=2.0 * gap, skip=points[best][0])
            noise = max(_noise(bends), top_noise)
            fit = peak_fit(points, tolerance, noise, max_gap=gap)
            weak = weak_peak([v for _, v in points], noise, tails)
            if best > 0 and points[best][0] - points[best - 1][0] > gap:
                targets = [points[best][0] - c.fine_step]
            elif best < len(points) - 1 and points[best + 1][0] - points[best][0] > gap:
                targets = [points[best][0] + c.fine_step]
            elif (below := self._beyond(fit, points, -1.0)) is not None:
                targets = [below]
            elif (above := self._beyond(fit, points, 1.0)) is not None:
                targets = [above]
            elif weak and not top_measured and math.isfinite(fit.error):
                # A weak peak: the noise above is mostly the floor's, and a frame's noise
                # grows with its signal (shot noise, flicker), so the fit would trust its
                # top too much (a low-texture, high-noise scan ended 1.09 depth of field
                # off, sure of its fit). Measure the three fitted samples nearest the
                # vertex again: the spread of the repeats is the noise there.
                targets = nearest((x for x, _ in fit.fitted), fit.position, 3)
                top_measured = True
            elif again := rival_tops(scanned, fit, noise, c.coarse_step, tolerance):
                # Two tops within the noise: measure them (and what lies between) again.
                targets = nearest(again, fit.position, budget)
            elif fit.error <= c.fine_step / 4.0:
                break
            else:
                targets = (_split_gaps(fit.run, gap)
                           or _split_gaps(fit.run, 0.5 * gap))
                # Over budget: the ones nearest the estimate.
                targets = nearest(targets, fit.position, budget)
            if not targets:
                break
            budget -= len(targets)
            if c.backlash <= 0 and abs(targets[-1] - self._here) < abs(targets[0] - self._here):
                targets.reverse()             # from the nearer end (upwards with backlash)
            for target in targets:
                scanned.append((yield from self._visit(target, 'fine')))
            if top_measured:
                span = (min(targets) - tolerance, max(targets) + tolerance)
                top_noise = max(top_noise, repeat_noise(
                    [s for s in scanned if span[0] <= s[0] <= span[1]], tolerance)[0])

        return (yield from self._finish(scanned, coarse, tolerance, max_gap=gap))

    def _broad(self, scanned: list[Sample], coarse: Sequence[Sample], estimate: float,
               width: float) -> Steps:
        """A peak many fine steps wide: its top half at ``width / 2`` around the estimate."""
        c = self.config
        step = 0.5 * width
        targets = [min(max(estimate + k * step, c.range_min), c.range_max) for k in (-1, 0, 1)]
        targets = [t for t in targets
                   if all(abs(t - p) >= c.fine_step / 2 for p, _ in scanned)]
        if c.backlash <= 0 and targets and \
                abs(targets[-1] - self._here) < abs(targets[0] - self._here):
            targets.reverse()
        for target in targets:
            scanned.append((yield from self._visit(target, 'fine')))
        return (yield from self._finish(scanned, coarse, c.fine_step * 1e-3))

    def _finish(self, scanned: list[Sample], coarse: Sequence[Sample], tolerance: float,
                **fit_options) -> Steps:
        """The end of either fine scan: PEAK_OUT_OF_RANGE, NO_SIGNAL, or the fitted peak."""
        c = self.config
        edge = peak_beyond_edge(scanned, c.range_min, c.range_max, 0.5 * c.coarse_step)
        if edge is not None:
            return (yield from self._leave_at_best(edge, scanned, 'coarse-to-fine scan'))
        dark = self._dark('coarse-to-fine scan')
        if dark is not None:
            return dark
        estimate = peak_fit(scanned, tolerance, **fit_options).position
        position, value = yield from self._final(estimate)
        return _success(position, value, estimate, scanned, 'coarse-to-fine scan',
                        find_peaks(coarse, c.bimodal_ratio))

    def _beyond(self, fit: PeakFit, points: Sequence[Sample], side: float) -> float | None:
        """A position one ``fine_step`` past the fitted samples on ``side`` (-1 below, +1
        above) if fewer than two of them lie on that side of the vertex and nothing has
        been measured there yet (inside the range); else None."""
        c = self.config
        if sum(side * (x - fit.position) > 0 for x, _ in fit.fitted) >= 2:
            return None
        edge = fit.fitted[0][0] if side < 0 else fit.fitted[-1][0]
        target = min(max(edge + side * c.fine_step, c.range_min), c.range_max)
        if any(abs(target - x) < c.fine_step / 2 for x, _ in points):
            return None
        return target


def _split_gaps(points: Sequence[Sample], wider_than: float) -> list[float]:
    """Midpoints of the gaps between consecutive ``points`` wider than ``wider_than``."""
    return [(a[0] + b[0]) / 2.0 for a, b in zip(points, points[1:]) if b[0] - a[0] > wider_than]
