// The JSON bodies of the HTTP API (PROTOCOL §2): decoding and validating requests, encoding
// responses and errors. Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "chat/error.hpp"
#include "chat/requests.hpp"

namespace parley::proto {

struct register_body {
  std::string username;
  std::string password;
  std::string display_name;  // empty when not given: the username is used
};

struct login_body {
  std::string username;
  std::string password;
  std::string device_name;
};

// Every malformed body is errc::bad_request with a message naming the field.
std::variant<register_body, chat::error> decode_register(std::string_view body);
std::variant<login_body, chat::error> decode_login(std::string_view body);

bool valid_username(std::string_view s);
// Number of Unicode code points in valid UTF-8.
std::size_t code_points(std::string_view utf8);

std::string registered_body(const chat::user_public& u);
// POST /v1/media: {"media_id","size","mime","sha256"}.
std::string media_uploaded_body(const chat::media_record& m);
std::string login_response_body(const chat::login_result& r);
// `{"error":{"code","message"}}`
std::string error_body(const chat::error& err);

}  // namespace parley::proto
