"""focus_fleet: which of my IP cameras went out of focus?

Checks a fleet of cameras named by URL (RTSP, HTTP snapshot, MJPEG over HTTP),
by a file of URLs, by a host range with ports and the URL templates of common
makes, or found by ONVIF WS-Discovery (--discover; only when asked). For each
camera: reachable or not and why, a few frames, their focus measures and the
per-image verdict of autofocus.core.verdict, a thumbnail, and the drift of its
sharpness against its own stored baseline: a plain wall is never "sharp", but
a wall that lost half its gradient energy since last week says the lens moved.

The first run (or --baseline) stores each camera's baseline; later runs report
the change. Writes into --out: report.html (thumbnails and verdicts, worst
first), fleet.csv and fleet.json; exit code 1 when any camera got worse past
--drift, so it runs from cron or CI (3 with --fail-on-unreachable when one
could not be reached, 2 for a usage error).

Credentials never come from the command line: a netrc file (--credentials)
or AUTOFOCUS_CAMERA_USER / AUTOFOCUS_CAMERA_PASSWORD; they never appear in
the reports.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib
import socket
import statistics
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field

from autofocus.core import measures, verdict as image_verdict
from autofocus.io import camera_probe
from autofocus.tools import fleet_report, fleet_targets
from autofocus.tools.fleet_targets import Camera, TargetError

DRIFT_MEASURE = 'tenengrad'   # gradient energy: robust to noise, falls steadily with blur
REPORT_MEASURES = ('laplacian_variance', 'tenengrad', 'normalized_variance')
WORSE, BETTER, SAME, NEW, UNREACHABLE, INCOMPARABLE, SCENE = (
    'WORSE', 'BETTER', 'SAME', 'NEW', 'UNREACHABLE', 'NOT COMPARABLE', 'SCENE CHANGED')


@dataclass
class Result:
    name: str
    url: str = ''
    kind: str = ''
    reachable: bool = False
    error: str = ''
    tried: list = field(default_factory=list)
    frames: int = 0
    verdict: str = ''
    reason: str = ''
    blur_effect: float | None = None
    measures: dict = field(default_factory=dict)
    size: list = field(default_factory=list)
    sharpness: float | None = None
    baseline_sharpness: float | None = None
    baseline_blur_effect: float | None = None
    baseline_time: str = ''
    change: float | None = None       # sharpness / baseline - 1
    blur_rise: float | None = None    # blur_effect - baseline's
    status: str = ''
    note: str = ''
    thumbnail: str = ''
    seconds: float = 0.0


def _port_open(host: str, port: int, timeout: float) -> str:
    """'' when a TCP connection to host:port opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ''
    except ConnectionRefusedError:
        return 'connection refused'
    except (socket.timeout, TimeoutError):
        return 'timed out'
    except OSError as error:
        return error.strerror or str(error)


