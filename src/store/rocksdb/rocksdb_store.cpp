#include "store/rocksdb/rocksdb_store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <thread>
#include <utility>

#include "util/bytes.hpp"
#include "util/clock.hpp"

// Layout (DESIGN.md "Storage layout"). `S(x)` is x length-prefixed (util::byte_writer::put_string:
// varint length, then the bytes), so a two-part key never confuses ("u1", "c10") with ("u1c", "10")
// and the first part of a key is a prefix of no other first part. The last part of a key is raw:
// it needs no delimiter, and raw bytes keep the order the port promises (memberships_of in chat
// id order, messages in seq order). No assumption is made about the bytes of ids.
//
//   users        id                   -> V username, display_name, password_hash, created
//   usernames    username             -> V user_id
//   sessions     token_hash           -> V user_id, device_id, device_name, created
//   chats        chat_id              -> V kind, title, n, n * (user_id, role), last_seq, created
//                (last_seq as of the record's write; find_chat takes the newest message's seq)
//   messages     S(chat_id) be64(seq) -> V ts, from_user, from_device, kind, encoded (raw tail)
//   memberships  S(user_id) chat_id   -> V role, joined_seq, left_seq, read_seq, delivered_seq
//   cursors      S(device_id) chat_id -> V delivered_seq
//   dedup        S(user_id) cid       -> V chat_id, seq, ts, fingerprint (16 raw bytes)
//   presence     user_id              -> V last_seen (zigzag varint, ms)
//   media        S(media_id)          -> V owner, mime, size, sha256, blob_key, created
//                S(media_id) chat_id  -> V (empty: the chat carries the media in a message)
//
// V is a format version varint (1) opening every value, so that a later layout can be told
// apart. Strings are put_string, integers varints, times zig-zag varints, enums varints checked
// against their range. A value with bytes left over, a bad version or an enum out of range does
// not decode: errc::internal.

namespace parley::store {

using chat::errc;
using chat::make_error;
using chat::ok_status;
using chat::seq_t;

namespace {

constexpr std::uint64_t k_format = 1;
constexpr std::size_t k_mib = 1024 * 1024;

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// ---- keys ----

// S(first): the part every key of one user / device / chat starts with.
std::string head(std::string_view first) {
  std::string key;
  key.reserve(first.size() + 1);
  util::byte_writer(key).put_string(first);
  return key;
}

std::string pair_key(std::string_view first, std::string_view second) {
  std::string key = head(first);
  key.append(second);
  return key;
}

std::string message_key(std::string_view chat_id, seq_t seq) {
  std::string key = head(chat_id);
  util::byte_writer(key).put_fixed64_be(seq);
  return key;
}

// The smallest key greater than every key starting with `prefix`, or "" when there is none.
std::string successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// Splits S(first)·rest; false when the key does not start with a complete S(first).
bool split_pair_key(std::string_view key, std::string_view& first, std::string_view& second) {
  util::byte_reader r(key);
  if (!r.get_view(first)) return false;
  second = r.rest();
  return true;
}

// The prefix extractor of the families scanned by their first key part (messages by chat,
// memberships by user): the prefix is S(first). It lets prefix bloom filters skip SST files that
// hold nothing of the chat being scanned, and prefix_same_as_start stop a scan at the chat's end.
// Every key starting with a complete S(x) is in the domain, its prefix is that S(x), and S(x) is
// its own prefix: the properties ColumnFamilyOptions::prefix_extractor asks for. Must not throw.
class head_prefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "parley.head_prefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), head_length(view(key))};
  }
  bool InDomain(const rocksdb::Slice& key) const override { return head_length(view(key)) != 0; }

 private:
  static std::size_t head_length(std::string_view key) {
    util::byte_reader r(key);
    std::string_view first;
    if (!r.get_view(first)) return 0;
    return key.size() - r.rest().size();
  }
};

// ---- values ----

bool get_format(util::byte_reader& r) {
  std::uint64_t v = 0;
  return r.get_varint(v) && v == k_format;
}

template <class E>
bool get_enum(util::byte_reader& r, E& out, E last) {
  std::uint64_t v = 0;
  if (!r.get_varint(v) || v > static_cast<std::uint64_t>(last)) return false;
  out = static_cast<E>(v);
  return true;
}

template <class E>
void put_enum(util::byte_writer& w, E e) {
  w.put_varint(static_cast<std::uint64_t>(e));
}

bool at_end(const util::byte_reader& r) { return r.ok() && r.rest().empty(); }

std::string encode_user(const chat::user_record& u) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_string(u.username);
  w.put_string(u.display_name);
  w.put_string(u.password_hash);
  w.put_signed(u.created);
  return v;
}

