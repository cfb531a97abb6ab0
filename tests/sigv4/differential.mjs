// Differential test of Parley's SigV4 signer (src/blob/s3/sigv4.cpp) against the AWS SDK's own
// (@smithy/signature-v4, the signer of the AWS SDK for JavaScript v3), signing the same random
// requests with both and comparing every header and query parameter that comes out.
//
// Usage: SIGV4_SIGN=build/sigv4-sign node differential.mjs [COUNT] [SEED]
// (`make sigv4-test` builds the signer and runs this). Deterministic for a given seed; any
// mismatch exits 1 and prints the request. The requests are S3-style: the path is encoded once
// by the SDK's own S3 path encoding and never normalised (uriEscapePath: false), as the S3
// client does.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

const COUNT = Number(process.argv[2] ?? 3000);
const SEED = Number(process.argv[3] ?? 20240601);
const SIGNER = process.env.SIGV4_SIGN;
if (!SIGNER) {
  console.error('differential: set SIGV4_SIGN to the sigv4-sign executable');
  process.exit(2);
}

// ---- a seeded generator (mulberry32), so that a failure can be replayed ----
let state = SEED >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(random() * n);
const pick = (list) => list[int(list.length)];
const chance = (p) => random() < p;
const string = (alphabet, min, max) => {
  let out = '';
  for (let n = min + int(max - min + 1); n > 0; n--) out += pick(alphabet);
  return out;
};

const PLAIN = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
const ODD = [...'ABCXYZ-_.~ +=%&?#!*\'()$,;:@[]{}"<>^`|\\'];
const UNICODE = ['é', 'ß', 'ሴ', '日本', '😀', 'Ω', '\u00a0', '\u2028'];
const KEY_CHARS = [...PLAIN, ...PLAIN, ...ODD, ...UNICODE];

function segment() {
  const r = random();
  if (r < 0.05) return '';
  if (r < 0.08) return '.';
  if (r < 0.1) return '..';
  return string(KEY_CHARS, 1, 12);
}

function rawPath() {
  if (chance(0.05)) return '/';
  const bucket = string([...PLAIN, '-', '.'], 3, 20);
  const parts = [];
  for (let n = 1 + int(chance(0.2) ? 12 : 4); n > 0; n--) parts.push(segment());
  const key = parts.join('/') + (chance(0.1) ? '/' : '');
  return chance(0.3) ? `/${key}` : `/${bucket}/${key}`;  // virtual-hosted or path-style
}

// Parameter names must not be the signer's own (X-Amz-*): the SDK overwrites those.
function queryName() {
  return pick([
    'uploads', 'uploadId', 'partNumber', 'prefix', 'max-keys', 'list-type', 'delimiter',
    'response-content-type', 'response-content-disposition', 'versionId', 'Param',
  ]) + (chance(0.5) ? '' : string(KEY_CHARS, 1, 6));
}

function queryValue() {
  const r = random();
  if (r < 0.2) return '';
  if (r < 0.3) return pick(['text/plain; charset=utf-8', 'attachment; filename="a b.png"',
                            "inline; filename*=UTF-8''%E2%82%AC.txt", 'image/png']);
  return string(KEY_CHARS, 1, 20);
}

function query() {
  const list = [];
  for (let n = int(chance(0.3) ? 8 : 3); n > 0; n--) {
    const name = list.length && chance(0.2) ? pick(list)[0] : queryName();  // repeated names
    list.push([name, queryValue()]);
  }
  return list;
}

// Header names the SDK never signs, or sets itself, are left out: they are not ours to test.
const SKIP_HEADERS = new Set(['authorization', 'cache-control', 'connection', 'expect', 'from',
  'keep-alive', 'max-forwards', 'pragma', 'referer', 'te', 'trailer', 'transfer-encoding',
  'upgrade', 'user-agent', 'x-amzn-trace-id', 'host', 'date', 'x-amz-date',
  'x-amz-content-sha256', 'x-amz-security-token']);

function headerValue() {
  const r = random();
  if (r < 0.1) return '';
  if (r < 0.2) return '   ';
  const blank = () => pick([' ', '  ', '\t', ' \t  ', '']);
  const words = [];
  for (let n = 1 + int(4); n > 0; n--) words.push(string([...PLAIN, ...ODD, 'é'], 1, 10));
  return blank() + words.join(pick([' ', '   ', '\t', ' \t '])) + blank();
}