def probe(camera: Camera, args, credentials: fleet_targets.CredentialStore, thumbs: pathlib.Path,
          index: int) -> Result:
    """Grab and judge one camera; never raises (a failure is the result)."""
    started = time.monotonic()
    result = Result(camera.name)
    closed = {}
    if camera.host:
        for port in camera.ports:
            why = _port_open(camera.host, port, min(args.timeout, 3.0))
            if why:
                closed[port] = why
    frames = None
    for url in camera.urls:
        port = urllib.parse.urlsplit(url).port
        if port in closed:
            result.tried.append(f'{url}: {closed[port]}')
            continue
        creds = credentials.for_url(url)
        try:
            kind, frames = camera_probe.grab(url, args.frames, args.timeout, creds,
                                             args.interval, args.insecure)
        except camera_probe.ProbeError as error:
            result.tried.append(f'{url}: {camera_probe.redact(str(error), creds)}')
            continue
        except Exception as error:  # noqa: BLE001 - one camera must not end the run
            result.tried.append(f'{url}: {type(error).__name__}: '
                                f'{camera_probe.redact(str(error), creds)}')
            continue
        result.url, result.kind = url, kind
        break
    result.seconds = round(time.monotonic() - started, 2)
    if not frames:
        result.status = UNREACHABLE
        if len(camera.urls) == 1:  # the URL is the camera: say only why
            result.url = camera.urls[0]
            result.error = result.tried[0][len(camera.urls[0]) + 2:] if result.tried else ''
        elif len(result.tried) <= 3:
            result.error = '; '.join(result.tried)
        else:
            result.error = f'{result.tried[0]}; ... ({len(result.tried)} URLs tried)'
        result.error = result.error or 'no URL to try'
        return result
    result.reachable = True
    judge_frames(result, frames)
    result.thumbnail = fleet_report.write_thumbnail(frames[len(frames) // 2], thumbs, index,
                                                    camera.name)
    return result


def judge_frames(result: Result, frames) -> None:
    """Median measures and blur_effect of the frames; the camera is CLEAR if most frames are."""
    judged, values = [], []
    for frame in frames:
        try:
            judged.append(image_verdict.judge(frame))
        except ValueError as error:
            result.note = str(error)
            continue
        gray = image_verdict.reduce(frame)
        values.append(measures.compute(gray, list(REPORT_MEASURES), (0.0, 0.0, 1.0, 1.0), 1))
    result.frames = len(frames)
    result.size = [int(frames[0].shape[1]), int(frames[0].shape[0])]
    if not judged:
        result.verdict, result.reason = image_verdict.BLURRY, result.note or 'no frame judged'
        return
    result.measures = {name: statistics.median(v[name] for v in values)
                       for name in REPORT_MEASURES}
    result.sharpness = result.measures[DRIFT_MEASURE]
    effects = [j.blur_effect for j in judged if not math.isnan(j.blur_effect)]
    result.blur_effect = statistics.median(effects) if effects else None
    clear = sum(j.clear for j in judged)
    result.verdict = image_verdict.CLEAR if clear * 2 > len(judged) else image_verdict.BLURRY
    median = sorted(judged, key=lambda j: (math.isnan(j.blur_effect), j.blur_effect))[
        len(judged) // 2]
    result.reason = f'{clear}/{len(judged)} frames CLEAR; median frame: {median.reason}'


def compare(result: Result, baseline: dict, drift: float, blur_rise: float) -> None:
    """Set result.status against the camera's stored baseline (None: none yet).

    WORSE needs both signs of a lens that moved: the gradient energy fell by more than
    `drift` AND blur_effect rose by at least `blur_rise`. Light alone moves the first a lot
    and the second little (real defocus-exposure series, same focus, 3x less light:
    tenengrad -65 %, blur_effect -0.05), so a camera checked at dusk is SCENE CHANGED,
    not WORSE; two defocus steps at the same light raise blur_effect by 0.10-0.15.
    """
    if not result.reachable:
        return
    if not baseline:
        result.status = NEW
        return
    result.baseline_sharpness = baseline.get('sharpness')
    result.baseline_blur_effect = baseline.get('blur_effect')
    result.baseline_time = baseline.get('time', '')
    if baseline.get('size') != result.size:
        result.status = INCOMPARABLE
        result.note = (f'frame size {result.size} differs from the baseline\'s '
                       f'{baseline.get("size")}: store a new one with --baseline')
        return
    if not result.baseline_sharpness or result.sharpness is None:
        result.status = INCOMPARABLE
        result.note = 'the baseline or this run has no sharpness (a blank frame)'
        return
    result.change = result.sharpness / result.baseline_sharpness - 1.0
    if result.blur_effect is not None and result.baseline_blur_effect is not None:
        result.blur_rise = result.blur_effect - result.baseline_blur_effect
    if result.change < -drift:
        if result.blur_rise is None or result.blur_rise >= blur_rise:
            result.status = WORSE
        else:
            result.status = SCENE
            result.note = (f'{DRIFT_MEASURE} fell {-result.change:.0%} but blur_effect rose '
                           f'only {result.blur_rise:+.3f} (< {blur_rise:g}): light or scene '
                           'changed rather than focus')
    else:
        result.status = BETTER if result.change > drift else SAME


def load_baseline(path: pathlib.Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        cameras = data['cameras']
        if not isinstance(cameras, dict):
            raise TypeError('cameras is not a mapping')
        return cameras
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TargetError(f'baseline {path} is unreadable ({error}); move it away or '
                          'store a new one with --baseline') from None


def store_baseline(path: pathlib.Path, stored: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix('.tmp')
    temporary.write_text(json.dumps({'version': 1, 'measure': DRIFT_MEASURE,
                                     'cameras': stored}, indent=1, sort_keys=True) + '\n')
    temporary.replace(path)


def baseline_entry(result: Result) -> dict:
    return {'sharpness': result.sharpness, 'blur_effect': result.blur_effect,
            'size': result.size, 'url': result.url,
            'time': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}


def collect_cameras(args) -> list[Camera]:
    cameras = [Camera(url, [fleet_targets.check_url(url)]) for url in args.urls]
    for path in args.file or []:
        cameras += fleet_targets.from_file(path)
    hosts = []
    if args.hosts:
        hosts += fleet_targets.expand_hosts(args.hosts)
    templates = fleet_targets.templates_for(args.make.split(',') if args.make else [],
                                            args.template or [])
    rtsp_ports = fleet_targets.parse_ports(args.rtsp_ports, '--rtsp-ports')
    http_ports = fleet_targets.parse_ports(args.http_ports, '--http-ports')
    if args.discover is not None:
        found = fleet_targets.discover(args.discover)
        print(f'WS-Discovery: {len(found)} ONVIF camera(s) answered in {args.discover:g} s'
              + (f': {", ".join(found)}' if found else ''), file=sys.stderr)
        hosts += [h for h in found if h not in hosts]
    if hosts and not templates:
        raise TargetError('--hosts/--discover need URL templates: --make '
                          f'({", ".join(fleet_targets.TEMPLATES)}) or --template')
    cameras += [fleet_targets.host_camera(h, templates, rtsp_ports, http_ports) for h in hosts]
    seen, unique = set(), []
    for camera in cameras:
        if camera.name not in seen:
            seen.add(camera.name)
            unique.append(camera)
    return unique


def hard_limit(camera: Camera, timeout: float) -> float:
    """Seconds after which a camera's worker is abandoned: every URL its timeout, twice."""
    return 2.0 * timeout * (len(camera.urls) + 1) + 5.0


def run(cameras, args, credentials, out: pathlib.Path) -> list[Result]:
    """Probe every camera, at most args.parallel at once (one connection each).

    Every grab has its own timeouts; a worker that still overruns its hard limit (a
    server dripping one byte at a time through the socket timeouts) is abandoned: the
    camera is reported as not answering and its slot goes to the next camera. The
    worker is a daemon thread, so it cannot keep the process alive.
    """
    thumbs = out / 'thumbs'
    thumbs.mkdir(parents=True, exist_ok=True)
    results: list = [None] * len(cameras)
    slots = threading.Semaphore(args.parallel)
    lock = threading.Lock()
    running: dict[int, float] = {}    # camera index -> deadline (monotonic)
    done = [0]

    def finish(index, result, release):
        with lock:
            if results[index] is not None:
                return  # abandoned already; its slot was given away then
            results[index] = result
            running.pop(index, None)
            done[0] += 1
            if not args.quiet:
                print(f'[{done[0]}/{len(cameras)}] {result.name}: '
                      + (f'{result.verdict} ({result.kind}, {result.frames} frames)'
                         if result.reachable else f'unreachable: {result.error}'),
                      file=sys.stderr)
        if release:
            slots.release()

    def worker(index):
        try:
            result = probe(cameras[index], args, credentials, thumbs, index)
        except Exception as error:  # noqa: BLE001 - reported, never lost
            result = Result(cameras[index].name, status=UNREACHABLE,
                            error=f'{type(error).__name__}: {error}')
        finish(index, result, release=True)

    def abandon_overdue():
        now = time.monotonic()
        with lock:
            overdue = [i for i, deadline in running.items() if now > deadline]
        for index in overdue:
            limit = hard_limit(cameras[index], args.timeout)
            finish(index, Result(cameras[index].name, status=UNREACHABLE,
                                 error=f'no complete answer within {limit:.0f} s '
                                       '(abandoned)'), release=True)

    for index in range(len(cameras)):
        while not slots.acquire(timeout=0.5):
            abandon_overdue()
        with lock:
            running[index] = time.monotonic() + hard_limit(cameras[index], args.timeout)
        threading.Thread(target=worker, args=(index,), daemon=True,
                         name=f'focus_fleet-{index}').start()
    while True:
        with lock:
            if not running:
                break
        time.sleep(0.2)
        abandon_overdue()
    return results


RANK = {WORSE: 0, UNREACHABLE: 1, SCENE: 3, INCOMPARABLE: 3, NEW: 4, SAME: 4, BETTER: 4}


def worst_first(results):
    def key(r):
        rank = RANK.get(r.status, 4)
        if rank == 4 and r.verdict == image_verdict.BLURRY:
            rank = 2
        return (rank, r.change if r.change is not None else 0.0,
                -(r.blur_effect if r.blur_effect is not None else 0.0), r.name)
    return sorted(results, key=key)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='focus_fleet', description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('urls', nargs='*', help='camera URLs: rtsp://..., http(s)://... '
                                                '(snapshot or MJPEG, told apart by the answer)')
    parser.add_argument('--file', action='append', help='file of camera URLs, one a line '
                                                        '(URL [name]); may repeat')
    parser.add_argument('--hosts', help='addresses to try: 10.0.0.5, 10.0.0.5-20, 10.0.0.0/28, '
                                        f'comma-separated (at most {fleet_targets.MAX_HOSTS})')
    parser.add_argument('--make', help='URL templates for --hosts/--discover: '
                                       f'{", ".join(fleet_targets.TEMPLATES)} (comma-separated)')
    parser.add_argument('--template', action='append',
                        help="own URL template, e.g. 'http://{host}:{port}/snap.jpg'; may repeat")
    parser.add_argument('--rtsp-ports', default='554', help='ports for RTSP templates')
    parser.add_argument('--http-ports', default='80', help='ports for HTTP templates')
    parser.add_argument('--discover', type=float, nargs='?', const=3.0, metavar='SECONDS',
                        help='also find ONVIF cameras by WS-Discovery on the local network '
                             '(multicast; waits SECONDS, default 3)')
    parser.add_argument('--credentials', help='netrc file: machine HOST login USER password PW '
                        f'(else {fleet_targets.USER_ENV}/{fleet_targets.PASSWORD_ENV})')
    parser.add_argument('-o', '--out', default='focus_fleet', help='folder for the reports')
    parser.add_argument('--baseline-file', help='baselines (default: OUT/baseline.json)')
    parser.add_argument('--baseline', action='store_true',
                        help='store this run as every reached camera\'s baseline')
    parser.add_argument('--drift', type=float, default=0.3,
                        help=f'WORSE when {DRIFT_MEASURE} fell by more than this fraction of '
                             'the baseline (default 0.3)')
    parser.add_argument('--blur-rise', type=float, default=0.05,
                        help='... and blur_effect rose by at least this (default 0.05; 0 '
                             'judges by the measure alone)')
    parser.add_argument('--insecure', action='store_true',
                        help='do not verify HTTPS certificates (cameras\' are self-signed)')
    parser.add_argument('--frames', type=int, default=3, help='frames per camera (default 3)')
    parser.add_argument('--interval', type=float, default=0.2,
                        help='seconds between snapshot requests')
    parser.add_argument('--timeout', type=float, default=10.0,
                        help='seconds per camera URL (connect, read, all frames)')
    parser.add_argument('--parallel', type=int, default=8,
                        help='cameras probed at once (connections open at once)')
    parser.add_argument('--fail-on-unreachable', action='store_true',
                        help='exit 3 when a camera could not be reached')
    parser.add_argument('--quiet', action='store_true', help='no per-camera progress lines')
    args = parser.parse_args(argv)
    if not 0 < args.drift < 1:
        parser.error('--drift is a fraction between 0 and 1')
    if not 0 <= args.blur_rise < 1:
        parser.error('--blur-rise: 0 <= value < 1 (blur_effect runs from 0 to 1)')
    if not 1 <= args.frames <= 100:
        parser.error('--frames: 1..100')
    if not 1 <= args.parallel <= 256:
        parser.error('--parallel: 1..256')
    if not args.timeout > 0:
        parser.error('--timeout must be positive')
    try:
        credentials = fleet_targets.CredentialStore(args.credentials)
        cameras = collect_cameras(args)
    except TargetError as error:
        parser.error(str(error))
    if not cameras:
        parser.error('no camera named: give URLs, --file, --hosts with --make/--template, '
                     'or --discover')
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    baseline_path = pathlib.Path(args.baseline_file) if args.baseline_file \
        else out / 'baseline.json'
    try:
        stored = load_baseline(baseline_path)
    except TargetError as error:
        print(f'focus_fleet: {error}', file=sys.stderr)
        return 2

    results = run(cameras, args, credentials, out)
    for result in results:
        compare(result, None if args.baseline else stored.get(result.name), args.drift,
                args.blur_rise)
        if result.reachable and (args.baseline or result.status == NEW) \
                and result.sharpness is not None:
            stored[result.name] = baseline_entry(result)
            if args.baseline:
                result.status = NEW
            result.note = (result.note + '; ' if result.note else '') + 'baseline stored'
    store_baseline(baseline_path, stored)
    ordered = worst_first(results)
    rule = image_verdict.rule_text()
    fleet_report.write_csv(out / 'fleet.csv', ordered)
    fleet_report.write_json(out / 'fleet.json', ordered, rule, args.drift, DRIFT_MEASURE,
                            args.blur_rise)
    fleet_report.write_html(out / 'report.html', ordered, rule, args.drift, DRIFT_MEASURE,
                            args.blur_rise)

    counts = {s: sum(r.status == s for r in results) for s in (WORSE, UNREACHABLE)}
    blurry = sum(r.reachable and r.verdict == image_verdict.BLURRY for r in results)
    print(f'{len(results)} cameras: {counts[WORSE]} WORSE, {counts[UNREACHABLE]} unreachable, '
          f'{blurry} BLURRY; wrote {out / "report.html"}, {out / "fleet.csv"}, '
          f'{out / "fleet.json"}')
    if counts[WORSE]:
        return 1
    if args.fail_on_unreachable and counts[UNREACHABLE]:
        return 3
    return 0


def result_dict(result: Result) -> dict:
    return asdict(result)


if __name__ == '__main__':
    sys.exit(main())
