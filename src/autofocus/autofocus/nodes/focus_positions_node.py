"""Remembered focus positions: save the lens position under a name, recall it later.

Services    ~/save                 autofocus_interfaces/srv/FocusPosition (name -> position)
            ~/recall               autofocus_interfaces/srv/FocusPosition (moves there)
Publishes   focus_motor/command    autofocus_interfaces/MotorCommand
            focus_motor/keepalive  the same, MODE_KEEPALIVE while a recall moves (best effort)
Subscribes  focus_motor/state      autofocus_interfaces/MotorState
            focus/_action/status   action_msgs/GoalStatusArray (the focus server's goals)

The positions live in a YAML file (:mod:`autofocus.io.focus_positions`, replaced atomically
on every change), by default under the user's ROS home. Each focus goal that succeeds (from
any client) records where it left the lens as ``last``; at start-up, with ``restore_last``,
the lens goes back there as soon as the motor driver says its position is known (a
``position_known`` field where the driver has one, else ``position_measured``: a stepper
counts its steps, from the home switch once homed if it has one; a DC motor only
estimates them from time, so it is not moved).
A recall is refused while a focus goal runs (the two would fight over the motor).
"""
import random
import sys
import threading
import time

from action_msgs.msg import GoalStatus, GoalStatusArray
from autofocus_interfaces.msg import MotorCommand, MotorState
from autofocus_interfaces.srv import FocusPosition
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_action_status_default
from rclpy.time import Time

from autofocus.io import focus_positions
from autofocus.nodes.node_tools import (
    ConfigError, KEEPALIVE_QOS, declare, motor_command, run_node)

FIRST_STATE_WAIT = 5.0    # s: a just-started node waits this long for the motor's first state
# s before a move the driver has not acted on is sent again: a command published before the
# driver's reader matched this node's writer is lost (a just-started node restoring the
# last focus, on a loaded machine). Only while the driver has acted on nothing newer, so
# a command of another commander (a focus goal) is never overridden.
COMMAND_RESEND = 1.0
KEEPALIVE_PERIOD = 0.1    # s: well below a motor driver's watchdog_timeout
ACTIVE = (GoalStatus.STATUS_ACCEPTED, GoalStatus.STATUS_EXECUTING, GoalStatus.STATUS_CANCELING)


def position_known(state: MotorState) -> bool:
    """Whether the motor's reported position is a real one (see the module docstring)."""
    known = getattr(state, 'position_known', None)
    return bool(state.position_measured if known is None else known)


