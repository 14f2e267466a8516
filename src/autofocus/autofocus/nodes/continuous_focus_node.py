"""Continuous focus node: keeps the picture sharp by running focus goals when it goes soft.

Action client  focus                    autofocus_interfaces/action/Focus
Subscribes     sharpness/metrics        autofocus_interfaces/FocusMetrics
               focus_motor/state        autofocus_interfaces/MotorState
Publishes      ~/state                  autofocus_interfaces/ContinuousFocusState
                                        (on every change and once a second; latched)
Service        ~/enable                 autofocus_interfaces/srv/SetContinuousFocus

A client of the one-shot focus server, not a mode of it: the server keeps one job (a search)
and this node decides when to ask for one. The decisions are :mod:`autofocus.core.continuous`
(a median over a window of frames, a drop threshold and a hold time; a local search first,
a full one only if that fails); this node feeds it the sharpness of every frame and the
result of every goal. Stopping (enable: false, or the node ending) cancels a running goal,
and the focus server stops the motor on cancel. While a goal of another client runs, the
server refuses ours: that counts as a failed search (state 'failed') until the sharpness
changes again.
"""
import sys

from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import ContinuousFocusState, FocusMetrics, MotorState
from autofocus_interfaces.srv import SetContinuousFocus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.time import Time

from autofocus.core import continuous, measures, strategies
from autofocus.nodes.action_client import ThreadSafeActionClient
from autofocus.nodes.node_tools import ConfigError, declare, run_node

STATE_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Seconds past the goal timeout before a goal without a result is given up as lost.
LOST_GOAL_MARGIN = 10.0


