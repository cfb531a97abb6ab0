// The sign-in / create-account screen.

import * as api from '../api.js';
import { $ } from './dom.js';

const USERNAME_RE = /^[a-z0-9_.]{3,32}$/;

export function initLogin({ onLoggedIn }) {
  const view = $('#login-view');
  const form = $('#login-form');
  const tabLogin = $('#tab-login');
  const tabRegister = $('#tab-register');
  const username = $('#login-username');
  const display = $('#login-display');
  const password = $('#login-password');
  const error = $('#login-error');
  const submit = $('#login-submit');
  let mode = 'login';

  function setMode(m, focus = false) {
    mode = m;
    const reg = m === 'register';
    tabLogin.setAttribute('aria-selected', String(!reg));
    tabRegister.setAttribute('aria-selected', String(reg));
    tabLogin.tabIndex = reg ? -1 : 0;
    tabRegister.tabIndex = reg ? 0 : -1;
    form.setAttribute('aria-labelledby', reg ? 'tab-register' : 'tab-login');
    for (const el of form.querySelectorAll('.register-only')) el.hidden = !reg;
    password.autocomplete = reg ? 'new-password' : 'current-password';
    submit.textContent = reg ? 'Create account' : 'Sign in';
    error.textContent = '';
    if (focus) (reg ? tabRegister : tabLogin).focus();
  }

  tabLogin.addEventListener('click', () => setMode('login'));
  tabRegister.addEventListener('click', () => setMode('register'));
  for (const t of [tabLogin, tabRegister]) {
    t.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        e.preventDefault();
        setMode(mode === 'login' ? 'register' : 'login', true);
      }
    });
  }
  username.addEventListener('input', () => {
    // usernames are lowercase; help people who type "Alice"
    const v = username.value;
    if (v !== v.toLowerCase()) username.value = v.toLowerCase();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const u = username.value.trim();
    const p = password.value;
    const d = display.value.trim();
    if (!USERNAME_RE.test(u)) { fail('A username has 3 to 32 characters: a–z, 0–9, “_” or “.”.', username); return; }
    if (new TextEncoder().encode(p).length < 8) { fail('The password needs at least 8 characters.', password); return; }
    if (mode === 'register' && [...d].length > 64) { fail('The display name is too long (at most 64 characters).', display); return; }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      if (mode === 'register') {
        try {
          await api.register(u, p, d || undefined);
        } catch (err) {
          if (err.status === 409) { fail('That username is taken. Try another one.', username); return; }
          throw err;
        }
      }
      const s = await api.login(u, p, api.deviceName());
      password.value = '';
      onLoggedIn({ token: s.token, user_id: s.user_id, device_id: s.device_id, username: u });
    } catch (err) {
      if (err.status === 401) fail('Wrong username or password.', password);
      else if (err.status === 429) fail('Too many failed attempts. Wait a minute and try again.');
      else fail(err.message || 'Something went wrong. Try again.');
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });

  function fail(msg, field) {
    error.textContent = msg;
    if (field) field.focus();
  }

  return {
    show(message = '') {
      view.hidden = false;
      setMode('login');
      error.textContent = message;
      (username.value ? password : username).focus();
    },
    hide() { view.hidden = true; },
  };
}
