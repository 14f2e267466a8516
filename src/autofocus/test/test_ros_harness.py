"""The shared test harness (root conftest.py): an exception in a node callback is not lost."""
import pytest
from conftest import RosHarness
from ros_helpers import wait_for
from std_msgs.msg import String


def test_a_callback_exception_is_reported_and_later_callbacks_still_run(ros_domain, capfd):
    harness = RosHarness()
    try:
        def explode(msg):
            if msg.data == 'boom':
                raise RuntimeError('callback exploded on purpose')

        received = []
        harness.node.create_subscription(String, 'harness_check', explode, 10)
        harness.node.create_subscription(String, 'harness_check', received.append, 10)
        publisher = harness.node.create_publisher(String, 'harness_check', 10)
        assert wait_for(lambda: publisher.get_subscription_count() == 2, 20.0)
        publisher.publish(String(data='boom'))
        assert wait_for(lambda: harness.errors, 20.0)
        assert 'RuntimeError: callback exploded on purpose' in harness.errors[0]
        # Printed at once: pytest shows it with the failing test's output.
        assert 'callback exploded on purpose' in capfd.readouterr().err
        # The executor kept spinning: a later message still reaches its callback.
        publisher.publish(String(data='after'))
        assert wait_for(lambda: any(m.data == 'after' for m in received), 20.0)
    finally:
        harness.close()
    # The `ros` fixture turns what was recorded into the test's failure, traceback included.
    with pytest.raises(pytest.fail.Exception, match='callback exploded on purpose'):
        harness.check_callbacks()


def test_a_clean_run_records_nothing(ros):
    received = ros.collect(String, 'harness_quiet')
    publisher = ros.node.create_publisher(String, 'harness_quiet', 10)
    assert wait_for(lambda: publisher.get_subscription_count() == 1, 20.0)
    publisher.publish(String(data='fine'))
    assert wait_for(lambda: received, 20.0)
    assert ros.errors == []
