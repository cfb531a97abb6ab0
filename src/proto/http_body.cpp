#include "proto/http_body.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "proto/json_writer.hpp"

namespace parley::proto {

namespace json = boost::json;
using chat::errc;
using chat::make_error;

namespace {

constexpr std::size_t kPasswordMin = 8;
constexpr std::size_t kPasswordMax = 256;
constexpr std::size_t kDisplayNameMax = 64;  // code points
constexpr std::size_t kDeviceNameMax = 64;   // code points

std::variant<json::object, chat::error> parse_object(std::string_view body) {
  json::parse_options options;
  options.max_depth = 8;
  boost::system::error_code ec;
  auto doc = json::parse(body, ec, {}, options);
  if (ec) return make_error(errc::bad_request, "malformed JSON: " + ec.message());
  if (!doc.is_object()) return make_error(errc::bad_request, "the body must be a JSON object");
  return std::move(doc.get_object());
}

// The string field `key`; an error when it is present with another type, or absent and
// required.
std::variant<std::string, chat::error> string_field(const json::object& o, std::string_view key,
                                                   bool required) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return make_error(errc::bad_request, std::string(key) + " is required");
    return std::string();
  }
  if (!v->is_string()) return make_error(errc::bad_request, std::string(key) + " must be a string");
  return std::string(v->get_string());
}

template <class Body>
std::variant<Body, chat::error> decode_credentials(std::string_view raw, std::string_view name_key,
                                                  std::size_t name_max) {
  auto parsed = parse_object(raw);
  if (auto* e = std::get_if<chat::error>(&parsed)) return *e;
  const auto& o = std::get<json::object>(parsed);
  auto username = string_field(o, "username", true);
  auto password = string_field(o, "password", true);
  auto name = string_field(o, name_key, false);
  for (auto* f : {&username, &password, &name})
    if (auto* e = std::get_if<chat::error>(f)) return *e;

  Body out;
  out.username = std::get<std::string>(username);
  out.password = std::get<std::string>(password);
  std::string extra = std::get<std::string>(name);
  if (!valid_username(out.username))
    return make_error(errc::bad_request, "username must match ^[a-z0-9_.]{3,32}$");
  if (out.password.size() < kPasswordMin || out.password.size() > kPasswordMax)
    return make_error(errc::bad_request, "password must be 8 to 256 bytes");
  auto* present = o.if_contains(name_key);
  if (present && !present->is_null()) {
    auto n = code_points(extra);
    if (n < 1 || n > name_max)
      return make_error(errc::bad_request,
                        std::string(name_key) + " must be 1 to " + std::to_string(name_max) +
                            " characters");
    if (extra.find('\0') != std::string::npos)
      return make_error(errc::bad_request, std::string(name_key) + " must not contain NUL");
  }
  if constexpr (std::is_same_v<Body, register_body>) {
    out.display_name = std::move(extra);
  } else {
    out.device_name = std::move(extra);
  }
  return out;
}

}  // namespace

bool valid_username(std::string_view s) {
  if (s.size() < 3 || s.size() > 32) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::size_t code_points(std::string_view utf8) {
  std::size_t n = 0;
  for (unsigned char c : utf8)
    if ((c & 0xc0) != 0x80) ++n;  // count every byte that is not a continuation byte
  return n;
}

std::variant<register_body, chat::error> decode_register(std::string_view body) {
  return decode_credentials<register_body>(body, "display_name", kDisplayNameMax);
}

std::variant<login_body, chat::error> decode_login(std::string_view body) {
  return decode_credentials<login_body>(body, "device_name", kDeviceNameMax);
}

std::string registered_body(const chat::user_public& u) {
  std::string out;
  json_writer(out).begin_object().key("user_id").value(u.user_id).key("username").value(
      u.username).end_object();
  return out;
}

std::string media_uploaded_body(const chat::media_record& m) {
  std::string out;
  json_writer w(out);
  w.begin_object().key("media_id").value(m.id).key("size").value(m.size);
  w.key("mime").value(m.mime).key("sha256").value(m.sha256).end_object();
  return out;
}

std::string login_response_body(const chat::login_result& r) {
  std::string out;
  json_writer w(out);
  w.begin_object().key("token").value(r.token).key("user_id").value(r.user_id);
  w.key("device_id").value(r.device_id).end_object();
  return out;
}

std::string error_body(const chat::error& err) {
  std::string out;
  json_writer w(out);
  w.begin_object().key("error").begin_object().key("code").value(chat::to_code(err.code));
  w.key("message").value(err.message).end_object().end_object();
  return out;
}

}  // namespace parley::proto
