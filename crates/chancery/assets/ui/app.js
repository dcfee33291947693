// The timeline page: loads a timeline's events, draws them, keeps them live over the WebSocket,
// and asks the projections (positions, standoffs, relations) as of the slider's date.
//
// State lives here; the URL holds the shareable part of it: ?timeline=&party=&issue=&kind=
// (comma-separated; absent means all), &at=YYYY-MM-DD (absent means now), &a=&b=&bucket=&measure=
// (the relations chart) and &event= (the open details).

import { h, fill, DAY, occurredSpan, isoDay, dayStart, parseValidTime, formatDay, formatOccurred, words, debounce, plural } from '/ui/util.js';
import { gql, token, setToken, REGISTRY, EVENTS_PAGE, ONE_EVENT, EVENTS_SUBSCRIPTION, POSITIONS, RELATIONS } from '/ui/gql.js';
import { LiveFeed } from '/ui/live.js';
import { Timeline, ACT_KINDS, glyphIcon, legend } from '/ui/timeline.js';
import { renderPositions, renderRelations, renderDetails } from '/ui/views.js';
import { save, timelineSvg, timelinePng, positionsCsv } from '/ui/publish.js';
import { Workbench, correctionChanges } from '/ui/workbench.js';

const $ = (id) => document.getElementById(id);
const ACTS = new Set(ACT_KINDS);
const QUAD_OF_KIND = {
  OFFER: 'VERBAL_COOPERATION', DEMAND: 'VERBAL_CONFLICT', THREAT: 'VERBAL_CONFLICT', REFUSAL: 'VERBAL_CONFLICT',
  CONCESSION: 'MATERIAL_COOPERATION', AGREEMENT: 'VERBAL_COOPERATION', MEASURE: 'MATERIAL_CONFLICT',
  STATEMENT: 'VERBAL_COOPERATION', ACCUSATION: 'VERBAL_CONFLICT', SEMINAR: 'VERBAL_COOPERATION',
  VISIT: 'MATERIAL_COOPERATION', TALKS: 'VERBAL_COOPERATION',
};
const PLAY_STEP_MS = 1400;

const state = {
  timelines: [],
  parties: new Map(), // code -> {code, name}
  issues: new Map(), // slug -> {slug, title}
  actors: [], // {slug, name, role, party: {code}}
  timeline: null,
  version: 0, // the timeline's version as far as the page has read it
  events: new Map(), // id -> event (every kind, of the timeline)
  related: new Map(), // event id -> its retractions and corrections
  cursor: null,
  maxPosition: 0,
  loaded: false,
  filters: { party: null, issue: null, kind: null }, // Set, or null for all
  at: null, // UTC ms of the as-of day, or null for now
  selected: null,
  rel: { a: null, b: null, bucket: 'WEEK', measure: 'mean' },
  fresh: new Set(),
  playing: 0,
  pendingSelect: null, // an event the page recorded, to open when the feed brings it
};
/** Promises waiting for the page to have read the timeline up to a version: [version, resolve]. */
let versionWaiters = [];

let feed = null;
let loadSerial = 0;
const workbench = new Workbench({
  timeline: () => state.timelines.find((t) => t.slug === state.timeline) || null,
  version: () => state.version,
  parties: () => [...state.parties.values()].sort((a, b) => a.code.localeCompare(b.code)),
  actors: (party) => state.actors.filter((a) => a.party.code === party),
  issues: () => [...state.issues.values()].sort((a, b) => a.title.localeCompare(b.title)),
  events: (kinds) => acts().filter((e) => !e.retracted && (!kinds || kinds.includes(e.kind)))
    .sort((a, b) => b.span.start - a.span.start || b.position - a.position),
  eventsAfter: (version) => [...state.events.values()].filter((e) => e.version > version).sort((a, b) => a.position - b.position),
  lookup: (id) => state.events.get(id),
  /** Resolves once the live feed has brought the timeline up to `version` (or after 10 s). */
  catchUp: (version) => (state.version >= version ? Promise.resolve() : new Promise((resolve) => {
    versionWaiters.push([version, resolve]);
    setTimeout(resolve, 10000);
  })),
  reloadRegistry: async () => {
    await loadRegistry();
    renderFilters();
  },
  recorded: (ids, message) => {
    announce(message);
    $('wb-done').textContent = message;
    $('wb-done').hidden = false;
    const [id] = ids;
    if (!id) return;
    if (state.events.has(id)) select(id, { reveal: true });
    else state.pendingSelect = id;
  },
  switchTimeline: (slug) => changeTimeline(slug),
});
const timeline = new Timeline($('timeline'), { onSelect: (id) => select(id, { reveal: false }) });

