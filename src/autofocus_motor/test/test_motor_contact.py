"""Contact, stale commands and the position across restarts (issue 11).

The drivers on their own (gpiozero's mock pins for the stepper and the DC motor), the
position file on its own, and the node as a process, as a user starts it.
"""
import json
import signal
import time

from autofocus_interfaces.msg import MotorCommand, MotorState
from autofocus_motor.drivers import DCDriver, SimDriver, StepperDriver
from autofocus_motor.motor_driver_node import KEEPALIVE_QOS
from autofocus_motor.position_store import PositionStore
from builtin_interfaces.msg import Time
import pytest
import ros_helpers  # src/autofocus/test, on pytest's pythonpath

STEPPER_PINS = (17, 18, 27, 22)
STARTUP_TIMEOUT = 20.0


def wait_for(predicate, timeout=10.0):
    return ros_helpers.wait_for(predicate, timeout, interval=0.005)


def wait_at_rest(driver, timeout=5.0):
    assert wait_for(lambda: not driver.moving, timeout)


# -- the drivers' contact watchdog --------------------------------------------------------

def test_sim_move_stops_at_the_contact_deadline_and_renewal_extends_it():
    with SimDriver(max_position=1000.0) as sim:
        sim.renew_contact(0.2)
        sim.start_move(1000.0, 1000.0)  # would take 1 s
        wait_at_rest(sim)
        assert sim.contact_lost_at is not None
        # At the deadline (0.2 s after the renewal, just before the move started).
        assert sim.position == pytest.approx(200.0, abs=2.0)
        assert sim.stationary_since == pytest.approx(sim.contact_lost_at)

        # Renewed every 0.05 s, the same move runs to its end.
        sim.renew_contact(0.2)
        sim.start_move(0.0, 1000.0)
        while sim.moving:
            sim.renew_contact(0.2)
            time.sleep(0.05)
        assert sim.position == 0.0 and sim.contact_lost_at is None

        # A move that ends in time is not a lost contact.
        sim.renew_contact(0.5)
        sim.start_move(100.0, 1000.0)
        wait_at_rest(sim)
        time.sleep(0.5)
        sim.update()
        assert sim.position == 100.0 and sim.contact_lost_at is None
        # And a keepalive at rest starts nothing.
        sim.renew_contact(0.5)
        assert not sim.moving


def test_stepper_switches_every_coil_off_at_the_contact_deadline(mock_pins):
    # A holding time long enough that skipping it shows through any late wake-up.
    with StepperDriver(list(STEPPER_PINS), max_position=10000.0, hold_time=0.5) as stepper:
        start = time.monotonic()
        stepper.renew_contact(0.2)
        stepper.start_move(10000.0, 500.0)
        wait_at_rest(stepper)
        assert stepper.contact_lost_at is not None
        # Never before the deadline; after it by no more than a busy machine's late wake-up.
        assert 0.2 <= stepper.contact_lost_at - start < 0.2 + 0.25
        assert mock_pins.states(STEPPER_PINS) == (0, 0, 0, 0)
        off = max(when for when, _, value in mock_pins.changes(STEPPER_PINS))
        # Coils off at the deadline, without the 0.5 s holding time.
        assert off - stepper.contact_lost_at < 0.25
        assert 0 < stepper.position <= 500 * (stepper.contact_lost_at - start) + 2
        position = stepper.position
        time.sleep(0.3)
        assert stepper.position == position and not stepper.moving


def test_dc_pulse_ends_at_the_contact_deadline(mock_pins):
    with DCDriver(23, 24, full_speed=2000.0, max_position=1000.0) as dc:
        dc.renew_contact(0.15)
        dc.start_move(1000.0, 1000.0)
        wait_at_rest(dc)
        assert dc.contact_lost_at is not None
        assert mock_pins.values((23, 24)) == (0.0, 0.0)
        assert 100.0 < dc.position < 260.0


def test_set_position_only_at_rest_and_within_limits():
    with SimDriver(max_position=1000.0) as sim:
        sim.set_position(300.0)
        assert sim.position == 300.0 and sim.target == 300.0
        sim.start_move(310.0, 100.0)
        with pytest.raises(RuntimeError, match='moves'):
            sim.set_position(0.0)
        wait_at_rest(sim)
        with pytest.raises(ValueError, match='soft limits'):
            sim.set_position(2000.0)
        assert sim.position == 310.0


# -- the position file --------------------------------------------------------------------

