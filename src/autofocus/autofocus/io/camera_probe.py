"""Grab a few frames from one IP camera: RTSP, HTTP snapshot or MJPEG over HTTP.

No ROS here; ``tools/fleet.py`` runs one :func:`grab` per camera in a worker.

Every failure raises :class:`ProbeError` with a reason a person can act on
(refused, timed out, needs credentials, not an image, too large). Limits on
what the network sends: a snapshot or an MJPEG part above ``max_bytes``, a
stream above ``max_stream_bytes`` in total, or a frame above
:data:`MAX_PIXELS` is refused before it is decoded; every socket operation has
a timeout and the whole grab a deadline.

RTSP goes through OpenCV's FFmpeg backend (open and read timeouts; TCP
transport, which survives NAT and packet loss better than UDP). HTTP uses the
standard library's urllib (Basic and Digest authentication); the MJPEG parser
is ours because no maintained library reads a multipart/x-mixed-replace
stream with a size limit and a deadline (OpenCV's FFmpeg reads MJPEG, but with
neither, nor with Digest authentication).
"""
from __future__ import annotations

import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import cv2
import numpy as np

MAX_BYTES = 8 * 1024 * 1024          # one snapshot or one MJPEG part
MAX_STREAM_BYTES = 64 * 1024 * 1024  # everything read from one MJPEG stream
MAX_PIXELS = 8192 * 8192             # a frame claiming more is not a camera's
MAX_HEADER_BYTES = 16 * 1024         # one MJPEG part's headers
_CHUNK = 64 * 1024


class ProbeError(RuntimeError):
    """The camera gave no usable frame; the message says why."""


@dataclass
class Credentials:
    user: str
    password: str


def redact(text: str, credentials: Credentials | None) -> str:
    """The text with the password (and user:password@ in URLs) removed."""
    if credentials is not None and credentials.password:
        text = text.replace(credentials.password, '***')
    return text


def _check_pixels(frame, source):
    if frame is None:
        raise ProbeError(f'{source}: not a decodable image')
    if frame.shape[0] * frame.shape[1] > MAX_PIXELS:
        raise ProbeError(f'{source}: frame of {frame.shape[1]}x{frame.shape[0]} px is larger '
                         'than any camera frame')
    return frame


def decode_image(data: bytes, source: str = 'image') -> np.ndarray:
    """A BGR frame from JPEG/PNG bytes; the header's size is checked before decoding."""
    if not data:
        raise ProbeError(f'{source}: empty image')
    if data[:2] == b'\xff\xd8' and b'\xff\xd9' not in data[-64:].rstrip(b'\x00'):
        raise ProbeError(f'{source}: truncated JPEG ({len(data)} bytes, no end marker)')
    buffer = np.frombuffer(data, np.uint8)
    # The frame size from the header alone (no pixel decoded) guards against a
    # small file that claims a gigapixel frame.
    header = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if header is None:
        raise ProbeError(f'{source}: {len(data)} bytes that are not a JPEG or PNG image '
                         f'(starts {data[:8]!r})')
    if header.shape[0] * header.shape[1] * 64 > MAX_PIXELS:
        raise ProbeError(f'{source}: image larger than any camera frame')
    return _check_pixels(cv2.imdecode(buffer, cv2.IMREAD_COLOR), source)


def _opener(url: str, credentials: Credentials | None, insecure: bool = False):
    handlers = []
    if insecure:  # cameras' certificates are self-signed; the user chose to accept that
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    if credentials is not None:
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, url, credentials.user, credentials.password)
        handlers += [urllib.request.HTTPBasicAuthHandler(manager),
                     urllib.request.HTTPDigestAuthHandler(manager)]
    return urllib.request.build_opener(*handlers)


def _http_error(url: str, error: Exception, credentials) -> ProbeError:
    if isinstance(error, urllib.error.HTTPError):
        if error.code == 401:
            return ProbeError('HTTP 401: needs credentials' if credentials is None else
                              'HTTP 401: the credentials were refused')
        return ProbeError(f'HTTP {error.code} {error.reason}')
    reason = getattr(error, 'reason', error)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ProbeError('HTTPS certificate not trusted (self-signed?); --insecure skips '
                          'the check')
    if isinstance(reason, (socket.timeout, TimeoutError)) or 'timed out' in str(reason):
        return ProbeError('timed out (no answer)')
    if isinstance(reason, ConnectionRefusedError):
        return ProbeError('connection refused (nothing listens on that port)')
    return ProbeError(redact(f'{type(reason).__name__}: {reason}', credentials))


