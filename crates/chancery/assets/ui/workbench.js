// The analyst's workbench: one form records an act of any kind and, filled with an event, corrects
// it; a short one retracts an event with its reason; another registers timelines, parties, actors
// and issues. Each sends the mutation the API documents. A field the server refuses is marked
// where it is typed, with the server's message; a version conflict says what moved and offers to
// reload; a dropped connection is retried with the same ids, so nothing is recorded twice.

import { h, fill, parseValidTime, words, capitalize, formatOccurred, formatValidTime, formatAmount } from '/ui/util.js';
import { gql, ApiError, RECORD_EVENT, CORRECT_EVENT, RETRACT_EVENT, REGISTER, TIMELINE_VERSION, EVENT_KNOWN_AT } from '/ui/gql.js';

/* ------------------------------------------------------------------------ what a form holds */

/** The schema's enums the forms offer, in the schema's order (the first is the default). */
export const ENUMS = {
  Modality: ['OCCURRED', 'PLANNED', 'HYPOTHETICAL', 'DENIED'],
  Attribution: ['NAMED', 'OFFICIAL', 'ANONYMOUS'],
  PartyKind: ['STATE', 'ORGANIZATION', 'OTHER'],
  Instrument: ['TARIFF', 'SANCTION', 'EXPORT_CONTROL', 'HALT_NEGOTIATIONS', 'OTHER'],
  MeasureAction: ['IMPOSE', 'EASE'],
  DemandType: ['POLICY_CHANGE', 'ECONOMIC_COOPERATION', 'EASE_MEASURES', 'MEETING'],
  RefusalOf: ['TO_ACCEPT', 'TO_DISCUSS'],
  ConcessionType: ['ACCEDE_TO_DEMAND', 'EASE_MEASURE'],
  AgreementForm: ['JOINT_STATEMENT', 'SIGNED_DEAL'],
  AccusationForm: ['ACCUSE', 'CRITICIZE', 'COMPLAIN', 'LEGAL_ACTION'],
  Tone: ['NEUTRAL', 'OPTIMISTIC', 'PESSIMISTIC'],
  TalksFormat: ['NEGOTIATION', 'CONSULTATION', 'PHONE', 'THIRD_LOCATION'],
};

const terms = { name: 'terms', label: 'Terms', type: 'long', required: true };
const claim = { name: 'claim', label: 'Claim', type: 'long', required: true };

/**
 * Each kind's own fields, as its input type in the schema has them (the end-to-end test checks
 * this table against the schema). Types: text, long (several lines), lines (a list, one item per
 * line), choice (an enum), time (a valid time), number, integer, party, parties, event (one earlier
 * event of the timeline), events (several).
 */
export const ACT_FIELDS = {
  OFFER: [terms,
    { name: 'conditions', label: 'Conditions (one per line)', type: 'lines' },
    { name: 'reaffirms', label: 'Restates the earlier offer', type: 'event', kinds: ['OFFER'] }],
  DEMAND: [terms,
    { name: 'demandType', label: 'Demand type', type: 'choice', of: 'DemandType' },
    { name: 'deadline', label: 'Deadline', type: 'time' },
    { name: 'reaffirms', label: 'Restates the earlier demand', type: 'event', kinds: ['DEMAND'] }],
  THREAT: [terms,
    { name: 'instrument', label: 'Instrument', type: 'choice', of: 'Instrument' },
    { name: 'condition', label: 'Unless', type: 'text' },
    { name: 'deadline', label: 'Deadline', type: 'time' }],
  REFUSAL: [terms,
    { name: 'of', label: 'Refuses', type: 'choice', of: 'RefusalOf' },
    { name: 'refuses', label: 'In answer to', type: 'events', kinds: ['OFFER', 'DEMAND', 'THREAT', 'MEASURE'] }],
  CONCESSION: [terms,
    { name: 'concessionType', label: 'Concession', type: 'choice', of: 'ConcessionType' },
    { name: 'answers', label: 'Answers the demands', type: 'events', kinds: ['DEMAND'] }],
  AGREEMENT: [terms, { name: 'form', label: 'Form', type: 'choice', of: 'AgreementForm' }],
  MEASURE: [terms,
    { name: 'instrument', label: 'Instrument', type: 'choice', of: 'Instrument' },
    { name: 'action', label: 'Action', type: 'choice', of: 'MeasureAction' },
    { name: 'announced', label: 'Announced', type: 'time', required: true },
    { name: 'effective', label: 'Effective', type: 'time' },
    { name: 'ratePercent', label: 'Rate (%)', type: 'number' }],
  STATEMENT: [claim, { name: 'tone', label: 'Tone', type: 'choice', of: 'Tone' }],
  ACCUSATION: [claim, { name: 'form', label: 'Form', type: 'choice', of: 'AccusationForm' }],
  SEMINAR: [
    { name: 'host', label: 'Host', type: 'party', required: true },
    { name: 'days', label: 'Days', type: 'integer', required: true },
    { name: 'participants', label: 'Participants (one per line)', type: 'lines' },
    { name: 'topic', label: 'Topic', type: 'text' }],
  VISIT: [
    { name: 'visitor', label: 'Visitor', type: 'party', required: true },
    { name: 'host', label: 'Host', type: 'party', required: true },
    { name: 'place', label: 'Place', type: 'text', required: true },
    { name: 'purpose', label: 'Purpose', type: 'text', required: true }],
  TALKS: [
    { name: 'participants', label: 'Participants', type: 'parties', required: true },
    { name: 'place', label: 'Place', type: 'text', required: true },
    { name: 'format', label: 'Format', type: 'choice', of: 'TalksFormat' },
    { name: 'rounds', label: 'Rounds', type: 'integer' }],
};

