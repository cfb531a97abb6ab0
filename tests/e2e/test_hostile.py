"""Hostile input, end to end: what a malicious or broken client can send, and the limits that
protect the server (PROTOCOL.md §1, §3, §5, §6, §7; docs/security.md).

test_errors.py covers the basic malformed requests and frames; this module goes further:
truncation at every point, deep nesting, duplicate keys, JSON numbers at their edges, every
wrong JSON type for every field of every op (generated from the OP_FIELDS table), NUL and
invalid UTF-8, ids of every JSON type, oversized fields and lists, RFC 6455 violations,
fragmentation, ping floods, spoofed fields, the rate limit, the malformed-frame limit, the
admission limits (per-address unauthenticated connections, per-user connections, Origin) and
the deadlines (auth, HTTP handshake).

Invariants checked around every case that runs on the shared server:
  - after a hostile case that does not close it, the same connection still answers a ping;
  - a separate well-behaved pair of clients (the witness) keeps chatting: after every test the
    witness sends a message, gets its ack, and its peer receives it;
  - nothing acknowledged is lost: the module ends by reading back, through `history`, every
    message acknowledged on the shared server (test_zz_nothing_acknowledged_was_lost).
Every case asserts what PROTOCOL.md promises; a contradiction found here is fixed in the server,
not marked as expected to fail.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any, Optional

import pytest

import harness
import httpclient
from wsclient import (OP_BINARY, OP_CONT, OP_PING, OP_TEXT, WsClient, WsClosed, WsTimeout,
                      encode_frame)

# ===================================================================== helpers


def _reject_constant(name: str):
    raise ValueError(f"non-JSON constant {name} in a server frame")


def strict_loads(data: bytes) -> Any:
    """json.loads that refuses what Python tolerates but JSON does not (NaN, Infinity)."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def raw_reply(ws: WsClient, frame: bytes | str, timeout: float = 5.0) -> dict:
    """Send a text frame as is; return the next message that carries `re`, parsed strictly.
    Events that arrive meanwhile are dropped (tests using this expect none that matter)."""
    ws.send_raw_frame(OP_TEXT, frame)
    deadline = time.monotonic() + timeout
    while True:
        op, data = ws.recv_message(max(0.01, deadline - time.monotonic()))
        assert op == OP_TEXT, f"the server sent a non-text message {data[:100]!r}"
        try:
            m = strict_loads(data)
        except ValueError as e:
            raise AssertionError(f"the server sent a frame that is not JSON: {data[:300]!r} ({e})")
        assert isinstance(m, dict), data
        if "re" in m:
            return m


def assert_still_serving(ws: WsClient) -> None:
    r = ws.request("ping")
    assert "ok" in r, f"the connection must stay usable after a refused request: {r!r}"


def expect_bad(ws: WsClient, frame: dict | str, code: str = "bad_request", re: Any = "same") -> dict:
    """Send a request (dict with an id, or raw text) and assert it is refused with `code`."""
    if isinstance(frame, dict):
        r = ws.request_raw(frame)
        want_re = frame["id"] if re == "same" else re
    else:
        ws.send_text(frame)
        r = ws.wait_for(lambda m: "re" in m, what="a reply")
        want_re = None if re == "same" else re
    assert "err" in r and "ok" not in r, f"{str(frame)[:200]} should have failed: {r!r}"
    assert r["err"]["code"] == code, f"{str(frame)[:200]}: want {code}, got {r!r}"
    assert isinstance(r["err"].get("message"), str), r
    assert r.get("re", "missing") == want_re, f"re should be {want_re!r}: {r!r}"
    return r


# ===================================================================== the shared world

class World:
    """On the shared server: A (the hostile client's user) and B in chat AB, with acked
    messages; C not in it; the witness pair W1/W2 chatting in chat W."""

    def __init__(self, server):
        self.server = server
        port = server.port
        self.a, self.b, self.c, self.w1, self.w2 = (harness.register(port) for _ in range(5))
        self.dev_a = harness.login(port, self.a)
        self.dev_b = harness.login(port, self.b)
        self.dev_w1 = harness.login(port, self.w1)
        self.dev_w2 = harness.login(port, self.w2)
        self.acked: dict[str, dict[str, int]] = {}  # chat -> cid -> seq of every acked send
        wa = harness.connect(port, self.dev_a)
        try:
            self.ab = wa.ok("chat.open", peer=self.b.user_id)["chat"]["chat"]
            for i in range(3):
                self.record(self.ab, f"before-{i}", wa.ok("send", chat=self.ab, cid=f"before-{i}",
                                                          text=f"acked before {i}"))
        finally:
            wa.close()
        self.ww1: Optional[WsClient] = None
        self.ww2: Optional[WsClient] = None
        self._connect_witness()
        self.w = self.ww1.ok("chat.open", peer=self.w2.user_id)["chat"]["chat"]
        self.beats = 0
        for _ in range(3):
            self.witness_chat()

    def record(self, chat: str, cid: str, ok: dict) -> None:
        assert isinstance(ok.get("seq"), int), ok
        self.acked.setdefault(chat, {})[cid] = ok["seq"]

    def _connect_witness(self) -> None:
        for ws in (self.ww1, self.ww2):
            if ws is not None:
                ws.abort()
        self.ww1 = harness.connect(self.server.port, self.dev_w1)
        self.ww2 = harness.connect(self.server.port, self.dev_w2)

    def witness_chat(self) -> None:
        """The well-behaved pair exchanges one message: acked to the sender, pushed to the peer.
        Its connections idle between tests (PROTOCOL §4.7 closes them after 3 heartbeats of
        silence): a connection closed that way is reopened, which is what a client does."""
        for attempt in range(2):
            try:
                self.ww1.drain(0.0)
                self.ww2.drain(0.0)
                break
            except (WsClosed, OSError):
                assert attempt == 0, "the witness could not reconnect"
                self._connect_witness()
        self.beats += 1
        cid = f"witness-{self.beats}"
        ok = self.ww1.ok("send", chat=self.w, cid=cid, text=f"still chatting {self.beats}")
        self.record(self.w, cid, ok)
        self.ww2.wait_event("msg", predicate=lambda m: m.get("cid") == cid)
        self.ww2.take_pending()
        self.ww1.take_pending()

    def subst(self, v):
        if isinstance(v, str):
            return {"$AB": self.ab, "$A": self.a.user_id, "$B": self.b.user_id,
                    "$C": self.c.user_id}.get(v, v)
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        return v


_WORLD: dict = {}


@pytest.fixture
def world(server) -> World:
    w = _WORLD.get("w")
    if w is None or w.server is not server or w.server.port != server.port:
        w = _WORLD["w"] = World(server)
    return w


