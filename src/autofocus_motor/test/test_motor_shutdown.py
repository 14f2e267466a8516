"""An executor error during a shutdown under way is the requested stop; otherwise it shows."""
from autofocus_motor import motor_driver_node


class Context:
    """A context that turns not-ok after ``looks_ok`` looks (None: never)."""

    def __init__(self, looks_ok=None):
        self.looks_ok = looks_ok

    def ok(self):
        if self.looks_ok is None:
            return True
        self.looks_ok -= 1
        return self.looks_ok >= 0


def test_an_error_a_moment_before_the_shutdown_shows_counts_as_the_shutdown():
    assert motor_driver_node._shutting_down(Context(looks_ok=3), wait=1.0)


def test_an_error_while_the_context_stays_up_is_a_real_error():
    assert not motor_driver_node._shutting_down(Context(), wait=0.05)