export const KINDS = Object.keys(ACT_FIELDS);

/** What each registration asks, as its input type has it. */
export const REGISTRATIONS = {
  timeline: { title: 'Open a timeline', fields: [
    { name: 'slug', label: 'Slug (lower-case words joined by -)', type: 'text', required: true },
    { name: 'title', label: 'Title', type: 'text', required: true },
    { name: 'description', label: 'Description', type: 'long' }] },
  party: { title: 'Register a party', fields: [
    { name: 'code', label: 'Code (ISO 3166 alpha-3 or a short upper-case code)', type: 'text', required: true },
    { name: 'name', label: 'Name', type: 'text', required: true },
    { name: 'kind', label: 'Kind', type: 'choice', of: 'PartyKind' }] },
  actor: { title: 'Register an actor', fields: [
    { name: 'party', label: 'Party', type: 'party', required: true },
    { name: 'slug', label: 'Slug (lower-case words joined by -)', type: 'text', required: true },
    { name: 'name', label: 'Name', type: 'text', required: true },
    { name: 'role', label: 'Role', type: 'text', required: true },
    { name: 'from', label: 'In the role from', type: 'time' },
    { name: 'to', label: 'In the role until', type: 'time' }] },
  issue: { title: 'Register an issue', fields: [
    { name: 'slug', label: 'Slug (lower-case words joined by -)', type: 'text', required: true },
    { name: 'title', label: 'Title', type: 'text', required: true },
    { name: 'description', label: 'Description', type: 'long' }] },
};

const TIME_HELP = 'As precisely as known: 2018, 2018-05, 2018-05-03 or 2018-05-03T14:30:00Z.';

/** A new event id: a UUID v7 (time-ordered), made once per thing to record and kept for its retries. */
export function uuidV7() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const ms = Date.now();
  for (let i = 0; i < 6; i += 1) bytes[i] = Math.floor(ms / 2 ** (8 * (5 - i))) % 256;
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An empty act input of a kind: every field at its default. */
function emptyAct(kind) {
  const act = {};
  for (const f of ACT_FIELDS[kind]) act[f.name] = f.type === 'choice' ? ENUMS[f.of][0] : f.type === 'lines' || f.type === 'events' || f.type === 'parties' ? [] : null;
  return act;
}

function emptyEvent(kind) {
  return {
    kind,
    occurred: { start: '', end: null, modality: 'OCCURRED' },
    actors: [{ party: '', actor: null }],
    targets: [],
    issues: [],
    amounts: [],
    location: null,
    summary: '',
    sources: [{ publication: '', title: null, url: null, published: null, attribution: 'NAMED', quote: null }],
    confidence: null,
    act: emptyAct(kind),
  };
}

/** An event as the form edits it: the shape of `EventInput`, with the kind beside it. */
export function eventToInput(e) {
  const c = e.content;
  const act = {};
  for (const f of ACT_FIELDS[e.kind]) {
    const v = c.payload[f.name];
    act[f.name] = v === undefined ? null : v;
  }
  const who = (p) => ({ party: p.party.code, actor: p.actor?.slug || null });
  return {
    kind: e.kind,
    occurred: { start: c.occurred.start, end: c.occurred.end || null, modality: c.occurred.modality },
    actors: c.actors.map(who),
    targets: c.targets.map(who),
    issues: c.issues.map((i) => i.slug),
    amounts: c.amounts.map((a) => ({ value: a.value, unit: a.unit, measures: a.measures })),
    location: c.location || null,
    summary: c.summary,
    sources: c.sources.map((s) => ({
      publication: s.publication, title: s.title || null, url: s.url || null, published: s.published || null,
      attribution: s.attribution, quote: s.quote || null,
    })),
    confidence: c.confidence ?? null,
    act,
  };
}

/** The `EventInput` (or `ChangesInput` parts) of a form's value: the kind becomes the act's key. */
function toApi(input) {
  const { kind, act, ...rest } = input;
  return { ...rest, act: { [kind.toLowerCase()]: act } };
}

/** The parts of `after` that differ from `before`, as a `ChangesInput`. */
export function changesBetween(before, after) {
  const a = toApi(before);
  const b = toApi(after);
  const changes = {};
  for (const key of Object.keys(b)) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) changes[key] = b[key];
  }
  return changes;
}

/* ------------------------------------------------------------------------------ sending */

const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];

/** A failure that the same request may get past: the network, or a server that cannot answer now. */
function transient(err) {
  if (err.name === 'AbortError') return false;
  if (!(err instanceof ApiError)) return true;
  return err.code === 'UNAVAILABLE' || (!err.errors && err.status >= 502);
}

/**
 * Sends a mutation and retries it, unchanged (the same ids), after a transient failure; answers its
 * data or throws the last error. `onRetry(attempt, delayMs, err)` is told before each wait.
 */
