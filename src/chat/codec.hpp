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
  // `chat` event: the chat after a membership or title change.
  virtual frame_ptr chat_event(const chat_record& c) const = 0;
  // `receipt` event: `user`'s `kind` cursor ("delivered" or "read") of `chat` moved to `seq`.
  virtual frame_ptr receipt_event(std::string_view chat, std::string_view user,
                                  std::string_view kind, seq_t seq) const = 0;
  // `read_sync` event: the user's read cursor of `chat` moved to `seq`.
  virtual frame_ptr read_sync_event(std::string_view chat, seq_t seq) const = 0;
  // `typing` event.
  virtual frame_ptr typing_event(std::string_view chat, std::string_view user, bool on) const = 0;
  // `presence` event.
  virtual frame_ptr presence_event(const presence_state& p) const = 0;
};

}  // namespace parley::chat