@pytest.fixture(autouse=True)
def _witness_keeps_chatting(request):
    """After every test on the shared server, the well-behaved pair still chats."""
    yield
    if "world" in request.fixturenames and "w" in _WORLD:
        w = _WORLD["w"]
        if w.server.alive():
            w.witness_chat()


@pytest.fixture
def ws(world, parley):
    """A's authenticated connection on the shared server."""
    return parley.connect(world.dev_a)


def last_seq(ws: WsClient, chat: str) -> int:
    return harness.chat_state(ws, chat)["last_seq"]


# ===================================================================== truncation, nesting

def test_json_truncated_at_every_point_is_bad_request(world, ws):
    full = json.dumps({"op": "send", "id": 41, "chat": world.ab, "cid": "trunc-1",
                       "text": "a message that is cut short", "reply_to": 1})
    before = last_seq(ws, world.ab)
    cuts = sorted(set(range(1, len(full), max(1, len(full) // 40))))  # <= 50 malformed frames
    assert len(cuts) <= 45
    for cut in cuts:
        expect_bad(ws, full[:cut])
    assert_still_serving(ws)
    assert last_seq(ws, world.ab) == before, "a truncated send stored something"


@pytest.mark.parametrize("shape", ["arrays", "objects", "unclosed", "mixed"])
def test_nesting_up_to_the_frame_limit_is_bad_request(ws, shape):
    n = 30000  # ~60 KB: just under the 64 KiB frame limit
    if shape == "arrays":
        value = "[" * n + "]" * n
    elif shape == "objects":
        n = 6000
        value = '{"a":' * n + "1" + "}" * n
    elif shape == "unclosed":
        value = "[" * 60000
    else:
        value = '[{"a":' * 5000 + "0" + "}]" * 5000
    expect_bad(ws, '{"op":"ping","id":7,"x":' + value + "}")
    expect_bad(ws, value)
    assert_still_serving(ws)


def test_100000_levels_of_nesting_cost_no_stack(server_factory, parley_for):
    """100 000 levels need a frame of 100-200 KB: a server with a 1 MiB frame limit takes them,
    refuses them as bad_request (re null: the id cannot be read) and keeps serving."""
    srv = server_factory(extra_args=["--max-frame-bytes", str(1 << 20)])
    p = parley_for(srv)
    a = p.user()
    ws = p.connect(a.devices[0])
    n = 100_000
    for frame in ("[" * n + "]" * n,
                  '{"op":"ping","id":1,"x":' + "[" * n + "]" * n + "}",
                  '{"a":' * n + "null" + "}" * n,
                  "[" * n,
                  '{"op":"ping","id":2,"x":' + '{"k":[' * n):
        expect_bad(ws, frame)
        assert_still_serving(ws)
    # the HTTP bodies too
    r = httpclient.post_json(srv.port, "/v1/users", raw=b"[" * n + b"]" * n)
    httpclient.assert_error(r, 400, "bad_request")
    r = httpclient.post_json(srv.port, "/v1/sessions", raw=b'{"username":' + b"[" * n)
    httpclient.assert_error(r, 400, "bad_request")
    assert_still_serving(ws)
    assert srv.alive()


# ===================================================================== duplicate keys

def test_duplicate_keys_the_last_one_wins(world, ws, parley):
    """PROTOCOL.md is silent; the server (Boost.JSON) keeps the LAST of duplicate keys, for the
    op, the id and every argument alike (documented in docs/security.md)."""
    r = raw_reply(ws, '{"op":"nope","op":"ping","id":1}')
    assert r["re"] == 1 and "ok" in r, r
    r = raw_reply(ws, '{"op":"ping","op":"nope","id":2}')
    assert r["re"] == 2 and r["err"]["code"] == "bad_request", r
    r = raw_reply(ws, '{"id":"first","op":"ping","id":"second"}')
    assert r["re"] == "second" and "ok" in r, r
    cid = harness.new_cid()
    frame = json.dumps({"op": "send", "id": 3, "chat": world.ab, "cid": cid, "text": "first"})
    frame = frame[:-1] + ', "text": "second", "chat": "not-a-chat", "chat": "%s"}' % world.ab
    r = raw_reply(ws, frame)
    assert "ok" in r, r
    world.record(world.ab, cid, r["ok"])
    last = ws.ok("history", chat=world.ab, limit=1)["messages"][0]
    assert last["cid"] == cid and last["text"] == "second", last
    assert_still_serving(ws)


# ===================================================================== numbers

# (JSON text of `seq` in an `ack`, expected outcome): integers only, 0 .. 2^64-1.
SEQ_NUMBERS = [
    ("0", "ok"), ("-0", "ok"),                   # -0 is the integer 0
    ("18446744073709551615", "ok"),              # 2^64-1: capped at last_seq
    ("9223372036854775808", "ok"),               # 2^63
    ("18446744073709551616", "bad_request"),     # 2^64: not a 64-bit integer
    ("1e400", "bad_request"), ("-1e400", "bad_request"), ("1E-400", "bad_request"),
    ("1.5", "bad_request"), ("1.0", "bad_request"), ("1e2", "bad_request"), ("-0.0", "bad_request"),
    ("-1", "bad_request"), ("-9223372036854775809", "bad_request"),
    ("0x10", "malformed"), ("01", "malformed"), ("+1", "malformed"), ("NaN", "malformed"),
    ("Infinity", "malformed"), (".5", "malformed"), ("1.", "malformed"),
]


def test_numbers_where_integers_belong(world, ws):
    for text, want in SEQ_NUMBERS:
        frame = '{"op":"ack","id":"n","chat":"%s","seq":%s}' % (world.ab, text)
        r = raw_reply(ws, frame)
        if want == "ok":
            assert r["re"] == "n" and "ok" in r, (text, r)
        elif want == "malformed":  # not JSON at all: the id cannot be read
            assert r["re"] is None and r["err"]["code"] == "bad_request", (text, r)
        else:
            assert r["re"] == "n" and r["err"]["code"] == want, (text, r)
    for field, text in [("limit", "-0"), ("limit", "1e400"), ("limit", "50.0"), ("before", "1e400"),
                        ("after", "18446744073709551616")]:
        r = raw_reply(ws, '{"op":"history","id":"h","chat":"%s","%s":%s}' % (world.ab, field, text))
        assert r["err"]["code"] == "bad_request", (field, text, r)
    for text in ("1e400", "1.5", "-0.0", "18446744073709551616"):
        r = raw_reply(ws, '{"op":"send","id":"s","chat":"%s","cid":"num","text":"x","reply_to":%s}'
                      % (world.ab, text))
        assert r["err"]["code"] == "bad_request", (text, r)
    assert_still_serving(ws)


# ===================================================================== wrong JSON types

# The arguments of every op: field -> kind, and a valid base request (PROTOCOL.md §3). Each case
# replaces one field with a value of another JSON type; the request must be bad_request.
OP_FIELDS: dict[str, tuple[dict, dict]] = {
    "users.get": ({"usernames": "idlist"}, {"usernames": ["nobody_here"]}),
    "users.get/ids": ({"ids": "idlist"}, {"ids": ["$B"]}),
    "chat.open": ({"peer": "id"}, {"peer": "$B"}),
    "group.create": ({"title": "str", "members": "idlist"}, {"title": "t", "members": ["$B"]}),
    "group.add": ({"chat": "id", "users": "idlist"}, {"chat": "$AB", "users": ["$C"]}),
    "group.remove": ({"chat": "id", "users": "idlist"}, {"chat": "$AB", "users": ["$C"]}),
    "group.leave": ({"chat": "id"}, {"chat": "$AB"}),
    "group.update": ({"chat": "id", "title": "str?", "admins_add": "idlist?",
                      "admins_remove": "idlist?"},
                     {"chat": "$AB", "title": "t", "admins_add": ["$B"], "admins_remove": []}),
    "send": ({"chat": "id", "cid": "id", "text": "str?", "media": "obj?", "reply_to": "int?"},
             {"chat": "$AB", "cid": "wrong-type", "text": "x"}),
    "send/media": ({"media.media_id": "id", "media.mime": "str", "media.size": "int",
                    "media.name": "str?"},
                   {"chat": "$AB", "cid": "wrong-type-m",
                    "media": {"media_id": "m1", "mime": "image/png", "size": 1, "name": "n"}}),
    "history": ({"chat": "id", "before": "int?", "after": "int?", "limit": "int?"},
                {"chat": "$AB"}),
    "ack": ({"chat": "id", "seq": "int"}, {"chat": "$AB", "seq": 1}),
    "read": ({"chat": "id", "seq": "int"}, {"chat": "$AB", "seq": 1}),
    "receipts": ({"chat": "id", "seq": "int"}, {"chat": "$AB", "seq": 1}),
    "typing": ({"chat": "id", "on": "bool"}, {"chat": "$AB", "on": False}),
    "presence.sub": ({"users": "idlist"}, {"users": ["$B"]}),
}

_SCALARS = {"str": "s", "int": 7, "neg": -7, "float": 1.5, "true": True, "false": False,
            "list": [], "list1": ["x"], "obj": {}, "obj1": {"k": "v"}}
WRONG: dict[str, dict[str, Any]] = {
    "id": {k: v for k, v in _SCALARS.items() if k != "str"},
    "str": {k: v for k, v in _SCALARS.items() if k != "str"},
    "int": {**{k: v for k, v in _SCALARS.items() if k not in ("int",)}, "numstr": "1"},
    "bool": {**{k: v for k, v in _SCALARS.items() if k not in ("true", "false")},
             "one": 1, "zero": 0, "strtrue": "true"},
    "idlist": {**{k: v for k, v in _SCALARS.items() if k not in ("list", "list1")},
               "ints": [1], "nulls": [None], "bools": [True], "lists": [[]], "objs": [{}],
               "mixed": ["ok", 5], "empty_id": [""]},
    "obj": {k: v for k, v in _SCALARS.items() if k not in ("obj", "obj1")},
}


def _type_cases():
    for op_key, (fields, base) in OP_FIELDS.items():
        op = op_key.split("/")[0]
        for field, kind in fields.items():
            yield pytest.param(op, base, field, kind, id=f"{op_key}.{field}")


@pytest.mark.parametrize("op,base,field,kind", list(_type_cases()))
def test_every_wrong_json_type_of_every_field_is_bad_request(world, ws, op, base, field, kind):
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    before = last_seq(ws, world.ab)
    values = dict(WRONG[kind])
    if not optional:
        values["null"] = None   # a required field given null is missing
    assert len(values) < 45, "stay under the malformed-frame limit"
    for name, bad in values.items():
        args = world.subst(json.loads(json.dumps(base)))
        if "." in field:
            outer, inner = field.split(".")
            args[outer][inner] = bad
        else:
            args[field] = bad
        frame = {"op": op, "id": f"{field}:{name}", **args}
        r = expect_bad(ws, frame)
        # refused for this field (not for a lookup further on): the message names it
        assert field.split(".")[-1] in r["err"]["message"], r
    if not optional:
        args = world.subst(json.loads(json.dumps(base)))
        if "." in field:
            outer, inner = field.split(".")
            del args[outer][inner]
        else:
            del args[field]
        r = expect_bad(ws, {"op": op, "id": f"{field}:missing", **args})
        assert field.split(".")[-1] in r["err"]["message"], r
    assert_still_serving(ws)
    assert last_seq(ws, world.ab) == before, "a refused request changed the chat"


def test_null_for_an_optional_field_means_absent(world, ws):
    """Documented choice: `"field": null` is the same as leaving the field out."""
    cid = harness.new_cid()
    r = ws.request_raw({"op": "send", "id": 1, "chat": world.ab, "cid": cid, "text": "n",
                        "reply_to": None, "media": None})
    assert "ok" in r, r
    world.record(world.ab, cid, r["ok"])
    r = ws.request_raw({"op": "history", "id": 2, "chat": world.ab, "before": None,
                        "after": None, "limit": None})
    assert "ok" in r and len(r["ok"]["messages"]) >= 1, r
    assert_still_serving(ws)


@pytest.mark.parametrize("token", [None, 5, 1.5, True, [], ["t"], {}, {"t": "x"}, ""])
def test_auth_with_a_wrong_typed_token_is_unauthenticated_then_4001(parley, token):
    ws = parley.raw_ws()
    r = ws.request_raw({"op": "auth", "id": "t", "token": token})
    assert r["re"] == "t" and r["err"]["code"] == "unauthenticated", r
    assert ws.expect_close() == 4001


# ===================================================================== NUL, UTF-8

def test_nul_characters(world, ws):
    # escaped NUL in a text is just a character: stored and given back exactly
    cid = harness.new_cid()
    text = "a\u0000b\u0000"
    r = ws.request_raw({"op": "send", "id": 1, "chat": world.ab, "cid": cid, "text": text})
    assert "ok" in r, r
    world.record(world.ab, cid, r["ok"])
    last = ws.ok("history", chat=world.ab, limit=1)["messages"][0]
    assert last["cid"] == cid and last["text"] == text, last
    # NUL in any id is refused
    for frame in ({"op": "send", "id": 2, "chat": world.ab, "cid": "x\u0000", "text": "t"},
                  {"op": "send", "id": 3, "chat": world.ab + "\u0000", "cid": "x", "text": "t"},
                  {"op": "chat.open", "id": 4, "peer": world.b.user_id + "\u0000"},
                  {"op": "users.get", "id": 5, "ids": ["\u0000"]},
                  {"op": "presence.sub", "id": 6, "users": ["a\u0000"]}):
        expect_bad(ws, frame)
    # a raw NUL byte is valid UTF-8 but not JSON (inside a string or outside)
    expect_bad(ws, b'{"op":"ping","id":"a\x00b"}'.decode())
    expect_bad(ws, b'{"op":"ping",\x00"id":1}'.decode())
    expect_bad(ws, "\x00")
    assert_still_serving(ws)


INVALID_UTF8 = {
    "lone_continuation": b"\x80",
    "overlong_slash": b"\xc0\xaf",
    "overlong_nul": b"\xc0\x80",
    "surrogate_d800": b"\xed\xa0\x80",
    "above_10ffff": b"\xf4\x90\x80\x80",
    "truncated_3byte": b"\xe2\x82",
    "fe_ff": b"\xfe\xff",
    "latin1_e9": b"caf\xe9",
}


@pytest.mark.parametrize("name", list(INVALID_UTF8))
def test_invalid_utf8_closes_1007(world, parley, name):
    ws = parley.connect(world.dev_a)
    bad = INVALID_UTF8[name]
    ws.send_raw_frame(OP_TEXT, b'{"op":"send","id":1,"chat":"x","cid":"u","text":"' + bad + b'"}')
    assert ws.expect_close() == 1007


def test_invalid_utf8_at_the_end_of_a_frame_and_across_fragments_closes_1007(world, parley):
    ws = parley.connect(world.dev_a)
    ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1}\xe2\x82')   # cut-off sequence at the end
    assert ws.expect_close() == 1007
    ws = parley.connect(world.dev_a)
    ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1,"x":"\xe2', fin=False)
    ws.send_raw_frame(OP_CONT, b'\x28\xa1"}', fin=True)         # \xe2 then an ASCII byte
    assert ws.expect_close() == 1007


def test_invalid_utf8_before_auth_closes_1007(parley):
    ws = parley.raw_ws()
    ws.send_raw_frame(OP_TEXT, b'{"op":"auth","id":1,"token":"\xff"}')
    assert ws.expect_close() == 1007


def test_escaped_lone_surrogates_are_bad_request(ws):
    # valid UTF-8 on the wire, but the JSON escapes name no character
    for esc in ("\\ud800", "\\udc00", "\\udc00\\ud800", "\\ud800x"):
        expect_bad(ws, '{"op":"ping","id":"%s"}' % esc)
    r = raw_reply(ws, '{"op":"ping","id":"\\ud83d\\ude00"}')   # a valid pair is fine
    assert r["re"] == "\U0001F600" and "ok" in r, r
    assert_still_serving(ws)


# ===================================================================== unknown ops, ids

UNKNOWN_OPS = ["ping ", " ping", "Ping", "ping\u0000", "ping\n", "group", "group.", "users",
               "chats.", "auth2", "sendx", "__proto__", "constructor", "é", "😀", "x" * 10000,
               "send\u2028", "presence.sub.all", "group.create.", ""]


def test_unknown_ops_are_bad_request(world, ws):
    for op in UNKNOWN_OPS:
        frame = {"op": op, "id": f"u-{len(op)}", "chat": world.ab, "cid": "c", "text": "t"}
        expect_bad(ws, frame)
    # unknown op without an id: answered with re null
    ws.send_json({"op": "no.such", "chat": world.ab})
    m = ws.wait_for(lambda m: "re" in m, what="a reply")
    assert m["re"] is None and m["err"]["code"] == "bad_request", m
    assert_still_serving(ws)


REQUEST_IDS = [
    True, 2 ** 63 - 1, -(2 ** 63), 2 ** 63, 2 ** 64 - 1, 0.1, -0.5, 1e300, "\u2028\u2029",
    "😀 id", "\u0000", "\"quoted\\\"", "x" * 30000, [], {}, [[[[[[[[[[[[1]]]]]]]]]]]],
    {"a": {"b": {"c": [None, True, 1.25, "s"]}}}, [None], {"": ""},
]


def test_request_ids_of_every_json_type_are_echoed(ws):
    for rid in REQUEST_IDS:
        for op in ("ping", "no-such-op"):
            r = raw_reply(ws, json.dumps({"op": op, "id": rid}))
            assert r["re"] == rid and type(r["re"]) is type(rid), (rid, r)
            assert ("ok" in r) == (op == "ping"), r
    assert_still_serving(ws)


def test_request_id_number_edges(ws):
    """Numbers whose value the server keeps: -0 (the integer 0), 1e-400 (0.0), 2^64 (a double)."""
    for text, want in [("-0", 0), ("-0.0", 0.0), ("1E-400", 0.0), ("18446744073709551616", 2 ** 64),
                       ("1.5e3", 1500.0)]:
        r = raw_reply(ws, '{"op":"ping","id":%s}' % text)
        assert r["re"] == want and "ok" in r, (text, r)
    assert_still_serving(ws)


@pytest.mark.parametrize("text", ["1e400", "-1e400", "[1e400]"])
def test_request_id_that_overflows_a_double_gets_a_json_reply(ws, text):
    r = raw_reply(ws, '{"op":"ping","id":%s}' % text)     # raises: the reply is not JSON
    assert r["re"] is None or isinstance(r["re"], (int, float, list)), r
    assert_still_serving(ws)


@pytest.mark.parametrize("text", ["1.281111111111111E38", "123456789.123456789"])
def test_request_id_with_a_fraction_is_echoed_as_the_same_number(ws, text):
    r = raw_reply(ws, '{"op":"ping","id":%s}' % text)
    assert r["re"] == float(text), f"id {text} came back as {r['re']!r}"


def test_null_id_gets_no_success_reply(ws):
    ws.send_json({"op": "ping", "id": None})
    ws.send_json({"op": "ping", "id": None, "extra": [1, 2]})
    ws.roundtrip()
    ws.drain(0.2)
    assert [m for m in ws.pending() if "re" in m] == [], ws.pending()


def test_depth_of_the_id_is_bounded(ws):
    # the whole frame may nest 16 deep: an id 14 deep is echoed, a deeper one makes the frame bad
    shallow = json.loads("[" * 14 + "]" * 14)
    r = raw_reply(ws, json.dumps({"op": "ping", "id": shallow}))
    assert r["re"] == shallow and "ok" in r, r
    expect_bad(ws, json.dumps({"op": "ping", "id": json.loads("[" * 40 + "]" * 40)}))
    assert_still_serving(ws)


# ===================================================================== oversized fields and lists

ID65 = "i" * 65
ID64 = "i" * 64


def test_ids_over_64_bytes_are_bad_request(world, ws):
    frames = [
        {"op": "send", "chat": ID65, "cid": "c", "text": "t"},
        {"op": "send", "chat": world.ab, "cid": "é" * 33, "text": "t"},   # 66 bytes, 33 chars
        {"op": "send", "chat": world.ab, "cid": "c", "media": {"media_id": ID65, "mime": "a/b", "size": 1}},
        {"op": "history", "chat": ID65},
        {"op": "ack", "chat": ID65, "seq": 1},
        {"op": "read", "chat": ID65, "seq": 1},
        {"op": "receipts", "chat": ID65, "seq": 1},
        {"op": "typing", "chat": ID65, "on": True},
        {"op": "chat.open", "peer": ID65},
        {"op": "users.get", "ids": [ID65]},
        {"op": "users.get", "usernames": [ID65]},
        {"op": "presence.sub", "users": [world.b.user_id, ID65]},
        {"op": "group.create", "title": "t", "members": [ID65]},
        {"op": "group.add", "chat": world.ab, "users": [ID65]},
        {"op": "group.remove", "chat": ID65, "users": [world.b.user_id]},
        {"op": "group.leave", "chat": ID65},
        {"op": "group.update", "chat": world.ab, "admins_add": [ID65]},
    ]
    for i, f in enumerate(frames):
        expect_bad(ws, {"id": i, **f})
    # 64 bytes is an acceptable id (unknown, so looked up and not found / forbidden)
    assert ws.err("chat.open", peer=ID64)["code"] == "not_found"
    assert ws.err("history", chat=ID64)["code"] == "forbidden"
    assert_still_serving(ws)


def test_lists_over_their_limits_are_too_large(world, ws):
    ids = [f"u{i}" for i in range(2000)]
    # users.get: 100 is fine, 101 too large
    assert ws.ok("users.get", ids=ids[:100])["users"] == []
    expect_bad(ws, {"op": "users.get", "id": 1, "ids": ids[:101]}, "too_large")
    expect_bad(ws, {"op": "users.get", "id": 2, "usernames": ids[:101]}, "too_large")
    # presence.sub: 1024 is fine (all denied), 1025 too large
    r = ws.ok("presence.sub", users=ids[:1024])
    assert len(r["denied"]) == 1024 and r["presence"] == [], {k: len(v) for k, v in r.items()}
    expect_bad(ws, {"op": "presence.sub", "id": 3, "users": ids[:1025]}, "too_large")
    # groups: 256 members at most, the creator included
    expect_bad(ws, {"op": "group.create", "id": 4, "title": "t", "members": ids[:257]}, "too_large")
    expect_bad(ws, {"op": "group.add", "id": 5, "chat": world.ab, "users": ids[:257]}, "too_large")
    expect_bad(ws, {"op": "group.remove", "id": 6, "chat": world.ab, "users": ids[:257]},
               "too_large")
    expect_bad(ws, {"op": "group.update", "id": 7, "chat": world.ab, "admins_add": ids[:257]},
               "too_large")
    # text: 16 KiB of UTF-8 at most (bytes, not characters)
    expect_bad(ws, {"op": "send", "id": 8, "chat": world.ab, "cid": "big", "text": "é" * 8193},
               "too_large")
    # a title is not a list: over 100 characters it is bad_request
    expect_bad(ws, {"op": "group.create", "id": 9, "title": "t" * 101, "members": []})
    assert_still_serving(ws)


def test_group_of_257_with_the_creator_is_too_large_before_any_lookup(ws):
    members = [f"nobody-{i}" for i in range(256)]
    r = ws.request("group.create", title="t", members=members)
    assert r["err"]["code"] == "too_large", r


def test_group_member_limit_counts_the_creator(server_factory, parley_for):
    srv = server_factory(extra_args=["--max-group-members", "4"])
    p = parley_for(srv)
    a = p.user()
    others = [p.user(devices=0) for _ in range(4)]
    ws = p.connect(a.devices[0])
    r = ws.ok("group.create", title="four", members=[u.user_id for u in others[:3]])
    assert len(r["chat"]["members"]) == 4
    assert ws.err("group.create", title="five",
                  members=[u.user_id for u in others])["code"] == "too_large"
    # the creator listed among the members is not counted twice
    r = ws.ok("group.create", title="again",
              members=[a.user_id] + [u.user_id for u in others[:3]])
    assert len(r["chat"]["members"]) == 4
    assert ws.err("group.add", chat=r["chat"]["chat"], users=[others[3].user_id])["code"] == "too_large"
    assert_still_serving(ws)


def test_token_over_the_limit_is_unauthenticated_then_4001(parley):
    ws = parley.raw_ws()
    r = ws.request_raw({"op": "auth", "id": 1, "token": "t" * 5000})
    assert r["err"]["code"] == "unauthenticated", r
    assert ws.expect_close() == 4001


# ===================================================================== frame-level violations

def test_binary_frames_close_1003_also_before_auth_and_empty(world, parley):
    ws = parley.raw_ws()
    ws.send_binary(b'{"op":"auth"}')
    assert ws.expect_close() == 1003
    ws = parley.connect(world.dev_a)
    ws.send_binary(b"")
    assert ws.expect_close() == 1003
    ws = parley.connect(world.dev_a)
    ws.send_raw_frame(OP_BINARY, b'{"op":', fin=False)
    ws.send_raw_frame(OP_CONT, b'"ping"}', fin=True)
    assert ws.expect_close() == 1003


@pytest.mark.parametrize("violation", [
    "continuation_without_start", "text_inside_fragmented", "control_frame_fragmented",
    "control_frame_over_125", "unmasked", "reserved_bits", "reserved_opcode", "length_msb_set",
])
def test_rfc6455_violations_close_the_connection(world, parley, violation):
    ws = parley.connect(world.dev_a)
    if violation == "continuation_without_start":
        ws.send_raw_frame(OP_CONT, b'{"op":"ping"}')
    elif violation == "text_inside_fragmented":
        ws.send_raw_frame(OP_TEXT, b'{"op":', fin=False)
        ws.send_raw_frame(OP_TEXT, b'"ping"}')
    elif violation == "control_frame_fragmented":
        ws.send_raw_frame(OP_PING, b"x", fin=False)
    elif violation == "control_frame_over_125":
        ws.send_raw_frame(OP_PING, b"p" * 126)
    elif violation == "unmasked":
        ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1}', mask=False)
    elif violation == "reserved_bits":
        ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1}', rsv=4)
    elif violation == "reserved_opcode":
        ws.send_raw_frame(0x3, b"x")
    else:
        # RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0. Beast does not
        # check it; the server's own message limit still ends such a frame once more than
        # 64 KiB of it have arrived (1009), so 1002 or 1009 are both accepted here.
        ws.sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 63) + b"\0\0\0\0")
        try:
            ws.sock.sendall(b"x" * (70 * 1024))
        except OSError:
            pass
        code = ws.expect_close()
        assert code in (1002, 1009), f"{violation}: closed with {code}"
        return
    code = ws.expect_close()
    assert code == 1002, f"{violation}: closed with {code}, want 1002 (protocol error)"


