"""A focus goal resolved against the server's defaults, and checked completely (no ROS here).

The one place where a goal is validated: the action server resolves every goal with
:func:`resolve` when it arrives and rejects it with the reason (logged) if it does not
validate; the focus client runs the same function first, so a user sees the reason
instead of a bare "goal rejected". The server knows more than the client (the motor's
limits, its search steps) and passes it in; the checks are the same code. The server's
own defaults are checked by :func:`check_defaults` at start-up.
"""
import math
from dataclasses import dataclass

from autofocus.core import measures, strategies

# Longest goal timeout accepted, seconds (the focus server's goal_timeout has the same cap).
MAX_TIMEOUT = 3600.0


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


def check_defaults(defaults: FocusDefaults, search: dict | None = None) -> None:
    """Raise ValueError naming the first unusable default (the server's start-up check)."""
    if defaults.strategy not in strategies.STRATEGIES:
        raise ValueError(f"default_strategy '{defaults.strategy}' is unknown; use one of: "
                         f"{', '.join(strategies.STRATEGIES)}")
    for name, value in (('range_min', defaults.range_min), ('range_max', defaults.range_max),
                        ('goal_timeout', defaults.timeout)):
        if not math.isfinite(value):
            raise ValueError(f'{name} is {value}; it must be a finite number')
    if defaults.range_min >= defaults.range_max:
        raise ValueError(f'range_min ({defaults.range_min:g}) must be below range_max '
                         f'({defaults.range_max:g})')
    if not 0.0 < defaults.timeout <= MAX_TIMEOUT:
        raise ValueError(f'goal_timeout is {defaults.timeout:g} s; give seconds in '
                         f'(0, {MAX_TIMEOUT:g}]')
    if search is not None:
        check_search(defaults.range_min, defaults.range_max, search)


def check_search(range_min: float, range_max: float, search: dict) -> None:
    """Raise ValueError if the search steps ``search`` (SearchConfig fields) cannot search
    range_min..range_max (e.g. a step that would take more than
    strategies.MAX_SCAN_POSITIONS samples)."""
    try:
        strategies.validate_config(strategies.SearchConfig(
            range_min=range_min, range_max=range_max, **search))
    except ValueError as error:
        raise ValueError(f'range [{range_min:g}, {range_max:g}] cannot be searched with '
                         f'these steps: {error}') from None


def check_limits(request: FocusRequest, min_position: float, max_position: float) -> None:
    """Raise ValueError if the request's range leaves the motor's limits."""
    if request.range_min < min_position or request.range_max > max_position:
        raise ValueError(f'range [{request.range_min:g}, {request.range_max:g}] is outside '
                         f'the motor limits [{min_position:g}, {max_position:g}]')


def resolve(goal, defaults: FocusDefaults, limits: tuple | None = None,
            search: dict | None = None) -> FocusRequest:
    """Fill a Focus goal's empty fields from defaults; raise ValueError saying what is wrong.

    ``limits``: the motor's (min_position, max_position), when known; ``search``: the
    server's search steps (SearchConfig fields), when known. Every numeric field must be
    finite and in its range.
    """
    strategy = goal.strategy.strip() or defaults.strategy
    if strategy not in strategies.STRATEGIES:
        raise ValueError(f"unknown strategy '{goal.strategy}'; "
                         f"use one of: {', '.join(strategies.STRATEGIES)} (or '' for the default)")
    for name in ('roi_x', 'roi_y', 'roi_width', 'roi_height', 'range_min', 'range_max',
                 'timeout'):
        value = getattr(goal, name)
        if not math.isfinite(value):
            raise ValueError(f'{name} is {value}; every number of a goal must be finite')
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
        if limits is not None:
            # No range asked for: the configured one, within this lens's limits (a C920's
            # 0..250 under the default 0..1000), rather than a refusal.
            low, high = max(range_min, limits[0]), min(range_max, limits[1])
            if low >= high:
                raise ValueError(
                    f'the configured range [{range_min:g}, {range_max:g}] lies outside the '
                    f'motor limits [{limits[0]:g}, {limits[1]:g}]; give the goal a range '
                    'within them, or set range_min/range_max for the focus server')
            range_min, range_max = low, high
    elif range_min >= range_max:
        raise ValueError(f'empty position range [{range_min}, {range_max}]: range_min must be '
                         'below range_max (or both 0 for the configured range)')
    if goal.timeout < 0.0:
        raise ValueError(f'timeout {goal.timeout} s is negative; give seconds > 0, or 0 for '
                         'the configured default')
    if goal.timeout > MAX_TIMEOUT:
        raise ValueError(f'timeout {goal.timeout:g} s is more than {MAX_TIMEOUT:g} s; give '
                         'a shorter one, or 0 for the configured default')
    timeout = goal.timeout or defaults.timeout
    request = FocusRequest(strategy, roi, range_min, range_max, timeout)
    if limits is not None:
        check_limits(request, *limits)
    if search is not None:
        check_search(range_min, range_max, search)
    return request
