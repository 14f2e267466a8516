#!/usr/bin/env python3
"""Calibrate the per-image blur verdict on the real data we ship, and evaluate a trained model.

Usage (from the repository, with the venv active; needs scikit-learn for the model):

    python scripts/train_blur_verdict.py [--write-model PATH] [--figure PNG]

Data: the real defocus series in src/autofocus/test/data (smear, tools,
defocus-exposure E=20/40/60, the fpd-xp005 sweep). Labels come from the
known defocus of each frame: CLEAR when the defocus step is at most --step
(series) or the sweep's Z is within --mm of best focus (-49 mm), else BLURRY.
Those tolerances are arbitrary, so every figure is printed at two of them.

Evaluation is leave-one-scene-out: the threshold (and the model) are fitted
on three scenes and scored on the fourth, so a rule that only learnt a scene's
contrast is caught. Scores are balanced accuracy (the mean of the CLEAR and
the BLURRY hit rates: a third of the frames or fewer are CLEAR).

The model is the seed classifier's idea (a supervised model on Laplacian,
Scharr and noise features) as a scikit-learn logistic regression, exported as
plain JSON (no pickle) for autofocus.core.verdict.LogisticModel. It is only
worth shipping if it beats the threshold held out.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import re
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'src' / 'autofocus'))
from autofocus.core import verdict  # noqa: E402

DATA = REPO / 'src' / 'autofocus' / 'test' / 'data'
BEST_Z = -49.0
MODEL_FEATURES = ['blur_effect', 'laplacian_variance', 'laplacian_max', 'scharr_variance',
                  'noise_sigma']
LOG_FEATURES = ['laplacian_variance', 'laplacian_max', 'scharr_variance', 'noise_sigma']


def frames():
    """(scene, name, defocus kind, defocus amount, features) of every shipped real frame."""
    items = []
    for path in sorted((DATA / 'defocus-series-sharpeval' / 'smear').glob('*.png')):
        items.append(('smear', path, 'step', abs(int(path.stem))))
    for path in sorted((DATA / 'defocus-series-sharpeval' / 'tools').glob('*.png')):
        items.append(('tools', path, 'step', int(path.stem)))
    for path in sorted((DATA / 'defocus-exposure-sharpeval' / 'tools').glob('*.png')):
        items.append(('exposure', path, 'step', int(path.stem.split('_')[0])))
    for path in sorted((DATA / 'focus-sweep-fpd-xp005').glob('z*.jpg')):
        z = float(re.match(r'z([+-]\d+)', path.stem).group(1))
        items.append(('sweep', path, 'mm', abs(z - BEST_Z)))
    rows = []
    for scene, path, kind, amount in items:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        rows.append({'scene': scene, 'name': path.name, 'kind': kind, 'amount': amount,
                     'values': verdict.features(gray)})
    return rows


def labels(rows, step, mm):
    return np.array([r['amount'] <= (step if r['kind'] == 'step' else mm) for r in rows])


def scene_accuracy(rows, truth, predicted):
    """The mean over scenes of each scene's balanced accuracy: every scene weighs the same
    (the sweep has 131 frames, the tools series 6)."""
    scenes = np.array([r['scene'] for r in rows])
    return float(np.mean([balanced_accuracy(truth[scenes == s], predicted[scenes == s])
                          for s in sorted(set(scenes))]))


def balanced_accuracy(truth, predicted):
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    rates = [np.mean(predicted[truth == c] == c) for c in (True, False) if np.any(truth == c)]
    return float(np.mean(rates))


def predict_threshold(rows, threshold):
    """What judge() says with this threshold (the no-detail guard included)."""
    return np.array([r['values']['contrast'] >= verdict.MIN_CONTRAST
                     and r['values']['blur_effect'] <= threshold for r in rows])


def fit_threshold(rows, truth):
    """The blur_effect threshold with the best balanced accuracy; ties: the middle one."""
    values = sorted({r['values']['blur_effect'] for r in rows
                     if not math.isnan(r['values']['blur_effect'])})
    candidates = [round((a + b) / 2, 3) for a, b in zip(values, values[1:])]
    scored = [(scene_accuracy(rows, truth, predict_threshold(rows, t)), t) for t in candidates]
    top = max(s for s, _ in scored)
    best = [t for s, t in scored if s == top]
    return best[len(best) // 2]


def matrix(rows):
    out = []
    for r in rows:
        v = r['values']
        out.append([(math.log10(max(v[n], 1e-6)) if n in LOG_FEATURES else
                     (1.0 if math.isnan(v[n]) else v[n])) for n in MODEL_FEATURES])
    return np.asarray(out)


def fit_model(rows, truth):
    from sklearn.linear_model import LogisticRegression
    x = matrix(rows)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(class_weight='balanced', C=1.0, max_iter=1000)
    model.fit((x - mean) / scale, truth)
    return verdict.LogisticModel({
        'features': MODEL_FEATURES, 'log': LOG_FEATURES, 'mean': mean.tolist(),
        'scale': scale.tolist(), 'coef': model.coef_[0].tolist(),
        'intercept': float(model.intercept_[0])})


def predict_model(rows, model):
    return np.array([r['values']['contrast'] >= verdict.MIN_CONTRAST
                     and model.probability(r['values']) >= 0.5 for r in rows])


def evaluate(rows, step, mm, with_model=True):
    truth = labels(rows, step, mm)
    scenes = sorted({r['scene'] for r in rows})
    table = []
    for held in scenes:
        train = [i for i, r in enumerate(rows) if r['scene'] != held]
        test = [i for i, r in enumerate(rows) if r['scene'] == held]
        tr_rows, te_rows = [rows[i] for i in train], [rows[i] for i in test]
        threshold = fit_threshold(tr_rows, truth[train])
        line = {'held_out': held, 'n': len(test), 'clear': int(truth[test].sum()),
                'threshold': threshold,
                'threshold_acc': balanced_accuracy(truth[test],
                                                   predict_threshold(te_rows, threshold)),
                'shipped_acc': balanced_accuracy(
                    truth[test], predict_threshold(te_rows, verdict.BLUR_EFFECT_THRESHOLD))}
        if with_model:
            model = fit_model(tr_rows, truth[train])
            line['model_acc'] = balanced_accuracy(truth[test], predict_model(te_rows, model))
        table.append(line)
    return table


def figure(rows, path, threshold):
    from autofocus.tools.plotting import plt
    fig, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        for scene, marker in (('smear', 'o'), ('tools', 's'), ('exposure', '^'),
                              ('sweep', '.')):
            pts = [(r['amount'] if r['kind'] == 'step' else r['amount'] / 6.0,
                    r['values']['blur_effect']) for r in rows if r['scene'] == scene
                   and not math.isnan(r['values']['blur_effect'])]
            axes.scatter(*zip(*pts), marker=marker, s=18, label=scene, alpha=0.7)
        axes.axhline(threshold, color='crimson', linestyle='--',
                     label=f'threshold {threshold:g}')
        axes.set_xlabel('defocus (series: steps; sweep: |Z + 49| / 6 mm)')
        axes.set_ylabel('skimage blur_effect (0 sharp, 1 blurry)')
        axes.set_title('blur_effect of the shipped real data against defocus')
        axes.grid(alpha=0.3)
        axes.legend(fontsize='small')
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--step', type=int, default=1, help='CLEAR up to this defocus step')
    parser.add_argument('--mm', type=float, default=6.0, help='sweep: CLEAR within this')
    parser.add_argument('--no-model', action='store_true', help='skip scikit-learn')
    parser.add_argument('--write-model', help='write the model fitted on all data here')
    parser.add_argument('--figure', help='write the blur_effect-vs-defocus figure here')
    args = parser.parse_args(argv)
    rows = frames()
    for step, mm in ((args.step, args.mm), (0, args.mm / 2)):
        truth = labels(rows, step, mm)
        print(f'\nlabels: CLEAR when step <= {step} or |Z + 49| <= {mm:g} mm: '
              f'{int(truth.sum())} CLEAR / {len(rows)} frames')
        threshold = fit_threshold(rows, truth)
        shipped = verdict.BLUR_EFFECT_THRESHOLD
        print(f'threshold fitted on all scenes: {threshold:g} (mean per-scene balanced '
              f'accuracy {scene_accuracy(rows, truth, predict_threshold(rows, threshold)):.3f}); '
              f'shipped {shipped:g}: '
              f'{scene_accuracy(rows, truth, predict_threshold(rows, shipped)):.3f}')
        table = evaluate(rows, step, mm, with_model=not args.no_model)
        print('held out   frames clear  threshold  thr acc  shipped acc' +
              ('' if args.no_model else '  model acc'))
        for line in table:
            print(f'{line["held_out"]:9s} {line["n"]:6d} {line["clear"]:6d} '
                  f'{line["threshold"]:9.3f} {line["threshold_acc"]:8.3f} '
                  f'{line["shipped_acc"]:12.3f}'
                  + ('' if args.no_model else f' {line["model_acc"]:10.3f}'))
        means = {k: np.mean([line[k] for line in table]) for k in table[0]
                 if k.endswith('_acc')}
        print('mean held-out balanced accuracy: ' +
              ', '.join(f'{k} {v:.3f}' for k, v in means.items()))
    if args.figure:
        figure(rows, args.figure, verdict.BLUR_EFFECT_THRESHOLD)
        print(f'wrote {args.figure}')
    if args.write_model:
        model = fit_model(rows, labels(rows, args.step, args.mm))
        spec = {'features': model.names, 'log': sorted(model.log), 'mean': model.mean.tolist(),
                'scale': model.scale.tolist(), 'coef': model.coef.tolist(),
                'intercept': model.intercept,
                'note': f'trained by scripts/train_blur_verdict.py, step <= {args.step}, '
                        f'|Z + 49| <= {args.mm:g} mm'}
        pathlib.Path(args.write_model).write_text(json.dumps(spec, indent=1) + '\n')
        print(f'wrote {args.write_model}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
