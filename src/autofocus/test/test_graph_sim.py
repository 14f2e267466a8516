"""The whole graph, started by the pip-only bringup (composed, or a process per node), simulated
lens."""
import pathlib
import time

import pytest
import yaml
from action_msgs.msg import GoalStatus
from autofocus_interfaces.action import Focus
from autofocus_interfaces.msg import FocusMetrics, MotorCommand, MotorState
from ros_helpers import FocusAction, stamp_ns, wait_for

pytestmark = pytest.mark.graph

# How long a condition may take to come true on a loaded 2-core machine. wait_for returns as
# soon as it holds, so a generous bound costs nothing when the machine is idle.
LOADED = 60.0
SIM_YAML = pathlib.Path(__file__).resolve().parents[1] / 'config' / 'sim.yaml'
AUTOFOCUS_YAML = pathlib.Path(__file__).resolve().parents[1] / 'config' / 'autofocus.yaml'
FINE_STEP = yaml.safe_load(AUTOFOCUS_YAML.read_text())['/**/focus_server']['ros__parameters'][
    'fine_step']


class Graph:
    def __init__(self, ros, node_process, tmp_path, namespace='', compose='true', server=None,
                 **lens):
        config = yaml.safe_load(SIM_YAML.read_text())
        config['/**/camera']['ros__parameters'].update(lens)
        sim_params = tmp_path / 'sim.yaml'
        sim_params.write_text(yaml.safe_dump(config))
        args = ['use_sim:=true', f'sim_params_file:={sim_params}', f'namespace:={namespace}',
                f'compose:={compose}']
        if server:  # focus_server parameters changed from the shipped autofocus.yaml
            params = yaml.safe_load(AUTOFOCUS_YAML.read_text())
            params['/**/focus_server']['ros__parameters'].update(server)
            params_file = tmp_path / 'autofocus.yaml'
            params_file.write_text(yaml.safe_dump(params))
            args.append(f'params_file:={params_file}')
        self.process = node_process('autofocus', 'bringup', ros=False, args=args)
        prefix = f'/{namespace}/' if namespace else ''
        self.action = FocusAction(ros, prefix + 'focus')
        self.states = ros.collect(MotorState, prefix + 'focus_motor/state', qos=100)
        self.commands = ros.node.create_publisher(MotorCommand, prefix + 'focus_motor/command',
                                                  10)
        self.clock = ros.node.get_clock()
        metrics = ros.collect(FocusMetrics, prefix + 'sharpness/metrics', qos=10)
        assert self.action.wait_for_server(LOADED), self.process.log()
        assert wait_for(lambda: self.states, LOADED), self.process.log()
        # Frames measured before the first goal: a goal sent while the camera still starts
        # ends NO_FRAMES after frame_timeout (2 s), rightly, but that is not under test here.
        assert wait_for(lambda: len(metrics) >= 2, LOADED), self.process.log()

    def move_motor_to(self, position):
        assert wait_for(lambda: self.commands.get_subscription_count() > 0, LOADED)
        clock = self.clock
        sequence = 7_000_000 + int(position)

        def send_move():
            command = MotorCommand(mode=MotorCommand.MODE_ABSOLUTE, target=position,
                                   sequence=sequence)
            command.header.stamp = clock.now().to_msg()
            self.commands.publish(command)
            return time.monotonic() + 1.0

        # Sent again each second until the driver has acted on it, as the focus server
        # does: this publisher sees the driver's reader before that reader has matched it,
        # and a command sent in between is lost (seen: the lens never left its position).
        resend_at = send_move()

        def arrived():
            nonlocal resend_at
            # The driver stops any motion its commander stops renewing (watchdog_timeout).
            keepalive = MotorCommand(mode=MotorCommand.MODE_KEEPALIVE)
            keepalive.header.stamp = clock.now().to_msg()
            self.commands.publish(keepalive)
            last = self.states[-1]
            if last.last_command_sequence != sequence and time.monotonic() >= resend_at:
                resend_at = send_move()
            return abs(last.position - position) < 1e-6 and not last.moving
        assert wait_for(arrived, LOADED), self.states[-1]

    def focus(self, goal=None, timeout=60.0):
        try:
            handle = self.action.send(goal or Focus.Goal())
        except AssertionError as error:
            raise AssertionError(f'{error}\n{self.process.log()}') from None
        assert handle.accepted, self.process.log()
        return self.action.result(handle, timeout)


