"""Media (PROTOCOL.md §2 POST/GET /v1/media, `media.url`, `send` with `media`) end to end:
uploads streamed into the blob store, access rules, signed URLs, ranges, hostile uploads, and a
server killed mid-upload."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import harness
import httpclient
from httpclient import assert_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 50
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def upload(port, token, data: bytes, mime: str = "image/png", headers=None):
    h = {"Content-Type": mime}
    h.update(headers or {})
    return httpclient.request(port, "POST", "/v1/media", body=data, token=token, headers=h)


def uploaded(port, token, data: bytes, mime: str = "image/png") -> dict:
    r = upload(port, token, data, mime)
    assert r.status == 201, r
    return r.body


def fetch(port, media_id, token=None, headers=None, query=""):
    return httpclient.request(port, "GET", f"/v1/media/{media_id}{query}", token=token,
                              headers=headers)


def raw_http(port: int, data: bytes, read_timeout: float = 5.0, close_after_send: bool = False) -> bytes:
    """Send raw bytes, return everything the server answers until it closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(data)
        if close_after_send:
            s.shutdown(socket.SHUT_WR)
        return harness.read_until_closed(s)
    finally:
        s.close()


# With scripts/e2e-media-s3.sh, parleyd stores media in an s3rver bucket: ENDPOINT/BUCKET.
S3_BUCKET_URL = os.environ.get("PARLEY_E2E_S3_BUCKET_URL", "")


def s3_keys() -> list[str]:
    """The keys of the objects in the test bucket (ListObjectsV2, signed by curl as the script's
    own requests are; s3rver checks the access key id)."""
    keys, token = [], ""
    while True:
        query = "list-type=2" + (f"&continuation-token={urllib.parse.quote(token)}" if token else "")
        out = subprocess.run(
            ["curl", "-fsS", "--aws-sigv4", "aws:amz:us-east-1:s3",
             "--user", f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}",
             "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", f"{S3_BUCKET_URL}?{query}"],
            check=True, capture_output=True, text=True).stdout
        keys += re.findall(r"<Key>([^<]*)</Key>", out)
        m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", out)
        if not m:
            return keys
        token = m.group(1)


def media_files(server) -> list:
    """Every object in the media store: files under objects/, or the bucket's keys."""
    if S3_BUCKET_URL:
        return s3_keys()
    objects = Path(server.data_dir) / "media" / "objects"
    return [p for p in objects.rglob("*") if p.is_file()] if objects.exists() else []


def temp_files(server) -> list[Path]:
    """Uploads in progress in the filesystem store (an S3 upload in progress is a multipart
    upload, never an object: media_files() is what shows that none was left behind there)."""
    tmp = Path(server.data_dir) / "media" / "tmp"
    return [p for p in tmp.iterdir()] if tmp.exists() else []


def url_key(server) -> bytes:
    return (Path(server.data_dir) / "media-url.key").read_text().strip().encode()


def sign(server, media_id: str, exp: int) -> str:
    msg = f"parley-media-url-v1\n{media_id}\n{exp}".encode()
    return hmac.new(url_key(server), msg, hashlib.sha256).hexdigest()


# ===================================================================== upload

