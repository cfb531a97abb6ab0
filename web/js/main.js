// Entry point: the login screen, or the app when a session is stored (a reload keeps it).
// Logging out, or a dead token (close 4001), reloads the page onto the login screen, so no
// state of the previous session survives in memory.

import * as api from './api.js';
import { Client } from './client.js';
import { Store, session } from './store.js';
import { $ } from './ui/dom.js';
import { initLogin } from './ui/login.js';
import { initApp } from './ui/app.js';

const NOTICE_KEY = 'parley.notice';

function announce(text) {
  const el = $('#announcer');
  el.textContent = '';
  // a fresh text node in a new task is announced reliably
  setTimeout(() => { el.textContent = text; }, 50);
}

function endSession(notice) {
  session.clear();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

function startApp(s) {
  const store = new Store(s);
  const client = new Client(store, {
    onSessionEnded: (why) => endSession(why),
    announce,
  });
  const app = initApp({
    store,
    client,
    onLogout: async () => {
      const pending = store.outbox.list().length;
      if (pending && !window.confirm(`${pending} message${pending === 1 ? ' has' : 's have'} not been sent yet and will be lost. Log out anyway?`)) return;
      client.stop();
      try { await api.logout(s.token); } catch { /* a dead token is logged out already */ }
      store.outbox.clear();
      await client.blobs.clear();   // the files of unsent attachments go with their entries
      endSession('');
    },
  });
  app.show();
  client.start();
  window.parley = { store, client };   // for debugging and the browser tests
}

function boot() {
  // a logout in another tab ends this one too
  window.addEventListener('storage', (e) => {
    if (e.key === session.key && !e.newValue) location.reload();
    if (e.key === session.key && e.newValue && !window.parley) location.reload();
  });
  const s = session.load();
  if (s) {
    startApp(s);
    return;
  }
  const login = initLogin({
    onLoggedIn(newSession) {
      session.save(newSession);
      login.hide();
      startApp(newSession);
    },
  });
  const notice = sessionStorage.getItem(NOTICE_KEY) || '';
  sessionStorage.removeItem(NOTICE_KEY);
  login.show(notice);
}

boot();
