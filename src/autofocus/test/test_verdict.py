"""The per-image verdict (core.verdict) on the real defocus series we ship."""
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from autofocus.core import verdict

DATA = pathlib.Path(__file__).parent / 'data'
SMEAR = DATA / 'defocus-series-sharpeval' / 'smear'
EXPOSURE = DATA / 'defocus-exposure-sharpeval' / 'tools'
REPO = pathlib.Path(__file__).resolve().parents[3]


def _gray(path):
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize('name,expected', [('0.png', 'CLEAR'), ('-1.png', 'CLEAR'),
                                           ('3.png', 'BLURRY'), ('-9.png', 'BLURRY')])
def test_a_real_defocus_series_is_judged_frame_by_frame(name, expected):
    judged = verdict.judge(_gray(SMEAR / name))
    assert judged.verdict == expected, judged.reason
    assert 'blur_effect' in judged.reason and 0.0 < judged.blur_effect < 1.0
    assert set(verdict.measures.FEATURES) <= set(judged.features)


def test_the_verdict_holds_at_every_exposure():
    for exposure in (20, 40, 60):
        assert verdict.judge(_gray(EXPOSURE / f'0_{exposure}.png')).clear
        for step in (5, 7, 9):  # steps 2-3 sit near the threshold on this scene
            assert not verdict.judge(_gray(EXPOSURE / f'{step}_{exposure}.png')).clear


def test_a_frame_without_detail_is_blurry_not_sharp():
    black = np.full((240, 320), 3, np.uint8)
    black[100:110, 100:110] = 5  # blur_effect alone calls this nearly perfectly sharp
    judged = verdict.judge(black)
    assert judged.verdict == 'BLURRY' and 'no detail' in judged.reason


def test_large_colour_frames_are_reduced_and_tiny_ones_refused():
    frame = cv2.resize(cv2.cvtColor(_gray(SMEAR / '0.png'), cv2.COLOR_GRAY2BGR), (1920, 1080))
    assert max(verdict.reduce(frame).shape) <= verdict.MAX_SIDE
    verdict.judge(frame)  # does not raise
    with pytest.raises(ValueError, match='too small'):
        verdict.judge(np.random.default_rng(0).integers(0, 256, (12, 12), np.uint8))


def test_logistic_model_is_plain_json_and_checked(tmp_path):
    spec = {'features': ['blur_effect', 'laplacian_variance'], 'log': ['laplacian_variance'],
            'mean': [0.4, 1.0], 'scale': [0.1, 0.5], 'coef': [-3.0, 1.0], 'intercept': 0.0}
    model = verdict.LogisticModel(json.loads(json.dumps(spec)))
    sharp = verdict.judge(_gray(SMEAR / '0.png'), model=model)
    blurry = verdict.judge(_gray(SMEAR / '9.png'), model=model)
    assert sharp.clear and not blurry.clear and 'P(clear)' in sharp.reason
    with pytest.raises(ValueError, match='differ in length'):
        verdict.LogisticModel({**spec, 'coef': [1.0]})
    with pytest.raises(ValueError, match='not a blur model'):
        verdict.LogisticModel({'features': ['x']})


def test_the_shipped_threshold_is_the_one_the_real_data_calibrate():
    """scripts/train_blur_verdict.py re-fits the threshold on the shipped data."""
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'train_blur_verdict.py'),
                             '--no-model'], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    first = result.stdout.split('labels:')[1]  # the default labelling
    fitted = float(first.split('threshold fitted on all scenes: ')[1].split()[0])
    assert fitted == pytest.approx(verdict.BLUR_EFFECT_THRESHOLD, abs=0.005)
    held_out = float(first.split('threshold_acc ')[1].split(',')[0])
    assert held_out >= 0.7, result.stdout
