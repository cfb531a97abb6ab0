// Debian's Chromium driven by playwright-core (ENVIRONMENT.md: `npx playwright install` cannot
// download browsers here). launch() gives every browser a fresh temporary user-data-dir; every
// user of a test gets its own context (its own localStorage, hence its own session).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows'];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
  });
}

/**
 * A page of its own context on the server, collecting console errors, page errors and
 * dialogs (an alert() would mean script injection).
 */
export async function openPage(browser, server, { width = 1280, height = 800, name = 'page' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'en-GB', timezoneId: 'UTC' });
  return newTab(context, server, name);
}

/** Another page in the same context: the same localStorage, so the same session. */
export async function newTab(context, server, name = 'tab') {
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`${name}: console error: ${m.text()}`);
    // the client logs every error the server answers to a frame without id: a protocol misuse
    if (m.type() === 'warning' && m.text().startsWith('parley:')) page.problems.push(`${name}: ${m.text()}`);
  });
  page.on('dialog', async (d) => {
    page.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss().catch(() => {});
  });
  await page.goto(server.url + '/');
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
