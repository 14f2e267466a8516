"""Homing a stepper on a home switch, on gpiozero's mock pins (no ROS): the switch found,
zero set there, absolute moves refused before, and a switch that never closes."""
import threading
import time

from autofocus_motor.drivers import HomingRequired, HomingStepperDriver, StepperDriver
import pytest
import ros_helpers

STEPPER_PINS = (17, 18, 27, 22)
HOME_PIN = 5
OFF = (0, 0, 0, 0)


class Switch:
    """A limit switch the lens carriage closes below `closes_at` (in the driver's count at
    start-up): a thread that watches the motor and drives the pin like the contact would."""

    def __init__(self, mock_pins, driver, closes_at):
        self.pin = mock_pins.pin(HOME_PIN)
        self.driver, self.closes_at = driver, closes_at
        self.offset = 0          # the driver's count moves when it homes; the switch does not
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            closed = self.driver.state().position + self.offset <= self.closes_at
            if closed and self.pin.state:        # pull-up: closed = low
                self.pin.drive_low()
            elif not closed and not self.pin.state:
                self.pin.drive_high()
            time.sleep(0.0005)

    def close(self):
        self._stop.set()
        self._thread.join(2.0)


def stamped(ros, command):
    """Drivers ignore unstamped commands (nothing stale replays after an outage)."""
    command.header.stamp = ros.node.get_clock().now().to_msg()
    return command


@pytest.fixture
def homing_stepper(mock_pins):
    mock_pins.pin(HOME_PIN).drive_high()     # open (pulled up)
    driver = HomingStepperDriver(STEPPER_PINS, HOME_PIN, min_position=0.0, max_position=400.0,
                                 max_speed=2000.0, homing_speed=1000.0, homing_timeout=10.0,
                                 initial_position=200.0)
    yield driver
    driver.close()


def test_absolute_moves_are_refused_until_homed_then_zero_is_the_switch(
        homing_stepper, mock_pins):
    driver = homing_stepper
    assert not driver.homed
    with pytest.raises(HomingRequired, match='home'):
        driver.start_move(300.0, 1000.0)
    assert not driver.moving
    # Relative moves (jogging) still run.
    assert driver.start_move(driver.position + 10, 1000.0, absolute=False) == 210.0
    assert ros_helpers.wait_for(lambda: not driver.moving, 5.0)

    # The switch closes 130 half-steps below where the motor thinks it started: beyond the
    # soft limit at 0, which homing must pass.
    switch = Switch(mock_pins, driver, closes_at=70)
    try:
        ok, message = driver.home()
        assert ok, message
        assert driver.homed and not driver.moving and driver.fault == ''
        # Zero is the switch's edge; the motor stopped within a half-step or two past it.
        assert -3 <= driver.position <= 0, driver.position
        assert mock_pins.states(STEPPER_PINS) == OFF
        switch.offset = 70                       # the count is now relative to the switch
        assert (driver.min_position, driver.max_position) == (0.0, 400.0)   # restored
        assert driver.start_move(50.0, 1000.0) == 50.0
        assert ros_helpers.wait_for(lambda: not driver.moving, 5.0)
        assert driver.position == 50.0
        assert not driver.switch_pressed

        # Homing again from on the switch: it backs off first, then finds the same edge.
        driver.start_move(0.0, 1000.0)
        assert ros_helpers.wait_for(lambda: not driver.moving, 5.0)
        assert ros_helpers.wait_for(lambda: driver.switch_pressed, 2.0)
        ok, message = driver.home()
        assert ok, message
        assert -3 <= driver.position <= 0, driver.position
    finally:
        switch.close()


def test_a_switch_that_never_closes_times_out_with_a_fault_and_the_motor_stopped(
        homing_stepper, mock_pins):
    driver = homing_stepper
    started = time.monotonic()
    ok, message = driver.home(timeout=0.5)
    assert not ok
    assert time.monotonic() - started < 5.0
    assert 'did not close within 0.5 s' in message and f'GPIO {HOME_PIN}' in message
    assert driver.fault == message and 'homing failed' in driver.fault
    assert not driver.moving and not driver.homed
    assert mock_pins.states(STEPPER_PINS) == OFF
    position = driver.position
    assert position < 200.0                      # it did turn towards the switch
    time.sleep(0.1)
    assert driver.position == position          # and stays stopped
    assert (driver.min_position, driver.max_position) == (0.0, 400.0)
    with pytest.raises(HomingRequired):
        driver.start_move(100.0, 1000.0)


def test_a_stop_during_homing_ends_it_without_homing(homing_stepper, mock_pins):
    driver = homing_stepper
    result = {}
    thread = threading.Thread(target=lambda: result.update(zip(('ok', 'msg'), driver.home())))
    thread.start()
    assert ros_helpers.wait_for(lambda: driver.moving, 5.0)
    with pytest.raises(RuntimeError, match='homing is under way'):
        driver.start_move(10.0, 100.0, absolute=False)
    driver.stop()
    thread.join(5.0)
    assert result['ok'] is False and not driver.homed and not driver.moving


