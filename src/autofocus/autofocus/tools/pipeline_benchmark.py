"""Benchmark the frame path: what a sharpness value costs, and how fast frames reach it.

Usage: ``python -m autofocus.tools.pipeline_benchmark [--quick] [--seconds S] [--long-run S]``
(``scripts/pipeline_benchmark.sh`` or ``ros2 run autofocus pipeline_benchmark``).

One run measures, on this machine and in the same run:

1. **Cost per frame** of every focus measure at 640x480, 1280x720 and 1920x1080, on the
   node's path (bgr8 message -> grey ROI -> area downsample -> measure) with the default
   ROI and downsample, and on the full frame at downsample 1. Each is a ratio to the
   physical floor (one copy of the frame's bytes) and to the naive
   ``cv2.Laplacian(gray, cv2.CV_64F).var()`` on the full grey frame. JPEG rows give the
   compressed transport's bytes per frame and its encode and decode costs.
2. **Camera -> sharpness over DDS** in two processes (the `camera` node playing a 1080p or
   480p MJPG video, the `sharpness` node with the shipped config/autofocus.yaml), at 30 Hz
   and as fast as the camera goes: frames delivered, latency from the image stamp to the
   arrival of its FocusMetrics here, and CPU per frame of both processes. Against a bare
   rclpy publisher/subscriber pair moving the same images with the same QoS, and
3. the same two nodes composed in one process (`camera_sharpness`), and the compressed
   transport.
4. **jpeg_bytes**: the JPEG's own byte count over the ROI's MCU rows as a focus measure
   (no decode): its cost (a row of 1.) and its accuracy against the decoded measures over
   a simulated and the real fpd sweep (:mod:`autofocus.tools.jpeg_bytes_study`).

``--long-run S`` adds one run of S seconds at 1080p30 in the recommended layout and reports
latency per minute and the resident memory of each process at its start and end.

Frames delivered are counted exactly: the camera's /diagnostics carry its count of published
frames and the stamp of the last one, so the frames published between two diagnostics are
known by stamp. Latency is the FocusMetrics `latency` field: image stamp to the metrics'
publication, on the sharpness node's clock; the bare pair's subscriber measures stamp to
arrival.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

from autofocus.core import measures
from autofocus.io import image_codec, jpeg_bytes

SIZES = {'640x480': (640, 480), '1280x720': (1280, 720), '1920x1080': (1920, 1080)}
DDS_SIZES = ('640x480', '1920x1080')
NODE_DOWNSAMPLE = measures.DEFAULT_DOWNSAMPLE   # the sharpness node's default
JPEG_QUALITY = 80            # the camera node's default
VIDEO_FRAMES = 30
MAX_RATE = 1000.0            # the camera node's highest fps: "as fast as it goes"
DEFAULT_OUT = 'benchmark_results'
DEFAULT_DOMAIN_ID = 84       # not 0: the nodes are named camera and sharpness, like a live graph
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


# ---------------------------------------------------------------- frames and timing

def synthetic_frames(width: int, height: int, count: int, seed: int = 0) -> list:
    """Textured BGR frames at several scales, each defocused differently (like a sweep)."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3),
                                     dtype=np.uint8), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    fine = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    scene = cv2.addWeighted(coarse, 0.6, fine, 0.4, 0)
    frames = []
    for i in range(count):
        sigma = 0.3 + 3.0 * abs(i / max(1, count - 1) - 0.5)
        frames.append(cv2.GaussianBlur(scene, (0, 0), sigma))
    return frames


def seconds_per_call(function, min_seconds: float = 0.2, min_calls: int = 5) -> float:
    """Median wall time of one call, over batches that each last long enough to time."""
    function()                                   # warm caches and lazy initialisation
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    batch = max(1, int(0.02 / once))
    samples = []
    deadline = time.perf_counter() + min_seconds
    while len(samples) < min_calls or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            function()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def node_path(msg, names, roi=measures.DEFAULT_ROI, downsample=NODE_DOWNSAMPLE,
              decode=image_codec.gray_roi):
    """What the sharpness node does with an image (decode: gray_roi for raw,
    compressed_gray_roi for JPEG), without the middleware."""
    gray, _, _, left = decode(msg, roi, downsample)
    return measures.evaluate(gray, names, left)