@pytest.mark.parametrize('focus_position, compose', [(287.0, 'true'), (655.0, 'false')])
def test_coarse_fine_focuses_within_one_fine_step_from_any_start(
        ros, node_process, tmp_path, focus_position, compose):
    graph = Graph(ros, node_process, tmp_path, compose=compose, focus_position=focus_position)
    for start in (0.0, 480.0, 1000.0):
        graph.move_motor_to(start)
        response = graph.focus()  # the empty goal: configured defaults, coarse_fine
        result = response.result
        assert response.status == GoalStatus.STATUS_SUCCEEDED, result.error_msg
        assert result.success and result.strategy == 'coarse_fine'
        # The visited curve first: a failure report keeps only its last 6000 characters.
        curve = ' '.join(f'{p:.0f}:{v:.4g}' for p, v in zip(result.positions, result.sharpness))
        assert abs(result.final_position - focus_position) <= FINE_STEP, (
            f'from {start:g}: ended at {result.final_position:.2f}, '
            f'{abs(result.final_position - focus_position):.2f} from the focus, after '
            f'{result.frames_used} frames; visited (position:sharpness) {curve}\n'
            f'log (end):\n{graph.process.log()[-3000:]}')
        # The motor really is there, at rest.
        # (the state that says so may arrive just after the result)
        assert wait_for(lambda: abs(graph.states[-1].position - result.final_position) < 1e-6
                        and not graph.states[-1].moving, LOADED), graph.states[-1]
        assert len(result.positions) == len(result.sharpness) > 10
        assert max(result.sharpness) > 2 * min(result.sharpness)
        assert result.frames_used >= len(result.positions)
    assert graph.action.feedback, 'no feedback was published'
    assert {fb.phase for fb in graph.action.feedback} >= {'coarse', 'fine'}


def test_cancel_mid_run_stops_the_motor_and_a_second_goal_is_refused(
        ros, node_process, tmp_path):
    # The goal must still be running when it is canceled: on a loaded machine frames can
    # take longer than the shipped frame_timeout (2 s), which would abort it first.
    graph = Graph(ros, node_process, tmp_path, focus_position=500.0,
                  server={'frame_timeout': LOADED / 2, 'move_timeout': LOADED / 2})
    graph.move_motor_to(0.0)
    handle = graph.action.send(Focus.Goal(strategy='sweep'))
    assert handle.accepted
    assert wait_for(lambda: len(graph.action.feedback) >= 3, LOADED)
    # One goal at a time.
    assert not graph.action.send(Focus.Goal()).accepted
    cancel = handle.cancel_goal_async()
    assert wait_for(cancel.done, LOADED)
    response = graph.action.result(handle, LOADED)
    ended_ns = time.time_ns()
    assert response.status == GoalStatus.STATUS_CANCELED
    assert response.result.error_code == Focus.Result.CANCELED
    # States may arrive late on a loaded machine, and a sweep rests between its steps (seen:
    # 10 late states of the rest at 75 taken for the stop, then the earlier move to 100):
    # judged by the driver's stamps, the motor has stopped once the states it published
    # after the goal ended show rest at one position 10 times in a row.
    def at_rest():
        last = [s for s in graph.states if stamp_ns(s.header.stamp) > ended_ns][-10:]
        return len(last) == 10 and not any(s.moving for s in last) \
            and len({s.position for s in last}) == 1
    assert wait_for(at_rest, LOADED), graph.states[-10:]
    stopped_at = graph.states[-1].position
    count = len(graph.states)
    assert wait_for(lambda: len(graph.states) > count + 20, LOADED)  # state keeps coming...
    assert {s.position for s in graph.states[count:]} == {stopped_at}  # ...the lens stays put
    assert stopped_at < 1000.0


def test_featureless_scene_aborts_without_claiming_focus(ros, node_process, tmp_path):
    # In a namespace: the YAML's /**/ keys must still reach every node, or the
    # lens would show the default textured scene and this goal would succeed.
    # A loaded machine can delay the first frames past the shipped frame_timeout (2 s):
    # that would end the goal as NO_FRAMES before the scene is judged.
    graph = Graph(ros, node_process, tmp_path, namespace='bench2', scene='flat',
                  server={'frame_timeout': LOADED / 2, 'move_timeout': LOADED / 2})
    response = graph.focus(Focus.Goal(timeout=2 * LOADED), timeout=3 * LOADED)
    assert response.status == GoalStatus.STATUS_ABORTED
    assert not response.result.success
    # No texture above the noise in any frame (the sharpness node's signal figures).
    assert response.result.error_code == Focus.Result.NO_SIGNAL, response.result.error_msg
    assert 'no signal' in response.result.error_msg


