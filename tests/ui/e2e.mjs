// End-to-end test of Chancery's timeline page (issue 7) in headless Chromium: Debian's chromium,
// driven by playwright-core (never a downloaded browser), against a running
// `chancery serve --demo` on loopback.
//
// Usage: node tests/ui/e2e.mjs <base-url> <recorder-token> <admin-token>
//   e.g. node tests/ui/e2e.mjs http://127.0.0.1:8080 0123456789abcdef0123 admin-0123456789abcdef
// The workbench's checks (recording, correcting, retracting, registering from the page) are in
// tests/ui/workbench.mjs and run here, with this harness.
// Environment: CHANCERY_CHROMIUM (default /usr/bin/chromium), CHANCERY_UI_ARTIFACTS (default
// tests/artifacts/ui), CHANCERY_UI_TIMEOUT_MS (default 60000).
//
// Exits 0 when every check passes, 1 on the first failure (with what failed and a screenshot),
// 2 on bad usage. Screenshots go to the artifacts folder.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { workbenchChecks } from './workbench.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [base, recorderToken, adminToken] = process.argv.slice(2);
if (!base || !recorderToken || !adminToken) {
  console.error('usage: node tests/ui/e2e.mjs <base-url> <recorder-token> <admin-token>');
  process.exit(2);
}
const origin = new URL(base).origin;
const ARTIFACTS = path.resolve(process.env.CHANCERY_UI_ARTIFACTS || path.join(here, '..', 'artifacts', 'ui'));
const CHROMIUM = process.env.CHANCERY_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.CHANCERY_UI_TIMEOUT_MS || 60000);
const TIMELINE = 'us-china-trade';
// The demo's acts: positions 13 to 28 (12 registrations come first).
const DEMO_ACTS = Array.from({ length: 16 }, (_, i) => `016318ff-b000-7000-8000-${(13 + i).toString(16).padStart(12, '0')}`);
const TRADE_DEMAND = '016318ff-b000-7000-8000-00000000000d';
const SEMINAR = '016318ff-b000-7000-8000-000000000011';

fs.mkdirSync(ARTIFACTS, { recursive: true });
// A failure screenshot of an earlier run must not pass for this one's.
for (const name of fs.readdirSync(ARTIFACTS)) if (name.startsWith('failure-') && name.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, name));

const problems = []; // console errors, page errors, CSP violations, failed or foreign requests
const tolerate = []; // what a check causes on purpose (a dropped connection): patterns of problems to let pass
const tolerated = (text) => tolerate.some((pattern) => pattern.test(text));
let passed = 0;
const shots = [];

class CheckFailed extends Error {}
function expect(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

async function shot(page, name, options = {}) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, ...options });
  shots.push(file);
  return file;
}

let currentPage = null;
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`not ok - ${name}`);
    console.log(`  ${String(e.message || e).split('\n').join('\n  ')}`);
    if (currentPage) {
      try {
        const file = await shot(currentPage, `failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`, { fullPage: true });
        console.log(`  screenshot of the failure: ${file}`);
      } catch { /* the page is gone */ }
    }
    if (problems.length) console.log(`  browser problems so far:\n    ${problems.join('\n    ')}`);
    console.log(`\n${passed} passed, 1 failed`);
    await browser?.close().catch(() => {});
    process.exit(1);
  }
  passed += 1;
  console.log(`ok - ${name} (${Date.now() - started} ms)`);
}

