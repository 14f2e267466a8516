"""Reading bags, finished or left open by a crash: metadata, storage files, messages."""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Iterable, Iterator

from autofocus.io.bags.format import BagError, MCAP_MAGIC, natural_key


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
