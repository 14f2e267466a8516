"""A lens + scene simulator: what a camera sees through a focus-motor-driven lens.

No ROS here: the simulator node wraps :class:`LensSimulator` and the tests drive it directly.

Model
-----
A fixed grey scene (``LensConfig.scene``) is imaged through a thin lens whose blur circle
(circle of confusion) grows linearly with the distance of the motor from the in-focus position::

    r(p) = min(max_blur_radius, blur_per_unit * |p - focus_position|)      [pixels]

The point-spread function is a pillbox (uniform disk) of radius ``r``, integrated over the
source and sensor pixel squares (see :func:`disk_kernel`), so the image changes smoothly with
``r`` even below one pixel and the sharpness curve has a real peak at ``focus_position``
instead of a flat top. Gaussian read noise of ``noise_sigma`` grey levels is added after the
blur, then the frame is quantised to 8 bits and returned as bgr8.

If the lens moves during the exposure (``end_position``), the frame is the average of the
defocused images along the way: motion blur through focus.

Optional realism (LensConfig, all off by default): a Gaussian softening of the pillbox
(``psf_gaussian``), photon shot noise (``photon_gain``), exposure flicker (``flicker``), a
low-contrast scene and a scene with two depth planes. Gear backlash is :class:`Gear`;
time (settle, frame period, latency) is simulated by :mod:`autofocus.tools.benchmark`.
:class:`FocusStack` replays a real focus stack as a lens.

Performance
-----------
Blurred scenes are cached per blur radius quantised to :data:`RADIUS_QUANTUM` px (LRU, bounded
by :data:`CACHE_BYTES`); a radius between two quanta is rendered by blending the two cached
neighbours linearly, so the curve stays smooth while a cache hit costs two look-ups and a
few whole-frame cv2 passes (well under 1 ms at 640x480). Noise comes from a small bank of
precomputed Gaussian fields viewed at a random offset: no per-frame random generation.
"""
from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

SCENES = ('texture', 'checker', 'flat', 'low_texture', 'two_planes')

# Blur radii are cached on this grid (px); in between, the two neighbours are blended.
RADIUS_QUANTUM = 0.25
# Memory budget for the cache of blurred scenes (stored as uint8, one byte per pixel).
CACHE_BYTES = 64 * 1024 * 1024
# At most this many distinct radii along a motion-blurred exposure.
MAX_MOTION_SAMPLES = 9
# Noise bank: this many precomputed fields, each NOISE_MARGIN px larger on every side than a
# frame, so a random window into them gives (2 * margin + 1)^2 * fields distinct noise frames.
NOISE_FIELDS = 4
NOISE_MARGIN = 32
# Resolution of the lens at best focus (diffraction, aberrations, sensor): a Gaussian PSF of
# this sigma (px) is part of the in-focus scene. Without it the 1-px detail of a synthetic
# scene vanishes at the first fraction of a pixel of defocus, and the Laplacian peak is
# unrealistically narrow (10 motor units wide) and far above the noise floor.
IN_FOCUS_SIGMA = 0.7
# Sub-pixel supersampling factor for the pillbox kernel (odd, so that pixel centres fall on
# the fine grid).
KERNEL_SUPERSAMPLING = 9


@dataclass
class LensConfig:
    """What the simulated camera, lens and scene look like.

    ``blur_per_unit`` sets how fast focus is lost: with the defaults the blur radius is 1 px
    20 units from focus and 25 px at the ends of a 0..1000 range. Measured focus curves
    (texture scene, centre ROI, no downsample): the Laplacian variance is 40 units wide at
    half height, still 0.23 of its peak 50 units out (so a 100-unit coarse scan always
    sees it) and falls to a noise floor of 0.14 of the peak (20 * noise_sigma^2 = 80);
    tenengrad and brenner are 80 and 60 units wide with floors of 1-2%;
    normalized_variance is 360 wide. 0.05 was kept: a search with the SearchConfig
    defaults ends within 1 unit of focus on it.
    """

    width: int = 640
    height: int = 480
    focus_position: float = 500.0     # motor units where the scene is sharp
    blur_per_unit: float = 0.05       # pillbox radius in px per motor unit away from focus
    max_blur_radius: float = 40.0     # px; the blur stops growing here (lens end stop)
    noise_sigma: float = 2.0          # grey levels, Gaussian read noise added after the blur
    scene: str = 'texture'            # one of SCENES
    seed: int = 0                     # scene layout and noise
    # Realism, all off by default (the defaults above reproduce the original simulator):
    psf_gaussian: float = 0.0         # extra Gaussian blur, sigma = this x pillbox radius
    photon_gain: float = 0.0          # electrons per grey level (shot noise var = grey / gain)
    flicker: float = 0.0              # relative std of the exposure gain, frame to frame
    second_plane_offset: float = 250.0  # 'two_planes': far plane's focus - focus_position


