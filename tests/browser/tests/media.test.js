// Attachments: Alice sends Bob a picture (with a caption), a WAV, a text file and a PDF; Bob
// sees the picture actually loaded through a signed URL (and full size on click), an audio
// player, and download links with names and sizes that download the bytes. Refused uploads
// (an .html file, "image/png" bytes that are not a PNG, a file over the server's limit) show
// the reason and send nothing. A reload in the middle of an upload uploads again from the
// file kept in IndexedDB and sends the message exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { Server } from '../lib/server.js';
import { launch, openPage, screenshot } from '../lib/browser.js';
import * as ui from '../lib/ui.js';

const MAX_BYTES = 300000;   // the server's media limit here, so that "too large" is quick to reach

let server;
let browser;
before(async () => {
  server = await new Server({ extraArgs: ['--media-max-bytes', String(MAX_BYTES)] }).start();
  browser = await launch();
});
after(async () => { await browser?.close(); await server?.stop(); });

// ---- test files, made here

function crc32(buf) {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid w×h RGB PNG with a gradient (so a broken decode would not pass for a blank one). */
function makePng(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 2;   // RGB
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + 3 * w);
    raw[row] = 0;   // filter: none
    for (let x = 0; x < w; x++) {
      raw[row + 1 + 3 * x] = (255 * x) / w;
      raw[row + 2 + 3 * x] = (255 * y) / h;
      raw[row + 3 + 3 * x] = 160;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Half a second of a 440 Hz tone, 8 kHz mono 16-bit PCM. */
function makeWav() {
  const n = 4000;
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);        // PCM
  b.writeUInt16LE(1, 22);        // mono
  b.writeUInt32LE(8000, 24);
  b.writeUInt32LE(16000, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), 44 + 2 * i);
  return b;
}

const PNG = makePng(64, 48);
const PNG2 = makePng(32, 32);
const WAV = makeWav();
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
// a file name is user text too: it must stay text
const TXT_NAME = '<img src=x onerror=alert(1)> notes.txt';
const TXT = Buffer.from('Agenda\n1. budget\n2. the party on Friday\n'.repeat(40));
const HTML = Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>');
const NOT_PNG = Buffer.from('GIF89a this is not a PNG at all'.padEnd(200, '.'));
const BIG = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(MAX_BYTES + 1000, 0x20)]);

// ---- steps

async function attach(page, files) {
  await page.locator('#attach-input').setInputFiles(files);
  await page.locator('.staged-chip').nth(files.length - 1).waitFor();
}

async function sendAttached(page, files, caption = '') {
  await attach(page, files);
  const input = page.getByRole('textbox', { name: 'Message' });
  if (caption) await input.fill(caption);
  await input.press('Enter');
  await page.locator('.staged-chip').first().waitFor({ state: 'detached' });
}

const outboxEmpty = (page) => page.waitForFunction(() => window.parley.store.outbox.list().length === 0, null, { timeout: 15000 });
const lastSeq = (page) => page.evaluate(() => Math.max(0, ...[...window.parley.store.chats.values()].map((c) => c.last_seq)));

/** Only the refused uploads' own HTTP errors may show in the console. */
function dropExpectedHttpErrors(page) {
  page.problems = page.problems.filter((p) => !/status of 41[35]/.test(p));
}

