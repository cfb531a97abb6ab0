"""The terminal client `parley` against a real parleyd: every command, as a user runs it."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import harness
import httpclient

REPO = Path(__file__).resolve().parents[2]


def parley_binary() -> Path:
    return Path(os.environ.get("PARLEY_CLI", REPO / "build" / "parley"))


class Cli:
    """Runs `parley` as one person: its own config dir (the saved session) and password."""

    def __init__(self, server, home: Path, password: str):
        self.url = f"http://127.0.0.1:{server.port}"
        self.env = dict(os.environ, XDG_CONFIG_HOME=str(home), PARLEY_PASSWORD=password)

    def run(self, *args, check=True, stdin=None, timeout=15):
        p = subprocess.run([str(parley_binary()), "--server", self.url, *args], env=self.env,
                           input=stdin, capture_output=True, text=True, timeout=timeout)
        if check:
            assert p.returncode == 0, f"parley {' '.join(args)} failed: {p.stderr}"
        return p

    def json(self, *args):
        return json.loads(self.run("--json", *args).stdout)


@pytest.fixture
def pair(server, tmp_path):
    a_name, b_name = harness.random_username("cli"), harness.random_username("cli")
    a = Cli(server, tmp_path / "a", harness.random_password())
    b = Cli(server, tmp_path / "b", harness.random_password())
    for cli, name in ((a, a_name), (b, b_name)):
        assert "registered" in cli.run("register", name).stdout
        assert "logged in" in cli.run("login", name).stdout
    return a, a_name, b, b_name


def test_login_saves_the_token_privately(pair, tmp_path):
    path = tmp_path / "a" / "parley" / "session.json"
    saved = json.loads(path.read_text())
    assert len(saved["token"]) >= 40 and saved["user_id"] and saved["device_id"]
    assert path.stat().st_mode & 0o077 == 0, "the token file must be private"


def test_send_chats_and_history(pair):
    a, a_name, b, b_name = pair
    text = "hello <b>bob</b> \u2603"
    out = a.json("send", b_name, text)
    assert out["seq"] == 1 and out["dup"] is False
    chats = b.json("chats")["chats"]
    assert len(chats) == 1 and chats[0]["unread"] == 1
    assert chats[0]["last_msg"]["text"] == text
    listing = b.run("chats").stdout
    assert a_name in listing and "1 unread" in listing
    history = b.json("history", a_name)["messages"]
    assert [m["text"] for m in history] == [text]
    assert text in b.run("history", a_name).stdout
    # By chat id too.
    assert b.json("history", chats[0]["chat"])["messages"][0]["seq"] == 1


def test_tail_streams_live_messages(pair):
    a, a_name, b, b_name = pair
    a.run("send", b_name, "before tail")
    proc = subprocess.Popen([str(parley_binary()), "--server", b.url, "--json", "tail"],
                            env=b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # replayed (not acked yet)
        assert first["ev"] == "msg" and first["text"] == "before tail"
        a.run("send", b_name, "live")
        second = json.loads(proc.stdout.readline())
        assert second["ev"] == "msg" and second["text"] == "live" and second["seq"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    # tail acked what it showed: a new tail replays nothing old.
    p = subprocess.run(["timeout", "2", str(parley_binary()), "--server", b.url, "--json", "tail"],
                       env=b.env, capture_output=True, text=True)
    assert p.stdout.strip() == ""


def test_interactive_chat_sends_each_line(pair):
    a, a_name, b, b_name = pair
    a.run("chat", b_name, stdin="first line\nsecond line\n")
    texts = [m["text"] for m in b.json("history", a_name)["messages"]]
    assert texts == ["second line", "first line"]


def test_errors_are_clear(pair, server, tmp_path):
    a, a_name, b, b_name = pair
    p = a.run("send", "nobody_here_123", "x", check=False)
    assert p.returncode == 1 and "no user named" in p.stderr
    stranger = Cli(server, tmp_path / "s", "password1")
    p = stranger.run("chats", check=False)
    assert p.returncode == 1 and "not logged in" in p.stderr
    p = stranger.run("login", a_name, check=False)
    assert p.returncode == 1 and "unauthenticated" in p.stderr
    p = a.run("frobnicate", check=False)
    assert p.returncode == 2


def test_logout_ends_the_session(pair):
    a, a_name, b, b_name = pair
    token = json.loads((Path(a.env["XDG_CONFIG_HOME"]) / "parley" / "session.json").read_text())["token"]
    assert "logged out" in a.run("logout").stdout
    status, _ = httpclient.delete(int(a.url.rsplit(":", 1)[1]), "/v1/sessions/current", token=token)
    assert status == 401
    p = a.run("chats", check=False)
    assert p.returncode == 1
