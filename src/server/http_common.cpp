#include "server/http_common.hpp"

#include <cctype>

#include "proto/http_body.hpp"

namespace parley::server {

namespace http = boost::beast::http;
using chat::errc;

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
    case errc::unsupported_type: return http::status::unsupported_media_type;
  }
  return http::status::internal_server_error;
}

net::http_response respond(unsigned version, http::status status, std::string body,
                           std::string_view type) {
  net::http_response res{status, version};
  res.set(http::field::server, "parley");
  if (!body.empty()) res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

net::http_response respond_error(unsigned version, const chat::error& err) {
  auto res = respond(version, status_of(err.code), proto::error_body(err));
  if (err.code == errc::rate_limited)
    res.set(http::field::retry_after, std::to_string((err.retry_ms + 999) / 1000));
  if (err.code == errc::unauthenticated) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

net::http_response respond_method_not_allowed(unsigned version, std::string_view allow) {
  auto res = respond_error(version, chat::make_error(errc::bad_request, "method not allowed"));
  res.result(http::status::method_not_allowed);
  res.set(http::field::allow, allow);
  return res;
}

std::string_view header_value(const http::fields& headers, http::field f) {
  auto it = headers.find(f);
  return it == headers.end() ? std::string_view()
                             : std::string_view(it->value().data(), it->value().size());
}

std::string bearer_token(const http::fields& headers) {
  auto value = header_value(headers, http::field::authorization);
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i]) return {};
  auto token = value.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return std::string(token);
}

}  // namespace parley::server
