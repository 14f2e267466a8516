"""Focus motor drivers: plain classes with no ROS in them.

Every driver has the same interface (:class:`MotorDriver`): positions in motor
units (half-steps for the stepper), speeds in units per second, soft limits
that clamp targets and stop continuous moves, a maximum speed that clamps
commanded speeds, and ``close()`` that leaves every pin off.

Motion runs on the driver's own clock (``time.monotonic`` unless one is
given), so its timing does not depend on how often the caller polls:
the stepper and the DC motor time their pins from a background thread; the
simulated motor computes where it is from the time.

gpiozero picks the pin factory (lgpio on a Pi; ``GPIOZERO_PIN_FACTORY=mock
GPIOZERO_MOCK_PIN_CLASS=mockpwmpin`` without hardware: the DC driver's PWM needs
the PWM mock pins); pass ``pin_factory`` to override it.
"""
import math
import threading
import time
from typing import NamedTuple, Optional, Sequence

# 28BYJ-48 on a ULN2003 board, coils on IN1..IN4. Each half-step turns exactly one coil on or
# off, so the rotor is always held by one or two coils.
HALF_STEP_SEQUENCE = (
    (1, 0, 0, 0),
    (1, 1, 0, 0),
    (0, 1, 0, 0),
    (0, 1, 1, 0),
    (0, 0, 1, 0),
    (0, 0, 1, 1),
    (0, 0, 0, 1),
    (1, 0, 0, 1),
)

# Python's sleeps are late by up to a few hundred microseconds on a Pi; waits shorter than
# this are not worth a context switch.
_MIN_WAIT = 50e-6


class DriverState(NamedTuple):
    """One consistent reading of a driver (taken under its lock)."""

    position: float
    target: float
    moving: bool
    # On the driver's clock: when the motor last came to rest.
    stationary_since: float
    fault: str


