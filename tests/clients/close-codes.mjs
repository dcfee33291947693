// The WebSocket protocols' edges, with a raw `ws` socket: graphql-transport-ws's close codes
// (4400 invalid message, 4401 subscribe before connection_ack, 4403 bad token, 4408 no
// connection_init in time, 4409 duplicate subscription id, 4429 a second connection_init), close
// reasons under 123 bytes, a validation error answered with an `error` message (the connection
// stays open), an id free again once its `complete` or `error` arrived, the closing handshake,
// and the legacy graphql-ws protocol (connection_ack, `data` messages).
// Usage: node close-codes.mjs <httpUrl> [init timeout in seconds, default 1]
// The server must run with `--ws-init-timeout <that many seconds>`.
import WebSocket from 'ws';

const [httpUrl, initTimeoutArg = '1'] = process.argv.slice(2);
if (!httpUrl) {
  console.error('usage: node close-codes.mjs <httpUrl> [init timeout in seconds]');
  process.exit(2);
}
const initTimeout = Number(initTimeoutArg);
const wsUrl = `${new URL('/graphql', httpUrl).href.replace(/^http/, 'ws')}/ws`;
const TIMEOUT_MS = 60_000;
const TRANSPORT = 'graphql-transport-ws';
const LEGACY = 'graphql-ws';
const EVENTS = 'subscription { events { position cursor kind } }';
const REUSE_ROUNDS = 2500;
const REUSE_CONNECTIONS = 4;

const watchdog = setTimeout(() => {
  console.error('close-codes: FAILED: the whole run took longer than 240 s');
  process.exit(1);
}, 240_000);

/** A raw connection: every message received is queued; `closed` settles with the close frame. */
function open(protocol) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, protocol);
    const queue = [];
    const takers = [];
    let closeInfo = null;
    const conn = {
      ws,
      send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
      /** The next message, parsed; fails on a timeout or if the socket closes first. */
      next(what) {
        if (queue.length > 0) return Promise.resolve(queue.shift());
        if (closeInfo) {
          return Promise.reject(new Error(`the socket closed (${closeInfo.code} ${closeInfo.reason}) before ${what}`));
        }
        return new Promise((ok, ko) => {
          const taker = { ok, ko, what };
          taker.timer = setTimeout(() => ko(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
          takers.push(taker);
        });
      },
      closed: new Promise((ok) => {
        ws.on('close', (code, reason) => {
          closeInfo = { code, reason: reason.toString('utf8'), reasonBytes: reason.length };
          for (const taker of takers.splice(0)) {
            clearTimeout(taker.timer);
            taker.ko(new Error(`the socket closed (${closeInfo.code} ${closeInfo.reason}) while waiting for ${taker.what}`));
          }
          ok(closeInfo);
        });
      }),
    };
    ws.on('message', (data, isBinary) => {
      let message;
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        message = { unparsable: data.toString('utf8'), isBinary };
      }
      const taker = takers.shift();
      if (taker) {
        clearTimeout(taker.timer);
        taker.ok(message);
      } else {
        queue.push(message);
      }
    });
    ws.on('open', () => {
      if (ws.protocol !== protocol) {
        reject(new Error(`the server chose the subprotocol "${ws.protocol}", not ${protocol}`));
      } else {
        resolve(conn);
      }
    });
    ws.on('error', reject);
  });
}

/** Waits for the close frame; fails if it takes longer than TIMEOUT_MS. */
function closeOf(conn, what) {
  return Promise.race([
    conn.closed,
    new Promise((_, ko) => setTimeout(() => ko(new Error(`timed out waiting for the close (${what})`)), TIMEOUT_MS).unref()),
  ]);
}

/** Opens a graphql-transport-ws connection and completes connection_init. */
async function acked(payload = {}) {
  const conn = await open(TRANSPORT);
  conn.send({ type: 'connection_init', payload });
  const ack = await conn.next('connection_ack');
  if (ack.type !== 'connection_ack') throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
  return conn;
}

/** Reads messages until one matches; messages of other kinds are skipped. */
async function nextOfType(conn, type, what) {
  for (;;) {
    const message = await conn.next(what);
    if (message.type === type) return message;
    if (message.type === 'error' || message.type === 'connection_error') {
      throw new Error(`expected ${type} (${what}), got ${JSON.stringify(message)}`);
    }
  }
}

function expectClose(info, code, what) {
  if (info.code !== code) {
    throw new Error(`expected close ${code} on ${what}, got ${info.code} "${info.reason}"`);
  }
  if (info.reasonBytes >= 123) {
    throw new Error(`the close reason for ${what} is ${info.reasonBytes} bytes (the limit is 122): "${info.reason}"`);
  }
  return `${info.code} "${info.reason}" (${info.reasonBytes} bytes)`;
}

// ---- The checks -----------------------------------------------------------------------------

const checks = [];
function check(name, fn) {
  checks.push({ name, fn });
}

