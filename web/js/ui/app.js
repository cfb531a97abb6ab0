// The signed-in screen: sidebar (me, actions, connection banner, chat list) and the
// conversation pane; two panes on wide screens, one at a time on narrow ones.

import { $, h, fill, iconButton } from './dom.js';
import { avatar } from './format.js';
import { initChatList } from './chatlist.js';
import { initConversation } from './conversation.js';
import { chatInfoDialog, messageInfoDialog, newChatDialog, newGroupDialog } from './dialogs.js';

export function initApp({ store, client, onLogout }) {
  const view = $('#app-view');
  const banner = $('#conn-banner');
  const meEl = $('#me');
  const actions = $('#sidebar-actions');
  let bannerTimer = null;

  const openChat = (id) => {
    view.classList.add('chat-open');   // first: on a narrow screen the pane must be shown to take focus
    conversation.open(id);
    chatList.render();
  };
  const back = () => {
    view.classList.remove('chat-open');
    const id = conversation.chatId;
    conversation.close();
    chatList.render();
    if (id) document.querySelector(`.chat-li[data-chat="${CSS.escape(id)}"] .chat-item`)?.focus();
  };

  const chatList = initChatList({ store, onOpen: openChat });
  const conversation = initConversation({
    store, client, onBack: back,
    openInfo: (chatId) => chatInfoDialog({ store, client, chatId }),
    openMsgInfo: (chatId, seq) => messageInfoDialog({ store, client, chatId, seq }),
  });

  fill(actions,
    iconButton('chat', 'New chat', () => newChatDialog({ client, onOpen: openChat }), 'new-chat-btn'),
    iconButton('group', 'New group', () => newGroupDialog({ client, onOpen: openChat }), 'new-group-btn'),
    iconButton('logout', 'Log out', () => onLogout(), 'logout-btn'));

  function renderMe() {
    const u = store.users.get(store.me.user_id);
    const name = u?.display_name || store.me.username;
    fill(meEl, avatar(name, store.me.user_id), h('span', { class: 'me-text' },
      h('span', { class: 'me-name' }, name),
      h('span', { class: 'me-sub' }, `@${store.me.username}`)));
  }

  function renderBanner() {
    clearTimeout(bannerTimer);
    const { state, retryAt } = store.conn;
    let text = '';
    let cls = '';
    let retry = false;
    if (state === 'connecting') { text = store.synced ? 'Reconnecting…' : 'Connecting…'; cls = 'banner-info'; }
    else if (state === 'syncing') { text = 'Updating…'; cls = 'banner-info'; }
    else if (state === 'waiting') {
      const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      text = `Offline. Messages you write are sent when the connection is back.${s ? ` Retrying in ${s} s.` : ''}`;
      cls = 'banner-warn';
      retry = true;
      bannerTimer = setTimeout(renderBanner, 1000);
    }
    banner.hidden = !text;
    banner.className = `banner ${cls}`;
    fill(banner, h('span', {}, text), retry
      ? h('button', { type: 'button', class: 'link-btn', onclick: () => client.conn.reconnectNow() }, 'Retry now')
      : null);
  }

  // keyboard: Esc on a narrow screen goes back to the list; Alt+N new chat
  view.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && view.classList.contains('chat-open') && !document.querySelector('dialog[open]')
        && window.matchMedia('(max-width: 760px)').matches) {
      e.preventDefault();
      back();
    }
  });

  const unsubscribe = store.subscribe((topics) => {
    if (topics.has('conn')) renderBanner();
    if (topics.has('users')) renderMe();
    if (['chats', 'users', 'presence', 'typing', 'outbox', 'messages', 'ticks'].some((t) => topics.has(t))) chatList.render();
    if (topics.has('chats')) {
      let unread = 0;
      for (const c of store.chats.values()) if (c.known && c.member) unread += c.unread;
      document.title = unread ? `(${unread}) Parley` : 'Parley';
    }
    conversation.update(topics);
  });

  // time labels ("today", "last seen …") age: refresh them once a minute
  const tick = setInterval(() => store.emit('chats'), 60000);

  return {
    show() {
      view.hidden = false;
      renderMe();
      renderBanner();
      chatList.render();
      client.resolveUsers([store.me.user_id]);
    },
    destroy() {
      unsubscribe();
      clearInterval(tick);
      clearTimeout(bannerTimer);
      conversation.close();
      view.classList.remove('chat-open');
      view.hidden = true;
      $('#chat-list').replaceChildren();
      for (const d of document.querySelectorAll('dialog')) d.close();
    },
  };
}