std::optional<chat::user_record> decode_user(std::string_view key, std::string_view value) {
  util::byte_reader r(value);
  chat::user_record u;
  u.id = key;
  if (!get_format(r) || !r.get_string(u.username) || !r.get_string(u.display_name) ||
      !r.get_string(u.password_hash) || !r.get_signed(u.created) || !at_end(r)) {
    return std::nullopt;
  }
  return u;
}

std::string encode_username(std::string_view user_id) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_string(user_id);
  return v;
}

std::optional<std::string> decode_username(std::string_view value) {
  util::byte_reader r(value);
  std::string user_id;
  if (!get_format(r) || !r.get_string(user_id) || !at_end(r)) return std::nullopt;
  return user_id;
}

std::string encode_session(const chat::session_record& s) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_string(s.user_id);
  w.put_string(s.device_id);
  w.put_string(s.device_name);
  w.put_signed(s.created);
  return v;
}

std::optional<chat::session_record> decode_session(std::string_view key, std::string_view value) {
  util::byte_reader r(value);
  chat::session_record s;
  s.token_hash = key;
  if (!get_format(r) || !r.get_string(s.user_id) || !r.get_string(s.device_id) ||
      !r.get_string(s.device_name) || !r.get_signed(s.created) || !at_end(r)) {
    return std::nullopt;
  }
  return s;
}

std::string encode_chat(const chat::chat_record& c) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  put_enum(w, c.kind);
  w.put_string(c.title);
  w.put_varint(c.members.size());
  for (const auto& m : c.members) {
    w.put_string(m.user_id);
    put_enum(w, m.role);
  }
  w.put_varint(c.last_seq);
  w.put_signed(c.created);
  return v;
}

std::optional<chat::chat_record> decode_chat(std::string_view key, std::string_view value) {
  util::byte_reader r(value);
  chat::chat_record c;
  c.id = key;
  std::uint64_t n = 0;
  if (!get_format(r) || !get_enum(r, c.kind, chat::chat_kind::group) || !r.get_string(c.title) ||
      !r.get_varint(n)) {
    return std::nullopt;
  }
  // A member takes at least two bytes: a corrupt count cannot make us reserve gigabytes.
  if (n > r.rest().size() / 2) return std::nullopt;
  c.members.resize(n);
  for (auto& m : c.members) {
    if (!r.get_string(m.user_id) || !get_enum(r, m.role, chat::member_role::admin)) {
      return std::nullopt;
    }
  }
  if (!r.get_varint(c.last_seq) || !r.get_signed(c.created) || !at_end(r)) return std::nullopt;
  return c;
}

std::string encode_message(const chat::message_record& m) {
  std::string v;
  v.reserve(m.encoded.size() + m.from_user.size() + m.from_device.size() + 16);
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_signed(m.ts);
  w.put_string(m.from_user);
  w.put_string(m.from_device);
  put_enum(w, m.kind);
  w.put_raw(m.encoded);  // last and unprefixed: a scan hands it out as a view of the value
  return v;
}

// Fills everything but seq; the views point into `value`.
bool decode_message(std::string_view value, chat::message_view& m) {
  util::byte_reader r(value);
  if (!get_format(r) || !r.get_signed(m.ts) || !r.get_view(m.from_user) ||
      !r.get_view(m.from_device) || !get_enum(r, m.kind, chat::message_kind::system)) {
    return false;
  }
  m.encoded = r.rest();
  return true;
}

std::string encode_membership(const chat::membership_record& m) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  put_enum(w, m.role);
  w.put_varint(m.joined_seq);
  w.put_varint(m.left_seq);
  w.put_varint(m.read_seq);
  w.put_varint(m.delivered_seq);
  return v;
}

std::optional<chat::membership_record> decode_membership(std::string_view key,
                                                         std::string_view value) {
  std::string_view user_id, chat_id;
  if (!split_pair_key(key, user_id, chat_id)) return std::nullopt;
  util::byte_reader r(value);
  chat::membership_record m;
  m.user_id = user_id;
  m.chat_id = chat_id;
  if (!get_format(r) || !get_enum(r, m.role, chat::member_role::admin) ||
      !r.get_varint(m.joined_seq) || !r.get_varint(m.left_seq) || !r.get_varint(m.read_seq) ||
      !r.get_varint(m.delivered_seq) || !at_end(r)) {
    return std::nullopt;
  }
  return m;
}

std::string encode_cursor(seq_t delivered_seq) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_varint(delivered_seq);
  return v;
}

std::optional<seq_t> decode_cursor(std::string_view value) {
  util::byte_reader r(value);
  seq_t seq = 0;
  if (!get_format(r) || !r.get_varint(seq) || !at_end(r)) return std::nullopt;
  return seq;
}

std::string encode_last_seen(chat::time_ms when) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_signed(when);
  return v;
}

