"""sensor_msgs/Image and CompressedImage <-> numpy, with the checks a node needs before
trusting a frame.

No rclpy here: the functions take and return message objects but never touch
the middleware, so they are tested without DDS. Decoding uses cv_bridge when it
is importable (a full ROS 2 install) and the equivalent numpy view otherwise
(the pip-only environment, where cv_bridge does not exist).

Compressed images follow image_transport's `compressed` plugin: JPEG (or PNG)
bytes in `data`, and a `format` such as "bgr8; jpeg compressed bgr8", so
`ros2 run image_transport republish` and rqt_image_view read ours and we read
theirs.
"""
import cv2
import numpy as np

from autofocus.core import measures

try:  # cv_bridge comes with a ROS 2 distribution, not with the PyPI wheels.
    from cv_bridge import CvBridge
    _bridge = CvBridge()
except ImportError:  # pragma: no cover - depends on the installation
    _bridge = None

# encoding -> (channels, numpy dtype of one channel, conversion to grey or None)
ENCODINGS = {
    'mono8': (1, np.uint8, None),
    'mono16': (1, np.uint16, None),
    'bgr8': (3, np.uint8, cv2.COLOR_BGR2GRAY),
    'rgb8': (3, np.uint8, cv2.COLOR_RGB2GRAY),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2GRAY),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2GRAY),
}

# Largest frame we accept: 16k x 16k x 4 bytes. Anything claiming more is a
# corrupt header, and must not make us allocate gigabytes.
MAX_IMAGE_BYTES = 16384 * 16384 * 4


class MalformedImage(ValueError):
    """The message cannot be an image of the size and encoding it claims."""


def image_array(msg) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image as an (h, w, c) array (a view, no copy).

    Raises MalformedImage naming what is wrong: zero size, unknown encoding, or
    a data length that does not match step x height.
    """
    width, height, step = msg.width, msg.height, msg.step
    if width == 0 or height == 0:
        raise MalformedImage(f'zero-size image ({width}x{height})')
    if msg.encoding not in ENCODINGS:
        raise MalformedImage(
            f"unsupported encoding '{msg.encoding}' (supported: {', '.join(ENCODINGS)})")
    channels, dtype, _ = ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise MalformedImage(
            f'step {step} is shorter than a row of {width} {msg.encoding} pixels '
            f'({row_bytes} bytes)')
    if step * height > MAX_IMAGE_BYTES:
        raise MalformedImage(f'{width}x{height} with step {step} is larger than any camera frame')
    if len(msg.data) != step * height:
        raise MalformedImage(
            f'data length {len(msg.data)} does not match step x height = {step} x {height}')
    if _bridge is not None:
        return _bridge.imgmsg_to_cv2(msg).reshape(height, width, channels)
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row_bytes]
    pixel_type = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    pixels = rows.view(pixel_type).reshape(height, width, channels)
    return pixels


def to_gray(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Grey levels of an (h, w, c) array: uint8 for 8-bit encodings, float32 in 0..255 for mono16.

    mono16 is scaled to the 8-bit range so every focus measure has the same
    scale whatever the camera's bit depth.
    """
    channels, dtype, conversion = ENCODINGS[encoding]
    if conversion is not None:
        return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
    gray = pixels[:, :, 0]
    if dtype == np.uint16:
        return gray.astype(np.float32) * np.float32(1.0 / 257.0)
    return gray


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
    ok, encoded = cv2.imencode('.jpg', frame, (cv2.IMWRITE_JPEG_QUALITY, int(quality)))
    if not ok:
        raise ValueError(f'OpenCV could not JPEG-encode a {frame.shape} {frame.dtype} frame')
    msg.format = f'{encoding}; jpeg compressed {encoding}'
    msg.data = encoded.tobytes()
    return msg


def compressed_gray(msg, reduce: int = 1) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage straight to grey levels (uint8).

    reduce 2, 4 or 8 lets libjpeg decode at that fraction of the size, skipping
    most of the inverse DCT: several times cheaper than decoding in full and
    area-averaging afterwards, and about the same image. Raises MalformedImage
    for an empty or undecodable payload or an unknown format.
    """
    fmt = msg.format.lower()
    if fmt and not any(name in fmt for name in COMPRESSED_FORMATS):
        raise MalformedImage(f"unsupported compressed format '{msg.format}' "
                             f"(supported: {', '.join(COMPRESSED_FORMATS)})")
    if len(msg.data) == 0:
        raise MalformedImage('empty compressed image')
    if jpeg_truncated(msg.data):
        raise MalformedImage(f'truncated JPEG: {len(msg.data)} bytes without an end-of-image '
                             'marker (a frame cut off in transit or by the camera)')
    flags = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
             4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce]
    gray = cv2.imdecode(np.frombuffer(msg.data, np.uint8), flags)
    if gray is None:
        raise MalformedImage(f'{len(msg.data)} bytes that OpenCV cannot decode as '
                             f"'{msg.format or 'an image'}' (truncated or corrupt)")
    return gray


def jpeg_reduction(downsample: int) -> int:
    """Largest factor libjpeg can decode at (8, 4, 2) that divides the downsample; else 1."""
    return next((r for r in (8, 4, 2) if downsample % r == 0), 1)


def gray_roi(msg, roi, downsample: int):
    """The grey ROI of a sensor_msgs/Image, shaped like :func:`compressed_gray_roi`'s result:
    (grey uint8/float32 ROI, ROI in pixels, (width, height), downsample still to apply).

    Only the ROI is converted to grey: the rest of the frame is never read.
    Raises MalformedImage, or ValueError when the ROI does not fit the frame.
    """
    pixels = image_array(msg)
    x, y, w, h = measures.roi_pixels(msg.width, msg.height, roi)
    return (to_gray(pixels[y:y + h, x:x + w], msg.encoding), (x, y, w, h),
            (msg.width, msg.height), downsample)


def compressed_gray_roi(msg, roi, downsample: int, reduced_decode: bool = True):
    """The grey ROI of a CompressedImage, decoded at a reduced size when downsample allows.

    Returns (grey ROI, ROI in full-frame pixels, (width, height) of the full frame,
    downsample still to apply); the decoder's 1/r scaling stands for r of the downsample.
    """
    reduce = jpeg_reduction(downsample) if reduced_decode else 1
    gray = compressed_gray(msg, reduce)
    height, width = gray.shape
    x, y, w, h = measures.roi_pixels(width, height, roi)
    return (gray[y:y + h, x:x + w], (x * reduce, y * reduce, w * reduce, h * reduce),
            (width * reduce, height * reduce), downsample // reduce)
