"""Helpers for this package's DDS tests (imported by path: see pytest.ini)."""
import itertools
import time

import numpy as np
from sensor_msgs.msg import Image

from autofocus.io.image_codec import fill_image_msg


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def textured_frame(width, height, seed=0, blur=0):
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    if blur:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    return frame


def image_msg(frame, stamp_ns, encoding='bgr8', frame_id='camera'):
    msg = fill_image_msg(Image(), frame, encoding)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.header.frame_id = frame_id
    return msg


def stamp_ns(stamp):
    return stamp.sec * 10**9 + stamp.nanosec


_client_ids = itertools.count()


class FocusAction:
    """A Focus action client on a test harness node."""

    def __init__(self, ros, name='focus'):
        from autofocus_interfaces.action import Focus
        import rclpy

        from autofocus.nodes.action_client import ThreadSafeActionClient
        # On a node of its own, added to the spinning executor once built: rclpy's
        # ActionClient registers itself with its node before it creates its lock, and the
        # harness's executor thread, spinning the node meanwhile, once hit that gap
        # ("'ActionClient' object has no attribute '_lock'").
        node = rclpy.create_node(f'focus_action_client_{next(_client_ids)}',
                                 context=ros.context)
        self.client = ThreadSafeActionClient(node, Focus, name)
        ros.add_node(node)
        self.feedback = []
        self.sent = 0

    def wait_for_server(self, timeout=20.0):
        return self.client.wait_for_server(timeout_sec=timeout)

    def send(self, goal, timeout=30.0):
        """Send a goal; return its handle (accepted or not)."""
        future = self.client.send_goal_async(
            goal, feedback_callback=lambda msg: self.feedback.append(msg.feedback))
        self.sent += 1
        # Says which goal of this client went unanswered, and whether the client still
        # sees the server: a first goal's answer lost to discovery is not a later one's.
        assert wait_for(future.done, timeout), (
            f'no answer to goal {self.sent} of this client within {timeout:g} s '
            f'(server discovered: {self.client.server_is_ready()})')
        return future.result()

    def result(self, handle, timeout=60.0):
        """The goal's result response (.status, .result), through the client's
        result_async: asked for again when the answer is lost."""
        future = self.client.result_async(handle)
        assert wait_for(future.done, timeout), f'no result within {timeout:g} s'
        return future.result()
