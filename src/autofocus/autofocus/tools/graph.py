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
    LaunchArgument('focus_control', 'motor',
                   "What turns the lens: 'motor': the motor driver (motor_driver); 'camera': "
                   'the camera itself: a V4L2 camera_source gets the lens_motor node '
                   "(focus_absolute), 'picamera2'/'gphoto2' sources serve it from the camera "
                   'node (a DSLR focuses with hill_climb)', ('motor', 'camera')),
    LaunchArgument('image_topic', '',
                   "Frames from another camera driver's topic (e.g. /image_raw of usb_cam, "
                   "/camera/image_raw of camera_ros or v4l2_camera): no camera node of ours is "
                   "started ('' = our camera node)"),
    LaunchArgument('lens_params_file', '',
                   "Parameters of a camera's own lens (focus_control:=camera; '' = the "
                   "package's config/lens.yaml)"),
    LaunchArgument('continuous', 'false',
                   "'true': also start continuous_focus, which keeps the picture in focus "
                   '(refocuses when the sharpness drops)', ('true', 'false')),
    LaunchArgument('namespace', '', 'Namespace of every node and topic (for several cameras)'),
    LaunchArgument('web', 'false',
                   "'true': the web node too (the page prints its URL with the token; "
                   'parameters in params_file)', ('true', 'false')),
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
    remappings: tuple = ()     # (from, to) topic pairs


def camera_present(source: str) -> bool:
    """Whether a V4L2 camera source is plugged in (files and URLs count as present)."""
    source = source.strip()
    if source.isdigit():
        return os.path.exists(f'/dev/video{source}')
    if source.startswith('/dev/'):
        return os.path.exists(source)
    return bool(source) or bool(glob.glob('/dev/video*'))


def configured_camera_source(arguments: dict, params_file: str) -> str:
    """The camera source the graph would use: camera_source, else params_file's, else '0'."""
    if arguments['camera_source']:
        return arguments['camera_source']
    try:
        import yaml
        with open(params_file) as file:
            for key, block in (yaml.safe_load(file) or {}).items():
                if str(key).rstrip('/').split('/')[-1] == 'camera':
                    return str(block['ros__parameters']['source'])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # a broken params file is the camera node's to report
    return '0'


def simulation_notice(arguments: dict, share_directory) -> str:
    """Why use_sim:=auto simulates, and how to use a real camera; '' when it does not."""
    if arguments['use_sim'] != 'auto':
        return ''
    source = configured_camera_source(arguments, _params_file(arguments, share_directory))
    if camera_present(source):
        return ''
    device = f'/dev/video{source.strip()}' if source.strip().isdigit() else source
    return (f"use_sim:=auto: no camera at source '{source}' ({device} is not present), so "
            'the lens and the motor are SIMULATED. To use a real camera: plug it in '
            '(`ls /dev/video*` lists them) or name it with camera_source:=/dev/videoN '
            '(or a video file, or an http/rtsp URL); use_sim:=false never simulates.')


def _params_file(arguments: dict, share_directory) -> str:
    return arguments['params_file'] or os.path.join(share_directory('autofocus'), 'config',
                                                    'autofocus.yaml')


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
    params = _params_file(arguments, share_directory)
    sim_params = arguments['sim_params_file'] or os.path.join(autofocus_share, 'config',
                                                              'sim.yaml')
    use_sim = arguments['use_sim']
    if use_sim == 'auto':
        use_sim = 'true' if simulation_notice(arguments, share_directory) else 'false'
    simulate = use_sim == 'true'

    focus_by_camera = arguments['focus_control'] == 'camera'
    lens_params = arguments['lens_params_file'] or os.path.join(autofocus_share, 'config',
                                                                'lens.yaml')
    image_topic = arguments['image_topic']
    source = arguments['camera_source'].strip()
    if focus_by_camera and simulate and not image_topic:
        raise ValueError("focus_control:=camera needs a real camera: camera_source "
                         f"'{source or '0'}' is not present (plug it in, or use_sim:=false)")

    camera_params = (params, lens_params) if focus_by_camera else (params,)
    nodes = []
    overrides = {} if simulate or not arguments['camera_source'] \
        else {'source': arguments['camera_source']}
    # Another driver publishes the frames: every node that reads them listens to its topic.
    image_remaps = () if not image_topic else (
        ('camera/image_raw', image_topic.rstrip('/')),
        ('camera/image_raw/compressed', image_topic.rstrip('/') + '/compressed'))
    if image_topic:
        nodes.append(NodeSpec('autofocus', 'sharpness', 'sharpness', (params,),
                              remappings=image_remaps))
    elif arguments['compose'] == 'true':
        # sim.yaml after autofocus.yaml: the simulator's size and rate win, and the
        # camera-only keys (source, loop, ...) are not declared by the simulator.
        nodes.append(NodeSpec('autofocus', 'camera_sharpness', 'camera',
                              (params, sim_params) if simulate else camera_params, overrides,
                              ('--simulate',) if simulate else (), remap_name=False))
    elif simulate:
        nodes.append(NodeSpec('autofocus', 'lens_simulator', 'camera', (sim_params,)))
    else:
        nodes.append(NodeSpec('autofocus', 'camera', 'camera', camera_params, overrides))
    if arguments['compose'] != 'true' and not image_topic:
        nodes.append(NodeSpec('autofocus', 'sharpness', 'sharpness', (params,)))
    # A DSLR's focus can only be stepped, never set: hill_climb moves in relative steps.
    relative_only = focus_by_camera and source == 'gphoto2'
    # sim.yaml after autofocus.yaml: the simulated camera's more patient camera_timeout.
    nodes.append(NodeSpec('autofocus', 'focus_server', 'focus_server',
                          (params, sim_params) if simulate else (params,),
                          {'default_strategy': 'hill_climb'} if relative_only else {}))
    if arguments['web'] == 'true':
        nodes.append(NodeSpec('autofocus', 'web', 'web', (params,), remappings=image_remaps))
    if arguments['continuous'] == 'true':
        nodes.append(NodeSpec('autofocus', 'continuous_focus', 'continuous_focus', (params,)))
    if focus_by_camera:
        if source.isdigit() or source.startswith('/dev/') or not source:
            # V4L2: the lens is a control any process may set, served beside the capture.
            nodes.append(NodeSpec('autofocus', 'lens_motor', 'focus_motor', (lens_params,),
                                  {'device': source or '0'}))
        elif not (source == 'gphoto2' or source.startswith('picamera2')):
            raise ValueError(f"focus_control:=camera: camera_source '{source}' has no focus "
                             'control of its own; give a V4L2 device (/dev/video0), '
                             "'picamera2' or 'gphoto2'")
        # picamera2 / gphoto2: the camera node serves focus_motor itself.
    elif arguments['launch_motor'] == 'true':
        motor_params = [arguments['motor_params_file'] or os.path.join(
            share_directory('autofocus_motor'), 'config', 'motor.yaml')]
        if simulate:
            motor_params.append(sim_params)
        overrides = {'driver': arguments['motor_driver']} if arguments['motor_driver'] else {}
        nodes.append(NodeSpec('autofocus_motor', 'motor_driver', 'focus_motor',
                              tuple(motor_params), overrides))
    return nodes
