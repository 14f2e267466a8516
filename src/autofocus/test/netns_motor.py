"""Run the focus motor driver on gpiozero's mock pins, logging every pin change to a file.

    python netns_motor.py PIN_LOG [motor_driver arguments...]

For the network-namespace tests: the driver runs as its own process (in the "Pi"
namespace), so the test reads what the pins did from PIN_LOG, one line per change:
"<wall-clock time> <BCM pin> <new value>". Wall-clock time, so that it compares with
the ROS log stamps of the other processes on this machine.
"""
import sys
import time


def main() -> int:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    log = open(sys.argv[1], 'a', buffering=1)

    class LoggedPin(MockPWMPin):
        def _change_state(self, value):
            changed = super()._change_state(value)
            if changed:
                log.write(f'{time.time():.6f} {self.info.name[len("GPIO"):]} {value}\n')
            return changed

    Device.pin_factory = MockFactory(pin_class=LoggedPin)
    from autofocus_motor import motor_driver_node
    return motor_driver_node.main(['motor_driver', *sys.argv[2:]])


if __name__ == '__main__':
    sys.exit(main())
