// The files of attachments that are not uploaded yet, kept in IndexedDB under their message's
// `cid`, so that a reload, a crash or a closed tab in the middle of an upload can upload them
// again (localStorage, where the outbox lives, cannot hold files). One database per user.
//
// Every call is best effort: IndexedDB may be missing (some private modes) or full. Then the
// file lives only in this page's memory, and an entry whose file is gone is shown as failed
// ("attach it again"), never sent without it.

function open(userId) {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') { reject(new Error('no IndexedDB')); return; }
    const req = indexedDB.open(`parley.uploads.${userId}`, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('files');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('IndexedDB blocked'));
  });
}

export class BlobStore {
  constructor(userId) {
    this.userId = userId;
    this._db = null;
  }

  _open() {
    if (!this._db) this._db = open(this.userId).catch((e) => { this._db = null; throw e; });
    return this._db;
  }

  async _tx(mode, fn) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('files', mode);
      const req = fn(tx.objectStore('files'));
      // resolve on completion: for a write, that is when it is durable enough to survive a reload
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('aborted'));
    });
  }

  /** Store a file; false when it could not be stored (it then lives only in memory). */
  async put(cid, blob) {
    try { await this._tx('readwrite', (s) => s.put(blob, cid)); return true; } catch { return false; }
  }

  /** The stored file, or null. */
  async get(cid) {
    try { return (await this._tx('readonly', (s) => s.get(cid))) || null; } catch { return null; }
  }

  async delete(cid) {
    try { await this._tx('readwrite', (s) => s.delete(cid)); } catch { /* nothing stored */ }
  }

  /** Delete every file whose cid is not in `keep` (left by an entry that is gone). */
  async sweep(keep) {
    try {
      const keys = await this._tx('readonly', (s) => s.getAllKeys());
      for (const k of keys || []) if (!keep.has(k)) await this.delete(k);
    } catch { /* best effort */ }
  }

  async clear() {
    try { await this._tx('readwrite', (s) => s.clear()); } catch { /* nothing stored */ }
  }
}