def _validate(config: LensConfig) -> None:
    """Raise ValueError naming the bad field and how to fix it."""
    for field in ('width', 'height'):
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f'LensConfig.{field} must be a positive integer (pixels), '
                             f'got {value!r}')
    for field in ('focus_position', 'blur_per_unit', 'max_blur_radius', 'noise_sigma'):
        value = getattr(config, field)
        if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise ValueError(f'LensConfig.{field} must be a finite number, got {value!r}')
    for field in ('psf_gaussian', 'photon_gain', 'flicker', 'second_plane_offset'):
        value = getattr(config, field)
        if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise ValueError(f'LensConfig.{field} must be a finite number, got {value!r}')
    for field in ('blur_per_unit', 'max_blur_radius', 'noise_sigma', 'psf_gaussian',
                  'photon_gain', 'flicker'):
        if getattr(config, field) < 0:
            raise ValueError(f'LensConfig.{field} must be >= 0, got {getattr(config, field)!r}')
    if config.scene not in SCENES:
        raise ValueError(f'LensConfig.scene {config.scene!r} is unknown; '
                         f'use one of {", ".join(SCENES)}')


def disk_kernel(radius: float) -> np.ndarray:
    """Normalised pillbox (uniform disk) kernel of ``radius`` px, float32, odd square size.

    The weight of offset (i, j) is the light a uniformly lit source pixel sends through a disk
    PSF of radius r into the sensor pixel (i, j) away::

        k(i, j) = (box * disk_r * box)(i, j) / sum,       box = 1-px square, * = convolution

    i.e. the disk convolved with a one-pixel tent and sampled at integer offsets, computed by
    supersampling. Unlike a plain disk mask this leaks light into the neighbours in
    proportion to r for r < 0.5 px, so the image (and its sharpness) changes continuously and
    is sharpest only at r = 0, where the kernel is the identity [[1]].
    """
    if radius < 0 or not math.isfinite(radius):
        raise ValueError(f'radius must be finite and >= 0, got {radius!r}')
    if radius == 0:
        return np.ones((1, 1), np.float32)
    s = KERNEL_SUPERSAMPLING
    half = int(math.ceil(radius)) + 1               # disk + one-pixel tent support, in px
    n = 2 * half * s + 1
    t = (np.arange(n, dtype=np.float64) - half * s) / s
    disk = (t[:, None] ** 2 + t[None, :] ** 2 <= radius * radius).astype(np.float32)
    if disk.sum() == 0:                             # radius far below the fine grid step
        disk[half * s, half * s] = 1.0
    # Two 1-px boxes (s fine samples each) = a tent of half-width 1 px, centred (s is odd).
    tent = cv2.blur(disk, (s, s), borderType=cv2.BORDER_CONSTANT)
    tent = cv2.blur(tent, (s, s), borderType=cv2.BORDER_CONSTANT)
    kernel = tent[::s, ::s]                         # pixel centres: every s-th fine sample
    # Trim an all-zero outer ring (the support estimate is generous).
    while kernel.shape[0] > 1 and not kernel[0].any() and not kernel[:, 0].any():
        kernel = kernel[1:-1, 1:-1]
    return np.ascontiguousarray(kernel / kernel.sum(), dtype=np.float32)


