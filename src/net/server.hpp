// net::server — one port for HTTP/1.1 and WebSocket. Each shard accepts on its own socket
// (SO_REUSEPORT), so accepting takes no lock and connections spread over the cores.
//
// HTTP requests are handed to an http_handler on a worker pool (handlers may block: password
// hashing, store reads); an upgrade on `ws_path` becomes a connection given to ws_open.
// Large bodies stream both ways without being held in memory: an upload_handler may take a
// request's body piece by piece (a body_sink), and a reply may carry a body_source that is
// read piece by piece on the worker pool while it is written.
// Deadlines: the request head and body must arrive within handshake_timeout; a WebSocket that
// receives nothing (no frame, no control frame) for idle_timeout is closed with 1001; a
// per-shard sweep checks these deadlines (no timer per connection). A peer that stops reading
// is dropped once one write has made no progress for write_timeout.
//
// Thread safety: start/stop from one thread; port() after start from any thread.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "net/connection.hpp"
#include "net/shard_pool.hpp"

namespace parley::net {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_request_head = boost::beast::http::request_header<>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// The body of a reply too large to hold in memory (a media download). read() runs on the
// worker pool and may block; it returns 0 at the end, and throws to abort the reply (the
// connection is then cut: the head is already out).
class body_source {
 public:
  virtual ~body_source() = default;
  virtual std::size_t read(char* out, std::size_t capacity) = 0;
};

// A reply: the response, and when `body` is set, the source of its body (the response's own
// body is then ignored; its Content-Length must give the exact number of bytes `body` yields).
struct http_reply {
  http_reply() = default;
  http_reply(http_response r) : response(std::move(r)) {}  // NOLINT: implicit on purpose
  http_reply(http_response r, std::unique_ptr<body_source> b)
      : response(std::move(r)), body(std::move(b)) {}
  http_response response;
  std::unique_ptr<body_source> body;
};

// Runs on the worker pool; may block. `remote` is the peer's address.
using http_handler = std::function<http_reply(const http_request& req, const std::string& remote)>;

// Takes a request body as it arrives. Its methods run on the worker pool, one at a time, and
// may block. Destroyed without finish() when the body did not arrive whole (the peer went
// away, a deadline passed): it must then discard what it took.
class body_sink {
 public:
  virtual ~body_sink() = default;
  // The next piece of the body. A response ends the request with it at once (the rest of the
  // body is not read, and the connection closes after the response).
  virtual std::optional<http_response> write(std::string_view piece) = 0;
  // The whole body has arrived.
  virtual http_response finish() = 0;
};

// Decides from a request's head how its body is taken: nothing (read it into memory and call
// the http_handler as usual), a body_sink (stream it), or a response to answer at once without
// reading the body (401, 413, ... ; the connection then closes).
using upload_decision = std::variant<std::monostate, std::unique_ptr<body_sink>, http_response>;
// `wants` runs on the shard (cheap: method and path only) and says whether `decide` (on the
// worker pool, may block) should see the request.
struct upload_handler {
  std::function<bool(const http_request_head& head)> wants;
  std::function<upload_decision(const http_request_head& head, const std::string& remote)> decide;
};
// Runs on the connection's shard once the upgrade is accepted; `upgrade` is the request that
// asked for it (its Origin, Host, ...). Returns the handler of the new connection.
using ws_open_handler = std::function<std::shared_ptr<connection_handler>(
    std::shared_ptr<connection>, const http_request& upgrade)>;

struct server_options {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::string ws_path = "/v1/ws";
  std::size_t max_frame_bytes = 64 * 1024;         // 1009 past it (after reassembly)
  std::size_t outbound_max_bytes = 4 * 1024 * 1024;  // 1013 past it
  std::size_t outbound_low_water = 64 * 1024;
  std::size_t http_body_max = 1024 * 1024;           // 413 past it
  std::chrono::milliseconds handshake_timeout{10'000};
  // A streamed body or reply that makes no progress for this long ends the connection.
  std::chrono::milliseconds stream_idle_timeout{30'000};
  // A streamed request body must arrive whole within this (100 MiB at ~30 KB/s).
  std::chrono::milliseconds stream_max_duration{3'600'000};
  std::chrono::milliseconds idle_timeout{15'000};    // 3 heartbeat intervals
  std::chrono::milliseconds write_timeout{30'000};  // a write stuck this long drops the peer
  std::chrono::milliseconds sweep_interval{1'000};
};

class server {
 public:
  server(shard_pool& shards, boost::asio::thread_pool& workers, server_options opts,
         http_handler on_http, ws_open_handler on_ws);
  ~server();

  // Before start(): where streamed request bodies go (none by default).
  void set_upload_handler(upload_handler handler);
  // Before start(): the pool that runs body_sink and body_source calls (blob store I/O), so
  // that slow storage never queues password hashing and the other handlers behind it. Default:
  // the worker pool.
  void set_stream_pool(boost::asio::thread_pool& pool);
  // Binds and listens on every shard; throws std::runtime_error on failure.
  void start();
  std::uint16_t port() const;
  // Stops accepting, closes every WebSocket with `close_code`, and waits up to `grace` for
  // the connections to finish closing. Call from a thread that is not a shard.
  void stop(int close_code, std::chrono::milliseconds grace);
  // Open WebSocket connections (approximate while they change).
  std::size_t connection_count() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::net
