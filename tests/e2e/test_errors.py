"""Error paths of the WebSocket API (PROTOCOL.md §1, §3, §5, §6) and the HTTP ones they mirror.

Every request error must leave the connection usable (checked with a ping afterwards); the frame
level violations close it with the code of §5."""

from __future__ import annotations

import json
import time

import pytest

import harness
from wsclient import OP_CONT, OP_PING, OP_TEXT, WsTimeout

_CTX: dict = {}


class Ctx:
    """Users A, B, C, D; chat AB (A is a member, 2 messages) and CD (A is not)."""

    def __init__(self, server):
        self.server = server
        port = server.port
        self.a, self.b, self.c, self.d = (harness.register(port) for _ in range(4))
        self.dev_a = harness.login(port, self.a)
        dev_b = harness.login(port, self.b)
        dev_c = harness.login(port, self.c)
        wa = harness.connect(port, self.dev_a)
        wc = harness.connect(port, dev_c)
        try:
            self.ab = wa.ok("chat.open", peer=self.b.user_id)["chat"]["chat"]
            self.cd = wc.ok("chat.open", peer=self.d.user_id)["chat"]["chat"]
            wa.ok("send", chat=self.ab, cid="seed-1", text="one")
            wa.ok("send", chat=self.ab, cid="seed-2", text="two")
        finally:
            wa.close()
            wc.close()
        del dev_b

    def subst(self, v):
        if isinstance(v, str):
            return {"$AB": self.ab, "$CD": self.cd, "$A": self.a.user_id, "$B": self.b.user_id}.get(v, v)
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        return v


@pytest.fixture
def ctx(server):
    c = _CTX.get("ctx")
    if c is None or c.server is not server or c.server.port != server.port:
        c = _CTX["ctx"] = Ctx(server)
    return c


@pytest.fixture
def ws(ctx, parley):
    return parley.connect(ctx.dev_a)


def assert_still_serving(ws):
    r = ws.request("ping")
    assert "ok" in r, f"the connection must stay usable after an error: {r!r}"


def last_seq(ws, chat):
    return harness.chat_state(ws, chat)["last_seq"]


BIG_TEXT = "x" * 16385
CID65 = "c" * 65
MEDIA_OK_SHAPE = {"media_id": "no-such-media", "mime": "image/png", "size": 10}

