"""Focus measures: one number per image that is largest when the image is in focus.

No ROS here: the sharpness node wraps :func:`compute`.

Every measure takes a 2-D grey image, dtype ``uint8`` or ``float32`` (the node converts mono16
to float32 scaled to 0..255; any other dtype is converted to float32 as is), and returns a
Python float >= 0. A constant image gives 0.0, never NaN; an image too small for the
operator's support (e.g. 1x1, 2x2) gives 0.0 instead of raising.

All work is done by whole-image cv2 operations. Squared means are taken with
``cv2.meanStdDev`` through ``mean(d^2) = std(d)^2 + mean(d)^2``, which avoids materialising
the squared image; on uint8 the derivatives are computed in 16-bit integers, which is exact
(|Laplacian| <= 1020, |Sobel| <= 1020, |difference| <= 255) and about 3x cheaper than
float64 (0.05 ms for the Laplacian variance of a 320x240 ROI).

Which measure to use (measured on the simulator and on a real defocus series, see tests):

- ``laplacian_variance`` (default): the most selective (sharp, narrow peak), cheap. Sensitive
  to noise on full-resolution frames: use a region of interest and a downsample of 2-4 on
  noisy or megapixel sensors, preferably an odd factor (3) if the frames carry a 2-px
  pattern (Bayer demosaicing, 2x upscaling): an even block then straddles it differently
  as the crop moves, which made the curve of a real series non-monotone at downsample 2.
- ``tenengrad``: gradient energy; a little broader peak than the Laplacian, less sensitive to
  pixel noise (the Sobel kernel smooths across the edge); good general choice.
- ``normalized_variance``: plain contrast (variance / mean); very robust to noise and works
  for scenes with little fine detail, but its peak is by far the broadest (the curve of a
  real defocus series spans only 0.7..1.0), so small disturbances (e.g. a downsample of 4
  on real data) can break its monotonicity. Good for a coarse look at a hard scene; use a
  lower ``min_peak_contrast`` with it.
- ``brenner``: squared 2-px differences; the cheapest derivative measure, with about the
  selectivity of tenengrad and a wider capture range than the Laplacian.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

DEFAULT_ROI = (0.25, 0.25, 0.5, 0.5)   # normalised (x, y, w, h): the centred half
DEFAULT_MEASURE = 'laplacian_variance'
_ROI_SLACK = 1e-6                      # tolerance for rounding in normalised ROI checks


def _as_supported(gray: np.ndarray) -> np.ndarray:
    """Check the image is 2-D; pass uint8/float32 through, convert anything else to float32."""
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f'expected a 2-D grey image, got shape {gray.shape}')
    if gray.dtype == np.uint8 or gray.dtype == np.float32:
        return gray
    return gray.astype(np.float32)


def _mean_square(image: np.ndarray) -> float:
    """mean(image^2) via cv2.meanStdDev: std^2 + mean^2 (no squared copy of the image)."""
    mean, std = cv2.meanStdDev(image)
    return float(std[0, 0] ** 2 + mean[0, 0] ** 2)


def _derivative_depth(gray: np.ndarray) -> int:
    """Output depth for derivative filters: exact int16 for uint8 input, float32 otherwise."""
    return cv2.CV_16S if gray.dtype == np.uint8 else cv2.CV_32F


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the Laplacian (Pech-Pacheco et al. 2000).

    ``LV = var(L)``, ``L = I * [[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (cv2.Laplacian, ksize 1,
    reflected borders).

    The Laplacian is a second derivative: it responds to the finest detail, so its variance
    falls fastest as blur grows and gives the narrowest, most selective peak. The flip side
    is that white sensor noise passes the filter with gain sum(k^2) = 20, so noise sets a
    floor (20 * sigma^2): on noisy or megapixel frames use a downsample of 2-4. Needs at
    least 3x3 pixels, else 0.0.
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    lap = cv2.Laplacian(gray, _derivative_depth(gray))
    _, std = cv2.meanStdDev(lap)
    return float(std[0, 0] ** 2)


def tenengrad(gray: np.ndarray) -> float:
    """Tenengrad: mean gradient energy from 3x3 Sobel derivatives (Tenenbaum 1970).

    ``T = mean(Gx^2 + Gy^2)``, ``Gx = I * Sobel_x``, ``Gy = I * Sobel_y`` (3x3, reflected
    borders), without the optional threshold on the gradient magnitude.

    A first derivative smoothed across the edge: a slightly broader peak than the Laplacian
    and less noise gain (sum(k^2) = 12 per direction), so it is a robust default when the
    noise is high or the scene has mostly coarse edges. Needs at least 3x3 pixels, else 0.0.
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    depth = _derivative_depth(gray)
    gx = cv2.Sobel(gray, depth, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, depth, 0, 1, ksize=3)
    return _mean_square(gx) + _mean_square(gy)


def normalized_variance(gray: np.ndarray) -> float:
    """Normalised grey-level variance (Groen et al. 1985).

    ``NV = var(I) / mean(I)`` (0.0 when mean(I) <= 0).

    Global contrast rather than edges: dividing by the mean makes it insensitive to
    exposure/illumination changes, and it is almost blind to pixel noise (noise adds a
    constant sigma^2 / mean), but its peak is broad and it responds to the mix of bright and
    dark regions entering or leaving the frame, so far out of focus it may not be monotone.
    Use it for low-detail scenes or a coarse scan; prefer the derivative measures for the
    final position. Any non-empty image works; one pixel gives 0.0.
    """
    gray = _as_supported(gray)
    if gray.size == 0:
        return 0.0
    mean, std = cv2.meanStdDev(gray)
    mean_value = float(mean[0, 0])
    if mean_value <= 0.0:
        return 0.0
    return float(std[0, 0] ** 2) / mean_value