/* ------------------------------------------------------------------------------------ URL */

function readUrl() {
  const q = new URLSearchParams(location.search);
  const set = (name) => (q.get(name) ? new Set(q.get(name).split(',').filter(Boolean)) : null);
  state.timeline = q.get('timeline') || null;
  state.filters = { party: set('party'), issue: set('issue'), kind: set('kind') };
  const at = q.get('at') ? parseValidTime(q.get('at')) : null;
  state.at = at ? dayStart(at.start) : null;
  state.rel.a = q.get('a') || null;
  state.rel.b = q.get('b') || null;
  state.rel.bucket = ['DAY', 'WEEK', 'MONTH'].includes(q.get('bucket')) ? q.get('bucket') : 'WEEK';
  state.rel.measure = q.get('measure') === 'sum' ? 'sum' : 'mean';
  state.selected = q.get('event') || null;
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.timeline) q.set('timeline', state.timeline);
  for (const [name, value] of Object.entries(state.filters)) {
    if (value) q.set(name, [...value].sort().join(','));
  }
  if (state.at !== null) q.set('at', isoDay(state.at));
  if (state.rel.a) q.set('a', state.rel.a);
  if (state.rel.b) q.set('b', state.rel.b);
  if (state.rel.bucket !== 'WEEK') q.set('bucket', state.rel.bucket);
  if (state.rel.measure !== 'mean') q.set('measure', state.rel.measure);
  if (state.selected) q.set('event', state.selected);
  const search = q.toString().replace(/%2C/g, ',');
  const url = `${location.pathname}${search ? `?${search}` : ''}`;
  if (url !== `${location.pathname}${location.search}`) history.replaceState(null, '', url);
}

/* ---------------------------------------------------------------------------- the model */

function acts() {
  return [...state.events.values()].filter((e) => ACTS.has(e.kind) && e.span);
}

function enrich(e) {
  e.span = occurredSpan(e.content.occurred);
  e.parties = [...new Set(e.content.actors.map((a) => a.party.code))];
  for (const p of [...e.content.actors, ...e.content.targets]) {
    if (!state.parties.has(p.party.code)) state.parties.set(p.party.code, { code: p.party.code, name: p.party.name });
  }
  for (const i of e.content.issues) {
    if (!state.issues.has(i.slug)) state.issues.set(i.slug, { slug: i.slug, title: i.title });
  }
  return e;
}

/** Parties and issues of this timeline's acts, in a stable order. */
function timelineParties() {
  const codes = new Set();
  for (const e of acts()) for (const p of [...e.content.actors, ...e.content.targets]) codes.add(p.party.code);
  return [...codes].sort().map((c) => state.parties.get(c) || { code: c, name: c });
}

function timelineIssues() {
  const slugs = new Set();
  for (const e of acts()) for (const i of e.content.issues) slugs.add(i.slug);
  return [...slugs].map((s) => state.issues.get(s) || { slug: s, title: s }).sort((a, b) => a.title.localeCompare(b.title));
}

function passes(e) {
  const { party, issue, kind } = state.filters;
  if (kind && !kind.has(e.kind)) return false;
  if (party && !e.parties.some((p) => party.has(p))) return false;
  if (issue && !e.content.issues.some((i) => issue.has(i.slug))) return false;
  return true;
}

