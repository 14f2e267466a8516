"""Camera node: frames from a V4L2 device, a video file or a network stream.

Publishes  ~/image_raw     sensor_msgs/Image (bgr8, sensor-data QoS), stamped at capture
           ~/camera_info   sensor_msgs/CameraInfo with the same header (size only: uncalibrated)
           /diagnostics    source state, frames published, reconnects
With the node named `camera` these are /camera/image_raw and /camera/camera_info.

A reader thread owns the OpenCV capture: a blocking read there never stalls
the executor. When the source fails or vanishes the thread logs why, releases
it and retries with exponential backoff, so an unplugged webcam or a dropped
stream comes back by itself.
"""
import sys
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from autofocus.capture import Backoff, RatePacer, SourceError, VideoSource
from autofocus.image_codec import fill_image_msg
from autofocus.node_tools import declare, run_node


class ImagePublisher:
    """image_raw + camera_info publishers of a camera-like node, sharing one header."""

    def __init__(self, node: Node, frame_id: str):
        self._node = node
        self.frame_id = frame_id
        self.frames_published = 0
        self._image_pub = node.create_publisher(Image, '~/image_raw', qos_profile_sensor_data)
        self._info_pub = node.create_publisher(CameraInfo, '~/camera_info',
                                               qos_profile_sensor_data)

    def publish(self, frame, stamp):
        image = fill_image_msg(Image(), frame, 'bgr8')
        image.header.stamp = stamp
        image.header.frame_id = self.frame_id
        self._image_pub.publish(image)
        self._info_pub.publish(CameraInfo(header=image.header, width=image.width,
                                          height=image.height))
        self.frames_published += 1


class CameraNode(Node):

    def __init__(self, **kwargs):
        super().__init__('camera', **kwargs)
        source = declare(self, 'source', '0',
                         "V4L2 device index ('0') or path ('/dev/video0'), a video file path "
                         "(loops), or an http/https/rtsp URL (OpenCV's FFmpeg backend)",
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

        self._source = VideoSource(source, width, height, fps, loop)
        self._pace_fps = fps
        self._backoff = Backoff(retry_initial, retry_max)
        self._images = ImagePublisher(self, frame_id)
        self.reconnects = 0
        self._status = 'starting'
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(1.0, self._publish_diagnostics)
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
        status.values = [
            KeyValue(key='frames_published', value=str(self._images.frames_published)),
            KeyValue(key='reconnects', value=str(self.reconnects))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def destroy_node(self):
        # Stop the reader before releasing, so no read is under way on a freed capture.
        self._stop.set()
        self._reader.join(timeout=5.0)
        self._source.release()
        return super().destroy_node()


def main(args=None):
    return run_node(CameraNode, args)


if __name__ == '__main__':
    sys.exit(main())
