// Resuming the `events` subscription with the graphql-ws client: from the start (the demo's
// events, then live ones this script records over HTTP), then disconnected three times (a clean
// close, a dropped TCP connection, the client's abrupt terminate) while a writer keeps recording,
// and resumed each time with `after: <the last cursor seen>`. Every position from 1 to the final
// head must arrive exactly once, in order.
// Usage: node resume.mjs <httpUrl> <recorder token>   (e.g. http://127.0.0.1:8080)
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [httpUrl, token] = process.argv.slice(2);
if (!httpUrl || !token) {
  console.error('usage: node resume.mjs <httpUrl> <recorder token>');
  process.exit(2);
}
const graphqlUrl = new URL('/graphql', httpUrl).href;
const wsUrl = `${graphqlUrl.replace(/^http/, 'ws')}/ws`;
const TIMEOUT_MS = 60_000;
const WRITER_EVENTS = 40;
const DISCONNECTS = ['clean close (dispose)', 'dropped TCP connection', 'client terminate'];

function fail(message) {
  console.error(`resume: FAILED: ${message}`);
  console.error(
    `resume: state: next expected position ${expected}, last cursor ${lastCursor}, ` +
      `${received} events received, ${reconnects} reconnects, writer recorded ${written.length}`,
  );
  process.exit(1);
}

const watchdog = setTimeout(() => fail('the whole run took longer than 240 s'), 240_000);

// ---- GraphQL over HTTP ----------------------------------------------------------------------

async function http(query, variables = {}, auth = false) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  if (auth) headers.authorization = `Bearer ${token}`;
  const response = await fetch(graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`HTTP ${response.status} from ${graphqlUrl} is not JSON: ${text.slice(0, 300)}`);
  }
  if (!response.ok || body.errors) {
    fail(`HTTP ${response.status} for ${query.slice(0, 60)}...: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}

async function head() {
  return Number((await http('{ head { position } }')).head.position);
}

const RECORD = `mutation Record($event: EventInput!) {
  recordEvent(timeline: "us-china-trade", event: $event) { lastPosition events { position kind } }
}`;

let statements = 0;
/** Records one statement and answers with its position. */
async function recordStatement(who) {
  statements += 1;
  const event = {
    occurred: { start: '2018-05-04' },
    actors: [{ party: 'USA' }],
    summary: `Resume test statement ${statements} (${who}).`,
    sources: [{ publication: 'Chancery client tests', attribution: 'OFFICIAL' }],
    act: { statement: { claim: `Statement ${statements} of the resume test.`, tone: 'NEUTRAL' } },
  };
  const data = await http(RECORD, { event }, true);
  const written = data.recordEvent.events;
  if (written.length !== 1 || written[0].kind !== 'STATEMENT') {
    fail(`recordEvent answered ${JSON.stringify(data)}`);
  }
  return Number(data.recordEvent.lastPosition);
}

// ---- What the subscriber saw ----------------------------------------------------------------

let expected = 1; // the next position that must arrive
let lastCursor = null;
let received = 0;
let reconnects = 0;
const written = []; // positions the writer recorded
const waiters = new Set();

function notify() {
  for (const waiter of [...waiters]) {
    if (waiter.ready()) {
      waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}

/** Resolves once `ready()` holds; fails the run after TIMEOUT_MS. */
function until(what, ready) {
  if (ready()) return Promise.resolve();
  return new Promise((resolve) => {
    const waiter = { ready, resolve };
    waiter.timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s waiting for ${what}`), TIMEOUT_MS);
    waiters.add(waiter);
  });
}

const SUBSCRIPTION = 'subscription Resume($after: String) { events(after: $after) { position cursor kind } }';

