"""Bring up the autofocus graph: camera (or the simulated lens), sharpness, focus server,
and the motor driver unless it runs elsewhere.

    ros2 launch autofocus bringup.launch.py                       # simulated lens if no camera
    ros2 launch autofocus bringup.launch.py use_sim:=false camera_source:=/dev/video2
    ros2 launch autofocus bringup.launch.py launch_motor:=false   # motor on the Pi

The nodes come from autofocus.tools.graph, which the pip-only launcher
(`ros2 run autofocus bringup`) reads too, so both start the same graph. The
plan needs the argument values (use_sim:=auto looks for the camera), hence
the OpaqueFunction.
"""
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushROSNamespace

from autofocus.tools.graph import (LAUNCH_ARGUMENTS, plan, resolve_arguments,
                                   simulation_notice)


def _nodes(context):
    given = {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS}
    arguments = resolve_arguments(given)
    log_level = arguments['log_level']
    nodes = [Node(package=spec.package, executable=spec.executable,
                  name=spec.name if spec.remap_name else None,
                  parameters=[*spec.parameter_files, spec.overrides],
                  remappings=list(spec.remappings),
                  arguments=[*spec.arguments, '--ros-args', '--log-level', log_level],
                  output='screen', emulate_tty=True)
             for spec in plan(arguments, get_package_share_directory)]
    notice = simulation_notice(arguments, get_package_share_directory)
    return [*([LogInfo(msg=notice)] if notice else []),
            GroupAction([PushROSNamespace(arguments['namespace']), *nodes])]


def generate_launch_description():
    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                      **({'choices': list(a.choices)} if a.choices else {}))
                for a in LAUNCH_ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
