// The protocol engine: turns server events into store changes and carries out the client's
// duties (PROTOCOL.md §3–§4):
//   - after `auth`: take the replay, then `synced`; refresh `chats`, re-subscribe presence,
//     flush the outbox, re-send a read cursor the server may have missed;
//   - drop repeats by (chat, seq); `ack` the highest contiguous seq per chat, debounced;
//   - `read` what the open, visible chat displays (the conversation view reports it);
//   - the outbox: every message gets a `cid` when composed, is kept in localStorage, sent once
//     connected and retried until answered (a retry is a `dup`, never a second message);
//   - attachments: the file is uploaded (POST /v1/media) before its message is sent; the
//     `media` reference is stored in the outbox entry first, so the `send` that follows (and
//     any retry of it) carries the same cid and the same media;
//   - signed media URLs (`media.url`) for <img>/<video>/<audio> and downloads, cached until
//     shortly before they expire;
//   - typing (at most one `on: true` every 3 s, `on: false` when cleared or sent);
//   - presence of the 1-on-1 peers, users.get with a cache, receipts for the ticks.

import * as api from './api.js';
import { BlobStore } from './blobs.js';
import { Connection, DisconnectedError, ProtocolError } from './connection.js';
import { clipName, messageLine, uploadFailure } from './media.js';
import { newCid } from './store.js';

