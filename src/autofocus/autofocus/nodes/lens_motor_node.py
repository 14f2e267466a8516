"""A camera's own focus motor served as the focus motor: `focus_motor/command` and `state`.

The same MotorCommand/MotorState interface as `autofocus_motor`'s motor_driver
(absolute and relative moves, stop, limits from the device, position_measured,
stationary_since, fault text), so the focus server and every strategy work
unchanged whichever turns the lens.

Two ways to serve it:
- `LensMotorNode` (executable `lens_motor`, node name `focus_motor`): a node of its
  own for V4L2 (UVC) cameras. V4L2 lets any number of processes open a device and
  set its controls while one streams, so the camera node (or usb_cam,
  v4l2_camera, ...) keeps capturing untouched and this node only turns the lens.
  It also works beside a foreign camera driver (`image_topic:=`), and a lens
  fault never stops the frames.
- `LensMotorServer` on the camera node itself, for devices only one process may
  open (libcamera through Picamera2, libgphoto2): see camera_node.py.
"""
import math
import sys

from autofocus_interfaces.msg import MotorCommand, MotorState
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from autofocus.io.capture import SourceError
from autofocus.io.lens_control.base import LensError
from autofocus.io.lens_control.motion import LensActuator
from autofocus.nodes.node_tools import ConfigError, declare, run_node

CONTROL_PERIOD = 0.01  # how late a "stopped" state may be, s
MOTOR_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class LensMotorServer:
    """Serves one LensActuator on a node's motor command/state topics."""

    def __init__(self, node: Node, actuator: LensActuator, command_topic: str,
                 state_topic: str, state_rate: float = 20.0, frame_id: str = 'focus_motor'):
        self._node = node
        self.actuator = actuator
        self._frame_id = frame_id
        self._last_sequence = 0
        self._command_fault = ''
        self._published = None  # (moving, fault) of the last state sent
        self._stationary_stamp = (None, None)
        self._state_pub = node.create_publisher(MotorState, state_topic, MOTOR_QOS)
        node.create_subscription(MotorCommand, command_topic, self._on_command, MOTOR_QOS)
        node.create_timer(CONTROL_PERIOD, self._on_control_tick)
        node.create_timer(1.0 / state_rate, self.publish_state)
        self._diagnostics_pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(1.0, self._publish_diagnostics)

    def _on_command(self, msg: MotorCommand) -> None:
        actuator, logger = self.actuator, self._node.get_logger()
        if msg.mode == MotorCommand.MODE_KEEPALIVE:
            # A commander's "still here" during a goal: the motor driver's watchdog needs it;
            # a lens holds the position it was set to, with nothing to run away.
            return
        self._command_fault = ''
        try:
            if not math.isfinite(msg.target):
                raise ValueError('target must be finite')
            if msg.mode == MotorCommand.MODE_ABSOLUTE:
                wanted, target = msg.target, actuator.move_to(msg.target)
            elif msg.mode == MotorCommand.MODE_RELATIVE:
                wanted = actuator.state().position + msg.target
                target = actuator.move_by(msg.target)
            elif msg.mode == MotorCommand.MODE_STOP:
                actuator.stop()
                wanted = target = None
            else:
                # A lens has no speed to hold: continuous moves have no meaning for it.
                raise ValueError(f'mode {msg.mode} is not supported by '
                                 f'{actuator.lens.description} (absolute, relative, stop only)')
            if target is not None and not math.isclose(target, wanted, abs_tol=1e-9):
                logger.warning(f'target {wanted:g} clamped to {target:g} (device limits '
                               f'[{actuator.min_position:g}, {actuator.max_position:g}])',
                               throttle_duration_sec=1.0)
        except (ValueError, LensError) as error:
            self._command_fault = f'command {msg.sequence} refused: {error}'
            logger.error(self._command_fault)
        self._last_sequence = msg.sequence
        self.publish_state()

    def _on_control_tick(self) -> None:
        state = self.actuator.state()
        if self._published != (state.moving, self._fault(state)):
            self.publish_state()

    def _fault(self, state) -> str:
        return state.fault or self._command_fault

    def publish_state(self) -> None:
        actuator = self.actuator
        state = actuator.state()
        msg = MotorState()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        msg.position = float(state.position)
        msg.target = float(state.target)
        msg.moving = state.moving
        msg.position_measured = actuator.position_measured
        # The device reports its own lens position (V4L2, libcamera): known. A DSLR's is an
        # estimate from counted drive calls: unknown for absolute searches (hill_climb moves
        # relatively and still works).
        msg.position_known = actuator.position_measured
        msg.stationary_since = self._ros_time(state.stationary_since).to_msg()
        msg.min_position = float(actuator.min_position)
        msg.max_position = float(actuator.max_position)
        msg.last_command_sequence = self._last_sequence
        msg.fault = self._fault(state)
        if msg.fault and self._published is not None and not self._published[1]:
            self._node.get_logger().error(f'fault: {msg.fault}')
        self._published = (state.moving, msg.fault)
        self._state_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        actuator, state = self.actuator, self.actuator.state()
        status = DiagnosticStatus(name=f'{self._node.get_fully_qualified_name()}: focus motor',
                                  hardware_id=actuator.lens.description)
        fault = self._fault(state)
        status.level = DiagnosticStatus.ERROR if fault else DiagnosticStatus.OK
        status.message = fault or ('moving' if state.moving else 'at rest')
        values = {'position': f'{state.position:g}', 'target': f'{state.target:g}',
                  'moving': str(state.moving),
                  'position_measured': str(actuator.position_measured),
                  'min_position': f'{actuator.min_position:g}',
                  'max_position': f'{actuator.max_position:g}',
                  'last_command_sequence': str(self._last_sequence), 'fault': fault}
        values.update(actuator.lens.offers())
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _ros_time(self, actuator_time: float):
        """ROS time of an instant on the actuator's clock, converted once per instant."""
        cached, ros_time = self._stationary_stamp
        if cached != actuator_time:
            age = max(0.0, self.actuator.clock() - actuator_time)
            ros_time = self._node.get_clock().now() - Duration(nanoseconds=int(age * 1e9))
            self._stationary_stamp = (actuator_time, ros_time)
        return ros_time

    def close(self) -> None:
        self.actuator.close()


