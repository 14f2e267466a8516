"""The bringup plan, and that bringup.launch.py and the pip launcher share it."""
import ast
import pathlib

import pytest

from autofocus import graph

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def share(package):
    return f'/share/{package}'


def names(nodes):
    return [(n.package, n.executable, n.name) for n in nodes]


def test_simulated_graph_runs_the_lens_simulator_as_the_camera():
    nodes = graph.plan(graph.resolve_arguments({'use_sim': 'true'}), share)
    assert names(nodes) == [('autofocus', 'lens_simulator', 'camera'),
                            ('autofocus', 'sharpness', 'sharpness'),
                            ('autofocus', 'focus_server', 'focus_server'),
                            ('autofocus_motor', 'motor_driver', 'focus_motor')]
    # The simulated motor gets sim.yaml after motor.yaml, so driver: sim wins.
    assert nodes[3].parameter_files == ('/share/autofocus_motor/config/motor.yaml',
                                        '/share/autofocus/config/sim.yaml')


def test_real_graph_without_local_motor():
    arguments = graph.resolve_arguments({'use_sim': 'false', 'launch_motor': 'false',
                                         'camera_source': 'rtsp://cam.local/stream'})
    nodes = graph.plan(arguments, share)
    assert names(nodes)[0] == ('autofocus', 'camera', 'camera')
    assert nodes[0].overrides == {'source': 'rtsp://cam.local/stream'}
    assert 'motor_driver' not in [n.executable for n in nodes]


def test_auto_simulates_when_the_device_is_absent():
    arguments = graph.resolve_arguments({'camera_source': '/dev/video-not-here'})
    assert graph.plan(arguments, share)[0].executable == 'lens_simulator'


@pytest.mark.parametrize('given, reason', [
    ({'use_simulation': 'true'}, 'unknown launch argument'),
    ({'use_sim': 'maybe'}, 'must be one of'),
])
def test_bad_launch_arguments(given, reason):
    with pytest.raises(ValueError, match=reason):
        graph.resolve_arguments(given)


def test_every_launch_argument_is_described():
    for argument in graph.LAUNCH_ARGUMENTS:
        assert len(argument.description) > 20, argument.name


def test_default_parameter_files_exist():
    for name in ('autofocus.yaml', 'sim.yaml', 'fastdds.xml'):
        assert (PACKAGE / 'config' / name).is_file()


def test_bringup_launch_file_declares_and_plans_from_the_shared_graph():
    source = (PACKAGE / 'launch' / 'bringup.launch.py').read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == 'autofocus.graph' for alias in node.names}
    assert {'LAUNCH_ARGUMENTS', 'plan', 'resolve_arguments'} <= imported
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {'DeclareLaunchArgument', 'OpaqueFunction', 'Node', 'PushROSNamespace'} <= calls
