"""Unit tests of the motor drivers, down to gpiozero's mock pins (no ROS)."""
import statistics
import time

from autofocus_motor.drivers import DCDriver, HALF_STEP_SEQUENCE, SimDriver, StepperDriver
import pytest
import ros_helpers  # src/autofocus/test, on pytest's pythonpath

STEPPER_PINS = (17, 18, 27, 22)
OFF = (0, 0, 0, 0)
# How late a Python thread may wake up on a busy 2-core test machine, s: 0.075 s was seen
# with the machine's load average at 15-23. What a late switch-off costs is checked apart
# (the DC driver's position estimate follows what really ran).
LATE = 0.2


def wait_for(predicate, timeout=5.0):
    """The shared poller, with this file's own timeout and polling interval."""
    return ros_helpers.wait_for(predicate, timeout, interval=0.002)


def wait_until_at_rest(driver, timeout=5.0):
    assert wait_for(lambda: not driver.moving, timeout), f'{driver.name} still moving'


def phase(position):
    return HALF_STEP_SEQUENCE[position % 8]


@pytest.fixture
def stepper(mock_pins):
    driver = StepperDriver(STEPPER_PINS, min_position=-100.0, max_position=100.0,
                           max_speed=2000.0)
    yield driver
    driver.close()


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# -- stepper ------------------------------------------------------------------------------

def test_half_step_sequence_changes_one_coil_per_step():
    for i, pattern in enumerate(HALF_STEP_SEQUENCE):
        following = HALF_STEP_SEQUENCE[(i + 1) % 8]
        assert sum(a != b for a, b in zip(pattern, following)) == 1
        assert 1 <= sum(pattern) <= 2


def test_stepper_forward_follows_half_step_sequence(stepper, mock_pins):
    assert mock_pins.states(STEPPER_PINS) == OFF
    assert stepper.start_move(10, 1000.0) == 10.0
    wait_until_at_rest(stepper)
    # The rest phase is energised first, then one coil changes per step (wrapping 7 -> 0),
    # then the coils of the last phase are switched off.
    patterns = mock_pins.patterns(STEPPER_PINS)
    assert patterns[:11] == [phase(p) for p in range(0, 11)]
    assert patterns[11:] == ([(0, 0, 1, 0), OFF] if phase(10) == (0, 0, 1, 1) else [OFF])
    assert stepper.position == 10.0
    assert stepper.steps_taken == 10
    assert mock_pins.states(STEPPER_PINS) == OFF


def test_stepper_reverse_follows_sequence_backwards(stepper, mock_pins):
    stepper.start_move(-11, 1000.0)
    wait_until_at_rest(stepper)
    patterns = mock_pins.patterns(STEPPER_PINS)
    assert patterns[:12] == [phase(p) for p in range(0, -12, -1)]
    assert patterns[-1] == OFF
    assert stepper.position == -11.0
    assert stepper.steps_taken == 11


def test_stepper_exact_step_count_and_timing(mock_pins):
    with StepperDriver(STEPPER_PINS, max_position=1000.0) as stepper:
        speed = 400.0
        start = time.monotonic()
        stepper.start_move(123, speed)
        assert stepper.moving
        wait_until_at_rest(stepper)
        elapsed = time.monotonic() - start
        assert stepper.position == 123.0
        assert stepper.steps_taken == 123
        changes = mock_pins.changes(STEPPER_PINS)
        # Energise phase 0 (one coil), 123 one-coil steps, release phase 123 % 8 = 3 (2 coils).
        assert len(changes) == 1 + 123 + 2
        step_times = [when for when, _, _ in changes[:124]]
        intervals = [b - a for a, b in zip(step_times, step_times[1:])]
        assert statistics.median(intervals) == pytest.approx(1 / speed, rel=0.2)
        # Never faster than asked (a rushed stepper loses steps); later only by as much as
        # a busy machine delays a Python thread.
        assert 0.95 * 123 / speed <= step_times[-1] - step_times[0] <= 123 / speed + 0.2
        assert elapsed <= 123 / speed + 0.25
        # At rest from when the coils went off, shortly after the last step.
        assert 0 <= stepper.stationary_since - step_times[-1] <= 0.02


