"""pyflakes and pycodestyle over every package, the tests and the scripts (ruff.toml)."""
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_code_passes_ruff():
    ruff = shutil.which('ruff') or str(pathlib.Path(sys.executable).parent / 'ruff')
    if not pathlib.Path(ruff).exists():
        pytest.fail('ruff is not installed: run scripts/setup.sh')
    checked = subprocess.run([ruff, 'check', '--output-format', 'concise', 'src', 'scripts',
                              'conftest.py'], cwd=REPO, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
