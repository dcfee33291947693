// The analyst's workbench end to end (issue 17): registering, recording one act of every kind,
// correcting and retracting from the timeline page, with a second browser context following live;
// a refused field, a version conflict and a dropped connection; the keyboard; axe-core on the forms.
// `tests/ui/e2e.mjs` runs these checks with its harness (`t`).

/** The schema's input type of each kind's act. */
const INPUT_TYPE = {
  OFFER: 'OfferInput', DEMAND: 'DemandInput', THREAT: 'ThreatInput', REFUSAL: 'RefusalInput', CONCESSION: 'ConcessionInput',
  AGREEMENT: 'AgreementInput', MEASURE: 'MeasureInput', STATEMENT: 'StatementInput', ACCUSATION: 'AccusationInput',
  SEMINAR: 'SeminarInput', VISIT: 'VisitInput', TALKS: 'TalksInput',
};
const REGISTRATION_TYPE = { timeline: 'RegisterTimelineInput', party: 'RegisterPartyInput', actor: 'RegisterActorInput', issue: 'RegisterIssueInput' };
/** Act fields typed one item per line, and numeric ones: what the API stores for what was typed. */
const LINES = new Set(['conditions', 'participants']);
const NUMBERS = new Set(['days', 'rounds', 'ratePercent']);

/**
 * Each kind's case: who acts, the kind's own fields as typed (`[data-field, value]`; an array picks
 * several options or boxes), and anything else the form gets. `ids` holds the events recorded so
 * far, by kind, for the fields that refer to one.
 */
const CASES = [
  ['OFFER', 'CHN', (ids) => [['act.offer.terms', 'Buy more American farm and energy goods'], ['act.offer.conditions', 'The tariffs are held off\nTalks go on']]],
  ['DEMAND', 'USA', () => [['act.demand.terms', 'Cut the trade deficit by a large sum'], ['act.demand.demandType', 'POLICY_CHANGE'], ['act.demand.deadline', '2018-07']]],
  ['THREAT', 'USA', () => [['act.threat.terms', 'Tariffs on a further list of goods'], ['act.threat.instrument', 'TARIFF'], ['act.threat.condition', 'unless the deficit falls'], ['act.threat.deadline', '2018-07-06']]],
  ['REFUSAL', 'CHN', (ids) => [['act.refusal.terms', 'No talks under the threat of tariffs'], ['act.refusal.of', 'TO_DISCUSS'], ['act.refusal.refuses', [ids.DEMAND]]]],
  ['CONCESSION', 'CHN', (ids) => [['act.concession.terms', 'Lower import duties on cars'], ['act.concession.concessionType', 'ACCEDE_TO_DEMAND'], ['act.concession.answers', [ids.DEMAND]]]],
  ['AGREEMENT', 'USA', () => [['act.agreement.terms', 'A joint statement on trade'], ['act.agreement.form', 'JOINT_STATEMENT']]],
  ['MEASURE', 'USA', () => [['act.measure.terms', 'Tariffs of 25% on a list of goods'], ['act.measure.instrument', 'TARIFF'], ['act.measure.action', 'IMPOSE'],
    ['act.measure.announced', '2018-06-15'], ['act.measure.effective', '2018-07-06'], ['act.measure.ratePercent', '25']]],
  ['STATEMENT', 'JPN', () => [['act.statement.claim', 'The talks between the two were watched closely'], ['act.statement.tone', 'NEUTRAL']]],
  ['ACCUSATION', 'USA', () => [['act.accusation.claim', 'Technology is transferred under pressure'], ['act.accusation.form', 'ACCUSE']]],
  ['SEMINAR', 'CHN', () => [['act.seminar.host', 'CHN'], ['act.seminar.days', '2'], ['act.seminar.participants', 'Trade officials\nEconomists'], ['act.seminar.topic', 'Market access']]],
  ['VISIT', 'USA', () => [['act.visit.visitor', 'USA'], ['act.visit.host', 'CHN'], ['act.visit.place', 'Beijing'], ['act.visit.purpose', 'Trade talks']]],
  ['TALKS', 'USA', () => [['act.talks.participants', ['USA', 'CHN']], ['act.talks.place', 'Washington'], ['act.talks.format', 'NEGOTIATION'], ['act.talks.rounds', '2']]],
];

