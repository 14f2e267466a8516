"""Web node: one page, from any browser, to watch the camera, set the ROI, focus and jog.

    ros2 run autofocus web                       # http://127.0.0.1:8080/?token=... (printed)
    ros2 run autofocus web --ros-args -p host:=0.0.0.0 -r __ns:=/cam2

Subscribes  camera/image_raw     sensor_msgs/Image, only while a page shows the live image
            sharpness            std_msgs/Float64, plotted over time
            focus_motor/state    autofocus_interfaces/MotorState
Publishes   focus_motor/command  relative moves (the page's jog buttons)
            focus_motor/keepalive  while a jog runs (best effort)
Calls       <sharpness_node>/get_parameters, set_parameters_atomically (the ROI)
            the focus action (goals, cancel, feedback)
All names are relative: run the node in a camera's namespace and the page follows that
camera (and says which). The HTTP side (aiohttp, its own thread and event loop) is in
web_server.py; this class only keeps the latest ROS data and turns validated requests
into ROS calls. rclpy futures are handed to the event loop with call_soon_threadsafe.
"""
import asyncio
import collections
import math
import os
import secrets
import socket
import sys
import threading
import time

from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import MotorCommand, MotorState
from rcl_interfaces.srv import GetParameters, SetParametersAtomically
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float64

from autofocus.core import strategies
from autofocus.core.focus_request import FocusDefaults, resolve
from autofocus.io.preview import preview_jpeg
from autofocus.nodes.action_client import ThreadSafeActionClient
from autofocus.nodes.node_tools import (
    ConfigError, IMAGE_QOS, KEEPALIVE_QOS, declare, motor_command, run_node)
from autofocus.nodes.web_server import BadRequest, StreamSettings, WebServer

ROI_NAMES = ('roi_x', 'roi_y', 'roi_width', 'roi_height')
STATUS_NAMES = {GoalStatus.STATUS_SUCCEEDED: 'SUCCEEDED', GoalStatus.STATUS_CANCELED: 'CANCELED',
                GoalStatus.STATUS_ABORTED: 'ABORTED'}
ERROR_NAMES = {getattr(Focus.Result, name): name for name in dir(Focus.Result)
               if name.isupper() and isinstance(getattr(Focus.Result, name), int)}
MAX_FEEDBACK = 2000      # samples of one goal kept for the page
MOTOR_STATE_STALE = 2.0  # seconds without a MotorState before jogging is refused
SERVER_WAIT = 3.0        # seconds a focus request waits for the focus server to be found
JOG_KEEPALIVE = 0.1      # seconds between keepalives while a jog runs
SERVICE_TIMEOUT = 10.0   # seconds for a service or action answer (a loaded machine is slow)


def finite(value):
    """JSON has no NaN/inf: None instead."""
    value = float(value)
    return value if math.isfinite(value) else None


