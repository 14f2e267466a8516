"""sensor_msgs/Image <-> numpy, with the checks a node needs before trusting a frame.

No rclpy here: the functions take and return message objects but never touch
the middleware, so they are tested without DDS. Decoding uses cv_bridge when it
is importable (a full ROS 2 install) and the equivalent numpy view otherwise
(the pip-only environment, where cv_bridge does not exist).
"""
import cv2
import numpy as np

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
