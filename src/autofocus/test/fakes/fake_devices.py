"""Fakes of the device libraries' own objects, for cameras that cannot exist here.

Each fake stands in for exactly the object our code gets from the library
(linuxpy's Device and its controls, a Picamera2 instance, a gphoto2 Camera) and
records every call in `calls`, so a test can check what the device was told.
Their behaviour follows the library and the kernel/driver documentation: a V4L2
control clamps to its range and rounds to its step, `focus_absolute` refuses
writes (EACCES) while the camera's autofocus is on, an unplugged device answers
ENODEV; gphoto2 raises GPhoto2Error with libgphoto2's codes.
"""
import errno
import json
import os
import threading
import time
import types

import numpy as np


class FakeControl:
    """A linuxpy control (IntegerControl/BooleanControl): query fields and `value`."""

    def __init__(self, device, name, minimum, maximum, step, default, value):
        self._device = device
        self.name = name
        self.config_name = name.lower().replace(', ', '_').replace(' ', '_')
        self.minimum, self.maximum, self.step = minimum, maximum, step
        self.default = default
        self._value = value

    @property
    def value(self):
        self._device._record('get', self.config_name)
        self._device._check()
        return self._value

    @value.setter
    def value(self, value):
        self._device._record('set', self.config_name, value)
        self._device._check()
        if self.config_name == 'focus_absolute' and self._device.autofocus_on():
            raise OSError(errno.EACCES, 'Permission denied')  # inactive while AF runs
        value = int(value)
        value = self.minimum + round((value - self.minimum) / self.step) * self.step
        self._value = min(max(value, self.minimum), self.maximum)
        self._device._changed()


class FakeControls(dict):
    """linuxpy's Controls: looked up by config name; KeyError for a missing one."""


# Like a real camera, the fakes deliver frames at a frame rate: a capture that returned at
# once would let the camera node's reader spin and starve every other thread.
FRAME_PERIOD = 1.0 / 30.0


class FakeV4L2Device:
    """linuxpy.video.device.Device of a UVC camera with (or without) a focus motor."""

    def __init__(self, path='/dev/video0', card='HD Pro Webcam C920', focus=(0, 250, 5, 0),
                 focus_value=0, autofocus_name='Focus, Automatic Continuous', autofocus=True,
                 on_change=None):
        self.filename = path
        self.info = types.SimpleNamespace(card=card)
        self.calls = []
        self.gone = False
        self.closed = True
        self._on_change = on_change
        self.controls = FakeControls()
        self._lock = threading.Lock()
        if focus is not None:
            low, high, step, default = focus
            self.controls['focus_absolute'] = FakeControl(
                self, 'Focus, Absolute', low, high, step, default, focus_value)
        if autofocus_name is not None:
            control = FakeControl(self, autofocus_name, 0, 1, 1, 1, int(autofocus))
            self.controls[control.config_name] = control
        self.controls['brightness'] = FakeControl(self, 'Brightness', 0, 255, 1, 128, 128)

    def autofocus_on(self):
        return any(self.controls.get(name) is not None and self.controls[name]._value
                   for name in ('focus_automatic_continuous', 'focus_auto'))

    def value(self, name):
        return self.controls[name]._value

    def open(self):
        self._record('open')
        self.closed = False

    def close(self):
        self._record('close')
        self.closed = True

    def unplug(self):
        self.gone = True

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)

    def _check(self):
        if self.gone:
            raise OSError(errno.ENODEV, 'No such device')
        if self.closed:
            raise ValueError('I/O operation on closed file')

    def _changed(self):
        if self._on_change is not None:
            self._on_change(self)


# -- the fake linuxpy package for separate processes (test/fakes first on PYTHONPATH) ------

FAKE_V4L2_ENV = 'AUTOFOCUS_FAKE_V4L2'


def device_from_environment(path):
    """The Device a node process opens, set up from the JSON file named by AUTOFOCUS_FAKE_V4L2.

    {"devices": {"/dev/video0": {FakeV4L2Device keyword arguments}}}; every call is
    appended to <that file>.calls as one JSON line, so the test reads what the node did.
    """
    config_path = os.environ[FAKE_V4L2_ENV]
    with open(config_path) as file:
        config = json.load(file)
    if path not in config['devices']:
        raise FileNotFoundError(errno.ENOENT, 'No such file or directory', path)
    device = FakeV4L2Device(path, **config['devices'][path])
    log = open(config_path + '.calls', 'a', buffering=1)
    record = device._record

    def record_to_file(*call):
        record(*call)
        log.write(json.dumps([path, *call]) + '\n')

    device._record = record_to_file
    return device


# -- Picamera2 -------------------------------------------------------------------------------

