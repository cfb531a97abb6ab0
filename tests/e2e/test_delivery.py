"""Delivery, replay, idempotence, cursors (PROTOCOL.md §4.1–§4.5)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import harness
from harness import assert_no_msg, chat_state, msgs, new_cid
from wsclient import WsTimeout


def seqs(events):
    return [m["seq"] for m in events]


def send(ws, chat, text, c=None, **kw):
    c = c or new_cid()
    return c, ws.ok("send", chat=chat, cid=c, text=text, **kw)


def strip_ev(m):
    return {k: v for k, v in m.items() if k != "ev"}


# ===================================================================== live and replayed delivery

def test_multi_device_live_delivery_and_replay_to_an_offline_device(parley):
    a = parley.user(devices=2)
    b = parley.user(devices=3)
    a1, a2 = (parley.connect(d) for d in a.devices)
    b1, b2 = (parley.connect(d) for d in b.devices[:2])      # b's third device stays offline
    chat = parley.open_chat(a1, b)["chat"]
    cids = [send(a1, chat, f"m{i}")[0] for i in range(3)]
    for w in (a2, b1, b2):
        got = [w.wait_event("msg", predicate=lambda m: m.get("chat") == chat) for _ in range(3)]
        assert seqs(got) == [1, 2, 3] and [m["cid"] for m in got] == cids
    assert_no_msg(a1)

    b3 = parley.connect(b.devices[2])
    hist = b3.ok("history", chat=chat, after=0)["messages"]
    assert [strip_ev(m) for m in b3.replay] == hist, "replay = the messages in order, before synced"
    assert seqs(b3.replay) == [1, 2, 3]
    for w in (a1, a2, b1, b2):
        assert_no_msg(w, wait=0.05)  # nothing more was sent to the live devices


def test_replay_after_reconnect_is_in_order_and_at_least_once(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(5):
        send(wa, chat, f"offline {i}")
    wb = parley.connect(b.devices[0])
    assert seqs(msgs(wb.replay, chat)) == [1, 2, 3, 4, 5]
    assert [m["text"] for m in wb.replay] == [f"offline {i}" for i in range(5)]
    for m in wb.replay:
        assert m["from"] == a.user_id and m["chat"] == chat and m["kind"] == "text"
    wb.close()
    # nothing was acked: everything is pushed again, plus what came meanwhile
    send(wa, chat, "later 1")
    send(wa, chat, "later 2")
    wb = parley.connect(b.devices[0])
    assert seqs(wb.replay) == [1, 2, 3, 4, 5, 6, 7]
    # live messages after synced
    c, ok = send(wa, chat, "live")
    ev = wb.wait_event("msg")
    assert ev["seq"] == 8 and ev["cid"] == c


def test_ack_limits_replay_to_messages_above_it(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(5):
        send(wa, chat, f"m{i}")
    live = [wb.wait_event("msg") for _ in range(5)]
    assert seqs(live) == [1, 2, 3, 4, 5]
    assert wb.ok("ack", chat=chat, seq=3) == {}
    wb.close()

    wb = parley.connect(b.devices[0])
    assert seqs(wb.replay) == [4, 5], "only what is above the acked cursor is replayed"
    assert wb.ok("ack", chat=chat, seq=5) == {}
    wb.close()

    wb = parley.connect(b.devices[0])
    assert wb.replay == [], "everything acked: nothing replayed"
    wb.close()

    send(wa, chat, "while offline")
    wb = parley.connect(b.devices[0])
    assert seqs(wb.replay) == [6]


def test_a_devices_own_messages_are_never_pushed_to_it(parley):
    a = parley.user(devices=2)
    b = parley.user()
    wb = parley.connect(b.devices[0])
    chat = parley.open_chat(wb, a)["chat"]
    send(wb, chat, "b1")
    send(wb, chat, "b2")
    wa1 = parley.connect(a.devices[0])
    assert seqs(wa1.replay) == [1, 2]
    send(wa1, chat, "a3")
    wa1.close()
    send(wb, chat, "b4")

    wa1 = parley.connect(a.devices[0])     # no acks: replay everything except its own
    assert seqs(wa1.replay) == [1, 2, 4]
    wa2 = parley.connect(a.devices[1])     # the user's other device gets all of it
    assert seqs(wa2.replay) == [1, 2, 3, 4]
    assert wa2.replay[2]["from"] == a.user_id and wa2.replay[2]["text"] == "a3"

    # live too: a message from a1 reaches a2 but not a1
    c, _ = send(wa1, chat, "a5")
    assert wa2.wait_event("msg", predicate=lambda m: m.get("cid") == c)["seq"] == 5
    assert_no_msg(wa1, lambda m: m.get("cid") == c)
    wa1.close()
    wa1 = parley.connect(a.devices[0])
    assert seqs(wa1.replay) == [1, 2, 4]


def test_a_new_device_starts_at_last_seq(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(4):
        send(wa, chat, f"old {i}")
    wb0 = parley.connect(b.devices[0])
    assert seqs(wb0.replay) == [1, 2, 3, 4]
    wb0.close()
    assert chat_state(wa, chat)["last_seq"] == 4

    late = parley.login(b)                 # created after the messages exist
    wl = parley.connect(late)
    assert wl.replay == [], "a new device is not replayed old history"
    h = wl.ok("history", chat=chat)
    assert seqs(h["messages"]) == [4, 3, 2, 1], "but history serves it"
    st = chat_state(wl, chat)
    assert st["delivered_seq"] == 0, "the new device's starting position is not an ack"
    assert st["unread"] == 4

    c, _ = send(wa, chat, "new")
    assert wl.wait_event("msg")["cid"] == c
    wl.close()
    wl = parley.connect(late)
    assert seqs(wl.replay) == [5]


def test_new_device_starts_at_zero_in_a_chat_created_after_its_login(parley):
    a = parley.user()
    b = parley.user()
    late = parley.login(b)
    wa = parley.connect(a.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    send(wa, chat, "x")
    send(wa, chat, "y")
    wl = parley.connect(late)
    assert seqs(wl.replay) == [1, 2]


# ===================================================================== idempotent send

def test_resend_of_the_same_cid_from_another_device_is_a_dup(parley):
    a = parley.user(devices=2)
    b = parley.user(devices=2)
    a1, a2 = (parley.connect(d) for d in a.devices)
    b1, b2 = (parley.connect(d) for d in b.devices)
    chat = parley.open_chat(a1, b)["chat"]
    send(b1, chat, "before")
    c = "idem-" + new_cid()
    first = a1.ok("send", chat=chat, cid=c, text="exactly once", reply_to=1)
    assert first["dup"] is False and first["seq"] == 2
    for w in (a2, b1, b2):
        w.wait_event("msg", predicate=lambda m: m.get("cid") == c)

    again = [a2.ok("send", chat=chat, cid=c, text="exactly once", reply_to=1),
             a1.ok("send", chat=chat, cid=c, text="exactly once", reply_to=1)]
    a1.close()
    a1 = parley.connect(a.devices[0])
    again.append(a1.ok("send", chat=chat, cid=c, text="exactly once", reply_to=1))
    for r in again:
        assert r["chat"] == chat and r["seq"] == 2 and r["ts"] == first["ts"] and r["dup"] is True, r

    h = b1.ok("history", chat=chat)["messages"]
    assert seqs(h) == [2, 1], "no new message"
    assert chat_state(b1, chat)["last_seq"] == 2
    for w in (a2, b1, b2):
        assert_no_msg(w, lambda m: m.get("cid") == c)   # no second event for the resends
    assert_no_msg(a1, lambda m: m.get("cid") == c)
    # the next message gets the next seq
    assert send(a2, chat, "next")[1]["seq"] == 3


def test_same_cid_with_different_content_or_chat_is_conflict(parley):
    a = parley.user(devices=2)
    b = parley.user()
    c_user = parley.user()
    a1, a2 = (parley.connect(d) for d in a.devices)
    ab = parley.open_chat(a1, b)["chat"]
    ac = parley.open_chat(a1, c_user)["chat"]
    c = "conf-" + new_cid()
    assert a1.ok("send", chat=ab, cid=c, text="original")["seq"] == 1

    assert a1.err("send", chat=ab, cid=c, text="edited")["code"] == "conflict"
    assert a2.err("send", chat=ab, cid=c, text="edited")["code"] == "conflict"
    assert a2.err("send", chat=ac, cid=c, text="original")["code"] == "conflict"
    assert a1.err("send", chat=ab, cid=c, text="original", reply_to=1)["code"] == "conflict"
    assert chat_state(a1, ab)["last_seq"] == 1
    assert chat_state(a1, ac)["last_seq"] == 0
    # the original is still recognised
    r = a2.ok("send", chat=ab, cid=c, text="original")
    assert r["dup"] is True and r["seq"] == 1


# ===================================================================== cursors

def test_ack_and_read_are_capped_and_never_go_back(parley):
    a = parley.user()
    b = parley.user(devices=2)
    wa = parley.connect(a.devices[0])
    wb1, wb2 = (parley.connect(d) for d in b.devices)
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(3):
        send(wa, chat, f"m{i}")

    assert wb1.ok("ack", chat=chat, seq=0) == {}
    st = chat_state(wb1, chat)
    assert st["delivered_seq"] == 0 and st["read_seq"] == 0, "ack 0 changes nothing"

    assert wb1.ok("ack", chat=chat, seq=10) == {}
    assert chat_state(wb1, chat)["delivered_seq"] == 3, "ack above last_seq is capped"
    assert wb1.ok("ack", chat=chat, seq=1) == {}
    assert chat_state(wb1, chat)["delivered_seq"] == 3, "ack never goes back"
    assert wb2.ok("ack", chat=chat, seq=1) == {}
    assert chat_state(wb2, chat)["delivered_seq"] == 3, "the user's cursor is the max over devices"

    assert wb1.ok("read", chat=chat, seq=2) == {}
    st = chat_state(wb1, chat)
    assert st["read_seq"] == 2 and st["unread"] == 1
    assert wb1.ok("read", chat=chat, seq=1) == {}
    assert chat_state(wb1, chat)["read_seq"] == 2, "read never goes back"
    assert wb2.ok("read", chat=chat, seq=10 ** 12) == {}
    st = chat_state(wb1, chat)
    assert st["read_seq"] == 3 and st["unread"] == 0, "read above last_seq is capped"

    # the caps were stored as last_seq, not as the requested values
    send(wa, chat, "m3")
    st = chat_state(wb2, chat)
    assert st["last_seq"] == 4
    assert st["delivered_seq"] == 3
    assert st["read_seq"] == 3 and st["unread"] == 1
    wb1.close()
    wb1 = parley.connect(b.devices[0])
    assert seqs(wb1.replay) == [4], "the device cursor was capped at 3, so 4 is replayed"


def test_read_implies_delivered(parley):
    a = parley.user()
    b = parley.user()
    wa = parley.connect(a.devices[0])
    wb = parley.connect(b.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(3):
        send(wa, chat, f"m{i}")
    assert wb.ok("read", chat=chat, seq=2) == {}
    st = chat_state(wb, chat)
    assert st["read_seq"] == 2
    assert st["delivered_seq"] >= 2, "a user's delivered cursor is at least its read cursor"
    # the sender's view of its own state is unaffected
    sa = chat_state(wa, chat)
    assert sa["read_seq"] == 0 and sa["unread"] == 0


def test_device_cursors_are_per_device(parley):
    a = parley.user()
    b = parley.user(devices=2)
    wa = parley.connect(a.devices[0])
    chat = parley.open_chat(wa, b)["chat"]
    for i in range(4):
        send(wa, chat, f"m{i}")
    wb1 = parley.connect(b.devices[0])
    assert seqs(wb1.replay) == [1, 2, 3, 4]
    wb1.ok("ack", chat=chat, seq=4)
    wb1.close()
    # the other device acked nothing: it still gets everything
    wb2 = parley.connect(b.devices[1])
    assert seqs(wb2.replay) == [1, 2, 3, 4]
    wb2.ok("ack", chat=chat, seq=2)
    wb2.close()
    wb2 = parley.connect(b.devices[1])
    assert seqs(wb2.replay) == [3, 4]
    wb1 = parley.connect(b.devices[0])
    assert wb1.replay == []


def test_replay_covers_every_chat_of_the_device(parley):
    a = parley.user()
    b = parley.user()
    c = parley.user()
    wb = parley.connect(b.devices[0])
    wc = parley.connect(c.devices[0])
    ab = parley.open_chat(wb, a)["chat"]
    ac = parley.open_chat(wc, a)["chat"]
    for i in range(3):
        send(wb, ab, f"b{i}")
        send(wc, ac, f"c{i}")
    wa = parley.connect(a.devices[0])
    assert seqs(msgs(wa.replay, ab)) == [1, 2, 3]
    assert seqs(msgs(wa.replay, ac)) == [1, 2, 3]
    assert len(wa.replay) == 6


# ===================================================================== concurrency

def test_pipelined_concurrent_sends_get_gapless_seqs(parley):
    n = 200
    a = parley.user(devices=2)
    b = parley.user(devices=2)
    a_send, a_recv = (parley.connect(d) for d in a.devices)
    b_send, b_recv = (parley.connect(d) for d in b.devices)
    chat = parley.open_chat(a_send, b)["chat"]
    items_a = [{"chat": chat, "cid": f"A{i:03d}", "text": f"from a #{i}"} for i in range(n)]
    items_b = [{"chat": chat, "cid": f"B{i:03d}", "text": f"from b #{i}"} for i in range(n)]

    def collect(ws, count, timeout=60.0):
        got = []
        deadline = time.monotonic() + timeout
        last_beat = time.monotonic()
        while len(got) < count:
            assert time.monotonic() < deadline, f"only {len(got)} of {count} msg events arrived"
            try:
                got.append(ws.wait_event("msg", timeout=0.5,
                                         predicate=lambda m: m.get("chat") == chat))
            except WsTimeout:
                pass
            if time.monotonic() - last_beat > 1.5:
                ws.send_json({"op": "ping"})
                last_beat = time.monotonic()
        return got

    def sender(ws, items):
        res = harness.pipeline_send(ws, items, window=50, timeout=60)
        return res, collect(ws, n)        # then the other side's messages

    with ThreadPoolExecutor(4) as pool:
        fa = pool.submit(sender, a_send, items_a)
        fb = pool.submit(sender, b_send, items_b)
        fra = pool.submit(collect, a_recv, 2 * n)
        frb = pool.submit(collect, b_recv, 2 * n)
        res_a, a_send_got = fa.result(90)
        res_b, b_send_got = fb.result(90)
        a_recv_got = fra.result(90)
        b_recv_got = frb.result(90)

    assert not res_a.errors and not res_b.errors, (res_a.errors[:3], res_b.errors[:3])
    assert len(res_a.acked) == n and len(res_b.acked) == n
    all_seqs = [r["seq"] for r in res_a.acked.values()] + [r["seq"] for r in res_b.acked.values()]
    assert sorted(all_seqs) == list(range(1, 2 * n + 1)), "seqs are exactly 1..400: no gaps, no repeats"
    for r in list(res_a.acked.values()) + list(res_b.acked.values()):
        assert r["dup"] is False and r["chat"] == chat
    for res in (res_a, res_b):
        in_wire_order = [s for _, _, s in sorted(res.ok_order)]
        assert in_wire_order == sorted(in_wire_order), "a connection's sends get increasing seqs"

    seq_of = {c: r["seq"] for c, r in list(res_a.acked.items()) + list(res_b.acked.items())}
    for got in (a_recv_got, b_recv_got):
        assert seqs(got) == list(range(1, 2 * n + 1)), "each receiving device gets all, in order"
        for m in got:
            assert seq_of[m["cid"]] == m["seq"]
            assert m["from"] == (a.user_id if m["cid"].startswith("A") else b.user_id)
    for got, other in ((a_send_got, res_b), (b_send_got, res_a)):
        assert seqs(got) == sorted(r["seq"] for r in other.acked.values()), \
            "a sending device gets exactly the other side's messages, in increasing seq"
    for w in (a_send, b_send):
        assert_no_msg(w, wait=0.1)

    hist = harness.history_all(a_recv, chat)
    assert [m["seq"] for m in hist] == list(range(1, 2 * n + 1))
    assert all(seq_of[m["cid"]] == m["seq"] for m in hist)
