// UI steps shared by the tests: what a person would do, through the page.

import assert from 'node:assert/strict';

// Every test file has a server of its own, so plain usernames do.

export const PASSWORD = 'correct horse battery';

/** Create an account through the form; ends on the chat list. */
export async function register(page, username, displayName) {
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Username').fill(username);
  if (displayName) await page.getByLabel('Display name').fill(displayName);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await waitReady(page);
}

export async function login(page, username) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await waitReady(page);
}

/** The WebSocket is authenticated and the replay is over. */
export async function waitReady(page, timeout = 15000) {
  await page.waitForFunction(() => window.parley?.store.conn.state === 'ready' && window.parley.store.chatsLoaded, null, { timeout });
}

export async function startChat(page, username) {
  await page.getByRole('button', { name: 'New chat' }).click();
  const dlg = page.getByRole('dialog', { name: 'New chat' });
  await dlg.getByLabel('Username').fill(username);
  await dlg.getByRole('button', { name: 'Start chat' }).click();
  await dlg.waitFor({ state: 'detached' });
}

export async function createGroup(page, title, usernames) {
  await page.getByRole('button', { name: 'New group' }).click();
  const dlg = page.getByRole('dialog', { name: 'New group' });
  await dlg.getByLabel('Group name').fill(title);
  await dlg.getByLabel('Members').fill(usernames.join(', '));
  await dlg.getByRole('button', { name: 'Create group' }).click();
  await dlg.waitFor({ state: 'detached' });
}

export function chatItem(page, title) {
  return page.locator('.chat-item', { has: page.locator('.chat-title', { hasText: title }) });
}

export async function openChat(page, title) {
  await chatItem(page, title).click();
  await assertTitle(page, title);
}

export async function assertTitle(page, title) {
  await page.locator('#conv-title', { hasText: title }).waitFor();
}

export async function send(page, text) {
  const input = page.getByRole('textbox', { name: 'Message' });
  await input.fill(text);
  await input.press('Enter');
}

/** The bubbles of the open conversation with exactly this text. */
export function bubbles(page, text) {
  return page.locator('#msg-list .msg').locator(textIs(page, text));
}

/** A relative locator: a message text element with exactly this text. */
export function textIs(page, text) {
  return page.locator('.text').filter({ hasText: new RegExp(`^${escapeRe(text)}$`) });
}

/** The <li> of my message with this text. */
export function myMessage(page, text) {
  return page.locator('#msg-list .msg-out', { has: textIs(page, text) }).last();
}

export async function waitBubble(page, text, timeout = 10000) {
  await bubbles(page, text).first().waitFor({ timeout });
}

/** The tick state of my message with this text: pending | sent | delivered | read | failed. */
export async function tickOf(page, text) {
  const li = myMessage(page, text);
  const cls = await li.locator('.tick').getAttribute('class');
  return /tick-(\w+)/.exec(cls)[1];
}

export async function waitTick(page, text, state, timeout = 10000) {
  const li = myMessage(page, text);
  await li.locator(`.tick-${state}`).waitFor({ timeout });
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function assertNoProblems(...pages) {
  const problems = pages.flatMap((p) => p.problems)
    // a refused WebSocket while the server is down is expected in the restart test
    .filter((p) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/.test(p));
  assert.deepEqual(problems, [], 'no page errors or console errors');
  for (const p of pages) assert.deepEqual(p.dialogs, [], 'no dialog (alert/confirm) fired');
}
