"""focus_fleet's outputs: thumbnails, an HTML page for people, CSV and JSON for machines.

Everything a camera or the network sent (error texts, names) is HTML-escaped;
credentials never reach here (the probe redacts them).
"""
from __future__ import annotations

import csv
import dataclasses
import html
import json
import re

import cv2

THUMB_WIDTH = 240
COLUMNS = ('name', 'status', 'verdict', 'change', 'sharpness', 'baseline_sharpness',
           'blur_effect', 'baseline_blur_effect', 'blur_rise', 'reachable', 'kind', 'url',
           'frames', 'size',
           'laplacian_variance', 'tenengrad', 'normalized_variance', 'error', 'reason', 'note',
           'baseline_time', 'thumbnail', 'seconds')


def write_thumbnail(frame, folder, index: int, name: str) -> str:
    """A small JPEG of the frame in folder; returns its path relative to the report."""
    height, width = frame.shape[:2]
    scale = THUMB_WIDTH / width
    small = cv2.resize(frame, (THUMB_WIDTH, max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    slug = re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')[:40] or 'camera'
    path = folder / f'{index:03d}_{slug}.jpg'
    cv2.imwrite(str(path), small, (cv2.IMWRITE_JPEG_QUALITY, 85))
    return f'{folder.name}/{path.name}'


def _row(result) -> dict:
    row = dataclasses.asdict(result)
    row.update(row.pop('measures') or {})
    row['size'] = 'x'.join(str(v) for v in row['size'])
    return row


def _fmt(value) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def write_csv(path, results) -> None:
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for result in results:
            row = _row(result)
            writer.writerow([_fmt(row.get(c)) for c in COLUMNS])


def write_json(path, results, rule, drift, measure, blur_rise=0.0) -> None:
    data = {'rule': rule, 'drift_threshold': drift, 'drift_measure': measure,
            'blur_rise_threshold': blur_rise,
            'cameras': [dataclasses.asdict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1) + '\n')


_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px 10px;
vertical-align:top;text-align:left}th{background:#f4f4f4}
.WORSE{background:#fbe3e3}.UNREACHABLE{background:#eee}.BLURRY{color:#b00;font-weight:bold}
.CLEAR{color:#070;font-weight:bold}img{display:block;width:240px}small{color:#666}
"""


def write_html(path, results, rule, drift, measure, blur_rise=0.0) -> None:
    esc = html.escape
    rows = []
    for r in results:
        if r.change is not None:
            change = f'{r.change:+.0%} {esc(measure)}'
            if r.blur_rise is not None:
                change += f'<br><small>blur_effect {r.blur_rise:+.3f}</small>'
        else:
            change = ''
        thumb = f'<img src="{esc(r.thumbnail)}" alt="thumbnail of {esc(r.name)}">' \
            if r.thumbnail else '<small>no frame</small>'
        details = esc(r.error) if not r.reachable else (
            f'{esc(r.kind)}, {r.frames} frames, {r.size[0]}x{r.size[1]}<br>'
            f'<small>{esc(r.reason)}</small>' if r.size else esc(r.reason))
        if r.note:
            details += f'<br><small>{esc(r.note)}</small>'
        effect = '' if r.blur_effect is None else f'{r.blur_effect:.3f}'
        rows.append(
            f'<tr class="{esc(r.status.replace(" ", "_"))}"><td>{thumb}</td>'
            f'<td><b>{esc(r.name)}</b><br><small>{esc(r.url)}</small></td>'
            f'<td>{esc(r.status)}</td><td class="{esc(r.verdict)}">{esc(r.verdict)}</td>'
            f'<td>{change}</td><td>{effect}</td><td>{details}</td></tr>')
    worse = sum(r.status == 'WORSE' for r in results)
    unreachable = sum(not r.reachable for r in results)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>focus_fleet report</title>
<style>{_STYLE}</style></head><body>
<h1>Camera focus: {len(results)} cameras, {worse} worse, {unreachable} unreachable</h1>
<p>Verdict {esc(rule)}.<br>Drift: WORSE when {esc(measure)} fell by more than {drift:.0%}
against the camera's own baseline and blur_effect rose by at least {blur_rise:g}. Worst
first.</p>
<table><thead><tr><th>frame</th><th>camera</th><th>status</th><th>verdict</th>
<th>change</th><th>blur_effect</th><th>details</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    path.write_text(page, encoding='utf-8')
