// The swimlanes: one lane per party, each event placed along valid time with a glyph for its
// kind, coloured by its CAMEO QuadClass. Month- and year-precision dates and explicit ranges are
// drawn as spans; planned, hypothetical and denied events are hollow; retracted events are struck
// through. Zoom and pan with the buttons, ctrl+wheel or a pinch on a touchpad, dragging, or the
// keyboard (+, -, 0, shift+arrows); arrows move between events, Enter opens one.

import { s, h, DAY, occurredSpan, formatDay, formatOccurred, monthLabel, addMonths, monthStart, yearStart, weekStart, dayStart, words, utc } from '/ui/util.js';

export const ACT_KINDS = ['OFFER', 'DEMAND', 'THREAT', 'REFUSAL', 'CONCESSION', 'AGREEMENT', 'MEASURE',
  'STATEMENT', 'ACCUSATION', 'SEMINAR', 'VISIT', 'TALKS'];

function star(outer, inner) {
  const points = [];
  for (let i = 0; i < 10; i++) {
    const r = i % 2 ? inner : outer;
    const a = -Math.PI / 2 + (i * Math.PI) / 5;
    points.push(`${(r * Math.cos(a)).toFixed(2)},${(r * Math.sin(a) + 0.8).toFixed(2)}`);
  }
  return `M${points.join('L')}Z`;
}

function polygon(n, r, rotate = 0) {
  const points = [];
  for (let i = 0; i < n; i++) {
    const a = rotate + (i * 2 * Math.PI) / n;
    points.push(`${(r * Math.cos(a)).toFixed(2)},${(r * Math.sin(a)).toFixed(2)}`);
  }
  return `M${points.join('L')}Z`;
}

/** One shape per kind, centred on 0,0, about 16 px across. */
export const GLYPHS = {
  OFFER: 'M0,-7A7,7 0 1 1 0,7A7,7 0 1 1 0,-7Z',
  DEMAND: 'M0,-8L7.5,6L-7.5,6Z',
  THREAT: 'M0,8L7.5,-6L-7.5,-6Z',
  REFUSAL: 'M-6,-6H6V6H-6Z',
  CONCESSION: 'M-7.5,-3H7.5A7.5,7.5 0 0 1 -7.5,-3Z',
  AGREEMENT: star(8.5, 3.6),
  MEASURE: polygon(8, 7.5, Math.PI / 8),
  STATEMENT: 'M-7.5,-6.5H7.5V3H-1L-5,7.5V3H-7.5Z',
  ACCUSATION: 'M0,-8.5L8.5,0L0,8.5L-8.5,0Z',
  SEMINAR: 'M0,-8L7.5,-2V7H-7.5V-2Z',
  VISIT: 'M-7.5,-6.5H1L7.5,0L1,6.5H-7.5L-3.5,0Z',
  TALKS: 'M-8,-6.5L0,0L-8,6.5ZM8,-6.5L0,0L8,6.5Z',
};

/** A small SVG of a kind's glyph, for legends and details. */
export function glyphIcon(kind, quad, modality) {
  return s('svg', { class: `glyph-icon ${quadClass(quad)} mod-${(modality || 'OCCURRED').toLowerCase()}`, viewBox: '-10 -10 20 20', width: 18, height: 18, 'aria-hidden': 'true', focusable: 'false' },
    s('path', { class: 'glyph', d: GLYPHS[kind] || GLYPHS.STATEMENT }));
}

export function quadClass(quad) {
  switch (quad) {
    case 'VERBAL_COOPERATION': return 'q-vcoop';
    case 'MATERIAL_COOPERATION': return 'q-mcoop';
    case 'VERBAL_CONFLICT': return 'q-vconf';
    case 'MATERIAL_CONFLICT': return 'q-mconf';
    default: return 'q-none';
  }
}

const AXIS_H = 30;
const ROW_H = 22;
const LANE_PAD = 7;
const GLYPH_R = 9;
const MIN_SPAN = 3600 * 1000; // an hour across the whole width at most
const MAX_SPAN = 200 * 365 * DAY;

