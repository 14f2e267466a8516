"""What a rosbag2 bag is made of: message types and their CDR serialization, QoS profiles,
metadata.yaml, and the constants every part shares."""
from __future__ import annotations

import json
import os
import pathlib
import re
from dataclasses import dataclass, field



DEFAULT_TOPICS = ['/camera/image_raw', '/sharpness', '/sharpness/metrics',
                  '/focus_motor/state', '/focus_motor/command']
STORAGES = ('mcap', 'sqlite3')
IMAGE_TYPE = 'sensor_msgs/msg/Image'
STATE_TYPE = 'autofocus_interfaces/msg/MotorState'
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.pgm', '.ppm', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg')
MCAP_MAGIC = b'\x89MCAP0\r\n'


class BagError(RuntimeError):
    """A bag that cannot be written or read; the message names the file and the problem."""


# --------------------------------------------------------------------------- types

def _msg_dirs(package: str) -> list[pathlib.Path]:
    """Folders that may hold `package`'s .msg files: ament prefixes, then this source tree."""
    dirs = []
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        dirs.append(pathlib.Path(prefix, 'share', package, 'msg'))
    source = pathlib.Path(__file__).resolve().parents[4] / package / 'msg'
    dirs.append(source)
    return [d for d in dirs if d.is_dir()]


_TYPESTORE = None


def typestore():
    """The ROS 2 Kilted typestore plus autofocus_interfaces' messages (cached)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_typestore
        store = get_typestore(Stores.ROS2_KILTED)
        for name in ('MotorState', 'MotorCommand', 'FocusMetrics'):
            ensure_type(store, f'autofocus_interfaces/msg/{name}')
        _TYPESTORE = store
    return _TYPESTORE


def ensure_type(store, msgtype: str) -> None:
    """Register `msgtype` ('pkg/msg/Name') from its .msg file if the store lacks it."""
    from rosbags.typesys import get_types_from_msg
    if msgtype in store.fielddefs:
        return
    package, kind, name = msgtype.split('/')
    for folder in _msg_dirs(package):
        path = folder / f'{name}.msg'
        if path.is_file():
            store.register(get_types_from_msg(path.read_text(), msgtype))
            return
    raise BagError(f'no message definition for {msgtype}: {package}/msg/{name}.msg not found '
                   f'under AMENT_PREFIX_PATH (source the workspace)')


def serialize(msg, msgtype: str) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msgtype))


def deserialize(data, msgtype: str):
    return typestore().deserialize_cdr(data, msgtype)


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


# --------------------------------------------------------------------------- writing

def _qos_profiles(reliable: bool, transient_local: bool = False, depth: int = 10):
    """rosbags Qos records for metadata (what `ros2 bag play` offers when it republishes)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)
    never = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return [Qos(history=QosHistory.KEEP_LAST, depth=depth,
                reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
                durability=QosDurability.TRANSIENT_LOCAL if transient_local
                else QosDurability.VOLATILE,
                deadline=never, lifespan=never, liveliness=QosLiveliness.AUTOMATIC,
                liveliness_lease_duration=never, avoid_ros_namespace_conventions=False)]


@dataclass
class _Topic:
    name: str
    msgtype: str
    msgdef: str       # ros2msg text with the nested definitions
    rihs01: str       # type description hash
    qos: list         # offered QoS profiles as metadata.yaml (v9) dicts
    qos_text: str     # the same as the MCAP channel's `offered_qos_profiles` string


def _qos_text(qos_dicts) -> str:
    import yaml
    return yaml.safe_dump(list(qos_dicts), default_flow_style=False, sort_keys=False).strip() \
        if qos_dicts else ''


@dataclass
class _FileInfo:
    """One storage file as metadata.yaml lists it."""
    name: str
    start: int = 0
    end: int = 0
    count: int = 0
    counts: dict = field(default_factory=dict)   # topic -> messages in this file

    def add(self, topic: str, timestamp: int) -> None:
        if not self.count:
            self.start = self.end = timestamp
        self.start = min(self.start, timestamp)
        self.end = max(self.end, timestamp)
        self.count += 1
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def yaml_entry(self) -> str:
        """Its `files:` item (indented under rosbag2_bagfile_information)."""
        return (f'  - path: {json.dumps(self.name)}\n'
                f'    starting_time:\n'
                f'      nanoseconds_since_epoch: {self.start if self.count else 0}\n'
                f'    duration:\n'
                f'      nanoseconds: {self.end - self.start if self.count else 0}\n'
                f'    message_count: {self.count}\n')


def _metadata_text(storage_id: str, topics, files, custom_data=None) -> str:
    """metadata.yaml (rosbag2 version 9, as `ros2 bag record` writes it) for these files.

    topics: _Topic-likes (name, msgtype, qos, rihs01); files: _FileInfo. The per-file
    entries are formatted directly: a bag split every second has thousands of them,
    and this runs after every closed segment.
    """
    import yaml
    counts = {}
    for info in files:
        for topic, n in info.counts.items():
            counts[topic] = counts.get(topic, 0) + n
    with_messages = [f for f in files if f.count]
    start = min((f.start for f in with_messages), default=0)
    end = max((f.end for f in with_messages), default=0)
    info = {
        'version': 9,
        'storage_identifier': storage_id,
        'duration': {'nanoseconds': end - start},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': sum(f.count for f in files),
        'topics_with_message_count': [
            {'topic_metadata': {'name': t.name, 'type': t.msgtype,
                                'serialization_format': 'cdr',
                                'offered_qos_profiles': list(t.qos),
                                'type_description_hash': t.rihs01},
             'message_count': counts.get(t.name, 0)}
            for t in topics],
        'compression_format': '',
        'compression_mode': '',
        'custom_data': custom_data or None,
        'ros_distro': 'rosbags',
    }
    text = yaml.dump({'rosbag2_bagfile_information': info}, Dumper=_yaml_dumper(),
                     default_flow_style=False, sort_keys=False)
    if not files:
        return text + '  relative_file_paths: []\n  files: []\n'
    return (text + '  relative_file_paths:\n'
            + ''.join(f'  - {json.dumps(f.name)}\n' for f in files)
            + '  files:\n' + ''.join(f.yaml_entry() for f in files))


def _qos_dicts(qos_text: str) -> list:
    """The metadata.yaml form of an MCAP channel's `offered_qos_profiles` string."""
    import yaml
    try:
        qos = yaml.safe_load(qos_text) if qos_text else []
    except yaml.YAMLError:
        return []
    return qos if isinstance(qos, list) else []


def _yaml_dumper():
    import yaml
    return getattr(yaml, 'CSafeDumper', yaml.SafeDumper)


def _rihs01(msgtype: str) -> str:
    try:
        store = typestore()
        ensure_type(store, msgtype)
        return store.hash_rihs01(msgtype)
    except Exception:  # noqa: BLE001 - unknown type: the hash is informational
        return 'RIHS01_' + '0' * 64

_NUMBER = re.compile(r'(?:(?<![0-9A-Za-z])[-+])?\d+(?:\.\d+)?')


def natural_key(name: str):
    """Sort key ordering names by the numbers in them, a leading sign included.

    A '-' or '+' counts as a sign at the start of the name or after a separator
    (``-9.bmp`` before ``-1.bmp`` before ``0.bmp``, ``img_-3.png``), not after a letter
    or digit (``frame-003`` stays frame number 3).
    """
    key, last = [], 0
    for match in _NUMBER.finditer(name):
        key += [(1, name[last:match.start()].lower()), (0, float(match.group()))]
        last = match.end()
    key.append((1, name[last:].lower()))
    return key