def test_oversized_frames_close_1009(world, parley):
    # many tiny fragments adding up to more than 64 KiB
    ws = parley.connect(world.dev_a)
    ws.send_raw_frame(OP_TEXT, b'{"op":"ping","id":1,"x":"', fin=False)
    chunk = b"f" * 100
    for _ in range(700):
        ws.send_raw_frame(OP_CONT, chunk, fin=False)
    ws.send_raw_frame(OP_CONT, b'"}', fin=True)
    assert ws.expect_close() == 1009
    # a frame header announcing 2^62 bytes, then more than 64 KiB of them
    ws = parley.connect(world.dev_a)
    ws.sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 62) + b"\0\0\0\0")
    try:
        ws.sock.sendall(b"y" * (70 * 1024))
    except OSError:
        pass
    assert ws.expect_close() == 1009
    # before auth too
    ws = parley.raw_ws()
    ws.send_text(json.dumps({"op": "auth", "id": 1, "token": "t" * (70 * 1024)}))
    assert ws.expect_close() == 1009


def test_fragmented_requests(world, ws):
    # one byte per fragment, empty fragments and pings in between
    cid = harness.new_cid()
    body = json.dumps({"op": "send", "id": "f1", "chat": world.ab, "cid": cid,
                       "text": "byte by byte"}).encode()
    ws.send_raw_frame(OP_TEXT, body[:1], fin=False)
    for i, b in enumerate(body[1:-1]):
        ws.send_raw_frame(OP_CONT, bytes([b]), fin=False)
        if i % 10 == 0:
            ws.send_raw_frame(OP_CONT, b"", fin=False)
            ws.send_raw_frame(OP_PING, b"frag")
    ws.send_raw_frame(OP_CONT, body[-1:], fin=True)
    r = ws.wait_reply("f1")
    assert "ok" in r, r
    world.record(world.ab, cid, r["ok"])
    # an empty first fragment, the whole request in the last one
    ws.send_raw_frame(OP_TEXT, b"", fin=False)
    ws.send_raw_frame(OP_CONT, b'{"op":"ping","id":"f2"}', fin=True)
    assert "ok" in ws.wait_reply("f2")
    # an empty text message is malformed JSON
    ws.send_raw_frame(OP_TEXT, b"")
    assert ws.wait_for(lambda m: "re" in m)["err"]["code"] == "bad_request"
    assert_still_serving(ws)


