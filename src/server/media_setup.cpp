#include "server/media_setup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "blob/fs/fs_blob_store.hpp"
#include "blob/s3/s3_blob_store.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::server {

media_backend open_blob_store(const config& cfg) {
  if (cfg.media == "fs") return {std::make_unique<blob::fs_blob_store>(cfg.data_dir + "/media"), {}};
  if (cfg.media.starts_with("fs:"))
    return {std::make_unique<blob::fs_blob_store>(cfg.media.substr(3)), {}};
  auto s3 = blob::s3::parse_s3_url_from_environment(cfg.media);
  if (!s3) throw std::runtime_error("--media: " + s3.err().message);
  std::string origin;
  if (cfg.media_direct_urls) origin = s3->scheme + "://" + blob::s3::locate(*s3, "").host;
  return {std::make_unique<blob::s3::s3_blob_store>(std::move(*s3)), std::move(origin)};
}

std::string load_or_create_url_secret(const std::string& data_dir) {
  const std::string path = data_dir + "/media-url.key";
  if (::access(path.c_str(), F_OK) != 0) {
    // First start: a new key, written and synced under a temporary name, then linked into
    // place (link fails if another process got there first), so a crash never leaves an empty
    // or partial key file behind.
    const std::string tmp = path + ".tmp." + util::random_hex(4);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
    std::string key = util::random_hex(32) + "\n";
    bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    int linked = ok ? ::link(tmp.c_str(), path.c_str()) : -1;
    int link_errno = errno;
    ::unlink(tmp.c_str());
    if (!ok) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    if (linked != 0 && link_errno != EEXIST)
      throw std::runtime_error("cannot create " + path + ": " + std::strerror(link_errno));
    if (linked == 0) util::log_info("created the media URL key {}", path);
  }
  std::ifstream in(path);
  std::string key;
  std::getline(in, key);
  if (key.size() < 64 || key.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::runtime_error(path + " does not hold a key (64 hex digits); remove it to make a new one");
  return key;
}

}  // namespace parley::server
