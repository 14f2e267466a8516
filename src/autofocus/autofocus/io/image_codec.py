"""sensor_msgs/Image and CompressedImage <-> numpy, with the checks a node needs before
trusting a frame.

No rclpy here: the functions take and return message objects but never touch
the middleware, so they are tested without DDS. Every encoding cv_bridge converts
is read here with numpy views and OpenCV conversions (the pip-only environment has
no cv_bridge); any other encoding goes, unchecked by us, to cv_bridge's conversion
to mono8 when cv_bridge is importable (a full ROS 2 install). The size limits are
checked from the header before either.

Compressed images follow image_transport's `compressed` plugin: JPEG (or PNG)
bytes in `data`, and a `format` such as "bgr8; jpeg compressed bgr8", so
`ros2 run image_transport republish` and rqt_image_view read ours and we read
theirs.
"""
from typing import NamedTuple

import cv2
import numpy as np

from autofocus.core import measures

try:  # cv_bridge comes with a ROS 2 distribution, not with the PyPI wheels.
    from cv_bridge import CvBridge, CvBridgeError
    _bridge = CvBridge()
except ImportError:  # pragma: no cover - depends on the installation
    _bridge = None
    CvBridgeError = ValueError


class Encoding(NamedTuple):
    channels: int
    dtype: type            # numpy type of one channel
    conversion: object     # cv2 code to grey, 'bayer:<code>', 'y:<channel>' or None


# Every encoding of sensor_msgs/image_encodings that cv_bridge converts (what usb_cam,
# v4l2_camera and camera_ros publish, and depth images), read straight from the bytes with
# numpy and OpenCV: the pip environment has no cv_bridge. Bayer patterns are named by ROS
# from the top-left 2x2 block and by OpenCV from the second row's second and third pixels,
# hence RGGB -> BayerBG (cv_bridge's own mapping). In YUV 4:2:2 every pixel has its luma
# (Y) in one of its two bytes: the second in UYVY (ROS 'yuv422' or 'uyvy'), the first in
# YUYV ('yuv422_yuy2' or 'yuyv'). Planar NV12/NV21/NV24 are left to cv_bridge.
ENCODINGS = {
    'mono8': Encoding(1, np.uint8, None),
    'mono16': Encoding(1, np.uint16, None),
    'bgr8': Encoding(3, np.uint8, cv2.COLOR_BGR2GRAY),
    'rgb8': Encoding(3, np.uint8, cv2.COLOR_RGB2GRAY),
    'bgra8': Encoding(4, np.uint8, cv2.COLOR_BGRA2GRAY),
    'rgba8': Encoding(4, np.uint8, cv2.COLOR_RGBA2GRAY),
    'bgr16': Encoding(3, np.uint16, cv2.COLOR_BGR2GRAY),
    'rgb16': Encoding(3, np.uint16, cv2.COLOR_RGB2GRAY),
    'bgra16': Encoding(4, np.uint16, cv2.COLOR_BGRA2GRAY),
    'rgba16': Encoding(4, np.uint16, cv2.COLOR_RGBA2GRAY),
    'yuv422': Encoding(2, np.uint8, 'y:1'),
    'yuv422_yuy2': Encoding(2, np.uint8, 'y:0'),
    'uyvy': Encoding(2, np.uint8, 'y:1'),          # newer sensor_msgs names of the same
    'yuyv': Encoding(2, np.uint8, 'y:0'),
}
for _bits, _dtype in ((8, np.uint8), (16, np.uint16)):
    for _ros, _opencv in (('rggb', 'BG'), ('bggr', 'RG'), ('gbrg', 'GR'), ('grbg', 'GB')):
        ENCODINGS[f'bayer_{_ros}{_bits}'] = Encoding(
            1, _dtype, f'bayer:{getattr(cv2, f"COLOR_Bayer{_opencv}2GRAY")}')
for _name, _dtype in (('8U', np.uint8), ('8S', np.int8), ('16U', np.uint16), ('16S', np.int16),
                      ('32S', np.int32), ('32F', np.float32), ('64F', np.float64)):
    for _channels in (1, 2, 3, 4):  # generic (depth, disparity, ...) images
        ENCODINGS[f'{_name}C{_channels}'] = Encoding(_channels, _dtype, None)

