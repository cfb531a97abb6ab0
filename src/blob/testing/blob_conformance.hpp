// The conformance suite of the chat::blob_store port: one typed GoogleTest suite that every
// blob store instantiates (blob/fs against a temp dir, blob/s3 against a real S3-API server on
// loopback), so that the media code can rely on the same behaviour from each.
//
// Usage, in an implementation's test file:
//   struct my_factory {
//     std::unique_ptr<parley::chat::blob_store> make();  // a fresh, empty store
//     // The part size at which the store switches to multipart/streamed writes, so the suite
//     // can cross it (0 when the store has no such threshold).
//     std::size_t part_size() const;
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_store, blob_conformance, ::testing::Types<my_factory>);
//
// The fixture default-constructs one factory per test and destroys the store before it. A
// factory that cannot reach its backend makes the test fail (a missing S3 server is a failure,
// never a skip).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chat/blob_store.hpp"

namespace parley::blob::testing {

// Deterministic bytes that differ at every offset (a misplaced range shows).
inline std::string pattern_bytes(std::size_t size, unsigned seed = 1) {
  std::string out(size, '\0');
  std::uint32_t x = 2463534242u ^ seed;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

// Writes `data` under `key` in pieces of `piece` bytes and commits.
inline void put(chat::blob_store& s, const std::string& key, const std::string& data,
                std::size_t piece = 64 * 1024) {
  auto w = s.create(key);
  ASSERT_TRUE(w.ok()) << w.err().message;
  for (std::size_t at = 0; at < data.size(); at += piece) {
    auto appended = (*w)->append(std::string_view(data).substr(at, piece));
    ASSERT_TRUE(appended.ok()) << appended.err().message;
  }
  auto committed = (*w)->commit();
  ASSERT_TRUE(committed.ok()) << committed.err().message;
}

// Reads [offset, offset+length) of `key` whole, through a buffer of `buffer` bytes.
inline std::string get(chat::blob_store& s, const std::string& key, std::uint64_t offset,
                       std::uint64_t length, std::size_t buffer = 10'007) {
  auto r = s.open(key, offset, length);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  if (!r.ok()) return {};
  std::string out, chunk(buffer, '\0');
  for (;;) {
    auto n = (*r)->read(chunk.data(), chunk.size());
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.err().message);
    if (!n.ok() || *n == 0) break;
    out.append(chunk.data(), *n);
    if (out.size() > length) break;  // a reader that never stops is a failure, not a hang
  }
  return out;
}

template <class Factory>
class blob_conformance : public ::testing::Test {
 protected:
  blob_conformance() : store_(factory_.make()) {}
  chat::blob_store& store() { return *store_; }
  std::size_t part_size() const { return factory_.part_size(); }

 private:
  Factory factory_;  // declared first: destroyed after the store
  std::unique_ptr<chat::blob_store> store_;
};

TYPED_TEST_SUITE_P(blob_conformance);

TYPED_TEST_P(blob_conformance, health_succeeds) {
  auto h = this->store().health();
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.err().message);
  EXPECT_FALSE(this->store().describe().empty());
}

TYPED_TEST_P(blob_conformance, round_trip_small_and_empty) {
  auto& s = this->store();
  put(s, "m/small", "hello, blob");
  put(s, "m/empty", "");
  EXPECT_EQ(get(s, "m/small", 0, 11), "hello, blob");
  EXPECT_EQ(get(s, "m/empty", 0, 0), "");
  auto size = s.size_of("m/small");
  ASSERT_TRUE(size.ok() && size->has_value());
  EXPECT_EQ(**size, 11u);
  auto empty = s.size_of("m/empty");
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_EQ(**empty, 0u);
}

TYPED_TEST_P(blob_conformance, missing_objects) {
  auto& s = this->store();
  auto size = s.size_of("m/none");
  ASSERT_TRUE(size.ok());
  EXPECT_FALSE(size->has_value());
  auto r = s.open("m/none", 0, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, chat::errc::not_found);
  EXPECT_TRUE(s.remove("m/none").ok());
}