test('attachments: images, audio and files reach the peer; refused uploads send nothing; a reload mid-upload sends once', async () => {
  const alice = await openPage(browser, server, { name: 'alice' });
  const bob = await openPage(browser, server, { name: 'bob' });
  await ui.register(alice, 'alice', 'Alice');
  await ui.register(bob, 'bob', 'Bob');
  await ui.startChat(alice, 'bob');
  await ui.send(alice, 'Photos from the trip:');
  await ui.openChat(bob, 'Alice');
  await ui.waitBubble(bob, 'Photos from the trip:');

  // ---------------------------------------------------------------- a picture with a caption
  await attach(alice, [{ name: 'sunset.png', mimeType: 'image/png', buffer: PNG }]);
  // the chip shows the file before it is sent; the text becomes its caption
  await alice.locator('.staged-chip .staged-name', { hasText: 'sunset.png' }).waitFor();
  assert.equal(await alice.locator('.staged-chip img.staged-thumb').count(), 1, 'a thumbnail of the picked image');
  const input = alice.getByRole('textbox', { name: 'Message' });
  await input.fill('The sunset');
  await input.press('Enter');
  await outboxEmpty(alice);
  const mine = alice.locator('#msg-list .msg-out', { has: ui.textIs(alice, 'The sunset') });
  await mine.locator('.tick-delivered, .tick-read').waitFor();
  // her own picture shows from the local file, no download
  assert.match(await mine.locator('img.media-img').getAttribute('src'), /^blob:/);

  const pic = bob.locator('#msg-list .msg-in', { has: ui.textIs(bob, 'The sunset') });
  await pic.waitFor();
  const img = pic.locator('img.media-img');
  await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 10000 });
  const shown = await img.evaluate((el) => ({ w: el.naturalWidth, h: el.naturalHeight, src: el.getAttribute('src') }));
  assert.deepEqual([shown.w, shown.h], [64, 48], 'the PNG decoded at its size');
  assert.match(shown.src, /^\/v1\/media\/[^/?]+\?.*sig=/, 'loaded through a signed URL');
  // the signed URL needs no token, and serves the very bytes
  const got = Buffer.from(await (await fetch(server.url + shown.src)).arrayBuffer());
  assert.ok(got.equals(PNG), 'the signed URL serves the uploaded bytes');
  assert.equal(await ui.chatItem(bob, 'Alice').locator('.preview-text').textContent(), '📷 The sunset');

  // a click opens it full size
  await pic.getByRole('button', { name: /full size/ }).click();
  const viewer = bob.getByRole('dialog', { name: 'sunset.png' });
  await viewer.waitFor();
  await bob.waitForFunction(() => {
    const el = document.querySelector('.viewer-img');
    return el && el.complete && el.naturalWidth === 64;
  }, null, { timeout: 10000 });
  await screenshot(bob, 'media-viewer');
  await bob.keyboard.press('Escape');
  await viewer.waitFor({ state: 'detached' });

  // ---------------------------------------------------------------- audio, a text file and a PDF
  await sendAttached(alice, [
    { name: 'tone.wav', mimeType: 'audio/wav', buffer: WAV },
    { name: TXT_NAME, mimeType: 'text/plain', buffer: TXT },
    { name: 'report.pdf', mimeType: 'application/pdf', buffer: PDF },
  ]);
  await outboxEmpty(alice);

  const audio = bob.locator('#msg-list .msg-in audio.media-audio');
  await audio.waitFor();
  await bob.waitForFunction((el) => el.readyState >= 1 && el.duration > 0.4, await audio.elementHandle(), { timeout: 10000 });

  const pdfLink = bob.locator('#msg-list .msg-in a.file-link', { has: bob.locator('.file-name', { hasText: 'report.pdf' }) });
  const txtLink = bob.locator('#msg-list .msg-in a.file-link', { has: bob.locator('.file-name', { hasText: TXT_NAME }) });
  await pdfLink.waitFor();
  await txtLink.waitFor();
  assert.equal(await txtLink.locator('.file-name').textContent(), TXT_NAME, 'the name is shown as text');
  assert.match(await txtLink.locator('.file-sub').textContent(), /^1\.\d KB · TXT$/);
  assert.match(await pdfLink.locator('.file-sub').textContent(), /^\d+ B · PDF$/);
  await bob.waitForFunction((el) => /sig=/.test(el.getAttribute('href') || ''), await pdfLink.elementHandle());
  // the link downloads the bytes
  const [download] = await Promise.all([bob.waitForEvent('download'), pdfLink.click()]);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(path).equals(PDF), 'the download is the PDF');
  const txtHref = await txtLink.getAttribute('href');
  assert.ok(Buffer.from(await (await fetch(server.url + txtHref)).arrayBuffer()).equals(TXT));
  assert.equal(await ui.chatItem(bob, 'Alice').locator('.preview-text').textContent(), '📎 report.pdf');
  await bob.waitForTimeout(300);
  await screenshot(bob, 'media-conversation');

  // ---------------------------------------------------------------- refused uploads
  const before = await lastSeq(alice);
  await sendAttached(alice, [{ name: 'page.html', mimeType: 'text/html', buffer: HTML }]);
  await sendAttached(alice, [{ name: 'fake.png', mimeType: 'image/png', buffer: NOT_PNG }], 'not really a picture');
  await sendAttached(alice, [{ name: 'huge.pdf', mimeType: 'application/pdf', buffer: BIG }]);
  const failed = alice.locator('#msg-list .msg-out .msg-failed');
  await alice.waitForFunction(() => document.querySelectorAll('#msg-list .msg-failed').length === 3, null, { timeout: 15000 });
  const reasons = await failed.allTextContents();
  assert.match(reasons[0], /Not sent: This type of file is not accepted\./);
  assert.match(reasons[1], /Not sent: This type of file is not accepted\./);
  assert.match(reasons[2], /Not sent: This file is too large to send\./);
  assert.equal(await alice.locator('#msg-list .msg-failed', { hasText: 'Retry' }).count(), 3, 'each can be retried or deleted');
  await screenshot(alice, 'media-refused');
  // nothing was sent: the chat's sequence did not move, and Bob got nothing new
  await bob.waitForTimeout(500);
  assert.equal(await lastSeq(alice), before);
  assert.equal(await lastSeq(bob), before);
  assert.equal(await ui.bubbles(bob, 'not really a picture').count(), 0);
  // deleting them empties the outbox
  for (let i = 0; i < 3; i++) await failed.first().getByRole('button', { name: 'Delete' }).click();
  await outboxEmpty(alice);

  // ---------------------------------------------------------------- reload in the middle of an upload
  // the first upload is held back (it never reaches the server), the page reloads, and the
  // upload starts again, in the new page, from the file stored in IndexedDB
  let uploads = 0;
  await alice.route('**/v1/media', (route) => {
    if (++uploads > 1) route.continue();   // the first is never answered
  });
  await sendAttached(alice, [{ name: 'again.png', mimeType: 'image/png', buffer: PNG2 }], 'sent once');
  const cid = await alice.evaluate(() => window.parley.store.outbox.list()[0].cid);
  await alice.locator('.upload-status').waitFor();
  await alice.waitForFunction((c) => window.parley.client.blobs.get(c).then((b) => b?.size > 0), cid);
  assert.equal(uploads, 1, 'the upload is in flight');
  await alice.reload();
  await ui.waitReady(alice);
  await outboxEmpty(alice);
  assert.equal(uploads, 2, 'uploaded again after the reload');
  await alice.unroute('**/v1/media');
  await ui.openChat(alice, 'Bob');
  await ui.waitBubble(alice, 'sent once');
  const again = bob.locator('#msg-list .msg-in', { has: ui.textIs(bob, 'sent once') });
  await again.waitFor();
  await bob.waitForFunction((el) => el.complete && el.naturalWidth === 32, await again.locator('img.media-img').elementHandle(), { timeout: 10000 });
  await bob.waitForTimeout(500);
  assert.equal(await ui.bubbles(bob, 'sent once').count(), 1, 'sent exactly once');
  assert.equal(await lastSeq(bob), before + 1);
  const sentCid = await bob.evaluate(() => {
    for (const c of window.parley.store.chats.values()) for (const m of c.msgs.values()) if (m.text === 'sent once') return m.cid;
    return null;
  });
  assert.equal(sentCid, cid, 'with the cid it was given when composed');
  assert.equal(await alice.evaluate((c) => window.parley.client.blobs.get(c), cid), null, 'the stored file is gone once sent');

  // no element came from a file name, no script ran
  const imgs = await bob.evaluate(() => [...document.querySelectorAll('#app-view img:not(.conv-empty-logo)')].map((i) => i.className));
  assert.ok(imgs.every((c) => c === 'media-img'), `only the pictures are images: ${imgs}`);
  dropExpectedHttpErrors(alice);
  ui.assertNoProblems(alice, bob);
});