def test_stepper_stop_and_close_switch_all_coils_off(stepper, mock_pins):
    stepper.start_velocity(1000.0)
    assert wait_for(lambda: stepper.steps_taken >= 5)
    stepper.stop()
    wait_until_at_rest(stepper, timeout=0.5)
    assert mock_pins.states(STEPPER_PINS) == OFF
    stopped_at = stepper.steps_taken
    time.sleep(0.02)
    assert stepper.steps_taken == stopped_at
    assert stepper.position == float(stopped_at)

    # Closing in the middle of a move: coils off, devices released.
    stepper.start_velocity(-1000.0)
    assert wait_for(lambda: stepper.position < stopped_at - 3)
    stepper.close()
    assert mock_pins.states(STEPPER_PINS) == OFF
    assert not stepper.moving
    assert all(mock_pins.pin(n).function == 'input' for n in STEPPER_PINS)
    stepper.close()  # a second close does nothing
    with pytest.raises(RuntimeError):
        stepper.start_move(0, 100.0)


def test_stepper_soft_limits(mock_pins):
    with StepperDriver(STEPPER_PINS, min_position=-5.0, max_position=20.0) as stepper:
        assert stepper.start_move(500, 2000.0) == 20.0
        wait_until_at_rest(stepper)
        assert stepper.position == 20.0
        assert stepper.start_move(-500, 2000.0) == -5.0
        wait_until_at_rest(stepper)
        assert stepper.position == -5.0
        # A continuous move stops at the limit by itself, coils off.
        stepper.start_velocity(2000.0)
        wait_until_at_rest(stepper)
        assert stepper.position == 20.0
        assert mock_pins.states(STEPPER_PINS) == OFF
        # Already at the limit: no step taken outwards.
        taken = stepper.steps_taken
        stepper.start_velocity(2000.0)
        wait_until_at_rest(stepper)
        assert stepper.steps_taken == taken


def test_stepper_max_speed_clamps(mock_pins):
    with StepperDriver(STEPPER_PINS, max_position=1000.0, max_speed=500.0) as stepper:
        assert stepper.start_velocity(-1e6) == -500.0
        stepper.stop()
        start = time.monotonic()
        stepper.start_move(25, 1e6)
        wait_until_at_rest(stepper)
        assert time.monotonic() - start >= 25 / 500.0 * 0.95
        assert stepper.position == 25.0


def test_stepper_velocity_watchdog(mock_pins):
    with StepperDriver(STEPPER_PINS, max_position=1000.0) as stepper:
        start = time.monotonic()
        stepper.start_velocity(1000.0, timeout=0.1)
        # Renewing the command keeps it going: it stops 0.1 s after the last renewal, not
        # after the first command (bounds that a late wake-up of this thread cannot break).
        time.sleep(0.05)
        renewed = time.monotonic()
        stepper.start_velocity(1000.0, timeout=0.1)
        wait_until_at_rest(stepper, timeout=5.0)
        stopped = time.monotonic()
        assert stopped - renewed >= 0.1 * 0.95
        assert 0 < stepper.position <= 1000.0 * (stopped - start) + 2
        assert mock_pins.states(STEPPER_PINS) == OFF


def test_stepper_rejects_wrong_pin_count(mock_pins):
    with pytest.raises(ValueError, match='4 pins'):
        StepperDriver([17, 18, 27])


# -- DC motor -----------------------------------------------------------------------------

def on_intervals(changes, number):
    """(start, end, value) of each interval in which pin `number` was on."""
    intervals, started = [], None
    for when, pin, value in changes:
        if pin != number:
            continue
        if value > 0 and started is None:
            started = (when, value)
        elif value == 0 and started is not None:
            intervals.append((started[0], when, started[1]))
            started = None
    return intervals