def declare_lens_parameters(node: Node) -> dict:
    """Parameters every lens-serving node shares."""
    return dict(
        settle_time=declare(
            node, 'lens_settle_time', 0.1,
            'Seconds a lens move is taken to last after the command reaches the device '
            '(no device reports arrival); for a DSLR the pause between drive steps',
            low=0.0, high=10.0, read_only=True),
        state_rate=declare(node, 'lens_state_rate', 20.0, 'Rate of focus motor state '
                           'messages, Hz (plus one whenever motion starts or stops)',
                           low=0.1, high=1000.0, read_only=True))


def serve_camera_lens(node: Node, source):
    """For a source that owns its lens (Picamera2, gphoto2): open it now and serve the lens
    on focus_motor/command and focus_motor/state. None for other sources.

    Opening at start, not in the reader thread: no camera is a clear error and exit code 2
    (ConfigError), not a retry loop with a motor interface that never answers.
    """
    if not getattr(source, 'has_lens', False):
        return None
    options = declare_lens_parameters(node)
    if hasattr(source, 'units_per_step'):  # relative-only (DSLR): our own units, our range
        source.units_per_step = declare(
            node, 'lens_units_per_step', 10.0,
            'DSLR: motor units one focus drive call is counted as (positions are estimated)',
            low=1e-6, high=1e6, read_only=True)
        source.drive_step = declare(
            node, 'lens_drive_step', 1,
            'DSLR: size of each drive call (Canon manualfocusdrive Near/Far 1, 2 or 3; '
            'Nikon: steps per call)', low=1, high=1000, read_only=True)
        limits = dict(
            min_position=declare(node, 'lens_min_position', 0.0,
                                 'DSLR: lowest estimated position to drive to', read_only=True),
            max_position=declare(node, 'lens_max_position', 1000.0,
                                 'DSLR: highest estimated position to drive to',
                                 read_only=True),
            initial_position=declare(node, 'lens_initial_position', 500.0,
                                     'DSLR: estimated position at start (nothing measures it)',
                                     read_only=True))
    else:
        limits = {}
    try:
        source.open()
    except SourceError as error:
        raise ConfigError(str(error)) from None
    try:
        actuator = LensActuator(source.lens, options['settle_time'], **limits)
    except (LensError, ValueError) as error:
        source.release()
        raise ConfigError(f'{source.lens.description}: {error}') from None
    if hasattr(source, 'on_reconnect'):
        source.on_reconnect = actuator.clear_fault  # a DSLR plugged back in is usable again
    server = LensMotorServer(node, actuator, 'focus_motor/command', 'focus_motor/state',
                             options['state_rate'])
    node.get_logger().info(
        f'{source.lens.description} is the focus motor: at {actuator.state().position:g}, '
        f'limits [{actuator.min_position:g}, {actuator.max_position:g}]'
        + ('' if actuator.position_measured else ', position estimated from drive steps'))
    return server


class LensMotorNode(Node):
    """The focus motor of a V4L2 camera, beside whatever captures its frames."""

    def __init__(self, **kwargs):
        super().__init__('focus_motor', **kwargs)
        device = declare(self, 'device', '0',
                         "V4L2 device whose focus_absolute control is the focus motor: index "
                         "('0') or path ('/dev/video0')", read_only=True)
        options = declare_lens_parameters(self)
        self._server = None
        from autofocus.io.lens_control.v4l2 import V4L2Lens
        try:
            lens = V4L2Lens(device)
        except LensError as error:
            raise ConfigError(str(error)) from None
        try:
            actuator = LensActuator(lens, options['settle_time'])
        except (LensError, ValueError) as error:
            lens.close()
            raise ConfigError(f'{lens.description}: {error}') from None
        self._server = LensMotorServer(self, actuator, '~/command', '~/state',
                                       options['state_rate'], frame_id='focus_motor')
        self.get_logger().info(
            f'{lens.description}: focus motor ready at {actuator.state().position:g}, '
            f'limits [{actuator.min_position:g}, {actuator.max_position:g}] (camera '
            'autofocus off until exit)')

    def destroy_node(self):
        # Put the camera's own autofocus back as the user had it.
        if self._server is not None:
            self._server.close()
        return super().destroy_node()


def main(args=None):
    return run_node(LensMotorNode, args)


if __name__ == '__main__':
    sys.exit(main())
