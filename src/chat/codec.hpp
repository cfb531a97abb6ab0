// chat::codec — the port through which the domain gets the wire form of what it stores and
// pushes, without knowing JSON. Implemented by proto.
//
// Thread safety: implementations are stateless; every method may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "chat/requests.hpp"
#include "chat/types.hpp"

namespace parley::chat {

class codec {
 public:
  virtual ~codec() = default;
  // The MSG object of PROTOCOL §3, as stored and as served by history and replay.
  virtual std::string encode_message(const message& m) const = 0;
  // The `msg` event frame for a stored MSG object (built from it without re-encoding).
  virtual frame_ptr message_event(std::string_view encoded_message) const = 0;
  // The `synced` event frame.
  virtual frame_ptr synced_event() const = 0;
};

}  // namespace parley::chat
