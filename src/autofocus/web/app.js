// The autofocus page: live image, ROI by drag, focus goals, jog, plots.
// Plain JavaScript and canvas, no library, no network but this server.
'use strict';

const POLL_MS = 250;
const PLOT_SECONDS = 60;

// The token comes once in the URL the web node printed; keep it for this tab only and
// take it out of the address bar (and so out of history and screenshots).
const params = new URLSearchParams(location.search);
let token = params.get('token') || sessionStorage.getItem('autofocus-token') || '';
if (params.has('token')) {
  sessionStorage.setItem('autofocus-token', token);
  history.replaceState(null, '', location.pathname);
}

const $ = (id) => document.getElementById(id);
const state = { since: -1, sharpness: [], roi: null, goal: null, motor: null, drag: null };

function show(id, text, ok) {
  const el = $(id);
  el.textContent = text || '';
  el.className = 'msg ' + (text ? (ok ? 'ok' : 'err') : '');
}

async function post(path, body) {
  // Control requests: the token goes in a header (never a cookie), the body as JSON.
  let response;
  try {
    response = await fetch(path, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', 'X-Autofocus-Token': token },
    });
  } catch (err) {
    return { ok: false, reason: 'no connection to the web node: ' + err };
  }
  let answer = { ok: false, reason: 'HTTP ' + response.status };
  try { answer = await response.json(); } catch (err) { /* keep the status */ }
  return answer;
}

// ---- live image and ROI ---------------------------------------------------------------
const live = $('live');
const overlay = $('overlay');

function startStream() {
  live.src = '/stream.mjpg?token=' + encodeURIComponent(token) + '&t=' + Date.now();
}
live.addEventListener('error', () => setTimeout(startStream, 2000));
live.addEventListener('load', drawOverlay);

function overlayPoint(event) {
  const rect = overlay.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width),
          clamp((event.clientY - rect.top) / rect.height)];
}

function dragBox() {
  const [x0, y0] = state.drag.start, [x1, y1] = state.drag.end;
  return { x: Math.min(x0, x1), y: Math.min(y0, y1),
           width: Math.abs(x1 - x0), height: Math.abs(y1 - y0) };
}

overlay.addEventListener('pointerdown', (event) => {
  overlay.setPointerCapture(event.pointerId);
  const point = overlayPoint(event);
  state.drag = { start: point, end: point };
  drawOverlay();
});
overlay.addEventListener('pointermove', (event) => {
  if (!state.drag) return;
  state.drag.end = overlayPoint(event);
  drawOverlay();
});
overlay.addEventListener('pointerup', async (event) => {
  if (!state.drag) return;
  state.drag.end = overlayPoint(event);
  const box = dragBox();
  if (box.width < 0.01 || box.height < 0.01) {
    state.drag = null;
    show('roi-msg', 'drag a box on the image to set the region of interest', false);
    drawOverlay();
    return;
  }
  await setRoi(box.x, box.y, box.width, box.height);
  state.drag = null;
  drawOverlay();
});

async function setRoi(x, y, width, height) {
  const round = (v) => Math.round(v * 10000) / 10000;
  show('roi-msg', 'setting the ROI…', true);
  const answer = await post('/api/roi', { x: round(x), y: round(y),
                                          width: round(width), height: round(height) });
  show('roi-msg', answer.ok ? 'ROI set' : answer.reason, answer.ok);
  if (answer.ok) state.roi = { x: round(x), y: round(y), width: round(width), height: round(height) };
  drawOverlay();
  return answer;
}

function drawOverlay() {
  const rect = overlay.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  overlay.width = Math.round(rect.width * ratio);
  overlay.height = Math.round(rect.height * ratio);
  const g = overlay.getContext('2d');
  g.clearRect(0, 0, overlay.width, overlay.height);
  const box = (r, colour, dash) => {
    g.setLineDash(dash);
    g.lineWidth = 2 * ratio;
    g.strokeStyle = colour;
    g.strokeRect(r.x * overlay.width, r.y * overlay.height,
                 r.width * overlay.width, r.height * overlay.height);
  };
  if (state.roi) box(state.roi, '#ffd600', []);
  if (state.drag) box(dragBox(), '#00e5ff', [6 * ratio, 4 * ratio]);
  const r = state.roi;
  $('roi-text').textContent = r ? `ROI x ${r.x.toFixed(3)} y ${r.y.toFixed(3)} ` +
    `w ${r.width.toFixed(3)} h ${r.height.toFixed(3)}` : 'ROI unknown (no sharpness node?)';
}
window.addEventListener('resize', drawOverlay);

