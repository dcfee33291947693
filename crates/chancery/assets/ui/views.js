// The views beside the swimlanes: the party-by-issue grid of stances with each issue's standoff
// status, the relations chart (Goldstein per bucket between two parties), and an event's details.

import { h, s, fill, DAY, parseValidTime, formatDay, formatValidTime, formatOccurred, formatAmount, formatNumber,
  words, capitalize, safeUrl, monthLabel, addMonths, utc, plural } from '/ui/util.js';
import { glyphIcon } from '/ui/timeline.js';

/* ------------------------------------------------------------------ positions and standoffs */

const STANCE_CLASS = {
  DEMAND: 'st-conflict', THREAT: 'st-conflict', MEASURE: 'st-conflict', REFUSAL: 'st-conflict',
  OFFER: 'st-coop', CONDITIONAL_OFFER: 'st-coop', CONCESSION: 'st-coop', AGREED: 'st-agreed',
  STATEMENT: 'st-neutral', WITHDRAWN: 'st-neutral',
};

/**
 * Renders the grid into `root`: one row per issue, one column per party, then the status.
 * data: {parties: [{code,name}], issues: [{slug,title}], positions, standoffs, at (ms|null)}
 */
export function renderPositions(root, { parties, issues, positions, standoffs, at }, onSelect) {
  const byKey = new Map(positions.map((p) => [`${p.party.code}|${p.issue.slug}`, p]));
  const bySlug = new Map(standoffs.map((x) => [x.issue.slug, x]));
  const caption = h('caption', null, 'Where each party stands on each issue, ',
    at === null ? 'now' : `as of ${formatDay(at)}`);
  const head = h('thead', null, h('tr', null,
    h('th', { scope: 'col' }, 'Issue'),
    parties.map((p) => h('th', { scope: 'col', 'data-party': p.code }, h('abbr', { title: p.name }, p.code))),
    h('th', { scope: 'col' }, 'Standoff'),
  ));
  const body = h('tbody', null, issues.map((issue) => {
    const standoff = bySlug.get(issue.slug);
    return h('tr', { 'data-issue': issue.slug },
      h('th', { scope: 'row', class: 'issue-title' }, issue.title || issue.slug),
      parties.map((party) => {
        const p = byKey.get(`${party.code}|${issue.slug}`);
        const cell = h('td', { class: 'stance-cell', 'data-party': party.code, 'data-issue': issue.slug, 'data-stance': p ? p.stance : '' });
        if (!p) {
          cell.append(h('span', { class: 'none', 'aria-label': `${party.name}: no stance` }, '—'));
          return cell;
        }
        const since = p.firstStated === p.lastReaffirmed
          ? `since ${formatValidTime(p.firstStated)}`
          : `since ${formatValidTime(p.firstStated)}, restated ${formatValidTime(p.lastReaffirmed)}`;
        const extra = [since];
        if (p.reaffirmed) extra.push(`reaffirmed ${p.reaffirmed}×`);
        if (p.conditions?.length) extra.push(`conditions: ${p.conditions.join('; ')}`);
        cell.append(h('button', {
          type: 'button', class: `stance ${STANCE_CLASS[p.stance] || 'st-neutral'}`,
          title: `${party.name} on ${issue.title}: ${words(p.stance)} (${extra.join(', ')}). ${p.event.content.summary}`,
          'aria-label': `${party.name} on ${issue.title}: ${words(p.stance)}, ${since}. Show the event.`,
          onclick: () => onSelect(p.event.id),
        }, words(p.stance)));
        return cell;
      }),
      h('td', { class: 'status-cell', 'data-issue': issue.slug, 'data-status': standoff?.status || 'NONE' },
        standoff
          ? h('span', { class: `status status-${standoff.status.toLowerCase()}`, title: standoff.sides.map((x) => `${x.party.code}: ${words(x.stance)}`).join(', ') }, standoff.status)
          : h('span', { class: 'none', 'aria-label': 'no standoff' }, '—')),
    );
  }));
  const table = h('table', { class: 'positions' }, caption, head, body);
  fill(root, issues.length ? h('div', { class: 'table-scroll' }, table) : h('p', { class: 'empty' }, 'No issue in this view.'));
}