std::optional<chat::time_ms> decode_last_seen(std::string_view value) {
  util::byte_reader r(value);
  chat::time_ms when = 0;
  if (!get_format(r) || !r.get_signed(when) || !at_end(r)) return std::nullopt;
  return when;
}

std::string encode_dedup(const chat::dedup_record& d) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_string(d.chat_id);
  w.put_varint(d.seq);
  w.put_signed(d.ts);
  w.put_raw({reinterpret_cast<const char*>(d.fingerprint.data()), d.fingerprint.size()});
  return v;
}

std::optional<chat::dedup_record> decode_dedup(std::string_view user_id, std::string_view cid,
                                               std::string_view value) {
  util::byte_reader r(value);
  chat::dedup_record d;
  d.user_id = user_id;
  d.cid = cid;
  if (!get_format(r) || !r.get_string(d.chat_id) || !r.get_varint(d.seq) || !r.get_signed(d.ts) ||
      r.rest().size() != d.fingerprint.size()) {
    return std::nullopt;
  }
  std::copy(r.rest().begin(), r.rest().end(), d.fingerprint.begin());
  return d;
}

}  // namespace

// Forgets dedup records older than the retention, in compactions (PROTOCOL §4.3 allows it after
// at least 7 days): without it they would grow with every message ever sent and slow down the
// dedup read of every send. A record may outlive its retention until a compaction reaches it;
// a late retry then still answers dup, which the protocol allows.
class rocksdb_store::dedup_expiry final : public rocksdb::CompactionFilter {
 public:
  explicit dedup_expiry(chat::time_ms retention) : retention_(retention) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    auto record = decode_dedup({}, {}, view(value));  // the key's user and cid are not needed
    if (!record) return false;                        // not ours to judge: kept
    return record->ts < util::now_ms() - retention_;
  }
  const char* Name() const override { return "parley.dedup_expiry.v1"; }

 private:
  chat::time_ms retention_;
};

namespace {

std::string encode_media(const chat::media_record& m) {
  std::string v;
  util::byte_writer w(v);
  w.put_varint(k_format);
  w.put_string(m.owner);
  w.put_string(m.mime);
  w.put_varint(m.size);
  w.put_string(m.sha256);
  w.put_string(m.blob_key);
  w.put_signed(m.created);
  return v;
}

std::optional<chat::media_record> decode_media(std::string_view media_id, std::string_view value) {
  util::byte_reader r(value);
  chat::media_record m;
  m.id = media_id;
  if (!get_format(r) || !r.get_string(m.owner) || !r.get_string(m.mime) || !r.get_varint(m.size) ||
      !r.get_string(m.sha256) || !r.get_string(m.blob_key) || !r.get_signed(m.created) ||
      !at_end(r)) {
    return std::nullopt;
  }
  return m;
}

std::string encode_media_link() {
  std::string v;
  util::byte_writer(v).put_varint(k_format);
  return v;
}

// ---- errors ----

// RocksDB reporting corruption (a bad checksum, a torn file) is ours to investigate, not a
// transient outage: internal. Everything else (I/O errors, a stopped DB) is unavailable.
chat::error backend_error(const rocksdb::Status& s, std::string_view what) {
  return make_error(s.IsCorruption() ? errc::internal : errc::unavailable,
                    "rocksdb_store: " + std::string(what) + ": " + s.ToString());
}

chat::error undecodable(const std::string& family) {
  // The key is left out: it may hold a token hash, and it is rarely printable.
  return make_error(errc::internal, "rocksdb_store: undecodable record in " + family);
}

// How a read uses the block cache. `once` is for records read once per connection (the session
// at `auth`, a user's last_seen when it comes online): caching them made the cache grow by about
// a block's share per connection (part of the per-connection memory budget) for reads that are
// not repeated soon; the OS page cache still holds their files.
enum class caching { keep, once };

// Reads one record. Not found is an empty optional; `decode(value)` returns an empty optional
// when the value is malformed, which becomes errc::internal.
template <class Decode>
auto get_record(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, std::string_view key,
                Decode&& decode, caching cache = caching::keep)
    -> chat::result<decltype(decode(std::string_view()))> {
  using record = decltype(decode(std::string_view()));
  rocksdb::ReadOptions options;
  options.fill_cache = cache == caching::keep;
  rocksdb::PinnableSlice value;  // pinned in the block cache when it can be: no copy
  auto s = db.Get(options, family, slice(key), &value);
  if (s.IsNotFound()) return record();
  if (!s.ok()) return backend_error(s, "read from " + family->GetName());
  record r = decode(view(value));
  if (!r) return undecodable(family->GetName());
  return r;
}

// Builds one WriteBatch and remembers its first failure (Put fails only when the batch outgrows
// its size limit, but a dropped record must not go unnoticed).
class batch_builder {
 public:
  void put(rocksdb::ColumnFamilyHandle* family, std::string_view key, std::string_view value) {
    if (status_.ok()) status_ = batch_.Put(family, slice(key), slice(value));
  }
  void remove(rocksdb::ColumnFamilyHandle* family, std::string_view key) {
    if (status_.ok()) status_ = batch_.Delete(family, slice(key));
  }
  const rocksdb::Status& status() const { return status_; }
  rocksdb::WriteBatch& batch() { return batch_; }