function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !tolerated(m.text())) problems.push(`console error: ${m.text()}`);
    else if (m.type() === 'warning') console.log(`  (browser warning: ${m.text()})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    // blob: URLs name what the page made itself (the PNG is drawn from an SVG blob).
    if (!u.startsWith(origin) && !u.startsWith(origin.replace(/^http/, 'ws')) && !u.startsWith('data:') && !u.startsWith(`blob:${origin}/`)) {
      problems.push(`a request left the server: ${u}`);
    }
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    // The page cancels a view load that a newer one (slider, filter, reload) supersedes: an
    // abort of a GraphQL POST is the page's own doing, not a failure of the server.
    if (why === 'net::ERR_ABORTED' && r.method() === 'POST' && r.url() === `${origin}/graphql`) return;
    if (tolerated(why || '')) return;
    problems.push(`request failed: ${r.method()} ${r.url()} (${why})`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
}

/** Records an act through GraphQL with the recorder token, as another client would. */
async function recordEvent(summary, day) {
  const query = `mutation Record($event: EventInput!) {
    recordEvent(timeline: "${TIMELINE}", event: $event) { events { id position cursor } }
  }`;
  const event = {
    occurred: { start: day },
    actors: [{ party: 'USA', actor: 'steven-mnuchin' }],
    targets: [{ party: 'CHN' }],
    summary,
    sources: [{ publication: 'Chancery end-to-end test', url: 'https://example.org/chancery-e2e', attribution: 'NAMED', quote: 'recorded by tests/ui/e2e.mjs' }],
    confidence: 1,
    act: { statement: { claim: 'Both sides made progress.', tone: 'OPTIMISTIC' } },
  };
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${recorderToken}` },
    body: JSON.stringify({ query, variables: { event } }),
  });
  const body = await response.json();
  if (body.errors) throw new CheckFailed(`recordEvent failed: ${JSON.stringify(body.errors)}`);
  return body.data.recordEvent.events[0];
}

const text = (page, selector) => page.locator(selector).first().innerText();
const attr = (page, selector, name) => page.locator(selector).first().getAttribute(name);
const waitUntil = (page, fn, arg, what) => page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 100 })
  .catch((e) => { throw new CheckFailed(`${what} (waited ${TIMEOUT} ms): ${e.message.split('\n')[0]}`); });

console.log(`chancery timeline page: end-to-end test against ${base} with ${CHROMIUM}`);
let browser;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
} catch (e) {
  console.log(`not ok - launch Chromium at ${CHROMIUM}\n  ${e.message}\n\n0 passed, 1 failed`);
  process.exit(1);
}

const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, reducedMotion: 'reduce' });
const page = await context.newPage();
currentPage = page;
page.setDefaultTimeout(TIMEOUT);
watch(page);
const sentFrames = [];
page.on('websocket', (ws) => {
  ws.on('framesent', (f) => {
    try {
      const m = JSON.parse(typeof f.payload === 'string' ? f.payload : f.payload.toString());
      if (m.type === 'subscribe') sentFrames.push(m);
    } catch { /* not JSON */ }
  });
});

await check('the page is served from the binary with a strict CSP', async () => {
  const response = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  expect(response.status() === 200, `GET / answered ${response.status()}`);
  const h = response.headers();
  expect(h['content-type']?.startsWith('text/html'), `GET / has content-type ${h['content-type']}`);
  expect(h['x-content-type-options'] === 'nosniff', 'GET / lacks X-Content-Type-Options: nosniff');
  const csp = h['content-security-policy'] || '';
  expect(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && /connect-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp),
    `unexpected Content-Security-Policy: ${csp}`);
  expect(h['cache-control'] === 'no-cache', `Cache-Control is ${h['cache-control']}`);
});

