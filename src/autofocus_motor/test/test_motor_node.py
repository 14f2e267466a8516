"""Tests of the focus motor node over real DDS.

The simulated motor runs in the node's own process, started as a user starts it; the
stepper and DC motor run in-process on gpiozero's mock pins so the test can watch the pins.
"""
import os
import subprocess
import sys
import textwrap
import time

from autofocus_interfaces.msg import MotorCommand, MotorState
from autofocus_motor.drivers import HALF_STEP_SEQUENCE
from autofocus_motor.motor_driver_node import MotorDriverNode
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
import ros_helpers  # src/autofocus/test, on pytest's pythonpath
from rclpy.parameter import Parameter

STEPPER_PINS = (17, 18, 27, 22)
OFF = (0, 0, 0, 0)
STARTUP_TIMEOUT = 20.0
# How long a condition may take to come true on a loaded machine (wait_for returns as soon
# as it holds).
LOADED = 30.0


def wait_for(predicate, timeout=10.0):
    """The shared poller, with this file's own timeout and polling interval."""
    return ros_helpers.wait_for(predicate, timeout, interval=0.005)


def seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


class MotorClient:
    """Commands the motor and watches its state, from the test harness's node."""

    def __init__(self, ros, node='/focus_motor'):
        self.states = ros.collect(MotorState, f'{node}/state')
        self.publisher = ros.node.create_publisher(MotorCommand, f'{node}/command', 10)
        self.clock = ros.node.get_clock()
        self.sequence = 0

    def wait_ready(self, timeout=STARTUP_TIMEOUT, process=None):
        ready = wait_for(lambda: (self.states and self.publisher.get_subscription_count() > 0)
                         or (process is not None and not process.alive()), timeout)
        if process is not None and not process.alive():
            pytest.fail(f'motor driver exited:\n{process.log()}')
        assert ready, 'motor driver did not come up'

    def send(self, mode, target=0.0, speed=0.0, stamp=None):
        """Publish a command stamped now (or with `stamp`, a builtin_interfaces/Time)."""
        self.sequence += 1
        msg = MotorCommand(mode=mode, target=float(target), speed=float(speed),
                           sequence=self.sequence)
        msg.header.stamp = stamp if stamp is not None else self.clock.now().to_msg()
        self.publisher.publish(msg)
        return self.sequence

    def wait_state(self, predicate, timeout=5.0, start=0):
        """The first state from index `start` on that satisfies predicate (None if none)."""
        def find():
            for msg in self.states[start:]:
                if predicate(msg):
                    return msg
            return None
        return wait_for(find, timeout)

    def wait_rest_after(self, sequence, timeout=5.0):
        """The first at-rest state after command `sequence` was acted on."""
        return self.wait_state(
            lambda s: s.last_command_sequence == sequence and not s.moving, timeout)


@pytest.fixture
def sim_motor(ros, node_process):
    """Start the motor driver process with the simulated motor; return (process, client)."""
    def start(**params):
        process = node_process('autofocus_motor', 'motor_driver',
                               params={'driver': 'sim', **params})
        client = MotorClient(ros)
        client.wait_ready(process=process)
        return process, client
    return start


# -- the node as a process, simulated motor -----------------------------------------------

def test_absolute_relative_and_stop(sim_motor):
    process, motor = sim_motor(max_speed=2000.0, default_speed=1000.0)
    first = motor.states[-1]
    assert first.header.frame_id == 'focus_motor'
    assert (first.position, first.moving, first.fault) == (0.0, False, '')
    assert (first.min_position, first.max_position) == (0.0, 1000.0)
    assert first.position_measured

    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 200.0, 1000.0)
    started = motor.wait_state(lambda s: s.last_command_sequence == seq and s.moving)
    assert started is not None and started.target == 200.0
    done = motor.wait_rest_after(seq)
    assert done is not None
    assert done.position == 200.0 and done.target == 200.0
    # At rest from when it arrived: 0.2 s after it started, before this message.
    assert seconds(done.stationary_since) > seconds(first.stationary_since)
    assert seconds(done.stationary_since) - seconds(started.header.stamp) == \
        pytest.approx(0.2, abs=0.05)
    assert seconds(done.stationary_since) <= seconds(done.header.stamp)
    # The stop is published at once, not at the next periodic message only.
    index = motor.states.index(done)
    assert all(s.moving for s in motor.states[motor.states.index(started):index])

    # Relative, speed 0 = default speed.
    seq = motor.send(MotorCommand.MODE_RELATIVE, -50.0, 0.0)
    done = motor.wait_rest_after(seq)
    assert done.position == 150.0

    # Stop in the middle of a move.
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 1000.0, 500.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and s.position > 170)
    stop = motor.send(MotorCommand.MODE_STOP)
    stopped = motor.wait_rest_after(stop)
    assert 170.0 < stopped.position < 400.0
    time.sleep(0.1)
    assert motor.states[-1].position == stopped.position
    assert not motor.states[-1].moving


