// chat::endpoint — one authenticated connection as the domain sees it: somewhere to push frames.
// Implemented by the server over a net connection.
//
// Thread safety: push, queued_bytes and when_drained are called only on the endpoint's shard
// (shard()); close may be called from any thread. An endpoint stays valid as long as a
// shared_ptr to it is held, also after it closed (then push does nothing).
#pragma once

#include <cstddef>
#include <functional>

#include "chat/requests.hpp"
#include "chat/types.hpp"

namespace parley::chat {

class endpoint {
 public:
  virtual ~endpoint() = default;
  virtual std::size_t shard() const = 0;
  // The device this endpoint serves; set before attach and unchanged while attached (the hub
  // keys its registry by views into it instead of copies).
  virtual const session_info& who() const = 0;
  // Queues a frame for sending. A connection whose queue grows past its bound closes itself
  // (1013); nothing is lost since its cursors stay where its acks left them.
  virtual void push(frame_ptr frame) = 0;
  // Bytes queued and not yet written.
  virtual std::size_t queued_bytes() const = 0;
  // Runs `fn` once, on the endpoint's shard, when the queue has drained below its low-water
  // mark (right away, posted, if it already has). Never runs if the endpoint closes first.
  virtual void when_drained(std::function<void()> fn) = 0;
  // Closes the connection with a WebSocket close code (PROTOCOL §5).
  virtual void close(int code) = 0;
};

}  // namespace parley::chat