def _read_limited(stream, limit: int, deadline: float, what: str) -> bytes:
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise ProbeError(f'timed out reading the {what}')
        # read1: one recv at most, so a server dripping bytes meets the deadline check.
        chunk = stream.read1(min(_CHUNK, limit + 1 - size)) if hasattr(stream, 'read1') \
            else stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b''.join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ProbeError(f'{what} larger than {limit} bytes (not a camera frame?)')


def _content_length(response) -> int | None:
    value = response.headers.get('Content-Length')
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def grab_http(url: str, count: int, timeout: float, credentials=None, interval: float = 0.2,
              max_bytes: int = MAX_BYTES, max_stream_bytes: int = MAX_STREAM_BYTES,
              insecure: bool = False):
    """(kind, frames): 'snapshot' (one request per frame) or 'mjpeg' (parts of one stream)."""
    opener = _opener(url, credentials, insecure)
    deadline = time.monotonic() + timeout
    frames, kind = [], 'snapshot'
    while len(frames) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if frames:
                break
            raise ProbeError('timed out (no frame)')
        try:
            response = opener.open(url, timeout=remaining)
        except (urllib.error.URLError, OSError, ValueError) as error:
            if frames:
                break  # a camera that served a frame then stopped: judge what we have
            raise _http_error(url, error, credentials) from None
        with response:
            ctype = response.headers.get('Content-Type', '').lower()
            length = _content_length(response)
            if ctype.startswith('multipart/'):
                return 'mjpeg', _mjpeg_frames(response, ctype, count, deadline, max_bytes,
                                              max_stream_bytes)
            if length is not None and length > max_bytes:
                raise ProbeError(f'snapshot of {length} bytes is larger than {max_bytes}')
            try:
                data = _read_limited(response, max_bytes, deadline, 'snapshot')
            except (OSError, socket.timeout):
                raise ProbeError('timed out reading the snapshot') from None
        frames.append(decode_image(data, f'snapshot ({ctype or "no content type"})'))
        if len(frames) < count:
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return kind, frames


def _mjpeg_frames(response, ctype, count, deadline, max_bytes, max_stream_bytes):
    """JPEG parts of a multipart/x-mixed-replace stream, by Content-Length or end marker."""
    boundary = None
    for param in ctype.split(';')[1:]:
        key, _, value = param.strip().partition('=')
        if key.strip() == 'boundary':
            boundary = value.strip().strip('"')
    if not boundary:
        raise ProbeError('MJPEG stream without a boundary in its Content-Type')
    marker = b'--' + boundary.lstrip('-').encode('latin-1')
    buffer, total, frames = b'', 0, []

    def fill():
        nonlocal buffer, total
        if time.monotonic() > deadline:
            raise ProbeError(f'timed out after {len(frames)} MJPEG frame(s)')
        try:
            chunk = response.read1(_CHUNK) if hasattr(response, 'read1') \
                else response.read(_CHUNK)
        except (OSError, socket.timeout):
            raise ProbeError(f'timed out after {len(frames)} MJPEG frame(s)') from None
        if not chunk:
            raise ProbeError(f'MJPEG stream ended after {len(frames)} frame(s)')
        total += len(chunk)
        if total > max_stream_bytes:
            raise ProbeError(f'MJPEG stream sent more than {max_stream_bytes} bytes for '
                             f'{len(frames)} frame(s)')
        buffer += chunk

    try:
        while len(frames) < count:
            start = buffer.find(marker)
            while start < 0 or buffer.find(b'\r\n\r\n', start) < 0:
                if len(buffer) > MAX_HEADER_BYTES + len(marker) and start < 0:
                    buffer = buffer[-len(marker):]  # junk before the first boundary
                if start >= 0 and len(buffer) - start > MAX_HEADER_BYTES:
                    raise ProbeError('MJPEG part headers longer than '
                                     f'{MAX_HEADER_BYTES} bytes')
                fill()
                start = buffer.find(marker)
            head_end = buffer.find(b'\r\n\r\n', start) + 4
            headers = buffer[start + len(marker):head_end].decode('latin-1').lower()
            length = None
            for line in headers.split('\r\n'):
                if line.startswith('content-length:'):
                    try:
                        length = int(line.split(':', 1)[1])
                    except ValueError:
                        raise ProbeError('MJPEG part with a bad Content-Length') from None
            if length is not None and length > max_bytes:
                raise ProbeError(f'MJPEG part of {length} bytes is larger than {max_bytes}')
            body_start = head_end
            if length is not None:
                while len(buffer) < body_start + length:
                    fill()
                body = buffer[body_start:body_start + length]
                buffer = buffer[body_start + length:]
            else:
                end = buffer.find(marker, body_start)
                while end < 0:
                    if len(buffer) - body_start > max_bytes:
                        raise ProbeError(f'MJPEG part larger than {max_bytes} bytes')
                    fill()
                    end = buffer.find(marker, body_start)
                body = buffer[body_start:end].rstrip(b'\r\n')
                buffer = buffer[end:]
            frames.append(decode_image(body, 'MJPEG part'))
    except ProbeError:
        if frames:
            return frames
        raise
    return frames


