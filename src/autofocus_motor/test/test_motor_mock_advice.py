"""The advice the motor driver gives when it has no GPIO works when followed literally."""
import os
import re

import pytest
from ros_helpers import wait_for


@pytest.mark.parametrize('driver', ['dc', 'stepper'])
def test_the_no_gpio_advice_works_as_given(node_process, monkeypatch, driver):
    # No Pi here and no pin factory chosen: gpiozero finds no GPIO.
    for name in list(os.environ):
        if name.startswith('GPIOZERO_'):
            monkeypatch.delenv(name)
    failed = node_process('autofocus_motor', 'motor_driver', params={'driver': driver})
    assert failed.popen.wait(60.0) == 2, failed.log()
    advice = [(name, value.rstrip('.,;')) for name, value
              in re.findall(r'\b(GPIOZERO_[A-Z_]+)=(\S+)', failed.log())]
    assert ('GPIOZERO_PIN_FACTORY', 'mock') in advice, failed.log()

    for name, value in advice:   # follow it, literally
        monkeypatch.setenv(name, value)
    motor = node_process('autofocus_motor', 'motor_driver', params={'driver': driver})
    assert wait_for(lambda: 'ready at position' in motor.log() or not motor.alive(), 60.0), \
        motor.log()
    assert motor.alive(), motor.log()
    assert 'PinPWMUnsupported' not in motor.log()
    assert motor.interrupt() == 0, motor.log()
