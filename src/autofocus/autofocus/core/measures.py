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

Which measure to use (measured on the simulator and on every real series we have; the
tables are in docs/measures.md, produced by ``tools/measure_study.py``):

- ``normalized_vollath_f4`` (default, at downsample 1): Vollath's F4
  divided by the frame's energy ``mean(I^2)``. Exposure-proof (a gain cancels), unbiased
  by white sensor noise (F4 cancels it), so it needs no downsample, and a downsample is
  what moved the fitted peak of the real fpd sweep by 1.8 mm (Laplacian, downsample 2) to
  11 mm (``dct_energy_ratio``, downsample 3): on a real lens lower spatial frequencies
  peak elsewhere.
- ``laplacian_variance`` (the default until issue 12, at downsample 2): the most
  selective (sharp, narrow peak), cheap. White noise sets a floor ``20 sigma^2`` that
  swamps it on noisy full-resolution frames (on the fpd sweep with simulated noise its
  peak moves 16 mm), and a downsample, which lowers the floor, moves the peak instead.
  Follows exposure. Frames with a 2-px pattern (Bayer demosaicing, 2x upscaling) need an
  odd downsample if any.
- ``tenengrad``, ``brenner``, ``scharr_variance``, ``tenengrad_variance``: gradient
  energies with broader peaks and less noise gain than the Laplacian; all follow exposure.
  ``normalized_tenengrad`` is tenengrad over ``mean(I^2)``: exposure-proof, but its noise
  floor grows as the frame darkens.
- ``normalized_variance``: plain contrast (variance / mean). Despite its name it follows
  exposure (it scales with the gain) and on the fpd sweep it peaks 40 mm from focus; a
  coarse look at low-detail scenes only.
- ``vollath_f4`` (noise-robust, follows exposure), ``modified_laplacian``,
  ``dct_energy_ratio`` (exposure-invariant, but its noise floor grows as frames darken and
  its peak moves the most with the downsample): see their docstrings.

:data:`FEATURES` holds the seed blur classifier's feature vector (Laplacian variance and
maximum, Scharr variance, a noise sigma estimate). ``laplacian_max`` and ``noise_sigma`` are
not focus measures (one extreme pixel; a noise estimate), so they are not in
:data:`MEASURES`, whose keys the sharpness node computes by default.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

DEFAULT_ROI = (0.25, 0.25, 0.5, 0.5)   # normalised (x, y, w, h): the centred half
# The default (docs/measures.md): unbiased at full resolution, noise- and exposure-proof
# on every real set we have. Its flat-scene curve (relative contrast ~0.25) is judged flat
# against the noise the search measures and textureless frames are NO_SIGNAL (issue 12),
# so it no longer hangs on the old 0.3 contrast margin.
DEFAULT_MEASURE = 'normalized_vollath_f4'
DEFAULT_DOWNSAMPLE = 1   # no low-pass: a downsample moves the fitted peak on a real lens
PROPOSED_MEASURE = DEFAULT_MEASURE        # the names the study and its tests use
PROPOSED_DOWNSAMPLE = DEFAULT_DOWNSAMPLE
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

    Global contrast rather than edges. NOT exposure-invariant, whatever its name suggests:
    a gain ``g`` on the image scales ``var`` by ``g^2`` and ``mean`` by ``g``, so ``NV``
    scales by ``g`` and follows the lighting (on the real defocus x exposure series it ranks
    defocus differently at each exposure and a scan whose exposure rises with defocus peaks
    8 steps from focus). It is almost blind to pixel noise, but its peak is broad and it
    responds to the mix of bright and dark regions entering or leaving the frame: on the
    real fpd-xp005 sweep it peaks near Z = -86 mm, about 40 mm from focus, following the
    illumination fall-off (docs/measures.md). Not a fine-focus measure; kept for a coarse
    look at a low-detail scene. For an exposure-proof measure use
    :func:`normalized_vollath_f4`. Any non-empty image works; one pixel gives 0.0.
    """
    gray = _as_supported(gray)
    if max(gray.shape) < 3:
        return 0.0                  # smaller than F4's 3-px support in both directions
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


def modified_laplacian(gray: np.ndarray) -> float:
    """Modified Laplacian, mean form of Nayar's sum-modified-Laplacian (Nayar & Nakagawa 1994).

    ``ML = mean(|I * [1, -2, 1]| + |I * [1, -2, 1]^T|)`` (reflected borders; the SML's
    window sum is taken over the whole ROI and its threshold is 0, so the value does not
    depend on the ROI size).

    Unlike the Laplacian the two second derivatives are added in absolute value, so they
    cannot cancel (a saddle-shaped detail still counts). The L1 norm weighs rare strong
    edges less than a variance does: a slightly broader, steadier peak than
    ``laplacian_variance`` and a noise floor that grows with sigma, not sigma^2. Good for
    microscopy-like scenes with fine texture. Needs at least 3 px in a direction, else that
    direction contributes 0.0.
    """
    gray = _as_supported(gray)
    height, width = gray.shape
    depth = _derivative_depth(gray)
    total = 0.0
    if width >= 3:
        total += cv2.norm(cv2.filter2D(gray, depth, _SECOND_DIFF_X,
                                       borderType=cv2.BORDER_REFLECT_101), cv2.NORM_L1)
    if height >= 3:
        total += cv2.norm(cv2.filter2D(gray, depth, _SECOND_DIFF_Y,
                                       borderType=cv2.BORDER_REFLECT_101), cv2.NORM_L1)
    return total / gray.size if gray.size else 0.0


def tenengrad_variance(gray: np.ndarray) -> float:
    """Tenengrad variance: variance of the Sobel gradient magnitude (Pech-Pacheco et al. 2000).

    ``TV = var(sqrt(Gx^2 + Gy^2))`` with the 3x3 Sobel derivatives of :func:`tenengrad`.

    Measures how *unevenly* the gradient is spread rather than how much there is: a sharp
    image has a few very strong edges among flat areas, a blurred one many weak gradients.
    Less sensitive than Tenengrad to a uniform gradient (shading) and to exposure offsets,
    similar selectivity. A good alternative to ``tenengrad`` on scenes with smooth shading.
    Computed in float32 (cv2.magnitude). Needs at least 3x3 pixels, else 0.0.
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    _, std = cv2.meanStdDev(cv2.magnitude(gx, gy))
    return float(std[0, 0] ** 2)


