"""calibrate_dc: DC motor full speed from timed runs, on gpiozero's mock pins."""
import pathlib
import shutil
import threading
import time

from autofocus_motor import calibrate_dc
import pytest

MOTOR_YAML = pathlib.Path(__file__).resolve().parents[1] / 'config' / 'motor.yaml'
FORWARD, BACKWARD, LOW, HIGH = 23, 24, 5, 6


class Carriage:
    """A lens carriage on the DC motor's pins, moving `speed` units/s between end stops at
    0 and `travel` (switches to ground, pulled up), on the real clock."""

    def __init__(self, mock_pins, speed, travel, position=0.0, switches=True):
        self.pins = mock_pins
        self.speed, self.travel, self.position = speed, travel, position
        self.switches = switches
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            direction = (self.pins.pin(FORWARD).state > 0) - (self.pins.pin(BACKWARD).state > 0)
            self.position = min(max(self.position + direction * self.speed * (now - last), 0.0),
                                self.travel)
            last = now
            if self.switches:
                for pin, closed in ((LOW, self.position <= 0.0),
                                    (HIGH, self.position >= self.travel)):
                    try:
                        if closed and self.pins.pin(pin).state:
                            self.pins.pin(pin).drive_low()
                        elif not closed and not self.pins.pin(pin).state:
                            self.pins.pin(pin).drive_high()
                    except AttributeError:
                        # gpiozero's Button is half-built (its hold thread not yet made) or
                        # closed: its callback fails, the switch itself stays as driven.
                        pass
            time.sleep(0.0005)

    def close(self):
        self._stop.set()
        self._thread.join(2.0)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'motor.yaml'
    shutil.copy(MOTOR_YAML, path)
    return path


def test_end_stops_measure_the_speed_and_write_it_keeping_the_rest_of_the_yaml(
        mock_pins, config, capsys):
    before = config.read_text()
    carriage = Carriage(mock_pins, speed=800.0, travel=400.0)
    try:
        code = calibrate_dc.main(['--config', str(config), '--distance', '400',
                                  '--end-stops', str(LOW), str(HIGH), '--runs', '2',
                                  '--timeout', '20'])
    finally:
        carriage.close()
    out, err = capsys.readouterr()
    assert code == 0, err
    text = config.read_text()
    speed = calibrate_dc.previous_calibration(text)
    # Real threads on a busy machine: the switch poll adds up to a few ms per 0.5 s run.
    assert 600.0 < speed < 1000.0, (speed, out)
    changed = [(a, b) for a, b in zip(before.splitlines(), text.splitlines()) if a != b]
    assert len(changed) == 1 and 'dc_full_speed' in changed[0][0], changed
    assert len(before.splitlines()) == len(text.splitlines())
    assert mock_pins.states((FORWARD, BACKWARD)) == (0, 0)
    assert not list(config.parent.glob('.calibrate_dc.*'))


def test_an_end_stop_that_never_closes_stops_the_motor_and_writes_nothing(
        mock_pins, config, capsys):
    before = config.read_text()
    carriage = Carriage(mock_pins, speed=800.0, travel=400.0, switches=False)
    mock_pins.pin(LOW).drive_high()
    mock_pins.pin(HIGH).drive_high()
    try:
        code = calibrate_dc.main(['--config', str(config), '--distance', '400',
                                  '--end-stops', str(LOW), str(HIGH), '--timeout', '0.5'])
    finally:
        carriage.close()
    err = capsys.readouterr().err
    assert code == 1
    assert f'end stop on GPIO{HIGH} did not close within 0.5 s' in err, err
    assert 'motor is stopped' in err
    assert config.read_text() == before
    assert mock_pins.states((FORWARD, BACKWARD)) == (0, 0)


def test_marks_time_between_two_confirmations_and_stop_the_motor(mock_pins):
    from gpiozero import Motor
    motor = Motor(FORWARD, BACKWARD, pwm=False)
    clock = iter([10.0, 12.5]).__next__
    seen = []

    def confirm(prompt, timeout):
        seen.append((prompt, mock_pins.states((FORWARD, BACKWARD))))
        return True

    try:
        assert calibrate_dc.time_between_marks(motor, -1, confirm, 5.0, clock) == 2.5
        assert seen == [('first mark', (0, 1)), ('second mark', (0, 1))]
        assert mock_pins.states((FORWARD, BACKWARD)) == (0, 0)
        with pytest.raises(calibrate_dc.CalibrationError, match='second mark was not'):
            calibrate_dc.time_between_marks(motor, 1, lambda p, t: p == 'first mark', 5.0,
                                            clock=iter([0.0, 1.0]).__next__)
        assert mock_pins.states((FORWARD, BACKWARD)) == (0, 0)
    finally:
        motor.close()


def test_speed_drift_between_runs_and_since_the_last_calibration_is_warned(config):
    speed, speeds, warnings = calibrate_dc.summarise(500.0, [1.0, 1.0, 1.01])
    assert speeds[0] == 500.0 and warnings == []
    speed, _, warnings = calibrate_dc.summarise(500.0, [1.0, 1.25])
    assert speed == 450.0 and 'differ by 22.2%' in warnings[0]

    assert calibrate_dc.previous_calibration(config.read_text()) is None   # the shipped guess
    assert calibrate_dc.record(config, 1000.0, 3) == []
    assert calibrate_dc.previous_calibration(config.read_text()) == 1000.0
    assert calibrate_dc.record(config, 1020.0, 3) == []
    warnings = calibrate_dc.record(config, 900.0, 3)
    assert len(warnings) == 1 and '-11.8%' in warnings[0] and '1020 -> 900' in warnings[0]
    assert calibrate_dc.previous_calibration(config.read_text()) == 900.0


def test_a_yaml_without_the_key_gets_it_under_ros_parameters(tmp_path):
    path = tmp_path / 'm.yaml'
    path.write_text('/**/focus_motor:\n  ros__parameters:\n    driver: dc\n')
    calibrate_dc.record(path, 1234.5, 2)
    import yaml
    params = yaml.safe_load(path.read_text())['/**/focus_motor']['ros__parameters']
    assert params == {'driver': 'dc', 'dc_full_speed': 1234.5}
