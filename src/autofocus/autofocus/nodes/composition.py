"""Camera and sharpness nodes in one process, on one executor.

    ros2 run autofocus camera_sharpness --ros-args --params-file config/autofocus.yaml
    ros2 run autofocus camera_sharpness --simulate --ros-args --params-file config/sim.yaml

rclpy has no component containers, so this is the Python equivalent of
composing `camera` and `sharpness` in one container: the nodes keep their
names, topics, parameters and YAML keys (`/**/camera`, `/**/sharpness`), but a
frame goes from one to the other inside the process, without the
shared-memory transport between two processes. `--simulate` runs the lens
simulator as `camera` instead of the camera node.
"""
import argparse
import functools
import sys

from rclpy.utilities import remove_ros_args

from autofocus.nodes.camera_node import CameraNode
from autofocus.nodes.lens_simulator_node import LensSimulatorNode
from autofocus.nodes.node_tools import run_nodes
from autofocus.nodes.sharpness_node import SharpnessNode

# The camera's reader thread and the executor share one GIL. At Python's default
# 5 ms switch interval a frame waited up to 5 ms for the executor to get the GIL
# while the reader decoded the next one.
GIL_SWITCH_INTERVAL = 0.0005


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog='camera_sharpness', description=__doc__.split('\n\n')[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--simulate', action='store_true',
                        help='run the lens simulator as the camera (follows focus_motor/state)')
    return parser.parse_args(remove_ros_args(argv)[1:])


def main(args=None):
    argv = sys.argv if args is None else args
    options = parse_arguments(argv)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    # Per-node remapping: a global __node:= would rename both nodes.
    camera_class = LensSimulatorNode if options.simulate else CameraNode
    camera = functools.partial(camera_class, cli_args=['--ros-args', '-r', '__node:=camera'])
    camera.__name__ = camera_class.__name__
    return run_nodes([camera, SharpnessNode], argv)


if __name__ == '__main__':
    sys.exit(main())
