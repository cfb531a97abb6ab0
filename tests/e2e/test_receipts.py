"""Receipts: `receipt` and `read_sync` events, the `receipts` op, cursors in `chats`
(PROTOCOL.md §3 receipts/ack/read, §4.5)."""

from __future__ import annotations

from harness import assert_no_event, chat_state, create_group, new_cid


def send(ws, chat, text):
    return ws.ok("send", chat=chat, cid=new_cid(), text=text)["seq"]


def is_receipt(chat):
    return lambda e: e.get("ev") == "receipt" and e.get("chat") == chat


def receipts_at(ws, chat, wait=0.15):
    """Every receipt event of `chat` that reached ws so far (after a ping round trip and a short
    grace period); they are removed from the set-aside messages."""
    ws.roundtrip()
    ws.drain(wait)
    return ws.take_pending(is_receipt(chat))


def expect_receipts(ws, chat, want, wait=0.15):
    """ws got exactly the receipt events `want` (list of (user_id, kind, seq)), in that order."""
    got = []
    for _ in want:     # wait for the expected ones first (they may take a moment)
        got.append(ws.wait_event("receipt", 5.0, lambda e: e.get("chat") == chat))
    got += receipts_at(ws, chat, wait)
    for e in got:
        assert set(e) == {"ev", "chat", "user", "kind", "seq"}, f"receipt fields: {e}"
    assert [(e["user"], e["kind"], e["seq"]) for e in got] == want, f"receipts at a device: {got}"


def no_receipts(ws, chat, wait=0.15):
    got = receipts_at(ws, chat, wait)
    assert got == [], f"unexpected receipts: {got}"


class Trio:
    """A group of Alice, Bob and Mover (two connected devices each), created by Alice."""

    def __init__(self, parley, extra=()):
        self.alice = parley.user(devices=2)
        self.bob = parley.user(devices=2)
        self.mover = parley.user(devices=2)
        self.a = [parley.connect(d) for d in self.alice.devices]
        self.b = [parley.connect(d) for d in self.bob.devices]
        self.m = [parley.connect(d) for d in self.mover.devices]
        self.chat = create_group(self.a[0], "receipts", [self.bob, self.mover, *extra])["chat"]

    def all(self):
        return self.a + self.b + self.m


def test_a_receipt_goes_only_to_the_senders_of_newly_covered_messages(parley):
    t = Trio(parley)
    g = t.chat
    assert send(t.a[0], g, "a1") == 2
    assert send(t.a[1], g, "a2") == 3
    assert send(t.b[0], g, "b1") == 4
    mover = t.mover.user_id

    # covers 2..3: Alice's messages only; one receipt per cursor move, seq = the new cursor
    assert t.m[0].ok("ack", chat=g, seq=3) == {}
    for w in t.a:
        expect_receipts(w, g, [(mover, "delivered", 3)])
    for w in t.b + t.m:
        no_receipts(w, g)

    # a device behind the user's cursor moves nothing
    assert t.m[1].ok("ack", chat=g, seq=2) == {}
    for w in t.all():
        no_receipts(w, g, wait=0.05)

    # covers 4 only: Bob's
    assert t.m[1].ok("ack", chat=g, seq=4) == {}
    for w in t.b:
        expect_receipts(w, g, [(mover, "delivered", 4)])
    for w in t.a + t.m:
        no_receipts(w, g)

    # Bob acking covers Alice's messages (and his own, which earns him nothing)
    assert t.b[1].ok("ack", chat=g, seq=4) == {}
    for w in t.a:
        expect_receipts(w, g, [(t.bob.user_id, "delivered", 4)])
    for w in t.b + t.m:
        no_receipts(w, g)

    r = t.b[0].ok("receipts", chat=g, seq=3)
    assert {mover, t.bob.user_id} <= set(r["delivered"]) and r["read"] == []