export class Timeline {
  constructor(root, { onSelect }) {
    this.root = root;
    this.onSelect = onSelect;
    this.lanes = [];
    this.events = [];
    this.at = null;
    this.selected = null;
    this.fresh = new Set();
    this.view = null; // [t0, t1] in UTC ms
    this.domain = null;
    this.frame = 0;
    this.width = 0;
    this.order = []; // keyboard order: [{laneIndex, items}]

    this.svg = s('svg', { class: 'tl-svg', role: 'group', 'aria-label': 'Swimlanes: events of each party along valid time', 'aria-describedby': 'tl-help' });
    this.root.append(this.svg);
    this.installPointer();
    this.installKeys();
    new ResizeObserver(() => this.schedule()).observe(this.root);
  }

  /** lanes: [{code, name}], events: enriched events (see app.js), at: UTC ms of the as-of day or null. */
  setData({ lanes, events, at, selected, fresh }) {
    this.lanes = lanes;
    this.events = events;
    this.at = at;
    this.selected = selected;
    this.fresh = fresh || new Set();
    const spans = events.map((e) => e.span).filter(Boolean);
    if (spans.length) {
      const lo = Math.min(...spans.map((x) => x.start));
      const hi = Math.max(...spans.map((x) => x.end));
      const pad = Math.max((hi - lo) * 0.04, 2 * DAY);
      this.domain = [lo - pad, hi + pad];
    } else {
      const now = Date.now();
      this.domain = [now - 180 * DAY, now + 30 * DAY];
    }
    if (!this.view) this.view = this.domain.slice();
    this.schedule();
  }

  fit() {
    if (this.domain) this.view = this.domain.slice();
    this.schedule();
  }

