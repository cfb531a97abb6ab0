"""Presence: presence.sub, `presence` events, last_seen, dead connections (PROTOCOL.md §3
presence.sub, §4.7)."""

from __future__ import annotations

import time

import harness
from harness import assert_no_event, create_group
from wsclient import WsClosed, WsTimeout


def is_presence(user):
    return lambda e: e.get("ev") == "presence" and e.get("user_id") == user.user_id


def wait_presence(ws, user, online, timeout=5.0):
    e = ws.wait_event("presence", timeout, lambda e: e.get("user_id") == user.user_id)
    assert set(e) == {"ev", "user_id", "online", "last_seen"}, f"PRESENCE fields: {e}"
    assert e["online"] is online, f"expected online={online}: {e}"
    return e


def states(reply):
    out = {}
    for p in reply["presence"]:
        assert set(p) == {"user_id", "online", "last_seen"}, p
        assert isinstance(p["online"], bool) and (p["last_seen"] is None or isinstance(p["last_seen"], int)), p
        assert p["user_id"] not in out, f"listed twice: {reply}"
        out[p["user_id"]] = p
    return out


def test_only_users_sharing_a_chat_may_be_watched(parley):
    a = parley.user()
    b = parley.user()            # a direct chat with a
    g = parley.user()            # a group with a
    stranger = parley.user()
    wa = parley.connect(a.devices[0])
    parley.open_chat(wa, b)
    chat = create_group(wa, "watchers", [g])["chat"]
    ghost = "u" + "q" * 26
    r = wa.ok("presence.sub", users=[b.user_id, g.user_id, stranger.user_id, ghost])
    assert sorted(r["denied"]) == sorted([stranger.user_id, ghost])
    st = states(r)
    assert set(st) == {b.user_id, g.user_id}
    for u in (b, g):                 # registered, never connected
        assert st[u.user_id] == {"user_id": u.user_id, "online": False, "last_seen": None}

    # nothing about the denied ones ever arrives
    ws_ = parley.connect(stranger.devices[0])
    assert_no_event(wa, lambda e: e.get("ev") == "presence")
    ws_.close()

    # a user removed from the only shared chat can no longer be watched
    wa.ok("group.remove", chat=chat, users=[g.user_id])
    r = wa.ok("presence.sub", users=[g.user_id, b.user_id])
    assert r["denied"] == [g.user_id] and set(states(r)) == {b.user_id}


def test_online_while_any_device_is_connected_then_offline_with_last_seen(parley):
    a = parley.user()
    b = parley.user(devices=2)
    wa = parley.connect(a.devices[0])
    parley.open_chat(wa, b)
    assert states(wa.ok("presence.sub", users=[b.user_id]))[b.user_id]["online"] is False

    b1 = parley.connect(b.devices[0])
    wait_presence(wa, b, True)
    assert states(wa.ok("presence.sub", users=[b.user_id]))[b.user_id]["online"] is True

    # a second device coming and going changes nothing
    b2 = parley.connect(b.devices[1])
    b2.close()
    b1.roundtrip()                      # b2's departure has been processed by now...
    assert_no_event(wa, lambda e: e.get("ev") == "presence", wait=0.3)   # ...without an event

    before = harness.now_ms()
    b1.close()
    e = wait_presence(wa, b, False)
    after = harness.now_ms()
    assert isinstance(e["last_seen"], int)
    assert before - 1000 <= e["last_seen"] <= after + 1000, (before, e, after)
    assert_no_event(wa, lambda e: e.get("ev") == "presence", wait=0.1)   # one event per change
    st = states(wa.ok("presence.sub", users=[b.user_id]))[b.user_id]
    assert st == {"user_id": b.user_id, "online": False, "last_seen": e["last_seen"]}

    # and online again; last_seen is only written when the last device goes
    b2 = parley.connect(b.devices[1])
    wait_presence(wa, b, True)
    b2.abort()                          # a dropped TCP connection counts too
    e2 = wait_presence(wa, b, False)
    assert e2["last_seen"] >= e["last_seen"]


