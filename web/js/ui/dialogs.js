// Modal dialogs (native <dialog>: Esc closes, focus is trapped and given back on close):
// new 1-on-1 chat, new group, chat / group info (members, add, remove, rename, admins, leave),
// and message info (who has a group message, who read it).

import { h, fill, iconButton } from './dom.js';
import { avatar, clock, fullTime, lastSeen } from './format.js';
import { messageLine } from '../media.js';

let dialogSeq = 0;

export function friendlyError(e) {
  if (!e) return 'Something went wrong.';
  switch (e.code) {
    case 'disconnected': return 'You are offline. Try again when the connection is back.';
    case 'forbidden': return 'You are not allowed to do that (only group admins can).';
    case 'too_large': return 'That is over the limit.';
    case 'not_found': return 'Not found.';
    case 'rate_limited': return 'Slow down a little and try again.';
    case 'unavailable': return 'The server is busy. Try again in a moment.';
    default: return e.message || 'Something went wrong.';
  }
}

/** Parse "alice, bob carol" into usernames. */
export function parseUsernames(text) {
  return [...new Set(text.toLowerCase().split(/[\s,;]+/).map((s) => s.replace(/^@/, '')).filter(Boolean))];
}

/**
 * Open a modal dialog. build(body, dialog) fills it. Returns the <dialog>.
 */
export function openDialog({ title, className = '', build, onClose }) {
  const titleId = `dlg-title-${++dialogSeq}`;
  const body = h('div', { class: 'dialog-body' });
  const heading = h('h2', { id: titleId, class: 'dialog-title' }, title);
  const dlg = h('dialog', { class: ['dialog', className], 'aria-labelledby': titleId },
    h('header', { class: 'dialog-head' }, heading, iconButton('close', 'Close', () => dlg.close())),
    body);
  const restore = document.activeElement;
  dlg.addEventListener('close', () => {
    dlg.remove();
    onClose?.();
    // give focus back, unless what the dialog did put it somewhere (e.g. an opened chat)
    const active = document.activeElement;
    if (restore && restore.isConnected && (!active || active === document.body || active === restore)) restore.focus();
  });
  // a click on the backdrop closes it
  dlg.addEventListener('mousedown', (e) => {
    if (e.target !== dlg) return;
    const r = dlg.getBoundingClientRect();
    if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) dlg.close();
  });
  document.body.append(dlg);
  build(body, dlg, heading);
  dlg.showModal();
  const first = dlg.querySelector('[autofocus]') || body.querySelector('input, textarea, button');
  first?.focus();
  return dlg;
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'hint' }, hint) : null);
}

function busy(button, on) {
  button.disabled = on;
  if (on) button.setAttribute('aria-busy', 'true'); else button.removeAttribute('aria-busy');
}

// ====================================================================== new chat / new group

export function newChatDialog({ client, onOpen }) {
  openDialog({
    title: 'New chat',
    build(body, dlg) {
      const input = h('input', { name: 'username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true, autofocus: true, placeholder: 'username' });
      const err = h('p', { class: 'form-error', role: 'alert' });
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Start chat');
      const form = h('form', { class: 'dialog-form', novalidate: true },
        field('Username', input, 'The exact username of the person you want to talk to.'),
        err,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, 'Cancel'),
          submit));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const name = input.value.trim().toLowerCase().replace(/^@/, '');
        if (!name) { err.textContent = 'Enter a username.'; input.focus(); return; }
        busy(submit, true);
        err.textContent = '';
        try {
          const chat = await client.startDirect(name);
          dlg.close();
          onOpen(chat);
        } catch (ex) {
          err.textContent = friendlyError(ex);
          input.focus();
        } finally { busy(submit, false); }
      });
      body.append(form);
    },
  });
}

export function newGroupDialog({ client, onOpen }) {
  openDialog({
    title: 'New group',
    build(body, dlg) {
      const title = h('input', { name: 'title', maxlength: '100', required: true, autofocus: true, autocomplete: 'off' });
      const members = h('input', { name: 'members', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: 'alice, bob' });
      const err = h('p', { class: 'form-error', role: 'alert' });
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Create group');
      const form = h('form', { class: 'dialog-form', novalidate: true },
        field('Group name', title),
        field('Members', members, 'Usernames, separated by commas or spaces. You can add more later.'),
        err,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, 'Cancel'),
          submit));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const t = title.value.trim();
        const len = [...t].length;
        if (len < 1 || len > 100) { err.textContent = 'A group name has 1 to 100 characters.'; title.focus(); return; }
        busy(submit, true);
        err.textContent = '';
        try {
          const chat = await client.createGroup(t, parseUsernames(members.value));
          dlg.close();
          onOpen(chat);
        } catch (ex) {
          err.textContent = friendlyError(ex);
        } finally { busy(submit, false); }
      });
      body.append(form);
    },
  });
}

