"""Peak estimation shared by every strategy: curve contrast, parabola and Gaussian fits
with their uncertainty, separate peaks of a scan, and the flat / success outcomes."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence
from autofocus.core.strategies.base import (
    BIMODAL, FLAT_CURVE, NO_SIGNAL, PEAK_OUT_OF_RANGE, Outcome, Sample, SearchConfig)


def peak_contrast(values: Iterable[float]) -> float:
    """Contrast of a sharpness curve: ``(max - min) / max``; 0.0 if ``max <= 0`` or empty.

    1 for a curve that falls to zero away from the peak, near 0 for a flat curve. Relative,
    so it does not depend on the measure's scale or the scene's brightness.
    """
    values = list(values)
    if not values:
        return 0.0
    high, low = max(values), min(values)
    if high <= 0.0:
        return 0.0
    return (high - low) / high


def _merge_duplicates(samples: Sequence[Sample], tolerance: float) -> list[Sample]:
    """Sort by position; average samples closer than ``tolerance`` (a position seen twice)."""
    merged: list[list[float]] = []              # [position sum, value sum, count]
    for position, value in sorted(samples):
        if merged and position - merged[-1][0] / merged[-1][2] <= tolerance:
            merged[-1][0] += position
            merged[-1][1] += value
            merged[-1][2] += 1
        else:
            merged.append([position, value, 1])
    return [(p / n, v / n) for p, v, n in merged]


def refine_peak(samples: Sequence[Sample], tolerance: float = 1e-9) -> float:
    """Peak position of a sampled curve, refined by a least-squares parabola.

    Take the best sample ``i`` (samples sorted by position, duplicates averaged). If it is
    the first or last one, the peak may lie beyond the data: return its position (no
    extrapolation). Otherwise fit ``y = a t^2 + b t + c`` (``t = x - x_i``) by least squares
    to the contiguous run of samples around ``i`` whose value is in the top half of the
    curve, ``y >= min + (max - min) / 2``, always including ``i``'s two neighbours, and
    return the vertex ``x_i - b / (2a)`` clamped to the run's span. With three points this is
    the classic three-point parabolic interpolation; on a broad noisy peak the extra points
    average the noise (about 3x less error than three points at 5% noise, measured). Returns
    ``x_i`` when the fit is not concave (``a >= 0``). :func:`peak_fit` gives more.
    """
    return peak_fit(samples, tolerance).position


def _best_point(samples, tolerance, caller):
    """(points with duplicates merged, their values, index of the best); ValueError if none."""
    points = _merge_duplicates(samples, tolerance)
    if not points:
        raise ValueError(f'{caller} needs at least one sample')
    values = [v for _, v in points]
    return points, values, max(range(len(points)), key=values.__getitem__)


@dataclass(frozen=True)
class PeakFit:
    """What :func:`peak_fit` found.

    ``position``: as :func:`refine_peak`. ``error``: standard error of the fitted vertex
    (``inf`` when there is no fit: best sample at an end, not concave, or a vertex outside
    the samples fitted). ``fitted``: the samples fitted (sorted, duplicates averaged).
    ``run``: the top-half run around the best sample with the sample just outside it on
    each side when there is one: the gaps in it are where more samples would sharpen the
    fit.
    """

    position: float
    error: float
    fitted: tuple[Sample, ...]
    run: tuple[Sample, ...]


def peak_fit(samples: Sequence[Sample], tolerance: float = 1e-9, noise: float = 0.0,
             max_gap: float = math.inf) -> PeakFit:
    """:func:`refine_peak` with the standard error of its result (see :class:`PeakFit`).

    The error comes from the least-squares covariance of ``(a, b)`` carried to the vertex
    ``-b / 2a`` (first order), with the noise of one sample taken as the larger of ``noise``
    and the fit's residual standard deviation (when it has more than three points). A
    peak that a parabola fits badly (a cusp, a bumpy top) gets a larger error, which is
    what a caller deciding whether to sample more wants.
    ``max_gap``: fit only the part of the top-half run around the best sample where
    neighbouring samples are at most this far apart (the best sample's two neighbours
    are always in): a few distant coarse samples on one side of a densely sampled top
    would pull a parabola towards them.
    """
    points, values, best = _best_point(samples, tolerance, 'refine_peak')
    x_best = points[best][0]
    if best == 0 or best == len(points) - 1:
        around = tuple(points[max(best - 1, 0):best + 2])
        return PeakFit(x_best, math.inf, around, around)
    threshold = min(values) + 0.5 * (max(values) - min(values))
    lo = best - 1
    while lo > 0 and values[lo - 1] >= threshold:
        lo -= 1
    hi = best + 1
    while hi < len(points) - 1 and values[hi + 1] >= threshold:
        hi += 1
    bounded = tuple(points[max(lo - 1, 0):hi + 2])
    first, last = best - 1, best + 1
    while first > lo and points[first][0] - points[first - 1][0] <= max_gap:
        first -= 1
    while last < hi and points[last + 1][0] - points[last][0] <= max_gap:
        last += 1
    run = points[first:last + 1]
    centred = [(x - x_best, y) for x, y in run]
    a, b, c, inverse = _parabola(centred)
    if a >= 0.0:
        return PeakFit(x_best, math.inf, tuple(run), bounded)
    vertex = x_best - b / (2.0 * a)
    if not run[0][0] <= vertex <= run[-1][0]:
        return PeakFit(min(max(vertex, run[0][0]), run[-1][0]), math.inf, tuple(run), bounded)
    variance = noise * noise
    if len(run) > 3:
        residual = sum((y - (a * t * t + b * t + c)) ** 2 for t, y in centred)
        variance = max(variance, residual / (len(run) - 3))
    # d(vertex)/da = b / 2a^2, d(vertex)/db = -1 / 2a.
    da, db = b / (2.0 * a * a), -1.0 / (2.0 * a)
    spread = (da * da * inverse[0][0] + 2.0 * da * db * inverse[0][1] + db * db * inverse[1][1])
    return PeakFit(vertex, math.sqrt(max(spread, 0.0) * variance), tuple(run), bounded)


# A peak lower than this many noise sigmas is weak: its fitted top is measured again
# before the fit is trusted (coarse_fine's fine scan, flyby's refine).
WEAK_PEAK = 8.0


def weak_peak(values: Sequence[float], noise: float, bends: Sequence[float]) -> bool:
    """Whether the curve's height (the spread of ``values``) is below :data:`WEAK_PEAK`
    times one frame's noise: the larger of ``noise`` and the RMS of ``bends`` (where most
    of them read the measure's floor, their median sees little but the floor's ties)."""
    rms = math.sqrt(sum(b * b for b in bends) / len(bends)) if bends else 0.0
    return max(values) - min(values) < WEAK_PEAK * max(noise, rms)


def nearest(positions: Iterable[float], centre: float, count: int) -> list[float]:
    """The ``count`` of ``positions`` nearest ``centre``, in ascending order."""
    return sorted(sorted(positions, key=lambda p: abs(p - centre))[:count])


def rival_tops(samples: Sequence[Sample], fit: PeakFit, noise: float, reach: float,
               tolerance: float = 1e-9) -> list[float]:
    """Positions to measure again when the top is ambiguous; [] when it is not.

    A weak peak's top measured once per position can show two tops: the sharpest sample
    and, past a dip, another within the noise of it. :func:`peak_fit` fits the run around
    the sharpest one only, so the noise decides which side the focus goes to (a low-texture,
    high-noise scan once ended 1.09 depth of field from the peak, on the wrong top). A
    rival is a sample within ``reach`` of the sharpest, left out of the fit, no lower than
    the sharpest by more than twice the standard error of their difference (``noise``:
    one frame's; a position measured ``n`` times has its mean's noise, ``noise /
    sqrt(n)``). Then the sharpest, the rivals and every sample between them are returned,
    to be measured again: the means settle which top is real.
    """
    if noise <= 0.0 or not math.isfinite(fit.error) or not fit.fitted:
        return []
    counts: list[list] = []
    for position, value in sorted(samples):
        if counts and position - counts[-1][0] <= tolerance:
            counts[-1][1].append(value)
        else:
            counts.append([position, [value]])
    points = [(x, sum(vs) / len(vs), len(vs)) for x, vs in counts]
    best = max(range(len(points)), key=lambda i: points[i][1])
    x_best, v_best, n_best = points[best]
    fitted = {x for x, _ in fit.fitted}
    rivals = [i for i, (x, v, n) in enumerate(points)
              if i != best and abs(x - x_best) <= reach
              and all(abs(x - f) > tolerance for f in fitted)
              and v >= v_best - 2.0 * noise * math.sqrt(1.0 / n + 1.0 / n_best)]
    if not rivals:
        return []
    low, high = min(rivals + [best]), max(rivals + [best])
    return [points[i][0] for i in range(low, high + 1)]


def _bends(points: Sequence[Sample], max_span: float = math.inf,
           skip: float | None = None) -> list[float]:
    """How far each inner point (``points`` sorted by position) lies off the straight line
    through its two neighbours, divided by ``sqrt(1 + w^2 + (1 - w)^2)`` (``w``: the
    interpolation weight): where the curve is straight or flat, pure noise, with the
    standard deviation of one sample's noise. Only triples spanning at most ``max_span``
    and not centred on the position ``skip`` (the best sample: the tip of the peak).
    """
    bends = []
    for (x0, y0), (x1, y1), (x2, y2) in zip(points, points[1:], points[2:]):
        if not 0.0 < x2 - x0 <= max_span or x1 == skip:
            continue
        w = (x2 - x1) / (x2 - x0)
        bends.append(abs(y1 - (w * y0 + (1.0 - w) * y2)) / math.sqrt(1.0 + w * w + (1.0 - w) ** 2))
    return bends


def _noise(bends: Sequence[float]) -> float:
    """Noise of one sample from :func:`_bends`: their median / 0.6745 (the median of |N(0, 1)|),
    which ignores the few places where the curve really bends as long as they are a
    minority. 0.0 without any."""
    return statistics.median(bends) / 0.6745 if bends else 0.0


def gaussian_peak(samples: Sequence[Sample], tolerance: float = 1e-9) -> float:
    """Peak position of a coarsely sampled curve: a Gaussian through its top three samples.

    Take the best sample ``i`` (samples sorted by position, duplicates averaged); at the
    first or last one return its position (no extrapolation). Otherwise subtract the
    curve's floor (its lowest sample) from ``i`` and its two neighbours, take logarithms and
    return the vertex of the parabola through the three points, clamped to the neighbours'
    span: the peak of a Gaussian over a constant floor, exact for one. A focus curve sampled
    about once per half width has a top that is closer to a Gaussian than to a parabola, so
    this is a few times closer to the peak than a parabola through the raw values (measured
    on the simulator: median error 4-8 units at a 100-unit spacing, against 13). If a
    neighbour is at the floor (no logarithm) the raw-value parabola is used; if the fit is
    not concave, ``x_i``.
    """
    points, values, best = _best_point(samples, tolerance, 'gaussian_peak')
    x_best = points[best][0]
    if best == 0 or best == len(points) - 1:
        return x_best
    three = points[best - 1:best + 2]
    floor = min(values)
    heights = [v - floor for _, v in three]
    if min(heights) > 0.0:
        fitted = [(x - x_best, math.log(h)) for (x, _), h in zip(three, heights)]
    else:
        fitted = [(x - x_best, v) for x, v in three]
    a, b = _fit_parabola(fitted)
    if a >= 0.0:
        return x_best
    return min(max(x_best - b / (2.0 * a), three[0][0]), three[-1][0])


def gaussian_width(samples: Sequence[Sample], tolerance: float = 1e-9) -> float | None:
    """Standard deviation of the Gaussian :func:`gaussian_peak` fits through the best
    sample and its two neighbours (over the curve's floor); None when there is none (best
    sample at an end, a neighbour at the floor, or not concave)."""
    points, values, best = _best_point(samples, tolerance, 'gaussian_width')
    if best == 0 or best == len(points) - 1:
        return None
    three = points[best - 1:best + 2]
    floor = min(values)
    heights = [v - floor for _, v in three]
    if min(heights) <= 0.0:
        return None
    a, _ = _fit_parabola([(x - points[best][0], math.log(h)) for (x, _), h in zip(three, heights)])
    if a >= 0.0:
        return None
    return math.sqrt(-1.0 / (2.0 * a))


def _fit_parabola(points: Sequence[Sample]) -> tuple[float, float]:
    """Least-squares ``y = a t^2 + b t + c``; returns (a, b). See :func:`_parabola`."""
    a, b, _, _ = _parabola(points)
    return a, b


def _parabola(points: Sequence[Sample]) -> tuple[float, float, float, list[list[float]]]:
    """Least-squares ``y = a t^2 + b t + c``: (a, b, c, inverse of the normal matrix).

    Normal equations, 3x3, solved through the inverse (adjugate / determinant; a handful of
    points: no numpy needed). Positions should be offsets from the best sample, so the sums
    stay well conditioned. The inverse times the noise variance is the covariance of
    (a, b, c). A singular system gives zeros.
    """
    s = [0.0] * 5                                # sums of t^k, k = 0..4
    r = [0.0] * 3                                # sums of y t^k, k = 0..2
    for t, y in points:
        tk = 1.0
        for k in range(5):
            s[k] += tk
            if k < 3:
                r[k] += y * tk
            tk *= t
    # Rows: [s4 s3 s2 | r2], [s3 s2 s1 | r1], [s2 s1 s0 | r0] for unknowns (a, b, c).
    m = [[s[4], s[3], s[2]], [s[3], s[2], s[1]], [s[2], s[1], s[0]]]
    rhs = [r[2], r[1], r[0]]
    d = (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
         - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
         + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    if d == 0.0 or not math.isfinite(d):
        return 0.0, 0.0, 0.0, [[0.0] * 3 for _ in range(3)]
    # The matrix is symmetric, so its inverse is the cofactor matrix / d.
    inverse = [[(m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3]
                 - m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3]) / d
                for j in range(3)] for i in range(3)]
    a, b, c = (sum(inverse[i][k] * rhs[k] for k in range(3)) for i in range(3))
    return a, b, c, inverse


CLEAR_CONTRAST = 0.3     # without measured noise, a curve with this contrast is a peak
MIN_NOISE_DOF = 8        # repeated-frame degrees of freedom for a noise worth judging by
MIN_SCATTER_SAMPLES = 25  # or this many positions, whose scatter gives the noise


def peak_significance(samples: Sequence[Sample], noise: float | None = None) -> float:
    """How far the curve's peak stands out of its noise: ``(max - min) / sigma``.

    ``sigma`` is the noise of one sample: ``noise`` when the caller measured it from
    repeated frames, else the scatter of the samples about the straight line through
    their neighbours (:func:`_bends` without the best sample's own triple, median:
    :func:`_noise`; ripple and curvature count as noise, which errs towards "flat", and
    a search that sampled little but the peak sees mostly curvature: hence repeats).
    ``inf`` for a curve that varies with no measurable noise, 0.0 for a constant one or
    fewer than two samples.
    """
    points = _merge_duplicates(samples, 1e-9)
    if len(points) < 2:
        return 0.0
    values = [v for _, v in points]
    height = max(values) - min(values)
    if height <= 0.0:
        return 0.0
    best = points[max(range(len(points)), key=values.__getitem__)][0]
    sigma = noise if noise is not None else _noise(_bends(points, skip=best))
    return height / sigma if sigma > 0.0 else math.inf


def repeat_noise(samples: Sequence[Sample], tolerance: float) -> tuple[float, int]:
    """(sigma, degrees of freedom) of one sample from positions measured more than once
    (within ``tolerance``): the pooled standard deviation about each position's mean."""
    groups: list[list[float]] = []
    last = None
    for position, value in sorted(samples):
        if last is not None and position - last <= tolerance:
            groups[-1].append(value)
        else:
            groups.append([value])
            last = position
    squares, dof = 0.0, 0
    for group in groups:
        if len(group) > 1:
            mean = sum(group) / len(group)
            squares += sum((v - mean) ** 2 for v in group)
            dof += len(group) - 1
    return (math.sqrt(squares / dof) if dof else 0.0), dof


