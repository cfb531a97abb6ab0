// The chat list: every chat, most recent activity first, with unread badge, preview, time,
// ticks of my last message, "typing…" and the peer's online dot. Items are kept per chat and
// updated in place, so focus and scroll position survive live updates.

import { $, h, fill } from './dom.js';
import { avatar, listTime, preview, tickIcon, joinNames } from './format.js';
import { messageLine } from '../media.js';

export function initChatList({ store, onOpen }) {
  const list = $('#chat-list');
  const empty = $('#chat-list-empty');
  const search = $('#chat-search');
  const items = new Map();   // chat id -> li

  search.addEventListener('input', render);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); list.querySelector('.chat-item')?.focus(); }
    if (e.key === 'Escape' && search.value) { search.value = ''; render(); }
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
    const buttons = [...list.querySelectorAll('.chat-item')];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    const j = e.key === 'Home' ? 0 : e.key === 'End' ? buttons.length - 1
      : Math.max(0, Math.min(buttons.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)));
    if (j === i - 1 && i === 0) { search.focus(); return; }
    buttons[j].focus();
  });

  function typingText(c) {
    const users = store.typingUsers(c.chat);
    if (!users.length) return '';
    if (c.kind === 'direct') return 'typing…';
    const names = users.map((u) => store.userName(u));
    return `${joinNames(names)} ${names.length > 1 ? 'are' : 'is'} typing…`;
  }

  function itemFor(c) {
    let li = items.get(c.chat);
    if (!li) {
      const btn = h('button', { type: 'button', class: 'chat-item', onclick: () => onOpen(c.chat) });
      li = h('li', { class: 'chat-li', dataset: { chat: c.chat } }, btn);
      items.set(c.chat, li);
    }
    const btn = li.firstChild;
    const title = store.chatTitle(c);
    const peer = store.peerOf(c);
    const online = !!(peer && store.presence.get(peer)?.online);
    const pending = store.outbox.forChat(c.chat);
    const lastPending = pending[pending.length - 1];
    const now = store.now();
    const typing = typingText(c);

    let previewNodes;
    let previewText;
    let time;
    if (typing) {
      previewNodes = [h('span', { class: 'typing-text' }, typing)];
      previewText = typing;
      time = c.last_msg?.ts;
    } else if (lastPending) {
      const text = messageLine({ text: lastPending.text, media: lastPending.media || lastPending.upload });
      previewNodes = [tickIcon(lastPending.state === 'failed' ? 'failed' : 'pending'), h('span', { class: 'preview-text' }, text)];
      previewText = text;
      time = lastPending.created + store.serverOffset;
    } else if (c.last_msg) {
      const m = c.last_msg;
      const mine = m.from === store.me.user_id && m.kind !== 'system';
      const text = preview(store, c, m);
      previewNodes = [mine ? tickIcon(store.tickOf(c, m)) : null, h('span', { class: ['preview-text', m.kind === 'system' && 'preview-system'] }, text)];
      previewText = text;
      time = m.ts;
    } else {
      const text = c.kind === 'group' ? 'No messages yet' : 'Say hello 👋';
      previewNodes = [h('span', { class: 'preview-text preview-system' }, text)];
      previewText = text;
      time = c.created;
    }
    if (!c.member) {
      previewNodes = [h('span', { class: 'preview-text preview-system' }, c.kind === 'group' ? 'You are no longer a member' : previewText)];
    }
    const unread = c.member ? c.unread : 0;

    btn.setAttribute('aria-label', `${title}${online ? ', online' : ''}. ${unread ? `${unread} unread. ` : ''}${previewText}`);
    if (store.openChat === c.chat) btn.setAttribute('aria-current', 'true');
    else btn.removeAttribute('aria-current');
    fill(btn,
      avatar(title, peer || c.chat, { group: c.kind === 'group', online }),
      h('span', { class: 'chat-main' },
        h('span', { class: 'chat-row' },
          h('span', { class: 'chat-title' }, title),
          h('span', { class: ['chat-time', unread && 'has-unread'] }, listTime(time, now))),
        h('span', { class: 'chat-row' },
          h('span', { class: ['chat-preview', typing && 'is-typing'] }, previewNodes),
          unread ? h('span', { class: 'badge' }, unread > 999 ? '999+' : String(unread)) : null)));
    return li;
  }

  function render() {
    const q = search.value.trim().toLowerCase();
    const chats = [...store.chats.values()]
      .filter((c) => c.known)
      .sort((a, b) => store.activity(b) - store.activity(a) || (a.chat < b.chat ? -1 : 1));
    const shown = q ? chats.filter((c) => store.chatTitle(c).toLowerCase().includes(q)) : chats;
    const want = shown.map(itemFor);
    // reorder only what moved, so a focused item keeps its focus
    want.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
    while (list.children.length > want.length) list.lastChild.remove();
    for (const [id, li] of items) if (!store.chats.has(id)) { li.remove(); items.delete(id); }
    empty.hidden = shown.length > 0 || !store.chatsLoaded;
    empty.textContent = q ? 'No chat matches your search.' : 'No chats yet. Start one with the buttons above.';
  }

  return { render };
}