# ===================================================================== ping flood

def test_ping_flood_takes_no_rate_tokens_and_the_server_stays_responsive(world, parley):
    ws = parley.connect(world.dev_a)
    t0 = time.monotonic()
    payload = b"p" * 125
    for i in range(1000):
        ws.send_raw_frame(OP_PING, payload if i % 2 else str(i).encode())
        if i % 50 == 49:
            ws.drain(0.0)  # read the pongs as they come: neither side's buffers fill up
    time.sleep(0.25)  # a few tokens come back meanwhile (20/s), far fewer than 1000
    # control frames take no tokens: a full burst of 99 requests is still allowed
    ids = [ws.send_request("ping") for _ in range(99)]
    replies = [ws.wait_reply(i, 10) for i in ids]
    limited = [r for r in replies if "err" in r]
    assert not limited, f"{len(limited)} requests were rate limited after a ping flood: {limited[:2]}"
    ws.drain(0.3)
    assert len(ws.pongs) >= 1, "no pong at all for 1000 pings"
    print(f"\n1000 pings answered by {len(ws.pongs)} pongs in {time.monotonic() - t0:.2f}s")
    # another client is served meanwhile
    world.witness_chat()
    assert_still_serving(ws)


# ===================================================================== spoofed fields

def test_client_supplied_from_seq_ts_kind_are_ignored(world, parley):
    wa = parley.connect(world.dev_a)
    wb = parley.connect(world.dev_b)
    cid = harness.new_cid()
    t0 = harness.now_ms()
    r = wa.request_raw({"op": "send", "id": 1, "chat": world.ab, "cid": cid, "text": "spoof?",
                        "from": world.b.user_id, "seq": 10 ** 6, "ts": 5, "kind": "system",
                        "system": {"event": "left", "by": world.b.user_id}, "dup": True,
                        "ev": "msg", "re": 99, "user_id": world.b.user_id})
    assert "ok" in r, r
    ok = r["ok"]
    world.record(world.ab, cid, ok)
    assert ok["dup"] is False and ok["seq"] < 10 ** 6 and abs(ok["ts"] - t0) < 60_000, ok
    ev = wb.wait_event("msg", predicate=lambda m: m.get("cid") == cid)
    for m in (ev, wa.ok("history", chat=world.ab, limit=1)["messages"][0]):
        assert m["from"] == world.a.user_id and m["kind"] == "text" and "system" not in m, m
        assert m["seq"] == ok["seq"] and m["ts"] == ok["ts"], m
    # a ping with a spoofed `t` gets the server's time
    r = wa.request_raw({"op": "ping", "id": 2, "t": 1})
    assert abs(r["ok"]["t"] - harness.now_ms()) < 60_000, r