def vollath_f4(gray: np.ndarray) -> float:
    """Vollath's F4 autocorrelation measure (Vollath 1987), both directions.

    ``F4 = mean(I(x) I(x+1)) - mean(I(x) I(x+2))`` per direction, evaluated through the
    identity ``I(x) I(x+k) = (I(x)^2 + I(x+k)^2 - d_k^2) / 2`` with ``d_k = I(x+k) - I(x)``::

        F4 = (mean(d_2^2) - mean(d_1^2)) / 2                 (summed over x and y)

    (exact up to the few border pixels, and exactly 0 on a constant image), clipped at 0.

    The difference of the lag-1 and lag-2 autocorrelations cancels uncorrelated noise
    (white noise has equal mean(d_1^2) and mean(d_2^2)), so F4 is one of the most
    noise-robust derivative measures (Santos et al. 1997; Sun et al. 2004); its peak is
    about as broad as Brenner's. The right choice for noisy, low-light frames where the
    Laplacian's floor hides the peak. A direction below 3 px contributes 0.0.
    """
    gray = _as_supported(gray)
    height, width = gray.shape
    total = 0.0
    if width >= 3:
        total += (_mean_square(cv2.absdiff(gray[:, 2:], gray[:, :-2]))
                  - _mean_square(cv2.absdiff(gray[:, 1:], gray[:, :-1])))
    if height >= 3:
        total += (_mean_square(cv2.absdiff(gray[2:, :], gray[:-2, :]))
                  - _mean_square(cv2.absdiff(gray[1:, :], gray[:-1, :])))
    return max(0.0, 0.5 * total)


TEXTURE_FLOOR = 2e-4     # normalized_vollath_f4's constant floor, see there
ENERGY_FLOOR = 16.0      # grey levels^2 (4^2): mean(I^2) below this counts as this (see below)


def _energy(gray: np.ndarray) -> float:
    """mean(I^2), floored at :data:`ENERGY_FLOOR` so a black frame does not divide by ~0."""
    return max(_mean_square(gray), ENERGY_FLOOR)


