// Attachments: the small pure helpers shared by the protocol engine and the views — what kind
// of media a mime type is, sizes for people, the one-line label of a media message (chat list,
// announcements, message info), the readable text of an upload failure, and file names cut
// to the server's limit. No DOM, no network.

/** 'image' | 'video' | 'audio' | 'file', from a (normalised) mime type. */
export function mediaKind(mime) {
  const m = String(mime || '').toLowerCase();
  // SVG never gets here (the server refuses it), but an <img> of it would be active content
  if (m.startsWith('image/') && m !== 'image/svg+xml') return 'image';
  if (m.startsWith('video/')) return 'video';
  if (m.startsWith('audio/')) return 'audio';
  return 'file';
}

/** 1 023 B, 4.2 KB, 17 MB: binary units, as file managers show them. */
export function humanSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** The one-line description of a media message: "📷 Photo", "📎 report.pdf", or its caption. */
export function mediaLabel(media, caption) {
  const kind = mediaKind(media?.mime);
  const icon = { image: '📷', video: '🎥', audio: '🎵', file: '📎' }[kind];
  if (caption) return `${icon} ${caption}`;
  if (kind === 'file') return `${icon} ${media?.name || 'File'}`;
  return `${icon} ${{ image: 'Photo', video: 'Video', audio: 'Audio' }[kind]}`;
}

/** The text of a message for one-line places: its text, or the media label. */
export function messageLine(m) {
  if (m.media) return mediaLabel(m.media, m.text);
  return m.text || '';
}

/**
 * What the person is told when POST /v1/media fails (PROTOCOL.md §2). `retry` tells the
 * outbox whether trying again later may succeed (network, 5xx) or cannot (4xx).
 */
export function uploadFailure(err) {
  const status = err?.status ?? 0;
  if (status === 413) return { retry: false, text: 'This file is too large to send.' };
  if (status === 415) return { retry: false, text: 'This type of file is not accepted.' };
  if (status === 401) return { retry: false, text: 'Your session has ended. Sign in again to send it.' };
  if (status >= 400 && status < 500) {
    return { retry: false, text: `The server refused this file${err.message ? ` (${err.message})` : ''}.` };
  }
  if (status >= 500) return { retry: true, text: 'The server could not store the file.' };
  return { retry: true, text: 'The upload was interrupted.' };
}

const utf8 = new TextEncoder();

/** A file name for `media.name`: at most `max` UTF-8 bytes (the server's limit is 255), cut at a code point. */
export function clipName(name, max = 255) {
  let s = String(name || '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (utf8.encode(s).length <= max) return s;
  const dot = s.lastIndexOf('.');
  // keep a short extension, so the download still opens with the right program
  const ext = dot > 0 && s.length - dot <= 10 ? s.slice(dot) : '';
  let base = [...s.slice(0, s.length - ext.length)];
  while (base.length && utf8.encode(base.join('') + '…' + ext).length > max) base.pop();
  s = base.join('') + '…' + ext;
  return s;
}
