// http_client — small synchronous HTTP/1.1 requests to a Parley server (register, login,
// logout, health), for the terminal client and the load generator's set-up.
#pragma once

#include <cstdint>
#include <string>

namespace parley::client {

struct http_result {
  int status = 0;  // 0 when the request could not be made (see `body` for why)
  std::string body;
};

// `method` "GET", "POST", "DELETE"; `token` adds `Authorization: Bearer`.
http_result http_request(const std::string& host, std::uint16_t port, const std::string& method,
                         const std::string& target, const std::string& body = {},
                         const std::string& token = {});

}  // namespace parley::client
