// net::server — one port for HTTP/1.1 and WebSocket. Each shard accepts on its own socket
// (SO_REUSEPORT), so accepting takes no lock and connections spread over the cores.
//
// HTTP requests are handed to an http_handler on a worker pool (handlers may block: password
// hashing, store reads); an upgrade on `ws_path` becomes a connection given to ws_open.
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
#include <string>

#include "net/connection.hpp"
#include "net/shard_pool.hpp"

namespace parley::net {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;
// Runs on the worker pool; may block. `remote` is the peer's address.
using http_handler = std::function<http_response(const http_request& req, const std::string& remote)>;
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
  std::chrono::milliseconds idle_timeout{15'000};    // 3 heartbeat intervals
  std::chrono::milliseconds write_timeout{30'000};  // a write stuck this long drops the peer
  std::chrono::milliseconds sweep_interval{1'000};
};

class server {
 public:
  server(shard_pool& shards, boost::asio::thread_pool& workers, server_options opts,
         http_handler on_http, ws_open_handler on_ws);
  ~server();

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
