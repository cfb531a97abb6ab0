// A real parleyd per test (the idea of tests/e2e/harness.py, in JS): a fresh data dir, port 0
// with --port-file, stopped (SIGTERM, then SIGKILL) afterwards. restart() keeps the data dir
// and the port, so browsers reconnect to the same address.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, openSync, closeSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function parleydBinary() {
  return process.env.PARLEYD || path.join(REPO, 'build', 'parleyd');
}

export class Server {
  constructor({ extraArgs = [] } = {}) {
    this.root = mkdtempSync(path.join(tmpdir(), 'parley-browser-'));
    this.dataDir = path.join(this.root, 'data');
    this.portFile = path.join(this.root, 'port');
    this.logPath = path.join(this.root, 'parleyd.log');
    this.extraArgs = extraArgs;
    this.proc = null;
    this.port = null;
    this.starts = 0;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async start({ port = 0, timeoutMs = 20000 } = {}) {
    const bin = parleydBinary();
    if (!existsSync(bin)) throw new Error(`parleyd not found at ${bin} (build it, or set PARLEYD)`);
    try { unlinkSync(this.portFile); } catch { /* none yet */ }
    const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', this.dataDir, '--port-file', this.portFile,
      '--threads', '2', '--durability', 'os', ...this.extraArgs];
    this.starts += 1;
    this.expectExit = false;
    appendFileSync(this.logPath, `\n===== browser tests: start #${this.starts}: ${bin} ${args.join(' ')}\n`);
    const fd = openSync(this.logPath, 'a');
    this.proc = spawn(bin, args, { stdio: ['ignore', fd, fd], cwd: this.root });
    closeSync(fd);
    const proc = this.proc;
    let exited = null;
    proc.once('exit', (code, sig) => {
      exited = { code, sig };
      if (!this.expectExit) {
        // not stopped by us: say so, or the tests would only see browsers failing to connect
        process.stderr.write(`parleyd (pid ${proc.pid}) exited unexpectedly: ${JSON.stringify(exited)}\n${this.logTail(20)}\n`);
      }
    });
    proc.once('error', (e) => { exited = { error: e.message }; });
    const deadline = Date.now() + timeoutMs;
    // the port may still be held by the previous process for a moment after a restart
    while (Date.now() < deadline) {
      if (exited) {
        if (port && this._retryBind-- > 0) return this.start({ port, timeoutMs: deadline - Date.now() });
        throw new Error(`parleyd exited during startup (${JSON.stringify(exited)})\n${this.logTail()}`);
      }
      let text = '';
      try { text = readFileSync(this.portFile, 'utf8'); } catch { /* not yet */ }
      if (text.endsWith('\n') && /^\d+$/.test(text.trim())) {
        this.port = Number(text.trim());
        return this;
      }
      await sleep(20);
    }
    await this.kill();
    throw new Error(`parleyd did not write its port file within ${timeoutMs} ms\n${this.logTail()}`);
  }

  /** SIGTERM (the server closes every WebSocket with 1012) and wait for the exit. */
  async terminate(timeoutMs = 10000) {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((res) => p.once('exit', res));
    this.expectExit = true;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(t);
  }

  async kill() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((res) => p.once('exit', res));
    this.expectExit = true;
    p.kill('SIGKILL');
    await done;
  }

  /** Start again on the same data dir and the same port. */
  async restart() {
    await this.terminate();
    this._retryBind = 50;
    return this.start({ port: this.port });
  }

  async stop({ keep = !!process.env.PARLEY_BROWSER_KEEP } = {}) {
    await this.terminate(5000);
    if (!keep) rmSync(this.root, { recursive: true, force: true });
  }

  logTail(lines = 60) {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch { return '(no log)'; }
  }
}
