"""A small HTTP helper over http.client for the Parley end-to-end tests (one connection per call)."""

from __future__ import annotations

import http.client
import json
from typing import Any, Optional

_NO_BODY = object()


class HttpResult(tuple):
    """(status, body) — so `status, body = post_json(...)` works — plus .status, .body,
    .headers (lower-cased names) and .raw (the body bytes). `body` is the parsed JSON when the
    response says JSON and parses, else the text."""

    def __new__(cls, status: int, body: Any, headers: dict, raw: bytes):
        self = super().__new__(cls, (status, body))
        self.headers = headers
        self.raw = raw
        return self

    @property
    def status(self) -> int:
        return self[0]

    @property
    def body(self) -> Any:
        return self[1]

    def __repr__(self) -> str:
        return f"HttpResult(status={self.status}, body={self.raw[:300]!r})"

    def error_code(self) -> Optional[str]:
        """The `error.code` of a protocol error body, or None when the body is not one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return code if isinstance(code, str) else None
        return None


def request(port: int, method: str, path: str, body: Optional[bytes] = None,
            token: Optional[str] = None, headers: Optional[dict] = None,
            host: str = "127.0.0.1", timeout: float = 10.0) -> HttpResult:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        parsed: Any = raw.decode("utf-8", "replace")
        if raw and "json" in rh.get("content-type", "").lower():
            try:
                parsed = json.loads(raw)
            except ValueError:
                pass
        return HttpResult(resp.status, parsed, rh, raw)
    finally:
        conn.close()


def post_json(port: int, path: str, obj: Any = _NO_BODY, token: Optional[str] = None,
              raw: Optional[bytes] = None, content_type: str = "application/json",
              headers: Optional[dict] = None) -> HttpResult:
    """POST obj encoded as JSON, or `raw` bytes as they are."""
    if raw is not None:
        body = raw
    elif obj is _NO_BODY:
        body = b""
    else:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    hdrs = {"Content-Type": content_type}
    hdrs.update(headers or {})
    return request(port, "POST", path, body=body, token=token, headers=hdrs)


def delete(port: int, path: str, token: Optional[str] = None,
           headers: Optional[dict] = None) -> HttpResult:
    return request(port, "DELETE", path, token=token, headers=headers)


def get(port: int, path: str, token: Optional[str] = None,
        headers: Optional[dict] = None) -> HttpResult:
    return request(port, "GET", path, token=token, headers=headers)


def assert_error(res: HttpResult, status: int, code: Optional[str] = None) -> None:
    """Assert an HTTP error: the status, and the body `{"error":{"code","message"}}` (with code)."""
    assert res.status == status, f"expected HTTP {status}, got {res.status}: {res.raw[:500]!r}"
    assert isinstance(res.body, dict) and isinstance(res.body.get("error"), dict), \
        f"error body is not {{\"error\":{{...}}}} JSON: {res.headers.get('content-type')!r} {res.raw[:500]!r}"
    err = res.body["error"]
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), \
        f"error lacks code/message strings: {res.body!r}"
    if code is not None:
        assert err["code"] == code, f"expected error code {code!r}, got {res.body!r}"