await check('both parties\' lanes and every demo event are shown', async () => {
  await page.locator('#timeline[data-loaded="true"]').waitFor();
  for (const party of ['CHN', 'USA']) {
    expect(await page.locator(`.tl-lane[data-party="${party}"]`).count() === 1, `no lane for ${party}`);
  }
  const shown = await page.$$eval('#timeline .ev', (els) => [...new Set(els.map((e) => e.dataset.eventId))]);
  const missing = DEMO_ACTS.filter((id) => !shown.includes(id));
  expect(!missing.length, `demo events missing from the timeline: ${missing.join(', ')} (shown: ${shown.length})`);
  expect(await page.locator(`.ev[data-event-id="${TRADE_DEMAND}"][data-party="USA"]`).count() === 1, 'the $100 billion demand is not in the USA lane');
  expect(await page.locator(`.ev[data-event-id="${SEMINAR}"][data-party="CHN"]`).count() === 1, 'the seminar is not in the CHN lane');
  // Planned and hypothetical visits are drawn hollow; month-precision dates as spans.
  expect(await page.locator('.ev.mod-planned[data-event-id="016318ff-b000-7000-8000-00000000001b"]').count() === 1, 'the planned visit is not drawn as planned');
  expect(await page.locator('.ev.mod-hypothetical[data-event-id="016318ff-b000-7000-8000-00000000001c"]').count() === 1, 'the hypothetical visit is not drawn as hypothetical');
  expect(await page.locator(`.ev[data-event-id="${TRADE_DEMAND}"] .span.fuzzy`).count() === 1, 'the March 2018 demand is not drawn as a span');
});

await check('the live connection is up', async () => {
  await page.locator('#live-state[data-state="live"]').waitFor();
});

await check('the TimelineJS link offers the timeline as TimelineJS JSON', async () => {
  const link = page.locator('#timelinejs-link');
  expect(await link.isVisible(), 'no TimelineJS link');
  expect(await link.getAttribute('download') === 'us-china-trade-timelinejs.json', `the link saves as ${await link.getAttribute('download')}`);
  // What the link saves, fetched as its click does with the page's token (a download itself ends
  // as an aborted navigation).
  const file = await page.evaluate(async () => {
    const token = localStorage.getItem('chancery-token');
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const response = await fetch(document.getElementById('timelinejs-link').href, { headers, cache: 'no-store' });
    return { status: response.status, disposition: response.headers.get('content-disposition'), body: await response.json() };
  });
  expect(file.status === 200 && /attachment/.test(file.disposition || ''), `the link answers ${file.status} (${file.disposition})`);
  expect(file.body.title?.text?.headline === 'US-China trade talks, 2018', `the title slide reads ${JSON.stringify(file.body.title)}`);
  const ids = (file.body.events || []).map((e) => e.unique_id);
  const missing = DEMO_ACTS.filter((id) => !ids.includes(id));
  expect(ids.length === DEMO_ACTS.length && !missing.length, `the file has ${ids.length} events; missing: ${missing.join(', ')}`);
  for (const e of file.body.events) {
    expect(Number.isInteger(e.start_date?.year) && typeof e.text?.headline === 'string' && typeof e.text?.text === 'string',
      `an event is not in TimelineJS's format: ${JSON.stringify(e)}`);
  }
});

await check('the trade-deficit standoff reads DEADLOCKED', async () => {
  await page.locator('#positions[data-as-of="now"] .status-cell[data-issue="trade-deficit"]').waitFor();
  const status = await text(page, '.status-cell[data-issue="trade-deficit"]');
  expect(status.trim() === 'DEADLOCKED', `the trade-deficit status reads "${status}"`);
  const chn = await attr(page, '.stance-cell[data-party="CHN"][data-issue="trade-deficit"]', 'data-stance');
  const usa = await attr(page, '.stance-cell[data-party="USA"][data-issue="trade-deficit"]', 'data-stance');
  expect(chn === 'REFUSAL' && usa === 'DEMAND', `trade-deficit stances: CHN ${chn}, USA ${usa}`);
});

// Evaluated through the DevTools protocol, which the page's CSP does not govern.
const axeSource = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

await check('axe-core finds no serious or critical accessibility violation', async () => {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  console.log(`  axe-core: ${violations.length} violations of any impact: ${violations.map((v) => `${v.impact} ${v.id}`).join(", ") || "none"}`);
  const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(!grave.length, `axe-core: ${grave.map((v) => `${v.impact} ${v.id} (${v.help}) at ${v.targets.join(', ')}`).join('; ')}`);
});