function shownParties() {
  const all = timelineParties();
  return state.filters.party ? all.filter((p) => state.filters.party.has(p.code)) : all;
}

function shownIssues() {
  const all = timelineIssues();
  return state.filters.issue ? all.filter((i) => state.filters.issue.has(i.slug)) : all;
}

function shownEvents() {
  return acts().filter(passes);
}

/** Adds or replaces an event; answers true if it is an act new to the page. */
function integrate(e) {
  const known = state.events.has(e.id);
  state.events.set(e.id, enrich(e));
  state.maxPosition = Math.max(state.maxPosition, e.position);
  if (e.version > state.version) {
    state.version = e.version;
    versionWaiters = versionWaiters.filter(([v, resolve]) => (v <= state.version ? resolve() : true));
  }
  const p = e.content.payload;
  if (e.kind === 'RETRACTION' || e.kind === 'CORRECTION') {
    const target = e.kind === 'RETRACTION' ? p.retracts : p.corrects;
    const list = state.related.get(target) || [];
    if (!list.some((x) => x.id === e.id)) list.push(e);
    state.related.set(target, list);
    const t = state.events.get(target);
    if (t && e.kind === 'RETRACTION') t.retracted = true;
    if (t && e.kind === 'CORRECTION') t.corrected = true;
  } else if (e.kind === 'PARTY_REGISTERED') {
    state.parties.set(p.code, { code: p.code, name: p.name });
  } else if (e.kind === 'ISSUE_REGISTERED') {
    state.issues.set(p.slug, { slug: p.slug, title: p.title });
  }
  return !known && ACTS.has(e.kind);
}

/* ---------------------------------------------------------------------------- loading */

async function loadRegistry() {
  const data = await gql(REGISTRY);
  state.timelines = data.timelines;
  for (const p of data.parties) state.parties.set(p.code, p);
  for (const i of data.issues) state.issues.set(i.slug, i);
  state.actors = data.actors;
  const select = $('timeline-select');
  fill(select, data.timelines.map((t) => h('option', { value: t.slug }, t.title)));
  select.disabled = data.timelines.length < 2;
  if (!state.timeline || !data.timelines.some((t) => t.slug === state.timeline)) state.timeline = data.timelines[0]?.slug || null;
  select.value = state.timeline || '';
}

async function loadTimeline() {
  const serial = ++loadSerial;
  feed?.stop();
  feed = null;
  state.events.clear();
  state.related.clear();
  state.cursor = null;
  state.maxPosition = 0;
  state.version = 0;
  state.loaded = false;
  timeline.view = null;
  const t = state.timelines.find((x) => x.slug === state.timeline);
  document.title = t ? `Chancery: ${t.title}` : 'Chancery: timeline';
  const publish = $('timelinejs-link');
  publish.hidden = !state.timeline;
  publish.href = state.timeline ? `/timelines/${encodeURIComponent(state.timeline)}/timelinejs.json` : '#';
  publish.download = state.timeline ? `${state.timeline}-timelinejs.json` : '';
  $('record-open').disabled = !state.timeline;
  if (!state.timeline) {
    fill($('positions'), h('p', { class: 'empty' }, 'No timeline yet.'));
    fill($('relations'), h('p', { class: 'empty' }, 'No timeline yet.'));
    setLive('stopped', 'no timeline');
    renderAll();
    return;
  }
  const filter = { timelines: [state.timeline] };
  let after = null;
  for (;;) {
    const data = await gql(EVENTS_PAGE, { filter, after });
    if (serial !== loadSerial) return;
    for (const edge of data.events.edges) integrate(edge.node);
    if (data.events.pageInfo.endCursor) state.cursor = data.events.pageInfo.endCursor;
    if (!data.events.pageInfo.hasNextPage) break;
    after = data.events.pageInfo.endCursor;
  }
  state.loaded = true;
  if (state.selected && !state.events.has(state.selected)) state.selected = null;
  renderFilters();
  renderAll();
  refreshViews();
  startFeed(serial);
}