 private:
  rocksdb::WriteBatch batch_;
  rocksdb::Status status_;
};

// ---- tuning ----

// The first of `preferred` that this build of RocksDB supports, else none. Checked at run time
// because the packaged librocksdb decides, not our headers.
rocksdb::CompressionType pick_compression(
    std::initializer_list<rocksdb::CompressionType> preferred) {
  static const std::vector<rocksdb::CompressionType> supported =
      rocksdb::GetSupportedCompressions();
  for (auto c : preferred) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

enum class family_shape {
  point,  // point lookups only: whole-key bloom filter and a hash index in data blocks
  owned,  // point lookups, keys S(owner) rest written in runs per owner (a user's cids)
  scan,   // point lookups and scans of one first key part: prefix + whole-key bloom
  log,    // messages: append-mostly, scanned in seq order, the bulk of the data
};

rocksdb::ColumnFamilyOptions family_options(family_shape shape,
                                            const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;  // one cache for every family, so memory follows the hot family
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // ~1% false positives
  t.cache_index_and_filter_blocks = true;  // bounded by the cache, not by the number of files
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.optimize_filters_for_memory = true;
  t.format_version = 5;
  // Recent levels see most reads and writes: fast lz4. The bottom level holds most bytes and is
  // rewritten least: zstd. JSON message bodies compress well under both.
  o.compression = pick_compression({rocksdb::kLZ4Compression, rocksdb::kSnappyCompression});
  o.bottommost_compression =
      pick_compression({rocksdb::kZSTD, rocksdb::kLZ4Compression, rocksdb::kSnappyCompression});
  o.level_compaction_dynamic_level_bytes = true;  // less space amplification under overwrites
  o.write_buffer_size = 16 * k_mib;
  switch (shape) {
    case family_shape::owned:
      // A memtable insert starts from where the owner's previous one went (a skiplist search
      // within the owner's keys instead of the whole memtable): the dedup insert of every send
      // was the largest single cost of a write batch.
      o.memtable_insert_with_hint_prefix_extractor = std::make_shared<head_prefix>();
      [[fallthrough]];
    case family_shape::point:
      t.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
      t.data_block_hash_table_util_ratio = 0.75;
      // Most lookups here miss (a new cid's dedup record, a device's first cursor): a bloom
      // filter over the memtable answers them without a skiplist search.
      o.memtable_prefix_bloom_size_ratio = 0.05;
      o.memtable_whole_key_filtering = true;
      break;
    case family_shape::scan:
      o.prefix_extractor = std::make_shared<head_prefix>();
      break;
    case family_shape::log:
      o.prefix_extractor = std::make_shared<head_prefix>();
      // A chat's messages arrive in seq order: insert each next to the chat's previous one.
      o.memtable_insert_with_hint_prefix_extractor = o.prefix_extractor;
      t.block_size = 16 * 1024;  // scans read runs of messages; bigger blocks compress better
      o.write_buffer_size = 64 * k_mib;
      o.max_write_buffer_number = 4;  // keep accepting writes while a flush is slow
      o.target_file_size_base = 64 * k_mib;
      break;
  }
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

rocksdb::DBOptions db_options() {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  o.max_background_jobs = static_cast<int>(std::min(cores, 8u));
  // Not pipelined: with enable_pipelined_write, RocksDB 7.8 left unsynced WAL records in its
  // user-space buffer (seen here: a write acknowledged in `os` mode was gone after kill -9, the
  // WAL file still empty). `os` durability depends on every write reaching the OS.
  o.enable_pipelined_write = false;
  // The leader of a write group inserts every batch of the group itself, using the insert hints
  // of the families (concurrent inserts ignore them); the shards' writers meet in one group.
  o.allow_concurrent_memtable_write = false;
  o.db_write_buffer_size = 256 * k_mib;  // all memtables together, across families
  // Quiet families (users, sessions) would otherwise pin old WAL files until they flush.
  o.max_total_wal_size = 256 * k_mib;
  o.bytes_per_sync = k_mib;  // smooth SST writeback instead of one large fsync per file
  o.keep_log_file_num = 5;
  o.max_log_file_size = 16 * k_mib;
  return o;
}

constexpr std::size_t k_block_cache_bytes = 256 * k_mib;

// The records of `family` whose keys start with `prefix`, in key order: bounded above by the
// prefix's successor (families with a prefix extractor also skip files without the prefix).
class prefix_scan {
 public:
  prefix_scan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, std::string prefix)
      : prefix_(std::move(prefix)), end_(successor(prefix_)), end_slice_(end_) {
    rocksdb::ReadOptions options;
    options.prefix_same_as_start = true;
    if (!end_.empty()) options.iterate_upper_bound = &end_slice_;
    it_.reset(db.NewIterator(options, family));
    it_->Seek(rocksdb::Slice(prefix_));
  }
  bool valid() const { return it_->Valid() && view(it_->key()).starts_with(prefix_); }
  void next() { it_->Next(); }
  std::string_view key() const { return view(it_->key()); }
  std::string_view value() const { return view(it_->value()); }
  rocksdb::Status status() const { return it_->status(); }

 private:
  std::string prefix_;
  std::string end_;
  rocksdb::Slice end_slice_;  // what the iterator's upper bound points at
  std::unique_ptr<rocksdb::Iterator> it_;
};

struct family_spec {
  std::string_view name;
  family_shape shape;
};

constexpr family_spec k_families[] = {
    {"users", family_shape::point},    {"usernames", family_shape::point},
    {"sessions", family_shape::point}, {"chats", family_shape::point},
    {"messages", family_shape::log},   {"memberships", family_shape::scan},
    {"cursors", family_shape::owned},  {"dedup", family_shape::owned},
    {"media", family_shape::scan},     {"presence", family_shape::point},
};

}  // namespace

rocksdb_store::rocksdb_store(const std::string& dir, durability mode,
                             chat::time_ms dedup_retention_ms)
    : mode_(mode) {
  if (dedup_retention_ms > 0) dedup_expiry_ = std::make_unique<dedup_expiry>(dedup_retention_ms);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("rocksdb_store: cannot create " + dir + ": " + ec.message());

  auto cache = rocksdb::NewLRUCache(k_block_cache_bytes);
  auto options = db_options();
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName,
                        family_options(family_shape::point, cache));
  for (const auto& f : k_families) {
    families.emplace_back(std::string(f.name), family_options(f.shape, cache));
    if (f.name == "dedup") families.back().options.compaction_filter = dedup_expiry_.get();
  }
  // RocksDB refuses to open a database without naming all its families: open any that a newer
  // version added, with default options, so that going back a version still starts.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) {
    for (const auto& name : existing) {
      auto known = std::any_of(families.begin(), families.end(),
                               [&](const auto& f) { return f.name == name; });
      if (!known) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
  }

  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(options, dir, families, &handles_, &db);
  if (!s.ok()) {
    const std::string why = s.ToString();
    const bool locked = s.IsIOError() && why.find("lock") != std::string::npos;
    throw std::runtime_error("rocksdb_store: cannot open " + dir + ": " + why +
                             (locked ? " (is another parleyd using this directory?)" : ""));
  }
  db_.reset(db);

