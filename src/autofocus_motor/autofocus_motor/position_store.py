"""Where the motor was, kept across restarts of the driver: a small JSON file.

Nothing on the motor measures an absolute position, so a restarted driver knows
where the lens is only if it wrote it down before it stopped. The file is
written whenever the motor starts moving (``moving: true``) and whenever it
comes to rest (``moving: false``), each time atomically (a temporary file,
fsync, rename), so a crash or power cut leaves either the old or the new
record, never half of one. A record that says the motor was moving means the
driver died mid-move: the position is then unknown, not guessed.

No ROS here: the node decides what to do with the answer.
"""
import json
import math
import os
import pathlib
import time
from typing import NamedTuple, Optional

FORMAT_VERSION = 1
# A record is a few dozen bytes; anything much larger is not ours.
MAX_FILE_SIZE = 4096


class Restored(NamedTuple):
    """What a restarted driver may believe: ``position`` if ``known``; else why not."""

    known: bool
    position: Optional[float]
    reason: str


class PositionStore:

    def __init__(self, path: str, driver: str):
        self.path = pathlib.Path(os.path.expanduser(path))
        self.driver = driver

    def load(self, min_position: float, max_position: float) -> Restored:
        """Read the last record and judge it against the driver and its soft limits."""
        try:
            if self.path.stat().st_size > MAX_FILE_SIZE:
                return Restored(False, None, f'{self.path} is too large to be a position '
                                             'record')
            record = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Restored(False, None, f'no position recorded yet ({self.path} does not '
                                         'exist)')
        except (OSError, ValueError) as err:
            return Restored(False, None, f'cannot read {self.path}: {err}')
        if not isinstance(record, dict) or record.get('version') != FORMAT_VERSION:
            return Restored(False, None, f'{self.path} is not a position record of this '
                                         'version')
        position = record.get('position')
        if isinstance(position, bool) or not isinstance(position, (int, float)) \
                or not math.isfinite(position):
            return Restored(False, None, f'{self.path} holds no valid position')
        position = float(position)
        if record.get('driver') != self.driver:
            return Restored(False, position,
                            f"{self.path} was written by the {record.get('driver')!r} driver, "
                            f'not {self.driver!r}')
        if not record.get('known', False):
            return Restored(False, position, 'the recorded position was never homed or '
                                             'confirmed')
        if record.get('moving', True):
            return Restored(False, position,
                            f'the driver stopped while the motor was moving (last recorded at '
                            f'{position:g}, heading for {record.get("target")})')
        if not min_position <= position <= max_position:
            return Restored(False, None,
                            f'the recorded position {position:g} is outside the soft limits '
                            f'[{min_position:g}, {max_position:g}]')
        return Restored(True, position, f'restored from {self.path}')

    def save(self, position: float, moving: bool, target: Optional[float] = None,
             known: bool = True) -> None:
        """Record the position atomically; OSError if the file cannot be written.

        ``known`` false: the driver itself did not know where the motor was, so a
        restart must not believe the record either.
        """
        record = {'version': FORMAT_VERSION, 'driver': self.driver,
                  'position': float(position), 'moving': bool(moving), 'known': bool(known),
                  'target': None if target is None else float(target),
                  'time': time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f'.{self.path.name}.{os.getpid()}.tmp')
        try:
            with open(temporary, 'w') as stream:
                json.dump(record, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
        finally:
            try:
                temporary.unlink()
            except FileNotFoundError:
                pass
        try:  # the rename itself survives a power cut only once the directory is synced
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError:
            pass
