"""ThreadSafeActionClient.result_async, under FocusClient (the CLI, the scripting API; the
web page and continuous focus use it too), asks again for a result the server sent but the
client never got.

rmw_fastrtps drops a service response whose client reader is not matched within 100 ms
(action_client's module docstring says when). The goal handle, rclpy's object, is faked
here: its status says the goal ended, and its first result requests are never answered."""
import time

import pytest
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus

from autofocus.nodes import action_client
from autofocus.tools import focus_client


class EndedGoal:
    """A ClientGoalHandle whose status is ``status`` and whose first ``lost`` result
    requests get no answer."""

    accepted = True

    def __init__(self, status, lost):
        self.status = status
        self.lost = lost
        self.requests = 0
        self.futures = []

    def get_result_async(self):
        from rclpy.task import Future
        self.requests += 1
        future = Future()
        self.futures.append(future)
        if self.requests > self.lost:
            future.set_result(Focus.Impl.GetResultService.Response(
                status=GoalStatus.STATUS_ABORTED,
                result=Focus.Result(error_code=Focus.Result.POSITION_UNKNOWN)))
        return future


@pytest.fixture
def client(ros_domain, monkeypatch):
    import rclpy
    from rclpy.task import Future

    monkeypatch.setattr(action_client, 'RESULT_RETRY', 0.2)
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
    assert goal.futures[0].cancelled()      # rclpy forgets the unanswered request
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
    while goal.requests < action_client.RESULT_REQUESTS and time.monotonic() < deadline:
        assert not client.is_task_complete(spin_time=0.02)
    assert goal.requests == action_client.RESULT_REQUESTS
    assert not wait_until_complete(client, 5 * action_client.RESULT_RETRY)
    assert goal.requests == action_client.RESULT_REQUESTS


def test_result_async_asks_again_on_a_node_spun_by_another_thread(ros, monkeypatch):
    # As the web page and continuous focus use it: their node is spun by an executor
    # thread, and nothing polls the future; the client's own timer asks again.
    import rclpy

    monkeypatch.setattr(action_client, 'RESULT_RETRY', 0.2)
    node = rclpy.create_node('result_async_probe', context=ros.context)
    client = action_client.ThreadSafeActionClient(node, Focus, 'focus')
    ros.add_node(node)
    goal = EndedGoal(GoalStatus.STATUS_CANCELED, lost=2)
    future = client.result_async(goal)
    deadline = time.monotonic() + 10.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert future.done() and goal.requests == 3
    assert future.result().result.error_code == Focus.Result.POSITION_UNKNOWN
    assert all(lost.cancelled() for lost in goal.futures[:2])
    # Answered: its timer is gone, so nothing asks again however long the goal stays ended.
    time.sleep(5 * action_client.RESULT_RETRY)
    assert goal.requests == 3
