"""Bags written with our helpers are real rosbag2 bags: rosbags, the mcap reader and
metadata.yaml agree, for our own interfaces too. No DDS here."""
import json
import pathlib
import shutil

import cv2
import numpy as np
import pytest
import yaml
from autofocus_interfaces.msg import FocusMetrics, MotorCommand, MotorState
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Float64

from autofocus.io import bags
from autofocus.io.image_codec import fill_image_msg

SWEEP_BAG = pathlib.Path(__file__).parent / 'data' / 'focus-sweep-xp005' / 'sweep'
TYPES = {'/camera/image_raw': (Image, 'sensor_msgs/msg/Image'),
         '/sharpness': (Float64, 'std_msgs/msg/Float64'),
         '/sharpness/metrics': (FocusMetrics, 'autofocus_interfaces/msg/FocusMetrics'),
         '/focus_motor/state': (MotorState, 'autofocus_interfaces/msg/MotorState'),
         '/focus_motor/command': (MotorCommand, 'autofocus_interfaces/msg/MotorCommand')}


def _messages():
    """One message of every default topic, built with the generated (rclpy) classes."""
    image = fill_image_msg(Image(), np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    image.header.stamp.sec, image.header.frame_id = 12, 'camera'
    metrics = FocusMetrics(primary_measure='tenengrad', sharpness=3.5,
                           names=['tenengrad', 'brenner'], values=[3.5, 1.25])
    metrics.header = image.header
    state = MotorState(position=42.0, moving=True, fault='stalled')
    state.header.stamp.sec = 11
    command = MotorCommand(mode=MotorCommand.MODE_RELATIVE, target=-5.0, sequence=7)
    return {'/camera/image_raw': image, '/sharpness': Float64(data=3.5),
            '/sharpness/metrics': metrics, '/focus_motor/state': state,
            '/focus_motor/command': command}


def _write(path, storage='mcap', flush_only=False):
    msgs = _messages()
    writer = bags.BagWriter(path, storage=storage)
    for topic, (_, msgtype) in TYPES.items():
        writer.add_topic(topic, msgtype, reliable=topic != '/camera/image_raw')
    for i in range(3):
        for topic, msg in msgs.items():
            writer.write(topic, 1_000_000_000 + i * 1000 + len(topic), serialize_message(msg))
    if flush_only:
        writer.flush()
        return writer, msgs
    writer.close()
    return None, msgs


def test_our_types_have_the_generated_code_hashes():
    store = bags.typestore()
    share = pathlib.Path(__import__('ament_index_python').get_package_share_directory(
        'autofocus_interfaces')) / 'msg'
    for name in ('FocusMetrics', 'MotorCommand', 'MotorState'):
        msgtype = f'autofocus_interfaces/msg/{name}'
        expected = next(h['hash_string'] for h in json.loads(
            (share / f'{name}.json').read_text())['type_hashes'] if h['type_name'] == msgtype)
        assert store.hash_rihs01(msgtype) == expected


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_reads_back_with_rosbags_and_metadata(tmp_path, storage):
    from rosbags.rosbag2 import Reader
    _, msgs = _write(tmp_path / 'bag', storage)
    with Reader(tmp_path / 'bag') as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == \
            {t: m for t, (_, m) in TYPES.items()}
        count = 0
        for conn, _, data in reader.messages():
            cls = TYPES[conn.topic][0]
            assert deserialize_message(bytes(data), cls) == msgs[conn.topic]
            count += 1
        assert count == 15
    state = bags.deserialize(next(m for m in bags.read_messages(tmp_path / 'bag')
                                  if m.topic == '/focus_motor/state').data, bags.STATE_TYPE)
    assert (state.position, state.moving, state.fault) == (42.0, True, 'stalled')

    info = yaml.safe_load((tmp_path / 'bag' / 'metadata.yaml').read_text())
    info = info['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == storage
    assert info['message_count'] == 15
    suffix = '.mcap' if storage == 'mcap' else '.db3'
    assert info['relative_file_paths'] == [f'bag{suffix}']
    assert (tmp_path / 'bag' / f'bag{suffix}').exists()
    topics = {t['topic_metadata']['name']: t for t in info['topics_with_message_count']}
    assert topics.keys() == TYPES.keys()
    for topic, entry in topics.items():
        assert entry['message_count'] == 3
        assert entry['topic_metadata']['type'] == TYPES[topic][1]
        assert entry['topic_metadata']['serialization_format'] == 'cdr'
        assert entry['topic_metadata']['type_description_hash'].startswith('RIHS01_')
        reliability = entry['topic_metadata']['offered_qos_profiles'][0]['reliability']
        assert reliability == ('best_effort' if topic == '/camera/image_raw' else 'reliable')


def test_mcap_opens_with_the_mcap_reader_with_full_definitions(tmp_path):
    from mcap.reader import make_reader
    _, msgs = _write(tmp_path / 'bag')
    with open(tmp_path / 'bag' / 'bag.mcap', 'rb') as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        assert summary.statistics.message_count == 15
        schemas = {s.name: s for s in summary.schemas.values()}
        metrics = schemas['autofocus_interfaces/msg/FocusMetrics']
        assert metrics.encoding == 'ros2msg'
        text = metrics.data.decode()
        # The definition carries the nested types too (what Foxglove needs to decode).
        assert 'string[] names' in text and 'MSG: sensor_msgs/RegionOfInterest' in text
        for schema, channel, message in reader.iter_messages():
            assert channel.message_encoding == 'cdr'
            cls = TYPES[channel.topic][0]
            assert deserialize_message(message.data, cls) == msgs[channel.topic]


def test_flushed_bag_survives_a_crash_and_repairs(tmp_path):
    writer, _ = _write(tmp_path / 'bag', flush_only=True)
    for _ in range(4):  # written after the last flush: not on disk yet
        writer.write('/sharpness', 2_000_000_000, serialize_message(Float64(data=1.0)))
    # What SIGKILL would leave now: the files as they are on disk.
    shutil.copytree(tmp_path / 'bag', tmp_path / 'crashed')
    writer.close()

    crashed = tmp_path / 'crashed'
    assert not bags.mcap_is_finished(crashed / 'bag.mcap')
    assert bags.open_status(crashed) != ''
    info = yaml.safe_load((crashed / 'metadata.yaml').read_text())
    assert info['rosbag2_bagfile_information']['message_count'] == 15
    assert bags.topics_of(crashed).keys() == TYPES.keys()
    assert len(list(bags.read_messages(crashed))) == 15
    assert bags.repair(crashed) == 15
    assert bags.open_status(crashed) == ''
    assert bags.mcap_is_finished(crashed / 'bag.mcap')
    assert len(list(bags.read_messages(crashed))) == 15
    assert sorted(p.name for p in crashed.iterdir()) == ['bag.mcap', 'metadata.yaml']


F64 = 'std_msgs/msg/Float64'


def _f64(value):
    return serialize_message(Float64(data=float(value)))


def _check_metadata_matches_the_files(bag):
    """metadata.yaml is what rosbag2 writes for a multi-file bag, and true: every listed
    file is finished, opens with the mcap reader, and has the listed counts and times."""
    from mcap.reader import make_reader
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    assert info['relative_file_paths'] == [f['path'] for f in info['files']]
    total, topics, starts, ends = 0, {}, [], []
    for entry in info['files']:
        with open(bag / entry['path'], 'rb') as stream:
            reader = make_reader(stream)
            stats = reader.get_summary().statistics
            read = sum(1 for _ in reader.iter_messages())
        assert read == stats.message_count == entry['message_count']
        if read:
            assert entry['starting_time']['nanoseconds_since_epoch'] == stats.message_start_time
            assert entry['duration']['nanoseconds'] == \
                stats.message_end_time - stats.message_start_time
            starts.append(stats.message_start_time)
            ends.append(stats.message_end_time)
        for channel_id, channel in reader.get_summary().channels.items():
            topics[channel.topic] = topics.get(channel.topic, 0) + \
                stats.channel_message_counts.get(channel_id, 0)
        total += read
    assert info['message_count'] == total
    assert {t['topic_metadata']['name']: t['message_count']
            for t in info['topics_with_message_count'] if t['message_count']} == \
        {t: n for t, n in topics.items() if n}
    if total:
        assert info['starting_time']['nanoseconds_since_epoch'] == min(starts)
        assert info['duration']['nanoseconds'] == max(ends) - min(starts)
    return info


def _rosbags_count(bag):
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import Reader
    with Reader(bag) as reader:
        count = sum(1 for _ in reader.messages())
        assert count == reader.message_count
    with AnyReader([bag]) as reader:
        assert sum(1 for _ in reader.messages()) == count
    return count


def test_split_bag_lists_only_finished_files_and_survives_a_crash(tmp_path):
    """What a killed split recorder leaves: every listed file complete, the open one not."""
    writer = bags.BagWriter(tmp_path / 'bag', split_seconds=1.0, compress=True)
    writer.add_topic('/a', F64, reliable=False)
    assert writer.files == [] and not list((tmp_path / 'bag').glob('*.mcap'))
    start = 1_000_000_000_000_000_000
    for i in range(250):   # 2.5 s at 100 Hz of log time: two finished files, one open
        writer.write('/a', start + i * 10_000_000, _f64(i))
        if i == 120:
            writer.add_topic('/b', F64)   # a topic that appears mid-file
        if i >= 120:
            writer.write('/b', start + i * 10_000_000 + 1, _f64(-i))
    writer.flush()   # the open file's chunk is on disk; it stays unlisted
    assert writer.files == ['bag_0.mcap', 'bag_1.mcap']
    shutil.copytree(tmp_path / 'bag', tmp_path / 'crashed')   # what SIGKILL leaves
    writer.close()

    crashed = tmp_path / 'crashed'
    assert bags.open_status(crashed) == ''
    info = _check_metadata_matches_the_files(crashed)
    assert info['message_count'] == 200 + 80 == _rosbags_count(crashed)
    assert bags.unindexed_files(crashed) == [crashed / 'bag_2.mcap']
    assert not bags.mcap_is_finished(crashed / 'bag_2.mcap')
    # Our readers take the open file's complete chunks too.
    assert bags.topics_of(crashed) == {'/a': F64, '/b': F64}
    values = [bags.deserialize(m.data, F64).data for m in bags.read_messages(crashed, ['/a'])]
    assert values == [float(i) for i in range(250)]
    # Repair finishes the open file and lists it.
    assert bags.repair(crashed) == 250 + 130
    assert bags.unindexed_files(crashed) == []
    info = _check_metadata_matches_the_files(crashed)
    assert info['relative_file_paths'] == ['bag_0.mcap', 'bag_1.mcap', 'bag_2.mcap']
    assert _rosbags_count(crashed) == 380
    qos = {t['topic_metadata']['name']: t['topic_metadata']['offered_qos_profiles'][0]
           for t in info['topics_with_message_count']}
    assert (qos['/a']['reliability'], qos['/b']['reliability']) == ('best_effort', 'reliable')

    # Closed properly: the last file is finished and listed as well.
    info = _check_metadata_matches_the_files(tmp_path / 'bag')
    assert info['relative_file_paths'] == ['bag_0.mcap', 'bag_1.mcap', 'bag_2.mcap']
    assert _rosbags_count(tmp_path / 'bag') == 380 == writer.count('/a') + writer.count('/b')


def test_merge_a_split_bag_into_one_file(tmp_path):
    writer = bags.BagWriter(tmp_path / 'bag', split_seconds=1.0)
    writer.add_topic('/a', F64, reliable=False, transient_local=True)
    for i in range(45):
        writer.write('/a', 10**18 + i * 100_000_000, _f64(i))
    writer.flush()   # 4 finished files and an open one, as a kill leaves them
    assert len(writer.files) == 4
    assert bags.convert_main([str(tmp_path / 'bag'), '--merge', '-o',
                              str(tmp_path / 'one')]) == 0
    writer.close()
    info = _check_metadata_matches_the_files(tmp_path / 'one')
    assert info['relative_file_paths'] == ['one.mcap']
    assert _rosbags_count(tmp_path / 'one') == 45
    qos = info['topics_with_message_count'][0]['topic_metadata']['offered_qos_profiles'][0]
    assert (qos['reliability'], qos['durability']) == ('best_effort', 'transient_local')


def test_split_by_wall_time_at_flush_and_empty_bags(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(bags.writer.time, 'monotonic', lambda: clock[0])
    writer = bags.BagWriter(tmp_path / 'bag', split_seconds=1.0)
    writer.add_topic('/a', F64)
    writer.write('/a', 5, _f64(1))
    writer.flush()
    assert writer.files == []
    clock[0] += 1.0   # idle for a second: the file is finished at the next flush
    writer.flush()
    assert writer.files == ['bag_0.mcap']
    writer.flush()
    writer.close()    # nothing since: no empty file
    assert sorted(p.name for p in (tmp_path / 'bag').iterdir()) == ['bag_0.mcap',
                                                                    'metadata.yaml']
    with bags.BagWriter(tmp_path / 'empty', split_seconds=1.0) as empty:
        empty.add_topic('/a', F64)
    info = _check_metadata_matches_the_files(tmp_path / 'empty')
    assert info['relative_file_paths'] == ['empty_0.mcap'] and info['message_count'] == 0
    assert _rosbags_count(tmp_path / 'empty') == 0
    assert [t['topic_metadata']['name'] for t in info['topics_with_message_count']] == ['/a']


def test_sqlite3_bag_killed_mid_transaction_reads_what_was_committed(tmp_path):
    """rosbags opens .db3 files immutable (no journal rollback): a transaction big enough
    to spill pages into the file before its commit must still not show."""
    writer = bags.BagWriter(tmp_path / 'bag', storage='sqlite3')
    writer.add_topic('/a', 'std_msgs/msg/UInt8MultiArray')
    from std_msgs.msg import UInt8MultiArray
    rng = np.random.default_rng(0)

    def blob():
        return serialize_message(UInt8MultiArray(data=rng.integers(0, 255, 1000).tolist()))
    for i in range(100):
        writer.write('/a', 1_000 + i, blob())
    writer.flush()
    for i in range(20_000):   # ~20 MB uncommitted, ten times sqlite's page cache
        writer.write('/a', 2_000 + i, blob())
    assert (tmp_path / 'bag' / 'bag.db3-journal').exists()
    shutil.copytree(tmp_path / 'bag', tmp_path / 'crashed')
    writer.close()
    from rosbags.rosbag2 import Reader
    with Reader(tmp_path / 'crashed') as reader:
        assert [t for _, t, _ in reader.messages()] == [1_000 + i for i in range(100)]
        assert reader.message_count == 100
    assert len(list(bags.read_messages(tmp_path / 'crashed'))) == 100


def test_writer_refuses_an_existing_folder_and_unknown_storage(tmp_path):
    with pytest.raises(bags.BagError):
        bags.BagWriter(tmp_path / 'x', storage='rosbag1')
    (tmp_path / 'exists').mkdir()
    with pytest.raises(bags.BagError):
        bags.BagWriter(tmp_path / 'exists')


def test_positions_from_names_and_csv(tmp_path):
    assert bags.position_from_name('XP005_Z-49X0Y0@1#1.jpg') == -49.0
    assert bags.position_from_name('focus_120.5.png') == 120.5
    assert bags.position_from_name('img_0001.png') is None
    (tmp_path / 'a.csv').write_text('file,position\nx.png,3\ny.png,-2.5\n')
    assert bags.read_positions_csv(tmp_path / 'a.csv') == {'x.png': 3.0, 'y.png': -2.5}
    (tmp_path / 'b.csv').write_text('020 XP005_Z20X0Y0@1#1.jpg\n-01 dir/b.jpg\n')
    assert bags.read_positions_csv(tmp_path / 'b.csv') == {'XP005_Z20X0Y0@1#1.jpg': 20.0,
                                                          'b.jpg': -1.0}
    (tmp_path / 'c.csv').write_text('frame,z\n0,10\n1,11\n')
    assert bags.read_positions_csv(tmp_path / 'c.csv') == {'0': 10.0, '1': 11.0}


def test_convert_a_folder_with_a_bad_file(tmp_path):
    folder = tmp_path / 'stack'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for z in (30, 10, 20):
        cv2.imwrite(str(folder / f'pos{z}.png'), rng.integers(0, 255, (40, 60, 3), np.uint8))
    good = cv2.imencode('.jpg', np.zeros((40, 60, 3), np.uint8))[1].tobytes()
    (folder / 'pos40.jpg').write_bytes(good[:len(good) // 2])  # truncated
    assert bags.convert_main([str(folder), '-o', str(tmp_path / 'bag'), '--encoding',
                              'mono8']) == 0
    msgs = list(bags.read_messages(tmp_path / 'bag'))
    images = [bags.deserialize(m.data, bags.IMAGE_TYPE) for m in msgs
              if m.topic == '/camera/image_raw']
    states = [bags.deserialize(m.data, bags.STATE_TYPE) for m in msgs
              if m.topic == '/focus_motor/state']
    assert [s.position for s in states] == [10.0, 20.0, 30.0]
    assert [(i.width, i.height, i.encoding) for i in images] == [(60, 40, 'mono8')] * 3
    stamps = [bags.stamp_to_ns(i.header.stamp) for i in images]
    assert np.diff(stamps).tolist() == [100_000_000] * 2
    # each state is at rest before its frame
    assert all(bags.stamp_to_ns(s.stationary_since) < t for s, t in zip(states, stamps))


def test_convert_a_video_with_positions_csv(tmp_path):
    video = tmp_path / 'clip.avi'
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5.0, (64, 48))
    assert out.isOpened()
    for i in range(4):
        out.write(np.full((48, 64, 3), 40 * i, np.uint8))
    out.release()
    (tmp_path / 'pos.csv').write_text('frame,position\n0,1\n1,2\n2,3\n3,4\n')
    assert bags.convert_main([str(video), '-o', str(tmp_path / 'bag'), '--positions',
                              str(tmp_path / 'pos.csv')]) == 0
    info = yaml.safe_load((tmp_path / 'bag' / 'metadata.yaml').read_text())
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in info['rosbag2_bagfile_information']['topics_with_message_count']}
    assert counts == {'/camera/image_raw': 4, '/focus_motor/state': 4}
    assert bags.convert_main([str(tmp_path / 'nope.avi'), '-o', str(tmp_path / 'b2')]) == 1


def test_the_sweep_test_bag():
    """The shipped bag: 131 frames, positions -110..20, opens everywhere."""
    assert bags.open_status(SWEEP_BAG) == ''
    assert (SWEEP_BAG.parent / 'LICENSE').exists() and (SWEEP_BAG.parent / 'README.md').exists()
    assert sum(p.stat().st_size for p in SWEEP_BAG.iterdir()) < 4_000_000
    msgs = list(bags.read_messages(SWEEP_BAG))
    states = [bags.deserialize(m.data, bags.STATE_TYPE).position for m in msgs
              if m.topic == '/focus_motor/state']
    assert states == [float(z) for z in range(-110, 21)]
    from mcap.reader import make_reader
    with open(SWEEP_BAG / 'sweep.mcap', 'rb') as stream:
        assert make_reader(stream).get_summary().statistics.message_count == 262


def test_convert_orders_signed_file_names_by_their_number(tmp_path):
    # The shared defocus series are named -9.bmp .. 9.bmp: a scan in the order of focus.
    folder = tmp_path / 'series'
    folder.mkdir()
    rng = np.random.default_rng(1)
    for z in (3, -1, 0, -9, 9, -10, 10):
        cv2.imwrite(str(folder / f'{z}.bmp'), rng.integers(0, 255, (20, 30), np.uint8))
    assert [p.name for p in bags.list_images(folder)] == [
        '-10.bmp', '-9.bmp', '-1.bmp', '0.bmp', '3.bmp', '9.bmp', '10.bmp']
    assert bags.convert_main([str(folder), '-o', str(tmp_path / 'bag'),
                              '--position-pattern', r'^([-+]?\d+)$']) == 0
    states = [bags.deserialize(m.data, bags.STATE_TYPE)
              for m in bags.read_messages(tmp_path / 'bag') if m.topic == '/focus_motor/state']
    assert [s.position for s in states] == [-10.0, -9.0, -1.0, 0.0, 3.0, 9.0, 10.0]
    # A dash after a letter or digit is no sign: frame-003 is frame 3, after frame-002.
    assert sorted(['frame-003', 'frame-010', 'frame-002'], key=bags.natural_key) == [
        'frame-002', 'frame-003', 'frame-010']