function headers(presigning) {
  const out = [];
  const seen = new Set();
  for (let n = int(5); n > 0; n--) {
    let name = pick(['Range', 'Content-Type', 'Content-MD5', 'If-Match', 'X-Amz-Meta-',
                     'x-amz-storage-class', 'X-Parley-', 'content-disposition']);
    if (name.endsWith('-')) name += string([...PLAIN, '-', 'A', 'Z'], 1, 8);
    const lower = name.toLowerCase();
    // Pre-signing moves x-amz-* headers into the query in the SDK; ours signs only what it is
    // given, so a pre-signed request here carries no x-amz-* header.
    if (SKIP_HEADERS.has(lower) || seen.has(lower) || (presigning && lower.startsWith('x-amz-')))
      continue;
    seen.add(lower);
    out.push([name, headerValue()]);
  }
  return out;
}

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');

function payload() {
  const r = random();
  if (r < 0.25) return { hash: sha256hex('') };
  if (r < 0.45) return { hash: 'UNSIGNED-PAYLOAD' };
  if (r < 0.55) return { hash: pick(['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']) };
  const body = string(KEY_CHARS, 0, 200);
  return { hash: sha256hex(body), body };
}

const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'us-gov-west-1', 'auto', 'garage'];

function request(index) {
  const presigning = chance(0.4);
  const host = pick(['examplebucket.s3.amazonaws.com', 's3.eu-west-1.amazonaws.com',
                     '127.0.0.1:9000', 'localhost:4569', 'minio.internal:9443']);
  // Seconds from 1990 to 2037, sometimes a second before or after midnight UTC.
  let time = 631152000 + int(1500000000);
  if (chance(0.1)) time = time - (time % 86400) + pick([-1, 0, 1]);
  return {
    index,
    mode: presigning ? 'presign' : 'header',
    method: presigning ? pick(['GET', 'GET', 'PUT', 'HEAD']) : pick(['GET', 'PUT', 'POST', 'DELETE', 'HEAD']),
    host,
    path: rawPath(),
    query: query(),
    headers: headers(presigning),
    payload: presigning ? { hash: 'UNSIGNED-PAYLOAD' } : payload(),
    region: chance(0.8) ? pick(REGIONS) : string(PLAIN, 2, 12),
    service: chance(0.9) ? 's3' : pick(['s3-object-lambda', 'service', 'execute-api']),
    accessKeyId: chance(0.5) ? 'AKIAIOSFODNN7EXAMPLE' : string([...PLAIN, 'A', 'Z'], 16, 20),
    secretAccessKey: chance(0.5) ? 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
                                 : string([...PLAIN, 'A', 'Z', '/', '+'], 20, 40),
    sessionToken: chance(0.3) ? string([...PLAIN, 'A', 'Z', '/', '+', '='], 10, 300) : '',
    time,
    expires: pick([1, 60, 900, 3600, 86400, 604800]),
  };
}

// ---- our signer's input line ----
const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
function line(r) {
  const fields = [
    `mode=${r.mode}`, `method=${r.method}`, `host=${hex(r.host)}`, `path=${hex(r.path)}`,
    `region=${hex(r.region)}`, `service=${hex(r.service)}`, `ak=${hex(r.accessKeyId)}`,
    `sk=${hex(r.secretAccessKey)}`, `token=${hex(r.sessionToken)}`, `time=${r.time}`,
    `payload=${hex(r.payload.hash)}`, `expires=${r.expires}`, 'sha256=1',
  ];
  for (const [n, v] of r.query) fields.push(`q=${hex(n)}.${hex(v)}`);
  for (const [n, v] of r.headers) fields.push(`h=${hex(n)}.${hex(v)}`);
  return fields.join('\t');
}

function parseOutput(text) {
  const out = {};
  for (const field of text.split('\t')) {
    const eq = field.indexOf('=');
    out[field.slice(0, eq)] = Buffer.from(field.slice(eq + 1), 'hex').toString('utf8');
  }
  return out;
}

// ---- the SDK's side ----
// S3's own path encoding (@smithy/core escapeUriPath: each segment with encodeURIComponent plus
// !'()*), which the S3 client applies to keys before signing with uriEscapePath: false.
const escapeUri = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const escapePath = (p) => p.split('/').map(escapeUri).join('/');

