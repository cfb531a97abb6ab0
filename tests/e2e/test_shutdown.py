"""Graceful shutdown: SIGTERM closes every WebSocket with 1012 and exits 0; acknowledged messages
are there after a restart (PROTOCOL.md §5, §4.2)."""

from __future__ import annotations

import signal
import subprocess

import pytest

import harness
from harness import chat_state, history_all


@pytest.mark.parametrize("durability", ["sync", "os"])
def test_sigterm_closes_with_1012_exits_0_and_keeps_acked_messages(durability, server_factory, parley_for):
    srv = server_factory(durability=durability)
    p = parley_for(srv)
    a = p.user()
    b = p.user(devices=2)
    wa = p.connect(a.devices[0])
    wb = p.connect(b.devices[0])
    unauthenticated = p.raw_ws()
    chat = p.open_chat(wa, b)["chat"]
    acked = {}
    for i in range(5):
        c = f"before-{i}"
        acked[c] = wa.ok("send", chat=chat, cid=c, text=f"text {i}")["seq"]
    for _ in acked:
        wb.wait_event("msg")
    assert wb.ok("ack", chat=chat, seq=3) == {}

    # requests in flight when the signal arrives: each is either answered (and then durable) or not
    ids = {}
    for i in range(20):
        c = f"inflight-{i}"
        ids[wa.send_request("send", chat=chat, cid=c, text=f"late {i}")] = c
    srv.expect_exit = True
    srv.proc.send_signal(signal.SIGTERM)

    assert wa.expect_close(10) == 1012
    assert wb.expect_close(10) == 1012
    assert unauthenticated.expect_close(10) == 1012
    try:
        rc = srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        srv.kill()
        pytest.fail("parleyd did not exit within 10 s of SIGTERM")
    assert rc == 0, f"exit status after SIGTERM: {rc}"

    for m in wa.pending():
        if m.get("re") in ids:
            if "ok" in m:
                acked[ids[m["re"]]] = m["ok"]["seq"]
            else:
                assert m["err"]["code"] in ("unavailable", "rate_limited"), m

    srv.start()
    wa = p.connect(a.devices[0])
    hist = history_all(wa, chat)
    last_seq = chat_state(wa, chat)["last_seq"]
    assert [m["seq"] for m in hist] == list(range(1, last_seq + 1))
    by_cid = {m["cid"]: m["seq"] for m in hist}
    assert len(by_cid) == len(hist), "no cid stored twice"
    for c, s in acked.items():
        assert by_cid.get(c) == s, f"acknowledged message {c} (seq {s}) missing after restart"
    assert set(by_cid) <= {f"before-{i}" for i in range(5)} | set(ids.values())

    wb = p.connect(b.devices[0])
    assert [m["seq"] for m in wb.replay] == list(range(4, last_seq + 1)), "the ack of 3 survived"
    wb2 = p.connect(b.devices[1])
    assert [m["seq"] for m in wb2.replay] == list(range(1, last_seq + 1))


def test_sigterm_with_no_connections_exits_0(server_factory):
    srv = server_factory()
    harness.register(srv.port)
    assert srv.terminate(10) == 0
