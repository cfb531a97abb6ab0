// Two tabs share the token (one device, two connections): what one tab sends or reads shows in
// the other (the server pushes neither to the sending device); logging out in one tab ends
// the other (its connection is closed with 4001).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, newTab, openPage } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('two tabs of one session stay in step; logout in one ends both', async () => {
  const aliceName = 'alice';
  const bobName = 'bob';
  const tab1 = await openPage(browser, server, { name: 'tab1' });
  await ui.register(tab1, aliceName, 'Alice');
  const tab2 = await newTab(tab1.context(), server, 'tab2');
  await ui.waitReady(tab2);                       // signed in already: the token is shared
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(bob, bobName, 'Bob');

  await ui.startChat(bob, aliceName);
  await ui.send(bob, 'Hello Alice');
  for (const t of [tab1, tab2]) await ui.chatItem(t, 'Bob').locator('.badge', { hasText: '1' }).waitFor();

  // tab 1 reads: tab 2's badge goes too
  await ui.openChat(tab1, 'Bob');
  await ui.chatItem(tab2, 'Bob').locator('.badge').waitFor({ state: 'detached' });

  // tab 1 sends: tab 2 shows it (the server does not push it to this device)
  await ui.send(tab1, 'Sent from tab 1');
  await ui.openChat(tab2, 'Bob');
  await ui.waitBubble(tab2, 'Sent from tab 1');
  await ui.send(tab2, 'And this from tab 2');
  await ui.waitBubble(tab1, 'And this from tab 2');
  await ui.waitBubble(bob, 'And this from tab 2');
  assert.equal(await ui.bubbles(tab1, 'And this from tab 2').count(), 1);

  // logout in tab 2: tab 1 goes back to the login form too
  await tab2.getByRole('button', { name: 'Log out' }).click();
  await tab2.locator('#login-view').waitFor({ state: 'visible' });
  await tab1.locator('#login-view').waitFor({ state: 'visible', timeout: 10000 });
  ui.assertNoProblems(tab1, tab2, bob);
});