def normalized_vollath_f4(gray: np.ndarray) -> float:
    """Vollath's F4 over the frame's energy: ``F4 / mean(I^2)`` (the default).

    ``mean(I^2) = mean(I)^2 + var(I)``, floored at :data:`ENERGY_FLOOR` (a black frame
    reads ~0, not "infinitely sharp").

    Why this one (evidence in docs/measures.md, produced by ``tools/measure_study.py``):

    - Exposure: a gain ``g`` scales F4 and ``mean(I^2)`` both by ``g^2``, so it cancels. On
      the real defocus x exposure series (centre ROI) it ranks defocus identically at every
      exposure, and the sharpest frame beats every defocused frame at every *other*
      exposure too, so a scan whose exposure changes from step to step finds focus.
      Dividing by ``mean(I)^2`` instead cancels the gain as well, but measured on that
      series it over-corrects (the dark frames read sharper) enough to lose that last
      property; the ``var(I)`` in ``mean(I^2)`` damps it.
    - Noise: F4's lag-2 minus lag-1 difference cancels spatially white noise in
      expectation (shot noise included, whose variance follows the brightness), so it can
      run at full resolution: on the fpd sweep with realistic and high simulated sensor
      noise its fitted peak moves by hundredths of a millimetre, where the Laplacian
      variance at full resolution moves by ~16 mm.
    - No downsample needed, so no bias: downsampling low-passes the image and on a real lens
      lower frequencies peak elsewhere (1.8 mm for the Laplacian at downsample 2 on the fpd
      sweep, 2.6 mm for F4 itself).

    ``+ TEXTURE_FLOOR`` (:data:`TEXTURE_FLOOR`, 2e-4; not added to a constant image, which
    gives 0.0): F4 cancels noise, so a textureless frame reads ~0 plus estimation noise, and
    the searches' relative-contrast flat test ``(max - min) / max`` would see a "peak" in
    that noise. The constant acts as the noise floor the Laplacian has by nature, but it is
    exposure-invariant and the same for every frame, so it changes neither rankings nor
    fitted peaks (a parabola's vertex ignores an offset). Chosen on the simulator: a flat
    scene at 160x120 with high noise stays below the default ``min_peak_contrast`` of 0.3,
    a low-texture scene at 160x120 stays well above it (docs/measures.md). Since issue 12
    a flat scene is judged by the searches' signal floor (:func:`signal_snr`) and the
    peak's significance against measured noise; the floor keeps curves without those
    figures at the old behaviour.

    Limits: noise that is correlated between neighbouring pixels (demosaicing, JPEG,
    denoising) is not cancelled; F4's band is mid-to-high frequency, so its peak is about
    as broad as Brenner's. A direction below 3 px contributes 0.0; below 3 px in both, 0.0.
    """
    gray = _as_supported(gray)
    if max(gray.shape) < 3:
        return 0.0                  # smaller than F4's 3-px support in both directions
    mean, std = cv2.meanStdDev(gray)
    if std[0, 0] == 0.0:
        return 0.0                  # constant: no information at all
    energy = max(float(std[0, 0] ** 2 + mean[0, 0] ** 2), ENERGY_FLOOR)
    return vollath_f4(gray) / energy + TEXTURE_FLOOR


