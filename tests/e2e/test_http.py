"""HTTP API (PROTOCOL.md §2, media excepted): users, sessions, logout, health, errors."""

from __future__ import annotations

import pytest

import harness
import httpclient
from httpclient import assert_error


def _register(port, body=None, raw=None):
    if raw is not None:
        return httpclient.post_json(port, "/v1/users", raw=raw)
    return httpclient.post_json(port, "/v1/users", body)


def _login(port, body=None, raw=None):
    if raw is not None:
        return httpclient.post_json(port, "/v1/sessions", raw=raw)
    return httpclient.post_json(port, "/v1/sessions", body)


# ===================================================================== register

def test_register_returns_201_with_user_id_and_username(server):
    name = harness.random_username()
    r = _register(server.port, {"username": name, "password": "correct horse", "display_name": "Ann"})
    assert r.status == 201, r
    assert "application/json" in r.headers.get("content-type", ""), r.headers
    assert isinstance(r.body, dict)
    assert r.body["username"] == name
    uid = r.body["user_id"]
    assert isinstance(uid, str) and 0 < len(uid.encode()) <= 64


def test_register_without_display_name_is_accepted(server):
    r = _register(server.port, {"username": harness.random_username(), "password": "12345678"})
    assert r.status == 201, r


def test_register_gives_distinct_user_ids(server):
    a = harness.register(server.port)
    b = harness.register(server.port)
    assert a.user_id != b.user_id


@pytest.mark.parametrize("username", [
    "abc",                                   # 3 characters: the minimum
    "z" * 32,                                # 32: the maximum
    "a.b_c.0123456789",
    "...",
    "___",
    "999",
])
def test_register_accepts_boundary_usernames(server, username):
    # The module's server is fresh and the other tests use random 14-character names.
    r = _register(server.port, {"username": username, "password": "12345678"})
    assert r.status == 201, (username, r)
    assert r.body["username"] == username


def test_register_duplicate_username_is_409_conflict(server):
    u = harness.register(server.port)
    r = _register(server.port, {"username": u.username, "password": "another password"})
    assert_error(r, 409, "conflict")


@pytest.mark.parametrize("username", [
    "ab",                 # too short
    "a" * 33,             # too long
    "",
    "Abc",                # upper case
    "ab-c",
    "ab c",
    "abc!",
    "abc@d",
    "ab/c",
    "\u00fcbc",           # non-ASCII letter
    "abc\n",
    "abc\u0000",
])
def test_register_rejects_bad_usernames(server, username):
    r = _register(server.port, {"username": username, "password": "12345678"})
    assert_error(r, 400, "bad_request")


@pytest.mark.parametrize("password,ok", [
    ("1234567", False),               # 7 bytes
    ("12345678", True),               # 8 bytes
    ("x" * 256, True),                # 256 bytes
    ("x" * 257, False),               # 257 bytes
    ("\u00e9\u00e9\u00e9a", False),   # 4 code points but 7 bytes: bytes count
    ("\u00e9" * 4, True),             # 4 code points, 8 bytes
    ("\u00e9" * 128, True),           # 256 bytes
    ("\u00e9" * 128 + "a", False),    # 129 code points, 257 bytes
    ("", False),
])
def test_register_password_length_is_8_to_256_bytes(server, password, ok):
    name = harness.random_username()
    r = _register(server.port, {"username": name, "password": password})
    if ok:
        assert r.status == 201, r
        # and the password works
        lr = _login(server.port, {"username": name, "password": password})
        assert lr.status == 201, lr
    else:
        assert_error(r, 400, "bad_request")
        # nothing was created: the name is still free
        r2 = _register(server.port, {"username": name, "password": "12345678"})
        assert r2.status == 201, r2


@pytest.mark.parametrize("display_name,ok", [
    ("A", True),
    ("a" * 64, True),
    ("a" * 65, False),
    ("", False),
    ("\u00e9" * 64, True),            # 64 code points, 128 bytes
    ("\u00e9" * 65, False),
    ("\U0001F600" * 64, True),        # 64 code points, 256 bytes (4-byte UTF-8)
    ("\U0001F600" * 65, False),
    ("\u65e5\u672c\u8a9e" * 21 + "x", True),  # 64 CJK+ASCII code points, 190 bytes
])
def test_register_display_name_is_1_to_64_code_points(server, display_name, ok):
    name = harness.random_username()
    r = _register(server.port, {"username": name, "password": "12345678", "display_name": display_name})
    if ok:
        assert r.status == 201, r
    else:
        assert_error(r, 400, "bad_request")
        r2 = _register(server.port, {"username": name, "password": "12345678"})
        assert r2.status == 201, f"a refused registration must create nothing: {r2}"


