// chat::media_library — uploads, downloads and signed URLs of media (PROTOCOL §2, `media.url`).
// Bytes live in the blob store under `m/<media id>`; what the server knows about them (owner,
// type, size, SHA-256) is a media_record in the store, written only once the bytes are
// committed: a record never points to a partial object.
//
// Thread safety: every method may be called from any thread. Uploads and opens block (blob
// store I/O): call them off the event loops. An upload is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "chat/blob_store.hpp"
#include "chat/requests.hpp"
#include "chat/store.hpp"
#include "util/crypto.hpp"

namespace parley::chat {

// Counts uploads in progress, in all and per user, against their caps (each one holds a file
// or an S3 part buffer, and a worker now and then).
class upload_slots {
 public:
  upload_slots(std::size_t max_total, std::size_t max_per_user)
      : max_total_(max_total), max_per_user_(max_per_user) {}
  bool acquire(const std::string& user);
  void release(const std::string& user);

 private:
  std::mutex mutex_;
  std::size_t max_total_;
  std::size_t max_per_user_;
  std::size_t total_ = 0;
  std::unordered_map<std::string, std::size_t> per_user_;
};

// One upload in progress. Destroyed without finish(), it leaves nothing behind.
class media_upload {
 public:
  media_upload(store& db, blob_store& blobs, std::string owner, std::string mime,
               std::optional<std::uint64_t> declared_size, std::uint64_t max_bytes,
               upload_slots& slots);
  ~media_upload();
  media_upload(const media_upload&) = delete;
  media_upload& operator=(const media_upload&) = delete;
  // The next bytes. too_large past the limit or the declared size; unsupported_type when the
  // start of the body is refused (checked once kMediaSniffBytes are in, or at finish);
  // unavailable when the blob store fails. After an error the upload is dead.
  status append(std::string_view bytes);
  // Commits the bytes and records the media. bad_request when fewer bytes than declared came.
  result<media_record> finish();

 private:
  status flush_head();  // inspects the buffered start of the body, then writes it

  store& db_;
  blob_store& blobs_;
  media_record record_;
  std::optional<std::uint64_t> declared_size_;
  std::uint64_t max_bytes_;
  std::string head_;  // the start of the body, held back until inspected
  bool head_written_ = false;
  bool dead_ = false;
  std::unique_ptr<blob_writer> writer_;
  util::sha256_stream hash_;
  upload_slots& slots_;  // one of its slots is ours until destruction
};

class media_library {
 public:
  struct options {
    std::uint64_t max_bytes = 100ull * 1024 * 1024;
    std::string url_secret;               // the HMAC key of signed URLs (>= 32 bytes)
    std::int64_t url_ttl_s = 3600;        // how long a media.url stays valid (<= 3600)
    bool direct_urls = false;             // media.url answers the blob store's own URL when it has one
    std::size_t max_uploads = 64;         // in progress at once; rate_limited past it
    std::size_t max_uploads_per_user = 4;
  };

  media_library(store& db, blob_store& blobs, options opts);

  const options& settings() const { return opts_; }
  blob_store& blobs() { return blobs_; }

  // Starts an upload of `content_type` by `user_id`. Checks what can be checked before any byte
  // is read: the type (bad_request, unsupported_type), the declared size (too_large), and the
  // number of uploads in progress (rate_limited).
  result<std::unique_ptr<media_upload>> begin_upload(std::string_view user_id,
                                                     std::string_view content_type,
                                                     std::optional<std::uint64_t> declared_size);

  // The media behind a signed URL's query values, and when the URL expires (unix seconds);
  // forbidden when expired or not signed by us.
  struct signed_access {
    media_record media;
    std::int64_t expires_s = 0;
  };
  result<signed_access> signed_media(std::string_view media_id, std::string_view exp,
                                     std::string_view sig);

  struct media_url {
    std::string url;          // relative to the server, or absolute (the blob store's)
    time_ms expires = 0;      // milliseconds since the epoch
  };
  // media.url: a URL at which the media can be fetched without a token until `expires`.
  result<media_url> url_for(std::string_view user_id, std::string_view media_id);

  // Bytes [offset, offset + length) of a media.
  result<std::unique_ptr<blob_reader>> open(const media_record& media, std::uint64_t offset,
                                            std::uint64_t length);

 private:
  std::string signature(std::string_view media_id, std::int64_t exp_s) const;

  store& db_;
  blob_store& blobs_;
  options opts_;
  upload_slots slots_;
};

}  // namespace parley::chat
