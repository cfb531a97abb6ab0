// Text and time formatting shared by the views. Times are server times (ms since the epoch);
// "today" is judged on the corrected clock (store.now()).

import { h, icon } from './dom.js';
import { messageLine } from '../media.js';

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const dayMonthFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const listFmt = new Intl.ListFormat('en', { style: 'long', type: 'conjunction' });

function startOfDay(t) {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function dayDiff(ts, now) {
  return Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
}

export const clock = (ts) => timeFmt.format(ts);
export const fullTime = (ts) => fullFmt.format(ts);
export const joinNames = (names) => listFmt.format(names);

/** The time column of the chat list: 14:05, Yesterday, Monday, 3 Mar 2026. */
export function listTime(ts, now) {
  if (!ts) return '';
  const d = dayDiff(ts, now);
  if (d <= 0) return clock(ts);
  if (d === 1) return 'Yesterday';
  if (d < 7) return weekdayFmt.format(ts);
  return dateFmt.format(ts);
}

/** A day separator in a conversation. */
export function dayLabel(ts, now) {
  const d = dayDiff(ts, now);
  if (d <= 0) return 'Today';
  if (d === 1) return 'Yesterday';
  if (d < 7) return weekdayFmt.format(ts);
  return new Date(ts).getFullYear() === new Date(now).getFullYear() ? dayMonthFmt.format(ts) : dateFmt.format(ts);
}

export function lastSeen(p, now) {
  if (!p) return '';
  if (p.online) return 'online';
  if (!p.last_seen) return 'offline';
  const d = dayDiff(p.last_seen, now);
  if (d <= 0) return `last seen today at ${clock(p.last_seen)}`;
  if (d === 1) return `last seen yesterday at ${clock(p.last_seen)}`;
  return `last seen ${dateFmt.format(p.last_seen)} at ${clock(p.last_seen)}`;
}

/** The text of a system message, names resolved ("You" for the current user). */
export function systemText(store, m) {
  const s = m.system || {};
  const by = store.userName(s.by ?? m.from);
  const names = (ids) => joinNames((ids || []).map((id) => {
    const n = store.userName(id);
    return n === 'You' ? 'you' : n;
  }));
  switch (s.event) {
    case 'created':
      return `${by} created the group “${s.title ?? ''}”` + (s.users?.length ? ` and added ${names(s.users)}` : '');
    case 'added': return `${by} added ${names(s.users)}`;
    case 'removed': return `${by} removed ${names(s.users)}`;
    case 'left': return `${by} left`;
    case 'title': return `${by} changed the group name to “${s.title ?? ''}”`;
    case 'admins': {
      const list = s.users || [];
      return list.length ? `Group admins: ${names(list)}` : `${by} changed the group admins`;
    }
    default: return 'The group changed';
  }
}

/** A short preview of a message for the chat list. */
export function preview(store, c, m) {
  if (!m) return '';
  if (m.kind === 'system') return systemText(store, m);
  const body = messageLine(m);   // a media message: "📷 Photo", "📎 report.pdf", or "📷 caption"
  if (c.kind === 'group' && m.from !== store.me.user_id) return `${store.userName(m.from)}: ${body}`;
  return body;
}

function hash(s) {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(x);
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const chars = parts.length > 1 ? [parts[0], parts[parts.length - 1]] : [parts[0] || '?'];
  return chars.map((p) => [...p][0]).join('').toUpperCase();
}

/** A round avatar with initials; the color comes from the id (CSS classes, no inline style). */
export function avatar(name, id, { group = false, online = false, size = '' } = {}) {
  return h('span', { class: ['avatar', `av-c${hash(id || name || '') % 8}`, group && 'avatar-group', size && `avatar-${size}`], 'aria-hidden': 'true' },
    initials(name),
    online ? h('span', { class: 'online-dot' }) : null);
}

const TICK_LABEL = {
  pending: 'Waiting to send',
  failed: 'Not sent',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
};

/** The status icon of one of my messages: clock, ✓, ✓✓, blue ✓✓, or a failure mark. */
export function tickIcon(state) {
  const name = { pending: 'clock', failed: 'alert', sent: 'check', delivered: 'checks', read: 'checks' }[state];
  return h('span', { class: `tick tick-${state}`, role: 'img', 'aria-label': TICK_LABEL[state], title: TICK_LABEL[state] },
    icon(name));
}
