"""What a search takes and gives: its configuration, a Move, an Outcome, and the checks
that a configuration is usable."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


FLAT_CURVE = 'flat_curve'
PEAK_OUT_OF_RANGE = 'peak_out_of_range'
BIMODAL = 'bimodal'

STRATEGIES = ('sweep', 'coarse_fine', 'golden', 'hill_climb', 'flyby')
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
    ``error`` is '' on success, :data:`FLAT_CURVE`, or :data:`PEAK_OUT_OF_RANGE` (the
    sharpest sample is at an end of the range and the curve still rises toward it: the
    lens is left at that sample, and ``message`` names the end and the direction);
    ``message`` is for humans.
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
