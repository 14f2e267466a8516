"""The Raspberry Pi Camera Module 3 (and other libcamera lenses with a VCM) through Picamera2.

libcamera lets one process open a camera, so this one object gives both the
frames and the lens, and the camera node serves the lens itself. The lens is
libcamera's `LensPosition` control in dioptres (0 = infinity, larger = closer),
used directly as motor units; its limits come from `camera_controls`, and
`AfMode` is set to manual (libcamera's AfModeEnum.Manual, 0) so the camera's own
autofocus does not move it. Picamera2 is imported only when this source is
chosen: machines without it are unaffected.

    camera_source:=picamera2        (camera 0)    camera_source:=picamera2:1
"""
import cv2

from autofocus.io.capture import SourceError
from autofocus.io.lens_control.base import Lens, LensError

AF_MODE_MANUAL = 0  # libcamera.controls.AfModeEnum.Manual


def open_picamera2(camera_num: int):
    """The library boundary: a Picamera2 instance (tests pass a fake instead)."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise SourceError('camera source picamera2 needs the picamera2 package (Raspberry Pi '
                          'OS: sudo apt install python3-picamera2, and a venv made with '
                          '--system-site-packages)') from None
    return Picamera2(camera_num)


def camera_number(source: str) -> int:
    _, _, number = source.strip().partition(':')
    if number and not number.isdigit():
        raise ValueError(f"camera source '{source}': expected picamera2 or picamera2:N")
    return int(number or 0)


class Picamera2Lens(Lens):
    relative_only = False
    position_measured = True

    def __init__(self, picam2, camera_num: int = 0):
        self._picam2 = picam2
        self.description = f'Picamera2 camera {camera_num} lens'
        limits = picam2.camera_controls.get('LensPosition')
        if limits is None:
            raise LensError(f'Picamera2 camera {camera_num} has no LensPosition control: its '
                            'lens has no focus motor (Camera Module 1/2/HQ are fixed or '
                            'manual focus; Camera Module 3 has one)')
        low, high, default = limits
        self.min_position, self.max_position = float(low), float(high)
        self.default_position = float(default) if default is not None else self.min_position
        self._position = self.default_position
        self._control({'AfMode': AF_MODE_MANUAL, 'LensPosition': self._position})

    def _control(self, controls: dict):
        try:
            self._picam2.set_controls(controls)
        except Exception as error:  # libcamera reports a dead camera as RuntimeError
            raise LensError(f'{self.description}: {error}') from None

    def set_position(self, target: float) -> float:
        self._control({'LensPosition': float(target)})
        self._position = float(target)
        return self._position

    def read_position(self) -> float:
        # libcamera's metadata reports LensPosition a few frames late; the VCM driver is
        # at the commanded value once the settle time has passed.
        return self._position

    def offers(self) -> dict:
        return {name: f'{low}..{high} default {default}' for name, (low, high, default)
                in self._picam2.camera_controls.items() if name in ('AfMode', 'LensPosition')}


class Picamera2Source:
    """Frames from Picamera2 (BGR, as OpenCV expects) and the camera's lens."""

    kind = 'device'
    has_lens = True

    def __init__(self, source: str, width: int = 0, height: int = 0,
                 open_camera=open_picamera2):
        self.source = source
        self.camera_num = camera_number(source)
        self.width, self.height = width, height
        self._open_camera = open_camera
        self._picam2 = None
        self.lens = None

    @property
    def is_open(self) -> bool:
        return self._picam2 is not None

    def native_fps(self) -> float:
        return 0.0

    def open(self):
        if self._picam2 is not None:
            return
        try:
            picam2 = self._open_camera(self.camera_num)
        except SourceError:
            raise
        except Exception as error:  # Picamera2 raises IndexError/RuntimeError for no camera
            raise SourceError(f'cannot open Picamera2 camera {self.camera_num}: {error!r} '
                              '(is it connected and enabled? try: rpicam-hello '
                              '--list-cameras)') from None
        try:
            main = {'format': 'RGB888'}  # 24-bit, B G R in memory: OpenCV's order
            if self.width and self.height:
                main['size'] = (self.width, self.height)
            picam2.configure(picam2.create_video_configuration(main=main))
            picam2.start()
            self.lens = Picamera2Lens(picam2, self.camera_num)
        except LensError as error:
            picam2.close()
            raise SourceError(str(error)) from None
        except Exception as error:
            picam2.close()
            raise SourceError(f'Picamera2 camera {self.camera_num} would not start: '
                              f'{error!r}') from None
        self._picam2 = picam2

    def read(self):
        self.open()
        try:
            frame = self._picam2.capture_array('main')
        except Exception as error:
            raise SourceError(f'Picamera2 camera {self.camera_num} stopped delivering frames: '
                              f'{error!r}') from None
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        return frame

    def release(self):
        picam2, self._picam2 = self._picam2, None
        if picam2 is not None:
            try:
                picam2.stop()
            finally:
                picam2.close()