/** Clicks `selector` and answers what the page saved: the download's name and its blob, read in
 * the page (the save is caught before the browser's download starts). */
async function saved(selector) {
  await page.evaluate(() => {
    window.__saved = null;
    if (window.__catching) return;
    window.__catching = true;
    const create = URL.createObjectURL.bind(URL);
    const blobs = new Map();
    URL.createObjectURL = (blob) => { const url = create(blob); blobs.set(url, blob); return url; };
    const click = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function () {
      if (this.download && blobs.has(this.href)) window.__saved = { name: this.download, blob: blobs.get(this.href) };
      else click.call(this);
    };
  });
  await page.locator(selector).click();
  await waitUntil(page, () => window.__saved !== null, null, `nothing was saved by ${selector}`);
  return page.evaluate(async () => {
    const { name, blob } = window.__saved;
    const bytes = new Uint8Array(await blob.arrayBuffer());
    return { name, type: blob.type, size: bytes.length, head: [...bytes.slice(0, 8)], text: blob.type.startsWith('image/png') ? '' : new TextDecoder().decode(bytes) };
  });
}

await check('the view downloads as SVG and PNG, and the grid as CSV', async () => {
  const drawn = await page.locator('#timeline svg.tl-svg .ev').count();
  const svg = await saved('#save-svg');
  expect(svg.name === 'us-china-trade-now.svg' && svg.type === 'image/svg+xml', `the SVG is saved as ${svg.name} (${svg.type})`);
  // Parsed in a blank page: a document parsed under the page's CSP would refuse its <style>, which
  // an SVG file opened on its own applies.
  const blank = await context.newPage();
  const parsed = await blank.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    return { error: doc.querySelector('parsererror')?.textContent || null, root: doc.documentElement.localName,
      events: doc.querySelectorAll('.ev').length, styled: !!doc.querySelector('style') };
  }, svg.text);
  await blank.close();
  expect(!parsed.error && parsed.root === 'svg', `the SVG does not parse: ${parsed.error}`);
  expect(parsed.events === drawn && drawn > 0 && parsed.styled, `the SVG has ${parsed.events} events of ${drawn} drawn (styles: ${parsed.styled})`);
  const png = await saved('#save-png');
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  expect(png.name === 'us-china-trade-now.png' && png.type === 'image/png', `the PNG is saved as ${png.name} (${png.type})`);
  expect(signature.every((b, i) => png.head[i] === b) && png.size > 2000, `not a PNG: ${png.head.join(' ')} (${png.size} bytes)`);
  const csv = await saved('#save-csv');
  const lines = csv.text.trim().split('\r\n');
  expect(lines[0] === 'issue,title,CHN,USA,standoff', `the CSV's header is ${lines[0]}`);
  const deficit = lines.find((l) => l.startsWith('trade-deficit,'));
  expect(deficit?.endsWith(',REFUSAL,DEMAND,DEADLOCKED'), `the trade-deficit row reads ${deficit}`);
  expect(lines.length === 1 + await page.locator('#positions tbody tr[data-issue]').count(), `the CSV has ${lines.length - 1} rows`);
});

await check('clicking an event shows its amounts, codes and sources', async () => {
  await page.locator(`.ev[data-event-id="${TRADE_DEMAND}"]`).click();
  const details = await text(page, '#details-body');
  for (const needle of ['Demand', 'March 2018', '$100B', '$375B', '1042', 'Demand policy change', 'DEMAND (change)', 'Goldstein', '-5', 'The New York Times', 'official', 'Donald Trump', 'Recorded by demo']) {
    expect(details.includes(needle), `the details lack "${needle}":\n${details}`);
  }
  expect(page.url().includes(`event=${TRADE_DEMAND}`), `the URL does not name the open event: ${page.url()}`);
  await shot(page, 'timeline-1280x800.png');
  await shot(page, 'timeline-1280-full.png', { fullPage: true });
});

