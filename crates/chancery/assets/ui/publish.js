// Publishing what the page shows: the timeline as drawn (SVG or PNG) and the positions grid (CSV),
// made in the browser from what is on screen and saved as downloads.

import { h } from '/ui/util.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Saves `blob` as a download named `name`. */
export function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name, hidden: '' });
  document.body.append(link);
  link.click();
  link.remove();
  // The download reads the blob after the click returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

let styles = null;

/** The page's style sheet, which the drawing's classes refer to: a standalone SVG carries it. */
async function styleSheet() {
  if (styles === null) {
    const response = await fetch('/ui/style.css', { credentials: 'omit' });
    if (!response.ok) throw new Error(`the page's styles could not be read (${response.status})`);
    styles = await response.text();
  }
  return styles;
}

/** The timeline `svg` as drawn now, as a standalone SVG document with its size. */
export async function timelineSvg(svg) {
  const box = svg.getBoundingClientRect();
  const width = Math.max(1, Math.round(box.width));
  const height = Math.max(1, Math.round(box.height));
  const copy = svg.cloneNode(true);
  copy.setAttribute('xmlns', SVG_NS);
  copy.setAttribute('width', String(width));
  copy.setAttribute('height', String(height));
  for (const el of [copy, ...copy.querySelectorAll('[tabindex]')]) el.removeAttribute('tabindex');
  const style = document.createElementNS(SVG_NS, 'style');
  style.textContent = await styleSheet();
  // A white ground: viewers show a transparent one as black or as a checkerboard.
  const ground = document.createElementNS(SVG_NS, 'rect');
  for (const [name, value] of Object.entries({ x: 0, y: 0, width: '100%', height: '100%', fill: '#fff' })) ground.setAttribute(name, String(value));
  copy.prepend(style, ground);
  return { text: new XMLSerializer().serializeToString(copy), width, height };
}

/** The timeline `svg` as drawn now, as a PNG at twice its size on screen (sharp when printed). */
export async function timelinePng(svg) {
  const { text, width, height } = await timelineSvg(svg);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  try {
    const image = new Image(width, height);
    image.src = url;
    await image.decode();
    const scale = 2;
    const canvas = h('canvas', { width: width * scale, height: height * scale });
    const context = canvas.getContext('2d');
    context.scale(scale, scale);
    context.drawImage(image, 0, 0, width, height);
    return await new Promise((resolve, reject) => canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error('the browser could not make the PNG'))), 'image/png'));
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
function field(value) {
  const text = String(value ?? '');
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The positions grid `table` as shown, as CSV: a row per issue with its slug and title, each
 * party's stance (empty when it has none) and the standoff (NONE when there is none).
 */
export function positionsCsv(table) {
  const parties = [...table.querySelectorAll('thead th[data-party]')].map((th) => th.dataset.party);
  const rows = [['issue', 'title', ...parties, 'standoff']];
  for (const tr of table.querySelectorAll('tbody tr[data-issue]')) {
    const stance = (party) => tr.querySelector(`.stance-cell[data-party="${CSS.escape(party)}"]`)?.dataset.stance || '';
    rows.push([tr.dataset.issue, tr.querySelector('th')?.textContent.trim() || '', ...parties.map(stance),
      tr.querySelector('.status-cell')?.dataset.status || 'NONE']);
  }
  return `${rows.map((row) => row.map(field).join(',')).join('\r\n')}\r\n`;
}
