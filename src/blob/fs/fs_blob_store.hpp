// blob::fs_blob_store — chat::blob_store on the local filesystem, the zero-configuration default
// (`<data-dir>/media`).
//
// Layout: objects/<aa>/<bb>/<key with '/' written as '!'>, where aabb are the first hex digits
// of the key's SHA-256 (at most 65 536 directories, evenly filled whatever the keys look like).
// A writer fills tmp/<random>.part and commit() fsyncs it, renames it into place and fsyncs the
// directory: an object appears whole or not at all, also across kill -9 and power loss. The
// constructor empties tmp/ (uploads that a crash interrupted).
//
// Thread safety: as the port (any thread; one writer or reader per thread at a time).
#pragma once

#include <filesystem>
#include <string>

#include "chat/blob_store.hpp"

namespace parley::blob {

class fs_blob_store final : public chat::blob_store {
 public:
  // Creates `root` (and its objects/ and tmp/) when missing; throws std::runtime_error when it
  // cannot.
  explicit fs_blob_store(std::filesystem::path root);

  chat::result<std::unique_ptr<chat::blob_writer>> create(std::string_view key) override;
  chat::result<std::unique_ptr<chat::blob_reader>> open(std::string_view key, std::uint64_t offset,
                                                        std::uint64_t length) override;
  chat::result<std::optional<std::uint64_t>> size_of(std::string_view key) override;
  chat::status remove(std::string_view key) override;
  chat::result<std::optional<std::string>> presign_get(std::string_view key,
                                                       const chat::presign_request& req) override;
  chat::status health() override;
  std::string describe() const override;

  // Where `key` is kept (for tests and operators); empty when the key is not valid.
  std::filesystem::path path_of(std::string_view key) const;

 private:
  std::filesystem::path root_;
  std::filesystem::path objects_;
  std::filesystem::path tmp_;
};

}  // namespace parley::blob
