"""The focus motor driver node: a thin ROS 2 wrapper around ``autofocus_motor.drivers``.

Subscribes ``~/command`` (autofocus_interfaces/MotorCommand) and ``~/keepalive`` (the same
type, MODE_KEEPALIVE only; best effort, newest only; handled on a thread of its own by a
second node, ``focus_motor_keepalive``), publishes ``~/state``
(autofocus_interfaces/MotorState) at ``state_rate`` and at once whenever motion starts or
stops, and ``/diagnostics`` at 1 Hz. Service ``~/home`` (autofocus_interfaces/srv/Home)
homes a stepper on its home switch (``home_pin``); without one it says so and changes
nothing. Runs on a Raspberry Pi: imports neither OpenCV nor numpy itself (rclpy 9's Node
does load numpy, through the generated service_msgs code).

Contact, not just commands: every motion (absolute, relative, velocity) stops by itself
when nothing (a command or a MODE_KEEPALIVE) has come from the commander for
``watchdog_timeout``; the stop is logged and published in ``MotorState.fault`` until the
next command. A command stamped more than ``max_command_age`` away from this node's clock
is ignored (and DDS lifespan drops it earlier where it can), so commands queued during an
outage do not replay when the link returns: across machines the clocks must agree to well
within ``max_command_age`` (chrony/NTP).

Position across restarts: with ``position_file`` the position is written down at every
start and stop of a motion and restored at start-up; otherwise, or when the record says
the motor was moving, ``MotorState.position_known`` is false until a MODE_SET_POSITION.
"""
import gc
import math
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from autofocus_interfaces.msg import MotorCommand, MotorState
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
import rclpy.task
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args

from autofocus_interfaces.srv import Home
from autofocus_motor.drivers import DCDriver, HomingStepperDriver, SimDriver, StepperDriver
from autofocus_motor.position_store import PositionStore

NODE_NAME = 'focus_motor'
DRIVERS = ('sim', 'stepper', 'dc')
# How often the node polls the driver to notice that motion stopped. The driver times the
# motion itself; this only bounds how late the "stopped" state message can be.
CONTROL_PERIOD = 0.01
DIAGNOSTICS_PERIOD = 1.0
EXIT_BAD_PARAMETER = 2
# How long an executor's error waits for a shutdown under way to show in context.ok().
SHUTDOWN_SETTLE = 0.5
# Keepalives: best effort, newest only. A lost keepalive must not be repaired later (a
# reliable reader holds every later sample back until the lost one is resent, so one
# dropped packet would turn into a gap of a whole repair round trip), and a late one is
# worth nothing: the next one is what counts. The focus server's publisher matches this.
KEEPALIVE_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE)

_BCM_PIN = IntegerRange(from_value=0, to_value=27, step=1)


def _float_range(low: float, high: float) -> List[FloatingPointRange]:
    return [FloatingPointRange(from_value=low, to_value=high, step=0.0)]