def test_position_store_round_trip_and_every_reason_to_doubt(tmp_path):
    path = tmp_path / 'sub' / 'pos.json'
    store = PositionStore(str(path), 'stepper')
    assert not store.load(0, 1000).known
    assert 'does not exist' in store.load(0, 1000).reason

    store.save(123.0, moving=False)
    assert store.load(0, 1000) == (True, 123.0, f'restored from {path}')
    assert [p.name for p in path.parent.iterdir()] == ['pos.json']  # no temporary left

    store.save(150.0, moving=True, target=400.0)
    restored = store.load(0, 1000)
    assert not restored.known and restored.position == 150.0
    assert 'moving' in restored.reason and '400' in restored.reason

    store.save(123.0, moving=False, known=False)
    assert not store.load(0, 1000).known
    store.save(123.0, moving=False)
    assert not store.load(0, 100).known  # outside the limits now
    assert not PositionStore(str(path), 'dc').load(0, 1000).known  # another motor's file

    path.write_text('{"version": 1, "position": NaN')
    assert 'cannot read' in store.load(0, 1000).reason
    path.write_text(json.dumps({'version': 1, 'driver': 'stepper', 'position': 'x',
                                'moving': False, 'known': True}))
    assert 'no valid position' in store.load(0, 1000).reason


# -- the node as a process ----------------------------------------------------------------

class Motor:
    def __init__(self, ros):
        self.states = ros.collect(MotorState, '/focus_motor/state')
        self.publisher = ros.node.create_publisher(MotorCommand, '/focus_motor/command', 10)
        self.clock = ros.node.get_clock()
        self.sequence = 0

    def wait_ready(self, process):
        ready = wait_for(lambda: (self.states and self.publisher.get_subscription_count() > 0)
                         or not process.alive(), STARTUP_TIMEOUT)
        assert process.alive(), process.log()
        assert ready, 'motor driver did not come up'

    def send(self, mode, target=0.0, speed=0.0, age=0.0, stamp=True, publisher=None):
        self.sequence += 1
        msg = MotorCommand(mode=mode, target=float(target), speed=float(speed),
                           sequence=self.sequence)
        if stamp:
            ns = self.clock.now().nanoseconds - int(age * 1e9)
            msg.header.stamp = Time(sec=ns // 10**9, nanosec=ns % 10**9)
        (publisher or self.publisher).publish(msg)
        return self.sequence

    def wait_state(self, predicate, timeout=5.0, start=0):
        return wait_for(lambda: next((s for s in self.states[start:] if predicate(s)), None),
                        timeout)


@pytest.fixture
def motor_process(ros, node_process):
    def start(**params):
        process = node_process('autofocus_motor', 'motor_driver',
                               params={'driver': 'sim', **params})
        motor = Motor(ros)
        motor.wait_ready(process)
        return process, motor
    return start


def test_every_motion_stops_when_the_commander_falls_silent(motor_process):
    process, motor = motor_process(watchdog_timeout=0.3, max_position=10000.0)
    for mode, target in ((MotorCommand.MODE_ABSOLUTE, 10000.0),
                         (MotorCommand.MODE_RELATIVE, 5000.0)):
        start = len(motor.states)
        seq = motor.send(mode, target, 1000.0)
        stopped = motor.wait_state(
            lambda s: s.last_command_sequence == seq and not s.moving and s.fault, start=start)
        assert stopped is not None, process.log()
        assert 'lost contact' in stopped.fault and 'watchdog_timeout 0.3' in stopped.fault
        moved = [s.position for s in motor.states[start:] if s.last_command_sequence == seq]
        assert max(moved) - min(moved) == pytest.approx(300.0, abs=60.0)  # 0.3 s at 1000/s
    assert process.log().count('lost contact') >= 2

    process.interrupt()

    # Kept alive every 0.1 s, a 1.5 s move runs to its end; its fault was cleared by it.
    # (A watchdog of 1 s: this test's own sleeps run late on a loaded machine.)
    process, motor = motor_process(watchdog_timeout=1.0, max_position=10000.0,
                                   initial_position=1500.0)
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 3000.0, 1000.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and not s.moving
                            and s.fault), process.log()
    start = len(motor.states)
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 0.0, 1000.0)
    begin = time.monotonic()
    while time.monotonic() - begin < 2.0:
        motor.send(MotorCommand.MODE_KEEPALIVE)
        time.sleep(0.1)
    done = motor.wait_state(lambda s: s.last_command_sequence == seq and not s.moving,
                            start=start)
    assert done is not None and done.position == 0.0 and done.fault == ''
    # Keepalives are contact, not commands: their sequence is not echoed.
    assert motor.states[-1].last_command_sequence == seq


