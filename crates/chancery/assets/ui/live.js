// A minimal graphql-transport-ws client for one subscription that resumes from a cursor.
//
// The protocol: open `/graphql/ws` with the `graphql-transport-ws` subprotocol, send
// `connection_init` (with `{authorization: "Bearer <token>"}` when a token is set), wait for
// `connection_ack`, send `subscribe`, read `next` until `complete` or `error`; answer `ping`
// with `pong`. This client pings every 15 s and drops a connection that does not answer within
// 10 s, so a dead network is noticed; after any close it reconnects with a growing, jittered
// delay (1 s up to 15 s) and subscribes again after the last cursor it saw, so nothing is missed
// and nothing is seen twice.

const ACK_TIMEOUT = 10000;
const PING_EVERY = 15000;
const PONG_TIMEOUT = 10000;

export class LiveFeed {
  /**
   * @param {object} o
   * @param {string} o.query        the subscription document
   * @param {() => object} o.variables  variables for a (re)subscription; called each time
   * @param {(data: object) => void} o.onData
   * @param {(state: string, detail?: string) => void} o.onState  connecting, live, reconnecting, stopped, error
   * @param {() => string} o.token
   */
  constructor({ query, variables, onData, onState, token }) {
    Object.assign(this, { query, variables, onData, onState, token });
    this.socket = null;
    this.attempt = 0;
    this.timers = new Set();
    this.stopped = true;
    this.serial = 0;
    this.lastVariables = null;
    this.onOnline = () => { if (!this.stopped && !this.socket) this.connectNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connectNow();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    this.clearTimers();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      try { socket.close(1000, 'Normal closure'); } catch { /* already closed */ }
    }
    this.onState('stopped');
  }

  /** Closes the connection as a network failure would: the feed reconnects and resumes. */
  drop() {
    if (this.socket) this.socket.close(4000, 'Dropped by the page');
  }

  connectNow() {
    this.clearTimers();
    if (this.socket) return;
    const url = new URL('/graphql/ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, 'graphql-transport-ws');
    const id = String(++this.serial);
    this.socket = socket;
    this.onState(this.attempt ? 'reconnecting' : 'connecting');
    let acked = false;
    let awaitingPong = false;
    const later = (fn, ms) => {
      const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
      this.timers.add(t);
      return t;
    };
    const send = (message) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    socket.addEventListener('open', () => {
      const t = this.token();
      send({ type: 'connection_init', payload: t ? { authorization: `Bearer ${t}` } : {} });
      later(() => { if (!acked) socket.close(4408, 'No connection_ack in time'); }, ACK_TIMEOUT);
    });
    const heartbeat = () => {
      later(() => {
        if (socket !== this.socket) return;
        awaitingPong = true;
        send({ type: 'ping' });
        later(() => { if (awaitingPong) socket.close(4000, 'No pong in time'); }, PONG_TIMEOUT);
      }, PING_EVERY);
    };
    socket.addEventListener('message', (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      switch (message.type) {
        case 'connection_ack':
          acked = true;
          this.attempt = 0;
          this.lastVariables = this.variables();
          send({ type: 'subscribe', id, payload: { query: this.query, variables: this.lastVariables } });
          this.onState('live');
          heartbeat();
          break;
        case 'next':
          if (message.id !== id) break;
          if (message.payload?.errors?.length) {
            this.onState('error', message.payload.errors[0].message);
          } else if (message.payload?.data) {
            this.onData(message.payload.data);
          }
          break;
        case 'error':
          // The subscription was refused: retrying the same one would be refused again soon,
          // so back off as after a failure.
          this.onState('error', message.payload?.[0]?.message || 'the subscription was refused');
          socket.close(4000, 'Subscription refused');
          break;
        case 'complete':
          // The server ended the feed: start again after the last cursor.
          if (message.id === id) socket.close(1000, 'Completed');
          break;
        case 'ping':
          send({ type: 'pong' });
          break;
        case 'pong':
          awaitingPong = false;
          heartbeat();
          break;
        default:
          break;
      }
    });
    socket.addEventListener('close', (e) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.clearTimers();
      if (this.stopped) return;
      if (e.code === 4403) {
        this.onState('error', 'the token was refused');
      }
      this.attempt += 1;
      const delay = Math.min(15000, 1000 * 2 ** Math.min(this.attempt - 1, 4)) * (0.75 + Math.random() * 0.5);
      this.onState('reconnecting', `retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
      later(() => this.connectNow(), delay);
    });
  }

  clearTimers() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
