#include "blob/s3/sigv4.hpp"

#include <time.h>

#include <algorithm>
#include <map>

#include "util/crypto.hpp"

// The four steps of SigV4 (AWS General Reference, "Create a signed AWS API request"):
//   1. canonical request: METHOD \n path \n query \n headers \n\n signed-header-list \n hash
//   2. string to sign:    AWS4-HMAC-SHA256 \n date \n scope \n hex(sha256(canonical request))
//   3. signing key:       HMAC chain over "AWS4"+secret, date, region, service, "aws4_request"
//   4. signature:         hex(HMAC(signing key, string to sign))
// Header signing puts the result in Authorization; query signing puts the X-Amz-* fields in the
// query itself (they are part of the canonical query) and the signature last, outside it.

namespace parley::blob::s3 {

namespace {

constexpr std::string_view k_algorithm = "AWS4-HMAC-SHA256";

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

char to_lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), to_lower_ascii);
  return out;
}

// Header values are signed trimmed, with every inner run of blanks as one space (what the AWS
// SDKs do; tabs count as blanks there too).
std::string canonical_header_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  auto d = util::hmac_sha256(key, data);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

std::string date_of(std::string_view amz_date_value) {
  return std::string(amz_date_value.substr(0, 8));
}

std::string credential_scope(const signing_scope& scope, std::string_view date) {
  std::string out(date);
  out.append("/").append(scope.region).append("/").append(scope.service).append("/aws4_request");
  return out;
}

// Canonical headers ("name:value\n" each, sorted by name) and the signed-header list
// ("a;b;c"). std::map keeps the names sorted and merges names that differ only in case.
struct canonical_headers {
  std::string block;
  std::string names;
};

canonical_headers make_canonical_headers(const param_list& headers) {
  std::map<std::string, std::string> merged;
  for (const auto& [name, value] : headers) {
    auto [it, inserted] = merged.try_emplace(lower(name), canonical_header_value(value));
    if (!inserted) it->second.append(",").append(canonical_header_value(value));
  }
  canonical_headers out;
  for (const auto& [name, value] : merged) {
    out.block.append(name).append(":").append(value).append("\n");
    if (!out.names.empty()) out.names.push_back(';');
    out.names.append(name);
  }
  return out;
}

struct signature_parts {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

signature_parts compute_signature(std::string_view method, std::string_view path,
                                  std::string_view query, const canonical_headers& headers,
                                  std::string_view payload_hash, const signing_scope& scope,
                                  std::string_view date_time) {
  signature_parts parts;
  auto& creq = parts.canonical_request;
  creq.append(method).append("\n");
  creq.append(uri_encode(path, /*keep_slash=*/true)).append("\n");
  creq.append(query).append("\n");
  creq.append(headers.block).append("\n");
  creq.append(headers.names).append("\n");
  creq.append(payload_hash);

  std::string date = date_of(date_time);
  auto& sts = parts.string_to_sign;
  sts.append(k_algorithm).append("\n");
  sts.append(date_time).append("\n");
  sts.append(credential_scope(scope, date)).append("\n");
  sts.append(util::to_hex(util::sha256(creq)));

  std::string key = hmac("AWS4" + scope.creds.secret_access_key, date);
  key = hmac(key, scope.region);
  key = hmac(key, scope.service);
  key = hmac(key, "aws4_request");
  parts.signature = util::to_hex(util::hmac_sha256(key, sts));
  return parts;
}

}  // namespace

std::string uri_encode(std::string_view bytes, bool keep_slash) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    }
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point time) {
  std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(time));
  std::tm utc{};
  gmtime_r(&t, &utc);
  char out[32];
  std::size_t n = std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(out, n);
}

std::string canonical_query(const param_list& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query)
    encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
  // Byte order of the encoded forms, name first, then value (pairs compare that way).
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

signed_headers sign_headers(const signing_request& request, const signing_scope& scope,
                            bool add_content_sha256) {
  signed_headers out;
  std::string date_time = amz_date(scope.time);

  // What the signer adds, in the order it is returned (authorization goes first, below).
  param_list added{{"x-amz-date", date_time}};
  if (add_content_sha256) added.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (!scope.creds.session_token.empty())
    added.emplace_back("x-amz-security-token", scope.creds.session_token);

  param_list all{{"host", request.host}};
  all.insert(all.end(), request.headers.begin(), request.headers.end());
  all.insert(all.end(), added.begin(), added.end());
  auto headers = make_canonical_headers(all);

  auto parts = compute_signature(request.method, request.path, canonical_query(request.query),
                                 headers, request.payload_hash, scope, date_time);
  out.authorization = std::string(k_algorithm) + " Credential=" + scope.creds.access_key_id + "/" +
                      credential_scope(scope, date_of(date_time)) +
                      ", SignedHeaders=" + headers.names + ", Signature=" + parts.signature;
  out.headers.emplace_back("authorization", out.authorization);
  out.headers.insert(out.headers.end(), added.begin(), added.end());
  out.signature = std::move(parts.signature);
  out.canonical_request = std::move(parts.canonical_request);
  out.string_to_sign = std::move(parts.string_to_sign);
  return out;
}

presigned_query presign(const signing_request& request, const signing_scope& scope,
                        std::int64_t expires_s) {
  std::string date_time = amz_date(scope.time);
  param_list all_headers{{"host", request.host}};
  all_headers.insert(all_headers.end(), request.headers.begin(), request.headers.end());
  auto headers = make_canonical_headers(all_headers);

  param_list query = request.query;
  query.emplace_back("X-Amz-Algorithm", std::string(k_algorithm));
  query.emplace_back("X-Amz-Credential",
                     scope.creds.access_key_id + "/" + credential_scope(scope, date_of(date_time)));
  query.emplace_back("X-Amz-Date", date_time);
  query.emplace_back("X-Amz-Expires", std::to_string(expires_s));
  query.emplace_back("X-Amz-SignedHeaders", headers.names);
  if (!scope.creds.session_token.empty())
    query.emplace_back("X-Amz-Security-Token", scope.creds.session_token);
  std::string signed_query = canonical_query(query);

  auto parts = compute_signature(request.method, request.path, signed_query, headers,
                                 request.payload_hash, scope, date_time);
  presigned_query out;
  out.query = signed_query + "&X-Amz-Signature=" + parts.signature;
  out.signature = std::move(parts.signature);
  out.canonical_request = std::move(parts.canonical_request);
  out.string_to_sign = std::move(parts.string_to_sign);
  return out;
}

}  // namespace parley::blob::s3
