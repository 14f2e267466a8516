"""The bringup plan, and that bringup.launch.py and the pip launcher share it."""
import ast
import pathlib

import pytest

from autofocus.tools import graph

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def share(package):
    return f'/share/{package}'


def names(nodes):
    return [(n.package, n.executable, n.name) for n in nodes]


def test_simulated_graph_runs_the_lens_simulator_as_the_camera():
    nodes = graph.plan(graph.resolve_arguments({'use_sim': 'true', 'compose': 'false'}), share)
    assert names(nodes) == [('autofocus', 'lens_simulator', 'camera'),
                            ('autofocus', 'sharpness', 'sharpness'),
                            ('autofocus', 'focus_server', 'focus_server'),
                            ('autofocus_motor', 'motor_driver', 'focus_motor')]
    # The simulated motor gets sim.yaml after motor.yaml, so driver: sim wins.
    assert nodes[3].parameter_files == ('/share/autofocus_motor/config/motor.yaml',
                                        '/share/autofocus/config/sim.yaml')
    # The focus server too: the simulated camera's more patient camera_timeout wins.
    assert nodes[2].parameter_files == ('/share/autofocus/config/autofocus.yaml',
                                        '/share/autofocus/config/sim.yaml')
    real = graph.plan(graph.resolve_arguments({'use_sim': 'false', 'camera_source': '2'}),
                      share)
    server = next(n for n in real if n.executable == 'focus_server')
    assert server.parameter_files == ('/share/autofocus/config/autofocus.yaml',)


def test_the_simulated_graph_gives_the_focus_server_a_camera_timeout_a_busy_machine_keeps():
    import yaml
    config = PACKAGE / 'config'
    shipped = yaml.safe_load((config / 'autofocus.yaml').read_text())
    sim = yaml.safe_load((config / 'sim.yaml').read_text())
    real = shipped['/**/focus_server']['ros__parameters'].get('camera_timeout', 1.0)
    simulated = sim['/**/focus_server']['ros__parameters']['camera_timeout']
    assert real == 1.0 and simulated > real
    # And the wait for a frame after a move.
    real = shipped['/**/focus_server']['ros__parameters']['frame_timeout']
    simulated = sim['/**/focus_server']['ros__parameters']['frame_timeout']
    assert real == 2.0 and simulated > real


def test_real_graph_without_local_motor():
    arguments = graph.resolve_arguments({'use_sim': 'false', 'launch_motor': 'false',
                                         'camera_source': 'rtsp://cam.local/stream',
                                         'compose': 'false'})
    nodes = graph.plan(arguments, share)
    assert names(nodes)[:2] == [('autofocus', 'camera', 'camera'),
                                ('autofocus', 'sharpness', 'sharpness')]
    assert nodes[0].overrides == {'source': 'rtsp://cam.local/stream'}
    assert 'motor_driver' not in [n.executable for n in nodes]


def test_composed_by_default_keeps_node_names_and_parameter_precedence():
    simulated = graph.plan(graph.resolve_arguments({'use_sim': 'true'}), share)
    composed = simulated[0]
    assert (composed.executable, composed.arguments, composed.remap_name) == \
        ('camera_sharpness', ('--simulate',), False)
    # sim.yaml last: the simulator's size and rate win over autofocus.yaml's camera block.
    assert composed.parameter_files == ('/share/autofocus/config/autofocus.yaml',
                                        '/share/autofocus/config/sim.yaml')
    assert 'sharpness' not in [n.executable for n in simulated]
    real = graph.plan(graph.resolve_arguments({'use_sim': 'false', 'camera_source': '2'}),
                      share)[0]
    assert (real.executable, real.arguments, real.overrides) == \
        ('camera_sharpness', (), {'source': '2'})


def test_bringup_command_line_never_renames_a_composed_process(tmp_path):
    from autofocus.tools.bringup import command_line
    arguments = graph.resolve_arguments({'use_sim': 'true'})
    specs = graph.plan(arguments, lambda package: str(PACKAGE))
    composed = command_line(specs[0], arguments, tmp_path)
    assert composed[1:3] == ['--simulate', '--ros-args']
    assert not any(token.startswith('__node:=') for token in composed)
    alone = graph.plan(dict(arguments, compose='false'), lambda package: str(PACKAGE))
    assert '__node:=camera' in command_line(alone[0], arguments, tmp_path)


def test_auto_simulates_when_the_device_is_absent():
    arguments = graph.resolve_arguments({'camera_source': '/dev/video-not-here'})
    assert graph.plan(arguments, share)[0].arguments == ('--simulate',)
    alone = graph.plan(dict(arguments, compose='false'), share)
    assert alone[0].executable == 'lens_simulator'


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
                and node.module == 'autofocus.tools.graph' for alias in node.names}
    assert {'LAUNCH_ARGUMENTS', 'plan', 'resolve_arguments'} <= imported
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {'DeclareLaunchArgument', 'OpaqueFunction', 'Node', 'PushROSNamespace'} <= calls
