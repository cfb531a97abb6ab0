"""WebSocket authentication, ping and heartbeats (PROTOCOL.md §3 auth/ping, §4.7 heartbeats, §5)."""

from __future__ import annotations

import secrets
import time

import pytest

import harness
from wsclient import OP_CLOSE, OP_PING, WsClient, WsClosed, WsHandshakeError, WsTimeout


def test_auth_ok_has_identity_heartbeat_and_server_time_then_synced_once(parley):
    u = parley.user()
    d = u.devices[0]
    ws = parley.raw_ws()
    before = harness.now_ms()
    rid = ws.send_request("auth", token=d.token)
    reply = ws.recv_json()
    after = harness.now_ms()
    assert reply.get("re") == rid and "ok" in reply and "err" not in reply, reply
    ok = reply["ok"]
    assert ok["user_id"] == u.user_id
    assert ok["device_id"] == d.device_id
    assert ok["heartbeat_ms"] == 5000, "the default heartbeat is 5000 ms"
    assert isinstance(ok["server_time"], int)
    assert before - 2000 <= ok["server_time"] <= after + 2000
    # a new user with no chats: nothing to replay, so synced comes next
    ev = ws.recv_json()
    assert ev.get("ev") == "synced", ev
    # exactly once: nothing else shows up, and no second synced
    ws.roundtrip()
    time_left = ws.drain(0.3)
    assert not [m for m in time_left if m.get("ev") == "synced"], time_left


def test_auth_without_id_gets_no_reply_but_synced(parley):
    u = parley.user()
    ws = parley.raw_ws()
    ws.send_json({"op": "auth", "token": u.devices[0].token})
    ws.wait_event("synced")
    assert ws.ok("ping")["t"] > 0
    replies = [m for m in ws.pending() if "re" in m]
    assert replies == [], f"auth without id must not be answered: {replies}"


def test_auth_with_string_id_is_answered_with_that_id(parley):
    u = parley.user()
    ws = parley.raw_ws()
    r = ws.request_raw({"op": "auth", "id": "a-1", "token": u.devices[0].token})
    assert r["re"] == "a-1" and "ok" in r, r
    ws.wait_event("synced")


@pytest.mark.parametrize("frame", [
    {"op": "ping", "id": 1},
    {"op": "chats", "id": 1},
    {"op": "users.get", "id": 1, "usernames": ["abc"]},
    {"op": "send", "id": 1, "chat": "x", "cid": "c1", "text": "hi"},
    {"op": "nonsense", "id": 1},
])
def test_request_before_auth_is_unauthenticated_then_closed_4001(parley, frame):
    ws = parley.raw_ws()
    r = ws.request_raw(frame)
    assert "err" in r and r["err"]["code"] == "unauthenticated", r
    assert ws.expect_close(5) == 4001


def test_request_without_id_before_auth_closes_4001(parley):
    ws = parley.raw_ws()
    ws.send_json({"op": "ping"})
    assert ws.expect_close(5) == 4001
    # if an error came first, it is unauthenticated with re null
    for m in ws.pending():
        if "err" in m:
            assert m.get("re") is None and m["err"]["code"] == "unauthenticated", m


@pytest.mark.parametrize("token", [
    "nope",
    secrets.token_urlsafe(32),
    secrets.token_hex(32),
], ids=["short", "urlsafe-random", "hex-random"])
def test_bad_token_is_unauthenticated_then_closed_4001(parley, token):
    ws = parley.raw_ws()
    err = ws.err("auth", token=token)
    assert err["code"] == "unauthenticated", err
    assert ws.expect_close(5) == 4001


