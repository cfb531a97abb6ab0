// sigv4-sign: the signer of blob/s3 as a filter, for the differential test against the AWS
// SDK's signer (tests/sigv4/differential.mjs). Not installed; test-only.
//
// Input, one request per line, tab-separated fields `name=value`; every value that may hold
// arbitrary bytes is hex-encoded so that no escaping can differ between the two sides:
//   mode=header|presign  method=GET  host=HEX  path=HEX (unencoded)  region=HEX  service=HEX
//   ak=HEX  sk=HEX  token=HEX  time=UNIX_SECONDS  payload=HEX  expires=SECONDS
//   sha256=0|1 (header mode: add x-amz-content-sha256)
//   q=HEXNAME.HEXVALUE (repeated: query parameters)  h=HEXNAME.HEXVALUE (repeated: headers)
// Output, one line per input line, tab-separated `name=HEX`:
//   header mode:  each header the signer adds (authorization=..., x-amz-date=..., ...)
//   presign mode: query=... (everything after '?')
//   on bad input: error=...
#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "blob/s3/sigv4.hpp"
#include "util/crypto.hpp"

namespace {

using namespace parley::blob::s3;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  throw std::invalid_argument("bad hex digit");
}

std::string from_hex(std::string_view hex) {
  if (hex.size() % 2) throw std::invalid_argument("odd hex length");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<char>(hex_digit(hex[i]) * 16 + hex_digit(hex[i + 1])));
  return out;
}

std::string to_hex(std::string_view bytes) {
  return parley::util::to_hex(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::pair<std::string, std::string> hex_pair(std::string_view value) {
  auto dot = value.find('.');
  if (dot == std::string_view::npos) throw std::invalid_argument("pair without '.'");
  return {from_hex(value.substr(0, dot)), from_hex(value.substr(dot + 1))};
}

std::string sign_line(std::string_view line) {
  signing_request req;
  signing_scope scope;
  std::string mode;
  std::int64_t expires = 0;
  bool add_sha256 = true;
  while (!line.empty()) {
    auto tab = line.find('\t');
    auto field = line.substr(0, tab);
    line = tab == std::string_view::npos ? std::string_view{} : line.substr(tab + 1);
    auto eq = field.find('=');
    if (eq == std::string_view::npos) throw std::invalid_argument("field without '='");
    auto name = field.substr(0, eq);
    auto value = field.substr(eq + 1);
    if (name == "mode")
      mode = value;
    else if (name == "method")
      req.method = value;
    else if (name == "host")
      req.host = from_hex(value);
    else if (name == "path")
      req.path = from_hex(value);
    else if (name == "region")
      scope.region = from_hex(value);
    else if (name == "service")
      scope.service = from_hex(value);
    else if (name == "ak")
      scope.creds.access_key_id = from_hex(value);
    else if (name == "sk")
      scope.creds.secret_access_key = from_hex(value);
    else if (name == "token")
      scope.creds.session_token = from_hex(value);
    else if (name == "time")
      scope.time = std::chrono::system_clock::time_point(
          std::chrono::seconds(std::stoll(std::string(value))));
    else if (name == "payload")
      req.payload_hash = from_hex(value);
    else if (name == "expires")
      expires = std::stoll(std::string(value));
    else if (name == "sha256")
      add_sha256 = value == "1";
    else if (name == "q")
      req.query.push_back(hex_pair(value));
    else if (name == "h")
      req.headers.push_back(hex_pair(value));
    else
      throw std::invalid_argument("unknown field " + std::string(name));
  }
  std::string out;
  if (mode == "header") {
    for (const auto& [header, value] : sign_headers(req, scope, add_sha256).headers) {
      if (!out.empty()) out.push_back('\t');
      out.append(header).append("=").append(to_hex(value));
    }
  } else if (mode == "presign") {
    out = "query=" + to_hex(presign(req, scope, expires).query);
  } else {
    throw std::invalid_argument("mode must be header or presign");
  }
  return out;
}

}  // namespace

int main() {
  parley::util::init_crypto();
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    try {
      std::cout << sign_line(line) << '\n';
    } catch (const std::exception& e) {
      std::cout << "error=" << to_hex(e.what()) << '\n';
    }
  }
  return 0;
}
