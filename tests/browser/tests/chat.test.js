// Two people in two browser contexts: register, open a 1-on-1 chat, exchange messages, watch
// the ticks go to read, see presence (online, then "last seen") and "typing…".

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('two users chat: ticks, unread, presence, typing', async () => {
  const aliceName = 'alice';
  const bobName = 'bob';
  const alice = await openPage(browser, server, { name: 'alice' });
  await alice.getByRole('button', { name: 'Sign in' }).waitFor();
  await screenshot(alice, 'login');
  await ui.register(alice, aliceName, 'Alice Liddell');
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(bob, bobName, 'Bob Builder');

  // Alice starts the chat by username and writes first
  await ui.startChat(alice, bobName);
  await ui.assertTitle(alice, 'Bob Builder');
  await ui.send(alice, 'Hi Bob!');
  await ui.send(alice, 'Are you there?');
  // Bob's client is online: it acks, so the ticks reach "delivered" without Bob opening the chat
  await ui.waitTick(alice, 'Are you there?', 'delivered');
  assert.equal(await ui.tickOf(alice, 'Hi Bob!'), 'delivered');

  // Bob's list: the chat with an unread badge of 2 and the last message as preview
  const item = ui.chatItem(bob, 'Alice Liddell');
  await item.locator('.badge', { hasText: '2' }).waitFor();
  assert.equal(await item.locator('.preview-text').textContent(), 'Are you there?');

  // presence: each sees the other online
  await alice.locator('#conv-sub', { hasText: /^online$/ }).waitFor();

  // Bob opens the chat: it is read, Alice's ticks turn blue, the badge goes
  await ui.openChat(bob, 'Alice Liddell');
  await ui.waitBubble(bob, 'Hi Bob!');
  await ui.waitTick(alice, 'Are you there?', 'read');
  assert.equal(await ui.tickOf(alice, 'Hi Bob!'), 'read');
  await item.locator('.badge').waitFor({ state: 'detached' });
  await bob.locator('#conv-sub', { hasText: /^online$/ }).waitFor();

  // typing: Bob types, Alice sees "typing…" in the header and the list; clearing stops it
  const bobInput = bob.getByRole('textbox', { name: 'Message' });
  await bobInput.fill('I am wri');
  await alice.locator('#conv-sub', { hasText: 'typing…' }).waitFor();
  await ui.chatItem(alice, 'Bob Builder').locator('.typing-text').waitFor();
  await bobInput.fill('');
  await alice.locator('#conv-sub', { hasText: /^online$/ }).waitFor({ timeout: 3000 });

  // Bob answers (Shift+Enter makes a new line, Enter sends)
  await bobInput.fill('Yes!');
  await bobInput.press('Shift+Enter');
  await bobInput.pressSequentially('Two lines.');
  await bobInput.press('Enter');
  await ui.waitBubble(alice, 'Yes!\nTwo lines.');
  // Alice has the chat open and visible: she read it
  await ui.waitTick(bob, 'Yes!\nTwo lines.', 'read');
  await ui.send(alice, 'Great, see you at six!');
  await ui.waitTick(alice, 'Great, see you at six!', 'read');
  await alice.waitForTimeout(300);
  await screenshot(alice, 'conversation-alice');
  await screenshot(bob, 'conversation-bob');

  // each message once on both sides
  for (const p of [alice, bob]) {
    for (const t of ['Hi Bob!', 'Are you there?', 'Yes!\nTwo lines.', 'Great, see you at six!']) {
      assert.equal(await ui.bubbles(p, t).count(), 1, `${t} shown once`);
    }
  }

  // Bob goes away: Alice sees "last seen today at …"
  ui.assertNoProblems(alice, bob);
  await bob.context().close();
  await alice.locator('#conv-sub', { hasText: /^last seen today at \d\d:\d\d$/ }).waitFor({ timeout: 20000 });
  await alice.locator('.chat-item .online-dot').waitFor({ state: 'detached' });
  await screenshot(alice, 'last-seen');
  ui.assertNoProblems(alice);
});