function startFeed(serial) {
  feed = new LiveFeed({
    query: EVENTS_SUBSCRIPTION,
    variables: () => ({ filter: { timelines: [state.timeline] }, after: state.cursor }),
    token,
    onState: setLive,
    onData: (data) => {
      if (serial !== loadSerial) return;
      const e = data.events;
      state.cursor = e.cursor;
      const isNew = integrate(e);
      if (e.kind === 'CORRECTION') refetch(e.content.payload.corrects, e.position);
      if (e.id === state.pendingSelect) {
        state.pendingSelect = null;
        select(e.id, { reveal: true });
      }
      if (isNew) {
        state.fresh.add(e.id);
        setTimeout(() => { state.fresh.delete(e.id); renderTimeline(); }, 6000);
        announce(`New event: ${words(e.kind)} by ${e.parties.join(' and ')}, ${formatOccurred(e.content.occurred)}.`);
      }
      renderSoon();
      refreshViews();
    },
  });
  window.chanceryPage.feed = feed;
  feed.start();
}

// The corrected event as the projections read it once they have applied the correction at
// `atLeast`: the live feed comes from the log and may run ahead of them, and an answer from
// before the correction would put the event back as it was.
async function refetch(id, atLeast) {
  try {
    const data = await gql(ONE_EVENT, { id, atLeast });
    if (data.event) {
      integrate(data.event);
      renderSoon();
    }
  } catch (err) {
    showError(err);
  }
}

/* --------------------------------------------------------------------- the projections */

let viewsAbort = null;
let viewsSerial = 0;

const refreshViews = debounce(async () => {
  if (!state.timeline || !state.loaded) return;
  viewsAbort?.abort();
  const abort = new AbortController();
  viewsAbort = abort;
  const serial = ++viewsSerial;
  const asOf = state.at === null ? null : { validAt: isoDay(state.at) };
  const parties = shownParties();
  const issues = shownIssues();
  const atLeast = state.maxPosition || null;
  const [a, b] = relationPair(parties);
  try {
    const [pos, rel] = await Promise.all([
      gql(POSITIONS, {
        timeline: state.timeline, parties: state.filters.party ? parties.map((p) => p.code) : [],
        issues: state.filters.issue ? issues.map((i) => i.slug) : [], asOf, atLeast,
      }, { signal: abort.signal }),
      a && b ? gql(RELATIONS, { a, b, bucket: state.rel.bucket, timeline: state.timeline, asOf, atLeast }, { signal: abort.signal }) : null,
    ]);
    if (serial !== viewsSerial) return;
    const positionsRoot = $('positions');
    renderPositions(positionsRoot, { parties, issues, positions: pos.positions, standoffs: pos.standoffs, at: state.at }, (id) => select(id, { reveal: true }));
    positionsRoot.dataset.asOf = state.at === null ? 'now' : isoDay(state.at);
    positionsRoot.dataset.position = String(atLeast || 0);
    if (rel) {
      const domain = sliderDomain();
      const range = domain ? [domain.first, domain.first + (domain.days - 1) * DAY] : null;
      renderRelations($('relations'), { a, b, relations: rel.relations, measure: state.rel.measure, at: state.at, range });
    } else {
      fill($('relations'), h('p', { class: 'empty' }, 'Relations need two parties.'));
    }
    $('relations').dataset.asOf = positionsRoot.dataset.asOf;
    clearError();
  } catch (err) {
    if (err.name === 'AbortError') return;
    showError(err);
  }
}, 90);

function relationPair(parties) {
  const codes = timelineParties().map((p) => p.code);
  let { a, b } = state.rel;
  if (!codes.includes(a)) a = parties[0]?.code || codes[0] || null;
  if (!codes.includes(b) || b === a) b = (parties.find((p) => p.code !== a) || {}).code || codes.find((c) => c !== a) || null;
  fill($('rel-a'), codes.map((c) => h('option', { value: c }, c)));
  fill($('rel-b'), codes.map((c) => h('option', { value: c }, c)));
  $('rel-a').value = a || '';
  $('rel-b').value = b || '';
  $('rel-bucket').value = state.rel.bucket;
  $('rel-measure').value = state.rel.measure;
  return [a, b];
}

