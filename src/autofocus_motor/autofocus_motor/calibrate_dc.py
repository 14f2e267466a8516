"""Measure a DC focus motor's full speed (units/s) and write ``dc_full_speed`` to its YAML.

    ros2 run autofocus_motor calibrate_dc --config motor.yaml --distance 500
    ros2 run autofocus_motor calibrate_dc --config motor.yaml --distance 1000 --end-stops 5 6

A DC motor's position is only time x ``dc_full_speed``, so that number must be measured.
Stop the motor driver first (this tool drives the same pins). Each run turns the motor at
full duty (no PWM) and times it over a known ``--distance`` (in the motor units the rest of
the system uses, e.g. the scale's millimetres x 100):

- marks (default): press Enter when the pointer passes the first mark and again at the
  second; runs alternate direction, so the lens shuttles between the marks;
- ``--end-stops LOW HIGH``: two limit switches (BCM pins, to ground): the time from the
  carriage leaving one switch to closing the other, alternating direction.

The speed is the mean over ``--runs``; runs that differ by more than ``--drift`` (relative)
get a warning, and so does a result that differs by more than that from the previous
calibration recorded in the YAML (worn gears, a weaker supply, more load). The YAML is
edited in place, comments kept, and replaced atomically (temp file + rename). A switch
that does not close, or a mark not confirmed, within ``--timeout`` stops the motor and ends
the tool with an error.
"""
import argparse
import datetime
import os
import re
import sys
import tempfile
import threading
import time

DEFAULT_DRIFT = 0.05
MARKER = '# calibrated'
_LINE = re.compile(r'^(?P<indent>[ \t]*)dc_full_speed:[ \t]*(?P<value>[^\s#]+)(?P<rest>.*)$',
                   re.MULTILINE)


class CalibrationError(Exception):
    """The measurement could not be made; the motor has been stopped."""


# -- timing ------------------------------------------------------------------------------

def time_between_marks(motor, direction, confirm, timeout, clock=time.monotonic):
    """Run the motor; return the seconds between the user's two confirmations."""
    run = motor.forward if direction > 0 else motor.backward
    try:
        run()
        if not confirm('first mark', timeout):
            raise CalibrationError(f'the first mark was not confirmed within {timeout:g} s')
        start = clock()
        if not confirm('second mark', timeout):
            raise CalibrationError(f'the second mark was not confirmed within {timeout:g} s')
        return clock() - start
    finally:
        motor.stop()


def time_between_stops(motor, direction, leaving, reaching, timeout, clock=time.monotonic):
    """Run the motor from the switch `leaving` to `reaching`; return the seconds between the
    first opening and the second closing."""
    run = motor.forward if direction > 0 else motor.backward
    try:
        run()
        if leaving.is_pressed and not leaving.wait_for_release(timeout):
            raise CalibrationError(f'the end stop on {leaving.pin} did not open within '
                                   f'{timeout:g} s: is the motor turning?')
        start = clock()
        if not reaching.wait_for_press(timeout):
            raise CalibrationError(f'the end stop on {reaching.pin} did not close within '
                                   f'{timeout:g} s: check its wiring and the direction')
        return clock() - start
    finally:
        motor.stop()


def summarise(distance, times, drift=DEFAULT_DRIFT):
    """(speed, [per-run speeds], warnings) from the run times over `distance`."""
    if not times or any(t <= 0 for t in times):
        raise CalibrationError(f'run times must be positive, got {times}')
    speeds = [distance / t for t in times]
    speed = sum(speeds) / len(speeds)
    warnings = []
    spread = (max(speeds) - min(speeds)) / speed
    if spread > drift:
        warnings.append(f'the runs differ by {100 * spread:.1f}% '
                        f'({", ".join(f"{s:.1f}" for s in speeds)} units/s), more than '
                        f'{100 * drift:g}%: the speed drifts (load, warm-up, supply?)')
    return speed, speeds, warnings


# -- the YAML ----------------------------------------------------------------------------

def previous_calibration(text):
    """The dc_full_speed of the last calibration recorded in the YAML text, or None."""
    match = _LINE.search(text)
    if match is None or MARKER not in match.group('rest'):
        return None
    try:
        return float(match.group('value'))
    except ValueError:
        return None


