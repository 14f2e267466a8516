"""The TCP JPEG stream source on real loopback sockets, against a sender written the way
the picamera network recipe writes it (struct.pack('<L', length) + JPEG bytes, flush)."""
import socket
import struct
import threading

import cv2
import numpy as np
import pytest
from ros_helpers import textured_frame

from autofocus.io.capture import SourceError
from autofocus.io.tcp_jpeg import TcpJpegSource, parse_address


def jpeg(seed, width=64, height=48):
    ok, data = cv2.imencode('.jpg', textured_frame(width, height, seed))
    assert ok
    return data.tobytes()


def recipe_send(connection, frames):
    """The picamera recipe's loop: length, flush, then the JPEG; length 0 at the end."""
    for item in frames:
        if isinstance(item, tuple):  # (claimed length, bytes actually sent)
            length, data = item
        else:
            length, data = len(item), item
        connection.write(struct.pack('<L', length))
        connection.flush()
        connection.write(data)
        connection.flush()


def pi_client(port, frames, end=True):
    """The Pi connects to the listening PC (the seed's layout)."""
    client_socket = socket.socket()
    client_socket.connect(('127.0.0.1', port))
    connection = client_socket.makefile('wb')
    try:
        recipe_send(connection, frames)
        if end:
            connection.write(struct.pack('<L', 0))
    finally:
        connection.close()
        client_socket.close()


def started(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def listening_source(**kwargs):
    source = TcpJpegSource('tcp-listen://127.0.0.1:0', timeout=10.0, **kwargs)
    source.listen()  # bound now, so the sender knows the port
    return source


def test_good_frames_bad_frames_dropped_and_counted_then_end_of_stream():
    good = [jpeg(1), jpeg(2)]
    truncated = jpeg(3)[:-200]
    oversized = jpeg(4, 400, 300)
    source = listening_source(max_frame_bytes=len(oversized) - 1)
    assert len(good[0]) < len(oversized) - 1
    sender = started(pi_client, source.port,
                     [good[0], oversized, truncated, b'not a jpeg at all', good[1]])
    try:
        first = source.read()
        second = source.read()
        with pytest.raises(SourceError, match=r'ended the JPEG stream .*length 0'):
            source.read()
    finally:
        source.release()
        sender.join(10.0)
    expected = [cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) for data in good]
    assert np.array_equal(first, expected[0]) and np.array_equal(second, expected[1])
    assert source.dropped == {'oversized': 1, 'bad_length': 0, 'truncated': 1,
                              'undecodable': 1}
    assert source.frames == 2


def test_sender_gone_mid_frame_then_a_new_sender_is_accepted():
    source = listening_source()
    frame = jpeg(5)
    # Claims a whole frame, sends half, hangs up without the 0 length.
    first = started(pi_client, source.port, [frame, (len(frame), frame[:len(frame) // 2])],
                    False)
    try:
        assert source.read().shape == (48, 64, 3)
        with pytest.raises(SourceError, match='closed in the middle of a'):
            source.read()
        first.join(10.0)
        assert source.dropped['truncated'] == 1 and not source.is_open
        second = started(pi_client, source.port, [jpeg(6)])
        assert source.read().shape == (48, 64, 3)  # accepted again on the same port
        second.join(10.0)
    finally:
        source.release()


def test_bad_length_drops_the_connection_and_connect_mode_reconnects():
    """The PC connects to a Pi that serves the stream (tcp://)."""
    server = socket.create_server(('127.0.0.1', 0))
    port = server.getsockname()[1]
    accepted = []

    def serve():
        for frames in ([(0xFFFFFFF0, b'\x00' * 16)], [jpeg(7)]):
            connection, _ = server.accept()
            accepted.append(connection)
            with connection.makefile('wb') as stream:
                recipe_send(stream, frames)

    thread = started(serve)
    source = TcpJpegSource(f'tcp://127.0.0.1:{port}', max_frame_bytes=1_000_000,
                           timeout=10.0)
    try:
        with pytest.raises(SourceError, match='out of step'):
            source.read()
        assert source.dropped['bad_length'] == 1 and not source.is_open
        assert source.read().shape == (48, 64, 3)  # a fresh connection
    finally:
        source.release()
        thread.join(10.0)
        for connection in accepted:
            connection.close()
        server.close()


def test_nobody_there_is_a_source_error_naming_the_address():
    with socket.create_server(('127.0.0.1', 0)) as probe:
        port = probe.getsockname()[1]
    source = TcpJpegSource(f'tcp://127.0.0.1:{port}', timeout=2.0)
    with pytest.raises(SourceError, match=f'cannot connect .*127.0.0.1:{port}'):
        source.read()


@pytest.mark.parametrize('bad', ['tcp://nohost', 'tcp://host:http', 'tcp://:8000',
                                 'tcp://host:0', 'tcp-listen://0.0.0.0:70000'])
def test_malformed_addresses_say_the_expected_form(bad):
    with pytest.raises(ValueError, match='tcp://HOST:PORT'):
        parse_address(bad)


def test_camera_node_publishes_a_pi_stream_and_counts_dropped_frames(ros, node_process):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image
    from ros_helpers import wait_for

    from autofocus.nodes.node_tools import IMAGE_QOS

    with socket.create_server(('127.0.0.1', 0)) as probe:
        port = probe.getsockname()[1]
    images = ros.collect(Image, 'camera/image_raw', IMAGE_QOS)
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics', 50)
    camera = node_process('autofocus', 'camera', node_name='camera', params={
        'source': f'tcp-listen://127.0.0.1:{port}', 'max_frame_bytes': 20000})
    client_socket = wait_for(lambda: _connect(port), 30.0)  # once the node listens
    assert client_socket, camera.log()
    connection = client_socket.makefile('wb')
    big = jpeg(8, 640, 480)
    assert len(big) > 20000
    try:
        recipe_send(connection, [jpeg(9)[:-300], big])  # both dropped
        assert wait_for(lambda: _dropped(diagnostics) == {'oversized': '1', 'truncated': '1'},
                        30.0), camera.log()
        while not images and camera.alive():  # a live stream: frames until someone sees one
            recipe_send(connection, [jpeg(10)])
            wait_for(lambda: images, 0.2)
        assert images and (images[-1].width, images[-1].height) == (64, 48), camera.log()
    finally:
        connection.close()
        client_socket.close()
    assert camera.alive()


def _dropped(diagnostics):
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.endswith(': camera'):
                values = {kv.key: kv.value for kv in status.values}
                return {key[len('dropped_'):]: value for key, value in values.items()
                        if key.startswith('dropped_') and value != '0'}
    return None


def _connect(port):
    try:
        return socket.create_connection(('127.0.0.1', port), timeout=5.0)
    except OSError:
        return None