export async function sendWithRetry(query, variables, onRetry) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await gql(query, variables);
    } catch (err) {
      if (!transient(err) || attempt >= RETRY_DELAYS_MS.length) throw err;
      onRetry(attempt + 1, RETRY_DELAYS_MS[attempt], err);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** The form's own name for a field the server names (`event.amounts[0].unit` -> `amounts[0].unit`). */
function formField(path) {
  return String(path || '').replace(/^(event|input\.changes|input|changes)\./, '').replace(/^(event|input)$/, '');
}

/* --------------------------------------------------------------------------- form controls */

let serial = 0;
const nextId = (stem) => `${stem}-${(serial += 1)}`;

/** A labelled control with a place for its error; `field` is its path in the input (`amounts[0].unit`). */
function control(spec, field, value, ctx) {
  const id = nextId('wb');
  const errId = `${id}-error`;
  const helpId = spec.type === 'time' ? `${id}-help` : null;
  const describedBy = [helpId, errId].filter(Boolean).join(' ');
  const common = { id, 'data-field': field, 'aria-describedby': describedBy, 'aria-required': spec.required ? 'true' : null };
  let input;
  switch (spec.type) {
    case 'long':
      input = h('textarea', { ...common, rows: 3 }, value ?? '');
      break;
    case 'lines':
      input = h('textarea', { ...common, rows: 3 }, (value || []).join('\n'));
      break;
    case 'choice':
      input = h('select', common, ENUMS[spec.of].map((v) => h('option', { value: v, selected: v === value ? 'selected' : null }, capitalize(words(v)))));
      break;
    case 'actor': {
      const actors = spec.party ? ctx.actors(spec.party) : [];
      input = h('select', common,
        h('option', { value: '' }, actors.length ? '— the party itself —' : '— no actor —'),
        actors.map((a) => h('option', { value: a.slug, selected: a.slug === value ? 'selected' : null }, `${a.name}, ${a.role}`)));
      break;
    }
    case 'party':
      input = h('select', common,
        h('option', { value: '' }, '— pick a party —'),
        ctx.parties().map((p) => h('option', { value: p.code, selected: p.code === value ? 'selected' : null }, `${p.code} · ${p.name}`)));
      break;
    case 'parties': {
      const chosen = new Set(value || []);
      return h('fieldset', { class: 'wb-field wb-choices', 'data-field': field, 'aria-describedby': errId },
        h('legend', null, spec.label),
        h('div', { class: 'wb-chips' }, ctx.parties().map((p) => {
          const boxId = nextId('wb');
          return h('label', { class: 'chip', for: boxId },
            h('input', { type: 'checkbox', id: boxId, value: p.code, checked: chosen.has(p.code) ? 'checked' : null }),
            h('span', null, `${p.code} · ${p.name}`));
        })),
        h('p', { class: 'wb-error', id: errId, hidden: true }));
    }
    case 'event':
    case 'events': {
      const chosen = new Set(Array.isArray(value) ? value : value ? [value] : []);
      const options = ctx.events(spec.kinds).map((e) => h('option', { value: e.id, selected: chosen.has(e.id) ? 'selected' : null },
        `${capitalize(words(e.kind))}, ${formatOccurred(e.content.occurred)}: ${e.content.summary.slice(0, 80)}`));
      input = spec.type === 'event'
        ? h('select', common, h('option', { value: '' }, '— none —'), options)
        : h('select', { ...common, multiple: true, size: Math.min(5, Math.max(2, options.length)) }, options);
      break;
    }
    case 'number':
    case 'integer':
      input = h('input', { ...common, type: 'number', step: spec.type === 'integer' ? '1' : 'any', min: spec.min ?? '0', max: spec.max ?? null, value: value ?? '' });
      break;
    default:
      input = h('input', {
        ...common, type: spec.type === 'url' ? 'url' : 'text', value: value ?? '',
        placeholder: spec.type === 'time' ? 'e.g. 2018-05-03' : null, autocomplete: 'off', spellcheck: spec.type === 'time' || spec.type === 'url' ? 'false' : null,
      });
  }
  input.dataset.type = spec.type;
  return h('div', { class: `wb-field wb-${spec.type}` },
    h('label', { for: id }, spec.label, spec.required ? h('span', { class: 'wb-req', 'aria-hidden': 'true' }, ' *') : null),
    input,
    helpId ? h('p', { class: 'wb-help', id: helpId }, TIME_HELP) : null,
    h('p', { class: 'wb-error', id: errId, hidden: true }));
}

/** A control's value, typed as the API wants it; `problems` collects what the page can tell before sending. */
function valueOf(el, problems) {
  const type = el.dataset.type;
  if (el.tagName === 'FIELDSET') return [...el.querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
  if (type === 'events') return [...el.selectedOptions].map((o) => o.value);
  const raw = el.value.trim();
  switch (type) {
    case 'lines': return raw.split('\n').map((x) => x.trim()).filter(Boolean);
    case 'number':
    case 'integer': {
      if (raw === '' && !el.validity.badInput) return null;
      const n = Number(raw);
      if (el.validity.badInput || !Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
        problems.push([el.dataset.field, type === 'integer' ? 'must be a whole number' : 'must be a number']);
        return null;
      }
      return n;
    }
    case 'time':
      // The server refuses a malformed valid time before it knows which field it was in; the page says where.
      if (raw && !isValidTime(raw)) problems.push([el.dataset.field, `"${raw}" is not a valid time. ${TIME_HELP}`]);
      return raw || null;
    case 'event':
    case 'party':
    case 'actor':
      return raw || null;
    default:
      return raw;
  }
}

/** Whether text reads as a valid time the server takes: a real year, month, day, or an RFC 3339 instant. */
function isValidTime(text) {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?)?)?$/.exec(text);
  if (!m) return false;
  const month = m[2] ? Number(m[2]) : 1;
  if (month < 1 || month > 12) return false;
  if (m[3]) {
    const day = Number(m[3]);
    const last = new Date(Date.UTC(Number(m[1]), month, 0)).getUTCDate();
    if (day < 1 || day > last) return false;
  }
  return !m[4] || (parseValidTime(text) !== null && !Number.isNaN(Date.parse(text)));
}