/* ---------------------------------------------------------------------------- rendering */

const renderSoon = debounce(() => { renderFilters(); renderAll(); }, 30);

function renderAll() {
  renderTimeline();
  renderSlider();
  renderDetailsPanel();
  writeUrl();
}

function renderTimeline() {
  timeline.setData({ lanes: shownParties(), events: shownEvents(), at: state.at, selected: state.selected, fresh: state.fresh });
  const root = $('timeline');
  root.dataset.events = String(new Set(shownEvents().map((e) => e.id)).size);
  root.dataset.loaded = state.loaded ? 'true' : 'false';
}

function renderDetailsPanel() {
  const e = state.selected ? state.events.get(state.selected) : null;
  renderDetails($('details-body'), e, {
    lookup: (id) => state.events.get(id),
    related: e ? state.related.get(e.id) || [] : [],
    onSelect: (id) => select(id, { reveal: true }),
    onClose: () => select(null),
    onCorrect: (ev) => workbench.openCorrect(ev),
    onRetract: (ev) => workbench.openRetract(ev),
    changes: correctionChanges,
  });
  $('details').classList.toggle('has-event', Boolean(e));
}

function chip(group, value, label, checked, icon, title) {
  const id = `f-${group}-${value}`;
  return h('label', { class: 'chip', for: id, title: title || null },
    h('input', { type: 'checkbox', id, value, checked: checked ? 'checked' : null, 'data-group': group }),
    icon || null, h('span', null, label));
}

function renderFilters() {
  const parties = timelineParties();
  const issues = timelineIssues();
  const { party, issue, kind } = state.filters;
  fill($('f-party').querySelector('.chips'), parties.map((p) => chip('party', p.code, `${p.code} · ${p.name}`, !party || party.has(p.code))));
  fill($('f-issue').querySelector('.chips'), issues.map((i) => chip('issue', i.slug, i.title, !issue || issue.has(i.slug), null, i.slug)));
  fill($('f-kind').querySelector('.chips'), ACT_KINDS.map((k) => chip('kind', k, words(k), !kind || kind.has(k), glyphIcon(k, QUAD_OF_KIND[k]))));
  const describe = (set, all, name) => {
    if (!set) return 'all';
    if (!set.size) return 'none';
    if (set.size <= 2) return [...set].map(name).join(', ');
    return `${set.size} of ${all}`;
  };
  $('f-party').querySelector('.f-value').textContent = describe(party, parties.length, (c) => c);
  $('f-issue').querySelector('.f-value').textContent = describe(issue, issues.length, (s) => state.issues.get(s)?.title || s);
  $('f-kind').querySelector('.f-value').textContent = describe(kind, ACT_KINDS.length, (k) => words(k));
  for (const g of ['party', 'issue', 'kind']) $(`f-${g}`).classList.toggle('active', Boolean(state.filters[g]));
  const shown = state.loaded ? shownEvents().length : 0;
  const total = state.loaded ? acts().length : 0;
  $('filter-summary').textContent = state.loaded ? (shown === total ? plural(total, 'act') : `${shown} of ${plural(total, 'act')} shown`) : '';
}

function onFilterChange(ev) {
  const input = ev.target;
  if (!input.matches?.('input[type=checkbox][data-group]')) return;
  const group = input.dataset.group;
  const boxes = [...document.querySelectorAll(`input[data-group="${group}"]`)];
  const checked = boxes.filter((b) => b.checked).map((b) => b.value);
  setFilter(group, checked.length === boxes.length ? null : new Set(checked));
  document.getElementById(input.id)?.focus();
}

function setFilter(group, value) {
  state.filters[group] = value;
  stopPlay();
  renderFilters();
  renderAll();
  refreshViews();
}

