#include "server/media_http.hpp"

#include <boost/beast/http/field.hpp>
#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "chat/media_access.hpp"
#include "chat/media_types.hpp"
#include "proto/http_body.hpp"
#include "server/http_common.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace parley::server {

namespace http = boost::beast::http;
using chat::errc;
using chat::make_error;

namespace {

constexpr std::string_view kMediaPrefix = "/v1/media/";

// What a browser may do with a media it opens directly: show it, nothing else (no script, no
// plugin, no form, no navigation of the opener), and never inside someone else's frame.
constexpr std::string_view kMediaCsp =
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'";

// The value of `name` in a query string (no percent-decoding: our values never need it), or
// nothing when absent.
std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// One byte range of a `Range: bytes=...` header against an object of `size` bytes (RFC 9110
// §14.1.2). Several ranges, or another unit, are not supported: the whole object is served
// (which the RFC allows). `unsatisfiable` is set for a range that starts past the end.
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};

std::optional<byte_range> parse_range(std::string_view value, std::uint64_t size, bool& unsatisfiable) {
  unsatisfiable = false;
  constexpr std::string_view unit = "bytes=";
  if (!value.starts_with(unit)) return std::nullopt;
  value.remove_prefix(unit.size());
  if (value.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first_text = value.substr(0, dash);
  auto last_text = value.substr(dash + 1);
  std::uint64_t first = 0, last = 0;
  if (first_text.empty()) {  // bytes=-N: the last N bytes
    if (!parse_u64(last_text, last)) return std::nullopt;
    if (last == 0 || size == 0) {
      unsatisfiable = true;
      return std::nullopt;
    }
    auto n = std::min(last, size);
    return byte_range{size - n, n};
  }
  if (!parse_u64(first_text, first)) return std::nullopt;
  if (last_text.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!parse_u64(last_text, last) || last < first) {
    return std::nullopt;  // malformed: ignored, the whole object is served
  }
  if (first >= size) {
    unsatisfiable = true;
    return std::nullopt;
  }
  last = std::min(last, size - 1);
  return byte_range{first, last - first + 1};
}

// Streams a blob reader as a reply body; a failure mid-way cuts the connection (net).
class blob_body final : public net::body_source {
 public:
  explicit blob_body(std::unique_ptr<chat::blob_reader> reader) : reader_(std::move(reader)) {}
  std::size_t read(char* out, std::size_t capacity) override {
    auto n = reader_->read(out, capacity);
    if (!n) throw std::runtime_error("media read failed: " + n.err().message);
    return *n;
  }

 private:
  std::unique_ptr<chat::blob_reader> reader_;
};

class no_body final : public net::body_source {
 public:
  std::size_t read(char*, std::size_t) override { return 0; }
};

// Feeds an upload from net's streamed body.
class upload_sink final : public net::body_sink {
 public:
  upload_sink(std::unique_ptr<chat::media_upload> upload, unsigned version)
      : upload_(std::move(upload)), version_(version) {}

  std::optional<net::http_response> write(std::string_view piece) override {
    auto appended = upload_->append(piece);
    if (!appended) return respond_error(version_, appended.err());
    return std::nullopt;
  }

  net::http_response finish() override {
    auto media = upload_->finish();
    if (!media) return respond_error(version_, media.err());
    util::log_info("media {} uploaded by {}: {} bytes of {}", media->id, media->owner, media->size,
                   media->mime);
    auto res = respond(version_, http::status::created, proto::media_uploaded_body(*media));
    res.set(http::field::location, std::string(kMediaPrefix) + media->id);
    return res;
  }

 private:
  std::unique_ptr<chat::media_upload> upload_;
  unsigned version_;
};

}  // namespace

net::upload_handler media_http::upload_handler() {
  net::upload_handler h;
  h.wants = [](const net::http_request_head& head) {
    auto target = std::string_view(head.target().data(), head.target().size());
    return head.method() == http::verb::post && target.substr(0, target.find('?')) == "/v1/media";
  };
  h.decide = [this](const net::http_request_head& head, const std::string&) {
    return begin_upload(head);
  };
  return h;
}

net::upload_decision media_http::begin_upload(const net::http_request_head& head) {
  const unsigned version = head.version();
  auto token = bearer_token(head);
  if (token.empty())
    return respond_error(version, make_error(errc::unauthenticated, "a Bearer token is required"));
  auto who = service_.authenticate(token);
  if (!who) return respond_error(version, who.err());

  std::optional<std::uint64_t> declared;
  if (auto length = header_value(head, http::field::content_length); !length.empty()) {
    std::uint64_t n = 0;
    if (!parse_u64(length, n))
      return respond_error(version, make_error(errc::bad_request, "bad Content-Length"));
    declared = n;
  } else if (header_value(head, http::field::transfer_encoding).find("chunked") == std::string_view::npos) {
    // Neither a length nor chunks: the body would run to the end of the connection.
    return respond_error(version, make_error(errc::bad_request, "Content-Length is required"));
  }
  auto type = header_value(head, http::field::content_type);
  if (type.empty())
    return respond_error(version, make_error(errc::bad_request, "Content-Type is required"));
  auto upload = media_.begin_upload(who->user_id, type, declared);
  if (!upload) return respond_error(version, upload.err());
  return std::unique_ptr<net::body_sink>(std::make_unique<upload_sink>(std::move(*upload), version));
}