def test_limits_are_honoured(sim_motor):
    process, motor = sim_motor(min_position=-100.0, max_position=100.0,
                               max_speed=1000.0)
    # Out-of-range targets are clamped, with a warning; fault stays empty.
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 5000.0, 1e6)
    done = motor.wait_rest_after(seq)
    assert done.position == 100.0 and done.fault == ''
    assert 'clamped' in process.log()
    # Max speed: 200 units at (clamped) 1000 units/s take 0.2 s.
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, -100.0, 1e6)
    started = motor.wait_state(lambda s: s.last_command_sequence == seq and s.moving)
    done = motor.wait_rest_after(seq)
    assert done.position == -100.0
    assert seconds(done.stationary_since) - seconds(started.header.stamp) == \
        pytest.approx(0.2, abs=0.05)
    # A continuous move kept alive by its commands still stops at the limit.
    start = len(motor.states)
    for _ in range(10):
        seq = motor.send(MotorCommand.MODE_VELOCITY, 0.0, 2000.0)
        time.sleep(0.05)
    assert motor.wait_state(lambda s: not s.moving and s.position == 100.0, start=start)
    assert max(s.position for s in motor.states) == 100.0
    assert min(s.position for s in motor.states) == -100.0


def test_velocity_watchdog(sim_motor):
    process, motor = sim_motor(watchdog_timeout=0.3, max_position=10000.0)
    # One command and silence: it stops by itself, not before watchdog_timeout. When it
    # stops depends on how soon the node's control tick runs on a loaded machine: the
    # node's own stamps say how long it ran, and the position agrees with them.
    seq = motor.send(MotorCommand.MODE_VELOCITY, 0.0, 500.0)
    started = motor.wait_state(lambda s: s.last_command_sequence == seq and s.moving,
                               timeout=LOADED)
    stopped = motor.wait_rest_after(seq, timeout=LOADED)
    assert started is not None and stopped is not None
    ran = seconds(stopped.stationary_since) - seconds(started.header.stamp)
    assert ran > 0.25
    # The first moving state is stamped up to a control period after the move began.
    assert 0.3 * 500 - 25 <= stopped.position <= (ran + 0.1) * 500
    assert wait_for(lambda: 'watchdog' in process.log(), LOADED), process.log()


def test_velocity_commands_renewed_in_time_keep_the_motor_going(sim_motor):
    # Renewed every 0.1 s for 2.5 s with a 1 s watchdog: only a stall of the test or the
    # node ten times the renewal period could stop it, not ordinary load.
    _, motor = sim_motor(watchdog_timeout=1.0, max_position=10000.0)
    start = len(motor.states)
    begin = time.monotonic()
    while time.monotonic() - begin < 2.5:
        seq = motor.send(MotorCommand.MODE_VELOCITY, 0.0, 200.0)
        time.sleep(0.1)
    running = motor.states[start:]
    first_moving = next(i for i, s in enumerate(running) if s.moving)
    assert all(s.moving for s in running[first_moving:])
    stopped = motor.wait_rest_after(seq, timeout=LOADED)
    assert stopped.position > motor.states[start].position + 200 * 2.0


def test_bad_parameters_stop_startup_with_a_clear_message(node_process):
    cases = {
        'driver': {'driver': 'servo'},
        'stepper_pins': {'driver': 'stepper', 'stepper_pins': [17, 18, 27]},
        'max_position': {'min_position': 10.0, 'max_position': 10.0},
        'initial_position': {'initial_position': 2000.0},
        'watchdog_timeout': {'watchdog_timeout': 0.0},
        'max_speed': {'max_speed': 500},  # an integer where a float is expected
    }
    # Started together: each takes a second or two to get going.
    processes = {name: node_process('autofocus_motor', 'motor_driver', params=params)
                 for name, params in cases.items()}
    for name, process in processes.items():
        assert wait_for(lambda: not process.alive(), STARTUP_TIMEOUT), name
        log = process.log()
        assert process.popen.returncode == 2, log
        assert f"'{name}'" in log and 'Fix:' in log, log
        assert 'Traceback' not in log, log


