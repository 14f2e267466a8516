"""The sharpness node as a separate process, fed and read over real DDS."""
import numpy as np
import pytest
from autofocus_interfaces.msg import FocusMetrics
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import image_msg, stamp_ns, textured_frame, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import Float64

from autofocus.core import measures
from autofocus.io.image_codec import image_array, to_gray

ROI = (0.25, 0.25, 0.5, 0.5)
DOWNSAMPLE = measures.DEFAULT_DOWNSAMPLE     # the node's defaults
PRIMARY = measures.DEFAULT_MEASURE
PARAMS = {'downsample': DOWNSAMPLE, 'diagnostics_period': 0.2}


@pytest.fixture
def sharpness(ros, node_process):
    process = node_process('autofocus', 'sharpness', params=PARAMS)
    publisher = ros.node.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics')
    plain = ros.collect(Float64, 'sharpness')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_for(lambda: publisher.get_subscription_count() > 0
                    and ros.node.count_publishers('sharpness/metrics') > 0, 15.0), process.log()

    class Fixture:
        pass
    fixture = Fixture()
    fixture.process, fixture.metrics, fixture.plain = process, metrics, plain
    fixture.diagnostics = diagnostics

    def send(msg, expect_metrics=True):
        before = len(metrics)
        # Best-effort delivery: resend until measured, as a camera would keep sending.
        for _ in range(50):
            publisher.publish(msg)
            if not expect_metrics or wait_for(lambda: len(metrics) > before, 0.2):
                break
        return metrics[-1] if expect_metrics and len(metrics) > before else None
    fixture.send = send
    return fixture


def expected_values(msg, names):
    gray = to_gray(image_array(msg), msg.encoding)
    return measures.compute(gray, names, ROI, DOWNSAMPLE)


def test_publishes_every_measure_with_the_image_stamp(sharpness):
    msg = image_msg(textured_frame(640, 480, seed=3), 1_700_000_000_123_456_789)
    metrics = sharpness.send(msg)
    assert metrics is not None, sharpness.process.log()
    assert stamp_ns(metrics.header.stamp) == 1_700_000_000_123_456_789
    assert metrics.header.frame_id == 'camera'
    assert (metrics.roi.x_offset, metrics.roi.y_offset, metrics.roi.width,
            metrics.roi.height) == (160, 120, 320, 240)
    expected = expected_values(msg, list(metrics.names))
    assert set(metrics.names) >= {'laplacian_variance', 'tenengrad', 'normalized_variance',
                                  'brenner'}
    for name, value in zip(metrics.names, metrics.values):
        assert value == pytest.approx(expected[name], rel=1e-6), name
    assert metrics.sharpness == pytest.approx(expected[PRIMARY], rel=1e-6)
    # The absolute signal floor's figures follow the measures (the focus server's NO_SIGNAL).
    assert list(metrics.names[-2:]) == ['signal_level', 'signal_snr']
    assert wait_for(lambda: sharpness.plain, 2.0)
    assert sharpness.plain[-1].data == pytest.approx(metrics.sharpness)


def test_sharper_image_scores_higher(sharpness):
    sharp = sharpness.send(image_msg(textured_frame(640, 480, seed=5), 1))
    blurred = sharpness.send(image_msg(textured_frame(640, 480, seed=5, blur=3), 2))
    assert sharp.sharpness > 3 * blurred.sharpness


def test_every_encoding_and_a_resolution_change(sharpness):
    frame = textured_frame(320, 240, seed=7)
    gray = frame[:, :, 1].copy()
    cases = [
        (frame, 'bgr8'), (np.ascontiguousarray(frame[:, :, ::-1]), 'rgb8'),
        (np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)]), 'bgra8'),
        (np.dstack([frame[:, :, ::-1], np.full(frame.shape[:2], 255, np.uint8)]), 'rgba8'),
        (gray, 'mono8'), ((gray.astype(np.uint16) * 257), 'mono16'),
        (textured_frame(1280, 720, seed=8), 'bgr8'), (textured_frame(64, 48, seed=9), 'bgr8'),
    ]
    for i, (pixels, encoding) in enumerate(cases):
        msg = image_msg(pixels, 10 + i, encoding)
        metrics = sharpness.send(msg)
        assert metrics is not None, (encoding, sharpness.process.log())
        assert (metrics.image_width, metrics.image_height) == pixels.shape[1::-1]
        assert metrics.sharpness == pytest.approx(
            expected_values(msg, [PRIMARY])[PRIMARY], rel=1e-5)


def test_malformed_images_are_dropped_counted_and_survived(sharpness):
    good = image_msg(textured_frame(160, 120, seed=1), 100)
    assert sharpness.send(good) is not None
    bad = [image_msg(textured_frame(160, 120), 101), image_msg(textured_frame(160, 120), 102),
           image_msg(textured_frame(160, 120), 103)]
    bad[0].data = bad[0].data[:-7]          # truncated
    bad[1].encoding = 'nv12'                # unsupported (not a ROS encoding)
    bad[2].width = bad[2].height = 0        # zero size
    bad[2].step = 0
    bad[2].data = b''

    def dropped():
        for array in reversed(sharpness.diagnostics):
            for status in array.status:
                if status.name.startswith('/sharpness'):
                    return int({kv.key: kv.value for kv in status.values}['frames_dropped'])
        return 0
    # One at a time: the node keeps only the newest frame (depth 1), so a burst
    # would be one frame to it.
    for count, msg in enumerate(bad, start=1):
        for _ in range(10):
            sharpness.send(msg, expect_metrics=False)
            if wait_for(lambda: dropped() >= count, 1.0):
                break
    assert dropped() == 3, sharpness.process.log()
    assert sharpness.send(image_msg(textured_frame(160, 120, seed=2), 104)) is not None
    assert sharpness.process.alive()
    log = sharpness.process.log()
    assert 'data length' in log and "unsupported encoding 'nv12'" in log