  std::pair<std::string_view, rocksdb::ColumnFamilyHandle**> wanted[] = {
      {"users", &users_},     {"usernames", &usernames_}, {"sessions", &sessions_},
      {"chats", &chats_},     {"messages", &messages_},   {"memberships", &memberships_},
      {"cursors", &cursors_}, {"dedup", &dedup_}, {"presence", &presence_},
      {"media", &media_},
  };
  for (auto* handle : handles_) {
    for (auto& [name, slot] : wanted) {
      if (handle->GetName() == name) *slot = handle;
    }
  }
}

rocksdb_store::~rocksdb_store() {
  if (!db_) return;
  // A clean close is durable in every mode; in `sync` mode there is nothing left to sync.
  if (mode_ == durability::os) {
    auto s = db_->FlushWAL(true);
    (void)s;  // nothing to report to from a destructor; the WAL still holds the data
  }
  for (auto* handle : handles_) {
    auto s = db_->DestroyColumnFamilyHandle(handle);
    (void)s;
  }
  handles_.clear();
  auto s = db_->Close();
  (void)s;
  db_.reset();
}

chat::status rocksdb_store::apply(rocksdb::WriteBatch& batch, std::string_view what) {
  rocksdb::WriteOptions options;
  options.sync = mode_ == durability::sync;
  auto s = fail_writes_for_test_.load() ? rocksdb::Status::IOError("writes failed for the test")
                                        : db_->Write(options, &batch);
  last_write_failed_.store(!s.ok());
  if (!s.ok()) return backend_error(s, what);
  return ok_status();
}

// ---- users ----

