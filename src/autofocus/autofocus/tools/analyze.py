"""focus_analyze: focus measures of every frame of bags, videos and image folders, offline.

For each input (a rosbag2 bag folder or .mcap file, a video file, a folder of
images, or image files) it computes the chosen focus measures on a region of
interest, then writes into --out:

- focus.csv        one row per frame: source, name, time, position, every measure,
                   blur_effect, verdict and its reason
- focus_curve.png  the primary measure against lens position (when every frame of a series
                   has one: bags' /focus_motor/state, file names, a CSV), else against
                   time, else frame number; the best frame marked; one panel per series
- report.txt       the images grouped by verdict (CLEAR / BLURRY), the rule used, and the
                   inputs that were skipped and why

A folder is searched recursively: every sub-folder holding images is a series of its
own (and a bag folder found inside is read as a bag). Files are ordered by the numbers
in their names, signs included: -9.bmp .. -1.bmp, 0.bmp .. 9.bmp.

Verdict (default): each image judged on its own terms by autofocus.core.verdict
(scikit-image's blur_effect with a threshold calibrated on real defocus series,
frames without detail BLURRY), so a folder of only blurry images comes out
BLURRY. Alternatives, relative to the primary measure: --relative (a fraction
of the best frame's), --threshold, or --labels (a threshold calibrated from a
CSV of file,label with CLEAR/BLURRY; the examples may be files or names of
frames in the inputs). Unreadable inputs (truncated images, a video that does
not open, a bag without the image topic) are named, skipped, and the run goes
on. No ROS needed.
"""
from __future__ import annotations

import argparse
import csv
import math
import pathlib
import sys
from dataclasses import dataclass, field

from autofocus.core import measures, verdict as image_verdict
from autofocus.io import bags
from autofocus.io.image_codec import MalformedImage, image_array, to_gray

CLEAR, BLURRY = 'CLEAR', 'BLURRY'


@dataclass
class Frame:
    source: str
    name: str
    time: float | None = None       # seconds (bag: header stamp; video: position in file)
    position: float | None = None
    values: dict = field(default_factory=dict)
    verdict: str = ''
    reason: str = ''
    blur_effect: float = float('nan')


def _gray(frame):
    import cv2
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


