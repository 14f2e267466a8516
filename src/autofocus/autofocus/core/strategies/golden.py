"""``golden``: the coarse scan brackets the peak, golden-section search shrinks the bracket,
a parabola over the bracket gives the peak."""
from __future__ import annotations

import math
from autofocus.core.strategies.peak_fitting import (
    _merge_duplicates, _success, find_peaks, peak_beyond_edge, refine_peak)
from autofocus.core.strategies.search import Search, Steps


GOLDEN_FRACTION = (3.0 - math.sqrt(5.0)) / 2.0     # 0.382: golden-section step


class GoldenSearch(Search):
    """Coarse scan to bracket the global peak, golden-section search, parabola fit, go there.

    1. Coarse: as :class:`CoarseFineSearch` (a finer look before FLAT_CURVE; a second peak
       is reported as BIMODAL and the highest one is taken).
    2. Bracket ``(a, m, b)``: the best coarse sample ``m`` and its neighbours (a range end
       stands in for a missing neighbour), so ``f(m) >= f(a), f(b)``.
    3. Golden section: measure ``x`` at 0.382 of the larger of ``[a, m]`` and ``[m, b]``
       from ``m``; if ``f(x) > f(m)`` the peak is bracketed around ``x`` (``m = x``), else
       ``x`` becomes the new end on its side. Stop when ``b - a <= 2 * tol``
       (``tol = golden_tolerance``, or ``0.3 * fine_step`` when that is 0); at most 40 steps.
    4. Peak = :func:`refine_peak` over every sample inside the first bracket (least-squares
       parabola over the top half): noise that misled one golden comparison is averaged
       out by the fit. If no sample lies within ``tol / 2`` of ``estimate +- tol``, measure
       there and fit again (at most two frames). Final move (from below when
       ``backlash > 0``). A peak beyond an end of the range (:func:`peak_beyond_edge`):
       PEAK_OUT_OF_RANGE, the final move going to the sharpest sample.
    """

    name = 'golden'

    def _steps(self) -> Steps:
        c = self.config
        tol = c.golden_tolerance if c.golden_tolerance > 0 else 0.3 * c.fine_step
        coarse, flat = yield from self._coarse_scan()
        if flat:
            return flat
        ordered = _merge_duplicates(coarse, c.coarse_step * 1e-3)
        index = max(range(len(ordered)), key=lambda i: ordered[i][1])
        m, fm = ordered[index]
        a = ordered[index - 1][0] if index > 0 else c.range_min
        b = ordered[index + 1][0] if index < len(ordered) - 1 else c.range_max
        low, high = a, b
        steps = 0
        while b - a > 2.0 * tol and steps < 40:
            steps += 1
            if b - m >= m - a:
                x = m + GOLDEN_FRACTION * (b - m)
            else:
                x = m - GOLDEN_FRACTION * (m - a)
            if min(abs(x - m), abs(x - a), abs(x - b)) < tol * 1e-3:
                break
            x, fx = yield from self._visit(x, 'golden')
            if fx > fm:
                if x > m:
                    a = m
                else:
                    b = m
                m, fm = x, fx
            elif x > m:
                b = x
            else:
                a = x
        window = [s for s, phase in zip(self.samples, self._phases)
                  if low <= s[0] <= high and phase != 'backlash']
        estimate = refine_peak(window, tolerance=tol * 1e-3)
        # Polish: make sure the fit has samples tol either side of its estimate (noise may
        # have led the section away from one side), then fit again.
        for target in (estimate - tol, estimate + tol):
            target = min(max(target, c.range_min), c.range_max)
            if all(abs(target - p) >= tol / 2 for p, _ in window):
                window.append((yield from self._visit(target, 'golden')))
        samples = [s for s, phase in zip(self.samples, self._phases) if phase != 'backlash']
        dark = self._dark('golden-section search')
        if dark is not None:
            return dark
        edge = peak_beyond_edge(samples, c.range_min, c.range_max, 0.5 * c.coarse_step)
        if edge is not None:
            return (yield from self._leave_at_best(edge, samples, 'golden-section search'))
        estimate = refine_peak(window, tolerance=tol * 1e-3)
        position, value = yield from self._final(estimate)
        return _success(position, value, estimate, window, 'golden-section search',
                        find_peaks(coarse, c.bimodal_ratio))