def test_token_of_another_server_user_is_not_confused(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    assert wa.auth_result["user_id"] == a.user_id
    assert wb.auth_result["user_id"] == b.user_id


def test_second_auth_is_bad_request_and_connection_stays(parley):
    u = parley.user(devices=2)
    ws = parley.connect(u.devices[0])
    err = ws.err("auth", token=u.devices[0].token)
    assert err["code"] == "bad_request", err
    err = ws.err("auth", token=u.devices[1].token)
    assert err["code"] == "bad_request", err
    assert ws.ok("ping")["t"] > 0
    time.sleep(0.1)
    assert not [m for m in ws.drain(0.2) if m.get("ev") == "synced"], "no second synced"


def test_ping_replies_with_server_time(parley):
    ws = parley.connect(parley.user().devices[0])
    before = harness.now_ms()
    r = ws.request("ping")
    after = harness.now_ms()
    assert set(r) == {"re", "ok"}, r
    t = r["ok"]["t"]
    assert isinstance(t, int) and before - 2000 <= t <= after + 2000, (before, t, after)


def test_ping_without_id_gets_no_reply(parley):
    ws = parley.connect(parley.user().devices[0])
    ws.send_json({"op": "ping"})
    ws.send_json({"op": "ping", "id": None})
    r = ws.request("ping")
    assert "ok" in r
    ws.drain(0.2)
    replies = [m for m in ws.pending() if "re" in m]
    assert replies == [], f"no reply expected for pings without id: {replies}"


def test_websocket_ping_is_answered_with_pong(parley):
    ws = parley.connect(parley.user().devices[0])
    ws.send_ping(b"hello-pong")
    deadline = time.monotonic() + 5
    while b"hello-pong" not in ws.pongs:
        assert time.monotonic() < deadline, "no pong for a WebSocket ping"
        try:
            ws.recv_json(0.1)
        except WsTimeout:
            pass
    assert ws.ok("ping")


def test_client_close_is_echoed(parley):
    ws = parley.connect(parley.user().devices[0])
    ws.send_close(1000)
    deadline = time.monotonic() + 5
    while True:
        f = ws.recv_frame(max(0.01, deadline - time.monotonic()))
        if f.opcode == OP_CLOSE:
            break
    assert ws.close_code == 1000


def test_unknown_websocket_path_is_not_upgraded(server):
    with pytest.raises(WsHandshakeError) as e:
        WsClient.connect(server.port, path="/v1/not-ws")
    assert e.value.status == 404


# ===================================================================== deadlines

def test_silence_before_auth_closes_4001_after_the_auth_timeout(server_factory, parley_for):
    srv = server_factory(auth_timeout_ms=700)
    p = parley_for(srv)
    t0 = time.monotonic()
    ws = p.raw_ws()
    code = ws.expect_close(6)
    elapsed = time.monotonic() - t0
    assert code == 4001
    assert 0.5 <= elapsed <= 4.0, f"closed after {elapsed:.2f}s with --auth-timeout-ms 700"

    # an authenticated connection is not subject to the auth deadline
    u = p.user()
    ws2 = p.connect(u.devices[0])
    for _ in range(6):
        time.sleep(0.25)
        ws2.send_json({"op": "ping"})
    assert ws2.ok("ping")["t"] > 0


def test_auth_reply_announces_the_configured_heartbeat(server_factory, parley_for):
    srv = server_factory(heartbeat_ms=300)
    p = parley_for(srv)
    ws = p.connect(p.user().devices[0])
    assert ws.auth_result["heartbeat_ms"] == 300


def test_silent_connection_is_closed_after_3_heartbeats_active_ones_stay(server_factory, parley_for):
    hb = 0.3
    srv = server_factory(heartbeat_ms=300)
    p = parley_for(srv)
    u = p.user(devices=3)
    silent = p.connect(u.devices[0], auto_pong=False)   # does not even answer WebSocket pings
    t_silent = time.monotonic()
    app_pinger = p.connect(u.devices[1])                 # sends {"op":"ping"} every interval
    ws_pinger = p.connect(u.devices[2])                  # sends WebSocket ping frames only
    pingers = [app_pinger, ws_pinger]

    closed_after = None
    start = time.monotonic()
    next_beat = start
    while time.monotonic() - start < 3 * hb + 2.0:
        now = time.monotonic()
        if now >= next_beat:
            app_pinger.send_json({"op": "ping"})
            ws_pinger.send_raw_frame(OP_PING, b"hb")
            next_beat = now + hb * 0.8
        for w in pingers:
            try:
                w.drain(0.0)
            except WsClosed as e:
                pytest.fail(f"a connection that sends a frame every heartbeat was closed ({e.code})")
        if closed_after is None:
            try:
                silent.recv_message(0.05)
            except WsTimeout:
                pass
            except (WsClosed, OSError):
                closed_after = time.monotonic() - t_silent
        else:
            time.sleep(0.05)
        if closed_after is not None and time.monotonic() - start > 3 * hb + 0.6:
            break
    assert closed_after is not None, "a connection silent for 3 heartbeat intervals was not closed"
    assert closed_after >= 3 * hb * 0.8, f"closed too early: after {closed_after:.2f}s (heartbeat {hb}s)"
    for w in pingers:
        assert w.ok("ping")["t"] > 0
