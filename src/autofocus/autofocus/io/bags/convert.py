"""Converting images, folders of images and videos into bags (``bag_convert``)."""
from __future__ import annotations

import pathlib
import re
import sys
from dataclasses import dataclass

import numpy as np
from autofocus.io.bags.format import (
    BagError, IMAGE_SUFFIXES, IMAGE_TYPE, STATE_TYPE, STORAGES, natural_key, serialize,
    typestore)
from autofocus.io.bags.writer import BagWriter
from autofocus.io.bags.repair import merge, repair


DEFAULT_POSITION_PATTERN = r'(?i)(?:^|[^a-z])(?:z|pos|position|focus)[_=]?(-?\d+(?:\.\d+)?)'


def position_from_name(name: str, pattern: str = DEFAULT_POSITION_PATTERN) -> float | None:
    """The lens position a file name carries (first group of `pattern`), or None."""
    match = re.search(pattern, pathlib.Path(name).stem)
    return float(match.group(1)) if match else None


def read_positions_csv(path) -> dict[str, float]:
    """{file name or frame index (as text): position} from a CSV.

    Accepted: a header naming a file column (file, filename, image, name, frame)
    and a position column (position, pos, z, focus), comma- or whitespace-
    separated; without a header, the first numeric column of two is the
    position and the other the file (e.g. '020 XP005_Z20X0Y0@1#1.jpg').
    """
    text = pathlib.Path(path).read_text()
    rows = [re.split(r'\s*,\s*|\s+', line.strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith('#')]
    if not rows:
        return {}

    def number(value):
        try:
            return float(value)
        except ValueError:
            return None
    header = [h.lower() for h in rows[0]]
    file_names = {'file', 'filename', 'image', 'name', 'path', 'frame'}
    position_names = {'position', 'pos', 'z', 'focus', 'focus_position'}
    positions = {}
    if any(h in file_names for h in header) and any(h in position_names for h in header):
        fi = next(i for i, h in enumerate(header) if h in file_names)
        pi = next(i for i, h in enumerate(header) if h in position_names)
        pairs = [(row[fi], number(row[pi])) for row in rows[1:] if len(row) > max(fi, pi)]
    else:  # no header: (file, position), (position, file) or (frame index, position)
        pairs = []
        for row in rows:
            if len(row) < 2:
                continue
            if number(row[1]) is not None:
                pairs.append((row[0], number(row[1])))
            elif number(row[0]) is not None:
                pairs.append((row[1], number(row[0])))
    for key, position in pairs:
        if position is not None:
            key = str(int(key)) if key.isdigit() else pathlib.Path(key).name
            positions[key] = position
    return positions


def list_images(folder) -> list[pathlib.Path]:
    folder = pathlib.Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def resize_frame(frame: np.ndarray, scale: float = 1.0, max_size: int = 0) -> np.ndarray:
    import cv2
    h, w = frame.shape[:2]
    factor = scale
    if max_size and max(h, w) * factor > max_size:
        factor = max_size / max(h, w)
    if abs(factor - 1.0) < 1e-9:
        return frame
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def image_message(frame: np.ndarray, stamp_ns: int, encoding: str = 'bgr8',
                  frame_id: str = 'camera'):
    """A rosbags sensor_msgs/Image from a uint8 frame (bgr8 in, bgr8 or mono8 out)."""
    import cv2
    if encoding == 'mono8' and frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif encoding == 'bgr8' and frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    frame = np.ascontiguousarray(frame)
    t = typestore().types
    sec, nsec = divmod(int(stamp_ns), 10**9)
    stamp = t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
    header = t['std_msgs/msg/Header'](stamp=stamp,
                                      frame_id=frame_id)
    return t[IMAGE_TYPE](header=header, height=frame.shape[0], width=frame.shape[1],
                         encoding=encoding, is_bigendian=0, step=frame.strides[0],
                         data=frame.reshape(-1).view(np.uint8))


def motor_state_message(position: float, stamp_ns: int, limits: tuple[float, float]):
    t = typestore().types
    sec, nsec = divmod(int(stamp_ns), 10**9)
    stamp = t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
    return t[STATE_TYPE](header=t['std_msgs/msg/Header'](stamp=stamp, frame_id=''),
                         position=float(position), target=float(position), moving=False,
                         position_measured=True, position_known=True,
                         stationary_since=stamp,
                         min_position=float(limits[0]), max_position=float(limits[1]),
                         last_command_sequence=0, fault='')


@dataclass
class ConvertReport:
    frames: int = 0
    with_position: int = 0
    skipped: list = None


def frames_to_bag(frames, out, *, fps: float = 10.0, start_ns: int = 1_700_000_000 * 10**9,
                  encoding: str = 'bgr8', storage: str = 'mcap', compress: bool = False,
                  image_topic: str = '/camera/image_raw',
                  state_topic: str = '/focus_motor/state', frame_id: str = 'camera',
                  log=print) -> ConvertReport:
    """Write (name, frame or error text, position or None) items as a bag; return what was done.

    Frame i is stamped start + i/fps; when its position is known, a MotorState
    at rest at that position is written half a period before it (stationary
    since then), so the focus server would accept the frame for that position.
    """
    items = list(frames)
    positions = [p for _, f, p in items if p is not None and not isinstance(f, str)]
    limits = (min(positions), max(positions)) if positions else (0.0, 0.0)
    period_ns = int(round(1e9 / fps))
    report = ConvertReport(skipped=[])
    with BagWriter(out, storage=storage, compress=compress) as bag:
        bag.add_topic(image_topic, IMAGE_TYPE, reliable=False)
        if positions:
            bag.add_topic(state_topic, STATE_TYPE, reliable=True)
        for name, frame, position in items:
            if isinstance(frame, str):
                report.skipped.append((name, frame))
                log(f'skipped {name}: {frame}')
                continue
            stamp = start_ns + report.frames * period_ns
            if position is not None:
                state_stamp = stamp - period_ns // 2
                bag.write(state_topic, state_stamp,
                          serialize(motor_state_message(position, state_stamp, limits),
                                    STATE_TYPE))
                report.with_position += 1
            bag.write(image_topic, stamp,
                      serialize(image_message(frame, stamp, encoding, frame_id), IMAGE_TYPE))
            report.frames += 1
    return report


def read_image_file(path) -> np.ndarray | str:
    """The image as a uint8 bgr or grey array, or the reason it cannot be read."""
    import cv2

    from autofocus.io.image_codec import jpeg_truncated
    path = pathlib.Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        return f'cannot read: {error.strerror}'
    if data.size == 0:
        return 'empty file'
    if jpeg_truncated(data):
        return 'truncated JPEG (no end-of-image marker)'
    frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if frame is None:
        return 'not a readable image (corrupt or unsupported format)'
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def image_files_frames(files, positions=None, pattern=DEFAULT_POSITION_PATTERN, scale=1.0,
                       max_size=0, sort_by_position=True):
    """(name, frame or error, position) for image files; ordered by position when all are known."""
    positions = positions or {}
    entries = []
    for path in files:
        path = pathlib.Path(path)
        position = positions.get(path.name)
        if position is None and not positions:
            position = position_from_name(path.name, pattern)
        entries.append((path, position))
    if sort_by_position and entries and all(p is not None for _, p in entries):
        entries.sort(key=lambda e: e[1])
    for path, position in entries:
        frame = read_image_file(path)
        if not isinstance(frame, str):
            frame = resize_frame(frame, scale, max_size)
        yield path.name, frame, position


def video_frames(path, positions=None, scale=1.0, max_size=0):
    """(name 'video#i', frame, position by frame index) of a video; an error item if unreadable."""
    import cv2
    path = pathlib.Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        yield path.name, 'cannot open the video (missing, corrupt or unsupported codec)', None
        return
    positions = positions or {}
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f'{path.name}#{index}', resize_frame(frame, scale, max_size), \
                positions.get(str(index))
            index += 1
    finally:
        capture.release()
    if index == 0:
        yield path.name, 'no frame could be decoded', None


def video_fps(path, default: float = 10.0) -> float:
    import cv2
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if fps and 0 < fps < 1000 else default


# --------------------------------------------------------------------------- command line

def convert_main(argv=None) -> int:
    """bag_convert: image folder / video -> bag, --repair an unfinished bag, --merge one."""
    import argparse
    parser = argparse.ArgumentParser(
        prog='bag_convert',
        description='Make a rosbag2 bag (sensor_msgs/Image on /camera/image_raw plus '
                    'MotorState positions on /focus_motor/state) from an image folder or a '
                    'video, repair a bag whose recorder was killed, or merge a bag\'s files '
                    'into one.')
    parser.add_argument('source', help='image folder, video file, or (with --repair) a bag')
    parser.add_argument('-o', '--output', help='bag folder to create (must not exist)')
    parser.add_argument('--repair', action='store_true',
                        help='finish the MCAP files a crash left without footer and list '
                             'them in metadata.yaml, in place')
    parser.add_argument('--merge', action='store_true',
                        help='copy the bag (all its files) into a new bag of one MCAP file, '
                             '-o OUTPUT')
    parser.add_argument('--positions', help='CSV of file name (or video frame index) and '
                                            'lens position')
    parser.add_argument('--position-pattern', default=DEFAULT_POSITION_PATTERN,
                        help='regex whose first group is the position in a file name '
                             '(default: a number after z/pos/position/focus)')
    parser.add_argument('--fps', type=float, default=0.0,
                        help='frame rate of the bag (default: the video\'s, or 10 for images)')
    parser.add_argument('--scale', type=float, default=1.0, help='resize factor')
    parser.add_argument('--max-size', type=int, default=0,
                        help='shrink so the longer side is at most this many pixels')
    parser.add_argument('--encoding', choices=('bgr8', 'mono8'), default='bgr8')
    parser.add_argument('--storage', choices=STORAGES, default='mcap')
    parser.add_argument('--compress', action='store_true', help='zstd-compress MCAP chunks')
    parser.add_argument('--start', type=float, default=1_700_000_000.0,
                        help='stamp of the first frame, seconds since the epoch')
    parser.add_argument('--image-topic', default='/camera/image_raw')
    parser.add_argument('--state-topic', default='/focus_motor/state')
    args = parser.parse_args(argv)
    source = pathlib.Path(args.source)
    try:
        if args.repair:
            count = repair(source)
            print(f'{source}: repaired, {count} messages kept')
            return 0
        if not args.output:
            parser.error('--output is required')
        if args.merge:
            count = merge(source, args.output, compress=args.compress)
            print(f'{args.output}: {count} messages from {source} in one file')
            return 0
        positions = read_positions_csv(args.positions) if args.positions else None
        if source.is_dir():
            files = list_images(source)
            if not files:
                print(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)})', file=sys.stderr)
                return 1
            frames = image_files_frames(files, positions, args.position_pattern, args.scale,
                                        args.max_size)
            fps = args.fps or 10.0
        elif source.is_file():
            frames = video_frames(source, positions, args.scale, args.max_size)
            fps = args.fps or video_fps(source)
        else:
            print(f'{source}: no such file or folder', file=sys.stderr)
            return 1
        report = frames_to_bag(frames, args.output, fps=fps, start_ns=int(args.start * 1e9),
                               encoding=args.encoding, storage=args.storage,
                               compress=args.compress, image_topic=args.image_topic,
                               state_topic=args.state_topic,
                               log=lambda text: print(text, file=sys.stderr))
    except BagError as error:
        print(f'bag_convert: {error}', file=sys.stderr)
        return 1
    print(f'{args.output}: {report.frames} frames ({report.with_position} with a position), '
          f'{len(report.skipped)} skipped')
    return 0 if report.frames else 1


if __name__ == '__main__':
    sys.exit(convert_main())