def _flat_outcome(samples: Sequence[Sample], config: SearchConfig, what: str,
                  hint: str = '', noise: float = 0.0, noise_dof: int = 0) -> Outcome | None:
    """Outcome(FLAT_CURVE) if the samples show no peak, else None. ``hint``: extra advice;
    ``noise``: the noise of one sample measured from repeated frames, with ``noise_dof``
    degrees of freedom (0: none measured).

    - contrast ``(max - min) / max`` below ``min_peak_contrast``: flat;
    - at least :data:`CLEAR_CONTRAST` (0.3): a peak (5 % frame jitter gives a flat curve
      that contrast in 0.07 % of 41-sample sweeps, 0.004 % of 11-sample scans);
    - between: a peak only if it stands ``min_peak_significance`` noise sigmas over the
      lowest sample (:func:`peak_significance`), and only when the noise is known: from
      repeated frames (``noise_dof >= MIN_NOISE_DOF``) or from the scatter of at least
      :data:`MIN_SCATTER_SAMPLES` positions. Measured on flat curves with white noise: the
      scatter of a dozen samples underestimates the noise often enough that a flat
      11-sample scan reaches 10 sigma in 1 % of cases, 41 samples in 0.01 %.
    """
    contrast = peak_contrast(v for _, v in samples)
    positions = [p for p, _ in samples]
    count = len(_merge_duplicates(samples, 1e-9))
    if contrast >= config.min_peak_contrast:
        known = noise_dof >= MIN_NOISE_DOF or count >= MIN_SCATTER_SAMPLES
        significance = peak_significance(
            samples, noise if noise_dof >= MIN_NOISE_DOF else None)
        if significance >= config.min_peak_significance if known else (
                contrast >= CLEAR_CONTRAST):
            return None
        if known:
            why = (f'the sharpness varied by {contrast:.1%} and its highest sample stands '
                   f'only {significance:.1f} noise sigmas over the lowest (a peak needs '
                   f'{config.min_peak_significance:g})')
        else:
            why = (f'the sharpness varied by only {contrast:.1%} and {count} positions '
                   f'without repeated frames cannot tell that from noise (a peak needs '
                   f'{CLEAR_CONTRAST:.0%}, or significance against measured noise: '
                   f'frames_per_position >= 2)')
    else:
        why = (f'the sharpness varied by only {contrast:.1%} (a peak needs at least '
               f'{config.min_peak_contrast:.0%})')
    return failed_at_last(
        samples, FLAT_CURVE,
        f'no focus peak: over {len(samples)} {what} positions '
        f'{min(positions):g}..{max(positions):g} {why}; the scene may '
        f'be featureless or too dark, or the lens is far outside this range{hint}')


