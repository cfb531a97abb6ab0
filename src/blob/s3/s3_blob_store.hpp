// parley::blob::s3::s3_blob_store — chat::blob_store on any S3-compatible service (AWS S3,
// MinIO, Ceph RGW, R2, s3rver...), over libcurl with our own SigV4 signer. Configured from an
// s3:// URL (s3_config.hpp). Depends on chat/ (the port), util/ (crypto, logging) and libcurl.
//
// Writes: a writer buffers up to config.part_size bytes. An object no larger than that goes in
// one PUT at commit(); a larger one becomes a multipart upload (CreateMultipartUpload at the
// first full part, one UploadPart per part_size bytes, CompleteMultipartUpload at commit()), so
// a writer holds at most part_size bytes plus one append() in memory. S3 shows an object only
// once its PUT or CompleteMultipartUpload succeeds, which is the port's atomicity. A writer
// destroyed without commit() aborts its multipart upload (best effort: after a crash, a bucket
// lifecycle rule "abort incomplete multipart uploads after N days" is the backstop).
//
// Reads: ranged GETs of at most config.read_piece_size bytes each, one at a time, on the
// reader's own connection. open() makes the first request itself, so a missing key answers
// not_found at once.
//
// Thread safety: as the port: every method from any thread; one writer or reader per thread at
// a time. Idle curl handles (and their keep-alive connections) are pooled under a mutex.
// Writers and readers share the pool and the configuration with the store and may outlive it.
//
// Errors: a key outside chat::valid_blob_key is bad_request before any I/O. No answer
// (connection refused, timeout, stall), HTTP 5xx, 403 (credentials, clock skew, policy) and any
// other unexpected status are errc::unavailable, with the HTTP status and S3's error code in
// the message. not_found only from open(), as the port says.
#pragma once

#include <memory>
#include <string>

#include "blob/s3/s3_config.hpp"
#include "chat/blob_store.hpp"

namespace parley::blob::s3 {

class s3_blob_store final : public chat::blob_store {
 public:
  // Makes no request: health() tells whether the bucket can be reached.
  explicit s3_blob_store(s3_config config);
  ~s3_blob_store() override;

  chat::result<std::unique_ptr<chat::blob_writer>> create(std::string_view key) override;
  chat::result<std::unique_ptr<chat::blob_reader>> open(std::string_view key, std::uint64_t offset,
                                                        std::uint64_t length) override;
  chat::result<std::optional<std::uint64_t>> size_of(std::string_view key) override;
  chat::status remove(std::string_view key) override;
  // A URL signed with the store's credentials, valid for req.expires_in_s seconds from now, with
  // response-content-type / response-content-disposition when given. Makes no request.
  chat::result<std::optional<std::string>> presign_get(std::string_view key,
                                                       const chat::presign_request& req) override;
  // A HEAD on the bucket.
  chat::status health() override;
  // "s3 bucket media at http://127.0.0.1:9000" (+ " under prefix p/").
  std::string describe() const override;

  struct shared;  // configuration and connection pool (s3_blob_store.cpp)

 private:
  std::shared_ptr<shared> shared_;
};

}  // namespace parley::blob::s3