def test_without_a_switch_the_stepper_moves_absolutely_from_its_assumed_position(mock_pins):
    driver = StepperDriver(STEPPER_PINS, min_position=0.0, max_position=400.0,
                           initial_position=200.0)
    try:
        assert driver.start_move(250.0, 1000.0) == 250.0
        assert ros_helpers.wait_for(lambda: not driver.moving, 5.0)
        assert driver.position == 250.0
    finally:
        driver.close()


def test_bad_homing_arguments(mock_pins):
    with pytest.raises(ValueError, match='homing_direction'):
        HomingStepperDriver(STEPPER_PINS, HOME_PIN, homing_direction=0)
    with pytest.raises(ValueError, match='homing_speed'):
        HomingStepperDriver(STEPPER_PINS, HOME_PIN, homing_speed=-1.0)


# -- the node: ~/home over DDS ------------------------------------------------------------

def _call_home(ros, timeout=0.0, wait=30.0):
    from autofocus_interfaces.srv import Home
    client = ros.node.create_client(Home, '/focus_motor/home')
    assert client.wait_for_service(timeout_sec=20.0), 'no /focus_motor/home service'
    future = client.call_async(Home.Request(timeout=timeout))
    assert ros_helpers.wait_for(future.done, wait), 'no answer from /focus_motor/home'
    return future.result()


def test_node_refuses_absolute_moves_until_home_service_has_homed(mock_pins, ros):
    from autofocus_interfaces.msg import MotorCommand, MotorState
    from autofocus_motor.motor_driver_node import MotorDriverNode
    from rclpy.parameter import Parameter
    mock_pins.pin(HOME_PIN).drive_high()
    # (watchdog_timeout: this test sends single commands, no keepalives; on a busy machine
    # the mock stepper's short moves can take longer than the default 0.4 s)
    params = dict(driver='stepper', stepper_pins=list(STEPPER_PINS), home_pin=HOME_PIN,
                  homing_speed=1000.0, max_speed=2000.0, min_position=0.0,
                  max_position=400.0, initial_position=200.0, watchdog_timeout=10.0)
    node = ros.add_node(MotorDriverNode(context=ros.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()]))
    states = ros.collect(MotorState, '/focus_motor/state')
    commands = ros.node.create_publisher(MotorCommand, '/focus_motor/command', 10)
    try:
        assert ros_helpers.wait_for(lambda: states and commands.get_subscription_count(), 20.0)
        commands.publish(stamped(ros, MotorCommand(mode=MotorCommand.MODE_ABSOLUTE,
                                                   target=300.0, speed=1000.0, sequence=1)))
        refused = ros_helpers.wait_for(
            lambda: next((s for s in states if s.last_command_sequence == 1), None), 10.0)
        assert 'HomingRequired' in refused.fault and 'home' in refused.fault
        assert refused.position == 200.0 and not refused.moving
        assert not refused.position_measured      # counted from an unknown zero

        switch = Switch(mock_pins, node._driver, closes_at=120)
        try:
            response = _call_home(ros)
        finally:
            switch.close()
        assert response.success, response.message
        # The refused move's fault is gone with the homing (a focus goal would abort on it).
        assert ros_helpers.wait_for(lambda: states[-1].fault == '', 5.0), states[-1]
        assert states[-1].position_measured
        commands.publish(stamped(ros, MotorCommand(mode=MotorCommand.MODE_ABSOLUTE,
                                                   target=30.0, speed=1000.0, sequence=2)))
        done = ros_helpers.wait_for(lambda: next(
            (s for s in states if s.last_command_sequence == 2 and not s.moving
             and s.position == 30.0), None), 10.0)
        assert done is not None and done.fault == '', states[-1]
    finally:
        ros.executor.remove_node(node)
        node.destroy_node()
    assert mock_pins.states(STEPPER_PINS) == OFF


def test_node_process_home_switch_never_closing_times_out_while_state_keeps_coming(
        ros, node_process, monkeypatch):
    from autofocus_interfaces.msg import MotorState
    monkeypatch.setenv('GPIOZERO_PIN_FACTORY', 'mock')
    process = node_process('autofocus_motor', 'motor_driver', params=dict(
        driver='stepper', home_pin=HOME_PIN, homing_timeout=2.0, homing_speed=100.0,
        initial_position=500.0))
    states = ros.collect(MotorState, '/focus_motor/state', qos=100)
    assert ros_helpers.wait_for(lambda: states, 20.0), process.log()
    before = len(states)
    response = _call_home(ros, timeout=1.0)
    assert not response.success
    assert 'did not close within 1 s' in response.message, response.message
    # The executor was free while homing ran (the state kept coming, moving).
    assert any(s.moving for s in states[before:]), process.log()
    assert ros_helpers.wait_for(lambda: 'homing failed' in states[-1].fault
                                and not states[-1].moving, 5.0), states[-1]
    assert states[-1].position < 500.0


def test_node_without_a_switch_says_homing_is_not_configured(ros, node_process):
    process = node_process('autofocus_motor', 'motor_driver', params=dict(driver='sim'))
    response = _call_home(ros)
    assert not response.success and 'no home switch' in response.message, process.log()
