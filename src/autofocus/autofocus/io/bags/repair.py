"""Repairing and merging bags: finish the MCAP file a killed recorder left open, list it,
or merge every file into one."""
from __future__ import annotations

import pathlib

from autofocus.io.bags.format import (
    BagError, _FileInfo, _Topic, _metadata_text, _qos_dicts, _rihs01)
from autofocus.io.bags.reader import (
    mcap_is_finished, read_messages, read_metadata, storage_files, topics_with_qos)
from autofocus.io.bags.writer import BagWriter, _McapFile


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
