"""Focus action server: drives the motor and reads sharpness until the lens is in focus.

Action      focus                 autofocus_interfaces/action/Focus
Publishes   focus_motor/command   autofocus_interfaces/MotorCommand
            focus_motor/keepalive autofocus_interfaces/MotorCommand (MODE_KEEPALIVE, best effort)
Subscribes  focus_motor/state     autofocus_interfaces/MotorState
            sharpness/metrics     autofocus_interfaces/FocusMetrics
Calls       <sharpness_node>/get_parameters, set_parameters (only for a goal with its own ROI)

One goal at a time: a goal that arrives while another runs is rejected (and
the reason logged), since two searches sharing one lens would both fail. An
invalid goal (unknown strategy, empty range, a NaN or infinite number, ROI
outside the image, range outside the motor's limits or too long for the steps)
is rejected the same way, by core.focus_request.resolve() once on arrival; the
focus client checks goals with the same code before sending, so a user sees
the reason. Parameters are checked together at start-up (ConfigError: exit 2).

A frame counts for a lens position only if its stamp is later than the
moment the motor reported coming to rest there plus the settle time: stamps
are compared, never "the next frame".

Fly-by scans (strategy `flyby`): for a Sweep step the server sends one move at
`flyby_speed`, keeps every motor state (position + header stamp) and every
frame's metrics stamped between the command and the motor's arrival, and hands
them to core (strategies.stream_samples places each frame at its exposure
time, `flyby_exposure_offset` after its stamp). A motor whose position is not
measured (a DC motor timed from its speed: position_measured false) gets the
same search with a stop-and-go coarse scan instead; the result says so.

Contact: while a goal runs the server sends the motor a keepalive every
`keepalive_period` (the driver stops any motion when it hears nothing for its
`watchdog_timeout`), and watches the motor's fixed-rate state and the camera's
frames: no state for `motor_state_timeout` aborts the goal with
MOTOR_CONTACT_LOST, no frames for `camera_timeout` (once they were flowing)
with NO_FRAMES, each naming what was lost. Commands carry their stamp and a DDS
lifespan, so none is delivered late after an outage. A move that the driver's watchdog
stopped while this server was running (a stall of this process) is sent again, at most
MAX_CONTACT_RESUMES times per goal.
"""
import sys
import collections
import gc
import math
import random
import statistics
import threading
import time
import traceback

from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import FocusMetrics, MotorCommand, MotorState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from autofocus.core import measures, strategies
from autofocus.core.focus_request import (
    MAX_TIMEOUT, FocusDefaults, check_defaults, resolve)
from autofocus.nodes.node_tools import (
    KEEPALIVE_QOS, ConfigError, declare, motor_command, run_node)

ROI_PARAMETERS = ('roi_x', 'roi_y', 'roi_width', 'roi_height')
POLL = 0.02  # seconds between checks for cancel and deadlines while waiting
# Seconds to wait for the motor to report where a stop left it; the wait ends sooner when
# the motor has not been heard for STOP_SILENCE seconds (it is gone: no report will come).
STOP_REPORT_WAIT = 2.0
STOP_SILENCE = 0.5
STALL = 0.25  # a gap this long between two such checks means this process was paused
# At most this fraction of a timeout is forgiven as this process's own pauses, per silence
# (reset by each message): a busy machine must not push a dead motor's abort past 2 timeouts.
STALL_ALLOWANCE = 0.5
# After such a pause, the silence is judged this much later: the executor first delivers
# what queued while this process was stopped (else a server paused for 2 s blames the
# camera or the motor, whose messages are waiting in its own queue).
STALL_GRACE = 0.1
# ... and only once the executor has woken this many times since (a timer every
# EXECUTOR_TICK): under load 0.1 s was not always enough for it to deliver the queue (seen:
# a server stopped for 2.5 s blamed a live camera). The second tick comes from a wait that
# began after the first one's callbacks, the queued messages among them, were dispatched.
# An executor that never wakes is judged STALL_GRACE_MAX after the pause regardless.
EXECUTOR_TICK = 0.05
STALL_TICKS = 2
STALL_GRACE_MAX = 1.0
# The driver's fault after its watchdog stopped a motion (motor_driver_node). When the
# server hears it, the server was there all along: its keepalives came late because this
# process was not scheduled (a loaded machine), or were lost on the way. An absolute move
# is then sent again, at most this many times per goal; more means the machine or the link
# cannot keep the contact, and the goal fails saying so.
CONTACT_FAULT = 'lost contact:'
MAX_CONTACT_RESUMES = 3
CONTACT_RESEND = 1.0  # s between stops sent at a goal's start until the driver echoes one


