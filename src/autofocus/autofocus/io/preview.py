"""A sensor_msgs/Image as a small JPEG for a viewer (the web page's live image)."""
import cv2
import numpy as np

from autofocus.io.image_codec import image_array

# To BGR (what cv2.imencode takes) from each encoding image_codec accepts.
_TO_BGR = {'rgb8': cv2.COLOR_RGB2BGR, 'bgra8': cv2.COLOR_BGRA2BGR, 'rgba8': cv2.COLOR_RGBA2BGR}


def preview_jpeg(msg, max_width: int = 640, quality: int = 70) -> bytes:
    """JPEG bytes of the image, shrunk (area average) to at most max_width pixels wide.

    Raises MalformedImage (a ValueError) for a message that is not a valid image.
    """
    pixels = image_array(msg)
    if msg.encoding == 'mono16':
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.shape[1] > max_width:
        height = max(1, round(pixels.shape[0] * max_width / pixels.shape[1]))
        pixels = cv2.resize(np.ascontiguousarray(pixels), (max_width, height),
                            interpolation=cv2.INTER_AREA)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif msg.encoding in _TO_BGR:
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), _TO_BGR[msg.encoding])
    ok, jpeg = cv2.imencode('.jpg', np.ascontiguousarray(pixels),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f'JPEG encoding failed for a {msg.width}x{msg.height} '
                         f'{msg.encoding} image')
    return jpeg.tobytes()
