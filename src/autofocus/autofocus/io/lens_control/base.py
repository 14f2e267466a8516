"""What every self-focusing camera's lens offers the actuator (no ROS, no device library)."""


class LensError(RuntimeError):
    """The lens cannot be opened or moved; the message names the device and the fix."""


class Lens:
    """A lens the camera itself turns.

    Positions are in the device's own units (V4L2 focus_absolute steps, libcamera
    dioptres, or estimated DSLR drive units). Subclasses set the attributes and
    implement the moves they support; every method raises LensError with a reason.
    """

    description = 'lens'
    min_position = 0.0
    max_position = 0.0
    # Smallest distinguishable move (V4L2 control step; 0 = continuous).
    resolution = 0.0
    # False when the position is only counted from the moves commanded (DSLR).
    position_measured = True
    # True when the device can only step the focus near/far (DSLR manualfocusdrive).
    relative_only = False
    # Units one drive() call moves (relative-only lenses).
    units_per_step = 0.0

    def set_position(self, target: float) -> float:
        """Move to `target` (already within the limits); return the value sent to the device."""
        raise LensError(f'{self.description} cannot move to an absolute position')

    def drive(self, direction: int) -> None:
        """One step towards far (+1) or near (-1) (relative-only lenses)."""
        raise LensError(f'{self.description} has no relative focus drive')

    def read_position(self) -> float:
        """Where the device says the lens is."""
        raise LensError(f'{self.description} cannot report its position')

    def offers(self) -> dict:
        """What the device offers, for `hardware_check` reports: name -> description."""
        return {}

    def close(self) -> None:
        """Give the camera back as it was found (its own autofocus on again, if it was)."""
