// server configuration: defaults, a config file (`key = value` lines, `#` comments, the keys
// are the long flag names without `--`) and command-line flags, which override the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/log.hpp"

namespace parley::server {

enum class durability_mode { sync, os };

struct config {
  std::string listen_host = "0.0.0.0";
  std::uint16_t listen_port = 8080;
  std::string data_dir = "./parley-data";
  durability_mode durability = durability_mode::sync;
  unsigned threads = 0;  // 0: one per core
  util::log_level log_level = util::log_level::info;
  std::string port_file;  // when set, the bound port is written there once serving

  int heartbeat_ms = 5000;
  int auth_timeout_ms = 10000;
  std::size_t max_frame_bytes = 64 * 1024;
  std::size_t outbound_max_bytes = 4 * 1024 * 1024;
  std::size_t text_max_bytes = 16 * 1024;
  std::size_t title_max_chars = 100;
  std::size_t users_get_max = 100;
  std::size_t presence_sub_max = 1024;
  unsigned login_max_failures = 10;

  // Limits against abuse (docs/security.md).
  double rate_burst = 100;   // per-connection token bucket
  double rate_per_sec = 20;  // 0 disables the rate limit
  unsigned max_bad_frames = 50;
  unsigned max_unauthenticated_per_ip = 256;
  unsigned max_connections_per_user = 32;
  std::vector<std::string> allowed_origins;
  std::size_t max_group_members = 256;
  std::size_t chat_cache_members = std::size_t{1} << 20;  // per shard (chat_owner::options)

  // Media (docs/operations.md): "fs" (DATA_DIR/media), "fs:DIR", or an s3:// URL.
  std::string media = "fs";
  std::uint64_t media_max_bytes = 100ull * 1024 * 1024;
  unsigned dedup_retention_days = 30;  // 0: forever; else at least 7 (PROTOCOL §4.3)
  bool media_direct_urls = false;  // media.url answers the blob store's pre-signed URL (S3)
};

struct parse_outcome {
  std::optional<config> cfg;  // empty when the program should exit (help, or an error)
  int exit_code = 0;
  std::string message;  // the help text, or the error
};

parse_outcome parse_command_line(const std::vector<std::string>& args);
std::string usage();

}  // namespace parley::server
