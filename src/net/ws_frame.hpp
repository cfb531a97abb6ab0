// The WebSocket wire format (RFC 6455 §5) on the server side, without I/O: an incremental
// reader that turns the bytes a client sends into messages and control frames (or the close
// code that a violation calls for), a UTF-8 validator that works across fragments, and the
// header of the unmasked frames a server writes.
//
// Why our own and not Beast's websocket::stream: Beast writes one frame per async_write (one
// syscall each, and its read path writes pongs by itself, so frames cannot be gathered), and it
// keeps ~9 KB per connection. net/ws_connection gathers every queued frame into one writev per
// loop pass and holds no buffer while a connection is idle (docs/benchmarks.md).
//
// Thread safety: a reader belongs to one connection (one thread at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley::net::ws {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes this layer decides (RFC 6455 §7.4.1).
inline constexpr int kCloseNormal = 1000;
inline constexpr int kCloseProtocolError = 1002;
inline constexpr int kCloseUnsupportedData = 1003;
inline constexpr int kCloseInvalidPayload = 1007;
inline constexpr int kCloseTooBig = 1009;

// Validates UTF-8 piece by piece (a code point may be split between pieces or fragments).
class utf8_validator {
 public:
  // False as soon as the bytes seen so far cannot be the start of valid UTF-8.
  bool feed(std::string_view bytes);
  // True when everything fed is valid and no code point is left unfinished.
  bool complete() const { return need_ == 0; }
  void reset() { need_ = 0; }

 private:
  unsigned need_ = 0;            // continuation bytes still expected
  std::uint8_t lower_ = 0x80;    // the allowed range of the next continuation byte
  std::uint8_t upper_ = 0xBF;
};

// What the reader found in the bytes given to it.
struct reader_event {
  enum class kind { message, ping, pong, close, binary, violation } what;
  // message: the whole text message; ping/pong/close: the frame's payload. Valid only during
  // the callback that receives it.
  std::string_view payload;
  int close_code = 0;  // violation: the code to close with; close: the peer's code (1005 if none)
};

// Turns client bytes into events. Feed it every byte received, in order; it keeps (copies) only
// the bytes of an unfinished frame, and the fragments of an unfinished message.
class frame_reader {
 public:
  explicit frame_reader(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Parses `data` (modified in place: payloads are unmasked there) and calls
  // `on_event(const reader_event&)` for each event; it returns false to stop (the connection
  // is closing: the rest is dropped). After a violation the reader is spent.
  template <class OnEvent>
  void feed(char* data, std::size_t size, OnEvent&& on_event) {
    if (failed_ || stopped_) return;
    if (!has_partial()) {
      auto used = parse(data, size, on_event);
      if (!failed_ && !stopped_ && used < size) held().partial.assign(data + used, size - used);
    } else {
      auto& partial = held_->partial;
      partial.append(data, size);
      auto used = parse(partial.data(), partial.size(), on_event);
      if (!failed_ && !stopped_) partial.erase(0, used);
    }
  }

  // From inside the callback: stop after this event and keep the bytes not parsed yet, until
  // resume() (the connection's replies are backing up: it reads no further for now).
  void pause() { pause_requested_ = true; }
  // Parses what a pause left unparsed.
  template <class OnEvent>
  void resume(OnEvent&& on_event) {
    if (has_partial()) feed(held_->partial.data(), 0, on_event);
  }
  // True once a violation or the callback ended parsing for good.
  bool spent() const { return failed_ || stopped_; }

  // Releases held buffers that are empty (call when the connection goes idle).
  void trim();
  // Bytes held while waiting for the rest of a frame or message.
  std::size_t held_bytes() const {
    return held_ ? sizeof(held_state) + heap_bytes(held_->partial) + heap_bytes(held_->message) : 0;
  }

 private:
  // What only an unfinished frame or message needs: allocated then, released by trim(), so an
  // idle connection's reader is a few words (part of the per-connection memory budget).
  struct held_state {
    std::string partial;  // an unfinished frame (header and payload so far), still masked
    std::string message;  // the fragments of an unfinished text message, unmasked
  };
  held_state& held() {
    if (!held_) held_ = std::make_unique<held_state>();
    return *held_;
  }
  bool has_partial() const { return held_ && !held_->partial.empty(); }
  static std::size_t heap_bytes(const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() : 0;  // beyond the inline buffer
  }
  enum class step { incomplete, event, no_event };
  // Parses one frame at `data`; on `event`/`no_event` sets `frame_size`.
  step parse_frame(char* data, std::size_t size, std::size_t& frame_size, reader_event& ev);
  step fail(reader_event& ev, int code);

  template <class OnEvent>
  std::size_t parse(char* data, std::size_t size, OnEvent& on_event) {
    std::size_t pos = 0;
    while (pos < size) {
      reader_event ev{reader_event::kind::message, {}, 0};
      std::size_t frame_size = 0;
      auto s = parse_frame(data + pos, size - pos, frame_size, ev);
      if (s == step::incomplete) break;
      pos += frame_size;
      if (s == step::event) {
        bool go_on = on_event(static_cast<const reader_event&>(ev));
        after_event(ev);
        if (!go_on || failed_) {
          stopped_ = true;
          break;
        }
        if (pause_requested_) {
          pause_requested_ = false;
          break;  // the rest stays in held_->partial until resume()
        }
      }
    }
    return pos;
  }
  void after_event(const reader_event& ev);

  std::size_t max_message_;
  std::unique_ptr<held_state> held_;
  bool in_message_ = false;  // a fragmented text message is being received
  bool failed_ = false;
  bool stopped_ = false;
  bool pause_requested_ = false;
  utf8_validator utf8_;
};

// The length of the header of an unmasked frame of `payload_size` bytes (2, 4 or 10).
constexpr std::size_t frame_header_size(std::size_t payload_size) {
  return payload_size < 126 ? 2 : payload_size <= 0xFFFF ? 4 : 10;
}

// The header of an unmasked, final frame of `payload_size` bytes: written into `out` (at least
// 10 bytes); returns its length, frame_header_size(payload_size).
std::size_t write_frame_header(opcode op, std::size_t payload_size, std::uint8_t* out);

// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2).
std::string accept_key(std::string_view client_key);

}  // namespace parley::net::ws
