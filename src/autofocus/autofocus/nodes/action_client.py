"""An rclpy ActionClient whose goals may be sent from any thread.

rclpy 9.1.2 (the wheels we install) carries a broken backport of ros2/rclpy#1308 in
``ActionClient.send_goal_async``: it registers the goal's future under the client's lock,
then, after the lock, makes a second future and registers that one in its place, and
returns the second. When an executor thread takes the server's answer between the two, it
completes the first future; the second, the caller's, never completes. From a thread that
is not the executor's (the web page's server thread, a test's main thread beside a spinning
executor) that is a goal the server accepted and runs while its sender waits for an answer
that never comes, and so cannot cancel it. It showed as a rare "no answer to the goal" in
full test runs.

The fix here uses only public rclpy API: the client lives in a mutually exclusive callback
group of its own, and a send holds that group the way an executor does while it runs one of
the group's callbacks (``beginning_execution``/``ending_execution``). The executor takes a
client's responses only once it holds the group, so no answer can be taken before the send
has registered the future it returns (and its feedback callback, which rclpy also registers
after its lock). A send from one of this client's own callbacks (feedback, run while the
executor holds the group) would wait for itself: it raises instead.

When rclpy fixes the race (``test_action_client.py`` shows it on the plain client), this
part can go.

A lost result: rclpy's action server sends a goal's result once, and rmw_fastrtps drops a
response whose client reader has not been matched within 100 ms (the server logs "Failed
to send result response"). A client that asks for the result soon after it appeared (a
fresh ``focus_client`` whose goal ends at once, on a loaded machine) would wait for ever.
:meth:`ThreadSafeActionClient.result_async` asks again when the server's status has said
for :data:`RESULT_RETRY` s that the goal ended and no answer came (the server keeps an
ended goal's result for minutes: rclpy's ``result_timeout``).
"""
import threading
import time

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.task import Future

# The longest a send waits for the executor to finish one of this client's callbacks
# (they are short: setting futures, calling feedback callbacks).
SEND_WAIT = 5.0
# A goal whose status has said it ended this long without its result: ask again, at most
# RESULT_REQUESTS requests in all; the status is looked at every RESULT_POLL s.
RESULT_RETRY = 2.0
RESULT_REQUESTS = 5
RESULT_POLL = 0.1
ENDED = (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_CANCELED, GoalStatus.STATUS_ABORTED)


class ThreadSafeActionClient(ActionClient):
    """An ActionClient (same arguments, but no callback_group) safe to send goals from any
    thread."""

    def __init__(self, node, action_type, action_name, **kwargs):
        if 'callback_group' in kwargs:
            raise TypeError('ThreadSafeActionClient makes its own callback group')
        self._send_guard = MutuallyExclusiveCallbackGroup()
        self._name_for_errors = action_name
        self._callback_thread = None   # the thread running this client's callbacks, if any
        super().__init__(node, action_type, action_name, callback_group=self._send_guard,
                         **kwargs)

    async def execute(self, taken_data):
        self._callback_thread = threading.get_ident()
        try:
            await super().execute(taken_data)
        finally:
            self._callback_thread = None

    def send_goal_async(self, goal, feedback_callback=None, goal_uuid=None):
        if self._callback_thread == threading.get_ident():
            raise RuntimeError(
                f'a goal to {self._name_for_errors!r} was sent from a callback of the same '
                'action client (its feedback): send it from another callback or thread')
        deadline = time.monotonic() + SEND_WAIT
        while not self._send_guard.beginning_execution(self):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'could not send a goal to {self._name_for_errors!r}: one of this action '
                    f"client's callbacks has run for {SEND_WAIT:g} s")
            time.sleep(0.001)
        try:
            return super().send_goal_async(goal, feedback_callback, goal_uuid)
        finally:
            self._send_guard.ending_execution(self)

    def result_async(self, goal_handle) -> Future:
        """``goal_handle.get_result_async()`` that survives a lost answer: the result
        response (``.status``, ``.result``) of the first of at most :data:`RESULT_REQUESTS`
        requests answered, a new one sent each time the goal's status has said for
        :data:`RESULT_RETRY` s that it ended and no answer came. The node must be spun
        (a timer of this client's callback group looks at the status)."""
        return _ResultRequests(self, goal_handle).future


class _ResultRequests:
    """The result requests of one goal and the timer that sends more (see result_async)."""

    def __init__(self, client, goal_handle):
        self.future = Future()
        self._client = client
        self._handle = goal_handle
        self._requests = []
        self._ended_since = None
        self._lock = threading.Lock()
        self._timer = client._node.create_timer(RESULT_POLL, self._look,
                                                callback_group=client._send_guard)
        self._ask()

    def _ask(self):
        self._ended_since = None
        request = self._handle.get_result_async()
        self._requests.append(request)
        request.add_done_callback(self._answered)

    def _answered(self, request):
        if request.cancelled():
            return
        with self._lock:
            if self.future.done():
                return
            self.future.set_result(request.result())
        self._stop()
        for other in self._requests:
            if other is not request:
                other.cancel()          # rclpy then forgets the unanswered request

    def _look(self):
        if self.future.done():
            self._stop()
        elif self._handle.status not in ENDED:
            self._ended_since = None
        elif self._ended_since is None:
            self._ended_since = time.monotonic()
        elif time.monotonic() - self._ended_since >= RESULT_RETRY and \
                len(self._requests) < RESULT_REQUESTS:
            self._ask()

    def _stop(self):
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            self._client._node.destroy_timer(timer)