# ===================================================================== rate limit

def test_burst_of_150_pings_is_rate_limited_after_about_100(world, parley):
    ws = parley.connect(world.dev_a)       # `auth` took one token
    ids = [ws.new_id() for _ in range(150)]
    data = b"".join(encode_frame(OP_TEXT, json.dumps({"op": "ping", "id": i}).encode()) for i in ids)
    ws.sock.sendall(data)                  # all at once
    replies = [ws.wait_reply(i, 10) for i in ids]
    oks = [r for r in replies if "ok" in r]
    limited = [r for r in replies if "err" in r]
    assert all(r["err"]["code"] == "rate_limited" for r in limited), limited[:3]
    assert 95 <= len(oks) <= 115, f"{len(oks)} of 150 answered ok (bucket of 100, 20/s)"
    assert len(limited) >= 35
    first_limited = next(i for i, r in enumerate(replies) if "err" in r)
    assert first_limited >= 95, f"rate limited from the {first_limited}th frame on"
    for r in limited:
        retry = r["err"].get("retry_ms")
        assert isinstance(retry, int) and 0 < retry <= 1000, r
    time.sleep(limited[-1]["err"]["retry_ms"] / 1000.0 + 0.01)
    assert "ok" in ws.request("ping"), "a request after waiting retry_ms must succeed"
    # a frame without id that finds no token is answered with re null
    ws.sock.sendall(b"".join(encode_frame(OP_TEXT, b'{"op":"ping"}') for _ in range(120)))
    m = ws.wait_for(lambda m: "re" in m, 10, "a rate_limited answer")
    assert m["re"] is None and m["err"]["code"] == "rate_limited" and m["err"]["retry_ms"] > 0, m