class Analysis:
    def __init__(self, names, roi, downsample, positions=None,
                 pattern=bags.DEFAULT_POSITION_PATTERN, topic='/camera/image_raw',
                 state_topic='/focus_motor/state', judge_images=True):
        self.names, self.roi, self.downsample = list(names), roi, downsample
        self.judge_images = judge_images
        self.positions, self.pattern = positions or {}, pattern
        self.topic, self.state_topic = topic, state_topic
        self.frames: list[Frame] = []
        self.problems: list[tuple[str, str]] = []

    def measure(self, gray):
        return measures.compute(gray, self.names, self.roi, self.downsample)

    def add(self, frame: Frame, gray) -> None:
        try:
            frame.values = self.measure(gray)
            if self.judge_images:
                judged = image_verdict.judge(gray)
                frame.verdict, frame.reason = judged.verdict, judged.reason
                frame.blur_effect = judged.blur_effect
        except ValueError as error:
            self.problems.append((f'{frame.source}:{frame.name}', str(error)))
            return
        self.frames.append(frame)

    # ------------------------------------------------------------------ inputs
    def run(self, inputs, progress=None):
        """Analyse every input; progress: None = a bar on a terminal, False = never."""
        from tqdm import tqdm
        for item in inputs:
            path = pathlib.Path(item)
            try:
                if not path.exists():
                    self.problems.append((str(path), 'no such file or folder'))
                elif (path.is_dir() and (path / 'metadata.yaml').exists()
                      or path.suffix in ('.mcap', '.db3')
                      or path.is_dir() and list(path.glob('*.mcap'))):
                    self._bag(path, tqdm, progress)
                elif path.is_dir():
                    self._folder(path, tqdm, progress)
                elif path.suffix.lower() in bags.IMAGE_SUFFIXES:
                    self._images([path], str(path.parent), tqdm, False)
                else:
                    self._video(path, tqdm, progress)
            except Exception as error:  # noqa: BLE001 - one bad input must not end the run
                self.problems.append((str(path), f'{type(error).__name__}: {error}'))
        return self

    def _folder(self, folder, tqdm, progress):
        """Every folder below (itself included) that holds images is a series; bags too."""
        series = 0
        for path in sorted([folder, *(p for p in folder.rglob('*') if p.is_dir())],
                           key=lambda p: [bags.natural_key(part) for part in p.parts]):
            if any(part.startswith('.') for part in path.relative_to(folder).parts):
                continue
            if path != folder and (path / 'metadata.yaml').exists():
                self._bag(path, tqdm, progress)
                series += 1
                continue
            if any(parent != folder and (parent / 'metadata.yaml').exists()
                   for parent in path.parents):
                continue  # inside a bag read above
            files = bags.list_images(path)
            if files:
                self._images(files, str(path), tqdm, progress)
                series += 1
        if not series:
            self.problems.append((str(folder), 'no image files (nor bags) in it or below'))

    def _bar(self, tqdm, iterable, total, desc, progress):
        return tqdm(iterable, total=total, desc=desc, unit='frame',
                    disable=None if progress is None else not progress, file=sys.stderr)

    def _images(self, files, source, tqdm, progress):
        if not files:
            self.problems.append((source, 'no image files'))
            return
        items = bags.image_files_frames(files, self.positions, self.pattern,
                                        sort_by_position=False)
        for name, frame, position in self._bar(tqdm, items, len(files), source, progress):
            if isinstance(frame, str):
                self.problems.append((f'{source}/{name}', frame))
                continue
            self.add(Frame(source, name, None, position), _gray(frame))

    def _video(self, path, tqdm, progress):
        import cv2
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            self.problems.append((str(path), 'cannot open the video (missing, corrupt or '
                                             'unsupported codec)'))
            return
        fps = bags.video_fps(path, default=0.0)
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        index = 0
        try:
            for _ in self._bar(tqdm, iter(int, 1), total, path.name, progress):
                ok, frame = capture.read()
                if not ok:
                    break
                time_s = index / fps if fps else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                self.add(Frame(str(path), f'frame {index}', time_s,
                               self.positions.get(str(index))), _gray(frame))
                index += 1
        finally:
            capture.release()
        if index == 0:
            self.problems.append((str(path), 'no frame could be decoded'))

    def _bag(self, path, tqdm, progress):
        topics = bags.topics_of(path)
        if self.topic not in topics:
            self.problems.append((str(path), f'no topic {self.topic} in the bag (it has '
                                             f'{", ".join(sorted(topics)) or "none"})'))
            return
        states = []
        if self.state_topic in topics:
            for msg in bags.read_messages(path, [self.state_topic]):
                state = bags.deserialize(msg.data, topics[self.state_topic])
                states.append((bags.stamp_to_ns(state.header.stamp), state.position))
            states.sort()
        count = self._count(path, self.topic)
        before = len(self.frames)
        for msg in self._bar(tqdm, bags.read_messages(path, [self.topic]), count, path.name,
                             progress):
            try:
                image = bags.deserialize(msg.data, topics[self.topic])
                pixels = image_array(image)
            except (MalformedImage, Exception) as error:  # noqa: BLE001
                self.problems.append((f'{path}:{msg.timestamp}', f'bad image message: {error}'))
                continue
            stamp = bags.stamp_to_ns(image.header.stamp)
            position = None
            for t, p in reversed(states):
                if t <= stamp:
                    position = p
                    break
            self.add(Frame(str(path), f'{stamp / 1e9:.6f}', stamp / 1e9, position),
                     to_gray(pixels, image.encoding))
        if len(self.frames) == before:
            self.problems.append((str(path), f'no readable image on {self.topic}'))

    @staticmethod
    def _count(path, topic):
        try:
            from rosbags.rosbag2 import Reader
            with Reader(pathlib.Path(path)) as reader:
                return sum(c.msgcount for c in reader.connections if c.topic == topic)
        except Exception:  # noqa: BLE001 - unfinished bag: no total
            return None

    # ------------------------------------------------------------------ verdicts
    @property
    def primary(self):
        return self.names[0]

    def best(self) -> Frame | None:
        return max(self.frames, key=lambda f: f.values[self.primary], default=None)

    def series(self) -> dict[str, list[Frame]]:
        """The frames by source (a bag, a video, a folder), in the order they were read."""
        groups: dict[str, list[Frame]] = {}
        for frame in self.frames:
            groups.setdefault(frame.source, []).append(frame)
        return groups

    def classify(self, threshold: float) -> None:
        for frame in self.frames:
            frame.verdict = CLEAR if frame.values[self.primary] >= threshold else BLURRY

    def labelled_values(self, labels_csv) -> list[tuple[float, str]]:
        """(primary value, label) of each labelled example: a frame of the inputs or a file."""
        labels_csv = pathlib.Path(labels_csv)
        by_name = {f.name: f for f in self.frames}
        examples = []
        with open(labels_csv, newline='') as stream:
            for row in csv.reader(stream):
                if len(row) < 2 or row[0].strip().startswith('#'):
                    continue
                name, label = row[0].strip(), row[1].strip().upper()
                if label not in (CLEAR, BLURRY):
                    continue  # a header or a typo; examples are CLEAR or BLURRY
                if name in by_name:
                    examples.append((by_name[name].values[self.primary], label))
                    continue
                file = (labels_csv.parent / name)
                frame = bags.read_image_file(file)
                if isinstance(frame, str):
                    self.problems.append((f'label example {file}', frame))
                    continue
                examples.append((self.measure(_gray(frame))[self.primary], label))
        return examples


