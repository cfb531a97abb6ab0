"""Server process management and protocol helpers shared by the Parley end-to-end tests."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import httpclient
from wsclient import WsClient, WsClosed, WsTimeout

REPO = Path(__file__).resolve().parents[2]


def parleyd_binary() -> Path:
    env = os.environ.get("PARLEYD")
    return Path(env) if env else REPO / "build" / "parleyd"


def now_ms() -> int:
    return int(time.time() * 1000)


# ===================================================================== the server process

class ServerError(Exception):
    pass


class Server:
    """One parleyd process on a data dir. Restartable on the same data dir (a new port each time)."""

    def __init__(self, root: Path, durability: str = "sync", threads: int = 2,
                 heartbeat_ms: Optional[int] = None, auth_timeout_ms: Optional[int] = None,
                 extra_args: Iterable[str] = (), log_level: str = "info"):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port_file = self.data_dir / "port"
        self.log_path = self.root / "parleyd.log"
        self.durability = durability
        self.threads = threads
        self.heartbeat_ms = heartbeat_ms
        self.auth_timeout_ms = auth_timeout_ms
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.starts = 0
        self.expect_exit = False  # set by tests that stop/kill the process themselves

    def argv(self) -> list[str]:
        a = [str(parleyd_binary()), "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir),
             "--port-file", str(self.port_file), "--durability", self.durability,
             "--threads", str(self.threads), "--log-level", self.log_level]
        if self.heartbeat_ms is not None:
            a += ["--heartbeat-ms", str(self.heartbeat_ms)]
        if self.auth_timeout_ms is not None:
            a += ["--auth-timeout-ms", str(self.auth_timeout_ms)]
        return a + self.extra_args + shlex.split(os.environ.get("PARLEYD_EXTRA_ARGS", ""))

    def start(self, timeout: float = 20.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        binary = parleyd_binary()
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise ServerError(f"parleyd binary not found or not executable: {binary} "
                              f"(build it, or set PARLEYD=/path/to/parleyd)")
        try:
            self.port_file.unlink()
        except FileNotFoundError:
            pass
        self.starts += 1
        argv = self.argv()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== e2e harness: start #{self.starts}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=str(self.root))
        self.port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerError(f"parleyd exited with status {rc} during startup\n"
                                  f"--- log ---\n{self.log_tail()}")
            try:
                text = self.port_file.read_text()
            except FileNotFoundError:
                text = ""
            if text.endswith("\n") and text.strip().isdigit():
                self.port = int(text.strip())
                assert 0 < self.port < 65536, f"bad port in the port file: {text!r}"
                self.expect_exit = False
                return self
            time.sleep(0.01)
        self.kill()
        raise ServerError(f"parleyd did not write its port file within {timeout}s\n"
                          f"--- log ---\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9 and reap."""
        self.expect_exit = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM; wait for the exit; return the exit status (kills and fails after timeout)."""
        assert self.proc is not None
        self.expect_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServerError(f"parleyd did not exit within {timeout}s of SIGTERM")
        return self.proc.returncode

    def stop(self) -> None:
        """Best-effort stop for teardown: SIGTERM, then SIGKILL after 5 s."""
        self.expect_exit = True
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, kill: bool = True) -> "Server":
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, since: int = 0, max_lines: int = 150) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"
        lines = text.splitlines()
        if len(lines) > max_lines:
            lines = [f"... ({len(lines) - max_lines} earlier lines omitted)"] + lines[-max_lines:]
        return "\n".join(lines)


def new_server_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="parley-e2e-", dir="/tmp"))


def remove_root(root: Path) -> None:
    if os.environ.get("PARLEY_E2E_KEEP"):
        return
    shutil.rmtree(root, ignore_errors=True)


# ===================================================================== users and devices

def random_username(prefix: str = "u") -> str:
    return f"{prefix}_{secrets.token_hex(6)}"  # matches ^[a-z0-9_.]{3,32}$


def random_password() -> str:
    return "pw-" + secrets.token_hex(8)


@dataclass
class User:
    user_id: str
    username: str
    password: str
    display_name: Optional[str] = None
    devices: list = field(default_factory=list)


@dataclass
class Device:
    user: User
    token: str
    device_id: str

    @property
    def user_id(self) -> str:
        return self.user.user_id


def register(port: int, username: Optional[str] = None, password: Optional[str] = None,
             display_name: Optional[str] = None) -> User:
    username = username or random_username()
    password = password or random_password()
    body = {"username": username, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    r = httpclient.post_json(port, "/v1/users", body)
    assert r.status == 201, f"register {username}: HTTP {r.status} {r.raw[:300]!r}"
    assert isinstance(r.body, dict) and isinstance(r.body.get("user_id"), str) and r.body["user_id"], r.body
    assert r.body.get("username") == username, r.body
    return User(r.body["user_id"], username, password, display_name)


def login(port: int, user: User, device_name: Optional[str] = None) -> Device:
    body = {"username": user.username, "password": user.password}
    if device_name is not None:
        body["device_name"] = device_name
    r = httpclient.post_json(port, "/v1/sessions", body)
    assert r.status == 201, f"login {user.username}: HTTP {r.status} {r.raw[:300]!r}"
    b = r.body
    assert isinstance(b, dict), r
    assert isinstance(b.get("token"), str) and isinstance(b.get("device_id"), str), b
    assert b.get("user_id") == user.user_id, f"login returned user_id {b.get('user_id')!r}, want {user.user_id!r}"
    d = Device(user, b["token"], b["device_id"])
    user.devices.append(d)
    return d


def auth(ws: WsClient, token: str, timeout: float = 5.0) -> tuple[dict, list]:
    """Authenticate; return (auth ok result, the events pushed before `synced`).

    Asserts the order the protocol promises: the auth reply first, then the replay (events
    only), then `synced`."""
    rid = ws.send_request("auth", token=token)
    first = ws.recv_json(timeout)
    assert first.get("re") == rid, f"the first frame after auth is not its reply: {first!r}"
    assert "ok" in first, f"auth failed: {first!r}"
    replay = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WsTimeout(f"no `synced` within {timeout}s of auth; got {replay[-5:]!r}")
        m = ws.recv_json(remaining)
        if m.get("ev") == "synced":
            return first["ok"], replay
        assert "ev" in m, f"unexpected non-event before synced: {m!r}"
        replay.append(m)


def connect(port: int, device: Device, timeout: float = 5.0, **kw: Any) -> WsClient:
    """Open a WebSocket, authenticate the device and wait for `synced`. The auth result and the
    replayed messages are available as ws.auth_result and ws.replay."""
    ws = WsClient.connect(port, timeout=timeout, **kw)
    try:
        ok, replay = auth(ws, device.token, timeout)
    except BaseException:
        ws.abort()
        raise
    assert ok.get("user_id") == device.user_id, ok
    assert ok.get("device_id") == device.device_id, ok
    ws.auth_result = ok
    ws.replay = msgs(replay)          # the replayed messages (the protocol replays `msg` events)
    ws.replay_events = replay         # every event before synced (a server may add event kinds)
    ws.device = device
    return ws


def msgs(events: list, chat: Optional[str] = None) -> list:
    return [e for e in events if e.get("ev") == "msg" and (chat is None or e.get("chat") == chat)]


def history_all(ws: WsClient, chat: str) -> list:
    """Every message of the chat, oldest first, by paging with `after`."""
    out: list = []
    after = 0
    while True:
        r = ws.ok("history", chat=chat, after=after, limit=100)
        page = r["messages"]
        assert [m["seq"] for m in page] == sorted(m["seq"] for m in page), "after-pages must be oldest-first"
        out.extend(page)
        if not r["more"]:
            return out
        assert page, "more=true with an empty page"
        after = page[-1]["seq"]


def chat_state(ws: WsClient, chat: str) -> dict:
    cs = [c for c in ws.ok("chats")["chats"] if c.get("chat") == chat]
    assert len(cs) == 1, f"chat {chat} appears {len(cs)} times in `chats`"
    return cs[0]


def new_cid() -> str:
    return "c-" + secrets.token_hex(8)


def assert_no_msg(ws: WsClient, pred=lambda m: True, wait: float = 0.2) -> None:
    """Assert that no matching `msg` event reached ws: everything the server queued before a ping
    round trip, plus a short grace period, is inspected (and stays set aside)."""
    ws.roundtrip()
    ws.drain(wait)
    bad = [m for m in ws.pending() if m.get("ev") == "msg" and pred(m)]
    assert not bad, f"unexpected msg events: {bad}"


# ===================================================================== pipelined sending

class PipelineResult:
    def __init__(self) -> None:
        self.acked: dict[str, dict] = {}        # cid -> ok result
        self.ok_order: list[tuple[int, str, int]] = []  # (frame index, cid, seq) in reply order
        self.sent: set[str] = set()             # every cid sent at least once
        self.rate_limited = 0
        self.errors: list[tuple[str, dict]] = []
        self.closed: Optional[BaseException] = None


def pipeline_send(ws: WsClient, items, window: int = 50, timeout: float = 60.0,
                  stop=None, result: Optional[PipelineResult] = None,
                  tolerate_close: bool = False) -> PipelineResult:
    """Send `send` requests ({"chat","cid","text",...} dicts from the iterable `items`) with up
    to `window` unanswered at once.

    A `rate_limited` answer (the protocol says the request then did nothing) pauses sending for
    its retry_ms and sends the same request again later, rate-limited ones in their original
    order and before new ones; the window then drops to 1 and grows by one per success. Any other error is recorded in result.errors. Returns when every
    item is answered, when stop() is true, or, with tolerate_close, when the connection dies
    (recorded in result.closed)."""
    res = result or PipelineResult()
    it = iter(items)
    retry: list = []                             # (first frame index, item), sorted
    inflight: dict[int, tuple[int, int, dict]] = {}  # request id -> (frame index, first index, item)
    frame_index = 0
    paused_until = 0.0
    limit = window                               # shrinks to 1 on rate_limited, grows on ok
    exhausted = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            if stop is not None and stop():
                return res
            now = time.monotonic()
            assert now < deadline, f"pipeline did not finish within {timeout}s ({len(res.acked)} acked)"
            while len(inflight) < limit and now >= paused_until:
                if retry:
                    first, item = retry.pop(0)
                elif not exhausted:
                    try:
                        item = next(it)
                    except StopIteration:
                        exhausted = True
                        continue
                    first = frame_index
                else:
                    break
                rid = ws.send_request("send", **item)
                inflight[rid] = (frame_index, first, item)
                frame_index += 1
                res.sent.add(item["cid"])
            if exhausted and not retry and not inflight:
                return res
            if inflight and now >= paused_until:
                wait = 0.2
            else:
                wait = max(0.001, min(0.05, paused_until - now))
            try:
                m = ws.wait_for(lambda m: m.get("re") in inflight, wait, "a send reply")
            except WsTimeout:
                continue
            idx, first, item = inflight.pop(m["re"])
            if "ok" in m:
                ok = m["ok"]
                res.acked[item["cid"]] = ok
                limit = min(window, limit + 1)
                res.ok_order.append((idx, item["cid"], ok["seq"]))
            elif isinstance(m.get("err"), dict) and m["err"].get("code") == "rate_limited":
                res.rate_limited += 1
                retry_ms = m["err"].get("retry_ms")
                assert isinstance(retry_ms, int) and retry_ms >= 0, f"rate_limited without retry_ms: {m!r}"
                paused_until = max(paused_until, time.monotonic() + retry_ms / 1000.0)
                limit = 1
                retry.append((first, item))
                retry.sort(key=lambda p: p[0])
            else:
                res.errors.append((item["cid"], m))
    except (WsClosed, OSError) as e:
        if not tolerate_close:
            raise
        res.closed = e
        return res


# ===================================================================== groups and events (additive)

def create_group(ws: WsClient, title: str, members: Iterable) -> dict:
    """group.create with the given users (User objects or ids); returns the CHAT."""
    ids = [m if isinstance(m, str) else m.user_id for m in members]
    return ws.ok("group.create", title=title, members=ids)["chat"]


def assert_no_event(ws: WsClient, pred=lambda e: True, wait: float = 0.2) -> None:
    """Like assert_no_msg, for any event (`ev` of any kind) matching pred."""
    ws.roundtrip()
    ws.drain(wait)
    bad = [m for m in ws.pending() if "ev" in m and pred(m)]
    assert not bad, f"unexpected events: {bad}"


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends on a raw socket until it closes or goes quiet for the
    socket's timeout."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return out
