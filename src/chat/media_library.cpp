#include "chat/media_library.hpp"

#include <charconv>

#include "chat/media_access.hpp"
#include "chat/media_types.hpp"
#include "util/clock.hpp"

namespace parley::chat {

namespace {

constexpr std::int64_t kMaxUrlLifetimeS = 3600;  // the longest a signed URL may live
constexpr std::int64_t kClockSlackS = 60;        // nodes' clocks may differ this much

std::string too_large_message(std::uint64_t max) {
  return "media larger than " + std::to_string(max) + " bytes";
}

}  // namespace

bool upload_slots::acquire(const std::string& user) {
  std::lock_guard lock(mutex_);
  auto& mine = per_user_[user];
  if (total_ >= max_total_ || mine >= max_per_user_) {
    if (mine == 0) per_user_.erase(user);
    return false;
  }
  ++total_;
  ++mine;
  return true;
}

void upload_slots::release(const std::string& user) {
  std::lock_guard lock(mutex_);
  --total_;
  if (auto it = per_user_.find(user); it != per_user_.end() && --it->second == 0) per_user_.erase(it);
}

media_upload::media_upload(store& db, blob_store& blobs, std::string owner, std::string mime,
                           std::optional<std::uint64_t> declared_size, std::uint64_t max_bytes,
                           upload_slots& slots)
    : db_(db), blobs_(blobs), declared_size_(declared_size), max_bytes_(max_bytes), slots_(slots) {
  record_.id = util::random_id('m');
  record_.owner = std::move(owner);
  record_.mime = std::move(mime);
  record_.blob_key = "m/" + record_.id;
}

media_upload::~media_upload() {
  writer_.reset();  // discards an unfinished object first (may block: S3 abort)
  slots_.release(record_.owner);
}

status media_upload::append(std::string_view bytes) {
  if (dead_) return make_error(errc::internal, "upload already failed");
  auto fail = [&](error e) -> status {
    dead_ = true;
    writer_.reset();  // discards what was written
    return e;
  };
  const std::uint64_t limit = std::min(max_bytes_, declared_size_.value_or(max_bytes_));
  if (bytes.size() > limit - record_.size) {
    return fail(make_error(errc::too_large, declared_size_ && *declared_size_ < max_bytes_
                                                ? "more bytes than the declared Content-Length"
                                                : too_large_message(max_bytes_)));
  }
  record_.size += bytes.size();
  hash_.update(bytes);
  if (!head_written_) {
    auto take = std::min(bytes.size(), kMediaSniffBytes - head_.size());
    head_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (head_.size() < kMediaSniffBytes) return ok_status();
    if (auto flushed = flush_head(); !flushed) return fail(flushed.err());
  }
  if (!bytes.empty()) {
    if (auto written = writer_->append(bytes); !written) return fail(written.err());
  }
  return ok_status();
}

status media_upload::flush_head() {
  if (auto inspected = inspect_upload(record_.mime, head_); !inspected) return inspected;
  auto writer = blobs_.create(record_.blob_key);
  if (!writer) return writer.err();
  writer_ = std::move(*writer);
  if (auto written = writer_->append(head_); !written) return written;
  head_written_ = true;
  head_.clear();
  head_.shrink_to_fit();
  return ok_status();
}

result<media_record> media_upload::finish() {
  if (dead_) return make_error(errc::internal, "upload already failed");
  dead_ = true;  // whatever happens below, this upload is over
  if (declared_size_ && record_.size != *declared_size_)
    return make_error(errc::bad_request, "fewer bytes than the declared Content-Length");
  if (!head_written_) {
    if (auto flushed = flush_head(); !flushed) {
      writer_.reset();
      return flushed.err();
    }
  }
  auto committed = writer_->commit();
  writer_.reset();  // committed, or discarded now (on this worker thread) when it failed
  if (!committed) return committed.err();
  record_.sha256 = util::to_hex(hash_.finish());
  record_.created = util::now_ms();
  if (auto created = db_.create_media(record_); !created) {
    // The bytes are committed but unrecorded: nobody can reach them. Remove them now.
    (void)blobs_.remove(record_.blob_key);
    return created.err();
  }
  return record_;
}

media_library::media_library(store& db, blob_store& blobs, options opts)
    : db_(db), blobs_(blobs), opts_(std::move(opts)),
      slots_(opts_.max_uploads, opts_.max_uploads_per_user) {
  opts_.url_ttl_s = std::clamp<std::int64_t>(opts_.url_ttl_s, 1, kMaxUrlLifetimeS);
}

result<std::unique_ptr<media_upload>> media_library::begin_upload(
    std::string_view user_id, std::string_view content_type,
    std::optional<std::uint64_t> declared_size) {
  auto mime = normalize_upload_type(content_type);
  if (!mime) return mime.err();
  if (declared_size && *declared_size > opts_.max_bytes)
    return make_error(errc::too_large, too_large_message(opts_.max_bytes));
  std::string owner(user_id);
  if (!slots_.acquire(owner)) {
    auto e = make_error(errc::rate_limited, "too many uploads in progress; try again shortly");
    e.retry_ms = 1000;
    return e;
  }
  return std::make_unique<media_upload>(db_, blobs_, std::move(owner), std::move(*mime),
                                        declared_size, opts_.max_bytes, slots_);
}

std::string media_library::signature(std::string_view media_id, std::int64_t exp_s) const {
  // Versioned and delimited, so that no other (id, exp) pair signs the same bytes.
  std::string message = "parley-media-url-v1\n";
  message.append(media_id).append("\n").append(std::to_string(exp_s));
  return util::to_hex(util::hmac_sha256(opts_.url_secret, message));
}

result<media_library::signed_access> media_library::signed_media(std::string_view media_id,
                                                                 std::string_view exp,
                                                                 std::string_view sig) {
  auto refused = [] { return make_error(errc::forbidden, "invalid or expired media URL"); };
  if (!valid_media_id(media_id) || exp.empty() || exp.size() > 12) return refused();
  std::int64_t exp_s = 0;
  auto [end, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), exp_s);
  if (ec != std::errc() || end != exp.data() + exp.size() || exp_s <= 0) return refused();
  if (!util::equal_constant_time(sig, signature(media_id, exp_s))) return refused();
  const std::int64_t now_s = util::now_ms() / 1000;
  if (exp_s < now_s) return make_error(errc::forbidden, "this media URL has expired");
  // No URL lives longer than an hour (PROTOCOL §2), whoever signed it: one valid for longer
  // was not issued by this server as configured (a leaked key, say), and is refused.
  if (exp_s > now_s + kMaxUrlLifetimeS + kClockSlackS) return refused();
  auto media = db_.find_media(media_id);
  if (!media) return media.err();
  if (!*media) return make_error(errc::not_found, "unknown media_id");
  return signed_access{std::move(**media), exp_s};
}

result<media_library::media_url> media_library::url_for(std::string_view user_id,
                                                        std::string_view media_id) {
  auto media = readable_media(db_, user_id, media_id);
  if (!media) return media.err();
  const std::int64_t exp_s = util::now_ms() / 1000 + opts_.url_ttl_s;
  if (opts_.direct_urls) {
    presign_request req;
    req.expires_in_s = opts_.url_ttl_s;
    req.content_type = media->mime;
    if (!shown_inline(media->mime)) req.content_disposition = "attachment";
    auto direct = blobs_.presign_get(media->blob_key, req);
    if (!direct) return direct.err();
    if (*direct) return media_url{std::move(**direct), exp_s * 1000};
  }
  std::string url = "/v1/media/" + media->id + "?exp=" + std::to_string(exp_s) +
                    "&sig=" + signature(media->id, exp_s);
  return media_url{std::move(url), exp_s * 1000};
}

result<std::unique_ptr<blob_reader>> media_library::open(const media_record& media,
                                                         std::uint64_t offset,
                                                         std::uint64_t length) {
  return blobs_.open(media.blob_key, offset, length);
}

}  // namespace parley::chat
