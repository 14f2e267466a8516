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
  weak peak: the fastest of the reliable strategies.
- ``golden``: the coarse scan brackets the global peak (``coarse_step`` either side of the
  best coarse sample), then golden-section search shrinks the bracket to
  ``golden_tolerance`` and a least-squares parabola over every sample in the bracket gives
  the peak. Each golden step cuts the bracket by 0.618, so +-100 units reach +-5 in about 7
  frames: about 20 frames for the default range, whatever the peak. Its comparisons of
  single noisy frames make it less reliable than coarse_fine on weak peaks and bumpy tops.
- ``hill_climb``: relative moves only, for motors without a position reference (e.g. a DC
  motor on a gear): climb with ``climb_step``, reverse and halve the step each time the
  sharpness falls past the top, stop below ``climb_min_step``, go to the peak fitted
  around the best place seen.

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
less than ``min_peak_contrast`` (see :func:`peak_contrast`) it ends with
``Outcome(success=False, error=FLAT_CURVE)`` and does not make a final move. Before
concluding that, coarse_fine and golden measure halfway to each neighbour of the best coarse
sample (two frames): a weak peak that fell between coarse samples shows there.
"""
from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import dataclass
from typing import Generator, Iterable, Sequence

FLAT_CURVE = 'flat_curve'
BIMODAL = 'bimodal'

STRATEGIES = ('sweep', 'coarse_fine', 'golden', 'hill_climb')
DEFAULT_STRATEGY = 'coarse_fine'

# A scan of more positions than this is a configuration mistake (a step far too small for the
# range), not a search anyone wants to wait for.
MAX_SCAN_POSITIONS = 10_000


@dataclass(frozen=True)
class Move:
    """Where to put the lens next.

    ``target`` is an absolute motor position, or an offset from the current position when
    ``relative`` is True. ``phase`` says which part of the search asked for it:
    'coarse', 'fine', 'sweep', 'climb', 'golden', 'backlash' (an anti-backlash overshoot,
    whose sample is not used), 'wait' (a baseline asking for one more frame where it is) or
    'final' (the move to the chosen focus).
    """

    target: float
    relative: bool = False
    phase: str = ''


@dataclass(frozen=True)
class Outcome:
    """How a search ended.

    ``position`` and ``sharpness`` are the last ones reported to :meth:`Search.observe`: on
    success the focus position reached by the final move and the sharpness measured there.
    ``error`` is '' on success or :data:`FLAT_CURVE`; ``message`` is for humans.
    ``warning`` is '' or :data:`BIMODAL` (focused on the higher of two peaks).
    """

    success: bool
    position: float
    sharpness: float
    error: str = ''
    message: str = ''
    warning: str = ''


@dataclass
class SearchConfig:
    """Search parameters, in motor units (positions, steps) or relative units (ratios).

    ``min_peak_contrast``: a curve whose contrast ``(max - min) / max`` over the samples is
    below this is flat: no focus peak. 0.3 means the sharpest sample must be at least 1.43x
    the least sharp one. Why 0.3 and not less: a flat curve with multiplicative jitter of
    standard deviation j has a contrast of about 4.4 j over a 41-sample sweep (0.195 at
    j = 5%); with 5% jitter the sweep exceeds 0.25 in 3% of searches and 0.3 in 0.07%
    (11-sample coarse scan: 0.3% and 0.004%), measured on 100 000 random curves. The
    simulator's featureless scene gives about 0.01 (its Laplacian jitter is ~0.5%); its
    textured scene gives 0.85 over the range (Laplacian peak/floor ratio ~7 at full
    resolution). Real megapixel frames have peak/floor ratios of only 1.1-2 at full
    resolution (contrast 0.1-0.5) but 14-170 after a 4x area downsample: use a downsample
    rather than lowering this. Lower it for a measure with a broad curve
    (normalized_variance: ~0.7 over a whole range, less over a part of it).

    ``noise_band`` (hill_climb): relative change of sharpness treated as noise, neither
    rise nor fall; set it a little above the frame-to-frame jitter of the measure.

    ``fine_span`` (coarse_fine): half width of the first fine scan around the coarse
    estimate; 0 (default) means ``2 * fine_step``. coarse_fine widens the scan by itself
    where the peak needs it, so leave it at 0 unless the coarse estimate is known to be
    poor (a measure with a broad, flat top).
    """

    range_min: float = 0.0
    range_max: float = 1000.0
    sweep_step: float = 25.0            # sweep: sample every sweep_step over the whole range
    coarse_step: float = 100.0          # coarse_fine: coarse scan step
    fine_step: float = 10.0             # coarse_fine: fine scan step around the coarse peak
    fine_span: float = 0.0              # coarse_fine: first fine scan +- this; 0 = 2 fine_step
    climb_step: float = 50.0            # hill_climb: first relative step
    climb_min_step: float = 5.0         # hill_climb: stop when the step shrinks below this
    noise_band: float = 0.02            # relative change treated as noise (hill_climb)
    min_peak_contrast: float = 0.3      # (max - min) / max below this = flat curve
    climb_max_moves: int = 200          # hill_climb: hard bound on moves, final move included
    golden_tolerance: float = 0.0       # golden: final bracket half-width; 0 = 0.3 fine_step
    backlash: float = 0.0               # gear play to take up by approaching from below; 0 = off
    bimodal_ratio: float = 0.3          # a second coarse peak this high (x the first) = bimodal


# -- helpers ---------------------------------------------------------------------------------

Sample = tuple[float, float]            # (position, sharpness)


def scan_positions(start: float, stop: float, step: float) -> list[float]:
    """``start, start + step, ...`` up to and always including ``stop`` (either direction).

    A last gap shorter than 1e-6 step is not sampled twice. ``step`` is a magnitude.
    """
    span = stop - start
    sign = 1.0 if span >= 0 else -1.0
    count = int(math.floor(abs(span) / step + 1e-9))
    positions = [start + sign * step * i for i in range(count + 1)]
    if abs(stop - positions[-1]) > step * 1e-6:
        positions.append(stop)
    else:
        positions[-1] = stop                      # exact end despite float accumulation
    return positions


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


def _flat_outcome(samples: Sequence[Sample], config: SearchConfig, what: str,
                  hint: str = '') -> Outcome | None:
    """Outcome(FLAT_CURVE) if the samples show no peak, else None. ``hint``: extra advice."""
    contrast = peak_contrast(v for _, v in samples)
    if contrast >= config.min_peak_contrast:
        return None
    positions = [p for p, _ in samples]
    last_position, last_value = samples[-1]
    return Outcome(
        success=False, position=last_position, sharpness=last_value, error=FLAT_CURVE,
        message=(f'no focus peak: over {len(samples)} {what} positions '
                 f'{min(positions):g}..{max(positions):g} the sharpness varied by only '
                 f'{contrast:.1%} (a peak needs {config.min_peak_contrast:.0%}); the scene may '
                 f'be featureless or too dark, or the lens is far outside this range{hint}'))


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
        self._steps_gen: Steps | None = None

    def start(self) -> Move:
        """The first move. Call once."""
        if self._steps_gen is not None:
            raise RuntimeError(f'{self.name} search already started')
        self._steps_gen = self._steps()
        move = next(self._steps_gen)
        self.phase = move.phase
        return move

    def observe(self, position: float, sharpness: float) -> Move | Outcome:
        """Report where the motor is and the sharpness measured there; get the next step."""
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

        Scans the range at ``coarse_step``. A contrast below ``min_peak_contrast`` may be a
        weak (low-texture) peak that fell between two coarse samples, where the samples on
        its flanks show only part of it: then measure halfway between the best sample and
        each of its neighbours (phase 'coarse'; at most two frames) and judge the contrast
        of all the samples. A flat curve gains nothing there and stays flat.
        """
        c = self.config
        coarse = yield from self._scan(c.range_min, c.range_max, c.coarse_step, 'coarse')
        if peak_contrast(v for _, v in coarse) < c.min_peak_contrast:
            ordered = _merge_duplicates(coarse, c.coarse_step * 1e-3)
            index = max(range(len(ordered)), key=lambda i: ordered[i][1])
            best = ordered[index][0]
            halfway = [(best + ordered[j][0]) / 2.0 for j in (index - 1, index + 1)
                       if 0 <= j < len(ordered)]
            for target in sorted(halfway, key=lambda p: abs(p - self._here)):
                coarse.append((yield from self._visit(target, 'coarse')))
        flat = _flat_outcome(coarse, c, 'coarse scan', f', or its peak is narrower than the '
                             f'coarse step ({c.coarse_step:g})')
        return coarse, flat