# Smallest frame accepted: below this a focus measure means nothing (the default ROI at
# downsample 2 leaves 4x4 pixels); a 1x1 frame is a corrupt or hostile header.
MIN_IMAGE_SIDE = 16
# Largest frame accepted by default, from its header before anything is decoded:
# 4096x3072 = 12.6 MP holds the Pi HQ camera (4056x3040) and Camera Module 3 (4608x2592)
# at full resolution; a bgr8 frame that size is 38 MB, which a Pi 4/5 can afford.
DEFAULT_MAX_PIXELS = 4096 * 3072


class MalformedImage(ValueError):
    """The message cannot be an image of the size and encoding it claims.

    reason: a short key for counting drops by kind (too_large, too_small, bad_header,
    size_mismatch, unsupported_encoding, unsupported_format, truncated, undecodable).
    """

    def __init__(self, message: str, reason: str = 'malformed'):
        super().__init__(message)
        self.reason = reason


def check_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS,
               what: str = 'image') -> None:
    """Raise MalformedImage unless MIN_IMAGE_SIDE <= each side and width x height <= max_pixels."""
    if width * height > max_pixels:
        raise MalformedImage(
            f'{what} of {width}x{height} = {width * height} pixels is above max_pixels '
            f'{max_pixels}: dropped before decoding (raise max_pixels for a larger camera)',
            'too_large')
    if width == 0 or height == 0:
        raise MalformedImage(f'zero-size {what} ({width}x{height})', 'too_small')
    if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
        raise MalformedImage(f'{what} of {width}x{height} is below the smallest accepted '
                             f'{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}', 'too_small')


def image_array(msg) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image as an (h, w, c) array (a view, no copy).

    Raises MalformedImage naming what is wrong: zero size, unknown encoding (when
    cv_bridge is not installed to convert it), is_bigendian other than 0 or 1, or a
    data length that does not match step x height.
    """
    width, height, step = msg.width, msg.height, msg.step
    if width == 0 or height == 0:
        raise MalformedImage(f'zero-size image ({width}x{height})', 'too_small')
    if msg.is_bigendian not in (0, 1):
        raise MalformedImage(f'is_bigendian is {msg.is_bigendian}; it must be 0 or 1',
                             'bad_header')
    encoding = ENCODINGS.get(msg.encoding)
    if encoding is not None:
        row_bytes = width * encoding.channels * np.dtype(encoding.dtype).itemsize
        if step < row_bytes:
            raise MalformedImage(
                f'step {step} is shorter than a row of {width} {msg.encoding} pixels '
                f'({row_bytes} bytes)', 'size_mismatch')
    if len(msg.data) != step * height:
        raise MalformedImage(
            f'data length {len(msg.data)} does not match step x height = {step} x {height}',
            'size_mismatch')
    if encoding is None:
        return _bridge_mono8(msg)
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row_bytes]
    pixel_type = np.dtype(encoding.dtype).newbyteorder('>' if msg.is_bigendian else '<')
    return rows.view(pixel_type).reshape(height, width, encoding.channels)


def _bridge_mono8(msg) -> np.ndarray:
    """An encoding of no table of ours: cv_bridge's conversion to mono8, if installed."""
    if _bridge is None:
        raise MalformedImage(
            f"unsupported encoding '{msg.encoding}' (supported without cv_bridge: "
            f"{', '.join(ENCODINGS)})", 'unsupported_encoding')
    try:
        gray = _bridge.imgmsg_to_cv2(msg, desired_encoding='mono8')
    except (CvBridgeError, TypeError, ValueError) as error:
        raise MalformedImage(f"cv_bridge cannot convert '{msg.encoding}': {error}",
                             'unsupported_encoding') from None
    return gray.reshape(msg.height, msg.width, 1)


