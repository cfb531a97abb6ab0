// Runs s3rver on 127.0.0.1 for blob/s3's tests; started by scripts/s3rver.sh, not by hand.
//
// Usage: node run-s3rver.mjs DATA_DIR ENDPOINT_FILE [WATCH_PID]
// Listens on a port the kernel picks (no race for a "free" port), then writes
// http://127.0.0.1:PORT to ENDPOINT_FILE. With WATCH_PID it exits as soon as that process is gone,
// so that a test binary that crashes or is killed never leaves a server behind.
// serviceEndpoint "localhost": BUCKET.s3.localhost:PORT reaches BUCKET (virtual-hosted style).
import { writeFileSync, renameSync } from 'node:fs';
import S3rver from 's3rver';

const [directory, endpointFile, watchPid] = process.argv.slice(2);
if (!directory || !endpointFile) {
  console.error('usage: node run-s3rver.mjs DATA_DIR ENDPOINT_FILE [WATCH_PID]');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1', port: 0, directory, silent: true, serviceEndpoint: 'localhost',
});
const { port } = await server.run();
writeFileSync(`${endpointFile}.tmp`, `http://127.0.0.1:${port}\n`);
renameSync(`${endpointFile}.tmp`, endpointFile);

const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (watchPid) {
  setInterval(() => {
    try {
      process.kill(Number(watchPid), 0);
    } catch {
      stop();
    }
  }, 250).unref();
}
