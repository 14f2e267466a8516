"""rosbag2 bags (MCAP or sqlite3): write, flush, split, read, repair, convert.

No rclpy here: messages are handled as serialized CDR bytes (what a raw
subscription gives and a publisher accepts) or as rosbags' own message
objects. The bags are real rosbag2 bags (a folder with metadata.yaml and its
storage files), so `ros2 bag info/play` and Foxglove open them. MCAP files are
written with the mcap library (ros2 profile, as rosbag2's MCAP plugin writes
them), sqlite3 ones with rosbags; everything is read with rosbags and mcap.

Our own interfaces (autofocus_interfaces/msg/*) are registered in the
typestore from their .msg files, so the bag carries their full message
definitions and the same RIHS01 type hashes as the generated code.

Crash safety (measured in test_bags_nodes.py): the recorder splits an MCAP bag
into files of ``split_seconds`` (1 s) like ``ros2 bag record --max-bag-duration``,
finishes each one (summary and footer) before metadata.yaml (replaced
atomically) lists it, and calls :meth:`BagWriter.flush` every ``flush_period``
(0.5 s) to close the open file's pending chunk. A killed recorder thus leaves a
bag any reader opens, missing only the open file (at most ``split_seconds`` of
data); :func:`read_messages` also streams that file's complete chunks (all but
the last ``flush_period``), and :func:`repair` finishes it and lists it. sqlite3
bags commit at every flush instead.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

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
    source = pathlib.Path(__file__).resolve().parents[2] / package / 'msg'
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


class _McapFile:
    """One MCAP file being written with the mcap library (ros2 profile, as rosbag2 writes it)."""

    def __init__(self, path: pathlib.Path, compress: bool, topics: Iterable[_Topic]):
        from mcap.writer import CompressionType, Writer
        if not hasattr(Writer, 'flush'):
            raise BagError('the mcap package is too old (no Writer.flush): pip install '
                           '"mcap>=1.6"')
        self.info = _FileInfo(path.name)
        self.opened = time.monotonic()
        self._stream = open(path, 'xb')
        self._writer = Writer(self._stream, compression=CompressionType.ZSTD if compress
                              else CompressionType.NONE)
        self._writer.start(profile='ros2', library='autofocus.bags (mcap)')
        self._schemas = {}
        self._channels = {}
        self.topics = []
        for topic in topics:
            self.add(topic)

    def add(self, topic: _Topic) -> None:
        self.topics.append(topic)
        if topic.msgtype not in self._schemas:
            self._schemas[topic.msgtype] = self._writer.register_schema(
                topic.msgtype, 'ros2msg', topic.msgdef.encode())
        metadata = {'offered_qos_profiles': topic.qos_text, 'topic_type_hash': topic.rihs01}
        self._channels[topic.name] = self._writer.register_channel(
            topic.name, 'cdr', self._schemas[topic.msgtype], metadata)

    def write(self, topic: str, timestamp: int, data) -> None:
        if not self.info.count:
            self.opened = time.monotonic()
        self._writer.add_message(self._channels[topic], log_time=timestamp, data=data,
                                 publish_time=timestamp)
        self.info.add(topic, timestamp)

    def flush(self) -> None:
        """Close the pending chunk and hand everything to the OS (no summary yet)."""
        self._writer.flush()

    def finish(self, metadata_text: str) -> None:
        """Summary and footer: the file is complete (what every reader wants)."""
        self._writer.add_metadata('rosbag2', {'serialized_metadata': metadata_text})
        self._writer.finish()
        self._stream.close()

    def abort(self) -> None:
        self._stream.close()


class BagWriter:
    """A rosbag2 bag being written; flush() makes what was written so far survive a crash.

    storage: 'mcap' (default) or 'sqlite3'. compress: zstd chunk compression (MCAP only).
    split_seconds (MCAP only): > 0 splits the bag into files <name>_0.mcap, <name>_1.mcap,
    ... each closed (summary and footer) once it holds that many seconds of messages, and
    metadata.yaml lists only closed files, so a crash leaves a bag every reader opens
    (minus the open file); 0 writes one file <name>.mcap, listed from the start, that a
    crash leaves without summary and footer.
    """

    def __init__(self, path, storage: str = 'mcap', compress: bool = False,
                 split_seconds: float = 0.0):
        if storage not in STORAGES:
            raise BagError(f"storage '{storage}' is not one of {', '.join(STORAGES)}")
        if compress and storage != 'mcap':
            raise BagError('compress: only MCAP storage supports chunk compression here')
        if split_seconds < 0:
            raise BagError(f'split_seconds must be >= 0, not {split_seconds}')
        self.path = pathlib.Path(path)
        self.storage = storage
        self.compress = compress
        self.split_seconds = float(split_seconds) if storage == 'mcap' else 0.0
        self._topics: dict[str, _Topic] = {}
        self._done: list[_FileInfo] = []      # finished MCAP files, in order
        self._file: _McapFile | None = None   # the MCAP file being written
        self._dirty = True                    # metadata.yaml is out of date
        self._closed = False
        self._writer = None
        if storage == 'mcap':
            try:
                self.path.mkdir(mode=0o755, parents=True)
            except OSError as error:
                reason = 'it exists already, not overwriting' \
                    if isinstance(error, FileExistsError) else error
                raise BagError(f'cannot create bag {self.path}: {reason}') from None
            if not self.split_seconds:
                self._open_file()
        else:
            self._open_sqlite()
        self.flush()  # metadata.yaml exists from the start

    def _open_sqlite(self):
        from rosbags.rosbag2 import StoragePlugin, Writer
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.SQLITE3)
            self._writer.open()
        except Exception as error:  # noqa: BLE001 - e.g. the folder exists
            raise BagError(f'cannot create bag {self.path}: {error}') from None
        self._connections = {}

    @property
    def topics(self):
        return {name: topic.msgtype for name, topic in self._topics.items()}

    @property
    def files(self) -> list[str]:
        """Names of the storage files metadata.yaml lists now."""
        return [f.name for f in self._listed()]

    def add_topic(self, topic: str, msgtype: str, reliable: bool = True,
                  transient_local: bool = False, qos_profiles=None):
        """Declare a topic; qos_profiles (rosbags Qos list) overrides reliable/transient_local."""
        from rosbags.rosbag2.metadata import dump_qos_v9
        if topic in self._topics:
            raise BagError(f'{topic} is in the bag already')
        store = typestore()
        ensure_type(store, msgtype)
        qos = list(qos_profiles) if qos_profiles is not None \
            else _qos_profiles(reliable, transient_local)
        msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
        dicts = dump_qos_v9(qos)
        entry = _Topic(topic, msgtype, msgdef, store.hash_rihs01(msgtype), dicts,
                       _qos_text(dicts))
        if self.storage == 'sqlite3':
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=store, offered_qos_profiles=qos)
        elif self._file is not None:
            self._file.add(entry)
        self._topics[topic] = entry
        self._dirty = True

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Append one serialized (CDR) message; timestamp = when it was received (log time)."""
        timestamp_ns = int(timestamp_ns)
        if self.storage == 'sqlite3':
            self._writer.write(self._connections[topic], timestamp_ns, data)
            return
        if topic not in self._topics:
            raise KeyError(topic)
        current = self._file
        if current is not None and self.split_seconds and current.info.count and \
                timestamp_ns - current.info.start >= self.split_seconds * 1e9:
            self._finish_file()
            current = None
        if current is None:
            current = self._open_file()
        current.write(topic, timestamp_ns, data)

    def count(self, topic: str) -> int:
        if self.storage == 'sqlite3':
            return self._writer.counts[self._connections[topic].id]
        files = self._done + ([self._file.info] if self._file is not None else [])
        return sum(f.counts.get(topic, 0) for f in files)

    def flush(self) -> None:
        """Put everything written so far on disk in readable form, and refresh metadata.yaml.

        Split MCAP: the open file is finished when it has held messages for split_seconds
        (wall time; write() also splits by log time), else its pending chunk is closed;
        metadata.yaml is rewritten when it changed. One MCAP file: chunk closed, metadata
        rewritten. sqlite3: transaction committed (a private attribute of rosbags' writer,
        rosbags 0.11; test_bags.py fails loudly if that changes), metadata rewritten.
        The data reaches the OS, which survives a killed process, not a power cut (no fsync).
        """
        if self._closed:
            return
        if self.storage == 'sqlite3':
            self._writer.storage.conn.commit()
            self._write_metadata()
            return
        current = self._file
        if current is not None and current.info.count:
            if self.split_seconds and time.monotonic() - current.opened >= self.split_seconds:
                self._finish_file()
            else:
                current.flush()
                self._dirty = self._dirty or not self.split_seconds
        if self._dirty:
            self._write_metadata()

    def close(self) -> None:
        if self._closed:
            return
        if self.storage == 'sqlite3':
            self._writer.close()   # commits and writes metadata.yaml
            self._closed = True
            return
        current = self._file
        if current is not None and not current.info.count and self._done:
            current.abort()        # an empty last segment: nothing to keep
            (self.path / current.info.name).unlink()
            self._file = None
        elif current is None and not self._done:
            self._open_file()      # an empty bag still has its (empty) file
        if self._file is not None:
            self._finish_file()
        self._write_metadata()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # MCAP files -------------------------------------------------------------------

    def _open_file(self) -> _McapFile:
        name = f'{self.path.name}_{len(self._done)}.mcap' if self.split_seconds \
            else f'{self.path.name}.mcap'
        self._file = _McapFile(self.path / name, self.compress, self._topics.values())
        return self._file

    def _finish_file(self) -> None:
        """Finish the open file, then list it in metadata.yaml (in that order: a crash in
        between leaves a complete file that is not listed yet, never a listed broken one)."""
        current, self._file = self._file, None
        current.finish(_metadata_text(self.storage, self._topics.values(), [current.info]))
        self._done.append(current.info)
        self._write_metadata()

    def _listed(self) -> list[_FileInfo]:
        if self.storage == 'sqlite3':
            w = self._writer
            info = _FileInfo(w.storage.path.name, counts={
                c.topic: w.counts[c.id] for c in self._connections.values()})
            info.count = sum(info.counts.values())
            if info.count:
                info.start, info.end = w.min_timestamp, w.max_timestamp
            return [info]
        if not self.split_seconds and self._file is not None:
            return self._done + [self._file.info]
        return list(self._done)

    def _write_metadata(self) -> None:
        text = _metadata_text(self.storage, self._topics.values(), self._listed())
        tmp = self.path / 'metadata.yaml.tmp'
        tmp.write_text(text, 'utf8')
        tmp.replace(self.path / 'metadata.yaml')
        self._dirty = False


