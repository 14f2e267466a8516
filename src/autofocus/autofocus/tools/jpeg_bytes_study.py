"""How well the JPEG's byte count (``jpeg_bytes``) follows focus, against decoded measures.

Usage: ``python -m autofocus.tools.jpeg_bytes_study`` (the pipeline benchmark prints the
same table).

Over a focus sweep, each curve (``jpeg_bytes`` of the ROI's MCU rows or of the whole
frame; ``laplacian_variance`` on the decoded ROI at the node's default downsample and at
full resolution) is compared with the reference, ``laplacian_variance`` of the same ROI
decoded at full resolution:

- ``spearman``: rank correlation of the two curves over the whole sweep (1 = the same
  order everywhere; the far tails, where every measure is noise, pull it down);
- ``spearman_top``: the same over the positions where the reference is above half its
  range (the part a search climbs);
- ``peak``: the sharpest sample refined by the parabola through it and its two
  neighbours (where a search's fine steps end up), and ``peak_error``: its distance
  from the reference's peak (motor units; mm on the real sweep). The JPEG curves are
  broad and lopsided on the real sweep: a least-squares parabola over their top half
  (:func:`strategies.peak_fit`, what coarse_fine fits) lands 17 mm off; ``fit_error``
  shows that distance.

Sweeps: the lens simulator (640x480, scene and JPEG quality varied: the verdict must
survive both), encoded by our own camera path (restart marker per MCU row, so the ROI's
rows are counted), and the real fpd sweep (``test/data/focus-sweep-fpd-xp005``, 200x200
JPEGs as recorded, no restart markers: the whole frame; and the same frames re-encoded by
our camera path, ROI rows).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import types

import cv2
import numpy as np

from autofocus.core import lens_sim, measures, strategies
from autofocus.io import image_codec, jpeg_bytes

STACK_DIR = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'data' / 'focus-sweep-fpd-xp005'
SIM_POSITIONS = np.arange(300.0, 700.01, 4.0)
SIM_FOCUS = 500.0
NODE_DOWNSAMPLE = measures.DEFAULT_DOWNSAMPLE


def spearman(a, b) -> float:
    """Spearman rank correlation (ties are rare in these curves: ranks by order)."""
    ra = np.argsort(np.argsort(np.asarray(a, float))).astype(float)
    rb = np.argsort(np.argsort(np.asarray(b, float))).astype(float)
    if len(ra) < 3 or ra.std() == 0 or rb.std() == 0:
        return float('nan')
    return float(np.corrcoef(ra, rb)[0, 1])


def _encode(frame, quality):
    return image_codec.fill_compressed_msg(types.SimpleNamespace(), frame, quality).data


def _curves(positions, encoded, roi=measures.DEFAULT_ROI):
    """{curve name: values} over JPEG payloads ``encoded`` (one per position)."""
    curves = {'jpeg_bytes roi rows': [], 'jpeg_bytes frame': [],
              f'laplacian_variance roi /{NODE_DOWNSAMPLE}': [],
              'laplacian_variance roi /1 (reference)': []}
    counted_rows = True
    for data in encoded:
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        height, width = gray.shape
        roi_px = measures.roi_pixels(width, height, roi)
        value, in_roi = jpeg_bytes.jpeg_bytes(data, roi_px)
        counted_rows &= in_roi
        curves['jpeg_bytes roi rows'].append(value)
        curves['jpeg_bytes frame'].append(jpeg_bytes.jpeg_bytes(data)[0])
        for name, downsample in ((f'laplacian_variance roi /{NODE_DOWNSAMPLE}',
                                  NODE_DOWNSAMPLE),
                                 ('laplacian_variance roi /1 (reference)', 1)):
            curves[name].append(measures.compute(gray, ['laplacian_variance'], roi,
                                                 downsample)['laplacian_variance'])
    if not counted_rows:      # no restart markers: only the frame can be counted
        del curves['jpeg_bytes roi rows']
    return curves


def _peak(positions, values) -> float:
    """The sharpest sample, refined by the parabola through it and its two neighbours."""
    order = np.argsort(positions)
    x, y = np.asarray(positions, float)[order], np.asarray(values, float)[order]
    i = int(np.argmax(y))
    if i == 0 or i == len(y) - 1:
        return float(x[i])
    bend = y[i - 1] - 2 * y[i] + y[i + 1]
    if bend >= 0:
        return float(x[i])
    return float(x[i] + 0.5 * (y[i - 1] - y[i + 1]) / bend * (x[i + 1] - x[i]))


def _rows(sweep, positions, curves, truth_name='laplacian_variance roi /1 (reference)'):
    reference = np.asarray(curves[truth_name])
    truth = _peak(positions, reference)
    top = reference >= reference.min() + 0.5 * (reference.max() - reference.min())
    rows = []
    for name, values in curves.items():
        if name == truth_name:
            continue
        values = np.asarray(values)
        peak = _peak(positions, values)
        fit = strategies.peak_fit(list(zip(map(float, positions), map(float, values))))
        rows.append({'sweep': sweep, 'curve': name,
                     'spearman': spearman(values, reference),
                     'spearman_top': spearman(values[top], reference[top]),
                     'peak': peak, 'reference_peak': truth, 'peak_error': abs(peak - truth),
                     'fit_error': abs(fit.position - truth),
                     'contrast': float((values.max() - values.min()) / values.max())})
    return rows


def simulated_rows(scenes=('texture', 'low_texture'), qualities=(80, 95)) -> list:
    rows = []
    for scene in scenes:
        sim = lens_sim.LensSimulator(lens_sim.LensConfig(scene=scene, focus_position=SIM_FOCUS))
        frames = [sim.render(p) for p in SIM_POSITIONS]
        for quality in qualities:
            curves = _curves(SIM_POSITIONS, [_encode(f, quality) for f in frames])
            rows += _rows(f'sim {scene} q{quality}', SIM_POSITIONS, curves)
    return rows


def real_rows(directory=STACK_DIR) -> list:
    """The real fpd sweep as recorded, and re-encoded by our camera path; [] without it."""
    paths = sorted(pathlib.Path(directory).glob('z*.jpg'))
    if not paths:
        return []
    positions = np.array([float(p.stem[1:]) for p in paths])
    recorded = [p.read_bytes() for p in paths]
    rows = _rows('real fpd (as recorded)', positions, _curves(positions, recorded))
    frames = [cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in recorded]
    rows += _rows('real fpd (our encoder q80)', positions,
                  _curves(positions, [_encode(f, 80) for f in frames]))
    return rows


def study() -> list:
    return simulated_rows() + real_rows()


def markdown(rows) -> str:
    header = list(rows[0])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(f'{v:.3g}' if isinstance(v, float) else str(v)
                                       for v in row.values()) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.split('\n')[0]).parse_args(argv)
    print(markdown(study()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
