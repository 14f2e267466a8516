"""Camera node: frames from a V4L2 device, a video file or a network stream.

Publishes  ~/image_raw             sensor_msgs/Image (bgr8, sensor-data QoS, depth 1),
                                   stamped at capture
           ~/image_raw/compressed  sensor_msgs/CompressedImage (JPEG, `jpeg_quality`),
                                   image_transport's `compressed` layout
           ~/camera_info           sensor_msgs/CameraInfo with the same header (size only:
                                   uncalibrated)
           /diagnostics            source state, frames published, reconnects
With the node named `camera` these are /camera/image_raw and /camera/camera_info.
Like image_transport, each form is made only while someone subscribes to it: a
Pi on Wi-Fi that serves only JPEG never copies raw frames, and no one pays for
JPEG encoding unless a subscriber asked for it.

Frames never queue: the capture keeps one frame in the driver's buffer, the
reader thread publishes each frame as soon as it is read, and the image
publishers keep one message, so a slow subscriber gets the newest frame, not
an old one.

A reader thread owns the OpenCV capture: a blocking read there never stalls
the executor. When the source fails or vanishes the thread logs why, releases
it and retries with exponential backoff, so an unplugged webcam or a dropped
stream comes back by itself.
"""
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from autofocus.io.capture import Backoff, RatePacer, SourceError, VideoSource, missing_file
from autofocus.io.image_codec import fill_compressed_msg, fill_image_msg
from autofocus.io.sources import make_source
from autofocus.nodes.lens_motor_node import serve_camera_lens
from autofocus.nodes.node_tools import IMAGE_QOS, ConfigError, declare, run_node

class ImagePublisher:
    """image_raw, image_raw/compressed and camera_info of a camera-like node, one header."""

    def __init__(self, node: Node, frame_id: str):
        self.frame_id = frame_id
        self.jpeg_quality = declare(
            node, 'jpeg_quality', 80,
            'JPEG quality of ~/image_raw/compressed (higher: sharper, more bytes)',
            low=1, high=100)
        # (frames published, stamp of the last one), replaced in one assignment so
        # the diagnostics thread always reads a matching pair.
        self.published = (0, None)
        self.last_publish_time = None   # time.monotonic() of the last frame published
        self._image_pub = node.create_publisher(Image, '~/image_raw', IMAGE_QOS)
        self._compressed_pub = node.create_publisher(
            CompressedImage, '~/image_raw/compressed', IMAGE_QOS)
        self._info_pub = node.create_publisher(CameraInfo, '~/camera_info',
                                               qos_profile_sensor_data)

    def publish(self, frame, stamp):
        header = Header(stamp=stamp, frame_id=self.frame_id)
        if self._image_pub.get_subscription_count():
            image = fill_image_msg(Image(header=header), frame, 'bgr8')
            self._image_pub.publish(image)
        if self._compressed_pub.get_subscription_count():
            compressed = fill_compressed_msg(CompressedImage(header=header), frame,
                                             self.jpeg_quality)
            self._compressed_pub.publish(compressed)
        self._info_pub.publish(CameraInfo(header=header, width=frame.shape[1],
                                          height=frame.shape[0]))
        self.published = (self.published[0] + 1, stamp)
        self.last_publish_time = time.monotonic()

    def diagnostics(self) -> list:
        count, stamp = self.published
        values = [KeyValue(key='frames_published', value=str(count))]
        if stamp is not None:
            # Lets a benchmark count exactly which stamps were published.
            values.append(KeyValue(key='last_frame_stamp',
                                   value=f'{stamp.sec}.{stamp.nanosec:09d}'))
        return values


