// The HTTP part of the protocol (PROTOCOL.md §2): accounts and sessions.
// Media upload (POST /v1/media) belongs here too once the server implements it.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return {};
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, e?.code, e?.message || `HTTP ${res.status}`);
  }
  return data || {};
}

/** POST /v1/users → {user_id, username} */
export function register(username, password, displayName) {
  const body = { username, password };
  if (displayName) body.display_name = displayName;
  return call('POST', '/v1/users', { body });
}

/** POST /v1/sessions → {token, user_id, device_id}; every login is a new device. */
export function login(username, password, deviceName) {
  const body = { username, password };
  if (deviceName) body.device_name = deviceName;
  return call('POST', '/v1/sessions', { body });
}

/** DELETE /v1/sessions/current: the device's live connections close with 4001. */
export function logout(token) {
  return call('DELETE', '/v1/sessions/current', { token });
}

/** A readable name for this browser, sent as device_name (1 to 64 characters). */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS'
    : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS'
    : /Linux/.test(ua) ? 'Linux' : '';
  return `Parley web (${browser}${os ? ' on ' + os : ''})`.slice(0, 64);
}
