"""Start the autofocus graph without `ros2 launch` (pip-installed ROS 2 has no launch).

    ros2 run autofocus bringup use_sim:=true           # same arguments as bringup.launch.py
    scripts/bringup.sh use_sim:=false camera_source:=0

The same executables, node names and parameter files as bringup.launch.py (both
read autofocus.tools.graph). By default (compose:=true) the camera (or the
simulated lens) and the sharpness node share one process, camera_sharpness;
the focus server and the motor driver are processes of their own. With
compose:=false every node is its own process. Output lines are prefixed with
the process's name. Ctrl+C (or SIGTERM) stops every process with SIGINT, then
kills what has not stopped after a grace period.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import yaml
from ament_index_python.packages import get_package_prefix, get_package_share_directory

from autofocus.tools.graph import (LAUNCH_ARGUMENTS, plan, resolve_arguments,
                                   simulation_notice)

GRACE_SECONDS = 10.0


def parse_launch_arguments(argv):
    given = {}
    for token in argv:
        name, separator, value = token.partition(':=')
        if not separator:
            raise ValueError(f"expected name:=value, got '{token}'")
        given[name] = value
    return resolve_arguments(given)


def command_line(spec, arguments, overrides_dir):
    executable = os.path.join(get_package_prefix(spec.package), 'lib', spec.package,
                              spec.executable)
    command = [executable, *spec.arguments, '--ros-args', '--log-level', arguments['log_level']]
    if spec.remap_name:
        command += ['-r', f'__node:={spec.name}']
    if arguments['namespace']:
        command += ['-r', f"__ns:=/{arguments['namespace'].strip('/')}"]
    for source, target in spec.remappings:
        command += ['-r', f'{source}:={target}']
    for path in spec.parameter_files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'parameter file {path} does not exist')
        command += ['--params-file', path]
    if spec.overrides:
        # A parameter file, not -p name:=value, so values are never parsed by a shell
        # or re-typed by the command line's YAML guessing.
        path = os.path.join(overrides_dir, f'{spec.name}-overrides.yaml')
        with open(path, 'w') as file:
            yaml.safe_dump({f'/**/{spec.name}': {'ros__parameters': spec.overrides}}, file)
        command += ['--params-file', path]
    return command


def _die_with_parent():
    """Linux: the node gets SIGTERM if this launcher dies without stopping it (kill -9)."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _forward_output(name, stream):
    for line in iter(stream.readline, b''):
        sys.stdout.write(f'[{name}] {line.decode(errors="replace")}')
        sys.stdout.flush()


def main(argv=None):
    import tempfile
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ('-h', '--help'):
        print('usage: bringup [-h] [NAME:=VALUE ...]\n')
        print(__doc__)
        for argument in LAUNCH_ARGUMENTS:
            default = argument.default or '<empty>'
            print(f'  {argument.name}:={default}\n      {argument.description}')
        return 0
    try:
        arguments = parse_launch_arguments(argv)
        specs = plan(arguments, get_package_share_directory)
    except (ValueError, FileNotFoundError) as error:
        print(f'bringup: {error}', file=sys.stderr)
        return 2

    notice = simulation_notice(arguments, get_package_share_directory)
    if notice:
        print(f'[bringup] {notice}', flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    processes = {}
    with tempfile.TemporaryDirectory(prefix='autofocus-bringup-') as overrides_dir:
        try:
            for spec in specs:
                command = command_line(spec, arguments, overrides_dir)
                # Own session: a terminal's Ctrl+C reaches the nodes once, from us.
                process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, start_new_session=True,
                                           preexec_fn=_die_with_parent)
                processes[spec.name] = process
                threading.Thread(target=_forward_output, args=(spec.name, process.stdout),
                                 daemon=True).start()
                print(f'[bringup] started {spec.name} ({spec.package}/{spec.executable}, '
                      f'pid {process.pid})', flush=True)
        except FileNotFoundError as error:
            print(f'bringup: {error}', file=sys.stderr)
            stop.set()
        reported = set()
        while not stop.is_set():
            for name, process in processes.items():
                if process.poll() is not None and name not in reported:
                    reported.add(name)
                    print(f'[bringup] {name} exited with code {process.returncode}', flush=True)
            if reported and len(reported) == len(processes):
                break
            stop.wait(0.2)
        return _stop_all(processes)


def _stop_all(processes):
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f'[bringup] {name} did not stop in {GRACE_SECONDS:g} s; killing it', flush=True)
            process.kill()
            process.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