class MotorDriver:
    """Common interface and soft-limit bookkeeping of every focus motor driver.

    Subclasses implement ``_plan(now)`` (act on ``self._mode``/``_goal``/``_speed``/
    ``_deadline``), ``_position_now(now)``, ``_is_moving(now)`` and ``_release()``.
    """

    name = 'base'
    # False when the position is estimated (e.g. from time x speed) rather than counted.
    position_measured = True

    # What the driver has been asked to do.
    IDLE, MOVE, VELOCITY = 'idle', 'move', 'velocity'

    def __init__(self, *, min_position: float = 0.0, max_position: float = 1000.0,
                 max_speed: float = 2000.0, initial_position: float = 0.0, clock=time.monotonic):
        _check_limits(min_position, max_position)
        _check_speed('max_speed', max_speed)
        if not min_position <= initial_position <= max_position:
            raise ValueError(f'initial_position {initial_position} is outside the soft limits '
                             f'[{min_position}, {max_position}]')
        self._clock = clock
        # A Condition, so that a motion thread can sleep until the next step or a new command.
        self._cond = threading.Condition(threading.RLock())
        self._min_position = float(min_position)
        self._max_position = float(max_position)
        self._max_speed = float(max_speed)
        self._mode = self.IDLE
        self._goal = float(initial_position)
        self._speed = 0.0  # signed in VELOCITY mode, positive otherwise
        self._deadline: Optional[float] = None  # VELOCITY mode stops here unless renewed
        # Any motion stops here unless renew_contact() moves it (None: no contact watchdog).
        self._contact_deadline: Optional[float] = None
        # When (driver clock) the motor last stopped because the contact deadline passed.
        self._contact_lost_at: Optional[float] = None
        self._stationary_since = clock()
        self._fault = ''
        self._closed = False

    # -- configuration --------------------------------------------------------------------

    @property
    def clock(self):
        """The clock of this driver's times (e.g. ``stationary_since``)."""
        return self._clock

    @property
    def min_position(self) -> float:
        return self._min_position

    @property
    def max_position(self) -> float:
        return self._max_position

    @property
    def max_speed(self) -> float:
        return self._max_speed

    def set_limits(self, min_position: float, max_position: float) -> None:
        """Change the soft limits; a motion under way is re-planned within them."""
        _check_limits(min_position, max_position)
        with self._cond:
            self._min_position = float(min_position)
            self._max_position = float(max_position)
            if self._mode == self.MOVE:
                self._goal = self.clamp_target(self._goal)
            self._replan()

    def set_max_speed(self, max_speed: float) -> None:
        _check_speed('max_speed', max_speed)
        with self._cond:
            self._max_speed = float(max_speed)
            if self._mode != self.IDLE:
                self._speed = math.copysign(min(abs(self._speed), self.speed_limit),
                                            self._speed)
            self._replan()

    @property
    def speed_limit(self) -> float:
        """The highest speed this driver will run at (max_speed, or less if the motor can't)."""
        return self._max_speed

    def clamp_target(self, target: float) -> float:
        return min(max(float(target), self._min_position), self._max_position)

    def clamp_speed(self, speed: float) -> float:
        """Clamp a speed's magnitude to the speed limit, keeping its sign."""
        if not math.isfinite(speed) or speed == 0.0:
            raise ValueError(f'speed must be finite and non-zero, got {speed}')
        return math.copysign(min(abs(speed), self.speed_limit), speed)

    # -- commands -------------------------------------------------------------------------

    def start_move(self, target: float, speed: float, absolute: bool = True) -> float:
        """Start moving to ``target`` (clamped to the soft limits) at ``|speed|``.

        Returns immediately with the clamped target; the move runs to completion unless
        another command replaces it. ``absolute`` is False when the target was computed
        from a relative move (a driver that must home first refuses only absolute ones).
        """
        if not math.isfinite(target):
            raise ValueError(f'target must be finite, got {target}')
        self._check_move_allowed(absolute)
        speed = abs(self.clamp_speed(speed))
        with self._cond:
            self._check_open()
            self._mode = self.MOVE
            self._goal = self.clamp_target(target)
            self._speed = speed
            self._deadline = None
            self._replan()
            return self._goal

    def start_velocity(self, speed: float, timeout: Optional[float] = None) -> float:
        """Turn continuously at signed ``speed`` until a limit, ``stop()`` or ``timeout``.

        ``timeout`` (seconds) is a watchdog: the motor stops unless another
        ``start_velocity`` arrives within it. Returns the clamped speed.
        """
        speed = self.clamp_speed(speed)
        with self._cond:
            self._check_open()
            self._mode = self.VELOCITY
            self._speed = speed
            self._deadline = None if timeout is None else self._clock() + timeout
            self._replan()
            return speed

    def renew_contact(self, timeout: Optional[float]) -> None:
        """Whatever the motion, stop ``timeout`` s from now unless renewed again.

        The contact watchdog of every mode: the node calls this on each message from its
        commander, so the motor stops on its own clock (not the caller's polling) when the
        commander falls silent. ``None`` disarms it.
        """
        with self._cond:
            now = self._clock()
            self._contact_deadline = None if timeout is None else now + timeout
            self._contact_lost_at = None
            if self._is_moving(now):
                self._replan()

    @property
    def contact_lost_at(self) -> Optional[float]:
        """When (driver clock) the contact watchdog last stopped the motor; None if not
        since the last renew_contact()."""
        return self._contact_lost_at

    def set_position(self, position: float) -> None:
        """Declare where the motor is now (homed, or confirmed by hand); only at rest."""
        if not math.isfinite(position):
            raise ValueError(f'position must be finite, got {position}')
        with self._cond:
            self._check_open()
            now = self._clock()
            self._settle(now)
            if self._is_moving(now):
                raise RuntimeError('cannot set the position while the motor moves')
            if not self._min_position <= position <= self._max_position:
                raise ValueError(f'position {position:g} is outside the soft limits '
                                 f'[{self._min_position:g}, {self._max_position:g}]')
            self._mode = self.IDLE
            self._set_position(float(position))

    def stop(self) -> None:
        """Stop as soon as possible (the stepper finishes the half-step it is on)."""
        with self._cond:
            if self._closed:
                return
            self._mode = self.IDLE
            self._deadline = None
            self._replan()

    def update(self, now: Optional[float] = None) -> None:
        """Advance bookkeeping to ``now``; the node calls this at a fixed rate.

        Drivers keep their own timing, so calling this late or rarely only delays
        when a stop is noticed, never where the motor stops.
        """

    def close(self) -> None:
        """Stop, turn every pin off and release the devices. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._mode = self.IDLE
            self._cond.notify_all()
        self._shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- state ----------------------------------------------------------------------------

    def state(self) -> DriverState:
        with self._cond:
            now = self._clock()
            self._settle(now)
            moving = self._is_moving(now)
            position = self._position_now(now)
            if self._mode == self.MOVE:
                target = self._goal
            elif self._mode == self.VELOCITY and moving:
                # Where a continuous move would end: the limit it is heading for.
                target = self._max_position if self._speed > 0 else self._min_position
            else:
                target = position
            return DriverState(position, target, moving, self._stationary_since, self._fault)

    @property
    def position(self) -> float:
        return self.state().position

    @property
    def target(self) -> float:
        return self.state().target

    @property
    def moving(self) -> bool:
        return self.state().moving

    @property
    def stationary_since(self) -> float:
        return self.state().stationary_since

    @property
    def fault(self) -> str:
        return self._fault

    @property
    def closed(self) -> bool:
        return self._closed

    # -- for subclasses -------------------------------------------------------------------

    def _replan(self) -> None:
        self._plan(self._clock())
        self._cond.notify_all()

    def _plan(self, now: float) -> None:
        raise NotImplementedError

    def _settle(self, now: float) -> None:
        """Finish bookkeeping of a motion that has ended by ``now`` (lock held)."""

    def _position_now(self, now: float) -> float:
        raise NotImplementedError

    def _is_moving(self, now: float) -> bool:
        raise NotImplementedError

    def _set_position(self, position: float) -> None:
        """Redefine the position of a motor at rest (lock held)."""
        raise NotImplementedError

    def _contact_expired(self, now: float) -> bool:
        return self._contact_deadline is not None and now >= self._contact_deadline

    def _shutdown(self) -> None:
        """Pins off and devices released (called once, without the lock)."""

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f'{self.name} driver is closed')

    def _check_move_allowed(self, absolute: bool) -> None:
        """Raise if this driver cannot take such a move now (see HomingStepperDriver)."""


class _LinearDriver(MotorDriver):
    """A motor whose position is a straight line in time between commands.

    The motion under way is the segment p(t) = p0 + v (t - t0) for t0 <= t <= t_end,
    so position, arrival and the limit crossing of a continuous move are all exact
    times, not polled.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._p0 = self._goal
        self._t0 = self._stationary_since
        self._v = 0.0
        self._t_end = self._t0
        self._p_end = self._p0
        # The segment under way ends at the contact deadline, not where it was going.
        self._cut_by_contact = False

    def _set_position(self, position: float) -> None:
        self._p0 = self._p_end = self._goal = position

    def _position_now(self, now: float) -> float:
        if self._v == 0.0:
            return self._p0
        return self._p0 + self._v * (min(now, self._t_end) - self._t0)

    def _is_moving(self, now: float) -> bool:
        return self._v != 0.0

    def _plan(self, now: float) -> None:
        self._settle(now)
        self._cut_by_contact = False
        position = self._position_now(now)
        speed = self._effective_speed(abs(self._speed))
        duration, end = 0.0, position
        if self._mode == self.MOVE:
            distance = self._goal - position
            velocity = math.copysign(speed, distance)
            duration, end = abs(distance) / speed, self._goal
        elif self._mode == self.VELOCITY:
            velocity = math.copysign(speed, self._speed)
            end = self._max_position if velocity > 0 else self._min_position
            duration = max(0.0, (end - position) / velocity)
            if self._deadline is not None and self._deadline - now < duration:
                duration = max(0.0, self._deadline - now)
                end = position + velocity * duration
        if duration > 0.0 and self._contact_deadline is not None \
                and self._contact_deadline - now < duration:
            duration = max(0.0, self._contact_deadline - now)
            end = position + velocity * duration
            self._cut_by_contact = True
            if duration <= 0.0:
                self._contact_lost_at = now
        if duration <= 0.0:
            self._mode = self.IDLE
            if self._v != 0.0:
                self._come_to_rest(now, position)
            return
        self._p0, self._t0, self._v, self._t_end = position, now, velocity, now + duration
        # Where this segment ends if it runs its course, free of rounding error.
        self._p_end = end
        self._drive(velocity)

    def _come_to_rest(self, when: float, position: float) -> None:
        self._drive(0.0)
        self._p0, self._t0, self._v, self._t_end = position, when, 0.0, when
        self._stationary_since = when
        if self._cut_by_contact:
            self._cut_by_contact = False
            self._contact_lost_at = when
            self._mode = self.IDLE
        if self._mode == self.MOVE:
            self._mode = self.IDLE

    def _effective_speed(self, speed: float) -> float:
        """The speed the motor will really run at when asked for ``speed``."""
        return speed

    def _drive(self, velocity: float) -> None:
        """Set the hardware to turn at ``velocity`` (0 = stop)."""