// Cases:
//   username taken                -> conflict
//   user id taken                 -> conflict (overwriting would orphan the old username)
//   both free                     -> users + usernames in one batch
// The mutex makes check-then-write atomic against other create_user calls; nothing else writes
// these two families.
chat::status rocksdb_store::create_user(const chat::user_record& user) {
  std::lock_guard lock(create_user_mutex_);
  rocksdb::PinnableSlice existing;
  auto s = db_->Get(rocksdb::ReadOptions(), usernames_, slice(user.username), &existing);
  if (s.ok()) return make_error(errc::conflict, "username taken");
  if (!s.IsNotFound()) return backend_error(s, "read usernames");
  existing.Reset();
  s = db_->Get(rocksdb::ReadOptions(), users_, slice(user.id), &existing);
  if (s.ok()) return make_error(errc::conflict, "user id taken");
  if (!s.IsNotFound()) return backend_error(s, "read users");

  batch_builder b;
  b.put(users_, user.id, encode_user(user));
  b.put(usernames_, user.username, encode_username(user.id));
  if (!b.status().ok()) return backend_error(b.status(), "create user");
  return apply(b.batch(), "create user");
}

chat::result<std::optional<chat::user_record>> rocksdb_store::find_user(std::string_view user_id) {
  return get_record(*db_, users_, user_id,
                    [&](std::string_view value) { return decode_user(user_id, value); });
}

chat::result<std::optional<chat::user_record>> rocksdb_store::find_user_by_name(
    std::string_view username) {
  auto id = get_record(*db_, usernames_, username, decode_username);
  if (!id.ok()) return id.err();
  if (!id->has_value()) return std::optional<chat::user_record>();
  auto user = find_user(**id);
  // Users are never deleted and both records are written in one batch: an index entry without
  // its user is damage, not a race.
  if (user.ok() && !user->has_value()) {
    return make_error(errc::internal, "rocksdb_store: username index points to no user");
  }
  return user;
}

// ---- sessions ----

chat::status rocksdb_store::create_session(
    const chat::session_record& session, const std::vector<chat::cursor_record>& initial_cursors) {
  batch_builder b;
  b.put(sessions_, session.token_hash, encode_session(session));
  for (const auto& c : initial_cursors) {
    b.put(cursors_, pair_key(c.device_id, c.chat_id), encode_cursor(c.delivered_seq));
  }
  if (!b.status().ok()) return backend_error(b.status(), "create session");
  return apply(b.batch(), "create session");
}

chat::result<std::optional<chat::session_record>> rocksdb_store::find_session(
    std::string_view token_hash) {
  return get_record(
      *db_, sessions_, token_hash,
      [&](std::string_view value) { return decode_session(token_hash, value); }, caching::once);
}

chat::status rocksdb_store::delete_session(std::string_view token_hash) {
  auto session = find_session(token_hash);
  if (!session) return session.err();
  batch_builder b;
  b.remove(sessions_, token_hash);
  if (*session) {
    // The device is gone: so are its cursors (one per chat it saw), in the same batch.
    prefix_scan scan(*db_, cursors_, head((*session)->device_id));
    for (; scan.valid(); scan.next()) b.remove(cursors_, scan.key());
    if (!scan.status().ok()) return backend_error(scan.status(), "scan cursors");
  }
  if (!b.status().ok()) return backend_error(b.status(), "delete session");
  return apply(b.batch(), "delete session");
}

namespace {

// An iterator over one chat's messages from `lower` (inclusive) to `last` (inclusive): both
// keys share the chat's prefix S(chat_id), as RocksDB's prefix seek asks of them, and the upper
// bound is last·'\0', just past `last` even when its seq is the maximum. So the iterator itself
// stops at the range's (and the chat's) end in both directions.
class message_range {
 public:
  message_range(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* messages, std::string lower,
                const std::string& last)
      : lower_(std::move(lower)), upper_(last + '\0'), lower_slice_(lower_), upper_slice_(upper_) {
    rocksdb::ReadOptions options;
    options.iterate_lower_bound = &lower_slice_;
    options.iterate_upper_bound = &upper_slice_;
    options.prefix_same_as_start = true;
    it_.reset(db.NewIterator(options, messages));
  }
  message_range(const message_range&) = delete;  // the bounds' slices point into this object
  message_range& operator=(const message_range&) = delete;

  rocksdb::Iterator& it() { return *it_; }
  const rocksdb::Slice& lower() const { return lower_slice_; }
  // The seq of the message under the iterator, from its key; false if the key is not a message
  // key of this chat (S(chat_id)·be64(seq), as long as the bounds).
  bool seq(seq_t& out) const {
    auto key = view(it_->key());
    if (key.size() != lower_.size()) return false;
    util::byte_reader r(key.substr(key.size() - 8));
    return r.get_fixed64_be(out);
  }

