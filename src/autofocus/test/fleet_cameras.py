"""Loopback cameras for the fleet tests: HTTP snapshot and MJPEG servers of our own, a
real RTSP server (GStreamer's, fleet_rtsp_server.py), and cameras that refuse, hang,
send garbage, send too much, or need credentials.
"""
import base64
import pathlib
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RTSP_SERVER = pathlib.Path(__file__).parent / 'fleet_rtsp_server.py'
SYSTEM_PYTHON = '/usr/bin/python3'   # python3-gi lives there, not in the venv


class HttpCameras:
    """One ThreadingHTTPServer on 127.0.0.1 with a camera per path.

    /snap          the bytes in images['snap'] (a snapshot camera)
    /mjpeg         images['mjpeg'] as multipart/x-mixed-replace parts, until the client leaves
    /mjpeg-nolen   the same without Content-Length in the parts
    /auth/snap     images['snap'] behind Basic authentication (user, password)
    /garbage       200 image/jpeg of bytes that are no image
    /endless       200 image/jpeg without a length that never ends
    /drip          headers one line at a time, forever (outlasts every socket timeout)
    /slow          images['snap'] after `slow_seconds` (counts connections open at once)
    """

    def __init__(self, images, user='cam', password='s3cret', slow_seconds=0.5):
        self.images, self.user, self.password = images, user, password
        self.slow_seconds = slow_seconds
        self.open_now = self.open_max = 0
        self.requests = []
        self._lock = threading.Lock()
        cameras = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.0'

            def log_message(self, *args):
                pass

            def do_GET(self):
                cameras.requests.append(self.path)
                path = self.path.split('?', 1)[0]
                route = getattr(cameras, '_' + path.strip('/').replace('/', '_')
                                .replace('-', '_'), None)
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return f'http://127.0.0.1:{self.port}{path}'

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(handler, data, ctype='image/jpeg'):
        handler.send_response(200)
        handler.send_header('Content-Type', ctype)
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _snap(self, handler):
        self._send(handler, self.images['snap'])

    def _auth_snap(self, handler):
        expected = 'Basic ' + base64.b64encode(
            f'{self.user}:{self.password}'.encode()).decode()
        if handler.headers.get('Authorization') != expected:
            handler.send_response(401)
            handler.send_header('WWW-Authenticate', 'Basic realm="camera"')
            handler.send_header('Content-Length', '0')
            handler.end_headers()
            return
        self._send(handler, self.images['snap'])

    def _mjpeg_stream(self, handler, with_length):
        handler.send_response(200)
        handler.send_header('Content-Type', 'multipart/x-mixed-replace; boundary=frame')
        handler.end_headers()
        for _ in range(500):
            data = self.images['mjpeg']
            head = b'--frame\r\nContent-Type: image/jpeg\r\n'
            if with_length:
                head += f'Content-Length: {len(data)}\r\n'.encode()
            handler.wfile.write(head + b'\r\n' + data + b'\r\n')
            handler.wfile.flush()
            time.sleep(0.05)

    def _mjpeg(self, handler):
        self._mjpeg_stream(handler, True)

    def _mjpeg_nolen(self, handler):
        self._mjpeg_stream(handler, False)

    def _garbage(self, handler):
        self._send(handler, b'<html>this is the login page, not a picture</html>' * 20)

    def _endless(self, handler):
        handler.send_response(200)
        handler.send_header('Content-Type', 'image/jpeg')
        handler.end_headers()
        block = b'\xff\xd8' + b'\x00' * 65534
        for _ in range(1000):   # 64 MB at most, far beyond the probe's limit
            handler.wfile.write(block)

    def _drip(self, handler):
        """A status line, then one header line every half second: never a whole answer,
        yet never silent long enough for a socket timeout."""
        handler.wfile.write(b'HTTP/1.0 200 OK\r\n')
        for number in range(240):
            handler.wfile.flush()
            time.sleep(0.5)
            handler.wfile.write(f'X-Drip-{number}: a\r\n'.encode())

    def _slow(self, handler):
        with self._lock:
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)
        try:
            time.sleep(self.slow_seconds)
            self._send(handler, self.images['snap'])
        finally:
            with self._lock:
                self.open_now -= 1


class SilentCamera:
    """Accepts TCP connections and never says a word (a hung camera)."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(('127.0.0.1', 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.connections = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


def closed_port():
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class RtspCamera:
    """GStreamer's RTSP server on 127.0.0.1 serving one image as an MJPEG stream."""

    def __init__(self, image, path='/stream', env=None):
        self.port = closed_port()
        self.path = path
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SERVER), str(self.port), path, str(image)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        if line.strip() != 'READY':
            self.close()
            raise RuntimeError(f'RTSP server did not start: {line!r} '
                               f'{self.process.stderr.read()[-2000:]}')

    @property
    def url(self):
        return f'rtsp://127.0.0.1:{self.port}{self.path}'

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
