"""ThreadSafeActionClient: a goal sent from a thread beside the spinning executor is answered.

rclpy 9.1.2's send_goal_async returns a future that never completes when the executor takes
the server's answer while the send is still registering it (action_client.py says how). The
window is a few Python lines wide; here a slow feedback-callback registration (the last step
of the send, after rclpy's lock) widens it to 0.5 s so each run shows it.
"""
import threading
import time

import pytest
from ros_helpers import wait_for

from autofocus.nodes.action_client import ThreadSafeActionClient


class SlowRegistry(dict):
    """The action client's feedback-callback table, slow to take an entry."""

    def __setitem__(self, key, value):
        time.sleep(0.5)
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


def send_slowly(client):
    from autofocus_interfaces.action import Focus

    client._feedback_callbacks = SlowRegistry()   # widen rclpy's window (module docstring)
    return client.send_goal_async(Focus.Goal(range_min=0.0, range_max=100.0),
                                  feedback_callback=lambda message: None)


def test_plain_rclpy_client_loses_the_answer_that_comes_while_it_registers(ros, focus_server):
    """The upstream race, shown: if this fails, rclpy has fixed it and
    ThreadSafeActionClient can go (action_client.py)."""
    from rclpy.action import ActionClient

    future = send_slowly(client_on_own_node(ros, ActionClient))
    assert wait_for(lambda: focus_server, 10.0), 'the server never got the goal'
    assert not wait_for(future.done, 3.0), 'rclpy answered: its race is fixed'


def test_thread_safe_client_gets_the_answer_and_the_result(ros, focus_server):
    client = client_on_own_node(ros, ThreadSafeActionClient)
    future = send_slowly(client)
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