export const TEXT_MAX_BYTES = 16384;
const HISTORY_PAGE = 50;
const ACK_DEBOUNCE_MS = 300;
const READ_DEBOUNCE_MS = 250;
const TYPING_EVERY_MS = 3000;
const SEND_RETRY_MS = 2000;
// waits between automatic attempts of an interrupted upload; after the last, it is failed
// (with Retry), so a server that keeps dropping a large upload is not sent it forever
const UPLOAD_RETRY_MS = [1000, 3000, 10000, 30000];
// a signed URL is renewed this long before it expires (it is valid for up to an hour), or
// after three quarters of its life if that is shorter
const URL_MARGIN_MS = 5 * 60 * 1000;

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
    this.blobs = new BlobStore(store.me.user_id);
    this.files = new Map();         // cid -> the File of an attachment not sent yet (in memory)
    this.attachmentCids = new Set(store.outbox.list().filter((e) => e.upload).map((e) => e.cid));
    this.uploads = new Map();       // cid -> {loaded, total, retrying, abort, cancelled}
    this.localMedia = new Map();    // media_id -> File this tab uploaded (shown without a download)
    this.mediaUrls = new Map();     // media_id -> {url, renewAt} or {promise}
    this.readyWaiters = [];         // resolved at the next `synced` (uploads waiting for the network)
    this.bc = typeof BroadcastChannel === 'function'
      ? new BroadcastChannel(`parley.${store.me.user_id}`) : null;
    if (this.bc) this.bc.onmessage = (e) => this.onTabMessage(e.data);
  }

  start() {
    this.conn.start();
    // a closing tab sends what it has batched, so the next load replays less
    this._pagehide = () => { this.flushAcks(); this.flushReads(); this.stopTyping(); };
    window.addEventListener('pagehide', this._pagehide);
    // attachments left by a reload or a closed tab: upload them again from their stored file
    this.resumeUploads(true);
    this.blobs.sweep(new Set(this.store.outbox.list().map((e) => e.cid)));
    this._unsubscribe = this.store.subscribe((topics) => { if (topics.has('outbox')) this.onOutboxChange(); });
  }

  stop() {
    clearTimeout(this.ackTimer);
    clearTimeout(this.readTimer);
    clearTimeout(this.chatsTimer);
    window.removeEventListener('pagehide', this._pagehide);
    this._unsubscribe?.();
    for (const job of this.uploads.values()) { job.cancelled = true; job.abort?.(); }
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
    for (const res of this.readyWaiters.splice(0)) res();
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
        const text = messageLine(m).slice(0, 200);
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

  /**
   * Queue one message per file (the caption, if any, goes with the first), each with its own
   * cid. The entries are in the outbox at once, so they keep their place among the messages
   * written after them; each is sent when its upload is done. Throws on an invalid caption.
   */
  composeMedia(chatId, files, caption = '') {
    const t = caption.replace(/^\s+|\s+$/g, '');
    const bytes = utf8.encode(t).length;
    if (bytes > TEXT_MAX_BYTES) throw new Error(`This caption is too long (${bytes} bytes; the limit is ${TEXT_MAX_BYTES}).`);
    if (!files.length) throw new Error('Choose a file first.');
    const entries = [];
    files.forEach((file, i) => {
      const upload = { mime: file.type || 'application/octet-stream', size: file.size };
      const name = clipName(file.name);
      if (name) upload.name = name;
      const entry = { cid: newCid(), chat: chatId, created: Date.now(), state: 'pending', upload };
      if (i === 0 && t) entry.text = t;
      this.files.set(entry.cid, file);
      this.store.outbox.add(entry);
      entries.push(entry);
      this.runUpload(entry.cid);
      // the copy that survives a reload; an entry discarded meanwhile must not leave it behind
      this.blobs.put(entry.cid, file).then(() => {
        if (!this.store.outbox.has(entry.cid)) this.blobs.delete(entry.cid);
      });
    });
    this.stopTyping();
    return entries;
  }

  retry(cid) {
    this.store.outbox.update(cid, { state: 'pending', error: undefined });
    this.resumeUploads(true);
    this.flushOutbox();
  }

  discard(cid) {
    const job = this.uploads.get(cid);
    if (job) { job.cancelled = true; job.abort?.(); }
    this.store.outbox.remove(cid);
  }

  // ================================================================= uploads

  /** Progress of an upload running (or waiting for another tab) here: {loaded, total, retrying} or null. */
  uploadProgress(cid) {
    const j = this.uploads.get(cid);
    return j ? { loaded: j.loaded, total: j.total, retrying: j.retrying } : null;
  }

  /** The file of an unsent attachment, when this tab holds it (for a local preview). */
  localFile(cid) { return this.files.get(cid) || null; }

  onOutboxChange() {
    // the files of entries that are gone (sent, discarded, also in another tab or before a
    // reload) are dropped, from memory and from IndexedDB
    const entries = this.store.outbox.list();
    const live = new Set(entries.map((e) => e.cid));
    for (const cid of new Set([...this.files.keys(), ...this.attachmentCids])) {
      if (live.has(cid)) continue;
      this.files.delete(cid);
      this.blobs.delete(cid);
    }
    this.attachmentCids = new Set(entries.filter((e) => e.upload).map((e) => e.cid));
    // an entry added in another tab is uploaded there; with Web Locks this tab queues behind
    // it and takes over only if that tab goes away (without them it would race, so it waits
    // for its next load)
    if (navigator.locks) this.resumeUploads(false);
  }

  /** Start the upload of every attachment entry that has no `media` yet. */
  resumeUploads(force) {
    for (const e of this.store.outbox.list()) {
      if (e.upload && !e.media && e.state !== 'failed' && !this.uploads.has(e.cid)) {
        if (force || navigator.locks) this.runUpload(e.cid);
      }
    }
  }

  /**
   * One upload at a time per entry across the tabs of this device: the Web Lock named after
   * the cid is held for the whole upload; a tab that waits for it finds, once it has it,
   * either the `media` stored (nothing to do) or an entry whose uploader went away.
   */
  async runUpload(cid) {
    if (this.uploads.has(cid)) return;
    const job = { loaded: 0, total: 0, retrying: '', abort: null, cancelled: false };
    this.uploads.set(cid, job);
    this.store.emit('progress');
    try {
      if (navigator.locks) await navigator.locks.request(`parley.upload.${this.me}.${cid}`, () => this.upload(cid, job));
      else await this.upload(cid, job);
    } catch (e) {
      console.error('parley: upload', e);
    } finally {
      this.uploads.delete(cid);
      this.store.emit('progress');
    }
  }

  async upload(cid, job) {
    const entry = () => this.store.outbox.list().find((x) => x.cid === cid);
    for (let attempt = 0; ; attempt++) {
      const e = entry();
      if (!e || e.media || !e.upload || e.state === 'failed' || job.cancelled) return;
      let file = this.files.get(cid);
      if (!file) {
        file = await this.blobs.get(cid);
        if (file) this.files.set(cid, file);
      }
      if (!file) {
        this.failEntry(cid, 'The file is no longer available. Attach it again.');
        return;
      }
      const up = api.uploadMedia(this.store.me.token, file, e.upload.mime, (loaded, total) => {
        job.loaded = loaded;
        job.total = total;
        this.store.emit('progress');
      });
      job.abort = up.abort;
      let r;
      try {
        r = await up.promise;
      } catch (err) {
        if (job.cancelled) return;
        const f = uploadFailure(err);
        if (f.retry && this.conn.state !== 'ready') {
          // offline: the upload waits for the server to be reachable again, like a text
          // message does, and that wait is not one of its attempts
          job.retrying = 'Waiting for the connection…';
          job.loaded = 0;
          this.store.emit('progress');
          await new Promise((res) => this.readyWaiters.push(res));
          job.retrying = '';
          attempt--;
          continue;
        }
        if (f.retry && attempt < UPLOAD_RETRY_MS.length) {
          job.retrying = `${f.text} Trying again…`;
          job.loaded = 0;
          this.store.emit('progress');
          await new Promise((res) => setTimeout(res, UPLOAD_RETRY_MS[attempt]));
          job.retrying = '';
          continue;
        }
        this.failEntry(cid, f.text);
        return;
      } finally {
        job.abort = null;
      }
      // check, then set: without Web Locks another tab may have uploaded it meanwhile, and
      // the media its `send` carried must stay the entry's media
      const now = entry();
      if (!now || now.media) return;
      const media = { media_id: r.media_id, mime: r.mime, size: r.size };
      if (e.upload.name) media.name = e.upload.name;
      this.localMedia.set(r.media_id, file);
      this.store.outbox.update(cid, { media });
      this.flushOutbox();
      return;
    }
  }

  failEntry(cid, text) {
    if (!this.store.outbox.has(cid)) return;
    this.store.outbox.update(cid, { state: 'failed', error: text });
    this.announce(`Not sent: ${text}`);
  }

  // ================================================================= media URLs

  /**
   * A URL that loads the media without a token (PROTOCOL.md `media.url`), from the cache
   * while it has more than URL_MARGIN_MS left. `fresh` asks for a new one (e.g. after a
   * <video> failed to load the next range of an expired URL).
   */
  mediaUrl(mediaId, { fresh = false } = {}) {
    const c = this.mediaUrls.get(mediaId);
    if (c && !fresh) {
      if (c.promise) return c.promise;
      if (this.store.now() < c.renewAt) return Promise.resolve(c.url);
    }
    const p = this.request('media.url', { media_id: mediaId }).then((r) => {
      const life = Math.max(0, r.expires - this.store.now());
      this.mediaUrls.set(mediaId, { url: r.url, renewAt: r.expires - Math.min(URL_MARGIN_MS, life / 4) });
      return r.url;
    }, (e) => {
      if (this.mediaUrls.get(mediaId)?.promise === p) this.mediaUrls.delete(mediaId);
      throw e;
    });
    this.mediaUrls.set(mediaId, { promise: p });
    return p;
  }

  /** The cached URL while it is fresh, else null (a link's click handler cannot wait). */
  cachedMediaUrl(mediaId) {
    const c = this.mediaUrls.get(mediaId);
    return c?.url && this.store.now() < c.renewAt ? c.url : null;
  }

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
        // an attachment still uploading holds back what follows it, to keep the chat's order;
        // its upload calls flushOutbox when the media is stored
        if (e.upload && !e.media) return;
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
    if (e.media) a.media = e.media;          // {media_id, mime, size, name?}, as the upload answered
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