class SimDriver(_LinearDriver):
    """An ideal actuator: moves at exactly the commanded speed, starts and stops at once."""

    name = 'sim'

    def _settle(self, now: float) -> None:
        if self._v != 0.0 and now >= self._t_end:
            # Arrived (or reached a limit or the watchdog): at rest from the exact end time.
            self._come_to_rest(self._t_end, self._p_end)

    def _is_moving(self, now: float) -> bool:
        return self._v != 0.0 and now < self._t_end

    def update(self, now: Optional[float] = None) -> None:
        with self._cond:
            self._settle(self._clock() if now is None else now)


class DCDriver(_LinearDriver):
    """A DC motor on an H-bridge (gpiozero ``Motor``), moved by timed pulses.

    Nothing measures the shaft, so the position is estimated as time x speed:
    a move of N units at speed S runs the motor for N/S seconds. ``full_speed`` is
    the calibrated speed at 100 % duty; with ``pwm`` a slower speed is a
    proportional duty cycle, without it every move runs at ``full_speed``.
    The optional enable pin is on only while the motor runs.
    """

    name = 'dc'
    position_measured = False

    def __init__(self, forward_pin, backward_pin, *, enable_pin=None, pwm: bool = True,
                 full_speed: Optional[float] = None, pin_factory=None, **kwargs):
        super().__init__(**kwargs)
        self._pwm = bool(pwm)
        self._full_speed = float(self._max_speed if full_speed is None else full_speed)
        _check_speed('full_speed', self._full_speed)
        if not self._pwm and self._max_speed < self._full_speed:
            raise ValueError(f'without PWM the motor only runs at full_speed '
                             f'({self._full_speed}), which is above max_speed '
                             f'({self._max_speed})')
        # Imported here so that the sim driver works where gpiozero is not installed.
        from gpiozero import DigitalOutputDevice, Motor

        self._motor = None
        self._enable = None
        try:
            self._motor = Motor(forward_pin, backward_pin, pwm=self._pwm,
                                pin_factory=pin_factory)
            if enable_pin is not None:
                # Not Motor(enable=...): gpiozero drives that pin high from the start; we keep
                # it low whenever the motor is at rest.
                self._enable = DigitalOutputDevice(enable_pin, initial_value=False,
                                                   pin_factory=pin_factory)
        except BaseException:
            self._release_devices()
            raise
        self._thread = threading.Thread(target=self._run, name='dc-motor', daemon=True)
        self._thread.start()

    @property
    def speed_limit(self) -> float:
        return min(self._max_speed, self._full_speed)

    def _effective_speed(self, speed: float) -> float:
        return min(speed, self._full_speed) if self._pwm else self._full_speed

    def _drive(self, velocity: float) -> None:
        if velocity == 0.0:
            self._motor.stop()
            if self._enable is not None:
                self._enable.off()
            return
        duty = min(1.0, abs(velocity) / self._full_speed) if self._pwm else 1
        if self._enable is not None:
            self._enable.on()
        if velocity > 0:
            self._motor.forward(duty)
        else:
            self._motor.backward(duty)

    def _run(self) -> None:
        """Switch the motor off at the end of each timed pulse."""
        with self._cond:
            while not self._closed:
                try:
                    if self._v == 0.0:
                        self._cond.wait()
                        continue
                    remaining = self._t_end - self._clock()
                    if remaining > _MIN_WAIT:
                        self._cond.wait(remaining)
                        continue
                    self._drive(0.0)
                    # The estimate uses when the pins really went off, not when they should have.
                    stopped = self._clock()
                    self._come_to_rest(stopped, self._p0 + self._v * (stopped - self._t0))
                    if self._mode == self.VELOCITY:
                        self._mode = self.IDLE
                except Exception as err:  # a pin that fails to switch: stop and report it
                    self._fault = f'dc motor: {err}'
                    self._v = 0.0
                    self._all_off()
                    self._cond.wait()

    def _all_off(self) -> None:
        # Each pin on its own, so that one that fails does not leave the others on.
        devices = [self._enable]
        if self._motor is not None:
            devices += [self._motor.forward_device, self._motor.backward_device]
        for device in devices:
            if device is not None:
                try:
                    device.off()
                except Exception:
                    pass

    def _shutdown(self) -> None:
        self._thread.join(timeout=1.0)
        with self._cond:
            if self._v != 0.0:
                now = self._clock()
                self._come_to_rest(now, self._p0 + self._v * (now - self._t0))
        self._release_devices()

    def _release_devices(self) -> None:
        self._all_off()
        for device in (self._motor, self._enable):
            if device is not None:
                device.close()


