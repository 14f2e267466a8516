"""The web node: its HTTP rules over real sockets, and its page in a real browser (Debian's
chromium, driven by Playwright) against the whole simulated graph."""
import json
import os
import pathlib
import re
import shutil
import urllib.error
import urllib.request

import pytest
import yaml
from autofocus_interfaces.msg import MotorCommand, MotorState
from rcl_interfaces.srv import GetParameters
from ros_helpers import stamp_ns, wait_for

CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'config'
TOKEN = 'test-token-0123456789'
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']
URL = re.compile(r'web page for camera (\S+): (http://[^/\s]+)/\?token=(\S+)')


def page_url(process, timeout=30.0):
    """(namespace, base URL, token) from the web node's start-up line."""
    found = wait_for(lambda: URL.search(process.log()), timeout)
    assert found, process.log()
    return found.groups()


def request(url, body=None, headers=None, method=None, raw=None):
    """(status, parsed JSON or text) of one HTTP request, 4xx/5xx included."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault('Content-Type', 'application/json')
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def start_web(node_process, **params):
    return node_process('autofocus', 'web',
                        params={'port': 0, 'token': TOKEN, **params})


def test_control_needs_the_token_the_origin_and_valid_fields_and_bad_requests_never_move(
        ros, node_process):
    motor = node_process('autofocus_motor', 'motor_driver', params={'driver': 'sim'})
    states = ros.collect(MotorState, 'focus_motor/state', qos=100)
    commands = ros.collect(MotorCommand, 'focus_motor/command', qos=100)
    web = start_web(node_process)
    namespace, base, token = page_url(web)
    assert (namespace, token) == ('/', TOKEN)
    assert re.match(r'http://127\.0\.0\.1:\d+$', base), base   # loopback unless host is set
    assert wait_for(lambda: states, 20.0), motor.log()
    auth = {'X-Autofocus-Token': TOKEN}

    status, page = request(base + '/')
    assert status == 200 and '<canvas id="curve-plot"' in page
    with urllib.request.urlopen(base + '/', timeout=20) as response:
        assert response.headers['X-Frame-Options'] == 'DENY'        # no clickjacking frame
        assert "frame-ancestors 'none'" in response.headers['Content-Security-Policy']
    assert request(base + '/static/app.js')[0] == 200
    assert request(base + '/static/../config/autofocus.yaml')[0] == 404
    # Viewing needs the token (header or query), unless view_without_token is set.
    assert request(base + '/api/state')[0] == 403
    assert request(base + '/stream.mjpg')[0] == 403
    status, state = request(base + f'/api/state?token={TOKEN}')
    assert status == 200 and state['namespace'] == '/' and state['goal'] is None
    assert wait_for(lambda: request(base + '/api/state', headers=auth)[1]['motor'], 10.0)

    jog = base + '/api/jog'
    refused = [
        ('no token', request(jog, {'delta': 5.0}), 403, 'token'),
        ('wrong token', request(jog, {'delta': 5.0}, {'X-Autofocus-Token': 'guess'}), 403,
         'token'),
        ('token only in a cookie', request(jog, {'delta': 5.0},
                                           {'Cookie': f'X-Autofocus-Token={TOKEN}'}), 403,
         'token'),
        ('token only in the query', request(jog + f'?token={TOKEN}', {'delta': 5.0}), 403,
         'token'),
        ('another site', request(jog, {'delta': 5.0}, {**auth, 'Origin': 'http://evil.test'}),
         403, 'cross-origin'),
        ('cross-site fetch', request(jog, {'delta': 5.0}, {**auth, 'Sec-Fetch-Site':
                                                           'cross-site'}), 403, 'cross-site'),
        ('DNS rebinding', request(jog, {'delta': 5.0}, {**auth, 'Host': 'evil.test'}), 403,
         'loopback'),
        ('a form post', request(jog, raw=b'delta=5', headers={
            **auth, 'Content-Type': 'application/x-www-form-urlencoded'}), 415, 'json'),
        ('not JSON', request(jog, raw=b'{delta: 5', headers=auth), 400, 'JSON'),
        ('not an object', request(jog, [5.0], auth), 400, 'object'),
        ('NaN', request(jog, raw=b'{"delta": NaN}', headers=auth), 400, 'finite'),
        ('infinity', request(jog, raw=b'{"delta": 1e999}', headers=auth), 400, 'finite'),
        ('a string', request(jog, {'delta': '5'}, auth), 400, 'number'),
        ('a boolean', request(jog, {'delta': True}, auth), 400, 'number'),
        ('missing', request(jog, {}, auth), 400, "missing field 'delta'"),
        ('unknown field', request(jog, {'delta': 5.0, 'speed': 9e9}, auth), 400, 'unknown'),
        ('past the limits', request(jog, {'delta': 1500.0}, auth), 400, 'limits'),
        ('below the limits', request(jog, {'delta': -1.0}, auth), 400, 'limits'),
        ('zero', request(jog, {'delta': 0}, auth), 400, 'does nothing'),
        ('huge body', request(jog, raw=b'{"delta": ' + b'1' * 10000 + b'}', headers=auth), 413,
         ''),
        ('ROI outside the image', request(base + '/api/roi', {
            'x': 0.5, 'y': 0.1, 'width': 1.5, 'height': 0.2}, auth), 400, 'outside [0, 1]'),
        ('ROI without a sharpness node', request(base + '/api/roi', {
            'x': 0.1, 'y': 0.1, 'width': 0.5, 'height': 0.5}, auth), 409, 'no sharpness node'),
        ('unknown strategy', request(base + '/api/focus', {'strategy': 'guess'}, auth), 400,
         'unknown strategy'),
        ('empty range', request(base + '/api/focus', {'range_min': 500, 'range_max': 100},
                                auth), 400, 'empty position range'),
        ('range past the motor', request(base + '/api/focus', {'range_min': 0,
                                                               'range_max': 5000}, auth), 400,
         'motor limits'),
        ('no focus server', request(base + '/api/focus', {}, auth), 409, 'no focus server'),
        ('cancel with nothing running', request(base + '/api/cancel', {}, auth), 409,
         'no focus goal'),
    ]
    for what, (status, answer), expected, reason in refused:
        assert status == expected, (what, status, answer)
        assert reason in (answer['reason'] if isinstance(answer, dict) else answer), (what,
                                                                                     answer)

    # The motor never acted on a command (it echoes the sequence of the last one)...
    assert all(s.last_command_sequence == 0 and s.position == 0.0 for s in states)
    # ...until the one valid jog, sent last.
    status, answer = request(jog, {'delta': 25.0}, {**auth, 'Origin': base})
    assert status == 200 and answer['ok'], answer
    assert wait_for(lambda: states[-1].position == 25.0 and not states[-1].moving, 20.0)
    acted_on = {s.last_command_sequence for s in states} - {0}
    assert len(acted_on) == 1, acted_on
    # (this test's own subscriber may have matched the web node's publisher too late to
    # hear it; when it did hear it, it is the only command: the keepalives while the jog
    # ran go to focus_motor/keepalive)
    assert [(c.mode, c.target) for c in commands] in ([], [(MotorCommand.MODE_RELATIVE, 25.0)])
    assert all(c.header.stamp.sec > 0 for c in commands)


def test_read_only_viewing_can_be_allowed_without_opening_control(ros, node_process):
    web = start_web(node_process, view_without_token=True)
    _, base, _ = page_url(web)
    status, state = request(base + '/api/state')
    assert status == 200 and 'sharpness' in state
    status, answer = request(base + '/api/jog', {'delta': 1.0})
    assert status == 403 and 'token' in answer['reason']


def test_a_bad_parameter_or_a_taken_port_stops_startup_with_a_reason(node_process):
    short = start_web(node_process, token='short')
    assert short.popen.wait(30) == 2
    assert "parameter 'token' is shorter than 8 characters" in short.log()
    first = start_web(node_process)
    _, base, _ = page_url(first)
    port = int(base.rsplit(':', 1)[1])
    second = start_web(node_process, port=port)
    assert second.popen.wait(30) == 2
    assert f'{port}' in second.log() and 'choose another port' in second.log()
    assert first.interrupt() == 0, first.log()   # Ctrl+C stops the server and the node


class MjpegReader:
    """A viewer of /stream.mjpg on its own thread: counts the JPEG parts it receives."""

    def __init__(self, url):
        import threading
        self.frames = []
        self.response = urllib.request.urlopen(url, timeout=30)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            while True:
                headers = {}
                line = self.response.readline()
                while line in (b'\r\n', b'--frame\r\n'):
                    line = self.response.readline()
                while line not in (b'\r\n', b''):
                    name, _, value = line.decode().partition(':')
                    headers[name.strip().lower()] = value.strip()
                    line = self.response.readline()
                if not line:
                    return
                self.frames.append(self.response.read(int(headers['content-length'])))
        except (OSError, ValueError, KeyError, AttributeError):  # closed by close()
            return

    def close(self):
        self.response.close()


def test_live_image_only_while_watched_size_limited_and_a_stalled_viewer_is_dropped(
        ros, node_process):
    import socket

    import cv2
    import numpy as np
    from ros_helpers import image_msg, textured_frame
    from sensor_msgs.msg import Image

    from autofocus.nodes.node_tools import IMAGE_QOS
    publisher = ros.node.create_publisher(Image, 'camera/image_raw', IMAGE_QOS)
    frames = [textured_frame(1280, 720, seed) for seed in range(4)]
    published = []

    def publish():
        frame = frames[len(published) % len(frames)]
        publisher.publish(image_msg(frame, ros.node.get_clock().now().nanoseconds))
        published.append(1)
    ros.node.create_timer(1 / 30, publish)
    web = start_web(node_process, max_fps=30.0, max_width=320, write_timeout=2.0)
    _, base, _ = page_url(web)

    def state():
        return request(base + f'/api/state?token={TOKEN}')[1]

    # Nobody watches: the node does not even subscribe, nothing is encoded.
    assert wait_for(lambda: len(published) > 30, 20.0)
    assert state()['image']['frames'] == 0 and state()['frames_encoded'] == 0
    assert publisher.get_subscription_count() == 0

    watcher = MjpegReader(base + f'/stream.mjpg?token={TOKEN}')
    try:
        assert wait_for(lambda: len(watcher.frames) >= 3, 30.0), web.log()
        picture = cv2.imdecode(np.frombuffer(watcher.frames[-1], np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (180, 320, 3)          # 1280x720 shrunk to max_width

        # A viewer that stops reading: its socket fills, the server drops it after
        # write_timeout, and the other viewer keeps getting frames all along.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = base.removeprefix('http://').rsplit(':', 1)
        stalled.connect((host, int(port)))
        stalled.sendall(f'GET /stream.mjpg?token={TOKEN} HTTP/1.1\r\nHost: {host}:{port}'
                        '\r\n\r\n'.encode())
        assert wait_for(lambda: state()['viewers'] == 2, 20.0)
        before = len(watcher.frames)
        assert wait_for(lambda: state()['viewers'] == 1, 120.0), 'the stalled viewer stayed'
        assert len(watcher.frames) > before + 10
        stalled.close()
    finally:
        watcher.close()
    # The last viewer gone: the node unsubscribes and encodes no more.
    assert wait_for(lambda: state()['viewers'] == 0, 20.0)
    assert wait_for(lambda: publisher.get_subscription_count() == 0, 20.0)
    encoded = state()['frames_encoded']
    count = len(published)
    assert wait_for(lambda: len(published) > count + 30, 20.0)
    assert state()['frames_encoded'] == encoded


# -- the page in a browser, against the simulated graph ---------------------------------

def _chromium_or_skip():
    if os.path.exists(CHROMIUM):
        return
    message = (f'{CHROMIUM} is missing: scripts/setup.sh installs Debian\'s chromium when run '
               'as root (apt-get install -y chromium)')
    if os.environ.get('CI'):
        pytest.fail(message)   # CI runs setup.sh as root: the browser must be there
    pytest.skip(message)


@pytest.fixture
def browser():
    _chromium_or_skip()
    playwright_api = pytest.importorskip('playwright.sync_api')
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def sharpness_roi(ros, timeout=10.0):
    client = ros.node.create_client(GetParameters, 'cam2/sharpness/get_parameters')
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(GetParameters.Request(
        names=['roi_x', 'roi_y', 'roi_width', 'roi_height']))
    assert wait_for(future.done, timeout)
    ros.node.destroy_client(client)
    return tuple(v.double_value for v in future.result().values)


def wait_on_page(page, graph, expression, timeout_ms):
    """page.wait_for_function's value; on a timeout, a failure that shows what the page and
    the graph were doing."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        return page.wait_for_function(expression, timeout=timeout_ms).json_value()
    except PlaywrightTimeout:
        pytest.fail(f'the page did not get there in {timeout_ms / 1000:g} s: goal status '
                    f"{page.text_content('#goal-status')!r}, progress "
                    f"{page.text_content('#progress')!r}\ngraph log (end):\n"
                    f'{graph.log()[-4000:]}')