# (op, arguments, expected error code)
REQUEST_ERRORS = [
    # unknown or malformed op
    ("nope", {}, "bad_request"),
    ("", {}, "bad_request"),
    ("PING", {}, "bad_request"),
    (5, {}, "bad_request"),
    (None, {}, "bad_request"),
    (["ping"], {}, "bad_request"),
    # users.get
    ("users.get", {}, "bad_request"),
    ("users.get", {"usernames": "abc"}, "bad_request"),
    ("users.get", {"usernames": [1, 2]}, "bad_request"),
    ("users.get", {"ids": {"a": 1}}, "bad_request"),
    ("users.get", {"ids": [None]}, "bad_request"),
    ("users.get", {"usernames": ["abc"], "ids": ["x"]}, "bad_request"),
    ("users.get", {"usernames": [f"n{i}" for i in range(101)]}, "too_large"),
    ("users.get", {"ids": [f"i{i}" for i in range(101)]}, "too_large"),
    # chat.open
    ("chat.open", {}, "bad_request"),
    ("chat.open", {"peer": 5}, "bad_request"),
    ("chat.open", {"peer": None}, "bad_request"),
    ("chat.open", {"peer": ["$B"]}, "bad_request"),
    ("chat.open", {"peer": {"id": "$B"}}, "bad_request"),
    ("chat.open", {"peer": "$A"}, "bad_request"),
    ("chat.open", {"peer": "no-such-user"}, "not_found"),
    # send: shape
    ("send", {}, "bad_request"),
    ("send", {"cid": "e1", "text": "x"}, "bad_request"),
    ("send", {"chat": 5, "cid": "e1", "text": "x"}, "bad_request"),
    ("send", {"chat": None, "cid": "e1", "text": "x"}, "bad_request"),
    ("send", {"chat": ["$AB"], "cid": "e1", "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "", "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": CID65, "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "\u00e9" * 33, "text": "x"}, "bad_request"),   # 66 bytes
    ("send", {"chat": "$AB", "cid": 5, "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": None, "text": "x"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": ""}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": 5}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": ["x"]}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": {"t": "x"}}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": BIG_TEXT}, "too_large"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": "1"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": -1}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": 1.5}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": True}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": [1]}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": 0}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": 3}, "bad_request"),   # future
    ("send", {"chat": "$AB", "cid": "e1", "text": "x", "reply_to": 10 ** 9}, "bad_request"),
    # send: media shape (uploads are another issue; an unknown id is not_found)
    ("send", {"chat": "$AB", "cid": "e1", "media": "m1"}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": {}}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": {"mime": "image/png", "size": 10}}, "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": {"media_id": 5, "mime": "image/png", "size": 10}},
     "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": {"media_id": "m", "mime": "image/png", "size": "10"}},
     "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": {"media_id": "m", "mime": 5, "size": 10}},
     "bad_request"),
    ("send", {"chat": "$AB", "cid": "e1", "media": MEDIA_OK_SHAPE}, "not_found"),
    ("send", {"chat": "$AB", "cid": "e1", "text": "caption", "media": MEDIA_OK_SHAPE}, "not_found"),
    # send: membership, and validation before lookup
    ("send", {"chat": "$CD", "cid": "e1", "text": "x"}, "forbidden"),
    ("send", {"chat": "no-such-chat", "cid": "e1", "text": "x"}, "forbidden"),
    ("send", {"chat": "no-such-chat", "cid": "", "text": "x"}, "bad_request"),
    ("send", {"chat": "$CD", "cid": "e1", "text": ""}, "bad_request"),
    ("send", {"chat": "$CD", "cid": "e1", "text": BIG_TEXT}, "too_large"),
    ("send", {"chat": "$CD", "cid": "e1", "text": "x", "reply_to": -1}, "bad_request"),
    # history
    ("history", {}, "bad_request"),
    ("history", {"chat": 5}, "bad_request"),
    ("history", {"chat": None}, "bad_request"),
    ("history", {"chat": "$AB", "limit": 0}, "bad_request"),
    ("history", {"chat": "$AB", "limit": 101}, "bad_request"),
    ("history", {"chat": "$AB", "limit": -1}, "bad_request"),
    ("history", {"chat": "$AB", "limit": "5"}, "bad_request"),
    ("history", {"chat": "$AB", "limit": 1.5}, "bad_request"),
    ("history", {"chat": "$AB", "limit": True}, "bad_request"),
    ("history", {"chat": "$AB", "before": "3"}, "bad_request"),
    ("history", {"chat": "$AB", "before": -1}, "bad_request"),
    ("history", {"chat": "$AB", "before": 2.5}, "bad_request"),
    ("history", {"chat": "$AB", "after": "0"}, "bad_request"),
    ("history", {"chat": "$AB", "after": -1}, "bad_request"),
    ("history", {"chat": "$AB", "after": 0.5}, "bad_request"),
    ("history", {"chat": "$CD"}, "forbidden"),
    ("history", {"chat": "no-such-chat"}, "forbidden"),
    ("history", {"chat": "no-such-chat", "limit": 0}, "bad_request"),
    ("history", {"chat": "$CD", "limit": 101}, "bad_request"),
]
for _op in ("ack", "read"):
    REQUEST_ERRORS += [
        (_op, {}, "bad_request"),
        (_op, {"seq": 1}, "bad_request"),
        (_op, {"chat": "$AB"}, "bad_request"),
        (_op, {"chat": 5, "seq": 1}, "bad_request"),
        (_op, {"chat": "$AB", "seq": "1"}, "bad_request"),
        (_op, {"chat": "$AB", "seq": -1}, "bad_request"),
        (_op, {"chat": "$AB", "seq": 1.5}, "bad_request"),
        (_op, {"chat": "$AB", "seq": None}, "bad_request"),
        (_op, {"chat": "$AB", "seq": True}, "bad_request"),
        (_op, {"chat": "$AB", "seq": [1]}, "bad_request"),
        (_op, {"chat": "$CD", "seq": 1}, "forbidden"),
        (_op, {"chat": "no-such-chat", "seq": 1}, "forbidden"),
        (_op, {"chat": "no-such-chat", "seq": -1}, "bad_request"),
    ]