def check_pulse(interval, expected, called):
    """Check a pulse commanded at ``called`` (test clock); return its length as recorded.

    Off no earlier than ``expected`` after the command (an ordering: the driver times the
    pulse from a clock read after ``called``), and not much later (LATE: a late wake-up of
    the motor thread). Its recorded length may be shorter than ``expected``: the pin's
    switch-on is recorded after the driver read its clock, later still on a busy machine."""
    assert interval[1] - called >= expected - 0.001, (interval[1] - called, expected)
    length = interval[1] - interval[0]
    assert length <= expected + LATE
    return length


def timed_move(dc, target, speed):
    """start_move and wait for rest; (when it was called, when rest was seen), test clock."""
    called = time.monotonic()
    dc.start_move(target, speed)
    wait_until_at_rest(dc)
    return called, time.monotonic()


def assert_estimate_counts_the_pulse(moved, ran, speed, called, rest_seen):
    """A DC driver estimates what it moved from when its pins really went on and off: at
    least the whole pulse (a late switch-off shows in the position), at most the time from
    the command to the rest the test saw. Orderings, not timings: a machine too busy to run
    the motor thread on time cannot break them."""
    assert ran * speed - 1e-6 <= moved <= (rest_seen - called) * speed + 1e-6, \
        (moved, ran * speed, (rest_seen - called) * speed)


def test_dc_timed_moves_with_pwm(mock_pins):
    with DCDriver(23, 24, enable_pin=25, pwm=True, full_speed=2000.0, max_speed=2000.0,
                  max_position=1000.0) as dc:
        assert not dc.position_measured
        assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
        called = time.monotonic()
        dc.start_move(100, 1000.0)
        assert dc.moving
        assert mock_pins.values((23, 24, 25)) == (0.5, 0.0, 1.0)  # half speed = half duty
        wait_until_at_rest(dc)
        rest_seen = time.monotonic()
        assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
        forward = on_intervals(mock_pins.changes((23, 24, 25)), 23)
        assert len(forward) == 1
        ran = check_pulse(forward[0], 0.1, called)
        assert forward[0][2] == 0.5
        assert_estimate_counts_the_pulse(dc.position, ran, 1000.0, called, rest_seen)
        start = dc.position

        mock_pins.clear()
        called, rest_seen = timed_move(dc, 40, 2000.0)
        changes = mock_pins.changes((23, 24, 25))
        assert on_intervals(changes, 23) == []
        backward = on_intervals(changes, 24)
        assert len(backward) == 1
        ran = check_pulse(backward[0], (start - 40) / 2000.0, called)
        assert backward[0][2] == 1.0
        enable = on_intervals(changes, 25)
        assert enable[0][0] <= backward[0][0] and enable[0][1] >= backward[0][1]
        assert_estimate_counts_the_pulse(start - dc.position, ran, 2000.0, called, rest_seen)
        assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)


def test_dc_without_pwm_runs_at_full_speed(mock_pins):
    with DCDriver(23, 24, pwm=False, full_speed=1000.0, max_speed=1000.0,
                  max_position=1000.0) as dc:
        called = time.monotonic()
        dc.start_move(50, 10.0)  # cannot go slower than full speed without PWM
        assert mock_pins.values((23, 24)) == (1.0, 0.0)
        wait_until_at_rest(dc)
        rest_seen = time.monotonic()
        forward = on_intervals(mock_pins.changes((23, 24)), 23)
        ran = check_pulse(forward[0], 0.05, called)
        assert_estimate_counts_the_pulse(dc.position, ran, 1000.0, called, rest_seen)


def test_dc_without_pwm_close_while_running_switches_pins_off(mock_pins):
    dc = DCDriver(23, 24, enable_pin=25, pwm=False, max_position=1000.0)
    dc.start_move(0, 1.0)  # already there: nothing runs
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
    dc.start_move(1000, 2000.0)
    assert mock_pins.values((23, 24, 25)) == (1.0, 0.0, 1.0)
    dc.close()
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
    assert 0.0 < dc.position < 1000.0


def test_dc_without_pwm_needs_max_speed_at_least_full_speed(mock_pins):
    with pytest.raises(ValueError, match='full_speed'):
        DCDriver(23, 24, pwm=False, full_speed=2000.0, max_speed=1000.0)


