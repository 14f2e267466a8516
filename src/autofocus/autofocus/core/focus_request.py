"""A focus goal resolved against the server's defaults, and checked (no ROS here).

The action server rejects a goal whose request does not validate and logs the
reason; the focus client runs the same check first, so a user sees the reason
instead of a bare "goal rejected".
"""
from dataclasses import dataclass

from autofocus.core import measures, strategies


@dataclass(frozen=True)
class FocusDefaults:
    strategy: str = strategies.DEFAULT_STRATEGY
    range_min: float = 0.0
    range_max: float = 1000.0
    timeout: float = 60.0


@dataclass(frozen=True)
class FocusRequest:
    strategy: str
    roi: tuple | None          # normalised (x, y, w, h), or None for the sharpness node's own
    range_min: float
    range_max: float
    timeout: float


def resolve(goal, defaults: FocusDefaults) -> FocusRequest:
    """Fill a Focus goal's empty fields from defaults; raise ValueError saying what is wrong."""
    strategy = goal.strategy.strip() or defaults.strategy
    if strategy not in strategies.STRATEGIES:
        raise ValueError(f"unknown strategy '{goal.strategy}'; "
                         f"use one of: {', '.join(strategies.STRATEGIES)} (or '' for the default)")
    roi = None
    if goal.roi_width or goal.roi_height:
        roi = (goal.roi_x, goal.roi_y, goal.roi_width, goal.roi_height)
        try:
            measures.roi_pixels(1000, 1000, roi)
        except ValueError as error:
            raise ValueError(f'ROI {tuple(round(v, 4) for v in roi)} is outside the image: '
                             f'{error}; give x, y, width, height as fractions in [0, 1] '
                             'with x + width <= 1 and y + height <= 1') from None
    elif goal.roi_x or goal.roi_y:
        raise ValueError('ROI has an offset but no size; set roi_width and roi_height too '
                         '(or all four to 0 for the configured ROI)')
    range_min, range_max = goal.range_min, goal.range_max
    if range_min == range_max == 0.0:
        range_min, range_max = defaults.range_min, defaults.range_max
    elif range_min >= range_max:
        raise ValueError(f'empty position range [{range_min}, {range_max}]: range_min must be '
                         'below range_max (or both 0 for the configured range)')
    timeout = goal.timeout or defaults.timeout
    if timeout < 0.0:
        raise ValueError(f'timeout {goal.timeout} s is negative; give seconds > 0, or 0 for '
                         'the configured default')
    return FocusRequest(strategy, roi, range_min, range_max, timeout)