/* ------------------------------------------------------------------------- the slider */

/** The days the slider covers: from the first event's start to the last one's end; one more notch means now. */
function sliderDomain() {
  const spans = acts().map((e) => e.span);
  if (!spans.length) return null;
  const first = dayStart(Math.min(...spans.map((s) => s.start)));
  const last = dayStart(Math.max(...spans.map((s) => Math.max(s.start, s.end - 1))));
  return { first, days: Math.round((last - first) / DAY) + 1 };
}

function renderSlider() {
  const slider = $('slider');
  const domain = sliderDomain();
  const output = $('at-output');
  const date = $('at-date');
  if (!domain) {
    slider.disabled = true;
    output.textContent = 'now';
    return;
  }
  slider.disabled = false;
  slider.min = '0';
  slider.max = String(domain.days);
  const value = state.at === null ? domain.days : Math.max(0, Math.min(domain.days - 1, Math.round((state.at - domain.first) / DAY)));
  slider.value = String(value);
  const text = state.at === null ? 'now' : formatDay(state.at);
  output.textContent = text;
  output.dataset.date = state.at === null ? '' : isoDay(state.at);
  slider.setAttribute('aria-valuetext', state.at === null ? 'now: everything known' : `as of ${text}`);
  date.min = isoDay(domain.first);
  date.max = isoDay(domain.first + (domain.days - 1) * DAY);
  if (document.activeElement !== date) date.value = state.at === null ? '' : isoDay(state.at);
  $('at-now').disabled = state.at === null;
}

function setAt(ms, { fromSlider = false } = {}) {
  state.at = ms === null ? null : dayStart(ms);
  if (!fromSlider) renderSlider();
  else {
    const text = state.at === null ? 'now' : formatDay(state.at);
    $('at-output').textContent = text;
    $('at-output').dataset.date = state.at === null ? '' : isoDay(state.at);
    $('slider').setAttribute('aria-valuetext', state.at === null ? 'now: everything known' : `as of ${text}`);
    $('at-now').disabled = state.at === null;
    $('at-date').value = state.at === null ? '' : isoDay(state.at);
  }
  renderTimeline();
  writeUrl();
  refreshViews();
}

/* ---------------------------------------------------------------------------- playing */

function steps() {
  return shownEvents().sort((a, b) => a.span.start - b.span.start || a.position - b.position);
}

/** Goes to the next (+1) or previous (-1) event in valid time, from the selected one or the slider. */
function stepBy(direction) {
  const list = steps();
  if (!list.length) return false;
  const current = list.findIndex((e) => e.id === state.selected);
  let index;
  if (current >= 0) {
    index = current + direction;
  } else if (direction > 0) {
    index = state.at === null ? 0 : list.findIndex((e) => e.span.start > state.at);
  } else {
    const before = list.filter((e) => state.at === null || e.span.start <= state.at);
    index = before.length - 1;
  }
  if (index < 0 || index >= list.length) return false;
  const e = list[index];
  state.selected = e.id;
  setAt(e.span.start);
  renderDetailsPanel();
  timeline.reveal(e.span.start);
  writeUrl();
  return true;
}

function play() {
  const list = steps();
  if (!list.length) return;
  const last = list[list.length - 1];
  const current = list.findIndex((e) => e.id === state.selected);
  if (state.at === null || current === list.length - 1 || (current < 0 && state.at >= dayStart(last.span.start))) {
    state.selected = null; // start again from the first event
    state.at = null;
  }
  const button = $('play');
  button.setAttribute('aria-pressed', 'true');
  button.textContent = '❚❚ Pause';
  const tick = () => {
    if (!stepBy(1)) {
      stopPlay();
      return;
    }
    state.playing = setTimeout(tick, PLAY_STEP_MS);
  };
  state.playing = setTimeout(tick, 0);
}

function stopPlay() {
  if (!state.playing && $('play').getAttribute('aria-pressed') !== 'true') return;
  clearTimeout(state.playing);
  state.playing = 0;
  $('play').setAttribute('aria-pressed', 'false');
  $('play').textContent = '▶ Play';
}

