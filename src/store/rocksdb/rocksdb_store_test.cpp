#include "store/rocksdb/rocksdb_store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <thread>

#include "store/testing/store_conformance.hpp"
#include "util/clock.hpp"
#include "util/bytes.hpp"

namespace parley::store {
namespace {

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "parley-rocksdb-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// Owns a fresh directory under /tmp, removed (with everything in it) on destruction.
struct temp_dir {
  temp_dir() : path(make_temp_dir()) {}
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string path;
};

std::string_view name_of(durability mode) { return mode == durability::sync ? "sync" : "os"; }

template <durability Mode>
struct rocksdb_factory {
  static constexpr durability mode = Mode;
  std::unique_ptr<chat::store> make() { return std::make_unique<rocksdb_store>(dir.path, Mode); }
  temp_dir dir;
};

using both_modes =
    ::testing::Types<rocksdb_factory<durability::sync>, rocksdb_factory<durability::os>>;

// Names the instantiations rocksdb/store_conformance/sync and .../os.
struct mode_names {
  template <class Factory>
  static std::string GetName(int) {
    return std::string(name_of(Factory::mode));
  }
};

}  // namespace

// For readable test parameters ("os" rather than "4-byte object <01-00 00-00>").
void PrintTo(durability mode, std::ostream* out) { *out << name_of(mode); }

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(rocksdb, store_conformance, both_modes, mode_names);
}  // namespace testing

