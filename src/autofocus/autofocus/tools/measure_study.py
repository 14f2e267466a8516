"""Measure study: each focus measure's peak bias, noise behaviour and exposure behaviour.

Prints the Markdown tables of docs/measures.md from the real data, so the figures there can
be reproduced (``python -m autofocus.tools.measure_study`` or ``measure_study``):

1. Bias and noise on the fpd-xp005 focus sweep: for each measure and downsample 1..4 (area
   average; and the alternatives: decimation, temporal averaging), the fitted peak
   (``strategies.refine_peak``, what the searches use) on the centre-half ROI, relative to
   the same measure's full-resolution peak and to the full-resolution Laplacian variance,
   and how far it moves, and scatters, with simulated sensor noise (photon + read noise
   as ``core/lens_sim.py`` models it: variance ``sigma^2 + grey / photon_gain``).
2. Exposure on the defocus x exposure series: whether each measure ranks defocus the same
   at every exposure, the worst margin of the sharpest frame over any defocused frame at
   any exposure, and whether scans whose exposure rises, falls or jumps at random find D=0.
3. One row per measure across every real set and the simulator, for choosing the default.

Every number comes from the data at run time; nothing is copied. Data: the full sweep and
all five exposures from /work/shared/data when present (``--data``), else the copies in
test/data (the sweep's ROI at full resolution, Z -110..-15, three exposures).
"""
from __future__ import annotations

import argparse
import pathlib
import re

import cv2
import numpy as np

from autofocus.core import lens_sim, measures
from autofocus.core.strategies import refine_peak

TEST_DATA = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'data'
# ../shared/data beside the repository, where the project's real data sets live.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[5] / 'shared' / 'data'
NOISE = {                       # name: (read noise sigma, photon gain): benchmark's presets
    'realistic': (1.5, 32.0),
    'high': (3.0, 8.0),
}
REFERENCE = 'laplacian_variance'    # at downsample 1: the finest detail, the yardstick


# -- data --------------------------------------------------------------------------------

def load_sweep(data: pathlib.Path | None = None) -> dict[int, np.ndarray]:
    """Z (mm) -> the centre-half ROI of the fpd sweep at full resolution, grey uint8."""
    shared = (data or SHARED_DATA) / 'focus-sweep-fpd-xp005'
    frames = {}
    if shared.is_dir():
        for path in shared.glob('XP005_Z*.jpg'):
            z = int(re.search(r'_Z(-?\d+)X', path.name).group(1))
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            x, y, w, h = measures.roi_pixels(image.shape[1], image.shape[0],
                                             measures.DEFAULT_ROI)
            frames[z] = image[y:y + h, x:x + w]
    else:
        for path in (TEST_DATA / 'focus-sweep-fpd-xp005-roi').glob('z*.png'):
            frames[int(path.stem[1:])] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if not frames:
        raise SystemExit('no focus sweep found (looked in /work/shared/data and test/data)')
    return dict(sorted(frames.items()))


def load_exposure(data: pathlib.Path | None = None) -> dict[tuple[int, int], np.ndarray]:
    """(D, E) -> grey frame of the defocus x exposure series (D = 0 is best focus)."""
    for root in ((data or SHARED_DATA), TEST_DATA):
        folder = root / 'defocus-exposure-sharpeval' / 'tools'
        frames = {}
        for path in folder.glob('*_*.png'):
            d, e = (int(v) for v in path.stem.split('_'))
            frames[(d, e)] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if frames:
            return frames
    raise SystemExit('no defocus x exposure series found')


