"""focus_fleet on a fleet of loopback cameras: real RTSP (GStreamer's server), our HTTP
snapshot and MJPEG servers, broken cameras, credentials, baselines and drift."""
import csv
import os
import json
import pathlib
import shutil
import subprocess
import sys

import cv2
import pytest

from fleet_cameras import HttpCameras, RtspCamera, SilentCamera, closed_port
from autofocus.tools import fleet

DATA = pathlib.Path(__file__).parent / 'data'
# Real best-focus frames of three scenes.
RTSP_IMAGE = DATA / 'defocus-series-sharpeval' / 'tools' / '0.png'
SNAP_IMAGE = DATA / 'focus-sweep-fpd-xp005' / 'z-049.jpg'
MJPEG_IMAGE = DATA / 'defocus-exposure-sharpeval' / 'tools' / '0_40.png'

def _rtsp_server_installed():
    try:
        return subprocess.run(
            ['/usr/bin/python3', '-c', "import gi; gi.require_version('GstRtspServer', '1.0')"],
            capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_rtsp = pytest.mark.skipif(not _rtsp_server_installed(),
                                reason='GStreamer RTSP server not installed (scripts/setup.sh '
                                       'installs it as root)')


def _jpeg(path, blur=0.0):
    image = cv2.imread(str(path))
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    return cv2.imencode('.jpg', image, (cv2.IMWRITE_JPEG_QUALITY, 95))[1].tobytes()


def _blurred_file(path, folder, blur):
    out = folder / f'blurred_{path.stem}.png'
    cv2.imwrite(str(out), cv2.GaussianBlur(cv2.imread(str(path)), (0, 0), blur))
    return out


def _report(out):
    data = json.loads((out / 'fleet.json').read_text())
    with open(out / 'fleet.csv', newline='') as stream:
        rows = list(csv.DictReader(stream))
    return {c['name']: c for c in data['cameras']}, data, rows


@pytest.fixture
def http_cameras():
    cameras = HttpCameras({'snap': _jpeg(SNAP_IMAGE), 'mjpeg': _jpeg(MJPEG_IMAGE)})
    yield cameras
    cameras.close()


@needs_rtsp
def test_a_baseline_run_then_a_blurred_run_reports_the_drift(tmp_path, http_cameras,
                                                              monkeypatch, capsys):
    monkeypatch.delenv('AUTOFOCUS_CAMERA_USER', raising=False)
    rtsp = RtspCamera(RTSP_IMAGE)
    try:
        cameras = tmp_path / 'cameras.txt'

        def listing(rtsp_url):
            cameras.write_text(f'# the loopback fleet\n{rtsp_url} gate\n'
                               f'{http_cameras.url("/snap")} yard\n'
                               f'{http_cameras.url("/mjpeg")}  hall\n')
        listing(rtsp.url)
        out = tmp_path / 'out'
        common = ['--file', str(cameras), '-o', str(out), '--timeout', '60', '--quiet']
        assert fleet.main(common) == 0
        by_name, data, rows = _report(out)
        assert set(by_name) == {'gate', 'yard', 'hall'}
        kinds = {n: c['kind'] for n, c in by_name.items()}
        assert kinds == {'gate': 'rtsp', 'yard': 'snapshot', 'hall': 'mjpeg'}
        for name, camera in by_name.items():
            assert camera['reachable'] and camera['frames'] == 3, camera
            assert camera['status'] == 'NEW' and 'baseline stored' in camera['note']
            assert camera['verdict'] == 'CLEAR', camera
            assert (out / camera['thumbnail']).is_file()
        baseline = json.loads((out / 'baseline.json').read_text())['cameras']
        assert set(baseline) == {'gate', 'yard', 'hall'}
        assert 'blur_effect <=' in data['rule'] and len(rows) == 3

        # Same scenes again: no drift.
        assert fleet.main(common) == 0
        by_name, _, _ = _report(out)
        assert {c['status'] for c in by_name.values()} == {'SAME'}
        assert all(abs(c['change']) < 0.3 for c in by_name.values())

        # Every lens knocked out of focus.
        rtsp.close()
        rtsp = RtspCamera(_blurred_file(RTSP_IMAGE, tmp_path, 2.5))
        listing(rtsp.url)   # a new port: the camera keeps its name, so its baseline
        http_cameras.images.update(snap=_jpeg(SNAP_IMAGE, 2.5), mjpeg=_jpeg(MJPEG_IMAGE, 2.5))
        capsys.readouterr()
        assert fleet.main(common) == 1
        by_name, data, rows = _report(out)
        for name, camera in by_name.items():
            assert camera['status'] == 'WORSE', camera
            assert camera['change'] < -0.5 and camera['baseline_sharpness'] > camera['sharpness']
        assert by_name['gate']['verdict'] == 'BLURRY' and by_name['hall']['verdict'] == 'BLURRY'
        assert '3 WORSE' in capsys.readouterr().out
        page = (out / 'report.html').read_text()
        assert page.count('<tr class="WORSE">') == 3 and '3 worse' in page
        # The baseline is kept until asked: a later run still sees the drift.
        assert json.loads((out / 'baseline.json').read_text())['cameras'] == baseline
        assert fleet.main([*common, '--baseline']) == 0
        assert {c['status'] for c in _report(out)[0].values()} == {'NEW'}
        assert fleet.main(common) == 0
    finally:
        rtsp.close()


def test_broken_cameras_are_named_with_the_reason(tmp_path, http_cameras, monkeypatch):
    monkeypatch.delenv('AUTOFOCUS_CAMERA_USER', raising=False)
    silent = SilentCamera()
    try:
        refused = closed_port()
        urls = {'refused': f'http://127.0.0.1:{refused}/snap',
                'hung': f'http://127.0.0.1:{silent.port}/snap',
                'hung-rtsp': f'rtsp://127.0.0.1:{silent.port}/stream',
                'garbage': http_cameras.url('/garbage'),
                'endless': http_cameras.url('/endless'),
                'missing': http_cameras.url('/no-such-path'),
                'locked': http_cameras.url('/auth/snap'),
                'ok': http_cameras.url('/mjpeg-nolen')}
        listing = tmp_path / 'cameras.txt'
        listing.write_text(''.join(f'{url} {name}\n' for name, url in urls.items()))
        out = tmp_path / 'out'
        assert fleet.main(['--file', str(listing), '-o', str(out), '--timeout', '4',
                           '--quiet', '--fail-on-unreachable']) == 3
        by_name, _, rows = _report(out)
        reasons = {n: c['error'] for n, c in by_name.items()}
        assert 'connection refused' in reasons['refused']
        assert 'timed out' in reasons['hung']
        assert 'timed out' in reasons['hung-rtsp']
        assert 'not a JPEG or PNG image' in reasons['garbage']
        assert 'larger than' in reasons['endless']
        assert 'HTTP 404' in reasons['missing']
        assert 'needs credentials' in reasons['locked']
        assert by_name['ok']['reachable'] and by_name['ok']['kind'] == 'mjpeg'
        assert [r['name'] for r in rows][-1] == 'ok'   # worst first: the good one last
        assert all(not c['reachable'] for n, c in by_name.items() if n != 'ok')
    finally:
        silent.close()


@needs_rtsp
def test_credentials_come_from_a_file_or_the_environment_and_never_show(
        tmp_path, http_cameras, monkeypatch, capsys):
    monkeypatch.delenv('AUTOFOCUS_CAMERA_USER', raising=False)
    rtsp = RtspCamera(RTSP_IMAGE, env={'FLEET_RTSP_USER': 'cam',
                                       'FLEET_RTSP_PASSWORD': 's3cret-rtsp',
                                       'PATH': '/usr/bin:/bin'})
    try:
        out = tmp_path / 'out'
        locked = http_cameras.url('/auth/snap')
        # On the command line: refused before anything is contacted.
        with pytest.raises(SystemExit) as exit_info:
            fleet.main([locked.replace('http://', 'http://cam:s3cret@'), '-o', str(out)])
        assert exit_info.value.code == 2
        assert 'netrc' in capsys.readouterr().err and http_cameras.requests == []
        # From a netrc file (RTSP's host is the same: one machine line serves both).
        netrc = tmp_path / 'cameras.netrc'
        netrc.write_text('machine 127.0.0.1 login cam password s3cret\n')
        netrc.chmod(0o600)
        assert fleet.main([locked, rtsp.url, '-o', str(out), '--credentials', str(netrc),
                           '--timeout', '60', '--quiet']) == 0
        by_name, _, _ = _report(out)
        assert by_name[locked]['reachable']
        assert 'credentials were refused' in by_name[rtsp.url]['error']
        # From the environment.
        monkeypatch.setenv('AUTOFOCUS_CAMERA_USER', 'cam')
        monkeypatch.setenv('AUTOFOCUS_CAMERA_PASSWORD', 's3cret-rtsp')
        assert fleet.main([rtsp.url, locked, '-o', str(out), '--timeout', '60',
                           '--quiet']) == 0
        by_name, _, _ = _report(out)
        assert by_name[rtsp.url]['reachable'] and by_name[rtsp.url]['kind'] == 'rtsp'
        assert 'credentials were refused' in by_name[locked]['error']
        captured = capsys.readouterr()
        for text in [captured.out, captured.err, *(p.read_text(errors='replace')
                                                   for p in out.iterdir() if p.is_file())]:
            assert 's3cret' not in text
    finally:
        rtsp.close()


def test_a_host_range_tries_templates_on_the_named_ports_only(tmp_path, http_cameras):
    out = tmp_path / 'out'
    closed = closed_port()
    assert fleet.main(['--hosts', '127.0.0.1', '--template', 'http://{host}:{port}/snap',
                       '--http-ports', f'{closed},{http_cameras.port}', '--rtsp-ports', '1',
                       '--make', 'hikvision', '-o', str(out), '--timeout', '10',
                       '--quiet']) == 0
    by_name, _, _ = _report(out)
    camera = by_name['127.0.0.1']
    assert camera['reachable'] and camera['url'] == http_cameras.url('/snap')
    assert any(f':{closed}/' in t and 'refused' in t for t in camera['tried'])
    # Only the named host and ports were contacted: the hikvision snapshot path first.
    assert http_cameras.requests[0] == '/ISAPI/Streaming/channels/101/picture'
    assert set(http_cameras.requests) == {'/ISAPI/Streaming/channels/101/picture', '/snap'}
    with pytest.raises(SystemExit):
        fleet.main(['--hosts', '10.0.0.0/8', '--make', 'generic', '-o', str(out)])
    with pytest.raises(SystemExit):
        fleet.main(['--hosts', '127.0.0.1', '-o', str(out)])   # no template: nothing to try


def test_parallel_connections_are_bounded(tmp_path, http_cameras):
    urls = [http_cameras.url('/slow') + f'?camera={i}' for i in range(6)]
    http_cameras.requests.clear()
    assert fleet.main([*urls, '--parallel', '2', '--frames', '1', '-o', str(tmp_path / 'o'),
                       '--timeout', '30', '--quiet']) == 0
    assert len(http_cameras.requests) == 6
    assert 1 <= http_cameras.open_max <= 2


ONVIF_CAMERA = pathlib.Path(__file__).parent / 'fleet_onvif_camera.py'


def _ip(*args, check=True):
    return subprocess.run(['ip', *args], capture_output=True, text=True, check=check)


@pytest.fixture
def two_namespaces():
    """Namespaces 'client' and 'camera' joined by a veth pair, nothing else on them."""
    if os.geteuid() != 0 or shutil.which('ip') is None:
        pytest.skip('network namespaces need root and iproute2')
    tag = f'{os.getpid() % 100000}'
    client, camera = f'afd-fleet-c{tag}', f'afd-fleet-m{tag}'
    subnet = f'10.213.{os.getpid() % 250}'
    try:
        for ns in (client, camera):
            _ip('netns', 'add', ns)
        _ip('link', 'add', f'afc{tag}', 'netns', client, 'type', 'veth',
            'peer', 'name', f'afm{tag}', 'netns', camera)
        for ns, dev, host in ((client, f'afc{tag}', 1), (camera, f'afm{tag}', 2)):
            _ip('-n', ns, 'addr', 'add', f'{subnet}.{host}/24', 'dev', dev)
            _ip('-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on')
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
            _ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev)
        yield client, camera, f'{subnet}.2'
    finally:
        for ns in (client, camera):
            _ip('netns', 'del', ns, check=False)