def failed_at_last(samples: Sequence[Sample], error: str, message: str) -> Outcome:
    """A failed Outcome with the lens where the last sample left it (no final move)."""
    last_position, last_value = samples[-1]
    return Outcome(success=False, position=last_position, sharpness=last_value, error=error,
                   message=message)


def has_signal(signal, config: SearchConfig) -> bool:
    """Whether a frame's ``(level, snr)`` passes the absolute signal floor: its level at
    least ``min_signal_level`` and its snr at least ``min_signal_snr``; None (figures not
    known) counts as signal."""
    return signal is None or (signal[0] >= config.min_signal_level
                              and signal[1] >= config.min_signal_snr)


def _no_signal_outcome(samples: Sequence[Sample], signals: Sequence, config: SearchConfig,
                       what: str) -> Outcome | None:
    """Outcome(NO_SIGNAL) when no sample, or the sharpest one, has signal; else None.

    ``signals[i]``: ``(level, snr)`` of sample ``i`` (:func:`measures.frame_signal`) or None
    when not known (counted as signal; see :func:`has_signal`).
    """
    if not samples or all(signal is None for signal in signals):
        return None
    lit = [has_signal(signal, config) for signal in signals]
    best = max(range(len(samples)), key=lambda i: samples[i][1])
    if any(lit) and lit[best]:
        return None
    levels = [signal[0] for signal in signals if signal is not None]
    snrs = [signal[1] for signal in signals if signal is not None]
    if any(lit):
        where = (f'the sharpest of {len(samples)} {what} samples, at {samples[best][0]:g}, '
                 f'is a frame without signal (mean level {signals[best][0]:.1f}, texture '
                 f'{signals[best][1]:.1f}x the noise): the measure reads the dark, not focus')
    else:
        where = (f'none of {len(samples)} {what} frames has signal (mean level at most '
                 f'{max(levels):.1f}, texture at most {max(snrs):.1f}x the noise)')
    return failed_at_last(samples, NO_SIGNAL, f'no signal: {where}; {signal_advice(config)}')