def _jpeg_full_decode(msg, roi, downsample):
    return image_codec.compressed_gray_roi(msg, roi, downsample, reduced_decode=False)


def configured_measures() -> list:
    """The measures of the shipped config/autofocus.yaml (what the DDS runs compute)."""
    import yaml
    with open(shipped_config()) as file:
        config = yaml.safe_load(file)
    return list(config['/**/sharpness']['ros__parameters']['measures'])


def shipped_config() -> str:
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory('autofocus'), 'config', 'autofocus.yaml')


# ---------------------------------------------------------------- 1. cost per frame

def measure_costs(sizes, min_seconds: float) -> list:
    from sensor_msgs.msg import CompressedImage, Image
    rows = []
    for size in sizes:
        width, height = SIZES[size]
        frame = synthetic_frames(width, height, 3)[1]
        msg = image_codec.fill_image_msg(Image(), frame)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        target = np.empty_like(frame)
        floor = seconds_per_call(lambda: np.copyto(target, frame), min_seconds)
        naive = seconds_per_call(lambda: cv2.Laplacian(gray, cv2.CV_64F).var(), min_seconds)

        def row(what, region, seconds, **extra):
            rows.append({'size': size, 'what': what, 'region': region,
                         'ms': seconds * 1e3, 'x_floor': seconds / floor,
                         'x_naive': seconds / naive, **extra})
        row('floor: one copy of the frame', 'full', floor)
        row('naive: cv2.Laplacian(gray, CV_64F).var()', 'full', naive)
        row('camera: fill sensor_msgs/Image', 'full',
            seconds_per_call(lambda: image_codec.fill_image_msg(Image(), frame), min_seconds))
        for name in measures.MEASURES:
            row(name, f'roi /{NODE_DOWNSAMPLE}', seconds_per_call(
                lambda: node_path(msg, [name]), min_seconds))
            row(name, 'full /1', seconds_per_call(
                lambda: node_path(msg, [name], (0.0, 0.0, 1.0, 1.0), 1), min_seconds))
        configured = configured_measures()
        row(f'node config ({len(configured)} measures)', f'roi /{NODE_DOWNSAMPLE}',
            seconds_per_call(lambda: node_path(msg, configured), min_seconds))
        jpeg = image_codec.fill_compressed_msg(CompressedImage(), frame, JPEG_QUALITY)
        kib = len(jpeg.data) / 1024
        row(f'camera: JPEG encode q{JPEG_QUALITY}', 'full', seconds_per_call(
            lambda: image_codec.fill_compressed_msg(CompressedImage(), frame, JPEG_QUALITY),
            min_seconds), kib_per_frame=kib)
        row('sharpness: JPEG decode + laplacian_variance', f'roi /{NODE_DOWNSAMPLE}',
            seconds_per_call(lambda: node_path(jpeg, ['laplacian_variance'],
                                               decode=_jpeg_full_decode), min_seconds),
            kib_per_frame=kib)
        row('sharpness: JPEG 1/2-size decode + laplacian_variance', f'roi /{NODE_DOWNSAMPLE}',
            seconds_per_call(lambda: node_path(jpeg, ['laplacian_variance'],
                                               decode=image_codec.compressed_gray_roi),
                             min_seconds), kib_per_frame=kib)
        rows[-1]['raw_kib_per_frame'] = frame.nbytes / 1024
        roi_px = measures.roi_pixels(width, height, measures.DEFAULT_ROI)
        row('sharpness: jpeg_bytes (no decode)', 'roi rows', seconds_per_call(
            lambda: jpeg_bytes.jpeg_bytes(jpeg.data, roi_px), min_seconds), kib_per_frame=kib)
    return rows


# ---------------------------------------------------------------- processes

