"""node_tools: an executor error during a shutdown under way is the stop, not a crash."""
from autofocus.nodes import node_tools


def test_an_error_a_moment_before_the_shutdown_shows_counts_as_the_shutdown(monkeypatch):
    answers = iter([True, True, True])       # ok() turns false on the fourth look
    monkeypatch.setattr(node_tools.rclpy, 'ok', lambda: next(answers, False))
    assert node_tools.shutting_down(wait=1.0)


def test_an_error_while_the_context_stays_up_is_a_real_error(monkeypatch):
    monkeypatch.setattr(node_tools.rclpy, 'ok', lambda: True)
    assert not node_tools.shutting_down(wait=0.05)