/* ------------------------------------------------------------------------ relations chart */

function bucketStarts(first, last, bucket) {
  const out = [];
  let t = first;
  for (let guard = 0; t <= last && guard < 2000; guard++) {
    out.push(t);
    if (bucket === 'DAY') t += DAY;
    else if (bucket === 'WEEK') t += 7 * DAY;
    else t = addMonths(t, 1);
  }
  return out;
}

/** The first day of the bucket holding a UTC instant (weeks start on Monday). */
function bucketOf(ms, bucket) {
  const d = new Date(ms);
  if (bucket === 'MONTH') return utc(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const day = utc(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return bucket === 'WEEK' ? day - ((d.getUTCDay() + 6) % 7) * DAY : day;
}

function bucketLabel(ms, bucket, withYear) {
  if (bucket === 'MONTH') return monthLabel(ms, withYear);
  const d = new Date(ms);
  return withYear ? formatDay(ms) : `${d.getUTCDate()} ${monthLabel(ms, false)}`;
}

/**
 * Renders the relations chart: a bar per bucket (empty buckets included) of the Goldstein mean
 * or sum, above the axis for cooperation and below for conflict, and the numbers in a table.
 */
export function renderRelations(root, { a, b, relations, measure, at, range }) {
  const buckets = relations.buckets.map((x) => ({ ...x, t: parseValidTime(x.start)?.start })).filter((x) => x.t !== undefined);
  if (!buckets.length) {
    fill(root, h('p', { class: 'empty' }, `No acts between ${a} and ${b}`, at === null ? '.' : ` up to ${formatDay(at)}.`));
    return;
  }
  const bucket = relations.bucket;
  // The x axis covers the whole timeline (`range`), so that moving the slider back in time
  // empties the later buckets instead of squeezing the chart.
  let first = buckets[0].t;
  let last = buckets[buckets.length - 1].t;
  if (range) {
    first = Math.min(first, bucketOf(range[0], bucket));
    last = Math.max(last, bucketOf(range[1], bucket));
  }
  const starts = bucketStarts(first, last, bucket);
  const byT = new Map(buckets.map((x) => [x.t, x]));
  const value = (x) => (x ? (measure === 'sum' ? x.goldsteinSum : x.goldsteinMean) : 0);
  const extent = Math.max(measure === 'sum' ? 10 : 10, ...buckets.map((x) => Math.abs(value(x))));
  const width = Math.max(280, root.clientWidth || 400);
  const height = 190;
  const left = 34;
  const right = width - 8;
  const top = 10;
  const bottom = height - 34;
  const mid = (top + bottom) / 2;
  const scale = (v) => mid - (v / extent) * (mid - top);
  const slot = (right - left) / starts.length;
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const svg = s('svg', {
    class: 'rel-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `Goldstein ${measure} per ${bucket.toLowerCase()} between ${a} and ${b}: ${plural(relations.total.events, 'act')}, mean ${formatNumber(relations.total.goldsteinMean)}.`,
  });
  // Axis: ticks at -extent, 0, +extent.
  for (const v of [extent, extent / 2, 0, -extent / 2, -extent]) {
    svg.append(s('line', { class: v === 0 ? 'rel-zero' : 'rel-grid', x1: left, x2: right, y1: scale(v), y2: scale(v) }));
    svg.append(s('text', { class: 'rel-tick', x: left - 4, y: scale(v) + 4, 'text-anchor': 'end' }, formatNumber(v, 1)));
  }
  if (at !== null) {
    // Shade what lies after the as-of day, as the swimlanes do.
    const t = at + DAY;
    const i = starts.findLastIndex((x) => x <= t);
    const next = (x) => (bucket === 'DAY' ? x + DAY : bucket === 'WEEK' ? x + 7 * DAY : addMonths(x, 1));
    const x = i < 0 ? left : Math.min(right, left + slot * (i + (t - starts[i]) / (next(starts[i]) - starts[i])));
    if (x < right) {
      svg.append(s('rect', { class: 'rel-after', x, y: top, width: right - x, height: bottom - top }));
      svg.append(s('line', { class: 'rel-at', x1: x, x2: x, y1: top, y2: bottom }));
    }
  }
  const labelEvery = Math.max(1, Math.ceil(60 / slot));
  starts.forEach((t, i) => {
    const x = left + slot * i + slot / 2;
    const d = byT.get(t);
    const v = value(d);
    if (d) {
      const y0 = scale(0);
      const y1 = scale(v);
      const bar = s('rect', {
        class: `rel-bar ${v >= 0 ? 'coop' : 'conf'}`, x: x - barW / 2, width: barW,
        y: Math.min(y0, y1), height: Math.max(1.5, Math.abs(y1 - y0)), 'data-start': d.start,
      });
      bar.append(s('title', null, `${bucketLabel(t, bucket, true)}: ${plural(d.events, 'act')}; Goldstein mean ${formatNumber(d.goldsteinMean)}, sum ${formatNumber(d.goldsteinSum)}; ` +
        `verbal coop. ${d.verbalCooperation}, material coop. ${d.materialCooperation}, verbal conflict ${d.verbalConflict}, material conflict ${d.materialConflict}`));
      svg.append(bar);
    }
    if (i % labelEvery === 0) {
      const first = i === 0 || (bucket === 'MONTH' ? new Date(t).getUTCMonth() === 0 : new Date(t).getUTCDate() <= (bucket === 'WEEK' ? 7 : 1) && new Date(t).getUTCMonth() === 0);
      svg.append(s('text', { class: 'rel-label', x, y: bottom + 16, 'text-anchor': 'middle' }, bucketLabel(t, bucket, first && bucket === 'MONTH')));
    }
  });
  svg.append(s('text', { class: 'rel-caption', x: left, y: height - 2 }, `${bucket === 'WEEK' ? 'weeks from Monday' : bucket === 'DAY' ? 'days' : 'months'} · cooperation above, conflict below`));

  const table = h('table', { class: 'rel-table' },
    h('thead', null, h('tr', null, ['Bucket', 'Acts', 'Mean', 'Sum', 'V. coop.', 'M. coop.', 'V. conflict', 'M. conflict'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, buckets.map((d) => h('tr', null,
      h('th', { scope: 'row' }, bucketLabel(d.t, bucket, true)),
      [d.events, formatNumber(d.goldsteinMean), formatNumber(d.goldsteinSum), d.verbalCooperation, d.materialCooperation, d.verbalConflict, d.materialConflict].map((x) => h('td', null, x)),
    ))));
  fill(root,
    h('p', { class: 'rel-total' }, `${plural(relations.total.events, 'act')} between ${a} and ${b}`, at === null ? '' : ` up to ${formatDay(at)}`,
      `; Goldstein mean ${formatNumber(relations.total.goldsteinMean)}, sum ${formatNumber(relations.total.goldsteinSum)}.`),
    svg,
    h('details', { class: 'rel-data' }, h('summary', null, 'The numbers'), h('div', { class: 'table-scroll' }, table)));
}

/* -------------------------------------------------------------------------------- details */

const PAYLOAD_LABELS = {
  terms: 'Terms', claim: 'Claim', conditions: 'Conditions', demandType: 'Demand type', deadline: 'Deadline',
  instrument: 'Instrument', condition: 'Condition', of: 'Refuses', concessionType: 'Concession',
  form: 'Form', action: 'Action', announced: 'Announced', effective: 'Effective', ratePercent: 'Rate',
  tone: 'Tone', host: 'Host', days: 'Days', participants: 'Participants', topic: 'Topic', visitor: 'Visitor',
  place: 'Place', purpose: 'Purpose', format: 'Format', rounds: 'Rounds',
  reaffirms: 'Reaffirms', refuses: 'In answer to', answers: 'Answers',
};
const ID_FIELDS = new Set(['reaffirms', 'refuses', 'answers']);
const DATE_FIELDS = new Set(['deadline', 'announced', 'effective']);

/**
 * Renders an event's details into `root`. `lookup(id)` finds a loaded event; `related` lists the
 * retractions and corrections of this event; `onSelect(id)` opens another event.
 */
export function renderDetails(root, e, { lookup, related, onSelect, onClose, onCorrect, onRetract, changes }) {
  if (!e) {
    fill(root, h('p', { class: 'empty' }, 'Select an event (click it, or Tab to it and press Enter) to see its details, amounts, codes and sources.'));
    return;
  }
  const c = e.content;
  const modality = c.occurred?.modality || 'OCCURRED';
  const ref = (id) => {
    const other = lookup(id);
    return h('button', { type: 'button', class: 'link', onclick: () => onSelect(id) },
      other ? `${words(other.kind)}, ${formatOccurred(other.content.occurred)}` : id);
  };
  const payloadRows = Object.entries(c.payload || {})
    .filter(([k, v]) => k !== '__typename' && v !== null && v !== undefined && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => {
      let shown;
      if (ID_FIELDS.has(k)) shown = (Array.isArray(v) ? v : [v]).map((id) => h('span', { class: 'ref' }, ref(id)));
      else if (DATE_FIELDS.has(k)) shown = formatValidTime(v);
      else if (k === 'ratePercent') shown = `${formatNumber(v)}%`;
      else if (Array.isArray(v)) shown = h('ul', null, v.map((x) => h('li', null, x)));
      else if (typeof v === 'string' && /^[A-Z_]+$/.test(v) && k !== 'host' && k !== 'visitor') shown = words(v);
      else shown = String(v);
      return [PAYLOAD_LABELS[k] || k, shown];
    });
  const who = (list) => list.map((p) => h('li', null, h('strong', null, p.party.code), ' ', p.party.name,
    p.actor ? [' — ', p.actor.name, p.actor.role ? `, ${p.actor.role}` : ''] : ''));
  const codes = c.codes;
  const retractions = related.filter((r) => r.kind === 'RETRACTION');
  const corrections = related.filter((r) => r.kind === 'CORRECTION');

  fill(root,
    h('div', { class: 'details-head' },
      glyphIcon(e.kind, codes?.quadClass, modality),
      h('h3', { id: 'details-title', tabindex: '-1' }, capitalize(words(e.kind))),
      h('button', { type: 'button', class: 'close', 'aria-label': 'Close the details', onclick: onClose }, '×')),
    h('p', { class: 'when' }, formatOccurred(c.occurred),
      modality !== 'OCCURRED' ? h('span', { class: `badge mod-${modality.toLowerCase()}` }, words(modality)) : null,
      e.retracted ? h('span', { class: 'badge badge-retracted' }, 'retracted') : null,
      e.corrected ? h('span', { class: 'badge badge-corrected' }, 'corrected') : null,
      c.location ? h('span', { class: 'where' }, ` · ${c.location}`) : null),
    h('p', { class: e.retracted ? 'summary struck' : 'summary' }, c.summary),
    retractions.map((r) => h('p', { class: 'notice' }, `Retracted (${formatDay(Date.parse(r.recordedAt))}): ${r.content.payload.reason}`)),
    corrections.map((r) => correctionNotice(r, changes)),
    e.retracted || !onCorrect ? null : h('p', { class: 'details-actions' },
      h('button', { type: 'button', class: 'correct', onclick: () => onCorrect(e) }, 'Correct…'),
      h('button', { type: 'button', class: 'retract', onclick: () => onRetract(e) }, 'Retract…')),
    h('dl', { class: 'facts' },
      dlRow('By', h('ul', { class: 'plain' }, who(c.actors))),
      c.targets.length ? dlRow('Towards', h('ul', { class: 'plain' }, who(c.targets))) : null,
      c.issues.length ? dlRow('Issues', h('ul', { class: 'plain' }, c.issues.map((i) => h('li', null, i.title || i.slug)))) : null,
      payloadRows.map(([k, v]) => dlRow(k, v)),
    ),
    c.amounts.length ? section('Amounts', h('ul', { class: 'amounts' }, c.amounts.map((a) => h('li', null,
      h('strong', { class: 'amount' }, formatAmount(a)), ' ', h('span', { class: 'unit' }, a.unit === 'PERCENT' ? '' : `(${a.unit}) `), a.measures)))) : null,
    codes ? section('Codes', h('dl', { class: 'facts codes' },
      dlRow('CAMEO', [h('code', null, codes.cameo), ' ', codes.cameoLabel]),
      dlRow('PLOVER', codes.ploverType ? [codes.ploverType, codes.ploverMode ? ` (${codes.ploverMode})` : ''] : '—'),
      dlRow('QuadClass', words(codes.quadClass)),
      dlRow('Goldstein', h('span', { class: codes.goldstein < 0 ? 'neg' : 'pos' }, formatNumber(codes.goldstein, 1))),
    ), h('p', { class: 'fine' }, `Codes table version ${codes.tableVersion}.`)) : null,
    section('Sources', h('ul', { class: 'sources' }, c.sources.map((src) => {
      const url = src.url ? safeUrl(src.url) : null;
      const title = src.title || src.publication;
      return h('li', null,
        url ? h('a', { href: url, rel: 'noopener noreferrer external', target: '_blank' }, title) : h('span', { class: 'src-title' }, title),
        src.title ? [' — ', src.publication] : '',
        src.published ? `, ${formatValidTime(src.published)}` : '',
        ' ', h('span', { class: `badge attr-${src.attribution.toLowerCase()}`, title: 'How the source attributes it' }, words(src.attribution)),
        src.quote ? h('blockquote', null, `“${src.quote}”`) : null);
    }))),
    h('p', { class: 'fine meta' },
      `Position ${e.position} · recorded ${e.recordedAt.replace('T', ' ').slice(0, 19)} UTC`,
      c.confidence !== null && c.confidence !== undefined ? ` · confidence ${formatNumber(c.confidence * 100, 0)}%` : '',
      // The token's name (never its secret); none for events recorded before names were kept.
      h('br'), h('span', { class: 'recorded-by' }, e.recordedBy ? `Recorded by ${e.recordedBy}` : 'Recorded by: unknown'),
      h('br'), h('span', { class: 'mono' }, `id ${e.id}`), h('br'), h('span', { class: 'mono', title: e.hash }, `hash ${e.hash.slice(0, 16)}…`)),
  );
}

/** A correction's reason, then what it changed, before and after (read from the log as it was). */
function correctionNotice(r, changes) {
  const table = h('div', { class: 'changes', 'aria-live': 'polite' }, h('p', { class: 'fine' }, `Changed: ${r.content.payload.changedFields.join(', ')}`));
  if (changes) {
    changes(r).then((rows) => fill(table, h('table', { class: 'changes-table' },
      h('caption', { class: 'visually-hidden' }, 'What the correction changed'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
      h('tbody', null, rows.map((x) => h('tr', null, h('th', { scope: 'row' }, x.field), h('td', { class: 'before' }, x.before), h('td', { class: 'after' }, x.after)))))))
      .catch(() => { /* the list of changed fields stays */ });
  }
  return h('div', { class: 'notice correction' },
    h('p', null, `Corrected (${formatDay(Date.parse(r.recordedAt))}): ${r.content.payload.reason}`), table);
}

function dlRow(term, value) {
  return [h('dt', null, term), h('dd', null, value)];
}

function section(title, ...content) {
  return h('section', { class: 'details-section' }, h('h4', null, title), content);
}

