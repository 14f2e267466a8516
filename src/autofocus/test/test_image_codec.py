import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from ros_helpers import textured_frame

from autofocus.io import image_codec
from autofocus.io.image_codec import MalformedImage, fill_image_msg, image_array, to_gray


def make_msg(pixels, encoding, pad=0, bigendian=False):
    height, width = pixels.shape[:2]
    raw = pixels.astype(pixels.dtype.newbyteorder('>' if bigendian else '<'))
    rows = raw.reshape(height, -1).view(np.uint8)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                 step=rows.shape[1], data=rows.tobytes())


@pytest.fixture
def bgr():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize('encoding, convert', [
    ('bgr8', lambda p: p),
    ('rgb8', lambda p: p[:, :, ::-1]),
    ('bgra8', lambda p: cv2.cvtColor(p, cv2.COLOR_BGR2BGRA)),
    ('rgba8', lambda p: cv2.cvtColor(p, cv2.COLOR_BGR2RGBA)),
])
def test_colour_encodings_give_the_same_grey(bgr, encoding, convert):
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    msg = make_msg(np.ascontiguousarray(convert(bgr)), encoding, pad=3)
    gray = to_gray(image_array(msg), encoding)
    assert gray.dtype == np.uint8
    np.testing.assert_array_equal(gray, expected)


def test_mono8_with_row_padding(bgr):
    mono = bgr[:, :, 0].copy()
    gray = to_gray(image_array(make_msg(mono[:, :, None], 'mono8', pad=11)), 'mono8')
    np.testing.assert_array_equal(gray, mono)


@pytest.mark.parametrize('bigendian', [False, True])
def test_mono16_is_scaled_to_the_8_bit_range(bigendian):
    mono16 = (np.arange(12, dtype=np.uint16).reshape(3, 4, 1) * 5957)
    gray = to_gray(image_array(make_msg(mono16, 'mono16', bigendian=bigendian)), 'mono16')
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray, mono16[:, :, 0] / 257.0, rtol=1e-6)


@pytest.mark.parametrize('change, reason', [
    (dict(width=0), 'zero-size'),
    (dict(encoding='yuv420p'), "unsupported encoding 'yuv420p'"),
    (dict(step=10), 'shorter than a row'),
    (dict(data=b'\x00' * 100), 'does not match step x height'),
    (dict(is_bigendian=7), 'is_bigendian is 7'),
])
def test_malformed_images_are_named(bgr, change, reason):
    msg = make_msg(bgr, 'bgr8')
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(MalformedImage, match=reason):
        image_array(msg)
    with pytest.raises(MalformedImage, match=reason):   # the node's path checks the same
        image_codec.gray_roi(msg, (0.25, 0.25, 0.5, 0.5), 2)


def test_fill_then_decode_round_trip(bgr):
    msg = fill_image_msg(Image(), bgr, 'bgr8')
    assert (msg.width, msg.height, msg.step) == (53, 37, 53 * 3)
    np.testing.assert_array_equal(image_array(msg), bgr)


def compressed(frame, quality=90):
    from sensor_msgs.msg import CompressedImage
    return image_codec.fill_compressed_msg(CompressedImage(), frame, quality)


def test_compressed_round_trip_keeps_the_grey_levels():
    bgr = textured_frame(160, 120, seed=2)
    msg = compressed(bgr, quality=95)
    assert msg.format == 'bgr8; jpeg compressed bgr8'   # image_transport's layout
    assert bytes(msg.data[:2]) == b'\xff\xd8'           # a JPEG
    gray = image_codec.compressed_gray(msg)
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(float)
    assert gray.shape == bgr.shape[:2]
    assert np.abs(gray - expected).mean() < 3.0


def test_lower_quality_means_fewer_bytes():
    bgr = textured_frame(160, 120, seed=2)
    assert len(compressed(bgr, 30).data) < len(compressed(bgr, 95).data)


@pytest.mark.parametrize('downsample, reduce', [(1, 1), (2, 2), (3, 1), (4, 4), (6, 2), (16, 8)])
def test_reduced_decode_stands_for_part_of_the_downsample(downsample, reduce):
    assert image_codec.jpeg_reduction(downsample) == reduce


def test_compressed_roi_matches_the_raw_roi_in_full_frame_pixels():
    frame = textured_frame(640, 480, seed=4)
    msg = compressed(frame, 95)
    roi = (0.25, 0.25, 0.5, 0.5)
    full, roi_full, size_full, left_full = image_codec.compressed_gray_roi(msg, roi, 2, False)
    half, roi_half, size_half, left_half = image_codec.compressed_gray_roi(msg, roi, 2, True)
    assert roi_full == roi_half == (160, 120, 320, 240)
    assert size_full == size_half == (640, 480)
    assert (left_full, left_half) == (2, 1)
    assert half.shape == (120, 160) and full.shape == (240, 320)
    # The decoder's 1/2 scaling is close to an area average of the full decode.
    averaged = cv2.resize(full, (160, 120), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(half - averaged).mean() < 4.0


@pytest.mark.parametrize('change, reason', [
    (lambda m: setattr(m, 'data', b''), 'empty'),
    (lambda m: setattr(m, 'data', bytes(m.data[:-100])), 'truncated'),
    (lambda m: setattr(m, 'data', b'not an image at all'), 'cannot decode'),
    (lambda m: setattr(m, 'format', 'bgr8; theora'), "unsupported compressed format"),
])
def test_malformed_compressed_images_are_named(bgr, change, reason):
    msg = compressed(bgr)
    change(msg)
    with pytest.raises(image_codec.MalformedImage, match=reason):
        image_codec.compressed_gray(msg)