namespace {

using chat::seq_t;
using testing::expect_same;
using testing::make_dedup;
using testing::make_membership;
using testing::make_message;
using testing::make_user;
constexpr seq_t k_max = std::numeric_limits<seq_t>::max();

std::vector<seq_t> scan_seqs(chat::store& s, std::string_view chat_id, seq_t from, seq_t to,
                             bool descending) {
  std::vector<seq_t> out;
  auto r = s.scan_messages(chat_id, from, to, descending, [&](const chat::message_view& v) {
    out.push_back(v.seq);
    return true;
  });
  EXPECT_TRUE(r.ok()) << r.err().message;
  return out;
}

chat::session_record make_session(char tag) {
  return {.token_hash = std::string(32, tag),
          .user_id = "u1",
          .device_id = std::string("dev-") + tag,
          .device_name = "laptop",
          .created = 77};
}

chat::chat_record make_chat(std::string id) {
  return {.id = std::move(id),
          .kind = chat::chat_kind::group,
          .title = "g",
          .members = {{"u1", chat::member_role::admin}, {"u2", chat::member_role::member}},
          .last_seq = 3,
          .created = 9};
}

// Writes one record of every kind.
void write_everything(chat::store& s) {
  ASSERT_TRUE(s.create_user(make_user("u1", "alice")).ok());
  ASSERT_TRUE(s.create_session(make_session('a'), {{"dev-a", "c1", 2}}).ok());
  chat::write_batch batch{
      .chats = {make_chat("c1")},
      .memberships = {make_membership("u1", "c1")},
      .messages = {make_message("c1", 1), make_message("c1", 2), make_message("c1", 3)},
      .dedups = {make_dedup("u1", "cid", "c1", 3)},
      .cursors = {{"dev-b", "c1", 3}}};
  ASSERT_TRUE(s.write(batch).ok());
}

void expect_everything(chat::store& s) {
  auto user = s.find_user_by_name("alice");
  ASSERT_TRUE(user.ok() && user->has_value());
  expect_same(**user, make_user("u1", "alice"));
  auto session = s.find_session(std::string(32, 'a'));
  ASSERT_TRUE(session.ok() && session->has_value());
  expect_same(**session, make_session('a'));
  auto initial = s.find_cursor("dev-a", "c1");
  ASSERT_TRUE(initial.ok() && initial->has_value());
  EXPECT_EQ(**initial, 2u);
  auto chat = s.find_chat("c1");
  ASSERT_TRUE(chat.ok() && chat->has_value());
  expect_same(**chat, make_chat("c1"));
  auto memberships = s.memberships_of("u1");
  ASSERT_TRUE(memberships.ok());
  ASSERT_EQ(memberships->size(), 1u);
  expect_same((*memberships)[0], make_membership("u1", "c1"));
  EXPECT_EQ(scan_seqs(s, "c1", 0, k_max, false), (std::vector<seq_t>{1, 2, 3}));
  auto dedup = s.find_dedup("u1", "cid");
  ASSERT_TRUE(dedup.ok() && dedup->has_value());
  expect_same(**dedup, make_dedup("u1", "cid", "c1", 3));
  auto cursor = s.find_cursor("dev-b", "c1");
  ASSERT_TRUE(cursor.ok() && cursor->has_value());
  EXPECT_EQ(**cursor, 3u);
}

class rocksdb_store_modes : public ::testing::TestWithParam<durability> {
 protected:
  temp_dir dir_;
};

INSTANTIATE_TEST_SUITE_P(both, rocksdb_store_modes,
                         ::testing::Values(durability::sync, durability::os),
                         [](const auto& info) { return std::string(name_of(info.param)); });

TEST_P(rocksdb_store_modes, data_survives_close_and_reopen) {
  {
    rocksdb_store s(dir_.path, GetParam());
    write_everything(s);
  }
  {
    rocksdb_store s(dir_.path, GetParam());
    expect_everything(s);
    // And the reopened store keeps working.
    ASSERT_TRUE(s.write({.messages = {make_message("c1", 4)}}).ok());
    EXPECT_TRUE(s.flush().ok());
    EXPECT_TRUE(s.health().ok());
  }
  rocksdb_store s(dir_.path, GetParam());
  EXPECT_EQ(scan_seqs(s, "c1", 0, k_max, false), (std::vector<seq_t>{1, 2, 3, 4}));
}

// The child process (a re-run of this test, see death_test_style "threadsafe") writes and is
// killed with SIGKILL before any destructor runs: what was acknowledged must be there.
TEST_P(rocksdb_store_modes, acknowledged_writes_survive_kill_9) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The child re-runs this body from the top: it must find the parent's directory, not make one.
  const char* env_name = "PARLEY_ROCKSDB_CRASH_TEST_DIR";
  std::string dir;
  if (const char* inherited = std::getenv(env_name)) {
    dir = inherited;
    // This is the child, which dies without running destructors: drop its own fresh dir now.
    std::filesystem::remove_all(dir_.path);
  } else {
    dir = dir_.path;
    ASSERT_EQ(setenv(env_name, dir.c_str(), 1), 0);
  }
  const durability mode = GetParam();
  ASSERT_EXIT(
      {
        rocksdb_store s(dir, mode);
        write_everything(s);
        std::raise(SIGKILL);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  unsetenv(env_name);
  rocksdb_store s(dir, mode);
  expect_everything(s);
}

TEST(rocksdb_store, health_reports_a_store_whose_writes_fail_until_one_succeeds_again) {
  temp_dir dir;
  rocksdb_store s(dir.path, durability::sync);
  chat::write_batch batch;
  batch.dedups.push_back(chat::dedup_record{"u1", "c1", "chat1", 1, util::now_ms(), {}});
  ASSERT_TRUE(s.write(batch).ok());
  EXPECT_TRUE(s.health().ok());
  s.fail_writes_for_test(true);
  EXPECT_EQ(s.write(batch).err().code, chat::errc::unavailable);
  EXPECT_FALSE(s.health().ok()) << "reads still work, writes do not";
  s.fail_writes_for_test(false);
  EXPECT_FALSE(s.health().ok()) << "at most one probe a second";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(s.health().ok()) << "its probe write succeeds: serving again";
  EXPECT_TRUE(s.health().ok());
  auto found = s.find_user("");  // the probe changed no record
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST(rocksdb_store, dedup_records_past_their_retention_are_forgotten_by_compaction) {
  constexpr chat::time_ms day = 24LL * 3600 * 1000;
  auto dedup = [](std::string cid, chat::time_ms ts) {
    return chat::dedup_record{"u1", std::move(cid), "c1", 1, ts, {}};
  };
  for (chat::time_ms retention : {8 * day, chat::time_ms{0}}) {
    temp_dir dir;
    rocksdb_store s(dir.path, durability::os, retention);
    chat::write_batch batch;
    batch.dedups.push_back(dedup("old", util::now_ms() - 9 * day));
    batch.dedups.push_back(dedup("recent", util::now_ms() - 7 * day));
    ASSERT_TRUE(s.write(batch).ok());
    ASSERT_TRUE(s.compact_for_test().ok());
    auto old = s.find_dedup("u1", "old");
    auto recent = s.find_dedup("u1", "recent");
    ASSERT_TRUE(old.ok() && recent.ok());
    EXPECT_EQ(old->has_value(), retention == 0) << "retention " << retention;
    EXPECT_TRUE(recent->has_value()) << "retention " << retention;
  }
}

TEST(rocksdb_store, scans_and_lookups_read_sst_files_and_memtables_alike) {
  temp_dir dir;
  rocksdb_store s(dir.path, durability::os);
  // Three generations: two flushed to SST files, one left in the memtable, interleaving chats
  // whose ids are prefixes of each other, so prefix filters and seeks run against each.
  for (seq_t gen = 0; gen < 3; ++gen) {
    chat::write_batch batch;
    for (seq_t i = 1; i <= 100; ++i) {
      seq_t seq = gen * 100 + i;
      batch.messages.push_back(make_message("c1", seq));
      if (seq % 2 == 0) batch.messages.push_back(make_message("c10", seq));
      if (seq % 3 == 0) batch.messages.push_back(make_message("c", seq));
    }
    batch.memberships.push_back(make_membership("u1", "c" + std::to_string(gen)));
    batch.memberships.push_back(make_membership("u10", "c" + std::to_string(gen)));
    ASSERT_TRUE(s.write(batch).ok());
    if (gen < 2) {
      ASSERT_TRUE(s.flush_memtables_for_test().ok());
    }
  }

  auto all_c1 = scan_seqs(s, "c1", 0, k_max, false);
  ASSERT_EQ(all_c1.size(), 300u);
  for (std::size_t i = 0; i < all_c1.size(); ++i) EXPECT_EQ(all_c1[i], i + 1);
  auto c10_desc = scan_seqs(s, "c10", 0, k_max, true);
  ASSERT_EQ(c10_desc.size(), 150u);
  EXPECT_EQ(c10_desc.front(), 300u);
  EXPECT_EQ(c10_desc.back(), 2u);
  EXPECT_EQ(scan_seqs(s, "c", 95, 205, false).size(), 37u);   // multiples of 3 in [96, 204]
  EXPECT_EQ(scan_seqs(s, "c1", 98, 203, true).size(), 106u);  // crosses both file boundaries
  EXPECT_TRUE(scan_seqs(s, "c2", 0, k_max, false).empty());
  EXPECT_TRUE(scan_seqs(s, "c100", 0, k_max, true).empty());

  for (seq_t seq : {seq_t{1}, seq_t{150}, seq_t{299}}) {
    auto m = s.find_message("c1", seq);
    ASSERT_TRUE(m.ok() && m->has_value()) << seq;
    expect_same(**m, make_message("c1", seq));
  }
  auto absent = s.find_message("c10", 151);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());

  auto u1 = s.memberships_of("u1");
  ASSERT_TRUE(u1.ok());
  ASSERT_EQ(u1->size(), 3u);
  EXPECT_EQ((*u1)[0].chat_id, "c0");
  EXPECT_EQ((*u1)[2].chat_id, "c2");
  for (const auto& m : *u1) EXPECT_EQ(m.user_id, "u1");
}

TEST(rocksdb_store, open_failures_throw_a_clear_error) {
  temp_dir dir;
  rocksdb_store first(dir.path, durability::sync);
  try {
    rocksdb_store second(dir.path, durability::sync);
    FAIL() << "a second store opened a directory in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path), std::string::npos) << e.what();
  }

  const std::string file = dir.path + "/not-a-dir";
  std::ofstream(file) << "x";
  EXPECT_THROW((rocksdb_store{file, durability::sync}), std::runtime_error);
}

TEST(rocksdb_store, opens_a_database_with_a_family_it_does_not_know) {
  temp_dir dir;
  { rocksdb_store s(dir.path, durability::sync); }
  {
    // A newer version added a family.
    rocksdb::DBOptions options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir.path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path, families, &handles, &db).ok());
    rocksdb::ColumnFamilyHandle* added = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "future", &added).ok());
    handles.push_back(added);
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    ASSERT_TRUE(db->Close().ok());
    delete db;
  }
  rocksdb_store s(dir.path, durability::sync);
  EXPECT_TRUE(s.health().ok());
  write_everything(s);
  expect_everything(s);
}

