"""Sharpness node: focus measures on a region of interest of every image.

Subscribes  camera/image_raw     sensor_msgs/Image (sensor-data QoS, newest frame only)
            or camera/image_raw/compressed  sensor_msgs/CompressedImage, with
            image_transport:=compressed (JPEG/PNG, image_transport's layout)
Publishes   sharpness            std_msgs/Float64, the primary measure (rqt_plot /sharpness/data)
            sharpness/metrics    autofocus_interfaces/FocusMetrics, stamped with the image's stamp
            /diagnostics         frames measured and dropped, drops by reason (dropped_too_large,
                                 dropped_too_small, dropped_bad_header, ...)
Accepts every encoding cv_bridge converts (bgr8, mono16, yuv422, bayer_*, 32FC1, ...).
Frames above `max_pixels` are dropped from their header, before any decode.
With the compressed transport and a JPEG, FocusMetrics also carries `jpeg_bytes`:
the entropy-coded bytes per pixel of the ROI's MCU rows (of the frame when the JPEG
has no restart markers), read without decoding (io/jpeg_bytes.py).
The ROI, downsample and measures can change at run time (the focus server
sets the ROI a goal asks for).
"""
import collections
import math
import sys
import re
import time

from autofocus_interfaces.msg import FocusMetrics
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Float64

from autofocus.core import measures
from autofocus.io import image_codec, jpeg_bytes
from autofocus.nodes.node_tools import IMAGE_QOS, ConfigError, declare, run_node

DROP_LOG_PERIOD = 5.0  # seconds between two warnings about the same kind of bad image
TRANSPORTS = ('raw', 'compressed')


