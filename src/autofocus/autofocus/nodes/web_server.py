"""The web node's HTTP side: an aiohttp app on its own asyncio loop, in its own thread.

No rclpy here: the app talks to a *backend* (the web node) through a few plain methods,
so the security rules and the request validation are read and tested on their own.

    GET  /                   the page (static files, no data in them)
    GET  /stream.mjpg        the live image, MJPEG (multipart/x-mixed-replace)
    GET  /api/state?since=N  JSON: camera, motor, ROI, goal, sharpness samples after N
    POST /api/roi            {"x", "y", "width", "height"}: the sharpness node's ROI
    POST /api/focus          {"strategy", "range_min", "range_max"}: a focus goal
    POST /api/cancel         {}: cancel the running goal
    POST /api/jog            {"delta"}: a relative lens move

Safety (the page can be opened from a phone on the network):
- every POST needs the token in the ``X-Autofocus-Token`` header (a cookie or a query
  parameter is not enough: a page on another site could make the browser send those),
  a JSON body, and no ``Origin`` other than this server's own: a cross-site page can
  neither read the token nor pass the origin check (CSRF);
- viewing (state, stream) needs the token as well, in the header or as ``?token=`` (an
  <img> cannot set headers), unless ``view_without_token`` allows read-only viewing;
- bound to a loopback address, only loopback names are accepted in ``Host`` (a DNS
  rebinding page would send its own name);
- bodies are limited to a few KiB and every field is checked (type, finite, range)
  before anything reaches the motor; a bad request gets a 4xx and a reason.

The image: frames are JPEG-encoded only while a page watches, at most ``max_fps`` a
second and ``max_width`` wide, once for all viewers; each viewer gets the newest JPEG
when its connection has taken the previous one, so a slow viewer skips frames instead
of queueing them, and a viewer that takes nothing for ``write_timeout`` is dropped.
"""
import asyncio
import hmac
import ipaddress
import json
import math
import os
import threading
from dataclasses import dataclass

from aiohttp import web

TOKEN_HEADER = 'X-Autofocus-Token'
MAX_BODY_BYTES = 4096
# The page may not be framed by another site (clickjacking its buttons), runs only its own
# script, and never sends its URL (with the token) anywhere as a referrer.
SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
}
STATIC_FILES = {'app.js': 'text/javascript', 'app.css': 'text/css'}
LOOPBACK_NAMES = {'localhost', 'localhost.', 'ip6-localhost'}


@dataclass(frozen=True)
class StreamSettings:
    max_fps: float = 10.0
    max_width: int = 640
    jpeg_quality: int = 70
    max_viewers: int = 4
    write_timeout: float = 10.0


class BadRequest(Exception):
    """A request field that is missing, of the wrong type or out of range (-> 400)."""


def is_loopback(host: str) -> bool:
    host = host.strip('[]')
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def number(body: dict, name: str, low: float, high: float) -> float:
    """body[name] as a finite float in [low, high]; BadRequest naming the field otherwise."""
    if name not in body:
        raise BadRequest(f"missing field '{name}'")
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"field '{name}' must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise BadRequest(f"field '{name}' must be finite, got {value}")
    if not low <= value <= high:
        raise BadRequest(f"field '{name}' = {value:g} is outside [{low:g}, {high:g}]")
    return value


def only_fields(body: dict, allowed: set):
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed)) or 'none'}")


def error(status: int, reason: str):
    return web.json_response({'ok': False, 'reason': reason}, status=status)