test('an attachment sent while the server is down waits for it, then goes once', async () => {
  const carol = await openPage(browser, server, { name: 'carol' });
  const dave = await openPage(browser, server, { name: 'dave' });
  await ui.register(carol, 'carol', 'Carol');
  await ui.register(dave, 'dave', 'Dave');
  await ui.startChat(carol, 'dave');
  await ui.send(carol, 'About to send the plan');
  await ui.openChat(dave, 'Carol');
  await ui.waitBubble(dave, 'About to send the plan');

  await server.terminate();
  await carol.waitForFunction(() => window.parley.store.conn.state !== 'ready', null, { timeout: 10000 });
  await sendAttached(carol, [{ name: 'plan.pdf', mimeType: 'application/pdf', buffer: PDF }], 'the plan');
  // the upload cannot reach the server: it waits (no failure, no retry count used up)
  await carol.locator('.upload-status', { hasText: 'Waiting for the connection…' }).waitFor({ timeout: 10000 });
  assert.equal(await carol.locator('.msg-failed').count(), 0);

  server._retryBind = 50;   // as restart() does: the port may be held for a moment
  await server.start({ port: server.port });
  await ui.waitReady(carol, 20000);
  await outboxEmpty(carol);
  const link = dave.locator('#msg-list .msg-in a.file-link', { has: dave.locator('.file-name', { hasText: 'plan.pdf' }) });
  await link.waitFor({ timeout: 20000 });
  await dave.waitForTimeout(500);
  assert.equal(await ui.bubbles(dave, 'the plan').count(), 1, 'sent exactly once');
  ui.assertNoProblems(carol, dave);   // (it ignores the refused connections while the server is down)
});
