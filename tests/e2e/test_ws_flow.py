"""Flow on one WebSocket under pressure: pipelined bursts are all answered (no stalled read),
a flood of pings cannot grow the server's queue, and a client whose replies back up is paused
rather than dropped."""

from __future__ import annotations

import json
import socket
import time

import harness
from wsclient import OP_PING, OP_PONG, OP_TEXT, encode_frame


def _unlimited(server_factory, parley_for):
    srv = server_factory(extra_args=["--rate-per-sec", "0"])
    return srv, parley_for(srv)


def test_a_pipelined_burst_is_answered_whole(server_factory, parley_for):
    # Far more than one read's worth, sent in one go: every request must be answered without
    # the client sending anything else (a missed readiness edge would stall the rest).
    srv, p = _unlimited(server_factory, parley_for)
    ws = p.connect(p.user().devices[0])
    n = 10_000
    burst = b"".join(encode_frame(OP_TEXT, json.dumps({"op": "ping", "id": i}).encode())
                     for i in range(n))
    assert len(burst) > 4 * 64 * 1024
    ws.sock.sendall(burst)
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < n:
        assert time.monotonic() < deadline, f"only {len(seen)} of {n} answered"
        m = ws.wait_for(lambda m: m.get("re") is not None, timeout=10)
        seen.add(m["re"])
    assert seen == set(range(n))


def test_a_ping_flood_is_answered_by_one_pong_at_a_time(server_factory, parley_for):
    srv, p = _unlimited(server_factory, parley_for)
    ws = p.connect(p.user().devices[0])
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood = encode_frame(OP_PING, b"") * 50_000
    ws.sock.sendall(flood)
    ws.sock.sendall(encode_frame(OP_PING, b"last"))
    ws.send_json({"op": "ping", "id": "after"})
    # Every pong answers the latest ping seen so far: far fewer pongs than pings, the last one
    # with the last ping's payload, and the connection keeps working.
    pongs = []
    deadline = time.monotonic() + 20
    reply = None
    while reply is None:
        assert time.monotonic() < deadline
        f = ws.recv_frame(timeout=10)
        if f.opcode == OP_PONG:
            pongs.append(f.payload)
        elif f.opcode == OP_TEXT and json.loads(f.payload).get("re") == "after":
            reply = json.loads(f.payload)
    assert "ok" in reply
    assert len(pongs) < 50_000
    assert pongs[-1] == b"last" or b"last" in pongs


def test_a_client_whose_replies_back_up_is_paused_not_dropped(server_factory, parley_for):
    # history replies are large; asking for many at once without reading them fills the
    # outbound queue past a quarter of its bound: the server stops reading that client until
    # the replies are out, instead of closing it as a slow consumer (1013).
    srv = server_factory(extra_args=["--rate-per-sec", "0", "--outbound-max-bytes", "1048576"])
    p = parley_for(srv)
    a, b = p.user(), p.user()
    wa = p.connect(a.devices[0])
    chat = p.open_chat(wa, b)["chat"]
    text = "x" * 4000
    harness.pipeline_send(wa, [{"chat": chat, "cid": harness.new_cid(), "text": text} for _ in range(50)])
    n = 300
    burst = b"".join(encode_frame(OP_TEXT, json.dumps(
        {"op": "history", "id": i, "chat": chat, "limit": 50}).encode()) for i in range(n))
    wa.sock.sendall(burst)
    time.sleep(1.0)  # let the server fill its queue while we do not read
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < n:
        assert time.monotonic() < deadline, f"only {len(seen)} of {n} answered"
        m = wa.wait_for(lambda m: m.get("re") is not None, timeout=10)
        assert "ok" in m, m
        seen.add(m["re"])
    assert wa.close_code is None
