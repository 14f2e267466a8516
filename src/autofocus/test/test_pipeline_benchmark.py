"""The pipeline benchmark's arithmetic, and a short real run of each of its parts."""
import pathlib

import pytest

from autofocus.core import measures
from autofocus.tools import pipeline_benchmark as bench

MS = 1_000_000


def test_window_counts_frames_by_stamp_between_two_camera_reports():
    # Camera reports: (arrival, frames published so far, last stamp, cpu seconds so far).
    camera = [(0, 10, 100 * MS, 1.0), (1000 * MS, 40, 1100 * MS, 1.3),
              (2000 * MS, 70, 2100 * MS, 1.6)]
    stamps = [100 * MS + i * 33 * MS for i in range(1, 61)]
    metrics = [(s, s + 2 * MS) for s in stamps if s != stamps[5]]   # one frame lost
    figures = bench.window_figures(metrics, camera)
    assert figures['published'] == 60
    assert figures['delivered_pct'] == pytest.approx(100 * 59 / 60)
    assert figures['latency_med_ms'] == pytest.approx(2.0)
    assert figures['rate_hz'] == pytest.approx(30.0)
    assert figures['cpu_ms_per_frame'] == pytest.approx(10.0)
    # A window that starts after the first report leaves it out.
    assert bench.window_figures(metrics, camera, start_ns=500 * MS)['published'] == 30
    assert bench.window_figures(metrics, camera[:1]) == {}


def test_targets_are_checked_against_the_measured_rows():
    dds = [{'size': '640x480', 'rate': '30 Hz', 'layout': 'two processes', 'transport': 'raw',
            'delivered_pct': 99.0, 'latency_med_ms': 2.0, 'target_latency_ms': 3.0}]
    costs = [{'size': '1920x1080', 'what': measures.DEFAULT_MEASURE, 'region': 'roi /1',
              'x_floor': 6.0}]
    lines = bench.check_targets(costs, dds)
    assert lines == [
        '- [ ] two processes raw 640x480 at 30 Hz: 99.0% of frames delivered (target 100%)',
        '- [x] two processes 640x480 30 Hz: median latency 2.00 ms <= 1.5 x (bare pair + '
        'measures) = 3.00 ms',
        f'- [ ] {measures.DEFAULT_MEASURE} on the default ROI at 1080p: 6.00x the floor '
        '(target <= 5x)']


def test_costs_are_ratios_to_the_floor_and_the_naive_idiom():
    rows = bench.measure_costs(['640x480'], min_seconds=0.01)
    by_what = {(r['what'], r['region']): r for r in rows}
    assert by_what[('floor: one copy of the frame', 'full')]['x_floor'] == 1.0
    for name in bench.measures.MEASURES:
        roi = by_what[(name, f'roi /{bench.NODE_DOWNSAMPLE}')]
        assert roi['ms'] > 0 and roi['x_naive'] == pytest.approx(
            roi['ms'] / by_what[('naive: cv2.Laplacian(gray, CV_64F).var()', 'full')]['ms'])
    jpeg = by_what[('camera: JPEG encode q80', 'full')]
    assert 0 < jpeg['kib_per_frame'] < 640 * 480 * 3 / 1024


def test_camera_to_sharpness_and_the_bare_pair_really_run(tmp_path):
    probe = bench.Probe()
    try:
        nodes = bench.run_pipeline('two processes', '640x480', 30.0, 2.5, pathlib.Path(tmp_path),
                                   probe)
    finally:
        probe.close()
    assert nodes['published'] >= 30
    assert nodes['delivered_pct'] > 50.0
    assert 0.0 < nodes['latency_med_ms'] < 1000.0
    bare = bench.run_bare_pair('640x480', 30.0, 1.0, pathlib.Path(tmp_path))
    assert bare['published'] == 30
    assert 0.0 < bare['latency_med_ms'] < 1000.0 and bare['delivered_pct'] > 50.0