def _case_id(case):
    op, args, code = case
    s = json.dumps(args)
    return f"{op}-{s if len(s) < 60 else s[:57] + '...'}-{code}"


@pytest.mark.parametrize("case", REQUEST_ERRORS, ids=[_case_id(c) for c in REQUEST_ERRORS])
def test_request_error(ctx, ws, case):
    op, args, code = case
    frame = {"op": op, "id": 77}
    frame.update(ctx.subst(args))
    before = last_seq(ws, ctx.ab)
    r = ws.request_raw(frame)
    assert set(r) >= {"re", "err"} and "ok" not in r, r
    assert r["re"] == 77
    assert r["err"]["code"] == code, r
    assert isinstance(r["err"]["message"], str)
    assert_still_serving(ws)
    assert last_seq(ws, ctx.ab) == before, "a refused request changes nothing"


def test_refused_cid_is_not_consumed(ctx, ws):
    c = harness.new_cid()
    assert ws.err("send", chat=ctx.ab, cid=c, text=BIG_TEXT)["code"] == "too_large"
    assert ws.err("send", chat=ctx.cd, cid=c, text="x")["code"] == "forbidden"
    assert ws.err("send", chat=ctx.ab, cid=c, text="x", reply_to=10 ** 6)["code"] == "bad_request"
    r = ws.ok("send", chat=ctx.ab, cid=c, text="now for real")
    assert r["dup"] is False


def test_request_without_id_failing_gets_err_with_re_null(ctx, ws):
    ws.send_json({"op": "send", "chat": ctx.ab, "cid": "", "text": "x"})
    m = ws.wait_for(lambda m: "re" in m, what="a reply")
    assert m.get("re", "missing") is None and m["err"]["code"] == "bad_request", m
    ws.send_json({"op": "history", "chat": ctx.cd})
    m = ws.wait_for(lambda m: "re" in m, what="a reply")
    assert m.get("re", "missing") is None and m["err"]["code"] == "forbidden", m
    ws.send_json({"op": "no.such.op", "id": None})
    m = ws.wait_for(lambda m: "re" in m, what="a reply")
    assert m.get("re", "missing") is None and m["err"]["code"] == "bad_request", m
    assert_still_serving(ws)


def test_request_without_id_succeeding_gets_no_reply(ctx, ws):
    ws.send_json({"op": "ack", "chat": ctx.ab, "seq": 1})
    ws.send_json({"op": "read", "chat": ctx.ab, "seq": 1})
    ws.send_json({"op": "chats"})
    ws.send_json({"op": "users.get", "ids": [ctx.b.user_id]})
    r = ws.request("ping")
    assert "ok" in r
    replies = [m for m in ws.pending() if "re" in m]
    assert replies == [], f"successful requests without id must not be answered: {replies}"


@pytest.mark.parametrize("rid", [0, "", "x-1", False, 1.5, -3, {"k": [1, 2]}, [1, "a"], 10 ** 10])
def test_any_json_id_is_echoed(ws, rid):
    r = ws.request_raw({"op": "ping", "id": rid})
    assert r["re"] == rid and type(r["re"]) is type(rid) and "ok" in r, r
    r = ws.request_raw({"op": "no-such-op", "id": rid})
    assert r["re"] == rid and r["err"]["code"] == "bad_request", r


def test_second_auth_is_bad_request(ctx, ws):
    assert ws.err("auth", token=ctx.dev_a.token)["code"] == "bad_request"
    assert_still_serving(ws)


