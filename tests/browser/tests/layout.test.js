// A phone-sized screen shows one pane at a time; the keyboard alone is enough: dialogs take
// focus and give it back, Esc closes them and goes back to the list.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('phone width: one pane at a time, keyboard only, no horizontal overflow', async () => {
  const aliceName = 'alice';
  const bobName = 'bob';
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(bob, bobName, 'Bob');
  const phone = await openPage(browser, server, { name: 'alice', width: 390, height: 844 });
  await screenshot(phone, 'phone-login');
  await ui.register(phone, aliceName, 'Alice');

  const overflow = () => phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.equal(await phone.locator('.sidebar').isVisible(), true);
  assert.equal(await phone.locator('#conversation').isVisible(), false);

  // keyboard: the "New chat" dialog takes focus, Esc closes it and gives focus back
  const newChat = phone.getByRole('button', { name: 'New chat' });
  await newChat.focus();
  await phone.keyboard.press('Enter');
  const dlg = phone.getByRole('dialog', { name: 'New chat' });
  await dlg.waitFor();
  assert.equal(await phone.evaluate(() => document.activeElement.name), 'username');
  await phone.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await phone.evaluate(() => document.activeElement.getAttribute('aria-label')), 'New chat');

  // a whole chat by keyboard
  await phone.keyboard.press('Enter');
  await phone.keyboard.type(bobName);
  await phone.keyboard.press('Enter');
  await dlg.waitFor({ state: 'detached' });
  await ui.assertTitle(phone, 'Bob');
  assert.equal(await phone.locator('.sidebar').isVisible(), false, 'the list is hidden while a chat is open');
  assert.equal(await phone.evaluate(() => document.activeElement.id), 'composer-input');
  await phone.keyboard.type('Hello from my phone. This line is long enough to wrap inside the bubble on a narrow screen.');
  await phone.keyboard.press('Enter');
  await ui.waitTick(phone, 'Hello from my phone. This line is long enough to wrap inside the bubble on a narrow screen.', 'delivered');
  await ui.openChat(bob, 'Alice');
  await ui.send(bob, 'Hi! Looks good on a phone?');
  await ui.waitBubble(phone, 'Hi! Looks good on a phone?');
  assert.ok(await overflow() <= 0, 'no horizontal scrolling');
  await screenshot(phone, 'phone-conversation');

  // Esc goes back to the list, with the chat focused
  await phone.keyboard.press('Escape');
  await phone.locator('.sidebar').waitFor({ state: 'visible' });
  assert.equal(await phone.locator('#conversation').isVisible(), false);
  assert.equal(await phone.evaluate(() => document.activeElement.classList.contains('chat-item')), true);
  assert.ok(await overflow() <= 0, 'no horizontal scrolling');
  await screenshot(phone, 'phone-chat-list');

  // the back button does the same
  await phone.keyboard.press('Enter');
  await ui.assertTitle(phone, 'Bob');
  await phone.getByRole('button', { name: 'Back to chats' }).click();
  await phone.locator('.sidebar').waitFor({ state: 'visible' });
  ui.assertNoProblems(phone, bob);
});
