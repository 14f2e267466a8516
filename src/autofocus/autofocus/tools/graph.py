"""The node graph that bringup starts, as plain data: one source for two launchers.

`launch/bringup.launch.py` turns this plan into launch_ros Nodes for
`ros2 launch` on a ROS 2 install; `autofocus.tools.bringup` turns the same plan into
processes on a machine that has only the pip-installed ROS 2 wheels (no
`launch` package there). Both therefore start the same executables, with the
same names, parameter files and overrides.
"""
import glob
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple = ()


LAUNCH_ARGUMENTS = (
    LaunchArgument('use_sim', 'auto',
                   "'true': the simulated lens and motor; 'false': a real camera and motor; "
                   "'auto': simulate when camera_source is a V4L2 device that is not present",
                   ('auto', 'true', 'false')),
    LaunchArgument('camera_source', '',
                   "Camera: V4L2 index or /dev path, video file, or http/rtsp URL "
                   "('' = the 'source' in params_file)"),
    LaunchArgument('compose', 'true',
                   "'true': camera (or simulated lens) and sharpness in one process "
                   '(camera_sharpness), faster on one machine (see the pipeline benchmark); '
                   "'false': one process each", ('true', 'false')),
    LaunchArgument('launch_motor', 'true',
                   "Start the motor driver here; 'false' when it runs on another machine "
                   '(motor.launch.py on the Pi)', ('true', 'false')),
    LaunchArgument('motor_driver', '',
                   "Motor driver: 'sim', 'stepper' or 'dc' ('' = motor_params_file's, or "
                   "'sim' with the simulated lens)", ('', 'sim', 'stepper', 'dc')),
    LaunchArgument('params_file', '',
                   "Parameters of camera, sharpness and focus_server ('' = the package's "
                   'config/autofocus.yaml)'),
    LaunchArgument('sim_params_file', '',
                   "Parameters of the lens simulator and simulated motor ('' = the "
                   "package's config/sim.yaml)"),
    LaunchArgument('motor_params_file', '',
                   "Parameters of the motor driver ('' = autofocus_motor's config/motor.yaml)"),
    LaunchArgument('continuous', 'false',
                   "'true': also start continuous_focus, which keeps the picture in focus "
                   '(refocuses when the sharpness drops)', ('true', 'false')),
    LaunchArgument('namespace', '', 'Namespace of every node and topic (for several cameras)'),
    LaunchArgument('log_level', 'info', 'Logging level of every node',
                   ('debug', 'info', 'warn', 'error')),
)


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str
    name: str
    parameter_files: tuple
    overrides: dict = field(default_factory=dict)
    arguments: tuple = ()      # before --ros-args
    # False for a process of several nodes: a global __node:= would rename them all,
    # so they keep their own names (and `name` only keys the overrides).
    remap_name: bool = True


def camera_present(source: str) -> bool:
    """Whether a V4L2 camera source is plugged in (files and URLs count as present)."""
    source = source.strip()
    if source.isdigit():
        return os.path.exists(f'/dev/video{source}')
    if source.startswith('/dev/'):
        return os.path.exists(source)
    return bool(source) or bool(glob.glob('/dev/video*'))


def resolve_arguments(given: dict) -> dict:
    """Launch arguments with defaults filled in; ValueError for an unknown name or value."""
    known = {a.name: a for a in LAUNCH_ARGUMENTS}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown launch argument(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    values = {name: given.get(name, argument.default) for name, argument in known.items()}
    for name, value in values.items():
        choices = known[name].choices
        if choices and value not in choices:
            raise ValueError(f"launch argument {name}:={value} must be one of "
                             f"{', '.join(repr(c) for c in choices)}")
    return values


def plan(arguments: dict, share_directory) -> list:
    """The nodes to start for resolved launch arguments.

    share_directory(package) -> that package's share directory (ament index).
    """
    autofocus_share = share_directory('autofocus')
    params = arguments['params_file'] or os.path.join(autofocus_share, 'config', 'autofocus.yaml')
    sim_params = arguments['sim_params_file'] or os.path.join(autofocus_share, 'config',
                                                              'sim.yaml')
    use_sim = arguments['use_sim']
    if use_sim == 'auto':
        source = arguments['camera_source'] or '0'
        use_sim = 'false' if camera_present(source) else 'true'
    simulate = use_sim == 'true'

    nodes = []
    overrides = {} if simulate or not arguments['camera_source'] \
        else {'source': arguments['camera_source']}
    if arguments['compose'] == 'true':
        # sim.yaml after autofocus.yaml: the simulator's size and rate win, and the
        # camera-only keys (source, loop, ...) are not declared by the simulator.
        nodes.append(NodeSpec('autofocus', 'camera_sharpness', 'camera',
                              (params, sim_params) if simulate else (params,), overrides,
                              ('--simulate',) if simulate else (), remap_name=False))
    elif simulate:
        nodes.append(NodeSpec('autofocus', 'lens_simulator', 'camera', (sim_params,)))
    else:
        nodes.append(NodeSpec('autofocus', 'camera', 'camera', (params,), overrides))
    if arguments['compose'] != 'true':
        nodes.append(NodeSpec('autofocus', 'sharpness', 'sharpness', (params,)))
    nodes.append(NodeSpec('autofocus', 'focus_server', 'focus_server', (params,)))
    if arguments['continuous'] == 'true':
        nodes.append(NodeSpec('autofocus', 'continuous_focus', 'continuous_focus', (params,)))
    if arguments['launch_motor'] == 'true':
        motor_params = [arguments['motor_params_file'] or os.path.join(
            share_directory('autofocus_motor'), 'config', 'motor.yaml')]
        if simulate:
            motor_params.append(sim_params)
        overrides = {'driver': arguments['motor_driver']} if arguments['motor_driver'] else {}
        nodes.append(NodeSpec('autofocus_motor', 'motor_driver', 'focus_motor',
                              tuple(motor_params), overrides))
    return nodes
