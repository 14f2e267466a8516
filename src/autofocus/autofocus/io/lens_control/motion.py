"""A lens driven like a focus motor: moves in a worker thread, rest times, faults.

The focus server waits for "moving: false" and counts frames exposed after
`stationary_since` (plus its own settle time). A lens gives no signal when it
arrives, so a move is taken to last `settle_time` after the last command to the
device; a relative-only lens (DSLR) is stepped one drive call at a time with
`settle_time` between calls (libgphoto2 cannot say when the motor finished) and
its position is counted from the steps.

Any device error stops the move and becomes the fault text; the next move that
reaches the device clears it (a stop does not: it touches no device). No ROS
here: `nodes/lens_motor_node.py` serves this on the motor topics.
"""
import math
import threading
import time
from typing import NamedTuple

from autofocus.io.lens_control.base import Lens, LensError


class LensState(NamedTuple):
    position: float
    target: float
    moving: bool
    stationary_since: float  # on the actuator's clock
    fault: str


class LensActuator:

    def __init__(self, lens: Lens, settle_time: float = 0.1, initial_position: float = None,
                 min_position: float = None, max_position: float = None,
                 clock=time.monotonic):
        if settle_time < 0 or not math.isfinite(settle_time):
            raise ValueError(f'settle_time must be >= 0, got {settle_time}')
        self.lens = lens
        self.settle_time = settle_time
        self.clock = clock
        # Limits come from the device; a relative-only lens has none, so the caller gives
        # the range it may be driven over.
        self.min_position = lens.min_position if min_position is None else float(min_position)
        self.max_position = lens.max_position if max_position is None else float(max_position)
        if not self.min_position < self.max_position:
            raise ValueError(f'limits [{self.min_position}, {self.max_position}] are empty')
        self._cond = threading.Condition()
        if lens.position_measured:
            position = lens.read_position()
        else:
            position = 0.0 if initial_position is None else float(initial_position)
        self._position = position
        self._target = position
        self._moving = False
        self._stationary_since = clock()
        self._fault = ''
        self._pending = None   # the newest command not yet taken by the worker
        self._generation = 0   # bumped by every command: a running move stops when it changes
        self._closed = False
        self._worker = threading.Thread(target=self._run, name='lens-actuator', daemon=True)
        self._worker.start()

    @property
    def position_measured(self) -> bool:
        return self.lens.position_measured

    def clamp(self, target: float) -> float:
        return min(max(float(target), self.min_position), self.max_position)

    # -- commands (any thread) ------------------------------------------------------------

    def move_to(self, target: float) -> float:
        """Start a move to `target` clamped to the limits; return the clamped target."""
        if not math.isfinite(target):
            raise ValueError(f'target must be finite, got {target}')
        target = self.clamp(target)
        self._command(target)
        return target

    def move_by(self, delta: float) -> float:
        """A move by `delta` from where the lens is now (as motor_driver's relative moves)."""
        with self._cond:
            base = self._position
        return self.move_to(base + delta)

    def stop(self) -> None:
        self._command(None)

    def _command(self, target):
        with self._cond:
            if self._closed:
                raise LensError(f'{self.lens.description} is closed')
            self._generation += 1
            self._pending = (self._generation, target)
            if target is not None:
                self._target = target
                self._moving = True
            self._cond.notify_all()

    def clear_fault(self) -> None:
        """The device is back (its source reconnected): the fault no longer holds."""
        with self._cond:
            self._fault = ''

    def state(self) -> LensState:
        with self._cond:
            return LensState(self._position, self._target, self._moving,
                             self._stationary_since, self._fault)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._generation += 1
            self._cond.notify_all()
        self._worker.join(timeout=10.0)
        self.lens.close()

    # -- the worker -----------------------------------------------------------------------

    def _run(self):
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                generation, target = self._pending
                self._pending = None
            try:
                if target is not None:
                    self._execute(generation, target)
                fault = ''
            except LensError as error:
                fault = str(error)
            except Exception as error:  # a library error we did not foresee: still a fault
                fault = f'{self.lens.description}: {type(error).__name__}: {error}'
            with self._cond:
                # A stop touches no device, so only a move that reached it clears a fault.
                if fault or (target is not None and self._generation == generation):
                    self._fault = fault
                if self._pending is None:
                    if self._moving or fault:
                        self._stationary_since = self.clock()
                    self._moving = False
                    self._target = self._position if fault or target is None else self._target
                self._cond.notify_all()

    def _superseded(self, generation) -> bool:
        return self._generation != generation

    def _wait(self, generation, seconds) -> bool:
        """Sleep `seconds` unless a newer command arrives; True if it did."""
        deadline = self.clock() + seconds
        with self._cond:
            while not self._superseded(generation):
                left = deadline - self.clock()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _execute(self, generation, target):
        lens = self.lens
        if lens.relative_only:
            # Whole drive steps towards the target, counted once here (a per-step test of
            # "close enough" can oscillate around a target between two steps).
            with self._cond:
                steps = round((target - self._position) / lens.units_per_step)
            direction = 1 if steps > 0 else -1
            for _ in range(abs(steps)):
                if self._superseded(generation):
                    return
                lens.drive(direction)
                with self._cond:
                    self._position += direction * lens.units_per_step
                if self._wait(generation, self.settle_time):
                    return
            return
        sent = lens.set_position(target)
        position = lens.read_position()
        with self._cond:
            self._position = position
            if not math.isclose(position, sent, abs_tol=max(lens.resolution, 1e-9)):
                raise LensError(f'{lens.description}: set {sent:g} but it reports {position:g}')
        self._wait(generation, self.settle_time)