def test_upload_answers_201_with_id_size_mime_and_sha256(parley):
    a = parley.user()
    r = upload(parley.port, a.devices[0].token, PNG, "image/PNG; charset=binary")
    assert r.status == 201, r
    b = r.body
    assert set(b) >= {"media_id", "size", "mime", "sha256"}, b
    assert b["size"] == len(PNG)
    assert b["mime"] == "image/png"  # normalised: lowercase, no parameters
    assert b["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert len(b["media_id"]) >= 22  # 128 random bits
    assert r.headers.get("location") == f"/v1/media/{b['media_id']}"


def test_each_upload_gets_a_new_id(parley):
    a = parley.user()
    t = a.devices[0].token
    assert uploaded(parley.port, t, PNG)["media_id"] != uploaded(parley.port, t, PNG)["media_id"]


def test_upload_needs_a_valid_token(parley):
    assert_error(upload(parley.port, None, PNG), 401, "unauthenticated")
    assert_error(upload(parley.port, "not-a-token", PNG), 401, "unauthenticated")


def test_upload_needs_a_content_type(parley):
    a = parley.user()
    r = httpclient.request(parley.port, "POST", "/v1/media", body=PNG, token=a.devices[0].token,
                           headers={"Content-Type": ""})
    assert_error(r, 400, "bad_request")
    assert_error(upload(parley.port, a.devices[0].token, PNG, "not a type"), 400, "bad_request")


def test_zero_byte_upload(parley):
    a = parley.user()
    t = a.devices[0].token
    b = uploaded(parley.port, t, b"", "text/plain")
    assert b["size"] == 0 and b["sha256"] == hashlib.sha256(b"").hexdigest()
    r = fetch(parley.port, b["media_id"], t)
    assert r.status == 200 and r.raw == b"", r
    assert r.headers.get("content-length") == "0"
    # An empty PNG has no PNG signature.
    assert_error(upload(parley.port, t, b"", "image/png"), 415, "bad_request")


def test_large_upload_streams_and_round_trips(parley):
    a = parley.user()
    t = a.devices[0].token
    data = os.urandom(1 << 20) * 12 + b"tail"  # 12 MiB: past any single read or write
    data = b"%PDF-1.4\n" + data
    b = uploaded(parley.port, t, data, "application/pdf")
    assert b["size"] == len(data) and b["sha256"] == hashlib.sha256(data).hexdigest()
    r = fetch(parley.port, b["media_id"], t)
    assert r.status == 200 and r.raw == data


def test_chunked_upload(parley):
    a = parley.user()
    t = a.devices[0].token
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (PNG[:100], PNG[100:])) + b"0\r\n\r\n"
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
            "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    out = raw_http(parley.port, head + body)
    assert out.startswith(b"HTTP/1.1 201"), out[:300]
    assert hashlib.sha256(PNG).hexdigest().encode() in out


# ===================================================================== refused uploads

def test_active_types_are_refused(parley):
    a = parley.user()
    t = a.devices[0].token
    for mime in ("text/html", "application/xhtml+xml", "image/svg+xml", "text/javascript",
                 "application/javascript", "TEXT/HTML; charset=utf-8"):
        assert_error(upload(parley.port, t, b"hello", mime), 415, "bad_request")


def test_png_declared_as_html_is_refused(parley):
    a = parley.user()
    assert_error(upload(parley.port, a.devices[0].token, PNG, "text/html"), 415, "bad_request")


def test_html_declared_as_png_is_refused(parley):
    a = parley.user()
    assert_error(upload(parley.port, a.devices[0].token, HTML, "image/png"), 415, "bad_request")


@pytest.mark.parametrize("body", [HTML, b"  \n<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  b"\xef\xbb\xbf<html>", b"<?xml version='1.0'?><x/>",
                                  b"hello <script>alert(1)</script>"])
def test_markup_is_refused_whatever_its_declared_type(parley, body):
    a = parley.user()
    for mime in ("text/plain", "application/octet-stream"):
        assert_error(upload(parley.port, a.devices[0].token, body, mime), 415, "bad_request")


def test_signature_mismatch_is_refused(parley):
    a = parley.user()
    t = a.devices[0].token
    assert_error(upload(parley.port, t, PNG, "image/jpeg"), 415, "bad_request")
    assert_error(upload(parley.port, t, b"GIF89a" + b"\0" * 20, "image/png"), 415, "bad_request")
    assert uploaded(parley.port, t, b"GIF89a" + b"\0" * 20, "image/gif")["mime"] == "image/gif"


