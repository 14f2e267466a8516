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
    node._started_ns = 0        # the tests' clock starts at 10 s: motor_wait is over
    return node, rendered


def due(node, start):
    # As the frame timer queues a frame: one tick, the frame due at it.
    node._ticks += 1
    node._due.append((start, node._ticks))


def test_a_frame_waits_for_a_motor_state_after_its_exposure(ros):
    node, rendered = make(ros, initial_position=5.0)
    try:
        t0 = 10_000 * MS
        due(node, t0)
        node._render_due(t0 + 20 * MS)
        assert rendered == [(5.0, 5.0)]          # no motor at all: the initial position
        node._on_motor_state(state(t0, 100.0))
        node._on_motor_state(state(t0 + 20 * MS, 200.0))
        due(node, t0 + 40 * MS)                  # exposed 40..50 ms, states only up to 20 ms
        node._render_due(t0 + 60 * MS)
        assert len(rendered) == 1                # waits instead of showing the lens at 200
        node._on_motor_state(state(t0 + 60 * MS, 400.0))
        assert rendered[1] == (300.0, 350.0)     # where the lens really was, interpolated
        # States stop coming (motor gone): frames still come, after the wait.
        due(node, t0 + 100 * MS)
        node._render_due(t0 + 120 * MS)
        assert len(rendered) == 2
        node._ticks += lens_simulator_node.STATE_WAIT_TICKS
        node._render_due(t0 + 110 * MS + lens_simulator_node.MAX_STATE_WAIT_NS)
        assert rendered[2] == (400.0, 400.0)
    finally:
        node.destroy_node()


def moving(t_ns, position):
    msg = state(t_ns, position)
    msg.moving = True
    return msg


def test_a_frame_after_a_moving_state_waits_for_the_driver_instead_of_guessing(ros):
    # The driver stalled mid-move (a loaded machine): nothing says where the lens is. A
    # frame rendered at the last position heard, stamped after the move ended, was paired
    # by the focus server with where the lens came to rest (a search ended 63 units off).
    node, rendered = make(ros, initial_position=0.0)
    try:
        t0 = 10_000 * MS
        node._on_motor_state(moving(t0, 250.0))              # on its way to 350
        due(node, t0 + 200 * MS)
        node._ticks += lens_simulator_node.STATE_WAIT_TICKS
        node._render_due(t0 + 210 * MS + lens_simulator_node.MAX_STATE_WAIT_NS)
        assert rendered == []                    # the lens at 250 would be a guess
        # The driver again, at rest since it arrived at 100 ms (its stamp: when it spoke).
        arrived = state(t0 + 400 * MS, 350.0)
        arrived.stationary_since = Time(nanoseconds=t0 + 100 * MS).to_msg()
        node._on_motor_state(arrived)
        assert rendered == [(350.0, 350.0)]
        # A driver that never speaks again: after MAX_MOVING_WAIT the lens is taken as
        # stopped where it was last heard, and frames come again.
        node._on_motor_state(moving(t0 + 500 * MS, 300.0))
        due(node, t0 + 600 * MS)
        node._ticks += lens_simulator_node.STATE_WAIT_TICKS
        node._render_due(t0 + 1000 * MS)
        assert len(rendered) == 1
        node._render_due(t0 + 610 * MS + lens_simulator_node.MAX_MOVING_WAIT_NS)
        assert rendered[1] == (300.0, 300.0)
    finally:
        node.destroy_node()


def test_a_process_that_wakes_from_a_stall_renders_from_the_states_queued_meanwhile(ros):
    # A frame due before the process stalled; it wakes 2 s later and its frame timer runs
    # first, with the states of those 2 s still queued. The wait has run out by the clock
    # but not by the ticks: the frame waits until the states are taken.
    node, rendered = make(ros, initial_position=0.0)
    try:
        t0 = 10_000 * MS
        node._on_motor_state(moving(t0, 0.0))
        due(node, t0 + 100 * MS)                 # exposed 100..110 ms, mid-move
        node._render_due(t0 + 120 * MS)
        due(node, t0 + 2100 * MS)                # the timer, after the stall
        node._render_due(t0 + 2110 * MS)
        assert rendered == []
        for k in range(1, 11):                   # the queued states: 0 to 400 in 0.8 s
            node._on_motor_state(state(t0 + 100 * k * MS, min(400.0, 50.0 * k)))
        assert rendered[0] == (50.0, 55.0)
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


def test_frames_wait_for_the_first_motor_state_instead_of_guessing(ros):
    # Beside a motor driver not discovered yet, frames showed the lens at initial_position
    # while it moved: a search on the simulated graph ended 14.5 units off (its coarse scan
    # read one blurred image from 0 to 800). Frames now wait for the first state.
    node, rendered = make(ros, initial_position=0.0)
    try:
        t0 = 10_000 * MS
        node._started_ns = t0
        due(node, t0 + 100 * MS)
        node._ticks += lens_simulator_node.STATE_WAIT_TICKS
        node._render_due(t0 + 2000 * MS)         # no state yet, within motor_wait
        assert rendered == []
        # The driver heard at last, moving: the frame exposed before its first state is
        # dropped; the next one shows where the lens was then.
        due(node, t0 + 2100 * MS)
        node._on_motor_state(moving(t0 + 2050 * MS, 300.0))
        node._on_motor_state(moving(t0 + 2150 * MS, 400.0))
        assert rendered == [(350.0, 360.0)]
        assert node._dropped == 1
    finally:
        node.destroy_node()
    # A camera without a motor: after motor_wait, the lens at initial_position.
    node, rendered = make(ros, initial_position=7.0)
    try:
        node._started_ns = t0
        due(node, t0 + 100 * MS)
        node._ticks += lens_simulator_node.STATE_WAIT_TICKS
        node._render_due(t0 + 4900 * MS)
        assert rendered == []
        node._render_due(t0 + 5100 * MS)
        assert rendered == [(7.0, 7.0)]
    finally:
        node.destroy_node()