 private:
  std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace

// ---- chats, memberships, cursors, dedup ----

chat::result<std::optional<chat::chat_record>> rocksdb_store::find_chat(std::string_view chat_id) {
  auto found = get_record(*db_, chats_, chat_id,
                          [&](std::string_view value) { return decode_chat(chat_id, value); });
  if (!found.ok() || !found->has_value()) return found;
  // The messages appended since the record was written: the newest one's seq, read from its key
  // alone (a message that does not decode must not make its chat unreadable), is the last.
  auto& chat = **found;
  const std::string last = message_key(chat_id, std::numeric_limits<seq_t>::max());
  message_range range(*db_, messages_, message_key(chat_id, chat.last_seq + 1), last);
  auto& it = range.it();
  it.SeekForPrev(slice(last));
  if (it.Valid() && !range.seq(chat.last_seq)) return undecodable("messages");
  if (!it.status().ok()) return backend_error(it.status(), "scan messages");
  return found;
}

chat::result<std::vector<chat::membership_record>> rocksdb_store::memberships_of(
    std::string_view user_id) {
  std::vector<chat::membership_record> out;
  prefix_scan scan(*db_, memberships_, head(user_id));
  for (; scan.valid(); scan.next()) {
    auto m = decode_membership(scan.key(), scan.value());
    if (!m) return undecodable("memberships");
    out.push_back(std::move(*m));
  }
  if (!scan.status().ok()) return backend_error(scan.status(), "scan memberships");
  return out;
}

chat::result<std::optional<chat::membership_record>> rocksdb_store::find_membership(
    std::string_view user_id, std::string_view chat_id) {
  const std::string key = pair_key(user_id, chat_id);
  return get_record(*db_, memberships_, key,
                    [&](std::string_view value) { return decode_membership(key, value); });
}

chat::result<std::optional<seq_t>> rocksdb_store::find_cursor(std::string_view device_id,
                                                              std::string_view chat_id) {
  return get_record(*db_, cursors_, pair_key(device_id, chat_id), decode_cursor);
}

chat::status rocksdb_store::set_last_seen(std::string_view user_id, chat::time_ms when) {
  batch_builder b;
  b.put(presence_, user_id, encode_last_seen(when));
  if (!b.status().ok()) return backend_error(b.status(), "set last_seen");
  return apply(b.batch(), "set last_seen");
}

chat::result<std::optional<chat::time_ms>> rocksdb_store::find_last_seen(
    std::string_view user_id) {
  return get_record(*db_, presence_, user_id, decode_last_seen, caching::once);
}

chat::result<std::optional<chat::dedup_record>> rocksdb_store::find_dedup(std::string_view user_id,
                                                                          std::string_view cid) {
  return get_record(*db_, dedup_, pair_key(user_id, cid),
                    [&](std::string_view value) { return decode_dedup(user_id, cid, value); });
}

// ---- messages ----

chat::result<std::optional<chat::message_record>> rocksdb_store::find_message(
    std::string_view chat_id, seq_t seq) {
  return get_record(*db_, messages_, message_key(chat_id, seq),
                    [&](std::string_view value) -> std::optional<chat::message_record> {
                      chat::message_view v;
                      if (!decode_message(value, v)) return std::nullopt;
                      return chat::message_record{.chat_id = std::string(chat_id),
                                                  .seq = seq,
                                                  .ts = v.ts,
                                                  .from_user = std::string(v.from_user),
                                                  .from_device = std::string(v.from_device),
                                                  .kind = v.kind,
                                                  .encoded = std::string(v.encoded)};
                    });
}

// A descending scan starts with SeekForPrev(S(chat_id)·be64(to)); see message_range.
chat::status rocksdb_store::scan_messages(
    std::string_view chat_id, seq_t from, seq_t to, bool descending,
    const std::function<bool(const chat::message_view&)>& visit) {
  if (from > to) return ok_status();
  const std::string last = message_key(chat_id, to);
  message_range range(*db_, messages_, message_key(chat_id, from), last);
  auto& it = range.it();

  if (descending) {
    it.SeekForPrev(slice(last));
  } else {
    it.Seek(range.lower());
  }
  for (; it.Valid(); descending ? it.Prev() : it.Next()) {
    chat::message_view m;
    if (!range.seq(m.seq) || !decode_message(view(it.value()), m)) return undecodable("messages");
    if (!visit(m)) return ok_status();
  }
  if (!it.status().ok()) return backend_error(it.status(), "scan messages");
  return ok_status();
}

// ---- media ----

chat::status rocksdb_store::create_media(const chat::media_record& media) {
  std::lock_guard lock(create_media_mutex_);
  const std::string key = head(media.id);
  rocksdb::PinnableSlice existing;
  auto s = db_->Get(rocksdb::ReadOptions(), media_, slice(key), &existing);
  if (s.ok()) return make_error(errc::conflict, "media id exists");
  if (!s.IsNotFound()) return backend_error(s, "read media");
  batch_builder b;
  b.put(media_, key, encode_media(media));
  if (!b.status().ok()) return backend_error(b.status(), "create media");
  return apply(b.batch(), "create media");
}

chat::result<std::optional<chat::media_record>> rocksdb_store::find_media(
    std::string_view media_id) {
  return get_record(*db_, media_, head(media_id),
                    [&](std::string_view value) { return decode_media(media_id, value); });
}

chat::result<bool> rocksdb_store::has_media_link(std::string_view media_id,
                                                 std::string_view chat_id) {
  if (chat_id.empty()) return false;  // S(media_id) alone is the media's record, not a link
  rocksdb::PinnableSlice value;
  auto s = db_->Get(rocksdb::ReadOptions(), media_, slice(pair_key(media_id, chat_id)), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return backend_error(s, "read media link");
  return true;
}

chat::result<std::vector<std::string>> rocksdb_store::media_chats(std::string_view media_id,
                                                                  std::size_t limit) {
  // The record's key is S(media_id) itself; its links follow it, each S(media_id) chat_id.
  const std::string prefix = head(media_id);
  std::vector<std::string> out;
  prefix_scan scan(*db_, media_, prefix);
  for (; scan.valid() && out.size() < limit; scan.next()) {
    if (scan.key().size() == prefix.size()) continue;  // the media record itself
    out.emplace_back(scan.key().substr(prefix.size()));
  }
  if (!scan.status().ok()) return backend_error(scan.status(), "scan media links");
  return out;
}

// ---- batches ----

chat::status rocksdb_store::write(const chat::write_batch& batch) {
  if (batch.empty()) return ok_status();
  batch_builder b;
  for (const auto& c : batch.chats) b.put(chats_, c.id, encode_chat(c));
  for (const auto& m : batch.memberships) {
    b.put(memberships_, pair_key(m.user_id, m.chat_id), encode_membership(m));
  }
  for (const auto& m : batch.messages) {
    b.put(messages_, message_key(m.chat_id, m.seq), encode_message(m));
  }
  for (const auto& d : batch.dedups) b.put(dedup_, pair_key(d.user_id, d.cid), encode_dedup(d));
  for (const auto& c : batch.cursors) {
    b.put(cursors_, pair_key(c.device_id, c.chat_id), encode_cursor(c.delivered_seq));
  }
  for (const auto& l : batch.media_links) {
    b.put(media_, pair_key(l.media_id, l.chat_id), encode_media_link());
  }
  if (!b.status().ok()) return backend_error(b.status(), "write batch");
  return apply(b.batch(), "write batch");
}

// ---- operations ----

chat::status rocksdb_store::health() {
  // A point read of a key no record has (ids are never empty): it goes through the memtables
  // and, past the bloom filters, touches no file. NotFound means the store serves.
  rocksdb::PinnableSlice value;
  auto s = db_->Get(rocksdb::ReadOptions(), users_, rocksdb::Slice(), &value);
  if (!s.ok() && !s.IsNotFound()) return backend_error(s, "health read");
  if (last_write_failed_.load()) {
    // The last write failed (a full disk, a failed WAL): serve again only once one succeeds. A
    // probe: deleting that same absent key is a real write (WAL and memtable) that changes no
    // record, so an idle store that recovered is seen healthy again. At most one probe a
    // second: /healthz needs no login, and must not become a way to force syncs.
    const auto now = util::now_ms();
    auto last = last_probe_ms_.load();
    if (now - last < 1000 || !last_probe_ms_.compare_exchange_strong(last, now))
      return make_error(errc::unavailable, "rocksdb_store: the last write failed");
    batch_builder probe;
    probe.remove(users_, {});
    if (!probe.status().ok()) return backend_error(probe.status(), "health write");
    if (auto wrote = apply(probe.batch(), "health write"); !wrote) return wrote;
  }
  return ok_status();
}

chat::status rocksdb_store::flush() {
  auto s = db_->FlushWAL(true);
  if (!s.ok()) return backend_error(s, "sync WAL");
  return ok_status();
}

chat::status rocksdb_store::put_raw_for_test(std::string_view family, std::string_view key,
                                             std::string_view value) {
  for (auto* handle : handles_) {
    if (handle->GetName() != family) continue;
    batch_builder b;
    b.put(handle, key, value);
    return apply(b.batch(), "put raw");
  }
  return make_error(errc::internal, "rocksdb_store: no family " + std::string(family));
}

chat::status rocksdb_store::flush_memtables_for_test() {
  auto s = db_->Flush(rocksdb::FlushOptions(), handles_);
  if (!s.ok()) return backend_error(s, "flush memtables");
  return ok_status();
}

chat::status rocksdb_store::compact_for_test() {
  if (auto flushed = flush_memtables_for_test(); !flushed) return flushed;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* handle : handles_) {
    auto s = db_->CompactRange(options, handle, nullptr, nullptr);
    if (!s.ok()) return backend_error(s, "compact");
  }
  return ok_status();
}

}  // namespace parley::store
