"""Fixtures of the Parley end-to-end suite: server processes, users, devices, WebSockets."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Device, Server, User  # noqa: E402
from wsclient import WsClient  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("PARLEY_E2E_TEST_TIMEOUT", "120"))


# ===================================================================== reporting

def _watch(node, server: Server) -> None:
    """Remember a server (and where its log stood) so a failure report shows its log."""
    watched = node.__dict__.setdefault("_parley_watch", [])
    if all(s is not server for s, _ in watched):
        watched.append((server, server.log_size()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, (srv, since) in enumerate(item.__dict__.get("_parley_watch", [])):
            state = "running" if srv.alive() else f"exited {srv.proc.returncode if srv.proc else '-'}"
            rep.sections.append((f"parleyd #{i} log ({srv.log_path}, {state}, from this test on)",
                                 srv.log_tail(since)))


@pytest.fixture(autouse=True)
def _per_test_timeout():
    """A hard stop so that no test can hang the suite (each read has its own timeout too)."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded PARLEY_E2E_TEST_TIMEOUT={TEST_TIMEOUT}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def rng() -> random.Random:
    seed = int(os.environ.get("PARLEY_E2E_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"\n[parley e2e] random seed: PARLEY_E2E_SEED={seed}")
    return random.Random(seed)


# ===================================================================== servers

def _check_survived(server: Server) -> Optional[str]:
    if server.proc is not None and server.proc.poll() is not None and not server.expect_exit:
        return (f"parleyd died during the test (exit status {server.proc.returncode})\n"
                f"{server.log_tail()}")
    return None


class ServerFactory:
    def __init__(self, node):
        self.node = node
        self.servers: list[Server] = []

    def __call__(self, durability: str = "sync", heartbeat_ms: Optional[int] = None,
                 auth_timeout_ms: Optional[int] = None, extra_args=(), start: bool = True) -> Server:
        srv = Server(harness.new_server_root(), durability=durability,
                     heartbeat_ms=heartbeat_ms, auth_timeout_ms=auth_timeout_ms,
                     extra_args=extra_args)
        self.servers.append(srv)
        _watch(self.node, srv)
        if start:
            srv.start()
        return srv


@pytest.fixture
def server_factory(request):
    """Start fresh servers with custom flags; each is stopped and its data dir removed afterwards
    (kept when the test failed, or when PARLEY_E2E_KEEP is set)."""
    f = ServerFactory(request.node)
    yield f
    problems = [p for p in (_check_survived(s) for s in f.servers) if p]
    for s in f.servers:
        s.stop()
    failed = getattr(request.node, "_parley_failed", False)
    for s in f.servers:
        if not failed and not problems:
            harness.remove_root(s.root)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


class _ModuleServer:
    def __init__(self) -> None:
        self.server: Optional[Server] = None

    def ensure(self) -> Server:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.stop()
            self.server = Server(harness.new_server_root()).start()
        return self.server


@pytest.fixture(scope="module")
def _module_server():
    holder = _ModuleServer()
    yield holder
    if holder.server is not None:
        holder.server.stop()
        harness.remove_root(holder.server.root)


@pytest.fixture
def server(request, _module_server) -> Server:
    """A server with default flags, shared by the tests of a module (tests use fresh users, so
    they do not see each other). A test that makes it die fails, and the next one gets a new one."""
    srv = _module_server.ensure()
    _watch(request.node, srv)
    yield srv
    problem = _check_survived(srv)
    if problem:
        _module_server.server = None  # the next test starts a new one (this one's dir is kept)
        pytest.fail(problem, pytrace=False)


# ===================================================================== users, devices, sockets

class Parley:
    """Protocol helpers bound to one server; closes every WebSocket it opened at teardown."""

    def __init__(self, server: Server):
        self.server = server
        self.sockets: list[WsClient] = []

    @property
    def port(self) -> int:
        return self.server.port

    def user(self, devices: int = 1, display_name: Optional[str] = None,
             username: Optional[str] = None) -> User:
        u = harness.register(self.port, username=username, display_name=display_name)
        for _ in range(devices):
            harness.login(self.port, u)
        return u

    def login(self, user: User, device_name: Optional[str] = None) -> Device:
        return harness.login(self.port, user, device_name)

    def connect(self, device: Device, **kw: Any) -> WsClient:
        ws = harness.connect(self.port, device, **kw)
        self.sockets.append(ws)
        return ws

    def raw_ws(self, **kw: Any) -> WsClient:
        """An unauthenticated WebSocket."""
        ws = WsClient.connect(self.port, **kw)
        self.sockets.append(ws)
        return ws

    def open_chat(self, ws: WsClient, peer: User) -> dict:
        return ws.ok("chat.open", peer=peer.user_id)["chat"]

    def close_all(self) -> None:
        for ws in self.sockets:
            ws.abort()
        self.sockets.clear()


@pytest.fixture
def parley(server) -> Parley:
    p = Parley(server)
    yield p
    p.close_all()


@pytest.fixture
def parley_for(request):
    """parley_for(server) -> a Parley bound to a server from server_factory."""
    made: list[Parley] = []

    def make(srv: Server) -> Parley:
        p = Parley(srv)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is not None:
        item._parley_failed = True
