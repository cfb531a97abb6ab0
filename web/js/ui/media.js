// Attachments in the views: the media of a message (an image thumbnail that opens full size,
// a <video>/<audio> player, or a file card with a download link), the upload progress of an
// unsent one, the full-size viewer, and the chips of files picked in the composer.
//
// Names are text nodes like every user string. URLs come from the server's `media.url` (an
// <img> cannot send a Bearer token; a signed URL needs none) or, for the person's own files,
// from URL.createObjectURL — both allowed by the page's CSP (img-src/media-src 'self' blob:).

import { h, icon, iconButton } from './dom.js';
import { openDialog } from './dialogs.js';
import { humanSize, mediaKind } from '../media.js';

// one object URL per File for the page's life: a re-rendered bubble reuses it (no flicker),
// and these are the person's own files, few and backed by the disk
const objectUrls = new WeakMap();
function objectUrl(file) {
  let u = objectUrls.get(file);
  if (!u) { u = URL.createObjectURL(file); objectUrls.set(file, u); }
  return u;
}

/**
 * Point `el[attr]` at the media: the local file if this tab has it, else a signed URL (now if
 * cached, else when `media.url` answers). A load error renews the URL once (it may have
 * expired, e.g. a <video> seeking an hour later). onFail() when that does not help either.
 */
function bindSource(client, el, attr, { mediaId, file }, onFail) {
  if (file) {
    // the person's own file may not decode (e.g. bytes that are not what they claim)
    el.addEventListener('error', () => onFail?.());
    el[attr] = objectUrl(file);
    return;
  }
  let renewed = false;
  const set = (url) => { if (el[attr] !== new URL(url, location.href).href) el[attr] = url; };
  const cached = client.cachedMediaUrl(mediaId);
  if (cached) set(cached);
  else client.mediaUrl(mediaId).then(set, () => onFail?.());
  el.addEventListener('error', () => {
    if (renewed) { onFail?.(); return; }
    renewed = true;
    client.mediaUrl(mediaId, { fresh: true }).then(set, () => onFail?.());
  });
}

/** A description of the attachment for the bubble's aria-label. */
export function mediaWords(media) {
  const kind = mediaKind(media?.mime);
  if (kind === 'file') return `file ${media?.name || ''} (${humanSize(media?.size)})`;
  return { image: 'photo', video: 'video', audio: 'audio' }[kind];
}

/**
 * The media part of a bubble.
 * @param {object} o
 * @param {import('../client.js').Client} o.client
 * @param {{media_id?: string, mime: string, size: number, name?: string}} o.media
 * @param {File|null} o.file  the person's own file, when this tab holds it
 */
export function mediaBody({ client, media, file }) {
  const kind = mediaKind(media.mime);
  const src = { mediaId: media.media_id, file };
  const canLoad = !!(file || media.media_id);
  const name = media.name || '';
  if (kind === 'image' && canLoad) {
    const img = h('img', { class: 'media-img', alt: name || 'Photo', decoding: 'async' });
    const box = h('button', { type: 'button', class: 'media-thumb', 'aria-label': `Open ${name ? `“${name}”` : 'the photo'} full size` }, img);
    img.addEventListener('load', () => box.classList.add('is-loaded'));
    bindSource(client, img, 'src', src, () => {
      box.replaceWith(fileCard({ client, media, note: file ? '' : 'The photo could not be loaded.' }));
    });
    box.addEventListener('click', () => openViewer({ client, media, file }));
    return box;
  }
  if ((kind === 'video' || kind === 'audio') && canLoad) {
    const player = h(kind, { class: `media-${kind}`, controls: true, preload: 'metadata', 'aria-label': name || (kind === 'video' ? 'Video' : 'Audio') });
    if (kind === 'video') player.setAttribute('playsinline', '');
    const box = h('div', { class: `media-player media-player-${kind}` }, player,
      name ? h('span', { class: 'media-caption-name' }, name) : null);
    // a format this browser cannot play is still a file that can be downloaded
    bindSource(client, player, 'src', src, () => {
      box.replaceWith(fileCard({ client, media, note: file ? '' : `The ${kind} could not be played here; download it instead.` }));
    });
    return box;
  }
  return fileCard({ client, media, file });
}