/* ------------------------------------------------------------------------------- dialogs */

/** A modal dialog with a title, a form, a place for what the form says, and its buttons. */
function dialogShell(id, title, submitLabel) {
  const titleId = `${id}-title`;
  const status = h('div', { class: 'wb-status', role: 'status', 'aria-live': 'polite' });
  const alert = h('div', { class: 'wb-alert', role: 'alert', hidden: true });
  const body = h('div', { class: 'wb-body' });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const cancel = h('button', { type: 'button', class: 'wb-cancel' }, 'Cancel');
  const form = h('form', { class: 'wb-form', novalidate: true }, body, alert, status, h('div', { class: 'wb-actions' }, submit, cancel));
  const heading = h('h2', { id: titleId }, title);
  const dialog = h('dialog', { id, class: 'wb-dialog', 'aria-labelledby': titleId }, heading, form);
  cancel.addEventListener('click', () => dialog.close());
  document.body.append(dialog);
  return { dialog, form, body, alert, status, submit, heading };
}

function clearErrors(shell) {
  for (const p of shell.form.querySelectorAll('.wb-error')) { p.hidden = true; p.textContent = ''; }
  for (const el of shell.form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  shell.alert.hidden = true;
  delete shell.alert.dataset.conflict;
  fill(shell.alert);
}

/**
 * Marks every problem at its field: the nearest control or list whose path the server's path
 * starts with (`amounts[0].unit`, else `amounts[0]`, else `amounts`). Answers the problems no field
 * holds, for the form's alert. The first marked control gets the focus.
 */
function markProblems(shell, problems) {
  const unplaced = [];
  let first = null;
  for (const [path, message] of problems) {
    let field = formField(path);
    let target = null;
    while (field && !target) {
      target = shell.form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (!target) field = field.includes('.') || field.includes('[') ? field.replace(/(\.[^.[\]]*|\[\d+\])$/, '') : '';
    }
    if (!target) {
      unplaced.push(path ? `${path}: ${message}` : message);
      continue;
    }
    const errorEl = target.tagName === 'FIELDSET' || target.dataset.list
      ? target.querySelector(':scope > .wb-error')
      : target.parentElement.querySelector(':scope > .wb-error');
    if (errorEl) {
      errorEl.textContent = errorEl.textContent ? `${errorEl.textContent} ${message}` : message;
      errorEl.hidden = false;
    }
    target.setAttribute('aria-invalid', 'true');
    first ||= target.matches('input, select, textarea') ? target : target.querySelector('input, select, textarea, button');
  }
  first?.focus();
  return unplaced;
}

function showAlert(shell, ...content) {
  fill(shell.alert, content);
  shell.alert.hidden = false;
}

/** A dialog's buttons are off while a request is out, so a second click cannot send a second one. */
function busy(shell, on) {
  shell.submit.disabled = on;
  shell.form.setAttribute('aria-busy', on ? 'true' : 'false');
}

function retryNote(shell) {
  return (attempt, delay, err) => {
    shell.status.textContent = `The connection failed (${err.message}); trying again in ${Math.round(delay / 1000)} s, with the same id (attempt ${attempt + 1} of ${RETRY_DELAYS_MS.length + 1}).`;
    shell.status.dataset.state = 'retrying';
  };
}

/** What a refused request says: at its fields, a conflict with its remedy, or in the alert. */
function explain(shell, err, { onConflict } = {}) {
  shell.status.textContent = '';
  delete shell.status.dataset.state;
  if (!(err instanceof ApiError)) {
    showAlert(shell, h('p', null, `Not sent: the server cannot be reached (${err.message}). What you typed is kept; sending again uses the same id, so it is recorded once.`));
    return;
  }
  const ext = err.errors?.[0]?.extensions || {};
  if (err.code === 'CONFLICT' && ext.field === 'expectedVersion' && onConflict) {
    onConflict(err);
    return;
  }
  if (err.code === 'VALIDATION' || err.code === 'NOT_FOUND' || err.code === 'CONFLICT') {
    const problems = ext.problems?.length
      ? ext.problems.map((p) => [p.field, p.message])
      : [[ext.field || '', ext.field && err.message.startsWith(`${ext.field}: `) ? err.message.slice(ext.field.length + 2) : err.message]];
    const unplaced = markProblems(shell, problems);
    if (unplaced.length) showAlert(shell, h('p', null, 'The server refused it:'), h('ul', null, unplaced.map((m) => h('li', null, m))));
    else showAlert(shell, h('p', null, `The server refused ${problems.length === 1 ? 'a field' : `${problems.length} fields`}; see the marked ${problems.length === 1 ? 'field' : 'fields'}. Nothing was recorded.`));
    return;
  }
  const hint = err.code === 'UNAUTHORIZED' ? ' Set an access token (Token, top right).'
    : err.code === 'FORBIDDEN' ? ' Your token may not do this: recording needs a recorder or admin token, registering an admin one.' : '';
  showAlert(shell, h('p', null, `${err.message} [${err.code}].${hint}`));
}

/**
 * The workbench. `ctx` gives it the page's state and hooks:
 * timeline() -> {slug, title} | null; version() -> the timeline's version as the page has it;
 * parties(), actors(party), issues(), events(kinds) -> lists; lookup(id) -> an event;
 * reloadRegistry() -> Promise; recorded(ids, message) after an append; switchTimeline(slug).
 */
export class Workbench {
  constructor(ctx) {
    this.ctx = ctx;
    this.record = dialogShell('record-dialog', 'Record an act', 'Record');
    this.record.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.submitRecord(); });
    this.record.dialog.addEventListener('close', () => { this.editing = null; });
    this.retract = dialogShell('retract-dialog', 'Retract an event', 'Retract');
    this.retract.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.submitRetract(); });
    this.register = dialogShell('register-dialog', 'Register', 'Register');
    this.register.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.submitRegister(); });
    this.editing = null; // {mode: 'record'|'correct', id, event?, base, expected, kind}
  }

  /* ------------------------------------------------------------------ record and correct */

  openRecord(kind = 'STATEMENT') {
    const t = this.ctx.timeline();
    if (!t) return;
    this.editing = { mode: 'record', id: uuidV7(), kind };
    this.record.heading.textContent = `Record an act in ${t.title}`;
    this.record.submit.textContent = 'Record';
    this.renderRecord(emptyEvent(kind));
    this.record.dialog.showModal();
    this.record.form.querySelector('[data-field="kind"]')?.focus();
  }

  openCorrect(event) {
    const base = eventToInput(event);
    this.editing = { mode: 'correct', id: uuidV7(), event, base, expected: this.ctx.version(), kind: event.kind };
    this.record.heading.textContent = `Correct: ${words(event.kind)}, ${formatOccurred(event.content.occurred)}`;
    this.record.submit.textContent = 'Record the correction';
    this.renderRecord(base);
    this.record.dialog.showModal();
    this.record.form.querySelector('[data-field="reason"]')?.focus();
  }

  /** Draws the form for `input` (an `EventInput` with its kind). */
  renderRecord(input, { reason = '' } = {}) {
    const { ctx } = this;
    const correcting = this.editing.mode === 'correct';
    const kindSelect = h('select', { id: 'wb-kind', 'data-field': 'kind', disabled: correcting ? true : null },
      KINDS.map((k) => h('option', { value: k, selected: k === input.kind ? 'selected' : null }, capitalize(words(k)))));
    kindSelect.addEventListener('change', () => {
      const current = this.readRecord([]);
      current.kind = kindSelect.value;
      current.act = { ...emptyAct(current.kind), ...pick(current.act, Object.keys(emptyAct(current.kind))) };
      this.editing.kind = current.kind;
      this.renderRecord(current, { reason: this.record.form.querySelector('[data-field="reason"]')?.value || '' });
      this.record.form.querySelector('[data-field="kind"]').focus();
    });
    const list = (name, legend, items, row, blank, addLabel) => h('fieldset', { class: 'wb-list', 'data-field': name, 'data-list': 'true' },
      h('legend', null, legend),
      h('p', { class: 'wb-error', hidden: true }),
      items.map((item, i) => h('div', { class: 'wb-row', 'data-row': String(i) },
        row(item, i),
        h('button', { type: 'button', class: 'wb-remove', 'aria-label': `Remove ${legend.toLowerCase()} ${i + 1}`, onclick: () => this.editList(name, (xs) => xs.splice(i, 1)) }, 'Remove'))),
      h('button', { type: 'button', class: 'wb-add', onclick: () => this.editList(name, (xs) => xs.push(blank())) }, addLabel));
    const participant = (name) => (p, i) => {
      const party = control({ label: 'Party', type: 'party', required: true }, `${name}[${i}].party`, p.party, ctx);
      // The actors offered are the chosen party's: a new party draws the row again.
      party.querySelector('select').addEventListener('change', () => this.editList(name, () => {}));
      return [party, control({ label: 'Actor', type: 'actor', party: p.party }, `${name}[${i}].actor`, p.actor, ctx)];
    };
    const occurred = input.occurred;
    const issues = ctx.issues();
    const chosenIssues = new Set(input.issues);
    const canRegister = (what, label) => h('button', { type: 'button', class: 'wb-register', onclick: () => this.openRegister(what) }, label);
    fill(this.record.body,
      h('div', { class: 'wb-grid' },
        h('div', { class: 'wb-field' }, h('label', { for: 'wb-kind' }, 'Kind'), kindSelect,
          correcting ? h('p', { class: 'wb-help' }, 'A correction keeps the kind; retract the event and record another to change it.') : null),
        correcting ? control({ label: 'Why this correction', type: 'long', required: true }, 'reason', reason, ctx) : null,
        control({ label: 'What happened (summary)', type: 'long', required: true }, 'summary', input.summary, ctx)),
      h('fieldset', { class: 'wb-group' }, h('legend', null, 'When'),
        h('div', { class: 'wb-grid' },
          control({ label: 'From', type: 'time', required: true }, 'occurred.start', occurred.start, ctx),
          control({ label: 'Until (for a span)', type: 'time' }, 'occurred.end', occurred.end, ctx),
          control({ label: 'Modality', type: 'choice', of: 'Modality' }, 'occurred.modality', occurred.modality, ctx))),
      list('actors', 'By', input.actors, participant('actors'), () => ({ party: '', actor: null }), 'Add an actor'),
      list('targets', 'Towards', input.targets, participant('targets'), () => ({ party: '', actor: null }), 'Add a target'),
      h('p', { class: 'wb-registers' }, 'Not in the lists? ', canRegister('party', 'Register a party'), ' ', canRegister('actor', 'Register an actor'), ' ', canRegister('issue', 'Register an issue'),
        h('span', { class: 'wb-help' }, ' (an admin token)')),
      h('fieldset', { class: 'wb-group wb-choices', 'data-field': 'issues' }, h('legend', null, 'Issues'),
        h('p', { class: 'wb-error', hidden: true }),
        issues.length
          ? h('div', { class: 'wb-chips' }, issues.map((i) => {
            const id = nextId('wb');
            return h('label', { class: 'chip', for: id }, h('input', { type: 'checkbox', id, value: i.slug, checked: chosenIssues.has(i.slug) ? 'checked' : null }), h('span', null, i.title));
          }))
          : h('p', { class: 'wb-help' }, 'No issues registered yet.')),
      h('fieldset', { class: 'wb-group wb-act', 'data-field': `act.${input.kind.toLowerCase()}`, 'data-list': 'true' },
        h('legend', null, `The ${words(input.kind)}`),
        h('p', { class: 'wb-error', hidden: true }),
        h('div', { class: 'wb-grid' }, ACT_FIELDS[input.kind].map((f) => control(f, `act.${input.kind.toLowerCase()}.${f.name}`, input.act[f.name], ctx)))),
      list('amounts', 'Amounts', input.amounts, (a, i) => [
        control({ label: 'Value', type: 'number' }, `amounts[${i}].value`, a.value, ctx),
        control({ label: 'Unit (USD, CNY, EUR… or PERCENT)', type: 'text' }, `amounts[${i}].unit`, a.unit, ctx),
        control({ label: 'What it measures', type: 'text' }, `amounts[${i}].measures`, a.measures, ctx),
      ], () => ({ value: null, unit: 'USD', measures: '' }), 'Add an amount'),
      list('sources', 'Sources', input.sources, (src, i) => [
        control({ label: 'Publication', type: 'text', required: true }, `sources[${i}].publication`, src.publication, ctx),
        control({ label: 'Title', type: 'text' }, `sources[${i}].title`, src.title, ctx),
        control({ label: 'Address (URL)', type: 'url' }, `sources[${i}].url`, src.url, ctx),
        control({ label: 'Published', type: 'time' }, `sources[${i}].published`, src.published, ctx),
        control({ label: 'Attribution', type: 'choice', of: 'Attribution' }, `sources[${i}].attribution`, src.attribution, ctx),
        control({ label: 'Quote (at most 500 characters)', type: 'long' }, `sources[${i}].quote`, src.quote, ctx),
      ], () => ({ publication: '', title: null, url: null, published: null, attribution: 'NAMED', quote: null }), 'Add a source'),
      h('div', { class: 'wb-grid' },
        control({ label: 'Location', type: 'text' }, 'location', input.location, ctx),
        control({ label: 'Confidence (0 to 1)', type: 'number', max: '1' }, 'confidence', input.confidence, ctx)),
    );
    clearErrors(this.record);
    this.record.status.textContent = '';
  }

  /** Reads the form, changes one of its lists, and draws it again with the focus kept near. */
  editList(name, change) {
    const reason = this.record.form.querySelector('[data-field="reason"]')?.value || '';
    const input = this.readRecord([]);
    change(input[name]);
    const active = document.activeElement?.dataset?.field;
    this.renderRecord(input, { reason });
    const again = active && this.record.form.querySelector(`[data-field="${CSS.escape(active)}"]`);
    const list = this.record.form.querySelector(`[data-field="${name}"]`);
    (again || list.querySelector('.wb-row:last-of-type input, .wb-row:last-of-type select') || list.querySelector('.wb-add')).focus();
  }

  /** The form's value as an `EventInput` with its kind; `problems` gets what is wrong before sending. */
  readRecord(problems) {
    const form = this.record.form;
    const get = (field) => {
      const el = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      return el ? valueOf(el, problems) : null;
    };
    const kind = form.querySelector('[data-field="kind"]').value;
    const rows = (name) => [...form.querySelectorAll(`[data-field="${name}"] > .wb-row`)].map((_, i) => i);
    const who = (name) => rows(name).map((i) => ({ party: get(`${name}[${i}].party`) || '', actor: get(`${name}[${i}].actor`) }));
    const act = {};
    for (const f of ACT_FIELDS[kind]) act[f.name] = get(`act.${kind.toLowerCase()}.${f.name}`);
    const optional = (v) => (v === '' ? null : v);
    return {
      kind,
      occurred: { start: get('occurred.start') || '', end: get('occurred.end'), modality: get('occurred.modality') },
      actors: who('actors'),
      targets: who('targets'),
      issues: [...form.querySelectorAll('[data-field="issues"] input:checked')].map((b) => b.value),
      amounts: rows('amounts').map((i) => ({ value: get(`amounts[${i}].value`), unit: get(`amounts[${i}].unit`), measures: get(`amounts[${i}].measures`) })),
      location: optional(get('location')),
      summary: get('summary'),
      sources: rows('sources').map((i) => ({
        publication: get(`sources[${i}].publication`), title: optional(get(`sources[${i}].title`)), url: optional(get(`sources[${i}].url`)),
        published: get(`sources[${i}].published`), attribution: get(`sources[${i}].attribution`), quote: optional(get(`sources[${i}].quote`)),
      })),
      confidence: get('confidence'),
      act: Object.fromEntries(Object.entries(act).map(([k, v]) => [k, v === '' ? null : v])),
    };
  }

  async submitRecord() {
    const shell = this.record;
    const editing = this.editing;
    if (!editing) return;
    clearErrors(shell);
    const problems = [];
    const input = this.readRecord(problems);
    const reason = editing.mode === 'correct' ? shell.form.querySelector('[data-field="reason"]').value.trim() : null;
    if (problems.length) {
      const unplaced = markProblems(shell, problems);
      showAlert(shell, h('p', null, 'Some fields need another look before this can be sent.'), unplaced.length ? h('ul', null, unplaced.map((m) => h('li', null, m))) : null);
      return;
    }
    let query;
    let variables;
    if (editing.mode === 'record') {
      query = RECORD_EVENT;
      variables = { timeline: this.ctx.timeline().slug, event: { id: editing.id, ...toApi(input) } };
    } else {
      const changes = changesBetween(editing.base, input);
      if (!Object.keys(changes).length) {
        showAlert(shell, h('p', null, 'Nothing changed: edit a field to correct it.'));
        return;
      }
      query = CORRECT_EVENT;
      variables = { input: { id: editing.id, event: editing.event.id, reason, changes }, expectedVersion: { exact: editing.expected } };
    }
    busy(shell, true);
    shell.status.textContent = editing.mode === 'record' ? 'Recording…' : 'Recording the correction…';
    try {
      const data = await sendWithRetry(query, variables, retryNote(shell));
      const result = data.recordEvent || data.correctEvent;
      const ids = result.events.map((e) => e.id);
      const again = result.deduplicated ? ' (an earlier attempt had reached the server: it is recorded once)' : '';
      const message = editing.mode === 'record'
        ? `Recorded: ${words(input.kind)}, position ${result.events[0].position}${again}.`
        : `Correction recorded at position ${result.events[0].position}${again}.`;
      shell.status.textContent = message;
      shell.status.dataset.state = 'done';
      shell.dialog.close();
      this.ctx.recorded(editing.mode === 'record' ? ids : [editing.event.id], message);
    } catch (err) {
      explain(shell, err, { onConflict: (e) => this.conflict(shell, e, editing) });
    } finally {
      busy(shell, false);
    }
  }

  /**
   * The timeline moved since the form was opened: says so, lists what came in, and offers to
   * build on what is there now. What the analyst typed is kept.
   */
  async conflict(shell, err, editing) {
    const t = this.ctx.timeline();
    let now = null;
    try {
      now = (await gql(TIMELINE_VERSION, { slug: t.slug })).timeline?.version ?? null;
    } catch { /* the message below still says what happened */ }
    const since = this.ctx.eventsAfter(editing.expected);
    const reload = h('button', { type: 'button', class: 'wb-reload' }, 'Reload and review');
    reload.addEventListener('click', async () => {
      reload.disabled = true;
      const version = now ?? (await gql(TIMELINE_VERSION, { slug: t.slug })).timeline.version;
      await this.ctx.catchUp(version);
      editing.expected = version;
      if (editing.mode === 'correct' || editing.mode === 'retract') {
        const current = this.ctx.lookup(editing.event.id);
        if (current) {
          editing.event = current;
          if (editing.mode === 'correct') editing.base = eventToInput(current);
        }
      }
      fill(shell.alert, h('p', null, `Reloaded: this now builds on version ${version} of the timeline. What you typed is kept; check it against what changed, then send it again.`));
      shell.submit.focus();
    });
    showAlert(shell,
      h('p', null, `Not recorded: the timeline changed while you were writing (version ${editing.expected} when you opened this${now !== null ? `, ${now} now` : ''}).`),
      since.length ? h('ul', null, since.map((e) => h('li', null, `${capitalize(words(e.kind))}: ${e.content.summary || ''}`))) : null,
      reload);
    shell.alert.dataset.conflict = 'true';
    reload.focus();
  }

  /* ---------------------------------------------------------------------------- retract */

  openRetract(event) {
    const shell = this.retract;
    this.editing = { mode: 'retract', id: uuidV7(), event, expected: this.ctx.version() };
    shell.heading.textContent = `Retract: ${words(event.kind)}, ${formatOccurred(event.content.occurred)}`;
    fill(shell.body,
      h('p', null, event.content.summary),
      h('p', { class: 'wb-help' }, 'The projections will act as if it had never been recorded; the log keeps both, and the page shows it struck through.'),
      control({ label: 'Why it is retracted', type: 'long', required: true }, 'reason', '', this.ctx));
    clearErrors(shell);
    shell.status.textContent = '';
    shell.dialog.showModal();
    shell.form.querySelector('[data-field="reason"]').focus();
  }

  async submitRetract() {
    const shell = this.retract;
    const editing = this.editing;
    if (!editing || editing.mode !== 'retract') return;
    clearErrors(shell);
    const reason = shell.form.querySelector('[data-field="reason"]').value.trim();
    busy(shell, true);
    shell.status.textContent = 'Retracting…';
    try {
      const data = await sendWithRetry(RETRACT_EVENT, { input: { id: editing.id, event: editing.event.id, reason }, expectedVersion: { exact: editing.expected } }, retryNote(shell));
      const result = data.retractEvent;
      shell.dialog.close();
      this.ctx.recorded([editing.event.id], `Retracted at position ${result.events[0].position}.`);
    } catch (err) {
      explain(shell, err, { onConflict: (e) => this.conflict(shell, e, editing) });
    } finally {
      busy(shell, false);
    }
  }

  /* --------------------------------------------------------------------------- register */

  /** Opens the registration of a timeline, party, actor or issue (over the record form, if open). */
  openRegister(what) {
    const shell = this.register;
    const spec = REGISTRATIONS[what];
    this.registering = { what, id: uuidV7() };
    shell.heading.textContent = spec.title;
    const t = this.ctx.timeline();
    fill(shell.body,
      what !== 'timeline' && t ? h('p', { class: 'wb-help' }, `Recorded in the log of ${t.title}; ${what === 'issue' ? 'issues' : 'parties and actors'} are shared by every timeline.`) : null,
      h('div', { class: 'wb-grid' }, spec.fields.map((f) => control(f, f.name, f.type === 'choice' ? ENUMS[f.of][0] : null, this.ctx))));
    clearErrors(shell);
    shell.status.textContent = '';
    shell.dialog.showModal();
    shell.body.querySelector('input, select, textarea')?.focus();
  }

  async submitRegister() {
    const shell = this.register;
    const { what, id } = this.registering || {};
    if (!what) return;
    clearErrors(shell);
    const problems = [];
    const input = { id };
    for (const f of REGISTRATIONS[what].fields) {
      const v = valueOf(shell.form.querySelector(`[data-field="${f.name}"]`), problems);
      if (v !== null && v !== '') input[f.name] = v;
      else if (f.required) input[f.name] = '';
    }
    if (what !== 'timeline') input.timeline = this.ctx.timeline()?.slug || '';
    if (problems.length) {
      markProblems(shell, problems);
      return;
    }
    busy(shell, true);
    shell.status.textContent = 'Registering…';
    try {
      const data = await sendWithRetry(REGISTER[what], { input }, retryNote(shell));
      const result = Object.values(data)[0];
      shell.dialog.close();
      await this.ctx.reloadRegistry();
      const name = input.code || input.slug;
      if (what === 'timeline') this.ctx.switchTimeline(input.slug);
      this.refreshOpenRecord();
      this.ctx.recorded([], `Registered ${what} ${name} at position ${result.events[0].position}.`);
    } catch (err) {
      explain(shell, err);
    } finally {
      busy(shell, false);
    }
  }

  /** Draws the record form again (after a registration) with what it holds, so new entries are offered. */
  refreshOpenRecord() {
    if (!this.record.dialog.open || !this.editing) return;
    const reason = this.record.form.querySelector('[data-field="reason"]')?.value || '';
    this.renderRecord(this.readRecord([]), { reason });
  }
}

