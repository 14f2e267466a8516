"""focus_analyze on the shipped sweep bag, image folders, videos and broken inputs."""
import csv
import pathlib

import cv2
import numpy as np
import pytest

from autofocus.core import measures
from autofocus.tools import analyze

from autofocus.io import bags

SWEEP_BAG = pathlib.Path(__file__).parent / 'data' / 'focus-sweep-xp005' / 'sweep'


def _rows(out):
    with open(out / 'focus.csv', newline='') as stream:
        return list(csv.DictReader(stream))


def _stack(folder, blurs=(0, 1, 2, 4, 8)):
    """focus_<i>.png images of one scene, blurred more and more."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40), np.uint8)
    scene = cv2.resize(small, (320, 240), interpolation=cv2.INTER_NEAREST)
    names = []
    for i, blur in enumerate(blurs):
        image = cv2.GaussianBlur(scene, (0, 0), blur) if blur else scene
        names.append(f'focus_{i * 10}.png')
        cv2.imwrite(str(folder / names[-1]), image)
    return names


def test_the_sweep_bag_peaks_near_the_known_focus(tmp_path):
    out = tmp_path / 'out'
    assert analyze.main([str(SWEEP_BAG), '-o', str(out), '--measures',
                         'laplacian_variance,tenengrad', '--no-progress']) == 0
    rows = _rows(out)
    assert len(rows) == 131
    assert all(r['position'] != '' and r['time'] != '' for r in rows)
    best = max(rows, key=lambda r: float(r['laplacian_variance']))
    assert -55 <= float(best['position']) <= -40  # the source reports ~-49
    assert {r['verdict'] for r in rows} == {'CLEAR', 'BLURRY'}
    assert best['verdict'] == 'CLEAR'
    black = [r for r in rows if float(r['position']) <= -106]
    assert all(r['verdict'] == 'BLURRY' for r in black)
    png = (out / 'focus_curve.png').read_bytes()
    assert png.startswith(b'\x89PNG')
    report = (out / 'report.txt').read_text()
    assert 'CLEAR (' in report and 'BLURRY (' in report and 'position -4' in report


def test_bad_inputs_are_named_and_skipped(tmp_path, capsys):
    names = _stack(tmp_path / 'stack')
    photo = np.random.default_rng(2).integers(0, 256, (200, 200, 3), np.uint8)
    jpg = cv2.imencode('.jpg', photo)[1].tobytes()
    # Truncated: OpenCV still decodes the first half (grey below), the missing end marker
    # gives it away.
    (tmp_path / 'stack' / 'focus_99.jpg').write_bytes(jpg[:len(jpg) // 2])
    (tmp_path / 'stack' / 'focus_98.png').write_bytes(b'not a png at all')
    (tmp_path / 'broken.mp4').write_bytes(b'\x00' * 100)
    other = tmp_path / 'other_bag'
    with bags.BagWriter(other) as writer:  # a bag without the image topic
        writer.add_topic('/sharpness', 'std_msgs/msg/Float64')
    out = tmp_path / 'out'
    assert analyze.main([str(tmp_path / 'stack'), str(tmp_path / 'broken.mp4'), str(other),
                         str(tmp_path / 'missing'), '-o', str(out), '--no-progress']) == 0
    rows = _rows(out)
    assert [r['name'] for r in rows] == names
    report = (out / 'report.txt').read_text()
    err = capsys.readouterr().err
    for text in ('focus_99.jpg: truncated JPEG', 'focus_98.png: not a readable image',
                 'broken.mp4: cannot open the video',
                 'other_bag: no topic /camera/image_raw', 'missing: no such file'):
        assert text in report and text in err
    assert 'SKIPPED (5)' in report
    # Positions from the names; the sharpest (unblurred) image is the best one.
    assert [float(r['position']) for r in rows] == [0, 10, 20, 30, 40]
    assert rows[0]['verdict'] == 'CLEAR' and rows[-1]['verdict'] == 'BLURRY'


def test_threshold_calibrated_from_labelled_examples(tmp_path):
    names = _stack(tmp_path / 'stack', blurs=(0, 0.6, 1, 3, 6, 10))
    labels = tmp_path / 'labels.csv'
    # Examples by frame name (in the inputs) and by file path (outside them).
    extra = tmp_path / 'examples'
    _stack(extra, blurs=(0.3, 8))
    labels.write_text('file,label\n'
                      f'{names[0]},CLEAR\n{names[1]},CLEAR\n{names[4]},BLURRY\n'
                      f'examples/focus_0.png,clear\nexamples/focus_10.png,BLURRY\n')
    out = tmp_path / 'out'
    assert analyze.main([str(tmp_path / 'stack'), '-o', str(out), '--labels', str(labels),
                         '--no-progress']) == 0
    verdicts = [r['verdict'] for r in _rows(out)]
    assert verdicts[:2] == ['CLEAR', 'CLEAR'] and verdicts[4:] == ['BLURRY', 'BLURRY']
    assert 'calibrated from' in (out / 'report.txt').read_text()
    assert '100% of the examples right' in (out / 'report.txt').read_text()


def test_calibrate_picks_a_separating_threshold():
    threshold, accuracy = analyze.calibrate([(10, 'BLURRY'), (20, 'BLURRY'), (80, 'CLEAR'),
                                             (100, 'CLEAR')])
    assert 20 < threshold < 80 and accuracy == 1.0
    with pytest.raises(ValueError):
        analyze.calibrate([(1, 'CLEAR')])


def test_a_video_is_plotted_against_time(tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (160, 120))
    rng = np.random.default_rng(1)
    scene = cv2.resize(rng.integers(0, 256, (15, 20, 3), np.uint8), (160, 120),
                       interpolation=cv2.INTER_NEAREST)
    for blur in (6, 3, 0.1, 3, 6):
        writer.write(cv2.GaussianBlur(scene, (0, 0), blur))
    writer.release()
    out = tmp_path / 'out'
    assert analyze.main([str(video), '-o', str(out), '--threshold', '1e9',
                         '--no-progress']) == 0
    rows = _rows(out)
    assert [float(r['time']) for r in rows] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert all(r['position'] == '' and r['verdict'] == 'BLURRY' for r in rows)
    best = max(rows, key=lambda r: float(r[measures.DEFAULT_MEASURE]))   # the default column
    assert best['name'] == 'frame 2'
    assert analyze.x_axis([analyze.Frame('v', 'a', time=5.0), analyze.Frame('v', 'b', 5.5)]) \
        == ('time (s)', [0.0, 0.5])


SMEAR = pathlib.Path(__file__).parent / 'data' / 'defocus-series-sharpeval' / 'smear'
TOOLS = pathlib.Path(__file__).parent / 'data' / 'defocus-series-sharpeval' / 'tools'


def test_an_all_blurry_folder_is_blurry_by_default(tmp_path):
    folder = tmp_path / 'parked'
    folder.mkdir()
    for d in (4, 5, 6, -7, -8, 9):
        (folder / f'{d}.png').write_bytes((SMEAR / f'{d}.png').read_bytes())
    out = tmp_path / 'out'
    assert analyze.main([str(folder), '-o', str(out), '--no-progress']) == 0
    rows = _rows(out)
    assert [r['verdict'] for r in rows] == ['BLURRY'] * 6
    assert all(float(r['blur_effect']) > 0.5 and 'blur_effect' in r['reason'] for r in rows)
    assert 'rule: per image: CLEAR when skimage blur_effect <=' in \
        (out / 'report.txt').read_text()
    # The old relative rule calls half of them CLEAR, and says why that is weak.
    assert analyze.main([str(folder), '-o', str(out), '--relative', '0.5',
                         '--no-progress']) == 0
    assert sum(r['verdict'] == 'CLEAR' for r in _rows(out)) >= 3
    assert 'relative to this run' in (out / 'report.txt').read_text()


def test_sub_folders_are_series_of_their_own_ordered_by_signed_number(tmp_path):
    top = tmp_path / 'shoot'
    (top / 'smear').mkdir(parents=True)
    (top / 'more' / 'tools').mkdir(parents=True)
    for path in SMEAR.glob('*.png'):
        (top / 'smear' / path.name.replace('.png', '.bmp')).write_bytes(
            cv2.imencode('.bmp', cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))[1].tobytes())
    for path in TOOLS.glob('*.png'):
        (top / 'more' / 'tools' / path.name).write_bytes(path.read_bytes())
    out = tmp_path / 'out'
    assert analyze.main([str(top), '-o', str(out), '--no-progress']) == 0
    rows = _rows(out)
    smear = [r for r in rows if r['source'] == str(top / 'smear')]
    tools = [r for r in rows if r['source'] == str(top / 'more' / 'tools')]
    assert len(smear) == 19 and len(tools) == 6 and len(rows) == 25
    assert [r['name'] for r in smear] == [f'{d}.bmp' for d in range(-9, 10)]
    assert [r['name'] for r in tools] == [f'{d}.png' for d in range(6)]
    clear = {r['name'] for r in smear if r['verdict'] == 'CLEAR'}
    assert '0.bmp' in clear and clear <= {'-1.bmp', '0.bmp', '1.bmp', '-2.bmp', '2.bmp'}
    assert tools[0]['verdict'] == 'CLEAR' and tools[-1]['verdict'] == 'BLURRY'
    # One panel per series: the figure grows with the number of series.
    two = cv2.imread(str(out / 'focus_curve.png'))
    assert analyze.main([str(top / 'smear'), '-o', str(tmp_path / 'one'),
                         '--no-progress']) == 0
    one = cv2.imread(str(tmp_path / 'one' / 'focus_curve.png'))
    assert two.shape[0] > 1.5 * one.shape[0]
    empty = tmp_path / 'empty' / 'deeper'
    empty.mkdir(parents=True)
    assert analyze.main([str(tmp_path / 'empty'), str(top / 'smear'), '-o', str(out),
                         '--no-progress']) == 0
    assert 'empty: no image files' in (out / 'report.txt').read_text()


def test_a_bag_recorded_with_the_lens_parked_out_of_focus_is_blurry(tmp_path):
    exposure = pathlib.Path(__file__).parent / 'data' / 'defocus-exposure-sharpeval' / 'tools'
    frames = [(f'f{i}', cv2.imread(str(exposure / f'{d}_40.png')), None)
              for i, d in enumerate((6, 7, 8, 9, 7, 6))]
    bag = tmp_path / 'parked'
    bags.frames_to_bag(frames, bag, log=lambda *_: None)
    out = tmp_path / 'out'
    assert analyze.main([str(bag), '-o', str(out), '--no-progress']) == 0
    rows = _rows(out)
    assert len(rows) == 6 and {r['verdict'] for r in rows} == {'BLURRY'}
    # A sharp frame in the same bag would be CLEAR: the verdict does not need one.
    frames.append(('sharp', cv2.imread(str(exposure / '0_40.png')), None))
    bags.frames_to_bag(frames, tmp_path / 'mixed', log=lambda *_: None)
    assert analyze.main([str(tmp_path / 'mixed'), '-o', str(out), '--no-progress']) == 0
    assert [r['verdict'] for r in _rows(out)] == ['BLURRY'] * 6 + ['CLEAR']
