"""Lens simulator node: a camera whose lens focus follows the focus motor.

Subscribes  focus_motor/state   autofocus_interfaces/MotorState (the lens position)
Publishes   ~/image_raw, ~/camera_info, like the camera node (run it named `camera`)

Each frame is the simulated scene defocused for the lens position during its
exposure: a disk blur whose radius grows with the distance from the in-focus
position, sensor noise on top, and motion blur when the lens moved while the
shutter was open. The header stamp is the start of the exposure, so a frame
stamped after the motor came to rest really shows the lens at rest.
"""
import sys
import bisect
import collections
import dataclasses

import numpy as np
from autofocus_interfaces.msg import MotorState
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.time import Time

from autofocus.core import lens_sim
from autofocus.nodes.camera_node import ImagePublisher
from autofocus.nodes.node_tools import ConfigError, declare, run_node


class PositionHistory:
    """Lens positions over time from motor states, to look up where the lens was at t."""

    def __init__(self, seconds: float = 5.0):
        self._seconds_ns = int(seconds * 1e9)
        self._times = collections.deque()
        self._positions = collections.deque()

    def add(self, t_ns: int, position: float):
        if self._times and t_ns < self._times[-1]:
            return  # out of order (a late message); the newer state wins
        self._times.append(t_ns)
        self._positions.append(position)
        while len(self._times) > 2 and self._times[0] < t_ns - self._seconds_ns:
            self._times.popleft()
            self._positions.popleft()

    @property
    def earliest(self):
        """Stamp (ns) of the oldest state kept, or None before the first."""
        return self._times[0] if self._times else None

    @property
    def latest(self):
        """Stamp (ns) of the newest state, or None before the first."""
        return self._times[-1] if self._times else None

    def at(self, t_ns: int, default: float) -> float:
        """Position at t, linearly interpolated between the states around it."""
        if not self._times:
            return default
        i = bisect.bisect_right(self._times, t_ns)
        if i == 0:
            return self._positions[0]
        if i == len(self._times):
            return self._positions[-1]
        t0, t1 = self._times[i - 1], self._times[i]
        p0, p1 = self._positions[i - 1], self._positions[i]
        return p0 + (p1 - p0) * (t_ns - t0) / (t1 - t0)


# A frame is rendered once a motor state stamped after its exposure has arrived, waiting at
# most this long (ns): on a loaded machine states arrive late, and a frame rendered from the
# last state heard would show the lens where it was a moment ago, not where it is; a search
# would then pair positions with the wrong sharpness (measured: ends 30-80 units off).
MAX_STATE_WAIT_NS = 250_000_000
# ... and at least this many frame ticks after the frame was due: a process that was not
# scheduled for longer than the wait wakes with the states of that time still queued, and
# its frame timer may run before them (seen: a search that ended 63 units off). The states
# are taken before the timer's next tick, so the history is current by then.
STATE_WAIT_TICKS = 2
# While the last state heard says the lens is moving, a frame past it is not rendered from
# a guess for this long (ns) after its exposure: a motor driver stalled mid-move (a loaded
# machine) sends nothing, and a frame showing the lens where it last was, stamped after the
# move had ended, was paired by the focus server with the position the lens came to rest
# at (a search ended 63 units off). Such frames are dropped and counted, as a camera drops
# frames; after this long the driver is taken for gone and the lens for stopped. Well under
# the focus server's camera_timeout beside a simulated camera (sim.yaml: 3 s), so that a
# driver that died mid-move is what the server blames.
MAX_MOVING_WAIT_NS = 1_000_000_000
# Frames waiting to be rendered, at most (older ones are dropped): half a second at 30 fps,
# more than the normal wait; a longer wait is a stalled driver, not worth a burst of frames.
MAX_DUE_FRAMES = 15