TYPED_TEST_P(blob_conformance, ranges_read_exactly_their_bytes) {
  auto& s = this->store();
  auto data = pattern_bytes(300'001);
  put(s, "m/ranges", data, 4096);
  EXPECT_EQ(get(s, "m/ranges", 0, data.size()), data);
  EXPECT_EQ(get(s, "m/ranges", 1, 1), data.substr(1, 1));
  EXPECT_EQ(get(s, "m/ranges", 123'456, 100'000), data.substr(123'456, 100'000));
  EXPECT_EQ(get(s, "m/ranges", data.size() - 7, 7), data.substr(data.size() - 7));
  EXPECT_EQ(get(s, "m/ranges", 5, 0), "");
  EXPECT_EQ(get(s, "m/ranges", 0, data.size(), 1 << 20), data);  // one big buffer
}

TYPED_TEST_P(blob_conformance, large_object_across_parts) {
  auto& s = this->store();
  // Past the store's part size (S3 multipart), with pieces that do not align with parts.
  std::size_t part = this->part_size() ? this->part_size() : 5 * 1024 * 1024;
  auto data = pattern_bytes(2 * part + 12'345, 7);
  put(s, "m/large", data, 100'003);
  auto size = s.size_of("m/large");
  ASSERT_TRUE(size.ok() && size->has_value());
  EXPECT_EQ(**size, data.size());
  EXPECT_TRUE(get(s, "m/large", 0, data.size(), 256 * 1024) == data);
  EXPECT_TRUE(get(s, "m/large", part - 10, 20) == data.substr(part - 10, 20));
}

TYPED_TEST_P(blob_conformance, uncommitted_writer_leaves_nothing) {
  auto& s = this->store();
  {
    auto w = s.create("m/abandoned");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append(pattern_bytes(100'000)).ok());
  }  // destroyed without commit
  auto size = s.size_of("m/abandoned");
  ASSERT_TRUE(size.ok());
  EXPECT_FALSE(size->has_value());
  auto r = s.open("m/abandoned", 0, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, chat::errc::not_found);
}

TYPED_TEST_P(blob_conformance, object_is_invisible_until_commit) {
  auto& s = this->store();
  auto w = s.create("m/pending");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->append("partial").ok());
  auto before = s.size_of("m/pending");
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->has_value());
  ASSERT_TRUE((*w)->append(" and the rest").ok());
  ASSERT_TRUE((*w)->commit().ok());
  EXPECT_EQ(get(s, "m/pending", 0, 20), "partial and the rest");
}

TYPED_TEST_P(blob_conformance, remove_deletes) {
  auto& s = this->store();
  put(s, "m/doomed", "bye");
  ASSERT_TRUE(s.remove("m/doomed").ok());
  auto size = s.size_of("m/doomed");
  ASSERT_TRUE(size.ok());
  EXPECT_FALSE(size->has_value());
}

TYPED_TEST_P(blob_conformance, keys_are_isolated) {
  auto& s = this->store();
  put(s, "m/a", "first");
  put(s, "m/ab", "second");
  put(s, "m/a.b", "third");
  EXPECT_EQ(get(s, "m/a", 0, 5), "first");
  EXPECT_EQ(get(s, "m/ab", 0, 6), "second");
  EXPECT_EQ(get(s, "m/a.b", 0, 5), "third");
}

TYPED_TEST_P(blob_conformance, refuses_keys_outside_the_safe_alphabet) {
  auto& s = this->store();
  const std::vector<std::string> keys = {"../etc/passwd", "m/../x", "/abs", "m//x", "m/%2F", "m/A",
                                          "m/x y", std::string("m/\0x", 4), "", "m/./x"};
  for (const auto& key : keys) {
    auto w = s.create(key);
    EXPECT_FALSE(w.ok()) << "key accepted: " << key;
    if (!w.ok()) {
      EXPECT_EQ(w.err().code, chat::errc::bad_request) << key;
    }
    auto r = s.open(key, 0, 1);
    EXPECT_FALSE(r.ok()) << "key opened: " << key;
  }
}

TYPED_TEST_P(blob_conformance, concurrent_writers_of_distinct_keys) {
  auto& s = this->store();
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto data = pattern_bytes(50'000 + t, t + 11);
      auto w = s.create("m/concurrent-" + std::to_string(t));
      if (!w.ok() || !(*w)->append(data).ok() || !(*w)->commit().ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(get(s, "m/concurrent-" + std::to_string(t), 0, 50'000 + t) ==
                pattern_bytes(50'000 + t, t + 11));
  }
}

REGISTER_TYPED_TEST_SUITE_P(blob_conformance, health_succeeds, round_trip_small_and_empty,
                            missing_objects, ranges_read_exactly_their_bytes,
                            large_object_across_parts, uncommitted_writer_leaves_nothing,
                            object_is_invisible_until_commit, remove_deletes, keys_are_isolated,
                            refuses_keys_outside_the_safe_alphabet,
                            concurrent_writers_of_distinct_keys);

}  // namespace parley::blob::testing