def signal_advice(config: SearchConfig) -> str:
    """What a NO_SIGNAL message asks for: the floor a frame must pass, and the fixes."""
    return (f'a frame needs a mean level of {config.min_signal_level:g} and texture '
            f'{config.min_signal_snr:g}x the noise. Light the scene, lengthen the exposure, '
            'or move the ROI onto detail; or the range holds no lit, textured position')


def peak_beyond_edge(samples: Sequence[Sample], range_min: float, range_max: float,
                     reach: float) -> float | None:
    """The range end the peak lies beyond, or None when the peak is inside the range.

    Only when the sharpest sample lies within ``reach`` of an end of the range is there a
    question. Then take the samples from that end inwards (sorted, duplicates averaged):
    the top-half run (at least three samples) and the next sample inwards. The curve
    still rises toward the end, and the peak lies beyond it, when the least-squares
    parabola over the top-half run is concave with its vertex beyond the end by more than
    the spacing of the two samples nearest the end, a quarter of the run's span and twice
    the vertex's standard error; or when the parabola over the run and the next sample
    is not concave (the flank of a peak far beyond the end). A peak at the end itself, or
    just inside it, levels the curve off there and is not beyond. The noise of one sample
    is the larger of a fit's residuals and the noise seen where the curve is straight
    (:func:`_bends`).

    Measured on noisy (2%) Gaussian and Lorentzian peaks (test_strategies): a peak 30 or
    more units beyond the end (widths 60-80) is found beyond in 70-100% of searches
    (83-100% from 60 units on); a peak at the end itself is
    refused as beyond in 0-17%.
    """
    points = _merge_duplicates(samples, 1e-9)
    if len(points) < 3:
        return None
    values = [v for _, v in points]
    best = points[max(range(len(points)), key=values.__getitem__)][0]
    if best >= range_max - reach:
        edge, run = range_max, points[::-1]             # from the end inwards
    elif best <= range_min + reach:
        edge, run = range_min, points
    else:
        return None
    noise = _noise(_bends(points))
    threshold = min(values) + 0.5 * (max(values) - min(values))
    count = 3
    while count < len(run) and run[count][1] >= threshold:
        count += 1
    top = run[:count]
    wider = run[:count + 1]
    if _vertex_beyond(top, edge, noise) or (len(wider) > 3 and _convex(wider, noise)):
        return edge
    return None


