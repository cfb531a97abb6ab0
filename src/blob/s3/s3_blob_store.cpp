#include "blob/s3/s3_blob_store.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

#include "blob/s3/s3_connection.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::blob::s3 {

using chat::errc;
using chat::make_error;

// What the store, its writers and its readers share: the configuration (immutable) and the idle
// connections.
struct s3_blob_store::shared {
  explicit shared(s3_config c) : config(std::move(c)) {}

  const s3_config config;
  std::mutex mutex;
  std::vector<std::unique_ptr<s3_connection>> idle;  // guarded by mutex

  // Enough for the worker threads that use the store at once; more are closed when returned.
  static constexpr std::size_t k_max_idle = 16;
};

namespace {

using shared_state = s3_blob_store::shared;

// A connection taken from the pool for one operation (or one writer / reader), given back on
// destruction so that its keep-alive connection serves the next caller.
class connection_lease {
 public:
  explicit connection_lease(std::shared_ptr<shared_state> state) : state_(std::move(state)) {
    {
      std::lock_guard lock(state_->mutex);
      if (!state_->idle.empty()) {
        connection_ = std::move(state_->idle.back());
        state_->idle.pop_back();
      }
    }
    if (!connection_) connection_ = std::make_unique<s3_connection>(state_->config);
  }
  ~connection_lease() {
    std::lock_guard lock(state_->mutex);
    if (state_->idle.size() < shared_state::k_max_idle)
      state_->idle.push_back(std::move(connection_));
  }
  connection_lease(const connection_lease&) = delete;
  connection_lease& operator=(const connection_lease&) = delete;

  s3_connection* operator->() { return connection_.get(); }

