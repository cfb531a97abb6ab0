// The HTTP API of PROTOCOL §2: register, login, logout, health, the web client's files, and
// media downloads (through media_http; uploads stream through net's upload handler). Runs on
// the worker pool (password hashing blocks for ~0.1 s by design).
#pragma once

#include "chat/service.hpp"
#include "net/server.hpp"
#include "server/media_http.hpp"

namespace parley::server {

class http_api {
 public:
  // `media_origin`: another origin the web client may load images and players from (the
  // bucket of pre-signed media URLs), or empty.
  http_api(chat::service& service, media_http& media, std::string media_origin = {});
  net::http_reply handle(const net::http_request& req, const std::string& remote);

 private:
  chat::service& service_;
  media_http& media_;
  std::string page_policy_;  // the web client's Content-Security-Policy
};

}  // namespace parley::server