async def rclpy_result(future, timeout):
    """Await an rclpy future from the event loop (it completes in the executor's thread)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finished(_):
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
    future.add_done_callback(finished)
    await asyncio.wait_for(done, timeout)
    return future.result()


class WebNode(Node):

    def __init__(self, **kwargs):
        super().__init__('web', **kwargs)
        host = declare(self, 'host', '127.0.0.1',
                       'Address to serve on: 127.0.0.1 = this machine only; 0.0.0.0 = every '
                       'network (then anyone who can reach it needs the token)')
        port = declare(self, 'port', 8080, 'TCP port (0 = any free port)', low=0, high=65535)
        token = declare(self, 'token', '',
                        "Secret every control request must carry ('' = a new random one, "
                        'printed at start-up in the URL)')
        view_without_token = declare(
            self, 'view_without_token', False,
            'Allow watching (image, state, plots) without the token; control always needs it')
        stream = StreamSettings(
            max_fps=declare(self, 'max_fps', 10.0, 'Most live-image frames a second sent to '
                            'a page (encoded once for all pages)', low=0.5, high=60.0),
            max_width=declare(self, 'max_width', 640, 'Live image width limit, pixels (area '
                              'average)', low=64, high=4096),
            jpeg_quality=declare(self, 'jpeg_quality', 70, 'JPEG quality of the live image',
                                 low=10, high=100),
            max_viewers=declare(self, 'max_viewers', 4, 'Live-image connections at once',
                                low=1, high=32),
            write_timeout=declare(self, 'write_timeout', 10.0, 'Seconds a viewer may take to '
                                  'accept one frame before it is disconnected',
                                  low=1.0, high=120.0))
        sharpness_node = declare(self, 'sharpness_node', 'sharpness',
                                 'Name of the sharpness node whose ROI the page sets '
                                 "(relative names follow this node's namespace)")
        action = declare(self, 'action', 'focus', 'Name of the focus action')
        history = declare(self, 'history_length', 900,
                          'Sharpness samples kept for the plot over time', low=10, high=100000)
        static_dir = declare(self, 'static_dir', '',
                             "Folder of the page's files ('' = the package's share/web)")
        if not token:
            token = secrets.token_urlsafe(24)
        elif len(token) < 8:
            raise ConfigError("parameter 'token' is shorter than 8 characters; set a longer "
                              "secret or '' for a random one")
        static_dir = static_dir or self._default_static_dir()
        if not os.path.isfile(os.path.join(static_dir, 'index.html')):
            raise ConfigError(f"parameter 'static_dir': no index.html in {static_dir}")

        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._frame = (-1, None)
        self._frames_received = 0
        self._image_size = None
        self._viewers = 0
        self._image_sub = None
        self._sharpness = collections.deque(maxlen=history)
        self._sharpness_count = 0
        self._motor = None
        self._motor_at = -math.inf
        self._roi = None
        self._roi_pending = None     # (future, sent at) of the ROI request in flight
        self._roi_error = ''
        self._goal = None            # what the page shows of the last goal
        self._goal_handle = None
        self._goal_counter = 0
        self._sequence = 9_000_000   # MotorCommand.sequence of our jogs
        self._jog_running = None     # sequence of a jog the motor has not finished

        self.create_subscription(Float64, 'sharpness', self._on_sharpness, 10)
        self.create_subscription(MotorState, 'focus_motor/state', self._on_motor_state, 10)
        self._command_pub = self.create_publisher(MotorCommand, 'focus_motor/command', 10)
        # Keepalives best effort, newest only, as the focus server sends them (node_tools).
        self._keepalive_pub = self.create_publisher(MotorCommand, 'focus_motor/keepalive',
                                                    KEEPALIVE_QOS)
        self._get_params = self.create_client(GetParameters, f'{sharpness_node}/get_parameters')
        self._set_params = self.create_client(SetParametersAtomically,
                                              f'{sharpness_node}/set_parameters_atomically')
        self._action = ThreadSafeActionClient(self, Focus, action)
        self._sharpness_node = self.resolve_service_name(sharpness_node)
        self.create_timer(0.25, self._sync_image_subscription)
        self.create_timer(1.0, self._poll_roi)
        self.create_timer(JOG_KEEPALIVE, self._keep_jog_alive)

        self.server = WebServer(self, host, port, token, static_dir, stream, view_without_token)
        try:
            port = self.server.start()
        except OSError as error:
            raise ConfigError(f"parameters 'host'/'port' ({host}:{port}): {error}; choose "
                              'another port') from None
        shown = socket.gethostname() if host in ('0.0.0.0', '::') else host
        if ':' in shown:
            shown = f'[{shown}]'
        self.url = f'http://{shown}:{port}/?token={token}'
        camera = self.get_namespace()
        self.get_logger().info(f'web page for camera {camera}: {self.url}')
        if view_without_token and not self.server.loopback_only:
            self.get_logger().warning('view_without_token: anyone on the network can watch')

    @staticmethod
    def _default_static_dir():
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory('autofocus'), 'web')

    def destroy_node(self):
        self.server.stop()
        return super().destroy_node()

    # -- ROS side (executor thread) ---------------------------------------------------------
    def _sync_image_subscription(self):
        # Subscribe only while a page shows the image: no frame crosses DDS for us otherwise.
        if self._viewers > 0 and self._image_sub is None:
            self._image_sub = self.create_subscription(Image, 'camera/image_raw',
                                                       self._on_image, IMAGE_QOS)
        elif self._viewers == 0 and self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
            self._frame = (self._frame[0], None)

    def _on_image(self, msg):
        # Only keep a reference: encoding happens on the server's side, at its own rate.
        self._frames_received += 1
        self._image_size = (msg.width, msg.height)
        self._frame = (self._frame[0] + 1, msg)

    def _on_sharpness(self, msg):
        with self._lock:
            self._sharpness_count += 1
            self._sharpness.append((self._sharpness_count,
                                    round(time.monotonic() - self._started, 3),
                                    finite(msg.data)))

    def _keep_jog_alive(self):
        # The motor driver stops any motion whose commander falls silent (its watchdog):
        # stay in contact until the state shows our jog done.
        sequence, motor = self._jog_running, self._motor
        if sequence is None:
            return
        if motor is not None and motor['sequence'] == sequence and not motor['moving']:
            self._jog_running = None
            return
        self._keepalive_pub.publish(motor_command(self, MotorCommand.MODE_KEEPALIVE))

    def _on_motor_state(self, msg):
        self._motor = {'sequence': msg.last_command_sequence,
                       'position': finite(msg.position), 'target': finite(msg.target),
                       'moving': msg.moving, 'measured': msg.position_measured,
                       'min': finite(msg.min_position), 'max': finite(msg.max_position),
                       'fault': msg.fault}
        self._motor_at = time.monotonic()

    def _poll_roi(self):
        # One request at a time; one lost with a restarting sharpness node is given up.
        pending = self._roi_pending
        if pending and time.monotonic() - pending[1] < SERVICE_TIMEOUT:
            return
        if pending:
            self._get_params.remove_pending_request(pending[0])
            self._roi_pending = None
        if not self._get_params.service_is_ready():
            return
        future = self._get_params.call_async(GetParameters.Request(names=list(ROI_NAMES)))
        self._roi_pending = (future, time.monotonic())
        future.add_done_callback(self._on_roi)

    def _on_roi(self, future):
        self._roi_pending = None
        response = future.result()
        if response is not None and len(response.values) == len(ROI_NAMES):
            self._roi = {name[4:]: value.double_value
                         for name, value in zip(ROI_NAMES, response.values)}

    def _on_feedback(self, message):
        fb = message.feedback
        with self._lock:
            goal = self._goal
            if goal is None:
                return
            goal['phase'] = fb.phase
            goal['frames'] = fb.frames_used
            goal['best'] = [finite(fb.best_position), finite(fb.best_sharpness)]
            goal['elapsed'] = fb.elapsed.sec + fb.elapsed.nanosec * 1e-9
            if fb.phase not in ('starting', 'final') and len(goal['samples']) < MAX_FEEDBACK:
                goal['samples'].append([finite(fb.current_position),
                                        finite(fb.current_sharpness)])

    def _on_result(self, future, goal):
        response = future.result()
        result = response.result
        with self._lock:
            goal['status'] = STATUS_NAMES.get(response.status, f'status {response.status}')
            goal['success'] = result.success
            goal['error'] = '' if result.success else (
                f'{ERROR_NAMES.get(result.error_code, result.error_code)}: {result.error_msg}')
            goal['curve'] = [[finite(p), finite(s)]
                             for p, s in zip(result.positions, result.sharpness)]
            goal['final'] = [finite(result.final_position), finite(result.final_sharpness)] \
                if result.success else None
            goal['frames'] = result.frames_used
            goal['elapsed'] = result.elapsed.sec + result.elapsed.nanosec * 1e-9
            if self._goal_handle is not None and goal is self._goal:
                self._goal_handle = None

    # -- what the server asks (its event loop's thread) ---------------------------------
    def set_viewers(self, count):
        self._viewers = count

    def latest_frame(self):
        return self._frame

    @staticmethod
    def encode_jpeg(msg, max_width, quality):
        return preview_jpeg(msg, max_width, quality)

    def snapshot(self, since):
        motor = dict(self._motor, age=round(time.monotonic() - self._motor_at, 2)) \
            if self._motor else None
        with self._lock:
            samples = [[t, v] for index, t, v in self._sharpness if index > since]
            goal = None if self._goal is None else dict(
                self._goal, samples=list(self._goal['samples']))
            last = self._sharpness_count
        return {'namespace': self.get_namespace(), 'node': self.get_fully_qualified_name(),
                'sharpness_node': self._sharpness_node,
                'strategies': list(strategies.STRATEGIES),
                'image': {'size': self._image_size, 'frames': self._frames_received},
                'roi': self._roi, 'roi_error': self._roi_error, 'motor': motor,
                'goal': goal, 'sharpness': {'last': last, 'samples': samples}}

    async def set_roi(self, x, y, width, height):
        if not self._set_params.service_is_ready():
            return False, f'no sharpness node at {self._sharpness_node} (is the graph running?)'
        values = dict(zip(ROI_NAMES, (x, y, width, height)))
        request = SetParametersAtomically.Request(parameters=[
            Parameter(name, value=float(value)).to_parameter_msg()
            for name, value in values.items()])
        try:
            response = await rclpy_result(self._set_params.call_async(request), SERVICE_TIMEOUT)
        except asyncio.TimeoutError:
            return False, f'{self._sharpness_node} did not answer in {SERVICE_TIMEOUT:g} s'
        if not response.result.successful:
            self._roi_error = response.result.reason
            raise BadRequest(f'{self._sharpness_node} refused the ROI: {response.result.reason}')
        self._roi_error = ''
        self._roi = {name[4:]: value for name, value in values.items()}
        return True, 'ROI set'

    async def focus(self, strategy, range_min, range_max):
        goal_msg = Focus.Goal(strategy=strategy, range_min=range_min, range_max=range_max)
        try:
            resolve(goal_msg, FocusDefaults())
        except ValueError as error:
            raise BadRequest(f'invalid goal: {error}') from None
        motor = self._motor
        if motor and (range_min or range_max) and motor['min'] is not None and not (
                motor['min'] <= range_min and range_max <= motor['max']):
            raise BadRequest(f'range [{range_min:g}, {range_max:g}] is outside the motor '
                             f"limits [{motor['min']:g}, {motor['max']:g}]")
        with self._lock:
            if self._goal_active():
                return False, 'a focus goal is running; cancel it first'
            self._goal_counter += 1
            goal = {'id': self._goal_counter, 'status': 'sending', 'strategy': strategy,
                    'range': [range_min, range_max], 'phase': '', 'samples': [],
                    'curve': None, 'final': None, 'best': None, 'frames': 0, 'elapsed': 0.0,
                    'success': None, 'error': ''}
            self._goal = goal
        # A graph started with the page may not have discovered the focus server yet.
        deadline = time.monotonic() + SERVER_WAIT
        while not self._action.server_is_ready():
            if time.monotonic() > deadline:
                goal['status'] = 'REJECTED'
                goal['error'] = 'no focus server (is the graph running?)'
                return False, goal['error']
            await asyncio.sleep(0.1)
        sent = self._action.send_goal_async(goal_msg, feedback_callback=self._on_feedback)
        try:
            handle = await rclpy_result(sent, SERVICE_TIMEOUT)
        except asyncio.TimeoutError:
            # Accepted after we gave up, it would move the lens with no Cancel to stop it.
            sent.add_done_callback(self._cancel_late_goal)
            goal['status'] = 'REJECTED'
            goal['error'] = f'the focus server did not answer in {SERVICE_TIMEOUT:g} s'
            return False, goal['error']
        if handle is None or not handle.accepted:
            goal['status'] = 'REJECTED'
            goal['error'] = ('the focus server rejected the goal (its log says why: the range '
                             'may lie outside its limits, or another client runs a goal)')
            return False, goal['error']
        with self._lock:
            goal['status'] = 'running'
            self._goal_handle = handle
        self._action.result_async(handle).add_done_callback(lambda f: self._on_result(f, goal))
        return True, f"goal {goal['id']} accepted"

    @staticmethod
    def _cancel_late_goal(future):
        handle = future.result()
        if handle is not None and handle.accepted:
            handle.cancel_goal_async()

    def _goal_active(self):
        return self._goal_handle is not None or (self._goal or {}).get('status') == 'sending'

    async def cancel(self):
        handle = self._goal_handle
        if handle is None:
            return False, 'no focus goal is running'
        try:
            response = await rclpy_result(handle.cancel_goal_async(), SERVICE_TIMEOUT)
        except asyncio.TimeoutError:
            return False, f'the focus server did not answer the cancel in {SERVICE_TIMEOUT:g} s'
        if not response.goals_canceling:
            return False, f'the focus server refused to cancel (code {response.return_code})'
        return True, 'canceling'

    async def jog(self, delta):
        motor = self._motor
        if motor is None or time.monotonic() - self._motor_at > MOTOR_STATE_STALE:
            return False, 'no motor state lately: is the motor driver running?'
        if self._goal_active():
            return False, 'a focus goal is moving the lens; cancel it first'
        if delta == 0.0:
            raise BadRequest('a jog of 0 does nothing')
        target = motor['position'] + delta
        if not motor['min'] <= target <= motor['max']:
            raise BadRequest(f"a jog of {delta:+g} from {motor['position']:.2f} would leave "
                             f"the motor limits [{motor['min']:g}, {motor['max']:g}]")
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        self._jog_running = sequence
        self._command_pub.publish(motor_command(
            self, MotorCommand.MODE_RELATIVE, target=float(delta), sequence=sequence))
        return True, f'moving {delta:+g} to {target:.2f}'


def main(args=None):
    return run_node(WebNode, args)


if __name__ == '__main__':
    sys.exit(main())