def test_dc_velocity_stops_at_limit_and_on_watchdog(mock_pins):
    with DCDriver(23, 24, full_speed=2000.0, max_position=100.0) as dc:
        dc.start_velocity(2000.0)
        wait_until_at_rest(dc)
        assert 100.0 <= dc.position <= 100.0 + LATE * 2000.0
        assert mock_pins.values((23, 24)) == (0.0, 0.0)
        mock_pins.clear()
        start = dc.position
        called = time.monotonic()
        dc.start_velocity(-500.0, timeout=0.08)
        wait_until_at_rest(dc)
        rest_seen = time.monotonic()
        ran = check_pulse(on_intervals(mock_pins.changes((23, 24)), 24)[0], 0.08, called)
        assert_estimate_counts_the_pulse(start - dc.position, ran, 500.0, called, rest_seen)


def test_dc_stop_and_close_switch_pins_off(mock_pins):
    dc = DCDriver(23, 24, enable_pin=25, max_position=1000.0)
    dc.start_move(1000, 100.0)
    time.sleep(0.02)
    dc.stop()
    assert not dc.moving
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
    assert 1.0 <= dc.position <= 2.0 + LATE * 100.0
    dc.start_move(0, 100.0)
    dc.close()
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)
    assert all(mock_pins.pin(n).function == 'input' for n in (23, 24, 25))


# -- simulated motor ----------------------------------------------------------------------

def test_sim_reaches_target_at_speed():
    clock = FakeClock()
    sim = SimDriver(max_position=1000.0, max_speed=2000.0, clock=clock)
    assert sim.position_measured
    start = clock.now
    sim.start_move(300, 1000.0)
    assert sim.moving
    clock.now += 0.1
    assert sim.position == pytest.approx(100)
    assert sim.target == 300.0
    clock.now += 0.25
    sim.update()
    assert not sim.moving
    assert sim.position == 300.0
    assert sim.stationary_since == pytest.approx(start + 0.3)


def test_sim_limits_speed_and_watchdog():
    clock = FakeClock()
    sim = SimDriver(min_position=-10.0, max_position=50.0, max_speed=100.0, clock=clock)
    assert sim.start_move(1e9, 100.0) == 50.0
    assert sim.start_move(-1e9, 100.0) == -10.0
    assert sim.start_velocity(1e6) == 100.0
    clock.now += 10.0
    assert sim.position == 50.0  # a continuous move stops at the limit
    assert not sim.moving
    sim.start_velocity(-100.0, timeout=0.2)
    clock.now += 0.1
    sim.start_velocity(-100.0, timeout=0.2)  # renewed: runs on
    clock.now += 0.15
    assert sim.moving
    clock.now += 1.0
    assert not sim.moving
    assert sim.position == pytest.approx(50 - 30)
    # Relative to where it is now, stop halts mid-move.
    sim.start_move(0, 10.0)
    clock.now += 0.5
    sim.stop()
    assert not sim.moving
    assert sim.position == pytest.approx(15)


def test_sim_limits_can_change_while_moving():
    clock = FakeClock()
    sim = SimDriver(max_position=1000.0, clock=clock)
    sim.start_move(500, 100.0)
    clock.now += 1.0
    sim.set_limits(0.0, 200.0)
    assert sim.target == 200.0
    clock.now += 2.0
    assert sim.position == 200.0
    with pytest.raises(ValueError):
        sim.set_limits(5.0, 5.0)


def test_bad_driver_arguments():
    with pytest.raises(ValueError, match='below'):
        SimDriver(min_position=10.0, max_position=0.0)
    with pytest.raises(ValueError, match='initial_position'):
        SimDriver(max_position=10.0, initial_position=11.0)
    with pytest.raises(ValueError, match='max_speed'):
        SimDriver(max_speed=0.0)
    sim = SimDriver()
    with pytest.raises(ValueError):
        sim.start_move(float('nan'), 10.0)
    with pytest.raises(ValueError):
        sim.start_move(10.0, 0.0)
