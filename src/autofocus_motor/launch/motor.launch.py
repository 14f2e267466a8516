"""Start the focus motor driver: the Raspberry Pi side of the autofocus system.

    ros2 launch autofocus_motor motor.launch.py
    ros2 launch autofocus_motor motor.launch.py driver:=dc namespace:=cam1
    ros2 launch autofocus_motor motor.launch.py driver:=sim    # no hardware

Topics: <namespace>/focus_motor/command (in), <namespace>/focus_motor/state (out),
/diagnostics.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    params_file = LaunchConfiguration('params_file')
    driver = LaunchConfiguration('driver')
    namespace = LaunchConfiguration('namespace')
    log_level = LaunchConfiguration('log_level')

    # Log lines reach the console as they happen, not when a buffer fills.
    stdout_linebuf_envvar = SetEnvironmentVariable('RCUTILS_LOGGING_BUFFERED_STREAM', '1')

    declare_params_file_cmd = DeclareLaunchArgument(
        'params_file',
        default_value=PathJoinSubstitution(
            [FindPackageShare('autofocus_motor'), 'config', 'motor.yaml']),
        description='Full path to the parameters file of the focus_motor node (its key must '
                    'match the node in any namespace: /**/focus_motor)')

    declare_driver_cmd = DeclareLaunchArgument(
        'driver',
        default_value='stepper',
        choices=['sim', 'stepper', 'dc'],
        description='Motor to drive: stepper (28BYJ-48 + ULN2003), dc (DC motor on an '
                    'H-bridge) or sim (no hardware); overrides the driver in params_file')

    declare_namespace_cmd = DeclareLaunchArgument(
        'namespace',
        default_value='',
        description='Namespace of the focus_motor node, e.g. one per camera; empty = none')

    declare_log_level_cmd = DeclareLaunchArgument(
        'log_level',
        default_value='info',
        choices=['debug', 'info', 'warn', 'error', 'fatal'],
        description='Logging level of the focus_motor node')

    motor_driver_node = Node(
        package='autofocus_motor',
        executable='motor_driver',
        name='focus_motor',
        namespace=namespace,
        output='screen',
        # The node exits with a clear message on a bad parameter; respawning would only
        # repeat it, so there is no respawn here.
        parameters=[params_file, {'driver': driver}],
        arguments=['--ros-args', '--log-level', log_level])

    ld = LaunchDescription()

    # Set environment variables
    ld.add_action(stdout_linebuf_envvar)

    # Declare the launch options
    ld.add_action(declare_params_file_cmd)
    ld.add_action(declare_driver_cmd)
    ld.add_action(declare_namespace_cmd)
    ld.add_action(declare_log_level_cmd)

    # The node
    ld.add_action(motor_driver_node)

    return ld
