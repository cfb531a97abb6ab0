// parley::blob::s3 — where an S3 blob store keeps its objects and how it reaches them: the
// configuration parsed from `s3://BUCKET?endpoint=...&region=...`, and the URL, Host header and
// path of each object under path-style or virtual-hosted addressing.
//
// URL form (parameters optional, in any order, each at most once):
//   s3://BUCKET?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true&prefix=media/
//   endpoint    scheme://host[:port] of an S3-compatible service (http or https; no path).
//               Without it: AWS, https://s3.REGION.amazonaws.com.
//   region      signing region (default us-east-1).
//   path_style  true: http://host/BUCKET/key; false: http://BUCKET.host/key (virtual-hosted).
//               Default: true with an endpoint (MinIO, s3rver, Ceph...), false on AWS.
//   prefix      prepended to every key ("media/"), so that one bucket can hold other data too.
// Values may be percent-encoded. Credentials come from the caller (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN in parse_s3_url_from_environment).
//
// Thread safety: plain values and pure functions. Errors: parse_s3_url answers bad_request with
// a message naming what is wrong.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "blob/s3/sigv4.hpp"
#include "chat/error.hpp"

namespace parley::blob::s3 {

struct s3_config {
  std::string bucket;
  std::string scheme = "https";  // of the endpoint
  // host[:port] of the endpoint as sent in the Host header (a default port left out); empty:
  // AWS's regional endpoint.
  std::string endpoint_host;
  std::string region = "us-east-1";
  bool path_style = false;
  std::string prefix;  // "" or such that prefix + key is a valid key: "media/"
  credentials creds;

  // Objects up to part_size bytes go in one PUT; larger ones in parts of part_size bytes (S3
  // wants at least 5 MiB for every part but the last).
  std::size_t part_size = 8 * 1024 * 1024;
  // A reader fetches at most this much per request (and holds at most this much in memory).
  std::size_t read_piece_size = 1024 * 1024;
  std::chrono::milliseconds connect_timeout{5000};
  // A transfer slower than 1 byte/s for this long is abandoned: a dead server does not hold a
  // worker forever.
  std::chrono::seconds stall_timeout{30};
};

// Parses the URL form above. `access_key_id` and `secret_access_key` must not be empty.
chat::result<s3_config> parse_s3_url(std::string_view url, std::string_view access_key_id,
                                     std::string_view secret_access_key,
                                     std::string_view session_token = {});
// The same with the credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
chat::result<s3_config> parse_s3_url_from_environment(std::string_view url);

// Where one request goes.
struct s3_location {
  std::string host;  // the Host header: "127.0.0.1:9000", "b.s3.eu-west-1.amazonaws.com"
  std::string path;  // unencoded: "/b/media/m/x" (path-style) or "/media/m/x"
  std::string url;   // scheme://host + the encoded path, without a query
};

// The location of `object_key` (the full key, prefix included), or of the bucket itself when
// `object_key` is empty.
s3_location locate(const s3_config& config, std::string_view object_key);

// "http://127.0.0.1:9000", or "https://s3.REGION.amazonaws.com" without an endpoint.
std::string endpoint_url(const s3_config& config);

}  // namespace parley::blob::s3
