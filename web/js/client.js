// The protocol engine: turns server events into store changes and carries out the client's
// duties (PROTOCOL.md §3–§4):
//   - after `auth`: take the replay, then `synced`; refresh `chats`, re-subscribe presence,
//     flush the outbox, re-send a read cursor the server may have missed;
//   - drop repeats by (chat, seq); `ack` the highest contiguous seq per chat, debounced;
//   - `read` what the open, visible chat displays (the conversation view reports it);
//   - the outbox: every message gets a `cid` when composed, is kept in localStorage, sent once
//     connected and retried until answered (a retry is a `dup`, never a second message);
//   - typing (at most one `on: true` every 3 s, `on: false` when cleared or sent);
//   - presence of the 1-on-1 peers, users.get with a cache, receipts for the ticks.

import { Connection, DisconnectedError, ProtocolError } from './connection.js';
import { newCid } from './store.js';

export const TEXT_MAX_BYTES = 16384;
const HISTORY_PAGE = 50;
const ACK_DEBOUNCE_MS = 300;
const READ_DEBOUNCE_MS = 250;
const TYPING_EVERY_MS = 3000;
const SEND_RETRY_MS = 2000;

const utf8 = new TextEncoder();

export class Client {
  /**
   * @param {import('./store.js').Store} store
   * @param {{onSessionEnded: (why: string) => void, announce: (text: string) => void}} hooks
   */
  constructor(store, { onSessionEnded, announce }) {
    this.store = store;
    this.onSessionEnded = onSessionEnded;
    this.announce = announce;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.conn = new Connection({
      url: `${scheme}//${location.host}/v1/ws`,
      token: () => store.me.token,
      onEvent: (ev) => this.onEvent(ev),
      onState: (state, info) => this.onConnState(state, info),
      onAuth: (ok) => this.onAuth(ok),
    });
    this.replaying = false;
    this.ackDirty = new Set();
    this.ackTimer = null;
    this.readPending = new Map();
    this.readTimer = null;
    this.sendingChats = new Set();
    this.presenceKey = null;
    this.userQueue = new Map();     // id -> [resolve]
    this.userTimer = null;
    this.typingSent = { chat: null, at: 0 };
    this.gapFills = new Set();
    this.chatsTimer = null;
    this.tickBusy = new Set();
    this.tickAgain = new Set();
    this.historyBusy = new Map();   // chat -> promise
    this.bc = typeof BroadcastChannel === 'function'
      ? new BroadcastChannel(`parley.${store.me.user_id}`) : null;
    if (this.bc) this.bc.onmessage = (e) => this.onTabMessage(e.data);
  }

  start() {
    this.conn.start();
    // a closing tab sends what it has batched, so the next load replays less
    this._pagehide = () => { this.flushAcks(); this.flushReads(); this.stopTyping(); };
    window.addEventListener('pagehide', this._pagehide);
  }

  stop() {
    clearTimeout(this.ackTimer);
    clearTimeout(this.readTimer);
    clearTimeout(this.chatsTimer);
    window.removeEventListener('pagehide', this._pagehide);
    this.conn.stop();
    this.bc?.close();
    this.store.outbox.dispose();
  }

  get me() { return this.store.me.user_id; }

  request(op, args, opts) { return this.conn.request(op, args, opts); }

  // ================================================================= connection lifecycle

  onAuth(ok) {
    this.store.serverOffset = ok.server_time - Date.now();
    this.store.me.device_id = ok.device_id;
    this.replaying = true;
    this.presenceKey = null;              // the watch list belongs to the connection
    for (const c of this.store.chats.values()) c.ackedThisConn = 0;
  }

  onConnState(state, info) {
    this.store.conn = { state, ...info };
    this.store.emit('conn');
    if (state === 'ready') this.onReady();
    if (state === 'unauthenticated') {
      this.onSessionEnded('Your session has ended. Please sign in again.');
    }
    if (state !== 'ready' && state !== 'syncing') {
      // typing and presence are per connection: while offline we know neither
      for (const [chat, m] of this.store.typing) for (const u of [...m.keys()]) this.store.setTyping(chat, u, false);
      if (this.store.presence.size) {
        this.store.presence.clear();
        this.store.emit('presence');
      }
    }
  }

