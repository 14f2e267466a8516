"""A DSLR over USB through libgphoto2 (the `gphoto2` package): live view and focus drive.

libgphoto2 lets one process hold a camera, so this one object gives both the
frames (live view JPEGs from `capture_preview`) and the lens, and the camera
node serves the lens itself. The focus can only be stepped, never set or read:
Canon's `manualfocusdrive` takes "Near 1..3" / "Far 1..3" (small, medium, large
steps); Nikon's is a range widget whose value is a signed step count. So the lens
is relative-only, each drive call moves `units_per_step` motor units of our own,
and its position is counted from the steps (position_measured false). The
camera cannot say when the motor finished, so the actuator waits a settle time
between calls (the seed project's delay). hill_climb, which moves in relative
steps, is the strategy for it.

The `gphoto2` module is imported only when this source is chosen.

    camera_source:=gphoto2            (the first camera libgphoto2 finds)
"""
import contextlib
import threading

import cv2
import numpy as np

from autofocus.io.capture import SourceError
from autofocus.io.lens_control.base import Lens, LensError

DRIVE_CONFIG = 'manualfocusdrive'
NO_CAMERA_HELP = ('is it switched on, connected by USB, in PTP mode, and not held by '
                  'another program (a desktop file manager mounts cameras: gio mount -s '
                  'gphoto2)? `gphoto2 --auto-detect` lists what libgphoto2 sees')


def gphoto2_module():
    import gphoto2
    return gphoto2


def open_gphoto2_camera():
    """The library boundary: an initialised gphoto2.Camera (tests pass a fake instead)."""
    camera = gphoto2_module().Camera()
    camera.init()
    return camera


class GPhoto2Lens(Lens):
    relative_only = True
    position_measured = False

    def __init__(self, camera, model: str, units_per_step: float = 1.0, drive_step: int = 1,
                 lock=None):
        # libgphoto2 is not thread-safe: live view reads and drive calls take turns.
        self._lock = lock or contextlib.nullcontext()
        if units_per_step <= 0:
            raise LensError(f'units_per_step must be positive, got {units_per_step}')
        self._camera = camera
        self._gp = gphoto2_module()
        self.description = f"DSLR '{model}'"
        self.units_per_step = float(units_per_step)
        self.resolution = self.units_per_step
        try:
            widget = camera.get_single_config(DRIVE_CONFIG)
        except self._gp.GPhoto2Error as error:
            raise LensError(
                f"{self.description} has no '{DRIVE_CONFIG}' setting ({error}): its focus "
                'cannot be driven. Fix: put the lens switch on AF, turn live view on, and check '
                f'`gphoto2 --get-config {DRIVE_CONFIG}` (Canon EOS and Nikon only)') from None
        if widget.get_type() == self._gp.GP_WIDGET_RANGE:  # Nikon: a signed step count
            self._values = {+1: drive_step, -1: -drive_step}
        else:  # Canon: a menu of named steps
            choices = [widget.get_choice(i) for i in range(widget.count_choices())]
            self._values = {+1: f'Far {drive_step}', -1: f'Near {drive_step}'}
            missing = [v for v in self._values.values() if v not in choices]
            if missing:
                raise LensError(f"{self.description}: '{DRIVE_CONFIG}' offers {choices}, not "
                                f'{missing}. Fix: set drive_step to 1, 2 or 3')
        self._choices_text = repr(self._values)

    def attach(self, camera) -> None:
        with self._lock:
            self._camera = camera

    def drive(self, direction: int) -> None:
        gp = self._gp
        try:
            with self._lock:
                widget = self._camera.get_single_config(DRIVE_CONFIG)
                widget.set_value(self._values[direction])
                self._camera.set_single_config(DRIVE_CONFIG, widget)
        except gp.GPhoto2Error as error:
            raise LensError(f'{self.description} stopped answering during a focus drive '
                            f'({error}): unplugged or switched off?') from None

    def offers(self) -> dict:
        return {DRIVE_CONFIG: f'relative steps {self._choices_text}, '
                              f'{self.units_per_step:g} units each (position estimated)'}


class GPhoto2Source:
    """Live view frames from a DSLR and its focus drive."""

    kind = 'device'
    has_lens = True

    def __init__(self, source: str = 'gphoto2', units_per_step: float = 1.0,
                 drive_step: int = 1, open_camera=open_gphoto2_camera):
        self.source = source
        self.units_per_step, self.drive_step = units_per_step, drive_step
        self._open_camera = open_camera
        self._camera = None
        self._lock = threading.Lock()
        self.lens = None
        self.on_reconnect = None  # called when a lost camera is open again

    @property
    def is_open(self) -> bool:
        return self._camera is not None

    def native_fps(self) -> float:
        return 0.0

    def open(self):
        if self._camera is not None:
            return
        gp = gphoto2_module()
        try:
            camera = self._open_camera()
        except gp.GPhoto2Error as error:
            raise SourceError(f'no DSLR found by libgphoto2 ({error}): {NO_CAMERA_HELP}') \
                from None
        try:
            if self.lens is None:
                self.lens = GPhoto2Lens(camera, _model(camera), self.units_per_step,
                                        self.drive_step, self._lock)
            else:  # reconnected: the lens the node serves drives the new camera object
                self.lens.attach(camera)
                if self.on_reconnect is not None:
                    self.on_reconnect()
        except LensError as error:
            camera.exit()
            raise SourceError(str(error)) from None
        self._camera = camera

    def read(self):
        self.open()
        gp = gphoto2_module()
        try:
            with self._lock:
                data = bytes(self._camera.capture_preview().get_data_and_size())
        except gp.GPhoto2Error as error:
            self.release()  # the next read opens it again: a camera plugged back in works
            raise SourceError(f'the DSLR stopped delivering live view ({error})') from None
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f'the DSLR sent a live view frame that is not a JPEG '
                              f'({len(data)} bytes)')
        return frame

    def release(self):
        with self._lock:
            camera, self._camera = self._camera, None
            if camera is not None:
                try:
                    camera.exit()
                except gphoto2_module().GPhoto2Error:
                    pass  # already gone


def _model(camera) -> str:
    for line in str(camera.get_summary().text).splitlines():
        if line.startswith('Model:'):
            return line.partition(':')[2].strip()
    return 'camera'
