// ws_client — an asynchronous WebSocket client of the Parley protocol, for the terminal client
// and the load generator: connect (optionally from a chosen local address), upgrade, then text
// frames in and out. Frames to send wait in a queue; at most one write is in flight.
//
// Thread safety: a ws_client lives on one io_context; call every method from the thread that
// runs it (post to it from elsewhere). Callbacks run there too.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace parley::client {

struct endpoint_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string path = "/v1/ws";
  std::string local_address;  // bind to this source address first (load tests); empty: any
};

class ws_client : public std::enable_shared_from_this<ws_client> {
 public:
  using message_handler = std::function<void(std::string_view frame)>;
  // Called once: the connection failed or closed. `code` is the close code (0 if none).
  using close_handler = std::function<void(int code, const std::string& reason)>;

  static std::shared_ptr<ws_client> create(boost::asio::io_context& io);
  // Frames by hand on a plain socket, parsed in place, every queued frame in one write: much
  // less CPU per frame, for the load generator (lean_ws_client.cpp).
  static std::shared_ptr<ws_client> create_lean(boost::asio::io_context& io);
  virtual ~ws_client() = default;

  // Connects and upgrades; `on_open` runs when frames can be sent (or on_close on failure).
  virtual void connect(const endpoint_address& where, std::function<void()> on_open,
                       message_handler on_message, close_handler on_close) = 0;
  virtual void send(std::string frame) = 0;
  virtual void send_shared(std::shared_ptr<const std::string> frame) = 0;
  // Starts the closing handshake with `code`.
  virtual void close(int code = 1000) = 0;
  virtual bool is_open() const = 0;
  virtual std::size_t queued_bytes() const = 0;
};

}  // namespace parley::client
