// Client state: the session, chats and their loaded messages, users, presence, typing,
// members' cursors (for ticks) and the outbox. Views read it and subscribe to changes;
// client.js (the protocol engine) writes it.

const SESSION_KEY = 'parley.session';

export const session = {
  load() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
      return s && typeof s.token === 'string' && typeof s.user_id === 'string' ? s : null;
    } catch { return null; }
  },
  save(s) { localStorage.setItem(SESSION_KEY, JSON.stringify(s)); },
  clear() { localStorage.removeItem(SESSION_KEY); },
  key: SESSION_KEY,
};

/** A random id for `cid` (crypto.randomUUID needs a secure context; this works anywhere). */
export function newCid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Messages composed but not yet acknowledged by the server, kept in localStorage so that a
 * reload, a crash or a long offline period loses nothing. Each entry keeps its `cid` for its
 * whole life: a retry of the same cid is a `dup` on the server, never a second message.
 * Entry: {cid, chat, text?, created, state: 'pending'|'failed', error?, upload?, media?}.
 * An attachment has an upload stage before `send`: `upload` = {mime, size, name?} describes the
 * file (kept in IndexedDB under the cid, blobs.js), and `media` = {media_id, mime, size, name?}
 * is written once POST /v1/media has answered; only an entry with `media` is sent, so every
 * `send` of that cid carries the same media.
 * Tabs share the token, hence the device and the outbox; the `storage` event keeps them in step.
 */
export class Outbox {
  constructor(userId, onChange) {
    this.key = `parley.outbox.${userId}`;
    this.onChange = onChange;
    this._onStorage = (e) => { if (e.key === this.key) this.onChange(); };
    window.addEventListener('storage', this._onStorage);
  }
  dispose() { window.removeEventListener('storage', this._onStorage); }
  list() {
    try {
      const v = JSON.parse(localStorage.getItem(this.key) || '[]');
      return Array.isArray(v) ? v : [];
    } catch { return []; }
  }
  _write(entries) {
    if (entries.length) localStorage.setItem(this.key, JSON.stringify(entries));
    else localStorage.removeItem(this.key);
    this.onChange();
  }
  add(entry) { this._write([...this.list(), entry]); }
  remove(cid) {
    const all = this.list();
    const left = all.filter((e) => e.cid !== cid);
    if (left.length !== all.length) this._write(left);
  }
  update(cid, patch) {
    this._write(this.list().map((e) => (e.cid === cid ? { ...e, ...patch } : e)));
  }
  has(cid) { return this.list().some((e) => e.cid === cid); }
  forChat(chat) { return this.list().filter((e) => e.chat === chat); }
  clear() { localStorage.removeItem(this.key); }
}

function newChat(id) {
  return {
    chat: id,
    kind: 'direct',
    title: undefined,
    members: [],
    last_seq: 0,
    created: 0,
    read_seq: 0,
    delivered_seq: 0,
    unread: 0,
    last_msg: null,
    known: false,          // filled from `chats`, `chat` or an op reply (not just a placeholder)
    member: true,          // false once removed or departed
    msgs: new Map(),       // seq -> MSG, every message this tab holds
    historyLoaded: false,  // the newest page was fetched
    oldestLoaded: null,    // the lowest seq of the contiguous run fetched with `history`
    historyMore: true,     // older messages exist below oldestLoaded
    cursors: new Map(),    // user id -> {delivered, read}: lower bounds from receipts
    recvContig: null,      // highest seq such that this tab holds every message up to it
    ackedThisConn: 0,      // highest seq acked on the current connection
  };
}

export class Store {
  constructor(me) {
    this.me = me;                  // {user_id, username, device_id, token}
    this.chats = new Map();
    this.users = new Map();        // id -> {user_id, username, display_name} (or {unknown: true})
    this.presence = new Map();     // id -> {online, last_seen}
    this.typing = new Map();       // chat -> Map(user id -> expiry timer)
    this.openChat = null;
    this.conn = { state: 'idle' };
    this.serverOffset = 0;         // server clock - local clock
    this.synced = false;           // at least one `synced` since the page loaded
    this.chatsLoaded = false;
    this.listeners = new Set();
    this.outbox = new Outbox(me.user_id, () => this.emit('outbox'));
    this._queued = new Set();
    this._flushScheduled = false;
  }

  // ---- change notification, batched per animation frame
  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  emit(topic) {
    this._queued.add(topic);
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    queueMicrotask(() => {
      this._flushScheduled = false;
      const topics = this._queued;
      this._queued = new Set();
      for (const fn of this.listeners) fn(topics);
    });
  }

  now() { return Date.now() + this.serverOffset; }

  chat(id, create = true) {
    let c = this.chats.get(id);
    if (!c && create) {
      c = newChat(id);
      this.chats.set(id, c);
    }
    return c;
  }

