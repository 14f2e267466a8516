"""Named focus positions: the YAML store (atomic writes) and the node over DDS."""
import os

import pytest
import yaml

from autofocus.io import focus_positions
from autofocus.io.focus_positions import PositionStore


def test_store_round_trip_and_default_path_under_ros_home(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path / 'roshome'))
    path = focus_positions.default_path()
    assert path == tmp_path / 'roshome' / 'autofocus' / 'focus_positions.yaml'
    store = PositionStore(path)
    assert store.positions == {} and store.last is None
    store.save('bench', 412.5)
    store.save('far-1.b', 80)
    store.set_last(433.0)
    again = PositionStore(path)
    assert again.positions == {'bench': 412.5, 'far-1.b': 80.0} and again.last == 433.0
    assert again.get('bench') == 412.5
    with pytest.raises(KeyError, match="no position named 'near'.*bench"):
        again.get('near')
    monkeypatch.delenv('ROS_HOME')
    assert focus_positions.default_path() == \
        pathlib_home() / '.ros' / 'autofocus' / 'focus_positions.yaml'


def pathlib_home():
    import pathlib
    return pathlib.Path(os.path.expanduser('~'))


@pytest.mark.parametrize('name', ['', 'a b', '../etc', 'x' * 65, 'naïve'])
def test_bad_names_are_refused(tmp_path, name):
    store = PositionStore(tmp_path / 'p.yaml')
    with pytest.raises(ValueError, match='not allowed'):
        store.save(name, 1.0)
    assert not (tmp_path / 'p.yaml').exists()


def test_a_crash_while_writing_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / 'p.yaml'
    store = PositionStore(path)
    store.save('a', 1.0)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError('power cut')

    monkeypatch.setattr(focus_positions.os, 'replace', crash)
    with pytest.raises(OSError, match='power cut'):
        store.save('b', 2.0)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['p.yaml']
    assert PositionStore(path).positions == {'a': 1.0}


def test_a_damaged_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text('positions: [1, 2\n')
    with pytest.raises(ValueError, match='p.yaml cannot be read.*fix or delete'):
        PositionStore(path)
    path.write_text(yaml.safe_dump({'positions': {'a': 'near'}}))
    with pytest.raises(ValueError, match='finite number'):
        PositionStore(path)


# -- the node, on the simulated graph ---------------------------------------------------------

@pytest.mark.graph
def test_save_recall_last_focus_and_restore_at_start_up(ros, node_process, tmp_path):
    from action_msgs.msg import GoalStatus
    from autofocus_interfaces.action import Focus
    from autofocus_interfaces.srv import FocusPosition
    from ros_helpers import wait_for
    from test_graph_sim import Graph

    graph = Graph(ros, node_process, tmp_path, focus_position=610.0)
    store = tmp_path / 'positions.yaml'
    positions = node_process('autofocus', 'focus_positions', params={'file': str(store)})
    save = ros.node.create_client(FocusPosition, 'focus_positions/save')
    recall = ros.node.create_client(FocusPosition, 'focus_positions/recall')

    def call(client, name):
        assert client.wait_for_service(timeout_sec=30.0), positions.log()
        # wait_for_service sees the request topic only: a service that answers before it
        # has matched this client's response reader drops the answer (Fast DDS: "failed to
        # send response (timeout): client will not receive response"), seen on a loaded
        # machine. Both calls here are idempotent, so an unanswered one is sent again.
        for _ in range(3):
            future = client.call_async(FocusPosition.Request(name=name))
            if wait_for(future.done, 10.0):
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f'no answer to {name!r} in 3 tries:\n{positions.log()}')

    graph.move_motor_to(300.0)
    saved = call(save, 'bench')
    assert saved.success and saved.position == 300.0, saved.message
    assert yaml.safe_load(store.read_text())['positions'] == {'bench': 300.0}
    refused = call(save, '../etc/passwd')
    assert not refused.success and 'not allowed' in refused.message

    graph.move_motor_to(900.0)
    recalled = call(recall, 'bench')
    assert recalled.success, recalled.message
    # (the state saying so may reach this test's node just after the answer)
    assert wait_for(lambda: graph.states[-1].position == 300.0 and not graph.states[-1].moving,
                    5.0), graph.states[-1]
    missing = call(recall, 'nowhere')
    assert not missing.success and "no position named 'nowhere'" in missing.message
    assert 'bench' in missing.message

    # A successful focus goal (any client's) is remembered as the last focus position.
    response = graph.focus(Focus.Goal())
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.error_msg
    final = response.result.final_position
    assert wait_for(lambda: yaml.safe_load(store.read_text()).get('last') == final, 10.0), \
        (store.read_text(), positions.log())

    # Restarted with the lens elsewhere: it goes back to the last focus (the simulated motor
    # counts its position, so it is known).
    assert positions.interrupt() == 0
    graph.move_motor_to(0.0)
    restarted = node_process('autofocus', 'focus_positions', params={'file': str(store)})
    assert wait_for(lambda: abs(graph.states[-1].position - final) < 1e-6
                    and not graph.states[-1].moving, 30.0), restarted.log()
    assert 'restoring the last focus position' in restarted.log()


