// The HTTP part of the protocol (PROTOCOL.md §2): accounts, sessions and media upload.

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

/**
 * POST /v1/media: the raw bytes with their type → {media_id, size, mime, sha256}.
 * XMLHttpRequest rather than fetch(): only it reports upload progress. Returns
 * {promise, abort}; the promise rejects with an ApiError (status 0 for a network failure or
 * an abort, with code 'aborted' for the latter).
 *
 * @param {string} token
 * @param {Blob} blob
 * @param {string} mime  the declared Content-Type (the server normalises it)
 * @param {(loaded: number, total: number) => void} [onProgress]
 */
export function uploadMedia(token, blob, mime, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/v1/media');
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', mime || 'application/octet-stream');
    xhr.responseType = 'text';
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : blob.size);
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && data && typeof data.media_id === 'string') { resolve(data); return; }
      const e = data && data.error;
      reject(new ApiError(xhr.status, e?.code, e?.message || `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'Cannot reach the server.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Upload cancelled.'));
    xhr.send(blob);
  });
  return { promise, abort: () => xhr.abort() };
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