await check('the keyboard reaches the events and opens one', async () => {
  await page.locator('body').focus();
  await page.evaluate(() => document.activeElement?.blur());
  let onEvent = false;
  for (let i = 0; i < 80 && !onEvent; i++) {
    await page.keyboard.press('Tab');
    onEvent = await page.evaluate(() => Boolean(document.activeElement?.classList?.contains('ev')));
  }
  expect(onEvent, 'Tab never reached an event of the timeline');
  const first = await page.evaluate(() => document.activeElement.dataset.eventId);
  await page.keyboard.press('ArrowRight');
  const second = await page.evaluate(() => document.activeElement?.dataset?.eventId);
  expect(second && second !== first, 'ArrowRight did not move to the next event');
  await page.keyboard.press('Enter');
  await waitUntil(page, (id) => new URL(location.href).searchParams.get('event') === id, second, 'Enter did not open the focused event');
});

await check('moving the slider before the seminar changes the grid', async () => {
  const slider = page.locator('#slider');
  await slider.focus();
  await page.keyboard.press('Home');
  let date = await attr(page, '#at-output', 'data-date');
  expect(date === '2018-03-01', `the slider's first day is ${date}, not 2018-03-01`);
  for (let i = 0; i < 400 && date !== '2018-04-27'; i++) {
    await page.keyboard.press('ArrowRight');
    date = await attr(page, '#at-output', 'data-date');
  }
  expect(date === '2018-04-27', `the slider never read 2018-04-27 (last: ${date})`);
  expect(new URL(page.url()).searchParams.get('at') === '2018-04-27', `the URL does not carry the date: ${page.url()}`);
  await page.locator('#positions[data-as-of="2018-04-27"]').waitFor();
  const chn = await attr(page, '.stance-cell[data-party="CHN"][data-issue="trade-deficit"]', 'data-stance');
  expect(chn === '', `CHN still has a trade-deficit stance before the seminar: ${chn}`);
  const usa = await attr(page, '.stance-cell[data-party="USA"][data-issue="trade-deficit"]', 'data-stance');
  expect(usa === 'DEMAND', `USA's trade-deficit stance before the seminar is ${usa}, not DEMAND`);
  const status = await attr(page, '.status-cell[data-issue="trade-deficit"]', 'data-status');
  expect(status !== 'DEADLOCKED', 'the trade-deficit standoff still reads DEADLOCKED before the seminar');
  expect(await page.locator(`.ev.future[data-event-id="${SEMINAR}"]`).count() === 1, 'the seminar is not shown as later than the slider');
  await shot(page, 'timeline-asof-2018-04-27.png');
  await shot(page, 'timeline-asof-2018-04-27-full.png', { fullPage: true });
});

await check('back to now: DEADLOCKED again', async () => {
  await page.locator('#slider').focus();
  await page.keyboard.press('End');
  expect((await text(page, '#at-output')).trim() === 'now', 'End did not move the slider to now');
  await page.locator('#positions[data-as-of="now"]').waitFor();
  await waitUntil(page, () => document.querySelector('.status-cell[data-issue="trade-deficit"]')?.dataset.status === 'DEADLOCKED',
    null, 'the trade-deficit standoff did not read DEADLOCKED again');
});

