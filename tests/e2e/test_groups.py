"""Groups: group.create/add/remove/leave/update, system messages, `chat` events and membership
(PROTOCOL.md §3 group.*, §4.6)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import harness
from harness import assert_no_event, assert_no_msg, chat_state, create_group, msgs, new_cid


def seqs(events):
    return [m["seq"] for m in events]


def strip_ev(m):
    return {k: v for k, v in m.items() if k != "ev"}


def roles(chat):
    """CHAT -> {user_id: role}; asserts every member is listed once."""
    ids = [m["user_id"] for m in chat["members"]]
    assert len(ids) == len(set(ids)), f"a member is listed twice: {chat['members']}"
    return {m["user_id"]: m["role"] for m in chat["members"]}


def ids(*users):
    return [u.user_id for u in users]


def send(ws, chat, text):
    return ws.ok("send", chat=chat, cid=new_cid(), text=text)


def wait_msg(ws, chat, seq=None, timeout=5.0):
    return ws.wait_event("msg", timeout, lambda m: m.get("chat") == chat
                         and (seq is None or m.get("seq") == seq))


def wait_system(ws, chat, event, timeout=5.0):
    return ws.wait_event("msg", timeout, lambda m: m.get("chat") == chat and m.get("kind") == "system"
                         and isinstance(m.get("system"), dict) and m["system"].get("event") == event)


def wait_chat_event(ws, chat, pred=lambda c: True, timeout=5.0):
    return ws.wait_event("chat", timeout, lambda e: e.get("chat") == chat and pred(e))


def check_system(m, chat, event, by, seq=None, users=None, title=None):
    """Shape of a system MSG (PROTOCOL §3 MSG/system)."""
    assert m["chat"] == chat and m["kind"] == "system", m
    if seq is not None:
        assert m["seq"] == seq, m
    assert isinstance(m["ts"], int) and m["ts"] > 0, m
    assert m["from"] == by, f"a system message's `from` is `by`: {m}"
    assert isinstance(m["cid"], str) and m["cid"], f"a system message has a server-chosen cid: {m}"
    s = m["system"]
    assert s["event"] == event and s["by"] == by, m
    if users is not None:
        assert sorted(s.get("users", [])) == sorted(users), f"system.users: {m}"
    if title is not None:
        assert s.get("title") == title, m
    assert "text" not in m and "media" not in m, m


def assert_nothing_after(ws, chat, seq, wait=0.2):
    """Nothing about `chat` beyond `seq` reached ws: no msg above it, no chat event announcing a
    later state, no other event of the chat (everything set aside so far is inspected too)."""
    ws.roundtrip()
    ws.drain(wait)
    bad = [e for e in ws.pending() if "ev" in e and e.get("chat") == chat
           and not (e["ev"] == "msg" and e["seq"] <= seq)
           and not (e["ev"] == "chat" and e["last_seq"] <= seq)]
    assert not bad, f"events after seq {seq} reached a former member: {bad}"


def forbidden(ws, op, **args):
    e = ws.err(op, **args)
    assert e["code"] == "forbidden", f"{op} {args}: {e}"


# ===================================================================== group.create

def test_create_makes_creator_admin_and_pushes_created_and_chat_to_every_member_device(parley):
    a = parley.user(devices=2)
    b = parley.user(devices=2)
    c = parley.user()
    outsider = parley.user()
    a1, a2 = (parley.connect(d) for d in a.devices)
    b1, b2 = (parley.connect(d) for d in b.devices)
    c1 = parley.connect(c.devices[0])
    wo = parley.connect(outsider.devices[0])
    title = "Trip \u2708 2025"
    before = harness.now_ms()
    chat = create_group(a1, title, [b, c])
    after = harness.now_ms()
    cid = chat["chat"]
    assert isinstance(cid, str) and cid
    assert chat["kind"] == "group" and chat["title"] == title
    assert roles(chat) == {a.user_id: "admin", b.user_id: "member", c.user_id: "member"}
    assert chat["last_seq"] == 1, "the `created` system message is seq 1"
    assert before - 1000 <= chat["created"] <= after + 1000

    for w in (a1, a2, b1, b2, c1):        # the actor's devices included, the creating one too
        m = wait_msg(w, cid)
        check_system(m, cid, "created", a.user_id, seq=1, users=ids(b, c), title=title)
        ev = wait_chat_event(w, cid)
        assert ev["kind"] == "group" and ev["title"] == title and ev["last_seq"] == 1, ev
        assert roles(ev) == roles(chat)
    created = strip_ev(m)
    for w in (a1, a2, b1, b2, c1):
        assert_no_event(w, lambda e: e.get("chat") == cid, wait=0.05)   # exactly once each
    assert_no_event(wo, lambda e: e.get("chat") == cid)

    assert b1.ok("history", chat=cid)["messages"] == [created]
    st = chat_state(c1, cid)
    assert st["unread"] == 0, "system messages are not unread"
    assert st["last_msg"] == created and st["last_seq"] == 1 and st["read_seq"] == 0
    assert all(x["chat"] != cid for x in wo.ok("chats")["chats"])
    # members may talk; the outsider may not
    r = send(c1, cid, "hello group")
    assert r["seq"] == 2
    for w in (a1, a2, b1, b2):
        assert wait_msg(w, cid, 2)["from"] == c.user_id
    forbidden(wo, "send", chat=cid, cid=new_cid(), text="let me in")


def test_title_is_1_to_100_code_points(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    for bad in ("", "a" * 101, "\U0001F600" * 101, "\u00e9" * 101):
        e = wa.err("group.create", title=bad, members=[b.user_id])
        assert e["code"] == "bad_request", (len(bad), e)
    assert wa.err("group.create", members=[b.user_id])["code"] == "bad_request", "title is required"
    # multibyte characters count as one each: 100 emoji are 400 UTF-8 bytes, 200 UTF-16 units
    for good in ("x", "a" * 100, "\U0001F600" * 100, "\u00e9" * 100):
        chat = create_group(wa, good, [b])
        assert chat["title"] == good
        assert wait_msg(wa, chat["chat"], 1)["system"]["title"] == good
    # none of the refused ones created a chat
    titles = sorted(x.get("title", "") for x in wa.ok("chats")["chats"])
    assert titles == sorted(["x", "a" * 100, "\U0001F600" * 100, "\u00e9" * 100])

    # the same rule for group.update
    g = chat["chat"]
    for bad in ("", "b" * 101, "\U0001F680" * 101):
        assert wa.err("group.update", chat=g, title=bad)["code"] == "bad_request"
    assert chat_state(wa, g)["last_seq"] == 1, "a refused update logs nothing"
    assert wa.ok("group.update", chat=g, title="\U0001F680" * 100)["chat"]["title"] == "\U0001F680" * 100


def test_unknown_member_ids_are_not_found(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    ghost = "u" + "z" * 26
    e = wa.err("group.create", title="ghosts", members=[b.user_id, ghost])
    assert e["code"] == "not_found", e
    assert wa.ok("chats")["chats"] == [] and wb.ok("chats")["chats"] == [], "nothing was created"
    assert_no_event(wb)

    chat = create_group(wa, "real", [b])["chat"]
    e = wa.err("group.add", chat=chat, users=[c.user_id, ghost])
    assert e["code"] == "not_found", e
    st = chat_state(wa, chat)
    assert st["last_seq"] == 1 and set(roles(st)) == {a.user_id, b.user_id}, "nobody was added"


def test_member_limit_counts_the_creator(server_factory, parley_for):
    srv = server_factory(extra_args=["--max-group-members", "4"])
    p = parley_for(srv)
    a = p.user()
    others = [p.user() for _ in range(5)]
    wa = p.connect(a.devices[0])
    e = wa.err("group.create", title="five", members=ids(*others[:4]))
    assert e["code"] == "too_large", "4 invited + the creator = 5 > 4"
    assert wa.ok("chats")["chats"] == []
    chat = create_group(wa, "four", others[:3])
    assert len(chat["members"]) == 4 and chat["last_seq"] == 1
    g = chat["chat"]
    e = wa.err("group.add", chat=g, users=[others[3].user_id])
    assert e["code"] == "too_large", e
    st = chat_state(wa, g)
    assert len(st["members"]) == 4 and st["last_seq"] == 1
    # a freed place can be taken again
    wa.ok("group.remove", chat=g, users=[others[0].user_id])
    r = wa.ok("group.add", chat=g, users=[others[3].user_id])["chat"]
    assert set(roles(r)) == {a.user_id, others[1].user_id, others[2].user_id, others[3].user_id}
    assert r["last_seq"] == 3
    assert wa.err("group.add", chat=g, users=[others[4].user_id])["code"] == "too_large"


def test_default_limit_256_members_and_fanout_to_all_of_them(parley):
    """One real group of 256 (the default limit): 255 invited + the creator; then every member
    connected, and each connection gets each message exactly once, in seq order."""
    creator = parley.user()
    with ThreadPoolExecutor(4) as pool:
        others = list(pool.map(lambda _: parley.user(), range(256)))   # registered + logged in
    members, extra = others[:255], others[255]
    wa = parley.connect(creator.devices[0])

    e = wa.err("group.create", title="257", members=ids(*others))
    assert e["code"] == "too_large", "256 invited + the creator is over the limit"
    chat = create_group(wa, "the 256", members)
    g = chat["chat"]
    assert len(chat["members"]) == 256 and chat["last_seq"] == 1
    assert roles(chat)[creator.user_id] == "admin"
    assert sorted(wait_msg(wa, g, 1)["system"]["users"]) == sorted(ids(*members))
    assert wa.err("group.add", chat=g, users=[extra.user_id])["code"] == "too_large"

    # every member connected (one at a time per worker: at most 4 unauthenticated at once)
    with ThreadPoolExecutor(4) as pool:
        socks = list(pool.map(lambda u: parley.connect(u.devices[0]), members))
    for w in socks:
        # logged in before the group existed: its cursor starts at 0, so `created` is replayed
        assert seqs(msgs(w.replay, g)) == [1] and len(w.replay) == 1, w.replay

    speaker = socks[0]
    sent = []                              # (seq, sending socket)
    for i in range(5):
        ws = wa if i % 2 == 0 else speaker
        sent.append((send(ws, g, f"to all #{i}")["seq"], ws))
    end = send(wa, g, "end")["seq"]
    sent.append((end, wa))
    assert [s for s, _ in sent] == list(range(2, 8))

    for w in socks + [wa]:
        want = [s for s, sender in sent if sender is not w]
        got = []
        while not got or got[-1]["seq"] < want[-1]:
            got.append(w.wait_event("msg", 5.0, lambda m: m.get("chat") == g))
        assert seqs(got) == want, "each connection gets each message once, in order"
        for m in got:
            assert m["text"] == ("end" if m["seq"] == end else f"to all #{m['seq'] - 2}")
    assert_no_msg(speaker, lambda m: m.get("chat") == g, wait=0.05)
    assert_no_msg(wa, lambda m: m.get("chat") == g, wait=0.05)


# ===================================================================== group.add

def test_add_is_for_admins_and_the_added_user_sees_the_chat_from_added_on(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user(devices=2)
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    c1 = parley.connect(c.devices[0])          # c's second device stays offline
    g = create_group(wa, "add", [b])["chat"]
    for i in range(3):
        send(wa, g, f"before {i}")              # 2, 3, 4
    e = wb.err("group.add", chat=g, users=[c.user_id])
    assert e["code"] == "forbidden", "admins only"
    assert chat_state(wa, g)["last_seq"] == 4
    assert_no_event(c1, lambda e: e.get("chat") == g)

    r = wa.ok("group.add", chat=g, users=[c.user_id])["chat"]
    assert roles(r) == {a.user_id: "admin", b.user_id: "member", c.user_id: "member"}
    assert r["last_seq"] == 5
    for w in (wa, wb, c1):
        check_system(wait_system(w, g, "added"), g, "added", a.user_id, seq=5, users=[c.user_id])
        assert roles(wait_chat_event(w, g, lambda e: e["last_seq"] == 5)) == roles(r)
    send(wb, g, "after 1")                      # 6
    send(wa, g, "after 2")                      # 7
    got = [wait_msg(c1, g) for _ in range(2)]
    assert seqs(got) == [6, 7]
    assert_no_msg(c1, lambda m: m.get("chat") == g and m["seq"] < 5)

    hist = c1.ok("history", chat=g)
    assert seqs(hist["messages"]) == [7, 6, 5] and hist["more"] is False, "history only from `added` on"
    assert seqs(c1.ok("history", chat=g, after=0)["messages"]) == [5, 6, 7]
    h = c1.ok("history", chat=g, before=5)
    assert h["messages"] == [] and h["more"] is False
    h = c1.ok("history", chat=g, before=7, limit=1)
    assert seqs(h["messages"]) == [6] and h["more"] is True
    st = chat_state(c1, g)
    assert st["unread"] == 2, "unread counts from the `added` message on"
    assert st["last_msg"]["seq"] == 7

    c2 = parley.connect(c.devices[1])
    assert seqs(msgs(c2.replay, g)) == [5, 6, 7], "the offline device is pushed `added` and after"


def test_re_add_after_removal(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    g = create_group(wa, "again", [b, c])["chat"]
    wa.ok("group.remove", chat=g, users=[c.user_id])             # 2
    check_system(wait_system(wc, g, "removed"), g, "removed", a.user_id, seq=2, users=[c.user_id])
    send(wb, g, "while c is away")                                 # 3
    r = wa.ok("group.add", chat=g, users=[c.user_id])["chat"]      # 4
    assert r["last_seq"] == 4 and roles(r)[c.user_id] == "member"
    check_system(wait_system(wc, g, "added"), g, "added", a.user_id, seq=4, users=[c.user_id])
    send(wb, g, "welcome back")                                    # 5
    assert wait_msg(wc, g, 5)["text"] == "welcome back"
    live = msgs(wc.take_pending(), g)
    assert 3 not in seqs(live), "nothing between the removal and the re-add"

    assert seqs(wc.ok("history", chat=g, after=0)["messages"]) == [4, 5]
    assert chat_state(wc, g)["unread"] == 1
    send(wc, g, "I'm back")                                        # a member again
    wc.close()
    wc = parley.connect(c.devices[0])
    rs = seqs(msgs(wc.replay, g))
    assert [s for s in rs if s >= 3] == [4, 5], f"replay: from `added` on, never 3 (own 6 excluded): {rs}"


# ===================================================================== group.remove

def test_remove_is_for_admins_and_the_removed_get_removed_then_nothing(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user(devices=2)
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    c1, c2 = (parley.connect(d) for d in c.devices)
    g = create_group(wa, "remove", [b, c])["chat"]
    send(wb, g, "one")                                                    # 2
    e = wb.err("group.remove", chat=g, users=[c.user_id])
    assert e["code"] == "forbidden", "admins only"

    r = wa.ok("group.remove", chat=g, users=[c.user_id])["chat"]       # 3
    assert roles(r) == {a.user_id: "admin", b.user_id: "member"} and r["last_seq"] == 3
    for w in (wa, wb, c1, c2):
        check_system(wait_system(w, g, "removed"), g, "removed", a.user_id, seq=3, users=[c.user_id])
        ev = wait_chat_event(w, g, lambda e: e["last_seq"] == 3)   # the removed user gets it too
        assert roles(ev) == roles(r) and ev["last_seq"] == 3
    send(wb, g, "after")                                                  # 4
    wa.ok("group.update", chat=g, title="renamed")                        # 5
    assert wait_msg(wa, g, 4)["text"] == "after"
    for w in (c1, c2):
        assert_nothing_after(w, g, 3)
    assert all(x["chat"] != g for x in c1.ok("chats")["chats"]), "`chats` lists member chats only"

    # every request on the chat is forbidden, except ack up to the removal
    forbidden(c1, "send", chat=g, cid=new_cid(), text="still here?")
    forbidden(c1, "history", chat=g)
    forbidden(c1, "read", chat=g, seq=1)
    forbidden(c1, "receipts", chat=g, seq=1)
    forbidden(c1, "typing", chat=g, on=True)
    forbidden(c1, "group.leave", chat=g)
    forbidden(c1, "group.update", chat=g, title="mine now")
    forbidden(c1, "group.add", chat=g, users=[c.user_id])
    assert c1.ok("ack", chat=g, seq=3) == {}
    assert c2.ok("ack", chat=g, seq=100) == {}, "an ack above the removal is capped, not refused"
    assert chat_state(wa, g)["last_seq"] == 5
    c1.close()
    c1 = parley.connect(c.devices[0])
    assert msgs(c1.replay, g) == [], "acked up to the removal: nothing left to replay"


def test_no_message_after_the_removal_reaches_the_removed_even_in_flight(server_factory, parley_for):
    srv = server_factory(extra_args=["--rate-per-sec", "0"])
    p = parley_for(srv)
    admin = p.user()
    sender = p.user()
    victim = p.user(devices=2)        # device 0 live, device 1 offline until the end
    wa = p.connect(admin.devices[0])
    wb = p.connect(sender.devices[0])
    wc = p.connect(victim.devices[0])
    g = create_group(wa, "race", [sender, victim])["chat"]
    n = 1200
    items = [{"chat": g, "cid": f"race-{i:05d}", "text": f"flood #{i}"} for i in range(n)]

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(harness.pipeline_send, wb, items, 64, 90)
        # let the flood start, then remove the victim in the middle of it
        first = []
        while not (first and first[-1].get("ev") == "msg" and first[-1].get("chat") == g
                   and first[-1]["seq"] >= 40):
            first.append(wc.recv_json(10))
        r = wa.ok("group.remove", chat=g, users=[victim.user_id])["chat"]
        assert victim.user_id not in roles(r)
        res = fut.result(90)
    assert not res.errors and len(res.acked) == n, res.errors[:3]
    acked = sorted(x["seq"] for x in res.acked.values())

    wc.roundtrip()
    wc.drain(0.3)
    live = msgs(first + wc.take_pending(), g)
    removed = [m for m in live if m["kind"] == "system" and m["system"]["event"] == "removed"]
    assert len(removed) == 1, f"the removed user gets its `removed` message once: {removed}"
    rseq = removed[0]["seq"]
    assert any(s > rseq for s in acked), "the removal did not happen during the flood (test is moot)"
    assert seqs(live) == list(range(1, rseq + 1)), \
        f"live: in order, without gaps, nothing after the removal (seq {rseq}); tail {seqs(live)[-5:]}"

    # in replay after reconnect, on both devices
    wc.close()
    wc = p.connect(victim.devices[0])
    c2 = p.connect(victim.devices[1])
    for w in (wc, c2):
        rs = seqs(msgs(w.replay, g))
        assert rs == list(range(1, rseq + 1)), f"replay must stop at the removal {rseq}: {rs[-5:]}"
    forbidden(wc, "history", chat=g)
    forbidden(wc, "send", chat=g, cid=new_cid(), text="x")
    assert c2.ok("ack", chat=g, seq=rseq) == {}
    assert wc.ok("ack", chat=g, seq=acked[-1]) == {}
    c2.close()
    wc.close()
    for d in victim.devices:
        w = p.connect(d)
        assert msgs(w.replay, g) == []


# ===================================================================== group.leave

def test_leave_logs_left_and_the_leaver_gets_it_then_nothing(parley):
    a = parley.user()
    b = parley.user(devices=2)
    c = parley.user()
    wa = parley.connect(a.devices[0])
    b1, b2 = (parley.connect(d) for d in b.devices)
    wc = parley.connect(c.devices[0])
    g = create_group(wa, "leave", [b, c])["chat"]
    wa.ok("group.update", chat=g, admins_add=[b.user_id])       # 2: admins a, b
    assert b1.ok("group.leave", chat=g) == {}                     # 3
    for w in (wa, b1, b2, wc):
        check_system(wait_system(w, g, "left"), g, "left", b.user_id, seq=3)
        ev = wait_chat_event(w, g, lambda e: e["last_seq"] == 3)
        assert roles(ev) == {a.user_id: "admin", c.user_id: "member"}
    send(wa, g, "bye b")                                          # 4
    assert wait_msg(wc, g, 4)["text"] == "bye b"
    for w in (b1, b2):
        assert_nothing_after(w, g, 3)
    assert all(x["chat"] != g for x in b1.ok("chats")["chats"])
    forbidden(b1, "send", chat=g, cid=new_cid(), text="x")
    forbidden(b1, "history", chat=g)
    forbidden(b1, "group.leave", chat=g)
    assert b2.ok("ack", chat=g, seq=3) == {}
    # an admin leaving while another admin remains logs no `admins` message
    assert chat_state(wa, g)["last_seq"] == 4


def test_last_admin_leaving_makes_the_longest_standing_member_admin(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    d = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    wd = parley.connect(d.devices[0])
    g = create_group(wa, "succession", [b])["chat"]               # 1: a (admin), b
    wa.ok("group.add", chat=g, users=[c.user_id])                 # 2: c
    wa.ok("group.remove", chat=g, users=[b.user_id])              # 3: b's first membership ends
    wa.ok("group.add", chat=g, users=[b.user_id])                 # 4: b again, now the newest
    wa.ok("group.add", chat=g, users=[d.user_id])                 # 5: d
    send(wb, g, "hi")                                             # 6
    assert wa.ok("group.leave", chat=g) == {}                     # 7 left, 8 admins
    for w in (wa, wb, wc, wd):
        left = wait_system(w, g, "left")
        check_system(left, g, "left", a.user_id, seq=7)
    for w in (wb, wc, wd):
        adm = wait_system(w, g, "admins")
        assert adm["seq"] == 8, "the `admins` message is logged right after the `left` one"
        assert adm["system"]["users"] == [c.user_id], "c has stood longest (b left and came back)"
        ev = wait_chat_event(w, g, lambda e: e["last_seq"] == 8)
        assert roles(ev) == {b.user_id: "member", c.user_id: "admin", d.user_id: "member"}
    # the leaver gets the chat event but not the `admins` message after its `left`
    ev = wait_chat_event(wa, g, lambda e: e["last_seq"] == 8)
    assert a.user_id not in roles(ev)
    wa.take_pending(lambda e: e.get("ev") == "chat")
    assert_nothing_after(wa, g, 7)
    st = chat_state(wc, g)
    assert st["last_seq"] == 8 and roles(st)[c.user_id] == "admin"
    # the new admin can act, the others cannot
    assert wc.ok("group.update", chat=g, title="c's now")["chat"]["title"] == "c's now"
    forbidden(wb, "group.update", chat=g, title="b's now")


def test_the_last_member_can_leave(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    g = create_group(wa, "dwindling", [b])["chat"]
    wb.ok("group.leave", chat=g)                                  # 2
    assert wait_system(wa, g, "left")["seq"] == 2
    wa.ok("group.leave", chat=g)                                  # 3, and nobody is left
    assert wait_system(wa, g, "left")["seq"] == 3
    ev = wait_chat_event(wa, g, lambda e: e["last_seq"] == 3)
    assert ev["members"] == []
    assert wa.ok("chats")["chats"] == [] and wb.ok("chats")["chats"] == []
    forbidden(wa, "send", chat=g, cid=new_cid(), text="echo")


# ===================================================================== group.update

def test_update_title_and_admins(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    g = create_group(wa, "old", [b, c])["chat"]

    forbidden(wb, "group.update", chat=g, title="coup")
    forbidden(wb, "group.update", chat=g, admins_add=[b.user_id])
    r = wa.ok("group.update", chat=g, title="new")["chat"]                      # 2
    assert r["title"] == "new" and r["last_seq"] == 2
    for w in (wa, wb, wc):
        check_system(wait_system(w, g, "title"), g, "title", a.user_id, seq=2, title="new")
        assert wait_chat_event(w, g, lambda e: e["last_seq"] == 2)["title"] == "new"

    r = wa.ok("group.update", chat=g, admins_add=[b.user_id])["chat"]          # 3
    assert roles(r) == {a.user_id: "admin", b.user_id: "admin", c.user_id: "member"}
    for w in (wa, wb, wc):
        check_system(wait_system(w, g, "admins"), g, "admins", a.user_id, seq=3,
                     users=[a.user_id, b.user_id])
        assert roles(wait_chat_event(w, g, lambda e: e["last_seq"] == 3)) == roles(r)

    r = wa.ok("group.update", chat=g, admins_remove=[a.user_id])["chat"]       # 4
    assert roles(r) == {a.user_id: "member", b.user_id: "admin", c.user_id: "member"}
    m = wait_system(wc, g, "admins")
    check_system(m, g, "admins", a.user_id, seq=4, users=[b.user_id])
    forbidden(wa, "group.update", chat=g, title="not an admin any more")
    forbidden(wa, "group.add", chat=g, users=[a.user_id])

    # an update that would leave no admin is refused, judged on the list after the change
    e = wb.err("group.update", chat=g, admins_remove=[b.user_id])
    assert e["code"] == "bad_request", e
    e = wb.err("group.update", chat=g, title="ok?", admins_remove=[b.user_id])
    assert e["code"] == "bad_request", "a refused update changes nothing, the title neither"
    st = chat_state(wb, g)
    assert st["last_seq"] == 4 and st["title"] == "new"
    assert roles(st)[b.user_id] == "admin"
    r = wb.ok("group.update", chat=g, admins_add=[c.user_id], admins_remove=[b.user_id])["chat"]
    assert roles(r) == {a.user_id: "member", b.user_id: "member", c.user_id: "admin"}
    assert r["last_seq"] == 5
    check_system(wait_msg(wa, g, 5), g, "admins", b.user_id, seq=5, users=[c.user_id])
    assert_no_msg(wa, lambda m: m.get("chat") == g and m["seq"] > 5)


# ===================================================================== direct chats

def test_a_direct_chat_never_gains_members(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wa = parley.connect(a.devices[0])
    wc = parley.connect(c.devices[0])
    d = parley.open_chat(wa, b)["chat"]
    e = wa.err("group.add", chat=d, users=[c.user_id])
    assert e["code"] == "bad_request", e
    st = chat_state(wa, d)
    assert st["kind"] == "direct" and set(roles(st)) == {a.user_id, b.user_id} and st["last_seq"] == 0
    forbidden(wc, "history", chat=d)
    assert_no_event(wc)
