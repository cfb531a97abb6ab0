// Turns the --media configuration into a blob store, and keeps the secret that signs media URLs.
#pragma once

#include <memory>
#include <string>

#include "chat/blob_store.hpp"
#include "server/config.hpp"

namespace parley::server {

struct media_backend {
  std::unique_ptr<chat::blob_store> store;
  // The origin (scheme://host[:port]) that pre-signed URLs point to when media.url answers the
  // store's own URLs (--media-direct-urls with S3); empty otherwise. The web client's page
  // policy must allow images and players from it.
  std::string direct_origin;
};

// The blob store named by cfg.media: the filesystem under the data dir by default, another
// directory (fs:DIR), or an S3-compatible service (s3://...; credentials from the environment).
// Throws std::runtime_error with a message for the operator when it cannot be set up.
media_backend open_blob_store(const config& cfg);

// The key that signs media URLs: 32 random bytes kept in DATA_DIR/media-url.key (created with
// mode 0600 on first start). Every node of a cluster must share it. Throws on I/O errors.
std::string load_or_create_url_secret(const std::string& data_dir);

}  // namespace parley::server
