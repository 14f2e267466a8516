"""The focus action server refuses bad goals and explains failures it cannot avoid."""
import pytest
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import MotorCommand, MotorState
from ros_helpers import FocusAction, wait_for


def start_server(ros, node_process, move_timeout):
    process = node_process('autofocus', 'focus_server',
                           params={'frame_timeout': 0.5, 'move_timeout': move_timeout,
                                   'range_min': 0.0, 'range_max': 500.0})
    action = FocusAction(ros)
    assert action.wait_for_server(), process.log()
    action.process = process
    return action


@pytest.fixture
def server(ros, node_process):
    """A server that gives up on a missing motor quickly."""
    return start_server(ros, node_process, move_timeout=2.0)


@pytest.fixture
def server_for_motor(ros, node_process):
    """A server for tests with a motor: on a loaded machine the server may discover a motor
    started beside it seconds after this test hears it (move_timeout bounds that wait)."""
    return start_server(ros, node_process, move_timeout=10.0)


@pytest.mark.parametrize('goal, reason', [
    (Focus.Goal(strategy='golden_retriever'), "unknown strategy 'golden_retriever'"),
    (Focus.Goal(range_min=300.0, range_max=100.0), 'empty position range'),
    (Focus.Goal(roi_x=0.7, roi_y=0.1, roi_width=0.5, roi_height=0.2), 'outside the image'),
])
def test_invalid_goals_are_rejected_with_the_reason_logged(server, goal, reason):
    handle = server.send(goal)
    assert not handle.accepted
    assert wait_for(lambda: reason in server.process.log(), 5.0), server.process.log()


def test_without_a_motor_the_goal_aborts_and_says_so(server):
    handle = server.send(Focus.Goal(timeout=10.0))
    assert handle.accepted
    response = server.result(handle, 20.0)
    assert response.status == GoalStatus.STATUS_ABORTED
    assert not response.result.success
    assert response.result.error_code == Focus.Result.MOTOR_FAULT
    assert 'is the motor driver running?' in response.result.error_msg


def test_without_frames_the_goal_aborts_with_no_frames(ros, server_for_motor, node_process):
    states = ros.collect(MotorState, 'focus_motor/state')
    node_process('autofocus_motor', 'motor_driver', node_name='focus_motor',
                 params={'driver': 'sim', 'max_position': 500.0})
    assert wait_for(lambda: states, 20.0)
    handle = server_for_motor.send(Focus.Goal(strategy='sweep', timeout=20.0))
    assert handle.accepted
    response = server_for_motor.result(handle, 30.0)
    assert response.status == GoalStatus.STATUS_ABORTED
    assert response.result.error_code == Focus.Result.NO_FRAMES, response.result.error_msg
    assert 'is the camera publishing' in response.result.error_msg


def test_a_range_beyond_the_motor_limits_is_rejected(server, node_process):
    node_process('autofocus_motor', 'motor_driver', node_name='focus_motor',
                 params={'driver': 'sim', 'max_position': 500.0})
    # The server learns the limits from the motor's state.
    handle = None
    for _ in range(50):
        handle = server.send(Focus.Goal(range_min=0.0, range_max=900.0, timeout=1.0))
        if not handle.accepted:
            break
        server.result(handle, 10.0)
    assert not handle.accepted
    assert 'outside the motor limits' in server.process.log()


def test_a_goal_without_a_range_searches_within_a_smaller_lens(
        ros, server_for_motor, node_process):
    # The server's range is 0..500; this lens (a C920's kind) turns 0..200 only.
    commands = ros.collect(MotorCommand, 'focus_motor/command', qos=100)
    states = ros.collect(MotorState, 'focus_motor/state')
    node_process('autofocus_motor', 'motor_driver', node_name='focus_motor',
                 params={'driver': 'sim', 'max_position': 200.0})
    assert wait_for(lambda: states, 20.0)
    handle = server_for_motor.send(Focus.Goal(strategy='sweep', timeout=20.0))
    assert handle.accepted
    response = server_for_motor.result(handle, 30.0)
    # No camera here: the goal ends for want of frames, after its first move, inside 0..200.
    assert response.result.error_code == Focus.Result.NO_FRAMES, response.result.error_msg
    targets = [c.target for c in commands if c.mode == MotorCommand.MODE_ABSOLUTE]
    assert targets and all(0.0 <= t <= 200.0 for t in targets), targets


@pytest.mark.parametrize('goal, reason', [
    (Focus.Goal(range_min=float('nan'), range_max=100.0), 'range_min is nan'),
    (Focus.Goal(timeout=float('inf')), 'timeout is inf'),
    (Focus.Goal(timeout=float('nan')), 'timeout is nan'),
    (Focus.Goal(strategy='hill_climb', range_min=-1e9, range_max=1e9),
     'cannot be searched with these steps'),
])
def test_goals_with_nan_or_huge_numbers_are_rejected_with_the_reason(server, goal, reason):
    handle = server.send(goal)
    assert not handle.accepted
    assert wait_for(lambda: reason in server.process.log(), 5.0), server.process.log()
    assert 'internal error' not in server.process.log()


def test_hill_climb_over_a_range_beyond_the_motor_limits_is_rejected(server, node_process):
    node_process('autofocus_motor', 'motor_driver', node_name='focus_motor',
                 params={'driver': 'sim', 'max_position': 500.0})
    handle = None
    for _ in range(50):   # until the server has heard the motor's limits
        handle = server.send(Focus.Goal(range_min=0.0, range_max=900.0, timeout=1.0))
        if not handle.accepted:
            break
        server.result(handle, 10.0)
    assert not handle.accepted
    handle = server.send(Focus.Goal(strategy='hill_climb', range_min=-1e9, range_max=1e9))
    assert not handle.accepted
    assert wait_for(lambda: 'range [-1e+09, 1e+09] is outside the motor limits [0, 500]'
                    in server.process.log(), 5.0), server.process.log()
    assert 'internal error' not in server.process.log()


@pytest.mark.parametrize('params, reason', [
    ({'range_min': 900.0, 'range_max': 100.0}, 'range_min (900) must be below range_max (100)'),
    ({'sweep_step': 0.01}, 'sweep_step=0.01 is too small'),
    ({'climb_step': 5.0, 'climb_min_step': 10.0}, 'climb_min_step (10) must not exceed'),
    ({'range_max': 1e12}, 'cannot be searched with these steps'),
    ({'range_min': float('nan')}, 'range_min is nan'),
    ({'goal_timeout': float('nan')}, 'goal_timeout'),
])
def test_bad_parameters_stop_the_server_at_start_up_with_one_line(node_process, params, reason):
    process = node_process('autofocus', 'focus_server', params=params)
    assert process.popen.wait(60) == 2, process.log()
    log = process.log()
    assert [line for line in log.splitlines() if reason in line] == [
        line for line in log.splitlines() if 'cannot start' in line], log
    assert reason in log and 'Traceback' not in log