def _executable(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_prefix
    return os.path.join(get_package_prefix(package), 'lib', package, name)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    with open(f'/proc/{pid}/stat') as file:
        fields = file.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    with open(f'/proc/{pid}/status') as file:
        for line in file:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


class Processes(contextlib.AbstractContextManager):
    """Start commands in their own sessions; stop them all with SIGINT (then SIGKILL)."""

    def __init__(self, log_dir: pathlib.Path):
        self.log_dir = log_dir
        self.running = []

    def start(self, name: str, command: list, **kwargs) -> subprocess.Popen:
        log = open(self.log_dir / f'{name}-{len(self.running)}.log', 'wb')
        process = subprocess.Popen(command, stdout=kwargs.pop('stdout', log), stderr=log,
                                   start_new_session=True, **kwargs)
        process.log_path = log.name
        self.running.append(process)
        return process

    def stop(self, process, timeout: float = 10.0) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __exit__(self, *exc):
        for process in self.running:
            self.stop(process)
        self.running.clear()


class Probe:
    """This process's rclpy node: FocusMetrics arrivals and the camera's diagnostics."""

    def __init__(self):
        import rclpy
        from autofocus_interfaces.msg import FocusMetrics
        from diagnostic_msgs.msg import DiagnosticArray
        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('pipeline_probe', context=self.context)
        self.metrics = []            # (stamp ns, publication ns)
        self.camera = []             # (arrival ns, frames published, last stamp ns, cpu s)
        self.pids = ()
        self.node.create_subscription(FocusMetrics, '/sharpness/metrics', self._on_metrics, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_metrics(self, msg):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.metrics.append((stamp, stamp + int(msg.latency * 1e9)))

    def _on_diagnostics(self, msg):
        arrival = time.time_ns()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if 'last_frame_stamp' in values:
                sec, nsec = values['last_frame_stamp'].split('.')
                cpu = sum(cpu_seconds(pid) for pid in self.pids)
                self.camera.append((arrival, int(values['frames_published']),
                                    int(sec) * 10**9 + int(nsec), cpu))

    def reset(self, pids):
        self.pids = tuple(pids)
        self.metrics.clear()
        self.camera.clear()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _percentile(values, q):
    return float(np.percentile(values, q)) if len(values) else float('nan')


def window_figures(metrics, camera, start_ns=None, end_ns=None) -> dict:
    """Delivery, latency and CPU between the first and last camera diagnostics in a window."""
    window = [c for c in camera if (start_ns is None or c[0] >= start_ns)
              and (end_ns is None or c[0] <= end_ns)]
    if len(window) < 2:
        return {}
    first, last = window[0], window[-1]
    published = last[1] - first[1]
    latencies = [(sent - stamp) / 1e6 for stamp, sent in metrics
                 if first[2] < stamp <= last[2]]
    seconds = (last[0] - first[0]) / 1e9
    return {'published': published, 'delivered_pct': 100.0 * len(latencies) / max(published, 1),
            'rate_hz': published / seconds,
            'latency_med_ms': _percentile(latencies, 50), 'latency_p95_ms':
            _percentile(latencies, 95),
            'cpu_ms_per_frame': 1e3 * (last[3] - first[3]) / max(published, 1)}


def run_pipeline(layout: str, size: str, rate: float, seconds: float, work: pathlib.Path,
                 probe: Probe, transport: str = 'raw', long_run=False) -> dict:
    """Camera (video file) -> sharpness, layout 'two processes' or 'composed'; figures of a
    window."""
    import yaml
    width, height = SIZES[size]
    video = work / f'{size}.avi'
    if not video.exists():
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 30.0,
                                 (width, height))
        for frame in synthetic_frames(width, height, VIDEO_FRAMES):
            writer.write(frame)
        writer.release()
    overrides = work / f'{layout}-{size}-{rate:g}-{transport}.yaml'
    overrides.write_text(yaml.safe_dump({
        '/**/camera': {'ros__parameters': {'source': str(video), 'width': width,
                                           'height': height, 'fps': rate}},
        '/**/sharpness': {'ros__parameters': {'image_transport': transport}}}))
    ros_args = ['--ros-args', '--params-file', shipped_config(), '--params-file', str(overrides)]
    with Processes(work) as processes:
        if layout == 'composed':
            started = [processes.start('camera_sharpness', [
                _executable('autofocus', 'camera_sharpness'), *ros_args])]
        else:
            started = [processes.start('sharpness', [_executable('autofocus', 'sharpness'),
                                                     *ros_args]),
                       processes.start('camera', [_executable('autofocus', 'camera'),
                                                  *ros_args])]
        probe.reset(p.pid for p in started)
        if not _wait(lambda: len(probe.metrics) >= 10, 30.0):
            logs = '\n'.join(pathlib.Path(p.log_path).read_text()[-2000:] for p in started)
            raise RuntimeError(f'no metrics from {layout} {size}:\n{logs}')
        time.sleep(2.0)                        # discovery and caches settle
        start_ns = time.time_ns()
        rss_start = [rss_mib(p.pid) for p in started]
        if not long_run:
            time.sleep(seconds)
            return window_figures(probe.metrics, probe.camera, start_ns)
        minutes = []
        for minute in range(max(1, int(seconds // 60))):
            minute_start = time.time_ns()
            time.sleep(60.0)
            minutes.append(window_figures(probe.metrics, probe.camera, minute_start))
        return {'whole': window_figures(probe.metrics, probe.camera, start_ns),
                'minutes': minutes, 'rss_start_mib': rss_start,
                'rss_end_mib': [rss_mib(p.pid) for p in started],
                'processes': [pathlib.Path(p.args[0]).name for p in started]}


def run_bare_pair(size: str, rate: float, seconds: float, work: pathlib.Path) -> dict:
    """A bare rclpy publisher and subscriber, two processes, the same images and QoS."""
    count = max(30, int(rate * seconds))
    common = [sys.executable, '-m', 'autofocus.tools.pipeline_benchmark']
    with Processes(work) as processes:
        subscriber = processes.start('bare-subscriber', [*common, 'bare-subscriber',
                                                         '--count', str(count)],
                                     stdout=subprocess.PIPE)
        publisher = processes.start('bare-publisher', [*common, 'bare-publisher', '--size', size,
                                                       '--rate', str(rate), '--count',
                                                       str(count)], stdout=subprocess.PIPE)
        published = json.loads(publisher.communicate(timeout=seconds * 4 + 60)[0])
        time.sleep(0.5)
        subscriber.send_signal(signal.SIGINT)
        received = json.loads(subscriber.communicate(timeout=30)[0])
    latencies = received['latencies_ms']
    return {'published': published['published'],
            'delivered_pct': 100.0 * len(latencies) / published['published'],
            'rate_hz': published['published'] / published['seconds'],
            'latency_med_ms': _percentile(latencies, 50),
            'latency_p95_ms': _percentile(latencies, 95),
            'cpu_ms_per_frame': 1e3 * (published['cpu_s'] + received['cpu_s'])
            / published['published']}


def _bare_node(name: str):
    import rclpy
    rclpy.init()
    return rclpy, rclpy.create_node(name)


def bare_publisher(size: str, rate: float, count: int) -> int:
    from sensor_msgs.msg import Image

    from autofocus.io.capture import RatePacer
    from autofocus.nodes.node_tools import IMAGE_QOS
    rclpy, node = _bare_node('bare_publisher')
    width, height = SIZES[size]
    images = [image_codec.fill_image_msg(Image(), f) for f in synthetic_frames(width, height, 5)]
    publisher = node.create_publisher(Image, '/bare/image_raw', IMAGE_QOS)
    deadline = time.monotonic() + 30.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    pacer = RatePacer(rate)
    for i in range(-30, count):              # 30 frames of warm-up, then the measured ones
        if i == 0:
            cpu, start = time.process_time(), time.monotonic()
        image = images[i % len(images)]
        image.header.frame_id = str(i)
        image.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(image)
        pacer.wait()
    print(json.dumps({'published': count, 'cpu_s': time.process_time() - cpu,
                      'seconds': time.monotonic() - start}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def bare_subscriber(count: int) -> int:
    from sensor_msgs.msg import Image

    from autofocus.nodes.node_tools import IMAGE_QOS
    rclpy, node = _bare_node('bare_subscriber')
    latencies = []
    cpu = {}

    def on_image(msg):
        arrival = time.time_ns()
        index = int(msg.header.frame_id)
        if 0 <= index < count:
            cpu.setdefault('start', time.process_time())
            cpu['end'] = time.process_time()
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            latencies.append((arrival - stamp) / 1e6)
    node.create_subscription(Image, '/bare/image_raw', on_image, IMAGE_QOS)
    with contextlib.suppress(KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        rclpy.spin(node)
    print(json.dumps({'latencies_ms': latencies,
                      'cpu_s': cpu.get('end', 0.0) - cpu.get('start', 0.0)}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ---------------------------------------------------------------- report

def _fmt(value):
    if isinstance(value, float):
        if value != value:
            return 'n/a'
        return f'{value:.3g}' if abs(value) < 10 else f'{value:.1f}'
    return str(value)


def markdown(rows, columns) -> str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(_fmt(r.get(c, '')) for c in columns) + ' |' for r in rows]
    return '\n'.join(lines)


COST_COLUMNS = ('size', 'what', 'region', 'ms', 'x_floor', 'x_naive', 'kib_per_frame')
DDS_COLUMNS = ('size', 'rate', 'layout', 'transport', 'published', 'delivered_pct', 'rate_hz',
               'latency_med_ms', 'latency_p95_ms', 'cpu_ms_per_frame', 'target_latency_ms')


def check_targets(costs, dds) -> list:
    lines = []
    for row in dds:
        if row['rate'] == '30 Hz' and not row['layout'].startswith('bare'):
            ok = row['delivered_pct'] >= 100.0
            lines.append((ok, f"{row['layout']} {row['transport']} {row['size']} at 30 Hz: "
                              f"{row['delivered_pct']:.1f}% of frames delivered (target 100%)"))
        if 'target_latency_ms' in row:
            ok = row['latency_med_ms'] <= row['target_latency_ms']
            lines.append((ok, f"{row['layout']} {row['size']} {row['rate']}: median latency "
                              f"{row['latency_med_ms']:.2f} ms <= 1.5 x (bare pair + measures) "
                              f"= {row['target_latency_ms']:.2f} ms"))
    for row in costs:
        if row['size'] == '1920x1080' and row['what'] == measures.DEFAULT_MEASURE \
                and row['region'].startswith('roi'):
            lines.append((row['x_floor'] <= 5.0,
                          f"{row['what']} on the default ROI at 1080p: {row['x_floor']:.2f}x "
                          'the floor (target <= 5x)'))
    return [f"- [{'x' if ok else ' '}] {text}" for ok, text in lines]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == 'bare-publisher':
        parser = argparse.ArgumentParser(prog='bare-publisher')
        parser.add_argument('--size', choices=list(SIZES), required=True)
        parser.add_argument('--rate', type=float, required=True)
        parser.add_argument('--count', type=int, required=True)
        args = parser.parse_args(argv[1:])
        return bare_publisher(args.size, args.rate, args.count)
    if argv and argv[0] == 'bare-subscriber':
        parser = argparse.ArgumentParser(prog='bare-subscriber')
        parser.add_argument('--count', type=int, required=True)
        return bare_subscriber(parser.parse_args(argv[1:]).count)

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='measured window of each DDS run (default 10)')
    parser.add_argument('--long-run', type=float, default=0.0, metavar='SECONDS',
                        help='also run 1080p30 this long for latency and memory over time')
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 640x480 only, short windows')
    parser.add_argument('--out', default=DEFAULT_OUT, help='folder for the CSV and Markdown')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('ROS_DOMAIN_ID', DEFAULT_DOMAIN_ID)),
                        help='ROS_DOMAIN_ID of the runs: keep them away from a live graph '
                             f'(default: $ROS_DOMAIN_ID, else {DEFAULT_DOMAIN_ID})')
    args = parser.parse_args(argv)
    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    cost_sizes = ['640x480'] if args.quick else list(SIZES)
    dds_sizes = ['640x480'] if args.quick else list(DDS_SIZES)
    seconds = 2.0 if args.quick else args.seconds
    min_seconds = 0.05 if args.quick else 0.3
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    began = time.monotonic()

    print('measuring the cost of each focus measure ...', flush=True)
    costs = measure_costs(cost_sizes, min_seconds)
    print(markdown(costs, COST_COLUMNS), flush=True)
    configured_ms = {r['size']: r['ms'] for r in costs if r['what'].startswith('node config')}

    dds = []
    long_result = None
    with tempfile.TemporaryDirectory(prefix='autofocus-pipeline-') as tmp:
        work = pathlib.Path(tmp)
        probe = Probe()
        try:
            for size in dds_sizes:
                for rate in (30.0, MAX_RATE):
                    dds += dds_runs(size, rate, seconds, work, probe, configured_ms[size])
            print(markdown(dds, DDS_COLUMNS), flush=True)
            if args.long_run:
                layout = recommended_layout(dds)
                print(f'long run: 1080p30, {layout}, {args.long_run:g} s ...', flush=True)
                long_result = run_pipeline(layout, '1920x1080', 30.0, args.long_run, work,
                                           probe, long_run=True)
        finally:
            probe.close()

    info = (f'{time.strftime("%Y-%m-%d")}, {platform.node()} ({platform.machine()}, '
            f'{os.cpu_count()} CPUs, Python {platform.python_version()}), '
            f'{time.monotonic() - began:.0f} s')
    report = [f'Pipeline benchmark ({info})', '', '### Cost per frame', '',
              markdown(costs, COST_COLUMNS), '', '### Camera -> sharpness over DDS', '',
              markdown(dds, DDS_COLUMNS), '']
    if long_result:
        report += ['### Long run (1080p30)', '', long_run_text(long_result), '']
    from autofocus.tools import jpeg_bytes_study
    report += ['### jpeg_bytes against the decoded measures', '',
               jpeg_bytes_study.__doc__.split('\n\n', 2)[2].strip(), '',
               jpeg_bytes_study.markdown(jpeg_bytes_study.study()), '']
    report += ['### Targets', '', *check_targets(costs, dds)]
    text = '\n'.join(report)
    print('\n' + text)
    (out / 'pipeline_benchmark.md').write_text(text + '\n')
    with open(out / 'pipeline_benchmark.csv', 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=['table', *COST_COLUMNS, *DDS_COLUMNS[1:]],
                                extrasaction='ignore')
        writer.writeheader()
        writer.writerows({'table': 'cost', **r} for r in costs)
        writer.writerows({'table': 'dds', **r} for r in dds)
    print(f'\nwrote {out / "pipeline_benchmark.md"} and {out / "pipeline_benchmark.csv"}')
    return 0


def dds_runs(size, rate, seconds, work, probe, measures_ms) -> list:
    """Bare pair, two processes and composed (and compressed at 30 Hz) for one size and rate.

    As fast as possible, the camera's own rate is the limit (video decoding), so the bare
    pair then runs at the rate the camera reached: the same images at the same rate.
    """
    label = '30 Hz' if rate < MAX_RATE else 'max'
    runs = [('two processes', 'raw'), ('composed', 'raw')]
    if rate < MAX_RATE:
        runs.append(('two processes', 'compressed'))
    rows = []
    for layout, transport in runs:
        print(f'DDS {size} {label}: {layout} {transport} ...', flush=True)
        figures = run_pipeline(layout, size, rate, seconds, work, probe, transport)
        rows.append({'size': size, 'rate': label, 'layout': layout, 'transport': transport,
                     **figures})
    bare_rate = rate if rate < MAX_RATE else round(rows[0].get('rate_hz', 60.0))
    print(f'DDS {size} {label}: bare pair at {bare_rate:g} Hz ...', flush=True)
    bare = run_bare_pair(size, bare_rate, seconds, work)
    target = 1.5 * (bare['latency_med_ms'] + measures_ms)
    for row in rows:
        if row['transport'] == 'raw':
            row['target_latency_ms'] = target
    layout = 'bare rclpy pair' + ('' if rate < MAX_RATE else f' at {bare_rate:g} Hz')
    return [{'size': size, 'rate': label, 'layout': layout, 'transport': 'raw', **bare}, *rows]


def recommended_layout(dds) -> str:
    """The layout with the lower median latency at 1080p30 (two processes if unmeasured)."""
    rows = {r['layout']: r for r in dds if r['size'] == '1920x1080' and r['rate'] == '30 Hz'
            and r['transport'] == 'raw'}
    if 'composed' in rows and 'two processes' in rows and \
            rows['composed']['latency_med_ms'] < rows['two processes']['latency_med_ms']:
        return 'composed'
    return 'two processes'


def long_run_text(result) -> str:
    minutes = result['minutes']
    rows = [{'minute': i + 1, **m} for i, m in enumerate(minutes)]
    table = markdown(rows, ('minute', 'published', 'delivered_pct', 'latency_med_ms',
                            'latency_p95_ms', 'cpu_ms_per_frame'))
    memory = ', '.join(f'{name} {a:.0f} -> {b:.0f} MiB' for name, a, b in zip(
        result['processes'], result['rss_start_mib'], result['rss_end_mib']))
    whole = result['whole']
    return (f'{table}\n\nWhole run: {whole["published"]} frames, '
            f'{whole["delivered_pct"]:.2f}% delivered, median latency '
            f'{whole["latency_med_ms"]:.2f} ms. Resident memory (start -> end): {memory}.')


if __name__ == '__main__':
    sys.exit(main())
