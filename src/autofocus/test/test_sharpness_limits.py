"""The sharpness node, as a separate process over DDS, against hostile frames: a PNG bomb
on the compressed transport is dropped from its header without the memory to decode it,
and raw frames with bad header fields are dropped and counted by reason."""
import pathlib
import time

import cv2
from autofocus_interfaces.msg import FocusMetrics
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import image_msg, textured_frame, wait_for
from sensor_msgs.msg import CompressedImage, Image
from test_image_encodings import png_bomb

# The node's peak resident memory must stay far below what decoding the bomb takes
# (32768^2 grey = 1 GiB; 1.4-1.5 GiB was measured before the header check).
PEAK_MEMORY_LIMIT = 700 * 2**20


def peak_memory(pid):
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
    raise AssertionError('no VmHWM')


def drop_counts(diagnostics):
    """The newest sharpness status's counters, {key: int}."""
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.endswith(': sharpness'):
                return {kv.key: int(kv.value) for kv in status.values}
    return {}


def send_until(publisher, msg, condition, tries=20):
    # Best effort: resend until the node has seen it, as a camera keeps sending.
    for _ in range(tries):
        publisher.publish(msg)
        if wait_for(condition, 1.0):
            return True
    return False


def test_a_png_bomb_is_dropped_without_the_memory_to_decode_it(ros, node_process):
    process = node_process('autofocus', 'sharpness', params={
        'image_transport': 'compressed', 'diagnostics_period': 0.2})
    publisher = ros.node.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                          qos_profile_sensor_data)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_for(lambda: publisher.get_subscription_count() > 0, 30.0), process.log()

    bomb = CompressedImage(format='mono8; png compressed mono8', data=png_bomb())
    sent = time.monotonic()
    assert send_until(publisher, bomb,
                      lambda: drop_counts(diagnostics).get('dropped_too_large', 0) >= 1), \
        process.log()
    peak = peak_memory(process.popen.pid)
    print(f'PNG bomb ({len(bomb.data)} bytes, 32768x32768): dropped as too_large '
          f'{time.monotonic() - sent:.2f} s after the first send; node peak memory '
          f'{peak / 2**20:.0f} MiB')
    assert peak < PEAK_MEMORY_LIMIT, peak
    assert '32768x32768' in process.log(), process.log()

    # Still measuring real frames afterwards.
    jpeg = CompressedImage(format='bgr8; jpeg compressed bgr8',
                           data=cv2.imencode('.jpg', textured_frame(640, 480))[1].tobytes())
    assert send_until(publisher, jpeg, lambda: len(metrics) > 0), process.log()
    assert process.alive()


def test_bad_raw_headers_are_dropped_and_counted_by_reason(ros, node_process):
    process = node_process('autofocus', 'sharpness', params={
        'diagnostics_period': 0.2, 'max_pixels': 320 * 240})
    publisher = ros.node.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_for(lambda: publisher.get_subscription_count() > 0, 30.0), process.log()

    one_pixel = image_msg(textured_frame(1, 1), 1)
    bigendian = image_msg(textured_frame(160, 120), 2)
    bigendian.is_bigendian = 7
    short_step = image_msg(textured_frame(160, 120), 3)
    short_step.step = 160 * 3 - 1
    too_large = image_msg(textured_frame(320, 241), 4)     # one row over max_pixels
    cases = [(one_pixel, 'dropped_too_small'), (bigendian, 'dropped_bad_header'),
             (short_step, 'dropped_size_mismatch'), (too_large, 'dropped_too_large')]
    for msg, key in cases:   # one at a time: the node keeps only the newest frame
        assert send_until(publisher, msg, lambda: drop_counts(diagnostics).get(key, 0) >= 1), \
            (key, drop_counts(diagnostics), process.log())
    counts = drop_counts(diagnostics)
    assert counts['frames_dropped'] == sum(counts[key] for _, key in cases), counts
    assert metrics == []

    assert send_until(publisher, image_msg(textured_frame(320, 240), 5),
                      lambda: len(metrics) > 0), process.log()
    assert (metrics[-1].image_width, metrics[-1].image_height) == (320, 240)
