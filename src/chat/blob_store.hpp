// chat::blob_store — the port through which the domain keeps large immutable objects (media).
// The embedded implementation is blob/fs (files under the data dir); blob/s3 talks to any
// S3-compatible service. One conformance suite (blob/testing) runs against both.
//
// Keys are chosen by the server (`m/<media id>`), never taken from user input; an
// implementation may still refuse a key outside [a-z0-9/._-] with bad_request.
//
// Atomicity: an object appears under its key only once blob_writer::commit() succeeds, whole
// and durable; a writer destroyed before that leaves nothing behind (a crash leaves at most
// garbage that the store's next start removes, never a half object under a real key).
//
// Thread safety: blob_store methods may be called from any thread concurrently; one writer or
// reader is used by one thread at a time. Every call may block (disk, network): never call
// them on an event-loop thread.
// Errors: unavailable when the backend cannot be reached or fails; not_found only where stated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "chat/error.hpp"

namespace parley::chat {

// One object being written, piece by piece, in order.
class blob_writer {
 public:
  virtual ~blob_writer() = default;  // without commit(): discards everything written
  virtual status append(std::string_view bytes) = 0;
  // Makes the object visible under its key, durably. No call may follow.
  virtual status commit() = 0;
};

// A byte range of one object, read piece by piece.
class blob_reader {
 public:
  virtual ~blob_reader() = default;
  // Copies up to `capacity` bytes of the range into `out`; 0 once the range is exhausted.
  virtual result<std::size_t> read(char* out, std::size_t capacity) = 0;
};

// What a pre-signed GET URL makes the blob store answer (S3's response-* overrides).
struct presign_request {
  std::int64_t expires_in_s = 3600;  // 1 to 604800 (S3's limit); Parley uses at most 3600
  std::string content_type;
  std::string content_disposition;  // empty: none
};

class blob_store {
 public:
  virtual ~blob_store() = default;

  virtual result<std::unique_ptr<blob_writer>> create(std::string_view key) = 0;
  // The `length` bytes from `offset` (the caller keeps the range within the object's size).
  // not_found when no object has this key.
  virtual result<std::unique_ptr<blob_reader>> open(std::string_view key, std::uint64_t offset,
                                                    std::uint64_t length) = 0;
  // The object's size, or nothing when no object has this key.
  virtual result<std::optional<std::uint64_t>> size_of(std::string_view key) = 0;
  // Deletes the object; ok when there was none.
  virtual status remove(std::string_view key) = 0;
  // An absolute URL at which anyone may GET the object for `req.expires_in_s` seconds, or
  // nothing when the store has no such URLs (the filesystem store: Parley serves the bytes).
  virtual result<std::optional<std::string>> presign_get(std::string_view key,
                                                         const presign_request& req) = 0;
  // ok when the store can serve (for /healthz).
  virtual status health() = 0;
  // A short description for logs ("filesystem /var/lib/parley/media", "s3 bucket ...").
  virtual std::string describe() const = 0;
};

// True when `key` uses only the characters every blob store accepts as it is.
inline bool valid_blob_key(std::string_view key) {
  if (key.empty() || key.size() > 512 || key.front() == '/' || key.back() == '/') return false;
  char previous = 0;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
              c == '_' || c == '.';
    // No empty, "." or ".." path component, whatever a store makes of the key.
    bool component_start = previous == 0 || previous == '/';
    if (!ok || (c == '/' && previous == '/') || (c == '.' && (component_start || previous == '.')))
      return false;
    previous = c;
  }
  return true;
}

}  // namespace parley::chat
