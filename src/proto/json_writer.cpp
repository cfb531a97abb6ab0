#include "proto/json_writer.hpp"

#include <array>

namespace parley::proto {

namespace {

// Bytes that append_string cannot copy as they are: '"', '\\', the control characters, and 0xe2
// (the first byte of U+2028 / U+2029, which JavaScript does not accept raw in a string).
constexpr std::array<bool, 256> special_bytes() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = true;
  t['"'] = t['\\'] = t[0xe2] = true;
  return t;
}
constexpr auto kSpecial = special_bytes();

}  // namespace

void json_writer::append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t plain_from = 0;
  auto flush = [&](std::size_t upto) { out.append(s.substr(plain_from, upto - plain_from)); };
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!kSpecial[c]) continue;  // most bytes: one table look-up, copied later in one run
    const char* escape = nullptr;
    char buf[7];
    if (c == '"') {
      escape = "\\\"";
    } else if (c == '\\') {
      escape = "\\\\";
    } else if (c == '\n') {
      escape = "\\n";
    } else if (c == '\r') {
      escape = "\\r";
    } else if (c == '\t') {
      escape = "\\t";
    } else if (c < 0x20) {
      buf[0] = '\\', buf[1] = 'u', buf[2] = '0', buf[3] = '0';
      buf[4] = hex[c >> 4], buf[5] = hex[c & 0xf], buf[6] = '\0';
      escape = buf;
    } else if (i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xa9)) {  // c == 0xe2
      flush(i);
      out.append(static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029");
      i += 2;
      plain_from = i + 1;
      continue;
    }
    if (escape) {
      flush(i);
      out.append(escape);
      plain_from = i + 1;
    }
  }
  flush(s.size());
  out.push_back('"');
}

}  // namespace parley::proto
