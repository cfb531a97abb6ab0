#include "net/ws_frame.hpp"

#include <openssl/sha.h>

#include <cstring>

#include "util/crypto.hpp"

namespace parley::net::ws {

bool utf8_validator::feed(std::string_view bytes) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    if (need_ == 0) {
      // ASCII runs are the common case: skip them eight bytes at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      std::uint8_t b = *p++;
      if (b < 0x80) continue;
      lower_ = 0x80;
      upper_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b == 0xE0) {
        need_ = 2;
        lower_ = 0xA0;  // no overlong three-byte forms
      } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
        need_ = 2;
      } else if (b == 0xED) {
        need_ = 2;
        upper_ = 0x9F;  // no UTF-16 surrogates
      } else if (b == 0xF0) {
        need_ = 3;
        lower_ = 0x90;  // no overlong four-byte forms
      } else if (b >= 0xF1 && b <= 0xF3) {
        need_ = 3;
      } else if (b == 0xF4) {
        need_ = 3;
        upper_ = 0x8F;  // nothing above U+10FFFF
      } else {
        return false;
      }
    } else {
      std::uint8_t b = *p++;
      if (b < lower_ || b > upper_) return false;
      lower_ = 0x80;
      upper_ = 0xBF;
      --need_;
    }
  }
  return true;
}

namespace {

bool valid_close_code(int code) {
  // RFC 6455 §7.4: codes a peer may send (1004-1006 and 1015 are reserved for reporting).
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

void unmask(char* payload, std::size_t size, const std::uint8_t key[4]) {
  // Word at a time: the key repeats every four bytes.
  std::uint32_t key32;
  std::memcpy(&key32, key, 4);
  std::uint64_t key64 = (static_cast<std::uint64_t>(key32) << 32) | key32;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, payload + i, 8);
    word ^= key64;
    std::memcpy(payload + i, &word, 8);
  }
  for (; i < size; ++i) payload[i] = static_cast<char>(payload[i] ^ key[i % 4]);
}

}  // namespace

frame_reader::step frame_reader::fail(reader_event& ev, int code) {
  failed_ = true;
  ev.what = reader_event::kind::violation;
  ev.close_code = code;
  return step::event;
}

frame_reader::step frame_reader::parse_frame(char* data, std::size_t size, std::size_t& frame_size,
                                             reader_event& ev) {
  if (size < 2) return step::incomplete;
  const auto b0 = static_cast<std::uint8_t>(data[0]);
  const auto b1 = static_cast<std::uint8_t>(data[1]);
  const bool fin = b0 & 0x80;
  const auto op = static_cast<opcode>(b0 & 0x0F);
  const bool control = (b0 & 0x08) != 0;
  if (b0 & 0x70) return fail(ev, kCloseProtocolError);  // no extension was negotiated
  if (op != opcode::continuation && op != opcode::text && op != opcode::binary &&
      op != opcode::close && op != opcode::ping && op != opcode::pong) {
    return fail(ev, kCloseProtocolError);
  }
  if (!(b1 & 0x80)) return fail(ev, kCloseProtocolError);  // clients must mask (§5.1)
  std::uint64_t length = b1 & 0x7F;
  std::size_t header = 2;
  if (length == 126) {
    if (size < 4) return step::incomplete;
    length = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(data[2])) << 8) |
             static_cast<std::uint8_t>(data[3]);
    header = 4;
  } else if (length == 127) {
    if (size < 10) return step::incomplete;
    length = 0;
    for (int i = 2; i < 10; ++i) length = (length << 8) | static_cast<std::uint8_t>(data[i]);
    if (length >> 63) return fail(ev, kCloseProtocolError);
    header = 10;
  }
  if (control && (!fin || length > 125)) return fail(ev, kCloseProtocolError);
  if (!control) {
    if (op == opcode::continuation && !in_message_) return fail(ev, kCloseProtocolError);
    if (op != opcode::continuation && in_message_) return fail(ev, kCloseProtocolError);
    if (op == opcode::binary) {
      // Parley speaks text only: the caller closes with 1003 now, without waiting for (or
      // buffering) the payload.
      ev.what = reader_event::kind::binary;
      frame_size = std::min(size, header);
      return step::event;
    }
    // Refused as soon as the header says so: an oversized frame is never buffered.
    std::uint64_t total =
        length + (op == opcode::continuation && held_ ? held_->message.size() : 0);
    if (total > max_message_) return fail(ev, kCloseTooBig);
  }
  if (size < header + 4 + length) return step::incomplete;
  std::uint8_t key[4];
  std::memcpy(key, data + header, 4);
  char* payload = data + header + 4;
  const auto n = static_cast<std::size_t>(length);
  unmask(payload, n, key);
  frame_size = header + 4 + n;
  std::string_view body(payload, n);

  switch (op) {
    case opcode::binary:
      break;  // answered above
    case opcode::text:
      utf8_.reset();
      if (!utf8_.feed(body)) return fail(ev, kCloseInvalidPayload);
      if (fin) {
        if (!utf8_.complete()) return fail(ev, kCloseInvalidPayload);
        ev.what = reader_event::kind::message;
        ev.payload = body;
        return step::event;
      }
      in_message_ = true;
      held().message.assign(body);
      return step::no_event;
    case opcode::continuation:
      if (!utf8_.feed(body)) return fail(ev, kCloseInvalidPayload);
      held().message.append(body);
      if (!fin) return step::no_event;
      if (!utf8_.complete()) return fail(ev, kCloseInvalidPayload);
      ev.what = reader_event::kind::message;
      ev.payload = held_->message;
      return step::event;  // after_event ends the message
    case opcode::close: {
      ev.what = reader_event::kind::close;
      ev.payload = body;
      if (n == 0) {
        ev.close_code = 1005;  // no status code present
        return step::event;
      }
      if (n == 1) return fail(ev, kCloseProtocolError);
      int code = (static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]);
      if (!valid_close_code(code)) return fail(ev, kCloseProtocolError);
      utf8_validator reason;
      if (!reason.feed(body.substr(2)) || !reason.complete()) return fail(ev, kCloseInvalidPayload);
      ev.close_code = code;
      return step::event;
    }
    case opcode::ping:
      ev.what = reader_event::kind::ping;
      ev.payload = body;
      return step::event;
    case opcode::pong:
      ev.what = reader_event::kind::pong;
      ev.payload = body;
      return step::event;
  }
  return fail(ev, kCloseProtocolError);
}

void frame_reader::after_event(const reader_event& ev) {
  if (ev.what == reader_event::kind::message && in_message_) {
    in_message_ = false;
    held_->message.clear();
    // A large message must not pin its buffer while the connection idles.
    if (held_->message.capacity() > 16 * 1024) std::string().swap(held_->message);
  }
}

void frame_reader::trim() {
  if (!held_ || !held_->partial.empty()) return;
  if (!in_message_) {
    held_.reset();
  } else {
    std::string().swap(held_->partial);  // swap: assigning "" keeps the buffer (libstdc++)
  }
}

std::size_t write_frame_header(opcode op, std::size_t payload_size, std::uint8_t* out) {
  out[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(op));
  if (payload_size < 126) {
    out[1] = static_cast<std::uint8_t>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<std::uint8_t>(payload_size >> 8);
    out[3] = static_cast<std::uint8_t>(payload_size);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i)
    out[2 + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(payload_size) >> (56 - 8 * i));
  return 10;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(client_key);
  input.append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return util::base64(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

}  // namespace parley::net::ws
