"""FocusClient asks again for a result the server sent but the client never got.

rmw_fastrtps drops a service response whose client reader is not matched within 100 ms
(focus_client.RESULT_RETRY says when). The goal handle, rclpy's object, is faked here: its
status says the goal ended, and its first result requests are never answered."""
import time

import pytest
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus

from autofocus.tools import focus_client


class EndedGoal:
    """A ClientGoalHandle whose status is ``status`` and whose first ``lost`` result
    requests get no answer."""

    accepted = True

    def __init__(self, status, lost):
        self.status = status
        self.lost = lost
        self.requests = 0

    def get_result_async(self):
        from rclpy.task import Future
        self.requests += 1
        future = Future()
        if self.requests > self.lost:
            future.set_result(Focus.Impl.GetResultService.Response(
                status=GoalStatus.STATUS_ABORTED,
                result=Focus.Result(error_code=Focus.Result.POSITION_UNKNOWN)))
        return future


@pytest.fixture
def client(ros_domain, monkeypatch):
    import rclpy
    from rclpy.task import Future

    monkeypatch.setattr(focus_client, 'RESULT_RETRY', 0.2)
    rclpy.init()
    node = rclpy.create_node('focus_client_results')
    the_client = focus_client.FocusClient(node)

    def sent(goal):
        answered = Future()
        answered.set_result(goal)
        the_client._send_future = answered   # as send() leaves it, the server's answer in
        assert the_client.finish_send(1.0)
        return goal

    the_client.sent = sent
    yield the_client
    node.destroy_node()
    rclpy.shutdown()


def wait_until_complete(client, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.is_task_complete(spin_time=0.02):
            return True
    return False


def test_a_lost_result_of_an_ended_goal_is_asked_for_again(client):
    goal = client.sent(EndedGoal(GoalStatus.STATUS_ABORTED, lost=1))
    assert wait_until_complete(client, 10.0)
    assert goal.requests == 2
    status, result = client.get_result()
    assert status is focus_client.TaskResult.FAILED
    assert result.error_code == Focus.Result.POSITION_UNKNOWN


def test_a_running_goal_is_not_asked_again(client):
    goal = client.sent(EndedGoal(GoalStatus.STATUS_EXECUTING, lost=1))
    assert not wait_until_complete(client, 1.0)
    assert goal.requests == 1


def test_asking_again_stops_after_a_few_requests(client):
    goal = client.sent(EndedGoal(GoalStatus.STATUS_ABORTED, lost=100))
    deadline = time.monotonic() + 30.0
    while goal.requests < focus_client.RESULT_REQUESTS and time.monotonic() < deadline:
        assert not client.is_task_complete(spin_time=0.02)
    assert goal.requests == focus_client.RESULT_REQUESTS
    assert not wait_until_complete(client, 5 * focus_client.RESULT_RETRY)
    assert goal.requests == focus_client.RESULT_REQUESTS
