"""users.get, chat.open, chats, send, history (PROTOCOL.md §3, §4.1)."""

from __future__ import annotations

import secrets

import pytest

import harness
from harness import assert_no_msg


def cid() -> str:
    return "c-" + secrets.token_hex(8)


class Pair:
    """Alice and Bob with two connected devices each and their direct chat."""

    def __init__(self, parley, devices: int = 2):
        self.a = parley.user(devices=devices, display_name="Alice \u00c4")
        self.b = parley.user(devices=devices)
        self.wa = [parley.connect(d) for d in self.a.devices]
        self.wb = [parley.connect(d) for d in self.b.devices]
        self.chat = parley.open_chat(self.wa[0], self.b)
        self.cid = self.chat["chat"]


@pytest.fixture
def pair(parley):
    return Pair(parley)


def send_ok(ws, chat, text=None, **kw):
    args = {"chat": chat, "cid": kw.pop("cid", None) or cid()}
    if text is not None:
        args["text"] = text
    args.update(kw)
    ok = ws.ok("send", **args)
    return args["cid"], ok


# ===================================================================== users.get

def test_users_get_by_usernames_and_ids(parley):
    a = parley.user(display_name="\u00c5sa \U0001F600")
    b = parley.user()
    ws = parley.connect(a.devices[0])
    ghost = harness.random_username()
    by_name = ws.ok("users.get", usernames=[a.username, b.username, ghost])["users"]
    assert sorted(u["user_id"] for u in by_name) == sorted([a.user_id, b.user_id]), by_name
    for u in by_name:
        assert isinstance(u["display_name"], str) and u["display_name"]
        assert u["username"] == (a.username if u["user_id"] == a.user_id else b.username)
    ua = next(u for u in by_name if u["user_id"] == a.user_id)
    assert ua["display_name"] == "\u00c5sa \U0001F600"

    by_id = ws.ok("users.get", ids=[b.user_id, "no-such-user-id", a.user_id])["users"]
    key = lambda u: u["user_id"]  # noqa: E731
    assert sorted(by_id, key=key) == sorted(by_name, key=key)


def test_users_get_unknown_only_is_empty(parley):
    ws = parley.connect(parley.user().devices[0])
    assert ws.ok("users.get", usernames=[harness.random_username()])["users"] == []
    assert ws.ok("users.get", ids=["nobody"])["users"] == []


def test_users_get_limits(parley):
    a = parley.user()
    ws = parley.connect(a.devices[0])
    names = [a.username] + [harness.random_username() for _ in range(99)]
    r = ws.ok("users.get", usernames=names)              # exactly 100: fine
    assert [u["user_id"] for u in r["users"]] == [a.user_id]
    assert ws.err("users.get", usernames=names + ["one_more"])["code"] == "too_large"
    assert ws.err("users.get", ids=[f"id{i}" for i in range(101)])["code"] == "too_large"
    assert ws.err("users.get", usernames=[a.username], ids=[a.user_id])["code"] == "bad_request"
    assert ws.ok("ping")


# ===================================================================== chat.open

def test_chat_open_creates_one_direct_chat_from_both_sides(parley):
    a = parley.user(devices=2)
    b = parley.user(devices=2)
    wa1, wa2 = (parley.connect(d) for d in a.devices)
    wb1, wb2 = (parley.connect(d) for d in b.devices)
    before = harness.now_ms()
    c1 = wa1.ok("chat.open", peer=b.user_id)["chat"]
    after = harness.now_ms()
    assert isinstance(c1["chat"], str) and 0 < len(c1["chat"].encode()) <= 64
    assert c1["kind"] == "direct"
    assert sorted(m["user_id"] for m in c1["members"]) == sorted([a.user_id, b.user_id])
    for m in c1["members"]:
        assert m["role"] in ("admin", "member")
    assert c1["last_seq"] == 0
    assert isinstance(c1["created"], int) and before - 2000 <= c1["created"] <= after + 2000

    c2 = wb2.ok("chat.open", peer=a.user_id)["chat"]
    c3 = wa2.ok("chat.open", peer=b.user_id)["chat"]
    for c in (c2, c3):
        assert c["chat"] == c1["chat"]
        assert c["kind"] == "direct"
        assert c["created"] == c1["created"]
        assert c["last_seq"] == 0
        assert sorted(m["user_id"] for m in c["members"]) == sorted([a.user_id, b.user_id])

    # no system message, no event
    for w in (wa1, wa2, wb1, wb2):
        w.roundtrip()
        w.drain(0.2)
        assert [m for m in w.pending() if m.get("ev") in ("msg", "chat")] == [], w.pending()
    h = wa1.ok("history", chat=c1["chat"])
    assert h["messages"] == [] and h["more"] is False