# -- processes on gpiozero's mock pins, chosen by environment variables -------------------

@pytest.mark.parametrize('driver', ['stepper', 'dc'])
def test_process_on_mock_pins_stops_cleanly_on_ctrl_c(ros, node_process, monkeypatch, driver):
    # gpiozero reads these when it first needs a pin factory; the mock pins support PWM.
    monkeypatch.setenv('GPIOZERO_PIN_FACTORY', 'mock')
    monkeypatch.setenv('GPIOZERO_MOCK_PIN_CLASS', 'mockpwmpin')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    process = node_process('autofocus_motor', 'motor_driver',
                           params={'driver': driver, 'watchdog_timeout': 5.0})
    motor = MotorClient(ros)
    motor.wait_ready(process=process)
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 100.0, 1000.0)
    done = motor.wait_rest_after(seq)
    # Exact for the stepper; for the DC motor the estimate of a 0.1 s pulse, typically within
    # 0.5 units here (the slack is for a test machine busy with other work).
    assert done.position == pytest.approx(100.0, abs=0 if driver == 'stepper' else 20.0)
    assert done.position_measured == (driver == 'stepper')
    motor.send(MotorCommand.MODE_VELOCITY, 0.0, 500.0)
    assert motor.wait_state(lambda s: s.moving and s.position >= 120)
    status = wait_for(lambda: [d.status[0] for d in diagnostics if d.status], 3.0)
    assert status[0].level == DiagnosticStatus.OK
    assert driver in status[0].hardware_id
    assert process.alive()
    assert process.interrupt() == 0, process.log()
    assert 'Traceback' not in process.log()


def _run_main(how, timeout=30.0):
    """Run main() in a fresh interpreter on mock pins with a failure injected, and return
    its output; the script prints the stepper pins' states after main() ended."""
    script = textwrap.dedent(f'''
        import os, signal, sys
        from gpiozero import Device
        from gpiozero.pins.mock import MockFactory, MockPWMPin
        Device.pin_factory = MockFactory(pin_class=MockPWMPin)
        from autofocus_motor import motor_driver_node as m

        original_tick = m.MotorDriverNode._on_control_tick
        fired = []

        def tick(self):
            original_tick(self)
            if not fired and self._driver.steps_taken >= 20:
                fired.append(True)
                if {how!r} == 'sigint':
                    os.kill(os.getpid(), signal.SIGINT)
                else:
                    raise RuntimeError('injected failure')

        m.MotorDriverNode._on_control_tick = tick
        original_init = m.MotorDriverNode.__init__

        def init(self, **kwargs):
            original_init(self, **kwargs)
            self._driver.start_velocity(500.0)

        m.MotorDriverNode.__init__ = init
        try:
            result = m.main(['motor_driver', '--ros-args', '-p', 'driver:=stepper'])
        finally:
            pins = [Device.pin_factory.pin(n).state for n in {STEPPER_PINS!r}]
            print('PINS', pins, 'STEPS', fired, flush=True)
        print('RESULT', result, flush=True)
    ''')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    return done.returncode, done.stdout + done.stderr


def test_sigint_while_moving_leaves_pins_off():
    returncode, output = _run_main('sigint')
    assert returncode == 0, output
    assert 'PINS [0.0, 0.0, 0.0, 0.0] STEPS [True]' in output, output
    assert 'RESULT 0' in output, output
    assert 'Traceback' not in output, output


def test_exception_in_callback_leaves_pins_off():
    returncode, output = _run_main('exception')
    assert returncode != 0
    assert 'PINS [0.0, 0.0, 0.0, 0.0] STEPS [True]' in output, output
    assert 'RuntimeError: injected failure' in output, output


# -- the node in-process on mock pins -----------------------------------------------------