def add_sensor_noise(grey: np.ndarray, sigma: float, photon_gain: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Photon + read noise as lens_sim models it, quantised to uint8."""
    grey = grey.astype(np.float32)
    std = np.sqrt(np.float32(sigma * sigma) + np.maximum(grey, 0) / np.float32(photon_gain))
    noisy = grey + rng.standard_normal(grey.shape, dtype=np.float32) * std
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def decimate(grey: np.ndarray, factor: int) -> np.ndarray:
    """Every ``factor``-th pixel (no averaging): keeps high frequencies, aliases them."""
    return np.ascontiguousarray(grey[::factor, ::factor])


# -- table 1: bias and noise on the fpd sweep ---------------------------------------------

def fitted_peak(zs, values) -> float:
    return refine_peak(list(zip(zs, values)))


def sweep_study(frames: dict[int, np.ndarray], names, trials: int = 3, seed: int = 0):
    """Rows of (measure, setting, peak, shift vs own ds1, shift vs reference, noise stats)."""
    zs = list(frames)
    clean = list(frames.values())
    rng = np.random.default_rng(seed)
    noisy = {level: [[add_sensor_noise(f, *NOISE[level], rng) for f in clean]
                     for _ in range(trials)] for level in NOISE}
    settings = [(f'downsample {d}', lambda g, d=d: measures.prepare(
        g, (0, 0, g.shape[1], g.shape[0]), d)) for d in (1, 2, 3, 4)]
    settings.append(('decimate 2', lambda g: decimate(g, 2)))

    def peak(name, prepare, stack):
        return fitted_peak(zs, [measures.MEASURES[name](prepare(g)) for g in stack])

    reference = peak(REFERENCE, settings[0][1], clean)
    rows = []
    for name in names:
        own = None
        for label, prepare in settings:
            p = peak(name, prepare, clean)
            own = p if own is None else own
            stats = {}
            for level, stacks in noisy.items():
                shifts = [peak(name, prepare, stack) - own for stack in stacks]
                stats[level] = (float(np.mean(shifts)), float(np.std(shifts)))
            rows.append((name, label, p, p - own, p - reference, stats))
        # Temporal averaging: the mean of 4 noisy frames per position, at downsample 1.
        rng_avg = np.random.default_rng(seed + 1)
        stats = {}
        for level in NOISE:
            shifts = []
            for _ in range(trials):
                stack = [np.mean([add_sensor_noise(f, *NOISE[level], rng_avg) for _ in range(4)],
                                 axis=0).astype(np.float32) for f in clean]
                shifts.append(peak(name, settings[0][1], stack) - own)
            stats[level] = (float(np.mean(shifts)), float(np.std(shifts)))
        rows.append((name, 'ds 1, mean of 4 frames', own, 0.0, own - reference, stats))
    return reference, rows


def sweep_table(frames, study, trials) -> str:
    reference, rows = study
    zs = list(frames)
    lines = [f'fpd-xp005 sweep, Z {zs[0]}..{zs[-1]} mm ({len(zs)} frames), centre-half ROI at '
             f'full resolution; reference: {REFERENCE} at downsample 1, peak '
             f'{reference:.2f} mm. Noise shifts: mean +- std over {trials} noise draws, '
             'relative to the same measure\'s clean full-resolution peak.', '',
             '| measure | setting | peak (mm) | vs own ds 1 | vs reference | '
             + ' | '.join(f'{level} noise' for level in NOISE) + ' |',
             '| --- | --- | ---: | ---: | ---: | ' + ' | '.join('---:' for _ in NOISE) + ' |']
    for name, label, p, own, ref, stats in rows:
        noise = ' | '.join(f'{m:+.2f} +- {s:.2f}' for m, s in stats.values())
        own_text = '' if label.startswith('ds 1,') else f'{own:+.2f}'
        lines.append(f'| {name} | {label} | {p:.2f} | {own_text} | {ref:+.2f} | {noise} |')
    return '\n'.join(lines)


# -- table 2: exposure ----------------------------------------------------------------------

def exposure_scans(exposures, steps, seed=0, random_scans=20):
    """Exposure per defocus step: rising and falling with defocus, then seeded random ones."""
    n = len(exposures)
    scans = {'rising': [exposures[min(n - 1, d * n // steps)] for d in range(steps)],
             'falling': [exposures[n - 1 - min(n - 1, d * n // steps)] for d in range(steps)]}
    rng = np.random.default_rng(seed)
    for i in range(random_scans):
        scans[f'random {i}'] = [exposures[int(rng.integers(n))] for _ in range(steps)]
    return scans


def exposure_study(frames, name, roi=measures.DEFAULT_ROI,
                   downsample=measures.PROPOSED_DOWNSAMPLE):
    """(exposures ranking D identically, exposures, worst margin, scans finding D=0, scans)."""
    values = {key: measures.compute(frame, [name], roi, downsample)[name]
              for key, frame in frames.items()}
    steps = sorted({d for d, _ in values})
    exposures = sorted({e for _, e in values})
    ranked = sum(sorted(steps, key=lambda d: -values[(d, e)]) == steps for e in exposures)
    best = min(values[(0, e)] for e in exposures)
    worst = max(values[(d, e)] for d in steps[1:] for e in exposures)
    margin = best / worst if worst > 0 else float('inf')
    scans = exposure_scans(exposures, len(steps))
    found = sum(int(np.argmax([values[(d, scan[d])] for d in steps])) == 0
                for scan in scans.values())
    return ranked, len(exposures), margin, found, len(scans)


def exposure_table(frames, names) -> str:
    exposures = sorted({e for _, e in frames})
    lines = [f'Defocus x exposure series, D = 0..9 at E = {exposures}, downsample '
             f'{measures.PROPOSED_DOWNSAMPLE}. "ranked": exposures at which the measure ranks D '
             'in order; "margin": the sharpest frame\'s lowest value over the highest value of '
             'any defocused frame at any exposure (> 1: every scan, whatever its exposures, '
             'finds D = 0); "scans": rising, falling and 20 random exposure scans that find '
             'D = 0.', '',
             '| measure | ROI | ranked | margin | scans finding D=0 |',
             '| --- | --- | ---: | ---: | ---: |']
    for name in names:
        for roi_name, roi in (('centre half', measures.DEFAULT_ROI), ('full frame', (0, 0, 1, 1))):
            ranked, n, margin, found, total = exposure_study(frames, name, roi)
            lines.append(f'| {name} | {roi_name} | {ranked}/{n} | {margin:.3f} | '
                         f'{found}/{total} |')
    return '\n'.join(lines)


# -- table 3: every set, for choosing the default ----------------------------------------

def series_ok(frames, name, steps, roi=measures.DEFAULT_ROI,
              downsample=measures.PROPOSED_DOWNSAMPLE) -> bool:
    """Peaks at step 0 and falls strictly to each side."""
    curve = [measures.compute(f, [name], roi, downsample)[name] for f in frames]
    peak = int(np.argmax(curve))
    rising, falling = curve[:peak + 1], curve[peak:]
    return (steps[peak] == 0 and all(a < b for a, b in zip(rising, rising[1:]))
            and all(a > b for a, b in zip(falling, falling[1:])))


def simulator_error(name, seeds=(0, 1, 2), downsample=measures.PROPOSED_DOWNSAMPLE) -> float:
    """Mean |fitted peak - focus| over a 0..1000 sweep (step 25), realistic noise + flicker."""
    errors = []
    for seed in seeds:
        config = lens_sim.LensConfig(width=320, height=240, blur_per_unit=0.025, seed=seed,
                                     focus_position=430.0 + 37.0 * seed, noise_sigma=1.5,
                                     photon_gain=32.0, flicker=0.01)
        sim = lens_sim.LensSimulator(config)
        positions = list(range(0, 1001, 25))
        values = [measures.compute(sim.render_gray(p), [name], measures.DEFAULT_ROI,
                                   downsample)[name] for p in positions]
        errors.append(abs(fitted_peak(positions, values) - config.focus_position))
    return float(np.mean(errors))


def flat_contrast(name, downsample=measures.PROPOSED_DOWNSAMPLE) -> float:
    """Relative contrast (max - min) / max of a flat scene's curve (160x120, high noise):
    what the searches' flat test sees where there is nothing to focus on (< 0.3: flat)."""
    from autofocus.core.strategies import peak_contrast
    sim = lens_sim.LensSimulator(lens_sim.LensConfig(scene='flat', width=160, height=120,
                                                     noise_sigma=3.0, photon_gain=8.0))
    return peak_contrast(measures.compute(sim.render_gray(p), [name], measures.DEFAULT_ROI,
                                          downsample)[name] for p in range(0, 1001, 100))


def choice_table(study, exposure, names) -> str:
    reference, rows = study
    by_key = {(r[0], r[1]): r for r in rows}
    smear_dir = TEST_DATA / 'defocus-series-sharpeval'
    smear_steps = list(range(-9, 10))
    smear = [cv2.imread(str(smear_dir / 'smear' / f'{s}.png'), cv2.IMREAD_GRAYSCALE)
             for s in smear_steps]
    tools = [cv2.imread(str(smear_dir / 'tools' / f'{s}.png'), cv2.IMREAD_GRAYSCALE)
             for s in range(6)]
    lines = [f'Every measure at the default setting (centre-half ROI, downsample '
             f'{measures.PROPOSED_DOWNSAMPLE}). fpd: fitted peak vs the full-resolution '
             f'{REFERENCE} peak ({reference:.2f} mm), clean and with high noise (mean +- std); '
             'exposure: margin and scans as above (centre ROI); smear/tools: peaks at 0 and '
             'monotone; simulator: mean |fitted peak - focus| (motor units, 0..1000 sweep, '
             'step 25, realistic noise and 1% flicker, 3 scenes); flat: the relative contrast '
             'of a flat scene\'s curve (simulator, 160x120, high noise; the searches call a '
             'curve flat below 0.3).', '',
             '| measure | fpd vs reference | fpd, high noise | exposure margin | exposure scans '
             '| smear | tools | simulator error | flat |',
             '| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |']
    for name in names:
        _, _, p, _, ref, stats = by_key[(name, f'downsample {measures.PROPOSED_DOWNSAMPLE}')]
        m, s = stats['high']
        _, _, margin, found, total = exposure_study(exposure, name)
        smear_ok = series_ok(smear, name, smear_steps)
        tools_ok = series_ok(tools, name, list(range(6)))
        lines.append(f'| {name} | {ref:+.2f} | {ref + m:+.2f} +- {s:.2f} | {margin:.3f} | '
                     f'{found}/{total} | {"yes" if smear_ok else "no"} | '
                     f'{"yes" if tools_ok else "no"} | {simulator_error(name):.1f} | '
                     f'{flat_contrast(name):.2f} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=pathlib.Path, default=None,
                        help='folder holding focus-sweep-fpd-xp005/ and '
                             'defocus-exposure-sharpeval/ (default /work/shared/data, else '
                             'the test data copies)')
    parser.add_argument('--trials', type=int, default=3, help='noise draws per setting')
    parser.add_argument('--measures', nargs='*', default=list(measures.MEASURES),
                        choices=list(measures.MEASURES))
    parser.add_argument('--table', choices=('bias', 'exposure', 'choice', 'all'), default='all')
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error('--trials must be >= 1')
    sweep = load_sweep(args.data)
    exposure = load_exposure(args.data)
    study = (sweep_study(sweep, args.measures, args.trials)
             if args.table in ('bias', 'choice', 'all') else None)
    if args.table in ('bias', 'all'):
        print('### Peak bias and noise (fpd-xp005 sweep)\n')
        print(sweep_table(sweep, study, args.trials) + '\n')
    if args.table in ('exposure', 'all'):
        print('### Exposure (defocus x exposure series)\n')
        print(exposure_table(exposure, args.measures) + '\n')
    if args.table in ('choice', 'all'):
        print('### Choosing the default (every real set and the simulator)\n')
        print(choice_table(study, exposure, args.measures) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
