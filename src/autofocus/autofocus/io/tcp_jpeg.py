"""Frames from a TCP stream of length-prefixed JPEGs (the picamera network recipe).

    camera_source:=tcp://192.168.1.20:8000          we connect to the sender
    camera_source:=tcp-listen://0.0.0.0:8000        we listen; the Pi connects to us

Each frame is a 4-byte little-endian unsigned length, then that many bytes of
JPEG; a length of 0 ends the stream. This is the wire format of the classic
picamera recipe (`connection.write(struct.pack('<L', len)); connection.write(jpeg)`),
which OpenCV's FFmpeg backend cannot read, hence this small reader of our own.

Nothing from the network is trusted: a frame over `max_frame_bytes` is skipped
unread (counted `oversized`), a length beyond anything a camera sends means the
stream is out of step, so the connection is dropped (`bad_length`), a JPEG cut
short or that does not decode is dropped (`truncated`, `undecodable`). None of
these raises anything but SourceError, after which the camera node reconnects
with backoff. No ROS here.
"""
import socket
import struct

import cv2
import numpy as np

from autofocus.io.capture import SourceError
from autofocus.io.image_codec import jpeg_truncated

LENGTH = struct.Struct('<L')
SCHEMES = ('tcp://', 'tcp-listen://')
# Past this many times the frame limit a length is not a big frame but garbage:
# skipping it would stall on bytes that will never come.
BAD_LENGTH_FACTOR = 4
_CHUNK = 1 << 16
DROP_REASONS = ('oversized', 'bad_length', 'truncated', 'undecodable')


def is_tcp_source(source: str) -> bool:
    return source.strip().startswith(SCHEMES)


def parse_address(source: str) -> tuple:
    """'tcp://host:port' -> ('connect', host, port); 'tcp-listen://...' -> ('listen', ...)."""
    source = source.strip()
    mode = 'listen' if source.startswith('tcp-listen://') else 'connect'
    rest = source.split('://', 1)[1].rstrip('/')
    host, separator, port = rest.rpartition(':')
    host = host.strip('[]')
    # Port 0 (listen on any free port) is for tests; `address` then says which.
    lowest = 0 if mode == 'listen' else 1
    if not separator or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise ValueError(f"camera source '{source}': expected tcp://HOST:PORT or "
                         'tcp-listen://ADDRESS:PORT, e.g. tcp-listen://0.0.0.0:8000')
    return mode, host, int(port)


class TcpJpegSource:
    """Reads one frame per read(); SourceError when the link fails or the sender ends it."""

    kind = 'stream'

    def __init__(self, source: str, max_frame_bytes: int = 8_000_000,
                 timeout: float = 5.0):
        self.source = source
        self.mode, self.host, self.port = parse_address(source)
        if max_frame_bytes < 1:
            raise ValueError(f'max_frame_bytes must be positive, got {max_frame_bytes}')
        self.max_frame_bytes = max_frame_bytes
        self.timeout = timeout
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.frames = 0
        self._listener = None
        self._connection = None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    def native_fps(self) -> float:
        return 0.0  # the sender paces the stream

    def open(self):
        where = f'{self.host}:{self.port}'
        if self.mode == 'connect':
            try:
                connection = socket.create_connection((self.host, self.port), self.timeout)
            except OSError as error:
                raise SourceError(f'cannot connect to the JPEG stream at {where}: '
                                  f'{error.strerror or error}') from None
        else:
            self.listen()
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                raise SourceError(f'no JPEG stream sender has connected to {where} '
                                  f'within {self.timeout:g} s') from None
            except OSError as error:
                raise SourceError(f'accepting on {where} failed: {error}') from None
        connection.settimeout(self.timeout)
        self._connection = connection

    def listen(self):
        """Bind the listening socket (tcp-listen://) if not yet bound; kept until release()."""
        if self._listener is None:
            try:
                listener = socket.create_server((self.host, self.port))
            except OSError as error:
                raise SourceError(f'cannot listen on {self.host}:{self.port} for the JPEG '
                                  f'stream: {error.strerror or error}') from None
            listener.settimeout(self.timeout)
            self._listener = listener
            self.port = listener.getsockname()[1]

    def read(self):
        if self._connection is None:
            self.open()
        while True:
            frame = self._read_frame()
            if frame is not None:
                self.frames += 1
                return frame

    def _read_frame(self):
        """One frame, or None for a frame dropped (and counted) without losing the stream."""
        header = self._receive(LENGTH.size, 'a frame length')
        (length,) = LENGTH.unpack(header)
        if length == 0:
            self._close_connection()
            raise SourceError(f"the sender ended the JPEG stream '{self.source}' (length 0)")
        if length > BAD_LENGTH_FACTOR * self.max_frame_bytes:
            self.dropped['bad_length'] += 1
            self._close_connection()
            raise SourceError(f'frame length {length} bytes in {self.source} is beyond any '
                              'JPEG frame: the stream is out of step; reconnecting')
        if length > self.max_frame_bytes:
            self._skip(length)
            self.dropped['oversized'] += 1
            return None
        data = self._receive(length, f'a {length}-byte JPEG', count_truncated=True)
        if data[:2] != b'\xff\xd8' or jpeg_truncated(data):
            self.dropped['truncated' if data[:2] == b'\xff\xd8' else 'undecodable'] += 1
            return None
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            self.dropped['undecodable'] += 1
            return None
        return frame

    def _receive(self, size: int, what: str, count_truncated: bool = False) -> bytes:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            try:
                n = self._connection.recv_into(view[got:], size - got)
            except socket.timeout:
                n = -1
            except OSError as error:
                self._lost(f'failed: {error}', count_truncated and got)
            if n == -1:
                self._lost(f'sent nothing for {self.timeout:g} s while we waited for {what}',
                           count_truncated and got)
            if n == 0:
                self._lost(f'closed in the middle of {what}' if got or count_truncated
                           else 'closed without ending the stream', count_truncated)
            got += n
        return bytes(buffer)

    def _skip(self, size: int):
        left = size
        while left:
            try:
                n = len(self._connection.recv(min(left, _CHUNK)))
            except (socket.timeout, OSError):
                n = 0
            if n == 0:
                self._lost('closed in the middle of an oversized frame', False)
            left -= n

    def _lost(self, why: str, truncated) -> None:
        if truncated:
            self.dropped['truncated'] += 1
        self._close_connection()
        raise SourceError(f"JPEG stream '{self.source}' {why}")

    def _close_connection(self):
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def release(self):
        self._close_connection()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
