#include "net/ws_frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace parley::net::ws {
namespace {

// A masked client frame, as a browser sends it.
std::string client_frame(std::uint8_t first_byte, std::string_view payload,
                         std::uint32_t key = 0x37fa213d) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  }
  std::uint8_t k[4] = {static_cast<std::uint8_t>(key >> 24), static_cast<std::uint8_t>(key >> 16),
                       static_cast<std::uint8_t>(key >> 8), static_cast<std::uint8_t>(key)};
  f.append(reinterpret_cast<char*>(k), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ k[i % 4]));
  return f;
}

struct seen {
  reader_event::kind what;
  std::string payload;
  int code;
};

// Feeds `bytes` in pieces of `piece` bytes and records every event.
std::vector<seen> feed(frame_reader& r, std::string bytes, std::size_t piece = 1 << 20) {
  std::vector<seen> out;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    std::string chunk = bytes.substr(at, piece);
    r.feed(chunk.data(), chunk.size(), [&](const reader_event& ev) {
      out.push_back({ev.what, std::string(ev.payload), ev.close_code});
      return ev.what != reader_event::kind::violation && ev.what != reader_event::kind::close &&
             ev.what != reader_event::kind::binary;
    });
  }
  return out;
}

using kind = reader_event::kind;

TEST(ws_utf8, accepts_valid_and_refuses_invalid_across_pieces) {
  utf8_validator v;
  EXPECT_TRUE(v.feed("plain ascii, long enough for the word loop"));
  EXPECT_TRUE(v.feed("\xc3"));  // é split in two
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\xa9 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(v.complete());
  for (std::string bad : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\x80",
                          "\xe0\x80\x80", "\xf0\x80\x80\x80"}) {
    utf8_validator w;
    EXPECT_FALSE(w.feed(bad) && w.complete()) << bad;
  }
}

TEST(ws_frame, handshake_accept_key_matches_rfc_6455) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_frame, server_frame_headers) {
  std::uint8_t h[10];
  EXPECT_EQ(write_frame_header(opcode::text, 5, h), 2u);
  EXPECT_EQ(h[0], 0x81);
  EXPECT_EQ(h[1], 5);
  EXPECT_EQ(write_frame_header(opcode::text, 126, h), 4u);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ((h[2] << 8) | h[3], 126);
  EXPECT_EQ(write_frame_header(opcode::close, 70000, h), 10u);
  EXPECT_EQ(h[0], 0x88);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ((h[7] << 16) | (h[8] << 8) | h[9], 70000);
}

TEST(ws_frame, messages_in_one_read_and_byte_by_byte) {
  std::string big(70'000 - 1, 'x');
  std::string bytes = client_frame(0x81, "hello") + client_frame(0x81, "") + client_frame(0x81, big.substr(0, 300));
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{1} << 20}) {
    frame_reader r(64 * 1024);
    auto ev = feed(r, bytes, piece);
    ASSERT_EQ(ev.size(), 3u) << piece;
    EXPECT_EQ(ev[0].payload, "hello");
    EXPECT_EQ(ev[1].payload, "");
    EXPECT_EQ(ev[2].payload, big.substr(0, 300));
  }
}

TEST(ws_frame, fragments_with_interleaved_control_frames) {
  frame_reader r(64 * 1024);
  auto ev = feed(r, client_frame(0x01, "{\"op\":") + client_frame(0x89, "p") +
                        client_frame(0x00, "") + client_frame(0x80, "\"ping\"}"), 2);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].what, kind::ping);
  EXPECT_EQ(ev[0].payload, "p");
  EXPECT_EQ(ev[1].what, kind::message);
  EXPECT_EQ(ev[1].payload, "{\"op\":\"ping\"}");
}

