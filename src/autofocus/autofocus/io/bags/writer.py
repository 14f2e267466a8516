"""Writing bags: MCAP files split by wall time and finished before metadata.yaml lists them,
or sqlite3 through rosbags."""
from __future__ import annotations

import pathlib
import time
from typing import Iterable

from autofocus.io.bags.format import (
    BagError, STORAGES, _FileInfo, _Topic, _metadata_text, _qos_profiles, _qos_text,
    ensure_type, typestore)


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
        self._writer.start(profile='ros2', library='autofocus.io.bags (mcap)')
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
        self._final_listing: list[_FileInfo] | None = None   # sqlite3, once closed
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
            # rosbags' close() drops its storage (whose path _listed() reads): list the
            # file first, so files and counts still answer after close.
            self._final_listing = self._listed()
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
        if self._final_listing is not None:
            return list(self._final_listing)
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
