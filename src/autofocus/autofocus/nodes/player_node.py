"""Player node: publish a rosbag2 bag's topics with their recorded timing, without ros2 bag.

Publishes   every topic of the bag (or the `topics` parameter's), the recorded
            CDR bytes as they are: header stamps are those of the recording,
            each with the QoS recorded in the bag (`offered_qos_profiles`)
            /clock (rosgraph_msgs/Clock) with the bag's time, when `clock` > 0

Message i goes out at start + (t_i - t_first) / rate, t = the recorded log
time; `start_offset` skips the first seconds of the bag, `loop` starts over at
the end. Reliability, durability and depth come from the recording, like
`ros2 bag play` (a best-effort camera topic is replayed best effort), or
reliable, volatile, depth 10 when the bag has none; the standard QoS override
parameters change them (qos_overrides./topic.publisher.reliability ...). Without
`loop` the node exits when the bag is done.
"""
import threading
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind

from autofocus.io import bags
from autofocus.nodes.node_tools import ConfigError, declare, run_node
from autofocus.nodes.recorder_node import message_class

DEFAULT_DEPTH = 10
OVERRIDABLE = QoSOverridingOptions([QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH,
                                    QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY])


def replay_qos(profiles) -> tuple[QoSProfile, str]:
    """The publisher QoS that replays a topic recorded with these offered profiles.

    profiles: rosbags Qos records (one per recorded publisher). Returns the profile
    and, when the recording did not say (or its publishers disagreed), why a default
    was used. A policy all profiles agree on is kept; else reliable (matches every
    subscriber) and volatile. Depth: the recorded one, or 10 when unknown (rosbag2
    records 0: DDS discovery does not carry it).
    """
    from rosbags.interfaces import QosDurability, QosHistory, QosReliability
    qos = QoSProfile(depth=DEFAULT_DEPTH, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
    if not profiles:
        return qos, 'no QoS recorded'
    notes = []
    reliabilities = {p.reliability for p in profiles}
    if reliabilities == {QosReliability.BEST_EFFORT}:
        qos.reliability = ReliabilityPolicy.BEST_EFFORT
    elif reliabilities != {QosReliability.RELIABLE}:
        notes.append(f'recorded reliability {sorted(r.name.lower() for r in reliabilities)}')
    durabilities = {p.durability for p in profiles}
    if durabilities == {QosDurability.TRANSIENT_LOCAL}:
        qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
    elif durabilities != {QosDurability.VOLATILE}:
        notes.append(f'recorded durability {sorted(d.name.lower() for d in durabilities)}')
    if all(p.history == QosHistory.KEEP_ALL for p in profiles):
        qos.history = HistoryPolicy.KEEP_ALL
    else:
        depths = [p.depth for p in profiles if p.history == QosHistory.KEEP_LAST and p.depth > 0]
        if depths:
            qos.depth = max(depths)
    return qos, '; '.join(notes)


def qos_text(qos: QoSProfile) -> str:
    history = 'keep all' if qos.history == HistoryPolicy.KEEP_ALL else f'depth {qos.depth}'
    return (f'{qos.reliability.name.lower().replace("_", " ")}, '
            f'{qos.durability.name.lower().replace("_", " ")}, {history}')


class PlayerNode(Node):

    def __init__(self, **kwargs):
        super().__init__('player', **kwargs)
        self._bag_path = declare(self, 'bag', '', 'Bag folder (or .mcap file) to play',
                                 read_only=True)
        self._rate = declare(self, 'rate', 1.0, 'Playback speed factor (2.0 = twice as fast)',
                             low=0.01, high=100.0, read_only=True)
        self._offset_ns = int(1e9 * declare(
            self, 'start_offset', 0.0, 'Seconds of the bag to skip at the start',
            low=0.0, high=1e6, read_only=True))
        self._loop = declare(self, 'loop', False, 'Start over at the end of the bag',
                             read_only=True)
        topics = declare(self, 'topics', [''], "Topics to play; [''] = every topic of the bag",
                         read_only=True)
        self._delay = declare(self, 'delay', 0.0, 'Seconds to wait before the first message',
                              low=0.0, high=3600.0, read_only=True)
        self._wait_subscribers = declare(
            self, 'wait_for_subscribers', 0.0,
            'Wait up to this many seconds until every played topic has a subscriber '
            '(then 0.3 s more for the subscribers to see the publishers)',
            low=0.0, high=3600.0, read_only=True)
        self._min_subscribers = declare(
            self, 'min_subscribers', 1,
            'With wait_for_subscribers: how many subscribers every played topic needs',
            low=1, high=1000, read_only=True)
        self._clock_hz = declare(
            self, 'clock', 0.0,
            'Publish /clock (rosgraph_msgs/Clock) with the bag time at this rate in Hz, like '
            'ros2 bag play --clock; 0 = off', low=0.0, high=1000.0, read_only=True)
        if not self._bag_path:
            raise ConfigError("parameter 'bag' is empty: name the bag folder to play")
        try:
            recorded = bags.topics_with_qos(self._bag_path)
            unindexed = bags.unindexed_files(self._bag_path)
        except (bags.BagError, OSError) as error:
            raise ConfigError(f'bag {self._bag_path!r}: {error}') from None
        available = {topic: msgtype for topic, (msgtype, _) in recorded.items()}
        wanted = [t for t in topics if t]
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ConfigError(f'bag {self._bag_path!r} has no topic {", ".join(missing)} '
                              f'(it has {", ".join(available) or "none"})')
        self._topics = wanted or list(available)
        if unindexed:
            self.get_logger().warning(
                f'{self._bag_path}: {", ".join(p.name for p in unindexed)} not finished or '
                f'not in metadata.yaml (recorder killed?): playing their complete chunks; '
                f'bag_convert --repair makes them readable by other tools')
        self._players = {}
        for topic in self._topics:
            try:
                cls = message_class(available[topic])
            except (ImportError, AttributeError, ValueError) as error:
                self.get_logger().error(f'cannot play {topic} ({available[topic]}): {error}')
                continue
            qos, note = replay_qos(recorded[topic][1])
            self._players[topic] = publisher = self.create_publisher(
                cls, topic, qos, qos_overriding_options=OVERRIDABLE)
            if note:
                self.get_logger().info(f'{topic}: {note}; publishing '
                                       f'{qos_text(publisher.qos_profile)}')
        self.published = 0
        self._stop = threading.Event()
        # Bag time for /clock: (monotonic time, bag time) at the start of the pass, and
        # the time of the next message, which the clock does not pass before it is out.
        self._time_lock = threading.Lock()
        self._anchor = None
        self._clock_limit = 0
        self._clock_publisher = None
        if self._clock_hz:
            try:
                from rosgraph_msgs.msg import Clock
            except ImportError as error:
                raise ConfigError(f'clock: rosgraph_msgs is not available ({error})') from None
            self._clock_msg = Clock
            # Reliable matches every subscriber (rclcpp's ClockQoS is best effort).
            self._clock_publisher = self.create_publisher(
                Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
            self._clock_thread = threading.Thread(target=self._publish_clock, daemon=True)
            self._clock_thread.start()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def bag_time(self) -> int | None:
        """The bag time (ns) playback is at, or None before it starts."""
        with self._time_lock:
            if self._anchor is None:
                return None
            since, bag_start = self._anchor
            now = bag_start + int((time.monotonic() - since) * 1e9 * self._rate)
            return min(now, self._clock_limit)

    def _publish_clock(self):
        period = 1.0 / self._clock_hz
        while not self._stop.wait(period):
            now = self.bag_time()
            if now is None:
                continue
            msg = self._clock_msg()
            msg.clock.sec, msg.clock.nanosec = divmod(now, 10**9)
            try:
                self._clock_publisher.publish(msg)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _play(self):
        if self._wait_subscribers:
            deadline = time.monotonic() + self._wait_subscribers
            while time.monotonic() < deadline and not self._stop.is_set() and not all(
                    p.get_subscription_count() >= self._min_subscribers
                    for p in self._players.values()):
                time.sleep(0.05)
            # Matching is seen from the publisher's side first: give the subscriber's side
            # a moment too, or its first messages are lost.
            self._stop.wait(0.3)
        if self._stop.wait(self._delay):
            return
        self.get_logger().info(f'playing {self._bag_path}: {", ".join(self._players)} '
                               f'at rate {self._rate:g}')
        played = True
        try:
            while not self._stop.is_set():
                # A pass that published nothing would publish nothing again: no loop.
                played = self._play_once()
                if not played or not self._loop:
                    break
        except Exception as error:  # noqa: BLE001 - a broken bag: say so and stop
            self.get_logger().error(f'playback stopped: {error}')
        if not self._stop.is_set():
            self.get_logger().info(f'done: {self.published} messages published')
            if not self._loop or not played:
                self._stop.wait(0.5)  # let the last messages leave before shutdown
                rclpy.try_shutdown(context=self.context)

    def _play_once(self) -> bool:
        """Play the bag once from start_offset; whether anything was published."""
        first = None
        started = None
        bag_start = bag_end = None
        for msg in bags.read_messages(self._bag_path, self._players):
            if first is None:
                first = msg.timestamp + self._offset_ns
                bag_start = msg.timestamp
            bag_end = msg.timestamp
            if msg.timestamp < first:
                continue
            if started is None:
                started = time.monotonic()
                with self._time_lock:
                    self._anchor = (started, first)
            with self._time_lock:
                self._clock_limit = msg.timestamp
            due = started + (msg.timestamp - first) / 1e9 / self._rate
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return True
            self._players[msg.topic].publish(msg.data)
            self.published += 1
        if started is None and bag_start is not None and self._offset_ns:
            # Every message was skipped: say so, rather than "0 messages published".
            self.get_logger().warning(
                f'start_offset {self._offset_ns / 1e9:g} s is past the end of '
                f'{self._bag_path}: its played topics last '
                f'{(bag_end - bag_start) / 1e9:.3f} s, so nothing was published. Fix: '
                f'start_offset below {(bag_end - bag_start) / 1e9:.3f}')
        return started is not None

    def destroy_node(self):
        stop = getattr(self, '_stop', None)
        if stop is not None:
            stop.set()
            for name in ('_thread', '_clock_thread'):
                thread = getattr(self, name, None)
                if thread is not None and thread is not threading.current_thread():
                    thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return run_node(PlayerNode, args)


if __name__ == '__main__':
    main()