def test_register_display_name_is_stored_exactly(server, parley):
    dn = "Z\u00f6e \U0001F600 \u65e5\u672c"
    u = parley.user(display_name=dn)
    ws = parley.connect(u.devices[0])
    users = ws.ok("users.get", usernames=[u.username])["users"]
    assert len(users) == 1, users
    assert users[0]["user_id"] == u.user_id
    assert users[0]["username"] == u.username
    assert users[0]["display_name"] == dn


@pytest.mark.parametrize("body", [
    {"password": "12345678"},                               # no username
    {"username": "PLACEHOLDER"},                            # no password
    {},
    {"username": 12345, "password": "12345678"},
    {"username": None, "password": "12345678"},
    {"username": ["abc"], "password": "12345678"},
    {"username": {"a": 1}, "password": "12345678"},
    {"username": "PLACEHOLDER", "password": 12345678},
    {"username": "PLACEHOLDER", "password": None},
    {"username": "PLACEHOLDER", "password": True},
    {"username": "PLACEHOLDER", "password": "12345678", "display_name": 5},
    {"username": "PLACEHOLDER", "password": "12345678", "display_name": ["x"]},
    {"username": "PLACEHOLDER", "password": "12345678", "display_name": {"x": 1}},
])
def test_register_rejects_missing_and_wrong_typed_fields(server, body):
    name = harness.random_username()
    body = {k: (name if v == "PLACEHOLDER" else v) for k, v in body.items()}
    r = _register(server.port, body)
    assert_error(r, 400, "bad_request")
    r2 = _register(server.port, {"username": name, "password": "12345678"})
    assert r2.status == 201, f"a refused registration must create nothing: {r2}"


@pytest.mark.parametrize("raw", [
    b'{"username": "abc", "password": ',    # truncated
    b"{username: abc}",
    b"not json at all",
    b"",
    b"[]",
    b'["abc", "12345678"]',
    b'"abc"',
    b"42",
    b"null",
    b'{"username": "abc", "password": "12345678"} trailing',
    b'\xff\xfe{"username": 1}',               # not UTF-8
])
def test_register_rejects_malformed_bodies(server, raw):
    r = _register(server.port, raw=raw)
    assert_error(r, 400, "bad_request")


# ===================================================================== login

def test_login_returns_201_token_user_and_new_device_each_time(server):
    u = harness.register(server.port)
    seen_tokens, seen_devices = set(), set()
    for i in range(3):
        body = {"username": u.username, "password": u.password}
        if i == 1:
            body["device_name"] = "laptop \U0001F4BB"
        r = _login(server.port, body)
        assert r.status == 201, r
        assert "application/json" in r.headers.get("content-type", ""), r.headers
        b = r.body
        assert b["user_id"] == u.user_id
        assert isinstance(b["token"], str) and isinstance(b["device_id"], str)
        # at least 128 random bits can't be printed in fewer than 20 characters
        assert len(b["token"]) >= 20, b
        assert 0 < len(b["device_id"].encode()) <= 64
        seen_tokens.add(b["token"])
        seen_devices.add(b["device_id"])
    assert len(seen_tokens) == 3, "each login gets its own token"
    assert len(seen_devices) == 3, "each login creates a new device"


def test_each_login_token_authenticates_its_own_device(server, parley):
    u = parley.user(devices=2)
    d1, d2 = u.devices
    ws1 = parley.connect(d1)
    ws2 = parley.connect(d2)
    assert ws1.auth_result["device_id"] == d1.device_id
    assert ws2.auth_result["device_id"] == d2.device_id
    assert d1.device_id != d2.device_id


def test_login_wrong_password_is_401(server):
    u = harness.register(server.port)
    r = _login(server.port, {"username": u.username, "password": u.password + "x"})
    assert_error(r, 401, "unauthenticated")
    assert "token" not in r.body, "no session for a wrong password"


def test_login_unknown_user_is_401(server):
    r = _login(server.port, {"username": harness.random_username(), "password": "12345678"})
    assert_error(r, 401, "unauthenticated")


