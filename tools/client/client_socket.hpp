// The socket of a client connection, opened (and bound to the chosen source address) before
// connecting; shared by the two ws_client implementations.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "client/ws_client.hpp"

namespace parley::client {

// Opens `sock` for `where` (a numeric host), binds it to where.local_address if set, and sets
// TCP_NODELAY. Returns the server's endpoint, or sets `error` and returns {}.
inline boost::asio::ip::tcp::endpoint open_client_socket(boost::asio::ip::tcp::socket& sock,
                                                         const endpoint_address& where,
                                                         std::string& error) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(where.host, ec);
  if (ec) {
    error = "bad host " + where.host + " (a numeric address is expected)";
    return {};
  }
  sock.open(address.is_v4() ? tcp::v4() : tcp::v6(), ec);
  if (!ec && !where.local_address.empty()) {
    // Many connections from one machine: spread them over source addresses, each with its own
    // ~28 000 ephemeral ports.
    sock.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) sock.bind({asio::ip::make_address(where.local_address, ec), 0}, ec);
  }
  if (ec) {
    error = "socket: " + ec.message();
    return {};
  }
  sock.set_option(tcp::no_delay(true), ec);
  return {address, where.port};
}

}  // namespace parley::client