# name: (default, descriptor). Declared in this order; config/motor.yaml lists the same.
PARAMETERS: Dict[str, tuple] = {
    'driver': ('sim', ParameterDescriptor(
        description='Which motor to drive: sim (no hardware), stepper (4-wire unipolar, '
                    'e.g. 28BYJ-48 + ULN2003) or dc (DC motor on an H-bridge).',
        additional_constraints='one of: sim, stepper, dc', read_only=True)),
    'stepper_pins': ([17, 18, 27, 22], ParameterDescriptor(
        description='BCM numbers of the pins wired to the stepper driver inputs IN1..IN4.',
        additional_constraints='exactly 4 distinct BCM pins, 0..27', read_only=True)),
    'dc_forward_pin': (23, ParameterDescriptor(
        description='BCM pin of the H-bridge input that turns the motor forward '
                    '(increasing position).',
        integer_range=[_BCM_PIN], read_only=True)),
    'dc_backward_pin': (24, ParameterDescriptor(
        description='BCM pin of the H-bridge input that turns the motor backward.',
        integer_range=[_BCM_PIN], read_only=True)),
    'dc_enable_pin': (-1, ParameterDescriptor(
        description='BCM pin of the H-bridge enable input, on only while the motor runs; '
                    '-1 = the board has none (enable tied high).',
        integer_range=[IntegerRange(from_value=-1, to_value=27, step=1)], read_only=True)),
    'dc_pwm': (True, ParameterDescriptor(
        description='Drive the H-bridge with PWM so that slower speeds are a lower duty '
                    'cycle; false = on/off only, every move at dc_full_speed.',
        read_only=True)),
    'dc_full_speed': (2000.0, ParameterDescriptor(
        description='Calibrated DC motor speed at 100 % duty, units/s: turns a commanded '
                    'speed into a duty cycle and a move length into a run time.',
        floating_point_range=_float_range(0.001, 1e6), read_only=True)),
    'min_position': (0.0, ParameterDescriptor(
        description='Soft limit, motor units: targets below it are clamped to it and a '
                    'continuous move stops at it.')),
    'max_position': (1000.0, ParameterDescriptor(
        description='Soft limit, motor units: targets above it are clamped to it and a '
                    'continuous move stops at it.')),
    'initial_position': (0.0, ParameterDescriptor(
        description='Where the motor is assumed to be at start-up when no position is '
                    'restored, motor units (nothing measures an absolute position; the state '
                    'says position_known false unless the driver is sim). Must be within '
                    'the soft limits.',
        read_only=True)),
    'max_speed': (2000.0, ParameterDescriptor(
        description='Highest speed, units/s; faster commands are clamped to it.',
        floating_point_range=_float_range(0.001, 1e6))),
    'default_speed': (1000.0, ParameterDescriptor(
        description='Speed used when a command gives speed 0, units/s.',
        floating_point_range=_float_range(0.001, 1e6))),
    'state_rate': (50.0, ParameterDescriptor(
        description='Rate of ~/state messages, Hz (plus one whenever motion starts or '
                    'stops).',
        floating_point_range=_float_range(0.1, 1000.0), read_only=True)),
    'watchdog_timeout': (0.4, ParameterDescriptor(
        description='Any motion (absolute, relative, velocity) stops if nothing - a command '
                    'or a keepalive - comes from the commander for this long, s; the stop '
                    'is reported in MotorState.fault. A velocity move also needs its '
                    'velocity command renewed within it.',
        floating_point_range=_float_range(0.01, 60.0))),
    'max_command_age': (1.0, ParameterDescriptor(
        description='Commands stamped more than this many seconds before (or after) this '
                    "node's clock are ignored, so nothing queued during a network outage "
                    'replays; across machines the clocks must be synchronised (chrony/NTP) '
                    'to well within it. Also the DDS lifespan of commands.',
        floating_point_range=_float_range(0.01, 60.0), read_only=True)),
    'position_file': ('', ParameterDescriptor(
        description='File where the position is recorded at every start and stop of a '
                    "motion and restored from at start-up ('~' expands); '' = not "
                    'recorded: a stepper or DC motor then starts with its position unknown.',
        read_only=True)),
    'frame_id': (NODE_NAME, ParameterDescriptor(
        description='header.frame_id of ~/state messages.')),
    'home_pin': (-1, ParameterDescriptor(
        description='Stepper: BCM pin of a home/limit switch (to ground, pulled up); -1 = '
                    'none. With a switch, absolute moves are refused until ~/home has run.',
        integer_range=[IntegerRange(from_value=-1, to_value=27, step=1)], read_only=True)),
    'home_pull_up': (True, ParameterDescriptor(
        description='The home switch connects its pin to ground (true, internal pull-up) or '
                    'to 3.3 V (false, pull-down).', read_only=True)),
    'homing_direction': (-1, ParameterDescriptor(
        description='Which way homing turns to find the switch: -1 (down) or 1 (up).',
        integer_range=[IntegerRange(from_value=-1, to_value=1, step=2)], read_only=True)),
    'homing_speed': (200.0, ParameterDescriptor(
        description='Speed of homing, units/s (slow: the switch stops the motor within a '
                    'half-step).', floating_point_range=_float_range(0.001, 1e6),
        read_only=True)),
    'homing_timeout': (30.0, ParameterDescriptor(
        description='Seconds homing turns without the switch closing before it stops with '
                    'a fault.', floating_point_range=_float_range(0.1, 3600.0),
        read_only=True)),
}