def test_read_sends_one_read_receipt_and_read_sync_to_the_other_devices(parley):
    t = Trio(parley)
    g = t.chat
    send(t.a[0], g, "a1")                      # 2
    send(t.b[0], g, "b1")                      # 3
    mover = t.mover.user_id

    # the read also raises the delivered cursor (0 -> 3): only the read receipt is sent
    assert t.m[0].ok("read", chat=g, seq=3) == {}
    for w in t.a + t.b:
        expect_receipts(w, g, [(mover, "read", 3)])
    sync = t.m[1].wait_event("read_sync", 5.0, lambda e: e.get("chat") == g)
    assert sync == {"ev": "read_sync", "chat": g, "seq": 3}
    assert_no_event(t.m[0], lambda e: e.get("ev") == "read_sync")
    assert_no_event(t.m[1], lambda e: e.get("ev") == "read_sync", wait=0.05)
    for w in t.m:
        no_receipts(w, g, wait=0.05)
    st = chat_state(t.m[1], g)
    assert st["read_seq"] == 3 and st["delivered_seq"] == 3 and st["unread"] == 0

    # reading implied delivery: acking the same range moves nothing
    assert t.m[1].ok("ack", chat=g, seq=3) == {}
    # the read cursor never goes back: no receipt, no read_sync
    assert t.m[1].ok("read", chat=g, seq=1) == {}
    for w in t.all():
        no_receipts(w, g, wait=0.05)
    assert_no_event(t.m[0], lambda e: e.get("ev") == "read_sync", wait=0.05)
    assert chat_state(t.m[0], g)["read_seq"] == 3

    # a read past last_seq is capped: the receipt and read_sync carry last_seq
    send(t.a[1], g, "a2")                      # 4
    assert t.m[1].ok("read", chat=g, seq=10 ** 9) == {}
    for w in t.a:
        expect_receipts(w, g, [(mover, "read", 4)])
    for w in t.b + t.m:
        no_receipts(w, g)
    sync = t.m[0].wait_event("read_sync", 5.0, lambda e: e.get("chat") == g)
    assert sync["seq"] == 4
    assert_no_event(t.m[1], lambda e: e.get("ev") == "read_sync")
    st = chat_state(t.m[0], g)
    assert st["read_seq"] == 4 and st["delivered_seq"] == 4 and st["last_seq"] == 4
    send(t.b[1], g, "b2")                      # 5: the cap was stored as 4, not 10**9
    assert chat_state(t.m[0], g)["read_seq"] == 4
    assert chat_state(t.m[0], g)["unread"] == 1


def test_delivered_then_read_sends_both_kinds(parley):
    t = Trio(parley)
    g = t.chat
    send(t.a[0], g, "a1")                      # 2
    send(t.a[0], g, "a2")                      # 3
    mover = t.mover.user_id
    t.m[0].ok("ack", chat=g, seq=3)
    t.m[0].ok("read", chat=g, seq=2)
    t.m[1].ok("read", chat=g, seq=3)
    for w in t.a:
        expect_receipts(w, g, [(mover, "delivered", 3), (mover, "read", 2), (mover, "read", 3)])
    for w in t.b + t.m:
        no_receipts(w, g)


def test_system_messages_have_no_receipts(parley):
    t = Trio(parley)
    g = t.chat
    t.a[0].ok("group.update", chat=g, title="renamed")          # 2, from Alice
    t.a[0].ok("group.update", chat=g, admins_add=[t.bob.user_id])  # 3
    t.m[0].ok("ack", chat=g, seq=3)
    t.m[0].ok("read", chat=g, seq=3)
    for w in t.all():
        no_receipts(w, g)
    assert t.m[1].wait_event("read_sync", 5.0)["seq"] == 3, "read_sync follows the cursor anyway"
    st = chat_state(t.m[0], g)
    assert st["read_seq"] == 3 and st["unread"] == 0


def test_delivered_is_the_highest_ack_of_any_device_a_new_one_included(parley):
    alice = parley.user()
    mover = parley.user()
    wa = parley.connect(alice.devices[0])
    m1 = parley.connect(mover.devices[0])
    chat = parley.open_chat(wa, mover)["chat"]
    for i in range(3):
        send(wa, chat, f"m{i}")
    m1.ok("ack", chat=chat, seq=1)
    expect_receipts(wa, chat, [(mover.user_id, "delivered", 1)])

    # a device created now starts at last_seq (3), which is not an ack; its ack of 3 is
    late = parley.connect(parley.login(mover))
    assert chat_state(late, chat)["delivered_seq"] == 1
    late.ok("ack", chat=chat, seq=3)
    expect_receipts(wa, chat, [(mover.user_id, "delivered", 3)])
    st = chat_state(m1, chat)
    assert st["delivered_seq"] == 3, "delivered_seq is the user's cursor, not the calling device's"
    assert st["read_seq"] == 0 and st["unread"] == 3
    r = wa.ok("receipts", chat=chat, seq=3)
    assert mover.user_id in r["delivered"] and mover.user_id not in r["read"]
    m1.ok("ack", chat=chat, seq=2)             # behind the user's cursor: nothing moves
    no_receipts(wa, chat)
    assert chat_state(m1, chat)["delivered_seq"] == 3


