// Domain errors and the result type every fallible domain or store call returns. Each errc maps
// one-to-one to an error code of PROTOCOL.md §6.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace parley::chat {

enum class errc {
  bad_request,
  unauthenticated,
  forbidden,
  not_found,
  conflict,
  too_large,
  rate_limited,
  unavailable,
  internal,
  // An upload whose bytes or declared type are refused (HTTP 415); on the wire its code is
  // bad_request (PROTOCOL §2).
  unsupported_type,
};

// The protocol's spelling of the code ("bad_request", ...).
std::string_view to_code(errc code);

struct error {
  errc code;
  std::string message;
  long retry_ms = 0;  // only for rate_limited
};

inline error make_error(errc code, std::string message) { return {code, std::move(message)}; }

// Either a T or an error. [[nodiscard]] so that no failure is dropped silently.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const error& err() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

// The result of an operation that returns nothing.
struct done {};
using status = result<done>;
inline status ok_status() { return done{}; }

}  // namespace parley::chat