/* ---------------------------------------------------------------------------- selection */

function select(id, { reveal = false } = {}) {
  state.selected = id && state.events.has(id) ? id : null;
  renderDetailsPanel();
  renderTimeline();
  writeUrl();
  const e = state.selected ? state.events.get(state.selected) : null;
  if (e && reveal) timeline.reveal((e.span.start + e.span.end) / 2);
  if (e && window.matchMedia('(max-width: 899px)').matches) $('details').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

/* ------------------------------------------------------------------------------ status */

const LIVE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', stopped: 'Not live', error: 'Live feed error',
};

function setLive(which, detail) {
  const el = $('live-state');
  if (which === 'error') {
    // Keep the connection state; say what went wrong.
    showError(new Error(`Live feed: ${detail}`));
    return;
  }
  el.dataset.state = which;
  el.textContent = LIVE_TEXT[which] + (detail ? ` (${detail})` : '');
  el.title = which === 'live' ? 'New events appear as they are recorded.' : 'The page will catch up with what it missed once connected.';
  if (which === 'live') clearError();
}

function showError(err) {
  const el = $('alert');
  const code = err.code ? ` [${err.code}]` : '';
  fill(el, h('span', null, `${err.message}${code}`),
    err.code === 'UNAUTHORIZED' ? h('span', null, ' Set an access token (Token, top right).') : null,
    h('button', { type: 'button', onclick: () => start() }, 'Retry'));
  el.hidden = false;
  if (err.code === 'UNAUTHORIZED') $('token-box').open = true;
}

function clearError() {
  $('alert').hidden = true;
}

function announce(text) {
  $('announce').textContent = text;
}

/* ------------------------------------------------------------------------------- wiring */

function changeTimeline(slug) {
  state.timeline = slug;
  $('timeline-select').value = slug;
  state.filters = { party: null, issue: null, kind: null };
  state.selected = null;
  state.at = null;
  state.rel.a = null;
  state.rel.b = null;
  stopPlay();
  writeUrl();
  loadTimeline().catch(showError);
}