/** One connection and its subscription, from `after`. */
function connect(after, label) {
  const session = { label, dead: false, socket: null, received: 0 };
  session.client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: { opened: (socket) => (session.socket = socket) },
  });
  session.client.subscribe(
    { query: SUBSCRIPTION, variables: { after } },
    {
      next(result) {
        if (session.dead) return; // what arrives after we hung up is not ours to count
        if (result.errors) fail(`${label}: the subscription sent errors: ${JSON.stringify(result.errors)}`);
        const event = result.data?.events;
        if (!event) fail(`${label}: a result without data.events: ${JSON.stringify(result)}`);
        const position = Number(event.position);
        if (position !== expected) {
          const what = position < expected ? 'a duplicate' : 'a gap';
          fail(`${label}: ${what}: position ${position} arrived, ${expected} was expected next`);
        }
        if (typeof event.cursor !== 'string' || event.cursor.length === 0) {
          fail(`${label}: position ${position} came without a cursor: ${JSON.stringify(event)}`);
        }
        expected += 1;
        received += 1;
        session.received += 1;
        lastCursor = event.cursor;
        notify();
      },
      error(error) {
        if (session.dead) return;
        const detail = error instanceof Error ? error.message : `${error?.code ?? ''} ${error?.reason ?? JSON.stringify(error)}`;
        fail(`${label}: the subscription failed: ${detail}`);
      },
      complete() {
        if (!session.dead) fail(`${label}: the server completed a live subscription`);
      },
    },
  );
  return session;
}

function hangUp(session, how) {
  session.dead = true;
  switch (how) {
    case 'clean close (dispose)':
      return session.client.dispose();
    case 'dropped TCP connection':
      // ws's terminate destroys the TCP socket: no close frame, as when a network drops.
      if (!session.socket) fail(`${session.label}: no socket to drop`);
      session.socket.terminate();
      return session.client.dispose();
    case 'client terminate':
      session.client.terminate();
      return session.client.dispose();
    default:
      throw new Error(how);
  }
}

// ---- The run --------------------------------------------------------------------------------

const demoHead = await head();
if (demoHead < 1) fail(`the server has no events (head ${demoHead}): was it started with --demo?`);

// From the start: the demo's events (catch-up), then live events this script records.
let session = connect(null, 'subscription 1 (from the start)');
await until(`the ${demoHead} catch-up events`, () => expected > demoHead);
const catchUp = received;
for (let i = 0; i < 3; i += 1) {
  const position = await recordStatement('live');
  await until(`live position ${position}`, () => expected > position);
}

// A writer that keeps recording while the subscriber comes and goes.
let writerDone = false;
const writer = (async () => {
  for (let i = 0; i < WRITER_EVENTS; i += 1) {
    written.push(await recordStatement('writer'));
    notify();
  }
  writerDone = true;
  notify();
})();
writer.catch((e) => fail(`the writer failed: ${e}`));

for (const [i, how] of DISCONNECTS.entries()) {
  // Hang up in the middle of the writer's stream, once a few of its events have arrived...
  const seen = session.received;
  await until(`${session.label} to receive writer events`, () => session.received >= seen + 3 || writerDone);
  hangUp(session, how);
  // ...let it record some while nobody listens...
  const before = written.length;
  await until('the writer to record while disconnected', () => written.length >= before + 3 || writerDone);
  // ...and resume after the last cursor seen.
  reconnects += 1;
  session = connect(lastCursor, `subscription ${i + 2} (after a ${how})`);
}

await writer;
const finalHead = await head();
// (Other writers may share the server: the head is at least this script's last position.)
if (finalHead < written[written.length - 1]) {
  fail(`the head is ${finalHead}, before the writer's last position ${written[written.length - 1]}`);
}
await until(`every position up to the final head ${finalHead}`, () => expected > finalHead);
// A sentinel: had anything been sent twice, it would arrive before this and fail the check.
const sentinel = await recordStatement('sentinel');
await until(`the sentinel at position ${sentinel}`, () => expected > sentinel);
session.dead = true;
await session.client.dispose();
clearTimeout(watchdog);

console.log(
  `resume: ok: positions 1..${sentinel} (${sentinel} checked) each arrived exactly once and in order: ` +
    `${catchUp} catch-up, ${sentinel - catchUp} live; ${reconnects} reconnects (${DISCONNECTS.join(', ')}); ` +
    `${received} events received in all`,
);
process.exit(0);
