"""Crash safety: kill -9 at any moment loses nothing that was acknowledged (PROTOCOL.md §4.2,
§4.3, §4.4, §4.9), in both durability modes (`os` survives a process crash by design too)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

import harness
import httpclient
from harness import chat_state, history_all
from wsclient import WsClient, WsClosed, WsTimeout

MODES = ["sync", "os"]
CYCLES = 3


class ReceiverState:
    def __init__(self, cursor: int):
        self.last_ok_ack = cursor      # the highest ack the server confirmed
        self.inflight_ack = None       # the ack sent but not answered yet (at most one)
        self.ack_id = None
        self.received: list[int] = []  # seqs of msg events, in arrival order
        self.cid_of: dict[int, str] = {}  # seq -> cid of every message pushed live
        self.errors: list = []
        self.ended: BaseException | None = None


def receive_and_ack(ws: WsClient, chat: str, st: ReceiverState) -> None:
    """Read msg events and ack the highest received seq, one ack in flight at a time, until the
    connection dies."""
    last_ack_time = 0.0
    try:
        while True:
            try:
                m = ws.recv_json(0.2)
            except WsTimeout:
                m = None
            if m is not None:
                if m.get("ev") == "msg" and m.get("chat") == chat:
                    st.received.append(m["seq"])
                    st.cid_of[m["seq"]] = m["cid"]
                elif st.ack_id is not None and m.get("re") == st.ack_id:
                    if "ok" in m:
                        st.last_ok_ack = max(st.last_ok_ack, st.inflight_ack)
                    elif m.get("err", {}).get("code") != "rate_limited":  # rate_limited did nothing
                        st.errors.append(m)
                    st.inflight_ack, st.ack_id = None, None
            now = time.monotonic()
            if (st.inflight_ack is None and st.received and max(st.received) > st.last_ok_ack
                    and now - last_ack_time > 0.05):
                st.inflight_ack = max(st.received)
                st.ack_id = ws.send_request("ack", chat=chat, seq=st.inflight_ack)
                last_ack_time = now
    except (WsClosed, OSError) as e:
        st.ended = e


def check_log(ws: WsClient, chat: str, acked: dict, text_of: dict) -> list:
    """History is gapless 1..last_seq, every cid appears once, every acked (cid, seq) is there."""
    hist = history_all(ws, chat)
    last_seq = chat_state(ws, chat)["last_seq"]
    assert [m["seq"] for m in hist] == list(range(1, last_seq + 1)), "seqs must be gapless 1..last_seq"
    cids = [m["cid"] for m in hist]
    dups = {c for c in cids if cids.count(c) > 1} if len(set(cids)) != len(cids) else set()
    assert not dups, f"cids stored more than once: {sorted(dups)[:10]}"
    by_cid = {m["cid"]: m for m in hist}
    lost = [c for c in acked if c not in by_cid]
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {lost[:5]}"
    moved = [(c, s, by_cid[c]["seq"]) for c, s in acked.items() if by_cid[c]["seq"] != s]
    assert not moved, f"acknowledged messages changed seq: {moved[:5]}"
    phantom = [c for c in cids if c not in text_of]
    assert not phantom, f"messages nobody sent: {phantom[:5]}"
    for m in hist:
        assert m["text"] == text_of[m["cid"]], m
    return hist


@pytest.mark.parametrize("durability", MODES)
def test_kill_9_under_load_loses_nothing_acknowledged(durability, server_factory, parley_for, rng):
    srv = server_factory(durability=durability)
    p = parley_for(srv)
    a = p.user()
    b = p.user()
    dev_a, dev_b = a.devices[0], b.devices[0]
    ws_a = p.connect(dev_a)
    chat = p.open_chat(ws_a, b)["chat"]
    ws_b = p.connect(dev_b)

    text_of: dict[str, str] = {}     # every cid ever sent -> its text
    acked: dict[str, int] = {}       # cid -> seq, for every send answered ok
    counter = itertools.count()
    cursor_b = 0                     # dev_b's acked cursor, known exactly between cycles

    for cycle in range(CYCLES):
        def items():
            while True:
                i = next(counter)
                c = f"k{cycle}-{i}"
                text_of[c] = f"{c} " + "x" * rng.randrange(0, 300)
                yield {"chat": chat, "cid": c, "text": text_of[c]}

        st = ReceiverState(cursor_b)
        res = harness.PipelineResult()
        t_send = threading.Thread(target=harness.pipeline_send,
                                  kwargs=dict(ws=ws_a, items=items(), window=50, timeout=30,
                                              result=res, tolerate_close=True), daemon=True)
        t_recv = threading.Thread(target=receive_and_ack, args=(ws_b, chat, st), daemon=True)
        t_send.start()
        t_recv.start()
        delay = rng.uniform(0.5, 2.0)
        time.sleep(delay)
        srv.kill()
        t_send.join(15)
        t_recv.join(15)
        assert not t_send.is_alive() and not t_recv.is_alive(), "clients did not notice the kill"
        assert res.closed is not None, "the sender stopped before the kill"
        assert not res.errors, f"send errors before the kill: {res.errors[:3]}"
        assert not st.errors, f"ack errors before the kill: {st.errors[:3]}"
        assert res.acked, f"cycle {cycle}: nothing was acknowledged in {delay:.2f}s"
        for c, ok in res.acked.items():
            assert ok["dup"] is False
            acked[c] = ok["seq"]
        # live delivery before the kill was gapless and in order
        if st.received:
            assert st.received == list(range(st.received[0], st.received[0] + len(st.received)))
            assert st.received[0] == cursor_b + 1
        print(f"cycle {cycle} ({durability}): killed after {delay:.2f}s, {len(res.acked)} acked, "
              f"{len(res.sent) - len(res.acked)} unanswered, receiver got {len(st.received)}, "
              f"acked up to {st.last_ok_ack} (in flight {st.inflight_ack}), "
              f"{res.rate_limited} rate-limited")

        srv.start()
        ws_b = p.connect(dev_b)
        ws_a = p.connect(dev_a)
        assert ws_a.replay == [], "a device is never pushed its own messages"
        hist = check_log(ws_a, chat, acked, text_of)
        last_seq = len(hist)
        # a message pushed before the crash was stored: its seq is not reused for another one
        for seq, c in st.cid_of.items():
            assert seq <= last_seq and hist[seq - 1]["cid"] == c, \
                f"seq {seq} was pushed as {c} before the crash but is {hist[seq - 1]['cid'] if seq <= last_seq else 'gone'} after"

        # dev_b is replayed exactly what lies above its durable cursor
        replayed = [m["seq"] for m in ws_b.replay]
        cursor = replayed[0] - 1 if replayed else last_seq
        possible = {st.last_ok_ack} | ({st.inflight_ack} if st.inflight_ack is not None else set())
        assert cursor in possible, (f"replay starts after {cursor}, but the device's acked cursor "
                                    f"is {st.last_ok_ack} (ack in flight: {st.inflight_ack})")
        assert replayed == list(range(cursor + 1, last_seq + 1)), "replay must be gapless up to last_seq"
        for m in ws_b.replay:
            assert {k: v for k, v in m.items() if k != "ev"} == hist[m["seq"] - 1]

        # retrying every unanswered cid: dup with its stored seq, or a new message; never twice
        stored = {m["cid"]: m["seq"] for m in hist}
        unanswered = sorted(res.sent - set(res.acked))
        retry = harness.pipeline_send(ws_a, [{"chat": chat, "cid": c, "text": text_of[c]} for c in unanswered],
                                      window=50, timeout=30)
        assert not retry.errors, retry.errors[:3]
        new_seqs = []
        for c in unanswered:
            ok = retry.acked[c]
            if c in stored:
                assert ok["dup"] is True and ok["seq"] == stored[c], (c, ok, stored[c])
            else:
                assert ok["dup"] is False and ok["seq"] > last_seq, (c, ok)
                new_seqs.append(ok["seq"])
            acked[c] = ok["seq"]
        print(f"  after restart: {len(unanswered) - len(new_seqs)} unanswered sends had been stored "
              f"(dup on retry), {len(new_seqs)} had not; dev_b replayed {len(replayed)} from {cursor + 1}")
        hist = check_log(ws_a, chat, acked, text_of)
        last_seq = len(hist)
        assert last_seq == len(stored) + len(new_seqs)
        # the receiver gets the new ones live, in order
        live = [ws_b.wait_event("msg", predicate=lambda m: m.get("chat") == chat)["seq"] for _ in new_seqs]
        assert live == sorted(new_seqs)
        assert ws_b.ok("ack", chat=chat, seq=last_seq) == {}
        cursor_b = last_seq


@pytest.mark.parametrize("durability", MODES)
def test_every_acknowledged_change_survives_kill_9(durability, server_factory, parley_for):
    srv = server_factory(durability=durability)
    p = parley_for(srv)

    a = harness.register(srv.port)                  # 201 -> durable
    srv.restart(kill=True)
    a_dev = harness.login(srv.port, a)             # the user survived; a session is created
    b = p.user()
    srv.restart(kill=True)
    wa = p.connect(a_dev)                          # the session survived
    chat = wa.ok("chat.open", peer=b.user_id)["chat"]
    srv.restart(kill=True)
    wa = p.connect(a_dev)
    assert [c["chat"] for c in wa.ok("chats")["chats"]] == [chat["chat"]]
    again = wa.ok("chat.open", peer=b.user_id)["chat"]
    assert again["chat"] == chat["chat"] and again["created"] == chat["created"]

    r1 = wa.ok("send", chat=chat["chat"], cid="d1", text="one")
    r2 = wa.ok("send", chat=chat["chat"], cid="d2", text="two")
    r3 = wa.ok("send", chat=chat["chat"], cid="d3", text="three")
    srv.restart(kill=True)
    wb = p.connect(b.devices[0])
    assert [m["cid"] for m in wb.replay] == ["d1", "d2", "d3"]
    assert [m["ts"] for m in wb.replay] == [r1["ts"], r2["ts"], r3["ts"]]
    assert wb.ok("ack", chat=chat["chat"], seq=2) == {}
    assert wb.ok("read", chat=chat["chat"], seq=1) == {}
    srv.restart(kill=True)
    wb = p.connect(b.devices[0])
    assert [m["seq"] for m in wb.replay] == [3], "the ack survived"
    st = chat_state(wb, chat["chat"])
    assert st["delivered_seq"] == 2 and st["read_seq"] == 1 and st["unread"] == 2
    wa = p.connect(a_dev)
    dup = wa.ok("send", chat=chat["chat"], cid="d2", text="two")
    assert dup["dup"] is True and dup["seq"] == 2 and dup["ts"] == r2["ts"], "the dedup record survived"

    assert httpclient.delete(srv.port, "/v1/sessions/current", token=a_dev.token).status == 204
    srv.restart(kill=True)
    ws = WsClient.connect(srv.port)
    try:
        assert ws.err("auth", token=a_dev.token)["code"] == "unauthenticated", "the logout survived"
        assert ws.expect_close() == 4001
    finally:
        ws.abort()