for (const [label, message] of [
  ['text that is not JSON', 'this is not JSON'],
  ['a JSON value that is not an object', '[1, 2, 3]'],
  ['an unknown message type', { type: 'hello' }],
  ['a message without a type', { id: '1', payload: {} }],
  ['a server-only message type (next)', { type: 'next', id: '1', payload: {} }],
  ['a subscribe without an id', { type: 'subscribe', payload: { query: EVENTS } }],
  ['a subscribe without payload.query', { type: 'subscribe', id: '1', payload: {} }],
]) {
  check(`4400 on ${label}`, async () => {
    const conn = await acked();
    conn.send(message);
    return expectClose(await closeOf(conn, label), 4400, label);
  });
}

check('4400 on a binary message', async () => {
  const conn = await acked();
  conn.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
  return expectClose(await closeOf(conn, 'a binary message'), 4400, 'a binary message');
});

check('4401 on subscribe before connection_init', async () => {
  const conn = await open(TRANSPORT);
  conn.send({ type: 'subscribe', id: '1', payload: { query: EVENTS } });
  return expectClose(await closeOf(conn, 'subscribe before init'), 4401, 'subscribe before connection_ack');
});

check('4403 on a token that is not valid', async () => {
  const conn = await open(TRANSPORT);
  conn.send({ type: 'connection_init', payload: { authorization: 'Bearer not-a-token-of-this-server' } });
  return expectClose(await closeOf(conn, 'a bad token'), 4403, 'a bad token');
});

check(`4408 when no connection_init arrives within ${initTimeout} s`, async () => {
  const started = Date.now();
  const conn = await open(TRANSPORT);
  const info = await closeOf(conn, 'the init timeout');
  const seconds = (Date.now() - started) / 1000;
  const result = expectClose(info, 4408, 'the init timeout');
  if (seconds < initTimeout * 0.8 || seconds > initTimeout + 10) {
    throw new Error(`closed after ${seconds.toFixed(2)} s; the init timeout is ${initTimeout} s`);
  }
  return `${result} after ${seconds.toFixed(2)} s`;
});

check('ping before connection_init is answered with pong', async () => {
  const conn = await open(TRANSPORT);
  conn.send({ type: 'ping', payload: { n: 1 } });
  const pong = await conn.next('pong');
  if (pong.type !== 'pong' || pong.payload?.n !== 1) throw new Error(`expected pong with the payload, got ${JSON.stringify(pong)}`);
  conn.ws.close(1000);
  return 'pong';
});

check('4409 on a duplicate subscription id', async () => {
  const conn = await acked();
  conn.send({ type: 'subscribe', id: 'dup', payload: { query: EVENTS } });
  // The first subscription is running (its catch-up is streaming) before the second arrives.
  const first = await nextOfType(conn, 'next', 'the first subscription\'s first event');
  if (first.id !== 'dup') throw new Error(`a next for id ${first.id}`);
  conn.send({ type: 'subscribe', id: 'dup', payload: { query: EVENTS } });
  return expectClose(await closeOf(conn, 'a duplicate id'), 4409, 'a duplicate subscription id');
});

check('4429 on a second connection_init', async () => {
  const conn = await acked();
  conn.send({ type: 'connection_init', payload: {} });
  return expectClose(await closeOf(conn, 'a second init'), 4429, 'a second connection_init');
});

check('4429 on a second connection_init sent before the ack', async () => {
  const conn = await open(TRANSPORT);
  conn.send({ type: 'connection_init', payload: {} });
  conn.send({ type: 'connection_init', payload: {} });
  const info = await closeOf(conn, 'two inits at once');
  return expectClose(info, 4429, 'two connection_init messages');
});

check('a validation error in subscribe is an error message, and the connection stays open', async () => {
  const conn = await acked();
  conn.send({ type: 'subscribe', id: 'bad', payload: { query: 'subscription { events { noSuchField } }' } });
  const error = await conn.next('the error message');
  if (error.type !== 'error' || error.id !== 'bad') throw new Error(`expected an error message for id bad, got ${JSON.stringify(error)}`);
  if (!Array.isArray(error.payload) || error.payload.length === 0 || typeof error.payload[0].message !== 'string') {
    throw new Error(`an error message's payload must be a non-empty array of GraphQL errors, got ${JSON.stringify(error.payload)}`);
  }
  // Still open: another subscription streams. (Another id: reusing this one at once is the
  // next check's business.)
  conn.send({ type: 'subscribe', id: 'good', payload: { query: EVENTS } });
  const next = await conn.next('a next after the error');
  if (next.type !== 'next' || next.id !== 'good' || Number(next.payload?.data?.events?.position) !== 1) {
    throw new Error(`expected next with position 1 for id good, got ${JSON.stringify(next)}`);
  }
  conn.send({ type: 'complete', id: 'good' });
  conn.ws.close(1000);
  return `error: "${error.payload[0].message}"; then next for another id`;
});

