"""ThreadSafeActionClient: a goal sent from a thread beside the spinning executor is answered.

rclpy 9.1.2's send_goal_async returns a future that never completes when the executor takes
the server's answer while the send is still registering it (action_client.py says how). The
window is a few Python lines wide; here the feedback-callback registration (the last step of
the send, after rclpy's lock) is held open until the answer has been handled, so every run
shows it whatever the machine's load.
"""
import threading
import time

import pytest
from ros_helpers import wait_for

from autofocus.nodes.action_client import ThreadSafeActionClient


class HeldRegistry(dict):
    """The action client's feedback-callback table: taking an entry waits for ``until()``."""

    def __init__(self, until):
        super().__init__()
        self.until = until

    def __setitem__(self, key, value):
        assert wait_for(self.until, 30.0), 'the server never answered the goal'
        super().__setitem__(key, value)


@pytest.fixture
def focus_server(ros):
    """A Focus action server on the harness (accepts, sends one feedback, succeeds)."""
    from autofocus_interfaces.action import Focus
    from rclpy.action import ActionServer
    from rclpy.callback_groups import ReentrantCallbackGroup

    goals = []

    def execute(handle):
        goals.append(handle.request)
        handle.publish_feedback(Focus.Feedback(phase='scan'))
        time.sleep(0.2)
        handle.succeed()
        return Focus.Result(success=True)

    server = ActionServer(ros.node, Focus, 'focus', execute_callback=execute,
                          callback_group=ReentrantCallbackGroup())
    yield goals
    server.destroy()


def client_on_own_node(ros, client_class):
    import rclpy
    from autofocus_interfaces.action import Focus

    node = rclpy.create_node(f'race_client_{client_class.__name__.lower()}', context=ros.context)
    client = client_class(node, Focus, 'focus')
    ros.add_node(node)
    assert client.wait_for_server(timeout_sec=20.0)
    return client


def send_held(client, until):
    from autofocus_interfaces.action import Focus

    client._feedback_callbacks = HeldRegistry(until)   # rclpy's window (module docstring)
    return client.send_goal_async(Focus.Goal(range_min=0.0, range_max=100.0),
                                  feedback_callback=lambda message: None)


def test_plain_rclpy_client_loses_the_answer_that_comes_while_it_registers(ros, focus_server):
    """The upstream race, shown: if this fails, rclpy has fixed it and
    ThreadSafeActionClient can go (action_client.py)."""
    from rclpy.action import ActionClient

    client = client_on_own_node(ros, ActionClient)
    # Held until the answer was taken and completed the future rclpy registered first (its
    # done callback removes it from the pending table).
    future = send_held(client, lambda: focus_server and not client._pending_goal_requests)
    assert not wait_for(future.done, 3.0), 'rclpy answered: its race is fixed'


def test_thread_safe_client_gets_the_answer_and_the_result(ros, focus_server):
    client = client_on_own_node(ros, ThreadSafeActionClient)

    def answered_a_moment_ago():
        # The server runs a goal after its answer; then time for an executor to take the
        # answer, were it free to.
        if not focus_server:
            return False
        time.sleep(0.5)
        return True

    future = send_held(client, answered_a_moment_ago)
    assert wait_for(future.done, 10.0), 'no answer to the goal'
    handle = future.result()
    assert handle.accepted and focus_server
    result = handle.get_result_async()
    assert wait_for(result.done, 10.0) and result.result().result.success


def test_goals_from_threads_beside_the_executor_are_all_answered(ros, focus_server):
    """The real window (no widening): 3 threads, each sending 10 goals one after another.
    (Each waits for its answer first: a burst of 30 overflows the action services' queues
    of 10, a limit of the QoS, not of the client.)"""
    from autofocus_interfaces.action import Focus

    client = client_on_own_node(ros, ThreadSafeActionClient)
    unanswered, refused = [], []

    def send(count):
        for _ in range(count):
            future = client.send_goal_async(Focus.Goal(range_min=0.0, range_max=100.0))
            if not wait_for(future.done, 20.0):
                unanswered.append(future)
            elif not future.result().accepted:
                refused.append(future)

    threads = [threading.Thread(target=send, args=(10,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120.0)
    assert not any(thread.is_alive() for thread in threads)
    assert not unanswered and not refused, (len(unanswered), len(refused))
    assert wait_for(lambda: len(focus_server) == 30, 20.0), len(focus_server)


def test_a_goal_sent_from_the_clients_own_feedback_callback_is_refused_not_hung(
        ros, focus_server):
    from autofocus_interfaces.action import Focus

    client = client_on_own_node(ros, ThreadSafeActionClient)
    errors = []

    def on_feedback(message):
        try:
            client.send_goal_async(Focus.Goal(range_min=0.0, range_max=100.0))
        except RuntimeError as error:
            errors.append(str(error))

    future = client.send_goal_async(Focus.Goal(range_min=0.0, range_max=100.0),
                                    feedback_callback=on_feedback)
    assert wait_for(future.done, 10.0)
    assert wait_for(lambda: errors, 10.0), 'the feedback never came'
    # Refused at once (not after SEND_WAIT's wait for a group that would never free).
    assert 'from a callback of the same action client' in errors[0]