def _fit_from_end(run: Sequence[Sample], noise: float):
    """Least-squares parabola over ``run`` (from the end inwards), positions from the end:
    (a, b, inverse of the normal matrix, variance of one sample)."""
    x_end = run[0][0]
    centred = [(x - x_end, y) for x, y in run]
    a, b, c, inverse = _parabola(centred)
    variance = noise * noise
    if len(run) > 3:
        residual = sum((y - (a * t * t + b * t + c)) ** 2 for t, y in centred)
        variance = max(variance, residual / (len(run) - 3))
    return a, b, inverse, variance


def _convex(run: Sequence[Sample], noise: float = 0.0) -> bool:
    """Whether the parabola over ``run`` is not concave."""
    return _fit_from_end(run, noise)[0] >= 0.0


def _vertex_beyond(run: Sequence[Sample], edge: float, noise: float) -> bool:
    """Whether the parabola over ``run`` (from the end inwards) is concave with its vertex
    beyond ``edge`` by more than the spacing of the two samples nearest the end, a
    quarter of the run's span and twice the vertex's standard error."""
    a, b, inverse, variance = _fit_from_end(run, noise)
    if a >= 0.0:
        return False
    x_end = run[0][0]
    upwards = run[-1][0] < x_end                # the end is the upper one
    beyond = (x_end - b / (2.0 * a) - edge) * (1.0 if upwards else -1.0)
    da, db = b / (2.0 * a * a), -1.0 / (2.0 * a)
    spread = da * da * inverse[0][0] + 2.0 * da * db * inverse[0][1] + db * db * inverse[1][1]
    error = math.sqrt(max(spread, 0.0) * variance)
    margin = max(abs(run[1][0] - x_end), 0.25 * abs(run[-1][0] - x_end), 2.0 * error)
    return beyond > margin


