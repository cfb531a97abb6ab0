// A reload keeps the session and the history; paging upwards keeps the scroll anchored;
// logout goes back to the login screen and a new login finds everything again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

const N = 130;

/** Top of the message with this text, relative to the scrolling pane. */
function topOf(page, text) {
  return page.evaluate((t) => {
    const scroller = document.getElementById('messages');
    const el = [...document.querySelectorAll('#msg-list .text')].find((x) => x.textContent === t);
    return el ? el.getBoundingClientRect().top - scroller.getBoundingClientRect().top : null;
  }, text);
}

test('reload keeps the session and the history; paging keeps the scroll anchored', async () => {
  const aliceName = 'alice';
  const bobName = 'bob';
  const alice = await openPage(browser, server, { name: 'alice' });
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(alice, aliceName, 'Alice');
  await ui.register(bob, bobName, 'Bob');
  await ui.startChat(alice, bobName);
  await ui.send(alice, 'Send me the list, please');
  await ui.chatItem(bob, 'Alice').waitFor();

  // Bob's client sends N messages (through its outbox, as if typed)
  await bob.evaluate((n) => {
    const { store, client } = window.parley;
    const chat = [...store.chats.keys()][0];
    for (let i = 1; i <= n; i++) client.compose(chat, `Item ${i}`);
  }, N);
  await bob.waitForFunction(() => window.parley.store.outbox.list().length === 0, null, { timeout: 30000 });
  await ui.waitBubble(alice, `Item ${N}`);

  // reload: still signed in, the chat is there, its history loads
  await alice.reload();
  await ui.waitReady(alice);
  assert.equal(await alice.locator('#login-view').isVisible(), false, 'no login form after a reload');
  await ui.openChat(alice, 'Bob');
  await ui.waitBubble(alice, `Item ${N}`);
  assert.equal(await ui.bubbles(alice, 'Item 1').count(), 0, 'only the newest page is loaded at first');

  // scroll to the top: the older page comes in above without moving what is on screen
  for (let round = 0; round < 10; round++) {
    if (await ui.bubbles(alice, 'Send me the list, please').count()) break;
    const anchor = await alice.evaluate(() => {
      const scroller = document.getElementById('messages');
      scroller.scrollTop = 0;
      scroller.dispatchEvent(new Event('scroll'));
      const top = scroller.getBoundingClientRect().top;
      const el = [...document.querySelectorAll('#msg-list .text')].find((x) => x.getBoundingClientRect().bottom > top);
      return { text: el.textContent, top: el.getBoundingClientRect().top - top, count: document.querySelectorAll('#msg-list .msg').length };
    });
    await alice.waitForFunction((c) => document.querySelectorAll('#msg-list .msg').length > c, anchor.count, { timeout: 10000 });
    await alice.waitForTimeout(50);
    const after = await topOf(alice, anchor.text);
    assert.ok(Math.abs(after - anchor.top) <= 2, `"${anchor.text}" stayed in place (${anchor.top} → ${after})`);
  }
  await ui.waitBubble(alice, 'Send me the list, please');
  await alice.getByText('This is the start of your conversation.').waitFor();
  for (const i of [1, 2, 50, 51, 100, N]) assert.equal(await ui.bubbles(alice, `Item ${i}`).count(), 1, `Item ${i} once`);
  assert.equal(await alice.locator('#msg-list .msg').count(), N + 1);
  await screenshot(alice, 'history-top');

  // logout: back to the login form; the token is gone
  await alice.getByRole('button', { name: 'Log out' }).click();
  await alice.locator('#login-view').waitFor({ state: 'visible' });
  assert.equal(await alice.evaluate(() => localStorage.getItem('parley.session')), null);
  await alice.reload();
  await alice.locator('#login-view').waitFor({ state: 'visible' });

  // a new login (a new device) finds the chat and its history
  await ui.login(alice, aliceName);
  await ui.openChat(alice, 'Bob');
  await ui.waitBubble(alice, `Item ${N}`);

  // the token is revoked elsewhere: the server closes with 4001 and the tab asks to sign in
  const token = await alice.evaluate(() => JSON.parse(localStorage.getItem('parley.session')).token);
  const res = await fetch(`${server.url}/v1/sessions/current`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 204);
  await alice.locator('#login-view').waitFor({ state: 'visible', timeout: 10000 });
  await alice.locator('#login-error', { hasText: 'Your session has ended' }).waitFor();
  ui.assertNoProblems(alice, bob);
});
