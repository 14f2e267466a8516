"""The lens simulator node renders a frame from where the lens was during its exposure, even
when motor states arrive late (a loaded machine), and its subject can be moved while it runs."""
from autofocus_interfaces.msg import MotorState
from rclpy.parameter import Parameter
from rclpy.time import Time

from autofocus.nodes import lens_simulator_node
from autofocus.nodes.lens_simulator_node import LensSimulatorNode

MS = 1_000_000


def state(t_ns, position):
    msg = MotorState(position=float(position))
    msg.header.stamp = Time(nanoseconds=t_ns).to_msg()
    return msg


def make(ros, **params):
    # Not added to an executor: the test drives the callbacks itself.
    node = LensSimulatorNode(context=ros.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in dict(width=64, height=48, noise_sigma=0.0,
                                               exposure_time=0.01, **params).items()])
    rendered = []
    node._lens.render = lambda a, b, rng=None: rendered.append((a, b)) or 'frame'
    node._images.publish = lambda frame, stamp: None
    return node, rendered


def test_a_frame_waits_for_a_motor_state_after_its_exposure(ros):
    node, rendered = make(ros, initial_position=5.0)
    try:
        t0 = 10_000 * MS
        node._due.append(t0)
        node._render_due(t0 + 20 * MS)
        assert rendered == [(5.0, 5.0)]          # no motor at all: the initial position
        node._on_motor_state(state(t0, 100.0))
        node._on_motor_state(state(t0 + 20 * MS, 200.0))
        node._due.append(t0 + 40 * MS)           # exposed 40..50 ms, states only up to 20 ms
        node._render_due(t0 + 60 * MS)
        assert len(rendered) == 1                # waits instead of showing the lens at 200
        node._on_motor_state(state(t0 + 60 * MS, 400.0))
        assert rendered[1] == (300.0, 350.0)     # where the lens really was, interpolated
        # States stop coming (motor gone): frames still come, after the wait.
        node._due.append(t0 + 100 * MS)
        node._render_due(t0 + 120 * MS)
        assert len(rendered) == 2
        node._render_due(t0 + 110 * MS + lens_simulator_node.MAX_STATE_WAIT_NS)
        assert rendered[2] == (400.0, 400.0)
    finally:
        node.destroy_node()


def test_focus_position_can_be_set_while_running_and_must_be_finite(ros):
    node, _ = make(ros, focus_position=420.0)
    try:
        assert node.set_parameters([Parameter('focus_position', value=610.0)])[0].successful
        assert node._lens.config.focus_position == 610.0
        assert node._lens.blur_radius(610.0) == 0.0
        result = node.set_parameters([Parameter('focus_position', value=float('nan'))])[0]
        assert not result.successful and 'finite' in result.reason
        assert node._lens.config.focus_position == 610.0
    finally:
        node.destroy_node()