@pytest.mark.parametrize("body", [
    {"username": "PLACEHOLDER"},
    {"password": "12345678"},
    {},
    {"username": "PLACEHOLDER", "password": 12345678},
    {"username": 5, "password": "12345678"},
    {"username": "PLACEHOLDER", "password": "12345678", "device_name": 7},
])
def test_login_rejects_missing_and_wrong_typed_fields(server, body):
    u = harness.register(server.port)
    body = {k: (u.username if v == "PLACEHOLDER" else v) for k, v in body.items()}
    assert_error(_login(server.port, body), 400, "bad_request")


@pytest.mark.parametrize("raw", [b'{"username": "abc"', b"nope", b"", b"[1]"])
def test_login_rejects_malformed_bodies(server, raw):
    assert_error(_login(server.port, raw=raw), 400, "bad_request")


def test_login_refused_with_429_after_10_failures_per_username(server):
    u = harness.register(server.port)
    other = harness.register(server.port)
    for i in range(10):
        r = _login(server.port, {"username": u.username, "password": "wrong-password"})
        assert_error(r, 401, "unauthenticated")
    r = _login(server.port, {"username": u.username, "password": "wrong-password"})
    assert_error(r, 429, "rate_limited")
    # the limit is per username: another user logs in normally
    r = _login(server.port, {"username": other.username, "password": other.password})
    assert r.status == 201, r


def test_successful_logins_are_not_limited(server):
    u = harness.register(server.port)
    for i in range(12):
        r = _login(server.port, {"username": u.username, "password": u.password})
        assert r.status == 201, (i, r)


# ===================================================================== logout

def test_logout_is_204_then_the_token_is_refused(server, parley):
    u = parley.user(devices=1)
    d = u.devices[0]
    r = httpclient.delete(server.port, "/v1/sessions/current", token=d.token)
    assert r.status == 204, r
    assert r.raw == b"", "204 has no body"
    # the token no longer authenticates a WebSocket
    ws = parley.raw_ws()
    err = ws.err("auth", token=d.token)
    assert err["code"] == "unauthenticated"
    assert ws.expect_close() == 4001
    # nor a second logout
    assert_error(httpclient.delete(server.port, "/v1/sessions/current", token=d.token), 401, "unauthenticated")
    # the user can still log in again
    d2 = parley.login(u)
    parley.connect(d2).roundtrip()


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer not-a-real-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "not-a-real-token"},
])
def test_logout_without_a_valid_token_is_401(server, headers):
    r = httpclient.delete(server.port, "/v1/sessions/current", headers=headers)
    assert_error(r, 401, "unauthenticated")


def test_logout_closes_that_devices_websocket_with_4001_only(server, parley):
    u = parley.user(devices=2)
    d1, d2 = u.devices
    ws1a = parley.connect(d1)
    ws1b = parley.connect(d1)      # two connections of the same device
    ws2 = parley.connect(d2)
    r = httpclient.delete(server.port, "/v1/sessions/current", token=d1.token)
    assert r.status == 204, r
    assert ws1a.expect_close(5) == 4001
    assert ws1b.expect_close(5) == 4001
    # the other device is untouched
    ws2.roundtrip()
    ws2b = parley.connect(d2)
    ws2b.roundtrip()


def test_logout_does_not_affect_other_users(server, parley):
    a = parley.user()
    b = parley.user()
    wsb = parley.connect(b.devices[0])
    assert httpclient.delete(server.port, "/v1/sessions/current", token=a.devices[0].token).status == 204
    wsb.roundtrip()
    assert httpclient.delete(server.port, "/v1/sessions/current", token=b.devices[0].token).status == 204
    assert wsb.expect_close() == 4001


# ===================================================================== misc

def test_healthz_is_200_ok(server):
    r = httpclient.get(server.port, "/healthz")
    assert r.status == 200, r
    assert r.raw.strip() == b"ok"


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/nope"),
    ("GET", "/nope"),
    ("POST", "/v1/nope"),
    ("GET", "/v1/users/someone/else"),
    ("DELETE", "/v1/sessions/nope"),
])
def test_unknown_path_is_404(server, method, path):
    body = b"{}" if method == "POST" else None
    r = httpclient.request(server.port, method, path, body=body,
                           headers={"Content-Type": "application/json"} if body else None)
    assert_error(r, 404, "not_found")


def test_server_keeps_serving_after_a_burst_of_bad_requests(server):
    for raw in [b"{", b"[]", b"\x00\x01", b'{"username":1}']:
        _register(server.port, raw=raw)
        _login(server.port, raw=raw)
    assert httpclient.get(server.port, "/healthz").status == 200
    harness.register(server.port)
