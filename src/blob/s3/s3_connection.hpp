// parley::blob::s3::s3_connection — one libcurl easy handle that sends SigV4-signed requests to
// an S3-compatible service. The handle keeps its TCP connection alive between requests, so a
// reader's ranged GETs or a writer's parts reuse one connection.
//
// Every request carries x-amz-content-sha256 with the real SHA-256 of its body (the body is in
// memory; S3 and s3rver require the header) and an explicit Host header equal to the signed one.
//
// Thread safety: none; one thread at a time per connection (blob_store hands each caller its
// own). Errors: send() answers errc::unavailable when no HTTP response came back (connection
// refused, timeout, stall, a response body over the limit); any HTTP status is returned as it
// is, for the caller to map. Construction throws std::runtime_error only if libcurl cannot
// create a handle (out of memory).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "blob/s3/s3_config.hpp"
#include "blob/s3/sigv4.hpp"
#include "chat/error.hpp"

namespace parley::blob::s3 {

struct s3_request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string object_key;      // the full key (prefix included); empty: the bucket itself
  param_list query;            // unencoded; sorted and encoded the way they are signed
  param_list headers;          // further headers, signed and sent (range, content-type)
  std::string_view body;       // sent as it is; must outlive send()
  // A 2xx body larger than this fails the request (an error body may have up to 64 KiB).
  std::size_t max_response_body = 64 * 1024;
};

struct s3_response {
  long status = 0;
  std::string body;
  std::string etag;                             // the ETag header, quotes included
  std::optional<std::uint64_t> content_length;  // of the object, from a HEAD or GET
};

class s3_connection {
 public:
  explicit s3_connection(const s3_config& config);  // `config` must outlive the connection
  ~s3_connection();
  s3_connection(const s3_connection&) = delete;
  s3_connection& operator=(const s3_connection&) = delete;

  chat::result<s3_response> send(const s3_request& request);

 private:
  const s3_config& config_;
  void* curl_;  // CURL*, kept out of this header
};

// "HTTP 503 SlowDown: Please reduce your request rate." from a response (the S3 error code and
// message of its XML body when there is one).
std::string describe_status(const s3_response& response);
// The text of the first <tag>...</tag> in `xml`, entities decoded; empty when absent.
std::string xml_element(std::string_view xml, std::string_view tag);

}  // namespace parley::blob::s3
