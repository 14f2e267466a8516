"""Picamera2 and DSLR (gphoto2) sources and lenses, through fakes of the libraries' own
objects (a Picamera2 instance, a gphoto2 Camera); no ROS here."""
import cv2
import gphoto2 as gp
import numpy as np
import pytest
from fakes.fake_devices import FakeGPhoto2Camera, FakePicamera2
from ros_helpers import textured_frame, wait_for

from autofocus.io.capture import SourceError
from autofocus.io.lens_control.gphoto2 import GPhoto2Source
from autofocus.io.lens_control.motion import LensActuator
from autofocus.io.lens_control.picamera2 import Picamera2Source
from autofocus.io.sources import make_source


def preview_jpeg():
    ok, data = cv2.imencode('.jpg', textured_frame(96, 64, seed=3))
    assert ok
    return data.tobytes()


# -- Picamera2 ----------------------------------------------------------------------------

def picamera2_source(fake, source='picamera2'):
    opened = []

    def open_camera(number):
        opened.append(number)
        return fake
    return Picamera2Source(source, 640, 480, open_camera=open_camera), opened


def test_picamera2_frames_and_lens_in_dioptres_with_limits_from_camera_controls():
    fake = FakePicamera2(lens_range=(0.0, 12.5, 1.0))
    source, opened = picamera2_source(fake, 'picamera2:1')
    frame = source.read()
    assert opened == [1] and frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert ('create_video_configuration', {'format': 'RGB888', 'size': (640, 480)}) \
        in fake.calls
    lens = source.lens
    assert (lens.min_position, lens.max_position, lens.default_position) == (0.0, 12.5, 1.0)
    assert fake.controls['AfMode'] == 0  # manual: the camera's own AF leaves the lens alone
    actuator = LensActuator(lens, settle_time=0.01)
    try:
        assert actuator.move_to(20.0) == 12.5  # beyond the VCM's range: clamped
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        actuator.move_by(-4.25)
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        assert actuator.state().position == 8.25
    finally:
        actuator.close()
    positions = [c[1]['LensPosition'] for c in fake.calls
                 if c[0] == 'set_controls' and 'LensPosition' in c[1]]
    assert positions == [1.0, 12.5, 8.25]
    source.release()
    assert fake.calls[-2:] == [('stop',), ('close',)]


def test_picamera2_fixed_focus_camera_is_a_clear_error_and_is_closed():
    fake = FakePicamera2(lens_range=None)
    source, _ = picamera2_source(fake)
    with pytest.raises(SourceError, match='no LensPosition control'):
        source.open()
    assert fake.closed


def test_picamera2_camera_gone_mid_move_is_a_fault_and_frames_stop():
    fake = FakePicamera2()
    source, _ = picamera2_source(fake)
    source.open()
    actuator = LensActuator(source.lens, settle_time=0.01)
    try:
        fake.gone = True
        actuator.move_to(3.0)
        assert wait_for(lambda: actuator.state().fault, 5.0)
        assert 'Picamera2 camera 0 lens' in actuator.state().fault
        assert 'timed out' in actuator.state().fault
        with pytest.raises(SourceError, match='stopped delivering frames'):
            source.read()
    finally:
        actuator.close()


def test_picamera2_not_installed_says_how_to_get_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'picamera2', None)  # import fails as on a PC
    with pytest.raises(SourceError, match='needs the picamera2 package'):
        make_source('picamera2').open()


# -- DSLR through gphoto2 -------------------------------------------------------------------

def dslr(**kwargs):
    fake = FakeGPhoto2Camera(gp, preview_jpeg(), **kwargs)
    source = GPhoto2Source(open_camera=lambda: fake.init() or fake)
    return fake, source


def test_dslr_live_view_frames_come_from_capture_preview():
    fake, source = dslr()
    frame = source.read()
    expected = cv2.imdecode(np.frombuffer(preview_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(frame, expected)
    assert fake.calls[0] == ('init',) and fake.calls[-1] == ('capture_preview',)
    source.release()
    assert fake.calls[-1] == ('exit',)


def test_dslr_moves_are_relative_drive_steps_with_an_estimated_position():
    fake, source = dslr()
    source.units_per_step, source.drive_step = 10.0, 2
    source.open()
    lens = source.lens
    assert lens.relative_only and not lens.position_measured
    actuator = LensActuator(lens, settle_time=0.01, min_position=0.0, max_position=1000.0,
                            initial_position=500.0)
    try:
        actuator.move_by(34.0)  # 3.4 steps: 3 drive calls towards far
        assert wait_for(lambda: not actuator.state().moving, 10.0)
        assert actuator.state().position == 530.0
        actuator.move_to(500.0)  # absolute: stepped back from the estimate
        assert wait_for(lambda: not actuator.state().moving, 10.0)
        assert actuator.state().position == 500.0
        assert actuator.move_by(-900.0) == 0.0  # clamped to the range it may be driven over
    finally:
        actuator.stop()
        actuator.close()
    assert fake.drives[:6] == ['Far 2'] * 3 + ['Near 2'] * 3


def test_nikon_drive_is_a_signed_step_count():
    fake, source = dslr(nikon=True)
    source.units_per_step, source.drive_step = 5.0, 30
    source.open()
    actuator = LensActuator(source.lens, settle_time=0.01, min_position=0.0,
                            max_position=1000.0, initial_position=500.0)
    try:
        actuator.move_by(-10.0)
        assert wait_for(lambda: not actuator.state().moving, 10.0)
        actuator.move_by(5.0)
        assert wait_for(lambda: not actuator.state().moving, 10.0)
        assert actuator.state().position == 495.0
    finally:
        actuator.close()
    assert fake.drives == [-30, -30, 30]


def test_dslr_without_manualfocusdrive_and_with_a_bad_drive_step():
    fake, source = dslr(drive=False)
    with pytest.raises(SourceError, match="no 'manualfocusdrive' setting.*live view on"):
        source.open()
    assert fake.calls[-1] == ('exit',)
    fake, source = dslr()
    source.drive_step = 4
    with pytest.raises(SourceError, match='Far 4.*drive_step to 1, 2 or 3'):
        source.open()


def test_dslr_unplugged_mid_move_is_a_fault_that_stops_the_move():
    fake, source = dslr()
    source.units_per_step = 10.0
    source.open()
    actuator = LensActuator(source.lens, settle_time=0.05, min_position=0.0,
                            max_position=1000.0, initial_position=500.0)
    try:
        actuator.move_by(200.0)  # 20 steps of 10 units
        assert wait_for(lambda: len(fake.drives) >= 2, 10.0)
        fake.gone = True
        assert wait_for(lambda: actuator.state().fault, 10.0)
        state = actuator.state()
        assert not state.moving and 'stopped answering' in state.fault
        assert state.position == 500.0 + 10.0 * len(fake.drives)  # counted what was driven
    finally:
        actuator.close()


def test_no_dslr_attached_real_libgphoto2_gives_a_clear_error():
    source = make_source('gphoto2')  # the real library: nothing is plugged in here
    with pytest.raises(SourceError, match='no DSLR found by libgphoto2.*auto-detect'):
        source.open()