/**
 * A file: icon, name, size and type, and (once sent) a download link through a signed URL.
 * A click with an expired or missing URL waits for a fresh one, then downloads.
 */
function fileCard({ client, media, note }) {
  const name = media.name || 'File';
  const ext = /\.([a-z0-9]{1,8})$/i.exec(name)?.[1]?.toUpperCase() || (media.mime || '').split('/')[1]?.toUpperCase() || '';
  const text = h('span', { class: 'file-main' },
    h('span', { class: 'file-name' }, name),
    h('span', { class: 'file-sub' }, [humanSize(media.size), ext].filter(Boolean).join(' · ')),
    note ? h('span', { class: 'file-note' }, note) : null);
  if (!media.media_id) return h('div', { class: 'file-card' }, icon('file', 'file-icon'), text);

  const link = h('a', { class: 'file-card file-link', download: name, rel: 'noopener', 'aria-label': `Download ${name} (${humanSize(media.size)})` },
    icon('file', 'file-icon'), text, icon('download', 'file-dl'));
  const cached = client.cachedMediaUrl(media.media_id);
  if (cached) link.href = cached;
  else client.mediaUrl(media.media_id).then((u) => { link.href = u; }, () => {});
  let again = false;
  link.addEventListener('click', (e) => {
    if (again) { again = false; return; }   // the click below, with a fresh URL
    const url = client.cachedMediaUrl(media.media_id);
    if (url) { link.href = url; return; }
    e.preventDefault();
    client.mediaUrl(media.media_id).then((u) => {
      link.href = u;
      again = true;
      link.click();
    }, () => {});
  });
  return link;
}

/** The progress line of an attachment not sent yet; conversation.js updates it in place. */
export function uploadStatus({ cid, onCancel }) {
  return h('div', { class: 'upload-status', dataset: { upload: cid } },
    h('progress', { class: 'upload-bar', max: '100', 'aria-label': 'Upload progress' }),
    h('span', { class: 'upload-text' }, 'Waiting to upload…'),
    h('button', { type: 'button', class: 'link-btn', onclick: onCancel }, 'Cancel'));
}

/** Refresh an uploadStatus element from client.uploadProgress(cid). */
export function showUploadProgress(el, p) {
  const bar = el.querySelector('progress');
  const text = el.querySelector('.upload-text');
  if (!p) {
    bar.removeAttribute('value');
    text.textContent = 'Waiting to upload…';
    return;
  }
  if (p.retrying) {
    bar.removeAttribute('value');
    text.textContent = p.retrying;
    return;
  }
  const pct = p.total ? Math.min(100, Math.floor((100 * p.loaded) / p.total)) : 0;
  bar.value = pct;
  text.textContent = p.total && p.loaded >= p.total ? 'Processing…' : `Uploading… ${pct}%`;
}

/** The full-size viewer of an image, with a link to the original. */
function openViewer({ client, media, file }) {
  const name = media.name || 'Photo';
  openDialog({
    title: name,
    className: 'viewer-dialog',
    build(body) {
      const img = h('img', { class: 'viewer-img', alt: name });
      const open = h('a', { class: 'link-btn', target: '_blank', rel: 'noopener noreferrer' }, 'Open original');
      img.addEventListener('load', () => { open.href = img.currentSrc || img.src; });
      bindSource(client, img, 'src', { mediaId: media.media_id, file });
      body.append(h('div', { class: 'viewer-frame' }, img),
        h('div', { class: 'dialog-actions viewer-actions' },
          h('span', { class: 'viewer-size' }, humanSize(media.size)), open));
    },
  });
}

/** A chip of a file picked in the composer, before sending: a thumbnail or an icon, name, size, remove. */
export function stagedChip(file, onRemove) {
  const isImage = mediaKind(file.type) === 'image';
  return h('li', { class: 'staged-chip' },
    isImage ? h('img', { class: 'staged-thumb', alt: '', src: objectUrl(file) }) : icon('file', 'staged-icon'),
    h('span', { class: 'staged-main' },
      h('span', { class: 'staged-name' }, file.name || 'Pasted file'),
      h('span', { class: 'staged-size' }, humanSize(file.size))),
    iconButton('close', `Remove ${file.name || 'the file'}`, onRemove, 'staged-remove'));
}