class FocusPositionsNode(Node):

    def __init__(self, **kwargs):
        super().__init__('focus_positions', **kwargs)
        path = declare(self, 'file', '',
                       "YAML file of the positions ('' = $ROS_HOME/autofocus/"
                       'focus_positions.yaml, ROS_HOME defaulting to ~/.ros)', read_only=True)
        self._restore = declare(self, 'restore_last', True,
                                'At start-up, move the lens to where the last successful focus '
                                "left it, if the motor's position is known", read_only=True)
        self._move_timeout = declare(self, 'move_timeout', 10.0,
                                     'Seconds a recall may take to reach its position',
                                     low=0.1, high=600.0)
        self._speed = declare(self, 'motor_speed', 0.0,
                              "Speed of recall moves, motor units/s (0 = the driver's default)",
                              low=0.0, high=1e9)
        try:
            self._store = focus_positions.PositionStore(path or focus_positions.default_path())
        except (ValueError, OSError) as error:
            raise ConfigError(f'focus positions file: {error}') from None
        self._changed = threading.Condition()
        self._state = None
        self._restore_pending = self._restore and self._store.last is not None
        self._told_waiting = False
        self._active_goals = set()
        self._recorded = set()
        self._started = self.get_clock().now()
        self._sequence = random.randrange(1, 2**31)
        self._moving_sequence = None          # a move of ours still running (kept alive)
        self._moving_until = 0.0
        self._moving_target = 0.0
        self._sent = set()                    # every sequence sent for that move
        self._sent_at = 0.0
        self._acted_on_before = None          # the driver's last sequence when it was sent
        self._record_after = None             # a succeeded goal's position, to record
        group = ReentrantCallbackGroup()
        self.create_timer(KEEPALIVE_PERIOD, self._keepalive, callback_group=group)
        self._command_pub = self.create_publisher(MotorCommand, 'focus_motor/command', 10)
        # Keepalives best effort, newest only, as the focus server sends them (node_tools).
        self._keepalive_pub = self.create_publisher(MotorCommand, 'focus_motor/keepalive',
                                                    KEEPALIVE_QOS)
        self.create_subscription(MotorState, 'focus_motor/state', self._on_state, 10,
                                 callback_group=group)
        self.create_subscription(GoalStatusArray, 'focus/_action/status', self._on_goals,
                                 qos_profile_action_status_default, callback_group=group)
        self.create_service(FocusPosition, '~/save', self._on_save, callback_group=group)
        self.create_service(FocusPosition, '~/recall', self._on_recall, callback_group=group)
        self.get_logger().info(f'{len(self._store.positions)} named positions in '
                               f'{self._store.path}' + (
                                   f'; last focus at {self._store.last:g}'
                                   if self._store.last is not None else ''))

    # Inputs ----------------------------------------------------------------------------------

    def _on_state(self, msg):
        with self._changed:
            self._state = msg
            self._changed.notify_all()
        after = self._record_after
        if after is not None and Time.from_msg(msg.header.stamp) >= after \
                and not msg.moving and not msg.fault:
            self._record_after = None
            self._store.set_last(msg.position)
            self.get_logger().info(f'last focus position {msg.position:g} saved')
        if self._restore_pending:
            self._restore_last(msg)

    def _on_goals(self, msg):
        for status in msg.status_list:
            goal = bytes(status.goal_info.goal_id.uuid)
            if status.status in ACTIVE:
                self._active_goals.add(goal)
                continue
            self._active_goals.discard(goal)
            # Goals accepted before this node started are history (a latched status list).
            if status.status == GoalStatus.STATUS_SUCCEEDED and goal not in self._recorded \
                    and Time.from_msg(status.goal_info.stamp) >= self._started:
                self._recorded.add(goal)
                # The status may arrive before the motor's state from the final move: record
                # the first at-rest state stamped after this moment (the driver publishes at
                # a fixed rate), not the one at hand.
                self._record_after = self.get_clock().now()

    # Services --------------------------------------------------------------------------------

    def _current_state(self, timeout=FIRST_STATE_WAIT):
        """The newest motor state, waiting briefly for a first one (this node just started,
        or discovery is slow on a busy machine); None if the motor is not heard."""
        with self._changed:
            self._changed.wait_for(lambda: self._state is not None, timeout)
            return self._state

    def _on_save(self, request, response):
        state = self._current_state()
        try:
            focus_positions.check_name(request.name)
            if state is None:
                raise ValueError('no motor state yet: is the motor driver running?')
            if state.moving:
                raise ValueError('the motor is moving; save once it has stopped')
            self._store.save(request.name, state.position)
        except (ValueError, OSError) as error:
            response.success, response.message = False, str(error)
            return response
        response.success, response.position = True, state.position
        response.message = f'saved {request.name!r} at {state.position:g}'
        self.get_logger().info(response.message)
        return response

    def _on_recall(self, request, response):
        try:
            position = self._store.get(request.name)
        except (KeyError, ValueError) as error:
            response.success, response.message = False, str(error.args[0])
            return response
        response.position = position
        if self._active_goals:
            response.success = False
            response.message = 'a focus goal is running: cancel it first'
            return response
        response.success, response.message = self._move_to(position)
        if response.success:
            response.message = f'recalled {request.name!r}: at {position:g}'
        self.get_logger().info(response.message)
        return response

    # The motor -------------------------------------------------------------------------------

    def _restore_last(self, state):
        """Go to the last focus once the motor knows its position (it may home first)."""
        last = self._store.last
        if not position_known(state) or state.fault:
            if not self._told_waiting:
                self._told_waiting = True
                why = f'motor fault: {state.fault}' if state.fault else (
                    'the motor does not know its position (a stepper that must home first, '
                    'a DC motor that only estimates it)')
                self.get_logger().warning(f'last focus position {last:g} not restored yet: '
                                          f'{why}; restored once it does')
            return
        self._restore_pending = False
        self.get_logger().info(f'restoring the last focus position {last:g}')
        self._send(last)

    def _send(self, position, resend=False):
        self._sequence = self._sequence % (2**32 - 1) + 1
        self._moving_sequence = self._sequence
        self._sent_at = time.monotonic()
        if not resend:
            self._moving_until = self._sent_at + self._move_timeout
            self._moving_target = position
            self._sent = set()
            state = self._state
            self._acted_on_before = None if state is None else state.last_command_sequence
        self._sent.add(self._sequence)
        self._command_pub.publish(motor_command(
            self, MotorCommand.MODE_ABSOLUTE, target=float(position), speed=self._speed,
            sequence=self._sequence))
        return self._sequence

    def _keepalive(self):
        """While a move this node commanded runs: the driver stops any motion whose
        commander falls silent for its watchdog_timeout, so keep in contact until the state
        shows the move done."""
        sequence, state = self._moving_sequence, self._state
        if sequence is None:
            return
        # Done: arrived; or given up after move_timeout (another commander, a focus goal, may
        # have replaced our command, and its state never echoes ours).
        done = state is not None and state.last_command_sequence == sequence and (
            not state.moving or state.fault)
        if done or time.monotonic() > self._moving_until:
            self._moving_sequence = None
            return
        if state is not None and state.last_command_sequence == self._acted_on_before \
                and time.monotonic() - self._sent_at >= COMMAND_RESEND:
            self._send(self._moving_target, resend=True)
            return
        try:
            self._keepalive_pub.publish(motor_command(self, MotorCommand.MODE_KEEPALIVE))
        except Exception:  # shutting down (Ctrl+C): the driver's watchdog stops the move
            self._moving_sequence = None

    def _move_to(self, position):
        if self._current_state() is None:
            return False, 'no motor state yet: is the motor driver running?'
        self._send(position)
        sent = self._sent

        def arrived():
            state = self._state
            return state.last_command_sequence in sent and (not state.moving or state.fault)

        with self._changed:
            if not self._changed.wait_for(arrived, self._move_timeout):
                return False, f'the motor did not reach {position:g} within ' \
                              f'{self._move_timeout:g} s'
            state = self._state
        if state.fault:
            return False, f'motor fault: {state.fault}'
        if abs(state.position - position) > 1e-6 + 1.0:   # a stepper rounds to a half-step
            return False, f'the motor stopped at {state.position:g}, not {position:g} ' \
                          '(soft limits?)'
        return True, ''


def main(args=None):
    return run_node(FocusPositionsNode, args, multithreaded=True)


if __name__ == '__main__':
    sys.exit(main())
