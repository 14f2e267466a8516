"""Focus search policies as plain state machines: "sharpness at p" in, "move to q" / "done" out.

No ROS and no timing here: the focus action server asks a :class:`Search` for its first
:class:`Move`, moves the motor, waits for a frame exposed after the motor settled, measures
its sharpness, and reports both through :meth:`Search.observe`, which answers with the next
Move or the final :class:`Outcome`.

Each strategy is written as a Python generator (``yield Move`` receives
``(position, sharpness)``; ``return Outcome``) and wrapped by :class:`Search`, so the control
flow reads top to bottom instead of as a hand-written state table.

Strategies
----------
- ``sweep``: sample the whole range every ``sweep_step``, refine the best sample with a
  parabola, go there. Slow, simple, robust; the reference the others are judged against.
- ``coarse_fine`` (default): coarse scan at ``coarse_step``, a Gaussian fit of its top three
  samples, a short fine scan (+-2 ``fine_step``) around that, then more fine samples only
  while the parabola fitted to the top is uncertain (a weak or noisy peak), go there.
  About 17 frames for the default range (a sixth of a sweep at the fine step), 30-40 on a
  weak peak, 15 on a peak wider than 10 fine steps (sampled at its own width): the
  fastest of the reliable strategies.
- ``golden``: the coarse scan brackets the global peak (``coarse_step`` either side of the
  best coarse sample), then golden-section search shrinks the bracket to
  ``golden_tolerance`` and a least-squares parabola over every sample in the bracket gives
  the peak. Each golden step cuts the bracket by 0.618, so +-100 units reach +-5 in about 7
  frames: about 20 frames for the default range, whatever the peak. Its comparisons of
  single noisy frames make it less reliable than coarse_fine on weak peaks and bumpy tops.
- ``hill_climb``: relative moves only, for motors without a position reference (e.g. a DC
  motor on a gear): climb with ``climb_step``, reverse and halve the step each time the
  sharpness falls past the top, stop below ``climb_min_step``; then measure the top again
  and 2 steps either side, and claim focus only where the curve falls off both ways
  beyond the noise (else climb on, or look over the range once and climb from its best,
  or FLAT_CURVE); go to the peak fitted around the best place seen.
- ``flyby``: one constant-speed pass over the range while frames stream (each placed by
  the motor's stamped positions at its exposure time: :class:`Sweep`,
  :func:`stream_samples`), then a short refine at rest around the streamed peak. The
  fastest where the motor reports its position while moving; stop-and-go otherwise.

Backlash: with ``SearchConfig.backlash > 0`` every position whose sample is used for the fit
(fine scans, golden steps) and the final position are approached from below: a move that
would go down first overshoots to ``target - backlash`` (phase 'backlash'; its sample is not
used) and then comes up, so the gears always rest against the same flank and the fitted
peak is where the final move lands. Scans run upwards. Hill climbing cannot order its
samples, so only its final approach is compensated.

Two peaks: when the coarse scan (sweep, coarse_fine, golden) shows a second, separate peak of
at least ``bimodal_ratio`` of the highest, the search focuses on the highest and says so:
``Outcome.warning == BIMODAL`` and the message gives both positions.

Baselines (:data:`BASELINES`, not offered to users): reconstructions of the two seed
projects' searches, for the benchmark only.

Every strategy refuses to claim a focus on a flat curve: if the sharpness it saw varies by
less than ``min_peak_contrast`` (see :func:`peak_contrast`), or by less than 0.3 and its
peak is not ``min_peak_significance`` sigmas above the noise the search measured
(:func:`peak_significance`), it ends with ``Outcome(success=False, error=FLAT_CURVE)`` and
does not make a final move; when every frame, or the sharpest one, is dark or textureless
(the absolute floor: ``SearchConfig.min_signal_level``, ``min_signal_snr``, on the figures
the sharpness node measures) with ``error=NO_SIGNAL``. Before
concluding that, coarse_fine and golden measure halfway to each neighbour of the best coarse
sample (two frames): a weak peak that fell between coarse samples shows there.

Nor does any claim a focus at an end of the range while the curve still rises toward it
(the peak lies outside the range: :func:`peak_beyond_edge`): it ends with
``Outcome(success=False, error=PEAK_OUT_OF_RANGE)``, the message naming the end and the
direction, after a final move to the sharpest sample.
"""
from __future__ import annotations

