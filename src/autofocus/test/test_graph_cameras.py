"""The bringup plan for cameras that turn their own lens, and for foreign camera drivers."""
import pytest

from autofocus.tools import graph


def share(package):
    return f'/share/{package}'


def plan(**given):
    return graph.plan(graph.resolve_arguments(given), share)


def names(nodes):
    return [(n.package, n.executable, n.name) for n in nodes]


def test_default_is_still_the_motor_driver():
    nodes = plan(use_sim='false', camera_source='/dev/video0')
    assert ('autofocus_motor', 'motor_driver', 'focus_motor') in names(nodes)
    assert 'lens_motor' not in [n.executable for n in nodes]


def test_v4l2_camera_focus_is_served_by_lens_motor_beside_the_camera():
    nodes = plan(use_sim='false', camera_source='/dev/video2', focus_control='camera')
    assert names(nodes) == [('autofocus', 'camera_sharpness', 'camera'),
                            ('autofocus', 'focus_server', 'focus_server'),
                            ('autofocus', 'lens_motor', 'focus_motor')]
    assert nodes[0].overrides == {'source': '/dev/video2'}
    assert nodes[2].overrides == {'device': '/dev/video2'}
    assert nodes[2].parameter_files == ('/share/autofocus/config/lens.yaml',)
    assert nodes[0].parameter_files == ('/share/autofocus/config/autofocus.yaml',
                                        '/share/autofocus/config/lens.yaml')
    assert nodes[1].overrides == {}  # absolute moves: the configured default strategy


@pytest.mark.parametrize('source', ['gphoto2', 'picamera2', 'picamera2:1'])
def test_single_process_cameras_serve_their_own_lens(source):
    nodes = plan(camera_source=source, focus_control='camera', compose='false')
    assert names(nodes) == [('autofocus', 'camera', 'camera'),
                            ('autofocus', 'sharpness', 'sharpness'),
                            ('autofocus', 'focus_server', 'focus_server')]
    assert nodes[0].overrides == {'source': source}
    strategy = nodes[2].overrides.get('default_strategy')
    assert strategy == ('hill_climb' if source == 'gphoto2' else None)


def test_camera_focus_refuses_sources_without_a_focus_control_and_missing_cameras():
    with pytest.raises(ValueError, match="'rtsp://cam/stream' has no focus control"):
        plan(camera_source='rtsp://cam/stream', focus_control='camera')
    with pytest.raises(ValueError, match="needs a real camera: camera_source '/dev/video77'"):
        plan(camera_source='/dev/video77', focus_control='camera')


def test_image_topic_replaces_our_camera_node_and_remaps_sharpness():
    nodes = plan(image_topic='/usb_cam/image_raw/', use_sim='false')
    assert names(nodes) == [('autofocus', 'sharpness', 'sharpness'),
                            ('autofocus', 'focus_server', 'focus_server'),
                            ('autofocus_motor', 'motor_driver', 'focus_motor')]
    assert nodes[0].remappings == (('camera/image_raw', '/usb_cam/image_raw'),
                                   ('camera/image_raw/compressed',
                                    '/usb_cam/image_raw/compressed'))
    # The web page shows the same driver's frames.
    web = plan(image_topic='/usb_cam/image_raw/', use_sim='false', web='true')[-2]
    assert web.executable == 'web' and web.remappings == nodes[0].remappings
    # A foreign V4L2 driver's camera can still have its lens turned by us.
    nodes = plan(image_topic='/image_raw', camera_source='/dev/video9', focus_control='camera')
    assert names(nodes)[-1] == ('autofocus', 'lens_motor', 'focus_motor')
