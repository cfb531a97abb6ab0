// The conversation pane: header (title, presence / typing), the message list with paging
// upwards (the scroll position stays anchored while older messages load, and while images
// above the view load), the composer with attachments (button, drag and drop, paste), and
// read tracking: what the open, visible chat displays is reported to client.markRead.

import { $, h, fill, icon, iconButton } from './dom.js';
import { avatar, clock, dayLabel, fullTime, joinNames, lastSeen, systemText, tickIcon } from './format.js';
import { mediaBody, mediaWords, showUploadProgress, stagedChip, uploadStatus } from './media.js';

const NEAR_TOP_PX = 300;
const AT_BOTTOM_PX = 48;

export function initConversation({ store, client, onBack, openInfo, openMsgInfo }) {
  const emptyEl = $('#conv-empty');
  const main = $('#conv-main');
  const bar = $('#conv-bar');
  const scroller = $('#messages');
  const listEl = $('#msg-list');
  const statusEl = $('#history-status');
  const jump = $('#jump');
  const composer = $('#composer');

  let chatId = null;
  let nodes = new Map();          // key -> {li, sig}
  let stick = true;               // keep the view at the bottom
  let newBelow = 0;               // unseen new messages while scrolled up
  let lastRenderedMax = 0;
  let loadingOlder = false;
  const visibleSeqs = new Set();
  const drafts = new Map();
  const staged = new Map();       // chat -> [File]: attachments picked, not sent yet

  // ------------------------------------------------------------------ composer
  const input = h('textarea', {
    id: 'composer-input', class: 'composer-input', rows: '1', placeholder: 'Type a message',
    'aria-label': 'Message', autocomplete: 'off', enterkeyhint: 'send',
  });
  const sendBtn = iconButton('send', 'Send message', () => send(), 'send-btn');
  const composerError = h('p', { class: 'composer-error', role: 'alert' });
  const notice = h('p', { class: 'composer-notice' });
  const fileInput = h('input', { type: 'file', multiple: true, id: 'attach-input', hidden: true });
  const attachBtn = iconButton('attach', 'Attach a file', () => fileInput.click(), 'attach-btn');
  const stagedList = h('ul', { class: 'staged', 'aria-label': 'Attachments to send' });
  const row = h('div', { class: 'composer-row' }, attachBtn, input, sendBtn);
  fill(composer, composerError, stagedList, row, notice, fileInput);

  // ---- attachments: picked files wait here (per chat, like drafts) until Send; the text
  // typed meanwhile becomes the caption
  function stage(files) {
    if (!chatId || !store.chat(chatId, false)?.member || !files.length) return;
    staged.set(chatId, [...(staged.get(chatId) || []), ...files]);
    composerError.textContent = '';
    renderStaged();
    input.focus();
  }
  function unstage(file) {
    const left = (staged.get(chatId) || []).filter((f) => f !== file);
    if (left.length) staged.set(chatId, left); else staged.delete(chatId);
    renderStaged();
    input.focus();
  }
  function renderStaged() {
    const files = (chatId && staged.get(chatId)) || [];
    stagedList.hidden = !files.length;
    fill(stagedList, files.map((f) => stagedChip(f, () => unstage(f))));
    input.placeholder = files.length ? 'Add a caption' : 'Type a message';
  }
  fileInput.addEventListener('change', () => {
    stage([...fileInput.files]);
    fileInput.value = '';   // picking the same file again fires `change` again
  });
  // a pasted image (a screenshot, "copy image") is attached; pasted text stays text
  input.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (!files.length) return;
    e.preventDefault();
    stage(files);
  });
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  main.addEventListener('dragover', (e) => {
    if (!hasFiles(e) || row.hidden) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    main.classList.add('is-drop');
  });
  main.addEventListener('dragleave', (e) => {
    if (!main.contains(e.relatedTarget)) main.classList.remove('is-drop');
  });
  main.addEventListener('drop', (e) => {
    main.classList.remove('is-drop');
    if (!hasFiles(e) || row.hidden) return;
    e.preventDefault();
    stage([...e.dataTransfer.files]);
  });

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape' && window.matchMedia('(max-width: 760px)').matches) {
      onBack();
    }
  });
  input.addEventListener('input', () => {
    composerError.textContent = '';
    if (chatId) {
      drafts.set(chatId, input.value);
      client.typingInput(chatId, input.value);
    }
  });
  input.addEventListener('blur', () => { if (!input.value.trim()) client.stopTyping(); });

  function send() {
    if (!chatId) return;
    const files = staged.get(chatId) || [];
    try {
      if (files.length) client.composeMedia(chatId, files, input.value);
      else client.compose(chatId, input.value);
    } catch (e) {
      composerError.textContent = e.message;
      return;
    }
    input.value = '';
    drafts.delete(chatId);
    staged.delete(chatId);
    renderStaged();
    stick = true;
    render();
    scrollToBottom();
    input.focus();
  }

  // ------------------------------------------------------------------ scrolling, reading

  const io = new IntersectionObserver((entries) => {
    for (const en of entries) {
      const seq = Number(en.target.dataset.seq);
      if (!seq) continue;
      const shown = en.isIntersecting && (en.intersectionRatio >= 0.5
        || en.intersectionRect.height >= 0.5 * (en.rootBounds?.height || Infinity));
      if (shown) visibleSeqs.add(seq); else visibleSeqs.delete(seq);
    }
    maybeRead();
  }, { root: scroller, threshold: [0, 0.5, 1] });

  // Media change a message's height after it is shown (an image loads, a player gets its
  // metadata). At the bottom, stay there; else a message grown above the view would push
  // what is on screen down, so the scroll position takes the difference.
  const heights = new WeakMap();
  const ro = new ResizeObserver((entries) => {
    const top = scroller.getBoundingClientRect().top;
    let delta = 0;
    for (const en of entries) {
      const hgt = en.target.getBoundingClientRect().height;
      const old = heights.get(en.target);
      heights.set(en.target, hgt);
      if (old !== undefined && en.target.getBoundingClientRect().bottom <= top + 1) delta += hgt - old;
    }
    if (stick) scrollToBottom();
    else if (delta) scroller.scrollTop += delta;
  });
  function unobserve(li) { io.unobserve(li); ro.unobserve(li); }

  function paneVisible() {
    return !!chatId && !main.hidden && scroller.offsetWidth > 0 && document.visibilityState === 'visible';
  }

  function maybeRead() {
    if (!paneVisible() || !visibleSeqs.size) return;
    client.markRead(chatId, Math.max(...visibleSeqs));
  }
  document.addEventListener('visibilitychange', maybeRead);
  window.addEventListener('resize', () => { if (stick) scrollToBottom(); maybeRead(); });

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < AT_BOTTOM_PX;
  }
  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    newBelow = 0;
    updateJump();
  }
  function updateJump() {
    const show = !!chatId && !atBottom();
    jump.hidden = !show;
    fill(jump, icon('down'), newBelow ? h('span', { class: 'badge jump-badge' }, String(newBelow)) : null);
    jump.setAttribute('aria-label', newBelow ? `Scroll to the newest message (${newBelow} new)` : 'Scroll to the newest message');
  }
  jump.addEventListener('click', () => { stick = true; scrollToBottom(); input.focus(); });

  scroller.addEventListener('scroll', () => {
    stick = atBottom();
    if (stick) newBelow = 0;
    updateJump();
    if (scroller.scrollTop < NEAR_TOP_PX) loadOlder();
  }, { passive: true });

  async function loadOlder() {
    const c = chatId && store.chat(chatId, false);
    if (!c || loadingOlder || !c.historyLoaded || !c.historyMore) return;
    loadingOlder = true;
    const id = chatId;
    renderStatus();
    let n = 0;
    try {
      n = await client.loadOlder(id);
    } catch { /* offline: try again on the next scroll */ }
    loadingOlder = false;
    if (chatId !== id) return;
    render();
    if (n > 0) fillViewport();
  }

  /** Keep loading older pages while the list does not fill the pane. */
  function fillViewport() {
    const c = chatId && store.chat(chatId, false);
    if (c && c.historyMore && scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX) loadOlder();
  }

  function renderStatus() {
    const c = chatId && store.chat(chatId, false);
    let text = '';
    if (c) {
      if (!c.historyLoaded && c.member) text = 'Loading messages…';
      else if (loadingOlder) text = 'Loading earlier messages…';
      else if (c.historyLoaded && !c.historyMore) text = c.kind === 'group' ? '' : 'This is the start of your conversation.';
    }
    statusEl.textContent = text;
  }

  // ------------------------------------------------------------------ header

  function subtitle(c) {
    const typing = store.typingUsers(c.chat);
    if (typing.length) {
      if (c.kind === 'direct') return { text: 'typing…', cls: 'is-typing' };
      const names = typing.map((u) => store.userName(u));
      return { text: `${joinNames(names)} ${names.length > 1 ? 'are' : 'is'} typing…`, cls: 'is-typing' };
    }
    if (!c.member) return { text: 'You are no longer a member', cls: '' };
    if (c.kind === 'direct') {
      const p = store.presence.get(store.peerOf(c));
      return { text: lastSeen(p, store.now()), cls: p?.online ? 'is-online' : '' };
    }
    const names = c.members.map((m) => store.userName(m.user_id));
    names.sort((a, b) => (a === 'You') - (b === 'You'));
    return { text: names.join(', '), cls: '' };
  }

  function renderHeader() {
    const c = store.chat(chatId, false);
    if (!c) return;
    const title = store.chatTitle(c);
    const peer = store.peerOf(c);
    const online = !!(peer && store.presence.get(peer)?.online);
    const sub = subtitle(c);
    const infoLabel = c.kind === 'group' ? 'Group info' : 'Contact info';
    fill(bar,
      iconButton('back', 'Back to chats', onBack, 'back-btn'),
      h('button', { type: 'button', class: 'conv-title-btn', onclick: () => openInfo(chatId), 'aria-label': `${title}: ${infoLabel.toLowerCase()}` },
        avatar(title, peer || c.chat, { group: c.kind === 'group', online }),
        h('span', { class: 'conv-title-text' },
          h('span', { class: 'conv-title', id: 'conv-title' }, title),
          h('span', { class: ['conv-sub', sub.cls], id: 'conv-sub' }, sub.text))),
      h('div', { class: 'bar-actions' }, iconButton('info', infoLabel, () => openInfo(chatId))));
  }

  function renderComposer() {
    const c = store.chat(chatId, false);
    const member = !!c?.member;
    row.hidden = !member;
    stagedList.hidden = !member || !staged.get(chatId)?.length;
    notice.hidden = member;
    notice.textContent = member ? '' : (c?.kind === 'group'
      ? 'You can’t send messages to this group because you’re no longer a member.'
      : 'You can’t send messages to this chat.');
  }

  // ------------------------------------------------------------------ messages

  function items(c) {
    const me = store.me.user_id;
    const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
    const pending = store.outbox.forChat(c.chat).map((e) => ({
      pending: true, failed: e.state === 'failed', error: e.error, cid: e.cid, chat: e.chat,
      text: e.text, ts: e.created + store.serverOffset, from: me,
      // an attachment shows what is known of it: the upload's description until `media` exists
      kind: e.upload || e.media ? 'media' : 'text', media: e.media || e.upload, uploading: !!e.upload && !e.media,
    }));
    // a pending entry whose message is already held (another tab sent it) shows once
    const held = new Set(msgs.filter((m) => m.from === me).map((m) => m.cid));
    return [...msgs, ...pending.filter((p) => !held.has(p.cid))];
  }

  function keyOf(m) {
    return m.cid && m.from === store.me.user_id && m.kind !== 'system' ? `c:${m.cid}` : `s:${m.seq}`;
  }

  function messageNode(c, m, first) {
    const me = store.me.user_id;
    const now = store.now();
    if (m.kind === 'system') {
      const text = systemText(store, m);
      const sig = `sys|${text}`;
      return [sig, () => h('li', { class: 'msg msg-system', dataset: { seq: m.seq } },
        h('span', { class: 'system-text' }, text))];
    }
    const mine = m.from === me;
    const tick = mine ? store.tickOf(c, m) : '';
    const sender = c.kind === 'group' && !mine && first ? store.userName(m.from) : '';
    // the person's own file, while this tab holds it, shows without a download
    const file = m.media ? (m.pending ? client.localFile(m.cid) : client.localMedia.get(m.media.media_id)) || null : null;
    const media = m.media ? [m.media.media_id, m.media.mime, m.media.size, m.media.name, m.uploading, !!file].join('/') : '';
    const sig = [mine, tick, first, sender, m.text, m.failed && m.error, m.seq, media].join('|');
    return [sig, () => {
      const li = h('li', { class: ['msg', mine ? 'msg-out' : 'msg-in', first && 'msg-first', m.pending && 'msg-pending'] });
      if (m.seq) li.dataset.seq = m.seq;
      const body = [];
      if (sender) body.push(h('span', { class: `sender sender-c${colorIndex(m.from)}` }, sender));
      if (m.media) {
        body.push(mediaBody({ client, media: m.media, file }));
        if (m.uploading && !m.failed) body.push(uploadStatus({ cid: m.cid, onCancel: () => client.discard(m.cid) }));
      }
      if (m.text || !m.media) body.push(h('span', { class: 'text' }, m.text || ''));
      const meta = h('span', { class: 'meta' },
        h('time', { datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) }, clock(m.ts)),
        mine ? tickIcon(tick) : null);
      body.push(meta);
      const bubble = h('div', { class: ['bubble', m.media && 'bubble-media'] }, body);
      li.append(bubble);
      if (mine && m.seq && c.kind === 'group') {
        li.append(iconButton('info', 'Message info', () => openMsgInfo(c.chat, m.seq), 'msg-info-btn'));
      }
      if (m.failed) {
        li.append(h('div', { class: 'msg-failed' },
          h('span', {}, `Not sent: ${m.error || 'refused'}`),
          h('button', { type: 'button', class: 'link-btn', onclick: () => client.retry(m.cid) }, 'Retry'),
          h('button', { type: 'button', class: 'link-btn', onclick: () => client.discard(m.cid) }, 'Delete')));
      }
      const what = m.media ? `${mediaWords(m.media)}${m.text ? `, ${m.text}` : ''}` : (m.text || '');
      li.setAttribute('aria-label', `${mine ? 'You' : store.userName(m.from)} at ${clock(m.ts)}${mine ? `, ${tickWord(tick)}` : ''}: ${what}`);
      return li;
    }];
  }

  function render() {
    renderStatus();
    if (!chatId) return;
    const c = store.chat(chatId, false);
    if (!c) return;
    const wasBottom = stick;
    // anchor: the first message at least partly visible keeps its place on screen
    // (by key: the element itself may be rebuilt, e.g. when it stops being first of its run)
    let anchorKey = null;
    let anchorTop = 0;
    if (!wasBottom) {
      const top = scroller.getBoundingClientRect().top;
      for (const li of listEl.children) {
        if (!li.classList.contains('msg')) continue;   // day separators move with their day
        const r = li.getBoundingClientRect();
        if (r.bottom > top) { anchorKey = li.dataset.key; anchorTop = r.top; break; }
      }
    }

    const want = [];
    const next = new Map();
    let lastDay = null;
    let prev = null;
    const now = store.now();
    let maxSeq = 0;
    let incomingNew = 0;
    for (const m of items(c)) {
      const day = new Date(m.ts).toDateString();
      if (day !== lastDay) {
        const key = `d:${day}`;
        const label = dayLabel(m.ts, now);
        const old = nodes.get(key);
        const li = old && old.sig === label ? old.li
          : h('li', { class: 'day-sep' }, h('span', {}, label));
        next.set(key, { li, sig: label });
        want.push(li);
        lastDay = day;
        prev = null;
      }
      const first = !prev || prev.from !== m.from || prev.kind === 'system' || m.kind === 'system';
      const key = keyOf(m);
      const [sig, build] = messageNode(c, m, first);
      const old = nodes.get(key);
      let li;
      if (old && old.sig === sig) li = old.li;
      else {
        li = build();
        li.dataset.key = key;
        if (old) unobserve(old.li);
        if (li.dataset.seq) io.observe(li);
        if (m.media) ro.observe(li);
      }
      next.set(key, { li, sig });
      want.push(li);
      prev = m;
      if (m.seq) {
        if (m.seq > lastRenderedMax && lastRenderedMax && m.from !== store.me.user_id) incomingNew++;
        maxSeq = Math.max(maxSeq, m.seq);
      }
    }
    for (const [key, v] of nodes) if (!next.has(key)) { unobserve(v.li); v.li.remove(); }
    nodes = next;
    want.forEach((li, i) => { if (listEl.children[i] !== li) listEl.insertBefore(li, listEl.children[i] || null); });
    while (listEl.children.length > want.length) listEl.lastChild.remove();
    lastRenderedMax = Math.max(lastRenderedMax, maxSeq);
    renderProgress();

    if (wasBottom) scrollToBottom();
    else {
      const anchor = anchorKey && nodes.get(anchorKey)?.li;
      if (anchor) scroller.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
      newBelow += incomingNew;
      updateJump();
    }
  }

  /** Upload progress is updated in place: it changes far more often than anything else. */
  function renderProgress() {
    for (const el of listEl.querySelectorAll('.upload-status')) showUploadProgress(el, client.uploadProgress(el.dataset.upload));
  }

  // ------------------------------------------------------------------ open / close

  function open(id) {
    if (chatId === id) { input.focus(); return; }
    client.stopTyping();
    chatId = id;
    store.openChat = id;
    for (const { li } of nodes.values()) unobserve(li);
    nodes = new Map();
    listEl.replaceChildren();
    visibleSeqs.clear();
    stick = true;
    newBelow = 0;
    lastRenderedMax = 0;
    loadingOlder = false;
    composerError.textContent = '';
    emptyEl.hidden = true;
    main.hidden = false;
    input.value = drafts.get(id) || '';
    renderStaged();
    renderHeader();
    renderComposer();
    render();
    input.focus({ preventScroll: true });
    store.emit('chats');
    client.openHistory(id).then(() => {
      if (chatId !== id) return;
      render();
      fillViewport();
    }).catch((e) => {
      if (chatId === id) statusEl.textContent = e.code === 'forbidden' ? '' : 'Could not load messages.';
    });
  }

  function close() {
    client.stopTyping();
    chatId = null;
    store.openChat = null;
    for (const { li } of nodes.values()) unobserve(li);
    nodes = new Map();
    listEl.replaceChildren();
    visibleSeqs.clear();
    main.hidden = true;
    emptyEl.hidden = false;
    jump.hidden = true;
    store.emit('chats');
  }

  function update(topics) {
    if (!chatId) return;
    if (!store.chats.has(chatId)) { close(); return; }
    if (topics.has('chats') || topics.has('typing') || topics.has('presence') || topics.has('users')) {
      renderHeader();
      renderComposer();
    }
    // 'progress': upload bars, and a file read back from storage gives its bubble a preview
    if (['messages', 'outbox', 'ticks', 'users', 'chats', 'progress'].some((t) => topics.has(t))) render();
  }

  return { open, close, update, get chatId() { return chatId; }, focusInput: () => input.focus() };
}

function tickWord(t) {
  return { pending: 'waiting to send', failed: 'not sent', sent: 'sent', delivered: 'delivered', read: 'read' }[t] || '';
}

function colorIndex(id) {
  let x = 0;
  for (let i = 0; i < id.length; i++) x = (x * 31 + id.charCodeAt(i)) | 0;
  return Math.abs(x) % 8;
}