def test_declared_200_mib_is_refused_before_the_body_is_read(parley):
    a = parley.user()
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a.devices[0].token}\r\n"
            f"Content-Type: image/png\r\nContent-Length: {200 << 20}\r\n\r\n").encode()
    # Only the head is sent: the answer must come without any of the body.
    out = raw_http(parley.port, head + PNG[:16], read_timeout=5.0)
    assert out.startswith(b"HTTP/1.1 413"), out[:300]
    assert b"too_large" in out


def test_body_past_the_limit_is_refused(server_factory, parley_for):
    srv = server_factory(extra_args=["--media-max-bytes", "5000"])
    p = parley_for(srv)
    a = p.user()
    t = a.devices[0].token
    assert uploaded(srv.port, t, PNG[:16] + b"\0" * 4984)["size"] == 5000
    stored = media_files(srv)
    assert_error(upload(srv.port, t, PNG[:16] + b"\0" * 4985), 413, "too_large")
    # Chunked (no declared length): refused on the bytes actually read.
    chunk = PNG[:16] + b"\0" * 6000
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
            "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    out = raw_http(srv.port, head + body)
    assert out.startswith(b"HTTP/1.1 413"), out[:300]
    assert temp_files(srv) == []
    assert media_files(srv) == stored, "a refused upload stores nothing"


def test_lying_content_length(server_factory, parley_for):
    srv = server_factory()
    p = parley_for(srv)
    a = p.user()
    t = a.devices[0].token
    before = media_files(srv)
    # Declares more than it sends, then stops: no object.
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
            f"Content-Type: image/png\r\nContent-Length: {len(PNG) + 5000}\r\n\r\n").encode()
    out = raw_http(srv.port, head + PNG, read_timeout=2.0, close_after_send=True)
    assert not out.startswith(b"HTTP/1.1 201"), out[:300]
    assert len(media_files(srv)) == len(before)
    # Declares less than it sends: only the declared bytes are the upload; the rest is not a
    # request and is answered 400.
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
            f"Content-Type: image/png\r\nContent-Length: 100\r\n\r\n").encode()
    out = raw_http(srv.port, head + PNG, read_timeout=3.0)
    assert out.startswith(b"HTTP/1.1 201"), out[:300]
    assert hashlib.sha256(PNG[:100]).hexdigest().encode() in out
    assert b"HTTP/1.1 400" in out
    deadline = time.time() + 5
    while temp_files(srv) and time.time() < deadline:
        time.sleep(0.05)
    assert temp_files(srv) == []
    assert len(media_files(srv)) == len(before) + 1


# ===================================================================== download and access

def test_uploader_fetches_with_safe_headers(parley):
    a = parley.user()
    t = a.devices[0].token
    b = uploaded(parley.port, t, PNG)
    r = fetch(parley.port, b["media_id"], t)
    assert r.status == 200 and r.raw == PNG, r
    h = r.headers
    assert h["content-type"] == "image/png"
    assert h["x-content-type-options"] == "nosniff"
    assert "sandbox" in h["content-security-policy"]
    assert h["etag"] == f'"{b["sha256"]}"'
    assert h["accept-ranges"] == "bytes"
    assert "content-disposition" not in h  # an image is shown inline


def test_non_media_types_download_as_attachments(parley):
    a = parley.user()
    t = a.devices[0].token
    for data, mime in ((PDF, "application/pdf"), (b"plain words", "text/plain"),
                       (b"\0\1\2", "application/octet-stream")):
        b = uploaded(parley.port, t, data, mime)
        r = fetch(parley.port, b["media_id"], t)
        assert r.status == 200 and r.raw == data
        assert r.headers.get("content-disposition", "").startswith("attachment"), (mime, r.headers)
        assert r.headers["x-content-type-options"] == "nosniff"


def test_head_answers_headers_only(parley):
    a = parley.user()
    t = a.devices[0].token
    b = uploaded(parley.port, t, PNG)
    r = httpclient.request(parley.port, "HEAD", f"/v1/media/{b['media_id']}", token=t)
    assert r.status == 200 and r.raw == b""
    assert r.headers["content-length"] == str(len(PNG))