class SharpnessNode(Node):

    def __init__(self, **kwargs):
        super().__init__('sharpness', **kwargs)
        roi = measures.DEFAULT_ROI
        declare(self, 'roi_x', roi[0], 'ROI left edge, as a fraction of the image width',
                low=0.0, high=1.0)
        declare(self, 'roi_y', roi[1], 'ROI top edge, as a fraction of the image height',
                low=0.0, high=1.0)
        declare(self, 'roi_width', roi[2], 'ROI width, as a fraction of the image width',
                low=0.0, high=1.0)
        declare(self, 'roi_height', roi[3], 'ROI height, as a fraction of the image height',
                low=0.0, high=1.0)
        declare(self, 'downsample', measures.DEFAULT_DOWNSAMPLE,
                'Shrink the ROI by this integer factor (area average) before measuring: '
                'cheaper, and lowers the noise floor of the Laplacian-type measures, but '
                'moves the peak on real lenses (docs/measures.md); normalized_vollath_f4 '
                'cancels white noise and needs none', low=1, high=16)
        declare(self, 'measures', list(measures.MEASURES),
                'Focus measures computed for every image and published in sharpness/metrics')
        declare(self, 'primary_measure', measures.DEFAULT_MEASURE,
                'The measure published alone on the sharpness topic',
                choices=list(measures.MEASURES))
        declare(self, 'diagnostics_period', 1.0, 'Seconds between /diagnostics messages',
                low=0.1, high=60.0)
        transport = declare(self, 'image_transport', 'raw',
                            "'raw': sensor_msgs/Image on camera/image_raw; 'compressed': "
                            'JPEG on camera/image_raw/compressed (a camera on Wi-Fi)',
                            choices=list(TRANSPORTS), read_only=True)
        queue_depth = declare(
            self, 'image_queue_depth', 1,
            'Images waiting to be measured: 1 = always the newest frame (a live camera; '
            'latency cannot grow); more, to measure every frame of a bursty source such as '
            'a bag replay', low=1, high=100, read_only=True)
        declare(self, 'jpeg_reduced_decode', True,
                'With compressed transport, let libjpeg decode at 1/2, 1/4 or 1/8 of the size '
                'when downsample is a multiple of it: several times cheaper, and the '
                "decoder's DCT scaling then does the area average")
        declare(self, 'max_pixels', image_codec.DEFAULT_MAX_PIXELS,
                'Largest frame measured, in pixels (width x height), checked from the image '
                'header (raw) or the JPEG/PNG header (compressed) before anything is '
                'decoded; larger frames are dropped and counted. Default 4096x3072 (Pi HQ '
                'camera, Camera Module 3)',
                low=image_codec.MIN_IMAGE_SIDE ** 2, high=1 << 30)
        self._settings = self._validated(self._current_values())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.frames_measured = 0
        self.frames_dropped = 0
        self.drops_by_reason = collections.Counter()
        self._dropped_at_last_report = 0
        self._drop_logged = {}
        self._last_drop_reason = ''
        self._sharpness_pub = self.create_publisher(Float64, 'sharpness', 10)
        self._metrics_pub = self.create_publisher(FocusMetrics, 'sharpness/metrics', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        image_qos = QoSProfile(depth=queue_depth, reliability=IMAGE_QOS.reliability,
                               durability=IMAGE_QOS.durability, history=IMAGE_QOS.history)
        if transport == 'compressed':
            self._image_topic_name = 'camera/image_raw/compressed'
            self.create_subscription(CompressedImage, self._image_topic_name,
                                     self._on_compressed, image_qos)
        else:
            self._image_topic_name = 'camera/image_raw'
            self.create_subscription(Image, self._image_topic_name, self._on_image, image_qos)
        self.create_timer(self._settings['diagnostics_period'], self._publish_diagnostics)

    @staticmethod
    def _validated(settings):
        """Check a full set of settings together; raise ConfigError naming the problem."""
        roi = (settings['roi_x'], settings['roi_y'], settings['roi_width'], settings['roi_height'])
        try:
            measures.roi_pixels(100, 100, roi)
        except ValueError as error:
            raise ConfigError(f'ROI {roi}: {error}') from None
        unknown = [name for name in settings['measures'] if name not in measures.MEASURES]
        if unknown or not settings['measures']:
            raise ConfigError(f"parameter 'measures' has unknown or no names {unknown}; "
                              f"known: {', '.join(measures.MEASURES)}")
        if settings['primary_measure'] not in measures.MEASURES:
            raise ConfigError(f"parameter 'primary_measure' is '{settings['primary_measure']}'; "
                              f"known: {', '.join(measures.MEASURES)}")
        settings = dict(settings, roi=roi, measures=list(settings['measures']))
        if settings['primary_measure'] not in settings['measures']:
            settings['measures'].insert(0, settings['primary_measure'])
        return settings

    def _on_set_parameters(self, parameters):
        # Validate the new values together with the current ones, so a ROI
        # change of x and width in one call is judged as a whole.
        current = self._current_values()
        current.update({p.name: p.value for p in parameters})
        try:
            self._settings = self._validated(current)
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _current_values(self):
        return {name: p.value for name, p in self.get_parameters_by_prefix('').items()}

    def _on_image(self, msg):
        self._measure_frame(msg, lambda settings: image_codec.gray_roi(
            msg, settings['roi'], settings['downsample'], settings['max_pixels']))

    def _on_compressed(self, msg):
        is_jpeg = bytes(msg.data[:2]) == b'\xff\xd8'
        self._measure_frame(msg, lambda settings: image_codec.compressed_gray_roi(
            msg, settings['roi'], settings['downsample'], settings['jpeg_reduced_decode'],
            settings['max_pixels']),
            (lambda roi_px: jpeg_bytes.jpeg_bytes(msg.data, roi_px)[0]) if is_jpeg else None)

    def _measure_frame(self, msg, decode, size_measure=None):
        """decode(settings) -> (grey ROI, ROI px, image size, downsample left); then measure."""
        settings = self._settings
        started = time.perf_counter()
        try:
            gray, roi_px, image_size, downsample = decode(settings)
            # The measures, then the absolute signal floor's figures (the focus server's
            # NO_SIGNAL), then the JPEG's size where the frame was a JPEG.
            names = settings['measures'] + list(measures.SIGNALS)
            values = list(measures.evaluate(gray, names, downsample))
            if size_measure is not None:          # the JPEG was decoded: it is readable
                names = names + [jpeg_bytes.JPEG_BYTES]
                values = values + [size_measure(roi_px)]
        except image_codec.MalformedImage as error:
            self._drop(f'dropped a malformed image on {self._image_topic()}: {error}',
                       error.reason)
            return
        except ValueError as error:  # e.g. a frame too small for the ROI
            self._drop(f'dropped an image the ROI cannot be applied to: {error}', 'roi')
            return
        self._publish(msg.header, settings, values, roi_px, image_size, started, names)

    def _publish(self, header, settings, values, roi_px, image_size, started, names):
        self.frames_measured += 1
        primary = values[settings['measures'].index(settings['primary_measure'])]

        metrics = FocusMetrics()
        metrics.header = header
        x, y, w, h = roi_px
        metrics.roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
        metrics.image_width, metrics.image_height = image_size
        metrics.downsample = settings['downsample']
        metrics.primary_measure = settings['primary_measure']
        metrics.sharpness = primary
        metrics.names = names
        metrics.values = values
        metrics.compute_time = time.perf_counter() - started
        self._sharpness_pub.publish(Float64(data=primary))
        stamp = header.stamp
        metrics.latency = (self.get_clock().now().nanoseconds
                           - (stamp.sec * 10**9 + stamp.nanosec)) / 1e9
        self._metrics_pub.publish(metrics)

    def _image_topic(self):
        return self.resolve_topic_name(self._image_topic_name)

    def _drop(self, message, reason):
        """Count a dropped frame under its reason (a MalformedImage.reason, or 'roi')."""
        self.frames_dropped += 1
        self.drops_by_reason[reason] += 1
        self._last_drop_reason = message
        # Rate-limit each kind of problem on its own (numbers stripped), so a
        # flood of one kind cannot hide the first report of another.
        kind = re.sub(r'\d+', '#', message)
        now = time.monotonic()
        if now - self._drop_logged.get(kind, -math.inf) >= DROP_LOG_PERIOD:
            self._drop_logged[kind] = now
            self.get_logger().warning(f'{message} ({self.frames_dropped} dropped so far)')

    def _publish_diagnostics(self):
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: sharpness',
                                  hardware_id='')
        dropped_lately = self.frames_dropped > self._dropped_at_last_report
        self._dropped_at_last_report = self.frames_dropped
        status.level = DiagnosticStatus.WARN if dropped_lately else DiagnosticStatus.OK
        status.message = self._last_drop_reason if dropped_lately else 'measuring'
        status.values = [KeyValue(key='frames_measured', value=str(self.frames_measured)),
                         KeyValue(key='frames_dropped', value=str(self.frames_dropped))]
        # One counter per reason (too_large, too_small, bad_header, size_mismatch, ...).
        status.values += [KeyValue(key=f'dropped_{kind}', value=str(count))
                          for kind, count in sorted(self.drops_by_reason.items())]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def main(args=None):
    return run_node(SharpnessNode, args)


if __name__ == '__main__':
    sys.exit(main())
