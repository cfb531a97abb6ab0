#include "blob/fs/fs_blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::blob {

namespace fs = std::filesystem;
using chat::errc;
using chat::make_error;

namespace {

constexpr std::size_t kMaxFileName = 255;

chat::error io_error(std::string_view what, const fs::path& path, int err = errno) {
  return make_error(errc::unavailable,
                    std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

chat::error bad_key(std::string_view key) {
  return make_error(errc::bad_request, "invalid blob key: " + std::string(key));
}

// Closes a descriptor once (EINTR on close must not be retried on Linux).
class file_descriptor {
 public:
  explicit file_descriptor(int fd = -1) : fd_(fd) {}
  ~file_descriptor() { reset(); }
  file_descriptor(file_descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  file_descriptor& operator=(file_descriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes and reports the error (a failed close can mean lost writes on some filesystems).
  int close_checked() {
    int rc = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

chat::status fsync_directory(const fs::path& dir) {
  file_descriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return io_error("cannot open directory", dir);
  if (::fsync(fd.get()) != 0) return io_error("cannot fsync directory", dir);
  return chat::ok_status();
}

class fs_writer final : public chat::blob_writer {
 public:
  fs_writer(file_descriptor fd, fs::path temp, fs::path final_path)
      : fd_(std::move(fd)), temp_(std::move(temp)), final_(std::move(final_path)) {}
  ~fs_writer() override {
    if (committed_) return;
    fd_.reset();
    ::unlink(temp_.c_str());
  }

  chat::status append(std::string_view bytes) override {
    if (committed_ || failed_) return make_error(errc::internal, "writer is closed");
    while (!bytes.empty()) {
      auto n = ::write(fd_.get(), bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        failed_ = true;
        return io_error("cannot write", temp_);
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return chat::ok_status();
  }

  chat::status commit() override {
    if (committed_ || failed_) return make_error(errc::internal, "writer is closed");
    failed_ = true;  // until the end: a failed commit leaves the writer unusable
    if (::fdatasync(fd_.get()) != 0) return io_error("cannot sync", temp_);
    if (fd_.close_checked() != 0) return io_error("cannot close", temp_);
    std::error_code ec;
    fs::create_directories(final_.parent_path(), ec);
    if (ec) return make_error(errc::unavailable, "cannot create " + final_.parent_path().string() +
                                                     ": " + ec.message());
    if (::rename(temp_.c_str(), final_.c_str()) != 0) return io_error("cannot rename into", final_);
    committed_ = true;
    // The rename is durable only once the directory is: fsync it (and its parents, which a
    // first object in a shard has just created).
    for (auto dir = final_.parent_path(); ; dir = dir.parent_path()) {
      if (auto synced = fsync_directory(dir); !synced) return synced;
      if (dir.filename() == "objects" || dir == dir.parent_path()) break;
    }
    return chat::ok_status();
  }

 private:
  file_descriptor fd_;
  fs::path temp_;
  fs::path final_;
  bool committed_ = false;
  bool failed_ = false;
};

class fs_reader final : public chat::blob_reader {
 public:
  fs_reader(file_descriptor fd, fs::path path, std::uint64_t offset, std::uint64_t length)
      : fd_(std::move(fd)), path_(std::move(path)), offset_(offset), remaining_(length) {}

  chat::result<std::size_t> read(char* out, std::size_t capacity) override {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, remaining_));
    if (want == 0) return std::size_t{0};
    for (;;) {
      auto n = ::pread(fd_.get(), out, want, static_cast<off_t>(offset_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return io_error("cannot read", path_);
      // The object is immutable: ending early means it was cut under us.
      if (n == 0) return make_error(errc::unavailable, "object shorter than expected: " + path_.string());
      offset_ += static_cast<std::uint64_t>(n);
      remaining_ -= static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

 private:
  file_descriptor fd_;
  fs::path path_;
  std::uint64_t offset_;
  std::uint64_t remaining_;
};

}  // namespace

fs_blob_store::fs_blob_store(fs::path root)
    : root_(std::move(root)), objects_(root_ / "objects"), tmp_(root_ / "tmp") {
  std::error_code ec;
  fs::create_directories(objects_, ec);
  if (!ec) fs::create_directories(tmp_, ec);
  if (ec) throw std::runtime_error("cannot create media directory " + root_.string() + ": " + ec.message());
  // Whatever is in tmp/ is an upload a crash or a kill interrupted: it never became an object.
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(tmp_, ec)) {
    std::error_code ignored;
    if (fs::remove(entry.path(), ignored)) ++removed;
  }
  if (removed) util::log_info("media: removed {} interrupted upload(s) from {}", removed, tmp_.string());
}

fs::path fs_blob_store::path_of(std::string_view key) const {
  if (!chat::valid_blob_key(key)) return {};
  std::string name(key);
  for (auto& c : name) {
    if (c == '/') c = '!';  // '!' is outside the key alphabet: the mapping is one-to-one
  }
  if (name.size() > kMaxFileName) return {};
  auto hash = util::to_hex(util::sha256(key));
  return objects_ / hash.substr(0, 2) / hash.substr(2, 2) / name;
}

chat::result<std::unique_ptr<chat::blob_writer>> fs_blob_store::create(std::string_view key) {
  auto final_path = path_of(key);
  if (final_path.empty()) return bad_key(key);
  auto temp = tmp_ / (util::random_hex(16) + ".part");
  file_descriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (fd.get() < 0) return io_error("cannot create", temp);
  return std::unique_ptr<chat::blob_writer>(
      std::make_unique<fs_writer>(std::move(fd), std::move(temp), std::move(final_path)));
}

chat::result<std::unique_ptr<chat::blob_reader>> fs_blob_store::open(std::string_view key,
                                                                     std::uint64_t offset,
                                                                     std::uint64_t length) {
  auto path = path_of(key);
  if (path.empty()) return bad_key(key);
  file_descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(errc::not_found, "no such object");
    return io_error("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", path);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (offset > size || length > size - offset)
    return make_error(errc::bad_request, "range past the end of the object");
  return std::unique_ptr<chat::blob_reader>(
      std::make_unique<fs_reader>(std::move(fd), std::move(path), offset, length));
}

chat::result<std::optional<std::uint64_t>> fs_blob_store::size_of(std::string_view key) {
  auto path = path_of(key);
  if (path.empty()) return bad_key(key);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>();
    return io_error("cannot stat", path);
  }
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(st.st_size));
}

chat::status fs_blob_store::remove(std::string_view key) {
  auto path = path_of(key);
  if (path.empty()) return bad_key(key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", path);
  return chat::ok_status();
}

chat::result<std::optional<std::string>> fs_blob_store::presign_get(std::string_view key,
                                                                    const chat::presign_request&) {
  if (!chat::valid_blob_key(key)) return bad_key(key);
  return std::optional<std::string>();  // Parley serves filesystem objects itself
}

chat::status fs_blob_store::health() {
  if (::access(objects_.c_str(), R_OK | W_OK | X_OK) != 0) return io_error("cannot use", objects_);
  if (::access(tmp_.c_str(), R_OK | W_OK | X_OK) != 0) return io_error("cannot use", tmp_);
  return chat::ok_status();
}

std::string fs_blob_store::describe() const { return "filesystem " + root_.string(); }

}  // namespace parley::blob