def test_if_none_match_answers_304(parley):
    a = parley.user()
    t = a.devices[0].token
    b = uploaded(parley.port, t, PNG)
    r = fetch(parley.port, b["media_id"], t, headers={"If-None-Match": f'"{b["sha256"]}"'})
    assert r.status == 304 and r.raw == b""


def test_anonymous_gets_401_and_stranger_403(parley):
    a, stranger = parley.user(), parley.user()
    b = uploaded(parley.port, a.devices[0].token, PNG)
    assert_error(fetch(parley.port, b["media_id"]), 401, "unauthenticated")
    assert_error(fetch(parley.port, b["media_id"], "bogus-token"), 401, "unauthenticated")
    assert_error(fetch(parley.port, b["media_id"], stranger.devices[0].token), 403, "forbidden")


def test_unknown_and_hostile_ids(parley):
    a = parley.user()
    t = a.devices[0].token
    for path in ("/v1/media/mabcdefghijklmnopqrstuvwxyz", "/v1/media/../../etc/passwd",
                 "/v1/media/..%2F..%2Fetc%2Fpasswd", "/v1/media/%2e%2e%2f", "/v1/media/m%00",
                 "/v1/media/", "/v1/media/" + "a" * 5000):
        r = httpclient.request(parley.port, "GET", path, token=t)
        assert r.status in (400, 404), (path, r)
        assert b"root:" not in r.raw
    out = raw_http(parley.port, b"GET /v1/media/m\x00../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") or out.startswith(b"HTTP/1.1 404"), out[:200]


