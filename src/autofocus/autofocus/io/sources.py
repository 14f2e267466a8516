"""Which frame source a camera `source` string names.

    0, /dev/video0, file.mp4, http(s)/rtsp URL   OpenCV (io/capture.py)
    tcp://HOST:PORT, tcp-listen://ADDR:PORT      length-prefixed JPEGs (io/tcp_jpeg.py)
    picamera2[:N]                                Picamera2 frames + lens (io/lens_control)
    gphoto2                                      DSLR live view + focus drive (io/lens_control)

A source with `has_lens` is a device only one process can open: the camera node
opens it at start and serves its lens on focus_motor/command and state.
"""
from autofocus.io.capture import VideoSource
from autofocus.io.tcp_jpeg import TcpJpegSource, is_tcp_source


def make_source(source: str, width: int = 0, height: int = 0, fps: float = 0.0,
                loop: bool = True, max_frame_bytes: int = 8_000_000):
    """A source object for `source`; ValueError for a malformed one."""
    text = source.strip()
    if is_tcp_source(text):
        return TcpJpegSource(text, max_frame_bytes)
    if text == 'picamera2' or text.startswith('picamera2:'):
        from autofocus.io.lens_control.picamera2 import Picamera2Source
        return Picamera2Source(text, width, height)
    if text == 'gphoto2':
        from autofocus.io.lens_control.gphoto2 import GPhoto2Source
        return GPhoto2Source(text)
    return VideoSource(source, width, height, fps, loop)
