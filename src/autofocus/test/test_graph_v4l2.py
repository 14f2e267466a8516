"""End to end through bringup: a UVC camera's own focus motor (a fake of linuxpy's Device in
the lens_motor process) serves focus_motor, the frames come from another driver's topic
(image_topic), and focus goals succeed unchanged."""
import json
import os
import pathlib

import pytest
import yaml
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import FocusMetrics, MotorCommand, MotorState
from ros_helpers import FocusAction, stamp_ns, wait_for

pytestmark = pytest.mark.graph

TEST_DIR = pathlib.Path(__file__).resolve().parent
AUTOFOCUS_YAML = TEST_DIR.parent / 'config' / 'autofocus.yaml'
FOCUS_POSITION = 120.0  # where the simulated scene is sharp, in focus_absolute units
FINE_STEP = 5.0         # = the C920's focus_absolute step


def fake_uvc_camera(tmp_path, monkeypatch):
    """The documented test hook: the fake linuxpy first on the node processes' path."""
    config = tmp_path / 'fake_v4l2.json'
    # A C920 as `v4l2-ctl -l` shows it: focus_absolute 0..250 step 5, autofocus on.
    config.write_text(json.dumps({'devices': {'/dev/video0': {
        'card': 'HD Pro Webcam C920', 'focus': [0, 250, 5, 0], 'focus_value': 0,
        'autofocus': True}}}))
    paths = [str(TEST_DIR / 'fakes'), os.environ.get('PYTHONPATH', '')]
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv('AUTOFOCUS_FAKE_V4L2', str(config))
    return pathlib.Path(str(config) + '.calls')


def test_focus_goals_with_the_camera_turning_its_own_lens(ros, node_process, tmp_path,
                                                          monkeypatch):
    calls_file = fake_uvc_camera(tmp_path, monkeypatch)
    # The "foreign driver": the lens simulator under another name, its blur following
    # focus_motor/state as a real lens follows focus_absolute.
    node_process('autofocus', 'lens_simulator', node_name='webcam', params={
        'focus_position': FOCUS_POSITION, 'blur_per_unit': 0.1, 'frame_id': 'webcam',
        # Small frames: a loaded machine renders them in time, so frames show the lens
        # where the state messages say it is.
        'width': 320, 'height': 240})
    params = yaml.safe_load(AUTOFOCUS_YAML.read_text())
    params['/**/focus_server']['ros__parameters'].update(
        range_min=0.0, range_max=250.0, coarse_step=25.0, fine_step=FINE_STEP,
        sweep_step=10.0, climb_step=20.0, climb_min_step=FINE_STEP,
        # The simulator learns where the lens is from state messages, which a loaded machine
        # delivers late; frames counted well after rest show the lens at rest.
        settle_time=0.5)
    params_file = tmp_path / 'autofocus.yaml'
    params_file.write_text(yaml.safe_dump(params))
    bringup = node_process('autofocus', 'bringup', ros=False, args=[
        'image_topic:=/webcam/image_raw', 'camera_source:=/dev/video0', 'use_sim:=false',
        'focus_control:=camera', f'params_file:={params_file}'])
    states = ros.collect(MotorState, 'focus_motor/state', 100)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics', 100)
    commands = ros.node.create_publisher(MotorCommand, 'focus_motor/command', 10)
    action = FocusAction(ros)
    assert action.wait_for_server(60.0), bringup.log()
    assert wait_for(lambda: states, 30.0), bringup.log()
    assert (states[-1].min_position, states[-1].max_position) == (0.0, 250.0)
    assert states[-1].position_measured

    def sharpness_at(position):
        sequence = 9_000_000 + len(states)
        commands.publish(MotorCommand(mode=MotorCommand.MODE_ABSOLUTE, target=position,
                                      sequence=sequence))
        state = wait_for(lambda: next((s for s in reversed(states) if not s.moving
                                       and s.last_command_sequence == sequence), None), 10.0)
        assert state and state.position == position, bringup.log()
        after = stamp_ns(state.stationary_since) + 500_000_000
        value = wait_for(lambda: next((m.sharpness for m in metrics
                                       if stamp_ns(m.header.stamp) >= after), None), 10.0)
        assert value is not None, bringup.log()
        return value

    # The simulator (another process) follows focus_motor/state only once discovery has
    # matched it with lens_motor: wait until its frames show the lens, sharp at the focus.
    assert wait_for(lambda: sharpness_at(FOCUS_POSITION) > 2.0 * sharpness_at(0.0), 60.0,
                    interval=0.1), bringup.log()

    for strategy in ('coarse_fine', 'sweep', 'hill_climb'):
        handle = action.send(Focus.Goal(strategy=strategy))
        assert handle.accepted, bringup.log()
        response = action.result(handle, 120.0)
        result = response.result
        assert response.status == GoalStatus.STATUS_SUCCEEDED, (strategy, result.error_msg)
        assert abs(result.final_position - FOCUS_POSITION) <= 2 * FINE_STEP, (strategy, result)
        assert wait_for(lambda: not states[-1].moving, 10.0)
        assert abs(states[-1].position - result.final_position) <= FINE_STEP / 2

    bringup.interrupt(timeout=20.0)
    calls = [json.loads(line)[1:] for line in calls_file.read_text().splitlines()]
    sets = [call for call in calls if call[0] == 'set']
    assert sets[0] == ['set', 'focus_automatic_continuous', False]  # AF off before moving
    moves = [value for _, name, value in sets if name == 'focus_absolute']
    assert moves and all(0 <= value <= 250 and value % 5 == 0 for value in moves)
    assert sets[-1] == ['set', 'focus_automatic_continuous', True]  # the user's AF restored
    assert calls[-1] == ['close']
