"""What every autofocus node shares: typed parameter declaration and a clean main()."""
import os
import sys
import time

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Images: sensor-data QoS (best effort, volatile) that keeps only the newest
# frame on both ends, so a late reader gets the current frame, never a queue
# of old ones whose latency would grow.
IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)

# Keepalives to a motor driver (its ~/keepalive): best effort, newest only, as the driver
# subscribes (autofocus_motor.motor_driver_node.KEEPALIVE_QOS). A lost one is not resent
# later; the next one is what counts.
KEEPALIVE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)


def motor_command(node, mode, **fields):
    """A MotorCommand stamped with ``node``'s clock now. Motor drivers ignore unstamped and
    stale commands, so nothing queued during an outage replays (docs/reliability.md)."""
    from autofocus_interfaces.msg import MotorCommand
    command = MotorCommand(mode=mode, **fields)
    command.header.stamp = node.get_clock().now().to_msg()
    return command


class ConfigError(Exception):
    """A parameter value the node cannot run with; the message names it and the fix."""


def declare(node, name, default, description, *, low=None, high=None, step=None,
            read_only=False, choices=None):
    """Declare a typed parameter with a description (and a range when given); return its value."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if choices:
        descriptor.additional_constraints = 'one of: ' + ', '.join(choices)
    if low is not None and high is not None:
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise TypeError(f'{name}: a range needs a numeric default')
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(
                from_value=low, to_value=high, step=step or 0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=float(step or 0.0))]
    value = node.declare_parameter(name, default, descriptor).value
    if choices and value not in choices:
        raise ConfigError(
            f"parameter '{name}' is '{value}'; it must be one of: {', '.join(choices)}")
    return value


def run_node(node_class, args=None, multithreaded=False):
    """Create the node, spin it until Ctrl+C or shutdown, and exit cleanly.

    Single-threaded unless the node blocks in a callback (the focus server's
    goal execution): rclpy's MultiThreadedExecutor lost 5-10% of 30 Hz
    640x480 frames in the sharpness node where the single-threaded one lost
    none (measured here, Kilted wheels, 2 cores).

    A bad parameter ends the process with exit code 2 and one clear line
    instead of a traceback. rclpy 9 makes init() a context manager that shuts
    down cleanly on SIGINT; older rclpy (Jazzy) does not, hence the fallback.
    """
    return run_nodes([node_class], args, multithreaded)


def run_nodes(node_factories, args=None, multithreaded=False):
    """Like run_node for several nodes in this process, all on one executor."""
    if help_requested(sys.argv if args is None else args):
        print_node_help(node_factories, sys.argv if args is None else args)
        return 0
    context = rclpy.init(args=args)
    if context is not None and hasattr(context, '__enter__'):
        with context:
            return _spin(node_factories, multithreaded)
    try:
        return _spin(node_factories, multithreaded)
    finally:
        rclpy.try_shutdown()


def help_requested(argv) -> bool:
    """Whether -h/--help is among the arguments that are not ROS arguments."""
    from rclpy.utilities import remove_ros_args
    return any(arg in ('-h', '--help') for arg in remove_ros_args(args=list(argv))[1:])


def print_node_help(node_factories, argv):
    """Usage of a node executable: its module's docstring and the parameters it declares,
    read from its source, since constructing the node would open the camera or create the
    bag. Touches no device, file or DDS."""
    prog = os.path.basename(argv[0]) if argv else 'node'
    print(f'usage: {prog} [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] '
          f'[-r __ns:=/NAMESPACE] [-r __node:=NAME] [--log-level LEVEL]]\n')
    for factory in node_factories:
        module = sys.modules.get(getattr(factory, '__module__', ''), None)
        doc = (getattr(module, '__doc__', None) or '').strip()
        if doc:
            print(doc + '\n')
        parameters = declared_parameters(module)
        if parameters:
            print('parameters (-p NAME:=VALUE):')
            for name, default, description in parameters:
                print(f'  {name}' + (f' (default {default})' if default else '')
                      + f': {description}')
            print()
    print('A running node describes each parameter with its range: '
          '`ros2 param describe <node> <name>`.')


def declared_parameters(module) -> list:
    """(name, default, description) of every declare(self, 'name', default, 'description')
    call in a module's source (and in the classes it uses from this package's nodes)."""
    import ast
    import inspect
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return []
    found = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'declare'
                and len(call.args) >= 4 and isinstance(call.args[1], ast.Constant)):
            continue
        try:  # a literal default; one computed in code is left to config/*.yaml
            default = repr(ast.literal_eval(call.args[2]))
        except ValueError:
            default = None
        description = call.args[3].value if isinstance(call.args[3], ast.Constant) \
            else ast.unparse(call.args[3])
        found.append((call.args[1].value, default, ' '.join(str(description).split())))
    return found


# How long an error in the executor waits for a shutdown under way to show in rclpy.ok().
SHUTDOWN_SETTLE = 0.5


def shutting_down(wait=SHUTDOWN_SETTLE):
    """Whether the context is shut down, or is within ``wait`` seconds: rclpy's signal
    handler shuts it down while the executor may be taking a message, which then fails in
    rcl or pybind ("context is invalid", "Unable to convert call argument '0'", seen once
    on SIGINT in a fresh-clone run) a moment before rclpy.ok() turns false."""
    deadline = time.monotonic() + wait
    while rclpy.ok():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _spin(node_factories, multithreaded):
    from rclpy.exceptions import InvalidParameterValueException, ParameterException
    nodes = []
    factory = None
    try:
        executor = rclpy.executors.MultiThreadedExecutor(num_threads=4) if multithreaded \
            else rclpy.executors.SingleThreadedExecutor()
        for factory in node_factories:
            nodes.append(factory())
            executor.add_node(nodes[-1])
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigError, ParameterException, InvalidParameterValueException) as error:
        # Return rather than sys.exit() here: leaving this block frees the half-built
        # nodes while the context is still up, instead of during its shutdown.
        name = getattr(factory, '__name__', 'node')
        print(f'[{name}] cannot start: {error}', file=sys.stderr)
        return 2
    except Exception:
        if not shutting_down():  # a real error: its traceback must show
            raise
        # SIGTERM shuts the context down from rclpy's signal handler, with no
        # KeyboardInterrupt to stop the main thread first: a node being built or a
        # callback under way then fails in rcl ("context is invalid"). That is the
        # stop the user asked for, not an error.
    finally:
        for node in reversed(nodes):
            node.destroy_node()
    return 0