// ====================================================================== chat / group info

export function chatInfoDialog({ store, client, chatId }) {
  const c = store.chat(chatId, false);
  if (!c) return;
  let unsubscribe = null;
  openDialog({
    title: c.kind === 'group' ? 'Group info' : 'Contact info',
    className: 'info-dialog',
    onClose: () => unsubscribe?.(),
    build(body, dlg) {
      const state = { confirmLeave: false, error: '', renaming: false };
      const errEl = h('p', { class: 'form-error', role: 'alert' });
      const content = h('div', { class: 'info-content' });
      body.append(content, errEl);

      async function act(fn, button) {
        errEl.textContent = '';
        if (button) busy(button, true);
        try { await fn(); } catch (ex) { errEl.textContent = friendlyError(ex); } finally { if (button && button.isConnected) busy(button, false); }
      }

      function renderDirect() {
        const peer = store.peerOf(c);
        const u = store.users.get(peer);
        const name = store.chatTitle(c);
        fill(content,
          h('div', { class: 'info-hero' },
            avatar(name, peer, { size: 'xl' }),
            h('h3', { class: 'info-name' }, name),
            u?.username ? h('p', { class: 'info-sub' }, `@${u.username}`) : null,
            h('p', { class: 'info-sub' }, lastSeen(store.presence.get(peer), store.now()))));
      }

      function renderGroup() {
        const admin = c.member && store.isAdmin(c);
        const me = store.me.user_id;
        const hero = h('div', { class: 'info-hero' },
          avatar(c.title || 'Group', c.chat, { group: true, size: 'xl' }),
          h('h3', { class: 'info-name', id: 'group-info-title' }, c.title || 'Group'),
          h('p', { class: 'info-sub' }, `Group · ${c.members.length} member${c.members.length === 1 ? '' : 's'}`));

        let rename = null;
        if (admin) {
          const input = h('input', { name: 'title', maxlength: '100', value: c.title || '', 'aria-label': 'Group name', autocomplete: 'off' });
          const save = h('button', { type: 'submit', class: 'secondary' }, 'Rename');
          rename = h('form', { class: 'inline-form', novalidate: true }, input, save);
          rename.addEventListener('submit', (e) => {
            e.preventDefault();
            const t = input.value.trim();
            const len = [...t].length;
            if (len < 1 || len > 100) { errEl.textContent = 'A group name has 1 to 100 characters.'; return; }
            if (t === c.title) return;
            act(() => client.groupRename(c.chat, t), save);
          });
        }

        const members = [...c.members].sort((a, b) =>
          (b.user_id === me) - (a.user_id === me) || (b.role === 'admin') - (a.role === 'admin')
          || store.userName(a.user_id).localeCompare(store.userName(b.user_id)));
        const list = h('ul', { class: 'member-list', 'aria-label': 'Members' }, members.map((m) => {
          const name = store.userName(m.user_id);
          const u = store.users.get(m.user_id);
          const actions = [];
          if (admin && m.user_id !== me) {
            const toggle = h('button', { type: 'button', class: 'link-btn' }, m.role === 'admin' ? 'Dismiss as admin' : 'Make admin');
            toggle.addEventListener('click', () => act(() => client.groupSetAdmin(c.chat, m.user_id, m.role !== 'admin'), toggle));
            const remove = h('button', { type: 'button', class: 'link-btn danger', 'aria-label': `Remove ${name}` }, 'Remove');
            remove.addEventListener('click', () => act(() => client.groupRemove(c.chat, m.user_id), remove));
            actions.push(toggle, remove);
          }
          return h('li', { class: 'member' },
            avatar(m.user_id === me ? (u?.display_name || store.me.username) : name, m.user_id),
            h('span', { class: 'member-main' },
              h('span', { class: 'member-name' }, name === 'You' ? `You${u?.display_name ? ` (${u.display_name})` : ''}` : name),
              u?.username ? h('span', { class: 'member-sub' }, `@${u.username}`) : null),
            m.role === 'admin' ? h('span', { class: 'role-tag' }, 'Admin') : null,
            actions.length ? h('span', { class: 'member-actions' }, actions) : null);
        }));

        let add = null;
        if (admin) {
          const input = h('input', { name: 'add', placeholder: 'usernames to add', 'aria-label': 'Usernames to add', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
          const btn = h('button', { type: 'submit', class: 'secondary' }, 'Add');
          add = h('form', { class: 'inline-form', novalidate: true }, input, btn);
          add.addEventListener('submit', (e) => {
            e.preventDefault();
            const names = parseUsernames(input.value);
            if (!names.length) { errEl.textContent = 'Enter one or more usernames.'; input.focus(); return; }
            act(async () => { await client.groupAdd(c.chat, names); input.value = ''; }, btn);
          });
        }

        let leave = null;
        if (c.member) {
          if (!state.confirmLeave) {
            leave = h('button', { type: 'button', class: 'danger-btn', onclick: () => { state.confirmLeave = true; render(); content.querySelector('.confirm-leave')?.focus(); } }, 'Leave group');
          } else {
            const yes = h('button', { type: 'button', class: 'danger-btn confirm-leave' }, 'Leave');
            yes.addEventListener('click', () => act(async () => { await client.groupLeave(c.chat); dlg.close(); }, yes));
            leave = h('div', { class: 'confirm-row', role: 'group', 'aria-label': 'Confirm leaving' },
              h('span', {}, `Leave “${c.title || 'this group'}”?`),
              h('button', { type: 'button', class: 'secondary', onclick: () => { state.confirmLeave = false; render(); } }, 'Cancel'),
              yes);
          }
        } else {
          leave = h('p', { class: 'info-sub' }, 'You are no longer a member of this group.');
        }

        const focusedName = document.activeElement?.getAttribute?.('name');
        fill(content, hero,
          rename ? h('section', { class: 'info-section' }, h('h4', {}, 'Name'), rename) : null,
          h('section', { class: 'info-section' }, h('h4', {}, `${c.members.length} member${c.members.length === 1 ? '' : 's'}`), list),
          add ? h('section', { class: 'info-section' }, h('h4', {}, 'Add members'), add) : null,
          h('section', { class: 'info-section' }, leave));
        if (focusedName) content.querySelector(`[name="${focusedName}"]`)?.focus();
      }

      function render() {
        if (c.kind === 'group') renderGroup(); else renderDirect();
      }
      render();
      unsubscribe = store.subscribe((topics) => {
        // re-render on changes, unless the user is typing in one of the forms
        const typingInForm = content.contains(document.activeElement) && document.activeElement.tagName === 'INPUT' && document.activeElement.value;
        if (typingInForm) return;
        if (topics.has('chats') || topics.has('users') || topics.has('presence')) render();
      });
    },
  });
}

// ====================================================================== message info

export function messageInfoDialog({ store, client, chatId, seq }) {
  const c = store.chat(chatId, false);
  const m = c?.msgs.get(seq);
  if (!c || !m) return;
  let unsubscribe = null;
  let timer = null;
  openDialog({
    title: 'Message info',
    className: 'msg-info-dialog',
    onClose: () => { unsubscribe?.(); clearTimeout(timer); },
    build(body) {
      const quote = h('div', { class: 'info-quote' },
        h('div', { class: 'bubble bubble-out' }, h('span', { class: 'text' }, messageLine(m)),
          h('span', { class: 'meta' }, h('time', { title: fullTime(m.ts) }, clock(m.ts)))));
      const result = h('div', { class: 'receipts', 'aria-live': 'polite' }, h('p', { class: 'info-sub' }, 'Loading…'));
      body.append(quote, result);

      const section = (title, cls, ids) => h('section', { class: `info-section receipts-${cls}` },
        h('h4', {}, title, h('span', { class: 'count' }, ` (${ids.length})`)),
        ids.length
          ? h('ul', { class: 'member-list' }, ids.map((id) => h('li', { class: 'member' },
            avatar(store.userName(id), id),
            h('span', { class: 'member-main' }, h('span', { class: 'member-name' }, store.userName(id))))))
          : h('p', { class: 'info-sub' }, '—'));

      let last = null;
      async function load() {
        try {
          last = await client.receipts(chatId, seq);
          show();
        } catch (ex) {
          fill(result, h('p', { class: 'form-error' }, friendlyError(ex)));
        }
      }
      function show() {
        if (!last) return;
        {
          const r = last;
          const others = new Set(store.otherMembers(c));
          const read = (r.read || []).filter((u) => others.has(u));
          const readSet = new Set(read);
          const delivered = (r.delivered || []).filter((u) => others.has(u) && !readSet.has(u));
          const has = new Set([...read, ...delivered]);
          const waiting = [...others].filter((u) => !has.has(u));
          client.resolveUsers([...others]);
          fill(result,
            section('Read by', 'read', read),
            section('Delivered to', 'delivered', delivered),
            waiting.length ? section('Not delivered yet', 'waiting', waiting) : null);
        }
      }
      load();
      unsubscribe = store.subscribe((topics) => {
        if (topics.has('users')) show();
        if (topics.has('ticks')) { clearTimeout(timer); timer = setTimeout(load, 300); }
      });
    },
  });
}
