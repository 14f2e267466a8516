"""``sweep``: sample the whole range every ``sweep_step``, refine the best sample, go there."""
from __future__ import annotations

from autofocus.core.strategies.peak_fitting import (
    _success, find_peaks, peak_beyond_edge, refine_peak)
from autofocus.core.strategies.search import Search, Steps


class SweepSearch(Search):
    """Sample the whole range at ``sweep_step``, refine the best with a parabola, go there.

    Scans ``range_min..range_max`` inclusive (``range_max`` is always sampled), starting
    from the end nearer ``start_position`` to save travel. The peak estimate is
    :func:`refine_peak` over all samples; at a range end there is no fit. A flat curve ends
    with FLAT_CURVE after the scan, without a final move. A peak beyond an end of the range
    (the curve still rising toward it) ends with PEAK_OUT_OF_RANGE, the lens at the
    sharpest sample.
    """

    name = 'sweep'

    def _steps(self) -> Steps:
        c = self.config
        scanned = yield from self._scan(c.range_min, c.range_max, c.sweep_step, 'sweep')
        flat = self._judge(scanned, 'sweep', f', or its peak is narrower than the '
                           f'sweep step ({c.sweep_step:g})')
        if flat:
            return flat
        dark = self._dark('sweep')
        if dark is not None:
            return dark
        edge = peak_beyond_edge(scanned, c.range_min, c.range_max, c.sweep_step)
        if edge is not None:
            return (yield from self._leave_at_best(edge, scanned, 'sweep'))
        estimate = refine_peak(scanned, tolerance=c.sweep_step * 1e-3)
        position, value = yield from self._final(estimate)
        return _success(position, value, estimate, scanned, 'sweep',
                        find_peaks(scanned, c.bimodal_ratio))
