// A WebSocket connection as the rest of the server sees it: text frames in, shared frames out.
//
// Outbound frames wait in a bounded queue; a connection whose queue passes its bound is closed
// with 1013 (a slow consumer never makes the server's memory grow). At most one write is in
// flight; when a write completes, the next one starts.
//
// Thread safety: send() and close() may be called from any thread (they post to the
// connection's shard when needed); the other methods only on the connection's shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace parley::net {

using frame_ptr = std::shared_ptr<const std::string>;

class connection {
 public:
  virtual ~connection() = default;

  virtual std::size_t shard() const = 0;
  virtual const std::string& remote_address() const = 0;

  // Queues one text frame; does nothing once the connection is closing.
  virtual void send(frame_ptr frame) = 0;
  // Starts the closing handshake with `code` once the queued frames are written (with 1013,
  // a slow consumer's, they are dropped instead). Further sends do nothing.
  virtual void close(int code) = 0;

  virtual std::size_t queued_bytes() const = 0;
  // Runs `fn` on this shard once the queue is at or below the low-water mark (posted right
  // away if it already is). Dropped if the connection closes first.
  virtual void when_drained(std::function<void()> fn) = 0;
  // Closes the connection with `code` if it is still open at `deadline_ms` (steady clock,
  // milliseconds); 0 cancels. Used for the `auth` deadline.
  virtual void set_deadline(std::int64_t deadline_ms, int code) = 0;
};

// What the server does with a connection's traffic; created for each accepted WebSocket.
// Its methods run on the connection's shard, one at a time.
class connection_handler {
 public:
  virtual ~connection_handler() = default;
  virtual void on_text(std::string_view frame) = 0;
  // The connection is gone for the application: the server started closing it, or it ended.
  // No more calls follow.
  virtual void on_closed() = 0;
};

// Milliseconds of the steady clock, the unit of set_deadline.
std::int64_t steady_now_ms();

}  // namespace parley::net
