"""Typing notices: relayed to the other members' online devices, never stored (PROTOCOL.md §3
typing)."""

from __future__ import annotations

from harness import assert_no_event, chat_state, create_group, new_cid


def is_typing(chat=None):
    return lambda e: e.get("ev") == "typing" and (chat is None or e.get("chat") == chat)


def wait_typing(ws, chat, timeout=5.0):
    return ws.wait_event("typing", timeout, lambda e: e.get("chat") == chat)


def test_typing_is_relayed_to_the_other_members_online_devices_only(parley):
    a = parley.user(devices=2)
    b = parley.user(devices=2)
    c = parley.user()
    outsider = parley.user()
    a1, a2 = (parley.connect(d) for d in a.devices)
    b1, b2 = (parley.connect(d) for d in b.devices)
    wc = parley.connect(c.devices[0])
    wo = parley.connect(outsider.devices[0])
    g = create_group(a1, "typing", [b, c])["chat"]

    assert a1.ok("typing", chat=g, on=True) == {}
    for w in (b1, b2, wc):
        assert wait_typing(w, g) == {"ev": "typing", "chat": g, "user": a.user_id, "on": True}
    for w in (a1, a2, wo):                          # not the typer's devices, not outsiders
        assert_no_event(w, is_typing())
    for w in (b1, b2, wc):                          # exactly once
        assert_no_event(w, is_typing(), wait=0.05)

    # on: false is relayed too; a request without id gets no reply but is relayed
    a2.send_json({"op": "typing", "chat": g, "on": False})
    for w in (b1, b2, wc):
        assert wait_typing(w, g) == {"ev": "typing", "chat": g, "user": a.user_id, "on": False}
    a2.roundtrip()
    assert [m for m in a2.pending() if "re" in m] == [], "no success reply without an id"
    for w in (a1, a2, wo):
        assert_no_event(w, is_typing(), wait=0.05)

    # the other way round, in a direct chat too
    d = parley.open_chat(b1, c)["chat"]
    wc.ok("typing", chat=d, on=True)
    for w in (b1, b2):
        assert wait_typing(w, d)["user"] == c.user_id
    for w in (a1, a2, wc, wo):
        assert_no_event(w, is_typing(d), wait=0.05)


def test_typing_is_never_stored(parley):
    a = parley.user()
    b = parley.user(devices=2)                     # b's second device is offline
    wa = parley.connect(a.devices[0])
    b1 = parley.connect(b.devices[0])
    g = create_group(wa, "ephemeral", [b])["chat"]
    d = parley.open_chat(wa, b)["chat"]
    wa.ok("send", chat=g, cid=new_cid(), text="real")             # 2
    for chat in (g, d):
        wa.ok("typing", chat=chat, on=True)
        wait_typing(b1, chat)
        wa.ok("typing", chat=chat, on=False)
        wait_typing(b1, chat)
    assert [m["seq"] for m in b1.ok("history", chat=g)["messages"]] == [2, 1]
    assert b1.ok("history", chat=d)["messages"] == []
    assert chat_state(b1, g)["last_seq"] == 2 and chat_state(b1, d)["last_seq"] == 0
    b2 = parley.connect(b.devices[1])
    assert not [e for e in b2.replay_events if e.get("ev") == "typing"], "typing is not replayed"
    assert [m["seq"] for m in b2.replay if m["chat"] == g] == [1, 2]
    assert_no_event(b2, is_typing(), wait=0.1)
    # the next message takes the next seq: typing used none
    assert wa.ok("send", chat=g, cid=new_cid(), text="next")["seq"] == 3


def test_typing_by_a_non_member_is_forbidden(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    outsider = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    wo = parley.connect(outsider.devices[0])
    g = create_group(wa, "members only", [b, c])["chat"]
    d = parley.open_chat(wa, b)["chat"]
    for chat in (g, d, "g" + "x" * 26):
        e = wo.err("typing", chat=chat, on=True)
        assert e["code"] == "forbidden", (chat, e)
    for w in (wa, wb, wc):
        assert_no_event(w, is_typing(), wait=0.05)

    # a removed member neither types nor sees typing any more
    wa.ok("group.remove", chat=g, users=[c.user_id])
    assert wc.err("typing", chat=g, on=True)["code"] == "forbidden"
    wb.ok("typing", chat=g, on=True)
    assert wait_typing(wa, g)["user"] == b.user_id
    assert_no_event(wc, is_typing())
    assert wb.err("typing", chat=g)["code"] == "bad_request", "`on` is required"
