// The HTTP API of PROTOCOL §2 (all but media): register, login, logout, health. Runs on the
// worker pool (password hashing blocks for ~0.1 s by design).
#pragma once

#include "chat/service.hpp"
#include "net/server.hpp"

namespace parley::server {

class http_api {
 public:
  explicit http_api(chat::service& service) : service_(service) {}
  net::http_response handle(const net::http_request& req, const std::string& remote);

 private:
  chat::service& service_;
};

}  // namespace parley::server