def _forgivable(paused, timeout, forgiven):
    """How much of this process's own pause may still count as no silence (>= 0)."""
    return max(0.0, min(paused, STALL_ALLOWANCE * timeout - forgiven))


class GoalEnded(Exception):
    """Ends a goal early: error_code is one of Focus.Result's constants."""

    def __init__(self, error_code, message):
        super().__init__(message)
        self.error_code = error_code


class FocusServerNode(Node):

    def __init__(self, **kwargs):
        super().__init__('focus_server', **kwargs)
        search_defaults = strategies.SearchConfig()
        self._defaults = FocusDefaults(
            strategy=declare(self, 'default_strategy', strategies.DEFAULT_STRATEGY,
                             'Strategy of a goal that names none',
                             choices=list(strategies.STRATEGIES)),
            range_min=declare(self, 'range_min', 0.0,
                              'Lowest lens position searched by default (motor units)'),
            range_max=declare(self, 'range_max', 1000.0,
                              'Highest lens position searched by default (motor units)'),
            timeout=declare(self, 'goal_timeout', 60.0,
                            'Seconds before a goal that gives no timeout is aborted',
                            low=0.1, high=MAX_TIMEOUT))
        self._search_steps = dict(
            sweep_step=declare(self, 'sweep_step', search_defaults.sweep_step,
                               'sweep: distance between samples', low=1e-6, high=1e9),
            coarse_step=declare(self, 'coarse_step', search_defaults.coarse_step,
                                'coarse_fine: distance between coarse samples',
                                low=1e-6, high=1e9),
            fine_step=declare(self, 'fine_step', search_defaults.fine_step,
                              'coarse_fine: distance between fine samples near the peak',
                              low=1e-6, high=1e9),
            climb_step=declare(self, 'climb_step', search_defaults.climb_step,
                               'hill_climb: first relative step', low=1e-6, high=1e9),
            climb_min_step=declare(self, 'climb_min_step', search_defaults.climb_min_step,
                                   'hill_climb: stop when the step shrinks below this',
                                   low=1e-6, high=1e9),
            noise_band=declare(self, 'noise_band', search_defaults.noise_band,
                               'hill_climb: relative sharpness change treated as noise',
                               low=0.0, high=1.0),
            min_peak_contrast=declare(
                self, 'min_peak_contrast', search_defaults.min_peak_contrast,
                'A curve whose (max - min) / max is below this has no peak (featureless '
                'scene): the goal aborts instead of claiming focus; between this and 0.3 a '
                'peak must also pass min_peak_significance', low=0.0, high=1.0),
            min_peak_significance=declare(
                self, 'min_peak_significance', search_defaults.min_peak_significance,
                'A low-contrast peak must stand this many noise sigmas (measured by the '
                'search: repeated frames, scatter) over the lowest sample', low=0.0, high=1e6),
            min_signal_level=declare(
                self, 'min_signal_level', search_defaults.min_signal_level,
                'Mean grey level (0-255) below which a frame has no signal (NO_SIGNAL)',
                low=0.0, high=65535.0),
            min_signal_snr=declare(
                self, 'min_signal_snr', search_defaults.min_signal_snr,
                "Texture (Vollath's F4) in standard deviations of what white noise alone "
                'gives, below which a frame has no texture (NO_SIGNAL)', low=0.0, high=1e6))
        try:
            check_defaults(self._defaults, self._search_steps)
        except ValueError as error:
            raise ConfigError(f'parameters: {error}') from None
        self._settle_ns = int(1e9 * declare(
            self, 'settle_time', 0.05,
            'Seconds after the motor comes to rest before a frame counts (vibration, '
            'exposure under way)', low=0.0, high=10.0))
        self._frames_per_position = declare(
            self, 'frames_per_position', 1, 'Frames averaged at each lens position',
            low=1, high=100)
        self._measure_name = declare(self, 'measure', measures.DEFAULT_MEASURE,
                                'Focus measure the search maximises',
                                choices=list(measures.MEASURES))
        self._move_timeout = declare(self, 'move_timeout', 10.0,
                                     'Seconds a move may take, and seconds to wait for a motor '
                                     'driver not yet heard (it may be starting beside us), '
                                     'before MOTOR_FAULT',
                                     low=0.1, high=600.0)
        self._frame_timeout = declare(self, 'frame_timeout', 2.0,
                                      'Seconds without a usable frame before NO_FRAMES',
                                      low=0.1, high=600.0)
        self._motor_speed = declare(self, 'motor_speed', 0.0,
                                    "Speed of moves, motor units/s (0 = the driver's default)",
                                    low=0.0, high=1e9)
        self._flyby_speed = declare(
            self, 'flyby_speed', 0.0,
            "flyby: speed of the scan while frames stream, motor units/s (0 = the driver's "
            'default); frames must land closer than coarse_step apart', low=0.0, high=1e9)
        self._flyby_offset_ns = int(1e9 * declare(
            self, 'flyby_exposure_offset', 0.0,
            "flyby: seconds from a frame's stamp to the middle of its exposure (half the "
            'exposure for a camera stamping its start, minus half for one stamping its end)',
            low=-1.0, high=1.0))
        sharpness_node = declare(self, 'sharpness_node', 'sharpness',
                                 'Name of the sharpness node whose ROI a goal may set')
        self._motor_state_timeout = declare(
            self, 'motor_state_timeout', 1.0,
            'Seconds without a state from the motor driver (it publishes at a fixed rate) '
            'before a running goal aborts with MOTOR_CONTACT_LOST', low=0.05, high=60.0)
        self._camera_timeout = declare(
            self, 'camera_timeout', 1.0,
            'Seconds without any frame measured (sharpness/metrics), once frames were '
            'flowing during a goal, before the goal aborts with NO_FRAMES', low=0.05, high=600.0)
        self._keepalive_period = declare(
            self, 'keepalive_period', 0.1,
            "Seconds between keepalives to the motor driver while a goal runs: well below "
            "the driver's watchdog_timeout", low=0.01, high=10.0)
        command_lifespan = declare(
            self, 'command_lifespan', 1.0,
            'DDS lifespan of motor commands, s: one not delivered by then is dropped, never '
            "delivered late (the driver also checks stamps against its max_command_age)",
            low=0.01, high=60.0)
        # A declared range does not stop NaN (every comparison with it is false).
        for name, parameter in self.get_parameters_by_prefix('').items():
            if isinstance(parameter.value, float) and not math.isfinite(parameter.value):
                raise ConfigError(f"parameter '{name}' is {parameter.value}; it must be a "
                                  'finite number')

        self._group = ReentrantCallbackGroup()
        self._changed = threading.Condition()
        self._motor_state = None
        # time.monotonic() of the last motor state and metrics received (contact watch).
        self._motor_state_received = 0.0
        self._metrics_received = 0.0
        # Seconds of this process's own pauses already forgiven in the current silence.
        self._motor_stall_forgiven = 0.0
        self._metrics_stall_forgiven = 0.0
        self._watch_motor = False
        self._goal_started = 0.0
        self._last_contact_check = 0.0
        # After a forgiven pause: judge no silence before this time, this executor tick,
        # unless this time has come (STALL_GRACE, STALL_TICKS, STALL_GRACE_MAX).
        self._judge_contact_after = 0.0
        self._judge_after_tick = 0
        self._judge_anyway_after = 0.0
        self._executor_ticks = 0
        # Enough for a fly-by pass of 30 s at 30 fps.
        self._metrics = collections.deque(maxlen=1024)
        # (stamp ns, position) of recent motor states: where the lens was during a fly-by.
        self._state_log = collections.deque(maxlen=2048)
        self._busy = False
        self._roi_changed_ns = 0
        # A random start keeps a restarted server from mistaking the motor's
        # echo of an old command for the acknowledgement of a new one.
        self._sequence = random.randrange(1, 2**31)

        self._command_pub = self.create_publisher(
            MotorCommand, 'focus_motor/command',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       lifespan=Duration(seconds=command_lifespan)))
        self._keepalive_pub = self.create_publisher(MotorCommand, 'focus_motor/keepalive',
                                                    KEEPALIVE_QOS)
        self.create_subscription(MotorState, 'focus_motor/state', self._on_motor_state, 10,
                                 callback_group=self._group)
        self.create_subscription(FocusMetrics, 'sharpness/metrics', self._on_metrics, 50,
                                 callback_group=self._group)
        self._get_params = self.create_client(GetParameters, f'{sharpness_node}/get_parameters',
                                              callback_group=self._group)
        self._set_params = self.create_client(SetParameters, f'{sharpness_node}/set_parameters',
                                              callback_group=self._group)
        self.create_timer(EXECUTOR_TICK, self._tick, callback_group=self._group)
        self._action_server = ActionServer(
            self, Focus, 'focus', execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=self._on_cancel,
            callback_group=self._group)

    # Subscriptions -------------------------------------------------------------------------

    def _on_motor_state(self, msg):
        with self._changed:
            self._motor_state = msg
            self._motor_state_received = time.monotonic()
            self._motor_stall_forgiven = 0.0
            self._state_log.append((Time.from_msg(msg.header.stamp).nanoseconds, msg.position))
            self._changed.notify_all()

    def _tick(self):
        self._executor_ticks += 1

    def _on_metrics(self, msg):
        with self._changed:
            self._metrics.append(msg)
            self._metrics_received = time.monotonic()
            self._metrics_stall_forgiven = 0.0
            self._changed.notify_all()

    # Goal admission ------------------------------------------------------------------------

    def _on_goal(self, goal):
        # The one validation of a goal (the client runs the same resolve() first).
        state = self._motor_state
        limits = None if state is None else (state.min_position, state.max_position)
        try:
            request = resolve(goal, self._defaults, limits=limits, search=self._search_steps)
        except ValueError as error:
            self.get_logger().error(f'rejected a focus goal: {error}')
            return GoalResponse.REJECT
        with self._changed:
            if self._busy:
                self.get_logger().error('rejected a focus goal: another goal is running '
                                        '(cancel it first)')
                return GoalResponse.REJECT
            self._busy = True
            self._request = request
            self._limits_checked = limits is not None
        return GoalResponse.ACCEPT

    def _on_cancel(self, goal_handle):
        return CancelResponse.ACCEPT

    # Execution -----------------------------------------------------------------------------

    def _execute(self, goal_handle):
        started = time.monotonic()
        request = self._request                   # resolved and checked by _on_goal
        self._deadline = started + request.timeout
        self._timeout = request.timeout
        self._goal_handle = goal_handle
        result = Focus.Result(strategy=request.strategy, error_code=Focus.Result.NONE)
        self._frames_used = 0
        self._last_frame_ns = 0
        self._goal_started = started
        self._watch_motor = False
        self._contact_resumes = 0
        keepalive_stop = threading.Event()
        keepalive = threading.Thread(target=self._keep_contact, args=(keepalive_stop,),
                                     name='motor-keepalive', daemon=True)
        keepalive.start()
        saved_roi = None
        try:
            if request.roi is not None:
                saved_roi = self._swap_sharpness_roi(request.roi)
            outcome = self._search(request, result, started)
            result.final_position = outcome.position
            result.final_sharpness = outcome.sharpness
            result.success = outcome.success
            if outcome.success:
                result.error_msg = ''
                goal_handle.succeed()
            else:
                result.error_code = {
                    strategies.FLAT_CURVE: Focus.Result.FLAT_CURVE,
                    strategies.PEAK_OUT_OF_RANGE: Focus.Result.PEAK_OUT_OF_RANGE,
                    strategies.NO_SIGNAL: Focus.Result.NO_SIGNAL,
                }.get(outcome.error, Focus.Result.UNKNOWN)
                result.error_msg = outcome.message
                goal_handle.abort()
        except GoalEnded as ended:
            self._where_stopped(self._stop_motor(), result)
            result.success = False
            result.error_code = ended.error_code
            result.error_msg = str(ended)
            if ended.error_code == Focus.Result.CANCELED:
                goal_handle.canceled()
            else:
                goal_handle.abort()
        except Exception as error:  # never leave a goal hanging or the motor running
            self._where_stopped(self._stop_motor(), result)
            self.get_logger().error(f'focus goal failed: {traceback.format_exc()}')
            result.success = False
            result.error_code = Focus.Result.UNKNOWN
            result.error_msg = f'internal error: {error!r}'
            goal_handle.abort()
        finally:
            keepalive_stop.set()
            self._watch_motor = False
            if saved_roi is not None:
                self._restore_sharpness_roi(saved_roi)
            with self._changed:
                self._busy = False
        result.frames_used = self._frames_used
        result.elapsed = Duration(seconds=time.monotonic() - started).to_msg()
        # One call site per severity: rclpy fixes a call site's severity at its first use
        # and raises on a change, which lost every result after the first opposite outcome.
        if result.success:
            self.get_logger().info(
                f'focus {request.strategy}: in focus at {result.final_position:.2f} '
                f'(sharpness {result.final_sharpness:.4g}, {result.frames_used} frames, '
                f'{time.monotonic() - started:.2f} s)')
        else:
            self.get_logger().warning(f'focus {request.strategy}: failed: {result.error_msg}')
        return result

    def _search(self, request, result, started):
        state = self._wait_for(self._fresh_motor_state, self._move_timeout,
                               Focus.Result.MOTOR_FAULT,
                               'no motor state on ' + self.resolve_topic_name('focus_motor/state')
                               + ': is the motor driver running?')
        self._watch_motor = True
        # A stop that the driver echoes: proves commands reach it, and clears a fault left
        # by an earlier lost contact (a driver fault stays).
        state = self._confirm_contact()
        if state.fault:
            raise GoalEnded(Focus.Result.MOTOR_FAULT, f'motor fault: {state.fault}')
        if not self._limits_checked:              # accepted before the motor was heard
            try:  # the goal again, now with the limits (an empty range fits itself to them)
                request = resolve(self._goal_handle.request, self._defaults,
                                  limits=(state.min_position, state.max_position),
                                  search=self._search_steps)
            except ValueError as error:
                raise GoalEnded(Focus.Result.INVALID_GOAL, str(error)) from None
        if request.strategy != 'hill_climb' and not state.position_known:
            raise GoalEnded(Focus.Result.POSITION_UNKNOWN,
                            'the motor driver does not know where the motor is (position_known '
                            'is false: it started without a recorded position, or stopped '
                            'mid-move): home the lens and confirm the position with a '
                            'MODE_SET_POSITION command, or use hill_climb, which only moves '
                            'relatively')
        config = strategies.SearchConfig(range_min=request.range_min, range_max=request.range_max,
                                         **self._search_steps)
        search = strategies.make_search(request.strategy, config, start_position=state.position,
                                        positions_while_moving=state.position_measured)
        if request.strategy == 'flyby' and not state.position_measured:
            self.get_logger().warning(
                'flyby: the motor does not measure its position while moving '
                '(position_measured false, e.g. a DC motor): scanning stop-and-go at '
                'coarse_step instead of streaming')
        step = search.start()
        feedback = Focus.Feedback()
        while True:
            feedback.phase = step.phase
            if isinstance(step, strategies.Sweep):
                stream, signals = self._sweep(step)
                result.positions.extend(p for p, _ in stream)
                result.sharpness.extend(v for _, v in stream)
                position, sharpness = stream[-1] if stream else (step.target, math.nan)
                step = search.observe_stream(stream, signals)
            else:
                position, rested_ns = self._move(step)
                sharpness, noise, signal = self._measure(
                    max(rested_ns + self._settle_ns, self._roi_changed_ns))
                result.positions.append(position)
                result.sharpness.append(sharpness)
                step = search.observe(position, sharpness, noise=noise, signal=signal)
            feedback.current_position, feedback.current_sharpness = position, sharpness
            feedback.best_position, feedback.best_sharpness = search.best
            feedback.frames_used = self._frames_used
            feedback.elapsed = Duration(seconds=time.monotonic() - started).to_msg()
            self._goal_handle.publish_feedback(feedback)
            if isinstance(step, strategies.Outcome):
                return step

    def _check_goal(self):
        if self._goal_handle.is_cancel_requested:
            raise GoalEnded(Focus.Result.CANCELED, 'canceled on request; motor stopped')
        self._check_contact()
        if time.monotonic() > self._deadline:
            raise GoalEnded(Focus.Result.TIMEOUT, f'timed out after {self._timeout:g} s; '
                            'give the goal a longer timeout or search a smaller range')

    def _wait_for(self, predicate, timeout, error_code, message):
        """Wait until predicate() is truthy, checking cancel and the goal deadline."""
        limit = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                self._check_goal()
                if time.monotonic() > limit:
                    raise GoalEnded(error_code, message)
                self._changed.wait(POLL)

    def _sweep(self, step):
        """A fly-by: one move at the fly-by speed; every frame stamped from the command to
        the arrival, placed by the motor states of that time (core: stream_samples);
        returns (samples, each one's signal figures or None)."""
        commanded_ns = self.get_clock().now().nanoseconds
        speed = step.speed or self._flyby_speed
        _, rested_ns = self._move(step, speed=speed)
        # The last frames of the pass arrive after the motor: wait for one stamped later,
        # unless the search does not use them (the way to the pass's start or back).
        if step.use_frames:
            self._wait_for(
                lambda: any(Time.from_msg(m.header.stamp).nanoseconds >= rested_ns
                            for m in self._metrics), self._frame_timeout,
                Focus.Result.NO_FRAMES,
                f'no frame within {self._frame_timeout:g} s of the end of the fly-by scan on '
                + self.resolve_topic_name('sharpness/metrics')
                + ': is the camera publishing and the sharpness node running?')
        with self._changed:
            first = max(commanded_ns, self._roi_changed_ns, self._last_frame_ns + 1)
            frames = [(Time.from_msg(m.header.stamp).nanoseconds, self._value_of(m),
                       self._signal_of(m)) for m in self._metrics]
            frames = [frame for frame in frames if first <= frame[0] <= rested_ns]
            # States from just before the command (where the lens started) to the rest.
            states = [(t, p) for t, p in self._state_log
                      if commanded_ns - 10**9 <= t <= rested_ns + 10**9]
        if frames:
            self._last_frame_ns = max(frame[0] for frame in frames)
        self._frames_used += len(frames)
        signals = []
        stream = strategies.stream_samples(states, frames, self._flyby_offset_ns, signals)
        return stream, signals

    def _move(self, step, speed=None):
        """Command one move and wait until the motor reports rest; return (position, rest time)."""
        self._wait_for(lambda: self._command_pub.get_subscription_count() > 0, self._move_timeout,
                       Focus.Result.MOTOR_FAULT,
                       'nothing subscribes to ' + self.resolve_topic_name('focus_motor/command')
                       + ': is the motor driver running?')
        speed = self._motor_speed if speed is None else speed
        while True:
            sequence = self._command_move(step, speed)

            def at_rest_or_stopped(sequence=sequence):
                state = self._motor_state
                if state is None:
                    return None
                contact_stop = state.fault.startswith(CONTACT_FAULT)
                if state.fault and not contact_stop:
                    raise GoalEnded(Focus.Result.MOTOR_FAULT, f'motor fault: {state.fault}')
                if state.last_command_sequence != sequence:
                    return None  # older: its contact stop, if any, this command clears
                return state if contact_stop or not state.moving else None

            state = self._wait_for(at_rest_or_stopped, self._move_timeout,
                                   Focus.Result.MOTOR_FAULT,
                                   f'the motor did not reach {step.target:g} within '
                                   f'{self._move_timeout:g} s')
            if not state.fault:
                return state.position, Time.from_msg(state.stationary_since).nanoseconds
            self._allow_resume(step, state.fault)

    def _command_move(self, step, speed):
        return self._command(
            MotorCommand.MODE_RELATIVE if step.relative else MotorCommand.MODE_ABSOLUTE,
            target=float(step.target), speed=speed)

    def _command(self, mode, **fields):
        """Publish a command with the next sequence number; return that number."""
        self._sequence = self._sequence % (2**32 - 1) + 1
        self._command_pub.publish(motor_command(self, mode, sequence=self._sequence, **fields))
        return self._sequence

    def _allow_resume(self, step, fault):
        """The driver's watchdog stopped this move although the server is here. Let the move
        be sent again (an absolute move: the same target wherever the stop left the lens,
        with a fresh move_timeout), or end the goal when that cannot be done or has been
        done too often."""
        if step.relative:
            raise GoalEnded(Focus.Result.MOTOR_FAULT,
                            f'motor fault: {fault} (a relative move is not resent: the part '
                            'already made is not known for certain)')
        if self._contact_resumes >= MAX_CONTACT_RESUMES:
            raise GoalEnded(Focus.Result.MOTOR_FAULT,
                            f'motor fault: {fault}; the driver has now stopped '
                            f'{self._contact_resumes + 1} moves of this goal for lost contact: '
                            'this machine or the link cannot keep the contact; '
                            "raise the driver's watchdog_timeout or give the focus server "
                            'more CPU (docs/reliability.md)')
        self._contact_resumes += 1
        self.get_logger().warning(
            f'the motor driver stopped the move to {step.target:g}: "{fault}" although this '
            'server was running (its keepalives came late or were lost); sending the move '
            f'again ({self._contact_resumes} of at most {MAX_CONTACT_RESUMES} per goal)')

    def _measure(self, after_ns):
        """The search measure over frames stamped after after_ns (each frame used once):
        (mean, its standard error from the frames' spread or None with one frame,
        (signal_level, signal_snr) averaged or None when the sharpness node sends none)."""
        values = []
        signals = []

        def enough_frames():
            for metrics in self._metrics:
                if len(values) >= self._frames_per_position:
                    break
                stamp = Time.from_msg(metrics.header.stamp).nanoseconds
                if stamp >= after_ns and stamp > self._last_frame_ns:
                    self._last_frame_ns = stamp
                    values.append(self._value_of(metrics))
                    signals.append(self._signal_of(metrics))
            return len(values) >= self._frames_per_position

        self._wait_for(enough_frames, self._frame_timeout, Focus.Result.NO_FRAMES,
                       f'no usable frame within {self._frame_timeout:g} s on '
                       + self.resolve_topic_name('sharpness/metrics')
                       + ': is the camera publishing and the sharpness node running?')
        self._frames_used += len(values)
        mean = sum(values) / len(values)
        noise = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
        signal = None
        if all(s is not None for s in signals):
            signal = tuple(sum(s[i] for s in signals) / len(signals) for i in range(2))
        return mean, noise, signal

    @staticmethod
    def _signal_of(metrics):
        """(signal_level, signal_snr) of a frame, or None if the metrics lack them."""
        names = list(metrics.names)
        if 'signal_level' in names and 'signal_snr' in names:
            return (metrics.values[names.index('signal_level')],
                    metrics.values[names.index('signal_snr')])
        return None

    def _value_of(self, metrics):
        if self._measure_name in metrics.names:
            return metrics.values[list(metrics.names).index(self._measure_name)]
        return metrics.sharpness

    def _stop_motor(self):
        return self._command(MotorCommand.MODE_STOP)

    def _where_stopped(self, sequence, result):
        """Fill result.final_position with where the stop left the lens (as the motor
        reports it, within STOP_REPORT_WAIT; else its last report; NaN if never heard), and
        final_sharpness with the sharpness measured there (NaN if none was)."""
        limit = time.monotonic() + STOP_REPORT_WAIT
        with self._changed:
            state = self._motor_state
            while state is not None and time.monotonic() < limit and (
                    time.monotonic() - self._motor_state_received < STOP_SILENCE) and (
                    state.last_command_sequence != sequence or state.moving):
                self._changed.wait(POLL)
                state = self._motor_state
        result.final_position = math.nan if state is None else state.position
        result.final_sharpness = result.sharpness[-1] if result.positions and \
            result.positions[-1] == result.final_position else math.nan

    # Contact with the motor and the camera -------------------------------------------------

    def _keep_contact(self, stop):
        """While a goal runs: tell the motor driver we are here (its watchdog's contact).

        On a topic of their own, best effort and newest only (node_tools.KEEPALIVE_QOS): one
        lost on the way is not resent later, the next one counts, and none waits behind a
        command. Sent on a fixed schedule; one that goes out late (this process was not
        given the CPU) is logged, since the driver stops any motion when the gap reaches its
        watchdog_timeout.
        """
        period = self._keepalive_period
        due = time.monotonic()
        while True:
            due += period
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            try:
                self._keepalive_pub.publish(motor_command(self, MotorCommand.MODE_KEEPALIVE))
            except Exception:  # the node is shutting down: the goal ends with it
                return
            now = time.monotonic()
            if now - due > period:
                self.get_logger().warning(
                    f'keepalive to the motor driver sent {now - due + period:.2f} s after the '
                    f'previous one (keepalive_period {period:g} s): this process was stalled '
                    '(a loaded machine?); the driver stops any motion after its '
                    'watchdog_timeout without one', throttle_duration_sec=1.0)
            # After a stall, on schedule from now: no burst to catch up.
            due = max(due, now)

    def _fresh_motor_state(self):
        if time.monotonic() - self._motor_state_received <= self._motor_state_timeout:
            return self._motor_state
        return None

    def _confirm_contact(self):
        # Sent again every CONTACT_RESEND s until echoed: a command published before the
        # driver's reader has matched this writer is lost once its lifespan has passed (a
        # freshly started pair on a loaded machine: seen as a goal failing 10 s later).
        sent = {self._stop_motor()}
        resend_at = time.monotonic() + CONTACT_RESEND

        def echoed():
            nonlocal resend_at
            if self._motor_state.last_command_sequence in sent:
                return self._motor_state
            if time.monotonic() >= resend_at:
                sent.add(self._stop_motor())
                resend_at = time.monotonic() + CONTACT_RESEND
            return None

        return self._wait_for(
            echoed, self._move_timeout, Focus.Result.MOTOR_CONTACT_LOST,
            'the motor driver publishes its state but did not act on a stop command within '
            f'{self._move_timeout:g} s: are its commands reaching it (clocks synchronised, '
            'within its max_command_age)?')

    def _camera_silent(self, now):
        """Frames came during this goal, then none for camera_timeout."""
        return self._metrics_received >= self._goal_started \
            and now - self._metrics_received > self._camera_timeout

    def _check_contact(self):
        """GoalEnded if the motor's state or the camera's frames stopped coming."""
        now = time.monotonic()
        paused = now - self._last_contact_check
        if paused > STALL and self._last_contact_check >= self._goal_started:
            # This loop checks every POLL: a longer gap means this process itself stalled
            # (a busy machine, a debugger), with messages queued but not yet delivered.
            # The pause does not count as silence of the motor or the camera.
            # Forgiven up to STALL_ALLOWANCE of the timeout per silence, so a dead motor or
            # camera still ends the goal within 1.5 timeouts however often this process stalls.
            if self._watch_motor:
                forgive = _forgivable(paused, self._motor_state_timeout,
                                      self._motor_stall_forgiven)
                self._motor_stall_forgiven += forgive
                self._motor_state_received = min(now, self._motor_state_received + forgive)
                if forgive > 0.0:
                    self._defer_judgement(now)
            if self._metrics_received >= self._goal_started:
                forgive = _forgivable(paused, self._camera_timeout, self._metrics_stall_forgiven)
                self._metrics_stall_forgiven += forgive
                self._metrics_received = min(now, self._metrics_received + forgive)
                if forgive > 0.0:
                    self._defer_judgement(now)
        self._last_contact_check = now
        if now < self._judge_anyway_after and (
                now < self._judge_contact_after
                or self._executor_ticks < self._judge_after_tick):
            return
        if self._watch_motor and now - self._motor_state_received > self._motor_state_timeout:
            raise GoalEnded(
                Focus.Result.MOTOR_CONTACT_LOST,
                f'lost contact with the motor driver: no state on '
                f"{self.resolve_topic_name('focus_motor/state')} for "
                f'{now - self._motor_state_received:.1f} s (motor_state_timeout '
                f'{self._motor_state_timeout:g} s): the link to the motor is down or the '
                'driver died; the driver stops the motor by itself after its watchdog_timeout')
        if self._camera_silent(now):
            raise GoalEnded(
                Focus.Result.NO_FRAMES,
                f'lost the camera: no frames measured on '
                f"{self.resolve_topic_name('sharpness/metrics')} for "
                f'{now - self._metrics_received:.1f} s (camera_timeout {self._camera_timeout:g} '
                's): is the camera publishing and the sharpness node running?')

    def _defer_judgement(self, now):
        self._judge_contact_after = now + STALL_GRACE
        self._judge_after_tick = self._executor_ticks + STALL_TICKS
        self._judge_anyway_after = now + STALL_GRACE_MAX

    # The sharpness node's ROI --------------------------------------------------------------

    def _call(self, client, request):
        if not client.wait_for_service(timeout_sec=2.0):
            raise GoalEnded(Focus.Result.SHARPNESS_NODE_UNAVAILABLE,
                            f'{client.srv_name} is not available: is the sharpness node running '
                            "(and named as the 'sharpness_node' parameter says)?")
        future = client.call_async(request)
        self._wait_for(future.done, 5.0, Focus.Result.SHARPNESS_NODE_UNAVAILABLE,
                       f'{client.srv_name} did not answer')
        return future.result()

    def _swap_sharpness_roi(self, roi):
        current = self._call(self._get_params, GetParameters.Request(names=list(ROI_PARAMETERS)))
        saved = [value.double_value for value in current.values]
        self._set_sharpness_roi(roi)
        return saved

    def _set_sharpness_roi(self, roi):
        parameters = [Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=float(value)))
            for name, value in zip(ROI_PARAMETERS, roi)]
        response = self._call(self._set_params, SetParameters.Request(parameters=parameters))
        refused = [r.reason for r in response.results if not r.successful]
        if refused:
            raise GoalEnded(Focus.Result.INVALID_GOAL,
                            f'the sharpness node refused the ROI: {refused[0]}')
        # Frames measured before this instant used the old ROI.
        self._roi_changed_ns = self.get_clock().now().nanoseconds

    def _restore_sharpness_roi(self, saved):
        try:
            parameters = [Parameter(name=name, value=ParameterValue(
                type=ParameterType.PARAMETER_DOUBLE, double_value=value))
                for name, value in zip(ROI_PARAMETERS, saved)]
            self._set_params.call_async(SetParameters.Request(parameters=parameters))
        except Exception as error:  # the goal's result matters more than the restore
            self.get_logger().warning(f'could not restore the sharpness ROI: {error!r}')

    def destroy_node(self):
        self._action_server.destroy()
        return super().destroy_node()


def main(args=None):
    # A full garbage collection walks every object the imports made (rclpy, numpy: ~36000)
    # while holding the GIL: 17-48 ms here, 0.23 s seen on a loaded machine, during which
    # no keepalive goes out. Frozen, they are never walked again.
    gc.freeze()
    return run_node(FocusServerNode, args, multithreaded=True)


if __name__ == '__main__':
    sys.exit(main())