def test_chat_open_with_different_peers_gives_different_chats(parley):
    a, b, c = parley.user(), parley.user(), parley.user()
    wa = parley.connect(a.devices[0])
    ab = parley.open_chat(wa, b)["chat"]
    ac = parley.open_chat(wa, c)["chat"]
    assert ab != ac
    # each chat has its own sequence
    _, r1 = send_ok(wa, ab, "to b")
    _, r2 = send_ok(wa, ac, "to c")
    assert r1["seq"] == 1 and r2["seq"] == 1
    assert r1["chat"] == ab and r2["chat"] == ac


def test_chat_open_with_self_is_bad_request(parley):
    a = parley.user()
    wa = parley.connect(a.devices[0])
    assert wa.err("chat.open", peer=a.user_id)["code"] == "bad_request"
    assert wa.ok("chats")["chats"] == []


def test_chat_open_with_unknown_peer_is_not_found(parley):
    wa = parley.connect(parley.user().devices[0])
    assert wa.err("chat.open", peer="no-such-user")["code"] == "not_found"
    assert wa.ok("chats")["chats"] == []


# ===================================================================== chats

def test_chats_lists_direct_chat_with_caller_state(pair):
    p = pair
    assert [c["chat"] for c in p.wa[0].ok("chats")["chats"]] == [p.cid]
    for w in (p.wa[0], p.wb[0]):   # the peer is a member as soon as the chat exists
        st = harness.chat_state(w, p.cid)
        assert st["kind"] == "direct" and st["last_seq"] == 0
        assert st["created"] == p.chat["created"]
        assert sorted(m["user_id"] for m in st["members"]) == sorted([p.a.user_id, p.b.user_id])
        assert st["read_seq"] == 0 and st["delivered_seq"] == 0 and st["unread"] == 0
        assert st["last_msg"] is None

    send_ok(p.wb[0], p.cid, "one")
    c2, r2 = send_ok(p.wb[0], p.cid, "two")
    sa = harness.chat_state(p.wa[0], p.cid)
    assert sa["last_seq"] == 2
    assert sa["unread"] == 2
    assert sa["read_seq"] == 0
    lm = sa["last_msg"]
    assert lm["seq"] == 2 and lm["cid"] == c2 and lm["text"] == "two" and lm["from"] == p.b.user_id
    assert lm["chat"] == p.cid and lm["kind"] == "text" and lm["ts"] == r2["ts"]
    sb = harness.chat_state(p.wb[0], p.cid)
    assert sb["unread"] == 0, "one's own messages are not unread"
    assert sb["last_msg"]["seq"] == 2

    p.wa[1].ok("read", chat=p.cid, seq=1)
    sa = harness.chat_state(p.wa[0], p.cid)
    assert sa["read_seq"] == 1 and sa["unread"] == 1
    assert sa["delivered_seq"] >= 1, "reading implies receiving"

    send_ok(p.wa[0], p.cid, "three")
    sa = harness.chat_state(p.wa[0], p.cid)
    assert sa["unread"] == 1, "own message does not count"
    sb = harness.chat_state(p.wb[1], p.cid)
    assert sb["unread"] == 1 and sb["last_msg"]["text"] == "three"


def test_chats_is_empty_for_a_new_user(parley):
    ws = parley.connect(parley.user().devices[0])
    assert ws.ok("chats")["chats"] == []


# ===================================================================== send

