"""What a search takes and gives: its configuration, a Move, an Outcome, and the checks
that a configuration is usable."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


FLAT_CURVE = 'flat_curve'
PEAK_OUT_OF_RANGE = 'peak_out_of_range'
NO_SIGNAL = 'no_signal'
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
    ``error`` is '' on success, :data:`FLAT_CURVE`, :data:`NO_SIGNAL` (the frames are too
    dark or textureless to judge focus by: see :class:`SearchConfig`), or
    :data:`PEAK_OUT_OF_RANGE` (the
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

    Whether the samples show a focus peak at all (:func:`peak_fitting._flat_outcome`):

    ``min_peak_contrast``: below this relative contrast ``(max - min) / max`` a curve is
    flat, whatever else (0.1; a floor for curves whose noise the search cannot see).

    ``min_peak_significance``: above it, when the noise of one sample is known, the peak
    must stand this many of its standard deviations over the lowest sample
    (:func:`peak_fitting.peak_significance`). Known: from repeated frames (the server's
    ``frames_per_position`` >= 2, reported to :meth:`Search.observe`, or positions this
    search measured again: coarse_fine, golden and hill_climb do when a low curve needs
    it), at least 8 degrees of freedom; or the scatter of 25 or more positions about the
    straight line through their neighbours (a median). A flat curve of N samples with
    white noise spans about 3.2 sigma (N = 11) to 4.3 sigma (N = 41) and rarely more than
    6: 8 leaves room for an uncertain noise estimate. So a real low-contrast peak (0.19-0.25
    over a long range on real megapixel frames) passes, and a flat scene's noise does not,
    whatever the measure's offset. With no noise known, a contrast of 0.3 decides, as it
    always did (5 % frame jitter exceeds it in 0.07 % of 41-sample sweeps).

    ``min_signal_level``, ``min_signal_snr``: the absolute signal floor, judged on each
    frame by the sharpness node (:func:`measures.frame_signal`: the ROI's mean grey level,
    and its texture, Vollath's F4, in standard deviations of what white noise alone gives,
    ~|N(0, 1)| for a frame of pure noise: 4 is beyond the largest of 40 such frames but
    once in 400). A sample below either has no signal. When the sharpest sample (or every
    sample) has none, the search ends with :data:`NO_SIGNAL` instead of focusing on a dark
    or textureless frame: on the real fpd sweep's dark end the black frames read sharper
    than the lit, defocused ones by any energy-normalised measure.

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
    min_peak_contrast: float = 0.1      # (max - min) / max below this = flat curve
    min_peak_significance: float = 8.0  # peak height / measured noise below this = flat curve
    min_signal_level: float = 10.0      # grey levels (0-255): darker frames have no signal
    min_signal_snr: float = 4.0         # texture (F4) / its noise-only spread: below, none
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
                     'golden_tolerance', 'backlash', 'bimodal_ratio', 'fine_span',
                     'min_peak_significance', 'min_signal_level', 'min_signal_snr')
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
    for field in ('golden_tolerance', 'backlash', 'fine_span', 'min_peak_significance',
                  'min_signal_level', 'min_signal_snr'):
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