class StepperDriver(MotorDriver):
    """A 4-wire unipolar stepper (28BYJ-48 + ULN2003) on four GPIO pins, half-stepping.

    Positions are half-steps, counted exactly. A background thread times the
    steps from the commanded speed on absolute deadlines (so timing does not
    drift). When the motor comes to rest the coils are held for one step
    period (at most ``hold_time``) so the rotor settles, then all switched off
    so the motor stays cool; the phase is kept in the position, so the next
    move re-energises the same coils first.
    """

    name = 'stepper'

    def __init__(self, pins: Sequence, *, hold_time: float = 0.02, pin_factory=None,
                 **kwargs):
        if len(pins) != 4:
            raise ValueError(f'a 4-wire stepper needs exactly 4 pins, got {list(pins)}')
        super().__init__(**kwargs)
        from gpiozero import DigitalOutputDevice

        self._hold_time = float(hold_time)
        self._position = self._round_inward(self._goal)
        self._goal = float(self._position)
        self._coils = []
        self._pattern = [0, 0, 0, 0]  # what the coils were last set to
        try:
            for pin in pins:
                self._coils.append(
                    DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory))
        except BaseException:
            self._release_devices()
            raise
        self._moving = False
        self._last_step: Optional[float] = None
        self._next_step: Optional[float] = None
        self._release_at: Optional[float] = None
        self._steps_taken = 0
        self._thread = threading.Thread(target=self._run, name='stepper', daemon=True)
        self._thread.start()

    @property
    def steps_taken(self) -> int:
        """Half-steps taken since start, both directions: for tests and diagnostics."""
        return self._steps_taken

    def clamp_target(self, target: float) -> float:
        return float(self._round_inward(super().clamp_target(target)))

    def _round_inward(self, position: float) -> int:
        """Round to a whole half-step that is still inside the soft limits."""
        steps = round(position)
        if steps > self._max_position:
            steps = math.floor(self._max_position)
        if steps < self._min_position:
            steps = math.ceil(self._min_position)
        return int(steps)

    def _position_now(self, now: float) -> float:
        return float(self._position)

    def _set_position(self, position: float) -> None:
        self._position = self._round_inward(position)
        self._goal = float(self._position)

    def _is_moving(self, now: float) -> bool:
        return self._moving

    def _plan(self, now: float) -> None:
        if not self._moving:
            # Start here rather than in the thread, so that `moving` is true as soon as a
            # command that moves the motor returns.
            if self._direction(now) != 0:
                self._start(now)
        elif self._last_step is not None and self._mode != self.IDLE:
            # A new speed takes effect from the last step, not from the next planned one.
            self._next_step = self._last_step + 1.0 / abs(self._speed)

    def _start(self, now: float) -> None:
        # Energise the phase the rotor rests at, then take the first step one period later.
        interval = 1.0 / abs(self._speed)
        self._write_phase()
        self._moving = True
        self._last_step = None
        self._next_step = now + interval
        self._release_at = now + min(interval, self._hold_time)

    def _direction(self, now: float) -> int:
        """Which way the next half-step goes (0: none); ends finished commands."""
        if self._mode != self.IDLE and self._contact_expired(now):
            self._mode = self.IDLE
            self._contact_lost_at = now
            # No holding torque for a motor nobody commands: every coil off at once.
            self._release_at = now
            return 0
        if self._mode == self.MOVE:
            if self._goal > self._position:
                return 1
            if self._goal < self._position:
                return -1
            self._mode = self.IDLE
        elif self._mode == self.VELOCITY:
            direction = 1 if self._speed > 0 else -1
            expired = self._deadline is not None and now >= self._deadline
            # Blocked only by the limit it is heading for, so a motor left outside the limits
            # (they can change at run time) can still be driven back in.
            blocked = (self._position + 1 > self._max_position if direction > 0
                       else self._position - 1 < self._min_position)
            if not (expired or blocked):
                return direction
            self._mode = self.IDLE
        return 0

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                try:
                    wait = self._tick(self._clock())
                except Exception as err:  # a pin that fails to switch: stop and report it
                    self._fault = f'stepper: {err}'
                    self._mode = self.IDLE
                    self._moving = False
                    self._all_off()
                    wait = None
                if wait is None:
                    self._cond.wait()
                elif wait > _MIN_WAIT:
                    self._cond.wait(wait)

    def _tick(self, now: float) -> Optional[float]:
        """Do what is due at ``now``; return how long until the next thing is due."""
        direction = self._direction(now)
        if direction == 0:
            if self._moving:
                if now < self._release_at:
                    return self._release_at - now
                self._all_off()
                self._moving = False
                self._last_step = self._next_step = None
                self._stationary_since = now
            return None
        if not self._moving:
            self._start(now)
        elif now >= self._next_step:
            interval = 1.0 / abs(self._speed)
            self._position += direction
            self._steps_taken += 1
            self._write_phase()
            self._last_step = now
            # Keep to the schedule, but after a late wake-up never step faster than twice
            # the speed: a stepper that is rushed loses steps.
            self._next_step = max(self._next_step + interval, now + interval / 2)
            self._release_at = now + min(interval, self._hold_time)
        now = self._clock()
        wait = self._next_step - now
        if self._deadline is not None and self._mode == self.VELOCITY:
            wait = min(wait, self._deadline - now)
        if self._contact_deadline is not None and self._mode != self.IDLE:
            wait = min(wait, self._contact_deadline - now)
        return max(0.0, wait)

    def _write_phase(self) -> None:
        phase = HALF_STEP_SEQUENCE[self._position % len(HALF_STEP_SEQUENCE)]
        # Only the coils that change (one per half-step: a GPIO write costs tens of
        # microseconds on a Pi Zero), and those going off first, so that the coils of two
        # non-adjacent phases are never on together.
        for i in (0, 1):
            for index, (coil, value) in enumerate(zip(self._coils, phase)):
                if value == i and self._pattern[index] != value:
                    coil.value = value
                    self._pattern[index] = value

    def _all_off(self) -> None:
        for index, coil in enumerate(self._coils):
            try:
                coil.off()
                self._pattern[index] = 0
            except Exception:
                pass

    def _shutdown(self) -> None:
        self._thread.join(timeout=1.0)
        with self._cond:
            if self._moving:
                self._moving = False
                self._stationary_since = self._clock()
        self._release_devices()

    def _release_devices(self) -> None:
        self._all_off()
        for coil in self._coils:
            coil.close()


