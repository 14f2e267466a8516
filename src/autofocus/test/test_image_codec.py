import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from autofocus.image_codec import MalformedImage, fill_image_msg, image_array, to_gray


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
    (dict(encoding='yuv422'), "unsupported encoding 'yuv422'"),
    (dict(step=10), 'shorter than a row'),
    (dict(data=b'\x00' * 100), 'does not match step x height'),
    (dict(height=100000, step=100000), 'larger than any camera frame'),
])
def test_malformed_images_are_named(bgr, change, reason):
    msg = make_msg(bgr, 'bgr8')
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(MalformedImage, match=reason):
        image_array(msg)


def test_fill_then_decode_round_trip(bgr):
    msg = fill_image_msg(Image(), bgr, 'bgr8')
    assert (msg.width, msg.height, msg.step) == (53, 37, 53 * 3)
    np.testing.assert_array_equal(image_array(msg), bgr)