  async onReady() {
    this.replaying = false;
    this.store.synced = true;
    this.flushAcks();
    try {
      await this.refreshChats();
    } catch (e) {
      if (!(e instanceof DisconnectedError)) console.error('parley: chats failed', e);
      return;
    }
    this.flushOutbox();
    this.flushReads();
    const open = this.store.openChat;
    if (open) {
      const c = this.store.chat(open, false);
      if (c?.historyLoaded && c.member) this.catchUp(c).then(() => this.refreshTicks(open), () => {});
    }
    this.refreshLastTicks();
  }

  // ================================================================= events

  onEvent(ev) {
    switch (ev.ev) {
      case 'msg': this.onMsg(ev); break;
      case 'receipt': {
        const c = this.store.chat(ev.chat, false);
        if (c && typeof ev.seq === 'number') this.store.raiseCursor(c, ev.user, ev.kind, ev.seq);
        break;
      }
      case 'read_sync': {
        const c = this.store.chat(ev.chat, false);
        if (c && ev.seq > c.read_seq) {
          c.read_seq = ev.seq;
          if (!this.store.recountUnread(c)) this.scheduleChatsRefresh();
          this.store.emit('chats');
        }
        break;
      }
      case 'typing':
        if (ev.user !== this.me) this.store.setTyping(ev.chat, ev.user, !!ev.on);
        break;
      case 'presence':
        this.store.presence.set(ev.user_id, { online: !!ev.online, last_seen: ev.last_seen ?? null });
        this.store.emit('presence');
        break;
      case 'chat': this.onChatEvent(ev); break;
      case 'synced': break;   // the connection switches to 'ready'
      default: break;         // unknown events are ignored (the protocol may add some)
    }
  }

  onMsg(ev) {
    const { ev: _drop, ...m } = ev;
    if (typeof m.chat !== 'string' || typeof m.seq !== 'number') return;
    const store = this.store;
    const c = store.chat(m.chat);
    if (!c.known) this.scheduleChatsRefresh();
    const isNew = store.addMessage(m);
    if (isNew) {
      if (m.from === this.me && m.cid && store.outbox.has(m.cid)) store.outbox.remove(m.cid);
      if (m.kind === 'system') this.applySystem(c, m);
      else if (m.from !== this.me && m.seq > c.read_seq && !store.recountUnread(c)) c.unread += 1;
      store.setTyping(m.chat, m.from, false);
      this.resolveUsers([m.from, ...(m.system?.users || [])]);
      if (!this.replaying && m.from !== this.me && m.kind !== 'system') {
        const where = c.kind === 'group' ? ` in ${store.chatTitle(c)}` : '';
        const text = (m.text || (m.media ? 'Attachment' : '')).slice(0, 200);
        this.announce(`${store.userName(m.from)}${where}: ${text}`);
      }
    }
    this.noteReceived(c, m.seq, true);
  }

  applySystem(c, m) {
    const s = m.system || {};
    const me = this.me;
    if ((s.event === 'removed' && s.users?.includes(me)) || (s.event === 'left' && s.by === me)) {
      c.member = false;
    } else if (s.event === 'added' && s.users?.includes(me)) {
      c.member = true;
    }
    if (s.event === 'title' && typeof s.title === 'string') c.title = s.title;
    this.store.emit('chats');
  }

  onChatEvent(ev) {
    const { ev: _drop, ...chat } = ev;
    const c = this.store.upsertChat(chat);
    this.resolveUsers(c.members.map((m) => m.user_id));
    this.subscribePresence();
    if (this.store.openChat === c.chat) this.refreshTicks(c.chat);
  }

