"""Check a camera that turns its own lens, on the real hardware, and print a report to paste
into an issue.

    scripts/hardware_check.sh /dev/video0      # a UVC webcam (focus_absolute)
    scripts/hardware_check.sh picamera2        # Raspberry Pi Camera Module 3
    scripts/hardware_check.sh gphoto2          # a Canon or Nikon DSLR over USB

It lists what the device offers, moves the lens to three positions and reads them back,
closes it (a webcam's own autofocus setting is restored), then starts the graph with
`focus_control:=camera` and runs one focus goal over the lens's whole range. Exit code 0
when every step worked, 1 when one failed, 2 when the device could not be opened.
"""
import argparse
import os
import platform
import signal
import subprocess
import sys
import time

from autofocus.io.capture import SourceError
from autofocus.io.lens_control.base import LensError
from autofocus.io.lens_control.motion import LensActuator

FRACTIONS = (0.25, 0.5, 0.75)


def open_lens(device: str, units_per_step: float):
    """(lens, source or None, extra actuator limits) for a device string; raises LensError."""
    if device == 'gphoto2' or device.startswith('picamera2'):
        from autofocus.io.sources import make_source
        source = make_source(device)
        if hasattr(source, 'units_per_step'):
            source.units_per_step = units_per_step
        try:
            source.open()
        except SourceError as error:
            raise LensError(str(error)) from None
        limits = {} if source.lens.position_measured else dict(
            min_position=0.0, max_position=1000.0, initial_position=500.0)
        return source.lens, source, limits
    from autofocus.io.lens_control.v4l2 import V4L2Lens
    return V4L2Lens(device), None, {}


def _versions() -> str:
    found = []
    for name in ('linuxpy', 'gphoto2', 'picamera2'):
        try:
            from importlib.metadata import version
            found.append(f'{name} {version(name)}')
        except Exception:
            pass
    return ', '.join(found) or 'none'


def check_lens(device: str, settle: float, units_per_step: float, report: list) -> tuple:
    """Steps 1 and 2; returns (ok, (low, high), relative_only)."""
    lens, source, limits = open_lens(device, units_per_step)
    report += [f'- device: {lens.description}', '- offers:']
    report += [f'  - `{name}`: {text}' for name, text in lens.offers().items()]
    ok = True
    actuator = LensActuator(lens, settle, **limits)
    try:
        low, high = actuator.min_position, actuator.max_position
        report += [f'- range [{low:g}, {high:g}], position '
                   + ('read back from the device' if lens.position_measured
                      else 'estimated from drive steps'),
                   '', '| asked | reported | fault |', '|---|---|---|']
        for fraction in FRACTIONS:
            asked = low + fraction * (high - low)
            actuator.move_to(asked)
            deadline = time.monotonic() + 30.0 + 100 * settle
            while actuator.state().moving and time.monotonic() < deadline:
                time.sleep(0.02)
            state = actuator.state()
            reported = lens.read_position() if lens.position_measured and not state.fault \
                else state.position
            close = abs(reported - asked) <= max(lens.resolution, 1e-6)
            ok &= close and not state.fault and not state.moving
            report.append(f'| {asked:g} | {reported:g} | {state.fault or "-"} |')
    finally:
        actuator.close()  # the camera's own autofocus setting is put back here
        if source is not None:
            source.release()
    return ok, (low, high), lens.relative_only


def run_goal(device, low, high, relative_only, image_topic, params_file, timeout,
             report) -> bool:
    """Step 3: bringup with focus_control:=camera, one goal over the whole range."""
    import rclpy
    from action_msgs.msg import GoalStatus
    from autofocus_interfaces.action import Focus

    from autofocus.nodes.action_client import ThreadSafeActionClient

    arguments = ['focus_control:=camera', f'camera_source:={device}', 'use_sim:=false']
    if image_topic:
        arguments.append(f'image_topic:={image_topic}')
    if params_file:
        arguments.append(f'params_file:={params_file}')
    bringup = subprocess.Popen([sys.executable, '-m', 'autofocus.tools.bringup', *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('hardware_check')
    try:
        client = ThreadSafeActionClient(node, Focus, 'focus')
        if not client.wait_for_server(timeout_sec=60.0):
            report.append('- focus goal: no focus server within 60 s (see the bringup output)')
            return False
        goal = Focus.Goal(strategy='hill_climb' if relative_only else '',
                          range_min=float(low), range_max=float(high), timeout=float(timeout))
        future = client.send_goal_async(goal)
        rclpy.spin_until_future_complete(node, future, timeout_sec=30.0)
        handle = future.result()
        if handle is None or not handle.accepted:
            report.append('- focus goal: rejected (see the focus_server log line)')
            return False
        result_future = handle.get_result_async()
        rclpy.spin_until_future_complete(node, result_future, timeout_sec=timeout + 30.0)
        response = result_future.result()
        if response is None:
            report.append(f'- focus goal: no result within {timeout + 30.0:g} s')
            return False
        result = response.result
        elapsed = result.elapsed.sec + result.elapsed.nanosec / 1e9
        succeeded = response.status == GoalStatus.STATUS_SUCCEEDED
        report.append(
            f'- focus goal ({result.strategy}): '
            + (f'in focus at {result.final_position:g} (sharpness {result.final_sharpness:.4g})'
               if succeeded else f'FAILED, error {result.error_code}: {result.error_msg}')
            + f', {result.frames_used} frames, {elapsed:.1f} s')
        return succeeded
    finally:
        node.destroy_node()
        rclpy.shutdown()
        os.killpg(bringup.pid, signal.SIGINT)
        try:
            output, _ = bringup.communicate(timeout=30.0)
        except subprocess.TimeoutExpired:
            os.killpg(bringup.pid, signal.SIGKILL)
            output, _ = bringup.communicate()
        lines = output.decode(errors='replace').splitlines()
        report += ['', '<details><summary>bringup output (last 30 lines)</summary>', '',
                   '```', *lines[-30:], '```', '</details>']


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('device', help="/dev/videoN (or N), 'picamera2[:N]' or 'gphoto2'")
    parser.add_argument('--settle', type=float, default=0.2,
                        help='seconds a lens move is given to finish (default 0.2)')
    parser.add_argument('--units-per-step', type=float, default=10.0,
                        help='DSLR: motor units counted per drive call (default 10)')
    parser.add_argument('--image-topic', default='',
                        help="frames from another driver's topic for the focus goal")
    parser.add_argument('--params-file', default='',
                        help="parameters of camera, sharpness and focus_server for the goal "
                             "('' = the package's config/autofocus.yaml)")
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds the focus goal may take (default 120)')
    parser.add_argument('--no-goal', action='store_true', help='skip the focus goal')
    args = parser.parse_args(argv)

    report = ['### hardware_check report', '',
              f'- machine: {platform.node()} ({platform.machine()}, {platform.platform()}), '
              f'Python {platform.python_version()}',
              f'- libraries: {_versions()}',
              f'- command: hardware_check {" ".join(sys.argv[1:] if argv is None else argv)}']
    try:
        ok, (low, high), relative_only = check_lens(args.device, args.settle,
                                                    args.units_per_step, report)
    except (LensError, ValueError) as error:
        report.append(f'- cannot open the lens: {error}')
        print('\n'.join(report))
        return 2
    if not args.no_goal:
        report.append('')
        ok &= run_goal(args.device, low, high, relative_only, args.image_topic,
                       args.params_file, args.timeout, report)
    report += ['', f'**{"all steps passed" if ok else "a step FAILED"}**']
    print('\n'.join(report))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
