// parley::store::rocksdb_store — the embedded production chat::store: one RocksDB database under
// the data directory, one column family per record kind (DESIGN.md "Storage layout"). Depends
// on chat/ (the port it implements), util/ (byte encoding) and RocksDB.
//
// Lifetime: the constructor opens (creating if needed) the database and throws
// std::runtime_error when it cannot, e.g. when the directory is unusable or another process
// holds it. The destructor syncs the WAL and closes the database; the store must outlive every
// call into it.
//
// Thread safety: every method may be called from any thread concurrently. create_user takes a
// mutex around its check-then-write so that two creations of one username cannot both succeed;
// nothing else locks.
//
// Errors: a backend failure is errc::unavailable (nothing changed); a stored record that does
// not decode, or RocksDB reporting corruption, is errc::internal; create_user's taken username
// (or user id) is errc::conflict. Nothing throws after construction.
//
// Durability: write(), create_* and delete_session return once their single WriteBatch is in the
// WAL: fsynced in durability::sync, written to the OS in durability::os (survives a crash of the
// process, not of the machine; flush() then syncs everything written so far).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "chat/store.hpp"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace parley::store {

enum class durability {
  sync,  // fsync the WAL before a write returns (survives power loss)
  os,    // hand the WAL to the OS before a write returns (survives kill -9, not power loss)
};

class rocksdb_store final : public chat::store {
 public:
  // dedup_retention_ms: dedup records older than this are dropped by compactions (0: kept
  // forever); PROTOCOL §4.3 asks for at least 7 days.
  rocksdb_store(const std::string& dir, durability mode,
                chat::time_ms dedup_retention_ms = k_default_dedup_retention_ms);
  static constexpr chat::time_ms k_default_dedup_retention_ms = 30LL * 24 * 3600 * 1000;
  ~rocksdb_store() override;
  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  chat::status create_user(const chat::user_record& user) override;
  chat::result<std::optional<chat::user_record>> find_user(std::string_view user_id) override;
  chat::result<std::optional<chat::user_record>> find_user_by_name(
      std::string_view username) override;

  chat::status create_session(const chat::session_record& session,
                              const std::vector<chat::cursor_record>& initial_cursors) override;
  chat::result<std::optional<chat::session_record>> find_session(
      std::string_view token_hash) override;
  chat::status delete_session(std::string_view token_hash) override;

  chat::result<std::optional<chat::chat_record>> find_chat(std::string_view chat_id) override;
  chat::result<std::vector<chat::membership_record>> memberships_of(
      std::string_view user_id) override;
  chat::result<std::optional<chat::membership_record>> find_membership(
      std::string_view user_id, std::string_view chat_id) override;
  chat::result<std::optional<chat::seq_t>> find_cursor(std::string_view device_id,
                                                       std::string_view chat_id) override;
  chat::result<std::optional<chat::dedup_record>> find_dedup(std::string_view user_id,
                                                             std::string_view cid) override;

  chat::result<std::optional<chat::message_record>> find_message(std::string_view chat_id,
                                                                 chat::seq_t seq) override;
  // Views handed to `visit` point into the iterator's buffers: valid during that visit only.
  chat::status scan_messages(std::string_view chat_id, chat::seq_t from, chat::seq_t to,
                             bool descending,
                             const std::function<bool(const chat::message_view&)>& visit) override;

  chat::status set_last_seen(std::string_view user_id, chat::time_ms when) override;
  chat::result<std::optional<chat::time_ms>> find_last_seen(std::string_view user_id) override;

  chat::status create_media(const chat::media_record& media) override;
  chat::result<std::optional<chat::media_record>> find_media(std::string_view media_id) override;
  chat::result<std::vector<std::string>> media_chats(std::string_view media_id,
                                                     std::size_t limit) override;
  chat::result<bool> has_media_link(std::string_view media_id, std::string_view chat_id) override;

  chat::status write(const chat::write_batch& batch) override;

  chat::status health() override;
  chat::status flush() override;

  // Test hooks. put_raw_for_test stores `value` under `key` in the named column family as it is
  // (to plant corrupt records); flush_memtables_for_test moves every memtable into SST files,
  // so that reads exercise the on-disk path (filters, prefix seeks) rather than the memtable.
  chat::status put_raw_for_test(std::string_view family, std::string_view key,
                                std::string_view value);
  chat::status flush_memtables_for_test();
  // Compacts every family down to its last level, as time would (runs the compaction filters).
  chat::status compact_for_test();
  // While true, every write fails as RocksDB's do when the disk is full or gone (nothing is
  // written): for health() and the callers' failure paths.
  void fail_writes_for_test(bool fail) { fail_writes_for_test_.store(fail); }

 private:
  // Writes `batch` with one WAL write, synced or not per mode_.
  chat::status apply(rocksdb::WriteBatch& batch, std::string_view what);

  class dedup_expiry;
  const durability mode_;
  // Set by a failed write, cleared by a good one: health() reports a store that no longer
  // accepts writes, which its read alone would not show.
  std::atomic<bool> last_write_failed_{false};
  std::atomic<std::int64_t> last_probe_ms_{0};  // health()'s last write probe
  std::atomic<bool> fail_writes_for_test_{false};
  std::unique_ptr<dedup_expiry> dedup_expiry_;  // outlives db_ (declared before it)
  std::unique_ptr<rocksdb::DB> db_;
  // Every handle opened (ours, "default" and any family a newer version added), destroyed
  // before the database is closed.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* users_ = nullptr;
  rocksdb::ColumnFamilyHandle* usernames_ = nullptr;
  rocksdb::ColumnFamilyHandle* sessions_ = nullptr;
  rocksdb::ColumnFamilyHandle* chats_ = nullptr;
  rocksdb::ColumnFamilyHandle* messages_ = nullptr;
  rocksdb::ColumnFamilyHandle* memberships_ = nullptr;
  rocksdb::ColumnFamilyHandle* cursors_ = nullptr;
  rocksdb::ColumnFamilyHandle* presence_ = nullptr;
  rocksdb::ColumnFamilyHandle* dedup_ = nullptr;
  rocksdb::ColumnFamilyHandle* media_ = nullptr;
  std::mutex create_user_mutex_;  // serialises create_user's username check and write
  std::mutex create_media_mutex_;  // serialises create_media's id check and write
};

}  // namespace parley::store
