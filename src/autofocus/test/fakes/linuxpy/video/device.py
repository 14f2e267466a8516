"""Fake linuxpy.video.device: Device(path) is a FakeV4L2Device configured by the test."""
from fake_devices import device_from_environment


def Device(path, **kwargs):  # noqa: N802 (the library's class name)
    return device_from_environment(str(path))
