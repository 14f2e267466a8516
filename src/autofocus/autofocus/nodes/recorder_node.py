"""Recorder node: write topics to a rosbag2 bag (MCAP by default) without ros2 bag.

Subscribes  the `topics` parameter's topics, each with its publishers' type,
            reliability (best-effort when any publisher is, e.g. images with
            sensor-data QoS) and durability (transient local when every
            publisher is), as serialized CDR (no deserialization)
Writes      a rosbag2 bag folder: metadata.yaml + <name>_0.mcap, <name>_1.mcap, ...
            (one file of `split_seconds` each; <name>.mcap or <name>.db3 when
            not split), with the full message definitions of every type (our
            own interfaces from their .msg files) and the QoS offered

Topics that do not exist yet are picked up when a publisher appears. Log time
is the receive time on this node's clock; header stamps stay as published.
An MCAP file is finished (summary, footer) before metadata.yaml, replaced
atomically, lists it, so a crash leaves a bag every reader opens, missing only
the open file (at most `split_seconds`); every `flush_period` its pending chunk
goes to disk too, which our own readers and `bag_convert --repair` recover.
sqlite3 commits every `flush_period`. Ctrl+C closes the bag properly.
"""
import datetime
import importlib

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from autofocus.io import bags
from autofocus.nodes.node_tools import ConfigError, declare, run_node


def message_class(msgtype: str):
    """'pkg/msg/Name' -> the generated Python class."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


class RecorderNode(Node):

    def __init__(self, **kwargs):
        super().__init__('recorder', **kwargs)
        topics = declare(self, 'topics', [t.lstrip('/') for t in bags.DEFAULT_TOPICS],
                         'Topics to record (relative names resolve in this node\'s namespace)',
                         read_only=True)
        output = declare(self, 'output', '',
                         "Bag folder to create; '' = rosbag2_YYYY_MM_DD-HH_MM_SS here",
                         read_only=True)
        storage = declare(self, 'storage', 'mcap', 'Storage format of the bag',
                          choices=list(bags.STORAGES), read_only=True)
        compress = declare(self, 'compress', False, 'zstd-compress MCAP chunks', read_only=True)
        flush_period = declare(self, 'flush_period', 0.5,
                               'Seconds between two flushes to disk (MCAP chunk closed, sqlite3 '
                               'committed)', low=0.05, high=60.0, read_only=True)
        split_seconds = declare(
            self, 'split_seconds', 1.0,
            'MCAP: start a new file after this many seconds of messages; a crash leaves '
            'every file but the open one readable by any tool. 0 = one file, which a crash '
            'leaves without summary (bag_convert --repair fixes it)',
            low=0.0, high=86400.0, read_only=True)
        discovery_period = declare(self, 'discovery_period', 0.5,
                                   'Seconds between two looks for topics not subscribed yet',
                                   low=0.05, high=60.0, read_only=True)
        self._depth = declare(self, 'queue_depth', 100, 'Subscription queue depth',
                              low=1, high=10000, read_only=True)
        if not topics:
            raise ConfigError("parameter 'topics' is empty: nothing to record")
        if not output:
            output = datetime.datetime.now().strftime('rosbag2_%Y_%m_%d-%H_%M_%S')
        self._wanted = [self.resolve_topic_name(t) for t in topics]
        try:
            self._bag = bags.BagWriter(output, storage=storage, compress=compress,
                                       split_seconds=split_seconds)
        except (bags.BagError, OSError) as error:
            raise ConfigError(f'output {output!r}: {error}') from None
        self._recorded = {}
        self.create_timer(flush_period, self._flush)
        self.create_timer(discovery_period, self._discover)
        split = f', a file every {split_seconds:g} s' if self._bag.split_seconds else ''
        self.get_logger().info(f'recording {", ".join(self._wanted)} to {output} '
                               f'({storage}{split})')
        self._discover()

    def _discover(self):
        types = dict(self.get_topic_names_and_types())
        for topic in self._wanted:
            if topic in self._recorded or topic not in types:
                continue
            msgtype = types[topic][0]
            if len(types[topic]) > 1:
                self.get_logger().warning(f'{topic} has several types {types[topic]}; '
                                          f'recording {msgtype}')
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                # Known only from a subscriber so far: the QoS to match (a camera's
                # best effort) is the publisher's, so wait until one is discovered.
                continue
            try:
                cls = message_class(msgtype)
                best_effort = any(
                    info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                    for info in publishers)
                # Latched (transient local) only when every publisher is, as rosbag2 does:
                # a transient-local subscription does not match a volatile publisher.
                latched = all(info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                              for info in publishers)
                self._bag.add_topic(topic, msgtype, reliable=not best_effort,
                                    transient_local=latched)
            except (ImportError, AttributeError, bags.BagError) as error:
                self.get_logger().error(f'cannot record {topic} ({msgtype}): {error}')
                self._recorded[topic] = None
                continue
            qos = QoSProfile(depth=self._depth, durability=DurabilityPolicy.TRANSIENT_LOCAL
                             if latched else DurabilityPolicy.VOLATILE,
                             reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                             else ReliabilityPolicy.RELIABLE)
            self._recorded[topic] = self.create_subscription(
                cls, topic, lambda data, topic=topic: self._on_message(topic, data), qos,
                raw=True)
            self.get_logger().info(f'recording {topic} ({msgtype}, '
                                   f'{"best effort" if best_effort else "reliable"}'
                                   f'{", transient local" if latched else ""})')

    def _on_message(self, topic, data):
        if self._bag is not None:
            self._bag.write(topic, self.get_clock().now().nanoseconds, data)

    def _flush(self):
        if self._bag is not None:
            self._bag.flush()

    def destroy_node(self):
        bag = getattr(self, '_bag', None)
        if bag is not None:
            bag.close()
            counts = ', '.join(f'{t}: {bag.count(t)}' for t in bag.topics)
            files = len(bag.files)
            self.get_logger().info(f'closed {bag.path} ({counts or "no messages"}; '
                                   f'{files} file{"s" if files != 1 else ""})')
            self._bag = None
        return super().destroy_node()


def main(args=None):
    return run_node(RecorderNode, args)


if __name__ == '__main__':
    main()
