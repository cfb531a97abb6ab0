// User text is shown as text: a message, a display name and a group title made of HTML do
// not become elements, and no script runs (no dialog fires).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

const PAYLOAD = '<img src=x onerror=alert(1)>';
const NAME = '<b onmouseover=alert(2)>Mallory</b>';
const TITLE = '<script>alert(3)</script>';
const MORE = '"><svg onload=alert(4)> & &amp; <a href="javascript:alert(5)">x</a>';

test('HTML in messages, names and titles is shown as text; no script runs', async () => {
  const malName = 'mal';
  const vicName = 'vic';
  const mallory = await openPage(browser, server, { name: 'mallory' });
  const victim = await openPage(browser, server, { name: 'victim' });
  await ui.register(mallory, malName, NAME);
  await ui.register(victim, vicName, 'Victor');

  await ui.startChat(mallory, vicName);
  await ui.send(mallory, PAYLOAD);
  await ui.send(mallory, MORE);
  await ui.createGroup(mallory, TITLE, [vicName]);
  await ui.send(mallory, PAYLOAD);

  // the victim's list shows the name and the title literally
  await ui.chatItem(victim, NAME).waitFor();
  await ui.chatItem(victim, TITLE).waitFor();
  await ui.openChat(victim, NAME);
  await ui.waitBubble(victim, PAYLOAD);
  await ui.waitBubble(victim, MORE);
  await victim.mouse.move(600, 200);
  await ui.openChat(victim, TITLE);
  await ui.waitBubble(victim, PAYLOAD);
  await victim.locator('#msg-list .msg-in .sender', { hasText: NAME }).waitFor();
  await victim.locator('#msg-list .system-text', { hasText: `${NAME} created the group “${TITLE}” and added you` }).waitFor();
  await victim.getByRole('button', { name: 'Group info', exact: true }).click();
  await victim.getByRole('dialog', { name: 'Group info' }).locator('.member-name', { hasText: NAME }).hover();
  await victim.waitForTimeout(500);
  await screenshot(victim, 'xss-as-text');
  await victim.keyboard.press('Escape');

  // nothing became an element
  const injected = await victim.evaluate(() => ({
    imgs: document.querySelectorAll('#app-view img:not(.brand-logo):not(.conv-empty-logo)').length,
    scripts: [...document.scripts].map((s) => s.src),
    b: document.querySelectorAll('#app-view b, #app-view svg[onload], #app-view a[href^="javascript"]').length,
  }));
  assert.equal(injected.imgs, 0, 'no <img> from user text');
  assert.equal(injected.b, 0, 'no element from user text');
  assert.deepEqual(injected.scripts.map((s) => new URL(s).pathname), ['/js/main.js']);
  ui.assertNoProblems(mallory, victim);
});
