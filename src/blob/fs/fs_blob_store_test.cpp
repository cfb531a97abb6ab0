#include "blob/fs/fs_blob_store.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "blob/testing/blob_conformance.hpp"
#include "util/crypto.hpp"

namespace parley::blob {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it.
struct temp_dir {
  fs::path path;
  temp_dir() {
    util::init_crypto();
    path = fs::temp_directory_path() / ("parley-blob-" + util::random_hex(8));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

struct fs_factory {
  temp_dir dir;
  std::unique_ptr<chat::blob_store> make() { return std::make_unique<fs_blob_store>(dir.path); }
  std::size_t part_size() const { return 0; }
};

}  // namespace

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(fs, blob_conformance, ::testing::Types<fs_factory>);
}  // namespace testing

namespace {

std::size_t files_under(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

TEST(fs_blob_store, objects_live_in_sharded_directories_under_the_root) {
  temp_dir dir;
  fs_blob_store s(dir.path);
  testing::put(s, "m/abc", "x");
  auto path = s.path_of("m/abc");
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(path.filename(), "m!abc");
  // objects/<aa>/<bb>/name
  EXPECT_EQ(path.parent_path().parent_path().parent_path(), dir.path / "objects");
  EXPECT_EQ(path.parent_path().filename().string().size(), 2u);
  EXPECT_EQ(files_under(dir.path / "tmp"), 0u);
}

TEST(fs_blob_store, interrupted_uploads_are_removed_at_start_and_never_visible) {
  temp_dir dir;
  {
    fs_blob_store s(dir.path);
    auto w = s.create("m/cut");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append("half an upload").ok());
    // A crash now: the writer is never destroyed. Simulate by leaking its temp file.
    std::ofstream(dir.path / "tmp" / "leftover.part") << "garbage";
    EXPECT_FALSE(s.size_of("m/cut")->has_value());
  }
  std::ofstream(dir.path / "tmp" / "another.part") << "garbage";
  fs_blob_store reopened(dir.path);
  EXPECT_EQ(files_under(dir.path / "tmp"), 0u);
  EXPECT_FALSE(reopened.size_of("m/cut")->has_value());
}

TEST(fs_blob_store, range_past_the_end_is_refused) {
  temp_dir dir;
  fs_blob_store s(dir.path);
  testing::put(s, "m/short", "12345");
  auto r = s.open("m/short", 3, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, chat::errc::bad_request);
}

TEST(fs_blob_store, has_no_presigned_urls) {
  temp_dir dir;
  fs_blob_store s(dir.path);
  auto url = s.presign_get("m/x", {});
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->has_value());
}

TEST(fs_blob_store, unusable_root_is_unhealthy) {
  temp_dir dir;
  fs_blob_store s(dir.path / "media");
  fs::remove_all(dir.path / "media");
  EXPECT_FALSE(s.health().ok());
  auto w = s.create("m/x");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.err().code, chat::errc::unavailable);
}

}  // namespace
}  // namespace parley::blob