let firstLive;
await check('an event recorded through GraphQL appears without a reload', async () => {
  await page.evaluate(() => { window.notReloaded = true; });
  const before = await page.locator('#relations .rel-total').innerText();
  firstLive = await recordEvent(`End-to-end test: a statement recorded at ${new Date().toISOString()}.`, '2018-05-02');
  await page.locator(`.ev[data-event-id="${firstLive.id}"][data-party="USA"]`).waitFor({ timeout: TIMEOUT })
    .catch(() => { throw new CheckFailed(`the recorded event ${firstLive.id} did not appear within ${TIMEOUT} ms`); });
  expect(await page.evaluate(() => window.notReloaded === true), 'the page reloaded');
  expect(before.startsWith('13 acts'), `the relations total read "${before}" before the new event`);
  await waitUntil(page, () => document.querySelector('#relations .rel-total')?.textContent.startsWith('14 acts'), null,
    'the relations chart did not count the new act');
  await page.locator(`.ev[data-event-id="${firstLive.id}"]`).click();
  const link = page.locator('#details-body .sources a');
  expect(await link.getAttribute('href') === 'https://example.org/chancery-e2e', 'the source link is missing');
  const details = await text(page, '#details-body');
  expect(details.includes('named'), 'the attribution is missing');
  expect(/Recorded by recorder-[0-9a-f]{8}/.test(details), `the details do not name the recording token:\n${details}`);
  expect(!details.includes(recorderToken), 'the details show the token itself');
});

await check('after a disconnect the feed resumes from its last cursor', async () => {
  const subscribes = sentFrames.length;
  await page.evaluate(() => window.chanceryPage.dropConnection());
  await page.locator('#live-state[data-state="reconnecting"]').waitFor({ timeout: TIMEOUT })
    .catch(() => { throw new CheckFailed('the connection state never showed reconnecting'); });
  const second = await recordEvent(`End-to-end test: recorded while the page was disconnected, ${new Date().toISOString()}.`, '2018-05-03');
  await page.locator('#live-state[data-state="live"]').waitFor();
  await page.locator(`.ev[data-event-id="${second.id}"]`).waitFor()
    .catch(() => { throw new CheckFailed('the event recorded during the disconnect never appeared'); });
  expect(sentFrames.length > subscribes, 'no new subscribe message after the reconnect');
  const after = sentFrames[sentFrames.length - 1].payload.variables.after;
  expect(after === firstLive.cursor, `the new subscription starts after ${after}, not after the last event seen (${firstLive.cursor})`);
  const count = await page.$$eval(`.ev[data-event-id="${second.id}"]`, (els) => els.length);
  expect(count === 1, `the event is drawn ${count} times`);
});

await check('zoom and pan change the visible span', async () => {
  const before = await attr(page, '.tl-svg', 'data-view-start');
  await page.locator('#zoom-in').click();
  await waitUntil(page, (b) => document.querySelector('.tl-svg').dataset.viewStart !== b, before, 'zoom in did not change the view');
  const zoomed = await attr(page, '.tl-svg', 'data-view-start');
  await page.locator('#pan-left').click();
  await waitUntil(page, (b) => document.querySelector('.tl-svg').dataset.viewStart < b, zoomed, 'pan left did not move the view earlier');
  await page.locator('#zoom-fit').click();
  await waitUntil(page, (b) => document.querySelector('.tl-svg').dataset.viewStart === b, before, 'Fit did not restore the view');
});

await check('play steps through the events', async () => {
  await page.locator('#play').click();
  expect(await attr(page, '#play', 'aria-pressed') === 'true', 'the play button is not pressed');
  await waitUntil(page, () => document.querySelector('#at-output').dataset.date === '2018-03-01', null, 'play did not start at the first event');
  await waitUntil(page, () => document.querySelector('#at-output').dataset.date >= '2018-04-01', null, 'play did not step on');
  await page.locator('#play').click();
  expect(await attr(page, '#play', 'aria-pressed') === 'false', 'the play button did not pause');
  const selected = await page.locator('.ev.selected').count();
  expect(selected >= 1, 'play does not highlight its current event');
  await page.locator('#at-now').click();
});

