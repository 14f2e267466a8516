"""UVC webcams' focus motor through V4L2 controls, with linuxpy.

A UVC camera with a focus motor (Logitech C920, C922, C930e, Brio, Microsoft
LifeCam Studio/Cinema, ...) exposes the integer control `focus_absolute` and a
boolean `focus_automatic_continuous` (kernels before 5.x: `focus_auto`). Check a
camera with `v4l2-ctl -d /dev/video0 -l`: both must be listed.

The camera's own autofocus makes `focus_absolute` inactive, so it is switched off
when the lens is opened and the user's setting is put back on close().
Range, step and default come from the control's query, never from a table.

Controls can be set while another process streams the same device (V4L2 allows
any number of opens; only streaming is exclusive), which is why the focus is
served by its own node beside whichever node captures frames.
"""
import errno

from autofocus.io.lens_control.base import Lens, LensError

FOCUS_CONTROL = 'focus_absolute'
# Newer kernels name it focus_automatic_continuous, older ones focus_auto.
AUTOFOCUS_CONTROLS = ('focus_automatic_continuous', 'focus_auto')
# What an unplugged or dead device answers.
GONE_ERRNOS = (errno.ENODEV, errno.ENXIO, errno.EIO, errno.ENOENT, errno.EBADF)
KNOWN_CAMERAS = ('Logitech C920, C922, C930e, Brio; Microsoft LifeCam Studio and Cinema; '
                 'Razer Kiyo')


def device_path(source: str) -> str:
    """'0' -> '/dev/video0'; a /dev path unchanged."""
    source = source.strip()
    return f'/dev/video{source}' if source.isdigit() else source


def open_linuxpy_device(path: str):
    """The library boundary: an open linuxpy Device (tests pass a fake instead)."""
    from linuxpy.video.device import Device
    device = Device(path)
    device.open()
    return device


class V4L2Lens(Lens):

    def __init__(self, source: str, open_device=open_linuxpy_device):
        self.path = device_path(source)
        if not self.path.startswith('/dev/'):
            raise LensError(f"'{source}' is not a V4L2 device: give its index ('0') or its "
                            'path (/dev/video0) to turn its lens')
        try:
            self._device = open_device(self.path)
        except FileNotFoundError:
            raise LensError(f'V4L2 device {self.path} is not present (unplugged?)') from None
        except OSError as error:
            raise LensError(f'cannot open V4L2 device {self.path}: {error.strerror or error}'
                            '. Fix: check that it exists and that you are in the video '
                            'group') from None
        card = getattr(getattr(self._device, 'info', None), 'card', '') or 'camera'
        self.description = f"V4L2 '{card}' at {self.path}"
        self._restore = None
        try:
            self._focus = self._control(FOCUS_CONTROL)
            if self._focus is None:
                raise LensError(
                    f"V4L2 device {self.path} ('{card}') has no '{FOCUS_CONTROL}' control, so "
                    'its focus cannot be turned (a fixed-focus lens, or not a UVC camera '
                    f'with a focus motor). Check with: v4l2-ctl -d {self.path} -l. Cameras '
                    f'known to expose it: {KNOWN_CAMERAS}.')
            self.min_position = float(self._focus.minimum)
            self.max_position = float(self._focus.maximum)
            self.resolution = float(self._focus.step or 1)
            self.default_position = float(self._focus.default)
            if not self.min_position < self.max_position:
                raise LensError(f"V4L2 device {self.path}: '{FOCUS_CONTROL}' has an empty "
                                f'range [{self.min_position:g}, {self.max_position:g}]')
            self._autofocus = None
            for name in AUTOFOCUS_CONTROLS:
                self._autofocus = self._control(name)
                if self._autofocus is not None:
                    break
            if self._autofocus is not None:
                # The user's setting, put back on close(); off now, or focus_absolute is
                # inactive and every move would fail.
                self._restore = bool(self._autofocus.value)
                if self._restore:
                    self._autofocus.value = False
        except LensError:
            self._device.close()
            raise
        except OSError as error:
            self._device.close()
            raise LensError(self._gone(error)) from None

    def _control(self, name):
        try:
            return self._device.controls[name]
        except KeyError:
            return None

    def _gone(self, error: OSError) -> str:
        return (f'V4L2 device {self.path} stopped answering ({error.strerror or error}): '
                'unplugged? Plug it back in and restart the node')

    def set_position(self, target: float) -> float:
        # The control takes integers on its step grid; round there, within the range.
        steps = round((target - self.min_position) / self.resolution)
        value = int(min(max(self.min_position + steps * self.resolution, self.min_position),
                        self.max_position))
        try:
            self._focus.value = value
        except OSError as error:
            if error.errno in GONE_ERRNOS:
                raise LensError(self._gone(error)) from None
            raise LensError(f'V4L2 device {self.path} refused {FOCUS_CONTROL}={value}: '
                            f'{error.strerror or error}. Is the camera\'s autofocus on again '
                            '(another program may have switched it on)?') from None
        except (AttributeError, ValueError) as error:  # linuxpy: not writeable / bad value
            raise LensError(f'V4L2 device {self.path} refused {FOCUS_CONTROL}={value}: '
                            f'{error}. Is the camera\'s autofocus on again (another program '
                            f'may have switched it on)?') from None
        return float(value)

    def read_position(self) -> float:
        try:
            return float(self._focus.value)
        except OSError as error:
            raise LensError(self._gone(error)) from None

    def offers(self) -> dict:
        offered = {FOCUS_CONTROL: f'[{self.min_position:g}, {self.max_position:g}] step '
                                  f'{self.resolution:g} default {self.default_position:g}'}
        if self._autofocus is not None:
            offered[self._autofocus.config_name] = \
                f'was {"on" if self._restore else "off"} (restored on exit)'
        return offered

    def close(self) -> None:
        device, self._device = getattr(self, '_device', None), None
        if device is None:
            return
        try:
            if self._restore:
                self._autofocus.value = True
        except (OSError, AttributeError):
            pass  # the device is gone: nothing to restore
        finally:
            device.close()