def test_send_reply_and_msg_events(pair):
    p = pair
    text = "hello \U0001F44B \u00e9\u00e8 \"quoted\" \\ / \n newline \u2028"
    before = harness.now_ms()
    c, ok = send_ok(p.wa[0], p.cid, text)
    after = harness.now_ms()
    assert ok["chat"] == p.cid and ok["seq"] == 1 and ok["dup"] is False
    assert isinstance(ok["ts"], int) and before - 2000 <= ok["ts"] <= after + 2000

    expected = {"chat": p.cid, "seq": 1, "ts": ok["ts"], "from": p.a.user_id, "cid": c,
                "kind": "text", "text": text}
    events = []
    for w in (p.wb[0], p.wb[1], p.wa[1]):    # the peer's devices and the sender's other device
        ev = w.wait_event("msg", predicate=lambda m: m.get("cid") == c)
        for k, v in expected.items():
            assert ev.get(k) == v, (k, ev)
        assert ev.get("reply_to") is None and ev.get("media") is None and ev.get("system") is None
        events.append(ev)
    assert events[0] == events[1] == events[2]
    # not the sending device
    assert_no_msg(p.wa[0])
    # history serves the same MSG
    h = p.wb[0].ok("history", chat=p.cid)["messages"]
    assert h == [{k: v for k, v in events[0].items() if k != "ev"}]


def test_peer_reply_reaches_the_other_side(pair):
    p = pair
    send_ok(p.wa[0], p.cid, "ping")
    c, ok = send_ok(p.wb[1], p.cid, "pong")
    assert ok["seq"] == 2
    for w in (p.wa[0], p.wa[1], p.wb[0]):
        ev = w.wait_event("msg", predicate=lambda m: m.get("cid") == c)
        assert ev["from"] == p.b.user_id and ev["seq"] == 2 and ev["text"] == "pong"
    assert_no_msg(p.wb[1], lambda m: m.get("cid") == c)


def test_send_ignores_client_supplied_from_seq_ts_kind(pair):
    p = pair
    send_ok(p.wa[0], p.cid, "first")
    before = harness.now_ms()
    c, ok = send_ok(p.wa[0], p.cid, "spoof", **{"from": p.b.user_id, "seq": 999, "ts": 1,
                                                  "kind": "system"})
    assert ok["seq"] == 2 and ok["ts"] >= before - 2000
    ev = p.wb[0].wait_event("msg", predicate=lambda m: m.get("cid") == c)
    assert ev["from"] == p.a.user_id
    assert ev["seq"] == 2
    assert ev["ts"] == ok["ts"]
    assert ev["kind"] == "text"
    assert ev.get("system") is None
    assert harness.chat_state(p.wa[0], p.cid)["last_seq"] == 2


def test_send_reply_to_an_earlier_message(pair):
    p = pair
    send_ok(p.wa[0], p.cid, "question")
    c, ok = send_ok(p.wb[0], p.cid, "answer", reply_to=1)
    assert ok["seq"] == 2
    ev = p.wa[0].wait_event("msg", predicate=lambda m: m.get("cid") == c)
    assert ev["reply_to"] == 1
    h = p.wa[0].ok("history", chat=p.cid, limit=1)["messages"]
    assert h[0]["reply_to"] == 1 and h[0]["cid"] == c
    # replying to one's own message is fine too
    _, ok3 = send_ok(p.wb[0], p.cid, "addendum", reply_to=2)
    assert ok3["seq"] == 3


@pytest.mark.parametrize("reply_to", [0, 2, 3, 100, 2 ** 40])
def test_send_reply_to_a_future_or_missing_message_is_bad_request(pair, reply_to):
    p = pair
    send_ok(p.wa[0], p.cid, "only message")       # last_seq = 1
    err = p.wa[0].err("send", chat=p.cid, cid=cid(), text="re", reply_to=reply_to)
    assert err["code"] == "bad_request"
    assert harness.chat_state(p.wa[0], p.cid)["last_seq"] == 1
    assert_no_msg(p.wb[0], lambda m: m.get("seq", 0) > 1)


