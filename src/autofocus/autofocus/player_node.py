"""Player node: publish a rosbag2 bag's topics with their recorded timing, without ros2 bag.

Publishes   every topic of the bag (or the `topics` parameter's), the recorded
            CDR bytes as they are: header stamps are those of the recording

Message i goes out at start + (t_i - t_first) / rate, t = the recorded log
time; `start_offset` skips the first seconds of the bag, `loop` starts over at
the end. Publishers are reliable (a best-effort subscriber such as the
sharpness node's image subscription matches them too). Without `loop` the
node exits when the bag is done.
"""
import threading
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from autofocus import bags
from autofocus.node_tools import ConfigError, declare, run_node
from autofocus.recorder_node import message_class


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
        if not self._bag_path:
            raise ConfigError("parameter 'bag' is empty: name the bag folder to play")
        try:
            available = bags.topics_of(self._bag_path)
        except (bags.BagError, OSError) as error:
            raise ConfigError(f'bag {self._bag_path!r}: {error}') from None
        wanted = [t for t in topics if t]
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ConfigError(f'bag {self._bag_path!r} has no topic {", ".join(missing)} '
                              f'(it has {", ".join(available) or "none"})')
        self._topics = wanted or list(available)
        reason = bags.open_status(self._bag_path)
        if reason:
            self.get_logger().warning(f'{self._bag_path}: {reason}; playing the complete '
                                      f'chunks of the unfinished MCAP file')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
        self._players = {}
        for topic in self._topics:
            try:
                cls = message_class(available[topic])
            except (ImportError, AttributeError, ValueError) as error:
                self.get_logger().error(f'cannot play {topic} ({available[topic]}): {error}')
                continue
            self._players[topic] = self.create_publisher(cls, topic, qos)
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

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
        try:
            while not self._stop.is_set():
                self._play_once()
                if not self._loop:
                    break
        except Exception as error:  # noqa: BLE001 - a broken bag: say so and stop
            self.get_logger().error(f'playback stopped: {error}')
        if not self._stop.is_set():
            self.get_logger().info(f'done: {self.published} messages published')
            if not self._loop:
                self._stop.wait(0.5)  # let the last messages leave before shutdown
                rclpy.try_shutdown(context=self.context)

    def _play_once(self):
        first = None
        started = None
        for msg in bags.read_messages(self._bag_path, self._players):
            if first is None:
                first = msg.timestamp + self._offset_ns
            if msg.timestamp < first:
                continue
            if started is None:
                started = time.monotonic()
            due = started + (msg.timestamp - first) / 1e9 / self._rate
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._players[msg.topic].publish(msg.data)
            self.published += 1

    def destroy_node(self):
        stop = getattr(self, '_stop', None)
        if stop is not None:
            stop.set()
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return run_node(PlayerNode, args)


if __name__ == '__main__':
    main()
