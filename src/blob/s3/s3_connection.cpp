#include "blob/s3/s3_connection.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "util/crypto.hpp"

namespace parley::blob::s3 {

namespace {

using chat::errc;
using chat::make_error;

// curl_global_init is not thread-safe and must run before the first handle; once per process.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("s3: curl_global_init failed");
  });
}

// An error document (XML with a code and a message) is small, whatever the request.
constexpr std::size_t k_max_error_body = 64 * 1024;

struct transfer {
  s3_response* response;
  std::size_t max_body;  // of a 2xx answer
  long status = 0;       // of the answer being received (from its status line)
  bool body_too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<transfer*>(user);
  std::size_t n = size * count;
  std::size_t limit = t->status >= 200 && t->status < 300 ? t->max_body : k_max_error_body;
  if (t->response->body.size() + n > limit) {
    t->body_too_large = true;
    return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
  }
  t->response->body.append(data, n);
  return n;
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != name[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Called once per header line, for every response (a "100 Continue" too): a status line starts
// the headers afresh.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    t->response->etag.clear();
    auto space = line.find(' ');
    t->status = space == std::string_view::npos
                    ? 0
                    : std::atol(std::string(line.substr(space + 1, 3)).c_str());
  } else if (iequals_prefix(line, "etag:")) {
    t->response->etag = trim(line.substr(5));
  }
  return size * count;
}

struct header_list {
  curl_slist* list = nullptr;
  ~header_list() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    if (auto* grown = curl_slist_append(list, line.c_str())) list = grown;
  }
};

}  // namespace

s3_connection::s3_connection(const s3_config& config) : config_(config) {
  init_curl_once();
  curl_ = curl_easy_init();
  if (!curl_) throw std::runtime_error("s3: curl_easy_init failed");
}

s3_connection::~s3_connection() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

chat::result<s3_response> s3_connection::send(const s3_request& request) {
  auto* curl = static_cast<CURL*>(curl_);
  // Reset every option but keep the live connection (and DNS cache) for the next request.
  curl_easy_reset(curl);

  auto location = locate(config_, request.object_key);
  signing_request to_sign;
  to_sign.method = request.method;
  to_sign.host = location.host;
  to_sign.path = location.path;
  to_sign.query = request.query;
  to_sign.headers = request.headers;
  to_sign.payload_hash = request.body.empty() ? std::string(k_empty_payload_sha256)
                                              : util::to_hex(util::sha256(request.body));
  signing_scope scope{config_.creds, config_.region, "s3", std::chrono::system_clock::now()};
  auto signed_request = sign_headers(to_sign, scope);

  // The query exactly as signed (sorted, encoded), so the server computes the same signature.
  std::string url = location.url;
  if (!request.query.empty()) url.append("?").append(canonical_query(request.query));

  header_list headers;
  headers.add("Host: " + location.host);
  for (const auto& [name, value] : request.headers) headers.add(name + ": " + value);
  for (const auto& [name, value] : signed_request.headers) headers.add(name + ": " + value);
  headers.add("Expect:");  // no 100-continue round trip before each part
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers)
    has_content_type = has_content_type || iequals_prefix(name, "content-type");
  if (!has_content_type) headers.add("Content-Type:");  // not curl's form-encoded default

  s3_response response;
  transfer t{&response, request.max_response_body};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // several threads; no SIGALRM for timeouts
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.stall_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method != "DELETE" || !request.body.empty()) {
      // The body from memory, with a Content-Length (also 0: S3 wants one on every PUT).
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      // Never a null pointer: curl would read the body from stdin instead.
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    }
  }

  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    std::string why = t.body_too_large ? "response larger than expected (" +
                                             std::to_string(request.max_response_body) + " bytes)"
                                       : curl_easy_strerror(rc);
    return make_error(errc::unavailable, "s3 " + request.method + " " + location.url + ": " + why);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_off_t length = -1;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (length >= 0) response.content_length = static_cast<std::uint64_t>(length);
  return response;
}

std::string xml_element(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  auto start = xml.find(open);
  if (start == std::string_view::npos) return {};
  start += open.size();
  auto end = xml.find(close, start);
  if (end == std::string_view::npos) return {};
  std::string_view raw = xml.substr(start, end - start);
  std::string out;
  out.reserve(raw.size());
  static constexpr std::pair<std::string_view, char> k_entities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (std::size_t i = 0; i < raw.size();) {
    bool replaced = false;
    if (raw[i] == '&') {
      for (const auto& [entity, c] : k_entities) {
        if (raw.substr(i).starts_with(entity)) {
          out.push_back(c);
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(raw[i++]);
  }
  return out;
}

std::string describe_status(const s3_response& response) {
  std::string out = "HTTP " + std::to_string(response.status);
  std::string code = xml_element(response.body, "Code");
  std::string message = xml_element(response.body, "Message");
  if (!code.empty()) out += " " + code;
  if (!message.empty()) out += ": " + message;
  return out;
}

}  // namespace parley::blob::s3
