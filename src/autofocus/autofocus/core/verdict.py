"""Per-image focus verdict: CLEAR or BLURRY, judged on one image alone.

No ROS here: ``focus_analyze`` and ``focus_fleet`` call :func:`judge`.

A verdict relative to the best frame of a run cannot tell a folder of only
blurry images from a focus sweep, and a camera of a fleet has no sweep at all.
This module judges each image on its own terms with a no-reference blur
measure that depends little on the scene: scikit-image's
:func:`skimage.measure.blur_effect` (Crete-Roffet et al. 2007: how much the
image's edges lose when it is blurred again; 0 = sharp, 1 = blurry). It is a
ratio of the image with itself, so contrast and exposure cancel, unlike the
Laplacian variance, which spans decades from one scene to the next.

The threshold :data:`BLUR_EFFECT_THRESHOLD` was calibrated on the real
defocus series shipped in ``test/data`` by ``scripts/train_blur_verdict.py``
(labels from the known defocus step; figures in ``docs/blur_verdict.md``),
where a logistic regression on the seed classifier's features was also
evaluated, scene held out, against this threshold.

Two guards come before the threshold: a frame with almost no contrast (black,
a lens cap, fog, a plain wall) has no edges to judge, and blur_effect reads
it as *sharp* (the black frames of the real sweep score 0.09); it is BLURRY
with that reason. And large frames are area-reduced to at most
:data:`MAX_SIDE` px first, the scale the threshold was calibrated at (and 10x
cheaper on 1080p frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from autofocus.core import measures

CLEAR, BLURRY = 'CLEAR', 'BLURRY'

# blur_effect at or below which an image is CLEAR (calibrated, see the module docstring).
BLUR_EFFECT_THRESHOLD = 0.427
# Grey-level standard deviation below which a frame has no detail to judge.
MIN_CONTRAST = 4.0
# Longest side (px) a frame is reduced to before it is judged.
MAX_SIDE = 800
# The blur_effect filter size (scikit-image's default).
BLUR_EFFECT_SIZE = 11


@dataclass
class Verdict:
    verdict: str                   # CLEAR or BLURRY
    reason: str                    # why, in words
    blur_effect: float             # 0 (sharp) .. 1 (blurry); nan when there is no detail
    contrast: float                # grey-level standard deviation
    features: dict = field(default_factory=dict)   # the seed classifier's features

    @property
    def clear(self) -> bool:
        return self.verdict == CLEAR


def reduce(gray: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The grey image area-reduced by a whole factor so its longer side is at most max_side."""
    gray = np.asarray(gray)
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    if gray.ndim != 2 or min(gray.shape) == 0:
        raise ValueError(f'expected a non-empty grey or BGR image, got shape {gray.shape}')
    factor = -(-max(gray.shape) // max_side)
    if factor > 1:
        size = (max(1, gray.shape[1] // factor), max(1, gray.shape[0] // factor))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def blur_effect(gray: np.ndarray) -> float:
    """scikit-image's blur_effect of a (reduced) grey image: 0 sharp .. 1 blurry."""
    from skimage.measure import blur_effect as skimage_blur_effect
    if min(gray.shape) < 2 * BLUR_EFFECT_SIZE:
        raise ValueError(f'image of {gray.shape[1]}x{gray.shape[0]} px is too small to judge '
                         f'(at least {2 * BLUR_EFFECT_SIZE} px a side)')
    return float(skimage_blur_effect(gray.astype(np.float64), h_size=BLUR_EFFECT_SIZE))


def features(gray: np.ndarray) -> dict[str, float]:
    """blur_effect, contrast and the seed classifier's features of the whole (reduced) frame."""
    gray = reduce(gray)
    values = {'contrast': float(np.std(gray))}
    values['blur_effect'] = blur_effect(gray) if values['contrast'] >= MIN_CONTRAST \
        else float('nan')
    values.update(measures.blur_features(gray, roi=(0.0, 0.0, 1.0, 1.0)))
    return values


def judge(gray: np.ndarray, threshold: float = BLUR_EFFECT_THRESHOLD,
          model=None) -> Verdict:
    """The verdict of one grey (or BGR) image; model: a :class:`LogisticModel` or None.

    Raises ValueError for an image too small to judge.
    """
    values = features(gray)
    contrast, effect = values['contrast'], values['blur_effect']
    if contrast < MIN_CONTRAST:
        return Verdict(BLURRY, f'no detail to judge (grey std {contrast:.1f} < '
                               f'{MIN_CONTRAST:g}: dark, covered, fogged or plain)',
                       effect, contrast, values)
    if model is not None:
        p = model.probability(values)
        verdict = CLEAR if p >= 0.5 else BLURRY
        return Verdict(verdict, f'model P(clear) = {p:.2f}', effect, contrast, values)
    verdict = CLEAR if effect <= threshold else BLURRY
    sign = '<=' if verdict == CLEAR else '>'
    return Verdict(verdict, f'blur_effect {effect:.3f} {sign} {threshold:g}', effect, contrast,
                   values)


def rule_text(threshold: float = BLUR_EFFECT_THRESHOLD, model=None) -> str:
    """The rule judge() applies, in words, for reports."""
    guard = f'BLURRY when the grey std < {MIN_CONTRAST:g} (no detail)'
    if model is not None:
        return f'per image: {model.describe()}; {guard}'
    return (f'per image: CLEAR when skimage blur_effect <= {threshold:g} '
            f'(0 sharp .. 1 blurry; frames reduced to <= {MAX_SIDE} px); {guard}')


class LogisticModel:
    """A logistic regression stored as plain JSON: feature names, scaling, coefficients.

    P(clear) = 1 / (1 + exp(-(b + sum_i w_i (t(x_i) - mean_i) / scale_i))), with t = log10
    for the features named in ``log`` (the focus measures span decades).
    """

    def __init__(self, spec: dict):
        try:
            self.names = list(spec['features'])
            self.log = set(spec.get('log', []))
            self.mean = np.asarray(spec['mean'], float)
            self.scale = np.asarray(spec['scale'], float)
            self.coef = np.asarray(spec['coef'], float)
            self.intercept = float(spec['intercept'])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f'not a blur model: {error!r}') from None
        if not (len(self.names) == len(self.mean) == len(self.scale) == len(self.coef)):
            raise ValueError('blur model: features, mean, scale and coef differ in length')
        self.note = spec.get('note', '')

    def vector(self, values: dict) -> np.ndarray:
        row = []
        for name in self.names:
            value = float(values[name])
            row.append(np.log10(max(value, 1e-6)) if name in self.log else value)
        return (np.asarray(row) - self.mean) / self.scale

    def probability(self, values: dict) -> float:
        z = float(self.vector(values) @ self.coef + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))

    def describe(self) -> str:
        return (f'logistic regression on {", ".join(self.names)}: CLEAR when P(clear) >= 0.5'
                + (f' ({self.note})' if self.note else ''))