TEST(ws_frame, violations_close_with_their_codes) {
  struct c {
    std::string bytes;
    int code;
  } cases[] = {
      {client_frame(0x80, "x"), kCloseProtocolError},                          // lone continuation
      {client_frame(0x01, "a") + client_frame(0x81, "b"), kCloseProtocolError},  // text inside a fragmented one
      {client_frame(0x09, "p"), kCloseProtocolError},                          // fragmented control frame
      {client_frame(0x89, std::string(126, 'p')), kCloseProtocolError},        // control frame over 125
      {client_frame(0xC1, "x"), kCloseProtocolError},                          // reserved bit
      {client_frame(0x83, "x"), kCloseProtocolError},                          // reserved opcode
      {std::string("\x81\x05hello", 7), kCloseProtocolError},                  // unmasked
      {client_frame(0x81, "\xc3\x28"), kCloseInvalidPayload},
      {client_frame(0x01, "\xc3") + client_frame(0x80, "\x28"), kCloseInvalidPayload},
      {client_frame(0x81, std::string(64 * 1024 + 1, 'x')), kCloseTooBig},
      {client_frame(0x01, std::string(40'000, 'x')) + client_frame(0x80, std::string(40'000, 'x')),
       kCloseTooBig},
      {client_frame(0x88, "\x03"), kCloseProtocolError},      // close with a 1-byte payload
      {client_frame(0x88, "\x03\xed"), kCloseProtocolError},  // close code 1005 may not be sent
  };
  for (auto& t : cases) {
    frame_reader r(64 * 1024);
    auto ev = feed(r, t.bytes);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().what, kind::violation);
    EXPECT_EQ(ev.back().code, t.code);
  }
}

TEST(ws_frame, oversized_frames_are_refused_from_their_header_alone) {
  frame_reader r(64 * 1024);
  std::string header = client_frame(0x81, std::string(100'000, 'x')).substr(0, 14);
  auto ev = feed(r, header);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].code, kCloseTooBig);
  frame_reader huge(64 * 1024);
  std::string length_msb("\x81\xff\x80\0\0\0\0\0\0\0", 10);
  EXPECT_EQ(feed(huge, length_msb).back().code, kCloseProtocolError);
}

TEST(ws_frame, binary_and_close_frames) {
  frame_reader r(64 * 1024);
  auto ev = feed(r, client_frame(0x82, std::string(10, '\0')));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].what, kind::binary);
  frame_reader c(64 * 1024);
  auto closing = feed(c, client_frame(0x88, std::string("\x03\xe8" "bye", 5)));
  ASSERT_EQ(closing.size(), 1u);
  EXPECT_EQ(closing[0].what, kind::close);
  EXPECT_EQ(closing[0].code, 1000);
  frame_reader e(64 * 1024);
  EXPECT_EQ(feed(e, client_frame(0x88, "")).back().code, 1005);
}

TEST(ws_frame, pause_keeps_the_rest_until_resume) {
  frame_reader r(64 * 1024);
  std::string bytes = client_frame(0x81, "one") + client_frame(0x81, "two") + client_frame(0x81, "three");
  std::vector<std::string> got;
  auto pausing = [&](const reader_event& ev) {
    got.emplace_back(ev.payload);
    r.pause();
    return true;
  };
  r.feed(bytes.data(), bytes.size(), pausing);
  EXPECT_EQ(got, (std::vector<std::string>{"one"}));
  r.resume(pausing);
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
  // New bytes go after the held ones, in order.
  std::string more = client_frame(0x81, "four");
  r.feed(more.data(), more.size(), [&](const reader_event& ev) {
    got.emplace_back(ev.payload);
    return true;
  });
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three", "four"}));
  EXPECT_FALSE(r.spent());
}

TEST(ws_frame, holds_nothing_once_idle) {
  frame_reader r(64 * 1024);
  auto bytes = client_frame(0x81, std::string(20'000, 'x'));
  feed(r, bytes, 1000);
  r.trim();
  EXPECT_EQ(r.held_bytes(), 0u);
}

}  // namespace
}  // namespace parley::net::ws