def _check_limits(min_position: float, max_position: float) -> None:
    if not (math.isfinite(min_position) and math.isfinite(max_position)):
        raise ValueError('soft limits must be finite')
    if not min_position < max_position:
        raise ValueError(f'min_position ({min_position}) must be below max_position '
                         f'({max_position})')


def _check_speed(name: str, speed: float) -> None:
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f'{name} must be a positive number, got {speed}')


class HomingRequired(RuntimeError):
    """An absolute move asked of a driver whose zero is not known yet."""


class HomingStepperDriver(StepperDriver):
    """A stepper with a home (limit) switch on a GPIO pin (gpiozero ``Button``).

    :meth:`home` turns the motor towards the switch (``homing_direction``) at
    ``homing_speed`` until the switch closes, stops, and makes the position where it closed
    zero. Until then the count of half-steps since start-up means nothing, so absolute
    moves are refused (:class:`HomingRequired`); relative and velocity moves still run (to
    jog, or for a hill climb). While homing, the soft limit the motor turns towards is
    moved out of the way (the lens may be anywhere), and restored after. If the switch does
    not close within the timeout (or the motor ran twice the range without it), the motor
    is stopped, the limits restored, and ``fault`` says what to check.

    The switch stops the motor from its own callback (gpiozero's pin thread), so the
    overshoot is at most the half-step under way; zero is where the switch closed, not
    where the motor came to rest.
    """

    def __init__(self, pins: Sequence, home_pin, *, home_pull_up: bool = True,
                 homing_direction: int = -1, homing_speed: float = 200.0,
                 homing_timeout: float = 30.0, pin_factory=None, **kwargs):
        if homing_direction not in (-1, 1):
            raise ValueError(f'homing_direction must be -1 or 1, got {homing_direction!r}')
        _check_speed('homing_speed', homing_speed)
        _check_speed('homing_timeout', homing_timeout)
        super().__init__(pins, pin_factory=pin_factory, **kwargs)
        from gpiozero import Button

        self._home_pin = home_pin
        self._direction_home = homing_direction
        self._homing_speed = min(float(homing_speed), self.speed_limit)
        self._homing_timeout = float(homing_timeout)
        self._homed = False
        self._homing = False
        self._pressed_at: Optional[int] = None
        self._switch_closed = threading.Event()
        self._switch = None
        try:
            self._switch = Button(home_pin, pull_up=home_pull_up, pin_factory=pin_factory)
        except BaseException:
            self.close()
            raise
        self._switch.when_pressed = self._on_switch

    @property
    def homed(self) -> bool:
        return self._homed

    @property
    def position_measured(self) -> bool:
        """Steps are counted, but from an unknown zero until the motor has homed."""
        return self._homed

    @property
    def homing(self) -> bool:
        return self._homing

    @property
    def switch_pressed(self) -> bool:
        return bool(self._switch.is_pressed)

    def _check_move_allowed(self, absolute: bool) -> None:
        if self._homing:
            raise RuntimeError('homing is under way: moves are refused until it ends')
        if absolute and not self._homed:
            raise HomingRequired(
                'absolute moves are refused until the motor has homed (its zero is unknown): '
                'call the home service first, or use relative moves')

    def start_velocity(self, speed: float, timeout: Optional[float] = None) -> float:
        # home() itself calls StepperDriver.start_velocity, past this check.
        if self._homing:
            raise RuntimeError('homing is under way: moves are refused until it ends')
        return super().start_velocity(speed, timeout)

    def _on_switch(self) -> None:
        with self._cond:
            if self._homing and self._pressed_at is None:
                self._pressed_at = self._position
                self._mode = self.IDLE
                self._replan()
        self._switch_closed.set()

    def home(self, timeout: Optional[float] = None) -> tuple:
        """Find the switch and set zero there; return (success, message). Blocks."""
        timeout = self._homing_timeout if not timeout else float(timeout)
        with self._cond:
            self._check_open()
            if self._homing:
                return False, 'homing is already under way'
            self._homing = True
            self._fault = ''
            self._pressed_at = None
            self._switch_closed.clear()
            limits = (self._min_position, self._max_position)
            travel = limits[1] - limits[0]
            position = self._position
            self._min_position = min(limits[0], position - 2 * travel - 1)
            self._max_position = max(limits[1], position + 2 * travel + 1)
        deadline = time.monotonic() + timeout
        try:
            if self.switch_pressed:   # resting on the switch: leave it first, then find its edge
                super().start_velocity(-self._direction_home * self._homing_speed, timeout)
                released = _wait(lambda: not self.switch_pressed or not self.moving, deadline)
                self.stop()
                if not released or self.switch_pressed:
                    return self._fail(f'the home switch on GPIO {self._home_pin} did '
                                      f'not open when moving away from it within {timeout:g} s')
                self._wait_at_rest(deadline)
                self._switch_closed.clear()
            super().start_velocity(self._direction_home * self._homing_speed,
                                   max(0.0, deadline - time.monotonic()))
            _wait(lambda: self._pressed_at is not None or not self.moving, deadline)
            self._wait_at_rest(deadline + 1.0)
            if self._pressed_at is None:
                side = 'down' if self._direction_home < 0 else 'up'
                return self._fail(f'the home switch on GPIO {self._home_pin} did not '
                                  f'close within {timeout:g} s of turning {side} at '
                                  f'{self._homing_speed:g} units/s: check its wiring and '
                                  f'homing_direction; the motor is stopped')
            with self._cond:
                self._position -= self._pressed_at
                self._goal = float(self._position)
                self._homed = True
            return True, f'homed: zero is where the switch on GPIO {self._home_pin} closed'
        finally:
            with self._cond:
                self._homing = False
                self._min_position, self._max_position = limits

    def _fail(self, message: str) -> tuple:
        self.stop()
        self._wait_at_rest(time.monotonic() + 1.0)
        with self._cond:
            self._fault = f'homing failed: {message}'
            return False, self._fault

    def _wait_at_rest(self, deadline: float) -> None:
        _wait(lambda: not self.moving, deadline)

    def _shutdown(self) -> None:
        super()._shutdown()
        if self._switch is not None:
            self._switch.close()


def _wait(predicate, deadline: float, interval: float = 0.002) -> bool:
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)
    return True
