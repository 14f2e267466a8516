"""Cameras that turn their own lens: one small class per device library.

Every lens here has the interface of :class:`base.Lens` (limits from the device,
absolute or relative-only moves, a read-back position), and
:class:`motion.LensActuator` turns any of them into what a focus motor driver is
(moving, stationary_since, fault), so `nodes/lens_motor.py` serves them all on
the same `focus_motor/command` and `focus_motor/state` topics as `motor_driver`.

The device libraries (linuxpy, picamera2, gphoto2) are imported only by the
module of the device that is chosen, so a machine without one is unaffected.
No ROS here.
"""