export async function workbenchChecks(t) {
  const { browser, base, check, expect, waitUntil, watch, shot, TIMEOUT, TIMELINE } = t;

  /** GraphQL from the test itself, as another client. */
  async function api(query, variables = {}, token = t.adminToken) {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors) throw new t.CheckFailed(`GraphQL failed: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
  const head = async () => (await api('{ head { position } }')).head.position;
  // The page's own fragment of everything an event shows (`...Ev`), read once the page is open.
  let eventFields = '';
  const storedEvent = async (id) => (await api(`query E($id: ID!) { event(id: $id) { ...Ev } } ${eventFields}`, { id })).event;

  // The analyst: an admin token, kept by the page as the token panel keeps it.
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 }, reducedMotion: 'reduce' });
  await desk.addInitScript((token) => localStorage.setItem('chancery-token', token), t.adminToken);
  const analyst = await desk.newPage();
  analyst.setDefaultTimeout(TIMEOUT);
  watch(analyst);
  t.setCurrentPage(analyst);
  // The reader: no token (reads are open), following the same timeline live.
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, reducedMotion: 'reduce' });
  const reader = await readerContext.newPage();
  reader.setDefaultTimeout(TIMEOUT);
  watch(reader);

  const form = (field) => analyst.locator(`#record-dialog [data-field="${field}"]`);
  const regForm = (field) => analyst.locator(`#register-dialog [data-field="${field}"]`);

  /** Types `value` into a control of `root` whatever it is: a text field, a select (one or several), boxes. */
  async function put(locator, value) {
    const tag = await locator.evaluate((el) => el.tagName);
    if (tag === 'SELECT') await locator.selectOption(value);
    else if (tag === 'FIELDSET') {
      for (const code of value) await locator.locator(`input[value="${code}"]`).check();
    } else await locator.fill(value);
  }

  async function openRecordForm(kind) {
    await analyst.locator('#record-open').click();
    await analyst.locator('#record-dialog[open]').waitFor();
    await form('kind').selectOption(kind);
  }

  /** Fills the common fields of an act by `party` on `day`, with a source. */
  async function fillCommon({ summary, day, party, actor }) {
    await form('summary').fill(summary);
    await form('occurred.start').fill(day);
    await form('actors[0].party').selectOption(party);
    if (actor) await form('actors[0].actor').selectOption(actor);
    await form('sources[0].publication').fill('Workbench test desk');
    await form('sources[0].url').fill('https://example.org/chancery-workbench');
    await form('sources[0].attribution').selectOption('OFFICIAL');
    await form('sources[0].quote').fill('typed into the form by tests/ui/workbench.mjs');
  }

  const openEvent = () => analyst.evaluate(() => new URLSearchParams(location.search).get('event'));

  /** Submits the record form and answers the id of what it recorded (the page opens it). */
  async function submitRecord() {
    const before = await openEvent();
    await analyst.locator('#record-dialog button[type=submit]').click();
    return recordedAfter(before);
  }

  /** Waits for the form to close and the page to open what it recorded, other than `before`. */
  async function recordedAfter(before) {
    await analyst.locator('#record-dialog:not([open])').waitFor({ state: 'attached' })
      .catch(async () => { throw new t.CheckFailed(`the form did not close: ${await analyst.locator('#record-dialog').innerText()}`); });
    await waitUntil(analyst, (b) => {
      const id = new URLSearchParams(location.search).get('event');
      return id && id !== b;
    }, before, 'the recorded event was not opened');
    return openEvent();
  }

  await check('the workbench\'s forms have every field of the schema\'s inputs', async () => {
    await analyst.goto(`${base}/?timeline=${TIMELINE}`);
    await analyst.locator('#timeline[data-loaded="true"]').waitFor();
    eventFields = await analyst.evaluate(async () => (await import('/ui/gql.js')).EVENT_FIELDS);
    const spec = await analyst.evaluate(async () => {
      const m = await import('/ui/workbench.js');
      const names = (fields) => fields.map((f) => f.name).sort();
      return {
        acts: Object.fromEntries(Object.entries(m.ACT_FIELDS).map(([k, v]) => [k, names(v)])),
        registrations: Object.fromEntries(Object.entries(m.REGISTRATIONS).map(([k, v]) => [k, names(v.fields)])),
        enums: m.ENUMS,
      };
    });
    const fieldsOf = async (type) => {
      const data = await api('query T($n: String!) { __type(name: $n) { inputFields { name } } }', { n: type });
      return data.__type.inputFields.map((f) => f.name).sort();
    };
    for (const [kind, type] of Object.entries(INPUT_TYPE)) {
      const schema = await fieldsOf(type);
      expect(JSON.stringify(schema) === JSON.stringify(spec.acts[kind]), `the ${kind} form has ${spec.acts[kind]}, the schema's ${type} ${schema}`);
    }
    for (const [what, type] of Object.entries(REGISTRATION_TYPE)) {
      // The id is made by the page, the timeline is the page's own.
      const schema = (await fieldsOf(type)).filter((n) => n !== 'id' && n !== 'timeline');
      expect(JSON.stringify(schema) === JSON.stringify(spec.registrations[what]), `the ${what} registration has ${spec.registrations[what]}, the schema's ${type} ${schema}`);
    }
    for (const [name, values] of Object.entries(spec.enums)) {
      const data = await api('query E($n: String!) { __type(name: $n) { enumValues { name } } }', { n: name });
      const schema = data.__type.enumValues.map((v) => v.name).sort();
      expect(JSON.stringify(schema) === JSON.stringify([...values].sort()), `the page's ${name} is ${values}, the schema's ${schema}`);
    }
  });

  await check('the record form opens and closes by keyboard, focus inside', async () => {
    await analyst.locator('#record-open').focus();
    await analyst.keyboard.press('Enter');
    await analyst.locator('#record-dialog[open]').waitFor();
    await waitUntil(analyst, () => document.activeElement?.dataset.field === 'kind', null, 'the kind is not focused when the form opens');
    // Every control is labelled.
    const unlabelled = await analyst.evaluate(() => [...document.querySelectorAll('#record-dialog input, #record-dialog select, #record-dialog textarea')]
      .filter((el) => !el.labels?.length && !el.closest('label') && !el.getAttribute('aria-label')).map((el) => el.dataset.field || el.outerHTML.slice(0, 80)));
    expect(!unlabelled.length, `controls without a label: ${unlabelled.join(', ')}`);
    await analyst.keyboard.press('Escape');
    await analyst.locator('#record-dialog:not([open])').waitFor({ state: 'attached' });
    await waitUntil(analyst, () => document.activeElement?.id === 'record-open', null, 'the focus did not come back to the Record button');
  });

  await check('an admin registers a party, an actor and an issue from the record form', async () => {
    await openRecordForm('STATEMENT');
    const register = async (what, fields) => {
      await analyst.locator(`#record-dialog button.wb-register`, { hasText: `Register a${what === 'issue' || what === 'actor' ? 'n' : ''} ${what}` }).click();
      await analyst.locator('#register-dialog[open]').waitFor();
      for (const [field, value] of fields) await put(regForm(field), value);
      // Enter in a text field sends the form.
      await regForm(fields[fields.length - 1][0]).press('Enter');
      await analyst.locator('#register-dialog:not([open])').waitFor({ state: 'attached' })
        .catch(async () => { throw new t.CheckFailed(`the ${what} was not registered: ${await analyst.locator('#register-dialog').innerText()}`); });
    };
    await register('party', [['code', 'JPN'], ['kind', 'STATE'], ['name', 'Japan']]);
    await form('actors[0].party').locator('option[value="JPN"]').waitFor({ state: 'attached' });
    await register('actor', [['party', 'JPN'], ['slug', 'jpn-trade-envoy'], ['role', 'Trade envoy'], ['name', 'Japan\'s trade envoy']]);
    await register('issue', [['slug', 'steel-and-aluminium'], ['title', 'Tariffs on steel and aluminium']]);
    await form('issues').locator('input[value="steel-and-aluminium"]').waitFor({ state: 'attached' });
    await form('actors[0].party').selectOption('JPN');
    await form('actors[0].actor').locator('option[value="jpn-trade-envoy"]').waitFor({ state: 'attached' });
    const registry = await api('{ parties { code name } actors(party: "JPN") { slug role } issues { slug } }');
    expect(registry.parties.some((p) => p.code === 'JPN' && p.name === 'Japan'), 'Japan is not registered');
    expect(registry.actors.some((a) => a.slug === 'jpn-trade-envoy' && a.role === 'Trade envoy'), 'the envoy is not registered');
    expect(registry.issues.some((i) => i.slug === 'steel-and-aluminium'), 'the issue is not registered');
    await analyst.keyboard.press('Escape');
  });

  const ids = {};
  await check('one act of every kind is recorded through the form and appears in a second context live', async () => {
    await reader.goto(`${base}/?timeline=${TIMELINE}`);
    await reader.locator('#timeline[data-loaded="true"]').waitFor();
    await reader.locator('#live-state[data-state="live"]').waitFor();
    let day = 1;
    for (const [kind, party, fields] of CASES) {
      const typed = fields(ids);
      await openRecordForm(kind);
      const summary = `Workbench test: ${kind.toLowerCase()} typed into the form`;
      await fillCommon({ summary, day: `2018-06-${String(day).padStart(2, '0')}`, party, actor: party === 'JPN' ? 'jpn-trade-envoy' : null });
      day += 1;
      for (const [field, value] of typed) await put(form(field), value);
      if (kind === 'MEASURE') {
        await form('amounts').locator('.wb-add').click();
        await form('amounts[0].value').fill('34000000000');
        await form('amounts[0].unit').fill('USD');
        await form('amounts[0].measures').fill('imports covered');
        await form('issues').locator('input[value="steel-and-aluminium"]').check();
        await form('targets').locator('.wb-add').click();
        await form('targets[0].party').selectOption('CHN');
      }
      if (kind === 'TALKS') {
        await form('occurred.end').fill('2018-06-13');
        await form('occurred.modality').selectOption('PLANNED');
        await form('location').fill('Washington');
        await form('confidence').fill('0.8');
      }
      const id = await submitRecord();
      ids[kind] = id;
      await reader.locator(`.ev[data-event-id="${id}"]`).waitFor()
        .catch(() => { throw new t.CheckFailed(`the ${kind} ${id} did not appear in the second context`); });
      const event = await storedEvent(id);
      expect(event.kind === kind && event.content.summary === summary, `${id} is a ${event.kind}: ${event.content.summary}`);
      expect(event.content.actors[0].party.code === party, `the ${kind} is by ${event.content.actors[0].party.code}`);
      expect(event.content.sources[0].attribution === 'OFFICIAL' && event.content.sources[0].quote.includes('workbench'), `the ${kind}'s source is ${JSON.stringify(event.content.sources)}`);
      for (const [field, value] of typed) {
        const name = field.split('.')[2];
        // Boxes and options picked answer in the form's order, not the order they were picked in.
        const want = Array.isArray(value) ? [...value].sort() : LINES.has(name) ? value.split('\n') : NUMBERS.has(name) ? Number(value) : value;
        const stored = event.content.payload[name];
        const got = Array.isArray(value) ? [...stored].sort() : stored;
        expect(JSON.stringify(got) === JSON.stringify(want), `the ${kind}'s ${name} is ${JSON.stringify(got)}, typed ${JSON.stringify(want)}`);
      }
      if (kind === 'MEASURE') {
        expect(event.content.amounts[0]?.value === 34e9 && event.content.amounts[0].unit === 'USD', `the measure's amounts are ${JSON.stringify(event.content.amounts)}`);
        expect(event.content.issues.some((i) => i.slug === 'steel-and-aluminium'), 'the measure lost its issue');
        expect(event.content.targets[0]?.party.code === 'CHN', 'the measure lost its target');
      }
      if (kind === 'TALKS') {
        const c = event.content;
        expect(c.occurred.end === '2018-06-13' && c.occurred.modality === 'PLANNED' && c.location === 'Washington' && c.confidence === 0.8,
          `the talks read ${JSON.stringify({ occurred: c.occurred, location: c.location, confidence: c.confidence })}`);
      }
      if (kind === 'STATEMENT') expect(event.content.actors[0].actor?.slug === 'jpn-trade-envoy', 'the statement lost its actor');
    }
    await t.shot(reader, 'workbench-recorded-1280x800.png');
  });

  await check('a correction from the details shows what changed in both contexts', async () => {
    const id = ids.OFFER;
    await analyst.locator(`.ev[data-event-id="${id}"]`).click();
    await analyst.locator('#details-body button.correct').click();
    await analyst.locator('#record-dialog[open]').waitFor();
    expect(await form('kind').isDisabled(), 'a correction lets the kind change');
    await form('reason').fill('The offer named energy goods only');
    await form('summary').fill('Workbench test: an offer of energy goods');
    await form('act.offer.conditions').fill('The tariffs are held off');
    await analyst.locator('#record-dialog button[type=submit]').click();
    await analyst.locator('#record-dialog:not([open])').waitFor({ state: 'attached' });
    for (const [who, p] of [['the analyst', analyst], ['the reader', reader]]) {
      await p.locator(`.ev.corrected[data-event-id="${id}"]`).waitFor()
        .catch(() => { throw new t.CheckFailed(`${who} does not see the offer corrected`); });
      await p.locator(`.ev[data-event-id="${id}"]`).click();
      await waitUntil(p, () => document.querySelector('#details-body .summary')?.textContent === 'Workbench test: an offer of energy goods', null,
        `${who} does not show the corrected summary`);
      await p.locator('#details-body .changes-table').waitFor();
      const table = await p.locator('#details-body .changes-table').innerText();
      expect(table.includes('offer typed into the form'), `${who}'s table lacks the summary before: ${table}`);
      expect(table.includes('an offer of energy goods') && table.includes('The tariffs are held off'), `${who}'s table lacks what is now: ${table}`);
    }
    await shot(reader, 'workbench-correction-1280x800.png');
    const event = await storedEvent(id);
    expect(event.corrected && JSON.stringify(event.content.payload.conditions) === '["The tariffs are held off"]', `the offer reads ${JSON.stringify(event)}`);
  });

  await check('a retraction from the details strikes the event in both contexts', async () => {
    const id = ids.AGREEMENT;
    await analyst.locator(`.ev[data-event-id="${id}"]`).click();
    await analyst.locator('#details-body button.retract').click();
    await analyst.locator('#retract-dialog[open]').waitFor();
    await analyst.locator('#retract-dialog [data-field="reason"]').fill('No such statement was issued');
    await analyst.locator('#retract-dialog button[type=submit]').click();
    await analyst.locator('#retract-dialog:not([open])').waitFor({ state: 'attached' });
    for (const [who, p] of [['the analyst', analyst], ['the reader', reader]]) {
      await p.locator(`.ev.retracted[data-event-id="${id}"]`).waitFor()
        .catch(() => { throw new t.CheckFailed(`${who} does not see the agreement retracted`); });
    }
    await reader.locator(`.ev[data-event-id="${id}"]`).click();
    await waitUntil(reader, () => /Retracted .*No such statement was issued/.test(document.querySelector('#details-body').textContent), null,
      'the reader\'s details do not give the retraction\'s reason');
    expect(await reader.locator('#details-body button.correct').count() === 0, 'a retracted event still offers a correction');
  });

  await check('a refused field shows the server\'s message at that field, and nothing is recorded', async () => {
    const before = await head();
    await openRecordForm('MEASURE');
    await fillCommon({ summary: 'Workbench test: a measure with an unknown currency', day: '2018-13-02', party: 'USA' });
    await form('act.measure.terms').fill('Tariffs on steel');
    await form('act.measure.announced').fill('2018-06-20');
    await form('amounts').locator('.wb-add').click();
    await form('amounts[0].value').fill('50');
    await form('amounts[0].unit').fill('ZZZ');
    await form('amounts[0].measures').fill('goods covered');
    // A malformed date is caught by the page before anything is sent.
    let sent = 0;
    const count = (r) => { if (r.url().endsWith('/graphql') && r.method() === 'POST') sent += 1; };
    analyst.on('request', count);
    await analyst.locator('#record-dialog button[type=submit]').click();
    await analyst.locator('#record-dialog [data-field="occurred.start"][aria-invalid="true"]').waitFor();
    analyst.off('request', count);
    expect(sent === 0, `a malformed date was sent (${sent} requests)`);
    const dateError = await form('occurred.start').locator('xpath=..').locator('.wb-error').innerText();
    expect(dateError.includes('not a valid time'), `the date's message reads "${dateError}"`);
    expect(await analyst.evaluate(() => document.activeElement?.dataset.field) === 'occurred.start', 'the focus is not on the field at fault');
    // The server refuses the currency: its message sits at the unit.
    await form('occurred.start').fill('2018-06-20');
    await analyst.locator('#record-dialog button[type=submit]').click();
    const unit = analyst.locator('#record-dialog [data-field="amounts[0].unit"][aria-invalid="true"]');
    await unit.waitFor();
    const unitError = await unit.locator('xpath=..').locator('.wb-error').innerText();
    expect(/unknown currency code/.test(unitError), `the unit's message reads "${unitError}"`);
    expect(await unit.getAttribute('aria-describedby').then((d) => d.split(' ').length >= 1), 'the unit does not point at its message');
    await shot(analyst, 'workbench-refused-field-1280x900.png');
    expect(await head() === before, 'something was recorded');
    await form('amounts[0].unit').fill('USD');
    const id = await submitRecord();
    expect(id && await head() === before + 1, 'the mended act was not recorded once');
  });

  await check('a version conflict says so and offers to reload; after the reload the correction lands', async () => {
    const id = ids.STATEMENT;
    await analyst.locator(`.ev[data-event-id="${id}"]`).click();
    await analyst.locator('#details-body button.correct').click();
    await analyst.locator('#record-dialog[open]').waitFor();
    await form('reason').fill('The claim was worded more warmly');
    await form('act.statement.tone').selectOption('OPTIMISTIC');
    // Meanwhile another client records in the same timeline.
    const other = await t.recordEvent('Workbench test: recorded by another client while a correction was being written.', '2018-06-21');
    await analyst.locator(`.ev[data-event-id="${other.id}"]`).waitFor({ state: 'attached' });
    await analyst.locator('#record-dialog button[type=submit]').click();
    const alert = analyst.locator('#record-dialog .wb-alert[data-conflict="true"]');
    await alert.waitFor();
    const said = await alert.innerText();
    expect(/changed while you were writing/.test(said) && said.includes('recorded by another client'), `the conflict reads: ${said}`);
    await shot(analyst, 'workbench-conflict-1280x900.png');
    expect(await form('act.statement.tone').inputValue() === 'OPTIMISTIC', 'the conflict lost what was typed');
    await alert.locator('button.wb-reload').click();
    await waitUntil(analyst, () => /Reloaded/.test(document.querySelector('#record-dialog .wb-alert').textContent), null, 'the reload did not say it reloaded');
    await analyst.locator('#record-dialog button[type=submit]').click();
    await analyst.locator('#record-dialog:not([open])').waitFor({ state: 'attached' });
    await reader.locator(`.ev.corrected[data-event-id="${id}"]`).waitFor();
    const event = await storedEvent(id);
    expect(event.content.payload.tone === 'OPTIMISTIC', `the statement's tone is ${event.content.payload.tone}`);
  });

  await check('a request whose answer is lost is retried with the same id and recorded once', async () => {
    const summary = `Workbench test: recorded once over a dropped connection, ${new Date().toISOString()}`;
    const before = await head();
    let dropped = 0;
    t.tolerate.push(/net::ERR_CONNECTION_RESET/);
    await analyst.route(`${t.origin}/graphql`, async (route) => {
      if (!dropped && (route.request().postData() || '').includes('RecordEvent')) {
        dropped += 1;
        await route.fetch(); // the server records it...
        return route.abort('connectionreset'); // ...and the answer never reaches the page
      }
      return route.continue();
    });
    await openRecordForm('STATEMENT');
    await fillCommon({ summary, day: '2018-06-22', party: 'CHN' });
    await form('act.statement.claim').fill('Nothing was agreed yet');
    const previous = await openEvent();
    await analyst.locator('#record-dialog button[type=submit]').click();
    await waitUntil(analyst, () => document.querySelector('#record-dialog .wb-status')?.dataset.state === 'retrying', null, 'the page did not say it retries');
    const id = await recordedAfter(previous);
    await analyst.unroute(`${t.origin}/graphql`);
    t.tolerate.pop();
    expect(dropped === 1, `${dropped} answers were dropped`);
    const done = await analyst.locator('#wb-done').innerText();
    expect(/recorded once/.test(done), `the page says "${done}"`);
    const data = await api('query F($f: EventFilterInput) { events(filter: $f, first: 10) { edges { node { id } } } }',
      { f: { timelines: [TIMELINE], text: summary } });
    expect(data.events.edges.length === 1 && data.events.edges[0].node.id === id, `the act is recorded ${data.events.edges.length} times`);
    expect(await head() === before + 1, 'the retry wrote a second event');
  });

  await check('axe-core finds no serious or critical violation in the forms', async () => {
    await openRecordForm('MEASURE');
    await form('amounts').locator('.wb-add').click();
    await form('targets').locator('.wb-add').click();
    await analyst.evaluate(t.axeSource);
    const violations = await analyst.evaluate(async () => {
      const result = await window.axe.run(document.querySelector('#record-dialog'), { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
    });
    console.log(`  axe-core on the record form: ${violations.map((v) => `${v.impact} ${v.id}`).join(', ') || 'no violations'}`);
    const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(!grave.length, `axe-core: ${grave.map((v) => `${v.impact} ${v.id} (${v.help}) at ${v.targets.join(', ')}`).join('; ')}`);
    await shot(analyst, 'workbench-record-form-1280x900.png');
    await analyst.keyboard.press('Escape');
  });

  await check('a new timeline is opened and written from the page alone', async () => {
    await analyst.locator('#timeline-new').click();
    await analyst.locator('#register-dialog[open]').waitFor();
    await regForm('slug').fill('workbench-test');
    await regForm('title').fill('Workbench test timeline');
    await analyst.locator('#register-dialog button[type=submit]').click();
    await analyst.locator('#register-dialog:not([open])').waitFor({ state: 'attached' });
    await waitUntil(analyst, () => new URLSearchParams(location.search).get('timeline') === 'workbench-test', null, 'the page did not switch to the new timeline');
    await analyst.locator('#timeline[data-loaded="true"]').waitFor();
    await openRecordForm('VISIT');
    await fillCommon({ summary: 'Workbench test: the first act of a new timeline', day: '2018-02-27', party: 'CHN' });
    await form('act.visit.visitor').selectOption('CHN');
    await form('act.visit.host').selectOption('USA');
    await form('act.visit.place').fill('Washington');
    await form('act.visit.purpose').fill('Economic talks');
    const id = await submitRecord();
    await analyst.locator(`.ev[data-event-id="${id}"]`).waitFor();
    const data = await api('{ timeline(slug: "workbench-test") { title version } }');
    expect(data.timeline?.title === 'Workbench test timeline' && data.timeline.version >= 1, `the new timeline reads ${JSON.stringify(data.timeline)}`);
  });

  await readerContext.close();
  await desk.close();
  t.setCurrentPage(null);
}
