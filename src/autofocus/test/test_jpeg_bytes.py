"""jpeg_bytes: sharpness from a JPEG's entropy-coded bytes, without decoding it."""
import types

import cv2
import numpy as np
import pytest

from autofocus.core import lens_sim, measures
from autofocus.io import image_codec, jpeg_bytes
from autofocus.tools import jpeg_bytes_study


def encoded(frame, quality=80):
    return image_codec.fill_compressed_msg(types.SimpleNamespace(), frame, quality).data


def half_textured(channels=3, right=False):
    """Flat grey with random texture in the bottom (or right) half."""
    rng = np.random.default_rng(4)
    frame = np.full((480, 640), 128, np.uint8)
    if right:
        frame[:, 320:] = rng.integers(0, 256, (480, 320), dtype=np.uint8)
    else:
        frame[240:, :] = rng.integers(0, 256, (240, 640), dtype=np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if channels == 3 else frame


@pytest.mark.parametrize('channels', [3, 1])
def test_the_rois_mcu_rows_are_counted_apart(channels):
    data = encoded(half_textured(channels))          # a restart marker per MCU row
    flat, in_roi = jpeg_bytes.jpeg_bytes(data, (0, 0, 640, 240))
    busy, _ = jpeg_bytes.jpeg_bytes(data, (100, 240, 300, 240))
    whole, framed = jpeg_bytes.jpeg_bytes(data)
    assert in_roi and not framed
    assert busy > 20 * flat and flat < whole < busy
    # Half the frame each: the two halves average to the whole (bytes per pixel).
    assert (flat + busy) / 2 == pytest.approx(whole, rel=0.02)
    # One run per row: columns are not told apart (the run is shared in proportion).
    left, _ = jpeg_bytes.jpeg_bytes(encoded(half_textured(channels, right=True)),
                                    (0, 0, 320, 480))
    assert left == pytest.approx(jpeg_bytes.jpeg_bytes(
        encoded(half_textured(channels, right=True)))[0])


def test_with_a_restart_marker_per_mcu_columns_are_counted_apart_too():
    ok, data = cv2.imencode('.jpg', half_textured(right=True), (
        cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_RST_INTERVAL, 1))
    flat, in_roi = jpeg_bytes.jpeg_bytes(data.tobytes(), (0, 0, 320, 480))
    busy, _ = jpeg_bytes.jpeg_bytes(data.tobytes(), (320, 0, 320, 480))
    assert in_roi and busy > 20 * flat


def test_without_restart_markers_the_whole_frame_is_counted():
    ok, plain = cv2.imencode('.jpg', half_textured(), (cv2.IMWRITE_JPEG_QUALITY, 80))
    value, in_roi = jpeg_bytes.jpeg_bytes(plain.tobytes(), (0, 0, 320, 480))
    assert not in_roi and value == jpeg_bytes.jpeg_bytes(plain.tobytes())[0]
    ok, progressive = cv2.imencode('.jpg', half_textured(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    value, in_roi = jpeg_bytes.jpeg_bytes(progressive.tobytes(), (0, 0, 320, 480))
    assert not in_roi and value == pytest.approx(len(progressive) / (640 * 480), rel=0.1)


@pytest.mark.parametrize('data, reason', [
    (b'\x89PNG\r\n\x1a\n' + b'\x00' * 40, 'unsupported_format'),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF', 'truncated'),
    (b'\xff\xd8\x12\x34' + b'\x00' * 20, 'bad_header'),
])
def test_what_is_not_a_readable_jpeg_is_refused_with_a_reason(data, reason):
    with pytest.raises(image_codec.MalformedImage) as error:
        jpeg_bytes.jpeg_bytes(data)
    assert error.value.reason == reason


def test_a_jpeg_cut_in_its_scan_is_refused():
    data = encoded(half_textured())
    with pytest.raises(image_codec.MalformedImage, match='truncated'):
        jpeg_bytes.jpeg_bytes(data[:len(data) // 2])


def test_its_peak_over_a_simulated_sweep_of_jpegs_lands_at_focus():
    lens = lens_sim.LensSimulator(lens_sim.LensConfig(focus_position=420.0))
    roi = measures.roi_pixels(640, 480, measures.DEFAULT_ROI)
    positions = np.arange(300.0, 541.0, 6.0)
    values = [jpeg_bytes.jpeg_bytes(encoded(lens.render(p)), roi)[0] for p in positions]
    assert abs(jpeg_bytes_study._peak(positions, values) - 420.0) <= 3.0
    # A curve a search can climb: it falls steadily on both sides.
    assert values[0] < 0.7 * max(values) and values[-1] < 0.7 * max(values)


def test_on_the_real_sweep_its_peak_is_near_the_decoded_measures_but_its_top_is_lopsided():
    rows = {(r['sweep'], r['curve']): r for r in jpeg_bytes_study.real_rows()}
    recorded = rows[('real fpd (as recorded)', 'jpeg_bytes frame')]
    # Measured 3.4 mm (the depth of field there is about 10 mm); a top-half parabola, as
    # coarse_fine fits, lands 16 mm off: jpeg_bytes is not a drop-in search measure there.
    assert recorded['peak_error'] < 5.0
    assert recorded['fit_error'] > 10.0
    assert recorded['spearman'] > 0.9
    ours = rows[('real fpd (our encoder q80)', 'jpeg_bytes roi rows')]
    assert ours['peak_error'] < 5.0


def test_spearman():
    assert jpeg_bytes_study.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert jpeg_bytes_study.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
