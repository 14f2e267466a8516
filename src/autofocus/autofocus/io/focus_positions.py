"""Named lens positions (and the last focus position) in a small YAML file.

The file is replaced atomically on every change: written to a temporary file in the same
directory, flushed to disk, then renamed over the old one (``os.replace``), so a crash or a
power cut leaves either the old file or the new one, never half of one. The default place
is the user's ROS home (``$ROS_HOME``, else ``~/.ros``), ``autofocus/focus_positions.yaml``.

Format::

    positions:
      bench: 412.5
      far: 80.0
    last: 433.0        # where the last successful focus left the lens (absent: none yet)
"""
from __future__ import annotations

import math
import os
import pathlib
import re
import tempfile

import yaml

NAME = re.compile(r'[A-Za-z0-9_.-]{1,64}')
MAX_POSITIONS = 1000
MAX_FILE_BYTES = 1 << 20


def default_path() -> pathlib.Path:
    home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return pathlib.Path(home, 'autofocus', 'focus_positions.yaml')


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f'position name {name!r} is not allowed: use 1-64 letters, digits, '
                         f"'_', '-' or '.'")
    return name


class PositionStore:
    """The positions of one file; every change is written through at once."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.positions: dict[str, float] = {}
        self.last: float | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        if self.path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f'{self.path} is larger than {MAX_FILE_BYTES} bytes: not a '
                             f'positions file? Move it away or point the parameter elsewhere')
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
            positions = data.get('positions') or {}
            last = data.get('last')
            if not isinstance(positions, dict):
                raise ValueError("'positions' is not a mapping")
            self.positions = {check_name(str(k)): _number(v, k) for k, v in positions.items()}
            self.last = None if last is None else _number(last, 'last')
        except (yaml.YAMLError, ValueError, AttributeError) as error:
            reason = ' '.join(str(error).split())
            raise ValueError(f'{self.path} cannot be read ({reason}); fix or delete it') from None

    def get(self, name: str) -> float:
        check_name(name)
        if name not in self.positions:
            known = ', '.join(sorted(self.positions)) or 'none saved yet'
            raise KeyError(f'no position named {name!r} (known: {known})')
        return self.positions[name]

    def save(self, name: str, position: float) -> None:
        check_name(name)
        position = _number(position, name)
        if name not in self.positions and len(self.positions) >= MAX_POSITIONS:
            raise ValueError(f'{MAX_POSITIONS} positions are saved already; delete some')
        self.positions[name] = position
        self._write()

    def set_last(self, position: float) -> None:
        self.last = _number(position, 'last')
        self._write()

    def _write(self) -> None:
        data = {'positions': dict(sorted(self.positions.items()))}
        if self.last is not None:
            data['last'] = self.last
        text = yaml.safe_dump(data, sort_keys=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix='.' + self.path.name + '.',
                                         dir=self.path.parent)
        try:
            with os.fdopen(fd, 'w') as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise
        # The rename itself must reach the disk too.
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _number(value, name) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f'position {name!r} must be a finite number, got {value!r}')
    return float(value)
