"""Camera node from real video files (OpenCV/FFmpeg decoding), across processes over DDS."""

import cv2
import numpy as np
import pytest
from autofocus_interfaces.msg import FocusMetrics
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import stamp_ns, textured_frame, wait_for
from sensor_msgs.msg import CameraInfo, Image

# How long a condition may take to come true on a loaded 2-core machine (wait_for returns as
# soon as it holds).
LOADED = 60.0


def write_video(path, width, height, frames=60, fps=30.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(textured_frame(width, height, seed=i % 7, blur=(i % 5) * 0.7))
    writer.release()
    return path


def _camera_counts(diagnostics):
    """(frames published, stamp of the last one in ns) from each camera /diagnostics."""
    counts = []
    for array in list(diagnostics):
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(': camera') and 'last_frame_stamp' in values:
                sec, nanosec = values['last_frame_stamp'].split('.')
                counts.append((int(values['frames_published']),
                               int(sec) * 10**9 + int(nanosec)))
    return counts


@pytest.mark.parametrize('width, height', [(640, 480), (1280, 720)])
def test_every_published_frame_reaches_the_sharpness_node(
        ros, node_process, tmp_path, width, height):
    # Counted, not timed: the camera's /diagnostics say how many frames it published up to
    # which stamp; every one of them between two diagnostics must be measured. The node
    # queues frames (image_queue_depth) so a loaded machine delays them instead of dropping
    # them; whether it keeps up with 30 Hz is the pipeline benchmark's figure.
    fps = 30.0
    video = write_video(tmp_path / 'scene.avi', width, height)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics', qos=1000)
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics', qos=100)
    node_process('autofocus', 'sharpness', params={'image_queue_depth': 100})
    camera = node_process('autofocus', 'camera', node_name='camera',
                          params={'source': str(video), 'width': width, 'height': height,
                                  'fps': fps})
    assert wait_for(lambda: len(metrics) >= 15, LOADED), camera.log()
    # A first count taken once frames flow, and a later one at least 90 frames on.
    first = wait_for(lambda: [c for c in _camera_counts(diagnostics)
                              if metrics and c[1] > stamp_ns(metrics[0].header.stamp)], LOADED)
    assert first, camera.log()
    first = first[0]
    later = wait_for(lambda: [c for c in _camera_counts(diagnostics) if c[0] >= first[0] + 90],
                     LOADED)
    assert later, camera.log()
    later = later[0]
    assert wait_for(lambda: any(stamp_ns(m.header.stamp) >= later[1] for m in metrics),
                    LOADED), camera.log()
    window = [m for m in list(metrics) if first[1] < stamp_ns(m.header.stamp) <= later[1]]
    stamps = [stamp_ns(m.header.stamp) for m in window]
    assert len(set(stamps)) == len(stamps) == later[0] - first[0], \
        f'{len(stamps)} frames measured of {later[0] - first[0]} published'
    assert stamps == sorted(stamps)
    assert {(m.image_width, m.image_height) for m in window} == {(width, height)}


def test_unknown_device_is_retried_not_fatal(ros, node_process):
    camera = node_process('autofocus', 'camera', node_name='camera',
                          params={'source': '/dev/video-not-present', 'retry_initial': 0.1,
                                  'retry_max': 0.2})
    assert wait_for(lambda: 'not present' in camera.log(), 10.0), camera.log()
    assert camera.alive()
    assert camera.interrupt() == 0


def test_http_stream_source(ros, node_process, tmp_path):
    """An http:// URL goes through OpenCV's FFmpeg backend (served here on loopback only)."""
    import functools
    import http.server
    import threading
    write_video(tmp_path / 'stream.avi', 320, 240, frames=30)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        images = ros.collect(Image, 'camera/image_raw', qos=qos_profile_sensor_data)
        url = f'http://127.0.0.1:{server.server_address[1]}/stream.avi'
        camera = node_process('autofocus', 'camera', node_name='camera',
                              params={'source': url, 'width': 320, 'height': 240})
        assert wait_for(lambda: len(images) >= 10, 20.0), camera.log()
        assert (images[-1].width, images[-1].height) == (320, 240)
        assert f"stream '{url}' open" in camera.log()
    finally:
        server.shutdown()
        server.server_close()


def test_compressed_images_only_while_someone_subscribes(ros, node_process, tmp_path):
    from sensor_msgs.msg import CompressedImage
    video = write_video(tmp_path / 'scene.avi', 320, 240, frames=10)
    camera = node_process('autofocus', 'camera', node_name='camera',
                          params={'source': str(video), 'width': 320, 'height': 240,
                                  'jpeg_quality': 60})
    infos = ros.collect(CameraInfo, 'camera/camera_info', qos=qos_profile_sensor_data)
    assert wait_for(lambda: len(infos) >= 5, 15.0), camera.log()
    compressed = ros.collect(CompressedImage, 'camera/image_raw/compressed',
                             qos=qos_profile_sensor_data)
    assert wait_for(lambda: len(compressed) >= 3, 10.0), camera.log()
    msg = compressed[-1]
    assert msg.format == 'bgr8; jpeg compressed bgr8'
    frame = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (240, 320, 3)
    # No raw subscriber: raw frames are not even made.
    assert ros.node.count_subscribers('camera/image_raw') == 0
    images = ros.collect(Image, 'camera/image_raw', qos=qos_profile_sensor_data)
    assert wait_for(lambda: len(images) >= 3, 10.0), camera.log()


def test_camera_and_sharpness_composed_in_one_process(ros, node_process, tmp_path):
    video = write_video(tmp_path / 'scene.avi', 640, 480, frames=30)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics', qos=100)
    composed = node_process('autofocus', 'camera_sharpness',
                            params={'source': str(video), 'downsample': 2})
    assert wait_for(lambda: len(metrics) >= 30, 20.0), composed.log()
    assert {(m.image_width, m.image_height) for m in metrics[-20:]} == {(640, 480)}
    names = set(ros.node.get_node_names_and_namespaces())
    assert {('camera', '/'), ('sharpness', '/')} <= names, names
    assert composed.interrupt() == 0
    assert 'Traceback' not in composed.log()