// ---- corrupt records ----

std::string message_key(std::string_view chat_id, seq_t seq) {
  std::string key;
  util::byte_writer w(key);
  w.put_string(chat_id);
  w.put_fixed64_be(seq);
  return key;
}

std::string pair_key(std::string_view first, std::string_view second) {
  std::string key;
  util::byte_writer w(key);
  w.put_string(first);
  w.put_raw(second);
  return key;
}

template <class T>
void expect_internal(const chat::result<T>& r, const char* what) {
  ASSERT_FALSE(r.ok()) << what << " decoded a corrupt record";
  EXPECT_EQ(r.err().code, chat::errc::internal) << what << ": " << r.err().message;
}

class rocksdb_store_corruption : public ::testing::Test {
 protected:
  void plant(std::string_view family, std::string_view key, std::string_view value) {
    auto r = store_.put_raw_for_test(family, key, value);
    ASSERT_TRUE(r.ok()) << r.err().message;
  }
  temp_dir dir_;
  rocksdb_store store_{dir_.path, durability::os};
};

TEST_F(rocksdb_store_corruption, every_lookup_reports_internal) {
  const std::string truncated(
      "\x01\x05"
      "ab",
      4);  // version 1, then a string cut short
  plant("users", "u-bad", truncated);
  plant("usernames", "bad-name", truncated);
  plant("sessions", std::string(32, 's'), truncated);
  plant("chats", "c-bad", truncated);
  plant("memberships", pair_key("u-bad", "c1"), truncated);
  plant("cursors", pair_key("d-bad", "c1"), truncated);
  plant("dedup", pair_key("u-bad", "cid"), truncated);
  plant("messages", message_key("c-bad", 1), truncated);

  expect_internal(store_.find_user("u-bad"), "find_user");
  expect_internal(store_.find_user_by_name("bad-name"), "find_user_by_name");
  expect_internal(store_.find_session(std::string(32, 's')), "find_session");
  expect_internal(store_.find_chat("c-bad"), "find_chat");
  expect_internal(store_.memberships_of("u-bad"), "memberships_of");
  expect_internal(store_.find_membership("u-bad", "c1"), "find_membership");
  expect_internal(store_.find_cursor("d-bad", "c1"), "find_cursor");
  expect_internal(store_.find_dedup("u-bad", "cid"), "find_dedup");
  expect_internal(store_.find_message("c-bad", 1), "find_message");
  expect_internal(store_.scan_messages("c-bad", 0, k_max, false,
                                       [](const chat::message_view&) { return true; }),
                  "scan_messages");

  // The same lookups still serve good records.
  ASSERT_TRUE(store_.create_user(make_user("u-good", "good")).ok());
  auto good = store_.find_user_by_name("good");
  ASSERT_TRUE(good.ok() && good->has_value());
}

