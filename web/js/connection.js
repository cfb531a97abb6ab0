// The WebSocket transport of the Parley protocol (PROTOCOL.md §3, §5, §7):
//   - one connection at a time to /v1/ws, `auth` first, then the replay, then `synced`;
//   - request ids and replies (`request`), fire-and-forget frames (`notify`);
//   - the heartbeat (`{"op":"ping"}` every heartbeat_ms) and a liveness probe;
//   - reconnection with exponential backoff and jitter; 4001 ends the session;
//   - a client-side token bucket below the server's rate limit, and transparent retry of
//     `rate_limited` answers (a refused frame "does nothing", so a retry is always safe).
//
// States: 'idle' (not started / stopped), 'connecting' (socket opening or auth in flight),
// 'syncing' (authenticated, replay in progress), 'ready' (after `synced`), 'waiting' (backoff
// before the next attempt), 'unauthenticated' (4001: the token is dead; no more attempts).

export class ProtocolError extends Error {
  constructor(code, message, retryMs) {
    super(message || code);
    this.name = 'ProtocolError';
    this.code = code;
    this.retryMs = retryMs;
  }
}

/** The request may or may not have reached the server; the connection ended first. */
export class DisconnectedError extends Error {
  constructor(message = 'not connected') {
    super(message);
    this.name = 'DisconnectedError';
    this.code = 'disconnected';
  }
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const REQUEST_TIMEOUT_MS = 20000;
const PROBE_EVERY_MS = 30000;
const PROBE_TIMEOUT_MS = 10000;
// The server's bucket is 100 frames, refilled at 20/s; stay below it.
const BUCKET_SIZE = 80;
const BUCKET_PER_SEC = 16;

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.url  ws:// or wss:// URL of /v1/ws
   * @param {() => string} o.token
   * @param {(ev: object) => void} o.onEvent  every server event (`{"ev": ...}`), `synced` included
   * @param {(state: string, info: object) => void} o.onState
   * @param {(info: object) => void} o.onAuth  the `auth` result, before the replay
   */
  constructor({ url, token, onEvent, onState, onAuth }) {
    this.url = url;
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onAuth = onAuth;
    this.state = 'idle';
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();     // id -> {op, args, resolve, reject, timer}
    this.waiters = [];            // requests made while not connected, with wait: true
    this.attempt = 0;
    this.retryTimer = null;
    this.retryAt = 0;
    this.heartbeatTimer = null;
    this.probeTimer = null;
    this.heartbeatMs = 5000;
    this.lastRecv = 0;
    this.tokens = BUCKET_SIZE;
    this.tokensAt = performance.now();
    this.outQueue = [];           // frames waiting for a rate token
    this.drainTimer = null;
    this.lastClose = null;
    this._online = () => { if (this.state === 'waiting') this.reconnectNow(); else this.probe(); };
    this._visible = () => {
      if (document.visibilityState === 'visible' && this.state === 'waiting') this.reconnectNow();
    };
  }

  start() {
    if (this.state !== 'idle') return;
    window.addEventListener('online', this._online);
    document.addEventListener('visibilitychange', this._visible);
    this._connect();
  }

  stop() {
    window.removeEventListener('online', this._online);
    document.removeEventListener('visibilitychange', this._visible);
    clearTimeout(this.retryTimer);
    this._teardown(new DisconnectedError('stopped'), 1000);
    for (const w of this.waiters.splice(0)) w.reject(new DisconnectedError('stopped'));
    this._setState('idle');
  }

  /** Skip the backoff wait and try now. */
  reconnectNow() {
    if (this.state !== 'waiting') return;
    clearTimeout(this.retryTimer);
    this._connect();
  }

  get connected() { return this.state === 'syncing' || this.state === 'ready'; }