@pytest.mark.parametrize("text,ok", [
    ("x" * 16384, True),
    ("x" * 16385, False),
    ("\u00e9" * 8192, True),          # 16384 bytes
    ("\u00e9" * 8193, False),         # 8193 code points but 16386 bytes: bytes count
    ("\U0001F600" * 4096, True),      # 16384 bytes
    ("\U0001F600" * 4096 + "x", False),
])
def test_send_text_limit_is_16_KiB_of_utf8(pair, text, ok):
    p = pair
    c = cid()
    if ok:
        r = p.wa[0].ok("send", chat=p.cid, cid=c, text=text)
        assert r["seq"] == 1
        ev = p.wb[0].wait_event("msg", predicate=lambda m: m.get("cid") == c)
        assert ev["text"] == text
    else:
        assert p.wa[0].err("send", chat=p.cid, cid=c, text=text)["code"] == "too_large"
        assert harness.chat_state(p.wa[0], p.cid)["last_seq"] == 0
        # the cid was not consumed
        assert p.wa[0].ok("send", chat=p.cid, cid=c, text="short")["dup"] is False


def test_cid_of_64_bytes_is_accepted(pair):
    p = pair
    c64 = "\u00e9" * 32              # 64 bytes of UTF-8
    assert p.wa[0].ok("send", chat=p.cid, cid=c64, text="a")["seq"] == 1
    ev = p.wb[0].wait_event("msg")
    assert ev["cid"] == c64
    assert p.wa[0].ok("send", chat=p.cid, cid="k" * 64, text="b")["seq"] == 2


def test_same_cid_from_different_users_are_different_messages(pair):
    p = pair
    _, r1 = send_ok(p.wa[0], p.cid, "from a", cid="shared-cid")
    _, r2 = send_ok(p.wb[0], p.cid, "from b", cid="shared-cid")
    assert (r1["seq"], r1["dup"]) == (1, False)
    assert (r2["seq"], r2["dup"]) == (2, False)


def test_send_to_a_chat_of_others_is_forbidden(parley):
    a, b, c = parley.user(), parley.user(), parley.user()
    wa = parley.connect(a.devices[0])
    wc = parley.connect(c.devices[0])
    ab = parley.open_chat(wa, b)["chat"]
    assert wc.err("send", chat=ab, cid=cid(), text="intrude")["code"] == "forbidden"
    assert wc.err("history", chat=ab)["code"] == "forbidden"
    assert wc.err("ack", chat=ab, seq=1)["code"] == "forbidden"
    assert wc.err("read", chat=ab, seq=1)["code"] == "forbidden"
    assert wc.err("send", chat="no-such-chat", cid=cid(), text="x")["code"] == "forbidden"
    assert harness.chat_state(wa, ab)["last_seq"] == 0
    assert [x["chat"] for x in wc.ok("chats")["chats"]] == []


# ===================================================================== history

def _seqs(r):
    return [m["seq"] for m in r["messages"]]