function pick(object, keys) {
  return Object.fromEntries(keys.filter((k) => k in object).map((k) => [k, object[k]]));
}

/* ---------------------------------------------------------------------- what a correction changed */

const FIELD_NAMES = {
  occurred: 'When', actors: 'By', targets: 'Towards', issues: 'Issues', amounts: 'Amounts', location: 'Location',
  summary: 'Summary', sources: 'Sources', confidence: 'Confidence', payload: 'Terms and details', act: 'Terms and details',
};

/** One field of an event's content as a line of text, for a before-and-after table. */
function describeField(content, field) {
  const who = (list) => list.map((p) => (p.actor ? `${p.party.code} (${p.actor.name})` : p.party.code)).join(', ') || '—';
  switch (field) {
    case 'occurred': return formatOccurred(content.occurred);
    case 'actors': return who(content.actors);
    case 'targets': return who(content.targets);
    case 'issues': return content.issues.map((i) => i.title || i.slug).join(', ') || '—';
    case 'amounts': return content.amounts.map((a) => `${formatAmount(a)} ${a.unit === 'PERCENT' ? '' : a.unit} ${a.measures}`.replace(/\s+/g, ' ').trim()).join('; ') || '—';
    case 'sources': return content.sources.map((s) => [s.publication, s.title, s.published ? formatValidTime(s.published) : null].filter(Boolean).join(', ')).join('; ') || '—';
    case 'confidence': return content.confidence === null || content.confidence === undefined ? '—' : String(content.confidence);
    case 'payload':
    case 'act':
      return Object.entries(content.payload).filter(([k, v]) => k !== '__typename' && v !== null && !(Array.isArray(v) && !v.length))
        .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join('; ');
    default: {
      const v = content[field];
      return v === null || v === undefined || v === '' ? '—' : String(v);
    }
  }
}

const changesCache = new Map(); // correction id -> Promise of rows

/**
 * What a correction changed: each field it gives, as the log held the event just before it and
 * just after it. Answers [{field, before, after}].
 */
export function correctionChanges(correction) {
  if (!changesCache.has(correction.id)) {
    const id = correction.content.payload.corrects;
    const rows = Promise.all([
      gql(EVENT_KNOWN_AT, { id, knownAt: correction.position - 1 }),
      gql(EVENT_KNOWN_AT, { id, knownAt: correction.position }),
    ]).then(([before, after]) => correction.content.payload.changedFields.map((field) => ({
      field: FIELD_NAMES[field] || field,
      before: before.event ? describeField(before.event.content, field) : '—',
      after: after.event ? describeField(after.event.content, field) : '—',
    })));
    rows.catch(() => changesCache.delete(correction.id));
    changesCache.set(correction.id, rows);
  }
  return changesCache.get(correction.id);
}
