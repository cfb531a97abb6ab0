#include "server/http_api.hpp"

#include <boost/beast/http/status.hpp>
#include <cctype>

#include "proto/http_body.hpp"
#include "server/http_common.hpp"
#include "server/web_assets.hpp"
#include "util/log.hpp"

namespace parley::server {

namespace http = boost::beast::http;
using chat::errc;

namespace {

// A file of the web client, with headers that keep a browser from running anything but our
// own scripts on the page (every user text is rendered as text, and the CSP backs that up).
net::http_response serve_asset(const net::http_request& req, const web_asset& asset,
                               const std::string& policy) {
  std::string body(reinterpret_cast<const char*>(asset.data), asset.size);
  auto res = respond(req.version(), http::status::ok, std::move(body), content_type_for(asset.path));
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy", policy);
  return res;
}

std::string page_policy(const std::string& media_origin) {
  std::string media = media_origin.empty() ? "" : " " + media_origin;
  return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:" +
         media + "; media-src 'self' blob:" + media +
         "; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
         "form-action 'none'";
}

}  // namespace

http_api::http_api(chat::service& service, media_http& media, std::string media_origin)
    : service_(service), media_(media), page_policy_(page_policy(media_origin)) {}

net::http_reply http_api::handle(const net::http_request& req, const std::string& remote) {
  auto target = std::string_view(req.target().data(), req.target().size());
  auto path = target.substr(0, target.find('?'));
  auto method_not_allowed = [&](std::string_view allow) {
    return respond_method_not_allowed(req.version(), allow);
  };

  if (path.starts_with("/v1/media/")) return media_.download(req);
  if (path == "/v1/media") return method_not_allowed("POST");  // POST streams (media_http)
  if (path == "/v1/users") {
    if (req.method() != http::verb::post) return method_not_allowed("POST");
    auto body = proto::decode_register(req.body());
    if (auto* e = std::get_if<chat::error>(&body)) return respond_error(req.version(), *e);
    auto& b = std::get<proto::register_body>(body);
    auto user = service_.register_user(b.username, b.password, b.display_name);
    if (!user) return respond_error(req.version(), user.err());
    util::log_info("registered {} ({}) from {}", user->username, user->user_id, remote);
    return respond(req.version(), http::status::created, proto::registered_body(*user));
  }
  if (path == "/v1/sessions") {
    if (req.method() != http::verb::post) return method_not_allowed("POST");
    auto body = proto::decode_login(req.body());
    if (auto* e = std::get_if<chat::error>(&body)) return respond_error(req.version(), *e);
    auto& b = std::get<proto::login_body>(body);
    auto login = service_.login(b.username, b.password, b.device_name);
    if (!login) return respond_error(req.version(), login.err());
    return respond(req.version(), http::status::created, proto::login_response_body(*login));
  }
  if (path == "/v1/sessions/current") {
    if (req.method() != http::verb::delete_) return method_not_allowed("DELETE");
    auto token = bearer_token(req);
    if (token.empty())
      return respond_error(req.version(), chat::make_error(errc::unauthenticated, "a Bearer token is required"));
    auto out = service_.logout(token);
    if (!out) return respond_error(req.version(), out.err());
    return respond(req.version(), http::status::no_content, {});
  }
  if (path == "/healthz") {
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return method_not_allowed("GET, HEAD");
    auto health = service_.storage().health();
    if (!health) return respond(req.version(), http::status::service_unavailable, "unavailable", "text/plain");
    return respond(req.version(), http::status::ok, "ok", "text/plain");
  }
  if (!path.starts_with("/v1/") && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    if (const auto* asset = find_web_asset(path)) return serve_asset(req, *asset, page_policy_);
  }
  return respond_error(req.version(), chat::make_error(errc::not_found, "no such resource"));
}

}  // namespace parley::server
