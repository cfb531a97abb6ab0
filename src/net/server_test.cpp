// net::server on a real loopback socket, driven by Beast's synchronous client: routing,
// frames, limits, backpressure, deadlines and shutdown, with no chat or JSON involved.
#include "net/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace parley::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Echoes every text frame; "flood N" sends N frames of 1 KiB; "deadline" arms a 100 ms
// deadline with code 4001; "stall N" holds the shard's thread for N ms.
class echo_handler final : public connection_handler {
 public:
  explicit echo_handler(std::shared_ptr<connection> c) : conn(std::move(c)) {}
  void on_text(std::string_view frame) override {
    if (frame.starts_with("flood ")) {
      int n = std::stoi(std::string(frame.substr(6)));
      auto chunk = std::make_shared<const std::string>(1024, 'x');
      for (int i = 0; i < n; ++i) conn->send(chunk);
    } else if (frame.starts_with("stall ")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(std::string(frame.substr(6)))));
    } else if (frame == "deadline") {
      conn->set_deadline(steady_now_ms() + 100, 4001);
    } else {
      conn->send(std::make_shared<const std::string>(frame));
    }
  }
  void on_closed() override { closed = true; }
  std::shared_ptr<connection> conn;
  std::atomic<bool> closed{false};
};

class NetServerTest : public ::testing::Test {
 protected:
  void start(server_options opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    srv = std::make_unique<server>(
        shards, workers, opts,
        [](const http_request& req, const std::string& remote) {
          http_response res{http::status::ok, req.version()};
          res.body() = std::string(req.target()) + " from " + remote;
          return res;
        },
        [this](std::shared_ptr<connection> c, const http_request&) {
          auto h = std::make_shared<echo_handler>(std::move(c));
          std::lock_guard lock(mutex);
          handlers.push_back(h);
          return h;
        });
    srv->start();
    shards.start();
  }
  void TearDown() override {
    if (srv) srv->stop(1001, 500ms);
    shards.stop();
    workers.join();
  }

  websocket::stream<tcp::socket> connect_ws(const std::string& path = "/v1/ws") {
    websocket::stream<tcp::socket> ws(client_io);
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), srv->port()});
    ws.handshake("127.0.0.1", path);
    return ws;
  }
  // Reads frames until the server closes; returns the close code.
  int read_until_close(websocket::stream<tcp::socket>& ws, std::size_t* frames = nullptr) {
    beast::flat_buffer buf;
    for (;;) {
      beast::error_code ec;
      ws.read(buf, ec);
      if (ec == websocket::error::closed) return ws.reason().code;
      if (ec) {
        ADD_FAILURE() << "read ended with " << ec.message() << " instead of a close frame";
        return -1;
      }
      if (frames) ++*frames;
      buf.consume(buf.size());
    }
  }

  shard_pool shards{2};
  asio::thread_pool workers{2};
  std::unique_ptr<server> srv;
  asio::io_context client_io;
  std::mutex mutex;
  std::vector<std::shared_ptr<echo_handler>> handlers;
};

TEST_F(NetServerTest, HttpRequestsReachTheHandlerOnKeepAliveConnections) {
  start();
  tcp::socket s(client_io);
  s.connect({asio::ip::make_address("127.0.0.1"), srv->port()});
  for (const char* target : {"/a", "/b?x=1"}) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res.body(), std::string(target) + " from 127.0.0.1");
  }
}

TEST_F(NetServerTest, TextFramesRoundTrip) {
  start();
  auto ws = connect_ws();
  ws.text(true);
  ws.write(asio::buffer(std::string("hello")));
  beast::flat_buffer buf;
  ws.read(buf);
  EXPECT_TRUE(ws.got_text());
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "hello");
}