def _out_of_range(position: float, value: float, edge: float, range_min: float,
                  range_max: float, samples: Sequence[Sample], what: str) -> Outcome:
    """Outcome(PEAK_OUT_OF_RANGE): the lens at the sharpest sample, the end named."""
    direction = 'above' if edge == range_max else 'below'
    return Outcome(
        success=False, position=position, sharpness=value, error=PEAK_OUT_OF_RANGE,
        message=(f'the peak lies {direction} {edge:g}: widen the range (searched '
                 f'{range_min:g}..{range_max:g}); over {len(samples)} {what} samples the '
                 f'sharpness still rises toward {edge:g}, so no focus is claimed; the lens '
                 f'is left at the sharpest sample, {position:g} (sharpness {value:.4g})'))


def _success(position: float, value: float, estimate: float, samples: Sequence[Sample],
             what: str, peaks: Sequence[Sample] = ()) -> Outcome:
    contrast = peak_contrast(v for _, v in samples)
    message = (f'focused at {position:g} (sharpness {value:.4g}); {what} estimated the peak '
               f'at {estimate:.4g} from {len(samples)} samples, curve contrast {contrast:.0%}')
    warning = ''
    if len(peaks) > 1:
        warning = BIMODAL
        message += ('; WARNING: the scan saw more than one peak (two depth planes?) at '
                    + ', '.join(f'{p:g} ({v:.4g})' for p, v in peaks)
                    + '; focused on the highest')
    return Outcome(success=True, position=position, sharpness=value, message=message,
                   warning=warning)


def find_peaks(samples: Sequence[Sample], ratio: float) -> list[Sample]:
    """Separate peaks of a scanned curve, highest first: ``[(position, value), ...]``.

    A peak is a local maximum (samples sorted by position; range ends count) whose value is
    at least ``ratio`` times the highest, separated from every higher peak by a valley that
    falls below 0.8 times its own value (so noise on one broad peak is not a second peak).
    """
    points = _merge_duplicates(samples, 1e-9)
    values = [v for _, v in points]
    if not points or max(values) <= 0:
        return []
    top = max(values)
    candidates = [i for i in range(len(points))
                  if values[i] >= ratio * top
                  and (i == 0 or values[i] >= values[i - 1])
                  and (i == len(points) - 1 or values[i] >= values[i + 1])]
    candidates.sort(key=lambda i: -values[i])
    peaks: list[int] = []
    for i in candidates:
        if all(min(values[min(i, j):max(i, j) + 1]) < 0.8 * values[i] for j in peaks):
            peaks.append(i)
    return [points[i] for i in peaks]
