"""V4L2 lens and the lens actuator, through a fake of linuxpy's Device (no ROS)."""
import pytest
from fakes.fake_devices import FakeV4L2Device
from ros_helpers import wait_for

from autofocus.io.lens_control.base import LensError
from autofocus.io.lens_control.motion import LensActuator
from autofocus.io.lens_control.v4l2 import V4L2Lens


def open_lens(device, source='/dev/video0'):
    opened = []

    def open_device(path):
        opened.append(path)
        device.open()
        return device

    lens = V4L2Lens(source, open_device=open_device)
    return lens, opened


def test_limits_come_from_the_control_query_and_autofocus_is_off_until_close():
    device = FakeV4L2Device(focus=(10, 180, 3, 40), focus_value=40, autofocus=True)
    lens, opened = open_lens(device, '0')
    assert opened == ['/dev/video0']
    assert (lens.min_position, lens.max_position, lens.resolution) == (10.0, 180.0, 3.0)
    assert lens.default_position == 40.0
    assert device.value('focus_automatic_continuous') == 0  # off before any move
    assert lens.set_position(100.0) == 100.0  # 10 + 30 steps of 3
    assert lens.set_position(101.4) == 100.0  # rounded to the step grid
    assert lens.read_position() == 100.0
    lens.close()
    assert device.value('focus_automatic_continuous') == 1  # the user's setting is back
    assert device.calls[-1] == ('close',)
    sets = [call for call in device.calls if call[0] == 'set']
    assert sets[0] == ('set', 'focus_automatic_continuous', False)
    assert sets[-1] == ('set', 'focus_automatic_continuous', True)


def test_autofocus_left_off_when_the_user_had_it_off_and_old_kernel_name():
    device = FakeV4L2Device(autofocus_name='Focus, Auto', autofocus=False)
    lens, _ = open_lens(device)
    lens.set_position(50)
    lens.close()
    assert device.value('focus_auto') == 0
    assert not [c for c in device.calls if c[0] == 'set' and c[1] == 'focus_auto']


def test_camera_without_focus_absolute_gets_an_error_naming_control_and_device():
    device = FakeV4L2Device(path='/dev/video2', card='Integrated Camera', focus=None,
                            autofocus_name=None)
    with pytest.raises(LensError) as error:
        open_lens(device, '/dev/video2')
    message = str(error.value)
    assert 'focus_absolute' in message and '/dev/video2' in message
    assert 'Integrated Camera' in message and 'v4l2-ctl -d /dev/video2 -l' in message
    assert device.closed


def test_missing_device_and_not_a_device():
    with pytest.raises(LensError, match='/dev/video9 is not present'):
        V4L2Lens('/dev/video9')  # the real linuxpy: nothing there
    with pytest.raises(LensError, match='not a V4L2 device'):
        V4L2Lens('http://example.invalid/stream')


def test_actuator_moves_clamps_out_of_range_targets_and_reports_rest():
    device = FakeV4L2Device(focus=(0, 250, 5, 0))
    actuator = LensActuator(open_lens(device)[0], settle_time=0.05)
    try:
        assert actuator.move_to(300.0) == 250.0  # out of range: clamped, like motor_driver
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        state = actuator.state()
        assert (state.position, state.target, state.fault) == (250.0, 250.0, '')
        assert device.value('focus_absolute') == 250
        assert actuator.move_to(-40.0) == 0.0
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        before = actuator.state().stationary_since
        actuator.move_by(62.0)  # 0 + 62 -> 60 on the 5-step grid, read back from the device
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        state = actuator.state()
        assert state.position == 60.0 and state.stationary_since > before
        # Every value written to the device was within its range.
        written = [c[2] for c in device.calls if c[:2] == ('set', 'focus_absolute')]
        assert written == [250, 0, 60]
    finally:
        actuator.close()
    assert device.value('focus_automatic_continuous') == 1


def test_device_gone_mid_move_is_a_fault_with_a_reason_and_stop_still_works():
    device = FakeV4L2Device()
    actuator = LensActuator(open_lens(device)[0], settle_time=0.01)
    try:
        actuator.move_to(100.0)
        assert wait_for(lambda: not actuator.state().moving, 5.0)
        device.unplug()
        actuator.move_to(150.0)
        assert wait_for(lambda: actuator.state().fault, 5.0)
        state = actuator.state()
        assert not state.moving and state.position == 100.0
        assert '/dev/video0 stopped answering' in state.fault and 'unplugged' in state.fault
        actuator.stop()
    finally:
        actuator.close()  # the restore fails quietly on a gone device; close still happens
    assert device.calls[-1] == ('close',)


def test_autofocus_switched_back_on_by_another_program_is_a_fault():
    device = FakeV4L2Device()
    actuator = LensActuator(open_lens(device)[0], settle_time=0.01)
    try:
        device.controls['focus_automatic_continuous']._value = 1
        actuator.move_to(20.0)
        assert wait_for(lambda: actuator.state().fault, 5.0)
        assert 'refused focus_absolute=20' in actuator.state().fault
        assert 'autofocus on again' in actuator.state().fault
        device.controls['focus_automatic_continuous']._value = 0
        actuator.move_to(25.0)  # a move that works clears the fault
        assert wait_for(lambda: not actuator.state().fault
                        and actuator.state().position == 25.0, 5.0)
    finally:
        actuator.close()


def test_a_newer_command_replaces_a_move_in_progress():
    device = FakeV4L2Device()
    # A settle time far longer than the wait below: only the stop can end the move in time.
    actuator = LensActuator(open_lens(device)[0], settle_time=60.0)
    try:
        actuator.move_to(100.0)
        assert wait_for(lambda: actuator.state().position == 100.0, 10.0)
        assert actuator.state().moving
        actuator.stop()
        assert wait_for(lambda: not actuator.state().moving, 10.0)
        assert actuator.state().target == 100.0
    finally:
        actuator.close()