_TYPE_HINTS = {bool: 'true or false', int: 'an integer, e.g. 23',
               float: 'a float with a decimal point (5.0, not 5)', str: "a string, e.g. 'sim'",
               list: 'a list of integers, e.g. [17, 18, 27, 22]'}


class ParameterError(Exception):
    """A parameter that the node cannot start with; the message names it and the fix."""


class MotorDriverNode(Node):

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._driver = None
        try:
            self._setup()
        except BaseException:
            # Nothing may be left energised by a node that did not start.
            self._close_driver()
            super().destroy_node()
            raise

    def _setup(self) -> None:
        # Parameters first: a bad one stops start-up before any pin is touched.
        values = self._declare_parameters()
        error = _validate(values, startup=True)
        if error:
            raise ParameterError(error)
        start_note = self._restore_position(values)
        self._driver = self._make_driver(values)
        self._driver_name = values['driver']
        self._frame_id = values['frame_id']
        self._default_speed = values['default_speed']
        self._watchdog_timeout = values['watchdog_timeout']
        self._max_command_age = values['max_command_age']
        if self._default_speed > self._driver.speed_limit:
            self.get_logger().warning(
                f'default_speed {self._default_speed} is above the speed limit '
                f'{self._driver.speed_limit}; moves at the default speed will be clamped')
        self._last_sequence = 0
        self._last_mode: Optional[int] = None
        self._last_command_time = time.monotonic()
        # The last message from the commander (a command or keepalive), for the lost-contact
        # report: monotonic (the drivers' clock) and wall-clock time, and the message's stamp
        # (the commander's clock), which tells a silent commander from a late delivery.
        self._last_contact = (time.monotonic(), time.time(), None)
        self._command_fault = ''
        self._contact_fault = ''
        self._was_moving = False
        self._last_fault = ''
        self._stationary_stamp = (None, None)  # (driver time, ROS time) of the last rest

        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._state_pub = self.create_publisher(MotorState, '~/state', qos)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # Lifespan: Fast DDS drops commands older than this from the reader's history (by
        # their source timestamp); the stamp check in _on_command is the rule, this helps.
        command_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                                 lifespan=Duration(seconds=self._max_command_age))
        self._command_sub = self.create_subscription(
            MotorCommand, '~/command', self._on_command, command_qos)
        self._control_timer = self.create_timer(CONTROL_PERIOD, self._on_control_tick)
        self._state_timer = self.create_timer(1.0 / values['state_rate'], self._publish_state)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD,
                                                    self._publish_diagnostics)
        # Its own group: while homing runs (awaited), the timers of the default group keep
        # publishing the state, and their wake-ups resume the awaiting service callback.
        self._home_service = self.create_service(
            Home, '~/home', self._on_home, callback_group=MutuallyExclusiveCallbackGroup())
        self._start_keepalive_thread()
        self.get_logger().info(
            f'{self._driver_description()} ready at position {self._driver.position:g} '
            f'({start_note}), limits [{self._driver.min_position:g}, '
            f'{self._driver.max_position:g}]')
        if not self._position_known:
            self.get_logger().warning(
                'position unknown: absolute moves are relative to an assumed position until '
                'the motor is homed and MODE_SET_POSITION confirms where it is')

    def _start_keepalive_thread(self) -> None:
        """Keepalives (~/keepalive; MODE_KEEPALIVE on ~/command works too) are handled on a
        thread of their own: a small node of this process with its own executor. This node's
        executor also runs the 100 Hz control tick, the state messages and the position
        file's writes (two fsyncs, up to 0.24 s measured on a loaded machine), and a
        keepalive that had arrived waited behind them while the watchdog ran out."""
        # Not remapped by the command line's __node (two nodes of one name), so its name
        # and namespace are given, and the topic is this node's own resolved ~/keepalive.
        self._contact_node = Node(f'{self.get_name()}_keepalive', namespace=self.get_namespace(),
                                  context=self.context, use_global_arguments=False,
                                  start_parameter_services=False)
        self._keepalive_sub = self._contact_node.create_subscription(
            MotorCommand, self.resolve_topic_name('~/keepalive'), self._on_keepalive,
            KEEPALIVE_QOS)
        self._contact_executor = SingleThreadedExecutor(context=self.context)
        self._contact_executor.add_node(self._contact_node)
        self._contact_thread = threading.Thread(target=self._spin_keepalives, name='keepalives',
                                                daemon=True)
        self._contact_thread.start()

    def _spin_keepalives(self) -> None:
        try:
            self._contact_executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:
            if not _shutting_down(self.context):  # a real error: its traceback must show
                raise
            # Ctrl+C shut the context down while this executor built its wait set ("the
            # given context is not valid"): the stop the user asked for, as in _run.

    def _restore_position(self, values: Dict[str, Any]) -> str:
        """Decide the start-up position (updates values['initial_position']); say why."""
        self._store = None
        if values['position_file']:
            self._store = PositionStore(values['position_file'], values['driver'])
            restored = self._store.load(values['min_position'], values['max_position'])
            self._position_known = restored.known
            if restored.position is not None and (
                    values['min_position'] <= restored.position <= values['max_position']):
                values['initial_position'] = restored.position
            if restored.known:
                return restored.reason
            return f'position unknown: {restored.reason}'
        # The simulated motor is where it says it is; a real one only where it was put.
        self._position_known = values['driver'] == 'sim'
        if self._position_known:
            return 'simulated: position known'
        return "position unknown: no 'position_file' to restore it from"

    def _record_position(self, position: float, moving: bool, target=None) -> None:
        if self._store is None:
            return
        try:
            self._store.save(position, moving, target, known=self._position_known)
        except OSError as err:
            self.get_logger().error(f'cannot record the position in {self._store.path}: '
                                    f'{err}', throttle_duration_sec=5.0)

    # -- set-up ---------------------------------------------------------------------------

    def _declare_parameters(self) -> Dict[str, Any]:
        """Declare every parameter and return their values; ParameterError if one is bad."""
        values = {}
        for name, (default, descriptor) in PARAMETERS.items():
            hint = f'{_TYPE_HINTS[type(default)]} (default {default!r})'
            try:
                values[name] = self.declare_parameter(name, default, descriptor).value
            except InvalidParameterTypeException as err:
                raise ParameterError(f"Parameter '{name}' has the wrong type ({err}). "
                                     f'Fix: give it as {hint}.') from None
            except InvalidParameterValueException as err:
                raise ParameterError(
                    f"Parameter '{name}' is out of range ({err}). Fix: use a value within "
                    f'{_describe_range(descriptor)} (default {default!r}).') from None
            if values[name] is None:
                # An empty list in YAML or on the command line has no type, so no value.
                raise ParameterError(f"Parameter '{name}' has no value (an empty list?). "
                                     f'Fix: give it as {hint}.')
        return values

    def _make_driver(self, values: Dict[str, Any]):
        common = dict(min_position=values['min_position'],
                      max_position=values['max_position'],
                      max_speed=values['max_speed'],
                      initial_position=values['initial_position'])
        if values['driver'] == 'sim':
            return SimDriver(**common)
        try:
            if values['driver'] == 'stepper' and values['home_pin'] >= 0:
                return HomingStepperDriver(
                    list(values['stepper_pins']), values['home_pin'],
                    home_pull_up=values['home_pull_up'],
                    homing_direction=values['homing_direction'],
                    homing_speed=values['homing_speed'],
                    homing_timeout=values['homing_timeout'], **common)
            if values['driver'] == 'stepper':
                return StepperDriver(list(values['stepper_pins']), **common)
            enable = values['dc_enable_pin']
            return DCDriver(values['dc_forward_pin'], values['dc_backward_pin'],
                            enable_pin=None if enable < 0 else enable, pwm=values['dc_pwm'],
                            full_speed=values['dc_full_speed'], **common)
        except Exception as err:
            # Usually no GPIO here (not a Pi, no lgpio, pins busy): say what to do about it.
            raise ParameterError(
                f"driver '{values['driver']}' could not open its GPIO pins: "
                f"{type(err).__name__}: {str(err).rstrip('.!')}. Fix: on a Raspberry Pi check "
                f'the pin parameters and that lgpio is installed; without hardware use '
                f"driver 'sim', or gpiozero's mock pins with PWM (the dc driver needs it): "
                f'GPIOZERO_PIN_FACTORY=mock GPIOZERO_MOCK_PIN_CLASS=mockpwmpin') from None

    # -- callbacks ------------------------------------------------------------------------

    def _on_command(self, msg: MotorCommand) -> None:
        driver = self._driver
        if not (math.isfinite(msg.target) and math.isfinite(msg.speed)):
            self.get_logger().warning(
                f'ignoring command {msg.sequence}: target and speed must be finite')
            return
        age = self._command_age(msg)
        if age is not None and msg.mode != MotorCommand.MODE_STOP:
            # A stop is always safe to obey; anything else that old is a replay.
            self.get_logger().warning(
                f'ignoring command {msg.sequence} (mode {msg.mode}): {age}',
                throttle_duration_sec=1.0)
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._last_contact = (time.monotonic(), time.time(), stamp)
        try:
            driver.renew_contact(self._watchdog_timeout)
        except Exception:  # a closed driver: the command below reports it
            pass
        if msg.mode == MotorCommand.MODE_KEEPALIVE:
            return
        self._contact_fault = ''
        speed = msg.speed if msg.speed != 0.0 else self._default_speed
        try:
            if msg.mode == MotorCommand.MODE_SET_POSITION:
                driver.set_position(msg.target)
                self._position_known = True
                self.get_logger().info(f'position set to {driver.position:g}: now known')
                self._record_position(driver.position, moving=False)
            elif msg.mode == MotorCommand.MODE_ABSOLUTE or msg.mode == MotorCommand.MODE_RELATIVE:
                wanted = msg.target
                if msg.mode == MotorCommand.MODE_RELATIVE:
                    wanted += driver.position
                target = driver.start_move(wanted, abs(speed),
                                           absolute=msg.mode == MotorCommand.MODE_ABSOLUTE)
                if not math.isclose(target, wanted, abs_tol=1e-9):
                    self.get_logger().warning(
                        f'target {wanted:g} clamped to {target:g} (soft limits '
                        f'[{driver.min_position:g}, {driver.max_position:g}])',
                        throttle_duration_sec=1.0)
            elif msg.mode == MotorCommand.MODE_VELOCITY:
                if msg.speed == 0.0:
                    # A signed speed of 0 has no direction: turning at no speed is stopping.
                    driver.stop()
                else:
                    driver.start_velocity(msg.speed, timeout=self._watchdog_timeout)
            elif msg.mode == MotorCommand.MODE_STOP:
                driver.stop()
            else:
                self.get_logger().warning(
                    f'ignoring command {msg.sequence}: unknown mode {msg.mode}')
                return
        except Exception as err:
            # A driver that failed is stopped, the fault reported, and the node keeps running.
            self._command_fault = f'command {msg.sequence} failed: {type(err).__name__}: {err}'
            self.get_logger().error(self._command_fault)
            self._stop_driver()
        else:
            self._command_fault = ''
        self._last_sequence = msg.sequence
        self._last_mode = msg.mode
        self._last_command_time = time.monotonic()
        self._publish_state()

    def _on_keepalive(self, msg: MotorCommand) -> None:
        # On the keepalive thread: only the contact is touched (_on_command returns right
        # after renewing it for a keepalive), and the driver locks its own state.
        if msg.mode != MotorCommand.MODE_KEEPALIVE:
            # Only keepalives here: a command sent to the wrong topic must not move the motor
            # unreliably, nor pass for contact.
            self.get_logger().warning(
                f'ignoring a mode {msg.mode} message on {self._keepalive_sub.topic_name}: '
                f'only MODE_KEEPALIVE belongs there; send commands to '
                f'{self._command_sub.topic_name}', throttle_duration_sec=5.0)
            return
        self._on_command(msg)

    async def _on_home(self, request, response):
        """Home on the switch: runs in a thread, so the state keeps being published."""
        if not hasattr(self._driver, 'home'):
            response.success = False
            response.message = ('no home switch is configured (home_pin is -1): the position '
                                'counts from initial_position, as at start-up')
            return response
        done = rclpy.task.Future()

        def run():
            try:
                done.set_result(self._driver.home(request.timeout))
            except Exception as err:
                done.set_result((False, f'homing failed: {type(err).__name__}: {err}'))

        # Homing is one service request, bounded by homing_timeout and stopped by the switch
        # itself, not a stream of commands: the contact watchdog does not apply to it (the
        # next command renews it).
        self._driver.renew_contact(None)
        self.get_logger().info('homing: looking for the home switch')
        threading.Thread(target=run, name='homing', daemon=True).start()
        response.success, response.message = await done
        if response.success:
            # An absolute move refused before homing left its fault; homing answers it.
            self._command_fault = ''
            # The switch defines the zero: the position is known again, and recorded.
            self._position_known = True
            self._record_position(self._driver.state().position, False)
        # (rclpy refuses two severities from one line of code)
        if response.success:
            self.get_logger().info(response.message)
        else:
            self.get_logger().error(response.message)
        self._publish_state()
        return response

    def _command_age(self, msg: MotorCommand) -> Optional[str]:
        """Why a command is too old (or from the future) to act on; None if it is fresh."""
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return ('it has no header.stamp; stamp every command with the current time '
                    "(ros2 topic pub: header: {stamp: now})")
        age = (self.get_clock().now().nanoseconds - (stamp.sec * 10**9 + stamp.nanosec)) / 1e9
        if abs(age) > self._max_command_age:
            when = f'{age:.3f} s ago' if age > 0 else f'{-age:.3f} s in the future'
            return (f'stamped {when}, beyond max_command_age '
                    f'{self._max_command_age:g} s (a replay after an outage, or clocks not '
                    f'synchronised: run chrony/NTP on both machines)')
        return None

    def _on_control_tick(self) -> None:
        self._driver.update()
        state = self._driver.state()
        lost_at = self._driver.contact_lost_at
        if lost_at is not None and not self._contact_fault:
            silence = lost_at - self._last_contact[0]
            self._contact_fault = (
                f'lost contact: nothing from the commander for {silence:.2f} s '
                f'(watchdog_timeout {self._watchdog_timeout:g} s), stopped at '
                f'{state.position:g}')
            _, heard_at, stamp = self._last_contact
            sent = '' if stamp is None else \
                f', a message stamped {stamp:.3f} ({heard_at - stamp:.3f} s on its way)'
            self.get_logger().error(
                f'{self._contact_fault}; last contact at {heard_at:.3f} (wall clock){sent}')
        fault = self._fault(state)
        if fault != self._last_fault:
            if fault:
                self.get_logger().error(f'fault: {fault}')
            self._publish_state()
        elif state.moving != self._was_moving:
            silence = time.monotonic() - self._last_command_time
            if not state.moving and self._last_mode == MotorCommand.MODE_VELOCITY \
                    and silence >= 0.9 * self._watchdog_timeout:
                self.get_logger().warning(
                    f'velocity command not renewed within watchdog_timeout '
                    f'({self._watchdog_timeout:g} s): stopped at {state.position:g}',
                    throttle_duration_sec=1.0)
            self._publish_state()

    def _publish_state(self) -> None:
        state = self._driver.state()
        msg = MotorState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        msg.position = float(state.position)
        msg.target = float(state.target)
        msg.moving = state.moving
        msg.position_measured = self._driver.position_measured
        msg.position_known = self._position_known
        msg.stationary_since = self._ros_time(state.stationary_since).to_msg()
        msg.min_position = self._driver.min_position
        msg.max_position = self._driver.max_position
        msg.last_command_sequence = self._last_sequence
        msg.fault = self._fault(state)
        if state.moving != self._was_moving:
            self._record_position(state.position, moving=state.moving, target=state.target)
        self._was_moving = state.moving
        self._last_fault = msg.fault
        self._state_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        state = self._driver.state()
        status = DiagnosticStatus()
        status.name = f'{self.get_name()}: focus motor'
        status.hardware_id = self._driver_description()
        status.message = self._fault(state)
        if status.message:
            status.level = DiagnosticStatus.ERROR
        else:
            status.level = DiagnosticStatus.OK
            status.message = 'moving' if state.moving else 'at rest'
        values = {
            'driver': self._driver_name,
            'position': f'{state.position:g}',
            'target': f'{state.target:g}',
            'moving': str(state.moving),
            'position_measured': str(self._driver.position_measured),
            'position_known': str(self._position_known),
            'min_position': f'{self._driver.min_position:g}',
            'max_position': f'{self._driver.max_position:g}',
            'last_command_sequence': str(self._last_sequence),
            'fault': self._fault(state),
        }
        if hasattr(self._driver, 'homed'):
            values['homed'] = str(self._driver.homed)
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self._diagnostics_pub.publish(msg)

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        values = {name: self.get_parameter(name).value for name in PARAMETERS}
        values.update({p.name: p.value for p in parameters if p.name in PARAMETERS})
        error = _validate(values, startup=False)
        return SetParametersResult(successful=not error, reason=error or '')

    def _on_parameters_set(self, parameters: List[Parameter]) -> None:
        changed = {p.name: p.value for p in parameters}
        if 'min_position' in changed or 'max_position' in changed:
            self._driver.set_limits(self.get_parameter('min_position').value,
                                    self.get_parameter('max_position').value)
        if 'max_speed' in changed:
            self._driver.set_max_speed(changed['max_speed'])
        self._default_speed = changed.get('default_speed', self._default_speed)
        self._watchdog_timeout = changed.get('watchdog_timeout', self._watchdog_timeout)
        self._frame_id = changed.get('frame_id', self._frame_id)

    # -- helpers --------------------------------------------------------------------------

    def _fault(self, state) -> str:
        return state.fault or self._command_fault or self._contact_fault

    def _ros_time(self, driver_time: float):
        """The ROS time of an instant on the driver's (monotonic) clock.

        Converted once per instant, so that stationary_since is the same in every message
        until the motor next comes to rest.
        """
        cached_driver_time, ros_time = self._stationary_stamp
        if cached_driver_time != driver_time:
            age = max(0.0, self._driver.clock() - driver_time)
            ros_time = self.get_clock().now() - Duration(nanoseconds=int(age * 1e9))
            self._stationary_stamp = (driver_time, ros_time)
        return ros_time

    def _driver_description(self) -> str:
        if self._driver_name == 'stepper':
            pins = list(self.get_parameter('stepper_pins').value)
            return f'stepper on BCM pins {pins}'
        if self._driver_name == 'dc':
            pins = [self.get_parameter(name).value
                    for name in ('dc_forward_pin', 'dc_backward_pin')]
            enable = self.get_parameter('dc_enable_pin').value
            return (f'dc motor on BCM pins {pins} (forward, backward)'
                    + (f', enable {enable}' if enable >= 0 else ''))
        return 'simulated motor'

    def _stop_driver(self) -> None:
        try:
            self._driver.stop()
        except Exception as err:
            self.get_logger().error(f'could not stop the motor: {err}')

    def _close_driver(self) -> None:
        """Stop the motor and switch every pin off; safe to call more than once."""
        # The closed driver stays in place: callbacks still running on other executor
        # threads can read its state, and its commands fail into a reported fault.
        driver = getattr(self, '_driver', None)
        if driver is not None:
            was_closed = driver.closed
            driver.close()
            if not was_closed and getattr(self, '_store', None) is not None:
                self._record_position(driver.position, moving=False)

    def destroy_node(self) -> None:
        # Pins off first: whatever happens while the node is torn down, the motor is safe.
        self._close_driver()
        if getattr(self, '_contact_node', None) is not None:
            self._contact_executor.shutdown(timeout_sec=2.0)
            self._contact_thread.join(2.0)
            self._contact_node.destroy_node()
            self._contact_node = None
        super().destroy_node()