def to_gray(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Grey levels of an (h, w, c) array: uint8 for 8-bit encodings, else float32 in 0..255.

    16-bit values are divided by 257 and float ones (32FC*, 64FC*: OpenCV's 0..1
    convention) multiplied by 255, so every focus measure has the same scale whatever the
    camera's bit depth; signed types are offset to start at 0. Generic multi-channel types
    (8UC3, ...) are averaged over their first three channels.
    """
    if pixels.dtype.byteorder == '>':   # OpenCV reads native byte order only
        pixels = pixels.astype(pixels.dtype.newbyteorder('='))
    encoding_info = ENCODINGS.get(encoding)
    if encoding_info is None:           # converted to mono8 by cv_bridge
        return pixels[:, :, 0]
    conversion = encoding_info.conversion
    if isinstance(conversion, str) and conversion.startswith('y:'):
        gray = pixels[:, :, int(conversion[2:])]
    elif isinstance(conversion, str):   # bayer
        gray = cv2.cvtColor(np.ascontiguousarray(pixels[:, :, 0]), int(conversion[6:]))
    elif conversion is not None:
        gray = cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
    elif pixels.shape[2] == 1:
        gray = pixels[:, :, 0]
    else:
        gray = pixels[:, :, :3].mean(axis=2, dtype=np.float64).astype(pixels.dtype) \
            if pixels.dtype.kind in 'iu' else pixels[:, :, :3].mean(axis=2)
    return _to_8bit_scale(gray)


def _to_8bit_scale(gray: np.ndarray) -> np.ndarray:
    kind, size = gray.dtype.kind, gray.dtype.itemsize
    if kind == 'u' and size == 1:
        return gray
    if kind == 'f':
        return gray.astype(np.float32) * np.float32(255.0)
    info = np.iinfo(gray.dtype)
    scale = 255.0 / (float(info.max) - float(info.min))
    if kind == 'u' and size == 2:   # exactly /257, as before
        return gray.astype(np.float32) * np.float32(1.0 / 257.0)
    return ((gray.astype(np.float64) - info.min) * scale).astype(np.float32)


def fill_image_msg(msg, frame: np.ndarray, encoding: str = 'bgr8'):
    """Fill a sensor_msgs/Image from a contiguous uint8 frame (h, w[, c]); header is left alone.

    Assigning bytes costs about a millisecond for a 1080p frame; assigning a
    numpy array would be copied element by element (hundreds of milliseconds).
    """
    frame = np.ascontiguousarray(frame)
    msg.height, msg.width = frame.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = frame.strides[0]
    msg.data = frame.tobytes()
    return msg


# Formats of the compressed transport we decode (image_transport writes e.g.
# "bgr8; jpeg compressed bgr8"; plain "jpeg" or "png" come from other drivers).
COMPRESSED_FORMATS = ('jpeg', 'jpg', 'png')


def jpeg_truncated(data) -> bool:
    """Whether bytes that start as a JPEG lack its end-of-image marker (FF D9) at the end.

    libjpeg decodes a cut-off JPEG with the missing rows filled grey and only a
    warning, so its sharpness would be wrong. The marker is looked for in the last
    64 bytes, zero padding stripped: some writers pad or append a few bytes after it,
    and inside the compressed data FF is always followed by 00, so it cannot appear
    there by chance.
    """
    return bytes(data[:2]) == b'\xff\xd8' and \
        b'\xff\xd9' not in bytes(data[-64:]).rstrip(b'\x00')


def fill_compressed_msg(msg, frame: np.ndarray, quality: int = 80, encoding: str = 'bgr8'):
    """Fill a sensor_msgs/CompressedImage with the JPEG of a uint8 frame; header left alone."""
    # A restart marker after every MCU row (16 px: OpenCV subsamples colour 4:2:0; 8 px for
    # grey) lets a receiver count the bytes of a region's rows without decoding
    # (io/jpeg_bytes.py); it costs about 2 bytes per row.
    mcu = 8 if frame.ndim == 2 or frame.shape[2] == 1 else 16
    ok, encoded = cv2.imencode('.jpg', frame, (cv2.IMWRITE_JPEG_QUALITY, int(quality),
                                               cv2.IMWRITE_JPEG_RST_INTERVAL,
                                               -(-frame.shape[1] // mcu)))
    if not ok:
        raise ValueError(f'OpenCV could not JPEG-encode a {frame.shape} {frame.dtype} frame')
    msg.format = f'{encoding}; jpeg compressed {encoding}'
    msg.data = encoded.tobytes()
    return msg


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...); C4, C8 and
# CC are DHT, JPG and DAC, not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset([0x01, *range(0xD0, 0xD8)])   # TEM, RSTn: no length field


def compressed_size(data) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header or a PNG's IHDR, without decoding.

    OpenCV has no header-only read, and Pillow would be a dependency for 30 lines: the
    two headers are simple. Walks the JPEG marker segments up to the first SOFn (a few
    hundred bytes in practice, bounded by the data). Raises MalformedImage for anything
    that is not a JPEG or PNG with a readable header.
    """
    data = memoryview(data).cast('B') if not isinstance(data, (bytes, bytearray)) else data
    if bytes(data[:8]) == PNG_SIGNATURE:
        if len(data) < 24 or bytes(data[12:16]) != b'IHDR':
            raise MalformedImage('PNG without an IHDR header', 'bad_header')
        return (int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big'))
    if bytes(data[:2]) != b'\xff\xd8':
        raise MalformedImage(f'{len(data)} bytes that OpenCV cannot decode as JPEG or PNG '
                             '(neither header)', 'unsupported_format')
    position, end = 2, len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:          # fill byte
            position += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            position += 2
            continue
        length = (data[position + 2] << 8) | data[position + 3]
        if marker in _JPEG_SOF:
            if length < 7 or position + 9 > end:
                break
            height = (data[position + 5] << 8) | data[position + 6]
            width = (data[position + 7] << 8) | data[position + 8]
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:   # end of image, or scan before a frame
            break
        position += 2 + length
    raise MalformedImage(f'JPEG of {len(data)} bytes without a readable frame header (SOF)',
                         'bad_header')


def compressed_gray(msg, reduce: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage straight to grey levels (uint8).

    The size is read from the JPEG or PNG header first, and a frame outside
    [MIN_IMAGE_SIDE, max_pixels] is refused before anything is decoded: a 1 MB PNG can
    claim 32768x32768 (1 GiB of grey). reduce 2, 4 or 8 lets libjpeg decode at that
    fraction of the size, skipping most of the inverse DCT: several times cheaper than
    decoding in full and area-averaging afterwards, and about the same image. Raises
    MalformedImage for an empty or undecodable payload or an unknown format.
    """
    fmt = msg.format.lower()
    if fmt and not any(name in fmt for name in COMPRESSED_FORMATS):
        raise MalformedImage(f"unsupported compressed format '{msg.format}' "
                             f"(supported: {', '.join(COMPRESSED_FORMATS)})",
                             'unsupported_format')
    if len(msg.data) == 0:
        raise MalformedImage('empty compressed image', 'size_mismatch')
    width, height = compressed_size(msg.data)
    check_size(width, height, max_pixels, 'compressed image')
    if jpeg_truncated(msg.data):
        raise MalformedImage(f'truncated JPEG: {len(msg.data)} bytes without an end-of-image '
                             'marker (a frame cut off in transit or by the camera)', 'truncated')
    flags = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
             4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce]
    gray = cv2.imdecode(np.frombuffer(msg.data, np.uint8), flags)
    if gray is None:
        raise MalformedImage(f'{len(msg.data)} bytes that OpenCV cannot decode as '
                             f"'{msg.format or 'an image'}' (truncated or corrupt)", 'undecodable')
    expected = (-(-height // reduce), -(-width // reduce))
    if gray.shape[:2] != expected:   # a header that lied about the size
        raise MalformedImage(f'decoded {gray.shape[1]}x{gray.shape[0]}, header said '
                             f'{width}x{height}', 'bad_header')
    return gray


def jpeg_reduction(downsample: int) -> int:
    """Largest factor libjpeg can decode at (8, 4, 2) that divides the downsample; else 1."""
    return next((r for r in (8, 4, 2) if downsample % r == 0), 1)


def gray_roi(msg, roi, downsample: int, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The grey ROI of a sensor_msgs/Image, shaped like :func:`compressed_gray_roi`'s result:
    (grey uint8/float32 ROI, ROI in pixels, (width, height), downsample still to apply).

    The header is checked first (size within [MIN_IMAGE_SIDE, max_pixels], is_bigendian,
    step and data length); only the ROI is converted to grey: the rest of the frame is
    never read. A Bayer ROI starts and ends on the 2x2 pattern. Raises MalformedImage, or
    ValueError when the ROI does not fit the frame.
    """
    check_size(msg.width, msg.height, max_pixels)
    pixels = image_array(msg)
    x, y, w, h = measures.roi_pixels(msg.width, msg.height, roi)
    if msg.encoding.startswith('bayer_'):
        x, y = x - x % 2, y - y % 2
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return (to_gray(pixels[y:y + h, x:x + w], msg.encoding), (x, y, w, h),
            (msg.width, msg.height), downsample)


def compressed_gray_roi(msg, roi, downsample: int, reduced_decode: bool = True,
                        max_pixels: int = DEFAULT_MAX_PIXELS):
    """The grey ROI of a CompressedImage, decoded at a reduced size when downsample allows.

    Returns (grey ROI, ROI in full-frame pixels, (width, height) of the full frame,
    downsample still to apply); the decoder's 1/r scaling stands for r of the downsample.
    """
    reduce = jpeg_reduction(downsample) if reduced_decode else 1
    gray = compressed_gray(msg, reduce, max_pixels)
    height, width = gray.shape
    x, y, w, h = measures.roi_pixels(width, height, roi)
    return (gray[y:y + h, x:x + w], (x * reduce, y * reduce, w * reduce, h * reduce),
            (width * reduce, height * reduce), downsample // reduce)