def test_receipts_op_answers_per_member(parley):
    carol = parley.user()
    dave = parley.user()
    t = Trio(parley, extra=[carol, dave])
    g = t.chat
    wc = parley.connect(carol.devices[0])
    wd = parley.connect(dave.devices[0])
    for i in range(3):
        send(t.a[0], g, f"a{i}")                # 2, 3, 4
    t.b[0].ok("ack", chat=g, seq=3)
    wc.ok("read", chat=g, seq=2)
    t.m[1].ok("ack", chat=g, seq=4)
    t.m[0].ok("read", chat=g, seq=4)
    sender = t.alice.user_id                     # PROTOCOL is silent on the sender's own ticks

    def ticks(ws, seq):
        r = ws.ok("receipts", chat=g, seq=seq)
        assert set(r) == {"delivered", "read"}, r
        for k in ("delivered", "read"):
            assert len(r[k]) == len(set(r[k])), f"a member listed twice: {r}"
        return ({u for u in r["delivered"] if u != sender}, {u for u in r["read"] if u != sender})

    B, C, M = t.bob.user_id, carol.user_id, t.mover.user_id      # Dave moved nothing
    assert ticks(wd, 2) == ({B, C, M}, {C, M})
    assert ticks(wc, 3) == ({B, M}, {M})
    assert ticks(t.a[0], 4) == ({M}, {M})
    assert ticks(t.b[1], 5) == (set(), set())
    outsider = parley.connect(parley.user().devices[0])
    assert outsider.err("receipts", chat=g, seq=2)["code"] == "forbidden"


def test_chats_reports_unread_cursors_and_last_msg(parley):
    alice = parley.user()
    bob = parley.user(devices=2)
    wa = parley.connect(alice.devices[0])
    b1, b2 = (parley.connect(d) for d in bob.devices)
    g = create_group(wa, "state", [bob])["chat"]        # 1 (system)
    send(wa, g, "a1")                                   # 2
    send(wa, g, "a2")                                   # 3
    wa.ok("group.update", chat=g, title="t2")           # 4 (system)
    send(b1, g, "b1")                                   # 5
    send(wa, g, "a3")                                   # 6
    last = wa.ok("history", chat=g, limit=1)["messages"][0]
    assert last["seq"] == 6

    st = chat_state(b2, g)
    assert st["unread"] == 3, "messages above read_seq from others, system messages excluded"
    assert st["read_seq"] == 0 and st["delivered_seq"] == 0
    assert st["last_msg"] == last and st["last_seq"] == 6
    assert st["kind"] == "group" and st["title"] == "t2"
    sa = chat_state(wa, g)
    assert sa["unread"] == 1 and sa["last_msg"] == last

    b1.ok("read", chat=g, seq=3)
    st = chat_state(b2, g)
    assert (st["unread"], st["read_seq"], st["delivered_seq"]) == (1, 3, 3)
    b2.ok("ack", chat=g, seq=5)
    st = chat_state(b1, g)
    assert (st["unread"], st["read_seq"], st["delivered_seq"]) == (1, 3, 5)
    b2.ok("read", chat=g, seq=6)
    st = chat_state(b1, g)
    assert (st["unread"], st["read_seq"], st["delivered_seq"]) == (0, 6, 6)


def test_chats_dropped_from_a_tiny_cache_keep_their_seqs_cursors_and_receipts(server_factory,
                                                                              parley_for):
    """--chat-cache-members 2: every chat leaves the owner's cache almost at once and is read
    again from the store; nothing a client sees may change."""
    srv = server_factory(extra_args=["--chat-cache-members", "2"])
    p = parley_for(srv)
    t = Trio(p)
    g = t.chat
    direct = t.a[0].ok("chat.open", peer=t.bob.user_id)["chat"]["chat"]
    seqs = []
    for i in range(6):
        seqs.append(send(t.a[0], g, f"g{i}"))
        send(t.b[0], direct, f"d{i}")
        send(t.m[0], g, f"m{i}")
    assert seqs == [2, 4, 6, 8, 10, 12]
    last = send(t.a[0], direct, "last")
    assert last == 7
    # Bob's ack of the group covers Alice's and Mover's messages: both hear of it.
    t.b[0].ok("ack", chat=g, seq=13)
    for ws in (t.a[0], t.m[0]):
        ev = ws.wait_event("receipt", 5.0, lambda e: e.get("chat") == g and e.get("user") == t.bob.user_id)
        assert (ev["kind"], ev["seq"]) == ("delivered", 13)
    t.b[0].ok("read", chat=direct, seq=last)
    ev = t.a[0].wait_event("receipt", 5.0, lambda e: e.get("chat") == direct and e.get("kind") == "read")
    assert ev["seq"] == last
    assert t.a[0].ok("receipts", chat=g, seq=13)["delivered"] == [t.bob.user_id]
