"""Foreign encodings and hostile headers, through the sharpness node's own decode path
(image_codec.gray_roi / compressed_gray_roi), without DDS.

Each encoding is built from one known BGR image (the bytes a usb_cam, v4l2_camera or
camera_ros driver would publish), and its grey result is compared with OpenCV's grey of
that image.
"""
import struct
import zlib

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from autofocus.io import image_codec
from autofocus.io.image_codec import MalformedImage

FULL = (0.0, 0.0, 1.0, 1.0)
W, H = 64, 48


def known_bgr():
    """Smooth, with very different channels: a wrong channel order or Bayer pattern shows."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    blue = 30 + 200 * x / W
    green = 120 + 60 * np.sin(y / 9.0)
    red = 230 - 200 * y / H
    return np.dstack([blue, green, red]).round().astype(np.uint8)


def expected_gray():
    return cv2.cvtColor(known_bgr(), cv2.COLOR_BGR2GRAY).astype(np.float64)


def message(pixels, encoding, bigendian=False, pad=0):
    height, width = pixels.shape[:2]
    if pixels.dtype.itemsize > 1:
        pixels = pixels.astype(pixels.dtype.newbyteorder('>' if bigendian else '<'))
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return Image(width=width, height=height, encoding=encoding, is_bigendian=int(bigendian),
                 step=rows.shape[1], data=rows.tobytes())


def gray_of(msg, roi=FULL):
    gray, roi_px, size, left = image_codec.gray_roi(msg, roi, 1)
    assert size == (W, H) and left == 1
    return gray.astype(np.float64), roi_px


def yuv422(order):
    """4:2:2 bytes from the known image: Y per pixel, U and V shared by each pixel pair."""
    yuv = cv2.cvtColor(known_bgr(), cv2.COLOR_BGR2YUV).astype(np.float64)
    y = yuv[:, :, 0]
    u = yuv[:, 0::2, 1] / 2 + yuv[:, 1::2, 1] / 2
    v = yuv[:, 0::2, 2] / 2 + yuv[:, 1::2, 2] / 2
    planes = {'Y0': y[:, 0::2], 'Y1': y[:, 1::2], 'U': u, 'V': v}
    packed = np.stack([planes[name] for name in order], axis=2).reshape(H, W, 2)
    return packed.round().astype(np.uint8)


@pytest.mark.parametrize('encoding, order', [('yuv422', ('U', 'Y0', 'V', 'Y1')),
                                             ('uyvy', ('U', 'Y0', 'V', 'Y1')),
                                             ('yuv422_yuy2', ('Y0', 'U', 'Y1', 'V')),
                                             ('yuyv', ('Y0', 'U', 'Y1', 'V'))])
def test_yuv422_gives_the_luma(encoding, order):
    gray, _ = gray_of(message(yuv422(order), encoding, pad=4))
    assert np.abs(gray - expected_gray()).max() <= 1.0


# ROS names a Bayer pattern by its top-left 2x2 block, row by row.
BAYER = {'rggb': 'RGGB', 'bggr': 'BGGR', 'gbrg': 'GBRG', 'grbg': 'GRBG'}


def mosaic(pattern):
    bgr = known_bgr()
    channel = {'B': 0, 'G': 1, 'R': 2}
    out = np.zeros((H, W), np.uint8)
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] = bgr[dy::2, dx::2, channel[colour]]
    return out


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('name', list(BAYER))
def test_bayer_patterns_demosaic_to_the_grey_of_the_scene(name, bits):
    raw = mosaic(BAYER[name])
    if bits == 16:
        raw = raw.astype(np.uint16) * 257
    gray, _ = gray_of(message(raw[:, :, None], f'bayer_{name}{bits}', bigendian=bits == 16))
    inner = (slice(2, -2), slice(2, -2))   # demosaicing guesses at the border
    error = np.abs(gray - expected_gray())[inner].mean()
    assert error < 2.0, (name, bits, error)
    # The check can tell patterns apart: read as its mirror, the same bytes are far off.
    mirror = {'rggb': 'bggr', 'bggr': 'rggb', 'gbrg': 'grbg', 'grbg': 'gbrg'}[name]
    wrong, _ = gray_of(message(raw[:, :, None], f'bayer_{mirror}{bits}',
                               bigendian=bits == 16))
    assert np.abs(wrong - expected_gray())[inner].mean() > 5 * max(error, 1.0)


def test_a_bayer_roi_keeps_the_pattern():
    msg = message(mosaic('RGGB')[:, :, None], 'bayer_rggb8')
    gray, (x, y, w, h) = gray_of(msg, (0.27, 0.31, 0.4, 0.4))
    assert x % 2 == 0 and y % 2 == 0 and w % 2 == 0 and h % 2 == 0
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(gray - expected_gray()[y:y + h, x:x + w])[inner].mean() < 2.0


@pytest.mark.parametrize('encoding, order, alpha', [
    ('bgr16', [0, 1, 2], False), ('rgb16', [2, 1, 0], False),
    ('bgra16', [0, 1, 2], True), ('rgba16', [2, 1, 0], True)])
@pytest.mark.parametrize('bigendian', [False, True])
def test_16_bit_colour(encoding, order, alpha, bigendian):
    pixels = known_bgr()[:, :, order].astype(np.uint16) * 257
    if alpha:
        pixels = np.dstack([pixels, np.full((H, W), 65535, np.uint16)])
    gray, _ = gray_of(message(pixels, encoding, bigendian=bigendian))
    assert np.abs(gray - expected_gray()).max() <= 1.0


@pytest.mark.parametrize('encoding, make', [
    ('8UC1', lambda g: g.astype(np.uint8)),
    ('mono16', lambda g: g.astype(np.uint16) * 257),
    ('16UC1', lambda g: g.astype(np.uint16) * 257),
    ('32FC1', lambda g: (g / 255.0).astype(np.float32)),
    ('64FC1', lambda g: g / 255.0),
    ('8SC1', lambda g: (g.astype(np.int16) - 128).astype(np.int8)),
    ('16SC1', lambda g: (g.astype(np.int32) * 257 - 32768).astype(np.int16)),
])
def test_single_channel_types_keep_the_8_bit_scale(encoding, make):
    grey = expected_gray()
    gray, _ = gray_of(message(make(grey)[:, :, None], encoding))
    assert np.abs(gray - grey).max() <= 0.01


def test_generic_three_channel_type_is_the_channel_mean():
    pixels = known_bgr()
    gray, _ = gray_of(message(pixels, '8UC3'))
    assert np.abs(gray - pixels.astype(np.float64).mean(axis=2)).max() <= 1.0


def test_every_cv_bridge_encoding_is_known_without_cv_bridge():
    # sensor_msgs/image_encodings as cv_bridge converts them (planar nv12/nv21/nv24 excepted).
    names = ['mono8', 'mono16', 'bgr8', 'rgb8', 'bgra8', 'rgba8', 'bgr16', 'rgb16',
             'bgra16', 'rgba16', 'yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv']
    names += [f'bayer_{p}{b}' for p in BAYER for b in (8, 16)]
    names += [f'{t}C{n}' for t in ('8U', '8S', '16U', '16S', '32S', '32F', '64F')
              for n in (1, 2, 3, 4)]
    assert sorted(names) == sorted(image_codec.ENCODINGS)


# ----------------------------------------------------------------- hostile headers

@pytest.mark.parametrize('change, reason', [
    (dict(width=1, height=1, step=3, data=b'\x00' * 3), 'too_small'),
    (dict(is_bigendian=7), 'bad_header'),
    (dict(step=W * 3 + 1), 'size_mismatch'),
    (dict(data=b'\x00' * (W * 3 * H - 1)), 'size_mismatch'),
    (dict(encoding='yuv420_not_a_ros_encoding'), 'unsupported_encoding'),
])
def test_raw_header_fields_are_validated(change, reason):
    msg = message(known_bgr(), 'bgr8')
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(MalformedImage) as raised:
        image_codec.gray_roi(msg, FULL, 1)
    assert raised.value.reason == reason, raised.value


def test_raw_frames_above_max_pixels_are_refused_from_the_header():
    msg = message(known_bgr(), 'bgr8')
    image_codec.gray_roi(msg, FULL, 1, max_pixels=W * H)
    with pytest.raises(MalformedImage, match='above max_pixels') as raised:
        image_codec.gray_roi(msg, FULL, 1, max_pixels=W * H - 1)
    assert raised.value.reason == 'too_large'
    # A header claiming 32768x32768 with 1 byte of data: refused for its size first.
    bomb = Image(width=32768, height=32768, encoding='mono8', step=32768, data=b'\x00')
    with pytest.raises(MalformedImage) as raised:
        image_codec.gray_roi(bomb, FULL, 1)
    assert raised.value.reason == 'too_large'


def png_bomb(side=32768):
    """A valid ~1 MB grey PNG that decodes to side x side zeros (1 GiB at 32768).

    Built in about a second: one deflate block of 256 zero rows, ended by a full flush so
    it can be repeated, and the Adler-32 of n zero bytes, which is (n mod 65521) << 16 | 1.
    """
    rows_per_block = 256
    assert side % rows_per_block == 0
    block = b'\x00' * ((side + 1) * rows_per_block)   # filter byte 0 + zero pixels
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush(zlib.Z_FINISH)[:-4]     # empty last block, minus checksum
    total = len(block) * (side // rows_per_block)
    idat = first + repeated * (side // rows_per_block - 1) + final + \
        struct.pack('>I', ((total % 65521) << 16) | 1)

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + \
            struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0)
    return image_codec.PNG_SIGNATURE + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + \
        chunk(b'IEND', b'')


def test_the_png_bomb_is_what_it_claims():
    # Small enough to decode here: the same construction, 512x512.
    small = png_bomb(512)
    gray = cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray.shape == (512, 512) and not gray.any()
    bomb = png_bomb()
    assert len(bomb) < 1.1e6
    assert image_codec.compressed_size(bomb) == (32768, 32768)


def test_a_png_bomb_is_dropped_before_decoding():
    msg = CompressedImage(format='mono8; png compressed mono8', data=png_bomb())
    with pytest.raises(MalformedImage, match='32768x32768') as raised:
        image_codec.compressed_gray_roi(msg, FULL, 2)
    assert raised.value.reason == 'too_large'


@pytest.mark.parametrize('quality, progressive', [(90, False), (50, True)])
def test_jpeg_header_size_matches_the_decoded_size(quality, progressive):
    frame = known_bgr()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    data = cv2.imencode('.jpg', frame, params)[1].tobytes()
    assert image_codec.compressed_size(data) == (W, H)
    png = cv2.imencode('.png', frame)[1].tobytes()
    assert image_codec.compressed_size(png) == (W, H)


def test_compressed_header_fields_are_validated():
    jpeg = cv2.imencode('.jpg', known_bgr())[1].tobytes()
    tiny = cv2.imencode('.jpg', known_bgr()[:1, :1])[1].tobytes()
    cases = [
        (tiny, 'too_small'),
        (b'GIF89a' + b'\x00' * 100, 'unsupported_format'),
        (jpeg[:2] + b'\xff\xda\x00\x08' + jpeg[2:], 'bad_header'),   # scan before the frame
        (image_codec.PNG_SIGNATURE + b'\x00' * 8, 'bad_header'),
    ]
    for data, reason in cases:
        with pytest.raises(MalformedImage) as raised:
            image_codec.compressed_gray(CompressedImage(format='jpeg', data=data))
        assert raised.value.reason == reason, (reason, raised.value)


class StandInBridge:
    """cv_bridge's CvBridge where it is not installed (the pip environment): records what
    it is asked, returns a grey image or raises as cv_bridge does."""

    def __init__(self, gray=None, error=None):
        self.gray, self.error, self.calls = gray, error, []

    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        self.calls.append((msg.encoding, desired_encoding))
        if self.error is not None:
            raise self.error
        return self.gray


def test_an_encoding_outside_the_table_goes_to_cv_bridge_unchecked(monkeypatch):
    gray = expected_gray().astype(np.uint8)
    bridge = StandInBridge(gray=gray)
    monkeypatch.setattr(image_codec, '_bridge', bridge)
    msg = Image(width=W, height=H, encoding='nv21', step=W, data=bytes(W * H))
    result, _ = gray_of(msg)
    assert bridge.calls == [('nv21', 'mono8')]
    np.testing.assert_array_equal(result, gray)
    # Known encodings never need it.
    gray_of(message(known_bgr(), 'bgr8'))
    assert len(bridge.calls) == 1


def test_what_cv_bridge_refuses_is_dropped_with_its_reason(monkeypatch):
    monkeypatch.setattr(image_codec, '_bridge', StandInBridge(
        error=image_codec.CvBridgeError('Unsupported conversion from [nv42] to [mono8]')))
    msg = Image(width=W, height=H, encoding='nv42', step=W, data=bytes(W * H))
    with pytest.raises(MalformedImage, match='Unsupported conversion') as raised:
        image_codec.gray_roi(msg, FULL, 1)
    assert raised.value.reason == 'unsupported_encoding'
