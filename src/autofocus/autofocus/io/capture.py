"""Frame sources through OpenCV: V4L2 devices, video files and network streams.

No ROS here. The camera node runs a VideoSource in a reader thread; the source
says what went wrong in words a user can act on, and the node retries with
Backoff until the source comes back.
"""
import os
import re
import time

import cv2

_URL = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*://')


class SourceError(RuntimeError):
    """The source cannot be opened or has stopped delivering frames."""


def describe_source(source: str) -> tuple[str, object, int]:
    """Classify a source string: ('device'|'file'|'stream', what to open, OpenCV backend)."""
    source = source.strip()
    if source.isdigit():
        return 'device', int(source), cv2.CAP_V4L2
    if source.startswith('/dev/'):
        return 'device', source, cv2.CAP_V4L2
    if _URL.match(source):
        return 'stream', source, cv2.CAP_FFMPEG
    return 'file', source, cv2.CAP_FFMPEG


def missing_file(source: str) -> str:
    """Why a video-file source cannot work ('' when it can, or is a device or URL).

    A missing file is a configuration error, unlike an unplugged device or an
    unreachable stream, which may come back and are retried.
    """
    kind, target, _ = describe_source(source)
    if kind != 'file' or os.path.isfile(target):
        return ''
    what = 'is a folder, not a video file' if os.path.isdir(target) else 'does not exist'
    return (f"video file '{os.path.abspath(target)}' {what}. Fix: give an existing video "
            "file, a V4L2 device ('0' or /dev/video0), or an http(s)/rtsp URL")


class VideoSource:
    """One OpenCV capture, opened on demand; read() returns a BGR frame or raises SourceError."""

    def __init__(self, source: str, width: int = 0, height: int = 0, fps: float = 0.0,
                 loop: bool = True):
        self.kind, self._target, self._backend = describe_source(source)
        self.source = source
        self.width, self.height, self.fps, self.loop = width, height, fps, loop
        self._capture = None

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    def open(self):
        if self.kind == 'file' and not os.path.isfile(self._target):
            raise SourceError(f"video file '{self._target}' does not exist")
        if self.kind == 'device' and isinstance(self._target, str) \
                and not os.path.exists(self._target):
            raise SourceError(f'device {self._target} is not present (unplugged?)')
        capture = cv2.VideoCapture(self._target, self._backend)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"OpenCV cannot open {self.kind} '{self.source}'")
        if self.kind != 'file':
            # Keep one frame in the driver's queue: an old frame is worse than
            # waiting for the next, since its stamp would lie about the lens.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if self.width and self.height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                capture.set(cv2.CAP_PROP_FPS, self.fps)
        self._capture = capture

    def native_fps(self) -> float:
        fps = self._capture.get(cv2.CAP_PROP_FPS) if self._capture is not None else 0.0
        return fps if 0.0 < fps < 1000.0 else 0.0

    def read(self):
        if self._capture is None:
            self.open()
        ok, frame = self._capture.read()
        if not ok and self.kind == 'file' and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            self.release()
            what = 'reached its end' if self.kind == 'file' else 'stopped delivering frames'
            raise SourceError(f"{self.kind} '{self.source}' {what}")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.kind == 'file' and self.width and self.height \
                and frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return frame

    def release(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Backoff:
    """Exponential retry delays: initial, doubling, capped at maximum; reset on success."""

    def __init__(self, initial: float = 0.5, maximum: float = 5.0):
        self.initial, self.maximum = initial, maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2.0, self.maximum)
        return delay

    def reset(self):
        self._next = self.initial


class RatePacer:
    """Sleep so that ticks happen at a fixed rate without drifting."""

    def __init__(self, rate_hz: float):
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._next = time.monotonic()

    def wait(self, stop_event=None):
        if not self.period:
            return
        self._next += self.period
        delay = self._next - time.monotonic()
        if delay < -self.period:  # fell far behind: skip ahead rather than burst
            self._next = time.monotonic()
        elif delay > 0:
            if stop_event is not None:
                stop_event.wait(delay)
            else:
                time.sleep(delay)
