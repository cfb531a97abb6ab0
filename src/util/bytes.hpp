// A compact binary encoding for stored records: varints, big-endian fixed integers (so keys sort
// numerically) and length-prefixed strings.
//
// byte_reader never reads past its input: every get_* returns false on truncated or malformed
// data, and the reader stays failed afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::util {

class byte_writer {
 public:
  explicit byte_writer(std::string& out) : out_(out) {}

  void put_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void put_signed(std::int64_t v) {
    put_varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void put_fixed64_be(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<char>(v >> shift));
  }
  void put_string(std::string_view s) {
    put_varint(s.size());
    out_.append(s);
  }
  void put_raw(std::string_view s) { out_.append(s); }

 private:
  std::string& out_;
};

class byte_reader {
 public:
  explicit byte_reader(std::string_view in) : in_(in) {}

  bool get_varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return fail();
      auto byte = static_cast<std::uint8_t>(in_[pos_++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return ok_;
    }
    return fail();
  }
  bool get_signed(std::int64_t& v) {
    std::uint64_t u;
    if (!get_varint(u)) return false;
    v = static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool get_fixed64_be(std::uint64_t& v) {
    if (in_.size() - pos_ < 8 || pos_ > in_.size()) return fail();
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in_[pos_++]);
    return ok_;
  }
  bool get_string(std::string& s) {
    std::string_view view;
    if (!get_view(view)) return false;
    s.assign(view);
    return true;
  }
  bool get_view(std::string_view& s) {
    std::uint64_t n;
    if (!get_varint(n)) return false;
    if (n > in_.size() - pos_) return fail();
    s = in_.substr(pos_, n);
    pos_ += n;
    return ok_;
  }
  // Everything not yet read.
  std::string_view rest() const { return in_.substr(pos_); }
  bool ok() const { return ok_; }

 private:
  bool fail() {
    ok_ = false;
    pos_ = in_.size();
    return false;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace parley::util