def rtsp_url_with_credentials(url: str, credentials: Credentials | None) -> str:
    if credentials is None:
        return url
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.quote(credentials.user, safe='')
    password = urllib.parse.quote(credentials.password, safe='')
    return urllib.parse.urlunsplit(parts._replace(
        netloc=f'{user}:{password}@{parts.hostname}' + (f':{parts.port}' if parts.port else '')))


def grab_rtsp(url: str, count: int, timeout: float, credentials=None):
    """Frames read from an RTSP stream through OpenCV's FFmpeg backend."""
    # TCP interleaved transport; OpenCV reads this once, at its first FFmpeg capture.
    os.environ.setdefault('OPENCV_FFMPEG_CAPTURE_OPTIONS', 'rtsp_transport;tcp')
    # FFmpeg's own log lines may name the URL; our ProbeError says what went wrong.
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')
    milliseconds = int(max(timeout, 0.1) * 1000)
    capture = cv2.VideoCapture(rtsp_url_with_credentials(url, credentials), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds,
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds])
    try:
        if not capture.isOpened():
            raise ProbeError(_rtsp_reason(url, timeout, credentials))
        width = capture.get(cv2.CAP_PROP_FRAME_WIDTH)
        height = capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if width * height > MAX_PIXELS:
            raise ProbeError(f'stream of {width:.0f}x{height:.0f} px is larger than any camera')
        deadline = time.monotonic() + timeout
        frames = []
        while len(frames) < count and time.monotonic() < deadline:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            frames.append(_check_pixels(frame, 'RTSP frame'))
        if not frames:
            raise ProbeError('RTSP stream opened but sent no decodable frame')
        return frames
    finally:
        capture.release()


def _rtsp_reason(url: str, timeout: float, credentials) -> str:
    """Why OpenCV could not open the stream, in words: ask the server ourselves.

    One DESCRIBE without credentials (so none is ever sent by us in the clear), its
    status line read with a size limit: 401 means credentials, 404 a wrong path.
    """
    parts = urllib.parse.urlsplit(url)
    request = (f'DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n'
               'User-Agent: focus_fleet\r\n\r\n').encode('latin-1', 'replace')
    try:
        with socket.create_connection((parts.hostname, parts.port or 554),
                                      timeout=min(timeout, 5.0)) as connection:
            connection.sendall(request)
            answer = connection.recv(4096)
    except ConnectionRefusedError:
        return 'connection refused (nothing listens on that port)'
    except (socket.timeout, TimeoutError):
        return 'timed out (no answer)'
    except OSError as error:
        return f'cannot connect: {error.strerror or error}'
    status = answer.split(b'\r\n', 1)[0].decode('latin-1', 'replace')
    if not status.startswith('RTSP/'):
        return f'not an RTSP server (it answered {answer[:24]!r})' if answer else \
            'the server closed the connection without an answer'
    code = status.split(' ', 2)[1] if status.count(' ') >= 1 else ''
    if code == '401':
        return ('RTSP 401: needs credentials' if credentials is None else
                'RTSP 401: the credentials were refused')
    if code == '404':
        return 'RTSP 404: no stream at that path (check the URL template)'
    if code == '200':
        return 'RTSP server describes the stream but OpenCV/FFmpeg could not open it'
    return f'RTSP server answered {status[:80]!r}'


def grab(url: str, count: int = 3, timeout: float = 10.0, credentials=None,
         interval: float = 0.2, insecure: bool = False):
    """(kind, frames) of one camera URL: kind is 'rtsp', 'snapshot' or 'mjpeg'."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ('rtsp', 'rtsps'):
        return 'rtsp', grab_rtsp(url, count, timeout, credentials)
    if scheme in ('http', 'https'):
        return grab_http(url, count, timeout, credentials, interval, insecure=insecure)
    raise ProbeError(f"unsupported scheme '{scheme}' (rtsp, http, https)")
