"""Fake linuxpy for node processes in tests: see fake_devices.device_from_environment."""