class CameraNode(Node):

    def __init__(self, **kwargs):
        super().__init__('camera', **kwargs)
        source = declare(self, 'source', '0',
                         "V4L2 device index ('0') or path ('/dev/video0'), a video file path "
                         "(loops), an http/https/rtsp URL (OpenCV's FFmpeg backend), a JPEG "
                         "stream (tcp://HOST:PORT, tcp-listen://ADDR:PORT), 'picamera2[:N]' or "
                         "'gphoto2' (these two also serve focus_motor: see io/sources.py)",
                         read_only=True)
        width = declare(self, 'width', 640, 'Frame width asked of the source (0 = its own)',
                        low=0, high=8192, read_only=True)
        height = declare(self, 'height', 480, 'Frame height asked of the source (0 = its own)',
                         low=0, high=8192, read_only=True)
        fps = declare(self, 'fps', 30.0,
                      'Frame rate asked of a device; the pace at which a file is played '
                      '(0 = the file\'s own rate)', low=0.0, high=1000.0, read_only=True)
        frame_id = declare(self, 'frame_id', 'camera', 'frame_id of published headers',
                           read_only=True)
        loop = declare(self, 'loop', True, 'Start a video file again at its end', read_only=True)
        retry_initial = declare(self, 'retry_initial', 0.5,
                                'Seconds before the first retry of a failed source',
                                low=0.01, high=60.0, read_only=True)
        retry_max = declare(self, 'retry_max', 5.0, 'Longest wait between retries, seconds',
                            low=0.01, high=600.0, read_only=True)

        max_frame_bytes = declare(self, 'max_frame_bytes', 8_000_000,
                                  'tcp:// sources: larger frames are dropped and counted',
                                  low=1024, high=1 << 30, read_only=True)
        try:
            self._source = make_source(source, width, height, fps, loop, max_frame_bytes)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        # A typo in a video file's path is not worth retrying forever (devices and URLs are).
        if isinstance(self._source, VideoSource) and missing_file(source):
            raise ConfigError(f"parameter 'source': {missing_file(source)}")
        # picamera2/gphoto2: one process may hold the camera, so this node turns its lens.
        self._lens = serve_camera_lens(self, self._source)
        self._pace_fps = fps
        self._backoff = Backoff(retry_initial, retry_max)
        self._images = ImagePublisher(self, frame_id)
        self._stall_timeout = declare(
            self, 'stall_timeout', 2.0,
            'Seconds without a frame after which diagnostics say WARN "no frames for N s" '
            '(a frozen stream or device whose read blocks)', low=0.1, high=3600.0,
            read_only=True)
        self.reconnects = 0
        self._status = 'starting'
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # Twice a second, so a stall shows at most half a second after stall_timeout.
        self.create_timer(0.5, self._publish_diagnostics)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_frames, name='camera-reader',
                                        daemon=True)
        self._reader.start()

    def _read_frames(self):
        pacer = None
        while not self._stop.is_set():
            try:
                was_open = self._source.is_open
                frame = self._source.read()
                if not was_open:
                    self.get_logger().info(
                        f"{self._source.kind} '{self._source.source}' open, "
                        f'{frame.shape[1]}x{frame.shape[0]}')
                    # Files play at the requested rate (or their own); devices
                    # and streams are paced by the source itself.
                    rate = self._pace_fps or self._source.native_fps() or 30.0
                    pacer = RatePacer(rate) if self._source.kind == 'file' else None
                    self._backoff.reset()
                    self._status = 'streaming'
            except SourceError as error:
                delay = self._backoff.next_delay()
                self._status = str(error)
                self.reconnects += 1
                self.get_logger().warning(f'{error}; retrying in {delay:.1f} s',
                                          throttle_duration_sec=10.0)
                self._stop.wait(delay)
                continue
            try:
                self._images.publish(frame, self.get_clock().now().to_msg())
            except Exception:
                if not self.context.ok():  # Ctrl+C shut ROS down under this thread
                    return
                raise
            if pacer is not None:
                pacer.wait(self._stop)

    def _publish_diagnostics(self):
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: camera',
                                  hardware_id=self._source.source)
        status.level = DiagnosticStatus.OK if self._status == 'streaming' \
            else DiagnosticStatus.WARN
        status.message = self._status
        last = self._images.last_publish_time
        silent = time.monotonic() - last if last is not None else 0.0
        if self._status == 'streaming' and silent >= self._stall_timeout:
            # The reader is stuck in a read that neither returns a frame nor fails
            # (OpenCV's FFmpeg gives up on a frozen stream only after 30 s).
            status.level = DiagnosticStatus.WARN
            status.message = f'no frames for {silent:.0f} s'
            self.get_logger().warning(f"{self._source.kind} '{self._source.source}': "
                                      f'{status.message}', throttle_duration_sec=10.0)
        status.values = self._images.diagnostics() + [
            KeyValue(key='reconnects', value=str(self.reconnects))] + [
            KeyValue(key=f'dropped_{reason}', value=str(count))
            for reason, count in getattr(self._source, 'dropped', {}).items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def destroy_node(self):
        # Stop the reader before releasing, so no read is under way on a freed capture.
        self._stop.set()
        self._reader.join(timeout=5.0)
        if self._lens is not None:
            self._lens.close()
        self._source.release()
        return super().destroy_node()


def main(args=None):
    return run_node(CameraNode, args)


if __name__ == '__main__':
    sys.exit(main())