# --------------------------------------------------------------------------- reading

@dataclass
class BagMessage:
    topic: str
    msgtype: str
    timestamp: int   # log time (ns): when the recorder received it
    data: bytes      # CDR


def read_metadata(path) -> dict | None:
    """rosbag2_bagfile_information of a bag folder, or None (missing or unreadable)."""
    import yaml
    try:
        text = (pathlib.Path(path) / 'metadata.yaml').read_text()
        info = yaml.load(text, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
        return info['rosbag2_bagfile_information']
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def storage_files(path) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """(files metadata.yaml lists, MCAP files it does not list) of a bag folder.

    The unlisted ones are what a killed recorder left: its open segment (no summary,
    maybe a truncated tail), or a segment finished just before the kill.
    """
    path = pathlib.Path(path)
    info = read_metadata(path) or {}
    listed = [path / pathlib.PurePath(name).name
              for name in info.get('relative_file_paths') or []]
    names = {p.name for p in listed}
    unlisted = sorted((p for p in path.glob('*.mcap') if p.name not in names),
                      key=lambda p: natural_key(p.name))
    return listed, unlisted


def mcap_is_finished(path) -> bool:
    """True if the MCAP file ends with its footer magic (was closed properly)."""
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 2 * len(MCAP_MAGIC):
            return False
        f.seek(-len(MCAP_MAGIC), os.SEEK_END)
        return f.read() == MCAP_MAGIC


def _stream_mcap(path: pathlib.Path, topics=None) -> Iterator[BagMessage]:
    """Every complete message of an MCAP file, in file order, even without summary/footer."""
    from mcap.reader import NonSeekingReader
    with open(path, 'rb') as stream:
        reader = NonSeekingReader(stream, record_size_limit=None)
        try:
            for schema, channel, message in reader.iter_messages(
                    topics=list(topics) if topics else None, log_time_order=False):
                yield BagMessage(channel.topic, schema.name if schema else '',
                                 message.log_time, bytes(message.data))
        except Exception:  # noqa: BLE001 - a truncated tail ends the readable part
            return


def _read_mcap(path: pathlib.Path, topics=None) -> Iterator[BagMessage]:
    """Messages of one MCAP file: log-time order if finished, file order if not."""
    if not mcap_is_finished(path):
        yield from _stream_mcap(path, topics)
        return
    from mcap.reader import make_reader
    with open(path, 'rb') as stream:
        reader = make_reader(stream)
        for schema, channel, message in reader.iter_messages(
                topics=list(topics) if topics else None, log_time_order=True):
            yield BagMessage(channel.topic, schema.name if schema else '',
                             message.log_time, bytes(message.data))


def _mcap_channels(path: pathlib.Path) -> dict[str, tuple[str, dict]]:
    """{topic: (msgtype, channel metadata)} of an MCAP file, finished or not."""
    from mcap.reader import NonSeekingReader, make_reader
    from mcap.records import Channel, Schema
    if mcap_is_finished(path):
        try:
            with open(path, 'rb') as stream:
                summary = make_reader(stream).get_summary()
            if summary is not None:
                return {c.topic: (summary.schemas[c.schema_id].name
                                  if c.schema_id in summary.schemas else '', dict(c.metadata))
                        for c in summary.channels.values()}
        except Exception:  # noqa: BLE001 - a bad summary: scan the file instead
            pass
    found, schemas = {}, {}
    with open(path, 'rb') as stream:
        try:
            for record in NonSeekingReader(stream, record_size_limit=None)._stream_reader.records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    found[record.topic] = (schemas.get(record.schema_id, ''),
                                           dict(record.metadata))
        except Exception:  # noqa: BLE001 - truncated tail
            pass
    return found


def open_status(path) -> str:
    """'' if rosbags reads the bag as it is, else why not (the stream fallback may still)."""
    from rosbags.rosbag2 import Reader
    try:
        with Reader(pathlib.Path(path)):
            return ''
    except Exception as error:  # noqa: BLE001
        return str(error) or type(error).__name__


def unindexed_files(path) -> list[pathlib.Path]:
    """MCAP files of a bag that rosbags does not read as they are: not listed in
    metadata.yaml, or without summary (what a killed recorder leaves; our readers
    and repair() still recover their complete chunks)."""
    path = pathlib.Path(path)
    if path.is_file():
        return [] if mcap_is_finished(path) else [path]
    listed, unlisted = storage_files(path)
    broken = [p for p in listed if p.suffix == '.mcap' and p.exists()
              and not mcap_is_finished(p)]
    return broken + unlisted


def topics_with_qos(path) -> dict[str, tuple[str, list]]:
    """{topic: (msgtype, offered QoS profiles as rosbags Qos)} of a bag folder or MCAP file.

    From metadata.yaml, plus the channels of the MCAP files it does not list; without
    metadata.yaml, from every MCAP file of the folder.
    """
    from rosbags.rosbag2.metadata import parse_qos

    def qos_of(profiles):
        try:
            return parse_qos(profiles or [])
        except Exception:  # noqa: BLE001 - unreadable QoS: as if none were recorded
            return []
    path = pathlib.Path(path)
    found = {}
    if path.is_file():
        files = [path]
    else:
        info = read_metadata(path)
        listed, unlisted = storage_files(path)
        files = unlisted if info else [p for p in listed if p.suffix == '.mcap'] + unlisted
        for entry in (info or {}).get('topics_with_message_count') or []:
            meta = entry['topic_metadata']
            found.setdefault(meta['name'], (meta['type'],
                                            qos_of(meta.get('offered_qos_profiles'))))
        if info is None and not files:
            raise BagError(f'{path}: not a rosbag2 bag ({open_status(path)})')
    for mcap in files:
        for topic, (msgtype, metadata) in _mcap_channels(mcap).items():
            found.setdefault(topic, (msgtype, qos_of(metadata.get('offered_qos_profiles'))))
    return found


def topics_of(path) -> dict[str, str]:
    """{topic: msgtype} of a bag folder or MCAP file."""
    return {topic: msgtype for topic, (msgtype, _) in topics_with_qos(path).items()}


def read_messages(path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Messages of a bag (folder or .mcap), file by file, each file in log-time order.

    An MCAP bag is read one file at a time (a split recording has thousands, more
    than rosbags' Reader can hold open): the files metadata.yaml lists, then those it
    does not (a killed recorder's last segment); a file without summary and footer
    (writer killed) is streamed, every complete chunk. sqlite3 bags go through rosbags.
    """
    from rosbags.rosbag2 import Reader
    path = pathlib.Path(path)
    topics = list(topics) if topics else None
    if path.is_file():
        yield from _read_mcap(path, topics)
        return
    if not path.is_dir():
        raise BagError(f'{path}: no such bag folder or MCAP file')
    listed, unlisted = storage_files(path)
    if any(p.suffix != '.mcap' for p in listed):
        status = open_status(path)
        if status:
            raise BagError(f'{path}: cannot read the bag: {status}')
        with Reader(path) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            if conns:
                for conn, timestamp, data in reader.messages(connections=conns):
                    yield BagMessage(conn.topic, conn.msgtype, timestamp, bytes(data))
        return
    files = [p for p in listed if p.exists()] + unlisted
    if not files:
        raise BagError(f'{path}: cannot read the bag: {open_status(path)}')
    for mcap in files:
        yield from _read_mcap(mcap, topics)


def _summary_info(path: pathlib.Path) -> tuple[_FileInfo, list[_Topic]]:
    """What metadata.yaml says about a finished MCAP file, from its summary."""
    from mcap.reader import make_reader
    with open(path, 'rb') as stream:
        summary = make_reader(stream).get_summary()
    stats = summary.statistics
    info = _FileInfo(path.name)
    topics = []
    for cid, channel in summary.channels.items():
        info.counts[channel.topic] = info.counts.get(channel.topic, 0) + \
            stats.channel_message_counts.get(cid, 0)
        schema = summary.schemas.get(channel.schema_id)
        msgtype = schema.name if schema else ''
        qos_text = channel.metadata.get('offered_qos_profiles', '')
        topics.append(_Topic(channel.topic, msgtype, '', channel.metadata.get(
            'topic_type_hash') or _rihs01(msgtype), _qos_dicts(qos_text), qos_text))
    info.count = stats.message_count
    if info.count:
        info.start, info.end = stats.message_start_time, stats.message_end_time
    return info, topics


def _finish_mcap(path: pathlib.Path) -> int:
    """Rewrite an MCAP file without footer (writer killed) into a finished one, in place.

    Keeps every complete chunk; returns its message count. The rewrite goes to
    <name>.repairing and replaces the original only once it is complete.
    """
    from mcap.reader import NonSeekingReader
    tmp = path.with_name(path.name + '.repairing')
    tmp.unlink(missing_ok=True)
    out = None
    try:
        with open(path, 'rb') as stream:
            out = _McapFile(tmp, False, [])
            reader = NonSeekingReader(stream, record_size_limit=None)
            try:
                for schema, channel, message in reader.iter_messages(log_time_order=False):
                    if channel.topic not in out._channels:
                        name = schema.name if schema else ''
                        qos_text = channel.metadata.get('offered_qos_profiles', '')
                        out.add(_Topic(channel.topic, name,
                                       schema.data.decode() if schema else '',
                                       channel.metadata.get('topic_type_hash')
                                       or _rihs01(name), _qos_dicts(qos_text), qos_text))
                    out.write(channel.topic, message.log_time, message.data)
            except Exception:  # noqa: BLE001 - the truncated tail
                pass
        out.finish(_metadata_text('mcap', out.topics, [out.info]))
        tmp.replace(path)
        return out.info.count
    except BaseException:
        if out is not None:
            out.abort()
        tmp.unlink(missing_ok=True)
        raise


def repair(path) -> int:
    """Make a bag a killed recorder left readable by every tool; return its message count.

    Every MCAP file without summary and footer is rewritten in place into a finished
    one (every complete chunk kept), an empty one left by the kill is removed, and
    metadata.yaml is rebuilt to list every MCAP file of the folder in order (a split
    recording's last, unlisted segment included).
    """
    path = pathlib.Path(path)
    bag_dir = path.parent if path.is_file() else path
    listed, unlisted = storage_files(bag_dir)
    files = [p for p in listed if p.suffix == '.mcap' and p.exists()] + unlisted
    if not files:
        raise BagError(f'{path}: no MCAP file to repair (sqlite3 bags repair themselves: '
                       f'uncommitted rows are simply absent)')
    old = read_metadata(bag_dir) or {}
    infos, topics = [], {}
    for mcap in files:
        if not mcap_is_finished(mcap):
            count = _finish_mcap(mcap)
            if not count and mcap in unlisted:
                mcap.unlink()
                continue
        info, file_topics = _summary_info(mcap)
        infos.append(info)
        for topic in file_topics:
            topics.setdefault(topic.name, topic)
    # Topics the old metadata knew keep their entries (QoS as recorded), new ones follow.
    known = []
    for entry in old.get('topics_with_message_count') or []:
        meta = entry.get('topic_metadata', {})
        if meta.get('name') in topics:
            topic = topics.pop(meta['name'])
            qos = meta.get('offered_qos_profiles')
            if isinstance(qos, str):  # v8: a YAML string
                import yaml
                qos = yaml.safe_load(qos) or []
            known.append(_Topic(topic.name, meta.get('type', topic.msgtype), '',
                                meta.get('type_description_hash') or topic.rihs01,
                                qos or topic.qos, ''))
    text = _metadata_text('mcap', known + list(topics.values()), infos,
                          old.get('custom_data'))
    tmp = bag_dir / 'metadata.yaml.tmp'
    tmp.write_text(text, 'utf8')
    tmp.replace(bag_dir / 'metadata.yaml')
    return sum(info.count for info in infos)


def merge(path, out, compress: bool = False) -> int:
    """Copy a bag (every file, a killed recorder's open one included) into a new bag of one
    MCAP file; return its message count. For tools that hold every file of a bag open
    (rosbags' Reader: a split recording of more than ~15 min passes `ulimit -n` 1024)."""
    topics = topics_with_qos(path)
    count = 0
    with BagWriter(out, compress=compress) as writer:
        for topic, (msgtype, qos) in topics.items():
            writer.add_topic(topic, msgtype, qos_profiles=qos)
        for msg in read_messages(path):
            writer.write(msg.topic, msg.timestamp, msg.data)
            count += 1
    return count


def _rihs01(msgtype: str) -> str:
    try:
        store = typestore()
        ensure_type(store, msgtype)
        return store.hash_rihs01(msgtype)
    except Exception:  # noqa: BLE001 - unknown type: the hash is informational
        return 'RIHS01_' + '0' * 64

# --------------------------------------------------------------------------- conversion

def natural_key(text: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', text)]


DEFAULT_POSITION_PATTERN = r'(?i)(?:^|[^a-z])(?:z|pos|position|focus)[_=]?(-?\d+(?:\.\d+)?)'


def position_from_name(name: str, pattern: str = DEFAULT_POSITION_PATTERN) -> float | None:
    """The lens position a file name carries (first group of `pattern`), or None."""
    match = re.search(pattern, pathlib.Path(name).stem)
    return float(match.group(1)) if match else None


def read_positions_csv(path) -> dict[str, float]:
    """{file name or frame index (as text): position} from a CSV.

    Accepted: a header naming a file column (file, filename, image, name, frame)
    and a position column (position, pos, z, focus), comma- or whitespace-
    separated; without a header, the first numeric column of two is the
    position and the other the file (e.g. '020 XP005_Z20X0Y0@1#1.jpg').
    """
    text = pathlib.Path(path).read_text()
    rows = [re.split(r'\s*,\s*|\s+', line.strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith('#')]
    if not rows:
        return {}

    def number(value):
        try:
            return float(value)
        except ValueError:
            return None
    header = [h.lower() for h in rows[0]]
    file_names = {'file', 'filename', 'image', 'name', 'path', 'frame'}
    position_names = {'position', 'pos', 'z', 'focus', 'focus_position'}
    positions = {}
    if any(h in file_names for h in header) and any(h in position_names for h in header):
        fi = next(i for i, h in enumerate(header) if h in file_names)
        pi = next(i for i, h in enumerate(header) if h in position_names)
        pairs = [(row[fi], number(row[pi])) for row in rows[1:] if len(row) > max(fi, pi)]
    else:  # no header: (file, position), (position, file) or (frame index, position)
        pairs = []
        for row in rows:
            if len(row) < 2:
                continue
            if number(row[1]) is not None:
                pairs.append((row[0], number(row[1])))
            elif number(row[0]) is not None:
                pairs.append((row[1], number(row[0])))
    for key, position in pairs:
        if position is not None:
            key = str(int(key)) if key.isdigit() else pathlib.Path(key).name
            positions[key] = position
    return positions


def list_images(folder) -> list[pathlib.Path]:
    folder = pathlib.Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def resize_frame(frame: np.ndarray, scale: float = 1.0, max_size: int = 0) -> np.ndarray:
    import cv2
    h, w = frame.shape[:2]
    factor = scale
    if max_size and max(h, w) * factor > max_size:
        factor = max_size / max(h, w)
    if abs(factor - 1.0) < 1e-9:
        return frame
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def image_message(frame: np.ndarray, stamp_ns: int, encoding: str = 'bgr8',
                  frame_id: str = 'camera'):
    """A rosbags sensor_msgs/Image from a uint8 frame (bgr8 in, bgr8 or mono8 out)."""
    import cv2
    if encoding == 'mono8' and frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif encoding == 'bgr8' and frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    frame = np.ascontiguousarray(frame)
    t = typestore().types
    sec, nsec = divmod(int(stamp_ns), 10**9)
    stamp = t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
    header = t['std_msgs/msg/Header'](stamp=stamp,
                                      frame_id=frame_id)
    return t[IMAGE_TYPE](header=header, height=frame.shape[0], width=frame.shape[1],
                         encoding=encoding, is_bigendian=0, step=frame.strides[0],
                         data=frame.reshape(-1).view(np.uint8))


def motor_state_message(position: float, stamp_ns: int, limits: tuple[float, float]):
    t = typestore().types
    sec, nsec = divmod(int(stamp_ns), 10**9)
    stamp = t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
    return t[STATE_TYPE](header=t['std_msgs/msg/Header'](stamp=stamp, frame_id=''),
                         position=float(position), target=float(position), moving=False,
                         position_measured=True, stationary_since=stamp,
                         min_position=float(limits[0]), max_position=float(limits[1]),
                         last_command_sequence=0, fault='')


@dataclass
class ConvertReport:
    frames: int = 0
    with_position: int = 0
    skipped: list = None


def frames_to_bag(frames, out, *, fps: float = 10.0, start_ns: int = 1_700_000_000 * 10**9,
                  encoding: str = 'bgr8', storage: str = 'mcap', compress: bool = False,
                  image_topic: str = '/camera/image_raw',
                  state_topic: str = '/focus_motor/state', frame_id: str = 'camera',
                  log=print) -> ConvertReport:
    """Write (name, frame or error text, position or None) items as a bag; return what was done.

    Frame i is stamped start + i/fps; when its position is known, a MotorState
    at rest at that position is written half a period before it (stationary
    since then), so the focus server would accept the frame for that position.
    """
    items = list(frames)
    positions = [p for _, f, p in items if p is not None and not isinstance(f, str)]
    limits = (min(positions), max(positions)) if positions else (0.0, 0.0)
    period_ns = int(round(1e9 / fps))
    report = ConvertReport(skipped=[])
    with BagWriter(out, storage=storage, compress=compress) as bag:
        bag.add_topic(image_topic, IMAGE_TYPE, reliable=False)
        if positions:
            bag.add_topic(state_topic, STATE_TYPE, reliable=True)
        for name, frame, position in items:
            if isinstance(frame, str):
                report.skipped.append((name, frame))
                log(f'skipped {name}: {frame}')
                continue
            stamp = start_ns + report.frames * period_ns
            if position is not None:
                state_stamp = stamp - period_ns // 2
                bag.write(state_topic, state_stamp,
                          serialize(motor_state_message(position, state_stamp, limits),
                                    STATE_TYPE))
                report.with_position += 1
            bag.write(image_topic, stamp,
                      serialize(image_message(frame, stamp, encoding, frame_id), IMAGE_TYPE))
            report.frames += 1
    return report


def read_image_file(path) -> np.ndarray | str:
    """The image as a uint8 bgr or grey array, or the reason it cannot be read."""
    import cv2

    from autofocus.image_codec import jpeg_truncated
    path = pathlib.Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        return f'cannot read: {error.strerror}'
    if data.size == 0:
        return 'empty file'
    if jpeg_truncated(data):
        return 'truncated JPEG (no end-of-image marker)'
    frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if frame is None:
        return 'not a readable image (corrupt or unsupported format)'
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def image_files_frames(files, positions=None, pattern=DEFAULT_POSITION_PATTERN, scale=1.0,
                       max_size=0, sort_by_position=True):
    """(name, frame or error, position) for image files; ordered by position when all are known."""
    positions = positions or {}
    entries = []
    for path in files:
        path = pathlib.Path(path)
        position = positions.get(path.name)
        if position is None and not positions:
            position = position_from_name(path.name, pattern)
        entries.append((path, position))
    if sort_by_position and entries and all(p is not None for _, p in entries):
        entries.sort(key=lambda e: e[1])
    for path, position in entries:
        frame = read_image_file(path)
        if not isinstance(frame, str):
            frame = resize_frame(frame, scale, max_size)
        yield path.name, frame, position


def video_frames(path, positions=None, scale=1.0, max_size=0):
    """(name 'video#i', frame, position by frame index) of a video; an error item if unreadable."""
    import cv2
    path = pathlib.Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        yield path.name, 'cannot open the video (missing, corrupt or unsupported codec)', None
        return
    positions = positions or {}
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f'{path.name}#{index}', resize_frame(frame, scale, max_size), \
                positions.get(str(index))
            index += 1
    finally:
        capture.release()
    if index == 0:
        yield path.name, 'no frame could be decoded', None


def video_fps(path, default: float = 10.0) -> float:
    import cv2
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if fps and 0 < fps < 1000 else default


# --------------------------------------------------------------------------- command line

def convert_main(argv=None) -> int:
    """bag_convert: image folder / video -> bag, --repair an unfinished bag, --merge one."""
    import argparse
    parser = argparse.ArgumentParser(
        prog='bag_convert',
        description='Make a rosbag2 bag (sensor_msgs/Image on /camera/image_raw plus '
                    'MotorState positions on /focus_motor/state) from an image folder or a '
                    'video, repair a bag whose recorder was killed, or merge a bag\'s files '
                    'into one.')
    parser.add_argument('source', help='image folder, video file, or (with --repair) a bag')
    parser.add_argument('-o', '--output', help='bag folder to create (must not exist)')
    parser.add_argument('--repair', action='store_true',
                        help='finish the MCAP files a crash left without footer and list '
                             'them in metadata.yaml, in place')
    parser.add_argument('--merge', action='store_true',
                        help='copy the bag (all its files) into a new bag of one MCAP file, '
                             '-o OUTPUT')
    parser.add_argument('--positions', help='CSV of file name (or video frame index) and '
                                            'lens position')
    parser.add_argument('--position-pattern', default=DEFAULT_POSITION_PATTERN,
                        help='regex whose first group is the position in a file name '
                             '(default: a number after z/pos/position/focus)')
    parser.add_argument('--fps', type=float, default=0.0,
                        help='frame rate of the bag (default: the video\'s, or 10 for images)')
    parser.add_argument('--scale', type=float, default=1.0, help='resize factor')
    parser.add_argument('--max-size', type=int, default=0,
                        help='shrink so the longer side is at most this many pixels')
    parser.add_argument('--encoding', choices=('bgr8', 'mono8'), default='bgr8')
    parser.add_argument('--storage', choices=STORAGES, default='mcap')
    parser.add_argument('--compress', action='store_true', help='zstd-compress MCAP chunks')
    parser.add_argument('--start', type=float, default=1_700_000_000.0,
                        help='stamp of the first frame, seconds since the epoch')
    parser.add_argument('--image-topic', default='/camera/image_raw')
    parser.add_argument('--state-topic', default='/focus_motor/state')
    args = parser.parse_args(argv)
    source = pathlib.Path(args.source)
    try:
        if args.repair:
            count = repair(source)
            print(f'{source}: repaired, {count} messages kept')
            return 0
        if not args.output:
            parser.error('--output is required')
        if args.merge:
            count = merge(source, args.output, compress=args.compress)
            print(f'{args.output}: {count} messages from {source} in one file')
            return 0
        positions = read_positions_csv(args.positions) if args.positions else None
        if source.is_dir():
            files = list_images(source)
            if not files:
                print(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)})', file=sys.stderr)
                return 1
            frames = image_files_frames(files, positions, args.position_pattern, args.scale,
                                        args.max_size)
            fps = args.fps or 10.0
        elif source.is_file():
            frames = video_frames(source, positions, args.scale, args.max_size)
            fps = args.fps or video_fps(source)
        else:
            print(f'{source}: no such file or folder', file=sys.stderr)
            return 1
        report = frames_to_bag(frames, args.output, fps=fps, start_ns=int(args.start * 1e9),
                               encoding=args.encoding, storage=args.storage,
                               compress=args.compress, image_topic=args.image_topic,
                               state_topic=args.state_topic,
                               log=lambda text: print(text, file=sys.stderr))
    except BagError as error:
        print(f'bag_convert: {error}', file=sys.stderr)
        return 1
    print(f'{args.output}: {report.frames} frames ({report.with_position} with a position), '
          f'{len(report.skipped)} skipped')
    return 0 if report.frames else 1


if __name__ == '__main__':
    sys.exit(convert_main())