// ---- focus, cancel, jog ----------------------------------------------------------------
function rangeValue(id) {
  const text = $(id).value.trim();
  if (text === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : NaN;
}

$('focus-btn').addEventListener('click', async () => {
  const body = { strategy: $('strategy').value };
  const low = rangeValue('range-min'), high = rangeValue('range-max');
  if (Number.isNaN(low) || Number.isNaN(high)) {
    show('focus-msg', 'the range must be numbers (or both empty for the default)', false);
    return;
  }
  if ((low === undefined) !== (high === undefined)) {
    show('focus-msg', 'give both ends of the range, or neither', false);
    return;
  }
  if (low !== undefined) { body.range_min = low; body.range_max = high; }
  show('focus-msg', 'sending the goal…', true);
  const answer = await post('/api/focus', body);
  show('focus-msg', answer.reason, answer.ok);
});

$('cancel-btn').addEventListener('click', async () => {
  const answer = await post('/api/cancel', {});
  show('focus-msg', answer.reason, answer.ok);
});

for (const button of document.querySelectorAll('[data-jog]')) {
  button.addEventListener('click', async () => {
    const answer = await post('/api/jog', { delta: Number(button.dataset.jog) });
    show('jog-msg', answer.reason, answer.ok);
  });
}

// ---- state from the node ----------------------------------------------------------------
async function poll() {
  try {
    const response = await fetch('/api/state?since=' + state.since,
                                 { headers: { 'X-Autofocus-Token': token } });
    const data = await response.json();
    if (!response.ok) throw new Error(data.reason || 'HTTP ' + response.status);
    update(data);
    $('connection').textContent = 'connected';
    $('connection').className = 'ok';
  } catch (err) {
    $('connection').textContent = 'no connection: ' + err.message;
    $('connection').className = 'bad';
  }
  setTimeout(poll, POLL_MS);
}

function fmt(value, digits) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}

function update(data) {
  $('camera').textContent = 'camera ' + (data.namespace || '/');
  $('camera').title = 'web node ' + data.node + ', sharpness node ' + data.sharpness_node;
  const select = $('strategy');
  if (select.options.length === 1) {
    for (const name of data.strategies) select.add(new Option(name, name));
  }
  if (!state.drag) state.roi = data.roi;
  drawOverlay();

  const now = data.sharpness.samples.length ? data.sharpness.samples.at(-1)[0] : null;
  state.sharpness.push(...data.sharpness.samples);
  state.since = data.sharpness.last;
  if (now !== null) {
    state.sharpness = state.sharpness.filter(([t]) => t >= now - PLOT_SECONDS);
  }
  drawSharpness();

  const motor = data.motor;
  state.motor = motor;
  if (motor) {
    $('motor').textContent = `position ${fmt(motor.position, 2)}` +
      (motor.moving ? ` → ${fmt(motor.target, 2)} (moving)` : ' (at rest)') +
      `, limits [${fmt(motor.min, 0)}, ${fmt(motor.max, 0)}]` +
      (motor.measured ? '' : ', estimated') + (motor.age > 2 ? `, last state ${motor.age} s ago` : '');
    $('fault').textContent = motor.fault ? 'MOTOR FAULT: ' + motor.fault : '';
    if (!$('range-min').placeholder.includes('(')) {
      $('range-min').placeholder = `min (${fmt(motor.min, 0)})`;
      $('range-max').placeholder = `max (${fmt(motor.max, 0)})`;
    }
  } else {
    $('motor').textContent = 'no motor state (is the motor driver running?)';
  }

  const goal = data.goal;
  state.goal = goal;
  const running = goal && (goal.status === 'running' || goal.status === 'sending');
  $('focus-btn').disabled = running;
  $('cancel-btn').disabled = !running;
  for (const button of document.querySelectorAll('[data-jog]')) button.disabled = running;
  if (goal) {
    $('goal-status').textContent = `goal ${goal.id} (${goal.strategy || 'default strategy'}): ` +
      goal.status + (goal.error ? ' — ' + goal.error : '');
    $('goal-status').dataset.status = goal.status;
    const last = goal.samples.at(-1);
    $('progress').textContent = running
      ? `${goal.phase || 'starting'}: position ${fmt(last && last[0], 2)}, sharpness ` +
        `${fmt(last && last[1], 1)}, best ${fmt(goal.best && goal.best[0], 2)}, ` +
        `${goal.frames} frames, ${fmt(goal.elapsed, 1)} s`
      : (goal.final ? `final position ${fmt(goal.final[0], 2)}, sharpness ` +
                      `${fmt(goal.final[1], 1)}; ` : '') +
        `${goal.frames} frames, ${fmt(goal.elapsed, 2)} s`;
  }
  drawCurve();
}