def brenner(gray: np.ndarray) -> float:
    """Brenner gradient, both directions (Brenner et al. 1976).

    ``B = mean_xy((I(x+2, y) - I(x, y))^2) + mean_xy((I(x, y+2) - I(x, y))^2)``

    The classic form is horizontal only (and thresholded); the vertical term is added so a
    scene of horizontal lines still has a peak and the value does not depend on the camera's
    roll. The 2-px lag makes it cheap and sensitive to slightly coarser detail than the
    Laplacian: a wider capture range with a still well-defined peak. A direction whose size
    is below 3 px contributes 0.0.
    """
    gray = _as_supported(gray)
    total = 0.0
    height, width = gray.shape
    # |a - b| keeps uint8 and has the same square as a - b: one cheap absdiff per direction.
    if width >= 3:
        total += _mean_square(cv2.absdiff(gray[:, 2:], gray[:, :-2]))
    if height >= 3:
        total += _mean_square(cv2.absdiff(gray[2:, :], gray[:-2, :]))
    return total


MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    'laplacian_variance': laplacian_variance,
    'tenengrad': tenengrad,
    'normalized_variance': normalized_variance,
    'brenner': brenner,
}


def roi_pixels(width: int, height: int,
               roi: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Convert a normalised ROI (x, y, w, h in [0, 1]) to pixels (x, y, w, h).

    Edges are rounded to the nearest pixel boundary (``x0 = round(x * width)``,
    ``x1 = round((x + w) * width)``), clipped to the image, and the result is at least 1x1 so
    a tiny ROI on a small image still measures something.

    Raises ValueError if the image size is not positive, the ROI does not have four finite
    values, any value is outside [0, 1], w or h <= 0, or x + w > 1 or y + h > 1 (with 1e-6
    slack for rounding).
    """
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    try:
        x, y, w, h = (float(v) for v in roi)
    except (TypeError, ValueError):
        raise ValueError(f'roi must be four numbers (x, y, w, h) in [0, 1], got {roi!r}') from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f'roi values must be finite, got {roi!r}')
    if w <= 0 or h <= 0:
        raise ValueError(f'roi width and height must be > 0, got w={w}, h={h}')
    for name, value in (('x', x), ('y', y), ('w', w), ('h', h)):
        if value < -_ROI_SLACK or value > 1 + _ROI_SLACK:
            raise ValueError(f'roi {name}={value} is outside [0, 1]; the ROI is normalised '
                             f'to the image size')
    if x + w > 1 + _ROI_SLACK or y + h > 1 + _ROI_SLACK:
        raise ValueError(f'roi leaves the image: x+w={x + w:g}, y+h={y + h:g} (must be <= 1)')
    width, height = int(width), int(height)
    x0 = min(max(int(round(x * width)), 0), width - 1)
    y0 = min(max(int(round(y * height)), 0), height - 1)
    x1 = min(max(int(round((x + w) * width)), x0 + 1), width)
    y1 = min(max(int(round((y + h) * height)), y0 + 1), height)
    return x0, y0, x1 - x0, y1 - y0


def prepare(gray: np.ndarray, roi_px: tuple[int, int, int, int],
            downsample: int = 1) -> np.ndarray:
    """Crop ``gray`` to ``roi_px`` (a view, no copy) and area-downsample by an integer factor.

    With ``downsample = d > 1`` the crop is first trimmed to a multiple of d (dropping fewer
    than d edge pixels) so cv2.resize(INTER_AREA) averages exact d x d blocks; a crop smaller
    than d in a direction becomes one pixel wide there. Averaging d x d blocks cuts white
    noise variance by d^2 while keeping the detail that focus changes, which is what makes
    the derivative measures usable on noisy full-resolution frames.
    """
    if isinstance(downsample, bool) or int(downsample) != downsample or downsample < 1:
        raise ValueError(f'downsample must be an integer >= 1, got {downsample!r}')
    downsample = int(downsample)
    x, y, w, h = (int(v) for v in roi_px)
    crop = gray[y:y + h, x:x + w]
    if downsample == 1 or crop.size == 0:
        return crop
    out_w = max(1, crop.shape[1] // downsample)
    out_h = max(1, crop.shape[0] // downsample)
    crop = crop[:out_h * downsample, :out_w * downsample]
    if crop.dtype not in (np.uint8, np.float32):
        crop = crop.astype(np.float32)
    return cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)


def compute(gray: np.ndarray, names: Sequence[str], roi=DEFAULT_ROI,
            downsample: int = 1) -> dict[str, float]:
    """Crop to ``roi`` (normalised), downsample, and evaluate each named measure.

    Returns ``{name: value}`` in the order given. An unknown name raises ValueError listing
    the known ones (before any work is done). A single string is accepted as one name.
    """
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in MEASURES]
    if unknown:
        raise ValueError(f'unknown focus measure(s) {", ".join(map(repr, unknown))}; '
                         f'known: {", ".join(MEASURES)}')
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f'expected a 2-D grey image, got shape {gray.shape}')
    region = prepare(gray, roi_pixels(gray.shape[1], gray.shape[0], roi), downsample)
    return {name: MEASURES[name](region) for name in names}