 private:
  std::shared_ptr<shared_state> state_;
  std::unique_ptr<s3_connection> connection_;
};

std::string full_key(const s3_config& config, std::string_view key) {
  return config.prefix + std::string(key);
}

chat::error refuse_key(std::string_view key) {
  std::string shown(key.substr(0, 64));
  for (auto& c : shown)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return make_error(errc::bad_request, "s3: key \"" + shown + "\" is not a valid blob key");
}

// The error for a response that is not what the operation expected. 403 gets a hint: it is
// nearly always the credentials, the clock or the bucket policy, not the object.
chat::error failure(std::string_view what, std::string_view key, const s3_response& response) {
  std::string message = "s3 " + std::string(what);
  if (!key.empty()) message += " " + std::string(key);
  message += ": " + describe_status(response);
  if (response.status == 403)
    message +=
        " (S3 refused the request: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
        "AWS_SESSION_TOKEN, the region, the clock, and the bucket's policy)";
  return make_error(errc::unavailable, std::move(message));
}

// Adds the operation to a transport error's message ("s3 GET http://...: Couldn't connect").
chat::error with_context(chat::error e, std::string_view what) {
  e.message = std::string(what) + ": " + e.message;
  return e;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// ---- writer ----

// States: open (appending; parts may be uploaded already) -> committed, or -> failed after any
// error (every later call fails; the destructor aborts the multipart upload if there is one).
class s3_writer final : public chat::blob_writer {
 public:
  s3_writer(std::shared_ptr<shared_state> state, std::string key)
      : state_(state), connection_(std::move(state)), key_(std::move(key)) {}

  ~s3_writer() override {
    if (upload_id_.empty() || state_kind_ == kind::committed) return;
    s3_request abort{.method = "DELETE", .object_key = key_, .query = {{"uploadId", upload_id_}}};
    auto r = connection_->send(abort);
    if (!r.ok() || (r->status != 204 && r->status != 200 && r->status != 404)) {
      util::log_warn(
          "s3: could not abort the multipart upload of {} ({}); a bucket lifecycle "
          "rule for incomplete uploads removes its parts",
          key_, r.ok() ? describe_status(*r) : r.err().message);
    }
  }

  chat::status append(std::string_view bytes) override {
    if (auto refused = check_open(); !refused.ok()) return refused;
    const std::size_t part_size = state_->config.part_size;
    buffer_.append(bytes);
    // Only a buffer *larger* than a part is cut: an object of exactly part_size bytes is still
    // one PUT, and the last part of a multipart upload is never empty.
    while (buffer_.size() > part_size) {
      if (auto sent = upload_part(std::string_view(buffer_).substr(0, part_size)); !sent.ok())
        return fail(sent.err());
      buffer_.erase(0, part_size);
    }
    return chat::ok_status();
  }

  chat::status commit() override {
    if (auto refused = check_open(); !refused.ok()) return refused;
    if (upload_id_.empty()) {
      s3_request put{.method = "PUT", .object_key = key_, .body = buffer_};
      auto r = connection_->send(put);
      if (!r.ok()) return fail(with_context(r.err(), "s3 put " + key_));
      if (r->status != 200) return fail(failure("put", key_, *r));
    } else {
      if (auto sent = upload_part(buffer_); !sent.ok()) return fail(sent.err());
      if (auto completed = complete(); !completed.ok()) return fail(completed.err());
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
    state_kind_ = kind::committed;
    return chat::ok_status();
  }

 private:
  enum class kind { open, committed, failed };

  chat::status check_open() const {
    if (state_kind_ == kind::committed)
      return make_error(errc::internal, "s3: writer of " + key_ + " used after commit()");
    if (state_kind_ == kind::failed)
      return make_error(errc::unavailable, "s3: writer of " + key_ + " failed earlier");
    return chat::ok_status();
  }

  chat::status fail(chat::error e) {
    state_kind_ = kind::failed;
    return e;
  }

  chat::status start_multipart() {
    s3_request create{.method = "POST", .object_key = key_, .query = {{"uploads", ""}}};
    auto r = connection_->send(create);
    if (!r.ok()) return with_context(r.err(), "s3 create multipart upload " + key_);
    if (r->status != 200) return failure("create multipart upload", key_, *r);
    upload_id_ = xml_element(r->body, "UploadId");
    if (upload_id_.empty())
      return make_error(errc::unavailable,
                        "s3 create multipart upload " + key_ + ": no UploadId in the answer");
    return chat::ok_status();
  }

  chat::status upload_part(std::string_view bytes) {
    if (upload_id_.empty()) {
      if (auto started = start_multipart(); !started.ok()) return started;
    }
    std::string number = std::to_string(etags_.size() + 1);
    s3_request part{.method = "PUT",
                    .object_key = key_,
                    .query = {{"partNumber", number}, {"uploadId", upload_id_}},
                    .body = bytes};
    auto r = connection_->send(part);
    if (!r.ok()) return with_context(r.err(), "s3 upload part " + number + " of " + key_);
    if (r->status != 200) return failure("upload part " + number + " of", key_, *r);
    if (r->etag.empty())
      return make_error(errc::unavailable,
                        "s3 upload part " + number + " of " + key_ + ": no ETag in the answer");
    etags_.push_back(r->etag);
    return chat::ok_status();
  }

  chat::status complete() {
    std::string xml = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < etags_.size(); ++i) {
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
             xml_escape(etags_[i]) + "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    s3_request done{.method = "POST",
                    .object_key = key_,
                    .query = {{"uploadId", upload_id_}},
                    .headers = {{"Content-Type", "application/xml"}},
                    .body = xml};
    auto r = connection_->send(done);
    if (!r.ok()) return with_context(r.err(), "s3 complete multipart upload " + key_);
    // S3 may answer 200 and still fail: the error is then in the body (it keeps the connection
    // alive with whitespace while it assembles the parts).
    if (r->status != 200 || r->body.find("<Error>") != std::string::npos)
      return failure("complete multipart upload", key_, *r);
    return chat::ok_status();
  }

  std::shared_ptr<shared_state> state_;
  connection_lease connection_;
  std::string key_;  // prefix included
  std::string buffer_;
  std::string upload_id_;           // empty: no multipart upload (yet)
  std::vector<std::string> etags_;  // of parts 1..n
  kind state_kind_ = kind::open;
};

// ---- reader ----

class s3_reader final : public chat::blob_reader {
 public:
  s3_reader(std::shared_ptr<shared_state> state, std::string key, std::uint64_t offset,
            std::uint64_t length)
      : state_(state),
        connection_(std::move(state)),
        key_(std::move(key)),
        next_(offset),
        end_(offset + length) {}

  // The first request: a ranged GET of the first piece, or a HEAD for an empty range. A missing
  // object is not_found here.
  chat::status start() {
    if (next_ < end_) return fetch(/*first=*/true);
    s3_request head{.method = "HEAD", .object_key = key_};
    auto r = connection_->send(head);
    if (!r.ok()) return with_context(r.err(), "s3 open " + key_);
    if (r->status == 404) return make_error(errc::not_found, "s3: no object " + key_);
    if (r->status != 200) return failure("open", key_, *r);
    return chat::ok_status();
  }

  chat::result<std::size_t> read(char* out, std::size_t capacity) override {
    if (taken_ == piece_.size()) {
      if (next_ >= end_ || capacity == 0) return std::size_t{0};
      if (auto fetched = fetch(/*first=*/false); !fetched.ok()) return fetched.err();
      if (taken_ == piece_.size()) return std::size_t{0};
    }
    std::size_t n = std::min(capacity, piece_.size() - taken_);
    std::copy_n(piece_.data() + taken_, n, out);
    taken_ += n;
    return n;
  }

 private:
  // Cases of one ranged GET for [next_, next_ + piece):
  //   206: the bytes; fewer than asked means the object ends there (the range ends with it).
  //   200: a server that ignores Range sent the object from byte 0: usable only when next_ is
  //        0, cut to the piece (the body limit refuses an object larger than one piece).
  //   416: the range starts past the end of the object: nothing more to read.
  //   404: not_found on the first request; later, the object went away mid-read: unavailable.
  chat::status fetch(bool first) {
    const std::uint64_t piece =
        std::min<std::uint64_t>(state_->config.read_piece_size, end_ - next_);
    s3_request get{.method = "GET",
                   .object_key = key_,
                   .headers = {{"Range", "bytes=" + std::to_string(next_) + "-" +
                                             std::to_string(next_ + piece - 1)}},
                   .max_response_body = static_cast<std::size_t>(piece)};
    auto r = connection_->send(get);
    if (!r.ok()) return with_context(r.err(), "s3 read " + key_);
    piece_.clear();
    taken_ = 0;
    if (r->status == 404) {
      if (first) return make_error(errc::not_found, "s3: no object " + key_);
      return make_error(errc::unavailable, "s3 read " + key_ + ": the object was removed");
    }
    if (r->status == 416) {
      end_ = next_;
      return chat::ok_status();
    }
    if (r->status != 206 && !(r->status == 200 && next_ == 0)) return failure("read", key_, *r);
    piece_ = std::move(r->body);
    if (piece_.size() > piece) piece_.resize(piece);
    next_ += piece_.size();
    if (piece_.size() < piece) end_ = next_;
    return chat::ok_status();
  }

  std::shared_ptr<shared_state> state_;
  connection_lease connection_;
  std::string key_;
  std::uint64_t next_;  // first byte not fetched yet
  std::uint64_t end_;   // one past the last byte of the range
  std::string piece_;   // the last piece fetched, at most read_piece_size bytes
  std::size_t taken_ = 0;
};

}  // namespace

s3_blob_store::s3_blob_store(s3_config config)
    : shared_(std::make_shared<shared>(std::move(config))) {
  util::init_crypto();
}

s3_blob_store::~s3_blob_store() = default;

chat::result<std::unique_ptr<chat::blob_writer>> s3_blob_store::create(std::string_view key) {
  if (!chat::valid_blob_key(key)) return refuse_key(key);
  return std::unique_ptr<chat::blob_writer>(
      std::make_unique<s3_writer>(shared_, full_key(shared_->config, key)));
}

chat::result<std::unique_ptr<chat::blob_reader>> s3_blob_store::open(std::string_view key,
                                                                     std::uint64_t offset,
                                                                     std::uint64_t length) {
  if (!chat::valid_blob_key(key)) return refuse_key(key);
  auto reader =
      std::make_unique<s3_reader>(shared_, full_key(shared_->config, key), offset, length);
  if (auto started = reader->start(); !started.ok()) return started.err();
  return std::unique_ptr<chat::blob_reader>(std::move(reader));
}

chat::result<std::optional<std::uint64_t>> s3_blob_store::size_of(std::string_view key) {
  if (!chat::valid_blob_key(key)) return refuse_key(key);
  std::string object = full_key(shared_->config, key);
  connection_lease connection(shared_);
  auto r = connection->send({.method = "HEAD", .object_key = object});
  if (!r.ok()) return with_context(r.err(), "s3 size of " + object);
  if (r->status == 404) return std::optional<std::uint64_t>{};
  if (r->status != 200) return failure("size of", object, *r);
  if (!r->content_length)
    return make_error(errc::unavailable, "s3 size of " + object + ": no Content-Length");
  return std::optional<std::uint64_t>{*r->content_length};
}

chat::status s3_blob_store::remove(std::string_view key) {
  if (!chat::valid_blob_key(key)) return refuse_key(key);
  std::string object = full_key(shared_->config, key);
  connection_lease connection(shared_);
  auto r = connection->send({.method = "DELETE", .object_key = object});
  if (!r.ok()) return with_context(r.err(), "s3 remove " + object);
  // S3 answers 204 whether or not the object existed; other services may say 404.
  if (r->status != 204 && r->status != 200 && r->status != 404)
    return failure("remove", object, *r);
  return chat::ok_status();
}

chat::result<std::optional<std::string>> s3_blob_store::presign_get(
    std::string_view key, const chat::presign_request& req) {
  if (!chat::valid_blob_key(key)) return refuse_key(key);
  if (req.expires_in_s < 1 || req.expires_in_s > 604800)
    return make_error(errc::bad_request, "s3: a pre-signed URL lasts 1 to 604800 seconds, not " +
                                             std::to_string(req.expires_in_s));
  const auto& config = shared_->config;
  auto location = locate(config, full_key(config, key));
  signing_request to_sign;
  to_sign.method = "GET";
  to_sign.host = location.host;
  to_sign.path = location.path;
  to_sign.payload_hash = std::string(k_unsigned_payload);
  if (!req.content_type.empty())
    to_sign.query.emplace_back("response-content-type", req.content_type);
  if (!req.content_disposition.empty())
    to_sign.query.emplace_back("response-content-disposition", req.content_disposition);
  signing_scope scope{config.creds, config.region, "s3", std::chrono::system_clock::now()};
  auto signed_query = presign(to_sign, scope, req.expires_in_s);
  return std::optional<std::string>{location.url + "?" + signed_query.query};
}

chat::status s3_blob_store::health() {
  const auto& config = shared_->config;
  connection_lease connection(shared_);
  auto r = connection->send({.method = "HEAD"});
  if (!r.ok()) return with_context(r.err(), "s3 health");
  if (r->status == 404)
    return make_error(errc::unavailable,
                      "s3: bucket " + config.bucket + " does not exist at " + endpoint_url(config));
  if (r->status != 200) return failure("health of bucket", config.bucket, *r);
  return chat::ok_status();
}

std::string s3_blob_store::describe() const {
  const auto& config = shared_->config;
  std::string out = "s3 bucket " + config.bucket + " at " + endpoint_url(config);
  if (!config.prefix.empty()) out += " under prefix " + config.prefix;
  return out;
}

}  // namespace parley::blob::s3