def test_rate_limited_sends_do_nothing_and_acked_ones_are_stored(world, parley):
    ws = parley.connect(world.dev_a)
    cids = [f"burst-{harness.new_cid()}" for _ in range(150)]
    frames = []
    for i, c in enumerate(cids):
        frames.append(encode_frame(OP_TEXT, json.dumps(
            {"op": "send", "id": i, "chat": world.ab, "cid": c, "text": f"burst {i}"}).encode()))
    ws.sock.sendall(b"".join(frames))
    replies = {i: ws.wait_reply(i, 30) for i in range(150)}
    acked = {cids[i]: r["ok"] for i, r in replies.items() if "ok" in r}
    refused = [cids[i] for i, r in replies.items() if "err" in r]
    assert all(replies[i]["err"]["code"] == "rate_limited" for i in replies if "err" in replies[i])
    assert acked and refused, f"{len(acked)} acked, {len(refused)} refused"
    for c, ok in acked.items():
        world.record(world.ab, c, ok)
    time.sleep(0.5)
    stored = {m["cid"] for m in harness.history_all(ws, world.ab)}
    assert set(acked) <= stored, "an acknowledged send is missing"
    assert not (set(refused) & stored), "a rate-limited send was stored"


# ===================================================================== malformed-frame limit

def test_more_than_50_malformed_frames_in_10s_close_1008(world, parley):
    ws = parley.connect(world.dev_a)
    for i in range(50):
        ws.send_text("{bad json" if i % 3 else json.dumps({"op": "ack", "id": i, "chat": 5}))
    assert_still_serving(ws)                  # 50 are tolerated
    ws.send_text("[]")                        # the 51st
    assert ws.expect_close() == 1008
    # refused-but-well-formed requests are not malformed frames: 60 of them close nothing
    ws = parley.connect(world.dev_a)
    for i in range(60):
        ws.send_json({"op": "history", "id": i, "chat": "not-my-chat"})
    for i in range(60):
        assert ws.wait_reply(i)["err"]["code"] == "forbidden"
    assert_still_serving(ws)