@pytest.mark.parametrize("raw", [
    '{"op":"ping","id":1',            # truncated
    '{"op":"ping","id":1,}',          # trailing comma
    "{'op':'ping','id':1}",           # not JSON quotes
    '{"op":"ping","id":1}{"op":"ping","id":2}',  # two objects in one frame
    '[{"op":"ping","id":1}]',
    "[1,2]",
    "42",
    '"ping"',
    "null",
    "true",
    "",
    " ",
    "{}",
    '{"id": 5',
    "\u00e9",
])
def test_malformed_or_non_object_frame_is_bad_request_with_re_null(ws, raw):
    ws.send_text(raw)
    m = ws.wait_for(lambda m: "re" in m, what="a reply")
    assert "err" in m and m["err"]["code"] == "bad_request", m
    assert m.get("re", "missing") is None, f"a frame that is not a JSON object with an id: re null ({m!r})"
    assert_still_serving(ws)


def test_object_without_op_but_with_id_is_bad_request(ws):
    r = ws.request_raw({"id": 9, "chat": "x"})
    assert r["err"]["code"] == "bad_request"
    assert_still_serving(ws)


def test_fifty_malformed_frames_are_tolerated(ws):
    for i in range(50):
        ws.send_text("{not json" if i % 2 else "[]")
    errs = [ws.wait_for(lambda m: "re" in m, what="a reply") for _ in range(50)]
    assert all(m.get("err", {}).get("code") == "bad_request" for m in errs), errs[:3]
    assert_still_serving(ws)


# ===================================================================== frame-level violations

def test_binary_frame_closes_1003(ws):
    ws.send_binary(json.dumps({"op": "ping", "id": 1}).encode())
    assert ws.expect_close() == 1003


def test_invalid_utf8_closes_1007(ws):
    ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1,"x":"\xff\xfe"}')
    assert ws.expect_close() == 1007


def test_frame_over_64_KiB_closes_1009(ws):
    text = "y" * (70 * 1024)
    ws.send_text(json.dumps({"op": "ping", "id": 1, "pad": text}))
    assert ws.expect_close() == 1009


def test_fragmented_message_over_64_KiB_closes_1009(ws):
    body = json.dumps({"op": "ping", "id": 1, "pad": "z" * (90 * 1024)}).encode()
    parts = [body[i:i + 30000] for i in range(0, len(body), 30000)]
    ws.send_raw_frame(OP_TEXT, parts[0], fin=False)
    for p in parts[1:-1]:
        ws.send_raw_frame(OP_CONT, p, fin=False)
    ws.send_raw_frame(OP_CONT, parts[-1], fin=True)
    assert ws.expect_close() == 1009


def test_message_of_exactly_64_KiB_is_accepted(ctx, ws):
    # the limit is on messages *larger* than 64 KiB: this one is refused for its text only
    head = json.dumps({"op": "send", "id": 6, "chat": ctx.ab, "cid": "big", "text": ""})
    frame = json.loads(head)
    frame["text"] = "t" * (65536 - len(head.encode()))
    assert len(json.dumps(frame).encode()) == 65536
    r = ws.request_raw(frame)
    assert r["err"]["code"] == "too_large", r
    assert_still_serving(ws)


def test_fragmented_request_with_interleaved_ping_is_reassembled(ctx, ws):
    text = "é" * 1000 + " end"
    c = harness.new_cid()
    body = json.dumps({"op": "send", "id": "frag", "chat": ctx.ab, "cid": c, "text": text},
                      ensure_ascii=False).encode()
    # split inside a two-byte UTF-8 sequence on purpose: validity is judged on the whole message
    cut1 = body.index("\u00e9".encode()) + 1
    cut2 = len(body) - 10
    ws.send_raw_frame(OP_TEXT, body[:cut1], fin=False)
    ws.send_raw_frame(OP_PING, b"mid")
    ws.send_raw_frame(OP_CONT, body[cut1:cut2], fin=False)
    ws.send_raw_frame(OP_CONT, body[cut2:], fin=True)
    r = ws.wait_reply("frag")
    assert "ok" in r, r
    last = ws.ok("history", chat=ctx.ab, limit=1)["messages"][0]
    assert last["cid"] == c and last["text"] == text
    deadline = time.monotonic() + 5
    while b"mid" not in ws.pongs:
        assert time.monotonic() < deadline, "the ping between fragments was not answered"
        try:
            ws.recv_json(0.1)
        except WsTimeout:
            pass