def normalized_tenengrad(gray: np.ndarray) -> float:
    """Tenengrad over the frame's energy: ``T / mean(I^2)`` (floored as in
    :func:`normalized_vollath_f4`).

    Exposure-invariant like :func:`normalized_vollath_f4` (a gain cancels), but Sobel
    gradients keep white noise (gain 12 per direction): at full resolution on noisy frames
    the noise term ``~24 sigma^2 / mean(I^2)`` grows as the frame darkens, so the curve
    climbs towards dark frames (on the fpd sweep with simulated noise it peaks among the
    black frames at the end). Use it with a downsample, or on clean frames. Needs 3x3.
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    return tenengrad(gray) / _energy(gray)


DCT_BLOCK = 8
DCT_DARK_LEVEL = 16.0     # grey levels: block means below this count as this dark (see below)


def dct_energy_ratio(gray: np.ndarray) -> float:
    """DCT energy ratio: AC over DC energy of the 8x8 block DCT (Shen & Chen 2006).

    ``DR = sum_blocks(sum_AC c_uv^2) / sum_blocks(c_00^2)`` for the orthonormal 8x8 DCT of
    each block. By Parseval the AC energy of a block is ``64 var(block)`` and its DC energy
    ``64 mean(block)^2``, so no transform is needed::

        DR = sum_b var(b) / sum_b (mean(b)^2 + 16^2)

    (block means and mean squares by cv2.resize INTER_AREA; the crop is trimmed to whole
    blocks; the ``16^2`` floor, :data:`DCT_DARK_LEVEL`, keeps an almost black frame, whose
    DC is ~0, from reading as sharp: the real focus stack ends in black frames that
    otherwise win). Dividing by the DC energy makes it independent of exposure (a gain change
    cancels), which suits cameras with auto-exposure or flickering light; the 8-px block
    limits it to detail finer than the block, so its capture range is short (blur above
    ~4 px radius barely changes it). The measure JPEG-style autofocus on compressed frames
    used; prefer it under flicker. Needs one full block, else 0.0.
    """
    gray = _as_supported(gray)
    blocks_y, blocks_x = gray.shape[0] // DCT_BLOCK, gray.shape[1] // DCT_BLOCK
    if blocks_x == 0 or blocks_y == 0:
        return 0.0
    crop = gray[:blocks_y * DCT_BLOCK, :blocks_x * DCT_BLOCK].astype(np.float32)
    size = (blocks_x, blocks_y)
    means = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    mean_squares = cv2.resize(cv2.multiply(crop, crop), size, interpolation=cv2.INTER_AREA)
    # A dark floor keeps black frames (DC ~ 0) from reading as infinitely sharp.
    dc = float(cv2.norm(means, cv2.NORM_L2SQR))
    ac = float(cv2.sumElems(mean_squares)[0]) - dc
    return max(0.0, ac / (dc + means.size * DCT_DARK_LEVEL ** 2))


def scharr_variance(gray: np.ndarray) -> float:
    """Variance of the Scharr derivatives: ``var(Sx) + var(Sy)`` (3x3 Scharr, reflected borders).

    One of the seed blur classifier's features and a focus measure in its own right: the
    Scharr kernel is the rotation-invariant version of Sobel (weights 3-10-3), so the value
    depends less on the orientation of the scene's edges. Selectivity between Tenengrad and
    the Laplacian. Needs at least 3x3 pixels, else 0.0.
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    depth = cv2.CV_32F    # |Scharr| reaches 4080 on uint8: int16 would do, float32 is simpler
    total = 0.0
    for dx, dy in ((1, 0), (0, 1)):
        _, std = cv2.meanStdDev(cv2.Scharr(gray, depth, dx, dy))
        total += float(std[0, 0] ** 2)
    return total


def laplacian_max(gray: np.ndarray) -> float:
    """Largest absolute Laplacian response, ``max |L|`` (the kernel of :func:`laplacian_variance`).

    A blur-classifier feature, NOT a focus measure: one extreme pixel decides it, so a single
    specular highlight, hot pixel or noise spike dominates and the curve is neither smooth
    nor reliably monotone (on the real tools series it is not; see the tests). Useful only
    next to the variance, to tell "no detail at all" from "detail, but blurred".
    """
    gray = _as_supported(gray)
    if min(gray.shape) < 3:
        return 0.0
    _, high, _, _ = cv2.minMaxLoc(cv2.absdiff(cv2.Laplacian(gray, cv2.CV_32F), 0.0))
    return float(high)


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_SECOND_DIFF_X = np.array([[1, -2, 1]], np.float32)
_SECOND_DIFF_Y = _SECOND_DIFF_X.T.copy()


def noise_sigma(gray: np.ndarray) -> float:
    """Estimated standard deviation of white sensor noise, grey levels (Immerkaer 1996).

    ``sigma = sqrt(pi / 2) / (6 (W - 2) (H - 2)) * sum |I * N|`` over the interior, with
    ``N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (the difference of two Laplacians, which
    cancels most image structure). NOT a focus measure: it estimates noise, and is reported
    so a focus measure's floor (e.g. ``20 sigma^2`` for the Laplacian variance) can be judged
    or a blur classifier can normalise by it. Edges and fine texture bias it upwards, so a
    sharp frame reads a little noisier than a blurred one of the same sensor. Needs 3x3.
    """
    gray = _as_supported(gray)
    height, width = gray.shape
    if height < 3 or width < 3:
        return 0.0
    # int16 on uint8 is exact (|response| <= 16 * 255) and ~20x faster than float32 out.
    response = cv2.filter2D(gray, _derivative_depth(gray), _IMMERKAER)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * cv2.norm(response, cv2.NORM_L1)
                 / (6.0 * (width - 2) * (height - 2)))


