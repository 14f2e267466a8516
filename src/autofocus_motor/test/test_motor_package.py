"""Package-level checks: what the Pi must not import, the launch file and the YAML config."""
import ast
import os
import pathlib
import subprocess
import sys

from autofocus_motor.motor_driver_node import PARAMETERS
from import_graph import module_name, package_graph, reachable, top_level
import pytest
import yaml

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted((PACKAGE / 'autofocus_motor').glob('*.py'))
LAUNCH_FILE = PACKAGE / 'launch' / 'motor.launch.py'
NODE_KEY = '/**/focus_motor'


def _imported_after(setup, modules):
    """Import `modules` in a fresh interpreter after `setup`; return the heavy modules that
    were loaded before and after."""
    script = (
        'import sys\n'
        f'{setup}\n'
        "heavy = ('numpy', 'cv2')\n"
        'before = [m for m in heavy if m in sys.modules]\n'
        f"for name in {modules!r}:\n"
        '    __import__(name)\n'
        'after = [m for m in heavy if m in sys.modules]\n'
        "print(','.join(before) + '|' + ','.join(after))\n")
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ), check=True)
    before, after = done.stdout.strip().splitlines()[-1].split('|')
    return set(filter(None, before.split(','))), set(filter(None, after.split(',')))


def test_drivers_import_neither_numpy_nor_cv2_nor_ros():
    _, after = _imported_after('', ['autofocus_motor', 'autofocus_motor.drivers'])
    assert after == set()


def test_node_adds_neither_numpy_nor_cv2():
    # rclpy 9's Node imports service_msgs, whose generated code imports numpy: that much
    # comes with ROS on any machine. The node must not bring in anything beyond it.
    setup = ('import rclpy.node\n'
             'import autofocus_interfaces.msg, diagnostic_msgs.msg, rcl_interfaces.msg')
    before, after = _imported_after(setup, ['autofocus_motor.drivers',
                                            'autofocus_motor.motor_driver_node'])
    assert 'cv2' not in after
    assert after <= before


def heavy_imports(graph, module):
    """numpy/cv2 imported by ``module`` or by any module of ours it imports (import graph)."""
    modules = {module} | reachable(graph, module)
    return sorted({name for m in modules for name in graph[m]
                   if top_level(name) in ('numpy', 'cv2')})


@pytest.mark.parametrize('source', SOURCES, ids=lambda path: path.name)
def test_sources_do_not_import_numpy_or_cv2(source):
    graph = package_graph(PACKAGE / 'autofocus_motor')
    module = module_name(source, PACKAGE)
    assert heavy_imports(graph, module) == [], module


def test_the_check_follows_imports_through_our_own_modules(tmp_path):
    package = tmp_path / 'autofocus_motor'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'node.py').write_text('from autofocus_motor import helper\n')
    (package / 'helper.py').write_text('def lazy():\n    import numpy.linalg\n')
    graph = package_graph(package)
    assert heavy_imports(graph, 'autofocus_motor.node') == ['numpy.linalg']


def _calls(tree, name):
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == name]


def _keywords(call):
    return {kw.arg: kw.value for kw in call.keywords}


def test_launch_file_compiles_and_describes_every_argument():
    source = LAUNCH_FILE.read_text()
    compile(source, str(LAUNCH_FILE), 'exec')
    tree = ast.parse(source)
    declared = {}
    for call in _calls(tree, 'DeclareLaunchArgument'):
        name = ast.literal_eval(call.args[0])
        keywords = _keywords(call)
        assert 'default_value' in keywords, name
        description = ast.literal_eval(keywords['description'])
        assert len(description) > 10, name
        declared[name] = keywords
    assert set(declared) == {'params_file', 'driver', 'namespace', 'log_level'}
    configurations = {ast.literal_eval(call.args[0])
                      for call in _calls(tree, 'LaunchConfiguration')}
    assert configurations == set(declared)
    driver_choices = ast.literal_eval(declared['driver']['choices'])
    assert driver_choices == ['sim', 'stepper', 'dc']

    (node,) = _calls(tree, 'Node')
    keywords = _keywords(node)
    assert ast.literal_eval(keywords['package']) == 'autofocus_motor'
    assert ast.literal_eval(keywords['executable']) == 'motor_driver'
    assert ast.literal_eval(keywords['name']) == 'focus_motor'
    # The params file first, then the driver argument overriding it.
    parameters = keywords['parameters']
    assert [getattr(e, 'id', None) for e in parameters.elts] == ['params_file', None]
    assert 'motor.yaml' in source


def _load_params(name):
    document = yaml.safe_load((PACKAGE / 'config' / name).read_text())
    assert list(document) == [NODE_KEY]
    return document[NODE_KEY]['ros__parameters']


def test_motor_yaml_lists_every_parameter_with_the_right_type():
    params = _load_params('motor.yaml')
    assert list(params) == list(PARAMETERS)
    for name, (default, _) in PARAMETERS.items():
        assert type(params[name]) is type(default), name
        # The Pi's file names its motor and records its position; the node defaults to sim
        # and to no file (tests and simulations must not share one).
        if name not in ('driver', 'position_file'):
            assert params[name] == default, name
    assert params['driver'] == 'stepper'
    assert params['position_file'].endswith('.json')


def test_sim_yaml_sets_known_parameters():
    params = _load_params('motor_sim.yaml')
    assert params['driver'] == 'sim'
    for name, value in params.items():
        assert name in PARAMETERS
        assert type(value) is type(PARAMETERS[name][0]), name


def test_every_parameter_is_described():
    for name, (_, descriptor) in PARAMETERS.items():
        assert len(descriptor.description) > 20, name