IMAGE_DIGEST = """() => {
  const img = document.getElementById('live');
  if (!img.naturalWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const g = canvas.getContext('2d');
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let digest = 0;
  for (let i = 0; i < data.length; i += 97) digest = (digest * 31 + data[i]) % 1000000007;
  return [canvas.width, canvas.height, digest];
}"""


@pytest.mark.graph
def test_page_in_chromium_watches_sets_the_roi_focuses_and_cancels(
        ros, node_process, tmp_path, browser):
    params = yaml.safe_load((CONFIG / 'autofocus.yaml').read_text())
    params['/**/web']['ros__parameters'].update(port=0, token=TOKEN)
    params_file = tmp_path / 'autofocus.yaml'
    params_file.write_text(yaml.safe_dump(params))
    # In a namespace, as one of several cameras: the page must follow it.
    graph = node_process('autofocus', 'bringup', ros=False,
                         args=['use_sim:=true', 'web:=true', f'params_file:={params_file}',
                               'namespace:=cam2'])
    states = ros.collect(MotorState, 'cam2/focus_motor/state', qos=100)
    namespace, base, _ = page_url(graph, 60.0)
    assert namespace == '/cam2'
    assert wait_for(lambda: states, 30.0), graph.log()

    page = browser.new_page(viewport={'width': 1200, 'height': 900})
    errors = []
    page.on('pageerror', lambda error: errors.append(str(error)))
    page.goto(f'{base}/?token={TOKEN}')
    wait_on_page(page, graph,
                 "() => document.getElementById('connection').textContent === 'connected'",
                 30000)
    assert page.text_content('#camera') == 'camera /cam2'
    assert 'token' not in page.url            # taken out of the address bar

    # The live image: 640x480 frames that keep changing (the simulator's noise).
    first = wait_for(lambda: page.evaluate(IMAGE_DIGEST), 30.0)
    assert first and first[:2] == [640, 480], first
    assert wait_for(lambda: page.evaluate(IMAGE_DIGEST)[2] != first[2], 20.0)

    # A drag on the image sets the sharpness node's ROI.
    box = page.locator('#overlay').bounding_box()
    page.mouse.move(box['x'] + 0.3 * box['width'], box['y'] + 0.25 * box['height'])
    page.mouse.down()
    page.mouse.move(box['x'] + 0.7 * box['width'], box['y'] + 0.75 * box['height'], steps=8)
    page.mouse.up()
    wait_on_page(page, graph,
                 "() => document.getElementById('roi-msg').textContent === 'ROI set'", 20000)
    roi = sharpness_roi(ros)
    assert roi == pytest.approx((0.3, 0.25, 0.4, 0.5), abs=0.01), roi
    # A ROI the sharpness node refuses shows the node's reason, and changes nothing.
    answer = page.evaluate('autofocus.setRoi(0.0, 0.9, 0.5, 0.2)')
    assert not answer['ok']
    message = page.text_content('#roi-msg')
    assert 'refused the ROI' in message and 'y+h=1.1' in message, message
    assert sharpness_roi(ros) == roi

    # Focus: a sweep over part of the range, with live progress and the curve plotted.
    page.select_option('#strategy', 'sweep')
    page.fill('#range-min', '200')
    page.fill('#range-max', '700')
    page.click('#focus-btn')
    # The progress line as the page showed it while the goal ran (read in the same instant).
    # A goal that ends at once (refused, aborted) ends this wait too, and its reason is shown.
    progress = wait_on_page(page, graph,
        "() => { const status = document.getElementById('goal-status').dataset.status;"
        " if (['SUCCEEDED', 'ABORTED', 'CANCELED', 'REJECTED'].includes(status))"
        "   return 'ended: ' + document.getElementById('goal-status').textContent;"
        " return status === 'running' && "
        " document.getElementById('curve-plot').dataset.points >= 4 && "
        " document.getElementById('progress').textContent; }", 60000)
    assert re.match(r'sweep: position \d+\.\d\d, sharpness [\d.]+, best \d+\.\d\d, \d+ frames',
                    progress), (progress, graph.log()[-4000:])
    # The screenshot in the README: past the peak (at 420), if the goal still runs.
    wait_on_page(page, graph,
                 "() => document.getElementById('curve-plot').dataset.points >= 13 || "
                 "document.getElementById('goal-status').dataset.status !== 'running'", 60000)
    page.screenshot(path=str(tmp_path / 'web_page.png'))
    if os.environ.get('AUTOFOCUS_WEB_SCREENSHOT'):
        shutil.copy(tmp_path / 'web_page.png', os.environ['AUTOFOCUS_WEB_SCREENSHOT'])
    wait_on_page(page, graph, "() => ['SUCCEEDED', 'ABORTED', 'CANCELED', 'REJECTED']"
        ".includes(document.getElementById('goal-status').dataset.status)", 90000)
    assert 'SUCCEEDED' in page.text_content('#goal-status'), page.text_content('#goal-status')
    state = request(f'{base}/api/state?token={TOKEN}')[1]
    curve, final = state['goal']['curve'], state['goal']['final']
    assert len(curve) >= 21 and 200.0 <= final[0] <= 700.0     # 200..700 at sweep_step 25
    assert int(page.get_attribute('#curve-plot', 'data-points')) == len(curve)
    assert float(page.get_attribute('#curve-plot', 'data-final')) == pytest.approx(final[0])
    assert f'final position {final[0]:.2f}' in page.text_content('#progress')
    assert int(page.get_attribute('#sharpness-plot', 'data-points')) > 10
    assert wait_for(lambda: abs(states[-1].position - final[0]) < 1e-6, 10.0)

    # Jog from the page: a relative move within the limits.
    at = states[-1].position
    page.click('[data-jog="-10"]')
    assert wait_for(lambda: abs(states[-1].position - (at - 10.0)) < 1e-6
                    and not states[-1].moving, 10.0)
    # (the page writes its answer when the response arrives: it may come after the move)
    assert wait_for(lambda: 'moving -10' in page.text_content('#jog-msg'), 10.0), \
        page.text_content('#jog-msg')

    # Cancel: a full-range sweep stopped from the page; the lens stays where it stopped.
    page.select_option('#strategy', 'sweep')
    page.fill('#range-min', '0')
    page.fill('#range-max', '1000')
    page.click('#focus-btn')
    wait_on_page(page, graph, "() => document.getElementById('goal-status').dataset.status === "
                           "'running' && document.getElementById('curve-plot').dataset.points "
                           ">= 3", 60000)
    # While it runs, a second goal and a jog are refused with the reason, on the page too.
    for path, body in (('/api/focus', '{}'), ('/api/jog', '{"delta": 1}')):
        status, reason = page.evaluate("""async ([path, body]) => {
            const answer = await autofocus.post(path, JSON.parse(body));
            return [answer.ok, answer.reason];
        }""", [path, body])
        assert not status and 'cancel it first' in reason, (path, reason)
    page.click('#cancel-btn')
    wait_on_page(page, graph, "() => document.getElementById('goal-status').dataset.status === "
                           "'CANCELED'", 30000)
    assert 'CANCELED' in page.text_content('#goal-status')
    # Judge the states sent after the cancel, not ones still queued here on a loaded machine.
    canceled_ns = ros.node.get_clock().now().nanoseconds
    assert wait_for(lambda: stamp_ns(states[-1].header.stamp) > canceled_ns
                    and not states[-1].moving, 10.0)
    stopped = states[-1].position
    count = len(states)
    assert wait_for(lambda: len(states) > count + 10, 10.0)
    assert states[-1].position == stopped

    # From the page itself, a request without the token is refused.
    refused = page.evaluate("""async () => {
        const r = await fetch('/api/jog', {method: 'POST', body: '{"delta": 5}',
                                           headers: {'Content-Type': 'application/json'}});
        return [r.status, (await r.json()).reason];
    }""")
    assert refused[0] == 403 and 'token' in refused[1]
    assert states[-1].position == stopped

    # A phone beside it: a second viewer, and a finger drag sets the ROI too.
    phone = browser.new_context(viewport={'width': 390, 'height': 844},
                                device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        small.on('pageerror', lambda error: errors.append(str(error)))
        small.goto(f'{base}/?token={TOKEN}')
        assert wait_for(lambda: small.evaluate(IMAGE_DIGEST), 30.0)
        box = small.locator('#overlay').bounding_box()
        assert box['width'] <= 390
        touch = phone.new_cdp_session(small)
        path = [(0.5 + 0.04 * i, 0.4 + 0.05 * i) for i in range(6)]  # (0.5, 0.4) to (0.7, 0.65)
        for kind, (fx, fy) in [('touchStart', path[0])] + [('touchMove', p) for p in path[1:]]:
            touch.send('Input.dispatchTouchEvent', {'type': kind, 'touchPoints': [
                {'x': box['x'] + fx * box['width'], 'y': box['y'] + fy * box['height']}]})
        touch.send('Input.dispatchTouchEvent', {'type': 'touchEnd', 'touchPoints': []})
        small.wait_for_function(
            "() => document.getElementById('roi-msg').textContent === 'ROI set'", timeout=20000)
        assert sharpness_roi(ros) == pytest.approx((0.5, 0.4, 0.2, 0.25), abs=0.01)
    finally:
        phone.close()
    assert not errors, errors


def test_page_shows_a_motor_fault_plainly_and_refuses_a_jog_without_motor_state(
        ros, node_process, browser):
    # The fault arrives as the motor driver reports one (MotorState.fault); GPIO faults
    # cannot be made here, so this test publishes the state the driver would.
    web = start_web(node_process)
    _, base, _ = page_url(web)
    publisher = ros.node.create_publisher(MotorState, 'focus_motor/state', 10)
    page = browser.new_page(viewport={'width': 1000, 'height': 800})
    page.goto(f'{base}/?token={TOKEN}')
    page.wait_for_function("() => document.getElementById('motor').textContent"
                           ".startsWith('no motor state')", timeout=30000)
    page.click('[data-jog="10"]')
    page.wait_for_function("() => document.getElementById('jog-msg').textContent !== ''",
                           timeout=20000)
    assert 'no motor state' in page.text_content('#jog-msg')
    state = MotorState(position=120.0, target=120.0, min_position=0.0, max_position=1000.0,
                       fault='stepper: GPIO17 busy (another process holds the pin)')
    timer = ros.node.create_timer(0.1, lambda: publisher.publish(state))
    try:
        page.wait_for_function("() => document.getElementById('fault').textContent !== ''",
                               timeout=30000)
        assert page.text_content('#fault') == ('MOTOR FAULT: stepper: GPIO17 busy (another '
                                               'process holds the pin)')
        assert page.text_content('#motor').startswith('position 120.00 (at rest)')
        assert page.eval_on_selector('#fault', 'e => getComputedStyle(e).color') == \
            'rgb(198, 40, 40)'
    finally:
        ros.node.destroy_timer(timer)
