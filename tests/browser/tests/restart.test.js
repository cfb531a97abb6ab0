// The server restarts (SIGTERM: every WebSocket is closed with 1012) while messages are being
// sent and written offline. The clients reconnect with backoff, the outbox (localStorage, with
// the cid of each message) is sent again, even from a tab opened later, and every message
// arrives exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, newTab, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** How many messages with this text the page holds (in memory, not just on screen). */
function held(page, text) {
  return page.evaluate((t) => {
    let n = 0;
    for (const c of window.parley.store.chats.values()) for (const m of c.msgs.values()) if (m.text === t) n++;
    return n;
  }, text);
}

test('a restart while sending and while offline: every message arrives exactly once', async () => {
  const aliceName = 'alice';
  const bobName = 'bob';
  let alice = await openPage(browser, server, { name: 'alice' });
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(alice, aliceName, 'Alice');
  await ui.register(bob, bobName, 'Bob');
  await ui.startChat(alice, bobName);
  await ui.send(alice, 'Before the restart');
  await ui.openChat(bob, 'Alice');
  await ui.waitBubble(bob, 'Before the restart');

  // one message races the shutdown: its answer may or may not come back before the close
  await ui.send(alice, 'Racing the shutdown');
  await server.terminate();

  // both clients see that they are offline
  for (const p of [alice, bob]) await p.locator('#conn-banner.banner-warn').waitFor({ timeout: 10000 });

  // written while the server is down: kept in the outbox, shown with a clock
  await ui.send(alice, 'Written while offline');
  await ui.waitTick(alice, 'Written while offline', 'pending');
  const outbox = await alice.evaluate(() => window.parley.store.outbox.list().map((e) => e.text));
  assert.ok(outbox.includes('Written while offline'), 'the offline message is in the outbox');
  await screenshot(alice, 'offline-pending');

  // Alice even closes the tab before the server is back: the outbox is in localStorage
  const context = alice.context();
  await alice.close();

  // the server comes back on the same port and data dir; Bob reconnects by himself
  await server.restart();
  await ui.waitReady(bob, 30000);
  alice = await newTab(context, server, 'alice');
  await ui.waitReady(alice);
  await alice.waitForFunction(() => window.parley.store.outbox.list().length === 0, null, { timeout: 15000 });
  await ui.openChat(alice, 'Bob');

  for (const text of ['Racing the shutdown', 'Written while offline']) {
    await ui.waitBubble(bob, text, 15000);
    await ui.waitTick(alice, text, 'read', 15000);
  }
  await bob.locator('#conn-banner').waitFor({ state: 'hidden' });
  // give late duplicates (a replay, a resent cid) time to show up, then count
  await ui.send(bob, 'Got both');
  await ui.waitBubble(alice, 'Got both');
  for (const text of ['Before the restart', 'Racing the shutdown', 'Written while offline']) {
    for (const p of [alice, bob]) {
      assert.equal(await ui.bubbles(p, text).count(), 1, `"${text}" shown once`);
      assert.equal(await held(p, text), 1, `"${text}" held once`);
    }
  }
  // and the server stored each once: a fresh load of Bob's history shows each once
  await bob.reload();
  await ui.waitReady(bob);
  await ui.openChat(bob, 'Alice');
  await ui.waitBubble(bob, 'Got both');
  for (const text of ['Before the restart', 'Racing the shutdown', 'Written while offline']) {
    assert.equal(await ui.bubbles(bob, text).count(), 1, `"${text}" stored once`);
  }
  await screenshot(alice, 'after-restart');
  ui.assertNoProblems(alice, bob);
});