def test_history_windows(pair):
    p = pair
    w = p.wa[0]
    sent = {}
    for i in range(1, 8):
        sender = p.wa[0] if i % 2 else p.wb[0]
        c, ok = send_ok(sender, p.cid, f"m{i}")
        assert ok["seq"] == i
        sent[i] = c

    full = w.ok("history", chat=p.cid)
    assert _seqs(full) == [7, 6, 5, 4, 3, 2, 1] and full["more"] is False
    for m in full["messages"]:
        assert m["cid"] == sent[m["seq"]] and m["text"] == f"m{m['seq']}" and m["chat"] == p.cid
        assert m["from"] == (p.a.user_id if m["seq"] % 2 else p.b.user_id)
        assert m["kind"] == "text" and isinstance(m["ts"], int)

    r = w.ok("history", chat=p.cid, limit=3)
    assert _seqs(r) == [7, 6, 5] and r["more"] is True
    r = w.ok("history", chat=p.cid, before=5, limit=3)
    assert _seqs(r) == [4, 3, 2] and r["more"] is True
    r = w.ok("history", chat=p.cid, before=2, limit=3)
    assert _seqs(r) == [1] and r["more"] is False
    r = w.ok("history", chat=p.cid, before=4)
    assert _seqs(r) == [3, 2, 1] and r["more"] is False
    r = w.ok("history", chat=p.cid, before=1)
    assert _seqs(r) == [] and r["more"] is False
    r = w.ok("history", chat=p.cid, before=1000)
    assert _seqs(r) == [7, 6, 5, 4, 3, 2, 1] and r["more"] is False
    r = w.ok("history", chat=p.cid, before=8, limit=7)
    assert _seqs(r) == [7, 6, 5, 4, 3, 2, 1] and r["more"] is False
    r = w.ok("history", chat=p.cid, limit=6)
    assert _seqs(r) == [7, 6, 5, 4, 3, 2] and r["more"] is True

    r = w.ok("history", chat=p.cid, after=0, limit=3)
    assert _seqs(r) == [1, 2, 3] and r["more"] is True
    r = w.ok("history", chat=p.cid, after=2, limit=3)
    assert _seqs(r) == [3, 4, 5] and r["more"] is True
    r = w.ok("history", chat=p.cid, after=5, limit=3)
    assert _seqs(r) == [6, 7] and r["more"] is False
    r = w.ok("history", chat=p.cid, after=4, limit=3)
    assert _seqs(r) == [5, 6, 7] and r["more"] is False
    r = w.ok("history", chat=p.cid, after=7)
    assert _seqs(r) == [] and r["more"] is False
    r = w.ok("history", chat=p.cid, after=0)
    assert _seqs(r) == [1, 2, 3, 4, 5, 6, 7] and r["more"] is False

    r = w.ok("history", chat=p.cid, after=1, before=7, limit=2)
    assert _seqs(r) == [2, 3] and r["more"] is True
    r = w.ok("history", chat=p.cid, after=2, before=6, limit=10)
    assert _seqs(r) == [3, 4, 5]
    r = w.ok("history", chat=p.cid, after=3, before=4)
    assert _seqs(r) == []

    r = w.ok("history", chat=p.cid, limit=1)
    assert _seqs(r) == [7] and r["more"] is True
    r = w.ok("history", chat=p.cid, limit=100)
    assert len(r["messages"]) == 7 and r["more"] is False

    # both members see the same history
    assert p.wb[1].ok("history", chat=p.cid) == full


def test_history_default_limit_is_50_and_pages_join_up(pair):
    p = pair
    n = 55
    items = [{"chat": p.cid, "cid": f"h{i}", "text": f"t{i}"} for i in range(n)]
    res = harness.pipeline_send(p.wa[0], items, window=20)
    assert not res.errors and len(res.acked) == n
    r = p.wb[0].ok("history", chat=p.cid)
    assert _seqs(r) == list(range(55, 5, -1)) and r["more"] is True
    r2 = p.wb[0].ok("history", chat=p.cid, before=6)
    assert _seqs(r2) == [5, 4, 3, 2, 1] and r2["more"] is False
    allm = harness.history_all(p.wb[0], p.cid)
    assert [m["seq"] for m in allm] == list(range(1, 56))
    in_wire_order = [c for _, c, _ in sorted(res.ok_order)]
    assert [m["cid"] for m in allm] == in_wire_order, "one connection's sends keep their order"


def test_history_of_an_empty_chat(pair):
    r = pair.wa[0].ok("history", chat=pair.cid, limit=10)
    assert r["messages"] == [] and r["more"] is False


def test_argument_limits_are_configurable(server_factory, parley_for):
    """PROTOCOL §7: an operator can raise or lower each limit."""
    srv = server_factory(extra_args=["--users-get-max", "2", "--title-max-chars", "5",
                                     "--presence-sub-max", "1"])
    p = parley_for(srv)
    a = p.user()
    ws = p.connect(a.devices[0])
    assert ws.err("users.get", usernames=["aaa", "bbb", "ccc"])["code"] == "too_large"
    ws.ok("users.get", usernames=["aaa", "bbb"])
    assert ws.err("group.create", title="sixsix", members=[])["code"] == "bad_request"
    ws.ok("group.create", title="five5", members=[])
    assert ws.err("presence.sub", users=["x", "y"])["code"] == "too_large"