@pytest.fixture
def switch_interval():
    """The GIL switch interval that main() sets for pin timing."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    yield
    sys.setswitchinterval(previous)


def make_node(ros, **params):
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    return ros.add_node(MotorDriverNode(context=ros.context, parameter_overrides=overrides))


def destroy(ros, node):
    ros.executor.remove_node(node)
    node.destroy_node()


def test_stepper_node_drives_pins_in_sequence(mock_pins, switch_interval, ros):
    node = make_node(ros, driver='stepper', stepper_pins=list(STEPPER_PINS),
                     max_position=1000.0)
    motor = MotorClient(ros)
    motor.wait_ready()
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 12.0, 1000.0)
    done = motor.wait_rest_after(seq)
    assert done.position == 12.0 and done.position_measured
    patterns = mock_pins.patterns(STEPPER_PINS)
    assert patterns[:13] == [HALF_STEP_SEQUENCE[p % 8] for p in range(13)]
    assert patterns[-1] == OFF
    assert len(patterns) == 13 + 1  # phase 12 % 8 = 4 has one coil to switch off

    mock_pins.clear()
    seq = motor.send(MotorCommand.MODE_RELATIVE, -3.0, 1000.0)
    assert motor.wait_rest_after(seq).position == 9.0
    assert mock_pins.patterns(STEPPER_PINS)[:4] == [HALF_STEP_SEQUENCE[p % 8]
                                                    for p in (12, 11, 10, 9)]

    seq = motor.send(MotorCommand.MODE_VELOCITY, 0.0, 1000.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and s.position > 20)
    assert mock_pins.states(STEPPER_PINS) != OFF
    destroy(ros, node)
    assert mock_pins.states(STEPPER_PINS) == OFF
    assert all(mock_pins.pin(n).function == 'input' for n in STEPPER_PINS)


def test_dc_node_runs_timed_pulses(mock_pins, switch_interval, ros):
    node = make_node(ros, driver='dc', dc_forward_pin=23, dc_backward_pin=24,
                     dc_enable_pin=25, dc_pwm=True, dc_full_speed=2000.0)
    motor = MotorClient(ros)
    motor.wait_ready()
    assert not motor.states[-1].position_measured
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 100.0, 1000.0)
    done = motor.wait_rest_after(seq)
    changes = mock_pins.changes((23, 24, 25))
    forward = [(when, value) for when, pin, value in changes if pin == 23]
    assert [value for _, value in forward] == [0.5, 0.0]
    # 100 units at 1000 units/s: 0.1 s. In this process the harness's MultiThreadedExecutor
    # keeps the GIL busy, so the motor thread can wake tens of ms late (the process test
    # checks the timing of the node alone); either way the estimate is what really ran.
    ran = forward[1][0] - forward[0][0]
    assert 0.099 <= ran <= 0.4
    assert done.position == pytest.approx(ran * 1000.0, abs=0.5)
    assert not [c for c in changes if c[1] == 24]
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)

    mock_pins.clear()
    seq = motor.send(MotorCommand.MODE_VELOCITY, 0.0, -200.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and s.moving)
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.1, 1.0)
    destroy(ros, node)
    assert mock_pins.values((23, 24, 25)) == (0.0, 0.0, 0.0)


def test_sim_node_rate_diagnostics_and_parameters(ros):
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    node = make_node(ros, state_rate=20.0, frame_id='lens')
    motor = MotorClient(ros)
    motor.wait_ready()
    # States keep coming at rest, spaced by state_rate's period (the median gap: a late
    # tick makes one gap longer and the next shorter; at the default 50 Hz this fails).
    # How many arrive per second is a rate, which load lowers: a benchmark's figure.
    start = len(motor.states)
    assert wait_for(lambda: len(motor.states) - start >= 21, LOADED)
    window = motor.states[start:start + 21]
    stamps = [seconds(s.header.stamp) for s in window]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) > 0 and sorted(gaps)[len(gaps) // 2] >= 0.8 / 20.0, gaps
    assert all(s.header.frame_id == 'lens' and not s.moving for s in window)

    status = wait_for(lambda: [d.status[0] for d in diagnostics if d.status], 3.0)
    values = {kv.key: kv.value for kv in status[0].values}
    assert values['driver'] == 'sim' and values['fault'] == ''
    assert 'focus_motor' in status[0].name

    # Limits and speeds can change at run time; nonsense and read-only ones are refused.
    results = node.set_parameters([Parameter('max_position', value=100.0)])
    assert results[0].successful
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 500.0, 2000.0)
    done = motor.wait_rest_after(seq)
    assert (done.position, done.max_position) == (100.0, 100.0)
    assert not node.set_parameters([Parameter('min_position', value=100.0)])[0].successful
    assert not node.set_parameters([Parameter('driver', value='stepper')])[0].successful
    assert not node.set_parameters([Parameter('max_speed', value=-1.0)])[0].successful

    # An unknown mode is ignored: not acted on, so its sequence is not echoed.
    motor.sequence = 99
    motor.send(200)
    time.sleep(0.2)
    assert motor.states[-1].last_command_sequence == seq