def _validate(values: Dict[str, Any], startup: bool) -> str:
    """Return what is wrong with a set of parameter values and how to fix it ('' if OK)."""
    driver = values['driver']
    if driver not in DRIVERS:
        return (f"Parameter 'driver' is {driver!r}. Fix: set it to one of "
                f"{', '.join(repr(name) for name in DRIVERS)}.")
    if driver == 'stepper':
        pins = list(values['stepper_pins'])
        if len(pins) != 4 or len(set(pins)) != 4 or not all(0 <= pin <= 27 for pin in pins):
            return (f"Parameter 'stepper_pins' is {pins}. Fix: give exactly 4 distinct BCM "
                    f'pin numbers (0..27) wired to IN1..IN4, e.g. [17, 18, 27, 22].')
    if driver == 'stepper' and values.get('home_pin', -1) in list(values['stepper_pins']):
        return (f"Parameter 'home_pin' ({values['home_pin']}) is one of 'stepper_pins'. Fix: "
                f'wire the home switch to a pin of its own, or set home_pin -1 (none).')
    if driver == 'dc':
        pins = [values['dc_forward_pin'], values['dc_backward_pin']]
        if values['dc_enable_pin'] >= 0:
            pins.append(values['dc_enable_pin'])
        if len(set(pins)) != len(pins):
            return (f"Parameters 'dc_forward_pin', 'dc_backward_pin' and 'dc_enable_pin' "
                    f'share a pin ({pins}). Fix: give each its own BCM pin.')
        if not values['dc_pwm'] and values['max_speed'] < values['dc_full_speed']:
            return (f"Parameter 'max_speed' ({values['max_speed']}) is below 'dc_full_speed' "
                    f"({values['dc_full_speed']}) but 'dc_pwm' is false, so the motor can "
                    f'only run at full speed. Fix: set dc_pwm true or raise max_speed.')
    low, high = values['min_position'], values['max_position']
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return (f"Parameters 'min_position' ({low}) and 'max_position' ({high}): need "
                f'min_position < max_position, both finite. Fix: swap or correct them.')
    if startup and not low <= values['initial_position'] <= high:
        return (f"Parameter 'initial_position' ({values['initial_position']}) is outside the "
                f'soft limits [{low}, {high}]. Fix: set it within them, or widen the limits.')
    return ''


