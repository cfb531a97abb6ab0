// json_writer — appends JSON to a string without building a document first. The hot path
// (encoding a message once, replies) uses it instead of a DOM.
//
// The caller writes keys and values in order; the writer inserts commas. Strings must be valid
// UTF-8 (everything that reaches it has been validated by the parser or produced by us); they
// are escaped as RFC 8259 requires, and U+2028/U+2029 are escaped too for JavaScript readers.
#pragma once

#include <charconv>
#include <cstdint>
#include <type_traits>
#include <string>
#include <string_view>

namespace parley::proto {

class json_writer {
 public:
  explicit json_writer(std::string& out) : out_(out) {}

  json_writer& begin_object() { return open('{'); }
  json_writer& end_object() { return close('}'); }
  json_writer& begin_array() { return open('['); }
  json_writer& end_array() { return close(']'); }

  json_writer& key(std::string_view k) {
    comma();
    append_string(out_, k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  json_writer& value(std::string_view s) {
    comma();
    append_string(out_, s);
    return *this;
  }
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  template <class Int>
    requires(std::is_integral_v<Int> && !std::is_same_v<Int, bool>)
  json_writer& value(Int n) {
    comma();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, end);
    return *this;
  }
  json_writer& value(bool b) {
    comma();
    out_.append(b ? "true" : "false");
    return *this;
  }
  json_writer& null() {
    comma();
    out_.append("null");
    return *this;
  }
  // Already-encoded JSON (a stored message, a request id), inserted as it is.
  json_writer& raw(std::string_view json) {
    comma();
    out_.append(json);
    return *this;
  }

  static void append_string(std::string& out, std::string_view s);

 private:
  json_writer& open(char c) {
    comma();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  json_writer& close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_.push_back(',');
    }
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace parley::proto
