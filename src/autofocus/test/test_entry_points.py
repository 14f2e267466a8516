"""Every executable of every package answers --help: usage, exit 0, and nothing else.

The list comes from the packages' setup.py files, so a new entry point without
--help support fails here.
"""
import ast
import os
import pathlib
import subprocess

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ('autofocus', 'autofocus_motor')
# Lines a started node would log: seeing one means --help ran the node.
NODE_LOG_MARKERS = ('[INFO]', '[WARN]', '[ERROR]', '[FATAL]', 'Traceback')


def console_scripts(package: str) -> list[str]:
    """Names of the console_scripts declared in a package's setup.py (read, not run)."""
    tree = ast.parse((SRC / package / 'setup.py').read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'setup':
            for keyword in call.keywords:
                if keyword.arg == 'entry_points':
                    scripts = ast.literal_eval(keyword.value)['console_scripts']
                    return [entry.split('=')[0].strip() for entry in scripts]
    raise AssertionError(f'no entry_points in {package}/setup.py')


ENTRY_POINTS = [(package, name) for package in PACKAGES for name in console_scripts(package)]


def test_the_entry_points_are_found():
    names = [name for _, name in ENTRY_POINTS]
    assert {'camera', 'recorder', 'player', 'focus_client', 'motor_driver'} <= set(names)
    assert len(names) >= 14, names


@pytest.mark.parametrize('package,name', ENTRY_POINTS, ids=[n for _, n in ENTRY_POINTS])
def test_every_executable_answers_help_without_side_effects(package, name, tmp_path):
    from ament_index_python.packages import get_package_prefix
    program = pathlib.Path(get_package_prefix(package), 'lib', package, name)
    assert program.exists(), f'{program}: run scripts/setup.sh (colcon build)'
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    # A node that ignored --help would run until killed (camera: retrying /dev/video0;
    # recorder: recording into cwd); the timeout turns that into a failure.
    done = subprocess.run([str(program), '--help'], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert 'usage:' in done.stdout.lower(), output
    assert name in done.stdout, output
    assert not [m for m in NODE_LOG_MARKERS if m in output], output
    assert list(cwd.iterdir()) == [], 'created files in the current folder'


@pytest.mark.parametrize('package, name, parameters', [
    ('autofocus', 'camera', ('source', 'stall_timeout')),
    ('autofocus', 'recorder', ('output', 'storage')),
    ('autofocus', 'sharpness', ('max_pixels', 'image_transport')),
    ('autofocus_motor', 'motor_driver', ('driver', 'watchdog_timeout')),
])
def test_a_nodes_help_lists_its_parameters(package, name, parameters):
    from ament_index_python.packages import get_package_prefix
    program = pathlib.Path(get_package_prefix(package), 'lib', package, name)
    done = subprocess.run([str(program), '--help'], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    for parameter in parameters:
        assert f'\n  {parameter}' in done.stdout, (parameter, done.stdout)