def _describe_range(descriptor: ParameterDescriptor) -> str:
    for ranges in (descriptor.floating_point_range, descriptor.integer_range):
        if ranges:
            return f'[{ranges[0].from_value}, {ranges[0].to_value}]'
    return descriptor.additional_constraints or 'its range'


def _print_help(argv) -> None:
    """Usage and every parameter with its default, without touching DDS or GPIO."""
    prog = argv[0].rsplit('/', 1)[-1] if argv else 'motor_driver'
    print(f'usage: {prog} [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] '
          f'[-r __ns:=/NAMESPACE] [--log-level LEVEL]]\n\n{__doc__.strip()}\n\nparameters:')
    for name, (default, descriptor) in PARAMETERS.items():
        print(f'  {name} (default {default!r}): {descriptor.description}')


def main(args=None) -> int:
    argv = sys.argv if args is None else args
    if any(arg in ('-h', '--help') for arg in remove_ros_args(args=argv)[1:]):
        _print_help(argv)
        return 0
    # The motor thread times pins with waits, and a waking thread must first get the GIL:
    # with Python's default 5 ms switch interval a DC pulse can overrun by several ms while
    # the executor runs callbacks. 1 ms keeps that small for little CPU.
    sys.setswitchinterval(0.001)
    # A full garbage collection walks every object the imports made (~30000) while holding
    # the GIL: 16-48 ms here, far longer on a loaded machine, with neither the motor thread
    # nor keepalives served. Frozen, they are never walked again.
    gc.freeze()
    init = rclpy.init(args=args)
    if hasattr(init, '__enter__'):
        with init:
            return _run()
    # Jazzy-era rclpy: init() is not a context manager yet.
    try:
        return _run()
    finally:
        rclpy.try_shutdown()


def _shutting_down(context, wait: float = SHUTDOWN_SETTLE) -> bool:
    """Whether ``context`` is shut down, or is within ``wait`` seconds: rclpy's signal
    handler shuts it down while an executor may be using it, which then fails a moment
    before ``context.ok()`` turns false (seen once in a composed node on SIGINT; the
    autofocus package's node_tools.shutting_down, which this package cannot import)."""
    deadline = time.monotonic() + wait
    while context.ok():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _run() -> int:
    try:
        node = MotorDriverNode()
    except ParameterError as err:
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {err}')
        return EXIT_BAD_PARAMETER
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if not _shutting_down(node.context):  # a real error: its traceback must show
            raise
        # Ctrl+C or SIGTERM shut the context down between a timer's wake-up and its
        # publish ("publisher's context is invalid"): the stop the user asked for.
    finally:
        # Also on an exception from a callback, which then propagates with its traceback.
        node.destroy_node()
    return 0


if __name__ == '__main__':
    sys.exit(main())