def test_last_focus_waits_until_the_motor_knows_its_position(ros, node_process, tmp_path):
    """A stepper that must home first (or a DC motor) says position_measured false: the lens
    is not sent anywhere until the driver says its position is real."""
    from autofocus_interfaces.msg import MotorCommand, MotorState
    from ros_helpers import wait_for

    store = tmp_path / 'positions.yaml'
    store.write_text(yaml.safe_dump({'positions': {}, 'last': 123.0}))
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    commands = ros.collect(MotorCommand, 'focus_motor/command')
    keepalives = ros.collect(MotorCommand, 'focus_motor/keepalive', qos=QoSProfile(
        depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    states = ros.node.create_publisher(MotorState, 'focus_motor/state', 10)
    process = node_process('autofocus', 'focus_positions', params={'file': str(store)})
    assert wait_for(lambda: states.get_subscription_count() > 0, 30.0), process.log()

    def publish(measured, acted_on=0, moving=False):
        # (position_known: the driver's word that its position is real, homed or restored)
        states.publish(MotorState(position=-40.0, position_measured=measured,
                                  position_known=measured, min_position=0.0,
                                  max_position=1000.0, last_command_sequence=acted_on,
                                  moving=moving))

    for _ in range(10):
        publish(False)
        wait_for(lambda: False, 0.1)
    assert wait_for(lambda: 'not restored yet' in process.log(), 10.0), process.log()
    assert commands == []
    publish(True)                       # homed
    assert wait_for(lambda: commands, 10.0), process.log()
    assert commands[0].mode == MotorCommand.MODE_ABSOLUTE and commands[0].target == 123.0
    # A driver that has not acted on it (the command lost before its reader matched ours):
    # the same move is sent again, with a new sequence.
    for _ in range(40):
        if len(commands) >= 2:
            break
        publish(True)
        wait_for(lambda: False, 0.1)
    assert len(commands) >= 2, (commands, process.log())
    assert commands[1].target == 123.0 and commands[1].sequence != commands[0].sequence
    # Acted on: no more resends; the move not yet reported done, the node keeps in contact
    # with the driver, on the keepalive topic (best effort, as the focus server does).
    acted_on = commands[-1].sequence
    sent = len(commands)
    before = len(keepalives)
    for _ in range(20):
        publish(True, acted_on=acted_on, moving=True)
        wait_for(lambda: False, 0.1)
    assert len(commands) == sent, commands
    assert len(keepalives) >= before + 3, process.log()
    assert all(c.mode == MotorCommand.MODE_KEEPALIVE for c in keepalives)
    # A command of another commander (a focus goal) is never overridden by a resend.
    for _ in range(20):
        publish(True, acted_on=acted_on + 999, moving=True)
        wait_for(lambda: False, 0.1)
    assert len(commands) == sent, commands
