// Small helpers shared by the page's modules: DOM building, valid time, formatting.

export const SVG_NS = 'http://www.w3.org/2000/svg';
export const DAY = 86400000;

/** An HTML element: h('p', {class: 'x', onclick: f}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTHS_LONG = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

/**
 * A valid time as a span of UTC milliseconds: `2018` is the year, `2018-05` the month,
 * `2018-05-03` the day, an instant is a point. Answers null for what it cannot read.
 */
export function parseValidTime(text) {
  if (typeof text !== 'string') return null;
  const m = /^(-?\d{4,})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    const mo = m[2] ? Number(m[2]) - 1 : 0;
    const d = m[3] ? Number(m[3]) : 1;
    const start = utc(y, mo, d);
    const end = m[3] ? start + DAY : m[2] ? utc(y, mo + 1, 1) : utc(y + 1, 0, 1);
    return { start, end, precision: m[3] ? 'DAY' : m[2] ? 'MONTH' : 'YEAR' };
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) return null;
  return { start: t, end: t, precision: 'INSTANT' };
}

/** UTC midnight of a day (months and days may overflow, as Date.UTC allows). */
export function utc(y, m, d) {
  const date = new Date(0);
  date.setUTCFullYear(y, m, d);
  date.setUTCHours(0, 0, 0, 0);
  return date.getTime();
}

/** The span an event's `occurred` covers: from its start to the end of its end (or start). */
export function occurredSpan(occurred) {
  if (!occurred) return null;
  const a = parseValidTime(occurred.start);
  if (!a) return null;
  const b = occurred.end ? parseValidTime(occurred.end) : null;
  const end = b ? Math.max(b.end, a.end) : a.end;
  return { start: a.start, end, fuzzy: a.precision === 'MONTH' || a.precision === 'YEAR', instant: a.precision === 'INSTANT' && !b };
}

/** `2018-04-27` for a UTC day. */
export function isoDay(ms) {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const ys = y < 0 ? '-' + String(-y).padStart(4, '0') : String(y).padStart(4, '0');
  return `${ys}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

export function dayStart(ms) {
  return Math.floor(ms / DAY) * DAY;
}

/** `27 Apr 2018`. */
export function formatDay(ms) {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

/** A valid time as a reader says it: `March 2018`, `28 Apr 2018`, `2018`. */
export function formatValidTime(text) {
  const t = parseValidTime(text);
  if (!t) return String(text ?? '');
  const d = new Date(t.start);
  switch (t.precision) {
    case 'YEAR': return String(d.getUTCFullYear());
    case 'MONTH': return `${MONTHS_LONG[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
    case 'DAY': return formatDay(t.start);
    default: return `${formatDay(t.start)} ${d.toISOString().slice(11, 16)} UTC`;
  }
}

/** An event's valid time as text: `28–30 Apr 2018 (planned)`. */
export function formatOccurred(occurred) {
  if (!occurred) return '';
  let text = formatValidTime(occurred.start);
  if (occurred.end) text += ' – ' + formatValidTime(occurred.end);
  return text;
}

export function monthLabel(ms, withYear) {
  const d = new Date(ms);
  return withYear ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}` : MONTHS[d.getUTCMonth()];
}

/** Adds months to a UTC day (clamped to the first of the month). */
export function addMonths(ms, n) {
  const d = new Date(ms);
  return utc(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
}

export function monthStart(ms) {
  const d = new Date(ms);
  return utc(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function yearStart(ms) {
  return utc(new Date(ms).getUTCFullYear(), 0, 1);
}

/** Monday of the week of a UTC day. */
export function weekStart(ms) {
  const day = dayStart(ms);
  const dow = (new Date(day).getUTCDay() + 6) % 7;
  return day - dow * DAY;
}

/** `$100B`, `¥3.5T`, `25%`: an amount, compact. */
export function formatAmount(amount) {
  if (amount.unit === 'PERCENT') return `${formatNumber(amount.value)}%`;
  try {
    return new Intl.NumberFormat('en', {
      style: 'currency', currency: amount.unit, notation: 'compact', maximumFractionDigits: 1,
    }).format(amount.value);
  } catch {
    return `${formatNumber(amount.value)} ${amount.unit}`;
  }
}

export function formatNumber(n, digits = 2) {
  return new Intl.NumberFormat('en', { maximumFractionDigits: digits }).format(n);
}

/** `1 act`, `2 acts`. */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `POLICY_CHANGE` → `policy change`. */
export function words(enumValue) {
  return String(enumValue ?? '').toLowerCase().replace(/_/g, ' ');
}

export function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** Calls `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Only http(s) links are followed. */
export function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}
