"""parley-bench and parley-admin against a real parleyd: a quick run of every scenario that
checks counts (everything sent is acked and delivered, every backlog replayed), never speed."""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH_FLAGS = ["--rate-per-sec", "0", "--max-unauth-per-ip", "0", "--max-connections-per-user", "0"]


def tool(name: str) -> str:
    return str(Path(os.environ.get("PARLEY_TOOLS_DIR", REPO / "build")) / name)


@pytest.fixture
def bench_server(server_factory):
    srv = server_factory(extra_args=BENCH_FLAGS, start=False)
    tokens = srv.root / "tokens.tsv"
    with open(tokens, "w") as out:
        subprocess.run([tool("parley-admin"), "provision", "--data-dir", str(srv.data_dir),
                        "--users", "60"], stdout=out, check=True, timeout=60)
    assert len(tokens.read_text().splitlines()) == 60
    srv.start()
    return srv, tokens


def bench(srv, tokens, *args):
    p = subprocess.run([tool("parley-bench"), *args, "--server", f"127.0.0.1:{srv.port}",
                        "--tokens", str(tokens), "--json", "--threads", "2"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_provisioned_users_can_log_in(bench_server):
    import httpclient
    srv, tokens = bench_server
    username = tokens.read_text().splitlines()[0].split("\t")[0]
    status, body = httpclient.post_json(srv.port, "/v1/sessions",
                                        {"username": username, "password": "bench-password"})
    assert status == 201, body


def test_direct(bench_server):
    srv, tokens = bench_server
    r = bench(srv, tokens, "direct", "--pairs", "5", "--rate", "200", "--duration", "1",
              "--warmup", "0.5")
    assert r["errors"] == 0 and r["closed connections"] == 0
    assert r["sent"] > 0 and r["acked ok"] == r["sent"]
    # Every message sent in the measured window was acked and delivered to the peer.
    assert r["latency_us"]["send->ack"]["count"] == r["latency_us"]["send->deliver"]["count"] > 0
    assert "server cpu % (of one core)" in r


def test_group(bench_server):
    srv, tokens = bench_server
    r = bench(srv, tokens, "group", "--groups", "2", "--members", "10", "--rate", "40",
              "--duration", "1", "--warmup", "0.5")
    assert r["errors"] == 0 and r["closed connections"] == 0 and r["acked ok"] == r["sent"]
    measured = r["latency_us"]["send->ack"]["count"]
    assert measured > 0
    assert r["latency_us"]["send->deliver"]["count"] == 9 * measured  # every other member
    assert r["latency_us"]["send->last recipient"]["count"] == measured


def test_reconnect(bench_server):
    srv, tokens = bench_server
    r = bench(srv, tokens, "reconnect", "--devices", "8", "--backlog", "25")
    assert r["devices synced"] == 8
    assert r["messages replayed"] == r["expected replayed"] == 200


def test_idle(bench_server):
    srv, tokens = bench_server
    r = bench(srv, tokens, "idle", "--connections", "50", "--duration", "1")
    assert r["connections authenticated"] == 50
    assert r["connections closed by the server"] == 0
    assert "server rss bytes per connection" in r