class LensSimulatorNode(Node):

    def __init__(self, **kwargs):
        super().__init__('lens_simulator', **kwargs)
        defaults = lens_sim.LensConfig()
        config = lens_sim.LensConfig(
            width=declare(self, 'width', defaults.width, 'Image width, pixels',
                          low=16, high=8192, read_only=True),
            height=declare(self, 'height', defaults.height, 'Image height, pixels',
                           low=16, high=8192, read_only=True),
            # Settable at run time: the scene moves (tests of continuous focus).
            focus_position=declare(self, 'focus_position', float(defaults.focus_position),
                                   'Lens position (motor units) at which the scene is sharp; '
                                   'may be set while running (the subject moves)'),
            blur_per_unit=declare(self, 'blur_per_unit', float(defaults.blur_per_unit),
                                  'Blur disk radius in pixels per motor unit away from focus',
                                  low=0.0, high=10.0, read_only=True),
            noise_sigma=declare(self, 'noise_sigma', float(defaults.noise_sigma),
                                'Sensor read noise, grey levels (standard deviation)',
                                low=0.0, high=64.0, read_only=True),
            scene=declare(self, 'scene', defaults.scene,
                          "What the camera looks at; 'flat' is featureless (no focus peak)",
                          choices=list(lens_sim.SCENES), read_only=True),
            seed=declare(self, 'seed', defaults.seed, 'Seed of the scene and the noise',
                         low=0, high=2**31 - 1, read_only=True),
        )
        fps = declare(self, 'fps', 30.0, 'Frames per second', low=0.1, high=240.0,
                      read_only=True)
        self._exposure_ns = int(1e9 * declare(
            self, 'exposure_time', 0.01, 'Shutter open time, seconds (motion blur window)',
            low=0.0, high=1.0, read_only=True))
        self._initial_position = declare(
            self, 'initial_position', 0.0,
            'Lens position of a camera without a motor (none heard within motor_wait)',
            read_only=True)
        # Before the first motor state a frame's lens position would be a guess: beside a
        # motor driver not discovered yet (DDS announces a participant again only every few
        # seconds when its first announcements are missed), the frames showed the lens at
        # initial_position while it moved, and a search on the simulated graph ended 14.5
        # units off with a blind coarse scan. Frames wait for a state that long, then the
        # camera is taken to have no motor.
        self._motor_wait_ns = int(1e9 * declare(
            self, 'motor_wait', 5.0,
            'Seconds after start that frames wait for the first motor state before the lens '
            'is taken to stay at initial_position (no motor)', low=0.0, high=60.0,
            read_only=True))
        self._started_ns = self.get_clock().now().nanoseconds
        self._told_no_motor = False
        frame_id = declare(self, 'frame_id', 'camera', 'frame_id of published headers',
                           read_only=True)
        try:
            self._lens = lens_sim.LensSimulator(config)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self._rng = np.random.default_rng(config.seed)
        self._history = PositionHistory()
        # (exposure start, frame tick when due) of frames not yet rendered
        self._due = collections.deque()
        self._ticks = 0
        self._moving = False                      # what the last motor state heard says
        self._dropped = 0
        self._images = ImagePublisher(self, frame_id)
        self.create_subscription(MotorState, 'focus_motor/state', self._on_motor_state, 50)
        self.create_timer(1.0 / fps, self._publish_frame)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"simulating a {config.width}x{config.height} '{config.scene}' scene in focus at "
            f'{config.focus_position} at {fps} fps')

    def _on_set_parameters(self, parameters):
        for parameter in parameters:
            if parameter.name == 'focus_position':
                value = float(parameter.value)
                if not np.isfinite(value):
                    return SetParametersResult(successful=False,
                                               reason='focus_position must be finite')
                # The render cache is keyed by blur radius, so it stays valid.
                self._lens.config = dataclasses.replace(self._lens.config,
                                                        focus_position=value)
                self.get_logger().info(f'the scene is now in focus at {value:g}')
        return SetParametersResult(successful=True)

    def _on_motor_state(self, msg):
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        if not msg.moving:
            # At rest since stationary_since: a state published late by a stalled driver
            # still says when the lens arrived, so frames from then on show it there.
            rested = Time.from_msg(msg.stationary_since).nanoseconds
            if 0 < rested < stamp:
                self._history.add(rested, msg.position)
        self._history.add(stamp, msg.position)
        if self._history.latest == stamp:
            self._moving = bool(msg.moving)
        self._render_due()

    def _publish_frame(self):
        now = self.get_clock().now().nanoseconds
        self._ticks += 1
        if len(self._due) >= MAX_DUE_FRAMES:
            self._due.popleft()
            self._dropped += 1
            self.get_logger().warning(
                f'dropped a frame ({self._dropped} so far): no motor state says yet where '
                'the lens was during its exposure (the motor driver is not heard yet, is '
                'stalled, or its states are late)', throttle_duration_sec=5.0)
        self._due.append((now - self._exposure_ns, self._ticks))
        self._render_due(now)

    def _render_due(self, now=None):
        now = self.get_clock().now().nanoseconds if now is None else now
        latest = self._history.latest
        while self._due:
            start, due_tick = self._due[0]
            end = start + self._exposure_ns
            if latest is None:
                if now - self._started_ns < self._motor_wait_ns:
                    return              # no motor heard yet: frames wait (see motor_wait)
                if not self._told_no_motor:
                    self._told_no_motor = True
                    self.get_logger().info(
                        f'no motor state within {self._motor_wait_ns / 1e9:g} s: frames show '
                        f'the lens at initial_position ({self._initial_position:g}) until a '
                        'motor driver is heard on focus_motor/state')
            elif start < self._history.earliest:
                # Exposed before any state said where the lens was: a guess. Dropped, as a
                # camera drops frames.
                self._due.popleft()
                self._dropped += 1
                continue
            elif latest < end and (
                    now - end < MAX_STATE_WAIT_NS
                    or self._ticks - due_tick < STATE_WAIT_TICKS
                    or (self._moving and now - end < MAX_MOVING_WAIT_NS)):
                return
            self._due.popleft()
            frame = self._lens.render(self._history.at(start, self._initial_position),
                                      self._history.at(end, self._initial_position),
                                      rng=self._rng)
            self._images.publish(frame, Time(nanoseconds=start).to_msg())


def main(args=None):
    return run_node(LensSimulatorNode, args)


if __name__ == '__main__':
    sys.exit(main())