def test_keepalives_on_their_own_best_effort_topic_keep_contact_and_move_nothing(
        ros, motor_process):
    # A watchdog well above the keepalive period: a loaded machine can stall this process.
    process, motor = motor_process(watchdog_timeout=1.0, max_position=10000.0)
    # As the focus server publishes them: best effort, newest only.
    keepalives = ros.node.create_publisher(MotorCommand, '/focus_motor/keepalive',
                                           KEEPALIVE_QOS)
    assert wait_for(lambda: keepalives.get_subscription_count() > 0, STARTUP_TIMEOUT)

    def move_with_keepalives(target, age=0.0):
        start = len(motor.states)
        seq = motor.send(MotorCommand.MODE_ABSOLUTE, target, 1000.0)
        begin = time.monotonic()
        while time.monotonic() - begin < 3.5:
            motor.send(MotorCommand.MODE_KEEPALIVE, age=age, publisher=keepalives)
            time.sleep(0.05)
        return motor.wait_state(lambda s: s.last_command_sequence == seq and not s.moving,
                                start=start)

    # Fresh keepalives carry a 3 s move (three watchdog periods) to its end.
    done = move_with_keepalives(3000.0)
    assert done is not None and done.position == 3000.0 and done.fault == '', process.log()
    # Stale ones (a replay) are no contact: the move stops on the watchdog, 1 s after the
    # command (the simulated motor's position follows its clock).
    done = move_with_keepalives(0.0, age=2.0)
    assert done is not None and 'lost contact' in done.fault, process.log()
    assert 3000.0 - done.position == pytest.approx(1000.0, abs=100.0)

    # Only keepalives belong on that topic: a move sent there moves nothing, and says so.
    start = len(motor.states)
    motor.send(MotorCommand.MODE_ABSOLUTE, 5000.0, 1000.0, publisher=keepalives)
    assert wait_for(lambda: 'only MODE_KEEPALIVE belongs there' in process.log(), 5.0), \
        process.log()
    time.sleep(0.3)
    assert not any(s.moving for s in motor.states[start:])


def test_stale_and_unstamped_commands_are_ignored(motor_process):
    process, motor = motor_process(max_command_age=0.5)
    # (The warning is throttled to one a second: a flood must not flood the log.)
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 300.0, 1000.0, age=2.0)
    assert wait_for(lambda: process.log().count('ignoring command') >= 1, 5.0), process.log()
    time.sleep(1.1)
    future = motor.send(MotorCommand.MODE_ABSOLUTE, 300.0, 1000.0, age=-2.0)
    assert wait_for(lambda: process.log().count('ignoring command') >= 2, 5.0), process.log()
    time.sleep(1.1)
    unstamped = motor.send(MotorCommand.MODE_ABSOLUTE, 300.0, 1000.0, stamp=False)
    assert wait_for(lambda: process.log().count('ignoring command') >= 3, 5.0), process.log()
    time.sleep(0.3)
    assert all(s.position == 0.0 and not s.moving for s in motor.states)
    assert all(s.last_command_sequence not in (seq, future, unstamped) for s in motor.states)
    log = process.log()
    assert 'ago, beyond max_command_age 0.5 s' in log and 'chrony' in log
    assert 'in the future, beyond max_command_age' in log
    assert 'no header.stamp' in log
    # A fresh one is obeyed.
    fresh = motor.send(MotorCommand.MODE_ABSOLUTE, 300.0, 1000.0, age=0.2)
    assert motor.wait_state(lambda s: s.last_command_sequence == fresh and not s.moving
                            and s.position == 300.0)


def test_position_is_restored_after_a_clean_stop_and_unknown_after_a_kill(
        motor_process, tmp_path, monkeypatch):
    position_file = str(tmp_path / 'motor' / 'position.json')
    params = dict(driver='stepper', position_file=position_file, watchdog_timeout=5.0,
                  max_position=5000.0)
    monkeypatch.setenv('GPIOZERO_PIN_FACTORY', 'mock')
    process, motor = motor_process(**params)
    first = motor.states[-1]
    assert not first.position_known and first.position == 0.0
    assert 'does not exist' in process.log()
    seq = motor.send(MotorCommand.MODE_SET_POSITION, 100.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and s.position_known
                            and s.position == 100.0)
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 250.0, 1000.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and not s.moving
                            and s.position == 250.0)
    assert process.interrupt() == 0, process.log()

    # Restarted after Ctrl+C: where it was, and known.
    process, motor = motor_process(**params)
    restored = motor.states[-1]
    assert restored.position_known and restored.position == 250.0, process.log()
    assert 'restored from' in process.log()

    # Killed mid-move: the record says moving, so the restart does not pretend.
    seq = motor.send(MotorCommand.MODE_ABSOLUTE, 5000.0, 500.0)
    assert motor.wait_state(lambda s: s.last_command_sequence == seq and s.position > 300)
    last_heard = motor.states[-1].position
    process.popen.send_signal(signal.SIGKILL)
    process.popen.wait()
    process, motor = motor_process(**params)
    state = motor.states[-1]
    assert not state.position_known, process.log()
    # The last record, only an estimate: made when the move began (at 250, or a step or so
    # on when the state that saw it begin came late), never past what was last heard.
    assert 250.0 <= state.position <= last_heard
    assert 'moving' in process.log() and 'position unknown' in process.log()