def test_malformed_frame_before_auth_closes_4001_not_1008(parley):
    ws = parley.raw_ws()
    ws.send_text("{nope")
    assert ws.expect_close() == 4001


# ===================================================================== admission limits

def _auth_ok(ws: WsClient, token: str) -> None:
    ok, _ = harness.auth(ws, token)
    assert ok["device_id"], ok


def _closed_within(ws: WsClient, seconds: float) -> Optional[int]:
    try:
        return ws.expect_close(seconds)
    except AssertionError:
        return None


def test_unauthenticated_connections_per_address_are_capped(server_factory, parley_for):
    srv = server_factory(extra_args=["--max-unauth-per-ip", "3"])
    p = parley_for(srv)
    u = p.user(devices=4)
    first = [p.raw_ws() for _ in range(3)]
    fourth = p.raw_ws()
    assert fourth.expect_close() == 1008, "the 4th unauthenticated WebSocket from 127.0.0.1"
    # another source address has its own count
    other = p.raw_ws(source="127.0.0.2")
    assert _closed_within(other, 0.5) is None
    _auth_ok(other, u.devices[0].token)
    # the first three were kept; once one of them authenticates, another may open
    _auth_ok(first[0], u.devices[1].token)
    fifth = p.raw_ws()
    assert _closed_within(fifth, 0.5) is None
    _auth_ok(fifth, u.devices[2].token)
    # full again (first[1], first[2], sixth): a seventh is refused
    sixth = p.raw_ws()
    assert _closed_within(sixth, 0.3) is None
    seventh = p.raw_ws()
    assert seventh.expect_close() == 1008
    # a closed unauthenticated connection frees its place
    first[1].close()
    deadline = time.monotonic() + 5
    while True:
        again = p.raw_ws()
        if _closed_within(again, 0.3) is None:
            break
        assert time.monotonic() < deadline, "closing an unauthenticated connection freed nothing"
    _auth_ok(again, u.devices[3].token)
    for ws in (other, first[0], fifth, again):
        assert_still_serving(ws)


def test_connections_per_user_are_capped(server_factory, parley_for):
    srv = server_factory(extra_args=["--max-connections-per-user", "2"])
    p = parley_for(srv)
    u = p.user(devices=3)
    v = p.user()
    c1 = p.connect(u.devices[0])
    c2 = p.connect(u.devices[1])
    third = p.raw_ws()
    r = third.request("auth", token=u.devices[2].token)
    assert r.get("err", {}).get("code") == "forbidden", r
    assert third.expect_close() == 1008
    p.connect(v.devices[0])                      # other users are not affected
    c2.close()
    deadline = time.monotonic() + 5
    while True:
        ws = p.raw_ws()
        r = ws.request("auth", token=u.devices[2].token)
        if "ok" in r:
            break
        assert time.monotonic() < deadline, f"a closed connection freed no place: {r!r}"
    ws.wait_event("synced")
    assert_still_serving(ws)
    assert_still_serving(c1)


def _origin_result(port: int, origin: Optional[str], token: str) -> str:
    """"ok" when an auth on a WebSocket opened with this Origin succeeds, else how it ended."""
    ws = WsClient.connect(port, origin=origin)
    try:
        ws.send_json({"op": "auth", "id": 1, "token": token})
        try:
            m = ws.recv_json(3)
        except WsClosed as e:
            return f"closed {e.code}"
        return "ok" if "ok" in m else f"err {m}"
    finally:
        ws.abort()


def test_origin_same_origin_by_default(server, parley):
    u = parley.user(devices=1)
    tok = u.devices[0].token
    port = server.port
    assert _origin_result(port, None, tok) == "ok", "no Origin (not a browser) is allowed"
    assert _origin_result(port, f"http://127.0.0.1:{port}", tok) == "ok"
    assert _origin_result(port, f"https://127.0.0.1:{port}", tok) == "ok"
    for bad in ("http://evil.example", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}",
                "null", f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}.evil.example",
                f"ftp://127.0.0.1:{port}", "127.0.0.1"):
        assert _origin_result(port, bad, tok) == "closed 1008", f"Origin {bad!r} was accepted"