class SweepSearch(Search):
    """Sample the whole range at ``sweep_step``, refine the best with a parabola, go there.

    Scans ``range_min..range_max`` inclusive (``range_max`` is always sampled), starting
    from the end nearer ``start_position`` to save travel. The peak estimate is
    :func:`refine_peak` over all samples; at a range end there is no fit. A flat curve ends
    with FLAT_CURVE after the scan, without a final move.
    """

    name = 'sweep'

    def _steps(self) -> Steps:
        c = self.config
        scanned = yield from self._scan(c.range_min, c.range_max, c.sweep_step, 'sweep')
        flat = _flat_outcome(scanned, c, 'sweep', f', or its peak is narrower than the '
                             f'sweep step ({c.sweep_step:g})')
        if flat:
            return flat
        estimate = refine_peak(scanned, tolerance=c.sweep_step * 1e-3)
        position, value = yield from self._final(estimate)
        return _success(position, value, estimate, scanned, 'sweep',
                        find_peaks(scanned, c.bimodal_ratio))


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
       measured there.

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
        span = c.fine_span if c.fine_span > 0 else 2.0 * c.fine_step
        low = max(c.range_min, estimate - span)
        high = min(c.range_max, estimate + span)
        scanned += yield from self._scan(low, high, c.fine_step, 'fine', skip=scanned)

        budget = 2 * int(math.ceil(c.coarse_step / c.fine_step))
        while budget > 0:
            points = _merge_duplicates(scanned, tolerance)
            best = max(range(len(points)), key=lambda i: points[i][1])
            # Noise: the coarse scan's tails, and the dense samples except the tip.
            bends = tails + _bends(points, max_span=2.0 * gap, skip=points[best][0])
            fit = peak_fit(points, tolerance, _noise(bends), max_gap=gap)
            if best > 0 and points[best][0] - points[best - 1][0] > gap:
                targets = [points[best][0] - c.fine_step]
            elif best < len(points) - 1 and points[best + 1][0] - points[best][0] > gap:
                targets = [points[best][0] + c.fine_step]
            elif (below := self._beyond(fit, points, -1.0)) is not None:
                targets = [below]
            elif (above := self._beyond(fit, points, 1.0)) is not None:
                targets = [above]
            elif fit.error <= c.fine_step / 4.0:
                break
            else:
                targets = (_split_gaps(fit.run, gap)
                           or _split_gaps(fit.run, 0.5 * gap))
                # Over budget: the ones nearest the estimate.
                targets = sorted(sorted(targets, key=lambda p: abs(p - fit.position))[:budget])
            if not targets:
                break
            budget -= len(targets)
            if c.backlash <= 0 and abs(targets[-1] - self._here) < abs(targets[0] - self._here):
                targets.reverse()             # from the nearer end (upwards with backlash)
            for target in targets:
                scanned.append((yield from self._visit(target, 'fine')))

        estimate = peak_fit(scanned, tolerance, max_gap=gap).position
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
       ``backlash > 0``).
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
        estimate = refine_peak(window, tolerance=tol * 1e-3)
        position, value = yield from self._final(estimate)
        return _success(position, value, estimate, window, 'golden-section search',
                        find_peaks(coarse, c.bimodal_ratio))


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
    - Stop when the step is below ``climb_min_step``.
    - Check the peak: the climb only sees the part of the curve it visits. If the contrast
      of its samples is below ``min_peak_contrast`` (a start near the top of a broad peak,
      or a start in a flat tail, or a flat scene), probe ``best - 2 * climb_step`` and then
      ``best + 2 * climb_step``: a real peak has fallen off there. A probe sharper than
      everything seen means the climb had stalled on a shoulder or in the tail: climb again
      from the probe, outwards. At most two such rounds.
    - Still below ``min_peak_contrast``: FLAT_CURVE, no final move.
    - Otherwise go to the peak: :func:`refine_peak` over all samples (least-squares parabola
      around the best sample; the samples are dense near the top, so this is steadier than
      the best sample alone, and it stays within the samples around the best), as a
      relative move from the last reported position; Outcome.

    At most ``climb_max_moves`` moves in all, final move included. Set ``noise_band`` above
    the measure's frame-to-frame jitter: a noise "fall" in the tail turns the climb round.
    """

    name = 'hill_climb'

    def _steps(self) -> Steps:
        c = self.config
        position, value = yield Move(0.0, relative=True, phase='climb')
        climb = _Climb(position, value)
        yield from self._climb(climb, direction=1.0, first=True)
        for _ in range(2):
            if peak_contrast(v for _, v in climb.seen) >= c.min_peak_contrast:
                break
            record_position, record = climb.best
            for direction in (-1.0, 1.0):
                target = self._clamp(record_position + 2.0 * direction * c.climb_step)
                if not self._can_move(climb, target):
                    continue
                value = yield from self._go(climb, target)
                if _compare(value, record, c.noise_band) > 0:
                    yield from self._climb(climb, direction=direction, first=False, rose=True)
                    break

        flat = _flat_outcome(climb.seen, c, 'hill-climb')
        if flat:
            return flat
        estimate = self._clamp(refine_peak(climb.seen, tolerance=c.climb_min_step * 1e-3))
        if c.backlash > 0 and climb.position > estimate - c.backlash:
            # Final approach from below, overshooting by the backlash (see module docstring).
            position, _ = yield Move(self._clamp(estimate - c.backlash) - climb.position,
                                     relative=True, phase='backlash')
            climb.position = position
        position, value = yield Move(estimate - climb.position, relative=True, phase='final')
        return _success(position, value, estimate, climb.seen, 'hill climb')

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
        while step >= c.climb_min_step and climb.moves < c.climb_max_moves - 1:
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


_SEARCH_CLASSES = {cls.name: cls for cls in (SweepSearch, CoarseFineSearch, GoldenSearch,
                                              HillClimbSearch)}


def validate_config(config: SearchConfig) -> None:
    """Raise ValueError naming the first bad SearchConfig field and why."""
    number_fields = ('range_min', 'range_max', 'sweep_step', 'coarse_step', 'fine_step',
                     'climb_step', 'climb_min_step', 'noise_band', 'min_peak_contrast',
                     'golden_tolerance', 'backlash', 'bimodal_ratio', 'fine_span')
    for field in number_fields:
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
                value):
            raise ValueError(f'SearchConfig.{field} must be a finite number, got {value!r}')
    if config.range_min >= config.range_max:
        raise ValueError(f'SearchConfig: range_min ({config.range_min:g}) must be below '
                         f'range_max ({config.range_max:g})')
    for field in ('sweep_step', 'coarse_step', 'fine_step', 'climb_step', 'climb_min_step'):
        value = getattr(config, field)
        if value <= 0:
            raise ValueError(f'SearchConfig.{field} must be > 0, got {value:g}')
    span = config.range_max - config.range_min
    scans = (('sweep_step', span), ('coarse_step', span),
             ('fine_step', 2 * max(config.coarse_step, config.fine_span)))
    for field, length in scans:
        value = getattr(config, field)
        if length / value > MAX_SCAN_POSITIONS:
            raise ValueError(f'SearchConfig.{field}={value:g} is too small: scanning '
                             f'{length:g} units with it takes more than {MAX_SCAN_POSITIONS} '
                             f'positions')
    if config.climb_min_step > config.climb_step:
        raise ValueError(f'SearchConfig.climb_min_step ({config.climb_min_step:g}) must not '
                         f'exceed climb_step ({config.climb_step:g})')
    for field in ('golden_tolerance', 'backlash', 'fine_span'):
        if getattr(config, field) < 0:
            raise ValueError(f'SearchConfig.{field} must be >= 0, got {getattr(config, field):g}')
    if not 0 < config.bimodal_ratio <= 1:
        raise ValueError(f'SearchConfig.bimodal_ratio must be in (0, 1], got '
                         f'{config.bimodal_ratio:g}')
    if config.noise_band < 0:
        raise ValueError(f'SearchConfig.noise_band must be >= 0, got {config.noise_band:g}')
    if not 0 <= config.min_peak_contrast <= 1:
        raise ValueError(f'SearchConfig.min_peak_contrast must be in [0, 1], got '
                         f'{config.min_peak_contrast:g}')
    moves = config.climb_max_moves
    if isinstance(moves, bool) or not isinstance(moves, numbers.Integral) or moves < 3:
        raise ValueError(f'SearchConfig.climb_max_moves must be an integer >= 3, got {moves!r}')


def make_search(name: str, config: SearchConfig, start_position: float = 0.0) -> Search:
    """A new search of strategy ``name`` (one of :data:`STRATEGIES`).

    Raises ValueError for an unknown name (listing the known ones) or a bad config (range
    empty or reversed, a step <= 0, ...). ``start_position`` is where the motor is now: the
    scans start from the nearer end of the range.
    """
    if name not in _SEARCH_CLASSES:
        raise ValueError(f'unknown focus strategy {name!r}; known: {", ".join(STRATEGIES)}')
    validate_config(config)
    if not math.isfinite(float(start_position)):
        raise ValueError(f'start_position must be finite, got {start_position!r}')
    return _SEARCH_CLASSES[name](config, start_position)


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


def make_baseline(name: str, config: SearchConfig, start_position: float = 0.0) -> Search:
    """A seed-project baseline search (:data:`BASELINES`), for benchmarks only."""
    if name not in BASELINES:
        raise ValueError(f'unknown baseline {name!r}; known: {", ".join(BASELINES)}')
    validate_config(config)
    return BASELINES[name](config, float(start_position))