def make_scene(scene: str, width: int, height: int, seed: int = 0) -> np.ndarray:
    """The in-focus grey scene, float32 in 0..255, shape (height, width).

    The scene is what the lens renders at best focus: the synthetic pattern blurred by a
    Gaussian of :data:`IN_FOCUS_SIGMA` px (the lens's own resolution limit).

    - ``'texture'``: shading gradients and a smooth random field, blobs of many sizes, edges
      (rectangles, lines), text-like marks and a fine grain, spread over the whole frame so
      every region of interest has detail at every scale.
    - ``'checker'``: 32-px black-and-white checkerboard (levels 48 and 208).
    - ``'flat'``: featureless mid-grey: no focus information at all.
    - ``'low_texture'``: the texture at 25% of its contrast around mid-grey: a weak,
      low-contrast scene (a wall, skin) where noise matters.
    - ``'two_planes'``: the in-focus texture of the near plane; :class:`LensSimulator` puts
      a second, lower-contrast texture at ``focus_position + second_plane_offset`` on the
      right 40% of the frame (two depth planes, two peaks).
    """
    if scene not in SCENES:
        raise ValueError(f'unknown scene {scene!r}; use one of {", ".join(SCENES)}')
    if scene == 'flat':
        return np.full((height, width), 128.0, np.float32)
    if scene == 'checker':
        cell = 32
        ys = (np.arange(height) // cell)[:, None]
        xs = (np.arange(width) // cell)[None, :]
        pattern = np.where((ys + xs) % 2 == 0, 48.0, 208.0).astype(np.float32)
    else:
        pattern = _texture_scene(width, height, np.random.default_rng(seed))
        if scene == 'low_texture':
            pattern = 128.0 + 0.25 * (pattern - np.float32(pattern.mean()))
    return cv2.GaussianBlur(pattern, (0, 0), IN_FOCUS_SIGMA, borderType=cv2.BORDER_REFLECT)


def _texture_scene(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Rich synthetic texture (see :func:`make_scene`); drawing loops are over shapes only."""
    # Shading: a linear ramp plus a smooth random field (low frequencies only).
    ramp = (100.0 + 50.0 * np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
            + 30.0 * np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None])
    coarse = rng.normal(0.0, 1.0, (height // 48 + 3, width // 48 + 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * 18.0
    canvas = np.clip(ramp + smooth, 0, 255).astype(np.uint8)

    # Shapes are drawn on 8-bit (cv2 anti-aliases only there). Their number scales with the
    # area so density, and hence sharpness, does not depend on the frame size.
    area_scale = width * height / (640 * 480)
    size = min(width, height)

    def point():
        return int(rng.integers(0, width)), int(rng.integers(0, height))

    def grey():
        return int(rng.integers(10, 246))

    for _ in range(max(1, int(70 * area_scale))):          # blobs of many sizes
        axes = (int(rng.integers(2, max(3, size // 10))), int(rng.integers(2, max(3, size // 10))))
        cv2.ellipse(canvas, point(), axes, float(rng.uniform(0, 180)), 0, 360, grey(), -1,
                    cv2.LINE_AA)
    for _ in range(max(1, int(25 * area_scale))):          # hard-edged rectangles, some hollow
        x0, y0 = point()
        x1 = x0 + int(rng.integers(4, max(5, size // 6)))
        y1 = y0 + int(rng.integers(4, max(5, size // 6)))
        thickness = -1 if rng.random() < 0.5 else int(rng.integers(1, 4))
        cv2.rectangle(canvas, (x0, y0), (x1, y1), grey(), thickness)
    for _ in range(max(1, int(40 * area_scale))):          # lines of several widths
        cv2.line(canvas, point(), point(), grey(), int(rng.integers(1, 4)), cv2.LINE_AA)
    letters = np.array(list('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789'))
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX)
    for _ in range(max(1, int(45 * area_scale))):          # text-like marks, fine to bold
        text = ''.join(rng.choice(letters, int(rng.integers(2, 8))))
        font = fonts[int(rng.integers(0, len(fonts)))]
        scale = float(rng.uniform(0.3, 1.4)) * max(0.5, size / 480)
        cv2.putText(canvas, text, point(), font, scale, grey(), int(rng.integers(1, 3)),
                    cv2.LINE_AA)

    # Fine grain (paper/fabric-like): band-limited noise so detail exists at 1-2 px too.
    grain = cv2.GaussianBlur(rng.normal(0.0, 1.0, (height, width)).astype(np.float32),
                             (0, 0), 0.8) * 14.0
    return np.clip(canvas.astype(np.float32) + grain, 0, 255)


class LensSimulator:
    """Renders what the camera sees with the focus motor at a given position.

    Thread-safe: the cache is guarded by a lock, so a node may render from several callbacks.
    """

    def __init__(self, config: LensConfig):
        _validate(config)
        self.config = config
        self._scene = make_scene(config.scene, config.width, config.height, config.seed)
        self._far_scene = None
        if config.scene == 'two_planes':
            far = make_scene('texture', config.width, config.height, config.seed + 1)
            self._far_scene = (128.0 + 0.6 * (far - 128.0)).astype(np.float32)
            mask = np.zeros((config.height, config.width), np.float32)
            mask[:, int(round(0.6 * config.width)):] = 1.0
            self._far_mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
        self._rng = np.random.default_rng(config.seed)
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._cache_entries = int(np.clip(CACHE_BYTES // (config.width * config.height), 8, 256))
        self._lock = threading.Lock()
        noise_shape = (config.height + 2 * NOISE_MARGIN, config.width + 2 * NOISE_MARGIN)
        noise_rng = np.random.default_rng([config.seed, 1])
        self._noise_bank = [
            noise_rng.standard_normal(noise_shape, dtype=np.float32) * np.float32(
                config.noise_sigma) for _ in range(NOISE_FIELDS if config.noise_sigma > 0 else 0)]
        # Unit-variance fields for shot noise (scaled per pixel), only when it is on.
        shot_rng = np.random.default_rng([config.seed, 2])
        self._unit_noise = [shot_rng.standard_normal(noise_shape, dtype=np.float32)
                            for _ in range(NOISE_FIELDS if config.photon_gain > 0 else 0)]

    @property
    def scene(self) -> np.ndarray:
        """The in-focus grey scene (float32, 0..255); do not modify."""
        return self._scene

    def blur_radius(self, position: float) -> float:
        """Blur-circle radius in px: ``min(max_blur_radius, blur_per_unit * |p - focus|)``."""
        c = self.config
        return float(min(c.max_blur_radius, c.blur_per_unit * abs(position - c.focus_position)))

    def render(self, position: float, end_position: float | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """A bgr8 frame, shape (height, width, 3), uint8, with the lens at ``position``.

        If ``end_position`` is given and differs, the lens moved from ``position`` to
        ``end_position`` during the exposure: the frame is the mean of the defocused images at
        evenly spaced positions between them (about one per RADIUS_QUANTUM of blur change, 2
        to :data:`MAX_MOTION_SAMPLES`). A frame exposed while sweeping through focus is much
        less sharp than a static one at the midpoint (0.4x for 450 -> 550 with the
        defaults); away from focus the difference is a few percent.

        ``rng`` chooses the noise; by default the simulator's own generator (seeded from
        ``config.seed``) is used, so a fresh simulator replays the same frames. The noise of
        a frame is a random window into one of a few precomputed Gaussian fields: exact
        per-pixel statistics, independent enough from frame to frame for focus measures,
        but not suitable for studying temporal noise averaging over many frames.
        """
        if not math.isfinite(position):
            raise ValueError(f'position must be finite, got {position!r}')
        if end_position is not None and not math.isfinite(end_position):
            raise ValueError(f'end_position must be finite, got {end_position!r}')
        rng = rng if rng is not None else self._rng
        grey = self._exposure(position, end_position, 0)
        if self._far_scene is not None:
            offset = self.config.second_plane_offset
            far = self._exposure(position - offset,
                                 None if end_position is None else end_position - offset, 1)
            grey = grey + self._far_mask * (far - grey)
        if self.config.flicker > 0:
            grey = grey * np.float32(max(0.0, 1.0 + self.config.flicker * rng.standard_normal()))
        noisy = self._add_noise(grey, rng)
        return cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR)

    def render_gray(self, position: float, end_position: float | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
        """Like :meth:`render` but a single uint8 grey channel (what the measures use)."""
        return cv2.cvtColor(self.render(position, end_position, rng), cv2.COLOR_BGR2GRAY)

    # -- internals -------------------------------------------------------------------------

    def _exposure(self, position: float, end_position: float | None,
                  plane: int) -> np.ndarray:
        """The noiseless float32 image of one plane, motion-blurred if the lens moved."""
        if end_position is None or end_position == position:
            return self._blurred(self.blur_radius(position), plane)
        radii = self._motion_radii(position, end_position)
        weight = 1.0 / len(radii)
        grey = self._blurred(radii[0], plane) * np.float32(weight)
        for radius in radii[1:]:
            # Accumulate in float; cv2.scaleAdd is one pass per sample.
            grey = cv2.scaleAdd(self._blurred(radius, plane), weight, grey)
        return grey

    def _motion_radii(self, start: float, end: float) -> list[float]:
        """Blur radii at evenly spaced positions from start to end (inclusive)."""
        c = self.config
        travel = c.blur_per_unit * abs(end - start)   # px of blur change along the path
        count = int(np.clip(math.ceil(travel / RADIUS_QUANTUM) + 1, 2, MAX_MOTION_SAMPLES))
        positions = np.linspace(start, end, count)
        return [self.blur_radius(float(p)) for p in positions]

    def _blurred(self, radius: float, plane: int = 0) -> np.ndarray:
        """Scene blurred by a pillbox of ``radius``, float32; blends the two nearest quanta."""
        q = radius / RADIUS_QUANTUM
        lower = int(math.floor(q))
        frac = q - lower
        low = self._cached(lower, plane)
        if frac < 1e-6:
            return low.astype(np.float32)
        return cv2.addWeighted(low, 1.0 - frac, self._cached(lower + 1, plane), frac, 0.0,
                               dtype=cv2.CV_32F)

    def _cached(self, quantum: int, plane: int = 0) -> np.ndarray:
        """uint8 scene blurred by a pillbox of radius quantum * RADIUS_QUANTUM (LRU cache)."""
        key = quantum if plane == 0 else (plane, quantum)
        with self._lock:
            image = self._cache.get(key)
            if image is not None:
                self._cache.move_to_end(key)
                return image
        scene = self._scene if plane == 0 else self._far_scene
        radius = quantum * RADIUS_QUANTUM
        kernel = disk_kernel(radius)
        if kernel.shape == (1, 1):
            blurred = scene
        else:
            # Reflecting borders keep the frame edges from darkening as the blur grows.
            blurred = cv2.filter2D(scene, cv2.CV_32F, kernel,
                                   borderType=cv2.BORDER_REFLECT)
        if self.config.psf_gaussian > 0 and radius > 0:
            # Real defocus PSFs are pillboxes with soft edges (aberrations, diffraction).
            blurred = cv2.GaussianBlur(blurred, (0, 0), self.config.psf_gaussian * radius,
                                       borderType=cv2.BORDER_REFLECT)
        # Stored as 8 bits to keep the cache small; rounding (0.3 grey rms) is far below
        # the read noise and the blend of two quanta is done in float.
        image = np.clip(blurred + 0.5, 0, 255).astype(np.uint8)
        with self._lock:
            self._cache[key] = image
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return image

    def _add_noise(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add shot and read noise from the banks at random windows; quantise to uint8."""
        if self._unit_noise:
            # Shot noise: variance grey / photon_gain (grey levels^2), scaled per pixel.
            if grey.dtype != np.float32:
                grey = grey.astype(np.float32)
            shot = self._unit_noise[int(rng.integers(0, len(self._unit_noise)))]
            dy, dx = (int(v) for v in rng.integers(0, 2 * NOISE_MARGIN + 1, size=2))
            scale = cv2.sqrt(cv2.max(grey, 0.0) * np.float32(1.0 / self.config.photon_gain))
            grey = grey + shot[dy:dy + self.config.height, dx:dx + self.config.width] * scale
        if not self._noise_bank:
            return cv2.convertScaleAbs(grey) if grey.dtype != np.uint8 else grey.copy()
        field = self._noise_bank[int(rng.integers(0, len(self._noise_bank)))]
        dy, dx = (int(v) for v in rng.integers(0, 2 * NOISE_MARGIN + 1, size=2))
        noise = field[dy:dy + self.config.height, dx:dx + self.config.width]
        if grey.dtype != np.float32:
            grey = grey.astype(np.float32)
        # cv2.add saturates to 0..255 and rounds when writing CV_8U.
        return cv2.add(grey, noise, dtype=cv2.CV_8U)


class Gear:
    """Gear play (backlash) between a focus motor and the lens: a dead band on reversal.

    The lens sits somewhere in a gap of width ``backlash`` around the motor: while the motor
    pushes up the lens is at ``motor - backlash / 2``, while it pushes down at
    ``motor + backlash / 2``, and after a reversal the motor first crosses the gap with the
    lens standing still. ``drive(motor)`` returns the lens position for a new motor position.
    """

    def __init__(self, backlash: float = 0.0, motor: float = 0.0):
        if not math.isfinite(backlash) or backlash < 0:
            raise ValueError(f'backlash must be finite and >= 0, got {backlash!r}')
        self.backlash = float(backlash)
        self.motor = float(motor)
        self.lens = float(motor) - self.backlash / 2.0     # as if last driven upwards

    def drive(self, motor: float) -> float:
        half = self.backlash / 2.0
        self.motor = float(motor)
        if self.motor - half > self.lens:
            self.lens = self.motor - half
        elif self.motor + half < self.lens:
            self.lens = self.motor + half
        return self.lens


class FocusStack:
    """A "lens" that replays a real focus stack: position -> the nearest recorded frame.

    ``frames`` maps a position (e.g. Z in mm) to a 2-D uint8 grey frame. With ``end_position``
    the frame is the mean of the recorded frames along the way (motion blur); optional
    Gaussian read noise and exposure flicker as in :class:`LensSimulator`.
    """

    def __init__(self, frames: dict[float, np.ndarray], noise_sigma: float = 0.0,
                 flicker: float = 0.0, seed: int = 0):
        if not frames:
            raise ValueError('a focus stack needs at least one frame')
        self.positions = np.array(sorted(frames), dtype=np.float64)
        self._frames = [np.asarray(frames[p], np.uint8) for p in sorted(frames)]
        shape = self._frames[0].shape
        if any(f.ndim != 2 or f.shape != shape for f in self._frames):
            raise ValueError('focus stack frames must be 2-D grey images of one size')
        self.noise_sigma = float(noise_sigma)
        self.flicker = float(flicker)
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_directory(cls, directory, pattern: str = 'z*.jpg', **kwargs) -> 'FocusStack':
        """Load ``z<position>.jpg`` frames (e.g. ``z-049.jpg``) as greyscale."""
        import pathlib
        frames = {}
        for path in sorted(pathlib.Path(directory).glob(pattern)):
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f'cannot read {path}')
            frames[float(path.stem[1:])] = image
        return cls(frames, **kwargs)

    @property
    def range(self) -> tuple[float, float]:
        return float(self.positions[0]), float(self.positions[-1])

    def nearest(self, position: float) -> int:
        return int(np.argmin(np.abs(self.positions - position)))

    def render_gray(self, position: float, end_position: float | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
        if not math.isfinite(position) or (end_position is not None
                                           and not math.isfinite(end_position)):
            raise ValueError('positions must be finite')
        rng = rng if rng is not None else self._rng
        if end_position is None or end_position == position:
            grey = self._frames[self.nearest(position)].astype(np.float32)
        else:
            indices = sorted({self.nearest(p) for p in np.linspace(position, end_position, 9)})
            grey = np.mean([self._frames[i] for i in indices], axis=0, dtype=np.float32)
        if self.flicker > 0:
            grey = grey * np.float32(max(0.0, 1.0 + self.flicker * rng.standard_normal()))
        if self.noise_sigma > 0:
            grey = grey + rng.standard_normal(grey.shape, dtype=np.float32) * np.float32(
                self.noise_sigma)
        return np.clip(grey + 0.5, 0, 255).astype(np.uint8)