# Focus measures: each is cheap (well under 1 ms on a 320x240 ROI), peaks at best focus and
# falls off to both sides. Keys are the names the sharpness node and focus server accept.
MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    'laplacian_variance': laplacian_variance,
    'tenengrad': tenengrad,
    'normalized_variance': normalized_variance,
    'brenner': brenner,
    'modified_laplacian': modified_laplacian,
    'tenengrad_variance': tenengrad_variance,
    'vollath_f4': vollath_f4,
    'dct_energy_ratio': dct_energy_ratio,
    'scharr_variance': scharr_variance,
    'normalized_vollath_f4': normalized_vollath_f4,
    'normalized_tenengrad': normalized_tenengrad,
}

# The seed blur classifier's feature vector: not all of these are focus measures (see
# laplacian_max and noise_sigma), so they are kept out of MEASURES. compute() accepts both.
FEATURES: dict[str, Callable[[np.ndarray], float]] = {
    'laplacian_variance': laplacian_variance,
    'laplacian_max': laplacian_max,
    'scharr_variance': scharr_variance,
    'noise_sigma': noise_sigma,
}


NOISE_SIGMA_FLOOR = 0.5   # grey levels: quantisation noise (1/sqrt(12)) and a little more


def signal_level(gray: np.ndarray) -> float:
    """Mean grey level of the frame (0-255 for 8-bit frames): is there light at all."""
    gray = _as_supported(gray)
    return float(cv2.mean(gray)[0])


def signal_snr(gray: np.ndarray) -> float:
    """Texture against noise: Vollath's F4 (which white noise leaves at 0 in expectation)
    over its own standard deviation on a frame of pure white noise, ``2 sigma^2 / sqrt(N)``
    (measured: 1.95-2.08 sigma^2 / sqrt(N) from 80x60 to 320x240), with ``sigma`` the
    frame's noise (:func:`noise_sigma`, floored at :data:`NOISE_SIGMA_FLOOR`) and ``N`` its
    pixels. A frame of pure noise (dark, or a featureless wall) reads about |N(0, 1)|; the
    simulator's low-texture scene in focus at 160x120 with realistic noise ~20, the real
    fpd sweep's lit frames hundreds. Not a focus measure: the searches' absolute signal
    floor (``NO_SIGNAL``). Edges bias the noise estimate up, which only lowers this.
    """
    gray = _as_supported(gray)
    sigma = max(noise_sigma(gray), NOISE_SIGMA_FLOOR)
    return vollath_f4(gray) * math.sqrt(gray.size) / (2.0 * sigma * sigma)


# What the searches' absolute signal floor is judged by (not focus measures): the sharpness
# node publishes them after the measures in sharpness/metrics.
SIGNALS: dict[str, Callable[[np.ndarray], float]] = {
    'signal_level': signal_level,
    'signal_snr': signal_snr,
}


def frame_signal(gray: np.ndarray) -> tuple[float, float]:
    """(:func:`signal_level`, :func:`signal_snr`) of a measured region."""
    return signal_level(gray), signal_snr(gray)


def blur_features(gray: np.ndarray, roi=DEFAULT_ROI, downsample: int = 1) -> dict[str, float]:
    """The blur classifier's features of ``gray`` (ROI + downsample as in :func:`compute`)."""
    return compute(gray, list(FEATURES), roi, downsample)


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


def evaluate(gray_roi: np.ndarray, names: Sequence[str], downsample: int = 1) -> list[float]:
    """Downsample a grey ROI already cut out and evaluate each named measure, in order.

    The sharpness node's work per frame (names must be keys of :data:`MEASURES` or
    :data:`SIGNALS`).
    """
    region = prepare(gray_roi, (0, 0, gray_roi.shape[1], gray_roi.shape[0]), downsample)
    known = {**MEASURES, **SIGNALS}
    return [known[name](region) for name in names]


def compute(gray: np.ndarray, names: Sequence[str], roi=DEFAULT_ROI,
            downsample: int = 1) -> dict[str, float]:
    """Crop to ``roi`` (normalised), downsample, and evaluate each named measure or feature.

    Returns ``{name: value}`` in the order given. An unknown name raises ValueError listing
    the known ones (before any work is done). A single string is accepted as one name.
    """
    if isinstance(names, str):
        names = [names]
    known = {**MEASURES, **FEATURES, **SIGNALS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f'unknown focus measure(s) {", ".join(map(repr, unknown))}; '
                         f'known: {", ".join(known)}')
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f'expected a 2-D grey image, got shape {gray.shape}')
    region = prepare(gray, roi_pixels(gray.shape[1], gray.shape[0], roi), downsample)
    return {name: known[name](region) for name in names}