def test_ranges(parley):
    a = parley.user()
    t = a.devices[0].token
    data = b"\x89PNG\r\n\x1a\n" + bytes(i % 251 for i in range(100_000))
    b = uploaded(parley.port, t, data)
    mid = b["media_id"]
    n = len(data)
    r = fetch(parley.port, mid, t, headers={"Range": "bytes=0-9"})
    assert r.status == 206 and r.raw == data[:10], r
    assert r.headers["content-range"] == f"bytes 0-9/{n}"
    r = fetch(parley.port, mid, t, headers={"Range": "bytes=50000-"})
    assert r.status == 206 and r.raw == data[50000:]
    r = fetch(parley.port, mid, t, headers={"Range": "bytes=-100"})
    assert r.status == 206 and r.raw == data[-100:]
    assert r.headers["content-range"] == f"bytes {n - 100}-{n - 1}/{n}"
    r = fetch(parley.port, mid, t, headers={"Range": f"bytes=99990-{n + 500}"})
    assert r.status == 206 and r.raw == data[99990:]
    r = fetch(parley.port, mid, t, headers={"Range": f"bytes={n}-"})
    assert r.status == 416 and r.headers["content-range"] == f"bytes */{n}"
    # Several ranges, or a malformed one: the whole object (RFC 9110 allows ignoring Range).
    for value in ("bytes=0-1,5-6", "bytes=9-2", "items=0-1"):
        r = fetch(parley.port, mid, t, headers={"Range": value})
        assert r.status == 200 and r.raw == data, value
    # If-Range with another validator: the whole object.
    r = fetch(parley.port, mid, t, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status == 200 and r.raw == data


def test_member_of_a_chat_carrying_it_may_fetch(parley):
    a, b, c = parley.user(), parley.user(), parley.user()
    wa = parley.connect(a.devices[0])
    m = uploaded(parley.port, a.devices[0].token, PNG)
    mid = m["media_id"]
    # Not shared yet.
    assert_error(fetch(parley.port, mid, b.devices[0].token), 403, "forbidden")
    chat = parley.open_chat(wa, b)["chat"]
    ok = wa.ok("send", chat=chat, cid=harness.new_cid(), text="look",
               media={"media_id": mid, "mime": "image/png", "size": len(PNG), "name": "cat.png"})
    assert ok["seq"] >= 1
    r = fetch(parley.port, mid, b.devices[0].token)
    assert r.status == 200 and r.raw == PNG
    assert_error(fetch(parley.port, mid, c.devices[0].token), 403, "forbidden")


# ===================================================================== send with media

def _chat_id(chat: dict) -> str:
    return chat["chat"]


def test_media_message_is_delivered_with_its_media(parley):
    a, b = parley.user(), parley.user()
    wa, wb = parley.connect(a.devices[0]), parley.connect(b.devices[0])
    m = uploaded(parley.port, a.devices[0].token, PNG)
    chat = _chat_id(parley.open_chat(wa, b))
    ref = {"media_id": m["media_id"], "mime": "image/png", "size": len(PNG), "name": "cat.png"}
    ok = wa.ok("send", chat=chat, cid=harness.new_cid(), text="caption", media=ref)
    msg = wb.wait_event("msg", predicate=lambda e: e.get("seq") == ok["seq"])
    assert msg["kind"] == "media"
    assert msg["media"] == ref
    assert msg["text"] == "caption"
    hist = harness.history_all(wb, chat)
    assert hist[-1]["media"] == ref


def test_send_checks_the_media(parley):
    a, b, c = parley.user(), parley.user(), parley.user()
    wa = parley.connect(a.devices[0])
    wc = parley.connect(c.devices[0])
    chat = _chat_id(parley.open_chat(wa, b))
    m = uploaded(parley.port, a.devices[0].token, PNG)
    good = {"media_id": m["media_id"], "mime": "image/png", "size": len(PNG)}
    e = wa.err("send", chat=chat, cid=harness.new_cid(), media={**good, "mime": "image/gif"})
    assert e["code"] == "bad_request"
    e = wa.err("send", chat=chat, cid=harness.new_cid(), media={**good, "size": len(PNG) + 1})
    assert e["code"] == "bad_request"
    e = wa.err("send", chat=chat, cid=harness.new_cid(),
               media={**good, "media_id": "mabcdefghijklmnopqrstuvwxyz"})
    assert e["code"] == "not_found"
    # c has never seen a's media: it cannot send it.
    chat_cb = _chat_id(parley.open_chat(wc, b))
    e = wc.err("send", chat=chat_cb, cid=harness.new_cid(), media=good)
    assert e["code"] == "forbidden"


def test_a_member_may_forward_media_seen_in_a_chat(parley):
    a, b, c = parley.user(), parley.user(), parley.user()
    wa, wb = parley.connect(a.devices[0]), parley.connect(b.devices[0])
    m = uploaded(parley.port, a.devices[0].token, PNG)
    ref = {"media_id": m["media_id"], "mime": "image/png", "size": len(PNG)}
    wa.ok("send", chat=_chat_id(parley.open_chat(wa, b)), cid=harness.new_cid(), media=ref)
    chat_bc = _chat_id(parley.open_chat(wb, c))
    wb.ok("send", chat=chat_bc, cid=harness.new_cid(), media=ref)
    assert fetch(parley.port, m["media_id"], c.devices[0].token).status == 200


# ===================================================================== signed URLs

def test_media_url_gives_a_signed_url_valid_without_a_token(parley):
    a, stranger = parley.user(), parley.user()
    wa = parley.connect(a.devices[0])
    m = uploaded(parley.port, a.devices[0].token, PNG)
    before = harness.now_ms()
    ok = wa.ok("media.url", media_id=m["media_id"])
    assert ok["url"].startswith(f"/v1/media/{m['media_id']}?")
    assert before + 3_500_000 <= ok["expires"] <= harness.now_ms() + 3_600_000 + 1000
    r = httpclient.get(parley.port, ok["url"])
    assert r.status == 200 and r.raw == PNG
    assert r.headers["x-content-type-options"] == "nosniff"
    # A stranger cannot get a URL for it.
    ws = parley.connect(stranger.devices[0])
    assert ws.err("media.url", media_id=m["media_id"])["code"] == "forbidden"
    assert ws.err("media.url", media_id="mabcdefghijklmnopqrstuvwxyz")["code"] == "not_found"


def test_tampered_and_expired_signed_urls_are_refused(parley):
    a = parley.user()
    wa = parley.connect(a.devices[0])
    m1 = uploaded(parley.port, a.devices[0].token, PNG)
    m2 = uploaded(parley.port, a.devices[0].token, PNG)
    url = wa.ok("media.url", media_id=m1["media_id"])["url"]
    path, query = url.split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    exp, sig = int(params["exp"]), params["sig"]
    bad_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    for q in (f"exp={exp}&sig={bad_sig}", f"exp={exp + 1}&sig={sig}", f"exp={exp}",
              f"sig={sig}", f"exp=abc&sig={sig}", f"exp={exp}&sig="):
        assert_error(httpclient.get(parley.port, f"{path}?{q}"), 403, "forbidden")
    # The signature of one media does not open another.
    assert_error(httpclient.get(parley.port, f"/v1/media/{m2['media_id']}?exp={exp}&sig={sig}"),
                 403, "forbidden")
    # Expired: correctly signed (with the server's key), but in the past.
    past = int(time.time()) - 5
    expired = f"/v1/media/{m1['media_id']}?exp={past}&sig={sign(parley.server, m1['media_id'], past)}"
    assert_error(httpclient.get(parley.port, expired), 403, "forbidden")
    future = int(time.time()) + 60
    fresh = f"/v1/media/{m1['media_id']}?exp={future}&sig={sign(parley.server, m1['media_id'], future)}"
    assert httpclient.get(parley.port, fresh).status == 200
    # Correctly signed, but valid for longer than any URL the server issues (an hour): refused.
    far = int(time.time()) + 3 * 3600
    too_long = f"/v1/media/{m1['media_id']}?exp={far}&sig={sign(parley.server, m1['media_id'], far)}"
    assert_error(httpclient.get(parley.port, too_long), 403, "forbidden")


# ===================================================================== crash safety

def test_server_killed_mid_upload_leaves_no_object(server_factory, parley_for):
    srv = server_factory()
    p = parley_for(srv)
    a = p.user()
    t = a.devices[0].token
    before = media_files(srv)
    # On S3, more than one 8 MiB part, so that a multipart upload is under way at the kill.
    sent = (10 << 20) if S3_BUCKET_URL else (3 << 20)
    total = sent + (8 << 20)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall((f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
               f"Content-Type: application/pdf\r\nContent-Length: {total}\r\n\r\n").encode())
    s.sendall(b"%PDF-1.4\n" + os.urandom(sent))
    if S3_BUCKET_URL:
        time.sleep(1.0)  # the first part on its way to the bucket (not visible as an object)
    else:
        deadline = time.time() + 5
        while not temp_files(srv) and time.time() < deadline:
            time.sleep(0.02)
        assert temp_files(srv), "the upload should be in progress in tmp/"
    srv.kill()
    s.close()
    srv.start()
    assert temp_files(srv) == [], "a restart removes interrupted uploads"
    assert media_files(srv) == before, "an interrupted upload is never an object"
    # The server works as before.
    m = uploaded(srv.port, a.devices[0].token, PNG)
    assert fetch(srv.port, m["media_id"], a.devices[0].token).raw == PNG


def test_media_survives_a_restart(server_factory, parley_for):
    srv = server_factory()
    p = parley_for(srv)
    a = p.user()
    m = uploaded(srv.port, a.devices[0].token, PNG)
    srv.kill()
    srv.start()
    r = fetch(srv.port, m["media_id"], a.devices[0].token)
    assert r.status == 200 and r.raw == PNG


def test_direct_urls_come_from_the_bucket_with_s3_and_from_parleyd_on_the_filesystem(
        server_factory, parley_for):
    import urllib.request
    srv = server_factory(extra_args=["--media-direct-urls", "true"])
    p = parley_for(srv)
    a = p.user()
    wa = p.connect(a.devices[0])
    m = uploaded(srv.port, a.devices[0].token, PNG)
    pdf = uploaded(srv.port, a.devices[0].token, PDF, "application/pdf")
    url = wa.ok("media.url", media_id=m["media_id"])["url"]
    page_policy = httpclient.get(srv.port, "/").headers["content-security-policy"]
    if "s3://" not in os.environ.get("PARLEYD_EXTRA_ARGS", ""):
        assert url.startswith(f"/v1/media/{m['media_id']}?")  # the filesystem has no URLs of its own
        assert "img-src 'self' blob: data:;" in page_policy
        return
    assert url.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in url, url
    origin = "/".join(url.split("/")[:3])
    assert f"img-src 'self' blob: data: {origin};" in page_policy, page_policy
    with urllib.request.urlopen(url, timeout=10) as r:  # no token: the URL is the credential
        assert r.read() == PNG
        assert r.headers["Content-Type"] == "image/png"
    pdf_url = wa.ok("media.url", media_id=pdf["media_id"])["url"]
    with urllib.request.urlopen(pdf_url, timeout=10) as r:
        assert r.read() == PDF
        assert r.headers["Content-Disposition"] == "attachment"


def test_connection_close_is_honoured_after_an_upload(parley):
    a = parley.user()
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a.devices[0].token}\r\n"
            f"Content-Type: image/png\r\nContent-Length: {len(PNG)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", parley.port), timeout=5)
    try:
        s.sendall(head + PNG)
        out = b""
        while True:
            chunk = s.recv(65536)  # a socket.timeout here means the server kept the connection
            if not chunk:
                break
            out += chunk
        assert out.startswith(b"HTTP/1.1 201"), out[:200]
    finally:
        s.close()


