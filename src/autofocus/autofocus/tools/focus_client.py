"""Focus client: send a goal to /focus, show progress, print the result, save the curve.

    ros2 run autofocus focus_client                      # configured defaults
    ros2 run autofocus focus_client --strategy sweep --range 0 800 --plot curve.png
    ros2 run autofocus focus_client --roi 0.4 0.4 0.2 0.2 --timeout 30
    ros2 run autofocus focus_client --namespace cam1      # the graph of bringup namespace:=cam1
    ros2 run autofocus focus_client --ros-args -r __ns:=/cam1      # the same, the ROS way

Ctrl+C cancels the goal: the client asks the server to cancel, waits (at most
CANCEL_WAIT + RESULT_WAIT seconds) for the outcome, prints it and exits with 130.
Exit codes: 0 focused, 1 the goal failed, 2 a bad goal or one the server rejected,
3 no server, 130 canceled by Ctrl+C.

FocusClient is also a small typed API over the action for scripts:
send(), is_task_complete(), cancel_task(), get_result().
"""
import argparse
import enum
import sys
import time

import rclpy
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from autofocus.core import strategies
from autofocus.core.focus_request import FocusDefaults, resolve
from autofocus.nodes.action_client import ThreadSafeActionClient

CANCEL_WAIT = 5.0      # seconds for the server to accept a cancel request
RESULT_WAIT = 10.0     # then seconds for the canceled goal's result (the motor stopped)
EXIT_INTERRUPTED = 130

ERROR_NAMES = {getattr(Focus.Result, name): name for name in dir(Focus.Result)
               if name.isupper() and isinstance(getattr(Focus.Result, name), int)}


class TaskResult(enum.Enum):
    UNKNOWN = 0
    SUCCEEDED = 1
    CANCELED = 2
    FAILED = 3
    REJECTED = 4


class FocusClient:
    """Drive the focus action from a script: one goal at a time."""

    def __init__(self, node: Node, action_name: str = 'focus'):
        self.node = node
        self._client = ThreadSafeActionClient(node, Focus, action_name)
        self._goal_handle = None
        self._send_future = None
        self._result_future = None
        self.feedback = None
        self.on_feedback = None

    def wait_for_server(self, timeout: float) -> bool:
        return self._client.wait_for_server(timeout_sec=timeout)

    def send(self, goal: Focus.Goal, timeout: float = 10.0) -> bool:
        """Send a goal; return whether the server accepted it."""
        resolve(goal, FocusDefaults())  # ValueError with the reason, before the server says no
        self._send_future = self._client.send_goal_async(goal,
                                                        feedback_callback=self._on_feedback)
        return self.finish_send(timeout)

    def finish_send(self, timeout: float) -> bool:
        """Wait (at most timeout s) for the answer to the goal sent; whether it was accepted.

        Also after a Ctrl+C that interrupted send(): a goal may be running that needs a
        cancel."""
        future = self._send_future
        if future is None:
            return False
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        self._goal_handle = future.result() if future.done() else None
        if self._goal_handle is None or not self._goal_handle.accepted:
            self._goal_handle = None
            return False
        # Asked for again if the answer is lost (a fresh client whose goal ends at once, as
        # a refused absolute search does, can ask before DDS matched its reader).
        self._result_future = self._client.result_async(self._goal_handle)
        return True

    def _on_feedback(self, message):
        self.feedback = message.feedback
        if self.on_feedback is not None:
            self.on_feedback(message.feedback)

    def is_task_complete(self, spin_time: float = 0.1) -> bool:
        if self._result_future is None:
            return True
        rclpy.spin_until_future_complete(self.node, self._result_future, timeout_sec=spin_time)
        return self._result_future.done()

    def cancel_task(self, timeout: float = 5.0):
        """Ask the server to cancel the goal; the CancelGoal response, or None (no answer)."""
        if self._goal_handle is None:
            return None
        future = self._goal_handle.cancel_goal_async()
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        return future.result() if future.done() else None

    def get_result(self):
        """(TaskResult, Focus.Result or None) once is_task_complete() is True."""
        if self._result_future is None:
            return TaskResult.REJECTED, None
        if not self._result_future.done():
            return TaskResult.UNKNOWN, None
        response = self._result_future.result()
        status = {GoalStatus.STATUS_SUCCEEDED: TaskResult.SUCCEEDED,
                  GoalStatus.STATUS_CANCELED: TaskResult.CANCELED,
                  GoalStatus.STATUS_ABORTED: TaskResult.FAILED}.get(response.status,
                                                                   TaskResult.UNKNOWN)
        return status, response.result