import math

from autofocus.core.strategies.base import (
    BIMODAL, DEFAULT_STRATEGY, FLAT_CURVE, MAX_SCAN_POSITIONS, NO_SIGNAL, PEAK_OUT_OF_RANGE,
    STRATEGIES, Move,
    Outcome, Sample, SearchConfig, scan_positions, validate_config)
from autofocus.core.strategies.baselines import DslrSweepBaseline, WebcamScoreBaseline
from autofocus.core.strategies.coarse_fine import CoarseFineSearch
from autofocus.core.strategies.flyby import FlybySearch, Sweep, stream_samples
from autofocus.core.strategies.golden import GOLDEN_FRACTION, GoldenSearch
from autofocus.core.strategies.hill_climb import HillClimbSearch
from autofocus.core.strategies.peak_fitting import (
    PeakFit, find_peaks, gaussian_peak, peak_beyond_edge, peak_contrast, peak_fit,
    peak_significance, refine_peak)
from autofocus.core.strategies.search import Search
from autofocus.core.strategies.sweep import SweepSearch

__all__ = [
    'BASELINES', 'BIMODAL', 'DEFAULT_STRATEGY', 'FLAT_CURVE', 'GOLDEN_FRACTION',
    'MAX_SCAN_POSITIONS', 'NO_SIGNAL', 'PEAK_OUT_OF_RANGE', 'STRATEGIES', 'CoarseFineSearch',
    'DslrSweepBaseline', 'FlybySearch', 'GoldenSearch', 'Sweep', 'stream_samples',
    'HillClimbSearch', 'Move', 'Outcome', 'PeakFit', 'Sample', 'Search', 'SearchConfig',
    'SweepSearch', 'WebcamScoreBaseline', 'find_peaks', 'gaussian_peak', 'make_baseline',
    'make_search', 'peak_beyond_edge', 'peak_contrast', 'peak_fit', 'peak_significance',
    'refine_peak',
    'scan_positions',
    'validate_config']

_SEARCH_CLASSES = {cls.name: cls for cls in (SweepSearch, CoarseFineSearch, GoldenSearch,
                                              HillClimbSearch, FlybySearch)}



def make_search(name: str, config: SearchConfig, start_position: float = 0.0,
                positions_while_moving: bool = True) -> Search:
    """A new search of strategy ``name`` (one of :data:`STRATEGIES`).

    Raises ValueError for an unknown name (listing the known ones) or a bad config (range
    empty or reversed, a step <= 0, ...). ``start_position`` is where the motor is now: the
    scans start from the nearer end of the range. ``positions_while_moving`` (flyby): False
    when the motor cannot report its position while moving (flyby then scans stop-and-go).
    """
    if name not in _SEARCH_CLASSES:
        raise ValueError(f'unknown focus strategy {name!r}; known: {", ".join(STRATEGIES)}')
    validate_config(config)
    if not math.isfinite(float(start_position)):
        raise ValueError(f'start_position must be finite, got {start_position!r}')
    if name == FlybySearch.name:
        return FlybySearch(config, start_position, positions_while_moving=positions_while_moving)
    return _SEARCH_CLASSES[name](config, start_position)




BASELINES = {cls.name: cls for cls in (WebcamScoreBaseline, DslrSweepBaseline)}


def make_baseline(name: str, config: SearchConfig, start_position: float = 0.0) -> Search:
    """A seed-project baseline search (:data:`BASELINES`), for benchmarks only."""
    if name not in BASELINES:
        raise ValueError(f'unknown baseline {name!r}; known: {", ".join(BASELINES)}')
    validate_config(config)
    return BASELINES[name](config, float(start_position))
