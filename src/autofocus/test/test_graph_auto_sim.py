"""use_sim:=auto says why it simulates (no camera at the configured source) and how to use
a real one, in the plan and in bringup's output."""
import yaml
from ros_helpers import wait_for

from autofocus.tools import graph


def share(package):
    return f'/nonexistent/share/{package}'


def test_auto_without_the_device_says_why_and_how_to_use_a_real_camera():
    arguments = graph.resolve_arguments({'camera_source': '/dev/video-not-here'})
    notice = graph.simulation_notice(arguments, share)
    assert "no camera at source '/dev/video-not-here'" in notice
    assert 'SIMULATED' in notice and 'camera_source:=' in notice and 'use_sim:=false' in notice
    assert graph.plan(arguments, share)[0].arguments == ('--simulate',)


def test_an_index_names_its_device():
    arguments = graph.resolve_arguments({'camera_source': '57'})
    assert '/dev/video57 is not present' in graph.simulation_notice(arguments, share)


def test_no_notice_when_the_choice_is_explicit_or_the_source_is_there(tmp_path):
    for use_sim in ('true', 'false'):
        arguments = graph.resolve_arguments({'use_sim': use_sim,
                                             'camera_source': '/dev/video-not-here'})
        assert graph.simulation_notice(arguments, share) == ''
    video = tmp_path / 'clip.avi'
    video.write_bytes(b'')
    for source in (str(video), 'http://127.0.0.1:9/stream.mjpg'):
        arguments = graph.resolve_arguments({'camera_source': source})
        assert graph.simulation_notice(arguments, share) == ''
        assert graph.plan(arguments, share)[0].arguments == ()


def test_the_params_files_source_is_the_one_looked_for(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump(
        {'/**/camera': {'ros__parameters': {'source': '/dev/video-from-params'}}}))
    arguments = graph.resolve_arguments({'params_file': str(params)})
    assert "'/dev/video-from-params'" in graph.simulation_notice(arguments, share)
    params.write_text(yaml.safe_dump(
        {'/**/camera': {'ros__parameters': {'source': 'rtsp://127.0.0.1:9/cam'}}}))
    assert graph.simulation_notice(arguments, share) == ''
    assert graph.plan(arguments, share)[0].arguments == ()


def test_bringup_prints_the_notice(node_process):
    bringup = node_process('autofocus', 'bringup', ros=False, args=[
        'use_sim:=auto', 'camera_source:=/dev/video-not-here', 'launch_motor:=false'])
    assert wait_for(lambda: 'SIMULATED' in bringup.log(), 60.0), bringup.log()
    assert "no camera at source '/dev/video-not-here'" in bringup.log()
    assert bringup.interrupt(timeout=30.0) == 0, bringup.log()
