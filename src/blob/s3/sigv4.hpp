// parley::blob::s3 — AWS Signature Version 4 (SigV4) for S3-compatible services: the
// Authorization header of a request, or a pre-signed URL. Pure computation, no I/O and no
// clock of its own (the time is an argument), so that the published test vectors and the
// differential test against the AWS SDK's signer (tests/sigv4) check it exactly. Depends on
// util/crypto (SHA-256, HMAC-SHA256) only.
//
// Why our own signer rather than libcurl's CURLOPT_AWS_SIGV4: curl 7.88 (Debian 12) does not
// sort query parameters and mishandles a value-less parameter such as `?uploads` (it must be
// signed as `uploads=`), both of which S3's multipart API needs; and curl cannot pre-sign a URL
// at all. One signer, tested against AWS's vectors and the SDK, is used for every request and
// for every pre-signed URL.
//
// S3 flavour of SigV4: the path is URI-encoded once (never twice, never normalised: S3 keys may
// hold "//" or "."), '/' in the path stays as it is; query names and values are encoded with
// '/' encoded too. Every byte outside A-Za-z0-9-_.~ is percent-encoded with upper-case hex.
//
// Thread safety: every function is pure and thread-safe (util::init_crypto() must have run).
// Errors: none; inputs are taken as given (the caller builds them).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::blob::s3 {

// The hash that stands for "the payload is not signed" (pre-signed URLs, or a body hashed by
// nobody).
inline constexpr std::string_view k_unsigned_payload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string, the payload hash of every request without a body.
inline constexpr std::string_view k_empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term credentials
};

// (name, value) pairs, unencoded. Order does not matter; repeated names are allowed.
using param_list = std::vector<std::pair<std::string, std::string>>;

// What is signed, before any encoding.
struct signing_request {
  std::string method;  // "GET", "PUT", ...
  // The Host header exactly as sent: "bucket.s3.us-east-1.amazonaws.com", "127.0.0.1:9000"
  // (with ":port" when the port is not the scheme's default).
  std::string host;
  std::string path = "/";  // unencoded, starting with '/': "/bucket/m/a b"
  param_list query;        // unencoded; an empty value is signed as "name="
  // Further headers to sign and send (not host, not the x-amz-* ones the signer adds). Names in
  // any case; values are trimmed and inner runs of blanks collapsed for signing. Names that
  // differ only in case are one header whose values are joined with ','.
  param_list headers;
  // Hex SHA-256 of the body, or k_unsigned_payload, or a STREAMING-* marker.
  std::string payload_hash = std::string(k_empty_payload_sha256);
};

struct signing_scope {
  credentials creds;
  std::string region;                          // "us-east-1"
  std::string service = "s3";                  // "s3"; the generic test suite uses "service"
  std::chrono::system_clock::time_point time;  // whole seconds are used
};

// The result of signing with headers: the headers to add to the request as they are.
struct signed_headers {
  // "authorization", "x-amz-date", "x-amz-content-sha256" (when asked for),
  // "x-amz-security-token" (with a session token), in that order.
  param_list headers;
  std::string authorization;      // the value of the authorization header
  std::string signature;          // hex
  std::string canonical_request;  // for diagnostics and tests
  std::string string_to_sign;
};

// Signs with the Authorization header. The signer adds x-amz-date and, with a session token,
// x-amz-security-token, and signs them; with `add_content_sha256` (S3 requires it) also
// x-amz-content-sha256 = request.payload_hash. The generic (non-S3) test suite signs without it.
signed_headers sign_headers(const signing_request& request, const signing_scope& scope,
                            bool add_content_sha256 = true);

// The result of pre-signing: the complete query string to put after '?' in the URL.
struct presigned_query {
  std::string query;  // canonical order, encoded, ending with &X-Amz-Signature=...
  std::string signature;
  std::string canonical_request;
  std::string string_to_sign;
};

// Signs with query parameters (a pre-signed URL valid for `expires_s` seconds, 1 to 604800).
// request.query carries the caller's own parameters (response-content-type, ...); the signer
// adds X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and,
// with a session token, X-Amz-Security-Token. request.payload_hash is normally
// k_unsigned_payload.
presigned_query presign(const signing_request& request, const signing_scope& scope,
                        std::int64_t expires_s);

// ---- the building blocks, public for tests ----

// Percent-encodes every byte outside A-Za-z0-9-_.~ (and outside '/' when `keep_slash`).
std::string uri_encode(std::string_view bytes, bool keep_slash);
// "20130524T000000Z"
std::string amz_date(std::chrono::system_clock::time_point time);
// name=value pairs, encoded, sorted by encoded name then encoded value, joined with '&'.
std::string canonical_query(const param_list& query);

}  // namespace parley::blob::s3