  /** Zooms by `factor` (> 1 zooms in) around `center` (UTC ms; the middle of the view if left out). */
  zoom(factor, center) {
    const [t0, t1] = this.view;
    const c = center ?? (t0 + t1) / 2;
    let span = (t1 - t0) / factor;
    span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, span));
    const ratio = (c - t0) / (t1 - t0);
    this.view = [c - ratio * span, c - ratio * span + span];
    this.schedule();
  }

  /** Pans by a fraction of the view's width (positive: later). */
  pan(fraction) {
    const [t0, t1] = this.view;
    const d = (t1 - t0) * fraction;
    this.view = [t0 + d, t1 + d];
    this.schedule();
  }

  /** Makes sure an instant is in view (panning as little as possible). */
  reveal(ms) {
    if (!this.view) return;
    const [t0, t1] = this.view;
    const margin = (t1 - t0) * 0.08;
    if (ms < t0 + margin) this.view = [ms - margin, ms - margin + (t1 - t0)];
    else if (ms > t1 - margin) this.view = [ms + margin - (t1 - t0), ms + margin];
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  labelWidth() {
    return this.width < 600 ? 52 : 118;
  }

  x(ms) {
    const [t0, t1] = this.view;
    const left = this.labelWidth();
    return left + ((ms - t0) / (t1 - t0)) * (this.width - left - 12);
  }

  time(px) {
    const [t0, t1] = this.view;
    const left = this.labelWidth();
    return t0 + ((px - left) / (this.width - left - 12)) * (t1 - t0);
  }

  render() {
    this.width = Math.max(280, this.root.clientWidth);
    if (!this.view) return;
    const focusedId = this.svg.contains(document.activeElement) ? document.activeElement.dataset?.eventId : null;
    const focusedParty = focusedId ? document.activeElement.dataset.party : null;
    const width = this.width;
    const left = this.labelWidth();
    const right = width - 12;

    // Place each event in the lane of each of its acting parties, packed into rows.
    const laneItems = this.lanes.map(() => []);
    const laneIndex = new Map(this.lanes.map((l, i) => [l.code, i]));
    for (const e of this.events) {
      if (!e.span) continue;
      const x0 = this.x(e.span.start);
      const x1 = this.x(e.span.end);
      if (x1 < left - GLYPH_R || x0 > right + GLYPH_R) continue; // out of view
      const drawnSpan = !e.span.instant && x1 - x0 > 4;
      let cx = e.span.instant ? x0 : (x0 + x1) / 2;
      if (drawnSpan) {
        // Keep the glyph of a span that is partly in view on its visible part.
        const lo = Math.max(x0, left + GLYPH_R);
        const hi = Math.min(x1, right - GLYPH_R);
        if (lo <= hi) cx = Math.min(hi, Math.max(lo, cx));
      }
      // Spans that only touch (March, then April) may share a row.
      const lo = Math.min(drawnSpan ? x0 + 2 : cx, cx - GLYPH_R);
      const hi = Math.max(drawnSpan ? x1 - 2 : cx, cx + GLYPH_R);
      for (const code of e.parties) {
        const i = laneIndex.get(code);
        if (i === undefined) continue;
        laneItems[i].push({ e, x0, x1, cx, lo, hi, drawnSpan, code });
      }
    }
    const lanes = [];
    let y = AXIS_H;
    for (let i = 0; i < this.lanes.length; i++) {
      const items = laneItems[i].sort((a, b) => a.lo - b.lo || a.e.position - b.e.position);
      const rowEnds = [];
      for (const it of items) {
        let row = rowEnds.findIndex((end) => end + 1 < it.lo);
        if (row < 0) {
          row = rowEnds.length;
          rowEnds.push(it.hi);
        } else {
          rowEnds[row] = it.hi;
        }
        it.row = row;
      }
      const rows = Math.max(1, rowEnds.length);
      const height = rows * ROW_H + 2 * LANE_PAD;
      lanes.push({ lane: this.lanes[i], items, y, height });
      y += height;
    }
    const height = Math.max(y + (this.at !== null ? 22 : 8), AXIS_H + 60);

    const svg = this.svg;
    svg.replaceChildren();
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.dataset.viewStart = new Date(this.view[0]).toISOString();
    svg.dataset.viewEnd = new Date(this.view[1]).toISOString();

    const clipId = 'tl-clip';
    svg.append(s('defs', null,
      s('clipPath', { id: clipId }, s('rect', { x: left, y: 0, width: Math.max(0, right - left), height })),
    ));
    svg.append(s('rect', { class: 'tl-bg', x: 0, y: 0, width, height }));

    // Lanes.
    const laneGroup = s('g', { class: 'tl-lanes' });
    lanes.forEach(({ lane, y: ly, height: lh }, i) => {
      laneGroup.append(s('g', { class: `tl-lane ${i % 2 ? 'odd' : 'even'}`, 'data-party': lane.code },
        s('rect', { class: 'tl-lane-bg', x: 0, y: ly, width, height: lh }),
        s('text', { class: 'tl-lane-code', x: 10, y: ly + LANE_PAD + 13 }, lane.code),
        width >= 600 ? s('text', { class: 'tl-lane-name', x: 10, y: ly + LANE_PAD + 28 }, truncate(lane.name, 16)) : null,
        s('title', null, lane.name),
      ));
    });
    svg.append(laneGroup);

    // Axis and grid lines.
    const axis = s('g', { class: 'tl-axis', 'aria-hidden': 'true' });
    for (const tick of ticks(this.view[0], this.view[1], (right - left) / 62)) {
      const tx = this.x(tick.t);
      if (tx < left || tx > right) continue;
      axis.append(s('line', { class: tick.major ? 'tl-grid major' : 'tl-grid', x1: tx, x2: tx, y1: AXIS_H - 6, y2: height }));
      if (tx + 7 * tick.label.length < right) axis.append(s('text', { class: 'tl-tick', x: tx + 3, y: AXIS_H - 11 }, tick.label));
    }
    axis.append(s('line', { class: 'tl-axis-line', x1: left, x2: right, y1: AXIS_H, y2: AXIS_H }));
    svg.append(axis);

    // The as-of line: the end of the slider's day.
    if (this.at !== null) {
      const ax = this.x(this.at + DAY);
      if (ax >= left && ax <= right) {
        svg.append(s('g', { class: 'tl-at', 'aria-hidden': 'true' },
          s('rect', { class: 'tl-after', x: ax, y: AXIS_H, width: Math.max(0, right - ax), height: height - AXIS_H }),
          s('line', { x1: ax, x2: ax, y1: AXIS_H - 4, y2: height }),
          s('text', { x: ax - 4, y: height - 7, 'text-anchor': 'end' }, `as of ${formatDay(this.at)}`),
        ));
      }
    }

    // Events.
    const evGroup = s('g', { class: 'tl-events', 'clip-path': `url(#${clipId})` });
    this.order = [];
    lanes.forEach(({ lane, items, y: ly }, li) => {
      const ordered = items.slice().sort((a, b) => a.cx - b.cx || a.row - b.row);
      this.order.push({ code: lane.code, items: ordered });
      for (const it of ordered) {
        const cy = ly + LANE_PAD + it.row * ROW_H + ROW_H / 2;
        it.cy = cy;
        evGroup.append(this.eventNode(it, cy, li));
      }
    });
    svg.append(evGroup);

    if (focusedId) {
      const again = svg.querySelector(`.ev[data-event-id="${CSS.escape(focusedId)}"][data-party="${CSS.escape(focusedParty || '')}"]`)
        || svg.querySelector(`.ev[data-event-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  eventNode(it, cy, laneIndex) {
    const e = it.e;
    const modality = e.content.occurred?.modality || 'OCCURRED';
    const future = this.at !== null && e.span.start >= this.at + DAY;
    const classes = ['ev', `kind-${e.kind.toLowerCase()}`, quadClass(e.content.codes?.quadClass), `mod-${modality.toLowerCase()}`];
    if (e.retracted) classes.push('retracted');
    if (e.corrected) classes.push('corrected');
    if (future) classes.push('future');
    if (e.id === this.selected) classes.push('selected');
    if (this.fresh.has(e.id)) classes.push('fresh');
    const g = s('g', {
      class: classes.join(' '),
      transform: `translate(${it.cx.toFixed(1)},${cy.toFixed(1)})`,
      tabindex: '0',
      role: 'button',
      'aria-label': describe(e, it.code) + (future ? '. Later than the as-of date' : ''),
      'aria-pressed': e.id === this.selected ? 'true' : 'false',
      'data-event-id': e.id,
      'data-party': it.code,
      'data-kind': e.kind,
      'data-lane': laneIndex,
    });
    if (it.drawnSpan) {
      g.append(s('rect', {
        class: e.span.fuzzy ? 'span fuzzy' : 'span range',
        x: (it.x0 - it.cx).toFixed(1), y: -6, width: Math.max(1, it.x1 - it.x0).toFixed(1), height: 12, rx: 6,
      }));
    }
    g.append(s('circle', { class: 'halo', r: 12 }));
    g.append(s('path', { class: 'glyph', d: GLYPHS[e.kind] || GLYPHS.STATEMENT }));
    if (modality === 'HYPOTHETICAL') g.append(s('text', { class: 'mark', y: 3.5 }, '?'));
    if (modality === 'DENIED') g.append(s('line', { class: 'mark-line', x1: -6, y1: 6, x2: 6, y2: -6 }));
    if (e.retracted) {
      const a = it.drawnSpan ? Math.min(it.x0 - it.cx, -12) : -12;
      const b = it.drawnSpan ? Math.max(it.x1 - it.cx, 12) : 12;
      g.append(s('line', { class: 'strike', x1: a.toFixed(1), x2: b.toFixed(1), y1: 0, y2: 0 }));
    }
    g.append(s('title', null, tooltip(e)));
    return g;
  }

  installPointer() {
    let drag = null;
    this.svg.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || !this.view) return;
      drag = { x: ev.clientX, view: this.view.slice(), moved: false, id: ev.pointerId };
    });
    this.svg.addEventListener('pointermove', (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const dx = ev.clientX - drag.x;
      if (!drag.moved && Math.abs(dx) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        this.svg.setPointerCapture(ev.pointerId);
        this.svg.classList.add('dragging');
      }
      const [t0, t1] = drag.view;
      const perPx = (t1 - t0) / (this.width - this.labelWidth() - 12);
      this.view = [t0 - dx * perPx, t1 - dx * perPx];
      this.schedule();
    });
    const end = (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const moved = drag.moved;
      drag = null;
      this.svg.classList.remove('dragging');
      if (moved) {
        this.suppressClick = true;
        setTimeout(() => { this.suppressClick = false; }, 0);
      }
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('click', (ev) => {
      if (this.suppressClick) return;
      const node = ev.target.closest?.('.ev');
      if (node) this.onSelect(node.dataset.eventId);
    });
    this.svg.addEventListener('wheel', (ev) => {
      if (!this.view) return;
      const rect = this.svg.getBoundingClientRect();
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        this.zoom(Math.exp(-ev.deltaY * 0.003), this.time(ev.clientX - rect.left));
      } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        ev.preventDefault();
        const delta = ev.shiftKey && !ev.deltaX ? ev.deltaY : ev.deltaX;
        this.pan(delta / (this.width - this.labelWidth()));
      }
    }, { passive: false });
  }

  installKeys() {
    this.root.addEventListener('keydown', (ev) => {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const node = ev.target.closest?.('.ev');
      switch (ev.key) {
        case '+': case '=': this.zoom(1.5, this.focusTime(node)); break;
        case '-': case '_': this.zoom(1 / 1.5, this.focusTime(node)); break;
        case '0': this.fit(); break;
        case 'Enter': case ' ':
          if (!node) return;
          this.onSelect(node.dataset.eventId);
          break;
        case 'ArrowLeft': case 'ArrowRight':
          if (ev.shiftKey || !node) {
            this.pan(ev.key === 'ArrowLeft' ? -0.2 : 0.2);
          } else {
            this.step(node, ev.key === 'ArrowLeft' ? -1 : 1, 0);
          }
          break;
        case 'ArrowUp': case 'ArrowDown':
          if (!node) return;
          this.step(node, 0, ev.key === 'ArrowUp' ? -1 : 1);
          break;
        case 'Home': case 'End':
          if (!node) return;
          this.step(node, ev.key === 'Home' ? -Infinity : Infinity, 0);
          break;
        default:
          return;
      }
      ev.preventDefault();
    });
  }

  focusTime(node) {
    if (!node) return undefined;
    const e = this.events.find((x) => x.id === node.dataset.eventId);
    return e?.span ? (e.span.start + e.span.end) / 2 : undefined;
  }

  /** Moves the focus to the next event in the lane (dx) or the nearest in the next lane (dy). */
  step(node, dx, dy) {
    const li = Number(node.dataset.lane);
    const lane = this.order[li];
    if (!lane) return;
    const index = lane.items.findIndex((it) => it.e.id === node.dataset.eventId);
    let target = null;
    if (dx) {
      const i = dx === -Infinity ? 0 : dx === Infinity ? lane.items.length - 1 : index + dx;
      target = lane.items[i] ? { lane: li, it: lane.items[i] } : null;
    } else {
      const cx = lane.items[index]?.cx ?? 0;
      for (let l = li + dy; l >= 0 && l < this.order.length; l += dy) {
        const items = this.order[l].items;
        if (!items.length) continue;
        const nearest = items.reduce((best, it) => (Math.abs(it.cx - cx) < Math.abs(best.cx - cx) ? it : best));
        target = { lane: l, it: nearest };
        break;
      }
    }
    if (!target) return;
    const el = this.svg.querySelector(`.ev[data-event-id="${CSS.escape(target.it.e.id)}"][data-lane="${target.lane}"]`);
    if (el) el.focus();
  }
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function modalityWord(e) {
  const m = e.content.occurred?.modality;
  return m && m !== 'OCCURRED' ? ` (${words(m)})` : '';
}

/** What a screen reader says of an event. */
function describe(e, party) {
  const who = e.content.actors.filter((a) => a.party.code === party).map((a) => a.actor?.name || a.party.name).join(', ');
  const parts = [`${words(e.kind)} by ${who || party}, ${formatOccurred(e.content.occurred)}${modalityWord(e)}`];
  if (e.retracted) parts.push('retracted');
  if (e.corrected) parts.push('corrected');
  parts.push(truncate(e.content.summary, 160));
  return parts.join('. ');
}

function tooltip(e) {
  const flags = [e.retracted ? 'RETRACTED' : '', e.corrected ? 'corrected' : ''].filter(Boolean).join(', ');
  return `${e.kind} · ${formatOccurred(e.content.occurred)}${modalityWord(e)}${flags ? ` · ${flags}` : ''}\n${e.content.summary}`;
}

/** Axis ticks for [t0, t1] with at most `max` labels. */
function ticks(t0, t1, max) {
  const span = t1 - t0;
  const units = [
    { ms: DAY, kind: 'day', n: 1 }, { ms: 2 * DAY, kind: 'day', n: 2 }, { ms: 7 * DAY, kind: 'week', n: 1 },
    { ms: 14 * DAY, kind: 'week', n: 2 }, { ms: 30 * DAY, kind: 'month', n: 1 }, { ms: 91 * DAY, kind: 'month', n: 3 },
    { ms: 182 * DAY, kind: 'month', n: 6 }, { ms: 365 * DAY, kind: 'year', n: 1 }, { ms: 5 * 365 * DAY, kind: 'year', n: 5 },
    { ms: 10 * 365 * DAY, kind: 'year', n: 10 }, { ms: 50 * 365 * DAY, kind: 'year', n: 50 },
  ];
  if (span / DAY < max / 4) {
    // Less than a few days in view: hours.
    const stepH = [1, 3, 6, 12].find((hrs) => span / (hrs * 3600000) <= max) || 12;
    const out = [];
    for (let t = Math.ceil(t0 / (stepH * 3600000)) * stepH * 3600000; t <= t1; t += stepH * 3600000) {
      const d = new Date(t);
      const major = d.getUTCHours() === 0;
      out.push({ t, major, label: major ? formatDay(t) : `${String(d.getUTCHours()).padStart(2, '0')}:00` });
    }
    return out;
  }
  const unit = units.find((u) => span / u.ms <= max) || units[units.length - 1];
  const out = [];
  if (unit.kind === 'day' || unit.kind === 'week') {
    let t = unit.kind === 'week' ? weekStart(t0) : dayStart(t0);
    for (; t <= t1; t += unit.ms) {
      const d = new Date(t);
      const major = d.getUTCDate() <= unit.n * (unit.kind === 'week' ? 7 : 1);
      out.push({ t, major, label: major ? `${d.getUTCDate()} ${monthLabel(t, d.getUTCMonth() === 0)}` : String(d.getUTCDate()) });
    }
    if (out.length && !out[0].major) out[0].label = `${new Date(out[0].t).getUTCDate()} ${monthLabel(out[0].t, true)}`;
  } else if (unit.kind === 'month') {
    let t = monthStart(t0);
    while (new Date(t).getUTCMonth() % unit.n) t = addMonths(t, 1);
    let first = true;
    for (; t <= t1; t = addMonths(t, unit.n)) {
      const jan = new Date(t).getUTCMonth() === 0;
      out.push({ t, major: jan, label: monthLabel(t, jan || first) });
      first = false;
    }
  } else {
    let y = new Date(yearStart(t0)).getUTCFullYear();
    y -= ((y % unit.n) + unit.n) % unit.n;
    for (let t = utc(y, 0, 1); t <= t1; y += unit.n, t = utc(y, 0, 1)) {
      if (t >= t0) out.push({ t, major: true, label: String(y) });
    }
  }
  return out;
}

/** The legend: kinds (glyphs) and colours (QuadClass) and styles (modality, spans, retraction). */
export function legend() {
  const kinds = h('ul', { class: 'legend-list', 'aria-label': 'Shapes: kinds of act' },
    ACT_KINDS.map((k) => h('li', null, s('svg', { class: 'legend-swatch q-none', viewBox: '-10 -10 20 20', width: 16, height: 16, 'aria-hidden': 'true' },
      s('path', { class: 'glyph', d: GLYPHS[k] })), words(k))));
  const swatch = (cls, label) => h('li', null, s('svg', { class: `legend-swatch ${cls}`, viewBox: '-10 -10 20 20', width: 18, height: 18, 'aria-hidden': 'true' },
    s('path', { class: 'glyph', d: GLYPHS.OFFER })), label);
  const style = (cls, label, extra) => h('li', null, s('svg', { class: `legend-swatch q-vcoop ${cls}`, viewBox: '-14 -10 28 20', width: 26, height: 18, 'aria-hidden': 'true' },
    extra, s('path', { class: 'glyph', d: GLYPHS.OFFER })), label);
  return h('div', { class: 'legend' },
    kinds,
    h('ul', { class: 'legend-list', 'aria-label': 'Colours: CAMEO QuadClass' },
      swatch('q-vcoop', 'verbal cooperation'), swatch('q-mcoop', 'material cooperation'),
      swatch('q-vconf', 'verbal conflict'), swatch('q-mconf', 'material conflict')),
    h('ul', { class: 'legend-list', 'aria-label': 'Styles' },
      style('mod-planned', 'planned'), style('mod-hypothetical', 'hypothetical', s('text', { class: 'mark', y: 3.5 }, '?')),
      style('retracted', 'retracted', s('line', { class: 'strike', x1: -12, x2: 12, y1: 0, y2: 0 })),
      style('', 'month/year precision', s('rect', { class: 'span fuzzy', x: -13, y: -5, width: 26, height: 10, rx: 5 }))),
  );
}