def with_speed(text, speed, note):
    """The YAML text with dc_full_speed set to `speed` (its other lines untouched)."""
    line = f'dc_full_speed: {speed:.6g}  {MARKER} {note}'
    match = _LINE.search(text)
    if match is not None:
        return text[:match.start()] + match.group('indent') + line + text[match.end():]
    header = re.search(r'^(?P<indent>[ \t]*)ros__parameters:[ \t]*$', text, re.MULTILINE)
    if header is None:
        raise CalibrationError('the YAML has no ros__parameters: block to put dc_full_speed in')
    indent = header.group('indent') + '  '
    return text[:header.end()] + '\n' + indent + line + text[header.end():]


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix='.calibrate_dc.', dir=directory)
    try:
        with os.fdopen(fd, 'w') as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def record(path, speed, runs, drift=DEFAULT_DRIFT):
    """Write the speed into the YAML at `path`; return warnings about the previous one."""
    with open(path) as source:
        text = source.read()
    warnings = []
    previous = previous_calibration(text)
    if previous is not None and abs(speed - previous) > drift * previous:
        warnings.append(f'dc_full_speed changed by {100 * (speed - previous) / previous:+.1f}% '
                        f'since the last calibration ({previous:g} -> {speed:.6g} units/s): '
                        f'check the gears and the supply')
    note = f'{datetime.date.today().isoformat()}, {runs} runs'
    write_atomically(path, with_speed(text, speed, note))
    return warnings


# -- command line ------------------------------------------------------------------------

def _console_confirm(prompt, timeout):
    """Wait for Enter on stdin for at most `timeout` s."""
    print(f'  press Enter at the {prompt}', flush=True)
    done = threading.Event()

    def read():
        sys.stdin.readline()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    return done.wait(timeout)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog='calibrate_dc', description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', required=True, help='motor YAML to write dc_full_speed to')
    parser.add_argument('--distance', type=float, required=True,
                        help='motor units between the marks (or the end stops)')
    parser.add_argument('--runs', type=int, default=3, help='timed runs (default 3)')
    parser.add_argument('--forward-pin', type=int, default=23)
    parser.add_argument('--backward-pin', type=int, default=24)
    parser.add_argument('--enable-pin', type=int, default=-1, help='-1 = none')
    parser.add_argument('--end-stops', type=int, nargs=2, metavar=('LOW', 'HIGH'),
                        help='BCM pins of the end stop switches (to ground)')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='seconds to wait for a mark or a switch before giving up')
    parser.add_argument('--drift', type=float, default=DEFAULT_DRIFT,
                        help='relative difference that gets a warning (default 0.05)')
    options = parser.parse_args(argv)
    if not options.distance > 0 or options.runs < 1 or not options.timeout > 0:
        parser.error('--distance and --timeout must be > 0 and --runs >= 1')
    if not os.path.isfile(options.config):
        parser.error(f'--config {options.config}: no such file')
    return options


def main(argv=None):
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    from gpiozero import Button, DigitalOutputDevice, Motor

    motor = Motor(options.forward_pin, options.backward_pin, pwm=False)
    enable = None if options.enable_pin < 0 else DigitalOutputDevice(options.enable_pin)
    switches = [Button(pin) for pin in options.end_stops] if options.end_stops else []
    times = []
    try:
        if enable is not None:
            enable.on()
        for run in range(options.runs):
            direction = 1 if run % 2 == 0 else -1
            print(f'run {run + 1}/{options.runs}: turning '
                  f"{'forward' if direction > 0 else 'backward'}", flush=True)
            if switches:
                low, high = switches
                leaving, reaching = (low, high) if direction > 0 else (high, low)
                elapsed = time_between_stops(motor, direction, leaving, reaching,
                                             options.timeout)
            else:
                elapsed = time_between_marks(motor, direction, _console_confirm,
                                             options.timeout)
            times.append(elapsed)
            print(f'  {elapsed:.3f} s = {options.distance / elapsed:.1f} units/s', flush=True)
        speed, _, warnings = summarise(options.distance, times, options.drift)
        warnings += record(options.config, speed, options.runs, options.drift)
    except CalibrationError as error:
        print(f'calibrate_dc: {error}; the motor is stopped, nothing was written',
              file=sys.stderr)
        return 1
    finally:
        motor.stop()
        for device in [motor, enable, *switches]:
            if device is not None:
                device.close()
    for warning in warnings:
        print(f'WARNING: {warning}', file=sys.stderr)
    print(f'dc_full_speed: {speed:.6g} units/s written to {options.config}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