net::http_reply media_http::download(const net::http_request& req) {
  const unsigned version = req.version();
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return respond_method_not_allowed(version, "GET, HEAD");
  auto target = std::string_view(req.target().data(), req.target().size());
  auto query_at = target.find('?');
  auto id = target.substr(kMediaPrefix.size(), query_at - kMediaPrefix.size());
  auto query = query_at == std::string_view::npos ? std::string_view() : target.substr(query_at + 1);
  // Ids are made by the server: anything else (`..`, `%2F`, a NUL) names nothing.
  if (!chat::valid_media_id(id))
    return respond_error(version, make_error(errc::not_found, "unknown media_id"));

  // A signed URL, else a Bearer token.
  auto exp = query_value(query, "exp");
  auto sig = query_value(query, "sig");
  chat::result<chat::media_record> media = make_error(errc::internal, "unset");
  std::optional<std::int64_t> url_expires_s;  // set when a signed URL grants the access
  if (exp || sig) {
    auto grant = media_.signed_media(id, exp.value_or(""), sig.value_or(""));
    if (!grant) return respond_error(version, grant.err());
    url_expires_s = grant->expires_s;
    media = std::move(grant->media);
  } else {
    auto token = bearer_token(req);
    if (token.empty())
      return respond_error(version,
                           make_error(errc::unauthenticated, "a Bearer token or a signed URL is required"));
    auto who = service_.authenticate(token);
    if (!who) return respond_error(version, who.err());
    media = chat::readable_media(service_.storage(), who->user_id, id);
  }
  if (!media) return respond_error(version, media.err());

  const std::string etag = "\"" + media->sha256 + "\"";
  net::http_response res{http::status::ok, version};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, media->mime);
  res.set(http::field::etag, etag);
  res.set(http::field::accept_ranges, "bytes");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", kMediaCsp);
  res.set("Cross-Origin-Resource-Policy", "same-origin");
  res.set("Referrer-Policy", "no-referrer");
  // The bytes never change, but who may read them can: a shared cache must not keep them.
  if (url_expires_s) {
    // Never cached past the URL's own expiry.
    auto left = std::clamp<std::int64_t>(*url_expires_s - util::now_ms() / 1000, 0, 300);
    res.set(http::field::cache_control, "private, max-age=" + std::to_string(left));
  } else {
    res.set(http::field::cache_control, "private, no-cache");
  }
  if (!chat::shown_inline(media->mime)) res.set(http::field::content_disposition, "attachment");

  if (auto inm = header_value(req, http::field::if_none_match);
      !inm.empty() && (inm == etag || inm == "*" || inm.find(etag) != std::string_view::npos)) {
    res.result(http::status::not_modified);
    return res;
  }

  std::uint64_t first = 0, length = media->size;
  if (auto range_header = header_value(req, http::field::range); !range_header.empty()) {
    // If-Range: the range applies only while the object is the one the client has.
    auto if_range = header_value(req, http::field::if_range);
    if (if_range.empty() || if_range == etag) {
      bool unsatisfiable = false;
      auto range = parse_range(range_header, media->size, unsatisfiable);
      if (unsatisfiable) {
        auto refused = respond_error(version, make_error(errc::bad_request, "range not satisfiable"));
        refused.result(http::status::range_not_satisfiable);
        refused.set(http::field::content_range, "bytes */" + std::to_string(media->size));
        return refused;
      }
      if (range) {
        first = range->first;
        length = range->length;
        res.result(http::status::partial_content);
        res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                                std::to_string(first + length - 1) + "/" +
                                                std::to_string(media->size));
      }
    }
  }
  res.content_length(length);
  // HEAD: the head of the GET answer; an empty source keeps net from rewriting its length.
  if (req.method() == http::verb::head)
    return net::http_reply(std::move(res), std::make_unique<no_body>());
  if (length == 0) return res;
  auto reader = media_.open(*media, first, length);
  if (!reader) {
    util::log_error("media {}: cannot open its bytes: {}", media->id, reader.err().message);
    // Whatever the store says (missing bytes, a short object), it is the server's fault.
    return respond_error(version, make_error(errc::unavailable, "the media's bytes cannot be read"));
  }
  return net::http_reply(std::move(res), std::make_unique<blob_body>(std::move(*reader)));
}

}  // namespace parley::server