def test_not_modified_carries_no_content_length_of_zero(parley):
    a = parley.user()
    t = a.devices[0].token
    b = uploaded(parley.port, t, PNG)
    r = fetch(parley.port, b["media_id"], t, headers={"If-None-Match": f'"{b["sha256"]}"'})
    assert r.status == 304
    assert r.headers.get("content-length") in (None, str(len(PNG))), r.headers


def test_signed_url_answers_are_not_cached_past_their_expiry(parley):
    a = parley.user()
    m = uploaded(parley.port, a.devices[0].token, PNG)
    soon = int(time.time()) + 20
    url = f"/v1/media/{m['media_id']}?exp={soon}&sig={sign(parley.server, m['media_id'], soon)}"
    r = httpclient.get(parley.port, url)
    assert r.status == 200
    max_age = int(r.headers["cache-control"].split("max-age=")[1])
    assert 0 <= max_age <= 20


def test_uploads_in_progress_are_capped_per_user(parley):
    a, b = parley.user(), parley.user()
    t = a.devices[0].token
    # Expect: 100-continue makes admission visible: the server answers 100 once the upload is
    # accepted (and holds a slot), before any body byte is sent.
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n"
            f"Content-Type: application/pdf\r\nContent-Length: 100000\r\n"
            f"Expect: 100-continue\r\n\r\n").encode()
    held = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", parley.port), timeout=5)
            s.sendall(head)
            assert s.recv(1000).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(b"%PDF-1.4\n")
            held.append(s)
        r = upload(parley.port, t, PNG)
        assert_error(r, 429, "rate_limited")
        assert "retry-after" in r.headers
        # Another user is not affected.
        assert upload(parley.port, b.devices[0].token, PNG).status == 201
    finally:
        for s in held:
            s.close()
    # Slots come back once those connections are gone.
    deadline = time.time() + 5
    while upload(parley.port, t, PNG).status != 201:
        assert time.time() < deadline, "upload slots were not released"
        time.sleep(0.05)