def build_goal(args) -> Focus.Goal:
    goal = Focus.Goal(strategy=args.strategy, timeout=args.timeout)
    if args.range:
        goal.range_min, goal.range_max = args.range
    if args.roi:
        goal.roi_x, goal.roi_y, goal.roi_width, goal.roi_height = args.roi
    return goal


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Focus the camera through the /focus action.',
        epilog='Ctrl+C cancels the goal, prints its outcome and exits 130. Exit codes: 0 '
               'focused, 1 the goal failed, 2 a bad or rejected goal, 3 no server.')
    parser.add_argument('--strategy', default='', choices=['', *strategies.STRATEGIES],
                        help="search strategy (default: the server's)")
    parser.add_argument('--range', nargs=2, type=float, metavar=('MIN', 'MAX'),
                        help='lens positions to search (default: the server\'s)')
    parser.add_argument('--roi', nargs=4, type=float, metavar=('X', 'Y', 'W', 'H'),
                        help='region of interest as fractions of the image (default: the '
                             "sharpness node's)")
    parser.add_argument('--timeout', type=float, default=0.0,
                        help="seconds before the server gives up (default: the server's)")
    parser.add_argument('--plot', metavar='PNG', default='focus_curve.png',
                        help='where to save the focus curve (empty: no picture)')
    parser.add_argument('--action', default='focus', help='action name (default: focus)')
    parser.add_argument('--namespace', default='',
                        help="namespace of the graph (bringup's namespace:=...), e.g. cam1; "
                             'the same as --ros-args -r __ns:=/cam1')
    parser.add_argument('--wait', type=float, default=15.0,
                        help='seconds to wait for the action server to appear')
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv if argv is None else argv
    args = parse_args(rclpy.utilities.remove_ros_args(argv)[1:])
    goal = build_goal(args)
    try:
        resolve(goal, FocusDefaults())
    except ValueError as error:
        print(f'invalid goal: {error}', file=sys.stderr)
        return 2
    # No rclpy signal handlers: Ctrl+C raises KeyboardInterrupt here, with the context
    # still up to send the cancel (rclpy's handler would shut it down first).
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        namespace = args.namespace.strip('/')
        node = rclpy.create_node('focus_client', namespace=f'/{namespace}' if namespace else '')
        return _run(node, args, goal)
    except KeyboardInterrupt:
        print('interrupted before a goal was sent', file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def _run(node, args, goal):
    client = FocusClient(node, args.action)
    action = node.resolve_topic_name(args.action)
    if not client.wait_for_server(args.wait):
        print(f"no action server '{action}' after {args.wait:g} s:"
              ' is the focus server running (ros2 launch autofocus bringup.launch.py)? '
              'In a namespace, give --namespace.', file=sys.stderr)
        return 3
    client.on_feedback = lambda fb: print(
        f'  {fb.phase:<6} position {fb.current_position:9.2f}  sharpness '
        f'{fb.current_sharpness:10.4g}  best {fb.best_position:9.2f}  frames {fb.frames_used}',
        flush=True)
    started = time.monotonic()
    try:
        accepted = client.send(goal)
    except KeyboardInterrupt:
        # Interrupted while the goal was on its way: it may be running; if so, cancel it.
        try:
            if not client.finish_send(CANCEL_WAIT):
                print('interrupted; the goal was not accepted', file=sys.stderr)
                return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        return _cancel(client, started, args)
    if not accepted:
        print(f'the focus server ({action}) rejected the goal (its log says why: another goal '
              'may be running, or the range lies outside the motor limits)', file=sys.stderr)
        return 2
    print(f"focusing ({goal.strategy or 'default strategy'})...", flush=True)
    try:
        while not client.is_task_complete():
            pass
    except KeyboardInterrupt:
        return _cancel(client, started, args)
    status, result = client.get_result()
    _report(status, result, started, args)
    if result is None:
        return 1
    return 0 if status is TaskResult.SUCCEEDED else 1


def _cancel(client, started, args):
    """Ctrl+C during a goal: cancel it, wait (bounded) for its outcome, print it."""
    print('Ctrl+C: canceling the goal...', file=sys.stderr, flush=True)
    try:
        response = client.cancel_task(CANCEL_WAIT)
        if response is None:
            print(f'the server did not answer the cancel request within {CANCEL_WAIT:g} s',
                  file=sys.stderr)
        deadline = time.monotonic() + RESULT_WAIT
        while not client.is_task_complete() and time.monotonic() < deadline:
            pass
    except KeyboardInterrupt:
        print('interrupted again: not waiting for the server', file=sys.stderr)
        return EXIT_INTERRUPTED
    status, result = client.get_result()
    if result is None:
        print(f'no result within {RESULT_WAIT:g} s: the goal may still be running '
              "(see the focus server's log)", file=sys.stderr)
    else:
        _report(status, result, started, args)
    return EXIT_INTERRUPTED


def _report(status, result, started, args):
    print(f'{status.name} after {time.monotonic() - started:.2f} s')
    if result is None:
        return
    print(f'  success: {result.success}  strategy: {result.strategy}')
    if result.success:
        print(f'  final position: {result.final_position:.3f}  '
              f'sharpness: {result.final_sharpness:.5g}')
    else:
        print(f'  error: {ERROR_NAMES.get(result.error_code, result.error_code)}: '
              f'{result.error_msg}')
        print(f'  lens left at: {result.final_position:.3f}')
    print(f'  frames used: {result.frames_used}  samples: {len(result.positions)}')
    if args.plot and result.positions:
        from autofocus.tools.plotting import save_focus_curve
        save_focus_curve(args.plot, list(result.positions), list(result.sharpness),
                         result.final_position if result.success else None,
                         title=f'{result.strategy}: {status.name.lower()}')
        print(f'  focus curve saved to {args.plot}')


if __name__ == '__main__':
    sys.exit(main())