// ---- plots (canvas) -------------------------------------------------------------------------
function tick(v) {
  const a = Math.abs(v);
  return a >= 1e5 || (a > 0 && a < 1e-2) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

function axes(canvas, xRange, yRange, xLabel, yLabel) {
  const g = canvas.getContext('2d');
  const pad = { left: 62, right: 14, top: 12, bottom: 34 };
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  const w = canvas.width - pad.left - pad.right, h = canvas.height - pad.top - pad.bottom;
  const sx = (x) => pad.left + (x - xRange[0]) / (xRange[1] - xRange[0] || 1) * w;
  const sy = (y) => pad.top + h - (y - yRange[0]) / (yRange[1] - yRange[0] || 1) * h;
  g.strokeStyle = '#ddd'; g.fillStyle = '#444'; g.lineWidth = 1; g.setLineDash([]);
  g.font = '11px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const x = xRange[0] + (xRange[1] - xRange[0]) * i / 4;
    const y = yRange[0] + (yRange[1] - yRange[0]) * i / 4;
    g.beginPath(); g.moveTo(sx(x), pad.top); g.lineTo(sx(x), pad.top + h); g.stroke();
    g.beginPath(); g.moveTo(pad.left, sy(y)); g.lineTo(pad.left + w, sy(y)); g.stroke();
    g.textAlign = 'center'; g.fillText(tick(x), sx(x), pad.top + h + 13);
    g.textAlign = 'right'; g.fillText(tick(y), pad.left - 4, sy(y) + 4);
  }
  g.textAlign = 'center'; g.fillText(xLabel, pad.left + w / 2, canvas.height - 4);
  g.save(); g.translate(12, pad.top + h / 2); g.rotate(-Math.PI / 2);
  g.fillText(yLabel, 0, 0); g.restore();
  g.strokeStyle = '#888'; g.strokeRect(pad.left, pad.top, w, h);
  return { g, sx, sy };
}

function extent(values, fallback) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return fallback;
  let low = Math.min(...finite), high = Math.max(...finite);
  if (high === low) { high += 1; low -= 1; }
  return [low, high];
}

function drawSharpness() {
  const canvas = $('sharpness-plot');
  const samples = state.sharpness.filter(([, v]) => v !== null);
  const now = samples.length ? samples.at(-1)[0] : 0;
  const yr = extent(samples.map(([, v]) => v), [0, 1]);
  const { g, sx, sy } = axes(canvas, [-PLOT_SECONDS, 0], [Math.min(0, yr[0]), yr[1] * 1.05],
                             'seconds before now', 'sharpness');
  g.strokeStyle = '#1565c0'; g.lineWidth = 1.5;
  g.beginPath();
  samples.forEach(([t, v], i) => (i ? g.lineTo : g.moveTo).call(g, sx(t - now), sy(v)));
  g.stroke();
  canvas.dataset.points = samples.length;
}

function orderColour(i, n) {  // dark blue (first) to yellow (last), like viridis
  const f = n > 1 ? i / (n - 1) : 1;
  return `hsl(${260 - 200 * f}, 70%, ${30 + 25 * f}%)`;
}

function drawCurve() {
  const canvas = $('curve-plot');
  const goal = state.goal;
  const points = goal ? (goal.curve || goal.samples).filter(([p, s]) => p !== null && s !== null)
                      : [];
  const motor = state.motor;
  const fallback = motor && motor.max > motor.min ? [motor.min, motor.max] : [0, 1000];
  const xr = goal && goal.range[1] > goal.range[0] ? goal.range
    : extent(points.map(([p]) => p), fallback);
  const yr = extent(points.map(([, s]) => s), [0, 1]);
  const { g, sx, sy } = axes(canvas, xr, [Math.min(0, yr[0]), yr[1] * 1.05],
                             'lens position (motor units)', 'sharpness');
  // The curve through the samples sorted by position, then the samples in visited order.
  const sorted = [...points].sort((a, b) => a[0] - b[0]);
  g.strokeStyle = '#bbb'; g.lineWidth = 1.5; g.beginPath();
  sorted.forEach(([p, s], i) => (i ? g.lineTo : g.moveTo).call(g, sx(p), sy(s)));
  g.stroke();
  points.forEach(([p, s], i) => {
    g.fillStyle = orderColour(i, points.length);
    g.beginPath(); g.arc(sx(p), sy(s), 4, 0, 2 * Math.PI); g.fill();
  });
  if (goal && goal.final) {
    g.strokeStyle = 'crimson'; g.setLineDash([6, 4]); g.lineWidth = 2;
    g.beginPath(); g.moveTo(sx(goal.final[0]), sy(yr[1] * 1.05));
    g.lineTo(sx(goal.final[0]), sy(Math.min(0, yr[0]))); g.stroke(); g.setLineDash([]);
    g.fillStyle = 'crimson'; g.textAlign = 'left';
    g.fillText(`final ${goal.final[0].toFixed(1)}`, sx(goal.final[0]) + 4, 24);
  } else if (motor && motor.position !== null && goal && goal.status === 'running') {
    g.strokeStyle = '#2e7d32'; g.lineWidth = 1; g.beginPath();
    g.moveTo(sx(motor.position), sy(yr[1] * 1.05)); g.lineTo(sx(motor.position), sy(0)); g.stroke();
  }
  canvas.dataset.points = points.length;
  canvas.dataset.final = goal && goal.final ? goal.final[0] : '';
}

window.autofocus = { setRoi, post, state };
// The stream after the page's load event: an image that never ends (no camera yet) would
// otherwise keep the page "loading" for ever.
if (document.readyState === 'complete') startStream();
else window.addEventListener('load', startStream);
poll();