def test_last_seen_survives_a_restart(server_factory, parley_for):
    srv = server_factory()
    p = parley_for(srv)
    a = p.user()
    b = p.user()
    wa = p.connect(a.devices[0])
    p.open_chat(wa, b)
    wa.ok("presence.sub", users=[b.user_id])
    wb = p.connect(b.devices[0])
    wait_presence(wa, b, True)
    wb.close()
    seen = wait_presence(wa, b, False)["last_seen"]
    assert isinstance(seen, int)

    assert srv.terminate() == 0
    srv.start()
    wa = p.connect(a.devices[0])
    st = states(wa.ok("presence.sub", users=[b.user_id]))[b.user_id]
    assert st == {"user_id": b.user_id, "online": False, "last_seen": seen}


def test_a_silent_connection_is_dead_and_its_user_goes_offline(server_factory, parley_for):
    hb_ms = 300
    srv = server_factory(heartbeat_ms=hb_ms)
    p = parley_for(srv)
    a = p.user()
    b = p.user()
    wa = p.connect(a.devices[0])
    p.open_chat(wa, b)
    wa.ok("presence.sub", users=[b.user_id])

    # b authenticates, then sends nothing at all (not even pongs)
    t_before = time.monotonic()
    wb = p.connect(b.devices[0], auto_pong=False)
    t_after = time.monotonic()
    assert wb.auth_result["heartbeat_ms"] == hb_ms
    deadline = t_before + 3 * hb_ms / 1000 + 1.0
    online_seen = False
    offline = None
    closed_at = None       # when b's socket got the server's close (read raw: nothing is answered)
    while offline is None:
        now = time.monotonic()
        assert now < deadline + 0.5, (
            f"b was not reported offline within 3 heartbeats + 1 s ({now - t_before:.2f}s after "
            f"its last frame); online reported: {online_seen}; the server closed b's connection "
            + (f"after {closed_at - t_before:.2f}s with {wb.close_code}" if closed_at else "not yet"))
        while wb.close_code is None:
            try:
                wb.recv_frame(0)
            except (WsTimeout, WsClosed, OSError):
                break
        if wb.close_code is not None and closed_at is None:
            closed_at = time.monotonic()
        wa.send_json({"op": "ping"})            # the watcher itself stays alive
        try:
            e = wa.wait_event("presence", 0.05, lambda e: e.get("user_id") == b.user_id)
        except WsTimeout:
            continue
        if e["online"]:
            assert not online_seen, "online reported twice"
            online_seen = True
        else:
            offline = (time.monotonic(), e)
    t_off, e = offline
    assert online_seen, "the connection of b was not reported online first"
    assert t_off <= deadline, f"offline after {t_off - t_before:.2f}s > 3 heartbeats + 1 s"
    assert t_off - t_after >= 3 * hb_ms / 1000 * 0.8, \
        f"declared dead after only {t_off - t_after:.2f}s of silence (heartbeat {hb_ms} ms)"
    assert isinstance(e["last_seen"], int)
    if wb.close_code is None:
        wb.expect_close(2.0)   # the server closed it (the code is not what this test is about)


def test_sub_replaces_the_watch_list(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wa = parley.connect(a.devices[0])
    create_group(wa, "both", [b, c])
    assert set(states(wa.ok("presence.sub", users=[b.user_id]))) == {b.user_id}
    r = wa.ok("presence.sub", users=[c.user_id])
    assert set(states(r)) == {c.user_id} and r["denied"] == []

    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    wait_presence(wa, c, True)
    wb.close()
    wc.close()
    wait_presence(wa, c, False)
    assert_no_event(wa, is_presence(b))

    # an empty list watches nobody
    assert wa.ok("presence.sub", users=[]) == {"presence": [], "denied": []}
    wc = parley.connect(c.devices[0])
    assert_no_event(wa, lambda e: e.get("ev") == "presence")


def test_sub_of_more_than_1024_users_is_too_large(parley):
    a = parley.user()
    wa = parley.connect(a.devices[0])
    many = [f"u{i:026d}" for i in range(1025)]
    e = wa.err("presence.sub", users=many)
    assert e["code"] == "too_large", e
    r = wa.ok("presence.sub", users=many[:1024])
    assert r["presence"] == [] and sorted(r["denied"]) == sorted(many[:1024])