// The peer's last frame and its end of the stream arrive while the shard is busy: one report
// of the socket carries both, and the connection must read past its short read to see the end
// (no later report comes), not wait for the idle timeout.
TEST_F(NetServerTest, APeerThatSendsItsLastFrameAndHangsUpIsSeenGoneAtOnce) {
  start({.idle_timeout = 60s});
  auto ws = connect_ws();
  ws.text(true);
  ws.write(asio::buffer(std::string("stall 300")));
  ws.write(asio::buffer(std::string("last")));
  ws.next_layer().shutdown(tcp::socket::shutdown_send);
  // The server ends the connection (the echo of "last" may or may not go out first: a peer
  // that hung up without a close frame is gone), long before the idle timeout.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::shared_ptr<echo_handler> h;
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(handlers.size(), 1u);
    h = handlers[0];
  }
  while (!h->closed && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(h->closed);
}

TEST_F(NetServerTest, WebSocketOnAnotherPathIs404) {
  start();
  websocket::stream<tcp::socket> ws(client_io);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), srv->port()});
  beast::error_code ec;
  ws.handshake("127.0.0.1", "/elsewhere", ec);
  EXPECT_EQ(ec, websocket::error::upgrade_declined);
}

TEST_F(NetServerTest, BinaryFramesClose1003) {
  start();
  auto ws = connect_ws();
  ws.binary(true);
  ws.write(asio::buffer(std::string("\x01\x02", 2)));
  EXPECT_EQ(read_until_close(ws), 1003);
}

TEST_F(NetServerTest, OversizedMessagesClose1009EvenWhenFragmented) {
  server_options opts;
  opts.max_frame_bytes = 4096;
  start(opts);
  auto ws = connect_ws();
  ws.text(true);
  std::string piece(1500, 'a');
  beast::error_code ec;
  for (int i = 0; i < 3 && !ec; ++i) ws.write_some(false, asio::buffer(piece), ec);
  if (!ec) ws.write_some(true, asio::buffer(piece), ec);
  EXPECT_EQ(read_until_close(ws), 1009);
}

TEST_F(NetServerTest, ASlowConsumerIsClosedWith1013AndItsBacklogDropped) {
  server_options opts;
  opts.outbound_max_bytes = 256 * 1024;
  start(opts);
  auto ws = connect_ws();
  ws.text(true);
  // 64 MiB asked while the client reads nothing: far more than the socket buffers hold.
  ws.write(asio::buffer(std::string("flood 65536")));
  std::this_thread::sleep_for(300ms);
  std::size_t frames = 0;
  EXPECT_EQ(read_until_close(ws, &frames), 1013);
  EXPECT_LT(frames, 65536u);
}

TEST_F(NetServerTest, SilentConnectionsAreClosedAndActiveOnesKept) {
  server_options opts;
  opts.idle_timeout = 300ms;
  opts.sweep_interval = 50ms;
  start(opts);
  auto silent = connect_ws();
  auto active = connect_ws();
  active.text(true);
  auto until = std::chrono::steady_clock::now() + 700ms;
  beast::flat_buffer buf;
  while (std::chrono::steady_clock::now() < until) {
    active.ping({});  // control frames count as activity
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(read_until_close(silent), 1001);
  active.write(asio::buffer(std::string("still here")));
  active.read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "still here");
}

TEST_F(NetServerTest, DeadlinesCloseWithTheirCode) {
  server_options opts;
  opts.sweep_interval = 20ms;
  start(opts);
  auto ws = connect_ws();
  ws.text(true);
  ws.write(asio::buffer(std::string("deadline")));
  EXPECT_EQ(read_until_close(ws), 4001);
}

TEST_F(NetServerTest, StopClosesEveryConnectionWithTheGivenCode) {
  start();
  auto a = connect_ws();
  auto b = connect_ws();
  std::thread stopper([&] { srv->stop(1012, 2000ms); });
  EXPECT_EQ(read_until_close(a), 1012);
  EXPECT_EQ(read_until_close(b), 1012);
  stopper.join();
  EXPECT_EQ(srv->connection_count(), 0u);
  std::lock_guard lock(mutex);
  for (auto& h : handlers) EXPECT_TRUE(h->closed);
}

}  // namespace
}  // namespace parley::net