def test_roi_can_change_at_run_time_and_a_bad_one_is_refused(ros, sharpness):
    client = ros.node.create_client(SetParameters, 'sharpness/set_parameters')
    assert client.wait_for_service(timeout_sec=5.0)

    def set_roi(x, y, w, h):
        parameters = [Parameter(name=n, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=v))
            for n, v in zip(('roi_x', 'roi_y', 'roi_width', 'roi_height'), (x, y, w, h))]
        future = client.call_async(SetParameters.Request(parameters=parameters))
        assert wait_for(future.done, 5.0)
        return future.result().results

    results = set_roi(0.9, 0.0, 0.5, 0.5)
    assert not results[0].successful and 'ROI' in results[0].reason
    assert all(r.successful for r in set_roi(0.0, 0.0, 0.25, 0.5))
    metrics = sharpness.send(image_msg(textured_frame(640, 480), 200))
    assert (metrics.roi.x_offset, metrics.roi.width, metrics.roi.height) == (0, 160, 240)


def test_bad_parameter_stops_startup_with_a_message(node_process):
    process = node_process('autofocus', 'sharpness', params={'primary_measure': 'sharpiness'})
    assert process.popen.wait(20) == 2
    assert "primary_measure' is 'sharpiness'" in process.log()
    assert 'Traceback' not in process.log()


def test_compressed_transport_measures_jpeg_frames_and_drops_broken_ones(ros, node_process):
    from sensor_msgs.msg import CompressedImage

    from autofocus.io.image_codec import fill_compressed_msg
    process = node_process('autofocus', 'sharpness',
                           params={**PARAMS, 'image_transport': 'compressed'})
    publisher = ros.node.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                          qos_profile_sensor_data)
    metrics = ros.collect(FocusMetrics, 'sharpness/metrics')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_for(lambda: publisher.get_subscription_count() > 0, 15.0), process.log()

    def send(frame, stamp, cut=0):
        msg = fill_compressed_msg(CompressedImage(), frame, 95)
        msg.header.stamp.sec, msg.header.frame_id = stamp, 'camera'
        if cut:
            msg.data = bytes(msg.data[:-cut])
        before = len(metrics)
        for _ in range(50):
            publisher.publish(msg)
            if wait_for(lambda: len(metrics) > before
                        or (cut and 'truncated JPEG' in process.log()), 0.2):
                break
        return metrics[-1] if len(metrics) > before else None

    sharp = send(textured_frame(640, 480, seed=5), 1)
    blurred = send(textured_frame(640, 480, seed=5, blur=3), 2)
    assert sharp is not None and blurred is not None, process.log()
    assert stamp_ns(sharp.header.stamp) == 1_000_000_000
    assert (sharp.image_width, sharp.image_height) == (640, 480)
    assert (sharp.roi.x_offset, sharp.roi.width) == (160, 320)
    assert sharp.sharpness > 3 * blurred.sharpness
    # Close to the raw frame's value: JPEG at quality 95 keeps the detail that matters.
    raw = expected_values(image_msg(textured_frame(640, 480, seed=5), 1),
                          [PRIMARY])[PRIMARY]
    assert sharp.sharpness == pytest.approx(raw, rel=0.25)
    # The JPEG's own bytes over the ROI's MCU rows, read without a decode, ride along.
    from autofocus.io import jpeg_bytes
    encoded = fill_compressed_msg(CompressedImage(), textured_frame(640, 480, seed=5), 95)
    assert dict(zip(sharp.names, sharp.values))[jpeg_bytes.JPEG_BYTES] == pytest.approx(
        jpeg_bytes.jpeg_bytes(encoded.data, (160, 120, 320, 240))[0])
    # (These tiles are constant on JPEG's 8x8 blocks: cheap to code sharp, dearer blurred.
    # A natural scene codes the other way round.)
    from autofocus.core import lens_sim
    lens = lens_sim.LensSimulator(lens_sim.LensConfig())
    in_focus, out_of_focus = (dict(zip(m.names, m.values))[jpeg_bytes.JPEG_BYTES] for m in (
        send(lens.render(500.0), 5), send(lens.render(560.0), 6)))
    assert in_focus > 1.2 * out_of_focus     # quality 95 also spends bytes on the noise

    assert send(textured_frame(640, 480, seed=6), 3, cut=500) is None
    assert wait_for(lambda: any(
        kv.key == 'frames_dropped' and int(kv.value) >= 1
        for array in diagnostics for status in array.status for kv in status.values), 5.0)
    assert send(textured_frame(640, 480, seed=7), 4) is not None
    assert 'truncated JPEG' in process.log()