def calibrate(examples) -> tuple[float, float]:
    """The threshold that best separates CLEAR from BLURRY examples, and its accuracy on them.

    Candidates are the midpoints between consecutive sorted values (geometric
    mean when both are positive: focus measures span decades); the most
    accurate wins, ties go to the middle candidate.
    """
    labels = {label for _, label in examples}
    if labels != {CLEAR, BLURRY}:
        raise ValueError('calibration needs labelled examples of both CLEAR and BLURRY '
                         f'(got {sorted(labels) or "none"})')
    values = sorted(examples)
    candidates = []
    for (a, _), (b, _) in zip(values, values[1:]):
        if b > a:
            candidates.append(math.sqrt(a * b) if a > 0 else (a + b) / 2)
    if not candidates:
        raise ValueError('every labelled example has the same value: nothing to separate')
    scored = [(sum((v >= t) == (label == CLEAR) for v, label in values), t) for t in candidates]
    top = max(score for score, _ in scored)
    best = [t for score, t in scored if score == top]
    return best[len(best) // 2], top / len(values)


# ---------------------------------------------------------------------- outputs

def x_axis(frames):
    if frames and all(f.position is not None for f in frames):
        return 'lens position (motor units)', [f.position for f in frames]
    if frames and all(f.time is not None for f in frames):
        t0 = min(f.time for f in frames)
        return 'time (s)', [f.time - t0 for f in frames]
    return 'frame', list(range(len(frames)))


def write_csv(path, analysis):
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(['source', 'name', 'time', 'position', *analysis.names, 'blur_effect',
                         'verdict', 'reason'])
        for f in analysis.frames:
            writer.writerow([f.source, f.name, '' if f.time is None else f'{f.time:.6f}',
                             '' if f.position is None else f'{f.position:g}',
                             *(f'{f.values[n]:.6g}' for n in analysis.names),
                             '' if math.isnan(f.blur_effect) else f'{f.blur_effect:.4f}',
                             f.verdict, f.reason])


def plot(path, analysis, threshold=None):
    """One panel per series: the primary measure, CLEAR/BLURRY points, the best frame."""
    from autofocus.tools.plotting import plt
    groups = analysis.series()
    figure, panels = plt.subplots(len(groups), 1, figsize=(8, 3.2 * len(groups) + 1.3),
                                  dpi=100, squeeze=False)
    try:
        for axes, (source, frames) in zip(panels[:, 0], groups.items()):
            _plot_series(axes, frames, analysis.primary, threshold)
            axes.set_title(source if len(source) <= 70 else '...' + source[-67:],
                           fontsize='small')
        figure.suptitle('Focus curve' + ('s' if len(groups) > 1 else ''))
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def _plot_series(axes, frames, primary, threshold):
    label, xs = x_axis(frames)
    ys = [f.values[primary] for f in frames]
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    axes.plot([xs[i] for i in order], [ys[i] for i in order], color='0.6', zorder=1)
    clear = [i for i, f in enumerate(frames) if f.verdict == CLEAR]
    blurry = [i for i, f in enumerate(frames) if f.verdict != CLEAR]
    axes.scatter([xs[i] for i in clear], [ys[i] for i in clear], color='tab:green',
                 s=14, zorder=2, label=CLEAR)
    axes.scatter([xs[i] for i in blurry], [ys[i] for i in blurry], color='tab:gray',
                 s=14, zorder=2, label=BLURRY)
    best = max(range(len(ys)), key=ys.__getitem__)
    axes.scatter([xs[best]], [ys[best]], marker='*', s=220, color='crimson', zorder=3,
                 label=f'best: {frames[best].name} ({xs[best]:g})')
    if threshold is not None:
        axes.axhline(threshold, color='tab:orange', linestyle='--', linewidth=1,
                     label=f'threshold {threshold:.4g}')
    axes.set_xlabel(label)
    axes.set_ylabel(primary)
    axes.grid(alpha=0.3)
    axes.legend(loc='best', fontsize='small')


def report_text(analysis, rule):
    best = analysis.best()
    lines = [f'focus_analyze: {len(analysis.frames)} frames measured, '
             f'{len(analysis.problems)} skipped',
             f'measure: {analysis.primary}  roi: {analysis.roi}  '
             f'downsample: {analysis.downsample}',
             f'rule: {rule}']
    if best is not None:
        lines.append(f'best frame: {best.source} {best.name} '
                     f'({analysis.primary} {best.values[analysis.primary]:.6g}'
                     + (f', position {best.position:g}' if best.position is not None else '')
                     + ')')
    for verdict in (CLEAR, BLURRY):
        group = [f for f in analysis.frames if f.verdict == verdict]
        lines += ['', f'{verdict} ({len(group)}):']
        lines += [f'  {f.source}/{f.name}  {f.values[analysis.primary]:.6g}'
                  + (f'  ({f.reason})' if f.reason else '') for f in group]
    if analysis.problems:
        lines += ['', f'SKIPPED ({len(analysis.problems)}):']
        lines += [f'  {name}: {reason}' for name, reason in analysis.problems]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='focus_analyze', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+',
                        help='bag folders or .mcap files, videos, image folders, image files')
    parser.add_argument('-o', '--out', default='focus_analysis',
                        help='folder for focus.csv, focus_curve.png, report.txt')
    parser.add_argument('--measures', default=measures.DEFAULT_MEASURE,
                        help='comma-separated; the first is the primary (plot, verdict). '
                             f'Known: {", ".join(measures.MEASURES)}')
    parser.add_argument('--roi', type=float, nargs=4, default=list(measures.DEFAULT_ROI),
                        metavar=('X', 'Y', 'W', 'H'), help='fractions of the image')
    parser.add_argument('--downsample', type=int, default=2)
    parser.add_argument('--topic', default='/camera/image_raw', help='image topic of bags')
    parser.add_argument('--state-topic', default='/focus_motor/state',
                        help='MotorState topic of bags (frame positions)')
    parser.add_argument('--positions', help='CSV of file name (or video frame index), position')
    parser.add_argument('--position-pattern', default=bags.DEFAULT_POSITION_PATTERN,
                        help='regex whose first group is the position in a file name')
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument('--relative', type=float,
                      help='CLEAR if the primary measure is at least this fraction of the best '
                           'frame\'s (e.g. 0.5) instead of the per-image verdict')
    rule.add_argument('--threshold', type=float, help='CLEAR if the measure is at least this')
    rule.add_argument('--labels', help='CSV of file,label (CLEAR/BLURRY) examples to '
                                       'calibrate the threshold from')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.measures.split(',') if n.strip()]
    unknown = [n for n in names if n not in measures.MEASURES]
    if unknown or not names:
        parser.error(f'unknown measure(s) {unknown}; known: {", ".join(measures.MEASURES)}')
    try:
        measures.roi_pixels(100, 100, args.roi)
    except ValueError as error:
        parser.error(f'--roi: {error}')
    positions = bags.read_positions_csv(args.positions) if args.positions else None

    per_image = args.labels is None and args.threshold is None and args.relative is None
    analysis = Analysis(names, tuple(args.roi), args.downsample, positions,
                        args.position_pattern, args.topic, args.state_topic,
                        judge_images=per_image)
    analysis.run(args.inputs, progress=False if args.no_progress else None)
    for name, reason in analysis.problems:
        print(f'skipped {name}: {reason}', file=sys.stderr)
    if not analysis.frames:
        print('focus_analyze: no frame could be measured', file=sys.stderr)
        return 1
    if args.labels:
        try:
            threshold, accuracy = calibrate(analysis.labelled_values(args.labels))
        except (OSError, ValueError) as error:
            print(f'focus_analyze: --labels {args.labels}: {error}', file=sys.stderr)
            return 2
        rule_text = (f'{analysis.primary} >= {threshold:.6g}, calibrated from {args.labels} '
                     f'({accuracy:.0%} of the examples right)')
    elif args.threshold is not None:
        threshold = args.threshold
        rule_text = f'{analysis.primary} >= {threshold:.6g} (given)'
    elif args.relative is not None:
        threshold = args.relative * analysis.best().values[analysis.primary]
        rule_text = (f'{analysis.primary} >= {args.relative:g} x best frame\'s = '
                     f'{threshold:.6g} (relative to this run: an all-blurry run still has '
                     'CLEAR frames)')
    else:
        threshold, rule_text = None, image_verdict.rule_text()
    if threshold is not None:
        analysis.classify(threshold)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / 'focus.csv', analysis)
    plot(out / 'focus_curve.png', analysis, threshold)
    report = report_text(analysis, rule_text)
    (out / 'report.txt').write_text(report)
    best = analysis.best()
    clear = sum(f.verdict == CLEAR for f in analysis.frames)
    print(f'{len(analysis.frames)} frames: {clear} CLEAR, {len(analysis.frames) - clear} '
          f'BLURRY, {len(analysis.problems)} skipped; best {best.source} {best.name}'
          + (f' at position {best.position:g}' if best.position is not None else ''))
    print(f'wrote {out / "focus.csv"}, {out / "focus_curve.png"}, {out / "report.txt"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
