#include "server/http_api.hpp"

#include <boost/beast/http/status.hpp>
#include <cctype>

#include "proto/http_body.hpp"
#include "server/web_assets.hpp"
#include "util/log.hpp"

namespace parley::server {

namespace http = boost::beast::http;
using chat::errc;

namespace {

http::status status_of(errc code) {
  switch (code) {
    case errc::bad_request: return http::status::bad_request;
    case errc::unauthenticated: return http::status::unauthorized;
    case errc::forbidden: return http::status::forbidden;
    case errc::not_found: return http::status::not_found;
    case errc::conflict: return http::status::conflict;
    case errc::too_large: return http::status::payload_too_large;
    case errc::rate_limited: return http::status::too_many_requests;
    case errc::unavailable: return http::status::service_unavailable;
    case errc::internal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

net::http_response respond(const net::http_request& req, http::status status, std::string body,
                           std::string_view type = "application/json") {
  net::http_response res{status, req.version()};
  res.set(http::field::server, "parley");
  if (!body.empty()) res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

net::http_response respond_error(const net::http_request& req, const chat::error& err) {
  auto res = respond(req, status_of(err.code), proto::error_body(err));
  if (err.code == errc::rate_limited)
    res.set(http::field::retry_after, std::to_string((err.retry_ms + 999) / 1000));
  if (err.code == errc::unauthenticated) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// The token of an `Authorization: Bearer TOKEN` header, or empty.
std::string bearer_token(const net::http_request& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return {};
  std::string_view value(it->value().data(), it->value().size());
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i]) return {};
  auto token = value.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return std::string(token);
}

// A file of the web client, with headers that keep a browser from running anything but our
// own scripts on the page (every user text is rendered as text, and the CSP backs that up).
net::http_response serve_asset(const net::http_request& req, const web_asset& asset) {
  std::string body(reinterpret_cast<const char*>(asset.data), asset.size);
  auto res = respond(req, http::status::ok, std::move(body), content_type_for(asset.path));
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
          "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
          "frame-ancestors 'none'; form-action 'none'");
  return res;
}

}  // namespace

net::http_response http_api::handle(const net::http_request& req, const std::string& remote) {
  auto target = std::string_view(req.target().data(), req.target().size());
  auto path = target.substr(0, target.find('?'));
  auto method_not_allowed = [&](std::string_view allow) {
    auto res = respond_error(req, chat::make_error(errc::bad_request, "method not allowed"));
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, allow);
    return res;
  };

  if (path == "/v1/users") {
    if (req.method() != http::verb::post) return method_not_allowed("POST");
    auto body = proto::decode_register(req.body());
    if (auto* e = std::get_if<chat::error>(&body)) return respond_error(req, *e);
    auto& b = std::get<proto::register_body>(body);
    auto user = service_.register_user(b.username, b.password, b.display_name);
    if (!user) return respond_error(req, user.err());
    util::log_info("registered {} ({}) from {}", user->username, user->user_id, remote);
    return respond(req, http::status::created, proto::registered_body(*user));
  }
  if (path == "/v1/sessions") {
    if (req.method() != http::verb::post) return method_not_allowed("POST");
    auto body = proto::decode_login(req.body());
    if (auto* e = std::get_if<chat::error>(&body)) return respond_error(req, *e);
    auto& b = std::get<proto::login_body>(body);
    auto login = service_.login(b.username, b.password, b.device_name);
    if (!login) return respond_error(req, login.err());
    return respond(req, http::status::created, proto::login_response_body(*login));
  }
  if (path == "/v1/sessions/current") {
    if (req.method() != http::verb::delete_) return method_not_allowed("DELETE");
    auto token = bearer_token(req);
    if (token.empty())
      return respond_error(req, chat::make_error(errc::unauthenticated, "a Bearer token is required"));
    auto out = service_.logout(token);
    if (!out) return respond_error(req, out.err());
    return respond(req, http::status::no_content, {});
  }
  if (path == "/healthz") {
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return method_not_allowed("GET, HEAD");
    auto health = service_.storage().health();
    if (!health) return respond(req, http::status::service_unavailable, "unavailable", "text/plain");
    return respond(req, http::status::ok, "ok", "text/plain");
  }
  if (!path.starts_with("/v1/") && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    if (const auto* asset = find_web_asset(path)) return serve_asset(req, *asset);
  }
  return respond_error(req, chat::make_error(errc::not_found, "no such resource"));
}

}  // namespace parley::server