TEST_F(rocksdb_store_corruption, a_damaged_newest_message_leaves_its_chat_readable) {
  // find_chat takes the chat's last seq from its newest message's key, not its value: the
  // damaged message is reported where it is read (history, replay), not by every login.
  chat::chat_record chat{.id = "c1",
                         .kind = chat::chat_kind::direct,
                         .members = {{"u1", chat::member_role::member}, {"u2", chat::member_role::member}},
                         .last_seq = 1,
                         .created = 1000};
  chat::write_batch batch;
  batch.chats = {chat};
  ASSERT_TRUE(store_.write(batch).ok());
  plant("messages", message_key("c1", 3), "damaged");
  auto found = store_.find_chat("c1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->last_seq, 3u);
  expect_internal(store_.find_message("c1", 3), "find_message");
}

TEST_F(rocksdb_store_corruption, subtler_damage_is_caught_too) {
  plant("users", "u-version", std::string("\x09", 1) + "rest");  // unknown format version
  plant("users", "u-empty", "");
  plant("users", "u-trailing",
        std::string("\x01\x01"
                    "a\x01"
                    "b\x01"
                    "c\x02",
                    8) +
            "junk");
  // A chat claiming a billion members in a few bytes must fail, not allocate.
  plant("chats", "c-huge", std::string("\x01\x01\x00\x80\x94\xeb\xdc\x03", 8));
  // A message kind out of range.
  plant("messages", message_key("c-kind", 1), std::string("\x01\x02\x00\x00\x07{}", 7));
  // A dedup record with a short fingerprint.
  plant("dedup", pair_key("u", "short"),
        std::string("\x01\x01"
                    "c\x01\x02",
                    5) +
            "12345");
  // The username index pointing to no user.
  plant("usernames", "ghost", std::string("\x01\x07u-ghost", 9));

  expect_internal(store_.find_user("u-version"), "bad version");
  expect_internal(store_.find_user("u-empty"), "empty value");
  expect_internal(store_.find_user("u-trailing"), "trailing bytes");
  expect_internal(store_.find_chat("c-huge"), "huge member count");
  expect_internal(store_.find_message("c-kind", 1), "kind out of range");
  expect_internal(store_.find_dedup("u", "short"), "short fingerprint");
  expect_internal(store_.find_user_by_name("ghost"), "dangling username");
}

TEST_F(rocksdb_store_corruption, a_scan_visits_good_records_then_reports_the_bad_one) {
  ASSERT_TRUE(store_
                  .write({.messages = {make_message("c1", 1), make_message("c1", 2),
                                       make_message("c1", 4)}})
                  .ok());
  plant("messages", message_key("c1", 3), "\x01");
  std::vector<seq_t> seen;
  auto r = store_.scan_messages("c1", 0, k_max, false, [&](const chat::message_view& v) {
    seen.push_back(v.seq);
    return true;
  });
  expect_internal(r, "scan over a bad record");
  EXPECT_EQ(seen, (std::vector<seq_t>{1, 2}));

  // A key of the chat with a malformed seq part is damage as well.
  ASSERT_TRUE(store_.write({.messages = {make_message("c2", 1)}}).ok());
  plant("messages", pair_key("c2", std::string(9, '\x01')),
        std::string("\x01\x02\x00\x00\x00{}", 7));
  expect_internal(
      store_.scan_messages("c2", 0, k_max, false, [](const chat::message_view&) { return true; }),
      "malformed message key");
  // Other chats are unaffected.
  EXPECT_EQ(scan_seqs(store_, "c1", 4, k_max, false), (std::vector<seq_t>{4}));
}

}  // namespace
}  // namespace parley::store