async function sdkSign(r) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey,
                   ...(r.sessionToken ? { sessionToken: r.sessionToken } : {}) },
    region: r.region, service: r.service, sha256: Sha256, uriEscapePath: false,
  });
  const query = {};
  for (const [n, v] of r.query) {
    if (!(n in query)) query[n] = v;
    else query[n] = [].concat(query[n], v);
  }
  const headers = { host: r.host, 'x-amz-content-sha256': r.payload.hash };
  for (const [n, v] of r.headers) headers[n] = v;
  const request = { method: r.method, protocol: 'https:', hostname: r.host.split(':')[0],
                    path: escapePath(r.path), query, headers, body: r.payload.body };
  const signingDate = new Date(r.time * 1000);
  if (r.mode === 'header') {
    const signed = await signer.sign(request, { signingDate });
    return { headers: signed.headers };
  }
  // The payload hash of a pre-signed URL travels in x-amz-content-sha256 without being signed
  // or moved into the query (what S3's presigner does for UNSIGNED-PAYLOAD).
  const unsigned = new Set(['x-amz-content-sha256']);
  const signed = await signer.presign(request, {
    signingDate, expiresIn: r.expires, unsignableHeaders: unsigned, unhoistableHeaders: unsigned,
  });
  return { query: signed.query };
}

function compare(r, ours, sdk) {
  const problems = [];
  if (ours.error !== undefined) return [`our signer refused it: ${ours.error}`];
  if (r.mode === 'header') {
    const expected = { authorization: sdk.headers.authorization, 'x-amz-date': sdk.headers['x-amz-date'],
                       'x-amz-content-sha256': sdk.headers['x-amz-content-sha256'] };
    if (r.sessionToken) expected['x-amz-security-token'] = sdk.headers['x-amz-security-token'];
    for (const [name, value] of Object.entries(expected))
      if (ours[name] !== value) problems.push(`${name}:\n  ours: ${ours[name]}\n  sdk:  ${value}`);
    const extra = Object.keys(ours).filter((n) => !(n in expected));
    if (extra.length) problems.push(`our signer added ${extra.join(', ')}`);
  } else {
    // The same parameters, and our query string exactly in canonical form.
    const pairs = [];
    for (const [n, v] of Object.entries(sdk.query))
      for (const value of [].concat(v)) pairs.push([escapeUri(n), escapeUri(value)]);
    const signature = pairs.find(([n]) => n === 'X-Amz-Signature');
    const rest = pairs.filter(([n]) => n !== 'X-Amz-Signature')
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const expected = [...rest, signature].map(([n, v]) => `${n}=${v}`).join('&');
    if (ours.query !== expected) problems.push(`query:\n  ours: ${ours.query}\n  sdk:  ${expected}`);
  }
  return problems;
}

const requests = Array.from({ length: COUNT }, (_, i) => request(i));
const run = spawnSync(SIGNER, [], { input: requests.map(line).join('\n') + '\n', maxBuffer: 1 << 30 });
if (run.status !== 0) {
  console.error(`differential: ${SIGNER} exited with ${run.status}: ${run.stderr}`);
  process.exit(1);
}
const outputs = run.stdout.toString('utf8').split('\n').filter((l) => l.length);
if (outputs.length !== requests.length) {
  console.error(`differential: ${requests.length} requests, ${outputs.length} answers`);
  process.exit(1);
}

let failures = 0;
const counts = { header: 0, presign: 0, token: 0, query: 0, unicode: 0 };
for (const r of requests) {
  const sdk = await sdkSign(r);
  const problems = compare(r, parseOutput(outputs[r.index]), sdk);
  counts[r.mode]++;
  if (r.sessionToken) counts.token++;
  if (r.query.length) counts.query++;
  if (/[^\x00-\x7f]/.test(r.path)) counts.unicode++;
  if (problems.length) {
    if (++failures <= 10) {
      console.error(`MISMATCH #${r.index} (seed ${SEED}):\n${JSON.stringify(r, null, 1)}\n${problems.join('\n')}\n`);
    }
  }
}
const summary = `${requests.length} requests (${counts.header} header-signed, ${counts.presign} pre-signed, ` +
  `${counts.token} with a session token, ${counts.query} with a query, ${counts.unicode} with non-ASCII paths)`;
if (failures) {
  console.error(`differential: ${failures} of ${summary} differ from @smithy/signature-v4`);
  process.exit(1);
}
console.log(`differential: ${summary} signed identically by Parley and @smithy/signature-v4`);