def test_focus_client_shows_progress_prints_the_result_and_saves_the_curve(
        ros, node_process, tmp_path):
    import cv2
    graph = Graph(ros, node_process, tmp_path, focus_position=700.0)
    png = tmp_path / 'curve.png'
    client = node_process('autofocus', 'focus_client', ros=False,
                          args=['--strategy', 'sweep', '--range', '500', '900',
                                '--plot', str(png)])
    assert client.popen.wait(60) == 0, client.log() + graph.process.log()
    output = client.log()
    assert output.count(' sweep  position ') >= 10          # progress, one line per sample
    assert 'SUCCEEDED' in output and 'success: True' in output
    final = float(output.split('final position:')[1].split()[0])
    assert abs(final - 700.0) <= 25.0                          # sweep_step
    picture = cv2.imread(str(png))
    assert picture is not None and picture.shape[0] > 200 and picture.shape[1] > 300


def test_focus_client_explains_a_bad_goal_without_sending_it(node_process):
    client = node_process('autofocus', 'focus_client', ros=False,
                          args=['--range', '900', '100', '--wait', '1'])
    assert client.popen.wait(30) == 2
    assert 'invalid goal: empty position range' in client.log()


def test_hill_climb_focuses_with_relative_moves_only(ros, node_process, tmp_path):
    graph = Graph(ros, node_process, tmp_path, focus_position=540.0)
    graph.move_motor_to(430.0)
    commands = ros.collect(MotorCommand, 'focus_motor/command', qos=100)
    response = graph.focus(Focus.Goal(strategy='hill_climb'))
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.error_msg
    assert abs(response.result.final_position - 540.0) <= 25.0   # 5 x climb_min_step
    # Keepalives and the stop that confirms contact at the start move nothing.
    modes = {c.mode for c in commands} - {MotorCommand.MODE_KEEPALIVE, MotorCommand.MODE_STOP}
    assert modes == {MotorCommand.MODE_RELATIVE}, modes        # a DC motor can follow it


def test_flyby_scans_while_the_lens_moves_and_focuses_near_the_simulators_focus(
        ros, node_process, tmp_path):
    # Small frames and a moderate sweep speed: frames land a few units apart even when a
    # loaded machine renders far below 30 fps (a stream too sparse would fall back to a
    # stop-and-go scan, which the assertions below would catch).
    graph = Graph(ros, node_process, tmp_path, focus_position=613.0, width=320, height=240,
                  server={'flyby_speed': 250.0, 'flyby_exposure_offset': 0.005,
                          'frame_timeout': LOADED / 2, 'move_timeout': LOADED / 2})
    graph.move_motor_to(300.0)
    for goal in range(2):             # the second starts where the first focused
        response = graph.focus(Focus.Goal(strategy=Focus.Goal.STRATEGY_FLYBY,
                                          timeout=2 * LOADED), timeout=3 * LOADED)
        result = response.result
        assert response.status == GoalStatus.STATUS_SUCCEEDED, (result.error_msg,
                                                                graph.process.log())
        assert result.success and result.strategy == 'flyby'
        assert abs(result.final_position - 613.0) <= FINE_STEP, (result, graph.process.log())
        # The stream: frames placed at positions between the rest positions, in the
        # order the lens passed them, far more of them than a coarse scan's 11. First
        # the sweep to the pass's start (the nearer end), streamed too, then the pass.
        start = 0.0 if goal == 0 else 1000.0
        end = 1000.0 - start
        positions = list(result.positions)
        turn = min(range(len(positions) // 2), key=lambda i: abs(positions[i] - start))
        assert abs(positions[turn] - start) <= 50.0, positions
        approach = positions[:turn + 1]
        assert all(abs(b - start) <= abs(a - start) + 1e-6
                   for a, b in zip(approach, approach[1:])), positions
        stream = [p for p in positions[turn + 1:] if min(start, end) < p < max(start, end)]
        assert len(stream) > 30, result.positions
        moving_away = [abs(b - start) >= abs(a - start) - 1e-6
                       for a, b in zip(stream[:len(stream) // 2], stream[1:len(stream) // 2])]
        assert all(moving_away), result.positions
        assert result.frames_used >= len(result.positions)
    assert 'flyby' in {fb.phase for fb in graph.action.feedback}
