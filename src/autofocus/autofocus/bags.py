"""rosbag2 bags (MCAP or sqlite3) with the rosbags library: write, flush, read, repair, convert.

No rclpy here: messages are handled as serialized CDR bytes (what a raw
subscription gives and a publisher accepts) or as rosbags' own message
objects. The bags are real rosbag2 bags (a folder with metadata.yaml and one
storage file), so `ros2 bag info/play` and Foxglove open them.

Our own interfaces (autofocus_interfaces/msg/*) are registered in the
typestore from their .msg files, so the bag carries their full message
definitions and the same RIHS01 type hashes as the generated code.

Crash safety (measured in test_bags_nodes.py): :meth:`BagWriter.flush` closes
the pending MCAP chunk, writes it to the file, and rewrites metadata.yaml; the
recorder calls it every ``flush_period`` (0.5 s). A process killed between two
flushes leaves an MCAP file without its summary and footer: :func:`read_messages`
falls back to a streaming read of every complete chunk, and :func:`repair`
rewrites such a bag into a finished one.
"""
from __future__ import annotations

import io
import os
import pathlib
import re
import shutil
import sys
from dataclasses import dataclass
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


class BagWriter:
    """A rosbag2 bag being written; flush() makes what was written so far survive a crash.

    storage: 'mcap' (default) or 'sqlite3'. compress: zstd chunk compression (MCAP only).
    """

    def __init__(self, path, storage: str = 'mcap', compress: bool = False):
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
        if storage not in STORAGES:
            raise BagError(f"storage '{storage}' is not one of {', '.join(STORAGES)}")
        self.path = pathlib.Path(path)
        self.storage = storage
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        except Exception as error:  # noqa: BLE001 - e.g. the folder exists
            raise BagError(f'cannot create bag {self.path}: {error}') from None
        if compress:
            if storage != 'mcap':
                raise BagError('compress: only MCAP storage supports chunk compression here')
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        try:
            self._writer.open()
        except Exception as error:
            raise BagError(f'cannot create bag {self.path}: {error}') from None
        self._connections = {}
        self.flush()  # metadata.yaml exists from the start

    @property
    def topics(self):
        return {topic: conn.msgtype for topic, conn in self._connections.items()}

    def add_topic(self, topic: str, msgtype: str, reliable: bool = True,
                  transient_local: bool = False):
        store = typestore()
        ensure_type(store, msgtype)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=store,
            offered_qos_profiles=_qos_profiles(reliable, transient_local))

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Append one serialized (CDR) message; timestamp = when it was received (log time)."""
        self._writer.write(self._connections[topic], int(timestamp_ns), data)

    def count(self, topic: str) -> int:
        return self._writer.counts[self._connections[topic].id]

    def flush(self) -> None:
        """Put everything written so far on disk in readable form, and refresh metadata.yaml.

        rosbags has no public flush: this closes its MCAP writer's pending chunk (rosbags
        0.11; test_bags.py fails loudly if that changes) or commits the sqlite3 transaction.
        The data reaches the OS, which survives a killed process, not a power cut (no fsync).
        """
        storage = self._writer.storage
        if storage is None:
            return
        if self.storage == 'mcap':
            if storage.chunk.msgs:  # only chunks with messages (schemas wait for theirs)
                storage.close_chunk()
            storage.bio.flush()
        else:
            storage.conn.commit()
        text = _metadata_text(self._writer)
        tmp = self.path / 'metadata.yaml.tmp'
        tmp.write_text(text, 'utf8')
        tmp.replace(self.path / 'metadata.yaml')

    def close(self) -> None:
        if self._writer.storage is not None:
            self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _metadata_text(writer) -> str:
    """metadata.yaml for a bag still being written (what rosbags' Writer.close writes)."""
    from rosbags.rosbag2.metadata import dump_qos_v9
    from rosbags.interfaces import ConnectionExtRosbag2
    from ruamel.yaml import YAML
    storage_file = writer.storage.path
    count = sum(writer.counts.values())
    start = writer.min_timestamp if count else 0
    duration = max(0, writer.max_timestamp - writer.min_timestamp) if count else 0
    info = {
        'version': writer.version,
        'storage_identifier': writer.storage_plugin.name.lower(),
        'relative_file_paths': [storage_file.name],
        'duration': {'nanoseconds': duration},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': count,
        'topics_with_message_count': [
            {'topic_metadata': {'name': c.topic, 'type': c.msgtype,
                                'serialization_format': c.ext.serialization_format,
                                'offered_qos_profiles': dump_qos_v9(c.ext.offered_qos_profiles),
                                'type_description_hash': c.digest},
             'message_count': writer.counts[c.id]}
            for c in writer.connections if isinstance(c.ext, ConnectionExtRosbag2)],
        'compression_format': '',
        'compression_mode': '',
        'files': [{'path': storage_file.name, 'starting_time': {'nanoseconds_since_epoch': start},
                   'duration': {'nanoseconds': duration}, 'message_count': count}],
        'custom_data': writer.custom_data or None,
        'ros_distro': 'rosbags',
    }
    yaml = YAML(typ='safe')
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump({'rosbag2_bagfile_information': info}, out)
    return out.getvalue()


# --------------------------------------------------------------------------- reading

@dataclass
class BagMessage:
    topic: str
    msgtype: str
    timestamp: int   # log time (ns): when the recorder received it
    data: bytes      # CDR


def _mcap_file(path: pathlib.Path) -> pathlib.Path | None:
    if path.is_file() and path.suffix == '.mcap':
        return path
    files = sorted(path.glob('*.mcap')) if path.is_dir() else []
    return files[0] if files else None


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


def open_status(path) -> str:
    """'' if rosbags reads the bag as it is, else why not (the stream fallback may still)."""
    from rosbags.rosbag2 import Reader
    try:
        with Reader(pathlib.Path(path)):
            return ''
    except Exception as error:  # noqa: BLE001
        return str(error) or type(error).__name__


def topics_of(path) -> dict[str, str]:
    """{topic: msgtype} of a bag folder or MCAP file."""
    from rosbags.rosbag2 import Reader
    path = pathlib.Path(path)
    if not open_status(path):
        with Reader(path) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    mcap = _mcap_file(path)
    if mcap is None:
        raise BagError(f'{path}: not a rosbag2 bag ({open_status(path)})')
    from mcap.reader import NonSeekingReader
    found = {}
    with open(mcap, 'rb') as stream:
        try:
            from mcap.records import Channel, Schema
            schemas = {}
            for record in NonSeekingReader(stream, record_size_limit=None)._stream_reader.records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    found[record.topic] = schemas.get(record.schema_id, '')
        except Exception:  # noqa: BLE001 - truncated tail
            pass
    return found


def read_messages(path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Messages of a bag (folder or .mcap), in log-time order.

    A bag rosbags cannot open (an MCAP file whose writer was killed: no footer,
    or no metadata.yaml) is read by streaming its complete chunks instead.
    """
    from rosbags.rosbag2 import Reader
    path = pathlib.Path(path)
    topics = list(topics) if topics else None
    if path.is_dir() and not open_status(path):
        with Reader(path) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            if not conns:
                return
            for conn, timestamp, data in reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, timestamp, bytes(data))
        return
    mcap = _mcap_file(path)
    if mcap is None:
        raise BagError(f'{path}: cannot read the bag: {open_status(path)}')
    yield from _stream_mcap(mcap, topics)


def repair(path) -> int:
    """Rewrite an unfinished MCAP bag (writer killed) into a finished one.

    Returns its message count.

    Keeps every complete chunk; the original file is kept as <name>.mcap.unfinished
    until the rewrite succeeded, then removed.
    """
    path = pathlib.Path(path)
    mcap = _mcap_file(path)
    if mcap is None:
        raise BagError(f'{path}: no MCAP file to repair (sqlite3 bags repair themselves: '
                       f'uncommitted rows are simply absent)')
    bag_dir = mcap.parent
    from mcap.reader import NonSeekingReader
    from rosbags.rosbag2 import Writer, StoragePlugin
    backup = mcap.with_suffix('.mcap.unfinished')
    mcap.replace(backup)
    meta = bag_dir / 'metadata.yaml'
    old_meta = meta.read_bytes() if meta.exists() else None
    meta.unlink(missing_ok=True)
    tmp_dir = bag_dir.with_name(bag_dir.name + '.repairing')
    shutil.rmtree(tmp_dir, ignore_errors=True)
    count = 0
    try:
        with open(backup, 'rb') as stream, \
                Writer(tmp_dir, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            conns = {}
            reader = NonSeekingReader(stream, record_size_limit=None)
            try:
                for schema, channel, message in reader.iter_messages(log_time_order=False):
                    if channel.id not in conns:
                        conns[channel.id] = writer.add_connection(
                            channel.topic, schema.name, msgdef=schema.data.decode(),
                            rihs01=_rihs01(schema.name),
                            serialization_format=channel.message_encoding)
                    writer.write(conns[channel.id], message.log_time, message.data)
                    count += 1
            except Exception:  # noqa: BLE001 - the truncated tail
                pass
        new_file = tmp_dir / f'{tmp_dir.name}.mcap'
        new_file.replace(mcap)
        text = (tmp_dir / 'metadata.yaml').read_text().replace(new_file.name, mcap.name)
        meta.write_text(text)
        shutil.rmtree(tmp_dir)
        backup.unlink()
    except BaseException:
        if backup.exists():
            backup.replace(mcap)
        if old_meta is not None:
            meta.write_bytes(old_meta)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
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
    path = pathlib.Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        return f'cannot read: {error.strerror}'
    if data.size == 0:
        return 'empty file'
    if data[:2].tobytes() == b'\xff\xd8' and not _jpeg_complete(data):
        return 'truncated JPEG (no end-of-image marker)'
    frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if frame is None:
        return 'not a readable image (corrupt or unsupported format)'
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _jpeg_complete(data: np.ndarray) -> bool:
    tail = data[-64:].tobytes().rstrip(b'\x00')
    return b'\xff\xd9' in tail


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
    """bag_convert: image folder / video -> bag, or --repair an unfinished bag."""
    import argparse
    parser = argparse.ArgumentParser(
        prog='bag_convert',
        description='Make a rosbag2 bag (sensor_msgs/Image on /camera/image_raw plus '
                    'MotorState positions on /focus_motor/state) from an image folder or a '
                    'video, or repair a bag whose recorder was killed.')
    parser.add_argument('source', help='image folder, video file, or (with --repair) a bag')
    parser.add_argument('-o', '--output', help='bag folder to create (must not exist)')
    parser.add_argument('--repair', action='store_true',
                        help='finish an MCAP bag left without footer by a crash, in place')
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
