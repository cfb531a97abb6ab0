// Groups: create, a third member added later (sees the chat from the "added" notice on),
// message info (receipts), rename, remove, leave; system messages as centered notices.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Server, REPO } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

let server;
let browser;
before(async () => { server = await new Server().start(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

const notice = (page, text) => page.locator('#msg-list .system-text', { hasText: text });

test('a group: the third member joins later, receipts, rename, remove, leave', async () => {
  const names = { a: 'alice', b: 'bob', c: 'carol' };
  const alice = await openPage(browser, server, { name: 'alice' });
  const bob = await openPage(browser, server, { name: 'bob' });
  const carol = await openPage(browser, server, { name: 'carol' });
  await ui.register(alice, names.a, 'Alice');
  await ui.register(bob, names.b, 'Bob');
  await ui.register(carol, names.c, 'Carol');

  // a 1-on-1 chat too, so the list has more than one chat
  await ui.startChat(alice, names.c);
  await ui.send(alice, 'Are you coming on Saturday?');
  await ui.openChat(carol, 'Alice');
  await ui.send(carol, 'Probably! Let me check.');

  await ui.createGroup(alice, 'Weekend trip', [names.b]);
  await ui.assertTitle(alice, 'Weekend trip');
  await notice(alice, 'You created the group “Weekend trip” and added Bob').waitFor();
  await ui.openChat(bob, 'Weekend trip');
  await notice(bob, 'Alice created the group “Weekend trip” and added you').waitFor();
  await ui.send(alice, 'Who brings the tent?');
  await ui.waitBubble(bob, 'Who brings the tent?');
  await ui.send(bob, 'I do. And the stove.');
  await ui.waitBubble(alice, 'I do. And the stove.');
  // the sender's name is shown on incoming group messages
  await alice.locator('#msg-list .msg-in .sender', { hasText: 'Bob' }).first().waitFor();

  // Carol is not in it yet
  assert.equal(await ui.chatItem(carol, 'Weekend trip').count(), 0);

  // Alice adds Carol from the group info dialog
  await alice.getByRole('button', { name: 'Group info', exact: true }).click();
  const info = alice.getByRole('dialog', { name: 'Group info' });
  await info.getByLabel('Usernames to add').fill(names.c);
  await info.getByRole('button', { name: 'Add', exact: true }).click();
  await info.locator('.member-name', { hasText: 'Carol' }).waitFor();
  await alice.keyboard.press('Escape');
  await info.waitFor({ state: 'detached' });
  await notice(alice, 'You added Carol').waitFor();

  // Carol sees the group, from the "added" notice on: not the earlier messages
  await ui.openChat(carol, 'Weekend trip');
  await notice(carol, 'Alice added you').waitFor();
  await ui.send(alice, 'Welcome Carol!');
  await ui.waitBubble(carol, 'Welcome Carol!');
  await ui.waitBubble(bob, 'Welcome Carol!');
  assert.equal(await ui.bubbles(carol, 'Who brings the tent?').count(), 0, 'history starts at the add');
  assert.equal(await ui.bubbles(carol, 'I do. And the stove.').count(), 0, 'history starts at the add');

  // Bob and Carol have the chat open: read by all, blue ticks
  await ui.waitTick(alice, 'Welcome Carol!', 'read');
  await ui.send(carol, 'Thanks! I can bring food.');
  await ui.waitBubble(alice, 'Thanks! I can bring food.');
  await alice.waitForTimeout(300);
  // the chat list and a group conversation: the picture of the README
  const shot = await screenshot(alice, 'chat-list-and-group-conversation');
  const doc = path.join(REPO, 'docs', 'screenshot.png');
  if (process.env.PARLEY_UPDATE_SCREENSHOT || !existsSync(doc)) copyFileSync(shot, doc);

  // message info: who has it, who read it
  const msg = ui.myMessage(alice, 'Welcome Carol!');
  await msg.hover();
  await msg.getByRole('button', { name: 'Message info' }).click();
  const mi = alice.getByRole('dialog', { name: 'Message info' });
  const readBy = mi.locator('.receipts-read');
  await readBy.locator('.member-name', { hasText: 'Bob' }).waitFor();
  await readBy.locator('.member-name', { hasText: 'Carol' }).waitFor();
  await screenshot(alice, 'message-info');
  await mi.getByRole('button', { name: 'Close' }).click();

  // rename
  await alice.getByRole('button', { name: 'Group info', exact: true }).click();
  await info.getByLabel('Group name').fill('Camping 2026');
  await info.getByRole('button', { name: 'Rename' }).click();
  await info.locator('#group-info-title', { hasText: 'Camping 2026' }).waitFor();
  await screenshot(alice, 'group-info');
  await ui.assertTitle(bob, 'Camping 2026');
  await notice(bob, 'Alice changed the group name to “Camping 2026”').waitFor();

  // remove Bob: his composer goes, he sees why
  await info.getByRole('button', { name: 'Remove Bob' }).click();
  await info.locator('.member-name', { hasText: 'Bob' }).waitFor({ state: 'detached' });
  await alice.keyboard.press('Escape');
  await notice(alice, 'You removed Bob').waitFor();
  await notice(bob, 'Alice removed you').waitFor();
  await bob.getByText('You can’t send messages to this group because you’re no longer a member.').waitFor();
  assert.equal(await bob.getByRole('textbox', { name: 'Message' }).isVisible(), false);

  // Carol leaves
  await carol.getByRole('button', { name: 'Group info', exact: true }).click();
  const cinfo = carol.getByRole('dialog', { name: 'Group info' });
  await cinfo.getByRole('button', { name: 'Leave group' }).click();
  await cinfo.getByRole('button', { name: 'Leave', exact: true }).click();
  await cinfo.waitFor({ state: 'detached' });
  await notice(alice, 'Carol left').waitFor();
  await notice(carol, 'You left').waitFor();

  ui.assertNoProblems(alice, bob, carol);
});