  /** Merge a CHAT (or CHAT_STATE) object. */
  upsertChat(obj) {
    const c = this.chat(obj.chat);
    c.known = true;
    c.kind = obj.kind;
    c.title = obj.title;
    c.members = Array.isArray(obj.members) ? obj.members : [];
    c.member = c.members.some((m) => m.user_id === this.me.user_id);
    c.last_seq = Math.max(c.last_seq, obj.last_seq || 0);
    c.created = obj.created || c.created;
    if ('read_seq' in obj) c.read_seq = Math.max(c.read_seq, obj.read_seq || 0);
    if ('delivered_seq' in obj) c.delivered_seq = Math.max(c.delivered_seq, obj.delivered_seq || 0);
    if ('unread' in obj) c.unread = obj.unread;
    if (obj.last_msg && (!c.last_msg || obj.last_msg.seq >= c.last_msg.seq)) c.last_msg = obj.last_msg;
    this.emit('chats');
    return c;
  }

  /** Add a message; false if it was already held (a repeat by (chat, seq)). */
  addMessage(m) {
    const c = this.chat(m.chat);
    if (c.msgs.has(m.seq)) return false;
    c.msgs.set(m.seq, m);
    if (m.seq >= c.last_seq) {
      c.last_seq = m.seq;
      c.last_msg = m;
    }
    this.emit('messages');
    this.emit('chats');
    return true;
  }

  /** Recount unread when every message above the read cursor is held; else false. */
  recountUnread(c) {
    if (c.read_seq >= c.last_seq) { c.unread = 0; return true; }
    let n = 0;
    for (let s = c.read_seq + 1; s <= c.last_seq; s++) {
      const m = c.msgs.get(s);
      if (!m) return false;
      if (m.kind !== 'system' && m.from !== this.me.user_id) n++;
    }
    c.unread = n;
    return true;
  }

  otherMembers(c) {
    return c.members.map((m) => m.user_id).filter((u) => u !== this.me.user_id);
  }

  peerOf(c) {
    if (c.kind !== 'direct') return null;
    return this.otherMembers(c)[0] || null;
  }

  isAdmin(c, userId = this.me.user_id) {
    return c.members.some((m) => m.user_id === userId && m.role === 'admin');
  }

  /** Raise a member's known cursor (receipts never go back). */
  raiseCursor(c, userId, kind, seq) {
    const cur = c.cursors.get(userId) || { delivered: 0, read: 0 };
    const before = `${cur.delivered}/${cur.read}`;
    if (kind === 'read') cur.read = Math.max(cur.read, seq);
    cur.delivered = Math.max(cur.delivered, cur.read, kind === 'delivered' ? seq : 0);
    c.cursors.set(userId, cur);
    if (`${cur.delivered}/${cur.read}` !== before) this.emit('ticks');
  }

  /**
   * The tick state of one of my messages: 'pending' | 'failed' | 'sent' | 'delivered' | 'read'.
   * Delivered/read when every other member's cursor reaches its seq (in a 1-on-1 chat, the peer's).
   */
  tickOf(c, m) {
    if (m.pending) return m.failed ? 'failed' : 'pending';
    const others = this.otherMembers(c);
    if (!others.length) return 'sent';
    let read = true;
    let delivered = true;
    for (const u of others) {
      const cur = c.cursors.get(u);
      if (!cur || cur.read < m.seq) read = false;
      if (!cur || cur.delivered < m.seq) delivered = false;
    }
    return read ? 'read' : delivered ? 'delivered' : 'sent';
  }

  /** The time of the last activity of a chat, for ordering the list. */
  activity(c) {
    let t = Math.max(c.created || 0, c.last_msg?.ts || 0);
    for (const e of this.outbox.forChat(c.chat)) t = Math.max(t, e.created + this.serverOffset);
    return t;
  }

  typingUsers(chatId) {
    const m = this.typing.get(chatId);
    return m ? [...m.keys()] : [];
  }

  setTyping(chatId, userId, on) {
    let m = this.typing.get(chatId);
    const old = m?.get(userId);
    if (old) clearTimeout(old);
    if (on) {
      if (!m) this.typing.set(chatId, (m = new Map()));
      // receivers drop `on: true` after 6 s unless renewed (PROTOCOL.md §3)
      m.set(userId, setTimeout(() => this.setTyping(chatId, userId, false), 6000));
    } else if (m) {
      m.delete(userId);
      if (!m.size) this.typing.delete(chatId);
    }
    if (on || old) this.emit('typing');
  }

  userName(id) {
    if (id === this.me.user_id) return 'You';
    const u = this.users.get(id);
    if (!u) return '…';
    if (u.unknown) return 'Unknown user';
    return u.display_name || u.username;
  }

  chatTitle(c) {
    if (c.kind === 'group') return c.title || 'Group';
    const peer = this.peerOf(c);
    if (!peer) return c.known ? 'Chat' : '…';
    return this.userName(peer);
  }
}
