import pytest
from autofocus_interfaces.action import Focus

from autofocus.core.focus_request import FocusDefaults, check_defaults, resolve

DEFAULTS = FocusDefaults(strategy='coarse_fine', range_min=10.0, range_max=900.0, timeout=30.0)


def test_empty_goal_takes_every_default():
    request = resolve(Focus.Goal(), DEFAULTS)
    assert (request.strategy, request.roi, request.range_min, request.range_max,
            request.timeout) == ('coarse_fine', None, 10.0, 900.0, 30.0)


def test_given_fields_win():
    goal = Focus.Goal(strategy='sweep', roi_x=0.1, roi_y=0.2, roi_width=0.3, roi_height=0.4,
                      range_min=-5.0, range_max=5.0, timeout=3.0)
    request = resolve(goal, DEFAULTS)
    assert request.strategy == 'sweep'
    assert request.roi == pytest.approx((0.1, 0.2, 0.3, 0.4))
    assert (request.range_min, request.range_max, request.timeout) == (-5.0, 5.0, 3.0)


def test_a_flyby_goal_is_accepted_and_near_misses_of_its_name_are_not():
    request = resolve(Focus.Goal(strategy=Focus.Goal.STRATEGY_FLYBY), DEFAULTS,
                      limits=(0.0, 1000.0), search=SEARCH)
    assert request.strategy == 'flyby'
    for name in ('fly-by', 'FLYBY', 'flyby_scan'):
        with pytest.raises(ValueError, match=f"unknown strategy '{name}'.*flyby"):
            resolve(Focus.Goal(strategy=name), DEFAULTS)


@pytest.mark.parametrize('fields, reason', [
    (dict(strategy='telepathy'), "unknown strategy 'telepathy'"),
    (dict(range_min=500.0, range_max=100.0), 'empty position range'),
    (dict(range_min=5.0, range_max=5.0), 'empty position range'),
    (dict(roi_x=0.8, roi_y=0.0, roi_width=0.5, roi_height=0.5), 'outside the image'),
    (dict(roi_x=-0.1, roi_y=0.0, roi_width=0.5, roi_height=0.5), 'outside the image'),
    (dict(roi_x=0.2, roi_y=0.2), 'offset but no size'),
    (dict(timeout=-1.0), 'negative'),
])
def test_bad_goals_are_refused_with_the_reason(fields, reason):
    with pytest.raises(ValueError, match=reason):
        resolve(Focus.Goal(**fields), DEFAULTS)


NAN, INF = float('nan'), float('inf')
SEARCH = dict(sweep_step=25.0, coarse_step=100.0, fine_step=10.0, climb_step=50.0,
              climb_min_step=5.0, noise_band=0.02, min_peak_contrast=0.3)


@pytest.mark.parametrize('fields, reason', [
    (dict(range_min=NAN, range_max=100.0), 'range_min is nan'),
    (dict(range_min=0.0, range_max=NAN), 'range_max is nan'),
    (dict(range_min=-INF, range_max=100.0), 'range_min is -inf'),
    (dict(timeout=NAN), 'timeout is nan'),
    (dict(timeout=INF), 'timeout is inf'),
    (dict(timeout=1e7), 'more than 3600'),
    (dict(roi_x=NAN, roi_y=0.0, roi_width=0.5, roi_height=0.5), 'roi_x is nan'),
    (dict(roi_x=0.1, roi_y=0.1, roi_width=INF, roi_height=0.5), 'roi_width is inf'),
])
def test_every_number_of_a_goal_must_be_finite_and_in_range(fields, reason):
    with pytest.raises(ValueError, match=reason):
        resolve(Focus.Goal(**fields), DEFAULTS)


@pytest.mark.parametrize('strategy', ['hill_climb', 'sweep', 'coarse_fine', 'golden', 'flyby'])
def test_a_huge_range_is_refused_by_the_motor_limits_or_the_steps(strategy):
    goal = Focus.Goal(strategy=strategy, range_min=-1e9, range_max=1e9)
    # The client knows neither: it cannot judge the range.
    assert resolve(goal, DEFAULTS).range_max == 1e9
    with pytest.raises(ValueError, match=r'outside the motor limits \[0, 1000\]'):
        resolve(goal, DEFAULTS, limits=(0.0, 1000.0), search=SEARCH)
    # Before the motor is heard, the server's steps refuse it.
    with pytest.raises(ValueError, match='cannot be searched with these steps'):
        resolve(goal, DEFAULTS, search=SEARCH)


def test_a_goal_without_a_range_searches_the_configured_range_within_the_lens_limits():
    # A C920 (0..250) under a wider configured range (here 10..900): 10..250.
    request = resolve(Focus.Goal(), DEFAULTS, limits=(0.0, 250.0))
    assert (request.range_min, request.range_max) == (10.0, 250.0)
    request = resolve(Focus.Goal(), DEFAULTS, limits=(-500.0, 600.0))
    assert (request.range_min, request.range_max) == (DEFAULTS.range_min, 600.0)
    # Unknown limits: the configured range as it is.
    request = resolve(Focus.Goal(), DEFAULTS)
    assert (request.range_min, request.range_max) == (DEFAULTS.range_min, DEFAULTS.range_max)
    # A given range is never changed: outside the limits, it is refused.
    with pytest.raises(ValueError, match='outside the motor limits'):
        resolve(Focus.Goal(range_min=0.0, range_max=1000.0), DEFAULTS, limits=(0.0, 250.0))
    # No overlap at all: refused, naming both and the fix.
    with pytest.raises(ValueError, match=r'configured range .* lies outside the motor limits '
                                         r'\[2000, 3000\]; give the goal a range'):
        resolve(Focus.Goal(), DEFAULTS, limits=(2000.0, 3000.0))


def test_a_range_inside_the_limits_with_the_servers_steps_is_accepted():
    request = resolve(Focus.Goal(range_min=100.0, range_max=600.0), DEFAULTS,
                      limits=(0.0, 1000.0), search=SEARCH)
    assert (request.range_min, request.range_max) == (100.0, 600.0)


@pytest.mark.parametrize('defaults, search, reason', [
    (FocusDefaults(range_min=900.0, range_max=100.0), None, 'range_min .900. must be below'),
    (FocusDefaults(range_min=NAN), None, 'range_min is nan'),
    (FocusDefaults(timeout=INF), None, 'goal_timeout is inf'),
    (FocusDefaults(timeout=0.0), None, 'goal_timeout is 0'),
    (FocusDefaults(strategy='telepathy'), None, "default_strategy 'telepathy'"),
    (FocusDefaults(range_max=1e9), SEARCH, 'sweep_step=25 is too small'),
    (FocusDefaults(), dict(SEARCH, climb_min_step=60.0), 'climb_min_step'),
])
def test_the_servers_defaults_are_checked_together(defaults, search, reason):
    with pytest.raises(ValueError, match=reason):
        check_defaults(defaults, search)
    check_defaults(FocusDefaults(), SEARCH)              # the shipped defaults are fine


def test_the_action_names_every_strategy():
    from autofocus.core import strategies
    names = {getattr(Focus.Goal, name) for name in dir(Focus.Goal) if name.startswith('STRATEGY_')}
    assert names == set(strategies.STRATEGIES)