def test_origin_allow_list(server_factory, parley_for):
    srv = server_factory(extra_args=["--allowed-origin", "http://good.example"])
    p = parley_for(srv)
    tok = p.user().devices[0].token
    port = srv.port
    assert _origin_result(port, "http://good.example", tok) == "ok"
    assert _origin_result(port, None, tok) == "ok", "non-browser clients send no Origin"
    for bad in ("https://good.example", "http://good.example:80", "http://good.example/",
                "http://GOOD.example", "http://evil.good.example", f"http://127.0.0.1:{port}",
                "http://good.example.evil"):
        assert _origin_result(port, bad, tok) == "closed 1008", f"Origin {bad!r} was accepted"


# ===================================================================== deadlines (slowloris)

def test_slowloris_auth_and_handshake_deadlines(world, server, parley):
    """With the default deadlines (10 s each): a WebSocket that sends nothing, and one that sends
    only WebSocket pings, are closed with 4001 at the auth deadline; an HTTP request head
    trickled one byte per 500 ms is cut off by the handshake deadline. Meanwhile a
    well-behaved client keeps chatting."""
    port = server.port
    t0 = time.monotonic()
    silent = parley.raw_ws()
    pinger = parley.raw_ws()
    trickle = socket.create_connection(("127.0.0.1", port))
    head = (f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    closed: dict[str, float] = {}
    codes: dict[str, int] = {}
    sent = 0
    next_byte = next_ping = next_chat = t0
    while len(closed) < 3 and time.monotonic() - t0 < 16:
        now = time.monotonic()
        if "trickle" not in closed:
            if now >= next_byte and sent < len(head):
                try:
                    trickle.sendall(head[sent:sent + 1])
                    sent += 1
                except OSError:
                    closed["trickle"] = now - t0
                next_byte = now + 0.5
            r, _, _ = select.select([trickle], [], [], 0)
            if r:
                try:
                    data = trickle.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    closed["trickle"] = now - t0
                else:
                    pytest.fail(f"the server answered an incomplete request head: {data[:200]!r}")
        if "pinger" not in closed and now >= next_ping:
            try:
                pinger.send_raw_frame(OP_PING, b"still here")
            except OSError:
                pass
            next_ping = now + 1.0
        for name, ws in (("silent", silent), ("pinger", pinger)):
            if name in closed:
                continue
            try:
                ws.recv_message(0.01)
            except WsTimeout:
                pass
            except (WsClosed, OSError):
                closed[name] = time.monotonic() - t0
                codes[name] = ws.close_code
        if now >= next_chat:
            world.witness_chat()
            next_chat = now + 2.0
        time.sleep(0.02)
    trickle.close()
    assert set(closed) == {"silent", "pinger", "trickle"}, f"still open after 16 s: {closed}"
    assert codes == {"silent": 4001, "pinger": 4001}, codes
    for name, at in closed.items():
        assert 9.0 <= at <= 13.0, f"{name} closed after {at:.1f}s (deadline 10 s): {closed}"
    assert sent < len(head), "the whole head was sent before the deadline"


def test_slow_http_body_is_cut_off_by_the_handshake_deadline(world, server):
    """The request body must arrive within the same deadline as the head (10 s)."""
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{")
    t0 = time.monotonic()
    s.settimeout(0.5)
    got = b""
    while time.monotonic() - t0 < 15:
        try:
            s.sendall(b" ")
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            continue
        except OSError:
            break
    elapsed = time.monotonic() - t0
    s.close()
    assert 9.0 <= elapsed <= 13.0, f"cut off after {elapsed:.1f}s, want ~10 s ({got[:100]!r})"


def test_a_chunked_body_ending_byte_by_byte_is_parsed(world, server):
    """The last chunk and the final CRLF of a chunked body arriving in pieces ("0\\r\\n", "\\r",
    "\\n"): Beast before 1.86 asserted on this (boostorg/beast#2861), which aborted the server in
    builds with assertions (the ASan build); the request must be answered like any other."""
    s = socket.create_connection(("127.0.0.1", server.port))
    s.settimeout(5)
    s.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n")  # an empty body
    for piece in (b"\r", b"\n"):
        time.sleep(0.2)  # separate reads on the server's side
        s.sendall(piece)
    answer = harness.read_until_closed(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert server.alive()


# ===================================================================== nothing lost

def test_zz_nothing_acknowledged_was_lost(world, parley):
    """Runs last in this module: every send acknowledged on the shared server is in history,
    at its acknowledged seq, and the sequences have no gaps."""
    ws = parley.connect(world.dev_a)
    for chat, acked in world.acked.items():
        if chat == world.w:
            reader = parley.connect(world.dev_w1)
        else:
            reader = ws
        msgs = harness.history_all(reader, chat)
        seqs = [m["seq"] for m in msgs]
        assert seqs == list(range(1, len(seqs) + 1)), f"gaps in {chat}: {seqs[:20]}..."
        by_cid = {m["cid"]: m["seq"] for m in msgs if m["kind"] != "system"}
        missing = {c: s for c, s in acked.items() if by_cid.get(c) != s}
        assert not missing, f"acknowledged but not stored at its seq in {chat}: {missing}"
    assert len(world.acked[world.w]) >= 10, "the witness chatted fewer times than expected"


# ===================================================================== WebSocket opening handshake

def _upgrade(port: int, extra: str, version: str = "HTTP/1.1") -> bytes:
    head = (f"GET /v1/ws {version}\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: keep-alive, Upgrade\r\n{extra}\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(head)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_the_opening_handshake_answers_rfc_6455(server):
    out = _upgrade(server.port, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    assert out.startswith(b"HTTP/1.1 101 "), out
    # The example of RFC 6455 §1.3.
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out, out


def test_unacceptable_upgrades_are_refused(server):
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    out = _upgrade(server.port, key + "Sec-WebSocket-Version: 8\r\n")
    assert out.startswith(b"HTTP/1.1 426 "), out
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in out, out
    for extra in ("Sec-WebSocket-Version: 13\r\n",  # no key
                  "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n"):
        out = _upgrade(server.port, extra)
        assert out.startswith(b"HTTP/1.1 400 "), (extra, out)
        assert b'"bad_request"' in out
    # HTTP/1.0 cannot upgrade: it is an ordinary request for a path that is no resource.
    out = _upgrade(server.port, key + "Sec-WebSocket-Version: 13\r\n", version="HTTP/1.0")
    assert out.startswith(b"HTTP/1.0 404 "), out
