#include "proto/json_writer.hpp"

namespace parley::proto {

void json_writer::append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t plain_from = 0;
  auto flush = [&](std::size_t upto) { out.append(s.substr(plain_from, upto - plain_from)); };
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
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
    } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
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