class WebServer:
    """Serve the page and the API on host:port from a thread with its own event loop."""

    def __init__(self, backend, host: str, port: int, token: str, static_dir: str,
                 stream: StreamSettings, view_without_token: bool = False):
        self.backend = backend
        self.host = host
        self.port = port
        self.token = token
        self.static_dir = static_dir
        self.stream = stream
        self.view_without_token = view_without_token
        self.loopback_only = is_loopback(host)
        self.viewers = 0
        self.frames_encoded = 0
        self.frames_malformed = 0
        self._jpeg = (-1, b'')
        self._loop = None
        self._runner = None
        self._thread = None
        self._new_jpeg = None
        self._encoder = None
        self._stopping = False

    # -- life cycle ------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> int:
        """Start serving; return the bound port (useful with port 0). Raises OSError."""
        started = threading.Event()
        failure = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start_site())
            except Exception as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name='web-server', daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise OSError(f'web server did not start in {timeout:g} s')
        if failure:
            raise OSError(f'cannot serve on {self.host}:{self.port}: {failure[0]}')
        return self.port

    def stop(self, timeout: float = 5.0):
        if self._loop is None or not self._thread.is_alive():
            return

        def stop_soon():
            self._stopping = True
            if self._new_jpeg is not None:
                self._new_jpeg.notify_all_soon()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop_soon)
        self._thread.join(timeout)

    async def _start_site(self):
        app = web.Application(client_max_size=MAX_BODY_BYTES,
                              middlewares=[self._guard])
        app.router.add_get('/', self._index)
        app.router.add_get('/stream.mjpg', self._stream)
        app.router.add_get('/api/state', self._state)
        app.router.add_post('/api/roi', self._roi)
        app.router.add_post('/api/focus', self._focus)
        app.router.add_post('/api/cancel', self._cancel)
        app.router.add_post('/api/jog', self._jog)
        app.router.add_get('/static/{name}', self._static)
        app.router.add_get('/favicon.ico', lambda request: web.Response(status=204))
        self._new_jpeg = _Signal()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    # -- security --------------------------------------------------------------------
    def _token_ok(self, given) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request, handler):
        if self.loopback_only and not is_loopback(request.url.host or ''):
            return error(403, f"host '{request.host}' refused: this server is bound to "
                              f'{self.host} and answers only to loopback names (set the '
                              "node's host parameter to serve other names)")
        if request.method == 'POST':
            origin = request.headers.get('Origin')
            if origin is not None and origin != f'{request.scheme}://{request.host}':
                return error(403, f"cross-origin request from '{origin}' refused")
            if request.headers.get('Sec-Fetch-Site', 'same-origin') not in ('same-origin',
                                                                            'none'):
                return error(403, 'cross-site request refused')
            if not self._token_ok(request.headers.get(TOKEN_HEADER)):
                return error(403, f'control requests need the token in the {TOKEN_HEADER} '
                                  'header (printed by the web node at start-up)')
            if request.content_type != 'application/json':
                return error(415, 'send the request body as application/json')
        elif request.path.startswith(('/api/', '/stream')) and not self.view_without_token:
            given = request.headers.get(TOKEN_HEADER) or request.query.get('token')
            if not self._token_ok(given):
                return error(403, 'viewing needs the token (open the URL the web node '
                                  'printed at start-up, with ?token=...)')
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @staticmethod
    async def _body(request) -> dict:
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            raise
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f'body is not valid JSON: {exc}') from None
        if not isinstance(body, dict):
            raise BadRequest('body must be a JSON object')
        return body

    async def _control(self, request, handler):
        """Parse the body; handler(body) validates it and returns a coroutine -> (ok, reason).

        BadRequest (a malformed or out-of-range field, from here or the backend) -> 400;
        a request the current state refuses (a goal running, no motor) -> 409.
        """
        try:
            body = await self._body(request)
            ok, reason = await handler(body)
        except BadRequest as exc:
            return error(400, str(exc))
        if ok:
            return web.json_response({'ok': True, 'reason': reason})
        return error(409, reason)

    # -- handlers ------------------------------------------------------------------------
    async def _index(self, request):
        return web.FileResponse(os.path.join(self.static_dir, 'index.html'),
                                headers={'Cache-Control': 'no-store'})

    async def _static(self, request):
        # A fixed list of the page's files, not a folder: nothing else can be asked for
        # (and colcon's symlink-install links need no symlink-following static router).
        name = request.match_info['name']
        if name not in STATIC_FILES:
            return error(404, f'no file {name!r}')
        return web.FileResponse(os.path.join(self.static_dir, name),
                                headers={'Content-Type': STATIC_FILES[name],
                                         'Cache-Control': 'no-cache'})

    async def _state(self, request):
        try:
            since = int(request.query.get('since', '-1'))
        except ValueError:
            return error(400, "query 'since' must be an integer")
        state = self.backend.snapshot(since)
        state['viewers'] = self.viewers
        state['frames_encoded'] = self.frames_encoded
        return web.json_response(state, dumps=lambda o: json.dumps(o, allow_nan=False))

    async def _roi(self, request):
        def check(body):
            only_fields(body, {'x', 'y', 'width', 'height'})
            x, y = number(body, 'x', 0.0, 1.0), number(body, 'y', 0.0, 1.0)
            width, height = number(body, 'width', 0.0, 1.0), number(body, 'height', 0.0, 1.0)
            return self.backend.set_roi(x, y, width, height)
        return await self._control(request, check)

    async def _focus(self, request):
        def check(body):
            only_fields(body, {'strategy', 'range_min', 'range_max'})
            strategy = body.get('strategy', '')
            if not isinstance(strategy, str) or len(strategy) > 32:
                raise BadRequest("field 'strategy' must be a short string")
            range_min = number(body, 'range_min', -1e9, 1e9) if 'range_min' in body else 0.0
            range_max = number(body, 'range_max', -1e9, 1e9) if 'range_max' in body else 0.0
            return self.backend.focus(strategy, range_min, range_max)
        return await self._control(request, check)

    async def _cancel(self, request):
        def check(body):
            only_fields(body, set())
            return self.backend.cancel()
        return await self._control(request, check)

    async def _jog(self, request):
        def check(body):
            only_fields(body, {'delta'})
            return self.backend.jog(number(body, 'delta', -1e6, 1e6))
        return await self._control(request, check)

    # -- the live image ----------------------------------------------------------------
    async def _stream(self, request):
        if self.viewers >= self.stream.max_viewers:
            return error(503, f'{self.viewers} viewers already (max_viewers); close a page')
        response = web.StreamResponse(headers={
            'Content-Type': 'multipart/x-mixed-replace; boundary=frame',
            'Cache-Control': 'no-store'})
        await response.prepare(request)
        self.viewers += 1
        self.backend.set_viewers(self.viewers)
        if self._encoder is None or self._encoder.done():
            self._encoder = asyncio.ensure_future(self._encode_frames())
        sent = -1
        try:
            while not self._stopping:
                await self._new_jpeg.wait_for(lambda: self._jpeg[0] != sent or self._stopping)
                sequence, jpeg = self._jpeg
                if self._stopping:
                    break
                part = (b'--frame\r\nContent-Type: image/jpeg\r\nContent-Length: '
                        + str(len(jpeg)).encode() + b'\r\n\r\n' + jpeg + b'\r\n')
                await asyncio.wait_for(response.write(part), self.stream.write_timeout)
                sent = sequence
        except asyncio.TimeoutError:
            # A viewer that takes nothing: close its connection rather than keep a frame
            # (and a task) waiting for it.
            if request.transport is not None:
                request.transport.abort()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.viewers -= 1
            self.backend.set_viewers(self.viewers)
        return response

    async def _encode_frames(self):
        """While anyone watches: the newest frame as JPEG, at most max_fps a second."""
        loop = asyncio.get_running_loop()
        encoded = -1
        period = 1.0 / self.stream.max_fps
        while self.viewers > 0 and not self._stopping:
            sequence, frame = self.backend.latest_frame()
            if frame is None or sequence == encoded:
                await asyncio.sleep(min(period, 0.02))
                continue
            started = loop.time()
            encoded = sequence
            try:
                jpeg = await loop.run_in_executor(None, self.backend.encode_jpeg, frame,
                                                  self.stream.max_width,
                                                  self.stream.jpeg_quality)
            except ValueError:  # a malformed frame: counted, skipped
                self.frames_malformed += 1
                continue
            self.frames_encoded += 1
            self._jpeg = (sequence, jpeg)
            self._new_jpeg.notify_all()
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))


class _Signal:
    """An asyncio condition without a lock to hold: wake every waiter, they re-check."""

    def __init__(self):
        self._event = asyncio.Event()

    def notify_all(self):
        self._event.set()
        self._event = asyncio.Event()

    def notify_all_soon(self):
        self.notify_all()

    async def wait_for(self, predicate):
        while not predicate():
            await self._event.wait()
