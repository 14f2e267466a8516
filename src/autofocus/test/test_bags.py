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

from autofocus import bags
from autofocus.image_codec import fill_image_msg

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