def test_ws_discovery_finds_an_onvif_camera_in_a_network_namespace(tmp_path, two_namespaces):
    client, camera_ns, address = two_namespaces
    snapshot = tmp_path / 'snapshot.jpg'
    snapshot.write_bytes(_jpeg(SNAP_IMAGE))
    camera = subprocess.Popen(['ip', 'netns', 'exec', camera_ns, sys.executable,
                               str(ONVIF_CAMERA), address, '8080', str(snapshot)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert camera.stdout.readline().strip() == 'READY', camera.stderr.read()[-2000:]
        out = tmp_path / 'out'
        run = subprocess.run(
            ['ip', 'netns', 'exec', client, sys.executable, '-m', 'autofocus.tools.fleet',
             '--discover', '4', '--make', 'generic', '--http-ports', '8080',
             '--rtsp-ports', '554', '-o', str(out), '--timeout', '20'],
            capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert '1 ONVIF camera(s) answered' in run.stderr and address in run.stderr
        by_name, _, _ = _report(out)
        assert list(by_name) == [address]
        found = by_name[address]
        assert found['reachable'] and found['kind'] == 'snapshot'
        assert found['url'] == f'http://{address}:8080/snapshot.jpg'
        assert any(':554/' in t and 'refused' in t for t in found['tried'])
        # Without --discover nothing is looked for: no camera named is a usage error.
        quiet = subprocess.run(['ip', 'netns', 'exec', client, sys.executable, '-m',
                                'autofocus.tools.fleet', '--make', 'generic', '-o', str(out)],
                               capture_output=True, text=True, timeout=120)
        assert quiet.returncode == 2 and 'no camera named' in quiet.stderr
    finally:
        camera.terminate()
        try:
            camera.wait(timeout=10)
        except subprocess.TimeoutExpired:
            camera.kill()
            camera.wait()
        camera.stdout.close()
        camera.stderr.close()


def test_a_camera_dripping_bytes_is_abandoned_at_its_hard_limit(tmp_path, http_cameras):
    out = tmp_path / 'out'
    assert fleet.main([http_cameras.url('/drip'), http_cameras.url('/snap'), '-o', str(out),
                       '--timeout', '2', '--parallel', '1', '--quiet']) == 0
    by_name, _, rows = _report(out)
    assert 'abandoned' in by_name[http_cameras.url('/drip')]['error']
    assert by_name[http_cameras.url('/snap')]['reachable']   # its slot went to the next one
    assert rows[0]['name'] == http_cameras.url('/drip')


EXPOSURE = DATA / 'defocus-exposure-sharpeval' / 'tools'


def _measured(name, path):
    result = fleet.Result(name, reachable=True)
    fleet.judge_frames(result, [cv2.imread(str(path))])
    return result


@pytest.mark.parametrize('now,expected', [('0_20', 'SCENE CHANGED'), ('0_40', 'SCENE CHANGED'),
                                          ('2_60', 'WORSE'), ('4_60', 'WORSE'),
                                          ('0_60', 'SAME'), ('1_60', 'SAME')])
def test_less_light_is_not_a_lens_that_moved(now, expected):
    """Real frames: baseline at best focus and E=60; the same focus at less light is not
    WORSE although its gradient energy falls by far more than the drift threshold."""
    baseline = fleet.baseline_entry(_measured('cam', EXPOSURE / '0_60.png'))
    result = _measured('cam', EXPOSURE / f'{now}.png')
    fleet.compare(result, baseline, drift=0.3, blur_rise=0.05)
    assert result.status == expected, (result.change, result.blur_rise)
    if expected == 'SCENE CHANGED':
        assert result.change < -0.3 and 'light or scene' in result.note


def test_help_and_usage_errors_touch_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        fleet.main(['--help'])
    assert exit_info.value.code == 0 and 'baseline' in capsys.readouterr().out
    for argv, words in ((['ftp://10.0.0.1/x'], 'not an rtsp'), ([], 'no camera named'),
                        (['http://127.0.0.1:1/x', '--drift', '2'], '--drift'),
                        (['--hosts', '10.0.0.9-10.0.0.1', '--make', 'axis'], 'ends before'),
                        (['--hosts', '127.0.0.1', '--make', 'nikon'], 'unknown')):
        with pytest.raises(SystemExit) as exit_info:
            fleet.main(argv)
        assert exit_info.value.code == 2 and words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
