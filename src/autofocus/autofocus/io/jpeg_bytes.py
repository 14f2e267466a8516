"""Sharpness for free from a JPEG: how many bytes its entropy-coded data spends on a region.

A JPEG encoder spends bytes on the DCT coefficients that survive quantisation, and a
sharp image has more high-frequency coefficients than a blurred one: the size of the
compressed data rises and falls with focus, and reading it needs no decode at all (only
a walk over the marker segments, a few ``bytes.find`` calls per kilobyte).

:func:`jpeg_bytes` gives the entropy-coded bytes per pixel:

- of the ROI's MCU rows, when the JPEG has restart markers (a DRI segment: the data is
  cut into independently coded runs of ``restart_interval`` MCUs, so the bytes of each
  run are known without Huffman decoding). Our own camera node writes one restart
  interval per MCU row (16 px of a colour frame); many hardware MJPEG encoders write
  them too. A run that straddles the ROI's edge counts in proportion to its MCUs inside,
  so with a run per row the ROI's columns are not told apart (with a run per MCU they
  are);
- of the whole frame otherwise (the bytes between each start-of-scan and the next
  marker, headers and tables excluded).

Why our own parser: libjpeg, OpenCV and Pillow expose no per-restart-interval sizes, and
the marker walk is the same thirty lines as :func:`image_codec.compressed_size`. Its
accuracy against the decoded measures is in ``tools/pipeline_benchmark.py``
(``--jpeg-bytes``) and docs/measures.md: on the simulator its peak is within a few motor
units of the Laplacian's; it follows exposure and scene content as much as focus, so it
suits a search (one scene, one exposure), not an absolute threshold.
"""
from __future__ import annotations

import math
import re

from autofocus.io.image_codec import _JPEG_NO_LENGTH, _JPEG_SOF, MalformedImage

JPEG_BYTES = 'jpeg_bytes'             # the measure's name in FocusMetrics
# A marker that ends a scan: FF followed by anything but 00 (stuffing), RSTn or FF (fill).
_SCAN_END = re.compile(rb'\xff[^\x00\xd0-\xd7\xff]')
_RESTART = re.compile(rb'\xff[\xd0-\xd7]')


def _walk(data: bytes):
    """Parse the marker segments: (width, height, MCU w, MCU h, restart interval,
    [scan segments' byte counts per scan]). Raises MalformedImage."""
    if data[:2] != b'\xff\xd8':
        raise MalformedImage('not a JPEG (no start-of-image marker)', 'unsupported_format')
    end = len(data)
    position = 2
    frame = None
    restart = 0
    scans: list[list[int]] = []
    while position + 4 <= end:
        if data[position] != 0xFF:
            raise MalformedImage(f'JPEG marker expected at byte {position}', 'bad_header')
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker == 0xD9:                               # end of image
            break
        if marker in _JPEG_NO_LENGTH:
            position += 2
            continue
        length = (data[position + 2] << 8) | data[position + 3]
        if length < 2 or position + 2 + length > end:
            raise MalformedImage(f'JPEG segment at byte {position} runs past the end',
                                 'truncated')
        body = data[position + 4:position + 2 + length]
        if marker in _JPEG_SOF and len(body) >= 6:
            height, width, count = (body[1] << 8) | body[2], (body[3] << 8) | body[4], body[5]
            factors = [(body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(count)
                       if 8 + 3 * i <= len(body)]
            if not factors or width == 0 or height == 0:
                raise MalformedImage('JPEG frame header without size or components',
                                     'bad_header')
            h_max = max(h for h, _ in factors)
            v_max = max(v for _, v in factors)
            frame = (width, height, 8 * h_max, 8 * v_max, count)
        elif marker == 0xDD and len(body) >= 2:            # DRI
            restart = (body[0] << 8) | body[1]
        position += 2 + length
        if marker == 0xDA:                                  # scan: entropy data follows
            segments, position = _scan(data, position)
            scans.append(segments)
    if frame is None or not scans:
        raise MalformedImage('JPEG without a frame header or scan', 'bad_header')
    return frame, restart, scans


def _scan(data: bytes, position: int) -> tuple[list[int], int]:
    """Byte counts of the entropy-coded runs from ``position`` (split at RSTn), and the
    position of the marker that ends the scan. Inside the data an FF is always followed by
    00 (stuffing), so the markers are found by two regular-expression scans (in C)."""
    end = _SCAN_END.search(data, position)
    if end is None:
        raise MalformedImage('JPEG scan without an end (truncated)', 'truncated')
    segments = []
    start = position
    for restart in _RESTART.finditer(data, position, end.start()):
        segments.append(restart.start() - start)
        start = restart.end()
    segments.append(end.start() - start)
    return segments, end.start()


def jpeg_bytes(data, roi_px: tuple[int, int, int, int] | None = None) -> tuple[float, bool]:
    """(entropy-coded bytes per pixel, whether only the ROI's MCUs were counted).

    ``roi_px``: (x, y, w, h) in pixels of the full frame. Only a single-scan (baseline)
    JPEG with restart markers can be cut to the ROI; otherwise the whole frame's scans
    are counted. A run of MCUs that straddles the ROI's edge counts in proportion to its
    MCUs inside. Raises MalformedImage for a payload that is not a readable JPEG.
    """
    data = bytes(data)
    (width, height, mcu_w, mcu_h, components), restart, scans = _walk(data)
    if components == 1:                        # a grey scan is never interleaved: 8x8 MCUs
        mcu_w = mcu_h = 8
    columns = math.ceil(width / mcu_w)
    rows = math.ceil(height / mcu_h)
    segments = scans[0]
    if roi_px is None or restart == 0 or len(scans) != 1 or len(segments) < 2:
        return sum(map(sum, scans)) / float(width * height), False
    x, y, w, h = roi_px
    c0, c1 = x // mcu_w, min(columns, math.ceil((x + w) / mcu_w))
    r0, r1 = y // mcu_h, min(rows, math.ceil((y + h) / mcu_h))
    inside_bytes = 0.0
    inside_mcus = 0
    for index, size in enumerate(segments):
        first, last = index * restart, min((index + 1) * restart, rows * columns)
        if last <= first:
            break
        inside = 0
        for row in range(max(r0, first // columns), min(r1, (last - 1) // columns + 1)):
            low = max(first, row * columns) - row * columns
            high = min(last, (row + 1) * columns) - row * columns
            inside += max(0, min(high, c1) - max(low, c0))
        if inside:
            inside_bytes += size * inside / (last - first)
            inside_mcus += inside
    if inside_mcus == 0:
        return sum(segments) / float(width * height), False
    return inside_bytes / (inside_mcus * mcu_w * mcu_h), True