  /**
   * Send a request with an id and resolve with its `ok` result; reject with ProtocolError
   * for an `err`, DisconnectedError if the connection ends first (the request may have been
   * done). With wait: true (default) a request made while disconnected waits for the next
   * authenticated connection; with wait: false it fails at once.
   */
  request(op, args = {}, { wait = true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const job = { op, args, resolve, reject, timeoutMs };
      if (this.connected) this._sendRequest(job);
      else if (wait && this.state !== 'unauthenticated') this.waiters.push(job);
      else reject(new DisconnectedError());
    });
  }

  /** A request without id: no success reply. Dropped (false) when not connected. */
  notify(op, args = {}) {
    if (!this.connected) return false;
    this._sendFrame({ op, ...args });
    return true;
  }

  /** Send a ping with an id; no answer within PROBE_TIMEOUT_MS means the connection is dead. */
  probe() {
    if (!this.connected) return;
    this.request('ping', {}, { wait: false, timeoutMs: PROBE_TIMEOUT_MS }).catch(() => {});
  }

  // ------------------------------------------------------------------ internals

  _setState(state, info = {}) {
    this.state = state;
    this.onState?.(state, info);
  }

  _connect() {
    this._setState('connecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this._scheduleRetry(1006);
      return;
    }
    this.ws = ws;
    this.tokens = BUCKET_SIZE;
    this.tokensAt = performance.now();
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastRecv = performance.now();
      const id = this.nextId++;
      const timer = setTimeout(() => this._drop(4000, 'auth timeout'), REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        op: 'auth', timer,
        resolve: (ok) => this._authed(ok),
        reject: () => {},   // the server closes with 4001 (or 1013) after an auth error
      });
      this._sendFrame({ op: 'auth', id, token: this.token() }, true);
    };
    ws.onmessage = (e) => { if (ws === this.ws) this._onFrame(e.data); };
    ws.onclose = (e) => { if (ws === this.ws) this._closed(e.code, e.reason); };
    ws.onerror = () => {};   // onclose follows
  }

  _authed(ok) {
    this.heartbeatMs = Math.max(250, Number(ok.heartbeat_ms) || 5000);
    this._setState('syncing', ok);
    this.onAuth?.(ok);
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this._sendFrame({ op: 'ping' }), this.heartbeatMs);
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => {
      if (performance.now() - this.lastRecv > PROBE_EVERY_MS - 1000) this.probe();
    }, PROBE_EVERY_MS);
    for (const job of this.waiters.splice(0)) this._sendRequest(job);
  }

  _onFrame(data) {
    this.lastRecv = performance.now();
    let m;
    try { m = JSON.parse(data); } catch { return; }
    if (!m || typeof m !== 'object') return;
    if ('re' in m) {
      if (m.re === null) {
        // the error of a frame sent without id (ack, read, typing, ping): nothing to resolve
        if (m.err) console.warn(`parley: server refused a frame without id: ${JSON.stringify(m.err)}`);
        return;
      }
      const p = this.pending.get(m.re);
      if (!p) return;
      this.pending.delete(m.re);
      clearTimeout(p.timer);
      if (m.err) {
        const err = new ProtocolError(m.err.code, m.err.message, m.err.retry_ms);
        if (err.code === 'rate_limited' && p.job) {
          // refused and not done: send it again once a token is back
          setTimeout(() => {
            if (this.connected) this._sendRequest(p.job);
            else p.reject(new DisconnectedError());
          }, Math.max(50, Number(err.retryMs) || 500));
          return;
        }
        p.reject(err);
      } else {
        p.resolve(m.ok ?? {});
      }
      return;
    }
    if (typeof m.ev === 'string') {
      if (m.ev === 'synced') {
        this.attempt = 0;
        this._setState('ready');
      }
      try { this.onEvent?.(m); } catch (e) { console.error('parley: event handler failed', e); }
    }
  }

  _sendRequest(job) {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      // a reply always comes on a healthy connection: this one is dead
      this.pending.delete(id);
      job.reject(new DisconnectedError('request timed out'));
      this._drop(4000, 'request timeout');
    }, job.timeoutMs + this._queueDelayMs());
    this.pending.set(id, { op: job.op, job, resolve: job.resolve, reject: job.reject, timer });
    this._sendFrame({ op: job.op, id, ...job.args });
  }

  _queueDelayMs() { return (this.outQueue.length / BUCKET_PER_SEC) * 1000; }

  _refill() {
    const now = performance.now();
    this.tokens = Math.min(BUCKET_SIZE, this.tokens + ((now - this.tokensAt) / 1000) * BUCKET_PER_SEC);
    this.tokensAt = now;
  }

  _sendFrame(obj, first = false) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (!first && this.outQueue.length) { this.outQueue.push(obj); return; }
    this._refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.ws.send(JSON.stringify(obj));
    } else {
      this.outQueue.push(obj);
      this._scheduleDrain();
    }
  }

  _scheduleDrain() {
    if (this.drainTimer) return;
    const wait = Math.ceil(((1 - this.tokens) / BUCKET_PER_SEC) * 1000) + 5;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) { this.outQueue = []; return; }
      this._refill();
      while (this.outQueue.length && this.tokens >= 1) {
        this.tokens -= 1;
        this.ws.send(JSON.stringify(this.outQueue.shift()));
      }
      if (this.outQueue.length) this._scheduleDrain();
    }, wait);
  }

  /** Forget the current socket: reject in-flight requests, stop timers, close it. */
  _teardown(err, code = 4000, reason = '') {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.probeTimer);
    clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.outQueue = [];
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(code, reason); } catch { /* already closed */ }
    }
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Close a connection we consider dead, and reconnect. */
  _drop(code, reason) {
    if (!this.ws) return;
    this._teardown(new DisconnectedError(reason), code, reason);
    this._scheduleRetry(1006);
  }

  _closed(code, reason) {
    this.lastClose = { code, reason };
    this._teardown(new DisconnectedError(`connection closed (${code})`));
    if (code === 4001) {
      for (const w of this.waiters.splice(0)) w.reject(new DisconnectedError('unauthenticated'));
      this._setState('unauthenticated', { code, reason });
      return;
    }
    this._scheduleRetry(code);
  }

  _scheduleRetry(code) {
    // 1012 (restarting), 1001 (going away / silent), 1013 (overloaded, try later), network
    // errors (1006) and anything else: exponential backoff with jitter. 1013 and 1008 start
    // higher: the server asked us to slow down or refused what we did.
    const base = code === 1013 || code === 1008 ? 4 * BACKOFF_BASE_MS : BACKOFF_BASE_MS;
    const ceiling = Math.min(BACKOFF_MAX_MS, base * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryAt = Date.now() + delay;
    this._setState('waiting', { code, retryAt: this.retryAt });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }
}
