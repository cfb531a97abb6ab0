// fuzz_ws — libFuzzer target for net::ws::frame_reader, the WebSocket frame parser every client
// byte goes through (our own since Beast's websocket::stream was replaced; net/ws_frame.hpp).
//
// The input's first byte picks how the rest is cut into reads (one piece, fixed sizes of 1 to
// 64 bytes, or sizes taken from the data), so that frames split at every position are
// exercised. The message limit is small (4 KiB) so that the 1009 path is reached often.
//
// Properties checked besides "no crash, no leak, no undefined behaviour":
// - a message event carries at most the limit, and valid UTF-8 (the validator agrees when fed
//   the whole message at once);
// - ping/pong/close payloads are at most 125 bytes; a close code is 1005 or a valid code;
// - after a violation or a close, nothing more is reported;
// - the bytes the reader holds stay below the limit plus one read's worth.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "net/ws_frame.hpp"

namespace {

namespace ws = parley::net::ws;
constexpr std::size_t kLimit = 4096;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ws: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  ws::frame_reader reader(kLimit);
  bool ended = false;
  auto on_event = [&](const ws::reader_event& ev) {
    if (ended) fail("event after a violation or a close");
    using kind = ws::reader_event::kind;
    switch (ev.what) {
      case kind::message: {
        if (ev.payload.size() > kLimit) fail("message over the limit");
        ws::utf8_validator v;
        if (!v.feed(ev.payload) || !v.complete()) fail("message is not UTF-8");
        return true;
      }
      case kind::ping:
      case kind::pong:
        if (ev.payload.size() > 125) fail("control payload over 125 bytes");
        return true;
      case kind::close:
        if (ev.payload.size() > 125) fail("close payload over 125 bytes");
        if (ev.close_code != 1005 && (ev.close_code < 1000 || ev.close_code > 4999))
          fail("close code out of range");
        ended = true;
        return false;
      case kind::binary:
        ended = true;
        return false;
      case kind::violation:
        if (ev.close_code != ws::kCloseProtocolError && ev.close_code != ws::kCloseInvalidPayload &&
            ev.close_code != ws::kCloseTooBig)
          fail("violation with an unexpected code");
        ended = true;
        return false;
    }
    return true;
  };
  std::size_t at = 0, step = 0;
  while (at < bytes.size()) {
    std::size_t piece;
    if (mode < 64) {
      piece = bytes.size();
    } else if (mode < 192) {
      piece = 1 + (mode % 64);
    } else {
      piece = 1 + static_cast<std::uint8_t>(bytes[(at + step) % bytes.size()]) % 97;
    }
    piece = std::min(piece, bytes.size() - at);
    std::string chunk = bytes.substr(at, piece);  // the reader may modify (unmask) it
    reader.feed(chunk.data(), chunk.size(), on_event);
    if (reader.held_bytes() > 4 * (kLimit + 14 + piece) + 64)
      fail("held bytes grew past the limit");
    at += piece;
    ++step;
  }
  reader.trim();
  return 0;
}