// Once the server sent `complete` or `error` for an id, the operation is over and the id is free
// again (graphql-transport-ws: 4409 is for "a subscriber with the same id already exists"). A
// client that reuses it at once must not be closed with 4409.
for (const [label, query, last] of [
  ['complete', 'subscription { replay(timeline: "us-china-trade", first: 0) { step } }', 'complete'],
  ['error', 'subscription { events { noSuchField } }', 'error'],
]) {
  check(`an id may be reused as soon as its ${label} arrived (${REUSE_CONNECTIONS} connections × ${REUSE_ROUNDS} rounds)`, async () => {
    let stop = false; // one failure ends the others' loops too
    const one = async (n) => {
      const conn = await acked();
      for (let round = 1; round <= REUSE_ROUNDS && !stop; round += 1) {
        conn.send({ type: 'subscribe', id: 'r', payload: { query } });
        let message;
        try {
          message = await conn.next(`round ${round}'s ${last}`);
        } catch (e) {
          stop = true;
          throw new Error(`connection ${n}, round ${round}: ${e.message}`);
        }
        if (message.type !== last || message.id !== 'r') {
          stop = true;
          throw new Error(`connection ${n}, round ${round}: expected ${last} for id r, got ${JSON.stringify(message)}`);
        }
      }
      conn.ws.close(1000);
    };
    // Side by side, so that the server's tasks interleave as they do under load.
    await Promise.all(Array.from({ length: REUSE_CONNECTIONS }, (_, n) => one(n + 1)));
    return `${REUSE_CONNECTIONS * REUSE_ROUNDS} reuses`;
  });
}

// RFC 6455 5.5.1: an endpoint that receives a Close frame (and sent none) must send one back.
// Without it the client sees an abnormal closure (1006) instead of its own code.
for (const protocol of [TRANSPORT, LEGACY]) {
  check(`${protocol}: a client's close is answered with a close frame (a clean close)`, async () => {
    const conn = await open(protocol);
    conn.send({ type: 'connection_init', payload: {} });
    await nextOfType(conn, 'connection_ack', 'connection_ack');
    conn.ws.close(1000, 'done');
    const info = await closeOf(conn, 'the close handshake');
    if (info.code !== 1000) {
      throw new Error(`the client closed with 1000 and saw ${info.code} "${info.reason}" (1006: the server sent no close frame back)`);
    }
    return `${info.code} "${info.reason}"`;
  });
}

check('legacy graphql-ws: connection_ack, then data messages', async () => {
  const conn = await open(LEGACY);
  conn.send({ type: 'connection_init', payload: {} });
  const ack = await conn.next('connection_ack');
  if (ack.type !== 'connection_ack') throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
  conn.send({ type: 'start', id: '1', payload: { query: EVENTS } });
  const positions = [];
  while (positions.length < 5) {
    const message = await conn.next('data messages');
    if (message.type === 'ka') continue;
    if (message.type !== 'data' || message.id !== '1') throw new Error(`expected data for id 1, got ${JSON.stringify(message)}`);
    positions.push(Number(message.payload?.data?.events?.position));
  }
  if (positions.join() !== '1,2,3,4,5') throw new Error(`data for positions ${positions.join()}, expected 1,2,3,4,5`);
  conn.send({ type: 'stop', id: '1' });
  conn.send({ type: 'connection_terminate' });
  const info = await closeOf(conn, 'connection_terminate');
  if (info.code !== 1000) throw new Error(`connection_terminate closed with ${info.code} "${info.reason}"`);
  return `data for positions ${positions.join()}; connection_terminate closed with ${info.code}`;
});

check('legacy graphql-ws: a validation error is an error message', async () => {
  const conn = await open(LEGACY);
  conn.send({ type: 'connection_init', payload: {} });
  await nextOfType(conn, 'connection_ack', 'connection_ack');
  conn.send({ type: 'start', id: 'bad', payload: { query: 'subscription { events { noSuchField } }' } });
  for (;;) {
    const message = await conn.next('the error message');
    if (message.type === 'ka') continue;
    if (message.type !== 'error' || message.id !== 'bad') throw new Error(`expected error for id bad, got ${JSON.stringify(message)}`);
    conn.ws.close(1000);
    return `error: "${message.payload?.message}"`;
  }
});

// ---- Run them all, one at a time --------------------------------------------------------------

let failed = 0;
for (const { name, fn } of checks) {
  try {
    const detail = await fn();
    console.log(`ok      ${name}: ${detail}`);
  } catch (e) {
    failed += 1;
    console.log(`FAILED  ${name}: ${e instanceof Error ? e.message : e}`);
  }
}
clearTimeout(watchdog);
console.log(`close-codes: ${checks.length} checks, ${checks.length - failed} ok, ${failed} failed`);
if (failed > 0) {
  console.error(`close-codes: FAILED: ${failed} of ${checks.length} checks failed (see above)`);
  process.exit(1);
}
process.exit(0);