  /**
   * Tabs share the token, so they are connections of one device: the server never pushes a
   * tab the messages another tab sent, nor a `read_sync` for its reads. They tell each other.
   */
  onTabMessage(d) {
    if (d?.t === 'sent' && d.msg && typeof d.msg.seq === 'number') {
      const c = this.store.chat(d.msg.chat);
      this.store.addMessage(d.msg);
      this.advanceContig(c);
    } else if (d?.t === 'read' && typeof d.seq === 'number') {
      const c = this.store.chat(d.chat, false);
      if (c && d.seq > c.read_seq) {
        c.read_seq = d.seq;
        if (!this.store.recountUnread(c)) this.scheduleChatsRefresh();
        this.store.emit('chats');
      }
    }
  }

  // ================================================================= delivery: ack

  /** Track what this tab holds; ack the highest seq up to which it holds everything. */
  noteReceived(c, seq, pushed) {
    if (c.recvContig == null) {
      if (!pushed) return;
      // the first push of a chat is the one after the device cursor (messages this device
      // sent itself are never pushed, and count as received)
      c.recvContig = seq - 1;
    }
    this.advanceContig(c);
    if (pushed && seq > c.recvContig + 1) this.fillGap(c, seq);
    if (c.recvContig > c.ackedThisConn) {
      this.ackDirty.add(c.chat);
      // batched: one ack per chat per ACK_DEBOUNCE_MS however fast messages arrive
      if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), ACK_DEBOUNCE_MS);
    }
  }

  advanceContig(c) {
    if (c.recvContig == null) return;
    while (c.msgs.has(c.recvContig + 1)) c.recvContig++;
  }

  flushAcks() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    for (const id of [...this.ackDirty]) {
      const c = this.store.chat(id, false);
      if (!c || c.recvContig == null || c.recvContig <= c.ackedThisConn) { this.ackDirty.delete(id); continue; }
      if (!this.conn.notify('ack', { chat: id, seq: c.recvContig })) return;   // after the next auth
      c.ackedThisConn = c.recvContig;
      this.ackDirty.delete(id);
    }
  }

  /** Messages below `upto` that this tab does not hold (sent by another tab of this device). */
  async fillGap(c, upto) {
    if (this.gapFills.has(c.chat)) return;
    this.gapFills.add(c.chat);
    try {
      while (c.recvContig != null && c.recvContig + 1 < upto) {
        let r;
        try {
          r = await this.request('history', { chat: c.chat, after: c.recvContig, before: upto, limit: 100 }, { wait: false });
        } catch (e) {
          if (e instanceof DisconnectedError) return;
          r = { messages: [] };
        }
        for (const m of r.messages || []) this.addFetched(c, m);
        const before = c.recvContig;
        this.advanceContig(c);
        if (c.recvContig === before) { c.recvContig = upto - 1; this.advanceContig(c); }
      }
    } finally {
      this.gapFills.delete(c.chat);
    }
    if (c.recvContig > c.ackedThisConn) { this.ackDirty.add(c.chat); this.flushAcks(); }
  }

  addFetched(c, m) {
    if (this.store.addMessage(m)) {
      if (m.from === this.me && m.cid && this.store.outbox.has(m.cid)) this.store.outbox.remove(m.cid);
      this.resolveUsers([m.from, ...(m.system?.users || []), ...(m.system?.by ? [m.system.by] : [])]);
    }
  }

  // ================================================================= history

  /** Load the newest page of a chat (once), then fill anything between it and what is held. */
  async openHistory(chatId) {
    const c = this.store.chat(chatId);
    if (c.historyLoaded || !c.member) return;
    if (this.historyBusy.has(chatId)) return this.historyBusy.get(chatId);
    const p = (async () => {
      const r = await this.request('history', { chat: chatId, limit: HISTORY_PAGE });
      const msgs = r.messages || [];
      for (const m of msgs) this.addFetched(c, m);
      c.oldestLoaded = msgs.length ? Math.min(...msgs.map((m) => m.seq)) : (c.last_seq + 1);
      while (c.oldestLoaded > 1 && c.msgs.has(c.oldestLoaded - 1)) c.oldestLoaded--;
      c.historyMore = !!r.more;
      c.historyLoaded = true;
      this.store.recountUnread(c);
      this.store.emit('messages');
      await this.catchUp(c);
    })();
    this.historyBusy.set(chatId, p);
    try { await p; } finally { this.historyBusy.delete(chatId); }
    this.refreshTicks(chatId);
  }

  /** Fetch every message missing between oldestLoaded and last_seq. */
  async catchUp(c) {
    if (!c.historyLoaded) return;
    for (let guard = 0; guard < 20; guard++) {
      let s = c.oldestLoaded;
      while (s <= c.last_seq && c.msgs.has(s)) s++;
      if (s > c.last_seq) return;
      let e = s;
      while (e <= c.last_seq && !c.msgs.has(e)) e++;
      const r = await this.request('history', { chat: c.chat, after: s - 1, before: e, limit: 100 }, { wait: false });
      const msgs = r.messages || [];
      for (const m of msgs) this.addFetched(c, m);
      this.advanceContig(c);
      if (!msgs.length) return;
    }
  }

  /** Load one page of older messages; returns how many arrived. */
  async loadOlder(chatId) {
    const c = this.store.chat(chatId);
    if (c.historyLoaded && c.oldestLoaded <= 1) c.historyMore = false;
    if (!c.historyLoaded || !c.historyMore) return 0;
    if (this.historyBusy.has(chatId)) return 0;
    const p = this.request('history', { chat: chatId, before: c.oldestLoaded, limit: HISTORY_PAGE }, { wait: false });
    this.historyBusy.set(chatId, p);
    let r;
    try { r = await p; } finally { this.historyBusy.delete(chatId); }
    const msgs = r.messages || [];
    for (const m of msgs) this.addFetched(c, m);
    if (msgs.length) c.oldestLoaded = Math.min(c.oldestLoaded, ...msgs.map((m) => m.seq));
    c.historyMore = !!r.more && msgs.length > 0;
    this.store.emit('messages');
    if (msgs.some((m) => m.from === this.me)) this.refreshTicks(chatId);
    return msgs.length;
  }

  // ================================================================= read

  /** The open, visible chat displays messages up to `seq`. */
  markRead(chatId, seq) {
    const c = this.store.chat(chatId, false);
    if (!c || !c.member || seq <= c.read_seq) return;
    c.read_seq = seq;
    c.delivered_seq = Math.max(c.delivered_seq, seq);
    if (!this.store.recountUnread(c)) c.unread = Math.max(0, Math.min(c.unread, c.last_seq - seq));
    this.bc?.postMessage({ t: 'read', chat: chatId, seq });
    this.readPending.set(chatId, seq);
    if (!this.readTimer) this.readTimer = setTimeout(() => this.flushReads(), READ_DEBOUNCE_MS);
    this.store.emit('chats');
  }

  flushReads() {
    clearTimeout(this.readTimer);
    this.readTimer = null;
    for (const [chat, seq] of [...this.readPending]) {
      if (!this.store.chat(chat, false)?.member) { this.readPending.delete(chat); continue; }
      if (!this.conn.notify('read', { chat, seq })) return;   // re-sent after the next `synced`
      this.readPending.delete(chat);
    }
  }

  // ================================================================= chats, users, presence

  async refreshChats() {
    const r = await this.request('chats', {}, { wait: false });
    const ids = new Set();
    for (const cs of r.chats || []) {
      const c = this.store.chat(cs.chat, false);
      const localRead = c ? c.read_seq : 0;
      this.store.upsertChat(cs);
      const now = this.store.chat(cs.chat);
      now.unread = cs.unread;
      if (localRead > cs.read_seq) {
        // a read of ours the server did not get (sent just before a disconnect): again
        this.readPending.set(cs.chat, localRead);
        this.store.recountUnread(now);
      }
      for (const m of cs.members || []) ids.add(m.user_id);
      if (cs.last_msg) {
        ids.add(cs.last_msg.from);
        for (const u of cs.last_msg.system?.users || []) ids.add(u);
      }
    }
    this.store.chatsLoaded = true;
    this.store.emit('chats');
    this.resolveUsers([...ids]);
    this.subscribePresence();
  }

  scheduleChatsRefresh() {
    clearTimeout(this.chatsTimer);
    this.chatsTimer = setTimeout(() => {
      if (this.conn.state === 'ready') this.refreshChats().catch(() => {});
    }, 400);
  }

  /** users.get by id, batched and cached. */
  resolveUsers(ids) {
    const want = ids.filter((id) => typeof id === 'string' && id && !this.store.users.has(id));
    if (!want.length) return Promise.resolve();
    const ps = want.map((id) => new Promise((resolve) => {
      const list = this.userQueue.get(id) || [];
      list.push(resolve);
      this.userQueue.set(id, list);
    }));
    if (!this.userTimer) {
      this.userTimer = setTimeout(() => {
        this.userTimer = null;
        const queue = this.userQueue;
        this.userQueue = new Map();
        const all = [...queue.keys()];
        for (let i = 0; i < all.length; i += 100) {
          const chunk = all.slice(i, i + 100);
          this.request('users.get', { ids: chunk }).then((r) => {
            for (const u of r.users || []) this.store.users.set(u.user_id, u);
            for (const id of chunk) if (!this.store.users.has(id)) this.store.users.set(id, { user_id: id, unknown: true });
            this.store.emit('users');
          }).catch(() => {}).finally(() => {
            for (const id of chunk) for (const res of queue.get(id) || []) res();
          });
        }
      }, 20);
    }
    return Promise.all(ps);
  }

  /** users.get by username (exact) → the users found, cached. */
  async lookupUsernames(names) {
    const out = [];
    for (let i = 0; i < names.length; i += 100) {
      const r = await this.request('users.get', { usernames: names.slice(i, i + 100) }, { wait: false });
      for (const u of r.users || []) { this.store.users.set(u.user_id, u); out.push(u); }
    }
    this.store.emit('users');
    return out;
  }

  /** Watch the peers of the 1-on-1 chats; re-sent when that set changes (and per connection). */
  subscribePresence(force = false) {
    if (!this.conn.connected || !this.store.chatsLoaded) return;
    const peers = new Set();
    for (const c of this.store.chats.values()) {
      const p = c.member ? this.store.peerOf(c) : null;
      if (p) peers.add(p);
    }
    const users = [...peers].sort().slice(0, 1024);
    const key = users.join(',');
    if (!force && key === this.presenceKey) return;
    this.presenceKey = key;
    if (!users.length) return;
    this.request('presence.sub', { users }, { wait: false }).then((r) => {
      for (const p of r.presence || []) {
        this.store.presence.set(p.user_id, { online: !!p.online, last_seen: p.last_seen ?? null });
      }
      this.store.emit('presence');
    }).catch(() => { if (this.presenceKey === key) this.presenceKey = null; });
  }

  // ================================================================= sending and the outbox

  /** Validate and queue a message; returns the outbox entry. Throws on invalid input. */
  compose(chatId, text) {
    const t = text.replace(/^\s+|\s+$/g, '');
    if (!t) throw new Error('Type a message first.');
    const bytes = utf8.encode(t).length;
    if (bytes > TEXT_MAX_BYTES) throw new Error(`This message is too long (${bytes} bytes; the limit is ${TEXT_MAX_BYTES}).`);
    const entry = { cid: newCid(), chat: chatId, text: t, created: Date.now(), state: 'pending' };
    this.store.outbox.add(entry);
    this.stopTyping();
    this.flushOutbox();
    return entry;
  }

  retry(cid) {
    this.store.outbox.update(cid, { state: 'pending', error: undefined });
    this.flushOutbox();
  }

  discard(cid) { this.store.outbox.remove(cid); }

  flushOutbox() {
    if (this.conn.state !== 'ready') return;
    const chats = new Set(this.store.outbox.list().filter((e) => e.state !== 'failed').map((e) => e.chat));
    for (const chat of chats) if (!this.sendingChats.has(chat)) this.sendChain(chat);
  }

  /** Send one chat's entries in order, one at a time, so they keep their order in the chat. */
  async sendChain(chat) {
    this.sendingChats.add(chat);
    try {
      for (;;) {
        if (this.conn.state !== 'ready') return;
        const e = this.store.outbox.forChat(chat).find((x) => x.state !== 'failed');
        if (!e) return;
        let r;
        try {
          r = await this.request('send', this.sendArgs(e), { wait: false });
        } catch (err) {
          if (err instanceof DisconnectedError) return;       // again after the next `synced`
          if (err instanceof ProtocolError && (err.code === 'unavailable' || err.code === 'internal')) {
            await new Promise((res) => setTimeout(res, SEND_RETRY_MS));   // nothing was stored
            continue;
          }
          // forbidden (not a member), bad_request, too_large, conflict: retrying cannot help
          this.store.outbox.update(e.cid, { state: 'failed', error: err.message || String(err) });
          continue;
        }
        this.onSent(e, r);
      }
    } finally {
      this.sendingChats.delete(chat);
    }
  }

  sendArgs(e) {
    const a = { chat: e.chat, cid: e.cid };
    if (e.text) a.text = e.text;
    if (e.media) a.media = e.media;          // once uploads exist: {media_id, mime, size, name?}
    if (e.reply_to) a.reply_to = e.reply_to;
    return a;
  }

  onSent(e, r) {
    const m = { chat: e.chat, seq: r.seq, ts: r.ts, from: this.me, cid: e.cid, kind: e.media ? 'media' : 'text' };
    if (e.text) m.text = e.text;
    if (e.media) m.media = e.media;
    if (e.reply_to) m.reply_to = e.reply_to;
    const c = this.store.chat(e.chat);
    this.store.addMessage(m);
    this.store.outbox.remove(e.cid);
    this.advanceContig(c);
    this.bc?.postMessage({ t: 'sent', msg: m });
    this.store.emit('messages');
  }

  // ================================================================= typing

  typingInput(chatId, text) {
    const c = this.store.chat(chatId, false);
    if (!c?.member || !text.trim()) { this.stopTyping(); return; }
    if (this.typingSent.chat && this.typingSent.chat !== chatId) this.stopTyping();
    const now = Date.now();
    if (this.typingSent.chat !== chatId || now - this.typingSent.at >= TYPING_EVERY_MS) {
      if (this.conn.notify('typing', { chat: chatId, on: true })) this.typingSent = { chat: chatId, at: now };
    }
  }

  stopTyping() {
    if (!this.typingSent.chat) return;
    this.conn.notify('typing', { chat: this.typingSent.chat, on: false });
    this.typingSent = { chat: null, at: 0 };
  }

  // ================================================================= chats and groups

  async startDirect(username) {
    const [u] = await this.lookupUsernames([username]);
    if (!u) throw new Error(`There is no user named “${username}”.`);
    if (u.user_id === this.me) throw new Error('That is you. Pick someone else.');
    const r = await this.request('chat.open', { peer: u.user_id }, { wait: false });
    this.store.upsertChat(r.chat);
    this.subscribePresence();
    return r.chat.chat;
  }

  async usersByName(usernames) {
    const found = await this.lookupUsernames(usernames);
    const byName = new Map(found.map((u) => [u.username, u]));
    const missing = usernames.filter((n) => !byName.has(n));
    if (missing.length) throw new Error(`No such user: ${missing.join(', ')}`);
    return usernames.map((n) => byName.get(n).user_id);
  }

  async createGroup(title, usernames) {
    const ids = usernames.length ? await this.usersByName(usernames) : [];
    const r = await this.request('group.create', { title, members: ids.filter((id) => id !== this.me) }, { wait: false });
    this.store.upsertChat(r.chat);
    return r.chat.chat;
  }

  async groupAdd(chat, usernames) {
    const ids = await this.usersByName(usernames);
    const r = await this.request('group.add', { chat, users: ids }, { wait: false });
    this.store.upsertChat(r.chat);
  }

  async groupRemove(chat, userId) {
    const r = await this.request('group.remove', { chat, users: [userId] }, { wait: false });
    this.store.upsertChat(r.chat);
  }

  async groupRename(chat, title) {
    const r = await this.request('group.update', { chat, title }, { wait: false });
    this.store.upsertChat(r.chat);
  }

  async groupSetAdmin(chat, userId, admin) {
    const args = admin ? { chat, admins_add: [userId] } : { chat, admins_remove: [userId] };
    const r = await this.request('group.update', args, { wait: false });
    this.store.upsertChat(r.chat);
  }

  async groupLeave(chat) {
    await this.request('group.leave', { chat }, { wait: false });
    const c = this.store.chat(chat);
    c.member = false;
    this.store.emit('chats');
  }

  // ================================================================= receipts and ticks

  async receipts(chat, seq) {
    const r = await this.request('receipts', { chat, seq }, { wait: false });
    const c = this.store.chat(chat);
    for (const u of r.read || []) this.store.raiseCursor(c, u, 'read', seq);
    for (const u of r.delivered || []) this.store.raiseCursor(c, u, 'delivered', seq);
    return r;
  }

  /**
   * Learn the other members' cursors for the ticks of my loaded messages. Cursors only move
   * forward and "reaches seq" is monotone, so a binary search over my messages' seqs finds
   * the read and the delivered boundaries with a few `receipts` calls (one when all is read).
   */
  async refreshTicks(chatId) {
    const c = this.store.chat(chatId, false);
    if (!c || !c.member || !this.conn.connected) return;
    if (this.tickBusy.has(chatId)) { this.tickAgain.add(chatId); return; }
    this.tickBusy.add(chatId);
    try {
      const others = this.store.otherMembers(c);
      const mine = [...c.msgs.values()]
        .filter((m) => m.from === this.me && m.kind !== 'system')
        .map((m) => m.seq).sort((a, b) => a - b);
      if (!others.length || !mine.length) return;
      const probed = new Set();
      const reach = (seq, kind) => others.every((u) => (c.cursors.get(u)?.[kind] ?? 0) >= seq);
      const test = async (seq, kind) => {
        if (reach(seq, kind)) return true;
        if (probed.has(seq)) return false;
        probed.add(seq);
        await this.receipts(chatId, seq);
        return reach(seq, kind);
      };
      for (const kind of ['read', 'delivered']) {
        if (await test(mine[mine.length - 1], kind)) continue;
        let lo = 0;
        let hi = mine.length - 2;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if (await test(mine[mid], kind)) lo = mid + 1;
          else hi = mid - 1;
        }
      }
    } catch (e) {
      if (!(e instanceof DisconnectedError) && !(e instanceof ProtocolError)) console.error(e);
    } finally {
      this.tickBusy.delete(chatId);
      if (this.tickAgain.delete(chatId)) this.refreshTicks(chatId);
    }
  }

  /** The ticks of the chat list's previews: one `receipts` per chat whose last message is mine. */
  refreshLastTicks() {
    const chats = [...this.store.chats.values()]
      .filter((c) => c.member && c.last_msg && c.last_msg.from === this.me && c.last_msg.kind !== 'system')
      .sort((a, b) => this.store.activity(b) - this.store.activity(a))
      .slice(0, 30);
    for (const c of chats) {
      if (this.store.tickOf(c, c.last_msg) !== 'read') this.receipts(c.chat, c.last_msg.seq).catch(() => {});
    }
  }
}