class ContinuousFocusNode(Node):

    def __init__(self, **kwargs):
        super().__init__('continuous_focus', **kwargs)
        d = continuous.ContinuousConfig()
        config = continuous.ContinuousConfig(
            drop_threshold=declare(self, 'drop_threshold', d.drop_threshold,
                                   'Refocus when the sharpness falls this fraction below the '
                                   'level measured after the last search', low=0.01, high=0.99),
            hold_time=declare(self, 'hold_time', d.hold_time,
                              'Seconds the drop must last before a refocus (flicker, a hand '
                              'passing)', low=0.0, high=600.0),
            window=declare(self, 'window', d.window,
                           'Frames in the running median the drop is measured on', low=1,
                           high=1000),
            settle_time=declare(self, 'settle_time', d.settle_time,
                                'Seconds after a search before frames count', low=0.0,
                                high=10.0),
            local_range=declare(self, 'local_range', d.local_range,
                                'A refocus first searches +- this around the lens (motor '
                                'units)', low=1e-6, high=1e9),
            edge_margin=declare(self, 'edge_margin', d.edge_margin,
                                'A local result this close to its window edge means the '
                                'focus is beyond it: search the full range', low=0.0,
                                high=1e9),
            range_min=declare(self, 'range_min', d.range_min,
                              'Lowest lens position of a full search (motor units)'),
            range_max=declare(self, 'range_max', d.range_max,
                              'Highest lens position of a full search (motor units)'))
        try:
            self._machine = continuous.ContinuousFocus(config)
        except ValueError as error:
            raise ConfigError(f'continuous focus parameters: {error}') from None
        self._strategy = {
            continuous.LOCAL: declare(self, 'local_strategy', 'sweep',
                                      'Strategy of the local search', choices=[
                                          s for s in strategies.STRATEGIES if s != 'hill_climb']),
            continuous.FULL: declare(self, 'full_strategy', strategies.DEFAULT_STRATEGY,
                                     'Strategy of the full search', choices=[
                                         s for s in strategies.STRATEGIES if s != 'hill_climb'])}
        self._measure = declare(self, 'measure', measures.DEFAULT_MEASURE,
                                'Focus measure watched (use the focus server\'s)',
                                choices=list(measures.MEASURES))
        self._goal_timeout = declare(self, 'goal_timeout', 60.0,
                                     'Seconds a search may take before the server aborts it',
                                     low=0.1, high=3600.0)
        autostart = declare(self, 'autostart', True,
                            'Start focusing as soon as the focus server is up')

        self._motor_position = None
        self._goal_handle = None     # of the goal in flight (None while being sent)
        self._in_flight = False      # a goal is sent and has not ended
        self._sent_at = 0.0
        self._generation = 0         # a goal's results count only for its generation
        self._queued = None          # request to send once the goal in flight has ended
        self._last_search = ''
        self._wanted = autostart
        self._frames_seen = 0

        self._client = ThreadSafeActionClient(self, Focus, 'focus')
        self._state_pub = self.create_publisher(ContinuousFocusState, '~/state', STATE_QOS)
        self.create_subscription(FocusMetrics, 'sharpness/metrics', self._on_metrics, 50)
        self.create_subscription(MotorState, 'focus_motor/state', self._on_motor_state, 10)
        self.create_service(SetContinuousFocus, '~/enable', self._on_enable)
        self.create_timer(1.0, self._tick)
        self._publish_state()

    # Inputs ----------------------------------------------------------------------------------

    def _tick(self):
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._in_flight and now - self._sent_at > self._goal_timeout + LOST_GOAL_MARGIN:
            # The server should have ended the goal by its timeout: it died, or the link did.
            self.get_logger().error(
                f'no result from {self.resolve_topic_name("focus")} within the goal timeout '
                f'({self._goal_timeout:g} s): is the focus server running?')
            if self._goal_handle is not None:
                self._goal_handle.cancel_goal_async()
            self._in_flight = False
            self._goal_handle = None
            self._queued = None
            self._generation += 1      # a late result of that goal counts for nothing
            self._lost_goal()
        # Autostart once the graph is up: the server, the motor and frames all heard from.
        if self._wanted and self._machine.state == continuous.IDLE \
                and self._client.server_is_ready() and self._motor_position is not None \
                and self._frames_seen:
            self._start()
        self._publish_state()

    def _on_enable(self, request, response):
        if request.enable:
            self._wanted = True
            if self._machine.state == continuous.IDLE:
                if self._client.server_is_ready():
                    self._start()
                    response.message = 'started: a full search runs'
                else:
                    response.message = ('will start when the focus server '
                                        f"{self.resolve_topic_name('focus')} is up")
            else:
                response.message = f'already running ({self._machine.state})'
        else:
            self._wanted = False
            self._stop()
            response.message = 'stopped' + (
                '; the running search is canceled (the motor stops)' if self._in_flight else '')
        response.success = True
        response.state = self._machine.state
        return response

    def _on_motor_state(self, msg):
        self._motor_position = msg.position

    def _on_metrics(self, msg):
        self._frames_seen += 1
        if self._measure in msg.names:
            value = msg.values[list(msg.names).index(self._measure)]
        else:
            value = msg.sharpness
        t = Time.from_msg(msg.header.stamp).nanoseconds * 1e-9
        before = (self._machine.state, self._machine.phase)
        request = self._machine.observe(t, value)
        if request is not None:
            self.get_logger().info(f'refocusing ({request.kind}): {request.reason}')
            self._send(request)
        if (self._machine.state, self._machine.phase) != before:
            self._publish_state()

    # Goals -----------------------------------------------------------------------------------

    def _start(self):
        self.get_logger().info('continuous focus started')
        self._send(self._machine.start(self._motor_position))

    def _stop(self):
        was = self._machine.state
        self._machine.stop()
        self._generation += 1
        self._queued = None
        if self._in_flight and self._goal_handle is not None:
            self._goal_handle.cancel_goal_async()
        if was != continuous.IDLE:
            self.get_logger().info('continuous focus stopped')
        self._publish_state()

    def _send(self, request):
        self._publish_state()
        if self._in_flight:   # a canceled goal is still ending: the server would refuse
            self._queued = request
            return
        self._generation += 1
        generation = self._generation
        self._in_flight = True
        self._sent_at = self.get_clock().now().nanoseconds * 1e-9
        self._goal_handle = None
        self._last_search = request.kind
        goal = Focus.Goal(strategy=self._strategy[request.kind], range_min=request.range_min,
                          range_max=request.range_max, timeout=self._goal_timeout)
        future = self._client.send_goal_async(goal)
        future.add_done_callback(lambda f: self._on_goal_response(f, generation))

    def _on_goal_response(self, future, generation):
        handle = future.result()
        if not handle.accepted:
            self._in_flight = False
            self._ended(generation, False, None,
                        'the focus server refused the goal (another goal running?)')
            return
        self._goal_handle = handle
        if generation != self._generation:   # stopped while the goal was being sent
            handle.cancel_goal_async()
        self._client.result_async(handle).add_done_callback(
            lambda f: self._on_result(f, generation))

    def _on_result(self, future, generation):
        self._in_flight = False
        self._goal_handle = None
        response = future.result()
        result = response.result
        success = response.status == GoalStatus.STATUS_SUCCEEDED and result.success
        position = result.final_position if success else self._motor_position
        self._ended(generation, success, position, result.error_msg)

    def _lost_goal(self):
        request = self._machine.search_done(self.get_clock().now().nanoseconds * 1e-9, False,
                                            self._motor_position, 'no result from the server')
        if request is not None:
            self._send(request)
        else:
            self._publish_state()

    def _ended(self, generation, success, position, message):
        if generation == self._generation:
            now = self.get_clock().now().nanoseconds * 1e-9
            request = self._machine.search_done(now, success, position, message)
            # (rclpy refuses two severities from one line of code)
            if success:
                self.get_logger().info(self._machine.message)
            else:
                self.get_logger().warning(self._machine.message)
            if request is not None:
                self._send(request)
                return
        elif self._queued is not None:
            request, self._queued = self._queued, None
            self._send(request)
            return
        self._publish_state()

    # Output ----------------------------------------------------------------------------------

    def _publish_state(self):
        m = self._machine
        msg = ContinuousFocusState(state=m.state, phase=m.phase, search=self._last_search,
                                   local_searches=m.searches[continuous.LOCAL],
                                   full_searches=m.searches[continuous.FULL],
                                   message=m.message)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.position = float(m.position) if m.position is not None else float('nan')
        msg.reference_sharpness = float(m.reference) if m.reference is not None else 0.0
        msg.sharpness = float(m.level) if m.level is not None else 0.0
        self._state_pub.publish(msg)

    def destroy_node(self):
        if self._in_flight and self._goal_handle is not None:
            self._goal_handle.cancel_goal_async()
        self._client.destroy()
        return super().destroy_node()


def main(args=None):
    return run_node(ContinuousFocusNode, args)


if __name__ == '__main__':
    sys.exit(main())
