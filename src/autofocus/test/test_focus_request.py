import pytest
from autofocus_interfaces.action import Focus

from autofocus.core.focus_request import FocusDefaults, resolve

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
