"""Fixtures of the focus motor tests: gpiozero's mock pins, with a history of every change.

gpiozero's MockPin keeps a per-pin history of changes with times relative to the pin's own
previous change, which cannot tell the order of changes across pins. RecordingPin adds one
shared, ordered log of (time, pin number, new state), from which the tests rebuild the
coil pattern after each step.
"""
import time

import pytest


class PinRecorder:
    def __init__(self, factory, log):
        self.factory = factory
        self.log = log

    def pin(self, number):
        return self.factory.pin(number)

    def states(self, numbers):
        """The current state of each pin, as 0/1 (PWM duty > 0 counts as 1)."""
        return tuple(int(self.pin(n).state > 0) for n in numbers)

    def values(self, numbers):
        return tuple(float(self.pin(n).state) for n in numbers)

    def changes(self, numbers):
        """(time, number, state) of every change of these pins, in order."""
        wanted = set(numbers)
        return [entry for entry in list(self.log) if entry[1] in wanted]

    def patterns(self, numbers):
        """The pattern of the pins after each change, in order."""
        current = dict.fromkeys(numbers, 0)
        patterns = []
        for _, number, state in self.changes(numbers):
            current[number] = int(state > 0)
            patterns.append(tuple(current[n] for n in numbers))
        return patterns

    def clear(self):
        self.log.clear()


@pytest.fixture
def mock_pins():
    """Install gpiozero's MockFactory (PWM-capable pins) as the default pin factory."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    log = []

    class RecordingPin(MockPWMPin):
        def _change_state(self, value):
            changed = super()._change_state(value)
            if changed:
                # Pins are named 'GPIO17' and so on; the tests use the BCM numbers.
                log.append((time.monotonic(), int(self.info.name[len('GPIO'):]), value))
            return changed

    factory = MockFactory(pin_class=RecordingPin)
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield PinRecorder(factory, log)
    factory.reset()
    Device.pin_factory = previous
