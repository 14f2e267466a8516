"""The package's layering, checked on its import graph (docs/architecture.md).

    tools -> nodes -> io -> core

A module may import from its own sub-package or one below it, never above. ``core`` is the
science: no ROS at all (no rclpy, no message package, no launch) and nothing of ours outside
``core``. ``io`` moves frames and bags: no rclpy or launch (message objects pass through it,
cv_bridge may convert them). Lazy imports inside functions count like any other.
"""
import pathlib
import subprocess
import sys

from import_graph import package_graph, reachable, top_level
import pytest

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / 'autofocus'
LAYERS = ('core', 'io', 'nodes', 'tools')
ROS_MODULES = ('rclpy', 'rcl_interfaces', 'launch', 'launch_ros', 'ament_index_python',
               'rosidl_runtime_py', 'rosidl_parser', 'cv_bridge', 'message_filters',
               'image_transport', 'tf2_ros', 'rosbag2_py')
NODE_MACHINERY = ('rclpy', 'launch', 'launch_ros', 'ament_index_python', 'rosbag2_py')


def is_ros(name: str) -> bool:
    """rclpy and friends, and every ROS interface package (``*_msgs``, ``*_interfaces``...)."""
    top = top_level(name)
    return (top in ROS_MODULES or top.endswith(('_msgs', '_interfaces', '_srvs', '_actions'))
            or top == 'builtin_interfaces')


def layer_of(module: str) -> str | None:
    """``autofocus.io.bags.reader`` -> ``io``; modules outside the sub-packages -> None."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[0] == 'autofocus' and parts[1] in LAYERS else None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the layering, as 'importer -> imported: why'."""
    found = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        for target in sorted(targets):
            if top_level(target) == 'autofocus':
                if module == 'autofocus' or layer is None:
                    found.append(f'{module} -> {target}: only sub-packages hold code')
                    continue
                target_layer = layer_of(target)
                if target_layer is None:
                    found.append(f'{module} -> {target}: not in a sub-package')
                elif LAYERS.index(target_layer) > LAYERS.index(layer):
                    found.append(f'{module} -> {target}: {layer} may not import {target_layer}')
            elif layer == 'core' and is_ros(target):
                found.append(f'{module} -> {target}: core imports nothing of ROS')
            elif layer == 'io' and top_level(target) in NODE_MACHINERY:
                found.append(f'{module} -> {target}: io holds no node machinery')
    return found


def layer_cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of sub-packages that import each other, directly or through others."""
    edges = {layer: set() for layer in LAYERS}
    for module, targets in graph.items():
        for target in targets:
            if layer_of(module) and layer_of(target) and layer_of(module) != layer_of(target):
                edges[layer_of(module)].add(layer_of(target))

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return [(a, b) for a in LAYERS for b in LAYERS if a < b and reaches(a, b) and reaches(b, a)]


GRAPH = package_graph(PACKAGE_DIR)


def test_every_module_lives_in_a_layer():
    stray = [m for m in GRAPH if m != 'autofocus' and layer_of(m) is None]
    assert stray == [], f'modules outside {LAYERS}: {stray}'
    assert {layer_of(m) for m in GRAPH} - {None} == set(LAYERS)


def test_no_import_runs_up_the_layers_and_core_has_no_ros():
    assert violations(GRAPH) == []


def test_sub_packages_import_in_one_direction_only():
    assert layer_cycles(GRAPH) == []


@pytest.mark.parametrize('bad_source, why', [
    ('import rclpy', 'core imports nothing of ROS'),
    ('def lazy():\n    from sensor_msgs.msg import Image', 'core imports nothing of ROS'),
    ('from autofocus_interfaces.msg import MotorState', 'core imports nothing of ROS'),
    ('from autofocus.io import bags', 'core may not import io'),
    ('from ..nodes import camera_node', 'core may not import nodes'),
])
def test_the_check_catches_a_core_module_that_breaks_the_rule(tmp_path, bad_source, why):
    # A copy of the real package with one bad line added: the check must name it.
    package = tmp_path / 'autofocus'
    for path in PACKAGE_DIR.rglob('*.py'):
        target = package / path.relative_to(PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (package / 'core' / 'intruder.py').write_text(bad_source + '\n')
    found = violations(package_graph(package))
    assert [v for v in found if v.startswith('autofocus.core.intruder ->')] != []
    assert all(why in v for v in found), found


def test_an_upward_import_makes_a_cycle_the_check_finds(tmp_path):
    graph = {**GRAPH, 'autofocus.io.sneaky': {'autofocus.tools.graph'}}
    assert ('io', 'tools') in layer_cycles(graph)


def test_core_loads_no_ros_module_when_imported():
    # The import graph above is static; this is the same rule at run time, transitively
    # through every third-party package core uses.
    core_modules = sorted(m for m in GRAPH if layer_of(m) == 'core')
    script = ('import sys\n'
              f'for name in {core_modules!r}:\n'
              '    __import__(name)\n'
              'print(" ".join(sorted(m for m in sys.modules)))\n')
    loaded = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            check=True, timeout=120).stdout.split()
    assert [m for m in loaded if is_ros(m)] == []


def test_core_modules_reach_only_core():
    for module in (m for m in GRAPH if layer_of(m) == 'core'):
        assert {layer_of(m) for m in reachable(GRAPH, module)} <= {'core'}, module