await check('filters are reflected in the URL and survive a reload', async () => {
  await page.locator('#f-kind > summary').click();
  await page.locator('#f-kind-STATEMENT').uncheck();
  await waitUntil(page, () => /[?&]kind=/.test(location.search) && !new URLSearchParams(location.search).get('kind').includes('STATEMENT'),
    null, 'the kind filter is not in the URL');
  expect(await page.locator('#timeline .ev[data-kind="STATEMENT"]').count() === 0, 'statements are still drawn');
  await page.locator('#f-party > summary').click();
  expect(!(await page.locator('#f-kind').evaluate((d) => d.open)), 'opening a filter did not close the other');
  await page.locator('#f-party-USA').uncheck();
  await page.keyboard.press('Escape');
  await waitUntil(page, () => new URLSearchParams(location.search).get('party') === 'CHN', null, 'the party filter is not in the URL');
  expect(await page.locator('.tl-lane[data-party="USA"]').count() === 0, 'the USA lane is still drawn');
  const shared = page.url();
  await page.reload();
  await page.locator('#timeline[data-loaded="true"]').waitFor();
  expect((await text(page, '#f-kind .f-value')).startsWith('11 of 12'), 'after a reload the kind filter does not say what it shows');
  expect(!(await page.locator('#f-kind-STATEMENT').isChecked()), 'after a reload the statement filter is lost');
  expect(await page.locator('.tl-lane[data-party="USA"]').count() === 0, 'after a reload the party filter is lost');
  expect(page.url() === shared, `the URL changed on reload: ${shared} -> ${page.url()}`);
});

await check('on a narrow screen the page fits and shows the lanes', async () => {
  const narrow = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true, reducedMotion: 'reduce' });
  const small = await narrow.newPage();
  currentPage = small;
  watch(small);
  await small.goto(`${base}/?event=${TRADE_DEMAND}`);
  await small.locator('#timeline[data-loaded="true"]').waitFor();
  await small.locator('.tl-lane[data-party="CHN"]').waitFor();
  await small.locator('.tl-lane[data-party="USA"]').waitFor();
  await small.locator('#positions[data-as-of="now"] .status-cell[data-issue="trade-deficit"]').waitFor();
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the page is ${overflow} px wider than a 390 px screen`);
  await shot(small, 'timeline-narrow-390x844.png');
  await shot(small, 'timeline-narrow-390-full.png', { fullPage: true });
  await narrow.close();
  currentPage = page;
});

await check('GraphiQL renders and answers a query with the network off', async () => {
  // Offline: the context may reach the server on loopback and nothing else.
  const offline = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const blocked = [];
  await offline.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith(origin.replace(/^http/, 'ws')) || u.startsWith('data:')) return route.continue();
    blocked.push(u);
    return route.abort('internetdisconnected');
  });
  const gi = await offline.newPage();
  currentPage = gi;
  watch(gi);
  // The schema comes by introspection from the server itself.
  const introspected = gi.waitForResponse((r) => r.url() === `${origin}/graphql` && r.status() === 200);
  await gi.goto(`${base}/graphiql`);
  await gi.locator('.graphiql-container').waitFor();
  await introspected;
  // Run the default query ({ __typename }) with GraphiQL's own button; the answer shows.
  await gi.locator('.graphiql-execute-button').click();
  await gi.locator('.graphiql-response').getByText('"Query"').waitFor();
  expect(!blocked.length, `GraphiQL tried to reach the network: ${blocked.join(', ')}`);
  await shot(gi, 'graphiql-offline-1280x800.png');
  await offline.close();
  currentPage = page;
});

await workbenchChecks({
  browser, base, origin, check, expect, waitUntil, watch, shot, recordEvent, axeSource, tolerate, CheckFailed, TIMEOUT, TIMELINE,
  adminToken, setCurrentPage: (p) => { currentPage = p || page; },
});

await check('no console errors, CSP violations, failed requests or requests elsewhere', async () => {
  expect(!problems.length, `the browser reported:\n${problems.join('\n')}`);
});

await browser.close();
console.log(`\nscreenshots:\n  ${shots.join('\n  ')}`);
console.log(`\n${passed} passed, 0 failed`);