class FakePicamera2:
    """A Picamera2 instance of a Camera Module 3 (or of a fixed-focus camera)."""

    def __init__(self, lens_range=(0.0, 15.0, 1.0), size=(64, 48)):
        self.calls = []
        self.gone = False
        self.camera_controls = {'ExposureTime': (75, 11766829, None)}
        if lens_range is not None:
            self.camera_controls['AfMode'] = (0, 2, 0)
            self.camera_controls['LensPosition'] = lens_range
        self.controls = {}
        self.started = False
        self.closed = False
        self._size = size
        self._frame = 0

    def _check(self):
        if self.gone:
            raise RuntimeError('Camera frontend has timed out!')

    def create_video_configuration(self, main=None, **kwargs):
        self.calls.append(('create_video_configuration', main))
        return {'main': dict(main or {})}

    def configure(self, config):
        self.calls.append(('configure', config))

    def start(self):
        self.calls.append(('start',))
        self.started = True

    def set_controls(self, controls):
        self.calls.append(('set_controls', dict(controls)))
        self._check()
        for name, value in controls.items():
            if name not in self.camera_controls:
                raise RuntimeError(f'Control {name} is not advertised by libcamera')
            self.controls[name] = value

    def capture_array(self, name='main'):
        self.calls.append(('capture_array', name))
        time.sleep(FRAME_PERIOD)
        self._check()
        self._frame += 1
        width, height = self._size
        rgb = np.full((height, width, 3), self._frame % 256, np.uint8)
        rgb[..., 2] = 200  # XBGR8888 'RGB888' main stream: picamera2 hands out BGR order
        return rgb

    def capture_metadata(self):
        self.calls.append(('capture_metadata',))
        self._check()
        return {'LensPosition': self.controls.get('LensPosition', 1.0),
                'AfState': 0}

    def stop(self):
        self.calls.append(('stop',))
        self.started = False

    def close(self):
        self.calls.append(('close',))
        self.closed = True


# -- gphoto2 ---------------------------------------------------------------------------------

class FakeWidget:
    """A gphoto2 CameraWidget (radio/menu type) with its choices."""

    def __init__(self, name, choices, value, widget_type):
        self.name, self._choices, self._value = name, list(choices), value
        self._type = widget_type

    def get_type(self):
        return self._type

    def get_name(self):
        return self.name

    def get_value(self):
        return self._value

    def set_value(self, value):
        if value not in self._choices:
            raise ValueError(f'{value!r} is not a choice of {self.name}')
        self._value = value

    def count_choices(self):
        return len(self._choices)

    def get_choice(self, index):
        return self._choices[index]

    def get_choices(self):
        return iter(self._choices)


class FakeCameraFile:
    def __init__(self, data):
        self._data = data

    def get_data_and_size(self):
        return memoryview(self._data)


class FakeGPhoto2Camera:
    """gphoto2.Camera of a Canon EOS in live view (or a Nikon with `nikon=True`)."""

    CANON_DRIVE = ['Near 1', 'Near 2', 'Near 3', 'None', 'Far 1', 'Far 2', 'Far 3']

    def __init__(self, gp, preview_jpeg: bytes, drive=True, attached=True, nikon=False):
        self.gp = gp  # the real gphoto2 module: its error class and codes
        self.calls = []
        self.gone = False
        self.attached = attached
        self._jpeg = preview_jpeg
        self._config = {'viewfinder': FakeWidget('viewfinder', [0, 1], 0,
                                                 gp.GP_WIDGET_TOGGLE)}
        if drive and nikon:  # a range widget: the value is a signed number of steps
            self._config['manualfocusdrive'] = FakeWidget(
                'manualfocusdrive', range(-32767, 32768), 0, gp.GP_WIDGET_RANGE)
        elif drive:
            self._config['manualfocusdrive'] = FakeWidget(
                'manualfocusdrive', self.CANON_DRIVE, 'None', gp.GP_WIDGET_RADIO)
        self.drives = []  # every drive value set, in order

    def _error(self, code):
        return self.gp.GPhoto2Error(code)

    def _check(self):
        if self.gone:
            raise self._error(self.gp.GP_ERROR_IO_USB_FIND)

    def init(self):
        self.calls.append(('init',))
        if not self.attached:
            raise self._error(self.gp.GP_ERROR_MODEL_NOT_FOUND)

    def get_summary(self):
        return types.SimpleNamespace(text='Model: Canon EOS 80D')

    def get_single_config(self, name):
        self.calls.append(('get_single_config', name))
        self._check()
        if name not in self._config:
            raise self._error(self.gp.GP_ERROR_BAD_PARAMETERS)
        return self._config[name]

    def set_single_config(self, name, widget):
        self.calls.append(('set_single_config', name, widget.get_value()))
        self._check()
        if name == 'manualfocusdrive':
            self.drives.append(widget.get_value())
            widget._value = 0 if widget.get_type() == self.gp.GP_WIDGET_RANGE else 'None'

    def capture_preview(self):
        self.calls.append(('capture_preview',))
        time.sleep(FRAME_PERIOD)
        self._check()
        return FakeCameraFile(self._jpeg)

    def exit(self):
        self.calls.append(('exit',))
