// Pieces every HTTP route shares: error bodies with the HTTP status of each error code, and the
// Bearer token of a request. Used by http_api (accounts, health, web assets) and media_http.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>
#include <string>
#include <string_view>

#include "chat/error.hpp"
#include "net/server.hpp"

namespace parley::server {

boost::beast::http::status status_of(chat::errc code);

// A response with `body` (of `type` when non-empty), never cached.
net::http_response respond(unsigned version, boost::beast::http::status status, std::string body,
                           std::string_view type = "application/json");
// The error body of PROTOCOL §2 with the status of its code (and Retry-After / WWW-Authenticate
// where they apply).
net::http_response respond_error(unsigned version, const chat::error& err);

// 405 with `Allow: allow` and the error body of a bad_request.
net::http_response respond_method_not_allowed(unsigned version, std::string_view allow);

// The value of header `f`, or empty when absent.
std::string_view header_value(const boost::beast::http::fields& headers,
                              boost::beast::http::field f);
// The token of an `Authorization: Bearer TOKEN` header, or empty.
std::string bearer_token(const boost::beast::http::fields& headers);

}  // namespace parley::server