function wire() {
  // A link cannot carry the token: with one set, the file is fetched with it and saved from memory.
  $('timelinejs-link').addEventListener('click', async (ev) => {
    const t = token();
    if (!t) return;
    ev.preventDefault();
    const link = ev.currentTarget;
    try {
      const response = await fetch(link.href, { headers: { authorization: `Bearer ${t}` }, credentials: 'omit', cache: 'no-store' });
      if (!response.ok) {
        const err = new Error(`TimelineJS: ${(await response.text()).trim() || `the server answered ${response.status}`}`);
        err.code = response.status === 401 ? 'UNAUTHORIZED' : response.status === 403 ? 'FORBIDDEN' : response.status === 404 ? 'NOT_FOUND' : 'ERROR';
        throw err;
      }
      save(await response.blob(), link.download);
    } catch (err) {
      showError(err);
    }
  });
  // The view as shown: its name says the timeline and the date it is drawn as of.
  const viewName = (what, extension) => `${state.timeline || 'timeline'}${what}-${state.at === null ? 'now' : isoDay(state.at)}.${extension}`;
  const drawing = () => document.querySelector('#timeline svg.tl-svg');
  const publishing = (make) => async () => {
    try {
      await make();
    } catch (err) {
      showError(err);
    }
  };
  $('save-svg').addEventListener('click', publishing(async () => {
    if (!drawing()) throw new Error('the timeline is not drawn yet');
    const { text } = await timelineSvg(drawing());
    save(new Blob([text], { type: 'image/svg+xml' }), viewName('', 'svg'));
  }));
  $('save-png').addEventListener('click', publishing(async () => {
    if (!drawing()) throw new Error('the timeline is not drawn yet');
    save(await timelinePng(drawing()), viewName('', 'png'));
  }));
  $('save-csv').addEventListener('click', publishing(async () => {
    const table = document.querySelector('#positions table');
    if (!table) throw new Error('the positions grid is not shown yet');
    save(new Blob([positionsCsv(table)], { type: 'text/csv' }), viewName('-positions', 'csv'));
  }));
  $('timeline-select').addEventListener('change', (ev) => changeTimeline(ev.target.value));
  // The lists the form offers are read again first: others may have registered since.
  $('record-open').addEventListener('click', async () => {
    try {
      await loadRegistry();
    } catch (err) {
      showError(err);
      return;
    }
    workbench.openRecord();
  });
  $('timeline-new').addEventListener('click', () => workbench.openRegister('timeline'));
  const filters = document.querySelector('.filters');
  filters.addEventListener('change', onFilterChange);
  for (const group of ['party', 'issue', 'kind']) {
    const box = $(`f-${group}`);
    box.querySelector('.f-all').addEventListener('click', () => { setFilter(group, null); box.querySelector('input')?.focus(); });
    // One open at a time; Escape closes and gives the focus back to the summary.
    box.addEventListener('toggle', () => {
      if (box.open) for (const other of filters.querySelectorAll('details.filter[open]')) if (other !== box) other.open = false;
    });
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && box.open) {
        box.open = false;
        box.querySelector('summary').focus();
      }
    });
  }
  document.addEventListener('click', (ev) => {
    for (const box of filters.querySelectorAll('details.filter[open]')) if (!box.contains(ev.target)) box.open = false;
  });
  $('slider').addEventListener('input', (ev) => {
    stopPlay();
    const domain = sliderDomain();
    if (!domain) return;
    const v = Number(ev.target.value);
    setAt(v >= domain.days ? null : domain.first + v * DAY, { fromSlider: true });
  });
  $('at-date').addEventListener('change', (ev) => {
    stopPlay();
    const t = parseValidTime(ev.target.value);
    setAt(t ? t.start : null);
  });
  $('at-now').addEventListener('click', () => { stopPlay(); setAt(null); });
  $('play').addEventListener('click', () => (state.playing ? stopPlay() : play()));
  $('step-back').addEventListener('click', () => { stopPlay(); stepBy(-1); });
  $('step-next').addEventListener('click', () => { stopPlay(); stepBy(1); });
  $('zoom-in').addEventListener('click', () => timeline.zoom(1.5));
  $('zoom-out').addEventListener('click', () => timeline.zoom(1 / 1.5));
  $('pan-left').addEventListener('click', () => timeline.pan(-0.25));
  $('pan-right').addEventListener('click', () => timeline.pan(0.25));
  $('zoom-fit').addEventListener('click', () => timeline.fit());
  const relChange = () => {
    state.rel.a = $('rel-a').value || null;
    state.rel.b = $('rel-b').value || null;
    state.rel.bucket = $('rel-bucket').value;
    state.rel.measure = $('rel-measure').value;
    writeUrl();
    refreshViews();
  };
  for (const id of ['rel-a', 'rel-b', 'rel-bucket', 'rel-measure']) $(id).addEventListener('change', relChange);
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token-input').value.trim());
    $('token-input').value = '';
    $('token-box').open = false;
    start();
  });
  $('token-clear').addEventListener('click', () => { setToken(''); start(); });
  window.addEventListener('popstate', () => { readUrl(); start(); });
  $('legend').append(legend());
  let lastWidth = window.innerWidth;
  window.addEventListener('resize', debounce(() => {
    if (window.innerWidth !== lastWidth) {
      lastWidth = window.innerWidth;
      refreshViews(); // the relations chart follows the width
    }
  }, 200));
}

async function start() {
  clearError();
  try {
    await loadRegistry();
    await loadTimeline();
  } catch (err) {
    showError(err);
    setLive('stopped');
  }
}

window.chanceryPage = {
  state,
  /** Closes the live connection as a network failure would (the end-to-end test uses it). */
  dropConnection: () => feed?.drop(),
};
readUrl();
wire();
renderFilters();
renderDetailsPanel();
start();
